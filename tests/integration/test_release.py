#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""SPEC §5 (R5.1-R5.5): release by unlink, exit, kill, TTL and root; the name
vanishes for everyone at once; inotify delete_self; renewal; fences;
release metrics."""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import lockfs_it  # noqa: E402
from harness import LockfsTestCase, Holder, errno, errno_of, wait_until  # noqa: E402
from lockfs_it import (EXCL, agent, break_lock, spawn, status, gone, exists, metrics, released,  # noqa: E402
                       DeleteWatch)


# Takes argv[1] with content argv[2] and keeps that descriptor; then runs
# one fd operation per stdin line, answering with its errno (0 on success).
FD_HOLDER = r"""
import os, sys
path, content = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(fd, content.replace("{pid}", str(os.getpid())).encode())
print("READY", os.getpid(), flush=True)
for line in sys.stdin:
    op = line.strip()
    try:
        if op == "ftruncate":
            os.ftruncate(fd, 0)
        elif op == "futimens":
            os.utime(fd, None)
        elif op == "futimes":
            os.utime(fd, (1, 1))
        elif op == "write":
            os.pwrite(fd, b"x", 0)
        else:
            raise ValueError(op)
        print(0, flush=True)
    except OSError as e:
        print(e.errno, flush=True)
os.close(fd)
"""


def sleep_until(t):
    """Sleep to monotonic time t: the schedule of a renewal test (a lock
    that must not expire is a non-event: only the clock shows it)."""
    d = t - time.monotonic()
    if d > 0:
        time.sleep(d)


class Late(Exception):
    """The test process kept its schedule too late to judge a deadline."""


class ReleaseMixin:

    def on_schedule(self, scenario, attempts=3):
        """Run scenario(n) (n: the attempt) until one keeps its schedule.
        A scenario raises Late when a step ended so late that the lock may
        have expired legitimately: that attempt proves nothing either way.
        A machine too loaded for every attempt fails the test (never a skip:
        a renewal that was not checked is not a pass)."""
        for n in range(attempts):
            try:
                return scenario(n)
            except Late as e:
                print(f"\n  attempt {n}: {e}; again", file=sys.stderr)
        self.fail(f"the machine kept the schedule too late {attempts} times: "
                  "the renewal could not be checked")

    @staticmethod
    def within(ttl, since, what):
        """Raise Late unless now is less than ttl seconds after since: a
        lock renewed at or after since must still be there now."""
        late = time.monotonic() - since
        if late >= ttl:
            raise Late(f"{what} {late:.2f} s after the renewal, TTL {ttl} s")

    def assert_gone_now(self, path):
        lockfs_it.assert_gone_now(self, path)

    def wait_gone(self, path, what="release"):
        wait_until(lambda: gone(path), what=what)
        self.assert_gone_now(path)


class TestRelease(ReleaseMixin, LockfsTestCase):

    def test_unlink_by_holder(self):
        p = self.p("x.lock")
        a = agent(self)
        a.ok("create", path=p, data="{pid}")
        self.assertEqual(status(p)["lockfs"]["pid"], a.pid)
        a.ok("unlink", path=p)
        self.assert_gone_now(p)         # no waiting: the unlink has returned

    def test_holder_exit(self):
        p = self.p("x.lock")
        h = Holder(p)
        self.assertEqual(h.release(), 0)
        self.wait_gone(p, what="release on exit")

    def test_holder_sigkill(self):
        p = self.p("x.lock")
        h = Holder(p)
        h.kill()
        self.wait_gone(p, what="release on SIGKILL")

    def test_root_unlink_is_ebusy_break_releases(self):
        p = self.p("x.lock")
        h = Holder(p)
        self.addCleanup(h.kill)
        self.assertEqual(status(p)["lockfs"]["pid"], h.pid)
        # SPEC R3.4: a live lock is never stale, root's unlink included
        self.assertEqual(errno_of(os.unlink, p), errno.EBUSY)
        self.assertEqual(status(p)["lockfs"]["pid"], h.pid)
        break_lock(p)
        self.assert_gone_now(p)
        self.assertIsNone(h.proc.poll(), "a break does not kill the holder")

    def test_open_reader_does_not_pin(self):
        p = self.p("x.lock")
        h = Holder(p)
        reader = open(p, "rb")
        self.addCleanup(reader.close)
        self.assertIn(b'"lockfs"', reader.read())
        # (no inotify here: like on any Linux fs, IN_DELETE_SELF waits for
        # the last open descriptor to close)
        h.kill()
        self.wait_gone(p, what="release on kill despite an open reader")

    def test_exit_releases_many(self):
        a = agent(self)
        os.mkdir(self.p("d"))
        names = [self.p("m%03d" % i) for i in range(100)] + [self.p("d", "x")]
        for n in names:
            a.ok("create", path=n, data="{pid}")
        m0 = metrics(self.m)
        self.assertEqual(m0["lockfs_locks_held"], len(names))
        a.kill()
        wait_until(lambda: os.listdir(self.m.mnt) == [".lockfs", "d"] or
                   sorted(os.listdir(self.m.mnt)) == [".lockfs", "d"],
                   what="all 101 locks released on exit")
        self.assertEqual(os.listdir(self.p("d")), [])
        for n in names[:5] + names[-1:]:
            self.assertEqual(errno_of(os.stat, n), errno.ENOENT)
        m1 = metrics(self.m)
        self.assertEqual(released(m1, "exit") - released(m0, "exit"), len(names))
        self.assertEqual(m1["lockfs_locks_held"], 0)
        os.rmdir(self.p("d"))

    def test_ttl_rewrite_changes_deadline(self):
        p = self.p("x.lock")
        a = agent(self)
        a.ok("create", path=p, data='{"pid": {pid}, "ttl_s": 100}')
        self.assertEqual(status(p)["lockfs"]["ttl_s"], 100)
        w = DeleteWatch(self, p)
        a.ok("write", path=p, data='{"pid": {pid}, "ttl_s": 1}')
        self.assertEqual(status(p)["lockfs"]["ttl_s"], 1)
        w.wait()        # long before the old deadline (100 s)

    def check_stale_fd(self, release):
        """A holder that lost its lock (released behind its back) cannot
        change the name's next lock through its old descriptor."""
        p = self.p("x.lock")
        a = agent(self)
        fd = a.ok("open", path=p, flags=["O_WRONLY", "O_CREAT", "O_EXCL"])
        a.ok("fdwrite", fd=fd, data='{"pid": {pid}, "ttl_s": 1, "who": "old"}')
        old_fence = status(p)["lockfs"]["fence"]
        release(p)
        self.assertTrue(gone(p))
        b = Holder(p, content='{"pid": {pid}, "who": "new"}')
        self.addCleanup(b.kill)
        self.assertTrue(b.ok)
        r1 = a.call("fdwrite", fd=fd, data='{"pid": {pid}, "who": "stale"}', offset=0)
        r2 = a.call("fdtruncate", fd=fd, size=0)
        st = status(p)
        self.assertEqual(st["lockfs"]["pid"], b.pid, (r1, r2))
        self.assertEqual(st.get("who"), "new", f"stale fd changed the new lock: {r1} {r2}")
        self.assertGreater(st["lockfs"]["fence"], old_fence)
        self.assertTrue(exists(p))
        a.ok("close", fd=fd)
        self.assertEqual(status(p)["lockfs"]["pid"], b.pid)

    def test_stale_fd_after_force_unlock(self):
        self.check_stale_fd(break_lock)

    def test_stale_fd_after_expiry(self):
        self.check_stale_fd(lambda p: wait_until(lambda: gone(p), what="expiry"))

    def check_lost_handle(self, release, content, ops):
        """The old descriptor of a holder whose lock was released behind its
        back (the name may be someone else's by now): each (op, errno) of
        ops fails with that errno, never ENOENT, and changes nothing."""
        p = self.p("x.lock")
        proc, out = spawn(self, [sys.executable, "-c", FD_HOLDER, p, content])
        pid = int(out.expect("READY").split()[1])
        self.assertEqual(status(p)["lockfs"]["pid"], pid)
        release(p)
        self.assertTrue(gone(p))
        for op, want in ops:
            proc.stdin.write(op + "\n")
            proc.stdin.flush()
            got = int(out.get(20, f"answer to {op}"))
            self.assertEqual(got, want, f"{op} on a lost handle: {os.strerror(got)}")
        self.assertTrue(gone(p), "the lost handle brought the name back")
        proc.stdin.close()
        self.assertEqual(proc.wait(timeout=20), 0)

    LOST_TRUNC = (("ftruncate", errno.EEXIST), ("write", errno.EEXIST))
    LOST_TIMES = (("futimens", errno.EPERM), ("futimes", errno.EPERM))

    def force_unlock(self, p):
        break_lock(p)

    def expire(self, p):
        # the holder's open descriptor defers IN_DELETE_SELF: poll
        wait_until(lambda: gone(p), what="expiry")

    def test_lost_handle_ftruncate_after_force_unlock(self):
        self.check_lost_handle(self.force_unlock, "{pid}\n", self.LOST_TRUNC)

    def test_lost_handle_ftruncate_after_expiry(self):
        self.check_lost_handle(self.expire, '{"pid": {pid}, "ttl_s": 1}', self.LOST_TRUNC)

    def test_lost_handle_futimens_after_force_unlock(self):
        self.check_lost_handle(self.force_unlock, "{pid}\n", self.LOST_TIMES)

    def test_lost_handle_futimens_after_expiry(self):
        self.check_lost_handle(self.expire, '{"pid": {pid}, "ttl_s": 1}', self.LOST_TIMES)

    def test_per_lock_ttl_expiry(self):
        p = self.p("x.lock")
        h = Holder(p, content='{"pid": {pid}, "ttl_s": 1}')
        self.addCleanup(h.kill)
        t0 = time.monotonic()
        w = DeleteWatch(self, p)
        rc, out = w.wait()      # how close to the deadline: tests/bench/run.sh (ttl)
        dt = time.monotonic() - t0
        self.assertIn("DELETE_SELF", out)
        self.assertEqual(errno_of(os.stat, p), errno.ENOENT)
        self.assertGreater(dt, 0.8, "expired too early")
        self.assert_gone_now(p)
        self.assertIsNone(h.proc.poll(), "expiry does not kill the holder")

    def test_kill_then_create(self):
        """A create looping on the name of a holder just SIGKILLed sees only
        EEXIST until it takes the name (how soon: `killed` in
        tests/bench/run.sh)."""
        p = self.p("lat.lock")
        for _ in range(50):
            h = Holder(p)
            self.assertTrue(h.ok)
            deadline = time.monotonic() + harness.EVENT_TIMEOUT
            h.proc.kill()
            while True:
                try:
                    fd = os.open(p, EXCL, 0o644)
                    break
                except OSError as e:
                    self.assertEqual(e.errno, errno.EEXIST,
                                     "a create racing a release must not see "
                                     + os.strerror(e.errno))
                    if time.monotonic() > deadline:
                        self.fail(f"lock not released {harness.EVENT_TIMEOUT} s after SIGKILL")
            os.close(fd)
            h.proc.wait()
            self.assertEqual(status(p)["lockfs"]["pid"], os.getpid())
            os.unlink(p)

    def test_inotify_unlink(self):
        p = self.p("x.lock")
        a = agent(self)
        a.ok("create", path=p, data="{pid}")
        self.assertEqual(status(p)["lockfs"]["pid"], a.pid)
        w = DeleteWatch(self, p)
        a.ok("unlink", path=p)
        rc, out = w.wait()
        self.assertEqual(rc, 0)
        self.assertIn("DELETE_SELF", out)

    def test_inotify_holder_death(self):
        p = self.p("x.lock")
        h = Holder(p)
        w = DeleteWatch(self, p)
        self.assertFalse(w.fired())
        h.kill()
        rc, out = w.wait()
        self.assertEqual(rc, 0)
        self.assertIn("DELETE_SELF", out)
        self.assert_gone_now(p)

    def test_inotify_holder_exit(self):
        p = self.p("x.lock")
        h = Holder(p)
        w = DeleteWatch(self, p)
        h.release()
        rc, out = w.wait()
        self.assertIn("DELETE_SELF", out)

    def test_inotify_root_break(self):
        p = self.p("x.lock")
        h = Holder(p)
        self.addCleanup(h.kill)
        self.assertEqual(status(p)["lockfs"]["pid"], h.pid)
        w = DeleteWatch(self, p)
        break_lock(p)
        rc, out = w.wait()
        self.assertIn("DELETE_SELF", out)

    def test_inotify_in_subdir(self):
        os.mkdir(self.p("d"))
        p = self.p("d", "x.lock")
        h = Holder(p)
        w = DeleteWatch(self, p)
        h.kill()
        rc, out = w.wait()
        self.assertIn("DELETE_SELF", out)
        self.assert_gone_now(p)

    def test_renewal_keeps_lock(self):
        self.on_schedule(self.renewal_keeps_lock)

    def renewal_keeps_lock(self, n):
        p = self.p(f"r{n}.lock")
        a = agent(self)
        t0 = time.monotonic()
        a.ok("create", path=p, data='{"pid": {pid}, "ttl_s": 2}')
        w = DeleteWatch(self, p)
        sleep_until(t0 + 1.0)
        touched = time.monotonic()
        a.ok("touch", path=p)                     # deadline -> ~3.0
        self.within(2, t0, "the touch ended")
        sleep_until(t0 + 2.5)
        held, fired = exists(p), w.fired()
        self.within(2, touched, "the check ended")
        self.assertTrue(held, "touch by the holder must renew the TTL")
        self.assertFalse(fired)
        written = time.monotonic()
        a.ok("write", path=p, data='{"pid": {pid}, "ttl_s": 2}')   # deadline -> ~4.5
        self.within(2, touched, "the write ended")
        sleep_until(t0 + 3.7)
        held, fired = exists(p), w.fired()
        self.within(2, written, "the check ended")
        self.assertTrue(held, "a write by the holder must renew the TTL")
        self.assertFalse(fired)
        rc, out = w.wait()
        dt = time.monotonic() - t0
        self.assertIn("DELETE_SELF", out)
        self.assertGreater(dt, 4.0)
        self.assert_gone_now(p)

    def test_fences_increase(self):
        seen = []
        p = self.p("f.lock")
        for _ in range(5):
            fd = os.open(p, EXCL, 0o644)
            os.close(fd)
            seen.append(status(p)["lockfs"]["fence"])
            os.unlink(p)
        for _ in range(3):          # via a holder's death
            h = Holder(p)
            seen.append(status(p)["lockfs"]["fence"])
            h.kill()
            wait_until(lambda: gone(p), what="release")
        names = ["a.lock", "b.lock", "c.lock", "a.lock"]
        holders = []
        for n in names:
            if n == "a.lock":
                if holders:
                    holders[0].kill()
                    wait_until(lambda: gone(self.p("a.lock")), what="release")
            h = Holder(self.p(n))
            self.addCleanup(h.kill)
            holders.append(h)
            seen.append(status(self.p(n))["lockfs"]["fence"])
        for f in seen:
            self.assertTrue(isinstance(f, int) and not isinstance(f, bool))
        self.assertEqual(seen, sorted(seen))
        self.assertEqual(len(set(seen)), len(seen), f"fences not strictly increasing: {seen}")
        # renewals and rewrites keep the fence; a new acquisition tops all
        a = agent(self)
        q = self.p("q.lock")
        a.ok("create", path=q, data="{pid}")
        f = status(q)["lockfs"]["fence"]
        self.assertGreater(f, seen[-1])
        a.ok("touch", path=q)
        a.ok("write", path=q, data='{"pid": {pid}, "n": 2}')
        self.assertEqual(status(q)["lockfs"]["fence"], f)

    def test_metrics_by_cause(self):
        m0 = metrics(self.m)
        p = self.p("x.lock")
        # unlink by holder
        a = agent(self)
        a.ok("create", path=p, data="{pid}")
        a.ok("unlink", path=p)
        m1 = metrics(self.m)
        self.assertEqual(released(m1, "unlink") - released(m0, "unlink"), 1)
        # exit and kill
        Holder(p).release()
        wait_until(lambda: gone(p), what="release on exit")
        Holder(p).kill()
        wait_until(lambda: gone(p), what="release on kill")
        m2 = metrics(self.m)
        self.assertEqual(released(m2, "exit") - released(m1, "exit"), 2)
        # root breaks it (lockctl break)
        h = Holder(p)
        self.addCleanup(h.kill)
        break_lock(p)
        m3 = metrics(self.m)
        self.assertEqual(released(m3, "root") - released(m2, "root"), 1)
        # ttl
        h2 = Holder(p, content='{"pid": {pid}, "ttl_s": 1}')
        self.addCleanup(h2.kill)
        DeleteWatch(self, p).wait()
        m4 = metrics(self.m)
        self.assertEqual(released(m4, "ttl") - released(m3, "ttl"), 1)
        self.assertEqual(m4["lockfs_expired_total"] - m3.get("lockfs_expired_total", 0), 1)
        # detached lock unlinked by its creator uid
        subprocess.run(["sh", "-c", f"echo 0 > {p}"], check=True, timeout=20)
        self.assertEqual(status(p)["lockfs"]["how"], "detached")
        os.unlink(p)
        m5 = metrics(self.m)
        self.assertEqual(released(m5, "detached") - released(m4, "detached"), 1)
        # nothing else moved
        for c in ("unlink", "exit", "root", "ttl"):
            self.assertEqual(released(m5, c), released(m4, c), c)
        self.assertEqual(m5["lockfs_acquired_total"] - m0["lockfs_acquired_total"], 6)
        self.assertEqual(m5["lockfs_locks_held"], 0)


def pidfd_count(pid):
    """Descriptors of process pid that are pidfds."""
    n = 0
    d = f"/proc/{pid}/fd"
    for fd in os.listdir(d):
        try:
            if os.readlink(os.path.join(d, fd)) == "anon_inode:[pidfd]":
                n += 1
        except FileNotFoundError:
            pass
    return n


@unittest.skipIf(harness.WRAPPER, "the daemon is wrapped (valgrind has no pidfd_open, so it "
                 "polls) and Mount.proc may not be the daemon")
class TestPidfds(ReleaseMixin, LockfsTestCase):
    """R5.1: holder death is watched through pidfds, one per holder process
    (not per lock), closed when the process exits (kept after its last
    release for its next lock, for at most 64 such processes)."""

    def test_one_pidfd_per_holder_process(self):
        daemon = self.m.proc.pid
        self.assertEqual(pidfd_count(daemon), 0)
        a = agent(self)
        names = [self.p(f"a{i}.lock") for i in range(3)]
        for n in names:
            a.ok("create", path=n, data="{pid}")
        self.assertEqual([status(n)["lockfs"]["pid"] for n in names], [a.pid] * 3)
        self.assertEqual(pidfd_count(daemon), 1, "one pidfd for a process holding 3 locks")
        b = agent(self)
        q = self.p("b.lock")
        b.ok("create", path=q, data="{pid}")
        self.assertEqual(status(q)["lockfs"]["pid"], b.pid)
        self.assertEqual(pidfd_count(daemon), 2, "one pidfd per holder process")
        # contenders are not watched: a refused create, a contender handle
        # and a read leave no pidfd behind
        o = agent(self)
        self.assertEqual(o.err("create", path=names[0], data="{pid}"), errno.EEXIST)
        self.assertEqual(o.ok("open_write", path=names[0], creat=True)["write"], errno.EEXIST)
        self.assertEqual(json.loads(o.ok("read", path=q))["lockfs"]["pid"], b.pid)
        self.assertEqual(pidfd_count(daemon), 2)
        o.exit()
        # an unlink of one of several locks keeps the watch
        a.ok("unlink", path=names[0])
        self.assertEqual(pidfd_count(daemon), 2)
        a.kill()
        b.exit()
        for n in names[1:] + [q]:
            wait_until(lambda: gone(n), what="release on holder exit")
        self.assertEqual(pidfd_count(daemon), 0, "pidfds of dead holders must be closed")
        # after the last lock of a live holder its pidfd stays, for its next
        # lock (a take/release loop opens none), until the process exits
        c = agent(self)
        c.ok("create", path=q, data="{pid}")
        self.assertEqual(pidfd_count(daemon), 1)
        c.ok("unlink", path=q)
        self.assertEqual(pidfd_count(daemon), 1)
        for _ in range(3):
            c.ok("create", path=q, data="{pid}")
            c.ok("unlink", path=q)
        self.assertEqual(pidfd_count(daemon), 1)
        c.exit()
        wait_until(lambda: pidfd_count(daemon) == 0, what="idle pidfd closed at exit")


class TestMountTTL(ReleaseMixin, LockfsTestCase):
    # ttl= ends detached locks only; holder_ttl= gives live holders the same
    # TTL here (SPEC R5.3; test_ttl_break.py: live holders without it)
    MOUNT_OPTS = "ttl=1,holder_ttl=1"

    def test_mount_ttl_expiry(self):
        p = self.p("x.lock")
        t0 = time.monotonic()
        h = Holder(p)
        self.addCleanup(h.kill)
        self.assertEqual(status(p)["lockfs"]["ttl_s"], 1)
        w = DeleteWatch(self, p)
        rc, out = w.wait()
        dt = time.monotonic() - t0
        self.assertIn("DELETE_SELF", out)
        self.assertGreater(dt, 0.8)
        self.assert_gone_now(p)
        mm = metrics(self.m)
        self.assertEqual(released(mm, "ttl"), 1)

    def test_detached_lock_expires(self):
        p = self.p("d.lock")
        subprocess.run(["sh", "-c", f"echo 0 > {p}"], check=True, timeout=20)
        self.assertEqual(status(p)["lockfs"]["how"], "detached")
        w = DeleteWatch(self, p)
        rc, out = w.wait()
        self.assertIn("DELETE_SELF", out)
        self.assert_gone_now(p)

    def test_per_lock_ttl_longer_than_mount(self):
        self.on_schedule(self.per_lock_ttl_longer_than_mount)

    def per_lock_ttl_longer_than_mount(self, n):
        p = self.p(f"x{n}.lock")
        taken = time.monotonic()
        h = Holder(p, content='{"pid": {pid}, "ttl_s": 3}')
        self.addCleanup(h.kill)
        w = DeleteWatch(self, p)
        t0 = time.monotonic()
        # past the mount default the lock must still be there
        sleep_until(t0 + 1.6)
        held, fired = exists(p), w.fired()
        self.within(3, taken, "the check ended")
        self.assertTrue(held)
        self.assertFalse(fired)
        w.wait()
        self.assertGreater(time.monotonic() - t0, 2.0)

    def test_touch_renews_mount_ttl(self):
        self.on_schedule(self.touch_renews_mount_ttl)

    def touch_renews_mount_ttl(self, n):
        p = self.p(f"x{n}.lock")
        a = agent(self)
        renewed = time.monotonic()
        a.ok("create", path=p, data="{pid}")
        t0 = time.monotonic()
        w = DeleteWatch(self, p)
        for k in range(1, 5):               # renew every 0.5 s for 2 s
            sleep_until(t0 + 0.5 * k)
            touched = time.monotonic()
            a.ok("touch", path=p)
            self.within(1, renewed, "a touch ended")
            renewed = touched
        held, fired = exists(p), w.fired()
        self.within(1, renewed, "the check ended")
        self.assertTrue(held)
        self.assertFalse(fired)
        w.wait()
        self.assertGreater(time.monotonic() - t0, 2.5)


if __name__ == "__main__":
    harness.main()
