#!/usr/bin/env python3
"""Lists import cycles between the modules of each crate (exit 1 if any).

A module is a file under a crate's src/ (`foo.rs` or `foo/mod.rs` is `foo`, `foo/bar.rs` is
`foo::bar`). An edge A -> B is a `crate::B...` or `super::...` path in A naming B or one of
B's items. Edges between a module and its own parent or children are not counted: a parent
declares its children and children use their parent's shared types; that is structure, not
a cycle. Everything else that goes around is reported, e.g. `config <-> lifecycle`.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates")


def modules(src):
    out = {}
    for dirpath, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, src)[:-3].split(os.sep)
            if rel[-1] == "mod":
                rel = rel[:-1]
            if rel in (["lib"], ["main"]):
                rel = []
            if rel and rel[0] == "bin":
                continue
            out["::".join(rel)] = path
    return out


def strip_tests(text):
    # Test modules may use anything; cycles through tests are not architecture.
    cut = re.search(r"^#\[cfg\(test\)\]\s*\nmod tests", text, re.M)
    return text[: cut.start()] if cut else text


def resolve(path_parts, names):
    """The longest known module that is a prefix of `path_parts`."""
    for n in range(len(path_parts), 0, -1):
        candidate = "::".join(path_parts[:n])
        if candidate in names:
            return candidate
    return None


def related(a, b):
    return a == b or a.startswith(b + "::") or b.startswith(a + "::") or "" in (a, b)


def cycles_of(crate):
    src = os.path.join(ROOT, crate, "src")
    mods = modules(src)
    graph = {m: set() for m in mods}
    for mod, path in mods.items():
        text = strip_tests(open(path, encoding="utf-8").read())
        for match in re.finditer(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)", text):
            parts = match.group(2).strip(":").split("::")
            if match.group(1) == "super":
                base = mod.split("::")[:-1] if mod else []
                if path.endswith("mod.rs") or path.endswith("lib.rs"):
                    base = base[:-1] if base else base
                parts = base + parts
            target = resolve(parts, mods)
            if target is not None and not related(mod, target):
                graph[mod].add(target)
        for match in re.finditer(r"\buse crate::\{([^}]*)\}", text):
            for item in match.group(1).split(","):
                target = resolve(item.strip().split("::"), mods)
                if target is not None and not related(mod, target):
                    graph[mod].add(target)
    found = set()
    for start in graph:
        stack = [(start, [start])]
        while stack:
            node, trail = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    ring = trail[:]
                    i = ring.index(min(ring))
                    found.add(tuple(ring[i:] + ring[:i]))
                elif nxt not in trail and len(trail) < 8:
                    stack.append((nxt, trail + [nxt]))
    return sorted(found)


def main():
    bad = 0
    for crate in sorted(os.listdir(ROOT)):
        if not os.path.isdir(os.path.join(ROOT, crate, "src")):
            continue
        for ring in cycles_of(crate):
            bad += 1
            print(f"{crate}: {' -> '.join(ring + (ring[0],))}")
    if bad:
        print(f"module-cycles: {bad} import cycle(s)")
        return 1
    print("module-cycles: no import cycles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
