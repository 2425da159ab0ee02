#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The seed scenario (CRITICAL-005): a Node CLI's isLocked()-then-writeFile()
lock code, unchanged and without the 'wx' flag, is safe on lockfs: of 20
processes that all pass the check and then write at once, exactly one gets
the lock and 19 fail with EEXIST; a killed holder's lock is gone at once."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import LockfsTestCase, wait_until  # noqa: E402
from lockfs_it import Lines, status, gone  # noqa: E402

SEED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "clients", "seed_cli.js")
N = 20
ROUNDS = 10


class Cli:
    def __init__(self, tc, lock, go_fd=None):
        argv = ["node", SEED, lock]
        kw = {}
        if go_fd is not None:
            argv.append(str(go_fd))
            kw["pass_fds"] = (go_fd,)
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, cwd="/tmp", **kw)
        tc.addCleanup(self.kill)
        self.out = Lines(self.proc.stdout)
        self.err = Lines(self.proc.stderr)

    def result(self):
        """The "ACQUIRED <pid>" or "BUSY <code>" line."""
        while True:
            line = self.out.get(30, "seed CLI result")
            if line.startswith(("ACQUIRED", "BUSY")):
                return line

    def stderr_lines(self):
        """All of stderr; call after the process exited."""
        self.err.t.join(timeout=10)
        lines = []
        while not self.err.q.empty():
            line = self.err.q.get()
            if line is not None:
                lines.append(line)
        return lines

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=20)


class TestSeed(LockfsTestCase):

    def race_round(self, lock):
        r, w = os.pipe()
        try:
            clis = [Cli(self, lock, r) for _ in range(N)]
        finally:
            os.close(r)
        try:
            for c in clis:
                self.assertEqual(c.out.get(30, "READY"), "READY",
                                 "every CLI must pass isLocked() on a free name")
        finally:
            os.close(w)                         # go: all write at once
        results = [c.result() for c in clis]
        winners = [(c, l) for c, l in zip(clis, results) if l.startswith("ACQUIRED")]
        losers = [l for l in results if l.startswith("BUSY")]
        self.assertEqual(len(winners), 1, f"exactly one must acquire: {results}")
        self.assertEqual(losers, ["BUSY EEXIST"] * (N - 1), results)
        for c, l in zip(clis, results):
            if l.startswith("BUSY"):
                self.assertEqual(c.proc.wait(timeout=20), 1)
        win, line = winners[0]
        self.assertEqual(int(line.split()[1]), win.proc.pid)
        return win

    def jq(self, lock):
        r = subprocess.run(["jq", "-c", "[.pid, .operation, .version, .lockfs.pid, .lockfs.how]",
                            lock], capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_seed_race_rounds(self):
        lock = self.p("state.lock")
        fences = []
        for rnd in range(ROUNDS):
            win = self.race_round(lock)
            self.assertEqual(self.jq(lock), [win.proc.pid, "apply", "1.4.2", win.proc.pid,
                                             "creator"], f"round {rnd}")
            fences.append(status(lock)["lockfs"]["fence"])
            # a late CLI sees the live holder through the status JSON
            late = Cli(self, lock)
            self.assertEqual(late.result(), "BUSY LOCKED")
            self.assertEqual(late.proc.wait(timeout=20), 1)
            # kill the winner: a fresh run gets the lock at once, with no
            # stale-lock clean-up of its own
            win.proc.kill()
            win.proc.wait(timeout=20)
            fresh = Cli(self, lock)
            line = fresh.result()
            self.assertTrue(line.startswith("ACQUIRED"), f"round {rnd}: {line}")
            self.assertEqual(int(line.split()[1]), fresh.proc.pid)
            self.assertEqual(self.jq(lock)[0], fresh.proc.pid)
            fences.append(status(lock)["lockfs"]["fence"])
            # normal exit releases it for the next round
            fresh.proc.stdin.close()
            self.assertEqual(fresh.proc.wait(timeout=20), 0)
            stale = [ln for ln in fresh.stderr_lines() if ln.startswith(("STALE", "OLD"))]
            self.assertEqual(stale, [], "the killed holder's lock must already be gone")
            wait_until(lambda: gone(lock), what="release on exit")
        self.assertEqual(fences, sorted(set(fences)), "fences must strictly increase")


if __name__ == "__main__":
    harness.main()
