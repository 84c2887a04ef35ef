"""src/cluster against a real etcd (the foundation of replicated pools, issue 14 item 1).

Every test starts its own etcd (harness.etcd.Etcd) on free loopback ports and drives the
client and the etcd metadata store through c/etcd_driver.c ($(B)/tests/etcd_driver, built
by `make unit-bins` next to $KPOOL_BIN):

  - put/get, compare-and-swap success and conflict, endpoint failover past a dead endpoint;
  - a broker registration lives as long as its session is renewed, blocks a second broker
    with the same id, and disappears once the session expires;
  - controller election: two campaigners, one leader; the leader's session revoked or its
    process killed -> the other wins with a higher controller epoch;
  - a watch sees changes, resumes after an etcd restart from the next revision (writes made
    while it was away are seen exactly once, without re-reading), and re-reads the prefix
    when its revision was compacted;
  - a store holding another cluster's id is refused with a message naming both ids;
  - the metadata store's topic / partition-state CAS and fencing / ACL / producer-id rules
    (meta-selftest, checks in the driver).
"""
import queue
import subprocess
import threading
import time

import pytest

from harness.etcd import ETCD_DRIVER as DRIVER, Etcd

# the `etcd` fixture (a running member) is in conftest.py


def run(etcd_url, *args, rc=0):
    p = subprocess.run([DRIVER, etcd_url] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=60)
    assert "Sanitizer" not in p.stderr, p.stderr
    assert p.returncode == rc, (p.returncode, p.stdout, p.stderr)
    return p.stdout.strip()


class Proc:
    """A long-running driver command: lines of its stdout arrive in a queue."""

    def __init__(self, etcd_url, *args):
        self.p = subprocess.Popen([DRIVER, etcd_url] + [str(a) for a in args],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        self.seen = []
        self.stderr = []
        threading.Thread(target=self._read, args=(self.p.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    @staticmethod
    def _read(f, q):
        for line in f:
            q.put(line.rstrip("\n"))

    def _read_err(self):
        for line in self.p.stderr:
            self.stderr.append(line)

    def expect(self, prefix, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                break
            self.seen.append(line)
            if line.startswith(prefix):
                return line
        raise AssertionError("no line starting %r within %ss; saw %r" % (prefix, timeout, self.seen))

    def quiet(self, prefix, seconds):
        """Asserts no line starting with prefix arrives within seconds."""
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                return
            self.seen.append(line)
            assert not line.startswith(prefix), (line, self.seen)

    def send(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def close(self, timeout=15):
        try:
            self.p.stdin.close()
        except BrokenPipeError:
            pass
        self.p.wait(timeout=timeout)
        time.sleep(0.1)
        rest = []
        while not self.lines.empty():
            rest.append(self.lines.get())
        self.seen += rest
        assert not any("Sanitizer" in l for l in self.stderr), "".join(self.stderr)
        return rest

    def kill9(self):
        self.p.kill()
        self.p.wait()


def test_put_get_cas(etcd):
    rev = int(run(etcd.url, "put", "/t/k", "v1").split()[1])
    assert run(etcd.url, "get", "/t/k") == "value v1 %d" % rev
    assert run(etcd.url, "get", "/t/absent") == "notfound"
    # CAS against the current revision wins; the same (now stale) revision loses and the
    # conflict reports the revision the key has now
    rev2 = int(run(etcd.url, "cas", "/t/k", "v2", rev).split()[1])
    assert rev2 > rev
    assert run(etcd.url, "cas", "/t/k", "v3", rev) == "conflict %d" % rev2
    assert run(etcd.url, "get", "/t/k") == "value v2 %d" % rev2
    # expected 0: create only if absent
    assert run(etcd.url, "cas", "/t/new", "x", 0).startswith("ok ")
    assert run(etcd.url, "cas", "/t/new", "y", 0).startswith("conflict ")


def test_endpoint_failover(etcd, tmp_path):
    dead = "http://127.0.0.1:%d" % Etcd(str(tmp_path)).client_port  # nothing listens there
    run(etcd.url, "put", "/t/f", "v")
    assert run(dead + "," + etcd.url, "get", "/t/f").startswith("value v ")
    out = run(dead, "get", "/t/f", rc=2)
    assert out.startswith("error -1 ") and "127.0.0.1" in out


def test_lease_expiry_removes_registration(etcd):
    reg = Proc(etcd.url, "register", "/kpool/c", 7, 2)
    reg.expect("registered")
    assert "broker 7 r1" in run(etcd.url, "brokers", "/kpool/c")
    # renewed: still there after more than the 2 s TTL
    time.sleep(3)
    assert "broker 7 r1" in run(etcd.url, "brokers", "/kpool/c")
    # a second broker with the same id is refused while the session lives
    other = Proc(etcd.url, "register", "/kpool/c", 7, 2)
    line = other.expect("error")
    assert "broker id 7 is registered by another live session" in line
    other.close()
    # the broker stops renewing (a crash, a partition): the registration goes with the lease
    reg.send("stop")
    reg.close()
    deadline = time.time() + 30
    while "broker 7" in run(etcd.url, "brokers", "/kpool/c"):
        assert time.time() < deadline, "registration outlived its session"
        time.sleep(0.2)
    # a lease that expired answers keepalive with "expired"
    lease = run(etcd.url, "lease", 1).split()[1]
    time.sleep(2.5)
    assert run(etcd.url, "keepalive", lease) == "expired"


def test_election_one_leader_and_failover(etcd):
    assert run(etcd.url, "controller", "/kpool/c") == "none"
    a = Proc(etcd.url, "campaign", "/kpool/c", 1, 3)
    epoch1 = int(a.expect("leader 1").split()[2])
    b = Proc(etcd.url, "campaign", "/kpool/c", 2, 3)
    b.quiet("leader", 2.5)  # one leader at a time
    assert run(etcd.url, "controller", "/kpool/c") == "controller 1 %d" % epoch1
    # the leader's session is revoked: the other campaigner wins, with a higher epoch
    a.send("revoke")
    epoch2 = int(b.expect("leader 2", timeout=30).split()[2])
    assert epoch2 > epoch1
    a.close()
    assert run(etcd.url, "controller", "/kpool/c") == "controller 2 %d" % epoch2
    # the new leader is killed without a word: its session expires (TTL 3 s) and a new
    # campaigner wins
    c = Proc(etcd.url, "campaign", "/kpool/c", 3, 3)
    c.quiet("leader", 1)
    t0 = time.time()
    b.kill9()
    epoch3 = int(c.expect("leader 3", timeout=30).split()[2])
    assert epoch3 > epoch2
    assert time.time() - t0 < 15  # the 3 s TTL, and slack for a loaded machine
    c.close()


def parse_watch(lines):
    return [l for l in lines if l.startswith(("put ", "delete ", "reset "))]


def test_watch_sees_changes_and_resumes_after_restart(etcd):
    run(etcd.url, "put", "/w/0", "before")
    w = Proc(etcd.url, "watch", "/w/")
    assert w.expect("reset").split()[1] == "1"  # list-then-watch: the existing key
    w.expect("put /w/0 before")
    run(etcd.url, "put", "/w/1", "a")
    run(etcd.url, "put", "/other", "not-watched")
    w.expect("put /w/1 a")
    etcd.stop()
    time.sleep(3)  # the watcher retries meanwhile (backoff up to 2 s)
    etcd.start()
    # written right after the restart, probably before the watcher is back: it must still
    # see each exactly once, from the revision after the last it delivered
    for i in range(2, 6):
        run(etcd.url, "put", "/w/%d" % i, "b%d" % i)
    run(etcd.url, "put", "/w/1", "a2")
    w.expect("put /w/1 a2", timeout=30)
    rest = w.close()
    events = parse_watch(w.seen)
    puts = [l.split()[1] + "=" + l.split()[2] for l in events if l.startswith("put ")]
    assert puts == ["/w/0=before", "/w/1=a", "/w/2=b2", "/w/3=b3", "/w/4=b4", "/w/5=b5",
                    "/w/1=a2"], events
    stats = [l for l in rest if l.startswith("stats ")][0].split()
    assert int(stats[1]) >= 1, stats  # it reconnected
    assert int(stats[2]) == 1, stats  # and resumed without re-reading


def test_watch_rereads_after_compaction(etcd):
    run(etcd.url, "put", "/w/a", "1")
    old = int(run(etcd.url, "put", "/w/b", "2").split()[1])
    run(etcd.url, "put", "/w/a", "3")
    cur = int(run(etcd.url, "put", "/w/c", "4").split()[1])
    etcd.request("/v3/kv/compaction", {"revision": str(cur)})
    # a watch that resumes at a compacted revision gets the prefix read again instead
    w = Proc(etcd.url, "watch", "/w/", old)
    assert w.expect("reset").split()[1:] == ["3", str(cur)]
    w.expect("put /w/a 3")
    run(etcd.url, "put", "/w/d", "5")
    w.expect("put /w/d 5")
    rest = w.close()
    stats = [l for l in rest if l.startswith("stats ")][0].split()
    assert stats[2] == "1"


def test_cluster_id_mismatch_refused(etcd):
    assert run(etcd.url, "claim", "/kpool/shared", "clusterA") == "cluster clusterA"
    assert run(etcd.url, "claim", "/kpool/shared", "clusterA") == "cluster clusterA"
    out = run(etcd.url, "claim", "/kpool/shared", "clusterB", rc=3)
    assert out.startswith("mismatch ")
    assert "holds the metadata of cluster clusterA" in out and "belongs to cluster clusterB" in out
    assert "refusing to start" in out
    # a fresh data directory (no id of its own) joins the cluster it finds
    assert run(etcd.url, "claim", "/kpool/shared", "") == "cluster clusterA"


def test_meta_store_rules(etcd):
    assert run(etcd.url, "meta-selftest", "/kpool/self") == "ok"


class HostileEtcd:
    """An HTTP server on a free loopback port that answers the etcd gateway's paths the way
    a broken or hostile server would: mode 'garbage' (well-formed JSON of the wrong shape),
    'notjson', 'huge' (a body past KP_ETCD_REPLY_BYTES_MAX), 'hang' (never answers),
    'watchjunk' (a watch stream that turns into junk)."""

    def __init__(self, mode):
        import http.server
        import socketserver
        outer = self
        self.mode = mode
        self.posts = 0  # requests received

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(n)
                outer.posts += 1
                m = outer.mode
                if m == "hang":
                    time.sleep(6)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if m == "huge":
                    self.send_header("Content-Length", str(80 << 20))
                    self.end_headers()
                    chunk = b" " * (1 << 20)
                    try:
                        for _ in range(80):
                            self.wfile.write(chunk)
                    except OSError:
                        pass
                    return
                if m == "watchjunk" and self.path == "/v3/watch":
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(b'{"result":{"header":{"revision":"3"},"created":true}}\n'
                                     b'{"result":{"events":[{"kv":{"key":"!!"}}]}}\n')
                    self.wfile.flush()
                    return
                body = {"garbage": b'{"header":{"revision":"2"},"kvs":[{"key":5}]}',
                        "notjson": b"<html>502 Bad Gateway</html>",
                        "watchjunk": b'{"header":{"revision":"2"}}'}[m]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = S(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("mode,want", [
    ("garbage", "error -2 etcd range reply is malformed"),
    ("notjson", "error -2 etcd reply is not a JSON object"),
    ("huge", "error -2 "),
])
def test_hostile_server_replies_are_errors(mode, want):
    h = HostileEtcd(mode)
    try:
        out = run(h.url, "get", "/k", rc=2)
        assert out.startswith(want), out
        if mode == "huge":
            assert "larger than" in out
    finally:
        h.close()


def test_timeout_is_not_retried_elsewhere(etcd):
    """A request that timed out may have been applied: the client says so instead of sending
    it to the next endpoint; the next call starts at the next endpoint."""
    h = HostileEtcd("hang")
    try:
        run(etcd.url, "put", "/k", "v")
        t0 = time.time()
        lines = run(h.url + "," + etcd.url, "getn", "/k", 2).splitlines()
        assert lines[0].startswith("error -7 ") and "no answer within 3000 ms" in lines[0], lines
        assert lines[1].startswith("value v "), lines
        # the second call went to the next endpoint only (a clock bound of 6 s, one timeout
        # plus slack, told the same apart but failed on a slow machine)
        assert h.posts == 1, h.posts
        assert time.time() - t0 < 30
    finally:
        h.close()


def test_hostile_watch_stream_is_dropped_and_retried():
    h = HostileEtcd("watchjunk")
    try:
        stats = run(h.url, "watchn", "/w/", 2).splitlines()[-1].split()
        assert stats[0] == "stats"
        assert int(stats[1]) >= 2  # the bad stream was dropped and opened again (with backoff)
        assert stats[3] == "0"     # nothing from the bad stream was delivered
    finally:
        h.close()
