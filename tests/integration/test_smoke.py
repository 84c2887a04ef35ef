"""Smoke: a broker starts, serves metadata to kcat, round-trips a message, and stops cleanly."""
import subprocess
import urllib.request


def test_kcat_roundtrip(broker_factory):
    b = broker_factory(auto_create_topics_enable=True)
    out = subprocess.run(["kcat", "-b", b.bootstrap, "-L"], capture_output=True, text=True,
                         timeout=30)
    assert "1 brokers" in out.stdout, out.stdout + out.stderr
    subprocess.run(["kcat", "-b", b.bootstrap, "-t", "smoke", "-P", "-K:"],
                   input="k1:hello\nk2:world\n", text=True, check=True, timeout=30)
    out = subprocess.run(["kcat", "-b", b.bootstrap, "-t", "smoke", "-C", "-e", "-o", "beginning",
                          "-f", "%o %k %s\n"], capture_output=True, text=True, timeout=30)
    assert out.stdout.splitlines() == ["0 k1 hello", "1 k2 world"], out.stderr


def test_health_endpoints(broker):
    for path, body in (("/livez", "ok"), ("/readyz", "ready")):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (broker.admin_port, path)) as r:
            assert r.status == 200 and r.read().decode().strip() == body
    text = broker.metrics()
    # a fresh broker holds only the internal __consumer_offsets topic (50 partitions)
    assert "kpool_connections" in text
    assert "kpool_topics 1\n" in text and "kpool_partitions 50\n" in text, text
