#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""TTLs that spare live holders (SPEC R5.3) and unlink versus break
(SPEC R3.4), on real mounts.

The mount's -o ttl= ends detached locks (content "0") only; a lock whose
holder is a live process keeps it past that TTL (its status says
expires_at null) unless -o holder_ttl= says otherwise, and that expiry is
logged. An unlink of a live lock by anyone but its holder fails with EBUSY,
root's included, and changes nothing; `lockctl break` breaks it (root, and
under -o user_break the lock's uid, never another uid), logged with the
fence, the holder and the breaker. A detached lock is still removed by its
creator's uid and by root."""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import (LockfsTestCase, Holder, TEST_USER, TEST_USER2, WRAPPER,  # noqa: E402
                     as_user, errno, errno_of, wait_until)
from lockfs_it import agent, assert_gone_now, gone, metrics, released, status  # noqa: E402

LOCKCTL = os.path.abspath(os.environ.get("LOCKCTL_BIN", "build/lockctl"))
TIMEOUT = 60 if WRAPPER else 20

# Takes argv[1] with an exclusive create, flock(LOCK_EX)s it as flock(1)
# would, reports "OK pid", then holds until its stdin closes.
FLOCK_HOLD = r"""
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
print("OK", os.getpid(), flush=True)
sys.stdin.read()
"""


def lockctl(*args, user=None):
    cmd = [LOCKCTL, *args]
    if user:
        cmd = as_user(cmd, user)
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=TIMEOUT)


class Case(LockfsTestCase):

    def flock_holder(self, name, user=None):
        """A live process that created and flocked name; (proc, pid)."""
        cmd = [sys.executable, "-c", FLOCK_HOLD, self.p(name)]
        if user:
            cmd = as_user(cmd, user)
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

        def stop():
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=20)
            proc.stdin.close()
            proc.stdout.close()
        self.addCleanup(stop)
        line = proc.stdout.readline().split()
        self.assertEqual(line[:1], ["OK"], "the flock holder took its lock")
        return proc, int(line[1])

    def holder(self, name, content="{pid}\n", user=None):
        h = Holder(self.p(name), content, user=user)
        self.addCleanup(h.kill)
        self.assertTrue(h.ok, h.errno)
        return h

    def await_log(self, regex):
        wait_until(lambda: re.search(regex, self.m.log()), TIMEOUT, f"log line {regex}")

    def detached(self, name, user=None):
        """A detached lock (content "0", as liblockfile writes) made by an
        agent that then exits: nobody holds it."""
        a = agent(self, user=user)
        a.ok("create", path=self.p(name), data="0")
        lf = status(self.p(name))["lockfs"]
        self.assertEqual((lf["how"], lf["pid"]), ("detached", None))
        return lf


class TestTtlSparesLiveHolders(Case):
    MOUNT_OPTS = "ttl=2"

    def test_flock_holder_outlives_the_mount_ttl(self):
        proc, pid = self.flock_holder("a.lock")
        lf = status(self.p("a.lock"))["lockfs"]
        self.assertEqual(lf["pid"], pid)
        self.assertEqual(lf["ttl_s"], 0, "the mount's TTL is not a live holder's")
        self.assertIsNone(lf["expires_at"])
        # A detached lock taken after it, on the same 2 s TTL, is the event
        # that the TTL has passed for a.lock too: await its end.
        self.detached("d.lock")
        wait_until(lambda: gone(self.p("d.lock")), TIMEOUT, "the detached lock to expire")
        # Past the mount's TTL (the detached lock expired, and had been
        # taken later): the live holder's lock is still there, unchanged.
        doc = status(self.p("a.lock"))["lockfs"]
        self.assertEqual((doc["pid"], doc["fence"]), (pid, lf["fence"]))
        self.assertGreaterEqual(doc["age_ms"], 2000)
        self.assertIsNone(doc["expires_at"])
        self.assertEqual(released(metrics(self.m), "ttl"), 1, "only the detached lock expired")
        self.assertIsNone(proc.poll())

    def test_detached_lock_expires_on_the_mount_ttl(self):
        lf = self.detached("d.lock")
        self.assertEqual(lf["ttl_s"], 2)
        self.assertIsNotNone(lf["expires_at"])
        wait_until(lambda: gone(self.p("d.lock")), TIMEOUT, "the detached lock to expire")
        self.assertEqual(released(metrics(self.m), "ttl"), 1)

    def test_holders_own_ttl_still_applies(self):
        h = self.holder("own.lock", '{"pid": {pid}, "ttl_s": 1}')
        self.assertEqual(status(self.p("own.lock"))["lockfs"]["ttl_s"], 1)
        wait_until(lambda: gone(self.p("own.lock")), TIMEOUT, "its own TTL to end it")
        self.assertIsNone(h.proc.poll())
        self.await_log(r"released /own\.lock \(fence \d+, pid %d\): TTL ran out \(1 s\) "
                       r"while its holder \(uid 0\) runs" % h.pid)

    def test_rewritten_to_zero_becomes_the_mount_ttl(self):
        a = agent(self)
        a.ok("create", path=self.p("z.lock"), data="{pid}")
        self.assertEqual(status(self.p("z.lock"))["lockfs"]["ttl_s"], 0)
        a.ok("write", path=self.p("z.lock"), data="0")           # detached now
        lf = status(self.p("z.lock"))["lockfs"]
        self.assertEqual((lf["how"], lf["ttl_s"]), ("detached", 2))
        wait_until(lambda: gone(self.p("z.lock")), TIMEOUT, "the now detached lock to expire")


class TestHolderTtl(Case):
    MOUNT_OPTS = "ttl=0,holder_ttl=2"

    def test_holder_ttl_expires_a_live_holder_and_logs_it(self):
        proc, pid = self.flock_holder("a.lock")
        lf = status(self.p("a.lock"))["lockfs"]
        self.assertEqual(lf["ttl_s"], 2)
        self.assertIsNotNone(lf["expires_at"])
        wait_until(lambda: gone(self.p("a.lock")), TIMEOUT, "holder_ttl to end the lock")
        self.assertIsNone(proc.poll(), "the holder is not touched")
        self.await_log(rf"released /a\.lock \(fence {lf['fence']}, pid {pid}\): TTL ran out "
                       r"\(2 s\) while its holder \(uid 0\) runs")
        # a detached lock has no TTL on this mount (ttl=0)
        d = self.detached("d.lock")
        self.assertEqual(d["ttl_s"], 0)
        self.assertIsNone(d["expires_at"])

    def test_touch_by_the_holder_renews(self):
        a = agent(self)
        a.ok("create", path=self.p("r.lock"), data="{pid}")
        before = status(self.p("r.lock"))["lockfs"]["expires_at"]
        # the wall clock must move on for a renewal to show: await that
        # (expires_at has millisecond precision)
        t0 = time.time()
        wait_until(lambda: time.time() - t0 > 0.01, TIMEOUT, "the clock to move")
        a.ok("touch", path=self.p("r.lock"))
        self.assertGreater(status(self.p("r.lock"))["lockfs"]["expires_at"], before)


class TestUnlinkOfALiveLock(Case):
    MOUNT_OPTS = "allow_other"

    def test_root_rm_is_ebusy_and_changes_nothing(self):
        h = self.holder("a.lock")
        before = status(self.p("a.lock"))
        self.assertEqual(errno_of(os.unlink, self.p("a.lock")), errno.EBUSY)
        r = subprocess.run(["rm", "-f", self.p("a.lock")], capture_output=True)
        self.assertNotEqual(r.returncode, 0, "rm -f of a live lock fails")
        self.assertIn(b"busy", r.stderr.lower())
        after = status(self.p("a.lock"))
        self.assertEqual((after["lockfs"]["pid"], after["lockfs"]["fence"]),
                         (h.pid, before["lockfs"]["fence"]))
        self.assertEqual(after["lockfs"]["acquired_at"], before["lockfs"]["acquired_at"])
        self.assertNotIn("force-unlock", self.m.log())
        self.assertEqual(released(metrics(self.m), "root"), 0)

    def test_other_uids_and_names_get_ebusy(self):
        uid, _ = harness.ensure_user(TEST_USER)
        a = agent(self, user=TEST_USER)
        a.ok("create", path=self.p("a.lock"), data="{pid}")
        a.ok("link", path=self.p("a.lock"), dst=self.p("b.lock"))   # a second name
        self.assertEqual(errno_of(os.unlink, self.p("b.lock")), errno.EBUSY)   # root
        self.assertEqual(errno_of(os.unlink, self.p("a.lock")), errno.EBUSY)
        same = agent(self, user=TEST_USER)                # the same uid, not the holder
        self.assertEqual(same.err("unlink", path=self.p("a.lock")), errno.EBUSY)
        other = agent(self, user=TEST_USER2)
        self.assertEqual(other.err("unlink", path=self.p("b.lock")), errno.EBUSY)
        # the holder's child (a script's rm) releases it
        a.ok("unlink", path=self.p("b.lock"), child=True)
        self.assertTrue(gone(self.p("b.lock")))
        self.assertEqual(status(self.p("a.lock"))["lockfs"]["pid"], a.pid)
        a.ok("unlink", path=self.p("a.lock"), child=True)
        assert_gone_now(self, self.p("a.lock"))

    def test_detached_lock_goes_for_its_creators_uid_and_root(self):
        harness.ensure_user(TEST_USER)
        harness.ensure_user(TEST_USER2)
        self.detached("u.lock", user=TEST_USER)
        other = agent(self, user=TEST_USER2)
        self.assertEqual(other.err("unlink", path=self.p("u.lock")), errno.EPERM)
        creator = agent(self, user=TEST_USER)             # another process of its uid
        creator.ok("unlink", path=self.p("u.lock"))
        assert_gone_now(self, self.p("u.lock"))
        lf = self.detached("r.lock", user=TEST_USER)
        os.unlink(self.p("r.lock"))                       # root
        assert_gone_now(self, self.p("r.lock"))
        self.await_log(rf"force-unlock of /r\.lock \(fence {lf['fence']}, held by pid 0 - "
                       rf"uid {lf['uid']}\) by pid {os.getpid()} uid 0")


class TestBreak(Case):
    MOUNT_OPTS = "allow_other"

    def test_root_breaks_a_live_lock_logged(self):
        uid, _ = harness.ensure_user(TEST_USER)
        proc, pid = self.flock_holder("a.lock", user=TEST_USER)
        lf = status(self.p("a.lock"))["lockfs"]
        self.assertEqual(errno_of(os.unlink, self.p("a.lock")), errno.EBUSY)
        r = lockctl("break", self.p("a.lock"))
        self.assertEqual(r.returncode, 0, r)
        assert_gone_now(self, self.p("a.lock"))
        self.assertIsNone(proc.poll(), "the holder itself is not touched")
        self.await_log(rf"force-unlock of /a\.lock \(fence {lf['fence']}, held by pid {pid} "
                       rf"\S* uid {uid}\) by pid \d+ uid 0")
        self.assertEqual(released(metrics(self.m), "root"), 1)

    def test_other_uid_is_refused_without_user_break(self):
        harness.ensure_user(TEST_USER)
        uid2, _ = harness.ensure_user(TEST_USER2)
        h = self.holder("a.lock", user=TEST_USER2)
        for user in (TEST_USER, TEST_USER2):              # the lock's own uid too
            r = lockctl("break", self.p("a.lock"), user=user)
            self.assertEqual(r.returncode, 77, r)         # EPERM
            self.assertEqual(status(self.p("a.lock"))["lockfs"]["pid"], h.pid)
        self.assertNotIn("force-unlock", self.m.log())


class TestUserBreak(Case):
    MOUNT_OPTS = "allow_other,user_break"

    def test_the_locks_uid_breaks_it_others_not(self):
        uid, _ = harness.ensure_user(TEST_USER)
        harness.ensure_user(TEST_USER2)
        h = self.holder("a.lock", user=TEST_USER)
        lf = status(self.p("a.lock"))["lockfs"]
        same = agent(self, user=TEST_USER)
        self.assertEqual(same.err("unlink", path=self.p("a.lock")), errno.EBUSY)
        r = lockctl("break", self.p("a.lock"), user=TEST_USER2)
        self.assertEqual(r.returncode, 77, r)
        self.assertEqual(status(self.p("a.lock"))["lockfs"]["pid"], h.pid)
        r = lockctl("break", self.p("a.lock"), user=TEST_USER)
        self.assertEqual(r.returncode, 0, r)
        assert_gone_now(self, self.p("a.lock"))
        self.await_log(rf"force-unlock of /a\.lock \(fence {lf['fence']}, held by pid {h.pid} "
                       rf"\S* uid {uid}\) by pid \d+ uid {uid}")


if __name__ == "__main__":
    harness.main()
