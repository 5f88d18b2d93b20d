#!/usr/bin/env bash
# Boots the cluster firmware (cluster-embedded/firmware, release) on QEMU's emulated MPS2
# AN386 board (Cortex-M4F, SMSC LAN9220 Ethernet) attached to an existing TAP device, and
# prints the node's events on stdout as JSON lines, those of `cluster join --json`.
#
#   cluster-embedded/qemu/run.sh --tap TAP --ip ADDR/PREFIX [--tags "a b"] [--answer TEXT]
#       [--key-file KEYS] [--mac MAC] [--port N] [--heartbeat DUR] [--ttl DUR]
#       [--query-every SECONDS] [--small] [--embassy] [--icount] [--build-only]
#
# The options reach the firmware at run time, on the semihosting command line: one image
# serves every node. --key-file boots the sealed image (the default one has no sealing code);
# the firmware reads the file through semihosting, and again on the console command `keys`
# (key rotation). --small boots the small variant; --embassy boots cluster-embassy's firmware
# (embassy executor and embassy-net on the same board support) instead of the smoltcp one. The MAC (the node's hid) defaults to 02:c1
# followed by the four bytes of the address. DUR is N, Nms or Ns (milliseconds by default).
#
# Standard input is the firmware's console: one command per line, `leave` (sends the
# disconnect, then QEMU exits 0), `stats` (a stats line: counters, uptime, the stack's
# high-water mark), `query TEXT` (queries everyone), `keys` (reads the key file again).
# SIGTERM or SIGINT stops QEMU at once, like a power cut: peers see the node expire.
#
# Run as root, it installs what it lacks (Debian's qemu-system-arm, the rustup target).
# --icount runs QEMU with `-icount shift=0`: one instruction is one nanosecond of the board's
# time while it runs (idle time still follows the host's clock), so the `stats` line's
# `rx_poll_ticks` (40 ns each) count the instructions spent on received frames.
# --build-only builds the image and prints its path.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
firmware="$here/../firmware"
image=cluster-firmware
TARGET=thumbv7em-none-eabihf

usage() { sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
die() { echo "run.sh: $*" >&2; exit 2; }

tap="" ip="" tags="" answer="" key_file="" mac="" port="" heartbeat="" ttl="" every=""
small=0 embassy=0 build_only=0 icount=()
while [ $# -gt 0 ]; do
  case "$1" in
    --tap) tap=${2:?}; shift 2 ;;
    --ip) ip=${2:?}; shift 2 ;;
    --tags) tags=${2?}; shift 2 ;;
    --answer) answer=${2?}; shift 2 ;;
    --key-file) key_file=${2:?}; shift 2 ;;
    --mac) mac=${2:?}; shift 2 ;;
    --port) port=${2:?}; shift 2 ;;
    --heartbeat) heartbeat=${2:?}; shift 2 ;;
    --ttl) ttl=${2:?}; shift 2 ;;
    --query-every) every=${2:?}; shift 2 ;;
    --small) small=1; shift ;;
    --embassy) embassy=1; shift ;;
    --icount) icount=(-icount shift=0); shift ;;
    --build-only) build_only=1; shift ;;
    -h|--help) usage ;;
    *) die "unknown option $1 (--help lists them)" ;;
  esac
done

# What the run needs, installed when missing (as root).
if ! command -v qemu-system-arm >/dev/null 2>&1 && [ "$build_only" = 0 ]; then
  [ "$(id -u)" = 0 ] || die "qemu-system-arm is missing (apt-get install qemu-system-arm)"
  echo "run.sh: installing qemu-system-arm" >&2
  { apt-get install -y -qq qemu-system-arm || { apt-get update -qq && apt-get install -y -qq qemu-system-arm; }; } >/dev/null 2>&1 \
    || die "cannot install qemu-system-arm"
fi
if command -v rustup >/dev/null 2>&1; then
  rustup target list --installed 2>/dev/null | grep -qx "$TARGET" || rustup target add "$TARGET" >/dev/null 2>&1
fi

# The variant, built in a target directory of its own (variants can boot side by side).
features=() variant=default
if [ "$embassy" = 1 ]; then
  [ "$small" = 0 ] || die "--small has no embassy variant"
  firmware="$here/../../cluster-embassy/firmware" image=cluster-embassy-firmware variant=embassy
fi
if [ -n "$key_file" ]; then features+=(sealed); variant="$variant-sealed"; fi
if [ "$small" = 1 ]; then features+=(small); variant="small-$variant"; fi
target_dir="$firmware/target/qemu-$variant"
feature_args=()
if [ ${#features[@]} -gt 0 ]; then feature_args=(--features "$(IFS=,; echo "${features[*]}")"); fi
(cd "$firmware" && cargo build --release --quiet --target-dir "$target_dir" --bin "$image" "${feature_args[@]}") >&2
elf="$target_dir/$TARGET/release/$image"
if [ "$build_only" = 1 ]; then echo "$elf"; exit 0; fi

[ -n "$tap" ] || die "--tap TAP is required"
[ -n "$ip" ] || die "--ip ADDR/PREFIX is required"
[[ "$ip" =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)\.([0-9]+)/[0-9]+$ ]] || die "bad --ip $ip: A.B.C.D/NN expected"
if [ -z "$mac" ]; then
  mac=$(printf '02:c1:%02x:%02x:%02x:%02x' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" \
    "${BASH_REMATCH[3]}" "${BASH_REMATCH[4]}")
fi

millis() {
  case "$1" in
    *ms) echo "${1%ms}" ;;
    *s) echo $(( ${1%s} * 1000 )) ;;
    *) echo "$1" ;;
  esac
}

# The firmware's command line. QEMU joins the arg= values with spaces, and a comma inside a
# value is written twice; tags go as one comma-separated word, the answer as hex.
args=(cluster-firmware --ip "$ip")
if [ -n "$tags" ]; then
  joined=$(echo "$tags" | tr ' ,' '\n\n' | sed '/^$/d' | paste -sd, -)
  args+=(--tags "$joined")
fi
if [ -n "$answer" ]; then args+=(--answer-hex "$(printf '%s' "$answer" | od -An -v -tx1 | tr -d ' \n')"); fi
if [ -n "$key_file" ]; then
  key_path=$(realpath "$key_file")
  [[ "$key_path" != *[[:space:]]* ]] || die "the key file's path must not contain spaces"
  args+=(--key-file "$key_path")
fi
if [ -n "$port" ]; then args+=(--port "$port"); fi
if [ -n "$heartbeat" ]; then args+=(--heartbeat-ms "$(millis "$heartbeat")"); fi
if [ -n "$ttl" ]; then args+=(--ttl-ms "$(millis "$ttl")"); fi
if [ -n "$every" ]; then args+=(--query-every "$every"); fi
semihosting="enable=on,target=native"
for arg in "${args[@]}"; do semihosting+=",arg=${arg//,/,,}"; done

exec qemu-system-arm -M mps2-an386 -display none -monitor none -serial stdio "${icount[@]}" \
  -nic "tap,ifname=$tap,script=no,downscript=no,model=lan9118,mac=$mac" \
  -semihosting-config "$semihosting" -kernel "$elf"
