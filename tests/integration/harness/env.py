"""Where the binaries are and how a child process of a test runs (sanitizer options)."""
import os

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/integration
TOP = os.path.dirname(os.path.dirname(HERE))  # the checkout
KPOOL_BIN = os.environ.get("KPOOL_BIN") or os.path.join(HERE, "..", "..", "build", "asan", "kpool")
PYTHON = "/usr/bin/python3"  # the interpreter that has confluent-kafka and kafka-python


def sanitizer_env(base=None, **extra):
    """The environment of a kpool child: base (os.environ) plus extra, with the ASan and
    UBSan options of `make test` unless the caller set its own."""
    env = dict(os.environ if base is None else base, **extra)
    env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env


def assert_clean(text):
    """Fails when a process log holds a sanitizer report."""
    assert "Sanitizer" not in text and "runtime error" not in text, text[-8000:]


def worker():
    """(index, count) of this pytest-xdist worker (gwN of PYTEST_XDIST_WORKER_COUNT); (0, 1)
    outside xdist. Shared resources (ports, test subnets) are split by it."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    w = int(name[2:]) if name.startswith("gw") and name[2:].isdigit() else 0
    return (w, count) if 0 <= w < count else (0, 1)
