"""Unmodified kubectl against `kpool up` (SPEC 13, docs/kubectl.md): the real kubectl 1.32
binary (scripts/install-deps.sh puts it in build/tools/kubectl-v32/, $KUBECTL overrides)
with the kubeconfig `kpool up` writes.

Covered (each fails on a control plane without the Kubernetes API: kubectl stops at
discovery with "couldn't get current server API group list"):
  * kubeconfig: written at <data dir>/kubeconfig (0600, context kpool), announced with
    `export KUBECONFIG=`; ~/.kube/config untouched;
  * discovery, version, api-resources, explain (OpenAPI v3), unknown kinds/versions 404;
  * the NAIS Topic: apply -> wait --for=jsonpath -> get (the same columns as `kpool get`)
    -> -o yaml/json/jsonpath -> describe -> client-side re-apply (last-applied annotation)
    -> server-side apply (conflict with the client-side manager, then --force-conflicts)
    -> edit (EDITOR script) -> patch merge/json (malformed: 422 naming the operation)
    -> delete -f (waits until it is gone);
  * an Application: its Secret read with jsonpath + base64 gives PEM files a real client
    produces with;
  * `kubectl get topics -A -w --output-watch-events` sees ADDED/MODIFIED/DELETED while
    another process applies and deletes;
  * namespaces, paging (limit/continue, --chunk-size), label and field selectors;
  * a team token: sees only its namespace, `auth can-i` says no elsewhere, cross-team
    get/patch/delete are 403 with Kubernetes Status bodies;
  * bad input: stale resourceVersion 409, unknown field with Strict 400, oversized body
    413, a watch from before the server's history 410;
  * a team's kubeconfig (`kpool team create|rotate NAME --kubeconfig FILE`): 0600, the
    token nowhere else, its kubectl sees only the team's namespace;
  * Events: describe shows the reconcile history and issued credentials, `get events`
    (Kubernetes' columns, involvedObject field selectors), `get events -w`;
  * deletecollection (label/field selectors, dry run) and `kubectl delete --all/-l`;
  * OpenAPI v2 (protobuf: `kubectl explain --output plaintext-openapiv2`; JSON), the
    status subresource (get/patch --subresource=status);
  * every `sh` block of docs/kubectl.md runs as written.
"""
import base64
import http.client
import json
import os
import re
import queue
import ssl
import stat
import subprocess
import threading
import time

import pytest
import yaml

import harness
import test_control as T

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KUBECTL = os.environ.get("KUBECTL") or os.path.join(ROOT, "build", "tools", "kubectl-v32",
                                                    "kubectl")
TOPIC_YAML = os.path.join(ROOT, "examples", "topic.yaml")
APP_YAML = os.path.join(ROOT, "examples", "app.yaml")


@pytest.fixture(scope="module")
def up():
    if not os.access(KUBECTL, os.X_OK):
        pytest.fail("no kubectl at %s: run scripts/install-deps.sh" % KUBECTL)
    home_cfg = os.path.expanduser("~/.kube/config")
    before = os.stat(home_cfg).st_mtime if os.path.exists(home_cfg) else None
    k = T.KpoolUp().start()
    k.kubeconfig = os.path.join(k.data_dir, "kubeconfig")
    k.home_cfg_before = (home_cfg, before)
    try:
        yield k
    finally:
        k.stop()


def kubectl(up, *args, expect=0, stdin=None, token=None, timeout=90, env=None, cwd=None):
    cmd = [KUBECTL] + (["--token=" + token] if token else []) + list(args)
    e = dict(os.environ, KUBECONFIG=up.kubeconfig)
    e.update(env or {})
    p = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout, env=e,
                       cwd=cwd)
    if expect is not None:
        assert p.returncode == expect, "kubectl %s -> %d\n%s%s" % (
            " ".join(args), p.returncode, p.stdout, p.stderr)
    return p


def kube_http(up, method, path, body=None, token=None, headers=None):
    """A request to the kubectl (HTTPS) listener; (status, parsed body)."""
    cfg = yaml.safe_load(open(up.kubeconfig))
    server = cfg["clusters"][0]["cluster"]["server"]
    ctx = ssl.create_default_context(cafile=cfg["clusters"][0]["cluster"]["certificate-authority"])
    host = server[len("https://"):]
    c = http.client.HTTPSConnection(host, timeout=30, context=ctx)
    h = {"Authorization": "Bearer " + (token or up.token)}
    h.update(headers or {})
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    try:
        return r.status, json.loads(data)
    except ValueError:
        return r.status, data


def team_token(up, team):
    code, _, body = up.api("POST", "/apis/kpool.dev/v1/teams", {"name": team})
    assert code == 201, body
    return body["token"]


def wait_ready(up, ns, name, kind="topic", timeout="60s"):
    kubectl(up, "wait", "%s/%s" % (kind, name), "-n", ns,
            "--for=jsonpath={.status.synchronizationState}=RolloutComplete",
            "--timeout=" + timeout)


def topic_yaml(name, ns, retention=168, labels=None):
    doc = yaml.safe_load(open(TOPIC_YAML))
    doc["metadata"].update(name=name, namespace=ns)
    doc["metadata"]["labels"] = dict(labels or {"team": ns})
    doc["spec"]["config"]["retentionHours"] = retention
    return yaml.safe_dump(doc)


# ---- kubeconfig and discovery ----


def test_kubeconfig_written_and_announced(up):
    st = os.stat(up.kubeconfig)
    assert stat.S_IMODE(st.st_mode) == 0o600
    cfg = yaml.safe_load(open(up.kubeconfig))
    assert cfg["current-context"] == "kpool"
    assert cfg["contexts"][0]["context"]["cluster"] == "kpool"
    assert cfg["clusters"][0]["cluster"]["server"].startswith("https://127.0.0.1:")
    assert cfg["users"][0]["user"]["token"] == up.token
    assert "export KUBECONFIG=%s" % up.kubeconfig in up.log()
    home_cfg, before = up.home_cfg_before
    after = os.stat(home_cfg).st_mtime if os.path.exists(home_cfg) else None
    assert before == after


def test_discovery_version_and_explain(up):
    p = kubectl(up, "version", "-o", "json")
    assert json.loads(p.stdout)["serverVersion"]["major"] == "1"
    p = kubectl(up, "api-resources", "--no-headers")
    rows = {l.split()[0]: l.split() for l in p.stdout.splitlines()}
    assert rows["topics"][1:] == ["kafka.nais.io/v1", "true", "Topic"]
    assert rows["aivenapplications"][1] == "aivenapp"
    assert rows["pools"][-2:] == ["false", "Pool"]
    assert rows["namespaces"][1] == "ns"
    p = kubectl(up, "get", "--raw", "/apis/kafka.nais.io/v1")
    res = {r["name"]: r for r in json.loads(p.stdout)["resources"]}
    assert set(res["topics"]["verbs"]) >= {"get", "list", "watch", "create", "patch", "delete"}
    assert res["topics"]["categories"] == ["kpool"] and res["topics"]["singularName"] == "topic"
    assert "topics/status" in res
    p = kubectl(up, "explain", "topic.spec.config")
    assert re.search(r"partitions\s+<integer>", p.stdout), p.stdout
    assert re.search(r"cleanupPolicy\s+<string>", p.stdout), p.stdout
    p = kubectl(up, "explain", "topic.spec")
    assert re.search(r"acl\s+<\[\]Object>", p.stdout) and re.search(r"pool\s+<string>", p.stdout)
    # OpenAPI v2, as protobuf (what kubectl before 1.27 reads) and as JSON
    p = kubectl(up, "explain", "topic.spec.config", "--output=plaintext-openapiv2")
    assert re.search(r"partitions\s+<integer>", p.stdout), p.stdout
    p = kubectl(up, "explain", "secret", "--output=plaintext-openapiv2")
    assert re.search(r"data\s+<map\[string\]string>", p.stdout), p.stdout
    v2 = json.loads(kubectl(up, "get", "--raw", "/openapi/v2").stdout)
    assert v2["swagger"] == "2.0"
    assert v2["definitions"]["io.nais.kafka.v1.Topic"]["x-kubernetes-group-version-kind"] == [
        {"group": "kafka.nais.io", "version": "v1", "kind": "Topic"}]
    # unknown kinds and versions
    p = kubectl(up, "get", "nopes", expect=1)
    assert "the server doesn't have a resource type \"nopes\"" in p.stderr
    code, body = kube_http(up, "GET", "/apis/kafka.nais.io/v9/topics")
    assert code == 404 and body["kind"] == "Status" and body["reason"] == "NotFound"
    code, body = kube_http(up, "GET", "/openapi/v3/apis/nope.io/v1")
    assert code == 404 and body["kind"] == "Status"


# ---- the NAIS Topic, end to end ----


def test_topic_lifecycle(up, tmp_path):
    p = kubectl(up, "apply", "-f", TOPIC_YAML)
    assert p.stdout.strip() == "topic.kafka.nais.io/mytopic created"
    wait_ready(up, "myteam", "mytopic")
    # the same columns as `kpool get`
    table = kubectl(up, "get", "topics", "-n", "myteam").stdout.splitlines()
    mine = up.kpool("get", "topics", "-n", "myteam").stdout.splitlines()
    assert table[0].split() == mine[0].split() == [
        "NAME", "POOL", "STATE", "FULLY", "QUALIFIED", "NAME", "AGE"]
    assert table[1].split()[:4] == ["mytopic", "dev", "RolloutComplete", "myteam.mytopic"]
    wide = kubectl(up, "get", "topics", "-n", "myteam", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-3:] == ["PARTITIONS", "REPLICATION", "MESSAGE"]
    obj = yaml.safe_load(kubectl(up, "get", "topic", "mytopic", "-n", "myteam", "-o",
                                 "yaml").stdout)
    assert obj["spec"]["config"]["retentionHours"] == 168
    assert "kubectl.kubernetes.io/last-applied-configuration" in obj["metadata"]["annotations"]
    js = json.loads(kubectl(up, "get", "topic", "mytopic", "-n", "myteam", "-o", "json").stdout)
    assert js["status"]["fullyQualifiedName"] == "myteam.mytopic"
    p = kubectl(up, "get", "topic", "mytopic", "-n", "myteam", "-o",
                "jsonpath={.status.fullyQualifiedName}")
    assert p.stdout == "myteam.mytopic"
    d = kubectl(up, "describe", "topic", "mytopic", "-n", "myteam").stdout
    assert re.search(r"Fully Qualified Name:\s+myteam\.mytopic", d), d
    assert re.search(r"Retention Hours:\s+168", d), d

    # client-side re-apply with a change: a merge patch, the annotation follows
    p = kubectl(up, "apply", "-f", "-", stdin=topic_yaml("mytopic", "myteam", 72))
    assert p.stdout.strip() == "topic.kafka.nais.io/mytopic configured"
    obj = json.loads(kubectl(up, "get", "topic", "mytopic", "-n", "myteam", "-o",
                             "json").stdout)
    assert obj["spec"]["config"]["retentionHours"] == 72
    last = json.loads(obj["metadata"]["annotations"][
        "kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"]["config"]["retentionHours"] == 72
    assert kubectl(up, "apply", "-f", "-", stdin=topic_yaml("mytopic", "myteam", 72)
                   ).stdout.strip() == "topic.kafka.nais.io/mytopic unchanged"

    # server-side apply: the field belongs to the client-side manager
    p = kubectl(up, "apply", "--server-side", "-f", "-", expect=1,
                stdin=topic_yaml("mytopic", "myteam", 24))
    assert 'conflict with "kubectl-client-side-apply"' in p.stderr, p.stderr
    assert ".spec.config.retentionHours" in p.stderr
    p = kubectl(up, "apply", "--server-side", "--force-conflicts", "-f", "-",
                stdin=topic_yaml("mytopic", "myteam", 24))
    assert p.stdout.strip() == "topic.kafka.nais.io/mytopic serverside-applied"
    obj = json.loads(kubectl(up, "get", "topic", "mytopic", "-n", "myteam", "-o", "json",
                             "--show-managed-fields").stdout)
    assert obj["spec"]["config"]["retentionHours"] == 24
    managers = {(m["manager"], m["operation"]): m for m in obj["metadata"]["managedFields"]}
    applied = managers[("kubectl", "Apply")]["fieldsV1"]["f:spec"]["f:config"]
    assert "f:retentionHours" in applied
    csa = managers[("kubectl-client-side-apply", "Update")]["fieldsV1"]["f:spec"]["f:config"]
    assert "f:retentionHours" not in csa  # taken over

    # edit with an editor script
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/retentionHours: 24/retentionHours: 48/' \"$1\"\n")
    editor.chmod(0o755)
    p = kubectl(up, "edit", "topic", "mytopic", "-n", "myteam", env={"EDITOR": str(editor)})
    assert p.stdout.strip() == "topic.kafka.nais.io/mytopic edited"
    assert kubectl(up, "get", "topic", "mytopic", "-n", "myteam", "-o",
                   "jsonpath={.spec.config.retentionHours}").stdout == "48"

    # patches
    kubectl(up, "patch", "topic", "mytopic", "-n", "myteam", "--type", "merge", "-p",
            '{"spec":{"config":{"retentionHours":12}}}')
    kubectl(up, "patch", "topic", "mytopic", "-n", "myteam", "--type", "json", "-p",
            '[{"op":"replace","path":"/spec/config/retentionBytes","value":1048576}]')
    obj = json.loads(kubectl(up, "get", "topic", "mytopic", "-n", "myteam", "-o",
                             "json").stdout)
    assert obj["spec"]["config"]["retentionHours"] == 12
    assert obj["spec"]["config"]["retentionBytes"] == 1048576
    p = kubectl(up, "patch", "topic", "mytopic", "-n", "myteam", "--type", "json", "-p",
                '[{"op":"remove","path":"/spec/nope"}]', expect=1)
    assert "operation 0 (remove /spec/nope): no such path" in p.stderr, p.stderr
    code, body = kube_http(up, "PATCH", "/apis/kafka.nais.io/v1/namespaces/myteam/topics/mytopic",
                           body="[{\"op\":\"move\",\"from\":\"/x\",\"path\":\"/spec/y\"}]",
                           headers={"Content-Type": "application/json-patch+json"})
    assert code == 422 and body["reason"] == "Invalid", body

    # delete -f waits until the control plane has removed it
    p = kubectl(up, "delete", "-f", TOPIC_YAML)
    assert p.stdout.strip() == 'topic.kafka.nais.io "mytopic" deleted'
    p = kubectl(up, "get", "topic", "mytopic", "-n", "myteam", expect=1)
    assert "NotFound" in p.stderr and '"mytopic" not found' in p.stderr


def test_application_secret_gives_working_pem_files(up, tmp_path):
    kubectl(up, "apply", "-f", TOPIC_YAML, "-f", APP_YAML)
    wait_ready(up, "myteam", "ownerapp", kind="app")
    kubectl(up, "wait", "aivenapp/ownerapp", "-n", "myteam", "--for=condition=Succeeded",
            "--timeout=60s")
    wait_ready(up, "myteam", "mytopic")
    secret = kubectl(up, "get", "app", "ownerapp", "-n", "myteam", "-o",
                     "jsonpath={.status.kafkaSecretName}").stdout
    assert secret.startswith("aiven-kafka-ownerapp-")
    files = {}
    for key, fname in (("KAFKA_CA", "ca.pem"), ("KAFKA_CERTIFICATE", "client.pem"),
                       ("KAFKA_PRIVATE_KEY", "client.key"), ("KAFKA_BROKERS", "brokers")):
        p = subprocess.run("'%s' get secret %s -n myteam -o jsonpath='{.data.%s}' | base64 -d"
                           % (KUBECTL, secret, key), shell=True, capture_output=True,
                           env=dict(os.environ, KUBECONFIG=up.kubeconfig), check=True)
        files[key] = tmp_path / fname
        files[key].write_bytes(p.stdout)
    assert files["KAFKA_CA"].read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY-----" in files["KAFKA_PRIVATE_KEY"].read_text()
    from confluent_kafka import Producer
    prod = Producer({"bootstrap.servers": files["KAFKA_BROKERS"].read_text(),
                     "security.protocol": "SSL",
                     "ssl.ca.location": str(files["KAFKA_CA"]),
                     "ssl.certificate.location": str(files["KAFKA_CERTIFICATE"]),
                     "ssl.key.location": str(files["KAFKA_PRIVATE_KEY"])})
    results = []
    prod.produce("myteam.mytopic", b"from kubectl's secret", on_delivery=lambda e, m:
                 results.append(e))
    prod.flush(30)
    assert results == [None], results
    # a Secret a team writes: strategic merge patch on client-side re-apply
    sec = {"apiVersion": "v1", "kind": "Secret",
           "metadata": {"name": "mysecret", "namespace": "myteam"},
           "stringData": {"password": "hunter2"}}
    kubectl(up, "apply", "-f", "-", stdin=yaml.safe_dump(sec))
    sec["stringData"]["password"] = "hunter3"
    assert kubectl(up, "apply", "-f", "-", stdin=yaml.safe_dump(sec)).stdout.strip() == \
        "secret/mysecret configured"
    data = kubectl(up, "get", "secret", "mysecret", "-n", "myteam", "-o",
                   "jsonpath={.data.password}").stdout
    assert base64.b64decode(data) == b"hunter3"
    # kubectl create secret and describe use the typed client: a protobuf body
    blob = tmp_path / "blob.bin"
    blob.write_bytes(bytes(range(256)))
    p = kubectl(up, "create", "secret", "generic", "typed", "-n", "myteam",
                "--from-literal=user=me", "--from-file=blob=%s" % blob)
    assert p.stdout.strip() == "secret/typed created"
    data = json.loads(kubectl(up, "get", "secret", "typed", "-n", "myteam", "-o",
                              "json").stdout)
    assert data["type"] == "Opaque"
    assert base64.b64decode(data["data"]["blob"]) == bytes(range(256))
    d = kubectl(up, "describe", "secret", "typed", "-n", "myteam").stdout
    assert re.search(r"Type:\s+Opaque", d) and re.search(r"blob:\s+256 bytes", d), d
    p = kubectl(up, "create", "secret", "generic", "typed", "-n", "myteam",
                "--from-literal=user=me", expect=1)
    assert 'secrets "typed" already exists' in p.stderr
    # the Application: re-apply unchanged, change it client- and server-side, delete it
    assert kubectl(up, "apply", "-f", APP_YAML).stdout.strip() == \
        "application.nais.io/ownerapp unchanged"
    app = yaml.safe_load(open(APP_YAML))
    app["spec"]["image"] = "ghcr.io/navikt/ownerapp:2"
    assert kubectl(up, "apply", "-f", "-", stdin=yaml.safe_dump(app)).stdout.strip() == \
        "application.nais.io/ownerapp configured"
    app["spec"]["image"] = "ghcr.io/navikt/ownerapp:3"
    p = kubectl(up, "apply", "--server-side", "-f", "-", stdin=yaml.safe_dump(app), expect=1)
    assert ".spec.image" in p.stderr
    kubectl(up, "apply", "--server-side", "--force-conflicts", "-f", "-",
            stdin=yaml.safe_dump(app))
    assert kubectl(up, "get", "app", "ownerapp", "-n", "myteam", "-o",
                   "jsonpath={.spec.image}").stdout == "ghcr.io/navikt/ownerapp:3"
    wait_ready(up, "myteam", "ownerapp", kind="app")
    p = kubectl(up, "delete", "-f", APP_YAML)
    assert p.stdout.strip() == 'application.nais.io "ownerapp" deleted'


def test_status_subresource(up):
    """/status: kubectl get/patch --subresource=status; only the admin token writes it."""
    kubectl(up, "apply", "-f", "-", stdin=topic_yaml("st1", "stns"))
    wait_ready(up, "stns", "st1")
    p = kubectl(up, "get", "topic", "st1", "-n", "stns", "--subresource=status", "-o",
                "jsonpath={.status.synchronizationState}")
    assert p.stdout == "RolloutComplete"
    p = kubectl(up, "patch", "topic", "st1", "-n", "stns", "--subresource=status", "--type",
                "merge", "-p", '{"status":{"note":"by hand"}}', "-o", "json")
    obj = json.loads(p.stdout)
    assert obj["status"]["note"] == "by hand"
    assert obj["status"]["synchronizationState"] == "RolloutComplete"  # merged, not replaced
    assert obj["spec"]["pool"] == "dev"
    p = kubectl(up, "patch", "topic", "st1", "-n", "stns", "--subresource=status", "--type",
                "json", "-p", '[{"op":"remove","path":"/status/nope"}]', expect=1)
    assert "operation 0 (remove /status/nope): no such path" in p.stderr, p.stderr
    tok = team_token(up, "stns")
    p = kubectl(up, "patch", "topic", "st1", "-n", "stns", "--subresource=status", "--type",
                "merge", "-p", '{"status":{"note":"x"}}', token=tok, expect=1)
    assert "Error from server (Forbidden)" in p.stderr and "only the control plane" in p.stderr


# ---- watch ----


def test_watch_sees_another_process_apply_and_delete(up):
    w = subprocess.Popen([KUBECTL, "get", "topics", "-A", "-w", "--output-watch-events",
                          "--request-timeout=40s"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, KUBECONFIG=up.kubeconfig))
    seen = []
    lines = queue.Queue()  # a thread reads: select() cannot see lines already buffered
    threading.Thread(target=lambda: [lines.put(l) for l in w.stdout], daemon=True).start()

    def read_until(pred, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            seen.append(line.split())
            if pred(seen[-1]):
                return
        raise AssertionError("not seen; got %s" % seen)

    try:
        time.sleep(1)  # the initial list is done and the watch is open
        kubectl(up, "apply", "-f", "-", stdin=topic_yaml("watched", "wteam"))
        read_until(lambda l: l[:3] == ["ADDED", "wteam", "watched"])
        # its reconciliation (maybe already in the ADDED event: changes 100 ms apart merge)
        if "RolloutComplete" not in seen[-1]:
            read_until(lambda l: l[:3] == ["MODIFIED", "wteam", "watched"] and
                       "RolloutComplete" in l)
        kubectl(up, "delete", "topic", "watched", "-n", "wteam")
        read_until(lambda l: l[:3] == ["DELETED", "wteam", "watched"])
    finally:
        w.kill()
        w.wait()
    assert seen[0][0] == "EVENT" and "NAMESPACE" in seen[0]


def test_watch_raw_events_and_bookmarks(up):
    code, lst = kube_http(up, "GET", "/apis/kafka.nais.io/v1/namespaces/rawteam/topics")
    rv = lst["metadata"]["resourceVersion"]
    cfg = yaml.safe_load(open(up.kubeconfig))
    host = cfg["clusters"][0]["cluster"]["server"][len("https://"):]
    ctx = ssl.create_default_context(cafile=cfg["clusters"][0]["cluster"]["certificate-authority"])
    c = http.client.HTTPSConnection(host, timeout=30, context=ctx)
    c.request("GET", "/apis/kafka.nais.io/v1/namespaces/rawteam/topics?watch=true&"
              "resourceVersion=%s&timeoutSeconds=3&fieldSelector=metadata.name%%3Done" % rv,
              headers={"Authorization": "Bearer " + up.token})
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Transfer-Encoding") == "chunked"
    kubectl(up, "apply", "-f", "-", stdin=topic_yaml("two", "rawteam"))
    kubectl(up, "apply", "-f", "-", stdin=topic_yaml("one", "rawteam"))
    body = r.read().decode()  # the stream ends after timeoutSeconds
    c.close()
    events = [json.loads(l) for l in body.splitlines() if l.strip()]
    assert events and events[0]["type"] == "ADDED", events
    assert {e["object"]["metadata"]["name"] for e in events} == {"one"}  # the field selector
    assert all(int(e["object"]["metadata"]["resourceVersion"]) > int(rv) for e in events)
    # sendInitialEvents (the watch-list protocol): the current state, then a bookmark
    c = http.client.HTTPSConnection(host, timeout=30, context=ctx)
    c.request("GET", "/apis/kafka.nais.io/v1/namespaces/rawteam/topics?watch=true&"
              "sendInitialEvents=true&allowWatchBookmarks=true&"
              "resourceVersionMatch=NotOlderThan&timeoutSeconds=1",
              headers={"Authorization": "Bearer " + up.token})
    events = [json.loads(l) for l in c.getresponse().read().decode().splitlines() if l.strip()]
    c.close()
    assert sorted(e["object"]["metadata"]["name"] for e in events[:2]) == ["one", "two"]
    assert [e["type"] for e in events] == ["ADDED", "ADDED", "BOOKMARK"], events
    assert events[2]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


# ---- namespaces, paging, selectors ----


def test_namespaces_paging_and_selectors(up):
    for i in range(5):
        kubectl(up, "apply", "-f", "-", stdin=topic_yaml("t%d" % i, "pages",
                                                         labels={"tier": "a" if i < 2 else "b"}))
    names = kubectl(up, "get", "ns", "-o", "name").stdout.split()
    assert "namespace/pages" in names and "namespace/myteam" in names
    code, page = kube_http(up, "GET", "/apis/kafka.nais.io/v1/namespaces/pages/topics?limit=2")
    assert code == 200 and [o["metadata"]["name"] for o in page["items"]] == ["t0", "t1"]
    assert page["metadata"]["remainingItemCount"] == 3
    code, rest = kube_http(up, "GET", "/apis/kafka.nais.io/v1/namespaces/pages/topics?limit=10&"
                           "continue=" + page["metadata"]["continue"])
    assert [o["metadata"]["name"] for o in rest["items"]] == ["t2", "t3", "t4"]
    assert "continue" not in rest["metadata"]
    code, bad = kube_http(up, "GET", "/apis/kafka.nais.io/v1/namespaces/pages/topics?continue=zz")
    assert code == 400 and "invalid continue token" in bad["message"]
    p = kubectl(up, "get", "topics", "-n", "pages", "--chunk-size=2", "-o", "name")
    assert p.stdout.split() == ["topic.kafka.nais.io/t%d" % i for i in range(5)]
    p = kubectl(up, "get", "topics", "-n", "pages", "-l", "tier=a", "-o", "name")
    assert p.stdout.split() == ["topic.kafka.nais.io/t0", "topic.kafka.nais.io/t1"]
    p = kubectl(up, "get", "topics", "-n", "pages", "-l", "tier in (b),tier!=c", "-o", "name")
    assert len(p.stdout.split()) == 3
    p = kubectl(up, "get", "topics", "-A", "--field-selector", "metadata.name=t3", "-o", "name")
    assert p.stdout.split() == ["topic.kafka.nais.io/t3"]
    p = kubectl(up, "get", "topics", "-A", "--field-selector", "spec.pool=dev", expect=1)
    assert "field label not supported: spec.pool" in p.stderr
    p = kubectl(up, "get", "kpool", "-n", "pages", "-o", "name")  # the category
    assert "topic.kafka.nais.io/t0" in p.stdout.split()


def test_diff_label_annotate_create(up):
    p = kubectl(up, "create", "-f", "-", stdin=topic_yaml("d1", "diffs"))
    assert p.stdout.strip() == "topic.kafka.nais.io/d1 created"
    wait_ready(up, "diffs", "d1")
    kubectl(up, "label", "topic", "d1", "-n", "diffs", "tier=gold")
    kubectl(up, "annotate", "topic", "d1", "-n", "diffs", "note=hello")
    obj = json.loads(kubectl(up, "get", "topic", "d1", "-n", "diffs", "-o", "json").stdout)
    assert obj["metadata"]["labels"]["tier"] == "gold"
    assert obj["metadata"]["annotations"]["note"] == "hello"
    # kubectl diff: a dry run (server-side apply with dryRun=All): only the change shows
    p = kubectl(up, "diff", "-f", "-", stdin=topic_yaml("d1", "diffs", 100), expect=1)
    assert "-    retentionHours: 168" in p.stdout and "+    retentionHours: 100" in p.stdout
    changed = [l for l in p.stdout.splitlines()
               if l[:1] in "+-" and not l.startswith(("+++", "---"))]
    assert changed == ["-    retentionHours: 168", "+    retentionHours: 100"], p.stdout
    assert kubectl(up, "get", "topic", "d1", "-n", "diffs", "-o",
                   "jsonpath={.spec.config.retentionHours}").stdout == "168"
    # propagationPolicy (in a DeleteOptions body) is accepted; the delete waits until gone
    p = kubectl(up, "delete", "topic", "d1", "-n", "diffs", "--cascade=foreground")
    assert p.stdout.strip() == 'topic.kafka.nais.io "d1" deleted'
    kubectl(up, "get", "topic", "d1", "-n", "diffs", expect=1)


def test_delete_collection(up):
    """kubectl delete --all / -l, and DELETE on the collection (the deletecollection verb,
    `kubectl delete --raw`) with label and field selectors."""
    for i in range(6):
        kubectl(up, "apply", "-f", "-", stdin=topic_yaml("dc%d" % i, "dcol",
                                                         labels={"tier": "ab"[i % 2]}))
    kubectl(up, "apply", "-f", "-", stdin=topic_yaml("dc9", "dcolkeep"))
    p = kubectl(up, "get", "--raw", "/apis/kafka.nais.io/v1")
    res = {r["name"]: r for r in json.loads(p.stdout)["resources"]}
    assert "deletecollection" in res["topics"]["verbs"]

    def names(ns):
        return kubectl(up, "get", "topics", "-n", ns, "-o", "name").stdout.split()

    def wait_names(ns, want):
        deadline = time.time() + 60
        while names(ns) != want and time.time() < deadline:
            time.sleep(0.2)
        assert names(ns) == want

    # a dry run deletes nothing
    p = kubectl(up, "delete", "--raw",
                "/apis/kafka.nais.io/v1/namespaces/dcol/topics?labelSelector=tier%3Db&dryRun=All")
    assert sorted(o["metadata"]["name"] for o in json.loads(p.stdout)["items"]) == \
        ["dc1", "dc3", "dc5"]
    assert len(names("dcol")) == 6
    p = kubectl(up, "delete", "--raw",
                "/apis/kafka.nais.io/v1/namespaces/dcol/topics?labelSelector=tier%3Db")
    lst = json.loads(p.stdout)
    assert lst["kind"] == "TopicList"
    assert sorted(o["metadata"]["name"] for o in lst["items"]) == ["dc1", "dc3", "dc5"]
    assert all(o["metadata"].get("deletionTimestamp") for o in lst["items"])
    wait_names("dcol", ["topic.kafka.nais.io/dc%d" % i for i in (0, 2, 4)])
    code, body = kube_http(up, "DELETE", "/apis/kafka.nais.io/v1/namespaces/dcol/topics?"
                           "fieldSelector=metadata.name%3Ddc2")
    assert code == 200 and [o["metadata"]["name"] for o in body["items"]] == ["dc2"]
    code, body = kube_http(up, "DELETE", "/apis/kafka.nais.io/v1/namespaces/dcol/topics?"
                           "labelSelector=in%20(")
    assert code == 400 and body["kind"] == "Status"
    # a team token: its own namespace only
    tok = team_token(up, "dcteam")
    code, body = kube_http(up, "DELETE", "/apis/kafka.nais.io/v1/namespaces/dcol/topics",
                           token=tok)
    assert code == 403 and body["reason"] == "Forbidden"
    code, body = kube_http(up, "DELETE", "/apis/kafka.nais.io/v1/topics", token=tok)
    assert code == 200 and body["items"] == []  # all namespaces it sees: none of these
    assert len(names("dcol")) == 2
    # kubectl's own ways: -l and --all
    p = kubectl(up, "delete", "topics", "-n", "dcol", "-l", "tier=a", "--wait=false")
    assert sorted(p.stdout.split("\n")[:-1]) == [
        'topic.kafka.nais.io "dc0" deleted', 'topic.kafka.nais.io "dc4" deleted']
    kubectl(up, "apply", "-f", "-", stdin=topic_yaml("dc7", "dcol"))
    p = kubectl(up, "delete", "topics", "--all", "-n", "dcol")
    assert 'topic.kafka.nais.io "dc7" deleted' in p.stdout
    wait_names("dcol", [])
    assert names("dcolkeep") == ["topic.kafka.nais.io/dc9"]


def test_events_in_describe_and_get_events(up):
    """Events: the reconcile history (state changes, credentials issued) in `kubectl
    describe`, `kubectl get events` (Kubernetes' columns) and field selectors on
    involvedObject, as kubectl sends them."""
    kubectl(up, "apply", "-f", "-", stdin=topic_yaml("evt", "evns"))
    wait_ready(up, "evns", "evt")
    d = kubectl(up, "describe", "topic", "evt", "-n", "evns").stdout
    events = d[d.index("\nEvents:"):]
    assert re.search(r"Normal\s+RolloutComplete\s+\S+\s+kpool-controller\s+\S", events), d
    # a spec the reconciler refuses: a Warning, and its message
    bad = yaml.safe_load(topic_yaml("evbad", "evns"))
    bad["spec"]["config"]["partitions"] = -3
    kubectl(up, "apply", "-f", "-", stdin=yaml.safe_dump(bad))
    deadline = time.time() + 60
    while time.time() < deadline:
        d = kubectl(up, "describe", "topic", "evbad", "-n", "evns").stdout
        if "Warning" in d[d.index("\nEvents:"):]:
            break
        time.sleep(0.3)
    events = d[d.index("\nEvents:"):]
    assert re.search(r"Warning\s+FailedPrepare\s+.*kpool-controller\s+.*partitions", events), d
    assert "evt" not in events  # only the described object's
    # kubectl get events: the server's Table
    lines = kubectl(up, "get", "events", "-n", "evns").stdout.splitlines()
    assert lines[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"], lines
    assert any(l.split()[1:4] == ["Normal", "RolloutComplete", "topic/evt"] for l in lines[1:])
    assert any(l.split()[1:4] == ["Warning", "FailedPrepare", "topic/evbad"] for l in lines[1:])
    js = json.loads(kubectl(up, "get", "events", "-n", "evns", "-o", "json").stdout)
    ev = [e for e in js["items"] if e["involvedObject"]["name"] == "evt"][0]
    topic = json.loads(kubectl(up, "get", "topic", "evt", "-n", "evns", "-o", "json").stdout)
    assert ev["involvedObject"]["uid"] == topic["metadata"]["uid"]
    assert ev["involvedObject"]["kind"] == "Topic" and ev["count"] >= 1
    p = kubectl(up, "get", "events", "-n", "evns", "--field-selector",
                "involvedObject.name=evbad,type=Warning", "-o", "name")
    assert p.stdout.split() and all(n.startswith("event/evbad.") for n in p.stdout.split())
    name = p.stdout.split()[0][len("event/"):]
    assert json.loads(kubectl(up, "get", "event", name, "-n", "evns", "-o", "json").stdout
                      )["reason"] == "FailedPrepare"
    p = kubectl(up, "get", "events", "-n", "evns", "--field-selector", "spec.x=1", expect=1)
    assert "field label not supported: spec.x" in p.stderr
    assert "evt" in kubectl(up, "get", "ev", "-A").stdout
    # an application's credentials
    kubectl(up, "apply", "-f", TOPIC_YAML, "-f", APP_YAML)
    kubectl(up, "wait", "aivenapp/ownerapp", "-n", "myteam", "--for=condition=Succeeded",
            "--timeout=60s")
    d = kubectl(up, "describe", "aivenapp", "ownerapp", "-n", "myteam").stdout
    assert re.search(r"Normal\s+CredentialsIssued\s+.*service user", d), d
    assert re.search(r"Normal\s+RolloutComplete", d[d.index("\nEvents:"):]), d
    # teams read their own namespace's events only; nobody writes them
    tok = team_token(up, "evteam")
    p = kubectl(up, "get", "events", "-n", "evns", token=tok, expect=1)
    assert "Error from server (Forbidden)" in p.stderr
    assert kubectl(up, "get", "events", "-A", "-o", "name", token=tok).stdout.split() == []
    code, body = kube_http(up, "DELETE", "/api/v1/namespaces/evns/events/" + name)
    assert code == 405 and body["kind"] == "Status"


def test_events_watch(up):
    """kubectl get events -w follows new Events; a raw watch from the list's
    resourceVersion gets only newer ones, filtered by involvedObject; an older
    resourceVersion than this process's first is 410."""
    kubectl(up, "apply", "-f", "-", stdin=topic_yaml("ew0", "evwatch"))
    wait_ready(up, "evwatch", "ew0")
    w = subprocess.Popen([KUBECTL, "get", "events", "-n", "evwatch", "-w",
                          "--output-watch-events", "--request-timeout=40s"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, KUBECONFIG=up.kubeconfig))
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(l) for l in w.stdout], daemon=True).start()
    seen = []

    def read_until(pred, timeout=40):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            seen.append(line.split())
            if pred(seen[-1]):
                return
        raise AssertionError("not seen; got %s; stderr %s" % (seen, w.stderr))

    try:
        read_until(lambda l: "topic/ew0" in l)  # the list first (ADDED)
        kubectl(up, "apply", "-f", "-", stdin=topic_yaml("ew1", "evwatch"))
        read_until(lambda l: l[:1] == ["ADDED"] and "topic/ew1" in l and "Normal" in l)
    finally:
        w.kill()
        w.wait()
    assert seen[0][0] == "EVENT" and "REASON" in seen[0], seen
    # raw: from the list's resourceVersion, one object's events only
    code, lst = kube_http(up, "GET", "/api/v1/namespaces/evwatch/events")
    rv = lst["metadata"]["resourceVersion"]
    cfg = yaml.safe_load(open(up.kubeconfig))
    host = cfg["clusters"][0]["cluster"]["server"][len("https://"):]
    ctx = ssl.create_default_context(cafile=cfg["clusters"][0]["cluster"]["certificate-authority"])
    c = http.client.HTTPSConnection(host, timeout=60, context=ctx)
    c.request("GET", "/api/v1/namespaces/evwatch/events?watch=true&resourceVersion=%s&"
              "timeoutSeconds=50&fieldSelector=involvedObject.name%%3Dew3" % rv,
              headers={"Authorization": "Bearer " + up.token})
    r = c.getresponse()
    assert r.status == 200
    kubectl(up, "apply", "-f", "-", stdin=topic_yaml("ew2", "evwatch"))
    kubectl(up, "apply", "-f", "-", stdin=topic_yaml("ew3", "evwatch"))
    line = b"\n"
    while not line.strip():  # idle streams send a newline every 10 s
        line = r.readline()
        assert line, "the stream ended without an event for ew3"
    c.close()
    event = json.loads(line)
    assert event["type"] == "ADDED" and event["object"]["involvedObject"]["name"] == "ew3"
    assert int(event["object"]["metadata"]["resourceVersion"]) > int(rv)
    code, body = kube_http(up, "GET", "/api/v1/namespaces/evwatch/events?watch=true&"
                           "resourceVersion=1")
    assert code == 410 and body["reason"] == "Expired", body
    code, body = kube_http(up, "GET", "/api/v1/namespaces/evwatch/events?watch=true&"
                           "fieldSelector=spec.x%3D1")
    assert code == 400 and "field label not supported" in body["message"]
    tok = team_token(up, "evwatchteam")
    code, body = kube_http(up, "GET", "/api/v1/namespaces/evwatch/events?watch=true", token=tok)
    assert code == 403


# ---- teams ----


def test_team_token_sees_only_its_namespace(up):
    kubectl(up, "apply", "-f", "-", stdin=topic_yaml("theirs", "otherteam"))
    tok = team_token(up, "ownteam")
    kubectl(up, "apply", "-f", "-", stdin=topic_yaml("mine", "ownteam"), token=tok)
    assert kubectl(up, "get", "ns", "-o", "name", token=tok).stdout.split() == \
        ["namespace/ownteam"]
    assert kubectl(up, "auth", "can-i", "create", "topics", "-n", "ownteam",
                   token=tok).stdout.strip() == "yes"
    assert kubectl(up, "auth", "can-i", "create", "topics", "-n", "otherteam", token=tok,
                   expect=1).stdout.strip().startswith("no")
    assert kubectl(up, "auth", "can-i", "list", "pools", token=tok).stdout.strip() == "yes"
    assert kubectl(up, "auth", "can-i", "delete", "pools", token=tok,
                   expect=1).stdout.strip().startswith("no")
    for args in (["get", "topic", "theirs", "-n", "otherteam"],
                 ["patch", "topic", "theirs", "-n", "otherteam", "--type", "merge", "-p",
                  '{"spec":{"pool":"x"}}'],
                 ["delete", "topic", "theirs", "-n", "otherteam"],
                 ["get", "topics", "-n", "otherteam"]):
        p = kubectl(up, *args, token=tok, expect=1)
        assert "Error from server (Forbidden)" in p.stderr, (args, p.stderr)
    p = kubectl(up, "get", "topics", "-A", "-o", "name", token=tok)
    assert p.stdout.split() == ["topic.kafka.nais.io/mine"]
    code, body = kube_http(up, "DELETE", "/apis/kafka.nais.io/v1/namespaces/otherteam/topics/"
                           "theirs", token=tok)
    assert code == 403 and body["kind"] == "Status" and body["reason"] == "Forbidden"
    assert body["details"] == {"group": "kafka.nais.io", "kind": "topics", "name": "theirs"}
    code, body = kube_http(up, "GET", "/api/v1/namespaces/otherteam", token=tok)
    assert code == 403 and body["reason"] == "Forbidden"
    code, body = kube_http(up, "GET", "/apis/kafka.nais.io/v1/namespaces/otherteam/topics/"
                           "theirs?watch=true", token=tok)
    assert code == 403 and body["reason"] == "Forbidden"
    code, body = kube_http(up, "GET", "/api", token="0" * 64)
    assert code == 401 and body["reason"] == "Unauthorized"


def test_team_kubeconfig(up, tmp_path, monkeypatch):
    """`kpool team create NAME --kubeconfig FILE`: a team member's kubectl sees only the
    team's namespace with it; the token is in the file (0600) and nowhere else."""
    kubectl(up, "apply", "-f", "-", stdin=topic_yaml("notyours", "kcother"))
    monkeypatch.setenv("KUBECONFIG", up.kubeconfig)  # the cluster: the one `kpool up` wrote
    team_cfg = tmp_path / "team.yaml"
    p = up.kpool("team", "create", "kcteam", "--kubeconfig", str(team_cfg))
    assert p.stdout.startswith("team/kcteam created\n"), p.stdout
    assert stat.S_IMODE(os.stat(team_cfg).st_mode) == 0o600
    cfg = yaml.safe_load(team_cfg.read_text())
    token = cfg["users"][0]["user"]["token"]
    assert len(token) >= 32 and token not in p.stdout + p.stderr and token not in up.log()
    assert cfg["current-context"] == "kpool-kcteam"
    assert cfg["contexts"][0]["context"]["namespace"] == "kcteam"
    admin = yaml.safe_load(open(up.kubeconfig))["clusters"][0]["cluster"]
    assert cfg["clusters"][0]["cluster"] == admin  # same server and CA
    member = {"KUBECONFIG": str(team_cfg)}
    kubectl(up, "apply", "-f", "-", stdin=topic_yaml("ours", "kcteam"), env=member)
    assert kubectl(up, "get", "topics", "-o", "name", env=member).stdout.split() == \
        ["topic.kafka.nais.io/ours"]
    assert kubectl(up, "get", "topics", "-A", "-o", "name", env=member).stdout.split() == \
        ["topic.kafka.nais.io/ours"]
    assert kubectl(up, "get", "ns", "-o", "name", env=member).stdout.split() == \
        ["namespace/kcteam"]
    p = kubectl(up, "get", "topics", "-n", "kcother", env=member, expect=1)
    assert "Error from server (Forbidden)" in p.stderr
    assert kubectl(up, "auth", "can-i", "create", "topics", "-n", "kcother", env=member,
                   expect=1).stdout.strip().startswith("no")
    # rotate into the same file: the old token is refused, the new one works
    p = up.kpool("team", "rotate", "kcteam", "--kubeconfig", str(team_cfg))
    assert p.stdout.startswith("team/kcteam token rotated\n"), p.stdout
    new = yaml.safe_load(team_cfg.read_text())["users"][0]["user"]["token"]
    assert new != token and new not in p.stdout + up.log()
    assert kube_http(up, "GET", "/api/v1/namespaces", token=token)[0] == 401
    kubectl(up, "get", "topic", "ours", env=member)
    # --kube-server names the listener instead (the CA: the CLI config's)
    server = admin["server"]
    monkeypatch.delenv("KUBECONFIG")
    other = tmp_path / "other.yaml"
    up.kpool("team", "create", "kcsecond", "--kubeconfig", str(other), "--kube-server", server)
    assert yaml.safe_load(other.read_text())["clusters"][0]["cluster"]["server"] == server
    assert kubectl(up, "get", "ns", "-o", "name", env={"KUBECONFIG": str(other)}
                   ).stdout.split() == ["namespace/kcsecond"]
    # no cluster known: refused before a token is issued
    p = up.kpool("team", "create", "kcthird", "--kubeconfig", str(tmp_path / "x"), expect=2)
    assert "Set KUBECONFIG" in p.stderr and not (tmp_path / "x").exists()
    code, _, _ = up.api("GET", "/apis/kpool.dev/v1/teams/kcthird")
    assert code == 404
    p = up.kpool("team", "create", "kcthird", "--kubeconfig", str(tmp_path / "x"),
                 "--kube-server", "http://127.0.0.1:1", expect=2)
    assert "only over https://" in p.stderr
    p = up.kpool("team", "revoke", "kcteam", "--kubeconfig", str(team_cfg), expect=2)
    assert "go with create and rotate" in p.stderr


# ---- conflicts and bad input ----


def test_conflicts_and_bad_input(up, tmp_path):
    kubectl(up, "apply", "-f", "-", stdin=topic_yaml("c1", "conflicts"))
    old = json.loads(kubectl(up, "get", "topic", "c1", "-n", "conflicts", "-o", "json").stdout)
    kubectl(up, "patch", "topic", "c1", "-n", "conflicts", "--type", "merge", "-p",
            '{"metadata":{"labels":{"x":"1"}}}')
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps(old))
    p = kubectl(up, "replace", "-f", str(stale), expect=1)
    assert "Error from server (Conflict)" in p.stderr and "the object has been modified" in p.stderr
    # unknown fields: kubectl asks for Strict validation, the server answers 400
    doc = yaml.safe_load(topic_yaml("c2", "conflicts"))
    doc["spec"]["nope"] = 1
    p = kubectl(up, "apply", "-f", "-", stdin=yaml.safe_dump(doc), expect=1)
    assert 'strict decoding error: unknown field "spec.nope"' in p.stderr, p.stderr
    p = kubectl(up, "apply", "--validate=strict", "-f", "-", stdin=yaml.safe_dump(doc), expect=1)
    assert 'strict decoding error: unknown field "spec.nope"' in p.stderr, p.stderr
    p = kubectl(up, "apply", "--validate=false", "-f", "-", stdin=yaml.safe_dump(doc))
    assert "created" in p.stdout
    doc["metadata"]["name"] = "c3"
    p = kubectl(up, "apply", "--validate=warn", "-f", "-", stdin=yaml.safe_dump(doc))
    assert "created" in p.stdout and 'unknown field "spec.nope"' in p.stderr, p.stderr
    # oversized body
    code, body = kube_http(up, "POST", "/apis/kafka.nais.io/v1/namespaces/conflicts/topics",
                           body=b"x" * (5 * 1024 * 1024),
                           headers={"Content-Type": "application/json"})
    assert code == 413 and body["reason"] == "RequestEntityTooLarge"
    # a PATCH in a format nobody speaks
    code, body = kube_http(up, "PATCH", "/apis/kafka.nais.io/v1/namespaces/conflicts/topics/c1",
                           body=b"{}", headers={"Content-Type": "text/plain"})
    assert code == 415 and body["kind"] == "Status"
    # server-side apply needs a field manager
    code, body = kube_http(up, "PATCH", "/apis/kafka.nais.io/v1/namespaces/conflicts/topics/c1",
                           body=b"{}", headers={"Content-Type": "application/apply-patch+yaml"})
    assert code == 400 and "fieldManager" in body["message"]


def test_concurrent_patches_all_land(up):
    """Patches without a resourceVersion of their own are retried when the object moved
    between read and write (as Kubernetes does): concurrent label patches all land."""
    kubectl(up, "apply", "-f", "-", stdin=topic_yaml("busy", "conc"))
    path = "/apis/kafka.nais.io/v1/namespaces/conc/topics/busy?fieldManager=t"
    results = []

    def patch(i, rnd):
        body = json.dumps({"metadata": {"labels": {"l%d-%d" % (rnd, i): "x"}}})
        results.append(kube_http(up, "PATCH", path, body=body,
                                 headers={"Content-Type": "application/merge-patch+json"})[0])

    for rnd in range(5):
        threads = [threading.Thread(target=patch, args=(i, rnd)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert results == [200] * 20, results
    labels = json.loads(kubectl(up, "get", "topic", "busy", "-n", "conc", "-o",
                                "json").stdout)["metadata"]["labels"]
    assert all("l%d-%d" % (r, i) in labels for r in range(5) for i in range(4)), labels
    # a patch that names a resourceVersion is a precondition: no retry, 409
    code, body = kube_http(up, "PATCH", path, body=json.dumps(
        {"metadata": {"resourceVersion": "1", "labels": {"z": "1"}}}),
        headers={"Content-Type": "application/merge-patch+json"})
    assert code == 409 and body["reason"] == "Conflict", body


def test_watch_from_before_the_history_is_410(up):
    """The server keeps the changes since it started: after a restart, a watch from an
    older resourceVersion is 410 Expired (a client lists again)."""
    kubectl(up, "apply", "-f", "-", stdin=topic_yaml("old1", "history"))
    kubectl(up, "apply", "-f", "-", stdin=topic_yaml("old2", "history"))
    code, lst = kube_http(up, "GET", "/apis/kafka.nais.io/v1/topics")
    rv = int(lst["metadata"]["resourceVersion"])
    assert rv > 2
    assert up.halt(60) == 0  # SIGINT, keeping the data directory
    up.start()
    # start() sees "kpool is up." from the first run in the same log: wait for the second
    deadline = time.time() + 60
    while up.log().count("export KUBECONFIG=") < 2 and time.time() < deadline:
        time.sleep(0.1)
    code, body = kube_http(up, "GET", "/apis/kafka.nais.io/v1/topics?watch=true&"
                           "resourceVersion=%d" % (rv - 2))
    assert code == 410 and body["reason"] == "Expired", body
    assert "too old resource version" in body["message"]
    p = kubectl(up, "get", "topics", "-A", "-w", "--request-timeout=2s", expect=None)
    assert "old2" in p.stdout  # list, then watch from the list: no 410


# ---- the documentation ----


def test_docs_recipes_run_as_written(up, tmp_path):
    text = open(os.path.join(ROOT, "docs", "kubectl.md")).read()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    assert len(blocks) >= 4
    os.symlink(os.path.join(ROOT, "examples"), tmp_path / "examples")
    path = "%s:%s:%s" % (os.path.dirname(KUBECTL), os.path.dirname(os.path.abspath(
        harness.KPOOL_BIN)), os.environ["PATH"])  # kubectl and kpool, the admin's
    for block in blocks:
        p = subprocess.run(["bash", "-euo", "pipefail", "-c", block], capture_output=True,
                           text=True, cwd=tmp_path, timeout=180,
                           env=harness.sanitizer_env(KUBECONFIG=up.kubeconfig, PATH=path,
                                                     KPOOL_CONFIG=up.config))
        assert p.returncode == 0, (block, p.stdout, p.stderr)
        harness.assert_clean(p.stderr)
    assert (tmp_path / "ca.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert stat.S_IMODE(os.stat(tmp_path / "myteam.kubeconfig").st_mode) == 0o600
