"""Integration-test harness: starts real kpool brokers and hands tests their addresses.

Every test gets brokers on free ports with a fresh data directory. The binary is
$KPOOL_BIN (the ASan+UBSan build under `make test`). A broker that exits with a sanitizer
report or a non-zero status on shutdown fails the test that owned it.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

KPOOL_BIN = os.environ.get("KPOOL_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "asan", "kpool")
PYTHON = "/usr/bin/python3"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A kpool broker process. restart() keeps the data directory; kill9() crashes it."""

    def __init__(self, data_dir, extra=None):
        self.data_dir = data_dir
        self.port = free_port()
        self.admin_port = free_port()
        self.extra = dict(extra or {})
        self.proc = None
        self.log_path = os.path.join(os.path.dirname(data_dir), "broker-%d.log" % self.port)
        self.logs = []

    @property
    def bootstrap(self):
        return "127.0.0.1:%d" % self.port

    def args(self):
        props = {
            "listeners": "PLAINTEXT://127.0.0.1:%d" % self.port,
            "admin.listener": "127.0.0.1:%d" % self.admin_port,
            "log.dirs": self.data_dir,
        }
        props.update(self.extra)
        a = [KPOOL_BIN, "broker"]
        for k, v in props.items():
            a += ["--set", "%s=%s" % (k, v)]
        return a

    def start(self, timeout=20):
        self.killed = False
        self.logf = open(self.log_path, "ab")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        self.proc = subprocess.Popen(self.args(), stdout=self.logf, stderr=subprocess.STDOUT,
                                     env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("broker exited with %s:\n%s" % (self.proc.returncode, self.log()))
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % self.admin_port,
                                            timeout=1) as r:
                    if r.status == 200:
                        return self
            except Exception:
                pass
            time.sleep(0.05)
        raise RuntimeError("broker not ready in %ss:\n%s" % (timeout, self.log()))

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout=30):
        """Clean shutdown (SIGTERM); asserts exit status 0 and no sanitizer report. A broker
        that already exited on its own (not through kill9) crashed: that fails too."""
        if not self.proc:
            return
        if self.proc.poll() is not None:
            if not getattr(self, "killed", False):
                self.logf.close()
                text = self.log()
                assert "Sanitizer" not in text and "runtime error" not in text, text[-8000:]
                assert self.proc.returncode == 0, "broker exited by itself with %d:\n%s" % (
                    self.proc.returncode, text[-4000:])
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("broker did not stop in %ss:\n%s" % (timeout, self.log()[-4000:]))
        self.logf.close()
        text = self.log()
        assert "Sanitizer" not in text and "runtime error" not in text, text[-8000:]
        assert rc == 0, "broker exited with %d:\n%s" % (rc, text[-4000:])

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.logf.close()
            self.killed = True

    def restart(self):
        self.stop()
        return self.start()

    def metrics(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.admin_port, timeout=5) as r:
            return r.read().decode()


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="kpool-it-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def broker_factory(workdir):
    """Makes brokers: broker_factory(**props) -> started Broker (stopped at teardown)."""
    made = []

    def make(start=True, **props):
        props = {k.replace("_", "."): str(v).lower() if isinstance(v, bool) else str(v)
                 for k, v in props.items()}
        b = Broker(os.path.join(workdir, "data-%d" % len(made)), props)
        made.append(b)
        return b.start() if start else b

    yield make
    failures = []
    for b in made:
        try:
            b.stop()
        except AssertionError as e:
            failures.append(str(e))
    if failures:
        pytest.fail("\n".join(failures))


@pytest.fixture
def broker(broker_factory):
    return broker_factory()
