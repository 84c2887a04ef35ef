"""Small C programs of tests/integration/c/ built against librdkafka for one test module."""
import os
import shutil
import subprocess
import tempfile

from .env import HERE


def c_tool(name):
    """Generator for a fixture: builds c/<name>.c (-lrdkafka) into a temporary directory,
    yields the executable's path, removes it after:
        @pytest.fixture(scope="module")
        def acl_tool():
            yield from c_tool("acl_tool")"""
    d = tempfile.mkdtemp(prefix="kpool-%s-" % name.replace("_", ""))
    exe = os.path.join(d, name)
    r = subprocess.run(["gcc", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O1", "-o", exe,
                        os.path.join(HERE, "c", name + ".c"), "-lrdkafka"],
                       capture_output=True, text=True)
    try:
        assert r.returncode == 0, r.stderr
        yield exe
    finally:
        shutil.rmtree(d, ignore_errors=True)
