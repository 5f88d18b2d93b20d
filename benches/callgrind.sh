#!/usr/bin/env bash
# Instruction counts per operation for the codec paths and the node's heartbeat path, with
# valgrind's callgrind: exact and repeatable on a noisy machine (unlike wall-clock time).
# Each path runs N and 2N times; the difference divided by N removes start-up costs.
# Usage: benches/callgrind.sh [N [PATH...]]   (N default 20000; PATHs default to the list below)
#   e.g. benches/callgrind.sh 5000 encode-response postcard-encode-response
#   the four decodes of a frame, each codec with and without UTF-8 checks:
#   benches/callgrind.sh 5000 decode-query postcard-borrowed-decode-query \
#     cluster-text-decode-query postcard-decode-query
#   (every path: benches/examples/codec_instructions.rs)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
shift $(($# > 0 ? 1 : 0))
paths=("$@")
if [ ${#paths[@]} -eq 0 ]; then
  paths=(encode-heartbeat decode-heartbeat encode-query decode-query
    encode-event-1k decode-event-1k handle-heartbeat-1000)
fi
cargo build --release -q -p cluster-benches --example codec_instructions
bin=target/release/examples/codec_instructions
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 \
    | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf '%-32s %12s\n' path instructions/op
for path in "${paths[@]}"; do
  one=$(count "$path" "$n")
  two=$(count "$path" $((2 * n)))
  printf '%-32s %12d\n' "$path" $(((two - one) / n))
done
