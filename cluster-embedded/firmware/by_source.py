#!/usr/bin/env python3
"""Bytes of .text per source crate.

Usage: llvm-objdump -d --no-show-raw-insn ELF | by_source.py LLVM-SYMBOLIZER ELF

Each instruction (and literal pool word) is charged to the code it was written in, as the
debug info says: of its inline frames (innermost first), the first one outside Rust's own
library, so that `u32::rotate_left` inlined into chacha20's rounds counts as chacha20, and
what LTO folded into a caller still counts for the crate it came from. Instructions whose
every frame is in Rust's library count as `core (rustc library)`; those without debug info
as `?`. Files are grouped by crate (a registry path's `<crate>-<version>` directory, a
workspace crate's directory); the `cluster-core/src/seal` module has a group of its own, and
its AEAD (`seal/aead.rs`) another.

Prints `bytes group`, largest first, then `aead N seal M`: the bytes of XChaCha20-Poly1305
(`cluster_core::seal`'s own `aead.rs`; RustCrypto's crates, if an image links them) and of the
rest of `cluster_core::seal`.
"""
import json
import re
import subprocess
import sys

# XChaCha20-Poly1305: the core's own (seal/aead.rs), or the RustCrypto crates it replaced.
AEAD = {
    "cluster-core seal/aead.rs",
    "chacha20",
    "poly1305",
    "chacha20poly1305",
    "cipher",
    "aead",
    "universal-hash",
    "crypto-common",
    "inout",
    "zeroize",
    "subtle",
    "generic-array",
    "hybrid-array",
    "opaque-debug",
    "cpufeatures",
    "cmov",
    "ctutils",
    "block-buffer",
}

INSN = re.compile(r"^\s*([0-9a-f]+):\s")
RUST_LIBRARY = "core (rustc library)"


def group(path):
    if "/cluster-core/src/seal/aead.rs" in path:
        return "cluster-core seal/aead.rs"
    if "/cluster-core/src/seal" in path:
        return "cluster-core seal"
    if "/firmware/src/" in path:
        return "cluster-firmware"
    if "compiler_builtins" in path:
        return "compiler_builtins"
    m = re.search(r"/registry/src/[^/]+/([A-Za-z0-9_-]+?)-\d+\.\d+[^/]*/", path)
    if m:
        return m.group(1)
    if path.startswith("/rustc/") or "/lib/rustlib/" in path:
        return RUST_LIBRARY
    m = re.search(r"/(cluster-[a-z]+)/", path)
    if m:
        return m.group(1)
    return path


def attribute(frames):
    """The group of one address, from its inline frames (innermost first)."""
    groups = [group(f["FileName"]) for f in frames if f.get("FileName")]
    for name in groups:
        if name != RUST_LIBRARY:
            return name
    return groups[0] if groups else "?"


def text_sizes(symbolizer, elf, disassembly, name_of):
    """Bytes of .text per name: each instruction address of `disassembly` (objdump lines)
    symbolized with its inlining chain, whose frames `name_of` turns into a name."""
    addrs = sorted({int(m.group(1), 16) for m in map(INSN.match, disassembly) if m})
    # Each address runs to the next one (at most 4 bytes for the last).
    lengths = [b - a for a, b in zip(addrs, addrs[1:])] + [4]
    out = subprocess.run(
        [symbolizer, "--obj=" + elf, "--inlining", "--output-style=JSON"],
        input="".join(f"0x{a:x}\n" for a in addrs),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    sizes = {}
    for line, length in zip(out.splitlines(), lengths):
        if length <= 0 or length >= 4096:
            continue
        name = name_of(json.loads(line).get("Symbol", []))
        sizes[name] = sizes.get(name, 0) + length
    return sizes


def main():
    symbolizer, elf = sys.argv[1], sys.argv[2]
    sizes = text_sizes(symbolizer, elf, sys.stdin, attribute)
    for name, size in sorted(sizes.items(), key=lambda kv: -kv[1]):
        print(f"{size:7d}  {name}")
    aead = sum(size for name, size in sizes.items() if name in AEAD)
    seal = sizes.get("cluster-core seal", 0)
    print(f"aead {aead} seal {seal}")


if __name__ == "__main__":
    main()
