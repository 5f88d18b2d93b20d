#!/usr/bin/env bash
# Exact, repeatable counts per operation for the loopback paths of `benches/benches/loopback.rs`
# (wall-clock figures on a shared machine are not): user-space instructions with valgrind's
# callgrind (each path runs N and 2N times; the difference divided by N removes start-up),
# and, with `perf` and root, syscalls and packets on `lo` per operation. The `smol_` paths are
# the same with the smol adapter (async-io's reactor waits with `epoll_pwait`). `echo` and
# `tcp_echo` are the bare UDP and TCP round trips a query is compared with. `events_queued`
# sends the events with `Handle::send_queued` (no wait for each send's verdict).
# Usage: benches/loopback_counts.sh [N]   (default 2000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
cargo build --release -q -p cluster-benches --example loopback_ops
bin=target/release/examples/loopback_ops
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 \
    | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf '%-18s %16s\n' path instructions/op
for path in events events_queued query echo tcp_echo smol_events smol_events_queued smol_query; do
  one=$(count "$path" "$n")
  two=$(count "$path" $((2 * n)))
  printf '%-18s %16d\n' "$path" $(((two - one) / n))
done
if command -v perf >/dev/null; then
  events='syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom,syscalls:sys_enter_recvmmsg,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_epoll_ctl,syscalls:sys_enter_futex,net:net_dev_xmit'
  for path in events events_queued query udp echo tcp_echo smol_events smol_events_queued smol_query smol_udp smol_echo; do
    m=$((10 * n))
    echo "$path x $m:"
    perf stat -x, -e "$events" "$bin" "$path" "$m" 2>&1 >/dev/null \
      | awk -F, -v m="$m" '$3 ~ /:/ {printf "  %-32s %6.2f per op\n", $3, $1 / m}'
  done
fi
