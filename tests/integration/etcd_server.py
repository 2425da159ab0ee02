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

Secured etcd: make_pki(dir) writes a CA, a server certificate for
127.0.0.1, a client certificate and a second, unrelated CA with openssl;
EtcdServer(pki=...) then serves https:// only and requires a client
certificate (--client-cert-auth). enable_auth(prefix, user, password) adds
a root user, a role with readwrite on prefix only and user, and turns
authentication on; etcdctl(...) runs etcdctl against the member (as root
once auth is on).

Environment: ETCD_BIN (default "etcd" on PATH), ETCDCTL_BIN (default
"etcdctl"), OPENSSL_BIN (default "openssl").
"""
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

ETCD_BIN = os.environ.get("ETCD_BIN", "etcd")
ETCDCTL_BIN = os.environ.get("ETCDCTL_BIN", "etcdctl")
OPENSSL_BIN = os.environ.get("OPENSSL_BIN", "openssl")
ROOT_PASSWORD = "root-pw-for-tests"
READY_TIMEOUT = 30
STOP_TIMEOUT = 5


def free_port():
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _openssl(*args, cwd):
    r = subprocess.run([OPENSSL_BIN, *args], cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode:
        raise RuntimeError("openssl %s failed:\n%s" % (" ".join(args), r.stdout.decode()))


def _signed(d, name, ca, subj, ext):
    """name.key and name.pem (EC P-256), signed by ca (ca.key/ca.pem), with extensions ext."""
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", name + ".key", "-out", name + ".csr", "-subj", subj, cwd=d)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write(ext)
    _openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
             "-CAcreateserial", "-days", "2", "-sha256", "-extfile", name + ".ext",
             "-out", name + ".pem", cwd=d)


def make_pki(d):
    """Write ca, server, client, other-ca and wrongname (a server
    certificate of the right CA for another host name) into directory d
    (.pem/.key); returns their paths as {"ca", "server", "server_key",
    "client", "client_key", "other_ca", "wrongname", "wrongname_key"}."""
    for ca, cn in (("ca", "lockfs test CA"), ("other-ca", "unrelated CA")):
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", ca + ".key", "-out", ca + ".pem", "-days", "2",
                 "-subj", "/CN=" + cn, "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    # etcd's own gateway connects to the member with the server certificate,
    # so it needs clientAuth as well
    _signed(d, "server", "ca", "/CN=etcd-test",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
            "extendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature\n")
    _signed(d, "wrongname", "ca", "/CN=elsewhere",
            "subjectAltName=DNS:elsewhere.invalid\n"
            "extendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature\n")
    _signed(d, "client", "ca", "/CN=lockfs",
            "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n")
    p = lambda n: os.path.join(d, n)  # noqa: E731
    return {"ca": p("ca.pem"), "server": p("server.pem"), "server_key": p("server.key"),
            "client": p("client.pem"), "client_key": p("client.key"),
            "other_ca": p("other-ca.pem"),
            "wrongname": p("wrongname.pem"), "wrongname_key": p("wrongname.key")}


class EtcdServer:
    """One etcd member on 127.0.0.1; see the module docstring."""

    def __init__(self, pki=None, extra_args=()):
        self.dir = tempfile.mkdtemp(prefix="lockfs-etcd-")
        self.data_dir = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "etcd.log")
        self.port = free_port()
        self.peer_port = free_port()
        self.pki = pki
        self.extra_args = list(extra_args)
        self.endpoint = "%s://127.0.0.1:%d" % ("https" if pki else "http", self.port)
        self.root_auth = False          # etcdctl must log in as root
        self.proc = None

    def command(self):
        client = self.endpoint
        peer = "http://127.0.0.1:%d" % self.peer_port
        tls = []
        if self.pki:
            tls = ["--cert-file", self.pki["server"], "--key-file", self.pki["server_key"],
                   "--trusted-ca-file", self.pki["ca"], "--client-cert-auth"]
        return [ETCD_BIN, "--name", "t", "--data-dir", self.data_dir,
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", "t=" + peer, "--unsafe-no-fsync",
                "--heartbeat-interval", "50", "--election-timeout", "500",
                "--log-level", "error"] + tls + self.extra_args

    def ssl_context(self):
        """What a client of this member needs (None for http)."""
        if not self.pki:
            return None
        ctx = ssl.create_default_context(cafile=self.pki["ca"])
        # a member with the "wrongname" certificate is there to be refused by
        # lockfs; the health check still needs to reach it
        ctx.check_hostname = self.pki["server"] != self.pki.get("wrongname")
        ctx.load_cert_chain(self.pki["client"], self.pki["client_key"])
        return ctx

    def etcdctl(self, *args, stdin=None, check=True):
        """Run etcdctl (API v3) against this member; returns its stdout
        (RuntimeError with its output when it fails and check)."""
        cmd = [ETCDCTL_BIN, "--endpoints", self.endpoint, "--dial-timeout", "5s"]
        if self.pki:
            cmd += ["--cacert", self.pki["ca"], "--cert", self.pki["client"],
                    "--key", self.pki["client_key"]]
        if self.root_auth:
            cmd += ["--user", "root:" + ROOT_PASSWORD]
        env = dict(os.environ, ETCDCTL_API="3")
        r = subprocess.run(cmd + list(args), input=stdin, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        if check and r.returncode:
            raise RuntimeError("etcdctl %s failed:\n%s" % (" ".join(args),
                                                          r.stdout.decode(errors="replace")))
        return r.stdout.decode(errors="replace")

    def enable_auth(self, prefix, user, password):
        """Users root and user (with role user: readwrite on prefix only),
        then authentication on."""
        self.etcdctl("user", "add", "root", "--interactive=false", stdin=ROOT_PASSWORD.encode())
        self.add_user(user, password, prefix)
        self.etcdctl("auth", "enable")
        self.root_auth = True

    def add_user(self, user, password, prefix):
        """User user with a role of its name: readwrite on prefix only."""
        self.etcdctl("role", "add", user)
        self.etcdctl("role", "grant-permission", user, "--prefix=true", "readwrite", prefix)
        self.etcdctl("user", "add", user, "--interactive=false", stdin=password.encode())
        self.etcdctl("user", "grant-role", user, user)

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
            with urllib.request.urlopen(self.endpoint + "/health", timeout=0.5,
                                        context=self.ssl_context()) as r:
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
        Returns once every thread of etcd has stopped; raises if that does
        not happen within READY_TIMEOUT (a deadline, not a bound)."""
        if not self.proc:
            return
        self.proc.send_signal(signal.SIGSTOP)
        deadline = time.monotonic() + READY_TIMEOUT
        while not self._stopped():
            if time.monotonic() >= deadline:
                raise RuntimeError("etcd not stopped %d s after SIGSTOP" % READY_TIMEOUT)
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
