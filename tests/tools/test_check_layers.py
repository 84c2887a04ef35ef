#!/usr/bin/env python3
"""Self-test of tools/check_layers.py: fake source trees with a violation of each kind must
fail, a clean one must pass, and the real src/ must pass. Run by `make unit`."""
import atexit
import contextlib
import io
import os
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "tools"))
import check_layers  # noqa: E402


def tree(files):
    """A temporary src/ holding {path: text}; returns its path (removed at exit)."""
    d = tempfile.mkdtemp(prefix="layers-")
    atexit.register(shutil.rmtree, d, True)
    src = os.path.join(d, "src")
    for path, text in files.items():
        p = os.path.join(src, path)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
    return src


class CheckLayers(unittest.TestCase):
    def test_clean_tree_passes(self):
        src = tree({"core/buf.h": "#include <stdint.h>\n",
                    "storage/log.c": '#include "core/buf.h"\n#include "storage/log.h"\n',
                    "storage/log.h": '#include "kp_msgs.h"\n',
                    "broker/request.c": '#include "storage/log.h"\n#include "group/c.h"\n'})
        self.assertEqual(check_layers.check(src, allowed={}, allowed_cycles={}), [])

    def test_lower_includes_higher_fails(self):
        src = tree({"storage/log.c": '#include "broker/request.h"\n'})
        errors = check_layers.check(src, allowed={}, allowed_cycles={})
        self.assertEqual(len(errors), 1, errors)
        self.assertIn("src/storage/log.c: storage/ (layer 3) includes broker/request.h", errors[0])

    def test_generated_codec_is_protocol(self):
        src = tree({"core/x.c": '#include "kp_msgs.h"\n'})
        self.assertIn("includes kp_msgs.h of higher protocol/", check_layers.check(src, {}, {})[0])

    def test_peers_do_not_include_each_other(self):
        src = tree({"group/a.c": '#include "registry/r.h"\n'})
        self.assertIn("peer registry/", check_layers.check(src, allowed={}, allowed_cycles={})[0])

    def test_cycle_is_reported(self):
        src = tree({"core/a.c": '#include "net/b.h"\n', "net/b.c": '#include "core/a.h"\n'})
        errors = check_layers.check(src, allowed={}, allowed_cycles={})
        self.assertTrue(any("include cycle between folders: core -> net -> core" in e
                            for e in errors), errors)

    def test_unknown_folder_fails(self):
        src = tree({"plugins/up.c": '#include "core/buf.h"\n'})
        self.assertIn("folder plugins/ has no layer",
                      check_layers.check(src, allowed={}, allowed_cycles={})[0])

    def test_daemon_is_above_control_and_below_cli(self):
        # the composition root may include every module; the modules may not include it
        src = tree({"daemon/d.c": '#include "control/api/api.h"\n#include "broker/broker.h"\n',
                    "cli/up.c": '#include "daemon/daemon.h"\n'})
        self.assertEqual(check_layers.check(src, allowed={}, allowed_cycles={}), [])
        src = tree({"control/api/api.c": '#include "daemon/daemon.h"\n'})
        self.assertIn("includes daemon/daemon.h of higher daemon/",
                      check_layers.check(src, allowed={}, allowed_cycles={})[0])

    def test_allow_list_admits_and_must_stay_used(self):
        src = tree({"storage/log.c": '#include "broker/request.h"\n'})
        allowed = {("src/storage/log.c", "broker/request.h"): "why"}
        self.assertEqual(check_layers.check(src, allowed=allowed, allowed_cycles={}), [])
        stale = dict(allowed)
        stale[("src/net/x.c", "cli/y.h")] = "gone"
        self.assertEqual(check_layers.check(src, allowed=stale, allowed_cycles={}),
                         ["stale allow-list entry (remove it): src/net/x.c -> cli/y.h"])

    def test_storage_names_only_in_the_partition_layer(self):
        src = tree({"storage/log.h": "typedef struct kp_log kp_log_t;\n"
                                     "void kp_log_wait_flush(kp_log_t *log);\n",
                    "replication/partition.c": "void f(kp_log_t *l) { kp_log_wait_flush(l); }\n",
                    "core/logging.h": "void kp_log_limit_hit(void);\n",
                    "broker/log_manager.c": "/* kp_log_manager */ void g(void) "
                                            "{ kp_log_limit_hit(); }\n",
                    "group/offsets.c": "\n  kp_log_wait_flush(p->log);\n"})
        errors = check_layers.check(src, allowed={}, allowed_cycles={})
        self.assertEqual(errors, ["src/group/offsets.c:2: names storage's kp_log_wait_flush "
                                  "outside the partition layer (use replication/partition.h)"])

    def test_module_cycle_is_reported(self):
        src = tree({"control/a.c": '#include "control/a.h"\n#include "control/b.h"\n',
                    "control/a.h": "", "control/b.h": "",
                    "control/b.c": '#include "control/b.h"\n#include "control/a.h"\n'})
        self.assertEqual(check_layers.check(src, {}, {}),
                         ["module include cycle in control/: a -> b -> a (a.c includes "
                          "control/b.h; b.c includes control/a.h)"])

    def test_module_cycle_in_a_subfolder_is_reported(self):
        # control/api/ is part of control/; its modules are named with the subfolder
        src = tree({"control/api/a.c": '#include "control/api/b.h"\n', "control/api/a.h": "",
                    "control/api/b.h": "", "control/kinds.h": "",
                    "control/api/b.c": '#include "control/api/a.h"\n#include "control/kinds.h"\n'})
        self.assertEqual(check_layers.check(src, {}, {}),
                         ["module include cycle in control/: api/a -> api/b -> api/a (api/a.c "
                          "includes control/api/b.h; api/b.c includes control/api/a.h)"])

    def test_longer_module_cycle_through_a_header_is_reported(self):
        src = tree({"group/a.c": '#include "group/b.h"\n', "group/a.h": "",
                    "group/b.h": '#include "group/c.h"\n', "group/b.c": "",
                    "group/c.c": '#include "group/a.h"\n', "group/c.h": ""})
        errors = check_layers.check(src, {}, {})
        self.assertEqual(len(errors), 1, errors)
        self.assertIn("module include cycle in group/: a -> b -> c -> a", errors[0])

    def test_module_cycle_through_a_bare_include_is_reported(self):
        # "b.h" is found next to the including file: the same folder's header
        src = tree({"net/a.c": '#include "b.h"\n#include "kp_msgs.h"\n', "net/a.h": "",
                    "net/b.c": '#include "net/a.h"\n', "net/b.h": ""})
        self.assertEqual(check_layers.check(src, {}, {}),
                         ["module include cycle in net/: a -> b -> a (a.c includes net/b.h; "
                          "b.c includes net/a.h)"])

    def test_module_dag_passes(self):
        src = tree({"control/a.c": '#include "control/b.h"\n#include "control/c.h"\n',
                    "control/a.h": "", "control/b.h": '#include "control/c.h"\n',
                    "control/b.c": '#include "control/b.h"\n', "control/c.h": "",
                    "control/c.c": '#include "control/c.h"\n'})
        self.assertEqual(check_layers.check(src, {}, {}), [])

    def test_private_int_header_is_part_of_its_includers(self):
        # x.c and y.c share x_int.h, which includes x.h: no circle (x_int.h is not a module)
        files = {"group/x.h": "", "group/x.c": '#include "group/x_int.h"\n',
                 "group/x_int.h": '#include "group/x.h"\n',
                 "group/y.c": '#include "group/x_int.h"\n'}
        self.assertEqual(check_layers.check(tree(files), {}, {}), [])
        # ... but x.c and y.c reaching each other through it are one
        files["group/y.h"] = ""
        files["group/x_int.h"] += '#include "group/y.h"\n'
        files["group/y.c"] += '#include "group/x.h"\n'
        errors = check_layers.check(tree(files), {}, {})
        self.assertEqual(errors, ["module include cycle in group/: x -> y -> x (x.c includes "
                                  "group/x_int.h; y.c includes group/x.h)"])

    def test_header_cycle_is_reported(self):
        src = tree({"net/a.h": '#include "net/a_int.h"\n', "net/a.c": "",
                    "net/a_int.h": '#include "net/a.h"\n'})
        self.assertEqual(check_layers.check(src, {}, {}),
                         ["include cycle between headers of net/: a.h -> a_int.h -> a.h"])

    def test_cycle_allow_list_admits_and_must_match_exactly(self):
        src = tree({"net/a.c": '#include "net/b.h"\n', "net/b.c": '#include "net/a.h"\n',
                    "net/a.h": "", "net/b.h": ""})
        self.assertEqual(check_layers.check(src, {}, {("net", ("a", "b")): "why"}), [])
        errors = check_layers.check(src, {}, {("net", ("a", "b", "c")): "gone"})
        self.assertIn("stale module cycle allow-list entry (remove or shrink it): net/ a, b, c",
                      errors)
        self.assertTrue(any(e.startswith("module include cycle in net/: a -> b -> a")
                            for e in errors), errors)

    def test_main_exit_status(self):
        bad = tree({"core/a.c": '#include "cli/main.h"\n'})
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            self.assertEqual(check_layers.main(["check_layers", bad]), 1)
        self.assertIn("includes cli/main.h of higher cli/", err.getvalue())

    def test_real_tree_passes(self):
        self.assertEqual(check_layers.check(os.path.join(ROOT, "src")), [])


if __name__ == "__main__":
    unittest.main()
