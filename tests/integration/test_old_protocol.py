"""Old protocol versions, as Apache Kafka 3.x serves them (issue 20 items 1 and 2).

Produce v0-2 carry message sets of magic 0/1, which kpool up-converts to record batches v2;
Fetch v0-3 down-convert the stored batches to magic 0 (v0-1) or 1 (v2-3). Clients pinned to
old versions must produce and consume byte-identical records under every codec the old
formats carry (none, gzip, snappy, lz4).
"""
import gzip
import os
import struct
import time

import pytest

import kwire

CODECS = (None, "gzip", "snappy", "lz4")
CODEC_IDS = {None: 0, "none": 0, "gzip": 1, "snappy": 2, "lz4": 3}


def stored_codecs(broker, topic, partition=0):
    """The codec ids of the batches stored in a partition's segment files."""
    d = os.path.join(broker.data_dir, "%s-%d" % (topic, partition))
    out = set()
    for name in sorted(os.listdir(d)):
        if name.endswith(".log"):
            data = open(os.path.join(d, name), "rb").read()
            for pos, _, _, _ in kwire.parse_batches(data):
                out.add(struct.unpack_from(">h", data, pos + 21)[0] & 7)
    return out


def kafka_python_roundtrip(broker, topic, api_version, codec, n=300, group=None):
    """Produces n keyed records with kafka-python pinned to api_version, reads them back with
    the same pin; returns (sent, got) as [(key, value)] and the consumed timestamps."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    kwire.create_topic(broker.bootstrap, topic, 1)
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, api_version=api_version,
                      compression_type=codec, linger_ms=50, acks=1)
    sent = []
    for i in range(n):
        k = None if i % 7 == 0 else b"k%d" % i
        v = b"" if i % 11 == 0 else os.urandom(i % 50) + b"v%d" % i
        sent.append((k, v))
        p.send(topic, key=k, value=v, partition=0)
    p.flush(30)
    p.close()
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, api_version=api_version,
                      group_id=group, enable_auto_commit=False, auto_offset_reset="earliest",
                      consumer_timeout_ms=15000, fetch_max_wait_ms=100)
    if group:
        c.subscribe([topic])
    else:
        c.assign([TopicPartition(topic, 0)])
        c.seek_to_beginning()
    got, offsets, stamps = [], [], []
    for m in c:
        got.append((m.key, m.value))
        offsets.append(m.offset)
        stamps.append(m.timestamp)
        if len(got) == n:
            break
    c.close()
    assert offsets == list(range(len(offsets)))
    return sent, got, stamps


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("api_version", [(0, 10), (0, 9)])
def test_kafka_python_old_formats(broker, api_version, codec):
    """kafka-python 0.10 (Produce v2/Fetch v2, magic 1) and 0.9 (Produce v1/Fetch v1,
    magic 0). Fails on the old code: Produce v0-2 answered UNSUPPORTED_VERSION, Fetch v0-3
    closed the connection."""
    topic = "old-%d%d-%s" % (api_version[0], api_version[1], codec or "none")
    with kwire.broker_log_on_failure(broker):
        t0 = int(time.time() * 1000)
        group = "g-" + topic if codec == "gzip" else None  # the old group protocol too
        sent, got, stamps = kafka_python_roundtrip(broker, topic, api_version, codec,
                                                   group=group)
        assert got == sent
        # up-conversion keeps the wrapper's codec (compression.type=producer), as Kafka
        assert stored_codecs(broker, topic) == {CODEC_IDS[codec]}
        if api_version >= (0, 10):  # magic 1 keeps CreateTime
            assert all(t0 - 60000 <= t <= t0 + 60000 for t in stamps), stamps[:5]
        else:  # magic 0 has no timestamp
            assert all(t in (None, -1) for t in stamps), stamps[:5]
        m = broker.metrics()
        assert "kpool_produce_upconverted_total 0\n" not in m
        assert "kpool_fetch_downconverted_total 0\n" not in m


# --------------------------------------------------------------------------- raw wire

def produce_old(s, topic, records, version, corr=1, acks=-1):
    """Produce v0-2 of one partition's records; (error, base offset, log append time)."""
    part = kwire.i32(0) + kwire.bytes_(records)
    body = kwire.i16(acks) + kwire.i32(5000) + kwire.array([kwire.string(topic) +
                                                             kwire.array([part])])
    s.sendall(kwire.request(kwire.API_PRODUCE, version, corr, body))
    p = kwire.recv_frame(s)
    c, nt = struct.unpack_from(">ii", p, 0)
    assert (c, nt) == (corr, 1)
    pos = 10 + struct.unpack_from(">h", p, 8)[0]
    np_, _, err, base = struct.unpack_from(">iihq", p, pos)
    pos += 18
    lat = None
    if version >= 2:
        lat = struct.unpack_from(">q", p, pos)[0]
        pos += 8
    if version >= 1:
        pos += 4  # throttle
    assert pos == len(p), "Produce v%d response of %d bytes, parsed %d" % (version, len(p), pos)
    return err, base, lat


def fetch_old(s, topic, offset, version, partition_max, max_bytes=1 << 20, corr=1):
    """Fetch v0-3 of one partition: (error, high watermark, message set bytes)."""
    s.sendall(kwire.request(kwire.API_FETCH, version, corr,
                            kwire.body_fetch(version, topic, 0, offset, max_bytes=max_bytes)
                            [:-4] + kwire.i32(partition_max)))
    p = kwire.recv_frame(s)
    pos = 4 + (4 if version >= 1 else 0)
    nt = struct.unpack_from(">i", p, pos)[0]
    assert nt == 1
    pos += 4
    pos += 2 + struct.unpack_from(">h", p, pos)[0]
    np_, _, err, hwm, n = struct.unpack_from(">iihqi", p, pos)
    pos += 22
    assert pos + max(n, 0) == len(p)
    return err, hwm, p[pos:pos + max(n, 0)]


def test_fetch_old_byte_limits(broker):
    """Fetch v0-2 keep a hard partition limit (whole messages, or the first one cut so the
    client grows its buffer, as Kafka before KIP-74); Fetch v3 returns the first message whole
    (KIP-74). Three 1000-byte values are one stored batch."""
    kwire.create_topic(broker.bootstrap, "limits", 1)
    s = kwire.connect(broker.port)
    with kwire.broker_log_on_failure(broker):
        assert kwire.produce_raw(s, "limits", 0, [b"a" * 1000, b"b" * 1000, b"c" * 1000])[0] == 0
        err, hwm, full = fetch_old(s, "limits", 0, 1, 1 << 20)
        msgs = kwire.parse_message_set(full)
        assert (err, hwm, [m[0] for m in msgs], {m[1] for m in msgs}) == (0, 3, [0, 1, 2], {0})
        one = len(full) // 3
        err, _, got = fetch_old(s, "limits", 0, 0, 2 * one + 10)
        assert err == 0 and got == full[:2 * one]
        err, _, got = fetch_old(s, "limits", 1, 2, 1 << 20)  # from the middle of the batch
        assert [m[0] for m in kwire.parse_message_set(got)] == [1, 2]
        assert {m[1] for m in kwire.parse_message_set(got)} == {1}
        err, _, got = fetch_old(s, "limits", 0, 2, 100)
        assert err == 0 and len(got) == 100 and kwire.parse_message_set(got) == []
        err, _, got = fetch_old(s, "limits", 0, 3, 100)
        msgs = kwire.parse_message_set(got)
        assert err == 0 and [m[0] for m in msgs] == [0] and msgs[0][5] == b"a" * 1000
        one1 = len(fetch_old(s, "limits", 0, 3, 1 << 20)[2]) // 3  # magic 1: 8 bytes more
        err, _, got = fetch_old(s, "limits", 0, 3, 1 << 20, max_bytes=2 * one1 + 5)
        assert len(kwire.parse_message_set(got)) == 2  # the request's MaxBytes counts too
    s.close()


def test_produce_old_errors_and_configs(broker):
    """A bad CRC-32 is CORRUPT_MESSAGE (2) and stores nothing; the topic's compression.type
    applies to up-converted sets; LogAppendTime topics answer the append time (v2) and give
    it to every fetched message (magic 1 attribute bit 3)."""
    kwire.create_topic(broker.bootstrap, "oldcfg", 1,
                       {"compression.type": "gzip", "message.timestamp.type": "LogAppendTime"})
    s = kwire.connect(broker.port)
    with kwire.broker_log_on_failure(broker):
        bad = bytearray(kwire.message_set([b"x"], magic=1))
        bad[-1] ^= 1
        assert produce_old(s, "oldcfg", bytes(bad), 2)[0] == 2
        t0 = int(time.time() * 1000)
        err, base, lat = produce_old(s, "oldcfg", kwire.message_set([b"x", b"y"], magic=1,
                                                                    timestamp=5), 2)
        assert (err, base) == (0, 0) and abs(lat - t0) < 60000, (err, base, lat)
        err, base, lat = produce_old(s, "oldcfg", kwire.message_set([b"z"], magic=0), 0)
        assert (err, base, lat) == (0, 2, None)
        assert stored_codecs(broker, "oldcfg") == {1}
        inner, offset = [], 0
        while offset < 3:  # a fetch returns one segment's batches at most: fetch on
            err, hwm, got = fetch_old(s, "oldcfg", offset, 2, 1 << 20)
            assert (err, hwm) == (0, 3) and got
            for off, magic, attrs, ts, k, v in kwire.parse_message_set(got):
                # one gzip wrapper per stored batch, LogAppendTime outside and inside
                assert (magic, attrs & 7, attrs & 8) == (1, 1, 8) and ts >= t0 - 60000
                msgs = kwire.parse_message_set(gzip.decompress(v))
                assert all(m[2] == 8 and m[3] == ts for m in msgs)
                inner += msgs
                offset = off + 1
        assert [(m[3] >= t0 - 60000, m[5]) for m in inner] == [(True, b"x"), (True, b"y"),
                                                                 (True, b"z")]
    s.close()


def test_fetch_old_zstd_is_unsupported_compression(broker):
    """zstd batches cannot be down-converted: Fetch v0-3 answer UNSUPPORTED_COMPRESSION_TYPE
    (76), as Kafka answers fetches older than v10."""
    from confluent_kafka import Producer
    kwire.create_topic(broker.bootstrap, "zstdold", 1)
    p = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": "zstd"})
    p.produce("zstdold", b"zz" * 100, partition=0)
    assert p.flush(30) == 0
    assert stored_codecs(broker, "zstdold") == {4}
    s = kwire.connect(broker.port)
    for v in range(4):
        err, hwm, got = fetch_old(s, "zstdold", 0, v, 1 << 20, corr=v)
        assert (err, hwm, got) == (76, 1, b""), v
    s.close()
