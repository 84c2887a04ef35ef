"""The flexible and KIP-890 versions of the transaction APIs (issue 16, SPEC 12), raw on the
wire: InitProducerId v2-v4 (KIP-360: a producer bumps its own epoch, keeping its producer id),
AddPartitionsToTxn v3 and v4 (KIP-890 part 1: several transactions per request, VerifyOnly,
broker to broker), AddOffsetsToTxn v3, EndTxn v3, TxnOffsetCommit v3 (KIP-447: the
consumer's member, generation and instance id are checked), WriteTxnMarkers v1 and
ListTransactions v1 (KIP-994's DurationFilter).

The requests are encoded here by hand from Kafka's message layouts (not from kpool's own
definitions, as kdefs does), so a definition that strays from Kafka's fails here.

Fails on the old code: none of these versions was served (ApiVersions advertised
InitProducerId 0-1, AddPartitionsToTxn/AddOffsetsToTxn/EndTxn/TxnOffsetCommit 0-2,
WriteTxnMarkers 0 and ListTransactions 0; the requests were refused with UNSUPPORTED_VERSION).
"""
import logging
import struct
import time

import kwire
from test_transactions import create_topics, txn_producer

NONE, UNKNOWN_TOPIC_OR_PARTITION, ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID = 0, 3, 22, 25
CLUSTER_AUTHORIZATION_FAILED, INVALID_REQUEST, INVALID_PRODUCER_EPOCH = 31, 42, 47
INVALID_TXN_STATE, INVALID_PRODUCER_ID_MAPPING, CONCURRENT_TRANSACTIONS = 48, 49, 51
OPERATION_NOT_ATTEMPTED, FENCED_INSTANCE_ID, PRODUCER_FENCED = 55, 82, 90


# --------------------------------------------------------------------------- encoding

def cstr(s):
    return kwire.compact_string(s)


def carray(items, enc):
    return kwire.uvarint(len(items) + 1) + b"".join(enc(x) for x in items)


TAGS = kwire.uvarint(0)  # no tagged fields


class Rd:
    """Reads a response body (flexible encoding unless told)."""

    def __init__(self, data, flex=True):
        self.d, self.p, self.flex = data, 0, flex

    def take(self, n):
        assert self.p + n <= len(self.d), "short response"
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def i8(self):
        return struct.unpack(">b", self.take(1))[0]

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def i64(self):
        return struct.unpack(">q", self.take(8))[0]

    def uv(self):
        v, self.p = kwire.read_uvarint(self.d, self.p)
        return v

    def str(self):
        if self.flex:
            n = self.uv() - 1
        else:
            n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def alen(self):
        return self.uv() - 1 if self.flex else self.i32()

    def tags(self):
        if self.flex:
            for _ in range(self.uv()):
                self.uv()
                self.take(self.uv())

    def end(self):
        self.tags()
        assert self.p == len(self.d), "%d bytes left" % (len(self.d) - self.p)


def call(broker, key, v, body, flex=True):
    """One request with a v2 (flexible) or v1 header; the response body after the header."""
    hdr = kwire.i16(key) + kwire.i16(v) + kwire.i32(11) + kwire.string("txn-versions")
    s = kwire.connect(broker.port)
    try:
        s.sendall(kwire.frame(hdr + (TAGS if flex else b"") + body))
        r = Rd(kwire.recv_frame(s), flex)
        assert r.i32() == 11
        r.tags()  # response header v1
        return r
    finally:
        s.close()


def init_pid(broker, txn_id, v=4, pid=-1, epoch=-1, timeout_ms=60000):
    """InitProducerId (v2+); (error, producer id, epoch)."""
    body = cstr(txn_id) + kwire.i32(timeout_ms)
    if v >= 3:
        body += kwire.i64(pid) + kwire.i16(epoch)
    r = call(broker, 22, v, body + TAGS)
    r.i32()
    out = (r.i16(), r.i64(), r.i16())
    r.end()
    return out


def topics_body(topics):
    """[(name, [partitions])] as AddPartitionsToTxnTopic entries."""
    return carray(topics, lambda t: cstr(t[0]) + carray(t[1], kwire.i32) + TAGS)


def read_topic_results(r):
    out = {}
    for _ in range(r.alen()):
        name = r.str()
        for _ in range(r.alen()):
            part, err = r.i32(), r.i16()
            r.tags()
            out[(name, part)] = err
        r.tags()
    return out


def add_partitions_v3(broker, txn_id, pid, epoch, topics):
    r = call(broker, 24, 3, cstr(txn_id) + kwire.i64(pid) + kwire.i16(epoch) +
             topics_body(topics) + TAGS)
    r.i32()
    out = read_topic_results(r)
    r.end()
    return out


def add_partitions_v4(broker, txns):
    """txns: [(id, pid, epoch, verify_only, topics)]; (top error, {id: {(topic, p): err}})."""
    body = carray(txns, lambda t: cstr(t[0]) + kwire.i64(t[1]) + kwire.i16(t[2]) +
                  kwire.i8(1 if t[3] else 0) + topics_body(t[4]) + TAGS)
    r = call(broker, 24, 4, body + TAGS)
    r.i32()
    top = r.i16()
    out = {}
    for _ in range(r.alen()):
        tid = r.str()
        out[tid] = read_topic_results(r)
        r.tags()
    r.end()
    return top, out


def simple(broker, key, v, body):
    """AddOffsetsToTxn / EndTxn: the error code."""
    r = call(broker, key, v, body + TAGS)
    r.i32()
    err = r.i16()
    r.end()
    return err


def add_offsets_v3(broker, txn_id, pid, epoch, group):
    return simple(broker, 25, 3, cstr(txn_id) + kwire.i64(pid) + kwire.i16(epoch) + cstr(group))


def end_txn_v3(broker, txn_id, pid, epoch, commit):
    return simple(broker, 26, 3, cstr(txn_id) + kwire.i64(pid) + kwire.i16(epoch) +
                  kwire.i8(1 if commit else 0))


def describe_state(broker, txn_id):
    """DescribeTransactions v0: (state, epoch, [(topic, partition)])."""
    r = call(broker, 65, 0, carray([txn_id], cstr) + TAGS)
    r.i32()
    assert r.alen() == 1
    err, _, st, _, _, _, epoch = r.i16(), r.str(), r.str(), r.i32(), r.i64(), r.i64(), r.i16()
    parts = []
    for _ in range(r.alen()):
        t = r.str()
        parts += [(t, r.i32()) for _ in range(r.alen())]
        r.tags()
    r.tags()
    r.end()
    assert err == 0
    return st, epoch, sorted(parts)


def wait_state(broker, txn_id, want, timeout=30):
    deadline = time.time() + timeout
    while True:
        st = describe_state(broker, txn_id)[0]
        if st == want or time.time() > deadline:
            return st
        time.sleep(0.1)


# --------------------------------------------------------------------------- tests

def test_api_versions_advertise_flexible_txn_versions(broker):
    _, err, got, _ = kwire.api_versions(broker.port, version=3)
    assert err == NONE
    for key, hi in ((22, 4), (24, 4), (25, 3), (26, 3), (27, 1), (28, 3), (66, 1)):
        assert got[key] == (0, hi), (key, got[key])


def test_init_producer_id_v4_epoch_bump(broker):
    """KIP-360 as Kafka's coordinator: the producer's own epoch bumps keep the producer id, a
    retry of the last bump gets the same epoch, a stale epoch is fenced (INVALID_PRODUCER_EPOCH
    below v4), an id/epoch pair with one of them missing is INVALID_REQUEST."""
    err, pid, epoch = init_pid(broker, "kip360", v=2)
    assert (err, epoch) == (NONE, 0) and pid >= 0
    assert init_pid(broker, "kip360", pid=pid, epoch=0) == (NONE, pid, 1)
    assert init_pid(broker, "kip360", pid=pid, epoch=0) == (NONE, pid, 1)  # the retry
    assert init_pid(broker, "kip360", pid=pid, epoch=1) == (NONE, pid, 2)
    assert init_pid(broker, "kip360", pid=pid, epoch=7)[0] == PRODUCER_FENCED
    assert init_pid(broker, "kip360", v=3, pid=pid, epoch=7)[0] == INVALID_PRODUCER_EPOCH
    assert init_pid(broker, "kip360", pid=pid, epoch=-1)[0] == INVALID_REQUEST
    assert init_pid(broker, "kip360", pid=-1, epoch=2)[0] == INVALID_REQUEST
    assert init_pid(broker, "kip360", pid=pid + 1000, epoch=2)[0] == PRODUCER_FENCED
    # a new incarnation (no epoch given) fences the old one, whose retry is no retry now
    assert init_pid(broker, "kip360", v=4) == (NONE, pid, 3)
    assert init_pid(broker, "kip360", pid=pid, epoch=2)[0] == PRODUCER_FENCED
    # an unknown transactional id with an id/epoch: a fresh producer id (Kafka's case 1)
    err, pid2, epoch2 = init_pid(broker, "kip360-new", pid=pid, epoch=3)
    assert (err, epoch2) == (NONE, 0) and pid2 != pid
    # without a transactional id: a new idempotent producer id whatever is given
    r = call(broker, 22, 4, cstr(None) + kwire.i32(-1) + kwire.i64(pid) + kwire.i16(3) + TAGS)
    r.i32()
    err, pid3, epoch3 = r.i16(), r.i64(), r.i16()
    r.end()
    assert (err, epoch3) == (NONE, 0) and pid3 not in (pid, pid2)


def test_init_producer_id_v4_fences_open_transaction(broker):
    """An InitProducerId with the producer's epoch while its transaction is open: the
    transaction is aborted with the epoch bumped and CONCURRENT_TRANSACTIONS answered; the
    retry, whose epoch is now stale, is fenced (Kafka's PrepareEpochFence)."""
    create_topics(broker, "tv-fence", partitions=1)
    err, pid, epoch = init_pid(broker, "fence-me")
    assert err == NONE
    assert add_partitions_v3(broker, "fence-me", pid, epoch, [("tv-fence", [0])]) == {
        ("tv-fence", 0): NONE}
    assert init_pid(broker, "fence-me", pid=pid, epoch=epoch)[0] == CONCURRENT_TRANSACTIONS
    assert wait_state(broker, "fence-me", "CompleteAbort") == "CompleteAbort"
    assert init_pid(broker, "fence-me", pid=pid, epoch=epoch)[0] == PRODUCER_FENCED
    assert init_pid(broker, "fence-me") == (NONE, pid, epoch + 2)


def test_flexible_transaction_round_trip(broker):
    """AddPartitionsToTxn v3 (Kafka's per-partition errors), AddOffsetsToTxn v3, EndTxn v3,
    TxnOffsetCommit v3 outside a group (no member: not checked), WriteTxnMarkers v1."""
    create_topics(broker, "tv-a", "tv-b", partitions=2)
    err, pid, epoch = init_pid(broker, "flex-rt")
    assert err == NONE
    # one unknown partition: nothing added, the others OPERATION_NOT_ATTEMPTED
    assert add_partitions_v3(broker, "flex-rt", pid, epoch, [("tv-a", [0, 9]), ("tv-b", [1])]) \
        == {("tv-a", 0): OPERATION_NOT_ATTEMPTED, ("tv-a", 9): UNKNOWN_TOPIC_OR_PARTITION,
            ("tv-b", 1): OPERATION_NOT_ATTEMPTED}
    assert add_partitions_v3(broker, "flex-rt", pid, epoch + 1, [("tv-a", [0])]) == {
        ("tv-a", 0): PRODUCER_FENCED}
    assert add_partitions_v3(broker, "flex-rt", pid, epoch, [("tv-a", [0]), ("tv-b", [1])]) == {
        ("tv-a", 0): NONE, ("tv-b", 1): NONE}
    assert add_offsets_v3(broker, "flex-rt", pid, epoch + 1, "flex-group") == PRODUCER_FENCED
    assert add_offsets_v3(broker, "flex-rt", pid, epoch, "flex-group") == NONE
    body = (cstr("flex-rt") + cstr("flex-group") + kwire.i64(pid) + kwire.i16(epoch) +
            kwire.i32(-1) + cstr("") + cstr(None) +
            carray([("tv-a", [(0, 5)])], lambda t: cstr(t[0]) + carray(
                t[1], lambda p: kwire.i32(p[0]) + kwire.i64(p[1]) + kwire.i32(-1) + cstr("m") +
                TAGS) + TAGS) + TAGS)
    r = call(broker, 28, 3, body)
    r.i32()
    assert read_topic_results(r) == {("tv-a", 0): NONE}
    r.end()
    st, _, parts = describe_state(broker, "flex-rt")
    assert st == "Ongoing" and ("tv-a", 0) in parts and ("tv-b", 1) in parts
    assert end_txn_v3(broker, "flex-rt", pid, epoch + 1, True) == PRODUCER_FENCED
    assert end_txn_v3(broker, "flex-rt", pid, epoch, True) == NONE
    assert describe_state(broker, "flex-rt")[0] == "CompleteCommit"
    assert end_txn_v3(broker, "flex-rt", pid, epoch, True) == NONE  # a retry
    assert end_txn_v3(broker, "flex-rt", pid, epoch, False) == INVALID_TXN_STATE
    # WriteTxnMarkers v1: an abort marker for a producer with nothing open changes nothing
    marker = (kwire.i64(pid) + kwire.i16(epoch) + kwire.i8(0) +
              carray([("tv-a", [1, 7])], lambda t: cstr(t[0]) + carray(t[1], kwire.i32) + TAGS) +
              kwire.i32(0) + TAGS)
    r = call(broker, 27, 1, carray([marker], lambda m: m) + TAGS)
    assert r.alen() == 1 and r.i64() == pid
    assert read_topic_results(r) == {("tv-a", 1): NONE, ("tv-a", 7): UNKNOWN_TOPIC_OR_PARTITION}
    r.tags()
    r.end()


def test_add_partitions_v4_batched_and_verify_only(broker):
    """AddPartitionsToTxn v4, several transactions in one request, each with its own
    results: VerifyOnly answers per partition whether it is in the open transaction
    (INVALID_TXN_STATE if not: v4 predates TRANSACTION_ABORTABLE) and adds nothing; the
    others are added as at v3; an unknown id, a stale epoch and an unknown partition each
    fail only their own transaction."""
    create_topics(broker, "tv-v4", partitions=3)
    ids = {}
    for tid in ("v4-a", "v4-b", "v4-c"):
        err, pid, epoch = init_pid(broker, tid)
        assert err == NONE
        ids[tid] = (pid, epoch)
    pa, ea = ids["v4-a"]
    assert add_partitions_v3(broker, "v4-a", pa, ea, [("tv-v4", [0])]) == {("tv-v4", 0): NONE}
    pb, eb = ids["v4-b"]
    pc, ec = ids["v4-c"]
    top, res = add_partitions_v4(broker, [
        ("v4-a", pa, ea, True, [("tv-v4", [0, 1])]),
        ("v4-b", pb, eb, False, [("tv-v4", [1, 2])]),
        ("v4-c", pc, ec + 1, False, [("tv-v4", [0])]),
        ("v4-none", 12345, 0, False, [("tv-v4", [0])]),
        ("v4-bad", pb, eb, False, [("tv-v4", [0]), ("tv-missing", [0])]),
    ])
    assert top == NONE
    assert res == {
        "v4-a": {("tv-v4", 0): NONE, ("tv-v4", 1): INVALID_TXN_STATE},
        "v4-b": {("tv-v4", 1): NONE, ("tv-v4", 2): NONE},
        "v4-c": {("tv-v4", 0): PRODUCER_FENCED},
        "v4-none": {("tv-v4", 0): INVALID_PRODUCER_ID_MAPPING},
        "v4-bad": {("tv-v4", 0): OPERATION_NOT_ATTEMPTED,
                   ("tv-missing", 0): UNKNOWN_TOPIC_OR_PARTITION},
    }
    assert describe_state(broker, "v4-a")[2] == [("tv-v4", 0)]  # verify added nothing
    assert describe_state(broker, "v4-b")[:3:2] == ("Ongoing", [("tv-v4", 1), ("tv-v4", 2)])
    assert describe_state(broker, "v4-c")[0] == "Empty"
    # verifying a transaction that is not open: every partition INVALID_TXN_STATE
    top, res = add_partitions_v4(broker, [("v4-c", pc, ec, True, [("tv-v4", [0])])])
    assert (top, res) == (NONE, {"v4-c": {("tv-v4", 0): INVALID_TXN_STATE}})
    top, res = add_partitions_v4(broker, [])
    assert (top, res) == (NONE, {})


def join_static(broker, group, instance):
    """JoinGroup v5 + SyncGroup v3 of one static member: (member id, generation)."""
    proto = carray_np([("range", b"")])
    body = (kwire.string(group) + kwire.i32(30000) + kwire.i32(30000) + kwire.string("") +
            kwire.string(instance) + kwire.string("consumer") + proto)
    r = call(broker, 11, 5, body, flex=False)
    r.i32()
    err, gen = r.i16(), r.i32()
    assert err == NONE, err
    r.str(), r.str()
    member = r.str()
    sync = (kwire.string(group) + kwire.i32(gen) + kwire.string(member) + kwire.string(instance) +
            kwire.i32(1) + kwire.string(member) + kwire.bytes_(b""))
    r = call(broker, 14, 3, sync, flex=False)
    r.i32()
    assert r.i16() == NONE
    return member, gen


def carray_np(protos):
    out = kwire.i32(len(protos))
    for name, meta in protos:
        out += kwire.string(name) + kwire.bytes_(meta)
    return out


def test_txn_offset_commit_v3_checks_member(broker):
    """KIP-447: TxnOffsetCommit v3 carries the consumer's generation, member id and instance
    id; the group coordinator refuses a stale generation (ILLEGAL_GENERATION), an unknown
    member (UNKNOWN_MEMBER_ID) and another member's instance id (FENCED_INSTANCE_ID), as
    Kafka; the right ones commit inside the transaction."""
    create_topics(broker, "tv-447", partitions=1)
    member, gen = join_static(broker, "g447", "inst-1")
    err, pid, epoch = init_pid(broker, "t447")
    assert err == NONE
    assert add_offsets_v3(broker, "t447", pid, epoch, "g447") == NONE

    def commit(generation, member_id, instance):
        body = (cstr("t447") + cstr("g447") + kwire.i64(pid) + kwire.i16(epoch) +
                kwire.i32(generation) + cstr(member_id) + cstr(instance) +
                carray([0], lambda p: cstr("tv-447") + carray(
                    [p], lambda q: kwire.i32(q) + kwire.i64(3) + kwire.i32(-1) + cstr(None) +
                    TAGS) + TAGS) + TAGS)
        r = call(broker, 28, 3, body)
        r.i32()
        (e,) = read_topic_results(r).values()
        r.end()
        return e

    assert commit(gen + 1, member, "inst-1") == ILLEGAL_GENERATION
    assert commit(gen, "someone-else", None) == UNKNOWN_MEMBER_ID
    assert commit(gen, "someone-else", "inst-1") == FENCED_INSTANCE_ID
    assert commit(gen, member, "inst-2") == UNKNOWN_MEMBER_ID
    assert commit(gen, member, "inst-1") == NONE
    assert commit(gen, member, None) == NONE
    assert end_txn_v3(broker, "t447", pid, epoch, True) == NONE


def test_list_transactions_v1_duration_filter(broker):
    """ListTransactions v1 (KIP-994): DurationFilter lists only the transactions running
    longer than it (as Kafka, one with no start time counts as running since the epoch)."""
    create_topics(broker, "tv-dur", partitions=1)
    err, pid, epoch = init_pid(broker, "dur-open")
    assert err == NONE
    assert add_partitions_v3(broker, "dur-open", pid, epoch, [("tv-dur", [0])]) == {
        ("tv-dur", 0): NONE}
    assert init_pid(broker, "dur-idle")[0] == NONE

    def listed(duration_ms):
        r = call(broker, 66, 1, carray([], cstr) + carray([], kwire.i64) +
                 kwire.i64(duration_ms) + TAGS)
        r.i32()
        assert r.i16() == NONE
        assert r.alen() == 0  # UnknownStateFilters
        out = {}
        for _ in range(r.alen()):
            tid, _, st = r.str(), r.i64(), r.str()
            r.tags()
            out[tid] = st
        r.end()
        return out

    assert listed(-1) == {"dur-open": "Ongoing", "dur-idle": "Empty"}
    assert listed(3600 * 1000) == {"dur-idle": "Empty"}
    deadline = time.time() + 30
    while "dur-open" not in listed(50) and time.time() < deadline:
        time.sleep(0.1)
    assert listed(50) == {"dur-open": "Ongoing", "dur-idle": "Empty"}


def test_clients_use_new_versions(broker):
    """confluent-kafka (librdkafka) negotiates the highest versions both know: its
    transactional round trip (send_offsets_to_transaction from a group member included) works
    on them."""
    from confluent_kafka import Consumer
    create_topics(broker, "tv-cli", partitions=1)
    logs = _Collect()
    p = txn_producer(broker, "tv-cli-tx", debug="protocol", logger=logs.logger)
    c = Consumer({"bootstrap.servers": "127.0.0.1:%d" % broker.port, "group.id": "tv-cli-g",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.subscribe(["tv-cli"])
    p.begin_transaction()
    p.produce("tv-cli", b"x", partition=0)
    from confluent_kafka import TopicPartition
    deadline = time.time() + 60
    while not c.assignment() and time.time() < deadline:
        c.poll(0.2)
    p.send_offsets_to_transaction([TopicPartition("tv-cli", 0, 1)], c.consumer_group_metadata(),
                                  30)
    p.commit_transaction(30)
    c.close()
    p.flush(5)
    sent = _versions(logs.lines)
    for api in ("InitProducerId", "AddPartitionsToTxn", "AddOffsetsToTxn", "TxnOffsetCommit",
                "EndTxn"):
        assert api in sent, (api, sorted(sent))
    print("librdkafka sent:", {k: sorted(v) for k, v in sent.items()})
    # librdkafka 2.0 knows InitProducerId 4 and TxnOffsetCommit 3 (with the consumer's
    # member and generation, checked since): it uses them now; AddPartitionsToTxn 0,
    # AddOffsetsToTxn 0 and EndTxn 1 are the highest it knows
    assert max(sent["InitProducerId"]) == 4 and max(sent["TxnOffsetCommit"]) == 3


class _Collect(logging.Handler):
    """librdkafka's log lines (served by poll/flush) through a logging.Logger."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []
        self.logger = logging.getLogger("tv-rdkafka-%d" % id(self))
        self.logger.setLevel(logging.DEBUG)
        self.logger.propagate = False
        self.logger.addHandler(self)

    def emit(self, record):
        self.lines.append(record.getMessage())


def _versions(logs):
    """{ApiName: {versions}} from librdkafka's 'Sent <Api>Request (v<N>, ...' protocol lines."""
    import re
    out = {}
    for line in logs:
        m = re.search(r"Sent (\w+)Request \(v(\d+)", line)
        if m:
            out.setdefault(m.group(1), set()).add(int(m.group(2)))
    return out
