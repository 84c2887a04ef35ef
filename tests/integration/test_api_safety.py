"""Control-plane API safety and tenancy (issue 12, items 1, 3, 4, 7 and 17), against `kpool up`.

  1. names that are not UTF-8 (a %FF in the path, a latin-1 "été") and names with non-ASCII
     characters in the body get a Kubernetes Status (404, 403, 405 or 422) whose body is
     valid UTF-8 JSON, and the process stays up (on the old code the first such request
     killed broker, control plane and registry together: json_pack returned NULL for the
     message and strlen(NULL) followed). Warning headers for unknown fields are ASCII.
  3. a body nested 100,000 deep is 400 naming the limit (the old code overflowed the API
     thread's stack); one nested 20,000 deep is 400 too (the old code stored it with 201 and
     could then never read, list or delete it); one at the limit round-trips: GET, list and
     DELETE work.
  4. a team cannot write a Secret of the control plane's credentials type, nor its
     annotations (403); a forged one naming another team's service user therefore never gets
     that user revoked: the victim still produces after several grace periods (the old code
     stored the secret and the janitor revoked the victim).
  7. two teams whose team and application names shorten to the same parts, and whose
     team+application concatenations are equal (so the old CRC-32 was equal too), each with
     an AivenApplication writing secret "creds", get two different service users; the second
     team's certificate is refused on the first team's topic (the old code gave the second
     team the first team's user).
 17. a Topic applied together with its application reports its creation, not "drift
     repaired ... ACLs repaired (3 added, 0 removed)"; an ACL deleted directly in the pool
     afterwards is still reported as drift.

  7'. (only with KPOOL_OLD_BIN, an older kpool) an application deployed by the older kpool
     keeps its user, secret and certificate after the upgrade; its next deploy gets a
     new-style name.

Uses the `kpool up` harness of test_apps.py (its own instance for this module).
"""
import http.client
import json
import os
import re
import shutil
import signal
import sqlite3
import sys
import time

import pytest

from test_apps import (AAPPS, AUTHZ, GRACE_MS, NONE, RESYNC_MS,  # noqa: F401
                       SECRETS, TOPIC_AUTHORIZATION_FAILED, TOPICS, KpoolUp, app_doc, produce,
                       raw_metadata, topic_doc, up)

TEAMS = "/apis/kpool.dev/v1/teams"

# kafka-python 2.0.2 builds its SSL context with the deprecated ssl.PROTOCOL_TLS
pytestmark = pytest.mark.filterwarnings("ignore:ssl.PROTOCOL_TLS is deprecated")


def raw(up, method, path, body=None, token=None):
    """One request with body as given (bytes or str); (status, headers, body bytes)."""
    c = http.client.HTTPConnection(up.api_url, timeout=60)
    h = {"Content-Type": "application/json"}
    if token:
        h["Authorization"] = "Bearer " + token
    if isinstance(body, str):
        body = body.encode()
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    payload = r.read()
    c.close()
    return r.status, r.headers, payload


def status(payload):
    """The Status in a reply body, which must be valid UTF-8 JSON."""
    st = json.loads(payload.decode("utf-8"))
    assert st["kind"] == "Status" and st["status"] == "Failure", st
    return st


def alive(up):
    assert up.proc.poll() is None, "kpool up died:\n" + up.log()[-6000:]
    code, _, _ = up.http("GET", "/healthz", raw=True)
    assert code == 200


def team_token(up, team):
    code, _, body = up.http("POST", TEAMS, {"name": team}, token=up.token)
    if code == 409:
        code, _, body = up.http("POST", TEAMS + "/" + team + "/rotate", token=up.token)
    assert code in (200, 201), (code, body)
    return body["token"]


def topic_body(name, spec_extra=None):
    spec = {"pool": "dev", "config": {"replication": 1, "minimumInSyncReplicas": 1},
            "acl": [{"team": "team-u", "application": "*", "access": "read"}]}
    spec.update(spec_extra or {})
    return {"apiVersion": "kafka.nais.io/v1", "kind": "Topic",
            "metadata": {"name": name} if name else {}, "spec": spec}


# --------------------------------------------------------------------------- 1. UTF-8


def test_non_utf8_and_non_ascii_names_get_a_status_and_the_process_stays_up(up):
    tok = team_token(up, "team-u")
    topics = TOPICS % "team-u"
    good = json.dumps(topic_body(None)).encode()  # the name comes from the path
    cases = [
        ("GET", topics + "/%FF", None, tok, 404, "\ufffd"),
        ("GET", "/api/v1/namespaces/team-u/secrets/%FF%FE", None, tok, 404, "\ufffd"),
        ("DELETE", topics + "/%FF", None, tok, 404, "\ufffd"),
        ("GET", "/apis/kafka.nais.io/v1/namespaces/%FF/topics", None, tok, 403, "\ufffd"),
        ("GET", "/apis/kafka.nais.io/v1/namespaces/%FF/topics/x", None, tok, 403, "\ufffd"),
        ("POST", topics + "/%FF", None, tok, 405, "\ufffd"),  # PATCH is served now (kubectl)
        # "été" in UTF-8 and in latin-1 as the path's name
        ("PUT", topics + "/%C3%A9t%C3%A9", good, tok, 422, "(found '\u00e9')"),
        ("PUT", topics + "/%E9t%E9", good, tok, 422, "(found byte 0xe9)"),
        # ... and as metadata.name in the body
        ("POST", topics, json.dumps(topic_body("\u00e9t\u00e9")), tok, 422,
         "Invalid value \"\u00e9t\u00e9\""),
        ("POST", topics, json.dumps(topic_body("a\u00e9")), tok, 422, "(found '\u00e9')"),
        # a namespace that is not UTF-8, for the admin (who may write anywhere)
        ("PUT", "/apis/kafka.nais.io/v1/namespaces/%FF%FE/topics/x", good, up.token, 422,
         "metadata.namespace"),
        ("GET", TEAMS + "/%FF", None, up.token, 404, "\ufffd"),
        ("POST", TEAMS, json.dumps({"name": "\u00e9t\u00e9"}), up.token, 422,
         "Invalid value \"\u00e9t\u00e9\""),
        ("GET", TEAMS + "/%FF", None, tok, 403, "admin"),
    ]
    for method, path, body, who, want, needle in cases:
        code, _, payload = raw(up, method, path, body, token=who)
        assert code == want, (method, path, code, payload)
        st = status(payload)
        assert st["code"] == want and needle in st["message"], (method, path, st)
        alive(up)


def test_status_messages_cut_inside_a_character_are_kept(up, tmp_path):
    """Status messages embed spec values and are cut to a buffer's size: a cut inside a
    multi-byte character must still give a (UTF-8) message, not a NULL status."""
    ns = "team-cut"
    for cut in range(4):  # shift where the 1,024-byte buffers end
        pool = "x" * cut + "\u00e9" * 600
        name = "cut%d" % cut
        up.apply(tmp_path, {"apiVersion": "aiven.nais.io/v1", "kind": "AivenApplication",
                            "metadata": {"name": name, "namespace": ns},
                            "spec": {"kafka": {"pool": pool, "secretName": name}}},
                 dict(topic_doc(ns, name, [{"team": ns, "application": "*", "access": "read"}]),
                      spec={"pool": pool, "config": {"retentionHours": "\u00e9" * 600},
                            "acl": [{"team": ns, "application": "*", "access": "read"}]}))

        def failed():
            a = up.get(AAPPS, ns, name)
            t = up.get(TOPICS, ns, name)
            sa = (a or {}).get("status") or {}
            st = (t or {}).get("status") or {}
            return sa.get("synchronizationState") == "RolloutFailed" and st.get("message") and \
                (sa, st)
        sa, st = up.wait("failed statuses of %s" % name, failed, timeout=15)
        assert sa["conditions"][0]["message"].startswith('pool "' + pool[:100]), sa
        assert st["synchronizationState"] in ("FailedPrepare", "FailedSynchronization"), st
        alive(up)


def test_unknown_field_warnings_are_ascii(up):
    tok = team_token(up, "team-u")
    body = topic_body("warned", {"x\u00e9\"y\\": 1})
    code, headers, payload = raw(up, "PUT", (TOPICS % "team-u") + "/warned", json.dumps(body),
                                 token=tok)
    assert code == 201, payload
    warnings = headers.get_all("Warning")
    assert warnings == ['299 - "unknown field \\"spec.x??\\"y\\\\\\""'], warnings
    alive(up)


def test_log_stays_utf8(up):
    """Whatever the requests above put in log lines is valid UTF-8 (runs after them)."""
    with open(up.log_path, "rb") as f:
        f.read().decode("utf-8")


# --------------------------------------------------------------------------- 3. nesting


def nested(depth):
    """A Topic whose spec.x nests `depth` arrays: the document nests depth + 2 collections."""
    return ('{"apiVersion":"kafka.nais.io/v1","kind":"Topic","metadata":{"name":"deep"},'
            '"spec":{"pool":"dev","x":' + "[" * depth + "]" * depth + "}}")


def test_deeply_nested_bodies_are_refused_on_write(up):
    tok = team_token(up, "team-u")
    path = (TOPICS % "team-u") + "/deep"
    for depth in (100000, 20000, 999):
        code, _, payload = raw(up, "PUT", path, nested(depth), token=tok)
        assert code == 400, (depth, code, payload[:300])
        st = status(payload)
        assert "collections nest deeper than 1000 levels" in st["message"], st
        alive(up)
    code, _, payload = raw(up, "GET", path, token=tok)
    assert code == 404, payload[:300]


def test_a_body_at_the_nesting_limit_can_be_read_listed_and_deleted(up):
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))  # Python's json recurses too
    tok = team_token(up, "team-u")
    path = (TOPICS % "team-u") + "/deep"
    code, _, payload = raw(up, "PUT", path, nested(998), token=tok)
    assert code == 201, payload[:300]
    code, _, payload = raw(up, "GET", path, token=tok)
    assert code == 200, payload[:300]
    depth, x = 0, json.loads(payload)["spec"]["x"]
    while isinstance(x, list) and x:
        depth, x = depth + 1, x[0]
    assert depth + 1 == 998
    code, _, payload = raw(up, "GET", TOPICS % "team-u", token=tok)
    assert code == 200 and "deep" in [i["metadata"]["name"] for i in json.loads(payload)["items"]]
    code, _, payload = raw(up, "DELETE", path, token=tok)
    assert code == 200, payload[:300]
    up.wait("deep topic gone", lambda: raw(up, "GET", path, token=tok)[0] == 404, timeout=15)
    alive(up)


def test_a_row_stored_too_deep_by_an_older_kpool_can_be_deleted(up):
    """An older kpool stored bodies nested 20,000 deep that nothing can read back (jansson
    stops at 2,048): GET is 404, and DELETE removes the row (the old code answered 404 to
    DELETE too, so the row stayed for ever)."""
    tok = team_token(up, "team-u")
    body = json.loads(nested(10).replace('"name":"deep"', '"name":"old-deep","namespace":"team-u"'))
    text = json.dumps(body).replace("[" * 10 + "]" * 10, "[" * 20000 + "]" * 20000)
    db = sqlite3.connect(os.path.join(up.data_dir, "control", "kpool.db"), timeout=30)
    with db:
        db.execute("INSERT INTO resources(kind, ns, name, rv, body) VALUES(?,?,?,?,?)",
                   ("Topic", "team-u", "old-deep", 1, text))
    path = (TOPICS % "team-u") + "/old-deep"
    assert raw(up, "GET", path, token=tok)[0] == 404
    code, _, payload = raw(up, "DELETE", path, token=tok)
    assert code == 200, payload
    st = json.loads(payload)
    assert st["kind"] == "Status" and st["status"] == "Success", st
    assert st["details"] == {"kind": "topics", "group": "kafka.nais.io", "name": "old-deep"}, st
    assert db.execute("SELECT count(*) FROM resources WHERE name='old-deep'").fetchone()[0] == 0
    db.close()
    assert raw(up, "DELETE", path, token=tok)[0] == 404
    alive(up)


# --------------------------------------------------------------------------- 4. janitor


def secret_doc(name, type_=None, annotations=None):
    md = {"name": name}
    if annotations:
        md["annotations"] = annotations
    doc = {"apiVersion": "v1", "kind": "Secret", "metadata": md,
           "stringData": {"KAFKA_BROKERS": "x"}}
    if type_:
        doc["type"] = type_
    return doc


def test_clients_cannot_write_credentials_secrets(up):
    tok = team_token(up, "team-u")
    secrets = SECRETS % "team-u"
    forged = [
        (secret_doc("f1", type_="kpool.dev/kafka-credentials"), "type"),
        (secret_doc("f2", annotations={"kpool.dev/service-user": "someone_1"}),
         "kpool.dev/service-user"),
        (secret_doc("f3", annotations={"kpool.dev/aivenapplication": "x"}),
         "kpool.dev/aivenapplication"),
        (secret_doc("f4", annotations={"kpool.dev/superseded-at": "1"}), "kpool.dev/superseded-at"),
        (secret_doc("f5", annotations={"kpool.dev/pool": "dev"}), "kpool.dev/pool"),
    ]
    for who in (tok, up.token):
        for doc, field in forged:
            name = doc["metadata"]["name"]
            code, _, payload = raw(up, "PUT", secrets + "/" + name, json.dumps(doc), token=who)
            assert code == 403, (name, code, payload)
            st = status(payload)
            assert st["reason"] == "Forbidden" and field in st["message"], st
            assert "written only by the control plane" in st["message"], st
            code, _, _ = raw(up, "GET", secrets + "/" + name, token=who)
            assert code == 404
    # other types and annotations are the team's own business
    doc = secret_doc("mine", type_="Opaque", annotations={"example.com/x": "y"})
    code, _, payload = raw(up, "PUT", secrets + "/mine", json.dumps(doc), token=tok)
    assert code == 201, payload


def test_a_forged_secret_never_revokes_another_teams_user(up, tmp_path):
    ns, fqn = "team-victim", "team-victim.ledger"
    up.apply(tmp_path, topic_doc(ns, "ledger", [{"team": ns, "application": "victim",
                                                 "access": "readwrite"}]),
             app_doc(ns, "victim"))
    up.topic_ready(ns, "ledger")
    victim = up.creds(up.app_secret(ns, "victim"))
    assert produce(victim.conf(), fqn, ["before"]) is None
    attacker = team_token(up, "team-attacker")
    forged = secret_doc("stolen", type_="kpool.dev/kafka-credentials",
                        annotations={"kpool.dev/service-user": victim.user,
                                     "kpool.dev/pool": "dev"})
    code, _, payload = raw(up, "PUT", (SECRETS % "team-attacker") + "/stolen",
                           json.dumps(forged), token=attacker)
    assert code == 403, (code, payload)
    # well beyond the grace period and several janitor passes, the victim still works
    time.sleep(2 * GRACE_MS / 1000 + 3 * RESYNC_MS / 1000 + 0.5)
    assert raw_metadata(up.kafka, victim.files(), [fqn])[fqn] == NONE
    assert produce(victim.conf(), fqn, ["after"]) is None
    assert "revoked service user %s" % victim.user not in up.log()


# --------------------------------------------------------------------------- 7. names


def aivenapp(ns, name, secret):
    return {"apiVersion": "aiven.nais.io/v1", "kind": "AivenApplication",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"kafka": {"pool": "dev", "secretName": secret}}}


def test_teams_with_colliding_short_names_never_share_a_service_user(up, tmp_path):
    # old rule: <team cut to 20>_<app cut to 30>_<crc32(team + app)>_<gen>; these two give
    # the same cut parts and the same concatenation "x"*21 + "y"*32
    t1, a1 = "x" * 21, "y" * 32
    t2, a2 = "x" * 21 + "y", "y" * 31
    up.apply(tmp_path, topic_doc(t1, "data", [{"team": t1, "application": a1,
                                               "access": "readwrite"}]),
             aivenapp(t1, a1, "creds"))
    up.topic_ready(t1, "data")
    first = up.creds(up.app_secret(t1, a1))
    up.apply(tmp_path, aivenapp(t2, a2, "creds"))
    second = up.creds(up.app_secret(t2, a2))
    assert first.user != second.user, first.user
    fqn = t1 + ".data"
    assert produce(first.conf(), fqn, ["mine"]) is None
    assert raw_metadata(up.kafka, second.files(), [fqn])[fqn] == TOPIC_AUTHORIZATION_FAILED
    assert produce(second.conf(), fqn, ["not mine"]) == AUTHZ
    # the readable parts are still there; the team parts are the namespaces' own (a namespace
    # longer than 20 characters: its first 8, '~', 16 hex digits of a hash of all of it)
    assert re.match(r"^x{8}~[0-9a-f]{16}_y{27}_[0-9a-f]{8}_1$", first.user), first.user
    assert re.match(r"^x{8}~[0-9a-f]{16}_y{27}_[0-9a-f]{8}_1$", second.user), second.user
    assert first.user.split("_")[0] != second.user.split("_")[0], (first.user, second.user)
    assert first.user.endswith("_1") and second.user.endswith("_1")


# --------------------------------------------------------------------------- 17. drift


def test_creation_with_its_applications_is_not_reported_as_drift(up, tmp_path):
    from kafka.admin import (ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                             KafkaAdminClient, ResourcePatternFilter, ResourceType)
    ns, fqn = "team-new", "team-new.fresh"
    up.apply(tmp_path, topic_doc(ns, "fresh", [{"team": ns, "application": "writer",
                                                "access": "readwrite"}]),
             app_doc(ns, "writer"))
    writer = up.creds(up.app_secret(ns, "writer"))
    assert produce(writer.conf(), fqn, ["one"]) is None
    t = up.topic_ready(ns, "fresh")
    # a few resyncs later the status still tells the creation, with the app's bindings
    time.sleep(3 * RESYNC_MS / 1000)
    msg = up.topic_ready(ns, "fresh")["status"]["message"]
    assert "drift" not in msg, msg
    assert msg.startswith("Topic synchronized to pool dev (") and "3 ACL entries)" in msg, msg
    assert t["status"].get("synchronizationAclHash")
    # an ACL removed directly in the pool is drift, and is said so
    ca, cert, key = up.admin_files()
    admin = KafkaAdminClient(bootstrap_servers=up.kafka, security_protocol="SSL", ssl_cafile=ca,
                             ssl_certfile=cert, ssl_keyfile=key, request_timeout_ms=20000)
    try:
        r = admin.delete_acls([ACLFilter(
            principal="User:CN=" + writer.user, host="*", operation=ACLOperation.WRITE,
            permission_type=ACLPermissionType.ALLOW,
            resource_pattern=ResourcePatternFilter(ResourceType.TOPIC, fqn,
                                                   ACLResourcePatternType.LITERAL))])
        assert len(r) == 1 and r[0][2].errno == 0 and len(r[0][1]) == 1, r
    finally:
        admin.close()
    up.wait("ACL drift reported", lambda: "ACLs repaired (1 added, 0 removed)" in (
        (up.get(TOPICS, ns, "fresh") or {}).get("status") or {}).get("message", ""), timeout=30)
    assert produce(writer.conf(), fqn, ["two"]) is None


@pytest.mark.skipif(not os.environ.get("KPOOL_OLD_BIN"),
                    reason="set KPOOL_OLD_BIN to a kpool built before uid-derived user names")
def test_users_issued_by_an_older_kpool_keep_working(tmp_path):
    """Upgrade: an application deployed by an older kpool (user <team>_<app>_<crc32>_<gen>,
    or <team>_<app>_<id>_<gen> with <team> cut) keeps its user, secret and certificate under
    this one, and its old team for group ownership; its next deploy gets a new-style name. Needs the older binary, e.g. built from main before this change:
        git worktree add /tmp/old <commit> && make -C /tmp/old B=build/asan kpool-bin
        KPOOL_OLD_BIN=/tmp/old/build/asan/kpool python3 -m pytest -q test_api_safety.py -k older
    """
    ns, fqn = "team-a", "team-a.orders"
    old = KpoolUp().start(binary=os.environ["KPOOL_OLD_BIN"])
    try:
        old.apply(tmp_path, topic_doc(ns, "orders", [{"team": ns, "application": "api",
                                                      "access": "readwrite"}]),
                  app_doc(ns, "api"))
        old.topic_ready(ns, "orders")
        first = old.creds(old.app_secret(ns, "api"))
        assert produce(first.conf(), fqn, ["old"]) is None
        # the old user's team part (team-a without "team-": "a") claims a group
        got, err = test_apps.consume_group(first.conf(), fqn, "api-reader", ["old"])
        assert err is None, (got, err)
    finally:
        old.proc.send_signal(signal.SIGINT)
        old.proc.wait(60)
        old.logf.close()
    new = KpoolUp()
    shutil.rmtree(new.tmp)
    new.tmp, new.data_dir, new.config = old.tmp, old.data_dir, old.config
    new.log_path, new._ncreds, new.offset = old.log_path + ".new", 100, old.offset
    assert new._start_once(60)
    try:
        time.sleep(3 * RESYNC_MS / 1000 + 2 * GRACE_MS / 1000)  # resyncs and janitor passes
        a = new.get(AAPPS, ns, "api")
        assert a["status"]["synchronizationState"] == "RolloutComplete"
        assert a["status"]["serviceUser"] == first.user
        s = new.get(SECRETS, ns, first.name)
        assert s["data"]["KAFKA_CERTIFICATE"] == first.secret["data"]["KAFKA_CERTIFICATE"]
        assert produce(first.conf(), fqn, ["after the upgrade"]) is None
        # the old user keeps its old team, so its group too
        got, err = test_apps.consume_group(first.conf(), fqn, "api-reader", ["after the upgrade"])
        assert err is None, (got, err)
        new.apply(tmp_path, app_doc(ns, "api", image="ghcr.io/navikt/app:2"))
        second = new.creds(new.app_secret(ns, "api", not_name=first.name))
        assert second.user != first.user and second.user.endswith("_2")
        assert produce(second.conf(), fqn, ["new"]) is None
        # the new user's team part is team-a's own ("a~<hash>"): the group claimed as "a" is
        # not its (docs/groups.md "Users named by an older kpool": release it or keep the
        # old team with a rule); a new group is
        assert re.match(r"^a~[0-9a-f]{16}_api_", second.user), second.user
        got, err = test_apps.consume_group(second.conf(), fqn, "api-reader", ["new"], timeout=30)
        assert err == "GROUP_AUTHORIZATION_FAILED", (got, err)
        got, err = test_apps.consume_group(second.conf(), fqn, "api-reader-2", ["new"])
        assert err is None, (got, err)
    finally:
        new.stop()
