"""`kpool pool restart --rolling` (issue 15 item 3): one command restarts every broker of a
`kpool up --brokers 3`, one after another, each only once every broker is back in the ISR of
every partition it follows — under continuous idempotent acks=all produce and a consumer:
nothing acknowledged is lost and no client sees an error.

Fails on the old code: `kpool pool` had no `restart` (and `kpool up` no control socket).
"""
import os
import subprocess
import threading
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import NewTopic

from harness import KPOOL_BIN, KpoolUp
from pool_harness import wait_for
from test_pool_logstart import broker_child_pid


def pool_cmd(*args, timeout=600):
    return subprocess.run([KPOOL_BIN, "pool"] + list(args), capture_output=True, text=True,
                          timeout=timeout)


def isr_full(up, topic, n):
    md = up.admin.list_topics(topic, timeout=20).topics[topic]
    return md.error is None and md.partitions and all(
        len(p.isrs) == n and p.leader >= 0 for p in md.partitions.values())


def test_rolling_restart_under_load():
    up = KpoolUp(args=["--brokers", "3"]).start(timeout=120)
    acked, errors, seen, consume_errors = {}, [], set(), []
    stop, produced = threading.Event(), threading.Event()
    produced_at = [0]
    threads = []
    try:
        for f in up.admin.create_topics([NewTopic("rr", 6, 3, config={
                "min.insync.replicas": "2"})]).values():
            f.result(60)
        wait_for(lambda: isr_full(up, "rr", 3), timeout=60, what="ISR 3 everywhere")
        conf = up.admin_conf()
        fatal = []

        def on_error(err):  # transport errors are the client's to retry; fatal ones are not
            if err.fatal():
                fatal.append(err)
        p = Producer(dict(conf, **{"acks": "all", "enable.idempotence": True, "linger.ms": 5,
                                   "message.timeout.ms": 300000, "error_cb": on_error}))

        def report(err, m):
            if err is not None:
                errors.append(err)
            else:
                acked[m.value()] = (m.partition(), m.offset())

        def produce():
            i = 0
            while not stop.is_set():
                try:
                    p.produce("rr", key=b"%d" % i, value=b"r-%08d" % i, on_delivery=report)
                    i += 1
                except BufferError:
                    pass
                except KafkaException as e:  # a fatal producer error: the test says which
                    errors.append(e)
                    return
                p.poll(0.01)
            p.flush(300)

        def consume():
            c = Consumer(dict(conf, **{"group.id": "rr-reader", "auto.offset.reset": "earliest",
                                       "enable.auto.commit": False}))
            c.subscribe(["rr"])
            while not produced.is_set() or not set(acked) <= seen:
                m = c.poll(0.2)
                if m is not None and m.error():
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        consume_errors.append(m.error())
                elif m is not None:
                    seen.add(m.value())
                if produced.is_set() and time.time() > produced_at[0] + 90:
                    break
            c.close()
        threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
        for t in threads:
            t.start()
        wait_for(lambda: len(acked) > 200, timeout=60, what="records before the restarts")
        pids = {k: broker_child_pid(up.root, k) for k in (2, 3)}
        assert all(pids.values()), pids
        out = pool_cmd("restart", "--rolling", "--data-dir", up.data_dir, "--timeout", "500")
        assert out.returncode == 0, out.stdout + out.stderr
        print(out.stdout)
        for k in (1, 2, 3):
            assert "broker %d is back in every ISR" % k in out.stdout, out.stdout
        # every broker really went through a restart: new processes for 2 and 3, and
        # broker 1 (kpool up's own) stopped and started again in place
        assert all(broker_child_pid(up.root, k) not in (None, pids[k]) for k in (2, 3))
        assert "restarting broker 1" in up.log()
        assert up.log().count('"stopped"') >= 1, up.log()[-3000:]
        assert isr_full(up, "rr", 3)
        n = len(acked)
        wait_for(lambda: len(acked) > n + 200 or errors, timeout=90,
                 what="records after the restarts")
        assert not errors and not fatal, (errors[:3], fatal[:3])
    finally:
        stop.set()
        if threads:
            threads[0].join(320)
        produced_at[0] = time.time()
        produced.set()
        if threads:
            threads[1].join(200)
        up.stop(timeout=120)
    assert not errors, errors[:3]
    assert not consume_errors, consume_errors[:3]
    missing = set(acked) - seen
    assert not missing, "%d of %d acknowledged records not consumed, e.g. %s" % (
        len(missing), len(acked), sorted(missing)[:3])
    print("%d records acknowledged, all consumed, no error" % len(acked))


def test_restart_usage_and_no_pool(workdir):
    """Clear errors: no BROKER and no --rolling, both, and no kpool up at --data-dir."""
    p = pool_cmd("restart")
    assert p.returncode == 2 and "--rolling or one BROKER" in p.stderr, p.stderr
    p = pool_cmd("restart", "--rolling", "2")
    assert p.returncode == 2 and "takes no BROKER" in p.stderr, p.stderr
    p = pool_cmd("restart", "--rolling", "--data-dir", os.path.join(workdir, "nothing"))
    assert p.returncode == 1 and "no kpool up answers at" in p.stderr, p.stderr
