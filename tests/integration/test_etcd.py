#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Cluster mode (SPEC R8.4): several daemons mounted with -o backend=etcd and
the same endpoints and prefix share one lock namespace.

Against a throw-away etcd (etcd_server.py) and three mounts per test, each
test on its own prefix: visibility of a lock on every mount (ls, stat, cat
with the remote holder), EEXIST for everybody else, release by unlink,
holder death and root's break seen everywhere (its unlink: EBUSY); one
winner per round of a 24-process race over three mounts; fences (etcd create revisions)
strictly increasing across mounts; a SIGKILLed daemon's locks vanishing
when its lease runs out; IN_DELETE_SELF on a remote release; and an etcd
outage: creates fail with EIO (never a guess), a short outage keeps locks,
a long one marks them lost and frees their names.

Needs the etcd binary (ETCD_BIN, default etcd on PATH): without it every
test fails, none is skipped. Timings measured (latencies) are printed on
stderr."""
import base64
import json
import os
import shutil
import socket
import stat
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import Holder, Mount, errno, errno_of, wait_until  # noqa: E402
from lockfs_it import (EXCL, DeleteWatch, Lines, agent, break_lock, close_pipes, create,  # noqa: E402
                       gone, lockinfo, status)
from etcd_server import EtcdServer, free_port, make_pki  # noqa: E402

# Every wait below awaits a state with a generous deadline (the harness's
# EVENT_TIMEOUT): it fails only when the state never comes, never because
# the machine was slow. Latencies are printed, not asserted. The only time
# bounds asserted are lower bounds that a rule sets (something must NOT
# happen before a time), each commented with its rule.
VISIBLE_S = harness.EVENT_TIMEOUT       # a lock taken on one mount is listed on the others
RELEASE_S = harness.EVENT_TIMEOUT       # a release (unlink, holder death) reaches the others
RECOVER_S = harness.EVENT_TIMEOUT       # creates work again after etcd is back

A_USER, B_USER = harness.TEST_USER, harness.TEST_USER2

ETCD = None                             # the module's etcd, shared by tests that never stop it


def setUpModule():
    global ETCD
    e = EtcdServer()
    try:
        e.start()
    except FileNotFoundError as err:
        e.cleanup()
        raise RuntimeError(f"no etcd binary ({err.filename}): the cluster tests need etcd "
                           "(set ETCD_BIN or install it)") from err
    except BaseException:
        e.cleanup()
        raise
    ETCD = e


def tearDownModule():
    if ETCD is not None:
        ETCD.cleanup()


def log(msg):
    sys.stderr.write(f"[{msg}] ")
    sys.stderr.flush()


# ---- etcd, read directly through its JSON gateway ----

def _b64(b):
    return base64.b64encode(b).decode()


def etcd_keys(endpoint, prefix):
    """{key: {"create_revision", "lease", "value"}} of every key under prefix."""
    k = prefix.encode()
    end = k[:-1] + bytes([k[-1] + 1])
    body = json.dumps({"key": _b64(k), "range_end": _b64(end)}).encode()
    req = urllib.request.Request(endpoint + "/v3/kv/range", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        doc = json.load(r)
    out = {}
    for kv in doc.get("kvs", []):
        out[base64.b64decode(kv["key"]).decode(errors="replace")] = {
            "create_revision": int(kv.get("create_revision", 0)),
            "lease": int(kv.get("lease", 0)),
            "value": base64.b64decode(kv.get("value", "")),
        }
    return out


def lock_keys(endpoint, prefix, rel):
    """The keys under prefix that name lock rel (key ends with "/" + rel)."""
    return {k: v for k, v in etcd_keys(endpoint, prefix).items()
            if k.endswith("/" + rel) or k == prefix + rel}


# ---- the file system side ----

def listed(m, rel):
    d, name = os.path.split(m.path(rel))
    try:
        return name in os.listdir(d)
    except FileNotFoundError:
        return False


def visible(m, rel):
    """Listed and stat-able on mount m."""
    return listed(m, rel) and errno_of(os.stat, m.path(rel)) == 0


def vanished(m, rel):
    return gone(m.path(rel)) and not listed(m, rel)


def is_lost(st):
    """The status says the lock was lost (top level or in "lockfs")."""
    return st.get("lost") is True or st.get("lockfs", {}).get("lost") is True


def try_create(path):
    """errno of an exclusive create of path by this process (0: taken)."""
    try:
        fd = os.open(path, EXCL, 0o644)
    except OSError as e:
        return e.errno
    os.close(fd)
    return 0


class Hammer:
    """Threads that try exclusive creates of paths over and over (every
    20 ms) until stop(); what they saw is in .results (errno -> count)."""

    def __init__(self, paths):
        self.results = {}
        self.taken = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(p,), daemon=True)
                        for p in paths]
        for t in self.threads:
            t.start()

    def _run(self, path):
        while not self._stop.is_set():
            e = try_create(path)
            with self._lock:
                self.results[e] = self.results.get(e, 0) + 1
                if e == 0:
                    self.taken.append(path)
            self._stop.wait(0.02)

    def stop(self):
        self._stop.set()
        for t in self.threads:
            t.join(30)
        return self.taken


def timed_creates(paths):
    """Exclusive creates of every path at once (one thread each): a list of
    (path, errno, seconds) in the order of paths."""
    res = [None] * len(paths)

    def one(i, p):
        t0 = time.monotonic()
        e = try_create(p)
        res[i] = (p, e, time.monotonic() - t0)
    ts = [threading.Thread(target=one, args=(i, p)) for i, p in enumerate(paths)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(harness.EVENT_TIMEOUT)
    for p, r in zip(paths, res):
        assert r is not None, f"create of {p} still waiting after {harness.EVENT_TIMEOUT}s"
    return res


class ClusterCase(unittest.TestCase):
    """Three mounts (self.A, self.B, self.C) on one etcd and a prefix of
    this test's own; every mount is unmounted and checked (a daemon that
    exits non-zero fails the test), every etcd stopped."""

    LEASE_TTL = 10
    EXTRA_OPTS = ""
    N_MOUNTS = 3
    OWN_ETCD = False            # a fresh etcd for each test (which may stop it)

    def setUp(self):
        if self.OWN_ETCD:
            self.etcd = EtcdServer()
            self.addCleanup(self.etcd.cleanup)      # runs after the mounts are gone
            self.etcd.start()
        else:
            self.etcd = ETCD
        self.prefix = f"/lockfs/{self._testMethodName}-{uuid.uuid4().hex[:8]}/"
        self.mounts = [self.mount() for _ in range(self.N_MOUNTS)]
        self.A, self.B, self.C = (self.mounts + [None] * 3)[:3]

    def opts(self, lease_ttl=None, prefix=None, extra=None):
        o = ["backend=etcd", f"endpoints={self.etcd.endpoint}",
             f"prefix={self.prefix if prefix is None else prefix}",
             f"lease_ttl={self.LEASE_TTL if lease_ttl is None else lease_ttl}"]
        extra = self.EXTRA_OPTS if extra is None else extra
        if extra:
            o.append(extra)
        return ",".join(o)

    def mount(self, **kw):
        m = Mount(self.opts(**kw))
        m.start()
        self.addCleanup(self._stop, m)
        return m

    def _stop(self, m):
        rc = m.stop()
        if rc not in (0, None):     # None: crashed on purpose
            self.fail(f"daemon exited with {rc}; log:\n{m.log()}")

    def others(self, m):
        return [x for x in self.mounts if x is not m]

    def wait_visible(self, m, rel, timeout=VISIBLE_S):
        wait_until(lambda: visible(m, rel), timeout, f"{rel} listed on mount {self.name(m)}")

    def wait_vanished(self, m, rel, timeout=RELEASE_S):
        wait_until(lambda: vanished(m, rel), timeout, f"{rel} gone on mount {self.name(m)}")

    def name(self, m):
        return "ABCDEFGH"[self.mounts.index(m)] if m in self.mounts else m.mnt

    def keys(self, rel):
        return lock_keys(self.etcd.endpoint, self.prefix, rel)


class TestVisibility(ClusterCase):

    def test_lock_on_a_is_seen_and_refused_everywhere(self):
        rel = "x.lock"
        create(self.A.path(rel), b"held on A\n")
        # no waiting: the create on A has returned, so it is in etcd
        for m in (self.B, self.C):
            self.assertEqual(errno_of(os.open, m.path(rel), EXCL, 0o644), errno.EEXIST,
                             f"O_EXCL create on {self.name(m)} of a name held on A")
        local = lockinfo(self.A.path(rel))
        self.assertEqual(local["pid"], os.getpid())
        for m in (self.B, self.C):
            self.wait_visible(m, rel)
            st = os.stat(m.path(rel))
            self.assertTrue(stat.S_ISREG(st.st_mode), oct(st.st_mode))
            self.assertEqual(st.st_uid, 0)
            doc = status(m.path(rel))
            info = doc["lockfs"]
            self.assertEqual(info["pid"], os.getpid(), f"holder pid as seen on {self.name(m)}")
            self.assertEqual(doc.get("pid"), os.getpid(), "top-level pid is the holder's")
            for k in ("host", "cmdline", "fence"):
                self.assertEqual(info.get(k), local[k], f"{k} on {self.name(m)} vs A: {doc}")
            self.assertEqual(info["host"], socket.gethostname())
            # even without O_EXCL, nobody there can write the held name
            fd = os.open(m.path(rel), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                self.assertEqual(errno_of(os.write, fd, b"mine"), errno.EEXIST)
            finally:
                os.close(fd)
            self.assertEqual(lockinfo(m.path(rel))["pid"], os.getpid())
        with open(self.A.path(rel)) as f:
            self.assertEqual(json.loads(f.read())["content"], "held on A\n",
                             "a contender's O_TRUNC/write changed the lock")
        # the holder unlinks on A: gone at once there, soon everywhere
        os.unlink(self.A.path(rel))
        self.assertTrue(vanished(self.A, rel))
        for m in (self.B, self.C):
            self.wait_vanished(m, rel)
        self.assertEqual(self.keys(rel), {}, "the etcd key outlived the unlink")
        b = agent(self)
        b.ok("create", path=self.B.path(rel), data="{pid}")
        for m in (self.A, self.C):
            wait_until(lambda: visible(m, rel) and lockinfo(m.path(rel))["pid"] == b.pid,
                       VISIBLE_S, f"B's lock seen on {self.name(m)}")
        self.assertEqual(errno_of(os.open, self.A.path(rel), EXCL, 0o644), errno.EEXIST)
        b.ok("unlink", path=self.B.path(rel))
        for m in (self.A, self.C):
            self.wait_vanished(m, rel)

    def test_lock_in_subdirectory_appears_on_other_mounts(self):
        os.mkdir(self.A.path("d"))
        rel = os.path.join("d", "x.lock")
        h = Holder(self.A.path(rel))
        self.addCleanup(h.kill)
        self.assertTrue(h.ok, f"create of {rel} on A: errno {h.errno}")
        for m in (self.B, self.C):
            self.wait_visible(m, rel)
            self.assertTrue(stat.S_ISDIR(os.stat(m.path("d")).st_mode))
            self.assertEqual(lockinfo(m.path(rel))["pid"], h.pid)
            self.assertEqual(errno_of(os.open, m.path(rel), EXCL, 0o644), errno.EEXIST)
        self.assertEqual(h.release(), 0)
        for m in (self.B, self.C):
            self.wait_vanished(m, rel)

    def test_new_mount_serves_existing_locks_at_once(self):
        # "serving" is printed after the current locks were loaded from etcd
        create(self.A.path("x.lock"))
        os.mkdir(self.A.path("d"))
        h = Holder(self.A.path("d", "y.lock"))
        self.addCleanup(h.kill)
        self.assertTrue(h.ok)
        d = self.mount()
        self.assertTrue(visible(d, "x.lock"), os.listdir(d.mnt))
        self.assertTrue(visible(d, "d/y.lock"))
        self.assertEqual(lockinfo(d.path("x.lock"))["pid"], os.getpid())
        self.assertEqual(lockinfo(d.path("d", "y.lock"))["pid"], h.pid)
        self.assertEqual(try_create(d.path("x.lock")), errno.EEXIST)
        os.unlink(self.A.path("x.lock"))
        self.wait_vanished(d, "x.lock")

    def test_fence_is_the_etcd_create_revision(self):
        create(self.A.path("x.lock"))
        keys = self.keys("x.lock")
        self.assertEqual(len(keys), 1, f"keys for x.lock under {self.prefix}: "
                         f"{etcd_keys(self.etcd.endpoint, self.prefix)}")
        (key, kv), = keys.items()
        self.assertEqual(lockinfo(self.A.path("x.lock"))["fence"], kv["create_revision"], key)
        self.assertNotEqual(kv["lease"], 0, "a lock key must be bound to its daemon's lease")
        os.unlink(self.A.path("x.lock"))

    def test_default_prefix_is_lockfs(self):
        # the default prefix "/lockfs/" (no other test uses it on this etcd)
        m = Mount(f"backend=etcd,endpoints={self.etcd.endpoint}").start()
        self.addCleanup(self._stop, m)
        rel = f"default-{uuid.uuid4().hex[:8]}.lock"
        create(m.path(rel))
        keys = lock_keys(self.etcd.endpoint, "/lockfs/", rel)
        self.assertEqual(len(keys), 1, etcd_keys(self.etcd.endpoint, "/lockfs/"))
        self.assertEqual(list(keys.values())[0]["create_revision"],
                         lockinfo(m.path(rel))["fence"])
        os.unlink(m.path(rel))
        self.assertEqual(lock_keys(self.etcd.endpoint, "/lockfs/", rel), {})


class TestIgnoredClaim(ClusterCase):
    """A claim that named a process the writer may not name (SPEC R3.3) is
    ignored, and the status says which pid it named: on every mount, so
    the value in etcd carries it."""
    N_MOUNTS = 2

    def test_ignored_claim_pid_shows_on_other_mount(self):
        sib = subprocess.Popen(["sleep", "1000"])  # not the writer, nor its ancestor
        self.addCleanup(lambda: (sib.kill(), sib.wait()))
        rel = "x.lock"
        h = Holder(self.A.path(rel), content=f"{sib.pid}\n")
        self.addCleanup(h.kill)
        self.assertTrue(h.ok, f"create on A: errno {h.errno}")
        here = status(self.A.path(rel))["lockfs"]
        self.assertEqual(here.get("claim_ignored_pid"), sib.pid, f"on A: {here}")
        self.assertEqual(here["pid"], h.pid, "a foreign claim must be ignored")

        def seen_on_b():
            if not visible(self.B, rel):
                return False
            return status(self.B.path(rel))["lockfs"].get("claim_ignored_pid") == sib.pid
        wait_until(seen_on_b, VISIBLE_S, "claim_ignored_pid of A's lock on B")
        there = status(self.B.path(rel))["lockfs"]
        self.assertEqual(there["pid"], h.pid, f"on B: {there}")
        self.assertEqual(there["how"], "creator", f"on B: {there}")
        (key, kv), = self.keys(rel).items()
        self.assertEqual(json.loads(kv["value"]).get("claim_ignored_pid"), sib.pid, key)
        self.assertEqual(h.release(), 0)
        self.wait_vanished(self.B, rel)


class TestNamespace(ClusterCase):
    N_MOUNTS = 1

    def test_other_prefix_is_another_namespace(self):
        create(self.A.path("x.lock"))
        sibling = self.prefix[:-1] + "-other/"          # not under self.prefix
        other = self.mount(prefix=sibling)
        self.assertFalse(listed(other, "x.lock"), os.listdir(other.mnt))
        create(other.path("x.lock"))
        self.assertEqual(lockinfo(other.path("x.lock"))["fence"],
                         list(lock_keys(self.etcd.endpoint, sibling,
                                        "x.lock").values())[0]["create_revision"])
        os.unlink(other.path("x.lock"))
        self.assertTrue(visible(self.A, "x.lock"), "a release on another prefix freed A's lock")
        os.unlink(self.A.path("x.lock"))

    def test_endpoint_list_skips_a_dead_endpoint(self):
        dead = f"http://127.0.0.1:{free_port()}"
        m = Mount(f"backend=etcd,endpoints={dead},{self.etcd.endpoint},prefix={self.prefix},"
                  f"lease_ttl={self.LEASE_TTL}").start()
        self.addCleanup(self._stop, m)
        create(m.path("x.lock"))
        self.wait_visible(self.A, "x.lock")
        self.assertEqual(try_create(self.A.path("x.lock")), errno.EEXIST)
        os.unlink(m.path("x.lock"))
        self.wait_vanished(self.A, "x.lock")

    def test_state_dir_and_fence_file_unused(self):
        create(self.A.path("x.lock"))
        self.assertFalse(os.path.exists(self.A.fence_file), "fence_file written with backend=etcd")
        self.assertEqual(os.listdir(self.A.state_dir) if os.path.isdir(self.A.state_dir) else [],
                         [], "a journal written with backend=etcd")
        os.unlink(self.A.path("x.lock"))


class TestNoSecondNames(ClusterCase):
    """A lock's name is its key: link(2) and rename of a lock (or of a
    directory holding one) would leave the key behind, so they fail with
    EXDEV and nothing changes, here or elsewhere."""
    N_MOUNTS = 2

    def errno_of(self, fn, *args):
        try:
            fn(*args)
        except OSError as e:
            return e.errno
        return 0

    def test_link_and_rename_refused(self):
        p = self.A.path("x.lock")
        create(p)
        self.wait_visible(self.B, "x.lock")
        self.assertEqual(self.errno_of(os.link, p, self.A.path("y.lock")), errno.EXDEV)
        self.assertEqual(self.errno_of(os.rename, p, self.A.path("z.lock")), errno.EXDEV)
        os.mkdir(self.A.path("d"))
        create(self.A.path("d", "in.lock"))
        self.assertEqual(self.errno_of(os.rename, self.A.path("d"), self.A.path("e")),
                         errno.EXDEV)
        os.mkdir(self.A.path("empty"))
        os.rename(self.A.path("empty"), self.A.path("moved"))   # no key in it: fine
        self.assertEqual(sorted(os.listdir(self.A.mnt)), [".lockfs", "d", "moved", "x.lock"])
        self.assertEqual(sorted(etcd_keys(self.etcd.endpoint, self.prefix)),
                         sorted([self.prefix + "x.lock", self.prefix + "d/in.lock"]))
        self.assertEqual(try_create(self.B.path("x.lock")), errno.EEXIST)
        self.assertFalse(listed(self.B, "y.lock") or listed(self.B, "z.lock"))
        os.unlink(p)
        os.unlink(self.A.path("d", "in.lock"))
        self.wait_vanished(self.B, "x.lock")


class TestOptions(unittest.TestCase):
    """Bad cluster options are refused at start (no mount)."""

    def refused(self, opts):
        m = Mount(opts)
        try:
            m.start()
        except RuntimeError as e:
            self.assertIn("exited before serving", str(e))
            return
        m.stop()
        self.fail(f"daemon served with -o {opts}")

    def test_bad_prefix_and_lease_ttl_refused(self):
        ep = ETCD.endpoint
        # the control: the same options with good values do mount
        good = Mount(f"backend=etcd,endpoints={ep},prefix=/lockfs/opts-{uuid.uuid4().hex[:8]}/,"
                     "lease_ttl=2").start()
        rc = good.stop()
        self.assertEqual(rc, 0, good.log())
        self.refused(f"backend=etcd,endpoints={ep},prefix=lockfs/x/")     # no leading /
        self.refused(f"backend=etcd,endpoints={ep},prefix=/lockfs/x")     # no trailing /
        self.refused(f"backend=etcd,endpoints={ep},lease_ttl=1")          # minimum 2


# A contender of the cross-mount race: on "go T" it sleeps until monotonic
# time T and tries an exclusive create of its path, answering "OK" or
# "ERR errno"; on "unlink" the winner releases. It holds what it takes
# (it is the creator) until it unlinks.
RACE_WORKER = r"""
import os, sys, time
path = sys.argv[1]
print("READY", os.getpid(), flush=True)
for line in sys.stdin:
    cmd = line.split()
    try:
        if cmd[0] == "go":
            d = float(cmd[1]) - time.monotonic()
            if d > 0:
                time.sleep(d)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        elif cmd[0] == "unlink":
            os.unlink(path)
        print("OK", flush=True)
    except OSError as e:
        print("ERR", e.errno, flush=True)
"""


class TestRace(ClusterCase):
    ROUNDS = 200
    PER_MOUNT = 8

    def test_one_winner_per_round_across_three_mounts(self):
        rel = "race.lock"
        workers = []
        for m in self.mounts:
            for _ in range(self.PER_MOUNT):
                p = subprocess.Popen([sys.executable, "-c", RACE_WORKER, m.path(rel)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                lines = Lines(p.stdout)

                def _kill(p=p, lines=lines):
                    if p.poll() is None:
                        p.kill()
                    p.wait(timeout=20)
                    close_pipes(p, lines)
                self.addCleanup(_kill)
                workers.append((m, p, lines))
        pids = [int(lines.expect("READY").split()[1]) for _, _, lines in workers]
        wins = {self.name(m): 0 for m in self.mounts}
        problems = []
        last_fence = -1
        t_start = time.monotonic()
        for rnd in range(self.ROUNDS):
            go = f"go {time.monotonic() + 0.01!r}\n"
            for _, p, _ in workers:
                p.stdin.write(go)
                p.stdin.flush()
            res = [lines.get(20, f"round {rnd} result") for _, _, lines in workers]
            winners = [i for i, r in enumerate(res) if r == "OK"]
            others = [r for r in res if r not in ("OK", f"ERR {errno.EEXIST}")]
            if len(winners) != 1 or others:
                problems.append(f"round {rnd}: {len(winners)} winners "
                                f"({[self.name(workers[i][0]) for i in winners]}), "
                                f"other results {others}")
                # release whatever was taken and go on
                for i in winners:
                    workers[i][1].stdin.write("unlink\n")
                    workers[i][1].stdin.flush()
                    workers[i][2].get(20, "unlink answer")
                if len(problems) >= 5:
                    break
            else:
                wi = winners[0]
                wm, wp, wl = workers[wi]
                wins[self.name(wm)] += 1
                info = lockinfo(wm.path(rel))
                if info["pid"] != pids[wi]:
                    problems.append(f"round {rnd}: holder {info['pid']} != winner {pids[wi]}")
                if info["fence"] <= last_fence:
                    problems.append(f"round {rnd}: fence {info['fence']} <= {last_fence}")
                last_fence = max(last_fence, info["fence"])
                # another mount names the same holder and fence
                om = self.others(wm)[rnd % 2]
                wait_until(lambda: visible(om, rel), VISIBLE_S,
                           f"round {rnd}: lock of {self.name(wm)} on {self.name(om)}")
                oinfo = lockinfo(om.path(rel))
                if (oinfo["pid"], oinfo["fence"]) != (info["pid"], info["fence"]):
                    problems.append(f"round {rnd}: {self.name(om)} sees {oinfo}, "
                                    f"holder's mount {info}")
                wp.stdin.write("unlink\n")
                wp.stdin.flush()
                r = wl.get(20, "unlink answer")
                if r != "OK":
                    problems.append(f"round {rnd}: winner's unlink: {r}")
            for m in self.mounts:
                self.wait_vanished(m, rel)
        dt = time.monotonic() - t_start
        log(f"{self.ROUNDS} rounds x {len(workers)} contenders in {dt:.1f}s, wins {wins}")
        self.assertEqual(problems, [], "\n".join(problems))
        self.assertGreaterEqual(sum(1 for v in wins.values() if v), 2,
                                f"only one mount ever won: not a cross-mount race {wins}")


class TestFences(ClusterCase):

    def test_fences_strictly_increase_across_mounts(self):
        fences = []
        for i in range(12):
            m = self.mounts[i % 3]
            create(m.path("f.lock"))
            f = lockinfo(m.path("f.lock"))["fence"]
            (kv,) = self.keys("f.lock").values()
            self.assertEqual(f, kv["create_revision"], "fence = etcd create revision")
            nxt = self.mounts[(i + 1) % 3]
            self.wait_visible(nxt, "f.lock")
            self.assertEqual(lockinfo(nxt.path("f.lock"))["fence"], f)
            fences.append((self.name(m), f))
            os.unlink(m.path("f.lock"))
            for o in self.others(m):
                self.wait_vanished(o, "f.lock")
        log(f"fences {fences}")
        vals = [f for _, f in fences]
        self.assertEqual(vals, sorted(set(vals)), f"fences not strictly increasing: {fences}")


class TestHolderDeath(ClusterCase):
    TRIALS = 20

    def test_holder_sigkill_releases_on_other_mount(self):
        lat = []
        for i in range(self.TRIALS):
            rel = f"d{i}.lock"
            h = Holder(self.A.path(rel))
            self.addCleanup(h.kill)
            self.assertTrue(h.ok, f"errno {h.errno}")
            self.wait_visible(self.B, rel)
            t0 = time.monotonic()
            h.proc.kill()
            wait_until(lambda: vanished(self.B, rel), RELEASE_S,
                       f"{rel} gone on B after its holder's death")
            lat.append(time.monotonic() - t0)
            h.kill()
        self.wait_vanished(self.C, f"d{self.TRIALS - 1}.lock")
        self.assertEqual(try_create(self.B.path("d0.lock")), 0, "B takes a released name")
        os.unlink(self.B.path("d0.lock"))
        ms = sorted(x * 1000 for x in lat)
        log(f"holder death on A -> gone on B: p50 {statistics.median(ms):.1f} ms, "
            f"p90 {ms[int(len(ms) * 0.9) - 1]:.1f} ms, max {ms[-1]:.1f} ms")


class TestDirlocks(ClusterCase):
    """Directory locks (SPEC R7.5) across mounts: a mkdir on A is a
    directory held on every mount, refused there, and gone everywhere when
    its holder dies."""
    N_MOUNTS = 2

    def test_mkdir_on_a_is_held_everywhere(self):
        rel = "kd.lock"
        sh = subprocess.Popen(["bash", "-c", 'mkdir "$1" && echo OK && read -r _', "bash",
                               self.A.path(rel)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
        self.addCleanup(lambda: (sh.poll() is None and sh.kill(), sh.wait(timeout=20),
                                 sh.stdin.close(), sh.stdout.close()))
        self.assertEqual(sh.stdout.readline().strip(), "OK")
        self.wait_visible(self.B, rel)
        self.assertTrue(os.path.isdir(self.B.path(rel)), "a directory on B too")
        self.assertEqual(errno_of(os.mkdir, self.B.path(rel)), errno.EEXIST)
        self.assertEqual(errno_of(os.rmdir, self.B.path(rel)), errno.EBUSY)
        sh.kill()
        sh.wait(timeout=20)
        self.wait_vanished(self.B, rel)
        os.mkdir(self.B.path(rel))  # B takes the released name
        os.rmdir(self.B.path(rel))


class TestDaemonDeath(ClusterCase):
    LEASE_TTL = 2

    def test_sigkilled_daemon_locks_vanish_after_lease(self):
        h = Holder(self.A.path("x.lock"))
        self.addCleanup(h.kill)
        self.assertTrue(h.ok)
        os.mkdir(self.A.path("d"))
        h2 = Holder(self.A.path("d", "y.lock"))
        self.addCleanup(h2.kill)
        self.assertTrue(h2.ok)
        for m in (self.B, self.C):
            self.wait_visible(m, "x.lock")
            self.wait_visible(m, "d/y.lock")
        t0 = time.monotonic()
        self.A.proc.kill()              # SIGKILL; crash() below reaps it
        # before the lease runs out the locks still hold
        self.assertEqual(try_create(self.B.path("x.lock")), errno.EEXIST)
        self.assertEqual(try_create(self.C.path("d", "y.lock")), errno.EEXIST)
        wait_until(lambda: vanished(self.B, "x.lock") and vanished(self.B, "d/y.lock"),
                   RELEASE_S, "the dead daemon's locks gone on B")
        dt = time.monotonic() - t0
        self.A.crash()
        log(f"daemon SIGKILL -> its locks gone on B after {dt:.2f}s (lease_ttl {self.LEASE_TTL})")
        # a kept lower bound, rule (README): after a kill -9 of the daemon its
        # locks stay held by its lease until lease_ttl passes. The lease was
        # last renewed at most ttl/3 before the kill, so they must not go
        # sooner than that; 0.2 s is far below it (a slow machine only
        # makes dt longer, so this cannot fail by slowness)
        self.assertGreater(dt, 0.2, "gone before the lease could have run out")
        self.wait_vanished(self.C, "x.lock")
        self.wait_vanished(self.C, "d/y.lock")
        self.assertEqual(self.keys("x.lock"), {})
        self.assertEqual(self.keys("d/y.lock"), {})
        self.assertEqual(try_create(self.B.path("x.lock")), 0)
        wait_until(lambda: visible(self.C, "x.lock") and
                   lockinfo(self.C.path("x.lock"))["pid"] == os.getpid(),
                   VISIBLE_S, "B's new lock seen on C")
        os.unlink(self.B.path("x.lock"))
        self.wait_vanished(self.C, "x.lock")


    def test_clean_stop_releases_at_once(self):
        # README: a clean stop revokes the lease, releasing the mount's locks.
        # "At once" is checked by state, not by a time: the key is gone from
        # etcd as soon as the daemon has exited, with no wait for lease_ttl
        # (10 s here) to pass
        h = Holder(self.A.path("x.lock"))
        self.addCleanup(h.kill)
        self.assertTrue(h.ok)
        self.wait_visible(self.B, "x.lock")
        t0 = time.monotonic()
        self.assertEqual(self.A.stop(), 0, self.A.log())
        self.assertEqual(self.keys("x.lock"), {}, "the key outlived the clean stop")
        self.wait_vanished(self.B, "x.lock")
        log(f"unmount of A -> its lock gone on B after {(time.monotonic() - t0) * 1000:.0f} ms")


class TestInotify(ClusterCase):

    def check(self, release):
        rel = "w.lock"
        h = Holder(self.A.path(rel), unlink=True)
        self.addCleanup(h.kill)
        self.assertTrue(h.ok)
        self.wait_visible(self.B, rel)
        w = DeleteWatch(self, self.B.path(rel))
        t0 = time.monotonic()
        release(h)
        rc, out = w.wait(harness.EVENT_TIMEOUT)
        dt = time.monotonic() - t0
        self.assertEqual(rc, 0)
        self.assertIn("DELETE_SELF", out)
        self.assertTrue(vanished(self.B, rel))
        log(f"IN_DELETE_SELF on B after {dt * 1000:.1f} ms")

    def test_delete_self_on_remote_unlink(self):
        self.check(lambda h: h.release())       # the holder unlinks on A, then exits

    def test_delete_self_on_remote_holder_death(self):
        self.check(lambda h: h.proc.kill())


class TestRemoteUnlink(ClusterCase):
    EXTRA_OPTS = "allow_other"

    def test_unlink_is_ebusy_root_breaks_everywhere(self):
        rel = "a.lock"
        holder = agent(self, user=A_USER)
        holder.ok("create", path=self.A.path(rel), data="{pid}\n")
        self.wait_visible(self.B, rel)
        self.wait_visible(self.C, rel)
        same_uid = agent(self, user=A_USER)
        other_uid = agent(self, user=B_USER)
        for who, a in (("holder's uid", same_uid), ("other uid", other_uid),
                       ("the holder process itself, on another mount", holder)):
            self.assertEqual(a.err("unlink", path=self.B.path(rel)), errno.EBUSY,
                             f"unlink of a remote lock by {who}")              # SPEC R3.4
            self.assertEqual(a.err("create", path=self.B.path(rel)), errno.EEXIST, who)
        for m in self.mounts:
            self.assertTrue(visible(m, rel), f"still held on {self.name(m)}")
            self.assertEqual(lockinfo(m.path(rel))["pid"], holder.pid)
        self.assertEqual(len(self.keys(rel)), 1)
        # root on B: its unlink is EBUSY too, lockctl break breaks A's lock
        self.assertEqual(errno_of(os.unlink, self.B.path(rel)), errno.EBUSY)
        break_lock(self.B.path(rel))
        self.assertTrue(vanished(self.B, rel))
        self.assertEqual(self.keys(rel), {}, "force-unlock left the etcd key")
        for m in (self.A, self.C):
            self.wait_vanished(m, rel)
        # the daemon's stderr is read by a harness thread: await the line
        wait_until(lambda: any("force-unlock" in l and "/a.lock" in l for l in self.B.log_lines),
                   VISIBLE_S, "the force-unlock logged on B")
        self.assertIsNone(holder.proc.poll(), "force unlock does not kill the holder")
        other_uid.ok("create", path=self.C.path(rel), data="{pid}\n")
        wait_until(lambda: visible(self.A, rel) and lockinfo(self.A.path(rel))["pid"]
                   == other_uid.pid, VISIBLE_S, "C's new lock on A")
        self.assertEqual(holder.err("create", path=self.A.path(rel)), errno.EEXIST)


class TestEtcdOutage(ClusterCase):
    OWN_ETCD = True
    # the scenario is an outage shorter than the lease: a lease far longer
    # than every deadline the outage can take makes it short on any machine
    LEASE_TTL = 3 * harness.EVENT_TIMEOUT

    def etcd_lines(self, m, since):
        return [l for l in m.log_lines[since:] if "etcd" in l.lower()]

    def down_checks(self, held_rel, tag):
        """With etcd down: a create of a free name fails with EIO on every
        mount while etcd is still down (it returns, it does not wait for
        etcd; how long it took is printed); the held name is refused
        (EEXIST or EIO); each daemon logs a line mentioning etcd."""
        paths = [m.path(f"free-{tag}-{self.name(m)}.lock") for m in self.mounts]
        paths += [self.B.path(held_rel), self.C.path(held_rel)]
        res = timed_creates(paths)
        log(f"creates with etcd down: " + ", ".join(
            f"{os.path.relpath(p, os.path.dirname(os.path.dirname(p)))}: "
            f"{errno.errorcode.get(e, e)} {dt:.2f}s" for p, e, dt in res))
        for p, e, dt in res[:3]:
            self.assertEqual(e, errno.EIO, f"create of free {p} with etcd down")
        for p, e, dt in res[3:]:
            self.assertIn(e, (errno.EEXIST, errno.EIO),
                          f"create of held {p} with etcd down: {e}")
        for p in paths[:3]:
            self.assertTrue(gone(p), f"{p} appeared though its create failed")

    def await_creates_work(self, tag):
        for m in self.mounts:
            p = m.path(f"after-{tag}-{self.name(m)}.lock")
            errs = set()

            def ok():
                e = try_create(p)
                if e == errno.EIO:
                    errs.add(e)
                    time.sleep(0.05)
                    return False
                self.assertEqual(e, 0, f"create on {self.name(m)} after etcd returned")
                return True
            wait_until(ok, RECOVER_S, f"a create working on {self.name(m)} after etcd returned")
            os.unlink(p)

    def test_short_outage(self):
        held = "held.lock"
        h = Holder(self.A.path(held), unlink=True)
        self.addCleanup(h.kill)
        self.assertTrue(h.ok)
        for m in (self.B, self.C):
            self.wait_visible(m, held)
        since = [len(m.log_lines) for m in self.mounts]
        t_down = time.monotonic()
        self.etcd.stop()
        # from here until etcd is started again, no create may succeed
        hammer = Hammer([m.path(f"hammer-{self.name(m)}.lock") for m in self.mounts] +
                        [self.B.path(held)])
        try:
            self.down_checks(held, "short")
            for m, n in zip(self.mounts, since):
                wait_until(lambda: self.etcd_lines(m, n), harness.EVENT_TIMEOUT,
                           f"a log line mentioning etcd on {self.name(m)}")
            # keep etcd down until every hammer thread tried 25 times
            wait_until(lambda: sum(hammer.results.values()) >= 25 * len(hammer.threads),
                       harness.EVENT_TIMEOUT, "creates tried during the outage")
        finally:
            taken = hammer.stop()
        log(f"A logged: {self.etcd_lines(self.A, since[0])[:2]}; "
            f"creates during the outage: {hammer.results}")
        self.assertEqual(taken, [], "creates succeeded while etcd was down")
        self.etcd.start()
        outage = time.monotonic() - t_down
        # not a speed check but the scenario's precondition: an outage that
        # outlasted the lease would rightly lose the lock (the long outage's
        # test). The deadlines above end the outage well inside LEASE_TTL
        self.assertLess(outage, self.LEASE_TTL - 1,
                        "outage outlasted the lease: not the short outage scenario")
        # A's lock survived: B and C still refuse it (EIO while they
        # reconnect is no answer, but never success)
        for m in (self.B, self.C):
            first = []

            def answered():
                e = try_create(m.path(held))
                if e == errno.EIO:
                    time.sleep(0.02)
                    return False
                first.append(e)
                return True
            wait_until(answered, RECOVER_S, f"{self.name(m)} answering again")
            self.assertEqual(first[0], errno.EEXIST,
                             f"{self.name(m)} after a {outage:.1f}s outage: lock held on A")
        self.assertFalse(is_lost(status(self.A.path(held))), status(self.A.path(held)))
        self.assertEqual(lockinfo(self.B.path(held))["pid"], h.pid)
        self.await_creates_work("short")
        # the watch runs again: a release on A reaches B
        self.assertEqual(h.release(), 0)
        for m in (self.B, self.C):
            self.wait_vanished(m, held)
        log(f"short outage {outage:.1f}s")


class TestEtcdLongOutage(ClusterCase):
    OWN_ETCD = True
    LEASE_TTL = 2

    def test_long_outage_marks_lost_and_frees_the_name(self):
        held = "held.lock"
        h = Holder(self.A.path(held))
        self.addCleanup(h.kill)
        self.assertTrue(h.ok)
        self.wait_visible(self.B, held)
        self.assertFalse(is_lost(status(self.A.path(held))))
        t_down = time.monotonic()
        self.etcd.stop()
        self.assertIn(try_create(self.A.path("free.lock")), (errno.EIO,))
        wait_until(lambda: is_lost(status(self.A.path(held))), harness.EVENT_TIMEOUT,
                   "A's lock marked lost during an outage longer than the lease")
        t_lost = time.monotonic() - t_down
        # a kept lower bound, rule (README faults): a lock is marked lost when
        # the lease is not renewed within lease_ttl, not before. Renewals
        # come every ttl/3 (0.67 s here), so lost cannot come sooner than
        # ttl - ttl/3 after etcd stopped; 0.5 s stays below that (slowness
        # only makes t_lost longer)
        self.assertGreaterEqual(t_lost, 0.5, "marked lost before the lease could run out")
        st = status(self.A.path(held))
        log(f"A's lock marked lost {t_lost:.1f}s after etcd stopped")
        self.assertEqual(st["lockfs"]["pid"], h.pid, st)
        self.assertIn(try_create(self.B.path(held)), (errno.EEXIST, errno.EIO),
                      "B took the name while etcd was down")
        self.etcd.start()
        t_up = time.monotonic()
        errs = []

        def b_takes():
            e = try_create(self.B.path(held))
            if e == 0:
                return True
            self.assertIn(e, (errno.EEXIST, errno.EIO))
            errs.append(e)
            time.sleep(0.05)
            return False
        wait_until(b_takes, RECOVER_S, "B taking the lost lock's name after etcd returned")
        log(f"B took it {time.monotonic() - t_up:.2f}s after etcd returned "
            f"({len(errs)} refusals)")
        self.assertEqual(lockinfo(self.B.path(held))["pid"], os.getpid())
        wait_until(lambda: visible(self.A, held) and
                   lockinfo(self.A.path(held))["pid"] == os.getpid()
                   and not is_lost(status(self.A.path(held))),
                   VISIBLE_S, "A showing B's new lock")
        self.assertGreater(lockinfo(self.A.path(held))["fence"], 0)
        os.unlink(self.B.path(held))
        self.wait_vanished(self.A, held)


class TestEtcdOtherFaults(ClusterCase):
    OWN_ETCD = True
    N_MOUNTS = 1

    def test_frozen_etcd_gives_eio_in_time(self):
        # SIGSTOP: connections are accepted but never answered. "In time" is
        # checked by state: the create gives up on its own and returns EIO
        # while etcd is still frozen (etcd is resumed only after it returned;
        # a create that waited for an answer would hang until the deadline
        # and fail the test); how long it took is printed
        self.etcd.pause()
        try:
            (p, e, dt), = timed_creates([self.A.path("x.lock")])
        finally:
            self.etcd.resume()
        log(f"create with etcd frozen: {errno.errorcode.get(e, e)} after {dt:.2f}s")
        self.assertEqual(e, errno.EIO)
        self.assertTrue(gone(p))
        wait_until(lambda: try_create(p) == 0 or time.sleep(0.05), RECOVER_S,
                   "create working after etcd resumed")
        os.unlink(p)

    def test_start_with_etcd_down_serves_and_recovers(self):
        # README: a daemon with an unreachable etcd at start serves (after
        # 3 s) anyway. Checked by state: the mount comes up and answers
        # while etcd is still down; the time it took is printed
        self.etcd.stop()
        t0 = time.monotonic()
        m = self.mount()
        dt = time.monotonic() - t0
        log(f"serving with etcd down after {dt:.2f}s")
        self.assertEqual(try_create(m.path("x.lock")), errno.EIO)
        self.etcd.start()
        wait_until(lambda: try_create(m.path("x.lock")) == 0 or time.sleep(0.05), RECOVER_S,
                   "create working once etcd is up")
        self.wait_visible(self.A, "x.lock")
        os.unlink(m.path("x.lock"))
        self.wait_vanished(self.A, "x.lock")


# ---- a secured etcd (README "Securing etcd") ----

FORGED = {"host": "db-1", "pid": 1e20, "uid": 0, "gid": 0, "comm": "systemd",
          "cmdline": "systemd", "how": "creator", "liveness_known": True,
          "acquired_at_ms": 1e300, "renewed_at_ms": -1e300, "ttl_s": 1e30,
          "content": '{"op":"maintenance by root"}'}


def good_value(**over):
    """A value of the form a daemon writes, with fields replaced."""
    v = {"host": "other-host", "pid": 4242, "uid": 1000, "gid": 1000, "comm": "job",
         "cmdline": "job --run", "how": "creator", "liveness_known": True,
         "acquired_at_ms": 1764000000000, "renewed_at_ms": 1764000000000, "ttl_s": 0,
         "content": ""}
    v.update(over)
    return v


class SecureCase(unittest.TestCase):
    """One etcd per class (started by setUpClass), mounts per test."""
    PKI = False
    AUTH = False
    ETCD_ARGS = []
    USER, PASSWORD = "lockfs-daemon", "daemon-pw_x!y%z"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="lockfs-etcdsec-")
        os.chmod(cls.tmp, 0o700)
        cls.prefix = f"/lockfs/sec-{uuid.uuid4().hex[:8]}/"
        cls.pki = make_pki(cls.tmp) if cls.PKI else None
        cls.etcd = EtcdServer(pki=cls.pki, extra_args=cls.ETCD_ARGS)
        try:
            cls.etcd.start()
            if cls.AUTH:
                cls.etcd.enable_auth(cls.prefix, cls.USER, cls.PASSWORD)
        except FileNotFoundError as err:
            cls.etcd.cleanup()
            raise RuntimeError(f"missing {err.filename}: the cluster tests need etcd, "
                               "etcdctl and openssl") from err
        except BaseException:
            cls.etcd.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.etcd.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def password_file(self, password, name="pw"):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(password + "\n")
        os.chmod(path, 0o600)
        return path

    def opts(self, **kw):
        o = {"backend": "etcd", "endpoints": self.etcd.endpoint, "prefix": self.prefix,
             "lease_ttl": "10"}
        if self.pki:
            o.update(cacert=self.pki["ca"], cert=self.pki["client"], key=self.pki["client_key"])
        if self.AUTH:
            o.update(etcd_user=self.USER, etcd_password_file=self.password_file(self.PASSWORD))
        o.update(kw)
        return ",".join(k if v is True else f"{k}={v}" for k, v in o.items() if v is not None)

    def mount(self, **kw):
        m = Mount(self.opts(**kw))
        m.start()
        self.addCleanup(self._stop, m)
        return m

    def _stop(self, m):
        rc = m.stop()
        if rc not in (0, None):
            self.fail(f"daemon exited with {rc}; log:\n{m.log()}")

    def refused(self, why, **kw):
        """The daemon exits at start-up, before serving, saying why."""
        m = Mount(self.opts(**kw))
        try:
            m.start()
        except RuntimeError as e:
            self.assertIn("exited before serving", str(e))
            self.assertIn(why, str(e))
            return str(e)
        m.stop()
        self.fail(f"daemon served with -o {self.opts(**kw)}")

    def share_one_lock(self, a, b, rel):
        """A lock taken on a is listed on b, refused there, and in etcd."""
        create(a.path(rel), b"1\n")
        wait_until(lambda: visible(b, rel), VISIBLE_S, f"{rel} on the other mount")
        self.assertEqual(try_create(b.path(rel)), errno.EEXIST)
        self.assertIn(self.prefix + rel, self.etcd.etcdctl("get", "--prefix", "--keys-only",
                                                          self.prefix))
        os.unlink(a.path(rel))
        wait_until(lambda: vanished(b, rel), RELEASE_S, f"{rel} released on the other mount")


class TestTLS(SecureCase):
    """etcd serving https:// only, with --client-cert-auth."""
    PKI = True

    def test_tls_mount_works(self):
        a, b = self.mount(), self.mount()
        self.share_one_lock(a, b, "tls.lock")
        self.assertIn("answers; read and write on", a.log())

    def test_wrong_ca_refused_at_start(self):
        out = self.refused("certificate does not verify", cacert=self.pki["other_ca"])
        log(out.split("cannot use etcd", 1)[-1][:200])

    def test_unreadable_tls_files_refused(self):
        missing = os.path.join(self.tmp, "missing.pem")
        self.refused(f"cannot read cacert={missing}", cacert=missing)
        self.refused(f"cannot read key={missing}", key=missing)

    def test_no_client_certificate_refused_at_start(self):
        # etcd answers with a TLS alert: it is there, and refuses us
        self.refused("refused this client's certificate", cert=None, key=None)

    def test_certificate_for_another_host_name_refused_at_start(self):
        pki = dict(self.pki, server=self.pki["wrongname"], server_key=self.pki["wrongname_key"])
        other = EtcdServer(pki=pki)
        self.addCleanup(other.cleanup)
        other.start()
        out = self.refused("certificate does not verify", endpoints=other.endpoint)
        self.assertIn("host name", out)

    def test_without_cacert_the_system_cas_refuse_the_member(self):
        # the control for the CA above: without a CA the system's are used,
        # which do not know this test CA either
        self.refused("certificate does not verify", cacert=None, cert=None, key=None)


class TestAuth(SecureCase):
    """etcd with authentication on; the daemon's role has readwrite on its
    prefix only."""
    AUTH = True

    def test_auth_mount_works_and_renews_its_token(self):
        a, b = self.mount(), self.mount()
        self.share_one_lock(a, b, "auth.lock")
        self.assertIn("(authenticated)", a.log())
        # changing the password (to the same) makes etcd drop the user's
        # tokens: the next calls are refused, authenticate again and go on
        since = len(a.log_lines)
        self.etcd.etcdctl("user", "passwd", self.USER, "--interactive=false",
                          stdin=self.PASSWORD.encode())
        create(a.path("after.lock"), b"1\n")
        wait_until(lambda: visible(b, "after.lock"), VISIBLE_S * 3, "after.lock on b")
        wait_until(lambda: any("authenticated again" in l for l in a.log_lines[since:]),
                   15, "a's re-authentication logged")
        os.unlink(a.path("after.lock"))
        wait_until(lambda: vanished(b, "after.lock"), RELEASE_S, "after.lock released on b")
        for m in (a, b):
            self.assertNotIn(self.PASSWORD, m.log())

    def test_anonymous_client_cannot_break_a_lock(self):
        # the review's attack: a local user deletes the key through the
        # gateway; with auth on, etcd refuses it and the lock stays
        a, b = self.mount(), self.mount()
        rel = "deploy.lock"
        h = Holder(a.path(rel), unlink=True)
        self.addCleanup(h.kill)
        self.assertTrue(h.ok)
        wait_until(lambda: visible(b, rel), VISIBLE_S, f"{rel} on b")
        body = json.dumps({"key": _b64((self.prefix + rel).encode())}).encode()
        req = urllib.request.Request(self.etcd.endpoint + "/v3/kv/deleterange", data=body,
                                     headers={"Content-Type": "application/json"})
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(req, timeout=5)
        self.assertIn(b"user name is empty", cm.exception.read())
        self.assertIn(self.prefix + rel, self.etcd.etcdctl("get", "--prefix", "--keys-only",
                                                          self.prefix))
        self.assertEqual(try_create(b.path(rel)), errno.EEXIST)
        self.assertTrue(visible(b, rel))

    def test_wrong_password_refused_at_start(self):
        out = self.refused("refused the credentials",
                           etcd_password_file=self.password_file("wrong", "bad-pw"))
        self.assertIn("authentication failed", out)
        self.assertNotIn("wrong", out.replace("wrong password", ""))

    def test_no_credentials_refused_at_start(self):
        self.refused("refused the credentials", etcd_user=None, etcd_password_file=None)

    def test_role_without_the_prefix_refused_at_start(self):
        self.etcd.add_user("elsewhere", "pw2", "/lockfs/not-this-one/")
        self.refused("permission denied", etcd_user="elsewhere",
                     etcd_password_file=self.password_file("pw2", "pw2"))

    def test_password_on_the_command_line_refused(self):
        self.refused("no password on the command line", etcd_password_file=None,
                     etcd_password="x")


class TestAuthTokenExpiry(SecureCase):
    """etcd's tokens live 1 s (--auth-token-ttl): every renewal and probe
    finds its token expired, authenticates again and goes on."""
    AUTH = True
    ETCD_ARGS = ["--auth-token-ttl", "1"]

    def test_expired_tokens_are_renewed_without_a_break(self):
        a, b = self.mount(), self.mount()
        # the keeper renews every lease_ttl/3 = 3.3 s, so each renewal
        # (and the watch's probe after 3 s of silence) meets an expired token
        for m in (a, b):
            wait_until(lambda: sum("authenticated again" in l for l in m.log_lines) >= 2,
                       20, "two re-authentications")
        self.share_one_lock(a, b, "ttl.lock")
        for m in (a, b):
            bad = [l for l in m.log_lines if "interrupted" in l or "cannot" in l
                   or "lost" in l]
            self.assertEqual(bad, [], m.log())


class TestForgedValues(SecureCase):
    """Anyone with write access to the prefix can put anything there: what
    is not a daemon's lock is ignored and logged, never shown as a lock."""

    def test_forged_values_are_ignored_and_logged(self):
        a = self.mount()
        lease = self.etcd.etcdctl("lease", "grant", "60").split()[1]
        self.etcd.etcdctl("put", self.prefix + "no-lease.lock", json.dumps(good_value(uid=0)))
        self.etcd.etcdctl("put", "--lease=" + lease, self.prefix + "review.lock",
                          json.dumps(FORGED))
        self.etcd.etcdctl("put", "--lease=" + lease, self.prefix + "garbage.lock", "{not json")
        self.etcd.etcdctl("put", "--lease=" + lease, self.prefix + "no-uid.lock",
                          json.dumps({k: v for k, v in good_value().items() if k != "uid"}))
        self.etcd.etcdctl("put", "--lease=" + lease, self.prefix + "ctl\x1b[0m.lock",
                          json.dumps(good_value(host="h\nforged line")))
        # the control, written last: a well-formed value on a lease shows
        self.etcd.etcdctl("put", "--lease=" + lease, self.prefix + "control.lock",
                          json.dumps(good_value()))
        wait_until(lambda: visible(a, "control.lock"), VISIBLE_S, "control.lock listed")
        self.assertEqual(sorted(n for n in os.listdir(a.mnt) if n != ".lockfs"),
                         ["control.lock"])
        st = lockinfo(a.path("control.lock"))
        self.assertEqual((st["host"], st["pid"], st["uid"]), ("other-host", 4242, 1000))
        locks = status(a.path(".lockfs", "locks.json"))
        self.assertEqual([l["lockfs"]["path"] for l in locks], ["/control.lock"])
        text = a.log()
        for key, why in (("no-lease.lock", "no lease"), ("review.lock", '"pid"'),
                         ("garbage.lock", "not one JSON object"), ("no-uid.lock", '"uid"'),
                         ("ctl\\x1b[0m.lock", '"host"')):
            self.assertTrue(any(f"ignoring key {self.prefix}{key}: " in l and why in l
                                for l in a.log_lines), f"{key} ({why}) not logged:\n{text}")
        self.assertNotIn("\x1b", text)
        self.assertNotIn("forged line", text)
        # a forged key still occupies its name in etcd: creating it fails,
        # but it is never shown as held (by root or anyone)
        self.assertEqual(try_create(a.path("review.lock")), errno.EEXIST)
        self.assertFalse(listed(a, "review.lock"))
        self.etcd.etcdctl("lease", "revoke", lease)
        wait_until(lambda: vanished(a, "control.lock"), RELEASE_S, "control.lock gone")
        self.etcd.etcdctl("del", self.prefix + "no-lease.lock")


if __name__ == "__main__":
    harness.main()
