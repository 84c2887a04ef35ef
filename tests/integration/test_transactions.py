"""Transactions and exactly-once (issue 16, SPEC 12), with real clients.

  * confluent-kafka-python transactional producer: init / begin / produce to several
    partitions and topics / send_offsets_to_transaction with a consumer group / commit, and
    abort; a read_committed consumer sees exactly the committed records, in order, and the
    group's offsets only after the commit; a read_uncommitted one sees everything.
  * ListOffsets with read_committed answers the last stable offset.
  * zombie fencing: a second producer with the same transactional.id fences the first.
  * transaction.timeout.ms: a producer that hangs mid-transaction is aborted by the broker;
    the LSO moves on and read_committed consumers are not blocked.
  * kill -9 of the broker: a committed transaction stays committed, an open one is aborted
    after restart (its timeout), and a transaction prepared-commit completes.

Fails on the old code: InitProducerId with a transactional.id was refused (INVALID_REQUEST)
and FindCoordinator(TRANSACTION) answered COORDINATOR_NOT_AVAILABLE.
"""
import socket
import struct
import time
import uuid

import pytest
from confluent_kafka import (Consumer, KafkaError, KafkaException, Producer, TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic

import kwire


def create_topics(broker, *names, partitions=3):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    fs = admin.create_topics([NewTopic(n, num_partitions=partitions, replication_factor=1)
                              for n in names])
    for f in fs.values():
        f.result(15)


def txn_producer(broker, txn_id, **extra):
    conf = {"bootstrap.servers": broker.bootstrap, "transactional.id": txn_id,
            "linger.ms": 5}
    conf.update(extra)
    p = Producer(conf)
    p.init_transactions(15)
    return p


def consume_all(broker, topics, isolation, expect=None, timeout=60.0, group=None):
    """Reads from offset 0 until `expect` records came and 0.5 s passed with nothing more (so
    records beyond the expected ones are seen too), or until timeout."""
    c = Consumer({"bootstrap.servers": broker.bootstrap,
                  "group.id": group or "reader-" + uuid.uuid4().hex[:8],
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "isolation.level": isolation})
    md = c.list_topics(timeout=10)
    c.assign([TopicPartition(t, pt, 0) for t in topics for pt in md.topics[t].partitions])
    got = []
    deadline = time.time() + timeout
    idle_since = None
    while time.time() < deadline:
        m = c.poll(0.2)
        if m is None:
            if expect is not None and len(got) >= expect:
                if idle_since is None:
                    idle_since = time.time()
                elif time.time() - idle_since > 0.5:
                    break
            continue
        idle_since = None
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                continue
            raise KafkaException(m.error())
        got.append((m.topic(), m.partition(), m.value().decode()))
    c.close()
    return got


def values(records):
    return sorted(v for _, _, v in records)


def test_commit_abort_read_committed(broker):
    create_topics(broker, "tx-a", "tx-b")
    p = txn_producer(broker, "app-1")
    # committed: several partitions of two topics
    p.begin_transaction()
    for i in range(30):
        p.produce("tx-a", ("c1-%02d" % i).encode(), partition=i % 3)
        p.produce("tx-b", ("c1b-%02d" % i).encode(), partition=i % 3)
    p.commit_transaction(15)
    # aborted
    p.begin_transaction()
    for i in range(20):
        p.produce("tx-a", ("ab-%02d" % i).encode(), partition=i % 3)
    p.flush(10)
    p.abort_transaction(15)
    # committed again after the abort
    p.begin_transaction()
    for i in range(10):
        p.produce("tx-a", ("c2-%02d" % i).encode(), partition=i % 3)
    p.commit_transaction(15)

    committed = ["c1-%02d" % i for i in range(30)] + ["c2-%02d" % i for i in range(10)]
    got = consume_all(broker, ["tx-a"], "read_committed", expect=len(committed))
    assert values(got) == sorted(committed)
    # in order per partition: every c1 before every c2
    for part in range(3):
        seq = [v for _, pt, v in got if pt == part]
        assert seq == sorted(seq), seq
    got_b = consume_all(broker, ["tx-b"], "read_committed", expect=30)
    assert values(got_b) == sorted("c1b-%02d" % i for i in range(30))
    # read_uncommitted sees the aborted records too
    every = consume_all(broker, ["tx-a"], "read_uncommitted", expect=60)
    assert values(every) == sorted(committed + ["ab-%02d" % i for i in range(20)])


def test_open_transaction_holds_lso(broker):
    create_topics(broker, "tx-open", partitions=1)
    plain = Producer({"bootstrap.servers": broker.bootstrap})
    plain.produce("tx-open", b"before")
    plain.flush(10)
    p = txn_producer(broker, "app-open")
    p.begin_transaction()
    p.produce("tx-open", b"inside")
    p.flush(10)
    plain.produce("tx-open", b"after")  # not transactional, but after the open one
    plain.flush(10)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "lso",
                  "isolation.level": "read_committed"})
    lo, hi = c.get_watermark_offsets(TopicPartition("tx-open", 0), timeout=10, cached=False)
    assert hi == 1  # ListOffsets(read_committed, latest) = the LSO, the open txn's first offset
    got = consume_all(broker, ["tx-open"], "read_committed", expect=1)
    assert values(got) == ["before"]
    p.commit_transaction(15)
    lo, hi = c.get_watermark_offsets(TopicPartition("tx-open", 0), timeout=10, cached=False)
    assert hi == 4  # three records and the commit marker
    c.close()
    got = consume_all(broker, ["tx-open"], "read_committed", expect=3)
    assert [v for _, _, v in got] == ["before", "inside", "after"]


def test_send_offsets_to_transaction(broker):
    create_topics(broker, "eos-in", "eos-out", partitions=2)
    src = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(40):
        src.produce("eos-in", ("in-%02d" % i).encode(), partition=i % 2)
    src.flush(10)
    group = "eos-group"
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "isolation.level": "read_committed"})
    c.subscribe(["eos-in"])
    p = txn_producer(broker, "eos-app")
    # first batch: aborted, offsets must not be committed
    batch = []
    deadline = time.time() + 20
    while len(batch) < 20 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            batch.append(m)
    assert len(batch) == 20
    # the offsets after what was processed, per partition
    nexts = {}
    for m in batch:
        nexts[m.partition()] = max(nexts.get(m.partition(), 0), m.offset() + 1)
    offsets = [TopicPartition("eos-in", pt, off) for pt, off in nexts.items()]
    p.begin_transaction()
    for m in batch:
        p.produce("eos-out", m.value().upper(), partition=m.partition())
    p.send_offsets_to_transaction(offsets, c.consumer_group_metadata(), 15)
    p.abort_transaction(15)
    committed = c.committed([TopicPartition("eos-in", 0), TopicPartition("eos-in", 1)], 10)
    assert all(tp.offset < 0 for tp in committed), committed
    # the same records again, committed with their offsets
    p.begin_transaction()
    for m in batch:
        p.produce("eos-out", m.value().upper(), partition=m.partition())
    p.send_offsets_to_transaction(offsets, c.consumer_group_metadata(), 15)
    p.commit_transaction(15)
    committed = c.committed([TopicPartition("eos-in", pt) for pt in nexts], 10)
    assert {tp.partition: tp.offset for tp in committed} == nexts, committed
    c.close()
    out = consume_all(broker, ["eos-out"], "read_committed", expect=20)
    assert values(out) == sorted(m.value().upper().decode() for m in batch)


def test_zombie_fenced(broker):
    create_topics(broker, "tx-z", partitions=1)
    zombie = txn_producer(broker, "app-z")
    zombie.begin_transaction()
    zombie.produce("tx-z", b"zombie")
    zombie.flush(10)
    fresh = txn_producer(broker, "app-z")  # fences the first, aborting its transaction
    fresh.begin_transaction()
    fresh.produce("tx-z", b"fresh")
    fresh.commit_transaction(15)
    with pytest.raises(KafkaException) as e:
        zombie.produce("tx-z", b"late")
        zombie.commit_transaction(10)
    err = e.value.args[0]
    assert err.fatal() or err.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
                                          KafkaError.INVALID_PRODUCER_EPOCH), err
    got = consume_all(broker, ["tx-z"], "read_committed", expect=1)
    assert values(got) == ["fresh"]


def test_transaction_timeout_aborts(broker_factory):
    broker = broker_factory(**{
        "transaction.abort.timed.out.transaction.cleanup.interval.ms": 200})
    create_topics(broker, "tx-t", partitions=1)
    p = txn_producer(broker, "app-t", **{"transaction.timeout.ms": 1500})
    p.begin_transaction()
    p.produce("tx-t", b"hung")
    p.flush(10)
    time.sleep(3)  # the producer "hangs": the broker aborts it
    plain = Producer({"bootstrap.servers": broker.bootstrap})
    plain.produce("tx-t", b"later")
    plain.flush(10)
    got = consume_all(broker, ["tx-t"], "read_committed", expect=1)
    assert values(got) == ["later"]
    with pytest.raises(KafkaException):
        p.commit_transaction(10)


def test_max_timeout_refused(broker_factory):
    broker = broker_factory(**{"transaction.max.timeout.ms": 5000})
    p = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "app-max",
                  "transaction.timeout.ms": 60000})
    with pytest.raises(KafkaException) as e:
        p.init_transactions(10)
    assert e.value.args[0].code() == KafkaError.INVALID_TRANSACTION_TIMEOUT


def test_kill9_recovery(broker_factory):
    broker = broker_factory(**{
        "transaction.abort.timed.out.transaction.cleanup.interval.ms": 200})
    create_topics(broker, "tx-k", partitions=2)
    p = txn_producer(broker, "app-k", **{"transaction.timeout.ms": 3000})
    p.begin_transaction()
    for i in range(10):
        p.produce("tx-k", ("ok-%d" % i).encode(), partition=i % 2)
    p.commit_transaction(15)
    p.begin_transaction()
    for i in range(10):
        p.produce("tx-k", ("open-%d" % i).encode(), partition=i % 2)
    p.flush(10)
    broker.kill9()
    broker.start()
    # the open transaction is aborted at its timeout; the committed one stays
    plain = Producer({"bootstrap.servers": broker.bootstrap})
    plain.produce("tx-k", b"after", partition=0)
    plain.flush(10)
    got = consume_all(broker, ["tx-k"], "read_committed", expect=11)
    assert values(got) == sorted(["ok-%d" % i for i in range(10)] + ["after"])
    # a new incarnation of the producer works
    p2 = txn_producer(broker, "app-k")
    p2.begin_transaction()
    p2.produce("tx-k", b"new", partition=1)
    p2.commit_transaction(15)
    got = consume_all(broker, ["tx-k"], "read_committed", expect=12)
    assert "new" in values(got)


def test_kafkajs_transactions(broker_factory):
    import json
    import os
    import subprocess

    import clients as C
    assert C.node_available(), "tests/integration/js/node_modules missing: run install-deps"
    broker = broker_factory(group_initial_rebalance_delay_ms=0)
    create_topics(broker, "tx-js", partitions=1)
    r = subprocess.run(["node", os.path.join(C.JS_DIR, "txn.js"), broker.bootstrap, "tx-js",
                        "js-app", "js-group"], cwd=C.JS_DIR, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-4000:]
    out = json.loads(r.stdout)
    assert out["read"] == ["c1-%02d" % i for i in range(10)] + ["c2-%02d" % i for i in range(10)]
    assert out["offsets"] == {"0": 7}


def test_kcat_read_committed(broker):
    """kcat's -X isolation.level=read_committed agrees: an aborted transaction is skipped,
    reading stops at the LSO of an open one; read_uncommitted shows everything. (Debian's
    kafka-python 2.0.2 has no read_committed consumer, so kcat stands in for it here.)"""
    import subprocess

    create_topics(broker, "tx-kc", partitions=1)
    p = txn_producer(broker, "app-kc")
    p.begin_transaction()
    for i in range(5):
        p.produce("tx-kc", ("c-%d" % i).encode())
    p.commit_transaction(15)
    p.begin_transaction()
    for i in range(5):
        p.produce("tx-kc", ("a-%d" % i).encode())
    p.flush(10)
    p.abort_transaction(15)
    p.begin_transaction()
    p.produce("tx-kc", b"c-5")
    p.commit_transaction(15)
    p.begin_transaction()
    p.produce("tx-kc", b"open")  # left open: read_committed stops before it
    p.flush(10)

    def kcat(isolation):
        r = subprocess.run(["kcat", "-C", "-b", broker.bootstrap, "-t", "tx-kc", "-p", "0",
                            "-o", "beginning", "-e", "-q", "-f", "%s\\n",
                            "-X", "isolation.level=" + isolation],
                           capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return r.stdout.decode().split()

    assert kcat("read_committed") == ["c-%d" % i for i in range(6)]
    assert kcat("read_uncommitted") == (["c-%d" % i for i in range(5)] +
                                        ["a-%d" % i for i in range(5)] + ["c-5", "open"])
    p.abort_transaction(15)


def test_exactly_once_loop_survives_kill9(broker_factory):
    """A consume-transform-produce loop (offsets committed inside each transaction) runs
    while the broker is kill -9'ed three times: the output holds every input record exactly
    once. On any error the loop does what an EOS application does: drop its producer and
    consumer, init a new producer (which fences the old one and completes or aborts its
    transaction), then resume from the group's committed offsets."""
    import threading

    broker = broker_factory(**{
        "transaction.abort.timed.out.transaction.cleanup.interval.ms": 200})
    create_topics(broker, "eos-src", "eos-dst", partitions=2)
    n = 600
    src = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True})
    for i in range(n):
        src.produce("eos-src", ("r-%04d" % i).encode(), partition=i % 2)
    src.flush(15)
    kills = []
    progress = [0]

    def killer():
        limit = time.time() + 30
        while progress[0] == 0 and time.time() < limit:
            time.sleep(0.05)
        for _ in range(3):
            time.sleep(1.2)
            broker.kill9()
            kills.append(progress[0])  # how far the loop was when the broker died
            broker.start()
    t = threading.Thread(target=killer)
    t.start()
    group = "eos-loop"
    parts = [TopicPartition("eos-src", 0), TopicPartition("eos-src", 1)]
    p = c = None
    done = 0
    restarts = 0
    deadline = time.time() + 120
    try:
        while time.time() < deadline:
            try:
                if p is None:
                    p = Producer({"bootstrap.servers": broker.bootstrap,
                                  "transactional.id": "eos-loop-app",
                                  "transaction.timeout.ms": 5000, "linger.ms": 5})
                    p.init_transactions(10)
                    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                                  "enable.auto.commit": False,
                                  "isolation.level": "read_committed"})
                    committed = c.committed(parts, 10)
                    c.assign([TopicPartition(tp.topic, tp.partition,
                                             tp.offset if tp.offset >= 0 else 0)
                              for tp in committed])
                    done = sum(max(tp.offset, 0) for tp in committed)
                if done >= n and not t.is_alive():
                    break
                msgs = [m for m in c.consume(20, timeout=0.3) if not m.error()]
                if not msgs:
                    continue
                time.sleep(0.2)  # "processing": spreads the run over the kills
                p.begin_transaction()
                nexts = {}
                for m in msgs:
                    p.produce("eos-dst", m.value().upper(), partition=m.partition())
                    nexts[m.partition()] = m.offset() + 1
                p.send_offsets_to_transaction(
                    [TopicPartition("eos-src", pt, off) for pt, off in nexts.items()],
                    c.consumer_group_metadata(), 10)
                p.commit_transaction(10)
                done += len(msgs)
                progress[0] = done
            except KafkaException:
                restarts += 1
                if c is not None:
                    try:
                        c.close()
                    except Exception:
                        pass
                p = c = None
                time.sleep(0.2)
    finally:
        t.join()
        if c is not None:
            c.close()
    assert len(kills) == 3
    print("\nkilled at %s of %d records; the loop restarted %d times" % (kills, n, restarts))
    assert all(0 < k < n for k in kills), kills  # killed mid-run, not before or after
    assert done >= n, "processed %d of %d" % (done, n)
    out = consume_all(broker, ["eos-dst"], "read_committed", expect=n)
    got = values(out)
    dups = len(got) - len(set(got))
    assert dups == 0, "%d duplicates" % dups
    assert got == sorted(("R-%04d" % i) for i in range(n)), len(got)


def kcall(broker, key, v, values):
    """One request encoded from kpool's message definitions; the decoded response body."""
    import kdefs
    import kwire
    s = kwire.connect(broker.port)
    try:
        s.sendall(kdefs.encode_request(key, v, 7, values))
        corr, body = kdefs.decode_response(key, v, kwire.recv_frame(s))
        assert corr == 7
        return body
    finally:
        s.close()


def test_describe_list_transactions_and_producers(broker):
    """DescribeTransactions, ListTransactions (with filters) and DescribeProducers show an
    open transaction, then its completion; WriteTxnMarkers writes a marker by hand."""
    create_topics(broker, "tx-d", partitions=1)
    p = txn_producer(broker, "app-d", **{"transaction.timeout.ms": 45000})
    p.begin_transaction()
    p.produce("tx-d", b"x", partition=0)
    p.flush(10)
    d = kcall(broker, 65, 0, {"TransactionalIds": ["app-d", "nope"]})
    st, missing = d["TransactionStates"]
    assert st["ErrorCode"] == 0 and st["TransactionState"] == b"Ongoing"
    assert st["TransactionTimeoutMs"] == 45000 and st["ProducerEpoch"] == 0
    assert st["Topics"] == [{"Topic": b"tx-d", "Partitions": [0]}]
    assert missing["ErrorCode"] == 105  # TRANSACTIONAL_ID_NOT_FOUND
    pid = st["ProducerId"]
    ls = kcall(broker, 66, 0, {"StateFilters": ["Ongoing", "Bogus"], "ProducerIdFilters": []})
    assert ls["UnknownStateFilters"] == [b"Bogus"]
    assert [(t["TransactionalId"], t["ProducerId"]) for t in ls["TransactionStates"]] == \
        [(b"app-d", pid)]
    dp = kcall(broker, 61, 0, {"Topics": [{"Name": "tx-d", "PartitionIndexes": [0]}]})
    (prod,) = dp["Topics"][0]["Partitions"][0]["ActiveProducers"]
    assert prod["ProducerId"] == pid and prod["CurrentTxnStartOffset"] == 0
    p.commit_transaction(15)
    d = kcall(broker, 65, 0, {"TransactionalIds": ["app-d"]})
    assert d["TransactionStates"][0]["TransactionState"] == b"CompleteCommit"
    assert kcall(broker, 66, 0, {"StateFilters": ["Ongoing"], "ProducerIdFilters": []})[
        "TransactionStates"] == []
    # only unknown states: no state filter at all (as Kafka); a producer id filter applies
    ls = kcall(broker, 66, 0, {"StateFilters": ["Bogus"], "ProducerIdFilters": [pid + 1]})
    assert ls["UnknownStateFilters"] == [b"Bogus"] and ls["TransactionStates"] == []
    ls = kcall(broker, 66, 0, {"StateFilters": ["Bogus"], "ProducerIdFilters": [pid]})
    assert [t["TransactionState"] for t in ls["TransactionStates"]] == [b"CompleteCommit"]
    dp = kcall(broker, 61, 0, {"Topics": [{"Name": "tx-d", "PartitionIndexes": [0]}]})
    assert dp["Topics"][0]["Partitions"][0]["ActiveProducers"][0]["CurrentTxnStartOffset"] == -1
    # WriteTxnMarkers: an abort marker for a producer with nothing open changes nothing
    w = kcall(broker, 27, 0, {"Markers": [{"ProducerId": pid, "ProducerEpoch": 0,
                                           "TransactionResult": False, "CoordinatorEpoch": 0,
                                           "Topics": [{"Name": "tx-d",
                                                       "PartitionIndexes": [0, 9]}]}]})
    res = w["Markers"][0]["Topics"][0]["Partitions"]
    assert [(r["PartitionIndex"], r["ErrorCode"]) for r in res] == [(0, 0), (9, 3)]
    assert values(consume_all(broker, ["tx-d"], "read_committed", expect=1)) == ["x"]
    # InitProducerId: an empty transactional id is not a null one (INVALID_REQUEST, as Kafka)
    assert kcall(broker, 22, 1, {"TransactionalId": "", "TransactionTimeoutMs": 1000})[
        "ErrorCode"] == 42
    assert kcall(broker, 22, 1, {"TransactionalId": None, "TransactionTimeoutMs": 1000})[
        "ErrorCode"] == 0


def java_hash_partition(s, n):
    h = 0
    for ch in s.encode():
        h = (h * 31 + ch) & 0xffffffff
    if h >= 1 << 31:
        h -= 1 << 32
    return abs(h) % n


def test_prepared_commit_completes_after_kill9(broker_factory):
    """A transaction whose PrepareCommit reached __transaction_state when the broker died
    (the markers not yet written) is committed after the restart: the coordinator replays
    the log, writes the markers, and read_committed consumers see the records. The
    PrepareCommit record is appended to the log while the broker is down, in Kafka's
    TransactionLogValue v0 format, exactly as the coordinator writes it before the markers."""
    import glob
    import os
    import struct

    import kwire
    broker = broker_factory()
    create_topics(broker, "tx-pc", partitions=1)
    p = txn_producer(broker, "app-pc", **{"transaction.timeout.ms": 60000})
    p.begin_transaction()
    for i in range(5):
        p.produce("tx-pc", ("pc-%d" % i).encode(), partition=0)
    p.flush(10)
    st = kcall(broker, 65, 0, {"TransactionalIds": ["app-pc"]})["TransactionStates"][0]
    assert st["TransactionState"] == b"Ongoing"
    broker.kill9()
    # the coordinator's next write would have been this one
    part = java_hash_partition("app-pc", 50)
    seg = sorted(glob.glob(os.path.join(broker.data_dir, "__transaction_state-%d" % part,
                                        "*.log")))[-1]
    with open(seg, "rb") as f:
        data = f.read()
    next_offset = kwire.parse_batches(data)[-1][3] + 1
    key = struct.pack(">h", 0) + kwire.string("app-pc")
    now = int(time.time() * 1000)
    value = (struct.pack(">hqhib", 0, st["ProducerId"], st["ProducerEpoch"], 60000, 2) +
             kwire.array([kwire.string("tx-pc") + kwire.array([kwire.i32(0)])]) +
             struct.pack(">qq", now, st["TransactionStartTimeMs"]))
    body = (kwire.i8(0) + kwire.varint(0) + kwire.varint(0) + kwire.varint(len(key)) + key +
            kwire.varint(len(value)) + value + kwire.uvarint(0))
    rec = kwire.varint(len(body)) + body
    after_crc = (kwire.i16(0) + kwire.i32(0) + kwire.i64(now) + kwire.i64(now) + kwire.i64(-1) +
                 kwire.i16(-1) + kwire.i32(-1) + kwire.i32(1) + rec)
    tail = kwire.i32(0) + kwire.i8(2) + kwire.u32(kwire.crc32c(after_crc)) + after_crc
    with open(seg, "ab") as f:
        f.write(kwire.i64(next_offset) + kwire.i32(len(tail)) + tail)
    broker.start()
    got = consume_all(broker, ["tx-pc"], "read_committed", expect=5)
    assert values(got) == ["pc-%d" % i for i in range(5)]
    st = kcall(broker, 65, 0, {"TransactionalIds": ["app-pc"]})["TransactionStates"][0]
    assert st["TransactionState"] == b"CompleteCommit"


def test_transactional_id_expires(broker_factory):
    """transactional.id.expiration.ms: an id idle that long is forgotten (DescribeTransactions:
    TRANSACTIONAL_ID_NOT_FOUND), also after a restart (its tombstone is replayed); the next
    InitProducerId starts afresh with a new producer id. An open transaction never expires."""
    broker = broker_factory(**{
        "transactional.id.expiration.ms": 1500,
        "transaction.abort.timed.out.transaction.cleanup.interval.ms": 200})
    create_topics(broker, "tx-e", partitions=1)
    p = txn_producer(broker, "app-e")
    p.begin_transaction()
    p.produce("tx-e", b"e1", partition=0)
    p.commit_transaction(15)
    first = kcall(broker, 65, 0, {"TransactionalIds": ["app-e"]})["TransactionStates"][0]
    assert first["ErrorCode"] == 0
    keep = txn_producer(broker, "app-keep", **{"transaction.timeout.ms": 60000})
    keep.begin_transaction()
    keep.produce("tx-e", b"open", partition=0)
    keep.flush(10)
    deadline = time.time() + 30
    while time.time() < deadline:
        st = kcall(broker, 65, 0, {"TransactionalIds": ["app-e"]})["TransactionStates"][0]
        if st["ErrorCode"] == 105:
            break
        time.sleep(0.2)
    assert st["ErrorCode"] == 105, st
    assert kcall(broker, 65, 0, {"TransactionalIds": ["app-keep"]})[
        "TransactionStates"][0]["TransactionState"] == b"Ongoing"
    keep.abort_transaction(15)
    broker.restart()
    st = kcall(broker, 65, 0, {"TransactionalIds": ["app-e"]})["TransactionStates"][0]
    assert st["ErrorCode"] == 105
    again = txn_producer(broker, "app-e")
    st = kcall(broker, 65, 0, {"TransactionalIds": ["app-e"]})["TransactionStates"][0]
    assert st["ErrorCode"] == 0 and st["ProducerId"] != first["ProducerId"]
    again.begin_transaction()
    again.produce("tx-e", b"e2", partition=0)
    again.commit_transaction(15)
    assert values(consume_all(broker, ["tx-e"], "read_committed", expect=2)) == ["e1", "e2"]


def test_offset_fetch_require_stable(broker):
    """KIP-447: while a transaction holds a group's offset, OffsetFetch with RequireStable
    answers UNSTABLE_OFFSET_COMMIT (88) for that partition (the consumer retries) and without
    it the last committed offset; after the commit both answer the new offset. Failed before
    the fix: RequireStable was ignored, so a read_committed consumer starting while the
    transaction was open resumed from the old offset and processed the records twice."""
    create_topics(broker, "stable-in", partitions=2)
    group = "stable-group"
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition("stable-in", 0, 3)], asynchronous=False)
    p = txn_producer(broker, "stable-app")
    p.begin_transaction()
    p.produce("stable-in", b"x", partition=1)
    p.send_offsets_to_transaction([TopicPartition("stable-in", 0, 7)],
                                  c.consumer_group_metadata(), 15)

    def fetch(stable, version=7):
        body = kcall(broker, 9, version, {
            "GroupId": group, "RequireStable": stable,
            "Topics": [{"Name": "stable-in", "PartitionIndexes": [0, 1]}]})
        parts = body["Topics"][0]["Partitions"]
        return {q["PartitionIndex"]: (q["ErrorCode"], q["CommittedOffset"]) for q in parts}

    def fetch_v8(stable):
        body = kcall(broker, 9, 8, {"Groups": [{
            "GroupId": group, "Topics": [{"Name": "stable-in", "PartitionIndexes": [0]}]}],
            "RequireStable": stable})
        q = body["Groups"][0]["Topics"][0]["Partitions"][0]
        return q["ErrorCode"], q["CommittedOffset"]

    assert fetch(True) == {0: (88, -1), 1: (0, -1)}
    assert fetch(False) == {0: (0, 3), 1: (0, -1)}
    assert fetch_v8(True) == (88, -1)
    assert fetch_v8(False) == (0, 3)
    p.commit_transaction(15)
    assert fetch(True) == {0: (0, 7), 1: (0, -1)}
    assert fetch_v8(True) == (0, 7)
    # a read_committed consumer (librdkafka asks with RequireStable) resumes after the commit
    assert c.committed([TopicPartition("stable-in", 0)], 10)[0].offset == 7
    c.close()


def fetch_batches(broker, topic, isolation=0):
    """Raw Fetch v4 of partition 0 from offset 0 to the high watermark, as a client sees the
    log: ([(base offset, attributes, bytes)] of every batch, the aborted transactions the
    answers listed)."""
    out, aborted, offset, hwm = [], 0, 0, None
    with socket.create_connection((broker.host, broker.port), timeout=20) as s:
        while hwm is None or offset < hwm:
            body = bytearray(kwire.body_fetch(4, topic, 0, offset, max_bytes=8 << 20))
            body[16] = isolation  # after replica id, max wait, min bytes, max bytes
            s.sendall(kwire.request(kwire.API_FETCH, 4, 7, bytes(body)))
            data = kwire.recv_frame(s, timeout=20)
            pos = 8  # correlation id, throttle time
            (nl,) = struct.unpack_from(">h", data, pos + 4)
            pos += 6 + nl + 4  # topic count, name, partition count
            _, err, hwm, _, naborted = struct.unpack_from(">ihqqi", data, pos)
            assert err == 0, err
            aborted += max(naborted, 0)
            pos += 26 + max(naborted, 0) * 16
            (rlen,) = struct.unpack_from(">i", data, pos)
            records = data[pos + 4:pos + 4 + max(rlen, 0)]
            batches = kwire.parse_batches(records)
            if not batches:
                break
            for p, total, base, last in batches:
                out.append((base, struct.unpack_from(">h", records, p + 21)[0], total))
                offset = last + 1
    return out, aborted


def test_cleaner_removes_markers(broker_factory):
    """Transaction markers on a compacted topic go as Kafka's cleaner removes them (KIP-98,
    KIP-534): a COMMIT or ABORT marker stays while a record of its transaction does; once
    none is left (aborted records removed, committed ones replaced by later values of their
    keys) it gets a delete horizon of delete.retention.ms and the first cleaning after that
    removes it. A raw Fetch (read_uncommitted) then skips the markers' offsets, the log has
    shrunk, the aborted transactions are no longer listed to read_committed fetches, and both
    isolation levels still read the right records, also from a later transaction of the same
    producer. Fails on the old code: markers were never removed."""
    broker = broker_factory(**{"log.cleaner.backoff.ms": 300})
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    cfg = {"cleanup.policy": "compact", "segment.bytes": "4096", "delete.retention.ms": "2000",
           "min.cleanable.dirty.ratio": "0.01", "min.compaction.lag.ms": "0"}
    for f in admin.create_topics([NewTopic("tx-cmp", 1, 1, config=cfg)]).values():
        f.result(15)
    p = txn_producer(broker, "app-cmp")
    for i in range(6):  # committed v0, v2, v4 of key k (v4 the latest); aborted v1, v3, v5
        p.begin_transaction()
        p.produce("tx-cmp", key=b"k", value=b"v%d" % i)
        if i % 2:
            p.flush(10)
            p.abort_transaction(15)
        else:
            p.commit_transaction(15)
    p.begin_transaction()
    p.produce("tx-cmp", key=b"k2", value=b"kept")
    p.commit_transaction(15)
    batches, aborted = fetch_batches(broker, "tx-cmp", isolation=1)
    assert aborted == 3
    markers = [o for o, a, _ in batches if a & 0x20]
    assert len(markers) == 7, batches
    # the markers that must stay: v4's commit (right after v4's record) and k2's
    data = [o for o, a, _ in batches if not a & 0x20]
    staying = {markers[4], markers[6]}
    assert markers[4] == data[4] + 1 and markers[6] == data[6] + 1, batches
    end = batches[-1][0] + 1
    txn_bytes = sum(n for _, _, n in batches)
    # rolled segments: the active one is never cleaned
    plain = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    for i in range(12):
        plain.produce("tx-cmp", key=b"f%d" % i, value=b"x" * 1000)
        plain.flush(10)

    def markers_left():
        return sorted(o for o, a, _ in fetch_batches(broker, "tx-cmp")[0] if a & 0x20)

    deadline = time.time() + 60
    while set(markers_left()) != staying:
        assert time.time() < deadline, "markers left: %s (want %s)" % (
            markers_left(), sorted(staying))
        time.sleep(0.3)
    batches, aborted = fetch_batches(broker, "tx-cmp", isolation=1)
    offsets = {o for o, _, _ in batches}
    assert not offsets & (set(markers) - staying)  # the fetched offsets skip them
    assert sum(n for o, _, n in batches if o < end) < txn_bytes / 2  # the log shrank
    assert aborted == 0  # no aborted transaction is listed any more
    assert "transaction markers removed" in broker.log()
    # the same producer (same producer id) commits again: both isolation levels see it
    p.begin_transaction()
    p.produce("tx-cmp", key=b"k3", value=b"after")
    p.commit_transaction(15)
    want = sorted(["v4", "kept", "after"] + ["x" * 1000] * 12)
    for isolation in ("read_committed", "read_uncommitted"):
        assert values(consume_all(broker, ["tx-cmp"], isolation, expect=len(want))) == want
