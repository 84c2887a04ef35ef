"""Moved to harness/etcd.py; this name stays for branches not merged yet (replication)
that `from etcd_harness import Etcd`. New code: `from harness.etcd import Etcd`."""
from harness.etcd import ETCD_BIN, Etcd  # noqa: F401
