#!/usr/bin/env python3
"""conn_flood.py — a broker's memory across connection floods (docs/performance.md).

  bench/conn_flood.py --pid PID --port PORT [--count 5000] [--rounds 3] [--tls PKI_DIR]

Each round opens --count connections (with --tls: a TLS handshake with PKI_DIR/admin.crt,
as `kpool up` writes it), sends one ApiVersions on each and reads the answer, keeps all open
until the last is, then closes them all and waits 3 s. Prints the broker's VmRSS at the
start, at each round's peak and after each round.
"""
import argparse
import resource
import socket
import ssl
import struct
import time


def api_versions_request(corr):
    body = struct.pack(">hhi", 18, 0, corr) + struct.pack(">h", 5) + b"flood"
    return struct.pack(">i", len(body)) + body


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed by the broker")
        buf += chunk
    return buf


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024
    return -1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tls", metavar="PKI_DIR")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ctx = None
    if a.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(a.tls + "/ca.crt")
        ctx.load_cert_chain(a.tls + "/admin.crt", a.tls + "/admin.key")
        ctx.check_hostname = False
    print("start: %d MiB" % rss_mib(a.pid))
    for r in range(a.rounds):
        socks = []
        for i in range(a.count):
            s = socket.create_connection(("127.0.0.1", a.port), timeout=30)
            if ctx:
                s = ctx.wrap_socket(s)
            s.sendall(api_versions_request(i))
            n = struct.unpack(">i", recv_exact(s, 4))[0]
            recv_exact(s, n)
            socks.append(s)
        peak = rss_mib(a.pid)
        for s in socks:
            s.close()
        time.sleep(3)
        print("round %d: peak %d MiB, after closing %d MiB" % (r + 1, peak, rss_mib(a.pid)))


if __name__ == "__main__":
    main()
