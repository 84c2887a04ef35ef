"""The group APIs at the versions Kafka 3.6 serves, with librdkafka's admin API and the wire.

Acceptance criteria covered (issue 20, items 5-7):
  * ListGroups v4 (KIP-518): librdkafka's ListConsumerGroups (c/group_tool.c, built here)
    reports each group's state (Stable, Empty) and filters by state; before, every state was
    "Unknown" and the filter was ignored;
  * AlterConsumerGroupOffsets while a consumer is live answers UNKNOWN_MEMBER_ID (generation
    -1, no member id, non-empty group), as Kafka; then, with the group empty, the offsets are
    altered and ListConsumerGroupOffsets reads them back, for named partitions and for "all
    topics";
  * every flexible version kpool now advertises for the group APIs, on the wire, encoded
    from Kafka's message specs (also an array of flexible elements smaller than their
    non-flexible form, which the decoder's size bound used to refuse): FindCoordinator v3 and v4 (batched keys), JoinGroup v6-v9,
    SyncGroup v4-v5 (protocol type/name checked: INCONSISTENT_GROUP_PROTOCOL), Heartbeat v4,
    OffsetCommit v8, OffsetFetch v6-v8 (v8: several groups in one request), DescribeGroups
    v5, ListGroups v3-v4, LeaveGroup v4-v5, DeleteGroups v2;
  * a member expires at its session deadline: a DeleteGroups sent (kafka-python, connection
    already open) 20 ms after session.timeout.ms since the member's last heartbeat finds the
    group empty, every time (the 50 ms tick made it fail most of the time).
"""
import os
import struct
import subprocess
import threading
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

import kwire
from harness.ctools import c_tool

HERE = os.path.dirname(os.path.abspath(__file__))

API_OFFSET_COMMIT, API_OFFSET_FETCH, API_FIND_COORDINATOR, API_JOIN = 8, 9, 10, 11
API_HEARTBEAT, API_LEAVE, API_SYNC, API_DESCRIBE, API_LIST, API_DELETE = 12, 13, 14, 15, 16, 42
MEMBER_ID_REQUIRED, INCONSISTENT_GROUP_PROTOCOL, NON_EMPTY_GROUP = 79, 23, 68

# consumer protocol subscription v0 of topic "fx"
SUBSCRIPTION = struct.pack(">hi", 0, 1) + kwire.string("fx") + struct.pack(">i", 0)


@pytest.fixture(scope="module")
def group_tool():
    """c/group_tool.c built against librdkafka (librdkafka-dev)."""
    yield from c_tool("group_tool")


def run_tool(tool, b, *args, conf=None, expect_rc=0):
    cmd = [tool]
    for k, v in (conf or {}).items():
        cmd += ["-X", "%s=%s" % (k, v)]
    r = subprocess.run(cmd + [b.bootstrap] + list(args), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == expect_rc, (r.returncode, r.stdout, r.stderr)
    return [l.split("\t") for l in r.stdout.splitlines()]


def produce(bootstrap, topic, n, partition=0):
    p = Producer({"bootstrap.servers": bootstrap})
    for i in range(n):
        p.produce(topic, b"v%d" % i, partition=partition)
    assert p.flush(20) == 0


def live_consumer(bootstrap, group, topic, want=1):
    """A subscribed consumer that has joined (it read `want` records): the group is Stable."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
    c.subscribe([topic])
    got, deadline = 0, time.time() + 30
    while got < want:
        assert time.time() < deadline, "the consumer never read"
        m = c.poll(0.2)
        if m is not None and not m.error():
            got += 1
    return c


# --------------------------------------------------------------------------- librdkafka admin


def test_list_groups_states_and_filter(broker_factory, group_tool):
    b = broker_factory(group_initial_rebalance_delay_ms=0)
    kwire.create_topic(b.bootstrap, "ls", 1)
    produce(b.bootstrap, "ls", 3)
    stable = live_consumer(b.bootstrap, "g-stable", "ls")
    try:
        empty = live_consumer(b.bootstrap, "g-empty", "ls")
        empty.commit(asynchronous=False)
        empty.close()
        states = {l[1]: l[2] for l in run_tool(group_tool, b, "list") if l[0] == "group"}
        assert states == {"g-stable": "Stable", "g-empty": "Empty"}, states
        only = [l[1] for l in run_tool(group_tool, b, "list", "Stable") if l[0] == "group"]
        assert only == ["g-stable"]
        only = [l[1] for l in run_tool(group_tool, b, "list", "Empty", "Dead") if l[0] == "group"]
        assert only == ["g-empty"]
        assert run_tool(group_tool, b, "list", "PreparingRebalance") == []
    finally:
        stable.close()


def test_alter_offsets_while_live_then_empty(broker_factory, group_tool):
    b = broker_factory(group_initial_rebalance_delay_ms=0)
    kwire.create_topic(b.bootstrap, "alt", 2)
    produce(b.bootstrap, "alt", 5, 0)
    produce(b.bootstrap, "alt", 5, 1)
    c = live_consumer(b.bootstrap, "g-alt", "alt")
    c.commit(offsets=[TopicPartition("alt", 0, 1), TopicPartition("alt", 1, 2)],
             asynchronous=False)
    # what Kafka answers an admin client while the group has members
    out = run_tool(group_tool, b, "alter", "g-alt", "alt:0:4")
    assert ["partition", "alt", "0", "4", "UNKNOWN_MEMBER_ID"] in out, out
    c.close()
    out = run_tool(group_tool, b, "alter", "g-alt", "alt:0:4", "alt:1:3")
    assert out[0] == ["group", "g-alt", "NO_ERROR"], out
    assert sorted(out[1:]) == [["partition", "alt", "0", "4", "NO_ERROR"],
                               ["partition", "alt", "1", "3", "NO_ERROR"]], out
    named = run_tool(group_tool, b, "offsets", "g-alt", "alt:0", "alt:1")
    assert sorted(l[:4] for l in named if l[0] == "partition") == [
        ["partition", "alt", "0", "4"], ["partition", "alt", "1", "3"]], named
    every = run_tool(group_tool, b, "offsets", "g-alt")
    assert sorted(l[:4] for l in every if l[0] == "partition") == [
        ["partition", "alt", "0", "4"], ["partition", "alt", "1", "3"]], every


# --------------------------------------------------------------------------- flexible wire


def carr(items):
    return kwire.uvarint(0) if items is None else kwire.uvarint(len(items) + 1) + b"".join(items)


def cbytes(b):
    return kwire.uvarint(len(b) + 1) + b


cstr = kwire.compact_string
TAGS = kwire.uvarint(0)


class FRd:
    """Reader of flexible (compact) responses."""

    def __init__(self, data):
        self.d, self.pos = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return v

    def i8(self):
        return self.take(">b")

    def i16(self):
        return self.take(">h")

    def i32(self):
        return self.take(">i")

    def i64(self):
        return self.take(">q")

    def uv(self):
        v, self.pos = kwire.read_uvarint(self.d, self.pos)
        return v

    def raw(self):
        n = self.uv()
        if n == 0:
            return None
        s = self.d[self.pos:self.pos + n - 1]
        self.pos += n - 1
        return s

    def str(self):
        s = self.raw()
        return None if s is None else s.decode()

    def arr(self, fn):
        n = self.uv()
        return None if n == 0 else [fn() for _ in range(n - 1)]

    def tags(self):
        for _ in range(self.uv()):
            self.uv()
            self.pos += self.uv()

    def end(self):
        self.tags()
        assert self.pos == len(self.d), "%d bytes left" % (len(self.d) - self.pos)


class Flex:
    def __init__(self, port):
        self.s = kwire.connect(port)
        self.corr = 0

    def call(self, key, version, body):
        self.corr += 1
        hdr = kwire.i16(key) + kwire.i16(version) + kwire.i32(self.corr) + kwire.string("flex")
        self.s.sendall(kwire.frame(hdr + TAGS + body))
        r = FRd(kwire.recv_frame(self.s, 15))
        assert r.i32() == self.corr
        r.tags()
        return r

    def close(self):
        self.s.close()


def join(f, group, member, version, instance=None):
    body = (cstr(group) + kwire.i32(6000) + kwire.i32(10000) + cstr(member) + cstr(instance) +
            cstr("consumer") + carr([cstr("range") + cbytes(SUBSCRIPTION) + TAGS]))
    if version >= 8:
        body += cstr("testing")
    r = f.call(API_JOIN, version, body + TAGS)
    out = {"throttle": r.i32(), "error": r.i16(), "generation": r.i32()}
    if version >= 7:
        out["protocol_type"] = r.str()
    out["protocol"], out["leader"] = r.str(), r.str()
    if version >= 9:
        out["skip"] = r.i8()
    out["member"] = r.str()
    out["members"] = r.arr(lambda: (r.str(), r.str(), r.raw(), r.tags())[:3])
    r.end()
    return out


def test_flexible_group_versions(broker_factory):
    b = broker_factory(group_initial_rebalance_delay_ms=0)
    kwire.create_topic(b.bootstrap, "fx", 1)
    f = Flex(b.port)
    try:
        # FindCoordinator v3 (one key) and v4 (several keys at once)
        r = f.call(API_FIND_COORDINATOR, 3, cstr("g-fx") + kwire.i8(0) + TAGS)
        found = (r.i32(), r.i16(), r.str(), r.i32(), r.str(), r.i32())
        r.end()
        node = found[3]
        assert node >= 0 and found == (0, 0, None, node, "127.0.0.1", b.port), found
        r = f.call(API_FIND_COORDINATOR, 4, kwire.i8(0) + carr([cstr("a"), cstr("b")]) + TAGS)
        r.i32()
        coords = r.arr(lambda: (r.str(), r.i32(), r.str(), r.i32(), r.i16(), r.str(), r.tags()))
        r.end()
        assert [c[:6] for c in coords] == [("a", node, "127.0.0.1", b.port, 0, None),
                                           ("b", node, "127.0.0.1", b.port, 0, None)]
        r = f.call(API_FIND_COORDINATOR, 4, kwire.i8(1) + carr([cstr("txn")]) + TAGS)
        r.i32()
        coords = r.arr(lambda: (r.str(), r.i32(), r.str(), r.i32(), r.i16(), r.str(), r.tags()))
        r.end()
        # transactional ids are coordinated here too (docs/transactions.md)
        assert coords[0][:5] == ("txn", node, "127.0.0.1", b.port, 0), coords

        # JoinGroup v6-v9: the id first (KIP-394), then the join
        for v in (6, 7, 8, 9):
            first = join(f, "g-fx%d" % v, "", v)
            assert first["error"] == MEMBER_ID_REQUIRED and first["member"], first
            j = join(f, "g-fx%d" % v, first["member"], v)
            assert (j["error"], j["generation"], j["protocol"], j["leader"]) == (
                0, 1, "range", first["member"]), j
            assert j["members"] == [(first["member"], None, SUBSCRIPTION)], j
            if v >= 7:
                assert j["protocol_type"] == "consumer"
            if v >= 9:
                assert j["skip"] == 0
        me, group = j["member"], "g-fx9"

        # SyncGroup v5: protocol type and name must be the group's
        def sync(version, ptype="consumer", pname="range", assignment=b"\x00\x00"):
            body = cstr(group) + kwire.i32(1) + cstr(me) + cstr(None)
            if version >= 5:
                body += cstr(ptype) + cstr(pname)
            body += carr([cstr(me) + cbytes(assignment) + TAGS]) + TAGS
            r = f.call(API_SYNC, version, body)
            out = [r.i32(), r.i16()]
            if version >= 5:
                out += [r.str(), r.str()]
            out.append(r.raw())
            r.end()
            return out[1:]

        assert sync(5, pname="roundrobin")[0] == INCONSISTENT_GROUP_PROTOCOL
        assert sync(5, ptype="connect")[0] == INCONSISTENT_GROUP_PROTOCOL
        assert sync(5) == [0, "consumer", "range", b"\x00\x00"]
        assert sync(4) == [0, b"\x00\x00"]

        # Heartbeat v4
        r = f.call(API_HEARTBEAT, 4, cstr(group) + kwire.i32(1) + cstr(me) + cstr(None) + TAGS)
        assert (r.i32(), r.i16()) == (0, 0)
        r.end()

        # OffsetCommit v8
        body = (cstr(group) + kwire.i32(1) + cstr(me) + cstr(None) +
                carr([cstr("fx") + carr([kwire.i32(0) + kwire.i64(7) + kwire.i32(-1) +
                                         cstr("meta") + TAGS]) + TAGS]) + TAGS)
        r = f.call(API_OFFSET_COMMIT, 8, body)
        r.i32()
        topics = r.arr(lambda: (r.str(), r.arr(lambda: (r.i32(), r.i16(), r.tags())[:2]),
                                r.tags())[:2])
        r.end()
        assert topics == [("fx", [(0, 0)])]
        # a flexible array whose elements are smaller than their non-flexible form (a topic
        # without partitions at the end of the request) is read, not refused
        body = (cstr(group) + kwire.i32(1) + cstr(me) + cstr(None) +
                carr([cstr("fx") + carr([]) + TAGS]) + TAGS)
        r = f.call(API_OFFSET_COMMIT, 8, body)
        r.i32()
        topics = r.arr(lambda: (r.str(), r.arr(lambda: (r.i32(), r.i16(), r.tags())[:2]),
                                r.tags())[:2])
        r.end()
        assert topics == [("fx", [])]

        # OffsetFetch v6 and v7 (one group), v8 (several groups, null topics = all)
        def parts():
            return r.arr(lambda: (r.i32(), r.i64(), r.i32(), r.str(), r.i16(), r.tags())[:5])

        for v in (6, 7):
            body = cstr(group) + carr([cstr("fx") + carr([kwire.i32(0)]) + TAGS])
            if v >= 7:
                body += kwire.i8(1)
            r = f.call(API_OFFSET_FETCH, v, body + TAGS)
            r.i32()
            topics = r.arr(lambda: (r.str(), parts(), r.tags())[:2])
            assert r.i16() == 0
            r.end()
            assert topics == [("fx", [(0, 7, -1, "meta", 0)])]
        body = carr([cstr(group) + carr(None) + TAGS,
                     cstr("g-fx6") + carr([cstr("fx") + carr([kwire.i32(0)]) + TAGS]) + TAGS,
                     cstr("g-none") + carr(None) + TAGS]) + kwire.i8(0) + TAGS
        r = f.call(API_OFFSET_FETCH, 8, body)
        r.i32()
        groups = r.arr(lambda: (r.str(), r.arr(lambda: (r.str(), parts(), r.tags())[:2]),
                                r.i16(), r.tags())[:3])
        r.end()
        assert groups == [(group, [("fx", [(0, 7, -1, "meta", 0)])], 0),
                          ("g-fx6", [("fx", [(0, -1, -1, "", 0)])], 0),
                          ("g-none", [], 0)], groups

        # DescribeGroups v5
        r = f.call(API_DESCRIBE, 5, carr([cstr(group)]) + kwire.i8(0) + TAGS)
        r.i32()
        described = r.arr(lambda: (r.i16(), r.str(), r.str(), r.str(), r.str(),
                                   r.arr(lambda: (r.str(), r.str(), r.str(), r.str(), r.raw(),
                                                  r.raw(), r.tags())[:6]),
                                   r.i32(), r.tags())[:6])
        r.end()
        assert described[0][:5] == (0, group, "Stable", "consumer", "range")
        assert described[0][5][0][0] == me and described[0][5][0][3] == "127.0.0.1"

        # ListGroups v3 (no state) and v4 (states, filter)
        r = f.call(API_LIST, 3, TAGS)
        r.i32()
        assert r.i16() == 0
        listed = r.arr(lambda: (r.str(), r.str(), r.tags())[:2])
        r.end()
        assert sorted(listed) == sorted(("g-fx%d" % v, "consumer") for v in (6, 7, 8, 9))

        def list4(states):
            r = f.call(API_LIST, 4, carr([cstr(s) for s in states]) + TAGS)
            r.i32()
            assert r.i16() == 0
            out = r.arr(lambda: (r.str(), r.str(), r.str(), r.tags())[:3])
            r.end()
            return sorted(out)

        assert (group, "consumer", "Stable") in list4([])
        assert list4(["stable"]) == [(group, "consumer", "Stable")]  # case-insensitive
        assert list4(["Dead"]) == []

        # LeaveGroup v5 (with a reason), then DeleteGroups v2
        r = f.call(API_LEAVE, 5, cstr(group) + carr([cstr(me) + cstr(None) + cstr("bye") +
                                                     TAGS]) + TAGS)
        r.i32()
        assert r.i16() == 0
        left = r.arr(lambda: (r.str(), r.str(), r.i16(), r.tags())[:3])
        r.end()
        assert left == [(me, None, 0)]
        r = f.call(API_DELETE, 2, carr([cstr(group), cstr("g-never")]) + TAGS)
        r.i32()
        results = r.arr(lambda: (r.str(), r.i16(), r.tags())[:2])
        r.end()
        assert results == [(group, 0), ("g-never", 69)]  # GROUP_ID_NOT_FOUND
    finally:
        f.close()


def test_static_leader_rejoin_v9_skips_assignment(broker_factory):
    # KIP-814: a static leader that restarts into a Stable group is told it leads (under its new
    # member id) with SkipAssignment, instead of being told someone else leads (v < 9)
    b = broker_factory(group_initial_rebalance_delay_ms=0)
    kwire.create_topic(b.bootstrap, "fx", 1)
    f = Flex(b.port)
    try:
        j = join(f, "g-static", "", 9, instance="i-1")
        assert j["error"] == 0 and j["leader"] == j["member"] and j["skip"] == 0, j
        old = j["member"]
        body = (cstr("g-static") + kwire.i32(1) + cstr(old) + cstr("i-1") + cstr("consumer") +
                cstr("range") + carr([cstr(old) + cbytes(b"\x01") + TAGS]) + TAGS)
        r = f.call(API_SYNC, 5, body)
        assert (r.i32(), r.i16()) == (0, 0)
        again = join(f, "g-static", "", 9, instance="i-1")
        assert again["error"] == 0 and again["member"] != old, again
        assert (again["generation"], again["leader"], again["skip"]) == (1, again["member"], 1)
        assert again["members"] == [(again["member"], "i-1", SUBSCRIPTION)], again
    finally:
        f.close()


# --------------------------------------------------------------------------- session expiry


def test_member_expires_at_its_session_deadline(broker_factory):
    from kafka.admin import KafkaAdminClient
    from test_groups import Wire
    # long enough for join, sync and heartbeat to fit in one session on a loaded machine
    # (300 ms did not: the member expired before its first heartbeat); the check is still
    # that it is gone 20 ms after its deadline
    session_ms = 1500
    b = broker_factory(group_initial_rebalance_delay_ms=0, group_min_session_timeout_ms=100)
    kwire.create_topic(b.bootstrap, "exp", 1)
    admin = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=10000)
    try:
        admin.list_consumer_groups()  # the connection is open before the timing starts
        node = admin._client.cluster.brokers().pop().nodeId
        w = Wire(b.port)
        for trial in range(8):
            group = "g-exp-%d" % trial
            j = w.join(group, session_ms=session_ms)
            assert j["error"] == 0, j
            assert w.sync(group, j["generation"], j["member"], [(j["member"], b"")])[0] == 0
            assert w.heartbeat(group, j["generation"], j["member"]) == 0
            heard = time.monotonic()  # the broker heard the member no later than this
            time.sleep(max(0.0, heard + session_ms / 1000.0 + 0.020 - time.monotonic()))
            res = admin.delete_consumer_groups([group], group_coordinator_id=node)
            assert res == [(group, kwire_error_none())], (trial, res)
        w.close()
    finally:
        admin.close()


def kwire_error_none():
    from kafka.errors import NoError
    return NoError
