"""The integration-test harness: one place for the processes tests start and the ports,
certificates and fake servers they use. The fixtures over it are in conftest.py; see
docs/testing.md ("The test harness").

  env.py    KPOOL_BIN, PYTHON, sanitizer_env(), assert_clean()
  ports.py  free_port(), distinct_ports(), free_offset() (a `kpool up --port-offset`)
  procs.py  Broker (`kpool broker`), KpoolUp (`kpool up`)
  etcd.py   Etcd (a real etcd member), ETCD_DRIVER
  netns.py  NetLab (network namespaces whose links a test cuts), NsBroker, NsEtcd
  pki.py    OpensslPki (a test CA), server_ca(), openssl_pkcs12()
  fakes.py  FakeHandler and serve() for fake HTTP APIs
  cluster.py  where multi-broker clusters (replicated pools) plug in
"""
from .env import HERE, KPOOL_BIN, PYTHON, TOP, assert_clean, sanitizer_env  # noqa: F401
from .ports import UP_BASE_PORTS, distinct_ports, free_offset, free_port, port_free  # noqa: F401
from .procs import Broker, KpoolUp, up_fixture  # noqa: F401
