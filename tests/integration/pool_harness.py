"""A replicated pool for tests: one etcd (etcd_harness.Etcd) and N kpool brokers (the
conftest Broker, with metadata.etcd.endpoints set), all on free loopback ports.

    pool = Pool(workdir, 3).start()
    pool.brokers[0].bootstrap, pool.bootstrap (every broker), pool.etcd.url
    pool.stop()   # SIGTERM each broker (asserting a clean exit), then etcd

broker.session.timeout.ms is short (2 s) so that lease-expiry tests stay fast.
"""
import json
import os
import subprocess
import time

from conftest import Broker
from etcd_harness import Etcd


class Pool:
    def __init__(self, workdir, n, prefix="/kpool/test", extra=None, racks=None):
        self.workdir = workdir
        self.etcd = Etcd(workdir)
        self.prefix = prefix
        self.brokers = []
        for i in range(n):
            props = {
                "broker.id": str(i + 1),
                "metadata.etcd.prefix": prefix,
                "broker.session.timeout.ms": "2000",
                "num.network.threads": "1",
                "log.flush.threads": "1",
            }
            if racks:
                props["broker.rack"] = racks[i % len(racks)]
            props.update(extra or {})
            self.brokers.append(Broker(os.path.join(workdir, "data-%d" % (i + 1)), props))

    @property
    def bootstrap(self):
        return ",".join(b.bootstrap for b in self.brokers)

    def start(self):
        self.etcd.start()
        for b in self.brokers:
            b.extra["metadata.etcd.endpoints"] = self.etcd.url
            b.start()
        self.wait_all_seen()
        return self

    def wait_all_seen(self, timeout=60):
        """Until every broker's Metadata lists every broker of the pool (a broker learns of
        the others through the etcd watch, a moment after they registered)."""
        want = sorted(int(b.extra["broker.id"]) for b in self.brokers)
        for b in self.brokers:
            wait_for(lambda: sorted(x["id"] for x in kcat_metadata(b.bootstrap)["brokers"]) ==
                     want, timeout=timeout, what="all brokers seen by %s" % b.bootstrap)

    def stop(self):
        failures = []
        for b in self.brokers:
            try:
                b.stop()
            except AssertionError as e:
                failures.append(str(e))
        self.etcd.stop()
        assert not failures, "\n".join(failures)


def kcat_metadata(bootstrap, timeout=20):
    """kcat -L as JSON: {"brokers": [...], "topics": [...], "controllerid": ...}."""
    out = subprocess.run(["kcat", "-b", bootstrap, "-L", "-J", "-m", "10"],
                         capture_output=True, timeout=timeout, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def wait_for(pred, timeout=60, interval=0.1, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))
