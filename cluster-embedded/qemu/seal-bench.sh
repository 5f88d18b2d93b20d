#!/usr/bin/env bash
# What a frame costs a node on the board, plain and sealed: builds the firmware's seal-bench
# (src/bin/seal-bench.rs: a sender node's heartbeats handed to a receiver node, 32 services,
# DATA = 512) without and with the feature `sealed`, runs each on QEMU's mps2-an386 with
# `-icount shift=0` (a nanosecond is one instruction; the board's 25 MHz timer ticks every 40)
# and prints its line: the instructions per frame of the receiver's `handle_datagram` and of
# the sender's `poll_transmit`, averaged over 200 frames. The sealed minus the plain figure is
# what sealing costs a frame on a Cortex-M4 (instructions, not cycles).
# Usage: cluster-embedded/qemu/seal-bench.sh   (as root it installs qemu-system-arm if missing)
set -euo pipefail
firmware="$(cd "$(dirname "$0")/../firmware" && pwd)"
TARGET=thumbv7em-none-eabihf
if ! command -v qemu-system-arm >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { echo "seal-bench.sh: qemu-system-arm is missing" >&2; exit 2; }
  { apt-get install -y -qq qemu-system-arm || { apt-get update -qq && apt-get install -y -qq qemu-system-arm; }; } >/dev/null
fi
rustup target add "$TARGET" >/dev/null 2>&1 || true
for variant in plain sealed; do
  features=()
  if [ "$variant" = sealed ]; then features=(--features sealed); fi
  target_dir="$firmware/target/seal-bench-$variant"
  (cd "$firmware" && cargo build --release --quiet --bin seal-bench --target-dir "$target_dir" "${features[@]}")
  timeout 300 qemu-system-arm -M mps2-an386 -display none -monitor none -serial none \
    -icount shift=0 -semihosting-config enable=on,target=native \
    -kernel "$target_dir/$TARGET/release/seal-bench"
done
