#!/usr/bin/env bash
# Builds the embassy firmware (thumbv7em-none-eabihf, release) in its variants (default,
# sealed) and prints its flash and RAM figures, comparable to
# cluster-embedded/firmware/measure.sh (the smoltcp driver's). These are the images that run:
# `cluster-embedded/qemu/run.sh --embassy` boots the same build on QEMU's mps2-an386 board, and
# cluster-embedded's qemu test drives it.
#   flash = .text + .rodata (the vector table comes on top; .data is printed if not empty)
#   RAM   = .data + .bss (every static, per symbol), without the LAN9118 driver's frame
#           buffers (the static DEVICE); the embassy tasks' futures are statics
#           too (their task pools)
#   stack = the executor's path from `main` plus the deepest poll of one task (tasks are polled
#           one at a time, through function pointers that the disassembly cannot follow, so
#           each `TaskStorage::poll` is estimated on its own with cluster-embedded's stack.py)
# The script fails only when a build or a tool fails; nothing is enforced.
#
# Usage: cluster-embassy/firmware/measure.sh        (from anywhere)
set -euo pipefail
cd "$(dirname "$0")"

STACK_PY=../../cluster-embedded/firmware/stack.py
source ../../cluster-embedded/firmware/tools.sh

ELF="target/$TARGET/release/cluster-embassy-firmware"
KIB() { awk -v b="$1" 'BEGIN { printf "%.1f KiB", b / 1024 }'; }

measure() {
  local label=$1; shift
  cargo build --release --quiet "$@"
  local sections text rodata data bss
  sections=$("$SIZE" -A "$ELF")
  sec() { echo "$sections" | awk -v s="$1" '$1 == s { print $2; found = 1 } END { if (!found) print 0 }'; }
  text=$(sec .text); rodata=$(sec .rodata); data=$(sec .data); bss=$(sec .bss)
  local flash=$((text + rodata)) statics=$((data + bss))
  local hex device
  hex=$("$NM" -S -C "$ELF" | awk '/cluster_embassy_firmware::DEVICE/ { print $2 }')
  device=$((16#${hex:-0}))
  local disasm
  disasm=$("$OBJDUMP" -d --no-show-raw-insn -C "$ELF")
  local executor tasks deepest
  executor=$(echo "$disasm" | python3 "$STACK_PY" main | awk 'NR == 1 { print $(NF - 1) }')
  tasks=$(echo "$disasm" | grep -oE '^[0-9a-f]+ <embassy_executor::raw::TaskStorage\$LT\$F\$GT\$::poll::h[0-9a-f]+>:' \
    | sed 's/^[0-9a-f]* <//; s/>:$//' | while read -r task; do
      echo "$disasm" | python3 "$STACK_PY" "$task" | awk 'NR == 1 { print $(NF - 1) }'
    done | sort -n -r | tr '\n' ' ')
  deepest=$(echo "$tasks" | awk '{ print $1 }')

  echo "== $label"
  printf '  flash  .text + .rodata      %7d B  %s\n' "$flash" "$(KIB "$flash")"
  if [ "$data" -gt 0 ]; then
    printf '         note: .data is %d B, so that much is copied from flash at start-up\n' "$data"
  fi
  printf '  RAM    .data + .bss          %7d B  %s\n' "$statics" "$(KIB "$statics")"
  printf '         without the LAN9118 driver'"'"'s frame buffers (%d B): %d B  %s\n' \
    "$device" "$((statics - device))" "$(KIB $((statics - device)))"
  printf '         stack: executor from main %d B + deepest task poll %d B = %d B   (each task poll: %s)\n' \
    "$executor" "$deepest" "$((executor + deepest))" "$tasks"
  echo "  statics:"
  "$NM" -S -C "$ELF" | python3 -c '
import re, sys
rows = []
for line in sys.stdin:
    p = line.split(None, 3)
    if len(p) == 4 and p[2] in "bBdD" and int(p[1], 16):
        rows.append((int(p[1], 16), re.sub(r"::h[0-9a-f]{16}$", "", p[3].strip())))
for size, name in sorted(rows, reverse=True):
    print(f"    {size:7d}  {name}")
'
}

measure "default (cargo build --release): every command, 32 services, DATA = 512, 4 events, 4 answers, UDP 8 x 2048/2048 B"
measure "sealed (--features sealed): the default with a key ring set before the start (XChaCha20-Poly1305, replay table of 32 senders)" --features sealed
