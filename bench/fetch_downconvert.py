#!/usr/bin/python3
"""What Fetch v0-3 down-conversion costs next to the zero-copy Fetch v4+ path.

Usage: bench/fetch_downconvert.py [KPOOL_BIN]   (default build/kpool, the release build)

Starts a broker, writes 20,000 1 KiB records with confluent-kafka (uncompressed, then lz4,
one topic each), and reads each topic from the start with a raw-wire loop of 1 MiB fetches,
once as Fetch v4 (segment regions, sendfile) and once as Fetch v2 (down-converted to message
format v1). The loop is Python, so the figures include its parsing; compare them, do not
quote them as broker limits.
"""
import os
import struct
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import conftest  # noqa: E402
import kwire  # noqa: E402
from test_old_protocol import fetch_old  # noqa: E402

RECORDS = 20000


def fetch_v4(s, topic, offset):
    s.sendall(kwire.request(1, 4, 1, kwire.body_fetch(4, topic, 0, offset, max_bytes=1 << 20)))
    p = kwire.recv_frame(s)
    pos = 12
    pos += 2 + struct.unpack_from(">h", p, pos)[0]
    pos += 4 + 4 + 2 + 8 + 8 + 4  # partitions, index, error, hwm, lso, aborted (null)
    n = struct.unpack_from(">i", p, pos)[0]
    recs = p[pos + 4:pos + 4 + n]
    return n, kwire.parse_batches(recs)[-1][3] + 1


def fetch_v2(s, topic, offset):
    err, _, recs = fetch_old(s, topic, offset, 2, 1 << 20)
    assert err == 0, err
    return len(recs), kwire.parse_message_set(recs)[-1][0] + 1


def main():
    conftest.KPOOL_BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "build",
                                                                             "kpool")
    from confluent_kafka import Producer
    b = conftest.Broker(os.path.join(tempfile.mkdtemp(prefix="kpool-bench-"), "data")).start()
    try:
        for codec in ("none", "lz4"):
            topic = "downconvert-" + codec
            kwire.create_topic(b.bootstrap, topic, 1)
            p = Producer({"bootstrap.servers": b.bootstrap, "compression.type": codec,
                          "linger.ms": 50})
            value = bytes(range(256)) * 4
            for i in range(RECORDS):
                p.produce(topic, value, key=b"k%d" % i, partition=0)
            p.flush(60)
            s = kwire.connect(b.port)
            for name, fetch in (("Fetch v4", fetch_v4), ("Fetch v2", fetch_v2)):
                t0 = time.perf_counter()
                offset = total = n = 0
                while offset < RECORDS:
                    got, offset = fetch(s, topic, offset)
                    total += got
                    n += 1
                dt = time.perf_counter() - t0
                print("%-6s %s: %d records in %d fetches (%.1f MiB on the wire) in %.3f s: "
                      "%.0f krecords/s" % (codec, name, RECORDS, n, total / 2**20, dt,
                                           RECORDS / dt / 1000))
            s.close()
    finally:
        b.stop()


if __name__ == "__main__":
    main()
