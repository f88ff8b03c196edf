#!/usr/bin/env python3
"""test_userside -- what a user touches besides the core pipeline:
--plugin (run and worker, and its errors), the progress bar on a real
terminal (tmux) and its absence on a pipe, the --stats JSON report,
--config files, and `cmake --install` + pkg-config for libtaskfarm.

Environment:
  TASKFARM       the binary (default: $TF_BUILD_DIR/taskfarm)
  TF_BUILD_DIR   the build tree (default: <repo>/build)
  TF_SOURCE_DIR  the source tree (default: the repo this file is in)
  TF_SEED        seed of the random inputs

Every command runs with a hard timeout and every process started is
killed by pid (process group) in tearDown, the tmux server included.
"""

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

SOURCE_DIR = os.path.abspath(os.environ.get("TF_SOURCE_DIR") or os.path.join(HERE, "..", ".."))
BUILD_DIR = os.path.abspath(os.environ.get("TF_BUILD_DIR") or os.path.join(SOURCE_DIR, "build"))
if not os.environ.get("TASKFARM"):
    os.environ["TASKFARM"] = os.path.join(BUILD_DIR, "taskfarm")

import tfharness as h  # noqa: E402

BAD_TIMEOUT = 5  # a rejected invocation must exit within this many seconds
PLUGIN = os.path.join(BUILD_DIR, "examples", "libtokenize_plugin.so")
TOKENIZE = os.path.join(BUILD_DIR, "examples", "tokenize")


def one_line(err):
    """The lines of stderr (bytes) that are not empty."""
    return [ln for ln in err.decode("utf-8", "replace").splitlines() if ln.strip()]


def compile_so(cc, src, out, tmp, extra=()):
    """cc -shared -fPIC src -o out; returns (rc, stderr)."""
    path = os.path.join(tmp, os.path.basename(out) + ".c")
    h.write(path, src.encode())
    rc, _, err = h.run_cmd([cc, "-shared", "-fPIC", "-I" + os.path.join(SOURCE_DIR, "include"),
                            *extra, path, "-o", out], timeout=h.MEDIUM)
    return rc, err.decode("utf-8", "replace")


# ---------------------------------------------------------------------------
# --plugin

NOSYM_SRC = """
int not_the_plugin_entry(void);
int not_the_plugin_entry(void) { return 42; }
"""

PLUGIN_SRC = """
#include <taskfarm_plugin.h>
static int m(void *s, const void *i, size_t l, void **o, size_t *ol)
{ (void)s; (void)i; (void)l; *o = 0; *ol = 0; return 0; }
static const taskfarm_plugin_t p = {%(abi)s, "test", 0, %(map)s, 0};
const taskfarm_plugin_t *taskfarm_plugin(void);
const taskfarm_plugin_t *taskfarm_plugin(void) { return &p; }
"""


class PluginTest(h.TFTestCase):

    def setUp(self):
        super().setUp()
        for path in (PLUGIN, TOKENIZE):
            self.assertTrue(os.path.isfile(path), "%s is not built (TF_BUILD_DIR=%s)"
                            % (path, BUILD_DIR))
        self.env = h.child_env({"TOKENIZE_MS": "1"})

    def reference(self, data):
        """examples/tokenize run sequentially (one process, no sleep)."""
        rc, out, err = h.run_cmd([TOKENIZE, "--ms", "0"], input=data, timeout=h.MEDIUM,
                                 env=self.env, registry=self.reg)
        self.assertEqual(rc, 0, err)
        return out

    def test_run_plugin_matches_tokenize(self):
        """run --plugin gives exactly what examples/tokenize gives, in order,
        for ASCII, UTF-8, empty, long and 1 MiB lines."""
        items = h.gen_items(self.rng, 1500)
        data = h.join_lines(items)
        inp = h.write(self.path("in.txt"), data)
        ref = self.reference(data)
        self.assertEqual(ref.count(b"\n"), len(items))
        for jobs in ("1", "3"):
            with self.subTest(jobs=jobs):
                outp = self.path("out%s.txt" % jobs)
                stats = self.path("stats%s.json" % jobs)
                rc, out, err = self.run_tf("run", "-j", jobs, "--plugin", PLUGIN, "-i", inp,
                                           "-o", outp, "--stats", stats)
                self.assertEqual(rc, 0, err)
                self.assertBytesEqual(h.read(outp), ref)
                st = json.loads(h.read(stats))
                self.assertEqual((st["items"], st["done"], st["failed"]),
                                 (len(items), len(items), 0))
                self.assertEqual(sum(w["slots"] for w in st["workers"]), int(jobs))

    def test_run_plugin_stdin_stdout(self):
        """The plugin on stdin/stdout, a last line without its newline."""
        items = [b"Hello, World!", b"", b"  MiXeD 123 case--x ", b"last"]
        rc, out, err = self.run_tf("run", "-j", "2", "--plugin", PLUGIN,
                                   input=h.join_lines(items, trailing=False))
        self.assertEqual(rc, 0, err)
        self.assertBytesEqual(out, b"hello world\n\nmixed 123 case x\nlast\n")

    def test_worker_plugin_over_ipc(self):
        """`taskfarm worker --plugin` processes (two of them) with a separate
        ventilator and sink over ipc://: same output as tokenize."""
        items = h.gen_items(self.rng, 1200, big=False)
        data = h.join_lines(items)
        inp = h.write(self.path("in.txt"), data)
        ref = self.reference(data)
        vep, sep = self.ipc("vent.sock"), self.ipc("sink.sock")
        outp = self.path("out.txt")
        stats = self.path("vent-stats.json")
        workers = [self.start_tf("worker", "--connect", vep, "--once", "-j", "2",
                                 "--plugin", PLUGIN) for _ in range(2)]
        sink = self.start_tf("sink", "--bind", sep, "--ventilator", vep, "-o", outp)
        vent = self.start_tf("ventilator", "--bind", vep, "-i", inp, "--stats", stats)
        self.assertEqual(self.wait_exit(vent, 90, "ventilator"), 0, self.stderr_of(vent))
        self.assertEqual(self.wait_exit(sink, 20, "sink"), 0, self.stderr_of(sink))
        for i, w in enumerate(workers):
            self.assertEqual(self.wait_exit(w, 20, "--once plugin worker %d" % i), 0,
                             self.stderr_of(w))
        self.assertBytesEqual(h.read(outp), ref)
        st = json.loads(h.read(stats))
        self.assertEqual((st["items"], st["done"], st["failed"]), (len(items), len(items), 0))
        self.assertEqual(st["workers_seen"], 2)
        self.assertEqual(sorted(w["slots"] for w in st["workers"]), [2, 2])

    # -- errors --

    def bad_plugins(self):
        """(what, path) of plugins that must be refused; compiled ones only
        when a C compiler is there."""
        bad = [("missing file", self.path("no-such-plugin.so"))]
        notso = self.path("not-a-plugin.so")
        h.write(notso, b"this is a text file, not a shared object\n" * 40)
        bad.append(("not a shared object", notso))
        empty = self.path("empty.so")
        h.write(empty, b"")
        bad.append(("empty file", empty))
        cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        if not cc:
            sys.stderr.write("\n[test_userside] no C compiler: the compiled bad plugins "
                             "(no symbol, wrong ABI) are not checked\n")
            return bad
        for name, src in (("nosym.so", NOSYM_SRC),
                          ("badabi.so", PLUGIN_SRC % {"abi": "TASKFARM_PLUGIN_ABI + 1",
                                                      "map": "m"}),
                          ("abi0.so", PLUGIN_SRC % {"abi": "0", "map": "m"}),
                          ("nomap.so", PLUGIN_SRC % {"abi": "TASKFARM_PLUGIN_ABI",
                                                     "map": "0"})):
            out = self.path(name)
            rc, err = compile_so(cc, src, out, self.tmp)
            self.assertEqual(rc, 0, "cannot compile %s: %s" % (name, err))
            bad.append((name, out))
        return bad

    def check_refused(self, args, names, what):
        """args exits non-zero within BAD_TIMEOUT, with nothing on stdout
        and one line on stderr that contains every string of names."""
        rc, out, err = self.run_tf(*args, input=b"alpha\nbeta\n", timeout=BAD_TIMEOUT)
        lines = one_line(err)
        self.assertNotEqual(rc, 0, "%s: exit 0; stderr %r" % (what, lines))
        self.assertEqual(out, b"", "%s: wrote to stdout" % what)
        self.assertEqual(len(lines), 1, "%s: expected one line on stderr, got %r" % (what, lines))
        for name in names:
            self.assertIn(name, lines[0], "%s: the error does not name %r" % (what, name))
        return lines[0]

    def test_bad_plugins_refused_by_run(self):
        for what, path in self.bad_plugins():
            with self.subTest(plugin=what):
                self.check_refused(["run", "-j", "2", "--plugin", path], [path],
                                   "run --plugin (%s)" % what)

    def test_bad_plugins_refused_by_worker(self):
        nobody = self.ipc("nobody.sock")
        for what, path in self.bad_plugins():
            with self.subTest(plugin=what):
                self.check_refused(["worker", "--connect", nobody, "--once", "--plugin", path],
                                   [path], "worker --plugin (%s)" % what)

    def test_wrong_abi_message(self):
        """The ABI mismatch says which ABI it found and which it wants."""
        cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        if not cc:
            self.skipTest("no C compiler (cc/gcc/clang) to build a plugin with a wrong ABI")
        out = self.path("abi77.so")
        rc, err = compile_so(cc, PLUGIN_SRC % {"abi": "77", "map": "m"}, out, self.tmp)
        self.assertEqual(rc, 0, err)
        line = self.check_refused(["run", "--plugin", out], [out], "ABI 77")
        self.assertIn("77", line)

    def test_plugin_with_command_refused(self):
        for args in (["run", "--plugin", PLUGIN, "--", "cat"],
                     ["run", "-j", "1", "--plugin", PLUGIN, "--pipe", "--", "tr", "a", "b"],
                     ["worker", "--connect", self.ipc("nobody.sock"), "--once",
                      "--plugin", PLUGIN, "--", "cat"]):
            with self.subTest(args=" ".join(args)):
                self.check_refused(args, ["--plugin"], " ".join(args))


# ---------------------------------------------------------------------------
# --progress

BAR_ITEMS = 60
PANE_DONE = "TF-EXIT="


def find_tmux():
    """Path of tmux, installing it with apt-get when root and missing;
    (path, None) or (None, reason)."""
    path = shutil.which("tmux")
    if path:
        return path, None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, "tmux is not installed (and cannot apt-get install it: not root)"
    try:
        rc, _, err = h.run_cmd(["apt-get", "install", "-y", "-q", "tmux"], timeout=300,
                               env=h.child_env({"DEBIAN_FRONTEND": "noninteractive"}))
    except AssertionError as e:
        return None, "apt-get install tmux did not finish: %s" % str(e).splitlines()[0]
    path = shutil.which("tmux")
    if rc != 0 or not path:
        return None, "apt-get install tmux failed: %s" % err.decode("utf-8", "replace")[-300:]
    return path, None


class ProgressTest(h.TFTestCase):

    def tmux(self, *args, timeout=h.SHORT):
        return h.run_cmd([self.tmux_bin, "-f", "/dev/null", "-S", self.sock, *args],
                         timeout=timeout, registry=self.reg, env=self.env)

    def kill_tmux(self):
        """kill-server, then SIGKILL the pane's process group and the server
        by the pids recorded at start (the server is a daemon outside our
        process registry)."""
        with contextlib.suppress(Exception):
            self.tmux("kill-server", timeout=5)
        for pid, group in ((self.pane_pid, True), (self.server_pid, False)):
            if not pid:
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if group:
                    os.killpg(pid, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGKILL)

    def test_progress_bar_on_terminal(self):
        """On a terminal (a tmux pane), `run` draws a bar by default: N/60,
        a rate, ETA, workers; it is redrawn in place and ends at 60/60."""
        self.tmux_bin, why = find_tmux()
        if not self.tmux_bin:
            self.skipTest(why)
        self.sock = self.path("tmux.sock")
        self.pane_pid = self.server_pid = None
        self.addCleanup(self.kill_tmux)
        items = [b"item-%02d" % i for i in range(BAR_ITEMS)]
        inp = h.write(self.path("in.txt"), h.join_lines(items))
        outp = self.path("out.txt")
        cmd = "%s run -j 2 -i %s -o %s -- sh -c 'sleep 0.05; cat'; echo %s$?; sleep 120" % (
            shlex.quote(self.tf), shlex.quote(inp), shlex.quote(outp), PANE_DONE)
        #  The pane gets a clean environment of our own (C locale, a TERM).
        cmd = "env LC_ALL=C TERM=screen " + cmd
        rc, out, err = self.tmux("new-session", "-d", "-s", "tf", "-x", "160", "-y", "20", cmd)
        if rc != 0:
            self.skipTest("tmux cannot start a session here: %s"
                          % err.decode("utf-8", "replace").strip()[:300])
        rc, out, _ = self.tmux("display-message", "-p", "-t", "tf", "#{pid} #{pane_pid}")
        if rc == 0 and len(out.split()) == 2:
            self.server_pid, self.pane_pid = (int(x) for x in out.split())
        snaps = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rc, out, err = self.tmux("capture-pane", "-p", "-t", "tf")
            self.assertEqual(rc, 0, err)
            text = out.decode("utf-8", "replace")
            snaps.append(text)
            if PANE_DONE in text:
                break
            time.sleep(0.1)
        final = snaps[-1]
        self.assertIn(PANE_DONE, final, "run did not finish within 60 s; pane:\n%s" % final)
        m = re.search(PANE_DONE + r"(\d+)", final)
        self.assertEqual(m and m.group(1), "0", "run failed; pane:\n%s" % final)
        #  Exec mode: cat gets the item as one line and gives it back.
        self.assertBytesEqual(h.read(outp), h.join_lines(items))
        #  While it ran: the bar with N/60, a rate, an ETA and the workers.
        running = [s for s in snaps if PANE_DONE not in s]
        bars = []
        for s in running:
            m = re.search(r"(\d+)/%d\b" % BAR_ITEMS, s)
            if m:
                bars.append((int(m.group(1)), s))
        self.assertTrue(bars, "no progress bar (N/%d) in %d captures taken while run was "
                        "running:\n%s" % (BAR_ITEMS, len(running), "\n--\n".join(running[-3:])))
        for n, s in bars:
            line = next(ln for ln in s.splitlines() if "/%d" % BAR_ITEMS in ln)
            self.assertRegex(line, r"\d+(\.\d+)?\s*/s", "no rate in the bar: %r" % line)
            self.assertIn("ETA", line)
            self.assertRegex(line, r"workers\s*2\b", "no worker count in the bar: %r" % line)
            self.assertLessEqual(n, BAR_ITEMS)
        counts = [n for n, _ in bars]
        self.assertEqual(counts, sorted(counts), "the bar went backwards: %r" % counts)
        if len(set(counts)) < 2:
            sys.stderr.write("\n[test_userside] note: the bar was captured at one value only "
                             "(%r) in %d captures\n" % (counts, len(running)))
        #  At the end: 60/60, and the bar was redrawn in place (one line).
        bar_lines = [ln for ln in final.splitlines() if "/%d" % BAR_ITEMS in ln]
        self.assertEqual(len(bar_lines), 1, "the bar is not redrawn in place:\n%s" % final)
        self.assertIn("%d/%d" % (BAR_ITEMS, BAR_ITEMS), bar_lines[0])

    def test_no_progress_on_a_pipe(self):
        """stderr a pipe: no bar unless --progress; with it, a bar that ends
        at N/N; --no-progress silences --progress given earlier."""
        items = h.gen_short_items(self.rng, 40)
        data = h.join_lines(items)
        want = h.join_lines(items)  # exec mode: cat gets each item as one line
        rc, out, err = self.run_tf("run", "-j", "2", "--", "sh", "-c", "sleep 0.02; cat",
                                   input=data)
        self.assertEqual(rc, 0, err)
        self.assertBytesEqual(out, want)
        self.assertEqual(err, b"", "output on stderr without a terminal and without --progress")
        rc, out, err = self.run_tf("run", "-j", "2", "--progress", "--", "sh", "-c",
                                   "sleep 0.02; cat", input=data)
        self.assertEqual(rc, 0, err)
        self.assertBytesEqual(out, want, "the bar must not go to stdout")
        text = err.decode("utf-8", "replace")
        self.assertIn("40/40", text, "--progress on a pipe: no final 40/40 in %r" % text[-300:])
        self.assertIn("ETA", text)
        rc, out, err = self.run_tf("run", "-j", "2", "--progress", "--no-progress", "--", "cat",
                                   input=data)
        self.assertEqual(rc, 0, err)
        self.assertEqual(err, b"", "--no-progress after --progress still drew a bar")


# ---------------------------------------------------------------------------
# --stats

FAIL_SCRIPT = 'case "$1" in bad*) exit 3;; esac; printf "%s\\n" "$1"'

COUNT_KEYS = ("items", "done", "failed", "retried", "malformed_dropped", "workers_seen")
LATENCY_KEYS = ("count", "mean", "p50", "p90", "p99", "max")


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class StatsTest(h.TFTestCase):

    def check_schema(self, st):
        self.assertIsInstance(st, dict)
        for k in COUNT_KEYS:
            self.assertIn(k, st)
            self.assertTrue(is_int(st[k]) and st[k] >= 0, "%s: %r" % (k, st[k]))
        for k in ("wall_ms", "throughput_per_s"):
            self.assertIn(k, st)
            self.assertTrue(is_num(st[k]) and st[k] >= 0, "%s: %r" % (k, st[k]))
        lat = st.get("latency_us")
        self.assertIsInstance(lat, dict, "latency_us: %r" % lat)
        for k in LATENCY_KEYS:
            self.assertIn(k, lat)
            self.assertTrue(is_num(lat[k]) and lat[k] >= 0, "latency_us.%s: %r" % (k, lat[k]))
        self.assertTrue(is_int(lat["count"]))
        self.assertIsInstance(st.get("workers"), list)
        for w in st["workers"]:
            self.assertIsInstance(w, dict)
            self.assertIsInstance(w.get("name"), str)
            self.assertTrue(w["name"])
            for k in ("slots", "done", "failed"):
                self.assertTrue(is_int(w.get(k)) and w[k] >= 0, "workers[].%s: %r" % (k, w))
            self.assertIsInstance(w.get("lost"), bool)

    def check_latency(self, st):
        lat = st["latency_us"]
        self.assertGreater(lat["count"], 0)
        #  One sample per item whose worker report counted (an ack may
        #  overtake a report): never more than the items done.
        self.assertLessEqual(lat["count"], st["done"] + st["failed"])
        self.assertLessEqual(lat["p50"], lat["p90"])
        self.assertLessEqual(lat["p90"], lat["p99"])
        #  Percentiles come from a histogram (about 5% resolution).
        self.assertLessEqual(lat["p99"], lat["max"] * 1.06 + 1)
        self.assertLessEqual(lat["mean"], lat["max"] + 1)

    def test_stats_all_succeed(self):
        items = h.gen_short_items(self.rng, 300)
        stats = self.path("stats.json")
        t0 = time.monotonic()
        rc, out, err = self.run_tf("run", "-j", "2", "--stats", stats, "--", "sh", "-c",
                                   'sleep 0.002; printf "%s\\n" "$1"', "_", "{}",
                                   input=h.join_lines(items))
        elapsed_ms = (time.monotonic() - t0) * 1000
        self.assertEqual(rc, 0, err)
        self.assertBytesEqual(out, h.join_lines(items))
        st = json.loads(h.read(stats))
        self.check_schema(st)
        self.assertEqual((st["items"], st["done"], st["failed"], st["retried"]), (300, 300, 0, 0))
        self.assertEqual(st["malformed_dropped"], 0)
        self.assertEqual(st["workers_seen"], 2)
        self.assertEqual(len(st["workers"]), 2)
        self.assertEqual(sum(w["done"] for w in st["workers"]), st["done"],
                         "per-worker done: %r" % st["workers"])
        for w in st["workers"]:
            self.assertEqual((w["slots"], w["failed"], w["lost"]), (1, 0, False), w)
            self.assertGreater(w["done"], 0, "a worker did nothing: %r" % st["workers"])
        self.assertGreater(st["wall_ms"], 0)
        self.assertLessEqual(st["wall_ms"], elapsed_ms + 50)
        self.assertAlmostEqual(st["throughput_per_s"], st["done"] / (st["wall_ms"] / 1000.0),
                               delta=st["throughput_per_s"] * 0.02 + 1)
        self.check_latency(st)
        #  The exec commands sleep 2 ms each.
        self.assertGreaterEqual(st["latency_us"]["p50"], 1500, st["latency_us"])

    def test_stats_with_failures_and_retries(self):
        good = h.gen_short_items(self.rng, 200)
        bad = [b"bad-%d" % i for i in range(7)]
        items = good + bad
        self.rng.shuffle(items)
        stats = self.path("stats.json")
        rc, out, err = self.run_tf("run", "-j", "3", "--retries", "2", "--stats", stats, "--",
                                   "sh", "-c", FAIL_SCRIPT, "_", "{}", input=h.join_lines(items))
        self.assertNotEqual(rc, 0, "failed items, yet exit 0")
        self.assertBytesEqual(out, h.join_lines([i for i in items if not i.startswith(b"bad")]))
        st = json.loads(h.read(stats))
        self.check_schema(st)
        self.assertEqual((st["items"], st["done"], st["failed"]), (207, 200, 7))
        self.assertEqual(st["retried"], 7, "one retry per failing item with --retries 2")
        self.assertEqual(st["workers_seen"], 3)
        self.assertEqual(len(st["workers"]), 3)
        self.assertEqual(sum(w["done"] for w in st["workers"]), 200)
        #  Every failed attempt is charged to the worker that made it.
        self.assertEqual(sum(w["failed"] for w in st["workers"]), 14, st["workers"])
        self.check_latency(st)

    def test_stats_empty_input(self):
        stats = self.path("stats.json")
        rc, out, err = self.run_tf("run", "-j", "2", "--stats", stats, "--", "cat", input=b"")
        self.assertEqual(rc, 0, err)
        st = json.loads(h.read(stats))
        self.check_schema(st)
        self.assertEqual((st["items"], st["done"], st["failed"]), (0, 0, 0))
        self.assertEqual(st["latency_us"]["count"], 0)


# ---------------------------------------------------------------------------
# --config


class ConfigTest(h.TFTestCase):

    def config(self, name, obj_or_text):
        text = obj_or_text if isinstance(obj_or_text, (bytes, str)) else json.dumps(obj_or_text)
        if isinstance(text, str):
            text = text.encode()
        return h.write(self.path(name), text)

    def workers_of(self, stats):
        st = json.loads(h.read(stats))
        return st["workers_seen"], len(st["workers"])

    def test_config_keys_work(self):
        """workers, retries and command from the file (exec mode: rev gets
        the item as one line and gives it back reversed)."""
        items = h.gen_short_items(self.rng, 50)
        cfg = self.config("c.json", {"workers": 2, "retries": 1, "command": ["rev"]})
        stats = self.path("stats.json")
        rc, out, err = self.run_tf("run", "--config", cfg, "--stats", stats,
                                   input=h.join_lines(items))
        self.assertEqual(rc, 0, err)
        self.assertBytesEqual(out, h.join_lines([i[::-1] for i in items]))
        self.assertEqual(self.workers_of(stats), (2, 2))

    def test_config_string_and_bool_keys(self):
        """input, output, stats, pipe from the file (pipe mode: one line
        per item)."""
        items = h.gen_short_items(self.rng, 80)
        inp = h.write(self.path("in.txt"), h.join_lines(items))
        outp, stats = self.path("out.txt"), self.path("stats.json")
        cfg = self.config("c.json", {"workers": 2, "input": inp, "output": outp, "stats": stats,
                                     "pipe": True, "command": ["tr", "a-z", "A-Z"]})
        rc, out, err = self.run_tf("run", "--config", cfg)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, b"")
        self.assertBytesEqual(h.read(outp), h.join_lines([i.upper() for i in items]))
        self.assertEqual(json.loads(h.read(stats))["done"], 80)

    def test_command_line_wins(self):
        items = h.gen_short_items(self.rng, 30)
        cfg = self.config("c.json", {"workers": 3, "command": ["rev"]})
        for args, want in ((["-j", "1"], 1), ([], 3), (["--workers", "2"], 2)):
            with self.subTest(args=args):
                stats = self.path("stats%d.json" % want)
                rc, out, err = self.run_tf("run", "--config", cfg, *args, "--stats", stats,
                                           input=h.join_lines(items))
                self.assertEqual(rc, 0, err)
                self.assertEqual(self.workers_of(stats), (want, want))
        #  -j before --config wins too.
        stats = self.path("stats-before.json")
        rc, out, err = self.run_tf("run", "-j", "1", "--config", cfg, "--stats", stats,
                                   input=h.join_lines(items))
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.workers_of(stats), (1, 1), "-j 1 given before --config lost")
        #  A COMMAND on the command line wins over "command".
        rc, out, err = self.run_tf("run", "--config", cfg, "--", "cat", input=h.join_lines(items))
        self.assertEqual(rc, 0, err)
        self.assertBytesEqual(out, h.join_lines(items))

    def check_bad(self, cfg, names, args=("--", "cat")):
        rc, out, err = self.run_tf("run", "--config", cfg, *args, input=b"x\n",
                                   timeout=BAD_TIMEOUT)
        lines = one_line(err)
        self.assertNotEqual(rc, 0, "accepted: %r" % lines)
        self.assertEqual(out, b"")
        self.assertEqual(len(lines), 1, "expected one line, got %r" % lines)
        for n in names:
            self.assertIn(n, lines[0])
        return lines[0]

    def test_unknown_key(self):
        cfg = self.config("unknown.json", b'{\n  "workers": 2,\n  "frobnicate": true\n}\n')
        self.check_bad(cfg, ["frobnicate", "unknown.json"])

    def test_invalid_json(self):
        cfg = self.config("syntax.json", b'{\n  "workers": 2,\n  "retries": 1,\n  oops\n}\n')
        line = self.check_bad(cfg, ["syntax.json"])
        self.assertRegex(line, r"line 4\b", "the error does not name line 4: %r" % line)
        cfg = self.config("trunc.json", b'{"workers": 2,\n')
        self.check_bad(cfg, ["trunc.json"])

    def test_wrong_types(self):
        for name, text, key in (("t1.json", '{"workers": "two"}', "workers"),
                                ("t2.json", '{"retries": [1]}', "retries"),
                                ("t3.json", '{"command": "rev"}', "command"),
                                ("t4.json", '{"command": ["rev", 3]}', "command"),
                                ("t5.json", '{"pipe": 3}', "pipe"),
                                ("t6.json", '{"input": 12}', "input"),
                                ("t7.json", '{"workers": 1.5}', "workers")):
            with self.subTest(config=text):
                #  No COMMAND on the command line: "command" is used.
                self.check_bad(self.config(name, text), [key, name], args=())

    def test_wrong_type_overridden_by_command_line(self):
        """A value of the wrong type is an error even where the command line
        overrides that key."""
        for name, text, args, key in (
                ("o1.json", '{"workers": "two", "command": ["cat"]}', ["-j", "1"], "workers"),
                ("o2.json", '{"command": ["rev", 3]}', ["--", "cat"], "command")):
            with self.subTest(config=text, args=args):
                self.check_bad(self.config(name, text), [key, name], args=args)


# ---------------------------------------------------------------------------
# cmake --install + pkg-config


def cmake_cache(build):
    cache = {}
    with contextlib.suppress(OSError):
        with open(os.path.join(build, "CMakeCache.txt"), encoding="utf-8",
                  errors="replace") as f:
            for line in f:
                m = re.match(r"^([A-Za-z0-9_]+):[A-Z]+=(.*)$", line.rstrip("\n"))
                if m:
                    cache[m.group(1)] = m.group(2)
    return cache


class InstallTest(h.TFTestCase):

    def test_install_and_build_against_it(self):
        cmake = shutil.which("cmake")
        cc = shutil.which("cc") or shutil.which("gcc")
        pkgconf = shutil.which("pkg-config") or shutil.which("pkgconf")
        if not (cmake and cc and pkgconf):
            self.skipTest("needs cmake, cc and pkg-config (found %r %r %r)" % (cmake, cc, pkgconf))
        cache = cmake_cache(BUILD_DIR)
        if not cache:
            self.skipTest("%s is not a configured CMake build tree" % BUILD_DIR)
        #  Build what is installed, only when it is not there (another build
        #  in the same tree may be running: an up-to-date tree is left alone).
        libname = os.path.join(BUILD_DIR, "libtaskfarm.so")
        if not (os.path.exists(os.path.join(BUILD_DIR, "taskfarm")) and os.path.exists(libname)):
            rc, out, err = h.run_cmd([cmake, "--build", BUILD_DIR, "--target", "taskfarm",
                                      "taskfarm_shared", "-j", "2"], timeout=900,
                                     registry=self.reg)
            self.assertEqual(rc, 0, (out + err)[-3000:].decode("utf-8", "replace"))
        prefix = self.path("prefix")
        rc, out, err = h.run_cmd([cmake, "--install", BUILD_DIR, "--prefix", prefix],
                                 timeout=h.LONG, registry=self.reg)
        self.assertEqual(rc, 0, (out + err)[-3000:].decode("utf-8", "replace"))

        #  bin/taskfarm works.
        tf = os.path.join(prefix, "bin", "taskfarm")
        self.assertTrue(os.access(tf, os.X_OK), "no %s" % tf)
        rc, out, err = h.run_cmd([tf, "--help"], timeout=h.SHORT, registry=self.reg)
        self.assertEqual(rc, 0, err)
        self.assertIn(b"run", out)
        self.assertIn(b"worker", out)
        rc, out, err = h.run_cmd([tf, "run", "-j", "2", "--", "cat"], input=b"a\nb\n",
                                 timeout=h.SHORT, registry=self.reg, cwd=self.tmp)
        self.assertEqual((rc, out), (0, b"a\nb\n"), err)

        #  The headers, as in the source tree.
        for hdr in ("taskfarm.h", "taskfarm_plugin.h"):
            got = os.path.join(prefix, "include", hdr)
            self.assertTrue(os.path.isfile(got), "no %s" % got)
            self.assertEqual(h.read(got), h.read(os.path.join(SOURCE_DIR, "include", hdr)), hdr)

        #  The .pc file and the library next to it (lib or lib/<multiarch>).
        pcs = [os.path.join(d, f) for d, _, fs in os.walk(prefix) for f in fs
               if f == "taskfarm.pc"]
        self.assertEqual(len(pcs), 1, "taskfarm.pc under %s: %r" % (prefix, pcs))
        pcdir = os.path.dirname(pcs[0])
        self.assertEqual(os.path.basename(pcdir), "pkgconfig")
        libdir = os.path.dirname(pcdir)
        libs = sorted(f for f in os.listdir(libdir) if f.startswith("libtaskfarm.so"))
        self.assertIn("libtaskfarm.so", libs)
        self.assertTrue(any(re.match(r"libtaskfarm\.so\.\d+$", f) for f in libs), libs)

        #  seed_lib.c, outside the source tree, with pkg-config's flags only.
        outside = self.path("outside")
        os.mkdir(outside)
        src = os.path.join(outside, "seed_lib.c")
        shutil.copy(os.path.join(SOURCE_DIR, "examples", "seed_lib.c"), src)
        penv = h.child_env({"PKG_CONFIG_PATH": pcdir})
        penv.pop("PKG_CONFIG_LIBDIR", None)
        rc, out, err = h.run_cmd([pkgconf, "--cflags", "--libs", "taskfarm"], env=penv,
                                 timeout=h.SHORT, registry=self.reg)
        self.assertEqual(rc, 0, err)
        #  Paths in the flags may be relative to the .pc file (pcfiledir):
        #  compare them normalised.
        flags = [f[:2] + os.path.normpath(f[2:]) if f[:2] in ("-I", "-L") else f
                 for f in shlex.split(out.decode())]
        want_i = "-I" + os.path.normpath(os.path.join(prefix, "include"))
        want_l = "-L" + os.path.normpath(libdir)
        pc_bug = None
        if want_i not in flags or want_l not in flags:
            #  The .pc names another prefix: note it, and go on with the
            #  prefix overridden, to check the rest of the installation.
            given = [f for f in flags if f.startswith("-L")] + [
                f for f in flags if f.startswith("-I") and "taskfarm" not in f][:1]
            pc_bug = ("cmake --install --prefix P: taskfarm.pc keeps the configure-time "
                      "prefix (pkg-config gives %s, expected %s %s)"
                      % (" ".join(given), want_i, want_l))
            rc, out, err = h.run_cmd([pkgconf, "--define-variable=prefix=" + prefix,
                                      "--cflags", "--libs", "taskfarm"], env=penv,
                                     timeout=h.SHORT, registry=self.reg)
            self.assertEqual(rc, 0, err)
            flags = shlex.split(out.decode())
            self.assertIn(want_i, flags)
        extra = []
        if cache.get("TF_SANITIZE", "OFF").upper() in ("ON", "1", "TRUE", "YES"):
            extra = ["-fsanitize=address,undefined"]
        exe = os.path.join(outside, "seed_lib")
        rc, out, err = h.run_cmd([cc, "-o", exe, src, *flags, *extra], timeout=h.MEDIUM,
                                 registry=self.reg, cwd=outside)
        self.assertEqual(rc, 0, "cc %s: %s" % (" ".join(flags), err.decode("utf-8", "replace")))
        renv = h.child_env({"LD_LIBRARY_PATH": libdir})
        if shutil.which("ldd"):
            rc, out, err = h.run_cmd(["ldd", exe], env=renv, timeout=h.SHORT, registry=self.reg)
            m = re.search(rb"libtaskfarm\.so\.\d+ => (\S+)", out)
            self.assertTrue(m, "ldd: %r" % out)
            self.assertEqual(os.path.dirname(os.path.realpath(m.group(1).decode())),
                             os.path.realpath(libdir), "seed_lib does not use the installed lib")
        rc, out, err = h.run_cmd([exe], env=renv, timeout=h.MEDIUM, registry=self.reg,
                                 cwd=outside)
        self.assertEqual(rc, 0, err)
        text = out.decode("utf-8", "replace")
        m = re.search(r"4 workers.*ratio\s+([0-9.]+)", text)
        self.assertTrue(m, "no ratio line in:\n%s" % text)
        ratio = float(m.group(1))
        self.assertGreater(ratio, 0)
        self.assertLess(ratio, 1.0, "4 workers no faster than 1:\n%s" % text)
        self.assertIn('first result: "the quick brown fox item 0"', text)
        if pc_bug:
            self.fail(pc_bug)


if __name__ == "__main__":
    unittest.main()
