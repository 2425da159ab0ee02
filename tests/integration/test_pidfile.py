#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Pid files on lockfs: names matching -o raw= read back the holder's bytes
(SPEC R4.4a) with an exact st_size, and a launcher's claim of the process
it started makes that process the holder (R3.3), so kill -0 $(cat x.pid),
pgrep -F, `cmd & echo $! > x.pid` and start-stop-daemon --pidfile work."""
import json
import os
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import LockfsTestCase, Holder, wait_until  # noqa: E402
from lockfs_it import spawn, status, exists, gone, loads  # noqa: E402

LOCKCTL = os.path.abspath(os.environ.get("LOCKCTL_BIN", "build/lockctl"))
SSD = shutil.which("start-stop-daemon") or "/sbin/start-stop-daemon"
TIMEOUT = 20

NODE_READ = r"""
const fs = require('fs');
const p = process.argv[1];
process.stdout.write(JSON.stringify([fs.readFileSync(p, 'latin1'),
                                     fs.statSync(p).size]));
"""


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def listed(m, path):
    """The status of path in .lockfs/locks.json, or None."""
    with open(m.path(".lockfs", "locks.json")) as f:
        locks = loads(f.read())
    rel = "/" + os.path.relpath(path, m.mnt)
    found = [s for s in locks if s["lockfs"]["path"] == rel]
    return found[0] if found else None


def exit_barrier(tc, m):
    """Return once the daemon has handled the exit of a claim-less creator
    started after everything before (its lock vanishes)."""
    p = m.path(".exit-barrier")
    r = subprocess.run(["sh", "-c", f"echo x > {p}"], timeout=TIMEOUT)
    tc.assertEqual(r.returncode, 0)
    wait_until(lambda: gone(p), what="exit barrier lock released")


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def kill_quietly(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, **kw)


class TestRawRead(LockfsTestCase):
    """R4.4a with -o raw=*.pid:run-?: the pid-file readers' idioms."""

    MOUNT_OPTS = "raw=*.pid:run-?"

    def shell_holder(self, name):
        """A shell that wrote `echo $$ > name` and lives on: (proc, path)."""
        p = self.p(name)
        proc, out = spawn(self, ["sh", "-c", f'echo $$ > {p}; echo ready; read x'])
        out.expect("ready")
        return proc, p

    def test_kill_0_cat(self):
        proc, p = self.shell_holder("x.pid")
        self.assertEqual(read_bytes(p), f"{proc.pid}\n".encode())
        r = run(["sh", "-c", f"kill -0 $(cat {p})"])
        self.assertEqual(r.returncode, 0, r.stderr)
        proc.stdin.close()
        proc.wait(timeout=TIMEOUT)
        wait_until(lambda: gone(p), what="pid file gone with its shell")

    def test_pgrep_F(self):
        proc, p = self.shell_holder("x.pid")
        r = run(["pgrep", "-F", p])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split(), [str(proc.pid)])

    def test_st_size_is_the_content_length(self):
        proc, p = self.shell_holder("run-1")  # the second glob
        want = f"{proc.pid}\n".encode()
        self.assertEqual(os.stat(p).st_size, len(want))
        fd = os.open(p, os.O_RDONLY)
        try:
            self.assertEqual(os.fstat(fd).st_size, len(want))
            self.assertEqual(os.read(fd, 4096), want)
        finally:
            os.close(fd)
        out = run(["node", "-e", NODE_READ, p])
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(json.loads(out.stdout), [want.decode(), len(want)])

    def test_json_content_reads_back_as_written(self):
        p = self.p("tool.pid")
        content = '{"pid": {pid}, "operation": "serve"}'
        h = Holder(p, content=content)
        self.addCleanup(h.kill)
        self.assertTrue(h.ok, h.errno)
        want = content.replace("{pid}", str(h.pid)).encode()
        self.assertEqual(read_bytes(p), want)
        self.assertEqual(os.stat(p).st_size, len(want))

    def test_read_back_through_the_writing_file(self):
        p = self.p("x.pid")
        fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, b"hello")
            self.assertEqual(os.pread(fd, 100, 0), b"hello")
            os.pwrite(fd, b" world", 5)
            self.assertEqual(os.pread(fd, 100, 0), b"hello world")
            self.assertEqual(os.fstat(fd).st_size, 11)
        finally:
            os.close(fd)

    def test_other_names_read_as_status(self):
        proc, p = self.shell_holder("x.lock")
        st = status(p)
        self.assertEqual(st["lockfs"]["pid"], proc.pid)
        self.assertEqual(os.stat(p).st_size, 0)
        proc2, p2 = self.shell_holder("run-12")  # '?' is one character
        self.assertEqual(status(p2)["lockfs"]["pid"], proc2.pid)

    def test_status_in_locks_json_and_lockctl_show(self):
        proc, p = self.shell_holder("x.pid")
        st = listed(self.m, p)
        self.assertIsNotNone(st, "the raw lock must be in locks.json")
        self.assertEqual(st["lockfs"]["pid"], proc.pid)
        self.assertEqual(st["pid"], proc.pid)
        r = run([LOCKCTL, "show", "--json", p])
        self.assertEqual(r.returncode, 0, r.stderr)
        shown = json.loads(r.stdout)
        self.assertEqual(shown["lockfs"]["path"], "/x.pid")
        self.assertEqual(shown["lockfs"]["pid"], proc.pid)
        r = run([LOCKCTL, "show", p])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(str(proc.pid), r.stdout)

    def test_lockctl_break(self):
        proc, p = self.shell_holder("x.pid")
        r = run([LOCKCTL, "break", p])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"held by pid {proc.pid}", r.stdout)
        self.assertTrue(gone(p))
        self.assertIsNone(proc.poll(), "breaking the pid file does not touch its process")


class TestLauncherClaims(LockfsTestCase):
    """R3.3: a launcher names the process it started; that process holds."""

    MOUNT_OPTS = "raw=*.pid"

    def test_background_child_outlives_its_launcher(self):
        p = self.p("x.pid")
        # the launcher exits at once; `echo` is the shell's builtin, so the
        # writer is the shell and $! its child
        r = run(["bash", "-c", f"sleep 1000 > /dev/null 2>&1 & echo $! > {p}; echo $!"])
        self.assertEqual(r.returncode, 0, r.stderr)
        child = int(r.stdout)
        self.addCleanup(kill_quietly, child)
        exit_barrier(self, self.m)
        self.assertTrue(exists(p), "the pid file must stay while its process lives")
        self.assertEqual(read_bytes(p), f"{child}\n".encode())
        st = listed(self.m, p)
        self.assertEqual(st["lockfs"]["pid"], child)
        self.assertEqual(st["lockfs"]["how"], "claim")
        self.assertNotIn("claim_ignored_pid", st["lockfs"])
        self.assertEqual(run(["sh", "-c", f"kill -0 $(cat {p})"]).returncode, 0)
        os.kill(child, signal.SIGKILL)
        wait_until(lambda: gone(p), what="pid file gone when its process dies")

    def test_external_echo_names_a_sibling(self):
        # /bin/echo is the shell's child, so $! names its sibling: not the
        # writer's descendant, ignored; the pid file goes with /bin/echo
        p = self.p("x.pid")
        keep = self.p("keep.pid")
        r = run(["bash", "-c", f"sleep 1000 > /dev/null 2>&1 & /bin/echo $! > {p}; "
                               f"echo $! > {keep}; echo $!"])
        self.assertEqual(r.returncode, 0, r.stderr)
        child = int(r.stdout)
        self.addCleanup(kill_quietly, child)
        wait_until(lambda: gone(p), what="the pid file written by /bin/echo released")
        self.assertTrue(exists(keep), "the builtin echo's claim holds")
        self.assertEqual(listed(self.m, keep)["lockfs"]["pid"], child)

    def test_claim_of_an_unrelated_process_is_ignored(self):
        sib = subprocess.Popen(["sleep", "1000"])
        self.addCleanup(lambda: (sib.kill(), sib.wait()))
        p = self.p("x.pid")
        h = Holder(p, content=f"{sib.pid}\n")
        self.addCleanup(h.kill)
        self.assertTrue(h.ok, h.errno)
        st = listed(self.m, p)
        self.assertEqual(st["lockfs"]["pid"], h.pid, "the writer stays holder")
        self.assertEqual(st["lockfs"]["how"], "creator")
        self.assertEqual(st["lockfs"].get("claim_ignored_pid"), sib.pid)
        self.assertEqual(read_bytes(p), f"{sib.pid}\n".encode(), "raw: what was written")
        h.kill()
        wait_until(lambda: gone(p), what="released with the writer, not the named process")
        self.assertIsNone(sib.poll())

    def ssd(self, *args):
        return run([SSD, *args])

    def test_start_stop_daemon(self):
        p = self.p("d.pid")
        start = ["--start", "--background", "--make-pidfile", "--pidfile", p,
                 "--exec", "/bin/sleep", "--", "30"]
        r = self.ssd(*start)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        pid = int(read_bytes(p))
        self.addCleanup(kill_quietly, pid)
        self.assertTrue(alive(pid))
        exit_barrier(self, self.m)  # start-stop-daemon's own processes are gone
        # the second start looks for /bin/sleep running under that pid: the
        # daemon may not have exec'd it yet (no event tells, so poll)
        sleep_exe = os.path.realpath("/bin/sleep")
        wait_until(lambda: os.path.realpath(f"/proc/{pid}/exe") == sleep_exe,
                   what="the daemon to exec /bin/sleep")
        self.assertEqual(listed(self.m, p)["lockfs"]["pid"], pid)
        r = self.ssd("--status", "--pidfile", p)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = self.ssd(*start)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("already running", r.stdout + r.stderr)
        self.assertEqual(int(read_bytes(p)), pid, "the second start changed nothing")
        r = self.ssd("--stop", "--pidfile", p)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        wait_until(lambda: gone(p), what="pid file gone when the daemon dies")
        self.assertEqual(self.ssd("--status", "--pidfile", p).returncode, 3)


class TestRawDefaults(LockfsTestCase):
    """Without -o raw=, *.pid names read back raw (the default)."""

    def test_pid_names_are_raw_by_default(self):
        proc, out = spawn(self, ["sh", "-c", f'echo $$ > {self.p("x.pid")}; echo ready; read x'])
        out.expect("ready")
        self.assertEqual(read_bytes(self.p("x.pid")), f"{proc.pid}\n".encode())


class TestRawOff(LockfsTestCase):
    """-o raw= (empty): every lock reads as its JSON status."""

    MOUNT_OPTS = "raw="

    def test_no_raw_names(self):
        proc, out = spawn(self, ["sh", "-c", f'echo $$ > {self.p("x.pid")}; echo ready; read x'])
        out.expect("ready")
        self.assertEqual(status(self.p("x.pid"))["lockfs"]["pid"], proc.pid)
        self.assertEqual(os.stat(self.p("x.pid")).st_size, 0)


if __name__ == "__main__":
    harness.main()
