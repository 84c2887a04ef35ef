#!/usr/bin/env python3
"""check_layers.py — the layering rule of src/ (docs/architecture.md "Layers"), checked over the
#include lines.

Every folder of src/ has a layer; a file may include headers of its own folder and of lower
layers only. Folders on the same layer are peers and do not include each other. The folder
graph has no cycle. The generated codec (kp_msgs.h) belongs to protocol/.

The partition layer (issue 13 item 1): storage's kp_log_* names (every kp_log_* identifier its
headers declare: functions and types) appear nowhere outside storage/ and replication/; the
handlers, coordinators and the topic map reach a log only through replication/partition.h.
kp_log_* names other folders declare themselves (core's kp_log_limit_*, the broker's
kp_log_manager) are not storage's and stay.

Inside a folder, modules do not include each other in a circle (issue 13 item 5). A module is
foo.c with foo.h; module A depends on module B when A.c or A.h includes "folder/B.h" (or
"B.h"). A header without a .c of its name (a folder's private _int.h, a types header) is no
module of its own: it is part of every module that includes it, so its includes count as
theirs (a module that includes its folder's _int.h, which includes the module's own header, is
no circle; two modules that each reach the other through it are). Headers do not include each
other in a circle either.

A violation that an open issue item will remove is listed in ALLOWED (ALLOWED_CYCLES for module
circles) with the reason; an entry that no longer matches is an error too, so the lists only
shrink.

Usage: tools/check_layers.py [SRC_DIR]      (default: src next to this script's parent)
Exit status 0 when the tree follows the rule, 1 with one line per violation otherwise.
Self-test: tests/tools/test_check_layers.py (run by `make unit`).
"""
import os
import re
import sys

# Lowest first; folders in one tuple are peers.
LAYERS = [
    ("core",),
    ("protocol",),
    ("net",),
    ("storage",),
    ("auth",),
    ("cluster",),
    ("replication",),
    ("pki",),
    ("group", "registry"),
    ("txn",),
    ("broker",),
    ("control",),
    ("daemon",),
    ("cli",),
]

# Headers that belong to a folder although they are not under it.
VIRTUAL = {"kp_msgs.h": "protocol"}

# (including file, included header) → why it is still there and which item removes it. Empty:
# issue 13 item 4 removed the last five (the composition root, daemon/, wires the modules).
ALLOWED = {}

# (folder, the modules of one circle, sorted) → why it is still there. A circle that grows, a
# new one, or an entry that no longer matches a circle exactly is an error. Empty: issue 13
# item 5 broke the five the check first found (broker, control twice, net twice).
ALLOWED_CYCLES = {}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)

# The folders that may name storage's kp_log_* (storage itself and the partition layer).
PARTITION_LAYER = ("storage", "replication")
STORAGE_NAME = re.compile(r"\bkp_log_\w+")


def layer_of(folder):
    for rank, peers in enumerate(LAYERS):
        if folder in peers:
            return rank
    return None


def sources(src):
    """Yields (path relative to src's parent, top folder, text) of every .c/.h under a folder."""
    base = os.path.dirname(os.path.abspath(src))
    for root, _dirs, files in os.walk(src):
        for name in sorted(files):
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(root, name)
            parts = os.path.relpath(path, src).split(os.sep)
            if len(parts) < 2:
                continue
            with open(path, encoding="utf-8", errors="replace") as f:
                yield os.path.relpath(path, base).replace(os.sep, "/"), parts[0], f.read()


def scan(src):
    """Yields (file relative to src's parent, including folder, header, header's folder)."""
    for rel, folder, text in sources(src):
        for inc in INCLUDE.findall(text):
            target = VIRTUAL.get(inc) or (inc.split("/")[0] if "/" in inc else None)
            if target is None:
                continue  # a header of the file's own directory
            yield rel, folder, inc, target


def storage_uses(src):
    """'file:line: ...' for every storage kp_log_* name outside storage/ and replication/."""
    names, found = set(), []
    files = list(sources(src))
    for rel, folder, text in files:
        if folder == "storage" and rel.endswith(".h"):
            names.update(STORAGE_NAME.findall(text))
    for rel, folder, text in files:
        if folder in PARTITION_LAYER:
            continue
        for lineno, line in enumerate(text.splitlines(), 1):
            for name in STORAGE_NAME.findall(line):
                if name in names:
                    found.append(f"{rel}:{lineno}: names storage's {name} outside the "
                                 "partition layer (use replication/partition.h)")
    return found


def cycles(edges):
    """Folder cycles of the graph {a: {b, ...}}, each as a list a → ... → a."""
    found, state, stack = [], {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(edges.get(n, ())):
            if state.get(m) == 1:
                found.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(edges):
        if n not in state:
            visit(n)
    return found


def strongly_connected(edges):
    """The strongly connected parts of more than one node of {a: {b, ...}}, each sorted."""
    index, low, stack, on, parts = {}, {}, [], set(), []

    def visit(n):
        index[n] = low[n] = len(index)
        stack.append(n)
        on.add(n)
        for m in sorted(edges.get(n, ())):
            if m not in index:
                visit(m)
                low[n] = min(low[n], low[m])
            elif m in on:
                low[n] = min(low[n], index[m])
        if low[n] == index[n]:
            part = []
            while True:
                m = stack.pop()
                on.discard(m)
                part.append(m)
                if m == n:
                    break
            if len(part) > 1:
                parts.append(tuple(sorted(part)))

    for n in sorted(edges):
        if n not in index:
            visit(n)
    return parts


def module_graph(files, folder):
    """files: {file name: text} of one folder. Returns (module edges {a: {b: why}}, header
    edges {a.h: {b.h}}) over the includes of a header of the folder: "folder/x.h", or "x.h"
    (found next to the including file first)."""
    prefix = folder + "/"

    def own(i):
        if i.startswith(prefix):
            return i[len(prefix):]  # may name a subfolder's header: "api/k8s.h"
        return None if "/" in i or i in VIRTUAL else i

    inc = {name: {own(i) for i in INCLUDE.findall(text)} - {None}
           for name, text in files.items()}
    modules = {name[:-2] for name in files if name.endswith(".c")}

    def reach(header, seen):
        """The modules a header without a .c of its name brings in, through its includes."""
        out = set()
        for h in sorted(inc.get(header, ())):
            if h in seen:
                continue
            seen.add(h)
            out |= {h[:-2]} if h[:-2] in modules else reach(h, seen)
        return out

    edges, headers = {}, {}
    for name in sorted(inc):
        a = name[:-2]
        if name.endswith(".h"):
            headers.setdefault(name, set()).update(inc[name])
        if a not in modules:
            continue  # a header without a .c: part of the modules that include it
        for h in sorted(inc[name]):
            for b in ({h[:-2]} if h[:-2] in modules else reach(h, {h})):
                if b != a:
                    edges.setdefault(a, {}).setdefault(b, f"{name} includes {prefix}{h}")
    return edges, headers


def module_cycles(src, allowed):
    """The module and header circles inside each folder; marks the allowed ones used."""
    errors, used, by_folder = [], set(), {}
    for rel, folder, text in sources(src):
        # keyed by the path inside the folder: a subfolder's modules are "api/k8s"
        by_folder.setdefault(folder, {})[rel.split("/", 2)[2]] = text
    for folder in sorted(by_folder):
        edges, headers = module_graph(by_folder[folder], folder)
        for c in cycles(headers):
            errors.append(f"include cycle between headers of {folder}/: " + " -> ".join(c))
        for part in strongly_connected(edges):
            key = (folder, part)
            if key in allowed:
                used.add(key)
                continue
            inner = {a: {b for b in edges[a] if b in part} for a in part}
            path = cycles(inner)[0]
            why = "; ".join(edges[a][b] for a, b in zip(path, path[1:]))
            errors.append(f"module include cycle in {folder}/: " + " -> ".join(path) +
                          f" ({why})" + (f"; its circle holds {', '.join(part)}"
                                         if len(part) > len(path) - 1 else ""))
    for key in sorted(set(allowed) - used):
        errors.append(f"stale module cycle allow-list entry (remove or shrink it): {key[0]}/ "
                      + ", ".join(key[1]))
    return errors


def check(src, allowed=None, allowed_cycles=None):
    """The list of violations (strings); empty when the tree follows the rule."""
    allowed = ALLOWED if allowed is None else allowed
    allowed_cycles = ALLOWED_CYCLES if allowed_cycles is None else allowed_cycles
    errors, used, edges = [], set(), {}
    for rel, folder, inc, target in scan(src):
        if target == folder:
            continue
        key = (rel, inc)
        if key in allowed:
            used.add(key)
            continue  # neither a violation nor an edge of the cycle check
        edges.setdefault(folder, set()).add(target)
        lf, lt = layer_of(folder), layer_of(target)
        if lf is None:
            errors.append(f"{rel}: folder {folder}/ has no layer (add it to LAYERS)")
        elif lt is None:
            errors.append(f"{rel}: includes {inc} of {target}/, which has no layer")
        elif lt > lf:
            errors.append(f"{rel}: {folder}/ (layer {lf}) includes {inc} of higher {target}/ "
                          f"(layer {lt})")
        elif lt == lf:
            errors.append(f"{rel}: {folder}/ includes {inc} of its peer {target}/")
    for c in cycles(edges):
        errors.append("include cycle between folders: " + " -> ".join(c))
    for key in sorted(set(allowed) - used):
        errors.append(f"stale allow-list entry (remove it): {key[0]} -> {key[1]}")
    errors.extend(module_cycles(src, allowed_cycles))
    errors.extend(storage_uses(src))
    return errors


def main(argv):
    src = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "src")
    errors = check(src)
    for e in errors:
        print("check_layers: " + e, file=sys.stderr)
    if errors:
        print(f"check_layers: {len(errors)} violation(s); the layer order is in "
              "docs/architecture.md", file=sys.stderr)
        return 1
    print(f"check_layers: ok ({len(ALLOWED)} allowed violations, {len(ALLOWED_CYCLES)} allowed "
          "module circles, each naming its issue item)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
