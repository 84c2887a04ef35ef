"""Dynamic broker configs (issue 20 item 10): AlterConfigs / IncrementalAlterConfigs on a
BROKER resource, with real admin clients.

  - confluent-kafka's AdminClient (alter_configs, describe_configs on ConfigResource BROKER)
    and kafka-python's KafkaAdminClient: the cluster-wide default (name "") and this broker
    (its id), Kafka's sources (DYNAMIC_BROKER_CONFIG > DYNAMIC_DEFAULT_BROKER_CONFIG >
    STATIC_BROKER_CONFIG > DEFAULT_CONFIG) and synonyms; topics that inherit a default see
    the new value, in DescribeConfigs and in force (message.max.bytes); AlterConfigs replaces
    the layer; everything survives a restart (meta/broker-configs.json, 0600);
  - IncrementalAlterConfigs (raw: confluent-kafka 1.7 / librdkafka 2.0 have no incremental
    API): SET, DELETE, APPEND on a list, validate-only, all-or-nothing; invalid values,
    unknown and static properties, num.*.threads that cannot change live, per-broker-only
    properties at the default level: INVALID_CONFIG with a message naming the property;
  - applied live: log.cleaner.backoff.ms (a waiting cleaner runs), max.connections (new
    connections refused / accepted), log.flush.threads (the flusher pool grows and shrinks),
    ssl.certificate.location / ssl.key.location and Kafka's PEM ssl.keystore.location (new
    TLS connections get the new certificate, open ones keep working; a key that does not
    match is refused and the old pair stays);
  - only principals with ALTER_CONFIGS on the CLUSTER may alter (DESCRIBE_CONFIGS to read).

Every test here failed before: broker resources were refused with INVALID_REQUEST ("Dynamic
broker configs are not supported") and described as read-only static properties.
"""
import os
import socket
import ssl
import stat
import time

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource

import cfgwire
import kwire
from cfgwire import RES_BROKER, OP_SET, OP_DELETE, OP_APPEND
from test_compaction import cleaned_lines, wait_for
from test_tls_acl import ADMIN_PRINCIPAL, acl, grant, kpy_admin, pki, rdk, tls_broker  # noqa: F401

STATIC = {"log.retention.bytes": "987654321"}
DYN_BROKER = ConfigSource.DYNAMIC_BROKER_CONFIG.value
DYN_DEFAULT = ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value
STATIC_SRC = ConfigSource.STATIC_BROKER_CONFIG.value
DEFAULT = ConfigSource.DEFAULT_CONFIG.value


def admin(b, conf=None):
    c = {"bootstrap.servers": b.bootstrap}
    c.update(conf or {})
    return AdminClient(c)


def alter(a, name, cfg):
    fs = a.alter_configs([ConfigResource("broker", name, set_config=cfg)])
    (f,) = fs.values()
    return f.result(20)


def alter_default(b, cfg):
    """AlterConfigs on the cluster-wide default (resource name ""), with kafka-python:
    confluent-kafka refuses an empty resource name."""
    from kafka.admin import KafkaAdminClient, ConfigResource as KRes, ConfigResourceType
    k = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=20000)
    try:
        r = k.alter_configs([KRes(ConfigResourceType.BROKER, "", configs=cfg)])
        assert [x[0] for x in r.resources] == [0], r
    finally:
        k.close()


def describe_default(b):
    """DescribeConfigs of the cluster-wide default (raw: neither client sends name "")."""
    with cfgwire.Conn(b.port) as c:
        res = c.describe_configs([(RES_BROKER, "", None)])[0]
    assert res["error"] == 0, res
    return {k: (v["value"], v["source"]) for k, v in res["configs"].items()}


def describe(a, rtype, name):
    fs = a.describe_configs([ConfigResource(rtype, name)])
    (f,) = fs.values()
    return f.result(20)


def syn(b, rtype, name, key):
    """Synonyms of one config, raw: confluent-kafka keys them by name, so the same broker
    property in several layers collapses into one."""
    with cfgwire.Conn(b.port) as c:
        res = c.describe_configs([(rtype, name, [key])])[0]
    assert res["error"] == 0, res
    return res["configs"][key]["synonyms"]


def test_default_and_per_broker_layers_with_confluent(broker_factory):
    b = broker_factory(**STATIC)
    with kwire.broker_log_on_failure(b):
        kwire.create_topic(b.bootstrap, "inh", 1)
        kwire.create_topic(b.bootstrap, "own", 1, {"retention.ms": "1000"})
        a = admin(b)
        alter_default(b, {"log.retention.ms": "3600000", "message.max.bytes": "5000",
                          "log.cleanup.policy": "delete"})

        t = describe(a, "topic", "inh")
        e = t["retention.ms"]
        assert (e.value, e.source, e.is_default) == ("3600000", DYN_DEFAULT, False)
        assert syn(b, cfgwire.RES_TOPIC, "inh", "retention.ms") == [
            ("log.retention.ms", "3600000", DYN_DEFAULT), ("log.retention.ms", "604800000", DEFAULT)]
        assert (t["max.message.bytes"].value, t["max.message.bytes"].source) == (
            "5000", DYN_DEFAULT)
        assert (t["retention.bytes"].value, t["retention.bytes"].source) == (
            "987654321", STATIC_SRC)
        o = describe(a, "topic", "own")["retention.ms"]
        assert (o.value, o.source) == ("1000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)

        # in force at once: the new max.message.bytes refuses a 6,000-byte batch
        with cfgwire.Conn(b.port) as c:
            err, _ = c.produce("inh", 0, cfgwire.keyed_batch([(b"k", b"x" * 6000)]))
            assert err == cfgwire.MESSAGE_TOO_LARGE
            err, _ = c.produce("own", 0, cfgwire.keyed_batch([(b"k", b"x" * 4000)]))
            assert err == 0

        # the broker resource: dynamic entries are writable, with sources and synonyms
        d = describe(a, "broker", "1")
        e = d["log.retention.ms"]
        assert (e.value, e.source, e.is_read_only) == ("3600000", DYN_DEFAULT, False)
        e = d["log.retention.bytes"]
        assert (e.value, e.source, e.is_read_only) == ("987654321", STATIC_SRC, False)
        assert syn(b, RES_BROKER, "1", "log.retention.bytes") == [
            ("log.retention.bytes", "987654321", STATIC_SRC), ("log.retention.bytes", "-1", DEFAULT)]
        assert d["listeners"].is_read_only and d["node.id"].is_read_only
        assert not d["log.cleaner.backoff.ms"].is_read_only
        assert d["log.cleaner.backoff.ms"].source == DEFAULT
        # the cluster-wide default: only what is set there
        assert describe_default(b) == {
            "log.retention.ms": ("3600000", DYN_DEFAULT),
            "message.max.bytes": ("5000", DYN_DEFAULT),
            "log.cleanup.policy": ("delete", DYN_DEFAULT)}

        # this broker overrides the default
        alter(a, "1", {"log.retention.ms": "7200000"})
        e = describe(a, "broker", "1")["log.retention.ms"]
        assert (e.value, e.source) == ("7200000", DYN_BROKER)
        assert syn(b, RES_BROKER, "1", "log.retention.ms") == [
            ("log.retention.ms", "7200000", DYN_BROKER), ("log.retention.ms", "3600000", DYN_DEFAULT),
            ("log.retention.ms", "604800000", DEFAULT)]
        e = describe(a, "topic", "inh")["retention.ms"]
        assert (e.value, e.source) == ("7200000", DYN_BROKER)
        assert syn(b, cfgwire.RES_TOPIC, "inh", "retention.ms")[0] == (
            "log.retention.ms", "7200000", DYN_BROKER)

        # AlterConfigs replaces the whole layer: message.max.bytes goes back to its default
        alter_default(b, {"log.retention.ms": "3600000"})
        t = describe(a, "topic", "inh")
        assert (t["max.message.bytes"].value, t["max.message.bytes"].source) == (
            "1048588", DEFAULT)
        with cfgwire.Conn(b.port) as c:
            err, _ = c.produce("inh", 0, cfgwire.keyed_batch([(b"k", b"x" * 6000)]))
            assert err == 0

    path = os.path.join(b.data_dir, "meta", "broker-configs.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    b.restart()
    with kwire.broker_log_on_failure(b):
        a = admin(b)
        e = describe(a, "topic", "inh")["retention.ms"]
        assert (e.value, e.source) == ("7200000", DYN_BROKER)
        d = describe(a, "broker", "1")
        assert [(d[k].value, d[k].source) for k in ("log.retention.ms", "message.max.bytes")] == [
            ("7200000", DYN_BROKER), ("1048588", DEFAULT)]
        assert describe_default(b) == {"log.retention.ms": ("3600000", DYN_DEFAULT)}


def test_kafka_python_alter_and_describe(broker_factory):
    from kafka.admin import KafkaAdminClient, ConfigResource as KRes, ConfigResourceType
    b = broker_factory()
    with kwire.broker_log_on_failure(b):
        kwire.create_topic(b.bootstrap, "kp", 1)
        k = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=20000)
        try:
            r = k.alter_configs([KRes(ConfigResourceType.BROKER, "1",
                                      configs={"log.segment.bytes": "3000000",
                                               "log.cleaner.backoff.ms": "2000"})])
            assert [x[0] for x in r.resources] == [0], r
            r = k.describe_configs([KRes(ConfigResourceType.BROKER, "1",
                                         configs={"log.segment.bytes": None,
                                                  "log.cleaner.backoff.ms": None})])
            (res,) = r[0].resources
            got = {c[0]: (c[1], c[2]) for c in res[4]}  # name, value, read_only
            assert got == {"log.segment.bytes": ("3000000", False),
                           "log.cleaner.backoff.ms": ("2000", False)}, got
            r = k.describe_configs([KRes(ConfigResourceType.TOPIC, "kp",
                                         configs={"segment.bytes": None})])
            (res,) = r[0].resources
            assert res[4][0][1] == "3000000"
            # an invalid value: INVALID_CONFIG (40) with the property in the message
            r = k.alter_configs([KRes(ConfigResourceType.BROKER, "1",
                                      configs={"log.segment.bytes": "5"})])
            (err, msg, _, _), = r.resources
            assert err == 40 and "log.segment.bytes" in msg, r
        finally:
            k.close()


INVALID = [
    # (level, key, value, words in the message)
    ("1", "log.retention.ms", "abc", ["log.retention.ms", "not a number"]),
    ("1", "log.segment.bytes", "10", ["log.segment.bytes", "14"]),
    ("", "log.cleanup.policy", "bogus", ["log.cleanup.policy", "compact"]),
    ("1", "no.such.property", "1", ["Unknown broker config", "no.such.property"]),
    ("1", "listeners", "PLAINTEXT://127.0.0.1:1", ["listeners", "restart"]),
    ("1", "num.network.threads", "4", ["num.network.threads", "restart"]),
    ("1", "num.io.threads", "4", ["num.io.threads", "network threads"]),
    ("1", "log.cleaner.threads", "2", ["log.cleaner.threads", "1..1", "one cleaner thread"]),
    ("1", "log.flush.threads", "0", ["log.flush.threads", "1..64"]),
    ("1", "max.connections", "-3", ["max.connections"]),
    ("", "ssl.certificate.location", "/etc/hostname", ["per broker"]),
    ("1", "ssl.certificate.location", "/no/such/file.pem", ["ssl.certificate.location",
                                                            "cannot read"]),
    ("1", "ssl.keystore.type", "JKS", ["ssl.keystore.type", "PEM"]),
    ("1", "ssl.keystore.location", "/x.jks", ["ssl.keystore.location", "cannot read"]),
    ("1", "ssl.keystore.password", "x", ["ssl.key.password"]),
    ("1", "log.retention.hours", "1", ["log.retention.ms"]),
]


def test_incremental_and_invalid_raw(broker_factory):
    b = broker_factory()
    with kwire.broker_log_on_failure(b), cfgwire.Conn(b.port) as c:
        def value(name, key):
            res = c.describe_configs([(RES_BROKER, name, [key])])[0]
            assert res["error"] == 0, res
            x = res["configs"].get(key)
            return x and (x["value"], x["source"])

        r = c.incremental_alter([(RES_BROKER, "", [("log.cleanup.policy", OP_APPEND, "compact"),
                                                   ("log.retention.bytes", OP_SET, "123456")])])
        assert r[0]["error"] == 0, r
        assert value("1", "log.cleanup.policy") == ("delete,compact", DYN_DEFAULT)
        # validate only: answered, not applied
        r = c.incremental_alter([(RES_BROKER, "1", [("log.retention.bytes", OP_SET, "7")])],
                                validate_only=True)
        assert r[0]["error"] == 0, r
        assert value("1", "log.retention.bytes") == ("123456", DYN_DEFAULT)
        r = c.incremental_alter([(RES_BROKER, "1", [("log.retention.bytes", OP_SET, "7")])])
        assert r[0]["error"] == 0, r
        assert value("1", "log.retention.bytes") == ("7", DYN_BROKER)
        r = c.incremental_alter([(RES_BROKER, "1", [("log.retention.bytes", OP_DELETE, None)])])
        assert r[0]["error"] == 0, r
        assert value("1", "log.retention.bytes") == ("123456", DYN_DEFAULT)

        for level, key, val, words in INVALID:
            r = c.incremental_alter([(RES_BROKER, level, [("log.retention.bytes", OP_SET, "99"),
                                                          (key, OP_SET, val)])])[0]
            assert r["error"] == cfgwire.INVALID_CONFIG, (key, val, r)
            for w in words:
                assert w in r["message"], (key, val, w, r["message"])
            r = c.alter_configs([(RES_BROKER, level, {key: val})])[0]
            assert r["error"] == cfgwire.INVALID_CONFIG, (key, val, r)
        # all or nothing: the valid first operation of each refused request did not apply
        assert value("1", "log.retention.bytes") == ("123456", DYN_DEFAULT)
        # DELETE of an unknown name is refused too (a typo is not silently "deleted")
        r = c.incremental_alter([(RES_BROKER, "1", [("log.retention.msx", OP_DELETE, None)])])
        assert r[0]["error"] == cfgwire.INVALID_CONFIG, r
        # another broker id
        r = c.incremental_alter([(RES_BROKER, "7", [("log.retention.ms", OP_SET, "1")])])
        assert r[0]["error"] == cfgwire.INVALID_REQUEST and "7" in r[0]["message"], r
        # a password is never shown
        r = c.incremental_alter([(RES_BROKER, "1", [("ssl.key.password", OP_SET, "hunter2")])])
        assert r[0]["error"] == 0, r
        x = c.describe_configs([(RES_BROKER, "1", ["ssl.key.password"])])[0]["configs"][
            "ssl.key.password"]
        assert x["value"] is None and x["sensitive"] and x["source"] == DYN_BROKER, x
        assert all(v is None for _, v, _ in x["synonyms"]), x
    assert "hunter2" not in b.log()


def test_cleaner_backoff_changes_live(broker_factory):
    """A cleaner waiting out a 10-minute log.cleaner.backoff.ms runs within seconds once the
    backoff is lowered to 300 ms."""
    b = broker_factory(**{"log.cleaner.backoff.ms": 600000})
    with kwire.broker_log_on_failure(b), cfgwire.Conn(b.port) as c:
        kwire.create_topic(b.bootstrap, "cb", 1, {"cleanup.policy": "compact",
                                                  "segment.bytes": "1000",
                                                  "min.cleanable.dirty.ratio": "0.01"})
        for i in range(60):
            err, _ = c.produce("cb", 0, cfgwire.keyed_batch([(b"k%d" % (i % 3), b"v" * 100)]))
            assert err == 0
        time.sleep(1)
        assert not cleaned_lines(b, "cb-0")
        r = c.incremental_alter([(RES_BROKER, "", [("log.cleaner.backoff.ms", OP_SET, "300")])])
        assert r[0]["error"] == 0, r
        wait_for(lambda: cleaned_lines(b, "cb-0"), 60, "a cleaning pass after the change")


def test_max_connections_changes_live(broker_factory):
    b = broker_factory()
    with kwire.broker_log_on_failure(b), cfgwire.Conn(b.port) as c:
        r = c.incremental_alter([(RES_BROKER, "1", [("max.connections", OP_SET, "3")])])
        assert r[0]["error"] == 0, r
        socks = [kwire.connect(b.port) for _ in range(4)]
        try:
            # the open connection c plus two new ones make three; the other two are refused
            # (which two depends on the loop that accepts each)
            closed = []
            for s in socks:
                try:
                    kwire.api_versions(s)
                    closed.append(False)
                except Exception:
                    closed.append(True)
            assert closed.count(True) == 2, closed
        finally:
            for s in socks:
                s.close()
        r = c.incremental_alter([(RES_BROKER, "1", [("max.connections", OP_DELETE, None)])])
        assert r[0]["error"] == 0, r
        socks = [kwire.connect(b.port) for _ in range(6)]
        try:
            for s in socks:
                kwire.api_versions(s)
        finally:
            for s in socks:
                s.close()


def threads_of(b):
    return len(os.listdir("/proc/%d/task" % b.proc.pid))


def test_flush_threads_change_live(broker_factory):
    b = broker_factory(**{"log.flush.threads": 2})
    with kwire.broker_log_on_failure(b), cfgwire.Conn(b.port) as c:
        kwire.create_topic(b.bootstrap, "ft", 1)
        before = threads_of(b)
        for n, delta in (("6", 4), ("1", -1), ("2", 0)):
            r = c.incremental_alter([(RES_BROKER, "1", [("log.flush.threads", OP_SET, n)])])
            assert r[0]["error"] == 0, r
            wait_for(lambda: threads_of(b) == before + delta, 60,
                     lambda: "%d threads (want %d)" % (threads_of(b), before + delta))
            for i in range(20):  # durable acks=all still completes on the new pool
                err, _ = c.produce("ft", 0, cfgwire.keyed_batch([(b"k", b"v%d" % i)]))
                assert err == 0


# ------------------------------------------------------------------------ TLS and ACLs

def peer_cn(b, pki):
    ctx = ssl.create_default_context(cafile=pki.ca)
    ctx.load_cert_chain(pki["admin"].cert, pki["admin"].key)
    with socket.create_connection(("127.0.0.1", b.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            subject = dict(x[0] for x in s.getpeercert()["subject"])
            return subject["commonName"]


def test_ssl_reload_and_alter_configs_acl(broker_factory, pki):
    b = tls_broker(broker_factory, pki)
    cert2, key2 = pki._leaf("broker-next", "/O=kpool/CN=broker-next", "server")
    with kwire.broker_log_on_failure(b):
        assert peer_cn(b, pki) == "broker"
        a = admin(b, rdk(b, pki, pki["admin"]))
        alice = admin(b, rdk(b, pki, pki["alice"]))
        # alice has no ACL: CLUSTER_AUTHORIZATION_FAILED for describe and alter
        with pytest.raises(KafkaException) as ei:
            alter(alice, "1", {"log.retention.ms": "1000"})
        assert ei.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
        with pytest.raises(KafkaException) as ei:
            describe(alice, "broker", "1")
        assert ei.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
        k = kpy_admin(b, pki)
        try:
            grant(k, acl(pki["alice"].principal, "CLUSTER", "kafka-cluster", "ALTER_CONFIGS"))
        finally:
            k.close()
        alter(alice, "1", {"log.retention.ms": "1000"})  # ALTER_CONFIGS implies describing
        assert describe(alice, "broker", "1")["log.retention.ms"].value == "1000"

        # a key that does not match the certificate: refused, the old pair stays in use
        with pytest.raises(KafkaException) as ei:
            alter(a, "1", {"ssl.certificate.location": cert2,
                           "ssl.key.location": pki.broker_key})
        assert ei.value.args[0].code() == KafkaError.INVALID_CONFIG
        assert peer_cn(b, pki) == "broker"
        # the new pair: new connections get it, the admin client's open one keeps working
        alter(a, "1", {"ssl.certificate.location": cert2, "ssl.key.location": key2,
                       "log.retention.ms": "1000"})
        assert peer_cn(b, pki) == "broker-next"
        assert describe(a, "broker", "1")["ssl.certificate.location"].value == cert2
        # Kafka's names for a PEM keystore (one file: key and chain) work too
        cert3, key3 = pki._leaf("broker-pem", "/O=kpool/CN=broker-pem", "server")
        store = os.path.join(pki.dir, "broker-pem-store.pem")
        with open(store, "w") as out:
            for part in (key3, cert3):
                with open(part) as f:
                    out.write(f.read())
        alter(a, "1", {"ssl.keystore.type": "PEM", "ssl.keystore.location": store,
                       "ssl.truststore.location": pki.ca})
        assert peer_cn(b, pki) == "broker-pem"
        assert "BEGIN" not in b.log()
    b.restart()
    with kwire.broker_log_on_failure(b):
        assert peer_cn(b, pki) == "broker-pem"


def test_persisted_file_entries_checked_on_start(broker_factory):
    """A stored entry that is no longer valid (hand-edited file, a property that became
    static) is logged and skipped on start; the valid ones apply. A file that is not JSON
    stops the start with a message naming it."""
    import json
    b = broker_factory()
    with cfgwire.Conn(b.port) as c:
        r = c.incremental_alter([(RES_BROKER, "1", [("log.retention.ms", OP_SET, "5000")])])
        assert r[0]["error"] == 0, r
    b.stop()
    path = os.path.join(b.data_dir, "meta", "broker-configs.json")
    with open(path) as f:
        doc = json.load(f)
    assert doc == {"broker": {"log.retention.ms": "5000"}, "default": {}}, doc
    doc["default"] = {"log.segment.bytes": "5", "listeners": "PLAINTEXT://x:1",
                      "log.roll.ms": "600000"}
    with open(path, "w") as f:
        json.dump(doc, f)
    b.start()
    with kwire.broker_log_on_failure(b), cfgwire.Conn(b.port) as c:
        res = c.describe_configs([(RES_BROKER, "1", ["log.retention.ms", "log.segment.bytes",
                                                     "log.roll.ms"])])[0]["configs"]
        assert (res["log.retention.ms"]["value"], res["log.retention.ms"]["source"]) == (
            "5000", DYN_BROKER)
        assert res["log.segment.bytes"]["source"] == DEFAULT
        assert (res["log.roll.ms"]["value"], res["log.roll.ms"]["source"]) == (
            "600000", DYN_DEFAULT)
        log = b.log()
        assert "ignoring log.segment.bytes" in log and "ignoring listeners" in log
    b.stop()
    with open(path, "w") as f:
        f.write("{not json")
    with pytest.raises(RuntimeError) as ei:
        b.start(timeout=60)
    assert "broker-configs.json" in str(ei.value)
    os.unlink(path)
    b.start()
