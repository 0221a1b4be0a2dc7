#!/usr/bin/env python3
"""Prints the cycles in bantin's module graph (a developer check; empty output = none).

Each file under src/ is a module; an edge A -> B is a path `crate::b::...` or `super::...` used in
A's non-test code, or a parent's unprefixed use of a child (`fast::serve`). `--level 1` groups
modules by their first segment (http, store, ...), the layer view of lib.rs's "Layout"; the
default, level 2, keeps one node per file. `mod` declarations are not edges.
"""

import argparse
import pathlib
import re
import sys

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"


def module_of(path: pathlib.Path) -> tuple:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def strip_tests(text: str) -> str:
    # Drops `#[cfg(test)] mod tests { ... }` blocks: tests may use anything.
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(pub(\(crate\))?\s+)?mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i : m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def expand_groups(text: str) -> str:
    """Rewrites `use a::{b, c::{d, e}};` as one path per line, so every imported path is seen."""

    def items(prefix: str, body: str):
        depth, cur, out = 0, "", []
        for ch in body:
            if ch == "," and depth == 0:
                out.append(cur)
                cur = ""
                continue
            depth += {"{": 1, "}": -1}.get(ch, 0)
            cur += ch
        out.append(cur)
        for it in out:
            it = " ".join(it.split())
            if not it:
                continue
            if "{" in it:
                head, rest = it.split("{", 1)
                yield from items(prefix + head, rest.rsplit("}", 1)[0])
            else:
                yield prefix + it

    def repl(mo):
        start = mo.end()
        depth, j = 1, start
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        return mo.group(1), start, j

    out, i = [], 0
    for mo in re.finditer(r"\b((?:crate|super)(?:::[a-z_][a-z0-9_]*)*::)\{", text):
        if mo.start() < i:
            continue
        prefix, start, j = repl(mo)
        out.append(text[i : mo.start()])
        out.append("\n".join(x for x in items(prefix, text[start : j - 1])))
        i = j
    out.append(text[i:])
    return "".join(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--level", type=int, default=2)
    args = ap.parse_args()
    files = {module_of(p): p for p in SRC.rglob("*.rs")}
    mods = set(files)
    edges = {m: set() for m in mods}

    def resolve(segs):
        # The longest prefix of segs that is a module.
        for n in range(len(segs), 0, -1):
            if tuple(segs[:n]) in mods:
                return tuple(segs[:n])
        return None

    for m, p in files.items():
        text = strip_tests(p.read_text())
        text = re.sub(r"//[^\n]*", "", text)
        text = expand_groups(text)
        is_parent = p.name in ("mod.rs", "lib.rs")
        children = {c[-1] for c in mods if len(c) == len(m) + 1 and c[: len(m)] == m}
        for line in text.splitlines():
            if re.match(r"\s*(pub(\([a-z]+\))?\s+)?mod\s", line):
                continue
            if is_parent:
                # A parent names its children without a prefix (`fast::serve`, `use feeds::X`).
                for c in re.finditer(r"(?<![:\w])([a-z_][a-z0-9_]*)::", line):
                    if c.group(1) in children:
                        edges[m].add(m + (c.group(1),))
            for c in re.finditer(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)", line):
                segs = c.group(2).split("::")[1:]
                if c.group(1) == "super":
                    base = list(m if is_parent else m[:-1])
                    # super::super::...
                    while segs and segs[0] == "super":
                        base = base[:-1]
                        segs = segs[1:]
                    segs = base + segs
                t = resolve(segs)
                if t is None or t == m:
                    continue
                # A child naming its parent's items is an edge to the parent; the parent
                # declaring its child is not (skipped above).
                edges[m].add(t)

    def group(mod):
        return mod[: args.level] if mod else ("lib",)

    g = {}
    for a, bs in edges.items():
        ga = group(a)
        g.setdefault(ga, set())
        for b in bs:
            gb = group(b)
            if ga != gb:
                g[ga].add(gb)
                g.setdefault(gb, set())

    # Tarjan's strongly connected components.
    index, low, stack, on, sccs, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(g):
        if v not in index:
            visit(v)
    for comp in sccs:
        names = sorted("::".join(c) or "lib" for c in comp)
        print("cycle:", ", ".join(names))
        for a in comp:
            for b in sorted(g[a]):
                if b in comp:
                    print("   ", "::".join(a), "->", "::".join(b))
    return 1 if sccs else 0


if __name__ == "__main__":
    sys.exit(main())
