# SPDX-License-Identifier: MIT
"""flock(2) on lockfs, until the daemon serves it (SPEC §7, a later issue):
it must fail loudly with EOPNOTSUPP, never fall back to the kernel's
local emulation, which could admit two holders of one name."""
import errno
import fcntl
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import Holder, LockfsTestCase  # noqa: E402


class FlockRefused(LockfsTestCase):
    def test_flock_syscall_is_refused(self):
        holder = Holder(self.p("f.lock"))
        self.addCleanup(holder.release)
        for flags in (os.O_RDONLY, os.O_WRONLY):
            fd = os.open(self.p("f.lock"), flags)
            try:
                for op in (fcntl.LOCK_EX, fcntl.LOCK_EX | fcntl.LOCK_NB, fcntl.LOCK_SH,
                           fcntl.LOCK_UN):
                    with self.assertRaises(OSError) as cm:
                        fcntl.flock(fd, op)
                    self.assertEqual(cm.exception.errno, errno.EOPNOTSUPP)
            finally:
                os.close(fd)

    def test_flock_command_fails_loudly(self):
        r = subprocess.run(["flock", "-n", self.p("g.lock"), "true"],
                           capture_output=True, text=True, timeout=20)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not supported", r.stderr)


if __name__ == "__main__":
    harness.main()
