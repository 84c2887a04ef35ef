"""Replicated pools (issue 14, SPEC §11): several `kpool broker` processes joined through
etcd (pool_harness.Pool: a real etcd and real brokers on loopback ports).

  - membership: every broker registers under its session; Metadata (kcat -L) from any
    broker lists every live broker and one controller that all agree on;
  - a SIGTERM'ed broker leaves at once (controlled shutdown), a kill -9'ed one when its
    session expires, and a restarted one joins again; the controller moves when its broker
    goes;
  - identity: a data directory of another cluster is refused with a message naming both
    cluster ids, and a new data directory adopts the pool's id.
"""
import json
import os
import subprocess
import time

import pytest

from conftest import Broker
from pool_harness import Pool, kcat_metadata, wait_for


@pytest.fixture
def pool3(workdir):
    p = Pool(workdir, 3).start()
    yield p
    p.stop()


def broker_ids(md):
    return sorted(b["id"] for b in md["brokers"])


def test_three_brokers_one_cluster(pool3):
    """kcat -L through each broker shows all three, the same controller and cluster id.
    (Fails on the old code: each broker answered with itself only.)"""
    seen = set()
    for b in pool3.brokers:
        md = wait_for(lambda: (lambda m: m if broker_ids(m) == [1, 2, 3] else None)(
            kcat_metadata(b.bootstrap)), what="3 brokers in metadata via %s" % b.bootstrap)
        ports = sorted(int(x["name"].rsplit(":", 1)[1]) for x in md["brokers"])
        assert ports == sorted(x.port for x in pool3.brokers)
        seen.add(md["controllerid"])
    assert len(seen) == 1 and seen.pop() in (1, 2, 3)
    # one cluster id, stored once in etcd and adopted by every data directory
    ids = set()
    for b in pool3.brokers:
        with open(os.path.join(b.data_dir, "meta", "cluster.json")) as f:
            ids.add(json.load(f)["cluster_id"])
    assert len(ids) == 1


def test_brokers_leave_and_rejoin(pool3):
    """SIGTERM: the broker leaves at once; kill -9: it goes when its session expires (2 s
    here); the controller moves off a dead broker; a restarted broker is back."""
    first = pool3.brokers[0]
    md = kcat_metadata(first.bootstrap)
    controller = md["controllerid"]
    survivor = next(b for b in pool3.brokers if int(b.extra["broker.id"]) != controller)
    # kill the controller: its session expires, another broker takes over
    dead = next(b for b in pool3.brokers if int(b.extra["broker.id"]) == controller)
    t0 = time.time()
    dead.kill9()
    md = wait_for(lambda: (lambda m: m if controller not in broker_ids(m) and
                           m["controllerid"] not in (-1, controller) else None)(
        kcat_metadata(survivor.bootstrap)), timeout=15, what="the controller's replacement")
    detect = time.time() - t0
    assert detect < 8, detect
    assert len(md["brokers"]) == 2
    # controlled shutdown: gone at once
    other = next(b for b in pool3.brokers if b is not dead and b is not survivor)
    other.stop()
    wait_for(lambda: broker_ids(kcat_metadata(survivor.bootstrap)) ==
             [int(survivor.extra["broker.id"])], timeout=3, what="the stopped broker gone")
    # both come back (the killed one waits out its old session if it still lives)
    dead.start(timeout=30)
    other.start()
    wait_for(lambda: broker_ids(kcat_metadata(survivor.bootstrap)) == [1, 2, 3],
             what="all three back")


def test_refuses_another_clusters_metadata(workdir):
    """A standalone data directory (its own cluster id) pointed at an etcd prefix that holds
    another pool refuses to start, naming both ids; nothing in it is changed. (Fails on the
    old code: metadata.etcd.endpoints was ignored.)"""
    pool = Pool(workdir, 1).start()
    try:
        standalone = Broker(os.path.join(workdir, "standalone"), {"num.network.threads": "1"})
        standalone.start()
        standalone.stop()
        with open(os.path.join(standalone.data_dir, "meta", "cluster.json")) as f:
            before = f.read()
        standalone.extra.update({"metadata.etcd.endpoints": pool.etcd.url,
                                 "metadata.etcd.prefix": pool.prefix, "broker.id": "7"})
        proc = subprocess.run(standalone.args(), capture_output=True, text=True, timeout=30)
        assert proc.returncode != 0
        text = proc.stdout + proc.stderr
        assert "refusing to start" in text and "holds the metadata of cluster" in text, text
        with open(os.path.join(standalone.data_dir, "meta", "cluster.json")) as f:
            assert f.read() == before
        # the pool is untouched
        assert broker_ids(kcat_metadata(pool.brokers[0].bootstrap)) == [1]
    finally:
        pool.stop()


def test_bad_cluster_settings_are_refused(workdir):
    """A prefix that is not a key path and an unreachable etcd are clear startup errors."""
    b = Broker(os.path.join(workdir, "d"), {"metadata.etcd.endpoints": "http://127.0.0.1:1",
                                            "metadata.etcd.prefix": "nope"})
    proc = subprocess.run(b.args(), capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0 and "metadata.etcd.prefix" in proc.stdout + proc.stderr
    b.extra["metadata.etcd.prefix"] = "/kpool/x"
    proc = subprocess.run(b.args(), capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "metadata.etcd.endpoints" in proc.stdout + proc.stderr
