"""Transactional ids and ACLs (issue 16, SPEC 12): service users over mTLS, with the ACLs the
control plane writes.

  * an application's service user may use transactional ids prefixed with its own
    <namespace>.<application>: init / produce / commit over mTLS works, and a read_committed
    consumer (the same credentials) sees the committed records;
  * a transactional id of another team's prefix, or outside any prefix, is refused with
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED (Kafka's WRITE on the TransactionalId resource);
  * a Kafka Streams application (spec.kafka.streams) may use transactional ids prefixed with
    its application id (exactly_once_v2 derives them from it);
  * on the wire (a TLS broker, ACLs granted by hand): Produce with a transactional id needs
    WRITE on it, FindCoordinator(TRANSACTION) DESCRIBE.

Fails on the old code: InitProducerId with a transactional.id was refused (INVALID_REQUEST)
for everyone, and the control plane wrote no TransactionalId ACLs.
"""
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from test_apps import AdminClient, app_doc, create_topic, produce, topic_doc, up  # noqa: F401
from test_tls_acl import pki  # noqa: F401


def txn_try(conf, txn_id, topic, values):
    """Runs one committed transaction; None, or the error's name."""
    p = Producer(dict(conf, **{"transactional.id": txn_id}))
    try:
        p.init_transactions(15)
        p.begin_transaction()
        for v in values:
            p.produce(topic, v.encode())
        p.commit_transaction(15)
        return None
    except KafkaException as e:
        return e.args[0].name()


def read_committed(conf, topic, want, timeout=15):
    c = Consumer(dict(conf, **{"group.id": "unused", "isolation.level": "read_committed",
                               "enable.auto.commit": False}))
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.time() + timeout
    while time.time() < deadline and len(got) < len(want):
        m = c.poll(0.2)
        if m is not None and not m.error():
            got.append(m.value().decode())
    c.close()
    return got


def test_transactional_ids_by_prefix(up, tmp_path):
    up.apply(tmp_path, topic_doc("team-t", "ledger", [
        {"team": "team-t", "application": "payer", "access": "readwrite"},
        {"team": "team-u", "application": "thief", "access": "readwrite"}]))
    up.topic_ready("team-t", "ledger")
    up.apply(tmp_path, app_doc("team-t", "payer"), app_doc("team-u", "thief"))
    payer = up.creds(up.app_secret("team-t", "payer"))
    thief = up.creds(up.app_secret("team-u", "thief"))
    topic = "team-t.ledger"
    # its own prefix: works over mTLS
    assert txn_try(payer.conf(), "team-t.payer-tx-1", topic, ["p1", "p2"]) is None
    assert read_committed(payer.conf(), topic, ["p1", "p2"]) == ["p1", "p2"]
    # another team's prefix, though the thief may write the topic
    assert produce(thief.conf(), topic, ["plain"]) is None
    assert txn_try(thief.conf(), "team-t.payer-tx-1", topic, ["t1"]) == \
        "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"
    # outside any prefix
    assert txn_try(payer.conf(), "whatever", topic, ["x"]) == \
        "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"
    # its own team-u.thief prefix is fine
    assert txn_try(thief.conf(), "team-u.thief-1", topic, ["t2"]) is None


def test_streams_application_transactional_ids(up, tmp_path):
    ns, app = "team-ts", "counter"
    prefix = "%s.%s_stream_" % (ns, app)
    up.apply(tmp_path, app_doc(ns, app, streams=True))
    c = up.creds(up.app_secret(ns, app))

    def stream_ready():
        return create_topic(c.conf(), prefix + "out") is None
    up.wait("the stream's ACLs", stream_ready, timeout=15, interval=0.2)
    # exactly_once_v2: <application.id>-<process id>-<thread>
    assert txn_try(c.conf(), prefix + "-3f1c-1", prefix + "out", ["s1"]) is None
    assert txn_try(c.conf(), "team-t.payer-tx-9", prefix + "out", ["s2"]) == \
        "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"


# --------------------------------------------------------------------------- the broker alone

def txn_batch(values, pid=1000, epoch=0, seq=0):
    """A transactional record batch (attributes bit 4) for raw produce."""
    import kwire
    b = bytearray(kwire.record_batch(values, producer_id=pid, producer_epoch=epoch,
                                     base_sequence=seq))
    b[21:23] = (0x10).to_bytes(2, "big")
    b[17:21] = kwire.crc32c(bytes(b[21:])).to_bytes(4, "big")
    return bytes(b)


def produce_txn_raw(w, txn_id, topic, batch):
    """Produce v3 with a transactional id: the partition's error code."""
    import kwire
    body = (kwire.string(txn_id) + kwire.i16(-1) + kwire.i32(5000) +
            kwire.array([kwire.string(topic) + kwire.array([kwire.i32(0) +
                                                             kwire.bytes_(batch)])]))
    w.corr += 1
    w.s.sendall(kwire.request(0, 3, w.corr, body))
    corr, err, _ = kwire.parse_produce_response(kwire.recv_frame(w.s))
    assert corr == w.corr
    return err


def test_transactional_id_acls_on_the_wire(broker_factory, pki):
    """Kafka's TransactionalId checks, raw: Produce with a transactional id needs WRITE on it
    (TRANSACTIONAL_ID_AUTHORIZATION_FAILED before any topic check), FindCoordinator(key type
    1) needs DESCRIBE; with the ACLs granted both work."""
    from test_tls_acl import Wire, acl, create_topics, grant, kpy_admin, tls_broker
    b = tls_broker(broker_factory, pki)
    admin = kpy_admin(b, pki)
    create_topics(admin, "t")
    alice = pki["alice"].principal
    grant(admin, acl(alice, "TOPIC", "t", "WRITE"))
    w = Wire(b, pki, pki["alice"])
    assert produce_txn_raw(w, "alice-tx", "t", txn_batch([b"v"])) == 53
    assert find_coordinator_error(w, "alice-tx") == 53
    grant(admin, acl(alice, "TRANSACTIONAL_ID", "alice-", "WRITE", pattern="PREFIXED"),
          acl(alice, "TRANSACTIONAL_ID", "alice-", "DESCRIBE", pattern="PREFIXED"))
    assert find_coordinator_error(w, "alice-tx") == 0
    assert produce_txn_raw(w, "alice-tx", "t", txn_batch([b"v"])) == 0
    assert produce_txn_raw(w, "bob-tx", "t", txn_batch([b"v"], seq=1)) == 53
    # AddPartitionsToTxn v4 is broker to broker: without CLUSTER_ACTION, Kafka's top-level
    # CLUSTER_AUTHORIZATION_FAILED and no results, even with WRITE on the id
    assert add_partitions_v4_error(w, "alice-tx", "t") == (31, 0)
    w.close()
    admin.close()


def add_partitions_v4_error(w, txn_id, topic):
    """AddPartitionsToTxn v4 (flexible header, hand-encoded): (top error, results count)."""
    import kwire
    from test_txn_versions import Rd, TAGS, carray, cstr, topics_body
    w.corr += 1
    body = carray([txn_id], lambda t: cstr(t) + kwire.i64(1) + kwire.i16(0) + kwire.i8(0) +
                  topics_body([(topic, [0])]) + TAGS) + TAGS
    hdr = kwire.i16(24) + kwire.i16(4) + kwire.i32(w.corr) + kwire.string("acl") + TAGS
    w.s.sendall(kwire.frame(hdr + body))
    r = Rd(kwire.recv_frame(w.s, timeout=15))
    assert r.i32() == w.corr
    r.tags()
    r.i32()  # throttle
    out = (r.i16(), r.alen())
    r.end()
    return out


def kwire_find(key, key_type):
    import kwire
    return kwire.string(key.decode()) + kwire.i8(key_type)


def find_coordinator_error(w, txn_id):
    r = w.call(10, 1, kwire_find(txn_id.encode(), 1))
    r.i32()  # throttle
    return r.i16()
