"""Every advertised version of every API is served (issue 20 item 2, acceptance).

The broker's own ApiVersions table is walked: each (ApiKey, version) it advertises is sent,
encoded from kpool's message definitions (kdefs.py), on one connection, and must come back
as a well-formed response of that version (every byte parsed, the right correlation id)
with no UNSUPPORTED_VERSION (35) anywhere in it, and never a closed connection. Produce,
Fetch and ListOffsets carry a real partition, so their per-partition answers are checked
too: Produce v0-2 with a message set of magic 0/1, Fetch v0-3 returning message format v0
(v0-1) or v1 (v2-3), v4+ record batches v2. One version past the advertised maximum is
refused (connection closed), so the table says exactly what is served.

Fails on the old code: Produce v0-2 answered UNSUPPORTED_VERSION per partition.
"""
import struct

import kdefs
import kwire

TOPIC = "walk"
VALUES = [b"alpha", b"", b"gamma" * 50]


def produce_values(v):
    records = kwire.message_set(VALUES, magic=0 if v < 2 else 1) if v < 3 \
        else kwire.record_batch(VALUES)
    return {"Acks": -1, "TimeoutMs": 5000, "TransactionalId": None,
            "TopicData": [{"Name": TOPIC, "PartitionData": [{"Index": 0, "Records": records}]}]}


FETCH = {"ReplicaId": -1, "MaxWaitMs": 0, "MinBytes": 1, "MaxBytes": 1 << 20,
         "Topics": [{"Topic": TOPIC, "Partitions": [
             {"Partition": 0, "FetchOffset": 0, "PartitionMaxBytes": 1 << 20,
              "CurrentLeaderEpoch": -1, "LogStartOffset": -1}]}]}

LIST_OFFSETS = {"ReplicaId": -1, "Topics": [{"Name": TOPIC, "Partitions": [
    {"PartitionIndex": 0, "Timestamp": -1, "MaxNumOffsets": 1, "CurrentLeaderEpoch": -1}]}]}


def request_values(key, v):
    if key == 0:
        return produce_values(v)
    if key == 1:
        return FETCH
    if key == 2:
        return LIST_OFFSETS
    if key == 3:
        return {"Topics": [{"Name": TOPIC}]}
    return None


def partition(body, outer, inner):
    (t,) = body[outer]
    (p,) = t[inner]
    return p


def check_answer(key, v, body, produced):
    """Per-API checks beyond well-formedness. Returns records produced."""
    if key == 0:
        p = partition(body, "Responses", "PartitionResponses")
        assert p["ErrorCode"] == 0 and p["BaseOffset"] == produced, (v, p)
        return len(VALUES)
    if key == 1:
        p = partition(body, "Responses", "Partitions")
        assert p["ErrorCode"] == 0 and p["HighWatermark"] == produced, (v, p)
        recs = p["Records"]
        if v < 4:
            msgs = kwire.parse_message_set(recs)
            assert {m[1] for m in msgs} == {0 if v < 2 else 1}, (v, msgs[:2])
            assert [m[0] for m in msgs] == list(range(produced)), (v, [m[0] for m in msgs])
            assert [m[5] for m in msgs] == VALUES * (produced // len(VALUES)), v
        else:
            assert recs[16] == 2 and kwire.parse_batches(recs)[0][2] == 0, v
    if key == 2:
        p = partition(body, "Topics", "Partitions")
        assert p["ErrorCode"] == 0, (v, p)
        got = p["OldStyleOffsets"][0] if v == 0 else p["Offset"]
        assert got == produced, (v, p)
    if key == 3:
        (t,) = body["Topics"]
        assert t["ErrorCode"] == 0 and t["Name"] == TOPIC.encode(), (v, t)
    return 0


def test_every_advertised_version_is_answered(broker):
    kwire.create_topic(broker.bootstrap, TOPIC, 1)
    corr, err, advertised, _ = kwire.api_versions(broker.port, 3)
    assert err == 0
    assert kwire.api_versions(broker.port, 0)[2] == advertised
    assert set(advertised) <= set(kdefs.MSGS), "advertised but not defined: %s" % (
        set(advertised) - set(kdefs.MSGS))
    s = kwire.connect(broker.port)
    produced, walked = 0, 0
    with kwire.broker_log_on_failure(broker):
        for key, (lo, hi) in sorted(advertised.items()):
            for v in range(lo, hi + 1):
                corr += 1
                s.sendall(kdefs.encode_request(key, v, corr, request_values(key, v)))
                try:
                    payload = kwire.recv_frame(s)
                except ConnectionError as e:
                    raise AssertionError("%s v%d (advertised %d-%d): %s" % (
                        kdefs.MSGS[key][0].name, v, lo, hi, e))
                got_corr, body = kdefs.decode_response(key, v, payload)
                assert got_corr == corr
                codes = kdefs.error_codes(body)
                assert 35 not in codes, "%s v%d answered UNSUPPORTED_VERSION: %s" % (
                    kdefs.MSGS[key][0].name, v, body)
                produced += check_answer(key, v, body, produced)
                walked += 1
    s.close()
    assert walked == sum(hi - lo + 1 for lo, hi in advertised.values())
    print("walked %d versions of %d APIs, produced %d records" % (walked, len(advertised), produced))


def test_one_past_the_advertised_maximum_is_refused(broker):
    """No more than advertised: the next version of every API (but ApiVersions, which answers
    35 with its v0 table) closes the connection, as for any unsupported request."""
    _, _, advertised, _ = kwire.api_versions(broker.port, 0)
    for key, (lo, hi) in sorted(advertised.items()):
        if key == 18:
            continue
        s = kwire.connect(broker.port)
        s.sendall(kwire.request(key, hi + 1, 1, b""))
        closed, got = kwire.wait_closed(s, timeout=5)
        s.close()
        assert closed and got == b"", "ApiKey %d v%d (advertised %d-%d) was not refused" % (
            key, hi + 1, lo, hi)
