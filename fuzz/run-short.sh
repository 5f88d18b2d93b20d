#!/usr/bin/env bash
# A short fuzz run of every target, for CI: `fuzz/run-short.sh [SECONDS]` (default 30 per
# target). Stable Rust is enough: the targets are built without a sanitizer
# (`--sanitizer none`), with libFuzzer's coverage instrumentation.
#
# The committed corpus/<target>/ seeds the run; new inputs go to a scratch folder, so the tree
# is not modified. A crash, a panic, a timeout (an input running over 10 s) or an
# out-of-memory stops the run with a non-zero exit; libFuzzer leaves the input in
# artifacts/<target>/ and its log is printed. Replay it with
#   cargo test --manifest-path fuzz/Cargo.toml --test replay
# or `cargo fuzz run --sanitizer none <target> fuzz/artifacts/<target>/<file>`.
set -euo pipefail

seconds="${1:-30}"
targets=(decode stream tcl_list node sealed)
fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$fuzz_dir"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "run-short: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
cargo fuzz --version

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

# Build once (release, debug assertions on), then run each target.
cargo fuzz build --sanitizer none

status=0
for target in "${targets[@]}"; do
    mkdir -p "$scratch/$target"
    log="$scratch/$target.log"
    echo "run-short: fuzzing $target for ${seconds}s ($(date +%T))"
    if cargo fuzz run --sanitizer none "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1; then
        grep -E 'DONE|^Done [0-9]+ runs|^stat::(number_of_executed_units|peak_rss_mb)' "$log" || true
    else
        echo "run-short: $target FAILED; the failure (a script's Debug dump can be long):"
        grep -E -m 5 -A 2 "panicked at|^==[0-9]+== ERROR|deadly signal|ALARM|out-of-memory" "$log" || true
        echo "run-short: the input, in hex:"
        for artifact in "artifacts/$target"/*; do
            [ -f "$artifact" ] && echo "$artifact: $(od -An -v -tx1 "$artifact" | tr -d ' \n')"
        done
        echo "run-short: the log's last 40 lines:"
        tail -n 40 "$log"
        ls -l "artifacts/$target" 2>/dev/null || true
        status=1
    fi
done
if [ "$status" -eq 0 ]; then
    echo "run-short: ${#targets[@]} targets fuzzed ${seconds}s each, no crash"
fi
exit "$status"
