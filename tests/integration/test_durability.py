"""Durability: acknowledged data survives kill -9 (crash safety), topics and their data survive
clean and unclean restarts, and a deleted-then-recreated topic starts empty.

Acceptance criterion (crash safety): an idempotent acks=all producer runs while the broker is
kill -9'ed and restarted several times; afterwards every acknowledged message is present
exactly once and in order per partition.
"""
import random
import re
import threading
import time

import pytest
from confluent_kafka import Producer

import kwire

PARTITIONS = 4


def metric(text, name):
    m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
    return int(m.group(1)) if m else None


class ProducerThread(threading.Thread):
    """Produces "p:seq" values to explicit partitions (per-partition sequence numbers) until
    stopped; records every delivery report."""

    def __init__(self, bootstrap, topic, partitions, seed):
        super().__init__(daemon=True)
        self.topic = topic
        self.partitions = partitions
        self.rng = random.Random(seed)
        self.p = Producer({
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "none",
            "message.timeout.ms": 120000,
            "retry.backoff.ms": 50,
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 300,
            "socket.connection.setup.timeout.ms": 5000,
        })
        self.stop_flag = threading.Event()
        self.next_seq = {p: 0 for p in partitions}
        self.acked = {}   # (p, seq) -> offset
        self.failed = {}  # (p, seq) -> error string
        self.dups = []    # a delivery report seen twice for one message
        self.exc = None
        self.lock = threading.Lock()

    def on_delivery(self, err, msg):
        p, seq = (int(x) for x in msg.value().decode().split(":"))
        with self.lock:
            if (p, seq) in self.acked or (p, seq) in self.failed:
                self.dups.append((p, seq))
            if err is None:
                self.acked[(p, seq)] = msg.offset()
            else:
                self.failed[(p, seq)] = str(err)

    def run(self):
        try:
            while not self.stop_flag.is_set():
                for _ in range(20):
                    p = self.rng.choice(self.partitions)
                    seq = self.next_seq[p]
                    self.next_seq[p] += 1
                    self.p.produce(self.topic, value=b"%d:%d" % (p, seq), partition=p,
                                   on_delivery=self.on_delivery)
                self.p.poll(0)
                # bounded backlog while the broker is down; ~2000 msgs/s otherwise
                while len(self.p) > 2000 and not self.stop_flag.is_set():
                    self.p.poll(0.05)
                time.sleep(0.01)
            left = self.p.flush(90)
            assert left == 0, "%d messages still undelivered after flush" % left
        except BaseException as e:  # reported by the test
            self.exc = e

    def n_produced(self):
        return sum(self.next_seq.values())


def check_exactly_once_in_order(consumed, prod):
    """consumed: {p: [(offset, value)]}. Every acknowledged message present exactly once, at
    its acknowledged offset, per-partition order preserved; nothing ever duplicated."""
    problems = []
    for p, recs in consumed.items():
        seen = {}
        last_seq = -1
        last_off = -1
        for off, val in recs:
            vp, seq = (int(x) for x in val.decode().split(":"))
            if vp != p:
                problems.append("p%d offset %d holds a message for p%d" % (p, off, vp))
            if off <= last_off:
                problems.append("p%d offsets not increasing: %d after %d" % (p, off, last_off))
            if seq in seen:
                problems.append("p%d seq %d duplicated at offsets %d and %d"
                                % (p, seq, seen[seq], off))
            elif seq <= last_seq:
                problems.append("p%d seq %d at offset %d after seq %d (order broken)"
                                % (p, seq, off, last_seq))
            seen.setdefault(seq, off)
            last_seq = max(last_seq, seq)
            last_off = off
        for (ap, seq), off in prod.acked.items():
            if ap != p:
                continue
            if seq not in seen:
                problems.append("p%d acknowledged seq %d (offset %d) is missing" % (p, seq, off))
            elif seen[seq] != off:
                problems.append("p%d seq %d acknowledged at offset %d but stored at %d"
                                % (p, seq, off, seen[seq]))
    return problems


@pytest.mark.parametrize("segment_bytes", [None, 16384], ids=["one-segment", "many-segments"])
def test_crash_safety_idempotent_acks_all(broker_factory, segment_bytes):
    """With small segments the producer state also comes from roll-time snapshots."""
    rng = random.Random(20240611 + (segment_bytes or 0))
    b = broker_factory()
    with kwire.broker_log_on_failure(b):
        run_crash_safety(b, rng, segment_bytes)
    b.stop()


def run_crash_safety(b, rng, segment_bytes):
    topic = "crash-safety"
    kwire.create_topic(b.bootstrap, topic, PARTITIONS,
                       {"segment.bytes": str(segment_bytes)} if segment_bytes else None)
    prod = ProducerThread(b.bootstrap, topic, list(range(PARTITIONS)), seed=rng.random())
    prod.start()
    cycles = 5
    acked_before_kill = []
    unacked_at_kill = []  # messages produced but not yet acknowledged when the broker died
    try:
        time.sleep(1.0)
        for cycle in range(cycles):
            time.sleep(rng.uniform(0.3, 1.5))
            b.kill9()
            with prod.lock:
                acked_before_kill.append(len(prod.acked))
                unacked_at_kill.append(prod.n_produced() - len(prod.acked) - len(prod.failed))
            time.sleep(rng.uniform(0.0, 0.4))
            b.start()
            # the pool, its topic and the metrics endpoint came back with the broker
            text = b.metrics()
            # plus the internal __consumer_offsets topic (50 partitions)
            assert metric(text, "kpool_topics") == 1 + 1, text
            assert metric(text, "kpool_partitions") == PARTITIONS + 50, text
            assert kwire.list_topics(b.bootstrap).get(topic) == PARTITIONS
        time.sleep(1.5)
    finally:
        prod.stop_flag.set()
        prod.join(120)
    assert not prod.is_alive(), "producer did not finish"
    if prod.exc:
        raise prod.exc
    assert not prod.dups, "duplicate delivery reports: %s" % prod.dups[:10]
    assert not prod.failed, "delivery failures: %s" % list(prod.failed.items())[:10]
    # the producer made progress across the crashes (not one burst before the first kill)
    assert len(prod.acked) == prod.n_produced()
    assert acked_before_kill[-1] > acked_before_kill[0] > 0, acked_before_kill
    # and some kills hit messages in flight (so retries/duplicate detection were exercised)
    assert max(unacked_at_kill) > 0, unacked_at_kill

    consumed = kwire.consume_all(b.bootstrap, topic, list(range(PARTITIONS)))
    print("crash safety: %d produced, acked at each kill %s, unacked at each kill %s, "
          "%d consumed" % (prod.n_produced(), acked_before_kill, unacked_at_kill,
                           sum(len(v) for v in consumed.values())))
    problems = check_exactly_once_in_order(consumed, prod)
    assert not problems, "%d problems, first: %s" % (len(problems), problems[:20])
    # everything was eventually acknowledged, so nothing beyond it may be in the log
    assert sum(len(v) for v in consumed.values()) == len(prod.acked)


def produce_sync(bootstrap, topic, values, partition=0, **conf):
    """Produces values with acks=all; returns their offsets (asserting success)."""
    p = Producer(dict({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0,
                       "compression.type": "none"}, **conf))
    offsets = [None] * len(values)
    errs = []

    def cb(err, msg, i):
        if err:
            errs.append(err)
        else:
            offsets[i] = msg.offset()

    for i, v in enumerate(values):
        p.produce(topic, value=v, partition=partition,
                  on_delivery=lambda err, msg, i=i: cb(err, msg, i))
    assert p.flush(30) == 0
    assert not errs, errs
    return offsets


def test_topics_and_data_survive_restarts(broker_factory):
    b = broker_factory()
    with kwire.broker_log_on_failure(b):
        run_topics_and_data_survive_restarts(b)


def run_topics_and_data_survive_restarts(b):
    topics = {"keep-a": 1, "keep-b": 3}
    for t, n in topics.items():
        kwire.create_topic(b.bootstrap, t, n, {"segment.bytes": "2048"} if t == "keep-b" else None)
    expected = {}
    for t, n in topics.items():
        for p in range(n):
            vals = [b"%s-%d-%d" % (t.encode(), p, i) * 3 for i in range(40)]
            offs = produce_sync(b.bootstrap, t, vals, partition=p)
            assert offs == list(range(40))
            expected[(t, p)] = list(enumerate(vals))

    def verify(stage):
        assert {k: v for k, v in kwire.list_topics(b.bootstrap).items()
                if k in topics} == topics, stage
        for t, n in topics.items():
            got = kwire.consume_all(b.bootstrap, t, list(range(n)))
            for p in range(n):
                assert got[p] == expected[(t, p)], "%s: %s-%d differs" % (stage, t, p)
        text = b.metrics()
        # plus the internal __consumer_offsets topic (50 partitions)
        assert metric(text, "kpool_topics") == 2 + 1 and metric(text, "kpool_partitions") == 4 + 50, text

    b.restart()
    verify("after clean restart")
    b.kill9()
    b.start()
    # new data after the crash lands after the old data (produced before consuming: see
    # test_bad_input.py::test_parked_fetch_woken_by_produce)
    offs = produce_sync(b.bootstrap, "keep-b", [b"after-crash"], partition=2)
    assert offs == [40]
    expected[("keep-b", 2)].append((40, b"after-crash"))
    verify("after kill -9")
    b.kill9()
    b.start()
    verify("after a second kill -9")
    b.stop()


def test_delete_then_recreate_is_empty(broker_factory):
    b = broker_factory()
    with kwire.broker_log_on_failure(b):
        run_delete_then_recreate(b)


def run_delete_then_recreate(b):
    kwire.create_topic(b.bootstrap, "phoenix", 2, {"segment.bytes": "1024"})
    for p in range(2):
        produce_sync(b.bootstrap, "phoenix", [b"old-%d" % i * 20 for i in range(30)], partition=p)
    kwire.delete_topic(b.bootstrap, "phoenix")
    # gone (Metadata may need a moment in the client cache: poll)
    deadline = time.time() + 30
    while "phoenix" in kwire.list_topics(b.bootstrap):
        assert time.time() < deadline, "deleted topic still listed"
        time.sleep(0.2)
    kwire.create_topic(b.bootstrap, "phoenix", 2)
    got = kwire.consume_all(b.bootstrap, "phoenix", [0, 1])
    assert got == {0: [], 1: []}, "recreated topic is not empty"
    offs = produce_sync(b.bootstrap, "phoenix", [b"new"], partition=1)
    assert offs == [0]
    # ... and stays so across a restart (no resurrection of the old directories)
    b.kill9()
    b.start()
    got = kwire.consume_all(b.bootstrap, "phoenix", [0, 1])
    assert got == {0: [], 1: [(0, b"new")]}, got
    # delete, restart cleanly, recreate: still empty
    kwire.delete_topic(b.bootstrap, "phoenix")
    b.restart()
    assert "phoenix" not in kwire.list_topics(b.bootstrap)
    kwire.create_topic(b.bootstrap, "phoenix", 2)
    got = kwire.consume_all(b.bootstrap, "phoenix", [0, 1])
    assert got == {0: [], 1: []}, got
