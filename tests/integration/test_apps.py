"""Applications get Kafka credentials (issue 7): deploy -> service user, certificate, Secret;
real clients connect with nothing but that Secret; redeploys, the janitor, protected and
expiring AivenApplications, ACL changes without a redeploy, failures, Kafka Streams apps,
deletion, and where secrets may (not) be seen.

One `kpool up` per module (fixture `up`): a temp data dir, a --port-offset K whose ports
(Kafka 9093+K, API 8080+K, registry 8081+K, metrics 9600+K) were free, $KPOOL_CONFIG in a
temp dir, control.resync.interval.ms=500 and control.janitor.grace.ms=1500 so cleanup is
observable in seconds. Stopped with SIGINT at teardown: exit 0 and no sanitizer report.
Each test uses its own namespace (team), except the team-a scenario of issue 7 that the
fixture `team_a` deploys once (topic `orders`, apps orders-api, billing, intruder and the
latency probes lat-1..lat-5) and several tests read.

Clients see only what a deployed application sees: the Secret's `data`, written to files
(kafka.crt, kafka.key, ca.crt from KAFKA_CERTIFICATE / KAFKA_PRIVATE_KEY / KAFKA_CA; the
PKCS#12 stores; KAFKA_BROKERS). confluent-kafka-python (librdkafka) and kafkajs (node,
js/apps_client.js) connect with them. The pool's own state is checked only where a client
cannot see it, as the super user (D/pki/admin.*). Raw Metadata requests (kwire over TLS)
show the broker's exact error codes where a client might blur them.

Acceptance criteria covered (issue 7):
  1. Topic + Applications orders-api, billing, intruder (and lat-1..lat-5) in team-a: each
     Secret exists within 1 s of `kpool apply`; deploy -> usable-credentials latency (secret
     present AND a successful produce/metadata with it) printed and written as JSON
     (median, max);
  2. with the Secret's PEM data only, confluent-kafka and kafkajs: orders-api produces to
     team-a.orders, billing consumes it in a consumer group, billing's produce and everything
     intruder does are TOPIC_AUTHORIZATION_FAILED; the short name `orders` is refused too
     (Kafka's authorize-before-existence rule: TOPIC_AUTHORIZATION_FAILED for a principal
     without DESCRIBE, UNKNOWN_TOPIC_OR_PARTITION only for one that may describe it);
  3. keystore (key + cert) and truststore (CA) open with openssl and
     KAFKA_CREDSTORE_PASSWORD (not with another password); librdkafka produces with
     ssl.keystore.location/password;
  4. redeploy (spec.image changed): new secret name, service user ..._2, works at once, the
     old secret keeps working during the grace period and is deleted after it, then the old
     certificate is refused; a protected AivenApplication keeps its previous secret beyond the
     grace; past spec.expiresAt it is deleted with its secrets and its users revoked; a
     change that keeps the secretName (new generation, same Secret rewritten) revokes the
     replaced user after the grace period;
  5. an ACL entry added to another Topic grants billing access without a redeploy; removing
     it revokes the access;
  6. (last) team tokens: team-b gets 403 for team-a's secret and list, team-a and the admin
     read it; the SQLite store (db + WAL + shm) holds no private key and no store password,
     master.key is 0600, the kpool up log never shows key material or passwords;
  7. unknown pool -> AivenApplication RolloutFailed, reason ValidatePool, message listing the
     pools; fixed -> RolloutComplete; streams: true -> a Stream, KAFKA_STREAMS_APPLICATION_ID
     <ns>.<app>_stream_, and the app creates and uses <ns>.<app>_stream_x itself;
  8. deleting the Application removes its AivenApplication and secrets and revokes the user;
     re-creating it yields working credentials while the old certificate stays refused.
"""
import base64
import datetime
import json
import os
import random
import socket
import ssl
import statistics
import struct
import subprocess
import time

import pytest
import yaml
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import harness
import kwire
from harness.pki import openssl_pkcs12
# test_apps.KPOOL_BIN: tests of branches not merged yet (txn) use it; new code: harness
from harness import KPOOL_BIN  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))
JS_CLIENT = os.path.join(HERE, "js", "apps_client.js")
RESYNC_MS = 500
GRACE_MS = 1500
PROTECTED_EXPIRY_S = 20  # expiresAt of the protected AivenApplication, after its creation

TOPICS = "/apis/kafka.nais.io/v1/namespaces/%s/topics"
STREAMS = "/apis/kafka.nais.io/v1/namespaces/%s/streams"
AAPPS = "/apis/aiven.nais.io/v1/namespaces/%s/aivenapplications"
APPS = "/apis/nais.io/v1alpha1/namespaces/%s/applications"
SECRETS = "/api/v1/namespaces/%s/secrets"

# Kafka error codes (raw Metadata checks)
NONE, UNKNOWN_TOPIC_OR_PARTITION, TOPIC_AUTHORIZATION_FAILED = 0, 3, 29
AUTHZ = "TOPIC_AUTHORIZATION_FAILED"


# --------------------------------------------------------------------------- kpool up

class KpoolUp(harness.KpoolUp):
    """A `kpool up` process (pool `dev` + control plane) and the helpers tests use on it."""

    remove_on_stop = True

    def __init__(self, extra_args=()):
        # extra_args: more `kpool up` arguments (a later --set wins)
        super().__init__(sets=["control.resync.interval.ms=%d" % RESYNC_MS,
                               "control.janitor.grace.ms=%d" % GRACE_MS],
                         args=extra_args, prefix="kpool-itapps-")
        self.seen = []  # every Creds a test materialized (for the at-rest/log checks)
        self._ncreds = 0

    @property
    def metrics(self):
        return self.metrics_url

    def get(self, path, ns, name, token=None):
        code, _, obj = self.http("GET", (path % ns) + "/" + name, token=token or self.token)
        assert code in (200, 404), (code, obj)
        return obj if code == 200 else None

    def secrets_of(self, ns, app):
        code, _, lst = self.http("GET", (SECRETS % ns) + "?labelSelector=app=" + app,
                                 token=self.token)
        assert code == 200, (code, lst)
        return lst["items"]

    def apply(self, tmp_path, *docs):
        """`kpool apply -f` of the documents (one multi-document YAML file)."""
        f = tmp_path / ("apply-%d.yaml" % random.randrange(1 << 30))
        f.write_text(yaml.safe_dump_all(list(docs), sort_keys=False))
        return self.kpool("apply", "-f", str(f))

    def wait(self, what, fn, timeout=15, interval=0.02):
        """Polls fn() until it returns something true; returns it (AssertionError on time
        out, with the last value and the log's tail)."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = fn()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError("%s: not within %ss; last: %s\nlog tail:\n%s" % (
            what, timeout, json.dumps(last, indent=1, default=str)[:3000], self.log()[-3000:]))

    def topic_ready(self, ns, name, timeout=60):
        def ok():
            t = self.get(TOPICS, ns, name)
            st = (t or {}).get("status") or {}
            return (t if st.get("synchronizationState") == "RolloutComplete"
                    and st.get("observedGeneration") == t["metadata"]["generation"] else None)
        return self.wait("topic %s/%s RolloutComplete" % (ns, name), ok, timeout)

    def aivenapp_state(self, ns, name):
        """(AivenApplication, its state) once its status is for its current generation."""
        a = self.get(AAPPS, ns, name)
        st = (a or {}).get("status") or {}
        if not a or st.get("observedGeneration") != a["metadata"]["generation"]:
            return a, None
        return a, st.get("synchronizationState")

    def app_secret(self, ns, app, not_name=None, timeout=60):
        """The Secret an Application's AivenApplication rolled out (its current secretName,
        RolloutComplete, other than not_name)."""
        def ready():
            a, state = self.aivenapp_state(ns, app)
            if state != "RolloutComplete":
                return None
            name = a["status"].get("synchronizationSecretName")
            if name != a["spec"]["kafka"]["secretName"] or name == not_name:
                return None
            return self.get(SECRETS, ns, name)
        return self.wait("secret of %s/%s" % (ns, app), ready, timeout)

    def creds(self, secret):
        self._ncreds += 1
        c = Creds(secret, os.path.join(self.tmp, "creds-%d" % self._ncreds))
        self.seen.append(c)
        return c


class Creds:
    """An application's credentials, as a pod gets them: the Secret's data written to files."""

    def __init__(self, secret, directory):
        self.secret = secret
        self.name = secret["metadata"]["name"]
        self.user = secret["metadata"]["annotations"]["kpool.dev/service-user"]
        self.data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
        self.dir = directory
        os.makedirs(directory, mode=0o700)
        files = {"kafka.crt": "KAFKA_CERTIFICATE", "kafka.key": "KAFKA_PRIVATE_KEY",
                 "ca.crt": "KAFKA_CA", "brokers": "KAFKA_BROKERS",
                 "client.keystore.p12": "client.keystore.p12",
                 "client.truststore.jks": "client.truststore.jks"}
        for f, key in files.items():
            fd = os.open(os.path.join(directory, f), os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(self.data[key])
        self.brokers = self.data["KAFKA_BROKERS"].decode()
        self.password = self.data["KAFKA_CREDSTORE_PASSWORD"].decode()

    def path(self, f):
        return os.path.join(self.dir, f)

    def files(self):
        return self.path("ca.crt"), self.path("kafka.crt"), self.path("kafka.key")

    def conf(self):
        """librdkafka's PEM configuration."""
        return {"bootstrap.servers": self.brokers, "security.protocol": "ssl",
                "ssl.ca.location": self.path("ca.crt"),
                "ssl.certificate.location": self.path("kafka.crt"),
                "ssl.key.location": self.path("kafka.key")}

    def keystore_conf(self, password=None):
        """librdkafka with the PKCS#12 keystore instead of the PEM key and certificate."""
        return {"bootstrap.servers": self.brokers, "security.protocol": "ssl",
                "ssl.ca.location": self.path("ca.crt"),
                "ssl.keystore.location": self.path("client.keystore.p12"),
                "ssl.keystore.password": self.password if password is None else password}


# --------------------------------------------------------------------------- clients

def produce(conf, topic, values, timeout=15, idempotent=False):
    """Produces values with librdkafka (acks=all); None on success, else the first error's
    name (a delivery error, or the fatal error an idempotent producer raises)."""
    p = Producer(dict(conf, **{"message.timeout.ms": int(timeout * 1000) - 1000,
                               "enable.idempotence": idempotent, "acks": "all"}))
    errors = []
    for v in values:
        p.produce(topic, v.encode(), on_delivery=lambda e, m: errors.append(e) if e else None)
    try:
        left = p.flush(timeout)
    except KafkaException as e:
        return e.args[0].name()
    if errors:
        return errors[0].name()
    return None if left == 0 else "NOT_FLUSHED(%d)" % left


def consume_group(conf, topic, group, want, timeout=30):
    """Subscribes in consumer group `group` from the beginning until every value of `want`
    was read; returns (values read, None) or (values so far, first error name)."""
    c = Consumer(dict(conf, **{"group.id": group, "auto.offset.reset": "earliest",
                               "enable.auto.commit": True}))
    c.subscribe([topic])
    got = []
    deadline = time.time() + timeout
    try:
        while time.time() < deadline and not set(want) <= set(got):
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                if m.error().code() == -191:  # _PARTITION_EOF
                    continue
                return got, m.error().name()
            got.append(m.value().decode())
    finally:
        c.close()
    return got, None if set(want) <= set(got) else "TIMED_OUT"


def create_topic(conf, name):
    """CreateTopics with the given credentials: None or the error's name."""
    admin = AdminClient(conf)  # kept alive until the future resolves
    f = admin.create_topics([NewTopic(name, 1, 1)], request_timeout=15)
    try:
        f[name].result(20)
        return None
    except KafkaException as e:
        return e.args[0].name()


def node(*args, timeout=60):
    """js/apps_client.js (kafkajs); its JSON answer."""
    r = subprocess.run(["node", JS_CLIENT] + [str(a) for a in args], cwd=os.path.dirname(JS_CLIENT),
                       capture_output=True, timeout=timeout)
    assert r.returncode == 0, "apps_client.js %s: rc %d\n%s" % (
        args[0], r.returncode, r.stderr.decode(errors="replace")[-3000:])
    return json.loads(r.stdout)


def _str(data, pos):
    n = struct.unpack_from(">h", data, pos)[0]
    pos += 2
    return (None if n < 0 else data[pos:pos + n].decode()), pos + max(n, 0)


def raw_metadata(bootstrap, files, topics):
    """{topic: ErrorCode} from a Metadata v4 request (allow_auto_topic_creation false) over
    mutual TLS with (ca, cert, key) files: what the broker really answers, unfiltered."""
    ca, cert, key = files
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False  # the CA is verified; the broker's name is not the point here
    ctx.load_cert_chain(cert, key)
    host, port = bootstrap.split(",")[0].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with ctx.wrap_socket(raw) as s:
            s.sendall(kwire.request(3, 4, 7, kwire.body_metadata(4, topics)))
            data = kwire.recv_frame(s)
    corr, _throttle, nbrokers = struct.unpack_from(">iii", data, 0)
    assert corr == 7
    pos = 12
    for _ in range(nbrokers):
        pos += 4
        _, pos = _str(data, pos)
        pos += 4
        _, pos = _str(data, pos)
    _, pos = _str(data, pos)  # cluster id
    pos += 4  # controller
    out = {}
    (ntopics,) = struct.unpack_from(">i", data, pos)
    pos += 4
    for _ in range(ntopics):
        (err,) = struct.unpack_from(">h", data, pos)
        name, pos = _str(data, pos + 2)
        pos += 1  # is_internal
        (nparts,) = struct.unpack_from(">i", data, pos)
        pos += 4
        for _ in range(nparts):
            pos += 10  # error, index, leader
            for _ in range(2):  # replicas, isr
                (n,) = struct.unpack_from(">i", data, pos)
                pos += 4 + 4 * n
        out[name] = err
    return out


# --------------------------------------------------------------------------- documents

def topic_doc(ns, name, acl):
    return {"apiVersion": "kafka.nais.io/v1", "kind": "Topic",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"pool": "dev", "config": {"replication": 1, "minimumInSyncReplicas": 1},
                     "acl": acl}}


def app_doc(ns, name, image="ghcr.io/navikt/app:1", pool="dev", streams=None):
    kafka = {"pool": pool}
    if streams is not None:
        kafka["streams"] = streams
    return {"apiVersion": "nais.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": ns, "labels": {"team": ns}},
            "spec": {"image": image, "kafka": kafka}}


def rfc3339(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- fixtures

up = harness.up_fixture(KpoolUp)


TEAM_A = "team-a"
ORDERS = "team-a.orders"
LATENCY_APPS = ["lat-%d" % i for i in range(1, 6)]


@pytest.fixture(scope="module")
def team_a(up, tmp_path_factory):
    """Issue 7's scenario, deployed one app at a time and timed: the Topic `orders` (orders-api
    readwrite, billing read, lat-* write), then each Application. Per app: seconds from the
    start of `kpool apply` until the Secret exists, and until it is usable (a produce to
    team-a.orders succeeds; for billing and intruder, which may not write, a Metadata request
    with the credentials succeeds). Returns {"creds": {app: Creds}, "latency": {...}}."""
    tmp = tmp_path_factory.mktemp("team-a")
    up.apply(tmp, topic_doc(TEAM_A, "orders", [
        {"team": TEAM_A, "application": "orders-api", "access": "readwrite"},
        {"team": TEAM_A, "application": "billing", "access": "read"},
        {"team": TEAM_A, "application": "lat-*", "access": "write"}]))
    up.topic_ready(TEAM_A, "orders")
    creds, latency = {}, {}
    for app in ["orders-api", "billing", "intruder"] + LATENCY_APPS:
        f = tmp / ("%s.yaml" % app)
        f.write_text(yaml.safe_dump(app_doc(TEAM_A, app)))
        t0 = time.monotonic()
        up.kpool("apply", "-f", str(f))
        items = up.wait("secret of %s" % app, lambda: up.secrets_of(TEAM_A, app),
                        timeout=10, interval=0.005)
        t_secret = time.monotonic() - t0
        c = up.creds(items[0])
        writer = app != "billing" and app != "intruder"
        tries = []

        def usable():
            tries.append(1)
            if writer:
                return produce(c.conf(), ORDERS, ["deploy-probe-" + app], timeout=5) is None
            md = AdminClient(c.conf()).list_topics(timeout=5)
            return md.orig_broker_id >= 0
        up.wait("credentials of %s usable" % app, usable, timeout=15, interval=0.01)
        latency[app] = {"secret_s": round(t_secret, 4),
                        "usable_s": round(time.monotonic() - t0, 4), "tries": len(tries)}
        creds[app] = c
    usable = [v["usable_s"] for v in latency.values()]
    secret = [v["secret_s"] for v in latency.values()]
    summary = {"apps": latency, "n": len(usable),
               "secret_median_s": statistics.median(secret), "secret_max_s": max(secret),
               "usable_median_s": statistics.median(usable), "usable_max_s": max(usable)}
    out = tmp / "deploy_latency.json"
    out.write_text(json.dumps(summary, indent=1))
    print("\ndeploy -> usable credentials over %d apps: median %.3f s, max %.3f s "
          "(secret present: median %.3f s, max %.3f s); details in %s"
          % (len(usable), summary["usable_median_s"], summary["usable_max_s"],
             summary["secret_median_s"], summary["secret_max_s"], out))
    return {"creds": creds, "latency": latency, "summary": summary}


# --------------------------------------------------------------------------- 1. deploy


def test_each_application_gets_a_secret_within_a_second(up, team_a):
    slow = {a: v["secret_s"] for a, v in team_a["latency"].items() if v["secret_s"] >= 1.0}
    assert not slow, "secrets later than 1 s after apply: %s" % slow
    # the ACLs are in place before the secret is written: the first try with it works
    retried = {a: v["tries"] for a, v in team_a["latency"].items() if v["tries"] != 1}
    assert not retried, "credentials that did not work at the first try: %s" % retried
    for app, c in team_a["creds"].items():
        s = c.secret
        assert s["type"] == "kpool.dev/kafka-credentials"
        assert s["metadata"]["labels"] == {"app": app, "team": TEAM_A,
                                           "type": "kpool.dev/kafka-credentials"}
        assert s["metadata"]["annotations"]["kpool.dev/pool"] == "dev"
        assert s["metadata"]["name"].startswith("aiven-kafka-%s-" % app)
        assert len(s["metadata"]["name"]) <= 63
        assert c.user.endswith("_1"), c.user
        keys = {"KAFKA_BROKERS", "KAFKA_CERTIFICATE", "KAFKA_PRIVATE_KEY", "KAFKA_CA",
                "KAFKA_CREDSTORE_PASSWORD", "client.keystore.p12", "client.truststore.jks",
                "KAFKA_SCHEMA_REGISTRY", "KAFKA_SCHEMA_REGISTRY_USER",
                "KAFKA_SCHEMA_REGISTRY_PASSWORD", "KAFKA_SECRET_UPDATED"}
        assert keys <= set(c.data), keys - set(c.data)
        assert "KAFKA_STREAMS_APPLICATION_ID" not in c.data
        assert c.brokers == up.kafka
        assert b"BEGIN PRIVATE KEY" in c.data["KAFKA_PRIVATE_KEY"]  # PKCS#8
        # the certificate names the service user
        subj = subprocess.run(["openssl", "x509", "-noout", "-subject", "-in", c.path("kafka.crt")],
                              capture_output=True, text=True, check=True).stdout
        assert subj.strip().replace(" ", "") == "subject=CN=" + c.user
        a = up.get(AAPPS, TEAM_A, app)
        assert a["status"]["synchronizationState"] == "RolloutComplete"
        assert a["status"]["conditions"][0]["type"] == "Succeeded"
        assert a["metadata"]["annotations"]["kpool.dev/owner"] == "Application"
        ap = up.get(APPS, TEAM_A, app)
        assert ap["status"]["synchronizationState"] == "RolloutComplete", ap["status"]
    # every secret is unique: passwords and service users differ
    assert len({c.password for c in team_a["creds"].values()}) == len(team_a["creds"])
    assert len({c.user for c in team_a["creds"].values()}) == len(team_a["creds"])


# --------------------------------------------------------------------------- 2. clients


def test_confluent_kafka_with_the_secret_only(up, team_a, tmp_path):
    c = team_a["creds"]
    values = ["py-%d-%d" % (i, random.randrange(1 << 30)) for i in range(5)]
    # `write` includes idempotent produce (SPEC 3)
    assert produce(c["orders-api"].conf(), ORDERS, values, idempotent=True) is None
    got, err = consume_group(c["billing"].conf(), ORDERS, "billing-py", values)
    assert err is None and set(values) <= set(got), (err, got)
    # billing may read, not write
    assert produce(c["billing"].conf(), ORDERS, ["nope"]) == AUTHZ
    # ... and an idempotent producer without WRITE on any topic is refused its producer id,
    # as Kafka does (InitProducerId needs IDEMPOTENT_WRITE on the cluster or WRITE on a topic)
    assert produce(c["billing"].conf(), ORDERS, ["nope"], idempotent=True) == \
        "CLUSTER_AUTHORIZATION_FAILED"
    # intruder is in no ACL
    assert produce(c["intruder"].conf(), ORDERS, ["nope"]) == AUTHZ
    got, err = consume_group(c["intruder"].conf(), ORDERS, "intruder-py", ["x"], timeout=30)
    assert (got, err) == ([], AUTHZ)
    # the short name: not the topic's name in the pool
    assert produce(c["orders-api"].conf(), "orders", ["nope"]) == AUTHZ


def test_short_name_and_authorization_errors_on_the_wire(up, team_a):
    """What the broker answers to Metadata: for a principal that may not DESCRIBE a topic,
    TOPIC_AUTHORIZATION_FAILED whether it exists or not (Kafka never tells an unauthorized
    client whether a topic exists; SPEC 9); UNKNOWN_TOPIC_OR_PARTITION to one that may
    describe any topic (the super user) for the short name, which really is not there."""
    c = team_a["creds"]
    md = raw_metadata(up.kafka, c["orders-api"].files(), [ORDERS, "orders"])
    assert md == {ORDERS: NONE, "orders": TOPIC_AUTHORIZATION_FAILED}, md
    md = raw_metadata(up.kafka, c["billing"].files(), [ORDERS])
    assert md == {ORDERS: NONE}, md
    md = raw_metadata(up.kafka, c["intruder"].files(), [ORDERS, "orders"])
    assert md == {ORDERS: TOPIC_AUTHORIZATION_FAILED, "orders": TOPIC_AUTHORIZATION_FAILED}, md
    md = raw_metadata(up.kafka, up.admin_files(), [ORDERS, "orders"])
    assert md == {ORDERS: NONE, "orders": UNKNOWN_TOPIC_OR_PARTITION}, md


def test_kafkajs_with_the_secret_only(up, team_a):
    c = team_a["creds"]
    values = ["js-%d-%d" % (i, random.randrange(1 << 30)) for i in range(3)]
    r = node("produce", c["orders-api"].dir, ORDERS, *values)
    assert r.get("ok"), r
    # billing reads everything in the topic, in a consumer group
    admin = Consumer(dict(up.admin_conf(), **{"group.id": "it-apps-watermarks"}))
    _, high = admin.get_watermark_offsets(TopicPartition(ORDERS, 0), timeout=30)
    admin.close()
    r = node("consume", c["billing"].dir, ORDERS, "billing-js", high, 20000)
    assert r.get("ok") and set(values) <= set(r["values"]) and len(r["values"]) == high, r
    r = node("produce", c["billing"].dir, ORDERS, "nope")
    assert r.get("error") == AUTHZ, r
    r = node("produce", c["intruder"].dir, ORDERS, "nope")
    assert r.get("error") == AUTHZ, r
    r = node("consume", c["intruder"].dir, ORDERS, "intruder-js", 1, 10000)
    assert r.get("error") == AUTHZ, r
    r = node("metadata", c["intruder"].dir, ORDERS)
    assert r.get("error") == AUTHZ, r
    r = node("produce", c["orders-api"].dir, "orders", "nope")
    assert r.get("error") == AUTHZ, r


# --------------------------------------------------------------------------- 3. stores


def pem_blocks(text, kind):
    out, cur = [], None
    for line in text.splitlines():
        if line == "-----BEGIN %s-----" % kind:
            cur = [line]
        elif cur is not None:
            cur.append(line)
            if line == "-----END %s-----" % kind:
                out.append("\n".join(cur) + "\n")
                cur = None
    return out


def pubkey(pem_text, is_key):
    args = ["openssl", "pkey", "-pubout"] if is_key else ["openssl", "x509", "-noout", "-pubkey"]
    return subprocess.run(args, input=pem_text, capture_output=True, text=True,
                          check=True).stdout


def test_pkcs12_stores_open_with_the_password(up, team_a):
    c = team_a["creds"]["orders-api"]
    ks, ts = c.path("client.keystore.p12"), c.path("client.truststore.jks")
    cert_pem = c.data["KAFKA_CERTIFICATE"].decode()
    ca_pem = c.data["KAFKA_CA"].decode()
    # keystore: the private key and the certificate (+ the CA chain)
    r = openssl_pkcs12(ks, c.password, "-nocerts")
    assert r.returncode == 0, r.stderr
    keys = pem_blocks(r.stdout, "PRIVATE KEY")
    assert len(keys) == 1, r.stdout.count("BEGIN")
    r = openssl_pkcs12(ks, c.password, "-nokeys", "-clcerts")
    assert r.returncode == 0, r.stderr
    certs = pem_blocks(r.stdout, "CERTIFICATE")
    assert certs == [cert_pem], r.stdout
    assert pubkey(keys[0], True) == pubkey(certs[0], False)  # the key belongs to the cert
    # truststore: the CA, and nothing secret
    r = openssl_pkcs12(ts, c.password, "-nokeys")
    assert r.returncode == 0, r.stderr
    assert pem_blocks(r.stdout, "CERTIFICATE") == [ca_pem], r.stdout
    assert "PRIVATE KEY" not in r.stdout
    # another secret's password does not open them
    other = team_a["creds"]["billing"].password
    assert openssl_pkcs12(ks, other).returncode != 0
    assert openssl_pkcs12(ts, other).returncode != 0
    # librdkafka with the keystore (no PEM key/cert files)
    assert produce(c.keystore_conf(), ORDERS, ["from-keystore"]) is None
    with pytest.raises(KafkaException):
        Producer(c.keystore_conf(password=other))


# --------------------------------------------------------------------------- 4. redeploy


def test_redeploy_new_user_old_secret_cleaned_up_and_refused(up, tmp_path):
    ns, app = "team-r", "orders-api"
    fqn = ns + ".orders"
    up.apply(tmp_path, topic_doc(ns, "orders", [{"team": ns, "application": app,
                                                 "access": "readwrite"}]),
             app_doc(ns, app, image="ghcr.io/navikt/orders-api:1"))
    up.topic_ready(ns, "orders")
    old = up.creds(up.app_secret(ns, app))
    assert old.user.endswith("_1"), old.user
    assert produce(old.conf(), fqn, ["v1"]) is None
    gen_before = up.get(AAPPS, ns, app)["metadata"]["generation"]

    t0 = time.monotonic()
    up.apply(tmp_path, app_doc(ns, app, image="ghcr.io/navikt/orders-api:2"))
    new = up.creds(up.app_secret(ns, app, not_name=old.name))
    assert produce(new.conf(), fqn, ["v2"]) is None  # works at once
    redeploy_s = time.monotonic() - t0
    print("\nredeploy -> new credentials usable: %.3f s" % redeploy_s)
    assert new.name != old.name
    assert new.name.startswith("aiven-kafka-%s-" % app)
    assert new.user.endswith("_2") and new.user != old.user, new.user
    assert up.get(AAPPS, ns, app)["metadata"]["generation"] > gen_before
    assert up.get(APPS, ns, app)["status"].get("kafkaSecretName") == new.name
    assert new.password != old.password

    # during the grace period the old secret (running pods) keeps working ...
    assert up.get(SECRETS, ns, old.name) is not None
    assert produce(old.conf(), fqn, ["old-during-grace"]) is None
    # ... it is marked superseded, then deleted after the grace period
    up.wait("old secret marked superseded",
            lambda: "kpool.dev/superseded-at" in (
                (up.get(SECRETS, ns, old.name) or {}).get("metadata", {})
                .get("annotations", {})), timeout=30)
    t_marked = time.monotonic()
    up.wait("old secret deleted", lambda: up.get(SECRETS, ns, old.name) is None,
            timeout=GRACE_MS / 1000 + 10)
    assert time.monotonic() - t_marked >= GRACE_MS / 1000 - 1.0  # not before (s resolution)
    # ... and its service user is revoked: the old certificate is refused
    up.wait("old certificate refused",
            lambda: raw_metadata(up.kafka, old.files(), [fqn])[fqn] == TOPIC_AUTHORIZATION_FAILED,
            timeout=30)
    assert produce(old.conf(), fqn, ["old-after-grace"]) == AUTHZ
    # the current secret is untouched
    assert up.get(SECRETS, ns, new.name) is not None
    assert produce(new.conf(), fqn, ["v2-still"]) is None
    assert [s["metadata"]["name"] for s in up.secrets_of(ns, app)] == [new.name]


def test_protected_aivenapplication_keeps_old_secret_until_it_expires(up, tmp_path):
    ns, app = "team-p", "keeper"
    fqn = ns + ".ledger"
    t_start = time.time()
    # expiresAt leaves room for the setup below on a slow machine (it took over 8 s under
    # load: the check before expiry then had no time left)
    expires_at = int(t_start) + PROTECTED_EXPIRY_S
    expires = rfc3339(expires_at)

    def aapp(secret):
        return {"apiVersion": "aiven.nais.io/v1", "kind": "AivenApplication",
                "metadata": {"name": app, "namespace": ns},
                "spec": {"kafka": {"pool": "dev", "secretName": secret}, "protected": True,
                         "expiresAt": expires}}
    up.apply(tmp_path, topic_doc(ns, "ledger", [{"team": ns, "application": app,
                                                 "access": "readwrite"}]),
             aapp("keeper-kafka-1"))
    up.topic_ready(ns, "ledger")
    first = up.creds(up.app_secret(ns, app))
    assert first.name == "keeper-kafka-1"
    up.apply(tmp_path, aapp("keeper-kafka-2"))
    second = up.creds(up.app_secret(ns, app, not_name=first.name))
    assert second.name == "keeper-kafka-2" and second.user != first.user
    t_second = time.time()
    # well beyond the grace period of the first secret (superseded when the second rolled
    # out) and several janitor passes, both secrets are there and both work
    time.sleep(max(0, t_second + 2 * GRACE_MS / 1000 + 2 * RESYNC_MS / 1000 + 0.5 - time.time()))
    assert time.time() < expires_at, "too slow to check before expiry"
    assert up.get(SECRETS, ns, first.name) is not None, "protected app lost its old secret"
    assert produce(first.conf(), fqn, ["first"]) is None
    assert produce(second.conf(), fqn, ["second"]) is None
    # past expiresAt: the AivenApplication and all its secrets go, its users are revoked
    up.wait("expired AivenApplication deleted", lambda: up.get(AAPPS, ns, app) is None,
            timeout=max(0, expires_at - time.time()) + 30)
    assert time.time() >= expires_at - 1, "deleted before expiresAt"
    assert up.secrets_of(ns, app) == []
    for c in (first, second):
        up.wait("certificate of %s refused" % c.name,
                lambda: raw_metadata(up.kafka, c.files(), [fqn])[fqn]
                == TOPIC_AUTHORIZATION_FAILED, timeout=30)


def test_aivenapplication_change_keeping_its_secret_name_revokes_the_replaced_user(up, tmp_path):
    """A change of an AivenApplication that keeps spec.kafka.secretName (here: protected
    turned on) is a new generation: a new service user whose credentials overwrite the same
    Secret. The replaced user's credentials are then in no secret at all, so they must stop
    working after the grace period like any unused secret's (SPEC 3: older generations stay
    valid until their secret is no longer used, then are revoked)."""
    ns, app = "team-o", "rotor"
    fqn = ns + ".spins"

    def aapp(**extra):
        spec = {"kafka": {"pool": "dev", "secretName": "rotor-kafka"}}
        spec.update(extra)
        return {"apiVersion": "aiven.nais.io/v1", "kind": "AivenApplication",
                "metadata": {"name": app, "namespace": ns}, "spec": spec}
    up.apply(tmp_path, topic_doc(ns, "spins", [{"team": ns, "application": app,
                                               "access": "readwrite"}]), aapp())
    up.topic_ready(ns, "spins")
    old = up.creds(up.app_secret(ns, app))
    assert produce(old.conf(), fqn, ["one"]) is None
    up.apply(tmp_path, aapp(protected=True))

    def rewritten():
        s = up.get(SECRETS, ns, "rotor-kafka")
        return s if s and s["metadata"]["annotations"]["kpool.dev/service-user"] != old.user \
            else None
    new = up.creds(up.wait("secret rewritten for the new generation", rewritten, timeout=30))
    assert new.user.endswith("_2"), new.user
    assert produce(new.conf(), fqn, ["two"]) is None
    # pods that still run with the replaced credentials get the grace period
    assert produce(old.conf(), fqn, ["one-during-grace"]) is None
    up.wait("the replaced user's certificate refused",
            lambda: raw_metadata(up.kafka, old.files(), [fqn])[fqn] == TOPIC_AUTHORIZATION_FAILED,
            timeout=GRACE_MS / 1000 + 10)
    assert produce(new.conf(), fqn, ["three"]) is None


# --------------------------------------------------------------------------- 5. ACL changes


def test_acl_entry_grants_and_revokes_without_redeploy(up, tmp_path):
    ns = "team-g"
    first, second = ns + ".first", ns + ".second"
    up.apply(tmp_path,
             topic_doc(ns, "first", [{"team": ns, "application": "billing", "access": "read"}]),
             topic_doc(ns, "second", [{"team": ns, "application": "ledger", "access": "write"}]),
             app_doc(ns, "billing"))
    up.topic_ready(ns, "first")
    up.topic_ready(ns, "second")
    billing = up.creds(up.app_secret(ns, "billing"))
    values = ["second-%d" % i for i in range(3)]
    assert produce(up.admin_conf(), second, values) is None
    assert raw_metadata(up.kafka, billing.files(), [first, second]) == {
        first: NONE, second: TOPIC_AUTHORIZATION_FAILED}
    gen = up.get(AAPPS, ns, "billing")["metadata"]["generation"]

    t0 = time.monotonic()
    up.apply(tmp_path, topic_doc(ns, "second", [
        {"team": ns, "application": "ledger", "access": "write"},
        {"team": ns, "application": "billing", "access": "read"}]))

    up.wait("billing may read the second topic",
            lambda: raw_metadata(up.kafka, billing.files(), [second])[second] == NONE,
            timeout=10, interval=0.01)
    granted_s = time.monotonic() - t0
    got, err = consume_group(billing.conf(), second, "billing-second", values, timeout=20)
    assert err is None and set(values) <= set(got), (err, got)
    print("\nACL entry added -> billing authorized: %.3f s, consumed in a group: %.3f s"
          % (granted_s, time.monotonic() - t0))
    # no redeploy happened: same AivenApplication generation, same secret
    assert up.get(AAPPS, ns, "billing")["metadata"]["generation"] == gen
    assert [s["metadata"]["name"] for s in up.secrets_of(ns, "billing")] == [billing.name]
    assert produce(billing.conf(), second, ["read-only"]) == AUTHZ  # read, not write

    up.apply(tmp_path, topic_doc(ns, "second", [{"team": ns, "application": "ledger",
                                                 "access": "write"}]))
    up.wait("billing's access to the second topic revoked",
            lambda: raw_metadata(up.kafka, billing.files(), [second])[second]
            == TOPIC_AUTHORIZATION_FAILED, timeout=30)
    got, err = consume_group(billing.conf(), second, "billing-second-2", values, timeout=30)
    assert err == AUTHZ, (got, err)
    # the first topic is unaffected
    assert raw_metadata(up.kafka, billing.files(), [first]) == {first: NONE}


def test_consumer_group_belongs_to_the_first_team(up, tmp_path):
    # issue 12: with the default group ACL (READ on every group id), a group id is the team's
    # that used it first, for every app and generation of that team (docs/groups.md)
    ns, other = "team-h", "team-i"
    topic = ns + ".events"
    up.apply(tmp_path, topic_doc(ns, "events", [
        {"team": ns, "application": "*", "access": "read"},
        {"team": other, "application": "spy", "access": "read"}]),
        app_doc(ns, "first"), app_doc(ns, "second"), app_doc(other, "spy"))
    up.topic_ready(ns, "events")
    first = up.creds(up.app_secret(ns, "first"))
    second = up.creds(up.app_secret(ns, "second"))
    spy = up.creds(up.app_secret(other, "spy"))
    assert produce(up.admin_conf(), topic, ["e1", "e2"]) is None
    got, err = consume_group(first.conf(), topic, "events-reader", ["e1", "e2"])
    assert err is None, (got, err)
    assert produce(up.admin_conf(), topic, ["e3"]) is None
    got, err = consume_group(second.conf(), topic, "events-reader", ["e3"])
    assert err is None and "e1" not in got, (got, err)  # the group's committed offsets
    got, err = consume_group(spy.conf(), topic, "events-reader", ["e1"], timeout=30)
    assert err == "GROUP_AUTHORIZATION_FAILED", (got, err)
    got, err = consume_group(spy.conf(), topic, "spy-reader", ["e1", "e2"])
    assert err is None, (got, err)


def test_consumer_group_teams_are_namespaces_not_name_prefixes(up, tmp_path):
    # issue 12 (6, 7): a principal's team is read from its service user name; that name used
    # to hold only the namespace without "team-", cut at 20 characters, so team-x and x (and
    # two namespaces sharing their first 20 characters) were one team and could join, commit
    # in and read each other's groups. Now each namespace is its own team.
    pairs = [("team-xj", "xj"), ("longnamespace-shared-a", "longnamespace-shared-b")]
    docs = []
    for owner, other in pairs:
        docs += [topic_doc(owner, "events", [
            {"team": owner, "application": "*", "access": "read"},
            {"team": other, "application": "*", "access": "read"}]),
            app_doc(owner, "reader"), app_doc(other, "reader")]
    up.apply(tmp_path, *docs)
    for owner, other in pairs:
        topic = owner + ".events"
        up.topic_ready(owner, "events")
        mine = up.creds(up.app_secret(owner, "reader"))
        theirs = up.creds(up.app_secret(other, "reader"))
        assert produce(up.admin_conf(), topic, ["e1", "e2"]) is None
        got, err = consume_group(mine.conf(), topic, owner + "-reader", ["e1", "e2"])
        assert err is None, (owner, got, err)
        got, err = consume_group(theirs.conf(), topic, owner + "-reader", ["e1"], timeout=30)
        assert err == "GROUP_AUTHORIZATION_FAILED", (other, got, err)
        got, err = consume_group(theirs.conf(), topic, other + "-reader", ["e1", "e2"])
        assert err is None, (other, got, err)


# --------------------------------------------------------------------------- 7. failures, streams


def test_unknown_pool_fails_with_validate_pool_then_recovers(up, tmp_path):
    ns, app = "team-f", "lost"
    up.apply(tmp_path, app_doc(ns, app, pool="nope"))

    def failed():
        a, state = up.aivenapp_state(ns, app)
        return a if state == "RolloutFailed" else None
    a = up.wait("RolloutFailed", failed, timeout=30)
    cond = a["status"]["conditions"][0]
    assert cond["reason"] == "ValidatePool", cond
    assert cond["status"] == "True" and cond["type"] in ("LocalFailure", "AivenFailure"), cond
    assert '"nope"' in cond["message"] and "dev" in cond["message"], cond["message"]
    assert up.secrets_of(ns, app) == []
    up.wait("Application mirrors the failure", lambda: (
        (up.get(APPS, ns, app) or {}).get("status", {}).get("synchronizationState")
        == "RolloutFailed" and "ValidatePool" in up.get(APPS, ns, app)["status"]["message"]),
        timeout=30)

    up.apply(tmp_path, app_doc(ns, app, pool="dev"))
    s = up.app_secret(ns, app)
    a = up.get(AAPPS, ns, app)
    assert a["status"]["synchronizationState"] == "RolloutComplete"
    assert a["status"]["conditions"][0]["type"] == "Succeeded"
    c = up.creds(s)
    assert AdminClient(c.conf()).list_topics(timeout=30).orig_broker_id >= 0
    up.wait("Application RolloutComplete", lambda: (
        (up.get(APPS, ns, app) or {}).get("status", {}).get("synchronizationState")
        == "RolloutComplete"), timeout=30)


def test_streams_application_gets_its_prefix(up, tmp_path):
    ns, app = "team-s", "wordcount"
    prefix = "%s.%s_stream_" % (ns, app)
    up.apply(tmp_path, app_doc(ns, app, streams=True))
    c = up.creds(up.app_secret(ns, app))
    assert c.data.get("KAFKA_STREAMS_APPLICATION_ID") == prefix.encode()

    def stream_ready():
        st = (up.get(STREAMS, ns, app) or {}).get("status") or {}
        return st if st.get("synchronizationState") == "RolloutComplete" else None
    st = up.wait("Stream RolloutComplete", stream_ready, timeout=30)
    assert st["fullyQualifiedTopicPrefix"] == prefix
    # the app creates its own internal topics, uses them, and its application id as a group
    topic = prefix + "x"
    assert create_topic(c.conf(), topic) is None
    assert topic in AdminClient(up.admin_conf()).list_topics(timeout=30).topics
    assert produce(c.conf(), topic, ["w1", "w2"]) is None
    got, err = consume_group(c.conf(), topic, prefix, ["w1", "w2"])  # application.id as group.id
    assert err is None, (got, err)
    # nothing outside its prefix
    assert create_topic(c.conf(), ns + ".not-mine") == AUTHZ
    assert ns + ".not-mine" not in AdminClient(up.admin_conf()).list_topics(timeout=30).topics


# --------------------------------------------------------------------------- 8. deletion


def test_deleting_the_application_revokes_everything(up, tmp_path):
    ns, app = "team-d", "gone"
    fqn = ns + ".events"
    up.apply(tmp_path, topic_doc(ns, "events", [{"team": ns, "application": app,
                                                 "access": "readwrite"}]), app_doc(ns, app))
    up.topic_ready(ns, "events")
    old = up.creds(up.app_secret(ns, app))
    assert produce(old.conf(), fqn, ["before"]) is None

    up.kpool("delete", "app", app, "-n", ns)
    up.wait("Application removed", lambda: up.get(APPS, ns, app) is None, timeout=30)
    up.wait("AivenApplication removed", lambda: up.get(AAPPS, ns, app) is None, timeout=30)
    up.wait("secrets removed", lambda: up.secrets_of(ns, app) == [], timeout=30)
    up.wait("old certificate refused",
            lambda: raw_metadata(up.kafka, old.files(), [fqn])[fqn] == TOPIC_AUTHORIZATION_FAILED,
            timeout=30)
    assert produce(old.conf(), fqn, ["after-delete"]) == AUTHZ
    assert up.get(TOPICS, ns, "events") is not None  # the Topic is not the app's to delete

    # deploying it again gives working credentials; the revoked certificate stays refused
    up.apply(tmp_path, app_doc(ns, app))
    new = up.creds(up.app_secret(ns, app))
    assert new.user != old.user, "a revoked service user name was reused: %s" % new.user
    assert produce(new.conf(), fqn, ["again"]) is None
    time.sleep(2 * RESYNC_MS / 1000)  # a resync or two: nothing brings the old user back
    assert raw_metadata(up.kafka, old.files(), [fqn]) == {fqn: TOPIC_AUTHORIZATION_FAILED}
    assert produce(old.conf(), fqn, ["old-again"]) == AUTHZ


# --------------------------------------------------------------------------- 6. secrecy (last)


def test_secret_isolation_by_team_token(up, team_a):
    secret = team_a["creds"]["orders-api"]
    path = (SECRETS % TEAM_A) + "/" + secret.name
    tokens = {}
    for team in (TEAM_A, "team-b"):
        code, _, body = up.http("POST", "/apis/kpool.dev/v1/teams", {"name": team},
                                token=up.token)
        assert code == 201, (code, body)
        tokens[team] = body["token"]
    code, _, body = up.http("GET", path, token=tokens["team-b"])
    assert code == 403, (code, body)
    assert "data" not in body and body.get("reason") == "Forbidden", body
    code, _, body = up.http("GET", SECRETS % TEAM_A, token=tokens["team-b"])
    assert code == 403, (code, body)
    # the all-namespaces list shows a team token its own namespace only (docs/api.md)
    code, _, body = up.http("GET", "/api/v1/secrets", token=tokens["team-b"])
    assert code == 200 and body["items"] == [], (code, body)
    code, _, body = up.http("GET", "/api/v1/secrets", token=tokens[TEAM_A])
    assert code == 200, (code, body)
    assert {i["metadata"]["namespace"] for i in body["items"]} == {TEAM_A}, body
    code, _, body = up.http("GET", path)
    assert code == 401, (code, body)
    # the owning team and the admin read it, data opened
    for who in (tokens[TEAM_A], up.token):
        code, _, body = up.http("GET", path, token=who)
        assert code == 200, (code, body)
        assert base64.b64decode(body["data"]["KAFKA_CREDSTORE_PASSWORD"]).decode() == \
            secret.password
        assert "sealedData" not in body
    code, _, body = up.http("GET", SECRETS % TEAM_A, token=tokens[TEAM_A])
    assert code == 200 and secret.name in [i["metadata"]["name"] for i in body["items"]]
    # team-a's token cannot touch team-b
    code, _, body = up.http("GET", SECRETS % "team-b", token=tokens[TEAM_A])
    assert code == 403, (code, body)


def key_material(c):
    """Byte strings of c that must never be stored or logged in the clear."""
    key_pem = c.data["KAFKA_PRIVATE_KEY"]
    body = b"".join(l for l in key_pem.splitlines() if not l.startswith(b"-----"))
    out = {"credstore password": c.password.encode(),
           "credstore password (base64)": base64.b64encode(c.password.encode()),
           "registry password": c.data["KAFKA_SCHEMA_REGISTRY_PASSWORD"],
           "private key (PEM body)": body[:48],
           "private key (base64 of the PEM)": c.secret["data"]["KAFKA_PRIVATE_KEY"][:64].encode()}
    return out


def test_store_and_logs_hold_no_key_material(up, team_a):
    assert len(up.seen) >= len(team_a["creds"])
    control = os.path.join(up.data_dir, "control")
    blobs = {}
    for f in ("kpool.db", "kpool.db-wal", "kpool.db-shm"):
        p = os.path.join(control, f)
        if os.path.exists(p):
            with open(p, "rb") as fh:
                blobs[f] = fh.read()
    blob = b"".join(blobs.values())
    # we are looking at the right bytes: the secrets are in there, sealed
    assert b"sealedData" in blob
    assert team_a["creds"]["orders-api"].name.encode() in blob
    assert b"PRIVATE KEY" not in blob
    log = up.log().encode()
    assert b"credentials for" in log  # the reconciler did log its work
    assert b"PRIVATE KEY" not in log
    found = []
    for c in up.seen:
        for what, needle in key_material(c).items():
            for where, hay in list(blobs.items()) + [("kpool up log", log)]:
                if needle in hay:
                    found.append("%s of %s in %s" % (what, c.name, where))
    assert not found, "\n".join(found)
    mode = os.stat(os.path.join(control, "master.key")).st_mode & 0o777
    assert mode == 0o600, oct(mode)
