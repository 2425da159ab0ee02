#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Chaos test and benchmark: many processes take and release a few locks by
every method while the driver SIGKILLs lock holders and crashes and restarts
the daemon. No two processes may ever be inside one lock's critical section,
fences may never go backwards, and no lock may outlive its holder
(SPEC R2.3, R5.1, R5.4, R7.1, R8.2, R8.3).

    python3 tests/integration/chaos.py                  # the test: 60 s
    python3 tests/integration/chaos.py --duration 600   # a long run; prints counts
    python3 tests/integration/chaos.py --no-daemon-kills

Clients (--clients, default 16) are separate processes running this file
with --client. Each loops: pick one of --names lock names, take it by
O_CREAT|O_EXCL, by O_CREAT + write of its pid, or by open + a lock call that
waits (flock LOCK_EX or LOCK_SH, fcntl F_SETLKW write or read lock,
F_OFD_SETLKW, lockf); check that the lock's status names it as holder; enter
the critical section; release by the matching method (unlink; for a
descriptor's lock also its unlock call, and for record locks the close).

Exclusivity is proved outside the mount, in a directory on the ordinary
filesystem: entering the critical section of a name links an "inside" marker
(pid, start time, fence) with link(2), which fails with EEXIST when someone
is inside. A marker whose owner is dead is stale (a client killed inside) and
is moved away by the next entrant; a marker whose owner lives is an overlap.
The entrant decides, not the driver: the daemon releases a killed holder's
lock as soon as the process exits, before the driver has even reaped it, so
the next holder can find the marker first. A record per name keeps the last
fence seen inside; a new fence must be greater.

Daemon restarts, as clients see them: a call on the mount fails with
ENOTCONN/ECONNABORTED, or (while the new daemon replaces the dead mount) meets
the bare mount point. The driver keeps a generation counter in a shared file,
odd during a restart, and holds flock(LOCK_EX) on that file for the whole
restart. A call during which the generation changed has an unknown outcome:
the client awaits the new daemon (flock LOCK_SH on the file, an event) and
then reads the lock's status: lockfs.pid == its pid means it holds the lock
(after an unlink or LOCK_UN, that it did not happen). A holder that was
inside across a restart checks, before leaving, that its lock came back
with its pid and fence (R8.2); a flock descriptor from before a restart is
dead, so such a lock is released by unlink through the new mount.

The driver, every 0.2-1 s, SIGKILLs a client that holds a lock (or any
client, when none does) and starts a replacement, or, every 5-10 s, crashes
the daemon (SIGKILL) and restarts it. It fails the run on: an overlap, a
fence regression, a lock that outlives its killed holder by more than a grace
period or that stays held after all clients are killed, a status that does
not name the process that just took the lock, a client error, a daemon exit
it did not cause, a daemon that does not answer or does not exit after
SIGKILL (its FUSE connection is then aborted so that the run can go on), and
no acquisition at all for 10 s while the daemon serves. It asserts no rate:
the acquisitions per second it prints are a figure, not a test.

Environment: LOCKFS_BIN, LOCKFS_WRAPPER (see harness.py).
"""
import argparse
import ctypes
import errno
import fcntl
import json
import mmap
import os
import random
import select
import struct
import subprocess
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SLOW = 4 if harness.WRAPPER else 1      # under valgrind everything is slower
METHODS = ("excl", "create", "flock", "flock_sh", "fcntl", "fcntl_rd", "ofd", "lockf")
# Taking a lock through a descriptor that stays open: open flags, and the
# call that waits for the grant.
FMT_FLOCK = "hhqqi"                     # struct flock on x86-64 Linux
DESCRIPTOR_METHODS = {
    "flock": (os.O_RDONLY, lambda fd: fcntl.flock(fd, fcntl.LOCK_EX)),
    "flock_sh": (os.O_RDONLY, lambda fd: fcntl.flock(fd, fcntl.LOCK_SH)),
    "fcntl": (os.O_RDWR, lambda fd: fcntl.fcntl(
        fd, fcntl.F_SETLKW, struct.pack(FMT_FLOCK, fcntl.F_WRLCK, 0, 0, 0, 0))),
    "fcntl_rd": (os.O_RDWR, lambda fd: fcntl.fcntl(
        fd, fcntl.F_SETLKW, struct.pack(FMT_FLOCK, fcntl.F_RDLCK, 0, 0, 0, 0))),
    "ofd": (os.O_RDWR, lambda fd: fcntl.fcntl(
        fd, fcntl.F_OFD_SETLKW, struct.pack(FMT_FLOCK, fcntl.F_WRLCK, 0, 0, 0, 0))),
    "lockf": (os.O_RDWR, lambda fd: fcntl.lockf(fd, fcntl.LOCK_EX)),
}
# A process's POSIX lock goes when it closes any descriptor of the file
# (the kernel's rule, SPEC R7.4): their holders read their status through
# the lock's own descriptor, opened for writing (a read-only open's status
# is the one of its open, before the lock was taken).
RECORD_METHODS = ("fcntl", "fcntl_rd", "lockf")
# Shared requests (SPEC R7.3): their critical sections may overlap each
# other's, never an exclusive one's. A share is released by its unlock or
# close, or after a daemon restart (which restores it, its descriptor
# dead) by unlink, which ends the caller's hold only. A share is answered
# only once it is journaled, so every live sharer's share comes back.
SHARED_METHODS = ("flock_sh", "fcntl_rd")
# The matching unlock of each (closing the descriptor also ends each of them).
UNLOCKS = {
    "flock": lambda fd: fcntl.flock(fd, fcntl.LOCK_UN),
    "flock_sh": lambda fd: fcntl.flock(fd, fcntl.LOCK_UN),
    "fcntl": lambda fd: fcntl.fcntl(fd, fcntl.F_SETLK,
                                    struct.pack(FMT_FLOCK, fcntl.F_UNLCK, 0, 0, 0, 0)),
    "fcntl_rd": lambda fd: fcntl.fcntl(fd, fcntl.F_SETLK,
                                       struct.pack(FMT_FLOCK, fcntl.F_UNLCK, 0, 0, 0, 0)),
    "ofd": lambda fd: fcntl.fcntl(fd, fcntl.F_OFD_SETLK,
                                  struct.pack(FMT_FLOCK, fcntl.F_UNLCK, 0, 0, 0, 0)),
    "lockf": lambda fd: fcntl.lockf(fd, fcntl.LOCK_UN),
}
CONN_ERRS = (errno.ENOTCONN, errno.ECONNABORTED)
STUCK_S = 10.0 * SLOW                   # no acquisition for this long: stuck
RELEASE_GRACE_S = 10.0 * SLOW           # a killed holder's lock must go by then
FINAL_GONE_S = harness.EVENT_TIMEOUT    # at the end, every name must go by then
DAEMON_CALL_S = 10.0 * SLOW             # the driver's own calls on the mount
CLIENT_EXIT_S = 10.0 * SLOW             # SIGKILLed clients are reaped by then
DAEMON_EXIT_S = 10.0 * SLOW             # a SIGKILLed daemon is reaped by then
OWNER_DEATH_S = 5.0 * SLOW              # an inside marker's owner that dies this
                                        # soon was dying already (killed holder);
                                        # waited for only when an overlap is suspected
RESTART_EVERY_S = (5.0, 10.0)
KILL_EVERY_S = (0.2, 1.0)
BACKOFF_S = (0.001, 0.005)              # O_EXCL / write retry: no event exists
HOLD_S = (0.0, 0.005)                   # time inside the critical section
FAILURE_KINDS = ("overlap", "fence", "lost", "holder", "error")
PRINT_FAILURES = 20                     # per kind; the rest are only counted


# -- shared by driver and clients ----------------------------------------------

class Gate:
    """Daemon restarts, as clients see them. A file outside the mount holds
    a generation counter (mapped shared), odd while the driver crashes and
    restarts the daemon; the driver holds flock(LOCK_EX) on the file for
    the whole restart, so a client awaits the new daemon with LOCK_SH."""

    SIZE = 8

    def __init__(self, path, create=False):
        if create:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            os.write(fd, bytes(self.SIZE))
            self.map = mmap.mmap(fd, self.SIZE)
        else:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            self.map = mmap.mmap(fd, self.SIZE, prot=mmap.PROT_READ)
        self.fd = fd

    def generation(self):
        return struct.unpack_from("=Q", self.map)[0]

    def await_up(self):
        """Return once no restart is in progress."""
        fcntl.flock(self.fd, fcntl.LOCK_SH)
        fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close_for_restart(self):
        """Driver: a restart begins (clients' calls may fail from now on)."""
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        self._bump()

    def reopen(self):
        """Driver: the new daemon serves; release the waiting clients."""
        self._bump()
        fcntl.flock(self.fd, fcntl.LOCK_UN)

    def _bump(self):
        struct.pack_into("=Q", self.map, 0, self.generation() + 1)


def proc_start_time(pid):
    """The process's start time (clock ticks after boot), None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])     # field 22, starttime


def safe_close(fd):
    """Close fd, ignoring errors (a descriptor of a dead mount fails its
    flush, but it is closed all the same)."""
    try:
        os.close(fd)
    except OSError:
        pass


# -- client ----------------------------------------------------------------------

class Restarted(Exception):
    """A daemon crash or restart overlapped a call on the mount, so its
    outcome is unknown. When raised, the mount serves again."""


class Client:
    """One chaos client: takes, checks and releases locks in a loop and
    reports each acquisition and each violation on the report pipe."""

    def __init__(self, cfg):
        self.mnt = cfg["mnt"]
        self.work = cfg["work"]
        self.names = cfg["names"]
        self.report_fd = cfg["report_fd"]
        self.gate = Gate(cfg["gate"])
        self.rng = random.Random(cfg["seed"])
        self.pid = os.getpid()
        self.ident = f"{self.pid} {proc_start_time(self.pid)}"
        self.last_fence = 0         # fences this process saw strictly increase
        self.call_gen = 0           # generation at the start of the last on_mount
        self.steps = []             # this round's steps, for failure reports

    # reporting

    def report(self, kind, text=""):
        """One line on the shared pipe (atomic: under PIPE_BUF); a failure
        carries this round's steps."""
        if kind in FAILURE_KINDS:
            text = f"{text} [steps: {', '.join(self.steps)}]"
        line = f"{kind} {self.pid} {' | '.join(str(text).splitlines())}"
        os.write(self.report_fd, (line[:select.PIPE_BUF - 1] + "\n").encode())

    # calls on the mount, across restarts

    def on_mount(self, fn, *args, strict=False):
        """Run one call on the mount. A connection error, or any error while
        the daemon was being restarted, raises Restarted once the mount
        serves again; strict raises it also for a success that a restart
        overlapped. Other errors propagate."""
        while True:
            gen = self.gate.generation()
            if gen % 2 == 0:
                break
            self.gate.await_up()
        self.call_gen = gen
        try:
            result = fn(*args)
        except OSError as e:
            if e.errno in CONN_ERRS or self.gate.generation() != gen:
                self.await_mount(gen)
                raise Restarted() from e
            raise
        if strict and self.gate.generation() != gen:
            self.await_mount(gen)
            raise Restarted()
        return result

    def step(self, what):
        """Note a step of this round, with the generation it ended in."""
        self.steps.append(f"{what} @{self.gate.generation()}")

    def await_mount(self, gen):
        self.gate.await_up()
        if self.gate.generation() == gen:
            # The daemon died without the driver: the driver fails the run;
            # meanwhile do not spin on the dead mount.
            time.sleep(0.05)

    def read_status(self, path):
        """The lock's status document, None when the name is free. An open
        that met a release between the kernel's lookup and the open reads
        as empty (README, flock section): free as well."""
        while True:
            try:
                data = self.on_mount(read_file, path)
            except FileNotFoundError:
                return None
            except Restarted:
                continue
            return json.loads(data) if data else None

    def holds(self, path):
        """Whether the status names us: as the holder, or as one of the
        holders of a shared lock."""
        st = self.read_status(path)
        if st is None:
            return False
        lk = st["lockfs"]
        return lk["pid"] == self.pid or self.pid in [h["pid"] for h in lk.get("holders", [])]

    def backoff(self):
        time.sleep(self.rng.uniform(*BACKOFF_S))

    # taking a lock: each returns a flock descriptor or None

    def take_excl(self, path):
        """O_CREAT|O_EXCL until it succeeds (EEXIST: back off, retry)."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        tries = 0
        while True:
            try:
                fd = self.on_mount(os.open, path, flags, 0o644)
            except FileExistsError:
                tries += 1
                self.check_not_mine(path, tries)
                self.backoff()
                continue
            safe_close(fd)
            return None

    def take_create(self, path):
        """open(O_CREAT) and write our pid; EEXIST at the write means a
        contender handle: close, back off, retry."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC
        tries = 0
        while True:
            fd = self.on_mount(os.open, path, flags, 0o644)
            try:
                self.on_mount(os.write, fd, b"%d\n" % self.pid)
                return None
            except FileExistsError:
                pass
            finally:
                safe_close(fd)
            tries += 1
            self.check_not_mine(path, tries)
            self.backoff()

    def take_descriptor(self, path, method):
        """open(O_CREAT) and lock by method (flock, fcntl, OFD, lockf),
        which waits for a grant. Returns the descriptor, valid while the
        generation is self.call_gen."""
        flags, lock = DESCRIPTOR_METHODS[method]

        def open_and_lock():
            fd = os.open(path, flags | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                lock(fd)
            except BaseException:
                safe_close(fd)
                raise
            return fd
        return self.on_mount(open_and_lock)

    def check_not_mine(self, path, tries):
        """Every 200 refusals, make sure we are not refused by our own lock
        (one we released that came back)."""
        if tries % 200 == 0 and self.holds(path):
            self.report("lost", f"{path}: EEXIST from my own lock, one I had released")
            self.unlink_release(path)

    def acquire(self, path, method):
        """Take path by method; returns (flock descriptor or None, the
        generation it belongs to). After a restart, the status decides."""
        while True:
            try:
                if method in DESCRIPTOR_METHODS:
                    fd = self.take_descriptor(path, method)
                else:
                    fd = (self.take_excl if method == "excl" else self.take_create)(path)
                self.step(f"took by {method}")
                return fd, self.call_gen
            except Restarted:
                if self.holds(path):
                    self.step(f"{method} cut by a restart, yet mine")
                    return None, None
                self.step(f"{method} cut by a restart, not mine")

    # releasing

    def release(self, path, fd, fd_gen, method):
        """Release by the method's own means: a descriptor's lock by its
        unlock call (LOCK_UN, F_UNLCK; synchronous), a record lock also by
        closing its descriptor, or by unlink while it is open; otherwise
        unlink. A descriptor from before a restart is dead: unlink through
        the new mount."""
        way = self.rng.random()
        if method in SHARED_METHODS and fd is not None and self.gate.generation() == fd_gen:
            way *= 0.5 if method not in RECORD_METHODS else 0.7  # by its own descriptor
        if fd is not None and way < 0.5 and self.gate.generation() == fd_gen:
            try:
                self.on_mount(UNLOCKS[method], fd, strict=True)
                safe_close(fd)
                return
            except Restarted:
                self.step("unlock cut by a restart")
                if not self.holds(path):        # it unlocked before the crash
                    safe_close(fd)
                    return
        elif (fd is not None and way < 0.7 and method in RECORD_METHODS
              and self.gate.generation() == fd_gen):
            # The close ends a POSIX lock at once (its FLUSH). Not used for
            # flock and OFD locks: they end at RELEASE, which the kernel
            # sends after close() returned, so for a moment the closing
            # process still holds the name (README).
            try:
                self.on_mount(os.close, fd, strict=True)   # closed even when it fails
                return
            except Restarted:
                self.step("close cut by a restart")
                if not self.holds(path):        # it went before the crash
                    return
            self.unlink_release(path)
            return
        self.unlink_release(path)
        if fd is not None:
            safe_close(fd)

    def unlink_release(self, path):
        while True:
            try:
                self.on_mount(os.unlink, path)
                return
            except FileNotFoundError:
                self.report("lost", f"{path}: unlink ENOENT while I held it")
                return
            except PermissionError:
                self.report("lost", f"{path}: unlink EPERM while I held it")
                return
            except Restarted:
                self.step("unlink cut by a restart")
                if not self.holds(path):    # unlinked before the crash
                    return

    # the critical section, proved outside the mount

    def holder_status(self, path, method, fd, fd_gen):
        """The fence of the lock we just took (in generation fd_gen) and the
        generation in which the status said so; None (reported) if the
        status does not name us."""
        if method in RECORD_METHODS and fd is not None:
            try:
                data = self.on_mount(os.pread, fd, 1 << 20, 0)
                st = json.loads(data) if data else None
            except Restarted:
                st = self.read_status(path)
        else:
            st = self.read_status(path)
        if st is None:
            self.report("lost", f"{path}: gone right after I took it by {method}")
            return None
        lk = st["lockfs"]
        holders = [h["pid"] for h in lk.get("holders", [])]
        named = lk["pid"] == self.pid or (method in SHARED_METHODS and self.pid in holders)
        if not named:
            self.report("holder", f"{path}: took it by {method} but its status names "
                        f"pid {lk['pid']} (how {lk.get('how')}, fence {lk.get('fence')})")
            return None
        self.step(f"status: mine, fence {lk['fence']}")
        return lk["fence"], self.call_gen

    def still_held(self, path, fence, held_gen):
        """After a restart since held_gen, the lock must be back with its
        holder and fence (R8.2); reading is idempotent, so no outcome is
        unknown here. False (reported) if it is not."""
        if self.gate.generation() == held_gen:
            return True
        st = self.read_status(path)
        self.step("checked after a restart")
        lk = st["lockfs"] if st else {}
        if lk.get("pid") == self.pid and lk.get("fence") == fence:
            self.report("restored")
            return True
        self.report("lost", f"{path}: held (fence {fence}) across a daemon restart, "
                    f"then {'gone' if st is None else 'pid %s fence %s' % (lk.get('pid'), lk.get('fence'))}")
        return False

    def marker(self, name):
        return os.path.join(self.work, name + ".inside")

    def shared_markers(self, name):
        """The markers of the shared sections now in name: (path, owner)."""
        prefix = name + ".inside.sh."
        found = []
        for f in os.listdir(self.work):
            if f.startswith(prefix):
                owner = read_text(os.path.join(self.work, f))
                if owner is not None:
                    found.append((os.path.join(self.work, f), owner))
        return found

    def sharer_conflicts(self, name, fence):
        """After linking the exclusive marker: False (reported) when a live
        sharer is inside (a restart gives every live sharer its share back,
        so none may be); dead ones' markers are removed."""
        ok = True
        for path, owner in self.shared_markers(name):
            if not owner_alive(owner):
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
            else:
                self.report("overlap", f"{name}: entering with fence {fence} while sharer "
                            f"pid {owner.split()[0]} (fence {owner.split()[2]}) is inside")
                ok = False
        return ok

    def enter_shared(self, name, fence, gen):
        """Create our shared marker (pid, start time, fence, generation),
        then check that no live process is inside exclusively: an entrant
        of each kind writes its marker before it reads the other kind's,
        so of two that overlap at least one sees the other."""
        mine = self.marker(name) + f".sh.{self.pid}"
        tmp = self.marker(name) + f".shtmp.{self.pid}"
        with open(tmp, "w") as f:
            f.write(f"{self.ident} {fence} {gen}\n")
        os.rename(tmp, mine)    # whole, for the exclusive entrants that read it
        owner = read_text(self.marker(name))
        if owner is not None and owner_alive(owner):
            self.report("overlap", f"{name}: sharing with fence {fence} while pid "
                        f"{owner.split()[0]} (fence {owner.split()[2]}) is inside")
            os.unlink(mine)
            return False
        return True

    def leave_shared(self, name):
        os.unlink(self.marker(name) + f".sh.{self.pid}")

    def enter(self, name, fence):
        """Link our inside marker; False (reported) if a live process is
        inside. A dead owner's marker is moved away first."""
        marker = self.marker(name)
        mine = f"{marker}.{self.pid}"
        with open(mine, "w") as f:
            f.write(f"{self.ident} {fence}\n")
        try:
            while True:
                try:
                    os.link(mine, marker)
                except FileExistsError:
                    pass
                else:
                    if self.sharer_conflicts(name, fence):
                        return True
                    os.unlink(marker)
                    return False
                owner = read_text(marker)
                if owner is None:
                    continue
                if owner_alive(owner):
                    self.report("overlap", f"{name}: entering with fence {fence} while "
                                f"pid {owner.split()[0]} (fence {owner.split()[2]}) is inside")
                    return False
                self.remove_stale(name, owner)
        finally:
            os.unlink(mine)

    def remove_stale(self, name, owner):
        """Move a dead owner's marker away; if what moved is not that
        marker, a live process entered meanwhile."""
        marker = self.marker(name)
        stale = f"{marker}.stale.{self.pid}"
        try:
            os.rename(marker, stale)
        except FileNotFoundError:
            return
        moved = read_text(stale)
        os.unlink(stale)
        if moved != owner and owner_alive(moved):
            self.report("overlap", f"{name}: pid {moved.split()[0]} entered while I "
                        f"cleared a dead holder's marker")

    def leave(self, name):
        """Remove our marker; it must still be ours."""
        marker = self.marker(name)
        now = read_text(marker)
        if now is None or not now.startswith(self.ident + " "):
            self.report("overlap", f"{name}: my inside marker was replaced by {now!r}")
            return
        os.unlink(marker)

    def check_fence(self, name, fence):
        """The fence must exceed the last one recorded inside this name and
        the last one this process saw; record it."""
        if fence <= self.last_fence:
            self.report("fence", f"{name}: fence {fence} after my earlier {self.last_fence}")
        self.last_fence = max(self.last_fence, fence)
        record = os.path.join(self.work, name + ".fence")
        last = int(read_text(record) or 0)
        if fence <= last:
            self.report("fence", f"{name}: fence {fence} not greater than the last "
                        f"one inside, {last}")
            return
        tmp = f"{record}.{self.pid}"
        with open(tmp, "w") as f:
            f.write(f"{fence}\n")
        os.replace(tmp, record)

    def critical_section(self, name, path, fence, held_gen):
        """Returns (completed without overlap, lock still ours)."""
        if not self.enter(name, fence):
            return False, True
        self.check_fence(name, fence)
        time.sleep(self.rng.uniform(*HOLD_S))
        ours = self.still_held(path, fence, held_gen)
        self.leave(name)
        return True, ours

    def shared_section(self, name, path, fence, held_gen):
        """A shared critical section; returns as critical_section. Its
        fence must exceed the last exclusive one inside (sharers see one
        fence, or a newer one when the recorded holder went); after a
        restart the share is ours only if the status still names us."""
        if not self.enter_shared(name, fence, held_gen):
            return False, True
        last = int(read_text(os.path.join(self.work, name + ".fence")) or 0)
        if fence <= last and self.gate.generation() == held_gen:
            self.report("fence", f"{name}: shared with fence {fence}, the last exclusive "
                        f"one inside was {last}")
        time.sleep(self.rng.uniform(*HOLD_S))
        ours = self.gate.generation() == held_gen or self.holds(path)
        if not ours:
            self.report("lost", f"{path}: shared (fence {fence}) across a daemon restart, "
                        "then not named by its status")
        self.leave_shared(name)
        return True, ours

    # the loop

    def run_once(self):
        name = self.rng.choice(self.names)
        path = os.path.join(self.mnt, name)
        self.steps = []
        method = self.rng.choice(METHODS)
        fd, fd_gen = self.acquire(path, method)
        held = self.holder_status(path, method, fd, fd_gen)
        section = self.shared_section if method in SHARED_METHODS else self.critical_section
        completed, ours = section(name, path, *held) if held else (False, False)
        if completed:
            self.report("acq", method)
        if ours:
            self.release(path, fd, fd_gen, method)
        elif fd is not None:
            safe_close(fd)

    def run(self):
        try:
            while True:
                self.run_once()
        except Exception:
            self.report("error", traceback.format_exc())
            raise


def read_file(path):
    """Whole content of path (one open, read to EOF)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while True:
            b = os.read(fd, 65536)
            if not b:
                return b"".join(chunks)
            chunks.append(b)
    finally:
        os.close(fd)


def read_text(path):
    """Text of a file outside the mount, None if it does not exist."""
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


def owner_alive(owner):
    """Whether the process named by a marker ("pid starttime fence") lives.
    One that exits within OWNER_DEATH_S was dying already: the daemon can
    release a killed holder's lock before /proc shows it dead."""
    pid, start = int(owner.split()[0]), owner.split()[1]
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    try:
        if str(proc_start_time(pid)) != start:
            return False        # the pid now names another process
        readable, _, _ = select.select([pidfd], [], [], OWNER_DEATH_S)
        return not readable
    finally:
        os.close(pidfd)


# -- driver ------------------------------------------------------------------------

class Abort(Exception):
    """A failure that ends the run at once (the daemon died, stuck, ...)."""


IN_DELETE_SELF = 0x400
IN_IGNORED = 0x8000
_libc = ctypes.CDLL(None, use_errno=True)


def await_gone(path, timeout):
    """Await the removal of path with inotify IN_DELETE_SELF (removals the
    daemon makes reach the file's own watch); True once it is gone."""
    ifd = _libc.inotify_init1(os.O_CLOEXEC)
    if ifd < 0:
        raise OSError(ctypes.get_errno(), "inotify_init1")
    try:
        if _libc.inotify_add_watch(ifd, os.fsencode(path), IN_DELETE_SELF) < 0:
            e = ctypes.get_errno()
            if e == errno.ENOENT:
                return True
            raise OSError(e, os.strerror(e), path)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if select.select([ifd], [], [], left)[0]:
                data = os.read(ifd, 4096)
                off = 0
                while off < len(data):     # struct inotify_event
                    _wd, mask, _cookie, size = struct.unpack_from("iIII", data, off)
                    if mask & (IN_DELETE_SELF | IN_IGNORED):
                        return True
                    off += 16 + size
    finally:
        os.close(ifd)


def call_with_timeout(fn, timeout, what):
    """Run fn on a thread; a daemon that does not answer must not hang the
    driver. Raises Abort on timeout, or what fn raised."""
    out = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as e:   # handed to the caller
            out["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise Abort(f"the daemon did not answer {what} within {timeout:.0f} s")
    if "error" in out:
        raise out["error"]
    return out["value"]


class Driver:
    """Runs the clients, kills holders, crashes and restarts the daemon,
    and collects reports and failures."""

    def __init__(self, args, m):
        self.args = args
        self.m = m
        self.rng = random.Random(args.seed)
        self.names = [f"chaos-{i}.lock" for i in range(args.names)]
        self.work = os.path.join(m.dir, "chaos")       # outside the mount
        os.mkdir(self.work)
        self.gate_path = os.path.join(self.work, "gate")
        self.gate = Gate(self.gate_path, create=True)
        self.report_r, self.report_w = os.pipe()
        self.clients = {}           # pid -> Popen
        self.killed = {}            # pid -> monotonic time of our SIGKILL
        self.counts = dict.fromkeys(METHODS, 0)
        self.failures = {k: [] for k in FAILURE_KINDS}
        self.seen_lost = set()      # (path, pid, fence) already reported
        self.client_kills = 0
        self.restarts = 0
        self.stuck_kills = 0           # killed daemons that needed their successor
        self.restored = 0           # holders inside across a restart, lock back
        self.mu = threading.Lock()  # counts, failures, last_acq, restored
        self.last_acq = time.monotonic()
        self.up_since = time.monotonic()
        self.reader = threading.Thread(target=self.read_reports, daemon=True)
        self.reader.start()

    # reports

    def read_reports(self):
        """Collect the clients' report lines until the pipe closes."""
        with os.fdopen(self.report_r, "r") as f:
            for line in f:
                kind, pid, text = (line.rstrip("\n").split(" ", 2) + [""])[:3]
                with self.mu:
                    if kind == "acq":
                        self.counts[text] += 1
                        self.last_acq = time.monotonic()
                        continue
                    if kind == "restored":
                        self.restored += 1
                        continue

                self.fail(kind if kind in FAILURE_KINDS else "error", f"pid {pid}: {text}")

    def fail(self, kind, text):
        """Record a failure; print the first few of each kind at once."""
        with self.mu:
            self.failures[kind].append(text)
            n = len(self.failures[kind])
        if n <= PRINT_FAILURES:
            print(f"chaos: {kind}: {text}", file=sys.stderr, flush=True)
        elif n == PRINT_FAILURES + 1:
            print(f"chaos: {kind}: more; only counting them now", file=sys.stderr, flush=True)

    def total(self):
        with self.mu:
            return sum(self.counts.values())

    # clients

    def spawn_client(self):
        cfg = {"mnt": self.m.mnt, "work": self.work, "names": self.names,
               "gate": self.gate_path, "report_fd": self.report_w,
               "seed": self.rng.getrandbits(64)}
        p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--client",
                              json.dumps(cfg)],
                             pass_fds=[self.report_w], stdin=subprocess.DEVNULL, cwd="/")
        self.clients[p.pid] = p

    def kill_client(self):
        """SIGKILL a client that holds a lock (any client if none does) and
        start its replacement."""
        holders = [pid for _, pid, _ in self.locks() if pid in self.clients]
        pid = self.rng.choice(holders or list(self.clients))
        p = self.clients.pop(pid)
        p.kill()
        self.killed[pid] = time.monotonic()
        try:
            p.wait(CLIENT_EXIT_S)
        except subprocess.TimeoutExpired:
            self.clients[pid] = p           # stop_clients deals with it
            raise Abort(f"SIGKILLed client {pid} still waits for the daemon after "
                        f"{CLIENT_EXIT_S:.0f} s")
        self.client_kills += 1
        self.spawn_client()

    def check_clients(self):
        """A client that exited by itself failed (it reported why)."""
        for pid, p in list(self.clients.items()):
            rc = p.poll()
            if rc is not None:
                del self.clients[pid]
                self.fail("error", f"client {pid} exited with status {rc}")
                self.spawn_client()

    def stop_clients(self):
        """SIGKILL every client, reap them, and drain their reports. A
        client in a request the daemon has read cannot die before it is
        answered: if the daemon hangs, crash it to abort the requests."""
        for p in self.clients.values():
            p.kill()
        deadline = time.monotonic() + CLIENT_EXIT_S
        hung = []
        for p in self.clients.values():
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                hung.append(p)
        if hung and self.m.proc is not None:
            self.fail("error", f"{len(hung)} SIGKILLed clients still wait for the daemon "
                      f"after {CLIENT_EXIT_S:.0f} s; crashing it")
            self.crash_daemon()
        for p in hung:
            p.wait()
        self.clients.clear()
        os.close(self.report_w)
        self.reader.join(timeout=10)

    # the daemon

    def locks(self):
        """(path, holder pid, fence) of every held lock, from locks.json."""
        def read():
            with open(self.m.path(".lockfs", "locks.json")) as f:
                return json.load(f)
        doc = call_with_timeout(read, DAEMON_CALL_S, "a read of .lockfs/locks.json")
        return [(e["lockfs"]["path"], e["lockfs"]["pid"], e["lockfs"]["fence"]) for e in doc]

    def restart_daemon(self):
        """Crash the daemon (SIGKILL) and start a new one on the same mount
        and state; clients wait at the gate meanwhile."""
        self.gate.close_for_restart()
        try:
            self.crash_daemon()
            try:
                self.m.start()
            except RuntimeError as e:
                raise Abort(f"the daemon did not restart: {e}")
        finally:
            self.gate.reopen()
        self.restarts += 1
        self.up_since = time.monotonic()

    def crash_daemon(self):
        """SIGKILL the daemon. A daemon thread in the kernel for a
        notification can wait, unkillable, for a directory lock that a
        client holds while it waits for the daemon's answer; the daemon then
        cannot finish dying until its successor aborts the connection
        (Mount.start() checks that it does). Those are counted."""
        if not self.m.crash():
            self.stuck_kills += 1

    def check_daemon(self):
        rc = self.m.proc.poll()
        if rc is not None:
            raise Abort(f"the daemon exited by itself with status {rc}; log:\n"
                        + "\n".join(self.m.log_lines[-30:]))

    # the checks made on every round

    def check_locks(self):
        """Every lock must be held by a live client, or by one killed less
        than RELEASE_GRACE_S ago."""
        now = time.monotonic()
        for path, pid, fence in self.locks():
            if pid in self.clients:
                continue
            killed = self.killed.get(pid)
            if killed is not None and now - killed < RELEASE_GRACE_S:
                continue
            if (path, pid, fence) in self.seen_lost:
                continue
            self.seen_lost.add((path, pid, fence))
            why = (f"killed {now - killed:.1f} s ago" if killed is not None
                   else "not a live client")
            self.fail("lost", f"{path} (fence {fence}) still held by pid {pid}, {why}")

    def check_progress(self):
        with self.mu:
            quiet = time.monotonic() - max(self.last_acq, self.up_since)
        if quiet > STUCK_S:
            raise Abort(f"stuck: no acquisition for {quiet:.1f} s; locks: {self.locks()}")

    def check(self):
        self.check_daemon()
        self.check_clients()
        self.check_locks()
        self.check_progress()

    # the run

    def chaos(self, duration):
        """The chaos phase: one action every KILL_EVERY_S until duration."""
        start = time.monotonic()
        deadline = start + duration
        next_restart = (start + self.rng.uniform(*RESTART_EVERY_S)
                        if self.args.daemon_kills else float("inf"))
        next_progress = start + 60
        while True:
            self.check()
            now = time.monotonic()
            if now >= deadline:
                return
            if now >= next_progress:
                next_progress += 60
                self.progress(now - start)
            time.sleep(min(self.rng.uniform(*KILL_EVERY_S), deadline - now))  # pacing
            if time.monotonic() >= deadline:
                continue
            if time.monotonic() >= next_restart:
                self.restart_daemon()
                next_restart = time.monotonic() + self.rng.uniform(*RESTART_EVERY_S)
            else:
                self.kill_client()

    def final_check(self):
        """With every client dead, each name must go within FINAL_GONE_S and
        then be free for an exclusive create."""
        for name in self.names:
            path = self.m.path(name)
            if not await_gone(path, FINAL_GONE_S):
                self.fail("lost", f"{name} still held {FINAL_GONE_S:.0f} s after every "
                          f"client died: {self.locks()}")
                continue

            def create_and_remove():
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                os.close(fd)
                os.unlink(path)
            try:
                call_with_timeout(create_and_remove, DAEMON_CALL_S, f"a create of {name}")
            except OSError as e:
                self.fail("lost", f"{name} gone, but an exclusive create failed: {e}")

    def run(self, duration):
        """The whole run; returns the elapsed chaos time. Failures are
        collected in self.failures."""
        for _ in range(self.args.clients):
            self.spawn_client()
        start = time.monotonic()
        try:
            self.chaos(duration)
        except Abort as e:
            self.fail("error", str(e))
        finally:
            elapsed = time.monotonic() - start
            self.stop_clients()
        if self.m.proc is not None and self.m.proc.poll() is None:
            try:
                self.final_check()
            except Abort as e:
                self.fail("error", str(e))
        return elapsed

    # output

    def progress(self, elapsed):
        print(f"chaos: {elapsed:.0f} s, acquisitions {self.total()}, client kills "
              f"{self.client_kills}, daemon restarts {self.restarts}", flush=True)

    def summary(self, elapsed):
        with self.mu:
            c = dict(self.counts)
            f = {k: len(v) for k, v in self.failures.items()}
        total = sum(c.values())
        return (f"chaos: {elapsed:.1f} s, acquisitions {total} "
                f"({total / max(elapsed, 1e-9):.0f}/s; "
                + ", ".join(f"{m} {c[m]}" for m in METHODS)
                + f"), client kills {self.client_kills}, "
                f"daemon restarts {self.restarts} ({self.restored} locks held across "
                f"one; {self.stuck_kills} killed daemons ended only when their successor "
                f"aborted the connection), overlaps {f['overlap']}, fence "
                f"regressions {f['fence']}, lost locks {f['lost']}, holder mismatches "
                f"{f['holder']}, errors {f['error']}")


def driver_main(args):
    m = harness.Mount()
    m.start()
    driver = None
    try:
        driver = Driver(args, m)
        elapsed = driver.run(args.duration)
    finally:
        rc = m.stop()
    if rc not in (0, None):
        driver.fail("error", f"the daemon exited with status {rc} at unmount; log:\n"
                    + m.log())
    # progress is checked during the run (STUCK_S); how many per second is
    # the summary's figure, not a test
    if driver.total() == 0:
        driver.fail("error", f"no acquisition in {elapsed:.0f} s")
    print(driver.summary(elapsed), flush=True)
    failed = [f"{k}: {len(v)}" for k, v in driver.failures.items() if v]
    if failed:
        print(f"chaos: FAILED ({', '.join(failed)}; seed {args.seed})", file=sys.stderr)
        return 1
    return 0


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=60.0, metavar="SECONDS",
                    help="seconds of chaos (default 60)")
    ap.add_argument("--clients", type=int, default=16, help="client processes (default 16)")
    ap.add_argument("--names", type=int, default=4, help="lock names (default 4)")
    ap.add_argument("--seed", type=int, default=None,
                    help="seed of the driver's choices (default: random, printed)")
    ap.add_argument("--no-daemon-kills", dest="daemon_kills", action="store_false",
                    help="kill only clients, never the daemon")
    ap.add_argument("--client", metavar="CONFIG", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().getrandbits(32)
    return args


def main():
    args = parse_args()
    if args.client:
        Client(json.loads(args.client)).run()
        return 0
    print(f"chaos: seed {args.seed}, {args.clients} clients, {args.names} names, "
          f"{args.duration:.0f} s, daemon kills {'on' if args.daemon_kills else 'off'}",
          flush=True)
    return driver_main(args)


if __name__ == "__main__":
    sys.exit(main())
