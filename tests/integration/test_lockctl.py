#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""lockctl(1) against a real mount: ls (table, --json, filtering by
directory, hostile names), show, run (mutual exclusion, -n, -w, -E, exit
statuses, signals, release), break (root, refused users, user_break, by
fence: a lock that changed hands between the status read and the break is
not broken), and the usage and exit-status contract."""
import fcntl
import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import (LockfsTestCase, Holder, TEST_USER, TEST_USER2, WRAPPER,  # noqa: E402
                     as_user, wait_until)
from lockfs_it import assert_gone_now, gone, metrics, spawn, status  # noqa: E402

LOCKCTL = os.path.abspath(os.environ.get("LOCKCTL_BIN", "build/lockctl"))
# tests/integration/break_pause.c: stops `lockctl break` before its ioctl
BREAK_PAUSE = os.path.abspath(os.environ.get("LOCKFS_BREAK_PAUSE",
                                             "build/tests/libbreak_pause.so"))
# src/lockfs_ioctl.h: _IOW('L', 1, struct { uint64_t fence; })
LOCKFS_IOC_BREAK = (1 << 30) | (8 << 16) | (ord("L") << 8) | 1
TIMEOUT = 60 if WRAPPER else 20

HEAD = ["NAME", "PID", "USER", "COMMAND", "AGE", "TTL", "FENCE"]
RIGHT = {"PID", "AGE", "TTL", "FENCE"}
DURATION_RE = re.compile(r"^(\d+s|\d+m\d\ds|\d+h\d\dm|\d+d\d\dh)$")

# A command for `lockctl run` that reports it runs, then waits for its stdin
# to close (sh and read: usable by the unprivileged test user too).
WAIT_CMD = ["sh", "-c", "echo in; read x; echo out"]

# Holds every path given on its command line (exclusive creates), then
# waits for stdin to close.
MULTI_HOLD = r"""
import os, sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
print("OK", os.getpid(), flush=True)
sys.stdin.read()
"""


def lockctl(*args, cwd=None, user=None, env=None, timeout=TIMEOUT):
    """Run lockctl; the CompletedProcess has bytes stdout and stderr."""
    cmd = [LOCKCTL, *args]
    if user:
        cmd = as_user(cmd, user)
    return subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=timeout)


def locks_json(m):
    with open(m.path(".lockfs", "locks.json")) as f:
        return json.load(f)


def without_age(doc):
    """A status with its ever-moving age_ms removed."""
    doc = json.loads(json.dumps(doc))
    doc["lockfs"].pop("age_ms")
    return doc


def seconds(d):
    """5s, 3m12s, 2h05m, 3d04h -> seconds (to the shown precision)."""
    m = re.match(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$", d)
    days, hours, mins, secs = (int(x) if x else 0 for x in m.groups())
    return ((days * 24 + hours) * 60 + mins) * 60 + secs


class LockctlCase(LockfsTestCase):

    def table(self, out, headings=True):
        """Parse a `lockctl ls` table (text, no spaces in names) and check
        its layout: one header, columns as wide as their widest cell,
        numbers right-aligned, one space between columns. Returns the
        rows as lists of cells."""
        self.assertTrue(out.endswith("\n"), repr(out))
        lines = out[:-1].split("\n")
        if headings:
            self.assertEqual(lines[0].split(), HEAD, "header line")
            body = lines[1:]
        else:
            body = lines
        rows = [line.split() for line in body if line]
        for row in rows:
            self.assertEqual(len(row), len(HEAD), f"row {row}")
        cells = ([HEAD] if headings else []) + rows
        widths = [max(len(c[i]) for c in cells + [HEAD]) for i in range(len(HEAD))]
        expect = [" ".join(c.rjust(w) if h in RIGHT else c.ljust(w)
                           for c, w, h in zip(cells_row, widths, HEAD))
                  for cells_row in cells]
        self.assertEqual(lines, expect, "table layout")
        return rows

    def hold(self, name, content="{pid}\n"):
        h = Holder(self.p(name), content=content)
        self.addCleanup(h.kill)
        self.assertTrue(h.ok, f"holding {name}: errno {h.errno}")
        return h

    def run_waiting(self, path, *opts, user=None):
        """Start `lockctl run [opts] path -- WAIT_CMD`; returns (proc,
        stdout lines). The command prints "in" once it runs."""
        cmd = [LOCKCTL, "run", *opts, path, "--", *WAIT_CMD]
        if user:
            cmd = as_user(cmd, user)
        return spawn(self, cmd, stderr=subprocess.DEVNULL)


class TestLs(LockctlCase):

    def test_table_columns_match_status(self):
        os.mkdir(self.p("sub"))
        a = self.hold("alpha.lock")
        b = self.hold(os.path.join("sub", "beta-longer-name.lock"), '{"pid": {pid}, "ttl_s": 0}')
        c = self.hold("c.lock", '{"pid": {pid}, "ttl_s": 125}')
        d = self.hold("d.lock", '{"pid": {pid}, "ttl_s": 7300}')
        e = self.hold("e.lock", '{"pid": {pid}, "ttl_s": 93784}')
        ref = {x["lockfs"]["path"]: x["lockfs"] for x in locks_json(self.m)}
        r = lockctl("ls", cwd=self.m.mnt)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, b"")
        rows = self.table(r.stdout.decode())
        self.assertEqual([row[0] for row in rows],
                         ["/alpha.lock", "/c.lock", "/d.lock", "/e.lock",
                          "/sub/beta-longer-name.lock"])
        holders = {"/alpha.lock": a, "/sub/beta-longer-name.lock": b, "/c.lock": c,
                   "/d.lock": d, "/e.lock": e}
        for name, pid, user, comm, age, ttl, fence in rows:
            lf = ref[name]
            self.assertEqual(int(pid), holders[name].pid, name)
            self.assertEqual(int(pid), lf["pid"], name)
            self.assertEqual(user, lf["user"], name)
            self.assertEqual(user, "root", name)
            self.assertEqual(comm, lf["comm"], name)
            self.assertEqual(fence, str(lf["fence"]), name)
            self.assertRegex(age, DURATION_RE, name)
            self.assertLess(seconds(age), 60, name)
        ttl = {row[0]: row[5] for row in rows}
        age = {row[0]: seconds(row[4]) for row in rows}
        self.assertEqual(ttl["/sub/beta-longer-name.lock"], "-")
        self.assertEqual(ttl["/alpha.lock"], "-")      # a live holder: no TTL (SPEC R5.3)
        # 125 s less the age, both from one snapshot (ages are rounded down)
        self.assertRegex(ttl["/c.lock"], r"^\d+m\d\ds$")
        self.assertIn(seconds(ttl["/c.lock"]), (124 - age["/c.lock"], 125 - age["/c.lock"]))
        self.assertEqual(ttl["/d.lock"], "2h01m")              # 7300 s
        self.assertEqual(ttl["/e.lock"], "1d02h")              # 93784 s

    def test_same_from_any_cwd_and_noheadings(self):
        self.hold("x.lock")
        r1 = lockctl("ls", self.m.mnt, cwd="/")
        r2 = lockctl("ls", ".", cwd=self.m.mnt)
        self.assertEqual(r1.returncode, 0, r1.stderr)
        self.assertEqual([row[:4] for row in self.table(r1.stdout.decode())],
                         [row[:4] for row in self.table(r2.stdout.decode())])
        r = lockctl("ls", "--noheadings", cwd=self.m.mnt)
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = self.table(r.stdout.decode(), headings=False)
        self.assertEqual([row[0] for row in rows], ["/x.lock"])

    def test_empty(self):
        r = lockctl("ls", cwd=self.m.mnt)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.decode().split(), HEAD)
        r = lockctl("ls", "--json", cwd=self.m.mnt)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), [])

    def test_json_is_the_status_list(self):
        os.mkdir(self.p("sub"))
        self.hold("b.lock", '{"pid": {pid}, "operation": "plan", "n": 12345678901234567, '
                            '"s": "a\\u0000b", "o": {"k": [1, {}, []]}}')
        self.hold(os.path.join("sub", "a.lock"))
        ref = sorted(locks_json(self.m), key=lambda x: x["lockfs"]["path"])
        r = lockctl("ls", "--json", cwd=self.m.mnt)
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual([x["lockfs"]["path"] for x in doc], ["/b.lock", "/sub/a.lock"])
        self.assertEqual([without_age(x) for x in doc], [without_age(x) for x in ref])
        # holder content byte for byte: no rounding past 2^53, \u0000 kept
        self.assertEqual(doc[0]["n"], 12345678901234567)
        self.assertEqual(doc[0]["s"], "a\x00b")
        # pretty-printed: one member per line, indented
        text = r.stdout.decode()
        self.assertTrue(text.startswith("[\n  {\n    "), text[:40])
        self.assertIn('\n      "path": "/b.lock",\n', text)
        self.assertTrue(text.endswith("\n]\n"))
        self.assertEqual([without_age(x) for x in
                          json.loads(lockctl("ls", "-J", cwd=self.m.mnt).stdout)],
                         [without_age(x) for x in doc])

    def test_subdirectory_filters(self):
        for d in ("sub", "sub/deeper", "sub2"):
            os.mkdir(self.p(d))
        for name in ("top.lock", "sub/a.lock", "sub/deeper/b.lock", "sub2/c.lock",
                     "subx.lock"):
            self.hold(name)
        under_sub = ["/sub/a.lock", "/sub/deeper/b.lock"]

        def names(*args, cwd):
            r = lockctl("ls", *args, cwd=cwd)
            self.assertEqual(r.returncode, 0, r.stderr)
            return [row[0] for row in self.table(r.stdout.decode())]

        self.assertEqual(names(self.p("sub"), cwd="/"), under_sub)
        self.assertEqual(names(cwd=self.p("sub")), under_sub)
        self.assertEqual(names("deeper", cwd=self.p("sub")), ["/sub/deeper/b.lock"])
        self.assertEqual(names(self.p("sub2"), cwd="/"), ["/sub2/c.lock"])
        self.assertEqual(len(names("sub2/..", cwd=self.m.mnt)), 5)
        r = lockctl("ls", "--json", "sub", cwd=self.m.mnt)
        self.assertEqual([x["lockfs"]["path"] for x in json.loads(r.stdout)], under_sub)

    def test_outside_a_mount(self):
        r = lockctl("ls", self.m.dir)
        self.assertEqual(r.returncode, 66, r)
        self.assertTrue(r.stderr.startswith(b"lockctl: "), r.stderr)
        self.assertIn(b"not in a lockfs mount", r.stderr)
        self.assertEqual(r.stdout, b"")
        r = lockctl("ls", cwd=self.m.dir)
        self.assertEqual(r.returncode, 66, r)
        r = lockctl("ls", os.path.join(self.m.dir, "no-such-dir"))
        self.assertEqual(r.returncode, 66, r)
        self.assertIn(b"No such file or directory", r.stderr)

    def test_hostile_names(self):
        names = [b"new\nline.lock", b"tab\there.lock", b'quo"te.lock', b"back\\slash.lock",
                 b"ctl\x01byte.lock", b"bad\xffutf8.lock"]
        mnt = os.fsencode(self.m.mnt)
        _, out = spawn(self, [sys.executable, "-c", MULTI_HOLD] +
                       [os.fsdecode(os.path.join(mnt, n)) for n in names])
        out.expect("OK")
        shown = {b"/new\\x0aline.lock", b"/tab\\x09here.lock", b'/quo"te.lock',
                 b"/back\\x5cslash.lock", b"/ctl\\x01byte.lock"}
        for loc, bad in (("C", b"/bad\\xef\\xbf\\xbdutf8.lock"),
                         ("C.UTF-8", "/bad\ufffdutf8.lock".encode())):
            env = dict(os.environ, LC_ALL=loc)
            r = lockctl("ls", cwd=self.m.mnt, env=env)
            self.assertEqual(r.returncode, 0, r.stderr)
            raw = r.stdout
            # no control byte but the line ends: one line per lock
            self.assertEqual([b for b in raw if b < 0x20 and b != 0x0A], [], loc)
            self.assertEqual(raw.count(b"\n"), 1 + len(names), (loc, raw))
            rows = self.table(raw.decode("utf-8"))
            self.assertEqual({row[0].encode() for row in rows}, shown | {bad}, loc)
            r = lockctl("ls", "--noheadings", cwd=self.m.mnt, env=env)
            self.assertEqual(r.stdout.count(b"\n"), len(names), loc)
        # the JSON forms parse, with one status per lock
        for pipeline in (f"'{LOCKCTL}' ls --json | jq length",
                         "cat .lockfs/locks.json | jq length"):
            r = subprocess.run(["sh", "-c", pipeline], cwd=self.m.mnt, capture_output=True,
                               timeout=TIMEOUT)
            self.assertEqual(r.returncode, 0, (pipeline, r.stderr))
            self.assertEqual(r.stdout.strip(), str(len(names)).encode(), pipeline)
        doc = json.loads(lockctl("ls", "--json", cwd=self.m.mnt).stdout)
        self.assertEqual(sorted(x["lockfs"]["path"] for x in doc),
                         sorted("/" + n.decode("utf-8", "replace") for n in names))
        # show keeps one line per field, whatever the name
        for n in names:
            r = lockctl("show", os.fsdecode(n), cwd=self.m.mnt, env=dict(os.environ, LC_ALL="C"))
            self.assertEqual(r.returncode, 0, (n, r.stderr))
            self.assertEqual([b for b in r.stdout if b < 0x20 and b != 0x0A], [], n)
            st = status(os.fsdecode(os.path.join(mnt, n)))
            fields = len(st["lockfs"]) + len(st) - 1
            self.assertEqual(r.stdout.count(b"\n"), fields + 1, (n, r.stdout))


class TestShow(LockctlCase):

    def parse_show(self, out):
        """The two blocks of `lockctl show`, as ordered (key, value) lists;
        every value starts in the same column."""
        blocks, cur, cols = [], [], set()
        for line in out.split("\n")[:-1]:
            if line == "":
                blocks.append(cur)
                cur = []
                continue
            m = re.match(r"^([^ :]+):( +)(.*)$", line)
            self.assertIsNotNone(m, repr(line))
            cols.add(len(m.group(1)) + 1 + len(m.group(2)))
            cur.append((m.group(1), m.group(3)))
        blocks.append(cur)
        self.assertEqual(len(cols), 1, f"values not aligned: {out}")
        self.assertEqual(cols.pop(), max(len(k) for b in blocks for k, _ in b) + 2)
        return blocks

    def test_show(self):
        # its own TTL: a live holder's lock has none by default (SPEC R5.3)
        h = self.hold("x.lock", '{"pid": {pid}, "ttl_s": 3600, "operation": "plan", '
                                '"n": 12345678901234567, '
                                '"nested": {"a": [1, 2]}, "note": "two\\nlines"}')
        st = status(self.p("x.lock"))
        r = lockctl("show", self.p("x.lock"))
        self.assertEqual(r.returncode, 0, r.stderr)
        facts, own = self.parse_show(r.stdout.decode())
        self.assertEqual([k for k, _ in facts], list(st["lockfs"]))
        self.assertEqual([k for k, _ in own], [k for k in st if k != "lockfs"])
        facts, own = dict(facts), dict(own)
        lf = st["lockfs"]
        self.assertEqual(facts["path"], "/x.lock")
        self.assertEqual(facts["pid"], str(h.pid))
        self.assertEqual(facts["user"], "root")
        self.assertEqual(facts["comm"], lf["comm"])
        self.assertEqual(facts["fence"], str(lf["fence"]))
        self.assertEqual(facts["how"], lf["how"])
        self.assertEqual(facts["liveness_known"], "true")
        self.assertEqual(facts["acquired_at"], lf["acquired_at"])
        self.assertRegex(facts["age_ms"], r"^\d+ \(\d+s\)$")
        self.assertRegex(facts["expires_at"],
                         "^" + re.escape(lf["expires_at"]) + r" \(in (59m\d\ds|1h00m)\)$")
        self.assertEqual(own["operation"], "plan")
        self.assertEqual(own["n"], "12345678901234567")
        self.assertEqual(own["nested"], '{"a":[1,2]}')
        self.assertEqual(own["note"], "two\\x0alines")
        self.assertEqual(own["pid"], str(h.pid))

    def test_show_json(self):
        self.hold("x.lock", '{"pid": {pid}, "n": 12345678901234567}')
        r = lockctl("show", "--json", "x.lock", cwd=self.m.mnt)
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["n"], 12345678901234567)
        self.assertEqual(without_age(doc), without_age(status(self.p("x.lock"))))
        self.assertTrue(r.stdout.startswith(b'{\n  "'), r.stdout[:20])

    def test_show_no_ttl_and_not_held(self):
        self.hold("x.lock", '{"pid": {pid}, "ttl_s": 0}')
        r = lockctl("show", "x.lock", cwd=self.m.mnt)
        self.assertIn(b"\nexpires_at:", r.stdout)
        self.assertRegex(r.stdout.decode(), r"\nexpires_at: +-\n")
        r = lockctl("show", "free.lock", cwd=self.m.mnt)
        self.assertEqual(r.returncode, 1, r)
        self.assertEqual(r.stderr, b"lockctl: free.lock is not held\n")
        self.assertEqual(r.stdout, b"")

    def test_show_not_a_lock(self):
        plain = os.path.join(self.m.dir, "plain.txt")
        with open(plain, "w") as f:
            f.write('{"pid": 1}')
        r = lockctl("show", plain)
        self.assertEqual(r.returncode, 65, r)
        self.assertIn(b"not a lockfs lock", r.stderr)
        os.mkdir(self.p("dir"))
        self.assertEqual(lockctl("show", self.p("dir")).returncode, 65)
        self.assertEqual(lockctl("show", self.p(".lockfs", "locks.json")).returncode, 65)


class TestRun(LockctlCase):

    def test_exclusive_and_handed_over(self):
        p = self.p("job.lock")
        first, out1 = self.run_waiting(p)
        self.assertEqual(out1.get(what="first command"), "in")
        lf1 = status(p)["lockfs"]
        # the holder is lockctl itself: it opened and flocked the file
        self.assertEqual(lf1["pid"], first.pid)
        self.assertEqual(lf1["comm"], "lockctl")
        self.assertEqual(lf1["how"], "creator")
        second, out2 = self.run_waiting(p)
        wait_until(lambda: metrics(self.m).get("lockfs_waiters") == 1, TIMEOUT,
                   "the second run to wait")
        self.assertIsNone(second.poll())
        self.assertEqual(status(p)["lockfs"]["pid"], first.pid)
        first.stdin.close()
        self.assertEqual(out1.get(what="first command ending"), "out")
        self.assertEqual(first.wait(timeout=TIMEOUT), 0)
        self.assertEqual(out2.get(what="second command"), "in")
        lf2 = status(p)["lockfs"]
        self.assertEqual(lf2["pid"], second.pid)
        self.assertEqual(lf2["how"], "flock")
        self.assertGreater(lf2["fence"], lf1["fence"])
        second.stdin.close()
        self.assertEqual(second.wait(timeout=TIMEOUT), 0)
        assert_gone_now(self, p)    # LOCK_UN released it before lockctl exited

    def test_no_overlap_under_contention(self):
        work = self.m.dir
        count = os.path.join(work, "count")
        with open(count, "w") as f:
            f.write("0\n")
        crit = os.path.join(work, "crit.sh")
        with open(crit, "w") as f:
            f.write('mkdir "$FLAG" 2>/dev/null || { echo OVERLAP; exit 99; }\n'
                    'n=$(cat "$COUNT"); echo $((n + 1)) > "$COUNT"\n'
                    'rmdir "$FLAG"\n')
        loop = ('for i in 1 2 3 4 5 6 7 8 9 10; do\n'
                '  "$LOCKCTL" run "$LOCK" sh "$CRIT" || exit $?\n'
                'done\n')
        env = dict(os.environ, LOCKCTL=LOCKCTL, LOCK=self.p("crit.lock"), CRIT=crit,
                   COUNT=count, FLAG=os.path.join(work, "flag"))
        workers = [subprocess.Popen(["sh", "-c", loop], env=env, stdout=subprocess.PIPE)
                   for _ in range(4)]
        for w in workers:
            out, _ = w.communicate(timeout=120)
            self.assertEqual((w.returncode, out), (0, b""))
        with open(count) as f:
            self.assertEqual(f.read(), "40\n")
        assert_gone_now(self, self.p("crit.lock"))

    def test_nonblock_busy(self):
        h = self.hold("x.lock")
        marker = os.path.join(self.m.dir, "ran")
        r = lockctl("run", "-n", self.p("x.lock"), "--", "touch", marker)
        self.assertEqual(r.returncode, 1, r)
        self.assertFalse(os.path.exists(marker))
        self.assertIn(f"held by pid {h.pid}".encode(), r.stderr)
        self.assertTrue(r.stderr.startswith(b"lockctl: "), r.stderr)
        r = lockctl("run", "-n", "-E", "75", self.p("x.lock"), "touch", marker)
        self.assertEqual(r.returncode, 75, r)
        r = lockctl("run", "--nonblock", "--conflict-exit-code=0", self.p("x.lock"), "touch",
                    marker)
        self.assertEqual(r.returncode, 0, r)
        r = lockctl("run", "-w", "0", self.p("x.lock"), "touch", marker)
        self.assertEqual(r.returncode, 1, r)
        self.assertFalse(os.path.exists(marker))
        self.assertEqual(status(self.p("x.lock"))["lockfs"]["pid"], h.pid)

    def test_wait_times_out(self):
        h = self.hold("x.lock")
        marker = os.path.join(self.m.dir, "ran")
        t0 = time.monotonic()
        r = lockctl("run", "-w", "0.5", self.p("x.lock"), "--", "touch", marker)
        took = time.monotonic() - t0
        self.assertEqual(r.returncode, 1, r)
        self.assertGreaterEqual(took, 0.5)      # and it gave up: the holder never lets go
        self.assertIn(b"timed out", r.stderr)
        self.assertFalse(os.path.exists(marker))
        self.assertEqual(metrics(self.m).get("lockfs_waiters"), 0)   # the wait was cancelled
        self.assertEqual(status(self.p("x.lock"))["lockfs"]["pid"], h.pid)
        r = lockctl("run", "-w", "0.2", "-E", "75", self.p("x.lock"), "--", "touch", marker)
        self.assertEqual(r.returncode, 75, r)

    def test_wait_then_take(self):
        h = self.hold("x.lock")
        proc, out = self.run_waiting(self.p("x.lock"), "-w", str(TIMEOUT))
        wait_until(lambda: metrics(self.m).get("lockfs_waiters") == 1, TIMEOUT, "the waiter")
        h.release()
        self.assertEqual(out.get(what="the command"), "in")
        self.assertEqual(status(self.p("x.lock"))["lockfs"]["pid"], proc.pid)
        proc.stdin.close()
        self.assertEqual(proc.wait(timeout=TIMEOUT), 0)
        assert_gone_now(self, self.p("x.lock"))

    def test_command_status_passed_through(self):
        p = self.p("x.lock")
        r = lockctl("run", p, "--", "sh", "-c", "exit 3")
        self.assertEqual(r.returncode, 3, r)
        self.assertEqual(r.stderr, b"")
        assert_gone_now(self, p)
        r = lockctl("run", p, "--", "sh", "-c", "kill -TERM $$")
        self.assertEqual(r.returncode, 128 + signal.SIGTERM, r)
        assert_gone_now(self, p)
        # without "--", options after FILE belong to the command
        r = lockctl("run", p, "echo", "-n", "x")
        self.assertEqual((r.returncode, r.stdout), (0, b"x"))

    def test_signal_to_lockctl_reaches_command(self):
        p = self.p("x.lock")
        proc, out = self.run_waiting(p)
        self.assertEqual(out.get(what="the command"), "in")
        proc.send_signal(signal.SIGTERM)
        # the command died of it, then lockctl released the lock and said so
        self.assertEqual(proc.wait(timeout=TIMEOUT), 128 + signal.SIGTERM)
        assert_gone_now(self, p)

    def test_exec_failure(self):
        p = self.p("x.lock")
        r = lockctl("run", p, "--", "/nonexistent/command", "arg")
        self.assertEqual(r.returncode, 69, r)
        self.assertEqual(r.stderr,
                         b"lockctl: cannot run /nonexistent/command: No such file or directory\n")
        assert_gone_now(self, p)
        r = lockctl("run", p, "--", "no-such-command-for-lockctl")
        self.assertEqual(r.returncode, 69, r)
        plain = os.path.join(self.m.dir, "not-executable")
        with open(plain, "w") as f:
            f.write("echo ran\n")
        os.chmod(plain, 0o644)
        r = lockctl("run", p, "--", plain)
        self.assertEqual(r.returncode, 69, r)
        self.assertEqual(r.stdout, b"")
        self.assertIn(b"Permission denied", r.stderr)
        assert_gone_now(self, p)

    def test_cannot_open(self):
        for path in (self.p("no-such-dir", "x.lock"), self.p(".lockfs", "x.lock"),
                     os.path.join(self.m.dir, "no-such-dir", "x.lock")):
            r = lockctl("run", path, "--", "true")
            self.assertEqual(r.returncode, 66, (path, r))
            self.assertTrue(r.stderr.startswith(b"lockctl: cannot open "), r.stderr)

    def test_usage_errors(self):
        p = self.p("x.lock")
        for args in ([], ["run"], ["run", p], ["run", p, "--"], ["run", "-n", "-w", "1", p, "true"],
                     ["run", "-w", "abc", p, "true"], ["run", "-w", "-1", p, "true"],
                     ["run", "-w"], ["run", "-E", "256", p, "true"], ["run", "-E", "x", p, "true"],
                     ["run", "--bogus", p, "true"], ["run", "-x", p, "true"], ["frobnicate"],
                     ["--bogus"], ["ls", "--bogus"], ["ls", "a", "b"], ["show"],
                     ["show", "a", "b"], ["break"], ["break", "-J", "x"]):
            r = lockctl(*args, cwd=self.m.mnt)
            self.assertEqual(r.returncode, 64, (args, r))
            self.assertTrue(r.stderr.startswith(b"lockctl: "), (args, r.stderr))
            self.assertIn(b"Usage:", r.stderr, args)
            self.assertEqual(r.stdout, b"", args)
        self.assertTrue(gone(p))

    def test_help_and_version(self):
        for args in (["--help"], ["-h"], ["run", "--help"], ["ls", "-h"]):
            r = lockctl(*args)
            self.assertEqual(r.returncode, 0, (args, r))
            self.assertIn(b"lockctl run [-n | -w SECS] [-E CODE] FILE", r.stdout)
        r = lockctl("--version")
        self.assertEqual(r.returncode, 0, r)
        daemon = subprocess.run([harness.LOCKFS_BIN, "--version"], capture_output=True,
                                timeout=TIMEOUT)
        version = re.search(rb"\d+\.\d+\.\d+", daemon.stdout + daemon.stderr).group(0)
        self.assertEqual(r.stdout, b"lockctl " + version + b"\n")


class TestBreak(LockctlCase):

    def test_break_as_root(self):
        h = self.hold("x.lock", '{"pid": {pid}, "operation": "deploy"}')
        lf = status(self.p("x.lock"))["lockfs"]
        r = lockctl("break", "x.lock", cwd=self.m.mnt)
        self.assertEqual(r.returncode, 0, r)
        self.assertEqual(r.stdout.decode(), f"broke x.lock held by pid {h.pid} "
                                            f"(root, {lf['comm']}), fence {lf['fence']}\n")
        assert_gone_now(self, self.p("x.lock"))
        self.assertIsNone(h.proc.poll(), "the holder itself is not touched")
        wait_until(lambda: re.search(rf"force-unlock of /x\.lock \(fence {lf['fence']}, "
                                     rf"held by pid {h.pid}\b", self.m.log()),
                   TIMEOUT, "the daemon's force-unlock log line")

    def test_break_not_held(self):
        r = lockctl("break", "x.lock", cwd=self.m.mnt)
        self.assertEqual(r.returncode, 1, r)
        self.assertEqual(r.stderr, b"lockctl: x.lock is not held\n")

    def test_break_never_removes_other_files(self):
        plain = os.path.join(self.m.dir, "plain.lock")
        with open(plain, "w") as f:
            f.write("1234\n")
        r = lockctl("break", plain)
        self.assertEqual(r.returncode, 65, r)
        self.assertTrue(os.path.exists(plain))
        os.mkdir(self.p("dir"))
        self.assertEqual(lockctl("break", self.p("dir")).returncode, 65)
        self.assertTrue(os.path.isdir(self.p("dir")))


def preload_env(**extra):
    """The environment for a lockctl run under the break_pause shim (an
    ASan lockctl accepts a library loaded before its runtime)."""
    env = dict(os.environ)
    env["LD_PRELOAD"] = BREAK_PAUSE
    env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"),
                                                 "verify_asan_link_order=0"]))
    env.update({k: str(v) for k, v in extra.items()})
    return env


class PausedBreak:
    """`lockctl break path`, stopped by the shim after it read the status
    and before its break ioctl: the test changes the lock, then go()."""

    def __init__(self, tc, path):
        ready_r, ready_w = os.pipe()
        go_r, self.go_w = os.pipe()
        env = preload_env(LOCKFS_TEST_BREAK_READY_FD=ready_w, LOCKFS_TEST_BREAK_GO_FD=go_r)
        self.proc = subprocess.Popen([LOCKCTL, "break", path], env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, pass_fds=(ready_w, go_r))
        tc.addCleanup(self._cleanup)
        os.close(ready_w)
        os.close(go_r)
        try:
            ready, _, _ = select.select([ready_r], [], [], TIMEOUT)
            got = os.read(ready_r, 1) if ready else b""
        finally:
            os.close(ready_r)
        if got != b"r":  # EOF: lockctl ended before its ioctl
            out, err = self.proc.communicate(timeout=TIMEOUT)
            tc.fail(f"lockctl break did not reach its ioctl: {self.proc.returncode} {err!r}")

    def go(self):
        """Let the ioctl be made; returns the CompletedProcess-like result."""
        os.write(self.go_w, b"g")
        os.close(self.go_w)
        self.go_w = None
        out, err = self.proc.communicate(timeout=TIMEOUT)
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, out, err)

    def _cleanup(self):
        if self.go_w is not None:
            os.close(self.go_w)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


class TestBreakByFence(LockctlCase):
    """lockctl break names the acquisition it read (its fence): one that is
    over when the break arrives is not broken, whoever holds the lock now."""

    def hold_unlinking(self, name):
        """A holder whose release() unlinks the lock (synchronously) first."""
        h = Holder(self.p(name), unlink=True)
        self.addCleanup(h.kill)
        self.assertTrue(h.ok, f"holding {name}: errno {h.errno}")
        return h

    def changed_hands(self, r, path, fence):
        self.assertEqual(r.returncode, 75, r)
        self.assertEqual(r.stdout, b"")
        self.assertEqual(r.stderr.decode(), f"lockctl: {path} changed hands after its status "
                                            f"was read (fence {fence} is over): nothing "
                                            "broken; look again and retry\n")
        self.assertNotIn("force-unlock", self.m.log())

    def test_handed_to_a_flock_waiter_meanwhile(self):
        """Same inode, new fence: the flock waiter that got the lock keeps it."""
        path = self.p("x.lock")
        a, a_out = self.run_waiting(path)
        self.assertEqual(a_out.get(what="the first holder's command"), "in")
        b, b_out = self.run_waiting(path)
        wait_until(lambda: metrics(self.m)["lockfs_waiters"] == 1, TIMEOUT,
                   "the second lockctl run parked in flock")
        old = status(path)["lockfs"]
        self.assertEqual(old["pid"], a.pid)
        brk = PausedBreak(self, path)
        a.stdin.close()  # the first command ends: the lock goes to the waiter
        self.assertEqual(a.wait(timeout=TIMEOUT), 0)
        self.assertEqual(b_out.get(what="the second holder's command"), "in")
        new = status(path)["lockfs"]
        self.assertEqual(new["pid"], b.pid)
        self.assertNotEqual(new["fence"], old["fence"])
        self.changed_hands(brk.go(), path, old["fence"])
        after = status(path)["lockfs"]
        self.assertEqual((after["pid"], after["fence"]), (b.pid, new["fence"]))
        self.assertIsNone(b.poll())
        b.stdin.close()
        self.assertEqual(b.wait(timeout=TIMEOUT), 0)

    def test_released_and_taken_anew_meanwhile(self):
        """A new acquisition of the same name (a new inode): not broken."""
        path = self.p("x.lock")
        a = self.hold_unlinking("x.lock")
        old = status(path)["lockfs"]
        brk = PausedBreak(self, path)
        a.release()  # it unlinks the lock, then exits
        b = self.hold("x.lock")
        new = status(path)["lockfs"]
        self.assertEqual(new["pid"], b.pid)
        self.changed_hands(brk.go(), path, old["fence"])
        self.assertEqual(status(path)["lockfs"]["fence"], new["fence"])
        self.assertIsNone(b.proc.poll())

    def test_released_meanwhile(self):
        path = self.p("x.lock")
        a = self.hold_unlinking("x.lock")
        old = status(path)["lockfs"]
        brk = PausedBreak(self, path)
        a.release()
        assert_gone_now(self, path)
        self.changed_hands(brk.go(), path, old["fence"])

    def test_unchanged_breaks_what_it_read(self):
        """Paused, but nothing changed: the acquisition read is broken, and
        the daemon logs that very fence."""
        path = self.p("x.lock")
        a = self.hold("x.lock")
        old = status(path)["lockfs"]
        r = PausedBreak(self, path).go()
        self.assertEqual(r.returncode, 0, r)
        self.assertEqual(r.stdout.decode(), f"broke {path} held by pid {a.pid} "
                                            f"(root, {old['comm']}), fence {old['fence']}\n")
        assert_gone_now(self, path)
        wait_until(lambda: re.search(rf"force-unlock of /x\.lock \(fence {old['fence']}, "
                                     rf"held by pid {a.pid}\b", self.m.log()),
                   TIMEOUT, "the daemon's force-unlock log line")

    def test_daemon_without_the_ioctl(self):
        """An older daemon answers ENOTTY: lockctl says so, exits 76 and
        does not fall back to unlinking the name."""
        a = self.hold("x.lock")
        fence = status(self.p("x.lock"))["lockfs"]["fence"]
        for err in (25, 38):  # ENOTTY, ENOSYS
            r = subprocess.run([LOCKCTL, "break", self.p("x.lock")],
                               env=preload_env(LOCKFS_TEST_BREAK_ERRNO=err),
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT)
            self.assertEqual(r.returncode, 76, r)
            self.assertIn(b"cannot break a lock by its fence", r.stderr)
            self.assertIn(b"nothing broken", r.stderr)
            lf = status(self.p("x.lock"))["lockfs"]
            self.assertEqual((lf["pid"], lf["fence"]), (a.pid, fence))

    def test_the_ioctl_itself(self):
        """LOCKFS_IOC_BREAK through any descriptor of the lock, also
        read-only; other commands and .lockfs files get ENOTTY."""
        a = self.hold("x.lock")
        fence = status(self.p("x.lock"))["lockfs"]["fence"]
        fd = os.open(self.p("x.lock"), os.O_RDONLY)
        self.addCleanup(os.close, fd)
        for cmd, arg, err in ((LOCKFS_IOC_BREAK, struct.pack("=Q", fence + 1), 116),  # ESTALE
                              (LOCKFS_IOC_BREAK + 1, struct.pack("=Q", fence), 25),   # ENOTTY
                              (0x5401, b"\0" * 64, 25)):                              # TCGETS
            with self.assertRaises(OSError) as cm:
                fcntl.ioctl(fd, cmd, arg)
            self.assertEqual(cm.exception.errno, err, hex(cmd))
        self.assertEqual(status(self.p("x.lock"))["lockfs"]["pid"], a.pid)
        with open(self.p(".lockfs", "locks.json"), "rb") as f:
            with self.assertRaises(OSError) as cm:
                fcntl.ioctl(f.fileno(), LOCKFS_IOC_BREAK, struct.pack("=Q", fence))
            self.assertEqual(cm.exception.errno, 25)
        fcntl.ioctl(fd, LOCKFS_IOC_BREAK, struct.pack("=Q", fence))
        assert_gone_now(self, self.p("x.lock"))
        with self.assertRaises(OSError) as cm:  # that acquisition is over
            fcntl.ioctl(fd, LOCKFS_IOC_BREAK, struct.pack("=Q", fence))
        self.assertEqual(cm.exception.errno, 116)

    def test_log_injection_through_names(self):
        """The review's names: a newline in a directory name (or a holder's
        comm) cannot start a log line of its own."""
        d1 = "x\nlockfs: force-unlock of "
        d2 = ("deploy.lock (fence 17, held by pid 4242 node) by pid 1 uid 0\n"
              "lockfs: serving ")
        os.makedirs(self.p(d1, d2))
        path = self.p(d1, d2, "t.lock")
        # a holder whose comm forges a line too
        h = subprocess.Popen([sys.executable, "-c", r"""
import ctypes, os, sys
ctypes.CDLL(None).prctl(15, b"a\nlockfs: fake", 0, 0, 0)   # PR_SET_NAME
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL)
os.write(fd, b'{"ttl_s": 1}')
print("OK", flush=True)
sys.stdin.read()
""", path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.addCleanup(h.kill)
        self.assertEqual(h.stdout.readline(), "OK\n")
        r = lockctl("break", path)
        self.assertEqual(r.returncode, 0, r)
        esc = (r"/x\x0alockfs: force-unlock of /deploy.lock (fence 17, held by pid 4242 node) "
               r"by pid 1 uid 0\x0alockfs: serving /t.lock")
        wait_until(lambda: any(esc in line and "force-unlock of " + esc in line
                               for line in self.m.log_lines),
                   TIMEOUT, "the force-unlock line, escaped")
        # and the TTL expiry of a second lock in there, logged at notice
        h2 = Holder(path, content='{"ttl_s": 1}')
        self.addCleanup(h2.kill)
        wait_until(lambda: any("released " + esc in line for line in self.m.log_lines),
                   TIMEOUT, "the expiry line, escaped")
        # every line is the daemon's (but for valgrind's ==PID== / --PID-- lines)
        lines = [line for line in self.m.log_lines if not re.match(r"^(==|--)\d+(==|--) ", line)]
        for line in lines:
            self.assertTrue(line.startswith("lockfs: "), repr(line))
            self.assertNotRegex(line, r"^lockfs: (force-unlock of /deploy|serving /t\.lock|fake)",
                                "a forged line")
        self.assertTrue(any(r"held by pid %d a\x0alockfs: fake uid 0)" % h.pid in line
                            for line in lines), lines)


class TestOtherUsers(LockctlCase):
    MOUNT_OPTS = "allow_other"

    def test_break_refused_without_user_break(self):
        harness.ensure_user(TEST_USER)
        h = self.hold("root.lock")
        r = lockctl("break", self.p("root.lock"), user=TEST_USER)
        self.assertEqual(r.returncode, 77, r)
        self.assertEqual(r.stderr.decode(), "lockctl: only root (or the holder's uid with -o "
                                            f"user_break) may break {self.p('root.lock')}\n")
        self.assertEqual(status(self.p("root.lock"))["lockfs"]["pid"], h.pid)
        # the lock's own uid from another process: still refused
        proc, out = self.run_waiting(self.p("mine.lock"), user=TEST_USER)
        self.assertEqual(out.get(what="the user's command"), "in")
        r = lockctl("break", self.p("mine.lock"), user=TEST_USER)
        self.assertEqual(r.returncode, 77, r)
        self.assertEqual(status(self.p("mine.lock"))["lockfs"]["pid"], proc.pid)

    def test_user_sees_and_runs(self):
        uid, _ = harness.ensure_user(TEST_USER)
        self.hold("root.lock")
        proc, out = self.run_waiting(self.p("user.lock"), user=TEST_USER)
        self.assertEqual(out.get(what="the user's command"), "in")
        lf = status(self.p("user.lock"))["lockfs"]
        self.assertEqual((lf["uid"], lf["pid"]), (uid, proc.pid))
        r = lockctl("ls", self.m.mnt, user=TEST_USER2)
        self.assertEqual(r.returncode, 0, r)
        rows = {row[0]: row for row in self.table(r.stdout.decode())}
        self.assertEqual(sorted(rows), ["/root.lock", "/user.lock"])
        self.assertEqual(rows["/user.lock"][1:4], [str(proc.pid), TEST_USER, "lockctl"])
        self.assertEqual(rows["/root.lock"][2], "root")
        # another user waiting on it with -n is told who holds it
        r = lockctl("run", "-n", self.p("user.lock"), "true", user=TEST_USER2)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn(f"held by pid {proc.pid} ({TEST_USER}, lockctl)".encode(), r.stderr)
        proc.stdin.close()
        self.assertEqual(proc.wait(timeout=TIMEOUT), 0)
        assert_gone_now(self, self.p("user.lock"))


class TestUserBreak(LockctlCase):
    """The -o user_break contract: the lock's uid may break it, others not."""
    MOUNT_OPTS = "allow_other,user_break"

    def test_user_breaks_own_lock_only(self):
        uid, _ = harness.ensure_user(TEST_USER)
        harness.ensure_user(TEST_USER2)
        proc, out = self.run_waiting(self.p("mine.lock"), user=TEST_USER)
        self.assertEqual(out.get(what="the user's command"), "in")
        fence = status(self.p("mine.lock"))["lockfs"]["fence"]
        r = lockctl("break", self.p("mine.lock"), user=TEST_USER2)
        self.assertEqual(r.returncode, 77, r)
        self.assertEqual(status(self.p("mine.lock"))["lockfs"]["pid"], proc.pid)
        h = self.hold("root.lock")
        r = lockctl("break", self.p("root.lock"), user=TEST_USER)
        self.assertEqual(r.returncode, 77, r)
        self.assertEqual(status(self.p("root.lock"))["lockfs"]["pid"], h.pid)
        r = lockctl("break", self.p("mine.lock"), user=TEST_USER)
        self.assertEqual(r.returncode, 0, r)
        self.assertEqual(r.stdout.decode(), f"broke {self.p('mine.lock')} held by pid "
                                            f"{proc.pid} ({TEST_USER}, lockctl), fence {fence}\n")
        assert_gone_now(self, self.p("mine.lock"))
        wait_until(lambda: re.search(rf"force-unlock of /mine\.lock .* uid {uid}\b",
                                     self.m.log()),
                   TIMEOUT, "the daemon's force-unlock log line")
        # lockctl run still ends normally when its lock was broken under it
        proc.stdin.close()
        self.assertEqual(proc.wait(timeout=TIMEOUT), 0)


if __name__ == "__main__":
    harness.main()
