"""The application-facing commands (secret, run, probe, doctor, produce, consume) with REAL
credentials against a real TLS broker, driven through a FAKE control plane API.

The world (one per module):
  * a PKI made with the `openssl` CLI: a CA, the broker's certificate (IP:127.0.0.1), an
    admin client certificate (a super user) and one client certificate per service user
    (subject CN=<service user>, so the principal is User:CN=<service user>, SPEC §3), plus
    a certificate from another CA (rogue) and PKCS#12 key/trust stores;
  * a kpool broker with one SSL listener, ssl.client.auth=required and the authorizer on;
    topics and ACLs made by the admin over TLS with kafka-python's admin client
    (confluent-kafka 1.7 on this system has no create_acls);
  * FakeAPI: a read-only http.server in a thread that serves the docs/api.md contract the
    control plane will implement: AivenApplications (status.synchronizationSecretName,
    conditions), Secrets whose data is the real credentials (base64), Topics with
    spec.acl and status.fullyQualifiedName, Bearer tokens (an admin and a team token; the
    team token may not list Topics across namespaces, so the CLI falls back to its own).

Applications:
  shop    granted team-a.orders (readwrite), team-a.events (readwrite through the partial
          wildcard application "sh*") and team-b.payments (read, team "team-*"); the
          broker has the matching ACLs: everything works.
  cart    granted team-a.carts by its Topic, but the broker has no ACL for it (the control
          plane has not synchronized): probe fails "not authorized"; doctor shows the
          missing spec.acl entry for team-a.orders and the unsynchronized ACLs for carts.
  broken  RolloutFailed with an AivenFailure/ValidatePool condition and no secret.
  gone    a secret whose KAFKA_BROKERS points at a closed port.
  rogue   a secret with a certificate from another CA.
  stale   status names a secret that does not exist.
"""
import base64
import json
import os
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
import urllib.parse

import pytest

from harness import KPOOL_BIN, Broker, free_port, sanitizer_env
from harness.fakes import FakeHandler, serve
from harness.pki import OpensslPki

# kafka-python 2.0.2 builds its SSL context with the deprecated ssl.PROTOCOL_TLS
pytestmark = pytest.mark.filterwarnings("ignore:ssl.PROTOCOL_TLS is deprecated")

ADMIN_TOKEN = "admin-token-cliapp-0123456789"
TEAM_TOKEN = "team-a-token-cliapp-abcdef"
PASSWORD = "pa'ss $word\"`x`"  # every shell metacharacter a quoting bug would trip on
NOW = "2026-11-27T07:00:00Z"


USERS = {"shop": "team-a_shop_1a2b3c4d_1", "cart": "team-a_cart_5e6f7a8b_1",
         "gone": "team-a_gone_0badf00d_1", "rogue": "team-a_rogue_deadbeef_1"}


# --------------------------------------------------------------------------- PKI

class Pki(OpensslPki):
    def __init__(self, d):
        super().__init__(d)
        self.ca, self.ca_key = self._ca("ca", "/O=kpool/CN=kpool test CA")
        self.other_ca, self.other_ca_key = self._ca("other-ca", "/CN=another CA")
        self.broker_cert, self.broker_key = self._leaf("broker", "/CN=broker", "server")
        self.admin_cert, self.admin_key = self._leaf("admin", "/CN=admin", "client")
        self.users = {}
        for app, user in USERS.items():
            ca = (self.other_ca, self.other_ca_key) if app == "rogue" else (self.ca, self.ca_key)
            self.users[app] = self._leaf(app, "/CN=" + user, "client", *ca)

    def stores(self, app):
        """(keystore, truststore) bytes: PKCS#12, as the control plane makes them."""
        cert, key = self.users[app]
        ks, ts = os.path.join(self.dir, app + ".p12"), os.path.join(self.dir, app + "-ts.p12")
        self._run("pkcs12", "-export", "-in", cert, "-inkey", key, "-certfile", self.ca,
                  "-name", "kpool", "-passout", "pass:" + PASSWORD, "-out", ks)
        self._run("pkcs12", "-export", "-nokeys", "-in", self.ca, "-passout",
                  "pass:" + PASSWORD, "-out", ts)
        return read_bytes(ks), read_bytes(ts)


def read_bytes(p):
    with open(p, "rb") as f:
        return f.read()


def read_text(p):
    with open(p) as f:
        return f.read()


# --------------------------------------------------------------------------- fake API

KINDS = {  # plural -> (group, version)
    "topics": ("kafka.nais.io", "v1"),
    "aivenapplications": ("aiven.nais.io", "v1"),
    "applications": ("nais.io", "v1alpha1"),
    "secrets": ("", "v1"),
}


def status_obj(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
            "reason": reason, "message": message}


class FakeAPI:
    """Serves objects put into self.objects[(plural, ns, name)]; GET only."""

    def __init__(self):
        self.objects = {}
        self.requests = []
        self.lock = threading.Lock()

    def add(self, plural, ns, name, obj):
        group, version = KINDS[plural]
        obj.setdefault("apiVersion", "%s/%s" % (group, version) if group else version)
        meta = obj.setdefault("metadata", {})
        meta.update({"name": name, "namespace": ns, "uid": "uid-%s-%s" % (ns, name),
                     "generation": meta.get("generation", 1), "resourceVersion": "7",
                     "creationTimestamp": NOW})
        self.objects[(plural, ns, name)] = obj

    def handle(self, method, raw_path, auth):
        with self.lock:
            self.requests.append((method, raw_path))
            token = auth[7:] if auth and auth.startswith("Bearer ") else None
            if token not in (ADMIN_TOKEN, TEAM_TOKEN):
                return 401, status_obj(401, "Unauthorized", "Unauthorized")
            team = "team-a" if token == TEAM_TOKEN else None
            p = [urllib.parse.unquote(s) for s in urllib.parse.urlsplit(raw_path).path.split("/")
                 if s]
            if p[:2] == ["api", "v1"]:
                group, version, rest = "", "v1", p[2:]
            elif p[:1] == ["apis"] and len(p) >= 4:
                group, version, rest = p[1], p[2], p[3:]
            else:
                return 404, status_obj(404, "NotFound", "no such path")
            ns = None
            if len(rest) >= 3 and rest[0] == "namespaces":
                ns, rest = rest[1], rest[2:]
            if not rest or rest[0] not in KINDS or KINDS[rest[0]] != (group, version):
                return 404, status_obj(404, "NotFound", "the server could not find the "
                                       "requested resource")
            plural = rest[0]
            if method != "GET":
                return 405, status_obj(405, "MethodNotAllowed", "read-only fake")
            if team and ns != team:
                return 403, status_obj(403, "Forbidden", '%s is forbidden: the token of team '
                                       '"%s" cannot access namespace "%s"'
                                       % (plural, team, ns or ""))
            if len(rest) == 1:
                items = [o for (pl, ons, _), o in sorted(self.objects.items())
                         if pl == plural and (ns is None or ons == ns)]
                return 200, {"apiVersion": "%s/%s" % (group, version) if group else version,
                             "kind": "List", "metadata": {"resourceVersion": "7"},
                             "items": items}
            obj = self.objects.get((plural, ns, rest[1]))
            if obj is None:
                return 404, status_obj(404, "NotFound", '%s "%s" not found' % (plural, rest[1]))
            return 200, obj


class Handler(FakeHandler):
    def do_GET(self):
        status, obj = self.api.handle(self.command, self.path, self.headers.get("Authorization"))
        self.reply(status, obj)

    do_PUT = do_POST = do_DELETE = do_GET


# --------------------------------------------------------------------------- the world

def b64(v):
    return base64.b64encode(v if isinstance(v, bytes) else v.encode()).decode()


def secret_data(pki, app, brokers):
    cert, key = pki.users[app]
    ks, ts = pki.stores(app)
    return {
        "KAFKA_BROKERS": brokers,
        "KAFKA_CERTIFICATE": read_text(cert),
        "KAFKA_PRIVATE_KEY": read_text(key),
        "KAFKA_CA": read_text(pki.ca),
        "KAFKA_CREDSTORE_PASSWORD": PASSWORD,
        "client.keystore.p12": ks,
        "client.truststore.jks": ts,
        "KAFKA_SCHEMA_REGISTRY": "https://127.0.0.1:8081",
        "KAFKA_SCHEMA_REGISTRY_USER": USERS[app],
        "KAFKA_SCHEMA_REGISTRY_PASSWORD": "registry-" + PASSWORD,
        "KAFKA_SECRET_UPDATED": NOW,
        # not a KAFKA_ key: never put in an environment (a secret must not preload code)
        "LD_PRELOAD": "/nonexistent/evil.so",
    }


def secret_name(app):
    return "aiven-kafka-%s-1a2b3c4d-2026-48" % app


def aivenapp(app, user=None, secret=True, state="RolloutComplete", conditions=None):
    status = {"synchronizationState": state, "synchronizationTime": NOW,
              "observedGeneration": 1,
              "conditions": conditions or [{"type": "Succeeded", "status": "True",
                                            "reason": "Synchronized", "message": "",
                                            "lastUpdateTime": NOW}]}
    if secret:
        status["synchronizationSecretName"] = secret_name(app)
    if user:
        status["serviceUser"] = user
    return {"kind": "AivenApplication", "spec": {"kafka": {"pool": "dev",
                                                           "secretName": secret_name(app)}},
            "status": status}


def topic(ns, name, acl):
    return {"kind": "Topic", "spec": {"pool": "dev", "config": {"partitions": 2},
                                      "acl": acl},
            "status": {"fullyQualifiedName": "%s.%s" % (ns, name),
                       "synchronizationState": "RolloutComplete", "message": "topic created",
                       "synchronizationTime": NOW}}


class World:
    def __init__(self, pki, broker, api, url):
        self.pki, self.broker, self.api, self.url = pki, broker, api, url
        self.secrets = {}  # app -> data (decoded)

    def principal(self, app):
        return "User:CN=" + USERS[app]


def admin_client(pki, broker):
    from kafka.admin import KafkaAdminClient
    return KafkaAdminClient(bootstrap_servers=broker.bootstrap, security_protocol="SSL",
                            ssl_cafile=pki.ca, ssl_certfile=pki.admin_cert,
                            ssl_keyfile=pki.admin_key, ssl_check_hostname=True,
                            request_timeout_ms=20000)


def acl(principal, rtype, name, op):
    from kafka.admin import (ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                             ResourcePattern, ResourceType)
    return ACL(principal=principal, host="*", operation=ACLOperation[op],
               permission_type=ACLPermissionType.ALLOW,
               resource_pattern=ResourcePattern(ResourceType[rtype], name,
                                                ACLResourcePatternType.LITERAL))


def grant(admin, acls):
    res = admin.create_acls(acls)
    assert not res["failed"] and len(res["succeeded"]) == len(acls), res


@pytest.fixture(scope="module")
def world():
    root = tempfile.mkdtemp(prefix="kpool-cliapp-")
    os.mkdir(os.path.join(root, "pki"))
    pki = Pki(os.path.join(root, "pki"))
    b = Broker(os.path.join(root, "data"))
    b.extra.update({
        "listeners": "SSL://127.0.0.1:%d" % b.port,
        "ssl.ca.location": pki.ca,
        "ssl.certificate.location": pki.broker_cert,
        "ssl.key.location": pki.broker_key,
        "ssl.client.auth": "required",
        "authorizer.enabled": "true",
        "super.users": "User:CN=admin",
    })
    b.start()
    srv = None
    try:
        from kafka.admin import NewTopic
        admin = admin_client(pki, b)
        admin.create_topics([NewTopic(n, 2, 1) for n in
                             ("team-a.orders", "team-a.events", "team-b.payments",
                              "team-a.carts")], timeout_ms=20000)
        shop = "User:CN=" + USERS["shop"]
        acls = [acl(shop, "TOPIC", t, op) for t in ("team-a.orders", "team-a.events")
                for op in ("READ", "WRITE", "DESCRIBE")]
        acls += [acl(shop, "TOPIC", "team-b.payments", op) for op in ("READ", "DESCRIBE")]
        # SPEC §3: a reader may use any consumer group id
        acls += [acl(shop, "GROUP", "*", "READ"), acl("User:CN=" + USERS["cart"], "GROUP", "*",
                                                       "READ")]
        grant(admin, acls)
        admin.close()

        api = FakeAPI()
        srv = serve(api, Handler)
        w = World(pki, b, api, api.url)

        closed = "127.0.0.1:%d" % free_port()
        for app, brokers in (("shop", b.bootstrap), ("cart", b.bootstrap), ("gone", closed),
                             ("rogue", b.bootstrap)):
            data = secret_data(pki, app, brokers)
            w.secrets[app] = data
            api.add("secrets", "team-a", secret_name(app), {
                "kind": "Secret", "type": "kpool.dev/kafka-credentials",
                "metadata": {"labels": {"app": app, "team": "team-a",
                                        "type": "kpool.dev/kafka-credentials"},
                             "annotations": {"kpool.dev/service-user": USERS[app],
                                             "kpool.dev/pool": "dev"}},
                "data": {k: b64(v) for k, v in data.items()}})
            api.add("aivenapplications", "team-a", app, aivenapp(app, USERS[app]))
        api.add("aivenapplications", "team-a", "broken", aivenapp(
            "broken", secret=False, state="RolloutFailed", conditions=[
                {"type": "Succeeded", "status": "False", "reason": "ValidatePool",
                 "message": "rollout failed", "lastUpdateTime": NOW},
                {"type": "AivenFailure", "status": "True", "reason": "ValidatePool",
                 "message": 'pool "nope" does not exist (pools: dev)', "lastUpdateTime": NOW}]))
        api.add("aivenapplications", "team-a", "stale", aivenapp("stale", "team-a_stale_1_1"))
        api.add("topics", "team-a", "orders", topic("team-a", "orders", [
            {"team": "team-a", "application": "shop", "access": "readwrite"},
            {"team": "team-b", "application": "*", "access": "read"}]))
        api.add("topics", "team-a", "events", topic("team-a", "events", [
            {"team": "team-a", "application": "sh*", "access": "readwrite"}]))
        api.add("topics", "team-b", "payments", topic("team-b", "payments", [
            {"team": "team-*", "application": "shop", "access": "read"}]))
        api.add("topics", "team-a", "carts", topic("team-a", "carts", [
            {"team": "team-a", "application": "cart", "access": "readwrite"}]))
        yield w
    finally:
        if srv:
            srv.shutdown()
            srv.server_close()
        try:
            b.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def kpool(world, tmp_path):
    """Runs the kpool binary with a config pointing at the fake API (admin token, or the team
    token with team=True). Asserts no sanitizer report and, unless the command exists to
    show them, that no private key line appears in its output."""
    cfgs = {}
    for team, token in ((False, ADMIN_TOKEN), (True, TEAM_TOKEN)):
        p = tmp_path / ("config-%s.yaml" % ("team" if team else "admin"))
        p.write_text("server: %s\ntoken: %s\nnamespace: team-a\n" % (world.url, token))
        cfgs[team] = str(p)
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    key_lines = [ln for app in world.secrets for ln in
                 world.secrets[app]["KAFKA_PRIVATE_KEY"].splitlines() if "-----" not in ln]

    def environ(team=False, env=None):
        # no KAFKA_* variables but those of env: the tests decide what `probe` finds there
        e = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
        e.update(KPOOL_CONFIG=cfgs[team], HOME=str(tmp_path), XDG_RUNTIME_DIR=str(xdg))
        e.update(env or {})
        return sanitizer_env(e)

    def run(*args, stdin=None, expect=None, team=False, shows_keys=False, timeout=90,
            binary=False, env=None):
        e = environ(team, env)
        p = subprocess.run([KPOOL_BIN] + list(args), input=stdin, capture_output=True,
                           text=not binary, env=e, timeout=timeout, cwd=str(tmp_path))
        stderr = p.stderr.decode(errors="replace") if binary else p.stderr
        stdout = p.stdout.decode(errors="replace") if binary else p.stdout
        assert "Sanitizer" not in stderr and "runtime error" not in stderr, stderr
        if expect is not None:
            assert p.returncode == expect, (p.returncode, stdout, stderr)
        leaked = [ln for ln in key_lines if ln in stderr or (not shows_keys and ln in stdout)]
        assert not leaked, "private key material in the output of %s" % (args,)
        return p
    started = []

    def popen(*args, env=None):
        """kpool in the background (stdout a pipe of text lines, stderr a file); killed at
        the end of the test if still running."""
        errf = tempfile.TemporaryFile()
        p = subprocess.Popen([KPOOL_BIN] + list(args), stdout=subprocess.PIPE, stderr=errf,
                             text=True, env=environ(False, env), cwd=str(tmp_path))
        p.errf = errf
        started.append(p)
        return p
    run.xdg = str(xdg)
    run.popen = popen
    run.environ = environ
    yield run
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait()


def one_line(p):
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    return lines[0]


# --------------------------------------------------------------------------- secret

def test_secret_get(kpool, world):
    data = world.secrets["shop"]
    p = kpool("secret", "get", "-n", "team-a", secret_name("shop"), expect=0, shows_keys=True)
    out = p.stdout
    assert "KAFKA_BROKERS: %s\n" % world.broker.bootstrap in out
    assert "KAFKA_CREDSTORE_PASSWORD: %s\n" % PASSWORD in out
    assert "client.keystore.p12: <%d bytes>\n" % len(data["client.keystore.p12"]) in out
    assert "client.truststore.jks: <%d bytes>\n" % len(data["client.truststore.jks"]) in out
    # a PEM is an indented block, every line of it there
    assert "KAFKA_PRIVATE_KEY: |\n" in out
    for ln in data["KAFKA_PRIVATE_KEY"].splitlines():
        assert "    " + ln + "\n" in out
    # keys in order, each once
    keys = [ln.split(":")[0] for ln in out.splitlines() if not ln.startswith(" ")]
    assert keys == sorted(data)
    # one key, raw: binary included
    p = kpool("secret", "get", "-n", "team-a", secret_name("shop"), "client.keystore.p12",
              binary=True, expect=0)
    assert p.stdout == data["client.keystore.p12"]
    p = kpool("secret", "get", "-n", "team-a", secret_name("shop"), "KAFKA_CA", expect=0)
    assert p.stdout == data["KAFKA_CA"]
    p = kpool("secret", "get", "-n", "team-a", secret_name("shop"), "NOPE", expect=1)
    assert "has no key NOPE" in one_line(p) and "KAFKA_BROKERS" in p.stderr
    p = kpool("secret", "get", "-n", "team-a", "missing", expect=1)
    assert one_line(p) == "kpool secret get: secret team-a/missing not found"
    # the team token reads its own namespace's secrets only
    kpool("secret", "get", secret_name("shop"), team=True, expect=0, shows_keys=True)
    p = kpool("secret", "get", "-n", "team-b", "x", team=True, expect=1)
    assert "Forbidden" in one_line(p)


def test_secret_env_evals_in_bash(kpool, world):
    data = world.secrets["shop"]
    p = kpool("secret", "env", "-n", "team-a", secret_name("shop"), expect=0, shows_keys=True)
    exports, comment = p.stdout.split("# ")
    assert comment == ("left out (binary, or not a KAFKA_ variable): LD_PRELOAD, "
                       "client.keystore.p12, client.truststore.jks; 'kpool secret files' writes "
                       "the stores\n")
    assert exports.count("export ") == len(data) - 3
    assert "LD_PRELOAD" not in exports and "client." not in exports
    # eval'd by bash, every text value comes back byte for byte (PEMs keep their lines,
    # the password its quotes, dollars and backticks)
    r = subprocess.run(["bash", "-c", 'eval "$1" && env -0', "bash", p.stdout],
                       capture_output=True, env={"PATH": os.environ["PATH"]})
    assert r.returncode == 0, r.stderr
    env = dict(kv.split("=", 1) for kv in r.stdout.decode().split("\0") if "=" in kv)
    for k, v in data.items():
        if not k.startswith("KAFKA_"):
            assert k not in env
        else:
            assert env[k] == v, k
    # and by a plain POSIX sh
    r = subprocess.run(["sh", "-c", 'eval "$1" && printf %s "$KAFKA_CREDSTORE_PASSWORD"', "sh",
                        p.stdout], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == PASSWORD, r
    kpool("secret", "env", "-n", "team-a", secret_name("shop"), "extra", expect=2)


def test_secret_files_modes(kpool, world, tmp_path):
    data = world.secrets["shop"]
    d = tmp_path / "creds"
    p = kpool("secret", "files", "-n", "team-a", secret_name("shop"), str(d), expect=0)
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    files = {"kafka.crt": "KAFKA_CERTIFICATE", "kafka.key": "KAFKA_PRIVATE_KEY",
             "ca.crt": "KAFKA_CA", "client.keystore.p12": "client.keystore.p12",
             "client.truststore.jks": "client.truststore.jks"}
    assert sorted(os.listdir(d)) == sorted(files)
    for fn, key in files.items():
        st = os.stat(d / fn)
        assert stat.S_IMODE(st.st_mode) == 0o600, fn
        want = data[key] if isinstance(data[key], bytes) else data[key].encode()
        assert read_bytes(d / fn) == want, fn
    # the output: export lines of the five paths, absolute, eval-able
    r = subprocess.run(["bash", "-c", 'eval "$1" && env -0', "bash", p.stdout],
                       capture_output=True, env={})
    env = dict(kv.split("=", 1) for kv in r.stdout.decode().split("\0") if "=" in kv)
    assert {k: v for k, v in env.items() if k.endswith("_PATH")} == {
        "KAFKA_CERTIFICATE_PATH": str(d / "kafka.crt"),
        "KAFKA_PRIVATE_KEY_PATH": str(d / "kafka.key"),
        "KAFKA_CA_PATH": str(d / "ca.crt"),
        "KAFKA_KEYSTORE_PATH": str(d / "client.keystore.p12"),
        "KAFKA_TRUSTSTORE_PATH": str(d / "client.truststore.jks")}
    # again into the same (private) directory: replaced, still 0600, no temporary left
    os.chmod(d / "kafka.key", 0o644)
    kpool("secret", "files", "-n", "team-a", secret_name("shop"), str(d), expect=0)
    assert stat.S_IMODE(os.stat(d / "kafka.key").st_mode) == 0o600
    assert sorted(os.listdir(d)) == sorted(files)
    # a relative DIR: paths printed absolute
    p = kpool("secret", "files", "-n", "team-a", secret_name("shop"), "rel", expect=0)
    assert "export KAFKA_CA_PATH='%s'\n" % (tmp_path / "rel" / "ca.crt") in p.stdout
    # a directory others can read is refused, nothing written
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    p = kpool("secret", "files", "-n", "team-a", secret_name("shop"), str(shared), expect=1)
    assert "accessible by others" in one_line(p)
    assert os.listdir(shared) == []
    kpool("secret", "files", "-n", "team-a", secret_name("shop"), expect=2)


def test_secret_by_app(kpool, world, tmp_path):
    """--app APP names the app's current secret, as run, probe and doctor take it (issue 12
    item 16); the NAME form keeps working."""
    data = world.secrets["shop"]
    name = secret_name("shop")
    for sub in (("get",), ("get", "KAFKA_CA"), ("env",)):
        by_name = kpool("secret", sub[0], "-n", "team-a", name, *sub[1:], expect=0,
                        shows_keys=True)
        by_app = kpool("secret", sub[0], "-n", "team-a", "--app", "shop", *sub[1:], expect=0,
                       shows_keys=True)
        assert by_app.stdout == by_name.stdout and by_app.stderr == "", sub
    p = kpool("secret", "get", "-a", "shop", "client.keystore.p12", binary=True, expect=0)
    assert p.stdout == data["client.keystore.p12"]
    # the team token, its own namespace
    p = kpool("secret", "get", "--app=shop", "KAFKA_BROKERS", team=True, expect=0)
    assert p.stdout == world.broker.bootstrap
    d = tmp_path / "by-app"
    p = kpool("secret", "files", "--app", "shop", "-n", "team-a", str(d), expect=0)
    assert read_bytes(d / "kafka.key") == data["KAFKA_PRIVATE_KEY"].encode()
    assert "export KAFKA_CA_PATH='%s'\n" % (d / "ca.crt") in p.stdout
    p = kpool("secret", "get", "--app", "shop", "NOPE", expect=1)
    assert one_line(p).startswith("kpool secret get: secret %s has no key NOPE" % name)
    # an app without a (current) secret: the same one-line reasons as run
    p = kpool("secret", "env", "-n", "team-a", "--app", "broken", expect=1)
    assert one_line(p).startswith("kpool secret env: no secret: AivenApplication team-a/broken "
                                  "has no synchronized secret (RolloutFailed)")
    p = kpool("secret", "get", "-n", "team-a", "--app", "nope", expect=1)
    assert "no AivenApplication team-a/nope" in one_line(p)
    p = kpool("secret", "get", "-n", "team-a", "--app", "stale", expect=1)
    assert "names secret %s, which does not exist" % secret_name("stale") in one_line(p)
    # usage
    p = kpool("secret", "get", "-n", "team-a", expect=2)
    assert "give its NAME, or --app APP" in one_line(p)
    p = kpool("secret", "files", "--app", "shop", expect=2)
    assert "secret files --app APP DIR" in one_line(p)
    p = kpool("secret", "env", "--app", "shop", "extra", expect=2)
    assert "unexpected argument 'extra'" in one_line(p)
    p = kpool("secret", "get", "--app", "shop", "KAFKA_CA", "extra", expect=2)
    assert "unexpected argument 'extra'" in one_line(p)
    assert "--app APP" in kpool("secret", "--help", expect=0).stdout


# --------------------------------------------------------------------------- run

CONSUMER_PY = r"""
import json, os, stat, sys, time
from confluent_kafka import Consumer
paths = {v: os.environ[v] for v in ("KAFKA_CERTIFICATE_PATH", "KAFKA_PRIVATE_KEY_PATH",
                                    "KAFKA_CA_PATH", "KAFKA_KEYSTORE_PATH",
                                    "KAFKA_TRUSTSTORE_PATH")}
d = os.path.dirname(paths["KAFKA_CA_PATH"])
modes = {v: oct(stat.S_IMODE(os.stat(p).st_mode)) for v, p in paths.items()}
modes["dir"] = oct(stat.S_IMODE(os.stat(d).st_mode))
c = Consumer({"bootstrap.servers": os.environ["KAFKA_BROKERS"], "security.protocol": "ssl",
              "ssl.certificate.location": os.environ["KAFKA_CERTIFICATE_PATH"],
              "ssl.key.location": os.environ["KAFKA_PRIVATE_KEY_PATH"],
              "ssl.ca.location": os.environ["KAFKA_CA_PATH"],
              "group.id": "run-test", "auto.offset.reset": "earliest"})
c.subscribe([sys.argv[1]])
got, deadline = [], time.time() + 60
while len(got) < int(sys.argv[2]) and time.time() < deadline:
    m = c.poll(1)
    if m is None:
        continue
    if m.error():
        print(json.dumps({"error": str(m.error())}))
        sys.exit(3)
    got.append(m.value().decode())
c.close()
env = {k: os.environ.get(k) for k in ("KAFKA_CREDSTORE_PASSWORD", "KAFKA_SCHEMA_REGISTRY",
                                      "KAFKA_SECRET_UPDATED")}
print(json.dumps({"messages": got, "dir": d, "modes": modes, "env": env,
                  "binary_in_env": [k for k in os.environ if k.endswith((".p12", ".jks"))],
                  "ld_preload": os.environ.get("LD_PRELOAD"),
                  "pid": os.getpid()}))
"""


def test_run_materializes_and_execs(kpool, world, tmp_path):
    script = tmp_path / "consumer.py"
    script.write_text(CONSUMER_PY)
    p = kpool("produce", "-n", "team-a", "--app", "shop", "--topic", "events",
              stdin="one\ntwo\nthree\n", expect=0)
    assert one_line(p) == "kpool produce: 3 messages delivered to team-a.events"
    p = kpool("run", "-n", "team-a", "--app", "shop", "--", "/usr/bin/python3", str(script),
              "team-a.events", "3", expect=0)
    out = json.loads(p.stdout)
    assert out["messages"] == ["one", "two", "three"]
    assert out["modes"] == {"dir": "0o700", "KAFKA_CERTIFICATE_PATH": "0o600",
                            "KAFKA_PRIVATE_KEY_PATH": "0o600", "KAFKA_CA_PATH": "0o600",
                            "KAFKA_KEYSTORE_PATH": "0o600", "KAFKA_TRUSTSTORE_PATH": "0o600"}
    assert out["env"] == {"KAFKA_CREDSTORE_PASSWORD": PASSWORD,
                          "KAFKA_SCHEMA_REGISTRY": "https://127.0.0.1:8081",
                          "KAFKA_SECRET_UPDATED": NOW}
    assert out["binary_in_env"] == [] and out["ld_preload"] is None
    # a private directory in the user's private base under $XDG_RUNTIME_DIR, gone once the
    # program has ended (issue 12 item 8: the private key stayed there for ever)
    base = os.path.join(kpool.xdg, "kpool-run")
    assert os.path.dirname(out["dir"]) == base
    assert stat.S_IMODE(os.stat(base).st_mode) == 0o700
    assert os.path.basename(out["dir"]).startswith("team-a-shop-")
    assert not os.path.exists(out["dir"])
    # each run gets its own directory; CMD's exit status is kpool's
    p = kpool("run", "-n", "team-a", "--app", "shop", "/bin/sh", "-c",
              'echo "$KAFKA_BROKERS"; dirname "$KAFKA_CA_PATH"; '
              'cat "$KAFKA_PRIVATE_KEY_PATH" > /dev/null || exit 9; exit 7', expect=7)
    brokers, d2 = p.stdout.splitlines()
    assert brokers == world.broker.bootstrap and d2 != out["dir"]
    assert not os.path.exists(d2)
    assert os.listdir(base) == []
    # options after CMD are CMD's
    p = kpool("run", "--app", "shop", "-n", "team-a", "/bin/echo", "-n", "--app", expect=0)
    assert p.stdout == "--app"


def test_run_failures(kpool, world):
    n_before = len([n for n in os.listdir(kpool.xdg) if n != "kpool-run"])
    p = kpool("run", "-n", "team-a", "--app", "broken", "--", "/bin/true", expect=1)
    assert one_line(p) == ('kpool run: no secret: AivenApplication team-a/broken has no '
                           'synchronized secret (RolloutFailed): AivenFailure/ValidatePool: '
                           'pool "nope" does not exist (pools: dev)')
    p = kpool("run", "-n", "team-a", "--app", "nope", "--", "/bin/true", expect=1)
    assert "no AivenApplication team-a/nope" in one_line(p)
    p = kpool("run", "-n", "team-a", "--app", "stale", "--", "/bin/true", expect=1)
    assert one_line(p) == ("kpool run: no secret: AivenApplication team-a/stale names secret "
                           "%s, which does not exist (RolloutComplete)" % secret_name("stale"))
    p = kpool("run", "-n", "team-a", "--app", "shop", "--", "/no/such/program", expect=127)
    assert "cannot run /no/such/program" in one_line(p)
    # nothing left behind by runs that never started their program
    base = os.path.join(kpool.xdg, "kpool-run")
    assert not os.path.exists(base) or os.listdir(base) == []
    assert len([n for n in os.listdir(kpool.xdg) if n != "kpool-run"]) == n_before
    kpool("run", "-n", "team-a", "--", "/bin/true", expect=2)
    kpool("run", "-n", "team-a", "--app", "shop", expect=2)


# `kpool run` is CMD's parent (issue 12 item 8): it passes signals on, returns CMD's status
# (128+N for signal N) and removes the credentials directory however CMD ends.

SIGNALS_PY = r"""
import os, signal, sys, time
got = []
def on(sig, frame):
    got.append(signal.Signals(sig).name)
    print(signal.Signals(sig).name, flush=True)
    if sig == signal.SIGTERM:
        sys.exit(42)
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
          signal.SIGUSR2, signal.SIGWINCH):
    signal.signal(s, on)
parent = os.getppid()
print("ready", parent, os.path.dirname(os.environ["KAFKA_CA_PATH"]), flush=True)
while os.getppid() == parent:  # orphaned (a failed test killed kpool): gone too
    time.sleep(0.2)
"""


def run_bg(kpool, *cmd):
    """kpool run in the background; returns (process, the first line CMD printed)."""
    p = kpool.popen("run", "-n", "team-a", "--app", "shop", "--", *cmd)
    line = p.stdout.readline()
    assert line, "no output from CMD: %r" % read_errf(p)
    return p, line.split()


def read_errf(p):
    p.errf.seek(0)
    return p.errf.read().decode(errors="replace")


def finish(p, timeout=30, read=True):
    """Waits for kpool; (exit status, what CMD printed after its first line). read=False
    when CMD outlives kpool (its stdout stays open)."""
    rc = p.wait(timeout)
    rest = p.stdout.read() if read else None
    p.stdout.close()
    err = read_errf(p)
    assert "Sanitizer" not in err and "runtime error" not in err, err
    return rc, rest


def test_run_forwards_signals(kpool, tmp_path):
    script = tmp_path / "signals.py"
    script.write_text(SIGNALS_PY)
    p, (ready, ppid, d) = run_bg(kpool, "/usr/bin/python3", str(script))
    assert ready == "ready" and int(ppid) == p.pid  # a child of kpool, not kpool itself
    assert os.path.exists(os.path.join(d, "kafka.key"))
    for sig in (signal.SIGUSR1, signal.SIGHUP, signal.SIGINT, signal.SIGUSR2, signal.SIGQUIT,
                signal.SIGWINCH):
        os.kill(p.pid, sig)
        assert p.stdout.readline().strip() == sig.name  # passed on, once
    os.kill(p.pid, signal.SIGTERM)
    rc, rest = finish(p)
    assert (rc, rest) == (42, "SIGTERM\n")
    assert not os.path.exists(d)


# CMD for the terminal test: takes its signals with sigwaitinfo, so each delivery is seen
# with its origin (si_code: SI_KERNEL from the terminal, SI_USER from kill) as soon as it comes.
SIGWAIT_PY = r"""
import os, signal, sys
sigs = {signal.SIGINT, signal.SIGQUIT, signal.SIGTERM}
signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
print("ready", flush=True)
while True:
    si = signal.sigwaitinfo(sigs)
    print(signal.Signals(si.si_signo).name, "code=%d" % si.si_code, "from=%d" % si.si_pid,
          flush=True)
    if si.si_signo == signal.SIGTERM:
        sys.exit(42)
"""


def test_run_terminal_signals_not_doubled(kpool, tmp_path):
    """Ctrl-C on a terminal reaches kpool run and CMD both (one process group): kpool must not
    pass it on a second time, or CMD sees two SIGINTs (many programs quit hard on the
    second). Driven through a pseudo-terminal whose foreground group is kpool's."""
    import pty
    script = tmp_path / "sigwait.py"
    script.write_text(SIGWAIT_PY)
    pid, fd = pty.fork()
    if pid == 0:  # the child: a session leader with the pty as its controlling terminal
        try:
            import termios
            attrs = termios.tcgetattr(0)
            attrs[3] &= ~termios.ECHO  # no ^C echoed into CMD's lines
            termios.tcsetattr(0, termios.TCSANOW, attrs)
            env = kpool.environ()
            os.execve(KPOOL_BIN, [KPOOL_BIN, "run", "-n", "team-a", "--app", "shop", "--",
                                  "/usr/bin/python3", str(script)], env)
        finally:
            os._exit(99)
    out = b""

    def read_until(what, timeout=30):
        nonlocal out
        deadline = time.time() + timeout
        while what not in out:
            left = deadline - time.time()
            assert left > 0, out
            if not select.select([fd], [], [], left)[0]:
                continue
            try:
                out += os.read(fd, 4096)
            except OSError:  # EIO: every process of the pty is gone
                break
        return out
    try:
        read_until(b"ready")
        # kpool is stopped while the terminal signals: CMD takes its copy first, so a copy
        # kpool passed on once continued could not merge with it (standard signals pending
        # twice are delivered once)
        os.kill(pid, signal.SIGSTOP)
        _, st = os.waitpid(pid, os.WUNTRACED)
        assert os.WIFSTOPPED(st)
        os.write(fd, b"\x03")  # Ctrl-C: SIGINT to the foreground process group
        read_until(b"SIGINT")
        os.write(fd, b"\x1c")  # Ctrl-\: SIGQUIT likewise
        read_until(b"SIGQUIT")
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.5)  # a second delivery, if any, comes now
        os.kill(pid, signal.SIGTERM)  # from a process: passed on
        read_until(b"SIGTERM")
        time.sleep(0.2)
        _, status = os.waitpid(pid, 0)
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        try:
            while select.select([fd], [], [], 1)[0]:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                out += chunk
        except OSError:
            pass
        os.close(fd)
    text = out.decode(errors="replace")
    assert "Sanitizer" not in text and "runtime error" not in text, text
    # once each, from the terminal (si_code SI_KERNEL), not a second time from kpool
    # (SI_USER); SIGTERM from kpool
    got = re.findall(r"(SIG[A-Z]+) code=(-?\d+) from=(\d+)", text)
    assert [(g[0], int(g[1])) for g in got] == [("SIGINT", 0x80), ("SIGQUIT", 0x80),
                                                ("SIGTERM", 0)], text
    assert int(got[2][2]) == pid, text
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 42, (status, text)
    assert os.listdir(os.path.join(kpool.xdg, "kpool-run")) == []


def test_run_killed_by_signal(kpool):
    # CMD killed by a signal it does not handle (passed on by kpool): 128+N, directory gone
    p, (pid, d) = run_bg(kpool, "/bin/sh", "-c", 'echo $$ "${KAFKA_CA_PATH%/*}"; exec sleep 60')
    os.kill(p.pid, signal.SIGTERM)
    assert finish(p) == (128 + signal.SIGTERM, "")
    assert not os.path.exists(d)
    # CMD SIGKILLed (from outside, not through kpool): 137, directory gone
    p, (pid, d) = run_bg(kpool, "/bin/sh", "-c", 'echo $$ "${KAFKA_CA_PATH%/*}"; exec sleep 60')
    os.kill(int(pid), signal.SIGKILL)
    assert finish(p) == (128 + signal.SIGKILL, "")
    assert not os.path.exists(d)
    # CMD killing itself
    p = kpool("run", "-n", "team-a", "--app", "shop", "/bin/sh", "-c", 'kill -9 $$', expect=137)
    assert os.listdir(os.path.join(kpool.xdg, "kpool-run")) == []


def test_run_itself_sigkilled(kpool):
    """kpool run cannot clean up after a SIGKILL of its own: CMD keeps its directory while
    it lives, and the next kpool run removes it once CMD is gone too (documented)."""
    base = os.path.join(kpool.xdg, "kpool-run")
    p, (pid, d) = run_bg(kpool, "/bin/sh", "-c", 'echo $$ "${KAFKA_CA_PATH%/*}"; exec sleep 60')
    os.kill(p.pid, signal.SIGKILL)
    assert finish(p, read=False)[0] == -signal.SIGKILL
    assert os.path.exists(os.path.join(d, "kafka.key"))
    # CMD still runs: another run leaves the directory alone
    kpool("run", "-n", "team-a", "--app", "shop", "/bin/true", expect=0)
    assert os.listdir(base) == [os.path.basename(d)]
    os.kill(int(pid), signal.SIGKILL)
    deadline = time.time() + 30
    while time.time() < deadline:  # the orphan is reaped by init
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    kpool("run", "-n", "team-a", "--app", "shop", "/bin/true", expect=0)
    assert os.listdir(base) == []


def test_run_base_must_be_private(kpool, tmp_path):
    """The per-user base directory must be the user's own and private: a shared one (e.g.
    made by someone else in /tmp) is refused, nothing written."""
    xdg = tmp_path / "xdg2"
    (xdg / "kpool-run").mkdir(parents=True)
    os.chmod(xdg / "kpool-run", 0o755)
    p = kpool("run", "-n", "team-a", "--app", "shop", "/bin/true", expect=1,
              env={"XDG_RUNTIME_DIR": str(xdg)})
    assert "is not a private directory of yours" in one_line(p)
    assert os.listdir(xdg / "kpool-run") == []
    # without $XDG_RUNTIME_DIR: $TMPDIR/kpool-run-UID
    tmpd = tmp_path / "tmpd"
    tmpd.mkdir()
    env = {"XDG_RUNTIME_DIR": "", "TMPDIR": str(tmpd)}
    p = kpool("run", "-n", "team-a", "--app", "shop", "/bin/sh", "-c",
              'dirname "$KAFKA_CA_PATH"', expect=0, env=env)
    assert os.path.dirname(p.stdout.strip()) == str(tmpd / ("kpool-run-%d" % os.geteuid()))
    assert os.listdir(tmpd / ("kpool-run-%d" % os.geteuid())) == []


# --------------------------------------------------------------------------- probe

def test_probe_healthy(kpool, world):
    p = kpool("probe", "-n", "team-a", "--app", "shop", expect=0)
    assert p.stdout == ("ok: team-a/shop reached %s over TLS; 3 topics authorized "
                        "(team-a.events, team-a.orders, team-b.payments)\n"
                        % world.broker.bootstrap)
    assert p.stderr == ""
    # a team token cannot list other namespaces: the CLI falls back to its own
    p = kpool("probe", "--app", "shop", team=True, expect=0)
    assert "2 topics authorized (team-a.events, team-a.orders)" in p.stdout
    assert ("GET", "/apis/kafka.nais.io/v1/namespaces/team-a/topics") in world.api.requests


def test_probe_failures_are_one_line(kpool, world):
    t0 = time.time()
    p = kpool("probe", "-n", "team-a", "--app", "cart", expect=1)
    assert one_line(p) == ("kpool probe: topic team-a.carts not authorized "
                           "(TOPIC_AUTHORIZATION_FAILED)")
    p = kpool("probe", "-n", "team-a", "--app", "broken", expect=1)
    assert one_line(p) == ('kpool probe: no secret: AivenApplication team-a/broken has no '
                           'synchronized secret (RolloutFailed): AivenFailure/ValidatePool: '
                           'pool "nope" does not exist (pools: dev)')
    p = kpool("probe", "-n", "team-a", "--app", "gone", expect=1)
    line = one_line(p)
    assert line.startswith("kpool probe: pool unreachable (%s)" % world.secrets["gone"][
        "KAFKA_BROKERS"]), line
    p = kpool("probe", "-n", "team-a", "--app", "rogue", "--timeout", "8", expect=1)
    line = one_line(p)
    assert line.startswith("kpool probe: TLS refused by %s" % world.broker.bootstrap), line
    p = kpool("probe", "-n", "team-a", "--app", "nobody", expect=1)
    assert "no AivenApplication team-a/nobody" in one_line(p)
    # failures are reported as soon as they are known, not at the deadline
    assert time.time() - t0 < 30
    kpool("probe", "-n", "team-a", expect=2)
    kpool("probe", "-n", "team-a", "--app", "shop", "--timeout", "0", expect=2)


def run_env(kpool, app):
    """The KAFKA_* variables `kpool run` gives app's command. kpool removes the files when the
    command ends, so the command copies them first (to a private directory next to the
    fixture's $XDG_RUNTIME_DIR) and the *_PATH variables are pointed at the copies."""
    keep = tempfile.mkdtemp(prefix="creds-%s-" % app, dir=os.path.dirname(kpool.xdg))
    p = kpool("run", "-n", "team-a", "--app", app, "--", "/bin/sh", "-c",
              'cp -p "${KAFKA_CA_PATH%/*}"/* "$0" && exec /usr/bin/env -0', keep, expect=0,
              shows_keys=True)
    pairs = (v.split("=", 1) for v in p.stdout.split("\0") if v)
    env = {k: v for k, v in pairs if k.startswith("KAFKA_")}
    for k, v in env.items():
        if k.endswith("_PATH"):
            assert not os.path.exists(v), v  # removed by kpool run
            env[k] = os.path.join(keep, os.path.basename(v))
    return env


# Which variables an application may have: the PEM values (kpool secret env), the files
# (*_PATH), the PKCS#12 stores only (what a Java application reads), or everything kpool run
# sets.
ENV_VARIANTS = {
    "pem": {"KAFKA_CERTIFICATE", "KAFKA_PRIVATE_KEY", "KAFKA_CA"},
    "files": {"KAFKA_CERTIFICATE_PATH", "KAFKA_PRIVATE_KEY_PATH", "KAFKA_CA_PATH"},
    "stores": {"KAFKA_KEYSTORE_PATH", "KAFKA_TRUSTSTORE_PATH", "KAFKA_CREDSTORE_PASSWORD"},
}


def env_variant(env, which):
    if which == "all":
        return dict(env)
    return {k: v for k, v in env.items() if k in ENV_VARIANTS[which] | {"KAFKA_BROKERS"}}


def probe_ok_line(app, brokers, rest):
    return "ok: CN=%s reached %s over TLS (credentials from the environment); %s\n" % (
        USERS[app], brokers, rest)


def test_probe_from_env(kpool, world):
    """--from-env: the credentials of the environment, in each form an application has them;
    the control plane is not asked."""
    env = run_env(kpool, "shop")
    assert {"KAFKA_BROKERS", "KAFKA_CA", "KAFKA_CA_PATH", "KAFKA_KEYSTORE_PATH"} <= set(env)
    asked = len(world.api.requests)
    want = probe_ok_line("shop", world.broker.bootstrap,
                         "2 topics authorized (team-a.orders, team-b.payments)")
    for which in ("all", "pem", "files", "stores"):
        p = kpool("probe", "--from-env", "--topic", "team-a.orders", "-t", "team-b.payments",
                  env=env_variant(env, which), expect=0)
        assert (p.stdout, p.stderr) == (want, ""), which
        assert PASSWORD not in p.stdout + p.stderr
    # no --topic: the topics the pool authorizes these credentials
    p = kpool("probe", "--from-env", "--timeout", "20", env=env, expect=0)
    m = re.fullmatch(re.escape(probe_ok_line("shop", world.broker.bootstrap, "@")).replace(
        "@", r"the pool authorizes 3 topics \((.*)\)"), p.stdout)
    assert m, p.stdout
    assert sorted(m.group(1).split(", ")) == ["team-a.events", "team-a.orders",
                                              "team-b.payments"], p.stdout
    # neither -n/--app nor --from-env, KAFKA_BROKERS set: --from-env (the config file's
    # namespace does not count as -n)
    p = kpool("probe", "-t", "team-a.events", env=env, expect=0)
    assert p.stdout == probe_ok_line("shop", world.broker.bootstrap,
                                     "1 topic authorized (team-a.events)"), p.stdout
    assert len(world.api.requests) == asked, world.api.requests[asked:]


def test_probe_from_env_failures(kpool, world, tmp_path):
    shop, cart = run_env(kpool, "shop"), run_env(kpool, "cart")
    gone, rogue = run_env(kpool, "gone"), run_env(kpool, "rogue")
    t0 = time.time()
    p = kpool("probe", "--from-env", "-t", "team-a.carts", env=cart, expect=1)
    assert one_line(p) == ("kpool probe: topic team-a.carts not authorized "
                           "(TOPIC_AUTHORIZATION_FAILED)")
    assert p.stdout == ""
    # cart may describe no topic at all
    p = kpool("probe", "--from-env", env=cart, expect=1)
    assert one_line(p) == ("kpool probe: CN=%s is not authorized for any topic in the pool at "
                           "%s: no Topic's spec.acl grants this application access (see "
                           "'kpool doctor -n TEAM --app APP')"
                           % (USERS["cart"], world.broker.bootstrap))
    # the first failing topic, and how many more
    p = kpool("probe", "--from-env", "-t", "team-a.orders", "-t", "team-a.carts", "-t",
              "team-a.nope", env=shop, expect=1)
    assert one_line(p) == ("kpool probe: topic team-a.carts not authorized "
                           "(TOPIC_AUTHORIZATION_FAILED) (and 1 more topics failing)")
    # a short name: Kafka knows the topic by its fully qualified name
    p = kpool("probe", "--from-env", "-t", "orders", env=shop, expect=1)
    assert one_line(p) == ("kpool probe: topic orders not authorized (TOPIC_AUTHORIZATION_FAILED)"
                           " (a topic is known by its fully qualified name, <namespace>.<name>)")
    p = kpool("probe", "--from-env", env=gone, expect=1)
    assert one_line(p).startswith("kpool probe: pool unreachable (%s): "
                                  % gone["KAFKA_BROKERS"]), p.stderr
    p = kpool("probe", "--from-env", "--timeout", "8", env=rogue, expect=1)
    assert one_line(p).startswith("kpool probe: TLS refused by %s: " % world.broker.bootstrap), \
        p.stderr
    assert time.time() - t0 < 30, "failures are reported when known, not at the deadline"

    # what is wrong in the environment itself: named, never shown
    def fails(env, want, *args):
        p = kpool("probe", "--from-env", *args, env=env, expect=1)
        line = one_line(p)
        assert line.startswith("kpool probe: " + want), (line, want)
        assert p.stdout == "" and PASSWORD not in line and "-----" not in line
        return line

    fails({k: v for k, v in shop.items() if k != "KAFKA_BROKERS"},
          "KAFKA_BROKERS is not set: this environment holds no Kafka credentials")
    fails({k: v for k, v in shop.items() if not k.startswith("KAFKA_CA")
           and k != "KAFKA_TRUSTSTORE_PATH"},
          "no CA certificate in the environment: none of KAFKA_CA, KAFKA_CA_PATH and "
          "KAFKA_TRUSTSTORE_PATH is set")
    files = env_variant(shop, "files")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, why in ((tmp_path / "nope.key", "No such file or directory"),
                      (tmp_path, "not a regular file"), (fifo, "not a regular file")):
        fails(dict(files, KAFKA_PRIVATE_KEY_PATH=str(path)),
              "cannot read KAFKA_PRIVATE_KEY_PATH (%s): %s" % (path, why))
    fails(dict(files, KAFKA_PRIVATE_KEY_PATH=cart["KAFKA_PRIVATE_KEY_PATH"]),
          "KAFKA_PRIVATE_KEY_PATH (%s): the private key does not belong to the certificate "
          "(KAFKA_CERTIFICATE_PATH)" % cart["KAFKA_PRIVATE_KEY_PATH"])
    fails(dict(files, KAFKA_CA_PATH=files["KAFKA_PRIVATE_KEY_PATH"]),
          "KAFKA_CA_PATH (%s): certificate: not a PEM certificate"
          % files["KAFKA_PRIVATE_KEY_PATH"])
    stores = env_variant(shop, "stores")
    fails(dict(stores, KAFKA_CREDSTORE_PASSWORD="wrong"),
          "KAFKA_KEYSTORE_PATH (%s) with KAFKA_CREDSTORE_PASSWORD: PKCS#12: the password does "
          "not open the store" % stores["KAFKA_KEYSTORE_PATH"])
    fails({k: v for k, v in stores.items() if k != "KAFKA_CREDSTORE_PASSWORD"},
          "KAFKA_KEYSTORE_PATH (%s) is set but KAFKA_CREDSTORE_PASSWORD, its password, is not"
          % stores["KAFKA_KEYSTORE_PATH"])

    # invalid command lines: nothing is tried
    for args, env, why in (
            (("--from-env", "--app", "shop"), shop, "--app does not go with --from-env"),
            (("--from-env", "-n", "team-a"), shop, "-n/--namespace does not go with --from-env"),
            (("--from-env", "--server", world.url), shop, "--server does not go with --from-env"),
            (("-n", "team-a", "--app", "shop", "-t", "team-a.orders"), {},
             "--topic goes with --from-env"),
            ((), {}, "--app APP is required (or --from-env"),
            # an option of the -n/--app mode: no silent switch to the environment
            (("-n", "team-a"), shop, "--app APP is required"),
            (("--from-env", "-t", ""), shop, "--topic needs a topic name")):
        p = kpool("probe", *args, env=env, expect=2)
        assert one_line(p).startswith("kpool probe: " + why), (args, p.stderr)


# --------------------------------------------------------------------------- doctor

def test_doctor_short_name(kpool, world):
    p = kpool("doctor", "-n", "team-a", "--app", "shop", "--topic", "orders", expect=1)
    out = p.stdout
    assert ("  problem: topic orders not found: Kafka knows Topic team-a/orders by its fully "
            "qualified name, not by its resource name\n") in out
    assert ("  fix: use the topic name team-a.orders (status.fullyQualifiedName of Topic "
            "team-a/orders)\n") in out
    # what is fine is said too
    assert "  ok: RolloutComplete; current secret %s (service user %s); pool dev\n" % (
        secret_name("shop"), USERS["shop"]) in out
    assert "  ok: connected to %s over TLS\n" % world.broker.bootstrap in out
    assert "  ok: team-a.orders: exists and is authorized\n" in out
    assert out.endswith("1 problem found.\n")
    # another team's topic by its short name
    p = kpool("doctor", "-n", "team-a", "--app", "shop", "--topic", "payments", expect=1)
    assert "fix: use the topic name team-b.payments" in p.stdout
    # the fully qualified name: nothing wrong
    p = kpool("doctor", "-n", "team-a", "--app", "shop", "--topic", "team-a.orders", expect=0)
    assert "  ok: team-a.orders is the fully qualified name of Topic team-a/orders\n" in p.stdout
    assert "spec.acl grants team team-a, application shop readwrite access" in p.stdout
    assert p.stdout.endswith("No problems found.\n")
    p = kpool("doctor", "-n", "team-a", "--app", "shop", expect=0)
    for fqn, access in (("team-a.events", "readwrite"), ("team-a.orders", "readwrite"),
                        ("team-b.payments", "read")):
        assert "  ok: %s: %s (Topic" % (fqn, access) in p.stdout
        assert "  ok: %s: exists and is authorized\n" % fqn in p.stdout


def test_doctor_qualified_name_that_does_not_exist(kpool, world):
    p = kpool("doctor", "-n", "team-a", "--app", "shop", "--topic", "team-a.order",
              "--no-connect", expect=1)
    out = p.stdout
    assert ("  problem: topic team-a.order does not exist: no Topic has that fully qualified "
            "name (it would be Topic order in namespace team-a)\n") in out
    for name in ("carts", "events", "orders"):
        assert "    Topic team-a/%s: team-a.%s\n" % (name, name) in out
    assert "      apiVersion: kafka.nais.io/v1\n" in out and "        name: order\n" in out
    assert "Pool (" not in out  # --no-connect
    p = kpool("doctor", "-n", "team-a", "--app", "shop", "--topic", "nothing", "--no-connect",
              expect=1)
    assert "there is no Topic nothing in namespace team-a" in p.stdout


def test_doctor_missing_acl(kpool, world):
    p = kpool("doctor", "-n", "team-a", "--app", "cart", "--topic", "team-a.orders", expect=1)
    out = p.stdout
    assert ("  problem: not authorized: no entry of spec.acl of Topic team-a/orders matches "
            "team team-a, application cart\n") in out
    assert "    spec.acl[0]: team team-a, application shop, access readwrite\n" in out
    assert ("  fix: add under spec.acl of Topic team-a/orders, then 'kpool apply -f' it "
            "(-n team-a):\n"
            "      - team: team-a\n"
            "        application: cart\n"
            "        access: readwrite\n") in out
    # the pool agrees (with the app's own credentials), not counted twice
    assert "  note: the pool confirms: team-a.orders not authorized\n" in out
    assert out.endswith("1 problem found.\n")
    # --access picks the access of the suggestion
    p = kpool("doctor", "-n", "team-a", "--app", "cart", "--topic", "team-a.orders",
              "--access", "read", "--no-connect", expect=1)
    assert "        access: read\n" in p.stdout
    # granted by the resource, refused by the pool: the ACLs were not synchronized
    p = kpool("doctor", "-n", "team-a", "--app", "cart", expect=1)
    assert ("  problem: team-a.carts: the pool says not authorized although spec.acl grants "
            "team-a/cart access\n") in p.stdout
    # read granted, write needed
    p = kpool("doctor", "-n", "team-a", "--app", "shop", "--topic", "team-b.payments",
              "--access", "write", "--no-connect", expect=1)
    assert ("problem: not authorized for write: spec.acl of Topic team-b/payments grants team "
            "team-a, application shop only read access") in p.stdout
    assert "        access: readwrite\n" in p.stdout
    # a team token cannot read another team's Topics: the pool decides
    p = kpool("doctor", "--app", "shop", "--topic", "team-b.payments", team=True, expect=0)
    assert "this token reads the Topics of namespace team-a only" in p.stdout
    assert "  ok: team-b.payments: exists and is authorized\n" in p.stdout
    p = kpool("doctor", "--app", "cart", "--topic", "team-b.payments", team=True, expect=1)
    assert ("  problem: team-b.payments: not authorized (TOPIC_AUTHORIZATION_FAILED)\n"
            "  fix: if it exists, the team owning it (namespace team-b) adds under spec.acl of "
            "its Topic payments:\n"
            "      - team: team-a\n"
            "        application: cart\n"
            "        access: readwrite\n") in p.stdout


def test_doctor_secret_missing(kpool, world):
    p = kpool("doctor", "-n", "team-a", "--app", "broken", expect=1)
    out = p.stdout
    assert ("  problem: no secret: the AivenApplication has no synchronized secret "
            "(RolloutFailed)\n") in out
    assert ("    type=AivenFailure status=True reason=ValidatePool: pool \"nope\" does not "
            "exist (pools: dev) (%s)\n" % NOW) in out
    assert "    type=Succeeded status=False reason=ValidatePool: rollout failed" in out
    assert ("  reason: AivenFailure/ValidatePool: pool \"nope\" does not exist (pools: dev)\n"
            in out)
    assert "  fix: set spec.kafka.pool of Application team-a/broken to a pool that exists" in out
    p = kpool("doctor", "-n", "team-a", "--app", "stale", expect=1)
    assert ("  problem: no secret: %s, named by status.synchronizationSecretName, does not "
            "exist\n" % secret_name("stale")) in p.stdout
    p = kpool("doctor", "-n", "team-a", "--app", "ghost", expect=1)
    assert "  problem: AivenApplication team-a/ghost does not exist" in p.stdout
    # the TLS failure and the unreachable pool are diagnosed too
    p = kpool("doctor", "-n", "team-a", "--app", "gone", expect=1)
    assert "  problem: pool unreachable (%s)" % world.secrets["gone"]["KAFKA_BROKERS"] in p.stdout
    kpool("doctor", "-n", "team-a", "--app", "x", "--access", "all", expect=2)


def test_doctor_group_owned_by_another_team(kpool, world):
    # a team-b service user uses group "taken" first: it is team-b's (docs/groups.md)
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata
    cert, key = world.pki._leaf("teamb-pay", "/CN=team-b_pay_0a0b0c0d_1", "client")
    admin = admin_client(world.pki, world.broker)
    principal = "User:CN=team-b_pay_0a0b0c0d_1"
    grant(admin, [acl(principal, "GROUP", "*", "READ"),
                  acl(principal, "TOPIC", "team-b.payments", "READ")])
    admin.close()
    c = KafkaConsumer(bootstrap_servers=world.broker.bootstrap, security_protocol="SSL",
                      ssl_cafile=world.pki.ca, ssl_certfile=cert, ssl_keyfile=key,
                      group_id="taken", enable_auto_commit=False, request_timeout_ms=15000)
    tp = TopicPartition("team-b.payments", 0)
    c.assign([tp])
    c.commit({tp: OffsetAndMetadata(0, "")})
    c.close()
    p = kpool("doctor", "-n", "team-a", "--app", "shop", "--group", "taken", expect=1)
    assert "Consumer group taken:\n" in p.stdout
    assert ("  problem: group taken is owned by another team: the first team that uses a group "
            "id owns it, and the pool refuses it to every other team "
            "(GROUP_AUTHORIZATION_FAILED)\n") in p.stdout, p.stdout
    assert "  fix: use a group id of your own (for example 'team-a.shop')" in p.stdout
    # a namespace's own group may be held under an older kpool's team part (docs/groups.md)
    assert 'see "Users named by an older kpool" there)' in p.stdout, p.stdout
    p = kpool("doctor", "-n", "team-a", "--app", "shop", "-g", "team-a.shop", expect=0)
    assert "  ok: team-a/shop may use group team-a.shop (unused, or its team's)" in p.stdout


# --------------------------------------------------------------------------- produce/consume

def test_produce_consume_round_trip(kpool, world):
    p = kpool("produce", "-n", "team-a", "--app", "shop", "--topic", "orders", "--key-delim",
              ":", stdin="k1:v1\nk2:v:2\nno-key\n\n", expect=0)
    assert one_line(p) == "kpool produce: 4 messages delivered to team-a.orders"
    p = kpool("produce", "-n", "team-a", "--app", "shop", "--topic", "team-a.orders", "-k",
              "fixed", stdin="last", expect=0)
    # no group: partitions read directly
    p = kpool("consume", "-n", "team-a", "--app", "shop", "--topic", "orders",
              "--from-beginning", "-c", "5", "--timeout", "30", "-f", "%k=%s", expect=0)
    assert sorted(p.stdout.splitlines()) == sorted(["k1=v1", "k2=v:2", "=no-key", "=",
                                                    "fixed=last"])
    # a group, joined and committed: a second run of the group starts after the first
    args = ["consume", "-n", "team-a", "--app", "shop", "--topic", "team-a.orders", "--group",
            "g1", "--from-beginning", "-f", "%t %k %s\\n"]
    p = kpool(*args, "-c", "5", "--timeout", "40", expect=0)
    assert sorted(p.stdout.splitlines()) == sorted(
        ["team-a.orders k1 v1", "team-a.orders k2 v:2", "team-a.orders  no-key",
         "team-a.orders  ", "team-a.orders fixed last"])
    p = kpool(*args, "-c", "1", "--timeout", "8", expect=1)
    assert one_line(p) == "kpool consume: 0 of 1 messages received before the timeout"
    # the idle timeout without -c is a normal end
    kpool(*args, "--timeout", "3", expect=0)
    # read access on another team's topic: consume works, produce is refused
    kpool("consume", "-n", "team-a", "--app", "shop", "--topic", "team-b.payments",
          "--from-beginning", "--timeout", "3", expect=0)


def test_produce_consume_refused(kpool, world):
    p = kpool("produce", "-n", "team-a", "--app", "cart", "--topic", "orders", stdin="x\n",
              expect=1)
    assert one_line(p) == ("kpool produce: topic team-a.orders not authorized "
                           "(TOPIC_AUTHORIZATION_FAILED) (see 'kpool doctor --app cart --topic "
                           "team-a.orders')")
    p = kpool("consume", "-n", "team-a", "--app", "cart", "--topic", "team-a.orders",
              "--timeout", "5", expect=1)
    assert "team-a.orders not authorized" in one_line(p)
    p = kpool("produce", "-n", "team-a", "--app", "shop", "--topic", "team-a.nope", stdin="x\n",
              expect=1)
    # Kafka's rule: a topic one may not describe is "not authorized", existing or not
    assert "topic team-a.nope not authorized" in one_line(p)
    p = kpool("produce", "-n", "team-a", "--app", "shop", "--topic", "team-b.payments",
              stdin="x\n", expect=1)
    assert "1 of 1 messages not delivered to team-b.payments" in one_line(p)
    p = kpool("produce", "-n", "team-a", "--app", "broken", "--topic", "orders", stdin="x\n",
              expect=1)
    assert "no secret" in one_line(p)
    kpool("produce", "-n", "team-a", "--app", "shop", "--topic", "x", "-k", "a", "-K", ":",
          expect=2)
    kpool("consume", "-n", "team-a", "--app", "shop", "--topic", "x", "-f", "%q", expect=2)
    kpool("consume", "-n", "team-a", "--app", "shop", expect=2)


# --------------------------------------------------------------------------- help

def test_help_and_usage(kpool):
    for cmd in ("secret", "run", "probe", "doctor", "produce", "consume"):
        p = kpool(cmd, "--help", expect=0)
        assert p.stdout.startswith("Usage: kpool %s" % cmd) and "Exit status" in p.stdout
        p = kpool(cmd, "--bogus", expect=2)
        assert one_line(p).startswith("kpool %s: unknown option '--bogus'" % cmd)
    top = kpool("--help", expect=0).stdout
    for cmd in ("secret", "run", "probe", "doctor", "produce", "consume", "apply", "get"):
        assert "\n  %s " % cmd in top
    assert "SIGKILL" in kpool("run", "--help", expect=0).stdout
