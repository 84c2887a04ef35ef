"""`kpool pool restart --rolling` (issue 15 item 3): one command restarts every broker of a
`kpool up --brokers 3`, one after another, each only once every broker is back in the ISR of
every partition it follows — under continuous idempotent acks=all produce and a consumer:
nothing acknowledged is lost and no client sees an error.

Fails on the old code: `kpool pool` had no `restart` (and `kpool up` no control socket).
"""
import json
import os
import struct
import subprocess
import threading
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import NewTopic

import kwire
from harness import KPOOL_BIN, KpoolUp
from pool_harness import Pool, wait_for
from test_pool import create_topic, wait_isr
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


def test_pool_commands_reach_kpool_up_over_tls():
    """`kpool pool status|elect-leaders` with no flags reach a `kpool up --brokers 3` pool,
    whose listeners are SSL-only with client certificates: the bootstrap servers, the pool CA
    and the admin client certificate come from the CLI configuration kpool up wrote. (Fails
    on the old code: no bootstrap without --bootstrap, and with it PLAINTEXT against a TLS
    listener gets no answer.) A CA that did not sign the brokers is refused, and no error
    shows the key."""
    up = KpoolUp(args=["--brokers", "3"]).start(timeout=120)
    try:
        for f in up.admin.create_topics([NewTopic("st", 6, 3)]).values():
            f.result(60)
        wait_for(lambda: isr_full(up, "st", 3), timeout=60, what="ISR 3 everywhere")
        last = []

        def healthy():
            last[:] = [up.kpool("pool", "status", "-o", "json", expect=None)]
            return last[0].returncode == 0
        wait_for(healthy, timeout=60, what="kpool pool status healthy")
        st = json.loads(last[0].stdout)
        assert sorted(b["id"] for b in st["brokers"]) == [1, 2, 3], st
        assert st["under_replicated"] == [] and st["offline"] == [], st
        assert st["partitions"] >= 6 and st["moves_in_progress"] == 0, st
        assert all(b["replicas"] >= 6 and b["disk_bytes"] >= 0 for b in st["brokers"]), st
        p = up.kpool("pool", "elect-leaders")
        assert "preferred leaders elected" in p.stdout, p.stdout
        ca, cert, key = up.admin_files()
        # the same with explicit flags; PLAINTEXT (no --ca) to the SSL listener: a clear error
        p = up.kpool("pool", "status", "--bootstrap", up.kafka, "--ca", ca, "--cert", cert,
                     "--key", key)
        assert "3 brokers" in p.stdout, p.stdout
        p = up.kpool("pool", "status", "--bootstrap", up.kafka, expect=1)
        assert up.kafka in p.stderr and "--ca" in p.stderr, p.stderr
        # a CA that did not sign the brokers' certificates
        other = os.path.join(up.root, "other-ca.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=other", "-days", "1",
                        "-keyout", os.path.join(up.root, "other-ca.key"), "-out", other],
                       check=True, capture_output=True, timeout=60)
        p = up.kpool("pool", "status", "--ca", other, expect=1)
        assert "certificate" in p.stderr and "127.0.0.1:" in p.stderr, p.stderr
        with open(key) as f:
            secret = f.read()
        body = "".join(l for l in secret.splitlines() if "-----" not in l)
        for out in (p.stdout, p.stderr, up.log()):
            assert "PRIVATE KEY" not in out and body[:40] not in out
        up.kpool("pool", "status", "--cert", cert, expect=2)  # without --key
    finally:
        up.stop(timeout=120)


def _metadata_topic_error(port, topic):
    """Metadata v1 for topic on the broker at port: the topic's error code (0: known)."""
    s = kwire.connect(port, timeout=10)
    try:
        s.sendall(kwire.request(kwire.API_METADATA, 1, 5, kwire.body_metadata(1, [topic])))
        d = kwire.recv_frame(s, timeout=20)
    finally:
        s.close()
    pos = 4  # correlation id
    (nb,) = struct.unpack_from(">i", d, pos)
    pos += 4
    for _ in range(nb):  # node id, host, port, rack (nullable)
        pos += 4
        (n,) = struct.unpack_from(">h", d, pos)
        pos += 2 + n + 4
        (n,) = struct.unpack_from(">h", d, pos)
        pos += 2 + max(n, 0)
    pos += 4 + 4  # controller id, topic count
    return struct.unpack_from(">h", d, pos)[0]


def test_restarted_broker_answers_metadata_once_it_knows_the_pool(workdir):
    """A broker of a pool that restarts serves requests only once it has read the pool's
    topics from etcd: Metadata asked of it as early as it answers (a client hammering it
    from the moment it is started again) never calls a pool topic unknown. (Fails on the old
    code: its network threads served during the first read of the pool, and Metadata
    answered UNKNOWN_TOPIC_OR_PARTITION — librdkafka then failed the records it held for the
    topic, what the rolling restart under load showed.)"""
    pool = Pool(workdir, 3).start()
    try:
        # the first read goes through the topics in name order: "aa" (many partitions)
        # keeps the broker busy before it comes to "ms"
        create_topic(pool.bootstrap, "aa", 100, 1)
        create_topic(pool.bootstrap, "ms", 6, 3)
        wait_isr(pool.bootstrap, "ms", 3, timeout=60)
        b = pool.brokers[2]
        seen = []
        for _ in range(2):
            b.stop()
            done = threading.Event()

            def probe():
                while not done.is_set():
                    try:
                        seen.append(_metadata_topic_error(b.port, "ms"))
                    except OSError:
                        time.sleep(0.005)  # not listening yet
            t = threading.Thread(target=probe)
            t.start()
            try:
                b.start(timeout=60)
            finally:
                done.set()
                t.join(30)
            seen.append(_metadata_topic_error(b.port, "ms"))
        assert all(e == 0 for e in seen), "errors %s in %d answers" % (
            sorted(set(seen)), len(seen))
    finally:
        pool.stop()
