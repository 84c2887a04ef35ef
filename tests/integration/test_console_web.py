"""The web console end to end (SPEC §14, docs/console.md): `kpool up` serves it at `/` of the
API address; Debian's headless Chromium, driven by playwright-core (web/console_e2e.js), signs
in and reads what real Kafka clients wrote.

Covered (each a step of console_e2e.js): only the sign-in page without a token; a bad token
is refused with a message; team A sees its topics (RolloutComplete, and a failing Topic's
FailedPrepare message) and its application (service user, certificate expiry, topics
granted), and not team B's; the token is in sessionStorage and never in a URL;
the topic page shows the ACL, the partitions, a consumer group's lag and the messages a
producer wrote (JSON pretty-printed, binary as hex, an Avro record decoded through the
registry), also from an offset; the team's schema subjects with a diff between versions; Tab reaches the
controls; no horizontal scrolling at phone width; team B's namespace is refused; sign out;
a token revoked while signed in sends the user back to sign-in with a message; the admin
picks any team and sees the pools and backups; an unreachable control plane is said so; no request leaves the origin.
Screenshots land in $KPOOL_ARTIFACTS/console (default build/artifacts/console).
"""
import os
import subprocess
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition

import harness
import test_control as T
from test_console_api import ORDER_V1, ORDER_V2, avro_string, framed, register, zigzag
from test_control import TOPICS_PATH, topic_doc

HERE = os.path.dirname(os.path.abspath(__file__))
WEB = os.path.join(HERE, "web")
ROOT = os.path.dirname(os.path.dirname(HERE))
CHROMIUM = "/usr/bin/chromium"
APPS = "/apis/nais.io/v1alpha1/namespaces/%s/applications"
AAPPS = "/apis/aiven.nais.io/v1/namespaces/%s/aivenapplications"



# the pools' history sampled every second (default 10 s), so charts fill within the test
up = harness.up_fixture(lambda: T.KpoolUp(settings={"control.console.metrics.interval.ms": 1000}))


def team(up, name):
    code, _, body = up.api("POST", "/apis/kpool.dev/v1/teams", {"name": name})
    assert code == 201, body
    return body["token"]


def produce_more(up):
    """Five more records on partition 0 while the browser watches: the group's lag grows."""
    p = Producer(dict(up.ssl_conf(), acks="all"))
    for i in range(5):
        p.produce("web-a.orders", b"more %d" % i, partition=0)
    assert p.flush(30) == 0


def run_e2e(env, answers, timeout=120):
    """Runs console_e2e.js; a line "ask: X" on its stdout runs answers[X]() and then writes
    "ok" to its stdin (how the browser test asks for something only a Kafka client does).
    Returns (stdout, stderr, exit status); killed after timeout seconds."""
    proc = subprocess.Popen(["node", os.path.join(WEB, "console_e2e.js")], env=env, cwd=WEB,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    out = []
    try:
        for line in proc.stdout:
            out.append(line)
            if line.startswith("ask: "):
                answers[line[5:].strip()]()
                proc.stdin.write("ok\n")
                proc.stdin.flush()
        err = proc.stderr.read()
        proc.wait()
    finally:
        killer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return "".join(out), err, proc.returncode


def test_console_end_to_end(up, tmp_path):
    # not a skip: `make test` installs both first, and a missing browser must not pass
    assert os.path.exists(CHROMIUM) and os.path.isdir(os.path.join(WEB, "node_modules")), \
        "needs Debian's chromium and `npm ci` in tests/integration/web: run scripts/install-deps.sh"
    tok_a, tok_c = team(up, "web-a"), team(up, "web-c")
    team(up, "web-b")
    for ns, name, cfg in (("web-a", "orders", {"partitions": 2}), ("web-b", "payroll", None),
                          ("web-a", "broken", {"replication": 3})):
        code, _, body = up.api("PUT", TOPICS_PATH % ns + "/" + name, topic_doc(ns, name, cfg))
        assert code == 201, body
    # an application granted readwrite on orders (topic_doc's ACL names application "app")
    code, _, body = up.api("PUT", APPS % "web-a" + "/app", {
        "apiVersion": "nais.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "app", "namespace": "web-a"},
        "spec": {"image": "ghcr.io/navikt/app:1", "kafka": {"pool": "dev"}}})
    assert code == 201, body
    up.wait_status("web-a", "orders", "RolloutComplete")
    up.wait_status("web-a", "app", "RolloutComplete", path=APPS, timeout=60)
    user = up.get(AAPPS, "web-a", "app")["status"]["serviceUser"]
    up.wait_status("web-b", "payroll", "RolloutComplete")
    broken = up.wait_status("web-a", "broken", "FailedPrepare")
    # a real client writes what the browser must show: JSON, text with headers, binary
    p = Producer(dict(up.ssl_conf(), acks="all"))
    p.produce("web-a.orders", b'{"order": 41, "item": "tea"}', key=b"k-41", partition=0,
              headers=[("source", b"e2e")])
    p.produce("web-a.orders", b"plain text order 42", key=b"k-42", partition=0)
    p.produce("web-a.orders", b"\x00\x01\xfe\xff binary", partition=0)
    p.produce("web-b.payroll", b"salary of team b", partition=0)
    # an Avro record in the registry's wire format, and a second version of its schema
    v1 = register(up, "web-a.orders-value", ORDER_V1)
    register(up, "web-a.orders-value", ORDER_V2)
    p.produce("web-a.orders", framed(v1, zigzag(43) + avro_string("avro-coffee") + zigzag(0) +
                                     zigzag(0) + zigzag(0)), partition=1)
    assert p.flush(30) == 0
    # a consumer group reads one record and commits: lag 2 on partition 0
    c = Consumer(dict(up.ssl_conf(), **{"group.id": "web-a-reader", "enable.auto.commit": False}))
    c.assign([TopicPartition("web-a.orders", 0, 0)])
    deadline = time.time() + 20
    m = None
    while time.time() < deadline and (m is None or m.error()):
        m = c.poll(0.5)
    assert m is not None and not m.error()
    c.commit(message=m, asynchronous=False)
    c.close()

    shots = os.path.join(os.environ.get("KPOOL_ARTIFACTS", os.path.join(ROOT, "build",
                                                                         "artifacts")), "console")
    os.makedirs(shots, exist_ok=True)
    env = dict(os.environ, BASE_URL="http://" + up.api_url, ADMIN_TOKEN=up.token, TOKEN_A=tok_a,
               NS_A="web-a", TOPIC_A="orders", VALUE_A="plain text order 42",
               GROUP_A="web-a-reader", APP_A="app", USER_A=user, RECORDS_A="4", AVRO_A="avro-coffee", SUBJECT_A="web-a.orders-value", FAILING_TOPIC="broken",
               FAILING_MESSAGE=broken["status"]["message"], NS_B="web-b", TOPIC_B="payroll",
               VALUE_B="salary of team b", TOKEN_C=tok_c, NS_C="web-c", SHOTS=shots,
               CHROMIUM=CHROMIUM)
    t0 = time.time()
    stdout, stderr, rc = run_e2e(env, {"produce": lambda: produce_more(up)})
    assert rc == 0 and stdout.rstrip().endswith("ok"), \
        "console e2e failed after %.1fs:\n%s\n%s\n%s" % (time.time() - t0, stdout, stderr,
                                                          up.log()[-3000:])
    # the backup file the browser downloaded is the file, byte for byte, under its name
    (line,) = [l for l in stdout.splitlines() if l.startswith("downloaded: ")]
    name, saved = line.split()[1:3]
    bdir = os.path.join(up.data_dir, "backups")
    assert name in os.listdir(bdir), (name, os.listdir(bdir))
    with open(saved, "rb") as a, open(os.path.join(bdir, name), "rb") as b:
        assert a.read() == b.read()
    os.unlink(saved)
    for name in ("console-signin.png", "console-team.png", "console-topic.png",
                 "console-topic-phone.png"):
        assert os.path.getsize(os.path.join(shots, name)) > 1000, name
    # no token reached the control plane's log
    log = up.log()
    assert tok_a not in log and tok_c not in log and up.token not in log
