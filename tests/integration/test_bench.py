"""`kpool bench`, the load generator behind bench/peers.sh and docs/performance.md.

Its figures are only as good as its counting, so a short run against a real broker, over
plaintext and over mutual TLS, must produce and read back exactly what it says, agree with
the partitions' end offsets as confluent-kafka sees them, and state the client's own CPU
time (`cpu_s`, what bench/tls_ratio.py divides by the payload next to the broker's CPU).
"""
import json
import subprocess

import pytest
from confluent_kafka import Consumer, TopicPartition

from harness import KPOOL_BIN, sanitizer_env
from test_tls_acl import pki, rdk, tls_broker  # noqa: F401

pytestmark = pytest.mark.filterwarnings("ignore:ssl.PROTOCOL_TLS is deprecated")

COUNT, SIZE, PARTS = 4000, 300, 3


def bench(bootstrap, *extra):
    r = subprocess.run([KPOOL_BIN, "bench", "-b", bootstrap, "--mode", "sequential",
                        "--topic", "bench-t", "--partitions", str(PARTS), "--message-size",
                        str(SIZE), "--count", str(COUNT), "--acks", "all", "--idempotence",
                        "--timeout", "60", "--json", "-q", *extra],
                       capture_output=True, text=True, timeout=180, env=sanitizer_env())
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def end_offsets(conf):
    c = Consumer(dict(conf, **{"group.id": "bench-check"}))
    try:
        return sum(c.get_watermark_offsets(TopicPartition("bench-t", p), timeout=30)[1]
                   for p in range(PARTS))
    finally:
        c.close()


def check(out, conf):
    assert out["ok"] is True and out["mode"] == "sequential" and out["partitions"] == PARTS
    p, c = out["produce"], out["consume"]
    assert (p["msgs"], p["bytes"], p["errors"]) == (COUNT, COUNT * SIZE, 0)
    assert (c["msgs"], c["bytes"], c["errors"]) == (COUNT, COUNT * SIZE, 0)
    assert p["msg_per_s"] > 0 and c["msg_per_s"] > 0
    # the client's CPU: some was spent, and never more than two cores' worth of its run
    assert 0 < out["cpu_s"] < 2 * (p["seconds"] + c["seconds"]) + 30
    assert end_offsets(conf) == COUNT


def test_bench_counts_every_message_over_plaintext(broker):
    check(bench(broker.bootstrap), {"bootstrap.servers": broker.bootstrap})


def test_bench_counts_every_message_over_mutual_tls(broker_factory, pki):  # noqa: F811
    b = tls_broker(broker_factory, pki, authorizer=False)
    me = pki["admin"]
    out = bench(b.bootstrap, "--security-protocol", "ssl", "--ssl-ca", pki.ca, "--ssl-cert",
                me.cert, "--ssl-key", me.key)
    check(out, rdk(b, pki, me))
