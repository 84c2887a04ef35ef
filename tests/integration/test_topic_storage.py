"""Topic configs that change what the broker stores or when it fsyncs, with real clients.

  - compression.type=zstd: uncompressed and lz4 batches from confluent-kafka and kafka-python
    are stored as zstd batches (segment files inspected), and both clients read back exactly
    the records that were produced (keys, values, null values, headers), in order;
  - compression.type=uncompressed: compressed batches are stored uncompressed;
  - an idempotent confluent-kafka producer on a recompressing topic: no delivery errors,
    every message stored once, in order;
  - message.timestamp.before.max.ms=3600000: a record 2 h old is refused with
    INVALID_TIMESTAMP (confluent-kafka delivery report, kafka-python future), compressed or
    not, and nothing of it is stored; a current record is accepted; after.max.ms and the
    deprecated difference.max.ms set live through IncrementalAlterConfigs (raw: the installed
    confluent-kafka 1.7 and kafka-python 2.0.2 have no incremental API) and AdminClient
    alter_configs; LogAppendTime topics are not checked;
  - flush.messages / flush.ms in page-cache mode: the broker's /metrics show the fsyncs
    (kpool_log_interval_flushes_total, kpool_log_flushes_total), and none without them.
"""
import random
import re
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource

import cfgwire
import clients
import kwire
from cfgwire import OP_SET


def records(tag, n, seed):
    """n (key, value, headers) records: binary keys, compressible and random values, some
    empty or null, headers on some."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        if i % 50 == 7:
            value = None
        elif i % 3 == 0:
            value = rnd.randbytes(rnd.randrange(0, 300))
        else:
            value = (b"%s-%d " % (tag, i)) * rnd.randrange(1, 40)
        headers = [("h%d" % j, rnd.randbytes(rnd.randrange(0, 20))) for j in range(i % 3)]
        out.append((rnd.randbytes(rnd.randrange(1, 16)), value, headers))
    return out


def produce_confluent(b, topic, recs, codec, conf=None):
    c = {"bootstrap.servers": b.bootstrap, "compression.type": codec, "linger.ms": 20,
         "acks": "all", "message.timeout.ms": 20000}
    c.update(conf or {})
    p = Producer(c)
    errors = []
    for key, value, headers in recs:
        p.produce(topic, key=key, value=value, headers=headers, partition=0,
                  on_delivery=lambda err, msg: err and errors.append(err))
        p.poll(0)
    assert p.flush(30) == 0
    assert not errors, errors[:3]


def produce_kafka_python(b, topic, recs, codec):
    from kafka import KafkaProducer
    p = KafkaProducer(bootstrap_servers=b.bootstrap, acks="all", linger_ms=20,
                      compression_type=None if codec == "none" else codec)
    futs = [p.send(topic, key=k, value=v, headers=h, partition=0) for k, v, h in recs]
    p.flush(30)
    for f in futs:
        f.get(10)
    p.close(10)


def read_confluent(b, topic):
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "ts-read",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=20)
        c.assign([TopicPartition(topic, 0, lo)])
        out = []
        deadline = time.time() + 30
        while len(out) < hi - lo:
            assert time.time() < deadline, "read %d of %d" % (len(out), hi - lo)
            m = c.poll(0.5)
            if m is None or (m.error() and m.error().code() == KafkaError._PARTITION_EOF):
                continue
            assert not m.error(), m.error()
            out.append((m.offset(), (m.key(), m.value(), list(m.headers() or []))))
        return out
    finally:
        c.close()


def read_kafka_python(b, topic):
    got = clients.consume_kafka_python(b.bootstrap, {(topic, 0): 0}, timeout=30)
    offs, recs = got[(topic, 0)]
    return list(zip(offs, [(k, v, list(h)) for k, v, h in recs]))


def stored_codecs(b, topic):
    batches = clients.segment_batches(b.data_dir, topic, 0)
    return {a & 7 for _, a, _ in batches}, sum(c for _, _, c in batches)


# ------------------------------------------------------------------ compression.type


def test_compression_type_recompresses(broker_factory):
    b = broker_factory()
    with kwire.broker_log_on_failure(b):
        kwire.create_topic(b.bootstrap, "z", 1, {"compression.type": "zstd"})
        kwire.create_topic(b.bootstrap, "plain", 1, {"compression.type": "uncompressed"})
        expected = []
        for i, (client, codec) in enumerate([("confluent", "none"), ("confluent", "lz4"),
                                             ("kafka-python", "none"),
                                             ("kafka-python", "lz4")]):
            recs = records(b"%s-%s" % (client.encode(), codec.encode()), 300, seed=i)
            (produce_confluent if client == "confluent" else produce_kafka_python)(
                b, "z", recs, codec)
            expected += [(k, v, list(h)) for k, v, h in recs]
        codecs, count = stored_codecs(b, "z")
        assert codecs == {clients.CODEC_IDS["zstd"]} and count == len(expected), (codecs, count)
        want = list(enumerate(expected))
        assert read_confluent(b, "z") == want
        assert read_kafka_python(b, "z") == want

        plain = records(b"plain", 200, seed=9)
        produce_confluent(b, "plain", plain[:100], "lz4")
        produce_kafka_python(b, "plain", plain[100:], "zstd")
        codecs, count = stored_codecs(b, "plain")
        assert codecs == {0} and count == 200, (codecs, count)
        want = [(i, (k, v, list(h))) for i, (k, v, h) in enumerate(plain)]
        assert read_confluent(b, "plain") == want
        assert read_kafka_python(b, "plain") == want
        m = b.metrics()
        assert int(re.search(r"^kpool_produce_recompressed_batches_total (\d+)", m,
                             re.M).group(1)) > 0


def test_idempotent_producer_across_recompression(broker_factory):
    b = broker_factory()
    with kwire.broker_log_on_failure(b):
        kwire.create_topic(b.bootstrap, "idem", 1, {"compression.type": "gzip"})
        recs = [(b"k%d" % i, b"value-%d " % i * 5, []) for i in range(3000)]
        produce_confluent(b, "idem", recs, "snappy",
                          conf={"enable.idempotence": True, "linger.ms": 5,
                                "batch.num.messages": 100,
                                "max.in.flight.requests.per.connection": 5})
        codecs, count = stored_codecs(b, "idem")
        assert codecs == {clients.CODEC_IDS["gzip"]} and count == 3000, (codecs, count)
        got = read_confluent(b, "idem")
        assert [r for _, r in got] == [(k, v, []) for k, v, _ in recs]
        # a batch the broker cannot decode is CORRUPT_MESSAGE, and not stored
        with cfgwire.Conn(b.port) as c:
            batch = bytearray(cfgwire.keyed_batch([(b"k", b"v" * 50)]))
            batch[22] |= 4  # claims zstd; the body is plain records
            batch[17:21] = kwire.u32(kwire.crc32c(bytes(batch[21:])))
            assert c.produce("idem", 0, bytes(batch))[0] == 2  # CORRUPT_MESSAGE
            assert c.list_offset("idem", 0, -1) == (0, 3000)


def zstd_batch(records):
    """cfgwire.keyed_batch with its records compressed by zstd (python's zstandard)."""
    import zstandard
    plain = cfgwire.keyed_batch(records)
    body = zstandard.ZstdCompressor().compress(plain[61:])
    head = bytearray(plain[:61])
    head[22] |= 4
    out = head + body
    out[8:12] = kwire.i32(len(out) - 12)
    out[17:21] = kwire.u32(kwire.crc32c(bytes(out[21:])))
    return bytes(out)


def test_max_message_bytes_applies_to_the_stored_batch(broker_factory):
    """As Kafka: the produced batch fits max.message.bytes, but stored uncompressed it does
    not -> MESSAGE_TOO_LARGE, nothing stored; compressed again it fits."""
    b = broker_factory()
    with kwire.broker_log_on_failure(b), cfgwire.Conn(b.port) as c:
        kwire.create_topic(b.bootstrap, "big", 1, {"compression.type": "uncompressed",
                                                   "max.message.bytes": "2000"})
        batch = zstd_batch([(b"k", b"x" * 10000)])
        assert len(batch) < 2000
        assert c.produce("big", 0, batch)[0] == 10  # MESSAGE_TOO_LARGE
        assert c.list_offset("big", 0, -1) == (0, 0)
        assert c.incremental_topic("big", [("compression.type", OP_SET, "lz4")])["error"] == 0
        assert c.produce("big", 0, batch) == (0, 0)
        assert stored_codecs(b, "big") == ({clients.CODEC_IDS["lz4"]}, 1)


# ------------------------------------------------------------------ timestamps


def produce_at(b, topic, ts, codec="none", value=b"v"):
    """One record with timestamp ts through confluent-kafka: the delivery error or None."""
    p = Producer({"bootstrap.servers": b.bootstrap, "compression.type": codec, "acks": "all",
                  "linger.ms": 0, "message.timeout.ms": 10000, "retries": 0})
    got = []
    p.produce(topic, value=value * 20, key=b"k", partition=0, timestamp=ts,
              on_delivery=lambda err, msg: got.append(err))
    assert p.flush(20) == 0
    return got[0]


def test_timestamp_bounds(broker_factory):
    from kafka import KafkaProducer
    from kafka.errors import InvalidTimestampError
    b = broker_factory()
    now = lambda: int(time.time() * 1000)  # noqa: E731
    two_hours = 2 * 3600 * 1000
    with kwire.broker_log_on_failure(b), cfgwire.Conn(b.port) as c:
        kwire.create_topic(b.bootstrap, "ts", 1, {"message.timestamp.before.max.ms": "3600000"})
        for codec in ("none", "lz4"):
            err = produce_at(b, "ts", now() - two_hours, codec)
            assert err is not None and err.code() == KafkaError.INVALID_TIMESTAMP, (codec, err)
            assert produce_at(b, "ts", now(), codec) is None
        # no upper bound here: a future record passes
        assert produce_at(b, "ts", now() + two_hours) is None
        p = KafkaProducer(bootstrap_servers=b.bootstrap, acks="all", retries=0)
        with pytest.raises(InvalidTimestampError):
            p.send("ts", b"old", partition=0, timestamp_ms=now() - two_hours).get(10)
        p.send("ts", b"new", partition=0, timestamp_ms=now()).get(10)
        p.close(10)
        assert c.list_offset("ts", 0, -1) == (0, 4)  # only the accepted ones
        # one old record spoils a whole batch
        t = now()
        assert c.produce("ts", 0, cfgwire.keyed_batch([(b"a", b"1")], t - two_hours))[0] == 32
        # a compressed batch that cannot be decoded to check is corrupt, not out of bounds
        bad = bytearray(cfgwire.keyed_batch([(b"a", b"1" * 50)], t))
        bad[22] |= 4  # claims zstd; the body is plain records
        bad[17:21] = kwire.u32(kwire.crc32c(bytes(bad[21:])))
        assert c.produce("ts", 0, bytes(bad))[0] == 2  # CORRUPT_MESSAGE
        assert c.list_offset("ts", 0, -1) == (0, 4)

        # live, through IncrementalAlterConfigs: an upper bound
        kwire.create_topic(b.bootstrap, "live", 1)
        assert produce_at(b, "live", now() + two_hours) is None
        assert c.incremental_topic("live", [("message.timestamp.after.max.ms", OP_SET,
                                              "60000")])["error"] == 0
        err = produce_at(b, "live", now() + two_hours)
        assert err is not None and err.code() == KafkaError.INVALID_TIMESTAMP, err
        assert produce_at(b, "live", now() - two_hours) is None
        # AdminClient.alter_configs (replaces the set): the deprecated difference.max.ms
        # bounds both directions
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        fs = a.alter_configs([ConfigResource("topic", "live", set_config={
            "message.timestamp.difference.max.ms": "3600000"})])
        list(fs.values())[0].result(20)
        for ts in (now() - two_hours, now() + two_hours):
            err = produce_at(b, "live", ts, "zstd")
            assert err is not None and err.code() == KafkaError.INVALID_TIMESTAMP, err
        assert produce_at(b, "live", now()) is None
        # LogAppendTime topics are not checked
        assert c.incremental_topic("live", [("message.timestamp.type", OP_SET,
                                              "LogAppendTime")])["error"] == 0
        assert produce_at(b, "live", now() - two_hours) is None


# ------------------------------------------------------------------ flush.messages / flush.ms


def metric(b, name):
    m = re.search(r"^%s (\d+)" % re.escape(name), b.metrics(), re.M)
    return int(m.group(1))


def test_flush_intervals_in_page_cache_mode(broker_factory):
    b = broker_factory(**{"log.flush.policy": "pagecache",
                          "log.flush.scheduler.interval.ms": 50})
    with kwire.broker_log_on_failure(b), cfgwire.Conn(b.port) as c:
        kwire.create_topic(b.bootstrap, "nf", 1)
        kwire.create_topic(b.bootstrap, "fm", 1, {"flush.messages": "10"})
        kwire.create_topic(b.bootstrap, "fms", 1, {"flush.ms": "200"})
        base = metric(b, "kpool_log_interval_flushes_total")
        fsyncs = metric(b, "kpool_log_flushes_total")
        # defaults: page cache only, no fsync at all
        for i in range(30):
            assert c.produce("nf", 0, cfgwire.keyed_batch([(b"k", b"v")]), acks=1)[0] == 0
        time.sleep(0.4)
        assert metric(b, "kpool_log_interval_flushes_total") == base
        assert metric(b, "kpool_log_flushes_total") == fsyncs
        # flush.messages=10: the 10th unflushed message queues an fsync, the 9 after it
        # do not, the 20th does
        def produce_fm(n):
            for i in range(n):
                assert c.produce("fm", 0, cfgwire.keyed_batch([(b"k", b"v")]), acks=1)[0] == 0

        def wait_fsyncs(n):
            deadline = time.time() + 30
            while metric(b, "kpool_log_flushes_total") < fsyncs + n and time.time() < deadline:
                time.sleep(0.05)
            time.sleep(0.2)  # and no more than that
            assert metric(b, "kpool_log_flushes_total") == fsyncs + n
            assert metric(b, "kpool_log_interval_flushes_total") == base + n

        produce_fm(9)
        time.sleep(0.2)
        assert metric(b, "kpool_log_flushes_total") == fsyncs
        produce_fm(1)
        wait_fsyncs(1)
        produce_fm(9)
        time.sleep(0.2)
        assert metric(b, "kpool_log_flushes_total") == fsyncs + 1
        produce_fm(1)
        wait_fsyncs(2)
        # flush.ms=200: one message is fsynced within a few check intervals, once
        assert c.produce("fms", 0, cfgwire.keyed_batch([(b"k", b"v")]), acks=1)[0] == 0
        wait_fsyncs(3)
        time.sleep(0.3)
        assert metric(b, "kpool_log_flushes_total") == fsyncs + 3
        assert "kpool_log_flush_seconds_count" in b.metrics()
