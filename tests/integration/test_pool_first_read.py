"""A pool broker that has not read the pool's state yet never tells a client a partial
picture of the pool.

1. (test_restarting_broker_never_calls_a_pool_topic_unknown) A pool broker restarted right after a kill -9 (found by the replicated soak,
tests/soak/replicated.py, seed 4): its network threads answer as soon as it starts, but
its old session still holds its registration for up to broker.session.timeout.ms and it
reads the pool's topics from etcd only after registering. Meanwhile its Metadata answered
UNKNOWN_TOPIC_OR_PARTITION for the pool's topics, and a confluent-kafka producer told so
fails every message of a topic that exists (`_UNKNOWN_TOPIC` from produce()). Now it answers
LEADER_NOT_AVAILABLE (retriable) until it has read the pool's topics once.

Fails on the old code: the restarting broker answers error 3 (UNKNOWN_TOPIC_OR_PARTITION).

2. (test_broker_that_cannot_read_the_pool_lists_no_partial_pool) An all-topics Metadata
request (kcat -L, list_topics, a regex subscription) has no error field that could say "not
read yet": a broker answering it before it has read the pool left the pool's topics out, and
clients believed the topics did not exist. This happened when the first read took longer
than the 15 s a starting broker waits for it ("serving anyway"), and when a partition's
state could not be read during that first read (it counted as read). Now a pool broker opens
its Kafka listeners only once it has read every topic and partition state of the pool: until
then a connection is refused, as by a stopped broker, and clients use the other brokers (a
KRaft broker is not served until it caught up with the metadata log either). The test
restarts a broker whose etcd reads of partition states are refused (EtcdReadBlocker, a proxy
of the test's own) past those 15 s, asks it with kcat, confluent-kafka, kafka-python and
kafkajs, then lets the reads through.

Fails on the old code: the blocked broker answers kcat -L without the pool's topic.
"""
import base64
import json
import os
import socket
import struct
import subprocess
import threading
import time
import urllib.request

from confluent_kafka.admin import AdminClient
from kafka import KafkaAdminClient

import clients
import kwire
from pool_harness import Pool, kcat_metadata, wait_for
from test_pool import create_topic, wait_isr

ERR_UNKNOWN_TOPIC_OR_PARTITION = 3


def metadata_error(b, topic):
    """The error code of `topic` in a Metadata v1 answer of broker b alone, or None when it
    does not answer (not listening yet)."""
    try:
        s = kwire.connect(b.port, timeout=5)
    except OSError:
        return None
    try:
        s.sendall(kwire.request(kwire.API_METADATA, 1, 9, kwire.body_metadata(1, [topic])))
        data = kwire.recv_frame(s, timeout=20)
    except OSError:
        return None
    finally:
        s.close()
    pos = 4  # correlation id
    (nbrokers,) = struct.unpack_from(">i", data, pos)
    pos += 4
    for _ in range(nbrokers):
        pos += 4  # node id
        (n,) = struct.unpack_from(">h", data, pos)
        pos += 2 + n + 4  # host, port
        (n,) = struct.unpack_from(">h", data, pos)
        pos += 2 + max(n, 0)  # rack
    pos += 4  # controller id
    (ntopics,) = struct.unpack_from(">i", data, pos)
    assert ntopics == 1, ntopics
    return struct.unpack_from(">h", data, pos + 4)[0]


def test_restarting_broker_never_calls_a_pool_topic_unknown(workdir):
    pool = Pool(workdir, 3).start()
    try:
        create_topic(pool.bootstrap, "rs", 3, 3, {"min.insync.replicas": "2"})
        wait_isr(pool.bootstrap, "rs", 3)
        b = pool.brokers[1]
        assert metadata_error(b, "rs") == 0
        answers = []
        for _ in range(2):
            b.kill9()
            # started again at once: its old session (2 s) still holds its registration
            failed = []

            def start():
                try:
                    b.start(timeout=120)
                except Exception as e:  # reported below
                    failed.append(e)
            th = threading.Thread(target=start)
            th.start()
            while th.is_alive():
                err = metadata_error(b, "rs")
                if err is not None:
                    answers.append(err)
                time.sleep(0.02)
            th.join()
            assert not failed, failed
            wait_isr(pool.bootstrap, "rs", 3, timeout=60)
        # the broker answered while it was starting (its threads serve before it joins)
        assert answers, "the restarting broker never answered before it was ready"
        assert ERR_UNKNOWN_TOPIC_OR_PARTITION not in answers, answers
        assert metadata_error(b, "rs") == 0
    finally:
        pool.stop()


class EtcdReadBlocker:
    """A TCP proxy to etcd on a free loopback port that reads just enough HTTP/1.1 to see
    each request. While blocking, a /v3/kv/range request for a key that starts with
    `blocked` is not sent on and its connection is closed (the broker's read fails, as when
    etcd goes away mid-request); every other request passes, watch streams included."""

    def __init__(self, upstream_port, blocked):
        self.upstream = upstream_port
        self.blocked = blocked.encode()
        self.blocking = True
        self.refused = 0  # requests not sent on
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept_loop, daemon=True).start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def unblock(self):
        self.blocking = False

    def stop(self):
        try:
            self.listener.close()
        except OSError:
            pass

    def _accept_loop(self):
        while True:
            try:
                c, _ = self.listener.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
                u.settimeout(None)
            except OSError:
                c.close()
                continue
            threading.Thread(target=self._pump, args=(u, c), daemon=True).start()
            threading.Thread(target=self._requests, args=(c, u), daemon=True).start()

    @staticmethod
    def _close(*socks):
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass

    def _pump(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        self._close(src, dst)

    def _is_blocked(self, path, body):
        if not self.blocking or path != b"/v3/kv/range":
            return False
        try:
            key = base64.b64decode(json.loads(body)["key"])
        except (ValueError, KeyError, TypeError):
            return False
        return key.startswith(self.blocked)

    def _requests(self, c, u):
        """Client to etcd, request by request (Content-Length bodies; anything else is
        passed on as it comes)."""
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = c.recv(65536)
                    if not data:
                        raise OSError("closed")
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                path = lines[0].split(b" ")[1] if len(lines[0].split(b" ")) > 1 else b""
                length = None
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                if length is None:  # a streamed body: no more requests to look at
                    u.sendall(head + b"\r\n\r\n" + buf)
                    self._pump(c, u)
                    return
                if path != b"/v3/kv/range":  # the head at once (Expect: 100-continue)
                    u.sendall(head + b"\r\n\r\n")
                    while length > 0:
                        if not buf:
                            buf = c.recv(65536)
                            if not buf:
                                raise OSError("closed")
                        u.sendall(buf[:length])
                        length, buf = length - len(buf[:length]), buf[length:]
                    continue
                while len(buf) < length:
                    data = c.recv(65536)
                    if not data:
                        raise OSError("closed")
                    buf += data
                body, buf = buf[:length], buf[length:]
                if self._is_blocked(path, body):
                    self.refused += 1
                    break
                u.sendall(head + b"\r\n\r\n" + body)
        except OSError:
            pass
        self._close(c, u)


def readyz(b):
    try:
        with urllib.request.urlopen("http://%s:%d/readyz" % (b.host, b.admin_port),
                                    timeout=2) as r:
            return r.status == 200
    except Exception:
        return False


def list_kcat(bootstrap):
    """The topics kcat -L lists through bootstrap, or the error it printed."""
    r = subprocess.run(["kcat", "-b", bootstrap, "-L", "-J", "-m", "3"],
                       capture_output=True, timeout=30, text=True)
    if r.returncode != 0:
        return None, r.stderr.strip()[-300:]
    return sorted(t["topic"] for t in json.loads(r.stdout)["topics"]), None


def list_confluent(bootstrap):
    try:
        md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=3)
        return sorted(md.topics), None
    except Exception as e:  # refused: KafkaException(_TRANSPORT / _TIMED_OUT)
        return None, repr(e)


def list_kafka_python(bootstrap):
    a = None
    try:
        a = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000,
                             api_version_auto_timeout_ms=3000)
        return sorted(a.list_topics()), None
    except Exception as e:  # refused: NoBrokersAvailable
        return None, repr(e)
    finally:
        if a:
            a.close()


def list_kafkajs(bootstrap):
    r = subprocess.run(["node", os.path.join(clients.JS_DIR, "list_topics.js"), bootstrap],
                       cwd=clients.JS_DIR, capture_output=True, timeout=60, text=True)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    if "error" in out:
        return None, "%s: %s" % (out["error"], out["message"])
    return sorted(out["topics"]), None


LISTERS = {"kcat": list_kcat, "confluent-kafka": list_confluent,
           "kafka-python": list_kafka_python}
if clients.node_available():
    LISTERS["kafkajs"] = list_kafkajs

NOT_READ_YET = "the pool's state is not read yet after"


def test_broker_that_cannot_read_the_pool_lists_no_partial_pool(workdir):
    topic = "fr"
    pool = Pool(workdir, 3).start()
    blocker = None
    try:
        create_topic(pool.bootstrap, topic, 3, 3)
        wait_isr(pool.bootstrap, topic, 3)
        controller = kcat_metadata(pool.bootstrap)["controllerid"]
        victim = next(b for b in pool.brokers if int(b.extra["broker.id"]) != controller)
        blocker = EtcdReadBlocker(pool.etcd.client_port, pool.prefix + "/partitions/")
        victim.stop()
        victim.extra["metadata.etcd.endpoints"] = blocker.url
        log_from = len(victim.log())
        failed = []

        def start():
            try:
                victim.start(timeout=180)
            except Exception as e:  # reported below
                failed.append(e)
        th = threading.Thread(target=start)
        th.start()

        # registered, its partition states unreadable: past the 15 s a starting broker waits
        # for its first read, it must still never list the pool without the topic
        def past_the_wait():
            listed, _ = list_kcat(victim.bootstrap)
            assert listed is None or topic in listed, (
                "broker %s listed the pool without %s: %s" % (victim.bootstrap, topic, listed))
            return NOT_READ_YET in victim.log()[log_from:]
        wait_for(past_the_wait, timeout=90, interval=0.3,
                 what="broker %s to say it has not read the pool" % victim.bootstrap)
        assert blocker.refused > 0, "no partition-state read was refused"
        assert not readyz(victim)
        for name, lister in LISTERS.items():
            listed, err = lister(victim.bootstrap)
            assert listed is None or topic in listed, (
                "%s through broker %s alone: the pool without %s: %s" % (
                    name, victim.bootstrap, topic, listed))
            print("%s through the unread broker alone: %s" % (name, err or listed))
        # the other brokers answer for the pool meanwhile
        # (through the others alone: a client may keep picking the refusing bootstrap
        # address, and kafkajs gives up after its retries; see docs/replication.md)
        others = ",".join(b.bootstrap for b in pool.brokers if b is not victim)
        for name, lister in LISTERS.items():
            listed, err = lister(others)
            assert listed is not None and topic in listed, (name, listed, err)

        blocker.unblock()
        th.join(timeout=200)
        assert not th.is_alive() and not failed, failed
        wait_isr(pool.bootstrap, topic, 3, timeout=60)
        for name, lister in LISTERS.items():
            listed, err = lister(victim.bootstrap)
            assert listed is not None and topic in listed, (name, listed, err)
    finally:
        if blocker:
            blocker.stop()
        pool.stop()
