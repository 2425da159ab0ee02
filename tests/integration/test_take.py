# SPDX-License-Identifier: MIT
"""Taking a lock (SPEC R2.1, R2.2, R2.4): every way of creating a free name
takes it for the calling process, whatever the client (syscalls, bash,
Node sync and async, Python); on a held name exclusive creates fail with
EEXIST and non-exclusive opens give a contender handle whose writes and
truncations fail with EEXIST and change nothing; reading a held lock works
for anyone who can see the mount; the holder itself may rewrite it."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import (TEST_USER, TEST_USER2, Holder, LockfsTestCase, as_user,  # noqa: E402
                     errno, errno_of, wait_until)

USER_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
TIMEOUT = 30

# Takes argv[1] in the way argv[2] names, prints "ok PID" or "err ERRNO",
# then on success holds (stays alive) until stdin is closed.
PY_TAKER = r"""
import os, sys
path, how = sys.argv[1], sys.argv[2]
W = os.O_WRONLY
try:
    if how in ("excl", "trunc", "creat"):
        flags = W | os.O_CREAT | {"excl": os.O_EXCL, "trunc": os.O_TRUNC, "creat": 0}[how]
        fd = os.open(path, flags, 0o644)
        os.close(fd)
    elif how == "excl+write":
        fd = os.open(path, W | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, b"%d\n" % os.getpid())
        os.close(fd)
    elif how in ("trunc+write", "creat+write", "wronly+write", "rdwr+write"):
        flags = {"trunc+write": W | os.O_CREAT | os.O_TRUNC, "creat+write": W | os.O_CREAT,
                 "wronly+write": W, "rdwr+write": os.O_RDWR}[how]
        fd = os.open(path, flags, 0o644)
        try:
            os.write(fd, b"%d\n" % os.getpid())
        finally:
            os.close(fd)
    elif how in ("x", "w"):
        with open(path, how) as f:
            f.write("%d\n" % os.getpid())
    else:
        raise SystemExit("unknown how " + how)
except OSError as e:
    print("err", e.errno, flush=True)
    sys.exit(1)
print("ok", os.getpid(), flush=True)
sys.stdin.read()
"""

# Node: NODE_HOW = sync | async; NODE_FLAG = "" (default 'w') or "wx".
NODE_TAKER = r"""
const fs = require('fs');
const p = process.env.LOCK_PATH;
const opts = process.env.NODE_FLAG ? { flag: process.env.NODE_FLAG } : undefined;
const data = JSON.stringify({ pid: process.pid });
function held() {
  console.log('ok', process.pid);
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}
function failed(e) {
  console.log('err', e.code);
  process.exit(1);
}
if (process.env.NODE_HOW === 'sync') {
  try { fs.writeFileSync(p, data, opts); } catch (e) { failed(e); }
  held();
} else {
  fs.promises.writeFile(p, data, opts).then(held, failed);
}
"""

BASH_TAKE = 'echo $$ > "$1" || exit 1; echo ok $$; read -r _ || true'
BASH_TAKE_NOCLOBBER = 'set -o noclobber; echo $$ > "$1" || exit 1; echo ok $$; read -r _ || true'


def status(path):
    with open(path) as f:
        return json.load(f)


def stable(st):
    """Status without the fields that change with time alone."""
    st = json.loads(json.dumps(st))
    st.get("lockfs", {}).pop("age_ms", None)
    return st


class Taker:
    """A client process that tries to take a name; on success it stays
    alive (holding) until release()."""

    def __init__(self, argv, env=None):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True,
                                     env=dict(os.environ, **(env or {})))
        self.line = self.proc.stdout.readline().split()
        self.err = None

    @property
    def ok(self):
        return self.line[:1] == ["ok"]

    @property
    def pid(self):
        return int(self.line[1])

    def release(self):
        """Let the client exit (closing its stdin); return its exit status."""
        if self.err is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc.stdout.close()
            self.err = self.proc.stderr.read()
            self.proc.stderr.close()
        return self.proc.returncode

    def describe(self):
        if self.proc.poll() is not None:
            self.release()
        return f"line={self.line} stderr={self.err or ''}"


def py_taker(path, how):
    return Taker([sys.executable, "-c", PY_TAKER, path, how])


def node_taker(path, how, flag=""):
    return Taker(["node", "-e", NODE_TAKER],
                 env={"LOCK_PATH": path, "NODE_HOW": how, "NODE_FLAG": flag})


def bash_taker(path, script):
    return Taker(["bash", "-c", script, "bash", path])


class TakeFreeName(LockfsTestCase):
    """R2.1: each way of creating a free name takes it for the caller."""

    def check_taken(self, taker, name, comm=None):
        self.addCleanup(taker.release)
        self.assertTrue(taker.ok, taker.describe())
        self.assertEqual(taker.pid, taker.proc.pid, "reported pid is the client process")
        st = status(self.p(name))
        self.assertEqual(st["lockfs"]["pid"], taker.pid, f"holder in status {st}")
        self.assertEqual(st["pid"], taker.pid)
        self.assertEqual(st["lockfs"]["path"], "/" + name)
        self.assertIn(st["lockfs"]["how"], ("creator", "claim"))
        if comm:
            self.assertEqual(st["lockfs"]["comm"], comm)
        # Held means: nobody else can take it now.
        self.assertEqual(errno_of(os.open, self.p(name), os.O_WRONLY | os.O_CREAT | os.O_EXCL),
                         errno.EEXIST)
        # And the taker's exit releases it (it wrote no claim for anyone else).
        self.assertEqual(taker.release(), 0, taker.err)
        wait_until(lambda: not os.path.exists(self.p(name)), what=f"{name} released on exit")
        return st

    def test_os_open_creat_excl(self):
        self.check_taken(py_taker(self.p("excl"), "excl"), "excl")

    def test_os_open_creat_trunc(self):
        self.check_taken(py_taker(self.p("trunc"), "trunc"), "trunc")

    def test_os_open_creat_alone(self):
        self.check_taken(py_taker(self.p("creat"), "creat"), "creat")

    def test_os_open_excl_then_write_pid(self):
        st = self.check_taken(py_taker(self.p("excl-w"), "excl+write"), "excl-w")
        self.assertEqual(st["lockfs"]["how"], "creator")

    def test_os_open_creat_then_write_pid(self):
        self.check_taken(py_taker(self.p("creat-w"), "creat+write"), "creat-w")

    def test_bash_redirect(self):
        self.check_taken(bash_taker(self.p("sh.lock"), BASH_TAKE), "sh.lock", comm="bash")

    def test_bash_noclobber_redirect(self):
        self.check_taken(bash_taker(self.p("nc.lock"), BASH_TAKE_NOCLOBBER), "nc.lock",
                         comm="bash")

    def test_node_write_file_sync(self):
        self.check_taken(node_taker(self.p("node-sync"), "sync"), "node-sync", comm="node")

    def test_node_write_file_sync_wx(self):
        self.check_taken(node_taker(self.p("node-sync-wx"), "sync", "wx"), "node-sync-wx",
                         comm="node")

    def test_node_promises_write_file(self):
        # The calls run on a libuv worker thread; the holder is the process (R3.1).
        self.check_taken(node_taker(self.p("node-async"), "async"), "node-async", comm="node")

    def test_node_promises_write_file_wx(self):
        self.check_taken(node_taker(self.p("node-async-wx"), "async", "wx"), "node-async-wx",
                         comm="node")

    def test_python_open_x(self):
        self.check_taken(py_taker(self.p("py-x"), "x"), "py-x")

    def test_python_open_w(self):
        self.check_taken(py_taker(self.p("py-w"), "w"), "py-w")

    def test_dot_name_in_subdirectory(self):
        os.mkdir(self.p("d"))
        self.check_taken(py_taker(self.p("d", ".lock"), "x"), "d/.lock")


HOLDER_CONTENT = '{"pid": {pid}, "owner": "holder-test"}\n'


class ContendHeldName(LockfsTestCase):
    """R2.2: on a name held by another process, exclusive creates fail with
    EEXIST; non-exclusive opens succeed but every write/truncate through them
    fails with EEXIST; nothing about the lock changes."""

    def setUp(self):
        super().setUp()
        self.path = self.p("held.lock")
        self.holder = Holder(self.path, content=HOLDER_CONTENT)
        self.addCleanup(self.holder.kill)
        self.assertTrue(self.holder.ok)
        self.before = stable(status(self.path))
        self.assertEqual(self.before["lockfs"]["pid"], self.holder.pid)
        self.assertEqual(self.before["owner"], "holder-test")

    def assertUnchanged(self):
        after = stable(status(self.path))
        self.assertEqual(after, self.before, "a contender changed the lock")
        self.assertEqual(after["owner"], "holder-test", "content was cleared or replaced")
        self.assertIsNone(self.holder.proc.poll(), "holder died")

    def refused(self, taker, expect):
        rc = taker.release()
        self.assertEqual(taker.line, ["err", str(expect)], f"stderr: {taker.err}")
        self.assertNotEqual(rc, 0)
        self.assertUnchanged()

    # Exclusive creates: EEXIST at create.

    def test_os_open_excl(self):
        self.assertEqual(errno_of(os.open, self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                                  0o644), errno.EEXIST)
        self.assertUnchanged()

    def test_os_open_excl_other_process(self):
        self.refused(py_taker(self.path, "excl"), errno.EEXIST)

    def test_python_open_x(self):
        self.refused(py_taker(self.path, "x"), errno.EEXIST)

    def test_node_wx_sync(self):
        self.refused(node_taker(self.path, "sync", "wx"), "EEXIST")

    def test_node_wx_async(self):
        self.refused(node_taker(self.path, "async", "wx"), "EEXIST")

    def test_bash_noclobber(self):
        r = subprocess.run(["bash", "-c", 'set -o noclobber; echo $$ > "$1"', "bash", self.path],
                           capture_output=True, text=True, timeout=TIMEOUT)
        self.assertNotEqual(r.returncode, 0)
        self.assertUnchanged()

    # Non-exclusive opens: the write fails with EEXIST and O_TRUNC is ignored.

    def test_os_open_creat_trunc_write(self):
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            self.assertUnchanged()      # the open's O_TRUNC cleared nothing
            self.assertEqual(errno_of(os.write, fd, b"%d\n" % os.getpid()), errno.EEXIST)
            self.assertEqual(errno_of(os.write, fd, b"again"), errno.EEXIST)
        finally:
            os.close(fd)
        self.assertUnchanged()

    def test_non_exclusive_opens_other_process(self):
        for how in ("trunc+write", "creat+write", "wronly+write", "rdwr+write"):
            with self.subTest(how=how):
                self.refused(py_taker(self.path, how), errno.EEXIST)

    def test_python_open_w(self):
        self.refused(py_taker(self.path, "w"), errno.EEXIST)

    def test_python_open_w_in_process(self):
        with self.assertRaises(OSError) as cm:
            with open(self.path, "w") as f:
                f.write("mine\n")
        self.assertEqual(cm.exception.errno, errno.EEXIST)
        self.assertUnchanged()

    def test_node_write_file_sync(self):
        self.refused(node_taker(self.path, "sync"), "EEXIST")

    def test_node_write_file_async(self):
        self.refused(node_taker(self.path, "async"), "EEXIST")

    def test_bash_redirect(self):
        r = subprocess.run(["bash", "-c", 'echo x > "$1"', "bash", self.path],
                           capture_output=True, text=True, timeout=TIMEOUT)
        self.assertNotEqual(r.returncode, 0, "bash > on a held lock must fail")
        self.assertIn("File exists", r.stderr)
        self.assertUnchanged()

    def test_bash_append_redirect(self):
        r = subprocess.run(["bash", "-c", 'echo x >> "$1"', "bash", self.path],
                           capture_output=True, text=True, timeout=TIMEOUT)
        self.assertNotEqual(r.returncode, 0)
        self.assertUnchanged()

    def test_ftruncate_through_contender_handle(self):
        for flags in (os.O_WRONLY, os.O_RDWR, os.O_WRONLY | os.O_CREAT):
            with self.subTest(flags=flags):
                fd = os.open(self.path, flags, 0o644)
                try:
                    self.assertEqual(errno_of(os.ftruncate, fd, 0), errno.EEXIST)
                    self.assertEqual(errno_of(os.ftruncate, fd, 100), errno.EEXIST)
                finally:
                    os.close(fd)
                self.assertUnchanged()

    def test_truncate_by_path(self):
        self.assertEqual(errno_of(os.truncate, self.path, 0), errno.EEXIST)
        self.assertUnchanged()

    def test_contender_handle_reads_status(self):
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            data = b""
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                data += chunk
        finally:
            os.close(fd)
        st = json.loads(data)
        self.assertEqual(st["lockfs"]["pid"], self.holder.pid)
        self.assertUnchanged()

    # R2.4: read-only opens always work.

    def test_read_only_as_root(self):
        with open(self.path) as f:
            st = json.load(f)
        self.assertEqual(st["lockfs"]["pid"], self.holder.pid)
        self.assertEqual(st["owner"], "holder-test")
        fd = os.open(self.path, os.O_RDONLY)
        os.close(fd)
        self.assertUnchanged()


READ_AS_USER = r"""
import json, os, sys
try:
    with open(sys.argv[1]) as f:
        print(json.load(f)["lockfs"]["pid"])
except OSError as e:
    print("err", e.errno)
"""


class ReadAsOtherUser(LockfsTestCase):
    """R2.4 for a non-root reader (the mount allows other users)."""

    MOUNT_OPTS = "allow_other"

    def read_as(self, path, user):
        r = subprocess.run(as_user([USER_PYTHON, "-c", READ_AS_USER, path], user),
                           capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.strip()

    def test_non_root_reads_root_held_lock(self):
        h = Holder(self.p("root.lock"))
        self.addCleanup(h.kill)
        self.assertTrue(h.ok)
        self.assertEqual(self.read_as(self.p("root.lock"), TEST_USER), str(h.pid))

    def test_non_root_reads_other_users_lock(self):
        # TEST_USER2 takes a lock at the root (directories are 01777).
        uid2, _ = harness.ensure_user(TEST_USER2)
        t = Taker(as_user([USER_PYTHON, "-c", PY_TAKER, self.p("u2.lock"), "x"], TEST_USER2))
        self.addCleanup(t.release)
        self.assertTrue(t.ok, t.describe())
        st = status(self.p("u2.lock"))
        self.assertEqual(st["lockfs"]["pid"], t.pid)
        self.assertEqual(st["lockfs"]["uid"], uid2)
        self.assertEqual(os.stat(self.p("u2.lock")).st_uid, uid2)
        self.assertEqual(self.read_as(self.p("u2.lock"), TEST_USER), str(t.pid))


class HolderRewrites(LockfsTestCase):
    """The holder itself may write again through a new write-open."""

    def test_holder_rewrites_through_new_opens(self):
        me = os.getpid()
        path = self.p("mine")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, json.dumps({"pid": me, "note": "one"}).encode())
        os.close(fd)
        first = status(path)
        self.assertEqual(first["lockfs"]["pid"], me)
        self.assertEqual(first["note"], "one")

        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        os.write(fd, json.dumps({"pid": me, "note": "two"}).encode())
        os.close(fd)
        second = status(path)
        self.assertEqual(second["note"], "two")

        with open(path, "w") as f:          # O_CREAT|O_TRUNC on its own lock
            f.write(json.dumps({"pid": me, "note": "three"}))
        third = status(path)
        self.assertEqual(third["note"], "three")

        for st in (second, third):
            self.assertEqual(st["lockfs"]["pid"], me)
            self.assertEqual(st["lockfs"]["fence"], first["lockfs"]["fence"])
            self.assertEqual(st["lockfs"]["acquired_at"], first["lockfs"]["acquired_at"])
        # Exclusive create of its own held name is still EEXIST.
        self.assertEqual(errno_of(os.open, path, os.O_WRONLY | os.O_CREAT | os.O_EXCL),
                         errno.EEXIST)
        self.assertEqual(status(path)["note"], "three")

    def test_holder_truncate_clears_content(self):
        path = self.p("t")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, b"hello world")
        os.close(fd)
        self.assertEqual(status(path)["content"], "hello world")
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        os.close(fd)
        self.assertNotIn("content", status(path))
        self.assertEqual(status(path)["lockfs"]["pid"], os.getpid())


if __name__ == "__main__":
    harness.main()
