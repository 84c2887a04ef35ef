"""kwire — a minimal raw Kafka wire encoder/decoder for hostile-input and recovery tests.

Only what the tests need: request framing (header v1, header v2 for flexible ApiVersions),
valid request bodies for every API kpool serves (so tests can truncate or corrupt them),
record batch v2 encoding with CRC-32C, a segment-file batch walker, and socket helpers that
tell "closed by the broker" apart from "still open".
"""
import errno
import select
import socket
import struct
import time

# --------------------------------------------------------------------------- primitives


def i8(v):
    return struct.pack(">b", v)


def i16(v):
    return struct.pack(">h", v)


def i32(v):
    return struct.pack(">i", v)


def u32(v):
    return struct.pack(">I", v)


def i64(v):
    return struct.pack(">q", v)


def string(s):
    """Non-compact nullable string (int16 length)."""
    if s is None:
        return i16(-1)
    b = s.encode() if isinstance(s, str) else s
    return i16(len(b)) + b


def bytes_(b):
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def array(items, enc=None):
    if items is None:
        return i32(-1)
    out = i32(len(items))
    for it in items:
        out += enc(it) if enc else it
    return out


def uvarint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def varint(v):
    return uvarint((v << 1) ^ (v >> 63))


def compact_string(s):
    if s is None:
        return uvarint(0)
    b = s.encode() if isinstance(s, str) else s
    return uvarint(len(b) + 1) + b


# --------------------------------------------------------------------------- CRC-32C

_CRC_TABLE = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    tbl = _CRC_TABLE
    for b in data:
        crc = tbl[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# --------------------------------------------------------------------------- record batches

def record_batch(values, base_offset=0, timestamp=None, producer_id=-1, producer_epoch=-1,
                 base_sequence=-1):
    """A magic-v2 record batch (uncompressed) holding one record per value (key null)."""
    ts = int(time.time() * 1000) if timestamp is None else timestamp
    recs = b""
    for i, v in enumerate(values):
        body = i8(0) + varint(0) + varint(i) + varint(-1) + varint(len(v)) + v + uvarint(0)
        recs += varint(len(body)) + body
    after_crc = (i16(0) + i32(len(values) - 1) + i64(ts) + i64(ts) + i64(producer_id) +
                 i16(producer_epoch) + i32(base_sequence) + i32(len(values)) + recs)
    crc = crc32c(after_crc)
    tail = i32(-1) + i8(2) + u32(crc) + after_crc  # leader epoch, magic, crc, ...
    return i64(base_offset) + i32(len(tail)) + tail


def message_set(values, magic=1, timestamp=None, keys=None):
    """A legacy message set (magic 0 or 1, uncompressed; Produce v0-2), one message per value,
    CRC-32 as Kafka computes it."""
    import zlib
    ts = int(time.time() * 1000) if timestamp is None else timestamp
    out = b""
    for i, v in enumerate(values):
        k = keys[i] if keys else None
        body = i8(magic) + i8(0) + (i64(ts) if magic else b"") + bytes_(k) + bytes_(v)
        msg = u32(zlib.crc32(body)) + body
        out += i64(i) + i32(len(msg)) + msg
    return out


def parse_message_set(data):
    """[(offset, magic, attributes, timestamp, key, value)] of a legacy message set (Fetch
    v0-3); checks every CRC-32; a trailing partial message is dropped, as clients do."""
    import zlib
    out, pos = [], 0
    while pos + 12 <= len(data):
        off, size = struct.unpack_from(">qi", data, pos)
        if pos + 12 + size > len(data):
            break
        m = data[pos + 12:pos + 12 + size]
        crc, magic, attrs = struct.unpack_from(">Ibb", m, 0)
        assert crc == zlib.crc32(m[4:]), "bad CRC-32 at offset %d" % off
        q = 6
        ts = None
        if magic == 1:
            ts = struct.unpack_from(">q", m, q)[0]
            q += 8
        kl = struct.unpack_from(">i", m, q)[0]
        q += 4
        k = None if kl < 0 else m[q:q + kl]
        q += max(kl, 0)
        vl = struct.unpack_from(">i", m, q)[0]
        q += 4
        v = None if vl < 0 else m[q:q + vl]
        assert q + max(vl, 0) == len(m), "message framing at offset %d" % off
        out.append((off, magic, attrs, ts, k, v))
        pos += 12 + size
    return out


BATCH_HEADER_BYTES = 61


def parse_batches(data):
    """Walks the record batches of a segment file: [(pos, total_len, base_offset, last_offset)].
    Stops at the first incomplete batch."""
    out = []
    pos = 0
    while pos + BATCH_HEADER_BYTES <= len(data):
        base, blen = struct.unpack_from(">qi", data, pos)
        total = blen + 12
        if total < BATCH_HEADER_BYTES or pos + total > len(data):
            break
        last_delta = struct.unpack_from(">i", data, pos + 23)[0]
        out.append((pos, total, base, base + last_delta))
        pos += total
    return out


def batch_values(data):
    """Values of the records in one uncompressed batch (as written by record_batch or by
    librdkafka with compression.type=none)."""
    attrs = struct.unpack_from(">h", data, 21)[0]
    assert attrs & 7 == 0, "compressed batch"
    count = struct.unpack_from(">i", data, 57)[0]
    pos = 61

    def rd_varint():
        nonlocal pos
        shift = 0
        v = 0
        while True:
            b = data[pos]
            pos += 1
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                break
            shift += 7
        return (v >> 1) ^ -(v & 1)

    vals = []
    for _ in range(count):
        rd_varint()  # length
        pos += 1  # attributes
        rd_varint()  # timestamp delta
        rd_varint()  # offset delta
        klen = rd_varint()
        if klen > 0:
            pos += klen
        vlen = rd_varint()
        vals.append(None if vlen < 0 else bytes(data[pos:pos + vlen]))
        if vlen > 0:
            pos += vlen
        nh = rd_varint()
        for _ in range(nh):
            hk = rd_varint()
            pos += hk
            hv = rd_varint()
            if hv > 0:
                pos += hv
    return vals


# --------------------------------------------------------------------------- requests

API_PRODUCE, API_FETCH, API_LIST_OFFSETS, API_METADATA = 0, 1, 2, 3
API_API_VERSIONS, API_CREATE_TOPICS, API_DELETE_TOPICS, API_INIT_PRODUCER_ID = 18, 19, 20, 22

# Every API the broker advertises (SPEC 9), each version served (test_api_versions.py).
ADVERTISED = {
    0: (0, 7), 1: (0, 11), 2: (0, 5), 3: (0, 7), 8: (0, 8), 9: (0, 8), 10: (0, 4), 11: (0, 9),
    12: (0, 4), 13: (0, 5), 14: (0, 5), 15: (0, 5), 16: (0, 4), 18: (0, 3), 19: (0, 4),
    20: (0, 3), 21: (0, 1), 22: (0, 4), 23: (0, 3), 24: (0, 4), 25: (0, 3), 26: (0, 3),
    27: (0, 1), 28: (0, 3), 29: (0, 1), 30: (0, 1), 31: (0, 1), 32: (0, 2), 33: (0, 1),
    35: (0, 1), 37: (0, 1), 42: (0, 2), 43: (0, 2), 44: (0, 0), 45: (0, 0), 46: (0, 0),
    47: (0, 0), 61: (0, 0), 65: (0, 0), 66: (0, 1),
}

# The APIs this module builds bodies for (valid_body), with the versions it builds.
SUPPORTED = {
    API_PRODUCE: (3, 7),
    API_FETCH: (0, 11),
    API_LIST_OFFSETS: (0, 5),
    API_METADATA: (0, 7),
    API_API_VERSIONS: (0, 3),
    API_CREATE_TOPICS: (0, 4),
    API_DELETE_TOPICS: (0, 3),
    API_INIT_PRODUCER_ID: (0, 1),
}


def is_flexible(key, version):
    return key == API_API_VERSIONS and version >= 3


def header(key, version, corr, client_id="kwire"):
    h = i16(key) + i16(version) + i32(corr) + string(client_id)
    if is_flexible(key, version):
        h += uvarint(0)  # tagged fields
    return h


def frame(payload):
    return i32(len(payload)) + payload


def request(key, version, corr, body, client_id="kwire"):
    return frame(header(key, version, corr, client_id) + body)


def body_api_versions(v):
    if v >= 3:
        return compact_string("kwire") + compact_string("1.0") + uvarint(0)
    return b""


def body_metadata(v, topics=None):
    if topics is None:
        t = array(None) if v >= 1 else array([])
    else:
        t = array([string(n) for n in topics])
    return t + (i8(0) if v >= 4 else b"")


def body_produce(v, topic, partition, batch, acks=-1, timeout=5000):
    part = i32(partition) + bytes_(batch)
    return (string(None) + i16(acks) + i32(timeout) +
            array([string(topic) + array([part])]))


def body_fetch(v, topic, partition, offset, max_wait=0, min_bytes=1, max_bytes=1 << 20):
    b = i32(-1) + i32(max_wait) + i32(min_bytes)
    if v >= 3:
        b += i32(max_bytes)
    if v >= 4:
        b += i8(0)
    if v >= 7:
        b += i32(0) + i32(-1)
    p = i32(partition)
    if v >= 9:
        p += i32(-1)
    p += i64(offset)
    if v >= 5:
        p += i64(-1)
    p += i32(max_bytes)
    b += array([string(topic) + array([p])])
    if v >= 7:
        b += array([])
    if v >= 11:
        b += string("")
    return b


def body_list_offsets(v, topic, partition, ts=-1):
    b = i32(-1)
    if v >= 2:
        b += i8(0)
    p = i32(partition)
    if v >= 4:
        p += i32(-1)
    p += i64(ts)
    if v == 0:
        p += i32(1)
    return b + array([string(topic) + array([p])])


def body_create_topics(v, name, partitions=1, configs=None):
    cfgs = array([string(k) + string(val) for k, val in (configs or {}).items()])
    t = string(name) + i32(partitions) + i16(1) + array([]) + cfgs
    b = array([t]) + i32(5000)
    if v >= 1:
        b += i8(0)
    return b


def body_delete_topics(v, names):
    return array([string(n) for n in names]) + i32(5000)


def body_init_producer_id(v):
    return string(None) + i32(60000)


def valid_body(key, v, topic="kwire-topic"):
    """A well-formed body for (key, v), used as the base of truncation/garbage tests."""
    if key == API_PRODUCE:
        return body_produce(v, topic, 0, record_batch([b"x" * 10]))
    if key == API_FETCH:
        return body_fetch(v, topic, 0, 0)
    if key == API_LIST_OFFSETS:
        return body_list_offsets(v, topic, 0)
    if key == API_METADATA:
        return body_metadata(v, [topic])
    if key == API_API_VERSIONS:
        return body_api_versions(v)
    if key == API_CREATE_TOPICS:
        return body_create_topics(v, topic + "-new")
    if key == API_DELETE_TOPICS:
        return body_delete_topics(v, [topic + "-nonexistent"])
    if key == API_INIT_PRODUCER_ID:
        return body_init_producer_id(v)
    raise ValueError(key)


# --------------------------------------------------------------------------- responses

def parse_api_versions(version, payload):
    """payload = response after the 4-byte length. Returns (corr, error, {key: (min, max)},
    bytes consumed)."""
    corr, err = struct.unpack_from(">ih", payload, 0)
    pos = 6
    keys = {}
    if version >= 3:
        n, pos = read_uvarint(payload, pos)
        n -= 1
        for _ in range(n):
            k, lo, hi = struct.unpack_from(">hhh", payload, pos)
            pos += 6
            tags, pos = read_uvarint(payload, pos)
            keys[k] = (lo, hi)
        pos += 4  # throttle
        _, pos = read_uvarint(payload, pos)
    else:
        n = struct.unpack_from(">i", payload, pos)[0]
        pos += 4
        for _ in range(n):
            k, lo, hi = struct.unpack_from(">hhh", payload, pos)
            pos += 6
            keys[k] = (lo, hi)
        if version >= 1:
            pos += 4
    return corr, err, keys, pos


def read_uvarint(data, pos):
    shift = 0
    v = 0
    while True:
        b = data[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        if not b & 0x80:
            return v, pos
        shift += 7


# --------------------------------------------------------------------------- sockets

def connect(port, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exact(s, n, timeout=10):
    s.settimeout(timeout)
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def recv_frame(s, timeout=10):
    n = struct.unpack(">i", recv_exact(s, 4, timeout))[0]
    assert 0 <= n < (64 << 20), "absurd response length %d" % n
    return recv_exact(s, n, timeout)


def wait_closed(s, timeout=10):
    """Reads (discarding) until the peer closes. Returns (True, bytes_read) on EOF or reset,
    (False, bytes_read) if the connection is still open after timeout."""
    deadline = time.time() + timeout
    got = b""
    s.setblocking(False)
    try:
        while True:
            left = deadline - time.time()
            if left <= 0:
                return False, got
            r, _, _ = select.select([s], [], [], left)
            if not r:
                continue
            try:
                chunk = s.recv(1 << 16)
            except BlockingIOError:
                continue
            except (ConnectionResetError, BrokenPipeError):
                return True, got
            except OSError as e:
                if e.errno in (errno.ECONNRESET, errno.EPIPE):
                    return True, got
                raise
            if not chunk:
                return True, got
            got += chunk
    finally:
        try:
            s.setblocking(True)
        except OSError:
            pass


def send_quietly(s, data):
    """sendall that tolerates the broker having closed already. Returns False if it had."""
    try:
        s.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False


def split_frames(data):
    """Splits a byte stream of responses into payloads (drops an incomplete tail)."""
    out = []
    pos = 0
    while pos + 4 <= len(data):
        n = struct.unpack_from(">i", data, pos)[0]
        if pos + 4 + n > len(data):
            break
        out.append(data[pos + 4:pos + 4 + n])
        pos += 4 + n
    return out


def api_versions(port_or_sock, version=0, corr=1):
    """One ApiVersions exchange (on a new connection if given a port)."""
    own = not isinstance(port_or_sock, socket.socket)
    s = connect(port_or_sock) if own else port_or_sock
    try:
        s.sendall(request(API_API_VERSIONS, version, corr, body_api_versions(version)))
        payload = recv_frame(s)
        return parse_api_versions(version, payload)
    finally:
        if own:
            s.close()


# --------------------------------------------------------------------------- real-client helpers

def create_topic(bootstrap, name, partitions=1, config=None, timeout=30):
    """CreateTopics through confluent-kafka's AdminClient; raises on error."""
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": bootstrap})
    fs = a.create_topics([NewTopic(name, partitions, 1, config=dict(config or {}))],
                         operation_timeout=timeout)
    fs[name].result(timeout)


def delete_topic(bootstrap, name, timeout=30):
    from confluent_kafka.admin import AdminClient
    a = AdminClient({"bootstrap.servers": bootstrap})
    fs = a.delete_topics([name], operation_timeout=timeout)
    fs[name].result(timeout)


def list_topics(bootstrap, timeout=20):
    """{topic: partition count} from Metadata (confluent-kafka)."""
    from confluent_kafka.admin import AdminClient
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=timeout)
    return {t: len(m.partitions) for t, m in md.topics.items() if m.error is None}


def consume_all(bootstrap, topic, partitions, timeout=60):
    """Reads every partition from the beginning to its high watermark (assign + seek, no
    group). Returns {partition: [(offset, value), ...]}; fails on a client error."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "kwire-verify",
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "auto.offset.reset": "earliest", "fetch.wait.max.ms": 100})
    try:
        out = {p: [] for p in partitions}
        ends = {}
        for p in partitions:
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=20)
            ends[p] = hi
        done = {p for p in partitions if ends[p] == 0}
        todo = [TopicPartition(topic, p, -2) for p in partitions if p not in done]
        if todo:
            c.assign(todo)  # from OFFSET_BEGINNING
        deadline = time.time() + timeout
        while len(done) < len(partitions):
            assert time.time() < deadline, "consume timed out: %s" % {
                p: (len(out[p]), ends[p]) for p in partitions}
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    if m.offset() >= ends[m.partition()]:
                        done.add(m.partition())
                    continue
                raise AssertionError("consumer error: %s" % m.error())
            out[m.partition()].append((m.offset(), m.value()))
            if m.offset() + 1 >= ends[m.partition()]:
                done.add(m.partition())
        return out
    finally:
        c.close()


def parse_produce_response(payload):
    """Produce v3+ response with one topic and one partition: (corr, error, base_offset)."""
    corr, nt = struct.unpack_from(">ii", payload, 0)
    assert nt == 1, nt
    nl = struct.unpack_from(">h", payload, 8)[0]
    pos = 10 + nl
    np_, idx, err, base = struct.unpack_from(">iihq", payload, pos)
    assert np_ == 1, np_
    return corr, err, base


def produce_raw(s, topic, partition, values, corr=1, version=3, acks=-1):
    """One Produce request carrying one batch of `values`; returns (error, base_offset)."""
    s.sendall(request(API_PRODUCE, version, corr,
                      body_produce(version, topic, partition, record_batch(values), acks=acks)))
    c, err, base = parse_produce_response(recv_frame(s))
    assert c == corr, (c, corr)
    return err, base


class broker_log_on_failure:
    """with broker_log_on_failure(b): ... — a failure inside gets the broker's exit status and
    log tail attached (a crashed broker otherwise shows up only as client timeouts)."""

    def __init__(self, broker, tail=6000):
        self.b = broker
        self.tail = tail

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is None or et is KeyboardInterrupt:
            return False
        rc = self.b.proc.poll() if self.b.proc else None
        raise AssertionError("%s: %s\n--- broker exit status %s, log tail:\n%s"
                             % (et.__name__, ev, rc, self.b.log()[-self.tail:])) from ev
