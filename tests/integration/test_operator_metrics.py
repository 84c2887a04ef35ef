"""The operator's figures in /metrics (docs/metrics.md) under a real `kpool up`, moved by real
clients (confluent-kafka producing and consuming, the API, the schema registry over HTTPS)
and read back by scraping /metrics with urllib as Prometheus would.

Covered:
  * per-topic traffic: kpool_topic_records_in_total / bytes_in_total grow by what a producer
    wrote, kpool_topic_records_out_total / bytes_out_total by what a consumer read; another
    topic's series stay put;
  * consumer-group lag (kafka_exporter's figures): kpool_consumergroup_committed_offset and
    kpool_consumergroup_lag per group, topic and partition after a commit, the lag growing
    with more records and falling to 0 when the group commits the end; a group id with a
    quote and a backslash is escaped as the text format asks; groups without commits have
    no series;
  * the control plane: kpool_reconcile_total / _failures_total / _seconds by kind (a Topic
    that reaches RolloutComplete, one that ends FailedPrepare), kpool_credential_issue_seconds
    for an Application's credentials;
  * the schema registry: kpool_registry_requests_total by HTTP status (200 and 401);
  * backups: kpool_backup_age_seconds of a pool once a backup succeeded;
  * every line of the scrape parses as the exposition format (names, labels, values).
"""
import re
import time
import urllib.request

import pytest
import requests
from confluent_kafka import Consumer, Producer, TopicPartition

import harness
import test_control as T
from test_apps import APPS, app_doc
from test_control import TOPICS_PATH, topic_doc

BACKUPS = "/apis/kpool.dev/v1/backups"
LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*)\})? '
                  r'(-?[0-9.eE+-]+|\+Inf|NaN)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

up = harness.up_fixture(lambda: T.KpoolUp())


def scrape(up):
    """{(name, frozenset(labels.items())): value} of one /metrics scrape; every sample line
    must parse."""
    with urllib.request.urlopen("http://%s/metrics" % up.metrics_url, timeout=30) as r:
        assert r.status == 200
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = LINE.match(line)
        assert m, "not the exposition format: %r" % line
        labels = {k: re.sub(r'\\(.)', lambda x: {"n": "\n"}.get(x.group(1), x.group(1)), v)
                  for k, v in LABEL.findall(m.group(3) or "")}
        out[(m.group(1), frozenset(labels.items()))] = float(m.group(4))
    return out


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def wait_metric(up, name, pred, timeout=60, **labels):
    """The metric's value once pred(value) holds (polls: figures computed at scrape time)."""
    deadline = time.time() + timeout
    v = None
    while time.time() < deadline:
        v = value(scrape(up), name, **labels)
        if v is not None and pred(v):
            return v
        time.sleep(0.2)
    raise AssertionError("%s%s: last %r\n%s" % (name, labels, v, up.log()[-2000:]))


def make_topic(up, ns, name, spec=None, state="RolloutComplete"):
    code, _, body = up.api("PUT", TOPICS_PATH % ns + "/" + name, topic_doc(ns, name, spec or {}))
    assert code in (200, 201), body
    return up.wait_status(ns, name, state)


def produce(up, topic, n, partition=0, size=100):
    p = Producer(dict(up.ssl_conf(), acks="all", **{"linger.ms": 0}))
    for i in range(n):
        p.produce(topic, b"x" * size, key=b"k%d" % i, partition=partition)
    assert p.flush(30) == 0


def consume(up, topic, n, group):
    """Reads n records of partition 0 from the beginning with group (no commit)."""
    c = Consumer(dict(up.ssl_conf(), **{"group.id": group, "enable.auto.commit": False}))
    c.assign([TopicPartition(topic, 0, 0)])
    got = 0
    deadline = time.time() + 60
    try:
        while got < n and time.time() < deadline:
            m = c.poll(1)
            if m is not None and not m.error():
                got += 1
    finally:
        c.close()
    assert got == n


def commit(up, group, topic, offset, partition=0):
    c = Consumer(dict(up.ssl_conf(), **{"group.id": group, "enable.auto.commit": False}))
    c.commit(offsets=[TopicPartition(topic, partition, offset)], asynchronous=False)
    c.close()


def test_topic_traffic_in_and_out(up):
    make_topic(up, "om-a", "traffic")
    make_topic(up, "om-a", "quiet")
    s0 = scrape(up)
    before = {k: value(s0, "kpool_topic_%s_total" % k, topic="om-a.traffic") or 0
              for k in ("records_in", "bytes_in", "records_out", "bytes_out")}
    quiet = value(s0, "kpool_topic_records_in_total", topic="om-a.quiet")
    assert quiet == 0
    produce(up, "om-a.traffic", 25, size=200)
    s1 = scrape(up)
    assert value(s1, "kpool_topic_records_in_total", topic="om-a.traffic") == before["records_in"] + 25
    assert value(s1, "kpool_topic_bytes_in_total", topic="om-a.traffic") >= before["bytes_in"] + 25 * 200
    assert value(s1, "kpool_topic_records_in_total", topic="om-a.quiet") == 0
    consume(up, "om-a.traffic", 25, "om-reader")
    out = wait_metric(up, "kpool_topic_records_out_total", lambda v: v >= before["records_out"] + 25,
                      topic="om-a.traffic")
    assert out == before["records_out"] + 25  # one consumer read each record once
    s2 = scrape(up)
    assert value(s2, "kpool_topic_bytes_out_total", topic="om-a.traffic") >= before["bytes_out"] + 25 * 200
    assert value(s2, "kpool_topic_bytes_out_total", topic="om-a.quiet") == 0


def test_consumer_group_lag(up):
    make_topic(up, "om-b", "lagged", {"partitions": 2})
    topic = "om-b.lagged"
    produce(up, topic, 10, partition=0)
    produce(up, topic, 4, partition=1)
    group = 'om-b-g "quoted" \\ back'
    commit(up, group, topic, 3, partition=0)
    lbl = dict(group=group, topic=topic, partition="0")
    assert wait_metric(up, "kpool_consumergroup_committed_offset", lambda v: v == 3, **lbl) == 3
    assert wait_metric(up, "kpool_consumergroup_lag", lambda v: v == 7, **lbl) == 7
    s = scrape(up)
    # partition 1 has no commit: no series (only what a group committed is reported)
    assert value(s, "kpool_consumergroup_lag", group=group, topic=topic, partition="1") is None
    assert value(s, "kpool_consumergroup_series_dropped") == 0
    produce(up, topic, 5, partition=0)
    assert wait_metric(up, "kpool_consumergroup_lag", lambda v: v == 12, **lbl) == 12
    commit(up, group, topic, 15, partition=0)
    assert wait_metric(up, "kpool_consumergroup_lag", lambda v: v == 0, **lbl) == 0
    # a group that only consumed (no commit) has no series at all
    consume(up, topic, 15, "om-b-nocommit")
    assert not [k for k in scrape(up) if ("group", "om-b-nocommit") in k[1]]


def test_reconciles_and_credentials(up):
    s0 = scrape(up)
    topics0 = value(s0, "kpool_reconcile_total", kind="Topic")
    fails0 = value(s0, "kpool_reconcile_failures_total", kind="Topic")
    count0 = value(s0, "kpool_reconcile_seconds_count", kind="Topic")
    issued0 = value(s0, "kpool_credential_issue_seconds_count")
    assert None not in (topics0, fails0, count0, issued0)
    make_topic(up, "om-c", "ok")
    make_topic(up, "om-c", "bad", {"replication": 3}, state="FailedPrepare")
    s1 = scrape(up)
    assert value(s1, "kpool_reconcile_total", kind="Topic") >= topics0 + 2
    assert value(s1, "kpool_reconcile_failures_total", kind="Topic") >= fails0 + 1
    assert value(s1, "kpool_reconcile_seconds_count", kind="Topic") >= count0 + 2
    assert value(s1, "kpool_reconcile_seconds_bucket", kind="Topic", le="+Inf") == \
        value(s1, "kpool_reconcile_seconds_count", kind="Topic")
    code, _, body = up.api("PUT", APPS % "om-c" + "/svc", app_doc("om-c", "svc"))
    assert code in (200, 201), body
    up.wait_status("om-c", "svc", "RolloutComplete", path=APPS, timeout=60)
    issued = wait_metric(up, "kpool_credential_issue_seconds_count", lambda v: v >= issued0 + 1)
    assert issued >= issued0 + 1
    s2 = scrape(up)
    assert value(s2, "kpool_credential_issue_seconds_sum") > 0
    assert value(s2, "kpool_reconcile_total", kind="Application") >= 1
    assert value(s2, "kpool_reconcile_total", kind="AivenApplication") >= 1


def test_registry_requests_by_status(up):
    with open(up.pki + "/registry-admin.password") as f:
        password = f.read().strip()
    ca = up.pki + "/ca.crt"
    s0 = scrape(up)
    ok0 = value(s0, "kpool_registry_requests_total", code="200") or 0
    denied0 = value(s0, "kpool_registry_requests_total", code="401") or 0
    for _ in range(3):
        r = requests.get(up.registry_url + "/subjects", auth=("kpool-admin", password), verify=ca,
                         timeout=30)
        assert r.status_code == 200, r.text
    r = requests.get(up.registry_url + "/subjects", auth=("kpool-admin", "wrong"), verify=ca,
                     timeout=30)
    assert r.status_code == 401
    s1 = scrape(up)
    assert value(s1, "kpool_registry_requests_total", code="200") == ok0 + 3
    assert value(s1, "kpool_registry_requests_total", code="401") == denied0 + 1
    assert value(s1, "kpool_registry_request_seconds_count") >= ok0 + denied0 + 4


def test_backup_age(up):
    code, _, body = up.api("POST", BACKUPS, {})
    assert code in (200, 201, 202), body
    age = wait_metric(up, "kpool_backup_age_seconds", lambda v: v >= 0, pool="dev", timeout=90)
    assert age < 3600
    s = scrape(up)
    assert value(s, "kpool_backup_last_success_timestamp_seconds", pool="dev") > 0


def test_multi_broker_pool_metrics_per_broker(tmp_path):
    """`kpool up --brokers 2`: the Pool names every broker's metrics URL (spec.metricsUrls),
    the banner prints them, each broker's /metrics says which node it is
    (kpool_broker_info), and the console's pool history adds both up and lists each broker
    with its node id, disk and rates. (Fails on the old code: one metricsUrl, broker 1's,
    so the history had one broker and the pool's figures were broker 1's alone.)"""
    import json as _json
    import os
    import signal
    import subprocess

    from conftest import KPOOL_BIN
    from test_pool import _up_offset

    data = str(tmp_path / "up")
    cfg = str(tmp_path / "cli.yaml")
    env = dict(os.environ, KPOOL_CONFIG=cfg)
    env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
    off = _up_offset(2)
    log_path = str(tmp_path / "up.log")
    logf = open(log_path, "ab")
    proc = subprocess.Popen([KPOOL_BIN, "up", "--data-dir", data, "--port-offset", str(off),
                             "--brokers", "2", "--set", "control.console.metrics.interval.ms=500"],
                            stdout=logf, stderr=subprocess.STDOUT, env=env)

    def log():
        with open(log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait(pred, what, timeout=90):
        deadline = time.time() + timeout
        while time.time() < deadline:
            v = pred()
            if v:
                return v
            assert proc.poll() is None, log()[-4000:]
            time.sleep(0.3)
        raise AssertionError("%s: not in %ss\n%s" % (what, timeout, log()[-4000:]))

    urls = ["http://127.0.0.1:%d/metrics" % (9600 + off), "http://127.0.0.1:%d/metrics" % (9610 + off)]
    try:
        wait(lambda: "kpool is up." in log(), "kpool up")
        assert re.search(r"^    broker 2 +%s$" % re.escape(urls[1]), log(), re.M), log()[-3000:]
        with open(cfg) as f:
            token = [l.split(": ", 1)[1].strip() for l in f if l.startswith("token:")][0]

        def get(path):
            req = urllib.request.Request("http://127.0.0.1:%d%s" % (8080 + off, path),
                                         headers={"Authorization": "Bearer " + token})
            with urllib.request.urlopen(req, timeout=30) as r:
                return _json.loads(r.read())
        pool = get("/apis/kpool.dev/v1/pools/dev")
        assert pool["spec"]["metricsUrls"] == urls and pool["spec"]["metricsUrl"] == urls[0], pool
        for node, url in ((1, urls[0]), (2, urls[1])):
            with urllib.request.urlopen(url, timeout=30) as r:
                text = r.read().decode()
            assert re.search(r'^kpool_broker_info\{node_id="%d",cluster_id="[^"]+"\} 1$' % node,
                             text, re.M), text[:2000]

        def both():
            h = get("/apis/kpool.dev/v1/pools/dev/metrics")
            bs = h["brokers"]
            ok = len(bs) == 2 and all(b.get("diskUsedBytes") is not None and
                                       b.get("requestsPerSecond") is not None for b in bs)
            return h if ok and len(h["samples"]) >= 2 else None
        h = wait(both, "both brokers sampled")
        assert h["metricsUrls"] == urls and h["metricsUrl"] == urls[0]
        assert [b["metricsUrl"] for b in h["brokers"]] == urls
        assert [b["nodeId"] for b in h["brokers"]] == [1, 2]
        assert all(b["lastError"] is None for b in h["brokers"]), h["brokers"]
        # the pool's disk is both brokers' (each holds its own log directory)
        last = h["samples"][-1]["diskUsedBytes"]
        assert last >= max(b["diskUsedBytes"] for b in h["brokers"]), h
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(90)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        logf.close()
    assert rc == 0, log()[-4000:]
    assert "Sanitizer" not in log() and "runtime error" not in log(), log()[-6000:]
