#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Issue 11: one user must never hang, corrupt, fill or fool lockfs for the
others. The adversarial review's reproductions (review of 05de162), run as
two unprivileged users, A (lockfs-test) the attacker and B (lockfs-test2)
the victim, on an allow_other mount:

- finding 1: a claim of a process that stalls its own /proc read (claim_stall)
  hangs nobody; B's creates keep completing;
- finding 3: a dying shell parked as a flock waiter on its own lock gets no
  hand-off; the daemon survives (the suite runs this under ASan too) and B
  can take the lock;
- finding 5 / point 7: a claim never shows another uid; `su` to another user
  does not inherit the holder's rights; a holder descriptor passed to another
  user is a contender's;
- finding 7 / point 5: with the state directory full, create, mkdir and
  write fail with EIO and nothing of them is kept, also across a restart."""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import LockfsTestCase, Mount, errno, errno_of, wait_until  # noqa: E402
from lockfs_it import EXCL, agent, metrics, spawn  # noqa: E402

A, B = harness.TEST_USER, harness.TEST_USER2
CLAIM_STALL = os.environ.get("LOCKFS_CLAIM_STALL", "build/tests/claim_stall")
# A create that takes longer than this is a hang, not a slow machine: the
# deadlocks these tests guard against last for ever, so the deadline is
# generous (the daemon under valgrind is some ten times slower).
HANG_S = 60.0 if harness.WRAPPER else 10.0


def take(path):
    """Take path by an exclusive create from this process."""
    os.close(os.open(path, EXCL, 0o644))


def status_doc(path):
    with open(path) as f:
        return json.load(f)


def status(path):
    return status_doc(path)["lockfs"]


class HardeningCase(LockfsTestCase):
    MOUNT_OPTS = "allow_other"

    def setUp(self):
        self.uid_a = harness.ensure_user(A)[0]
        self.uid_b = harness.ensure_user(B)[0]
        super().setUp()


class TestClaimStall(HardeningCase):
    """Finding 1: nothing another process can stall runs under the table
    mutex. On 05de162 the first try deadlocked the daemon for everyone."""

    def test_claim_of_a_stalling_process_hangs_nobody(self):
        os.chmod(self.m.mnt, 0o1777)
        proc, out = spawn(self, harness.as_user([CLAIM_STALL, self.m.mnt, "20"], A),
                          stdin=subprocess.DEVNULL)
        b = agent(self, user=B)
        victim = self.p("victim.lock")
        creates = 0
        while proc.poll() is None:
            self.assertEqual(b.err("create", timeout=HANG_S, path=victim), 0)
            self.assertEqual(b.err("unlink", timeout=HANG_S, path=victim), 0)
            creates += 1
        lines = []
        while True:
            try:
                lines.append(out.get(HANG_S, "claim_stall output"))
            except AssertionError:
                break
        self.assertEqual(proc.returncode, 0, "\n".join(lines))
        self.assertIn("no stall in 20 tries", lines)
        self.assertGreater(creates, 0)
        # and the mount still answers everyone
        self.assertEqual(b.err("create", timeout=HANG_S, path=victim), 0)
        self.assertIn("victim.lock", os.listdir(self.m.mnt))


class TestDyingWaiter(HardeningCase):
    """Finding 3 (poc/uaf.sh): the shell S holds n.lock and, through a child
    flock(1), its flock; a background sleep keeps both descriptors open after
    S dies; a second flock(1) of S's other descriptor waits. S is killed: the
    lock must not be handed to the dead S (05de162: use-after-free)."""

    SCRIPT = r"""
cd "$1"
exec 8>n.lock
flock 8
sleep 1000 &
echo "sleeper $!"
exec 9>n.lock
flock 9 2>"$2" &
echo "waiter $!"
exec sleep 1000
"""

    def test_dead_shell_gets_no_handoff(self):
        os.chmod(self.m.mnt, 0o1777)
        d = tempfile.mkdtemp()
        self.addCleanup(os.rmdir, d)
        script = os.path.join(d, "s.sh")
        with open(script, "w") as f:
            f.write(self.SCRIPT)
        self.addCleanup(os.unlink, script)
        err = os.path.join(d, "waiter.err")
        self.addCleanup(os.unlink, err)
        os.chmod(d, 0o777)
        os.chmod(script, 0o755)
        shell, out = spawn(self, harness.as_user(["bash", script, self.m.mnt, err], A),
                           stdin=subprocess.DEVNULL)
        sleeper = int(out.expect("sleeper").split()[1])
        waiter = int(out.expect("waiter").split()[1])
        self.addCleanup(self._kill, sleeper)
        self.addCleanup(self._kill, waiter)
        wait_until(lambda: metrics(self.m)["lockfs_waiters"] == 1, 20, "the flock waiter")
        self.assertEqual(status(self.p("n.lock"))["pid"], shell.pid)
        shell.kill()          # S dies; its descriptors live on in the sleeper
        shell.wait()
        b = agent(self, user=B)
        wait_until(lambda: b.err("create", path=self.p("n.lock")) == 0, 20,
                   "the dead shell's lock to go")
        doc = status(self.p("n.lock"))
        self.assertEqual((doc["pid"], doc["user"]), (b.pid, B))
        self.assertEqual(metrics(self.m)["lockfs_waiters"], 0)
        self.assertTrue(self.m.is_mounted())
        # the waiter was refused with a readable error (not errno 512)
        wait_until(lambda: not os.path.exists(f"/proc/{waiter}"), 20, "the waiter to exit")
        with open(err) as f:
            self.assertIn("Resource deadlock avoided", f.read())

    @staticmethod
    def _kill(pid):
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


class TestIdentityAcrossUids(HardeningCase):

    def test_su_to_another_user_cannot_release_roots_lock(self):
        """Finding 8: a descendant of the holder that runs as another uid
        is not the holder (05de162: `su other -c rm` released it)."""
        os.chmod(self.m.mnt, 0o1777)
        p = self.p("maint.lock")
        script = (f'echo $$ > {p}; echo shell=$$; su -s /bin/sh {B} -c "rm {p}"; echo rm=$?; '
                  f'su -s /bin/sh {B} -c "echo \\$\\$ > {p}"; echo create=$?; '
                  f'su -s /bin/sh {B} -c "cat {p}"')
        r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
        self.assertIn("rm=1", r.stdout, r.stderr)
        self.assertIn("Device or resource busy", r.stderr)     # SPEC R3.4: EBUSY
        self.assertIn("create=1", r.stdout, r.stderr)
        shell = int(r.stdout.split("shell=")[1].split()[0])
        doc = json.loads(r.stdout.split("create=1", 1)[1])
        self.assertEqual((doc["lockfs"]["pid"], doc["lockfs"]["uid"]), (shell, 0))
        wait_until(lambda: not os.path.exists(p), 20, "release at the root shell's exit")

    def test_claim_of_a_root_ancestor_is_ignored(self):
        """Finding 5: a user's claim of a root-owned ancestor (su) does not
        make the lock root's."""
        os.chmod(self.m.mnt, 0o1777)
        p = self.p("c.lock")
        inner = f'exec 3>{p}; echo "{{\\"pid\\": $PPID}}" >&3; echo $PPID >&2; cat {p}'
        r = subprocess.run(["su", "-s", "/bin/bash", A, "-c", inner], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        lf = doc["lockfs"]
        self.assertEqual((lf["user"], lf["uid"]), (A, self.uid_a))
        self.assertNotEqual(lf["how"], "claim")
        su_pid = int(r.stderr.split()[-1])
        self.assertNotEqual(lf["pid"], su_pid)        # the content named su: ignored

    def test_passed_holder_descriptor_is_a_contender(self):
        """Finding 8 (poc/passfd.py): A passes its holder descriptor to B
        over a unix socket; B writing its pid through it claims nothing."""
        os.chmod(self.m.mnt, 0o1777)
        p = self.p("p.lock")
        a = agent(self, user=A)
        fd = a.ok("open", path=p, flags=["O_WRONLY", "O_CREAT", "O_EXCL"])
        a.ok("fdwrite", fd=fd, data='{"op": "A owns this"}')
        sa, sb = socket.socketpair()
        self.addCleanup(sa.close)
        self.addCleanup(sb.close)
        # the descriptor travels from A's agent to B over the socket; the
        # test process forwards it as the review's two processes would
        pidfd = os.pidfd_open(a.pid)
        self.addCleanup(os.close, pidfd)
        a_fd = _pidfd_getfd(pidfd, fd)
        socket.send_fds(sa, [b"x"], [a_fd])
        os.close(a_fd)
        receiver = (
            "import os, socket, sys\n"
            "s = socket.socket(fileno=int(sys.argv[1]))\n"
            "_, fds, _, _ = socket.recv_fds(s, 1, 1)\n"
            "fd = fds[0]\n"
            "for what, fn in (('truncate', lambda: os.ftruncate(fd, 0)),\n"
            "                 ('write', lambda: os.pwrite(fd, str(os.getpid()).encode(), 0))):\n"
            "    try:\n"
            "        fn(); print(what, 0)\n"
            "    except OSError as e:\n"
            "        print(what, e.errno)\n")
        r = subprocess.run(harness.as_user([sys.executable, "-c", receiver, str(sb.fileno())],
                                           B),
                           pass_fds=[sb.fileno()], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"truncate {errno.EEXIST}", r.stdout)
        self.assertIn(f"write {errno.EEXIST}", r.stdout)
        doc = status(p)
        self.assertEqual((doc["pid"], doc["user"]), (a.pid, A))
        with open(p) as f:
            self.assertEqual(json.load(f)["op"], "A owns this")
        a.ok("close", fd=fd)
        self.assertEqual(a.err("unlink", path=p), 0)


def _pidfd_getfd(pidfd, fd):
    """pidfd_getfd(2) (root may take a descriptor of any process)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    nr = 438  # pidfd_getfd on every architecture with the unified table
    r = libc.syscall(nr, pidfd, fd, 0)
    if r < 0:
        raise OSError(ctypes.get_errno(), "pidfd_getfd")
    return r


class TestFullStateDirectory(LockfsTestCase):
    """Finding 7: when the state directory is full the failing request gets
    EIO and nothing of it is kept: not in the table, not in the journal
    (a restart shows the same), and the others' locks stay."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="lockfs-state-")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", self.tmp],
                       check=True)
        self.addCleanup(os.rmdir, self.tmp)
        self.addCleanup(subprocess.run, ["umount", self.tmp], check=True)
        self.MOUNT_OPTS = f"state_dir={self.tmp}/state"
        super().setUp()

    def fill(self):
        """Fill the state file system; return the filler's path."""
        filler = os.path.join(self.tmp, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                try:
                    os.write(fd, b"\0" * 512)
                except OSError as e:
                    self.assertEqual(e.errno, errno.ENOSPC)
                    break
        finally:
            os.close(fd)
        return filler

    def test_nothing_is_half_recorded(self):
        keeper = harness.Holder(self.p("keep.lock"))
        self.addCleanup(keeper.kill)
        self.assertTrue(keeper.ok)
        h = agent(self)
        fd = h.ok("open", path=self.p("w.lock"), flags=["O_RDWR", "O_CREAT", "O_EXCL"])
        h.ok("fdwrite", fd=fd, data="before", offset=0)
        filler = self.fill()
        # the journal's last page has room still: use it up with small locks
        # until one cannot be recorded; every record below is larger
        for i in range(200):
            pad = self.p(f"pad{i}.lock")
            r = errno_of(take, pad)
            if r:
                break
            self.addCleanup(os.unlink, pad)
        self.assertEqual(r, errno.EIO)
        self.assertFalse(os.path.exists(pad))
        long = "n" * 250
        self.assertEqual(errno_of(take, self.p(long + ".lock")), errno.EIO)
        self.assertFalse(os.path.exists(self.p(long + ".lock")))
        self.assertEqual(errno_of(os.mkdir, self.p(long)), errno.EIO)
        self.assertFalse(os.path.exists(self.p(long)))
        self.assertEqual(h.err("fdwrite", fd=fd, data="x" * 30000, offset=0), errno.EIO)
        self.assertEqual(status_doc(self.p("w.lock"))["content"], "before")
        self.assertIn("cannot record", self.m.log())

        os.unlink(filler)
        # a change now rewrites the journal; the refused ones must not be in it
        os.mkdir(self.p("later"))
        self.m.crash()
        self.m.start()
        names = sorted(n for n in os.listdir(self.m.mnt) if not n.startswith(("pad", ".")))
        self.assertEqual(names, ["keep.lock", "later", "w.lock"])
        self.assertEqual(status_doc(self.p("w.lock"))["content"], "before")
        self.assertEqual(status(self.p("keep.lock"))["pid"], keeper.pid)

    def test_refused_rename_is_undone(self):
        """A rename the store cannot record fails with EIO and the lock keeps
        its old name, also after a restart (at 3cfd385 the rename succeeded,
        the journal kept the old name, and after a restart another process
        took the new name while the first holder lived)."""
        a = agent(self)
        a.ok("open", path=self.p("old.lock"), flags=["O_RDWR", "O_CREAT", "O_EXCL"])
        filler = self.fill()
        for i in range(200):  # use up the journal's last page
            pad = self.p(f"pad{i}.lock")
            r = errno_of(take, pad)
            if r:
                break
            self.addCleanup(os.unlink, pad)
        self.assertEqual(r, errno.EIO)
        self.assertEqual(a.err("rename", path=self.p("old.lock"), dst=self.p("new.lock" + "n" * 200)),
                         errno.EIO)
        self.assertTrue(os.path.exists(self.p("old.lock")))
        os.unlink(filler)
        os.mkdir(self.p("later"))  # a change: the journal is rewritten
        self.m.crash()
        self.m.start()
        self.assertEqual(status(self.p("old.lock"))["pid"], a.pid)
        self.assertFalse(os.path.exists(self.p("new.lock" + "n" * 200)))


if __name__ == "__main__":
    harness.main()
