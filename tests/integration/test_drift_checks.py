"""Drift checks of unchanged Topics read nothing, and drift is still found (issue 12, item 12).

A drift check (control.resync.interval.ms) used to read, parse and reconcile every Topic:
~0.9 s of CPU per check at 10,000 Topics. A Topic found in sync now leaves a memo (its
resourceVersion, its pool's, the service users, a fingerprint of what the pool holds for
it), and the next check reconciles it in full only when one of those moved. /metrics counts
both outcomes: kpool_control_topic_checks_total{result="unchanged"|"full"}.

  * an idle Topic: resync after resync is "unchanged", none is "full";
  * a config altered directly in the pool, a stray ACL added there, the topic deleted there:
    each still repaired by the next check and recorded in status.message;
  * a service user that appears later (an Application matching the Topic's ACL) gets its
    ACLs on the otherwise unchanged Topic.

Uses the `kpool up` harness of test_apps.py (resync every 500 ms; its own instance here).
"""
import re
import time
import urllib.request

import pytest
from confluent_kafka.admin import ConfigResource
from kafka.admin import (ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                         ResourcePattern, ResourceType)

from test_apps import NONE, TOPICS, app_doc, raw_metadata, topic_doc, up  # noqa: F401

# kafka-python 2.0.2 builds its SSL context with the deprecated ssl.PROTOCOL_TLS
pytestmark = pytest.mark.filterwarnings("ignore:ssl.PROTOCOL_TLS is deprecated")


def checks(up):
    """(unchanged, full) drift checks of Topics so far, from /metrics."""
    with urllib.request.urlopen("http://%s/metrics" % up.metrics, timeout=10) as r:
        text = r.read().decode()
    got = dict(re.findall(r'^kpool_control_topic_checks_total\{result="(\w+)"\} (\d+)$', text,
                          re.M))
    assert set(got) == {"unchanged", "full"}, text[-2000:]
    return int(got["unchanged"]), int(got["full"])


def status_message(up, ns, name):
    st = (up.get(TOPICS, ns, name) or {}).get("status") or {}
    return st.get("synchronizationState"), st.get("message") or ""


def wait_repaired(up, ns, name, what, timeout=60):
    return up.wait("drift repaired: " + what, lambda: (
        status_message(up, ns, name)[0] == "RolloutComplete"
        and "drift repaired" in status_message(up, ns, name)[1]
        and what in status_message(up, ns, name)[1]), timeout=timeout, interval=0.1)


def test_idle_topic_checks_read_nothing_and_drift_is_still_repaired(up, tmp_path):
    ns, name = "team-idlecheck", "quiet"
    fqn = ns + "." + name
    entry = {"team": ns, "application": "later", "access": "readwrite"}
    up.apply(tmp_path, topic_doc(ns, name, [entry]))
    up.topic_ready(ns, name)

    # idle: once the Topic is found in sync, every later check finds it unchanged
    u0, _ = checks(up)
    up.wait("checks that find the Topic unchanged", lambda: checks(up)[0] >= u0 + 3, timeout=60,
            interval=0.2)
    u1, f1 = checks(up)
    up.wait("more unchanged checks", lambda: checks(up)[0] >= u1 + 4, timeout=60, interval=0.2)
    assert checks(up)[1] == f1, "an idle Topic was reconciled in full"
    assert status_message(up, ns, name)[0] == "RolloutComplete"

    # 1. a config altered directly in the pool: found by the next check and reverted
    want = up.admin.describe_configs([ConfigResource("topic", fqn)])
    want = {k: e.value for k, e in list(want.values())[0].result(timeout=20).items()}["retention.ms"]
    for f in up.admin.alter_configs([ConfigResource("topic", fqn,
                                                    set_config={"retention.ms": "1000"})]).values():
        f.result(timeout=20)
    wait_repaired(up, ns, name, "configs changed in the pool were reverted")
    got = up.admin.describe_configs([ConfigResource("topic", fqn)])
    assert list(got.values())[0].result(timeout=20)["retention.ms"].value == want
    assert checks(up)[1] > f1

    # 2. a stray ACL added directly in the pool: removed (the control plane owns the topic's ACLs)
    stray = ACL(principal="User:CN=intruder", host="*", operation=ACLOperation.READ,
                permission_type=ACLPermissionType.ALLOW,
                resource_pattern=ResourcePattern(ResourceType.TOPIC, fqn,
                                                 ACLResourcePatternType.LITERAL))
    r = up.kadmin.create_acls([stray])
    assert not r["failed"] and len(r["succeeded"]) == 1, r
    wait_repaired(up, ns, name, "ACLs repaired (0 added, 1 removed)")
    up.wait("stray ACL gone", lambda: up.describe_acls("TOPIC", fqn, "LITERAL") == [],
            timeout=30, interval=0.2)

    # 3. the topic deleted directly in the pool: recreated
    up.admin.delete_topics([fqn], operation_timeout=20)[fqn].result(timeout=20)
    wait_repaired(up, ns, name, "missing in the pool and was recreated")
    up.wait("topic back in the pool", lambda: fqn in up.pool_topics(), timeout=30, interval=0.2)

    # 4. a service user that comes later: its ACLs land on the unchanged Topic
    up.apply(tmp_path, app_doc(ns, "later"))
    later = up.creds(up.app_secret(ns, "later", timeout=60))
    up.wait("later may describe the topic",
            lambda: raw_metadata(up.kafka, later.files(), [fqn])[fqn] == NONE, timeout=60,
            interval=0.2)

    # and once in sync again, the checks are back to unchanged
    time.sleep(1)
    u2, _ = checks(up)
    up.wait("unchanged checks again", lambda: checks(up)[0] >= u2 + 3, timeout=60, interval=0.2)
