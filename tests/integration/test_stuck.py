#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""SPEC R8.2, the restart workflow when the killed daemon cannot die: its
successor aborts the old connection (not run under valgrind: it needs
many fast kills)."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import Holder  # noqa: E402
from test_restart import RestartCase  # noqa: E402


CHURN = r"""
import errno, os, sys
path = sys.argv[1]
while True:
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
        os.unlink(path)
    except OSError as e:
        if e.errno in (errno.ENOTCONN, errno.ECONNABORTED, errno.EPERM, errno.ENOENT):
            os.read(0, 1)           # the mount is gone: wait to be killed
"""


class TestStuckDaemon(RestartCase):
    """A SIGKILLed daemon whose notifier thread waits in the kernel for a
    directory lock (held by a caller that waits for the dead daemon) cannot
    finish dying, so its connection stays open and callers hang. Its
    successor must abort that connection, reap nothing twice, and serve."""

    ROUNDS = 150

    def test_successor_aborts_a_daemon_that_cannot_die(self):
        stuck = 0
        for rnd in range(self.ROUNDS):
            churn = [subprocess.Popen([sys.executable, "-c", CHURN, self.p(f"c{i}.lock")],
                                      stdin=subprocess.PIPE) for i in range(4)]
            holders = [Holder(self.p(f"h{i}.lock")) for i in range(3)]
            # holder deaths make the daemon send delete notifications
            # while the churn keeps requests on the same directory in flight
            for h in holders:
                h.proc.kill()
            ended = self.m.crash()
            log = self.restart()
            for c in churn:
                c.kill()
                c.wait()
                c.stdin.close()
            for h in holders:
                h._reap()
            self.assertNotIn("does not end", log)
            if not ended:
                stuck += 1
                self.assertRegex(log, r"lockfs pid \d+ was killed but could not finish dying; "
                                      r"aborted its connection")
                break
        print(f"\n  a killed daemon could not die in round {rnd + 1}", file=sys.stderr)
        self.assertEqual(stuck, 1, f"no killed daemon got stuck in {self.ROUNDS} rounds")
        self.assertEqual(self.names(), [])



if __name__ == "__main__":
    harness.main()
