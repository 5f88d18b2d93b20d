#!/usr/bin/env bash
# Builds the firmware (thumbv7em-none-eabihf, release) in its variants (default, small, sealed,
# and small with sealed) and prints its flash and RAM figures. These are the images that run:
# cluster-embedded/qemu/run.sh boots the same build (same features, profile and source) on
# QEMU's mps2-an386 board, and the qemu test drives them; nothing is measured that does not run.
#   flash = .text + .rodata (what the issue's goal counts; the vector table and the .data
#           image are printed beside it)
#   RAM   = .data + .bss (every static, per symbol) + a stack estimate from the disassembly
#           (stack.py: the deepest call path of the main loop, and of start-up: the paths
#           through cluster_firmware::start, which starts the node in place)
#   .text by source: the bytes of the AEAD's crates (RustCrypto's XChaCha20-Poly1305) and of
#           cluster_core::seal, inlined code included (by_source.py, from the debug info;
#           needs llvm-symbolizer). Zero in the variants without `sealed`.
# Goals (issue 6): flash <= 64 KiB, static RAM <= 32 KiB including smoltcp's buffers, for the
# default variant (the sealed one is reported against them too). They are reported, not
# enforced: the script fails only when a build or a tool fails.
#
# Usage: cluster-embedded/firmware/measure.sh        (from anywhere)
set -euo pipefail
cd "$(dirname "$0")"

TARGET=thumbv7em-none-eabihf
if command -v rustup >/dev/null 2>&1; then
  rustup target add "$TARGET" >/dev/null 2>&1 || true
fi

# llvm-size and llvm-objdump: on PATH, from rustup's llvm-tools, or Debian's llvm package.
find_tool() {
  local name=$1 dir
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
  for candidate in /usr/bin/"$name"-[0-9]*; do
    if [ -x "$candidate" ]; then echo "$candidate"; return 0; fi
  done
  dir="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin"
  if [ -x "$dir/$name" ]; then echo "$dir/$name"; return 0; fi
  return 1
}
if ! find_tool llvm-size >/dev/null || ! find_tool llvm-objdump >/dev/null; then
  rustup component add llvm-tools >/dev/null 2>&1 || true
fi
if ! find_tool llvm-size >/dev/null || ! find_tool llvm-objdump >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's llvm for llvm-size and llvm-objdump" >&2
    apt-get install -y -qq llvm >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq llvm >/dev/null; }
  fi
fi
SIZE=$(find_tool llvm-size) || { echo "llvm-size not found" >&2; exit 1; }
OBJDUMP=$(find_tool llvm-objdump) || { echo "llvm-objdump not found" >&2; exit 1; }
NM=$(find_tool llvm-nm) || NM=""
SYMBOLIZER=$(find_tool llvm-symbolizer) || SYMBOLIZER=""

ELF="target/$TARGET/release/cluster-firmware"
KIB() { awk -v b="$1" 'BEGIN { printf "%.1f KiB", b / 1024 }'; }

measure() {
  local label=$1; shift
  cargo build --release --quiet "$@"
  local sections text rodata vectors data bss
  sections=$("$SIZE" -A "$ELF")
  sec() { echo "$sections" | awk -v s="$1" '$1 == s { print $2; found = 1 } END { if (!found) print 0 }'; }
  text=$(sec .text); rodata=$(sec .rodata); vectors=$(sec .vector_table)
  data=$(sec .data); bss=$(sec .bss)
  local flash=$((text + rodata)) statics=$((data + bss))
  local device=0
  if [ -n "$NM" ]; then
    local hex
    hex=$("$NM" -S -C "$ELF" | awk '/cluster_firmware::DEVICE/ { print $2 }')
    device=$((16#${hex:-0}))
  fi
  local disasm
  disasm=$("$OBJDUMP" -d --no-show-raw-insn -C "$ELF")
  local loop_stack init_stack
  loop_stack=$(echo "$disasm" | python3 stack.py main cluster_firmware::start | awk 'NR == 1 { print $(NF - 1) }')
  init_stack=$(echo "$disasm" | python3 stack.py main --through=cluster_firmware::start | awk 'NR == 1 { print $(NF - 1) }')

  echo "== $label"
  printf '  flash  .text + .rodata      %7d B  %s   (goal 64 KiB: %s)\n' "$flash" "$(KIB "$flash")" \
    "$([ "$flash" -le 65536 ] && echo met || echo 'not met')"
  printf '         + vector table, .data image  %d B in all\n' "$((flash + vectors + data))"
  if [ -n "$SYMBOLIZER" ]; then
    local aead seal
    read -r _ aead _ seal < <(echo "$disasm" | python3 by_source.py "$SYMBOLIZER" "$ELF" | tail -n 1)
    printf '         of .text: the AEAD (XChaCha20-Poly1305 crates) %d B, cluster_core::seal %d B\n' \
      "$aead" "$seal"
  fi
  if [ "$data" -gt 0 ]; then
    # The node (Node::empty) and the other statics start as zero bits and belong in .bss; a
    # static with non-zero initial bytes also takes its size in flash.
    printf '         note: .data is %d B, so that much is copied from flash at start-up\n' "$data"
  fi
  printf '  RAM    .data + .bss          %7d B  %s\n' "$statics" "$(KIB "$statics")"
  printf '         without the LAN9118 driver'"'"'s frame buffers (%d B): %d B  %s   (goal 32 KiB: %s)\n' \
    "$device" "$((statics - device))" "$(KIB $((statics - device)))" \
    "$([ $((statics - device)) -le 32768 ] && echo met || echo 'not met')"
  printf '         stack, main loop      %7d B   (start-up, through Node::start: %d B)\n' "$loop_stack" "$init_stack"
  local peak=$((loop_stack > init_stack ? loop_stack : init_stack))
  printf '         static + deepest stack (main loop or start-up): %d B  %s\n' \
    "$((statics - device + peak))" "$(KIB $((statics - device + peak)))"
  if [ -n "$NM" ]; then
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
  fi
}

measure "default (cargo build --release): every command, DATA = 512, EVENTS = 4, UDP 8 x 2048/2048 B"
measure "small (--features small): answers queries only, DATA = 256, EVENTS = 1, UDP 4 x 1536/1024 B" --features small
measure "sealed (--features sealed): the default with a key ring set before start (XChaCha20-Poly1305, replay table of 32 senders)" --features sealed
measure "small, sealed (--features small,sealed): the small variant with the key ring" --features small,sealed
