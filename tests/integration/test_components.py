#!/usr/bin/env python3
"""test_components -- ventilator, sink and workers as separate processes over
TCP (127.0.0.1) and ipc:// (socket files in the test's temp dir): exact
output, clean exits, a worker killed mid-job, a late worker, a long-lived
worker serving consecutive jobs, SIGTERM to `run`."""

import json
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tfharness as h  # noqa: E402

#  Exec mode: the item (no terminator) on stdin -> the item plus '\n'.
#  Pipe mode: the line -> the same line. So both give item + '\n'.
AWK_LINE = "{print} END{if (NR==0) print \"\"}"
SLOW_ECHO = 'sleep 0.01; printf "%s\\n" "$1"'
#  $0 is a log file: every item the worker runs is recorded there.
LOGGED_ECHO = 'printf "%s\\n" "$1" >> "$0"; sleep 0.01; printf "%s\\n" "$1"'

JOB_TIMEOUT = 90


class ComponentsTest(h.TFTestCase):

    def endpoints(self, transport):
        if transport == "tcp":
            return h.tcp_endpoint(), h.tcp_endpoint()
        return self.ipc("vent.sock"), self.ipc("sink.sock")

    def worker_stats(self, st, p):
        """The --stats entry of the worker process p (named HOST:PID)."""
        suffix = ":%d" % p.pid
        return [w for w in st["workers"] if w["name"].endswith(suffix)]

    def check_job_mixed(self, transport, trailing):
        items = h.gen_items(self.rng, 10000)
        inp = h.write(self.path("in.txt"), h.join_lines(items, trailing))
        outp = self.path("out.txt")
        stats = self.path("vent-stats.json")
        vep, sep = self.endpoints(transport)
        #  Ventilator and workers first; the sink (which starts the job) only
        #  once every worker is connected, so that none of these --once
        #  workers can miss the job.
        vent = self.start_tf("ventilator", "--bind", vep, "-i", inp, "--stats", stats)
        workers = [
            self.start_tf("worker", "--connect", vep, "--once", "-j", "2", "--", "awk", AWK_LINE),
            self.start_tf("worker", "--connect", vep, "--once", "-j", "2", "--pipe", "--", "cat"),
            self.start_tf("worker", "--connect", vep, "--once", "-j", "1", "--pipe", "--",
                          "awk", "{print}"),
        ]
        self.wait_workers(vep, 3, vent)
        sink = self.start_tf("sink", "--bind", sep, "--ventilator", vep, "-o", outp)
        self.assertEqual(self.wait_exit(vent, JOB_TIMEOUT, "ventilator"), 0, self.stderr_of(vent))
        self.assertEqual(self.wait_exit(sink, 20, "sink"), 0, self.stderr_of(sink))
        for i, w in enumerate(workers):
            self.assertEqual(self.wait_exit(w, 20, "--once worker %d" % i), 0, self.stderr_of(w))
        self.assertBytesEqual(h.read(outp), h.join_lines(items, True))
        self.assertEqual(h.read(sink.out_path), b"", "sink wrote to stdout despite -o")
        st = json.loads(h.read(stats))
        self.assertEqual((st["items"], st["done"], st["failed"]), (10000, 10000, 0))

    def test_tcp_mixed_workers(self):
        self.check_job_mixed("tcp", True)

    def test_ipc_mixed_workers_no_trailing_newline(self):
        self.check_job_mixed("ipc", False)

    def test_worker_killed_and_late_worker(self):
        """SIGKILL one of three workers after some output exists, then start a
        late worker: output complete, ordered, nothing doubled; the late
        worker gets items; the killed one is reported lost."""
        items = h.gen_short_items(self.rng, 1200)
        inp = h.write(self.path("in.txt"), h.join_lines(items))
        outp = self.path("out.txt")
        stats = self.path("vent-stats.json")
        late_log = self.path("late.log")
        vep, sep = self.endpoints("tcp")
        vent = self.start_tf("ventilator", "--bind", vep, "-i", inp, "--stats", stats)
        workers = [self.start_tf("worker", "--connect", vep, "--once", "-j", "2", "--", "sh",
                                 "-c", SLOW_ECHO, "_", "{}") for _ in range(3)]
        self.wait_workers(vep, 3, vent)
        sink = self.start_tf("sink", "--bind", sep, "--ventilator", vep, "-o", outp)
        if not h.wait_for(lambda: h.file_size(outp) > 600 or vent.poll() is not None, 60):
            self.fail("no output after 60 s: %s" % self.stderr_of(vent))
        self.assertIsNone(vent.poll(), "job ended before the kill; make it longer")
        victim = workers[1]
        self.reg.kill(victim, signal.SIGKILL)
        self.wait_exit(victim, 10, "killed worker")
        before = h.connections(vep)
        late = self.start_tf("worker", "--connect", vep, "--once", "-j", "2", "--", "sh", "-c",
                             LOGGED_ECHO, late_log, "{}")
        self.wait_workers(vep, before + 1, vent)
        self.assertIsNone(vent.poll(), "job ended before the late worker joined; make it longer")
        self.assertEqual(self.wait_exit(vent, JOB_TIMEOUT, "ventilator"), 0, self.stderr_of(vent))
        self.assertEqual(self.wait_exit(sink, 20, "sink"), 0, self.stderr_of(sink))
        for w in (workers[0], workers[2], late):
            self.assertEqual(self.wait_exit(w, 20, "--once worker"), 0, self.stderr_of(w))
        self.assertBytesEqual(h.read(outp), h.join_lines(items))
        ran_late = h.read(late_log).split(b"\n")[:-1] if os.path.exists(late_log) else []
        self.assertTrue(ran_late, "the late worker received no item")
        self.assertTrue(set(ran_late) <= set(items))
        st = json.loads(h.read(stats))
        self.assertEqual((st["items"], st["done"], st["failed"]), (1200, 1200, 0))
        self.assertGreaterEqual(st["workers_lost"], 1)
        entry = self.worker_stats(st, victim)
        self.assertEqual(len(entry), 1, "killed worker missing from stats: %r" % st["workers"])
        self.assertTrue(entry[0]["lost"])
        entry = self.worker_stats(st, late)
        self.assertEqual(len(entry), 1, "late worker missing from stats: %r" % st["workers"])
        self.assertGreater(entry[0]["done"], 0, "late worker did no item per --stats")
        #  Per-worker counts are executions: an item re-run after the loss
        #  may count twice, but none is missing.
        self.assertGreaterEqual(sum(w["done"] for w in st["workers"]), 1200, st["workers"])

    def test_long_lived_worker_two_jobs(self):
        """A worker without --once serves two consecutive jobs (new
        ventilator and sink on the same endpoints), and keeps running."""
        vep, sep = self.endpoints("tcp")
        worker = self.start_tf("worker", "--connect", vep, "-j", "2", "--pipe", "--", "tr",
                               "a-z", "A-Z")
        #  In the C locale awk's toupper, like tr, changes a-z only.
        exec_worker = self.start_tf("worker", "--connect", vep, "-j", "1", "--", "awk",
                                    "{print toupper($0)} END{if (NR==0) print \"\"}")
        upper = bytes.maketrans(b"abcdefghijklmnopqrstuvwxyz", b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        for job in range(2):
            items = h.gen_items(self.rng, 3000, big=(job == 1))
            inp = h.write(self.path("in%d.txt" % job), h.join_lines(items))
            outp = self.path("out%d.txt" % job)
            stats = self.path("stats%d.json" % job)
            vent = self.start_tf("ventilator", "--bind", vep, "-i", inp, "--stats", stats)
            #  Both workers (re)connect to this job's ventilator before it starts.
            self.wait_workers(vep, 2, vent)
            sink = self.start_tf("sink", "--bind", sep, "--ventilator", vep, "-o", outp)
            self.assertEqual(self.wait_exit(vent, JOB_TIMEOUT, "ventilator of job %d" % job), 0,
                             self.stderr_of(vent))
            self.assertEqual(self.wait_exit(sink, 20, "sink of job %d" % job), 0,
                             self.stderr_of(sink))
            self.assertBytesEqual(h.read(outp), h.pipe_reference(items, lambda b: b.translate(upper)),
                                  "job %d output" % job)
            self.assertIsNone(worker.poll(), "long-lived worker exited after job %d: %s"
                              % (job, self.stderr_of(worker)))
            self.assertIsNone(exec_worker.poll(), "long-lived worker exited after job %d: %s"
                              % (job, self.stderr_of(exec_worker)))
            st = json.loads(h.read(stats))
            self.assertEqual((st["items"], st["done"], st["failed"]), (len(items), len(items), 0))
            for w in (worker, exec_worker):
                self.assertEqual(len(self.worker_stats(st, w)), 1,
                                 "worker %d not in job %d's stats: %r" % (w.pid, job, st["workers"]))
        for w in (worker, exec_worker):
            self.reg.kill(w)
            self.assertIsNotNone(h.wait_proc(w, 10), "worker survived SIGKILL")


#  Heartbeats for jobs whose counterparts must be found gone quickly.
FAST_HB = ("--heartbeat", "0.05", "--heartbeat-timeout", "0.2")


class SinkLimitTest(h.TFTestCase):
    """A sink started with a smaller --max-result than its ventilator's says
    so in its SINK_HELLO; the ventilator passes the smaller limit to its
    workers, so a result over it fails its item (too-big, --retries times,
    then --failed and exit status 1) and the job ends. Before, the worker
    sent it, the sink dropped the message as malformed, and the item ran
    again and again: the job never ended, its output stuck before it."""

    def test_a_sinks_smaller_max_result_fails_the_item_not_the_job(self):
        n, big = 40, 17
        items = [b"%d" % i for i in range(n)]
        inp = h.write(self.path("in.txt"), h.join_lines(items))
        outp, failed = self.path("out.txt"), self.path("failed.txt")
        vep, sep = h.tcp_endpoint(), h.tcp_endpoint()
        vent = self.start_tf("ventilator", "--bind", vep, "-i", inp, "--failed", failed,
                             "--no-progress", *FAST_HB)
        sink = self.start_tf("sink", "--bind", sep, "--ventilator", vep, "-o", outp,
                             "--max-result", "100", *FAST_HB)
        worker = self.start_tf("worker", "--connect", vep, "--once", "-j", "2", "--", "sh", "-c",
                               'if [ "$1" = %d ]; then head -c 300 /dev/zero | tr "\\0" x; '
                               'echo; else echo "r$1"; fi' % big, "_", "{}")
        self.assertEqual(self.wait_exit(vent, 60, "ventilator"), 1, self.stderr_of(vent)[-2000:])
        self.assertEqual(self.wait_exit(sink, 20, "sink"), 1, self.stderr_of(sink)[-2000:])
        self.assertEqual(self.wait_exit(worker, 20, "--once worker"), 0, self.stderr_of(worker))
        self.assertBytesEqual(h.read(outp),
                              h.join_lines([b"r%d" % i for i in range(n) if i != big]))
        self.assertBytesEqual(h.read(failed), h.join_lines([b"%d" % big]))
        err = self.stderr_of(vent)
        self.assertIn("at most 100 bytes", err)
        self.assertIn("too-big", err)


class CounterpartGoneTest(h.TFTestCase):
    """A standalone ventilator whose sink died, and a standalone sink whose
    ventilator died, give up after TF_GIVE_UP_TIMEOUTS (30) heartbeat
    timeouts instead of waiting for ever (a new counterpart could not finish
    this job): exit 2, a one-line reason, and the sink keeps an exact prefix
    with its journal. Heartbeats here: 0.05 s, timeout 0.2 s, so 6 s."""

    HB = FAST_HB

    def start_job(self, n=3000):
        items = [b"%06d" % i for i in range(n)]
        inp = h.write(self.path("in.txt"), h.join_lines(items))
        outp, journal = self.path("out.txt"), self.path("journal")
        vep, sep = h.tcp_endpoint(), h.tcp_endpoint()
        vent = self.start_tf("ventilator", "--bind", vep, "-i", inp, *self.HB)
        worker = self.start_tf("worker", "--connect", vep, "--once", "-j", "2", "--", "sh", "-c",
                               SLOW_ECHO, "_", "{}")
        self.wait_workers(vep, 1, vent)
        sink = self.start_tf("sink", "--bind", sep, "--ventilator", vep, "-o", outp,
                             "--journal", journal)
        if not h.wait_for(lambda: h.file_size(outp) > 700 or vent.poll() is not None, 60):
            self.fail("no output after 60 s: %s" % self.stderr_of(vent))
        self.assertIsNone(vent.poll(), "job ended before the kill; make it longer")
        return items, outp, journal, vent, worker, sink

    def start_blocked_sink_job(self):
        """A fast job whose sink writes to a pipe nobody reads yet: the sink
        blocks in write() and falls silent, its connection stays."""
        items = [b"%020d" % i for i in range(100000)]
        inp = h.write(self.path("in.txt"), h.join_lines(items))
        vep, sep = h.tcp_endpoint(), h.tcp_endpoint()
        vent = self.start_tf("ventilator", "--bind", vep, "-i", inp, *self.HB)
        worker = self.start_tf("worker", "--connect", vep, "--once", "-j", "2", "--pipe", "--",
                               "cat")
        self.wait_workers(vep, 1, vent)
        sink = self.start_tf("sink", "--bind", sep, "--ventilator", vep,
                             stdout=subprocess.PIPE)
        return items, vent, worker, sink

    def test_a_sink_blocked_on_its_output_is_waited_for(self):
        """Nobody reads the sink's output for 9 s (give-up: 6 s): neither
        side gives up, the job completes. (The sink once counted the time it
        spent blocked as the ventilator's silence.)"""
        items, vent, worker, sink = self.start_blocked_sink_job()
        time.sleep(9)
        self.assertIsNone(vent.poll(), "ventilator ended: " + self.stderr_of(vent)[-1000:])
        self.assertIsNone(sink.poll(), "sink ended: " + self.stderr_of(sink)[-1000:])
        out = sink.stdout.read()
        self.assertEqual(self.wait_exit(sink, 60, "sink"), 0, self.stderr_of(sink)[-2000:])
        self.assertEqual(self.wait_exit(vent, 60, "ventilator"), 0, self.stderr_of(vent)[-2000:])
        self.assertBytesEqual(out, h.join_lines(items))
        self.assertEqual(self.wait_exit(worker, 20, "--once worker"), 0, self.stderr_of(worker))

    def test_ventilator_gives_up_on_a_silent_sink_that_dies(self):
        """The sink falls silent (blocked), is dropped for that and waited
        for; then it is killed: its connection goes, and the ventilator gives
        up 30 heartbeat timeouts later."""
        items, vent, worker, sink = self.start_blocked_sink_job()
        if not h.wait_for(lambda: "sink lost (no heartbeat)" in self.stderr_of(vent), 20):
            self.fail("the blocked sink was not dropped for silence: " + self.stderr_of(vent))
        self.kill_and_see_give_up(sink, vent, "ventilator without its silent sink")
        sink.stdout.close()

    def kill_and_see_give_up(self, victim, survivor, what):
        """SIGKILL victim; survivor must exit 2 saying it gives up, not
        before 30 heartbeat timeouts (6 s) nor long after."""
        self.reg.kill(victim, signal.SIGKILL)
        t0 = time.monotonic()
        rc = self.wait_exit(survivor, 40, what)
        took = time.monotonic() - t0
        err = self.stderr_of(survivor)
        self.assertEqual(rc, 2, err[-2000:])
        self.assertIn("giving up", err)
        self.assertGreater(took, 5, "gave up before 30 heartbeat timeouts")

    def test_ventilator_gives_up_on_a_dead_sink(self):
        items, outp, journal, vent, worker, sink = self.start_job()
        self.kill_and_see_give_up(sink, vent, "ventilator without its sink")
        #  Its worker is told the job is over.
        self.assertEqual(self.wait_exit(worker, 20, "--once worker"), 0, self.stderr_of(worker))

    def test_sink_gives_up_on_a_dead_ventilator(self):
        items, outp, journal, vent, worker, sink = self.start_job()
        self.kill_and_see_give_up(vent, sink, "sink without its ventilator")
        out = h.read(outp)
        k = out.count(b"\n")
        self.assertGreater(k, 0)
        self.assertBytesEqual(out, h.join_lines(items[:k]), "output after giving up")
        #  The journal says exactly what is there.
        last = h.read(journal).split(b"\n")[-2].split()
        self.assertEqual((int(last[1]), int(last[2])), (k, len(out)))
        self.reg.kill(worker, signal.SIGKILL)


class SignalTest(h.TFTestCase):

    def test_sigterm_run_mid_job(self):
        """SIGTERM to `run` mid-job: exit 130, the output is an ordered prefix
        of complete results, no process of the run is left behind."""
        items = [b"%d" % i for i in range(1, 3001)]
        ref = h.join_lines(items)
        inp = open(h.write(self.path("in.txt"), ref), "rb")
        outp = self.path("out.txt")
        with inp:
            run = self.start_tf("run", "-j", "2", "-o", outp, "--", "sh", "-c", SLOW_ECHO, "_",
                                "{}", stdin=inp)
        if not h.wait_for(lambda: h.file_size(outp) > 300 or run.poll() is not None, 60):
            self.fail("no output after 60 s: %s" % self.stderr_of(run))
        self.assertIsNone(run.poll(), "run ended before the signal")
        os.kill(run.pid, signal.SIGTERM)
        rc = self.wait_exit(run, 20, "run after SIGTERM")
        self.assertEqual(rc, 130, self.stderr_of(run))
        out = h.read(outp)
        self.assertTrue(out, "no output at all")
        self.assertTrue(out.endswith(b"\n"), "last result cut: %r" % out[-50:])
        self.assertTrue(ref.startswith(out), "not an ordered prefix: %s" % h.first_diff(out, ref[:len(out)]))
        self.assertLess(len(out), len(ref), "SIGTERM came too late to test anything")
        left = h.wait_for(lambda: not h.session_members({run.pid}), 10)
        self.assertTrue(left, "processes of the run still alive after it exited: %r"
                        % h.session_members({run.pid}))

    def test_run_local_worker_killed(self):
        """SIGKILL one of run's local workers mid-job: run replaces it and the
        output is still complete, ordered, exactly once; exit 0."""
        items = [b"%d" % i for i in range(1, 601)]
        ref = h.join_lines(items)
        outp = self.path("out.txt")
        with open(h.write(self.path("in.txt"), ref), "rb") as inp:
            run = self.start_tf("run", "-j", "2", "-o", outp, "--", "sh", "-c", SLOW_ECHO, "_",
                                "{}", stdin=inp)
        if not h.wait_for(lambda: h.file_size(outp) > 200 or run.poll() is not None, 60):
            self.fail("no output after 60 s: %s" % self.stderr_of(run))
        kids = h.children_of(run.pid)
        self.assertIsNone(run.poll(), "job ended before the kill")
        self.assertTrue(kids, "run has no worker processes")
        os.kill(kids[0], signal.SIGKILL)
        #  The replacement is started like the forked workers: in run's
        #  process group (a terminal's Ctrl-C reaches it), stdin on /dev/null.
        fresh = []
        h.wait_for(lambda: fresh.extend(set(h.children_of(run.pid)) - set(kids)) or fresh
                   or run.poll() is not None, 30)
        self.assertTrue(fresh, "no replacement worker seen: %s" % self.stderr_of(run))
        pgid, stdin = os.getpgid(fresh[0]), os.readlink("/proc/%d/fd/0" % fresh[0])
        self.assertEqual(pgid, os.getpgid(run.pid), "replacement left run's group")
        self.assertEqual(stdin, "/dev/null", "replacement kept run's stdin")
        self.assertEqual(self.wait_exit(run, JOB_TIMEOUT, "run"), 0, self.stderr_of(run))
        self.assertBytesEqual(h.read(outp), ref)

    def test_sigterm_ventilator_mid_job(self):
        """SIGTERM to the ventilator mid-job: it exits 130, the sink stops with
        an ordered prefix of complete results and says the job is incomplete
        (non-zero), the --once worker leaves."""
        items = [b"%d" % i for i in range(1, 3001)]
        ref = h.join_lines(items)
        inp = h.write(self.path("in.txt"), ref)
        outp = self.path("out.txt")
        vep, sep = h.tcp_endpoint(), h.tcp_endpoint()
        vent = self.start_tf("ventilator", "--bind", vep, "-i", inp)
        worker = self.start_tf("worker", "--connect", vep, "--once", "-j", "2", "--", "sh", "-c",
                               SLOW_ECHO, "_", "{}")
        self.wait_workers(vep, 1, vent)
        sink = self.start_tf("sink", "--bind", sep, "--ventilator", vep, "-o", outp)
        if not h.wait_for(lambda: h.file_size(outp) > 300 or vent.poll() is not None, 60):
            self.fail("no output after 60 s: %s" % self.stderr_of(vent))
        self.assertIsNone(vent.poll(), "job ended before the signal")
        os.kill(vent.pid, signal.SIGTERM)
        self.assertEqual(self.wait_exit(vent, 20, "ventilator after SIGTERM"), 130,
                         self.stderr_of(vent))
        sink_rc = self.wait_exit(sink, 20, "sink after the ventilator's SIGTERM")
        self.assertEqual(self.wait_exit(worker, 20, "--once worker"), 0, self.stderr_of(worker))
        out = h.read(outp)
        self.assertTrue(out.endswith(b"\n"), "last result cut: %r" % out[-50:])
        self.assertTrue(ref.startswith(out), "not an ordered prefix: %s"
                        % h.first_diff(out, ref[:len(out)]))
        self.assertLess(len(out), len(ref), "SIGTERM came too late to test anything")
        self.assertNotEqual(sink_rc, 0, "sink reported success for an incomplete job")

    def test_sigterm_ventilator_waiting_for_sink(self):
        """A ventilator with items but no sink and no worker exits on one
        SIGTERM (non-zero: the job was not done)."""
        inp = h.write(self.path("in.txt"), b"a\nb\n")
        vent = self.start_tf("ventilator", "--bind", h.tcp_endpoint(), "-i", inp)
        time.sleep(0.5)
        self.assertIsNone(vent.poll(), self.stderr_of(vent))
        os.kill(vent.pid, signal.SIGTERM)
        rc = h.wait_proc(vent, 10)
        self.assertIsNotNone(rc, "ventilator still running 10 s after SIGTERM")
        self.assertNotEqual(rc, 0)


if __name__ == "__main__":
    unittest.main()
