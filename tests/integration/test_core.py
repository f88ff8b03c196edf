#!/usr/bin/env python3
"""test_core -- `taskfarm run` against a sequential reference computed here.

References:
  exec mode  each item is given to COMMAND on stdin as one line (the
             item, then its separator: '\\n', or NUL with -0) and in place
             of every {}; the result is the whole stdout, concatenated in
             input order with nothing added.
  pipe mode  each item is one line to the co-process; each result is the
             line it answers, written with a terminating '\\n' -- also for
             a last input line that had no newline.
"""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tfharness as h  # noqa: E402

UPPER = bytes.maketrans(b"abcdefghijklmnopqrstuvwxyz", b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")
UTF8_ENV = {"LC_ALL": "C.UTF-8"}

PY_FILTER = ("import sys\n"
             "for line in sys.stdin:\n"
             "    sys.stdout.write(line[:-1][::-1].upper() + '\\n')\n")

#  name -> (COMMAND, reference of one line, extra env)
PIPE_FILTERS = {
    "tr": (["tr", "a-z", "A-Z"], lambda b: b.translate(UPPER), None),
    "rev": (["rev"], lambda b: b.decode()[::-1].encode(), UTF8_ENV),
    "sed": (["sed", "s/a/b/"], lambda b: b.replace(b"a", b"b", 1), None),
    "cut": (["cut", "-c1-5"], lambda b: b[:5], None),
    "perl": (["perl", "-ne", 'chomp; print length($_), ":", scalar reverse($_), "\\n"'],
             lambda b: b"%d:%s" % (len(b), b[::-1]), None),
    "perl -pe": (["perl", "-pe", "s/o/0/g; s/^/>/"], lambda b: b">" + b.replace(b"o", b"0"), None),
    "python3": (["python3", "-c", PY_FILTER], lambda b: b.decode()[::-1].upper().encode(), None),
}

FAIL_SCRIPT = 'case "$1" in bad*) exit 3;; esac; printf "%s\\n" "$1"'
COUNT_SCRIPT = 'echo x >> "$0/$1"; case "$1" in bad*) exit 3;; esac; printf "%s\\n" "$1"'


def arg_safe(items):
    """Items usable as one argv string: below Linux's 128 KiB per argument."""
    return [it for it in items if len(it) < 100000]


class PipeModeTest(h.TFTestCase):

    def check_filter(self, name, trailing, items, extra=()):
        cmd, fn, env = PIPE_FILTERS[name]
        rc, out, err = self.run_tf("run", "--pipe", *extra, "--", *cmd,
                                   input=h.join_lines(items, trailing),
                                   env=h.child_env(env), timeout=h.LONG)
        with self.subTest(filter=name, trailing_newline=trailing):
            self.assertEqual(rc, 0, err[-2000:])
            self.assertBytesEqual(out, h.pipe_reference(items, fn), "%s output" % name)

    def test_filters_mixed_10k(self):
        """tr, rev, sed, cut, perl, python3 as co-processes over 10k mixed
        lines (UTF-8, empty, long, one 1 MiB line), with and without a final
        newline: exactly the sequential result."""
        items = h.gen_items(self.rng, 10000)
        for name in PIPE_FILTERS:
            for trailing in (True, False):
                self.check_filter(name, trailing, items)

    def test_workers_count_variants(self):
        """-j 1, -j 3 and the default give the same exact output."""
        items = h.gen_items(self.rng, 3000)
        for j in (["-j", "1"], ["-j", "3"], []):
            self.check_filter("tr", False, items, extra=j)

    def test_no_pty_cat(self):
        """--pipe --no-pty with a program that does not buffer (cat)."""
        items = h.gen_items(self.rng, 5000)
        rc, out, err = self.run_tf("run", "--pipe", "--no-pty", "-j", "2", "--", "cat",
                                   input=h.join_lines(items, False), timeout=h.LONG)
        self.assertEqual(rc, 0, err[-2000:])
        self.assertBytesEqual(out, h.pipe_reference(items, lambda b: b))

    def test_answering_coprocess_stays_on_pipes(self):
        """Auto mode: a co-process that answers every line at once
        (examples/tokenize, line-buffered, 10 ms per line) is never mistaken
        for one that buffers, even when the worker looks while the item or
        the answer is still in a pipe (4 slots on few cores)."""
        tok = os.path.join(os.path.dirname(h.binary()), "examples", "tokenize")
        if not os.access(tok, os.X_OK):
            self.skipTest("examples/tokenize not built beside %s" % h.binary())
        items = [b"Item %d, of the probe test" % i for i in range(40)]
        want = h.join_lines([b"item %d of the probe test" % i for i in range(40)])
        for _ in range(6):
            rc, out, err = self.run_tf("run", "--pipe", "-j", "4", "-v", "2", "--", tok,
                                       input=h.join_lines(items), timeout=h.LONG)
            self.assertEqual(rc, 0, err[-2000:])
            self.assertBytesEqual(out, want)
            self.assertNotIn(b"pseudo-terminal", err, err[-2000:])

    def test_waiting_worker_does_not_spin(self):
        """While long items run, the worker sleeps in poll: the whole tree
        (run, worker, co-process or commands) uses a small fraction of the
        items' wall time in CPU, in --pipe and exec mode. (A wake-up deadline
        left in the past once made a worker spin until its first item
        completed: ~1 s of CPU here.)"""
        import resource

        def cpu():
            r = resource.getrusage(resource.RUSAGE_CHILDREN)
            return r.ru_utime + r.ru_stime
        slow = 'while read l; do sleep 0.5; echo "$l"; done'
        for mode in (["--pipe", "--", "sh", "-c", slow],
                     ["--", "sh", "-c", 'sleep 0.5; echo "$1"', "_", "{}"]):
            before = cpu()
            #  One item per worker: nothing left to queue behind it.
            rc, out, err = self.run_tf("run", "-j", "2", *mode, input=b"a\nb\n",
                                       timeout=h.LONG)
            used = cpu() - before
            self.assertEqual(rc, 0, err[-2000:])
            self.assertBytesEqual(out, b"a\nb\n")
            self.assertLess(used, 0.3, "%s: %.2f s of CPU for 2 workers waiting 0.5 s each"
                            % (mode[0], used))

    def test_cat_100k_short_lines(self):
        items = [b"%d %s" % (i, b"x" * (i % 13)) for i in range(100000)]
        data = h.join_lines(items)
        rc, out, err = self.run_tf("run", "--pipe", "--", "cat", input=data, timeout=h.LONG)
        self.assertEqual(rc, 0, err[-2000:])
        self.assertBytesEqual(out, data)

    def test_coprocess_exits_early_is_replaced(self):
        """A co-process that quits after 50 lines (head -n 50) is detected
        and replaced; every item still gets its result, in order."""
        items = h.gen_short_items(self.rng, 1000)
        data = h.join_lines(items)
        rc, out, err = self.run_tf("run", "--pipe", "-j", "2", "--retries", "1000", "--",
                                   "head", "-n", "50", input=data, timeout=h.LONG)
        self.assertEqual(rc, 0, err[-2000:])
        self.assertBytesEqual(out, data)

    def test_coprocess_hang_times_out(self):
        """A co-process that hangs on one item: with --timeout that item
        fails, the co-process is replaced, all other items succeed."""
        script = ("import sys, time\n"
                  "for line in sys.stdin:\n"
                  "    if line.startswith('hang'):\n"
                  "        time.sleep(60)\n"
                  "    sys.stdout.write(line)\n")
        items = h.gen_short_items(self.rng, 300)
        items.insert(123, b"hang-me")
        failed = self.path("failed.txt")
        rc, out, err = self.run_tf("run", "--pipe", "-j", "2", "--timeout", "1", "--retries",
                                   "1", "--failed", failed, "--", "python3", "-c", script,
                                   input=h.join_lines(items), timeout=45)
        self.assertNotEqual(rc, 0)
        self.assertIn(b"hang-me", err)
        self.assertEqual(h.read(failed), b"hang-me\n")
        good = [it for it in items if it != b"hang-me"]
        self.assertBytesEqual(out, h.join_lines(good))


class CoprocessEndTest(h.TFTestCase):
    """How a --pipe co-process ends when the job is over: on pipes it reads
    EOF and runs what follows its loop; on a pty (raw mode has no end-of-file
    character) it gets SIGTERM; one that stays is killed with its process
    group after a grace time. (Before, every co-process was SIGKILLed.)"""

    def ends(self, name):
        path = self.path(name)
        return h.read(path).split() if os.path.exists(path) else []

    def test_pipe_coprocess_reads_eof(self):
        mark = self.path("eof")
        loop = 'while read -r l; do printf "%s\\n" "$l"; done; echo "eof $$" >> "$0"'
        items = [b"item %d" % i for i in range(60)]
        for extra in (["--no-pty"], []):
            with self.subTest(mode=extra or "auto"):
                if os.path.exists(mark):
                    os.unlink(mark)
                rc, out, err = self.run_tf("run", "--pipe", "-j", "3", *extra, "--", "sh", "-c",
                                           loop, mark, input=h.join_lines(items),
                                           timeout=h.LONG)
                self.assertEqual(rc, 0, err[-2000:])
                self.assertBytesEqual(out, h.join_lines(items))
                self.assertEqual(self.ends("eof").count(b"eof"), 3,
                                 "each of the 3 co-processes reads EOF and finishes its script")

    def test_pty_coprocess_gets_sigterm(self):
        """Once: a trap that takes a while must not be run twice (a second
        TERM to the group's leader once did, in most runs)."""
        mark = self.path("term")
        script = ('trap \'echo "term $$" >> "$0"; sleep 0.2; exit 0\' TERM; '
                  'while read -r l; do printf "%s\\n" "$l"; done')
        items = [b"item %d" % i for i in range(40)]
        for _ in range(3):
            if os.path.exists(mark):
                os.unlink(mark)
            rc, out, err = self.run_tf("run", "--pipe", "--pty", "-j", "2", "--", "bash", "-c",
                                       script, mark, input=h.join_lines(items), timeout=h.LONG)
            self.assertEqual(rc, 0, err[-2000:])
            self.assertBytesEqual(out, h.join_lines(items))
            ends = self.ends("term")
            self.assertEqual(ends.count(b"term"), 2,
                             "each of the 2 co-processes runs its TERM trap once: %r" % ends)

    def test_coprocess_that_stays_is_killed(self):
        """A co-process that ignores both (and leaves a child behind) is
        killed with its process group: nothing it started outlives run."""
        pids = self.path("pids")
        script = ('trap "" TERM; echo $$ >> "$0"; cat; sleep 300 & echo $! >> "$0"; wait')
        for extra in (["--no-pty"], ["--pty"]):
            with self.subTest(mode=extra):
                if os.path.exists(pids):
                    os.unlink(pids)
                rc, out, err = self.run_tf("run", "--pipe", "-j", "2", *extra, "--", "sh", "-c",
                                           script, pids, input=b"a\nb\nc\n", timeout=h.LONG)
                self.assertEqual(rc, 0, err[-2000:])
                self.assertBytesEqual(out, b"a\nb\nc\n")
                left = [int(x) for x in self.ends("pids")]
                self.assertGreaterEqual(len(left), 2)
                alive = lambda: [p for p in left if p in h.proc_table()  # noqa: E731
                                 and h.proc_table()[p][0] != "Z"]
                self.assertTrue(h.wait_for(lambda: not alive(), 5),
                                "still running after run exited: %s" % alive())


class ExecModeTest(h.TFTestCase):

    def run_ok(self, *args, input=b"", env=None, timeout=h.LONG):
        rc, out, err = self.run_tf("run", *args, input=input, env=env, timeout=timeout)
        self.assertEqual(rc, 0, err[-2000:])
        return out

    def test_wc_c_mixed_10k(self):
        """wc -c per item over 10k mixed items incl. the 1 MiB line: one
        count per item, in order (the item on stdin ends with its newline)."""
        items = h.gen_items(self.rng, 10000)
        out = self.run_ok("--", "wc", "-c", input=h.join_lines(items))
        self.assertBytesEqual(out, h.exec_reference(items, lambda b: b"%d\n" % (len(b) + 1)))

    def test_cat_files_no_trailing_newline(self):
        """-i/-o files, cat, an input without a final newline, the 1 MiB line."""
        items = h.gen_items(self.rng, 1500)
        inp = h.write(self.path("in.txt"), h.join_lines(items, trailing=False))
        outp = self.path("out.txt")
        out = self.run_ok("-i", inp, "-o", outp, "--", "cat")
        self.assertEqual(out, b"", "stdout must stay empty with -o")
        self.assertBytesEqual(h.read(outp), b"".join(it + b"\n" for it in items))

    def test_files_vs_stdio(self):
        """-i/-o give the same bytes as stdin/stdout."""
        items = h.gen_items(self.rng, 800, big=False)
        data = h.join_lines(items)
        inp = h.write(self.path("in.txt"), data)
        outp = self.path("out.txt")
        via_stdio = self.run_ok("--", "wc", "-c", input=data)
        self.assertEqual(self.run_ok("-i", inp, "-o", outp, "--", "wc", "-c"), b"")
        self.assertBytesEqual(h.read(outp), via_stdio)
        self.assertBytesEqual(via_stdio,
                              h.exec_reference(items, lambda b: b"%d\n" % (len(b) + 1)))

    def test_tr_j1(self):
        items = h.gen_items(self.rng, 600, big=False)
        out = self.run_ok("-j", "1", "--", "tr", "a-z", "A-Z", input=h.join_lines(items))
        self.assertBytesEqual(out,
                              h.exec_reference(items, lambda b: (b + b"\n").translate(UPPER)))

    def test_rev_j3(self):
        items = h.gen_items(self.rng, 600, big=False)
        out = self.run_ok("-j", "3", "--", "rev", input=h.join_lines(items),
                          env=h.child_env(UTF8_ENV))
        self.assertBytesEqual(
            out, h.exec_reference(items, lambda b: b.decode()[::-1].encode() + b"\n"))

    def test_echo_braces(self):
        """echo {}: no shell, the item is one argument."""
        items = [it for it in h.gen_items(self.rng, 600, big=False, long_lines=False)
                 if not it.startswith(b"-")]
        out = self.run_ok("--", "echo", "{}", input=h.join_lines(items))
        self.assertBytesEqual(out, h.exec_reference(items, lambda b: b + b"\n"))

    def test_printf_braces_mixed(self):
        """printf '%s|' {} over mixed items (long ones too, below the
        kernel's per-argument limit), no final newline, default -j."""
        items = arg_safe(h.gen_items(self.rng, 1500, big=False))
        items += [b"L" * 60000, "日本😀".encode() * 5000]
        self.rng.shuffle(items)
        if not items[-1]:
            items.append(b"last")  # an input without a final newline cannot end empty
        out = self.run_ok("--", "printf", "%s|", "{}", input=h.join_lines(items, False))
        self.assertBytesEqual(out, h.exec_reference(items, lambda b: b + b"|"))

    def test_brace_substitution(self):
        """Several {} in one argument, {} inside a larger argument, items with
        spaces, quotes and shell characters stay exactly one argument; an
        item that is itself '{}' is not substituted again."""
        items = [b"a b", b"it's", b'say "hi"', b"  lead", b"trail  ", b"", b"*", b"$HOME",
                 b"{}", b"a{}b", b"back\\slash", b"tab\tsep", b"; rm -rf /", "é日本😀".encode()]
        out = self.run_ok("-j", "2", "--", "printf", "[%s]\\n", "pre{}mid{}post", "{}", "x{}",
                          "plain", input=h.join_lines(items))
        ref = h.exec_reference(items, lambda b: b"[pre%smid%spost]\n[%s]\n[x%s]\n[plain]\n"
                               % (b, b, b, b))
        self.assertBytesEqual(out, ref)

    def test_item_too_long_for_argv(self):
        """A {} item longer than an argument may be fails cleanly (reported,
        in --failed), the others succeed."""
        items = [b"one", b"B" * 300000, b"three"]
        failed = self.path("failed.txt")
        rc, out, err = self.run_tf("run", "-j", "2", "--failed", failed, "--", "printf",
                                   "%s\\n", "{}", input=h.join_lines(items))
        self.assertNotEqual(rc, 0)
        self.assertEqual(out, b"one\nthree\n")
        self.assertEqual(h.read(failed), b"B" * 300000 + b"\n")
        self.assertTrue(err.strip(), "failure not reported on stderr")

    def test_null_separated(self):
        """-0: NUL-separated items (which may hold newlines), with and
        without a final NUL, through {} and through stdin."""
        items = [b"a\nb", b"", b"x y", b"line\n", "日本\n😀".encode(), b"'q'"]
        items += [it.replace(b"\x00", b"") for it in h.gen_junk(self.rng, 200, 50)]
        items += [b"\n".join(h.gen_items(self.rng, 5, big=False, long_lines=False))]
        for trailing in (True, False):
            data = h.join_lines(items, trailing, sep=b"\x00")
            with self.subTest(trailing_nul=trailing):
                out = self.run_ok("-0", "--", "printf", "%s|", "{}", input=data)
                self.assertBytesEqual(out, h.exec_reference(items, lambda b: b + b"|"))
                out = self.run_ok("-0", "--", "wc", "-c", input=data)
                self.assertBytesEqual(out,
                                      h.exec_reference(items, lambda b: b"%d\n" % (len(b) + 1)))

    def test_unordered_same_multiset(self):
        items = h.gen_short_items(self.rng, 1500)
        self.rng.shuffle(items)
        out = self.run_ok("--unordered", "-j", "3", "--", "printf", "%s\\n", "{}",
                          input=h.join_lines(items))
        self.assertTrue(out.endswith(b"\n"))
        self.assertEqual(sorted(out.split(b"\n")[:-1]), sorted(items))
        out = self.run_ok("--unordered", "--pipe", "--", "cat", input=h.join_lines(items * 20))
        self.assertEqual(sorted(out.split(b"\n")[:-1]), sorted(items * 20))

    def test_empty_input(self):
        for mode in ([], ["--pipe"]):
            with self.subTest(mode=mode):
                stats = self.path("stats.json")
                rc, out, err = self.run_tf("run", *mode, "--stats", stats, "--", "cat", input=b"")
                self.assertEqual(rc, 0, err)
                self.assertEqual(out, b"")
                st = json.loads(h.read(stats))
                self.assertEqual((st["items"], st["done"], st["failed"]), (0, 0, 0))
                outp = self.path("empty.out")
                rc, out, err = self.run_tf("run", *mode, "-i", "/dev/null", "-o", outp, "--",
                                           "cat")
                self.assertEqual(rc, 0, err)
                self.assertEqual((out, h.read(outp)), (b"", b""))


class QuietTest(h.TFTestCase):

    def test_success_is_quiet(self):
        """A run where every item succeeds writes nothing on stderr (no
        progress bar: stderr is not a terminal)."""
        items = h.gen_short_items(self.rng, 50)
        noisy = []
        for args, data in ((["--", "echo", "{}"], h.join_lines(items)),
                           (["--pipe", "--", "cat"], h.join_lines(items)),
                           (["--", "cat"], b""),
                           (["--pipe", "--", "cat"], b"")):
            for _ in range(3):
                rc, out, err = self.run_tf("run", *args, input=data)
                self.assertEqual(rc, 0, err)
                if err:
                    noisy.append((args, err.decode("utf-8", "replace")))
        self.assertEqual(noisy, [])


class FailureTest(h.TFTestCase):

    def test_failing_items(self):
        """Some items fail: exit non-zero, each failure named on stderr,
        --failed lists exactly those items, the rest are present and ordered."""
        items = h.gen_short_items(self.rng, 300)
        bad = set(self.rng.sample(range(len(items)), 12))
        items = [b"bad-" + it if i in bad else it for i, it in enumerate(items)]
        failed = self.path("failed.txt")
        rc, out, err = self.run_tf("run", "-j", "3", "--retries", "1", "--failed", failed,
                                   "--", "sh", "-c", FAIL_SCRIPT, "_", "{}",
                                   input=h.join_lines(items))
        self.assertNotIn(rc, (0, None))
        good = [it for it in items if not it.startswith(b"bad")]
        badl = [it for it in items if it.startswith(b"bad")]
        self.assertBytesEqual(out, h.join_lines(good))
        self.assertEqual(sorted(h.read(failed).split(b"\n")[:-1]), sorted(badl))
        self.assertTrue(h.read(failed).endswith(b"\n"))
        for it in badl:
            self.assertIn(it, err, "failure of %r not reported on stderr" % it)

    def test_all_fail(self):
        items = h.gen_short_items(self.rng, 20)
        failed = self.path("failed.txt")
        rc, out, err = self.run_tf("run", "-j", "2", "--retries", "1", "--failed", failed,
                                   "--", "false", input=h.join_lines(items))
        self.assertNotEqual(rc, 0)
        self.assertEqual(out, b"")
        self.assertEqual(sorted(h.read(failed).split(b"\n")[:-1]), sorted(items))

    def test_retries_count(self):
        """--retries N: a failing item is attempted exactly N times, a good
        one once (no worker is lost here); stats count the retries."""
        for retries in (1, 2, 3):
            with self.subTest(retries=retries):
                counts = self.path("counts%d" % retries)
                os.mkdir(counts)
                items = [b"item%d" % i for i in range(40)] + [b"bad%d" % i for i in range(5)]
                self.rng.shuffle(items)
                stats = self.path("stats%d.json" % retries)
                rc, out, err = self.run_tf("run", "-j", "2", "--retries", str(retries),
                                           "--stats", stats, "--", "sh", "-c", COUNT_SCRIPT,
                                           counts, "{}", input=h.join_lines(items))
                self.assertNotEqual(rc, 0)
                self.assertBytesEqual(out, h.join_lines([i for i in items if i.startswith(b"item")]))
                for it in items:
                    n = h.read(os.path.join(counts, it.decode())).count(b"x")
                    self.assertEqual(n, retries if it.startswith(b"bad") else 1,
                                     "attempts of %r" % it)
                st = json.loads(h.read(stats))
                self.assertEqual((st["items"], st["done"], st["failed"]), (45, 40, 5))
                self.assertEqual(st["retried"], 5 * (retries - 1))

    def test_timeout_kills_slow_items(self):
        """--timeout 0.5: items whose command sleeps 30 s fail in bounded
        time (the run must end long before the sleeps would)."""
        script = 'case "$1" in slow*) exec sleep 30;; esac; printf "%s\\n" "$1"'
        items = [b"a", b"slow1", b"b", b"slow2", b"c", b"slow3", b"d"]
        failed = self.path("failed.txt")
        rc, out, err = self.run_tf("run", "-j", "2", "--retries", "1", "--timeout", "0.5",
                                   "--failed", failed, "--", "sh", "-c", script, "_", "{}",
                                   input=h.join_lines(items), timeout=25)
        self.assertNotEqual(rc, 0)
        self.assertEqual(out, b"a\nb\nc\nd\n")
        self.assertEqual(sorted(h.read(failed).split(b"\n")[:-1]), [b"slow1", b"slow2", b"slow3"])
        for it in (b"slow1", b"slow2", b"slow3"):
            self.assertIn(it, err)


class StatsTest(h.TFTestCase):

    def test_stats_json(self):
        items = h.gen_short_items(self.rng, 400) + [b"bad-1", b"bad-2"]
        stats = self.path("stats.json")
        rc, out, err = self.run_tf("run", "-j", "2", "--retries", "1", "--stats", stats, "--",
                                   "sh", "-c", FAIL_SCRIPT, "_", "{}", input=h.join_lines(items))
        self.assertNotEqual(rc, 0)
        st = json.loads(h.read(stats))
        for key in ("items", "done", "failed", "workers"):
            self.assertIn(key, st)
        self.assertEqual((st["items"], st["done"], st["failed"]), (402, 400, 2))
        self.assertIsInstance(st["workers"], list)
        self.assertEqual(len(st["workers"]), 2)
        for w in st["workers"]:
            self.assertIn("name", w)
            self.assertIn("done", w)

    def test_stats_per_worker_counts_add_up(self):
        """The per-worker 'done' counts add up to 'done'."""
        items = h.gen_short_items(self.rng, 3000)
        stats = self.path("stats.json")
        rc, out, err = self.run_tf("run", "-j", "2", "--pipe", "--stats", stats, "--", "cat",
                                   input=h.join_lines(items))
        self.assertEqual(rc, 0, err)
        st = json.loads(h.read(stats))
        self.assertEqual(st["done"], 3000)
        self.assertEqual(sum(w["done"] for w in st["workers"]), st["done"], st["workers"])


if __name__ == "__main__":
    unittest.main()
