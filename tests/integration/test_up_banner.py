"""`kpool up` prints the addresses it really serves (issue 20 item 4).

The banner once named the default metrics address (9600+K) whatever `admin.listener` said,
and `listeners`, `control.listener` and `registry.listener` were not followed either. Here
every one of the four is moved with --set to a port no default would give, and each banner
line is checked against the setting and against a live request to it: the pool (a TLS
handshake with the admin certificate), the API (/healthz), the registry (HTTPS, the admin
password) and /metrics. The Pool resource and the CLI configuration carry the same
addresses.
"""
import base64
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import time

import pytest
import yaml

import harness
from harness import KPOOL_BIN, distinct_ports


class Up(harness.KpoolUp):
    """`kpool up` on the listeners its --set moved (no port offset), from the start."""

    def __init__(self, sets):
        super().__init__(sets=sets, prefix="kpool-banner-")
        self.data = self.data_dir
        self.launch([KPOOL_BIN, "up", "--data-dir", self.data] +
                    [a for kv in sets for a in ("--set", kv)])

    def wait_banner(self, timeout=90):
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = self.log()
            if "Ctrl-C stops everything." in text:
                return text
            assert self.proc.poll() is None, "kpool up exited %s:\n%s" % (
                self.proc.returncode, text[-4000:])
            time.sleep(0.1)
        raise AssertionError("no banner in %ss:\n%s" % (timeout, self.log()[-4000:]))

    def stop(self):
        """The exit status (asserts no sanitizer report)."""
        rc = self.halt()
        shutil.rmtree(self.tmp, ignore_errors=True)
        return rc


def banner_lines(text):
    """{label: value} of the banner's address lines."""
    out = {}
    for label, key in (("pool dev", "pool"), ("control plane API", "api"),
                       ("schema registry (HTTPS", "registry"),
                       ("broker health and metrics", "metrics")):
        m = re.search(r"^  %s.*?  +(\S+)$" % re.escape(label), text, re.M)
        assert m, (label, text)
        out[key] = m.group(1)
    return out


def test_banner_follows_moved_listeners():
    kafka, metrics, api, registry, kube = distinct_ports(5)
    up = Up(["listeners=SSL://127.0.0.1:%d" % kafka,
             "admin.listener=127.0.0.1:%d" % metrics,
             "control.listener=127.0.0.1:%d" % api,
             "registry.listener=127.0.0.1:%d" % registry,
             # not in the banner check, moved too: the default 6443 may be taken
             "control.kubernetes.listener=127.0.0.1:%d" % kube])
    try:
        text = up.wait_banner()
        got = banner_lines(text)
        assert got == {"pool": "127.0.0.1:%d" % kafka,
                       "api": "http://127.0.0.1:%d" % api,
                       "registry": "https://127.0.0.1:%d" % registry,
                       "metrics": "http://127.0.0.1:%d/metrics" % metrics}, text
        # each address answers
        c = http.client.HTTPConnection("127.0.0.1", metrics, timeout=10)
        c.request("GET", "/metrics")
        r = c.getresponse()
        assert r.status == 200 and b"kpool_" in r.read()
        c.close()
        cfg = yaml.safe_load(open(up.config))
        assert cfg["server"] == got["api"]
        c = http.client.HTTPConnection("127.0.0.1", api, timeout=10)
        c.request("GET", "/apis/kpool.dev/v1/pools/dev",
                  headers={"Authorization": "Bearer " + cfg["token"]})
        r = c.getresponse()
        body = r.read()
        assert r.status == 200, body
        pool = json.loads(body)
        c.close()
        assert pool["spec"]["bootstrapServers"] == got["pool"]
        assert pool["spec"]["schemaRegistry"] == got["registry"]
        pki = os.path.join(up.data, "pki")
        ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.crt"))
        password = open(os.path.join(pki, "registry-admin.password")).read().strip()
        c = http.client.HTTPSConnection("127.0.0.1", registry, timeout=10, context=ctx)
        auth = base64.b64encode(("kpool-admin:" + password).encode()).decode()
        c.request("GET", "/subjects", headers={"Authorization": "Basic " + auth})
        r = c.getresponse()
        assert r.status == 200 and json.loads(r.read()) == []
        c.close()
        ctx.load_cert_chain(os.path.join(pki, "admin.crt"), os.path.join(pki, "admin.key"))
        with socket.create_connection(("127.0.0.1", kafka), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
                assert t.version()
    finally:
        assert up.stop() == 0


def test_metrics_port_zero_refused(tmp_path):
    """Port 0 (any free port) cannot be reported: refused before anything starts."""
    p = subprocess.run([KPOOL_BIN, "up", "--data-dir", str(tmp_path / "d"), "--set",
                        "admin.listener=127.0.0.1:0"], capture_output=True, text=True,
                       timeout=60, env=dict(os.environ, KPOOL_CONFIG=str(tmp_path / "c.yaml")))
    assert p.returncode == 2, p
    assert "admin.listener" in p.stderr and "port" in p.stderr
    p = subprocess.run([KPOOL_BIN, "up", "--data-dir", str(tmp_path / "d"), "--set",
                        "control.listener=nonsense"], capture_output=True, text=True,
                       timeout=60, env=dict(os.environ, KPOOL_CONFIG=str(tmp_path / "c.yaml")))
    assert p.returncode == 2 and "control.listener: 'nonsense' is not host:port" in p.stderr, p
