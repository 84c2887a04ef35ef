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
    (403 for its token, its subjects not listed).
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


up = harness.up_fixture(T.KpoolUp)


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
    code, _, body = get(up, "ca-a", "orders", "partitions", world["ca-a"])
    assert code == 200 and body["kind"] == "TopicPartitions"
    assert body["records"] == 7
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

        waiting = [threading.Thread(target=slow) for _ in range(7)]
        t0 = time.time()
        for t in waiting:  # all at once: several land on one API thread
            t.start()
        time.sleep(1)
        code, _, _ = up.http("GET", TOPICS_PATH % "ca-a", token=world["ca-a"])
        assert code == 200 and time.time() - t0 < 4  # the API answers meanwhile
        code, _, body = get(up, "ca-a", "orders", "partitions", world["ca-a"])
        assert code == 200 and body["records"] == 7 and time.time() - t0 < 4, body
        more = threading.Thread(target=slow)  # the 8th waits too
        more.start()
        time.sleep(0.5)
        code, h, body = get(up, "ca-a", "lost", "messages", world["ca-a"])
        assert code == 503 and h["Retry-After"] == "2" and "all waiting" in body["message"], body
        assert time.time() - t0 < 4  # refused at once
        for t in waiting + [more]:
            t.join(30)
        assert [r[0] for r in results] == [503] * 8, results
        for _, _, body in results:
            assert body["reason"] == "ServiceUnavailable"
            assert "pool unreachable at 127.0.0.1:1" in body["message"], body
        assert time.time() - t0 < 20  # they waited side by side, not one after another
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
