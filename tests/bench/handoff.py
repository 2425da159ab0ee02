#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""flock(2) hand-off and fairness on lockfs (issue 3 benchmarks). Not a
test: it prints figures and asserts nothing.

  - hand-off latency, p50/p99 over N hand-offs, from the holder's release
    to the next FIFO waiter's grant (both sides read CLOCK_MONOTONIC):
    LOCK_UN, unlink, and holder death (SIGKILL);
  - fairness: P processes looping flock(LOCK_EX)/flock(LOCK_UN) on one lock
    for S seconds: acquisitions per process, Jain's fairness index, the
    longest single wait;
  - parked waiters: with PP x PT flock(2) calls parked on one lock, the
    latency (p50/p99) of other requests (create+unlink of another name, a
    status read of the parked lock), then how fast the queue drains once
    the holder dies. (test_flock.py's thousand-waiter test checks only
    that this works.)

It mounts its own lockfs (tests/integration/harness.Mount) and always
unmounts. Run as root from the checkout after `ninja -C build`:

    python3 tests/bench/handoff.py [--handoffs 1000] [--procs 32] [--seconds 10]
                                   [--reuse-fd] [--parked-procs 8]
                                   [--parked-threads 125] [--samples 1000]

LOCKFS_BIN overrides the daemon (default build/lockfs of this checkout)."""
import argparse
import fcntl
import json
import os
import select
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
os.environ.setdefault("LOCKFS_BIN", os.path.join(ROOT, "build", "lockfs"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402

STEP_TIMEOUT = 20.0


class Bench:
    def __init__(self, mount):
        self.m = mount
        self.metrics_path = mount.path(".lockfs", "metrics")
        self.children = []

    # -- helpers ----------------------------------------------------------

    def waiters(self):
        with open(self.metrics_path) as f:
            for line in f:
                if line.startswith("lockfs_waiters "):
                    return int(float(line.split()[1]))
        raise RuntimeError("no lockfs_waiters in metrics")

    def wait_waiters(self, k, timeout=STEP_TIMEOUT):
        deadline = time.monotonic() + timeout
        while self.waiters() < k:
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {k} parked waiter(s)")

    def fork(self, fn):
        """Run fn() in a child (which exits with its result status); returns
        (pid, read end of a pipe the child may write to as fd 'out')."""
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            code = 1
            try:
                fn(w)
                code = 0
            except BaseException as e:   # report, never return into the parent's code
                try:
                    os.write(2, f"child {os.getpid()}: {e!r}\n".encode())
                except OSError:
                    pass
            finally:
                os._exit(code)
        os.close(w)
        self.children.append(pid)
        return pid, r

    def read_all(self, fd, timeout=STEP_TIMEOUT):
        data = b""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("timed out reading from a child")
            if not select.select([fd], [], [], left)[0]:
                continue
            b = os.read(fd, 65536)
            if not b:
                os.close(fd)
                return data
            data += b

    def read_line(self, fd, timeout=STEP_TIMEOUT):
        """One newline-terminated record (children write whole lines)."""
        buf = b""
        deadline = time.monotonic() + timeout
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise RuntimeError("timed out waiting for a child's report")
            b = os.read(fd, 1)
            if not b:
                raise RuntimeError("child exited without reporting")
            buf += b
        return buf.decode()

    def reap(self, pid, kill=False):
        if kill:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os.waitpid(pid, 0)
        self.children.remove(pid)

    def kill_all(self):
        for pid in list(self.children):
            self.reap(pid, kill=True)

    # -- hand-off by LOCK_UN or unlink: two processes play ping-pong --------

    def pingpong(self, n, how):
        path = self.m.path(f"pp-{how}.lock")
        bench = self

        def player(first):
            def run(out):
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                grants, releases = {}, {}
                for idx in range(0 if first else 1, n + 1, 2):
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    grants[idx] = time.monotonic_ns()
                    if idx == 0:
                        os.write(out, b"holding\n")
                    if idx < n:
                        bench.wait_waiters(1)       # the other one has re-queued
                    releases[idx] = time.monotonic_ns()
                    if how == "unlink":
                        os.unlink(path)
                    else:
                        fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
                os.write(out, (json.dumps({"g": grants, "r": releases}) + "\n").encode())
            return run

        a, ra = self.fork(player(True))
        if self.read_line(ra) != "holding\n":
            raise RuntimeError("first player did not take the lock")
        b, rb = self.fork(player(False))
        res_a = json.loads(self.read_all(ra, timeout=STEP_TIMEOUT + n * 0.05))
        res_b = json.loads(self.read_all(rb, timeout=STEP_TIMEOUT))
        self.reap(a)
        self.reap(b)
        grants = {int(k): v for r in (res_a, res_b) for k, v in r["g"].items()}
        releases = {int(k): v for r in (res_a, res_b) for k, v in r["r"].items()}
        return [(grants[i + 1] - releases[i]) / 1e6 for i in range(n)]

    # -- hand-off by holder death ------------------------------------------

    def deaths(self, n):
        path = self.m.path("death.lock")

        def waiter(out):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(out, b"%d\n" % time.monotonic_ns())
            while True:
                signal.pause()

        lat = []
        holder, rh = self.fork(waiter)
        self.read_line(rh)
        os.close(rh)
        for _ in range(n):
            nxt, rn = self.fork(waiter)
            self.wait_waiters(1)
            t0 = time.monotonic_ns()
            os.kill(holder, signal.SIGKILL)
            t1 = int(self.read_line(rn))
            lat.append((t1 - t0) / 1e6)
            os.close(rn)
            self.reap(holder)
            holder = nxt
        self.reap(holder, kill=True)
        return lat

    # -- fairness ----------------------------------------------------------

    def fairness(self, procs, seconds, reuse_fd=False):
        path = self.m.path("fair.lock")
        start = time.monotonic() + 0.5 + procs * 0.01
        stop = start + seconds

        def looper(out):
            # One open file per acquisition (O_RDWR|O_CREAT, as Python's
            # filelock does), or with reuse_fd one descriptor for the loop.
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644) if reuse_fd else -1
            count, longest, total = 0, 0, 0
            while time.monotonic() < start:
                time.sleep(0.001)
            while True:
                t0 = time.monotonic_ns()
                if not reuse_fd:
                    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                fcntl.flock(fd, fcntl.LOCK_EX)
                t1 = time.monotonic_ns()
                if time.monotonic() >= stop:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    break
                count += 1
                longest = max(longest, t1 - t0)
                total += t1 - t0
                fcntl.flock(fd, fcntl.LOCK_UN)
                if not reuse_fd:
                    os.close(fd)
            os.close(fd)
            os.write(out, (json.dumps([count, longest, total]) + "\n").encode())

        kids = [self.fork(looper) for _ in range(procs)]
        res, failed = [], 0
        for pid, r in kids:
            data = self.read_all(r, timeout=seconds + STEP_TIMEOUT + 5)
            self.reap(pid)
            if data:
                res.append(json.loads(data))
            else:
                failed += 1             # the child printed its error
        return res, failed, self.waiters()


    # -- other requests while many flock waiters are parked ----------------

    def parked(self, procs, threads, samples):
        """procs x threads flock(2) calls parked behind a holder: returns the
        latencies (ms) of create+unlink of another name and of status reads
        of the parked lock meanwhile, the number parked, and the seconds the
        queue took to drain after the holder's SIGKILL."""
        path = self.m.path("parked.lock")
        other = self.m.path("parked-other.lock")
        n = procs * threads
        step = STEP_TIMEOUT + n / 50

        def holder(out):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(out, b"held\n")
            while True:
                signal.pause()

        def waiter():
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

        def waiters(out):
            ts = [threading.Thread(target=waiter) for _ in range(threads)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            os.write(out, b"done\n")

        h, rh = self.fork(holder)
        self.read_line(rh)
        os.close(rh)
        kids = [self.fork(waiters) for _ in range(procs)]
        self.wait_waiters(n, timeout=step)
        create_unlink, status_read = [], []
        for _ in range(samples):
            t0 = time.monotonic_ns()
            os.close(os.open(other, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            os.unlink(other)
            t1 = time.monotonic_ns()
            with open(path) as f:
                f.read()
            t2 = time.monotonic_ns()
            create_unlink.append((t1 - t0) / 1e6)
            status_read.append((t2 - t1) / 1e6)
        t0 = time.monotonic()
        self.reap(h, kill=True)
        for pid, r in kids:
            self.read_line(r, timeout=step)
            os.close(r)
            self.reap(pid)
        return create_unlink, status_read, n, time.monotonic() - t0


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(p / 100 * len(xs))) - 1))]


def show(name, lat):
    print(f"  {name:<28} n={len(lat):<5} p50 {pct(lat, 50):7.3f} ms   "
          f"p99 {pct(lat, 99):7.3f} ms   max {max(lat):7.3f} ms", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--handoffs", type=int, default=1000)
    ap.add_argument("--procs", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--reuse-fd", action="store_true",
                    help="fairness loop keeps one descriptor per process (default: "
                         "open/flock/unlock/close per acquisition)")
    ap.add_argument("--parked-procs", type=int, default=8)
    ap.add_argument("--parked-threads", type=int, default=125)
    ap.add_argument("--samples", type=int, default=1000,
                    help="requests timed while the waiters are parked")
    args = ap.parse_args()

    m = harness.Mount().start()
    b = Bench(m)
    try:
        print(f"lockfs flock hand-off benchmark ({os.cpu_count()} CPUs, daemon "
              f"{harness.LOCKFS_BIN})", flush=True)
        print("hand-off latency, release -> next waiter's grant:", flush=True)
        show("LOCK_UN -> grant", b.pingpong(args.handoffs, "unlock"))
        show("unlink -> grant", b.pingpong(args.handoffs, "unlink"))
        show("holder SIGKILL -> grant", b.deaths(args.handoffs))
        print(f"fairness: {args.procs} processes looping "
              f"{'flock/unlock on one descriptor' if args.reuse_fd else 'open/flock/unlock/close'}"
              f" for {args.seconds:g} s:", flush=True)
        res, failed, left = b.fairness(args.procs, args.seconds, args.reuse_fd)
        if failed:
            print(f"  {failed} of {args.procs} processes failed (see their errors above)")
        if not res:
            return
        counts = [r[0] for r in res]
        total = sum(counts)
        jain = total * total / (len(counts) * sum(c * c for c in counts)) if total else 0.0
        print(f"  acquisitions per process: {' '.join(map(str, counts))}")
        print(f"  total {total} ({total / args.seconds:.0f}/s), min {min(counts)}, "
              f"max {max(counts)}, Jain's index {jain:.4f}")
        print(f"  longest wait {max(r[1] for r in res) / 1e6:.2f} ms, mean wait "
              f"{sum(r[2] for r in res) / max(1, total) / 1e6:.2f} ms; "
              f"waiters left {left}", flush=True)
        cu, st, n, drain = b.parked(args.parked_procs, args.parked_threads, args.samples)
        print(f"other requests while {n} flock waiters are parked:", flush=True)
        show("create+unlink, other name", cu)
        show("status read, parked lock", st)
        print(f"  {n} waiters drained in {drain:.2f} s ({n / drain:.0f} hand-offs/s)",
              flush=True)
    finally:
        b.kill_all()
        rc = m.stop()
        if rc:
            print(f"daemon exited with {rc}:\n{m.log()}", file=sys.stderr)


if __name__ == "__main__":
    main()
