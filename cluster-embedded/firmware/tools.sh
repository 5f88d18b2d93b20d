# Sourced by the firmware measurements (this directory's measure.sh and
# cluster-embassy/firmware/measure.sh): the thumbv7em target and the LLVM tools they read the
# ELF with, installed when missing (rustup's llvm-tools, or Debian's llvm when run as root).
# Sets TARGET, SIZE, OBJDUMP, NM, SYMBOLIZER and DWARFDUMP (each of the last two empty when
# llvm-symbolizer or llvm-dwarfdump is missing).

TARGET=thumbv7em-none-eabihf
if command -v rustup >/dev/null 2>&1; then
  rustup target add "$TARGET" >/dev/null 2>&1 || true
fi

# A tool on PATH, as Debian's versioned name, or from rustup's llvm-tools.
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
have_tools() {
  find_tool llvm-size >/dev/null && find_tool llvm-objdump >/dev/null && find_tool llvm-nm >/dev/null
}
if ! have_tools; then
  rustup component add llvm-tools >/dev/null 2>&1 || true
fi
if ! have_tools; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's llvm for llvm-size, llvm-objdump and llvm-nm" >&2
    apt-get install -y -qq llvm >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq llvm >/dev/null; }
  fi
fi
SIZE=$(find_tool llvm-size) || { echo "llvm-size not found" >&2; exit 1; }
OBJDUMP=$(find_tool llvm-objdump) || { echo "llvm-objdump not found" >&2; exit 1; }
NM=$(find_tool llvm-nm) || { echo "llvm-nm not found" >&2; exit 1; }
SYMBOLIZER=$(find_tool llvm-symbolizer) || SYMBOLIZER=""
DWARFDUMP=$(find_tool llvm-dwarfdump) || DWARFDUMP=""
