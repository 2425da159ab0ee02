#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""SPEC R8.2, the restart workflow when the killed daemon cannot die: its
successor aborts the old connection (not run under valgrind: it needs
many fast kills)."""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import Holder  # noqa: E402
from test_restart import RestartCase  # noqa: E402


CHURN = r"""
import errno, os, sys
path = sys.argv[1]
ready = False
while True:
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
        os.unlink(path)
        if not ready:               # requests are flowing: tell the test
            os.write(1, b"R")
            ready = True
    except OSError as e:
        if e.errno in (errno.ENOTCONN, errno.ECONNABORTED, errno.EPERM, errno.ENOENT):
            os.read(0, 1)           # the mount is gone: wait to be killed
"""


class TestStuckDaemon(RestartCase):
    """A SIGKILLed daemon whose notifier thread waits in the kernel for a
    directory lock (held by a caller that waits for the dead daemon) cannot
    finish dying, so its connection stays open and callers hang. Its
    successor must abort that connection, reap nothing twice, and serve."""

    ROUNDS = 400

    def test_successor_aborts_a_daemon_that_cannot_die(self):
        stuck = 0
        for rnd in range(self.ROUNDS):
            churn = [subprocess.Popen([sys.executable, "-c", CHURN, self.p(f"c{i}.lock")],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE)
                     for i in range(4)]
            for c in churn:         # each has had requests answered
                self.assertEqual(c.stdout.read(1), b"R")
            holders = [Holder(self.p(f"h{i}.lock")) for i in range(8)]
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
                c.stdout.close()
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
        # a churn process killed between its create and its unlink leaves a
        # lock for the reaper, which sees the death on its own thread
        harness.wait_until(lambda: self.names() == [], what="the killed churn's locks reaped")



class TestStateOwner(unittest.TestCase):
    """The successor finds the dying daemon by the pid in STATE_DIR/lock:
    it must be the serving process, also after the daemon detached itself
    (fuse_daemonize forks after the state was opened)."""

    def test_state_lock_names_the_detached_daemon(self):
        m = harness.Mount()
        self.addCleanup(m.stop)
        r = subprocess.run([harness.LOCKFS_BIN] + m.command()[-3:], capture_output=True,
                           text=True, timeout=30)           # no -f: it detaches
        self.assertEqual(r.returncode, 0, r.stderr)
        self.addCleanup(subprocess.run, ["fusermount3", "-u", m.mnt], capture_output=True)
        with open(os.path.join(m.state_dir, "lock")) as f:
            pid = int(f.read())
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        self.assertNotEqual(state, "Z", "the recorded pid is a live process")
        fds = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        self.assertIn("/dev/fuse", fds, "the recorded pid serves the mount")


if __name__ == "__main__":
    harness.main()
