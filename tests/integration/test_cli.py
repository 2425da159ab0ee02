# SPDX-License-Identifier: MIT
"""The daemon's command line (SPEC R8.1): --help, --version, bad options and
values, missing mount point, mounting in the foreground and background,
unmounting by fusermount3 and by signals, and the effect of the mount
options ttl, max_locks, max_content and allow_other."""
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import (LOCKFS_BIN, WRAPPER, Holder, LockfsTestCase, Mount, as_user,  # noqa: E402
                     errno, errno_of, wait_until)

# A python the unprivileged test user can execute (sys.executable may live
# under /root, which is not searchable for other users).
USER_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
RUN_TIMEOUT = 60 if WRAPPER else 10

STAT_AS_USER = r"""
import os, sys
try:
    os.stat(sys.argv[1])
    print(0)
except OSError as e:
    print(e.errno)
"""


def project_version():
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "meson.build")) as f:
        m = re.search(r"version\s*:\s*'([^']+)'", f.read())
    return m.group(1) if m else "0.1.0"


def mount_entry(mnt):
    """The /proc/self/mounts fields for mnt, or None."""
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if fields[1] == mnt:
                return fields
    return None


class TempMountPoint:
    """A fresh empty directory to mount on; removed (and force-unmounted if
    something went wrong) on cleanup."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="lockfs-it-")
        os.chmod(self.dir, 0o755)
        self.mnt = os.path.join(self.dir, "mnt")
        os.mkdir(self.mnt)

    def cleanup(self):
        """Unmount, and remove what the daemon left with its default state
        paths: the journal directory, the fence file, the immutable flag."""
        if mount_entry(self.mnt):
            subprocess.run(["fusermount3", "-uz", self.mnt], capture_output=True)
        mount_id = harness.mount_id(self.mnt)
        shutil.rmtree(os.path.join("/run/lockfs", mount_id), ignore_errors=True)
        try:
            os.unlink(os.path.join("/var/lib/lockfs", mount_id + ".fence"))
        except FileNotFoundError:
            pass
        subprocess.run(["chattr", "-i", self.mnt], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def run_daemon(args, timeout=RUN_TIMEOUT):
    """Run the daemon in the foreground with args; it is expected to exit by
    itself. Returns (rc, stdout, stderr). A daemon
    that instead keeps running is unmounted and killed, and rc is None."""
    proc = subprocess.Popen(WRAPPER + [LOCKFS_BIN] + args, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        for a in args:
            if os.path.isabs(a) and mount_entry(a):
                subprocess.run(["fusermount3", "-uz", a], capture_output=True)
        proc.kill()
        out, err = proc.communicate()
        return None, out, err


class HelpVersion(unittest.TestCase):
    def test_help_exits_0_and_lists_options(self):
        rc, out, err = run_daemon(["--help"])
        self.assertEqual(rc, 0, f"--help exit status; stderr: {err}")
        for opt in ("ttl", "holder_ttl", "max_locks", "max_content", "allow_other", "raw=",
                    "dirlocks="):
            self.assertIn(opt, out, f"--help output (stdout) does not mention {opt}:\n{out}")
        self.assertRegex(out.lower(), r"usage", "--help prints a usage line")

    def test_version(self):
        rc, out, err = run_daemon(["--version"])
        self.assertEqual(rc, 0, f"--version exit status; stderr: {err}")
        self.assertIn(f"lockfs {project_version()}", out)


class BadCommandLines(unittest.TestCase):
    """Unknown options, bad values and a missing mount point fail with a
    usage message on stderr, exit status 2, and leave no mount behind."""

    BAD_OPTIONS = [
        ["-o", "bogus=1"],
        ["-o", "bogus"],
        ["-o", "ttl=abc"],
        ["-o", "ttl=-1"],
        ["-o", "raw=run/*.pid"],
        ["-o", "raw=*.pid:"],
        ["-o", "ttl=5s"],
        ["-o", "ttl="],
        ["-o", "max_locks=abc"],
        ["-o", "max_locks=-5"],
        ["-o", "max_content=abc"],
        ["-o", "max_content=-1"],
        ["-o", "max_content=0"],        # no room even for a pid: refused
        ["-o", "ttl=99999999999999999999"],
        ["-o", "max_depth=x"],
        ["-o", "ttl=10,bogus=1"],
        ["--bogus-option"],
    ]

    def test_bad_options_fail_with_usage_and_mount_nothing(self):
        for opts in self.BAD_OPTIONS:
            with self.subTest(opts=opts):
                mp = TempMountPoint()
                self.addCleanup(mp.cleanup)
                rc, out, err = run_daemon(["-f"] + opts + [mp.mnt])
                self.assertIsNotNone(rc, f"{opts}: daemon accepted the option and kept running")
                self.assertEqual(rc, 2, f"{opts}: exit status (stderr: {err!r})")
                self.assertIn("usage", err.lower(), f"{opts}: no usage message on stderr: {err!r}")
                self.assertIsNone(mount_entry(mp.mnt), f"{opts}: mount left behind")
                self.assertEqual(os.listdir(mp.mnt), [], f"{opts}: mount point changed")

    def test_bad_option_in_background_mode(self):
        mp = TempMountPoint()
        self.addCleanup(mp.cleanup)
        rc, out, err = run_daemon(["-o", "bogus=1", mp.mnt])
        self.assertEqual(rc, 2, f"stderr: {err!r}")
        self.assertIn("usage", err.lower())
        self.assertIsNone(mount_entry(mp.mnt))

    def test_missing_mountpoint(self):
        for args in (["-f"], [], ["-o", "ttl=5"]):
            with self.subTest(args=args):
                rc, out, err = run_daemon(args)
                self.assertEqual(rc, 2, f"{args}: exit status (stderr: {err!r})")
                self.assertIn("usage", err.lower(), f"{args}: no usage message: {err!r}")

    def test_nonexistent_mountpoint(self):
        mp = TempMountPoint()
        self.addCleanup(mp.cleanup)
        missing = os.path.join(mp.dir, "does-not-exist")
        rc, out, err = run_daemon(["-f", missing])
        self.assertIsNotNone(rc, "daemon kept running on a missing mount point")
        self.assertNotEqual(rc, 0)
        self.assertTrue(err.strip(), "no error message on stderr")
        self.assertFalse(os.path.exists(missing))


class Lifecycle(unittest.TestCase):
    def test_mount_type_and_fusermount_unmount(self):
        m = Mount().start()
        self.addCleanup(m.stop)
        fields = mount_entry(m.mnt)
        self.assertIsNotNone(fields, "mount not in /proc/self/mounts")
        self.assertEqual(fields[2], "fuse.lockfs")
        self.assertTrue(os.path.isdir(os.path.join(m.mnt, ".lockfs")))
        r = subprocess.run(["fusermount3", "-u", m.mnt], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(m.proc.wait(timeout=20), 0, m.log())
        self.assertIsNone(mount_entry(m.mnt))

    def test_serving_log_line_names_mountpoint(self):
        m = Mount().start()
        self.addCleanup(m.stop)
        self.assertTrue(any("serving" in line and m.mnt in line for line in m.log_lines),
                        m.log())

    def _signal_unmounts(self, sig):
        m = Mount().start()
        self.addCleanup(m.stop)
        # A held lock must not keep the daemon from exiting.
        h = Holder(m.path("held"))
        self.addCleanup(h.kill)
        self.assertTrue(h.ok)
        m.proc.send_signal(sig)
        rc = m.proc.wait(timeout=20)
        self.assertIsNone(mount_entry(m.mnt), f"still mounted after {sig!r}")
        self.assertEqual(rc, 0, f"exit status after {sig!r}; log:\n{m.log()}")

    def test_sigterm_unmounts_and_exits_0(self):
        self._signal_unmounts(signal.SIGTERM)

    def test_sigint_unmounts_and_exits_0(self):
        self._signal_unmounts(signal.SIGINT)

    def test_background_mode_mounts_and_returns(self):
        mp = TempMountPoint()
        self.addCleanup(mp.cleanup)
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(WRAPPER + [LOCKFS_BIN, mp.mnt], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=err)
            try:
                rc = proc.wait(timeout=RUN_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                self.fail("lockfs without -f did not return")
            err.seek(0)
            msg = err.read().decode(errors="replace")
        self.assertEqual(rc, 0, msg)
        fields = mount_entry(mp.mnt)
        self.assertIsNotNone(fields, "not mounted when the starting command returned")
        self.assertEqual(fields[2], "fuse.lockfs")
        daemons = self._daemon_pids(mp.mnt)
        self.assertEqual(len(daemons), 1, f"background daemon processes: {daemons}")
        pidfd = os.pidfd_open(daemons[0])
        self.addCleanup(os.close, pidfd)
        # The mount works: take a lock from a child, read its status.
        h = Holder(os.path.join(mp.mnt, "bg.lock"))
        self.addCleanup(h.kill)
        self.assertTrue(h.ok)
        with open(os.path.join(mp.mnt, "bg.lock")) as f:
            self.assertEqual(json.load(f)["lockfs"]["pid"], h.pid)
        h.release()
        r = subprocess.run(["fusermount3", "-u", mp.mnt], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIsNone(mount_entry(mp.mnt))
        ready, _, _ = select.select([pidfd], [], [], 20)
        self.assertTrue(ready, "background daemon did not exit after fusermount3 -u")

    @staticmethod
    def _daemon_pids(mnt):
        """Pids of processes whose command line names our (unique) mount point."""
        pids = []
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == os.getpid():
                continue
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if mnt.encode() in argv:
                pids.append(int(name))
        return pids

    def test_debug_and_max_depth_options_accepted(self):
        m = Mount("debug,max_depth=4").start()
        self.addCleanup(m.stop)
        self.assertIsNotNone(mount_entry(m.mnt))
        self.assertEqual(m.stop(), 0)


def status(path):
    with open(path) as f:
        return json.load(f)


class DefaultOptions(LockfsTestCase):
    def test_default_max_content_is_65536(self):
        fd = os.open(self.p("big"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self.addCleanup(os.close, fd)
        self.assertEqual(os.write(fd, b"a" * 65536), 65536)
        self.assertEqual(errno_of(os.write, fd, b"b"), errno.EFBIG)
        self.assertEqual(len(status(self.p("big"))["content"]), 65536)

    def test_default_ttl_is_3600_for_detached_none_for_live_holders(self):
        # SPEC R5.3: the mount's TTL is for detached locks (content "0")
        d = Holder(self.p("d"), content="0\n")
        self.addCleanup(d.kill)
        lk = status(self.p("d"))["lockfs"]
        self.assertEqual((lk["how"], lk["ttl_s"]), ("detached", 3600))
        self.assertIsNotNone(lk["expires_at"])
        # a live holder's lock has none (holder_ttl is 0 by default)
        h = Holder(self.p("t"))
        self.addCleanup(h.kill)
        lk = status(self.p("t"))["lockfs"]
        self.assertEqual(lk["ttl_s"], 0)
        self.assertIsNone(lk["expires_at"])


class MaxContent(LockfsTestCase):
    MOUNT_OPTS = "max_content=10"

    def test_eleven_bytes_efbig(self):
        fd = os.open(self.p("a"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self.addCleanup(os.close, fd)
        self.assertEqual(errno_of(os.write, fd, b"abcdefghijk"), errno.EFBIG)

    def test_ten_bytes_fit_and_eleventh_fails_keeping_content(self):
        fd = os.open(self.p("b"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self.addCleanup(os.close, fd)
        self.assertEqual(os.write(fd, b"abcdefghij"), 10)
        self.assertEqual(status(self.p("b"))["content"], "abcdefghij")
        self.assertEqual(errno_of(os.write, fd, b"k"), errno.EFBIG)
        self.assertEqual(status(self.p("b"))["content"], "abcdefghij")


class MaxLocks(LockfsTestCase):
    MOUNT_OPTS = "max_locks=2"

    def test_third_create_enospc(self):
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        fds = []
        for name in ("one", "two"):
            fds.append(os.open(self.p(name), flags, 0o644))
        for fd in fds:
            os.close(fd)
        self.assertEqual(errno_of(os.open, self.p("three"), flags, 0o644), errno.ENOSPC)
        self.assertEqual(errno_of(os.open, self.p("three"), os.O_WRONLY | os.O_CREAT, 0o644),
                         errno.ENOSPC)
        self.assertFalse(os.path.exists(self.p("three")))
        # A release frees a slot: the limit counts live locks.
        os.unlink(self.p("one"))
        os.close(os.open(self.p("three"), flags, 0o644))
        self.assertTrue(os.path.exists(self.p("three")))


class Ttl(LockfsTestCase):
    MOUNT_OPTS = "ttl=1"

    def test_ttl_option_sets_status_and_expires(self):
        t0 = time.monotonic()
        h = Holder(self.p("short"), content="0\n")      # detached: the mount's TTL
        self.addCleanup(h.kill)
        self.assertTrue(h.ok)
        lk = status(self.p("short"))["lockfs"]
        self.assertEqual(lk["ttl_s"], 1)
        self.assertIsNotNone(lk["expires_at"])
        # No event for expiry to await: poll (its creator still alive).
        wait_until(lambda: not os.path.exists(self.p("short")),
                   what="lock to expire after ttl=1")
        self.assertGreaterEqual(time.monotonic() - t0, 0.9, "expired before its ttl")
        self.assertIsNone(h.proc.poll(), "its creator should still be alive")


class TtlZero(LockfsTestCase):
    MOUNT_OPTS = "ttl=0"

    def test_ttl_zero_means_none(self):
        h = Holder(self.p("forever"), content="0\n")
        self.addCleanup(h.kill)
        lk = status(self.p("forever"))["lockfs"]
        self.assertEqual(lk["ttl_s"], 0)
        self.assertIsNone(lk["expires_at"])


class CombinedOptions(LockfsTestCase):
    MOUNT_OPTS = "ttl=120,holder_ttl=60,max_locks=5,max_content=100"

    def test_comma_separated_options_all_apply(self):
        h = Holder(self.p("x"))
        self.addCleanup(h.kill)
        self.assertEqual(status(self.p("x"))["lockfs"]["ttl_s"], 60)      # holder_ttl
        d = Holder(self.p("d"), content="0")
        self.addCleanup(d.kill)
        self.assertEqual(status(self.p("d"))["lockfs"]["ttl_s"], 120)     # ttl: detached
        fd = os.open(self.p("y"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self.addCleanup(os.close, fd)
        self.assertEqual(errno_of(os.write, fd, b"z" * 101), errno.EFBIG)


def user_stat_errno(path):
    r = subprocess.run(as_user([USER_PYTHON, "-c", STAT_AS_USER, path]),
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise AssertionError(f"user helper failed: {r.stderr}")
    return int(r.stdout.strip())


class AllowOther(LockfsTestCase):
    MOUNT_OPTS = "allow_other"

    def test_other_user_can_stat_root(self):
        self.assertEqual(user_stat_errno(self.m.mnt), 0)
        self.assertEqual(user_stat_errno(self.p(".lockfs")), 0)


class NoAllowOther(LockfsTestCase):
    def test_other_user_gets_eacces(self):
        self.assertEqual(user_stat_errno(self.m.mnt), errno.EACCES)


FSTAB_SCRIPT = r"""
set -eu
# private mount namespace: our build stands in for an installed lockfs
mount --make-rprivate /
mount --bind "$BINDIR" /usr/local/sbin
mount -T "$FSTAB" "$MNT"
trap 'umount "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"' EXIT
grep " $MNT " /proc/self/mounts
sh -c 'echo $$ > "$MNT/boot.lock"; cat "$MNT/boot.lock"'
"""


class FstabMount(unittest.TestCase):
    """R8.1: an /etc/fstab line of type fuse.lockfs mounts (mount(8) runs
    "lockfs SOURCE MOUNTPOINT -o OPTIONS" and passes fstab-only words)."""

    def test_fstab_line_of_type_fuse_lockfs(self):
        tmp = TempMountPoint()
        self.addCleanup(tmp.cleanup)
        work = tempfile.mkdtemp(prefix="lockfs-fstab-")
        self.addCleanup(shutil.rmtree, work, ignore_errors=True)
        bindir = os.path.join(work, "sbin")
        os.mkdir(bindir)
        os.symlink(os.path.abspath(LOCKFS_BIN), os.path.join(bindir, "lockfs"))
        fstab = os.path.join(work, "fstab")
        with open(fstab, "w") as f:
            f.write(f"lockfs {tmp.mnt} fuse.lockfs ttl=7,holder_ttl=42,max_locks=9,rw,nosuid,nodev,"
                    "noatime,_netdev,nofail,x-systemd.automount 0 0\n")
        env = dict(os.environ, BINDIR=bindir, FSTAB=fstab, MNT=tmp.mnt)
        r = subprocess.run(["unshare", "-m", "sh", "-c", FSTAB_SCRIPT], env=env,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        first, rest = r.stdout.split("\n", 1)
        self.assertEqual(first.split()[2], "fuse.lockfs")
        doc = json.loads(rest)
        self.assertEqual(doc["lockfs"]["ttl_s"], 42)
        self.assertEqual(doc["lockfs"]["path"], "/boot.lock")
        self.assertIsNone(mount_entry(tmp.mnt), "the namespace's mount leaked out")

if __name__ == "__main__":
    harness.main()
