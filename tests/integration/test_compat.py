#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Compatibility matrix: the real locking tools and idioms people already use,
each run unmodified against a real mount. One test per row, each checking
  (a) taking a free lock works, and who the status says holds it,
  (b) a second taker while it is held is refused the way that tool reports
      "busy" (exit status, errno, message),
  (c) releasing it the tool's own way works and the name is gone after,
  (d) what happens when the taker is killed: released at once, or (detached
      locks, directories) not.
Rows: flock(1); dotlockfile with and without -p; lockfile-create/-remove
with and without --use-pid; procmail's lockfile; bash noclobber; mkdir;
Node writeFileSync with and without 'wx'; Python open(p, 'x'); Python
fcntl.flock on open(p, 'w'); Go os.OpenFile(O_CREATE|O_EXCL).

Needs (Debian): util-linux, liblockfile-bin, lockfile-progs, procmail,
nodejs, golang-go."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import lockfs_it  # noqa: E402
from harness import (TEST_USER, TEST_USER2, LockfsTestCase, as_user, errno,  # noqa: E402
                     errno_of, wait_until)
from lockfs_it import EXCL, lockinfo, spawn, status, gone, exists, metrics  # noqa: E402

T = 20                  # bound on every blocking call
LINGER = 0.3            # "not released": still there this long after the kill


def run(argv, **kw):
    """Run a (second) taker to completion; never blocks longer than T."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(argv, capture_output=True, text=True, timeout=T, **kw)


class CompatCase(LockfsTestCase):

    def assert_gone_now(self, path):
        lockfs_it.assert_gone_now(self, path)

    def assert_released_at_once(self, path, proc):
        """Kill proc (SIGKILL) and check the name vanishes, for every
        observer at once (how soon after the kill: tests/bench/run.sh,
        killed)."""
        proc.kill()
        proc.wait(timeout=T)
        wait_until(lambda: gone(path), what=f"{path} released on the taker's death")
        self.assert_gone_now(path)

    def assert_survives_death(self, path, proc):
        """Kill proc (SIGKILL); the name stays."""
        proc.kill()
        proc.wait(timeout=T)
        time.sleep(LINGER)          # nothing to await: we check that nothing happens
        self.assertTrue(exists(path), f"{path} vanished with its taker")

    def took(self, out, proc, want_rc=0):
        """Parse "TOOK rc pid" from a taker script; check rc and pid."""
        f = out.expect("TOOK", timeout=T).split()
        self.assertEqual(int(f[1]), want_rc, f"taker exit status: {f}")
        self.assertEqual(int(f[2]), proc.pid, "the shell is the spawned process")
        return int(f[2])

    def release_by_script(self, proc, out, want="UNLOCKED 0"):
        """Let the taker script go on to its release step; check its status."""
        proc.stdin.close()
        line = out.expect("UNLOCKED", timeout=T)
        self.assertEqual(line, want)
        self.assertEqual(proc.wait(timeout=T), 0)

    def shell(self, script, path, user=None):
        """bash -c script with $1 = path, optionally as an unprivileged user."""
        argv = ["bash", "-c", script, "bash", path]
        if user:
            argv = as_user(argv, user)
        return spawn(self, argv)


# ---------------------------------------------------------------- flock(1)

FLOCK_CMD = 'echo "RUN $$"; read -r _; echo "UNLOCKED 0"'


class TestFlockCommand(CompatCase):

    def test_flock1(self):
        """flock FILE cmd / -n / -w / -E: the flock(1) process holds the name
        (how=creator when it created it, how=flock when it waited for it);
        busy is exit 1 or the -E code; release is the command's end; a kill
        of flock(1) releases at once, though its command still runs with the
        inherited descriptor (on a kernel fs the lock would stay with it)."""
        p = self.p("flock.lock")
        # (a) take a free name
        a, aout = spawn(self, ["flock", p, "sh", "-c", FLOCK_CMD])
        aout.expect("RUN", timeout=T)
        st = lockinfo(p)
        self.assertEqual(st["pid"], a.pid, "flock(1) itself holds the lock")
        self.assertEqual(st["comm"], "flock")
        self.assertEqual(st["how"], "creator")
        fence = st["fence"]
        # (b) busy: -n exits 1 at once, -E sets the code, -w gives up after
        r = run(["flock", "-n", p, "true"])
        self.assertEqual(r.returncode, 1, r.stderr)
        r = run(["flock", "-n", "-E", "75", p, "true"])
        self.assertEqual(r.returncode, 75, r.stderr)
        t0 = time.monotonic()
        r = run(["flock", "-w", "1", "-E", "76", p, "true"])
        waited = time.monotonic() - t0
        self.assertEqual(r.returncode, 76, r.stderr)
        self.assertGreaterEqual(waited, 0.9)    # and it gave up: the holder never lets go
        r = run(["flock", "-w", "0.2", p, "true"])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(metrics(self.m)["lockfs_waiters"], 0, "a timed-out waiter stayed")
        st = lockinfo(p)
        self.assertEqual((st["pid"], st["fence"]), (a.pid, fence), "busy takers changed it")
        # a waiting flock(1) gets it when the command of the first one ends
        w, wout = spawn(self, ["flock", "-w", "10", p, "sh", "-c", FLOCK_CMD])
        wait_until(lambda: metrics(self.m)["lockfs_waiters"] == 1, T, "flock -w waiting")
        self.assertTrue(wout.q.empty(), "flock -w ran its command while the lock was held")
        self.release_by_script(a, aout)
        wout.expect("RUN", timeout=T)
        st = lockinfo(p)
        self.assertEqual(st["pid"], w.pid)
        self.assertEqual(st["how"], "flock")
        self.assertGreater(st["fence"], fence)
        # (c) the command ends: flock(1) closes the file, the name is gone
        self.release_by_script(w, wout)
        self.assert_gone_now(p)
        # (d) flock(1) killed while its command runs (and keeps the open file)
        k, kout = spawn(self, ["flock", p, "sh", "-c", 'echo "RUN $$"; read -r _'])
        child = int(kout.expect("RUN", timeout=T).split()[1])
        self.addCleanup(lambda: errno_of(os.kill, child, signal.SIGKILL))
        self.assertEqual(lockinfo(p)["pid"], k.pid)
        self.assert_released_at_once(p, k)
        self.assertEqual(errno_of(os.kill, child, 0), 0, "the command was still running")
        r = run(["flock", "-n", p, "true"])
        self.assertEqual(r.returncode, 0, "a new flock -n gets the name at once")


# ------------------------------------------------- dotlock tools (link(2))

class DotlockCase(CompatCase):
    """dotlockfile is setgid mail: the kernel lets it into a FUSE mount only
    with allow_other. The tools run as an unprivileged user, as usual."""

    MOUNT_OPTS = "allow_other"

    def check_claimed(self, path, pid):
        st = status(path)
        self.assertEqual(st["lockfs"]["pid"], pid, f"status {st}")
        self.assertEqual(st["lockfs"]["how"], "claim")
        self.assertEqual(st["content"].strip(), str(pid))
        self.assertEqual(st["lockfs"]["user"], TEST_USER)
        return st

    def check_detached(self, path, content):
        st = status(path)
        self.assertIsNone(st["lockfs"]["pid"], f"status {st}")
        self.assertEqual(st["lockfs"]["how"], "detached")
        self.assertEqual(st["content"], content)
        self.assertEqual(st["lockfs"]["user"], TEST_USER)
        return st

    def check_no_temp_names(self, path):
        """The tools' temporary link sources are gone: only the lock stays."""
        d = os.path.dirname(path)
        self.assertEqual(sorted(os.listdir(d)), sorted([".lockfs", os.path.basename(path)]))

    def check_stale_removal(self, path, remove_argv):
        """A detached lock outlives its taker; another uid cannot remove it;
        its own uid removes it from a fresh process, the tool's way."""
        r = run(as_user(remove_argv, TEST_USER2))
        self.assertNotEqual(r.returncode, 0, "another user removed a detached lock")
        self.assertTrue(exists(path))
        r = run(as_user(remove_argv, TEST_USER))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_gone_now(path)


DOTLOCK_P = ('dotlockfile -p -r 0 "$1"; echo "TOOK $? $$"; read -r _; '
             'dotlockfile -u "$1"; echo "UNLOCKED $?"')
DOTLOCK = ('dotlockfile -r 0 "$1"; echo "TOOK $? $$"; read -r _; '
           'dotlockfile -u "$1"; echo "UNLOCKED $?"')
L_MAXTRYS = 4           # liblockfile: lockfile_create gave up (the lock is held)


class TestDotlockfile(DotlockCase):

    def test_dotlockfile_pid(self):
        """dotlockfile -p: the calling shell holds it (a pid claim); a second
        dotlockfile exits 4 (L_MAXTRYS); -u releases; the shell's death
        releases at once."""
        p = self.p("mbox.lock")
        sh, out = self.shell(DOTLOCK_P, p, TEST_USER)
        pid = self.took(out, sh)
        st = self.check_claimed(p, pid)
        self.check_no_temp_names(p)
        for opts in (["-p"], []):
            r = run(as_user(["dotlockfile"] + opts + ["-r", "0", p]))
            self.assertEqual(r.returncode, L_MAXTRYS, f"dotlockfile {opts}: {r}")
        self.assertEqual(lockinfo(p)["fence"], st["lockfs"]["fence"])
        self.check_no_temp_names(p)
        self.release_by_script(sh, out)
        self.assert_gone_now(p)
        sh, out = self.shell(DOTLOCK_P, p, TEST_USER)
        self.took(out, sh)
        self.assert_released_at_once(p, sh)
        r = run(as_user(["bash", "-c", DOTLOCK_P.replace("read -r _; ", ""), "bash", p]))
        self.assertEqual(r.stdout.split()[:2], ["TOOK", "0"], r)
        self.assertEqual(r.returncode, 0, r)
        # the command form: dotlockfile -p writes its own pid and holds the
        # lock while the command runs, then removes it
        d, out = spawn(self, as_user(["dotlockfile", "-p", "-r", "0", p, "sh", "-c",
                                      'echo "RUN $$"; read -r _']))
        out.expect("RUN", timeout=T)
        st = status(p)
        self.assertEqual((st["lockfs"]["pid"], st["lockfs"]["comm"], st["lockfs"]["how"]),
                         (d.pid, "dotlockfile", "creator"), st)
        r = run(as_user(["dotlockfile", "-p", "-r", "0", p]))
        self.assertEqual(r.returncode, L_MAXTRYS, r)
        d.stdin.close()
        self.assertEqual(d.wait(timeout=T), 0)
        self.assert_gone_now(p)

    def test_dotlockfile_no_pid(self):
        """dotlockfile without -p writes "0\\n": a detached lock. Busy is exit
        4; -u releases; the taker's death leaves it (liblockfile's own
        5-minute age rule is its only staleness test); only its uid removes it."""
        p = self.p("mbox.lock")
        sh, out = self.shell(DOTLOCK, p, TEST_USER)
        self.took(out, sh)
        self.check_detached(p, "0\n")
        self.check_no_temp_names(p)
        for opts in (["-p"], []):
            r = run(as_user(["dotlockfile"] + opts + ["-r", "0", p]))
            self.assertEqual(r.returncode, L_MAXTRYS, f"dotlockfile {opts}: {r}")
        self.release_by_script(sh, out)
        self.assert_gone_now(p)
        sh, out = self.shell(DOTLOCK, p, TEST_USER)
        self.took(out, sh)
        self.assert_survives_death(p, sh)
        self.check_detached(p, "0\n")
        r = run(as_user(["dotlockfile", "-r", "0", p]))
        self.assertEqual(r.returncode, L_MAXTRYS, "still busy after the taker died")
        self.check_stale_removal(p, ["dotlockfile", "-u", p])


class TestDotlockfileMountOption(CompatCase):

    def test_dotlockfile_needs_allow_other(self):
        """Without allow_other the kernel keeps setgid dotlockfile out of
        the mount: exit 5 (L_ERROR), "Permission denied"."""
        r = run(["dotlockfile", "-r", "0", self.p("x.lock")], cwd="/")
        self.assertEqual(r.returncode, 5, r)
        self.assertIn("Permission denied", r.stderr)
        self.assertEqual(os.listdir(self.m.mnt), [".lockfs"])


LFC_PID = ('lockfile-create --use-pid --retry 0 "$1"; echo "TOOK $? $$"; read -r _; '
           'lockfile-remove "$1"; echo "UNLOCKED $?"')
LFC = ('lockfile-create --retry 0 "$1"; echo "TOOK $? $$"; read -r _; '
       'lockfile-remove "$1"; echo "UNLOCKED $?"')


class TestLockfileProgs(DotlockCase):

    def test_lockfile_create_use_pid(self):
        """lockfile-create --use-pid FILE takes FILE.lock for the calling
        shell (claim); a second one exits 4; lockfile-remove releases; the
        shell's death releases at once."""
        base = self.p("spool")
        p = base + ".lock"
        sh, out = self.shell(LFC_PID, base, TEST_USER)
        pid = self.took(out, sh)
        self.check_claimed(p, pid)
        self.check_no_temp_names(p)
        for opts in (["--use-pid"], []):
            r = run(as_user(["lockfile-create"] + opts + ["--retry", "0", base]))
            self.assertEqual(r.returncode, L_MAXTRYS, f"lockfile-create {opts}: {r}")
            self.assertIn("exceeded maximum number of lock attempts", r.stderr)
        r = run(as_user(["lockfile-check", "--use-pid", base]))
        self.assertEqual(r.returncode, 0, "lockfile-check sees a valid lock")
        self.release_by_script(sh, out)
        self.assert_gone_now(p)
        r = run(as_user(["lockfile-check", "--use-pid", base]))
        self.assertNotEqual(r.returncode, 0, "lockfile-check after release")
        sh, out = self.shell(LFC_PID, base, TEST_USER)
        self.took(out, sh)
        self.assert_released_at_once(p, sh)

    def test_lockfile_create(self):
        """lockfile-create without --use-pid writes "0\\n": detached. Busy is
        exit 4; lockfile-remove releases; the taker's death leaves it; only
        its uid removes it (lockfile-remove by another user fails, EPERM)."""
        base = self.p("spool")
        p = base + ".lock"
        sh, out = self.shell(LFC, base, TEST_USER)
        self.took(out, sh)
        self.check_detached(p, "0\n")
        self.check_no_temp_names(p)
        r = run(as_user(["lockfile-create", "--retry", "0", base]))
        self.assertEqual(r.returncode, L_MAXTRYS, r)
        self.release_by_script(sh, out)
        self.assert_gone_now(p)
        sh, out = self.shell(LFC, base, TEST_USER)
        self.took(out, sh)
        self.assert_survives_death(p, sh)
        self.check_detached(p, "0\n")
        r = run(as_user(["lockfile-create", "--retry", "0", base]))
        self.assertEqual(r.returncode, L_MAXTRYS, "still busy after the taker died")
        r = run(as_user(["lockfile-remove", base], TEST_USER2))
        self.assertIn("Operation not permitted", r.stderr)
        self.check_stale_removal(p, ["lockfile-remove", base])


PROCMAIL = ('lockfile -r 0 "$1"; echo "TOOK $? $$"; read -r _; '
            'rm -f "$1"; echo "UNLOCKED $?"')
EX_CANTCREAT = 73       # procmail's lockfile: gave up (the lock is held)


class TestProcmailLockfile(DotlockCase):

    def test_procmail_lockfile(self):
        """procmail's lockfile -r 0 writes "0": detached. Busy is exit 73
        ("Sorry, giving up"); rm -f releases; the taker's death leaves it;
        its own -l (age) force-unlock works for the same uid."""
        p = self.p("important.lock")
        sh, out = self.shell(PROCMAIL, p, TEST_USER)
        self.took(out, sh)
        self.check_detached(p, "0")
        self.check_no_temp_names(p)
        t0 = time.monotonic()
        r = run(as_user(["lockfile", "-r", "0", p]))
        self.assertEqual(r.returncode, EX_CANTCREAT, r)
        self.assertIn("Sorry, giving up", r.stderr)
        # lockfile sleeps 8 s before a retry: well under that, it made none
        self.assertLess(time.monotonic() - t0, 8, "-r 0 does not retry")
        self.release_by_script(sh, out)
        self.assert_gone_now(p)
        sh, out = self.shell(PROCMAIL, p, TEST_USER)
        self.took(out, sh)
        self.assert_survives_death(p, sh)
        st = self.check_detached(p, "0")
        r = run(as_user(["lockfile", "-r", "0", p]))
        self.assertEqual(r.returncode, EX_CANTCREAT, "still busy after the taker died")
        # -l 1: a lock whose mtime is over 1 s old is stale: forced, retaken
        wait_until(lambda: time.time() - os.stat(p).st_mtime > 1.2, what="lock 1 s old")
        r = run(as_user(["lockfile", "-1", "-r", "1", "-l", "1", "-s", "0", p]))
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("Forcing lock", r.stderr)
        st2 = self.check_detached(p, "0")
        self.assertGreater(st2["lockfs"]["fence"], st["lockfs"]["fence"], "a new lock")
        self.check_stale_removal(p, ["rm", "-f", p])


# ------------------------------------------------------------- shell idioms

NOCLOBBER = ('set -o noclobber; echo $$ > "$1"; echo "TOOK $? $$"; read -r _; '
             'rm "$1"; echo "UNLOCKED $?"')
MKDIR = 'mkdir "$1"; echo "TOOK $? $$"; read -r _; rmdir "$1"; echo "UNLOCKED $?"'


class TestShell(CompatCase):

    def test_bash_noclobber(self):
        """set -o noclobber; echo $$ > f: the shell holds it; a second shell
        fails with "cannot overwrite existing file" (exit 1), plain > with
        "File exists"; rm by the shell releases; its death releases at once."""
        p = self.p("deploy.lock")
        sh, out = self.shell(NOCLOBBER, p)
        pid = self.took(out, sh)
        st = status(p)
        self.assertEqual(st["lockfs"]["pid"], pid)
        self.assertEqual(st["pid"], pid)
        self.assertEqual(st["lockfs"]["comm"], "bash")
        self.assertEqual(st["lockfs"]["how"], "creator")
        r = run(["bash", "-c", 'set -o noclobber; echo $$ > "$1"', "bash", p])
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("cannot overwrite existing file", r.stderr)
        r = run(["bash", "-c", 'echo $$ > "$1"', "bash", p])
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("File exists", r.stderr)
        self.assertEqual(status(p)["content"], f"{pid}\n", "busy writers changed it")
        self.release_by_script(sh, out)
        self.assert_gone_now(p)
        sh, out = self.shell(NOCLOBBER, p)
        self.took(out, sh)
        self.assert_released_at_once(p, sh)

    def test_mkdir(self):
        """mkdir as a lock of a name -o dirlocks= does not match (job.lck;
        *.lock names are directory locks, test_dirlock.py): atomic (a second
        mkdir fails, "File exists"), but such a directory is a namespace, not
        a lock: it has no holder and no status, and it is NOT released when
        its maker dies."""
        p = self.p("job.lck")
        sh, out = self.shell(MKDIR, p)
        self.took(out, sh)
        self.assertTrue(os.path.isdir(p))
        self.assertEqual(errno_of(open, p), errno.EISDIR, "a directory has no status")
        with open(self.p(".lockfs", "locks.json")) as f:
            self.assertEqual(json.load(f), [], "a directory is not a held lock")
        r = run(["mkdir", p])
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("File exists", r.stderr)
        self.release_by_script(sh, out)
        self.assert_gone_now(p)
        sh, out = self.shell(MKDIR, p)
        self.took(out, sh)
        self.assert_survives_death(p, sh)
        r = run(["mkdir", p])
        self.assertEqual(r.returncode, 1, "stale forever: mkdir still fails")
        r = run(["rmdir", p])
        self.assertEqual(r.returncode, 0, r)
        self.assert_gone_now(p)


# ------------------------------------------------------------- Node, Python

NODE = r"""
const fs = require('fs');
const [p, flag] = process.argv.slice(1);
const opts = flag ? { flag } : undefined;
try {
  fs.writeFileSync(p, JSON.stringify({ pid: process.pid, operation: 'apply' }), opts);
} catch (e) {
  console.log('TOOK', e.code, process.pid);
  process.exit(1);
}
console.log('TOOK', 0, process.pid);
process.stdin.resume();
process.stdin.on('end', () => {
  fs.unlinkSync(p);
  console.log('UNLOCKED 0');
});
"""

PY_X = r"""
import os, sys
p = sys.argv[1]
try:
    with open(p, "x") as f:
        f.write(str(os.getpid()))
except FileExistsError as e:
    print("TOOK", e.errno, os.getpid(), flush=True)
    sys.exit(1)
print("TOOK 0", os.getpid(), flush=True)
sys.stdin.read()
os.unlink(p)
print("UNLOCKED 0", flush=True)
"""

# open(p, 'w') then flock; "nb" = LOCK_NB, "alarm" = blocking with a 1 s
# alarm, "block" = blocking. Reports "TOOK errno pid" (on a failed flock
# also "WRITE errno" of a write through that handle), then per stdin line:
# "write" -> "WROTE errno", "unlock" -> "UNLOCKED 0" (LOCK_UN, then close).
PY_FLOCK = r"""
import errno, fcntl, os, signal, sys
p, how = sys.argv[1], sys.argv[2]
class Alarm(Exception):
    pass
def on_alarm(sig, frame):
    raise Alarm()
f = open(p, "w")
try:
    if how == "alarm":
        signal.signal(signal.SIGALRM, on_alarm)
        signal.alarm(1)
    fcntl.flock(f, fcntl.LOCK_EX | (fcntl.LOCK_NB if how == "nb" else 0))
    signal.alarm(0)
except Alarm:
    print("TOOK", errno.EINTR, os.getpid(), flush=True)
    sys.exit(1)
except OSError as e:
    try:
        os.write(f.fileno(), b"%d" % os.getpid())
        w = 0
    except OSError as e2:
        w = e2.errno
    print("TOOK", e.errno, os.getpid(), "WRITE", w, flush=True)
    sys.exit(1)
print("TOOK 0", os.getpid(), flush=True)
for line in sys.stdin:
    if line.strip() == "write":
        try:
            f.write(str(os.getpid()))
            f.flush()
            print("WROTE 0", flush=True)
        except OSError as e:
            print("WROTE", e.errno, flush=True)
    elif line.strip() == "unlock":
        fcntl.flock(f, fcntl.LOCK_UN)
        print("UNLOCKED 0", os.path.exists(p), flush=True)
        f.close()
"""


class TestNodePython(CompatCase):

    def node(self, p, flag):
        return spawn(self, ["node", "-e", NODE, p, flag])

    def check_node(self, flag):
        p = self.p("state.lock")
        node, out = self.node(p, flag)
        pid = self.took(out, node)
        st = status(p)
        self.assertEqual(st["lockfs"]["pid"], pid)
        self.assertEqual(st["lockfs"]["comm"], "node")
        self.assertEqual(st["lockfs"]["how"], "creator")
        self.assertEqual((st["pid"], st["operation"]), (pid, "apply"))
        for f in ("wx", ""):
            r = run(["node", "-e", NODE, p, f])
            self.assertEqual(r.returncode, 1, r)
            self.assertEqual(r.stdout.split()[:2], ["TOOK", "EEXIST"], f"flag {f!r}: {r}")
        self.assertEqual(status(p)["pid"], pid, "busy writers changed it")
        self.release_by_script(node, out)
        self.assert_gone_now(p)
        node, out = self.node(p, flag)
        self.took(out, node)
        self.assert_released_at_once(p, node)

    def test_node_write_file_wx(self):
        """fs.writeFileSync(p, data, {flag:'wx'}): node holds it; a second
        writer gets EEXIST ('wx' or not); unlinkSync releases; death releases."""
        self.check_node("wx")

    def test_node_write_file_no_wx(self):
        """fs.writeFileSync(p, data) (flag 'w', no O_EXCL): same as 'wx' on
        lockfs: the first writer holds it, a second one gets EEXIST."""
        self.check_node("")

    def test_python_open_x(self):
        """open(p, 'x'): python holds it; a second one gets FileExistsError
        (EEXIST); os.unlink releases; death releases at once."""
        p = self.p("job.lock")
        py, out = spawn(self, [sys.executable, "-c", PY_X, p])
        pid = self.took(out, py)
        st = status(p)
        self.assertEqual((st["lockfs"]["pid"], st["lockfs"]["how"]), (pid, "creator"))
        r = run([sys.executable, "-c", PY_X, p])
        self.assertEqual(r.returncode, 1, r)
        self.assertEqual(r.stdout.split()[:2], ["TOOK", str(errno.EEXIST)], r)
        self.release_by_script(py, out)
        self.assert_gone_now(p)
        py, out = spawn(self, [sys.executable, "-c", PY_X, p])
        self.took(out, py)
        self.assert_released_at_once(p, py)

    def flocker(self, p, how):
        return spawn(self, [sys.executable, "-c", PY_FLOCK, p, how])

    def test_python_fcntl_flock(self):
        """open(p, 'w') + fcntl.flock: the creator's flock is granted at once
        (how=creator); another process's open works (contender), its LOCK_NB
        flock fails EWOULDBLOCK, its writes EEXIST, a blocking flock waits
        (EINTR on alarm) and gets it on the holder's death (how=flock);
        LOCK_UN releases (name gone before close); death releases at once."""
        p = self.p("filelock.lock")
        a, aout = self.flocker(p, "nb")
        pid = self.took(aout, a)
        st = lockinfo(p)
        self.assertEqual((st["pid"], st["how"]), (pid, "creator"))
        fence = st["fence"]
        # (b) busy
        b, bout = self.flocker(p, "nb")
        bout.expect("TOOK", timeout=T)
        self.assertEqual(b.wait(timeout=T), 1)
        r = run([sys.executable, "-c", PY_FLOCK, p, "nb"])
        self.assertEqual(r.stdout.split()[:2], ["TOOK", str(errno.EWOULDBLOCK)], r)
        self.assertEqual(r.stdout.split()[3:], ["WRITE", str(errno.EEXIST)], r)
        self.assertNotIn("content", status(p), "a contender's write changed it")
        t0 = time.monotonic()
        r = run([sys.executable, "-c", PY_FLOCK, p, "alarm"])
        self.assertEqual(r.stdout.split()[:2], ["TOOK", str(errno.EINTR)], r)
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        wait_until(lambda: metrics(self.m)["lockfs_waiters"] == 0, T, "no waiter left")
        self.assertEqual((lockinfo(p)["pid"], lockinfo(p)["fence"]), (pid, fence))
        # (c) LOCK_UN releases: the name is gone while the file is still open
        a.stdin.write("unlock\n")
        a.stdin.flush()
        self.assertEqual(aout.expect("UNLOCKED", timeout=T), "UNLOCKED 0 False")
        a.stdin.close()
        self.assertEqual(a.wait(timeout=T), 0)
        self.assert_gone_now(p)
        # (d) holder killed: a blocked flock gets it at once; with nobody
        # waiting, the death releases the name at once
        a, aout = self.flocker(p, "nb")
        pid = self.took(aout, a)
        w, wout = self.flocker(p, "block")
        wait_until(lambda: metrics(self.m)["lockfs_waiters"] == 1, T, "flock waiting")
        w.stdin.write("write\n")        # queued: read once the flock returns
        w.stdin.flush()
        self.assertTrue(wout.q.empty(), "the blocking flock returned while held")
        a.kill()
        a.wait(timeout=T)
        wpid = self.took(wout, w)
        self.assertEqual(wout.expect("WROTE", timeout=T), "WROTE 0", "granted handle writes")
        st = lockinfo(p)
        self.assertEqual((st["pid"], st["how"]), (wpid, "flock"))
        self.assertEqual(status(p)["content"], str(wpid))
        self.assert_released_at_once(p, w)


# ---------------------------------------------------------------------- Go

GO_SRC = r"""
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

func main() {
	p := os.Args[1]
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0644)
	if err != nil {
		var e syscall.Errno
		errors.As(err, &e)
		fmt.Printf("TOOK %d %d %v\n", int(e), os.Getpid(), errors.Is(err, fs.ErrExist))
		os.Exit(1)
	}
	fmt.Fprintf(f, "%d\n", os.Getpid())
	if err := f.Close(); err != nil {
		fmt.Printf("TOOK close:%v %d\n", err, os.Getpid())
		os.Exit(1)
	}
	fmt.Printf("TOOK 0 %d\n", os.Getpid())
	bufio.NewReader(os.Stdin).ReadString('\n')
	if err := os.Remove(p); err != nil {
		fmt.Printf("UNLOCKED %v\n", err)
		os.Exit(2)
	}
	fmt.Println("UNLOCKED 0")
}
"""


class TestGo(CompatCase):

    @classmethod
    def setUpClass(cls):
        if shutil.which("go") is None:
            raise RuntimeError("go not found: install Debian's golang-go")
        cls.tmp = tempfile.mkdtemp(prefix="lockfs-compat-go-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        src = os.path.join(cls.tmp, "take.go")
        with open(src, "w") as f:
            f.write(GO_SRC)
        cls.bin = os.path.join(cls.tmp, "take")
        env = dict(os.environ, GOCACHE=os.path.join(cls.tmp, "cache"),
                   GOPATH=os.path.join(cls.tmp, "gopath"), GO111MODULE="off",
                   GOPROXY="off", GOFLAGS="", CGO_ENABLED="0")
        r = subprocess.run(["go", "build", "-o", cls.bin, src], cwd=cls.tmp, env=env,
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError(f"go build failed: {r.stderr}")

    def test_go_openfile_excl(self):
        """os.OpenFile(O_CREATE|O_EXCL|O_WRONLY): the Go process (not one of
        its threads) holds it; a second one gets EEXIST (errors.Is
        fs.ErrExist); os.Remove releases; death releases at once."""
        p = self.p("go.lock")
        g, out = spawn(self, [self.bin, p])
        pid = self.took(out, g)
        st = status(p)
        self.assertEqual((st["lockfs"]["pid"], st["lockfs"]["how"]), (pid, "creator"))
        self.assertEqual(st["pid"], pid)
        r = run([self.bin, p])
        self.assertEqual(r.returncode, 1, r)
        f = r.stdout.split()
        self.assertEqual((f[:2], f[3:]), (["TOOK", str(errno.EEXIST)], ["true"]), r)
        self.release_by_script(g, out)
        self.assert_gone_now(p)
        g, out = spawn(self, [self.bin, p])
        self.took(out, g)
        self.assert_released_at_once(p, g)


if __name__ == "__main__":
    harness.main()
