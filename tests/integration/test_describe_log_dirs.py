"""DescribeLogDirs (ApiKey 35, v0-1) as Kafka 3.x answers it, over TLS with the authorizer
on, and the same sizes in the broker's /metrics (what the web console reads).

Covered: the one log directory with every topic (Topics null) and each partition's size equal
to its segment files' bytes on disk; a request naming topics and partitions answers those
only (an unknown topic or partition is left out, as Kafka); a principal without DESCRIBE on
CLUSTER gets an empty result list (v0-1 carry no top-level error), and with it the sizes;
kpool_partition_size_bytes / kpool_partition_end_offset / kpool_log_dir_* in /metrics.

Fails on the old code: ApiKey 35 was not advertised and a request for it closed the
connection; /metrics had no sizes.
"""
import glob
import os
import re

import kdefs
import kwire
from test_tls_acl import (acl, create_topics, grant, kpy_admin, pki, rdk, tls_broker,  # noqa: F401
                          tls_context)

import pytest
from confluent_kafka import Producer

pytestmark = pytest.mark.filterwarnings("ignore:ssl.PROTOCOL_TLS is deprecated")

API_DESCRIBE_LOG_DIRS = 35


def describe(b, pki, ident, version, topics):
    import socket
    s = socket.create_connection(("127.0.0.1", b.port), timeout=15)
    t = tls_context(pki, ident).wrap_socket(s, server_hostname="127.0.0.1")
    try:
        t.sendall(kdefs.encode_request(API_DESCRIBE_LOG_DIRS, version, 7, {"Topics": topics}))
        corr, body = kdefs.decode_response(API_DESCRIBE_LOG_DIRS, version, kwire.recv_frame(t))
    finally:
        t.close()
    assert corr == 7
    return body


def sizes(body):
    """{(topic, partition): size} of the single result."""
    (r,) = body["Results"]
    assert r["ErrorCode"] == 0
    out = {}
    for t in r["Topics"]:
        for p in t["Partitions"]:
            assert p["OffsetLag"] == 0 and not p["IsFutureKey"]
            out[(t["Name"].decode(), p["PartitionIndex"])] = p["PartitionSize"]
    return r["LogDir"].decode(), out


def on_disk(log_dir, topic, partition):
    return sum(os.path.getsize(f) for f in glob.glob(os.path.join(
        log_dir, "%s-%d" % (topic, partition), "*.log")))


def test_describe_log_dirs(broker_factory, pki):
    b = tls_broker(broker_factory, pki)
    admin = kpy_admin(b, pki)
    create_topics(admin, "ld-a", partitions=2)
    create_topics(admin, "ld-b")
    p = Producer(rdk(b, pki, pki["admin"], acks="all"))
    for i in range(50):
        p.produce("ld-a", b"x" * 1000 + b"%d" % i, partition=0)
    p.produce("ld-b", b"small", partition=0)
    assert p.flush(30) == 0
    for v in (0, 1):
        log_dir, got = sizes(describe(b, pki, pki["admin"], v, None))
        assert os.path.isdir(log_dir)
        assert got[("ld-a", 0)] > 50 * 1000 and got[("ld-a", 1)] == 0, got
        for tp in (("ld-a", 0), ("ld-a", 1), ("ld-b", 0)):
            assert got[tp] == on_disk(log_dir, *tp), (tp, got[tp])
        # named topics and partitions only; unknown ones left out
        _, some = sizes(describe(b, pki, pki["admin"], v, [
            {"Topic": "ld-a", "Partitions": [1, 9]}, {"Topic": "nope", "Partitions": [0]}]))
        assert some == {("ld-a", 1): 0}, some
    # without DESCRIBE on CLUSTER: an empty list, as Kafka's v0-1
    alice = pki["alice"]
    assert describe(b, pki, alice, 1, None)["Results"] == []
    grant(admin, acl(alice.principal, "CLUSTER", "kafka-cluster", "DESCRIBE"))
    _, got = sizes(describe(b, pki, alice, 1, None))
    assert got[("ld-b", 0)] > 0
    # the same figures in /metrics
    text = b.metrics()
    m = re.search(r'^kpool_partition_size_bytes\{topic="ld-a",partition="0"\} (\d+)$', text, re.M)
    assert m and int(m.group(1)) == got[("ld-a", 0)], text[:2000]
    assert re.search(r'^kpool_partition_end_offset\{topic="ld-a",partition="0"\} 50$', text, re.M)
    total = int(re.search(r"^kpool_log_dir_size_bytes (\d+)$", text, re.M).group(1))
    assert total == sum(got.values()) and total > 50 * 1000
    assert int(re.search(r"^kpool_log_dir_capacity_bytes (\d+)$", text, re.M).group(1)) > 0
    assert re.search(r"^kpool_log_dir_free_bytes \d+$", text, re.M)
    admin.close()
