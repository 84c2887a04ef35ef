"""Go clients from Debian (issue 20): Sarama 1.22 and segmentio/kafka-go 0.2, plaintext and
mTLS.

go/kpclient (built once, in GOPATH mode from Debian's golang-github-* source packages, into
build/kpclient) produces deterministic records with each client and reads them back with
the same client, checking them byte-identical:
  * Sarama with its default config version (0.8.2: Produce v0, Fetch v0, message format v0)
    under none/gzip/snappy (Sarama refuses lz4 below 0.10) and with 0.10.2 (Produce v2,
    Fetch v3, message format v1, timestamps kept) under none/gzip/snappy/lz4;
  * kafka-go's Writer (Produce v2) and a Reader with GroupID (Fetch v2, the v0/v1 group
    APIs), then a second Reader of the group that resumes at the committed offset.
What the Go clients wrote is also read back with confluent-kafka (up-converted batches are
what a v2 client reads). Fails on the old code: Produce v0-2 answered UNSUPPORTED_VERSION and
Fetch v0-3 closed the connection.
"""
import os
import subprocess

import pytest

import kwire
from harness import TOP
from test_tls_acl import pki, tls_broker  # noqa: F401 (pki: the module's test CA fixture)

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "go", "kpclient")
BIN = os.path.join(TOP, "build", "kpclient")
GOPATH = "/usr/share/gocode"

pytestmark = pytest.mark.filterwarnings("ignore:ssl.PROTOCOL_TLS is deprecated")


def record(i):
    """The i-th record kpclient writes (same function as record() in go/kpclient/main.go)."""
    k = None if i % 7 == 0 else b"k%d" % i
    v = b""
    if i % 11 != 0:
        v = bytes((i * 31 + j) % 256 for j in range(i % 64)) + b"v%d" % i
    return k, v


@pytest.fixture(scope="module")
def kpclient():
    """build/kpclient, rebuilt only when a source file is newer."""
    srcs = [os.path.join(SRC, f) for f in os.listdir(SRC)]
    if not os.path.exists(BIN) or max(map(os.path.getmtime, srcs)) > os.path.getmtime(BIN):
        env = dict(os.environ, GO111MODULE="off", GOPATH=GOPATH, GOFLAGS="",
                   GOCACHE=os.path.join(TOP, "build", "gocache"))
        r = subprocess.run(["go", "build", "-o", BIN, "."], cwd=SRC, env=env,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
    return BIN


def run(kpclient, broker, *args, pki=None, timeout=120):
    cmd = [kpclient, args[0], "-brokers", broker.bootstrap] + list(args[1:])
    if pki:
        alice = pki["alice"]
        cmd += ["-ca", pki.ca, "-cert", alice.cert, "-key", alice.key]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0 and r.stdout.startswith("ok"), (
        "%s\nstdout: %s\nstderr: %s\nbroker log:\n%s" % (" ".join(cmd), r.stdout,
                                                          r.stderr[-3000:], broker.log()[-3000:]))


def readback(broker, topic, n, tls_pki=None):
    """The topic read with confluent-kafka equals record(0..n-1)."""
    if tls_pki:
        return  # the plaintext runs cover the cross-client check
    got = kwire.consume_all(broker.bootstrap, topic, [0])[0]
    assert [o for o, _ in got] == list(range(n))
    assert [v for _, v in got] == [record(i)[1] for i in range(n)]


SARAMA = [("", c) for c in ("none", "gzip", "snappy")] + \
         [("0.10.2.0", c) for c in ("none", "gzip", "snappy", "lz4")]


@pytest.fixture(params=["plaintext", "mtls"])
def go_broker(request, broker_factory, pki):
    if request.param == "plaintext":
        return broker_factory(), None
    return tls_broker(broker_factory, pki, authorizer=False), pki


def create(broker, tls_pki, topic):
    if tls_pki:  # the TLS listener needs a client certificate: create over the wire with one
        from test_tls_acl import kpy_admin
        from kafka.admin import NewTopic
        a = kpy_admin(broker, tls_pki, tls_pki["admin"])
        a.create_topics([NewTopic(topic, 1, 1)])
        a.close()
    else:
        kwire.create_topic(broker.bootstrap, topic, 1)


def test_sarama(kpclient, go_broker):
    """Sarama, default version and 0.10.2, every codec it allows there."""
    broker, tls_pki = go_broker
    n = 400
    with kwire.broker_log_on_failure(broker):
        for version, codec in SARAMA:
            topic = "sarama-%s-%s" % (version.replace(".", "") or "default", codec)
            create(broker, tls_pki, topic)
            args = ["sarama", "-topic", topic, "-codec", codec, "-n", str(n)]
            if version:
                args += ["-version", version]
            run(kpclient, broker, *args, pki=tls_pki)
            readback(broker, topic, n, tls_pki)


def test_kafka_go(kpclient, go_broker):
    """kafka-go Writer and group Reader (and a second Reader resuming from the commit)."""
    broker, tls_pki = go_broker
    with kwire.broker_log_on_failure(broker):
        create(broker, tls_pki, "kafkago")
        run(kpclient, broker, "kafkago", "-topic", "kafkago", "-group", "kgo", "-n", "300",
            pki=tls_pki)
        readback(broker, "kafkago", 300, tls_pki)
