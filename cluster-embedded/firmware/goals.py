#!/usr/bin/env python3
"""The firmware's footprint goals (issue 14), checked against `measure.sh --json`.

Usage: cluster-embedded/firmware/measure.sh --json | python3 goals.py
       (or `measure.sh --check`, which does this)

Reads one JSON object per variant and line ({"variant", "flash", "ram", "stack_main",
"stack_start", "data"}, bytes), prints every figure beside its goal with the margin left, and
exits 1 when an enforced goal is exceeded, or when a variant with goals is missing from the
input.

  flash        .text + .rodata
  ram          .data + .bss less the device's buffers (the image's static `DEVICE`)
  stack_main   the main loop's deepest call path (stack.py)
  stack_start  start-up's deepest call path, through `start` (stack.py --through)
  data         .data: statics with non-zero initial bytes, whose image takes flash beside
               .text + .rodata and is copied to RAM at start-up. The node starts as
               `Node::empty`, all zero bits, in .bss: a field whose empty value is not zero
               bits (an `Option<Duration>` set to `None`, say) moves the whole node (23 KB)
               into .data. Its goal is 0.

ENFORCED lists the goals CI holds the image to (the others are printed, marked "reported").

Which image: the goals are the issue's, for the measurement it was filed against, the
variants `default` and `sealed` of the node image (`src/bin/node-image.rs`): the node and the
smoltcp driver with 32 services and every command, on a loopback device that stands in for the
MAC driver. That is what the cluster costs a firmware. The board image (`src/main.rs`, variants
`board*`) adds the application's code for one particular board (its MAC driver, clock,
console, JSON lines and options: about 9.6 KB of flash and 324 B of RAM); its figures are
printed without goals, since another board or product brings its own. Neither image's
capacities changed to meet a goal (32 services, DATA = 512, EVENTS = 4, UDP 8 x 2048/2048).
"""

import json
import sys

KIB = 1024

# variant -> figure -> the most bytes allowed.
GOALS = {
    "default": {
        "flash": 48 * KIB,
        "ram": 24 * KIB,
        "stack_main": 11_740,
        "stack_start": 10 * KIB,
        "data": 0,
    },
    "sealed": {
        "flash": 64 * KIB,
        "ram": 32 * KIB,
        "stack_main": 11_740,
        "stack_start": 10 * KIB,
        "data": 0,
    },
}

# (variant, figure) pairs that fail the check when exceeded: the goals the image meets (with
# the margins printed); the others are reported until they are met.
ENFORCED = {
    ("sealed", "flash"),
    ("sealed", "ram"),
    ("default", "stack_main"),
    ("default", "stack_start"),
    ("sealed", "stack_main"),
    ("sealed", "stack_start"),
    ("default", "data"),
    ("sealed", "data"),
}

FIGURES = ("flash", "ram", "stack_main", "stack_start", "data")


def main():
    rows = {}
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        row = json.loads(line)
        missing = [key for key in ("variant",) + FIGURES if key not in row]
        if missing:
            print(f"goals: a line without {', '.join(missing)}: {line}", file=sys.stderr)
            return 1
        rows[row["variant"]] = row
    failed = []
    for variant in sorted(rows, key=lambda v: (v not in GOALS, v)):
        row = rows[variant]
        goals = GOALS.get(variant, {})
        print(f"{variant}:")
        for figure in FIGURES:
            value = row[figure]
            goal = goals.get(figure)
            if goal is None:
                print(f"  {figure:12s} {value:7,d} B")
                continue
            margin = goal - value
            enforced = (variant, figure) in ENFORCED
            verdict = "met" if margin >= 0 else "EXCEEDED"
            if not enforced:
                verdict += " (reported)"
            elif margin < 0:
                failed.append(f"{variant} {figure} {value:,d} B > {goal:,d} B")
            print(f"  {figure:12s} {value:7,d} B   goal {goal:7,d} B   margin {margin:7,d} B   {verdict}")
    for variant in GOALS:
        if variant not in rows:
            failed.append(f"variant {variant} not measured")
    if failed:
        print("footprint goals exceeded: " + "; ".join(failed), file=sys.stderr)
        return 1
    reported = [
        f"{variant} {figure}"
        for variant, goals in GOALS.items()
        for figure, goal in goals.items()
        if variant in rows and rows[variant][figure] > goal
    ]
    if reported:
        print("enforced goals met; not yet met (reported): " + ", ".join(reported))
    else:
        print("every footprint goal met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
