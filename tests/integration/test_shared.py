# SPDX-License-Identifier: MIT
"""Shared locks on lockfs (SPEC R7.3): flock(LOCK_SH) (`flock -s`) and
fcntl read locks let many holders share a name; an exclusive request
(flock LOCK_EX, a write lock, an O_EXCL create) waits or fails until the
last sharer is gone, and a shared request that comes while a writer waits
queues behind it, so writers are not starved. The status lists every
holder of a shared lock and every waiter (kind, pid, since; issue 13
point 4). The tools: `flock -s` readers with a waiting writer, Python
fasteners' InterProcessReaderWriterLock readers (Debian's
python3-fasteners).

Every blocking call runs in a child process and is awaited with a
timeout, so a daemon bug fails a test instead of hanging the suite."""
import errno
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import LockfsTestCase, wait_until  # noqa: E402
from lockfs_it import gone, lockinfo, metrics, parse_iso, spawn  # noqa: E402
from test_posix import DEBIAN_PYTHON, Locker, T, tool  # noqa: E402


def waiters(m):
    return metrics(m).get("lockfs_waiters", 0.0)


def holder_pids(path):
    info = lockinfo(path)
    return sorted(h["pid"] for h in info.get("holders", [])) if info.get("shared") else []


class SharedLocks(LockfsTestCase):
    def group(self, argv):
        """spawn argv in a session of its own, all of it killed at the end
        (flock(1)'s command would outlive a killed flock(1))."""
        p, out = spawn(self, argv, start_new_session=True)
        self.addCleanup(lambda: p.poll() is None and os.killpg(p.pid, 9))
        return p, out

    def flock_run(self, *args):
        return subprocess.run(["flock", *args], stderr=subprocess.DEVNULL,
                              timeout=T).returncode

    def test_flock_readers_share_and_a_waiting_writer_goes_first(self):
        tool("flock")
        p = self.p("x.lock")
        inside = ["sh", "-c", "echo in; exec sleep 60"]
        r1, o1 = self.group(["flock", "-s", p, *inside])
        self.assertEqual(o1.get(T, what="first reader inside"), "in")
        r2, o2 = self.group(["flock", "-s", p, *inside])
        self.assertEqual(o2.get(T, what="second reader inside, beside the first"), "in")
        self.assertEqual(holder_pids(p), sorted([r1.pid, r2.pid]))
        info = lockinfo(p)
        self.assertEqual(info["holders_total"], 2)
        self.assertEqual(self.flock_run("-n", p, "true"), 1)        # a writer: refused
        with self.assertRaises(FileExistsError):                   # so is an O_EXCL create
            os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
        self.assertEqual(self.flock_run("-s", "-n", p, "true"), 0)  # a third reader joins

        w, ow = self.group(["flock", p, *inside])
        wait_until(lambda: waiters(self.m) == 1, T, "the writer parked")
        info = lockinfo(p)
        self.assertEqual(info["waiters_total"], 1)
        (wt,) = info["waiters"]
        self.assertEqual((wt["pid"], wt["via"], wt["mode"]), (w.pid, "flock", "exclusive"))
        parse_iso(wt["since"])
        # a reader that comes after the writer waits behind it
        self.assertEqual(self.flock_run("-s", "-n", p, "true"), 1)
        late, ol = self.group(["flock", "-s", p, *inside])
        wait_until(lambda: waiters(self.m) == 2, T, "the late reader parked")
        self.assertEqual([x["mode"] for x in lockinfo(p)["waiters"]], ["exclusive", "shared"])

        os.killpg(r1.pid, 9)
        r1.wait(timeout=T)
        wait_until(lambda: holder_pids(p) == [r2.pid], T, "the second reader holds alone")
        self.assertTrue(ow.q.empty())                              # the writer still waits
        os.killpg(r2.pid, 9)
        self.assertEqual(ow.get(T, what="the writer inside"), "in")
        self.assertEqual(lockinfo(p)["pid"], w.pid)
        self.assertFalse(lockinfo(p).get("shared", False))
        self.assertTrue(ol.q.empty())                              # the late reader waits
        os.killpg(w.pid, 9)
        self.assertEqual(ol.get(T, what="the late reader inside"), "in")
        self.assertEqual(holder_pids(p), [late.pid])
        os.killpg(late.pid, 9)
        late.wait(timeout=T)
        wait_until(lambda: gone(p), T, "the lock gone with its last sharer")

    def test_fcntl_read_locks_share(self):
        p = self.p("r.lock")
        a = Locker(self, p, "rdlock")
        self.assertEqual(a.errno(), 0)
        b = Locker(self, p, "rdlock")
        self.assertEqual(b.errno(), 0)                             # shares with a
        self.assertEqual(holder_pids(p), sorted([a.pid, b.pid]))
        # a created the name by its open, then read-locked it
        self.assertEqual([h["via"] for h in lockinfo(p)["holders"]], ["creator", "fcntl"])
        c = Locker(self, p, "lockf")                               # a write lock
        self.assertEqual(c.errno(), errno.EAGAIN)
        self.assertEqual(c.do("getlk")["value"], {"type": "rdlck", "pid": a.pid})
        f = Locker(self, p, "flock")                               # flock LOCK_EX|LOCK_NB
        self.assertEqual(f.errno(), errno.EWOULDBLOCK)
        self.assertEqual(a.do("unlock"), {"ok": True, "value": None})
        wait_until(lambda: lockinfo(p)["pid"] == b.pid, T, "b the recorded holder")
        self.assertEqual(c.do("lock lockf")["errno"], errno.EAGAIN)
        self.assertEqual(b.do("close"), {"ok": True, "value": None})
        self.assertTrue(gone(p))
        self.assertEqual(c.do("lock lockf"), {"ok": True, "value": None})

    def test_exclusive_waiters_are_listed(self):
        """Point 4 also for an exclusive lock: every waiter with its kind,
        pid and time."""
        p = self.p("e.lock")
        a = Locker(self, p, "flock")
        self.assertEqual(a.errno(), 0)
        b = Locker(self, p, "lockf", wait=True)
        wait_until(lambda: waiters(self.m) == 1, T, "the lockf waiter parked")
        c = Locker(self, p, "flock", wait=True)
        wait_until(lambda: waiters(self.m) == 2, T, "the flock waiter parked")
        info = lockinfo(p)
        self.assertNotIn("holders", info)
        self.assertEqual([(x["pid"], x["via"], x["mode"]) for x in info["waiters"]],
                         [(b.pid, "fcntl", "exclusive"), (c.pid, "flock", "exclusive")])
        a.kill()
        self.assertEqual(b.errno(), 0)
        self.assertEqual([x["pid"] for x in lockinfo(p)["waiters"]], [c.pid])

    def test_fasteners_reader_writer_lock_readers_share(self):
        if not os.path.exists(DEBIAN_PYTHON):
            raise AssertionError("no /usr/bin/python3 (python3-fasteners is for it)")
        p = self.p("rw.lock")
        body = ("import fasteners, sys\n"
                "l = fasteners.InterProcessReaderWriterLock(sys.argv[1])\n"
                "cm = l.write_lock() if sys.argv[2] == 'w' else l.read_lock()\n"
                "with cm:\n"
                "    print('in', flush=True)\n"
                "    sys.stdin.readline()\n")
        r1, o1 = spawn(self, [DEBIAN_PYTHON, "-c", body, p, "r"])
        self.assertEqual(o1.get(T, what="first reader inside"), "in")
        r2, o2 = spawn(self, [DEBIAN_PYTHON, "-c", body, p, "r"])
        self.assertEqual(o2.get(T, what="second reader inside, beside the first"), "in")
        tries = metrics(self.m).get("lockfs_contended_total", 0.0)
        w, ow = spawn(self, [DEBIAN_PYTHON, "-c", body, p, "w"])   # polls with tries
        wait_until(lambda: metrics(self.m).get("lockfs_contended_total", 0.0) > tries, T,
                   "the writer tried")
        for r in (r1, r2):
            self.assertTrue(ow.q.empty())
            r.stdin.write("\n")
            r.stdin.flush()
            self.assertEqual(r.wait(timeout=T), 0)
        self.assertEqual(ow.get(T, what="the writer inside"), "in")
        self.assertEqual(lockinfo(p)["pid"], w.pid)
        w.stdin.write("\n")
        w.stdin.flush()
        self.assertEqual(w.wait(timeout=T), 0)


class SharedLocksAcrossRestarts(LockfsTestCase):
    """A restart gives every live sharer its share back (R7.3, R8.2): the
    journal keeps them all, so a writer cannot take the lock beside a
    reader whose descriptor died with the old mount."""

    def restart(self):
        n = len(self.m.log_lines)
        self.m.crash()
        self.m.start()
        return "\n".join(self.m.log_lines[n:])

    def test_sharers_come_back_and_keep_out_a_writer(self):
        p = self.p("r.lock")
        a = Locker(self, p, "rdlock")
        self.assertEqual(a.errno(), 0)
        b = Locker(self, p, "rdlock")
        self.assertEqual(b.errno(), 0)
        fence = lockinfo(p)["fence"]
        self.restart()
        info = lockinfo(p)
        self.assertEqual((info["pid"], info["fence"]), (a.pid, fence))
        self.assertEqual(holder_pids(p), sorted([a.pid, b.pid]))
        w = Locker(self, p, "flock")                      # a writer, LOCK_NB
        self.assertEqual(w.errno(), errno.EWOULDBLOCK)
        a.kill()
        wait_until(lambda: lockinfo(p).get("pid") == b.pid, T, "b holds it")
        self.assertEqual(w.do("lock flock")["errno"], errno.EWOULDBLOCK)
        b.kill()
        wait_until(lambda: gone(p), T, "the lock gone with its last sharer")
        self.assertEqual(w.do("lock flock"), {"ok": True, "value": None})

    def test_a_sharer_holds_it_when_the_holder_died_meanwhile(self):
        p = self.p("r.lock")
        a = Locker(self, p, "rdlock")
        self.assertEqual(a.errno(), 0)
        b = Locker(self, p, "rdlock")
        self.assertEqual(b.errno(), 0)
        self.m.crash()
        a.kill()
        n = len(self.m.log_lines)
        self.m.start()
        log = "\n".join(self.m.log_lines[n:])
        self.assertIn(f"holder pid {a.pid} is gone, its sharer pid {b.pid} holds it now", log)
        info = lockinfo(p)
        self.assertEqual((info["pid"], info["how"]), (b.pid, "fcntl"))
        self.assertFalse(info.get("shared", False))       # b alone: exclusive now
        b.kill()
        wait_until(lambda: gone(p), T, "the lock gone with b")


if __name__ == "__main__":
    harness.main()
