#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Installing lockfs (issue 5, SPEC R8.1): `meson install` lays out the
daemon, the mount(8) helper, the systemd unit and the man page; mount -t
fuse.lockfs / -t lockfs and /etc/fstab lines (mount -a -T) mount through
the installed helper; the unit's commands restart a killed daemon.

Everything that would touch the system runs in a private mount namespace
(unshare -m) where a tmpfs over /usr/sbin holds only the installed helper
and the installed tree is bound over /usr/local: nothing is installed on
the machine itself. Needs LOCKFS_BUILD_DIR (the meson build directory)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

BUILD_DIR = os.environ.get("LOCKFS_BUILD_DIR", "build")
T = 60


def mounted(path):
    with open("/proc/self/mounts") as f:
        return f" {path} " in f.read()


def install(destdir):
    r = subprocess.run(["meson", "install", "-C", BUILD_DIR, "--no-rebuild", "--quiet",
                        "--destdir", destdir], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError(f"meson install failed: {r.stdout}{r.stderr}")


# Runs in a private mount namespace: the installed helper is the only
# thing in /usr/sbin, the installed /usr/local tree stands in for the real
# one. $SCRIPT is the test's own part; the mounts it makes die with it.
NAMESPACE = r"""
set -eu
mount --make-rprivate /
mount -t tmpfs tmpfs /usr/sbin
cp -a "$DEST/sbin/mount.lockfs" "$DEST/sbin/mount.fuse.lockfs" /usr/sbin/
mount --bind "$DEST/usr/local" /usr/local
cleanup() {
        for m in $MNTS; do
                umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
        done
}
trap cleanup EXIT
eval "$SCRIPT"
"""


class Installed(unittest.TestCase):
    """One `meson install --destdir` shared by the tests."""

    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="lockfs-install-")
        cls.dest = os.path.join(cls.work, "dest")
        install(cls.dest)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)

    def setUp(self):
        self.mnts = []

    def mount_point(self):
        """A fresh mount point; its daemon's default state is removed at the
        end (the helper passes no state options)."""
        d = tempfile.mkdtemp(prefix="lockfs-it-", dir=self.work)
        os.chmod(d, 0o755)
        mnt = os.path.join(d, "mnt")
        os.mkdir(mnt)
        self.mnts.append(mnt)
        self.addCleanup(self.forget, mnt)
        return mnt

    def forget(self, mnt):
        subprocess.run(["umount", "-l", mnt], capture_output=True)
        mid = harness.mount_id(mnt)
        shutil.rmtree(os.path.join("/run/lockfs", mid), ignore_errors=True)
        try:
            os.unlink(os.path.join("/var/lib/lockfs", mid + ".fence"))
        except FileNotFoundError:
            pass
        subprocess.run(["chattr", "-i", mnt], capture_output=True)

    def in_namespace(self, script, **env):
        e = dict(os.environ, DEST=self.dest, SCRIPT=script, MNTS=" ".join(self.mnts), **env)
        r = subprocess.run(["unshare", "-m", "sh", "-c", NAMESPACE], env=e,
                           capture_output=True, text=True, timeout=T)
        self.assertEqual(r.returncode, 0, f"stdout: {r.stdout}\nstderr: {r.stderr}")
        for m in self.mnts:
            self.assertFalse(mounted(m), "a mount leaked out of the namespace")
        return r.stdout


class TestLayout(Installed):

    def path(self, *p):
        return os.path.join(self.dest, *p)

    def test_files_in_place(self):
        lockfs = self.path("usr/local/sbin/lockfs")
        self.assertTrue(os.access(lockfs, os.X_OK))
        helper = self.path("sbin/mount.lockfs")
        self.assertTrue(os.access(helper, os.X_OK))
        self.assertEqual(os.readlink(self.path("sbin/mount.fuse.lockfs")), "mount.lockfs")
        with open(helper) as f:
            self.assertIn("exec /usr/local/sbin/lockfs", f.read())
        with open(self.path("usr/local/lib/systemd/system/lockfs@.service")) as f:
            unit = f.read()
        self.assertIn("ExecStart=/usr/local/sbin/lockfs -f -o ${LOCKFS_OPTS} %f", unit)
        self.assertIn("Restart=on-failure", unit)
        self.assertTrue(os.path.exists(self.path("usr/local/share/man/man8/lockfs.8")))
        self.assertTrue(os.path.exists(self.path("usr/local/share/man/man1/lockctl.1")))
        self.assertTrue(os.path.exists(self.path("usr/local/include/lockfs/lockfs_ioctl.h")))
        r = subprocess.run([self.path("usr/local/bin/lockctl"), "--version"],
                           capture_output=True, text=True)
        self.assertEqual((r.returncode, r.stdout.split()[0]), (0, "lockctl"))
        r = subprocess.run([lockfs, "--version"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith("lockfs "))

    def test_man_pages_render_without_warnings(self):
        for page in ("man8/lockfs.8", "man1/lockctl.1"):
            r = subprocess.run(["groff", "-man", "-ww", "-z",
                                self.path("usr/local/share/man", page)],
                               capture_output=True, text=True)
            self.assertEqual((r.returncode, r.stderr), (0, ""), page)

    def test_unit_verifies(self):
        unitdir = os.path.join(self.work, "units")
        os.makedirs(unitdir, exist_ok=True)
        src = self.path("usr/local/lib/systemd/system/lockfs@.service")
        with open(src) as f:
            text = f.read().replace("/usr/local/sbin/lockfs", os.path.abspath(harness.LOCKFS_BIN))
        inst = os.path.join(unitdir, "lockfs@run-locks.service")
        with open(inst, "w") as f:
            f.write(text)
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", inst],
                           capture_output=True, text=True)
        self.assertEqual((r.returncode, r.stderr.strip()), (0, ""))


class TestMountHelper(Installed):

    def test_mount_t_fuse_lockfs_and_t_lockfs(self):
        a, b = self.mount_point(), self.mount_point()
        out = self.in_namespace(r'''
mount -t fuse.lockfs none "$A" -o ttl=600,allow_other
mount -t lockfs locks "$B" -o ttl=7,_netdev,nofail,user
grep -E " ($A|$B) " /proc/self/mounts | cut -d" " -f2,3,4
sh -c 'echo 0 > "$A/x.lock"; jq -c ".lockfs | [.ttl_s, .how]" "$A/x.lock"'
sh -c 'echo 0 > "$B/y.lock"; jq -c ".lockfs.ttl_s" "$B/y.lock"'
''', A=a, B=b)
        lines = out.splitlines()
        self.assertEqual(len(lines), 4, out)
        mounts = {ln.split()[0]: ln.split()[1:] for ln in lines[:2]}
        self.assertEqual(mounts[a][0], "fuse.lockfs")
        self.assertIn("allow_other", mounts[a][1])
        self.assertEqual(mounts[b][0], "fuse.lockfs")
        # ttl= is the TTL of detached locks (content 0), SPEC R5.3
        self.assertEqual(json.loads(lines[2]), [600, "detached"])
        self.assertEqual(json.loads(lines[3]), 7)

    def test_fstab_mount_a(self):
        a, b = self.mount_point(), self.mount_point()
        fstab = os.path.join(self.work, "fstab")
        with open(fstab, "w") as f:
            f.write(f"lockfs {a} fuse.lockfs ttl=42,allow_other,_netdev,nofail,user,"
                    "x-systemd.automount 0 0\n")
            f.write(f"locks {b} lockfs ttl=43,noauto 0 0\n")
        out = self.in_namespace(r'''
mount -a -T "$FSTAB"
grep -c " $B " /proc/self/mounts || true
mount -T "$FSTAB" "$B"
sh -c 'echo 0 > "$A/a.lock"; jq .lockfs.ttl_s "$A/a.lock"'
sh -c 'echo 0 > "$B/b.lock"; jq .lockfs.ttl_s "$B/b.lock"'
''', FSTAB=fstab, A=a, B=b)
        self.assertEqual(out.split(), ["0", "42", "43"], "noauto is skipped by mount -a")

    def test_helper_usage_and_fake(self):
        helper = os.path.join(self.dest, "sbin/mount.lockfs")
        r = subprocess.run([helper], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("usage", r.stderr)
        mnt = self.mount_point()
        r = subprocess.run([helper, "none", mnt, "-f", "-o", "ttl=1"], capture_output=True)
        self.assertEqual(r.returncode, 0)
        self.assertFalse(mounted(mnt), "-f mounts nothing")


class TestUnitCommands(Installed):
    """No systemd runs here (PID 1 is not systemd), so the unit's own
    command lines are run as systemd would: start, SIGKILL (a failure),
    ExecStopPost, start again (Restart=on-failure)."""

    def unit_commands(self, mnt):
        with open(os.path.join(self.dest, "usr/local/lib/systemd/system/lockfs@.service")) as f:
            lines = f.read().splitlines()
        cmds = {}
        for ln in lines:
            if ln.startswith("Exec"):
                key, cmd = ln.split("=", 1)
                cmd = cmd.lstrip("-").replace("%f", mnt).replace("${LOCKFS_OPTS}", "allow_other")
                cmd = cmd.replace("/usr/local/sbin/lockfs", os.path.abspath(harness.LOCKFS_BIN))
                cmds[key] = cmd.split()
        return cmds

    def test_restart_after_a_crash_keeps_locks(self):
        mnt = os.path.join(self.mount_point(), "sub")   # ExecStartPre makes it
        self.addCleanup(self.forget, mnt)               # runs after m.stop()
        cmds = self.unit_commands(mnt)
        subprocess.run(cmds["ExecStartPre"], check=True)
        m = harness.Mount()            # only for its daemon handling
        self.addCleanup(m.stop)
        m.mnt = mnt
        m.command = lambda: cmds["ExecStart"]
        m.start()
        h = harness.Holder(os.path.join(mnt, "svc.lock"))
        self.addCleanup(h.kill)
        m.crash()
        subprocess.run(cmds["ExecStopPost"], capture_output=True)
        self.assertFalse(mounted(mnt), "ExecStopPost detaches the dead mount")
        self.assertNotEqual(harness.errno_of(os.open, os.path.join(mnt, "bare.lock"),
                                             os.O_WRONLY | os.O_CREAT), 0,
                            "the bare mount point must be unwritable")
        m.start()
        with open(os.path.join(mnt, "svc.lock")) as f:
            self.assertEqual(json.loads(f.read())["lockfs"]["pid"], h.pid)
        h.release()


if __name__ == "__main__":
    harness.main()
