"""Real clients round-trip through kpool under every compression codec.

Acceptance: kcat, confluent-kafka-python, kafka-python and kafkajs each produce >= 100k keyed
messages with headers, under every codec (none, gzip, snappy, lz4, zstd), to a
multi-partition topic, and consume them back byte-identical, also after a broker restart.

One test per client; inside it the five codecs (one topic each) run concurrently. Checked,
before and after a clean restart: every partition holds exactly the records its keys hash to
(murmur2), in produce order, at offsets 0..n-1 (no loss, duplicate or gap), byte-identical
keys, values (binary, empty, null) and headers (binary values); and the stored batches
really use the codec the client was told to use (a client that silently falls back to no
compression would otherwise pass).

Consumers use assign() from the beginning, no group. kafkajs has no group-less consumer, so
what kafkajs produced is read back here with confluent-kafka (which also checks that
kafkajs' codec plugins write what librdkafka reads); test_kafkajs_group.py reads it with
kafkajs itself, in a consumer group.
"""
import json
import os
import time

import pytest
from kafka.consumer.fetcher import RecordTooLargeError

import clients as C

CLIENTS = ("kcat", "confluent", "kafka-python", "kafkajs")


def _topics(client):
    return {codec: "rt-%s-%s" % (client, codec) for codec in C.CODECS}


def _produce(client, broker, topics, workdir, pool):
    bs = broker.bootstrap
    if client == "kcat":
        C.run_in_threads(C.produce_kcat, [(bs, t, c, C.records_for(t, kcat=True))
                                          for c, t in topics.items()])
    elif client == "confluent":
        C.run_in_threads(C.produce_confluent, [(bs, t, c, C.records_for(t))
                                               for c, t in topics.items()])
    elif client == "kafka-python":
        futs = [pool.submit(C.produce_kafka_python, bs, t, c) for c, t in topics.items()]
        for f in futs:
            f.result()
    elif client == "kafkajs":
        jobs = []
        for c, t in topics.items():
            path = os.path.join(workdir, "%s.records" % t)
            C.write_records_file(path, C.records_for(t))
            jobs.append({"topic": t, "codec": c, "file": path})
        jobs_file = os.path.join(workdir, "produce-jobs.json")
        with open(jobs_file, "w") as f:
            json.dump(jobs, f)
        acked = json.loads(C.run_node(["produce", bs, jobs_file], timeout=300))
        assert acked == {t: C.MESSAGES for t in topics.values()}, acked


def _consume_and_compare(client, broker, topics, expected, label, pool):
    """Reads every topic back with the client's own consumer (confluent-kafka for kafkajs)
    and returns the differences."""
    bs = broker.bootstrap
    counts = {(t, p): len(expected[c][p]) for c, t in topics.items()
              for p in range(C.PARTITIONS)}
    if client == "kcat":
        got = {}
        for part in C.run_in_threads(C.consume_kcat, [(bs, t) for t in topics.values()]):
            got.update(part)
    elif client in ("confluent", "kafkajs"):
        got = C.consume_confluent(bs, counts)
    elif client == "kafka-python":
        futs = [pool.submit(C.kafka_python_verify, bs, t, label) for t in topics.values()]
        return [e for f in futs for e in f.result()]
    errors = []
    for c, t in topics.items():
        errors += C.compare(t, expected[c], got, "%s %s" % (client, label))
    return errors


@pytest.mark.parametrize("client", CLIENTS)
def test_roundtrip_every_codec(broker_factory, workdir, client):
    if client == "kafkajs" and not C.node_available():
        pytest.fail("tests/integration/js/node_modules missing: run scripts/install-deps.sh")
    broker = broker_factory()
    timer = C.Timer()
    topics = _topics(client)
    C.create_topics(broker.bootstrap, list(topics.values()))
    expected = {c: C.expected_partitions(C.records_for(t, kcat=client == "kcat"))
                for c, t in topics.items()}
    # every partition gets a fair share (the keys spread over all of them)
    assert all(len(p) > C.MESSAGES // (3 * C.PARTITIONS) for ps in expected.values() for p in ps)
    timer.mark("setup")

    pool = C.process_pool() if client == "kafka-python" else None
    try:
        _produce(client, broker, topics, workdir, pool)
        timer.mark("produce")
        errors = _consume_and_compare(client, broker, topics, expected, "before restart", pool)
        timer.mark("consume")

        codec_errors = []
        for c, t in topics.items():
            count_errs, codec_errs = C.check_codec(broker.data_dir, t, c, expected[c])
            codec_errors += count_errs
            codec_errors += codec_errs

        broker.restart()
        timer.mark("restart")
        errors += _consume_and_compare(client, broker, topics, expected, "after restart", pool)
        timer.mark("consume again")
    finally:
        if pool:
            pool.shutdown()
    print("%s: %s" % (client, timer))

    errors += codec_errors
    assert not errors, "%d problems:\n%s" % (len(errors), "\n".join(errors[:40]))


def test_kafka_python_fetch_budget_never_truncates_a_first_batch(broker_factory):
    """Two partitions with one ~20 KB batch each, read with fetch_max_bytes=30000: the first
    partition's batch fills most of the response. Kafka (Fetch v3+) answers the second
    partition with no records rather than a cut batch, and the consumer gets it on the next
    fetch; a cut first batch makes kafka-python raise RecordTooLargeError."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    broker = broker_factory()
    topic = "fetch-budget"
    C.create_topics(broker.bootstrap, [topic], partitions=2)
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=200,
                      batch_size=1 << 20)
    values = {part: [os.urandom(1000) for _ in range(20)] for part in (0, 1)}
    for part in (0, 1):
        for v in values[part]:
            p.send(topic, value=v, partition=part)
    p.flush(30)
    p.close(30)
    for part in (0, 1):  # precondition: one batch per partition, bigger than 30000 - batch
        batches = C.segment_batches(broker.data_dir, topic, part)
        assert [c for _, _, c in batches] == [20], batches

    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                      enable_auto_commit=False, fetch_max_bytes=30000)
    try:
        tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        got = {0: [], 1: []}
        deadline = time.time() + 20
        while len(got[0]) + len(got[1]) < 40 and time.time() < deadline:
            for tp, msgs in c.poll(timeout_ms=500).items():
                got[tp.partition] += [m.value for m in msgs]
    finally:
        c.close()
    assert got == values


def test_consumer_tails_live_production(broker_factory):
    """The everyday pattern: a consumer waits at the end of the log (long-poll fetches parked
    in the broker) while a producer appends; every record arrives, in order."""
    from confluent_kafka import Consumer, Producer, TopicPartition, OFFSET_END
    broker = broker_factory()
    topic = "live-tail"
    C.create_topics(broker.bootstrap, [topic], partitions=3)
    cons = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "kpool-it-tail",
                     "enable.auto.commit": False, "fetch.wait.max.ms": 1000})
    prod = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
    sent = {p: [] for p in range(3)}
    got = {p: [] for p in range(3)}
    try:
        cons.assign([TopicPartition(topic, p, OFFSET_END) for p in range(3)])
        cons.poll(1.0)  # fetches are now parked at the end of each partition
        for rnd in range(10):
            assert broker.proc.poll() is None, "round %d%s" % (rnd, C.broker_death(broker))
            for i in range(30):
                v = b"%d-%d-" % (rnd, i) + os.urandom(16)
                sent[i % 3].append(v)
                prod.produce(topic, value=v, partition=i % 3)
            assert prod.flush(30) == 0
            deadline = time.time() + 30
            while sum(map(len, got.values())) < 30 * (rnd + 1) and time.time() < deadline \
                    and broker.proc.poll() is None:
                for m in cons.consume(num_messages=100, timeout=0.2):
                    assert m.error() is None, m.error()
                    got[m.partition()].append(m.value())
            assert got == sent, "round %d: read %s of %s records%s" % (
                rnd, {p: len(v) for p, v in got.items()}, {p: len(v) for p, v in sent.items()},
                C.broker_death(broker))
    finally:
        cons.close()


@pytest.mark.parametrize("codec", ["none", "lz4"])
def test_offsets_for_times_finds_the_record_inside_a_batch(broker_factory, codec):
    """offsetsForTimes (ListOffsets by timestamp) answers with the first *record* at or after
    the time, as Kafka does, also in the middle of a (compressed) batch — not with the base
    offset of the batch that holds it, which would replay earlier records."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    from kafka import KafkaConsumer, TopicPartition as KTP
    broker = broker_factory()
    topic = "by-time-" + codec
    C.create_topics(broker.bootstrap, [topic], partitions=1)
    t0 = int(time.time() * 1000) - 60_000
    prod = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 200,
                     "compression.type": codec})
    for i in range(10):  # one batch: timestamps t0, t0+10, ..., t0+90
        prod.produce(topic, value=b"v%d" % i, partition=0, timestamp=t0 + 10 * i)
    assert prod.flush(10) == 0
    cons = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "kpool-it-bytime"})
    kc = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    try:
        for want_ts, want_off in [(t0 - 5, 0), (t0, 0), (t0 + 45, 5), (t0 + 50, 5),
                                  (t0 + 90, 9), (t0 + 91, -1)]:
            got = cons.offsets_for_times([TopicPartition(topic, 0, want_ts)], timeout=10)[0]
            assert got.error is None, got.error
            assert got.offset == want_off, (want_ts - t0, got.offset)
            kg = kc.offsets_for_times({KTP(topic, 0): want_ts})[KTP(topic, 0)]
            if want_off < 0:
                assert kg is None
            else:
                assert (kg.offset, kg.timestamp) == (want_off, t0 + 10 * want_off), kg
    finally:
        cons.close()
        kc.close()
