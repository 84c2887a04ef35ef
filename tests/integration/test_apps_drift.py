"""Revocation and ACL propagation keep working when a Topic's own reconcile cannot finish.

  * partitions added directly in the pool: the Topic reports it (FailedPrepare: partitions
    cannot be removed), yet its configs and ACLs are still synchronized — a new app's entry
    grants access, and a deleted app's certificate is refused on it;
  * a Topic whose spec became invalid changes nothing in the pool, but revoking a service
    user still removes every ACL naming it, there too.

Uses the `kpool up` harness of test_apps.py (its own instance for this module).
"""
import time

from confluent_kafka.admin import AdminClient, NewPartitions

from test_apps import (AUTHZ, NONE, TOPIC_AUTHORIZATION_FAILED, TOPICS, AAPPS, app_doc,  # noqa: F401
                       produce, raw_metadata, topic_doc, up)


def topic_state(up, ns, name):
    t = up.get(TOPICS, ns, name) or {}
    st = t.get("status") or {}
    return st.get("synchronizationState"), st.get("message") or "", t


def test_partitions_added_in_the_pool_do_not_stop_acl_sync(up, tmp_path):
    ns = "team-p"
    fqn = ns + ".parts"
    entry = {"team": ns, "application": "reader", "access": "readwrite"}
    up.apply(tmp_path, topic_doc(ns, "parts", [entry]), app_doc(ns, "reader"))
    up.topic_ready(ns, "parts")
    reader = up.creds(up.app_secret(ns, "reader"))
    assert produce(reader.conf(), fqn, ["one"]) is None

    # someone grows the topic behind the control plane's back
    admin = AdminClient(up.admin_conf())
    fut = admin.create_partitions([NewPartitions(fqn, 3)])[fqn]
    fut.result(timeout=15)
    state = up.wait("drift reported", lambda: topic_state(up, ns, "parts")[0] == "FailedPrepare"
                    and topic_state(up, ns, "parts"), timeout=30)
    assert "cannot decrease from 3 to 1" in state[1], state
    assert "set it to 3 or more" in state[1], state

    # a new application added to the ACL gets access although the Topic cannot be "fixed"
    up.apply(tmp_path, topic_doc(ns, "parts", [entry, {"team": ns, "application": "late",
                                                       "access": "read"}]),
             app_doc(ns, "late"))
    late = up.creds(up.app_secret(ns, "late"))
    up.wait("late may describe the topic",
            lambda: raw_metadata(up.kafka, late.files(), [fqn])[fqn] == NONE, timeout=30)
    st, msg, _ = topic_state(up, ns, "parts")
    assert st == "FailedPrepare" and "partitions cannot be removed" in msg, (st, msg)
    assert "ACLs are synchronized" in msg

    # deleting reader revokes it on this topic too
    up.kpool("delete", "app", "reader", "-n", ns)
    up.wait("reader's certificate refused",
            lambda: raw_metadata(up.kafka, reader.files(), [fqn])[fqn] == TOPIC_AUTHORIZATION_FAILED,
            timeout=30)
    assert produce(reader.conf(), fqn, ["after"]) == AUTHZ


def test_revocation_reaches_a_topic_with_an_invalid_spec(up, tmp_path):
    ns = "team-v"
    fqn = ns + ".broken"
    acl = [{"team": ns, "application": "victim", "access": "readwrite"}]
    up.apply(tmp_path, topic_doc(ns, "broken", acl), app_doc(ns, "victim"))
    up.topic_ready(ns, "broken")
    victim = up.creds(up.app_secret(ns, "victim"))
    assert produce(victim.conf(), fqn, ["ok"]) is None

    bad = topic_doc(ns, "broken", acl)
    bad["spec"]["config"]["retentionHours"] = "forever"
    up.apply(tmp_path, bad)
    up.wait("invalid spec reported",
            lambda: topic_state(up, ns, "broken")[0] == "FailedPrepare", timeout=30)
    # an invalid spec changes nothing in the pool: the app still works
    assert produce(victim.conf(), fqn, ["still"]) is None

    up.kpool("delete", "app", "victim", "-n", ns)
    up.wait("AivenApplication removed", lambda: up.get(AAPPS, ns, "victim") is None, timeout=30)
    t0 = time.monotonic()
    up.wait("victim's certificate refused",
            lambda: raw_metadata(up.kafka, victim.files(), [fqn])[fqn] == TOPIC_AUTHORIZATION_FAILED,
            timeout=10)
    assert time.monotonic() - t0 < 5
    assert produce(victim.conf(), fqn, ["after"]) == AUTHZ
