"""A pool broker restarted right after a kill -9 (found by the replicated soak,
tests/soak/replicated.py, seed 4): its network threads answer as soon as it starts, but
its old session still holds its registration for up to broker.session.timeout.ms and it
reads the pool's topics from etcd only after registering. Meanwhile its Metadata answered
UNKNOWN_TOPIC_OR_PARTITION for the pool's topics, and a confluent-kafka producer told so
fails every message of a topic that exists (`_UNKNOWN_TOPIC` from produce()). Now it answers
LEADER_NOT_AVAILABLE (retriable) until it has read the pool's topics once.

Fails on the old code: the restarting broker answers error 3 (UNKNOWN_TOPIC_OR_PARTITION).
"""
import struct
import threading
import time

import kwire
from pool_harness import Pool
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
