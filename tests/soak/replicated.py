#!/usr/bin/python3
"""kpool soak, replicated mode (`make soak SOAK_MODE=replicated`): a pool of SOAK_BROKERS
brokers (default 4) and one etcd, each in a network namespace of its own
(tests/integration/harness/netns.py), topics with replication factor 3 and
min.insync.replicas=2, under steady load from real clients while a nemesis injects one
fault at a time; a checker looks at every acknowledged record. docs/testing.md describes
it; in short:

  * topics: rep-a (6 partitions), rep-b (3, small segments), rep-plain (3).
  * producers (confluent-kafka, acks=all, no delivery timeout; the clients of soak.py):
    P0 and P1 idempotent (P1 lz4) on rep-a and rep-b; P2 plain (not idempotent, zstd) on
    rep-plain. Values start with "P<producer>:<partition>:<seq>|".
  * consumer groups (soak.py's members, child processes committing every second):
    rg-a (rep-a, rep-b: two confluent-kafka members, one kafka-python), rg-b (rep-plain:
    one of each).
  * nemesis, one fault at a time, then heal, then wait until every partition has its full
    ISR again, then a pause of SOAK_CHAOS_S: kill -9 of a broker (any, or the leader of a
    partition), SIGTERM (controlled shutdown) and restart, a rolling restart of every
    broker (each back in every ISR before the next), SIGSTOP / SIGCONT of a broker, network
    partitions (a broker isolated from every other node, cut from etcd only, or one
    broker-broker link cut; blackhole routes), etcd kill -9 or SIGTERM and restart,
    partition reassignments (kafkajs's alterPartitionReassignments to a random replica
    set), `kpool pool rebalance` and `kpool pool elect-leaders`, kill -9 of a group member.

The checker (violations printed at once; exit status 1):

  * idempotent producers: no fatal error; per (producer, partition) acknowledgements in
    sequence order at increasing offsets; at the end, every acknowledged record is in the
    log exactly once, at its acknowledged offset, in sequence order, and nothing else is.
  * the plain producer: every acknowledged record is at its acknowledged offset (nothing
    acknowledged lost); duplicates from retries are counted, not flagged.
  * never two acknowledgements for one offset; an offset holds the same record whoever
    reads it, whenever (a consumer never saw a record that a failover later took back:
    nothing above the high watermark); every group reads every acknowledged record; within
    one assignment a member reads offsets in order without gaps; committed offsets
    (OffsetFetch) never move backwards and end at the log end.
  * brokers and etcd never exit unless the nemesis ended them; every SIGTERM exits 0; no
    sanitizer report in any log; a restarted broker is ready (back in every ISR it
    belongs to) within SOAK_READY_S; the pool heals (every partition's ISR full, no move
    left) within SOAK_HEAL_S of a fault's end.
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import soak as single  # the single-broker soak: its clients and bookkeeping (and sys.path)
from harness.env import KPOOL_BIN
from harness.etcd import Etcd
from harness.netns import NetLab, NetLabUnavailable, NsBroker, NsEtcd
from harness.procs import Broker

MINUTES = single.MINUTES
SEED = single.SEED
N_BROKERS = int(os.environ.get("SOAK_BROKERS", "4"))
RATE = int(os.environ.get("SOAK_RATE", "100"))  # records per second per producer
CHAOS_S = tuple(float(x) for x in os.environ.get("SOAK_CHAOS_S", "5,20").split(","))
READY_S = float(os.environ.get("SOAK_READY_S", "180"))
HEAL_S = float(os.environ.get("SOAK_HEAL_S", "300"))
KEEP = single.KEEP
NETNS = os.environ.get("SOAK_NETNS", "1") not in ("", "0")
JS_REASSIGN = os.path.join(single.HERE, "..", "integration", "js", "reassign.js")

# name: (partitions, kind, configs); kinds: "idem" (idempotent producers), "plain"
TOPICS = {
    "rep-a": (6, "idem", {"min.insync.replicas": "2", "segment.bytes": "1048576"}),
    "rep-b": (3, "idem", {"min.insync.replicas": "2", "segment.bytes": "262144"}),
    "rep-plain": (3, "plain", {"min.insync.replicas": "2"}),
}
RF = 3
# producer index: (codec, [topics], librdkafka settings over soak.SoakProducer's)
PRODUCERS = {
    0: ("none", ["rep-a", "rep-b"], {}),
    1: ("lz4", ["rep-a"], {}),
    2: ("zstd", ["rep-plain"], {"enable.idempotence": False, "acks": "all",
                                "max.in.flight.requests.per.connection": 5,
                                "retries": 2147483647}),
}
GROUPS = {
    "rg-a": (["rep-a", "rep-b"], [("ra-rd1", "confluent"), ("ra-rd2", "confluent"),
                                  ("ra-kpy", "kafka-python")]),
    "rg-b": (["rep-plain"], [("rb-rd1", "confluent"), ("rb-kpy", "kafka-python")]),
}
BROKER_PROPS = {
    "metadata.etcd.prefix": "/kpool/soak",
    "num.network.threads": "1",
    "log.flush.threads": "1",
    "replica.lag.time.max.ms": "10000",
    "group.initial.rebalance.delay.ms": "500",
}
# nemesis: kind -> weight (SOAK_FAULTS=kind,kind,... keeps only those)
FAULTS = {
    "kill9": 10, "kill9-leader": 10, "sigterm": 5, "rolling-restart": 3, "pause": 8,
    "isolate": 8, "cut-etcd": 5, "cut-link": 6, "etcd-restart": 5, "reassign": 8,
    "rebalance": 3, "elect-leaders": 3, "member-kill9": 5,
}
NET_FAULTS = ("isolate", "cut-etcd", "cut-link")
if os.environ.get("SOAK_FAULTS"):
    want = set(os.environ["SOAK_FAULTS"].split(","))
    unknown = want - set(FAULTS)
    if unknown:
        sys.exit("SOAK_FAULTS: unknown fault kinds %s (known: %s)" % (
            sorted(unknown), ",".join(FAULTS)))
    FAULTS = {k: v for k, v in FAULTS.items() if k in want}

# soak.py's clients read its TOPICS, GROUPS and RATE at call time: they run over these
single.TOPICS = TOPICS
single.GROUPS = GROUPS
single.RATE = RATE
SANITIZER_RE = single.SANITIZER_RE
OffsetArray, parse_id, code_of, fmt_code = (single.OffsetArray, single.parse_id,
                                            single.code_of, single.fmt_code)


class Node:
    """A broker or etcd of the pool, with what the nemesis did to it."""

    def __init__(self, name, proc_obj):
        self.name = name
        self.p = proc_obj   # harness Broker / Etcd
        self.down = False   # stopped by the nemesis
        self.paused = False
        self.log_pos = 0


class RepSoak(single.Soak):
    def __init__(self, workdir):
        super().__init__(workdir)
        self.lab = None
        self.brokers = []   # Nodes
        self.etcd = None    # Node
        self.node_lock = threading.RLock()  # the nemesis vs. the monitor
        self.faults = {}    # kind -> count
        self.fault_log = []  # (t, text)
        self.counts.update({"plain_dups": 0, "heal_waits": 0, "reassign_refused": 0,
                            "records_checked": 0, "consumer_reads_checked": 0,
                            "replicas_compared": 0})

    @property
    def bootstrap(self):
        return ",".join(n.p.bootstrap for n in self.brokers)

    # ----------------------------------------------------------------- the pool

    def start_pool(self):
        n = N_BROKERS
        if NETNS:
            try:
                self.lab = NetLab.create(n + 1)
            except NetLabUnavailable as e:
                self.note("network namespaces unavailable (%s): loopback, no partitions" % e)
        if self.lab:
            etcd = NsEtcd(self.lab, n + 1, self.workdir)
        else:
            etcd = Etcd(self.workdir)
        self.etcd = Node("etcd", etcd)
        etcd.start()
        for i in range(1, n + 1):
            props = dict(BROKER_PROPS, **{"broker.id": str(i),
                                          "metadata.etcd.endpoints": etcd.url})
            d = os.path.join(self.workdir, "data-%d" % i)
            b = NsBroker(self.lab, i, d, props) if self.lab else Broker(d, props)
            self.brokers.append(Node("broker %d" % i, b))
        for node in self.brokers:
            node.p.start(timeout=120)
        self.wait_healthy("start", timeout=120)

    def broker_id(self, node):
        return int(node.p.extra["broker.id"])

    def metadata(self, timeout=20, node=None):
        """kcat -L -J through one broker (node), or the first live broker that answers."""
        last = None
        for node in [node] if node else self.live_brokers():
            try:
                out = subprocess.run(["kcat", "-b", node.p.bootstrap, "-L", "-J", "-m", "10"],
                                     capture_output=True, timeout=timeout, text=True)
                if out.returncode == 0:
                    return json.loads(out.stdout)
                last = out.stderr
            except (subprocess.TimeoutExpired, ValueError) as e:
                last = str(e)
        raise RuntimeError("no metadata: %s" % last)

    def live_brokers(self):
        return [n for n in self.brokers if not n.down and not n.paused]

    def unhealthy(self):
        """What keeps the pool from being whole: [] when every broker's Metadata (each asked
        alone: a broker with a stale view routes clients wrong) lists every broker, every
        partition of the soak's topics and of __consumer_offsets with a leader, a full ISR
        and no move in progress, and all brokers agree on leaders, replicas and ISRs."""
        bad = []
        views = {}
        for node in self.brokers:
            try:
                md = self.metadata(node=node)
            except RuntimeError as e:
                bad.append("%s: %s" % (node.name, e))
                continue
            ids = sorted(b["id"] for b in md["brokers"])
            if ids != list(range(1, N_BROKERS + 1)):
                bad.append("%s sees brokers %s" % (node.name, ids))
            view = {}
            for t in md["topics"]:
                if t["topic"] not in TOPICS and t["topic"] != "__consumer_offsets":
                    continue
                for p in t["partitions"]:
                    reps = [r["id"] for r in p["replicas"]]
                    isr = sorted(r["id"] for r in p["isrs"])
                    view[(t["topic"], p["partition"])] = (p["leader"], sorted(reps), isr)
                    if p["leader"] < 0 or len(isr) != RF or len(reps) != RF:
                        bad.append("%s sees %s-%d leader %s replicas %s isr %s" % (
                            node.name, t["topic"], p["partition"], p["leader"], reps, isr))
            views[node.name] = view
        names = sorted(views)
        for other in names[1:]:
            a, b = views[names[0]], views[other]
            for key in sorted(set(a) | set(b)):
                if a.get(key) != b.get(key):
                    bad.append("%s-%d: %s sees %s, %s sees %s" % (
                        key[0], key[1], names[0], a.get(key), other, b.get(key)))
                    break
        return bad

    def wait_healthy(self, stage, timeout=HEAL_S):
        t0 = time.time()
        bad = ["?"]
        while time.time() - t0 < timeout and not self.stop_watch.is_set():
            try:
                bad = self.unhealthy()
            except Exception as e:
                bad = ["metadata: %s" % e]
            if not bad:
                self.count("heal_waits")
                return time.time() - t0
            time.sleep(1)
        self.violation("not-healed", "%s: the pool is not whole %.0f s after the fault: %s" % (
            stage, time.time() - t0, bad[:8]))
        return None

    def leader_of(self, topic, p):
        for t in self.metadata()["topics"]:
            if t["topic"] == topic:
                for x in t["partitions"]:
                    if x["partition"] == p:
                        return x["leader"]
        return -1

    # ----------------------------------------------------------------- process faults

    def fault(self, kind, text):
        with self.lock:
            self.faults[kind] = self.faults.get(kind, 0) + 1
        self.note("fault %s: %s" % (kind, text))

    def kill9(self, node):
        with self.node_lock:
            node.down = True
            node.p.kill9()

    def sigterm(self, node):
        """SIGTERM; the broker must exit 0 within 60 s (a controlled shutdown)."""
        with self.node_lock:
            node.down = True
            proc = node.p.proc
            proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(60)
        except subprocess.TimeoutExpired:
            self.violation("sigterm-hang", "%s did not exit within 60 s of SIGTERM\n%s" % (
                node.name, node.p.log()[-3000:]))
            proc.kill()
            rc = proc.wait()
        node.p.logf.close()
        node.p.killed = True
        if rc != 0 and rc != -9:
            self.violation("sigterm-exit", "%s exited with %s after SIGTERM\n%s" % (
                node.name, rc, node.p.log()[-3000:]))

    def start_node(self, node, why):
        self.scan_logs()
        try:
            node.p.start(timeout=READY_S)
        except RuntimeError as e:
            proc = node.p.proc
            self.violation("restart-failed", "%s (%s) not ready in %.0f s: %s" % (
                node.name, why, READY_S, str(e)[-3000:]))
            if proc is None or proc.poll() is not None:
                raise
            # running but not ready: leave it running, the heal wait judges the pool
        with self.node_lock:
            node.down = False

    def pause(self, node):
        with self.node_lock:
            node.paused = True
            os.kill(node.p.proc.pid, signal.SIGSTOP)

    def resume(self, node):
        with self.node_lock:
            if node.paused:
                os.kill(node.p.proc.pid, signal.SIGCONT)
                node.paused = False

    # ----------------------------------------------------------------- watching

    def scan_logs(self):
        for node in self.brokers + [self.etcd]:
            try:
                with open(node.p.log_path, "rb") as f:
                    f.seek(node.log_pos)
                    data = f.read()
            except OSError:
                continue
            cut = data.rfind(b"\n") + 1
            data = data[:cut]
            m = SANITIZER_RE.search(data)
            if m:
                self.violation("sanitizer", "%s log at byte %d:\n%s" % (
                    node.name, node.log_pos + m.start(),
                    data[max(0, m.start() - 2000):m.start() + 6000].decode(errors="replace")))
            if node is not self.etcd:
                n_err = data.count(b" level=error ")
                if n_err:
                    self.count("broker_errors", n_err)
                    for line in data.splitlines():
                        if b" level=error " in line and len(self.notes) < 600:
                            self.note("%s error: %s" % (
                                node.name, line.decode(errors="replace")[:300]))
            node.log_pos += cut

    def monitor(self):
        """Every 2 s: the logs, and whether a broker or etcd exited on its own (a crash:
        a violation, then it is started again)."""
        while not self.stop_watch.wait(2):
            with self.node_lock:
                died = [n for n in self.brokers + [self.etcd]
                        if not n.down and n.p.proc is not None and n.p.proc.poll() is not None]
                for n in died:
                    n.down = True
            self.scan_logs()
            for n in died:
                self.violation("crash", "%s exited by itself with %s; log tail:\n%s" % (
                    n.name, n.p.proc.returncode, n.p.log()[-4000:]))
                if n is not self.etcd:
                    n.p.logf.close()
                    n.p.killed = True
                try:
                    if n is self.etcd:
                        n.p.start()
                        n.down = False
                    else:
                        self.start_node(n, "after its crash")
                except Exception as e:
                    self.violation("restart-failed", "%s: %s" % (n.name, e))

    def create_topics(self):
        from confluent_kafka.admin import AdminClient, NewTopic
        a = AdminClient({"bootstrap.servers": self.bootstrap})
        new = [NewTopic(t, n, RF, config=dict(cfg)) for t, (n, _, cfg) in TOPICS.items()]
        for t, fut in a.create_topics(new, operation_timeout=30).items():
            fut.result(60)


# --------------------------------------------------------------------------- the nemesis

def nemesis(soak, members, end_time):
    rng = random.Random(SEED + 31)
    kinds = [k for k in FAULTS if soak.lab or k not in NET_FAULTS]
    weights = [FAULTS[k] for k in kinds]
    while time.time() < end_time and not soak.stop.is_set():
        if soak.stop.wait(min(rng.uniform(*CHAOS_S), max(0, end_time - time.time()))):
            return
        if time.time() >= end_time:
            return
        kind = rng.choices(kinds, weights)[0]
        if single.SELFTEST_LOSS and not soak.faults.get("selftest-loss"):
            selftest_loss(soak)
        try:
            one_fault(soak, rng, kind, members)
        except Exception:
            soak.violation("harness", "nemesis %s: %s" % (kind, traceback.format_exc()))
            heal_everything(soak)
        soak.wait_healthy("after %s" % kind)


def selftest_loss(soak):
    """The checker's self-check (SOAK_SELFTEST_LOSS=1): acknowledged records of rep-b[0]
    deleted (kafkajs deleteTopicRecords up to half of what was acknowledged), as if the
    pool had lost them; the run must then report violations."""
    from test_pool_logstart import kafkajs_delete_records
    with soak.lock:
        upto = len(soak.acked.get(("rep-b", 0), OffsetArray())) // 2
    soak.fault("selftest-loss", "deleting rep-b[0] below offset %d" % upto)
    soak.note("self-test: %s" % kafkajs_delete_records(soak.brokers[0].p.bootstrap, "rep-b", upto))


def heal_everything(soak):
    """Undo whatever a fault left: links healed, processes resumed and started."""
    if soak.lab:
        soak.lab.heal()
    for n in soak.brokers:
        soak.resume(n)
    if soak.etcd.down:
        soak.etcd.p.start()
        soak.etcd.down = False
    for n in soak.brokers:
        if n.down:
            soak.start_node(n, "healing")


def one_fault(soak, rng, kind, members):
    brokers = soak.brokers
    if kind in ("kill9", "kill9-leader", "sigterm"):
        if kind == "kill9-leader":
            topic = rng.choice(sorted(TOPICS))
            p = rng.randrange(TOPICS[topic][0])
            lid = soak.leader_of(topic, p)
            node = next((n for n in brokers if soak.broker_id(n) == lid), rng.choice(brokers))
            what = "%s (leader of %s-%d: %s)" % (node.name, topic, p, lid)
        else:
            node = rng.choice(brokers)
            what = node.name
        soak.fault(kind, what)
        if kind == "sigterm":
            soak.sigterm(node)
        else:
            soak.kill9(node)
        time.sleep(rng.uniform(0.5, 8))
        soak.start_node(node, kind)
    elif kind == "rolling-restart":
        soak.fault(kind, "SIGTERM, restart and wait for every ISR, broker by broker")
        for node in brokers:
            soak.sigterm(node)
            soak.start_node(node, kind)
            soak.wait_healthy("rolling restart at %s" % node.name)
    elif kind == "pause":
        node = rng.choice(brokers)
        secs = rng.uniform(1, 12)
        soak.fault(kind, "SIGSTOP %s for %.1f s" % (node.name, secs))
        soak.pause(node)
        time.sleep(secs)
        soak.resume(node)
    elif kind in NET_FAULTS:
        lab = soak.lab
        node = rng.choice(brokers)
        i = node.p.node
        secs = rng.uniform(3, 20)
        if kind == "isolate":
            lab.isolate(i)
            what = "%s cut from every node" % node.name
        elif kind == "cut-etcd":
            lab.cut(i, soak.etcd.p.node)
            what = "%s cut from etcd" % node.name
        else:
            other = rng.choice([n for n in brokers if n is not node])
            lab.cut(i, other.p.node)
            what = "link %s - %s cut" % (node.name, other.name)
        soak.fault(kind, "%s for %.1f s" % (what, secs))
        time.sleep(secs)
        lab.heal()
    elif kind == "etcd-restart":
        how = rng.choice(["kill9", "sigterm"])
        secs = rng.uniform(1, 10)
        soak.fault(kind, "etcd %s, down %.1f s" % (how, secs))
        with soak.node_lock:
            soak.etcd.down = True
            if how == "kill9":
                soak.etcd.p.kill9()
            else:
                soak.etcd.p.stop()
        time.sleep(secs)
        soak.etcd.p.start()
        soak.etcd.down = False
    elif kind == "reassign":
        reassign(soak, rng)
    elif kind in ("rebalance", "elect-leaders"):
        soak.fault(kind, "kpool pool %s" % kind)
        args = [KPOOL_BIN, "pool", kind, "--bootstrap", soak.bootstrap]
        if kind == "rebalance":
            args += ["--timeout", "240"]
        p = subprocess.run(args, capture_output=True, text=True, timeout=300)
        assert_output_clean(soak, "kpool pool " + kind, p.stderr)
        soak.note("kpool pool %s -> %d: %s" % (kind, p.returncode,
                                                (p.stdout + p.stderr).strip()[-300:]))
    elif kind == "member-kill9":
        m = rng.choice(members)
        soak.fault(kind, m.name)
        m.kill9()
        time.sleep(rng.uniform(0, 5))
        m.start()
    else:
        raise AssertionError(kind)


def assert_output_clean(soak, what, text):
    if SANITIZER_RE.search(text.encode()):
        soak.violation("sanitizer", "%s:\n%s" % (what, text[-6000:]))


def reassign(soak, rng):
    """Moves 1-3 random partitions to random replica sets (kafkajs)."""
    ids = [soak.broker_id(n) for n in soak.brokers]
    moves = {}
    for _ in range(rng.randint(1, 3)):
        topic = rng.choice(sorted(TOPICS))
        p = rng.randrange(TOPICS[topic][0])
        moves.setdefault(topic, {})[p] = rng.sample(ids, RF)
    spec = [{"topic": t, "partitionAssignment": [{"partition": p, "replicas": r}
                                                 for p, r in sorted(ps.items())]}
            for t, ps in sorted(moves.items())]
    soak.fault("reassign", " ".join("%s-%d->%s" % (t, p, r) for t, ps in sorted(moves.items())
                                    for p, r in sorted(ps.items())))
    path = os.path.join(soak.workdir, "reassign.json")
    with open(path, "w") as f:
        json.dump(spec, f)
    p = subprocess.run(["node", JS_REASSIGN, "alter", soak.bootstrap, path],
                       capture_output=True, text=True, timeout=120)
    out = p.stdout.strip()
    if p.returncode != 0 or '"ok"' not in out:
        soak.count("reassign_refused")
        soak.note("reassignment not accepted: %s %s" % (out[-300:], p.stderr[-300:]))


# --------------------------------------------------------------------------- the end

def read_partition(soak, topic, p):
    """[(offset, value, key, ts)] of the whole partition, and its high watermark."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": soak.bootstrap, "group.id": "soak-final",
                  "enable.auto.commit": False})
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
    finally:
        c.close()
    if lo != 0:
        soak.violation("log-start", "%s[%d]: log start offset %d, nothing deleted it" % (
            topic, p, lo))
    return single.read_range(soak.bootstrap, topic, p, lo, hi, timeout=300), hi


def check_final_log(soak, topic, partitions, kind):
    total = 0
    for p in range(partitions):
        recs, hi = read_partition(soak, topic, p)
        total += len(recs)
        acked = soak.acked.get((topic, p), OffsetArray())
        seen = soak.seen.get((topic, p), OffsetArray())
        at, where, last_seq, dups = {}, {}, {}, 0
        for off, value, _, _ in recs:
            pidx, part, seq = parse_id(value)
            code = code_of(pidx, seq)
            at[off] = code
            ctx = "%s[%d] offset %d (%s, high watermark %d)" % (topic, p, off, fmt_code(code), hi)
            if part != p:
                soak.violation("log-partition", "%s: written for partition %d" % (ctx, part))
            if code in where:
                if kind == "idem":
                    soak.violation("log-duplicate", "%s: also at offset %d" % (ctx, where[code]))
                else:
                    dups += 1
            where.setdefault(code, off)
            if kind == "idem" and seq <= last_seq.get(pidx, -1):
                soak.violation("log-order", "%s: after seq %d of the same producer" % (
                    ctx, last_seq[pidx]))
            last_seq[pidx] = max(seq, last_seq.get(pidx, -1))
            if acked.get(off) not in (-1, code):
                soak.violation("log-mismatch", "%s: acknowledged there was %s" % (
                    ctx, fmt_code(acked.get(off))))
            if seen.get(off) not in (-1, code):
                soak.violation("log-mismatch", "%s: a consumer read %s there" % (
                    ctx, fmt_code(seen.get(off))))
        acked_offs = [o for o in range(len(acked)) if acked.get(o) != -1]
        soak.count("records_checked", len(acked_offs))
        missing = [o for o in acked_offs if o not in at]
        if missing:
            soak.violation("log-lost", "%s[%d]: %d acknowledged records missing, offsets %s..., "
                           "high watermark %d, %d records read" % (
                               topic, p, len(missing), missing[:10], hi, len(recs)))
        gone = [o for o in range(len(seen)) if seen.get(o) != -1 and o not in at]
        soak.count("consumer_reads_checked",
                   sum(1 for o in range(len(seen)) if seen.get(o) != -1))
        if gone:
            soak.violation("read-then-gone", "%s[%d]: consumers read offsets %s... that are not "
                           "in the log (high watermark %d)" % (topic, p, gone[:10], hi))
        extra = sorted(set(at) - set(acked_offs))
        if kind == "idem" and extra:
            soak.violation("log-extra", "%s[%d]: %d records in the log, %d acknowledged; "
                           "unacknowledged offsets %s" % (topic, p, len(recs), len(acked_offs),
                                                          extra[:10]))
        soak.count("plain_dups", dups)
        for group, (gtopics, _) in GROUPS.items():
            if topic not in gtopics:
                continue
            bits = soak.group_read.get((group, topic, p), bytearray())
            unread = [o for o in acked_offs if o >= len(bits) or not bits[o]]
            if unread:
                soak.violation("group-unread", "%s never read %d acknowledged records of "
                               "%s[%d], offsets %s..." % (group, len(unread), topic, p,
                                                          unread[:10]))
    return total


def replica_batches(data_dir, topic, p):
    """[(base offset, last offset, partition leader epoch, CRC)] of every batch in a
    replica's segments, in offset order."""
    import struct

    import kwire
    d = os.path.join(data_dir, "%s-%d" % (topic, p))
    out = []
    for name in sorted(f for f in os.listdir(d) if f.endswith(".log")):
        with open(os.path.join(d, name), "rb") as f:
            data = f.read()
        for pos, _, base, last in kwire.parse_batches(data):
            epoch, _, crc = struct.unpack_from(">iBI", data, pos + 12)
            out.append((base, last, epoch, crc))
    return out


def check_replicas(soak, md):
    """After the clean stop of every broker: every replica of every partition of the
    soak's topics (replicas as the final Metadata named them) holds the same batches — the
    same offsets, leader epochs and CRCs — as the others (a divergent copy in an ISR would
    lose or change records once it leads)."""
    by_id = {soak.broker_id(n): n for n in soak.brokers}
    checked = 0
    for t in md["topics"]:
        if t["topic"] not in TOPICS:
            continue
        for x in t["partitions"]:
            p = x["partition"]
            copies = {}
            for r in x["replicas"]:
                try:
                    copies[r["id"]] = replica_batches(by_id[r["id"]].p.data_dir, t["topic"], p)
                except OSError as e:
                    soak.violation("replica-missing", "%s[%d] on broker %d: %s" % (
                        t["topic"], p, r["id"], e))
            ref_id = min(copies) if copies else None
            for bid, batches in sorted(copies.items()):
                ref = copies[ref_id]
                if batches != ref:
                    i = next((k for k, (a, b) in enumerate(zip(batches, ref)) if a != b),
                             min(len(batches), len(ref)))
                    soak.violation("replica-diverged", "%s[%d]: broker %d's copy differs from "
                                   "broker %d's at batch %d: %s vs %s (%d and %d batches)" % (
                                       t["topic"], p, bid, ref_id, i, batches[i:i + 2],
                                       ref[i:i + 2], len(batches), len(ref)))
            checked += 1
    soak.count("replicas_compared", checked)


def main():
    os.environ.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1:"
                          "quarantine_size_mb=64")
    workdir = tempfile.mkdtemp(prefix="kpool-soak-rep-")
    soak = RepSoak(workdir)
    print("kpool soak (replicated: %d brokers, RF %d): %.1f minutes, seed %d, workdir %s, "
          "binary %s" % (N_BROKERS, RF, MINUTES, SEED, workdir, KPOOL_BIN), flush=True)
    members, producers, totals = [], [], {}
    watch = []
    try:
        soak.start_pool()
        soak.note("pool up (%s)" % ("network namespaces" if soak.lab else "loopback"))
        soak.create_topics()
        watch = [threading.Thread(target=soak.monitor, daemon=True, name="monitor"),
                 threading.Thread(target=single.committed_checker, args=(soak,), daemon=True,
                                  name="committed")]
        for t in watch:
            t.start()
        soak.wait_healthy("topics created", timeout=120)
        for idx, (codec, topics, conf) in PRODUCERS.items():
            producers.append(single.SoakProducer(soak, idx, codec, topics, conf))
        for group, (_, names) in GROUPS.items():
            for name, client in names:
                members.append(single.Member(soak, group, name, client))
        for m in members:
            m.start()
        for pr in producers:
            pr.start()
        end_time = time.time() + MINUTES * 60
        nemesis(soak, members, end_time)
        soak.note("nemesis over; healing, stopping producers, draining, verifying")
        heal_everything(soak)
        soak.wait_healthy("the end")
        soak.stop.set()
        for pr in producers:
            pr.join(60)
        for pr in producers:
            pr.finish(300)
        behind = single.wait_groups_caught_up(soak, 300)
        for g, t, p, what in behind[:20]:
            soak.violation("group-behind", "%s %s[%d] not caught up 300 s after the end: %s" % (
                g, t, p, what))
        for t, (n, kind, _) in TOPICS.items():
            totals[t] = check_final_log(soak, t, n, kind)
        for m in members:
            m.terminate()
        soak.wait_healthy("before the final stop")
        md = soak.metadata()
        soak.stop_watch.set()
        for t in watch:
            t.join(60)
        # a clean stop of every broker exits 0; then the copies are compared on disk
        for n in soak.brokers:
            soak.sigterm(n)
        soak.scan_logs()
        check_replicas(soak, md)
    except Exception:
        soak.violation("harness", traceback.format_exc())
    finally:
        soak.stop.set()
        soak.stop_watch.set()
        for m in members:
            try:
                if m.proc and m.proc.poll() is None:
                    m.proc.kill()
            except Exception:
                pass
        for n in soak.brokers:
            try:
                soak.resume(n)
                if n.p.proc and n.p.proc.poll() is None:
                    n.p.kill9()
            except Exception:
                pass
        if soak.etcd:
            soak.etcd.p.stop()
        if soak.lab:
            soak.lab.destroy()

    c = soak.counts
    print("\n==== kpool soak summary, replicated (seed %d, %d brokers, RF %d, %.1f minutes "
          "wall clock, %s)" % (SEED, N_BROKERS, RF, soak.elapsed() / 60,
                               "network namespaces" if soak.lab else "loopback"))
    print("runs: 1")
    print("faults injected: %d (%s)" % (sum(soak.faults.values()), ", ".join(
        "%s %d" % kv for kv in sorted(soak.faults.items()))))
    print("records: %d produced, %d acknowledged, %d delivery failures; %d acknowledged "
          "records checked in the final log (%s); %d duplicates from the plain producer's "
          "retries" % (c["produced"], c["acked"], c["delivery_failed"], c["records_checked"],
                       ", ".join("%s %d" % kv for kv in totals.items()), c["plain_dups"]))
    print("consumers: %d records read by group members (re-reads included), %d offsets read "
          "checked against the final log; %d member starts; %d committed-offset checks" % (
              c["consumed"], c["consumer_reads_checked"], c["member_starts"],
              c["commit_checks"]))
    print("pool: %d heals waited for, %d reassignments refused, %d broker error log lines; "
          "%d partitions' replicas compared on disk at the end" % (
              c["heal_waits"], c["reassign_refused"], c["broker_errors"],
              c["replicas_compared"]))
    if soak.violations:
        print("violations: %d (first 30):" % len(soak.violations))
        for v in soak.violations[:30]:
            print(v[:6000])
        print("workdir kept: %s" % workdir)
        return 1
    print("violations: 0")
    if KEEP:
        print("workdir kept: %s" % workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
