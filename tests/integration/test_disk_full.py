"""A full disk under the control plane and under the broker (issue 12 item 13).

Each test mounts a small tmpfs (needs root and mount permission; skipped otherwise) as the
data directory, fills it with a filler file, hammers the process with writes, then frees
the space:
  * control plane: every failed write answers 507 "disk full" (not 500, no crash); the log
    names the condition once (not two lines per failed write: "COMMIT: database or disk is
    full" + "ROLLBACK: cannot rollback"), and says when it clears, with the count;
  * broker: produce requests fail with KAFKA_STORAGE_ERROR while the disk is full; the log
    names the condition once, and once more when appends succeed again.
"""
import errno
import http.client
import json
import os
import re
import signal
import subprocess
import tempfile
import time

import pytest

from harness import KPOOL_BIN, Broker, free_port, sanitizer_env
import kwire

WRITES = 200


@pytest.fixture
def tiny_fs():
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    d = tempfile.mkdtemp(prefix="kpool-diskfull-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", d],
                       capture_output=True, text=True)
    if r.returncode != 0:
        os.rmdir(d)
        pytest.skip("cannot mount a tmpfs here: %s" % r.stderr.strip())
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", d])
        os.rmdir(d)


def fill(d):
    """Fills the filesystem of d with a file; returns its path."""
    path = os.path.join(d, "filler")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 16, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as e:
                assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return path


def log_lines(text, pattern):
    return [ln for ln in text.splitlines() if re.search(pattern, ln)]


def put_topic(port, token, i, spec_pad=0):
    body = {"apiVersion": "kafka.nais.io/v1", "kind": "Topic",
            "metadata": {"name": "t%d" % i, "namespace": "team"},
            "spec": {"pool": "dev", "config": {"partitions": 1},
                     "acl": [{"team": "team", "application": "a" * 40, "access": "read"}]
                     * (1 + spec_pad)}}
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("PUT", "/apis/kafka.nais.io/v1/namespaces/team/topics/t%d" % i,
              body=json.dumps(body),
              headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, json.loads(data) if data else None


def test_control_store_disk_full(tiny_fs):
    port = free_port()
    log_path = os.path.join(os.path.dirname(tiny_fs), os.path.basename(tiny_fs) + ".log")
    logf = open(log_path, "wb")
    env = sanitizer_env()
    p = subprocess.Popen([KPOOL_BIN, "control", "--data-dir", os.path.join(tiny_fs, "ctl"),
                          "--set", "control.listener=127.0.0.1:%d" % port,
                          "--set", "control.backup.interval.ms=0"],
                         stdout=logf, stderr=subprocess.STDOUT, env=env)
    try:
        def log():
            with open(log_path, "rb") as f:
                return f.read().decode(errors="replace")
        deadline = time.time() + 30
        while "admin token" not in log():
            assert p.poll() is None and time.time() < deadline, log()
            time.sleep(0.05)
        token = re.search(r"admin token \(shown once\): (\S+)", log()).group(1)
        code, _ = put_topic(port, token, 0)
        assert code == 201
        filler = fill(tiny_fs)
        codes = {}
        for i in range(1, WRITES + 1):
            code, obj = put_topic(port, token, i, spec_pad=20)
            codes[code] = codes.get(code, 0) + 1
            if code != 201:
                assert code == 507 and obj["reason"] == "InsufficientStorage", (code, obj)
                assert "disk full" in obj["message"]
        assert codes.get(507, 0) >= WRITES - 5, codes  # a few may fit in freed pages
        # a DELETE is a write too; reads still work
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        auth = {"Authorization": "Bearer " + token}
        c.request("DELETE", "/apis/kafka.nais.io/v1/namespaces/team/topics/t0", headers=auth)
        r = c.getresponse()
        assert r.status == 507 and "disk full" in json.loads(r.read())["message"]
        c.request("GET", "/apis/kafka.nais.io/v1/namespaces/team/topics/t0", headers=auth)
        r = c.getresponse()
        assert r.status == 200 and json.loads(r.read())["metadata"]["name"] == "t0"
        # team tokens are store writes too (answered 500 before)
        c.request("POST", "/apis/kpool.dev/v1/teams", body=json.dumps({"name": "full"}),
                  headers=dict(auth, **{"Content-Type": "application/json"}))
        r = c.getresponse()
        obj = json.loads(r.read())
        assert r.status == 507 and obj["reason"] == "InsufficientStorage", (r.status, obj)
        c.close()
        assert p.poll() is None
        text = log()
        full = log_lines(text, r"disk is full|disk full")
        assert 1 <= len(full) <= 2, full  # once (a minute has not passed)
        assert "level=error comp=store" in full[0] and "writes fail until space is freed" \
            in full[0]
        assert not log_lines(text, "cannot rollback"), text[-3000:]
        # space again: the next write works, and the log says the condition is over
        os.unlink(filler)
        code, _ = put_topic(port, token, WRITES + 1)
        assert code == 201
        cleared = log_lines(log(), "store is writable again")
        assert len(cleared) == 1, log()[-3000:]
        n = int(re.search(r"after (\d+) occurrences", cleared[0]).group(1))
        assert n >= codes[507], cleared
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(30)
        logf.close()
        text = open(log_path, "rb").read().decode(errors="replace")
        os.unlink(log_path)
        assert "Sanitizer" not in text and "runtime error" not in text, text[-8000:]


def test_broker_disk_full(tiny_fs):
    b = Broker(os.path.join(tiny_fs, "data"), {"log.segment.bytes": 1 << 20})
    b.start()
    try:
        kwire.create_topic(b.bootstrap, "full", 1)
        value = b"x" * 8000
        s = kwire.connect(b.port)
        corr = [0]

        def produce():
            corr[0] += 1
            return kwire.produce_raw(s, "full", 0, [value], corr=corr[0])[0]
        assert produce() == 0
        filler = fill(tiny_fs)
        errors = [produce() for _ in range(WRITES)]
        KAFKA_STORAGE_ERROR = 56
        assert errors.count(KAFKA_STORAGE_ERROR) >= WRITES - 5, errors
        text = b.log()
        full = log_lines(text, r"append failed")
        assert 1 <= len(full) <= 2, full
        assert "until space is freed" in full[0]
        os.unlink(filler)
        assert produce() == 0
        again = log_lines(b.log(), "appends succeed again")
        assert len(again) == 1 and re.search(r"after \d+ occurrences", again[0]), \
            b.log()[-2000:]
        s.close()
    finally:
        b.stop()
