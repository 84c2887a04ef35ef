"""Read-your-writes (issue 20 item 3): a record acknowledged with acks=1 or acks=all is
visible to the very next request — ListOffsets(latest) returns an end above its offset and
a Fetch returns it — in durable mode (the HWM is the fsynced end, so acks=1 waits for the
group-commit fsync like acks=all) and in page-cache mode (HWM = log end at append).

Before the fix, durable acks=1 was answered right after the page-cache write, before the
flusher moved the HWM: a ListOffsets sent right after the ack returned the old end for a few
milliseconds, so these tests failed for durable/acks=1.
"""
import struct

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

import kwire

PAIRS = 1000


def list_offsets_latest(s, topic, corr):
    """ListOffsets v1 (latest) on socket s: the partition's end offset."""
    s.sendall(kwire.request(2, 1, corr, kwire.body_list_offsets(1, topic, 0, -1)))
    payload = kwire.recv_frame(s)
    c, nt = struct.unpack_from(">ii", payload, 0)
    assert c == corr and nt == 1
    nl = struct.unpack_from(">h", payload, 8)[0]
    pos = 10 + nl
    npart, idx, err, ts, off = struct.unpack_from(">iihqq", payload, pos)
    assert npart == 1 and err == 0, err
    return off


@pytest.mark.parametrize("policy", ["durable", "pagecache"])
@pytest.mark.parametrize("acks", [1, -1])
def test_acked_record_visible_to_next_list_offsets(broker_factory, policy, acks):
    b = broker_factory(log_flush_policy=policy)
    topic = "ryw-%s-%d" % (policy, acks + 1)
    kwire.create_topic(b.bootstrap, topic)
    prod = kwire.connect(b.port)
    other = kwire.connect(b.port)  # a different connection: no per-connection ordering helps
    late = []
    try:
        with kwire.broker_log_on_failure(b):
            for i in range(PAIRS):
                err, base = kwire.produce_raw(prod, topic, 0, [b"v%d" % i], corr=i + 1,
                                              acks=acks)
                assert err == 0 and base == i, (err, base, i)
                end = list_offsets_latest(other, topic, i + 1)
                if end <= base:
                    late.append((base, end))
    finally:
        prod.close()
        other.close()
    assert not late, "%d of %d acknowledged records not visible to the next ListOffsets, " \
        "first: offset %d, end %d" % (len(late), PAIRS, late[0][0], late[0][1])


def test_acks1_durable_confluent_producer_then_fetch(broker):
    """confluent-kafka: each acks=1 delivery report is followed at once by a watermark query
    and a fetch from another client; both see the record."""
    topic = "ryw-client"
    kwire.create_topic(broker.bootstrap, topic)
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": 1, "linger.ms": 0})
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "ryw",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 10})
    acked = []
    try:
        for i in range(100):
            p.produce(topic, value=b"r%d" % i, partition=0,
                      on_delivery=lambda err, m: acked.append((err, m.offset())))
            assert p.flush(10) == 0
            err, off = acked[-1]
            assert err is None, err
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10,
                                             cached=False)
            assert hi > off, "acknowledged offset %d, end %d" % (off, hi)
        c.assign([TopicPartition(topic, 0, acked[-1][1])])
        m = c.poll(10)
        assert m is not None and not m.error() and m.value() == b"r99"
    finally:
        c.close()
