"""A real etcd for tests: one member on free loopback ports, data in a temporary directory.

Etcd(tmpdir).start() runs Debian's `etcd` (installed by scripts/install-deps.sh); stop()
ends it with SIGTERM, kill9() crashes it, restart() starts it again on the same ports and
data (what a broker sees when etcd restarts). `url` is the client URL to pass as
metadata.etcd.endpoints. Replicated-pool tests (issue 14) start their etcd through this.
"""
import os
import shutil
import signal
import subprocess
import time
import urllib.request

from .env import KPOOL_BIN
from .ports import free_port

ETCD_BIN = shutil.which("etcd") or "/usr/bin/etcd"
# the driver of test_etcd.py (tests/integration/c/etcd_driver.c, built next to the kpool
# binary by `make unit-bins`)
ETCD_DRIVER = os.environ.get("ETCD_DRIVER") or os.path.join(
    os.path.dirname(os.path.abspath(KPOOL_BIN)), "tests", "etcd_driver")


class Etcd:
    host = "127.0.0.1"  # where it listens (a subclass runs it elsewhere: harness/netns.py)

    def __init__(self, workdir):
        self.workdir = workdir
        self.data_dir = os.path.join(workdir, "etcd-data")
        self.client_port = free_port()
        self.peer_port = free_port()
        self.log_path = os.path.join(workdir, "etcd.log")
        self.proc = None

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.client_port)

    def command(self, args):
        """The command line that runs etcd's args (a subclass wraps it)."""
        return args

    def start(self, timeout=20):
        peer = "http://%s:%d" % (self.host, self.peer_port)
        args = [ETCD_BIN, "--name", "default", "--data-dir", self.data_dir,
                "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", "default=" + peer,
                "--log-outputs", "stderr", "--logger", "zap"]
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(args), stdout=logf, stderr=logf)
        logf.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("etcd exited with %s:\n%s" % (self.proc.returncode, self.log()))
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                    if b'"true"' in r.read():
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("etcd did not become healthy:\n" + self.log())

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-4000:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self):
        self.stop()
        return self.start()

    def request(self, path, body):
        """A raw JSON-gateway call (for what the client under test is not asked to do)."""
        import json
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())
