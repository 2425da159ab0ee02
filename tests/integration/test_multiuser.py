#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Multi-user enforcement on an allow_other mount (issue 5, SPEC R3.4,
§6): two unprivileged test users, A (lockfs-test) and B (lockfs-test2).
B can read A's lock but cannot release (EBUSY: a live lock is never
stale), overwrite, truncate, rename or renew it; root's unlink gets EBUSY
too, root can break it (lockctl break), and that is logged. -o max_locks_per_uid
caps what one uid makes (locks, link names, directories: EDQUOT) and
-o max_content_per_uid the bytes of its locks, also across a restart;
-o user_break lets A break A's lock from another of A's processes, never
B."""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import LockfsTestCase, errno, errno_of  # noqa: E402
from lockfs_it import agent, assert_gone_now, break_lock  # noqa: E402

A, B = harness.TEST_USER, harness.TEST_USER2


class MultiUserCase(LockfsTestCase):
    MOUNT_OPTS = "allow_other"

    def setUp(self):
        super().setUp()
        self.uid_a = harness.ensure_user(A)[0]
        self.uid_b = harness.ensure_user(B)[0]

    def held_by_a(self, name="a.lock"):
        """An agent of user A holding name (content: its own pid)."""
        a = agent(self, user=A)
        a.ok("create", path=self.p(name), data="{pid}\n")
        return a

    def await_log(self, regex):
        """The daemon's stderr is read by another thread: a line logged
        before the unlink returned may arrive just after it."""
        harness.wait_until(lambda: re.search(regex, self.m.log()), what=f"log line {regex}")

    def holder_pid(self, name):
        with open(self.p(name)) as f:
            return json.load(f)["lockfs"]["pid"]


class TestOtherUser(MultiUserCase):

    def test_b_cannot_change_a_lock(self):
        a = self.held_by_a()
        p = self.p("a.lock")
        b = agent(self, user=B)
        self.assertEqual(b.err("unlink", path=p), errno.EBUSY)            # SPEC R3.4
        self.assertEqual(b.err("create", path=p), errno.EEXIST)           # O_EXCL
        self.assertEqual(b.ok("open_write", path=p, creat=True, trunc=True, data="mine"),
                         {"write": errno.EEXIST})                          # overwrite
        self.assertEqual(b.err("ftruncate", path=p), errno.EEXIST)        # truncate
        self.assertEqual(b.err("rename", path=p, dst=self.p("b.lock")), errno.EPERM)
        self.assertEqual(b.err("touch", path=p), errno.EPERM)             # renew
        self.assertEqual(b.err("chmod", path=p, mode=0o600), errno.EPERM)
        self.assertEqual(b.err("chown", path=p, uid=self.uid_b, gid=-1), errno.EPERM)
        doc = json.loads(b.ok("read", path=p))                            # status: yes
        self.assertEqual(doc["lockfs"]["pid"], a.pid)
        self.assertEqual(doc["lockfs"]["user"], A)
        self.assertEqual(doc["lockfs"]["uid"], self.uid_a)
        self.assertEqual(doc["pid"], a.pid)
        st = os.stat(p)
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (self.uid_a, 0o644))
        with open(self.p(".lockfs", "locks.json")) as f:
            self.assertEqual([d["lockfs"]["user"] for d in json.load(f)], [A])

    def test_same_uid_other_process_cannot_release_either(self):
        self.held_by_a()
        a2 = agent(self, user=A)
        self.assertEqual(a2.err("unlink", path=self.p("a.lock")), errno.EBUSY)
        self.assertEqual(a2.err("create", path=self.p("a.lock")), errno.EEXIST)

    def test_root_breaks_and_it_is_logged(self):
        a = self.held_by_a()
        self.assertEqual(errno_of(os.unlink, self.p("a.lock")), errno.EBUSY)
        fence = break_lock(self.p("a.lock"))
        assert_gone_now(self, self.p("a.lock"))
        self.await_log(rf"force-unlock of /a.lock \(fence {fence}, held by pid "
                       rf"{a.pid} .* uid {self.uid_a}\) by pid {os.getpid()} uid 0")
        b = agent(self, user=B)
        b.ok("create", path=self.p("a.lock"))     # free again, for anyone


class TestPerUidCap(MultiUserCase):
    MOUNT_OPTS = "allow_other,max_locks_per_uid=2"

    def test_third_lock_of_a_uid_is_edquot(self):
        a = self.held_by_a("1.lock")
        a.ok("create", path=self.p("2.lock"), data="{pid}\n")
        self.assertEqual(a.err("create", path=self.p("3.lock")), errno.EDQUOT)
        self.assertFalse(os.path.exists(self.p("3.lock")), "nothing created")
        a2 = agent(self, user=A)                  # per uid, not per process
        self.assertEqual(a2.err("create", path=self.p("4.lock")), errno.EDQUOT)
        b = agent(self, user=B)                   # other users are not affected
        b.ok("create", path=self.p("b1.lock"))
        b.ok("create", path=self.p("b2.lock"))
        for i in range(5):                         # nor is root
            os.close(os.open(self.p(f"r{i}.lock"), os.O_WRONLY | os.O_CREAT | os.O_EXCL))
        a.ok("unlink", path=self.p("1.lock"))      # a release makes room
        a2.ok("create", path=self.p("3.lock"), data="{pid}\n")
        self.assertEqual(self.holder_pid("3.lock"), a2.pid)


class TestQuotaCoversEverything(MultiUserCase):
    """Issue 11 point 5, the review's case: with 3 per uid and room for 200,
    one user's directories and names stop at 3 and the other user still
    creates."""
    MOUNT_OPTS = "allow_other,max_locks_per_uid=3,max_locks=200"

    def test_dirs_links_and_locks_stop_at_the_cap(self):
        a = self.held_by_a("a.lock")
        made, refused = 1, set()
        for i in range(150):
            e = a.err("mkdir", path=self.p(f"d{i}"))
            made += e == 0
            refused.add(e)
        for i in range(47):
            e = a.err("link", path=self.p("a.lock"), dst=self.p(f"n{i}"))
            made += e == 0
            refused.add(e)
        for i in range(5):
            e = a.err("create", path=self.p(f"x{i}.lock"))
            made += e == 0
            refused.add(e)
        self.assertEqual(made, 3)
        self.assertEqual(refused, {0, errno.EDQUOT})
        b = agent(self, user=B)
        b.ok("create", path=self.p("victim.lock"))
        b.ok("mkdir", path=self.p("victim.d"))
        # a removal gives room back: a directory for a directory
        made_dirs = [n for n in os.listdir(self.m.mnt) if n.startswith("d")]
        self.assertEqual(len(made_dirs), 2)
        os.rmdir(self.p(made_dirs[0]))             # root may remove A's directory
        a.ok("create", path=self.p("y.lock"))
        self.assertEqual(a.err("mkdir", path=self.p("z")), errno.EDQUOT)

    def test_claims_stay_the_writers(self):
        """A claim of the agent's parent (root's process, as under su) is
        ignored: the locks stay A's, counted and shown as A's."""
        a = agent(self, user=A)
        for i in range(3):
            a.ok("create", path=self.p(f"c{i}.lock"), data="{ppid}\n")
        self.assertEqual(a.err("create", path=self.p("c3.lock")), errno.EDQUOT)
        with open(self.p(".lockfs", "locks.json")) as f:
            docs = json.load(f)
        self.assertEqual(sorted((d["lockfs"]["user"], d["lockfs"]["pid"]) for d in docs),
                         [(A, a.pid)] * 3)


class TestContentQuota(MultiUserCase):
    MOUNT_OPTS = "allow_other,max_content=1024,max_content_per_uid=2000"

    def test_write_past_the_cap_is_edquot_and_keeps_the_content(self):
        a = agent(self, user=A)
        a.ok("create", path=self.p("1.lock"), data="1" * 1024)
        a.ok("create", path=self.p("2.lock"), data="old")
        # 1024 + 1000 > 2000
        self.assertEqual(a.err("write", path=self.p("2.lock"), trunc=False, data="2" * 1000),
                         errno.EDQUOT)
        self.assertEqual(json.loads(a.ok("read", path=self.p("2.lock")))["content"], "old")
        self.assertEqual(a.err("ftruncate", path=self.p("2.lock"), size=1000), errno.EDQUOT)
        self.assertEqual(json.loads(a.ok("read", path=self.p("2.lock")))["content"], "old")
        a.ok("write", path=self.p("2.lock"), trunc=False, data="2" * 976)    # exactly 2000
        self.assertEqual(a.err("write", path=self.p("2.lock"), trunc=False, data="2" * 977),
                         errno.EDQUOT)
        b = agent(self, user=B)                    # other users are not affected
        b.ok("create", path=self.p("b.lock"), data="b" * 1024)
        b.ok("create", path=self.p("b2.lock"), data="b" * 976)
        # an overwrite (O_TRUNC) gives the old bytes back first
        a.ok("write", path=self.p("1.lock"), data="3" * 1024)
        # a release gives them back
        a.ok("unlink", path=self.p("1.lock"))
        a.ok("create", path=self.p("4.lock"), data="4" * 1024)
        self.assertEqual(a.err("create", path=self.p("5.lock"), data="5"), errno.EDQUOT)


class TestQuotaAcrossRestart(MultiUserCase):
    MOUNT_OPTS = ("allow_other,max_locks_per_uid=3,max_locks=200,max_content=1024,"
                  "max_content_per_uid=1536")

    def test_counts_survive_a_restart(self):
        a = agent(self, user=A)
        a.ok("mkdir", path=self.p("ad"))
        a.ok("create", path=self.p("ad", "a.lock"), data="{pid}\n")
        a.ok("link", path=self.p("ad", "a.lock"), dst=self.p("a.name"))
        self.assertEqual(a.err("mkdir", path=self.p("ad2")), errno.EDQUOT)
        b = agent(self, user=B)
        b.ok("create", path=self.p("b1.lock"), data="b" * 1024)
        self.m.crash()
        self.m.start()
        self.assertRegex(self.m.log(), r"restored 2 locks")
        # A is still at its limit, for each kind
        self.assertEqual(a.err("mkdir", path=self.p("ad2")), errno.EDQUOT)
        self.assertEqual(a.err("create", path=self.p("a2.lock")), errno.EDQUOT)
        self.assertEqual(a.err("link", path=self.p("a.name"), dst=self.p("a.3")),
                         errno.EDQUOT)
        # B's restored content still counts: 1024 + 600 > 1536
        b.ok("create", path=self.p("b2.lock"))
        self.assertEqual(b.err("write", path=self.p("b2.lock"), data="x" * 600), errno.EDQUOT)
        b.ok("write", path=self.p("b2.lock"), data="x" * 512)
        # and what A gives back after the restart is A's again
        a.ok("unlink", path=self.p("a.name"))
        a.ok("mkdir", path=self.p("ad2"))


class TestUserBreak(MultiUserCase):
    MOUNT_OPTS = "allow_other,user_break"

    def test_owner_uid_may_break_other_users_may_not(self):
        a = self.held_by_a()
        b = agent(self, user=B)
        self.assertEqual(b.err("break", path=self.p("a.lock")), errno.EPERM)
        a2 = agent(self, user=A)
        self.assertEqual(a2.err("unlink", path=self.p("a.lock")), errno.EBUSY)
        a2.ok("break", path=self.p("a.lock"))
        assert_gone_now(self, self.p("a.lock"))
        self.await_log(rf"force-unlock of /a.lock \(fence \d+, held by pid "
                       rf"{a.pid} .*\) by pid {a2.pid} uid {self.uid_a}")


class TestNoUserBreakByDefault(MultiUserCase):

    def test_without_user_break_only_root(self):
        self.held_by_a()
        a2 = agent(self, user=A)
        self.assertEqual(a2.err("break", path=self.p("a.lock")), errno.EPERM)
        self.assertEqual(a2.err("unlink", path=self.p("a.lock")), errno.EBUSY)
        self.assertEqual(errno_of(os.stat, self.p("a.lock")), 0)


if __name__ == "__main__":
    harness.main()
