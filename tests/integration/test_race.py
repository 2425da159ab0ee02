# SPDX-License-Identifier: MIT
"""Acquisition is linearizable (SPEC R2.3): of N concurrent creators of one
free name exactly one takes it and the others get EEXIST (at create for
O_EXCL, at their first write otherwise), for processes, threads of one
process (which count as one holder, R3.1) and mixes of both, with every mix
of flags; and a create racing with a release never reports ENOENT.

The racing is done by race_client (race_client.c, built by meson); each
round it prints one line that this test checks."""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import RACE_CLIENT, LockfsTestCase  # noqa: E402

ROUNDS = max(200, int(os.environ.get("LOCKFS_RACE_ROUNDS", "200")))
CLIENT_TIMEOUT = 600


def parse(line):
    out = {}
    for field in line.split()[1:] if not line.startswith("round=") else line.split():
        key, _, value = field.partition("=")
        out[key] = int(value) if value.lstrip("-").isdigit() else value
    return out


class RaceTestCase(LockfsTestCase):
    def run_client(self, args):
        """Run race_client in its own process group; return its stdout lines."""
        proc = subprocess.Popen([RACE_CLIENT] + args, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=CLIENT_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            self.fail(f"race_client {args} timed out; stderr: {err}\nlast: {out[-2000:]}")
        if proc.returncode != 0:
            self.fail(f"race_client {args} exited {proc.returncode}; stderr: {err}\n"
                      f"last output: {out[-3000:]}")
        return out.splitlines()

    def race(self, mode, flags, n, rounds=ROUNDS, release="alt"):
        path = self.p("race.lock")
        t0 = time.monotonic()
        lines = self.run_client(["-r", str(rounds), "-R", release, "-t", "120",
                                 "-m", self.p(".lockfs", "metrics"), mode, flags, str(n), path])
        dt = time.monotonic() - t0
        rounds_seen = [parse(l) for l in lines if l.startswith("round=")]
        summary = [parse(l) for l in lines if l.startswith("summary ")]
        self.assertEqual(len(rounds_seen), rounds, f"rounds reported: {lines[-3:]}")
        self.assertEqual(len(summary), 1)
        problems = []
        last_fence = -1
        for r in rounds_seen:
            why = self.check_round(r, n, last_fence)
            if why:
                problems.append(f"round {r['round']}: {'; '.join(why)}\n    {r}")
            last_fence = max(last_fence, r["fence"])
        sys.stderr.write(f"[{mode} {flags} N={n}: {rounds} rounds in {dt:.1f}s] ")
        self.assertEqual(problems, [], f"{len(problems)} of {rounds} rounds wrong; first:\n" +
                         "\n".join(problems[:5]))
        self.assertFalse(os.path.exists(path), "lock still present after the last round")

    @staticmethod
    def check_round(r, n, last_fence):
        why = []
        nonexcl_total = n - r["excl_total"]

        def want(cond, text):
            if not cond:
                why.append(text)
        want(r["procs"] * r["threads"] == n, "contender count")
        want(r["winners"] == 1, f"{r['winners']} processes took the lock (want exactly 1)")
        want(r["other"] == 0, f"{r['other']} contenders failed with errno {r['other_errno']} "
                              f"at stage {r['other_stage']} (1=open 2=write 3=close), not EEXIST")
        want(r["holder"] == r["win_pid"],
             f"status holder pid {r['holder']} != winner {r['win_pid']}")
        want(r["ok_excl"] <= 1, f"{r['ok_excl']} O_EXCL creates succeeded")
        # Threads of the winning process share its hold: its non-exclusive
        # openers all succeed, its other O_EXCL creators get EEXIST.
        want(r["ok"] == r["win_nonexcl"] + r["ok_excl"],
             f"ok={r['ok']} but the winner has {r['win_nonexcl']} non-exclusive threads "
             f"and {r['ok_excl']} exclusive success")
        want(r["eexist_open"] == r["excl_total"] - r["ok_excl"],
             f"eexist at open {r['eexist_open']}, want {r['excl_total'] - r['ok_excl']}")
        want(r["eexist_write"] == nonexcl_total - r["win_nonexcl"],
             f"eexist at write {r['eexist_write']}, want {nonexcl_total - r['win_nonexcl']}")
        want(r["acq_delta"] == 1, f"lockfs_acquired_total grew by {r['acq_delta']} (want 1)")
        want(r["fence"] > last_fence, f"fence {r['fence']} not above previous {last_fence}")
        want(r["exit_bad"] == 0, f"{r['exit_bad']} contenders exited badly "
                                 "(3 = the winner's unlink failed)")
        want(r["vanish_us"] >= 0, "the name did not vanish after the winner's release")
        return why


class RaceTen(RaceTestCase):
    def test_procs_excl(self):
        self.race("procs", "excl", 10)

    def test_procs_trunc(self):
        self.race("procs", "trunc", 10)

    def test_procs_creat(self):
        self.race("procs", "creat", 10)

    def test_procs_mixed(self):
        self.race("procs", "mixed", 10)

    def test_threads_excl(self):
        self.race("threads", "excl", 10)

    def test_threads_trunc(self):
        self.race("threads", "trunc", 10)

    def test_threads_mixed(self):
        self.race("threads", "mixed", 10)

    def test_hybrid_mixed(self):
        self.race("hybrid", "mixed", 12)


class RaceSixtyFour(RaceTestCase):
    def test_procs_excl(self):
        self.race("procs", "excl", 64)

    def test_procs_trunc(self):
        self.race("procs", "trunc", 64)

    def test_procs_mixed(self):
        self.race("procs", "mixed", 64)

    def test_threads_excl(self):
        self.race("threads", "excl", 64)

    def test_threads_trunc(self):
        self.race("threads", "trunc", 64)

    def test_threads_mixed(self):
        self.race("threads", "mixed", 64)

    def test_hybrid_mixed(self):
        self.race("hybrid", "mixed", 64)


class CreateVersusRelease(RaceTestCase):
    """R2.3: an O_CREAT caller racing with releases (unlink by the holder, and
    holders exiting) either takes the lock or gets EEXIST, never ENOENT."""

    def churn(self, flags, workers, iters):
        path = self.p("churn.lock")
        lines = self.run_client(["-r", str(iters), "-t", "300", "churn", flags, str(workers),
                                 path])
        res = [parse(l) for l in lines if l.startswith("churn ")]
        self.assertEqual(len(res), 1, lines)
        c = res[0]
        sys.stderr.write(f"[churn {flags}: {c}] ")
        self.assertEqual(c["enoent"], 0, f"O_CREAT got ENOENT: {c}")
        self.assertEqual(c["child_enoent"], 0, f"O_CREAT got ENOENT: {c}")
        self.assertEqual(c["other_open"], 0, f"unexpected errno {c['first_errno']} "
                         f"(where={c['first_where']}: 1=open 2=write 3=unlink 4=child open): {c}")
        self.assertEqual(c["other_write"], 0, f"write errno other than EEXIST: {c}")
        self.assertEqual(c["child_other"], 0, c)
        self.assertEqual(c["unlink_fail"], 0, f"holder could not unlink its lock: {c}")
        self.assertEqual(c["exit_bad"], 0, c)
        self.assertGreater(c["took"], 0, "nobody ever took the lock")
        self.assertGreater(c["eexist_open"] + c["eexist_write"] + c["child_eexist"], 0,
                           "no contention happened: the test raced nothing")
        # Whatever happened, the name is free once everybody is gone.
        harness.wait_until(lambda: not os.path.exists(path), what="churn lock released")

    def test_creates_racing_unlink_and_exit_mixed_flags(self):
        self.churn("mixed", 8, 300)

    def test_plain_creat_racing_release(self):
        self.churn("creat", 8, 300)

    def test_excl_racing_release(self):
        self.churn("excl", 8, 300)


if __name__ == "__main__":
    harness.main()
