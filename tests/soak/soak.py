#!/usr/bin/python3
"""kpool soak test: one broker under steady load with real clients while it (and its
consumers) are killed and restarted at random, with invariants checked all along.

Run by `make soak` (SOAK_MINUTES, default 10; KPOOL_BIN, default the ASan+UBSan build).
Exit status 0 only when no invariant was violated. docs/testing.md describes what is
covered; in short:

  * topics: soak-p1 (1 partition), soak-p4 (4, small segments, configs altered meanwhile),
    soak-p8 (8, lz4 and zstd producers), soak-compact (4, cleanup.policy=compact, a few keys
    per partition), soak-pc (4, flush.policy=pagecache); the rest are durable.
    Churn topics are created and deleted, and soak-grow gains partitions, meanwhile.
  * producers: confluent-kafka, idempotent, acks=all, no delivery timeout. Every value starts
    with "P<producer>:<partition>:<seq>|" (seq counts per producer and partition), so loss,
    duplication and reordering are visible in the log itself.
  * consumer groups: g-a (soak-p1 + soak-p4) and g-b (soak-p8 + soak-pc), each with two
    confluent-kafka members and one kafka-python member, in child processes that commit
    every second; a time seeker (offsets_for_times, both clients) and a reader of the
    compacted topic.
  * chaos: kill -9 or SIGTERM of the broker and restart on the same data dir, kill -9 and
    restart of group members, at random intervals (with calm stretches so that the
    broker's memory can be watched over a longer life).

Invariants (any violation is printed with context at once and makes the exit status 1):

  * producer: no fatal error; delivery reports per (producer, partition) come in sequence
    order with increasing offsets; never two acknowledgements for one offset.
  * log (read back whole at the end by a fresh consumer): every acknowledged message is at
    its acknowledged offset; each (producer, partition, seq) appears at most once; per
    producer and partition, seq increases with the offset. The same holds for the
    page-cache topic: kill -9 ends the process, not the machine, so the kernel's page cache
    survives it and acknowledged writes must not be lost (a power loss, which could lose the
    unflushed tail, is not simulated). Compacted topic: what is left is acknowledged data
    at its acknowledged offset, no duplicates, and the newest acknowledged record of every
    key is still there (or something newer with the same key).
  * consumers: an offset always holds the same message, whoever reads it; within one
    assignment a member reads offsets in order without gaps (compacted topics: in order);
    every acknowledged message is eventually read by each group (at-least-once: re-reads
    after a crash or rebalance are counted, not flagged); committed offsets never go
    backwards and end at the log end once the members caught up.
  * offsets_for_times(T) answers the first record (in offset order) with timestamp >= T.
  * admin: acknowledged topic creations, deletions, partition growth, config changes and
    ACLs are what the broker reports after every restart.
  * broker: every SIGTERM exits 0; it never exits unless the soak killed it; its log holds
    no sanitizer report ("Sanitizer", "runtime error"); VmRSS stays under SOAK_RSS_MAX_MB
    (growth per hour of the longer-lived incarnations is reported).
"""
import array
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

PYTHON = "/usr/bin/python3"
MINUTES = float(os.environ.get("SOAK_MINUTES", "10"))
SEED = int(os.environ.get("SOAK_SEED", str(int(time.time()))))
RSS_MAX_MB = int(os.environ.get("SOAK_RSS_MAX_MB", "1500"))
KEEP = os.environ.get("SOAK_KEEP", "") not in ("", "0")
# messages per second per producer (three producers)
RATE = int(os.environ.get("SOAK_RATE", "300"))
# a TLS listener (client certificates) and the ACL authorizer next to the plaintext listener
TLS = os.environ.get("SOAK_TLS", "1") not in ("", "0")
# seconds between chaos events ("min,max"; a calm stretch of 2-3 min now and then)
# harness self-check: at the first kill -9, cut the tail off a soak-p4 segment as if the
# broker had lost acknowledged data; the run must then report violations
SELFTEST_LOSS = os.environ.get("SOAK_SELFTEST_LOSS", "") not in ("", "0")
CHAOS_S = tuple(float(x) for x in os.environ.get("SOAK_CHAOS_S", "15,60").split(","))

SEQ_BITS = 40  # a message's code: producer index << SEQ_BITS | seq
SESSION_MS = 10000
COMPACT_KEYS = 23

# name: (partitions, kind, configs)
TOPICS = {
    "soak-p1": (1, "durable", {}),
    "soak-p4": (4, "durable", {"segment.bytes": "262144"}),
    "soak-p8": (8, "durable", {"segment.bytes": "1048576"}),
    "soak-compact": (4, "compact", {"cleanup.policy": "compact", "segment.bytes": "65536",
                                    "min.cleanable.dirty.ratio": "0.01"}),
    "soak-pc": (4, "pagecache", {"flush.policy": "pagecache", "segment.bytes": "524288"}),
}
# producer index: (codec, [topics])
PRODUCERS = {
    0: ("none", ["soak-p1", "soak-p4", "soak-compact"]),
    1: ("lz4", ["soak-p8", "soak-pc"]),
    2: ("zstd", ["soak-p8", "soak-p4"]),
}
# group: (topics, [(member name, client)])
GROUPS = {
    "g-a": (["soak-p1", "soak-p4"], [("a-rd1", "confluent"), ("a-rd2", "confluent"),
                                     ("a-kpy", "kafka-python")]),
    "g-b": (["soak-p8", "soak-pc"], [("b-rd1", "confluent"), ("b-rd2", "confluent"),
                                     ("b-kpy", "kafka-python")]),
}
if TLS:
    GROUPS["g-b"][1].append(("b-tls", "confluent-tls"))  # alice's certificate, over TLS
# With the authorizer on, these ACLs let every principal (the plaintext clients are
# User:ANONYMOUS) use the soak's topics and groups; the cluster has no ACL, so
# allow.everyone.if.no.acl.found covers it. (principal, type, name, op, permission, pattern)
BASE_ACLS = [("User:*", "TOPIC", "soak-", "ALL", "ALLOW", "PREFIXED"),
             ("User:*", "GROUP", "g-", "ALL", "ALLOW", "PREFIXED"),
             ("User:*", "GROUP", "soak-", "ALL", "ALLOW", "PREFIXED")]
GROW_TOPIC, GROW_MAX = "soak-grow", 12
BROKER_PROPS = {
    "num.network.threads": "2",
    "log.cleaner.backoff.ms": "2000",
    "group.initial.rebalance.delay.ms": "500",
    "log.retention.check.interval.ms": "5000",
}
SANITIZER_RE = re.compile(rb"Sanitizer|runtime error")


def code_of(pidx, seq):
    return pidx << SEQ_BITS | seq


def parse_id(value):
    """b"P<producer>:<partition>:<seq>|..." -> (producer, partition, seq)."""
    head = value.split(b"|", 1)[0]
    pidx, part, seq = head[1:].split(b":")
    return int(pidx), int(part), int(seq)


def fmt_code(code):
    return "P%d#%d" % (code >> SEQ_BITS, code & ((1 << SEQ_BITS) - 1))


def compact_key(pidx, seq):
    return b"k%d" % ((pidx * 7 + seq) % COMPACT_KEYS)


# --------------------------------------------------------------------------- bookkeeping

class OffsetArray:
    """offset -> int (-1 unknown), growing on demand: 8 bytes per offset."""

    def __init__(self):
        self.a = array.array("q")

    def get(self, off):
        return self.a[off] if off < len(self.a) else -1

    def put(self, off, v):
        """Stores v at off; returns the previous value (-1 if none)."""
        if off >= len(self.a):
            self.a.extend([-1] * (off + 1 - len(self.a)))
        old = self.a[off]
        if old == -1:
            self.a[off] = v
        return old

    def __len__(self):
        return len(self.a)


class Soak:
    def __init__(self, workdir):
        self.workdir = workdir
        self.t0 = time.time()
        self.rng = random.Random(SEED)
        self.lock = threading.RLock()
        self.violations = []
        self.notes = []
        self.stop = threading.Event()        # producers, chaos, admin, time seeker
        self.stop_watch = threading.Event()  # monitor and committed-offset checker
        self.admin_lock = threading.Lock()   # admin calls vs. checks of their outcome
        self.broker = None
        self.broker_busy = threading.Lock()  # held while chaos stops/starts the broker
        self.broker_down = False
        self.incarnation = 0
        self.incarnations = []  # (start time, how it ended)
        self.rss = []  # per incarnation: [(t, kB)]
        self.log_pos = 0
        self.counts = {"produced": 0, "acked": 0, "delivery_failed": 0, "consumed": 0,
                       "kill9": 0, "sigterm": 0, "member_kills": 0, "member_starts": 0,
                       "time_seeks": 0, "seeker_errors": 0, "compact_scans": 0, "admin_ops": 0,
                       "admin_failed": 0, "commit_checks": 0, "broker_errors": 0}
        self.acked = {}      # (topic, p) -> OffsetArray of codes
        self.ack_ts = {}     # (topic, p) -> [(offset, timestamp ms)] samples
        self.seen = {}       # (topic, p) -> OffsetArray of codes any consumer read
        self.group_read = {}  # (group, topic, p) -> bytearray (1: read at least once)
        self.committed = {}  # (group, topic, p) -> (offset, time, incarnation)
        self.admin_expect = {}  # topic -> partitions (None: deleted), '?' suffix uncertain
        self.cfg_expect = {}
        self.acl_expect = {}  # ACL tuple -> True (present), None (deleted), "?" (unknown)
        self.pki = None
        self.tls_port = None

    @property
    def bootstrap(self):
        """What clients connect to (the replicated mode's subclass names every broker)."""
        return self.broker.bootstrap

    # ----------------------------------------------------------------- reporting

    def elapsed(self):
        return time.time() - self.t0

    def violation(self, kind, text, log_tail=False):
        with self.lock:
            msg = "[%7.1fs] VIOLATION %s: %s" % (self.elapsed(), kind, text)
            if log_tail and self.broker is not None:
                msg += "\n--- broker log tail:\n" + self.broker.log()[-3000:]
            self.violations.append(msg)
            if len(self.violations) <= 200:
                print(msg, file=sys.stderr, flush=True)

    def note(self, text):
        with self.lock:
            line = "[%7.1fs] %s" % (self.elapsed(), text)
            self.notes.append(line)
            print(line, flush=True)

    def count(self, name, n=1):
        with self.lock:
            self.counts[name] += n

    # ----------------------------------------------------------------- facts from clients

    def on_ack(self, topic, p, offset, code, ts):
        with self.lock:
            self.counts["acked"] += 1
            arr = self.acked.setdefault((topic, p), OffsetArray())
            old = arr.put(offset, code)
            if old != -1:
                self.violation("double-ack", "%s[%d] offset %d acknowledged for %s and %s" % (
                    topic, p, offset, fmt_code(old), fmt_code(code)))
            samples = self.ack_ts.setdefault((topic, p), [])
            if len(samples) < 5000 and self.rng.random() < 0.02:
                samples.append((offset, ts))

    def on_read(self, who, topic, p, offset, code):
        """A consumer read `code` at `offset`: it must be what every other reader saw."""
        with self.lock:
            arr = self.seen.setdefault((topic, p), OffsetArray())
            old = arr.put(offset, code)
            if old != -1 and old != code:
                self.violation("offset-changed", "%s read %s at %s[%d] offset %d, earlier "
                               "readers saw %s there" % (who, fmt_code(code), topic, p, offset,
                                                         fmt_code(old)))

    # ----------------------------------------------------------------- broker

    def broker_start(self):
        from conftest import Broker, free_port
        if self.broker is None:
            self.broker = Broker(os.path.join(self.workdir, "data"), BROKER_PROPS)
            if TLS:
                from test_tls_acl import ADMIN_PRINCIPAL, Pki
                d = os.path.join(self.workdir, "pki")
                os.makedirs(d)
                self.pki = Pki(d)
                self.tls_port = free_port()
                self.broker.extra.update({
                    "listeners": "PLAINTEXT://127.0.0.1:%d,SSL://127.0.0.1:%d" % (
                        self.broker.port, self.tls_port),
                    "ssl.ca.location": self.pki.ca,
                    "ssl.certificate.location": self.pki.broker_cert,
                    "ssl.key.location": self.pki.broker_key,
                    "ssl.client.auth": "required",
                    "authorizer.enabled": "true",
                    "allow.everyone.if.no.acl.found": "true",
                    "super.users": ADMIN_PRINCIPAL,
                })
        self.broker.start(timeout=120)
        with self.lock:
            self.incarnation += 1
            self.incarnations.append([time.time(), "running"])
            self.rss.append([])
            self.broker_down = False

    def broker_kill9(self):
        self.broker.kill9()

    def broker_sigterm(self):
        """SIGTERM; the broker must exit 0 within 60 s."""
        proc = self.broker.proc
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(60)
        except subprocess.TimeoutExpired:
            self.violation("sigterm-hang", "broker did not exit within 60 s of SIGTERM",
                           log_tail=True)
            proc.kill()
            proc.wait()
            rc = None
        self.broker.logf.close()
        self.broker.killed = True
        if rc not in (0, None):
            self.violation("sigterm-exit", "broker exited with %s after SIGTERM" % rc,
                           log_tail=True)

    def broker_restart(self, how):
        with self.broker_busy:
            with self.lock:
                self.broker_down = True
                self.incarnations[-1][1] = how
            if how == "kill9":
                self.count("kill9")
                self.broker_kill9()
                if SELFTEST_LOSS and self.counts["kill9"] == 1:
                    self.selftest_cut_tail()
                time.sleep(self.rng.uniform(0, 2))
            else:
                self.count("sigterm")
                self.broker_sigterm()
            self.scan_log()
            try:
                self.broker_start()
            except RuntimeError as e:
                self.violation("restart-failed", str(e)[-4000:])
                raise
        self.note("broker restarted after %s (incarnation %d)" % (how, self.incarnation))

    def selftest_cut_tail(self):
        d = os.path.join(self.broker.data_dir, "soak-p4-0")
        seg = os.path.join(d, sorted(f for f in os.listdir(d) if f.endswith(".log"))[-1])
        size = os.path.getsize(seg)
        os.truncate(seg, max(0, size - 20000))
        self.note("self-test: cut %d bytes off %s" % (min(size, 20000), seg))

    def scan_log(self):
        """New broker log output: sanitizer reports are violations; errors are counted."""
        try:
            with open(self.broker.log_path, "rb") as f:
                f.seek(self.log_pos)
                data = f.read()
        except OSError:
            return
        # only whole lines
        cut = data.rfind(b"\n") + 1
        data = data[:cut]
        if SANITIZER_RE.search(data):
            m = SANITIZER_RE.search(data)
            start = max(0, m.start() - 2000)
            self.violation("sanitizer", "broker log at byte %d:\n%s" % (
                self.log_pos + m.start(), data[start:m.start() + 6000].decode(
                    errors="replace")))
        n_err = data.count(b" level=error ")
        if n_err:
            self.count("broker_errors", n_err)
            for line in data.splitlines():
                if b" level=error " in line and len(self.notes) < 400:
                    self.note("broker error: " + line.decode(errors="replace")[:300])
        self.log_pos += cut

    def monitor(self):
        """Every 2 s: VmRSS, the log, and whether the broker died on its own."""
        while not self.stop_watch.wait(2):
            with self.broker_busy:
                proc = self.broker.proc
                if proc.poll() is not None:
                    self.scan_log()
                    self.violation("broker-died", "broker exited by itself with %s" %
                                   proc.returncode, log_tail=True)
                    self.broker.logf.close()
                    self.broker.killed = True
                    with self.lock:
                        self.incarnations[-1][1] = "crashed"
                    try:
                        self.broker_start()
                    except RuntimeError as e:
                        self.violation("restart-failed", str(e)[-4000:])
                        self.stop.set()
                        self.stop_watch.set()
                    continue
                try:
                    with open("/proc/%d/status" % proc.pid) as f:
                        kb = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
                    self.rss[-1].append((time.time(), kb))
                    if kb > RSS_MAX_MB * 1024:
                        self.violation("rss", "broker VmRSS %d MB > %d MB" % (
                            kb // 1024, RSS_MAX_MB))
                except (OSError, AttributeError):
                    pass
                self.scan_log()

    # ----------------------------------------------------------------- setup

    def admin(self):
        from confluent_kafka.admin import AdminClient
        return AdminClient({"bootstrap.servers": self.broker.bootstrap})

    def tls_conf(self, ident):
        """librdkafka configuration for the TLS listener as pki identity `ident`."""
        i = self.pki[ident]
        return {"bootstrap.servers": "127.0.0.1:%d" % self.tls_port, "security.protocol": "ssl",
                "ssl.ca.location": self.pki.ca, "ssl.certificate.location": i.cert,
                "ssl.key.location": i.key}

    def acl_admin(self):
        """kafka-python's admin client over TLS as the super user (confluent-kafka 1.7 has
        no ACL calls)."""
        from kafka.admin import KafkaAdminClient
        i = self.pki["admin"]
        return KafkaAdminClient(bootstrap_servers="127.0.0.1:%d" % self.tls_port,
                                security_protocol="SSL", ssl_cafile=self.pki.ca,
                                ssl_certfile=i.cert, ssl_keyfile=i.key,
                                ssl_check_hostname=True, request_timeout_ms=20000)

    def create_acls(self, acls):
        from test_tls_acl import acl
        a = self.acl_admin()
        try:
            res = a.create_acls([acl(pr, t, n, op, perm, pat) for pr, t, n, op, perm, pat in acls])
        finally:
            a.close()
        if res["failed"]:
            raise RuntimeError("create_acls: %s" % (res["failed"],))

    def delete_acl(self, key):
        from test_tls_acl import acl_filter
        pr, t, n, op, perm, pat = key
        a = self.acl_admin()
        try:
            for _, _, err in a.delete_acls([acl_filter(pr, t, n, op, perm, pat)]):
                if err.errno != 0:
                    raise RuntimeError("delete_acls: %s" % err)
        finally:
            a.close()

    def describe_acls(self):
        from test_tls_acl import acl_filter
        a = self.acl_admin()
        try:
            got, err = a.describe_acls(acl_filter())
        finally:
            a.close()
        return {(x.principal, x.resource_pattern.resource_type.name,
                 x.resource_pattern.resource_name, x.operation.name, x.permission_type.name,
                 x.resource_pattern.pattern_type.name) for x in got}

    def create_topics(self):
        from confluent_kafka.admin import NewTopic
        a = self.admin()
        new = [NewTopic(t, n, 1, config=dict(cfg)) for t, (n, _, cfg) in TOPICS.items()]
        new.append(NewTopic(GROW_TOPIC, 2, 1))
        for t, fut in a.create_topics(new, operation_timeout=30).items():
            fut.result(60)
        for t, (n, _, cfg) in TOPICS.items():
            self.admin_expect[t] = n
            self.cfg_expect[t] = dict(cfg)
        self.admin_expect[GROW_TOPIC] = 2
        if TLS:
            self.create_acls(BASE_ACLS)
            for k in BASE_ACLS:
                self.acl_expect[k] = True


# --------------------------------------------------------------------------- producers

class SoakProducer(threading.Thread):
    """Idempotent acks=all producer writing P<idx>:<p>:<seq> to explicit partitions. conf:
    librdkafka settings over these (the replicated mode's plain producer turns idempotence
    off: its acknowledgements may then come out of order, and retries may duplicate)."""

    def __init__(self, soak, idx, codec, topics, conf=None):
        super().__init__(daemon=True, name="producer-%d" % idx)
        from confluent_kafka import Producer
        self.soak, self.idx, self.topics = soak, idx, topics
        self.rng = random.Random(SEED + idx)
        self.next_seq = {}
        self.last_ack = {}  # (topic, p) -> (seq, offset)
        self.outstanding = set()
        self.lock = threading.Lock()
        self.failed = 0
        settings = {
            "bootstrap.servers": soak.bootstrap,
            "client.id": "soak-producer-%d" % idx,
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": codec,
            "linger.ms": 10,
            "message.timeout.ms": 0,  # never give up: every message is acknowledged
            "retry.backoff.ms": 100,
            "reconnect.backoff.ms": 100,
            "reconnect.backoff.max.ms": 1000,
            "error_cb": self.on_error,
            "log_level": 2,  # connection errors while the broker restarts are expected
        }
        settings.update(conf or {})
        self.idempotent = settings["enable.idempotence"]
        self.p = Producer(settings)
        self.pad = b"soak filler, compressible: the quick brown fox jumps over the lazy dog " * 8

    def on_error(self, err):
        if err.fatal():
            self.soak.violation("producer-fatal", "producer %d: %s" % (self.idx, err))

    def on_delivery(self, err, msg):
        pidx, part, seq = parse_id(msg.value())
        topic = msg.topic()
        with self.lock:
            self.outstanding.discard((topic, part, seq))
        if pidx != self.idx or part != msg.partition():
            self.soak.violation("producer-mixup", "producer %d got a report for %s" % (
                self.idx, msg.value()[:40]))
            return
        if err is not None:
            self.failed += 1
            self.soak.count("delivery_failed")
            self.soak.violation("delivery-failed", "P%d %s[%d] seq %d: %s" % (
                pidx, topic, part, seq, err))
            return
        off = msg.offset()
        last = self.last_ack.get((topic, part))
        if self.idempotent and last is not None and (seq <= last[0] or off <= last[1]):
            self.soak.violation("ack-order", "P%d %s[%d]: seq %d acked at offset %d after seq "
                                "%d at offset %d" % (pidx, topic, part, seq, off, *last))
        self.last_ack[(topic, part)] = (seq, off)
        self.soak.on_ack(topic, part, off, code_of(pidx, seq), msg.timestamp()[1])

    def produce_one(self):
        topic = self.rng.choice(self.topics)
        part = self.rng.randrange(TOPICS[topic][0])
        seq = self.next_seq.get((topic, part), 0)
        self.next_seq[(topic, part)] = seq + 1
        value = b"P%d:%d:%d|" % (self.idx, part, seq) + self.pad[:self.rng.randrange(0, 400)]
        key = compact_key(self.idx, seq) if TOPICS[topic][1] == "compact" else None
        with self.lock:
            self.outstanding.add((topic, part, seq))
        while True:
            try:
                self.p.produce(topic, value=value, key=key, partition=part,
                               on_delivery=self.on_delivery)
                break
            except BufferError:
                self.p.poll(0.05)
        self.soak.count("produced")

    def run(self):
        from confluent_kafka import KafkaException
        try:
            burst = max(1, RATE // 50)
            while not self.soak.stop.is_set():
                t = time.time()
                for _ in range(burst):
                    self.produce_one()
                self.p.poll(0)
                while len(self.p) > 3000 and not self.soak.stop.is_set():
                    self.p.poll(0.05)
                time.sleep(max(0, 0.02 - (time.time() - t)))
        except KafkaException as e:
            # a fatal error (e.g. an idempotence violation): this producer is done
            self.soak.violation("producer-fatal", "producer %d stopped: %s" % (self.idx, e))
        except Exception:
            self.soak.violation("harness", "producer %d: %s" % (self.idx, traceback.format_exc()))

    def finish(self, timeout):
        from confluent_kafka import KafkaException
        try:
            left = self.p.flush(timeout)
        except KafkaException as e:
            self.soak.violation("producer-fatal", "producer %d flush: %s" % (self.idx, e))
            left = len(self.p)
        if left:
            with self.lock:
                sample = sorted(self.outstanding)[:5]
            self.soak.violation("unacked", "producer %d: %d messages not acknowledged by the "
                                "end (flush of up to %d s), e.g. %s" % (self.idx, left, timeout, sample),
                                log_tail=True)


# --------------------------------------------------------------------------- group members

MEMBER_CONFLUENT = r"""
import json, signal, sys, time
from confluent_kafka import Consumer, KafkaException
bootstrap, group, name, topics, session_ms, extra = sys.argv[1:7]
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
out = sys.stdout
def assigned(c, parts):
    out.write("A %s\n" % " ".join("%s/%d" % (p.topic, p.partition) for p in parts)); out.flush()
def revoked(c, parts):
    out.write("V\n"); out.flush()
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "client.id": name,
              "session.timeout.ms": int(session_ms), "heartbeat.interval.ms": 1000,
              "auto.offset.reset": "earliest", "enable.auto.commit": False,
              "fetch.wait.max.ms": 200, "reconnect.backoff.max.ms": 1000,
              **json.loads(extra)})
c.subscribe(topics.split(","), on_assign=assigned, on_revoke=revoked)
last_commit = time.time()
while not stop:
    lines = []
    for m in c.consume(500, 0.3):
        if m.error():
            if m.error().fatal():
                lines.append("E fatal %s" % m.error())
            continue
        lines.append("R %s %d %d %s" % (m.topic(), m.partition(), m.offset(),
                                        m.value().split(b"|", 1)[0].decode()))
    if lines:
        out.write("\n".join(lines) + "\n"); out.flush()
    if time.time() - last_commit > 1:
        last_commit = time.time()
        try:
            done = c.commit(asynchronous=False)
            out.write("".join("C %s %d %d\n" % (p.topic, p.partition, p.offset)
                              for p in done or () if p.error is None and p.offset >= 0))
            out.flush()
        except KafkaException as e:
            out.write("N %s\n" % e); out.flush()
c.close()
"""

MEMBER_KAFKA_PYTHON = r"""
import logging, signal, sys, time
from kafka import KafkaConsumer, ConsumerRebalanceListener
from kafka.structs import OffsetAndMetadata
bootstrap, group, name, topics, session_ms = sys.argv[1:6]
logging.basicConfig(level=logging.CRITICAL)
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
out = sys.stdout
class L(ConsumerRebalanceListener):
    def on_partitions_revoked(self, revoked):
        out.write("V\n"); out.flush()
    def on_partitions_assigned(self, assigned):
        out.write("A %s\n" % " ".join("%s/%d" % (p.topic, p.partition) for p in assigned))
        out.flush()
c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, client_id=name,
                  session_timeout_ms=int(session_ms), heartbeat_interval_ms=1000,
                  auto_offset_reset="earliest", enable_auto_commit=False,
                  max_poll_records=500, fetch_max_wait_ms=200, reconnect_backoff_max_ms=1000)
c.subscribe(topics.split(","), listener=L())
last_commit = time.time()
pos = {}
while not stop:
    lines = []
    try:
        batches = c.poll(timeout_ms=300)
    except Exception as e:
        out.write("N poll %r\n" % e); out.flush()
        time.sleep(0.5)
        continue
    for tp, msgs in batches.items():
        for m in msgs:
            lines.append("R %s %d %d %s" % (m.topic, m.partition, m.offset,
                                            m.value.split(b"|", 1)[0].decode()))
            pos[tp] = m.offset + 1
    if lines:
        out.write("\n".join(lines) + "\n"); out.flush()
    if time.time() - last_commit > 1 and pos:
        last_commit = time.time()
        mine = {tp: OffsetAndMetadata(o, "") for tp, o in pos.items() if tp in c.assignment()}
        try:
            if mine:
                c.commit(mine)
                out.write("".join("C %s %d %d\n" % (tp.topic, tp.partition, om.offset)
                                  for tp, om in mine.items()))
                out.flush()
        except Exception as e:
            out.write("N commit %r\n" % e); out.flush()
        pos = {}
c.close()
"""


class Member:
    """A group member in a child process (so it can be kill -9'ed). Reads its output."""

    def __init__(self, soak, group, name, client):
        self.soak, self.group, self.name, self.client = soak, group, name, client
        self.topics = GROUPS[group][0]
        self.proc = None
        self.incarnation = 0
        self.commit_errors = 0

    def start(self):
        src = MEMBER_KAFKA_PYTHON if self.client == "kafka-python" else MEMBER_CONFLUENT
        bootstrap, extra = self.soak.bootstrap, {}
        if self.client == "confluent-tls":
            extra = self.soak.tls_conf("alice")
            bootstrap = extra.pop("bootstrap.servers")
        self.incarnation += 1
        self.errf = open(os.path.join(self.soak.workdir, "member-%s.err" % self.name), "ab")
        self.proc = subprocess.Popen(
            [PYTHON, "-c", src, bootstrap, self.group, self.name, ",".join(self.topics),
             str(SESSION_MS), json.dumps(extra)],
            stdout=subprocess.PIPE, stderr=self.errf)
        self.soak.count("member_starts")
        threading.Thread(target=self.read, args=(self.proc, self.incarnation),
                         daemon=True).start()

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.soak.count("member_kills")

    def terminate(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def read(self, proc, incarnation):
        who = "%s#%d" % (self.name, incarnation)
        s = self.soak
        last = {}  # (topic, p) -> last offset read in the current assignment
        for raw in proc.stdout:
            line = raw.decode(errors="replace").split()
            if not line:
                continue
            try:
                kind = line[0]
                if kind == "R":
                    topic, p, off = line[1], int(line[2]), int(line[3])
                    pidx, part, seq = parse_id(line[4].encode())
                    self.on_record(who, last, topic, p, off, pidx, part, seq)
                elif kind == "A" or kind == "V":
                    last.clear()
                elif kind == "C":
                    self.on_commit(who, line[1], int(line[2]), int(line[3]))
                elif kind == "N":
                    self.commit_errors += 1
                elif kind == "E":
                    s.violation("consumer-fatal", "%s: %s" % (who, " ".join(line[1:])))
            except Exception:
                s.violation("harness", "%s: cannot handle %r: %s" % (
                    who, raw[:200], traceback.format_exc()))

    def on_record(self, who, last_read, topic, p, off, pidx, part, seq):
        s = self.soak
        s.count("consumed")
        if part != p:
            s.violation("wrong-partition", "%s read %s[%d] offset %d holding a record for "
                        "partition %d" % (who, topic, p, off, part))
        s.on_read(who, topic, p, off, code_of(pidx, seq))
        last = last_read.get((topic, p))
        compacted = TOPICS[topic][1] == "compact"
        if last is not None and (off <= last or (off != last + 1 and not compacted)):
            s.violation("consumer-order", "%s read %s[%d] offset %d right after offset %d "
                        "in one assignment" % (who, topic, p, off, last))
        last_read[(topic, p)] = off
        with s.lock:
            bits = s.group_read.setdefault((self.group, topic, p), bytearray())
            if off >= len(bits):
                bits.extend(b"\0" * (off + 1 - len(bits) + 4096))
            bits[off] = 1

    def on_commit(self, who, topic, p, off):
        pass  # commits are checked as the broker reports them (committed_checker)


# --------------------------------------------------------------------------- checkers

def committed_checker(soak):
    """Every 3 s: the groups' committed offsets (OffsetFetch) never go backwards."""
    from confluent_kafka import Consumer, TopicPartition
    consumers = {}
    while not soak.stop_watch.wait(3):
        for group, (topics, _) in GROUPS.items():
            try:
                if group not in consumers:
                    consumers[group] = Consumer({
                        "bootstrap.servers": soak.bootstrap, "group.id": group,
                        "enable.auto.commit": False, "client.id": "soak-offsets-" + group,
                        "log_level": 2})
                tps = [TopicPartition(t, p) for t in topics for p in range(TOPICS[t][0])]
                got = consumers[group].committed(tps, timeout=5)
            except Exception:
                continue  # the broker is down: next round
            check_committed(soak, group, got)
            soak.count("commit_checks")
    for c in consumers.values():
        try:
            c.close()
        except Exception:
            pass


def check_committed(soak, group, got):
    now = time.time()
    with soak.lock:
        for tp in got:
            if tp.error is not None or tp.offset < 0:
                continue
            key = (group, tp.topic, tp.partition)
            prev = soak.committed.get(key)
            if prev is not None and tp.offset < prev[0]:
                soak.violation("commit-backwards", "%s %s[%d]: committed offset %d, %.1f s "
                               "after it was %d (broker incarnation then %d, now %d)" % (
                                   group, tp.topic, tp.partition, tp.offset, now - prev[1],
                                   prev[0], prev[2], soak.incarnation))
            soak.committed[key] = (tp.offset, now, soak.incarnation)


def time_seeker(soak):
    """offsets_for_times with both clients, and scans of the compacted topic."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition
    from kafka.errors import KafkaError
    rng = random.Random(SEED + 99)
    turn = 0
    while not soak.stop.wait(rng.uniform(4, 8)):
        turn += 1
        try:
            if turn % 3 == 0:
                scan_compacted(soak, rng)
                continue
            with soak.lock:
                keys = [k for k, v in soak.ack_ts.items()
                        if v and TOPICS[k[0]][1] != "compact"]
                if not keys:
                    continue
                topic, p = rng.choice(sorted(keys))
                off_s, ts = rng.choice(soak.ack_ts[(topic, p)])
            client = "kafka-python" if turn % 2 else "confluent"
            if client == "confluent":
                c = Consumer({"bootstrap.servers": soak.bootstrap,
                              "group.id": "soak-seeker", "enable.auto.commit": False})
                try:
                    [r] = c.offsets_for_times([TopicPartition(topic, p, ts)], timeout=10)
                    if r.error is not None:
                        continue
                    got = r.offset
                finally:
                    c.close()
            else:
                from kafka import KafkaConsumer, TopicPartition as KTP
                c = KafkaConsumer(bootstrap_servers=soak.bootstrap,
                                  request_timeout_ms=15000)
                try:
                    r = c.offsets_for_times({KTP(topic, p): ts})[KTP(topic, p)]
                    got = r.offset if r is not None else -1
                finally:
                    c.close()
            soak.count("time_seeks")
            check_time_answer(soak, client, topic, p, ts, off_s, got)
        except (KafkaException, KafkaError, TimeoutError) as e:
            # the broker restarting under the seeker; its checks only judge answers
            soak.count("seeker_errors")
            if not soak.broker_down:
                soak.note("time seeker: %s: %s" % (type(e).__name__, e))
        except Exception:
            soak.violation("harness", "time seeker: %s" % traceback.format_exc())


def read_range(bootstrap, topic, p, start, end, timeout=20):
    """[(offset, value, key, timestamp)] for offsets start..end-1 (assign + seek)."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "soak-reader",
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "fetch.wait.max.ms": 100})
    out = []
    try:
        c.assign([TopicPartition(topic, p, start)])
        deadline = time.time() + timeout
        while time.time() < deadline:
            for m in c.consume(1000, 0.5):
                if m.error():
                    if m.offset() >= end:
                        return out
                    continue
                if m.offset() >= end:
                    return out
                out.append((m.offset(), m.value(), m.key(), m.timestamp()[1]))
        raise TimeoutError("reading %s[%d] %d..%d: got %d records" % (
            topic, p, start, end, len(out)))
    finally:
        c.close()


def check_time_answer(soak, client, topic, p, ts, off_s, got):
    """got must be the first offset whose record has a timestamp >= ts; off_s has ts."""
    where = "%s offsets_for_times(%s[%d], %d)" % (client, topic, p, ts)
    if got < 0 or got > off_s:
        soak.violation("time-seek", "%s = %d, but offset %d has that timestamp" % (
            where, got, off_s))
        return
    recs = read_range(soak.bootstrap, topic, p, max(0, got - 20), got + 1)
    for off, _, _, rts in recs:
        if off < got and rts >= ts:
            soak.violation("time-seek", "%s = %d, but the earlier offset %d has timestamp %d" % (
                where, got, off, rts))
            return
        if off == got and rts < ts:
            soak.violation("time-seek", "%s = %d, whose timestamp %d is earlier" % (
                where, got, rts))
            return
    if not recs or recs[-1][0] != got:
        soak.violation("time-seek", "%s = %d, but that offset cannot be read (%s)" % (
            where, got, [r[0] for r in recs][-3:]))


def scan_compacted(soak, rng):
    """Reads a partition of the compacted topic from the start: offsets increase, each
    message at most once, what is there is what was read there before."""
    from confluent_kafka import Consumer, TopicPartition
    topic = "soak-compact"
    p = rng.randrange(TOPICS[topic][0])
    c = Consumer({"bootstrap.servers": soak.bootstrap, "group.id": "soak-reader",
                  "enable.auto.commit": False})
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
    finally:
        c.close()
    recs = read_range(soak.bootstrap, topic, p, 0, hi, timeout=60)
    soak.count("compact_scans")
    seen = {}
    last = -1
    for off, value, key, _ in recs:
        pidx, part, seq = parse_id(value)
        code = code_of(pidx, seq)
        if off <= last:
            soak.violation("compact-scan", "%s[%d]: offset %d after %d" % (topic, p, off, last))
        if code in seen:
            soak.violation("compact-scan", "%s[%d]: %s at offsets %d and %d" % (
                topic, p, fmt_code(code), seen[code], off))
        seen[code] = off
        last = off
        soak.on_read("compact-scan", topic, p, off, code)


def admin_worker(soak):
    """Topic churn, partition growth and config changes, with what was acknowledged kept
    in soak.admin_expect / cfg_expect (None: deleted; a failed call leaves it uncertain)."""
    rng = random.Random(SEED + 7)
    n = 0
    while not soak.stop.wait(rng.uniform(3, 8)):
        op = "connect"
        try:
            with soak.admin_lock:
                op = admin_op(soak, rng, n)
            if op == "create":
                n += 1
        except Exception as e:
            soak.count("admin_failed")
            if not soak.broker_down:
                soak.note("admin %s failed with the broker up: %s" % (op, e))


def admin_op(soak, rng, n):
    """One random admin operation (n: the number of churn topics made so far); returns its
    name. Raises what the client raised; the expectation is then left uncertain ('?')."""
    from confluent_kafka.admin import ConfigResource, NewPartitions, NewTopic
    a = soak.admin()
    with soak.lock:
        alive = sorted(t for t, v in soak.admin_expect.items()
                       if t.startswith("soak-churn-") and isinstance(v, int))
        grow = soak.admin_expect[GROW_TOPIC]
    op = rng.choice(["create", "delete", "grow", "config"] + (["acl"] if TLS else []))
    if op == "delete" and not alive or op == "grow" and not (
            isinstance(grow, int) and grow < GROW_MAX):
        op = "create"
    soak.count("admin_ops")
    if op == "create":
        name, parts = "soak-churn-%d" % (n + 1), rng.randint(1, 3)
        with soak.lock:
            soak.admin_expect[name] = "?"
        a.create_topics([NewTopic(name, parts, 1)], operation_timeout=20)[name].result(30)
        with soak.lock:
            soak.admin_expect[name] = parts
    elif op == "delete":
        name = rng.choice(alive)
        with soak.lock:
            soak.admin_expect[name] = "?"
        a.delete_topics([name], operation_timeout=20)[name].result(30)
        with soak.lock:
            soak.admin_expect[name] = None
    elif op == "grow":
        with soak.lock:
            soak.admin_expect[GROW_TOPIC] = "?"
        a.create_partitions([NewPartitions(GROW_TOPIC, grow + 1)],
                            operation_timeout=20)[GROW_TOPIC].result(30)
        with soak.lock:
            soak.admin_expect[GROW_TOPIC] = grow + 1
    elif op == "acl":
        # carol (no client uses her) gets or loses an ACL on a churn topic
        key = ("User:CN=carol,OU=team,O=kpool", "TOPIC", "soak-churn-%d" % rng.randint(1, n + 1),
               rng.choice(["READ", "WRITE", "DESCRIBE"]), rng.choice(["ALLOW", "DENY"]),
               "LITERAL")
        with soak.lock:
            present = soak.acl_expect.get(key) is True
            soak.acl_expect[key] = "?"
        if present:
            soak.delete_acl(key)
        else:
            soak.create_acls([key])
        with soak.lock:
            soak.acl_expect[key] = None if present else True
    else:
        # AlterConfigs replaces a topic's whole config: send all of it
        cfg = dict(TOPICS["soak-p4"][2])
        cfg["retention.ms"] = str(rng.randint(7, 30) * 86400000)
        cfg["max.message.bytes"] = str(rng.randint(1 << 20, 4 << 20))
        with soak.lock:
            soak.cfg_expect["soak-p4"] = "?"
        res = ConfigResource(ConfigResource.Type.TOPIC, "soak-p4", set_config=cfg)
        list(a.alter_configs([res], request_timeout=20).values())[0].result(30)
        with soak.lock:
            soak.cfg_expect["soak-p4"] = cfg
    return op


def check_admin_state(soak, stage):
    """Topics, partition counts and soak-p4's configs are what was acknowledged."""
    with soak.admin_lock:
        _check_admin_state(soak, stage)


def _check_admin_state(soak, stage):
    from confluent_kafka.admin import ConfigResource
    a = soak.admin()
    md = a.list_topics(timeout=30)
    have = {t: len(m.partitions) for t, m in md.topics.items() if m.error is None}
    with soak.lock:
        for t, want in sorted(soak.admin_expect.items()):
            got = have.get(t)
            if want == "?":
                soak.admin_expect[t] = got  # either outcome is right; now it is known
            elif want != got:
                soak.violation("admin-state", "%s: topic %s has %s partitions, expected %s "
                               "(None: absent)" % (stage, t, got, want))
        want_cfg = soak.cfg_expect.get("soak-p4")
    res = ConfigResource(ConfigResource.Type.TOPIC, "soak-p4")
    entries = list(a.describe_configs([res], request_timeout=30).values())[0].result(30)
    got_cfg = {k: e.value for k, e in entries.items()}
    if TLS:
        got_acls = soak.describe_acls()
        with soak.lock:
            for key, want in sorted(soak.acl_expect.items(), key=str):
                if want == "?":
                    soak.acl_expect[key] = True if key in got_acls else None
                elif (key in got_acls) != (want is True):
                    soak.violation("acl-state", "%s: ACL %s is %s, expected %s" % (
                        stage, key, "present" if key in got_acls else "absent",
                        "present" if want else "absent"))
            for key in sorted(got_acls - set(soak.acl_expect)):
                soak.violation("acl-state", "%s: ACL %s was never created" % (stage, key))
    if want_cfg == "?":
        with soak.lock:
            soak.cfg_expect["soak-p4"] = {k: got_cfg.get(k) for k in
                                          ("segment.bytes", "retention.ms",
                                           "max.message.bytes")}
    else:
        for k, v in want_cfg.items():
            if got_cfg.get(k) != v:
                soak.violation("admin-state", "%s: soak-p4 config %s=%s, expected %s" % (
                    stage, k, got_cfg.get(k), v))


# --------------------------------------------------------------------------- chaos

def chaos(soak, members, end_time):
    rng = random.Random(SEED + 13)
    while time.time() < end_time and not soak.stop.is_set():
        if rng.random() < 0.2:
            wait = rng.uniform(120, 200)  # a calm stretch: the broker's memory over time
        else:
            wait = rng.uniform(*CHAOS_S)
        if soak.stop.wait(min(wait, max(0, end_time - time.time()))):
            return
        if time.time() >= end_time:
            return
        r = rng.random()
        if r < 0.45:
            soak.broker_restart("kill9")
        elif r < 0.6:
            soak.broker_restart("sigterm")
        else:
            m = rng.choice(members)
            m.kill9()
            soak.note("killed member %s" % m.name)
            if soak.stop.wait(rng.uniform(0, 5)):
                return
            m.start()
            continue
        try:
            check_admin_state(soak, "after restart %d" % soak.incarnation)
        except Exception as e:
            soak.note("admin state check failed: %s" % e)


# --------------------------------------------------------------------------- the end

def read_whole_log(soak, topic, partitions):
    """{p: [(offset, value, key, ts)]} from offset 0 to the high watermark."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": soak.bootstrap, "group.id": "soak-final",
                  "enable.auto.commit": False})
    try:
        his = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=20)[1]
               for p in range(partitions)}
    finally:
        c.close()
    return {p: read_range(soak.bootstrap, topic, p, 0, his[p], timeout=300)
            for p in range(partitions)}, his


def check_final_log(soak, topic, partitions, kind):
    logs, his = read_whole_log(soak, topic, partitions)
    for p in range(partitions):
        recs = logs[p]
        acked = soak.acked.get((topic, p), OffsetArray())
        seen = soak.seen.get((topic, p), OffsetArray())
        at = {}
        where = {}
        last_seq = {}
        newest_key = {}
        for off, value, key, _ in recs:
            pidx, part, seq = parse_id(value)
            code = code_of(pidx, seq)
            at[off] = code
            ctx = "%s[%d] offset %d (%s, high watermark %d)" % (topic, p, off, fmt_code(code),
                                                              his[p])
            if part != p:
                soak.violation("log-partition", "%s: written for partition %d" % (ctx, part))
            if code in where:
                soak.violation("log-duplicate", "%s: also at offset %d" % (ctx, where[code]))
            where.setdefault(code, off)
            if seq <= last_seq.get(pidx, -1):
                soak.violation("log-order", "%s: after seq %d of the same producer" % (
                    ctx, last_seq[pidx]))
            last_seq[pidx] = max(seq, last_seq.get(pidx, -1))
            if acked.get(off) not in (-1, code):
                soak.violation("log-mismatch", "%s: acknowledged there was %s" % (
                    ctx, fmt_code(acked.get(off))))
            if seen.get(off) not in (-1, code):
                soak.violation("log-mismatch", "%s: consumers read %s there" % (
                    ctx, fmt_code(seen.get(off))))
            if key is not None:
                newest_key[key] = off
        missing = [o for o in range(len(acked)) if acked.get(o) != -1 and o not in at]
        if kind == "compact":
            # compaction removes older records of a key; the newest acknowledged one stays
            newest_acked = {}
            for o in range(len(acked)):
                c = acked.get(o)
                if c != -1:
                    newest_acked[compact_key(c >> SEQ_BITS, c & ((1 << SEQ_BITS) - 1))] = o
            for key, o in sorted(newest_acked.items()):
                if newest_key.get(key, -1) < o:
                    soak.violation("compact-lost", "%s[%d]: key %s: newest acknowledged record "
                                   "at offset %d is gone (newest left: %s)" % (
                                       topic, p, key, o, newest_key.get(key)))
            removed = len(missing)
            soak.note("%s[%d]: %d records left of %d acknowledged (compaction)" % (
                topic, p, len(recs), removed + len(recs)))
        elif missing:
            soak.violation("log-lost", "%s[%d] (%s): %d acknowledged messages missing, offsets "
                           "%s..., high watermark %d, %d records read" % (
                               topic, p, kind, len(missing), missing[:10], his[p], len(recs)))
        n_acked = sum(1 for o in range(len(acked)) if acked.get(o) != -1)
        if kind != "compact" and len(recs) != n_acked:
            extra = sorted(set(at) - {o for o in range(len(acked)) if acked.get(o) != -1})
            soak.violation("log-extra", "%s[%d]: %d records in the log, %d acknowledged; "
                           "unacknowledged offsets %s" % (topic, p, len(recs), n_acked,
                                                          extra[:10]))
        # every group reading this topic read every acknowledged message
        for group, (gtopics, _) in GROUPS.items():
            if topic not in gtopics:
                continue
            bits = soak.group_read.get((group, topic, p), bytearray())
            unread = [o for o in range(len(acked)) if acked.get(o) != -1 and
                      (o >= len(bits) or not bits[o])]
            if unread:
                soak.violation("group-unread", "%s never read %d acknowledged messages of "
                               "%s[%d], offsets %s..." % (group, len(unread), topic, p,
                                                          unread[:10]))
    return sum(len(v) for v in logs.values())


def wait_groups_caught_up(soak, timeout):
    """Until every group has read every acknowledged message and committed the end."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        behind = []
        with soak.lock:
            for group, (topics, _) in GROUPS.items():
                for t in topics:
                    for p in range(TOPICS[t][0]):
                        acked = soak.acked.get((t, p), OffsetArray())
                        bits = soak.group_read.get((group, t, p), bytearray())
                        end = len(acked)
                        if end and (end > len(bits) or not all(bits[:end])):
                            behind.append((group, t, p, "read"))
                        c = soak.committed.get((group, t, p))
                        if end and (c is None or c[0] < end):
                            behind.append((group, t, p, "committed %s of %d" % (
                                c and c[0], end)))
        if not behind:
            return []
        time.sleep(2)
    return behind


def rss_report(soak):
    lines = []
    peak = 0
    for i, samples in enumerate(soak.rss):
        if not samples:
            continue
        peak = max(peak, max(kb for _, kb in samples))
        life = samples[-1][0] - samples[0][0]
        tail = [(t, kb) for t, kb in samples if t - samples[0][0] >= 30]
        if life < 90 and len(tail) < 10:
            incs = getattr(soak, "incarnations", [])
            if i + 1 < len(incs) and incs[i + 1][0] - incs[i][0] >= 90:
                # a long life with few samples: the monitor was held up; say so
                lines.append("  incarnation %d: lived %.0f s but only %d VmRSS samples over "
                             "%.0f s" % (i + 1, incs[i + 1][0] - incs[i][0], len(samples), life))
        elif life >= 90 and len(tail) >= 10:
            n = len(tail)
            mt = sum(t for t, _ in tail) / n
            mk = sum(kb for _, kb in tail) / n
            var = sum((t - mt) ** 2 for t, _ in tail)
            slope = sum((t - mt) * (kb - mk) for t, kb in tail) / var if var else 0
            lines.append("  incarnation %d: %.0f s, RSS %d -> %d MB, growth after the first "
                         "30 s %+.1f MB/hour" % (i + 1, life, samples[0][1] // 1024,
                                                 samples[-1][1] // 1024, slope * 3600 / 1024))
    lines.append("  VmRSS samples (incarnation: samples/seconds covered): " + " ".join(
        "%d:%d/%.0fs" % (i + 1, len(x), x[-1][0] - x[0][0] if x else 0)
        for i, x in enumerate(soak.rss)))
    return peak, lines


def main():
    # a smaller ASan quarantine (default 256 MB) so that VmRSS growth shows within minutes
    os.environ.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1:"
                          "quarantine_size_mb=64")
    workdir = tempfile.mkdtemp(prefix="kpool-soak-")
    soak = Soak(workdir)
    print("kpool soak: %.1f minutes, seed %d, workdir %s, binary %s" % (
        MINUTES, SEED, workdir, os.environ.get("KPOOL_BIN", "(conftest default)")), flush=True)
    members = []
    producers = []
    try:
        soak.broker_start()
        soak.create_topics()
        for idx, (codec, topics) in PRODUCERS.items():
            producers.append(SoakProducer(soak, idx, codec, topics))
        for group, (_, names) in GROUPS.items():
            for name, client in names:
                members.append(Member(soak, group, name, client))
        for m in members:
            m.start()
        for pr in producers:
            pr.start()
        watch = [threading.Thread(target=f, args=(soak,), daemon=True, name=f.__name__)
                 for f in (Soak.monitor, committed_checker)]
        workers = [threading.Thread(target=f, args=(soak,), daemon=True, name=f.__name__)
                   for f in (time_seeker, admin_worker)]
        for t in watch + workers:
            t.start()
        end_time = time.time() + MINUTES * 60
        chaos(soak, members, end_time)
        soak.note("chaos over; stopping producers, draining, verifying")
        # the broker is up (chaos restarts it synchronously); the monitor and the
        # committed-offset checker keep running until the groups caught up
        soak.stop.set()
        for t in producers + workers:
            t.join(60)
        for pr in producers:
            pr.finish(180)
        behind = wait_groups_caught_up(soak, 240)
        for g, t, p, what in behind[:20]:
            soak.violation("group-behind", "%s %s[%d] not caught up 240 s after the end: %s" % (
                g, t, p, what))
        check_admin_state(soak, "at the end")
        totals = {}
        for t, (n, kind, _) in TOPICS.items():
            totals[t] = check_final_log(soak, t, n, kind)
        for m in members:
            m.terminate()
        soak.stop_watch.set()
        for t in watch:
            t.join(60)
        # a clean stop must exit 0 and leak nothing; the broker must then start again
        soak.broker_restart("sigterm")
        check_admin_state(soak, "after the final restart")
        soak.broker_sigterm()
        soak.scan_log()
    except Exception:
        soak.violation("harness", traceback.format_exc(), log_tail=True)
        totals = {}
    finally:
        soak.stop.set()
        soak.stop_watch.set()
        for m in members:
            try:
                if m.proc and m.proc.poll() is None:
                    m.proc.kill()
            except Exception:
                pass
        if soak.broker and soak.broker.proc and soak.broker.proc.poll() is None:
            soak.broker.kill9()

    peak, rss_lines = rss_report(soak)
    with open(os.path.join(workdir, "rss.json"), "w") as f:
        json.dump(soak.rss, f)
    c = soak.counts
    print("\n==== kpool soak summary (seed %d, %.1f minutes wall clock)" % (
        SEED, soak.elapsed() / 60))
    print("messages: %d produced, %d acknowledged, %d delivery failures; %d read by group "
          "members (re-reads included)" % (c["produced"], c["acked"], c["delivery_failed"],
                                          c["consumed"]))
    print("final log: %s" % ", ".join("%s %d" % kv for kv in totals.items()))
    print("broker: %d incarnations, %d kill -9, %d SIGTERM restarts, %d error log lines; "
          "peak VmRSS %d MB" % (soak.incarnation, c["kill9"], c["sigterm"], c["broker_errors"],
                                peak // 1024))
    for line in rss_lines:
        print(line)
    print("members: %d starts, %d kill -9; %d committed-offset checks; %d time seeks; %d "
          "compacted scans; %d admin ops (%d failed, mostly while the broker was down)" % (
              c["member_starts"], c["member_kills"], c["commit_checks"], c["time_seeks"],
              c["compact_scans"], c["admin_ops"], c["admin_failed"]))
    if soak.violations:
        print("%d VIOLATIONS (first 30):" % len(soak.violations))
        for v in soak.violations[:30]:
            print(v[:6000])
        print("workdir kept: %s" % workdir)
        return 1
    print("no violations")
    if KEEP:
        print("workdir kept: %s" % workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
