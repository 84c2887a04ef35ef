"""Replicated pools (issue 14): the log start offset across replicas, and followers that wait.

  - DeleteRecords through any broker (kafkajs' admin sends it to the leader, as Kafka's
    clients do; a non-leader answers NOT_LEADER_OR_FOLLOWER as Kafka's brokers do) moves the
    log start offset of every replica, followers included (they take the leader's from
    their fetch responses);
  - a follower whose end is below the leader's log start offset (it was down while the
    records it misses were deleted) starts its log over at the leader's log start and
    rejoins the ISR, holding exactly the leader's records;
  - a follower's fetch waiting at the leader (replica.fetch.wait.max.ms) is answered as soon
    as the leader has new data, so acks=all does not wait the fetch out.
"""
import json
import os
import subprocess

import pytest
from confluent_kafka import Producer

import clients
from pool_harness import Pool, wait_for
from test_pool import check_acked, consume_all, create_topic, topic_md, wait_isr


def produce(bootstrap, topic, first, n, timeout_s=60):
    """n acks=all records numbered from first: {value: (partition, offset)}; asserts every
    one acknowledged."""
    acked, errors = {}, []
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "message.timeout.ms": timeout_s * 1000})

    def report(err, m):
        if err is not None:
            errors.append(err)
        else:
            acked[m.value()] = (m.partition(), m.offset())
    for i in range(first, first + n):
        p.produce(topic, value=b"v-%06d" % i, on_delivery=report)
    assert p.flush(timeout_s + 30) == 0
    assert not errors, errors[:3]
    return acked


KAFKAJS_DELETE = r"""
const { Kafka, logLevel } = require('kafkajs')
const [broker, topic, offset] = [process.env.BROKER, process.env.TOPIC, process.env.OFFSET]
;(async () => {
  const admin = new Kafka({ brokers: [broker], logLevel: logLevel.NOTHING }).admin()
  await admin.connect()
  await admin.fetchTopicMetadata({ topics: [topic] }) // deleteTopicRecords needs it loaded
  await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset }] })
  const offsets = await admin.fetchTopicOffsets(topic)
  console.log(JSON.stringify(offsets))
  await admin.disconnect()
})().catch(e => { console.error(e); process.exit(1) })
"""


def kafkajs_delete_records(bootstrap, topic, offset):
    """kafkajs admin.deleteTopicRecords through `bootstrap` (one broker): partition 0's
    offsets afterwards, [{partition, offset, high, low}]."""
    if not clients.node_available():
        pytest.skip("kafkajs not installed (./scripts/install-deps.sh)")
    r = subprocess.run(["node", "-e", KAFKAJS_DELETE], cwd=clients.JS_DIR, capture_output=True,
                       text=True, timeout=60,
                       env=dict(os.environ, BROKER=bootstrap, TOPIC=topic, OFFSET=str(offset)))
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


def log_start(broker, topic):
    """The log start offset a broker checkpointed for topic-0 (0 before any deletion)."""
    try:
        with open(os.path.join(broker.data_dir, "%s-0" % topic, "log-start-offset")) as f:
            return int(f.read().strip())
    except FileNotFoundError:
        return 0


def by_id(pool, i):
    return next(b for b in pool.brokers if int(b.extra["broker.id"]) == i)


def test_delete_records_through_any_broker_reaches_every_replica(workdir):
    """kafkajs' DeleteRecords, bootstrapped at a broker that does not lead the partition,
    moves the log start offset to 40 on the leader and on both followers. (Fails on the old
    code: the followers kept their log start at 0, so a new leader had the records again.)"""
    pool = Pool(workdir, 3).start()
    try:
        create_topic(pool.bootstrap, "dr", 1, 3)
        leader = wait_isr(pool.bootstrap, "dr", 3)["partitions"][0]["leader"]
        acked = produce(pool.bootstrap, "dr", 0, 100)
        other = next(b for b in pool.brokers if int(b.extra["broker.id"]) != leader)
        offsets = kafkajs_delete_records(other.bootstrap, "dr", 40)
        assert offsets[0]["low"] == "40" and offsets[0]["high"] == "100", offsets
        for b in pool.brokers:
            wait_for(lambda: log_start(b, "dr") == 40, timeout=30,
                     what="log start 40 on broker %s" % b.extra["broker.id"])
        # a leader elected from the followers serves from 40 too
        by_id(pool, leader).stop()
        wait_for(lambda: (lambda t: t and t["partitions"][0]["leader"] not in (-1, leader))(
            topic_md(other.bootstrap, "dr")), timeout=30, what="a new leader")
        stored = consume_all(other.bootstrap, "dr", 60)
        assert sorted(off for _, off in stored) == list(range(40, 100))
        check_acked({v: po for v, po in acked.items() if po[1] >= 40}, stored)
    finally:
        pool.stop()


def test_follower_below_the_leaders_log_start_starts_over(workdir):
    """A follower is stopped, 100 more records come and the first 150 are deleted; when it
    returns its end (100) is below the leader's log start (150): it drops its log, starts at
    150, catches up and rejoins the ISR; alone in the pool it then serves exactly 150..199.
    (Fails on the old code: its fetches got OFFSET_OUT_OF_RANGE for ever, so it never
    rejoined the ISR.)"""
    pool = Pool(workdir, 3).start()
    try:
        create_topic(pool.bootstrap, "lso", 1, 3)
        leader = wait_isr(pool.bootstrap, "lso", 3)["partitions"][0]["leader"]
        acked = produce(pool.bootstrap, "lso", 0, 100)
        lagger = next(b for b in pool.brokers if int(b.extra["broker.id"]) != leader)
        lid = int(lagger.extra["broker.id"])
        lagger.stop()
        rest = [b for b in pool.brokers if b is not lagger]
        live = ",".join(b.bootstrap for b in rest)
        wait_isr(live, "lso", 2)
        acked.update(produce(live, "lso", 100, 100))
        offsets = kafkajs_delete_records(rest[0].bootstrap, "lso", 150)
        assert offsets[0]["low"] == "150", offsets
        lagger.start(timeout=60)
        wait_isr(pool.bootstrap, "lso", 3, timeout=60)
        assert log_start(lagger, "lso") == 150
        assert "below the leader's log start" in lagger.log()
        # its own copy: alone, it leads and serves the leader's records from 150
        for b in rest:
            b.stop()
        wait_for(lambda: (lambda t: t and t["partitions"][0]["leader"] == lid)(
            topic_md(lagger.bootstrap, "lso")), timeout=40, what="the lagger leading alone")
        stored = consume_all(lagger.bootstrap, "lso", 50)
        assert sorted(off for _, off in stored) == list(range(150, 200))
        check_acked({v: po for v, po in acked.items() if po[1] >= 150}, stored)
    finally:
        pool.stop()


def test_waiting_follower_fetch_is_answered_when_data_arrives(workdir):
    """With replica.fetch.wait.max.ms=20000 the followers' fetches wait up to 20 s at the
    leader: acks=all records must still be acknowledged at once, one after another (each
    within a 15 s delivery timeout). (Fails on the old code: an append on the leader did not
    wake its followers' waiting fetches, so every acks=all write waited the fetch out —
    with Kafka's default 500 ms that was ~2,000 msg/s on one partition.)"""
    pool = Pool(workdir, 3, extra={"replica.fetch.wait.max.ms": "20000"}).start()
    try:
        create_topic(pool.bootstrap, "wake", 1, 3)
        wait_isr(pool.bootstrap, "wake", 3)
        for i in range(5):  # one at a time: each waits for both followers to fetch it
            produce(pool.bootstrap, "wake", i, 1, timeout_s=15)
    finally:
        pool.stop()


def test_followers_copy_before_the_leaders_fsync_and_acks_wait_for_it(workdir):
    """Durable mode: a leader serves its followers what it has written, before its own
    fsync, so that the three fsyncs run at once instead of the followers' after the
    leader's. With every fsync of the leader stalled (KPOOL_FS_FAULTS "stall": a disk that
    does not answer), an acks=all record reaches both followers' logs, but it is not
    acknowledged: the leader's own copy is not on its disk yet, and the high watermark
    counts a replica only once its copy is. Once the leader's disk answers, the record is
    acknowledged at offset 0 and read back. (Fails on the old code: the leader served
    followers only what it had fsynced, so their logs stayed empty while it stalled.)"""
    pool = Pool(workdir, 3)
    faults = {}
    for i, b in enumerate(pool.brokers):
        faults[i + 1] = os.path.join(workdir, "fs-faults-%d" % (i + 1))
        open(faults[i + 1], "w").close()
        b.env = {"KPOOL_FS_FAULTS": faults[i + 1]}
    pool.start()
    p = None
    try:
        create_topic(pool.bootstrap, "early", 1, 3)
        wait_isr(pool.bootstrap, "early", 3)
        leader = topic_md(pool.bootstrap, "early")["partitions"][0]["leader"]
        lb = pool.brokers[leader - 1]
        with open(faults[leader], "w") as f:
            f.write("stall")
        wait_for(lambda: "KPOOL_FS_FAULTS: now stall" in lb.log(), timeout=30,
                 what="the leader's fsyncs stalled")
        acked, errors = [], []
        p = Producer({"bootstrap.servers": pool.bootstrap, "acks": "all",
                      "enable.idempotence": True, "message.timeout.ms": 120000})

        def report(err, m):
            (errors if err is not None else acked).append(err or m.offset())
        p.produce("early", value=b"written-not-fsynced", partition=0, on_delivery=report)
        p.poll(0)

        def follower_has_it(b):
            d = os.path.join(b.data_dir, "early-0")
            return any(n.endswith(".log") and b"written-not-fsynced" in
                       open(os.path.join(d, n), "rb").read() for n in os.listdir(d))
        followers = [b for i, b in enumerate(pool.brokers) if i + 1 != leader]
        for b in followers:
            wait_for(lambda: follower_has_it(b), timeout=60,
                     what="the record in follower %s's log" % b.extra["broker.id"])
        p.poll(1.0)
        assert not acked and not errors, (acked, errors)
        assert "KPOOL_FS_FAULTS: now off" not in lb.log()  # still stalled all along
        with open(faults[leader], "w") as f:
            f.write("")
        assert p.flush(90) == 0
        assert acked == [0] and not errors, (acked, errors)
        assert consume_all(pool.bootstrap, "early", 1) == {(0, 0): b"written-not-fsynced"}
    finally:
        for f in faults.values():  # a stalled disk would hold up the brokers' shutdown
            open(f, "w").close()
        pool.stop()


def test_follower_stops_without_waiting_out_its_parked_fetch(workdir):
    """replica.fetch.wait.max.ms=30000: right after a record is acknowledged each follower's
    next fetch parks at the leader for up to 30 s. A follower told to stop (SIGTERM) shuts
    its fetch connections down and exits at once, not when that fetch returns. (Fails on the
    old code: the stop joined the fetch threads, each blocked in its parked fetch, so it
    took ~30 s, over the 20 s this test allows.)"""
    pool = Pool(workdir, 3, extra={"replica.fetch.wait.max.ms": "30000"}).start()
    try:
        create_topic(pool.bootstrap, "park", 1, 3)
        wait_isr(pool.bootstrap, "park", 3)
        leader = topic_md(pool.bootstrap, "park")["partitions"][0]["leader"]
        produce(pool.bootstrap, "park", 0, 1, timeout_s=15)
        follower = next(b for b in pool.brokers if int(b.extra["broker.id"]) != leader)
        follower.stop(timeout=20)
    finally:
        pool.stop()


@pytest.mark.parametrize("where", ["broker", "topic"])
def test_page_cache_topics_replicate(workdir, where):
    """Page-cache mode (log.flush.policy=pagecache for the brokers, or flush.policy=pagecache
    for one topic of a durable pool) in a replicated pool: acks=all records are acknowledged,
    every replica stays in the ISR, and they are read back. (Fails on the old code: a
    follower's append in page-cache mode called the log's HWM callback with the partition's
    lock held, and the callback took that lock: the follower's fetch thread deadlocked on its
    first record, holding the lock every Metadata request needs, so the broker stopped
    answering and nothing was acknowledged.)"""
    extra = {"log.flush.policy": "pagecache"} if where == "broker" else None
    pool = Pool(workdir, 3, extra=extra).start()
    try:
        cfg = {"flush.policy": "pagecache"} if where == "topic" else None
        create_topic(pool.bootstrap, "pc", 2, 3, cfg)
        wait_isr(pool.bootstrap, "pc", 3)
        acked = produce(pool.bootstrap, "pc", 0, 300, timeout_s=30)
        wait_isr(pool.bootstrap, "pc", 3)
        check_acked(acked, consume_all(pool.bootstrap, "pc", 300))
    finally:
        pool.stop()


def test_bad_replica_fetch_wait_is_refused(workdir):
    """replica.fetch.wait.max.ms outside 0..30000 is a clear startup error."""
    pool = Pool(workdir, 1, extra={"replica.fetch.wait.max.ms": "99999999"})
    pool.etcd.start()
    try:
        b = pool.brokers[0]
        b.extra["metadata.etcd.endpoints"] = pool.etcd.url
        p = subprocess.run(b.args(), capture_output=True, text=True, timeout=60)
        assert p.returncode != 0 and "replica.fetch.wait.max.ms" in p.stdout + p.stderr
    finally:
        pool.etcd.stop()


def broker_child_pid(root, k):
    """The pid of `kpool up`'s broker k (a `kpool broker` child whose data is root/.../broker-k)."""
    want = ("/broker-%d" % k).encode()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if len(args) > 1 and args[1] == b"broker" and any(
                a.startswith(b"log.dirs=" + root.encode()) and a.endswith(want) for a in args):
            return int(d)
    return None


KUBECTL = os.environ.get("KUBECTL") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "tools", "kubectl-v32",
    "kubectl")


def kubectl_brokers(up, pool):
    """The Pool's status.controller and status.brokers as real kubectl's jsonpath prints them
    (through the kubeconfig `kpool up` wrote): (controller or None, {id: (state, address,
    is the controller, rack)})."""
    p = subprocess.run(
        [KUBECTL, "get", "pool", pool, "-o",
         'jsonpath={.status.controller}{"\\n"}{range .status.brokers[*]}{.id} {.state} '
         '{.address} {.controller} {.rack}{"\\n"}{end}'],
        env=dict(os.environ, KUBECONFIG=os.path.join(up.data_dir, "kubeconfig")),
        capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split("\n")
    brokers = {}
    for line in lines[1:]:
        if line.strip():
            f = line.split(" ")
            brokers[int(f[0])] = (f[1], f[2], f[3], f[4])
    return (int(lines[0]) if lines[0] else None), brokers


DOCS_API = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "api.md")


def pool_kubectl_recipe(up, pool):
    """Runs the kubectl lines docs/api.md shows for a Pool's brokers, as written, against
    `pool` (the docs name the pool `dev`, `kpool up`'s default; only that name is changed),
    through the kubeconfig `kpool up` wrote: the outputs of the lines, in order."""
    import re
    text = open(DOCS_API).read()
    start = text.index("A **Pool's** status also lists its brokers")
    block = text[text.index("```\n", text.index("With kubectl:", start)) + 4:]
    lines = [l.strip() for l in block[:block.index("```")].splitlines() if l.strip()]
    assert len(lines) == 3 and all(l.startswith("kubectl ") for l in lines), lines
    env = dict(os.environ, KUBECONFIG=os.path.join(up.data_dir, "kubeconfig"),
               PATH=os.path.dirname(os.path.abspath(KUBECTL)) + ":" + os.environ["PATH"])
    outs = []
    for line in lines:
        cmd = re.sub(r"(pool |pool/)dev( |$)", r"\g<1>%s\2" % pool, line)
        p = subprocess.run(["bash", "-e", "-c", cmd], env=env, capture_output=True, text=True,
                           timeout=90)
        assert p.returncode == 0, (cmd, p.stderr)
        outs.append(p.stdout)
    return outs


def test_pool_status_lists_brokers_and_topic_reports_replication_drift():
    """`kpool up --brokers 3 --pool nav-dev`: the Pool's status lists its three brokers Up
    (address, partitions led, replicas) and which is the controller (status.controller, and
    controller: true on that broker) and their rack, as kubectl's jsonpath shows it; a broker
    kill -9'ed shows as Down (no address or rack, not the controller) with the pool's partitions
    under-replicated. The NAIS example Topic (replication 3) whose topic is then
    recreated in the pool with replication 2, behind the control plane's back, reports the
    drift in its status (it cannot be repaired: replicas are not reassigned). (Fails on the
    old code: the Pool's status had no brokers, and the Topic said nothing of the replica
    count; before the controller was reported: no status.controller.)"""
    from harness import KpoolUp
    from confluent_kafka.admin import NewTopic
    import signal
    import time
    import yaml
    up = KpoolUp(sets=["control.resync.interval.ms=1000", "broker.rack=rack-a"],
                 args=["--brokers", "3", "--pool", "nav-dev"])
    up.start(timeout=120)
    try:
        def pool_status():
            out = up.kpool("get", "pool", "nav-dev", "-o", "yaml").stdout
            return (yaml.safe_load(out) or {}).get("status") or {}

        def brokers_in(states):
            st = pool_status()
            got = {b["id"]: b["state"] for b in st.get("brokers", [])}
            return st if got == states else None
        up.kpool("apply", "-f", os.path.join(os.path.dirname(__file__), "..", "..", "examples",
                                             "topic-replicated.yaml"))
        wait_for(lambda: "RolloutComplete" in up.kpool("get", "topic", "-n", "myteam").stdout,
                 timeout=90, what="the topic rolled out")
        # (internal topics such as __consumer_offsets may be created meanwhile: their
        # partitions are offline for a moment, so the healthy status is waited for too)
        st = wait_for(lambda: (lambda s: s if s and s["underReplicatedPartitions"] == 0 and
                               s["offlinePartitions"] == 0 else None)(
            brokers_in({1: "Up", 2: "Up", 3: "Up"})), timeout=60, interval=0.5,
            what="three brokers Up and every partition whole in the Pool's status")
        assert all(b["address"].startswith("127.0.0.1:") and b["replicas"] >= 1
                   for b in st["brokers"]), st
        assert st["underReplicatedPartitions"] == 0 and st["offlinePartitions"] == 0, st
        controller = up.admin.list_topics(timeout=30).controller_id  # Metadata's

        def controller_shown(want_states):
            ctl, brokers = kubectl_brokers(up, "nav-dev")
            ok = ({i: b[0] for i, b in brokers.items()} == want_states and ctl is not None and
                  want_states.get(ctl) == "Up" and
                  all((b[2] == "true") == (i == ctl) for i, b in brokers.items()))
            return (ctl, brokers) if ok else None
        ctl, brokers = wait_for(lambda: controller_shown({1: "Up", 2: "Up", 3: "Up"}),
                                timeout=60, interval=0.5, what="the controller in kubectl's view")
        assert ctl == controller, (ctl, controller)
        assert all(b[1].startswith("127.0.0.1:") and b[3] == "rack-a"
                   for b in brokers.values()), brokers
        # the recipe docs/api.md shows gives the same
        shown_ctl, shown_brokers, _waited = pool_kubectl_recipe(up, "nav-dev")
        assert shown_ctl == str(ctl), shown_ctl
        assert sorted(shown_brokers.splitlines()) == sorted(
            "%d Up %s" % (i, b[1]) for i, b in brokers.items()), shown_brokers
        pid = broker_child_pid(up.root, 3)
        assert pid, "broker 3's process not found"
        os.kill(pid, signal.SIGKILL)
        # (the ISRs shrink a moment after the broker leaves Metadata: both are waited for)
        st = wait_for(lambda: (lambda s: s if s and s["underReplicatedPartitions"] >= 1 else None)(
            brokers_in({1: "Up", 2: "Up", 3: "Down"})), timeout=60, interval=0.5,
            what="broker 3 Down and partitions under-replicated in the Pool's status")
        assert "2 of 3 brokers up" in st["message"], st
        assert "address" not in st["brokers"][-1]
        # the controller is one of the two left (it moves if it was broker 3)
        ctl, brokers = wait_for(lambda: controller_shown({1: "Up", 2: "Up", 3: "Down"}),
                                timeout=60, interval=0.5,
                                what="broker 3 Down and a live controller in kubectl's view")
        assert ctl in (1, 2) and brokers[3][2] == "false" and brokers[3][3] == "", (ctl, brokers)

        # the replica count changed behind the control plane's back
        admin = up.admin
        for _ in range(10):
            for f in admin.delete_topics(["myteam.mytopic"]).values():
                f.result(30)
            try:
                for f in admin.create_topics([NewTopic("myteam.mytopic", 1, 2)]).values():
                    f.result(30)
                break
            except Exception:  # the control plane recreated it first: again
                time.sleep(0.5)

        def drift():
            t = yaml.safe_load(up.kpool("get", "topic", "mytopic", "-n", "myteam", "-o",
                                        "yaml").stdout)
            s = t.get("status") or {}
            return s if s.get("replicationInPool") == 2 else None
        s = wait_for(drift, timeout=60, interval=0.5, what="the Topic's replication drift")
        assert s["message"].startswith("replication drift: the pool's topic has replication 2, "
                                       "spec.config.replication is 3"), s["message"]
    finally:
        up.stop()
