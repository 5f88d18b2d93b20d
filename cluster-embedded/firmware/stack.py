#!/usr/bin/env python3
"""Worst-case stack estimate of a Thumb-2 ELF, from its disassembly.

Usage: llvm-objdump -d --no-show-raw-insn -C ELF | stack.py [ENTRY [SKIP]] [--through=NAME]

Each function's frame is what its prologue reserves: `push` (4 bytes a register), `vpush`
(8 bytes a double register) and `sub sp` (immediate, or a register loaded with `movw`). The
call graph comes from `bl`/`blx` to a label and from tail calls (`b`/`b.w` to another
function's first instruction). The estimate is the deepest path from ENTRY (default `main`),
the sum of the frames along it; calls to functions whose name contains SKIP are left out
(the main loop: everything but start-up), and with --through only the paths through a
function whose name contains NAME count (start-up: the paths through it). Interrupt handlers'
frames come on top. Indirect calls (`blx rN`) cannot be followed: they are counted; with
panic=abort they are the few trait objects of the core's encoder (list items read in place,
Tcl list text written into a `dyn fmt::Write`), small leaf functions.

Prints the estimate, the path, and the largest frames.
"""

import re
import sys

FUNC = re.compile(r"^([0-9a-f]+) <(.+)>:$")
INSN = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$")
REGLIST = re.compile(r"\{([^}]*)\}")


def reg_count(text):
    m = REGLIST.search(text)
    if not m:
        return 0
    count = 0
    for part in m.group(1).split(","):
        part = part.strip()
        if "-" in part:
            lo, hi = part.split("-")
            count += int(re.sub(r"\D", "", hi)) - int(re.sub(r"\D", "", lo)) + 1
        elif part:
            count += 1
    return count


def main():
    through = None
    args = []
    for arg in sys.argv[1:]:
        if arg.startswith("--through="):
            through = arg.split("=", 1)[1]
        else:
            args.append(arg)
    entry = args[0] if args else "main"
    skip = args[1] if len(args) > 1 else None
    funcs = {}  # name -> dict(addr, frame, calls, indirect)
    starts = {}  # address -> name
    order = []
    cur = None
    cur_name = None
    movw = {}
    for line in sys.stdin:
        m = FUNC.match(line.rstrip())
        if m:
            name = m.group(2)
            if name.startswith("$"):
                continue
            cur = {"addr": int(m.group(1), 16), "frame": 0, "calls": set(), "tail": set(),
                   "indirect": 0, "prologue": True}
            funcs[name] = cur
            cur_name = name
            starts[cur["addr"]] = name
            order.append(name)
            movw = {}
            continue
        if cur is None:
            continue
        m = INSN.match(line)
        if not m:
            continue
        op, args = m.group(2), m.group(3)
        if op in ("push", "push.w", "stmdb") and ("sp" in args or op.startswith("push")):
            cur["frame"] += 4 * reg_count(args)
        elif op.startswith("vpush"):
            cur["frame"] += 8 * reg_count(args)
        elif op.startswith("movw"):
            mm = re.match(r"(r\d+|r1[0-2]|lr|ip), #(\d+)", args)
            if mm:
                movw[mm.group(1)] = int(mm.group(2))
        elif op.startswith("sub") and args.startswith("sp,"):
            mm = re.search(r"#(\d+)", args)
            if mm:
                cur["frame"] += int(mm.group(1))
            else:
                mm = re.match(r"sp, (?:sp, )?(r\d+)", args)
                if mm and mm.group(1) in movw:
                    cur["frame"] += movw[mm.group(1)]
        elif op in ("bl", "blx"):
            mm = re.search(r"<([^>+]+)>", args)
            if mm:
                cur["calls"].add(mm.group(1))
            elif re.match(r"r\d+|lr|ip", args.strip()):
                cur["indirect"] += 1
        elif op in ("b", "b.w"):
            mm = re.search(r"0x([0-9a-f]+) <([^>+]+)>", args)
            if mm and int(mm.group(1), 16) in starts and starts[int(mm.group(1), 16)] != cur_name:
                cur["tail"].add(starts[int(mm.group(1), 16)])

    memo = {}
    on_path = set()
    cycles = set()

    def depth(name):
        if name in memo:
            return memo[name]
        f = funcs.get(name)
        if f is None:
            return (0, [name])
        if name in on_path:
            cycles.add(name)
            return (0, [name + " (recursion)"])
        on_path.add(name)
        best = (0, [])
        for callee in f["calls"]:
            if skip and skip in callee:
                continue
            d, path = depth(callee)
            if d > best[0]:
                best = (d, path)
        own = (f["frame"] + best[0], [name] + best[1])
        # A tail call replaces this frame.
        for callee in f["tail"]:
            if skip and skip in callee:
                continue
            d, path = depth(callee)
            if d > own[0]:
                own = (d, [name + " (tail)"] + path)
        on_path.discard(name)
        memo[name] = own
        return own

    memo_through = {}

    def depth_through(name):
        """The deepest path from `name` that passes through a function named like `through`,
        or None when no path does."""
        if through in name:
            return depth(name)
        if name in memo_through:
            return memo_through[name]
        f = funcs.get(name)
        memo_through[name] = None  # recursion: no path through here
        if f is None:
            return None
        best = None
        for callee in f["calls"]:
            if skip and skip in callee:
                continue
            sub = depth_through(callee)
            if sub is not None and (best is None or f["frame"] + sub[0] > best[0]):
                best = (f["frame"] + sub[0], [name] + sub[1])
        for callee in f["tail"]:
            if skip and skip in callee:
                continue
            sub = depth_through(callee)
            if sub is not None and (best is None or sub[0] > best[0]):
                best = (sub[0], [name + " (tail)"] + sub[1])
        memo_through[name] = best
        return best

    roots = [n for n in funcs if n == entry or n.endswith("::" + entry) or n.startswith(entry + "::")]
    if not roots:
        sys.exit(f"no function named {entry}")
    if through:
        found = [d for d in (depth_through(r) for r in roots) if d is not None]
        if not found:
            sys.exit(f"no path from {entry} through {through}")
        total, path = max(found, key=lambda x: x[0])
    else:
        total, path = max((depth(r) for r in roots), key=lambda x: x[0])
    without = f" without {skip}" if skip else ""
    via = f" through {through}" if through else ""
    print(f"stack estimate from {entry}{via}{without}: {total} bytes")
    print("deepest path:")
    for n in path:
        f = funcs.get(n.split(" (")[0])
        frame = f["frame"] if f else 0
        print(f"  {frame:>6}  {n[:110]}")
    indirect = sum(f["indirect"] for f in funcs.values())
    if indirect:
        print(f"indirect calls not followed: {indirect}")
    if cycles:
        print("recursion (counted once):", ", ".join(sorted(cycles))[:300])
    print("largest frames:")
    for n in sorted(funcs, key=lambda n: -funcs[n]["frame"])[:8]:
        print(f"  {funcs[n]['frame']:>6}  {n[:110]}")


if __name__ == "__main__":
    main()
