#!/usr/bin/env bash
# Builds the firmware (thumbv7em-none-eabihf, release) in its variants and prints their flash
# and RAM figures. Two images, both with the smoltcp driver, 32 services, every command:
#   the node image (src/bin/node-image.rs): the node and the driver on a loopback device
#           standing in for the MAC driver, SysTick as the clock, nothing else. This is the
#           measurement issue 14 was filed against and the one its goals apply to (variants
#           `default` and `sealed`): what the cluster costs a firmware.
#   the board image (src/main.rs): the node image's application on QEMU's mps2-an386 board,
#           with the board's code (LAN9118 driver, timer clock, UART console, JSON lines,
#           semihosting options and key file): the image cluster-embedded/qemu/run.sh boots
#           and the qemu test drives. Reported beside it (variants `board`, `board-small`,
#           `board-sealed`, `board-small-sealed`), without goals: its extra ~9.5 KB are the
#           application's, which another board or product replaces with its own.
#   flash = .text + .rodata (what the goals count; the vector table and the .data image are
#           printed beside it)
#   RAM   = .data + .bss (every static, per symbol), less the device's frame buffers (the
#           static `DEVICE`, found by name with llvm-nm: the loopback device, or the LAN9118
#           driver): the MAC driver's buffers belong to the board, not to the cluster.
#           smoltcp's interface, socket set and UDP buffers count. A stack estimate from the
#           disassembly comes beside it (stack.py: the deepest call path of the main loop,
#           and of start-up: the paths through the image's `start`, which starts the node
#           in place)
#   .text by source: the bytes of the AEAD (XChaCha20-Poly1305, cluster_core's seal/aead.rs)
#           and of the rest of cluster_core::seal,
#           inlined code included (by_source.py, from the debug info; needs llvm-symbolizer).
#           Zero in the variants without `sealed`.
#   layout: the node image's node and driver by field, and their largest parts (layout.py,
#           from the debug info; needs llvm-dwarfdump): where the static RAM goes.
# Goals (issue 14; `goals.py` holds them, for the node image): default flash <= 48 KiB and
# static RAM <= 24 KiB, sealed flash <= 64 KiB and static RAM <= 32 KiB; the main loop's stack
# not above 11,740 B and start-up's not above 10 KiB.
#
# Usage: cluster-embedded/firmware/measure.sh           (from anywhere) the figures, as text
#        cluster-embedded/firmware/measure.sh --json    the same text on stderr, and on stdout
#            one JSON object per variant and line: {"variant", "flash", "ram", "stack_main",
#            "stack_start", "data"} (bytes; "ram" is the static RAM above, without the device;
#            "data" the .data section, whose image takes flash too: 0 when every static starts
#            as zero bits, as the node must)
#        cluster-embedded/firmware/measure.sh --check   as --json, then goals.py checks the
#            figures against the goals: prints each with its goal, fails when an enforced
#            goal is exceeded (the CI gate, `.ci/run`)
# It fails when a build or a tool fails (and, with --check, on an enforced goal).
set -euo pipefail
cd "$(dirname "$0")"

MODE=text
case "${1:-}" in
  --json) MODE=json ;;
  --check) MODE=check ;;
  "") ;;
  *) echo "usage: $0 [--json | --check]" >&2; exit 2 ;;
esac
if [ "$MODE" = check ]; then
  # The figures (JSON lines) go through goals.py; the text report stays on stderr.
  # pipefail: a failed measurement fails the check too.
  bash "./$(basename "$0")" --json | python3 goals.py
  exit 0
fi
if [ "$MODE" = json ]; then
  # fd 3: the JSON lines; everything else (the text report, cargo) on stderr.
  exec 3>&1 1>&2
fi

source ./tools.sh

KIB() { awk -v b="$1" 'BEGIN { printf "%.1f KiB", b / 1024 }'; }

# measure VARIANT BIN LABEL [CARGO ARGS]: builds the binary BIN and prints its figures.
measure() {
  local variant=$1 bin=$2 label=$3; shift 3
  local elf="target/$TARGET/release/$bin" crate=${bin//-/_}
  cargo build --release --quiet --bin "$bin" "$@"
  local sections text rodata vectors data bss
  sections=$("$SIZE" -A "$elf")
  sec() { echo "$sections" | awk -v s="$1" '$1 == s { print $2; found = 1 } END { if (!found) print 0 }'; }
  text=$(sec .text); rodata=$(sec .rodata); vectors=$(sec .vector_table)
  data=$(sec .data); bss=$(sec .bss)
  local flash=$((text + rodata)) statics=$((data + bss))
  # The device's buffers are left out of the RAM figure; the static must be named DEVICE.
  local hex device
  hex=$("$NM" -S -C "$elf" | awk -v crate="$crate" '$4 ~ "^" crate "::DEVICE(::h[0-9a-f]+)?$" { print $2 }')
  if [ -z "$hex" ]; then
    echo "no static $crate::DEVICE in $elf: the RAM figure leaves out exactly it" >&2
    exit 1
  fi
  device=$((16#$hex))
  local disasm
  disasm=$("$OBJDUMP" -d --no-show-raw-insn -C "$elf")
  local loop_stack init_stack
  loop_stack=$(echo "$disasm" | python3 stack.py main "$crate::start" | awk 'NR == 1 { print $(NF - 1) }')
  init_stack=$(echo "$disasm" | python3 stack.py main "--through=$crate::start" | awk 'NR == 1 { print $(NF - 1) }')

  if [ "$MODE" = json ]; then
    printf '{"variant": "%s", "flash": %d, "ram": %d, "stack_main": %d, "stack_start": %d, "data": %d}\n' \
      "$variant" "$flash" "$((statics - device))" "$loop_stack" "$init_stack" "$data" >&3
  fi
  echo "== $label"
  printf '  flash  .text + .rodata      %7d B  %s\n' "$flash" "$(KIB "$flash")"
  printf '         + vector table, .data image  %d B in all\n' "$((flash + vectors + data))"
  if [ -n "$SYMBOLIZER" ]; then
    local aead seal
    read -r _ aead _ seal < <(echo "$disasm" | python3 by_source.py "$SYMBOLIZER" "$elf" | tail -n 1)
    printf '         of .text: the AEAD (XChaCha20-Poly1305, seal/aead.rs) %d B, the rest of cluster_core::seal %d B\n' \
      "$aead" "$seal"
  fi
  if [ "$data" -gt 0 ]; then
    # The node (Node::empty) and the other statics start as zero bits and belong in .bss; a
    # static with non-zero initial bytes also takes its size in flash.
    printf '         note: .data is %d B, so that much is copied from flash at start-up\n' "$data"
  fi
  printf '  RAM    .data + .bss          %7d B  %s\n' "$statics" "$(KIB "$statics")"
  printf '         without the device'"'"'s frame buffers (%d B): %d B  %s\n' \
    "$device" "$((statics - device))" "$(KIB $((statics - device)))"
  printf '         stack, main loop      %7d B   (start-up, through Node::start: %d B)\n' "$loop_stack" "$init_stack"
  local peak=$((loop_stack > init_stack ? loop_stack : init_stack))
  printf '         static + deepest stack (main loop or start-up): %d B  %s\n' \
    "$((statics - device + peak))" "$(KIB $((statics - device + peak)))"
  echo "  statics:"
  "$NM" -S -C "$elf" | python3 -c '
import re, sys
rows = []
for line in sys.stdin:
    p = line.split(None, 3)
    if len(p) == 4 and p[2] in "bBdD" and int(p[1], 16):
        rows.append((int(p[1], 16), re.sub(r"::h[0-9a-f]{16}$", "", p[3].strip())))
for size, name in sorted(rows, reverse=True):
    print(f"    {size:7d}  {name}")
'
  if [ -n "$DWARFDUMP" ] && [ "$bin" = node-image ]; then
    # The node's and the driver's statics by field, and their largest parts (layout.py).
    local parts=(Node Core Registry Service Outbox Direct Driver)
    if [[ " $* " == *" sealed "* ]]; then parts+=(Sealer); fi
    echo "  where the node's and the driver's bytes go (layout.py, from the debug info):"
    python3 layout.py "$DWARFDUMP" "$elf" "${parts[@]}" | sed 's/^/    /'
  fi
}

# The node image: the goals' variants.
measure default node-image "default (the node image, --bin node-image): every command, DATA = 512, EVENTS = 4, UDP 8 x 2048/2048 B"
measure sealed node-image "sealed (the node image, --features sealed): the default with a key ring set before start (XChaCha20-Poly1305, replay table of 32 senders)" --features sealed
# The board image: reported beside it.
measure board cluster-firmware "board (the board image, --bin cluster-firmware): the default on the mps2-an386 board with its console"
measure board-small cluster-firmware "board-small (--features small): answers queries only, DATA = 256, EVENTS = 1, UDP 4 x 1536 B in, TRANSMIT_BUF out" --features small
measure board-sealed cluster-firmware "board-sealed (--features sealed): the board image with the key ring of --key-file" --features sealed
measure board-small-sealed cluster-firmware "board-small-sealed (--features small,sealed): the small board image with the key ring" --features small,sealed
