#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Status memory is bounded (issue 11 point 6, SPEC R4.5): opens of
.lockfs/locks.json cost a cursor, not a snapshot; what readers hold
rendered is charged to the opener's uid (-o status_mem_per_uid), and past
it reads and opens fail with ENOMEM while other users still read; small
reads give one valid JSON array while locks come and go; reads out of
sequence fail with ESPIPE."""
import errno
import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import LockfsTestCase  # noqa: E402
from lockfs_it import spawn  # noqa: E402

A, B = harness.TEST_USER, harness.TEST_USER2
USER_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
MIB = 1 << 20
PER_UID = 8 * MIB
N_LOCKS = 100
CONTENT = b"\x01" * 65536   # rendered as \u0001: six bytes each, ~384 KiB per lock
N_OPENS = 40

# Runs as an unprivileged user: "json N" opens locks.json N times and reads
# one byte of each, "lock PATH N" opens a lock N times read-only; each
# prints a JSON list of errnos (0 = it worked) and keeps every descriptor
# that opened until its stdin closes.
OPENER = r"""
import json, os, sys
mnt = sys.argv[1]
fds = []
print("READY", flush=True)
for line in sys.stdin:
    words = line.split()
    res = []
    for _ in range(int(words[-1])):
        try:
            path = os.path.join(mnt, ".lockfs/locks.json") if words[0] == "json" else words[1]
            fd = os.open(path, os.O_RDONLY)
            fds.append(fd)
            if words[0] == "json":
                os.read(fd, 1)
            res.append(0)
        except OSError as e:
            res.append(e.errno)
    print(json.dumps(res), flush=True)
"""


def vm_rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def read_json_small(path, size=100):
    """The whole of path with reads of size bytes, parsed."""
    parts = []
    fd = os.open(path, os.O_RDONLY)
    try:
        while True:
            b = os.read(fd, size)
            if not b:
                break
            parts.append(b)
    finally:
        os.close(fd)
    return json.loads(b"".join(parts))


class TestStatusMemory(LockfsTestCase):
    MOUNT_OPTS = f"allow_other,status_mem_per_uid={PER_UID}"

    def setUp(self):
        super().setUp()
        harness.ensure_user(A)
        harness.ensure_user(B)
        self.fds = []
        self.addCleanup(self._close_fds)

    def _close_fds(self):
        for fd in self.fds:
            os.close(fd)

    def hold_locks(self, n, content=CONTENT, prefix="big"):
        """n locks held by this process (root), each with content."""
        paths = []
        for i in range(n):
            p = self.p(f"{prefix}{i}.lock")
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            os.write(fd, content)
            os.close(fd)
            paths.append(p)
        return paths

    def opener(self, user):
        proc, out = spawn(self, harness.as_user([USER_PYTHON, "-c", OPENER, self.m.mnt], user))
        out.expect("READY")

        def ask(cmd):
            proc.stdin.write(cmd + "\n")
            proc.stdin.flush()
            return json.loads(out.get(60, what=f"answer to {cmd}"))
        return ask

    def test_held_opens_of_locks_json_are_bounded(self):
        paths = self.hold_locks(N_LOCKS)
        pid = self.m.proc.pid
        # one full document, as large as the old per-open snapshot
        doc_len = len(open(self.p(".lockfs", "locks.json"), "rb").read())
        self.assertGreater(doc_len, N_LOCKS * len(CONTENT) * 5)
        base = vm_rss(pid)
        ask_a = self.opener(A)
        res = ask_a(f"json {N_OPENS}")
        self.assertEqual(len(res), N_OPENS)
        self.assertIn(0, res)                       # reading works within the budget
        self.assertIn(errno.ENOMEM, res)            # and fails clearly past it
        self.assertEqual(set(res), {0, errno.ENOMEM})
        grown = vm_rss(pid) - base
        print(f"daemon RSS {base >> 20} MiB, {grown >> 20} MiB more after {N_OPENS} opens "
              f"(one document: {doc_len >> 20} MiB)", file=sys.stderr)
        # 40 snapshots would pin 40 * doc_len (1.5 GB); the budget allows
        # PER_UID, plus allocator slack
        self.assertLess(grown, PER_UID + 48 * MIB,
                        f"daemon RSS grew {grown >> 20} MiB with {N_OPENS} opens")
        self.assertLess(grown, N_OPENS * doc_len // 10)
        # another user reads the whole status meanwhile
        ask_b = self.opener(B)
        self.assertEqual(ask_b("json 1"), [0])
        doc = read_json_small(self.p(".lockfs", "locks.json"), 65536)
        self.assertEqual(sorted(x["lockfs"]["path"] for x in doc),
                         sorted("/" + os.path.basename(p) for p in paths))

    def test_lock_file_opens_are_charged(self):
        (path,) = self.hold_locks(1)
        ask_a = self.opener(A)
        res = ask_a(f"lock {path} {N_OPENS}")
        ok = res.count(0)
        # each open holds one rendered status (~384 KiB): the budget
        # takes about PER_UID of them, then ENOMEM
        self.assertGreater(ok, 5)
        self.assertLess(ok, N_OPENS)
        self.assertEqual(set(res[ok:]), {errno.ENOMEM})
        ask_b = self.opener(B)
        self.assertEqual(ask_b(f"lock {path} 1"), [0])
        with open(path, "rb") as f:
            self.assertEqual(json.loads(f.read())["content"], CONTENT.decode())

    def test_held_unread_opens_cost_nothing_rendered(self):
        self.hold_locks(N_LOCKS)
        pid = self.m.proc.pid
        base = vm_rss(pid)
        for _ in range(N_OPENS):
            self.fds.append(os.open(self.p(".lockfs", "locks.json"), os.O_RDONLY))
        grown = vm_rss(pid) - base
        self.assertLess(grown, 16 * MIB, f"daemon RSS grew {grown >> 20} MiB")

    def test_small_reads_while_locks_churn(self):
        stable = self.hold_locks(200, content=b'{"job": "x"}', prefix="stable")
        stop = threading.Event()
        errors = []

        def churn():
            i = 0
            try:
                while not stop.is_set():
                    p = self.p(f"churn{i % 50}.lock")
                    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
                    os.write(fd, b"y" * 2000)
                    os.close(fd)
                    os.unlink(p)
                    i += 1
            except OSError as e:
                errors.append(e)
        t = threading.Thread(target=churn)
        t.start()
        try:
            docs = [read_json_small(self.p(".lockfs", "locks.json")) for _ in range(5)]
        finally:
            stop.set()
            t.join()
        self.assertEqual(errors, [])
        want = {"/" + os.path.basename(p) for p in stable}
        for doc in docs:
            self.assertIsInstance(doc, list)
            paths = [x["lockfs"]["path"] for x in doc]
            self.assertEqual(len(paths), len(set(paths)), "a lock listed twice")
            self.assertTrue(want <= set(paths), "a lock held throughout is missing")
            # the stable locks in the order they were taken
            self.assertEqual([p for p in paths if p in want],
                             ["/" + os.path.basename(p) for p in stable])

    def test_reads_out_of_sequence_fail_with_espipe(self):
        self.hold_locks(3, content=b"z" * 1000)
        fd = os.open(self.p(".lockfs", "locks.json"), os.O_RDONLY)
        self.fds.append(fd)
        with self.assertRaises(OSError) as e:
            os.pread(fd, 100, 5000)                     # ahead
        self.assertEqual(e.exception.errno, errno.ESPIPE)
        first = os.pread(fd, 100, 0)
        self.assertEqual(os.pread(fd, 100, 0), first)   # the same read again
        os.pread(fd, 100, 100)
        with self.assertRaises(OSError) as e:
            os.pread(fd, 100, 0)                        # back
        self.assertEqual(e.exception.errno, errno.ESPIPE)
        # a fresh open reads it whole, with sequential reads of any size
        doc = read_json_small(self.p(".lockfs", "locks.json"), 7)
        self.assertEqual(len(doc), 3)


if __name__ == "__main__":
    harness.main()
