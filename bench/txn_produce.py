#!/usr/bin/python3
"""Transactional produce next to idempotent produce, same run (issue 16 acceptance).

Usage: bench/txn_produce.py [KPOOL_BIN] [RECORDS]   (default build/kpool, 100,000 records)

Starts a broker (durable mode: every acks=all answer waits for an fsync), and produces
RECORDS 100-byte records to a 1-partition topic with confluent-kafka (librdkafka), acks=all,
linger.ms=5, three ways: idempotent (no transactions), then transactions of 1,000 and of 100
records (begin, produce, commit; each commit is an EndTxn whose markers are fsynced before it
is answered). Prints records/s and transactions/s. Compare the rows; the client is Python,
so do not quote them as broker limits.
"""
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import conftest  # noqa: E402
import kwire  # noqa: E402


def main():
    conftest.KPOOL_BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "build",
                                                                             "kpool")
    records = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
    from confluent_kafka import Producer
    b = conftest.Broker(os.path.join(tempfile.mkdtemp(prefix="kpool-bench-"), "data")).start()
    value = b"x" * 100
    try:
        for name, per_txn in (("idempotent", 0), ("txn x1000", 1000), ("txn x100", 100)):
            topic = "txn-bench-%d" % per_txn
            kwire.create_topic(b.bootstrap, topic, 1)
            conf = {"bootstrap.servers": b.bootstrap, "linger.ms": 5, "acks": "all",
                    "enable.idempotence": True, "queue.buffering.max.messages": 1000000}
            if per_txn:
                conf["transactional.id"] = "bench-%d" % per_txn
            p = Producer(conf)
            if per_txn:
                p.init_transactions(30)
            t0 = time.perf_counter()
            txns = 0
            if per_txn:
                for start in range(0, records, per_txn):
                    p.begin_transaction()
                    for _ in range(min(per_txn, records - start)):
                        p.produce(topic, value, partition=0)
                    p.commit_transaction(30)
                    txns += 1
            else:
                for i in range(records):
                    while True:
                        try:
                            p.produce(topic, value, partition=0)
                            break
                        except BufferError:
                            p.poll(0.01)
                p.flush(60)
            dt = time.perf_counter() - t0
            print("%-11s %7d records in %6.2f s: %8.0f records/s%s" % (
                name, records, dt, records / dt,
                ", %.0f transactions/s" % (txns / dt) if txns else ""))
    finally:
        b.stop()


if __name__ == "__main__":
    main()
