# SPDX-License-Identifier: MIT
"""flock(2) on lockfs (SPEC §7, R7.1, R7.2): served by the daemon and the
same lock as the name. LOCK_EX on a name held by another process waits in
FIFO order and then takes it (holder and fence change, the name never
vanishes in between, the content is emptied); LOCK_NB fails with
EWOULDBLOCK; a signal or death cancels a wait; a flocked lock is released
by LOCK_UN, by the last close of the flocking open file, or by death; a
contender handle whose flock is granted becomes a holder handle. flock(1)
(-n, -E, -w, `flock FILE cmd`, `exec 9>f; flock 9`), Python's filelock
pattern, 16x200 flock(1) critical sections, 1000 parked waiters.

Every blocking call runs in a child process and is awaited with a
timeout, so a daemon bug fails a test instead of hanging the suite."""
import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import Holder, LockfsTestCase, errno_of, wait_until  # noqa: E402
from lockfs_it import (Lines, lockinfo, agent, break_lock, close_pipes, exists, gone,  # noqa: E402
                       metrics, released, spawn, status)

SLOW = 4 if harness.WRAPPER else 1      # under valgrind everything is slower
T = 20 * SLOW                           # ceiling for one awaited step
USER_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

# A process that performs flock-related calls on request (one JSON command
# per stdin line, one JSON answer per line) and keeps its descriptors, so a
# test can play holder, waiter or contender. Blocking calls block only this
# process; the test awaits the answer with a timeout.
FLOCKER = r"""
import ctypes, fcntl, json, os, signal, sys, time

libc = ctypes.CDLL(None, use_errno=True)

def lockstatus(path):
    try:
        with open(path) as f:
            return json.load(f)
    except OSError as e:
        return {"errno": e.errno}

def log_grant(c, t):
    st = lockstatus(c["path"])
    rec = {"pid": os.getpid(), "t": t, "holder": st.get("lockfs", {}).get("pid"),
           "fence": st.get("lockfs", {}).get("fence"), "how": st.get("lockfs", {}).get("how"),
           "content": st.get("content")}
    if c.get("log"):
        fd = os.open(c["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, (json.dumps(rec) + "\n").encode())
        os.close(fd)
    return rec

class Alarm(Exception):
    pass

def on_alarm_raise(sig, frame):
    raise Alarm()

def do(c):
    k = c["op"]
    if k == "open":
        flags = 0
        for f in c["flags"]:
            flags |= getattr(os, f)
        return os.open(c["path"], flags, 0o644)
    if k == "flock":
        op = 0
        for f in c["how"]:
            op |= getattr(fcntl, f)
        t0 = time.monotonic_ns()
        fcntl.flock(c["fd"], op)
        t1 = time.monotonic_ns()
        r = {"t0": t0, "t": t1}
        if c.get("record"):           # status as the new holder sees it
            r["rec"] = log_grant(c, t1)
        if c.get("then_unlock"):       # a waiter that passes the lock on at once
            fcntl.flock(c["fd"], fcntl.LOCK_UN)
            os.close(c["fd"])
        return r
    if k == "c_flock_alarm":           # libc flock(2) itself: see EINTR
        signal.signal(signal.SIGALRM, lambda s, f: None)
        signal.setitimer(signal.ITIMER_REAL, c["after"])
        t0 = time.monotonic()
        rc = libc.flock(c["fd"], fcntl.LOCK_EX)
        err = ctypes.get_errno()
        return {"rc": rc, "errno": err if rc else 0, "elapsed": time.monotonic() - t0}
    if k == "py_flock_alarm":          # the usual Python timeout idiom
        signal.signal(signal.SIGALRM, on_alarm_raise)
        signal.setitimer(signal.ITIMER_REAL, c["after"])
        t0 = time.monotonic()
        try:
            fcntl.flock(c["fd"], fcntl.LOCK_EX)
            return {"got": True, "elapsed": time.monotonic() - t0}
        except Alarm:
            return {"got": False, "elapsed": time.monotonic() - t0}
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    if k == "write":
        return os.write(c["fd"], c["data"].replace("{pid}", str(os.getpid())).encode())
    if k == "pwrite":
        return os.pwrite(c["fd"], c["data"].replace("{pid}", str(os.getpid())).encode(), 0)
    if k == "dup":
        return os.dup(c["fd"])
    if k == "close":
        t0 = time.monotonic_ns()
        os.close(c["fd"])
        return {"t0": t0}
    if k == "status":
        return lockstatus(c["path"])
    if k == "exists":
        return os.path.exists(c["path"])
    raise ValueError(k)

print("READY", os.getpid(), flush=True)
for line in sys.stdin:
    c = json.loads(line)
    try:
        r = {"ok": True, "value": do(c)}
    except OSError as e:
        r = {"ok": False, "errno": e.errno}
    print(json.dumps(r), flush=True)
"""

# Stats the lock in a tight loop (and opens it every other round) until its
# stdin closes; reports how many times the name was missing.
WATCHER = r"""
import json, os, sys, threading
path = sys.argv[1]
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
os.stat(path)
print("READY", flush=True)
n = missing = 0
while not stop.is_set():
    n += 1
    try:
        os.stat(path)
        if n & 1:
            os.close(os.open(path, os.O_RDONLY))
    except FileNotFoundError:
        missing += 1
print(json.dumps({"n": n, "missing": missing}), flush=True)
"""

# Threads of one process, each with its own open file, parking in flock on
# argv[1]; each granted thread checks that nobody else is inside (an O_EXCL
# marker outside the mount), then unlocks at once.
THREAD_WAITERS = r"""
import fcntl, os, sys, threading
path, marker, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
threading.stack_size(256 * 1024)
opened = threading.Semaphore(0)
granted = []
errors = []

def run():
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        errors.append("open %d" % e.errno)
        opened.release()
        return
    opened.release()
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            os.unlink(marker)
        except FileExistsError:
            errors.append("overlap")
        granted.append(1)
        fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError as e:
        errors.append("flock %d" % e.errno)
    finally:
        os.close(fd)

ts = [threading.Thread(target=run) for _ in range(n)]
for t in ts:
    t.start()
for _ in ts:
    opened.acquire()
print("STARTED", flush=True)
for t in ts:
    t.join()
print("DONE", len(granted), " ".join(errors) or "-", flush=True)
"""


# argv: path marker procs iters flags. Forks procs children that each open
# path with flags, flock LOCK_EX, check that nobody else is inside (O_EXCL
# marker outside the mount), LOCK_UN and close, iters times; prints one JSON
# summary: per-child {"done": n, "errors": {"stage errno": count}}.
REOPEN_LOOPERS = r"""
import errno, fcntl, json, os, sys, time
path, marker, procs, iters, flags = sys.argv[1], sys.argv[2], int(sys.argv[3]), \
    int(sys.argv[4]), sys.argv[5]
fl = 0
for f in flags.split("|"):
    fl |= getattr(os, f)
go_r, go_w = os.pipe()       # closed once every child is forked: they start together
kids = []
for i in range(procs):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.close(go_w)
        os.read(go_r, 1)
        done, errors = 0, {}
        for k in range(iters):
            stage, fd = "open", -1
            try:
                fd = os.open(path, fl, 0o644)
                stage = "flock"
                fcntl.flock(fd, fcntl.LOCK_EX)
                stage = "inside"
                os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
                os.unlink(marker)
                stage = "unlock"
                fcntl.flock(fd, fcntl.LOCK_UN)
                done += 1
            except OSError as e:
                key = "%s %s" % (stage, errno.errorcode.get(e.errno, e.errno))
                errors[key] = errors.get(key, 0) + 1
            finally:
                if fd >= 0:
                    os.close(fd)
        os.write(w, json.dumps({"done": done, "errors": errors}).encode())
        os._exit(0)
    os.close(w)
    kids.append((pid, r))
os.close(go_w)
out = []
for pid, r in kids:
    data = b""
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        data += b
    os.waitpid(pid, 0)
    out.append(json.loads(data) if data else {"done": 0, "errors": {"died": 1}})
print(json.dumps(out))
"""


class Flocker:
    """A FLOCKER process. send() is asynchronous (for calls that block),
    recv() awaits the answer with a timeout; call() does both."""

    def __init__(self, tc, path, log=None):
        self.path = path
        self.log = log
        self.proc = subprocess.Popen([sys.executable, "-c", FLOCKER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd="/")
        self.out = Lines(self.proc.stdout)
        tc.addCleanup(self.kill)
        self.pid = int(self.out.expect("READY", timeout=T).split()[1])
        self.fd = None

    def send(self, op, **kw):
        kw["op"] = op
        kw.setdefault("path", self.path)
        if self.log:
            kw.setdefault("log", self.log)
        kw.setdefault("fd", self.fd)
        self.proc.stdin.write(json.dumps(kw) + "\n")
        self.proc.stdin.flush()

    def recv(self, timeout=T, what="answer"):
        return json.loads(self.out.get(timeout, what=f"flocker {self.pid}: {what}"))

    def call(self, op, timeout=T, **kw):
        self.send(op, **kw)
        return self.recv(timeout, op)

    def ok(self, op, timeout=T, **kw):
        r = self.call(op, timeout, **kw)
        if not r["ok"]:
            raise AssertionError(f"flocker {op} {kw}: errno {r['errno']} "
                                 f"({os.strerror(r['errno'])})")
        return r["value"]

    def err(self, op, timeout=T, **kw):
        r = self.call(op, timeout, **kw)
        return 0 if r["ok"] else r["errno"]

    def open(self, *flags):
        self.fd = self.ok("open", flags=list(flags))
        return self.fd

    def flock(self, *how, **kw):
        return self.ok("flock", how=list(how), **kw)

    def start_flock(self, *how, **kw):
        """Start a (blocking) flock; the answer comes with recv()."""
        self.send("flock", how=list(how), **kw)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=T)
        close_pipes(self.proc, self.out)


class Watcher:
    """WATCHER on path; stop() returns {"n": stats, "missing": ENOENTs}."""

    def __init__(self, tc, path):
        self.proc, self.out = spawn(tc, [sys.executable, "-c", WATCHER, path])
        self.out.expect("READY", timeout=T)

    def stop(self):
        self.proc.stdin.close()
        r = json.loads(self.out.get(T, what="watcher result"))
        self.proc.wait(timeout=T)
        return r


def waiters(m):
    return metrics(m)["lockfs_waiters"]


class FlockCase(LockfsTestCase):

    def wait_waiters(self, k, timeout=T):
        wait_until(lambda: waiters(self.m) == k, timeout, f"lockfs_waiters == {k}")

    def holder(self, path, content="{pid}\n"):
        h = Holder(path, content)
        self.assertTrue(h.ok, f"holder could not take {path}: errno {h.errno}")
        self.addCleanup(h.kill)
        return h

    def contender(self, path, log=None, flags=("O_WRONLY", "O_CREAT")):
        w = Flocker(self, path, log)
        w.open(*flags)
        return w

    def tmp(self):
        d = tempfile.mkdtemp(prefix="lockfs-flock-")
        self.addCleanup(subprocess.run, ["rm", "-rf", d])
        return d


class TestFlockCommand(FlockCase):
    """flock(1) from util-linux, as users know it."""

    def run_flock(self, args, timeout=T):
        t0 = time.monotonic()
        r = subprocess.run(["flock"] + args, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        return r, time.monotonic() - t0

    def test_nonblocking_on_held_name_exits_1(self):
        p = self.p("f.lock")
        h = self.holder(p)
        marker = os.path.join(self.tmp(), "ran")
        # the holder never lets go: that flock -n returns at all shows it did not wait
        r, _ = self.run_flock(["-n", p, "touch", marker])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertFalse(os.path.exists(marker), "the command must not run")
        self.assertEqual(lockinfo(p)["pid"], h.pid)
        self.assertEqual(waiters(self.m), 0)

    def test_conflict_exit_code(self):
        p = self.p("f.lock")
        self.holder(p)
        r, _ = self.run_flock(["-E", "75", "-n", p, "true"])
        self.assertEqual(r.returncode, 75, r.stderr)

    def test_timeout_gives_up_and_leaves_no_waiter(self):
        p = self.p("f.lock")
        h = self.holder(p)
        fence = lockinfo(p)["fence"]
        marker = os.path.join(self.tmp(), "ran")
        r, dt = self.run_flock(["-w", "0.5", p, "touch", marker])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertGreaterEqual(dt, 0.4)   # it waited (it returns at all: it gave up)
        self.assertFalse(os.path.exists(marker))
        self.wait_waiters(0)
        st = lockinfo(p)
        self.assertEqual((st["pid"], st["fence"]), (h.pid, fence))
        h.release()                     # nobody is left to take it
        wait_until(lambda: gone(p), T, "release with no waiter left")

    def test_timeout_succeeds_when_released_in_time(self):
        p = self.p("f.lock")
        h = self.holder(p)
        script = 'jq -r ".lockfs | \\"\\(.pid) \\(.how)\\"" "$1"; echo "ppid $PPID"'
        proc, out = spawn(self, ["flock", "-w", str(10 * SLOW), p, "sh", "-c", script, "sh", p])
        self.wait_waiters(1)
        h.release()
        line, ppid = out.get(T), out.get(T)
        self.assertEqual(proc.wait(timeout=T), 0)
        self.assertEqual(line, f"{ppid.split()[1]} flock")

    def test_command_runs_holding_the_lock(self):
        p = self.p("f.lock")
        script = ('jq -r \'.lockfs | "\\(.pid) \\(.how)"\' "$1"; echo "sh $$ ppid $PPID"; '
                  'echo x > "$1" 2>/dev/null && echo WROTE || echo REFUSED')
        r, _ = self.run_flock(["-w", str(10 * SLOW), p, "sh", "-c", script, "sh", p])
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        holder_pid, how = lines[0].split()
        flock_pid = lines[1].split()[3]  # sh's parent is flock(1)
        self.assertEqual(holder_pid, flock_pid, r.stdout)
        self.assertIn(how, ("creator", "flock"))
        self.assertEqual(lines[2], "WROTE", "the command is a descendant of the holder")
        # flock(1) does not LOCK_UN: its exit closes the file, and the kernel
        # sends that RELEASE after the process is gone (asynchronously)
        wait_until(lambda: gone(p), T, "flock(1) exited: its lock is released")

    def test_command_waits_for_held_name(self):
        p = self.p("f.lock")
        h = self.holder(p)
        old = lockinfo(p)["fence"]
        script = 'jq -c .lockfs "$1"; echo "ppid $PPID"; read -r _ || true'
        proc, out = spawn(self, ["flock", p, "sh", "-c", script, "sh", p])
        self.wait_waiters(1)
        self.assertIsNone(proc.poll())
        w = Watcher(self, p)
        h.release()
        st = json.loads(out.get(T, "grant to flock(1)"))
        flock_pid = int(out.get(T).split()[1])
        self.assertEqual(st["pid"], flock_pid)
        self.assertEqual(st["how"], "flock")
        self.assertGreater(st["fence"], old)
        self.assertEqual(w.stop()["missing"], 0, "the name vanished during the hand-off")
        self.assertEqual(lockinfo(p)["pid"], flock_pid)
        proc.stdin.close()
        self.assertEqual(proc.wait(timeout=T), 0)
        wait_until(lambda: gone(p), T, "release at flock(1)'s exit")

    BASH_IDIOM = r'''
exec 9>"$1"
echo "opened $$"
flock -w %d 9 || { echo "flock failed $?"; exit 9; }
jq -r '.lockfs | "\(.pid) \(.how) \(.fence)"' "$1"
printf '%%s' "$$ was here" >&9 && echo WROTE || echo REFUSED
jq -r .content "$1"
flock -u 9
[ -e "$1" ] && echo STILL || echo GONE
echo "after unlock" >&9 2>/dev/null && echo WROTE || echo REFUSED
exec 9>&-
'''

    def bash_idiom(self, p):
        return spawn(self, ["bash", "-c", self.BASH_IDIOM % (10 * SLOW), "bash", p],
                     stdin=subprocess.DEVNULL)

    def check_idiom_output(self, out, shell_pid, hows):
        pid, how, fence = out.get(T, "status after flock 9").split()
        self.assertEqual(int(pid), shell_pid, "the shell, not flock(1), holds the lock")
        self.assertIn(how, hows)
        self.assertEqual(out.get(T), "WROTE", "the shell writes its lock through fd 9")
        self.assertEqual(out.get(T), f"{shell_pid} was here")
        self.assertEqual(out.get(T), "GONE", "flock -u 9 releases the name")
        self.assertEqual(out.get(T), "REFUSED", "fd 9 lost the lock at the unlock")
        return int(fence)

    def test_exec_fd_idiom_free_name(self):
        p = self.p("f.lock")
        m0 = metrics(self.m)
        proc, out = self.bash_idiom(p)
        shell = int(out.get(T).split()[1])
        self.check_idiom_output(out, shell, ("creator", "flock"))
        self.assertEqual(proc.wait(timeout=T), 0)
        self.assertEqual(released(metrics(self.m), "unlock") - released(m0, "unlock"), 1)
        self.assertEqual(waiters(self.m), 0)

    def test_exec_fd_idiom_in_a_loop(self):
        """exec 9>f once, then flock 9 / flock -u 9 around each round (with
        and without looking at the lock by name in between)."""
        p = self.p("f.lock")
        for look in ("", 'jq -r .lockfs.pid "$1";'):
            with self.subTest(look=look):
                script = ('exec 9>"$1"; for i in 1 2 3 4 5; do flock -w %d 9 || exit $i; '
                          '%s flock -u 9; done; echo "shell $$"' % (10 * SLOW, look))
                r = subprocess.run(["bash", "-c", script, "bash", p], capture_output=True,
                                   text=True, timeout=T, stdin=subprocess.DEVNULL)
                self.assertEqual(r.returncode, 0, f"failed in round {r.returncode}: {r.stderr}")
                out = r.stdout.split()
                if look:
                    self.assertEqual(out[:5], [out[-1]] * 5, "the shell held it each round")
                self.assertTrue(gone(p))

    def test_exec_fd_idiom_waits_for_held_name(self):
        p = self.p("f.lock")
        h = self.holder(p)
        old = lockinfo(p)["fence"]
        proc, out = self.bash_idiom(p)
        shell = int(out.get(T).split()[1])
        self.wait_waiters(1)
        self.assertEqual(lockinfo(p)["pid"], h.pid, "still the old holder while waiting")
        h.release()
        fence = self.check_idiom_output(out, shell, ("flock",))
        self.assertGreater(fence, old)
        self.assertEqual(proc.wait(timeout=T), 0)


class TestFifo(FlockCase):

    def test_five_waiters_granted_in_arrival_order(self):
        p = self.p("q.lock")
        log = os.path.join(self.tmp(), "grants")
        h = self.holder(p)
        old = lockinfo(p)["fence"]
        ws = []
        for k in range(1, 6):
            w = self.contender(p, log)
            # W1..W4 pass the lock on at once; W5 keeps it until told
            w.start_flock("LOCK_EX", record=True, then_unlock=(k < 5))
            self.wait_waiters(k)
            ws.append(w)
        watch = Watcher(self, p)
        h.release()
        for w in ws:
            r = w.recv(T, "grant")
            self.assertTrue(r["ok"], r)
        self.assertEqual(watch.stop()["missing"], 0, "the name vanished between holders")
        with open(log) as f:
            recs = [json.loads(line) for line in f]
        self.assertEqual([r["pid"] for r in recs], [w.pid for w in ws], "grants not FIFO")
        for r in recs:
            self.assertEqual(r["holder"], r["pid"], f"status names the grantee: {r}")
            self.assertEqual(r["how"], "flock")
            self.assertIn(r["content"], (None, ""), "content is emptied at a grant")
        fences = [old] + [r["fence"] for r in recs]
        self.assertEqual(fences, sorted(set(fences)), f"fences must increase: {fences}")
        ts = [r["t"] for r in recs]
        self.assertEqual(ts, sorted(ts))
        self.assertEqual(waiters(self.m), 0)
        self.assertEqual(lockinfo(p)["pid"], ws[-1].pid)
        ws[-1].flock("LOCK_UN")
        self.assertTrue(gone(p), "LOCK_UN with nobody waiting releases the name")

    def test_release_causes_hand_off(self):
        """Every way a lock is released hands it to the first waiter, with
        a new fence and no moment without a holder."""
        root = self.p()

        def by_unlink(p):
            a = agent(self)
            a.ok("create", path=p, data="{pid}")
            return a.pid, lambda: a.ok("unlink", path=p)

        def by_exit(p):
            h = self.holder(p)
            return h.pid, h.release

        def by_kill(p):
            h = self.holder(p)
            return h.pid, h.kill

        def by_root_break(p):          # lockctl break (root's rm: EBUSY, SPEC R3.4)
            h = self.holder(p)
            return h.pid, lambda: break_lock(p)

        def by_ttl(p):
            h = self.holder(p, '{"pid": {pid}, "ttl_s": 2}')
            return h.pid, lambda: None

        def flocked(p):
            f = Flocker(self, p)
            f.open("O_RDWR", "O_CREAT", "O_EXCL")
            f.flock("LOCK_EX")
            f.ok("write", data="old content")
            return f

        def by_lock_un(p):
            f = flocked(p)
            return f.pid, lambda: f.flock("LOCK_UN")

        def by_close(p):
            f = flocked(p)
            return f.pid, lambda: f.ok("close")

        def by_flocker_kill(p):
            f = flocked(p)
            return f.pid, f.kill

        cases = [by_unlink, by_exit, by_kill, by_root_break, by_ttl, by_lock_un, by_close,
                 by_flocker_kill]
        for make in cases:
            with self.subTest(cause=make.__name__):
                p = os.path.join(root, make.__name__ + ".lock")
                old_pid, release = make(p)
                old = lockinfo(p)
                self.assertEqual(old["pid"], old_pid)
                w = self.contender(p)
                w.start_flock("LOCK_EX", record=True)
                self.wait_waiters(1)
                watch = Watcher(self, p)
                release()
                r = w.recv(T + 5, "grant after " + make.__name__)
                self.assertTrue(r["ok"], r)
                rec = r["value"]["rec"]
                self.assertEqual(watch.stop()["missing"], 0, "the name vanished")
                self.assertEqual((rec["holder"], rec["how"]), (w.pid, "flock"))
                self.assertGreater(rec["fence"], old["fence"])
                self.assertIn(rec["content"], (None, ""), "old content must not survive")
                self.assertEqual(waiters(self.m), 0)
                w.flock("LOCK_UN")
                self.assertTrue(gone(p))
                w.kill()


class TestCancel(FlockCase):

    def kill_one_of_three_waiters(self, victim):
        """Three waiters queue; waiter number victim dies; on release the
        other two get the lock in their order and the dead one is skipped."""
        p = self.p("k.lock")
        log = os.path.join(self.tmp(), "grants")
        h = self.holder(p)
        ws = []
        for k in range(1, 4):
            w = self.contender(p, log)
            w.start_flock("LOCK_EX", record=True, then_unlock=True)
            self.wait_waiters(k)
            ws.append(w)
        ws[victim].kill()
        self.wait_waiters(2)
        h.release()
        alive = [w for i, w in enumerate(ws) if i != victim]
        for w in alive:
            self.assertTrue(w.recv(T, "grant")["ok"])
        with open(log) as f:
            order = [json.loads(line)["pid"] for line in f]
        self.assertEqual(order, [w.pid for w in alive], "the dead waiter must be skipped")
        wait_until(lambda: gone(p), T, "release by the last waiter")
        self.assertEqual(waiters(self.m), 0)

    def test_killed_waiter_leaves_the_queue(self):
        self.kill_one_of_three_waiters(0)   # the head of the queue dies

    def test_killed_middle_waiter(self):
        self.kill_one_of_three_waiters(1)

    def test_signal_interrupts_wait_with_eintr(self):
        p = self.p("s.lock")
        h = self.holder(p)
        fence = lockinfo(p)["fence"]
        w = self.contender(p)
        after = 3.0 * SLOW             # long enough to see it parked first
        w.send("c_flock_alarm", after=after)
        self.wait_waiters(1)
        r = w.recv(T, "EINTR")
        self.assertTrue(r["ok"], r)
        self.assertEqual((r["value"]["rc"], r["value"]["errno"]), (-1, errno.EINTR), r)
        self.assertGreaterEqual(r["value"]["elapsed"], after * 0.9)
        self.assertEqual(waiters(self.m), 0, "the interrupted waiter left the queue")
        self.assertIsNone(w.proc.poll(), "cancelled, not killed")
        # Python's own idiom: a SIGALRM handler that raises ends the wait
        w.send("py_flock_alarm", after=after)
        self.wait_waiters(1)
        r = w.recv(T, "alarm")
        self.assertTrue(r["ok"], r)
        self.assertFalse(r["value"]["got"], "the alarm must end the wait")
        self.wait_waiters(0)
        self.assertEqual(w.err("flock", how=["LOCK_EX", "LOCK_NB"]), errno.EWOULDBLOCK)
        st = lockinfo(p)
        self.assertEqual((st["pid"], st["fence"]), (h.pid, fence))
        h.release()                     # no phantom waiter takes it
        wait_until(lambda: gone(p), T, "release with the queue empty")

    def test_interrupted_waiter_does_not_block_the_next(self):
        p = self.p("s.lock")
        log = os.path.join(self.tmp(), "grants")
        h = self.holder(p)
        a = self.contender(p, log)
        a.send("c_flock_alarm", after=1.5 * SLOW)
        self.wait_waiters(1)
        b = self.contender(p, log)
        b.start_flock("LOCK_EX", record=True)
        self.wait_waiters(2)
        self.assertEqual(a.recv(T)["value"]["errno"], errno.EINTR)
        self.wait_waiters(1)
        h.release()
        r = b.recv(T, "grant")
        self.assertEqual(r["value"]["rec"]["holder"], b.pid)
        with open(log) as f:
            self.assertEqual([json.loads(line)["pid"] for line in f], [b.pid])

    def test_nonblocking_on_held_name(self):
        p = self.p("n.lock")
        h = self.holder(p)
        w = self.contender(p)
        r = self.contender(p, flags=("O_RDONLY",))
        m0 = metrics(self.m)
        self.assertEqual(w.err("flock", how=["LOCK_EX", "LOCK_NB"]), errno.EWOULDBLOCK)
        self.assertEqual(r.err("flock", how=["LOCK_EX", "LOCK_NB"]), errno.EWOULDBLOCK)
        self.assertEqual(waiters(self.m), 0)
        self.assertEqual(metrics(self.m)["lockfs_contended_total"] -
                         m0["lockfs_contended_total"], 2)
        self.assertEqual(lockinfo(p)["pid"], h.pid)
        self.assertEqual(w.call("write", data="x")["errno"], errno.EEXIST,
                         "a refused flock leaves a contender handle")


class TestHandles(FlockCase):

    def test_unlock_release_fires_delete_self(self):
        # SPEC R5.5 for the flock release path: the kernel saw no UNLINK, the
        # daemon tells it; the watch fires once the last descriptor closes.
        p = self.p("w.lock")
        fd = os.open(p, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        w = subprocess.Popen(["inotifywait", "-e", "delete_self", p], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        self.addCleanup(w.kill)
        line = "?"
        while line and "Watches established" not in line:
            line = w.stderr.readline()
        self.assertTrue(line, "inotifywait did not start")
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        out, _ = w.communicate(timeout=10)
        self.assertIn("DELETE_SELF", out)
        self.assertFalse(os.path.exists(p))

    def test_contender_becomes_holder(self):
        p = self.p("c.lock")
        a = Flocker(self, p)
        a.open("O_WRONLY", "O_CREAT", "O_EXCL")
        a.ok("write", data="A {pid}")
        b = self.contender(p, flags=("O_WRONLY",))
        self.assertEqual(b.err("write", data="B"), errno.EEXIST, "contender handle")
        self.assertEqual(status(p)["content"], f"A {a.pid}")
        b.start_flock("LOCK_EX", record=True)
        self.wait_waiters(1)
        a.kill()                        # A's death releases; B is granted
        rec = b.recv(T, "grant")["value"]["rec"]
        self.assertEqual(rec["holder"], b.pid)
        self.assertIn(rec["content"], (None, ""))
        self.assertEqual(b.ok("write", data="B {pid}"), len(f"B {b.pid}"))
        st = status(p)
        self.assertEqual(st["content"], f"B {b.pid}")
        self.assertEqual(st["lockfs"]["pid"], b.pid)
        self.assertEqual(st["lockfs"]["how"], "flock")
        b.ok("close")                   # last close of the flocking open file
        # the kernel sends RELEASE after close() returns (asynchronously)
        wait_until(lambda: gone(p), T, "release at last close")

    def test_read_only_descriptor_can_wait(self):
        p = self.p("r.lock")
        h = self.holder(p)
        b = self.contender(p, flags=("O_RDONLY",))
        b.start_flock("LOCK_EX", record=True)
        self.wait_waiters(1)
        h.kill()
        self.assertEqual(b.recv(T)["value"]["rec"]["holder"], b.pid)
        b.kill()
        wait_until(lambda: gone(p), T, "release at the new holder's death")

    def test_filelock_pattern_releases_at_unlock(self):
        """filelock.FileLock: open(O_RDWR|O_CREAT|O_TRUNC), flock, write,
        flock(LOCK_UN), close. The name goes at the unlock."""
        p = self.p("fl.lock")
        a = Flocker(self, p)
        a.open("O_RDWR", "O_CREAT", "O_TRUNC")
        a.flock("LOCK_EX")              # own lock: returns (nobody else would let go)
        a.ok("write", data="{pid}")
        self.assertEqual(lockinfo(p)["pid"], a.pid)
        m0 = metrics(self.m)
        a.flock("LOCK_UN")
        self.assertFalse(a.ok("exists"), "the name vanishes at LOCK_UN, fd still open")
        self.assertEqual(released(metrics(self.m), "unlock") - released(m0, "unlock"), 1)
        self.assertEqual(a.err("write", data="late"), errno.EEXIST,
                         "the old handle lost the lock")
        a.ok("close")
        # the kernel sends RELEASE after close() returns (asynchronously)
        wait_until(lambda: gone(p), T, "release at last close")

    def test_filelock_pattern_hands_off_at_unlock(self):
        p = self.p("fl.lock")
        a = Flocker(self, p)
        a.open("O_RDWR", "O_CREAT", "O_TRUNC")
        a.flock("LOCK_EX")
        a.ok("write", data="{pid}")
        b = self.contender(p, flags=("O_RDWR", "O_CREAT", "O_TRUNC"))
        b.start_flock("LOCK_EX", record=True)
        self.wait_waiters(1)
        a.flock("LOCK_UN")              # its latency: tests/bench/handoff.py
        rec = b.recv(T, "grant at the unlock")["value"]
        self.assertIsNone(a.proc.poll(), "granted while the first process lives")
        self.assertEqual(rec["rec"]["holder"], b.pid)
        a.ok("close")                   # A's close must not touch B's lock
        a.kill()
        self.assertEqual(lockinfo(p)["pid"], b.pid)
        b.ok("write", data="{pid}")
        b.flock("LOCK_UN")
        self.assertTrue(gone(p))

    def test_last_close_releases(self):
        p = self.p("d.lock")
        a = Flocker(self, p)
        fd = a.open("O_RDWR", "O_CREAT", "O_EXCL")
        a.flock("LOCK_EX")
        dup = a.ok("dup", fd=fd)
        a.ok("close", fd=fd)
        self.assertTrue(exists(p), "a dup still refers to the flocking open file")
        self.assertEqual(lockinfo(p)["pid"], a.pid)
        b = self.contender(p)
        b.start_flock("LOCK_EX", record=True)
        self.wait_waiters(1)
        a.ok("close", fd=dup)
        self.assertEqual(b.recv(T, "grant at last close")["value"]["rec"]["holder"], b.pid)
        self.assertIsNone(a.proc.poll())
        b.ok("close")
        # the kernel sends RELEASE after close() returns (asynchronously)
        wait_until(lambda: gone(p), T, "release at last close")

    def test_created_lock_not_flocked_survives_close(self):
        p = self.p("e.lock")
        a = Flocker(self, p)
        a.open("O_RDWR", "O_CREAT", "O_EXCL")
        a.ok("close")
        self.assertEqual(lockinfo(p)["pid"], a.pid, "a plain create is held until exit")
        a.kill()
        wait_until(lambda: gone(p), T, "release at exit")

    def test_flock_after_release_takes_free_name(self):
        p = self.p("g.lock")
        h = self.holder(p)
        b = self.contender(p)
        h.release()
        wait_until(lambda: gone(p), T, "release")
        b.flock("LOCK_EX", "LOCK_NB")
        st = lockinfo(p)
        self.assertEqual((st["pid"], st["how"]), (b.pid, "flock"))
        self.assertEqual(b.ok("write", data="{pid}"), len(str(b.pid)))
        b.flock("LOCK_UN")
        self.assertTrue(gone(p))

    def test_same_descriptor_relocks_repeatedly(self):
        """A program that keeps one descriptor and locks/unlocks it in a
        loop: each LOCK_EX on the free name takes it anew."""
        p = self.p("loop.lock")
        a = Flocker(self, p)
        a.open("O_RDWR", "O_CREAT")
        fences = []
        for i in range(5):
            r = a.call("flock", how=["LOCK_EX", "LOCK_NB"])
            self.assertTrue(r["ok"], f"round {i}: errno {r.get('errno')}")
            st = lockinfo(p)
            self.assertEqual(st["pid"], a.pid, f"round {i}")
            fences.append(st["fence"])
            a.flock("LOCK_UN")
            self.assertTrue(gone(p), f"round {i}: LOCK_UN releases")
        self.assertEqual(fences, sorted(set(fences)))

    def test_flock_after_release_waits_on_new_holder(self):
        p = self.p("g.lock")
        h = self.holder(p)
        b = self.contender(p)
        h.release()
        wait_until(lambda: gone(p), T, "release")
        h2 = self.holder(p)
        self.assertEqual(b.err("flock", how=["LOCK_EX", "LOCK_NB"]), errno.EWOULDBLOCK)
        b.start_flock("LOCK_EX", record=True)
        self.wait_waiters(1)
        h2.release()
        self.assertEqual(b.recv(T)["value"]["rec"]["holder"], b.pid)
        b.flock("LOCK_UN")
        self.assertTrue(gone(p))


class TestRefused(FlockCase):

    def test_shared_lock_is_shared_and_waits_for_exclusive(self):
        """LOCK_SH (SPEC R7.3): the creator's LOCK_SH makes the lock shared
        and another's LOCK_SH joins it at once (no waiter); while the
        creator holds it exclusively (LOCK_EX), LOCK_SH waits or fails
        with EWOULDBLOCK, and the creator's LOCK_UN hands it over."""
        p = self.p("sh.lock")
        own = Flocker(self, p)
        own.open("O_RDWR", "O_CREAT", "O_EXCL")
        for how in (["LOCK_SH"], ["LOCK_SH", "LOCK_NB"]):
            self.assertEqual(own.err("flock", how=how), 0, how)
        other = self.contender(p)
        self.assertEqual(other.err("flock", how=["LOCK_SH", "LOCK_NB"]), 0)
        self.assertEqual(sorted(h["pid"] for h in lockinfo(p)["holders"]),
                         sorted([own.pid, other.pid]))
        other.flock("LOCK_UN")
        self.assertEqual(own.err("flock", how=["LOCK_EX", "LOCK_NB"]), 0)  # alone: upgrade
        self.assertEqual(other.err("flock", how=["LOCK_SH", "LOCK_NB"]), errno.EWOULDBLOCK)
        self.assertEqual(waiters(self.m), 0)
        other.start_flock("LOCK_SH", record=True)
        self.wait_waiters(1)
        self.assertEqual(lockinfo(p)["pid"], own.pid)
        own.flock("LOCK_UN")
        self.assertEqual(other.recv(T)["value"]["rec"]["holder"], other.pid)
        other.flock("LOCK_UN")
        self.assertTrue(gone(p))

    def test_virtual_files_refuse_flock(self):
        for name in ("metrics", "locks.json"):
            fd = os.open(self.p(".lockfs", name), os.O_RDONLY)
            try:
                for how in (fcntl.LOCK_EX | fcntl.LOCK_NB, fcntl.LOCK_UN):
                    self.assertEqual(errno_of(fcntl.flock, fd, how), errno.EOPNOTSUPP, name)
            finally:
                os.close(fd)

    def test_directory_flock_is_not_a_lock(self):
        """The kernel does not pass flock(2) on a FUSE directory to the
        daemon (no flock in fuse_dir_operations): it either fails with
        EOPNOTSUPP or stays a kernel-local lock that means nothing to
        lockfs. Either way it never blocks lock traffic in the directory."""
        os.mkdir(self.p("d"))
        held0 = metrics(self.m)["lockfs_locks_held"]
        fd = os.open(self.p("d"), os.O_RDONLY | os.O_DIRECTORY)
        self.addCleanup(os.close, fd)
        err = errno_of(fcntl.flock, fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if err != errno.EOPNOTSUPP:
            self.assertEqual(err, 0)
            print("\n  note: flock on a lockfs directory is kernel-local (not EOPNOTSUPP)",
                  file=sys.stderr)
        self.assertEqual(metrics(self.m)["lockfs_locks_held"], held0)
        h = self.holder(self.p("d", "x.lock"))
        self.assertEqual(lockinfo(self.p("d", "x.lock"))["pid"], h.pid)

    def test_holder_flocks_own_lock_at_once(self):
        p = self.p("own.lock")
        a = Flocker(self, p)
        a.open("O_WRONLY", "O_CREAT", "O_EXCL")
        fence = lockinfo(p)["fence"]
        a.flock("LOCK_EX", "LOCK_NB")   # no wait: EWOULDBLOCK would fail here
        a.flock("LOCK_EX")              # again on the same open file: no-op (no wait:
                                        # nobody else would let go)
        st = lockinfo(p)
        self.assertEqual((st["pid"], st["fence"]), (a.pid, fence), "same acquisition")
        self.assertEqual(waiters(self.m), 0)
        a.flock("LOCK_UN")
        self.assertTrue(gone(p), "LOCK_UN releases a created-then-flocked lock")
        self.assertTrue(a.ok("exists") is False)

    def test_descendant_of_holder_flocks_at_once(self):
        """`echo $$ > f; flock f cmd` in one script: flock(1) is a
        descendant of the holder, so it is granted without waiting."""
        p = self.p("sc.lock")
        script = ('echo $$ > "$1"; flock -n "$1" sh -c \'echo inside\' || echo REFUSED; '
                  'jq .lockfs.pid "$1"')
        r = subprocess.run(["bash", "-c", script, "bash", p], capture_output=True, text=True,
                           timeout=T)
        self.assertEqual(r.stdout.split()[0], "inside", r.stdout + r.stderr)


class TestOtherUser(FlockCase):
    """flock across users (the point of a shared lock directory)."""

    MOUNT_OPTS = "allow_other"

    def test_other_user_waits_and_takes_the_lock(self):
        uid, _ = harness.ensure_user()
        p = self.p("u.lock")
        h = self.holder(p)
        proc, out = spawn(self, harness.as_user(
            ["flock", "-w", str(10 * SLOW), p, "sh", "-c",
             'jq -r \'.lockfs | "\\(.uid) \\(.user) \\(.how)"\' "$1"; '
             'echo hi > "$1" && echo WROTE', "sh", p]), stdin=subprocess.DEVNULL)
        self.wait_waiters(1)
        self.assertEqual(lockinfo(p)["uid"], 0)
        h.release()
        self.assertEqual(out.get(T, "grant to the other user"),
                         f"{uid} {harness.TEST_USER} flock")
        self.assertEqual(out.get(T), "WROTE")
        self.assertEqual(proc.wait(timeout=T), 0)
        wait_until(lambda: gone(p), T, "release at flock(1)'s exit")

    def test_other_user_cannot_unlock_or_take(self):
        p = self.p("u.lock")
        h = self.holder(p)
        r = subprocess.run(harness.as_user(
            [USER_PYTHON, "-c", "import fcntl, os, sys\n"
             "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
             "fcntl.flock(fd, fcntl.LOCK_UN)\n"
             "try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n    print('TAKEN')\n"
             "except BlockingIOError:\n    print('EWOULDBLOCK')\n", p]),
            capture_output=True, text=True, timeout=T)
        self.assertEqual(r.stdout.strip(), "EWOULDBLOCK", r.stderr)
        self.assertEqual(lockinfo(p)["pid"], h.pid, "a contender's LOCK_UN changes nothing")


class TestStress(FlockCase):

    PROCS = 16
    ITERS = 200
    LOOP = r'''
L=$1 M=$2 C=$3 N=$4 W=$5
i=0 ok=0
while [ $i -lt $N ]; do
  i=$((i+1))
  if flock -w "$W" "$L" sh -c 'mkdir "$1" 2>/dev/null || { echo OVERLAP; exit 3; }
      read n < "$2"; echo $((n+1)) > "$2"; rmdir "$1"' sh "$M" "$C"; then
    ok=$((ok+1))
  else
    echo "FAIL iter $i"
  fi
done
echo "DONE $ok"
'''

    def test_flock_command_critical_sections(self):
        p = self.p("stress.lock")
        d = self.tmp()
        marker, counter = os.path.join(d, "inside"), os.path.join(d, "count")
        with open(counter, "w") as f:
            f.write("0\n")
        procs = [subprocess.Popen(["sh", "-c", self.LOOP, "sh", p, marker, counter,
                                   str(self.ITERS), str(60 * SLOW)],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, start_new_session=True)
                 for _ in range(self.PROCS)]
        outs = []
        try:
            for pr in procs:
                outs.append(pr.communicate(timeout=180 * SLOW)[0])
        finally:
            for pr in procs:
                if pr.poll() is None:
                    os.killpg(pr.pid, signal.SIGKILL)
                    pr.wait()
        total = self.PROCS * self.ITERS
        for i, out in enumerate(outs):
            self.assertNotIn("OVERLAP", out)
            self.assertEqual(out.strip().splitlines()[-1], f"DONE {self.ITERS}",
                             f"process {i}: {out[-500:]}")
        with open(counter) as f:
            self.assertEqual(int(f.read()), total, "lost updates: sections overlapped")
        self.assertEqual(waiters(self.m), 0)
        wait_until(lambda: gone(p), T, "release by the last process")

    def test_reopen_loops(self):
        """Python programs that open, flock, unlock and close per round
        (flock(1)'s O_RDONLY|O_CREAT and filelock's O_RDWR|O_CREAT|O_TRUNC):
        an O_CREAT open racing a release or hand-off either takes the lock
        or gets a descriptor to wait with, never an error (SPEC R2.3)."""
        for flags in ("O_RDONLY|O_CREAT", "O_RDWR|O_CREAT|O_TRUNC"):
            with self.subTest(flags=flags):
                p = self.p("reopen.lock")
                marker = os.path.join(self.tmp(), "inside")
                r = subprocess.run([sys.executable, "-c", REOPEN_LOOPERS, p, marker, "8", "200",
                                    flags], capture_output=True, text=True, timeout=120 * SLOW)
                self.assertEqual(r.returncode, 0, r.stderr)
                res = json.loads(r.stdout)
                errors = [x["errors"] for x in res if x["errors"]]
                self.assertEqual(errors, [], "failed calls per process")
                self.assertEqual([x["done"] for x in res], [200] * 8)
                self.assertEqual(waiters(self.m), 0)
                wait_until(lambda: gone(p), T, "release by the last process")


class TestManyWaiters(FlockCase):

    PROCS = 8
    THREADS = 125               # 1000 parked flock(2) calls in all

    def test_thousand_parked_waiters(self):
        p = self.p("many.lock")
        n = self.PROCS * self.THREADS
        marker = os.path.join(self.tmp(), "inside")
        h = self.holder(p)
        m0 = metrics(self.m)
        procs = []
        for _ in range(self.PROCS):
            procs.append(spawn(self, [sys.executable, "-c", THREAD_WAITERS, p, marker,
                                      str(self.THREADS)], stdin=subprocess.DEVNULL))
        for _, out in procs:
            out.expect("STARTED", timeout=60 * SLOW)
        self.wait_waiters(n, timeout=60 * SLOW)

        other = self.p("other.lock")

        def create_unlink():
            os.close(os.open(other, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            os.unlink(other)

        def read_status():
            with open(p) as f:
                f.read()
        # the mount serves others meanwhile (how fast: tests/bench/handoff.py --parked)
        for _ in range(100):
            create_unlink()
            read_status()
        self.assertEqual(waiters(self.m), n, "nobody was granted meanwhile")
        self.assertEqual(lockinfo(p)["pid"], h.pid)

        h.release()
        for proc, out in procs:
            done = out.expect("DONE", timeout=120 * SLOW).split()
            self.assertEqual(done[1:], [str(self.THREADS), "-"], "every thread got it once")
            self.assertEqual(proc.wait(timeout=T), 0)
        self.assertEqual(waiters(self.m), 0)
        mm = metrics(self.m)
        self.assertEqual(released(mm, "unlock") - released(m0, "unlock"), n)
        wait_until(lambda: gone(p), T, "release by the last waiter")


if __name__ == "__main__":
    harness.main()
