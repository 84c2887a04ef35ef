"""Disk failure of one broker of a replicated pool (issue 15 item 4; docs/replication.md,
"Disk failure").

Three brokers on a real etcd, a topic of 3 partitions with RF 3 and min.insync.replicas=2,
an idempotent acks=all producer running throughout. One broker runs with KPOOL_FS_FAULTS
(core/fs.h): the test writes "eio" to that control file and from then on every file-system
call of that broker — through the same kp_fs table its storage uses — fails with EIO, as a
dead drive. Checked:
  * its partitions fail over: Metadata (through another broker) shows no partition led by
    it and it in no ISR, while the producer carries on (writes resume), with
    replica.lag.time.max.ms left at its 30 s default, so it is the failure report and not a
    lagging follower's eviction that moves them;
  * nothing acknowledged is lost: every acknowledged record is stored exactly once, in
    order, at its acknowledged offset, and no error reached the producer;
  * it reports it: kpool_log_dir_offline 1 in its /metrics, one log line naming the
    directory, KAFKA_STORAGE_ERROR for its partitions (a Produce sent to it), its replicas
    listed offline in Metadata (OfflineReplicas, v5), `kpool pool status` (exit 1, the
    directory named), and the Pool
    status of a control plane managing the pool names the broker and the directory
    (state LogDirFailed, offlineLogDirs);
  * the disk replaced (the directory emptied) and the broker restarted, it copies every
    partition back from the leaders and rejoins every ISR; the Pool status says Up again.
(Fails on the old code: the broker kept leading its partition and stayed in the ISRs, so
acks=all writes stopped until replica.lag.time.max.ms evicted it and its partition's
producer got KAFKA_STORAGE_ERROR; nothing reported the directory.)
"""
import http.client
import json
import os
import re
import shutil
import subprocess
import threading
import time

from confluent_kafka import Producer

import kwire
from harness import KPOOL_BIN, free_port, sanitizer_env
from pool_harness import Pool, kcat_metadata, wait_for
from test_pool import check_acked, consume_all, create_topic, topic_md, wait_isr

TOPIC = "disk"
VICTIM = 2  # broker.id of the broker whose disk fails


class Control:
    """A `kpool control` process (no pool of its own) with a Pool resource for the test's
    pool (PLAINTEXT), resyncing every second."""

    def __init__(self, workdir, bootstrap):
        self.port = free_port()
        self.log_path = os.path.join(workdir, "control.log")
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [KPOOL_BIN, "control", "--data-dir", os.path.join(workdir, "ctl"),
             "--set", "control.listener=127.0.0.1:%d" % self.port,
             "--set", "control.resync.interval.ms=1000",
             "--set", "control.backup.interval.ms=0"],
            stdout=self.logf, stderr=subprocess.STDOUT, env=sanitizer_env())
        wait_for(lambda: "admin token" in self.log() or self.proc.poll() is not None,
                 timeout=60, what="the control plane's admin token")
        assert self.proc.poll() is None, self.log()
        self.token = re.search(r"admin token \(shown once\): (\S+)", self.log()).group(1)
        pool = {"apiVersion": "kpool.dev/v1", "kind": "Pool", "metadata": {"name": "disk"},
                "spec": {"bootstrapServers": bootstrap,
                         "replication": {"min": 1, "max": 3, "default": 3}}}
        code, body = self.api("PUT", "/apis/kpool.dev/v1/pools/disk", pool)
        assert code in (200, 201), body

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def api(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers={"Authorization": "Bearer " + self.token,
                           "Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, json.loads(data) if data else None

    def pool_status(self):
        code, obj = self.api("GET", "/apis/kpool.dev/v1/pools/disk")
        assert code == 200, obj
        return obj.get("status") or {}

    def wait_broker(self, pred, what):
        def ok():
            st = self.pool_status()
            b = next((x for x in st.get("brokers", []) if x["id"] == VICTIM), None)
            return st if b is not None and pred(b, st) else None
        try:
            return wait_for(ok, timeout=60, interval=0.5, what=what)
        except AssertionError:
            raise AssertionError("%s; status: %s\n%s" % (
                what, json.dumps(self.pool_status(), indent=1), self.log()[-3000:]))

    def stop(self):
        self.proc.terminate()
        try:
            rc = self.proc.wait(60)
        finally:
            self.logf.close()
        text = self.log()
        assert "Sanitizer" not in text and "runtime error" not in text, text[-6000:]
        assert rc == 0, text[-3000:]


def produce_direct(port, topic, partition):
    """A Produce (v3, acks=1) of one record straight to the broker at port: its error code."""
    s = kwire.connect(port)
    try:
        err, _ = kwire.produce_raw(s, topic, partition, [b"direct"], acks=1)
    finally:
        s.close()
    return err


def placement(bootstrap):
    """{partition: (leader, isr)} of TOPIC through bootstrap (None while unknown)."""
    t = topic_md(bootstrap, TOPIC)
    if not t or t.get("error"):
        return None
    return {p["partition"]: (p["leader"], sorted(x["id"] for x in p["isrs"]))
            for p in t["partitions"]}


def offline_replicas(port):
    """{partition: sorted offline replicas} of TOPIC from Metadata v5 sent to the broker at
    port (kcat does not show them)."""
    import struct
    s = kwire.connect(port)
    try:
        s.sendall(kwire.request(3, 5, 7, kwire.i32(1) + kwire.string(TOPIC) + kwire.i8(0)))
        data = kwire.recv_frame(s)
    finally:
        s.close()
    pos = 8  # correlation id, throttle time

    def i16():
        nonlocal pos
        pos += 2
        return struct.unpack_from(">h", data, pos - 2)[0]

    def i32():
        nonlocal pos
        pos += 4
        return struct.unpack_from(">i", data, pos - 4)[0]

    def string():
        nonlocal pos
        n = i16()
        pos += max(n, 0)
        return data[pos - n:pos].decode() if n >= 0 else None

    def ids():
        return [i32() for _ in range(i32())]
    for _ in range(i32()):  # brokers: id, host, port, rack
        i32(), string(), i32(), string()
    string(), i32()  # cluster id, controller id
    out = {}
    for _ in range(i32()):
        i16(), string()
        pos += 1  # is_internal
        for _ in range(i32()):
            i16()
            part = i32()
            i32()  # leader
            ids(), ids()
            out[part] = sorted(ids())
    return out


def test_disk_failure_fails_over_and_reports(workdir):
    pool = Pool(workdir, 3)
    victim = pool.brokers[VICTIM - 1]
    fault = os.path.join(workdir, "fs-faults")
    open(fault, "w").close()
    victim.env = {"KPOOL_FS_FAULTS": fault}
    pool.start()
    ctl = None
    stop = threading.Event()
    th = None
    try:
        other = pool.brokers[0]
        create_topic(pool.bootstrap, TOPIC, 3, 3, {"min.insync.replicas": "2"})
        wait_isr(other.bootstrap, TOPIC, 3, timeout=60)
        ctl = Control(workdir, pool.bootstrap)
        ctl.wait_broker(lambda b, st: b["state"] == "Up" and "offlineLogDirs" not in b,
                        "the Pool status lists broker %d Up" % VICTIM)

        acked, errors, ack_times = {}, [], []
        p = Producer({"bootstrap.servers": pool.bootstrap, "acks": "all",
                      "enable.idempotence": True, "linger.ms": 5,
                      "message.timeout.ms": 120000})

        def report(err, m):
            if err is not None:
                errors.append(err)
            else:
                acked[m.value()] = (m.partition(), m.offset())
                ack_times.append(time.time())

        def run():
            i = 0
            while not stop.is_set():
                try:
                    p.produce(TOPIC, key=b"%d" % (i % 3), value=b"d-%08d" % i,
                              on_delivery=report)
                    i += 1
                except BufferError:
                    pass
                p.poll(0.002)
            p.flush(120)
        th = threading.Thread(target=run)
        th.start()
        wait_for(lambda: len(acked) > 300, timeout=60, what="acks before the disk fails")
        before = placement(other.bootstrap)
        assert any(leader == VICTIM for leader, _ in before.values()), before  # it leads one

        # the disk dies
        with open(fault, "w") as f:
            f.write("eio")
        t_fail = time.time()

        def failed_over():
            pl = placement(other.bootstrap)
            return pl if pl and all(leader not in (-1, VICTIM) and VICTIM not in isr
                                    for leader, isr in pl.values()) else None
        after = wait_for(failed_over, timeout=60, interval=0.2,
                         what="broker %d out of every leadership and ISR" % VICTIM)
        assert all(len(isr) == 2 for _, isr in after.values()), after
        wait_for(lambda: len([t for t in ack_times if t > t_fail + 0.5]) > 300, timeout=60,
                 what="acks=all writes going on after the disk failure")
        print("disk failure: failed over %.1f s after the fault" % (time.time() - t_fail))

        # it says so: metric, log line, KAFKA_STORAGE_ERROR, the Pool status
        wait_for(lambda: re.search(r"^kpool_log_dir_offline 1$", victim.metrics(), re.M),
                 timeout=60, what="kpool_log_dir_offline 1")
        lines = [ln for ln in victim.log().splitlines()
                 if "log directory %s failed" % victim.data_dir in ln]
        assert len(lines) == 1, lines
        assert "Input/output error" in lines[0], lines[0]
        assert produce_direct(victim.port, TOPIC, 0) == 56  # KAFKA_STORAGE_ERROR
        # Metadata lists its replicas as offline (Kafka's replicas in an offline log dir)
        wait_for(lambda: offline_replicas(other.port) == {0: [VICTIM], 1: [VICTIM], 2: [VICTIM]},
                 timeout=60, what="broker %d's replicas offline in Metadata" % VICTIM)
        st = ctl.wait_broker(lambda b, st: b["state"] == "LogDirFailed" and
                             b.get("offlineLogDirs") == [victim.data_dir],
                             "the Pool status naming broker %d and %s" % (VICTIM, victim.data_dir))
        assert "broker %d: log directory %s failed" % (VICTIM, victim.data_dir) in st["message"], st
        assert st["state"] == "Ready", st
        # and `kpool pool status` (exit 1: not healthy)
        cli = subprocess.run([KPOOL_BIN, "pool", "status", "--bootstrap", other.bootstrap],
                             capture_output=True, text=True, timeout=120)
        assert cli.returncode == 1, cli
        assert "LOG DIR FAILED broker %d: %s" % (VICTIM, victim.data_dir) in cli.stdout, cli.stdout
        cli = subprocess.run([KPOOL_BIN, "pool", "status", "-o", "json", "--bootstrap",
                              other.bootstrap], capture_output=True, text=True, timeout=120)
        assert cli.returncode == 1, cli
        dirs = {b["id"]: b.get("offline_log_dir") for b in json.loads(cli.stdout)["brokers"]}
        assert dirs == {1: None, VICTIM: victim.data_dir, 3: None}, dirs

        # nothing acknowledged is lost
        stop.set()
        th.join(150)
        assert not th.is_alive()
        assert not errors, errors[:3]
        stored = consume_all(other.bootstrap, TOPIC, len(acked), timeout=90)
        check_acked(acked, stored)
        n_acked = len(acked)

        # the disk replaced: an empty directory, the broker restarted without the fault
        victim.stop(timeout=60)
        shutil.rmtree(victim.data_dir)
        victim.env = {}
        victim.start(timeout=120)  # /readyz: only once caught up
        wait_isr(other.bootstrap, TOPIC, 3, timeout=60)
        ctl.wait_broker(lambda b, st: b["state"] == "Up" and "offlineLogDirs" not in b,
                        "broker %d Up again in the Pool status" % VICTIM)
        assert re.search(r"^kpool_log_dir_offline 0$", victim.metrics(), re.M)
        wait_for(lambda: offline_replicas(other.port) == {0: [], 1: [], 2: []}, timeout=60,
                 what="no offline replica left in Metadata")
        cli = subprocess.run([KPOOL_BIN, "pool", "status", "--bootstrap", other.bootstrap],
                             capture_output=True, text=True, timeout=120)
        assert cli.returncode == 0 and "LOG DIR FAILED" not in cli.stdout, cli
        # its own copy is whole: every partition's end on it is the leader's end
        def ends(b):
            return {int(m.group(1)): int(m.group(2)) for m in re.finditer(
                r'^kpool_partition_end_offset\{topic="%s",partition="(\d+)"\} (\d+)$' % TOPIC,
                b.metrics(), re.M)}
        want = ends(other)
        wait_for(lambda: ends(victim) == want or None, timeout=60,
                 what="broker %d's copy at the leaders' ends %r" % (VICTIM, want))
        assert sum(want.values()) >= n_acked
    finally:
        stop.set()
        if th is not None:
            th.join(150)
        if ctl is not None:
            ctl.stop()
        pool.stop()


def test_log_dir_removed_fails_over(workdir):
    """The log directory of one broker removed under it (rm -rf, as an unmount or a wiped
    disk): within seconds — its once-a-second check, with no I/O error needed — its
    partitions fail over, kpool_log_dir_offline is 1 and the log says the directory is gone;
    it stops cleanly and, restarted, re-replicates into a new directory and rejoins every
    ISR. (Fails on the old code: the broker went on leading from unlinked files.)"""
    pool = Pool(workdir, 3).start()
    try:
        other, victim = pool.brokers[0], pool.brokers[VICTIM - 1]
        create_topic(pool.bootstrap, TOPIC, 3, 3, {"min.insync.replicas": "2"})
        wait_isr(other.bootstrap, TOPIC, 3, timeout=60)
        p = Producer({"bootstrap.servers": pool.bootstrap, "acks": "all",
                      "enable.idempotence": True})
        for i in range(300):
            p.produce(TOPIC, key=b"%d" % (i % 3), value=b"g-%08d" % i)
        assert p.flush(60) == 0
        shutil.rmtree(victim.data_dir)

        def failed_over():
            pl = placement(other.bootstrap)
            return pl if pl and all(leader not in (-1, VICTIM) and VICTIM not in isr
                                    for leader, isr in pl.values()) else None
        wait_for(failed_over, timeout=60, interval=0.2,
                 what="broker %d out of every leadership and ISR" % VICTIM)
        wait_for(lambda: re.search(r"^kpool_log_dir_offline 1$", victim.metrics(), re.M),
                 timeout=60, what="kpool_log_dir_offline 1")
        assert "log directory %s failed" % victim.data_dir in victim.log()
        assert "the directory is gone" in victim.log()
        for i in range(300, 600):  # the pool goes on without it
            p.produce(TOPIC, key=b"%d" % (i % 3), value=b"g-%08d" % i)
        assert p.flush(60) == 0
        victim.stop(timeout=60)
        victim.start(timeout=120)
        wait_isr(other.bootstrap, TOPIC, 3, timeout=60)
        assert re.search(r"^kpool_log_dir_offline 0$", victim.metrics(), re.M)
        stored = consume_all(other.bootstrap, TOPIC, 600, timeout=90)
        assert sorted(stored.values()) == [b"g-%08d" % i for i in range(600)]
    finally:
        pool.stop()
