# SPDX-License-Identifier: MIT
"""Acquisition is linearizable (SPEC R2.3): of N concurrent creators of one
free name exactly one takes it and the others get EEXIST (at create for
O_EXCL, at their first write otherwise), for processes, threads of one
process (which count as one holder, R3.1) and mixes of both, with every mix
of flags; and a create racing with a release never reports ENOENT.

The racing is done by race_client (race_client.c, built by meson); each
round it prints one line that this test checks."""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import RACE_CLIENT, LockfsTestCase  # noqa: E402
from lockfs_it import Lines, close_pipes, metrics, parse_iso, released  # noqa: E402

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


# A contender of CreateVersusExpiry: it reads a deadline (CLOCK_MONOTONIC,
# shared by all processes) from stdin and loops until then, opening PATH non-exclusively
# and writing a per-lock TTL of 1 s with a self-claim. A winner records its
# status and stops contending (so it never renews), keeping its lock until
# the TTL runs out; it prints one JSON report at the deadline and stays
# alive until its stdin closes.
EXPIRY_WORKER = r"""
import errno, json, os, sys, time
path = sys.argv[1]
rep = {"pid": os.getpid(), "opens": 0, "eexist_write": 0, "bad": [], "wins": []}
print("READY", flush=True)
deadline = float(sys.stdin.readline())
content = json.dumps({"ttl_s": 1, "pid": os.getpid()}).encode()
while time.monotonic() < deadline and not rep["wins"]:
    try:
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
    except OSError as e:
        rep["bad"].append(["open", e.errno])
        continue
    rep["opens"] += 1
    won = False
    try:
        os.write(fd, content)
        won = True
    except OSError as e:
        if e.errno == errno.EEXIST:
            rep["eexist_write"] += 1
        else:
            rep["bad"].append(["write", e.errno])
    try:
        os.close(fd)
    except OSError as e:
        rep["bad"].append(["close", e.errno])
    if won:
        try:
            with open(path) as f:
                rep["wins"].append(json.loads(f.read()))
        except OSError as e:
            rep["bad"].append(["read", e.errno])
print(json.dumps(rep), flush=True)
sys.stdin.read()
"""


class CreateVersusExpiry(LockfsTestCase):
    """R2.3 against TTL expiry: while locks with a 1 s per-lock TTL expire
    one after another, 12 processes (never fewer than 8 contending) hammer
    the name with O_CREAT|O_WRONLY opens and a write. No caller ever sees
    ENOENT or any failure but EEXIST at the write, and every expiry is
    followed by exactly one new winner."""

    WORKERS = 12
    SECONDS = 3.5

    def test_creat_racing_ttl_expiry(self):
        path = self.p("ttl.lock")
        m0 = metrics(self.m)
        procs = []
        for _ in range(self.WORKERS):
            pr = subprocess.Popen([sys.executable, "-c", EXPIRY_WORKER, path],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            lines = Lines(pr.stdout)

            def _kill(pr=pr, lines=lines):
                if pr.poll() is None:
                    pr.kill()
                pr.wait(timeout=20)
                close_pipes(pr, lines)
            self.addCleanup(_kill)
            procs.append((pr, lines))
        for pr, lines in procs:
            lines.expect("READY", timeout=10)
        deadline = time.monotonic() + 0.1 + self.SECONDS
        for pr, _ in procs:
            pr.stdin.write(f"{deadline!r}\n")
            pr.stdin.flush()
        reps = [json.loads(lines.get(self.SECONDS + 30, "worker report")) for _, lines in procs]
        # all workers are still alive: the last winner's lock may still be held
        m1 = metrics(self.m)
        for pr, _ in procs:
            pr.kill()
            pr.wait(timeout=20)
        harness.wait_until(lambda: not os.path.exists(path), what="last lock released")
        m2 = metrics(self.m)

        bad = [(r["pid"], b) for r in reps for b in r["bad"]]
        self.assertEqual(bad, [], "O_CREAT callers racing expiry saw errors other than "
                         "EEXIST at write (errno: ENOENT=%d)" % harness.errno.ENOENT)
        wins = sorted((w for r in reps for w in r["wins"]), key=lambda w: w["lockfs"]["fence"])
        for r in reps:
            for w in r["wins"]:
                self.assertEqual(w["lockfs"]["pid"], r["pid"], w)
                self.assertEqual(w["pid"], r["pid"], w)
                self.assertEqual(w["lockfs"]["ttl_s"], 1, w)
        acquired = m1["lockfs_acquired_total"] - m0["lockfs_acquired_total"]
        expired = released(m1, "ttl") - released(m0, "ttl")
        eexist = sum(r["eexist_write"] for r in reps)
        sys.stderr.write(f"[{len(wins)} winners, {expired:.0f} expiries, {eexist} EEXIST "
                         f"writes, {sum(r['opens'] for r in reps)} opens] ")
        self.assertEqual(len(wins), acquired, "every acquisition has exactly one winner "
                         "that saw its write succeed")
        self.assertGreaterEqual(expired, 3, "fewer TTL expiries than the test needs")
        self.assertGreater(eexist, 0, "no contention happened")
        # the lock held at the deadline (if any) went by TTL or by the kill
        end_ttl = released(m2, "ttl") - released(m1, "ttl")
        end_exit = released(m2, "exit") - released(m1, "exit")
        self.assertEqual(expired + end_ttl + end_exit, len(wins),
                         f"ttl {expired}+{end_ttl}, exit {end_exit}, winners {len(wins)}")
        self.assertLessEqual(end_exit, 1)
        self.assertEqual(released(m2, "unlink") - released(m0, "unlink"), 0)
        self.assertEqual(m2["lockfs_locks_held"], 0)
        # one winner per expiry: each next acquisition comes after the
        # previous lock's deadline (how promptly: tests/bench/run.sh, ttl)
        fences = [w["lockfs"]["fence"] for w in wins]
        self.assertEqual(len(set(fences)), len(fences), fences)
        for prev, nxt in zip(wins, wins[1:]):
            exp = parse_iso(prev["lockfs"]["expires_at"])
            acq = parse_iso(nxt["lockfs"]["acquired_at"])
            self.assertGreaterEqual(acq, exp - 1,
                                    f"new winner before the previous lock expired: {prev} {nxt}")


if __name__ == "__main__":
    harness.main()
