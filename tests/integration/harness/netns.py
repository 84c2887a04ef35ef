"""A few test "machines" on this one: network namespaces on a private bridge, with links
the test cuts and heals (the network-partition tests of replicated pools, SPEC §11).

    lab = NetLab.create(3)          # nodes 1..3: namespace, veth, an address on the bridge
    lab.addr(2)                     # node 2's address (10.a.b.2)
    lab.popen(2, [cmd...])          # a process inside node 2
    lab.cut(1, 2)                   # drop everything between nodes 1 and 2 (both ways)
    lab.heal()                      # undo every cut
    lab.destroy()                   # namespaces, links and bridge gone

The test driver stays in the root namespace, which reaches every node over the bridge, so
a cut node is still observable (and writable) by the test: a cut separates nodes from each
other, never from the driver. Cuts are blackhole routes (`ip route replace blackhole`),
which need neither netfilter nor tc modules (this machine's kernel has neither netem nor
iptables). Everything is named after the test process's pid (namespaces `kpn<pid>-<i>`,
bridge `kpnb<pid>`, host-side links `kpnv<pid>x<i>`) on a /24 of 10.0.0.0/8 that no route
of the machine covers yet (each pytest-xdist worker draws from its own share of them), so
tests running side by side do not meet; leftovers of a test process that died are removed
by the next create() (never a live process's: the other worker's are its own).

NetLab.create() raises NetLabUnavailable with the reason when namespaces cannot be made
(not root, no iproute2, no CAP_SYS_ADMIN in a container): tests skip on it.
"""
import ipaddress
import os
import random
import re
import shutil
import subprocess

from .env import worker

BRIDGE_PREFIX = "kpnb"
NS_RE = re.compile(r"^kpn(\d+)-(\d+)$")


class NetLabUnavailable(Exception):
    pass


def _ip(*args, ns=None, check=True):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + ["ip"] + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), p.stderr.strip()))
    return p


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_leftovers():
    """Namespaces and bridges of test processes that no longer exist (a crashed run)."""
    p = _ip("netns", "list", check=False)
    for line in p.stdout.splitlines():
        m = NS_RE.match(line.split()[0]) if line.strip() else None
        if m and not _pid_alive(int(m.group(1))):
            _ip("netns", "del", line.split()[0], check=False)
    p = _ip("-o", "link", "show", "type", "bridge", check=False)
    for line in p.stdout.splitlines():
        m = re.match(r"^\d+: (%s(\d+)):" % BRIDGE_PREFIX, line)
        if m and not _pid_alive(int(m.group(2))):
            _ip("link", "del", m.group(1), check=False)


def _free_subnet():
    """A 10.x.y.0/24 that no route of the root namespace overlaps."""
    used = []
    for line in _ip("-o", "route", "show", "table", "all", check=False).stdout.splitlines():
        tok = line.split()
        for t in tok[:2]:
            try:
                used.append(ipaddress.ip_network(t, strict=False))
                break
            except ValueError:
                continue
    w, count = worker()  # each pytest-xdist worker picks from its own share of 10.100-249
    share = 150 // count
    for _ in range(500):
        net = ipaddress.ip_network("10.%d.%d.0/24" % (100 + w * share + random.randrange(share),
                                                      random.randrange(0, 256)))
        if not any(net.overlaps(u) for u in used if u.prefixlen > 0):
            return net
    raise NetLabUnavailable("no free 10.x.y.0/24 for the test network")


class NetLab:
    def __init__(self, n):
        self.n = n
        self.pid = os.getpid()
        self.bridge = "%s%d" % (BRIDGE_PREFIX, self.pid)
        self.net = None
        self.nodes = []  # indexes 1..n that exist
        self.cuts = set()  # (a, b) with a < b

    # ---- names ----

    def ns(self, i):
        return "kpn%d-%d" % (self.pid, i)

    def host_if(self, i):
        return "kpnv%dx%d" % (self.pid, i)

    def addr(self, i):
        return str(self.net.network_address + i)

    @property
    def root_addr(self):
        return str(self.net.network_address + 254)

    # ---- lifecycle ----

    @classmethod
    def create(cls, n):
        """n nodes (1..n) on a new bridge; NetLabUnavailable when this machine cannot."""
        if shutil.which("ip") is None:
            raise NetLabUnavailable("iproute2 (`ip`) is not installed")
        if os.geteuid() != 0:
            raise NetLabUnavailable("network namespaces need root (running as uid %d)"
                                    % os.geteuid())
        _remove_leftovers()
        lab = cls(n)
        probe = _ip("netns", "add", lab.ns(0), check=False)
        if probe.returncode != 0:
            raise NetLabUnavailable("cannot create a network namespace: " +
                                    probe.stderr.strip())
        _ip("netns", "del", lab.ns(0), check=False)
        try:
            lab._build()
        except Exception:
            lab.destroy()
            raise
        return lab

    def _build(self):
        self.net = _free_subnet()
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", "%s/24" % self.root_addr, "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for i in range(1, self.n + 1):
            ns, hv = self.ns(i), self.host_if(i)
            _ip("netns", "add", ns)
            self.nodes.append(i)
            _ip("link", "add", hv, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("link", "set", hv, "master", self.bridge, "up")
            _ip("addr", "add", "%s/24" % self.addr(i), "dev", "eth0", ns=ns)
            _ip("link", "set", "eth0", "up", ns=ns)
            _ip("link", "set", "lo", "up", ns=ns)

    def destroy(self):
        for i in list(self.nodes):
            _ip("link", "del", self.host_if(i), check=False)
            _ip("netns", "del", self.ns(i), check=False)
        self.nodes = []
        _ip("link", "del", self.bridge, check=False)

    # ---- processes ----

    def command(self, i, args):
        """args run inside node i (`ip netns exec` replaces itself with the command, so the
        process's pid is the command's)."""
        return ["ip", "netns", "exec", self.ns(i)] + list(args)

    def popen(self, i, args, **kw):
        return subprocess.Popen(self.command(i, args), **kw)

    # ---- links ----

    def _blackhole(self, frm, to, add):
        verb = ["route", "replace"] if add else ["route", "del"]
        _ip(*(verb + ["blackhole", "%s/32" % self.addr(to)]), ns=self.ns(frm), check=add)

    def cut(self, a, b):
        """Nothing passes between nodes a and b any more, either way (a TCP peer sees its
        sends vanish, as on a broken link, until its own timeouts fire)."""
        self._blackhole(a, b, True)
        self._blackhole(b, a, True)
        self.cuts.add((min(a, b), max(a, b)))

    def isolate(self, i):
        """Cut node i off from every other node (the test driver still reaches it)."""
        for j in self.nodes:
            if j != i:
                self.cut(i, j)

    def heal(self):
        for a, b in sorted(self.cuts):
            self._blackhole(a, b, False)
            self._blackhole(b, a, False)
        self.cuts.clear()

    def reachable(self, frm, to, port, timeout=2):
        """Whether a TCP connection from node frm to node to:port gets an answer (connected
        or refused) — a probe that a cut is in force or healed."""
        code = ("import socket,sys\n"
                "s=socket.socket();s.settimeout(%r)\n"
                "try:\n s.connect((%r,%d));sys.exit(0)\n"
                "except ConnectionRefusedError: sys.exit(0)\n"
                "except OSError: sys.exit(1)\n") % (timeout, self.addr(to), port)
        p = subprocess.run(self.command(frm, ["/usr/bin/python3", "-c", code]),
                           capture_output=True, timeout=timeout + 20)
        return p.returncode == 0


# ---- kpool and etcd inside nodes ----

from .etcd import Etcd  # noqa: E402
from .procs import Broker  # noqa: E402

KAFKA_PORT, ADMIN_PORT, ETCD_CLIENT_PORT, ETCD_PEER_PORT = 9092, 9644, 2379, 2380


class NsBroker(Broker):
    """A kpool broker inside node i of a NetLab, on that node's address (every node has
    its own, so every broker uses the same ports)."""

    def __init__(self, lab, node, data_dir, extra=None):
        self.lab, self.node = lab, node
        super().__init__(data_dir, extra)
        self.host = lab.addr(node)
        self.port, self.admin_port = KAFKA_PORT, ADMIN_PORT
        self.log_path = os.path.join(os.path.dirname(data_dir), "broker-node%d.log" % node)

    def args(self):
        return self.lab.command(self.node, super().args())


class NsEtcd(Etcd):
    """etcd inside node i of a NetLab (so that a cut can separate a broker from it)."""

    def __init__(self, lab, node, workdir):
        self.lab, self.node = lab, node
        super().__init__(workdir)
        self.host = lab.addr(node)
        self.client_port, self.peer_port = ETCD_CLIENT_PORT, ETCD_PEER_PORT

    def command(self, args):
        return self.lab.command(self.node, args)
