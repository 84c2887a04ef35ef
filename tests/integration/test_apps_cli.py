"""The application-facing CLI (kpool secret, run, probe, doctor, produce, consume) against the
REAL control plane of `kpool up` (issue 7, SPEC §1, §4, §8). test_cli_app.py tests the same
commands against a fake API; here every secret, condition and ACL is the control plane's own.

World (one `kpool up` per module, test_apps.KpoolUp: free ports via --port-offset, KPOOL_CONFIG
in a temp dir, resync 500 ms, janitor grace 1.5 s), namespace `team` (fixture `team`):
  Topic orders   ACL orders-api readwrite, billing read
  Topic ledger   ACL orders-api readwrite, billing read  (the produce/consume round trip)
  Applications   orders-api, billing, intruder (granted nothing), ghost (pool "nosuch":
                 RolloutFailed/ValidatePool, no secret)
Tests that change ACLs use namespaces of their own, so the order of the tests does not matter.

"Pool down" means what an application sees: its secret exists, the brokers do not answer.
`kpool up` runs the embedded pool and the API in one process, so stopping it takes the API too
(probe -n/--app reads the credentials through the API, so it then fails on that, in one line
naming the API: test_probe_acl_missing_in_the_pool_then_control_plane_down). The pool-down case
proper uses a second pool: a bare `kpool broker` (TLS, client certificates required, authorizer
on, the dev pool's CA and admin as super user) declared as Pool `ext` to the same control
plane; an application on it gets credentials, then the broker is killed while the API stays
up, then restarted. "API down, pool up" (what `probe --from-env` is for) is the same pool with
the probe's config pointing at a closed port.

"ACL missing" is tested three ways: an application no Topic grants anything (intruder), an
entry removed from a Topic (the control plane revokes the ACLs), and the ACLs deleted in the
pool behind the control plane's back while spec.acl still grants them (a second `kpool up`
whose resync interval is long, so the drift stays until the test is done).

Acceptance criteria covered (issue 7, "kpool run/probe/doctor" and "team A / team B"):
  1. `kpool run -n team --app billing -- /usr/bin/python3 consumer.py`: the script knows only
     os.environ (KAFKA_BROKERS + *_PATH, PEM and PKCS#12 variants) and consumes in a consumer
     group what `kpool produce --app orders-api` wrote; offsets are committed for the group;
     the variables are exactly the secret's values; the run directory is 0700 with 0600 files.
     A producer script run the same way writes as orders-api and is refused as billing.
  2. `kpool probe`: exit 0 and one "ok" line for healthy apps (also one granted only in
     another team's namespace, probed with its team's token, and a Kafka Streams app); exit 1
     with one line for the pool down (and 0 again once it is back), no ACL entry, a removed
     entry, ACLs missing in the pool, no secret, and the control plane down.
  2b. `kpool probe --from-env` inside `kpool run` (as a pod runs it): the credentials of the
     environment only (PEM values, *_PATH files or the PKCS#12 stores), each --topic checked;
     it passes while the control plane is unreachable (where -n/--app fails), fails in one
     line naming a missing variable, an unreadable file, a topic not authorized, the pool
     down (and passes again once it is back).
  3. `kpool doctor`: the short name (prints team.orders), not authorized (the missing entry
     as YAML; applying exactly that YAML fixes it), the missing secret (conditions and the
     ValidatePool reason), the pool down, ACLs missing in the pool, an app granted nothing;
     a healthy app exits 0.
  4. `kpool secret get|env|files` equal the API's base64 data; files are 0700/0600 and the
     keystore opens with openssl and KAFKA_CREDSTORE_PASSWORD; team-b's token gets 403
     (Forbidden) for team's secret (and run/probe/consume) and no key material is printed.
  5. `kpool produce`/`consume` round trip by app name (keys, --group, --from-beginning, -c N,
     committed offsets, short Topic names), and the authorization refusals.
  6. `kpool up` stops promptly (< 3 s) on Ctrl-C while a pool it manages is down.
"""
import base64
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import time

import pytest
import yaml

import harness
import test_apps as A
from harness import KPOOL_BIN, Broker, free_port
from harness.pki import openssl_pkcs12

# kafka-python 2.0.2 (the ACL drift test deletes ACLs with it) builds its SSL context with the
# deprecated ssl.PROTOCOL_TLS
pytestmark = pytest.mark.filterwarnings("ignore:ssl.PROTOCOL_TLS is deprecated")

PY = "/usr/bin/python3"  # the interpreter that has confluent-kafka
NS = "team"
ORDERS = "team.orders"
LEDGER = "team.ledger"

# the variables `kpool run` sets (SPEC §4)
TEXT_KEYS = {"KAFKA_BROKERS", "KAFKA_CERTIFICATE", "KAFKA_PRIVATE_KEY", "KAFKA_CA",
             "KAFKA_CREDSTORE_PASSWORD", "KAFKA_SCHEMA_REGISTRY", "KAFKA_SCHEMA_REGISTRY_USER",
             "KAFKA_SCHEMA_REGISTRY_PASSWORD", "KAFKA_SECRET_UPDATED"}
PATH_VARS = {"KAFKA_CERTIFICATE_PATH": "KAFKA_CERTIFICATE", "KAFKA_PRIVATE_KEY_PATH":
             "KAFKA_PRIVATE_KEY", "KAFKA_CA_PATH": "KAFKA_CA",
             "KAFKA_KEYSTORE_PATH": "client.keystore.p12",
             "KAFKA_TRUSTSTORE_PATH": "client.truststore.jks"}
FILES = {"kafka.crt": "KAFKA_CERTIFICATE", "kafka.key": "KAFKA_PRIVATE_KEY", "ca.crt": "KAFKA_CA",
         "client.keystore.p12": "client.keystore.p12",
         "client.truststore.jks": "client.truststore.jks"}

# ------------------------------------------------------------------ programs run by `kpool run`

# Knows nothing but its environment (and the topic/group/stop marker on its command line).
CONSUMER_PY = r'''
import hashlib, json, os, sys, time
from confluent_kafka import Consumer

topic, group, stop, variant = sys.argv[1:5]
env = os.environ
conf = {"bootstrap.servers": env["KAFKA_BROKERS"], "security.protocol": "ssl",
        "ssl.ca.location": env["KAFKA_CA_PATH"], "group.id": group,
        "auto.offset.reset": "earliest", "enable.auto.commit": False}
if variant == "pem":
    conf["ssl.certificate.location"] = env["KAFKA_CERTIFICATE_PATH"]
    conf["ssl.key.location"] = env["KAFKA_PRIVATE_KEY_PATH"]
else:
    conf["ssl.keystore.location"] = env["KAFKA_KEYSTORE_PATH"]
    conf["ssl.keystore.password"] = env["KAFKA_CREDSTORE_PASSWORD"]
c = Consumer(conf)
c.subscribe([topic])
got, error = [], None
deadline = time.time() + 30
while time.time() < deadline and stop not in got:
    m = c.poll(0.2)
    if m is None:
        continue
    if m.error():
        if m.error().code() == -191:  # _PARTITION_EOF
            continue
        error = m.error().name()
        break
    got.append(m.value().decode())
if got and not error:
    c.commit(asynchronous=False)
c.close()

def digest(b):
    return hashlib.sha256(b).hexdigest()

out = {"got": got, "error": error,
       "vars": {k: digest(v.encode()) for k, v in env.items() if k.startswith("KAFKA_")}}
for var in ("KAFKA_CERTIFICATE_PATH", "KAFKA_PRIVATE_KEY_PATH", "KAFKA_CA_PATH",
            "KAFKA_KEYSTORE_PATH", "KAFKA_TRUSTSTORE_PATH"):
    with open(env[var], "rb") as f:
        out.setdefault("files", {})[var] = digest(f.read())
    out.setdefault("modes", {})[var] = os.stat(env[var]).st_mode & 0o7777
out["dir"] = os.path.dirname(env["KAFKA_CA_PATH"])
out["dir_mode"] = os.stat(out["dir"]).st_mode & 0o7777
out["dir_files"] = sorted(os.listdir(out["dir"]))
out["pid"] = os.getpid()
print(json.dumps(out))
sys.exit(0 if error is None and stop in got else 1)
'''

PRODUCER_PY = r'''
import json, os, sys
from confluent_kafka import KafkaException, Producer

env = os.environ
mode, topic, values = sys.argv[1], sys.argv[2], sys.argv[3:]
p = Producer({"bootstrap.servers": env["KAFKA_BROKERS"], "security.protocol": "ssl",
              "ssl.ca.location": env["KAFKA_CA_PATH"],
              "ssl.certificate.location": env["KAFKA_CERTIFICATE_PATH"],
              "ssl.key.location": env["KAFKA_PRIVATE_KEY_PATH"],
              "enable.idempotence": mode == "idempotent", "acks": "all",
              "message.timeout.ms": 10000})
errors = []
for v in values:
    p.produce(topic, v.encode(),
              on_delivery=lambda e, m: errors.append(e.name()) if e else None)
try:
    left = p.flush(15)
except KafkaException as e:
    errors.append(e.args[0].name())
    left = -1
print(json.dumps({"errors": errors, "left": left}))
sys.exit(0 if not errors and left == 0 else 1)
'''


# --------------------------------------------------------------------------- helpers

def sha(b):
    return hashlib.sha256(b).hexdigest()


def one_line(p):
    """The single line a failing probe prints on stderr (and nothing on stdout)."""
    assert p.stdout == "", p.stdout
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    return lines[0]


def kpool(up, *args, expect=0, config=None, env=None, input=None, timeout=60, binary=False):
    """`kpool ARGS` as the user of up (its $KPOOL_CONFIG); asserts the exit status and that
    no sanitizer report appeared."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
    e["KPOOL_CONFIG"] = config or up.config
    e.update(env or {})
    p = subprocess.run([KPOOL_BIN] + list(args), capture_output=True, timeout=timeout, env=e,
                       input=input.encode() if isinstance(input, str) else input)
    if not binary:
        p.stdout, p.stderr = p.stdout.decode(), p.stderr.decode()
    err = p.stderr if isinstance(p.stderr, str) else p.stderr.decode(errors="replace")
    assert "Sanitizer" not in err and "runtime error" not in err, err
    if expect is not None:
        assert p.returncode == expect, "kpool %s -> %d (want %d)\n%s\n%s" % (
            " ".join(args), p.returncode, expect, p.stdout, p.stderr)
    return p


def secret_data(up, ns, app):
    """{key: bytes} of the current Secret of ns/app, from the API."""
    s = up.app_secret(ns, app)
    return s["metadata"]["name"], {k: base64.b64decode(v) for k, v in s["data"].items()}


def key_material(data):
    """Strings that must never show up where the secret was not asked for."""
    out = [data["KAFKA_CREDSTORE_PASSWORD"].decode(),
           data["KAFKA_SCHEMA_REGISTRY_PASSWORD"].decode()]
    for k in ("KAFKA_PRIVATE_KEY", "KAFKA_CERTIFICATE"):
        body = [l for l in data[k].decode().splitlines() if l and not l.startswith("-----")]
        out += body
    return out


def topic_ready_gen(up, ns, name, gen_above=0):
    """Waits for Topic ns/name to be RolloutComplete at a generation > gen_above."""
    def ok():
        t = up.get(A.TOPICS, ns, name)
        st = (t or {}).get("status") or {}
        g = t["metadata"]["generation"] if t else 0
        return (t if g > gen_above and st.get("synchronizationState") == "RolloutComplete"
                and st.get("observedGeneration") == g else None)
    return up.wait("topic %s/%s RolloutComplete (generation > %d)" % (ns, name, gen_above), ok)


def run_script(up, tmp_path, app, script, *args, expect=0):
    """`kpool run -n team --app APP -- /usr/bin/python3 SCRIPT ARGS` with $XDG_RUNTIME_DIR in
    tmp_path; (process, its JSON answer)."""
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700, exist_ok=True)
    f = tmp_path / script[0]
    f.write_text(script[1])
    p = kpool(up, "run", "-n", NS, "--app", app, "--", PY, str(f), *args, expect=expect,
              env={"XDG_RUNTIME_DIR": str(xdg)})
    return p, (json.loads(p.stdout) if p.stdout.strip() else None)


# --------------------------------------------------------------------------- fixtures

up = harness.up_fixture(A.KpoolUp)


@pytest.fixture(scope="module")
def team(up, tmp_path_factory):
    """Namespace `team`: Topics orders and ledger, Applications orders-api, billing, intruder
    (all RolloutComplete with a secret) and ghost (pool nosuch: RolloutFailed)."""
    tmp = tmp_path_factory.mktemp("team")
    acl = [{"team": NS, "application": "orders-api", "access": "readwrite"},
           {"team": NS, "application": "billing", "access": "read"}]
    topics = [A.topic_doc(NS, t, acl) for t in ("orders", "ledger")]
    for t in topics:  # one partition: the tests read messages in the order they were written
        t["spec"]["config"]["partitions"] = 1
    up.apply(tmp, *topics,
             *[A.app_doc(NS, a) for a in ("orders-api", "billing", "intruder")],
             A.app_doc(NS, "ghost", pool="nosuch"))
    for t in ("orders", "ledger"):
        up.topic_ready(NS, t)
    for a in ("orders-api", "billing", "intruder"):
        up.app_secret(NS, a)
    up.wait("ghost RolloutFailed", lambda: up.aivenapp_state(NS, "ghost")[1] == "RolloutFailed")
    return tmp


@pytest.fixture(scope="module")
def ext(up, tmp_path_factory):
    """Pool `ext`: a bare `kpool broker` (SSL listener, client certificates required, the
    authorizer on, the dev pool's CA and broker certificate, the control plane's admin as the
    super user), declared to the control plane; Topic team-ext/events and Application
    team-ext/ext-app on it."""
    tmp = tmp_path_factory.mktemp("ext")
    b = Broker(str(tmp / "data"))
    b.extra = {"listeners": "SSL://127.0.0.1:%d" % b.port,
               "ssl.ca.location": os.path.join(up.pki, "ca.crt"),
               "ssl.certificate.location": os.path.join(up.pki, "broker.crt"),
               "ssl.key.location": os.path.join(up.pki, "broker.key"),
               "ssl.client.auth": "required", "authorizer.enabled": "true",
               "super.users": "User:CN=kpool-admin"}
    b.start()
    try:
        pool = {"apiVersion": "kpool.dev/v1", "kind": "Pool", "metadata": {"name": "ext"},
                "spec": {"bootstrapServers": b.bootstrap,
                         "replication": {"min": 1, "max": 1, "default": 1},
                         "tls": {"caLocation": os.path.join(up.pki, "ca.crt"),
                                 "certificateLocation": os.path.join(up.pki, "admin.crt"),
                                 "keyLocation": os.path.join(up.pki, "admin.key"),
                                 "caKeyLocation": os.path.join(up.pki, "ca.key")}}}
        topic = A.topic_doc("team-ext", "events",
                            [{"team": "team-ext", "application": "ext-app", "access": "readwrite"}])
        topic["spec"]["pool"] = "ext"
        up.apply(tmp, pool, topic, A.app_doc("team-ext", "ext-app", pool="ext"))
        up.topic_ready("team-ext", "events")
        up.app_secret("team-ext", "ext-app")
        yield b
        # gone before the broker, so that the control plane does not keep calling a pool that
        # is down (see test_kpool_up_stops_promptly_while_a_pool_is_down)
        if b.proc.poll() is not None:
            b.start()
        for kind, name, ns in (("app", "ext-app", "team-ext"), ("topic", "events", "team-ext"),
                               ("pool", "ext", None)):
            kpool(up, "delete", kind, name, *(["-n", ns] if ns else []))
        up.wait("pool ext gone", lambda: kpool(up, "get", "pool", "ext", expect=None)
                .returncode != 0 and up.get(A.TOPICS, "team-ext", "events") is None)
    finally:
        b.stop()


# --------------------------------------------------------------------------- 1. kpool run

def test_run_consumer_with_only_the_injected_variables(up, team, tmp_path):
    name, data = secret_data(up, NS, "billing")
    marks = ["run-%d-%d" % (os.getpid(), i) for i in range(5)]
    kpool(up, "produce", "-n", NS, "--app", "orders-api", "--topic", ORDERS,
          input="".join(m + "\n" for m in marks))
    for variant in ("pem", "keystore"):
        group = "billing-run-" + variant
        p, out = run_script(up, tmp_path, "billing", ("consumer.py", CONSUMER_PY), ORDERS, group,
                            marks[-1], variant)
        assert out["error"] is None and out["got"][-len(marks):] == marks, (variant, out)
        # the variables are the secret's values, the files its data, private
        assert set(out["vars"]) == TEXT_KEYS | set(PATH_VARS), sorted(out["vars"])
        for k in TEXT_KEYS:
            assert out["vars"][k] == sha(data[k]), k
        for var, key in PATH_VARS.items():
            assert out["files"][var] == sha(data[key]), var
            assert out["modes"][var] == 0o600, (var, oct(out["modes"][var]))
        assert out["dir_mode"] == 0o700
        assert os.path.dirname(out["dir"]) == str(tmp_path / "xdg" / "kpool-run")
        assert out["dir_files"] == sorted(FILES)
        assert not os.path.exists(out["dir"])  # removed when the program ended
    # the group committed its offsets: the next run of the same group reads only what is new
    more = ["run-%d-more-%d" % (os.getpid(), i) for i in range(2)]
    kpool(up, "produce", "-n", NS, "--app", "orders-api", "--topic", ORDERS,
          input="".join(m + "\n" for m in more))
    p, out = run_script(up, tmp_path, "billing", ("consumer.py", CONSUMER_PY), ORDERS,
                        "billing-run-pem", more[-1], "pem")
    assert out["got"] == more, out
    assert not os.path.exists(out["dir"])


def test_run_producer_script_as_writer_and_as_reader(up, team, tmp_path):
    marks = ["prod-%d-%d" % (os.getpid(), i) for i in range(3)]
    p, out = run_script(up, tmp_path, "orders-api", ("producer.py", PRODUCER_PY), "idempotent",
                        ORDERS, *marks)
    assert out == {"errors": [], "left": 0}, out
    c = kpool(up, "consume", "-n", NS, "--app", "billing", "--topic", ORDERS, "--from-beginning",
              "--timeout", "5")
    assert c.stdout.splitlines()[-len(marks):] == marks, c.stdout
    # billing may only read: the same script under its credentials is refused by the pool
    p, out = run_script(up, tmp_path, "billing", ("producer.py", PRODUCER_PY), "plain", ORDERS,
                        "nope", expect=1)
    assert out["errors"] and set(out["errors"]) == {A.AUTHZ}, out
    # idempotently: InitProducerId needs WRITE on some topic (or IDEMPOTENT_WRITE), as in Kafka
    p, out = run_script(up, tmp_path, "billing", ("producer.py", PRODUCER_PY), "idempotent",
                        ORDERS, "nope", expect=1)
    assert out["errors"] == ["CLUSTER_AUTHORIZATION_FAILED"], out
    # no credentials, no run: CMD never starts and the reason is one line
    p = kpool(up, "run", "-n", NS, "--app", "ghost", "--", PY, "-c", "print('ran')", expect=1,
              env={"XDG_RUNTIME_DIR": str(tmp_path / "xdg")})
    assert "ran" not in p.stdout
    assert "ValidatePool" in one_line(p)
    # nothing left behind: the runs that started their program removed their directories
    # when it ended, the one that did not never made one
    assert os.listdir(tmp_path / "xdg") == ["kpool-run"]
    assert os.listdir(tmp_path / "xdg" / "kpool-run") == []


# --------------------------------------------------------------------------- 2. kpool probe

def test_probe_healthy(up, team):
    for app in ("orders-api", "billing"):
        p = kpool(up, "probe", "-n", NS, "--app", app)
        want = "ok: %s/%s reached %s over TLS; 2 topics authorized (%s, %s)\n" % (
            NS, app, up.kafka, LEDGER, ORDERS)
        assert (p.stdout, p.stderr) == (want, ""), (p.stdout, p.stderr)


def test_probe_no_acl_entry_for_the_app(up, team):
    """intruder has credentials but no Topic grants it anything: not a healthy app."""
    p = kpool(up, "probe", "-n", NS, "--app", "intruder", expect=1)
    assert one_line(p) == (
        "kpool probe: team/intruder is not authorized for any topic: no Topic's spec.acl grants "
        "team team, application intruder access (see 'kpool doctor -n team --app intruder "
        "--topic TOPIC')"), p.stderr


def test_probe_app_granted_only_elsewhere_and_streams_app(up, tmp_path):
    """No Topic of its own namespace grants `consumer` anything, a Topic of another team does:
    with its team's token (which cannot read that namespace's Topics) the probe asks the
    pool, which authorizes that topic: healthy. A Kafka Streams app granted no Topic is
    healthy too (its topics are its own prefix)."""
    up.apply(tmp_path, A.topic_doc("team-x", "shared", [
        {"team": "team-y", "application": "consumer", "access": "read"}]),
        A.app_doc("team-y", "consumer"), A.app_doc("team-y", "counter", streams=True))
    up.topic_ready("team-x", "shared")
    up.app_secret("team-y", "consumer")
    up.app_secret("team-y", "counter")
    p = kpool(up, "team", "create", "team-y")
    token = re.search(r"^token: (\S+)$", p.stdout, re.M).group(1)
    p = kpool(up, "probe", "-n", "team-y", "--app", "consumer")  # admin: sees every Topic
    assert p.stdout == "ok: team-y/consumer reached %s over TLS; 1 topic authorized " \
                       "(team-x.shared)\n" % up.kafka, p.stdout
    p = kpool(up, "probe", "-n", "team-y", "--app", "consumer", "--token", token)
    assert p.stdout == ("ok: team-y/consumer reached %s over TLS; no Topic this token can see "
                        "grants it access, the pool authorizes 1 topic (team-x.shared)\n"
                        % up.kafka), p.stdout
    p = kpool(up, "probe", "-n", "team-y", "--app", "counter", "--token", token)
    assert p.stdout == ("ok: team-y/counter reached %s over TLS; 0 topics authorized (a Kafka "
                        "Streams app: its own topics are not checked)\n" % up.kafka), p.stdout


def test_probe_acl_entry_removed(up, tmp_path):
    ns = "team-rm"
    acl = [{"team": ns, "application": "writer", "access": "readwrite"},
           {"team": ns, "application": "reader", "access": "read"}]
    up.apply(tmp_path, A.topic_doc(ns, "feed", acl), A.app_doc(ns, "writer"),
             A.app_doc(ns, "reader"))
    t = up.topic_ready(ns, "feed")
    up.app_secret(ns, "reader")
    p = kpool(up, "probe", "-n", ns, "--app", "reader")
    assert p.stdout.startswith("ok: team-rm/reader reached"), p.stdout
    # the team removes reader's entry: the control plane revokes its ACLs, the probe fails
    up.apply(tmp_path, A.topic_doc(ns, "feed", acl[:1]))
    topic_ready_gen(up, ns, "feed", t["metadata"]["generation"])
    _, data = secret_data(up, ns, "reader")
    d = tmp_path / "reader"
    d.mkdir(mode=0o700)
    files = []
    for f, key in (("ca.crt", "KAFKA_CA"), ("kafka.crt", "KAFKA_CERTIFICATE"),
                   ("kafka.key", "KAFKA_PRIVATE_KEY")):
        (d / f).write_bytes(data[key])
        files.append(str(d / f))
    up.wait("reader's ACLs revoked", lambda: A.raw_metadata(
        up.kafka, files, ["team-rm.feed"])["team-rm.feed"] == A.TOPIC_AUTHORIZATION_FAILED)
    p = kpool(up, "probe", "-n", ns, "--app", "reader", expect=1)
    assert one_line(p).startswith("kpool probe: team-rm/reader is not authorized for any topic"), \
        p.stderr
    # the writer is untouched
    kpool(up, "probe", "-n", ns, "--app", "writer")


def test_probe_pool_down_and_back(up, ext):
    p = kpool(up, "probe", "-n", "team-ext", "--app", "ext-app")
    assert p.stdout == "ok: team-ext/ext-app reached %s over TLS; 1 topic authorized " \
                       "(team-ext.events)\n" % ext.bootstrap, p.stdout
    ext.kill9()
    try:
        # a deadline far above the bound, so that a slow machine cannot blur "at once" and
        # "at the deadline" (it was the default 10 s against a 5 s bound)
        t0 = time.monotonic()
        p = kpool(up, "probe", "-n", "team-ext", "--app", "ext-app", "--timeout", "60", expect=1)
        took = time.monotonic() - t0
        line = one_line(p)
        assert line.startswith("kpool probe: pool unreachable (%s)" % ext.bootstrap), line
        assert "Connection refused" in line, line
        assert took < 30, "a refused connection is reported at once, not at the deadline: %.1fs" % took
        # a resync (every 500 ms) reconciles the AivenApplication against the pool that is down:
        # the rollout fails, but the app keeps the secret of the last one (its credentials still
        # work), so probe still blames the pool, not missing credentials. (The reconciler may
        # first spend a request timeout, 10 s, on each of pool ext and its topic.)
        up.wait("ext-app RolloutFailed", lambda: up.aivenapp_state("team-ext", "ext-app")[1]
                == "RolloutFailed", timeout=120)
        a = up.get(A.AAPPS, "team-ext", "ext-app")
        assert a["status"].get("synchronizationSecretName") == \
            a["spec"]["kafka"]["secretName"], a["status"]
        p = kpool(up, "probe", "-n", "team-ext", "--app", "ext-app", "--timeout", "60", expect=1)
        assert one_line(p).startswith("kpool probe: pool unreachable (%s)" % ext.bootstrap), \
            one_line(p)
        # the failed step's reason is the pool's error, not the Topic's status from before
        cond = a["status"]["conditions"][0]
        assert cond["type"] == "AivenFailure" and "synchronized" not in cond["message"], cond
        # doctor says so, and what to check; the Topic's resync may have failed by now too
        d = kpool(up, "doctor", "-n", "team-ext", "--app", "ext-app", expect=1)
        assert "  problem: the last rollout failed (RolloutFailed); the app still has its " \
               "previous secret %s\n" % a["spec"]["kafka"]["secretName"] in d.stdout, d.stdout
        assert "  problem: pool unreachable (%s)" % ext.bootstrap in d.stdout, d.stdout
        assert "  fix: is the pool running and reachable at %s?" % ext.bootstrap in d.stdout
        problems = [l for l in d.stdout.splitlines() if l.startswith("  problem: ")]
        topic_down = [l for l in problems if l.startswith(
            "  problem: Topic team-ext/events is FailedSynchronization: ")]
        assert len(problems) == 2 + len(topic_down) and len(topic_down) <= 1, d.stdout
        assert d.stdout.endswith("%d problems found.\n" % len(problems)), d.stdout
    finally:
        ext.start()
    # back: healthy again with the same credentials (the broker kept its ACLs and topics)
    up.wait("probe healthy again", lambda: kpool(
        up, "probe", "-n", "team-ext", "--app", "ext-app", expect=None).returncode == 0,
        timeout=60, interval=0.2)


def test_probe_no_secret(up, team):
    p = kpool(up, "probe", "-n", NS, "--app", "ghost", expect=1)
    # (the pools listed depend on whether pool ext exists yet)
    assert re.fullmatch(r'kpool probe: no secret: AivenApplication team/ghost has no '
                        r'synchronized secret \(RolloutFailed\): LocalFailure/ValidatePool: '
                        r'pool "nosuch" does not exist \(pools: dev(, ext)?\)', one_line(p)), p.stderr
    p = kpool(up, "probe", "-n", NS, "--app", "nobody", expect=1)
    assert "no AivenApplication team/nobody" in one_line(p)


# ------------------------------------------------------ 2b. kpool probe --from-env (in the pod)

def run_env(up, tmp_path, ns, app):
    """The KAFKA_* variables `kpool run -n NS --app APP` gives its command. kpool removes the
    files when the command ends, so the command copies them (to tmp_path/creds-APP) first and
    the *_PATH variables are pointed at the copies."""
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700, exist_ok=True)
    keep = tmp_path / ("creds-" + app)
    keep.mkdir(mode=0o700)
    p = kpool(up, "run", "-n", ns, "--app", app, "--", "/bin/sh", "-c",
              'cp -p "${KAFKA_CA_PATH%/*}"/* "$0" && exec /usr/bin/env -0', str(keep),
              env={"XDG_RUNTIME_DIR": str(xdg)})
    pairs = (v.split("=", 1) for v in p.stdout.split("\0") if v)
    env = {k: v for k, v in pairs if k.startswith("KAFKA_")}
    for k, v in env.items():
        if k.endswith("_PATH"):
            assert not os.path.exists(v), v  # removed by kpool run
            env[k] = str(keep / os.path.basename(v))
    return env


def service_user(up, ns, app):
    return up.app_secret(ns, app)["metadata"]["annotations"]["kpool.dev/service-user"]


def env_ok(user, brokers, rest):
    """The line a healthy `kpool probe --from-env` prints."""
    return "ok: CN=%s reached %s over TLS (credentials from the environment); %s\n" % (
        user, brokers, rest)


def in_run(up, tmp_path, app, *probe_args, expect=0):
    """`kpool run -n team --app APP -- kpool probe PROBE_ARGS`: the probe as a pod runs it."""
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700, exist_ok=True)
    p = kpool(up, "run", "-n", NS, "--app", app, "--", KPOOL_BIN, "probe", *probe_args,
              expect=expect, env={"XDG_RUNTIME_DIR": str(xdg)})
    _, data = secret_data(up, NS, app)
    for m in key_material(data):
        assert m not in p.stdout and m not in p.stderr
    return p


def test_probe_from_env_inside_kpool_run(up, team, tmp_path):
    p = in_run(up, tmp_path, "orders-api", "--from-env", "--topic", ORDERS)
    assert (p.stdout, p.stderr) == (env_ok(service_user(up, NS, "orders-api"), up.kafka,
                                           "1 topic authorized (team.orders)"), "")
    # billing reads team.orders; a topic of another team it may not even describe
    up.apply(tmp_path, A.topic_doc("team-env", "vault", [
        {"team": "team-env", "application": "keeper", "access": "readwrite"}]))
    up.topic_ready("team-env", "vault")
    p = in_run(up, tmp_path, "billing", "--from-env", "--topic", ORDERS, "--topic",
               "team-env.vault", expect=1)
    assert one_line(p) == ("kpool probe: topic team-env.vault not authorized "
                           "(TOPIC_AUTHORIZATION_FAILED)")
    # neither --from-env nor --app under `kpool run` (KAFKA_BROKERS set): --from-env; without
    # --topic it lists what the pool lets the credentials see
    p = in_run(up, tmp_path, "billing")
    m = re.fullmatch(re.escape(env_ok(service_user(up, NS, "billing"), up.kafka, "@"))
                     .replace("@", r"the pool authorizes 2 topics \((.*)\)"), p.stdout)
    assert m and sorted(m.group(1).split(", ")) == [LEDGER, ORDERS], p.stdout
    # an application no Topic grants anything: not healthy
    p = in_run(up, tmp_path, "intruder", "--from-env", expect=1)
    assert one_line(p) == ("kpool probe: CN=%s is not authorized for any topic in the pool at %s: "
                           "no Topic's spec.acl grants this application access (see 'kpool "
                           "doctor -n TEAM --app APP')" % (service_user(up, NS, "intruder"),
                                                           up.kafka))


def test_probe_from_env_without_the_control_plane(up, ext, tmp_path):
    """The probe a pod runs needs the pool, not the control plane. `kpool up` runs both in one
    process, so the API is made unreachable for the probe instead: a config whose server is a
    closed port. The pool is `ext`, a broker of its own, so it can then go down alone."""
    env = run_env(up, tmp_path, "team-ext", "ext-app")
    _, data = secret_data(up, "team-ext", "ext-app")
    secrets = key_material(data)
    dead = "127.0.0.1:%d" % free_port()
    cfg = yaml.safe_load(open(up.config))
    cfg["server"] = "http://" + dead
    config = tmp_path / "api-down.yaml"
    config.write_text(yaml.safe_dump(cfg))

    def probe(*args, env=env, expect=0):
        p = kpool(up, "probe", *args, config=str(config), env=env, expect=expect)
        for m in secrets:
            assert m not in p.stdout and m not in p.stderr
        return p

    # the control plane's view fails: it cannot be asked
    p = probe("-n", "team-ext", "--app", "ext-app", env={}, expect=1)
    assert one_line(p).startswith("kpool probe: ") and dead in one_line(p), p.stderr
    # the application's view passes, in every form it may have its credentials
    want = env_ok(service_user(up, "team-ext", "ext-app"), ext.bootstrap,
                  "1 topic authorized (team-ext.events)")
    for args in (("--from-env", "--topic", "team-ext.events"), ("-t", "team-ext.events")):
        p = probe(*args)
        assert (p.stdout, p.stderr) == (want, ""), args
    for keep in ({"KAFKA_CERTIFICATE_PATH", "KAFKA_PRIVATE_KEY_PATH", "KAFKA_CA_PATH"},
                 {"KAFKA_KEYSTORE_PATH", "KAFKA_TRUSTSTORE_PATH", "KAFKA_CREDSTORE_PASSWORD"}):
        p = probe("--from-env", "-t", "team-ext.events",
                  env={k: v for k, v in env.items() if k in keep | {"KAFKA_BROKERS"}})
        assert p.stdout == want, keep
    p = probe("--from-env")
    assert p.stdout == env_ok(service_user(up, "team-ext", "ext-app"), ext.bootstrap,
                              "the pool authorizes 1 topic (team-ext.events)"), p.stdout
    # what is wrong with the environment is named
    p = probe("--from-env", env={k: v for k, v in env.items() if k != "KAFKA_BROKERS"}, expect=1)
    assert one_line(p).startswith("kpool probe: KAFKA_BROKERS is not set"), p.stderr
    gone = str(tmp_path / "gone" / "ca.crt")
    p = probe("--from-env", env={k: v for k, v in dict(env, KAFKA_CA_PATH=gone).items()
                                 if k != "KAFKA_CA"}, expect=1)
    assert one_line(p) == ("kpool probe: cannot read KAFKA_CA_PATH (%s): No such file or "
                           "directory" % gone), p.stderr
    # the pool down: said at once, and healthy again once it is back
    ext.kill9()
    try:
        t0 = time.monotonic()
        p = probe("--from-env", "-t", "team-ext.events", "--timeout", "60", expect=1)
        took = time.monotonic() - t0
        line = one_line(p)
        assert line.startswith("kpool probe: pool unreachable (%s): " % ext.bootstrap), line
        assert "Connection refused" in line, line
        assert took < 30, "a refused connection is reported at once (deadline 60 s): %.1fs" % took
    finally:
        ext.start()
    up.wait("probe --from-env healthy again", lambda: probe(
        "--from-env", "-t", "team-ext.events", expect=None).returncode == 0, timeout=60,
        interval=0.2)


@pytest.fixture
def up2(tmp_path):
    """A second `kpool up` whose control plane does not resync for 10 minutes: drift made in
    the pool behind its back stays."""
    k = A.KpoolUp(extra_args=["--set", "control.resync.interval.ms=600000"]).start()
    try:
        yield k
    finally:
        k.stop()


def delete_acls_of(k, principal):
    """Deletes every ACL of principal in k's pool, as the super user (kafka-python)."""
    from kafka.admin import (ACLFilter, ACLOperation, ACLPermissionType,
                             ACLResourcePatternType, KafkaAdminClient, ResourcePatternFilter,
                             ResourceType)
    ca, cert, key = k.admin_files()
    admin = KafkaAdminClient(bootstrap_servers=k.kafka, security_protocol="SSL", ssl_cafile=ca,
                             ssl_certfile=cert, ssl_keyfile=key, ssl_check_hostname=False,
                             request_timeout_ms=20000)
    try:
        f = ACLFilter(principal=principal, host="*", operation=ACLOperation.ANY,
                      permission_type=ACLPermissionType.ANY,
                      resource_pattern=ResourcePatternFilter(ResourceType.ANY, None,
                                                             ACLResourcePatternType.ANY))
        res = admin.delete_acls([f])
        (_, deleted, err), = res
        assert err.errno == 0, err
        return deleted
    finally:
        admin.close()


def test_probe_acl_missing_in_the_pool_then_control_plane_down(up2, tmp_path):
    ns = "team-drift"
    up2.apply(tmp_path, A.topic_doc(ns, "feed", [
        {"team": ns, "application": "reader", "access": "read"}]), A.app_doc(ns, "reader"))
    up2.topic_ready(ns, "feed")
    secret = up2.app_secret(ns, "reader")
    c = up2.creds(secret)
    kpool(up2, "probe", "-n", ns, "--app", "reader")
    # the ACLs vanish from the pool; spec.acl still grants them
    deleted = delete_acls_of(up2, "User:CN=" + c.user)
    assert deleted, "reader had no ACLs to delete"
    assert A.raw_metadata(up2.kafka, c.files(), [ns + ".feed"]) == {
        ns + ".feed": A.TOPIC_AUTHORIZATION_FAILED}
    p = kpool(up2, "probe", "-n", ns, "--app", "reader", expect=1)
    assert one_line(p) == ("kpool probe: topic team-drift.feed not authorized "
                           "(TOPIC_AUTHORIZATION_FAILED)")
    d = kpool(up2, "doctor", "-n", ns, "--app", "reader", expect=1)
    assert ("  problem: team-drift.feed: the pool says not authorized although spec.acl grants "
            "team-drift/reader access\n") in d.stdout, d.stdout
    # `kpool up` stopped: pool AND control plane down. probe needs the API for the
    # credentials, so it fails on that, in one line naming the server
    config = tmp_path / "config.yaml"
    shutil.copy(up2.config, config)
    api = up2.api_url
    up2.stop()
    t0 = time.monotonic()
    p = kpool(up2, "probe", "-n", ns, "--app", "reader", expect=1, config=str(config))
    line = one_line(p)
    assert line.startswith("kpool probe: ") and api in line, line
    assert time.monotonic() - t0 < 10


# --------------------------------------------------------------------------- 3. kpool doctor

def test_doctor_short_topic_name(up, team):
    p = kpool(up, "doctor", "-n", NS, "--app", "orders-api", "--topic", "orders", expect=1)
    out = p.stdout
    assert ("  problem: topic orders not found: Kafka knows Topic team/orders by its fully "
            "qualified name, not by its resource name\n") in out, out
    fqn = up.get(A.TOPICS, NS, "orders")["status"]["fullyQualifiedName"]
    assert fqn == ORDERS
    assert ("  fix: use the topic name team.orders (status.fullyQualifiedName of Topic "
            "team/orders)\n") in out, out
    assert out.endswith("1 problem found.\n"), out
    # following the fix: no problem left
    p = kpool(up, "doctor", "-n", NS, "--app", "orders-api", "--topic", ORDERS)
    assert "  ok: team.orders is the fully qualified name of Topic team/orders\n" in p.stdout
    assert "  ok: team.orders: exists and is authorized\n" in p.stdout
    assert p.stdout.endswith("No problems found.\n"), p.stdout


def acl_yaml_after_fix(out):
    """The YAML block doctor prints after its 'fix: add under spec.acl' line."""
    lines = out.splitlines()
    i = next(i for i, l in enumerate(lines) if l.startswith("  fix: add under spec.acl"))
    block = []
    for l in lines[i + 1:]:
        if not l.startswith("      "):
            break
        block.append(l[6:])
    return "\n".join(block) + "\n"


def test_doctor_not_authorized_shows_the_yaml_to_add(up, team):
    p = kpool(up, "doctor", "-n", NS, "--app", "intruder", "--topic", ORDERS, expect=1)
    out = p.stdout
    assert ("  problem: not authorized: no entry of spec.acl of Topic team/orders matches team "
            "team, application intruder\n") in out, out
    assert "    spec.acl[0]: team team, application orders-api, access readwrite\n" in out
    assert "    spec.acl[1]: team team, application billing, access read\n" in out
    assert "  note: the pool confirms: team.orders not authorized\n" in out, out
    text = acl_yaml_after_fix(out)
    assert yaml.safe_load(text) == [{"team": NS, "application": "intruder",
                                     "access": "readwrite"}], text
    assert "application: intruder" in text and "team: team" in text
    # --access read narrows the suggestion
    p = kpool(up, "doctor", "-n", NS, "--app", "intruder", "--topic", ORDERS, "--access", "read",
              expect=1)
    assert yaml.safe_load(acl_yaml_after_fix(p.stdout)) == [
        {"team": NS, "application": "intruder", "access": "read"}], p.stdout
    # billing has read only: asking for write shows the widened entry
    p = kpool(up, "doctor", "-n", NS, "--app", "billing", "--topic", ORDERS, "--access", "write",
              expect=1)
    assert ("not authorized for write: spec.acl of Topic team/orders grants team team, "
            "application billing only read access") in p.stdout, p.stdout
    assert yaml.safe_load(acl_yaml_after_fix(p.stdout)) == [
        {"team": NS, "application": "billing", "access": "readwrite"}], p.stdout


def test_doctor_fix_applied_verbatim_grants_access(up, tmp_path):
    """The YAML doctor prints, appended to spec.acl as it is, makes doctor, probe and a
    produce succeed, without redeploying the app."""
    ns = "team-doc"
    topic = A.topic_doc(ns, "audit", [{"team": ns, "application": "owner", "access": "readwrite"}])
    up.apply(tmp_path, topic, A.app_doc(ns, "owner"), A.app_doc(ns, "auditor"))
    t = up.topic_ready(ns, "audit")
    name = up.app_secret(ns, "auditor")["metadata"]["name"]
    p = kpool(up, "doctor", "-n", ns, "--app", "auditor", "--topic", "audit", expect=1)
    kpool(up, "produce", "-n", ns, "--app", "auditor", "--topic", "team-doc.audit", input="x\n",
          expect=1)
    topic["spec"]["acl"] += yaml.safe_load(acl_yaml_after_fix(p.stdout))
    up.apply(tmp_path, topic)
    topic_ready_gen(up, ns, "audit", t["metadata"]["generation"])
    p = kpool(up, "doctor", "-n", ns, "--app", "auditor", "--topic", "team-doc.audit")
    assert p.stdout.endswith("No problems found.\n"), p.stdout
    kpool(up, "probe", "-n", ns, "--app", "auditor")
    kpool(up, "produce", "-n", ns, "--app", "auditor", "--topic", "team-doc.audit", input="y\n")
    # the same credentials: no redeploy was needed
    assert up.app_secret(ns, "auditor")["metadata"]["name"] == name


def test_doctor_secret_missing_shows_conditions_and_reason(up, team):
    p = kpool(up, "doctor", "-n", NS, "--app", "ghost", expect=1)
    out = p.stdout
    a = up.get(A.AAPPS, NS, "ghost")
    (cond,) = a["status"]["conditions"]
    assert (cond["type"], cond["status"], cond["reason"]) == ("LocalFailure", "True",
                                                              "ValidatePool"), cond
    assert ("  problem: no secret: the AivenApplication has no synchronized secret "
            "(RolloutFailed)\n") in out, out
    assert "  conditions:\n    type=LocalFailure status=True reason=ValidatePool: %s (%s)\n" % (
        cond["message"], cond["lastUpdateTime"]) in out, out
    assert 'pool "nosuch" does not exist' in cond["message"]
    assert "  reason: LocalFailure/ValidatePool: %s\n" % cond["message"] in out, out
    assert ("  fix: set spec.kafka.pool of Application team/ghost to a pool that exists ('kpool "
            "get pools'), then apply it again\n") in out, out
    # no pool check without a secret
    assert "Pool (with" not in out


def test_doctor_healthy_app(up, team):
    for app in ("orders-api", "billing"):
        p = kpool(up, "doctor", "-n", NS, "--app", app)
        out = p.stdout
        assert "  ok: RolloutComplete; current secret aiven-kafka-%s-" % app in out, out
        assert "  ok: %s: exists and is authorized\n" % ORDERS in out
        assert "  ok: connected to %s over TLS\n" % up.kafka in out
        assert out.endswith("No problems found.\n"), out
        assert "  problem:" not in out


def test_doctor_app_granted_nothing(up, team):
    """What probe refuses (test_probe_no_acl_entry_for_the_app) doctor must not call fine."""
    p = kpool(up, "doctor", "-n", NS, "--app", "intruder", expect=1)
    out = p.stdout
    assert "  note: no Topic grants team team, application intruder access" in out, out
    assert "  ok: connected to %s over TLS\n" % up.kafka in out, out
    assert "  problem: team/intruder is not authorized for any topic in the pool\n" in out, out
    assert ("  fix: each Topic team/intruder uses must list it under spec.acl (its owning team "
            "applies it); 'kpool doctor -n team --app intruder --topic NAME' prints the entry "
            "to add\n") in out, out
    assert out.endswith("1 problem found.\n"), out


# --------------------------------------------------------------------------- 4. kpool secret

def parse_secret_get(text):
    """`kpool secret get` output -> {key: str} ("<N bytes>" for binary keys)."""
    out, key, block = {}, None, None
    for line in text.splitlines():
        if block is not None and line.startswith("    "):
            block.append(line[4:])
            continue
        if block is not None:
            out[key] = "\n".join(block) + "\n"
            block = None
        k, _, v = line.partition(": ")
        if v == "|":
            key, block = k, []
        else:
            out[k] = v
    if block is not None:
        out[key] = "\n".join(block) + "\n"
    return out


def test_secret_get(up, team):
    name, data = secret_data(up, NS, "orders-api")
    p = kpool(up, "secret", "get", "-n", NS, name)
    got = parse_secret_get(p.stdout)
    assert set(got) == set(data), (sorted(got), sorted(data))
    for k, v in data.items():
        if k.endswith(".p12") or k.endswith(".jks"):
            assert got[k] == "<%d bytes>" % len(v), k
        else:
            assert got[k] == v.decode(), k
    # one key, raw: binary included
    for k in ("client.keystore.p12", "KAFKA_PRIVATE_KEY", "KAFKA_BROKERS"):
        p = kpool(up, "secret", "get", "-n", NS, name, k, binary=True)
        assert p.stdout == data[k], k
    p = kpool(up, "secret", "get", "-n", NS, name, "NOPE", expect=1)
    assert "has no key NOPE" in p.stderr and p.stdout == ""
    p = kpool(up, "secret", "get", "-n", NS, "aiven-kafka-nosuch", expect=1)
    assert p.stderr == "kpool secret get: secret team/aiven-kafka-nosuch not found\n", p.stderr


def test_secret_env_evaluated_by_bash(up, team):
    name, data = secret_data(up, NS, "billing")
    script = ('eval "$(%s secret env -n %s %s)" || exit 9; exec %s -c '
              '"import json, os; print(json.dumps({k: v for k, v in os.environ.items() '
              'if k.startswith(\'KAFKA_\')}))"' % (KPOOL_BIN, NS, name, PY))
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
    env["KPOOL_CONFIG"] = up.config
    p = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    want = {k: v.decode() for k, v in data.items() if k.startswith("KAFKA_")}
    assert set(want) == TEXT_KEYS
    assert got == want
    # the stores are named in a comment, not exported
    p = kpool(up, "secret", "env", "-n", NS, name)
    comments = [l for l in p.stdout.splitlines() if l.startswith("#")]
    assert len(comments) == 1 and "client.keystore.p12" in comments[0], comments


def test_secret_files(up, team, tmp_path):
    name, data = secret_data(up, NS, "orders-api")
    d = tmp_path / "creds"
    p = kpool(up, "secret", "files", "-n", NS, name, str(d))
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    assert sorted(os.listdir(d)) == sorted(FILES)
    for f, key in FILES.items():
        st = os.stat(d / f)
        assert stat.S_IMODE(st.st_mode) == 0o600, (f, oct(st.st_mode))
        assert (d / f).read_bytes() == data[key], f
    # the output is export lines of the paths, for eval; no values
    for m in key_material(data):
        assert m not in p.stdout and m not in p.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
    r = subprocess.run(["bash", "-c", p.stdout + '\nenv'], capture_output=True, text=True,
                       env=env, check=True)
    paths = dict(l.split("=", 1) for l in r.stdout.splitlines() if l.startswith("KAFKA_"))
    assert paths == {var: str(d.resolve() / f) for f, key in FILES.items()
                     for var, k in PATH_VARS.items() if k == key}, paths
    password = data["KAFKA_CREDSTORE_PASSWORD"].decode()
    r = openssl_pkcs12(paths["KAFKA_KEYSTORE_PATH"], password, "-nokeys", "-clcerts")
    assert r.returncode == 0, r.stderr
    assert data["KAFKA_CERTIFICATE"].decode().strip() in r.stdout
    r = openssl_pkcs12(paths["KAFKA_KEYSTORE_PATH"], password, "-nocerts")
    assert r.returncode == 0 and "PRIVATE KEY" in r.stdout, r.stderr
    r = openssl_pkcs12(paths["KAFKA_TRUSTSTORE_PATH"], password, "-nokeys")
    assert r.returncode == 0 and data["KAFKA_CA"].decode().strip() in r.stdout, r.stderr
    assert openssl_pkcs12(paths["KAFKA_KEYSTORE_PATH"], password + "x", "-nokeys").returncode != 0
    # again into the same (private) directory: replaced, same content
    kpool(up, "secret", "files", "-n", NS, name, str(d))
    assert (d / "kafka.key").read_bytes() == data["KAFKA_PRIVATE_KEY"]
    # a directory others can read is refused, nothing written
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    p = kpool(up, "secret", "files", "-n", NS, name, str(shared), expect=1)
    assert "accessible by others" in p.stderr and os.listdir(shared) == [], p.stderr


def test_secret_of_team_not_readable_with_team_b_token(up, team, tmp_path):
    name, data = secret_data(up, NS, "billing")
    p = kpool(up, "team", "create", "team-b")
    m = re.search(r"^token: ([0-9a-f]{32,})$", p.stdout, re.M)
    assert m, p.stdout
    token = m.group(1)
    secret_dir = tmp_path / "stolen"
    refused = [
        ("secret", "get", "-n", NS, name),
        ("secret", "get", "-n", NS, name, "KAFKA_PRIVATE_KEY"),
        ("secret", "env", "-n", NS, name),
        ("secret", "files", "-n", NS, name, str(secret_dir)),
        ("run", "-n", NS, "--app", "billing", "--", PY, "-c", "print('ran')"),
        ("probe", "-n", NS, "--app", "billing"),
        ("consume", "-n", NS, "--app", "billing", "--topic", ORDERS, "--from-beginning"),
    ]
    secrets = key_material(data)
    for args in refused:
        p = kpool(up, args[0], "--token", token, *args[1:], expect=1,
                  env={"XDG_RUNTIME_DIR": str(tmp_path)})
        assert p.stdout == "", (args, p.stdout)
        # kubectl's wording of a 403
        assert "Error from server (Forbidden)" in p.stderr, (args, p.stderr)
        assert len(p.stderr.splitlines()) == 1, (args, p.stderr)
        for s in secrets:
            assert s not in p.stderr, args
    assert not secret_dir.exists() or os.listdir(secret_dir) == []
    assert [f for f in os.listdir(tmp_path) if f.startswith("kpool-")] == []
    # the token itself works: team-b deploys an app and reads its own secret
    up.apply(tmp_path, A.app_doc("team-b", "own"))
    own, own_data = secret_data(up, "team-b", "own")
    p = kpool(up, "secret", "get", "-n", "team-b", own, "KAFKA_CREDSTORE_PASSWORD",
              "--token", token)
    assert p.stdout == own_data["KAFKA_CREDSTORE_PASSWORD"].decode()
    # and the admin reads team's
    p = kpool(up, "secret", "get", "-n", NS, name, "KAFKA_CREDSTORE_PASSWORD")
    assert p.stdout == data["KAFKA_CREDSTORE_PASSWORD"].decode()


# --------------------------------------------------------------------------- 5. produce/consume

def test_produce_consume_round_trip(up, team):
    tag = "rt%d" % os.getpid()
    lines = ["%s-k%d:%s-v%d" % (tag, i, tag, i) for i in range(3)]
    p = kpool(up, "produce", "-n", NS, "--app", "orders-api", "--topic", LEDGER, "-K", ":",
              input="\n".join(lines) + "\n")
    assert "3 messages delivered to team.ledger" in p.stderr, p.stderr
    group = "billing-" + tag
    p = kpool(up, "consume", "-n", NS, "--app", "billing", "--topic", LEDGER, "--group", group,
              "--from-beginning", "-c", "3", "-f", "%k=%s %t", "--timeout", "20")
    assert p.stdout.splitlines() == [l.replace(":", "=") + " " + LEDGER for l in lines], p.stdout
    # the group committed: nothing left for it
    p = kpool(up, "consume", "-n", NS, "--app", "billing", "--topic", LEDGER, "--group", group,
              "--from-beginning", "-c", "1", "--timeout", "4", expect=1)
    assert p.stdout == ""
    assert "0 of 1 messages received before the timeout" in p.stderr, p.stderr
    # more, by the Topic's short name (resolved to its fully qualified name), one key for all
    kpool(up, "produce", "-n", NS, "--app", "orders-api", "--topic", "ledger", "-k", "K",
          input="%s-a\n%s-b\n" % (tag, tag))
    p = kpool(up, "consume", "-n", NS, "--app", "billing", "--topic", "ledger", "--group", group,
              "-c", "2", "-f", "%k %s", "--timeout", "20")
    assert p.stdout.splitlines() == ["K %s-a" % tag, "K %s-b" % tag], p.stdout
    # billing may not write, intruder may not read: one line each, naming the topic
    p = kpool(up, "produce", "-n", NS, "--app", "billing", "--topic", LEDGER, input="no\n",
              expect=1)
    assert one_line(p).startswith("kpool produce: topic team.ledger not authorized for writing "
                                  "(CLUSTER_AUTHORIZATION_FAILED: an idempotent producer needs "
                                  "write access to a topic): "), p.stderr
    assert p.stderr.endswith("(see 'kpool doctor --app billing --topic team.ledger --access "
                             "write')\n"), p.stderr
    p = kpool(up, "consume", "-n", NS, "--app", "intruder", "--topic", LEDGER,
              "--from-beginning", "--timeout", "5", expect=1)
    assert p.stdout == ""
    assert "team.ledger not authorized (TOPIC_AUTHORIZATION_FAILED)" in p.stderr, p.stderr


# --------------------------------------------------------------------------- stopping

class SlowStop(AssertionError):
    """kpool up took too long to stop."""


def test_kpool_up_stops_promptly_while_a_pool_is_down(tmp_path):
    k = A.KpoolUp().start()
    b = Broker(str(tmp_path / "data"))
    try:
        b.extra = {"listeners": "SSL://127.0.0.1:%d" % b.port,
                   "ssl.ca.location": os.path.join(k.pki, "ca.crt"),
                   "ssl.certificate.location": os.path.join(k.pki, "broker.crt"),
                   "ssl.key.location": os.path.join(k.pki, "broker.key"),
                   "ssl.client.auth": "required", "authorizer.enabled": "true",
                   "super.users": "User:CN=kpool-admin"}
        b.start()
        k.apply(tmp_path, {"apiVersion": "kpool.dev/v1", "kind": "Pool",
                           "metadata": {"name": "ext"},
                           "spec": {"bootstrapServers": b.bootstrap,
                                    "tls": {"caLocation": os.path.join(k.pki, "ca.crt"),
                                            "certificateLocation": os.path.join(k.pki, "admin.crt"),
                                            "keyLocation": os.path.join(k.pki, "admin.key")}}})
        k.wait("pool ext Ready", lambda: ((k.http("GET", "/apis/kpool.dev/v1/pools/ext",
                                                  token=k.token)[2] or {}).get("status") or {})
               .get("state") == "Ready")
        b.kill9()
        time.sleep(1.5)  # a resync (every 500 ms) has started a call to the pool that is down
    finally:
        t0 = time.monotonic()
        k.stop()  # asserts a clean exit (status 0, no sanitizer report)
        took = time.monotonic() - t0
        b.stop()
    if took >= 3:
        raise SlowStop("kpool up took %.1f s to stop on Ctrl-C while pool ext is down" % took)
