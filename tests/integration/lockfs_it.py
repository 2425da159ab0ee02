# SPDX-License-Identifier: MIT
"""Helpers shared by test_holder/status/release/namespace/seed (stdlib only).

Agent: a long-lived Python process (optionally as an unprivileged user) that
performs file operations on request and answers each with one JSON line, so a
test can act as "the holder", "its child" or "an unrelated process" at will.
"""
import datetime
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import warnings

import harness

# The harness's Holder and Mount leave pipes to the garbage collector; keep
# unittest's "default" warning filter from burying results under
# ResourceWarnings (unittest.main only installs it when warnoptions is empty).
sys.warnoptions.append("ignore::ResourceWarning")
warnings.filterwarnings("ignore", category=ResourceWarning)

# src/abi/lockfs_ioctl.h: _IOW('L', 1, struct lockfs_break_arg { uint64_t fence; })
LOCKFS_IOC_BREAK = (1 << 30) | (8 << 16) | (ord("L") << 8) | 1

AGENT_SCRIPT = r"""
import json, os, subprocess, sys
LOCKFS_IOC_BREAK = %d

def sub(s):
    return s.replace("{pid}", str(os.getpid())).replace("{ppid}", str(os.getppid()))

def do(c):
    k = c["op"]
    p = c.get("path")
    if k == "create":
        flags = os.O_WRONLY | os.O_CREAT
        if c.get("excl", True):
            flags |= os.O_EXCL
        if c.get("trunc"):
            flags |= os.O_TRUNC
        fd = os.open(p, flags, 0o644)
        try:
            if "data" in c:
                os.write(fd, sub(c["data"]).encode())
        finally:
            os.close(fd)
    elif k == "write":
        flags = os.O_WRONLY
        if c.get("trunc", True):
            flags |= os.O_TRUNC
        if c.get("append"):
            flags |= os.O_APPEND
        if c.get("creat"):
            flags |= os.O_CREAT
        fd = os.open(p, flags, 0o644)
        try:
            return os.write(fd, sub(c["data"]).encode())
        finally:
            os.close(fd)
    elif k == "open_write":
        # open succeeds? report it separately from the write outcome
        flags = os.O_WRONLY | (os.O_CREAT if c.get("creat") else 0) | \
            (os.O_TRUNC if c.get("trunc") else 0)
        fd = os.open(p, flags, 0o644)
        try:
            try:
                os.write(fd, sub(c.get("data", "x")).encode())
                return {"write": 0}
            except OSError as e:
                return {"write": e.errno}
        finally:
            os.close(fd)
    elif k == "ftruncate":
        fd = os.open(p, os.O_WRONLY)
        try:
            os.ftruncate(fd, c.get("size", 0))
        finally:
            os.close(fd)
    elif k == "touch":
        os.utime(p, None)
    elif k == "utime":
        os.utime(p, (c["atime"], c["mtime"]))
    elif k == "unlink":
        os.unlink(p)
    elif k == "rename":
        os.rename(p, c["dst"])
    elif k == "link":
        os.link(p, c["dst"])
    elif k == "chmod":
        os.chmod(p, c["mode"])
    elif k == "chown":
        os.chown(p, c["uid"], c["gid"])
    elif k == "read":
        with open(p) as f:
            return f.read()
    elif k == "stat":
        st = os.stat(p)
        return {"mode": st.st_mode, "uid": st.st_uid, "gid": st.st_gid,
                "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    elif k == "exec":
        return subprocess.run(c["argv"], stdin=subprocess.DEVNULL,
                              capture_output=True).returncode
    elif k == "mkdir":
        os.mkdir(p)
    elif k == "break":          # lockctl break: the ioctl, with the fence read
        import fcntl, struct
        fd = os.open(p, os.O_RDONLY)
        try:
            fence = json.loads(os.pread(fd, 1 << 20, 0))["lockfs"]["fence"]
            fcntl.ioctl(fd, LOCKFS_IOC_BREAK, struct.pack("=Q", fence))
        finally:
            os.close(fd)
        return fence
    elif k == "open":           # keep a descriptor for later fd* ops
        flags = 0
        for f in c["flags"]:
            flags |= getattr(os, f)
        return os.open(p, flags, 0o644)
    elif k == "fdwrite":
        if c.get("offset") is not None:
            return os.pwrite(c["fd"], sub(c["data"]).encode(), c["offset"])
        return os.write(c["fd"], sub(c["data"]).encode())
    elif k == "fdread":
        return os.pread(c["fd"], 1 << 20, 0).decode()
    elif k == "fdtruncate":
        os.ftruncate(c["fd"], c.get("size", 0))
    elif k == "close":
        os.close(c["fd"])
    else:
        raise ValueError(k)

def run(c):
    try:
        return {"ok": True, "value": do(c)}
    except OSError as e:
        return {"ok": False, "errno": e.errno}

print("READY", os.getpid(), flush=True)
for line in sys.stdin:
    c = json.loads(line)
    if c.get("child"):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.write(w, json.dumps(run(c)).encode())
            os._exit(0)
        os.close(w)
        data = b""
        while True:
            b = os.read(r, 65536)
            if not b:
                break
            data += b
        os.close(r)
        os.waitpid(pid, 0)
        res = json.loads(data)
        res["child_pid"] = pid
    else:
        res = run(c)
    print(json.dumps(res), flush=True)
""" % LOCKFS_IOC_BREAK


class Lines:
    """Read a pipe line by line on a thread; get(timeout) never hangs."""

    def __init__(self, stream):
        self.q = queue.Queue()
        self.t = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self.t.start()

    def _run(self, stream):
        for line in stream:
            self.q.put(line.rstrip("\n"))
        self.q.put(None)

    def get(self, timeout=harness.EVENT_TIMEOUT, what="a line"):
        try:
            line = self.q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"timed out waiting for {what}")
        if line is None:
            raise AssertionError(f"stream closed while waiting for {what}")
        return line

    def expect(self, prefix, timeout=harness.EVENT_TIMEOUT):
        """Skip lines until one starts with prefix; return it."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.get(max(0.001, deadline - time.monotonic()), what=repr(prefix))
            if line.startswith(prefix):
                return line


class Agent:
    """A process that performs file operations on request."""

    def __init__(self, user=None):
        cmd = [sys.executable, "-c", AGENT_SCRIPT]
        if user:
            cmd = harness.as_user(cmd, user)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, cwd="/")
        self.out = Lines(self.proc.stdout)
        self.pid = int(self.out.expect("READY").split()[1])

    def call(self, op, timeout=20, **kw):
        """Perform op; fails the test when no answer comes within timeout s."""
        kw["op"] = op
        self.proc.stdin.write(json.dumps(kw) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.out.get(timeout, what=f"agent answer to {op}"))

    def ok(self, op, timeout=20, **kw):
        r = self.call(op, timeout, **kw)
        if not r["ok"]:
            raise AssertionError(f"agent {op} {kw} failed: errno {r['errno']} "
                                 f"({os.strerror(r['errno'])})")
        return r["value"]

    def err(self, op, timeout=20, **kw):
        """errno of op (0 on success)."""
        r = self.call(op, timeout, **kw)
        return 0 if r["ok"] else r["errno"]

    def exit(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        rc = self.proc.wait(timeout=20)
        self._close()
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        rc = self.proc.wait(timeout=20)
        self._close()
        return rc

    def _close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        self.out.t.join(timeout=5)
        self.proc.stdout.close()


def agent(tc, user=None):
    """An Agent that is killed when the test case tc ends."""
    a = Agent(user)
    tc.addCleanup(a.kill)
    return a


def spawn(tc, argv, **kw):
    """Popen with pipes, killed at the end of tc; returns (proc, Lines(stdout))."""
    kw.setdefault("stdin", subprocess.PIPE)
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("text", True)
    p = subprocess.Popen(argv, **kw)

    lines = Lines(p.stdout) if p.stdout else None

    def _kill():
        if p.poll() is None:
            p.kill()
        p.wait(timeout=20)
        close_pipes(p, lines)
    tc.addCleanup(_kill)
    return p, lines


def close_pipes(p, *readers):
    for r in readers:
        if r is not None:
            r.t.join(timeout=5)
    for s in (p.stdin, p.stdout, p.stderr):
        if s is not None:
            try:
                s.close()
            except OSError:
                pass


def _no_dup_keys(pairs):
    keys = [k for k, _ in pairs]
    dups = sorted({k for k in keys if keys.count(k) > 1})
    if dups:
        raise AssertionError(f"duplicate JSON keys {dups} in status")
    return dict(pairs)


def loads(text):
    """json.loads that fails on duplicate keys (a status must have one pid)."""
    return json.loads(text, object_pairs_hook=_no_dup_keys)


EXCL = os.O_WRONLY | os.O_CREAT | os.O_EXCL


def create(path, data=b""):
    """Take path with an exclusive create from this process; write data."""
    fd = os.open(path, EXCL, 0o644)
    try:
        if data:
            os.write(fd, data)
    finally:
        os.close(fd)


def break_lock(path):
    """What `lockctl break PATH` does (SPEC R3.4: an unlink of a live lock
    is EBUSY, even root's): the LOCKFS_IOC_BREAK ioctl with the fence the
    status shows. Returns that fence."""
    import fcntl
    import struct
    fd = os.open(path, os.O_RDONLY)
    try:
        fence = json.loads(os.pread(fd, 1 << 20, 0))["lockfs"]["fence"]
        fcntl.ioctl(fd, LOCKFS_IOC_BREAK, struct.pack("=Q", fence))
    finally:
        os.close(fd)
    return fence


def status(path):
    with open(path) as f:
        return loads(f.read())


def lockinfo(path):
    """The daemon's facts ("lockfs" member) of the lock at path."""
    return status(path)["lockfs"]


def exists(path):
    return harness.errno_of(os.stat, path) == 0


def gone(path):
    return harness.errno_of(os.stat, path) == harness.errno.ENOENT


def assert_gone_now(tc, path):
    """The name is gone for every observer: not listed, stat and open give
    ENOENT, and an exclusive create succeeds (then is undone)."""
    d, name = os.path.split(path)
    tc.assertNotIn(name, os.listdir(d))
    tc.assertEqual(harness.errno_of(os.stat, path), harness.errno.ENOENT)
    tc.assertEqual(harness.errno_of(os.open, path, os.O_RDONLY), harness.errno.ENOENT)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.close(fd)
    os.unlink(path)


ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def parse_iso(s):
    """ms since the epoch from "2026-11-26T17:53:33.123Z"."""
    if not isinstance(s, str) or not ISO_RE.match(s):
        raise AssertionError(f"not ISO-8601 UTC with ms: {s!r}")
    d = datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)
    return int(d.timestamp() * 1000 + 0.5)


METRIC_RE = re.compile(
    r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([-+]?(?:[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?"
    r"|NaN|[+-]?Inf))(?:\s+-?[0-9]+)?$")


def parse_metrics(text):
    """Prometheus text -> {"name{labels}": float}; raises on a bad line."""
    out = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = METRIC_RE.match(line)
        if not m:
            raise AssertionError(f"bad metrics line: {line!r}")
        out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def metrics(m):
    with open(m.path(".lockfs", "metrics")) as f:
        return parse_metrics(f.read())


def released(mm, cause):
    return mm.get(f'lockfs_released_total{{cause="{cause}"}}', 0.0)


class DeleteWatch:
    """inotifywait -e delete_self FILE, started and confirmed established."""

    def __init__(self, tc, path):
        self.proc = subprocess.Popen(["inotifywait", "-e", "delete_self", path],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)

        def _kill():
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(timeout=20)
            close_pipes(self.proc, self.err)
        tc.addCleanup(_kill)
        self.err = Lines(self.proc.stderr)
        self.err.expect("Watches established")

    def wait(self, timeout=harness.EVENT_TIMEOUT):
        """Wait for the event (timeout: a deadline, not a bound the test
        asserts); return (returncode, stdout)."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("inotifywait -e delete_self did not fire "
                                 f"within {timeout}s")
        return rc, self.proc.stdout.read()

    def fired(self):
        return self.proc.poll() is not None
