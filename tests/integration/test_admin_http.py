"""The health port keeps answering under slow clients (issue 12 item 11).

Before: 64 connections with 10 s timeouts; 300 clients that open a request and trickle it
(or say nothing) left /livez unanswered, and a liveness probe would restart a healthy pool.
"""
import socket
import time
import urllib.request


def _get(port, path, timeout):
    t0 = time.time()
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
        return r.status, r.read().decode(), time.time() - t0


def test_livez_and_readyz_answer_under_300_slow_connections(broker):
    slow = []
    try:
        for i in range(300):
            s = socket.create_connection(("127.0.0.1", broker.admin_port), timeout=5)
            if i % 2:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finishes
            slow.append(s)
        time.sleep(0.5)
        for path, body in (("/livez", "ok\n"), ("/readyz", "ready\n")):
            status, text, took = _get(broker.admin_port, path, timeout=2)
            assert (status, text) == (200, body)
            assert took < 2
        # and a slow client that keeps trickling is not what keeps the others out for long:
        # the metrics page answers too
        status, text, _ = _get(broker.admin_port, "/metrics", timeout=2)
        assert status == 200 and "kpool_connections" in text
    finally:
        for s in slow:
            s.close()


def test_stalled_connection_is_dropped(broker):
    """A connection that stops sending is closed after a few seconds, not held."""
    s = socket.create_connection(("127.0.0.1", broker.admin_port), timeout=10)
    s.sendall(b"GET /livez HTTP/1.1\r\n")
    t0 = time.time()
    s.settimeout(10)
    data = s.recv(1024)
    while data:
        data = s.recv(1024)
    assert time.time() - t0 < 6
    s.close()
