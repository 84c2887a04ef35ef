"""The composition root (src/daemon/, issue 13 item 4): a part that cannot start stops the
process cleanly, with one line naming the setting, and takes down what was started before it.

  - `kpool broker` whose admin.listener port is taken: exit 1 with "admin.listener: cannot
    listen on ... (in use?)"; the broker, opened before the endpoint, is closed again (its
    Kafka port is free afterwards, no sanitizer report);
  - `kpool control` whose control.listener port is taken: exit 1 with "control.listener:
    cannot listen on ... (in use?)", no sanitizer report;
"""
import socket
import subprocess

from harness import KPOOL_BIN, assert_clean, free_port, port_free, sanitizer_env


def _hold_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s, s.getsockname()[1]


def test_broker_exits_when_its_admin_port_is_taken(tmp_path):
    held, port = _hold_port()
    kafka = free_port()
    try:
        p = subprocess.run(
            [KPOOL_BIN, "broker", "--set", "listeners=PLAINTEXT://127.0.0.1:%d" % kafka,
             "--set", "admin.listener=127.0.0.1:%d" % port, "--set", "log.dirs=%s" % tmp_path],
            capture_output=True, text=True, timeout=120, env=sanitizer_env())
    finally:
        held.close()
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert ("kpool: cannot start broker: admin.listener: cannot listen on 127.0.0.1:%d "
            "(in use?)" % port) in p.stderr, p.stderr
    assert_clean(p.stderr)
    assert port_free(kafka)  # the broker's listener was closed again


def test_control_exits_when_its_api_port_is_taken(tmp_path):
    held, port = _hold_port()
    try:
        p = subprocess.run(
            [KPOOL_BIN, "control", "--data-dir", str(tmp_path / "ctl"),
             "--set", "control.listener=127.0.0.1:%d" % port],
            capture_output=True, text=True, timeout=120, env=sanitizer_env())
    finally:
        held.close()
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert ("kpool: cannot start the control plane: control.listener: cannot listen on "
            "127.0.0.1:%d (in use?)" % port) in p.stderr, p.stderr
    assert "admin token" not in p.stdout
    assert_clean(p.stderr)

