"""Consumer groups belong to the first team that uses them (issue 12, item 6).

Two teams' service users (certificates named as kpool names them, CN=<team>_<app>_<crc>_<gen>)
on a TLS broker with the authorizer and the control plane's default group ACL (READ on every
group id, "*"):
  * the first team to join a group owns it; another app of the same team (another generation,
    another incarnation) uses it too; the other team is refused with
    GROUP_AUTHORIZATION_FAILED when it joins (librdkafka), commits or fetches offsets, describes
    or deletes the group (kafka-python), and ListGroups does not show it the group; a group of
    its own still works, under any name;
  * the owner is durable: after a restart (and a torn journal tail, cut off) the other team
    is still refused;
  * the admin releases a group with DeleteGroups (kafka-python, as the super user); the next
    team to use it owns it;
  * a member id and generation learned by another team do not let it heartbeat, sync, leave
    or commit in the group (raw wire over TLS): GROUP_AUTHORIZATION_FAILED, the owner's
    member unaffected;
  * group.ownership=shared keeps the previous behaviour (any team may use any group its ACLs
    allow), and a bad value (or bad team rules) stops the broker with a message;
  * the owner journal is rewritten when mostly releases (600 claims, 600 releases): small
    again, and what it says survives a restart;
  * group.ownership.team.rules maps principals to teams (here: the OU of the subject).
Every assertion about the other team's refusal fails on the code before ownership existed.
"""
import os
import socket

import pytest
from confluent_kafka import Producer

import test_groups
from test_tls_acl import (GROUP_AUTHZ, Ident, acl, consume_group, create_topics, grant,  # noqa
                          kpy, kpy_admin, pki, rdk, tls_broker, tls_context)

pytestmark = pytest.mark.filterwarnings("ignore:ssl.PROTOCOL_TLS is deprecated")

SERVICE_USERS = {
    "a1": "teama_shop_1a2b3c4d_1",
    "a2": "teama_billing_0badc0de_3-2",
    "b1": "teamb_shop_deadbeef_1",
}


@pytest.fixture(scope="module")
def users(pki):
    out = {}
    for name, cn in SERVICE_USERS.items():
        cert, key = pki._leaf("su-" + name, "/CN=" + cn, "client")
        out[name] = Ident(name, cert, key, "User:CN=" + cn)
    return out


def prepare(b, pki, users, topic="orders", n=3):
    admin = kpy_admin(b, pki)
    create_topics(admin, topic)
    p = Producer(rdk(b, pki, pki["admin"]))
    for i in range(n):
        p.produce(topic, b"r%d" % i)
    assert p.flush(20) == 0
    for u in users.values():
        # what the control plane grants a reader: READ on the topic and on every group id
        grant(admin, acl(u.principal, "TOPIC", topic, "READ"),
              acl(u.principal, "GROUP", "*", "READ"), acl(u.principal, "GROUP", "*", "DELETE"))
    return admin


def kpy_commit(b, pki, ident, group, topic="orders", offset=1):
    """Commits offset for partition 0 with kafka-python; the exception's name or None."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata
    c = KafkaConsumer(**kpy(b, pki, ident, group_id=group, enable_auto_commit=False,
                            request_timeout_ms=15000))
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.commit({tp: OffsetAndMetadata(offset, "")})
        return None
    except Exception as e:
        return type(e).__name__
    finally:
        c.close()


def kpy_admin_call(b, pki, ident, fn):
    a = kpy_admin(b, pki, ident)
    try:
        return fn(a)
    except Exception as e:
        return type(e).__name__
    finally:
        a.close()


def listed(b, pki, ident):
    return sorted(g for g, _ in kpy_admin_call(b, pki, ident, lambda a: a.list_consumer_groups()))


def test_first_team_owns_the_group(broker_factory, pki, users):
    b = tls_broker(broker_factory, pki, group_initial_rebalance_delay_ms=0)
    prepare(b, pki, users)
    a1, a2, b1 = users["a1"], users["a2"], users["b1"]
    assert consume_group(rdk(b, pki, a1), "orders", "shop", 3) == [b"r0", b"r1", b"r2"]

    # the same team, another application: the group is its team's
    assert kpy_commit(b, pki, a2, "shop", offset=1) is None
    assert consume_group(rdk(b, pki, a2), "orders", "shop", 2) == [b"r1", b"r2"]

    # the other team: joining, committing, fetching, describing, deleting, listing
    assert consume_group(rdk(b, pki, b1), "orders", "shop", 1) == GROUP_AUTHZ
    assert kpy_commit(b, pki, b1, "shop") == "GroupAuthorizationFailedError"
    assert kpy_admin_call(b, pki, b1, lambda a: a.list_consumer_group_offsets("shop")) == \
        "GroupAuthorizationFailedError"
    assert kpy_admin_call(b, pki, b1, lambda a: a.describe_consumer_groups(["shop"])) == \
        "GroupAuthorizationFailedError"
    deleted = kpy_admin_call(b, pki, b1, lambda a: a.delete_consumer_groups(["shop"]))
    assert [(g, e.__name__) for g, e in deleted] == [("shop", "GroupAuthorizationFailedError")]
    assert "shop" not in listed(b, pki, b1)
    assert "shop" in listed(b, pki, a1) and "shop" in listed(b, pki, pki["admin"])

    # any other name is free: teamb's own group works
    assert consume_group(rdk(b, pki, b1), "orders", "shop-b", 3) == [b"r0", b"r1", b"r2"]
    assert consume_group(rdk(b, pki, a1), "orders", "shop-b", 1) == GROUP_AUTHZ
    assert listed(b, pki, b1) == ["shop-b"]
    assert "group shop is now owned by team teama" in b.log()
    assert "group shop-b is now owned by team teamb" in b.log()


class TlsWire(test_groups.Wire):
    """test_groups.Wire (raw group requests) over TLS as ident."""

    def __init__(self, b, pki, ident):
        s = socket.create_connection(("127.0.0.1", b.port), timeout=15)
        self.s = tls_context(pki, ident, None).wrap_socket(s, server_hostname="127.0.0.1")
        self.corr = 0


def test_other_team_cannot_use_a_member_it_learned(broker_factory, pki, users):
    b = tls_broker(broker_factory, pki, group_initial_rebalance_delay_ms=0)
    prepare(b, pki, users)
    owner, other = TlsWire(b, pki, users["a1"]), TlsWire(b, pki, users["b1"])
    try:
        j = owner.join("raw")
        assert j["error"] == 0, j
        gen, me = j["generation"], j["member"]
        assert owner.sync("raw", gen, me, [(me, b"")])[0] == 0
        assert other.heartbeat("raw", gen, me) == GROUP_AUTHZ
        assert other.sync("raw", gen, me, [(me, b"")])[0] == GROUP_AUTHZ
        assert other.commit("raw", gen, me, {("orders", 0): 1}) == {("orders", 0): GROUP_AUTHZ}
        assert other.fetch_offsets("raw", "orders", [0]) == {0: (-1, GROUP_AUTHZ)}
        assert other.leave("raw", me) == GROUP_AUTHZ
        assert other.join("raw", member=me)["error"] == GROUP_AUTHZ
        assert owner.heartbeat("raw", gen, me) == 0  # still a member, nothing happened
        assert owner.commit("raw", gen, me, {("orders", 0): 2}) == {("orders", 0): 0}
        assert owner.leave("raw", me) == 0
    finally:
        owner.close()
        other.close()


def test_owner_survives_restart_and_admin_releases(broker_factory, pki, users):
    b = tls_broker(broker_factory, pki, group_initial_rebalance_delay_ms=0)
    prepare(b, pki, users)
    a1, b1 = users["a1"], users["b1"]
    assert kpy_commit(b, pki, a1, "g", offset=1) is None
    # a torn record at the journal's end (a crash mid-write) is cut off on start
    b.stop()
    with open(os.path.join(b.data_dir, "meta", "group_owners.journal"), "ab") as f:
        f.write(b"\x00\x00\x00\x20\x12\x34")
    b.start()
    assert "group_owners.journal: cut 6 bytes of a torn or corrupt tail" in b.log()
    assert kpy_commit(b, pki, b1, "g") == "GroupAuthorizationFailedError"
    assert consume_group(rdk(b, pki, b1), "orders", "g", 1) == GROUP_AUTHZ
    assert consume_group(rdk(b, pki, a1), "orders", "g", 2) == [b"r1", b"r2"]

    # the admin (a super user) deletes the group: released, the next team to use it owns it
    deleted = kpy_admin_call(b, pki, pki["admin"], lambda a: a.delete_consumer_groups(["g"]))
    assert [(g, e.__name__) for g, e in deleted] == [("g", "NoError")]
    assert "group g released" in b.log()
    assert consume_group(rdk(b, pki, b1), "orders", "g", 3) == [b"r0", b"r1", b"r2"]
    b.restart()
    assert consume_group(rdk(b, pki, a1), "orders", "g", 1) == GROUP_AUTHZ
    assert kpy_commit(b, pki, b1, "g", offset=0) is None


def test_owner_journal_compaction(broker_factory, pki, users):
    import kwire
    b = tls_broker(broker_factory, pki, group_initial_rebalance_delay_ms=0)
    prepare(b, pki, users)
    a1, admin = TlsWire(b, pki, users["a1"]), TlsWire(b, pki, pki["admin"])
    journal = os.path.join(b.data_dir, "meta", "group_owners.journal")
    try:
        groups = ["churn-%d" % i for i in range(600)]
        for g in groups + ["kept"]:
            assert a1.commit(g, -1, "", {("orders", 0): 1}) == {("orders", 0): 0}
        grown = os.path.getsize(journal)
        # DeleteGroups v0 of every churn group at once, as the admin: 600 releases
        r = admin.call(42, 0, kwire.array([kwire.string(g) for g in groups]))
        r.i32()
        results = [(r.string(), r.i16()) for _ in range(r.i32())]
        assert results == [(g, 0) for g in groups]
    finally:
        a1.close()
        admin.close()
    # without the rewrite it would have grown by 600 release records
    assert os.path.getsize(journal) < grown // 4, (grown, os.path.getsize(journal))
    b.restart()
    assert kpy_commit(b, pki, users["b1"], "kept") == "GroupAuthorizationFailedError"
    assert kpy_commit(b, pki, users["b1"], "churn-7") is None  # released: teamb's now


def test_shared_keeps_the_old_behaviour(broker_factory, pki, users):
    b = tls_broker(broker_factory, pki, group_initial_rebalance_delay_ms=0,
                   **{"group.ownership": "shared"})
    prepare(b, pki, users)
    a1, b1 = users["a1"], users["b1"]
    assert consume_group(rdk(b, pki, a1), "orders", "shop", 3) == [b"r0", b"r1", b"r2"]
    assert kpy_commit(b, pki, b1, "shop", offset=1) is None
    assert consume_group(rdk(b, pki, b1), "orders", "shop", 2) == [b"r1", b"r2"]
    assert "shop" in listed(b, pki, b1)

    bad = tls_broker(broker_factory, pki, start=False, **{"group.ownership": "mine"})
    with pytest.raises(RuntimeError):
        bad.start(timeout=60)
    bad.killed = True  # it exited on purpose: teardown must not count it as a crash
    assert "group.ownership must be team or shared" in bad.log()
    bad = tls_broker(broker_factory, pki, start=False,
                     **{"group.ownership.team.rules": "RULE:^(x/y/"})
    with pytest.raises(RuntimeError):
        bad.start(timeout=60)
    bad.killed = True
    assert "group.ownership.team.rules: pattern '^(x': missing closing parenthesis" in bad.log()


def test_team_rules(broker_factory, pki):
    # the team is the OU of the subject: alice and bob (OU=team) share, svc does not
    b = tls_broker(broker_factory, pki, group_initial_rebalance_delay_ms=0, **{
        "group.ownership.team.rules": "RULE:^CN=[^,]+,OU=([^,]+),O=kpool$/$1/L"})
    idents = {n: pki[n] for n in ("alice", "bob", "svc")}
    prepare(b, pki, idents)
    assert kpy_commit(b, pki, pki["alice"], "g-team", offset=1) is None
    assert consume_group(rdk(b, pki, pki["svc"]), "orders", "g-team", 1) == GROUP_AUTHZ
    assert consume_group(rdk(b, pki, pki["bob"]), "orders", "g-team", 2) == [b"r1", b"r2"]
    assert "group g-team is now owned by team team " in b.log()


def test_transactional_offsets_respect_the_owner(broker_factory, pki, users):
    """TxnOffsetCommit (send_offsets_to_transaction) is a commit like any other: another team's
    transactional producer cannot move the offsets of a group the first team owns."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition
    b = tls_broker(broker_factory, pki, group_initial_rebalance_delay_ms=0)
    admin = prepare(b, pki, users)
    a1, b1 = users["a1"], users["b1"]
    for u in (a1, b1):
        grant(admin, acl(u.principal, "TRANSACTIONAL_ID", u.name + "-", "WRITE", pattern="PREFIXED"),
              acl(u.principal, "TRANSACTIONAL_ID", u.name + "-", "DESCRIBE", pattern="PREFIXED"),
              acl(u.principal, "TOPIC", "orders", "WRITE"))
    assert consume_group(rdk(b, pki, a1), "orders", "shop", 3) == [b"r0", b"r1", b"r2"]

    def send_offsets(ident, group):
        p = Producer(rdk(b, pki, ident, **{"transactional.id": ident.name + "-t"}))
        p.init_transactions(20)
        p.begin_transaction()
        c = Consumer(rdk(b, pki, ident, **{"group.id": group}))
        try:
            p.send_offsets_to_transaction([TopicPartition("orders", 0, 1)],
                                          c.consumer_group_metadata(), 20)
            p.commit_transaction(20)
            return None
        except KafkaException as e:
            return e.args[0].name()
        finally:
            c.close()

    assert send_offsets(b1, "shop") == "GROUP_AUTHORIZATION_FAILED"
    assert send_offsets(a1, "shop") is None  # the owner's own transactional commit works
