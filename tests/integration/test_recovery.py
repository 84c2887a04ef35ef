"""Recovery: a segment truncated at an arbitrary byte, or with a flipped byte in its tail, is
recovered on start (tail dropped, everything before it served).

Each case writes known batches (raw Produce, so batch boundaries are exact) into a topic with
small segments, stops the broker cleanly, damages a segment file at a seeded random position,
starts the broker again and checks with a real consumer that exactly the batches before the
damage are served, that the damaged tail is gone on disk, that the broker logged a recovery
warning, and that producing continues at the right offset.
"""
import glob
import os
import random

import pytest
from confluent_kafka import Producer

import kwire

TOPIC = "rec"
SEGMENT_BYTES = 4096
NBATCHES = 40


def segment_files(b, topic=TOPIC, p=0):
    d = os.path.join(b.data_dir, "%s-%d" % (topic, p))
    return sorted(glob.glob(os.path.join(d, "*.log")))


def write_known_log(b, rng):
    """Creates TOPIC (one partition, small segments) and appends NBATCHES batches of 1-4
    records. Returns [(base_offset, [values])] in log order."""
    kwire.create_topic(b.bootstrap, TOPIC, 1, {"segment.bytes": str(SEGMENT_BYTES)})
    batches = []
    s = kwire.connect(b.port)
    try:
        nxt = 0
        for i in range(NBATCHES):
            vals = [b"b%03d-r%d-" % (i, j) + bytes(rng.randrange(97, 123)
                                                   for _ in range(rng.randrange(10, 200)))
                    for j in range(rng.randrange(1, 5))]
            err, base = kwire.produce_raw(s, TOPIC, 0, vals, corr=i + 1)
            assert err == 0 and base == nxt, (err, base, nxt)
            batches.append((base, vals))
            nxt += len(vals)
    finally:
        s.close()
    return batches


def file_batches(path):
    with open(path, "rb") as f:
        data = f.read()
    bs = kwire.parse_batches(data)
    assert bs and bs[-1][0] + bs[-1][1] == len(data), "segment %s not batch-aligned" % path
    return data, bs


def expected_records(batches, leo):
    return [(base + j, v) for base, vals in batches for j, v in enumerate(vals) if base + j < leo]


def restart_and_verify(b, batches, leo, damaged_path, kept_bytes):
    """Starts b, checks the served log is exactly the batches below leo, the damaged file was
    cut to kept_bytes, the recovery was logged, and new data lands at leo."""
    log_before = len(b.log())
    b.start()
    with kwire.broker_log_on_failure(b):
        verify_recovered(b, batches, leo, damaged_path, kept_bytes, log_before)


def verify_recovered(b, batches, leo, damaged_path, kept_bytes, log_before):
    text = b.log()[log_before:]
    assert "recovered segment" in text and "truncated the rest" in text, text[-3000:]
    assert os.path.getsize(damaged_path) == kept_bytes
    # producing continues at the recovered log end, with a real (idempotent) client. (Produced
    # before consuming: a produce right after a consumer closes trips the parked-fetch
    # use-after-free that test_bad_input.py::test_parked_fetch_woken_by_produce isolates.)
    p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "enable.idempotence": True})
    offs = []
    p.produce(TOPIC, value=b"after-recovery", partition=0,
              on_delivery=lambda err, msg: offs.append((err, msg.offset())))
    assert p.flush(30) == 0
    assert offs == [(None, leo)], "new data not at the recovered log end %d: %s" % (leo, offs)
    want = expected_records(batches, leo) + [(leo, b"after-recovery")]
    got = kwire.consume_all(b.bootstrap, TOPIC, [0])[0]
    assert len(got) == len(want), "served %d records, expected %d (LEO %d)" % (
        len(got), len(want), leo)
    assert got == want
    # and the recovered state is stable across a clean restart
    b.restart()
    assert kwire.consume_all(b.bootstrap, TOPIC, [0])[0] == want


@pytest.mark.parametrize("seed", range(6))
def test_truncated_last_segment(broker_factory, seed):
    rng = random.Random(1000 + seed)
    b = broker_factory()
    batches = write_known_log(b, rng)
    b.stop()
    segs = segment_files(b)
    assert len(segs) >= 3, "expected several segments, got %s" % segs
    path = segs[-1]
    data, bs = file_batches(path)
    # a cut inside one of the last (up to) three batches, never on a batch boundary
    first = bs[max(0, len(bs) - 3)][0]
    boundaries = {p for p, _, _, _ in bs}
    cut = rng.randrange(first + 1, len(data))
    while cut in boundaries:
        cut += 1
    with open(path, "r+b") as f:
        f.truncate(cut)
    kept = [x for x in bs if x[0] + x[1] <= cut]
    kept_bytes = kept[-1][0] + kept[-1][1] if kept else 0
    leo = kept[-1][3] + 1 if kept else bs[0][2]
    restart_and_verify(b, batches, leo, path, kept_bytes)


@pytest.mark.parametrize("cut_kind", ["one-byte", "partial-header", "last-byte-missing"])
def test_truncated_last_segment_edges(broker_factory, cut_kind):
    rng = random.Random({"one-byte": 1, "partial-header": 2, "last-byte-missing": 3}[cut_kind])
    b = broker_factory()
    batches = write_known_log(b, rng)
    b.stop()
    path = segment_files(b)[-1]
    data, bs = file_batches(path)
    last_pos = bs[-1][0]
    cut = {"one-byte": 1, "partial-header": last_pos + 30,
           "last-byte-missing": len(data) - 1}[cut_kind]
    with open(path, "r+b") as f:
        f.truncate(cut)
    kept = [x for x in bs if x[0] + x[1] <= cut]
    kept_bytes = kept[-1][0] + kept[-1][1] if kept else 0
    leo = kept[-1][3] + 1 if kept else bs[0][2]
    restart_and_verify(b, batches, leo, path, kept_bytes)


@pytest.mark.parametrize("seed", range(8))
def test_flipped_byte_in_last_segment(broker_factory, seed):
    """A flipped byte in a CRC-protected part (CRC field, attributes .. records) or in a
    structural field (batch length, magic) of one of the last batches: that batch and every
    later one are dropped."""
    rng = random.Random(2000 + seed)
    b = broker_factory()
    batches = write_known_log(b, rng)
    b.stop()
    path = segment_files(b)[-1]
    data, bs = file_batches(path)
    victim = rng.randrange(max(0, len(bs) - 3), len(bs))
    pos, total, base, last = bs[victim]
    # batch length (8..11), magic (16), CRC (17..20), everything after it
    rel = rng.choice(list(range(8, 12)) + list(range(16, total)))
    mask = 1 << rng.randrange(8) if seed % 2 else rng.randrange(1, 256)
    buf = bytearray(data)
    buf[pos + rel] ^= mask
    with open(path, "wb") as f:
        f.write(buf)
    leo = base
    restart_and_verify(b, batches, leo, path, pos)


HEADER_FIELDS = {"length-hi": 8, "length-lo": 11, "magic": 16, "crc": 18, "attributes": 22,
                 "last-offset-delta": 26, "first-timestamp": 30, "producer-id": 45,
                 "base-sequence": 55, "record-count": 60, "first-record": 61}


@pytest.mark.parametrize("field", sorted(HEADER_FIELDS))
def test_flipped_header_byte_in_last_batch(broker_factory, field):
    """A flipped bit in each protected header field of the last batch drops that batch."""
    rng = random.Random(HEADER_FIELDS[field])
    b = broker_factory()
    batches = write_known_log(b, rng)
    b.stop()
    path = segment_files(b)[-1]
    data, bs = file_batches(path)
    pos, total, base, last = bs[-1]
    buf = bytearray(data)
    buf[pos + HEADER_FIELDS[field]] ^= 0x01
    with open(path, "wb") as f:
        f.write(buf)
    restart_and_verify(b, batches, base, path, pos)


@pytest.mark.parametrize("seed", range(3))
def test_truncated_sealed_segment_drops_later_segments(broker_factory, seed):
    """A sealed (non-last) segment cut inside a batch: recovery keeps the batches before the
    cut and drops every later segment, so offsets stay contiguous (log.c, recovery step 2)."""
    rng = random.Random(3000 + seed)
    b = broker_factory()
    batches = write_known_log(b, rng)
    b.stop()
    segs = segment_files(b)
    assert len(segs) >= 3
    victim = rng.randrange(0, len(segs) - 1)
    path = segs[victim]
    data, bs = file_batches(path)
    boundaries = {p for p, _, _, _ in bs}
    cut = rng.randrange(1, len(data))
    while cut in boundaries:
        cut += 1
    with open(path, "r+b") as f:
        f.truncate(cut)
    kept = [x for x in bs if x[0] + x[1] <= cut]
    kept_bytes = kept[-1][0] + kept[-1][1] if kept else 0
    leo = kept[-1][3] + 1 if kept else bs[0][2]
    restart_and_verify(b, batches, leo, path, kept_bytes)
    # every later segment is gone; at most a new one at the recovered end was rolled since
    remaining = segment_files(b)
    allowed = set(segs[:victim + 1]) | {os.path.join(os.path.dirname(path), "%020d.log" % leo)}
    assert set(remaining) <= allowed, sorted(set(remaining) - allowed)


def test_flipped_base_offset_in_last_batch(broker_factory):
    """The base offset and leader epoch are outside the batch CRC. A flipped base-offset byte in
    the last batch must not make the broker serve records at offsets it never assigned: the
    batch is either dropped or served at its true offset."""
    rng = random.Random(4242)
    b = broker_factory()
    batches = write_known_log(b, rng)
    b.stop()
    path = segment_files(b)[-1]
    data, bs = file_batches(path)
    pos, total, base, last = bs[-1]
    buf = bytearray(data)
    buf[pos + 6] ^= 0x10  # base offset + 4096
    with open(path, "wb") as f:
        f.write(buf)
    b.start()
    got = kwire.consume_all(b.bootstrap, TOPIC, [0])[0]
    before = expected_records(batches, base)
    whole = expected_records(batches, last + 1)
    served = [off for off, _ in got]
    assert got == before or got == whole, (
        "last batch (true offsets %d..%d, base offset byte flipped) served at offsets %s; "
        "served log end %s" % (base, last, served[len(before):], served[-1] + 1 if got else 0))


@pytest.mark.parametrize("damage", ["deleted", "odd-size", "random-bytes"])
def test_damaged_index_files_are_rebuilt(broker_factory, damage):
    """Sealed segments open from their .index/.timeindex; damaged or missing index files fall
    back to a scan and lose nothing."""
    rng = random.Random({"deleted": 5, "odd-size": 6, "random-bytes": 7}[damage])
    b = broker_factory()
    batches = write_known_log(b, rng)
    b.stop()
    segs = segment_files(b)
    assert len(segs) >= 3
    for seg in segs[:-1]:
        for ext in (".index", ".timeindex"):
            p = seg[:-4] + ext
            assert os.path.exists(p), "sealed segment without %s" % p
            if damage == "deleted":
                os.unlink(p)
            elif damage == "odd-size":
                with open(p, "ab") as f:
                    f.write(b"\x01\x02\x03")
            else:
                n = os.path.getsize(p)
                with open(p, "wb") as f:
                    f.write(bytes(rng.randrange(256) for _ in range(max(n, 24))))
    sizes = [os.path.getsize(s) for s in segs]
    b.start()
    with kwire.broker_log_on_failure(b):
        want = expected_records(batches, 1 << 62)
        assert kwire.consume_all(b.bootstrap, TOPIC, [0])[0] == want
        assert [os.path.getsize(s) for s in segs] == sizes, "a segment was cut"
        # offset lookups in the middle of each sealed segment still work
        for base, vals in batches[::7]:
            s = kwire.connect(b.port)
            s.sendall(kwire.request(kwire.API_FETCH, 4, 1,
                                    kwire.body_fetch(4, TOPIC, 0, base + len(vals) - 1)))
            payload = kwire.recv_frame(s)
            s.close()
            assert vals[-1] in payload, "fetch at offset %d did not return its batch" % base
