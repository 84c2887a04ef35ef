"""The control plane under `kpool up` (issue 6): Topic and Stream reconciliation, drift repair,
deletion semantics, API security and performance, against a real embedded pool.

One `kpool up` per module (KpoolUp, fixture `up`): a temp data dir, a port offset whose four
ports (Kafka 9093, API 8080, registry 8081, metrics 9600, + K) are free, $KPOOL_CONFIG in a
temp dir, control.resync.interval.ms=1000. It is stopped with SIGINT at teardown: exit 0 and
no sanitizer report, or the module's last test fails.

Pool state is ALWAYS checked through Kafka admin clients connected as the super user
(D/pki/admin.crt, User:CN=kpool-admin), never through the control plane's store: topics,
partitions and configs with confluent-kafka's AdminClient; ACLs with kafka-python's
KafkaAdminClient, because the confluent-kafka on Debian 12 (1.7.0) has no ACL admin API.
The resources themselves (status) are read over the HTTP API.

Acceptance criteria covered:
  * examples/topic.yaml (the NAIS docs' example) applied unchanged with `kpool apply -f`:
    RolloutComplete, fullyQualifiedName myteam.mytopic, the topic in the pool with its
    partitions and each config as a topic override (source DYNAMIC_TOPIC_CONFIG);
  * non-default config (partitions 3, retentionHours 24, cleanupPolicy compact,delete,
    maxMessageBytes 2000000, minCleanableDirtyRatioPercent "30%") maps to the Kafka configs;
    no false drift on later resyncs; partitions 3 -> 5 grows the topic, 5 -> 2 is
    FailedPrepare naming the field; an invalid change to a synced topic changes nothing;
  * invalid specs (partitions 0, replication above the pool max, cleanupPolicy foo, unknown
    pool, missing acl, bad access) are FailedPrepare naming the field, the allowed values and
    the value given, and the topic never appears in the pool;
  * drift made directly in the pool (topic deleted, config altered, stray ACL added) is
    repaired by the next resync and recorded in status.message ("drift repaired ...");
  * deleting a Topic without the annotation keeps topic and messages; re-applying
    re-attaches; with kafka.nais.io/removeDataWhenResourceIsDeleted: "true" the topic goes;
  * API security over raw HTTP: 401 without/with a bad token, team tokens confined to their
    namespace (403 elsewhere and for Pools; pools readable), unknown fields kept and
    reported in Warning headers, 409 on a stale resourceVersion, 422 on an invalid name;
  * Stream: fullyQualifiedTopicPrefix <ns>.<name>_stream_, RolloutComplete; deleting it
    removes the prefixed topics from the pool (and nothing else);
  * the API and the health endpoint keep serving when the process holds more than
    FD_SETSIZE descriptors (a topic with 1,100 partitions);
  * performance (KPOOL_PERF=1 only, its own `kpool up`): apply -> RolloutComplete latency
    (median of 5) and the time to apply 1,000 topics in one file until all are
    RolloutComplete, printed, not asserted:
      cd tests/integration && KPOOL_PERF=1 KPOOL_BIN=... python3 -m pytest -q -s \
          test_control.py -k perf
"""
import http.client
import json
import os
import statistics
import time
import urllib.request

import pytest
import yaml
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import ConfigResource, ConfigSource

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE_TOPIC = os.path.join(HERE, "..", "..", "examples", "topic.yaml")
RESYNC_MS = 1000
TOPIC_CONFIG = ConfigSource.DYNAMIC_TOPIC_CONFIG.value
TOPICS_PATH = "/apis/kafka.nais.io/v1/namespaces/%s/topics"
STREAMS_PATH = "/apis/kafka.nais.io/v1/namespaces/%s/streams"

# kafka-python 2.0.2 builds its SSL context with the deprecated ssl.PROTOCOL_TLS
pytestmark = pytest.mark.filterwarnings("ignore:ssl.PROTOCOL_TLS is deprecated")


class KpoolUp(harness.KpoolUp):
    """A `kpool up` process: the embedded pool `dev` plus the control plane API."""

    remove_on_stop = True

    def __init__(self, resync_ms=RESYNC_MS, settings=None):
        sets = ["control.resync.interval.ms=%d" % resync_ms]
        sets += ["%s=%s" % kv for kv in (settings or {}).items()]  # more --set key=value
        super().__init__(sets=sets, prefix="kpool-it6-")

    @property
    def metrics(self):
        return self.metrics_url

    def api(self, method, path, body=None):
        """As the admin."""
        return self.http(method, path, body, token=self.token)

    def apply(self, tmp_path, *docs, name="r.yaml"):
        """`kpool apply -f` of the documents (dicts, as one multi-document YAML file)."""
        f = tmp_path / name
        f.write_text(yaml.safe_dump_all(list(docs), sort_keys=False))
        return self.kpool("apply", "-f", str(f))

    def get(self, plural_path, ns, name):
        code, _, obj = self.api("GET", plural_path % ns + "/" + name)
        assert code in (200, 404), (code, obj)
        return obj if code == 200 else None

    def wait_status(self, ns, name, states, timeout=30, path=TOPICS_PATH, pred=None, poll=0.05):
        """Waits until the object's status reflects its current generation (when the kind
        reports observedGeneration) and synchronizationState is one of states (and pred)."""
        states = (states,) if isinstance(states, str) else tuple(states)
        deadline = time.time() + timeout
        obj = None
        while time.time() < deadline:
            obj = self.get(path, ns, name)
            st = (obj or {}).get("status") or {}
            gen = (obj or {}).get("metadata", {}).get("generation")
            fresh = "observedGeneration" not in st or st["observedGeneration"] == gen
            if fresh and st.get("synchronizationState") in states and (pred is None or pred(obj)):
                return obj
            time.sleep(poll)
        raise AssertionError("%s/%s did not reach %s in %ss; last: %s\n%s" % (
            ns, name, states, timeout, json.dumps(obj, indent=1), self.log()[-3000:]))

    def wait_gone(self, path, ns, name, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.get(path, ns, name) is None:
                return
            time.sleep(0.05)
        raise AssertionError("%s/%s still exists after %ss: %s" % (
            ns, name, timeout, self.get(path, ns, name)))

    # ---- the pool, through Kafka admin clients as the super user ----

    def topic_configs(self, topic):
        """{key: (value, source)} of the topic as the pool describes it."""
        fs = self.admin.describe_configs([ConfigResource("topic", topic)])
        (f,) = fs.values()
        return {k: (e.value, e.source) for k, e in f.result(timeout=20).items()}

    def replicas(self, topic):
        md = self.admin.list_topics(topic=topic, timeout=20)
        return {p: len(pm.replicas) for p, pm in md.topics[topic].partitions.items()}

    def topic_acls(self, topic):
        return self.describe_acls("TOPIC", topic, "LITERAL")

    def wait_pool(self, pred, what, timeout=20):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = pred()
            if last:
                return last
            time.sleep(0.1)
        raise AssertionError("pool: %s not true in %ss\n%s" % (what, timeout, self.log()[-3000:]))

    def produce(self, topic, values):
        p = Producer(dict(self.ssl_conf(), acks="all"))
        for v in values:
            p.produce(topic, v.encode())
        assert p.flush(30) == 0

    def consume_all(self, topic, expect, timeout=30):
        """The values of partition 0, from the beginning, once `expect` have arrived."""
        c = Consumer(dict(self.ssl_conf(), **{"group.id": "it6-reader",
                                              "enable.auto.commit": False}))
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        out = []
        deadline = time.time() + timeout
        try:
            while len(out) < expect and time.time() < deadline:
                m = c.poll(0.5)
                if m is None or m.error():
                    continue
                out.append(m.value().decode())
        finally:
            c.close()
        return out


up = harness.up_fixture(KpoolUp)


def topic_doc(ns, name, config=None, acl=None, pool="dev", annotations=None, **spec_extra):
    spec = {"pool": pool}
    if config is not None:
        spec["config"] = config
    if acl is None:
        acl = [{"team": ns, "application": "app", "access": "readwrite"}]
    spec["acl"] = acl
    spec.update(spec_extra)
    if pool is None:
        del spec["pool"]
    md = {"name": name, "namespace": ns}
    if annotations:
        md["annotations"] = annotations
    return {"apiVersion": "kafka.nais.io/v1", "kind": "Topic", "metadata": md, "spec": spec}


# --------------------------------------------------------------------------- topics


def test_nais_example_topic_applied_unchanged(up):
    p = up.kpool("apply", "-f", EXAMPLE_TOPIC)
    assert p.stdout == "topic.kafka.nais.io/mytopic created\n"
    obj = up.wait_status("myteam", "mytopic", "RolloutComplete")
    st = obj["status"]
    assert st["fullyQualifiedName"] == "myteam.mytopic"
    assert st["errors"] == []
    assert "synchronizationTime" in st and "synchronizationHash" in st
    assert up.pool_topics().get("myteam.mytopic") == 1
    assert up.replicas("myteam.mytopic") == {0: 1}
    cfg = up.topic_configs("myteam.mytopic")
    want = {"cleanup.policy": "delete", "min.insync.replicas": "1", "retention.bytes": "-1",
            "retention.ms": str(168 * 3600 * 1000)}
    for k, v in want.items():
        assert cfg[k] == (v, TOPIC_CONFIG), (k, cfg[k])
    # applying the same file again changes nothing
    p = up.kpool("apply", "-f", EXAMPLE_TOPIC)
    assert p.stdout == "topic.kafka.nais.io/mytopic unchanged\n"


def test_non_default_config_maps_to_kafka_and_partitions_only_grow(up, tmp_path):
    ns, name, fqn = "team-cfg", "tuned", "team-cfg.tuned"
    config = {"partitions": 3, "replication": 1, "minimumInSyncReplicas": 1,
              "retentionHours": 24, "cleanupPolicy": "compact,delete",
              "maxMessageBytes": 2000000, "minCleanableDirtyRatioPercent": "30%"}
    up.apply(tmp_path, topic_doc(ns, name, config))
    obj = up.wait_status(ns, name, "RolloutComplete")
    assert obj["status"]["fullyQualifiedName"] == fqn
    assert up.pool_topics()[fqn] == 3
    cfg = up.topic_configs(fqn)
    assert cfg["retention.ms"] == ("86400000", TOPIC_CONFIG)
    assert cfg["cleanup.policy"] == ("compact,delete", TOPIC_CONFIG)
    assert cfg["max.message.bytes"] == ("2000000", TOPIC_CONFIG)
    assert cfg["min.insync.replicas"] == ("1", TOPIC_CONFIG)
    assert float(cfg["min.cleanable.dirty.ratio"][0]) == pytest.approx(0.30)
    assert cfg["min.cleanable.dirty.ratio"][1] == TOPIC_CONFIG
    # defaults of the fields not given are set too (SPEC 2.1)
    assert cfg["segment.ms"] == (str(168 * 3600 * 1000), TOPIC_CONFIG)
    assert cfg["retention.bytes"] == ("-1", TOPIC_CONFIG)

    # later resyncs find nothing to repair: no false drift, no status rewrite
    rv = obj["metadata"]["resourceVersion"]
    time.sleep(2.5 * RESYNC_MS / 1000)
    again = up.get(TOPICS_PATH, ns, name)
    assert "drift" not in again["status"]["message"], again["status"]
    assert again["metadata"]["resourceVersion"] == rv

    # 3 -> 5 partitions grows the topic
    config["partitions"] = 5
    up.apply(tmp_path, topic_doc(ns, name, config))
    up.wait_status(ns, name, "RolloutComplete")
    assert up.pool_topics()[fqn] == 5

    # 5 -> 2 is refused, the pool keeps 5
    config["partitions"] = 2
    up.apply(tmp_path, topic_doc(ns, name, config))
    obj = up.wait_status(ns, name, "FailedPrepare")
    msg = obj["status"]["message"]
    assert "spec.config.partitions" in msg and "from 5 to 2" in msg, msg
    assert any("spec.config.partitions" in e for e in obj["status"]["errors"])
    assert up.pool_topics()[fqn] == 5

    # an invalid change to a synced topic changes nothing in the pool, not even the valid
    # parts of it
    config.update(partitions=5, retentionHours=48, cleanupPolicy="foo")
    up.apply(tmp_path, topic_doc(ns, name, config))
    obj = up.wait_status(ns, name, "FailedPrepare")
    assert "spec.config.cleanupPolicy" in obj["status"]["message"]
    cfg = up.topic_configs(fqn)
    assert cfg["retention.ms"] == ("86400000", TOPIC_CONFIG)
    assert cfg["cleanup.policy"] == ("compact,delete", TOPIC_CONFIG)
    assert up.pool_topics()[fqn] == 5


# name -> (spec changes, substrings the status message must contain)
INVALID = {
    "zero-partitions": ({"config": {"partitions": 0}},
                        ["spec.config.partitions", "partitions: 0 is outside", "1..1000000"]),
    "too-replicated": ({"config": {"replication": 3}},
                       ["spec.config.replication", "replication: 3 is outside", "pool dev",
                        "(1..1)"]),
    "bad-cleanup": ({"config": {"cleanupPolicy": "foo"}},
                    ["spec.config.cleanupPolicy", "delete, compact, compact,delete", "(got foo)"]),
    "unknown-pool": ({"pool": "nope"}, ["spec.pool", '"nope"', "does not exist", "dev"]),
    "missing-acl": ({"acl": None}, ["spec.acl", "required"]),
    "bad-access": ({"acl": [{"team": "team-bad", "application": "app", "access": "rw"}]},
                   ["spec.acl[0].access", "read, write, readwrite", "(got rw)"]),
    "misr-above-replication": ({"config": {"replication": 1, "minimumInSyncReplicas": 2}},
                               ["spec.config.minimumInSyncReplicas", "2 is larger than "
                                "replication (1)"]),
    "huge-message": ({"config": {"maxMessageBytes": 5242881}},
                     ["spec.config.maxMessageBytes", "5242881 is outside", "1..5242880"]),
}


def test_invalid_specs_fail_prepare_and_change_nothing(up, tmp_path):
    ns = "team-bad"
    docs = []
    for name, (change, _) in INVALID.items():
        d = topic_doc(ns, name)
        for k, v in change.items():
            if v is None:
                del d["spec"][k]
            else:
                d["spec"][k] = v
        docs.append(d)
    up.apply(tmp_path, *docs)
    for name, (_, words) in INVALID.items():
        st = up.wait_status(ns, name, ("FailedPrepare", "RolloutComplete"))["status"]
        assert st["synchronizationState"] == "FailedPrepare", (name, st)
        assert st["fullyQualifiedName"] == "%s.%s" % (ns, name)
        assert st["message"].startswith("invalid spec, nothing was changed in the pool: "), st
        for w in words:
            assert w in st["message"], (name, w, st["message"])
        assert st["errors"] and any(words[0] in e for e in st["errors"]), (name, st)
    # a few resyncs later the pool still has none of them, and no ACLs on their names
    time.sleep(1.5 * RESYNC_MS / 1000)
    topics = up.pool_topics()
    for name in INVALID:
        assert "%s.%s" % (ns, name) not in topics
        assert up.topic_acls("%s.%s" % (ns, name)) == []
        st = up.get(TOPICS_PATH, ns, name)["status"]
        assert st["synchronizationState"] == "FailedPrepare", st
    # fixing the spec rolls it out
    up.apply(tmp_path, topic_doc(ns, "bad-cleanup", {"cleanupPolicy": "compact"}))
    up.wait_status(ns, "bad-cleanup", "RolloutComplete")
    assert up.topic_configs(ns + ".bad-cleanup")["cleanup.policy"] == ("compact", TOPIC_CONFIG)


# --------------------------------------------------------------------------- drift


def wait_repaired(up, ns, name, what, timeout=15):
    return up.wait_status(ns, name, "RolloutComplete", timeout=timeout,
                          pred=lambda o: "drift repaired" in o["status"]["message"]
                          and what in o["status"]["message"])


def test_drift_in_the_pool_is_repaired_by_resync(up, tmp_path):
    from kafka.admin import (ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                             ResourcePattern, ResourceType)
    ns, name, fqn = "team-drift", "drifty", "team-drift.drifty"
    up.apply(tmp_path, topic_doc(ns, name, {"partitions": 2, "retentionHours": 10}))
    st = up.wait_status(ns, name, "RolloutComplete")["status"]
    assert "drift" not in st["message"]
    want_retention = str(10 * 3600 * 1000)
    assert up.topic_configs(fqn)["retention.ms"] == (want_retention, TOPIC_CONFIG)

    # 1. the topic is deleted directly in the pool -> recreated
    fs = up.admin.delete_topics([fqn], operation_timeout=20)
    fs[fqn].result(timeout=20)
    # (not asserted missing now: the next resync may already have recreated it)
    st = wait_repaired(up, ns, name, "missing in the pool and was recreated")["status"]
    assert up.wait_pool(lambda: up.pool_topics().get(fqn) == 2, "topic recreated")
    assert up.topic_configs(fqn)["retention.ms"] == (want_retention, TOPIC_CONFIG)
    first = st["message"]

    # 2. a config altered directly in the pool (AlterConfigs replaces every override) -> the
    #    whole desired set is back
    res = ConfigResource("topic", fqn, set_config={"retention.ms": "1000"})
    for f in up.admin.alter_configs([res]).values():
        f.result(timeout=20)
    st = wait_repaired(up, ns, name, "configs changed in the pool were reverted")["status"]
    assert st["message"] != first
    cfg = up.topic_configs(fqn)
    assert cfg["retention.ms"] == (want_retention, TOPIC_CONFIG)
    assert cfg["cleanup.policy"] == ("delete", TOPIC_CONFIG)
    second = st["message"]

    # 3. a stray ACL on the topic, added directly in the pool -> removed (the control plane
    #    owns the topic's ACLs; no service user matches this one)
    stray = ACL(principal="User:CN=intruder", host="*", operation=ACLOperation.READ,
                permission_type=ACLPermissionType.ALLOW,
                resource_pattern=ResourcePattern(ResourceType.TOPIC, fqn,
                                                 ACLResourcePatternType.LITERAL))
    r = up.kadmin.create_acls([stray])
    assert not r["failed"] and len(r["succeeded"]) == 1, r
    st = wait_repaired(up, ns, name, "ACLs repaired (0 added, 1 removed)")["status"]
    assert st["message"] != second
    assert up.topic_acls(fqn) == []
    assert up.pool_topics()[fqn] == 2


def test_drift_met_by_a_failed_pass_is_still_reported(tmp_path):
    """A Topic in sync whose topic is deleted in the pool while the pool cannot be reached:
    the pass then fails (FailedSynchronization), and the one that succeeds after it recreates
    the topic. That is still drift, and the status says so. Before, a failed pass made the
    Topic look as if it had never been in sync: the recreation read "Topic synchronized"."""
    k = KpoolUp(resync_ms=600000).start()  # no resync: only the passes this test causes
    try:
        pools = "/apis/kpool.dev/v1/pools"
        code, _, dev = k.api("GET", pools + "/dev")
        assert code == 200, dev
        spec = {key: v for key, v in dev["spec"].items() if key != "embedded"}
        side = {"apiVersion": dev["apiVersion"], "kind": "Pool", "metadata": {"name": "side"},
                "spec": spec}
        code, _, body = k.api("POST", pools, side)
        assert code == 201, body
        ns, name, fqn = "team-gap", "gappy", "team-gap.gappy"
        k.apply(tmp_path, topic_doc(ns, name, {"partitions": 2}, pool="side"))
        k.wait_status(ns, name, "RolloutComplete")
        k.admin.delete_topics([fqn], operation_timeout=20)[fqn].result(timeout=20)

        def set_bootstrap(addr):
            code, _, p = k.api("GET", pools + "/side")
            assert code == 200, p
            p["spec"]["bootstrapServers"] = addr
            code, _, body = k.api("PUT", pools + "/side", p)
            assert code == 200, body

        # the pool unreachable (a closed port), and a pass: it fails
        set_bootstrap("127.0.0.1:%d" % harness.free_port())
        k.apply(tmp_path, topic_doc(ns, name, {"partitions": 2}, pool="side",
                                    annotations={"touch": "1"}))
        k.wait_status(ns, name, "FailedSynchronization", timeout=60)
        # reachable again: the retry recreates the topic, and reports it as drift
        set_bootstrap(spec["bootstrapServers"])
        st = wait_repaired(k, ns, name, "missing in the pool and was recreated",
                           timeout=90)["status"]
        assert "retrying" not in st["message"], st
        assert k.wait_pool(lambda: k.pool_topics().get(fqn) == 2, "topic recreated")
    finally:
        k.stop()


def test_topic_beyond_the_partition_limit(tmp_path):
    """A Topic asking for more partitions than the pool's broker may host (max.broker.partitions,
    here from its open-file limit, lowered with prlimit(2) so the machine's ulimit does not
    matter) is refused by the broker at once, and its status says why; nothing is created.
    Before, the broker opened files until it ran out of descriptors and rolled back, and the
    status said "Too many open files" (test_partition_limit.py has the broker side)."""
    import resource
    k = KpoolUp().start()
    try:
        soft, hard = resource.prlimit(k.proc.pid, resource.RLIMIT_NOFILE)
        resource.prlimit(k.proc.pid, resource.RLIMIT_NOFILE, (min(soft, 8192), hard))
        ns, name, fqn = "team-huge", "huge", "team-huge.huge"
        k.apply(tmp_path, topic_doc(ns, name, {"partitions": 100000}))
        st = k.wait_status(ns, name, "FailedSynchronization")["status"]
        for words in ("Topic 'team-huge.huge' with 100000 partitions would exceed this "
                      "broker's partition limit", "max.broker.partitions"):
            assert words in st["message"], st
            assert words in st["errors"][0], st
        assert fqn not in k.pool_topics()
        # one that fits, in the same pool, still goes through
        k.apply(tmp_path, topic_doc(ns, "fits", {"partitions": 3}))
        k.wait_status(ns, "fits", "RolloutComplete")
        assert k.pool_topics()["team-huge.fits"] == 3
    finally:
        k.stop()


def reconciles(k, kind):
    """kpool_reconcile_total{kind=...} from /metrics: reconciles of that kind so far."""
    with urllib.request.urlopen("http://%s/metrics" % k.metrics, timeout=10) as r:
        text = r.read().decode()
    for line in text.splitlines():
        if line.startswith('kpool_reconcile_total{kind="%s"} ' % kind):
            return int(line.split()[-1])
    raise AssertionError("no kpool_reconcile_total for %s in /metrics" % kind)


def wait_reconciled(k, kind, past, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if reconciles(k, kind) > past:
            return
        time.sleep(0.05)
    raise AssertionError("no %s reconcile in %ss" % (kind, timeout))


def test_topic_deleted_between_describe_and_metadata_is_recreated(tmp_path):
    """The flaky half of test_drift_in_the_pool_is_repaired_by_resync, made deterministic.
    A Topic's pass asks the pool for the topic's overrides (DescribeConfigs, served from a
    cache for up to 5 s) and then for its partitions (Metadata). A topic deleted directly in
    the pool between the two answers used to fail that pass ("metadata of ...: topic
    missing", FailedSynchronization), and the pass after it, no longer seeing a Topic that
    had been in sync, recreated the topic without reporting the drift. Here the overrides
    are cached before the delete and a fresh Metadata answer follows it (a Pool reconcile
    lists the topics), so the Topic's next pass meets the two disagreeing. Fails on the old
    code when the steps fit in the 5 s the cached answers live (they take ~1 s); passes
    whatever the timing on the new one."""
    k = KpoolUp(resync_ms=600000).start()  # no resync: only the passes this test causes
    try:
        ns, name, fqn = "team-race", "vanishing", "team-race.vanishing"
        k.apply(tmp_path, topic_doc(ns, name, {"partitions": 2}))
        k.wait_status(ns, name, "RolloutComplete")
        assert k.wait_pool(lambda: k.pool_topics().get(fqn) == 2, "topic created")
        # a pass that finds it in sync: its overrides and partition count are now cached
        n = reconciles(k, "Topic")
        k.apply(tmp_path, topic_doc(ns, name, {"partitions": 2}, annotations={"touch": "1"}))
        wait_reconciled(k, "Topic", n)
        assert "drift" not in k.get(TOPICS_PATH, ns, name)["status"]["message"]
        # deleted in the pool; then a fresh Metadata answer without it (the Pool's pass)
        k.admin.delete_topics([fqn], operation_timeout=20)[fqn].result(timeout=20)
        n = reconciles(k, "Pool")
        code, _, dev = k.api("GET", "/apis/kpool.dev/v1/pools/dev")
        assert code == 200, dev
        dev["metadata"].setdefault("annotations", {})["touch"] = "1"
        code, _, body = k.api("PUT", "/apis/kpool.dev/v1/pools/dev", dev)
        assert code == 200, body
        wait_reconciled(k, "Pool", n)
        # the Topic's next pass: overrides cached (exists), Metadata fresh (missing)
        k.apply(tmp_path, topic_doc(ns, name, {"partitions": 2}, annotations={"touch": "2"}))
        st = wait_repaired(k, ns, name, "missing in the pool and was recreated",
                           timeout=30)["status"]
        assert "latestSyncFailure" not in st, st
        assert k.wait_pool(lambda: k.pool_topics().get(fqn) == 2, "topic recreated")
    finally:
        k.stop()


# --------------------------------------------------------------------------- deletion


def wait_pool_status(up, pred, timeout=20):
    deadline = time.time() + timeout
    st = None
    while time.time() < deadline:
        code, _, pool = up.api("GET", "/apis/kpool.dev/v1/pools/dev")
        assert code == 200, pool
        st = pool.get("status") or {}
        if pred(st):
            return st
        time.sleep(0.1)
    raise AssertionError("pool status: %s" % json.dumps(st, indent=1))


def test_idle_resyncs_write_nothing(tmp_path):
    """A resync that finds the pool as the resources say writes nothing: the store's
    resourceVersion, which watches follow (kubectl get -w reads every changed object), stays
    where it is. Before, each resync rewrote the Pool's status for its lastUpdateTime alone."""
    k = KpoolUp(resync_ms=300).start()
    try:
        k.apply(tmp_path, topic_doc("team-idle", "quiet"))
        k.wait_status("team-idle", "quiet", "RolloutComplete")
        wait_pool_status(k, lambda st: st.get("state") == "Ready" and st.get("topics"))
        time.sleep(1)  # the resync that follows the first status writes

        def rv():
            code, _, lst = k.api("GET", TOPICS_PATH % "team-idle")
            assert code == 200, lst
            return lst["metadata"]["resourceVersion"]

        before = rv()
        time.sleep(2.5)  # eight resyncs, over more than one second of lastUpdateTime
        assert rv() == before
        # a change still moves it, and the Topic is still reconciled
        k.apply(tmp_path, topic_doc("team-idle", "quiet", config={"partitions": 2}))
        k.wait_status("team-idle", "quiet", "RolloutComplete",
                      pred=lambda o: o["status"].get("observedGeneration") == 2)
        assert rv() != before
    finally:
        k.stop()


def test_delete_keeps_data_unless_annotated(up, tmp_path):
    ns, fqn = "team-keep", "team-keep.kept"
    doc = topic_doc(ns, "kept", {"partitions": 1})
    up.apply(tmp_path, doc)
    up.wait_status(ns, "kept", "RolloutComplete")
    values = ["message-%d" % i for i in range(10)]
    up.produce(fqn, values)
    assert up.consume_all(fqn, 10) == values

    p = up.kpool("delete", "topic", "kept", "-n", ns)
    assert p.stdout == 'topic.kafka.nais.io "kept" deleted\n'
    up.wait_gone(TOPICS_PATH, ns, "kept")
    up.kpool("get", "topic", "kept", "-n", ns, expect=1)
    assert up.pool_topics().get(fqn) == 1
    assert up.consume_all(fqn, 10) == values
    # where the kept data shows: the pool's status lists topics no resource owns
    pool = wait_pool_status(up, lambda st: fqn in st.get("unmanagedTopics", []))
    assert not any(t.startswith("_") for t in pool["unmanagedTopics"]), pool
    assert pool["unmanagedTopicCount"] == len(pool["unmanagedTopics"])
    assert fqn in up.kpool("describe", "pool", "dev").stdout

    # re-applying re-attaches the data, and says so
    p = up.apply(tmp_path, doc)
    assert p.stdout == "topic.kafka.nais.io/kept created\n"
    st = up.wait_status(ns, "kept", "RolloutComplete")["status"]
    assert st["fullyQualifiedName"] == fqn
    assert "adopted the existing topic and its data" in st["message"], st
    assert up.consume_all(fqn, 10) == values
    assert up.pool_topics().get(fqn) == 1
    wait_pool_status(up, lambda st: fqn not in st.get("unmanagedTopics", []))

    # with the annotation the topic and its data go
    gone = topic_doc(ns, "doomed", {"partitions": 2},
                     annotations={"kafka.nais.io/removeDataWhenResourceIsDeleted": "true"})
    up.apply(tmp_path, gone)
    up.wait_status(ns, "doomed", "RolloutComplete")
    up.produce("team-keep.doomed", ["x"])
    assert up.pool_topics().get("team-keep.doomed") == 2
    up.kpool("delete", "topic", "doomed", "-n", ns)
    up.wait_gone(TOPICS_PATH, ns, "doomed")
    up.wait_pool(lambda: "team-keep.doomed" not in up.pool_topics(), "annotated topic deleted")
    # the one without the annotation is still there
    assert up.pool_topics().get(fqn) == 1


# --------------------------------------------------------------------------- API security


def test_api_authentication_and_team_authorization(up):
    path_a, path_b = TOPICS_PATH % "team-a", TOPICS_PATH % "team-b"
    # the admin puts a topic in team-b (so 403 below is not a 404 in disguise)
    code, _, _ = up.api("PUT", path_b + "/theirs", topic_doc("team-b", "theirs"))
    assert code == 201

    for token in (None, "0" * 64, "not-a-token"):
        code, _, body = up.http("GET", path_a, token=token)
        assert code == 401 and body["kind"] == "Status" and body["reason"] == "Unauthorized"
        code, _, _ = up.http("PUT", path_a + "/x", topic_doc("team-a", "x"), token=token)
        assert code == 401
    assert up.get(TOPICS_PATH, "team-a", "x") is None

    p = up.kpool("team", "create", "team-a")
    lines = p.stdout.splitlines()
    assert lines[0] == "team/team-a created" and lines[1].startswith("token: "), p.stdout
    tok = lines[1][len("token: "):]
    assert len(tok) == 64

    # own namespace: create, read, list, replace
    code, _, obj = up.http("PUT", path_a + "/mine", topic_doc("team-a", "mine"), token=tok)
    assert code == 201 and obj["metadata"]["namespace"] == "team-a", obj
    code, _, obj = up.http("GET", path_a + "/mine", token=tok)
    assert code == 200 and obj["metadata"]["name"] == "mine"
    code, _, lst = up.http("GET", path_a, token=tok)
    assert code == 200 and [i["metadata"]["name"] for i in lst["items"]] == ["mine"]
    code, _, lst = up.http("GET", "/apis/kafka.nais.io/v1/topics", token=tok)
    assert code == 200 and {i["metadata"]["namespace"] for i in lst["items"]} == {"team-a"}
    doc = topic_doc("team-a", "mine", {"partitions": 2})
    code, _, obj = up.http("PUT", path_a + "/mine", doc, token=tok)
    assert code == 200 and obj["metadata"]["generation"] == 2
    up.wait_status("team-a", "mine", "RolloutComplete")

    # another team's namespace: nothing
    for method, path, body in (("GET", path_b + "/theirs", None), ("GET", path_b, None),
                               ("PUT", path_b + "/theirs",
                                topic_doc("team-b", "theirs", {"partitions": 9})),
                               ("PUT", path_b + "/new", topic_doc("team-b", "new")),
                               ("DELETE", path_b + "/theirs", None)):
        code, _, body = up.http(method, path, body, token=tok)
        assert code == 403 and body["reason"] == "Forbidden", (method, path, code, body)
    theirs = up.get(TOPICS_PATH, "team-b", "theirs")
    assert "deletionTimestamp" not in theirs["metadata"]
    assert theirs["metadata"]["generation"] == 1
    assert up.get(TOPICS_PATH, "team-b", "new") is None

    # pools: readable, not writable
    code, _, lst = up.http("GET", "/apis/kpool.dev/v1/pools", token=tok)
    assert code == 200 and "dev" in [i["metadata"]["name"] for i in lst["items"]]
    pool = {"apiVersion": "kpool.dev/v1", "kind": "Pool", "metadata": {"name": "mypool"},
            "spec": {"bootstrapServers": "127.0.0.1:1"}}
    code, _, body = up.http("PUT", "/apis/kpool.dev/v1/pools/mypool", pool, token=tok)
    assert code == 403, body
    code, _, dev = up.http("GET", "/apis/kpool.dev/v1/pools/dev", token=tok)
    assert code == 200
    code, _, _ = up.http("PUT", "/apis/kpool.dev/v1/pools/dev", dev, token=tok)
    assert code == 403
    code, _, _ = up.http("DELETE", "/apis/kpool.dev/v1/pools/dev", token=tok)
    assert code == 403
    assert up.api("GET", "/apis/kpool.dev/v1/pools/mypool")[0] == 404
    # a team token cannot create teams
    code, _, _ = up.http("POST", "/apis/kpool.dev/v1/teams", {"name": "team-z"}, token=tok)
    assert code == 403

    # own namespace: delete
    code, _, obj = up.http("DELETE", path_a + "/mine", token=tok)
    assert code == 200 and "deletionTimestamp" in obj["metadata"]
    up.wait_gone(TOPICS_PATH, "team-a", "mine")


def test_api_unknown_fields_conflicts_and_invalid_names(up):
    path = TOPICS_PATH % "team-api"
    doc = topic_doc("team-api", "odd", {"partitions": 1, "futureKnob": 7}, fancy={"x": [1, 2]})
    doc["extraTop"] = "kept"
    code, hdrs, obj = up.api("PUT", path + "/odd", doc)
    assert code == 201, obj
    warnings = sorted(hdrs.get_all("Warning") or [])
    assert warnings == sorted('299 - "unknown field \\"%s\\""' % f for f in
                              ("extraTop", "spec.fancy", "spec.config.futureKnob")), warnings
    code, _, obj = up.api("GET", path + "/odd")
    assert obj["spec"]["fancy"] == {"x": [1, 2]}
    assert obj["spec"]["config"]["futureKnob"] == 7
    assert obj["extraTop"] == "kept"
    # ignored, never a crash: the topic still reconciles
    up.wait_status("team-api", "odd", "RolloutComplete")
    assert up.pool_topics().get("team-api.odd") == 1

    # optimistic concurrency: the current resourceVersion wins once, then it is stale
    code, _, cur = up.api("GET", path + "/odd")
    rv = cur["metadata"]["resourceVersion"]
    cur["spec"]["config"]["partitions"] = 2
    code, _, obj = up.api("PUT", path + "/odd", cur)
    assert code == 200, obj
    assert obj["metadata"]["resourceVersion"] != rv
    cur["spec"]["config"]["partitions"] = 3  # still carries the old resourceVersion
    code, _, body = up.api("PUT", path + "/odd", cur)
    assert code == 409 and body["reason"] == "Conflict", body
    assert up.get(TOPICS_PATH, "team-api", "odd")["spec"]["config"]["partitions"] == 2

    # invalid names: 422 Invalid, nothing stored
    for bad in ("Bad_Name", "-leading", "a" * 254):
        code, _, body = up.api("PUT", path + "/" + bad, topic_doc("team-api", bad))
        assert code == 422 and body["reason"] == "Invalid", (bad, code, body)
        assert "metadata.name" in body["message"], body
    code, _, body = up.api("POST", path, topic_doc("team-api", "UPPER"))
    assert code == 422 and "metadata.name" in body["message"], body
    code, _, body = up.api("PUT", TOPICS_PATH % "Team_X" + "/ok", topic_doc("Team_X", "ok"))
    assert code == 422 and "metadata.namespace" in body["message"], body
    code, _, lst = up.api("GET", path)
    assert [i["metadata"]["name"] for i in lst["items"]] == ["odd"]


# --------------------------------------------------------------------------- streams


def test_stream_prefix_and_delete_removes_prefixed_topics(up, tmp_path):
    from confluent_kafka.admin import NewTopic
    ns, name = "team-s", "wordcount"
    prefix = "team-s.wordcount_stream_"
    doc = {"apiVersion": "kafka.nais.io/v1", "kind": "Stream",
           "metadata": {"name": name, "namespace": ns}, "spec": {"pool": "dev"}}
    p = up.apply(tmp_path, doc)
    assert p.stdout == "stream.kafka.nais.io/wordcount created\n"
    obj = up.wait_status(ns, name, "RolloutComplete", path=STREAMS_PATH)
    assert obj["status"]["fullyQualifiedTopicPrefix"] == prefix

    # what a Streams app creates (made here directly as the admin), and neighbours
    mine = [prefix + "counts-changelog", prefix + "repartition"]
    others = ["team-s.wordcount_streamx", "team-s.wordcount", "team-s.other_stream_x"]
    fs = up.admin.create_topics([NewTopic(t, 1, 1) for t in mine + others], operation_timeout=20)
    for f in fs.values():
        f.result(timeout=20)
    topics = up.pool_topics()
    assert all(t in topics for t in mine + others)

    p = up.kpool("delete", "stream", name, "-n", ns)
    assert p.stdout == 'stream.kafka.nais.io "wordcount" deleted\n'
    up.wait_gone(STREAMS_PATH, ns, name)
    topics = up.wait_pool(lambda: (lambda t: t if not any(m in t for m in mine) else None)(
        up.pool_topics()), "prefixed topics deleted")
    for t in others:
        assert t in topics, (t, sorted(topics))


def test_stream_with_unknown_pool_fails_prepare(up, tmp_path):
    doc = {"apiVersion": "kafka.nais.io/v1", "kind": "Stream",
           "metadata": {"name": "lost", "namespace": "team-s"}, "spec": {"pool": "nope"}}
    up.apply(tmp_path, doc)
    st = up.wait_status("team-s", "lost", ("FailedPrepare", "RolloutComplete"),
                        path=STREAMS_PATH)["status"]
    assert st["synchronizationState"] == "FailedPrepare", st
    assert "spec.pool" in st["message"] and '"nope"' in st["message"] and "dev" in st["message"]
    assert st["fullyQualifiedTopicPrefix"] == "team-s.lost_stream_"


# --------------------------------------------------------------------------- many files

BIG_PARTITIONS = 1100


def ensure_big_topic(up, tmp_path):
    """A topic with 1,100 partitions: the broker then holds one open segment per partition,
    so the `kpool up` process has more than FD_SETSIZE (1024) descriptors."""
    if up.get(TOPICS_PATH, "team-big", "wide") is None:
        up.apply(tmp_path, topic_doc("team-big", "wide", {"partitions": BIG_PARTITIONS}))
    up.wait_status("team-big", "wide", "RolloutComplete", timeout=90)
    assert up.pool_topics()["team-big.wide"] == BIG_PARTITIONS
    nfd = len(os.listdir("/proc/%d/fd" % up.proc.pid))
    assert nfd > 1024, nfd  # the precondition this test is about


def concurrent_gets(hostport, path, n, headers=None):
    """n connections open at once (so they get n distinct, high descriptors in the server
    even if it has a few low ones free), one GET on each; their status codes (None when the
    server closed the connection)."""
    conns = [http.client.HTTPConnection(hostport, timeout=10) for _ in range(n)]
    codes = []
    try:
        for c in conns:
            c.connect()
        for c in conns:
            c.request("GET", path, headers=headers or {})
        for c in conns:
            try:
                r = c.getresponse()
                r.read()
                codes.append(r.status)
            except (http.client.HTTPException, OSError):
                codes.append(None)
    finally:
        for c in conns:
            c.close()
    return codes


def test_api_serves_when_the_process_holds_over_1024_descriptors(up, tmp_path):
    """The API server must not use select(): found by the 1,000-topic measurement, where
    every request failed once the broker had opened its 1,024th segment."""
    ensure_big_topic(up, tmp_path)
    codes = concurrent_gets(up.api_url, TOPICS_PATH % "team-big" + "/wide", 20,
                            {"Authorization": "Bearer " + up.token})
    assert codes == [200] * 20, codes
    up.apply(tmp_path, topic_doc("team-big", "after", {"partitions": 1}))
    up.wait_status("team-big", "after", "RolloutComplete")
    assert "team-big.after" in up.pool_topics()
    p = up.kpool("get", "topics", "-n", "team-big")
    assert [ln.split()[0] for ln in p.stdout.splitlines()[1:]] == ["after", "wide"]


def test_health_endpoint_serves_when_the_process_holds_over_1024_descriptors(up, tmp_path):
    ensure_big_topic(up, tmp_path)
    assert concurrent_gets(up.metrics, "/readyz", 20) == [200] * 20


# --------------------------------------------------------------------------- performance


@pytest.mark.skipif(os.environ.get("KPOOL_PERF") != "1", reason="set KPOOL_PERF=1 to measure")
def test_perf_apply_latency_and_1000_topics(tmp_path):
    """Measures, prints and does not assert. Its own `kpool up` with the default resync
    interval (60 s), so resyncs do not compete with the measured work."""
    k = KpoolUp(resync_ms=60000).start()
    try:
        lat, cli = [], []
        for i in range(5):
            name = "lat-%d" % i
            t0 = time.monotonic()
            k.apply(tmp_path, topic_doc("perf", name, {"partitions": 1}))
            cli.append(time.monotonic() - t0)
            k.wait_status("perf", name, "RolloutComplete", timeout=60, poll=0.002)
            lat.append(time.monotonic() - t0)
            assert "perf." + name in k.pool_topics()
        n = 1000
        f = tmp_path / "many.yaml"
        f.write_text(yaml.safe_dump_all(
            [topic_doc("perf-many", "t-%04d" % i, {"partitions": 1}) for i in range(n)],
            sort_keys=False))
        t0 = time.monotonic()
        p = k.kpool("apply", "-f", str(f), timeout=600)
        t_apply = time.monotonic() - t0
        assert len(p.stdout.splitlines()) == n
        deadline = time.time() + 900
        done = 0
        while time.time() < deadline:
            code, _, lst = k.api("GET", TOPICS_PATH % "perf-many")
            done = sum(1 for i in lst["items"]
                       if (i.get("status") or {}).get("synchronizationState") == "RolloutComplete")
            if done == n:
                break
            time.sleep(0.25)
        t_all = time.monotonic() - t0
        assert done == n, "%d of %d topics RolloutComplete" % (done, n)
        in_pool = [t for t in k.pool_topics() if t.startswith("perf-many.")]
        assert len(in_pool) == n
        report = ("\nPERF apply->RolloutComplete, one topic: median %.0f ms (runs: %s ms; of "
                  "which the `kpool apply` process: median %.0f ms)\n"
                  "PERF 1000 topics in one file: kpool apply returned after %.1f s, all "
                  "RolloutComplete after %.1f s (%.0f topics/s)\n"
                  % (statistics.median(lat) * 1000, ", ".join("%.0f" % (x * 1000) for x in lat),
                     statistics.median(cli) * 1000, t_apply, t_all, n / t_all))
        print(report)
    finally:
        k.stop()
