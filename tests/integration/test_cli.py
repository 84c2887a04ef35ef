"""The resource commands (apply, get, describe, delete, team create) against a fake API.

The real control plane is written alongside the CLI, so these tests run the kpool binary
against FakeAPI: a small http.server in a thread that implements the docs/api.md contract
for Topics, AivenApplications, Secrets and Pools (Bearer tokens, PUT create/replace with
generation and resourceVersion, lists with labelSelector and across namespaces, DELETE,
Warning headers for unknown fields, Kubernetes Status errors, POST teams). It records every
request, so the tests can check what the CLI sent. Timestamps are fixed relative to now, so
ages are deterministic.
"""
import datetime
import json
import ssl
import subprocess
import threading
import urllib.parse

import pytest
import yaml

from harness import KPOOL_BIN, sanitizer_env
from harness.fakes import FakeHandler
from harness.fakes import serve as harness_serve
from harness.pki import server_ca

ADMIN_TOKEN = "admin-secret-token-0123456789"

# plural -> (group, version, Kind, namespaced, known spec fields)
KINDS = {
    "topics": ("kafka.nais.io", "v1", "Topic", True, {"pool", "acl", "config"}),
    "aivenapplications": ("aiven.nais.io", "v1", "AivenApplication", True,
                          {"kafka", "secretName", "protected", "expiresAt"}),
    "secrets": ("", "v1", "Secret", True, None),
    "pools": ("kpool.dev", "v1", "Pool", False,
              {"bootstrapServers", "embedded", "replication", "schemaRegistry"}),
}
TOP_LEVEL = {"apiVersion", "kind", "metadata", "spec", "status", "data", "type"}
AGE = datetime.timedelta(days=3)  # every object was created 3 days ago: AGE "3d"


def rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class YAML12Loader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1 timestamps: kpool's YAML (1.2 core schema, like the API)
    keeps creationTimestamp a string."""


YAML12Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def load_yaml(text):
    return yaml.load(text, Loader=YAML12Loader)


def status_obj(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
            "reason": reason, "message": message}


class FakeAPI:
    def __init__(self):
        self.objects = {}  # (plural, ns or "", name) -> object
        self.tokens = {ADMIN_TOKEN: None}  # token -> namespace (None: admin)
        self.requests = []  # (method, path, Authorization header)
        self.rv = 100
        self.lock = threading.Lock()

    def next_rv(self):
        self.rv += 1
        return str(self.rv)

    # ---- routing ----

    @staticmethod
    def route(path):
        """(plural, ns, name) for a resource path, ("teams",) for teams, None otherwise."""
        p = [urllib.parse.unquote(s) for s in path.split("/") if s]
        if p[:2] == ["api", "v1"]:
            rest, group, version = p[2:], "", "v1"
        elif p[:1] == ["apis"] and len(p) >= 4:
            rest, group, version = p[3:], p[1], p[2]
        else:
            return None
        if group == "kpool.dev" and rest == ["teams"]:
            return ("teams",)
        ns = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
        if not rest or len(rest) > 2 or rest[0] not in KINDS:
            return None
        g, v, _, namespaced, _ = KINDS[rest[0]]
        if (g, v) != (group, version) or (ns is not None and not namespaced):
            return None
        return rest[0], ns, rest[1] if len(rest) == 2 else None

    def handle(self, method, raw_path, auth, body):
        """Returns (status, object, warnings)."""
        with self.lock:
            self.requests.append((method, raw_path, auth))
            url = urllib.parse.urlsplit(raw_path)
            token = auth[len("Bearer "):] if auth and auth.startswith("Bearer ") else None
            if token not in self.tokens:
                return 401, status_obj(401, "Unauthorized", "Unauthorized"), []
            team = self.tokens[token]
            r = self.route(url.path)
            if r is None:
                return 404, status_obj(404, "NotFound", "the server could not find the "
                                       "requested resource"), []
            if r == ("teams",):
                return self.create_team(method, team, body)
            plural, ns, name = r
            if team is not None and (ns != team and not (ns is None and method == "GET"
                                                         and KINDS[plural][3])):
                return 403, status_obj(403, "Forbidden", '%s is forbidden: the token of team '
                                       '"%s" cannot access namespace "%s"'
                                       % (plural, team, ns or "")), []
            if name == "explode":
                return 500, "internal kaboom\nsecond line", []
            if name is None:
                if method != "GET":
                    return 405, status_obj(405, "MethodNotAllowed", "use PUT"), []
                q = urllib.parse.parse_qs(url.query)
                return 200, self.list(plural, ns, team, q.get("labelSelector", [""])[0]), []
            key = (plural, ns or "", name)
            if method == "GET":
                if key not in self.objects:
                    return 404, status_obj(404, "NotFound",
                                           '%s "%s" not found' % (plural, name)), []
                return 200, self.objects[key], []
            if method == "PUT":
                return self.put(plural, ns, name, key, body)
            if method == "DELETE":
                if key not in self.objects:
                    return 404, status_obj(404, "NotFound",
                                           '%s "%s" not found' % (plural, name)), []
                obj = self.objects.pop(key)
                obj["metadata"]["deletionTimestamp"] = rfc3339(datetime.datetime.utcnow())
                return 200, obj, []
            return 405, status_obj(405, "MethodNotAllowed", "method not allowed"), []

    def list(self, plural, ns, team, selector):
        g, v, kind, _, _ = KINDS[plural]
        want = dict(kv.split("=", 1) for kv in selector.split(",") if kv)
        items = []
        for (p, ons, _), obj in sorted(self.objects.items()):
            if p != plural or (ns is not None and ons != ns) or (team and ons != team):
                continue
            labels = obj["metadata"].get("labels") or {}
            if all(labels.get(k) == val for k, val in want.items()):
                items.append({k: val for k, val in obj.items()
                              if k not in ("apiVersion", "kind")})
        return {"apiVersion": "%s/%s" % (g, v) if g else v, "kind": kind + "List",
                "metadata": {"resourceVersion": str(self.rv)}, "items": items}

    def put(self, plural, ns, name, key, body):
        g, v, kind, namespaced, known = KINDS[plural]
        try:
            obj = json.loads(body)
        except ValueError as e:
            return 400, status_obj(400, "BadRequest", "invalid JSON: %s" % e), []
        want_api = "%s/%s" % (g, v) if g else v
        if obj.get("apiVersion") != want_api or obj.get("kind") != kind:
            return 400, status_obj(400, "BadRequest", "%s/%s does not belong at %s"
                                   % (obj.get("apiVersion"), obj.get("kind"), plural)), []
        meta = obj.setdefault("metadata", {})
        if meta.get("name") != name or (namespaced and meta.get("namespace") != ns):
            return 400, status_obj(400, "BadRequest", "metadata does not match the path"), []
        old = self.objects.get(key)
        if meta.get("resourceVersion") and (not old or old["metadata"]["resourceVersion"]
                                            != meta["resourceVersion"]):
            return 409, status_obj(409, "Conflict", '%s "%s": the object has been modified'
                                   % (plural, name)), []
        warnings = ['unknown field "%s"' % k for k in obj if k not in TOP_LEVEL]
        if known is not None:
            warnings += ['unknown field "spec.%s"' % k for k in obj.get("spec", {})
                         if k not in known]
        now = datetime.datetime.utcnow()
        if old:
            changed = any(obj.get(k) != old.get(k) for k in ("spec", "data")) or any(
                meta.get(k) != old["metadata"].get(k) for k in ("labels", "annotations"))
            meta["uid"] = old["metadata"]["uid"]
            meta["creationTimestamp"] = old["metadata"]["creationTimestamp"]
            meta["generation"] = old["metadata"]["generation"] + (1 if changed else 0)
        else:
            meta["uid"] = "uid-%s-%s" % (ns, name)
            meta["creationTimestamp"] = rfc3339(now - AGE)
            meta["generation"] = 1
        meta["resourceVersion"] = self.next_rv()
        obj.pop("status", None)
        obj["status"] = self.reconcile(kind, ns, name, obj, now)
        if obj["status"] is None:
            del obj["status"]
        self.objects[key] = obj
        return (200 if old else 201), obj, warnings

    @staticmethod
    def reconcile(kind, ns, name, obj, now):
        spec = obj.get("spec", {})
        if kind == "Topic":
            parts = spec.get("config", {}).get("partitions", 1)
            if parts > 1000000:
                msg = ("spec.config.partitions: %d is out of range (allowed 1-1000000)" % parts)
                return {"fullyQualifiedName": "%s.%s" % (ns, name),
                        "synchronizationState": "FailedPrepare", "message": msg,
                        "errors": [msg], "synchronizationTime": rfc3339(now)}
            return {"fullyQualifiedName": "%s.%s" % (ns, name),
                    "synchronizationState": "RolloutComplete", "message": "topic created",
                    "synchronizationTime": rfc3339(now), "synchronizationHash": "abc123"}
        if kind == "AivenApplication":
            return {"synchronizationState": "RolloutFailed", "observedGeneration": 1,
                    "conditions": [{"type": "AivenFailure", "status": "True",
                                    "reason": "ValidatePool",
                                    "message": 'pool "nope" does not exist (pools: dev)',
                                    "lastUpdateTime": rfc3339(now)}]}
        return None

    def create_team(self, method, team, body):
        if method != "POST":
            return 405, status_obj(405, "MethodNotAllowed", "use POST"), []
        if team is not None:
            return 403, status_obj(403, "Forbidden", "only the admin token creates teams"), []
        name = json.loads(body)["name"]
        if name in self.tokens.values():
            return 409, status_obj(409, "AlreadyExists", 'teams "%s" already exists' % name), []
        token = "team-token-%s-abcdef" % name
        self.tokens[token] = name
        return 201, {"name": name, "token": token}, []


class Handler(FakeHandler):
    def serve(self):
        status, obj, warnings = self.api.handle(self.command, self.path,
                                                self.headers.get("Authorization"), self.body())
        self.reply(status, obj, [("Warning", '299 - "%s"' % w.replace('"', '\\"'))
                                 for w in warnings])

    do_GET = do_PUT = do_POST = do_DELETE = serve


def serve(fake, tls=None):
    return harness_serve(fake, Handler, tls)


@pytest.fixture
def api():
    fake = FakeAPI()
    srv = serve(fake)
    yield fake
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def kpool(api, tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text("server: %s\ntoken: %s\nnamespace: team-a\n" % (api.url, ADMIN_TOKEN))

    def run(*args, stdin=None, config=str(cfg), expect=None):
        env = sanitizer_env(KPOOL_CONFIG=config, HOME=str(tmp_path))
        p = subprocess.run([KPOOL_BIN] + list(args), input=stdin, capture_output=True,
                           text=True, env=env, timeout=60, cwd=str(tmp_path))
        assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
        if expect is not None:
            assert p.returncode == expect, (p.returncode, p.stdout, p.stderr)
        return p
    return run


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


TOPICS = """\
apiVersion: kafka.nais.io/v1
kind: Topic
metadata:
  name: orders
  labels:
    app: shop
spec:
  pool: dev
  config:
    partitions: 3
  acl:
    - team: team-a
      application: shop
      access: readwrite
---
# a comment, then the second document
apiVersion: kafka.nais.io/v1
kind: Topic
metadata:
  name: payments
spec:
  pool: dev
  acl:
    - {team: team-a, application: "*", access: read}
"""


def test_apply_multi_document_created_unchanged_configured(kpool, api, tmp_path):
    f = write(tmp_path, "topics.yaml", TOPICS)
    p = kpool("apply", "-f", f, expect=0)
    assert p.stdout == ("topic.kafka.nais.io/orders created\n"
                        "topic.kafka.nais.io/payments created\n")
    # the namespace came from the config; the objects were PUT at their paths
    assert ("topics", "team-a", "orders") in api.objects
    puts = [r[1] for r in api.requests if r[0] == "PUT"]
    assert puts == ["/apis/kafka.nais.io/v1/namespaces/team-a/topics/orders",
                    "/apis/kafka.nais.io/v1/namespaces/team-a/topics/payments"]
    assert all(r[2] == "Bearer " + ADMIN_TOKEN for r in api.requests)

    p = kpool("apply", "-f", f, expect=0)
    assert p.stdout.splitlines() == ["topic.kafka.nais.io/orders unchanged",
                                     "topic.kafka.nais.io/payments unchanged"]
    f2 = write(tmp_path, "t2.yaml", TOPICS.replace("partitions: 3", "partitions: 6"))
    p = kpool("apply", "-f", f2, expect=0)
    assert p.stdout.splitlines() == ["topic.kafka.nais.io/orders configured",
                                     "topic.kafka.nais.io/payments unchanged"]
    assert api.objects[("topics", "team-a", "orders")]["metadata"]["generation"] == 2


def test_apply_stdin_json_namespace_flag_and_warnings(kpool, api):
    doc = {"apiVersion": "kafka.nais.io/v1", "kind": "Topic",
           "metadata": {"name": "events", "resourceVersion": "1"},
           "spec": {"pool": "dev", "acl": [], "foo": 1}}
    p = kpool("apply", "-n", "team-b", "-f", "-", stdin=json.dumps(doc), expect=0)
    assert p.stdout == "topic.kafka.nais.io/events created\n"
    assert 'Warning: unknown field "spec.foo"' in p.stderr.splitlines()
    assert ("topics", "team-b", "events") in api.objects
    # apply replaces unconditionally: a resourceVersion from the file is not sent
    assert api.objects[("topics", "team-b", "events")]["metadata"]["resourceVersion"] != "1"


def test_apply_namespace_conflict_and_bad_input_send_nothing(kpool, api, tmp_path):
    f = write(tmp_path, "t.yaml", TOPICS.replace("  name: orders\n",
                                                 "  name: orders\n  namespace: team-x\n"))
    p = kpool("apply", "-f", f, "-n", "team-a", expect=2)
    assert 'the namespace from the provided object "team-x" does not match' in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    bad = write(tmp_path, "bad.yaml", "apiVersion: kafka.nais.io/v1\nkind: Topic\n"
                "metadata: {name: a}\nspec: [unclosed\n")
    p = kpool("apply", "-f", bad, expect=2)
    assert "bad.yaml" in p.stderr and "line" in p.stderr
    unknown = write(tmp_path, "u.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    p = kpool("apply", "-f", unknown, expect=2)
    assert 'unknown kind "ConfigMap"' in p.stderr
    p = kpool("apply", "-f", str(tmp_path / "missing.yaml"), expect=2)
    assert "missing.yaml" in p.stderr
    kpool("apply", expect=2)
    assert not [r for r in api.requests if r[0] != "GET"]


def test_get_table_wide_aliases_and_all_namespaces(kpool, api, tmp_path):
    kpool("apply", "-f", write(tmp_path, "t.yaml", TOPICS), expect=0)
    kpool("apply", "-n", "team-b", "-f", write(tmp_path, "t.yaml", TOPICS), expect=0)
    p = kpool("get", "topics", expect=0)
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["NAME", "POOL", "STATE", "FULLY", "QUALIFIED", "NAME", "AGE"]
    assert lines[1].split() == ["orders", "dev", "RolloutComplete", "team-a.orders", "3d"]
    assert lines[2].split() == ["payments", "dev", "RolloutComplete", "team-a.payments", "3d"]
    # columns are aligned: every row starts its POOL column at the same offset
    assert len({ln.index(" dev") for ln in lines[1:]}) == 1
    for kind in ("topic", "Topic", "topics.kafka.nais.io"):
        assert kpool("get", kind, expect=0).stdout == p.stdout
    p = kpool("get", "topic", "orders", "-o", "wide", expect=0)
    head, row = p.stdout.splitlines()
    assert head.split()[-3:] == ["PARTITIONS", "REPLICATION", "MESSAGE"]
    assert row.split() == ["orders", "dev", "RolloutComplete", "team-a.orders", "3d", "3",
                           "<default>", "topic", "created"]
    p = kpool("get", "topics", "-A", expect=0)
    lines = p.stdout.splitlines()
    assert lines[0].split()[0] == "NAMESPACE"
    assert [ln.split()[:2] for ln in lines[1:]] == [
        ["team-a", "orders"], ["team-a", "payments"], ["team-b", "orders"],
        ["team-b", "payments"]]
    assert any(r[1] == "/apis/kafka.nais.io/v1/topics" for r in api.requests)
    p = kpool("get", "topics", "-l", "app=shop", expect=0)
    assert [ln.split()[0] for ln in p.stdout.splitlines()[1:]] == ["orders"]
    assert any("labelSelector=app%3Dshop" in r[1] for r in api.requests)
    p = kpool("get", "topics", "-n", "empty", expect=0)
    assert p.stdout == "" and "No resources found in empty namespace." in p.stderr
    p = kpool("get", "topics", "-o", "name", expect=0)
    assert p.stdout == "topic.kafka.nais.io/orders\ntopic.kafka.nais.io/payments\n"


def test_get_yaml_and_json(kpool, api, tmp_path):
    kpool("apply", "-f", write(tmp_path, "t.yaml", TOPICS), expect=0)
    lst = load_yaml(kpool("get", "topics", "-o", "yaml", expect=0).stdout)
    assert lst["kind"] == "TopicList"
    assert [i["metadata"]["name"] for i in lst["items"]] == ["orders", "payments"]
    assert lst["items"][0]["apiVersion"] == "kafka.nais.io/v1"
    assert lst["items"][0]["kind"] == "Topic"
    one = json.loads(kpool("get", "topic", "orders", "-o", "json", expect=0).stdout)
    assert one["kind"] == "Topic" and one["spec"]["config"]["partitions"] == 3
    assert one["status"]["fullyQualifiedName"] == "team-a.orders"
    one_yaml = load_yaml(kpool("get", "topic", "orders", "-o", "yaml", expect=0).stdout)
    assert one_yaml == one
    # what get -o yaml prints can be applied again
    p = kpool("apply", "-f", "-", stdin=kpool("get", "topic", "orders", "-o", "yaml").stdout,
              expect=0)
    assert p.stdout == "topic.kafka.nais.io/orders unchanged\n"


def test_errors_are_one_line_with_exit_codes(kpool, api, tmp_path):
    p = kpool("get", "topic", "nope", expect=1)
    assert p.stderr == 'Error from server (NotFound): topics "nope" not found\n'
    p = kpool("get", "topics", "--token", "wrong", expect=1)
    assert p.stderr == "Error from server (Unauthorized): Unauthorized\n"
    assert api.requests[-1][2] == "Bearer wrong"
    p = kpool("get", "secret", "explode", expect=1)
    assert p.stderr == "Error from server (InternalError): HTTP 500: internal kaboom\n"
    p = kpool("get", "widgets", expect=2)
    assert 'unknown resource type "widgets"' in p.stderr
    p = kpool("get", "topics", "-o", "xml", expect=2)
    assert "unknown output format" in p.stderr
    p = kpool("get", "topics", "--bogus", expect=2)
    assert "unknown option '--bogus'" in p.stderr
    p = kpool("get", "topics", "--server", "http://127.0.0.1:1", expect=1)
    assert p.stderr.startswith("error: cannot reach the control plane at http://127.0.0.1:1")
    assert len(p.stderr.splitlines()) == 1
    # no config at all: a clear line before anything is sent
    p = kpool("get", "topics", config=str(tmp_path / "none.yaml"), expect=1)
    assert "no token" in p.stderr and "none.yaml" in p.stderr
    for out in (p.stdout, p.stderr):
        assert ADMIN_TOKEN not in out


def test_describe_explains_status(kpool, api, tmp_path):
    bad = TOPICS.split("---")[0].replace("partitions: 3", "partitions: 2000000")
    kpool("apply", "-f", write(tmp_path, "t.yaml", bad), expect=0)
    p = kpool("describe", "topic", "orders", expect=0)
    out = p.stdout
    assert "Name:" in out and "orders" in out and "Namespace:" in out and "team-a" in out
    assert "Kind:              Topic (kafka.nais.io/v1)" in out
    assert "Labels:            app=shop" in out
    assert "Spec:\n  pool: dev\n" in out
    assert "Synchronization State:  FailedPrepare" in out
    assert "Message:                spec.config.partitions: 2000000 is out of range" in out
    assert "  Errors:\n    - spec.config.partitions: 2000000 is out of range" in out
    app = ("apiVersion: aiven.nais.io/v1\nkind: AivenApplication\nmetadata: {name: shop}\n"
           "spec:\n  kafka: {pool: nope, secretName: aiven-shop-1}\n")
    kpool("apply", "-f", write(tmp_path, "a.yaml", app), expect=0)
    p = kpool("describe", "aivenapp", "shop", expect=0)
    assert "Synchronization State:  RolloutFailed" in p.stdout
    assert "Conditions:\n    - Type:              AivenFailure\n" in p.stdout
    assert "      Reason:            ValidatePool\n" in p.stdout
    assert 'Message:           pool "nope" does not exist (pools: dev)' in p.stdout
    assert "Last Update Time:" in p.stdout
    p = kpool("get", "aivenapps", expect=0)
    assert p.stdout.splitlines()[0].split() == ["NAME", "POOL", "SECRET", "STATE", "AGE"]
    assert p.stdout.splitlines()[1].split() == ["shop", "nope", "aiven-shop-1",
                                                "RolloutFailed", "3d"]
    kpool("describe", "topic", "gone", expect=1)


def test_secrets_never_show_values(kpool, api, tmp_path):
    sec = ("apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\n"
           "  labels: {type: kpool.dev/kafka-credentials}\n"
           "data:\n  KAFKA_PRIVATE_KEY: c3VwZXItc2VjcmV0LWtleQ==\n  KAFKA_BROKERS: aDo5MDkz\n")
    p = kpool("apply", "-f", write(tmp_path, "s.yaml", sec), expect=0)
    assert p.stdout == "secret/creds created\n"
    assert any(r[1] == "/api/v1/namespaces/team-a/secrets/creds" for r in api.requests)
    p = kpool("get", "secrets", expect=0)
    assert p.stdout.splitlines()[1].split() == ["creds", "kpool.dev/kafka-credentials", "2",
                                                "3d"]
    p2 = kpool("describe", "secret", "creds", expect=0)
    assert "KAFKA_PRIVATE_KEY:  16 bytes" in p2.stdout
    for out in (p.stdout, p2.stdout):
        assert "c3VwZXItc2VjcmV0LWtleQ" not in out and "super-secret" not in out


def test_pools_are_cluster_scoped(kpool, api, tmp_path):
    pool = ("apiVersion: kpool.dev/v1\nkind: Pool\nmetadata: {name: dev, namespace: ignored}\n"
            "spec:\n  bootstrapServers: 127.0.0.1:9093\n  embedded: true\n"
            "  replication: {min: 1, max: 1, default: 1}\n")
    p = kpool("apply", "-f", write(tmp_path, "p.yaml", pool), "-n", "team-a", expect=0)
    assert p.stdout == "pool.kpool.dev/dev created\n"
    assert any(r[1] == "/apis/kpool.dev/v1/pools/dev" for r in api.requests)
    p = kpool("get", "pools", "-o", "wide", expect=0)
    head, row = p.stdout.splitlines()
    assert head.split()[:4] == ["NAME", "BOOTSTRAP", "EMBEDDED", "AGE"]
    assert row.split()[:5] == ["dev", "127.0.0.1:9093", "true", "3d", "min=1,default=1,max=1"]


def test_delete_by_name_and_file(kpool, api, tmp_path):
    f = write(tmp_path, "t.yaml", TOPICS)
    kpool("apply", "-f", f, expect=0)
    p = kpool("delete", "topic", "orders", expect=0)
    assert p.stdout == 'topic.kafka.nais.io "orders" deleted\n'
    assert ("DELETE", "/apis/kafka.nais.io/v1/namespaces/team-a/topics/orders",
            "Bearer " + ADMIN_TOKEN) in api.requests
    p = kpool("delete", "-f", f, expect=1)
    assert p.stdout == 'topic.kafka.nais.io "payments" deleted\n'
    assert p.stderr == 'Error from server (NotFound): topics "orders" not found\n'
    kpool("delete", "-f", f, "--ignore-not-found", expect=0)
    assert api.objects == {}
    kpool("delete", "topic", expect=2)
    kpool("delete", "topic", "x", "-f", f, expect=2)


def test_team_create_and_team_token(kpool, api, tmp_path):
    p = kpool("team", "create", "team-c", expect=0)
    token = "team-token-team-c-abcdef"
    assert p.stdout.splitlines()[:2] == ["team/team-c created", "token: " + token]
    assert "KPOOL_CONFIG" in p.stdout and "--token" in p.stdout
    assert ("POST", "/apis/kpool.dev/v1/teams", "Bearer " + ADMIN_TOKEN) in api.requests
    p = kpool("team", "create", "team-c", expect=1)
    assert p.stderr == 'Error from server (AlreadyExists): teams "team-c" already exists\n'
    # the team token works in its namespace and is refused elsewhere
    f = write(tmp_path, "t.yaml", TOPICS)
    kpool("apply", "-f", f, "-n", "team-c", "--token", token, expect=0)
    assert api.requests[-1][2] == "Bearer " + token
    p = kpool("get", "topics", "-n", "team-a", "--token", token, expect=1)
    assert p.stderr.startswith("Error from server (Forbidden): ")
    cfg = write(tmp_path, "team.yaml", "server: %s\ntoken: %s\nnamespace: team-c\n"
                % (api.url, token))
    p = kpool("get", "topics", config=cfg, expect=0)
    assert [ln.split()[0] for ln in p.stdout.splitlines()[1:]] == ["orders", "payments"]
    p = kpool("team", "create", "team-d", "--token", token, expect=1)
    assert "Forbidden" in p.stderr
    kpool("team", "create", expect=2)
    kpool("team", "delete", "x", expect=2)


def test_help_for_every_command(kpool):
    for cmd in ("apply", "get", "describe", "delete", "team"):
        p = kpool(cmd, "--help", expect=0)
        assert p.stdout.startswith("Usage: kpool " + cmd), cmd
        assert "--server" in p.stdout and "Exit status" in p.stdout
    p = kpool("--help", expect=0)
    for cmd in ("apply", "get", "describe", "delete", "team"):
        assert "\n  %s " % cmd in p.stdout


def test_top_help_lists_every_command_and_each_help_is_generated(kpool):
    """kpool --help is generated from the command table: every command is there (control
    was missing from the hand-written one), and each command's --help comes from its option
    table, ends with -h/--help and lists the options the command takes."""
    top = kpool("--help", expect=0).stdout
    cmds = [ln.split()[0] for ln in top.splitlines()
            if ln.startswith("  ") and not ln.startswith("   ")]
    assert "control" in cmds and "version" in cmds and "pki-selftest" not in cmds
    for cmd in cmds:
        p = kpool(cmd, "--help", expect=0)
        assert p.stdout.startswith("Usage: kpool " + cmd), cmd
        assert "  -h, --help " in p.stdout, cmd
        p = kpool(cmd, "--no-such-option", expect=2)
        assert p.stderr == ("kpool %s: unknown option '--no-such-option' (see 'kpool %s --help')\n"
                            % (cmd, cmd)), p.stderr
    assert "      --request-timeout SECS" in kpool("backup", "--help", expect=0).stdout
    assert "      --port-offset K" in kpool("up", "--help", expect=0).stdout

def test_https_verified_against_configured_ca(kpool, tmp_path):
    server_ca(tmp_path, "good")
    server_ca(tmp_path, "other")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(tmp_path / "good.crt"), str(tmp_path / "good.key"))
    fake = FakeAPI()
    srv = serve(fake, ctx)
    try:
        # a relative ca is resolved against the config file's directory
        cfg = write(tmp_path, "tls.yaml", "server: %s\ntoken: %s\nca: good-ca.crt\n"
                    % (fake.url, ADMIN_TOKEN))
        p = kpool("get", "topics", config=cfg, expect=0)
        assert "No resources found in default namespace." in p.stderr
        assert fake.requests[-1][2] == "Bearer " + ADMIN_TOKEN
        n = len(fake.requests)
        bad = write(tmp_path, "bad.yaml", "server: %s\ntoken: %s\nca: other-ca.crt\n"
                    % (fake.url, ADMIN_TOKEN))
        p = kpool("get", "topics", config=bad, expect=1)
        assert p.stderr.startswith("error: TLS with %s failed: " % fake.url), p.stderr
        assert len(p.stderr.splitlines()) == 1
        assert len(fake.requests) == n  # the token never left the client
        missing = write(tmp_path, "m.yaml", "server: %s\ntoken: x\nca: nope.crt\n" % fake.url)
        p = kpool("get", "topics", config=missing, expect=2)
        assert "nope.crt" in p.stderr
    finally:
        srv.shutdown()
        srv.server_close()
