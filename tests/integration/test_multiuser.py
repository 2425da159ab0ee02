#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Multi-user enforcement on an allow_other mount (issue 5, SPEC R3.4,
§6): two unprivileged test users, A (lockfs-test) and B (lockfs-test2).
B can read A's lock but cannot release, overwrite, truncate, rename or
renew it; root can break it, and that is logged. -o max_locks_per_uid
caps what one uid holds (EDQUOT); -o user_break lets A break A's lock
from another of A's processes, never B."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import LockfsTestCase, errno, errno_of  # noqa: E402
from lockfs_it import agent, assert_gone_now  # noqa: E402

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

    def holder_pid(self, name):
        with open(self.p(name)) as f:
            return json.load(f)["lockfs"]["pid"]


class TestOtherUser(MultiUserCase):

    def test_b_cannot_change_a_lock(self):
        a = self.held_by_a()
        p = self.p("a.lock")
        b = agent(self, user=B)
        self.assertEqual(b.err("unlink", path=p), errno.EPERM)
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
        self.assertEqual(a2.err("unlink", path=self.p("a.lock")), errno.EPERM)
        self.assertEqual(a2.err("create", path=self.p("a.lock")), errno.EEXIST)

    def test_root_breaks_and_it_is_logged(self):
        a = self.held_by_a()
        os.unlink(self.p("a.lock"))
        assert_gone_now(self, self.p("a.lock"))
        self.assertRegex(self.m.log(), rf"force-unlock of /a.lock \(fence \d+, held by pid "
                                       rf"{a.pid} .*\) by pid {os.getpid()} uid 0")
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


class TestUserBreak(MultiUserCase):
    MOUNT_OPTS = "allow_other,user_break"

    def test_owner_uid_may_break_other_users_may_not(self):
        a = self.held_by_a()
        b = agent(self, user=B)
        self.assertEqual(b.err("unlink", path=self.p("a.lock")), errno.EPERM)
        a2 = agent(self, user=A)
        a2.ok("unlink", path=self.p("a.lock"))
        assert_gone_now(self, self.p("a.lock"))
        self.assertRegex(self.m.log(), rf"force-unlock of /a.lock \(fence \d+, held by pid "
                                       rf"{a.pid} .*\) by pid {a2.pid} uid {self.uid_a}")


class TestNoUserBreakByDefault(MultiUserCase):

    def test_without_user_break_only_root(self):
        self.held_by_a()
        a2 = agent(self, user=A)
        self.assertEqual(a2.err("unlink", path=self.p("a.lock")), errno.EPERM)
        self.assertEqual(errno_of(os.stat, self.p("a.lock")), 0)


if __name__ == "__main__":
    harness.main()
