"""Topic configs and partitions through real admin clients and raw requests (issue 5).

  - DescribeConfigs / AlterConfigs round trips with confluent-kafka's AdminClient and
    kafka-python's KafkaAdminClient: values, sources (TOPIC_CONFIG / STATIC_BROKER / DEFAULT)
    and synonyms; AlterConfigs replaces the whole override set;
  - IncrementalAlterConfigs (raw: confluent-kafka 1.7 has no incremental API): SET, DELETE,
    APPEND/SUBTRACT on cleanup.policy, validate-only, all-or-nothing per resource;
  - invalid values refused with INVALID_CONFIG (40) and a message naming the key, through
    AlterConfigs, IncrementalAlterConfigs and CreateTopics, and nothing changes;
  - configs survive a broker restart;
  - configs honoured live: max.message.bytes (MESSAGE_TOO_LARGE), LogAppendTime (seen by a
    consumer), min.insync.replicas (NOT_ENOUGH_REPLICAS for acks=all), keyless records on a
    compacted topic (INVALID_RECORD);
  - CreatePartitions: producers and consumers see the new partitions, shrinking is refused,
    a storage failure leaves the topic as it was.
"""
import subprocess
import time

import pytest
from confluent_kafka import (KafkaError, KafkaException, Producer, Consumer,
                             TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME)
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewPartitions, NewTopic

import cfgwire
import kwire
from cfgwire import RES_TOPIC, RES_BROKER, OP_SET, OP_DELETE, OP_APPEND, OP_SUBTRACT

STATIC = {"log.retention.bytes": "987654321", "log.segment.bytes": "50000000"}

# every topic config the schema has (DescribeConfigs without keys returns all of them)
ALL_TOPIC_CONFIGS = {
    "cleanup.policy", "compression.type", "delete.retention.ms", "file.delete.delay.ms",
    "flush.messages", "flush.ms", "index.interval.bytes", "max.compaction.lag.ms",
    "max.message.bytes", "message.timestamp.type", "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms", "min.insync.replicas", "retention.bytes", "retention.ms",
    "segment.bytes", "segment.ms", "segment.jitter.ms", "segment.index.bytes", "preallocate",
    "unclean.leader.election.enable", "message.downconversion.enable",
    "local.retention.bytes", "local.retention.ms", "message.format.version",
}


@pytest.fixture
def b(broker_factory):
    return broker_factory(**STATIC)


def admin(b):
    return AdminClient({"bootstrap.servers": b.bootstrap})


def describe_topic(a, topic):
    fs = a.describe_configs([ConfigResource("topic", topic)])
    (f,) = fs.values()
    return f.result(20)


def alter_topic(a, topic, cfg):
    fs = a.alter_configs([ConfigResource("topic", topic, set_config=cfg)])
    (f,) = fs.values()
    return f.result(20)


def expect_kafka_error(fn, code, *words):
    with pytest.raises(KafkaException) as ei:
        fn()
    err = ei.value.args[0]
    assert err.code() == code, "expected error %d, got %s" % (code, err)
    for w in words:
        assert w in err.str(), "%r not in the error message %r" % (w, err.str())
    return err


def produce_one(b, topic, value, key=None, partition=0, conf=None, timestamp=0):
    """Produces one record with a fresh confluent-kafka producer; returns (error, msg)."""
    c = {"bootstrap.servers": b.bootstrap, "linger.ms": 0, "acks": "all",
         "message.timeout.ms": 15000}
    c.update(conf or {})
    p = Producer(c)
    got = []
    p.produce(topic, value=value, key=key, partition=partition, timestamp=timestamp,
              on_delivery=lambda err, msg: got.append((err, msg)))
    assert p.flush(30) == 0
    assert len(got) == 1
    return got[0]


# ------------------------------------------------------------------------ describe / alter

def test_confluent_describe_and_alter(b):
    with kwire.broker_log_on_failure(b):
        kwire.create_topic(b.bootstrap, "cfg", 1, {"retention.ms": "3600000",
                                                  "cleanup.policy": "compact"})
        a = admin(b)
        d = describe_topic(a, "cfg")
        assert ALL_TOPIC_CONFIGS <= set(d), ALL_TOPIC_CONFIGS - set(d)
        e = d["retention.ms"]
        assert (e.value, e.source, e.is_default) == (
            "3600000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value, False)
        assert set(e.synonyms) == {"retention.ms", "log.retention.ms"}
        assert e.synonyms["log.retention.ms"].value == "604800000"
        e = d["retention.bytes"]  # from the broker's properties
        assert (e.value, e.source, e.is_default) == (
            "987654321", ConfigSource.STATIC_BROKER_CONFIG.value, False)
        e = d["segment.bytes"]
        assert (e.value, e.source) == ("50000000", ConfigSource.STATIC_BROKER_CONFIG.value)
        e = d["segment.jitter.ms"]
        assert (e.value, e.source, e.is_default) == ("0", ConfigSource.DEFAULT_CONFIG.value, True)
        assert d["cleanup.policy"].value == "compact"
        assert d["compression.type"].value == "producer"

        # AlterConfigs replaces the whole override set
        alter_topic(a, "cfg", {"max.message.bytes": "2000", "cleanup.policy": "delete"})
        d = describe_topic(a, "cfg")
        assert (d["max.message.bytes"].value, d["max.message.bytes"].source) == (
            "2000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
        assert d["cleanup.policy"].value == "delete"
        assert (d["retention.ms"].value, d["retention.ms"].source) == (
            "604800000", ConfigSource.DEFAULT_CONFIG.value)

        # an invalid value is refused as a whole: nothing of the request is applied
        expect_kafka_error(lambda: alter_topic(a, "cfg", {"retention.ms": "abc",
                                                          "max.message.bytes": "3000"}),
                           KafkaError.INVALID_CONFIG, "retention.ms")
        d = describe_topic(a, "cfg")
        assert d["max.message.bytes"].value == "2000"
        assert d["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
        expect_kafka_error(lambda: alter_topic(a, "nope", {"retention.ms": "1"}),
                           KafkaError.UNKNOWN_TOPIC_OR_PART)

        # the broker resource: static properties and defaults; topic-config defaults are
        # dynamic broker configs (test_broker_config.py), the rest read-only
        fs = a.describe_configs([ConfigResource("broker", "1")])
        (f,) = fs.values()
        d = f.result(20)
        assert (d["log.retention.bytes"].value, d["log.retention.bytes"].source) == (
            "987654321", ConfigSource.STATIC_BROKER_CONFIG.value)
        assert (d["log.retention.ms"].value, d["log.retention.ms"].source) == (
            "604800000", ConfigSource.DEFAULT_CONFIG.value)
        assert not d["log.retention.bytes"].is_read_only
        assert d["listeners"].is_read_only


def test_kafka_python_describe_and_alter(b):
    from kafka.admin import KafkaAdminClient, ConfigResource as KRes, ConfigResourceType
    with kwire.broker_log_on_failure(b):
        kwire.create_topic(b.bootstrap, "kp", 1, {"segment.ms": "600000"})
        k = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=20000)
        try:
            (resp,) = k.describe_configs([KRes(ConfigResourceType.TOPIC, "kp")],
                                         include_synonyms=True)
            (err, msg, rtype, name, entries), = resp.resources
            assert (err, rtype, name) == (0, RES_TOPIC, "kp")
            by = {e[0]: e for e in entries}
            assert ALL_TOPIC_CONFIGS <= set(by)
            # (name, value, read_only, source, sensitive, synonyms)
            assert by["segment.ms"][1:5] == ("600000", False, 1, False)
            assert by["segment.ms"][5] == [("segment.ms", "600000", 1),
                                           ("log.roll.ms", "604800000", 5)]
            assert by["retention.bytes"][1:5] == ("987654321", False, 4, False)
            assert by["retention.bytes"][5] == [("log.retention.bytes", "987654321", 4),
                                                ("log.retention.bytes", "-1", 5)]
            assert by["flush.ms"][3] == 5
            # only some keys
            (resp,) = k.describe_configs([KRes(ConfigResourceType.TOPIC, "kp",
                                               configs={"segment.ms": None,
                                                        "retention.ms": None})])
            assert sorted(e[0] for e in resp.resources[0][4]) == ["retention.ms", "segment.ms"]

            resp = k.alter_configs([KRes(ConfigResourceType.TOPIC, "kp",
                                         configs={"retention.ms": "1000000",
                                                  "min.cleanable.dirty.ratio": "0.25"})])
            assert resp.resources == [(0, None, RES_TOPIC, "kp")]
            (resp,) = k.describe_configs([KRes(ConfigResourceType.TOPIC, "kp")])
            by = {e[0]: e for e in resp.resources[0][4]}
            assert by["retention.ms"][1] == "1000000"
            assert by["min.cleanable.dirty.ratio"][1] == "0.25"
            assert by["segment.ms"][1] == "604800000"  # replaced away

            resp = k.alter_configs([KRes(ConfigResourceType.TOPIC, "kp",
                                         configs={"segment.bytes": "10"})])
            (err, msg, _, _), = resp.resources
            assert err == cfgwire.INVALID_CONFIG and "segment.bytes" in msg, (err, msg)
        finally:
            k.close()


def test_describe_configs_raw_versions(b):
    """v0 reports IsDefault, v1/v2 the source and (when asked) synonyms in precedence order;
    a key filter, the broker resource and unknown resources."""
    with kwire.broker_log_on_failure(b), cfgwire.Conn(b.port) as c:
        kwire.create_topic(b.bootstrap, "raw", 1, {"retention.ms": "3600000"})
        v0 = c.topic_configs("raw", version=0)
        assert set(v0) >= ALL_TOPIC_CONFIGS
        assert (v0["retention.ms"]["value"], v0["retention.ms"]["is_default"]) == ("3600000", False)
        assert v0["retention.bytes"]["is_default"] is False  # the broker sets it
        assert v0["flush.ms"]["is_default"] is True
        for version in (1, 2):
            cf = c.topic_configs("raw", version=version)
            assert cf["retention.ms"]["source"] == cfgwire.SOURCE_TOPIC
            assert cf["retention.ms"]["synonyms"] == [
                ("retention.ms", "3600000", cfgwire.SOURCE_TOPIC),
                ("log.retention.ms", "604800000", cfgwire.SOURCE_DEFAULT)]
            assert cf["segment.bytes"]["source"] == cfgwire.SOURCE_STATIC_BROKER
            assert cf["segment.bytes"]["synonyms"] == [
                ("log.segment.bytes", "50000000", cfgwire.SOURCE_STATIC_BROKER),
                ("log.segment.bytes", "1073741824", cfgwire.SOURCE_DEFAULT)]
            assert cf["flush.ms"]["source"] == cfgwire.SOURCE_DEFAULT
            assert not any(x["read_only"] or x["sensitive"] for x in cf.values())
        res = c.describe_configs([(RES_TOPIC, "raw", None)], version=1, synonyms=False)[0]
        assert all(x["synonyms"] == [] for x in res["configs"].values())
        cf = c.topic_configs("raw", keys=["retention.ms", "no.such.key", "cleanup.policy"])
        assert sorted(cf) == ["cleanup.policy", "retention.ms"]

        res = c.describe_configs([(RES_BROKER, "1", ["log.retention.bytes", "log.retention.ms",
                                                     "node.id"]),
                                  (RES_BROKER, "7", None), (RES_TOPIC, "missing", None)])
        assert res[0]["error"] == 0
        assert res[0]["configs"]["log.retention.bytes"]["value"] == "987654321"
        assert res[0]["configs"]["log.retention.bytes"]["source"] == cfgwire.SOURCE_STATIC_BROKER
        assert res[0]["configs"]["log.retention.ms"]["source"] == cfgwire.SOURCE_DEFAULT
        assert res[0]["configs"]["node.id"]["value"] == "1"
        assert [res[0]["configs"][k]["read_only"] for k in (
            "log.retention.bytes", "log.retention.ms", "node.id")] == [False, False, True]
        assert res[1]["error"] != 0
        assert res[2]["error"] == cfgwire.UNKNOWN_TOPIC_OR_PARTITION


# ------------------------------------------------------------------------ incremental

def test_incremental_alter_configs(b):
    with kwire.broker_log_on_failure(b), cfgwire.Conn(b.port) as c:
        kwire.create_topic(b.bootstrap, "inc", 1, {"segment.ms": "900000"})

        def cfg(key):
            x = c.topic_configs("inc", keys=[key])[key]
            return x["value"], x["source"]

        r = c.incremental_topic("inc", [("retention.ms", OP_SET, "1234567"),
                                        ("max.message.bytes", OP_SET, "5000")])
        assert r["error"] == 0, r
        assert cfg("retention.ms") == ("1234567", cfgwire.SOURCE_TOPIC)
        assert cfg("segment.ms") == ("900000", cfgwire.SOURCE_TOPIC)  # untouched
        r = c.incremental_topic("inc", [("retention.ms", OP_DELETE, None)])
        assert r["error"] == 0, r
        assert cfg("retention.ms") == ("604800000", cfgwire.SOURCE_DEFAULT)
        assert cfg("max.message.bytes") == ("5000", cfgwire.SOURCE_TOPIC)
        # DELETE of a key that has no override: fine, nothing changes
        assert c.incremental_topic("inc", [("retention.ms", OP_DELETE, None)])["error"] == 0

        # APPEND / SUBTRACT on the list config cleanup.policy (from its default "delete")
        assert c.incremental_topic("inc", [("cleanup.policy", OP_APPEND, "compact")])["error"] == 0
        assert cfg("cleanup.policy") == ("delete,compact", cfgwire.SOURCE_TOPIC)
        assert c.incremental_topic("inc", [("cleanup.policy", OP_APPEND, "compact")])["error"] == 0
        assert cfg("cleanup.policy") == ("delete,compact", cfgwire.SOURCE_TOPIC)
        # now compacted: a keyless record is refused (the policy is live)
        err, _ = c.produce("inc", 0, cfgwire.keyed_batch([(None, b"v")]))
        assert err == cfgwire.INVALID_RECORD
        assert c.incremental_topic("inc", [("cleanup.policy", OP_SUBTRACT, "delete")])["error"] == 0
        assert cfg("cleanup.policy") == ("compact", cfgwire.SOURCE_TOPIC)
        r = c.incremental_topic("inc", [("cleanup.policy", OP_APPEND, "delete"),
                                        ("cleanup.policy", OP_SUBTRACT, "compact")])
        assert r["error"] == 0, r
        assert cfg("cleanup.policy") == ("delete", cfgwire.SOURCE_TOPIC)
        err, _ = c.produce("inc", 0, cfgwire.keyed_batch([(None, b"v")]))
        assert err == 0

        # APPEND to a non-list config: refused, naming the key
        r = c.incremental_topic("inc", [("retention.ms", OP_APPEND, "5")])
        assert r["error"] == cfgwire.INVALID_CONFIG and "retention.ms" in r["message"], r
        r = c.incremental_topic("inc", [("retention.ms", 9, "5")])
        assert r["error"] != 0, r

        # all or nothing per resource
        r = c.incremental_topic("inc", [("retention.ms", OP_SET, "1000"),
                                        ("segment.bytes", OP_SET, "1")])
        assert r["error"] == cfgwire.INVALID_CONFIG and "segment.bytes" in r["message"], r
        assert cfg("retention.ms") == ("604800000", cfgwire.SOURCE_DEFAULT)

        # validate only: answered, not applied
        r = c.incremental_alter([(RES_TOPIC, "inc", [("retention.ms", OP_SET, "777")])],
                                validate_only=True)[0]
        assert r["error"] == 0, r
        assert cfg("retention.ms") == ("604800000", cfgwire.SOURCE_DEFAULT)

        # several resources: each answered on its own
        kwire.create_topic(b.bootstrap, "inc2", 1)
        res = c.incremental_alter([(RES_TOPIC, "inc2", [("retention.ms", OP_SET, "999")]),
                                   (RES_TOPIC, "missing", [("retention.ms", OP_SET, "1")]),
                                   (RES_BROKER, "7", [("log.retention.ms", OP_SET, "1")])])
        assert [x["error"] for x in res] == [0, cfgwire.UNKNOWN_TOPIC_OR_PARTITION,
                                            cfgwire.INVALID_REQUEST], res
        assert res[2]["message"]
        assert c.topic_configs("inc2", keys=["retention.ms"])["retention.ms"]["value"] == "999"


INVALID = [
    ("no.such.config", "1"),
    ("retention.ms", "-5"),            # below -1
    ("retention.ms", "12abc"),         # malformed
    ("retention.ms", ""),
    ("segment.bytes", "10"),           # below 14
    ("segment.bytes", "3000000000"),   # above int32
    ("max.message.bytes", "-1"),
    ("min.insync.replicas", "0"),
    ("min.cleanable.dirty.ratio", "1.5"),
    ("min.cleanable.dirty.ratio", "abc"),
    ("min.cleanable.dirty.ratio", "NaN"),
    ("cleanup.policy", "compact,bogus"),
    ("cleanup.policy", "COMPACT"),     # Kafka's validator is case-sensitive
    ("message.timestamp.type", "logappendtime"),
    ("message.timestamp.type", "NoTime"),
    ("compression.type", "bogus"),
    ("compression.type", "ZSTD"),      # case-sensitive, as Kafka's ValidString
    ("compression.type", "none"),      # the producer's spelling; the topic's is uncompressed
    ("remote.storage.enable", "true"),  # no tiered storage, as Kafka's broker without it
    ("message.format.version", "latest"),  # not a Kafka version
    ("message.format.version", "3"),
]


def test_message_format_version_accepted_and_inert(broker_factory):
    """message.format.version (deprecated in Kafka 3.0, inert with record batch v2) is a
    valid topic config and broker property: CreateTopics and AlterConfigs take it from
    confluent-kafka and kafka-python, DescribeConfigs shows it, and records still go through
    as v2 batches. Before: INVALID_CONFIG "Unknown topic config name"."""
    b = broker_factory(log_message_format_version="2.8")
    with kwire.broker_log_on_failure(b):
        kwire.create_topic(b.bootstrap, "mfv", 1, {"message.format.version": "0.10.2"})
        a = admin(b)
        e = describe_topic(a, "mfv")["message.format.version"]
        assert (e.value, e.source) == ("0.10.2", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
        alter_topic(a, "mfv", {"message.format.version": "3.0-IV1"})
        assert describe_topic(a, "mfv")["message.format.version"].value == "3.0-IV1"
        kwire.create_topic(b.bootstrap, "mfv2", 1)
        e = describe_topic(a, "mfv2")["message.format.version"]
        assert (e.value, e.source) == ("2.8", ConfigSource.STATIC_BROKER_CONFIG.value)
        from kafka.admin import KafkaAdminClient, ConfigResource as KConfigResource, \
            ConfigResourceType, NewTopic as KNewTopic
        ka = KafkaAdminClient(bootstrap_servers=b.bootstrap)
        try:
            ka.create_topics([KNewTopic("mfv3", 1, 1,
                                        topic_configs={"message.format.version": "2.1"})])
            ka.alter_configs([KConfigResource(ConfigResourceType.TOPIC, "mfv3",
                                              configs={"message.format.version": "0.9.0"})])
        finally:
            ka.close()
        assert describe_topic(a, "mfv3")["message.format.version"].value == "0.9.0"
        err, msg = produce_one(b, "mfv", b"v2")
        assert err is None, err
        got = kwire.consume_all(b.bootstrap, "mfv", [0])
        assert got[0] == [(0, b"v2")]


def test_invalid_values_refused(b):
    """Every invalid value: INVALID_CONFIG with a message naming the key, through
    AlterConfigs, IncrementalAlterConfigs and CreateTopics; the topic keeps its configs."""
    with kwire.broker_log_on_failure(b), cfgwire.Conn(b.port) as c:
        kwire.create_topic(b.bootstrap, "bad", 1, {"retention.ms": "3600000"})
        before = c.topic_configs("bad")
        a = admin(b)
        for key, value in INVALID:
            r = c.incremental_topic("bad", [(key, OP_SET, value)])
            assert r["error"] == cfgwire.INVALID_CONFIG, (key, value, r)
            assert key in r["message"], (key, value, r)
            r = c.alter_configs([(RES_TOPIC, "bad", {key: value})])[0]
            assert r["error"] == cfgwire.INVALID_CONFIG and key in r["message"], (key, value, r)
            fs = a.create_topics([NewTopic("bad-new", 1, 1, config={key: value})])
            expect_kafka_error(lambda: fs["bad-new"].result(20), KafkaError.INVALID_CONFIG, key)
        assert c.topic_configs("bad") == before
        assert "bad-new" not in kwire.list_topics(b.bootstrap)
        # the message is useful: it says what is allowed
        r = c.incremental_topic("bad", [("compression.type", OP_SET, "bogus")])
        assert "producer" in r["message"] and "zstd" in r["message"], r
        r = c.incremental_topic("bad", [("segment.bytes", OP_SET, "10")])
        assert "14" in r["message"], r
        # valid edge values pass
        for key, value in [("retention.ms", "-1"), ("segment.bytes", "14"),
                           ("min.cleanable.dirty.ratio", "0"), ("min.cleanable.dirty.ratio", "1"),
                           ("cleanup.policy", "compact, delete"), ("preallocate", "TRUE"),
                           ("compression.type", "producer"), ("compression.type", "gzip"),
                           ("compression.type", "uncompressed"), ("max.message.bytes", "0")]:
            r = c.incremental_topic("bad", [(key, OP_SET, value)])
            assert r["error"] == 0, (key, value, r)


def test_configs_survive_restart(b):
    with kwire.broker_log_on_failure(b), cfgwire.Conn(b.port) as c:
        kwire.create_topic(b.bootstrap, "keep", 2, {"cleanup.policy": "compact"})
        assert c.incremental_topic("keep", [("retention.ms", OP_SET, "4444444"),
                                            ("cleanup.policy", OP_APPEND, "delete"),
                                            ("max.message.bytes", OP_SET, "300")])["error"] == 0
        before = c.topic_configs("keep")
    b.restart()
    with kwire.broker_log_on_failure(b), cfgwire.Conn(b.port) as c:
        after = c.topic_configs("keep")
        assert after == before
        assert after["retention.ms"]["value"] == "4444444"
        assert after["cleanup.policy"]["value"] == "compact,delete"
        assert after["max.message.bytes"]["source"] == cfgwire.SOURCE_TOPIC
        # and they are in force: a 400-byte batch is too large, keyless records are refused
        err, _ = c.produce("keep", 1, cfgwire.keyed_batch([(b"k", b"x" * 400)]))
        assert err == cfgwire.MESSAGE_TOO_LARGE
        err, _ = c.produce("keep", 1, cfgwire.keyed_batch([(None, b"x")]))
        assert err == cfgwire.INVALID_RECORD
        err, _ = c.produce("keep", 1, cfgwire.keyed_batch([(b"k", b"x")]))
        assert err == 0


# ------------------------------------------------------------------------ honoured live

def test_max_message_bytes(b):
    with kwire.broker_log_on_failure(b), cfgwire.Conn(b.port) as c:
        kwire.create_topic(b.bootstrap, "big", 1, {"max.message.bytes": "2000"})
        conf = {"message.max.bytes": 10_000_000, "compression.type": "none", "retries": 0}
        err, msg = produce_one(b, "big", b"x" * 5000, conf=conf)
        assert err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE, err
        err, msg = produce_one(b, "big", b"y" * 500, conf=conf)
        assert err is None and msg.offset() == 0
        # the limit is the batch size (as Kafka): exactly max.message.bytes passes, one more
        # byte does not
        batch = cfgwire.keyed_batch([(b"k", b"z" * 300)])
        assert c.incremental_topic("big", [("max.message.bytes", OP_SET, str(len(batch)))])[
            "error"] == 0
        assert c.produce("big", 0, batch)[0] == 0
        assert c.incremental_topic("big", [("max.message.bytes", OP_SET, str(len(batch) - 1))])[
            "error"] == 0
        assert c.produce("big", 0, batch)[0] == cfgwire.MESSAGE_TOO_LARGE
        # raised live: the big record now goes through
        assert c.incremental_topic("big", [("max.message.bytes", OP_SET, "100000")])["error"] == 0
        err, msg = produce_one(b, "big", b"x" * 5000, conf=conf)
        assert err is None and msg.offset() == 2
        got = cfgwire.read_partition(b.bootstrap, "big", 0)
        assert [(o, len(v)) for o, _, v, _ in got] == [(0, 500), (1, 300), (2, 5000)]


def test_log_append_time(b):
    """message.timestamp.type=LogAppendTime: consumers see the broker's append time with
    timestamp type LogAppendTime, whatever the producer put in; switched on live."""
    with kwire.broker_log_on_failure(b), cfgwire.Conn(b.port) as c:
        kwire.create_topic(b.bootstrap, "lat", 1, {"message.timestamp.type": "LogAppendTime"})
        kwire.create_topic(b.bootstrap, "ct", 1)
        old = 1234567890000  # 2009
        t0 = int(time.time() * 1000)
        for codec in ("none", "lz4", "zstd"):
            err, msg = produce_one(b, "lat", b"v-" + codec.encode(), key=b"k", timestamp=old,
                                   conf={"compression.type": codec})
            assert err is None, err
            # the produce response carries the append time too
            assert msg.timestamp()[0] == TIMESTAMP_LOG_APPEND_TIME, msg.timestamp()
        err, msg = produce_one(b, "ct", b"v", timestamp=old)
        assert err is None
        t1 = int(time.time() * 1000)
        got = cfgwire.read_partition(b.bootstrap, "lat", 0)
        assert len(got) == 3
        for off, key, value, (tstype, ts) in got:
            assert tstype == TIMESTAMP_LOG_APPEND_TIME, (off, tstype)
            assert t0 - 5 <= ts <= t1 + 5, (off, ts, t0, t1)
        (_, _, _, ts), = cfgwire.read_partition(b.bootstrap, "ct", 0)
        assert ts == (TIMESTAMP_CREATE_TIME, old)
        # switched on for "ct" live: earlier records keep their create time
        assert c.incremental_topic("ct", [("message.timestamp.type", OP_SET,
                                           "LogAppendTime")])["error"] == 0
        t2 = int(time.time() * 1000)
        err, msg = produce_one(b, "ct", b"w", timestamp=old)
        assert err is None
        got = cfgwire.read_partition(b.bootstrap, "ct", 0)
        assert got[0][3] == (TIMESTAMP_CREATE_TIME, old)
        assert got[1][3][0] == TIMESTAMP_LOG_APPEND_TIME and got[1][3][1] >= t2 - 5, got[1]


def test_log_append_time_indexes_the_append_time(b):
    """On a LogAppendTime topic the time index and the segment's times hold the broker's
    append time, not the producer's: a ListOffsets by a time just before the append finds
    the record (it answered no offset when the index kept the producer's 2009 timestamp)."""
    with kwire.broker_log_on_failure(b), cfgwire.Conn(b.port) as c:
        kwire.create_topic(b.bootstrap, "lat-idx", 1, {"message.timestamp.type": "LogAppendTime"})
        t0 = int(time.time() * 1000)
        for i in range(3):
            err, _ = produce_one(b, "lat-idx", b"v%d" % i, timestamp=1234567890000)
            assert err is None, err
        assert c.list_offset("lat-idx", 0, t0 - 1000) == (0, 0)
        assert c.list_offset("lat-idx", 0, t0 + 60000) == (0, -1)


def test_min_insync_replicas(b):
    with kwire.broker_log_on_failure(b), cfgwire.Conn(b.port) as c:
        kwire.create_topic(b.bootstrap, "isr", 1, {"min.insync.replicas": "2"})
        batch = cfgwire.keyed_batch([(b"k", b"v")])
        assert c.produce("isr", 0, batch, acks=-1)[0] == cfgwire.NOT_ENOUGH_REPLICAS
        assert c.produce("isr", 0, batch, acks=1) == (0, 0)
        assert c.incremental_topic("isr", [("min.insync.replicas", OP_DELETE, None)])["error"] == 0
        assert c.produce("isr", 0, batch, acks=-1) == (0, 1)


def test_keyless_records_on_compacted_topic(b):
    with kwire.broker_log_on_failure(b), cfgwire.Conn(b.port) as c:
        kwire.create_topic(b.bootstrap, "cmp", 1, {"cleanup.policy": "compact"})
        assert c.produce("cmp", 0, cfgwire.keyed_batch([(None, b"v")]))[0] == cfgwire.INVALID_RECORD
        # one keyless record spoils the batch; nothing of it is stored
        mixed = cfgwire.keyed_batch([(b"a", b"1"), (None, b"2"), (b"c", b"3")])
        assert c.produce("cmp", 0, mixed)[0] == cfgwire.INVALID_RECORD
        assert c.produce("cmp", 0, cfgwire.keyed_batch([(b"a", b"1"), (b"b", None)])) == (0, 0)
        assert c.list_offset("cmp", 0, -1) == (0, 2)
        # a real client, compressed batches too
        for codec in ("none", "lz4"):
            err, _ = produce_one(b, "cmp", b"no key", conf={"compression.type": codec,
                                                            "retries": 0})
            assert err is not None and err.code() == KafkaError.INVALID_RECORD, (codec, err)
            err, msg = produce_one(b, "cmp", b"keyed", key=b"k", conf={"compression.type": codec})
            assert err is None, err
        assert c.list_offset("cmp", 0, -1) == (0, 4)
        # the policy changes live
        assert c.incremental_topic("cmp", [("cleanup.policy", OP_SET, "delete")])["error"] == 0
        assert c.produce("cmp", 0, cfgwire.keyed_batch([(None, b"v")])) == (0, 4)


# ------------------------------------------------------------------------ CreatePartitions

def test_create_partitions(broker_factory):
    b = broker_factory(**{"group.initial.rebalance.delay.ms": 0})
    with kwire.broker_log_on_failure(b):
        kwire.create_topic(b.bootstrap, "grow", 1)
        a = admin(b)
        # a consumer in a group, subscribed before the topic grows
        cons = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "grow-group",
                         "auto.offset.reset": "earliest", "topic.metadata.refresh.interval.ms": 500,
                         "session.timeout.ms": 6000, "enable.auto.commit": False})
        try:
            cons.subscribe(["grow"])
            p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 0,
                          "topic.metadata.refresh.interval.ms": 500})
            p.produce("grow", b"p0-before", partition=0)
            assert p.flush(20) == 0
            seen = {}
            deadline = time.time() + 30
            while (0, 0) not in seen:
                assert time.time() < deadline, "the consumer never read partition 0"
                m = cons.poll(0.5)
                if m is not None and not m.error():
                    seen[(m.partition(), m.offset())] = m.value()

            fs = a.create_partitions([NewPartitions("grow", 3)])
            fs["grow"].result(20)
            assert kwire.list_topics(b.bootstrap)["grow"] == 3
            # the running producer learns the new partitions and writes to index 2
            delivered = []
            deadline = time.time() + 20
            while not delivered:
                assert time.time() < deadline, "producer never saw partition 2"
                try:
                    p.produce("grow", b"p2-new", partition=2,
                              on_delivery=lambda err, msg: delivered.append((err, msg)))
                except KafkaException as e:  # unknown partition until its metadata refresh
                    assert e.args[0].code() == KafkaError._UNKNOWN_PARTITION, e
                    time.sleep(0.2)
                    continue
                p.flush(20)
            (err, msg), = delivered
            assert err is None and (msg.partition(), msg.offset()) == (2, 0), err
            # the subscribed consumer rebalances onto the new partitions and reads it
            deadline = time.time() + 40
            while (2, 0) not in seen:
                assert time.time() < deadline, "the consumer never read partition 2: %s" % seen
                m = cons.poll(0.5)
                if m is not None and not m.error():
                    seen[(m.partition(), m.offset())] = m.value()
            assert seen[(2, 0)] == b"p2-new"
            assert {tp.partition for tp in cons.assignment()} == {0, 1, 2}
        finally:
            cons.close()
        # shrinking or keeping the count is refused
        for count in (2, 3):
            expect_kafka_error(
                lambda: a.create_partitions([NewPartitions("grow", count)])["grow"].result(20),
                KafkaError.INVALID_PARTITIONS)
        with cfgwire.Conn(b.port) as c:
            res = c.create_partitions([("grow", 5, None)], validate_only=True)
            assert res == [("grow", 0, None)]
            assert kwire.list_topics(b.bootstrap)["grow"] == 3
            (name, err, msg), = c.create_partitions([("grow", 4, [[7]])])
            assert err == KafkaError.INVALID_REPLICA_ASSIGNMENT, (err, msg)
            (name, err, msg), = c.create_partitions([("grow", 1, None)], version=0)
            assert err == cfgwire.INVALID_PARTITIONS and msg, (err, msg)
            (name, err, msg), = c.create_partitions([("missing", 4, None)])
            assert err == cfgwire.UNKNOWN_TOPIC_OR_PARTITION
            assert c.create_partitions([("grow", 4, [[1]])]) == [("grow", 0, None)]
        # kafka-python grows it too
        from kafka.admin import KafkaAdminClient, NewPartitions as KNewPartitions
        k = KafkaAdminClient(bootstrap_servers=b.bootstrap)
        try:
            resp = k.create_partitions({"grow": KNewPartitions(6)})
            assert [tuple(x[:2]) for x in resp.topic_errors] == [("grow", 0)], resp
        finally:
            k.close()
        assert kwire.list_topics(b.bootstrap)["grow"] == 6
        err, msg = produce_one(b, "grow", b"p5", partition=5)
        assert err is None and msg.offset() == 0
    b.restart()
    with kwire.broker_log_on_failure(b):
        assert kwire.list_topics(b.bootstrap)["grow"] == 6
        assert [v for _, _, v, _ in cfgwire.read_partition(b.bootstrap, "grow", 2)] == [b"p2-new"]
        assert [v for _, _, v, _ in cfgwire.read_partition(b.bootstrap, "grow", 5)] == [b"p5"]


def test_create_partitions_storage_failure(b):
    """New partition directories cannot be created (the data directory is made immutable):
    KAFKA_STORAGE_ERROR with a message, the topic keeps its partitions and keeps working;
    once the directory is writable again the same request succeeds."""
    with kwire.broker_log_on_failure(b), cfgwire.Conn(b.port) as c:
        kwire.create_topic(b.bootstrap, "sf", 1)
        if subprocess.run(["chattr", "+i", b.data_dir], capture_output=True).returncode != 0:
            pytest.skip("chattr +i is not supported on this file system")
        try:
            (name, err, msg), = c.create_partitions([("sf", 3, None)])
            assert err == 56 and msg, (err, msg)  # KAFKA_STORAGE_ERROR
            assert kwire.list_topics(b.bootstrap)["sf"] == 1
            assert c.produce("sf", 0, cfgwire.keyed_batch([(b"k", b"v")])) == (0, 0)
            assert c.produce("sf", 2, cfgwire.keyed_batch([(b"k", b"v")]))[0] == \
                cfgwire.UNKNOWN_TOPIC_OR_PARTITION
        finally:
            subprocess.run(["chattr", "-i", b.data_dir], check=True)
        assert c.create_partitions([("sf", 3, None)]) == [("sf", 0, None)]
        assert kwire.list_topics(b.bootstrap)["sf"] == 3
        assert c.produce("sf", 2, cfgwire.keyed_batch([(b"k", b"v")])) == (0, 0)
