"""The control plane's console endpoints and static files (docs/api.md "Console",
docs/console.md) under a real `kpool up`, with real Kafka clients writing what is read back.

Covered:
  * the console's files are served at / without a token, with their content types, ETag
    (304 on If-None-Match), no-cache and a Content-Security-Policy; the bytes are web/'s;
    other methods 405; paths outside the embedded set (traversal included) are 404;
  * whoami: 401 without or with a bad token, the team's namespace for a team token, admin;
  * partitions / consumergroups / messages: 401 without a token, 403 for another team's
    token (cross-team reads), 200 for the team and the admin, 404 for a Topic the team does
    not have or that is not in the pool yet, 405 for writes;
  * partitions: leader, ISR, start/end offsets of each partition as the producer left them;
  * consumer groups: a group's committed offsets and lag per partition;
  * messages: newest N (newest first), from an offset of one partition, from a time; key,
    value, headers, timestamps; binary as hex, null as null; bad queries are 400;
  * records in the registry's wire format are decoded through the registry's schemas (Avro
    and JSON Schema), with a clear error for an unknown id or bytes that do not fit;
  * pool health: brokers and partition counts for any valid token, 404 for an unknown pool;
  * subjects: the team's schema subjects with every version's schema, never another team's
    (403 for its token, its subjects not listed);
  * backup download: an admin gets exactly the bytes of a file the backup list names, as an
    attachment; teams 403; names the list does not hold (traversal included) 404.
"""
import http.client
import json
import os
import struct
import time

import pytest
import requests
from confluent_kafka import Consumer, Producer, TopicPartition

import harness
import test_control as T
from test_control import TOPICS_PATH, topic_doc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONSOLE = "/apis/kpool.dev/v1/namespaces/%s/topics/%s/%s"


# the console's pool history is sampled this often here (default 10 s)
SAMPLE_MS = 300

up = harness.up_fixture(lambda: T.KpoolUp(settings={"control.console.metrics.interval.ms": SAMPLE_MS}))


@pytest.fixture(scope="module")
def world(up):
    """Teams ca-a and ca-b, each with a topic; ca-a's holds records a real producer wrote
    (partition 0: offsets 0-4 at times 1000..5000 ms, partition 1: two records) and group
    ca-a-g committed offset 3 on partition 0."""
    toks = {}
    for t in ("ca-a", "ca-b"):
        code, _, body = up.api("POST", "/apis/kpool.dev/v1/teams", {"name": t})
        assert code == 201, body
        toks[t] = body["token"]
    for ns, name in (("ca-a", "orders"), ("ca-b", "payroll")):
        code, _, body = up.api("PUT", TOPICS_PATH % ns + "/" + name,
                               topic_doc(ns, name, {"partitions": 2}))
        assert code == 201, body
    code, _, body = up.api("PUT", TOPICS_PATH % "ca-a" + "/broken",
                           topic_doc("ca-a", "broken", {"replication": 3}))
    assert code == 201, body
    up.wait_status("ca-a", "orders", "RolloutComplete")
    up.wait_status("ca-b", "payroll", "RolloutComplete")
    up.wait_status("ca-a", "broken", "FailedPrepare")
    p = Producer(dict(up.ssl_conf(), acks="all"))
    for i in range(5):
        p.produce("ca-a.orders", ("v%d" % i).encode(), key=("k%d" % i).encode(), partition=0,
                  timestamp=(i + 1) * 1000, headers=[("h", b"x%d" % i), ("bin", b"\x00\x01")])
    p.produce("ca-a.orders", b"\xff\xfe\x00binary", partition=1, timestamp=10000)
    p.produce("ca-a.orders", None, key=b"tombstone", partition=1, timestamp=11000)
    p.produce("ca-b.payroll", b"b's secret", partition=0)
    assert p.flush(30) == 0
    c = Consumer(dict(up.ssl_conf(), **{"group.id": "ca-a-g", "enable.auto.commit": False}))
    c.commit(offsets=[TopicPartition("ca-a.orders", 0, 3)], asynchronous=False)
    c.close()
    return toks


def get(up, ns, topic, what, token, query=""):
    return up.http("GET", CONSOLE % (ns, topic, what) + query, token=token)


# ---- static files ----

def raw(up, method, path, headers=None):
    c = http.client.HTTPConnection(up.api_url, timeout=10)
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, r.headers, body


def test_static_files_served_without_token(up):
    code, h, body = raw(up, "GET", "/")
    assert code == 200 and h["Content-Type"] == "text/html; charset=utf-8"
    assert body == open(os.path.join(ROOT, "web", "index.html"), "rb").read()
    assert h["Cache-Control"] == "no-cache" and h["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in h["Content-Security-Policy"]
    assert "script-src 'self'" in h["Content-Security-Policy"]
    etag = h["ETag"]
    assert etag.startswith('"') and len(etag) > 10
    code, h2, body = raw(up, "GET", "/", {"If-None-Match": etag})
    assert code == 304 and body == b"" and h2["ETag"] == etag
    code, h, body = raw(up, "GET", "/app.js")
    assert code == 200 and h["Content-Type"] == "text/javascript; charset=utf-8"
    assert body == open(os.path.join(ROOT, "web", "app.js"), "rb").read()
    code, h, _ = raw(up, "GET", "/style.css")
    assert code == 200 and h["Content-Type"] == "text/css; charset=utf-8"
    code, h, body = raw(up, "HEAD", "/favicon.svg")
    assert code == 200 and h["Content-Type"] == "image/svg+xml" and body == b""
    code, h, _ = raw(up, "POST", "/")
    assert code == 405 and h["Allow"] == "GET, HEAD"


@pytest.mark.parametrize("path", ["/nope.js", "/index.html/", "/../Makefile", "/%2e%2e/Makefile",
                                  "/web/app.js", "//app.js", "/app.js/../../etc/passwd",
                                  "/index.htm"])
def test_static_unknown_paths_are_404(up, path):
    code, h, body = raw(up, "GET", path)
    assert code == 404, (path, code, body[:200])
    assert b"<html" not in body and b"import" not in body


# ---- whoami ----

def test_whoami(up, world):
    assert up.http("GET", "/apis/kpool.dev/v1/whoami")[0] == 401
    assert up.http("GET", "/apis/kpool.dev/v1/whoami", token="0" * 64)[0] == 401
    code, h, body = up.http("GET", "/apis/kpool.dev/v1/whoami", token=world["ca-a"])
    assert code == 200 and body == {"apiVersion": "kpool.dev/v1", "kind": "WhoAmI",
                                    "admin": False, "namespace": "ca-a"}, body
    code, _, body = up.api("GET", "/apis/kpool.dev/v1/whoami")
    assert code == 200 and body["admin"] is True and body["namespace"] is None


# ---- authorization: exactly like the resources ----

@pytest.mark.parametrize("what", ["partitions", "consumergroups", "messages"])
def test_console_endpoints_authorized_per_team(up, world, what):
    assert get(up, "ca-a", "orders", what, None)[0] == 401
    assert get(up, "ca-a", "orders", what, "f" * 64)[0] == 401
    code, h, body = get(up, "ca-a", "orders", what, world["ca-b"])
    assert code == 403 and body["reason"] == "Forbidden", body
    # the resources agree: the same token cannot read the Topic itself either
    assert up.http("GET", TOPICS_PATH % "ca-a" + "/orders", token=world["ca-b"])[0] == 403
    code, h, body = get(up, "ca-a", "orders", what, world["ca-a"])
    assert code == 200 and body["metadata"] == {"name": "orders", "namespace": "ca-a"}, body
    assert body["topic"] == "ca-a.orders" and body["pool"] == "dev"
    assert h["Cache-Control"] == "no-store"
    assert get(up, "ca-a", "orders", what, up.token)[0] == 200
    # a team names its own Topics only: ca-b's topic under ca-a's namespace does not exist
    code, _, body = get(up, "ca-a", "payroll", what, world["ca-a"])
    assert code == 404 and body["reason"] == "NotFound", body
    # the Topic exists but is not in the pool (FailedPrepare)
    code, _, body = get(up, "ca-a", "broken", what, world["ca-a"])
    assert code == 404 and "does not exist in the pool" in body["message"], body
    code, _, _ = up.http("POST", CONSOLE % ("ca-a", "orders", what), body={}, token=world["ca-a"])
    assert code == 405


# ---- what the pool holds ----

def test_partitions(up, world):
    # sizes come from the pool's /metrics once sampled (test_partition_sizes_and_produce_rate):
    # a sample taken before the records were written says 0 until the next one
    deadline = time.time() + 60
    while True:
        code, _, body = get(up, "ca-a", "orders", "partitions", world["ca-a"])
        assert code == 200 and body["kind"] == "TopicPartitions"
        if all(p.get("sizeBytes", 1) > 0 for p in body["partitions"]) or time.time() > deadline:
            break
        time.sleep(0.2)
    assert body["records"] == 7
    for p in body["partitions"]:
        assert p.pop("sizeBytes", 1) > 0
    assert body["partitions"] == [
        {"partition": 0, "leader": 1, "replicas": [1], "isr": [1], "startOffset": 0,
         "endOffset": 5, "records": 5},
        {"partition": 1, "leader": 1, "replicas": [1], "isr": [1], "startOffset": 0,
         "endOffset": 2, "records": 2}], body


def test_consumer_group_lag(up, world):
    code, _, body = get(up, "ca-a", "orders", "consumergroups", world["ca-a"])
    assert code == 200 and body["kind"] == "ConsumerGroupList"
    (g,) = [g for g in body["items"] if g["group"] == "ca-a-g"]
    assert g["lag"] == 2 and g["members"] == 0
    assert g["partitions"] == [{"partition": 0, "committedOffset": 3, "endOffset": 5, "lag": 2}]
    # the group reads on: its lag follows
    c = Consumer(dict(up.ssl_conf(), **{"group.id": "ca-a-g", "enable.auto.commit": False}))
    c.commit(offsets=[TopicPartition("ca-a.orders", 0, 5), TopicPartition("ca-a.orders", 1, 1)],
             asynchronous=False)
    c.close()
    body = get(up, "ca-a", "orders", "consumergroups", world["ca-a"])[2]
    (g,) = [g for g in body["items"] if g["group"] == "ca-a-g"]
    assert g["lag"] == 1 and [p["lag"] for p in g["partitions"]] == [0, 1], g
    # groups without offsets on this topic are not listed; ca-b sees none of ca-a's
    assert get(up, "ca-b", "payroll", "consumergroups", world["ca-b"])[2]["items"] == []


def test_messages_newest_first(up, world):
    code, _, body = get(up, "ca-a", "orders", "messages", world["ca-a"], "?limit=3")
    assert code == 200 and body["kind"] == "MessageList"
    items = body["items"]
    assert [(m["partition"], m["offset"]) for m in items] == [(1, 1), (1, 0), (0, 4)], items
    tomb, binary, v4 = items
    assert tomb["value"] is None and tomb["valueEncoding"] == "null"
    assert tomb["key"] == "tombstone" and tomb["keyEncoding"] == "utf8"
    assert binary["valueEncoding"] == "hex" and binary["value"] == "fffe0062696e617279"
    assert binary["key"] is None and binary["timestamp"] == 10000
    assert v4["value"] == "v4" and v4["key"] == "k4" and v4["timestamp"] == 5000
    assert v4["timestampType"] == "CreateTime" and v4["valueBytes"] == 2
    assert v4["headers"] == [{"key": "h", "value": "x4", "valueEncoding": "utf8"},
                             {"key": "bin", "value": "0001", "valueEncoding": "hex"}]
    # default limit 20: everything, newest first
    items = get(up, "ca-a", "orders", "messages", world["ca-a"])[2]["items"]
    assert [m["timestamp"] for m in items] == [11000, 10000, 5000, 4000, 3000, 2000, 1000]


def test_messages_from_offset_and_time(up, world):
    tok = world["ca-a"]
    items = get(up, "ca-a", "orders", "messages", tok, "?partition=0&offset=1&limit=2")[2]["items"]
    assert [(m["partition"], m["offset"], m["value"]) for m in items] == [(0, 1, "v1"),
                                                                          (0, 2, "v2")]
    items = get(up, "ca-a", "orders", "messages", tok, "?timestamp=2500")[2]["items"]
    assert [m["timestamp"] for m in items] == [3000, 4000, 5000, 10000, 11000], items
    items = get(up, "ca-a", "orders", "messages", tok, "?timestamp=99999")[2]["items"]
    assert items == []
    items = get(up, "ca-a", "orders", "messages", tok, "?partition=1&offset=9")[2]["items"]
    assert items == []
    # the admin reads another team's topic; the team itself cannot read ca-b's
    items = get(up, "ca-b", "payroll", "messages", up.token)[2]["items"]
    assert [m["value"] for m in items] == ["b's secret"]


@pytest.mark.parametrize("query, status", [
    ("?limit=0", 400), ("?limit=501", 400), ("?limit=x", 400), ("?limit=", 400),
    ("?offset=-1", 400), ("?offset=1&timestamp=1", 400), ("?partition=-2", 400),
    ("?partition=1x", 400), ("?timestamp=1e3", 400), ("?partition=7", 404),
    ("?limit=500", 200)])
def test_messages_bad_queries(up, world, query, status):
    code, _, body = get(up, "ca-a", "orders", "messages", world["ca-a"], query)
    assert code == status, (query, body)
    if status != 200:
        assert body["kind"] == "Status" and body["message"], body


# ---- the schema registry ----

ORDER_V1 = {"type": "record", "name": "Order", "namespace": "no.nav.ca",
            "fields": [{"name": "id", "type": "long"}, {"name": "item", "type": "string"},
                       {"name": "tags", "type": {"type": "array", "items": "string"}},
                       {"name": "note", "type": ["null", "string"], "default": None},
                       {"name": "kind", "type": {"type": "enum", "name": "Kind",
                                                 "symbols": ["A", "B"]}}]}
ORDER_V2 = dict(ORDER_V1, fields=ORDER_V1["fields"] + [
    {"name": "qty", "type": "int", "default": 1}])


def zigzag(n):
    n = (n << 1) ^ (n >> 63)
    out = b""
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def avro_string(s):
    b = s.encode()
    return zigzag(len(b)) + b


def framed(schema_id, body):
    return b"\x00" + struct.pack(">I", schema_id) + body


def register(up, subject, schema, schema_type=None):
    body = {"schema": json.dumps(schema)}
    if schema_type:
        body["schemaType"] = schema_type
    r = requests.post("https://127.0.0.1:%d/subjects/%s/versions" % (
        int(up.api_url.rsplit(":", 1)[1]) + 1, subject), json=body,
        auth=("kpool-admin", open(os.path.join(up.pki, "registry-admin.password")).read().strip()),
        verify=os.path.join(up.pki, "ca.crt"), timeout=20)
    assert r.status_code == 200, r.text
    return r.json()["id"]


@pytest.fixture(scope="module")
def schemas(up, world):
    """Subjects ca-a.events-value (Avro, two versions), ca-a.events-key (JSON Schema) and
    ca-b.payroll-value; topic ca-a/events holds framed records."""
    code, _, body = up.api("PUT", TOPICS_PATH % "ca-a" + "/events", topic_doc("ca-a", "events"))
    assert code == 201, body
    up.wait_status("ca-a", "events", "RolloutComplete")
    v1 = register(up, "ca-a.events-value", ORDER_V1)
    v2 = register(up, "ca-a.events-value", ORDER_V2)
    k = register(up, "ca-a.events-key", {"type": "object"}, "JSON")
    register(up, "ca-b.payroll-value", {"type": "record", "name": "Pay", "fields": []})
    body1 = zigzag(7) + avro_string("tea") + zigzag(2) + avro_string("hot") + \
        avro_string("green") + zigzag(0) + zigzag(0) + zigzag(1)  # note null, kind B
    body2 = zigzag(8) + avro_string("cake") + zigzag(0) + zigzag(1) + avro_string("big") + \
        zigzag(0) + zigzag(-2)
    p = Producer(dict(up.ssl_conf(), acks="all"))
    for key, value in ((framed(k, b'{"customer": 5}'), framed(v1, body1)),
                       (None, framed(v2, body2)),
                       (None, framed(99999, b"\x02")),
                       (None, framed(v1, body1[:3]))):
        p.produce("ca-a.events", value, key=key, partition=0)
    assert p.flush(30) == 0
    return {"v1": v1, "v2": v2, "key": k}


def test_messages_decoded_through_the_registry(up, world, schemas):
    code, _, body = get(up, "ca-a", "events", "messages", world["ca-a"], "?offset=0")
    assert code == 200, body
    a, b, unknown, short = body["items"]
    assert a["valueSchema"] == {"id": schemas["v1"], "type": "AVRO"}
    assert a["valueDecoded"] == {"id": 7, "item": "tea", "tags": ["hot", "green"], "note": None,
                                 "kind": "B"}, a
    assert a["keySchema"] == {"id": schemas["key"], "type": "JSON"}
    assert a["keyDecoded"] == {"customer": 5}
    assert a["valueEncoding"] == "hex" and a["schemaId"] == schemas["v1"]  # the bytes stay
    assert b["valueDecoded"] == {"id": 8, "item": "cake", "tags": [], "note": "big",
                                 "kind": "A", "qty": -2}, b
    assert "valueDecoded" not in unknown
    assert unknown["valueSchemaError"] == "schema id 99999 is not in the registry"
    assert "valueDecoded" not in short and "at byte" in short["valueSchemaError"], short
    # records without the framing are not touched
    items = get(up, "ca-a", "orders", "messages", world["ca-a"])[2]["items"]
    assert not any(k.endswith(("Decoded", "Schema", "SchemaError")) for m in items for k in m)


def test_subjects_per_team(up, world, schemas):
    code, h, body = up.http("GET", "/apis/kpool.dev/v1/namespaces/ca-a/subjects",
                            token=world["ca-a"])
    assert code == 200 and body["kind"] == "SubjectList" and body["errors"] == [], body
    assert [s["subject"] for s in body["items"]] == ["ca-a.events-key", "ca-a.events-value"]
    ev = body["items"][1]
    assert ev["pool"] == "dev" and ev["compatibilityLevel"] == "BACKWARD"
    assert [(v["version"], v["id"], v["schemaType"]) for v in ev["versions"]] == [
        (1, schemas["v1"], "AVRO"), (2, schemas["v2"], "AVRO")]
    assert json.loads(ev["versions"][1]["schema"])["fields"][-1]["name"] == "qty"
    # another team's subjects: not listed for ca-a, and its token cannot ask for ca-a's
    code, _, body = up.http("GET", "/apis/kpool.dev/v1/namespaces/ca-b/subjects",
                            token=world["ca-a"])
    assert code == 403 and body["reason"] == "Forbidden", body
    body = up.http("GET", "/apis/kpool.dev/v1/namespaces/ca-b/subjects", token=world["ca-b"])[2]
    assert [s["subject"] for s in body["items"]] == ["ca-b.payroll-value"]
    assert up.http("GET", "/apis/kpool.dev/v1/namespaces/ca-a/subjects")[0] == 401
    assert up.api("GET", "/apis/kpool.dev/v1/namespaces/ca-a/subjects")[0] == 200


def test_pool_health(up, world):
    for tok in (world["ca-a"], up.token):
        code, _, body = up.http("GET", "/apis/kpool.dev/v1/pools/dev/health", token=tok)
        assert code == 200 and body["kind"] == "PoolHealth", body
        (b,) = body["brokers"]
        assert b["id"] == 1 and "%s:%d" % (b["host"], b["port"]) == up.kafka
        assert body["offlinePartitions"] == 0 and body["underReplicatedPartitions"] == 0
        assert body["partitions"] >= 5 and body["topics"] >= 3  # ca-a.orders, ca-b.payroll...
        # counts only: no topic names of other teams
        assert "ca-b" not in json.dumps(body)
    assert up.http("GET", "/apis/kpool.dev/v1/pools/dev/health")[0] == 401
    code, _, body = up.http("GET", "/apis/kpool.dev/v1/pools/nope/health", token=world["ca-a"])
    assert code == 404 and body["reason"] == "NotFound"
    assert up.http("GET", "/apis/kpool.dev/v1/pools/dev/healthz", token=up.token)[0] == 404


def wait_for(what, fn, timeout=60):
    deadline = time.time() + timeout
    while True:
        got = fn()
        if got or time.time() > deadline:
            assert got, what
            return got
        time.sleep(0.1)


def test_partition_sizes_and_produce_rate(up, world):
    """Each partition's size in bytes (the broker's log segments, as DescribeLogDirs
    answers) and the topic's total and produce rate, from the pool's /metrics."""
    import re
    code, _, body = up.api("PUT", TOPICS_PATH % "ca-a" + "/sized",
                           topic_doc("ca-a", "sized", {"partitions": 2}))
    assert code == 201, body
    up.wait_status("ca-a", "sized", "RolloutComplete")
    p = Producer(dict(up.ssl_conf(), acks="all"))
    for i in range(20):
        p.produce("ca-a.sized", b"x" * 100, partition=0)
    assert p.flush(30) == 0

    def sized():
        code, _, body = get(up, "ca-a", "sized", "partitions", world["ca-a"])
        assert code == 200, body
        return body if body.get("sizeBytes", 0) > 2000 and body.get("recordsPerSecond") == 0 \
            else None
    # quiet once the samples are past the records: a zero rate
    body = wait_for("sizes and a zero rate in the partitions answer", sized)
    sizes = {p["partition"]: p["sizeBytes"] for p in body["partitions"]}
    assert sizes[0] > 2000 and sizes[1] == 0, sizes
    c = http.client.HTTPConnection(up.metrics, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    for p, size in sizes.items():
        m = re.search(r'^kpool_partition_size_bytes\{topic="ca-a.sized",partition="%d"\} (\d+)$'
                      % p, text, re.M)
        assert m and int(m.group(1)) == size, (p, size)
    assert body["sizeBytes"] == sum(sizes.values())
    # records now: the rate turns positive in the next samples
    p = Producer(dict(up.ssl_conf(), acks="all"))
    for i in range(200):
        p.produce("ca-a.sized", b"rate %d" % i, partition=1)
    assert p.flush(30) == 0
    body = wait_for("a produce rate", lambda: (lambda b: b if b[2].get("recordsPerSecond")
                                               else None)(get(up, "ca-a", "sized",
                                                              "partitions", world["ca-a"])))[2]
    assert body["recordsPerSecond"] > 0
    assert body["sizeBytes"] > sum(sizes.values())
    assert body["produceRecordsPerSecond"] is not None and body["produceBytesPerSecond"] is not None
    # a consumer reading it (again and again, until seen): the consume rate, from the
    # brokers' kpool_topic_records_out_total
    import threading
    stop = threading.Event()

    def read_loop():
        while not stop.is_set():
            c = Consumer(dict(up.ssl_conf(), **{"group.id": "ca-a-rate", "enable.auto.commit": False}))
            c.assign([TopicPartition("ca-a.sized", 1, 0)])
            for _ in range(20):
                if stop.is_set():
                    break
                c.poll(0.2)
            c.close()
    reader = threading.Thread(target=read_loop, daemon=True)
    reader.start()
    try:
        body = wait_for("a consume rate", lambda: (lambda b: b if b[2].get("consumeRecordsPerSecond")
                                                   else None)(get(up, "ca-a", "sized",
                                                                  "partitions", world["ca-a"])),
                        timeout=60)[2]
    finally:
        stop.set()
        reader.join(30)
    assert body["consumeRecordsPerSecond"] > 0 and body["consumeBytesPerSecond"] > 0, body
    # another team's topic: still 403, sizes or not
    assert get(up, "ca-a", "sized", "partitions", world["ca-b"])[0] == 403
    up.api("DELETE", TOPICS_PATH % "ca-a" + "/sized")


def test_lag_history_sampled_by_the_control_plane(up, world):
    """Once a topic's consumer groups are asked for, the control plane samples their lag on
    its own (at least a second apart): the history grows with no further request and shows
    the lag as it was (2 before test_consumer_group_lag's commit, 1 since). Another team:
    403."""
    code, _, body = get(up, "ca-a", "orders", "consumergroups", world["ca-a"])
    assert code == 200 and body["lagHistory"], body
    assert body["lagHistory"][-1]["lag"] == {"ca-a-g": 1}, body["lagHistory"]
    assert {"ca-a-g": 2} in [h["lag"] for h in body["lagHistory"]]  # the earlier requests'
    before = body["lagHistory"][-1]["time"]
    time.sleep(3.5)  # no request meanwhile
    code, _, body = get(up, "ca-a", "orders", "consumergroups", world["ca-a"])
    hist = body["lagHistory"]
    times = [h["time"] for h in hist]
    assert times == sorted(times) and len(set(times)) == len(times)
    since = [h for h in hist if h["time"] > before]
    assert len(since) >= 3, hist  # the sampler's (about one a second) and this request's
    assert all(h["lag"] == {"ca-a-g": 1} for h in since), since
    assert get(up, "ca-a", "orders", "consumergroups", world["ca-b"])[0] == 403


def test_pool_metrics_history(up, world):
    """The pool's history, sampled by the control plane from the broker's /metrics: request
    rate, latency, bytes and records per second, disk use, for any valid token."""
    def history():
        code, _, body = up.http("GET", "/apis/kpool.dev/v1/pools/dev/metrics",
                                token=world["ca-b"])
        assert code == 200 and body["kind"] == "PoolMetrics", body
        return body if len(body["samples"]) >= 3 and any(
            s["requestsPerSecond"] for s in body["samples"]) else None
    body = wait_for("three samples with requests", history)
    assert body["intervalMs"] == SAMPLE_MS and body["samplesMax"] == 360
    assert body["metricsUrl"] == "http://%s/metrics" % up.metrics and body["lastError"] is None
    times = [s["time"] for s in body["samples"]]
    assert times == sorted(times) and len(set(times)) == len(times)
    for s in body["samples"]:
        assert set(s) == {"time", "requestsPerSecond", "latencyMeanMs", "latencyP99Ms",
                          "bytesInPerSecond", "bytesOutPerSecond", "recordsInPerSecond",
                          "diskUsedBytes"}, s
        assert s["requestsPerSecond"] >= 0 and s["diskUsedBytes"] >= 0
    assert body["samples"][-1]["diskUsedBytes"] > 0  # the world's records
    busy = [s for s in body["samples"] if s["requestsPerSecond"]]
    timed = [s for s in busy if s["latencyMeanMs"] is not None]
    assert timed and all(s["latencyMeanMs"] >= 0 and s["latencyP99Ms"] >= 0 for s in timed)
    assert any(s["bytesInPerSecond"] > 0 and s["bytesOutPerSecond"] > 0 for s in busy)
    (b,) = body["brokers"]
    assert b["diskUsedBytes"] > 0 and b["diskCapacityBytes"] >= b["diskFreeBytes"] > 0
    # no topic names in it (any team may read it)
    assert "ca-a" not in json.dumps(body)
    assert up.http("GET", "/apis/kpool.dev/v1/pools/dev/metrics")[0] == 401
    code, _, body = up.http("GET", "/apis/kpool.dev/v1/pools/nope/metrics", token=world["ca-a"])
    assert code == 404 and body["reason"] == "NotFound"
    assert up.http("POST", "/apis/kpool.dev/v1/pools/dev/metrics", token=up.token)[0] == 405


def test_pool_metrics_without_metrics_url(up, world):
    """A pool without spec.metricsUrl has an empty history that says why; one whose broker
    does not answer says that."""
    for name, spec in (("quiet", {"bootstrapServers": "127.0.0.1:1"}),
                       ("deaf", {"bootstrapServers": "127.0.0.1:1",
                                 "metricsUrl": "http://127.0.0.1:1/metrics"})):
        code, _, body = up.api("PUT", "/apis/kpool.dev/v1/pools/" + name, {
            "apiVersion": "kpool.dev/v1", "kind": "Pool", "metadata": {"name": name},
            "spec": spec})
        assert code == 201, body
    try:
        code, _, body = up.api("GET", "/apis/kpool.dev/v1/pools/quiet/metrics")
        assert code == 200 and body["samples"] == [] and "metricsUrl" in body["message"], body

        def failed():
            body = up.api("GET", "/apis/kpool.dev/v1/pools/deaf/metrics")[2]
            return body if body.get("lastError") else None
        body = wait_for("the scrape's error", failed)
        assert "127.0.0.1:1" in body["lastError"] and body["samples"] == [], body
    finally:
        up.api("DELETE", "/apis/kpool.dev/v1/pools/quiet")
        up.api("DELETE", "/apis/kpool.dev/v1/pools/deaf")


def test_doctor_findings_match_the_cli(up, world):
    """An application's `kpool doctor` findings from the API: the same problems, fixes and
    oks the CLI prints with --no-connect (ca-a's Topics grant application "app": orders is
    fine, broken is FailedPrepare); a missing application; cross-team 403."""
    apps = "/apis/nais.io/v1alpha1/namespaces/%s/applications"
    code, _, body = up.api("PUT", apps % "ca-a" + "/app", {
        "apiVersion": "nais.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "app", "namespace": "ca-a"},
        "spec": {"image": "x", "kafka": {"pool": "dev"}}})
    assert code in (200, 201), body
    # team ca-b grants ca-a's app access to a Topic of its own: the admin's report names it,
    # ca-a's token may not read ca-b's Topics, so its report does not (as the CLI with it)
    code, _, body = up.api("PUT", TOPICS_PATH % "ca-b" + "/shared", topic_doc(
        "ca-b", "shared", acl=[{"team": "ca-a", "application": "app", "access": "read"}]))
    assert code == 201, body
    up.wait_status("ca-b", "shared", "RolloutComplete")
    up.wait_status("ca-a", "app", "RolloutComplete", path=apps, timeout=60)
    path = "/apis/kpool.dev/v1/namespaces/ca-a/applications/app/doctor"
    code, _, rep = up.http("GET", path, token=up.token)
    assert code == 200 and any(f["message"].startswith("ca-b.shared: read")
                               for f in rep["findings"]), rep
    code, _, rep = up.http("GET", path, token=world["ca-a"])
    assert code == 200 and rep["kind"] == "DoctorReport", rep
    levels = [f["level"] for f in rep["findings"]]
    text = [f["message"] for f in rep["findings"]]
    assert rep["problems"] == levels.count("problem") == 1, rep
    assert "ca-b" not in json.dumps(rep), rep
    assert any(m.startswith("ca-a.orders: readwrite") for m in text), text
    assert any("Topic ca-a/broken is FailedPrepare" in m for m in text), text
    # the CLI says the same (its pool check aside, which the API does not make), here with the
    # admin token of the CLI's configuration: the admin's report
    code, _, rep = up.http("GET", path, token=up.token)
    out = up.kpool("doctor", "-n", "ca-a", "--app", "app", "--no-connect", expect=1).stdout
    cli = [l.strip().split(": ", 1) for l in out.splitlines()
           if l.startswith("  ") and l.strip().split(":")[0] in ("ok", "problem", "fix")]
    assert len(cli) >= 4 and [l for l, _ in cli].count("problem") == 1, out
    api = {(f["level"], f["message"]) for f in rep["findings"]}
    for level, msg in cli:
        if msg.startswith("Secret ") or "keys; brokers" in msg:
            continue  # the secret's keys: the CLI opens it, the console only sees it exists
        assert (level, msg) in api, (level, msg, rep["findings"])
    # an application that does not exist
    code, _, rep = up.http("GET", "/apis/kpool.dev/v1/namespaces/ca-a/applications/nope/doctor",
                           token=up.token)
    assert code == 200 and rep["problems"] == 1, rep
    assert "AivenApplication ca-a/nope does not exist" in rep["findings"][0]["message"]
    # another team's token may not; nobody without a token
    code, _, body = up.http("GET", path, token=world["ca-b"])
    assert code == 403 and body["reason"] == "Forbidden", body
    assert up.http("GET", path)[0] == 401
    assert up.http("DELETE", path, token=up.token)[0] == 405
    # ?connect=true: also what the pool says with the app's own credentials (the CLI's
    # "Pool (with NS/APP's credentials)" section), the same lines the CLI prints
    code, _, rep = up.http("GET", path + "?connect=true", token=world["ca-a"])
    assert code == 200 and rep["connected"] is True, rep
    live = [(f["level"], f["message"]) for f in rep["findings"] if f.get("section") == "pool"]
    assert any(l == "ok" and m.startswith("connected to ") and m.endswith(" over TLS")
               for l, m in live), live
    assert ("ok", "ca-a.orders: exists and is authorized") in live, live
    assert any(l == "problem" and m.startswith("ca-a.broken: ") for l, m in live), live
    assert rep["problems"] == 2, rep  # broken is FailedPrepare, and not in the pool
    assert "PRIVATE KEY" not in json.dumps(rep) and "CERTIFICATE" not in json.dumps(rep)
    code, _, rep = up.http("GET", path + "?connect=true", token=up.token)
    assert code == 200 and rep["connected"] is True, rep
    live = {(f["level"], f["message"]) for f in rep["findings"] if f.get("section") == "pool"}
    out = up.kpool("doctor", "-n", "ca-a", "--app", "app", expect=1).stdout
    pool_part = out.split("Pool (with ca-a/app's credentials):", 1)[1]
    cli = [l.strip().split(": ", 1) for l in pool_part.splitlines()
           if l.startswith("  ") and l.strip().split(":")[0] in ("ok", "problem", "fix")]
    assert len(cli) >= 3, out
    for level, msg in cli:
        assert (level, msg) in live, (level, msg, live)
    assert up.http("GET", path + "?connect=maybe", token=world["ca-a"])[0] == 400
    assert up.http("GET", path + "?connect=true", token=world["ca-b"])[0] == 403
    # without the parameter (or false): no Kafka client, no pool section
    code, _, rep = up.http("GET", path + "?connect=false", token=world["ca-a"])
    assert code == 200 and rep["connected"] is False and not [
        f for f in rep["findings"] if f.get("section")], rep
    up.api("DELETE", apps % "ca-a" + "/app")
    up.api("DELETE", TOPICS_PATH % "ca-b" + "/shared")


def test_backup_download(up, world):
    code, _, body = up.api("POST", "/apis/kpool.dev/v1/backups")
    assert code == 201, body
    code, _, body = up.api("GET", "/apis/kpool.dev/v1/backups")
    assert code == 200 and body["items"], body
    f = body["items"][0]
    url = "/apis/kpool.dev/v1/backups/files/" + f["name"]
    c = http.client.HTTPConnection(up.api_url, timeout=10)
    c.request("GET", url, headers={"Authorization": "Bearer " + up.token})
    r = c.getresponse()
    data = r.read()
    c.close()
    assert r.status == 200, data
    assert data == open(f["path"], "rb").read() and len(data) == f["sizeBytes"]
    assert r.headers["Content-Disposition"] == 'attachment; filename="%s"' % f["name"]
    assert r.headers["Content-Type"] in ("application/gzip", "application/json")
    # teams may not, nobody without a token may
    assert up.http("GET", url, token=world["ca-a"], raw=True)[0] == 403
    assert up.http("GET", url, raw=True)[0] == 401
    # only what the list names: no other file of the directory, no path outside it
    bdir = os.path.dirname(f["path"])
    with open(os.path.join(bdir, "notes.txt"), "w") as fh:
        fh.write("not a backup")
    for bad in ("notes.txt", "..%2fcontrol%2fstore.json", "../control", "%2e%2e",
                "dev-20990101T000000.000Z.json", "", f["name"] + "/x"):
        code, _, body = up.http("GET", "/apis/kpool.dev/v1/backups/files/" + bad,
                                token=up.token, raw=True)
        assert code == 404, (bad, body)
    assert up.http("POST", url, token=up.token, raw=True)[0] == 405


# last in this file: the unreachable pool would slow every later subjects request down

def test_pool_down_is_503_and_the_api_keeps_answering(up, world):
    """A pool that does not answer: each console request for it waits the 10 s timeout and
    is 503 naming the pool, without holding the API's threads (the connection is suspended
    while a worker waits): meanwhile the API and console requests for a healthy pool answer
    at once, and beyond 8 waiting requests the next is refused at once (503, Retry-After)."""
    import threading
    code, _, body = up.api("PUT", "/apis/kpool.dev/v1/pools/ghost", {
        "apiVersion": "kpool.dev/v1", "kind": "Pool", "metadata": {"name": "ghost"},
        "spec": {"bootstrapServers": "127.0.0.1:1"}})
    assert code == 201, body
    code, _, body = up.api("PUT", TOPICS_PATH % "ca-a" + "/lost",
                           topic_doc("ca-a", "lost", pool="ghost"))
    assert code == 201, body
    try:
        results = []

        def slow():
            results.append(get(up, "ca-a", "lost", "partitions", world["ca-a"]))

        # "meanwhile" is "before any waiting request came back" (they wait 10 s): checked on
        # `results` rather than on a clock, with an 8 s bound as well (4 s was tight when the
        # machine is loaded); the sleeps give the server time to take up the waiting ones
        waiting = [threading.Thread(target=slow) for _ in range(7)]
        t0 = time.time()
        for t in waiting:  # all at once: several land on one API thread
            t.start()
        time.sleep(2)
        code, _, _ = up.http("GET", TOPICS_PATH % "ca-a", token=world["ca-a"])
        assert code == 200 and not results and time.time() - t0 < 8  # the API answers meanwhile
        code, _, body = get(up, "ca-a", "orders", "partitions", world["ca-a"])
        assert code == 200 and body["records"] == 7 and not results and time.time() - t0 < 8, body
        more = threading.Thread(target=slow)  # the 8th waits too
        more.start()
        time.sleep(1.5)
        code, h, body = get(up, "ca-a", "lost", "messages", world["ca-a"])
        assert code == 503 and h["Retry-After"] == "2" and "all waiting" in body["message"], body
        assert not results and time.time() - t0 < 8  # refused at once, while 8 wait
        for t in waiting + [more]:
            t.join(60)
        assert [r[0] for r in results] == [503] * 8, results
        for _, _, body in results:
            assert body["reason"] == "ServiceUnavailable"
            assert "pool unreachable at 127.0.0.1:1" in body["message"], body
        # they waited side by side, not one after another (that would be 80 s)
        assert time.time() - t0 < 40
    finally:
        up.api("DELETE", TOPICS_PATH % "ca-a" + "/lost")
        up.api("DELETE", "/apis/kpool.dev/v1/pools/ghost")


@pytest.mark.parametrize("path", [
    "/apis/kpool.dev/v1/namespaces/%ff%fe/subjects",
    "/apis/kpool.dev/v1/namespaces/ca-a/topics/%c3%28/messages",
    "/apis/kpool.dev/v1/namespaces/Bad_NS/topics/orders/partitions",
    "/apis/kpool.dev/v1/pools/%ff/health"])
def test_bad_names_in_the_url_are_404(up, path):
    """Names that cannot exist (not UTF-8, not a Kubernetes name) are 404 with a readable
    Status, for the admin too (who passes every namespace check)."""
    code, _, body = up.api("GET", path)
    assert code == 404 and body["reason"] == "NotFound" and body["message"], body


def test_stop_while_a_console_request_waits_for_a_pool():
    """`kpool up` stops cleanly (exit 0, no sanitizer report: KpoolUp.stop checks) while a
    console request waits for a pool that is down and another's client has gone away:
    libmicrohttpd must not be stopped with a suspended connection."""
    import threading
    k = T.KpoolUp().start()
    try:
        k.api("PUT", "/apis/kpool.dev/v1/pools/ghost", {
            "apiVersion": "kpool.dev/v1", "kind": "Pool", "metadata": {"name": "ghost"},
            "spec": {"bootstrapServers": "127.0.0.1:1"}})
        k.api("PUT", TOPICS_PATH % "st" + "/lost", topic_doc("st", "lost", pool="ghost"))
        path = CONSOLE % ("st", "lost", "partitions")
        def wait():
            try:
                k.api("GET", path)
            except OSError:  # the stop may close it before the answer leaves
                pass

        waiting = threading.Thread(target=wait, daemon=True)
        waiting.start()
        c = http.client.HTTPConnection(k.api_url, timeout=10)  # a client that leaves
        c.request("GET", path, headers={"Authorization": "Bearer " + k.token})
        time.sleep(0.5)
        c.close()
        time.sleep(0.5)
    finally:
        k.stop()
