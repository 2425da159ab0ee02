# SPDX-License-Identifier: MIT
"""A throw-away single-member etcd for integration tests (stdlib only).

    with EtcdServer() as etcd:
        run_daemon("-o backend=etcd,etcd=" + etcd.endpoint)
        etcd.kill(); etcd.restart()     # same data, same ports

start() picks free loopback ports and a temporary data directory, runs etcd
and returns once /health reports a leader. stop() ends it with SIGTERM
(SIGKILL after 5 s), kill() with SIGKILL; restart() starts it again on the
same directory and ports; pause()/resume() freeze it (SIGSTOP/SIGCONT), a
cluster that accepts connections but never answers. cleanup() (and leaving
the with block) stops it and removes the directory.

Environment: ETCD_BIN (default "etcd" on PATH).
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

ETCD_BIN = os.environ.get("ETCD_BIN", "etcd")
READY_TIMEOUT = 30
STOP_TIMEOUT = 5


def free_port():
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EtcdServer:
    """One etcd member on 127.0.0.1; see the module docstring."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="lockfs-etcd-")
        self.data_dir = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "etcd.log")
        self.port = free_port()
        self.peer_port = free_port()
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self.proc = None

    def command(self):
        client = self.endpoint
        peer = "http://127.0.0.1:%d" % self.peer_port
        return [ETCD_BIN, "--name", "t", "--data-dir", self.data_dir,
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", "t=" + peer, "--unsafe-no-fsync",
                "--heartbeat-interval", "50", "--election-timeout", "500",
                "--log-level", "error"]

    def start(self):
        """Run etcd and wait until it serves (RuntimeError if it does not)."""
        if self.proc:
            raise RuntimeError("etcd already running")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                raise RuntimeError("etcd exited at start:\n" + self.log())
            if self.healthy():
                return self
            time.sleep(0.02)
        self.kill()
        raise RuntimeError("etcd not healthy after %d s:\n%s" % (READY_TIMEOUT, self.log()))

    def healthy(self):
        """True when etcd answers /health with a leader."""
        try:
            with urllib.request.urlopen(self.endpoint + "/health", timeout=0.5) as r:
                return b'"health":"true"' in r.read()
        except (OSError, urllib.error.URLError):
            return False

    def stop(self):
        """SIGTERM, SIGKILL after 5 s; waits. Returns the exit status (None if not running)."""
        if not self.proc:
            return None
        self.resume()
        self.proc.terminate()
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        status, self.proc = self.proc.returncode, None
        return status

    def kill(self):
        """SIGKILL and wait: a crash."""
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def restart(self):
        """Stop if running, then start on the same data dir and ports."""
        self.stop()
        return self.start()

    def pause(self):
        """SIGSTOP: connections are accepted (by the kernel) but never answered.
        Returns once every thread of etcd has stopped."""
        if not self.proc:
            return
        self.proc.send_signal(signal.SIGSTOP)
        deadline = time.monotonic() + STOP_TIMEOUT
        while not self._stopped() and time.monotonic() < deadline:
            time.sleep(0.001)

    def _stopped(self):
        try:
            with open("/proc/%d/stat" % self.proc.pid) as f:
                return f.read().rsplit(")", 1)[1].split()[0] in ("T", "t")
        except (OSError, IndexError):
            return True

    def resume(self):
        """SIGCONT after pause()."""
        if self.proc:
            self.proc.send_signal(signal.SIGCONT)

    def log(self):
        """etcd's own log so far."""
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def cleanup(self):
        """Stop etcd and remove its directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, *exc):
        self.cleanup()
