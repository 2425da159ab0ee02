#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""SPEC §3 (R3.1-R3.5): who holds a lock, holder claims, detached locks,
release of claim-less locks at exit, and who may change a held lock."""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import LockfsTestCase, Holder, errno, errno_of, wait_until  # noqa: E402
from lockfs_it import (agent, break_lock, spawn, status, exists, gone, Agent,  # noqa: E402
                       DeleteWatch, metrics, released)

NODE_WORKER = r"""
const fs = require('fs');
const { Worker, isMainThread, workerData } = require('worker_threads');
const [path, mode] = process.argv.slice(1);
async function main() {
  if (mode === 'promises') {
    // fs.promises.* run on a libuv threadpool thread, not the main thread
    await fs.promises.writeFile(path, 'node promises\n');
  } else if (mode === 'callback') {
    await new Promise((res, rej) => fs.writeFile(path, JSON.stringify({pid: process.pid}),
      {flag: 'wx'}, e => e ? rej(e) : res()));
  } else if (mode === 'worker') {
    // a worker_threads thread (its own tid) does the create synchronously
    await new Promise((res, rej) => {
      const w = new Worker("require('fs').writeFileSync(require('worker_threads').workerData, 'w')",
                           {eval: true, workerData: path});
      w.on('error', rej); w.on('exit', c => c === 0 ? res() : rej(new Error('exit ' + c)));
    });
  }
  console.log('HELD ' + process.pid);
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}
main().catch(e => { console.log('ERR ' + (e.code || e.message)); process.exit(1); });
"""


def exit_barrier(tc, m):
    """Return once the daemon has handled the exit of a claim-less creator
    started after everything before: that lock vanishes."""
    p = m.path(".exit-barrier")
    r = subprocess.run(["sh", "-c", f"echo x > {p}"], timeout=20)
    tc.assertEqual(r.returncode, 0)
    wait_until(lambda: gone(p), what="exit barrier lock released")


class TestHolderIdentity(LockfsTestCase):

    def node_hold(self, mode):
        p = self.p("n.lock")
        proc, out = spawn(self, ["node", "-e", NODE_WORKER, p, mode])
        line = out.get(20, "node holder report")
        self.assertTrue(line.startswith("HELD "), line)
        pid = int(line.split()[1])
        self.assertEqual(pid, proc.pid)
        st = status(p)
        self.assertEqual(st["lockfs"]["pid"], proc.pid,
                         "holder must be the Node process, not a libuv/worker thread")
        self.assertEqual(st["pid"], proc.pid)
        self.assertEqual(st["lockfs"]["comm"], "node")
        # threads of node have tids != pid; make sure we did not get any of them
        tids = {int(t) for t in os.listdir(f"/proc/{proc.pid}/task")}
        self.assertGreater(len(tids), 1)
        proc.stdin.close()
        self.assertEqual(proc.wait(timeout=20), 0)
        wait_until(lambda: gone(p), what="node lock released on exit")

    def test_node_promises_writefile_on_libuv_thread(self):
        self.node_hold("promises")

    def test_node_callback_writefile_wx(self):
        self.node_hold("callback")

    def test_node_worker_thread_create(self):
        self.node_hold("worker")

    def test_shell_echo_pid(self):
        p = self.p("x.lock")
        proc, out = spawn(self, ["sh", "-c", f'echo $$ > {p}; echo ready; read x'])
        out.expect("ready")
        st = status(p)
        self.assertEqual(st["lockfs"]["pid"], proc.pid)
        self.assertEqual(st["pid"], proc.pid)
        self.assertIn(st["lockfs"]["how"], ("creator", "claim"))
        proc.stdin.close()
        proc.wait(timeout=20)
        wait_until(lambda: gone(p), what="lock released when the shell exits")

    def test_child_claims_parent_shell(self):
        p = self.p("x.lock")
        script = f'sh -c "echo \\$PPID > {p}"; echo ready; read x'
        proc, out = spawn(self, ["bash", "-c", script])
        out.expect("ready")        # the writing child has exited by now
        st = status(p)
        self.assertEqual(st["lockfs"]["pid"], proc.pid, "parent bash must hold")
        self.assertEqual(st["pid"], proc.pid)
        self.assertEqual(st["lockfs"]["how"], "claim")
        self.assertEqual(st["lockfs"]["comm"], "bash")
        self.assertNotIn("claim_ignored_pid", st["lockfs"])
        # the child's exit is processed: the lock survives it
        exit_barrier(self, self.m)
        self.assertTrue(exists(p), "lock must survive the writing child's exit")
        self.assertEqual(status(p)["lockfs"]["pid"], proc.pid)
        proc.stdin.close()
        proc.wait(timeout=20)
        wait_until(lambda: gone(p), what="lock released when the claiming bash exits")

    def test_json_claim_of_ancestor(self):
        p = self.p("state.lock")
        py = ("import json,os,sys; f=open(sys.argv[1],'w'); "
              "f.write(json.dumps({'pid': int(sys.argv[2]), 'operation': 'apply'})); f.close()")
        # bash -> sh -> python3: python names the bash (its grandparent or parent)
        script = f"sh -c \"{sys.executable} -c \\\"{py}\\\" {p} $$; true\"; echo ready; read x"
        proc, out = spawn(self, ["bash", "-c", script])
        out.expect("ready")
        st = status(p)
        self.assertEqual(st["lockfs"]["pid"], proc.pid)
        self.assertEqual(st["pid"], proc.pid)
        self.assertEqual(st["operation"], "apply")
        self.assertEqual(st["lockfs"]["how"], "claim")
        exit_barrier(self, self.m)
        self.assertTrue(exists(p))
        proc.stdin.close()
        proc.wait(timeout=20)
        wait_until(lambda: gone(p), what="lock released when the claimed ancestor exits")

    def _sibling(self):
        sib = subprocess.Popen(["sleep", "1000"])
        self.addCleanup(lambda: (sib.kill(), sib.wait()))
        return sib

    def check_foreign_claim(self, content):
        sib = self._sibling()
        p = self.p("x.lock")
        h = Holder(p, content=content.replace("SIB", str(sib.pid)))
        self.addCleanup(h.kill)
        self.assertTrue(h.ok, h.errno)
        st = status(p)
        self.assertEqual(st["lockfs"]["pid"], h.pid, "foreign claim must be ignored")
        self.assertEqual(st["pid"], h.pid)
        self.assertEqual(st["lockfs"]["how"], "creator")
        self.assertEqual(st["lockfs"].get("claim_ignored_pid"), sib.pid)
        # the named sibling dying does not release it ...
        sib.kill()
        sib.wait()
        exit_barrier(self, self.m)
        self.assertTrue(exists(p))
        # ... its real holder dying does
        h.kill()
        wait_until(lambda: gone(p), what="lock released on holder death")

    def test_decimal_claim_of_sibling_ignored(self):
        self.check_foreign_claim("SIB\n")

    def test_json_claim_of_sibling_ignored(self):
        self.check_foreign_claim('{"pid": SIB, "operation": "plan"}')

    def test_claim_of_own_child(self):
        # R3.3: the launcher's `cmd & echo $! > f` names the process it
        # started, which holds the lock from then on
        p = self.p("x.lock")
        proc, out = spawn(self, ["bash", "-c",
                                 f"sleep 1000 & echo $! > {p}; echo ready $!; read x"])
        child = int(out.expect("ready").split()[1])
        self.addCleanup(lambda: exists(f"/proc/{child}") and os.kill(child, 9))
        st = status(p)
        self.assertEqual(st["lockfs"]["pid"], child, "the claimed child must hold")
        self.assertEqual(st["pid"], child)
        self.assertEqual(st["lockfs"]["how"], "claim")
        self.assertNotIn("claim_ignored_pid", st["lockfs"])
        proc.stdin.close()
        proc.wait(timeout=20)
        exit_barrier(self, self.m)
        self.assertTrue(exists(p), "the lock must survive the launcher's exit")
        os.kill(child, 9)
        wait_until(lambda: gone(p), what="release when the claimed child dies")

    def test_detached_zero(self):
        p = self.p("d.lock")
        plain = self.p("plain.lock")
        # one process creates a detached lock and a plain one, then exits
        r = subprocess.run(["sh", "-c", f"echo 0 > {p}; echo hi > {plain}"], timeout=20)
        self.assertEqual(r.returncode, 0)
        wait_until(lambda: gone(plain), what="claim-less lock released at exit")
        self.assertTrue(exists(p), "detached lock must survive its creator's exit")
        st = status(p)
        self.assertEqual(st["lockfs"]["how"], "detached")
        self.assertIs(st["lockfs"]["liveness_known"], False)
        self.assertIsNone(st["lockfs"]["pid"])
        self.assertIsNone(st["pid"])
        # still taken: exclusive create fails
        self.assertEqual(errno_of(os.open, p, os.O_WRONLY | os.O_CREAT | os.O_EXCL),
                         errno.EEXIST)
        os.unlink(p)      # creator uid (root)
        self.assertTrue(gone(p))

    def test_detached_not_taken_over_by_same_uid(self):
        # R3.3a/R3.4: nobody holds a detached lock, not even another process
        # of its creator's uid (root here): no write, truncation or renewal
        p = self.p("d.lock")
        r = subprocess.run(["sh", "-c", f"echo 0 > {p}"], timeout=20)
        self.assertEqual(r.returncode, 0)
        exit_barrier(self, self.m)
        lf = status(p)["lockfs"]
        self.assertEqual(lf["how"], "detached")
        r = subprocess.run(["sh", "-c", f"echo $$ > {p}"], timeout=20, capture_output=True)
        self.assertNotEqual(r.returncode, 0, "same-uid process took over a detached lock")
        fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
        try:
            self.assertEqual(errno_of(os.write, fd, b"%d\n" % os.getpid()), errno.EEXIST,
                             "write through an O_WRONLY|O_TRUNC handle")
            self.assertEqual(errno_of(os.ftruncate, fd, 0), errno.EEXIST, "ftruncate")
        finally:
            os.close(fd)
        st = status(p)
        self.assertEqual(st["lockfs"]["renewed_at"], lf["renewed_at"], "renewed by a contender")
        # the creator's uid may renew it (touch), as dotlock tools do (R3.3a)
        self.assertEqual(errno_of(os.utime, p, None), 0, "utimens(NULL)")
        st = status(p)
        self.assertEqual(st.get("content"), "0\n", "content must stay the creator's")
        self.assertEqual(st["lockfs"]["how"], "detached")
        self.assertIsNone(st["lockfs"]["pid"])
        self.assertEqual(st["lockfs"]["fence"], lf["fence"])
        self.assertGreaterEqual(st["lockfs"]["renewed_at"], lf["renewed_at"])
        os.unlink(p)
        self.assertTrue(gone(p))

    def test_detached_whitespace_zero(self):
        p = self.p("d.lock")
        r = subprocess.run([sys.executable, "-c",
                            f"open({p!r},'w').write(' 0\\n\\t')"], timeout=20)
        self.assertEqual(r.returncode, 0)
        exit_barrier(self, self.m)
        self.assertTrue(exists(p))
        self.assertEqual(status(p)["lockfs"]["how"], "detached")

    def test_touch_released_at_exit(self):
        p = self.p("t.lock")
        r = subprocess.run(["touch", p], timeout=20)
        self.assertEqual(r.returncode, 0)
        wait_until(lambda: gone(p), what="touch-created lock released as touch exits")
        self.assertNotIn("t.lock", os.listdir(self.m.mnt))
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.close(fd)


class TestPermissions(LockfsTestCase):
    MOUNT_OPTS = "allow_other"

    def setUp(self):
        super().setUp()
        self.uid, self.gid = harness.ensure_user(harness.TEST_USER)
        self.uid2, self.gid2 = harness.ensure_user(harness.TEST_USER2)
        self.path = self.p("x.lock")
        self.holder = agent(self, harness.TEST_USER)
        self.holder.ok("create", path=self.path, data='{"pid": {pid}, "operation": "plan"}')
        st = status(self.path)
        self.assertEqual(st["lockfs"]["pid"], self.holder.pid)
        self.assertEqual(st["lockfs"]["uid"], self.uid)
        self.fence = st["lockfs"]["fence"]

    def assert_still_held(self, content_op="plan"):
        st = status(self.path)
        self.assertEqual(st["lockfs"]["pid"], self.holder.pid)
        self.assertEqual(st["lockfs"]["fence"], self.fence)
        self.assertEqual(st.get("operation"), content_op)

    def test_holder_write_touch_unlink(self):
        h = self.holder
        self.assertEqual(h.err("write", path=self.path,
                               data='{"pid": {pid}, "operation": "apply"}'), 0)
        self.assert_still_held("apply")
        st0 = status(self.path)["lockfs"]
        m0 = os.stat(self.path).st_mtime_ns
        wait_until(lambda: time_ms_after(st0["renewed_at"]), what="clock tick")
        self.assertEqual(h.err("touch", path=self.path), 0)
        st1 = status(self.path)["lockfs"]
        self.assertGreater(st1["renewed_at"], st0["renewed_at"])
        self.assertGreater(os.stat(self.path).st_mtime_ns, m0)
        # touch(1) run by the holder (a child process) also renews
        wait_until(lambda: time_ms_after(st1["renewed_at"]), what="clock tick")
        self.assertEqual(h.ok("exec", argv=["touch", self.path]), 0)
        self.assertGreater(status(self.path)["lockfs"]["renewed_at"], st1["renewed_at"])
        self.assertEqual(h.err("unlink", path=self.path), 0)
        self.assertTrue(gone(self.path))

    def test_holder_child_write_touch_unlink(self):
        h = self.holder
        r = h.call("write", path=self.path, data="child wrote", child=True)
        self.assertTrue(r["ok"], r)
        st = status(self.path)
        self.assertEqual(st["lockfs"]["pid"], h.pid, "a child's write must not move the lock")
        self.assertEqual(st.get("content"), "child wrote")
        st0 = st["lockfs"]
        m0 = os.stat(self.path).st_mtime_ns
        wait_until(lambda: time_ms_after(st0["renewed_at"]), what="clock tick")
        r = h.call("touch", path=self.path, child=True)
        self.assertTrue(r["ok"], r)
        self.assertGreater(status(self.path)["lockfs"]["renewed_at"], st0["renewed_at"])
        self.assertGreater(os.stat(self.path).st_mtime_ns, m0)
        # rm(1) from the holder's shell-like child
        self.assertEqual(h.ok("exec", argv=["rm", "-f", self.path]), 0)
        self.assertTrue(gone(self.path))

    def test_holder_child_unlink(self):
        r = self.holder.call("unlink", path=self.path, child=True)
        self.assertTrue(r["ok"], r)
        self.assertTrue(gone(self.path))

    def check_denied(self, other):
        p = self.path
        # SPEC R3.4: a live lock is never stale: EBUSY
        self.assertEqual(other.err("unlink", path=p), errno.EBUSY, "unlink")
        self.assertEqual(other.err("rename", path=p, dst=self.p("y.lock")), errno.EPERM,
                         "rename")
        self.assertEqual(other.err("chmod", path=p, mode=0o600), errno.EPERM, "chmod")
        self.assertEqual(other.err("chown", path=p, uid=self.uid, gid=self.gid),
                         errno.EPERM, "chown")
        self.assertEqual(other.err("touch", path=p), errno.EPERM, "utimens(NULL)")
        self.assertEqual(other.err("utime", path=p, atime=1, mtime=1), errno.EPERM,
                         "utimens(times)")
        self.assertNotEqual(other.ok("exec", argv=["touch", p]), 0, "touch(1) must fail")
        self.assertEqual(other.err("create", path=p, data="{pid}"), errno.EEXIST,
                         "exclusive create")
        r = other.ok("open_write", path=p, creat=True, trunc=True, data="{pid}")
        self.assertEqual(r["write"], errno.EEXIST, "write through contender handle")
        r = other.ok("open_write", path=p, data="stolen")
        self.assertEqual(r["write"], errno.EEXIST, "write through O_WRONLY open")
        self.assertEqual(other.err("ftruncate", path=p), errno.EEXIST, "ftruncate")
        self.assertFalse(self.p("y.lock") in os.listdir(self.m.mnt))
        self.assert_still_held()
        st = os.stat(p)
        self.assertEqual(st.st_mode & 0o7777, 0o644)
        self.assertEqual(st.st_uid, self.uid)

    def test_same_uid_other_process_denied(self):
        other = agent(self, harness.TEST_USER)
        self.check_denied(other)
        # the non-holder of the same uid exits: the lock stays
        self.assertEqual(other.exit(), 0)
        exit_barrier(self, self.m)
        self.assertTrue(exists(self.path))
        self.assert_still_held()

    def test_other_user_denied(self):
        self.check_denied(agent(self, harness.TEST_USER2))

    def test_other_user_cannot_unlink_detached(self):
        p = self.p("d.lock")
        a = Agent(harness.TEST_USER)
        a.ok("create", path=p, data="0\n")
        a.exit()
        exit_barrier(self, self.m)
        self.assertEqual(status(p)["lockfs"]["how"], "detached")
        self.assertEqual(status(p)["lockfs"]["uid"], self.uid)
        other = agent(self, harness.TEST_USER2)
        self.assertEqual(other.err("unlink", path=p), errno.EPERM)
        self.assertTrue(exists(p))
        same = agent(self, harness.TEST_USER)
        self.assertEqual(same.err("unlink", path=p), 0, "creator uid may unlink detached")
        self.assertTrue(gone(p))

    def test_detached_same_uid_cannot_take_over(self):
        # R3.3a/R3.4 for an unprivileged creator: another process of its uid
        # may unlink the detached lock (tested above) but not take it over
        p = self.p("d.lock")
        r = subprocess.run(harness.as_user(["sh", "-c", f"echo 0 > {p}"]), timeout=20)
        self.assertEqual(r.returncode, 0)
        exit_barrier(self, self.m)
        lf = status(p)["lockfs"]
        self.assertEqual((lf["how"], lf["uid"]), ("detached", self.uid))
        r = subprocess.run(harness.as_user(["sh", "-c", f"echo $$ > {p}"]), timeout=20,
                           capture_output=True)
        self.assertNotEqual(r.returncode, 0, "same-uid shell took over a detached lock")
        same = agent(self, harness.TEST_USER)
        fd = same.ok("open", path=p, flags=["O_WRONLY", "O_TRUNC"])
        self.assertEqual(same.err("fdwrite", fd=fd, data="{pid}\n"), errno.EEXIST, "write")
        self.assertEqual(same.err("fdtruncate", fd=fd, size=0), errno.EEXIST, "ftruncate")
        same.ok("close", fd=fd)
        self.assertEqual(same.ok("open_write", path=p, creat=True, trunc=True,
                                 data="{pid}")["write"], errno.EEXIST, "O_CREAT|O_TRUNC write")
        # renewing (touch) is allowed to the creator's uid, to nobody else
        other = agent(self, harness.TEST_USER2)
        self.assertEqual(other.err("touch", path=p), errno.EPERM, "utimens(NULL) by another uid")
        self.assertEqual(status(p)["lockfs"]["renewed_at"], lf["renewed_at"], "renewed by a contender")
        self.assertEqual(same.err("touch", path=p), 0, "utimens(NULL) by the creator's uid")
        st = status(p)
        self.assertEqual(st.get("content"), "0\n", "content must stay the creator's")
        self.assertEqual(st["lockfs"]["how"], "detached")
        self.assertIsNone(st["lockfs"]["pid"])
        self.assertEqual(st["lockfs"]["fence"], lf["fence"])
        self.assertGreater(st["lockfs"]["renewed_at"], lf["renewed_at"], "renewed by its creator")

    def test_root_unlinks_other_users_detached(self):
        # R3.3a: a detached lock of an unprivileged creator: other users get
        # EPERM, root may unlink it (a force unlock: logged, counted as root)
        p = self.p("d.lock")
        a = Agent(harness.TEST_USER)
        a.ok("create", path=p, data="0")
        self.assertEqual(a.exit(), 0)
        exit_barrier(self, self.m)
        lf = status(p)["lockfs"]
        self.assertEqual(lf["how"], "detached")
        self.assertIsNone(lf["pid"])
        self.assertEqual(lf["uid"], self.uid)
        self.assertEqual(os.stat(p).st_uid, self.uid)
        other = agent(self, harness.TEST_USER2)
        self.assertEqual(other.err("unlink", path=p), errno.EPERM)
        self.assertEqual(other.err("create", path=p, data="0"), errno.EEXIST)
        self.assertTrue(exists(p))
        m0 = metrics(self.m)
        os.unlink(p)
        self.assertTrue(gone(p))
        self.assertNotIn("d.lock", os.listdir(self.m.mnt))
        m1 = metrics(self.m)
        self.assertEqual(released(m1, "root") - released(m0, "root"), 1)
        self.assertEqual(released(m1, "detached"), released(m0, "detached"))
        rx = re.compile(r"force.?unlock", re.I)
        wait_until(lambda: any(rx.search(l) and "d.lock" in l for l in self.m.log_lines),
                   what="force-unlock log line naming the detached lock")
        # the name is free for anyone now
        self.assertEqual(other.err("create", path=p, data="{pid}"), 0)
        self.assertEqual(status(p)["lockfs"]["pid"], other.pid)

    def test_next_holder_facts_are_its_own(self):
        # R3.2: after the holder exits, a new process taking the name is
        # reported with its own pid, uid, user, comm and cmdline; nothing of
        # the previous holder (or its content) is left
        old = status(self.path)
        self.assertEqual(old["lockfs"]["comm"], os.path.basename(sys.executable)[:15])
        self.holder.kill()
        wait_until(lambda: gone(self.path), what="release on holder death")
        script = f'echo \'{{"pid": \'$$\'}}\' > {self.path}; echo ready; read x'
        proc, out = spawn(self, ["sh", "-c", script])
        out.expect("ready")
        self.assertNotEqual(proc.pid, self.holder.pid)
        st = status(self.path)
        lf = st["lockfs"]
        self.assertEqual(st["pid"], proc.pid)
        self.assertEqual(lf["pid"], proc.pid)
        self.assertEqual((lf["uid"], lf["user"]), (0, "root"))
        self.assertEqual(lf["comm"], "sh")
        self.assertEqual(lf["cmdline"], "sh -c " + script)
        self.assertEqual(lf["how"], "creator")
        self.assertIs(lf["liveness_known"], True)
        self.assertNotIn("claim_ignored_pid", lf)
        self.assertNotIn("operation", st)
        self.assertGreater(lf["fence"], self.fence)
        self.assertGreater(lf["acquired_at"], old["lockfs"]["acquired_at"])
        fst = os.stat(self.path)
        self.assertEqual((fst.st_uid, fst.st_gid), (0, 0))
        # the former holder's uid has no rights on it any more
        same = agent(self, harness.TEST_USER)
        self.assertEqual(same.err("unlink", path=self.path), errno.EBUSY)
        proc.stdin.close()
        proc.wait(timeout=20)
        wait_until(lambda: gone(self.path), what="release when the new holder exits")

    def test_root_force_unlock(self):
        # SPEC R3.4: root's unlink of a live lock is EBUSY; lockctl break it is
        self.assertEqual(errno_of(os.unlink, self.path), errno.EBUSY)
        self.assert_still_held()
        break_lock(self.path)
        self.assertTrue(gone(self.path))
        self.assertNotIn("x.lock", os.listdir(self.m.mnt))
        rx = re.compile(r"force.?unlock", re.I)
        wait_until(lambda: any(rx.search(l) and "x.lock" in l for l in self.m.log_lines),
                   what="force-unlock log line naming the path")
        # the former holder now gets ENOENT, and may take it again
        self.assertEqual(self.holder.err("unlink", path=self.path), errno.ENOENT)
        self.assertEqual(self.holder.err("create", path=self.path, data="{pid}"), 0)


class InvisibleCallerCase(LockfsTestCase):
    """The daemon runs in its own pid namespace, so the kernel reports every
    caller (root or not; no user namespace is involved) as pid 0."""

    def setUp(self):
        saved = harness.WRAPPER
        harness.WRAPPER = ["unshare", "--pid", "--fork", "--kill-child"] + saved
        try:
            super().setUp()
        finally:
            harness.WRAPPER = saved

    def assert_invisible_detached(self, p, uid, user):
        lf = status(p)["lockfs"]
        self.assertEqual(lf["how"], "detached")
        self.assertIsNone(lf["pid"])
        self.assertIs(lf["liveness_known"], False)
        self.assertEqual((lf["uid"], lf["user"]), (uid, user))
        self.assertEqual(os.stat(p).st_uid, uid)
        return lf


class TestInvisibleCaller(InvisibleCallerCase):
    """R3.5: locks can still be taken by invisible callers and are detached."""

    def test_invisible_caller_gets_detached_lock(self):
        p = self.p("ns.lock")
        r = subprocess.run(["sh", "-c", f"echo $$ > {p}"], timeout=20)
        self.assertEqual(r.returncode, 0, "a caller the daemon cannot see may take a lock")
        st = status(p)
        self.assertEqual(st["lockfs"]["how"], "detached")
        self.assertIsNone(st["lockfs"]["pid"])
        self.assertIs(st["lockfs"]["liveness_known"], False)
        self.assertEqual(st["lockfs"]["uid"], 0)
        self.assertEqual(errno_of(os.open, p, os.O_WRONLY | os.O_CREAT | os.O_EXCL),
                         errno.EEXIST)
        os.unlink(p)
        self.assertTrue(gone(p))


class TestInvisibleNonRootCaller(InvisibleCallerCase):
    """R3.5 for an unprivileged caller: its lock is detached like R3.3a,
    releasable by its uid (from any process) or root, EPERM for others."""
    MOUNT_OPTS = "allow_other"

    def setUp(self):
        super().setUp()
        self.uid, _ = harness.ensure_user(harness.TEST_USER)
        harness.ensure_user(harness.TEST_USER2)

    def test_non_root_invisible_caller(self):
        p = self.p("ns.lock")
        creator = agent(self, harness.TEST_USER)
        self.assertEqual(creator.err("create", path=p, data='{"pid": {pid}, "op": "x"}'), 0,
                         "an unprivileged caller the daemon cannot see may take a lock")
        self.assert_invisible_detached(p, self.uid, harness.TEST_USER)
        self.assertEqual(status(p)["op"], "x")
        # taken for everybody
        self.assertEqual(errno_of(os.open, p, os.O_WRONLY | os.O_CREAT | os.O_EXCL),
                         errno.EEXIST)
        other = agent(self, harness.TEST_USER2)
        self.assertEqual(other.err("unlink", path=p), errno.EPERM)
        self.assertEqual(other.err("touch", path=p), errno.EPERM)
        self.assertEqual(other.ok("open_write", path=p, creat=True, data="{pid}")["write"],
                         errno.EEXIST)
        self.assertEqual(status(p)["op"], "x")
        # its uid may release it from another process
        same = agent(self, harness.TEST_USER)
        self.assertEqual(same.err("unlink", path=p), 0)
        self.assertTrue(gone(p))
        # and root may release it
        self.assertEqual(creator.err("create", path=p, data="{pid}"), 0)
        self.assert_invisible_detached(p, self.uid, harness.TEST_USER)
        os.unlink(p)
        self.assertTrue(gone(p))
        self.assertEqual(creator.err("create", path=p, data="{pid}"), 0,
                         "the name is free again after root's unlink")


class TestInvisibleCallerTTL(InvisibleCallerCase):
    """R3.5: the detached lock of an invisible (unprivileged) caller runs
    out at its TTL, its creator still alive."""
    MOUNT_OPTS = "allow_other,ttl=1"

    def test_invisible_lock_expires(self):
        uid, _ = harness.ensure_user(harness.TEST_USER)
        p = self.p("ns.lock")
        creator = agent(self, harness.TEST_USER)
        self.assertEqual(creator.err("create", path=p, data="{pid}\n"), 0)
        t0 = time.monotonic()
        lf = self.assert_invisible_detached(p, uid, harness.TEST_USER)
        self.assertEqual(lf["ttl_s"], 1)
        self.assertIsNotNone(lf["expires_at"])
        w = DeleteWatch(self, p)
        rc, out = w.wait()
        dt = time.monotonic() - t0
        self.assertIn("DELETE_SELF", out)
        self.assertTrue(gone(p))
        self.assertGreater(dt, 0.8, "expired too early")
        self.assertIsNone(creator.proc.poll())
        self.assertEqual(released(metrics(self.m), "ttl"), 1)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.close(fd)


def time_ms_after(iso):
    """True once the wall clock (ms) is past the instant iso."""
    import time
    from lockfs_it import parse_iso
    return int(time.time() * 1000) > parse_iso(iso) + 2


if __name__ == "__main__":
    harness.main()
