#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Logging (issue 5): without -f the daemon logs to syslog (facility
daemon, tag lockfs): notices such as force-unlocks and expiries always,
every acquisition and release with -o debug, libfuse's own messages too.
Names are escaped: a newline in a directory name cannot forge a line
(review finding 8).

The test runs in a private mount namespace with a fresh /dev on tmpfs
(holding /dev/fuse, /dev/null and a datagram socket at /dev/log that the
test reads), so the machine's syslog is neither needed nor touched."""
import ast
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

INSIDE = r"""
import os, signal, socket, subprocess, sys
lockfs, work = sys.argv[1], sys.argv[2]
mnt = os.path.join(work, "mnt")
import fcntl, json, struct
def brk(p):                                   # lockctl break: EBUSY for rm (SPEC R3.4)
    fd = os.open(p, os.O_RDONLY)
    fence = json.loads(os.pread(fd, 1 << 20, 0))["lockfs"]["fence"]
    fcntl.ioctl(fd, (1 << 30) | (8 << 16) | (ord("L") << 8) | 1, struct.pack("=Q", fence))
    os.close(fd)
subprocess.run(["mount", "--make-rprivate", "/"], check=True)
subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/dev"], check=True)
subprocess.run(["mknod", "-m", "666", "/dev/fuse", "c", "10", "229"], check=True)
subprocess.run(["mknod", "-m", "666", "/dev/null", "c", "1", "3"], check=True)
log = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
log.bind("/dev/log")
opts = "debug," if sys.argv[3] == "debug" else ""
opts += "ttl=1,holder_ttl=1,state_dir=%s/state,fence_file=%s/fence" % (work, work)
# without -f: the daemon detaches and logs to syslog; it returns once mounted
r = subprocess.run([lockfs, "-o", opts, mnt], stdin=subprocess.DEVNULL)
assert r.returncode == 0, r.returncode
fd = os.open(os.path.join(mnt, "x.lock"), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
os.close(fd)                                  # held by us; released at our exit
os.unlink(os.path.join(mnt, "x.lock"))
ready_r, ready_w = os.pipe()
pid = os.fork()
if pid == 0:                                  # a holder root breaks
    os.close(os.open(os.path.join(mnt, "y.lock"), os.O_WRONLY | os.O_CREAT))
    os.write(ready_w, b"x")
    signal.pause()                            # until killed
    os._exit(0)
os.read(ready_r, 1)
brk(os.path.join(mnt, "y.lock"))
os.kill(pid, 9)
os.waitpid(pid, 0)
w = os.open(os.path.join(mnt, "z.lock"), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
os.write(w, b'{"pid": 1}')                    # pid 1 claim ignored; TTL 1 s
log.settimeout(10)
lines = []
while not any("TTL ran out" in l for l in lines):   # the expiry is logged
    lines.append(log.recv(4096).decode(errors="replace"))
os.close(w)
subprocess.run(["umount", mnt], check=True)
log.settimeout(10)
while not any("unmounting" in l for l in lines):
    lines.append(log.recv(4096).decode(errors="replace"))
print("\n".join(lines))
"""

NO_DEV_FUSE = r"""
import os, socket, subprocess, sys
lockfs, work = sys.argv[1], sys.argv[2]
subprocess.run(["mount", "--make-rprivate", "/"], check=True)
subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/dev"], check=True)
subprocess.run(["mknod", "-m", "666", "/dev/null", "c", "1", "3"], check=True)
log = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
log.bind("/dev/log")
log.settimeout(10)
r = subprocess.run([lockfs, "-o", "state_dir=%s/state,fence_file=%s/fence" % (work, work),
                    os.path.join(work, "mnt")], stdin=subprocess.DEVNULL)
print("rc", r.returncode)
log.setblocking(False)
try:
    while True:                     # one datagram per line, newlines escaped
        print(repr(log.recv(4096).decode(errors="replace")))
except BlockingIOError:
    pass
"""

# The review's log injection: directory names that end the real line and
# forge a force-unlock and a "serving" line, under a lock that expires
# (logged at notice) and one that root breaks.
INJECT = r"""
import os, signal, socket, subprocess, sys
lockfs, work = sys.argv[1], sys.argv[2]
mnt = os.path.join(work, "mnt")
import fcntl, json, struct
def brk(p):                                   # lockctl break: EBUSY for rm (SPEC R3.4)
    fd = os.open(p, os.O_RDONLY)
    fence = json.loads(os.pread(fd, 1 << 20, 0))["lockfs"]["fence"]
    fcntl.ioctl(fd, (1 << 30) | (8 << 16) | (ord("L") << 8) | 1, struct.pack("=Q", fence))
    os.close(fd)
subprocess.run(["mount", "--make-rprivate", "/"], check=True)
subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/dev"], check=True)
subprocess.run(["mknod", "-m", "666", "/dev/fuse", "c", "10", "229"], check=True)
subprocess.run(["mknod", "-m", "666", "/dev/null", "c", "1", "3"], check=True)
log = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
log.bind("/dev/log")
opts = "state_dir=%s/state,fence_file=%s/fence" % (work, work)
r = subprocess.run([lockfs, "-o", opts, mnt], stdin=subprocess.DEVNULL)
assert r.returncode == 0, r.returncode
d = os.path.join(mnt, "x\nlockfs: force-unlock of ",
                 "deploy.lock (fence 17, held by pid 4242 node) by pid 1 uid 0\nlockfs: serving ")
os.makedirs(d)
ready_r, ready_w = os.pipe()
pid = os.fork()
if pid == 0:                                  # a holder root breaks
    os.close(os.open(os.path.join(d, "f.lock"), os.O_WRONLY | os.O_CREAT))
    os.write(ready_w, b"x")
    signal.pause()
    os._exit(0)
os.read(ready_r, 1)
brk(os.path.join(d, "f.lock"))
os.kill(pid, 9)
os.waitpid(pid, 0)
w = os.open(os.path.join(d, "t.lock"), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
os.write(w, b'{"ttl_s": 1}')
log.settimeout(10)
lines = []
while not any("TTL ran out" in l for l in lines):
    lines.append(log.recv(4096).decode(errors="replace"))
os.close(w)
subprocess.run(["umount", mnt], check=True)
while not any("unmounting" in l for l in lines):
    lines.append(log.recv(4096).decode(errors="replace"))
for l in lines:
    print(repr(l))
"""


class TestSyslog(unittest.TestCase):

    def run_inside(self, mode, script=INSIDE):
        work = os.path.realpath(os.environ.get("TMPDIR", "/tmp"))
        work = subprocess.run(["mktemp", "-d", "-p", work, "lockfs-syslog-XXXXXX"],
                              capture_output=True, text=True, check=True).stdout.strip()
        os.mkdir(os.path.join(work, "mnt"))
        self.addCleanup(subprocess.run, ["rm", "-rf", work])
        self.addCleanup(subprocess.run, ["chattr", "-i", os.path.join(work, "mnt")],
                        capture_output=True)
        r = subprocess.run(["unshare", "-m", sys.executable, "-c", script,
                            os.path.abspath(harness.LOCKFS_BIN), work, mode],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.splitlines()

    def assert_logged(self, lines, pattern):
        self.assertTrue(any(pattern in l for l in lines), f"{pattern!r} not in {lines}")

    def test_notices_go_to_syslog(self):
        lines = self.run_inside("normal")
        for l in lines:
            self.assertRegex(l, r"^<\d+>.*lockfs\[\d+\]: ", "syslog format, tag lockfs[pid]")
        self.assert_logged(lines, "serving ")
        self.assert_logged(lines, "force-unlock of /y.lock")
        self.assert_logged(lines, "released /z.lock")     # the expiry, at notice
        self.assert_logged(lines, "unmounting ")
        self.assertFalse(any("acquired " in l for l in lines), "acquisitions are debug")
        # facility daemon (3): priority = 3 * 8 + level; notice (5) = 29
        self.assertTrue(any(l.startswith("<29>") and "force-unlock" in l for l in lines))

    def test_libfuse_messages_go_to_the_same_place(self):
        """Without /dev/fuse, libfuse itself reports the failure: through
        our log function, so into syslog with our tag."""
        lines = self.run_inside("normal", NO_DEV_FUSE)
        self.assertNotEqual(lines[0], "rc 0", "mounting without /dev/fuse must fail")
        msgs = [ast.literal_eval(l) for l in lines[1:]]
        fuse = [m for m in msgs if "fuse:" in m]
        self.assertTrue(fuse, f"no libfuse message in {msgs}")
        for m in fuse:
            self.assertRegex(m, r"^<\d+>.*lockfs\[\d+\]: fuse: ")
            self.assertNotIn("\n", m, "a message is one line")

    def test_names_cannot_forge_lines(self):
        msgs = [ast.literal_eval(l) for l in self.run_inside("normal", INJECT)]
        esc = (r"/x\x0alockfs: force-unlock of /deploy.lock (fence 17, held by pid 4242 "
               r"node) by pid 1 uid 0\x0alockfs: serving ")
        for m in msgs:
            self.assertNotIn("\n", m, "one datagram, one line")
            body = m.split("]: ", 1)[1]
            self.assertNotRegex(body, r"^(lockfs: )?(force-unlock of /deploy|serving /t\.lock)",
                                "a forged line")
        forced = [m for m in msgs if m.split("]: ", 1)[1].startswith("force-unlock of ")]
        self.assertEqual(len(forced), 1, forced)
        self.assertIn("force-unlock of " + esc + "/f.lock (fence ", forced[0])
        self.assertTrue(any("released " + esc + "/t.lock (fence " in m and "TTL ran out" in m
                            for m in msgs), msgs)

    def test_debug_logs_every_acquisition_and_release(self):
        lines = self.run_inside("debug")
        self.assert_logged(lines, "acquired /x.lock")
        self.assert_logged(lines, "released /x.lock")
        self.assert_logged(lines, "acquired /z.lock")
        self.assertTrue(any(l.startswith("<31>") for l in lines), "debug level (7) used")


if __name__ == "__main__":
    harness.main()
