"""Old protocol versions, as Apache Kafka 3.x serves them (issue 20 items 1 and 2).

Produce v0-2 carry message sets of magic 0/1, which kpool up-converts to record batches v2;
Fetch v0-3 down-convert the stored batches to magic 0 (v0-1) or 1 (v2-3). Clients pinned to
old versions must produce and consume byte-identical records under every codec the old
formats carry (none, gzip, snappy, lz4).
"""
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
