#!/usr/bin/env python3
"""Bytes of .text per source file (and, with --functions, per function written there).

Usage: llvm-objdump -d --no-show-raw-insn ELF | by_file.py LLVM-SYMBOLIZER ELF [--functions]

The finer grain of `by_source.py`, with its rule: each instruction (and literal pool word) is
charged to the first of its inline frames (innermost first) outside Rust's own library, so
that code inlined into a caller still counts for the file it was written in. Files are named
by workspace path (`cluster-core/src/node/send.rs`), as `crate:path` for registry crates
(`heapless:src/vec/mod.rs`), and as `core:path` for Rust's library. With --functions each
line is a file and the function of that file the code belongs to: where a generic's
instantiations or an inlined helper's copies add up.

Prints `bytes name`, largest first. Used to choose what to cut for the footprint goals
(issue 14); `measure.sh` does not run it.
"""
import re
import sys

import by_source


def file_of(path):
    """A source file's short name."""
    m = re.search(r"/(cluster-[a-z]+/src/.*)$", path)
    if m:
        return m.group(1)
    m = re.search(r"/registry/src/[^/]+/([A-Za-z0-9_-]+?)-\d+\.\d+[^/]*/(.*)$", path)
    if m:
        return m.group(1) + ":" + m.group(2)
    if path.startswith("/rustc/") or "/lib/rustlib/" in path:
        return "core:" + path.split("/library/")[-1] if "/library/" in path else "core"
    return path


def function_of(name):
    """A function's name without its hash, shortened to fit a line."""
    name = re.sub(r"::h[0-9a-f]{16}$", "", name or "?")
    for mangled, plain in (("$LT$", "<"), ("$GT$", ">"), ("$u20$", " "), ("$C$", ",")):
        name = name.replace(mangled, plain)
    return name[-100:]


def attribute(frames, functions):
    """The file (and function) of one address, from its inline frames (innermost first)."""
    frames = [f for f in frames if f.get("FileName")]
    chosen = next(
        (f for f in frames if not file_of(f["FileName"]).startswith("core")),
        frames[0] if frames else {"FileName": "?"},
    )
    name = file_of(chosen["FileName"])
    if functions:
        name += "  " + function_of(chosen.get("FunctionName"))
    return name


def main():
    symbolizer, elf = sys.argv[1], sys.argv[2]
    functions = "--functions" in sys.argv[3:]
    sizes = by_source.text_sizes(
        symbolizer, elf, sys.stdin, lambda frames: attribute(frames, functions)
    )
    for name, size in sorted(sizes.items(), key=lambda kv: -kv[1]):
        print(f"{size:7d}  {name}")


if __name__ == "__main__":
    main()
