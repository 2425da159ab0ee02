#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Check the call graph of lockfs's object files (issue 12's "no circle").

usage: check_layers.py BUILD_DIR [--print]

Reads every object file of the lockfs libraries and programs in BUILD_DIR
with nm, links "object A uses a global symbol that object B defines", and
fails (exit 1) when
  - a group of two or more objects call each other, directly or through
    others (a strongly connected component of the object graph), or
  - two layers (libraries: util, etcd, core, store, fs, daemon, lockctl)
    call each other, or a layer calls one it may not see.
With --print it also prints each object's callees and the layer graph.
Test objects are not read: a test may call any layer."""
import os
import subprocess
import sys
from collections import defaultdict

# Which layers each layer may call: the same order the meson libraries
# declare (meson.build). The lockfs and lockctl programs are the top.
ALLOWED = {
    "util": set(),
    "etcd": {"util"},
    "core": {"util"},
    "store": {"core", "util", "etcd"},
    "fs": {"core", "util"},
    "daemon": {"store", "core", "util", "etcd", "fs"},
    "lockctl": {"util"},
}
# object directory (meson's "<target>.p") -> layer
TARGETS = {
    "liblockfs-util.a.p": "util",
    "liblockfs-etcd.a.p": "etcd",
    "liblockfs-core.a.p": "core",
    "liblockfs-store.a.p": "store",
    "liblockfs-fs.a.p": "fs",
    "liblockfs-daemon.a.p": "daemon",
    "lockfs.p": "daemon",
    "lockctl.p": "lockctl",
}


def objects(build):
    found = []
    for root, dirs, files in os.walk(build):
        target = os.path.basename(root)
        if target not in TARGETS or os.sep + "tests" + os.sep in root + os.sep:
            continue
        for f in sorted(files):
            if f.endswith(".o"):
                found.append((os.path.join(root, f), TARGETS[target]))
    return found


def symbols(path):
    out = subprocess.run(["nm", "-P", path], check=True, capture_output=True, text=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if kind == "U":
            used.add(name)
        elif kind in "TDBRGSVW":   # global definitions
            defined.add(name)
    return defined, used


def short(path):
    return os.path.basename(path)[:-2].replace("_", "/", 0)


def sccs(nodes, edges):
    """Tarjan's algorithm, iterative; returns the components."""
    index, low, on, stack, comps, counter = {}, {}, set(), [], [], [0]
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter[0]; counter[0] += 1
        stack.append(root); on.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]; counter[0] += 1
                    stack.append(w); on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop(); on.discard(w); comp.append(w)
                    if w == v:
                        break
                comps.append(comp)
    return comps


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    build, verbose = sys.argv[1], "--print" in sys.argv[2:]
    objs = objects(build)
    if not objs:
        print(f"no lockfs object files under {build}", file=sys.stderr)
        return 2
    layer_of, definer, uses = {}, {}, {}
    for path, layer in objs:
        name = os.path.relpath(path, build)
        layer_of[name] = layer
        defined, used = symbols(path)
        uses[name] = used
        for s in defined:
            # lockfs and lockctl are separate programs: a symbol is looked up
            # among the objects a program can link (lockctl: its own + util)
            definer.setdefault(s, []).append(name)
    edges = defaultdict(set)
    layer_edges = defaultdict(set)
    for name, used in uses.items():
        for s in used:
            for d in definer.get(s, []):
                if d == name:
                    continue
                if layer_of[name] == "lockctl" and layer_of[d] not in ("lockctl", "util"):
                    continue
                if layer_of[name] != "lockctl" and layer_of[d] == "lockctl":
                    continue
                edges[name].add(d)
                if layer_of[d] != layer_of[name]:
                    layer_edges[layer_of[name]].add(layer_of[d])
    bad = 0
    for comp in sccs(sorted(uses), edges):
        if len(comp) > 1:
            bad += 1
            print("call cycle between objects: " + " <-> ".join(sorted(comp)))
    for a in sorted(layer_edges):
        for b in sorted(layer_edges[a]):
            if b not in ALLOWED[a]:
                bad += 1
                print(f"layer {a} calls layer {b}, which it may not")
    if verbose:
        for name in sorted(uses):
            print(f"{name}: " + " ".join(sorted(edges[name])))
        for a in sorted(layer_edges):
            print(f"layer {a} -> " + " ".join(sorted(layer_edges[a])))
    print(f"{len(uses)} objects, {sum(len(e) for e in edges.values())} calls between objects, "
          f"{bad} problem(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
