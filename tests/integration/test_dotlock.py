#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""link(2) (SPEC R2.5) and the classic dotlock tools that build on it:
liblockfile's dotlockfile, lockfile-progs' lockfile-create/-check/-touch/
-remove and procmail's lockfile (R3.3 claims, R3.3a content "0", R3.3b).

What the tools do (strace on tmpfs, liblockfile 1.17, lockfile-progs
0.1.19, procmail 3.22):

- dotlockfile and lockfile-create (liblockfile) create ".lk<pid><t><host>"
  next to the lock with O_CREAT|O_EXCL, write "<pid>\\n", close it, link()
  it to the lock name, lstat both names and compare st_ino (not st_nlink),
  then unlink the temp. The pid written is getppid() for `dotlockfile -p`
  and `lockfile-create --use-pid` (the calling shell), dotlockfile's own
  pid for `dotlockfile -p LOCK command...`, and "0\\n" without a pid option.
  A refused link makes them read the lock (atoi of its first 16 bytes) and
  fall back to its mtime (valid for 5 minutes); busy exit status 4
  (L_MAXTRYS) with -r 0.
- procmail's lockfile creates "_<random>.<host>" mode 0444 with O_EXCL,
  writes "0" (no newline), link()s it and trusts link's result, unlinks
  the temp; busy: exit 73 ("Sorry, giving up"). It has no pid option.

So on lockfs: with a pid option the calling shell holds the lock (a claim);
without one the content is "0" and the lock is detached: it outlives the
tool, is bound by the TTL, and its creator's uid (or root) removes it. A
lock whose holder is the tool itself (command mode) is released when the
tool dies. dotlockfile and lockfile are setgid mail: the mount needs
allow_other for them."""
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import LockfsTestCase, Holder, errno, errno_of, wait_until  # noqa: E402
from lockfs_it import Agent, DeleteWatch, Lines, spawn, status, exists, gone  # noqa: E402

TOOLS = ["dotlockfile", "lockfile-create", "lockfile-check", "lockfile-touch",
         "lockfile-remove", "lockfile"]
L_MAXTRYS = 4          # liblockfile: lock busy after all retries
PROCMAIL_BUSY = 73     # procmail's lockfile: "Sorry, giving up" (EX_CANTCREAT)
TIMEOUT = 30


def run(argv, user=None):
    """Run a tool (as user, if given) in a fresh process; never hangs."""
    if user:
        argv = harness.as_user(argv, user)
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=TIMEOUT, cwd="/")


def exit_barrier(tc, m):
    """Return once the daemon has handled the exit of a claim-less creator
    started after everything before: its lock vanishes."""
    p = m.path(".exit-barrier")
    r = subprocess.run(["sh", "-c", f"echo x > {p}"], timeout=20)
    tc.assertEqual(r.returncode, 0)
    wait_until(lambda: gone(p), what="exit barrier lock released")


class Shell:
    """A long-lived bash that runs one command line per request with eval,
    so the tools it runs are its children (their getppid() is this shell,
    and lockfs counts them as the holder's descendants)."""

    SCRIPT = ('while IFS= read -r line; do eval "$line" </dev/null >"$SHELL_OUT" 2>&1; '
              'echo "rc $?"; done')

    def __init__(self, tc, user=None):
        fd, self.outfile = tempfile.mkstemp(prefix="lockfs-dotlock-")
        os.close(fd)
        os.chmod(self.outfile, 0o666)
        tc.addCleanup(os.unlink, self.outfile)
        argv = ["bash", "-c", self.SCRIPT]
        if user:
            argv = harness.as_user(argv, user)
        env = dict(os.environ, SHELL_OUT=self.outfile)
        self.proc, self.out = spawn(tc, argv, env=env, cwd="/")
        self.pid = self.proc.pid      # setpriv execs bash: same pid

    def run(self, line):
        """(exit status, output) of line, run by this shell."""
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        rc = int(self.out.expect("rc ", timeout=TIMEOUT).split()[1])
        with open(self.outfile) as f:
            return rc, f.read()

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=20)


class DotlockCase(LockfsTestCase):
    MOUNT_OPTS = "allow_other"

    def setUp(self):
        missing = [t for t in TOOLS if not shutil.which(t)]
        if missing:
            self.fail(f"missing {missing}: install liblockfile-bin lockfile-progs procmail "
                      "(mount-helpers/install-deps.sh)")
        super().setUp()
        self.uid, _ = harness.ensure_user(harness.TEST_USER)
        self.uid2, _ = harness.ensure_user(harness.TEST_USER2)
        self.lock = self.p("x.lock")

    def assert_only(self, *names):
        """The mount root holds exactly these names (plus .lockfs): no temp
        file of a tool is left behind."""
        self.assertEqual(sorted(os.listdir(self.m.mnt)), sorted((".lockfs",) + names))

    def assert_busy(self, r, code, what):
        self.assertEqual(r.returncode, code, f"{what}: {r.stdout}{r.stderr}")

    def assert_held_by(self, path, pid, how, content, uid=0, comm=None):
        st = status(path)
        lf = st["lockfs"]
        self.assertEqual(lf["path"], "/" + os.path.relpath(path, self.m.mnt))
        self.assertEqual(lf["pid"], pid)
        self.assertEqual(st["pid"], pid)
        self.assertIn(lf["how"], how if isinstance(how, tuple) else (how,))
        self.assertEqual(st.get("content"), content)
        self.assertEqual(lf["uid"], uid)
        if comm:
            self.assertEqual(lf["comm"], comm)
        # SPEC R5.3: the mount's TTL binds detached locks; a live holder's
        # lock has none (no ttl_s of its own, no holder_ttl)
        if pid is None:
            self.assertIsNotNone(lf["expires_at"], "a detached lock is TTL-bound")
        else:
            self.assertIsNone(lf["expires_at"], "a live holder's lock has no TTL")
        s = os.stat(path)
        self.assertTrue(stat.S_ISREG(s.st_mode))
        self.assertEqual(s.st_nlink, 1, "the temp name must be gone")
        return lf


class TestLink(DotlockCase):
    """link(2) itself: a second name of the same lock (R2.5)."""

    def link_agent(self, user=None):
        a = Agent(user)
        self.addCleanup(a.kill)
        return a

    def test_holder_links_then_unlinks_temp(self):
        tmp, lock = self.p(".lk-tmp"), self.lock
        a = self.link_agent()
        a.ok("create", path=tmp, data="{pid}\n")
        fence = status(tmp)["lockfs"]["fence"]
        self.assertEqual(a.err("link", path=tmp, dst=lock), 0)
        s_tmp, s_lock = os.stat(tmp), os.stat(lock)
        self.assertEqual(s_tmp.st_ino, s_lock.st_ino, "one lock, two names")
        self.assertEqual((s_tmp.st_nlink, s_lock.st_nlink), (2, 2))
        inodes = {e.name: e.inode() for e in os.scandir(self.m.mnt)}
        self.assertEqual(inodes[".lk-tmp"], inodes["x.lock"], "readdir inode numbers")
        for name in (tmp, lock):
            lf = status(name)["lockfs"]
            self.assertEqual(lf["path"], "/x.lock", "the new name is the lock's own")
            self.assertEqual((lf["pid"], lf["fence"]), (a.pid, fence), "same lock, same fence")
        # both names are taken
        for name in (tmp, lock):
            self.assertEqual(errno_of(os.open, name, os.O_WRONLY | os.O_CREAT | os.O_EXCL),
                             errno.EEXIST)
        # the temp name goes, the lock stays under the new name
        self.assertEqual(a.err("unlink", path=tmp), 0)
        self.assertTrue(gone(tmp))
        self.assert_only("x.lock")
        s = os.stat(lock)
        self.assertEqual((s.st_ino, s.st_nlink), (s_lock.st_ino, 1))
        lf = status(lock)["lockfs"]
        self.assertEqual((lf["path"], lf["pid"], lf["fence"]), ("/x.lock", a.pid, fence))
        self.assertEqual(status(lock).get("content"), f"{a.pid}\n")
        # and is released as usual
        self.assertEqual(a.err("unlink", path=lock), 0)
        self.assertTrue(gone(lock))
        self.assert_only()

    def test_descendant_links(self):
        tmp, lock = self.p(".lk-tmp"), self.lock
        a = self.link_agent()
        a.ok("create", path=tmp, data="plain")
        r = a.call("link", path=tmp, dst=lock, child=True)
        self.assertTrue(r["ok"], r)
        self.assertEqual(os.stat(lock).st_nlink, 2)
        r = a.call("unlink", path=tmp, child=True)
        self.assertTrue(r["ok"], r)
        exit_barrier(self, self.m)
        self.assertTrue(exists(lock), "the linking child's exit must not release it")
        self.assertEqual(status(lock)["lockfs"]["pid"], a.pid)
        self.assert_only("x.lock")
        a.kill()
        wait_until(lambda: gone(lock), what="lock released when its holder dies")

    def test_unlink_new_name_keeps_lock_under_old(self):
        tmp, lock = self.p(".lk-tmp"), self.lock
        a = self.link_agent()
        a.ok("create", path=tmp, data="{pid}\n")
        fence = status(tmp)["lockfs"]["fence"]
        a.ok("link", path=tmp, dst=lock)
        a.ok("unlink", path=lock)
        self.assertTrue(gone(lock))
        self.assert_only(".lk-tmp")
        s = os.stat(tmp)
        self.assertEqual(s.st_nlink, 1)
        lf = status(tmp)["lockfs"]
        self.assertEqual((lf["path"], lf["pid"], lf["fence"]), ("/.lk-tmp", a.pid, fence))
        a.ok("unlink", path=tmp)
        self.assertTrue(gone(tmp))
        self.assert_only()

    def test_holder_death_removes_every_name(self):
        tmp, lock = self.p(".lk-tmp"), self.lock
        a = self.link_agent()
        a.ok("create", path=tmp, data="{pid}\n")
        a.ok("link", path=tmp, dst=lock)
        a.kill()
        wait_until(lambda: gone(tmp) and gone(lock), what="both names released at death")
        self.assert_only()
        for name in (lock, tmp):
            os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))

    def test_link_onto_held_name_eexist(self):
        tmp, lock = self.p(".lk-tmp"), self.lock
        h = Holder(lock)
        self.addCleanup(h.release)
        self.assertTrue(h.ok, h.errno)
        held = status(lock)["lockfs"]
        a = self.link_agent()
        a.ok("create", path=tmp, data="{pid}\n")
        self.assertEqual(a.err("link", path=tmp, dst=lock), errno.EEXIST)
        lf = status(lock)["lockfs"]
        self.assertEqual((lf["pid"], lf["fence"]), (h.pid, held["fence"]), "untouched")
        self.assertNotEqual(os.stat(tmp).st_ino, os.stat(lock).st_ino)
        self.assertEqual((os.stat(tmp).st_nlink, os.stat(lock).st_nlink), (1, 1))
        # onto a name of its own lock, and onto .lockfs
        a.ok("link", path=tmp, dst=self.p("y.lock"))
        self.assertEqual(a.err("link", path=tmp, dst=self.p("y.lock")), errno.EEXIST)
        self.assertEqual(a.err("link", path=self.p("y.lock"), dst=tmp), errno.EEXIST)
        self.assertEqual(a.err("link", path=tmp, dst=self.p(".lockfs")), errno.EEXIST)
        self.assertEqual(os.stat(tmp).st_nlink, 2)
        self.assert_only(".lk-tmp", "x.lock", "y.lock")

    def test_non_holder_link_eperm(self):
        tmp, new = self.p(".lk-tmp"), self.lock
        h = Holder(tmp, user=harness.TEST_USER)
        self.addCleanup(h.release)
        self.assertTrue(h.ok, h.errno)
        for who, other in (("same uid", self.link_agent(harness.TEST_USER)),
                           ("other uid", self.link_agent(harness.TEST_USER2)),
                           ("root", self.link_agent())):
            self.assertEqual(other.err("link", path=tmp, dst=new), errno.EPERM, who)
            self.assertEqual(other.call("link", path=tmp, dst=new, child=True).get("errno"),
                             errno.EPERM, who + " (child)")
        self.assertEqual(errno_of(os.link, tmp, new), errno.EPERM, "root test process")
        self.assertTrue(gone(new))
        self.assertEqual(os.stat(tmp).st_nlink, 1)
        self.assertEqual(status(tmp)["lockfs"]["pid"], h.pid)
        self.assert_only(".lk-tmp")

    def test_link_into_subdir_status_and_watch(self):
        # one lock in .lockfs/locks.json; the new name (in another
        # directory) is its path; unlinking the other name is no release for
        # a delete_self watch (the inode keeps a name), the release is
        os.mkdir(self.p("sub"))
        tmp, lock = self.p(".lk-tmp"), self.p("sub", "y.lock")
        a = self.link_agent()
        a.ok("create", path=tmp, data="{pid}\n")
        self.assertEqual(a.err("link", path=tmp, dst=self.p(".lockfs", "y.lock")),
                         errno.EACCES, ".lockfs is read-only")
        a.ok("link", path=tmp, dst=lock)
        self.assertEqual(status(tmp)["lockfs"]["path"], "/sub/y.lock")
        with open(self.p(".lockfs", "locks.json")) as f:
            paths = [e["lockfs"]["path"] for e in json.load(f)]
        self.assertEqual(paths, ["/sub/y.lock"], "one lock, listed once")
        w = DeleteWatch(self, lock)
        a.ok("unlink", path=tmp)
        time.sleep(0.3)
        self.assertFalse(w.fired(), "delete_self fired though the lock kept a name")
        self.assertEqual(os.stat(lock).st_nlink, 1)
        a.ok("unlink", path=lock)
        self.assertEqual(w.wait()[0], 0)
        self.assertEqual(os.listdir(self.p("sub")), [])

    def test_rename_with_two_names(self):
        # the lock's own name may be moved by its holder; the second name
        # stays where link(2) put it (EPERM)
        tmp, lock = self.p(".lk-tmp"), self.lock
        a = self.link_agent()
        a.ok("create", path=tmp, data="{pid}\n")
        a.ok("link", path=tmp, dst=lock)
        self.assertEqual(a.err("rename", path=tmp, dst=self.p("z")), errno.EPERM)
        a.ok("rename", path=lock, dst=self.p("z.lock"))
        self.assert_only(".lk-tmp", "z.lock")
        self.assertEqual(os.stat(tmp).st_ino, os.stat(self.p("z.lock")).st_ino)
        self.assertEqual(status(tmp)["lockfs"]["path"], "/z.lock")

    def test_detached_lock_linked_by_creator_uid(self):
        # what procmail's lockfile and pid-less liblockfile do: the temp is
        # detached ("0") by the time it is linked
        tmp, lock = self.p(".lk-tmp"), self.lock
        r = run(["sh", "-c", f"printf 0 > {tmp}"], user=harness.TEST_USER)
        self.assertEqual(r.returncode, 0, r.stderr)
        exit_barrier(self, self.m)
        lf = status(tmp)["lockfs"]
        self.assertEqual((lf["how"], lf["uid"]), ("detached", self.uid))
        other = self.link_agent(harness.TEST_USER2)
        self.assertEqual(other.err("link", path=tmp, dst=lock), errno.EPERM, "other uid")
        same = self.link_agent(harness.TEST_USER)
        self.assertEqual(same.err("link", path=tmp, dst=lock), 0, "creator uid")
        self.assertEqual(os.stat(lock).st_ino, os.stat(tmp).st_ino)
        self.assertEqual(os.stat(lock).st_nlink, 2)
        self.assertEqual(other.err("unlink", path=tmp), errno.EPERM, "other uid unlink")
        self.assertEqual(same.err("unlink", path=tmp), 0)
        self.assert_only("x.lock")
        lf2 = status(lock)["lockfs"]
        self.assertEqual((lf2["how"], lf2["path"], lf2["fence"], os.stat(lock).st_nlink),
                         ("detached", "/x.lock", lf["fence"], 1))
        self.assertEqual(same.err("unlink", path=lock), 0)
        self.assert_only()


class TestDotlockfile(DotlockCase):
    """liblockfile-bin's dotlockfile."""

    def test_dotlockfile_p_shell_holds(self):
        sh = Shell(self)
        self.assertEqual(sh.run(f"dotlockfile -r 0 -p {self.lock}"), (0, ""))
        exit_barrier(self, self.m)          # dotlockfile's exit is handled
        self.assert_only("x.lock")
        lf = self.assert_held_by(self.lock, sh.pid, "claim", f"{sh.pid}\n", comm="bash")
        # a second attempt, with or without -p, from root or a user: busy
        self.assert_busy(run(["dotlockfile", "-r", "0", "-p", self.lock]), L_MAXTRYS, "-p")
        self.assert_busy(run(["dotlockfile", "-r", "0", self.lock]), L_MAXTRYS, "no -p")
        self.assert_busy(run(["dotlockfile", "-r", "0", "-p", self.lock],
                             user=harness.TEST_USER), L_MAXTRYS, "other user")
        self.assertEqual(sh.run(f"dotlockfile -r 0 -p {self.lock}")[0], L_MAXTRYS,
                         "the holder shell itself: link onto a held name")
        # nobody else may remove or renew it
        self.assertEqual(run(["dotlockfile", "-u", self.lock], user=harness.TEST_USER)
                         .returncode, 1, "other uid -u")
        self.assertEqual(run(["dotlockfile", "-t", self.lock], user=harness.TEST_USER)
                         .returncode, 1, "other uid -t")
        self.assertEqual(run(["dotlockfile", "-t", self.lock]).returncode, 1, "root -t")
        self.assert_only("x.lock")
        lf2 = self.assert_held_by(self.lock, sh.pid, "claim", f"{sh.pid}\n")
        self.assertEqual(lf2["fence"], lf["fence"])
        # the holder renews and releases
        self.assertEqual(sh.run(f"dotlockfile -t {self.lock}"), (0, ""))
        self.assertGreaterEqual(status(self.lock)["lockfs"]["renewed_at"], lf["renewed_at"])
        self.assertEqual(sh.run(f"dotlockfile -u {self.lock}"), (0, ""))
        self.assertTrue(gone(self.lock))
        self.assert_only()
        # free again for the next taker
        self.assertEqual(run(["dotlockfile", "-r", "0", self.lock]).returncode, 0)
        self.assertEqual(run(["dotlockfile", "-u", self.lock]).returncode, 0)
        self.assert_only()

    def test_dotlockfile_p_released_when_shell_dies(self):
        sh = Shell(self, harness.TEST_USER)
        self.assertEqual(sh.run(f"dotlockfile -r 0 -p {self.lock}"), (0, ""))
        self.assert_held_by(self.lock, sh.pid, "claim", f"{sh.pid}\n", uid=self.uid)
        sh.kill()
        wait_until(lambda: gone(self.lock), what="lock released when the holder shell dies")
        self.assert_only()
        sh2 = Shell(self)
        self.assertEqual(sh2.run(f"dotlockfile -r 0 -p {self.lock}"), (0, ""))
        self.assert_held_by(self.lock, sh2.pid, "claim", f"{sh2.pid}\n")

    def test_dotlockfile_without_p_is_detached(self):
        # dotlockfile without -p writes "0\n", not its pid: the lock is
        # detached (R3.3a), not released as the tool exits (R3.3b)
        r = run(["dotlockfile", "-r", "0", self.lock], user=harness.TEST_USER)
        self.assertEqual(r.returncode, 0, r.stderr)
        exit_barrier(self, self.m)
        self.assertTrue(exists(self.lock), "a pid-less dotlock outlives dotlockfile")
        self.assert_only("x.lock")
        lf = self.assert_held_by(self.lock, None, "detached", "0\n", uid=self.uid)
        self.assertEqual(lf["ttl_s"], 3600)
        for argv, user in ((["dotlockfile", "-r", "0", self.lock], None),
                           (["dotlockfile", "-r", "0", "-p", self.lock], None),
                           (["dotlockfile", "-r", "0", self.lock], harness.TEST_USER)):
            self.assert_busy(run(argv, user), L_MAXTRYS, f"{argv} as {user}")
        self.assert_only("x.lock")
        # another uid may neither remove nor renew it; its creator's uid
        # renews it with dotlockfile -t, the tool's keep-alive (R3.3a)
        self.assertEqual(run(["dotlockfile", "-u", self.lock], harness.TEST_USER2).returncode, 1)
        self.assertEqual(run(["dotlockfile", "-t", self.lock], harness.TEST_USER2).returncode, 1)
        self.assertEqual(run(["dotlockfile", "-t", self.lock], harness.TEST_USER).returncode, 0)
        self.assertEqual(status(self.lock)["lockfs"]["fence"], lf["fence"])
        # its creator's uid removes it, from any process
        self.assertEqual(run(["dotlockfile", "-u", self.lock], harness.TEST_USER).returncode, 0)
        self.assertTrue(gone(self.lock))
        self.assert_only()

    def test_dotlockfile_command_mode_p(self):
        # `dotlockfile -p LOCK cmd`: dotlockfile writes its own pid and
        # holds the lock while cmd runs, then removes it
        proc, out = spawn(self, ["dotlockfile", "-r", "0", "-p", self.lock,
                                 "sh", "-c", "echo running; read x"], cwd="/")
        out.expect("running", timeout=TIMEOUT)
        self.assert_only("x.lock")
        lf = self.assert_held_by(self.lock, proc.pid, ("creator", "claim"), f"{proc.pid}\n",
                                 comm="dotlockfile")
        self.assert_busy(run(["dotlockfile", "-r", "0", "-p", self.lock]), L_MAXTRYS, "busy")
        proc.stdin.close()
        self.assertEqual(proc.wait(timeout=TIMEOUT), 0)
        self.assertTrue(gone(self.lock))
        self.assert_only()
        # killed while the command runs: released at once (its holder died)
        proc, out = spawn(self, ["dotlockfile", "-r", "0", "-p", self.lock,
                                 "sh", "-c", "echo running; read x"], cwd="/")
        out.expect("running", timeout=TIMEOUT)
        self.assertGreater(status(self.lock)["lockfs"]["fence"], lf["fence"])
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=20)
        wait_until(lambda: gone(self.lock), what="released when dotlockfile is killed")
        self.assert_only()

    def test_dotlockfile_command_mode_without_p(self):
        proc, out = spawn(self, ["dotlockfile", "-r", "0", self.lock,
                                 "sh", "-c", "echo running; read x"], cwd="/")
        out.expect("running", timeout=TIMEOUT)
        self.assert_only("x.lock")
        self.assert_held_by(self.lock, None, "detached", "0\n")
        self.assert_busy(run(["dotlockfile", "-r", "0", self.lock]), L_MAXTRYS, "busy")
        proc.stdin.close()
        self.assertEqual(proc.wait(timeout=TIMEOUT), 0)
        self.assertTrue(gone(self.lock), "dotlockfile unlinks it after the command")
        self.assert_only()

    def test_dotlockfile_race(self):
        # of 8 concurrent `dotlockfile -r 0 -p` exactly one wins, and no
        # temp file survives
        n = 8
        script = f'dotlockfile -r 0 -p {self.lock}; echo "rc $?"; read x'
        shells = [spawn(self, ["bash", "-c", script], cwd="/") for _ in range(n)]
        rcs = {p.pid: int(out.expect("rc ", timeout=TIMEOUT).split()[1]) for p, out in shells}
        winners = [pid for pid, rc in rcs.items() if rc == 0]
        self.assertEqual(len(winners), 1, rcs)
        self.assertEqual(sorted(rcs.values()), [0] + [L_MAXTRYS] * (n - 1))
        self.assert_only("x.lock")
        self.assert_held_by(self.lock, winners[0], "claim", f"{winners[0]}\n")
        for p, _ in shells:
            p.stdin.close()
            p.wait(timeout=20)
        wait_until(lambda: gone(self.lock), what="released when the winner exits")


class TestLockfileProgs(DotlockCase):
    """lockfile-progs (liblockfile): lockfile-create/-check/-touch/-remove."""

    def test_lockfile_create_use_pid(self):
        # default naming: FILE -> FILE.lock; --use-pid writes the PPID
        target = self.p("x")
        sh = Shell(self)
        self.assertEqual(sh.run(f"lockfile-create --use-pid -r 0 {target}"), (0, ""))
        exit_barrier(self, self.m)
        self.assert_only("x.lock")
        lf = self.assert_held_by(self.lock, sh.pid, "claim", f"{sh.pid}\n", comm="bash")
        for argv in (["lockfile-create", "-r", "0", target],
                     ["lockfile-create", "--use-pid", "-r", "0", target]):
            self.assert_busy(run(argv), L_MAXTRYS, argv)
        self.assert_busy(run(["lockfile-create", "-r", "0", target], harness.TEST_USER),
                         L_MAXTRYS, "other user")
        self.assert_only("x.lock")
        self.assertEqual(sh.run(f"lockfile-check --use-pid {target}")[0], 0)
        self.assertEqual(run(["lockfile-check", "--use-pid", target]).returncode, 0)
        self.assertEqual(run(["lockfile-check", target], harness.TEST_USER).returncode, 0)
        # renewal: the holder's lockfile-touch works, others' fails
        wait_until(lambda: status(self.lock)["lockfs"]["age_ms"] > 2, what="clock tick")
        self.assertEqual(sh.run(f"lockfile-touch --oneshot {target}"), (0, ""))
        self.assertGreater(status(self.lock)["lockfs"]["renewed_at"], lf["renewed_at"])
        self.assertNotEqual(run(["lockfile-touch", "--oneshot", target]).returncode, 0)
        self.assertNotEqual(run(["lockfile-touch", "--oneshot", target], harness.TEST_USER)
                            .returncode, 0)
        # removal: others refused, the holder's works
        r = run(["lockfile-remove", target], harness.TEST_USER)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Device or resource busy", r.stderr)    # SPEC R3.4: EBUSY
        self.assert_held_by(self.lock, sh.pid, "claim", f"{sh.pid}\n")
        self.assertEqual(sh.run(f"lockfile-remove {target}"), (0, ""))
        self.assertTrue(gone(self.lock))
        self.assert_only()
        self.assertNotEqual(run(["lockfile-check", target]).returncode, 0)

    def test_lockfile_create_without_pid_is_detached(self):
        lk = ["--lock-name", self.lock]
        r = run(["lockfile-create", "-r", "0"] + lk, harness.TEST_USER)
        self.assertEqual(r.returncode, 0, r.stderr)
        exit_barrier(self, self.m)
        self.assert_only("x.lock")
        lf = self.assert_held_by(self.lock, None, "detached", "0\n", uid=self.uid)
        self.assert_busy(run(["lockfile-create", "-r", "0"] + lk), L_MAXTRYS, "root")
        self.assert_busy(run(["lockfile-create", "--use-pid", "-r", "0"] + lk,
                             harness.TEST_USER), L_MAXTRYS, "same uid")
        self.assert_only("x.lock")
        self.assertEqual(run(["lockfile-check"] + lk).returncode, 0)
        # only its creator's uid renews it: the man page's lockfile-touch works
        self.assertNotEqual(run(["lockfile-touch", "--oneshot"] + lk, harness.TEST_USER2)
                            .returncode, 0)
        self.assertEqual(status(self.lock)["lockfs"]["renewed_at"], lf["renewed_at"])
        self.assertEqual(run(["lockfile-touch", "--oneshot"] + lk, harness.TEST_USER)
                         .returncode, 0)
        r = run(["lockfile-remove"] + lk, harness.TEST_USER2)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Operation not permitted", r.stderr)
        self.assertTrue(exists(self.lock))
        self.assertEqual(run(["lockfile-remove"] + lk, harness.TEST_USER).returncode, 0)
        self.assertTrue(gone(self.lock))
        self.assert_only()


class TestProcmailLockfile(DotlockCase):
    """procmail's lockfile: writes "0", no pid option."""

    def test_procmail_lockfile_detached(self):
        r = run(["lockfile", "-r0", self.lock], harness.TEST_USER)
        self.assertEqual(r.returncode, 0, r.stderr)
        exit_barrier(self, self.m)
        self.assertTrue(exists(self.lock), "procmail's lock outlives lockfile")
        self.assert_only("x.lock")
        lf = self.assert_held_by(self.lock, None, "detached", "0", uid=self.uid)
        self.assertEqual(os.stat(self.lock).st_mode & 0o7777, 0o644)
        r = run(["lockfile", "-r0", self.lock])
        self.assert_busy(r, PROCMAIL_BUSY, "second lockfile")
        self.assertIn("Sorry", r.stderr)
        self.assert_busy(run(["dotlockfile", "-r", "0", self.lock]), L_MAXTRYS, "dotlockfile")
        self.assert_only("x.lock")
        # rm -f: refused for another uid, fine for the creator's uid
        r = run(["rm", "-f", self.lock], harness.TEST_USER2)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Operation not permitted", r.stderr)
        self.assertEqual(status(self.lock)["lockfs"]["fence"], lf["fence"])
        self.assertEqual(run(["rm", "-f", self.lock], harness.TEST_USER).returncode, 0)
        self.assertTrue(gone(self.lock))
        self.assert_only()

    def test_procmail_forced_unlock_of_live_lock_refused(self):
        # lockfile -l N (locktimeout) breaks a lock older than N seconds by
        # unlinking it. On lockfs that unlink is refused while a live shell
        # of another uid holds the lock; procmail then keeps retrying
        # ("Forced unlock denied", retries not counted) and takes the lock
        # once the holder releases it.
        sh = Shell(self, harness.TEST_USER)
        self.assertEqual(sh.run(f"dotlockfile -r 0 -p {self.lock}"), (0, ""))
        fence = status(self.lock)["lockfs"]["fence"]
        time.sleep(2.1)      # older than -l1 by the file's mtime
        proc, _ = spawn(self, harness.as_user(["lockfile", "-1", "-r0", "-l1", "-s1", self.lock],
                                              harness.TEST_USER2),
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE, cwd="/")
        err = Lines(proc.stderr)        # await its refused unlink (it retries after it)
        while "Forced unlock denied" not in err.get(TIMEOUT, "lockfile's \"Forced unlock denied\""):
            pass
        self.assertIsNone(proc.poll(), "lockfile gave up or took the live lock")
        lf = self.assert_held_by(self.lock, sh.pid, "claim", f"{sh.pid}\n", uid=self.uid)
        self.assertEqual(lf["fence"], fence)
        self.assertEqual(sh.run(f"dotlockfile -u {self.lock}"), (0, ""))
        self.assertEqual(proc.wait(timeout=15), 0)
        self.assert_only("x.lock")
        lf = self.assert_held_by(self.lock, None, "detached", "0", uid=self.uid2)
        self.assertGreater(lf["fence"], fence)


class TestDetachedTTL(DotlockCase):
    MOUNT_OPTS = "allow_other,ttl=2"

    def test_pidless_dotlocks_expire(self):
        locks = {"dotlockfile": self.p("a.lock"), "lockfile-create": self.p("b.lock"),
                 "procmail": self.p("c.lock")}
        for argv in (["dotlockfile", "-r", "0", locks["dotlockfile"]],
                     ["lockfile-create", "-r", "0", "-l", locks["lockfile-create"]],
                     ["lockfile", "-r0", locks["procmail"]]):
            r = run(argv)
            self.assertEqual(r.returncode, 0, f"{argv}: {r.stderr}")
        exit_barrier(self, self.m)
        self.assert_only("a.lock", "b.lock", "c.lock")
        for tool, p in locks.items():
            lf = status(p)["lockfs"]
            self.assertEqual((lf["how"], lf["ttl_s"]), ("detached", 2), tool)
        wait_until(lambda: all(gone(p) for p in locks.values()), what="TTL expiry")
        self.assert_only()
        self.assertEqual(run(["lockfile", "-r0", locks["procmail"]]).returncode, 0)


if __name__ == "__main__":
    harness.main()
