"""Coordinator failover in a replicated pool (issue 14 scope item 4, SPEC §11): the group
coordinator and the transaction coordinator follow the leadership of their partitions of
__consumer_offsets / __transaction_state (RF 3 on a 3-broker pool), so kill -9 of the
coordinator's broker loses neither a committed offset nor a transaction's state.

  - a consumer group (confluent-kafka) keeps consuming while its coordinator's broker is
    kill -9'ed: at-least-once (every record seen), and no committed offset ever moves
    backwards — in particular, the first committed offsets the new coordinator answers are
    at least those the old one acknowledged;
  - a transaction (confluent-kafka transactional producer) open when its coordinator's broker
    is kill -9'ed commits after the failover; another aborts; a read_committed consumer sees
    exactly the committed records.

Generous deadlines throughout: the pool runs ASan brokers on a loaded 2-core machine.
"""
import threading
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from pool_harness import Pool, wait_for
from test_pool import create_topic, find_coordinator, java_partition, wait_isr


def coordinator(pool, key, key_type, exclude=()):
    """The broker FindCoordinator names for key (asked of every live broker until they
    agree on one outside exclude)."""
    live = [b for b in pool.brokers if b not in exclude]

    def ask():
        nodes = set()
        for b in live:
            try:
                err, node, _ = find_coordinator(b.port, key, key_type)
            except OSError:
                return None
            if err:
                return None
            nodes.add(node)
        if len(nodes) != 1:
            return None
        node = nodes.pop()
        found = [b for b in live if int(b.extra["broker.id"]) == node]
        return found[0] if found else None
    return wait_for(ask, timeout=90, interval=0.3, what="the coordinator of %s" % key)


def produce_all(bootstrap, topic, n):
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                  "linger.ms": 5})
    for i in range(n):
        p.produce(topic, value=b"r-%d" % i, partition=i % 3)
        if i % 500 == 0:
            p.poll(0)
    assert p.flush(60) == 0


LAST_ANSWER = {}  # the monitor's last answer or error, for failure messages


def committed_of(monitor, topic, partitions):
    """The group's committed offsets (OffsetFetch through a member-less consumer of the
    group), or None while the coordinator does not answer."""
    try:
        got = monitor.committed([TopicPartition(topic, p) for p in partitions], timeout=5)
    except KafkaException as e:
        LAST_ANSWER["last"] = e
        return None
    LAST_ANSWER["last"] = got
    if any(tp.error for tp in got):
        return None
    return {tp.partition: tp.offset for tp in got}


def test_group_keeps_consuming_while_its_coordinator_is_killed(workdir):
    """A consumer commits synchronously after every batch; the broker coordinating its group
    is kill -9'ed mid-stream. Every record is consumed (at-least-once); a monitor reading the
    committed offsets never sees one move backwards, and the first answer of the new
    coordinator covers every commit the old one acknowledged. (Fails on the old code: the
    lowest live broker coordinated every group and kept __consumer_offsets in its own data
    directory only, so its successor answered no committed offset at all.)"""
    pool = Pool(workdir, 3).start()
    consumer = monitor = None
    try:
        topic, group, total = "gk", "gk-group", 3000
        create_topic(pool.bootstrap, topic, 3, 3)
        wait_isr(pool.bootstrap, topic, 3)
        produce_all(pool.bootstrap, topic, total)
        coord = coordinator(pool, group, 0)
        md = wait_isr(pool.bootstrap, "__consumer_offsets", 3, timeout=60)
        part = java_partition(group, 50)
        assert next(p["leader"] for p in md["partitions"] if p["partition"] == part) == \
            int(coord.extra["broker.id"])

        consumer = Consumer({"bootstrap.servers": pool.bootstrap, "group.id": group,
                             "enable.auto.commit": False, "auto.offset.reset": "earliest",
                             "session.timeout.ms": 30000, "max.poll.interval.ms": 300000})
        consumer.subscribe([topic])
        monitor = Consumer({"bootstrap.servers": pool.bootstrap, "group.id": group,
                            "enable.auto.commit": False})
        seen = set()
        acked = {}  # partition -> highest committed offset the coordinator acknowledged
        readings = []  # (asked at, answered at, {partition: offset}) of the monitor
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                asked = time.time()
                r = committed_of(monitor, topic, range(3))
                if r is not None:
                    readings.append((asked, time.time(), r))
                stop.wait(0.2)
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()

        killed_at = None
        acked_at_kill = None
        deadline = time.time() + 240
        while len(seen) < total and time.time() < deadline:
            msgs = consumer.consume(num_messages=50, timeout=1.0)
            batch = {}
            for m in msgs:
                if m.error():
                    continue
                seen.add(m.value())
                batch[m.partition()] = max(batch.get(m.partition(), -1), m.offset() + 1)
            if batch:
                offsets = [TopicPartition(topic, p, o) for p, o in batch.items()]
                try:
                    for tp in consumer.commit(offsets=offsets, asynchronous=False):
                        if not tp.error:
                            acked[tp.partition] = max(acked.get(tp.partition, -1), tp.offset)
                except KafkaException:
                    pass  # retried with the next batch's offsets (at-least-once)
            if killed_at is None and sum(acked.values()) >= total // 4:
                acked_at_kill = dict(acked)
                killed_at = time.time()
                coord.kill9()
            elif killed_at is None:
                time.sleep(0.05)  # keep the stream going across the kill
        assert killed_at is not None, "never committed a quarter of the records"
        missing = total - len(seen)
        assert missing == 0, "%d records never consumed" % missing

        # the final commits are acknowledged by the new coordinator
        try:
            final = wait_for(lambda: (lambda r: r if r and all(
                r[p] >= acked.get(p, -1001) for p in range(3)) else None)(
                committed_of(monitor, topic, range(3))), timeout=60,
                what="the committed offsets after the failover")
        except AssertionError as e:
            raise AssertionError("%s; acknowledged %r, the monitor's last answer %r" % (
                e, acked, LAST_ANSWER.get("last"))) from None
        stop.set()
        watcher.join(30)

        # nothing moved backwards, ever
        last = {}
        for t, _, r in readings:
            for p, off in r.items():
                assert off >= last.get(p, -1001), \
                    "partition %d: committed %d after %d (at %.1f s after the kill)" % (
                        p, off, last[p], t - killed_at)
                last[p] = off
        # the new coordinator's first answer covers what the old one acknowledged
        after = [(done, r) for asked, done, r in readings if asked > killed_at]
        assert after, "no committed offsets read after the kill"
        for p, off in acked_at_kill.items():
            assert after[0][1][p] >= off, (p, after[0], acked_at_kill)
        print("group coordinator failover: committed offsets answered again %.1f s after the "
              "kill -9" % (after[0][0] - killed_at))
        assert sum(max(off, 0) for off in final.values()) == total, final
        new_coord = coordinator(pool, group, 0, exclude=(coord,))
        assert new_coord is not coord
    finally:
        for c in (consumer, monitor):
            if c is not None:
                c.close()
        pool.stop()


def end_transaction(producer, commit):
    """commit_transaction / abort_transaction, retried while librdkafka says retriable (the
    coordinator is moving)."""
    deadline = time.time() + 120
    while True:
        try:
            if commit:
                producer.commit_transaction(60)
            else:
                producer.abort_transaction(60)
            return
        except KafkaException as e:
            err = e.args[0]
            if not err.retriable() or time.time() > deadline:
                raise


def read_committed(bootstrap, topic, expect, timeout=90):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "rc-%d" % time.time_ns(),
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "isolation.level": "read_committed"})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        got = []
        deadline = time.time() + timeout
        while len(got) < expect and time.time() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                got.append(m.value())
        end = time.time() + 3
        while time.time() < end:  # nothing more follows (the aborted records stay hidden)
            m = c.poll(0.3)
            if m is not None and not m.error():
                got.append(m.value())
        return got
    finally:
        c.close()


def test_transaction_survives_its_coordinators_kill(workdir):
    """A transactional producer writes a committed transaction, then opens a second one,
    flushes its records and its coordinator's broker is kill -9'ed: the commit completes
    against the new coordinator (the transaction's state was replicated); a third
    transaction aborts. A read_committed consumer sees exactly the two committed ones.
    (Fails on the old code: __transaction_state lived in the coordinator's data directory
    only, so the new coordinator knew neither the id nor its open transaction.)"""
    pool = Pool(workdir, 3).start()
    prod = None
    try:
        topic, txid = "txk", "txk-id"
        create_topic(pool.bootstrap, topic, 1, 3)
        wait_isr(pool.bootstrap, topic, 3)
        prod = Producer({"bootstrap.servers": pool.bootstrap, "transactional.id": txid,
                         "transaction.timeout.ms": 120000})
        prod.init_transactions(60)
        coord = coordinator(pool, txid, 1)
        md = wait_isr(pool.bootstrap, "__transaction_state", 3, timeout=60)
        part = java_partition(txid, 50)
        assert next(p["leader"] for p in md["partitions"] if p["partition"] == part) == \
            int(coord.extra["broker.id"])

        prod.begin_transaction()
        for i in range(5):
            prod.produce(topic, value=b"a%d" % i)
        end_transaction(prod, True)

        prod.begin_transaction()
        for i in range(5):
            prod.produce(topic, value=b"b%d" % i)
        assert prod.flush(60) == 0  # in the partition (and the ISR) before the kill
        killed_at = time.time()
        coord.kill9()
        end_transaction(prod, True)
        print("transaction coordinator failover: the open transaction committed %.1f s after "
              "the kill -9" % (time.time() - killed_at))
        new_coord = coordinator(pool, txid, 1, exclude=(coord,))
        assert new_coord is not coord

        prod.begin_transaction()
        for i in range(3):
            prod.produce(topic, value=b"x%d" % i)
        assert prod.flush(60) == 0
        end_transaction(prod, False)

        survivor = next(b for b in pool.brokers if b is not coord)
        got = read_committed(survivor.bootstrap, topic, 10)
        assert got == [b"a%d" % i for i in range(5)] + [b"b%d" % i for i in range(5)], got
    finally:
        if prod is not None:
            prod.flush(5)
        pool.stop()


def test_internal_topic_replication_factor(workdir):
    """offsets.topic.replication.factor, as Kafka: __consumer_offsets is not created while
    fewer brokers live (FindCoordinator answers COORDINATOR_NOT_AVAILABLE, 15); without the
    setting (__transaction_state here) the factor is min(3, live brokers). A bad value is a
    start-up error naming the setting. (Fails on the old code: the lowest live broker
    answered every FindCoordinator and neither topic was the pool's.)"""
    import subprocess
    from conftest import Broker
    bad = Broker(workdir + "/bad", {"offsets.topic.replication.factor": "0"})
    proc = subprocess.run(bad.args(), capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "offsets.topic.replication.factor" in \
        proc.stdout + proc.stderr
    pool = Pool(workdir, 2, extra={"offsets.topic.replication.factor": "3"}).start()
    try:
        for b in pool.brokers:
            err, node, _ = find_coordinator(b.port, "g-rf", 0)
            assert (err, node) == (15, -1), (err, node)
        coord = coordinator(pool, "tx-rf", 1)
        md = wait_isr(pool.bootstrap, "__transaction_state", 2, timeout=60)
        assert all(len(p["replicas"]) == 2 for p in md["partitions"])
        part = java_partition("tx-rf", 50)
        assert next(p["leader"] for p in md["partitions"] if p["partition"] == part) == \
            int(coord.extra["broker.id"])
        from test_pool import topic_md
        assert topic_md(pool.bootstrap, "__consumer_offsets") is None
    finally:
        pool.stop()
