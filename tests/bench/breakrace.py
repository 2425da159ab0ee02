#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`lockctl break` under contention (review finding 11). Not a test: it
prints figures and asserts nothing.

Two unprivileged users cycle one lock (exclusive create, 0.5 ms, unlink)
while root runs `lockctl break` N times. Each break that exits 0 is matched
with the daemon's force-unlock log line (breaks run one after another, so
in order) and counted when the fence or the holder pid it printed differs
from what the daemon broke; exits 1 (not held when read) and 75 (changed
hands before the break, nothing broken) are counted too.

It mounts its own lockfs (tests/integration/harness.Mount, allow_other)
and always unmounts. Run as root from the checkout after `ninja -C build`:

    python3 tests/bench/breakrace.py [--breaks 300]

LOCKFS_BIN and LOCKCTL_BIN override the daemon and lockctl (default those
of build/ in this checkout), e.g. to measure an older build."""
import argparse
import collections
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
os.environ.setdefault("LOCKFS_BIN", os.path.join(ROOT, "build", "lockfs"))
LOCKCTL = os.environ.get("LOCKCTL_BIN", os.path.join(ROOT, "build", "lockctl"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402

CYCLE = r"""
import os, sys, time
p = sys.argv[1]
print("up", flush=True)
while True:
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL); os.close(fd)
        time.sleep(0.0005)
        os.unlink(p)
    except OSError:
        pass
"""
PRINTED = re.compile(r"^broke \S+ held by pid (\d+) .*, fence (\d+)$")
LOGGED = re.compile(r"force-unlock of /x\.lock \(fence (\d+), held by pid (\d+) ")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--breaks", type=int, default=300)
    a = ap.parse_args()
    m = harness.Mount("allow_other").start()
    cyclers = []
    try:
        path = m.path("x.lock")
        for user in (harness.TEST_USER, harness.TEST_USER2):
            p = subprocess.Popen(harness.as_user([sys.executable, "-c", CYCLE, path], user),
                                 stdout=subprocess.PIPE, text=True)
            cyclers.append(p)
            p.stdout.readline()
        exits = collections.Counter()
        printed = []
        for _ in range(a.breaks):
            r = subprocess.run([LOCKCTL, "break", path], capture_output=True, text=True)
            exits[r.returncode] += 1
            if r.returncode == 0:
                mt = PRINTED.match(r.stdout.strip())
                printed.append((int(mt.group(2)), int(mt.group(1))) if mt else None)
        for p in cyclers:
            p.kill()
            p.wait()
        deadline = time.monotonic() + 20
        while True:
            logged = [(int(x.group(1)), int(x.group(2)))
                      for x in map(LOGGED.search, list(m.log_lines)) if x]
            if len(logged) >= len(printed) or time.monotonic() > deadline:
                break
            time.sleep(0.01)
    finally:
        for p in cyclers:
            if p.poll() is None:
                p.kill()
                p.wait()
        m.stop()
    fence_diff = sum(1 for p, l in zip(printed, logged) if p is None or p[0] != l[0])
    pid_diff = sum(1 for p, l in zip(printed, logged) if p is None or p[1] != l[1])
    print(f"lockfs {os.environ['LOCKFS_BIN']}, lockctl {LOCKCTL}")
    print(f"{a.breaks} breaks: exit 0 (broke) {exits[0]}, exit 1 (not held) {exits[1]}, "
          f"exit 75 (changed hands, nothing broken) {exits[75]}, "
          f"other {dict((k, v) for k, v in sorted(exits.items()) if k not in (0, 1, 75))}")
    print(f"force-unlock log lines {len(logged)}; of {len(printed)} reported breaks, "
          f"{fence_diff} broke another fence and {pid_diff} another holder pid "
          "than lockctl printed")


if __name__ == "__main__":
    main()
