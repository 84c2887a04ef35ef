"""The schema registry under `kpool up` (issue 8, SPEC 6): Confluent's REST API over HTTPS
with the registry credentials of a real application secret.

One `kpool up` per module (a temp data dir, a free --port-offset, $KPOOL_CONFIG in a temp
dir, fast janitor and resync so revocation is quick). A Topic and two Applications are
applied with `kpool apply -f`; their secrets are read with `kpool get secret -o json`, and
the registry is called with the secret's KAFKA_SCHEMA_REGISTRY, _USER, _PASSWORD and
KAFKA_CA — the way a deployed application does.

Covered: register / fetch by id and subject/version / lookup / dedupe (same schema, same
id, across subjects too); BACKWARD refuses a new field without default (409) and accepts
one with a default; /compatibility (verbose); the subject level NONE allows anything;
malformed schemas 422/42201 and the other Confluent error codes; 401 without or with a
wrong password, and for a revoked service user (Application deleted, janitor ran); soft
and permanent deletes; JSON schemas and their compatibility (BACKWARD with open and
closed content models, FORWARD, FULL_TRANSITIVE, verbose messages; PROTOBUF still only
identical); confluent-kafka-python's SchemaRegistryClient (its
Avro serializer needs fastavro, which Debian 12 does not package, so a record is framed in
Confluent's wire format by hand, produced through the pool and decoded with the schema
fetched by id); a restart replays `_schemas`: ids unchanged, new ids fresh.
"""
import base64
import json
import os
import random
import shutil
import signal
import subprocess
import time

import pytest
import requests
import yaml

import harness
from harness import KPOOL_BIN, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
NS = "regteam"
OTHER = "otherteam"
CT = "application/vnd.schemaregistry.v1+json"


class KpoolUp(harness.KpoolUp):
    keep_offset = True  # a restart keeps the registry's address (clients hold it)

    def __init__(self):
        super().__init__(sets=["control.resync.interval.ms=500", "control.janitor.grace.ms=1000",
                               "registry.auth.cache.ms=500"], prefix="kpool-reg-")

    def start(self, timeout=90, **kw):
        return super().start(timeout, **kw)

    def on_up(self):
        with open(os.path.join(self.pki, "registry-admin.password")) as f:
            self.admin_password = f.read().strip()

    @property
    def registry(self):
        return self.registry_url

    def apply(self, *docs):
        f = os.path.join(self.tmp, "apply-%d.yaml" % random.randrange(1 << 30))
        with open(f, "w") as fh:
            fh.write(yaml.safe_dump_all(list(docs), sort_keys=False))
        return self.kpool("apply", "-f", f)

    def api(self, method, path):
        code, _, obj = self.http(method, path, token=self.token)
        return code, obj

    def secret(self, app, timeout=60, ns=NS):
        """The app's current secret data (decoded), once its AivenApplication is synced."""
        deadline = time.time() + timeout
        name = None
        while time.time() < deadline:
            code, obj = self.api("GET", "/apis/aiven.nais.io/v1/namespaces/%s/aivenapplications/%s" % (ns, app))
            st = (obj or {}).get("status") or {}
            if code == 200 and st.get("synchronizationState") == "RolloutComplete":
                name = st.get("synchronizationSecretName")
                break
            time.sleep(0.1)
        assert name, "no secret for %s:\n%s" % (app, self.log()[-3000:])
        out = self.kpool("get", "secret", name, "-n", ns, "-o", "json").stdout
        data = json.loads(out)["data"]
        return {k: base64.b64decode(v).decode("latin-1") for k, v in data.items()}


class Registry:
    """A registry client with one identity (requests, the pool CA as the only trust)."""

    def __init__(self, url, user, password, ca_file):
        self.url = url.rstrip("/")
        self.s = requests.Session()
        self.s.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
        self.s.verify = ca_file
        self.s.auth = (user, password) if user is not None else None

    def call(self, method, path, body=None, raw=None, headers=None):
        h = {"Accept": CT}
        h.update(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body)
            h.setdefault("Content-Type", CT)
        r = self.s.request(method, self.url + path, data=data, headers=h, timeout=30)
        try:
            j = r.json()
        except ValueError:
            j = r.text
        return r.status_code, j, r

    def register(self, subject, schema, **extra):
        body = {"schema": schema if isinstance(schema, str) else json.dumps(schema)}
        body.update(extra)
        return self.call("POST", "/subjects/%s/versions" % subject, body)


def record(name, *fields):
    return {"type": "record", "name": name, "namespace": "no.nav.reg",
            "fields": [dict(f) for f in fields]}


V1 = record("Order", {"name": "id", "type": "long"}, {"name": "amount", "type": "int"})
V2_BAD = record("Order", {"name": "id", "type": "long"}, {"name": "amount", "type": "int"},
                {"name": "currency", "type": "string"})
V2_OK = record("Order", {"name": "id", "type": "long"}, {"name": "amount", "type": "int"},
               {"name": "currency", "type": "string", "default": "NOK"})


@pytest.fixture(scope="module")
def up():
    u = KpoolUp().start()
    ok = False
    try:
        yield u
        ok = True
    finally:
        try:
            u.stop()
        finally:
            if ok:
                shutil.rmtree(u.tmp, ignore_errors=True)


def app_doc(name, ns=NS):
    return {"apiVersion": "nais.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": ns, "labels": {"team": ns}},
            "spec": {"image": "example/" + name, "kafka": {"pool": "dev"}}}


@pytest.fixture(scope="module")
def creds(up):
    """Secret data of app `orders` (readwrite on regteam.orders), `shortlived`, and
    `intruder` of another team (OTHER)."""
    topic = {"apiVersion": "kafka.nais.io/v1", "kind": "Topic",
             "metadata": {"name": "orders", "namespace": NS, "labels": {"team": NS}},
             "spec": {"pool": "dev", "config": {"replication": 1, "minimumInSyncReplicas": 1},
                      "acl": [{"team": NS, "application": "orders", "access": "readwrite"}]}}
    up.apply(topic, app_doc("orders"), app_doc("shortlived"), app_doc("intruder", OTHER))
    out = {"orders": up.secret("orders"), "shortlived": up.secret("shortlived"),
           "intruder": up.secret("intruder", ns=OTHER)}
    ca = os.path.join(up.tmp, "ca.crt")
    with open(ca, "w") as f:
        f.write(out["orders"]["KAFKA_CA"])
    out["ca_file"] = ca
    return out


@pytest.fixture(scope="module")
def reg(up, creds):
    d = creds["orders"]
    assert d["KAFKA_SCHEMA_REGISTRY"] == up.registry
    return Registry(d["KAFKA_SCHEMA_REGISTRY"], d["KAFKA_SCHEMA_REGISTRY_USER"],
                    d["KAFKA_SCHEMA_REGISTRY_PASSWORD"], creds["ca_file"])


def test_register_fetch_lookup_dedupe(reg):
    code, body, r = reg.register("regteam.basic-value", V1)
    assert code == 200, body
    assert r.headers["Content-Type"] == CT
    sid = body["id"]
    # by id: the canonical text, which parses to the same schema
    code, body, _ = reg.call("GET", "/schemas/ids/%d" % sid)
    assert code == 200 and "schemaType" not in body
    assert json.loads(body["schema"])["name"] == "no.nav.reg.Order"
    # by subject/version and latest
    for v in ("1", "latest", "-1"):
        code, body, _ = reg.call("GET", "/subjects/regteam.basic-value/versions/%s" % v)
        assert code == 200, body
        assert (body["subject"], body["version"], body["id"]) == ("regteam.basic-value", 1, sid)
    code, raw, _ = reg.call("GET", "/subjects/regteam.basic-value/versions/1/schema")
    assert code == 200 and raw["fields"][0]["name"] == "id"
    # the same schema, spelled differently: same id, no new version
    respelled = json.dumps(V1, indent=3, sort_keys=True)
    code, body, _ = reg.register("regteam.basic-value", respelled)
    assert (code, body) == (200, {"id": sid})
    code, body, _ = reg.call("GET", "/subjects/regteam.basic-value/versions")
    assert (code, body) == (200, [1])
    # lookup (POST /subjects/{s})
    code, body, _ = reg.call("POST", "/subjects/regteam.basic-value", {"schema": respelled})
    assert code == 200 and body["id"] == sid and body["version"] == 1
    code, body, _ = reg.call("POST", "/subjects/regteam.basic-value", {"schema": json.dumps(V2_OK)})
    assert (code, body["error_code"]) == (404, 40403)
    # the same schema under another subject reuses the id
    code, body, _ = reg.register("regteam.orders-copy", V1)
    assert (code, body) == (200, {"id": sid})
    code, body, _ = reg.call("GET", "/schemas/ids/%d/versions" % sid)
    assert sorted((x["subject"], x["version"]) for x in body) == [("regteam.basic-value", 1), ("regteam.orders-copy", 1)]
    code, body, _ = reg.call("GET", "/subjects")
    assert code == 200 and {"regteam.basic-value", "regteam.orders-copy"} <= set(body)
    code, body, _ = reg.call("GET", "/schemas/types")
    assert code == 200 and set(body) == {"AVRO", "JSON", "PROTOBUF"}
    code, body, _ = reg.call("GET", "/")
    assert (code, body) == (200, {})
    # application/json is accepted as well
    code, body, _ = reg.call("POST", "/subjects/regteam.basic-value", {"schema": json.dumps(V1)},
                             headers={"Content-Type": "application/json"})
    assert code == 200 and body["id"] == sid


def test_backward_compatibility_and_levels(reg):
    reg.register("regteam.compat-value", V1)
    code, body, _ = reg.call("GET", "/config")
    assert (code, body) == (200, {"compatibilityLevel": "BACKWARD"})
    # a new field without default: new readers cannot read old data
    code, body, _ = reg.call("POST", "/compatibility/subjects/regteam.compat-value/versions/latest?verbose=true",
                             {"schema": json.dumps(V2_BAD)})
    assert code == 200 and body["is_compatible"] is False
    assert any("READER_FIELD_MISSING_DEFAULT_VALUE" in m for m in body["messages"]), body
    code, body, _ = reg.register("regteam.compat-value", V2_BAD)
    assert code == 409 and body["error_code"] == 409, body
    assert "currency" in body["message"]
    # with a default it is compatible
    code, body, _ = reg.call("POST", "/compatibility/subjects/regteam.compat-value/versions/latest",
                             {"schema": json.dumps(V2_OK)})
    assert (code, body) == (200, {"is_compatible": True})
    code, body, _ = reg.register("regteam.compat-value", V2_OK)
    assert code == 200, body
    v2_id = body["id"]
    code, body, _ = reg.call("GET", "/subjects/regteam.compat-value/versions/latest")
    assert (body["version"], body["id"]) == (2, v2_id)
    # a type change is refused ... until the subject's level is NONE
    incompatible = {"type": "record", "name": "Order", "namespace": "no.nav.reg",
                    "fields": [{"name": "id", "type": "string"}]}
    assert reg.register("regteam.compat-value", incompatible)[0] == 409
    code, body, _ = reg.call("GET", "/config/regteam.compat-value")
    assert (code, body["error_code"]) == (404, 40408)
    code, body, _ = reg.call("GET", "/config/regteam.compat-value?defaultToGlobal=true")
    assert (code, body) == (200, {"compatibilityLevel": "BACKWARD"})
    code, body, _ = reg.call("PUT", "/config/regteam.compat-value", {"compatibility": "NONE"})
    assert (code, body) == (200, {"compatibility": "NONE"})
    code, body, _ = reg.call("GET", "/config/regteam.compat-value")
    assert (code, body) == (200, {"compatibilityLevel": "NONE"})
    code, body, _ = reg.register("regteam.compat-value", incompatible)
    assert code == 200, body
    code, body, _ = reg.call("PUT", "/config/regteam.compat-value", {"compatibility": "SIDEWAYS"})
    assert (code, body["error_code"]) == (422, 42203)
    # FORWARD on another subject: removing a field without default breaks old readers
    reg.register("regteam.fwd-value", V2_OK)
    assert reg.call("PUT", "/config/regteam.fwd-value", {"compatibility": "FORWARD"})[0] == 200
    code, body, _ = reg.register("regteam.fwd-value", V1)  # drops 'currency' which had a default: fine
    assert code == 200, body
    only_id = record("Order", {"name": "id", "type": "long"})
    code, body, _ = reg.register("regteam.fwd-value", only_id)  # drops 'amount' (no default in v2)
    assert code == 409, body


def jschema(props, required=(), closed=False):
    s = {"type": "object", "properties": props}
    if required:
        s["required"] = list(required)
    if closed:
        s["additionalProperties"] = False
    return json.dumps(s)


def test_json_schema_compatibility(reg, creds, monkeypatch):
    def reg_json(subject, schema):
        return reg.register(subject, schema, schemaType="JSON")

    def check(subject, schema, version="latest"):
        return reg.call("POST", "/compatibility/subjects/%s/versions/%s?verbose=true"
                        % (subject, version), {"schema": schema, "schemaType": "JSON"})

    # BACKWARD (the default): a closed model may gain an optional property ...
    s = "regteam.json-compat-value"
    v1 = jschema({"id": {"type": "integer"}}, required=["id"], closed=True)
    v2 = jschema({"id": {"type": "number"}, "note": {"type": "string"}}, required=["id"],
                 closed=True)
    assert reg_json(s, v1)[0] == 200
    code, body, _ = reg_json(s, v2)  # integer -> number widens; note is optional
    assert code == 200, body
    # ... but not a required one, and not lose one
    bad = jschema({"id": {"type": "number"}, "note": {"type": "string"}, "qty": {"type": "integer"}},
                  required=["id", "qty"], closed=True)
    code, body, _ = reg_json(s, bad)
    assert (code, body["error_code"]) == (409, 409), body
    assert "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL" in body["message"], body
    assert "#/required/1" in body["message"] and "qty" in body["message"], body
    code, body, _ = reg_json(s, jschema({"id": {"type": "number"}}, required=["id"], closed=True))
    assert code == 409 and "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL" in body["message"], body
    assert "#/properties/note" in body["message"], body
    # the verbose compatibility endpoint lists each problem, against the version asked for
    code, body, _ = check(s, jschema({"id": {"type": "string"}}, closed=True), version=1)
    assert code == 200 and body["is_compatible"] is False, body
    assert any("TYPE_CHANGED" in m and "#/properties/id" in m for m in body["messages"]), body
    code, body, _ = check(s, v2, version=1)
    assert (code, body["is_compatible"]) == (200, True), body
    # an open model: adding a typed property is refused (old documents may hold anything)
    o = "regteam.json-open-value"
    assert reg_json(o, jschema({"id": {"type": "integer"}}))[0] == 200
    code, body, _ = check(o, jschema({"id": {"type": "integer"}, "x": {"type": "string"}}))
    assert body["is_compatible"] is False, body
    assert any("PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL" in m for m in body["messages"]), body
    # FORWARD: old schemas read the new one, so number -> integer narrows fine, widening not
    f = "regteam.json-fwd-value"
    assert reg_json(f, jschema({"n": {"type": "number"}}, closed=True))[0] == 200
    assert reg.call("PUT", "/config/%s" % f, {"compatibility": "FORWARD"})[0] == 200
    code, body, _ = reg_json(f, jschema({"n": {"type": "integer"}}, closed=True))
    assert code == 200, body
    code, body, _ = reg_json(f, jschema({"n": {"type": ["integer", "null"]}}, closed=True))
    assert code == 409 and "TYPE_NARROWED" in body["message"], body
    # FULL_TRANSITIVE: every version must read and be read (enums can neither grow nor
    # shrink); version 2 was registered under NONE, so only version 1 stands in the way
    t = "regteam.json-full-value"
    assert reg_json(t, json.dumps({"enum": ["a", "b"]}))[0] == 200
    assert reg.call("PUT", "/config/%s" % t, {"compatibility": "NONE"})[0] == 200
    assert reg_json(t, json.dumps({"enum": ["a", "b", "c"]}))[0] == 200
    assert reg.call("PUT", "/config/%s" % t, {"compatibility": "FULL_TRANSITIVE"})[0] == 200
    e3 = json.dumps({"enum": ["c", "b", "a"], "description": "the set of version 2"})
    code, body, _ = reg_json(t, e3)
    assert code == 409 and "ENUM_NARROWED" in body["message"], body
    assert "oldSchemaVersion: 1" in body["message"], body
    assert reg.call("PUT", "/config/%s" % t, {"compatibility": "FULL"})[0] == 200
    code, body, _ = reg_json(t, e3)
    assert code == 200, body
    # PROTOBUF is still not analysed: only identical or NONE
    p = "regteam.proto-value"
    assert reg.register(p, 'syntax = "proto3"; message A {}', schemaType="PROTOBUF")[0] == 200
    code, body, _ = reg.register(p, 'syntax = "proto3"; message B {}', schemaType="PROTOBUF")
    assert code == 409 and "PROTOBUF schemas is not checked" in body["message"], body
    # confluent-kafka-python's client sees the same answers
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
    d = creds["orders"]
    client = SchemaRegistryClient({
        "url": d["KAFKA_SCHEMA_REGISTRY"], "ssl.ca.location": creds["ca_file"],
        "basic.auth.user.info": "%s:%s" % (d["KAFKA_SCHEMA_REGISTRY_USER"],
                                           d["KAFKA_SCHEMA_REGISTRY_PASSWORD"])})
    assert client.test_compatibility(s, Schema(v2, "JSON")) is True
    assert client.test_compatibility(s, Schema(bad, "JSON")) is False


def test_error_codes(reg):
    code, body, _ = reg.register("regteam.bad-value", "{\"type\": \"record\", \"name\": \"X\"}")
    assert (code, body["error_code"]) == (422, 42201), body
    code, body, _ = reg.register("regteam.bad-value", "{not json")
    assert (code, body["error_code"]) == (422, 42201), body
    code, body, _ = reg.register("regteam.bad-value", record("X", {"name": "a", "type": "int", "default": "x"}))
    assert (code, body["error_code"]) == (422, 42201) and "default" in body["message"], body
    code, body, _ = reg.call("POST", "/subjects/regteam.bad-value/versions", raw="nope",
                             headers={"Content-Type": CT})
    assert code == 422, body
    code, body, _ = reg.call("GET", "/subjects/regteam.nosuch/versions")
    assert (code, body["error_code"]) == (404, 40401)
    code, body, _ = reg.call("GET", "/subjects/regteam.nosuch/versions/1")
    assert (code, body["error_code"]) == (404, 40401)
    reg.register("regteam.err-value", V1)
    code, body, _ = reg.call("GET", "/subjects/regteam.err-value/versions/7")
    assert (code, body["error_code"]) == (404, 40402)
    code, body, _ = reg.call("GET", "/subjects/regteam.err-value/versions/zero")
    assert (code, body["error_code"]) == (422, 42202)
    code, body, _ = reg.call("GET", "/schemas/ids/999999")
    assert (code, body["error_code"]) == (404, 40403)
    code, body, _ = reg.call("GET", "/nothing/here")
    assert (code, body["error_code"]) == (404, 404)
    # JSON schemas: stored, syntax checked
    code, body, _ = reg.register("regteam.json-value", json.dumps({"type": "object"}), schemaType="JSON")
    assert code == 200, body
    code, body, _ = reg.call("GET", "/schemas/ids/%d" % body["id"])
    assert body["schemaType"] == "JSON"
    code, body, _ = reg.register("regteam.json-value", "{\"type\": ", schemaType="JSON")
    assert (code, body["error_code"]) == (422, 42201)
    # a subject name with '/' (percent-encoded) stays one subject
    code, body, _ = reg.register("regteam.a%2Fb", V1)
    assert code == 200, body
    assert "regteam.a/b" in reg.call("GET", "/subjects")[1]


def test_authentication(up, reg, creds):
    d = creds["orders"]
    anon = Registry(reg.url, None, None, creds["ca_file"])
    code, body, r = anon.call("GET", "/subjects")
    assert (code, body["error_code"]) == (401, 40101)
    assert r.headers["WWW-Authenticate"].startswith("Basic")
    wrong = Registry(reg.url, d["KAFKA_SCHEMA_REGISTRY_USER"], "not-the-password", creds["ca_file"])
    assert wrong.call("GET", "/subjects")[0] == 401
    nobody = Registry(reg.url, "nobody", d["KAFKA_SCHEMA_REGISTRY_PASSWORD"], creds["ca_file"])
    assert nobody.call("GET", "/subjects")[0] == 401
    # service users may not change the global level; the admin may
    code, body, _ = reg.call("PUT", "/config", {"compatibility": "FULL"})
    assert (code, body["error_code"]) == (403, 40301)
    admin = Registry(reg.url, "kpool-admin", up.admin_password, creds["ca_file"])
    assert admin.call("PUT", "/config", {"compatibility": "BACKWARD"})[0] == 200
    assert admin.call("GET", "/subjects")[0] == 200
    # TLS: the pool CA verifies the registry; nothing else does
    with pytest.raises(requests.exceptions.SSLError):
        s = requests.Session()
        s.trust_env = False
        s.get(reg.url + "/subjects", verify="/etc/ssl/certs/ca-certificates.crt", timeout=10)


def test_deletes(reg):
    reg.register("regteam.del-value", V1)
    reg.register("regteam.del-value", V2_OK)
    code, body, _ = reg.call("DELETE", "/subjects/regteam.del-value/versions/1?permanent=true")
    assert (code, body["error_code"]) == (404, 40407)
    code, body, _ = reg.call("DELETE", "/subjects/regteam.del-value/versions/1")
    assert (code, body) == (200, 1)
    assert reg.call("GET", "/subjects/regteam.del-value/versions")[1] == [2]
    assert reg.call("GET", "/subjects/regteam.del-value/versions?deleted=true")[1] == [1, 2]
    assert reg.call("GET", "/subjects/regteam.del-value/versions/1")[1]["error_code"] == 40402
    code, body, _ = reg.call("DELETE", "/subjects/regteam.del-value/versions/1")
    assert (code, body["error_code"]) == (404, 40406)
    code, body, _ = reg.call("DELETE", "/subjects/regteam.del-value/versions/1?permanent=true")
    assert (code, body) == (200, 1)
    code, body, _ = reg.call("DELETE", "/subjects/regteam.del-value?permanent=true")
    assert (code, body["error_code"]) == (404, 40405)
    code, body, _ = reg.call("DELETE", "/subjects/regteam.del-value")
    assert (code, body) == (200, [2])
    assert "regteam.del-value" not in reg.call("GET", "/subjects")[1]
    assert "regteam.del-value" in reg.call("GET", "/subjects?deleted=true")[1]
    code, body, _ = reg.call("DELETE", "/subjects/regteam.del-value")
    assert (code, body["error_code"]) == (404, 40404)
    code, body, _ = reg.call("DELETE", "/subjects/regteam.del-value?permanent=true")
    assert (code, body) == (200, [2])
    assert "regteam.del-value" not in reg.call("GET", "/subjects?deleted=true")[1]
    assert reg.call("GET", "/subjects/regteam.del-value/versions")[1]["error_code"] == 40401


def test_invalid_subject_names(up, reg):
    """Issue 12 items 2 and 15: a subject of invalid UTF-8 crashed the whole process (the
    error message could not be encoded), a%00b was taken for `a`, and a 1,025-byte name
    answered 40401 where the docs say 42208. Every endpoint naming a subject now answers
    422/42208 for a name that cannot be a subject, and the process stays up."""
    assert reg.register("regteam.nul", V1)[0] == 200
    long_name = "regteam." + "x" * 1017
    assert len(long_name) == 1025
    for method, path, body in (
            ("GET", "/subjects/%FF/versions", None),
            ("GET", "/subjects/%FF/versions/1", None),
            ("POST", "/subjects/%FF/versions", {"schema": json.dumps(V1)}),
            ("POST", "/subjects/%C3%28", {"schema": json.dumps(V1)}),
            ("DELETE", "/subjects/%FF", None),
            ("GET", "/config/%FF", None),
            ("PUT", "/config/%FF", {"compatibility": "NONE"}),
            ("POST", "/compatibility/subjects/%FF/versions/latest", {"schema": json.dumps(V1)}),
            ("GET", "/subjects/regteam.nul%00b/versions", None),
            ("GET", "/subjects/regteam.nul%00b/versions/1", None),
            ("POST", "/subjects/regteam.nul%00b/versions", {"schema": json.dumps(V1)}),
            ("GET", "/subjects/regteam.a%0Ab/versions", None),
            ("GET", "/subjects/%s/versions" % long_name, None),
            ("POST", "/subjects/%s/versions" % long_name, {"schema": json.dumps(V1)})):
        code, body, _ = reg.call(method, path, body)
        assert (code, body["error_code"]) == (422, 42208), (method, path, code, body)
        assert "Invalid subject name" in body["message"], body
    assert up.proc.poll() is None, up.log()[-3000:]
    # error messages quoting other client text stay valid JSON
    code, body, _ = reg.call("GET", "/subjects/regteam.nul/versions/%FF")
    assert (code, body["error_code"]) == (422, 42202), body
    code, body, _ = reg.call("GET", "/schemas/ids/%FF")
    assert (code, body["error_code"]) == (404, 40403), body
    code, body, _ = reg.call("POST", "/subjects/regteam.nul/versions", raw=b"\xff{",
                             headers={"Content-Type": CT})
    assert code == 422, body
    # 1,024 bytes is still a name; the subject "regteam.nul" is intact
    code, body, _ = reg.call("GET", "/subjects/%s/versions" % long_name[:-1])
    assert (code, body["error_code"]) == (404, 40401), body
    assert reg.call("GET", "/subjects/regteam.nul/versions")[1] == [1]
    assert up.proc.poll() is None, up.log()[-3000:]


def test_teams_change_only_their_subjects(up, reg, creds):
    """Issue 12 item 5: any application's registry user could set another team's subject to
    NONE, register into it and permanently delete it. Now a team's service users change
    only subjects under "<team>." (its topics' prefix); reads stay open; the admin may do
    everything."""
    d = creds["intruder"]
    other = Registry(d["KAFKA_SCHEMA_REGISTRY"], d["KAFKA_SCHEMA_REGISTRY_USER"],
                     d["KAFKA_SCHEMA_REGISTRY_PASSWORD"], creds["ca_file"])
    code, body, _ = reg.register("regteam.victim-value", V1)
    assert code == 200, body
    sid = body["id"]
    # the other team reads everything it needs to deserialize
    assert other.call("GET", "/schemas/ids/%d" % sid)[0] == 200
    assert other.call("GET", "/subjects/regteam.victim-value/versions/latest")[0] == 200
    assert "regteam.victim-value" in other.call("GET", "/subjects")[1]
    assert other.call("POST", "/compatibility/subjects/regteam.victim-value/versions/latest",
                      {"schema": json.dumps(V2_OK)})[0] == 200
    # ... and changes nothing
    for method, path, body in (
            ("PUT", "/config/regteam.victim-value", {"compatibility": "NONE"}),
            ("DELETE", "/config/regteam.victim-value", None),
            ("POST", "/subjects/regteam.victim-value/versions", {"schema": json.dumps(V2_BAD)}),
            ("DELETE", "/subjects/regteam.victim-value/versions/1", None),
            ("DELETE", "/subjects/regteam.victim-value", None),
            ("DELETE", "/subjects/regteam.victim-value?permanent=true", None),
            ("POST", "/subjects/regteam.new-value/versions", {"schema": json.dumps(V1)}),
            ("POST", "/subjects/unprefixed-value/versions", {"schema": json.dumps(V1)})):
        code, out, _ = other.call(method, path, body)
        assert (code, out["error_code"]) == (403, 40301), (method, path, code, out)
        assert OTHER in out["message"], out
    assert reg.call("GET", "/subjects/regteam.victim-value/versions")[1] == [1]
    assert reg.call("GET", "/config/regteam.victim-value")[1]["error_code"] == 40408
    assert reg.call("GET", "/schemas/ids/%d" % sid)[0] == 200
    # its own subjects it changes freely
    assert other.register(OTHER + ".things-value", V1)[0] == 200
    assert other.call("PUT", "/config/%s.things-value" % OTHER, {"compatibility": "NONE"})[0] == 200
    assert other.call("DELETE", "/subjects/%s.things-value" % OTHER)[0] == 200
    # the owner, and the admin
    assert reg.call("PUT", "/config/regteam.victim-value", {"compatibility": "FULL"})[0] == 200
    admin = Registry(reg.url, "kpool-admin", up.admin_password, creds["ca_file"])
    assert admin.call("DELETE", "/config/regteam.victim-value")[0] == 200
    assert admin.register("unprefixed-value", V1)[0] == 200


def test_records_written_by_others_are_served_at_once(up, reg):
    """Issue 12 item 14: after `kpool backup restore` wrote the backup's records into
    `_schemas`, a restored id could answer 404 (the registry had not read them yet). A read
    that finds nothing now first catches up with everything the topic holds, so records
    another writer has just produced (here: the pool's admin, as a restore does) are served
    on the first request."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": up.kafka, "security.protocol": "ssl",
                  "ssl.ca.location": os.path.join(up.pki, "ca.crt"),
                  "ssl.certificate.location": os.path.join(up.pki, "admin.crt"),
                  "ssl.key.location": os.path.join(up.pki, "admin.key"),
                  "acks": "all", "linger.ms": 0})
    for n in range(10):
        subject, sid = "regteam.external%d-value" % n, 900000 + n
        key = {"keytype": "SCHEMA", "subject": subject, "version": 1, "magic": 1}
        value = {"subject": subject, "version": 1, "id": sid,
                 "schema": json.dumps({"type": "fixed", "name": "F%d" % n, "size": n + 1}),
                 "deleted": False}
        p.produce("_schemas", key=json.dumps(key), value=json.dumps(value), partition=0)
        assert p.flush(30) == 0
        code, body, _ = reg.call("GET", "/schemas/ids/%d" % sid)  # at once, no retry
        assert code == 200 and json.loads(body["schema"])["size"] == n + 1, (n, code, body)
        code, body, _ = reg.call("GET", "/subjects/%s/versions/1" % subject)
        assert code == 200 and body["id"] == sid, body
    # a miss that stays a miss is still answered, as 404
    code, body, _ = reg.call("GET", "/schemas/ids/999998")
    assert (code, body["error_code"]) == (404, 40403)


def test_confluent_client_and_wire_format(up, reg, creds, monkeypatch):
    # requests lets these override the client's ssl.ca.location
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
    d = creds["orders"]
    sr_conf = {"url": d["KAFKA_SCHEMA_REGISTRY"], "ssl.ca.location": creds["ca_file"],
               "basic.auth.user.info": "%s:%s" % (d["KAFKA_SCHEMA_REGISTRY_USER"],
                                                  d["KAFKA_SCHEMA_REGISTRY_PASSWORD"])}
    client = SchemaRegistryClient(sr_conf)
    schema = Schema(json.dumps(record("Payment", {"name": "id", "type": "long"},
                                      {"name": "note", "type": "string"})), "AVRO")
    sid = client.register_schema("regteam.orders-value", schema)
    assert client.register_schema("regteam.orders-value", schema) == sid
    fresh = SchemaRegistryClient(sr_conf)  # the first one caches what it registered
    assert json.loads(fresh.get_schema(sid).schema_str)["name"] == "no.nav.reg.Payment"
    found = client.lookup_schema("regteam.orders-value", schema)
    assert (found.schema_id, found.version) == (sid, 1)
    latest = client.get_latest_version("regteam.orders-value")
    assert (latest.schema_id, latest.version) == (sid, 1)
    assert "regteam.orders-value" in client.get_subjects()
    assert client.get_versions("regteam.orders-value") == [1]
    # Confluent's wire format by hand (magic 0, schema id, Avro binary): produce with the
    # app's certificate, consume, resolve the writer schema by id, decode
    files = {}
    for key, fname in (("KAFKA_CERTIFICATE", "c.crt"), ("KAFKA_PRIVATE_KEY", "c.key")):
        files[key] = os.path.join(up.tmp, fname)
        with open(files[key], "w") as f:
            f.write(d[key])
    conf = {"bootstrap.servers": d["KAFKA_BROKERS"], "security.protocol": "ssl",
            "ssl.ca.location": creds["ca_file"], "ssl.certificate.location": files["KAFKA_CERTIFICATE"],
            "ssl.key.location": files["KAFKA_PRIVATE_KEY"]}

    def zigzag(n):
        n = (n << 1) ^ (n >> 63)
        out = bytearray()
        while n & ~0x7F:
            out.append((n & 0x7F) | 0x80)
            n >>= 7
        out.append(n)
        return bytes(out)

    note = "betalt".encode()
    payload = b"\x00" + sid.to_bytes(4, "big") + zigzag(42) + zigzag(len(note)) + note
    p = Producer(dict(conf, acks="all"))
    p.produce("regteam.orders", value=payload)
    assert p.flush(30) == 0
    c = Consumer(dict(conf, **{"group.id": "regtest", "auto.offset.reset": "earliest"}))
    c.assign([TopicPartition("regteam.orders", 0, 0)])
    m = None
    deadline = time.time() + 30
    while time.time() < deadline and m is None:
        m = c.poll(1.0)
        if m is not None and m.error():
            m = None
    c.close()
    assert m is not None
    v = m.value()
    assert v[0] == 0
    writer = json.loads(fresh.get_schema(int.from_bytes(v[1:5], "big")).schema_str)
    assert [f["name"] for f in writer["fields"]] == ["id", "note"]

    def varint(buf, i):
        shift = n = 0
        while True:
            b = buf[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return (n >> 1) ^ -(n & 1), i

    ident, i = varint(v, 5)
    ln, i = varint(v, i)
    assert (ident, v[i:i + ln].decode()) == (42, "betalt")


def test_revoked_user_is_refused(up, creds):
    d = creds["shortlived"]
    r = Registry(d["KAFKA_SCHEMA_REGISTRY"], d["KAFKA_SCHEMA_REGISTRY_USER"],
                 d["KAFKA_SCHEMA_REGISTRY_PASSWORD"], creds["ca_file"])
    assert r.call("GET", "/subjects")[0] == 200
    up.kpool("delete", "application", "shortlived", "-n", NS)
    deadline = time.time() + 60
    code = 200
    while time.time() < deadline and code == 200:
        code = r.call("GET", "/subjects")[0]
        time.sleep(0.2)
    assert code == 401, up.log()[-3000:]


def test_standalone_registry(up, creds):
    """`kpool registry` alone, against the same pool (its own topic) and the control plane's
    store: the admin and the pool's service users get in; SIGTERM stops it cleanly."""
    d = creds["orders"]
    pw = os.path.join(up.tmp, "alone.password")
    with open(pw, "w") as f:
        f.write("alone-admin-password\n")
    port = free_port()
    pki = up.pki
    log = open(os.path.join(up.tmp, "alone.log"), "wb")
    props = {"bootstrap.servers": up.kafka, "ssl.ca.location": pki + "/ca.crt",
             "ssl.certificate.location": pki + "/admin.crt", "ssl.key.location": pki + "/admin.key",
             "registry.listener": "127.0.0.1:%d" % port,
             "registry.ssl.certificate.location": pki + "/broker.crt",
             "registry.ssl.key.location": pki + "/broker.key",
             "registry.admin.password.file": pw, "registry.topic": "_schemas_alone",
             "registry.store.path": os.path.join(up.data_dir, "control", "kpool.db")}
    args = [KPOOL_BIN, "registry"]
    for k, v in props.items():
        args += ["--set", "%s=%s" % (k, v)]
    p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = "https://127.0.0.1:%d" % port
        admin = Registry(url, "kpool-admin", "alone-admin-password", creds["ca_file"])
        deadline = time.time() + 30
        code = None
        while time.time() < deadline and code != 200:
            try:
                code = admin.call("GET", "/subjects")[0]
            except requests.exceptions.ConnectionError:
                time.sleep(0.1)
        assert code == 200
        user = Registry(url, d["KAFKA_SCHEMA_REGISTRY_USER"], d["KAFKA_SCHEMA_REGISTRY_PASSWORD"],
                        creds["ca_file"])
        code, body, _ = user.register("regteam.alone-value", V1)
        assert (code, body) == (200, {"id": 1})  # its own topic, its own ids
        assert Registry(url, "kpool-admin", "wrong", creds["ca_file"]).call("GET", "/")[0] == 401
    finally:
        p.send_signal(signal.SIGTERM)
        rc = p.wait(30)
        log.close()
    text = open(os.path.join(up.tmp, "alone.log")).read()
    assert rc == 0 and "Sanitizer" not in text, text[-4000:]


def test_restart_replays_schemas(up, reg):
    before = {}
    for s in reg.call("GET", "/subjects")[1]:
        before[s] = reg.call("GET", "/subjects/%s/versions/latest" % requests.utils.quote(s, safe=""))[1]
    code, body, _ = reg.call("GET", "/config/regteam.compat-value")
    assert body == {"compatibilityLevel": "NONE"}
    max_id = max(b["id"] for b in before.values())
    up.stop()
    up.start()
    for s, b in before.items():
        code, now, _ = reg.call("GET", "/subjects/%s/versions/latest" % requests.utils.quote(s, safe=""))
        assert (code, now) == (200, b)
    assert reg.call("GET", "/config/regteam.compat-value")[1] == {"compatibilityLevel": "NONE"}
    assert "regteam.del-value" not in reg.call("GET", "/subjects?deleted=true")[1]
    assert reg.call("GET", "/subjects/regteam.del-value/versions")[1]["error_code"] == 40401
    code, body, _ = reg.register("regteam.after-restart-value", record("Fresh", {"name": "x", "type": "int"}))
    assert code == 200 and body["id"] > max_id, (body, max_id)
