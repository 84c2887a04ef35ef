"""Loopback ports for the processes tests start: one at a time (brokers, etcd) or a whole
`kpool up --port-offset K`.

Every port comes from below the kernel's ephemeral range (ip_local_port_range), so an
outgoing connection never takes a port between the moment it is chosen and the moment the
broker binds it, or while a broker restarts on the same port. Under pytest-xdist
(`make test` runs 2 workers, docs/testing.md) that range is split into one zone per worker
(PYTEST_XDIST_WORKER gwN of PYTEST_XDIST_WORKER_COUNT): two workers never hand out the same
port. Within a process no port is handed out twice, so a port a test chose earlier (a
broker that is down for a restart) is never given to another. Each port is still checked
free when chosen (something else on the machine may hold it); Broker and KpoolUp retry on
new ports if they lose a race anyway.
"""
import random
import socket

from .env import worker

# `kpool up` listens on these plus --port-offset K: Kafka, API, schema registry, metrics,
# the Kubernetes API (kubectl)
UP_BASE_PORTS = (9093, 8080, 8081, 9600, 6443)

ZONES_LOW = 10000  # below: well-known ports (a `make up` on 9093+0, benchmarks' 9092, ...)


def up_base_ports(brokers=1):
    """The ports `kpool up --brokers N` listens on at offset 0: UP_BASE_PORTS, and with
    N > 1 etcd's (2379, 2380) and broker B's Kafka and metrics ports 9093/9600 + 10(B-1)
    (src/daemon/up_pool.c)."""
    if brokers <= 1:
        return UP_BASE_PORTS
    return UP_BASE_PORTS + (2379, 2380) + tuple(
        p + 10 * k for k in range(1, brokers) for p in (9093, 9600))


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _zone():
    """[lo, hi): the ports of this process (its xdist worker's share)."""
    hi_all = min(_ephemeral_low(), 65536)
    w, count = worker()
    size = (hi_all - ZONES_LOW) // count
    if size < 8000:
        raise RuntimeError("ports %d..%d are too few for %d test workers" % (ZONES_LOW, hi_all,
                                                                             count))
    return ZONES_LOW + w * size, ZONES_LOW + (w + 1) * size


ZONE = _zone()
_given = set()  # every port this process handed out
_next = [random.randrange(*ZONE)]  # where free_port() looks next (walks the zone)


def port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port():
    """A free port on 127.0.0.1 of this process's zone, not handed out before."""
    lo, hi = ZONE
    for _ in range(hi - lo):
        p = _next[0]
        _next[0] = lo + (p + 1 - lo) % (hi - lo)
        if p not in _given and port_free(p):
            _given.add(p)
            return p
    raise RuntimeError("no free port in %d..%d" % ZONE)


def distinct_ports(n):
    return sorted(free_port() for _ in range(n))


def offset_free(k, base_ports=UP_BASE_PORTS):
    return all(port_free(p + k) for p in base_ports)


def free_offset(base_ports=UP_BASE_PORTS):
    """A --port-offset K whose ports (base_ports + K) are all free, in this process's zone
    and not handed out before."""
    lo, hi = ZONE
    kmin, kmax = lo - min(base_ports), hi - max(base_ports)
    for _ in range(500):
        k = random.randrange(kmin, kmax)
        ports = [p + k for p in base_ports]
        if not _given.intersection(ports) and all(port_free(p) for p in ports):
            _given.update(ports)
            return k
    raise RuntimeError("no free port offset found in %d..%d" % ZONE)
