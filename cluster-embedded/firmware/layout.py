#!/usr/bin/env python3
"""Where a struct's bytes go, from the debug info: its fields by size.

Usage: layout.py LLVM-DWARFDUMP ELF NAME...

For each NAME (the start of a struct's name as the debug info spells it, generic arguments
left out: `Core`, `Registry`, `Driver`), prints the struct's size and its fields, largest
first. A field's bytes are from its offset to the next field's (padding after a field counts
with it); the last one runs to the struct's end. Where several instances share a name (other
generic arguments), the largest is shown. Only structs are read (enums' variants are not).
`measure.sh` prints it for the node, the driver and their largest parts.
"""

import re
import subprocess
import sys

TAG = re.compile(r"^0x[0-9a-f]+:(\s+)DW_TAG_(\w+)")
ATTR = re.compile(r"^\s+DW_AT_(\w+)\s+\((.*)\)$")


def structs(dwarfdump, elf, name):
    """Yields (full name, size, [(field, offset)]) of every struct whose name starts so."""
    out = subprocess.run(
        [dwarfdump, "--debug-info", "--regex", f"--name=^{re.escape(name)}(<|$)", "-c", elf],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    current = None
    field = None
    depth = None
    for line in out.splitlines():
        tag = TAG.match(line)
        if tag:
            indent, kind = len(tag.group(1)), tag.group(2)
            if kind == "structure_type" and (current is None or indent <= depth):
                if current is not None:
                    yield current
                current = {"name": None, "size": 0, "fields": []}
                depth = indent
                field = None
            elif current is not None and kind == "member" and indent > depth:
                field = {"name": None, "offset": None}
                current["fields"].append(field)
            else:
                field = None
            continue
        attr = ATTR.match(line)
        if not attr or current is None:
            continue
        key, value = attr.groups()
        target = field if field is not None else current
        if key == "name":
            target["name"] = value.strip('"')
        elif key == "byte_size" and field is None:
            current["size"] = int(value, 16)
        elif key == "data_member_location" and field is not None:
            field["offset"] = int(value, 16)
    if current is not None:
        yield current


def main():
    dwarfdump, elf, names = sys.argv[1], sys.argv[2], sys.argv[3:]
    for name in names:
        found = [s for s in structs(dwarfdump, elf, name) if s["name"] and s["size"]]
        if not found:
            print(f"{name}: not in the debug info")
            continue
        struct = max(found, key=lambda s: s["size"])
        fields = sorted(
            (f for f in struct["fields"] if f["offset"] is not None), key=lambda f: f["offset"]
        )
        ends = [f["offset"] for f in fields[1:]] + [struct["size"]]
        sizes = [(end - f["offset"], f["name"]) for f, end in zip(fields, ends)]
        print(f"{name} ({struct['size']} B):")
        for size, field in sorted(sizes, reverse=True):
            if size:
                print(f"  {size:7d}  {field}")


if __name__ == "__main__":
    main()
