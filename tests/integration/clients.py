"""Helpers for the real-client round-trip tests (test_clients.py, test_kafkajs_group.py).

Every client produces the same kind of data: keyed records with binary keys, binary values
of a few bytes up to 4 KiB (part random, part compressible, some empty, a few null) and
headers with binary values. Each record goes to a multi-partition topic through the client's
*default* keyed partitioner, set to Kafka's murmur2 (librdkafka: murmur2_random), so the
expected partition of every record is known in advance and each partition's content can be
compared, in produce order and offset by offset, with what a consumer reads back.

Records are (key, value, headers) tuples, headers a tuple of (name: str, value: bytes)
pairs; a consumer's result is {(topic, partition): ([offsets], [records])}.

Consumers here read with assign() from the beginning (no consumer group, no committed
offsets), so the round trips do not depend on the group coordinator; test_kafkajs_group.py
reads in a group (kafkajs has no other consumer).
"""
import concurrent.futures
import functools
import os
import random
import struct
import subprocess
import time

from kafka.partitioner.default import murmur2

HERE = os.path.dirname(os.path.abspath(__file__))
JS_DIR = os.path.join(HERE, "js")

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
# KPOOL_IT_MESSAGES only shrinks the data for local debugging; the acceptance criterion
# (and `make test`) is 100k messages per client and codec.
MESSAGES = int(os.environ.get("KPOOL_IT_MESSAGES", "100000"))
PARTITIONS = 6

# kcat splits its stdin into messages at -D and key from value at -K; multi-byte, all bytes
# distinct (so no occurrence can straddle a boundary) and never 0 (kcat parses them as C
# strings). Records given to kcat are checked not to contain them.
KCAT_MSG_DELIM = b"\xf7\x1e\xc3\x8a\x05\xd9\x6b\xb2"
KCAT_KEY_DELIM = b"\xe4\x13\x9f\x70\xab\x2c\xd6\x41"


# --------------------------------------------------------------------------- the data

def _header_value(rnd, kcat_safe=False):
    if kcat_safe:
        # kcat takes header values from argv (no NUL) and prints them as "n=v,n=v" CSV.
        alphabet = bytes(b for b in range(1, 256) if b not in b",=\n\\")
        return bytes(rnd.choice(alphabet) for _ in range(rnd.randrange(1, 24)))
    return rnd.randbytes(rnd.choice((0, 1, 4, 16, 40)))


@functools.lru_cache(maxsize=4)
def base_records(n=MESSAGES, seed=20240601):
    """n deterministic records. Keys repeat (4096 distinct), values are 0..4096 bytes."""
    rnd = random.Random(seed)
    keys = [rnd.randbytes(rnd.randrange(1, 49)) for _ in range(4096)]
    filler = (b"kpool compressible filler: the quick brown fox jumps over the lazy dog. "
              * 80)
    header_names = ("trace-id", "content-type", "x-bin", "\u00e9t\u00e9-\u2603")
    out = []
    for i in range(n):
        r = rnd.random()
        if r < 0.80:
            size = rnd.randrange(0, 65)
        elif r < 0.98:
            size = rnd.randrange(65, 1025)
        else:
            size = rnd.randrange(1025, 4097)
        if i % 997 == 500:
            value = None  # a tombstone-style null value
        elif i % 3 == 0:
            value = rnd.randbytes(size)
        else:
            head = b"%d:" % i + rnd.randbytes(min(size, 8))
            value = (head + filler[:max(0, size - len(head))])[:size]
        nh = i % 4
        headers = tuple((header_names[j], _header_value(rnd)) for j in range(nh))
        out.append((keys[rnd.randrange(len(keys))], value, headers))
    return out


def records_for(topic, n=MESSAGES, kcat=False):
    """The records produced to `topic`: base_records with a per-topic tag in each non-empty
    value (so one topic's data can never pass for another's). kcat=True: no null values
    (kcat cannot produce them) and headers by chunk (kcat -H applies to a whole run), see
    kcat_chunks()."""
    tag = b"<%s>" % topic.encode()
    recs = []
    for key, value, headers in base_records(n):
        if value is None and kcat:
            value = b""
        elif value:
            value = tag + value
        recs.append((key, value, headers))
    if kcat:
        chunks = kcat_chunks(len(recs))
        recs = [(k, v, chunks[i // KCAT_CHUNK][1]) for i, (k, v, _) in enumerate(recs)]
    return recs


KCAT_CHUNK = 12500


@functools.lru_cache(maxsize=4)
def kcat_chunks(n):
    """[(start, headers)] for each kcat -P run: a different header set per run."""
    rnd = random.Random(7)
    names = ("trace-id", "content-type", "x-bin")
    out = []
    for c, start in enumerate(range(0, n, KCAT_CHUNK)):
        nh = c % 4
        out.append((start, tuple((names[j], _header_value(rnd, kcat_safe=True))
                                 for j in range(nh))))
    return out


@functools.lru_cache(maxsize=8192)
def murmur2_partition(key, partitions=PARTITIONS):
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def expected_partitions(records, partitions=PARTITIONS):
    parts = [[] for _ in range(partitions)]
    for rec in records:
        parts[murmur2_partition(rec[0], partitions)].append(rec)
    return parts


# --------------------------------------------------------------------------- verification

def _short(rec):
    def b(x):
        if x is None:
            return "null"
        return repr(x[:24]) + ("..(%d bytes)" % len(x) if len(x) > 24 else "")
    if rec is None:
        return "<none>"
    return "key=%s value=%s headers=[%s]" % (b(rec[0]), b(rec[1]),
                                             ", ".join("%s=%s" % (h, b(v)) for h, v in rec[2]))


def compare(topic, expected_parts, got, label):
    """Differences between the expected per-partition records and a consumer's result, as
    a list of strings (empty: byte-identical, offsets 0..n-1 with no gap, loss or
    duplicate)."""
    errors = []
    for p, exp in enumerate(expected_parts):
        offsets, recs = got.get((topic, p), ([], []))
        if offsets != list(range(len(offsets))):
            bad = next(i for i, o in enumerate(offsets) if o != i)
            errors.append("%s %s[%d]: offsets not contiguous from 0: index %d has offset %d"
                          % (label, topic, p, bad, offsets[bad]))
        if recs != exp:
            i = next((i for i, (a, b) in enumerate(zip(recs, exp)) if a != b),
                     min(len(recs), len(exp)))
            errors.append("%s %s[%d]: %d records read, %d expected; first difference at "
                          "index %d: read %s, expected %s"
                          % (label, topic, p, len(recs), len(exp), i,
                             _short(recs[i] if i < len(recs) else None),
                             _short(exp[i] if i < len(exp) else None)))
    for (t, p), (offsets, _) in got.items():
        if t == topic and p >= len(expected_parts):
            errors.append("%s %s[%d]: unexpected partition with %d records"
                          % (label, topic, p, len(offsets)))
    return errors


def segment_batches(data_dir, topic, partition):
    """(base_offset, attributes, records_count) of every batch in the partition's segment
    files (Kafka's layout: <log.dirs>/<topic>-<partition>/<base>.log, batches back to
    back). Used to check that a client really compressed with the codec it was given."""
    d = os.path.join(data_dir, "%s-%d" % (topic, partition))
    out = []
    for name in sorted(f for f in os.listdir(d) if f.endswith(".log")):
        with open(os.path.join(d, name), "rb") as f:
            data = f.read()
        pos = 0
        while pos + 61 <= len(data):
            base, length = struct.unpack_from(">qi", data, pos)
            if length <= 0 or pos + 12 + length > len(data):
                break
            attrs, = struct.unpack_from(">h", data, pos + 21)
            count, = struct.unpack_from(">i", data, pos + 57)
            out.append((base, attrs, count))
            pos += 12 + length
    return out


def check_codec(data_dir, topic, codec, expected_parts):
    """(count_errors, codec_errors): the stored batches of `topic` must hold exactly the
    expected record counts, and be compressed with `codec`. Clients may send a batch
    uncompressed when compression does not make it smaller (kafka-python does, for a lone
    small random record), so up to 5% of the records may sit in uncompressed batches; a
    client that ignored the codec has 100% there."""
    count_errors = []
    want = CODEC_IDS[codec]
    in_codec = total = 0
    seen = set()
    for p, exp in enumerate(expected_parts):
        batches = segment_batches(data_dir, topic, p)
        seen |= {a & 7 for _, a, _ in batches}
        n = sum(c for _, _, c in batches)
        total += n
        in_codec += sum(c for _, a, c in batches if a & 7 == want)
        if n != len(exp):
            count_errors.append("%s[%d]: stored batches hold %d records, expected %d"
                                % (topic, p, n, len(exp)))
    codec_errors = []
    if not seen <= {0, want} or in_codec < 0.95 * total:
        codec_errors.append("%s: %d of %d records stored in batches with codec id %d (%s); "
                            "codec ids seen: %s" % (topic, in_codec, total, want, codec,
                                                    sorted(seen)))
    return count_errors, codec_errors


# --------------------------------------------------------------------------- admin

def api_versions(bootstrap, timeout=10):
    """{api_key: (min, max)} from an ApiVersions v0 request."""
    import socket
    host, port = bootstrap.rsplit(":", 1)
    client_id = b"kpool-it"
    req = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(req)) + req)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack_from(">i", buf)[0]:
            chunk = s.recv(65536)
            assert chunk, "connection closed during ApiVersions"
            buf += chunk
    corr, err, n = struct.unpack_from(">ihi", buf, 4)
    assert corr == 1 and err == 0, (corr, err)
    return {k: (lo, hi) for k, lo, hi in (struct.unpack_from(">hhh", buf, 14 + 6 * i)
                                          for i in range(n))}


def librdkafka_can_compress(bootstrap, codec):
    """Whether librdkafka 2.0.x (kcat, confluent-kafka here) will use `codec` with this broker.
    Its rule (rdkafka_msgset_writer.c): the broker's Produce range must overlap [0, 0] for
    gzip, snappy and lz4 ([0, 7] for zstd), lz4 also needs FindCoordinator v0 (feature LZ4)
    and zstd Produce v7 and Fetch v10 (feature ZSTD); otherwise it *silently* sends the batch
    uncompressed ("Broker does not support compression type gzip: not compressing batch").
    A broker that advertises Produce from v3 only hits this (librdkafka issue #4956), which is
    why Apache Kafka 4.0 advertises Produce v0-v2 even though it rejects them (KAFKA-18659);
    kpool advertises and serves them, as Kafka 3.x."""
    av = api_versions(bootstrap)

    def overlaps(key, lo, hi):
        r = av.get(key)
        return r is not None and r[0] <= hi and lo <= r[1]

    return {
        "none": True,
        "gzip": overlaps(0, 0, 0),
        "snappy": overlaps(0, 0, 0),
        "lz4": overlaps(0, 0, 0) and overlaps(10, 0, 0),
        "zstd": overlaps(0, 0, 7) and overlaps(0, 7, 7) and overlaps(1, 10, 10),
    }[codec]


def create_topics(bootstrap, names, partitions=PARTITIONS, timeout=30):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(n, partitions, 1) for n in names],
                                  operation_timeout=timeout, request_timeout=timeout)
    for name, fut in futures.items():
        fut.result(timeout)
    deadline = time.time() + timeout
    while True:  # until metadata shows every partition with a leader
        md = admin.list_topics(timeout=timeout)
        if all(n in md.topics and md.topics[n].error is None
               and len(md.topics[n].partitions) == partitions
               and all(pm.leader >= 0 for pm in md.topics[n].partitions.values())
               for n in names):
            return
        assert time.time() < deadline, "topics %s not ready: %s" % (names, md.topics)
        time.sleep(0.1)


def broker_death(broker):
    """'' while the broker runs, else its exit status and log tail (for assertion texts)."""
    if broker.proc is None or broker.proc.poll() is None:
        return ""
    return "; the broker exited with %s:\n%s" % (broker.proc.returncode, broker.log()[-3000:])


# --------------------------------------------------------------------------- confluent-kafka

def produce_confluent(bootstrap, topic, codec, records, timeout=180):
    """Produces with confluent-kafka-python (librdkafka), idempotent, acks=all."""
    from confluent_kafka import Producer
    errors = []
    p = Producer({
        "bootstrap.servers": bootstrap,
        "compression.type": codec,
        "partitioner": "murmur2_random",
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 20,
        "queue.buffering.max.messages": 200000,
        "error_cb": errors.append,
    })
    delivered = [0]
    bad = []

    def dr(err, msg):
        if err is not None:
            bad.append(str(err))
        else:
            delivered[0] += 1

    for key, value, headers in records:
        while True:
            try:
                p.produce(topic, value=value, key=key, headers=list(headers) or None,
                          on_delivery=dr)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    left = p.flush(timeout)
    assert left == 0, "confluent %s: %d messages not delivered in %ss" % (topic, left, timeout)
    assert not bad, "confluent %s: %d delivery errors, first: %s" % (topic, len(bad), bad[0])
    assert delivered[0] == len(records), (topic, delivered[0], len(records))
    # librdkafka reports transient connection errors through error_cb; those are not
    # failures as long as every message was delivered (checked above), but fatal ones
    # (e.g. an idempotence violation) are.
    fatal = [str(e) for e in errors if e.fatal()]
    assert not fatal, "confluent %s: fatal errors: %s" % (topic, fatal)
    return delivered[0]


def consume_confluent(bootstrap, counts, timeout=180):
    """Reads every partition in `counts` ({(topic, p): expected n}) from the beginning with
    assign() until partition EOF. Returns {(topic, p): ([offsets], [records])}."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition, OFFSET_BEGINNING
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "kpool-it-verify",  # required by the client; only assign() is used
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
    })
    got = {tp: ([], []) for tp in counts}
    pending = set(counts)
    try:
        c.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in counts])
        deadline = time.time() + timeout
        short_eof = {}
        while pending:
            for tp, t in short_eof.items():
                if time.time() - t > 5:
                    pending.discard(tp)
            if not pending:
                break
            assert time.time() < deadline, "confluent consumer: no EOF for %s in %ss; read %s" % (
                sorted(pending), timeout, {tp: len(v[0]) for tp, v in got.items()})
            for m in c.consume(num_messages=20000, timeout=0.5):
                err = m.error()
                tp = (m.topic(), m.partition())
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        # Everything was acknowledged (acks=all) before this read, so EOF
                        # is the end; a short partition gets a few seconds' grace and
                        # is then reported by compare() rather than waited for.
                        if len(got[tp][0]) >= counts[tp]:
                            pending.discard(tp)
                        else:
                            short_eof.setdefault(tp, time.time())
                        continue
                    raise AssertionError("confluent consumer error on %s: %s" % (tp, err))
                offs, recs = got[tp]
                offs.append(m.offset())
                recs.append((m.key(), m.value(), tuple(m.headers() or ())))
    finally:
        c.close()
    return got


# --------------------------------------------------------------------------- kafka-python

def produce_kafka_python(bootstrap, topic, codec, n=MESSAGES, timeout=180):
    """Produces records_for(topic) with kafka-python (pure Python) and its default
    murmur2 partitioner. Meant to run in a worker process (see run_in_processes)."""
    from kafka import KafkaProducer
    records = records_for(topic, n)
    p = KafkaProducer(bootstrap_servers=bootstrap,
                      compression_type=None if codec == "none" else codec,
                      acks="all", linger_ms=20, batch_size=128 * 1024,
                      max_request_size=4 << 20, buffer_memory=64 << 20)
    failures = []
    for key, value, headers in records:
        fut = p.send(topic, key=key, value=value, headers=list(headers))
        fut.add_errback(lambda e: failures.append(repr(e)))
    p.flush(timeout)
    p.close(timeout)
    assert not failures, "kafka-python %s: %d failed sends, first: %s" % (
        topic, len(failures), failures[0])
    return len(records)


def consume_kafka_python(bootstrap, counts, timeout=180):
    """Reads the partitions in `counts` from offset 0 up to their end offsets (ListOffsets)
    with kafka-python's KafkaConsumer, assign() and seek (no group)."""
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        tps = [TopicPartition(t, p) for t, p in counts]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        ends = c.end_offsets(tps)
        got = {(tp.topic, tp.partition): ([], []) for tp in tps}
        pending = {tp for tp in tps if ends[tp] > 0}
        deadline = time.time() + timeout
        while pending:
            assert time.time() < deadline, "kafka-python consumer: %s not read to %s in %ss" % (
                sorted(pending), ends, timeout)
            for tp, msgs in c.poll(timeout_ms=500, max_records=50000).items():
                offs, recs = got[(tp.topic, tp.partition)]
                for m in msgs:
                    offs.append(m.offset)
                    recs.append((m.key, m.value, tuple(m.headers)))
            for tp in list(pending):
                if c.position(tp) >= ends[tp]:
                    pending.discard(tp)
    finally:
        c.close()
    return got


def kafka_python_verify(bootstrap, topic, label, n=MESSAGES):
    """Reads `topic` back with kafka-python and compares (meant for a worker process: the
    records are rebuilt there instead of being shipped over a pipe)."""
    expected = expected_partitions(records_for(topic, n))
    counts = {(topic, p): len(e) for p, e in enumerate(expected)}
    got = consume_kafka_python(bootstrap, counts)
    return compare(topic, expected, got, "kafka-python " + label)


# --------------------------------------------------------------------------- kcat

def kcat_input(records):
    out = []
    for key, value, _ in records:
        assert KCAT_KEY_DELIM not in key and KCAT_MSG_DELIM not in key + value, key
        out += (key, KCAT_KEY_DELIM, value, KCAT_MSG_DELIM)
    return b"".join(out)


def _hex(delim):
    return "".join("\\x%02x" % b for b in delim)


def produce_kcat(bootstrap, topic, codec, records, timeout=180):
    """kcat -P, one run per chunk (kcat -H headers apply to a whole run), runs in sequence so
    per-partition order is the record order."""
    chunks = kcat_chunks(len(records))
    for c, (start, headers) in enumerate(chunks):
        end = chunks[c + 1][0] if c + 1 < len(chunks) else len(records)
        args = ["kcat", "-b", bootstrap, "-t", topic, "-P", "-z", codec,
                "-D", _hex(KCAT_MSG_DELIM), "-K", _hex(KCAT_KEY_DELIM),
                "-X", "topic.partitioner=murmur2_random"]
        for name, value in headers:
            args += ["-H", name.encode() + b"=" + value]
        r = subprocess.run(args, input=kcat_input(records[start:end]), capture_output=True,
                           timeout=timeout)
        assert r.returncode == 0, "kcat -P %s chunk %d: rc %d: %s" % (
            topic, c, r.returncode, r.stderr.decode(errors="replace")[-2000:])
    return len(records)


def _kcat_headers(text):
    if not text:
        return ()
    out = []
    for item in text.split(b","):
        name, _, value = item.partition(b"=")
        out.append((name.decode(), value))
    return tuple(out)


def parse_kcat_output(data, topic):
    """Parses kcat -C -f '%p %o %K %S %h\\n%k%s' output."""
    got = {}
    pos = 0
    n = len(data)
    while pos < n:
        nl = data.index(b"\n", pos)
        p, o, klen, vlen, hdrs = data[pos:nl].split(b" ", 4)
        p, o, klen, vlen = int(p), int(o), int(klen), int(vlen)
        pos = nl + 1
        key = data[pos:pos + klen] if klen >= 0 else None
        pos += max(klen, 0)
        value = data[pos:pos + vlen] if vlen >= 0 else None
        pos += max(vlen, 0)
        offs, recs = got.setdefault((topic, p), ([], []))
        offs.append(o)
        recs.append((key, value, _kcat_headers(hdrs)))
    return got


def consume_kcat(bootstrap, topic, timeout=180):
    """kcat -C from the beginning of every partition to the end (-e)."""
    r = subprocess.run(["kcat", "-b", bootstrap, "-t", topic, "-C", "-o", "beginning", "-e",
                        "-q", "-f", "%p %o %K %S %h\\n%k%s"],
                       capture_output=True, timeout=timeout)
    assert r.returncode == 0, "kcat -C %s: rc %d: %s" % (
        topic, r.returncode, r.stderr.decode(errors="replace")[-2000:])
    return parse_kcat_output(r.stdout, topic)


# --------------------------------------------------------------------------- kafkajs (node)

def write_records_file(path, records):
    """The binary record file produce_consume.js reads (and writes, with partition and
    offset): per record i32 partition, i64 offset, i32 key length (-1 null), key, i32 value
    length (-1 null), value, u16 header count, then per header u16 name length, name
    (UTF-8), i32 value length, value."""
    out = []
    pack = struct.pack
    for key, value, headers in records:
        out.append(pack(">iqi", -1, -1, len(key)))
        out.append(key)
        if value is None:
            out.append(pack(">i", -1))
        else:
            out.append(pack(">i", len(value)))
            out.append(value)
        out.append(pack(">H", len(headers)))
        for name, hv in headers:
            nb = name.encode()
            out.append(pack(">H", len(nb)) + nb + pack(">i", len(hv)) + hv)
    with open(path, "wb") as f:
        f.write(b"".join(out))


def read_records_file(path, topic):
    with open(path, "rb") as f:
        data = f.read()
    got = {}
    pos = 0
    unpack = struct.unpack_from
    while pos < len(data):
        p, o, klen = unpack(">iqi", data, pos)
        pos += 16
        key = data[pos:pos + klen] if klen >= 0 else None
        pos += max(klen, 0)
        vlen, = unpack(">i", data, pos)
        pos += 4
        value = data[pos:pos + vlen] if vlen >= 0 else None
        pos += max(vlen, 0)
        nh, = unpack(">H", data, pos)
        pos += 2
        headers = []
        for _ in range(nh):
            nlen, = unpack(">H", data, pos)
            name = data[pos + 2:pos + 2 + nlen].decode()
            pos += 2 + nlen
            hlen, = unpack(">i", data, pos)
            pos += 4
            headers.append((name, data[pos:pos + hlen] if hlen >= 0 else None))
            pos += max(hlen, 0)
        offs, recs = got.setdefault((topic, p), ([], []))
        offs.append(o)
        recs.append((key, value, tuple(headers)))
    return got


def node_available():
    return os.path.isdir(os.path.join(JS_DIR, "node_modules", "kafkajs"))


def run_node(args, timeout):
    """Runs produce_consume.js; returns its stdout, raises with its stderr on failure."""
    r = subprocess.run(["node", os.path.join(JS_DIR, "produce_consume.js")] + args,
                       cwd=JS_DIR, capture_output=True, timeout=timeout)
    assert r.returncode == 0, "produce_consume.js %s: rc %d:\n%s" % (
        " ".join(args[:1]), r.returncode, r.stderr.decode(errors="replace")[-4000:])
    return r.stdout.decode()


# --------------------------------------------------------------------------- parallelism

def run_in_threads(fn, arg_lists):
    """fn(*args) for each args, concurrently in threads; returns results in order and
    re-raises the first exception (after all have finished)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(arg_lists)) as ex:
        futs = [ex.submit(fn, *a) for a in arg_lists]
        concurrent.futures.wait(futs)
        return [f.result() for f in futs]


def process_pool(workers=2):
    """Worker processes for pure-Python clients (kafka-python holds the GIL). spawn, not
    fork: the test process may run librdkafka threads."""
    import multiprocessing
    return concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


class Timer:
    """Collects named phase durations to print at the end of a test."""

    def __init__(self):
        self.t0 = time.time()
        self.last = self.t0
        self.phases = []

    def mark(self, name):
        now = time.time()
        self.phases.append((name, now - self.last))
        self.last = now

    def __str__(self):
        return ", ".join("%s %.1fs" % p for p in self.phases) + \
            " (total %.1fs)" % (time.time() - self.t0)
