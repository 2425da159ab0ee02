# SPDX-License-Identifier: MIT
"""Shared set-up for integration tests: mount a real lockfs in a temporary
directory, always unmount it, and small helpers to hold locks from other
processes. Stdlib only.

Environment: LOCKFS_BIN (the daemon), LOCKFS_RACE_CLIENT (C race client),
LOCKFS_WRAPPER (optional command prefix, e.g. valgrind, for the daemon).
"""
import errno
import os
import pwd
import select
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

LOCKFS_BIN = os.environ.get("LOCKFS_BIN", "build/lockfs")
RACE_CLIENT = os.environ.get("LOCKFS_RACE_CLIENT", "build/tests/race_client")
WRAPPER = shlex.split(os.environ.get("LOCKFS_WRAPPER", ""))
# valgrind's gdbserver (--vgdb=yes, its default) makes FIFOs in /tmp that a
# SIGKILLed daemon (Mount.crash) leaves behind: off unless asked for.
if (WRAPPER and os.path.basename(WRAPPER[0]) == "valgrind"
        and not any(a.startswith("--vgdb") for a in WRAPPER)):
    WRAPPER.insert(1, "--vgdb=no")
TEST_USER = "lockfs-test"
TEST_USER2 = "lockfs-test2"
READY_TIMEOUT = 60 if WRAPPER else 10
DYING_TIMEOUT = 10
# The deadline of an event that must come (a release seen, a TTL run out, a
# log line): generous, so a loaded machine never fails a test. Tests assert
# that something happens, never how fast (that is tests/bench/).
EVENT_TIMEOUT = 60 if WRAPPER else 30


class Mount:
    """A lockfs daemon in the foreground serving a temporary mount point.

    start() returns once the daemon logged that it serves the mount (an
    event, not a sleep); stop() unmounts, waits for the daemon and returns
    its exit status. crash() kills the daemon with SIGKILL and leaves its
    dead mount; start() again restarts it on the same mount point and state.
    The journal (state_dir) and fence file live in the temporary directory
    unless opts name others. Use as a context manager or via LockfsTestCase."""

    def __init__(self, opts="", args=()):
        self.opts = opts
        self.args = list(args)
        self.dir = tempfile.mkdtemp(prefix="lockfs-it-")
        os.chmod(self.dir, 0o755)
        self.mnt = os.path.join(self.dir, "mnt")
        os.mkdir(self.mnt)
        self.state_dir = os.path.join(self.dir, "state")
        self.fence_file = os.path.join(self.dir, "fence")
        self.proc = None
        self.dying = self._dying_reader = None
        self.log_lines = []
        self._reader = None

    def command(self):
        opts = [o for o in self.opts.split(",") if o]
        if not any(o.startswith("state_dir=") for o in opts):
            opts.append("state_dir=" + self.state_dir)
        if not any(o.startswith("fence_file=") for o in opts):
            opts.append("fence_file=" + self.fence_file)
        return WRAPPER + [LOCKFS_BIN, "-f"] + self.args + ["-o", ",".join(opts), self.mnt]

    def start(self):
        cmd = self.command()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + READY_TIMEOUT
        buf = b""
        fd = self.proc.stderr.fileno()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self._abort("daemon did not report serving in time")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                self._abort("daemon exited before serving")
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.decode(errors="replace")
                self.log_lines.append(text)
                if "serving " in text:
                    self._reader = threading.Thread(target=self._drain, args=(buf,),
                                                    daemon=True)
                    self._reader.start()
                    self._reap_dying()
                    return self

    def _drain(self, rest):
        if rest:
            self.log_lines.append(rest.decode(errors="replace"))
        for line in self.proc.stderr:
            self.log_lines.append(line.decode(errors="replace").rstrip("\n"))

    def _abort(self, why):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        rest = self.proc.stderr.read().decode(errors="replace")
        self.cleanup_dir()
        raise RuntimeError(f"{why}: {' '.join(self.log_lines)} {rest}")

    def log(self):
        return "\n".join(self.log_lines)

    def path(self, *names):
        return os.path.join(self.mnt, *names)

    def is_mounted(self):
        with open("/proc/self/mounts") as f:
            return any(line.split()[1] == self.mnt for line in f)

    def crash(self):
        """SIGKILL the daemon; its dead mount stays. Returns once it ended,
        or after DYING_TIMEOUT when it cannot finish dying (a thread of it
        waits in the kernel on the dead connection, see README): then the
        next start() must abort that connection, and reaps it. Returns True
        when the daemon ended here."""
        self.proc.kill()
        try:
            self.proc.wait(timeout=DYING_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.dying, self._dying_reader = self.proc, self._reader
            self.proc = self._reader = None
            return False
        self._close_daemon()
        return True

    def _reap_dying(self):
        """Reap a daemon that crash() left dying (its successor aborted its
        connection)."""
        if self.dying is None:
            return
        try:
            self.dying.wait(timeout=READY_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"killed daemon pid {self.dying.pid} still has not ended")
        if self._dying_reader:
            self._dying_reader.join(timeout=5)
        self.dying.stderr.close()
        self.dying = self._dying_reader = None

    def _close_daemon(self):
        if self._reader:
            self._reader.join(timeout=5)
            self._reader = None
        self.proc.stderr.close()
        self.proc = None

    def unmount(self):
        """Unmount (lazily if busy); also a dead mount."""
        if self.is_mounted():
            r = subprocess.run(["fusermount3", "-u", self.mnt], capture_output=True)
            if r.returncode != 0:
                subprocess.run(["fusermount3", "-uz", self.mnt], capture_output=True)

    def stop(self):
        """Unmount, wait for the daemon; return its status (None when no
        daemon ran)."""
        if self.proc is None:
            self.unmount()
            if self.dying is not None:
                subprocess.run(["umount", "-f", self.mnt], capture_output=True)
                self._reap_dying()
            self.cleanup_dir()
            return None
        self.unmount()
        try:
            rc = self.proc.wait(timeout=60 if WRAPPER else 20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self._close_daemon()
        self.cleanup_dir()
        return rc

    def cleanup_dir(self):
        """Remove the temporary directory (the daemon made the bare mount
        point immutable)."""
        if not self.is_mounted():
            subprocess.run(["chattr", "-i", self.mnt], capture_output=True)
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class LockfsTestCase(unittest.TestCase):
    """Each test gets a fresh mount in self.m (options from MOUNT_OPTS),
    unmounted even when the test fails; a daemon that exits non-zero (a
    crash, or a leak under valgrind) fails the test."""

    MOUNT_OPTS = ""

    def setUp(self):
        self.m = Mount(self.MOUNT_OPTS).start()
        self.addCleanup(self._unmount)

    def _unmount(self):
        rc = self.m.stop()
        if rc != 0:
            self.fail(f"daemon exited with {rc}; log:\n{self.m.log()}")

    def p(self, *names):
        return self.m.path(*names)


def ensure_user(name=TEST_USER):
    """Create an unprivileged test user if missing; return (uid, gid)."""
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", name], check=True)
        pw = pwd.getpwnam(name)
    return pw.pw_uid, pw.pw_gid


def as_user(cmd, name=TEST_USER):
    """Prefix argv cmd so that it runs as the unprivileged user name."""
    uid, gid = ensure_user(name)
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"] + cmd


HOLD_SCRIPT = r"""
import os, sys
path, content, mode = sys.argv[1], sys.argv[2], sys.argv[3]
flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if mode == "excl" else os.O_TRUNC)
try:
    fd = os.open(path, flags, 0o644)
    if content:
        os.write(fd, content.replace("{pid}", str(os.getpid())).encode())
    os.close(fd)
except OSError as e:
    print("ERR", e.errno, flush=True)
    sys.exit(1)
print("OK", os.getpid(), flush=True)
sys.stdin.read()          # hold until the test closes our stdin
if len(sys.argv) > 4 and sys.argv[4] == "unlink":
    os.unlink(path)
"""


class Holder:
    """A separate process that takes path (exclusive create by default),
    writes content ("{pid}" is replaced by its pid), then holds the lock
    until release() or kill(). Construction waits for its report."""

    def __init__(self, path, content="{pid}\n", mode="excl", user=None, unlink=False):
        cmd = [sys.executable, "-c", HOLD_SCRIPT, path, content, mode]
        if unlink:
            cmd.append("unlink")
        if user:
            cmd = as_user(cmd, user)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        line = self.proc.stdout.readline().split()
        if not line:
            self.proc.wait()
            raise RuntimeError("holder died before reporting")
        self.ok = line[0] == "OK"
        self.errno = None if self.ok else int(line[1])
        self.pid = int(line[1]) if self.ok else None

    def release(self):
        """Let the holder exit normally (closing stdin); wait for it."""
        if not self.proc.stdin.closed:
            self.proc.stdin.close()
        return self._reap()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        return self._reap()

    def _reap(self):
        rc = self.proc.wait(timeout=20)
        for f in (self.proc.stdin, self.proc.stdout):
            if not f.closed:
                f.close()
        return rc


def mount_id(path):
    """The daemon's name for mount point path (src/mountpoint.h: as
    systemd-escape --path writes it)."""
    p = os.path.realpath(path).strip("/")
    if not p:
        return "-"
    out = []
    for i, c in enumerate(p.encode()):
        ch = chr(c)
        if ch == "/":
            out.append("-")
        elif ch.isascii() and (ch.isalnum() or ch in "_:" or (ch == "." and i > 0)):
            out.append(ch)
        else:
            out.append("\\x%02x" % c)
    return "".join(out)


def wait_until(pred, timeout=EVENT_TIMEOUT, what="condition"):
    """Poll pred until true; for states with no event to await. Fails
    loudly after timeout (a deadline, not a bound the test asserts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def errno_of(fn, *args, **kw):
    """Run fn; return the OSError errno it raised, or 0."""
    try:
        fn(*args, **kw)
    except OSError as e:
        return e.errno
    return 0


def main():
    unittest.main(verbosity=2)


__all__ = ["Mount", "LockfsTestCase", "Holder", "ensure_user", "as_user", "wait_until", "mount_id",
           "errno_of", "main", "errno", "RACE_CLIENT", "LOCKFS_BIN", "TEST_USER",
           "TEST_USER2", "EVENT_TIMEOUT"]
