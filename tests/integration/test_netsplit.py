"""Network partitions in a replicated pool (issue 14, SPEC §11): three brokers and etcd,
each in a network namespace of the test's own (harness/netns.py), links cut with blackhole
routes while the test driver, in the root namespace, still reaches every node.

The leader of an RF 3, min.insync.replicas=2 partition is cut off from etcd (hence the
controller) and from both other replicas:
  - it cannot acknowledge an acks=all write (its followers cannot fetch, and it cannot
    shrink the ISR to itself: that is a compare-and-swap in etcd), although it appends the
    records — its divergent tail;
  - a consumer reading from it never sees a record above its high watermark, which stays
    where it was at the cut;
  - the majority side elects a new leader and acknowledges acks=all writes;
after healing, the old leader follows the new one and truncates its divergent tail: every
acknowledged record is in the log exactly once at the offset its acknowledgement named —
also in the old leader's own copy, read once it is the only broker left — and none of the
records it appended while cut off is anywhere.

Skips, saying why, only where network namespaces cannot be made (not root, no iproute2).
"""
import os
import socket
import struct
import time

import pytest
from confluent_kafka import Producer

import kwire
from harness.netns import NetLab, NetLabUnavailable, NsBroker, NsEtcd
from pool_harness import kcat_metadata, wait_for
from test_pool import check_acked, consume_all, create_topic

ETCD_NODE = 4
TOPIC = "split"
# a follower that has not caught up for this long leaves the ISR: short, so that the cut
# leader tries (and must fail) to shrink its ISR to itself while it is cut off
LAG_MS = 3000


@pytest.fixture
def lab():
    try:
        lab = NetLab.create(4)
    except NetLabUnavailable as e:
        pytest.skip("network namespaces unavailable: %s" % e)
    yield lab
    lab.destroy()


def raw_connect(b, timeout=20):
    s = socket.create_connection((b.host, b.port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def send_produce(b, values, corr, timeout_ms=2000):
    """Sends one acks=all Produce v3 straight to broker b (no client re-routing); returns
    the socket to await_produce() on."""
    s = raw_connect(b)
    s.sendall(kwire.request(kwire.API_PRODUCE, 3, corr, kwire.body_produce(
        3, TOPIC, 0, kwire.record_batch(values), acks=-1, timeout=timeout_ms)))
    return s


def await_produce(s, wait_s=30):
    """The error code of the Produce sent on s, or None when no answer came in wait_s."""
    try:
        _, err, _ = kwire.parse_produce_response(kwire.recv_frame(s, timeout=wait_s))
        return err
    except (TimeoutError, socket.timeout):
        return None
    finally:
        s.close()


def raw_fetch(b, offset=0):
    """Fetch v4 of partition 0 straight from broker b: (error, high watermark,
    [(offset, value)] of every record returned)."""
    with raw_connect(b) as s:
        s.sendall(kwire.request(kwire.API_FETCH, 4, 7,
                                kwire.body_fetch(4, TOPIC, 0, offset, max_bytes=8 << 20)))
        data = kwire.recv_frame(s, timeout=20)
    pos = 8  # correlation id, throttle time
    (nt,) = struct.unpack_from(">i", data, pos)
    assert nt == 1
    (nl,) = struct.unpack_from(">h", data, pos + 4)
    pos += 6 + nl + 4  # topic name, partition count (1)
    _, err, hwm, _, naborted = struct.unpack_from(">ihqqi", data, pos)
    pos += 26 + max(naborted, 0) * 16
    (rlen,) = struct.unpack_from(">i", data, pos)
    records = data[pos + 4:pos + 4 + max(rlen, 0)]
    out = []
    for p, total, base, _ in kwire.parse_batches(records):
        for k, v in enumerate(kwire.batch_values(records[p:p + total])):
            out.append((base + k, v))
    return err, hwm, out


def partition_md(b):
    for t in kcat_metadata(b.bootstrap)["topics"]:
        if t["topic"] == TOPIC and not t.get("error"):
            return t["partitions"][0]
    return None


def produce_acked(bootstrap, prefix, first, n):
    """n acks=all records through confluent-kafka (idempotent), numbered from first (the
    checker wants the numbers rising along the log): {value: (partition, offset)} of every
    acknowledged one; asserts none failed."""
    acked, errors = {}, []
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "message.timeout.ms": 60000})

    def report(err, m):
        if err is not None:
            errors.append(err)
        else:
            acked[m.value()] = (m.partition(), m.offset())
    for i in range(first, first + n):
        p.produce(TOPIC, value=b"%s-%06d" % (prefix, i), on_delivery=report)
    assert p.flush(90) == 0
    assert not errors, errors[:3]
    return acked


def test_cut_off_leader_cannot_ack_and_loses_its_tail(lab, workdir):
    etcd = NsEtcd(lab, ETCD_NODE, workdir)
    brokers = [NsBroker(lab, i, os.path.join(workdir, "data-%d" % i), {
        "broker.id": str(i),
        "metadata.etcd.endpoints": etcd.url,
        "metadata.etcd.prefix": "/kpool/netsplit",
        "broker.session.timeout.ms": "2000",
        "replica.lag.time.max.ms": str(LAG_MS),
        "num.network.threads": "1",
        "log.flush.threads": "1",
    }) for i in (1, 2, 3)]
    by_id = {int(b.extra["broker.id"]): b for b in brokers}
    started = []
    try:
        etcd.start()
        for b in brokers:
            b.start(timeout=60)
            started.append(b)
        for b in brokers:
            wait_for(lambda: sorted(x["id"] for x in kcat_metadata(b.bootstrap)["brokers"]) ==
                     [1, 2, 3], timeout=30, what="every broker seen by %s" % b.bootstrap)
        bootstrap = ",".join(b.bootstrap for b in brokers)
        create_topic(bootstrap, TOPIC, 1, 3, {"min.insync.replicas": "2"})
        wait_for(lambda: (lambda p: p and len(p["isrs"]) == 3 and p["leader"] > 0)(
            partition_md(brokers[0])), timeout=30, what="ISR 3")

        acked = produce_acked(bootstrap, b"a", 0, 200)
        old = by_id[partition_md(brokers[0])["leader"]]
        others = [b for b in brokers if b is not old]
        wait_for(lambda: raw_fetch(old)[1] == 200, timeout=30, what="high watermark 200")

        # ---- the cut: the leader loses etcd and both followers; the driver still reaches it
        lab.isolate(old.node)
        assert not lab.reachable(old.node, others[0].node, 9092)
        assert not lab.reachable(old.node, ETCD_NODE, 2379)
        assert lab.reachable(others[0].node, ETCD_NODE, 2379)

        # acks=all to the cut-off leader is never acknowledged: once at once, once after
        # replica.lag.time.max.ms (it would shrink the ISR to itself if it could)
        divergent, pending = [], []
        for k in range(2):
            vals = [b"x-%d-%03d" % (k, j) for j in range(5)]
            pending.append(send_produce(old, vals, corr=100 + k))
            divergent += vals
            if k == 0:
                time.sleep(LAG_MS / 1000 + 1)
        for s in pending:
            err = await_produce(s)
            # as Kafka's: REQUEST_TIMED_OUT once the request's timeout (2 s) passed
            assert err == 7, "the cut-off leader answered an acks=all write with %r" % err
        # ... and what it appended stays above its high watermark: a consumer reading from
        # it sees the acknowledged records only
        err, hwm, recs = raw_fetch(old)
        assert err in (0, 6), err  # it may have stepped down (NOT_LEADER_OR_FOLLOWER)
        if err == 0:
            assert hwm == 200, hwm
            assert recs and all(off < hwm for off, _ in recs), recs[-3:]
            assert not set(divergent) & {v for _, v in recs}

        # the majority elects a new leader and takes acks=all writes
        majority = ",".join(b.bootstrap for b in others)
        new_md = wait_for(lambda: (lambda p: p if p and p["leader"] in
                                   [int(b.extra["broker.id"]) for b in others] else None)(
            partition_md(others[0])), timeout=40, what="a new leader on the majority side")
        assert int(old.extra["broker.id"]) not in [r["id"] for r in new_md["isrs"]], new_md
        acked_b = produce_acked(majority, b"b", 200, 200)
        assert min(off for _, off in acked_b.values()) == 200
        acked.update(acked_b)

        # ---- healing: the old leader follows and truncates its divergent tail
        lab.heal()
        for b in brokers:
            wait_for(lambda: (lambda p: p and len(p["isrs"]) == 3 and
                              p["leader"] == new_md["leader"])(partition_md(b)),
                     timeout=60, interval=0.5, what="ISR 3 again, seen by %s" % b.bootstrap)
        stored = consume_all(majority, TOPIC, len(acked))
        check_acked(acked, stored)
        assert len(stored) == len(acked)
        assert not set(divergent) & set(stored.values())

        # the old leader's own copy: alone in the pool it leads, and serves exactly that
        for b in others:
            b.stop()
        wait_for(lambda: (lambda p: p and p["leader"] == int(old.extra["broker.id"]))(
            partition_md(old)), timeout=40, interval=0.5, what="the old leader leading alone")
        err, hwm, recs = raw_fetch(old)
        assert err == 0 and hwm == len(acked), (err, hwm)
        own = dict(recs)
        assert len(own) == len(acked)
        assert not set(divergent) & set(own.values())
        check_acked(acked, {(0, off): v for off, v in own.items()})
    finally:
        failures = []
        for b in started:
            try:
                b.stop()
            except AssertionError as e:
                failures.append(str(e)[-3000:])
        etcd.stop()
        assert not failures, "\n".join(failures)
