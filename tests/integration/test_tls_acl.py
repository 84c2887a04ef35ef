"""TLS listeners, certificate principals and Kafka's ACL authorizer, with real clients.

The PKI is made here, per test module, with the `openssl` CLI (a CA, a broker certificate
with subjectAltName IP:127.0.0.1, client certificates) plus python3-cryptography for an
expired client certificate; a second CA signs a rogue certificate.

Acceptance criteria covered:
  * refused at the handshake: no client certificate, a certificate from another CA, an
    expired certificate (TLS 1.2 and 1.3, and librdkafka); the broker logs why, never any
    PEM/key material, and keeps serving other clients (also one already connected);
  * a certificate without ACLs: produce, fetch and group join fail with
    TOPIC_AUTHORIZATION_FAILED (29) / GROUP_AUTHORIZATION_FAILED (30), through
    confluent-kafka, kafka-python and the raw wire; READ (topic) + READ (group): a group
    consumer reads, produce still fails; PREFIXED `team.` covers `team.x` and nothing else;
    DENY overrides ALLOW; super users (';'-separated list) may do everything; an
    unauthorized topic is never reported as unknown (metadata for a missing topic -> 29,
    all-topics metadata omits unauthorized topics); InitProducerId (idempotent producer)
    needs WRITE on some topic; a change applies to the very next request on an open
    connection (raw socket and a live confluent-kafka producer);
  * ssl.principal.mapping.rules (Kafka's examples, /L, no rule matching -> refused),
    RFC 2253 escaping of a subject with a comma, ssl.client.auth=requested (anonymous);
  * ACL management with kafka-python's admin client and with librdkafka's C API
    (c/acl_tool.c, compiled here): MATCH / ANY / LITERAL / PREFIXED filters and
    principal / host / operation / permission filters, as Kafka; ACLs survive a restart
    (librdkafka 2.0.2 drops the error code of a DescribeAcls response, so DescribeAcls
    errors are checked with kafka-python and the raw wire);
  * allow.everyone.if.no.acl.found (InitProducerId included, as Kafka's
    authorizeByResourceType);
  * a broker without the authorizer answers the ACL APIs with SECURITY_DISABLED (54);
  * 50k messages (lz4) over TLS with confluent-kafka come back byte-identical (the TLS
    "sendfile" path), and a staged file region is never served for another file;
  * requests OpenSSL decrypted but the broker had not read yet when it paused the
    connection are served after the pause.

Client quirks the assertions account for: kafka-python 2.0.2 retries a single-topic
metadata error until max_block_ms (so its producer times out where librdkafka reports 29),
and librdkafka keeps a topic failed after a 29 until its next metadata refresh.
"""
import datetime
import os
import random
import re
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

import kwire
from harness.ctools import c_tool
from harness.pki import OpensslPki

HERE = os.path.dirname(os.path.abspath(__file__))

# kafka-python 2.0.2 builds its SSL context with the deprecated ssl.PROTOCOL_TLS
pytestmark = pytest.mark.filterwarnings("ignore:ssl.PROTOCOL_TLS is deprecated")

TOPIC_AUTHZ = 29
GROUP_AUTHZ = 30
CLUSTER_AUTHZ = 31
UNKNOWN_TOPIC = 3
SECURITY_DISABLED = 54

API_FETCH, API_METADATA = 1, 3
API_FIND_COORDINATOR, API_JOIN_GROUP, API_INIT_PRODUCER_ID = 10, 11, 22

# --------------------------------------------------------------------------- PKI


class Ident:
    """A client identity: certificate and key files and the principal the broker derives."""

    def __init__(self, name, cert, key, principal):
        self.name, self.cert, self.key, self.principal = name, cert, key, principal

    def __repr__(self):
        return "Ident(%s)" % self.name


ALICE_RDNS = (("O", "kpool"), ("OU", "team"), ("CN", "alice"))


class Pki(OpensslPki):
    def __init__(self, d):
        super().__init__(d)
        self.ca, self.ca_key = self._ca("ca", "/O=kpool/CN=kpool test CA")
        self.other_ca, self.other_ca_key = self._ca("other-ca", "/O=elsewhere/CN=another CA")
        self.broker_cert, self.broker_key = self._leaf("broker", "/O=kpool/CN=broker", "server")
        self.idents = {}
        # RFC 2253 prints the last RDN of the subject first
        for name, rdns in (("admin", (("O", "kpool"), ("OU", "ops"), ("CN", "admin"))),
                           ("alice", ALICE_RDNS),
                           ("bob", (("O", "kpool"), ("OU", "team"), ("CN", "bob"))),
                           ("carol", (("O", "kpool"), ("OU", "team"), ("CN", "carol"))),
                           ("svc", (("O", "kpool"), ("OU", "ServiceUsers"), ("CN", "Svc-One"))),
                           ("comma", (("O", "kpool"), ("OU", "team"), ("CN", "acme, inc+co")))):
            cert, key = self._leaf(name, openssl_subject(rdns), "client")
            self.idents[name] = Ident(name, cert, key, "User:" + rfc2253(rdns))
        # same subject as alice, signed by another CA
        cert, key = self._leaf("rogue", openssl_subject(ALICE_RDNS), "client",
                               self.other_ca, self.other_ca_key)
        self.idents["rogue"] = Ident("rogue", cert, key, None)
        self.idents["expired"] = self._expired("expired", "alice")

    def __getitem__(self, name):
        return self.idents[name]

    def _expired(self, name, like):
        """A client certificate of the real CA, valid from 30 days ago until yesterday, with
        the subject of `like` (python3-cryptography: OpenSSL 3.0's CLI cannot backdate)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID
        with open(self.ca_key, "rb") as f:
            ca_key = serialization.load_pem_private_key(f.read(), None)
        with open(self.ca, "rb") as f:
            ca = x509.load_pem_x509_certificate(f.read())
        with open(self.idents[like].cert, "rb") as f:
            subject = x509.load_pem_x509_certificate(f.read()).subject
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.utcnow()
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=30))
                .not_valid_after(now - datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        cp, kp = os.path.join(self.dir, name + ".pem"), os.path.join(self.dir, name + ".key")
        with open(cp, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(kp, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        return Ident(name, cp, kp, None)

    def secret_lines(self):
        """Every base64 line of every PEM file (certificates and keys)."""
        out = []
        for fn in os.listdir(self.dir):
            if fn.endswith((".pem", ".key")):
                with open(os.path.join(self.dir, fn)) as f:
                    out += [l.strip() for l in f if l.strip() and not l.startswith("-----")]
        return out


def openssl_subject(rdns):
    """(("O", "a"), ("CN", "b")) -> '/O=a/CN=b' for `openssl req -subj` ('+' and '/'
    escaped)."""
    return "".join("/%s=%s" % (k, re.sub(r"([+/])", r"\\\1", v)) for k, v in rdns)


def rfc2253(rdns):
    """(("O", "a"), ("OU", "b"), ("CN", "c")) -> 'CN=c,OU=b,O=a': RFC 2253 prints the last
    RDN first, escaping , + " \\ < > ; with a backslash."""
    esc = lambda v: re.sub(r'([,+"\\<>;])', r"\\\1", v)
    return ",".join("%s=%s" % (k, esc(v)) for k, v in reversed(rdns))


@pytest.fixture(scope="module")
def pki():
    d = tempfile.mkdtemp(prefix="kpool-pki-")
    try:
        yield Pki(d)
    finally:
        subprocess.run(["rm", "-rf", d])


@pytest.fixture(scope="module")
def acl_tool():
    """c/acl_tool.c built against librdkafka (librdkafka-dev)."""
    yield from c_tool("acl_tool")


# --------------------------------------------------------------------------- brokers

ADMIN_PRINCIPAL = "User:CN=admin,OU=ops,O=kpool"


def tls_broker(broker_factory, pki, authorizer=True, client_auth="required", start=True,
               **props):
    """A broker with one SSL listener (and the authorizer on, admin a super user)."""
    b = broker_factory(start=False)
    b.extra.update({
        "listeners": "SSL://127.0.0.1:%d" % b.port,
        "ssl.ca.location": pki.ca,
        "ssl.certificate.location": pki.broker_cert,
        "ssl.key.location": pki.broker_key,
        "ssl.client.auth": client_auth,
    })
    if authorizer:
        # two super users: ';' separates principals that contain commas
        b.extra.update({"authorizer.enabled": "true",
                        "super.users": "User:CN=nobody,OU=x,O=y;" + ADMIN_PRINCIPAL})
    b.extra.update(props)
    return b.start() if start else b


def rdk(b, pki, ident, **kw):
    """librdkafka (confluent-kafka) configuration for ident over TLS."""
    c = {"bootstrap.servers": b.bootstrap, "security.protocol": "ssl",
         "ssl.ca.location": pki.ca}
    if ident is not None:
        c.update({"ssl.certificate.location": ident.cert, "ssl.key.location": ident.key})
    c.update(kw)
    return c


def kpy(b, pki, ident, **kw):
    """kafka-python configuration for ident over TLS (hostname checked against the IP SAN)."""
    c = dict(bootstrap_servers=b.bootstrap, security_protocol="SSL", ssl_cafile=pki.ca,
             ssl_certfile=ident.cert, ssl_keyfile=ident.key, ssl_check_hostname=True)
    c.update(kw)
    return c


def kpy_admin(b, pki, ident=None):
    from kafka.admin import KafkaAdminClient
    return KafkaAdminClient(**kpy(b, pki, ident or pki["admin"], request_timeout_ms=20000))


def create_topics(admin, *names, partitions=1):
    from kafka.admin import NewTopic
    admin.create_topics([NewTopic(n, partitions, 1) for n in names], timeout_ms=20000)


def acl(principal, rtype, name, op, perm="ALLOW", pattern="LITERAL", host="*"):
    """A kafka-python ACL."""
    from kafka.admin import (ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                             ResourcePattern, ResourceType)
    return ACL(principal=principal, host=host, operation=ACLOperation[op],
               permission_type=ACLPermissionType[perm],
               resource_pattern=ResourcePattern(ResourceType[rtype], name,
                                                ACLResourcePatternType[pattern]))


def acl_filter(principal=None, rtype="ANY", name=None, op="ANY", perm="ANY", pattern="ANY",
               host=None):
    from kafka.admin import (ACLFilter, ACLOperation, ACLPermissionType,
                             ACLResourcePatternType, ResourcePatternFilter, ResourceType)
    return ACLFilter(principal=principal, host=host, operation=ACLOperation[op],
                     permission_type=ACLPermissionType[perm],
                     resource_pattern=ResourcePatternFilter(ResourceType[rtype], name,
                                                            ACLResourcePatternType[pattern]))


def grant(admin, *acls):
    res = admin.create_acls(list(acls))
    assert not res["failed"] and len(res["succeeded"]) == len(acls), res


def revoke(admin, *filters):
    out = admin.delete_acls(list(filters))
    for _, _, err in out:
        assert err.errno == 0, out
    return sum(len(matches) for _, matches, _ in out)


def wait_log(b, pattern, count=1, timeout=30):
    deadline = time.time() + timeout
    while True:
        n = len(re.findall(pattern, b.log()))
        if n >= count:
            return n
        assert time.time() < deadline, "no %d x %r in the broker log:\n%s" % (
            count, pattern, b.log()[-3000:])
        time.sleep(0.05)


# --------------------------------------------------------------------------- raw wire over TLS

class Rd:
    def __init__(self, data):
        self.d, self.p = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.p)
        self.p += struct.calcsize(fmt)
        return v[0]

    def i8(self):
        return self.take(">b")

    def i16(self):
        return self.take(">h")

    def i32(self):
        return self.take(">i")

    def i64(self):
        return self.take(">q")

    def skip_array(self, item_size):
        n = self.i32()
        self.p += item_size * max(n, 0)

    def str(self):
        n = self.i16()
        if n < 0:
            return None
        s = self.d[self.p:self.p + n].decode()
        self.p += n
        return s

    def bytes(self):
        n = self.i32()
        if n < 0:
            return None
        s = self.d[self.p:self.p + n]
        self.p += n
        return s


def tls_context(pki, ident=None, version=None):
    ctx = ssl.create_default_context(cafile=pki.ca)
    if ident is not None:
        ctx.load_cert_chain(ident.cert, ident.key)
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


class Wire:
    """One TLS connection speaking raw Kafka requests (kwire encoders)."""

    def __init__(self, b, pki, ident, version=None):
        s = socket.create_connection(("127.0.0.1", b.port), timeout=15)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s = tls_context(pki, ident, version).wrap_socket(s, server_hostname="127.0.0.1")
        self.corr = 0

    def call(self, key, version, body):
        self.corr += 1
        self.s.sendall(kwire.request(key, version, self.corr, body))
        r = Rd(kwire.recv_frame(self.s, timeout=15))
        assert r.i32() == self.corr
        return r

    def close(self):
        self.s.close()

    def metadata(self, topics=None):
        """Metadata v1: {topic: error}."""
        r = self.call(API_METADATA, 1, kwire.body_metadata(1, topics))
        for _ in range(r.i32()):
            r.i32(), r.str(), r.i32(), r.str()
        r.i32()
        out = {}
        for _ in range(r.i32()):
            err, name = r.i16(), r.str()
            r.i8()
            for _ in range(r.i32()):
                r.i16(), r.i32(), r.i32()
                r.skip_array(4)  # replicas
                r.skip_array(4)  # isr
            out[name] = err
        return out

    def produce(self, topic, values, partition=0):
        err, _ = kwire.produce_raw(self.s, topic, partition, values, corr=self._next(), version=3)
        return err

    def _next(self):
        self.corr += 1
        return self.corr

    def fetch(self, topic, offset=0, partition=0, max_bytes=1 << 20):
        """Fetch v4 of one partition: (error, records bytes)."""
        r = self.call(API_FETCH, 4, kwire.body_fetch(4, topic, partition, offset,
                                                     max_bytes=max_bytes))
        r.i32()
        assert r.i32() == 1
        assert r.str() == topic
        assert r.i32() == 1
        r.i32()
        err = r.i16()
        r.i64(), r.i64()
        r.skip_array(16)  # aborted transactions
        return err, r.bytes() or b""

    def init_producer_id(self):
        r = self.call(API_INIT_PRODUCER_ID, 0, kwire.body_init_producer_id(0))
        r.i32()
        return r.i16()

    def find_coordinator(self, group):
        return self.call(API_FIND_COORDINATOR, 0, kwire.string(group)).i16()

    def join_group(self, group):
        body = (kwire.string(group) + kwire.i32(10000) + kwire.string("") +
                kwire.string("consumer") +
                kwire.array([kwire.string("range") + kwire.bytes_(b"\x00\x00\x00\x00\x00\x00")]))
        return self.call(API_JOIN_GROUP, 0, body).i16()


def values_of(records):
    """Values of the (uncompressed) batches in a fetch response's records."""
    out = []
    for pos, total, _, _ in kwire.parse_batches(records):
        out += kwire.batch_values(records[pos:pos + total])
    return out


def handshake_outcome(b, pki, ident, version):
    """Connects with ident (None: no certificate) and sends ApiVersions. Returns 'answered'
    when a response arrives, else a description of how the connection ended."""
    s = socket.create_connection(("127.0.0.1", b.port), timeout=10)
    try:
        t = tls_context(pki, ident, version).wrap_socket(s, server_hostname="127.0.0.1")
        t.sendall(kwire.request(kwire.API_API_VERSIONS, 0, 1, kwire.body_api_versions(0)))
        data = t.recv(4096)
        return "answered" if data else "closed"
    except (ssl.SSLError, ConnectionError) as e:
        return "refused: %s" % e
    finally:
        s.close()


# --------------------------------------------------------------------------- handshake refusals

REFUSALS = (
    (None, r"refused 127\.0\.0\.1:\d+: TLS handshake failed: .*peer did not return a certificate"),
    ("rogue", r"refused 127\.0\.0\.1:\d+: client certificate rejected: "
              r"unable to get local issuer certificate"),
    ("expired", r"refused 127\.0\.0\.1:\d+: client certificate rejected: certificate has expired"),
)


def test_handshake_refusals_are_logged_and_the_broker_keeps_serving(broker_factory, pki):
    b = tls_broker(broker_factory, pki)
    admin = kpy_admin(b, pki)
    create_topics(admin, "orders")
    grant(admin, acl(pki["alice"].principal, "TOPIC", "orders", "WRITE"))
    # a client connected before the refusals keeps working afterwards
    early = Wire(b, pki, pki["alice"])
    assert early.produce("orders", [b"before"]) == 0
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        for name, pattern in REFUSALS:
            before = len(re.findall(pattern, b.log()))
            out = handshake_outcome(b, pki, pki[name] if name else None, version)
            assert out != "answered", (name, version, out)
            wait_log(b, pattern, before + 1)
            # the next good client is served at once
            w = Wire(b, pki, pki["alice"], version)
            assert w.metadata(["orders"]) == {"orders": 0}
            w.close()
    # librdkafka with the rogue and the expired certificate: reports an SSL failure, and the
    # broker logs the reason again
    for name, pattern in REFUSALS[1:]:
        before = len(re.findall(pattern, b.log()))
        errors = []
        p = Producer(rdk(b, pki, pki[name], **{"error_cb": errors.append,
                                               "reconnect.backoff.ms": 1000}))
        p.produce("orders", b"never")
        deadline = time.time() + 30
        while not errors and time.time() < deadline:
            p.poll(0.1)
        assert errors, name
        assert p.flush(0) == 1  # nothing was delivered
        del p
        wait_log(b, pattern, before + 1)
    assert early.produce("orders", [b"after"]) == 0
    early.close()
    log = b.log()
    assert "-----BEGIN" not in log and "PRIVATE KEY" not in log
    for line in pki.secret_lines():
        assert line not in log, "PEM material in the broker log"


# --------------------------------------------------------------------------- authorization


def produce_errors(conf, topic, values, timeout=20):
    """Produces with confluent-kafka; returns the delivery error codes (0 = delivered)."""
    results = []
    p = Producer(dict(conf, **{"message.timeout.ms": timeout * 1000}))
    for v in values:
        p.produce(topic, v, on_delivery=lambda err, msg: results.append(
            err.code() if err else 0))
    assert p.flush(timeout + 5) == 0
    return results


def consume_assigned(conf, topic, want, timeout=20, stop_on=TOPIC_AUTHZ):
    """Reads `topic` partition 0 from the beginning with assign() (no group): (values, set of
    error codes seen); stops early once error `stop_on` was seen."""
    c = Consumer(dict(conf, **{"group.id": "unused", "enable.auto.commit": False,
                               "fetch.wait.max.ms": 50}))
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        got, errors = [], set()
        deadline = time.time() + timeout
        while len(got) < want and stop_on not in errors and time.time() < deadline:
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                errors.add(m.error().code())
            else:
                got.append(m.value())
        return got, errors
    finally:
        c.close()


def consume_group(conf, topic, group, want, timeout=30):
    """Reads with subscribe() in `group`: the values, or the first error code seen."""
    c = Consumer(dict(conf, **{"group.id": group, "auto.offset.reset": "earliest",
                               "session.timeout.ms": 6000, "heartbeat.interval.ms": 300,
                               "fetch.wait.max.ms": 50}))
    try:
        c.subscribe([topic])
        got = []
        deadline = time.time() + timeout
        while len(got) < want and time.time() < deadline:
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                return m.error().code()
            got.append(m.value())
        if got:
            c.commit(asynchronous=False)
        return got
    finally:
        c.close()


def bounded(fn, *args, timeout=40, **kw):
    """Runs fn in a daemon thread: kafka-python's poll() can block past its timeout while it
    waits for a metadata update, and a hang must fail the test, not stall the suite."""
    out = []
    t = threading.Thread(target=lambda: out.append(fn(*args, **kw)), daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive() and out, "%s%r did not finish in %ss" % (fn.__name__, args, timeout)
    return out[0]


def kpy_produce_error(conf, topic, max_block_ms=10000):
    """kafka-python: the exception class name of one send (None when delivered)."""
    from kafka import KafkaProducer
    p = KafkaProducer(**dict(conf, max_block_ms=max_block_ms, retries=0))
    try:
        p.send(topic, b"kafka-python").get(timeout=15)
        return None
    except Exception as e:
        return type(e).__name__
    finally:
        p.close(5)


def kpy_consume(conf, topic, group=None, want=3, timeout=15):
    """kafka-python: reads partition 0 (assign() without a group, subscribe() with one);
    the values, or the exception class name."""
    from kafka import KafkaConsumer, TopicPartition as KTP
    c = KafkaConsumer(**dict(conf, group_id=group, auto_offset_reset="earliest",
                             enable_auto_commit=False, fetch_max_wait_ms=50,
                             heartbeat_interval_ms=300))
    try:
        if group:
            c.subscribe([topic])
        else:
            c.assign([KTP(topic, 0)])
            c.seek(KTP(topic, 0), 0)
        got = []
        deadline = time.time() + timeout
        while time.time() < deadline and len(got) < want:
            for msgs in c.poll(timeout_ms=200).values():
                got += [m.value for m in msgs]
        return got
    except Exception as e:
        return type(e).__name__
    finally:
        c.close()


def test_no_acls_then_describe_then_read(broker_factory, pki):
    b = tls_broker(broker_factory, pki)
    admin = kpy_admin(b, pki)
    create_topics(admin, "orders")
    data = [b"a", b"b", b"c"]
    assert produce_errors(rdk(b, pki, pki["admin"]), "orders", data) == [0, 0, 0]
    p = pki["alice"].principal
    alice, alice_py = rdk(b, pki, pki["alice"]), kpy(b, pki, pki["alice"])
    w = Wire(b, pki, pki["alice"])

    # 1. no ACL at all: not even DESCRIBE, so the topic is "not authorized" in metadata and
    # every API answers 29/30 (never "unknown")
    assert w.metadata(["orders"]) == {"orders": TOPIC_AUTHZ}
    assert w.produce("orders", [b"x"]) == TOPIC_AUTHZ
    assert w.fetch("orders")[0] == TOPIC_AUTHZ
    assert w.find_coordinator("g-alice") == GROUP_AUTHZ
    assert w.join_group("g-alice") == GROUP_AUTHZ
    assert produce_errors(alice, "orders", [b"x"]) == [TOPIC_AUTHZ]
    assert consume_group(alice, "orders", "g-alice", 3) == GROUP_AUTHZ
    assert bounded(kpy_consume, alice_py, "orders", "g-alice") == "GroupAuthorizationFailedError"
    # kafka-python 2.0.2 turns a single-topic metadata error into a retry loop, so its
    # producer gives up waiting for metadata (it would against Apache Kafka too)
    assert bounded(kpy_produce_error, alice_py, "orders", max_block_ms=1500) == "KafkaTimeoutError"

    # 2. DESCRIBE on the topic and the group: metadata works, so the clients reach the
    # Produce / Fetch / JoinGroup checks, which need WRITE / READ / READ
    grant(admin, acl(p, "TOPIC", "orders", "DESCRIBE"), acl(p, "GROUP", "g-alice", "DESCRIBE"))
    assert w.metadata(["orders"]) == {"orders": 0}
    assert w.produce("orders", [b"x"]) == TOPIC_AUTHZ
    assert w.fetch("orders")[0] == TOPIC_AUTHZ
    assert w.find_coordinator("g-alice") == 0
    assert w.join_group("g-alice") == GROUP_AUTHZ
    assert produce_errors(alice, "orders", [b"x"]) == [TOPIC_AUTHZ]
    got, errors = consume_assigned(alice, "orders", 3)
    assert got == [] and TOPIC_AUTHZ in errors, errors
    assert bounded(kpy_produce_error, alice_py, "orders") == "TopicAuthorizationFailedError"
    assert bounded(kpy_consume, alice_py, "orders") == "TopicAuthorizationFailedError"

    # 3. READ on the topic and the group: a group consumer reads (both clients), produce
    # still fails
    grant(admin, acl(p, "TOPIC", "orders", "READ"), acl(p, "GROUP", "g-alice", "READ"))
    assert consume_group(alice, "orders", "g-alice", 3) == data
    assert bounded(kpy_consume, alice_py, "orders", "g-alice-py") == "GroupAuthorizationFailedError"
    grant(admin, acl(p, "GROUP", "g-alice-py", "READ"))
    assert bounded(kpy_consume, alice_py, "orders", "g-alice-py") == data
    assert w.fetch("orders")[0] == 0 and values_of(w.fetch("orders")[1]) == data
    assert w.produce("orders", [b"x"]) == TOPIC_AUTHZ
    assert produce_errors(alice, "orders", [b"x"]) == [TOPIC_AUTHZ]
    assert bounded(kpy_produce_error, alice_py, "orders") == "TopicAuthorizationFailedError"
    # nothing alice tried was written: the (one-partition) topic still ends after `data`.
    # Reading for a 4th record for 3 s also failed when a slow consumer had not even got the
    # first three by then; the high watermark says it without waiting.
    assert consume_assigned(rdk(b, pki, pki["admin"]), "orders", len(data))[0] == data
    c = Consumer(dict(rdk(b, pki, pki["admin"]), **{"group.id": "unused"}))
    try:
        assert c.get_watermark_offsets(TopicPartition("orders", 0), timeout=30,
                                       cached=False) == (0, len(data))
    finally:
        c.close()
    w.close()


def test_prefixed_deny_wildcards_super_users_and_metadata(broker_factory, pki):
    b = tls_broker(broker_factory, pki)
    admin = kpy_admin(b, pki)
    create_topics(admin, "team.x", "team.y", "teamx", "other", "shared")
    alice, bob, carol = pki["alice"], pki["bob"], pki["carol"]
    wa, wb, wc = Wire(b, pki, alice), Wire(b, pki, bob), Wire(b, pki, carol)

    # PREFIXED "team." covers team.x and team.y, not teamx or other
    grant(admin, acl(alice.principal, "TOPIC", "team.", "WRITE", pattern="PREFIXED"))
    assert [wa.produce(t, [b"v"]) for t in ("team.x", "team.y", "teamx", "other")] == [
        0, 0, TOPIC_AUTHZ, TOPIC_AUTHZ]
    assert produce_errors(rdk(b, pki, alice), "team.x", [b"rdk"]) == [0]
    assert produce_errors(rdk(b, pki, alice), "teamx", [b"rdk"]) == [TOPIC_AUTHZ]

    # all-topics metadata lists only what alice may describe (WRITE implies DESCRIBE)
    assert wa.metadata() == {"team.x": 0, "team.y": 0}
    # an unauthorized topic is never "unknown": a missing topic alice may not describe is
    # 29, a missing one under her prefix is honestly unknown
    assert wa.metadata(["ghost", "team.ghost", "other"]) == {
        "ghost": TOPIC_AUTHZ, "team.ghost": UNKNOWN_TOPIC, "other": TOPIC_AUTHZ}
    assert wa.produce("ghost", [b"v"]) == TOPIC_AUTHZ
    assert wa.fetch("ghost")[0] == TOPIC_AUTHZ
    assert wa.produce("team.ghost", [b"v"]) == UNKNOWN_TOPIC

    # LITERAL "*" is every topic; READ does not imply WRITE
    grant(admin, acl(bob.principal, "TOPIC", "*", "READ"))
    assert set(wb.metadata()) >= {"team.x", "team.y", "teamx", "other", "shared"}
    assert wb.fetch("teamx")[0] == 0 and wb.produce("teamx", [b"v"]) == TOPIC_AUTHZ

    # DENY wins over ALLOW: User:* may do ALL on "shared", alice is denied WRITE
    grant(admin, acl("User:*", "TOPIC", "shared", "ALL"),
          acl(alice.principal, "TOPIC", "shared", "WRITE", perm="DENY"))
    assert wa.produce("shared", [b"v"]) == TOPIC_AUTHZ
    assert wb.produce("shared", [b"bob"]) == 0 and wc.produce("shared", [b"carol"]) == 0
    assert produce_errors(rdk(b, pki, alice), "shared", [b"rdk"]) == [TOPIC_AUTHZ]
    # ... a DENY of WRITE leaves READ and DESCRIBE alone; a DENY of READ does not deny
    # DESCRIBE (only the operation itself or ALL is denied, as Kafka)
    assert wa.fetch("shared")[0] == 0
    grant(admin, acl(alice.principal, "TOPIC", "sha", "READ", perm="DENY", pattern="PREFIXED"))
    assert wa.fetch("shared")[0] == TOPIC_AUTHZ
    assert wa.metadata(["shared"]) == {"shared": 0}
    grant(admin, acl(alice.principal, "TOPIC", "shared", "ALL", perm="DENY"))
    assert wa.metadata(["shared"]) == {"shared": TOPIC_AUTHZ}
    assert "shared" not in wa.metadata()
    # a DENY for User:* beats bob's own ALLOW
    grant(admin, acl("User:*", "TOPIC", "team.", "WRITE", perm="DENY", pattern="PREFIXED"),
          acl(bob.principal, "TOPIC", "team.y", "WRITE"))
    assert wb.produce("team.y", [b"v"]) == TOPIC_AUTHZ and wa.produce("team.x", [b"v"]) == TOPIC_AUTHZ

    # host: an ALLOW for another address does not apply, one for 127.0.0.1 does
    grant(admin, acl(carol.principal, "TOPIC", "other", "WRITE", host="10.9.8.7"))
    assert wc.produce("other", [b"v"]) == TOPIC_AUTHZ
    grant(admin, acl(carol.principal, "TOPIC", "other", "WRITE", host="127.0.0.1"))
    assert wc.produce("other", [b"v"]) == 0
    grant(admin, acl(carol.principal, "TOPIC", "other", "WRITE", perm="DENY", host="127.0.0.1"))
    assert wc.produce("other", [b"v"]) == TOPIC_AUTHZ

    # a super user (second of two in super.users) does everything, DENY ACLs included
    grant(admin, acl("User:*", "TOPIC", "*", "ALL", perm="DENY"),
          acl("User:*", "GROUP", "*", "ALL", perm="DENY"),
          acl("User:*", "CLUSTER", "kafka-cluster", "ALL", perm="DENY"))
    assert wb.fetch("teamx")[0] == TOPIC_AUTHZ
    root = rdk(b, pki, pki["admin"])
    assert produce_errors(root, "other", [b"root"]) == [0]
    assert consume_group(root, "other", "g-root", 1) == [b"v"]
    create_topics(admin, "made-by-root")
    admin.delete_topics(["made-by-root"], timeout_ms=20000)
    wr = Wire(b, pki, pki["admin"])
    assert set(wr.metadata()) >= {"team.x", "team.y", "teamx", "other", "shared"}
    assert wr.init_producer_id() == 0
    described, _ = admin.describe_acls(acl_filter())
    assert len(described) == 14
    for w in (wa, wb, wc, wr):
        w.close()


def test_idempotent_producer_needs_write_on_some_topic(broker_factory, pki):
    b = tls_broker(broker_factory, pki)
    admin = kpy_admin(b, pki)
    create_topics(admin, "events", "audit.log")
    p = pki["alice"].principal
    w = Wire(b, pki, pki["alice"])
    idem = rdk(b, pki, pki["alice"], **{"enable.idempotence": True})
    assert w.init_producer_id() == CLUSTER_AUTHZ
    grant(admin, acl(p, "TOPIC", "events", "READ"), acl(p, "GROUP", "*", "ALL"))
    assert w.init_producer_id() == CLUSTER_AUTHZ  # READ is not WRITE
    # librdkafka: a fatal error, "Failed to acquire idempotence PID"
    with pytest.raises(KafkaException) as e:
        produce_errors(idem, "events", [b"i"], timeout=5)
    assert e.value.args[0].code() == CLUSTER_AUTHZ and e.value.args[0].fatal(), e.value
    # WRITE on one literal topic
    grant(admin, acl(p, "TOPIC", "events", "WRITE"))
    assert w.init_producer_id() == 0
    assert produce_errors(idem, "events", [b"i1", b"i2"]) == [0, 0]
    # ... or on a prefix
    revoke(admin, acl_filter(p, "TOPIC", "events", "WRITE"))
    assert w.init_producer_id() == CLUSTER_AUTHZ
    grant(admin, acl(p, "TOPIC", "audit.", "WRITE", pattern="PREFIXED"))
    assert w.init_producer_id() == 0
    assert produce_errors(idem, "audit.log", [b"i3"]) == [0]
    # ... unless a DENY covers every topic that prefix allows (a DENY prefix of it, as
    # Kafka's authorizeByResourceType); a DENY of one topic under the prefix does not
    grant(admin, acl(p, "TOPIC", "audit.log", "WRITE", perm="DENY"))
    assert w.init_producer_id() == 0
    grant(admin, acl(p, "TOPIC", "audit", "WRITE", perm="DENY", pattern="PREFIXED"))
    assert w.init_producer_id() == CLUSTER_AUTHZ
    revoke(admin, acl_filter(p, "TOPIC", None, "WRITE", "DENY"))
    assert w.init_producer_id() == 0
    # a DENY of WRITE on every topic rules it out
    grant(admin, acl(p, "TOPIC", "*", "WRITE", perm="DENY"))
    assert w.init_producer_id() == CLUSTER_AUTHZ
    # IDEMPOTENT_WRITE on the cluster is the other way in (Kafka's pre-2.8 requirement)
    grant(admin, acl(p, "CLUSTER", "kafka-cluster", "IDEMPOTENT_WRITE"))
    assert w.init_producer_id() == 0
    w.close()


def test_allow_everyone_if_no_acl_found(broker_factory, pki):
    """allow.everyone.if.no.acl.found=true: resources without ACLs are open to everyone
    (idempotent producers included, as Kafka's authorizeByResourceType asks about a name no
    ACL applies to), resources with ACLs follow them."""
    b = tls_broker(broker_factory, pki, **{"allow.everyone.if.no.acl.found": "true"})
    admin = kpy_admin(b, pki)
    create_topics(admin, "open", "closed")
    # ACLs on one topic and on the cluster (so IDEMPOTENT_WRITE on the cluster is not open)
    grant(admin, acl(pki["bob"].principal, "TOPIC", "closed", "ALL"),
          acl(pki["bob"].principal, "CLUSTER", "kafka-cluster", "DESCRIBE"))
    alice = rdk(b, pki, pki["alice"])
    w = Wire(b, pki, pki["alice"])
    # the internal topic has no ACL either
    assert w.metadata() == {"open": 0, "__consumer_offsets": 0}
    assert w.metadata(["open", "closed"]) == {"open": 0, "closed": TOPIC_AUTHZ}
    assert w.produce("closed", [b"v"]) == TOPIC_AUTHZ
    assert w.init_producer_id() == 0
    assert produce_errors(dict(alice, **{"enable.idempotence": True}), "open", [b"i"]) == [0]
    assert consume_group(alice, "open", "any-group", 1) == [b"i"]
    # once an ACL covers every topic, "no ACL found" is over for alice
    grant(admin, acl(pki["bob"].principal, "TOPIC", "*", "READ"))
    assert w.produce("open", [b"v"]) == TOPIC_AUTHZ
    assert w.init_producer_id() == CLUSTER_AUTHZ
    w.close()


def test_acl_change_applies_to_the_next_request_on_an_open_connection(broker_factory, pki):
    b = tls_broker(broker_factory, pki)
    admin = kpy_admin(b, pki)
    create_topics(admin, "live")
    p = pki["alice"].principal
    grant(admin, acl(p, "TOPIC", "live", "WRITE"), acl(p, "TOPIC", "live", "READ"))
    w = Wire(b, pki, pki["alice"])
    producer = Producer(rdk(b, pki, pki["alice"], **{"message.timeout.ms": 10000,
                                                     "linger.ms": 0}))
    results = []

    def send(value):
        producer.produce("live", value, on_delivery=lambda err, msg: results.append(
            err.code() if err else 0))
        assert producer.flush(15) == 0
        return results.pop()

    for round_ in range(2):
        assert w.produce("live", [b"raw-%d" % round_]) == 0 and w.fetch("live")[0] == 0
        if round_ == 0:
            assert send(b"rdk-0") == 0
        assert revoke(admin, acl_filter(p, "TOPIC", "live", "WRITE")) == 1
        # the very next request on each open connection is refused
        assert w.produce("live", [b"raw-refused"]) == TOPIC_AUTHZ
        if round_ == 0:  # (librdkafka then keeps the topic failed until its next refresh)
            assert send(b"rdk-refused") == TOPIC_AUTHZ
        assert w.fetch("live")[0] == 0  # READ is still there
        assert revoke(admin, acl_filter(p, "TOPIC", "live", "READ")) == 1
        assert w.fetch("live")[0] == TOPIC_AUTHZ
        # and a grant applies at once too
        grant(admin, acl(p, "TOPIC", "live", "WRITE"), acl(p, "TOPIC", "live", "READ"))
    assert w.produce("live", [b"raw-2"]) == 0
    err, records = w.fetch("live")
    assert err == 0 and values_of(records) == [b"raw-0", b"rdk-0", b"raw-1", b"raw-2"]
    w.close()


# --------------------------------------------------------------------------- ACL administration

ALICE = "User:CN=alice,OU=team,O=kpool"
BOB = "User:CN=bob,OU=team,O=kpool"
CAROL = "User:CN=carol,OU=team,O=kpool"

# (resource type, name, pattern, principal, host, operation, permission)
BINDINGS = {
    "A1": ("TOPIC", "orders", "LITERAL", ALICE, "*", "READ", "ALLOW"),
    "A2": ("TOPIC", "orders", "LITERAL", ALICE, "127.0.0.1", "WRITE", "ALLOW"),
    "A3": ("TOPIC", "*", "LITERAL", BOB, "*", "READ", "ALLOW"),
    "A4": ("TOPIC", "ord", "PREFIXED", BOB, "*", "DESCRIBE", "ALLOW"),
    "A5": ("TOPIC", "orders.eu", "LITERAL", CAROL, "*", "WRITE", "DENY"),
    "A6": ("GROUP", "g1", "LITERAL", ALICE, "*", "READ", "ALLOW"),
    "A7": ("CLUSTER", "kafka-cluster", "LITERAL", ALICE, "*", "IDEMPOTENT_WRITE", "ALLOW"),
    "A8": ("TOPIC", "orders.e", "PREFIXED", "User:*", "*", "ALL", "DENY"),
}

# filter (resource type, name, pattern, principal, host, operation, permission; None = any)
# -> the bindings it matches, as Kafka's AclBindingFilter
FILTERS = [
    (("ANY", None, "ANY", None, None, "ANY", "ANY"), "A1 A2 A3 A4 A5 A6 A7 A8"),
    # MATCH with a name: literal exact, literal '*', and prefixes of the name
    (("TOPIC", "orders", "MATCH", None, None, "ANY", "ANY"), "A1 A2 A3 A4"),
    (("TOPIC", "orders.eu", "MATCH", None, None, "ANY", "ANY"), "A3 A4 A5 A8"),
    (("TOPIC", "x", "MATCH", None, None, "ANY", "ANY"), "A3"),
    (("ANY", None, "MATCH", None, None, "ANY", "ANY"), "A1 A2 A3 A4 A5 A6 A7 A8"),
    # ANY with a name: that exact name, whatever the pattern type
    (("TOPIC", "ord", "ANY", None, None, "ANY", "ANY"), "A4"),
    (("ANY", "orders", "ANY", None, None, "ANY", "ANY"), "A1 A2"),
    # LITERAL / PREFIXED: exact pattern type (and name when given)
    (("TOPIC", "orders", "LITERAL", None, None, "ANY", "ANY"), "A1 A2"),
    (("TOPIC", "*", "LITERAL", None, None, "ANY", "ANY"), "A3"),
    (("TOPIC", None, "PREFIXED", None, None, "ANY", "ANY"), "A4 A8"),
    (("TOPIC", "orders", "PREFIXED", None, None, "ANY", "ANY"), ""),
    # resource type, principal, host, operation and permission filters (exact)
    (("GROUP", None, "ANY", None, None, "ANY", "ANY"), "A6"),
    (("CLUSTER", None, "ANY", None, None, "ANY", "ANY"), "A7"),
    (("ANY", None, "ANY", ALICE, None, "ANY", "ANY"), "A1 A2 A6 A7"),
    (("ANY", None, "ANY", "User:*", None, "ANY", "ANY"), "A8"),
    (("ANY", None, "ANY", None, "127.0.0.1", "ANY", "ANY"), "A2"),
    (("ANY", None, "ANY", None, None, "WRITE", "ANY"), "A2 A5"),
    (("ANY", None, "ANY", None, None, "ALL", "ANY"), "A8"),
    (("ANY", None, "ANY", None, None, "ANY", "DENY"), "A5 A8"),
    (("TOPIC", "orders", "MATCH", ALICE, "*", "READ", "ALLOW"), "A1"),
]


def kpy_binding(t):
    rtype, name, pattern, principal, host, op, perm = t
    return acl(principal, rtype, name, op, perm, pattern, host)


def kpy_filter(t):
    rtype, name, pattern, principal, host, op, perm = t
    return acl_filter(principal, rtype, name, op, perm, pattern, host)


def as_tuple(a):
    """A kafka-python ACL as a BINDINGS tuple."""
    rp = a.resource_pattern
    return (rp.resource_type.name, rp.resource_name, rp.pattern_type.name, a.principal, a.host,
            a.operation.name, a.permission_type.name)


def expected(keys):
    return sorted(BINDINGS[k] for k in keys.split())


def test_acl_admin_with_kafka_python(broker_factory, pki):
    b = tls_broker(broker_factory, pki)
    admin = kpy_admin(b, pki)
    grant(admin, *[kpy_binding(t) for t in BINDINGS.values()])
    for f, keys in FILTERS:
        got, err = admin.describe_acls(kpy_filter(f))
        assert err.errno == 0 and sorted(map(as_tuple, got)) == expected(keys), f
    # creating an existing binding again succeeds and changes nothing
    grant(admin, kpy_binding(BINDINGS["A1"]))
    assert len(admin.describe_acls(acl_filter())[0]) == len(BINDINGS)
    # invalid bindings fail one by one (INVALID_REQUEST), valid ones in the same request pass
    bad = [acl("alice", "TOPIC", "t", "READ"),                    # principal without a type
           acl(ALICE, "CLUSTER", "my-cluster", "ALTER"),          # the cluster is kafka-cluster
           acl(ALICE, "CLUSTER", "kafka-cluster", "ALTER", pattern="PREFIXED"),
           acl(ALICE, "TOPIC", "", "READ"),                       # empty name
           acl(ALICE, "TOPIC", "t", "READ", host="")]             # empty host
    good = acl(CAROL, "TOPIC", "t", "READ")
    res = admin.create_acls(bad[:2] + [good] + bad[2:])
    assert res["succeeded"] == [good]
    # (kafka-python reports error classes)
    assert [(a, e.__name__) for a, e in res["failed"]] == [
        (a, "InvalidRequestError") for a in bad]
    assert len(admin.describe_acls(acl_filter())[0]) == len(BINDINGS) + 1
    # delete: each filter reports what it removed; a filter matching nothing is no error
    out = admin.delete_acls([kpy_filter(FILTERS[1][0]), acl_filter(CAROL, "TOPIC", "t"),
                             acl_filter("User:nobody")])
    assert [sorted(as_tuple(a) for a, _ in matches) for _, matches, _ in out] == [
        expected("A1 A2 A3 A4"), [("TOPIC", "t", "LITERAL", CAROL, "*", "READ", "ALLOW")], []]
    assert all(err.errno == 0 for _, matches, _ in out for _, err in matches)
    got, _ = admin.describe_acls(acl_filter())
    assert sorted(map(as_tuple, got)) == expected("A5 A6 A7 A8")
    # a principal without DESCRIBE / ALTER on the cluster may not list or change ACLs
    from kafka.errors import ClusterAuthorizationFailedError
    mortal = kpy_admin(b, pki, pki["alice"])
    with pytest.raises(ClusterAuthorizationFailedError):
        mortal.describe_acls(acl_filter())
    res = mortal.create_acls([acl(ALICE, "TOPIC", "*", "ALL")])
    assert [e.__name__ for _, e in res["failed"]] == ["ClusterAuthorizationFailedError"]
    assert [e.errno for _, _, e in mortal.delete_acls([acl_filter()])] == [CLUSTER_AUTHZ]
    # DESCRIBE on the cluster lists, ALTER changes (and implies DESCRIBE)
    grant(admin, acl(ALICE, "CLUSTER", "kafka-cluster", "DESCRIBE"))
    assert len(mortal.describe_acls(acl_filter())[0]) == 5
    assert [e.errno for _, _, e in mortal.delete_acls([acl_filter()])] == [CLUSTER_AUTHZ]
    grant(admin, acl(ALICE, "CLUSTER", "kafka-cluster", "ALTER"))
    grant(mortal, acl(BOB, "GROUP", "g2", "READ"))
    assert len(admin.describe_acls(acl_filter())[0]) == 7
    mortal.close()
    admin.close()


def tool_args(t):
    return ["-" if v is None else v for v in t]


def run_tool(acl_tool, b, pki, cmd, *tuples, ident="admin", expect_rc=0):
    """Runs c/acl_tool against b as ident; returns its output lines split on tabs."""
    args = [acl_tool]
    if ident is not None:
        for k, v in rdk(b, pki, pki[ident]).items():
            if k != "bootstrap.servers":
                args += ["-X", "%s=%s" % (k, v)]
    args += [b.bootstrap, cmd]
    for t in tuples:
        args += tool_args(t)
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert r.returncode == expect_rc, (args, r.returncode, r.stdout, r.stderr)
    return [l.split("\t") for l in r.stdout.splitlines()]


def tool_describe(acl_tool, b, pki, f):
    lines = run_tool(acl_tool, b, pki, "describe", f)
    assert all(l[0] == "acl" for l in lines), lines
    return sorted(tuple(l[1:]) for l in lines)


def test_acl_admin_with_librdkafka_filters_and_restart(broker_factory, pki, acl_tool):
    b = tls_broker(broker_factory, pki)
    out = run_tool(acl_tool, b, pki, "create", *BINDINGS.values())
    assert out == [["created", str(i)] for i in range(len(BINDINGS))]
    for f, keys in FILTERS:
        assert tool_describe(acl_tool, b, pki, f) == expected(keys), f
    # per-binding errors in a create: the invalid one fails, the others are created
    out = run_tool(acl_tool, b, pki, "create",
                   ("TOPIC", "t", "LITERAL", CAROL, "*", "READ", "ALLOW"),
                   ("CLUSTER", "kafka-cluster", "PREFIXED", CAROL, "*", "ALTER", "ALLOW"),
                   expect_rc=2)
    assert out[0] == ["created", "0"] and out[1][:3] == ["error", "1", "42"], out
    # delete: several filters at once, each with the bindings it removed
    out = run_tool(acl_tool, b, pki, "delete",
                   ("TOPIC", "orders.eu", "MATCH", None, None, "ANY", "DENY"),
                   ("ANY", None, "ANY", CAROL, None, "READ", "ANY"),
                   ("GROUP", "nothing", "LITERAL", None, None, "ANY", "ANY"))
    assert [l[:4] for l in out if l[0] == "filter"] == [
        ["filter", "0", "ok", "2"], ["filter", "1", "ok", "1"], ["filter", "2", "ok", "0"]]
    assert sorted(tuple(l[2:]) for l in out if l[0] == "deleted" and l[1] == "0") == \
        expected("A5 A8")
    left = expected("A1 A2 A3 A4 A6 A7")
    assert tool_describe(acl_tool, b, pki, FILTERS[0][0]) == left

    # ACLs survive a restart (meta/acls.journal), and so do their effects
    journal = os.path.join(b.data_dir, "meta", "acls.journal")
    assert os.path.getsize(journal) > 0
    b.restart()
    assert tool_describe(acl_tool, b, pki, FILTERS[0][0]) == left
    w = Wire(b, pki, pki["bob"])
    assert w.metadata(["orders", "nope"]) == {"orders": UNKNOWN_TOPIC, "nope": UNKNOWN_TOPIC}
    w.close()
    w = Wire(b, pki, pki["carol"])
    assert w.metadata(["orders"]) == {"orders": TOPIC_AUTHZ}
    w.close()
    run_tool(acl_tool, b, pki, "delete", ("ANY", None, "ANY", BOB, None, "ANY", "ANY"))
    b.restart()
    assert tool_describe(acl_tool, b, pki, FILTERS[0][0]) == expected("A1 A2 A6 A7")
    # not a super user: CLUSTER_AUTHORIZATION_FAILED for changes (librdkafka 2.0.2 drops
    # the error code of a DescribeAcls response: an empty list, see the kafka-python test)
    out = run_tool(acl_tool, b, pki, "delete", FILTERS[0][0], ident="bob", expect_rc=2)
    assert out[0][:3] == ["error", "0", str(CLUSTER_AUTHZ)], out
    assert run_tool(acl_tool, b, pki, "describe", FILTERS[0][0], ident="bob") == []
    assert tool_describe(acl_tool, b, pki, FILTERS[0][0]) == expected("A1 A2 A6 A7")


def test_authorizer_disabled_answers_security_disabled(broker_factory, pki, acl_tool):
    from kafka.admin import KafkaAdminClient
    from kafka.errors import SecurityDisabledError
    b = broker_factory()  # plaintext, authorizer off (the default of a bare broker)
    # raw DescribeAcls v0 and v1
    s = kwire.connect(b.port)
    for v in (0, 1):
        body = (kwire.i8(1) + kwire.string(None) + (kwire.i8(1) if v else b"") +
                kwire.string(None) + kwire.string(None) + kwire.i8(1) + kwire.i8(1))
        s.sendall(kwire.request(29, v, 7, body))
        r = Rd(kwire.recv_frame(s))
        assert r.i32() == 7 and r.i32() == 0 and r.i16() == SECURITY_DISABLED
        assert r.str() == "No Authorizer is configured on the broker" and r.i32() == 0
    s.close()
    # librdkafka drops DescribeAcls error codes (2.0.2): no bindings, and per-result errors
    # for CreateAcls / DeleteAcls
    assert run_tool(acl_tool, b, pki, "describe", FILTERS[0][0], ident=None) == []
    out = run_tool(acl_tool, b, pki, "create", BINDINGS["A1"], BINDINGS["A2"], ident=None,
                   expect_rc=2)
    assert [l[:3] for l in out] == [["error", "0", "54"], ["error", "1", "54"]], out
    out = run_tool(acl_tool, b, pki, "delete", FILTERS[0][0], ident=None, expect_rc=2)
    assert [l[:3] for l in out] == [["error", "0", "54"]], out
    admin = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=20000)
    with pytest.raises(SecurityDisabledError):
        admin.describe_acls(acl_filter())
    res = admin.create_acls([kpy_binding(BINDINGS["A1"])])
    assert [e.__name__ for _, e in res["failed"]] == ["SecurityDisabledError"]
    assert [e.errno for _, _, e in admin.delete_acls([acl_filter()])] == [SECURITY_DISABLED]
    admin.close()
    # and everything is allowed without it
    kwire.create_topic(b.bootstrap, "free")
    s = kwire.connect(b.port)
    assert kwire.produce_raw(s, "free", 0, [b"v"])[0] == 0
    s.close()


# --------------------------------------------------------------------------- principals

def test_principal_mapping_rules(broker_factory, pki):
    rules = ("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, "
             "RULE:^CN=(.*?),OU=team,O=kpool$/$1@team/U")
    b = tls_broker(broker_factory, pki, **{"ssl.principal.mapping.rules": rules,
                                           "super.users": "User:ALICE@TEAM"})
    admin = kpy_admin(b, pki, pki["alice"])  # ALICE@TEAM is the super user here
    create_topics(admin, "svc-topic")
    # Svc-One -> svc-one (/L); the DN itself is not the principal any more
    grant(admin, acl(pki["svc"].principal, "TOPIC", "svc-topic", "WRITE"))
    w = Wire(b, pki, pki["svc"])
    assert w.produce("svc-topic", [b"v"]) == TOPIC_AUTHZ
    grant(admin, acl("User:svc-one", "TOPIC", "svc-topic", "WRITE"))
    assert w.produce("svc-topic", [b"v"]) == 0
    w.close()
    assert produce_errors(rdk(b, pki, pki["svc"]), "svc-topic", [b"rdk"]) == [0]
    # /U, with the RFC 2253 escapes of the subject kept in the name
    w = Wire(b, pki, pki["comma"])
    assert w.produce("svc-topic", [b"v"]) == TOPIC_AUTHZ
    grant(admin, acl(r"User:ACME\, INC\+CO@TEAM", "TOPIC", "svc-topic", "WRITE"))
    assert w.produce("svc-topic", [b"v"]) == 0
    w.close()
    # no rule matches CN=admin,OU=ops,O=kpool (and there is no DEFAULT): refused, logged
    out = handshake_outcome(b, pki, pki["admin"], None)
    assert out != "answered", out
    wait_log(b, r"refused 127\.0\.0\.1:\d+: no ssl\.principal\.mapping\.rules rule matches "
                r"'CN=admin,OU=ops,O=kpool'")
    admin.close()


def test_rfc2253_principal_and_anonymous_with_client_auth_requested(broker_factory, pki):
    b = tls_broker(broker_factory, pki, client_auth="requested")
    admin = kpy_admin(b, pki)
    create_topics(admin, "t")
    comma = pki["comma"]
    assert comma.principal == r"User:CN=acme\, inc\+co,OU=team,O=kpool"
    w = Wire(b, pki, comma)
    grant(admin, acl("User:CN=acme, inc+co,OU=team,O=kpool", "TOPIC", "t", "WRITE"))
    assert w.produce("t", [b"v"]) == TOPIC_AUTHZ  # the unescaped form is another name
    grant(admin, acl(comma.principal, "TOPIC", "t", "WRITE"))
    assert w.produce("t", [b"v"]) == 0
    # without a certificate the connection is accepted as User:ANONYMOUS
    anon = Wire(b, pki, None)
    assert anon.metadata(["t"]) == {"t": TOPIC_AUTHZ}
    grant(admin, acl("User:ANONYMOUS", "TOPIC", "t", "READ"))
    assert anon.metadata(["t"]) == {"t": 0} and anon.fetch("t")[0] == 0
    assert anon.produce("t", [b"v"]) == TOPIC_AUTHZ
    # a certificate that is presented must still be valid
    for name, pattern in REFUSALS[1:]:
        assert handshake_outcome(b, pki, pki[name], None) != "answered"
        wait_log(b, pattern)
    anon.close()
    w.close()


# --------------------------------------------------------------------------- TLS data path

def test_50k_messages_lz4_over_tls_byte_identical(broker_factory, pki):
    b = tls_broker(broker_factory, pki)
    admin = kpy_admin(b, pki)
    create_topics(admin, "bulk", partitions=3)
    rnd = random.Random(50000)
    filler = bytes(range(256)) * 64
    msgs = []
    for i in range(50000):
        size = rnd.choice((0, 1, 7, 64, 300, 700, 1500, 4000))
        head = rnd.randbytes(min(size, 24))  # part random, part compressible
        msgs.append((b"k%d" % i, (head + filler[i % 256:i % 256 + size - len(head)])[:size]))
    conf = rdk(b, pki, pki["admin"])
    p = Producer(dict(conf, **{"compression.type": "lz4", "linger.ms": 20, "acks": "all",
                               "enable.idempotence": True, "queue.buffering.max.messages": 100000,
                               "batch.size": 256 * 1024}))
    failed = []
    for i, (k, v) in enumerate(msgs):
        p.produce("bulk", v, k, partition=i % 3,
                  on_delivery=lambda err, m: err and failed.append(err))
        if i % 5000 == 0:
            p.poll(0)
    assert p.flush(60) == 0 and not failed, failed[:3]
    c = Consumer(dict(conf, **{"group.id": "bulk-check", "enable.auto.commit": False,
                               "enable.partition.eof": True, "fetch.wait.max.ms": 50}))
    c.assign([TopicPartition("bulk", part, 0) for part in range(3)])
    got = {0: [], 1: [], 2: []}
    eof = set()
    deadline = time.time() + 60
    while len(eof) < 3:
        assert time.time() < deadline, {k: len(v) for k, v in got.items()}
        for m in c.consume(1000, 0.5):
            if m.error():
                assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                if len(got[m.partition()]) == len(range(m.partition(), 50000, 3)):
                    eof.add(m.partition())
                continue
            assert m.offset() == len(got[m.partition()])
            got[m.partition()].append((m.key(), m.value() or b""))
    c.close()
    for part in range(3):
        want = msgs[part::3]
        assert len(got[part]) == len(want)
        bad = [i for i, (x, y) in enumerate(zip(got[part], want)) if x != y]
        assert not bad, "partition %d: %d records differ, first at %d" % (part, len(bad), bad[0])


def test_tls_file_stage_is_not_reused_for_another_file(broker_factory, pki):
    """conn_tls.c stages file bytes per connection, keyed by (fd, position). When a segment
    file is closed (topic deleted, retention, compaction) the next file opened usually gets
    the same descriptor number; it must not be served from the stale stage. One TLS
    connection fetches a topic, the topic is deleted, another one with the same sizes but
    other bytes is created (its segment reuses the descriptor) and fetched."""
    b = tls_broker(broker_factory, pki)
    admin = kpy_admin(b, pki)
    w = Wire(b, pki, pki["admin"])
    for round_ in range(4):
        name = "stage-%d" % round_
        create_topics(admin, name)
        vals = [("%s:%04d:" % (name, j)).encode().ljust(200, b".") for j in range(20)]
        assert w.produce(name, vals) == 0
        err, records = w.fetch(name)
        assert err == 0 and values_of(records) == vals, (name, values_of(records)[:1])
        admin.delete_topics([name], timeout_ms=20000)
        time.sleep(0.1)  # the deleted topic's segment closes once nothing reads it
    w.close()


def test_tls_requests_buffered_by_openssl_are_served_after_a_pause(broker_factory, pki):
    """A TLS record the broker reads only partly (its receive chunk is nearly full) while
    the connection pauses (KP_CONN_INFLIGHT_MAX = 256 requests in flight: parked long-poll
    fetches) leaves the rest of the record decrypted inside OpenSSL. After the fetches
    complete and reading resumes, those requests must be served. Geometry: 255 fetches of
    211 bytes (53805 bytes of the 64 KiB chunk), then one record of 77 fetches of which only
    the first 11731 bytes fit."""
    b = tls_broker(broker_factory, pki)
    create_topics(kpy_admin(b, pki), "idle")
    w = Wire(b, pki, pki["admin"])

    def fetch(corr):
        body = kwire.body_fetch(4, "idle", 0, 0, max_wait=500, min_bytes=1)
        return kwire.request(API_FETCH, 4, corr, body, client_id="c" * 150)

    first = b"".join(fetch(i) for i in range(1, 256))
    assert len(first) == 53805
    for i in range(0, len(first), 16384):  # one TLS record per send
        w.s.send(first[i:i + 16384])
    time.sleep(0.3)
    record = b"".join(fetch(i) for i in range(256, 256 + 77))
    assert len(record) <= 16384
    w.s.send(record)
    got = []
    try:
        while len(got) < 255 + 77:
            got.append(struct.unpack(">i", kwire.recv_frame(w.s, timeout=20)[:4])[0])
    except (socket.timeout, TimeoutError):
        pass
    w.close()
    assert got == list(range(1, 256 + 77)), "%d of %d responses" % (len(got), 255 + 77)
