"""The TLS data path (issue 19): records, partial writes, big fetches, resumption, ciphers.

Fixtures and helpers (the test PKI, TLS brokers, client configurations) come from
test_tls_acl.py. What is checked, with real clients:
  * a fetch response over TLS goes out as full 16 KiB records: headers and the data of
    several partitions share records (observed on the raw ciphertext through ssl.MemoryBIO);
  * a burst of records is read from the socket 64 KiB at a time, not one record per read;
  * a reader with a tiny receive buffer that reads slowly (the broker's writes block
    mid-record again and again) gets every byte of pipelined multi-partition fetches;
  * a multi-partition topic of incompressible records of mixed sizes is read back byte for
    byte by confluent-kafka and kafka-python (KPOOL_TLS_STREAM_MB sets its size; 1024 for
    the "1 GiB through TLS" acceptance run, see docs/performance.md);
  * session resumption: `openssl s_client -sess_out/-sess_in` reports "Reused", and a
    resumed Python connection keeps its certificate principal for the authorizer;
  * AES-128-GCM is chosen when the client offers it (TLS 1.3 and 1.2);
  * the broker logs whether kernel TLS is used.
"""
import hashlib
import os
import random
import socket
import ssl
import struct
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

import kwire
from test_tls_acl import (create_topics, kpy, kpy_admin, pki, rdk, tls_broker,  # noqa: F401
                          tls_context, wait_log)

pytestmark = pytest.mark.filterwarnings("ignore:ssl.PROTOCOL_TLS is deprecated")

API_FETCH = 1
API_VERSIONS = 18
TLS13_FULL_RECORD = 16384 + 1 + 16  # plaintext, inner content type, GCM tag


class RawTls:
    """A TLS client over ssl.MemoryBIO that sees the ciphertext: every record received is
    noted as (content type, length)."""

    def __init__(self, port, ctx, rcvbuf=None):
        self.s = socket.socket()
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(20)
        self.s.connect(("127.0.0.1", port))
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.inc, self.out, server_hostname="127.0.0.1")
        self.stream, self.pos, self.records = bytearray(), 0, []
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._pump()
        self._flush()

    def _flush(self):
        data = self.out.read()
        if data:
            self.s.sendall(data)

    def _pump(self, n=65536):
        self._flush()
        data = self.s.recv(n)
        assert data, "broker closed the connection"
        self.stream += data
        while len(self.stream) - self.pos >= 5:
            typ, length = self.stream[self.pos], struct.unpack_from(">H", self.stream,
                                                                   self.pos + 3)[0]
            if len(self.stream) - self.pos < 5 + length:
                break
            self.records.append((typ, length))
            self.pos += 5 + length
        del self.stream[:self.pos]
        self.pos = 0
        self.inc.write(data)

    def send(self, data):
        self.tls.write(data)
        self._flush()

    def recv_exact(self, n, chunk=65536, delay=0):
        buf = bytearray()
        while len(buf) < n:
            try:
                buf += self.tls.read(n - len(buf))
            except ssl.SSLWantReadError:
                if delay:
                    time.sleep(delay)
                self._pump(chunk)
        return bytes(buf)

    def recv_frame(self, **kw):
        n = struct.unpack(">i", self.recv_exact(4, **kw))[0]
        return self.recv_exact(n, **kw)

    def close(self):
        self.s.close()


def body_fetch_parts(topic, parts, max_bytes):
    """Fetch v4 of offset 0 of every partition in parts."""
    b = kwire.i32(-1) + kwire.i32(0) + kwire.i32(1) + kwire.i32(max_bytes) + kwire.i8(0)
    ps = [kwire.i32(p) + kwire.i64(0) + kwire.i32(max_bytes) for p in parts]
    return b + kwire.array([kwire.string(topic) + kwire.array(ps)])


def parse_fetch_v4(payload):
    """{partition: (error, record bytes)} of a Fetch v4 response (after the correlation id)."""
    pos = 4  # throttle
    out = {}
    (nt,) = struct.unpack_from(">i", payload, pos)
    pos += 4
    for _ in range(nt):
        (tl,) = struct.unpack_from(">h", payload, pos)
        pos += 2 + tl
        (np_,) = struct.unpack_from(">i", payload, pos)
        pos += 4
        for _ in range(np_):
            part, err = struct.unpack_from(">ih", payload, pos)
            pos += 4 + 2 + 8 + 8
            (na,) = struct.unpack_from(">i", payload, pos)
            pos += 4 + max(na, 0) * 16
            (rl,) = struct.unpack_from(">i", payload, pos)
            pos += 4
            out[part] = (err, payload[pos:pos + max(rl, 0)])
            pos += max(rl, 0)
    return out


def value_for(part, i, size):
    """Incompressible, reproducible bytes for record i of partition part."""
    return random.Random(part * 1000003 + i).randbytes(size)


def produce_parts(b, pki, topic, parts, per_part, size_of):
    conf = rdk(b, pki, pki["admin"])
    p = Producer(dict(conf, **{"linger.ms": 20, "acks": "all", "batch.size": 1 << 20,
                               "queue.buffering.max.kbytes": 1 << 20,
                               "message.max.bytes": 1 << 20}))
    failed = []
    for i in range(per_part):
        for part in range(parts):
            p.produce(topic, value_for(part, i, size_of(part, i)), partition=part,
                      on_delivery=lambda err, m: err and failed.append(err))
        if i % 200 == 0:
            p.poll(0)
    assert p.flush(120) == 0 and not failed, failed[:3]


def raw_ctx(pki):
    ctx = tls_context(pki, pki["admin"], ssl.TLSVersion.TLSv1_3)
    return ctx


def raw_fetch(conn, corr, topic, parts, max_bytes=4 << 20, **kw):
    conn.send(kwire.request(API_FETCH, 4, corr, body_fetch_parts(topic, parts, max_bytes)))
    payload = conn.recv_frame(**kw)
    assert struct.unpack(">i", payload[:4])[0] == corr
    return parse_fetch_v4(payload[4:])


def all_values(data):
    """Values of every whole batch in a partition's record data (the producer may have
    split a partition's records over several batches)."""
    vals, pos = [], 0
    while pos + 12 <= len(data):
        (blen,) = struct.unpack_from(">i", data, pos + 8)
        if pos + 12 + blen > len(data):
            break  # a partial batch at the end of the read
        vals += kwire.batch_values(data[pos:pos + 12 + blen])
        pos += 12 + blen
    return vals


def check_values(resp, parts, per_part, size_of, prefix=False):
    """Every partition's records are the expected ones (prefix: the first of them; a read
    ends at a segment's end)."""
    for part in parts:
        err, data = resp[part]
        assert err == 0, (part, err)
        vals = all_values(data)
        if prefix:
            assert 0 < len(vals) <= per_part, (part, len(vals))
        else:
            assert len(vals) == per_part, (part, len(vals))
        bad = [i for i, v in enumerate(vals) if v != value_for(part, i, size_of(part, i))]
        assert not bad, "partition %d: %d records differ, first %d" % (part, len(bad), bad[0])


def test_fetch_over_tls_goes_out_in_full_records(broker_factory, pki):
    """Fails on the old transport: every response header and every 64 KiB file stage was
    its own SSL_write, so an 8-partition fetch came as ~4 records per partition, most of
    them short."""
    b = tls_broker(broker_factory, pki, authorizer=False)
    create_topics(kpy_admin(b, pki), "records", partitions=8)
    size_of = lambda part, i: 1000
    produce_parts(b, pki, "records", 8, 40, size_of)
    conn = RawTls(b.port, raw_ctx(pki))
    conn.send(kwire.request(API_VERSIONS, 0, 1, b""))
    conn.recv_frame()  # the session ticket and this answer are behind us
    conn.records.clear()
    resp = raw_fetch(conn, 2, "records", range(8))
    check_values(resp, range(8), 40, size_of)
    data = [n for typ, n in conn.records if typ == 23]
    assert len(data) >= 20, data
    short = [n for n in data[:-1] if n != TLS13_FULL_RECORD]
    assert not short, "%d of %d records not full: %s" % (len(short), len(data), data)
    conn.close()


def broker_reads(b):
    """The broker process's read system calls so far (/proc/PID/io)."""
    with open("/proc/%d/io" % b.proc.pid) as f:
        return int(dict(line.split(":") for line in f)["syscr"])


def test_socket_read_in_64k_pieces(broker_factory, pki):
    """A 2 MiB produce request arrives as 128 records in one burst. Fails on the old
    transport: OpenSSL read the socket one record per read(2) (its read-ahead buffer holds
    one record), at least 128 reads (measured: 139); the receive BIO reads 64 KiB at a time
    (34). The records are then fetched back whole."""
    b = tls_broker(broker_factory, pki, authorizer=False, **{"message.max.bytes": "4194304"})
    create_topics(kpy_admin(b, pki), "bulk")
    values = [value_for(0, i, 1024) for i in range(2048)]
    conn = RawTls(b.port, raw_ctx(pki))
    conn.send(kwire.request(API_VERSIONS, 0, 1, b""))
    conn.recv_frame()  # the session ticket and this answer are behind us
    req = kwire.request(0, 3, 2, kwire.body_produce(3, "bulk", 0, kwire.record_batch(values)))
    r0 = broker_reads(b)
    conn.send(req)  # encrypted in full first, then handed to the kernel in one sendall
    corr, err, _ = kwire.parse_produce_response(conn.recv_frame())
    reads = broker_reads(b) - r0
    assert (corr, err) == (2, 0)
    assert reads < 80, "%d read system calls for a 2 MiB request" % reads
    check_values(raw_fetch(conn, 3, "bulk", [0]), [0], 2048, lambda part, i: 1024)
    conn.close()


def test_slow_reader_with_tiny_receive_buffer_gets_every_byte(broker_factory, pki):
    """The broker's socket fills again and again (4 KiB receive buffer, the reader pauses
    between reads), so writes stop mid-record and are retried; three pipelined fetches of 8
    partitions, ~1.3 MiB each, must arrive whole and in order."""
    b = tls_broker(broker_factory, pki, authorizer=False)
    create_topics(kpy_admin(b, pki), "slow", partitions=8)
    size_of = lambda part, i: 200 + (part * 7919 + i * 104729) % 7000
    produce_parts(b, pki, "slow", 8, 45, size_of)
    conn = RawTls(b.port, raw_ctx(pki), rcvbuf=4096)
    for corr in (1, 2, 3):
        conn.send(kwire.request(API_FETCH, 4, corr, body_fetch_parts("slow", range(8), 4 << 20)))
    for corr in (1, 2, 3):
        payload = conn.recv_frame(chunk=4096, delay=0.0005 if corr == 1 else 0)
        assert struct.unpack(">i", payload[:4])[0] == corr
        check_values(parse_fetch_v4(payload[4:]), range(8), 45, size_of, prefix=True)
        assert len(payload) > 500000
    conn.close()


def test_big_multi_partition_topic_read_back_by_both_clients(broker_factory, pki):
    """At least KPOOL_TLS_STREAM_MB MiB (default 24; `make tls-stream`: 1024) of
    incompressible records of 100 B..16 KiB over 8 partitions, produced over TLS, read back
    over TLS by confluent-kafka and by kafka-python, every byte compared (by digest per
    partition, record count and byte count)."""
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP
    total = int(os.environ.get("KPOOL_TLS_STREAM_MB", "24")) << 20
    parts = 8
    size_of = lambda part, i: 100 + (part * 31337 + i * 7919) % 16284
    per_part, nbytes = 0, 0  # records per partition until the topic holds at least total bytes
    while nbytes < total:
        nbytes += sum(size_of(part, per_part) for part in range(parts))
        per_part += 1
    b = tls_broker(broker_factory, pki, authorizer=False, **{"message.max.bytes": "1048576"})
    create_topics(kpy_admin(b, pki), "big", partitions=parts)
    t0 = time.time()
    produce_parts(b, pki, "big", parts, per_part, size_of)
    t_produce = time.time() - t0
    want = {}
    for part in range(parts):
        h = hashlib.sha256()
        for i in range(per_part):
            h.update(value_for(part, i, size_of(part, i)))
        want[part] = h.hexdigest()

    c = Consumer(dict(rdk(b, pki, pki["admin"]), **{
        "group.id": "big", "enable.auto.commit": False, "enable.partition.eof": True,
        "fetch.max.bytes": 8 << 20, "max.partition.fetch.bytes": 2 << 20}))
    c.assign([TopicPartition("big", p, 0) for p in range(parts)])
    got = {p: hashlib.sha256() for p in range(parts)}
    count = {p: 0 for p in range(parts)}
    got_bytes = 0
    done = set()
    t0 = time.time()
    deadline = time.time() + 240
    while len(done) < parts:
        assert time.time() < deadline, count
        for m in c.consume(1000, 0.5):
            if m.error():
                assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                if count[m.partition()] == per_part:
                    done.add(m.partition())
                continue
            assert m.offset() == count[m.partition()]
            got[m.partition()].update(m.value())
            got_bytes += len(m.value())
            count[m.partition()] += 1
    t_consume = time.time() - t0
    c.close()
    assert {p: h.hexdigest() for p, h in got.items()} == want
    assert got_bytes == nbytes >= total

    kc = KafkaConsumer(**kpy(b, pki, pki["admin"], enable_auto_commit=False,
                             fetch_max_bytes=8 << 20, max_partition_fetch_bytes=2 << 20,
                             consumer_timeout_ms=20000))
    kc.assign([KTP("big", p) for p in range(parts)])
    kc.seek_to_beginning()
    got = {p: hashlib.sha256() for p in range(parts)}
    count = {p: 0 for p in range(parts)}
    got_bytes = 0
    for m in kc:
        assert m.offset == count[m.partition]
        got[m.partition].update(m.value)
        got_bytes += len(m.value)
        count[m.partition] += 1
        if sum(count.values()) == parts * per_part:
            break
    kc.close()
    assert count == {p: per_part for p in range(parts)}
    assert {p: h.hexdigest() for p, h in got.items()} == want
    assert got_bytes == nbytes
    print("\nTLS stream: %d bytes (%.1f MiB) in %d records; produced in %.1f s (%.1f MiB/s), "
          "read back by confluent-kafka in %.1f s (%.1f MiB/s), every byte compared twice"
          % (nbytes, nbytes / 2**20, parts * per_part, t_produce, nbytes / 2**20 / t_produce,
             t_consume, nbytes / 2**20 / t_consume))


def s_client(b, pki, *args, wait=0.5):
    ident = pki["admin"]
    p = subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % b.port,
                          "-CAfile", pki.ca, "-cert", ident.cert, "-key", ident.key] + list(args),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    time.sleep(wait)  # TLS 1.3: the ticket comes after the handshake
    out, _ = p.communicate(b"", timeout=20)
    return out.decode(errors="replace")


def test_session_resumption_with_openssl_s_client(broker_factory, pki, tmp_path):
    """Fails on the old broker (no tickets: every reconnect is a full handshake)."""
    b = tls_broker(broker_factory, pki, authorizer=False)
    sess = str(tmp_path / "sess.pem")
    for version in ("-tls1_3", "-tls1_2"):
        first = s_client(b, pki, version, "-sess_out", sess)
        assert "\nNew, TLSv1." in first, first[-1500:]
        again = s_client(b, pki, version, "-sess_in", sess)
        assert "\nReused, TLSv1." in again, again[-1500:]


def test_resumed_connection_keeps_its_principal(broker_factory, pki):
    """A resumed session carries the client certificate: the authorizer still sees alice
    (no ACLs: TOPIC_AUTHORIZATION_FAILED) and admin (super user: produce succeeds)."""
    b = tls_broker(broker_factory, pki)
    create_topics(kpy_admin(b, pki), "resumed")
    for who, want_err in (("admin", 0), ("alice", 29)):
        ctx = tls_context(pki, pki[who], ssl.TLSVersion.TLSv1_3)
        s1 = ctx.wrap_socket(socket.create_connection(("127.0.0.1", b.port), timeout=15),
                             server_hostname="127.0.0.1")
        s1.sendall(kwire.request(API_VERSIONS, 0, 1, b""))
        kwire.recv_frame(s1, timeout=15)  # the ticket has arrived with or before this
        session = s1.session
        s1.close()
        assert session is not None
        s2 = ctx.wrap_socket(socket.create_connection(("127.0.0.1", b.port), timeout=15),
                             server_hostname="127.0.0.1", session=session)
        assert s2.session_reused
        batch = kwire.record_batch([b"x"])
        s2.sendall(kwire.request(0, 3, 7, kwire.body_produce(3, "resumed", 0, batch)))
        payload = kwire.recv_frame(s2, timeout=15)
        s2.close()
        assert kwire.parse_produce_response(payload)[1] == want_err, who


def test_aes128_gcm_preferred_and_kernel_tls_choice_logged(broker_factory, pki):
    """Fails on the old broker: it preferred AES-256-GCM (OpenSSL's default order, server
    preference) and said nothing about kernel TLS."""
    b = tls_broker(broker_factory, pki, authorizer=False)
    wait_log(b, r"kernel TLS (available|unavailable \(.+\)): ")
    out = s_client(b, pki, "-tls1_3", "-ciphersuites",
                   "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256",
                   wait=0.2)
    assert "Cipher is TLS_AES_128_GCM_SHA256" in out, out[-1500:]
    out = s_client(b, pki, "-tls1_2", "-cipher",
                   "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256", wait=0.2)
    assert "Cipher is ECDHE-ECDSA-AES128-GCM-SHA256" in out, out[-1500:]
    # a client that offers only AES-256 still gets it
    out = s_client(b, pki, "-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384", wait=0.2)
    assert "Cipher is TLS_AES_256_GCM_SHA384" in out, out[-1500:]
