#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""SPEC §4 (R4.1-R4.5): reading a lock gives its live JSON status."""
import json
import os
import socket
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import LockfsTestCase, Holder, errno, errno_of, wait_until  # noqa: E402
from lockfs_it import agent, spawn, status, parse_iso, ISO_RE, loads  # noqa: E402

TOOL_CONTENT = ('{"pid": {pid}, "created_at": "1999-01-01T00:00:00Z", "operation": "plan", '
                '"version": "1.2.3", "cwd": "/x"}')

LOCKFS_FIELDS = {
    "path": str, "pid": int, "uid": int, "user": str, "comm": str, "cmdline": str,
    "host": str, "acquired_at": str, "renewed_at": str, "age_ms": int, "ttl_s": int,
    "expires_at": (str, type(None)), "fence": int, "how": str, "liveness_known": bool,
}

NODE_READ = r"""
const fs = require('fs');
const p = process.argv[1];
const a = fs.readFileSync(p, 'utf-8');
fs.readFile(p, 'utf-8', (e, b) => {
  if (e) { console.error(e); process.exit(1); }
  fs.promises.readFile(p, 'utf-8').then(c => {
    process.stdout.write(JSON.stringify([a, b, c]));
  });
});
"""


def now_ms():
    return int(time.time() * 1000)


class TestStatus(LockfsTestCase):

    def hold_tool_lock(self, name="state.lock"):
        p = self.p(name)
        h = Holder(p, content=TOOL_CONTENT)
        self.addCleanup(h.kill)
        self.assertTrue(h.ok, f"create failed: errno {h.errno}")
        return p, h

    def test_tool_fields_and_truth(self):
        t0 = now_ms()
        p, h = self.hold_tool_lock()
        st = status(p)
        t1 = now_ms()
        self.assertEqual(st["pid"], h.pid)
        self.assertEqual(st["operation"], "plan")
        self.assertEqual(st["version"], "1.2.3")
        self.assertEqual(st["cwd"], "/x")
        self.assertNotEqual(st["created_at"], "1999-01-01T00:00:00Z")
        created = parse_iso(st["created_at"])
        self.assertLessEqual(t0 - 50, created)
        self.assertLessEqual(created, t1 + 50)
        self.assertEqual(set(st) - {"lockfs"}, {"pid", "created_at", "operation", "version",
                                                "cwd"})

    def test_lockfs_object(self):
        t0 = now_ms()
        p, h = self.hold_tool_lock()
        st = status(p)
        lf = st["lockfs"]
        for k, t in LOCKFS_FIELDS.items():
            self.assertIn(k, lf)
            if t is int:
                self.assertTrue(isinstance(lf[k], int) and not isinstance(lf[k], bool),
                                f"{k} must be an int: {lf[k]!r}")
            else:
                self.assertIsInstance(lf[k], t, k)
        self.assertEqual(lf["path"], "/state.lock")
        self.assertEqual(lf["pid"], h.pid)
        self.assertEqual(lf["uid"], 0)
        self.assertEqual(lf["user"], "root")
        with open(f"/proc/{h.pid}/comm") as f:
            self.assertEqual(lf["comm"], f.read().strip())
        self.assertTrue(lf["cmdline"].startswith(sys.executable + " -c"), lf["cmdline"])
        self.assertEqual(lf["host"], socket.gethostname())
        acq = parse_iso(lf["acquired_at"])
        self.assertLessEqual(t0 - 50, acq)
        self.assertEqual(lf["acquired_at"], st["created_at"])
        self.assertGreaterEqual(parse_iso(lf["renewed_at"]), acq)
        self.assertGreaterEqual(lf["age_ms"], 0)
        self.assertLessEqual(lf["age_ms"], now_ms() - t0 + 50)   # no older than the test
        # SPEC R5.3: a live holder's lock has no TTL (the mount's is for
        # detached locks); with a ttl_s of its own it has one
        self.assertEqual(lf["ttl_s"], 0)
        self.assertIsNone(lf["expires_at"])
        h2 = Holder(self.p("t.lock"), content='{"pid": {pid}, "ttl_s": 3600}')
        self.addCleanup(h2.kill)
        lf2 = status(self.p("t.lock"))["lockfs"]
        self.assertEqual(lf2["ttl_s"], 3600)
        exp = parse_iso(lf2["expires_at"])
        self.assertAlmostEqual(exp, parse_iso(lf2["renewed_at"]) + 3600 * 1000, delta=1000)
        self.assertGreater(lf["fence"], 0)
        self.assertEqual(lf["how"], "creator")
        self.assertIs(lf["liveness_known"], True)
        self.assertNotIn("claim_ignored_pid", lf)

    def test_cmdline_and_comm_of_shell(self):
        p = self.p("x.lock")
        script = f"echo $$ > {p}; echo ready; read x"
        proc, out = spawn(self, ["sh", "-c", script])
        out.expect("ready")
        lf = status(p)["lockfs"]
        self.assertEqual(lf["comm"], "sh")
        self.assertEqual(lf["cmdline"], "sh -c " + script)
        self.assertEqual(lf["pid"], proc.pid)

    def test_age_grows(self):
        p, h = self.hold_tool_lock()
        a1 = status(p)["lockfs"]["age_ms"]
        t = time.monotonic()
        wait_until(lambda: time.monotonic() - t > 0.03, what="30 ms to pass")
        a2 = status(p)["lockfs"]["age_ms"]
        self.assertGreaterEqual(a2 - a1, 25, (a1, a2))

    def test_fake_pid_not_shown(self):
        sib = subprocess.Popen(["sleep", "1000"])
        self.addCleanup(lambda: (sib.kill(), sib.wait()))
        p = self.p("x.lock")
        h = Holder(p, content=json.dumps({"pid": sib.pid, "operation": "apply"}))
        self.addCleanup(h.kill)
        st = status(p)
        self.assertEqual(st["pid"], h.pid)
        self.assertEqual(st["lockfs"]["pid"], h.pid)
        self.assertEqual(st["operation"], "apply")
        self.assertEqual(st["lockfs"]["claim_ignored_pid"], sib.pid)
        # a pid that does not exist at all is not shown either
        p2 = self.p("y.lock")
        h2 = Holder(p2, content='{"pid": 99999999}')
        self.addCleanup(h2.kill)
        st2 = status(p2)
        self.assertEqual(st2["pid"], h2.pid)
        self.assertEqual(st2["lockfs"]["pid"], h2.pid)

    def test_plain_text_content(self):
        p = self.p("x.lock")
        h = Holder(p, content="hello world")
        self.addCleanup(h.kill)
        st = status(p)
        self.assertEqual(st["content"], "hello world")
        self.assertEqual(st["pid"], h.pid)
        self.assertIn("lockfs", st)
        self.assertEqual(st["created_at"], st["lockfs"]["acquired_at"])
        # a JSON value that is not an object is text too
        p2 = self.p("y.lock")
        h2 = Holder(p2, content="[1, 2, 3]")
        self.addCleanup(h2.kill)
        self.assertEqual(status(p2)["content"], "[1, 2, 3]")
        # a pid file keeps its text
        p3 = self.p("z.lock")
        h3 = Holder(p3, content="{pid}\n")
        self.addCleanup(h3.kill)
        st3 = status(p3)
        self.assertEqual(st3.get("content", "").strip(), str(h3.pid))
        self.assertEqual(st3["pid"], h3.pid)

    def test_holder_fields_unchanged(self):
        fields = {"operation": "apply", "n": 1.5, "neg": -3, "count": 4096, "t": True,
                  "f": False, "none": None, "u": "\u00e9t\u00e9 \u2713 \"q\" \\ \n",
                  "nested": {"a": [1, {"b": None}, "x"], "e": {}}, "list": []}
        p = self.p("x.lock")
        h = Holder(p, content=json.dumps(dict(fields, pid="PID")).replace('"PID"', "{pid}"))
        self.addCleanup(h.kill)
        st = status(p)
        for k, v in fields.items():
            self.assertEqual(st.get(k), v, k)
        self.assertEqual(st["pid"], h.pid)

    def test_holder_lockfs_key_is_overridden(self):
        p = self.p("x.lock")
        h = Holder(p, content='{"pid": {pid}, "lockfs": {"pid": 1, "fence": 0}, "x": 1}')
        self.addCleanup(h.kill)
        st = status(p)      # also fails on a duplicate "lockfs" key
        self.assertEqual(st["lockfs"]["pid"], h.pid)
        self.assertGreater(st["lockfs"]["fence"], 0)
        self.assertEqual(st["x"], 1)

    def check_number_unchanged(self, literal):
        p = self.p("x.lock")
        h = Holder(p, content='{"pid": {pid}, "n": %s}' % literal)
        self.addCleanup(h.kill)
        with open(p) as f:
            raw = f.read()
        st = loads(raw)
        self.assertEqual(st["n"], json.loads(literal),
                         f"holder wrote {literal}, status shows {st['n']!r}")

    def test_safe_integer_unchanged(self):
        # Number.MAX_SAFE_INTEGER: what a Node tool can write exactly
        self.check_number_unchanged("9007199254740991")

    def test_int64_unchanged(self):
        # a 64-bit id written by a Go/Python tool: "unchanged" means exact
        self.check_number_unchanged("12345678901234567")

    def test_escaped_nul_unchanged(self):
        # "\u0000" is valid JSON inside strings and keys
        p = self.p("x.lock")
        h = Holder(p, content='{"pid": {pid}, "s": "a\\u0000b", "k\\u0000": 1}')
        self.addCleanup(h.kill)
        st = status(p)
        self.assertEqual(ascii(st.get("s")), ascii("a\x00b"))
        self.assertEqual(ascii(sorted(st)), ascii(sorted(["pid", "created_at", "lockfs", "s",
                                                          "k\x00"])))

    def test_partial_writes_assemble(self):
        p = self.p("x.lock")
        a = agent(self)
        a.ok("create", path=p, data='{"pid": {pid}, ')
        self.assertEqual(status(p)["content"], '{"pid": %d, ' % a.pid)
        a.ok("write", path=p, trunc=False, append=True, data='"operation": "plan"}')
        st = status(p)
        self.assertEqual(st["operation"], "plan")
        self.assertNotIn("content", st)
        # O_TRUNC by the holder replaces the content
        a.ok("write", path=p, data="short")
        self.assertEqual(status(p)["content"], "short")
        self.assertEqual(status(p)["lockfs"]["pid"], a.pid)
        # ftruncate by the holder shortens it
        a.ok("ftruncate", path=p, size=2)
        self.assertEqual(status(p)["content"], "sh")

    def test_large_status_read_whole(self):
        content = json.dumps({"pid": "PID", "blob": "z" * 65000}).replace('"PID"', "{pid}")
        self.assertLessEqual(len(content), 65536)
        p = self.p("big.lock")
        h = Holder(p, content=content)
        self.addCleanup(h.kill)
        with open(p) as f:
            self.assertEqual(len(loads(f.read())["blob"]), 65000)
        r = subprocess.run(["cat", p], capture_output=True, timeout=20)
        self.assertEqual(len(json.loads(r.stdout)["blob"]), 65000)
        r = subprocess.run(["node", "-e", NODE_READ, p], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        for doc in json.loads(r.stdout):
            self.assertEqual(len(json.loads(doc)["blob"]), 65000)
        with open(p, "rb") as f:
            fst = os.fstat(f.fileno())
            data = f.read()
        for s in (os.stat(p).st_size, fst.st_size):
            self.assertTrue(s == 0 or s == len(data),
                            f"st_size {s}, but a read returns {len(data)} bytes")

    def test_empty_lock(self):
        p = self.p("x.lock")
        h = Holder(p, content="")
        self.addCleanup(h.kill)
        st = status(p)
        self.assertEqual(st["pid"], h.pid)
        self.assertEqual(st["lockfs"]["pid"], h.pid)

    def test_all_readers_get_complete_json(self):
        # a status larger than a few read sizes
        big = {"pid": "{pid}", "operation": "plan", "notes": ["n%04d" % i for i in range(400)]}
        content = json.dumps(big).replace('"{pid}"', "{pid}")
        p = self.p("big.lock")
        h = Holder(p, content=content)
        self.addCleanup(h.kill)
        docs = {}
        r = subprocess.run(["cat", p], capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0)
        docs["cat"] = json.loads(r.stdout)
        r = subprocess.run(["jq", ".lockfs.pid", p], capture_output=True, text=True,
                           timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(int(r.stdout), h.pid)
        r = subprocess.run(["jq", "-c", ".", p], capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        docs["jq"] = json.loads(r.stdout)
        r = subprocess.run(["dd", f"if={p}", "bs=16", "status=none"], capture_output=True,
                           timeout=20)
        self.assertEqual(r.returncode, 0)
        docs["dd"] = json.loads(r.stdout.decode())
        with open(p) as f:
            docs["python"] = json.loads(f.read())
        # Python reading in small pieces through one open file
        with open(p, "rb", buffering=0) as f:
            chunks = []
            while True:
                b = f.read(7)
                if not b:
                    break
                chunks.append(b)
        docs["python7"] = json.loads(b"".join(chunks))
        r = subprocess.run(["node", "-e", NODE_READ, p], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        a, b, c = json.loads(r.stdout)
        docs["node readFileSync"] = json.loads(a)
        docs["node readFile"] = json.loads(b)
        docs["node promises.readFile"] = json.loads(c)
        for how, d in docs.items():
            self.assertEqual(d["pid"], h.pid, how)
            self.assertEqual(d["notes"], big["notes"], how)
            self.assertEqual(d["lockfs"]["fence"], docs["cat"]["lockfs"]["fence"], how)
            self.assertEqual(d["lockfs"]["path"], "/big.lock", how)

    def test_stat_size_mode(self):
        p, h = self.hold_tool_lock()
        for _ in range(3):
            st = os.stat(p)
            with open(p, "rb") as f:
                fst = os.fstat(f.fileno())
                data = f.read()
            self.assertTrue(stat.S_ISREG(st.st_mode))
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o644)
            self.assertEqual(st.st_mode, 0o100644)
            self.assertEqual(st.st_uid, 0)
            self.assertEqual(st.st_gid, 0)
            for s in (st.st_size, fst.st_size):
                self.assertTrue(s == 0 or s == len(data),
                                f"st_size {s}, but a read returns {len(data)} bytes")
            self.assertEqual(os.stat(p).st_size, st.st_size)
            self.assertEqual(json.loads(data)["lockfs"]["pid"], h.pid)

    def test_one_document_per_open(self):
        # R4.5: an open file reads one snapshot, rendered at open: a holder
        # rewriting and renewing between two reads of it neither tears the
        # document nor shows up in it; a fresh open shows the new state
        p = self.p("x.lock")
        a = agent(self)
        a.ok("create", path=p, data='{"pid": {pid}, "operation": "plan", "pad": "%s"}'
             % ("o" * 300))
        ref = status(p)
        fd = os.open(p, os.O_RDONLY)
        self.addCleanup(os.close, fd)
        head = os.read(fd, 16)
        self.assertEqual(len(head), 16)
        fst = os.fstat(fd)
        wait_until(lambda: now_ms() > parse_iso(ref["lockfs"]["renewed_at"]) + 20,
                   what="clock tick")
        a.ok("write", path=p, data='{"pid": {pid}, "operation": "apply", "x": [1, 2, 3]}')
        a.ok("touch", path=p)
        rest = b""
        while True:
            b = os.read(fd, 7)
            if not b:
                break
            rest += b
        data = head + rest
        doc = loads(data)
        for s in (fst.st_size, os.fstat(fd).st_size):
            self.assertTrue(s == 0 or s == len(data),
                            f"st_size {s}, but the open file reads {len(data)} bytes")
        new = status(p)
        self.assertEqual(new["operation"], "apply")
        self.assertGreater(new["lockfs"]["renewed_at"], ref["lockfs"]["renewed_at"])
        self.assertEqual(doc["operation"], "plan", "the open file shows a later state")
        self.assertNotIn("x", doc)
        # the same document a read at open time showed (only its age moves)
        self.assertGreaterEqual(doc["lockfs"].pop("age_ms"), ref["lockfs"].pop("age_ms"))
        self.assertEqual(doc, ref)
        self.assertEqual(new["lockfs"]["fence"], ref["lockfs"]["fence"])

    def test_mtime_is_last_renewal(self):
        p = self.p("x.lock")
        a = agent(self)
        a.ok("create", path=p, data="{pid}")
        st0 = os.stat(p)
        lf0 = status(p)["lockfs"]
        self.assertAlmostEqual(st0.st_mtime * 1000, parse_iso(lf0["renewed_at"]), delta=1000)
        wait_until(lambda: now_ms() > parse_iso(lf0["renewed_at"]) + 20, what="clock tick")
        a.ok("touch", path=p)
        st1 = os.stat(p)
        lf1 = status(p)["lockfs"]
        self.assertGreater(st1.st_mtime_ns, st0.st_mtime_ns)
        self.assertGreater(parse_iso(lf1["renewed_at"]), parse_iso(lf0["renewed_at"]))
        self.assertAlmostEqual(st1.st_mtime * 1000, parse_iso(lf1["renewed_at"]), delta=1000)
        # a write by the holder renews too
        wait_until(lambda: now_ms() > parse_iso(lf1["renewed_at"]) + 20, what="clock tick")
        a.ok("write", path=p, data="{pid}\n")
        self.assertGreater(os.stat(p).st_mtime_ns, st1.st_mtime_ns)
        # the acquisition time does not move
        self.assertEqual(status(p)["lockfs"]["acquired_at"], lf0["acquired_at"])

    def test_per_lock_ttl(self):
        p = self.p("x.lock")
        h = Holder(p, content='{"pid": {pid}, "ttl_s": 5}')
        self.addCleanup(h.kill)
        st = status(p)
        lf = st["lockfs"]
        self.assertEqual(lf["ttl_s"], 5)
        self.assertAlmostEqual(parse_iso(lf["expires_at"]),
                               parse_iso(lf["acquired_at"]) + 5000, delta=1000)
        self.assertAlmostEqual(parse_iso(lf["expires_at"]),
                               parse_iso(lf["renewed_at"]) + 5000, delta=5)

    def test_per_lock_ttl_zero_means_none(self):
        p = self.p("x.lock")
        h = Holder(p, content='{"pid": {pid}, "ttl_s": 0}')
        self.addCleanup(h.kill)
        lf = status(p)["lockfs"]
        self.assertEqual(lf["ttl_s"], 0)
        self.assertIsNone(lf["expires_at"])

    def test_content_dot_created_at_and_pid_forced_for_claim(self):
        # a child writes the tool JSON naming its parent shell: pid = the shell
        p = self.p("x.lock")
        py = ("import json,os,sys; open(sys.argv[1],'w').write(json.dumps("
              "{'pid': os.getppid(), 'created_at': '1999-01-01T00:00:00Z', 'operation': 'plan'}))")
        script = f"{sys.executable} -c \"{py}\" {p}; echo ready; read x"
        proc, out = spawn(self, ["bash", "-c", script])
        out.expect("ready")
        st = status(p)
        self.assertEqual(st["pid"], proc.pid)
        self.assertNotEqual(st["created_at"], "1999-01-01T00:00:00Z")
        self.assertTrue(ISO_RE.match(st["created_at"]))


class TestStatusMaxContent(LockfsTestCase):
    MOUNT_OPTS = "max_content=100"

    def test_efbig_keeps_previous(self):
        p = self.p("x.lock")
        a = agent(self)
        a.ok("create", path=p, data="A" * 50)
        self.assertEqual(status(p)["content"], "A" * 50)
        # overwrite in place with 101 bytes
        self.assertEqual(a.err("write", path=p, trunc=False, data="B" * 101), errno.EFBIG)
        self.assertEqual(status(p)["content"], "A" * 50)
        # append past the limit
        self.assertEqual(a.err("write", path=p, trunc=False, append=True, data="C" * 51),
                         errno.EFBIG)
        self.assertEqual(status(p)["content"], "A" * 50)
        # exactly the limit is fine
        self.assertEqual(a.err("write", path=p, trunc=False, append=True, data="D" * 50), 0)
        self.assertEqual(status(p)["content"], "A" * 50 + "D" * 50)
        self.assertEqual(a.err("write", path=p, trunc=False, append=True, data="E"),
                         errno.EFBIG)
        self.assertEqual(status(p)["content"], "A" * 50 + "D" * 50)
        # still held by the agent
        self.assertEqual(status(p)["lockfs"]["pid"], a.pid)

    def test_efbig_ftruncate(self):
        p = self.p("x.lock")
        a = agent(self)
        a.ok("create", path=p, data="A" * 10)
        self.assertEqual(a.err("ftruncate", path=p, size=101), errno.EFBIG)
        self.assertEqual(status(p)["content"], "A" * 10)
        self.assertEqual(a.err("ftruncate", path=p, size=100), 0)
        self.assertEqual(len(status(p)["content"]), 100)

    def test_efbig_on_first_write(self):
        p = self.p("y.lock")
        a = agent(self)
        self.assertEqual(a.err("create", path=p, data="x" * 101), errno.EFBIG)


class TestStatusOtherUser(LockfsTestCase):
    MOUNT_OPTS = "allow_other"

    def test_stat_uid_is_holder(self):
        uid, gid = harness.ensure_user(harness.TEST_USER)
        p = self.p("u.lock")
        a = agent(self, harness.TEST_USER)
        a.ok("create", path=p, data="{pid}")
        st = os.stat(p)
        self.assertEqual(st.st_uid, uid)
        self.assertEqual(st.st_gid, gid)
        self.assertEqual(st.st_mode, 0o100644)
        lf = status(p)["lockfs"]
        self.assertEqual(lf["uid"], uid)
        self.assertEqual(lf["user"], harness.TEST_USER)
        self.assertEqual(lf["pid"], a.pid)
        # the holder sees the same
        self.assertEqual(a.ok("stat", path=p)["uid"], uid)
        # another user may read it (R2.4), and the list of locks
        other = agent(self, harness.TEST_USER2)
        self.assertEqual(json.loads(other.ok("read", path=p))["lockfs"]["pid"], a.pid)
        doc = json.loads(other.ok("read", path=self.p(".lockfs", "locks.json")))
        self.assertEqual([e["lockfs"]["uid"] for e in doc], [uid])
        # released, then re-taken by root: no stale owner from a cache
        a.kill()
        wait_until(lambda: errno_of(os.stat, p) == errno.ENOENT, what="release")
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.close(fd)
        st = os.stat(p)
        self.assertEqual((st.st_uid, st.st_gid), (0, 0))
        self.assertEqual(other.ok("stat", path=p)["uid"], 0)
        self.assertEqual(status(p)["lockfs"]["uid"], 0)


class TestStatusNoTTL(LockfsTestCase):
    MOUNT_OPTS = "ttl=0"

    def test_no_ttl(self):
        p = self.p("x.lock")
        h = Holder(p)
        self.addCleanup(h.kill)
        lf = status(p)["lockfs"]
        self.assertEqual(lf["ttl_s"], 0)
        self.assertIn("expires_at", lf)
        self.assertIsNone(lf["expires_at"])

    def test_per_lock_ttl_overrides(self):
        p = self.p("x.lock")
        h = Holder(p, content='{"ttl_s": 5}')
        self.addCleanup(h.kill)
        lf = status(p)["lockfs"]
        self.assertEqual(lf["ttl_s"], 5)
        self.assertAlmostEqual(parse_iso(lf["expires_at"]), parse_iso(lf["acquired_at"]) + 5000,
                               delta=1000)


if __name__ == "__main__":
    harness.main()
