"""A partition change that arrives while etcd cannot be read is applied once it can (found by
the replicated soak, tests/soak/replicated.py, seed 4: a broker isolated from the pool, then
etcd restarted; the broker kept leading __consumer_offsets-0 in its own view for good, its
group coordinator a zombie that clients were sent to).

A watch event only names the record that changed; the broker re-reads it from etcd. When that
read failed (etcd away) the change was dropped — the watch does not deliver it again — and
the broker kept its stale view until something else changed that partition. Now a failed
read makes the broker read the whole pool again once etcd answers.

Each broker talks to etcd through a proxy of the test's own (EtcdProxy), which can hold
back what etcd sends on the watch stream and refuse every other connection: the test holds
a victim broker's watch, moves a partition's leadership (kill -9 of its leader), then
refuses the victim's reads, releases the watch (the victim learns of the change and cannot
read it), and lets reads through again.

Fails on the old code: the victim's Metadata keeps naming the dead leader.
"""
import select
import socket
import threading
import time

from pool_harness import Pool, kcat_metadata, wait_for
from test_pool import create_topic, wait_isr

TOPIC = "wt"


class EtcdProxy:
    """A TCP proxy to etcd on a free loopback port. hold_watch(): what etcd sends on watch
    streams (requests to /v3/watch) is kept back; refuse(): every other connection is closed
    and new ones are refused; release(): the kept bytes are sent and connections accepted
    again (in that order: first release_watch(), then accept())."""

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.lock = threading.Lock()
        self.holding = False
        self.held = {}  # client socket -> bytes kept back
        self.conns = []  # (client, upstream, is_watch)
        self.stopped = False
        self.listener = None
        self.port = None
        self.accept()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def accept(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port or 0))
        s.listen(64)
        self.port = s.getsockname()[1]
        self.listener = s
        threading.Thread(target=self._accept_loop, args=(s,), daemon=True).start()

    def _accept_loop(self, s):
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
            except OSError:
                c.close()
                continue
            threading.Thread(target=self._pump, args=(c, u), daemon=True).start()

    def _pump(self, c, u):
        watch = None
        entry = None
        try:
            while not self.stopped:
                r, _, _ = select.select([c, u], [], [], 0.2)
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        return
                    if s is c:
                        if watch is None:
                            watch = b"/v3/watch" in data
                            entry = (c, u, watch)
                            with self.lock:
                                self.conns.append(entry)
                        u.sendall(data)
                    else:
                        with self.lock:
                            if watch and self.holding:
                                self.held[c] = self.held.get(c, b"") + data
                                continue
                        c.sendall(data)
        except OSError:
            pass
        finally:
            with self.lock:
                if entry in self.conns:
                    self.conns.remove(entry)
            for s in (c, u):
                try:
                    s.close()
                except OSError:
                    pass

    def hold_watch(self):
        with self.lock:
            self.holding = True

    def refuse(self):
        """No new connection; every connection but the watch streams closed."""
        self.listener.close()
        with self.lock:
            for c, u, watch in list(self.conns):
                if not watch:
                    for s in (c, u):
                        try:
                            s.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass

    def release_watch(self):
        with self.lock:
            self.holding = False
            for c, data in self.held.items():
                try:
                    c.sendall(data)
                except OSError:
                    pass
            n = sum(len(d) for d in self.held.values())
            self.held = {}
        return n

    def stop(self):
        self.stopped = True
        try:
            self.listener.close()
        except OSError:
            pass


def bid(b):
    return int(b.extra["broker.id"])


def leaders(bootstrap):
    """{partition: leader} of TOPIC as the broker(s) at bootstrap answer."""
    for t in kcat_metadata(bootstrap)["topics"]:
        if t["topic"] == TOPIC:
            return {p["partition"]: p["leader"] for p in t["partitions"]}
    return {}


def test_change_read_while_etcd_is_away_is_applied_later(workdir):
    # a session long enough that the victim keeps it while its reads are refused; followers
    # that stop fetching stay in the ISR (so that nothing else changes the partition)
    pool = Pool(workdir, 3, extra={"broker.session.timeout.ms": "6000",
                                   "replica.lag.time.max.ms": "120000"})
    proxies = []
    try:
        pool.etcd.start()
        for b in pool.brokers:
            proxies.append(EtcdProxy(pool.etcd.client_port))
            b.extra["metadata.etcd.endpoints"] = proxies[-1].url
            b.start()
        pool.wait_all_seen()
        create_topic(pool.bootstrap, TOPIC, 6, 3)
        wait_isr(pool.bootstrap, TOPIC, 3)
        controller = kcat_metadata(pool.brokers[0].bootstrap)["controllerid"]
        # the victim: neither the controller (its sweeps read the store anyway) nor the
        # leader that dies
        victim, proxy = next((b, x) for b, x in zip(pool.brokers, proxies)
                             if bid(b) != controller)
        doomed = next(b for b in pool.brokers if b is not victim and bid(b) != controller)
        before = leaders(victim.bootstrap)
        moved = [p for p, ld in before.items() if ld == bid(doomed)]
        assert moved, before

        proxy.hold_watch()
        doomed.kill9()
        others = next(b for b in pool.brokers if b is not victim and b is not doomed)
        after = wait_for(lambda: (lambda ls: ls if all(ls.get(p, -1) not in (-1, bid(doomed))
                                                       for p in moved) else None)(
            leaders(others.bootstrap)), timeout=60, interval=0.5,
            what="new leaders elected for %s" % moved)
        time.sleep(1)  # the store's change is on the (held) watch stream
        assert all(leaders(victim.bootstrap)[p] == bid(doomed) for p in moved)

        proxy.refuse()
        assert proxy.release_watch() > 0, "nothing was held back on the watch stream"
        time.sleep(1.5)  # the victim learns of the change and cannot read it
        proxy.accept()

        wait_for(lambda: all(leaders(victim.bootstrap).get(p) == after[p] for p in moved),
                 timeout=30, interval=0.5,
                 what="broker %d to apply the new leaders %s (it saw %s)" % (
                     bid(victim), {p: after[p] for p in moved},
                     {p: leaders(victim.bootstrap).get(p) for p in moved}))
        doomed.start()
        wait_isr(pool.bootstrap, TOPIC, 3, timeout=60)
    finally:
        for x in proxies:
            x.stop()
        pool.stop()
