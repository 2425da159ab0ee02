# SPDX-License-Identifier: MIT
"""fcntl(2) record locks, OFD locks and lockf(3) on lockfs (SPEC R7.4):
served by the daemon and the same lock as the name and as flock(2). A
write or read lock of any range is the whole lock; F_SETLK on a held lock
fails with EAGAIN, F_SETLKW waits in the same FIFO as flock waiters (a
signal cancels it, the holder's death hands the lock on); F_GETLK reports
F_UNLCK or the holder's pid. The owner rules are the kernel's: a POSIX lock
goes at its process's close of any descriptor of the file or at its exit,
and is not inherited by a child; an OFD lock goes at the last close of its
open file. The tools: lckdo (moreutils) with and without -w, s6-setlock
with -n and blocking, Python fasteners' InterProcessLock and
InterProcessReaderWriterLock writers.

Every blocking call runs in a child process and is awaited with a
timeout, so a daemon bug fails a test instead of hanging the suite."""
import errno
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import LockfsTestCase, wait_until  # noqa: E402
from lockfs_it import agent, exists, gone, lockinfo, metrics, spawn  # noqa: E402

SLOW = 4 if harness.WRAPPER else 1      # under valgrind everything is slower
T = 20 * SLOW                           # ceiling for one awaited step
DEBIAN_PYTHON = "/usr/bin/python3"      # where Debian's python3-fasteners is

# A process that opens PATH and locks it as told (argv: path, api, wait),
# answers one JSON line, then performs one command per stdin line (unlock,
# close, getlk, closeother, fork_try, dup_close) with one JSON answer each;
# it exits at EOF. api: lockf (F_SETLK(W) via lockf(3)), rdlock (fcntl
# F_RDLCK), ofd (F_OFD_SETLK(W)), flock, or none (just open).
LOCKER = r"""
import errno, fcntl, json, os, signal, struct, sys

path, api, wait = sys.argv[1], sys.argv[2], sys.argv[3] == "wait"
FMT = "hhqqi"                 # struct flock on x86-64 Linux

class Alarm(Exception):
    pass

def on_alarm(sig, frame):
    raise Alarm()

def lock(fd, kind, unlock=False):
    if kind == "flock":
        fcntl.flock(fd, fcntl.LOCK_UN if unlock else
                    fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    elif kind == "lockf":
        fcntl.lockf(fd, fcntl.LOCK_UN if unlock else
                    fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB), 1, 0)
    else:
        t = fcntl.F_UNLCK if unlock else (fcntl.F_RDLCK if kind == "rdlock" else fcntl.F_WRLCK)
        if kind == "ofd":
            cmd = fcntl.F_OFD_SETLKW if wait else fcntl.F_OFD_SETLK
        else:
            cmd = fcntl.F_SETLKW if wait else fcntl.F_SETLK
        fcntl.fcntl(fd, cmd, struct.pack(FMT, t, 0, 10, 5, 0))   # a range: the whole lock

def answer(fn):
    try:
        v = fn()
        out = {"ok": True, "value": v}
    except Alarm:
        out = {"ok": False, "errno": errno.EINTR}
    except OSError as e:
        out = {"ok": False, "errno": e.errno}
    print(json.dumps(out), flush=True)

def getlk():
    r = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack(FMT, fcntl.F_WRLCK, 0, 0, 0, 0))
    t, _, start, length, pid = struct.unpack(FMT, r)
    return {"type": {fcntl.F_UNLCK: "unlck", fcntl.F_WRLCK: "wrlck",
                     fcntl.F_RDLCK: "rdlck"}[t], "pid": pid}

def fork_try():
    pid = os.fork()
    if pid == 0:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os._exit(0)
        except OSError as e:
            os._exit(e.errno)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

signal.signal(signal.SIGALRM, on_alarm)
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
extra = []
if os.environ.get("LOCKER_ALARM"):
    signal.setitimer(signal.ITIMER_REAL, float(os.environ["LOCKER_ALARM"]))
answer(lambda: None if api == "none" else lock(fd, api))
signal.setitimer(signal.ITIMER_REAL, 0)
for line in sys.stdin:
    c = line.strip()
    if c == "unlock":
        answer(lambda: lock(fd, api, unlock=True))
    elif c == "close":
        answer(lambda: os.close(fd))
    elif c == "getlk":
        answer(getlk)
    elif c == "closeother":
        answer(lambda: os.close(os.open(path, os.O_RDONLY)))
    elif c == "dup":
        answer(lambda: extra.append(os.dup(fd)))
    elif c == "fork_try":
        answer(fork_try)
    elif c.startswith("lock "):
        answer(lambda: lock(fd, c.split()[1]))
"""


class Locker:
    """A LOCKER process: lock path through api (waiting or not); the
    answer to the lock comes with first() (or later, when it waits)."""

    def __init__(self, tc, path, api, wait=False, alarm=None):
        env = dict(os.environ)
        if alarm:
            env["LOCKER_ALARM"] = str(alarm)
        self.proc, self.out = spawn(tc, [sys.executable, "-c", LOCKER, path, api,
                                         "wait" if wait else "nb"], env=env)
        self.pid = self.proc.pid

    def answer(self, timeout=T):
        return json.loads(self.out.get(timeout, what="locker answer"))

    def errno(self, timeout=T):
        a = self.answer(timeout)
        return 0 if a["ok"] else a["errno"]

    def do(self, cmd):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return self.answer()

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=T)


def waiters(m):
    return metrics(m).get("lockfs_waiters", 0.0)


def contended(m):
    """Requests refused because the lock was held (a polling waiter's tries)."""
    return metrics(m).get("lockfs_contended_total", 0.0)


def locked_by(path):
    try:
        return lockinfo(path).get("pid")
    except OSError:
        return None


class RecordLocks(LockfsTestCase):
    def test_write_lock_excludes_and_getlk_names_the_holder(self):
        p = self.p("a.lock")
        a = Locker(self, p, "lockf")
        self.assertEqual(a.errno(), 0)
        info = lockinfo(p)
        self.assertEqual(info["pid"], a.pid)
        b = Locker(self, p, "lockf")
        self.assertEqual(b.errno(), errno.EAGAIN)
        self.assertEqual(b.do("getlk")["value"], {"type": "wrlck", "pid": a.pid})
        self.assertEqual(a.do("getlk")["value"]["type"], "unlck")   # its own lock
        c = Locker(self, p, "rdlock")                                # a read lock too
        self.assertEqual(c.errno(), errno.EAGAIN)
        self.assertTrue(a.do("unlock")["ok"])
        self.assertTrue(gone(p))   # created then locked: the unlock ends it
        self.assertEqual(b.do("getlk")["value"]["type"], "unlck")
        self.assertTrue(b.do("lock lockf")["ok"])
        self.assertEqual(lockinfo(p)["how"], "fcntl")

    def test_record_lock_never_joins_a_created_lock(self):
        """The two holders of the issue: A holds by create; B's POSIX lock
        must wait, not be granted beside A; C cannot take the name anew."""
        p = self.p("a.lock")
        a = agent(self)
        a.ok("create", path=p)
        b = Locker(self, p, "lockf")
        self.assertEqual(b.errno(), errno.EAGAIN)
        w = Locker(self, p, "fcntl", wait=True)
        wait_until(lambda: waiters(self.m) == 1, T, "the F_SETLKW parked")
        a.kill()                                   # A exits: the lock goes to w
        self.assertEqual(w.errno(), 0)
        self.assertTrue(exists(p))
        self.assertEqual(locked_by(p), w.pid)
        self.assertEqual(lockinfo(p)["how"], "fcntl")
        c = agent(self)
        self.assertEqual(c.err("create", path=p), errno.EEXIST)
        cl = Locker(self, p, "lockf")
        self.assertEqual(cl.errno(), errno.EAGAIN)
        cf = Locker(self, p, "flock")
        self.assertEqual(cf.errno(), errno.EWOULDBLOCK)

    def test_flock_and_fcntl_are_one_lock(self):
        p = self.p("a.lock")
        a = Locker(self, p, "flock")
        self.assertEqual(a.errno(), 0)
        b = Locker(self, p, "fcntl")
        self.assertEqual(b.errno(), errno.EAGAIN)
        self.assertEqual(b.do("getlk")["value"], {"type": "wrlck", "pid": a.pid})
        w = Locker(self, p, "fcntl", wait=True)
        wait_until(lambda: waiters(self.m) == 1, T, "the F_SETLKW parked")
        self.assertTrue(a.do("unlock")["ok"])
        self.assertEqual(w.errno(), 0)
        self.assertEqual(locked_by(p), w.pid)
        c = Locker(self, p, "flock")
        self.assertEqual(c.errno(), errno.EWOULDBLOCK)
        self.assertTrue(w.do("close")["ok"])      # FLUSH: its POSIX lock goes
        self.assertTrue(c.do("lock flock")["ok"])

    def test_posix_lock_goes_at_any_close_of_its_process(self):
        p = self.p("a.lock")
        a = Locker(self, p, "lockf")
        self.assertEqual(a.errno(), 0)
        self.assertEqual(a.do("fork_try")["value"], errno.EAGAIN)  # not inherited
        self.assertTrue(exists(p))
        self.assertTrue(a.do("closeother")["ok"])  # another descriptor: the lock goes
        self.assertTrue(gone(p))
        b = Locker(self, p, "lockf")
        self.assertEqual(b.errno(), 0)

    def test_ofd_lock_goes_at_its_last_close(self):
        p = self.p("a.lock")
        a = Locker(self, p, "ofd")
        self.assertEqual(a.errno(), 0)
        self.assertTrue(a.do("dup")["ok"])
        self.assertTrue(a.do("close")["ok"])      # one of two descriptors
        b = Locker(self, p, "ofd")
        self.assertEqual(b.errno(), errno.EAGAIN)  # the OFD lock stays
        self.assertEqual(locked_by(p), a.pid)
        a.proc.stdin.close()                      # a exits: its last descriptor closes
        self.assertEqual(a.proc.wait(timeout=T), 0)
        wait_until(lambda: b.do("lock ofd")["ok"], T, "the OFD lock free after the last close")
        self.assertEqual(locked_by(p), b.pid)

    def test_signal_cancels_a_wait_and_death_hands_on(self):
        p = self.p("a.lock")
        a = Locker(self, p, "lockf")
        self.assertEqual(a.errno(), 0)
        w = Locker(self, p, "lockf", wait=True, alarm=0.5 * SLOW)
        self.assertEqual(w.errno(), errno.EINTR)   # SIGALRM ended the wait
        wait_until(lambda: waiters(self.m) == 0, T, "the cancelled waiter gone")
        self.assertEqual(locked_by(p), a.pid)
        w2 = Locker(self, p, "lockf", wait=True)
        wait_until(lambda: waiters(self.m) == 1, T, "the F_SETLKW parked")
        a.kill()
        self.assertEqual(w2.errno(), 0)
        self.assertEqual(locked_by(p), w2.pid)


def tool(*names):
    for n in names:
        if not shutil.which(n):
            raise AssertionError(f"{n} is missing (mount-helpers/install-deps.sh installs it)")


class Tools(LockfsTestCase):
    def group(self, argv):
        """spawn argv in a session of its own, all of it killed at the end:
        lckdo's command outlives a killed lckdo, holding the mount busy."""
        p, out = spawn(self, argv, start_new_session=True)
        self.addCleanup(lambda: p.poll() is None and os.killpg(p.pid, 9))
        return p, out

    def test_lckdo(self):
        tool("lckdo")
        p = self.p("h.lock")
        first, out1 = self.group(["lckdo", p, "sh", "-c", "echo in; exec sleep 60"])
        self.assertEqual(out1.get(T, what="first lckdo inside"), "in")
        self.assertEqual(locked_by(p), first.pid)
        self.assertEqual(subprocess.run(["lckdo", "-q", p, "true"], timeout=T).returncode, 75)
        waiter, out2 = self.group(["lckdo", "-w", p, "sh", "-c", "echo in; exec sleep 60"])
        wait_until(lambda: waiters(self.m) == 1, T, "lckdo -w parked")
        os.killpg(first.pid, 9)
        self.assertEqual(out2.get(T, what="waiting lckdo inside"), "in")
        self.assertEqual(locked_by(p), waiter.pid)
        # a third while the waiter runs: refused, as on a local file system
        self.assertEqual(subprocess.run(["lckdo", "-q", p, "true"], timeout=T).returncode, 75)
        os.killpg(waiter.pid, 9)
        waiter.wait(timeout=T)
        wait_until(lambda: gone(p), T, "the lock gone with its holder")
        self.assertEqual(subprocess.run(["lckdo", "-q", p, "true"], timeout=T).returncode, 0)

    def test_s6_setlock(self):
        tool("s6-setlock")
        p = self.p("s.lock")
        first, out1 = spawn(self, ["s6-setlock", p, "sh", "-c", "echo in; exec sleep 60"])
        self.assertEqual(out1.get(T, what="first s6-setlock inside"), "in")
        self.assertEqual(subprocess.run(["s6-setlock", "-n", p, "true"],
                                        stderr=subprocess.DEVNULL, timeout=T).returncode, 1)
        waiter, out2 = spawn(self, ["s6-setlock", p, "sh", "-c", "echo in; exec sleep 60"])
        wait_until(lambda: waiters(self.m) == 1, T, "blocking s6-setlock parked")
        first.kill()
        self.assertEqual(out2.get(T, what="waiting s6-setlock inside"), "in")
        self.assertEqual(subprocess.run(["s6-setlock", "-n", p, "true"],
                                        stderr=subprocess.DEVNULL, timeout=T).returncode, 1)

    def _fasteners(self, body, *args):
        if not os.path.exists(DEBIAN_PYTHON):
            raise AssertionError("no /usr/bin/python3 (python3-fasteners is for it)")
        prog = "import fasteners, sys, time\n" + body
        return spawn(self, [DEBIAN_PYTHON, "-c", prog, *args])

    def test_fasteners_interprocess_lock(self):
        """The issue's run: A holds and releases, B acquires; C's
        non-blocking acquire while B holds is False; after B's release
        the name is gone although B still runs."""
        p = self.p("f.lock")
        hold = ("l = fasteners.InterProcessLock(sys.argv[1])\n"
                "assert l.acquire()\nprint('in', flush=True)\n"
                "sys.stdin.readline()\nl.release()\nprint('out', flush=True)\n"
                "sys.stdin.readline()\n")
        a, aout = self._fasteners(hold, p)
        self.assertEqual(aout.get(T, what="A acquired"), "in")
        tries = contended(self.m)
        b, bout = self._fasteners(hold, p)   # fasteners polls with non-blocking tries
        wait_until(lambda: contended(self.m) > tries, T, "B tried")
        a.stdin.write("\n")
        a.stdin.flush()
        self.assertEqual(aout.get(T, what="A released"), "out")
        self.assertEqual(bout.get(T, what="B acquired"), "in")
        c = subprocess.run([DEBIAN_PYTHON, "-c",
                            "import fasteners, sys\n"
                            "print(fasteners.InterProcessLock(sys.argv[1]).acquire(blocking=False))",
                            p], capture_output=True, text=True, timeout=T)
        self.assertEqual(c.stdout.strip(), "False", c.stderr)
        b.stdin.write("\n")
        b.stdin.flush()
        self.assertEqual(bout.get(T, what="B released"), "out")
        self.assertTrue(gone(p))     # B runs on; it no longer holds the name
        self.assertIsNone(b.poll())

    def test_fasteners_reader_writer_lock_writers_exclude(self):
        p = self.p("rw.lock")
        body = ("l = fasteners.InterProcessReaderWriterLock(sys.argv[1])\n"
                "cm = l.write_lock() if sys.argv[2] == 'w' else l.read_lock()\n"
                "with cm:\n"
                "    print('in', flush=True)\n"
                "    sys.stdin.readline()\n")
        w1, o1 = self._fasteners(body, p, "w")
        self.assertEqual(o1.get(T, what="first writer inside"), "in")
        tries = contended(self.m)
        w2, o2 = self._fasteners(body, p, "w")   # polls with non-blocking tries
        wait_until(lambda: contended(self.m) > tries, T, "the second writer tried")
        tries = contended(self.m)
        r, o3 = self._fasteners(body, p, "r")
        wait_until(lambda: contended(self.m) > tries, T, "the reader tried")
        self.assertEqual(locked_by(p), w1.pid)
        w1.stdin.write("\n")
        w1.stdin.flush()
        self.assertEqual(w1.wait(timeout=T), 0)
        # the next one in: one of the two, and only one
        inside = {}

        def one_in():
            for name, o in (("w2", o2), ("r", o3)):
                try:
                    if o.get(0.05, what=name) == "in":
                        inside[name] = True
                except AssertionError:
                    pass
            return inside
        wait_until(one_in, T, "the next one inside")
        self.assertEqual(len(inside), 1)
        (fp, _), (sp, so) = ((w2, o2), (r, o3)) if "w2" in inside else ((r, o3), (w2, o2))
        self.assertEqual(locked_by(p), fp.pid)
        self.assertTrue(so.q.empty())             # the other is still out
        fp.stdin.write("\n")
        fp.stdin.flush()
        self.assertEqual(fp.wait(timeout=T), 0)
        self.assertEqual(so.get(T, what="the last one inside"), "in")
        sp.stdin.write("\n")
        sp.stdin.flush()
        self.assertEqual(sp.wait(timeout=T), 0)


if __name__ == "__main__":
    harness.main()
