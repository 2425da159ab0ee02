#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""SPEC R8.2 (state survives a daemon crash and restart) and R5.4 (fences
never go backwards, across restarts and reboots).

The daemon is killed with SIGKILL (Mount.crash) and started again on the
same mount point, journal (state_dir) and fence file (Mount.start):

- while it is down, calls on the dead mount fail with ENOTCONN, never a
  fake success; the bare mount point is immutable once the dead mount is
  gone (and after a clean unmount), so nothing lands on the disk below;
- locks of live holders come back with holder, content, TTL deadline (the
  TTL keeps counting while the daemon is down), fence, second names and
  directories; locks of dead holders, of a reused pid or of another boot
  are dropped and logged; a flock holder keeps its lock;
- fences continue above every fence issued before, also when the state
  directory is gone (a reboot); a damaged fence file stops the daemon;
- a torn tail of the journal is cut (the records before it are used); any
  other damaged record (bad checksum, or a valid one that does not decode,
  as the review's 65,536-name record did) stops the daemon from starting,
  naming its offset, and leaves the journal alone: the records after it may
  hold live locks. Nothing is ever invented; a journal it cannot read
  (another magic or version) restores nothing; a version 1 journal is read;
- link stops at -o max_names with EMLINK, and a restart after a lock with
  that many names keeps every other lock;
- a second daemon on the same state directory is refused;
- 20,000 create+unlink cycles leave a journal proportional to what is held.

Tests that patch the journal use its layout from src/journal.h (header:
8-byte magic, u32 version, 36-byte boot id, u32 CRC-32C of the 48 bytes
before; then records framed by u32 length and u32 CRC-32C of the body) and
check that layout on the real file before relying on it."""
import os
import random
import re
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import lockfs_it  # noqa: E402
from harness import LockfsTestCase, Holder, errno, errno_of, wait_until  # noqa: E402
from lockfs_it import (EXCL, create, lockinfo, agent, spawn, status, gone, exists, metrics,  # noqa: E402
                       parse_iso, DeleteWatch)

SLOW = 4 if harness.WRAPPER else 1
T = 20 * SLOW                           # ceiling for one awaited step
USER_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

SUMMARY_RE = re.compile(r"restored (\d+) locks in [0-9.]+ ms; dropped (\d+) \(holder gone\), "
                        r"(\d+) \(TTL ended\), (\d+) \(failed\)")

# ---- the journal's layout (src/journal.h) ------------------------------------

MAGIC = b"LOCKFSJ\n"
HEADER_SIZE = 52
FRAME = 8
# offsets in a LOCK record's body: type u8, key u64, parent u64, fence u64,
# how u8, flags u8, pid i32, start_time u64, ... (79 bytes), then the name
# (u16 length + bytes), then the count of other names (version 2 and 3:
# u32, version 1: u16), their names, the content, and (version 3) the
# count of a shared lock's other holders and theirs
JOURNAL_VERSION = 3
LOCK_PID_AT = 27
LOCK_START_AT = 31
LOCK_NAME_AT = 79


def _crc_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC = _crc_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283      # the CRC-32C check value


def frames(buf):
    """(offset, length) of every valid framed record after the header."""
    out = []
    off = HEADER_SIZE
    while off + FRAME <= len(buf):
        n, crc = struct.unpack_from("=II", buf, off)
        body = buf[off + FRAME:off + FRAME + n]
        if n == 0 or len(body) < n or crc32c(body) != crc:
            break
        out.append((off, FRAME + n))
        off += FRAME + n
    return out


def refresh_frame(buf, off):
    """Recompute the CRC of the record at off (after patching its body)."""
    n = struct.unpack_from("=I", buf, off)[0]
    struct.pack_into("=I", buf, off + 4, crc32c(bytes(buf[off + FRAME:off + FRAME + n])))


def refresh_header(buf):
    struct.pack_into("=I", buf, HEADER_SIZE - 4, crc32c(bytes(buf[:HEADER_SIZE - 4])))


# ---- helper processes ---------------------------------------------------------

# Takes argv[1] the flock way (open O_RDONLY|O_CREAT, then LOCK_EX), keeps
# the descriptor, then runs one command per stdin line ("unlink"), answering
# with its errno; exits when stdin closes.
FLOCK_HOLDER = r"""
import fcntl, os, sys
path = sys.argv[1]
fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
print("HELD", os.getpid(), flush=True)
for line in sys.stdin:
    try:
        if line.strip() == "unlink":
            os.unlink(path)
        print(0, flush=True)
    except OSError as e:
        print(e.errno, flush=True)
"""

# Opens argv[1] (O_RDONLY|O_CREAT) and waits for LOCK_EX on it; reports
# "GOT" or "ERR errno", then holds until stdin closes.
FLOCK_WAITER = r"""
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_CREAT, 0o644)
print("WAITING", os.getpid(), flush=True)
try:
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("GOT", flush=True)
except OSError as e:
    print("ERR", e.errno, flush=True)
sys.stdin.read()
"""

# rmdir argv[1]; the exit status is the errno (0 on success).
RMDIR = r"""
import os, sys
try:
    os.rmdir(sys.argv[1])
except OSError as e:
    sys.exit(e.errno)
"""


def summary(log):
    """(restored, holder gone, TTL ended, failed) from a start's log; all
    zero when the daemon logged no summary."""
    found = SUMMARY_RE.findall(log)
    if not found:
        return (0, 0, 0, 0)
    assert len(found) == 1, f"more than one restore summary in one start:\n{log}"
    return tuple(int(x) for x in found[0])


class RestartCase(LockfsTestCase):

    def assert_released_at_exit(self, p, proc, end=None):
        """End proc (close its stdin so it exits, or kill it with end) and
        see lock p go at once: a delete event on the file, then gone for
        every observer."""
        w = DeleteWatch(self, p)
        if end:
            end()
        else:
            proc.stdin.close()
        self.assertEqual(proc.wait(timeout=T), -signal.SIGKILL if end else 0)
        rc, text = w.wait()
        self.assertIn("DELETE_SELF", text)
        self.assert_gone_now(p)

    def restart(self):
        """Start the daemon again (after crash()); return what it logged
        while starting."""
        n = len(self.m.log_lines)
        self.m.start()
        return "\n".join(self.m.log_lines[n:])

    def crash_restart(self):
        self.m.crash()
        return self.restart()

    def locks_json(self):
        with open(self.p(".lockfs", "locks.json")) as f:
            return lockfs_it.loads(f.read())

    def names(self, *sub):
        """The names in a directory of the mount, without .lockfs."""
        return sorted(n for n in os.listdir(self.p(*sub)) if n != ".lockfs")

    def journal_path(self):
        return os.path.join(self.m.state_dir, "journal")

    def read_journal(self):
        with open(self.journal_path(), "rb") as f:
            buf = bytearray(f.read())
        self.assertEqual(bytes(buf[:8]), MAGIC, "journal layout changed (magic)")
        self.assertEqual(struct.unpack_from("=I", buf, 8)[0], JOURNAL_VERSION,
                         "journal version changed")
        self.assertEqual(struct.unpack_from("=I", buf, HEADER_SIZE - 4)[0],
                         crc32c(bytes(buf[:HEADER_SIZE - 4])), "journal header CRC")
        return buf

    def write_journal(self, buf):
        with open(self.journal_path(), "wb") as f:
            f.write(bytes(buf))

    def fence_end(self):
        with open(self.m.fence_file) as f:
            text = f.read()
        mm = re.fullmatch(r"lockfs-fences (\d+)\n", text)
        self.assertTrue(mm, f"fence file: {text!r}")
        return int(mm.group(1))

    def cycle_fence(self, name="cycle.lock"):
        """Take and release a lock; return its fence."""
        p = self.p(name)
        create(p)
        f = lockinfo(p)["fence"]
        os.unlink(p)
        return f

    def assert_refused(self, probe, message):
        """The daemon, started on the damaged journal now in place, refuses
        to start with message (a regex); the dead mount stays dead and the
        journal is left as it is."""
        with open(self.journal_path(), "rb") as f:
            before = f.read()
        with self.assertRaises(RuntimeError) as cm:
            self.m.start()
        msg = str(cm.exception)
        self.assertIn("daemon exited before serving", msg)
        self.assertRegex(msg, message)
        self.assertIn("refusing to start", msg)
        self.assertEqual(errno_of(os.stat, probe), errno.ENOTCONN)
        with open(self.journal_path(), "rb") as f:
            self.assertEqual(f.read(), before, "the damaged journal is left alone")

    def assert_summary(self, log, restored, holder_gone, ttl, failed=0):
        self.assertEqual(summary(log), (restored, holder_gone, ttl, failed), log)

    def assert_gone_now(self, path):
        lockfs_it.assert_gone_now(self, path)


class TestCrashRestart(RestartCase):
    """Locks of live holders come back; others are dropped."""

    def test_dead_mount_fails_then_live_holder_is_back(self):
        p = self.p("deploy.lock")
        a = agent(self)
        a.ok("create", path=p, data='{"pid": {pid}, "operation": "apply", "ttl_s": 600}')
        before = status(p)
        self.assertEqual(before["lockfs"]["pid"], a.pid)
        self.m.crash()
        # the dead mount: every call fails with ENOTCONN, for anyone
        new = self.p("new.lock")
        for what, fn, args in (("stat", os.stat, (p,)), ("stat root", os.stat, (self.m.mnt,)),
                               ("open", os.open, (p, os.O_RDONLY)),
                               ("create", os.open, (new, EXCL, 0o644)),
                               ("open O_CREAT", os.open, (new, os.O_WRONLY | os.O_CREAT, 0o644)),
                               ("listdir", os.listdir, (self.m.mnt,)),
                               ("metrics", os.open, (self.p(".lockfs", "metrics"), os.O_RDONLY)),
                               ("mkdir", os.mkdir, (self.p("d"),))):
            self.assertEqual(errno_of(fn, *args), errno.ENOTCONN, what)
        self.assertEqual(a.err("write", path=p, data='{"pid": {pid}, "operation": "x"}'),
                         errno.ENOTCONN)
        self.assertEqual(a.err("unlink", path=p), errno.ENOTCONN)
        self.assertEqual(a.err("create", path=new), errno.ENOTCONN)
        log = self.restart()
        self.assertIn(f"cleared the dead mount of a stopped lockfs on {self.m.mnt}", log)
        self.assert_summary(log, 1, 0, 0)
        after = status(p)
        for k in ("path", "pid", "uid", "user", "comm", "cmdline", "acquired_at", "renewed_at",
                  "ttl_s", "expires_at", "fence", "how", "liveness_known"):
            self.assertEqual(after["lockfs"].get(k), before["lockfs"].get(k), k)
        self.assertEqual({k: v for k, v in after.items() if k != "lockfs"},
                         {k: v for k, v in before.items() if k != "lockfs"},
                         "the holder's content must come back unchanged")
        self.assertEqual(after["operation"], "apply")
        self.assertEqual(self.names(), ["deploy.lock"])
        mm = metrics(self.m)
        self.assertEqual(mm["lockfs_locks_held"], 1)
        # a third process cannot take or change it
        o = agent(self)
        self.assertEqual(o.err("create", path=p), errno.EEXIST)
        self.assertEqual(errno_of(create, p), errno.EEXIST)
        self.assertEqual(o.ok("open_write", path=p, creat=True)["write"], errno.EEXIST)
        self.assertEqual(lockinfo(p)["pid"], a.pid)
        # the holder still may write (keeping the fence) and unlink it
        a.ok("write", path=p, data='{"pid": {pid}, "operation": "apply", "step": 2}')
        st = status(p)
        self.assertEqual(st.get("step"), 2)
        self.assertEqual(st["lockfs"]["fence"], before["lockfs"]["fence"])
        self.assertEqual(st["lockfs"]["pid"], a.pid)
        a.ok("unlink", path=p)
        self.assert_gone_now(p)

    def test_many_locks_keep_their_times(self):
        """Every restored lock shows the same acquired_at, renewed_at,
        expires_at, ttl_s and fence as before the crash (200 locks, so a
        clock read that differs from the journaled one shows)."""
        a = agent(self)
        names = [self.p(f"m{i:03d}.lock") for i in range(200)]
        for i, n in enumerate(names):
            a.ok("create", path=n, data='{"pid": {pid}, "i": %d, "ttl_s": %d}' % (i, 600 + i))
        before = {s["lockfs"]["path"]: s for s in self.locks_json()}
        self.assertEqual(len(before), 200)
        log = self.crash_restart()
        self.assert_summary(log, 200, 0, 0)
        after = {s["lockfs"]["path"]: s for s in self.locks_json()}
        self.assertEqual(sorted(after), sorted(before))
        diffs = []
        for path, s0 in before.items():
            s1 = after[path]
            for k in ("pid", "acquired_at", "renewed_at", "expires_at", "ttl_s", "fence",
                      "how"):
                if s1["lockfs"][k] != s0["lockfs"][k]:
                    diffs.append(f"{path} {k}: {s0['lockfs'][k]} -> {s1['lockfs'][k]}")
            if s1["i"] != s0["i"]:
                diffs.append(f"{path} content")
        self.assertEqual(diffs, [], f"{len(diffs)} fields changed across the restart")

    def test_times_kept_when_acquisition_reserves_fences(self):
        """Locks taken with the first fence of a new block (the fence file is
        rewritten and fsynced first, which takes a while) show the same
        renewed_at and expires_at after a restart as before it: the journal
        holds what the holder was shown. (Three such locks, as an fsync
        may also be quick.)"""
        a = agent(self)
        p = self.p("cycle.lock")
        before = {}
        for k in range(1 if harness.WRAPPER else 3):
            end = self.fence_end()
            f = self.cycle_fence()
            for _ in range(end - 2 - f):
                create(p)
                os.unlink(p)
            self.assertEqual(self.cycle_fence(), end - 1)
            q = self.p(f"x{k}.lock")
            a.ok("create", path=q)              # no content: no later update
            before[q] = lockinfo(q)
            self.assertEqual(before[q]["fence"], end, "the first fence of a new block")
            self.assertGreater(self.fence_end(), end)
        log = self.crash_restart()
        self.assert_summary(log, len(before), 0, 0)
        diffs = []
        for q, b in before.items():
            after = lockinfo(q)
            for k in ("pid", "fence", "acquired_at", "renewed_at", "expires_at", "ttl_s"):
                if after[k] != b[k]:
                    diffs.append(f"{os.path.basename(q)} {k}: {b[k]} before, {after[k]} after")
        self.assertEqual(diffs, [])

    def test_claim_and_detached_locks_come_back(self):
        claim = self.p("claim.lock")
        det = self.p("detached.lock")
        a = agent(self)
        a.ok("create", path=claim, data="{ppid}\n")      # names this test process
        subprocess.run(["sh", "-c", f"echo 0 > '{det}'"], check=True, timeout=T)
        c0, d0 = lockinfo(claim), lockinfo(det)
        self.assertEqual((c0["how"], c0["pid"]), ("claim", os.getpid()))
        self.assertEqual(d0["how"], "detached")
        log = self.crash_restart()
        self.assert_summary(log, 2, 0, 0)
        c1, d1 = lockinfo(claim), lockinfo(det)
        for k in ("how", "pid", "fence", "acquired_at", "expires_at", "liveness_known"):
            self.assertEqual(c1[k], c0[k], f"claim: {k}")
            self.assertEqual(d1[k], d0[k], f"detached: {k}")
        # the claim holder is this process: the agent (its child) may not
        # take it, and the detached lock still refuses a creator
        self.assertEqual(a.err("create", path=det), errno.EEXIST)
        os.unlink(claim)
        os.unlink(det)
        self.assertEqual(self.names(), [])

    def test_holder_dead_while_down_is_dropped(self):
        p = self.p("x.lock")
        keep = self.p("keep.lock")
        seen = [self.cycle_fence() for _ in range(3)]
        h = Holder(p)
        self.addCleanup(h.kill)
        k = Holder(keep)
        self.addCleanup(k.kill)
        fp, fk = lockinfo(p)["fence"], lockinfo(keep)["fence"]
        seen += [fp, fk]
        self.m.crash()
        h.kill()
        log = self.restart()
        self.assertIn(f"dropped /x.lock (fence {fp}): holder pid {h.pid} is gone", log)
        self.assertNotIn("dropped /keep.lock", log)
        self.assert_summary(log, 1, 1, 0)
        self.assertEqual(self.names(), ["keep.lock"])
        self.assertTrue(gone(p))
        self.assertEqual(lockinfo(keep)["pid"], k.pid)
        self.assertEqual(lockinfo(keep)["fence"], fk)
        # a new acquisition tops every fence seen before the crash
        n = Holder(p)
        self.addCleanup(n.kill)
        self.assertTrue(n.ok, f"errno {n.errno}")
        f_new = lockinfo(p)["fence"]
        self.assertGreater(f_new, max(seen))
        self.assertGreater(self.cycle_fence(), f_new)

    def test_restored_holder_death_still_releases(self):
        p = self.p("x.lock")
        h = Holder(p)
        self.addCleanup(h.kill)
        self.crash_restart()
        self.assertEqual(lockinfo(p)["pid"], h.pid)
        self.assert_released_at_exit(p, h.proc, h.kill)

    def test_same_pid_other_process_is_not_the_holder(self):
        """A pid reused by another process (same pid, other start time) is
        not the holder: the lock is dropped although the pid lives."""
        p = self.p("x.lock")
        a = agent(self)
        a.ok("create", path=p)
        fence = lockinfo(p)["fence"]
        self.m.crash()
        buf = self.read_journal()
        recs = [(o, n) for o, n in frames(buf) if b"x.lock" in buf[o:o + n]]
        self.assertEqual(len(recs), 1, "one record for the one lock")
        off = recs[0][0] + FRAME
        self.assertEqual(buf[off], 2, "a LOCK record")
        self.assertEqual(struct.unpack_from("=i", buf, off + LOCK_PID_AT)[0], a.pid,
                         "journal layout changed (pid)")
        start = struct.unpack_from("=Q", buf, off + LOCK_START_AT)[0]
        struct.pack_into("=Q", buf, off + LOCK_START_AT, start + 1)
        refresh_frame(buf, recs[0][0])
        self.write_journal(buf)
        log = self.restart()
        self.assertNotIn("damaged", log)
        self.assertIn(f"dropped /x.lock (fence {fence}): holder pid {a.pid} is gone", log)
        self.assert_summary(log, 0, 1, 0)
        self.assert_gone_now(p)

    def test_journal_of_another_boot_drops_locks(self):
        p = self.p("x.lock")
        a = agent(self)
        a.ok("create", path=p)
        seen = [lockinfo(p)["fence"], self.cycle_fence()]
        self.m.crash()
        buf = self.read_journal()
        boot = bytes(buf[12:48])
        with open("/proc/sys/kernel/random/boot_id") as f:
            self.assertEqual(boot.decode(), f.read().strip(), "journal layout changed (boot id)")
        buf[12:48] = b"00000000-0000-4000-8000-000000000000"
        refresh_header(buf)
        self.write_journal(buf)
        log = self.restart()
        self.assertIn("is from another boot: 1 locks dropped", log)
        self.assertNotIn("damaged", log)
        self.assertTrue(gone(p), "a holder of another boot is no holder")
        self.assertEqual(a.err("create", path=p), 0)
        self.assertGreater(lockinfo(p)["fence"], max(seen))


class TestRestartTTL(RestartCase):
    """TTLs keep counting while the daemon is down."""

    def test_ttl_ran_out_while_down(self):
        short, long = self.p("short.lock"), self.p("long.lock")
        a = agent(self)
        a.ok("create", path=short, data='{"pid": {pid}, "ttl_s": 2}')
        a.ok("create", path=long, data='{"pid": {pid}, "ttl_s": 600}')
        s0, l0 = lockinfo(short), lockinfo(long)
        self.assertEqual((s0["ttl_s"], l0["ttl_s"]), (2, 600))
        self.m.crash()
        # the daemon is down: no event to await, only the clock
        time.sleep(max(0.0, parse_iso(s0["expires_at"]) / 1000 - time.time()) + 0.3)
        log = self.restart()
        self.assertIn(f"dropped /short.lock (fence {s0['fence']}): its TTL ran out meanwhile",
                      log)
        self.assert_summary(log, 1, 0, 1)
        self.assert_gone_now(short)
        l1 = lockinfo(long)
        for k in ("pid", "ttl_s", "expires_at", "renewed_at", "acquired_at", "fence"):
            self.assertEqual(l1[k], l0[k], k)

    def test_deadline_is_kept_not_restarted(self):
        """A lock with 5 s to live, the daemon down for 2 s: it expires 5 s
        after it was taken, not 5 s after the restart."""
        ttl = 5 * SLOW
        p = self.p("x.lock")
        a = agent(self)
        t0 = time.monotonic()
        a.ok("create", path=p, data='{"pid": {pid}, "ttl_s": %d}' % ttl)
        e0 = lockinfo(p)["expires_at"]
        self.m.crash()
        time.sleep(2.0)             # the daemon is down: only the clock runs
        restarted = time.monotonic()    # a TTL counted anew would start here
        self.restart()
        self.assertEqual(lockinfo(p)["expires_at"], e0)
        w = DeleteWatch(self, p)
        rc, out = w.wait()
        dt = time.monotonic() - t0
        self.assertIn("DELETE_SELF", out)
        self.assertGreater(dt, ttl - 0.5, "expired before its deadline")
        self.assertLess(dt, restarted - t0 + ttl,
                        "the TTL restarted at the restart (it must keep counting)")
        self.assert_gone_now(p)


class TestRestartMountTTL(RestartCase):
    MOUNT_OPTS = "ttl=2,holder_ttl=2"      # live holders too (SPEC R5.3)

    def test_mount_ttl_ran_out_while_down(self):
        p, q = self.p("x.lock"), self.p("long.lock")
        h = Holder(p)
        self.addCleanup(h.kill)
        g = Holder(q, content='{"pid": {pid}, "ttl_s": 600}')
        self.addCleanup(g.kill)
        x0, q0 = lockinfo(p), lockinfo(q)
        self.assertEqual((x0["ttl_s"], q0["ttl_s"]), (2, 600))
        self.m.crash()
        time.sleep(max(0.0, parse_iso(x0["expires_at"]) / 1000 - time.time()) + 0.3)
        log = self.restart()
        self.assertIn(f"dropped /x.lock (fence {x0['fence']}): its TTL ran out meanwhile", log)
        self.assert_summary(log, 1, 0, 1)
        self.assert_gone_now(p)
        self.assertEqual(lockinfo(q)["expires_at"], q0["expires_at"])
        self.assertEqual(lockinfo(q)["pid"], g.pid)


class TestRestartNamespaces(RestartCase):
    """Directories (with their owner) and second names survive a restart."""
    MOUNT_OPTS = "allow_other"

    def rmdir_as(self, ag, path):
        return ag.ok("exec", argv=[USER_PYTHON, "-c", RMDIR, path])

    def test_directories_and_second_names(self):
        uid_a, _ = harness.ensure_user(harness.TEST_USER)
        harness.ensure_user(harness.TEST_USER2)
        a = agent(self, harness.TEST_USER)
        b = agent(self, harness.TEST_USER2)
        a.ok("mkdir", path=self.p("d"))
        a.ok("mkdir", path=self.p("d", "sub"))
        a.ok("mkdir", path=self.p("empty"))
        os.mkdir(self.p("e"))
        p = self.p("d", "sub", "x.lock")
        a.ok("create", path=p, data='{"pid": {pid}, "job": 7}')
        a.ok("link", path=p, dst=self.p("e", "alias.lock"))
        a.ok("link", path=p, dst=self.p("d", "x2.lock"))
        names = [p, self.p("e", "alias.lock"), self.p("d", "x2.lock")]
        st0 = os.stat(p)
        self.assertEqual(st0.st_nlink, 3)
        info0 = lockinfo(p)
        dirs = {d: os.stat(self.p(d)).st_uid for d in ("d", "d/sub", "empty", "e")}
        self.assertEqual(dirs, {"d": uid_a, "d/sub": uid_a, "empty": uid_a, "e": 0})

        log = self.crash_restart()
        self.assert_summary(log, 1, 0, 0)
        self.assertNotIn("not restored", log)
        self.assertEqual(self.names(), ["d", "e", "empty"])
        self.assertEqual(self.names("d"), ["sub", "x2.lock"])
        self.assertEqual(self.names("d", "sub"), ["x.lock"])
        self.assertEqual(self.names("e"), ["alias.lock"])
        self.assertEqual(self.names("empty"), [])
        for d, uid in dirs.items():
            st = os.stat(self.p(d))
            self.assertTrue(stat.S_ISDIR(st.st_mode), d)
            self.assertEqual(st.st_uid, uid, f"owner of {d}")
        ino = os.stat(names[0]).st_ino     # one inode (its number may differ: a new mount)
        for n in names:
            st = os.stat(n)
            self.assertEqual((st.st_ino, st.st_nlink, st.st_uid), (ino, 3, uid_a), n)
            s = status(n)
            self.assertEqual(s["job"], 7, n)
            self.assertEqual(s["lockfs"]["pid"], a.pid, n)
            self.assertEqual(s["lockfs"]["fence"], info0["fence"], n)
            self.assertEqual(b.err("create", path=n), errno.EEXIST, n)
            self.assertEqual(b.err("unlink", path=n), errno.EBUSY, n)      # SPEC R3.4
        # directory owners still decide: the other user may not remove
        # user A's empty directory, user A may
        self.assertEqual(self.rmdir_as(b, self.p("empty")), errno.EPERM)
        self.assertEqual(self.rmdir_as(a, self.p("empty")), 0)
        # the holder drops the first name: the lock lives on under the others
        a.ok("unlink", path=p)
        self.assertEqual(os.stat(names[1]).st_nlink, 2)

        log = self.crash_restart()
        self.assert_summary(log, 1, 0, 0)
        self.assertEqual(self.names("d", "sub"), [])
        self.assertEqual(self.names(), ["d", "e"])
        ino = os.stat(names[1]).st_ino
        for n in names[1:]:
            st = os.stat(n)
            self.assertEqual((st.st_ino, st.st_nlink, st.st_uid), (ino, 2, uid_a), n)
            self.assertEqual(lockinfo(n)["fence"], info0["fence"])
        a.ok("unlink", path=names[1])
        self.assertTrue(exists(names[2]))
        a.ok("unlink", path=names[2])
        self.assert_gone_now(names[2])
        self.assertTrue(gone(names[1]))
        self.assertEqual(self.rmdir_as(a, self.p("d", "sub")), 0)
        self.assertEqual(self.rmdir_as(a, self.p("d")), 0)


class TestFences(RestartCase):
    """R5.4: fences never go backwards."""

    def test_fences_increase_across_restarts(self):
        held = Holder(self.p("held.lock"))
        self.addCleanup(held.kill)
        hf = lockinfo(self.p("held.lock"))["fence"]
        seen = [hf]
        for _ in range(4):
            for i in range(3):
                seen.append(self.cycle_fence(f"c{i}.lock"))
            h = Holder(self.p("dies.lock"))
            seen.append(lockinfo(self.p("dies.lock"))["fence"])
            end = self.fence_end()
            self.assertTrue(all(f < end for f in seen),
                            f"fence file end {end} not above issued fences {seen}")
            self.m.crash()
            h.kill()
            log = self.restart()
            self.assert_summary(log, 1, 1, 0)
            self.assertEqual(lockinfo(self.p("held.lock"))["fence"], hf,
                             "a held lock keeps its fence")
        seen.append(self.cycle_fence())
        self.assertEqual(seen, sorted(seen))
        self.assertEqual(len(set(seen)), len(seen), f"fences not strictly increasing: {seen}")

    def test_reboot_drops_locks_and_fences_still_increase(self):
        """A reboot (simulated: the state directory on /run is gone) drops
        every lock; the fence file on disk keeps fences increasing."""
        a = agent(self)
        os.mkdir(self.p("d"))
        a.ok("create", path=self.p("x.lock"))
        a.ok("create", path=self.p("d", "y.lock"))
        seen = [lockinfo(self.p("x.lock"))["fence"], lockinfo(self.p("d", "y.lock"))["fence"]]
        seen += [self.cycle_fence() for _ in range(3)]
        self.m.crash()
        shutil.rmtree(self.m.state_dir)
        log = self.restart()
        self.assertEqual(summary(log), (0, 0, 0, 0), log)
        self.assertEqual(self.names(), [])
        self.assertEqual(metrics(self.m)["lockfs_locks_held"], 0)
        self.assertEqual(a.err("create", path=self.p("x.lock")), 0)
        f = lockinfo(self.p("x.lock"))["fence"]
        self.assertGreater(f, max(seen))
        self.assertGreater(self.cycle_fence(), f)
        # and again: a reboot right after the first block was reserved
        seen = [f]
        self.m.crash()
        shutil.rmtree(self.m.state_dir)
        self.restart()
        self.assertEqual(self.names(), [])
        self.assertGreater(self.cycle_fence(), max(seen))

    def test_damaged_fence_file_refuses_to_start(self):
        tmp = tempfile.mkdtemp(prefix="lockfs-fence-")
        self.addCleanup(shutil.rmtree, tmp, True)
        for bad in (b"garbage\n", b"", b"lockfs-fences\n", b"lockfs-fences \n",
                    b"lockfs-fences 12x\n", b"lockfs-fences 4097", b"lockfs-fences -5\n",
                    b"lockfs-fences 0\n", b"LOCKFS-FENCES 4097\n", b"\x00" * 16):
            with self.subTest(content=bad):
                fence = os.path.join(tmp, "fence")
                with open(fence, "wb") as f:
                    f.write(bad)
                m = harness.Mount(f"fence_file={fence}")
                self.addCleanup(m.stop)
                with self.assertRaises(RuntimeError) as cm:
                    m.start()
                msg = str(cm.exception)
                self.assertIn("daemon exited before serving", msg)
                self.assertRegex(msg, r"fence file \S*fence is damaged")
                self.assertNotEqual(m.proc.returncode, 0)
                self.assertFalse(m.is_mounted())
                with open(fence, "rb") as f:
                    self.assertEqual(f.read(), bad, "a damaged fence file is left alone")

    def test_damaged_fence_file_on_restart(self):
        """Damage while the daemon is down: it refuses to start (the dead
        mount stays dead); with the file repaired it starts and the lock
        is back."""
        h = Holder(self.p("x.lock"))
        self.addCleanup(h.kill)
        fence = lockinfo(self.p("x.lock"))["fence"]
        self.m.crash()
        with open(self.m.fence_file, "rb") as f:
            good = f.read()
        with open(self.m.fence_file, "wb") as f:
            f.write(b"lockfs-fences oops\n")
        with self.assertRaises(RuntimeError) as cm:
            self.m.start()
        self.assertIn(f"fence file {self.m.fence_file} is damaged", str(cm.exception))
        self.assertEqual(errno_of(os.stat, self.p("x.lock")), errno.ENOTCONN)
        with open(self.m.fence_file, "wb") as f:
            f.write(good)
        self.restart()
        self.assertEqual(lockinfo(self.p("x.lock"))["pid"], h.pid)
        self.assertGreater(self.cycle_fence(), fence)


class TestDamagedJournal(RestartCase):
    """A damaged journal never crashes the daemon and never invents a lock:
    a torn tail is cut; other damage refuses to start (logged, with the
    offset), since leaving records out could grant a held lock twice."""

    def hold(self, a, names, data=True):
        for n in names:
            if data:
                a.ok("create", path=self.p(n), data='{"pid": {pid}, "name": "%s"}' % n)
            else:
                a.ok("create", path=self.p(n))
        return {n: lockinfo(self.p(n)) for n in names}

    def assert_restored(self, a, infos, named=True):
        """Exactly the locks of infos are held, by a, each as it was (with
        its content when named)."""
        self.assertEqual(self.names(), sorted(n.split("/")[0] for n in infos))
        for n, info in infos.items():
            s = status(self.p(n))
            self.assertEqual(s["lockfs"]["pid"], a.pid, n)
            self.assertEqual(s["lockfs"]["fence"], info["fence"], n)
            self.assertEqual(s["lockfs"]["acquired_at"], info["acquired_at"], n)
            self.assertEqual(s.get("name"), n if named else None, n)

    def test_torn_tail(self):
        a = agent(self)
        kept = self.hold(a, ["a.lock", "b.lock"])
        c = self.p("c.lock")
        for cut in (1, 3, "half", "frame only", "half frame"):
            with self.subTest(cut=cut):
                a.ok("create", path=c)              # one record, the journal's last
                fc = lockinfo(c)["fence"]
                self.m.crash()
                buf = self.read_journal()
                recs = frames(buf)
                off, n = recs[-1]
                self.assertEqual(off + n, len(buf), "the journal ends with a whole record")
                self.assertIn(b"c.lock", buf[off:])
                o2, n2 = recs[-2]
                self.assertNotIn(b"c.lock", buf[o2:o2 + n2], "c.lock took one record")
                k = {"half": n // 2, "frame only": n - FRAME, "half frame": n - FRAME // 2}.get(
                    cut, cut)
                self.write_journal(buf[:len(buf) - k])
                log = self.restart()
                self.assertIn(f"torn record at byte {off} of {len(buf) - k}: using the", log)
                self.assert_summary(log, 2, 0, 0)
                self.assert_restored(a, kept)
                self.assert_gone_now(c)
                self.assertGreater(self.cycle_fence(), fc)
        # the daemon rewrote the journal: the next restart finds it whole
        log = self.crash_restart()
        self.assertNotIn("damaged", log)
        self.assert_summary(log, 2, 0, 0)
        self.assert_restored(a, kept)

    def test_flipped_bytes(self):
        """A complete record with a bad checksum, live locks after it: the
        daemon does not start; with the undamaged journal back, all come
        back."""
        a = agent(self)
        infos = self.hold(a, ["a.lock", "b.lock", "c.lock"])
        self.m.crash()
        good = self.read_journal()
        buf = bytearray(good)
        recs = frames(buf)
        first_b = next(o for o, n in recs if b"b.lock" in buf[o:o + n])
        self.assertTrue(all(b"b.lock" not in buf[o:o + n] for o, n in recs if o < first_b))
        n = struct.unpack_from("=I", buf, first_b)[0]
        mid = first_b + FRAME + n // 2
        for i in range(mid, mid + 3):
            buf[i] ^= 0xFF
        self.write_journal(buf)
        self.assert_refused(self.p("a.lock"), f"the record at byte {first_b} of {len(buf)} "
                            r"is damaged")
        self.write_journal(good)
        log = self.restart()
        self.assert_summary(log, 3, 0, 0)
        self.assert_restored(a, infos)

    def test_bad_record_length(self):
        """A length that runs past the end of the file is a torn tail (cut);
        0 or more than any record can be is damage (refused)."""
        a = agent(self)
        infos = self.hold(a, ["a.lock", "b.lock"], data=False)
        self.m.crash()
        buf = self.read_journal()
        recs = frames(buf)
        self.assertEqual(len(recs), 2)
        for length in (0, 1 << 30, struct.unpack_from("=I", buf, recs[1][0])[0] + 1):
            with self.subTest(length=length):
                bad = bytearray(buf)
                struct.pack_into("=I", bad, recs[1][0], length)
                self.write_journal(bad)
                if length in (0, 1 << 30):
                    self.assert_refused(self.p("a.lock"),
                                        f"the record at byte {recs[1][0]} of {len(bad)}")
                    continue
                log = self.restart()
                self.assertIn(f"torn record at byte {recs[1][0]} of {len(bad)}", log)
                self.assert_restored(a, {"a.lock": infos["a.lock"]}, named=False)
                self.m.crash()
        self.write_journal(buf)        # the undamaged journal: both come back
        self.restart()
        self.assert_restored(a, infos, named=False)

    def test_version_1_journal_and_the_reviews_record(self):
        """A journal written by version 1 (u16 name counts) is restored; the
        review's record, whose count wrapped past 65,535 names (valid
        checksum, more names than the count says), refuses to start."""
        a = agent(self)
        a.ok("create", path=self.p("before.lock"))
        a.ok("create", path=self.p("bomb.lock"))
        a.ok("link", path=self.p("bomb.lock"), dst=self.p("b1"))
        a.ok("create", path=self.p("after.lock"))
        infos = {n: lockinfo(self.p(n)) for n in ("before.lock", "b1", "bomb.lock", "after.lock")}
        self.m.crash()
        buf = self.read_journal()

        def as_v1(wrap_name=None):
            out = bytearray(buf[:HEADER_SIZE])
            struct.pack_into("=I", out, 8, 1)
            refresh_header(out)
            at = None
            for off, n in frames(buf):
                body = bytearray(buf[off + FRAME:off + n])
                if body[0] == 2:                       # LOCK
                    nl = struct.unpack_from("=H", body, LOCK_NAME_AT)[0]
                    name = bytes(body[LOCK_NAME_AT + 2:LOCK_NAME_AT + 2 + nl])
                    c = LOCK_NAME_AT + 2 + nl
                    count = struct.unpack_from("=I", body, c)[0]
                    if name == wrap_name:
                        count = 0      # fewer than it holds: as 65,536 more names wrapped it
                        at = len(out)
                    body[c:c + 4] = struct.pack("=H", count)
                    assert body[-4:] == b"\0\0\0\0"   # no sharers: version 3's count
                    del body[-4:]
                out += struct.pack("=II", len(body), crc32c(bytes(body))) + body
            return out, at

        old, _ = as_v1()
        self.write_journal(old)
        log = self.restart()
        self.assert_summary(log, 3, 0, 0)
        self.assert_restored(a, infos, named=False)
        self.assertEqual(os.stat(self.p("bomb.lock")).st_nlink, 2)
        self.m.crash()
        current = self.read_journal()                 # rewritten as the current version
        bomb, at = as_v1(b"b1")
        self.assertIsNotNone(at)
        self.write_journal(bomb)
        self.assert_refused(self.p("before.lock"), f"the record at byte {at} of {len(bomb)} "
                            r"is damaged")
        self.write_journal(current)
        log = self.restart()
        self.assert_summary(log, 3, 0, 0)
        self.assert_restored(a, infos, named=False)

    def check_unreadable(self, patch, message):
        a = agent(self)
        os.mkdir(self.p("d"))
        infos = self.hold(a, ["a.lock", "d/b.lock"])
        seen = max(i["fence"] for i in infos.values())
        self.m.crash()
        buf = self.read_journal()
        patch(buf)
        self.write_journal(buf)
        log = self.restart()
        self.assertIn(f"journal {self.journal_path()}: {message}: no lock restored", log)
        self.assertEqual(summary(log), (0, 0, 0, 0), log)
        self.assertEqual(self.names(), [])
        self.assertEqual(metrics(self.m)["lockfs_locks_held"], 0)
        self.assertGreater(self.cycle_fence(), seen)
        # the daemon serves normally
        self.assertEqual(a.err("create", path=self.p("a.lock")), 0)
        self.assertEqual(lockinfo(self.p("a.lock"))["pid"], a.pid)

    def test_wrong_magic(self):
        def patch(buf):
            buf[0:8] = b"NOTLOCKS"
        self.check_unreadable(patch, "not a lockfs journal")

    def test_unsupported_version(self):
        def patch(buf):
            struct.pack_into("<I", buf, 8, 99)
            refresh_header(buf)     # a well-formed header of version 99
        self.check_unreadable(patch, "unsupported version")

    def test_version_changed_without_header_crc(self):
        def patch(buf):
            struct.pack_into("<I", buf, 8, 99)
        a = agent(self)
        self.hold(a, ["a.lock"])
        self.m.crash()
        buf = self.read_journal()
        patch(buf)
        self.write_journal(buf)
        log = self.restart()
        self.assertRegex(log, r"(not a lockfs journal|unsupported version): no lock restored")
        self.assertEqual(self.names(), [])

    def test_shorter_than_header(self):
        a = agent(self)
        self.hold(a, ["a.lock"])
        self.m.crash()
        buf = self.read_journal()
        self.write_journal(buf[:20])
        log = self.restart()
        self.assertIn("not a lockfs journal: no lock restored", log)
        self.assertEqual(self.names(), [])

    def test_random_damage_never_invents(self):
        """Seeded random bit flips anywhere in the journal: every restart
        serves, and what comes back is a subset of what was held, each lock
        exactly as it was. (Nothing is released here: a damaged release
        record would rightly bring back the lock it released.)"""
        rnd = random.Random(8254)
        a = agent(self)
        held = ["a.lock", "b.lock", "c.lock", "d.lock"]
        top = 0
        for round_ in range(12):
            with self.subTest(round=round_):
                for n in held:
                    if gone(self.p(n)):
                        a.ok("create", path=self.p(n))   # one record per lock
                        self.assertGreater(lockinfo(self.p(n))["fence"], top)
                infos = {n: lockinfo(self.p(n)) for n in held}
                top = max([top] + [i["fence"] for i in infos.values()])
                self.m.crash()
                buf = self.read_journal()
                good = bytes(buf)
                for _ in range(rnd.randint(1, 3)):
                    i = rnd.randrange(len(buf))
                    buf[i] ^= 1 << rnd.randrange(8)
                self.write_journal(buf)
                try:
                    log = self.restart()
                except RuntimeError as e:              # damage other than a torn tail
                    self.assertIn("refusing to start", str(e))
                    self.write_journal(good)
                    log = self.restart()
                    self.assertEqual(self.names(), sorted(held), log)
                back = self.names()
                self.assertTrue(set(back) <= set(held), f"invented locks: {back}\n{log}")
                for n in back:
                    info = lockinfo(self.p(n))
                    for k in ("pid", "fence", "acquired_at", "expires_at", "how"):
                        self.assertEqual(info[k], infos[n][k], f"{n} {k}\n{log}")
                if set(back) != set(held):
                    self.assertRegex(log, r"torn record|not a lockfs journal|"
                                     r"unsupported version")


class TestNameCap(RestartCase):
    """The review's 65,536-name journal attack, against a small cap: link
    fails with EMLINK at max_names names, and a restart keeps every lock,
    recorded before and after the one with the most names."""
    MOUNT_OPTS = "max_names=16"

    def test_link_until_emlink_then_restart(self):
        victim, attacker, other = agent(self), agent(self), agent(self)
        for i in range(10):
            victim.ok("create", path=self.p(f"v{i}.lock"))
        attacker.ok("create", path=self.p("bomb.lock"))
        linked = 0
        while True:
            e = attacker.err("link", path=self.p("bomb.lock"), dst=self.p(f"{linked:x}"))
            if e:
                break
            linked += 1
            self.assertLess(linked, 1000, "link never stopped")
        self.assertEqual(e, errno.EMLINK)
        self.assertEqual(linked, 15)
        self.assertEqual(os.stat(self.p("bomb.lock")).st_nlink, 16)
        for i in range(10):
            victim.ok("create", path=self.p(f"w{i}.lock"))
        held = {n: lockinfo(self.p(n)) for n in
                [f"v{i}.lock" for i in range(10)] + [f"w{i}.lock" for i in range(10)]}

        log = self.crash_restart()
        self.assertNotIn("damaged", log)
        self.assert_summary(log, 21, 0, 0)
        for n, info in held.items():
            now = lockinfo(self.p(n))
            self.assertEqual((now["pid"], now["fence"]), (victim.pid, info["fence"]), n)
            self.assertEqual(other.err("create", path=self.p(n)), errno.EEXIST, n)
        self.assertEqual(os.stat(self.p("bomb.lock")).st_nlink, 16)
        for i in range(linked):
            self.assertEqual(lockinfo(self.p(f"{i:x}"))["pid"], attacker.pid)
        self.assertEqual(attacker.err("link", path=self.p("bomb.lock"), dst=self.p("more")),
                         errno.EMLINK)
        # the cap counts the names a lock has now
        attacker.ok("unlink", path=self.p("0"))
        attacker.ok("link", path=self.p("bomb.lock"), dst=self.p("more"))
        self.assertEqual(attacker.err("link", path=self.p("bomb.lock"), dst=self.p("again")),
                         errno.EMLINK)


class FlockCase(RestartCase):

    def flock_holder(self, p):
        proc, out = spawn(self, [sys.executable, "-c", FLOCK_HOLDER, p])
        pid = int(out.expect("HELD", timeout=T).split()[1])
        self.assertEqual(lockinfo(p)["pid"], pid)
        return proc, out, pid

    def waiter(self, p):
        proc, out = spawn(self, [sys.executable, "-c", FLOCK_WAITER, p])
        pid = int(out.expect("WAITING", timeout=T).split()[1])
        return proc, out, pid

    def wait_waiters(self, k):
        wait_until(lambda: metrics(self.m)["lockfs_waiters"] == k, T, f"lockfs_waiters == {k}")

    def assert_taken_by(self, p, pid):
        """Another process can neither flock nor create p."""
        r = subprocess.run(["flock", "-n", p, "true"], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=T)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(errno_of(create, p), errno.EEXIST)
        o = agent(self)
        self.assertEqual(o.err("create", path=p), errno.EEXIST)
        o.exit()
        self.assertEqual(lockinfo(p)["pid"], pid)


class TestRestartFlock(FlockCase):
    """A flock holder keeps its lock across a restart although its
    descriptor died with the old mount; it ends with the holder's death,
    its unlink or its TTL. Waiters of the old mount get an error."""

    def test_flock_holder_keeps_lock_until_exit(self):
        p = self.p("f.lock")
        proc, out, pid = self.flock_holder(p)
        fence = lockinfo(p)["fence"]
        wproc, wout, wpid = self.waiter(p)
        self.wait_waiters(1)
        self.m.crash()
        line = wout.get(T, "the old waiter's answer")
        self.assertTrue(line.startswith("ERR "), f"a waiter of the dead mount got {line!r}")
        log = self.restart()
        self.assert_summary(log, 1, 0, 0)
        info = lockinfo(p)
        self.assertEqual((info["pid"], info["fence"]), (pid, fence))
        self.assert_taken_by(p, pid)
        self.assertEqual(metrics(self.m)["lockfs_waiters"], 0)
        self.assert_released_at_exit(p, proc)
        self.assertIsNone(wproc.poll(), "the old waiter lives on")

    def test_lock_granted_through_flock_survives(self):
        """A lock handed to a flock waiter (how: flock) comes back held by
        that waiter and ends when it exits."""
        p = self.p("f.lock")
        h = Holder(p)
        self.addCleanup(h.kill)
        wproc, wout, wpid = self.waiter(p)
        self.wait_waiters(1)
        h.release()
        self.assertEqual(wout.get(T, "grant"), "GOT")
        before = lockinfo(p)
        self.assertEqual((before["pid"], before["how"]), (wpid, "flock"))
        log = self.crash_restart()
        self.assert_summary(log, 1, 0, 0)
        after = lockinfo(p)
        for k in ("pid", "how", "fence", "acquired_at"):
            self.assertEqual(after[k], before[k], k)
        self.assert_taken_by(p, wpid)
        self.assert_released_at_exit(p, wproc)

    def test_restored_flock_lock_is_handed_to_a_new_waiter(self):
        p = self.p("f.lock")
        proc, out, pid = self.flock_holder(p)
        fence = lockinfo(p)["fence"]
        self.crash_restart()
        self.assertEqual(lockinfo(p)["pid"], pid)
        wproc, wout, wpid = self.waiter(p)
        self.wait_waiters(1)
        proc.stdin.close()
        self.assertEqual(wout.get(T, "grant"), "GOT")
        info = lockinfo(p)
        self.assertEqual(info["pid"], wpid)
        self.assertGreater(info["fence"], fence)

    def test_restored_flock_holder_unlinks(self):
        p = self.p("f.lock")
        proc, out, pid = self.flock_holder(p)
        self.crash_restart()
        self.assert_taken_by(p, pid)
        proc.stdin.write("unlink\n")
        proc.stdin.flush()
        self.assertEqual(out.get(T, "unlink answer"), "0")
        self.assert_gone_now(p)
        self.assertIsNone(proc.poll())


class TestRestartFlockTTL(FlockCase):
    MOUNT_OPTS = "ttl=3,holder_ttl=3"      # live holders too (SPEC R5.3)

    def test_restored_flock_lock_ends_with_ttl(self):
        p = self.p("f.lock")
        t0 = time.monotonic()
        proc, out, pid = self.flock_holder(p)
        self.crash_restart()
        self.assertEqual(lockinfo(p)["pid"], pid)
        w = DeleteWatch(self, p)
        rc, text = w.wait(max(0.1, t0 + 6 * SLOW - time.monotonic()))
        self.assertIn("DELETE_SELF", text)
        self.assertGreater(time.monotonic() - t0, 2.5)
        self.assertIsNone(proc.poll())


class TestBareMountPoint(RestartCase):
    """With no daemon serving it, the mount point directory takes no files,
    not even root's."""

    def assert_immutable(self):
        d = self.m.mnt
        self.assertFalse(self.m.is_mounted())
        r = subprocess.run(["lsattr", "-d", d], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("i", r.stdout.split()[0], r.stdout)
        self.assertEqual(errno_of(create, os.path.join(d, "x.lock")), errno.EPERM)
        self.assertEqual(errno_of(os.open, os.path.join(d, "y"), os.O_WRONLY | os.O_CREAT,
                                  0o644), errno.EPERM)
        self.assertEqual(errno_of(os.mkdir, os.path.join(d, "sub")), errno.EPERM)
        self.assertEqual(errno_of(os.symlink, "/", os.path.join(d, "ln")), errno.EPERM)
        r = subprocess.run(["sh", "-c", f"echo $$ > '{d}/z.lock'"], capture_output=True)
        self.assertNotEqual(r.returncode, 0)
        r = subprocess.run(harness.as_user(["touch", os.path.join(d, "u.lock")]),
                           capture_output=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(os.listdir(d), [])

    def test_lazily_unmounted_dead_mount(self):
        p = self.p("x.lock")
        h = Holder(p)
        self.addCleanup(h.kill)
        self.m.crash()
        r = subprocess.run(["umount", "-l", self.m.mnt], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_immutable()
        log = self.restart()
        self.assert_summary(log, 1, 0, 0)
        self.assertTrue(self.m.is_mounted())
        self.assertEqual(lockinfo(p)["pid"], h.pid)
        q = self.p("new.lock")
        create(q)
        self.assertEqual(lockinfo(q)["pid"], os.getpid())
        os.unlink(q)
        self.assert_gone_now(q)

    def test_fusermount_lazy_unmount(self):
        self.m.crash()
        r = subprocess.run(["fusermount3", "-uz", self.m.mnt], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_immutable()
        self.restart()
        create(self.p("x.lock"))
        os.unlink(self.p("x.lock"))

    def test_clean_unmount(self):
        self.m.unmount()
        self.assertEqual(self.m.proc.wait(timeout=T), 0, self.m.log())
        self.assert_immutable()
        self.m.start()
        create(self.p("x.lock"))
        self.assertEqual(lockinfo(self.p("x.lock"))["pid"], os.getpid())
        os.unlink(self.p("x.lock"))


class TestStateDirInUse(RestartCase):

    def test_second_daemon_on_same_state_dir(self):
        h = Holder(self.p("x.lock"))
        self.addCleanup(h.kill)
        before = lockinfo(self.p("x.lock"))
        with open(self.m.fence_file) as f:
            fence_text = f.read()
        for opts in (f"state_dir={self.m.state_dir},fence_file={self.m.fence_file}",
                     f"state_dir={self.m.state_dir}"):
            with self.subTest(opts=opts):
                second = harness.Mount(opts)
                self.addCleanup(second.stop)
                with self.assertRaises(RuntimeError) as cm:
                    second.start()
                msg = str(cm.exception)
                self.assertIn("daemon exited before serving", msg)
                self.assertIn(f"state directory {self.m.state_dir} is in use by another lockfs",
                              msg)
                self.assertNotEqual(second.proc.returncode, 0)
                self.assertFalse(second.is_mounted())
        # the first daemon serves on, untouched
        self.assertIsNone(self.m.proc.poll())
        with open(self.m.fence_file) as f:
            self.assertEqual(f.read(), fence_text)
        after = lockinfo(self.p("x.lock"))
        self.assertEqual((after["pid"], after["fence"]), (before["pid"], before["fence"]))
        self.assertGreater(self.cycle_fence(), before["fence"])
        # and its state still restores
        log = self.crash_restart()
        self.assert_summary(log, 1, 0, 0)
        self.assertEqual(lockinfo(self.p("x.lock"))["pid"], h.pid)


class TestCompaction(RestartCase):

    CYCLES = 20000 if not harness.WRAPPER else 2000
    LIMIT = 2 << 20

    def test_journal_stays_small(self):
        a = agent(self)
        held = [f"h{i}.lock" for i in range(5)]
        for n in held:
            a.ok("create", path=self.p(n), data='{"pid": {pid}, "name": "%s"}' % n)
        infos = {n: lockinfo(self.p(n)) for n in held}
        p = self.p("cycle.lock")
        content = b'{"step": "cycling", "pad": "' + b"x" * 100 + b'"}'
        biggest = 0
        last = 0
        for i in range(self.CYCLES):
            fd = os.open(p, EXCL, 0o644)
            os.write(fd, content)
            os.close(fd)
            if i == self.CYCLES // 2:
                last = lockinfo(p)["fence"]
                a.ok("create", path=self.p("mid.lock"))
                held.append("mid.lock")
                infos["mid.lock"] = lockinfo(self.p("mid.lock"))
            os.unlink(p)
            if i % 500 == 0:
                biggest = max(biggest, os.path.getsize(self.journal_path()))
        size = os.path.getsize(self.journal_path())
        biggest = max(biggest, size)
        self.assertLess(biggest, self.LIMIT,
                        f"journal grew to {biggest} bytes holding {len(held)} locks")
        end = self.fence_end()
        create(p)
        f = lockinfo(p)["fence"]
        self.assertGreater(f, last)
        self.assertGreaterEqual(f, self.CYCLES)
        self.assertLess(f, self.fence_end())
        self.assertGreaterEqual(self.fence_end(), end)
        os.unlink(p)
        log = self.crash_restart()
        self.assertNotIn("damaged", log)
        self.assert_summary(log, len(held), 0, 0)
        self.assertEqual(self.names(), sorted(held))
        for n in held:
            s = status(self.p(n))
            self.assertEqual(s["lockfs"]["pid"], a.pid, n)
            self.assertEqual(s["lockfs"]["fence"], infos[n]["fence"], n)
            if n != "mid.lock":
                self.assertEqual(s["name"], n)
        self.assertLess(os.path.getsize(self.journal_path()), 64 << 10,
                        "the journal right after a restart holds only the live locks")


if __name__ == "__main__":
    harness.main()
