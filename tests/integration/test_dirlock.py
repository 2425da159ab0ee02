#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Directory locks (SPEC R7.5), on real mounts.

A directory whose name matches -o dirlocks=GLOBS (default *.lock) is a lock:
taken by its mkdir (a second mkdir fails with EEXIST while it is held),
held by the process that made it, released by its rmdir or at once by its
death (the directory vanishes, so the shell's `mkdir` idiom and
proper-lockfile never meet a stale lock); anyone else's rmdir or rm -rf
fails with EBUSY and changes nothing. `-o dirlocks=` turns it off: plain
directories. The times set on any directory read back exactly (utimes,
touch -d, os.utime with ns), which proper-lockfile relies on.

proper-lockfile (npm) is installed into a temporary directory from the npm
registry (node and npm from apt when missing)."""
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import (LockfsTestCase, TEST_USER, WRAPPER, as_user, errno,  # noqa: E402
                     errno_of, wait_until)
from lockfs_it import exists, gone, spawn  # noqa: E402

T = 60 if WRAPPER else 20
HERE = os.path.dirname(os.path.abspath(__file__))
LOCKCTL = os.path.abspath(os.environ.get("LOCKCTL_BIN", "build/lockctl"))
CLIENT = os.path.join(HERE, "clients", "proper_lockfile.js")

# The shell idiom: mkdir as the lock, rmdir as the release.
MKDIR = 'mkdir "$1"; echo "TOOK $? $$"; read -r _; rmdir "$1"; echo "UNLOCKED $?"'


def run(argv, user=None, **kw):
    if user:
        argv = as_user(argv, user)
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=T, **kw)


def locks_json(m):
    with open(m.path(".lockfs", "locks.json")) as f:
        return json.load(f)


class DirlockCase(LockfsTestCase):

    def shell(self, script, path, user=None):
        argv = ["bash", "-c", script, "bash", path]
        if user:
            argv = as_user(argv, user)
        return spawn(self, argv)

    def took(self, out, proc):
        f = out.expect("TOOK", timeout=T).split()
        self.assertEqual(int(f[1]), 0, f"mkdir's exit status: {f}")
        self.assertEqual(int(f[2]), proc.pid)
        return proc.pid

    def status_of(self, name):
        """The status of the held lock named /name in locks.json, or None."""
        for s in locks_json(self.m):
            if s["lockfs"]["path"] == f"/{name}":
                return s
        return None


class TestDirlock(DirlockCase):

    def test_shell_mkdir_idiom(self):
        """mkdir kd.lock succeeds once; a second mkdir fails ("File
        exists") while it is held; it is an empty directory of its maker's
        that holds nothing; rmdir by the maker releases it at once."""
        p = self.p("kd.lock")
        sh, out = self.shell(MKDIR, p)
        pid = self.took(out, sh)
        self.assertTrue(os.path.isdir(p))
        self.assertEqual(os.listdir(p), [])
        self.assertEqual(os.stat(p).st_mode & 0o7777, 0o755)
        st = self.status_of("kd.lock")
        self.assertIsNotNone(st, f"a held lock: {locks_json(self.m)}")
        self.assertEqual(st["lockfs"]["pid"], pid)
        self.assertEqual(st["lockfs"]["how"], "mkdir")
        r = run(["mkdir", p])
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("File exists", r.stderr)
        self.assertEqual(errno_of(os.mkdir, p), errno.EEXIST)
        # not a file, holds nothing, stays put
        self.assertEqual(errno_of(open, p, "w"), errno.EISDIR)
        self.assertEqual(errno_of(os.open, p, os.O_WRONLY | os.O_CREAT, 0o644), errno.EISDIR)
        self.assertEqual(errno_of(os.unlink, p), errno.EISDIR)
        self.assertEqual(errno_of(os.open, os.path.join(p, "x"),
                                  os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), errno.EACCES)
        self.assertEqual(errno_of(os.mkdir, os.path.join(p, "sub")), errno.EACCES)
        self.assertEqual(errno_of(os.rename, p, self.p("moved.lock")), errno.EBUSY)
        self.assertTrue(os.path.isdir(p))
        # the maker's rmdir releases it, for every observer at once
        sh.stdin.close()
        self.assertEqual(out.expect("UNLOCKED", timeout=T), "UNLOCKED 0")
        self.assertEqual(sh.wait(timeout=T), 0)
        self.assertTrue(gone(p))
        self.assertNotIn("kd.lock", os.listdir(self.m.mnt))
        self.assertIsNone(self.status_of("kd.lock"))
        os.mkdir(p)  # free again: now this test process holds it
        os.rmdir(p)
        self.assertTrue(gone(p))

    def test_kill9_releases(self):
        """bash -c 'mkdir kd.lock; kill -9 $$': the script holds it (not the
        mkdir process, which exits at once), and its death removes the
        directory."""
        p = self.p("kd.lock")
        r = run(["bash", "-c", 'mkdir "$1" && [ -d "$1" ] && kill -9 $$', "bash", p])
        self.assertEqual(r.returncode, -9, r)  # it existed after mkdir exited
        wait_until(lambda: gone(p), T, f"{p} released on its maker's death")
        self.assertNotIn("kd.lock", os.listdir(self.m.mnt))
        # mkdir(1) takes it for the process that ran it (here: this test)
        r = run(["mkdir", p])
        self.assertEqual(r.returncode, 0, r)
        self.assertEqual(self.status_of("kd.lock")["lockfs"]["pid"], os.getpid())
        self.assertTrue(os.path.isdir(p), "mkdir(1)'s exit does not release it")
        os.rmdir(p)
        self.assertTrue(gone(p))

    def test_others_rmdir_is_ebusy(self):
        """rmdir and rm -rf by another live process (root, another user)
        fail with EBUSY; the lock stays."""
        p = self.p("kd.lock")
        sh, out = self.shell(MKDIR, p)
        pid = self.took(out, sh)
        r = run(["rmdir", p])
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("Device or resource busy", r.stderr)
        r = run(["rm", "-rf", p])
        self.assertNotEqual(r.returncode, 0, r)
        self.assertIn("Device or resource busy", r.stderr)
        r = run(["rmdir", p], user=TEST_USER)
        self.assertEqual(r.returncode, 1, r)
        self.assertTrue(os.path.isdir(p))
        self.assertEqual(self.status_of("kd.lock")["lockfs"]["pid"], pid)
        # its holder's utimes renews it and reads back; others' fail
        r = run(["touch", "-d", "2020-01-02 03:04:05", p], user=TEST_USER)
        self.assertEqual(r.returncode, 1, r)
        sh.stdin.close()
        self.assertEqual(out.expect("UNLOCKED", timeout=T), "UNLOCKED 0")
        self.assertEqual(sh.wait(timeout=T), 0)
        self.assertTrue(gone(p))

    def test_lockctl_show_and_break(self):
        """lockctl show reads a directory lock's status; root's lockctl
        break removes it from its live holder (logged); a plain directory
        is no lock."""
        p = self.p("kd.lock")
        sh, out = self.shell(MKDIR, p)
        pid = self.took(out, sh)
        r = run([LOCKCTL, "show", "--json", p])
        self.assertEqual(r.returncode, 0, r)
        self.assertEqual(json.loads(r.stdout)["lockfs"]["pid"], pid)
        r = run([LOCKCTL, "break", p])
        self.assertEqual(r.returncode, 0, r)
        self.assertIn(f"held by pid {pid}", r.stdout)
        self.assertTrue(gone(p))
        wait_until(lambda: "force-unlock of /kd.lock" in self.m.log(), T, "the break logged")
        sh.stdin.close()
        self.assertEqual(out.expect("UNLOCKED", timeout=T), "UNLOCKED 1")  # its rmdir: gone
        os.mkdir(self.p("plain"))
        r = run([LOCKCTL, "show", self.p("plain")])
        self.assertNotEqual(r.returncode, 0, r)
        self.assertIn("directory", r.stderr)

    def test_restart_keeps_it(self):
        """A daemon crash and restart (SPEC R8.2) keeps a live holder's
        directory lock (a directory again, same holder and fence) and drops a
        dead holder's; the holder's rmdir then releases it."""
        p, q = self.p("kd.lock"), self.p("dead.lock")
        sh, out = self.shell(MKDIR, p)
        pid = self.took(out, sh)
        sh2, out2 = self.shell(MKDIR, q)
        self.took(out2, sh2)
        fence = self.status_of("kd.lock")["lockfs"]["fence"]
        self.m.crash()
        sh2.kill()
        sh2.wait(timeout=T)
        self.m.start()
        self.assertTrue(os.path.isdir(p))
        self.assertTrue(gone(q), "a dead holder's directory lock is dropped")
        st = self.status_of("kd.lock")
        self.assertEqual((st["lockfs"]["pid"], st["lockfs"]["fence"], st["lockfs"]["how"]),
                         (pid, fence, "mkdir"))
        self.assertEqual(errno_of(os.mkdir, p), errno.EEXIST)
        sh.stdin.close()
        self.assertEqual(out.expect("UNLOCKED", timeout=T), "UNLOCKED 0")
        self.assertTrue(gone(p))

    def test_directory_times_read_back(self):
        """utimes on a plain directory and on a directory lock (by its
        holder) reads back exactly, to the nanosecond."""
        d = self.p("plain")
        os.mkdir(d)
        os.utime(d, ns=(1500000000123456789, 1600000000987654321))
        st = os.stat(d)
        self.assertEqual((st.st_atime_ns, st.st_mtime_ns),
                         (1500000000123456789, 1600000000987654321))
        r = run(["touch", "-d", "2001-02-03 04:05:06.123456789 UTC", d])
        self.assertEqual(r.returncode, 0, r)
        self.assertEqual(os.stat(d).st_mtime_ns, 981173106123456789)
        far = 32503680000 * 10**9 + 7  # the year 3000: past what ns in 64 bits hold
        os.utime(d, ns=(far, far))
        self.assertEqual(os.stat(d).st_mtime_ns, far)
        # a directory lock held by this process: its times too
        p = self.p("kd.lock")
        os.mkdir(p)
        self.addCleanup(lambda: exists(p) and os.rmdir(p))
        future = (int(time.time()) + 3600) * 10**9 + 5 * 10**6  # proper-lockfile's probe
        os.utime(p, ns=(future, future))
        st = os.stat(p)
        self.assertEqual((st.st_atime_ns, st.st_mtime_ns), (future, future))
        os.utime(p, ns=(future, future + 1))
        self.assertEqual(os.stat(p).st_mtime_ns, future + 1)
        r = run(["touch", "-d", "2001-02-03 04:05:06 UTC", p], user=TEST_USER)
        self.assertEqual(r.returncode, 1, r)
        self.assertEqual(os.stat(p).st_mtime_ns, future + 1)
        os.rmdir(p)
        self.assertTrue(gone(p))


class TestDirlocksOff(DirlockCase):
    MOUNT_OPTS = "dirlocks="

    def test_plain_directory(self):
        """-o dirlocks= (empty): kd.lock is a plain directory: no lock, it
        outlives its maker, anyone's rmdir removes it; its times read back."""
        p = self.p("kd.lock")
        r = run(["bash", "-c", 'mkdir "$1" && kill -9 $$', "bash", p])
        self.assertEqual(r.returncode, -9, r)
        self.assertEqual(locks_json(self.m), [])
        self.assertTrue(os.path.isdir(p), "a plain directory outlives its maker")
        self.assertEqual(os.stat(p).st_mode & 0o7777, 0o1777)
        os.utime(p, ns=(1, 2000000000123456789))
        self.assertEqual(os.stat(p).st_mtime_ns, 2000000000123456789)
        os.rmdir(p)
        self.assertTrue(gone(p))


# ------------------------------------------------------------- proper-lockfile

HOLD_S = 60  # the issue: a live holder keeps its lock for a minute


def ensure_node():
    """node and npm, installed from apt when missing."""
    if shutil.which("node") and shutil.which("npm"):
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                    "nodejs", "npm"], check=True, env=env)


class TestProperLockfile(DirlockCase):

    @classmethod
    def setUpClass(cls):
        ensure_node()
        cls.npm_dir = tempfile.mkdtemp(prefix="lockfs-npm-")
        r = subprocess.run(["npm", "install", "--prefix", cls.npm_dir, "--no-audit",
                            "--no-fund", "--no-package-lock", "--no-save",
                            "proper-lockfile@4"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=300)
        if r.returncode != 0:
            shutil.rmtree(cls.npm_dir, ignore_errors=True)
            raise AssertionError(f"npm install proper-lockfile@4 failed: {r.stderr}")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.npm_dir, ignore_errors=True)

    def node(self, mode, path):
        env = dict(os.environ, NODE_PATH=os.path.join(self.npm_dir, "node_modules"))
        return spawn(self, ["node", CLIENT, mode, path], env=env)

    def try_lock(self, path):
        env = dict(os.environ, NODE_PATH=os.path.join(self.npm_dir, "node_modules"))
        r = subprocess.run(["node", CLIENT, "try", path], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=T, env=env)
        return r.stdout.strip()

    def holder(self, path):
        proc, out = self.node("hold", path)
        line = out.expect("LOCKED", timeout=T)
        self.assertEqual(line, f"LOCKED {proc.pid}")
        return proc, out

    def test_live_holder_keeps_its_lock(self):
        """A holder keeps lock(file, {stale: 10000, update: 2000}) for 60 s:
        its mtime updates read back exactly (onCompromised never fires), and
        every contender's lock() fails with ELOCKED meanwhile."""
        f = self.p("state.json")
        d = f + ".lock"
        proc, out = self.holder(f)
        self.assertTrue(os.path.isdir(d))
        self.assertEqual(self.status_of("state.json.lock")["lockfs"]["pid"], proc.pid)
        first_mtime = os.stat(d).st_mtime_ns
        end = time.monotonic() + HOLD_S
        checks = 0
        while True:
            left = end - time.monotonic()
            if left <= 0:
                break
            # anything the holder says before its release is a compromise
            ready = self.wait_output(out, min(left, 10))
            self.assertIsNone(ready, f"the holder spoke while holding: {ready}")
            self.assertIsNone(proc.poll(), "the holder is alive")
            self.assertEqual(self.try_lock(f), "ERR ELOCKED")
            checks += 1
        self.assertGreaterEqual(checks, 5)
        self.assertNotEqual(os.stat(d).st_mtime_ns, first_mtime, "the holder renewed it")
        proc.stdin.close()
        self.assertEqual(out.expect("RELEASED", timeout=T), "RELEASED")
        self.assertEqual(proc.wait(timeout=T), 0)
        self.assertTrue(gone(d))
        self.assertEqual(self.try_lock(f).split()[0], "LOCKED")

    def wait_output(self, out, timeout):
        """A line from out within timeout s, or None (the wait is the event:
        a compromised holder reports at once)."""
        try:
            line = out.q.get(timeout=timeout)
        except queue.Empty:
            return None
        return "<its output closed>" if line is None else line

    def test_killed_holder_releases_at_once(self):
        """A SIGKILLed holder's file.lock is gone at once; a contender's
        lock() then succeeds without waiting for staleness."""
        f = self.p("job")
        d = f + ".lock"
        proc, out = self.holder(f)
        self.assertEqual(self.try_lock(f), "ERR ELOCKED")
        proc.kill()
        proc.wait(timeout=T)
        killed = time.monotonic()
        wait_until(lambda: gone(d), T, f"{d} released on its holder's death")
        line = self.try_lock(f)
        self.assertEqual(line.split()[0], "LOCKED", line)
        self.assertLess(time.monotonic() - killed, 10, "taken before it could go stale")


if __name__ == "__main__":
    import unittest
    unittest.main(verbosity=2)
