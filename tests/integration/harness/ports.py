"""Free loopback ports: one at a time (brokers, etcd) or a `kpool up --port-offset`."""
import random
import socket

# `kpool up` listens on these plus --port-offset K: Kafka, API, schema registry, metrics,
# the Kubernetes API (kubectl)
UP_BASE_PORTS = (9093, 8080, 8081, 9600, 6443)


def free_port():
    """A port the kernel just handed out (and closed again) on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def distinct_ports(n):
    ports = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


def port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def offset_free(k, base_ports=UP_BASE_PORTS):
    return all(port_free(p + k) for p in base_ports)


def free_offset(base_ports=UP_BASE_PORTS):
    """A --port-offset K whose ports (base_ports + K) are all free, and below the ephemeral
    range, so outgoing connections do not take them meanwhile."""
    for _ in range(200):
        k = random.randrange(1000, 22000)
        if offset_free(k, base_ports):
            return k
    raise RuntimeError("no free port offset found")
