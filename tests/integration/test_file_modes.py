"""The broker's data tree is private to its user (issue 12 item 9).

Topic data used to be world-readable (*.log 0644 in 0755 directories): every local account
could read every team's records. Now every directory the broker creates is 0700 and every
file 0600, and a data directory left by an older kpool is made private at its root on start.
"""
import os
import stat
import subprocess

from confluent_kafka import Producer


def _produce(bootstrap, topic, n=20):
    p = Producer({"bootstrap.servers": bootstrap, "allow.auto.create.topics": True})
    for i in range(n):
        p.produce(topic, key=b"k%d" % i, value=b"secret-%d" % i)
    assert p.flush(30) == 0


def _modes(root):
    """{path: mode bits} of the root and everything beneath it."""
    out = {root: stat.S_IMODE(os.stat(root).st_mode)}
    for d, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(d, name)
            out[path] = stat.S_IMODE(os.lstat(path).st_mode)
    return out


def test_data_tree_is_private(broker_factory):
    old = os.umask(0o022)  # the usual umask: it must not be what keeps the data private
    try:
        b = broker_factory(auto_create_topics_enable=True)
    finally:
        os.umask(old)
    _produce(b.bootstrap, "private-topic")
    b.restart()  # recovery and index rebuilds create files too
    _produce(b.bootstrap, "private-topic")
    modes = _modes(b.data_dir)
    logs = [p for p in modes if p.endswith(".log")]
    assert logs, modes
    bad = {p: oct(m) for p, m in modes.items()
           if m != (0o700 if os.path.isdir(p) else 0o600)}
    assert not bad, bad


def test_old_world_readable_tree_is_closed_at_start(broker_factory):
    b = broker_factory(auto_create_topics_enable=True)
    _produce(b.bootstrap, "legacy")
    b.stop()
    # what an older kpool left behind
    for d, dirs, files in os.walk(b.data_dir):
        os.chmod(d, 0o755)
        for f in files:
            os.chmod(os.path.join(d, f), 0o644)
    b.start()
    assert stat.S_IMODE(os.stat(b.data_dir).st_mode) == 0o700
    # another account cannot even look inside: checked as the nobody user when we can
    if os.geteuid() == 0:
        os.chmod(os.path.dirname(b.data_dir), 0o711)  # the test's own tmp dir is private
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            "ls", b.data_dir], capture_output=True)
        assert r.returncode != 0, r.stdout
    assert "now mode 0700" in b.log()
