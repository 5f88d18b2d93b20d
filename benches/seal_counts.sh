#!/usr/bin/env bash
# Instructions per sealed frame, with valgrind's callgrind: sealing (the sender's
# `poll_transmit`) and opening (the receiver's `handle_datagram`: the AEAD, the envelope, the
# replay window and the heartbeat's handling), sealed and plain, for a node of the firmware's
# size (32 services, DATA = 512). Each runs N and 2N frames; the difference divided by N
# removes start-up costs. The sealed minus the plain figure is what sealing costs a frame.
# Usage: benches/seal_counts.sh [N]   (default 2000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
cargo build --release -q -p cluster-benches --example seal_instructions
bin=target/release/examples/seal_instructions
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "--toggle-collect=$1" "$bin" "$2" "$3" 2>&1 \
    | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf '%-10s %-8s %12s\n' path mode instructions/frame
for fn in transmit receive; do
  for mode in plain sealed; do
    one=$(count "seal_instructions::$fn" "$mode" "$n")
    two=$(count "seal_instructions::$fn" "$mode" $((2 * n)))
    printf '%-10s %-8s %12d\n' "$fn" "$mode" $(((two - one) / n))
  done
done
