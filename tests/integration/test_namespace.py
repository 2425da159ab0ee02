#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""SPEC §1 (names and layout) and §6 (the .lockfs directory), plus rename
(R2.5) and readdir."""
import json
import os
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import LockfsTestCase, Holder, errno, errno_of, wait_until  # noqa: E402
from lockfs_it import (EXCL, create, agent, break_lock, status, gone, exists, metrics,  # noqa: E402
                       parse_metrics)


class TestNames(LockfsTestCase):

    def test_lock_names(self):
        holders = {}
        for n in (".lock", "state.lock", "db-7", ".hidden", "a b", "x.y.z", "\u00e9t\u00e9",
                  'q"uo\\te\nnl\t'):
            h = Holder(self.p(n))
            self.addCleanup(h.kill)
            self.assertTrue(h.ok, f"{n!r}: errno {h.errno}")
            holders[n] = h
        listing = set(os.listdir(self.m.mnt))
        for n, h in holders.items():
            self.assertIn(n, listing)
            st = os.stat(self.p(n))
            self.assertTrue(stat.S_ISREG(st.st_mode), n)
            s = status(self.p(n))
            self.assertEqual(s["lockfs"]["path"], "/" + n)
            self.assertEqual(s["lockfs"]["pid"], h.pid)
            self.assertEqual(errno_of(create, self.p(n)), errno.EEXIST, n)

    def test_directories(self):
        os.mkdir(self.p("a"))
        os.mkdir(self.p("a", "b"))
        st = os.stat(self.p("a", "b"))
        self.assertTrue(stat.S_ISDIR(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o1777)
        self.assertEqual(errno_of(os.mkdir, self.p("a")), errno.EEXIST)
        p = self.p("a", "b", "x.lock")
        h = Holder(p)
        self.addCleanup(h.kill)
        self.assertEqual(status(p)["lockfs"]["path"], "/a/b/x.lock")
        self.assertEqual(os.listdir(self.p("a", "b")), ["x.lock"])
        self.assertEqual(os.listdir(self.p("a")), ["b"])
        self.assertEqual(errno_of(os.rmdir, self.p("a", "b")), errno.ENOTEMPTY)
        self.assertEqual(errno_of(os.rmdir, self.p("a")), errno.ENOTEMPTY)
        # a lock name and a directory name cannot clash
        self.assertEqual(errno_of(os.mkdir, p), errno.EEXIST)
        self.assertEqual(errno_of(create, self.p("a", "b")), errno.EEXIST)
        h.kill()
        wait_until(lambda: gone(p), what="release")
        os.rmdir(self.p("a", "b"))
        os.rmdir(self.p("a"))
        self.assertNotIn("a", os.listdir(self.m.mnt))
        os.mkdir(self.p("empty"))
        os.rmdir(self.p("empty"))
        self.assertTrue(gone(self.p("empty")))
        self.assertEqual(errno_of(os.rmdir, self.p("nope")), errno.ENOENT)
        os.mkdir(self.p("d2"))
        create(self.p("l2"))
        self.assertEqual(errno_of(os.unlink, self.p("d2")), errno.EISDIR)
        self.assertEqual(errno_of(os.rmdir, self.p("l2")), errno.ENOTDIR)
        self.assertTrue(exists(self.p("d2")) and exists(self.p("l2")))

    def test_name_length(self):
        before = sorted(os.listdir(self.m.mnt))
        self.assertEqual(errno_of(create, self.p("n" * 256)), errno.ENAMETOOLONG)
        self.assertEqual(errno_of(os.mkdir, self.p("d" * 256)), errno.ENAMETOOLONG)
        r = subprocess.run(["sh", "-c", f"echo $$ > {self.p('s' * 256)}"], timeout=20,
                           capture_output=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(sorted(os.listdir(self.m.mnt)), before, "nothing created")
        mm = metrics(self.m)
        self.assertEqual(mm["lockfs_locks_held"], 0)
        n255 = "n" * 255
        create(self.p(n255), b"x")
        self.assertIn(n255, os.listdir(self.m.mnt))
        self.assertEqual(status(self.p(n255))["lockfs"]["path"], "/" + n255)
        os.mkdir(self.p("d" * 255))
        # rename to a too-long name changes nothing
        self.assertEqual(errno_of(os.rename, self.p(n255), self.p("r" * 256)),
                         errno.ENAMETOOLONG)
        self.assertTrue(exists(self.p(n255)))
        # multibyte: 128 two-byte characters = 256 bytes
        self.assertEqual(errno_of(create, self.p("\u00e9" * 128)), errno.ENAMETOOLONG)

    def test_special_files_refused(self):
        create(self.p("t.lock"))
        before = sorted(os.listdir(self.m.mnt))
        self.assertEqual(errno_of(os.symlink, "t.lock", self.p("sym")), errno.EPERM)
        self.assertEqual(errno_of(os.mkfifo, self.p("fifo")), errno.EPERM)
        self.assertEqual(errno_of(os.mknod, self.p("dev"), stat.S_IFCHR | 0o600,
                                  os.makedev(1, 3)), errno.EPERM)
        self.assertEqual(errno_of(os.mknod, self.p("blk"), stat.S_IFBLK | 0o600,
                                  os.makedev(7, 0)), errno.EPERM)
        self.assertEqual(errno_of(os.mknod, self.p("sock"), stat.S_IFSOCK | 0o600),
                         errno.EPERM)
        self.assertEqual(sorted(os.listdir(self.m.mnt)), before, "nothing created")
        self.assertEqual(os.stat(self.p("t.lock")).st_nlink, 1)

    def test_readdir_and_ls(self):
        create(self.p("one.lock"))
        os.mkdir(self.p("dir"))
        create(self.p("dir", "two"))
        self.assertEqual(status(self.p("dir", "two"))["lockfs"]["path"], "/dir/two")
        names = os.listdir(self.m.mnt)
        self.assertEqual(sorted(names), [".lockfs", "dir", "one.lock"])
        r = subprocess.run(["ls", "-la", self.m.mnt], capture_output=True, text=True,
                           timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        for n in (".lockfs", "dir", "one.lock", " .\n", " ..\n"):
            self.assertIn(n, r.stdout + "\n")
        line = [l for l in r.stdout.splitlines() if l.endswith(" one.lock")][0]
        self.assertTrue(line.startswith("-rw-r--r--"), line)
        r = subprocess.run(["ls", "-la", self.p("dir")], capture_output=True, text=True,
                           timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(" two", r.stdout)
        r = subprocess.run(["ls", "-la", self.p(".lockfs")], capture_output=True, text=True,
                           timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("locks.json", r.stdout)
        self.assertIn("metrics", r.stdout)
        # directories entries have inode numbers consistent with stat
        with os.scandir(self.m.mnt) as it:
            for e in it:
                if e.name == "one.lock":
                    self.assertEqual(e.inode(), os.stat(self.p("one.lock")).st_ino)

    def test_lockfs_dir_in_subdir_is_a_lock_name(self):
        os.mkdir(self.p("sub"))
        h = Holder(self.p("sub", ".lockfs"))
        self.addCleanup(h.kill)
        self.assertTrue(h.ok, "only the root .lockfs is reserved")
        self.assertEqual(status(self.p("sub", ".lockfs"))["lockfs"]["path"], "/sub/.lockfs")


# Runs one path call (rmdir, rename or mkdir) and prints its errno (0 = success).
PATH_OP = r"""
import os, sys
op, args = sys.argv[1], sys.argv[2:]
try:
    getattr(os, op)(*args)
    print(0)
except OSError as e:
    print(e.errno)
"""


def errno_as(user, op, *args):
    """errno of os.<op>(*args) run by a fresh process of user (None: root)."""
    cmd = [sys.executable, "-c", PATH_OP, op, *args]
    r = subprocess.run(harness.as_user(cmd, user) if user else cmd, capture_output=True,
                       text=True, timeout=20)
    if r.returncode != 0:
        raise AssertionError(f"{op} as {user}: {r.stderr}")
    return int(r.stdout)


class TestDirectoryRules(LockfsTestCase):
    """Directories follow sticky-bit rules: only their creator's uid (or
    root) may remove or rename them, and a directory that holds anything is
    renamed by root only, so nobody moves the locks of others."""
    MOUNT_OPTS = "allow_other"

    def setUp(self):
        super().setUp()
        self.uid_a, _ = harness.ensure_user(harness.TEST_USER)
        self.uid_b, _ = harness.ensure_user(harness.TEST_USER2)
        self.A, self.B = harness.TEST_USER, harness.TEST_USER2

    def test_only_creator_removes_or_renames_empty_dir(self):
        team, t2, t3 = self.p("team"), self.p("team2"), self.p("team3")
        self.assertEqual(errno_as(self.A, "mkdir", team), 0)
        self.assertEqual(errno_as(self.B, "rmdir", team), errno.EPERM, "B rmdir of A's dir")
        self.assertEqual(errno_as(self.B, "rename", team, t2), errno.EPERM,
                         "B rename of A's dir")
        self.assertEqual(sorted(os.listdir(self.m.mnt)), [".lockfs", "team"])
        self.assertTrue(gone(t2))
        # B may still put its own locks into A's directory (mode 1777)
        self.assertEqual(errno_as(self.B, "mkdir", os.path.join(team, "b")), 0)
        self.assertEqual(errno_as(self.B, "rmdir", os.path.join(team, "b")), 0)
        self.assertEqual(errno_as(self.A, "rename", team, t2), 0, "A renames its dir")
        self.assertEqual(sorted(os.listdir(self.m.mnt)), [".lockfs", "team2"])
        self.assertEqual(errno_as(self.B, "rmdir", t2), errno.EPERM,
                         "the rule follows the directory to its new name")
        self.assertEqual(errno_as(self.A, "rmdir", t2), 0, "A removes its dir")
        self.assertTrue(gone(t2))
        # root may remove and rename anybody's directory
        self.assertEqual(errno_as(self.A, "mkdir", team), 0)
        os.rename(team, t3)
        os.rmdir(t3)
        self.assertEqual(sorted(os.listdir(self.m.mnt)), [".lockfs"])

    def test_owner_cannot_rename_dir_holding_its_own_lock(self):
        team = self.p("team")
        self.assertEqual(errno_as(self.A, "mkdir", team), 0)
        a = agent(self, self.A)
        a.ok("create", path=os.path.join(team, "a.lock"), data="{pid}")
        self.assertEqual(a.err("rename", path=team, dst=self.p("team2")), errno.EPERM)
        self.assertEqual(errno_as(self.A, "rename", team, self.p("team2")), errno.EPERM)
        self.assertTrue(gone(self.p("team2")))
        st = status(os.path.join(team, "a.lock"))
        self.assertEqual((st["lockfs"]["path"], st["lockfs"]["pid"]), ("/team/a.lock", a.pid))
        # an empty subdirectory counts as content too
        a.ok("unlink", path=os.path.join(team, "a.lock"))
        a.ok("mkdir", path=os.path.join(team, "sub"))
        self.assertEqual(a.err("rename", path=team, dst=self.p("team2")), errno.EPERM)
        a.ok("rename", path=os.path.join(team, "sub"), dst=self.p("sub"))
        self.assertEqual(a.err("rename", path=team, dst=self.p("team2")), 0,
                         "once empty again its creator may rename it")

    def check_cannot_move_roots_lock(self, ns_creator):
        ns, ns2 = self.p("ns"), self.p("ns2")
        if ns_creator:
            self.assertEqual(errno_as(ns_creator, "mkdir", ns), 0)
        else:
            os.mkdir(ns)
        lock = os.path.join(ns, "x.lock")
        h = Holder(lock)
        self.addCleanup(h.kill)
        self.assertTrue(h.ok, h.errno)
        before = status(lock)["lockfs"]
        r = subprocess.run(harness.as_user(["mv", ns, ns2], self.B), capture_output=True,
                           timeout=20)
        self.assertNotEqual(r.returncode, 0, "B moved a directory holding root's lock")
        self.assertEqual(errno_as(self.B, "rename", ns, ns2), errno.EPERM)
        self.assertEqual(sorted(os.listdir(self.m.mnt)), [".lockfs", "ns"])
        self.assertEqual(os.listdir(ns), ["x.lock"])
        lf = status(lock)["lockfs"]
        self.assertEqual((lf["path"], lf["pid"], lf["fence"]),
                         ("/ns/x.lock", h.pid, before["fence"]))
        # root may: the lock's path follows, holder and fence stay
        os.rename(ns, ns2)
        self.assertTrue(gone(lock))
        moved = os.path.join(ns2, "x.lock")
        lf = status(moved)["lockfs"]
        self.assertEqual((lf["path"], lf["pid"], lf["fence"]),
                         ("/ns2/x.lock", h.pid, before["fence"]))
        self.assertEqual(os.listdir(ns2), ["x.lock"])
        h.kill()
        wait_until(lambda: gone(moved), what="release of the moved lock on holder death")

    def test_user_cannot_move_roots_lock_in_own_dir(self):
        # the reviewer's attack, in a directory the attacker created itself
        self.check_cannot_move_roots_lock(self.B)

    def test_user_cannot_move_roots_lock_in_roots_dir(self):
        self.check_cannot_move_roots_lock(None)


class TestManyEntries(LockfsTestCase):

    def test_readdir_lists_own_children(self):
        # R1.3: each directory lists exactly its children, through many
        # READDIR requests, also after entries leave from the middle of the
        # list (unlink, rename between directories, holder exit, rmdir)
        a, b = agent(self), agent(self)
        d1, d2 = self.p("d1"), self.p("d2")
        os.mkdir(d1)
        os.mkdir(d2)
        want = {d1: set(), d2: set(), self.m.mnt: {".lockfs", "d1", "d2"}}
        for i in range(500):
            d = d1 if i % 2 == 0 else d2
            name = "lock-%03d-%s" % (i, "x" * (i % 40))
            (a if i % 3 else b).ok("create", path=os.path.join(d, name), data="{pid}")
            want[d].add(name)
        for sub in ("s1", "s2"):
            os.mkdir(os.path.join(d1, sub))
            want[d1].add(sub)
        create(os.path.join(d1, "s1", "inner"))
        want[os.path.join(d1, "s1")] = {"inner"}
        want[os.path.join(d1, "s2")] = set()

        def check(stage):
            for d, names in want.items():
                got = os.listdir(d)
                self.assertEqual(len(got), len(set(got)), f"{stage}: duplicates in {d}")
                self.assertEqual(set(got), names, f"{stage}: listing of {d}")
                with os.scandir(d) as it:
                    for e in it:
                        if e.name in names and e.name != ".lockfs":
                            self.assertEqual(e.is_dir(), os.path.isdir(os.path.join(d, e.name)))
        check("after creating")
        # a's own locks: unlink some, move some from d1 to d2
        own = sorted(n for n in want[d1] if n.startswith("lock-")
                     and int(n[5:8]) % 3)
        for k, n in enumerate(own):
            if k % 4 == 0:
                a.ok("unlink", path=os.path.join(d1, n))
                want[d1].discard(n)
            elif k % 4 == 1:
                a.ok("rename", path=os.path.join(d1, n), dst=os.path.join(d2, "mv-" + n))
                want[d1].discard(n)
                want[d2].add("mv-" + n)
        os.rmdir(os.path.join(d1, "s2"))
        want[d1].discard("s2")
        del want[os.path.join(d1, "s2")]
        check("after unlink, rename and rmdir")
        # b's locks vanish on its exit, from both directories at once
        b.kill()
        bnames = {n for d in (d1, d2) for n in want[d]
                  if n.startswith("lock-") and int(n[5:8]) % 3 == 0}
        self.assertGreater(len(bnames), 100)
        for d in (d1, d2):
            want[d] -= bnames
        wait_until(lambda: set(os.listdir(d1)) == want[d1] and
                   set(os.listdir(d2)) == want[d2], what="b's locks released on exit")
        check("after holder exit")
        a.kill()
        wait_until(lambda: os.listdir(d2) == [], what="a's locks released on exit")
        self.assertEqual(sorted(os.listdir(d1)), ["s1"])
        os.unlink(os.path.join(d1, "s1", "inner"))
        os.rmdir(os.path.join(d1, "s1"))
        os.rmdir(d1)
        os.rmdir(d2)
        self.assertEqual(sorted(os.listdir(self.m.mnt)), [".lockfs"])


class TestDepth(LockfsTestCase):
    MOUNT_OPTS = "max_depth=4"

    def test_max_depth(self):
        os.makedirs(self.p("a", "b", "c"))
        create(self.p("a", "b", "c", "x"))              # 4 components
        self.assertEqual(status(self.p("a", "b", "c", "x"))["lockfs"]["path"], "/a/b/c/x")
        os.mkdir(self.p("a", "b", "c", "d"))            # 4 components
        self.assertEqual(errno_of(create, self.p("a", "b", "c", "d", "x")),
                         errno.ENAMETOOLONG)
        self.assertEqual(errno_of(os.mkdir, self.p("a", "b", "c", "d", "e")),
                         errno.ENAMETOOLONG)
        self.assertEqual(os.listdir(self.p("a", "b", "c", "d")), [])
        # rename cannot push a lock too deep either
        self.assertEqual(errno_of(os.rename, self.p("a", "b", "c", "x"),
                                  self.p("a", "b", "c", "d", "x")), errno.ENAMETOOLONG)
        self.assertTrue(exists(self.p("a", "b", "c", "x")))


class TestMaxLocks(LockfsTestCase):
    MOUNT_OPTS = "max_locks=3"

    def test_max_locks(self):
        for n in ("a", "b", "c"):
            create(self.p(n))
        self.assertEqual(errno_of(create, self.p("d")), errno.ENOSPC)
        self.assertEqual(errno_of(os.mkdir, self.p("dir")), errno.ENOSPC)
        self.assertEqual(errno_of(os.open, self.p("e"), os.O_WRONLY | os.O_CREAT, 0o644),
                         errno.ENOSPC)
        self.assertEqual(sorted(os.listdir(self.m.mnt)), [".lockfs", "a", "b", "c"])
        os.unlink(self.p("b"))
        create(self.p("d"))
        self.assertEqual(status(self.p("d"))["lockfs"]["pid"], os.getpid())
        self.assertEqual(errno_of(create, self.p("e")), errno.ENOSPC)
        # a holder's death frees a slot too
        os.unlink(self.p("d"))
        h = Holder(self.p("h"))
        self.assertTrue(h.ok)
        self.assertEqual(errno_of(create, self.p("e")), errno.ENOSPC)
        h.kill()
        wait_until(lambda: gone(self.p("h")), what="release")
        create(self.p("e"))
        # directories count
        os.unlink(self.p("e"))
        os.mkdir(self.p("dir"))
        self.assertEqual(errno_of(create, self.p("f")), errno.ENOSPC)
        os.rmdir(self.p("dir"))
        create(self.p("f"))


class TestLockfsDir(LockfsTestCase):

    def test_layout(self):
        d = self.p(".lockfs")
        st = os.stat(d)
        self.assertTrue(stat.S_ISDIR(st.st_mode))
        self.assertEqual(sorted(os.listdir(d)), ["locks.json", "metrics"])
        for n in ("locks.json", "metrics"):
            self.assertTrue(stat.S_ISREG(os.stat(os.path.join(d, n)).st_mode))

    def locks(self):
        with open(self.p(".lockfs", "locks.json")) as f:
            doc = json.loads(f.read())
        self.assertIsInstance(doc, list)
        return doc

    def test_locks_json_live(self):
        self.assertEqual(self.locks(), [])
        h1 = Holder(self.p("one.lock"), content='{"pid": {pid}, "operation": "plan"}')
        self.addCleanup(h1.kill)
        os.mkdir(self.p("d"))
        h2 = Holder(self.p("d", "two"))
        self.addCleanup(h2.kill)
        doc = self.locks()
        self.assertEqual(sorted(e["lockfs"]["path"] for e in doc), ["/d/two", "/one.lock"])
        by = {e["lockfs"]["path"]: e for e in doc}
        self.assertEqual(by["/one.lock"]["pid"], h1.pid)
        self.assertEqual(by["/one.lock"]["operation"], "plan")
        self.assertEqual(by["/d/two"]["lockfs"]["pid"], h2.pid)
        self.assertEqual(by["/one.lock"]["lockfs"]["fence"],
                         status(self.p("one.lock"))["lockfs"]["fence"])
        h1.kill()
        wait_until(lambda: gone(self.p("one.lock")), what="release")
        self.assertEqual([e["lockfs"]["path"] for e in self.locks()], ["/d/two"])
        break_lock(self.p("d", "two"))              # root's rm of a live lock: EBUSY
        self.assertEqual(self.locks(), [])
        # jq works on it
        create(self.p("j"))
        r = subprocess.run(["jq", "-r", ".[].lockfs.path", self.p(".lockfs", "locks.json")],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "/j\n")

    def test_locks_json_many(self):
        a = agent(self)
        n = 1500
        for i in range(n):
            a.ok("create", path=self.p("lock-%04d" % i), data='{"pid": {pid}, "i": %d}' % i)
        with open(self.p(".lockfs", "locks.json"), "rb") as f:
            raw = f.read()
        self.assertGreater(len(raw), 256 * 1024)
        doc = json.loads(raw)
        self.assertEqual(len(doc), n)
        self.assertEqual(sorted(e["i"] for e in doc), list(range(n)))
        r = subprocess.run(["jq", "length", self.p(".lockfs", "locks.json")],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.stdout.strip(), str(n), r.stderr)
        a.kill()
        wait_until(lambda: len(self.locks()) == 0, what="all released")

    def test_metrics_format_and_counters(self):
        with open(self.p(".lockfs", "metrics")) as f:
            text = f.read()
        mm = parse_metrics(text)    # raises on any non-Prometheus line
        for k in ("lockfs_acquired_total", "lockfs_contended_total", "lockfs_expired_total",
                  "lockfs_locks_held", "lockfs_directories", "lockfs_waiters"):
            self.assertIn(k, mm)
        for c in ("unlink", "exit", "ttl", "root", "detached"):
            self.assertIn(f'lockfs_released_total{{cause="{c}"}}', mm)
        self.assertEqual(mm["lockfs_locks_held"], 0)
        h = Holder(self.p("x"))
        self.addCleanup(h.kill)
        os.mkdir(self.p("dd"))
        # contention the daemon sees: a write through a contender handle (an
        # O_EXCL create of a name the kernel has cached as existing is
        # answered EEXIST by the VFS without asking the daemon)
        fd = os.open(self.p("x"), os.O_WRONLY)
        try:
            self.assertEqual(errno_of(os.write, fd, b"mine"), errno.EEXIST)
        finally:
            os.close(fd)
        m2 = metrics(self.m)
        self.assertEqual(m2["lockfs_acquired_total"] - mm["lockfs_acquired_total"], 1)
        self.assertEqual(m2["lockfs_contended_total"] - mm["lockfs_contended_total"], 1)
        self.assertEqual(m2["lockfs_locks_held"], 1)
        self.assertEqual(m2["lockfs_directories"] - mm["lockfs_directories"], 1)
        h.release()
        wait_until(lambda: gone(self.p("x")), what="release")
        os.rmdir(self.p("dd"))
        m3 = metrics(self.m)
        self.assertEqual(m3["lockfs_locks_held"], 0)
        self.assertEqual(m3["lockfs_directories"], mm["lockfs_directories"])
        self.assertEqual(m3["lockfs_released_total{cause=\"exit\"}"] -
                         mm["lockfs_released_total{cause=\"exit\"}"], 1)
        self.assertEqual(m3["lockfs_waiters"], 0)
        # TYPE lines for the counters
        self.assertRegex(text, r"(?m)^# TYPE lockfs_acquired_total counter$")

    def test_fuse_request_counts_and_no_flush(self):
        """.lockfs/metrics counts FUSE requests by kind; a close sends no
        FLUSH (open files are noflush)."""
        def req(mm, op):
            return mm[f'lockfs_fuse_requests_total{{op="{op}"}}']
        before = metrics(self.m)
        for _ in range(5):
            fd = os.open(self.p("c.lock"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.close(fd)
            os.unlink(self.p("c.lock"))
        after = metrics(self.m)
        self.assertEqual(req(after, "create") - req(before, "create"), 5)
        self.assertEqual(req(after, "unlink") - req(before, "unlink"), 5)
        self.assertEqual(req(after, "flush") - req(before, "flush"), 0)
        self.assertGreaterEqual(req(after, "lookup") - req(before, "lookup"), 5)
        with open(self.p(".lockfs", "metrics")) as f:
            self.assertRegex(f.read(), r"(?m)^# TYPE lockfs_fuse_requests_total counter$")

    def test_read_only(self):
        d = self.p(".lockfs")
        denied = (errno.EACCES, errno.EPERM)
        self.assertIn(errno_of(create, os.path.join(d, "x")), denied)
        self.assertIn(errno_of(os.open, os.path.join(d, "y"), os.O_WRONLY | os.O_CREAT, 0o644),
                      denied)
        self.assertIn(errno_of(os.open, os.path.join(d, "metrics"), os.O_WRONLY), denied)
        self.assertIn(errno_of(os.open, os.path.join(d, "locks.json"), os.O_RDWR), denied)
        self.assertIn(errno_of(os.unlink, os.path.join(d, "metrics")), denied)
        self.assertIn(errno_of(os.unlink, os.path.join(d, "locks.json")), denied)
        self.assertNotEqual(errno_of(os.mkdir, os.path.join(d, "x")), 0)
        self.assertNotEqual(errno_of(os.rmdir, d), 0)
        self.assertNotEqual(errno_of(os.rename, d, self.p("elsewhere")), 0)
        self.assertNotEqual(errno_of(os.rename, os.path.join(d, "metrics"), self.p("m")), 0)
        self.assertNotEqual(errno_of(os.chmod, os.path.join(d, "metrics"), 0o666), 0)
        self.assertNotEqual(errno_of(os.utime, os.path.join(d, "metrics"), None), 0)
        self.assertIn(errno_of(os.symlink, "x", os.path.join(d, "s")), denied)
        self.assertNotEqual(errno_of(create, d), 0)
        # a lock cannot be moved into it
        create(self.p("mv"))
        self.assertNotEqual(errno_of(os.rename, self.p("mv"), os.path.join(d, "mv")), 0)
        self.assertTrue(exists(self.p("mv")))
        self.assertEqual(sorted(os.listdir(d)), ["locks.json", "metrics"])
        r = subprocess.run(["sh", "-c", f"echo x > {d}/metrics"], capture_output=True,
                           timeout=20)
        self.assertNotEqual(r.returncode, 0)
        self.assertTrue(parse_metrics(open(os.path.join(d, "metrics")).read()))


class TestRename(LockfsTestCase):
    MOUNT_OPTS = "allow_other"

    def test_holder_renames_to_free_name(self):
        a = agent(self)
        src, dst = self.p("x.lock"), self.p("y.lock")
        a.ok("create", path=src, data='{"pid": {pid}, "operation": "plan"}')
        before = status(src)
        a.ok("rename", path=src, dst=dst)
        names = os.listdir(self.m.mnt)
        self.assertIn("y.lock", names)
        self.assertNotIn("x.lock", names)
        self.assertTrue(gone(src))
        after = status(dst)
        self.assertEqual(after["lockfs"]["fence"], before["lockfs"]["fence"])
        self.assertEqual(after["lockfs"]["pid"], a.pid)
        self.assertEqual(after["lockfs"]["path"], "/y.lock")
        self.assertEqual(after["operation"], "plan")
        # the old name is free again
        create(src)
        # into a directory
        os.mkdir(self.p("d"))
        a.ok("rename", path=dst, dst=self.p("d", "z"))
        self.assertEqual(status(self.p("d", "z"))["lockfs"]["path"], "/d/z")
        self.assertEqual(status(self.p("d", "z"))["lockfs"]["fence"], before["lockfs"]["fence"])
        # the holder still owns it under the new name: its death releases it
        a.kill()
        wait_until(lambda: gone(self.p("d", "z")), what="release of the renamed lock")

    def test_rename_onto_held_name(self):
        a = agent(self)
        b = Holder(self.p("b.lock"))
        self.addCleanup(b.kill)
        a.ok("create", path=self.p("a.lock"), data="{pid}")
        a.ok("create", path=self.p("a2.lock"), data="{pid}")
        self.assertEqual(a.err("rename", path=self.p("a.lock"), dst=self.p("b.lock")),
                         errno.EEXIST)
        self.assertEqual(a.err("rename", path=self.p("a.lock"), dst=self.p("a2.lock")),
                         errno.EEXIST, "not even onto the holder's own other lock")
        self.assertEqual(status(self.p("b.lock"))["lockfs"]["pid"], b.pid)
        self.assertEqual(status(self.p("a.lock"))["lockfs"]["pid"], a.pid)
        self.assertEqual(status(self.p("a2.lock"))["lockfs"]["pid"], a.pid)

    def test_non_holder_rename(self):
        a = agent(self, harness.TEST_USER)
        a.ok("create", path=self.p("x.lock"), data="{pid}")
        for other in (agent(self, harness.TEST_USER), agent(self, harness.TEST_USER2)):
            self.assertEqual(other.err("rename", path=self.p("x.lock"), dst=self.p("y.lock")),
                             errno.EPERM)
        self.assertTrue(exists(self.p("x.lock")))
        self.assertTrue(gone(self.p("y.lock")))
        self.assertEqual(status(self.p("x.lock"))["lockfs"]["pid"], a.pid)


if __name__ == "__main__":
    harness.main()
