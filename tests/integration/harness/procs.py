"""kpool processes: a broker (`kpool broker`) and a whole `kpool up`.

Each owns its process and its log file; stop() asserts a clean exit (status 0, no sanitizer
report), so the test that owned a process that crashed or leaked fails. Tests add what
they need by subclassing (a control-plane client, a schema-registry client, ...).
"""
import http.client
import json
import os
import signal
import shutil
import subprocess
import tempfile
import time
import urllib.request

import yaml

from .env import KPOOL_BIN, assert_clean, sanitizer_env
from .ports import free_offset, free_port, offset_free, up_base_ports


def read_log(path):
    """A process log as text ("" before it exists)."""
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


class Broker:
    """A kpool broker process. restart() keeps the data directory; kill9() crashes it.

    `extra` are broker properties (`--set k=v`) over the listeners and data directory
    chosen here. A multi-broker cluster is N of these sharing metadata.etcd.endpoints
    (see harness/cluster.py)."""

    host = "127.0.0.1"  # where it listens (a subclass runs it elsewhere: harness/netns.py)

    def __init__(self, data_dir, extra=None):
        self.data_dir = data_dir
        self.port = free_port()
        self.admin_port = free_port()
        self.extra = dict(extra or {})
        self.env = {}  # more environment for the process (e.g. KPOOL_FS_FAULTS)
        self.proc = None
        self.started = False  # readyz answered once (a restart keeps its ports)
        self.log_path = os.path.join(os.path.dirname(data_dir), "broker-%d.log" % self.port)
        self.logs = []

    @property
    def bootstrap(self):
        return "%s:%d" % (self.host, self.port)

    def args(self):
        props = {
            "listeners": "PLAINTEXT://%s:%d" % (self.host, self.port),
            "admin.listener": "%s:%d" % (self.host, self.admin_port),
            "log.dirs": self.data_dir,
        }
        props.update(self.extra)
        a = [KPOOL_BIN, "broker"]
        for k, v in props.items():
            a += ["--set", "%s=%s" % (k, v)]
        return a

    def start(self, timeout=60):
        """Starts the broker and waits until /readyz answers. On its first start, a broker
        whose ports were chosen here and lost a race for one of them (another process took
        it between free_port() and the broker's bind) is started again on new ports."""
        for _ in range(3):
            if self._start_once(timeout):
                return self
            self.port, self.admin_port = free_port(), free_port()
        raise RuntimeError("broker did not start (ports in use):\n%s" % self.log()[-4000:])

    def _start_once(self, timeout):
        self.killed = False
        first = not self.started
        start_len = len(self.log())
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args(), stdout=self.logf, stderr=subprocess.STDOUT,
                                     env=sanitizer_env(**self.env))
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                text = self.log()[start_len:]
                if (first and "in use" in text and "listeners" not in self.extra
                        and "admin.listener" not in self.extra):
                    self.logf.close()
                    assert_clean(text)
                    return False
                raise RuntimeError("broker exited with %s:\n%s" % (self.proc.returncode, self.log()))
            try:
                with urllib.request.urlopen("http://%s:%d/readyz" % (self.host, self.admin_port),
                                            timeout=1) as r:
                    if r.status == 200:
                        self.started = True
                        return True
            except Exception:
                pass
            time.sleep(0.05)
        raise RuntimeError("broker not ready in %ss:\n%s" % (timeout, self.log()))

    def log(self):
        return read_log(self.log_path)

    def stop(self, timeout=30):
        """Clean shutdown (SIGTERM); asserts exit status 0 and no sanitizer report. A broker
        that already exited on its own (not through kill9) crashed: that fails too."""
        if not self.proc:
            return
        if self.proc.poll() is not None:
            if not getattr(self, "killed", False):
                self.logf.close()
                text = self.log()
                assert_clean(text)
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
        assert_clean(text)
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
        with urllib.request.urlopen("http://%s:%d/metrics" % (self.host, self.admin_port),
                                    timeout=5) as r:
            return r.read().decode()


class KpoolUp:
    """A `kpool up` process: pool `dev`, control plane API, schema registry, on a free
    --port-offset, with its own CLI config file (KPOOL_CONFIG) and data directory.

    root: the directory for data/, cli/config.yaml and the log (default: a new temporary
    one). sets: `--set k=v` strings; args: more `kpool up` arguments after them (a later
    --set wins). After start(): kafka, api_url, metrics_url (host:port), registry_url
    (https://host:port), token (the admin's), pki (the pool's PKI directory).
    restart: stop() then start() keeps the data directory and, when keep_offset is set and
    its ports are still free, the port offset."""

    remove_on_stop = False  # stop() removes a temporary root this made itself
    keep_offset = False

    def __init__(self, root=None, sets=(), args=(), prefix="kpool-up-"):
        self.own_root = root is None
        self.tmp = self.root = root or tempfile.mkdtemp(prefix=prefix)
        self.data_dir = os.path.join(self.root, "data")
        self.config = os.path.join(self.root, "cli", "config.yaml")
        self.log_path = os.path.join(self.root, "up.log")
        self.sets = list(sets)
        self.extra_args = list(args)
        self.proc = None
        self.offset = None
        self._admin = self._kadmin = None

    # ---- lifecycle ----

    def start(self, timeout=60, binary=None):
        """binary: another kpool for the `kpool up` process (an upgrade test's older one)."""
        ports = self.base_ports()
        for _ in range(3):
            if not (self.keep_offset and self.offset is not None
                    and offset_free(self.offset, ports)):
                self.offset = free_offset(ports)
            if self._start_once(timeout, binary or KPOOL_BIN):
                return self
            self.offset = None
        raise RuntimeError("kpool up did not start:\n" + self.log()[-4000:])

    def base_ports(self):
        """The ports this `kpool up` listens on at offset 0 (more with --brokers N)."""
        a = self.extra_args
        n = int(a[a.index("--brokers") + 1]) if "--brokers" in a[:-1] else 1
        return up_base_ports(n)

    def _start_once(self, timeout, binary):
        self.kafka = "127.0.0.1:%d" % (9093 + self.offset)
        self.api_url = "127.0.0.1:%d" % (8080 + self.offset)
        self.registry_url = "https://127.0.0.1:%d" % (8081 + self.offset)
        self.metrics_url = "127.0.0.1:%d" % (9600 + self.offset)
        args = [binary, "up", "--data-dir", self.data_dir, "--port-offset", str(self.offset)]
        for s in self.sets:
            args += ["--set", s]
        start_len = len(self.log())
        self.launch(args + self.extra_args)
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = self.log()[start_len:]
            if self.proc.poll() is not None:
                self.logf.close()
                assert_clean(text)
                if "in use" in text:  # lost a race for a port: another offset
                    return False
                raise RuntimeError("kpool up exited with %s:\n%s" % (self.proc.returncode,
                                                                      text[-4000:]))
            if "kpool is up." in text and self._ready():
                with open(self.config) as f:
                    self.token = yaml.safe_load(f)["token"]
                self.pki = os.path.join(self.data_dir, "pki")
                self.on_up()
                return True
            time.sleep(0.1)
        raise RuntimeError("kpool up not ready in %ss:\n%s" % (timeout, self.log()[-4000:]))

    def on_up(self):
        """Called once the pool is up (subclasses read more of what `kpool up` wrote)."""

    def _ready(self):
        try:
            c = http.client.HTTPConnection(self.api_url, timeout=2)
            c.request("GET", "/healthz")
            r = c.getresponse()
            ok = r.status == 200 and r.read().strip() == b"ok"
            c.close()
            if not ok:
                return False
            c = http.client.HTTPConnection(self.metrics_url, timeout=2)
            c.request("GET", "/readyz")
            ok = c.getresponse().status == 200
            c.close()
            return ok
        except OSError:
            return False

    def log(self):
        return read_log(self.log_path)

    def launch(self, args):
        """Starts args (a `kpool up` command line) with this one's log and KPOOL_CONFIG;
        start() does it on a free port offset and waits until the pool is up."""
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self.logf, stderr=subprocess.STDOUT,
                                     env=sanitizer_env(KPOOL_CONFIG=self.config))

    def halt(self, timeout=60):
        """SIGINT (Ctrl-C) and wait; asserts no sanitizer report; returns the exit status
        (None when nothing ran)."""
        if self._kadmin is not None:
            self._kadmin.close()
            self._kadmin = None
        self._admin = None
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("kpool up did not stop in %ss:\n%s"
                                     % (timeout, self.log()[-4000:]))
        self.logf.close()
        text = self.log()
        rc, self.proc = self.proc.returncode, None
        assert_clean(text)
        return rc

    def stop(self, timeout=60):
        """SIGINT (Ctrl-C); asserts exit status 0 and no sanitizer report."""
        rc = self.halt(timeout)
        if rc is None:
            return
        assert rc == 0, "kpool up exited with %d:\n%s" % (rc, self.log()[-4000:])
        if self.remove_on_stop and self.own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def restart(self, **kw):
        self.stop()
        return self.start(**kw)

    # ---- the control plane and the CLI ----

    def http(self, method, path, body=None, token=None, raw=False, headers=None, timeout=30):
        """One request to the API; returns (status, headers, parsed JSON body (bytes when
        raw)). A body of bytes or str is sent as it is."""
        c = http.client.HTTPConnection(self.api_url, timeout=timeout)
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            h["Content-Type"] = "application/json"
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        payload = r.read()
        c.close()
        if raw:
            return r.status, r.headers, payload
        return r.status, r.headers, json.loads(payload) if payload else None

    def kpool(self, *args, expect=0, stdin=None, timeout=120):
        """Runs the CLI against this pool (its KPOOL_CONFIG); asserts the exit status
        (unless expect is None) and no sanitizer report."""
        p = subprocess.run([KPOOL_BIN] + list(args), input=stdin, capture_output=True,
                           text=True, timeout=timeout,
                           env=dict(os.environ, KPOOL_CONFIG=self.config))
        assert_clean(p.stderr)
        if expect is not None:
            assert p.returncode == expect, "kpool %s -> %d\n%s%s" % (
                " ".join(args), p.returncode, p.stdout, p.stderr)
        return p

    # ---- the pool, as its super user ----

    def admin_files(self):
        """(CA, certificate, key) of the pool's super user."""
        return (os.path.join(self.pki, "ca.crt"), os.path.join(self.pki, "admin.crt"),
                os.path.join(self.pki, "admin.key"))

    def admin_conf(self):
        """librdkafka settings of the pool's super user."""
        ca, cert, key = self.admin_files()
        return {"bootstrap.servers": self.kafka, "security.protocol": "ssl",
                "ssl.ca.location": ca, "ssl.certificate.location": cert,
                "ssl.key.location": key}

    ssl_conf = admin_conf

    def pool_topics(self):
        """{name: partition count} of the pool's (non-internal) topics."""
        md = self.admin.list_topics(timeout=20)
        return {n: len(t.partitions) for n, t in md.topics.items()
                if not n.startswith("__") and t.error is None}

    @property
    def admin(self):
        """confluent-kafka's AdminClient as the super user (until stop())."""
        if self._admin is None:
            from confluent_kafka.admin import AdminClient
            self._admin = AdminClient(self.admin_conf())
        return self._admin

    @property
    def kadmin(self):
        """kafka-python's KafkaAdminClient as the super user (for ACLs; until stop())."""
        if self._kadmin is None:
            from kafka.admin import KafkaAdminClient
            ca, cert, key = self.admin_files()
            self._kadmin = KafkaAdminClient(
                bootstrap_servers=self.kafka, security_protocol="SSL", ssl_cafile=ca,
                ssl_certfile=cert, ssl_keyfile=key, request_timeout_ms=20000)
        return self._kadmin

    def describe_acls(self, resource_type="ANY", name=None, pattern_type="ANY"):
        """The pool's ACL bindings that match (kafka-python objects, as the super user)."""
        from kafka.admin import (ACLFilter, ACLOperation, ACLPermissionType,
                                 ACLResourcePatternType, ResourcePatternFilter, ResourceType)
        acls, err = self.kadmin.describe_acls(ACLFilter(
            principal=None, host=None, operation=ACLOperation.ANY,
            permission_type=ACLPermissionType.ANY,
            resource_pattern=ResourcePatternFilter(ResourceType[resource_type], name,
                                                   ACLResourcePatternType[pattern_type])))
        assert err.errno == 0, err
        return acls


def up_fixture(make, scope="module"):
    """A pytest fixture that starts make() (a KpoolUp or subclass, not started) for the
    scope and stop()s it after: `up = up_fixture(KpoolUp)` at a test module's top level."""
    import pytest

    @pytest.fixture(scope=scope)
    def up():
        k = make().start()
        try:
            yield k
        finally:
            k.stop()
    return up
