"""Operating a replicated pool (issue 15 item 2 and its acceptance): `kpool pool status`,
`decommission`, `rebalance` and `elect-leaders` against real brokers on a real etcd.

  - decommission one broker of four under continuous produce (idempotent, acks=all) and
    consume: every partition ends with its full replication on the other three, no record
    acknowledged is lost, the producer sees no error;
  - a skewed pool (a fourth broker joined after the topic was created: it holds nothing)
    rebalanced: the dry run moves nothing, then max/min leaders per broker <= 1.2 and the
    replicas are even;
  - after a broker's restart moved its leaderships away, elect-leaders gives every partition
    its preferred leader back.

  - add-broker: a broker that joined gets its share, by moves onto it only;
  - auto.leader.rebalance.enable: the controller gives the leaderships back by itself (and
    not when disabled).

Every test fails on the old code: there was no `kpool pool` (and no reassignment or
ElectLeaders API under it); test_auto_leader_rebalance fails on the code before
auto.leader.rebalance.enable (the leaders stayed away); its disabled twin guards the switch.
"""
import json
import os
import subprocess
import threading
import time

import pytest
from confluent_kafka import Consumer, Producer

from conftest import KPOOL_BIN
from pool_harness import Pool, kcat_metadata, wait_for
from test_pool import check_acked, consume_all, create_topic, topic_md, wait_isr


def kpool(*args, expect=0, timeout=300):
    # no CLI configuration: its pool section (kpool up's) would stand in for --bootstrap
    p = subprocess.run([KPOOL_BIN, "pool"] + list(args), capture_output=True, text=True,
                       timeout=timeout,
                       env=dict(os.environ, KPOOL_CONFIG="/nonexistent/kpool/config.yaml"))
    assert p.returncode == expect, "kpool pool %s: rc %d\nstdout:\n%s\nstderr:\n%s" % (
        " ".join(args), p.returncode, p.stdout[-4000:], p.stderr[-4000:])
    return p


def status(bootstrap, expect=0):
    return json.loads(kpool("status", "-o", "json", "--bootstrap", bootstrap,
                            expect=expect).stdout)


def bid(b):
    return int(b.extra["broker.id"])


def leaders_per_broker(bootstrap, topic, ids):
    t = topic_md(bootstrap, topic)
    return {i: sum(1 for p in t["partitions"] if p["leader"] == i) for i in ids}


@pytest.fixture
def pool4(workdir):
    p = Pool(workdir, 4).start()
    yield p
    p.stop()


def test_decommission_under_load(pool4):
    create_topic(pool4.bootstrap, "dq", 6, 3, {"min.insync.replicas": "2"})
    wait_isr(pool4.bootstrap, "dq", 3)
    before = status(pool4.bootstrap)
    assert next(b for b in before["brokers"] if b["id"] == 4)["replicas"] > 0
    acked, errors, stop = {}, [], threading.Event()
    seen = set()
    p = Producer({"bootstrap.servers": pool4.bootstrap, "acks": "all",
                  "enable.idempotence": True, "linger.ms": 5, "message.timeout.ms": 120000})

    def report(err, m):
        if err is not None:
            errors.append(err)
        else:
            acked[m.value()] = (m.partition(), m.offset())

    def produce():
        i = 0
        while not stop.is_set():
            try:
                p.produce("dq", key=b"%d" % i, value=b"d-%08d" % i, on_delivery=report)
                i += 1
            except BufferError:
                pass
            p.poll(0.005)
        p.flush(120)

    def consume():
        c = Consumer({"bootstrap.servers": pool4.bootstrap, "group.id": "dq-reader",
                      "auto.offset.reset": "earliest", "enable.auto.commit": False})
        c.subscribe(["dq"])
        # until the producer is done and every record it got acknowledged was read (or a
        # minute after the producer ended: the assertion below then says what is missing)
        while not produced.is_set() or not set(acked) <= seen:
            m = c.poll(0.2)
            if m is not None and not m.error():
                seen.add(m.value())
            if produced.is_set() and time.time() > produced_at[0] + 60:
                break
        c.close()
    produced, produced_at = threading.Event(), [0]
    threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(acked) > 300, timeout=60, what="records before the move")
        out = kpool("decommission", "4", "--timeout", "180", "--bootstrap", pool4.bootstrap)
        assert "it may be stopped" in out.stdout, out.stdout
        n = len(acked)
        wait_for(lambda: len(acked) > n + 300, timeout=60, what="records after the move")
    finally:
        stop.set()
        threads[0].join(180)
        produced_at[0] = time.time()
        produced.set()
        threads[1].join(180)
    assert not errors, errors[:3]
    t = wait_isr(pool4.bootstrap, "dq", 3, timeout=60)
    for part in t["partitions"]:
        assert 4 not in [r["id"] for r in part["replicas"]], part
        assert part["leader"] != 4
    after = status(pool4.bootstrap)
    b4 = next(b for b in after["brokers"] if b["id"] == 4)
    assert b4["replicas"] == 0 and b4["leaders"] == 0, b4
    assert after["under_replicated"] == [] and after["offline"] == []
    # the broker may go: nothing changes for the partitions
    pool4.brokers[3].stop()
    wait_isr(pool4.brokers[0].bootstrap, "dq", 3)
    stored = consume_all(pool4.brokers[0].bootstrap, "dq", len(acked))
    check_acked(acked, stored)
    assert set(acked) <= seen, "the consumer missed %d acknowledged records" % len(
        set(acked) - seen)
    print("decommission under load: %d records acknowledged, none lost" % len(acked))


def test_rebalance_a_skewed_pool(pool4):
    late = pool4.brokers[3]
    late.stop()
    wait_for(lambda: len(kcat_metadata(pool4.brokers[0].bootstrap)["brokers"]) == 3,
             what="broker 4 gone")
    create_topic(pool4.brokers[0].bootstrap, "sk", 12, 3)
    wait_isr(pool4.brokers[0].bootstrap, "sk", 3)
    p = Producer({"bootstrap.servers": pool4.brokers[0].bootstrap, "acks": "all"})
    acked = {}
    for i in range(600):
        p.produce("sk", key=b"%d" % i, value=b"s-%06d" % i,
                  on_delivery=lambda e, m: acked.__setitem__(m.value(),
                                                             (m.partition(), m.offset())))
    assert p.flush(60) == 0
    late.start(timeout=30)
    pool4.wait_all_seen()
    skewed = leaders_per_broker(pool4.bootstrap, "sk", [1, 2, 3, 4])
    assert skewed[4] == 0, skewed
    dry = kpool("rebalance", "--dry-run", "--bootstrap", pool4.bootstrap)
    assert "move sk-" in dry.stdout and " to copy" in dry.stdout, dry.stdout
    assert leaders_per_broker(pool4.bootstrap, "sk", [1, 2, 3, 4]) == skewed
    assert status(pool4.bootstrap)["moves_in_progress"] == 0
    kpool("rebalance", "--timeout", "180", "--bootstrap", pool4.bootstrap)
    t = wait_isr(pool4.bootstrap, "sk", 3, timeout=60)
    reps = {i: sum(1 for x in t["partitions"] if i in [r["id"] for r in x["replicas"]])
            for i in (1, 2, 3, 4)}
    assert max(reps.values()) - min(reps.values()) <= 1, reps
    leaders = wait_for(lambda: (lambda c: c if min(c.values()) > 0 and
                                max(c.values()) / min(c.values()) <= 1.2 else None)(
        leaders_per_broker(pool4.bootstrap, "sk", [1, 2, 3, 4])), timeout=30,
        what="leaders balanced")
    print("rebalance: leaders per broker %r -> %r, replicas %r" % (skewed, leaders, reps))
    st = status(pool4.bootstrap)
    assert st["under_replicated"] == [] and st["moves_in_progress"] == 0
    check_acked(acked, consume_all(pool4.bootstrap, "sk", len(acked)))


def test_add_broker_moves_onto_the_new_broker_only(pool4):
    """`kpool pool add-broker 4`: broker 4 joined (started on the pool's etcd) after the
    topic was created and holds nothing; the dry run prints moves that all add broker 4, and
    their byte cost, and moves nothing; then the moves run: broker 4 ends with its share of
    replicas and preferred leaders, no other broker gained a replica, every record is
    there. (Fails on the old code: there was no add-broker.)"""
    late = pool4.brokers[3]
    late.stop()
    wait_for(lambda: len(kcat_metadata(pool4.brokers[0].bootstrap)["brokers"]) == 3,
             what="broker 4 gone")
    create_topic(pool4.brokers[0].bootstrap, "ab", 8, 2)
    wait_isr(pool4.brokers[0].bootstrap, "ab", 2)
    p = Producer({"bootstrap.servers": pool4.brokers[0].bootstrap, "acks": "all"})
    acked = {}
    for i in range(400):
        p.produce("ab", key=b"%d" % i, value=b"a-%06d" % i,
                  on_delivery=lambda e, m: acked.__setitem__(m.value(),
                                                             (m.partition(), m.offset())))
    assert p.flush(60) == 0
    late.start(timeout=30)
    pool4.wait_all_seen()
    before = {x["partition"]: [r["id"] for r in x["replicas"]]
              for x in topic_md(pool4.bootstrap, "ab")["partitions"]}
    dry = kpool("add-broker", "4", "--dry-run", "--bootstrap", pool4.bootstrap)
    print(dry.stdout)
    moves = [l for l in dry.stdout.splitlines() if l.startswith("move ")]
    assert moves and " to copy" in dry.stdout, dry.stdout
    for line in moves:  # move ab-3: [1,2] -> [4,2] (1.2 KiB)
        assert "4" in line.split("->")[1].split("]")[0], line
        assert line.rstrip().endswith(")"), line
    assert status(pool4.bootstrap)["moves_in_progress"] == 0
    assert {x["partition"]: [r["id"] for r in x["replicas"]]
            for x in topic_md(pool4.bootstrap, "ab")["partitions"]} == before
    kpool("add-broker", "4", "--timeout", "180", "--bootstrap", pool4.bootstrap)
    t = wait_isr(pool4.bootstrap, "ab", 2, timeout=60)
    reps = {i: 0 for i in (1, 2, 3, 4)}
    for x in t["partitions"]:
        now = [r["id"] for r in x["replicas"]]
        assert set(now) <= set(before[x["partition"]]) | {4}, (before, x)
        for i in now:
            reps[i] += 1
    assert reps[4] == 4 and max(reps.values()) - min(reps.values()) <= 1, reps
    wait_for(lambda: leaders_per_broker(pool4.bootstrap, "ab", [4])[4] >= 1, timeout=30,
             what="broker 4 leading its share")
    check_acked(acked, consume_all(pool4.bootstrap, "ab", len(acked)))


def test_elect_leaders_restores_preferred_leaders(workdir):
    pool = Pool(workdir, 3).start()
    try:
        create_topic(pool.bootstrap, "el", 6, 3)
        wait_isr(pool.bootstrap, "el", 3)
        b2 = pool.brokers[1]
        b2.restart()  # a controlled shutdown moves its leaderships away
        t = wait_isr(pool.bootstrap, "el", 3, timeout=60)
        assert not any(p["leader"] == 2 for p in t["partitions"])
        out = kpool("elect-leaders", "--bootstrap", pool.bootstrap)
        assert "preferred leaders elected" in out.stdout
        t = wait_isr(pool.bootstrap, "el", 3)
        assert all(p["leader"] == p["replicas"][0]["id"] for p in t["partitions"]), t
        assert sum(1 for p in t["partitions"] if p["leader"] == 2) == 2
        # nothing left to elect: a second run elects none
        assert kpool("elect-leaders", "--bootstrap", pool.bootstrap).stdout.startswith("0 ")
    finally:
        pool.stop()


def test_pool_command_usage_errors(workdir):
    kpool(expect=2)
    kpool("status", expect=2)  # no --bootstrap
    kpool("frobnicate", "--bootstrap", "127.0.0.1:1", expect=2)
    kpool("decommission", "--bootstrap", "127.0.0.1:1", expect=2)
    kpool("add-broker", "--bootstrap", "127.0.0.1:1", expect=2)
    kpool("add-broker", "x", "--bootstrap", "127.0.0.1:1", expect=2)
    p = kpool("status", "--bootstrap", "127.0.0.1:1", expect=1)
    assert "127.0.0.1:1" in p.stderr


def test_auto_leader_rebalance(workdir):
    """auto.leader.rebalance.enable (Kafka's default, checked every
    leader.imbalance.check.interval.seconds, here 1): after a broker's restart moved its
    leaderships away, the controller gives them back by itself; with it disabled they stay
    away."""
    pool = Pool(workdir, 3, extra={"leader.imbalance.check.interval.seconds": "1"}).start()
    try:
        create_topic(pool.bootstrap, "al", 6, 3)
        wait_isr(pool.bootstrap, "al", 3)
        pool.brokers[1].restart()
        wait_for(lambda: (lambda t: t if all(p["leader"] == p["replicas"][0]["id"] and
                                             len(p["isrs"]) == 3 for p in t["partitions"])
                          else None)(topic_md(pool.bootstrap, "al")),
                 timeout=60, interval=0.3, what="preferred leaders back by themselves")
    finally:
        pool.stop()


def test_no_auto_leader_rebalance_when_disabled(workdir):
    pool = Pool(workdir, 3, extra={"leader.imbalance.check.interval.seconds": "1",
                                   "auto.leader.rebalance.enable": "false"}).start()
    try:
        create_topic(pool.bootstrap, "an", 6, 3)
        wait_isr(pool.bootstrap, "an", 3)
        pool.brokers[1].restart()
        wait_isr(pool.bootstrap, "an", 3, timeout=60)
        time.sleep(4)  # several checks' worth: nothing moves back
        t = topic_md(pool.bootstrap, "an")
        assert not any(p["leader"] == 2 for p in t["partitions"]), t
    finally:
        pool.stop()
