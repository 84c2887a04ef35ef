"""Consumer group membership survives a broker restart (as Kafka's GroupMetadataManager).

Acceptance criteria covered here:
  * two confluent-kafka consumers share a 4-partition topic; the broker restarts (SIGTERM,
    and SIGKILL) while they keep running: right after the restart the group is Stable with
    the same members and assignments, the consumers keep their partitions with no revoke,
    assign or lost callback, the broker logs no rebalance and no new generation, and records
    produced after the restart are consumed exactly once across both consumers.
  * a member that is gone after the restart (its process killed while the broker was down,
    so no LeaveGroup) is expired only after its session timeout, counted from the broker's
    start, and its partitions move to the surviving consumer.
  * group metadata records the broker cannot read (an unknown value version, a value torn
    inside its members; appended to the segment while the broker is down) are skipped with
    a warning: the broker starts and the group is as its last readable record says.
  * raw wire: a static member's new member id (rejoin without rebalance) is stored before it
    is answered, so it is not fenced after a kill -9; a record with more members than
    group.max.size restores the group Empty (offsets kept, members must rejoin).

The generation is not visible to confluent-kafka's Python API (consumer_group_metadata() is
opaque in this version), so "same generation" is read from the broker's 'stabilized group'
log lines, which the broker writes for every generation it completes.
"""
import glob
import os
import re
import time

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient

import kwire
from test_groups import (ChildMember, Member, disjoint_cover, poll_for, poll_until, produce,
                         rebalances, stabilized)

PARTS = [0, 1, 2, 3]
# client-side errors librdkafka reports while the broker is down
DOWN_ERRORS = (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE)


class RestartMember(Member):
    """A Member that tolerates the connection errors of a broker restart."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.down_errors = 0

    def poll(self, timeout=0.05):
        m = self.c.poll(timeout)
        if m is None:
            return
        if m.error():
            if m.error().code() in DOWN_ERRORS:
                self.down_errors += 1
                return
            if m.error().code() == KafkaError._PARTITION_EOF:
                return
            raise AssertionError("%s: consumer error %s" % (self.name, m.error()))
        self.msgs.append((m.partition(), m.offset(), m.value()))


@pytest.fixture
def members():
    made = []
    yield made
    for m in made:
        try:
            m.close()
        except Exception:
            pass


def describe(bootstrap, group):
    """(state, protocol, {member_id: (client_id, assignment bytes)}) from ListGroups +
    DescribeGroups (AdminClient.list_groups)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    [g] = admin.list_groups(group, timeout=10)
    assert g.error is None, g.error
    return g.state, g.protocol, {m.id: (m.client_id, m.assignment) for m in g.members}


def restart(b, how):
    if how == "kill9":
        b.kill9()
        b.start()
    else:
        b.restart()


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_group_survives_broker_restart(broker_factory, members, how):
    """Members and assignments are restored: no rebalance, every record read exactly once."""
    b = broker_factory(group_initial_rebalance_delay_ms=1000)
    topic, group = "grp-restart", "g-restart-" + how
    kwire.create_topic(b.bootstrap, topic, len(PARTS))
    produce(b.bootstrap, topic, PARTS, 10)
    # a session long enough to outlast the restart of the ASan broker
    conf = {"session.timeout.ms": 30000}
    a = RestartMember("a", b.bootstrap, group, [topic], **conf)
    c = RestartMember("c", b.bootstrap, group, [topic], **conf)
    members += [a, c]
    poll_until([a, c], lambda: disjoint_cover([a.assignment(), c.assignment()], PARTS), 60,
               "a and c to share the partitions")
    poll_until([a, c], lambda: len(a.msgs) + len(c.msgs) >= 40, 30, "the first 40 records")
    poll_for([a, c], 1.0)  # a few heartbeats of the settled generation

    owned = {"a": a.assignment(), "c": c.assignment()}
    marks = {"a": len(a.events), "c": len(c.events)}
    gens, nreb = stabilized(b, group), rebalances(b, group)
    assert len(gens) >= 1 and gens[-1][1] == 2, gens
    state, proto, before = describe(b.bootstrap, group)
    assert state == "Stable" and len(before) == 2, (state, before)

    restart(b, how)

    # right after the restart, before any member could have rejoined: restored as it was
    state, proto2, after = describe(b.bootstrap, group)
    assert (state, proto2, after) == ("Stable", proto, before), (state, after, before)
    loads = re.findall(r"loaded \d+ groups \((\d+) members\)", b.log())
    assert loads[-1] == "2", loads

    # the members keep heartbeating on the same generation and member ids
    poll_for([a, c], 3.0)
    produce(b.bootstrap, topic, PARTS, 25, start=10)
    want = {(p, o) for p in PARTS for o in range(35)}
    poll_until([a, c], lambda: {(p, o) for x in (a, c) for p, o, _ in x.msgs} >= want, 60,
               "the records produced after the restart")
    poll_for([a, c], 1.5)  # nothing more (no duplicates) may arrive

    got = [(p, o) for x in (a, c) for p, o, _ in x.msgs]
    assert sorted(got) == sorted(want), "duplicates or gaps: %d read, %d distinct" % (
        len(got), len(set(got)))
    assert all(v == b"p%d-%d" % (p, o) for x in (a, c) for p, o, v in x.msgs)
    for x in (a, c):
        assert x.events[marks[x.name]:] == [], (x.name, x.events)
        assert x.assignment() == owned[x.name]
        # each consumer read its own partitions only
        assert {p for p, _, _ in x.msgs} == set(owned[x.name]), (x.name, owned)
    assert stabilized(b, group) == gens and rebalances(b, group) == nreb, (
        "the group rebalanced after the restart:\n" + b.log()[-4000:])
    state, _, final = describe(b.bootstrap, group)
    assert state == "Stable" and final == before


def test_gone_member_expires_after_restart(broker_factory, members):
    """A member that does not come back after the restart is expired after its session
    timeout (counted from the broker's start, not earlier) and its partitions move."""
    b = broker_factory(group_initial_rebalance_delay_ms=1000)
    topic, group = "grp-restart-gone", "g-restart-gone"
    kwire.create_topic(b.bootstrap, topic, len(PARTS))
    child_session_ms = 8000
    child = ChildMember(b.bootstrap, group, topic, child_session_ms)
    try:
        deadline = time.time() + 30
        while '{"event": "started"}' not in child.lines:
            assert time.time() < deadline and child.proc.poll() is None, child.output()
            time.sleep(0.05)
        a = RestartMember("a", b.bootstrap, group, [topic], **{"session.timeout.ms": 30000})
        members.append(a)
        poll_until([a], lambda: disjoint_cover([a.assignment(), child.current], PARTS), 60,
                   "a and the child to share the partitions")
        poll_for([a], 1.0)
        mine, theirs = a.assignment(), list(child.current)
        mark, nreb = len(a.events), rebalances(b, group)
        _, _, before = describe(b.bootstrap, group)
        assert len(before) == 2

        b.stop()
        child.kill()  # gone while the broker is down: it never sends LeaveGroup
        t_start = time.time()
        b.start()
        _, _, after = describe(b.bootstrap, group)
        assert after == before, (after, before)  # the gone member is restored, for now

        t_moved = poll_until([a], lambda: a.assignment() == PARTS, child_session_ms / 1000 + 60,
                             "a to take over the gone member's partitions")
        first_change = min(t for _, t, _ in a.events[mark:])
        # the session of the restored member starts when the broker starts, not before
        assert first_change - t_start >= child_session_ms / 1000 - 1.0, (
            "rebalanced %.2fs after the restart, before the %d ms session timeout" % (
                first_change - t_start, child_session_ms))
        # (t_start is before the broker's start, which takes seconds on a loaded machine)
        assert t_moved - t_start < child_session_ms / 1000 + 20
        log = b.log()
        assert "has failed (session timeout %d ms)" % child_session_ms in log, log[-3000:]
        assert rebalances(b, group) == nreb + 1, log[-3000:]
        assert stabilized(b, group)[-1][1] == 1
        # the moved partitions are read by a (nothing was committed: from the start)
        produce(b.bootstrap, topic, PARTS, 3)
        poll_until([a], lambda: {(p, o) for p, o, _ in a.msgs} >= {
            (p, o) for p in theirs for o in range(3)}, 30, "a to read the moved partitions")
        assert set(mine) | set(theirs) == set(PARTS)
        state, _, final = describe(b.bootstrap, group)
        assert state == "Stable" and len(final) == 1
    except AssertionError as e:
        raise AssertionError("%s\nchild output:\n%s" % (e, child.output()))
    finally:
        child.kill()


# --------------------------------------------------------------------------- damaged records

def offsets_partition(group, partitions=50):
    """Kafka's partition of a group in __consumer_offsets: Java's String.hashCode."""
    h = 0
    for ch in group.encode():
        h = (h * 31 + ch) & 0xFFFFFFFF
    h = h - (1 << 32) if h >= 1 << 31 else h
    return abs(h) % partitions


def keyed_batch(records, base_offset):
    """A magic-v2 batch (uncompressed) of (key, value) records, value None = tombstone."""
    ts = int(time.time() * 1000)
    recs = b""
    for i, (k, v) in enumerate(records):
        body = kwire.i8(0) + kwire.varint(0) + kwire.varint(i)
        body += kwire.varint(len(k)) + k
        body += kwire.varint(-1) if v is None else kwire.varint(len(v)) + v
        body += kwire.uvarint(0)
        recs += kwire.varint(len(body)) + body
    after_crc = (kwire.i16(0) + kwire.i32(len(records) - 1) + kwire.i64(ts) + kwire.i64(ts) +
                 kwire.i64(-1) + kwire.i16(-1) + kwire.i32(-1) + kwire.i32(len(records)) + recs)
    tail = kwire.i32(-1) + kwire.i8(2) + kwire.u32(kwire.crc32c(after_crc)) + after_crc
    return kwire.i64(base_offset) + kwire.i32(len(tail)) + tail


def group_key(group):
    return kwire.i16(2) + kwire.string(group)


def test_unreadable_group_records_skipped(broker_factory):
    """Group metadata records a broker cannot read — a value version it does not know, a
    value torn inside its members — are skipped with a warning on start; the group keeps what
    the last readable record said and the broker runs on."""
    from test_groups import Wire
    b = broker_factory(group_initial_rebalance_delay_ms=0)
    kwire.create_topic(b.bootstrap, "grp-torn", 2)
    group, other = "g-torn", "g-torn-other"
    w = Wire(b.port)
    try:
        j = w.join(group, session_ms=30000, version=1)
        gen, me = j["generation"], j["member"]
        assignment = kwire.i16(0) + kwire.array([kwire.string("grp-torn") + kwire.array(
            [kwire.i32(0), kwire.i32(1)])]) + kwire.bytes_(b"")
        assert j["error"] == 0 and w.sync(group, gen, me, [(me, assignment)]) == (0, assignment)
    finally:
        w.close()
    state, proto, before = describe(b.bootstrap, group)
    assert state == "Stable" and list(before) == [me], before

    b.stop()
    # a valid v3 value of one member, cut inside the member: what a torn write leaves
    good = (kwire.i16(3) + kwire.string("consumer") + kwire.i32(gen + 1) + kwire.string("range") +
            kwire.string("x-1") + kwire.i64(0) + kwire.i32(1) + kwire.string("x-1") +
            kwire.string(None) + kwire.string("x") + kwire.string("h") + kwire.i32(1000) +
            kwire.i32(1000) + kwire.bytes_(b"sub") + kwire.bytes_(b"asg"))
    torn = good[:-5]
    newer = kwire.i16(4) + b"\x09consumer\x00\x00\x00\x09"  # a flexible v4 value
    for g, values in ((group, [newer, torn]), (other, [torn])):
        d = os.path.join(b.data_dir, "__consumer_offsets-%d" % offsets_partition(g))
        seg = sorted(glob.glob(os.path.join(d, "*.log")))[-1]
        with open(seg, "rb") as f:
            data = f.read()
        batches = kwire.parse_batches(data)
        assert sum(n for _, n, _, _ in batches) == len(data), seg
        next_offset = batches[-1][3] + 1 if batches else 0
        with open(seg, "ab") as f:
            f.write(keyed_batch([(group_key(g), v) for v in values], next_offset))
    b.start()

    log = b.log()
    assert re.search(r"group %s: skipping the group metadata record at offset \d+ of "
                     r"__consumer_offsets-\d+ \(unknown value version\)" % group, log), log[-3000:]
    assert re.search(r"group %s: skipping the group metadata record at offset \d+ of "
                     r"__consumer_offsets-\d+ \(truncated\)" % group, log), log[-3000:]
    assert "group %s: skipping" % other in log
    # the last readable record holds: Stable, the same member and assignment
    assert describe(b.bootstrap, group) == (state, proto, before)
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    assert other not in [g.id for g in admin.list_groups(timeout=10)]


# --------------------------------------------------------------------------- raw wire

ASSIGNMENT = kwire.i16(0) + kwire.array([kwire.string("grp-wire") + kwire.array(
    [kwire.i32(0), kwire.i32(1)])]) + kwire.bytes_(b"")


def test_static_member_new_id_survives_restart(broker_factory):
    """A static member that rejoined a Stable group under a new member id (no rebalance) keeps
    that id across a broker restart: its record is stored before its JoinGroup is answered,
    so the restarted broker does not fence it (FENCED_INSTANCE_ID) for the old id."""
    from test_groups import Wire
    b = broker_factory(group_initial_rebalance_delay_ms=0)
    kwire.create_topic(b.bootstrap, "grp-wire", 2)
    group = "g-static-restart"
    w = Wire(b.port)
    try:
        j = w.join(group, session_ms=30000, version=5, instance="inst-1")
        gen, old = j["generation"], j["member"]
        assert j["error"] == 0 and w.sync(group, gen, old, [(old, ASSIGNMENT)])[0] == 0
        r = w.join(group, session_ms=30000, version=5, instance="inst-1")  # restarted member
        new = r["member"]
        assert r["error"] == 0 and r["generation"] == gen and new != old, r
        assert w.sync(group, gen, new) == (0, ASSIGNMENT)
    finally:
        w.close()
    b.kill9()
    b.start()
    w = Wire(b.port)
    try:
        assert w.heartbeat(group, gen, new, "inst-1", version=3) == 0
        assert w.heartbeat(group, gen, old, "inst-1", version=3) == 82  # FENCED_INSTANCE_ID
        assert w.sync(group, gen, new) == (0, ASSIGNMENT)
    finally:
        w.close()
    assert stabilized(b, group) == [(gen, 1, "range")]


def test_restored_group_over_max_size_comes_back_empty(broker_factory):
    """A record with more members than group.max.size (lowered before the restart) restores
    the group Empty with a warning; its committed offsets stay, its members rejoin."""
    import threading
    from test_groups import Wire
    b = broker_factory(group_initial_rebalance_delay_ms=0)
    kwire.create_topic(b.bootstrap, "grp-wire", 2)
    group = "g-max-restart"
    w1, w2 = Wire(b.port), Wire(b.port)
    try:
        j = w1.join(group, session_ms=30000, version=1)
        gen, m1 = j["generation"], j["member"]
        assert j["error"] == 0 and w1.sync(group, gen, m1, [(m1, ASSIGNMENT)])[0] == 0
        assert w1.commit(group, gen, m1, {("grp-wire", 0): 7}) == {("grp-wire", 0): 0}
        second = {}
        t = threading.Thread(target=lambda: second.update(
            w2.join(group, session_ms=30000, version=1)))
        t.start()
        deadline = time.time() + 30
        while "preparing to rebalance group %s in state Stable" % group not in b.log():
            assert time.time() < deadline, b.log()[-2000:]
            time.sleep(0.05)
        j = w1.join(group, member=m1, session_ms=30000, version=1)
        t.join(60)
        gen2, m2 = j["generation"], second["member"]
        assert j["error"] == 0 and second["error"] == 0 and gen2 == gen + 1
        assert w1.sync(group, gen2, m1, [(m1, ASSIGNMENT), (m2, b"")])[0] == 0
        assert w2.sync(group, gen2, m2)[0] == 0
    finally:
        w1.close()
        w2.close()
    assert describe(b.bootstrap, group)[0] == "Stable"
    b.stop()
    b.extra["group.max.size"] = "1"
    b.start()
    assert "group %s: not restoring 2 members (more members than group.max.size" % group in (
        b.log())
    state, _, members = describe(b.bootstrap, group)
    assert (state, members) == ("Empty", {}), (state, members)
    w = Wire(b.port)
    try:
        assert w.fetch_offsets(group, "grp-wire", [0]) == {0: (7, 0)}
        assert w.heartbeat(group, gen2, m1) == 25  # UNKNOWN_MEMBER_ID: it must rejoin
    finally:
        w.close()
