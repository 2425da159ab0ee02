#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Logging (issue 5): without -f the daemon logs to syslog (facility
daemon, tag lockfs): notices such as force-unlocks and expiries always,
every acquisition and release with -o debug, libfuse's own messages too.

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
subprocess.run(["mount", "--make-rprivate", "/"], check=True)
subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/dev"], check=True)
subprocess.run(["mknod", "-m", "666", "/dev/fuse", "c", "10", "229"], check=True)
subprocess.run(["mknod", "-m", "666", "/dev/null", "c", "1", "3"], check=True)
log = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
log.bind("/dev/log")
opts = "debug," if sys.argv[3] == "debug" else ""
opts += "ttl=1,state_dir=%s/state,fence_file=%s/fence" % (work, work)
# without -f: the daemon detaches and logs to syslog; it returns once mounted
r = subprocess.run([lockfs, "-o", opts, mnt], stdin=subprocess.DEVNULL)
assert r.returncode == 0, r.returncode
fd = os.open(os.path.join(mnt, "x.lock"), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
os.close(fd)                                  # held by us; released at our exit
os.unlink(os.path.join(mnt, "x.lock"))
ready_r, ready_w = os.pipe()
pid = os.fork()
if pid == 0:                                  # a holder root force-unlocks
    os.close(os.open(os.path.join(mnt, "y.lock"), os.O_WRONLY | os.O_CREAT))
    os.write(ready_w, b"x")
    signal.pause()                            # until killed
    os._exit(0)
os.read(ready_r, 1)
os.unlink(os.path.join(mnt, "y.lock"))
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

    def test_debug_logs_every_acquisition_and_release(self):
        lines = self.run_inside("debug")
        self.assert_logged(lines, "acquired /x.lock")
        self.assert_logged(lines, "released /x.lock")
        self.assert_logged(lines, "acquired /z.lock")
        self.assertTrue(any(l.startswith("<31>") for l in lines), "debug level (7) used")


if __name__ == "__main__":
    harness.main()
