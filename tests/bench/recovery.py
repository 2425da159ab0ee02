#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Recovery benchmark: one process holds N locks (default 100,000), the
daemon is killed with SIGKILL and started again on the same mount point;
prints how long the restart took (start until "serving", and the restore
itself as the daemon logs it), the journal's size, and checks that all N
came back held by the same process. Not a test: run it by hand.

usage: python3 tests/bench/recovery.py [--locks N]
LOCKFS_BIN overrides the daemon (default build/lockfs of this checkout)."""
import argparse
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
os.environ.setdefault("LOCKFS_BIN", os.path.join(ROOT, "build", "lockfs"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402


def hold_locks(mnt, n):
    """Fork a child that takes n locks and holds them until its pipe closes.
    Returns (pid, write end of the pipe), once all are taken."""
    r, w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w)
        os.close(done_r)
        for d in range(100):
            os.mkdir(os.path.join(mnt, f"d{d}"))
        for i in range(n):
            fd = os.open(os.path.join(mnt, f"d{i % 100}", f"lock-{i}"),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, b'{"job": %d}' % i)
            os.close(fd)
        os.write(done_w, b"x")
        os.read(r, 1)
        os._exit(0)
    os.close(r)
    os.close(done_w)
    if os.read(done_r, 1) != b"x":
        raise RuntimeError("the holder died while taking locks")
    os.close(done_r)
    return pid, w


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--locks", type=int, default=100000)
    n = ap.parse_args().locks
    m = harness.Mount("max_locks=0")
    m.start()
    pid = None
    try:
        t0 = time.monotonic()
        pid, pipe_w = hold_locks(m.mnt, n)
        took = time.monotonic() - t0
        print(f"took {n} locks in {took:.1f} s ({n / took:.0f}/s)")
        size = os.path.getsize(os.path.join(m.state_dir, "journal"))
        m.crash()
        t0 = time.monotonic()
        m.start()
        restart = time.monotonic() - t0
        line = next(l for l in m.log_lines if "restored" in l)
        restored, ms = re.search(r"restored (\d+) locks in (\d+) ms", line).groups()
        held = len(os.listdir(os.path.join(m.mnt, "d0"))) * 100
        with open(os.path.join(m.mnt, "d7", "lock-7")) as f:
            same = f'"pid":\t{pid}' in f.read()
        print(f"journal {size / 1e6:.1f} MB; restart to serving {restart * 1000:.0f} ms; "
              f"restore {ms} ms for {restored} locks; about {held} listed; "
              f"holder kept: {same}")
        os.close(pipe_w)
        os.waitpid(pid, 0)
        pid = None
    finally:
        if pid:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        m.stop()


if __name__ == "__main__":
    main()
