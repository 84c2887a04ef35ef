"""Replicated pools (issue 14, SPEC §11): several `kpool broker` processes joined through
etcd (pool_harness.Pool: a real etcd and real brokers on loopback ports).

  - membership: every broker registers under its session; Metadata (kcat -L) from any
    broker lists every live broker and one controller that all agree on; a SIGTERM'ed
    broker leaves at once (controlled shutdown), a kill -9'ed one when its session expires,
    a restarted one joins again; the controller moves when its broker goes;
  - identity: a data directory of another cluster is refused with a message naming both
    cluster ids, and a new data directory adopts the pool's id; bad settings are refused;
  - replication: RF 3 with confluent-kafka, kafka-python and kcat (ISR 3 everywhere); kill -9
    of the leader under an idempotent acks=all producer, checked record by record (nothing
    acknowledged lost, no duplicate, in order, at its acknowledged offset) with the
    failover time printed; min.insync.replicas=2 with one and two brokers down; a rolling
    restart and an etcd restart under load; configs and partition counts pool-wide;
    producer ids unique across brokers;
  - `kpool up --brokers 3 --pool nav-dev` applies the NAIS example Topic unchanged;
  - transactions: the coordinator of a group or transactional id is the leader of its
    internal partition; markers reach partitions other brokers lead; read_committed on a
    replicated partition (the LSO never above the replicated high watermark).
    (Coordinator failover: test_pool_groups.py.)
"""
import json
import os
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest
import yaml
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

import cfgwire
import clients
import kwire
from conftest import KPOOL_BIN, Broker
from harness.ports import free_offset, up_base_ports
from pool_harness import Pool, kcat_metadata, wait_for


@pytest.fixture
def pool3(workdir):
    p = Pool(workdir, 3).start()
    yield p
    p.stop()


def broker_ids(md):
    return sorted(b["id"] for b in md["brokers"])


def test_three_brokers_one_cluster(pool3):
    """kcat -L through each broker shows all three, the same controller and cluster id.
    (Fails on the old code: each broker answered with itself only.)"""
    seen = set()
    for b in pool3.brokers:
        md = wait_for(lambda: (lambda m: m if broker_ids(m) == [1, 2, 3] else None)(
            kcat_metadata(b.bootstrap)), what="3 brokers in metadata via %s" % b.bootstrap)
        ports = sorted(int(x["name"].rsplit(":", 1)[1]) for x in md["brokers"])
        assert ports == sorted(x.port for x in pool3.brokers)
        seen.add(md["controllerid"])
    assert len(seen) == 1 and seen.pop() in (1, 2, 3)
    # one cluster id, stored once in etcd and adopted by every data directory
    ids = set()
    for b in pool3.brokers:
        with open(os.path.join(b.data_dir, "meta", "cluster.json")) as f:
            ids.add(json.load(f)["cluster_id"])
    assert len(ids) == 1


def test_brokers_leave_and_rejoin(pool3):
    """SIGTERM: the broker leaves at once; kill -9: it goes when its session expires (2 s
    here); the controller moves off a dead broker; a restarted broker is back."""
    first = pool3.brokers[0]
    md = kcat_metadata(first.bootstrap)
    controller = md["controllerid"]
    survivor = next(b for b in pool3.brokers if int(b.extra["broker.id"]) != controller)
    # kill the controller: its session expires, another broker takes over
    dead = next(b for b in pool3.brokers if int(b.extra["broker.id"]) == controller)
    t0 = time.time()
    dead.kill9()
    md = wait_for(lambda: (lambda m: m if controller not in broker_ids(m) and
                           m["controllerid"] not in (-1, controller) else None)(
        kcat_metadata(survivor.bootstrap)), timeout=15, what="the controller's replacement")
    detect = time.time() - t0
    assert detect < 8, detect
    assert len(md["brokers"]) == 2
    # controlled shutdown: gone at once (the 2 s session is as short, so the deadline does
    # not tell the two apart; 3 s left no room for slow kcat runs on a loaded machine)
    other = next(b for b in pool3.brokers if b is not dead and b is not survivor)
    other.stop()
    wait_for(lambda: broker_ids(kcat_metadata(survivor.bootstrap)) ==
             [int(survivor.extra["broker.id"])], timeout=30, what="the stopped broker gone")
    # both come back (the killed one waits out its old session if it still lives)
    dead.start(timeout=60)
    other.start()
    wait_for(lambda: broker_ids(kcat_metadata(survivor.bootstrap)) == [1, 2, 3],
             what="all three back")


def test_refuses_another_clusters_metadata(workdir):
    """A standalone data directory (its own cluster id) pointed at an etcd prefix that holds
    another pool refuses to start, naming both ids; nothing in it is changed. (Fails on the
    old code: metadata.etcd.endpoints was ignored.)"""
    pool = Pool(workdir, 1).start()
    try:
        standalone = Broker(os.path.join(workdir, "standalone"), {"num.network.threads": "1"})
        standalone.start()
        standalone.stop()
        with open(os.path.join(standalone.data_dir, "meta", "cluster.json")) as f:
            before = f.read()
        standalone.extra.update({"metadata.etcd.endpoints": pool.etcd.url,
                                 "metadata.etcd.prefix": pool.prefix, "broker.id": "7"})
        proc = subprocess.run(standalone.args(), capture_output=True, text=True, timeout=30)
        assert proc.returncode != 0
        text = proc.stdout + proc.stderr
        assert "refusing to start" in text and "holds the metadata of cluster" in text, text
        with open(os.path.join(standalone.data_dir, "meta", "cluster.json")) as f:
            assert f.read() == before
        # the pool is untouched
        assert broker_ids(kcat_metadata(pool.brokers[0].bootstrap)) == [1]
    finally:
        pool.stop()


def test_bad_cluster_settings_are_refused(workdir):
    """A prefix that is not a key path and an unreachable etcd are clear startup errors."""
    b = Broker(os.path.join(workdir, "d"), {"metadata.etcd.endpoints": "http://127.0.0.1:1",
                                            "metadata.etcd.prefix": "nope"})
    proc = subprocess.run(b.args(), capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0 and "metadata.etcd.prefix" in proc.stdout + proc.stderr
    b.extra["metadata.etcd.prefix"] = "/kpool/x"
    proc = subprocess.run(b.args(), capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "metadata.etcd.endpoints" in proc.stdout + proc.stderr


# ---- replication ----




def create_topic(bootstrap, name, partitions, rf, configs=None):
    a = AdminClient({"bootstrap.servers": bootstrap})
    for f in a.create_topics([NewTopic(name, partitions, rf, config=configs or {})]).values():
        f.result(30)


def topic_md(bootstrap, name):
    for t in kcat_metadata(bootstrap)["topics"]:
        if t["topic"] == name:
            return t
    return None


def wait_isr(bootstrap, name, n, timeout=30):
    """The topic's metadata once every partition has a leader and an ISR of n, as bootstrap
    and each leader itself tell it. (A new topic's first ISR is its whole replica set, written
    with the topic: another broker may tell it before the leader's own watch has brought the
    topic, and a request sent straight to the leader meanwhile gets UNKNOWN_TOPIC_OR_PARTITION.)"""
    def good(t):
        return t and not t.get("error") and all(
            len(p["isrs"]) == n and p["leader"] >= 0 and not p.get("error")
            for p in t["partitions"])

    def ok():
        md = kcat_metadata(bootstrap)
        t = next((t for t in md["topics"] if t["topic"] == name), None)
        if not good(t):
            return None
        addrs = {b["id"]: b["name"] for b in md["brokers"]}
        for leader in {p["leader"] for p in t["partitions"]}:
            if leader not in addrs:
                return None
            try:
                lt = topic_md(addrs[leader], name)
            except (AssertionError, subprocess.TimeoutExpired):
                return None
            if not good(lt) or any(p["leader"] != q["leader"] for p, q in
                                   zip(t["partitions"], lt["partitions"])):
                return None
        return t
    return wait_for(ok, timeout=timeout, interval=0.2, what="ISR of %d on %s" % (n, name))


def consume_all(bootstrap, topic, expect, timeout=60):
    """Every record of topic from the start (a consumer without a group): (partition,
    offset) -> value."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "chk-%d" % time.time_ns(),
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "isolation.level": "read_uncommitted"})
    c.subscribe([topic])
    got = {}
    deadline = time.time() + timeout
    while len(got) < expect and time.time() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        key = (m.partition(), m.offset())
        assert key not in got or got[key] == m.value(), "offset %r read twice with different " \
            "data" % (key,)
        got[key] = m.value()
    c.close()
    return got


def check_acked(acked, stored):
    """The checker (Jepsen's Kafka workload, reduced): every acknowledged record is stored
    exactly once, at the offset its acknowledgement named; per partition, values appear in
    the order they were produced; no offset holds two different values."""
    by_value = {}
    for (p, off), v in stored.items():
        assert v not in by_value, "duplicate record %r at %r and %r" % (v, by_value[v], (p, off))
        by_value[v] = (p, off)
    for v, (p, off) in acked.items():
        assert v in by_value, "acknowledged record %r (partition %d offset %d) lost" % (v, p, off)
        assert by_value[v] == (p, off), "record %r acked at %r, stored at %r" % (
            v, (p, off), by_value[v])
    per_part = {}
    for (p, off), v in sorted(stored.items()):
        seq = int(v.split(b"-")[1])
        assert seq > per_part.get(p, -1), "partition %d out of order at offset %d" % (p, off)
        per_part[p] = seq


def test_replicated_produce_consume_every_client(pool3):
    """RF 3: kcat -L shows 3 replicas and ISR 3 for every partition (through any broker);
    confluent-kafka (acks=all, idempotent) and kafka-python produce, consumers on another
    broker read everything exactly once; each broker's copy is the same. (Fails on the old
    code: topics had one replica, no ISR of 3.)"""
    from kafka import KafkaConsumer, KafkaProducer
    create_topic(pool3.bootstrap, "rf3", 3, 3)
    for b in pool3.brokers:
        t = wait_isr(b.bootstrap, "rf3", 3)
        assert sorted(len(p["replicas"]) for p in t["partitions"]) == [3, 3, 3]
        assert sorted(p["leader"] for p in t["partitions"]) == [1, 2, 3]  # leaders spread
    acked = {}
    p = Producer({"bootstrap.servers": pool3.brokers[0].bootstrap, "acks": "all",
                  "enable.idempotence": True})

    def report(err, m):
        assert err is None, err
        acked[m.value()] = (m.partition(), m.offset())
    for i in range(300):
        p.produce("rf3", key=b"%d" % i, value=b"c-%06d" % i, on_delivery=report)
    assert p.flush(30) == 0
    kp = KafkaProducer(bootstrap_servers=pool3.brokers[1].bootstrap, acks="all")
    futs = [(b"k-%06d" % (1000 + i), kp.send("rf3", key=b"%d" % i, value=b"k-%06d" % (1000 + i)))
            for i in range(100)]
    for v, f in futs:
        md = f.get(timeout=30)
        acked[v] = (md.partition, md.offset)
    kp.close()
    stored = consume_all(pool3.brokers[2].bootstrap, "rf3", 400)
    check_acked(acked, stored)
    assert len(stored) == 400
    kc = KafkaConsumer("rf3", bootstrap_servers=pool3.brokers[2].bootstrap,
                       auto_offset_reset="earliest", consumer_timeout_ms=5000)
    assert len({(m.partition, m.offset) for m in kc}) == 400
    kc.close()
    # kafkajs (acks=all) produces and consumes in a group on the pool too
    if clients.node_available():
        recs = [(b"%d" % i, b"j-%06d" % i, ()) for i in range(200)]
        src = os.path.join(pool3.workdir, "js-in.bin")
        out = os.path.join(pool3.workdir, "js-out.bin")
        clients.write_records_file(src, recs)
        jobs = os.path.join(pool3.workdir, "jobs.json")
        with open(jobs, "w") as f:
            json.dump([{"topic": "rf3", "codec": "none", "file": src}], f)
        assert json.loads(clients.run_node(["produce", pool3.brokers[0].bootstrap, jobs], 120)) == \
            {"rf3": 200}
        with open(jobs, "w") as f:
            json.dump([{"topic": "rf3", "expected": 600, "file": out}], f)
        clients.run_node(["consume", pool3.brokers[1].bootstrap, jobs, "js-group", "60000"],
                         120)
        got = clients.read_records_file(out, "rf3")
        values = [r[1] for _, recs_ in got.values() for r in recs_]
        assert len(values) == 600 and len(set(values)) == 600
        assert {b"j-%06d" % i for i in range(200)} <= set(values)


def test_leader_kill_idempotent_producer(pool3):
    """kill -9 of the partition leader under an idempotent acks=all producer, twice (the
    killed broker restarted and back in the ISR in between): every acknowledged record is
    present exactly once, in order, at its acknowledged offset; the producer carries on
    once a new leader is elected (the failover times are printed)."""
    create_topic(pool3.bootstrap, "fo", 1, 3, {"min.insync.replicas": "2"})
    wait_isr(pool3.bootstrap, "fo", 3)
    acked = {}
    ack_times = []
    stop = threading.Event()
    errors = []
    p = Producer({"bootstrap.servers": pool3.bootstrap, "acks": "all",
                  "enable.idempotence": True, "linger.ms": 5, "message.timeout.ms": 60000})

    def report(err, m):
        if err is not None:
            errors.append(err)
            return
        acked[m.value()] = (m.partition(), m.offset())
        ack_times.append(time.time())

    def run():
        i = 0
        while not stop.is_set():
            try:
                p.produce("fo", value=b"v-%08d" % i, on_delivery=report)
                i += 1
            except BufferError:
                pass
            p.poll(0.002)
        p.flush(60)
    th = threading.Thread(target=run)
    th.start()
    resumed = []
    try:
        for _ in range(2):
            n = len(acked)
            wait_for(lambda: len(acked) > n + 200, what="acks before the kill")
            leader = wait_isr(pool3.bootstrap, "fo", 3)["partitions"][0]["leader"]
            victim = next(b for b in pool3.brokers if int(b.extra["broker.id"]) == leader)
            t_kill = time.time()
            victim.kill9()
            wait_for(lambda: len([t for t in ack_times if t > t_kill + 0.05]) > 50, timeout=30,
                     what="writes resuming after the leader's kill")
            resumed.append(min(t for t in ack_times if t > t_kill + 0.05) - t_kill)
            print("failover: writes resumed %.2f s after kill -9 of the leader" % resumed[-1])
            victim.start(timeout=60)
    finally:
        stop.set()
        th.join(90)
    assert not errors, errors[:3]
    wait_isr(pool3.bootstrap, "fo", 3, timeout=40)
    stored = consume_all(pool3.brokers[0].bootstrap, "fo", len(acked))
    check_acked(acked, stored)
    assert max(resumed) < 10, resumed


def metric(b, name):
    import re
    m = re.search(r"^%s (-?\d+)$" % re.escape(name), b.metrics(), re.M)
    assert m, name
    return int(m.group(1))


def test_min_insync_with_two_brokers_down(workdir):
    """min.insync.replicas=2: with one of three brokers down writes go on; with two down
    acks=all fails with NOT_ENOUGH_REPLICAS while reads are still served; the leader's
    metrics count the partition under-replicated, then under min ISR. (Fails on the old
    code: one replica, so min.insync 2 always refused acks=all.)"""
    pool = Pool(workdir, 3).start()
    try:
        create_topic(pool.bootstrap, "mi", 1, 3, {"min.insync.replicas": "2"})
        t = wait_isr(pool.bootstrap, "mi", 3)
        leader = t["partitions"][0]["leader"]
        keep = next(b for b in pool.brokers if int(b.extra["broker.id"]) == leader)
        down = [b for b in pool.brokers if b is not keep]
        batch = cfgwire.keyed_batch([(b"k", b"v")])
        with cfgwire.Conn(keep.port) as c:
            assert c.produce("mi", 0, batch, acks=-1) == (0, 0)
        assert metric(keep, "kpool_under_replicated_partitions") == 0
        down[0].kill9()
        wait_isr(keep.bootstrap, "mi", 2, timeout=60)
        with cfgwire.Conn(keep.port) as c:
            assert c.produce("mi", 0, batch, acks=-1) == (0, 1)
        assert metric(keep, "kpool_under_replicated_partitions") == 1
        assert metric(keep, "kpool_under_min_isr_partitions") == 0
        down[1].kill9()
        wait_isr(keep.bootstrap, "mi", 1, timeout=60)
        with cfgwire.Conn(keep.port) as c:
            assert c.produce("mi", 0, batch, acks=-1)[0] == cfgwire.NOT_ENOUGH_REPLICAS
            assert c.produce("mi", 0, batch, acks=1)[0] == 0
        assert metric(keep, "kpool_under_min_isr_partitions") == 1
        assert metric(keep, "kpool_active_controller") == 1  # the only broker left
        # reads are still served (the acks=1 record shows once it is committed here)
        wait_for(lambda: len(cfgwire.read_partition(keep.bootstrap, "mi", 0)) == 3,
                 timeout=60, what="three records readable")
        for b in down:
            b.start(timeout=60)
        wait_isr(keep.bootstrap, "mi", 3, timeout=40)
        with cfgwire.Conn(keep.port) as c:
            assert c.produce("mi", 0, batch, acks=-1)[0] == 0
    finally:
        pool.stop()


# ---- kpool up --brokers N ----



EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples")


def _up_offset(n):
    """A --port-offset for `kpool up --brokers n` whose ports are all free (harness/ports.py:
    in this test worker's share of the ports)."""
    return free_offset(up_base_ports(n))


def test_kpool_up_three_brokers_applies_the_nais_example(workdir):
    """`kpool up --brokers 3 --pool nav-dev` runs etcd, three brokers and the control plane;
    the NAIS documentation's example Topic (replication 3, minimumInSyncReplicas 2, pool
    nav-dev) applies unchanged and ends with 3 in-sync replicas; SIGTERM stops everything.
    (Fails on the old code: --brokers was an unknown argument, and the dev pool allowed
    replication 1 only.)"""
    data = os.path.join(workdir, "up")
    cfg = os.path.join(workdir, "cli.yaml")
    env = dict(os.environ, KPOOL_CONFIG=cfg)
    env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
    off = _up_offset(3)
    log_path = os.path.join(workdir, "up.log")
    logf = open(log_path, "ab")
    proc = subprocess.Popen([KPOOL_BIN, "up", "--data-dir", data, "--port-offset", str(off),
                             "--brokers", "3", "--pool", "nav-dev"],
                            stdout=logf, stderr=subprocess.STDOUT, env=env)

    def log():
        with open(log_path, "rb") as f:
            return f.read().decode(errors="replace")
    try:
        wait_for(lambda: "kpool is up." in log() or proc.poll() is not None, timeout=90,
                 what="kpool up")
        assert proc.poll() is None, log()[-4000:]
        out = subprocess.run([KPOOL_BIN, "apply", "-f",
                              os.path.join(EXAMPLES, "topic-replicated.yaml")],
                             capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        wait_for(lambda: "RolloutComplete" in subprocess.run(
            [KPOOL_BIN, "get", "topic", "-n", "myteam"], capture_output=True, text=True,
            env=env, timeout=30).stdout, timeout=60, what="the topic rolled out")
        pki = os.path.join(data, "pki")
        tls = ["-X", "security.protocol=ssl", "-X", "ssl.ca.location=%s/ca.crt" % pki,
               "-X", "ssl.certificate.location=%s/admin.crt" % pki,
               "-X", "ssl.key.location=%s/admin.key" % pki]

        def isr3():
            r = subprocess.run(["kcat", "-b", "127.0.0.1:%d" % (9103 + off), "-L", "-J",
                                "-t", "myteam.mytopic"] + tls,
                               capture_output=True, text=True, timeout=30)
            if r.returncode:
                return None
            md = json.loads(r.stdout)
            parts = md["topics"][0]["partitions"] if md["topics"] else []
            return md if len(md["brokers"]) == 3 and parts and all(
                len(p["isrs"]) == 3 for p in parts) else None
        wait_for(isr3, timeout=30, what="3 brokers, ISR 3")
        pool = yaml.safe_load(subprocess.run([KPOOL_BIN, "get", "pool", "nav-dev", "-o", "yaml"],
                                             capture_output=True, text=True, env=env,
                                             timeout=30).stdout)
        assert pool["spec"]["replication"] == {"min": 1, "max": 3, "default": 3}, pool
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(90)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        logf.close()
    text = log()
    assert rc == 0, text[-4000:]
    for name in ("broker-2.log", "broker-3.log"):
        with open(os.path.join(data, name), errors="replace") as f:
            b = f.read()
        assert "Sanitizer" not in b and "runtime error" not in b and '"stopped"' in b, b[-3000:]
    assert "Sanitizer" not in text and "runtime error" not in text, text[-6000:]


def _init_producer_id(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(kwire.request(kwire.API_INIT_PRODUCER_ID, 1, 7, kwire.body_init_producer_id(1)))
        payload = kwire.recv_frame(s, timeout=10)
    corr, throttle, err, pid, epoch = struct.unpack_from(">iihqh", payload)
    assert corr == 7 and err == 0, err
    return pid


def test_producer_ids_unique_across_the_pool(pool3):
    """InitProducerId on different brokers never hands out the same id (blocks reserved in
    etcd). (Fails on the old code: every broker counted from 0 on its own.)"""
    pids = [_init_producer_id(b.port) for b in pool3.brokers for _ in range(3)]
    assert len(set(pids)) == len(pids), pids


def test_rolling_restart_under_load(pool3):
    """SIGTERM each broker in turn (controlled shutdown: its leaderships move first), wait
    until it is back in every ISR, next one — under a continuous idempotent acks=all
    producer: no error reaches the producer, and the checker finds every acknowledged
    record exactly once, in order, at its offset."""
    create_topic(pool3.bootstrap, "roll", 3, 3, {"min.insync.replicas": "2"})
    wait_isr(pool3.bootstrap, "roll", 3)
    acked, errors = {}, []
    stop = threading.Event()
    p = Producer({"bootstrap.servers": pool3.bootstrap, "acks": "all",
                  "enable.idempotence": True, "linger.ms": 5, "message.timeout.ms": 60000})

    def report(err, m):
        if err is not None:
            errors.append(err)
        else:
            acked[m.value()] = (m.partition(), m.offset())

    def run():
        i = 0
        while not stop.is_set():
            try:
                p.produce("roll", key=b"%d" % (i % 3), value=b"r-%08d" % i, on_delivery=report)
                i += 1
            except BufferError:
                pass
            p.poll(0.002)
        p.flush(60)
    th = threading.Thread(target=run)
    th.start()
    try:
        for b in pool3.brokers:
            wait_for(lambda: len(acked) > 100, what="acks")
            before = len(acked)
            b.stop()
            b.start(timeout=60)
            other = next(x for x in pool3.brokers if x is not b)
            wait_isr(other.bootstrap, "roll", 3, timeout=40)
            wait_for(lambda: len(acked) > before + 100, timeout=30, what="writes going on")
    finally:
        stop.set()
        th.join(90)
    assert not errors, errors[:3]
    stored = consume_all(pool3.brokers[0].bootstrap, "roll", len(acked))
    check_acked(acked, stored)


def test_etcd_restart_under_load(pool3):
    """etcd stopped for a few seconds under an idempotent acks=all producer: the leaders keep
    serving (no election without etcd, no error to the producer), and once etcd is back the
    pool takes metadata changes again (a new topic)."""
    create_topic(pool3.bootstrap, "et", 3, 3)
    wait_isr(pool3.bootstrap, "et", 3)
    acked, errors = {}, []
    stop = threading.Event()
    p = Producer({"bootstrap.servers": pool3.bootstrap, "acks": "all",
                  "enable.idempotence": True, "linger.ms": 5})

    def report(err, m):
        if err is not None:
            errors.append(err)
        else:
            acked[m.value()] = (m.partition(), m.offset())

    def run():
        i = 0
        while not stop.is_set():
            try:
                p.produce("et", key=b"%d" % (i % 3), value=b"e-%08d" % i, on_delivery=report)
                i += 1
            except BufferError:
                pass
            p.poll(0.002)
        p.flush(60)
    th = threading.Thread(target=run)
    th.start()
    try:
        wait_for(lambda: len(acked) > 100, what="acks")
        pool3.etcd.stop()
        during = len(acked)
        time.sleep(4)
        assert len(acked) > during + 100, "writes stopped while etcd was away"
        pool3.etcd.start()
        time.sleep(1)
    finally:
        stop.set()
        th.join(90)
    assert not errors, errors[:3]
    stored = consume_all(pool3.brokers[0].bootstrap, "et", len(acked))
    check_acked(acked, stored)
    pool3.wait_all_seen(timeout=30)
    create_topic(pool3.bootstrap, "after-etcd", 1, 3)
    wait_isr(pool3.bootstrap, "after-etcd", 3)


def test_configs_and_partitions_are_pool_wide(pool3):
    """IncrementalAlterConfigs and AlterConfigs on one broker reach every broker (through the
    topic's record in etcd); CreatePartitions on one broker gives every broker the new
    partitions, replicated (ISR 3). (Fails on the old code: each broker kept its own.)"""
    create_topic(pool3.bootstrap, "cfg", 1, 3)
    wait_isr(pool3.bootstrap, "cfg", 3)
    with cfgwire.Conn(pool3.brokers[0].port) as c:
        r = c.incremental_topic("cfg", [("retention.ms", cfgwire.OP_SET, "123456"),
                                        ("cleanup.policy", cfgwire.OP_SET, "compact")])
        assert r["error"] == 0, r
    for b in pool3.brokers:
        def seen(b=b):
            # (a broker may learn of the new topic from its etcd watch a moment after the
            # one kcat asked: "Topic does not exist" there is waited out, not a failure)
            with cfgwire.Conn(b.port) as c:
                res = c.describe_configs([(cfgwire.RES_TOPIC, "cfg", None)], 2)[0]
            if res["error"] == 3:
                return False
            assert res["error"] == 0, res
            cfg = res["configs"]
            return (cfg["retention.ms"]["value"] == "123456" and
                    cfg["cleanup.policy"]["value"] == "compact")
        wait_for(seen, timeout=60, what="the configs on broker %s" % b.extra["broker.id"])
    with cfgwire.Conn(pool3.brokers[1].port) as c:
        r = c.incremental_topic("cfg", [("retention.ms", cfgwire.OP_DELETE, None)])
        assert r["error"] == 0, r
    for b in pool3.brokers:
        def gone(b=b):
            with cfgwire.Conn(b.port) as c:
                return c.topic_configs("cfg")["retention.ms"]["value"] != "123456"
        wait_for(gone, timeout=60, what="the config deleted on broker %s" % b.extra["broker.id"])
    with cfgwire.Conn(pool3.brokers[2].port) as c:
        assert c.create_partitions([("cfg", 3, None)])[0][1] == 0
    for b in pool3.brokers:
        t = wait_isr(b.bootstrap, "cfg", 3)
        assert len(t["partitions"]) == 3


def test_acls_are_pool_wide(workdir):
    """CreateAcls on one broker: every broker's DescribeAcls shows the binding; DeleteAcls
    on another: gone everywhere (kafka-python's admin client). (Fails on the old code: each
    broker had its own ACL journal.)"""
    from kafka.admin import KafkaAdminClient
    from test_tls_acl import acl, acl_filter
    pool = Pool(workdir, 3, extra={"authorizer.enabled": "true",
                                   "super.users": "User:ANONYMOUS"}).start()
    admins = [KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=20000)
              for b in pool.brokers]
    try:
        res = admins[0].create_acls([acl("User:CN=alice", "TOPIC", "acl-t", "READ")])
        assert not res["failed"], res

        def count(adm):
            acls, err = adm.describe_acls(acl_filter())
            assert err.errno == 0, err
            return len(acls)
        for k, adm in enumerate(admins):
            wait_for(lambda adm=adm: count(adm) == 1, timeout=60,
                     what="the ACL on broker %d" % (k + 1))
        out = admins[1].delete_acls([acl_filter()])
        assert sum(len(m) for _, m, _ in out) == 1, out
        for k, adm in enumerate(admins):
            wait_for(lambda adm=adm: count(adm) == 0, timeout=60,
                     what="the ACL gone on broker %d" % (k + 1))
    finally:
        for adm in admins:
            adm.close()
        pool.stop()


def test_readyz_waits_until_caught_up(pool3):
    """A follower restarted behind the leader answers /readyz 200 only once it is back in the
    ISR of what it replicates. (Fails on the old code: ready as soon as it listened.)"""
    create_topic(pool3.bootstrap, "rz", 1, 3)
    t = wait_isr(pool3.bootstrap, "rz", 3)
    leader = t["partitions"][0]["leader"]
    follower = next(b for b in pool3.brokers if int(b.extra["broker.id"]) != leader)
    fid = int(follower.extra["broker.id"])
    follower.stop()
    other = next(b for b in pool3.brokers if b is not follower)
    wait_isr(other.bootstrap, "rz", 2)
    p = Producer({"bootstrap.servers": other.bootstrap, "acks": "all", "linger.ms": 20,
                  "compression.type": "none"})
    payload = os.urandom(10000)
    for i in range(3000):  # 30 MB to catch up on
        while True:
            try:
                p.produce("rz", value=payload)
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(60) == 0
    follower.start(timeout=60)
    isr = [x["id"] for x in topic_md(follower.bootstrap, "rz")["partitions"][0]["isrs"]]
    assert fid in isr, isr


def series(b, name, **labels):
    """The value of one series of b's /metrics (labels in any order), or None when absent."""
    import re
    for m in re.finditer(r"^%s\{([^}]*)\} (\S+)$" % re.escape(name), b.metrics(), re.M):
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if got == {k: str(v) for k, v in labels.items()}:
            return float(m.group(2))
    return None


def test_replica_lag_per_follower(pool3):
    """The leader's /metrics gives each follower's lag (kpool_replica_lag_messages: its log
    end offset minus the follower's last fetch offset) and the time since it was last caught
    up (kpool_replica_time_since_caught_up_seconds), per topic, partition and follower; a
    follower its own fetch lag (kpool_replica_fetcher_lag_messages). A follower stopped
    (SIGSTOP) while a producer writes 200 records: its lag is 200 and its time since caught
    up grows, the other follower's lag stays 0; once it runs again both go back down.
    (Fails on the old code: no such series.)"""
    create_topic(pool3.bootstrap, "lg", 1, 3)
    t = wait_isr(pool3.bootstrap, "lg", 3)
    leader_id = t["partitions"][0]["leader"]
    by_id = {int(b.extra["broker.id"]): b for b in pool3.brokers}
    leader = by_id[leader_id]
    fid, oid = [i for i in sorted(by_id) if i != leader_id]
    stopped, other = by_id[fid], by_id[oid]

    def lag(f):
        return series(leader, "kpool_replica_lag_messages", topic="lg", partition=0,
                      follower=f)

    def age(f):
        return series(leader, "kpool_replica_time_since_caught_up_seconds", topic="lg",
                      partition=0, follower=f)

    def produce(n):
        p = Producer({"bootstrap.servers": leader.bootstrap, "acks": "1", "linger.ms": 5})
        for i in range(n):
            p.produce("lg", value=b"v%d" % i)
        assert p.flush(60) == 0

    produce(10)
    wait_for(lambda: lag(fid) == 0 and lag(oid) == 0, timeout=60,
             what="both followers caught up")
    assert series(other, "kpool_replica_fetcher_lag_messages", topic="lg", partition=0) == 0
    stopped.proc.send_signal(signal.SIGSTOP)
    try:
        produce(200)
        wait_for(lambda: lag(fid) == 200, timeout=60, what="the stopped follower 200 behind")
        wait_for(lambda: lag(oid) == 0, timeout=60, what="the other follower caught up")
        first = age(fid)
        wait_for(lambda: age(fid) > first + 1, timeout=60,
                 what="the stopped follower's time since caught up growing")
        behind = age(fid)
        wait_for(lambda: age(oid) < age(fid), timeout=60,
                 what="the other follower caught up more recently")
        wait_for(lambda: series(other, "kpool_replica_fetcher_lag_messages", topic="lg",
                                partition=0) == 0, timeout=60, what="the other follower's own lag 0")
    finally:
        stopped.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: lag(fid) == 0 and age(fid) < behind, timeout=60,
             what="the resumed follower caught up again")
    wait_for(lambda: series(stopped, "kpool_replica_fetcher_lag_messages", topic="lg",
                            partition=0) == 0, timeout=60, what="the resumed follower's own lag 0")
    wait_isr(pool3.bootstrap, "lg", 3, timeout=60)


def find_coordinator(port, key, key_type):
    """FindCoordinator v1 over the wire: (error, node id, port)."""
    s = kwire.connect(port)
    try:
        s.sendall(kwire.request(10, 1, 7, kwire.string(key) + kwire.i8(key_type)))
        r = kwire.recv_frame(s)
    finally:
        s.close()
    corr, _throttle, err, mlen = struct.unpack(">iihh", r[:12])
    assert corr == 7
    pos = 12 + max(mlen, 0)
    node, hlen = struct.unpack(">ih", r[pos:pos + 6])
    (cport,) = struct.unpack(">i", r[pos + 6 + hlen:pos + 10 + hlen])
    return err, node, cport


def java_partition(key, n):
    """Kafka's partition of a group or transactional id: abs(String.hashCode) % n."""
    h = 0
    for ch in key.encode():
        h = (h * 31 + ch) & 0xFFFFFFFF
    if h >= 1 << 31:
        h -= 1 << 32
    return abs(h) % n


def test_transactions_in_a_pool(pool3):
    """FindCoordinator for a group and a transactional id names, from every broker, the
    leader of the id's partition of __consumer_offsets / __transaction_state (created on
    first use, RF 3); a transactional producer bootstrapped on another broker commits and
    aborts on a partition another broker leads (the coordinator sends it WriteTxnMarkers); a
    read_committed consumer on a third broker sees exactly the committed records, and its end
    offset (the LSO) equals the replicated high watermark once the transactions are decided.
    (Fails on the old code: the lowest live id coordinated everything, and a marker for a
    partition led elsewhere was never written.)"""
    from confluent_kafka import TopicPartition
    create_topic(pool3.bootstrap, "txp", 3, 3)
    t = wait_isr(pool3.bootstrap, "txp", 3)
    coordinators = {}
    for key, kt, internal in (("g1", 0, "__consumer_offsets"),
                              ("tx-pool", 1, "__transaction_state")):
        for b in pool3.brokers:
            err, node, port = wait_for(lambda: (lambda r: r if r[0] == 0 else None)(
                find_coordinator(b.port, key, kt)), timeout=60, what="coordinator of " + key)
            coordinators.setdefault(key, node)
            assert node == coordinators[key], (b.port, key, node, coordinators)
            assert port == pool3.brokers[node - 1].port
        md = wait_isr(pool3.bootstrap, internal, 3, timeout=60)
        assert len(md["partitions"]) == 50
        leader = next(p["leader"] for p in md["partitions"]
                      if p["partition"] == java_partition(key, 50))
        assert leader == coordinators[key], (key, leader, coordinators)
    part = next(p["partition"] for p in t["partitions"]
                if p["leader"] != coordinators["tx-pool"])
    prod = Producer({"bootstrap.servers": pool3.brokers[2].bootstrap,
                     "transactional.id": "tx-pool"})
    prod.init_transactions(30)
    prod.begin_transaction()
    for i in range(5):
        prod.produce("txp", value=b"c%d" % i, partition=part)
    prod.commit_transaction(30)
    prod.begin_transaction()
    for i in range(3):
        prod.produce("txp", value=b"a%d" % i, partition=part)
    assert prod.flush(30) == 0  # written before the abort (librdkafka purges what is queued)
    prod.abort_transaction(30)
    c = Consumer({"bootstrap.servers": pool3.brokers[1].bootstrap, "group.id": "txp-chk",
                  "enable.auto.commit": False, "isolation.level": "read_committed"})
    try:
        # 5 records + commit marker + 3 records + abort marker, all replicated
        lo, hi = wait_for(lambda: (lambda w: w if w[1] == 10 else None)(
            c.get_watermark_offsets(TopicPartition("txp", part), timeout=30)),
            what="LSO 10 on txp-%d" % part)
        assert lo == 0
        c.assign([TopicPartition("txp", part, 0)])
        got = []
        deadline = time.time() + 30
        while len(got) < 5 and time.time() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                got.append(m.value())
        end = time.time() + 2
        while time.time() < end:  # nothing of the aborted transaction follows
            m = c.poll(0.2)
            if m is not None and not m.error():
                got.append(m.value())
        assert got == [b"c%d" % i for i in range(5)], got
    finally:
        c.close()
