"""Consumer groups (classic protocol) with real clients, plus raw-wire error paths.

Acceptance criteria covered here:
  * confluent-kafka (librdkafka): 3 members of one group split a 6-partition topic into
    disjoint assignments covering every partition; a member killed with SIGKILL (no
    LeaveGroup) hands its partitions over only once its session timeout expired; a clean
    close() (LeaveGroup) rebalances at once; cooperative-sticky rebalances incrementally;
    a static member (group.instance.id) that restarts within its session timeout rejoins
    without a rebalance (same generation, nobody else revoked).
  * committed offsets survive a broker restart exactly: a restarted group resumes at the
    committed offset of every partition, nothing lost, nothing repeated.
  * kafka-python: a group consumer commits; KafkaAdminClient lists, describes (members and
    decoded assignments), reads offsets of and deletes groups (NON_EMPTY_GROUP,
    GROUP_ID_NOT_FOUND); group metadata and offsets survive a restart, deletion too.
  * error codes on the wire: INVALID_SESSION_TIMEOUT, ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
    UNKNOWN_TOPIC_OR_PARTITION, MEMBER_ID_REQUIRED, INVALID_GROUP_ID,
    INCONSISTENT_GROUP_PROTOCOL, GROUP_SUBSCRIBED_TO_TOPIC, GROUP_ID_NOT_FOUND (OffsetDelete),
    FENCED_INSTANCE_ID; commits are accepted while PreparingRebalance (commit-on-revoke) and
    refused while CompletingRebalance, as in Kafka.
  * read_committed consumers read everything (last stable offset = high watermark).

Timing: HEARTBEAT_MS is short so rebalances are noticed quickly; session timeouts are chosen
per test (the broker's group.min.session.timeout.ms is lowered where needed).
"""
import json
import re
import struct
import subprocess
import threading
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

import kwire

PYTHON = "/usr/bin/python3"
HEARTBEAT_MS = 300


# --------------------------------------------------------------------------- helpers

def produce(bootstrap, topic, partitions, per_partition, start=0):
    """Produces values b"p<partition>-<seq>" (seq from `start`) to explicit partitions."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
    failed = []
    for part in partitions:
        for i in range(start, start + per_partition):
            p.produce(topic, value=b"p%d-%d" % (part, i), partition=part,
                      on_delivery=lambda err, msg: err and failed.append(err))
    assert p.flush(30) == 0 and not failed, failed


def stabilized(broker, group):
    """[(generation, members, protocol)] from the broker's 'stabilized group' log lines."""
    return [(int(m.group(1)), int(m.group(2)), m.group(3)) for m in re.finditer(
        r'stabilized group %s generation (\d+) \((\d+) members, protocol (\S+)\)'
        % re.escape(group), broker.log())]


def rebalances(broker, group):
    return broker.log().count("preparing to rebalance group %s " % group)


class Member:
    """A confluent-kafka group consumer that records its rebalance callbacks and messages."""

    def __init__(self, name, bootstrap, group, topics, commit_on_revoke=False, **conf):
        self.name = name
        self.commit_on_revoke = commit_on_revoke
        self.revoke_commits = []  # what commit() in on_revoke returned or raised
        self.events = []  # (kind, time, [partitions])
        self.msgs = []    # (partition, offset, value)
        self.eofs = []    # (partition, offset) of partition-EOF events
        cfg = {"bootstrap.servers": bootstrap, "group.id": group,
               "auto.offset.reset": "earliest", "enable.auto.commit": False,
               "session.timeout.ms": 6000, "heartbeat.interval.ms": HEARTBEAT_MS,
               "fetch.wait.max.ms": 100, "client.id": name}
        cfg.update(conf)
        self.c = Consumer(cfg)
        self.c.subscribe(topics, on_assign=self._cb("assign"), on_revoke=self._cb("revoke"),
                         on_lost=self._cb("lost"))
        self.closed = False

    def _cb(self, kind):
        def cb(consumer, parts):
            self.events.append((kind, time.time(), sorted(p.partition for p in parts)))
            if kind == "revoke" and self.commit_on_revoke and parts:
                try:
                    self.revoke_commits.append(sorted(
                        (tp.partition, tp.offset, tp.error) for tp in consumer.commit(
                            asynchronous=False)))
                except Exception as e:  # noqa: BLE001 - recorded for the assertion
                    self.revoke_commits.append(e)
        return cb

    def poll(self, timeout=0.05):
        m = self.c.poll(timeout)
        if m is None:
            return
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                self.eofs.append((m.partition(), m.offset()))
                return
            raise AssertionError("%s: consumer error %s" % (self.name, m.error()))
        self.msgs.append((m.partition(), m.offset(), m.value()))

    def assignment(self):
        return sorted(p.partition for p in self.c.assignment())

    def close(self):
        if not self.closed:
            self.closed = True
            self.c.close()


def poll_until(members, cond, timeout, what):
    """Polls every member round-robin until cond() holds; returns the time it did."""
    deadline = time.time() + timeout
    while True:
        for m in members:
            m.poll()
        if cond():
            return time.time()
        if time.time() > deadline:
            raise AssertionError("timed out after %ss waiting for %s; assignments %s" % (
                timeout, what, {m.name: m.assignment() for m in members}))


def poll_for(members, seconds):
    end = time.time() + seconds
    while time.time() < end:
        for m in members:
            m.poll()


def disjoint_cover(assignments, partitions):
    """True when every assignment is non-empty, they are pairwise disjoint and cover all."""
    flat = [p for a in assignments for p in a]
    return all(assignments) and len(flat) == len(set(flat)) and set(flat) == set(partitions)


@pytest.fixture
def members():
    made = []
    yield made
    for m in made:
        try:
            m.close()
        except Exception:
            pass


# A group member in its own process, so the test can SIGKILL it (no LeaveGroup). It prints
# its assignment as a JSON line after every rebalance callback.
CHILD_CONSUMER = r"""
import json, sys
from confluent_kafka import Consumer
bootstrap, group, topic, session_ms, hb_ms = sys.argv[1:6]
def report(kind):
    def cb(c, parts):
        print(json.dumps({"event": kind, "partitions": sorted(p.partition for p in parts)}),
              flush=True)
    return cb
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "client.id": "child",
              "session.timeout.ms": int(session_ms), "heartbeat.interval.ms": int(hb_ms),
              "auto.offset.reset": "earliest", "enable.auto.commit": False})
c.subscribe([topic], on_assign=report("assign"), on_revoke=report("revoke"))
print(json.dumps({"event": "started"}), flush=True)
while True:
    c.poll(0.1)
"""


class ChildMember:
    def __init__(self, bootstrap, group, topic, session_ms):
        self.proc = subprocess.Popen(
            [PYTHON, "-c", CHILD_CONSUMER, bootstrap, group, topic, str(session_ms),
             str(HEARTBEAT_MS)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.current = []
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev["event"] == "assign":  # eager: the callback gets the whole assignment
                self.current = ev["partitions"]
            elif ev["event"] == "revoke":
                self.current = []

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def output(self):
        return "\n".join(self.lines[-30:])


# --------------------------------------------------------------------------- librdkafka groups

def test_confluent_group_split_failover_and_leave(broker_factory, members):
    """3 members split 6 partitions; SIGKILL of one hands its partitions over after (and not
    before) its session timeout; a clean close rebalances at once."""
    b = broker_factory(group_initial_rebalance_delay_ms=1000, group_min_session_timeout_ms=1000)
    topic, group, parts = "grp-split", "g-split", list(range(6))
    kwire.create_topic(b.bootstrap, topic, 6)
    produce(b.bootstrap, topic, parts, 5)

    child_session_ms = 5000  # the member that is killed
    child = ChildMember(b.bootstrap, group, topic, child_session_ms)
    try:
        deadline = time.time() + 30
        while '{"event": "started"}' not in child.lines:
            assert time.time() < deadline and child.proc.poll() is None, child.output()
            time.sleep(0.05)
        a = Member("a", b.bootstrap, group, [topic], **{"session.timeout.ms": 20000})
        bb = Member("b", b.bootstrap, group, [topic], **{"session.timeout.ms": 20000})
        members += [a, bb]
        poll_until([a, bb], lambda: disjoint_cover([a.assignment(), bb.assignment(), child.current],
                                                   parts), 60, "3 disjoint covering assignments")
        gen, n, proto = stabilized(b, group)[-1]
        assert n == 3 and proto == "range", stabilized(b, group)
        # a and b read their partitions (5 messages each)
        mine = set(a.assignment() + bb.assignment())
        poll_until([a, bb], lambda: {(p, o) for x in (a, bb) for p, o, _ in x.msgs if p in mine}
                   == {(p, o) for p in mine for o in range(5)}, 60, "a and b to read theirs")
        before = {"a": a.assignment(), "b": bb.assignment(), "child": child.current}
        marks = {"a": len(a.events), "b": len(bb.events)}

        # SIGKILL: no LeaveGroup; the coordinator notices only when the session expires
        t_kill = time.time()
        child.kill()
        t_handover = poll_until([a, bb], lambda: disjoint_cover([a.assignment(), bb.assignment()],
                                                                parts),
                                child_session_ms / 1000 + 60, "the killed member's partitions")
        first_change = min(t for _, t, _ in a.events[marks["a"]:] + bb.events[marks["b"]:])
        # last heartbeat at most HEARTBEAT_MS before the kill, plus scheduling slack
        assert first_change - t_kill >= (child_session_ms - HEARTBEAT_MS) / 1000 - 1.0, (
            "rebalanced %.2fs after SIGKILL, before the %d ms session timeout" % (
                first_change - t_kill, child_session_ms))
        # well before the survivors' 20 s sessions (the slack is for a loaded machine)
        assert t_handover - t_kill < child_session_ms / 1000 + 12
        assert "has failed (session timeout %d ms)" % child_session_ms in b.log()
        assert set(a.assignment()) | set(bb.assignment()) == set(parts), before
        gen2, n2, _ = stabilized(b, group)[-1]
        assert gen2 > gen and n2 == 2
        # the dead member's partitions are read by the survivors (nothing was committed)
        poll_until([a, bb], lambda: {(p, o) for x in (a, bb) for p, o, _ in x.msgs} == {
            (p, o) for p in parts for o in range(5)}, 60, "the survivors to read everything")

        # clean close: LeaveGroup, the remaining member takes everything at once: well before
        # b's 20 s session would have expired (5 s left little room on a loaded machine; the
        # bound only has to tell LeaveGroup from a session timeout)
        t_close = time.time()
        bb.close()
        t_all = poll_until([a], lambda: a.assignment() == parts, 30, "a to own all partitions")
        assert t_all - t_close < 12.0, "LeaveGroup rebalance took %.2fs (session 20s)" % (
            t_all - t_close)
        assert stabilized(b, group)[-1][1] == 1
        assert re.search(r"member b-\S+ left group %s" % group, b.log()), b.log()[-3000:]
    except AssertionError as e:
        raise AssertionError("%s\nchild output:\n%s" % (e, child.output()))
    finally:
        child.kill()


def test_confluent_cooperative_sticky(broker_factory, members):
    """cooperative-sticky: members join one by one; partitions move incrementally (only the
    moved ones are revoked), assignments end disjoint and complete."""
    b = broker_factory(group_initial_rebalance_delay_ms=300)
    topic, group, parts = "grp-coop", "g-coop", list(range(6))
    kwire.create_topic(b.bootstrap, topic, 6)
    produce(b.bootstrap, topic, parts, 3)
    conf = {"partition.assignment.strategy": "cooperative-sticky"}
    ms = []
    for i in range(3):
        m = Member("coop%d" % i, b.bootstrap, group, [topic], **conf)
        members.append(m)
        ms.append(m)
        poll_until(ms, lambda: disjoint_cover([x.assignment() for x in ms], parts), 60,
                   "%d members to share the partitions" % len(ms))
    # the group reads every message (no commits: a moved partition is read again from 0)
    want = {(p, o) for p in parts for o in range(3)}
    poll_until(ms, lambda: {(p, o) for x in ms for p, o, _ in x.msgs} >= want, 30, "all messages")

    assert {s[2] for s in stabilized(b, group)} == {"cooperative-sticky"}, stabilized(b, group)
    first = ms[0]
    assert first.events[0] == ("assign", first.events[0][1], parts), first.events
    for m in ms:
        held = set()
        for kind, _, ps in m.events:  # librdkafka also reports empty increments
            assert kind in ("assign", "revoke"), (m.name, m.events)
            if kind == "assign":
                assert not held & set(ps), ("not incremental", m.name, m.events)
                held |= set(ps)
            else:
                assert set(ps) <= held, (m.name, m.events)
                held -= set(ps)
        assert sorted(held) == m.assignment(), (m.name, m.events)
    # the first member only gave up what moved: never all of its partitions at once
    revoked = [p for kind, _, ps in first.events if kind == "revoke" for p in ps]
    assert len(revoked) == len(parts) - len(first.assignment()), first.events
    assert len(set(revoked)) == len(revoked)


def test_confluent_static_member_restart_no_rebalance(broker_factory, members):
    """Static members (group.instance.id) restarting within the session timeout get their
    partitions back without a rebalance: same generation, no revocation on the others."""
    b = broker_factory(group_initial_rebalance_delay_ms=1000)
    topic, group, parts = "grp-static", "g-static", list(range(6))
    kwire.create_topic(b.bootstrap, topic, 6)

    def start(iid):
        m = Member(iid, b.bootstrap, group, [topic],
                   **{"group.instance.id": iid, "session.timeout.ms": 20000})
        members.append(m)
        return m

    ms = {iid: start(iid) for iid in ("s1", "s2", "s3")}
    poll_until(ms.values(), lambda: disjoint_cover([m.assignment() for m in ms.values()], parts),
               60, "3 static members to share the partitions")
    poll_for(ms.values(), 1.0)
    gens = stabilized(b, group)
    gen = gens[-1][0]
    nreb = rebalances(b, group)
    owned = {iid: m.assignment() for iid, m in ms.items()}
    # restart every member in turn (one of them is the group leader)
    for iid in ("s1", "s2", "s3"):
        others = [m for k, m in ms.items() if k != iid]
        marks = {m.name: len(m.events) for m in others}
        ms[iid].close()  # a static member does not send LeaveGroup on close
        ms[iid] = start(iid)
        poll_until(ms.values(), lambda: ms[iid].assignment() == owned[iid], 30,
                   "restarted %s to get %s back" % (iid, owned[iid]))
        poll_for(ms.values(), 1.5)  # several heartbeats: a rebalance would show now
        for m in others:
            assert m.events[marks[m.name]:] == [], (m.name, m.events)
            assert m.assignment() == owned[m.name]
        assert ms[iid].assignment() == owned[iid]
    assert stabilized(b, group) == gens and rebalances(b, group) == nreb, (
        "the group rebalanced:\n" + b.log()[-3000:])
    assert b.log().count("static member") >= 3
    assert gens[-1][0] == gen


def test_confluent_commit_on_revoke(broker_factory, members):
    """The usual at-least-once pattern: commit synchronously in the (eager) revoke callback.
    That commit arrives while the group is PreparingRebalance and must be accepted (as
    Kafka does), so the next owner continues where the previous one stopped."""
    b = broker_factory(group_initial_rebalance_delay_ms=300)
    topic, group, parts = "grp-revoke", "g-revoke", list(range(6))
    kwire.create_topic(b.bootstrap, topic, 6)
    produce(b.bootstrap, topic, parts, 5)
    a = Member("a", b.bootstrap, group, [topic], commit_on_revoke=True)
    members.append(a)
    poll_until([a], lambda: len(a.msgs) >= 30, 30, "a to read everything")
    bb = Member("b", b.bootstrap, group, [topic])
    members.append(bb)
    poll_until([a, bb], lambda: disjoint_cover([a.assignment(), bb.assignment()], parts), 30,
               "a and b to share the partitions")
    assert a.revoke_commits == [[(p, 5, None) for p in parts]], a.revoke_commits
    committed = bb.c.committed([TopicPartition(topic, p) for p in parts], timeout=10)
    assert {tp.partition: tp.offset for tp in committed} == {p: 5 for p in parts}
    poll_for([a, bb], 1.0)
    assert bb.msgs == [] and len(a.msgs) == 30, bb.msgs  # nothing read twice


def test_committed_offsets_survive_restart(broker_factory, members):
    """Manual commits of part of each partition, all consumers stopped, broker restarted: the
    group resumes exactly at the committed offsets (nothing lost, nothing repeated)."""
    # run 2 has two members: a long initial delay lets both join the first generation
    b = broker_factory(group_initial_rebalance_delay_ms=1500)
    topic, group, parts, n = "grp-resume", "g-resume", list(range(6)), 20
    kwire.create_topic(b.bootstrap, topic, 6)
    produce(b.bootstrap, topic, parts, n)
    commit_at = {p: 3 + 2 * p for p in parts}  # processed prefix of each partition

    m1 = Member("run1", b.bootstrap, group, [topic], **{"enable.auto.offset.store": False})
    members.append(m1)
    poll_until([m1], lambda: len(m1.msgs) >= len(parts) * n, 60, "run 1 to read everything")
    for p, o, _ in m1.msgs:
        if o < commit_at[p]:
            m1.c.store_offsets(offsets=[TopicPartition(topic, p, o + 1)])
    res = m1.c.commit(asynchronous=False)
    assert {(tp.partition, tp.offset) for tp in res if tp.offset >= 0} == set(commit_at.items())
    assert all(tp.error is None for tp in res), res
    m1.close()

    b.restart()

    # should they rebalance anyway, commit-on-revoke keeps "nothing repeated" exact
    m2 = Member("run2a", b.bootstrap, group, [topic], commit_on_revoke=True)
    m3 = Member("run2b", b.bootstrap, group, [topic], commit_on_revoke=True)
    members += [m2, m3]
    committed = m2.c.committed([TopicPartition(topic, p) for p in parts], timeout=20)
    assert {tp.partition: tp.offset for tp in committed} == commit_at
    expected = sum(n - commit_at[p] for p in parts)
    poll_until([m2, m3], lambda: len(m2.msgs) + len(m3.msgs) >= expected, 60,
               "run 2 to read the uncommitted rest")
    poll_for([m2, m3], 1.0)  # nothing more may arrive
    run2 = m2.msgs + m3.msgs
    assert len(run2) == expected, sorted(run2)
    for p in parts:
        offs = sorted(o for q, o, _ in run2 if q == p)
        assert offs == list(range(commit_at[p], n)), (p, offs)
    assert all(v == b"p%d-%d" % (p, o) for p, o, v in run2)
    # the union of what run 1 processed (committed) and run 2 read is everything, once
    union = [(p, o) for p in parts for o in range(commit_at[p])] + [(p, o) for p, o, _ in run2]
    assert sorted(union) == [(p, o) for p in parts for o in range(n)]


def test_read_committed_consumer_reads_everything(broker_factory, members):
    """isolation.level=read_committed: without transactions the last stable offset is the
    high watermark, so a read_committed group consumer sees every message, also new ones."""
    b = broker_factory(group_initial_rebalance_delay_ms=0)
    topic, parts = "grp-rc", list(range(6))
    kwire.create_topic(b.bootstrap, topic, 6)
    produce(b.bootstrap, topic, parts, 10)
    m = Member("rc", b.bootstrap, "g-rc", [topic],
               **{"isolation.level": "read_committed", "enable.partition.eof": True})
    members.append(m)
    # librdkafka reports EOF (read_committed) when its position reaches the last stable offset
    poll_until([m], lambda: len(m.msgs) >= 60 and {(p, 10) for p in parts} <= set(m.eofs), 30,
               "60 messages and EOF at offset 10 (the LSO) everywhere")
    produce(b.bootstrap, topic, parts, 2, start=10)  # wakes parked (long-poll) fetches
    poll_until([m], lambda: len(m.msgs) >= 72 and {(p, 12) for p in parts} <= set(m.eofs), 30,
               "72 messages and EOF at offset 12 (the LSO) everywhere")
    poll_for([m], 0.5)
    assert sorted((p, o) for p, o, _ in m.msgs) == [(p, o) for p in parts for o in range(12)]
    for p in parts:
        lo, hi = m.c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        assert (lo, hi) == (0, 12)
        assert m.c.position([TopicPartition(topic, p)])[0].offset == 12


# --------------------------------------------------------------------------- kafka-python

def test_kafka_python_group_and_admin(broker_factory):
    """kafka-python: a group consumer commits; the admin client lists, describes, reads the
    offsets of and deletes groups; group metadata, offsets and deletion survive restarts."""
    from kafka import KafkaAdminClient, KafkaConsumer
    from kafka import TopicPartition as KTP
    from kafka.errors import GroupIdNotFoundError, NoError, NonEmptyGroupError

    b = broker_factory(group_initial_rebalance_delay_ms=0)
    topic, group = "grp-kp", "g-kafka-python"
    kwire.create_topic(b.bootstrap, topic, 3)
    produce(b.bootstrap, topic, [0, 1, 2], 10)

    c = KafkaConsumer(bootstrap_servers=b.bootstrap, group_id=group, client_id="kp-client",
                      auto_offset_reset="earliest", enable_auto_commit=False,
                      heartbeat_interval_ms=500, session_timeout_ms=10000)
    admin = None
    try:
        c.subscribe([topic])
        got = []
        deadline = time.time() + 60
        while len(got) < 30 and time.time() < deadline:
            for recs in c.poll(timeout_ms=200).values():
                got += [(r.partition, r.offset, r.value) for r in recs]
        assert sorted(got) == [(p, o, b"p%d-%d" % (p, o)) for p in range(3) for o in range(10)]
        # commit 7 of partition 0, the rest fully
        commit = {0: 7, 1: 10, 2: 10}
        from kafka.structs import OffsetAndMetadata
        c.commit({KTP(topic, p): OffsetAndMetadata(o, "md-%d" % p) for p, o in commit.items()})
        assert {p: c.committed(KTP(topic, p)) for p in range(3)} == commit

        admin = KafkaAdminClient(bootstrap_servers=b.bootstrap, client_id="kp-admin")
        assert (group, "consumer") in admin.list_consumer_groups()
        [desc] = admin.describe_consumer_groups([group])
        assert (desc.error_code, desc.group, desc.state, desc.protocol_type, desc.protocol) == (
            0, group, "Stable", "consumer", "range"), desc
        [member] = desc.members
        assert member.client_id == "kp-client" and member.member_id.startswith("kp-client")
        assert member.member_metadata.subscription == [topic]
        assignment = {t: sorted(ps) for t, ps in member.member_assignment.assignment}
        assert assignment == {topic: [0, 1, 2]}, member.member_assignment

        def offsets():
            return {tp.partition: (om.offset, om.metadata)
                    for tp, om in admin.list_consumer_group_offsets(group).items()
                    if tp.topic == topic}
        assert offsets() == {p: (o, "md-%d" % p) for p, o in commit.items()}

        res = dict(admin.delete_consumer_groups([group, "no-such-group"]))
        assert res == {group: NonEmptyGroupError, "no-such-group": GroupIdNotFoundError}, res
        assert offsets() == {p: (o, "md-%d" % p) for p, o in commit.items()}

        c.close(autocommit=False)  # LeaveGroup
        c = None
        [desc] = admin.describe_consumer_groups([group])
        assert (desc.state, desc.protocol_type, desc.members) == ("Empty", "consumer", []), desc
        admin.close()
        admin = None

        b.restart()

        admin = KafkaAdminClient(bootstrap_servers=b.bootstrap, client_id="kp-admin")
        assert (group, "consumer") in admin.list_consumer_groups()
        assert offsets() == {p: (o, "md-%d" % p) for p, o in commit.items()}
        [desc] = admin.describe_consumer_groups([group])
        assert (desc.state, desc.protocol_type, desc.members) == ("Empty", "consumer", []), desc
        # a consumer of the restarted group resumes at the committed offsets
        c = KafkaConsumer(bootstrap_servers=b.bootstrap, group_id=group, client_id="kp-client",
                          auto_offset_reset="earliest", enable_auto_commit=False,
                          heartbeat_interval_ms=500, session_timeout_ms=10000)
        c.subscribe([topic])
        rest = []
        deadline = time.time() + 60
        while len(rest) < 3 and time.time() < deadline:
            for recs in c.poll(timeout_ms=200).values():
                rest += [(r.partition, r.offset) for r in recs]
        end = time.time() + 1
        while time.time() < end:
            for recs in c.poll(timeout_ms=200).values():
                rest += [(r.partition, r.offset) for r in recs]
        assert sorted(rest) == [(0, 7), (0, 8), (0, 9)]
        c.close(autocommit=False)
        c = None

        res = dict(admin.delete_consumer_groups([group]))
        assert res == {group: NoError}, res
        assert group not in [g for g, _ in admin.list_consumer_groups()]
        assert offsets() == {}
        res = dict(admin.delete_consumer_groups([group]))
        assert res == {group: GroupIdNotFoundError}, res
        admin.close()
        admin = None

        b.restart()  # the deletion is durable (tombstones in __consumer_offsets)

        admin = KafkaAdminClient(bootstrap_servers=b.bootstrap, client_id="kp-admin")
        assert group not in [g for g, _ in admin.list_consumer_groups()]
        assert offsets() == {}
    finally:
        if c is not None:
            c.close(autocommit=False)
        if admin is not None:
            admin.close()


# --------------------------------------------------------------------------- raw wire

API_OFFSET_COMMIT, API_OFFSET_FETCH, API_OFFSET_DELETE = 8, 9, 47
API_JOIN, API_HEARTBEAT, API_LEAVE, API_SYNC = 11, 12, 13, 14
CONSUMER_METADATA = kwire.i16(0) + kwire.array([kwire.string("grp-raw")]) + kwire.bytes_(b"")


class Rd:
    def __init__(self, data):
        self.d, self.pos = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.pos)
        self.pos += struct.calcsize(fmt)
        return v[0]

    def i16(self):
        return self.take(">h")

    def i32(self):
        return self.take(">i")

    def i64(self):
        return self.take(">q")

    def string(self):
        n = self.i16()
        if n < 0:
            return None
        s = self.d[self.pos:self.pos + n].decode()
        self.pos += n
        return s

    def bytes_(self):
        n = self.i32()
        if n < 0:
            return None
        s = self.d[self.pos:self.pos + n]
        self.pos += n
        return s


class Wire:
    def __init__(self, port):
        self.s = kwire.connect(port)
        self.corr = 0

    def call(self, key, version, body, timeout=30):
        self.corr += 1
        self.s.sendall(kwire.request(key, version, self.corr, body))
        r = Rd(kwire.recv_frame(self.s, timeout))
        assert r.i32() == self.corr
        return r

    def join(self, group, member="", session_ms=6000, version=1, instance=None,
             protocol_type="consumer", protocols=(("range", CONSUMER_METADATA),)):
        body = kwire.string(group) + kwire.i32(session_ms)
        if version >= 1:
            body += kwire.i32(10000)
        body += kwire.string(member)
        if version >= 5:
            body += kwire.string(instance)
        body += kwire.string(protocol_type)
        body += kwire.array([kwire.string(n) + kwire.bytes_(md) for n, md in protocols])
        r = self.call(API_JOIN, version, body)
        if version >= 2:
            r.i32()
        out = {"error": r.i16(), "generation": r.i32(), "protocol": r.string(),
               "leader": r.string(), "member": r.string(), "members": []}
        for _ in range(r.i32()):
            mid = r.string()
            if version >= 5:
                r.string()
            out["members"].append((mid, r.bytes_()))
        return out

    def sync(self, group, generation, member, assignments=()):
        body = (kwire.string(group) + kwire.i32(generation) + kwire.string(member) +
                kwire.array([kwire.string(m) + kwire.bytes_(a) for m, a in assignments]))
        r = self.call(API_SYNC, 1, body)
        r.i32()
        return r.i16(), r.bytes_()

    def heartbeat(self, group, generation, member, instance=None, version=1):
        body = kwire.string(group) + kwire.i32(generation) + kwire.string(member)
        if version >= 3:
            body += kwire.string(instance)
        r = self.call(API_HEARTBEAT, version, body)
        r.i32()
        return r.i16()

    def leave(self, group, member):
        r = self.call(API_LEAVE, 1, kwire.string(group) + kwire.string(member))
        r.i32()
        return r.i16()

    def commit(self, group, generation, member, offsets):
        """OffsetCommit v2; offsets = {(topic, partition): offset} -> {(topic, p): error}."""
        topics = {}
        for (t, p), o in offsets.items():
            topics.setdefault(t, []).append(kwire.i32(p) + kwire.i64(o) + kwire.string(""))
        body = (kwire.string(group) + kwire.i32(generation) + kwire.string(member) +
                kwire.i64(-1) +
                kwire.array([kwire.string(t) + kwire.array(ps) for t, ps in topics.items()]))
        r = self.call(API_OFFSET_COMMIT, 2, body)
        out = {}
        for _ in range(r.i32()):
            t = r.string()
            for _ in range(r.i32()):
                p = r.i32()
                out[(t, p)] = r.i16()
        return out

    def fetch_offsets(self, group, topic, partitions):
        """OffsetFetch v1 -> {partition: (offset, error)}."""
        body = kwire.string(group) + kwire.array(
            [kwire.string(topic) + kwire.array([kwire.i32(p) for p in partitions])])
        r = self.call(API_OFFSET_FETCH, 1, body)
        out = {}
        for _ in range(r.i32()):
            r.string()
            for _ in range(r.i32()):
                p, o = r.i32(), r.i64()
                r.string()
                out[p] = (o, r.i16())
        return out

    def delete_offsets(self, group, topic, partitions):
        """OffsetDelete v0 -> (group error, {partition: error})."""
        body = kwire.string(group) + kwire.array(
            [kwire.string(topic) + kwire.array([kwire.i32(p) for p in partitions])])
        r = self.call(API_OFFSET_DELETE, 0, body)
        err = r.i16()
        r.i32()
        out = {}
        for _ in range(r.i32()):
            r.string()
            for _ in range(r.i32()):
                p = r.i32()
                out[p] = r.i16()
        return err, out

    def close(self):
        self.s.close()


def test_wire_error_codes(broker_factory):
    b = broker_factory(group_initial_rebalance_delay_ms=0, group_max_session_timeout_ms=60000)
    kwire.create_topic(b.bootstrap, "grp-raw", 2)
    w = Wire(b.port)
    try:
        # JoinGroup validation: session timeout bounds, group id, protocol type
        for v in (0, 1, 5):
            assert w.join("g-raw", session_ms=5999, version=v)["error"] == 26
            assert w.join("g-raw", session_ms=60001, version=v)["error"] == 26
        assert w.join("", version=1)["error"] == 24  # INVALID_GROUP_ID

        # a member of generation 1 (leader, alone)
        j = w.join("g-raw", session_ms=6000, version=1)
        assert j["error"] == 0 and j["generation"] >= 1, j
        gen, me = j["generation"], j["member"]
        assert j["leader"] == me and [m for m, _ in j["members"]] == [me]
        assert j["protocol"] == "range"
        assignment = kwire.i16(0) + kwire.array([kwire.string("grp-raw") + kwire.array(
            [kwire.i32(0), kwire.i32(1)])]) + kwire.bytes_(b"")
        assert w.sync("g-raw", gen + 1, me, [(me, assignment)])[0] == 22  # ILLEGAL_GENERATION
        assert w.sync("g-raw", gen, "stranger", [])[0] == 25
        assert w.sync("g-raw", gen, me, [(me, assignment)]) == (0, assignment)
        # a member with another protocol type cannot join this consumer group
        assert w.join("g-raw", version=1, protocol_type="connect")["error"] == 23

        assert w.heartbeat("g-raw", gen, me) == 0
        assert w.heartbeat("g-raw", gen + 1, me) == 22   # ILLEGAL_GENERATION
        assert w.heartbeat("g-raw", gen - 1, me) == 22
        assert w.heartbeat("g-raw", gen, "not-a-member") == 25  # UNKNOWN_MEMBER_ID
        assert w.heartbeat("g-raw-unknown", 1, me) == 25

        # OffsetCommit: unknown topic / partition, fencing, then a good commit
        res = w.commit("g-raw", gen, me, {("no-such-topic", 0): 5, ("grp-raw", 7): 5,
                                          ("grp-raw", 0): 5})
        assert res == {("no-such-topic", 0): 3, ("grp-raw", 7): 3, ("grp-raw", 0): 0}, res
        assert w.commit("g-raw", gen + 1, me, {("grp-raw", 1): 9}) == {("grp-raw", 1): 22}
        # without member id and generation only an empty group takes commits
        assert w.commit("g-raw", -1, "", {("grp-raw", 1): 9}) in (
            {("grp-raw", 1): 22}, {("grp-raw", 1): 25})  # Kafka < 4.0: 22, 4.0: 25
        assert w.commit("g-raw", gen, "not-a-member", {("grp-raw", 1): 9}) == {("grp-raw", 1): 25}
        assert w.commit("g-raw", gen, me, {("grp-raw", 1): 9}) == {("grp-raw", 1): 0}
        assert w.fetch_offsets("g-raw", "grp-raw", [0, 1]) == {0: (5, 0), 1: (9, 0)}
        # simple (generation -1) commits outside group management
        assert w.commit("g-simple", -1, "", {("no-such-topic", 0): 1}) == {("no-such-topic", 0): 3}
        assert w.commit("g-simple", -1, "", {("grp-raw", 1): 4}) == {("grp-raw", 1): 0}
        assert w.fetch_offsets("g-simple", "grp-raw", [0, 1]) == {0: (-1, 0), 1: (4, 0)}

        # OffsetDelete: refused per partition while a member subscribes to the topic
        # GROUP_SUBSCRIBED_TO_TOPIC
        assert w.delete_offsets("g-raw", "grp-raw", [0]) == (0, {0: 86})
        assert w.delete_offsets("g-nope", "grp-raw", [0]) == (69, {})  # GROUP_ID_NOT_FOUND

        # LeaveGroup: unknown member, then the member itself; afterwards it is unknown
        assert w.leave("g-raw", "not-a-member") == 25
        assert w.leave("g-raw", me) == 0
        assert w.heartbeat("g-raw", gen, me) == 25
        assert w.fetch_offsets("g-raw", "grp-raw", [0, 1]) == {0: (5, 0), 1: (9, 0)}
        # the group is empty now: its offsets can be deleted
        assert w.delete_offsets("g-raw", "grp-raw", [0]) == (0, {0: 0})
        assert w.fetch_offsets("g-raw", "grp-raw", [0, 1]) == {0: (-1, 0), 1: (9, 0)}

        # KIP-394: v4+ joins without a member id get MEMBER_ID_REQUIRED and an id to rejoin with
        j = w.join("g-raw4", version=4)
        assert j["error"] == 79 and j["member"], j
        j2 = w.join("g-raw4", member=j["member"], version=4)
        assert j2["error"] == 0 and j2["member"] == j["member"] == j2["leader"], j2
        assert w.join("g-raw4", member="made-up", version=4)["error"] == 25
    finally:
        w.close()


def test_wire_static_member_rejoin(broker_factory):
    """A static member (JoinGroup v5, group.instance.id) rejoining a Stable group with unknown
    member id and unchanged protocols: no rebalance, same generation, a new member id, the old
    id fenced; as Kafka (JoinGroup < v9), the response names the leader from before the rejoin
    and carries no member list, so a rejoining leader does not run a discarded assignment."""
    b = broker_factory(group_initial_rebalance_delay_ms=0)
    kwire.create_topic(b.bootstrap, "grp-raw", 2)
    w = Wire(b.port)
    try:
        j = w.join("g-static-raw", version=5, instance="inst-1")
        assert j["error"] == 0, j
        gen, old = j["generation"], j["member"]
        assert old.startswith("inst-1-") and j["leader"] == old and len(j["members"]) == 1, j
        assignment = kwire.i16(0) + kwire.array([kwire.string("grp-raw") + kwire.array(
            [kwire.i32(0), kwire.i32(1)])]) + kwire.bytes_(b"")
        assert w.sync("g-static-raw", gen, old, [(old, assignment)]) == (0, assignment)

        r = w.join("g-static-raw", version=5, instance="inst-1")  # the member restarted
        new = r["member"]
        assert r["error"] == 0 and r["generation"] == gen and new not in ("", old), r
        assert r["leader"] == old and r["members"] == [], r
        assert w.sync("g-static-raw", gen, new) == (0, assignment)
        assert w.heartbeat("g-static-raw", gen, new, "inst-1", version=3) == 0
        # the replaced member id is fenced (FENCED_INSTANCE_ID), or unknown without instance id
        assert w.heartbeat("g-static-raw", gen, old, "inst-1", version=3) == 82
        assert w.heartbeat("g-static-raw", gen, old) == 25
        # no rebalance happened
        assert "preparing to rebalance group g-static-raw in state Stable" not in b.log()
        assert stabilized(b, "g-static-raw") == [(gen, 1, "range")]
    finally:
        w.close()


def test_wire_commit_during_rebalance(broker_factory):
    """OffsetCommit of the current generation is accepted while the group is
    PreparingRebalance (members commit before rejoining) and refused with
    REBALANCE_IN_PROGRESS while CompletingRebalance, as in Kafka."""
    b = broker_factory(group_initial_rebalance_delay_ms=0)
    kwire.create_topic(b.bootstrap, "grp-raw", 2)
    w1, w2 = Wire(b.port), Wire(b.port)
    try:
        j = w1.join("g-reb", version=1)
        gen, m1 = j["generation"], j["member"]
        assert j["error"] == 0 and w1.sync("g-reb", gen, m1, [(m1, b"")])[0] == 0
        # a second member joins: the group prepares a rebalance and waits for m1 to rejoin
        second = {}
        t = threading.Thread(target=lambda: second.update(w2.join("g-reb", version=1)))
        t.start()
        deadline = time.time() + 30
        while "preparing to rebalance group g-reb in state Stable" not in b.log():
            assert time.time() < deadline, b.log()[-2000:]
            time.sleep(0.05)
        assert w1.heartbeat("g-reb", gen, m1) == 27  # REBALANCE_IN_PROGRESS
        assert w1.commit("g-reb", gen, m1, {("grp-raw", 0): 11}) == {("grp-raw", 0): 0}
        assert w1.commit("g-reb", gen + 1, m1, {("grp-raw", 0): 12}) == {("grp-raw", 0): 22}
        j = w1.join("g-reb", member=m1, version=1)  # m1 rejoins: the join phase completes
        t.join(60)
        assert j["error"] == 0 and second.get("error") == 0, (j, second)
        assert j["generation"] == second["generation"] == gen + 1
        # CompletingRebalance: the new generation is known but not yet synced
        assert w1.commit("g-reb", gen + 1, m1, {("grp-raw", 0): 13}) == {("grp-raw", 0): 27}
        assert w1.fetch_offsets("g-reb", "grp-raw", [0]) == {0: (11, 0)}
    finally:
        w1.close()
        w2.close()
