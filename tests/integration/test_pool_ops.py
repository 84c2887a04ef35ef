"""Replicated pools (issue 14): the log start offset across replicas, and followers that wait.

  - DeleteRecords through any broker (kafkajs' admin sends it to the leader, as Kafka's
    clients do; a non-leader answers NOT_LEADER_OR_FOLLOWER as Kafka's brokers do) moves the
    log start offset of every replica, followers included (they take the leader's from
    their fetch responses);
  - a follower whose end is below the leader's log start offset (it was down while the
    records it misses were deleted) starts its log over at the leader's log start and
    rejoins the ISR, holding exactly the leader's records;
  - a follower's fetch waiting at the leader (replica.fetch.wait.max.ms) is answered as soon
    as the leader has new data, so acks=all does not wait the fetch out.
"""
import json
import os
import subprocess

import pytest
from confluent_kafka import Producer

import clients
from pool_harness import Pool, wait_for
from test_pool import check_acked, consume_all, create_topic, topic_md, wait_isr


def produce(bootstrap, topic, first, n, timeout_s=60):
    """n acks=all records numbered from first: {value: (partition, offset)}; asserts every
    one acknowledged."""
    acked, errors = {}, []
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "message.timeout.ms": timeout_s * 1000})

    def report(err, m):
        if err is not None:
            errors.append(err)
        else:
            acked[m.value()] = (m.partition(), m.offset())
    for i in range(first, first + n):
        p.produce(topic, value=b"v-%06d" % i, on_delivery=report)
    assert p.flush(timeout_s + 30) == 0
    assert not errors, errors[:3]
    return acked


KAFKAJS_DELETE = r"""
const { Kafka, logLevel } = require('kafkajs')
const [broker, topic, offset] = [process.env.BROKER, process.env.TOPIC, process.env.OFFSET]
;(async () => {
  const admin = new Kafka({ brokers: [broker], logLevel: logLevel.NOTHING }).admin()
  await admin.connect()
  await admin.fetchTopicMetadata({ topics: [topic] }) // deleteTopicRecords needs it loaded
  await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset }] })
  const offsets = await admin.fetchTopicOffsets(topic)
  console.log(JSON.stringify(offsets))
  await admin.disconnect()
})().catch(e => { console.error(e); process.exit(1) })
"""


def kafkajs_delete_records(bootstrap, topic, offset):
    """kafkajs admin.deleteTopicRecords through `bootstrap` (one broker): partition 0's
    offsets afterwards, [{partition, offset, high, low}]."""
    if not clients.node_available():
        pytest.skip("kafkajs not installed (./scripts/install-deps.sh)")
    r = subprocess.run(["node", "-e", KAFKAJS_DELETE], cwd=clients.JS_DIR, capture_output=True,
                       text=True, timeout=60,
                       env=dict(os.environ, BROKER=bootstrap, TOPIC=topic, OFFSET=str(offset)))
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


def log_start(broker, topic):
    """The log start offset a broker checkpointed for topic-0 (0 before any deletion)."""
    try:
        with open(os.path.join(broker.data_dir, "%s-0" % topic, "log-start-offset")) as f:
            return int(f.read().strip())
    except FileNotFoundError:
        return 0


def by_id(pool, i):
    return next(b for b in pool.brokers if int(b.extra["broker.id"]) == i)


def test_delete_records_through_any_broker_reaches_every_replica(workdir):
    """kafkajs' DeleteRecords, bootstrapped at a broker that does not lead the partition,
    moves the log start offset to 40 on the leader and on both followers. (Fails on the old
    code: the followers kept their log start at 0, so a new leader had the records again.)"""
    pool = Pool(workdir, 3).start()
    try:
        create_topic(pool.bootstrap, "dr", 1, 3)
        leader = wait_isr(pool.bootstrap, "dr", 3)["partitions"][0]["leader"]
        acked = produce(pool.bootstrap, "dr", 0, 100)
        other = next(b for b in pool.brokers if int(b.extra["broker.id"]) != leader)
        offsets = kafkajs_delete_records(other.bootstrap, "dr", 40)
        assert offsets[0]["low"] == "40" and offsets[0]["high"] == "100", offsets
        for b in pool.brokers:
            wait_for(lambda: log_start(b, "dr") == 40, timeout=30,
                     what="log start 40 on broker %s" % b.extra["broker.id"])
        # a leader elected from the followers serves from 40 too
        by_id(pool, leader).stop()
        wait_for(lambda: (lambda t: t and t["partitions"][0]["leader"] not in (-1, leader))(
            topic_md(other.bootstrap, "dr")), timeout=30, what="a new leader")
        stored = consume_all(other.bootstrap, "dr", 60)
        assert sorted(off for _, off in stored) == list(range(40, 100))
        check_acked({v: po for v, po in acked.items() if po[1] >= 40}, stored)
    finally:
        pool.stop()


def test_follower_below_the_leaders_log_start_starts_over(workdir):
    """A follower is stopped, 100 more records come and the first 150 are deleted; when it
    returns its end (100) is below the leader's log start (150): it drops its log, starts at
    150, catches up and rejoins the ISR; alone in the pool it then serves exactly 150..199.
    (Fails on the old code: its fetches got OFFSET_OUT_OF_RANGE for ever, so it never
    rejoined the ISR.)"""
    pool = Pool(workdir, 3).start()
    try:
        create_topic(pool.bootstrap, "lso", 1, 3)
        leader = wait_isr(pool.bootstrap, "lso", 3)["partitions"][0]["leader"]
        acked = produce(pool.bootstrap, "lso", 0, 100)
        lagger = next(b for b in pool.brokers if int(b.extra["broker.id"]) != leader)
        lid = int(lagger.extra["broker.id"])
        lagger.stop()
        rest = [b for b in pool.brokers if b is not lagger]
        live = ",".join(b.bootstrap for b in rest)
        wait_isr(live, "lso", 2)
        acked.update(produce(live, "lso", 100, 100))
        offsets = kafkajs_delete_records(rest[0].bootstrap, "lso", 150)
        assert offsets[0]["low"] == "150", offsets
        lagger.start(timeout=60)
        wait_isr(pool.bootstrap, "lso", 3, timeout=60)
        assert log_start(lagger, "lso") == 150
        assert "below the leader's log start" in lagger.log()
        # its own copy: alone, it leads and serves the leader's records from 150
        for b in rest:
            b.stop()
        wait_for(lambda: (lambda t: t and t["partitions"][0]["leader"] == lid)(
            topic_md(lagger.bootstrap, "lso")), timeout=40, what="the lagger leading alone")
        stored = consume_all(lagger.bootstrap, "lso", 50)
        assert sorted(off for _, off in stored) == list(range(150, 200))
        check_acked({v: po for v, po in acked.items() if po[1] >= 150}, stored)
    finally:
        pool.stop()


def test_waiting_follower_fetch_is_answered_when_data_arrives(workdir):
    """With replica.fetch.wait.max.ms=20000 the followers' fetches wait up to 20 s at the
    leader: acks=all records must still be acknowledged at once, one after another (each
    within a 15 s delivery timeout). (Fails on the old code: an append on the leader did not
    wake its followers' waiting fetches, so every acks=all write waited the fetch out —
    with Kafka's default 500 ms that was ~2,000 msg/s on one partition.)"""
    pool = Pool(workdir, 3, extra={"replica.fetch.wait.max.ms": "20000"}).start()
    try:
        create_topic(pool.bootstrap, "wake", 1, 3)
        wait_isr(pool.bootstrap, "wake", 3)
        for i in range(5):  # one at a time: each waits for both followers to fetch it
            produce(pool.bootstrap, "wake", i, 1, timeout_s=15)
    finally:
        pool.stop()


def test_bad_replica_fetch_wait_is_refused(workdir):
    """replica.fetch.wait.max.ms outside 0..30000 is a clear startup error."""
    pool = Pool(workdir, 1, extra={"replica.fetch.wait.max.ms": "99999999"})
    pool.etcd.start()
    try:
        b = pool.brokers[0]
        b.extra["metadata.etcd.endpoints"] = pool.etcd.url
        p = subprocess.run(b.args(), capture_output=True, text=True, timeout=60)
        assert p.returncode != 0 and "replica.fetch.wait.max.ms" in p.stdout + p.stderr
    finally:
        pool.etcd.stop()
