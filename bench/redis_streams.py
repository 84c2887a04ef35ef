#!/usr/bin/env python3
"""redis_streams.py — the Redis Streams side of bench/peers.sh, with no client library.

Produce: XADD of --count messages of --size bytes, spread round-robin over --streams stream
keys (the analogue of partitions), pipelined in batches of --batch commands on one connection
(the analogue of librdkafka's batches: one round trip and, with appendfsync always, one group
fsync per batch). Latency of a message = its batch's send -> last reply, so p50/p99 are batch
round trips, comparable to librdkafka's send -> delivery report at saturation.
Consume: a fresh connection reads every stream back with XRANGE ... COUNT 1000 (exclusive
start, Redis >= 6.2) and counts entries and payload bytes.

Prints one JSON object shaped like `kpool bench --json` (produce and consume sides). The RESP
parsing is plain Python, so read throughput is bounded by this client, not by Redis: say so
when quoting the figure.
"""
import argparse
import json
import socket
import sys
import time

CRLF = b"\r\n"


def resp_command(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def percentile(sorted_values, pct):
    if not sorted_values:
        return 0
    rank = max(1, int(pct / 100.0 * len(sorted_values) + 0.999999))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def side(msgs, nbytes, errors, seconds, lat_us=None):
    s = {"msgs": msgs, "bytes": nbytes, "errors": errors, "seconds": seconds,
         "msg_per_s": msgs / seconds if seconds > 0 else 0,
         "mb_per_s": nbytes / seconds / 1048576.0 if seconds > 0 else 0}
    if lat_us:
        lat_us.sort()
        s["latency_us"] = {"p50": percentile(lat_us, 50), "p99": percentile(lat_us, 99),
                           "p999": percentile(lat_us, 99.9), "max": lat_us[-1]}
    return s


def produce(port, keys, size, count, batch):
    payload = (b"kpool-bench payload 0123456789 abcdefghijklmnopqrstuvwxyz " * (size // 50 + 1))
    payload = payload[:size]
    # one pre-encoded pipeline per stream key: the hot loop only sends and counts replies
    pipes = {k: resp_command("XADD", k, "*", "v", payload) * batch for k in keys}
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    lat, sent, errors, i = [], 0, 0, 0
    start = time.monotonic()
    while sent < count:
        n = min(batch, count - sent)
        key = keys[i % len(keys)]
        data = pipes[key] if n == batch else resp_command("XADD", key, "*", "v", payload) * n
        t0 = time.monotonic()
        sock.sendall(data)
        # each XADD answers "$<len>\r\n<id>\r\n" (2 CRLF) or "-ERR ...\r\n" (1 CRLF)
        buf, want = b"", 2 * n
        while buf.count(CRLF) < want:
            chunk = sock.recv(1 << 20)
            if not chunk:
                raise SystemExit("redis closed the connection")
            buf += chunk
            if b"-" in buf[:1] or b"\r\n-" in buf:
                errors += 1
                raise SystemExit("redis error: %r" % buf[:200])
        lat.append(int((time.monotonic() - t0) * 1e6))
        sent += n
        i += 1
    seconds = time.monotonic() - start
    sock.close()
    per_msg = []
    for j, v in enumerate(lat):  # each message of a batch shares its batch latency
        per_msg.extend([v] * (batch if (j + 1) * batch <= count else count - j * batch))
    return side(sent, sent * size, errors, seconds, per_msg)


class Reader:
    """Just enough RESP for XRANGE replies: arrays, bulk strings, errors."""

    def __init__(self, sock):
        self.f = sock.makefile("rb", buffering=1 << 20)

    def read(self):
        line = self.f.readline()
        t, rest = line[:1], line[1:-2]
        if t == b"*":
            return [self.read() for _ in range(int(rest))]
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)
            return data[:-2]
        if t == b"-":
            raise SystemExit("redis error: %r" % rest)
        return rest


def consume(port, keys):
    sock = socket.create_connection(("127.0.0.1", port))
    reader = Reader(sock)
    msgs = nbytes = 0
    start = time.monotonic()
    for key in keys:
        lo = "-"
        while True:
            sock.sendall(resp_command("XRANGE", key, lo, "+", "COUNT", "1000"))
            entries = reader.read()
            if not entries:
                break
            for entry_id, fields in entries:
                msgs += 1
                nbytes += len(fields[1])
            lo = "(" + entries[-1][0].decode()
    seconds = time.monotonic() - start
    sock.close()
    return side(msgs, nbytes, 0, seconds)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--count", type=int, default=100000)
    ap.add_argument("--streams", type=int, default=1)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--key", default="kpool-bench")
    a = ap.parse_args()
    keys = ["%s-%d" % (a.key, i) for i in range(a.streams)]
    res = {"tool": "redis_streams.py", "message_size": a.size, "partitions": a.streams}
    try:
        res["produce"] = produce(a.port, keys, a.size, a.count, a.batch)
        res["consume"] = consume(a.port, keys)
        res["ok"] = res["consume"]["msgs"] == res["produce"]["msgs"]
    except (OSError, SystemExit) as e:
        print("redis_streams.py: %s" % e, file=sys.stderr)
        res["ok"] = False
    print(json.dumps(res))
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
