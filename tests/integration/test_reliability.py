#!/usr/bin/env python3
"""test_reliability -- taskfarm under failure, checked against a sequential
reference computed in Python:

  * chaos rounds: random input, random mode (exec / --pipe), random topology
    (`run -j 3 --listen` or separate ventilator + sink + workers) and a random
    schedule of SIGKILL / SIGSTOP+SIGCONT of workers, SIGKILL of commands and
    co-processes, and late-joining remote workers; output must equal the
    reference exactly, exit 0; the --stats re-send counters are printed;
  * a poison item (--retries 2 --failed F), exec and --pipe;
  * --timeout 0.3 with a hanging item, exec and --pipe;
  * --journal/--resume after SIGKILL of the whole run at several points,
    with a side log proving that committed items are not run again;
  * SIGTERM (to `run`) and SIGINT (to its process group) drain: exit 130,
    an exact prefix, then --resume completes; a second signal exits at once;
  * CURVE: an unauthorised worker gets nothing, `run --curve-server-key`.
  * connection resets: the worker's link to the ventilator goes through a
    proxy that resets (RST) every connection a fraction of a second after
    it opens; with a heartbeat timeout far longer than the job, only the
    drop watch (not the heartbeat) can get the lost TASKS and REPORTs
    moving again.

Environment: TASKFARM (binary), TF_SEED (seed; printed), TF_CHAOS_ROUNDS.
Run: python3 tests/integration/test_reliability.py [-v] [Test.test_name]
"""

import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tfharness as h  # noqa: E402

#  Heartbeat settings of every chaos job: loss is detected within ~1 s.
HB = ["--heartbeat", "0.2", "--heartbeat-timeout", "1"]
JOB_TIMEOUT = 120          # hard bound of one job, seconds
CHAOS_ROUNDS = int(os.environ.get("TF_CHAOS_ROUNDS") or 5)


def log(msg):
    sys.stderr.write("  [reliability] %s\n" % msg)
    sys.stderr.flush()


# ---------------------------------------------------------------------------
# Process tree helpers (private: /proc only)


proc_table = h.proc_table


def children(pid, table=None):
    table = table if table is not None else proc_table()
    return sorted(p for p, (st, ppid, _, _) in table.items() if ppid == pid and st != "Z")


def descendants(pid, table=None):
    table = table if table is not None else proc_table()
    kids = {}
    for p, (_, ppid, _, _) in table.items():
        kids.setdefault(ppid, []).append(p)
    out, todo = set(), [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:].split()[0] != b"Z"


def signal_pid(pid, sig):
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def run_tmp_dirs(pid):
    """The /tmp/taskfarm.XXXXXX directories whose ipc sockets process pid has
    bound (found through its socket inodes in /proc/net/unix)."""
    inodes = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            with contextlib.suppress(OSError):
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        with open("/proc/net/unix") as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return set()
    dirs = set()
    for line in lines:
        parts = line.split()
        if len(parts) >= 8 and parts[6] in inodes:
            d = os.path.dirname(parts[7])
            if re.fullmatch(r"/tmp/taskfarm\.[A-Za-z0-9]{6}", d):
                dirs.add(d)
    return dirs


def kill_everything(p, extra_sids=()):
    """SIGKILL p's process group, every descendant of p (co-processes live in
    sessions of their own) and every process of p's session; until none is
    left (bounded). A `run` killed together with its workers (none left to
    clean up) leaves its /tmp/taskfarm.XXXXXX behind: remove it."""
    deadline = time.monotonic() + 10
    tmpdirs = run_tmp_dirs(p.pid) if p.poll() is None else set()
    sids = {p.pid} | set(extra_sids)
    tree = set()
    while time.monotonic() < deadline:
        table = proc_table()
        tree |= descendants(p.pid, table)
        victims = {q for q in tree if q in table and table[q][0] != "Z"}
        victims |= {q for q, (st, _, _, sid) in table.items()
                    if sid in sids and st != "Z" and q != os.getpid()}
        for q in list(victims):
            #  A victim's own children: their parent may die first.
            tree |= descendants(q, table)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGKILL)
        for q in victims:
            signal_pid(q, signal.SIGKILL)
        if p.poll() is None:
            signal_pid(p.pid, signal.SIGKILL)
        if not victims and p.poll() is not None:
            for d in tmpdirs:
                shutil.rmtree(d, ignore_errors=True)
            return
        time.sleep(0.05)
        with contextlib.suppress(Exception):
            p.wait(timeout=0)


# ---------------------------------------------------------------------------
# Items and references


def printable(rng, lo, hi):
    return "".join(chr(rng.randint(0x20, 0x7e)) for _ in range(rng.randint(lo, hi))).encode()


def random_items(rng, n, numbered=False):
    """n printable-ASCII items: mostly short, a few empty, a few long."""
    items = []
    for i in range(n):
        r = rng.random()
        if r < 0.03:
            body = b""
        elif r < 0.05:
            body = printable(rng, 500, 3000)
        else:
            body = printable(rng, 1, 80)
        items.append(b"%06d %s" % (i, body) if numbered else body)
    if items and not items[-1]:
        items[-1] = b"last"
    return items


def rot13(b):
    out = bytearray(b)
    for i, c in enumerate(out):
        if 0x61 <= c <= 0x7a:
            out[i] = (c - 0x61 + 13) % 26 + 0x61
        elif 0x41 <= c <= 0x5a:
            out[i] = (c - 0x41 + 13) % 26 + 0x41
    return bytes(out)


def upper(b):
    return b.upper()


PY_SLOW_UPPER = ("import sys, time\n"
                 "for line in sys.stdin:\n"
                 "    time.sleep(0.001)\n"
                 "    sys.stdout.write(line.upper())\n")

#  name -> (pipe?, command argv, fn: item -> result bytes)
MODES = {
    #  Exec mode: a process per item, the item as $1 (in place of {}).
    "exec-rev": (False, ["bash", "-c", 'sleep 0.00$((RANDOM%5)); printf "%s\\n" "$1" | rev',
                         "_", "{}"], lambda it: it[::-1] + b"\n"),
    "exec-tr": (False, ["sh", "-c", 'printf "%s\\n" "$1" | tr a-zA-Z n-za-mN-ZA-M', "_", "{}"],
                lambda it: rot13(it) + b"\n"),
    #  Pipe mode: one co-process per worker slot, on a pty.
    "pipe-rev": (True, ["rev"], lambda it: it[::-1] + b"\n"),
    "pipe-tr": (True, ["tr", "a-zA-Z", "n-za-mN-ZA-M"], lambda it: rot13(it) + b"\n"),
    "pipe-py": (True, ["python3", "-c", PY_SLOW_UPPER], lambda it: it.upper() + b"\n"),
}


def lines_prefix_count(out, ref_results):
    """k when out == b''.join(ref_results[:k]), else None."""
    pos = 0
    for k, r in enumerate(ref_results):
        if pos == len(out):
            return k
        if out[pos:pos + len(r)] != r:
            return None
        pos += len(r)
    return len(ref_results) if pos == len(out) else None


def read_journal(path):
    """Last complete C record of a journal: (next, offset, failed), or None."""
    try:
        data = h.read(path)
    except OSError:
        return None
    last = None
    for line in data.split(b"\n")[:-1]:    # a torn last line is ignored
        parts = line.split()
        if len(parts) in (3, 4) and parts[0] == b"C":   # version 1 had no failure count
            last = (int(parts[1]), int(parts[2]), int(parts[3]) if len(parts) == 4 else 0)
    return last


def side_log_seqs(path):
    """Item numbers (the %06d prefix) of every line of a side log."""
    try:
        data = h.read(path)
    except OSError:
        return []
    seqs = []
    for line in data.split(b"\n"):
        if len(line) >= 6 and line[:6].isdigit():
            seqs.append(int(line[:6]))
    return seqs


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except OSError:
        return 0


def load_stats(path):
    try:
        return json.loads(h.read(path))
    except (OSError, ValueError):
        return None


def stats_line(st):
    if not st:
        return "no stats"
    keys = ("items", "done", "failed", "retried", "resent_lost_worker", "resent_lease",
            "resent_unacked", "malformed_dropped", "workers_lost", "loss_detect_ms")
    s = " ".join("%s=%s" % (k, st.get(k)) for k in keys)
    ws = ", ".join("%s:%s%s" % (w.get("name", "?").split(":")[-1], w.get("done"),
                                "(lost)" if w.get("lost") else "")
                   for w in st.get("workers", []))
    return s + " workers=[" + ws + "]"


# ---------------------------------------------------------------------------


class ReliabilityBase(h.TFTestCase):

    def setUp(self):
        super().setUp()
        log("%s: TF_SEED=%d" % (self.id().split(".")[-1], self.seed))

    def tearDown(self):
        #  Co-processes run in sessions of their own: collect every
        #  descendant before the harness kills the groups.
        table = proc_table()
        tree = set()
        for p in self.reg.procs:
            tree |= descendants(p.pid, table)
        for p in self.reg.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, signal.SIGCONT)
        for q in tree:
            signal_pid(q, signal.SIGKILL)
        super().tearDown()
        for q in tree:
            signal_pid(q, signal.SIGKILL)

    def feed(self, p, data, duration, chunks=40):
        """Write data to p's stdin over about `duration` seconds (thread)."""
        def run():
            try:
                step = max(1, len(data) // chunks)
                pause = duration / max(1, (len(data) + step - 1) // step)
                for i in range(0, len(data), step):
                    p.stdin.write(data[i:i + step])
                    p.stdin.flush()
                    time.sleep(pause)
            except (BrokenPipeError, ValueError, OSError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    p.stdin.close()
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def wait_rc(self, p, timeout, what):
        rc = h.wait_proc(p, timeout)
        if rc is None:
            err = self.stderr_of(p)[-3000:]
            kill_everything(p)
            self.fail("%s (pid %d) did not exit within %ss; stderr tail:\n%s"
                      % (what, p.pid, timeout, err))
        return rc


# ---------------------------------------------------------------------------


class ChaosTest(ReliabilityBase):
    """Random jobs under a random schedule of failures, against a reference."""

    def test_chaos_rounds(self):
        t0 = time.monotonic()
        summary = []
        for rnd in range(CHAOS_ROUNDS):
            rseed = self.rng.randrange(1 << 30)
            with self.subTest(round=rnd, round_seed=rseed):
                summary.append(self.chaos_round(rnd, random.Random(rseed), rseed))
        log("chaos: %d rounds in %.1fs" % (CHAOS_ROUNDS, time.monotonic() - t0))
        for line in summary:
            log("  " + line)

    def chaos_round(self, rnd, rng, rseed):
        mode = rng.choice(sorted(MODES))
        pipe, cmd, fn = MODES[mode]
        topology = "components" if rnd % 3 == 2 else "run"
        n = rng.randint(1500, 3000)
        items = random_items(rng, n)
        ref = b"".join(fn(it) for it in items)
        data = h.join_lines(items)
        feed_secs = rng.uniform(3.0, 5.0)
        window = rng.choice([None, None, 256])
        tag = "r%d" % rnd
        outp = self.path(tag + ".out")
        stats = self.path(tag + ".stats.json")
        listen = h.tcp_endpoint()
        wargs = (["--pipe"] if pipe else []) + ["--"] + cmd
        opts = HB + ["--stats", stats] + (["--window", str(window)] if window else [])

        remotes = []      # late (and, for components, all) worker processes
        if topology == "run":
            main = self.start_tf("run", "-j", "3", "--listen", listen, "-o", outp,
                                 "--no-progress", *opts, *wargs, stdin=subprocess.PIPE)
            sink = None
        else:
            sink_ep = h.tcp_endpoint()
            main = self.start_tf("ventilator", "--bind", listen, "--no-progress", *opts,
                                 stdin=subprocess.PIPE)
            sink = self.start_tf("sink", "--bind", sink_ep, "--ventilator", listen, "-o", outp,
                                 *HB)
            for _ in range(2):
                remotes.append(self.start_tf("worker", "--connect", listen, "--once", "-j", "2",
                                             *wargs))
        feeder = self.feed(main, data, feed_secs)

        def local_workers():
            if topology == "run":
                return children(main.pid)
            return [w.pid for w in remotes if w.poll() is None]

        def all_workers():
            ws = list(local_workers())
            if topology == "run":
                ws += [w.pid for w in remotes if w.poll() is None]
            return ws

        killed = set()

        def ev_kill_worker():
            ws = [w for w in local_workers() if w not in killed]
            if topology == "components":
                #  Keep at least one of the original workers.
                ws = ws[:-1] if len(ws) > 1 else []
            if ws:
                v = rng.choice(ws)
                killed.add(v)
                signal_pid(v, signal.SIGKILL)
                return "kill worker %d" % v
            return "kill worker: none"

        def ev_kill_child():
            for _ in range(20):
                table = proc_table()
                kids = [c for w in all_workers() for c in children(w, table)]
                if kids:
                    v = rng.choice(kids)
                    signal_pid(v, signal.SIGKILL)
                    return "kill %s %d" % ("co-process" if pipe else "command", v)
                time.sleep(0.01)
            return "kill child: none"

        def ev_late():
            w = self.start_tf("worker", "--connect", listen, "--once", "-j",
                              str(rng.randint(1, 2)), *wargs)
            w.late = True
            remotes.append(w)
            return "late worker %d" % w.pid

        def ev_kill_remote():
            ws = [w for w in remotes if getattr(w, "late", False) and w.poll() is None]
            if ws:
                v = rng.choice(ws)
                signal_pid(v.pid, signal.SIGKILL)
                killed.add(v.pid)
                return "kill remote worker %d" % v.pid
            return "kill remote: none"

        stopped = {}
        ever_stopped = set()

        def ev_stop():
            ws = [w for w in all_workers() if w not in stopped]
            if not ws:
                return "stop: none"
            v = rng.choice(ws)
            hold = rng.uniform(1.5, 2.5)       # > heartbeat timeout (1 s)
            signal_pid(v, signal.SIGSTOP)
            stopped[v] = time.monotonic() + hold
            ever_stopped.add(v)
            return "SIGSTOP worker %d for %.1fs" % (v, hold)

        kinds = [ev_stop, ev_kill_worker, ev_kill_child, ev_late]
        kinds += [rng.choice([ev_stop, ev_kill_child, ev_late, ev_kill_remote, ev_kill_worker])
                  for _ in range(rng.randint(1, 2))]
        if topology == "components":
            kinds.append(ev_late)     # a replacement for the killed worker
        sched = sorted(((rng.uniform(0.3, feed_secs * 0.9), k) for k in kinds),
                       key=lambda e: e[0])
        done_events = []
        t_start = time.monotonic()
        for at, ev in sched:
            while True:
                now = time.monotonic() - t_start
                for v, until in list(stopped.items()):
                    if time.monotonic() >= until:
                        signal_pid(v, signal.SIGCONT)
                        del stopped[v]
                        done_events.append("%.1fs SIGCONT %d" % (now, v))
                if now >= at or main.poll() is not None:
                    break
                time.sleep(0.02)
            done_events.append("%.1fs %s" % (time.monotonic() - t_start, ev()))
        while stopped:
            v, until = min(stopped.items(), key=lambda kv: kv[1])
            time.sleep(max(0, until - time.monotonic()))
            signal_pid(v, signal.SIGCONT)
            del stopped[v]
            done_events.append("%.1fs SIGCONT %d" % (time.monotonic() - t_start, v))
        feeder.join(JOB_TIMEOUT)

        what = "%s round %d (seed %d, %s, %s, %d items)" % (
            topology, rnd, rseed, mode, "window %s" % window, n)
        rc = self.wait_rc(main, JOB_TIMEOUT, what)
        elapsed = time.monotonic() - t_start
        events = "; ".join(done_events)
        err = self.stderr_of(main)
        if sink is not None:
            src = self.wait_rc(sink, 30, "sink of " + what)
            self.assertEqual(src, 0, "sink exit: %s\n%s" % (what, self.stderr_of(sink)[-2000:]))
        self.assertEqual(rc, 0, "%s: exit %s; events: %s\nstderr tail:\n%s"
                         % (what, rc, events, err[-3000:]))
        got = h.read(outp)
        if got != ref:
            self.fail("%s: output differs (%s); events: %s"
                      % (what, h.first_diff(got, ref), events))
        st = load_stats(stats)
        self.assertIsNotNone(st, "no --stats written")
        self.assertEqual((st["items"], st["done"], st["failed"]), (n, n, 0), stats_line(st))
        #  --once workers that were neither killed nor stopped leave after the
        #  job. (One stopped across the job's end may wait for a ventilator
        #  that is gone: see OnceWorkerTest.)
        for w in remotes:
            if w.pid in killed or w.pid in ever_stopped:
                continue
            wrc = self.wait_rc(w, 30, "--once worker %d of %s (events: %s)"
                               % (w.pid, what, events))
            self.assertEqual(wrc, 0, "worker %d: %s" % (w.pid, self.stderr_of(w)[-2000:]))
        for w in remotes:          # stopped ones may linger: not needed any more
            if w.poll() is None:
                kill_everything(w)
        line = "%s: %.1fs; %s; events: %s" % (what, elapsed, stats_line(st), events)
        log(line)
        return line


class RunKilledTest(ReliabilityBase):

    def test_sigkill_of_run_at_start_leaves_no_command(self):
        """SIGKILL of the run process alone, 1-6 ms after it starts, while
        its workers start their first commands: no command survives. (A
        parent-death signal between posix_spawn and the tracking of the
        child once left that child running.)"""
        token = "tf-leak-%d-%d" % (os.getpid(), self.rng.randrange(1 << 30))
        inp = h.write(self.path("in.txt"), h.join_lines([b"%d" % i for i in range(100)]))

        def survivors():
            found = []
            for pid in proc_table():
                with contextlib.suppress(OSError):
                    with open("/proc/%d/cmdline" % pid, "rb") as f:
                        if token.encode() in f.read():
                            found.append(pid)
            return found
        try:
            for _ in range(20):
                p = self.start_tf("run", "-j", "4", "-i", inp, "--no-progress", "--", "sh", "-c",
                                  "sleep 300", token, "{}")
                time.sleep(self.rng.uniform(0.001, 0.006))
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
            left = h.wait_for(lambda: not survivors(), 10) or survivors()
            self.assertEqual(left, True, "commands outlived their run: %s" % left)
        finally:
            for pid in survivors():
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)

    def wait_run_started(self, p):
        """Waits until `run` (p) has bound its ipc sockets and forked its two
        local workers; returns its socket directories."""
        self.assertTrue(h.wait_for(lambda: run_tmp_dirs(p.pid) and
                                   len(h.children_of(p.pid)) >= 2, 20),
                        "run did not start its workers and sockets")
        return run_tmp_dirs(p.pid)

    def test_sigkill_of_run_leaves_no_directory(self):
        """SIGKILL of the run process alone: its local workers get the
        parent-death signal, kill their commands, remove run's ipc socket
        files and their /tmp/taskfarm.XXXXXX directory, and exit. (Before,
        the directory stayed behind.)"""
        for mode in (["--pipe", "--", "sh", "-c", "while read -r l; do sleep 0.2; echo $l; done"],
                     ["--", "sh", "-c", "sleep 0.2; echo $0", "{}"]):
            with self.subTest(mode=mode[0]):
                inp = h.write(self.path("in.txt"), h.join_lines([b"%d" % i for i in range(60)]))
                p = self.start_tf("run", "-j", "2", "-i", inp, "--no-progress", *mode)
                dirs = self.wait_run_started(p)
                workers = h.children_of(p.pid)
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
                try:
                    gone = h.wait_for(lambda: not any(w in proc_table() and
                                                      proc_table()[w][0] != "Z"
                                                      for w in workers), 10)
                    self.assertTrue(gone, "local workers outlived run")
                    left = [d for d in dirs if os.path.exists(d)]
                    self.assertEqual(left, [], "run's directory was left behind")
                finally:
                    kill_everything(p)


    def test_stray_sigusr2_to_a_local_worker_spares_runs_sockets(self):
        """SIGUSR2 is the local workers' parent-death signal. Sent by
        somebody else while `run` lives, it stops that worker alone ("stopped
        by signal USR2", not "parent gone"): run's ipc socket files stay
        (before, the worker removed them, and no replacement could join), and
        run replaces the worker, even one signalled in its first second (that
        once counted as a worker that cannot start) and a replacement itself
        (a started `taskfarm worker`, not a fork); the job ends with every
        result in order."""
        n = 80
        inp = h.write(self.path("in.txt"), h.join_lines([b"%d" % i for i in range(n)]))
        p = self.start_tf("run", "-j", "2", "-i", inp, "--no-progress", "--pipe", "--",
                          "sh", "-c", "while read -r l; do sleep 0.1; echo r$l; done")
        try:
            dirs = self.wait_run_started(p)
            sockets = [os.path.join(d, f) for d in dirs for f in os.listdir(d)]
            self.assertTrue(sockets, "no socket files in %s" % dirs)
            seen = set(h.children_of(p.pid))
            victim = sorted(seen)[0]
            for round_ in ("a forked worker in its first second", "a replacement"):
                os.kill(victim, signal.SIGUSR2)
                self.assertTrue(h.wait_for(lambda: proc_table().get(victim, ("Z",))[0] == "Z",
                                           10), "%s did not stop" % round_)
                left = [f for f in sockets if not os.path.exists(f)]
                self.assertEqual(left, [], "a stray SIGUSR2 to %s removed run's socket files"
                                 % round_)
                fresh = []
                self.assertTrue(h.wait_for(lambda: fresh.extend(
                    set(h.children_of(p.pid)) - seen) or fresh, 10),
                    "run did not replace %s" % round_)
                seen.update(fresh)
                victim = fresh[0]
            rc = self.wait_exit(p, 60, "run")
            err = self.stderr_of(p)
            self.assertEqual(rc, 0, err[-2000:])
            self.assertEqual(h.read(p.out_path),
                             h.join_lines([b"r%d" % i for i in range(n)]))
            self.assertEqual(err.count("stopped by signal USR2"), 2, err[-2000:])
            self.assertNotIn("parent gone", err)
        finally:
            kill_everything(p)


    def test_hard_stop_of_the_whole_group_leaves_no_directory(self):
        """A hard stop of run's whole process group (SIGUSR2, or a second
        SIGINT, as a double Ctrl-C sends): run removes its ipc socket files
        and their directory itself. (Before, only the workers did, when they
        saw run gone; stopped at the same moment, they often did not, and the
        directory stayed.)"""
        for sigs in ((signal.SIGUSR2,), (signal.SIGINT, signal.SIGINT)):
            with self.subTest(signals=[s_.name for s_ in sigs]):
                inp = h.write(self.path("in.txt"), h.join_lines([b"%d" % i for i in range(60)]))
                p = self.start_tf("run", "-j", "2", "-i", inp, "--no-progress", "--",
                                  "sh", "-c", "sleep 0.3; echo $0", "{}")
                try:
                    dirs = self.wait_run_started(p)
                    for sig in sigs:
                        os.killpg(p.pid, sig)
                        time.sleep(0.05)
                    self.assertEqual(self.wait_exit(p, 10, "run"), 130, self.stderr_of(p))
                    gone = h.wait_for(lambda: not any(os.path.exists(d) for d in dirs), 5)
                    self.assertTrue(gone, "run's directory was left behind: %s" % dirs)
                finally:
                    kill_everything(p)


class OnceWorkerTest(ReliabilityBase):

    def test_once_worker_stopped_across_job_end(self):
        """A --once worker SIGSTOPped mid-job is declared lost, the job ends
        without it, the ventilator exits; after SIGCONT it should leave too
        (its job is over) rather than wait for a ventilator forever."""
        n = 300
        items = random_items(self.rng, n, numbered=True)
        inp = h.write(self.path("in.txt"), h.join_lines(items))
        outp = self.path("out.txt")
        vep, sep = h.tcp_endpoint(), h.tcp_endpoint()
        script = 'sleep 0.01; printf "%s\\n" "$1"'
        vent = self.start_tf("ventilator", "--bind", vep, "-i", inp, "--no-progress", *HB)
        sink = self.start_tf("sink", "--bind", sep, "--ventilator", vep, "-o", outp, *HB)
        wa = self.start_tf("worker", "--connect", vep, "--once", "-j", "1",
                           "--", "sh", "-c", script, "_", "{}")
        wb = self.start_tf("worker", "--connect", vep, "--once", "-j", "1",
                           "--", "sh", "-c", script, "_", "{}")
        h.wait_for(lambda: h.file_size(outp) > 0, 30)
        os.kill(wb.pid, signal.SIGSTOP)
        try:
            self.assertEqual(self.wait_rc(vent, JOB_TIMEOUT, "ventilator"), 0)
            self.assertEqual(self.wait_rc(sink, 30, "sink"), 0)
            self.assertEqual(self.wait_rc(wa, 30, "running --once worker"), 0)
        finally:
            os.kill(wb.pid, signal.SIGCONT)
        self.assertBytesEqual(h.read(outp), b"".join(it + b"\n" for it in items))
        #  It cannot tell a finished job from a crashed ventilator: after
        #  10 heartbeat timeouts of silence it leaves with status 3.
        rc = h.wait_proc(wb, 20)
        self.assertIsNotNone(rc, "--once worker still waiting for a ventilator that is gone")
        self.assertEqual(rc, 3, self.stderr_of(wb)[-2000:])


# ---------------------------------------------------------------------------


class FailureTest(ReliabilityBase):

    def check_poison(self, pipe):
        n = 600
        items = random_items(self.rng, n, numbered=True)
        poison = sorted(self.rng.sample(range(n), 2))
        for i in poison:
            items[i] = b"%06d POISON %s" % (i, printable(self.rng, 1, 20))
        inp = h.write(self.path("in.txt"), h.join_lines(items))
        failed = self.path("failed.txt")
        stats = self.path("stats.json")
        if pipe:
            code = ("import sys\n"
                    "for line in sys.stdin:\n"
                    "    if 'POISON' in line:\n"
                    "        sys.exit(3)\n"
                    "    sys.stdout.write(line.upper())\n")
            cmd = ["--pipe", "--", "python3", "-c", code]
            fn = upper
        else:
            script = ('case "$1" in *POISON*) kill -9 $$;; esac; printf "%s\\n" "$1" | rev')
            cmd = ["--", "sh", "-c", script, "_", "{}"]
            fn = (lambda it: it[::-1])
        t0 = time.monotonic()
        rc, out, err = self.run_tf("run", "-j", "3", "--retries", "2", "--failed", failed,
                                   "--stats", stats, "-i", inp, "--no-progress", *cmd,
                                   timeout=JOB_TIMEOUT)
        elapsed = time.monotonic() - t0
        err = err.decode("utf-8", "replace")
        self.assertNotEqual(rc, 0, "a poison item failed for good, yet exit 0")
        self.assertEqual(rc, 1, err[-2000:])
        ref = b"".join(fn(it) + b"\n" for i, it in enumerate(items) if i not in poison)
        self.assertBytesEqual(out, ref)
        got_failed = sorted(h.read(failed).split(b"\n")[:-1]) if os.path.exists(failed) else []
        self.assertEqual(got_failed, sorted(items[i] for i in poison), "--failed file")
        st = load_stats(stats)
        self.assertEqual((st["items"], st["done"], st["failed"]), (n, n - 2, 2), stats_line(st))
        #  Two attempts of each poison item: one retry each.
        self.assertGreaterEqual(st["retried"], 2, stats_line(st))
        log("poison (%s): %.1fs, %s" % ("pipe" if pipe else "exec", elapsed, stats_line(st)))

    def test_poison_pipe(self):
        self.check_poison(True)

    def test_poison_exec(self):
        self.check_poison(False)

    def check_timeout(self, pipe):
        n = 300
        items = random_items(self.rng, n, numbered=True)
        hang = self.rng.randrange(n)
        items[hang] = b"%06d HANG" % hang
        inp = h.write(self.path("in.txt"), h.join_lines(items))
        failed = self.path("failed.txt")
        stats = self.path("stats.json")
        if pipe:
            code = ("import sys, time\n"
                    "for line in sys.stdin:\n"
                    "    if 'HANG' in line:\n"
                    "        time.sleep(120)\n"
                    "    sys.stdout.write(line.upper())\n")
            cmd = ["--pipe", "--", "python3", "-c", code]
        else:
            script = 'case "$1" in *HANG*) sleep 120;; esac; printf "%s\\n" "$1" | tr a-z A-Z'
            cmd = ["--", "sh", "-c", script, "_", "{}"]
        t0 = time.monotonic()
        rc, out, err = self.run_tf("run", "-j", "2", "--timeout", "0.3", "--failed", failed,
                                   "--stats", stats, "-i", inp, "--no-progress", *cmd,
                                   timeout=JOB_TIMEOUT)
        elapsed = time.monotonic() - t0
        err = err.decode("utf-8", "replace")
        self.assertEqual(rc, 1, err[-2000:])
        ref = b"".join(it.upper() + b"\n" for i, it in enumerate(items) if i != hang)
        self.assertBytesEqual(out, ref)
        self.assertEqual(h.read(failed), items[hang] + b"\n", "--failed file")
        self.assertIn("timeout", err.lower())
        st = load_stats(stats)
        self.assertEqual((st["done"], st["failed"]), (n - 1, 1), stats_line(st))
        log("timeout (%s): %.1fs, %s" % ("pipe" if pipe else "exec", elapsed, stats_line(st)))

    def test_timeout_exec(self):
        self.check_timeout(False)

    def test_timeout_pipe(self):
        self.check_timeout(True)


# ---------------------------------------------------------------------------


#  Exec mode, $0 = side log: every execution of an item is recorded there.
LOGGED = 'printf "%s\\n" "$1" >> "$0"; sleep 0.005; printf "%s\\n" "$1"'


class ResumeTest(ReliabilityBase):

    def start_logged(self, inp, outp, journal, side, resume, stats=None, extra=()):
        args = ["run", "-j", "3", "-i", inp, "-o", outp, "--journal", journal, "--no-progress"]
        if resume:
            args.append("--resume")
        if stats:
            args += ["--stats", stats]
        return self.start_tf(*args, *extra, "--", "sh", "-c", LOGGED, side, "{}")

    def test_resume_after_sigkill_at_several_points(self):
        n = 1500
        items = random_items(self.rng, n, numbered=True)
        results = [it + b"\n" for it in items]
        ref = b"".join(results)
        inp = h.write(self.path("in.txt"), h.join_lines(items))
        outp, journal = self.path("out.txt"), self.path("journal")
        #  Kill points as fractions of the items executed: early, middle, late.
        points = [self.rng.uniform(0.03, 0.15), self.rng.uniform(0.35, 0.6),
                  self.rng.uniform(0.75, 0.95)]
        log("kill points (fraction of items run): %s" % ", ".join("%.2f" % f for f in points))
        resume_point = 0
        history = []
        for stage, frac in enumerate(points + [None]):
            side = self.path("side%d.log" % stage)
            stats = self.path("stats%d.json" % stage)
            p = self.start_logged(inp, outp, journal, side, resume=stage > 0, stats=stats)
            if frac is not None:
                target = int(frac * n)
                reached = h.wait_for(lambda: count_lines(side) + resume_point >= target
                                     or p.poll() is not None, JOB_TIMEOUT, 0.005)
                self.assertTrue(reached, "stage %d made no progress" % stage)
                self.assertIsNone(p.poll(), "stage %d finished before its kill point (%d items)"
                                  % (stage, target))
                #  SIGKILL the run process and its group, then everything left.
                kill_everything(p)
                rec = read_journal(journal)
            else:
                rc = self.wait_rc(p, JOB_TIMEOUT, "final resume")
                self.assertEqual(rc, 0, self.stderr_of(p)[-2000:])
                rec = read_journal(journal)
            out = h.read(outp) if os.path.exists(outp) else b""
            #  The rerun ran nothing that an earlier stage had committed.
            ran = side_log_seqs(side)
            redone = sorted(s for s in ran if s < resume_point)
            self.assertEqual(redone, [], "stage %d re-ran %d committed item(s) below %d: %s"
                             % (stage, len(redone), resume_point, redone[:10]))
            if rec is not None:
                nxt, off, nfailed = rec
                self.assertEqual(nfailed, 0, "no item of this job fails")
                #  A committed record describes an exact prefix of the reference.
                self.assertEqual(off, len(b"".join(results[:nxt])),
                                 "journal record (%d, %d) does not match the reference" % rec[:2])
                self.assertGreaterEqual(len(out), off, "output shorter than its journal")
                self.assertBytesEqual(out[:off], ref[:off], "committed output prefix")
                self.assertGreaterEqual(nxt, resume_point, "journal went backwards")
                resume_point = nxt
            st = load_stats(stats)
            history.append("stage %d: ran %d, committed up to %s, skipped_resume=%s"
                           % (stage, len(ran), rec and rec[0], st and st.get("skipped_resume")))
            if frac is None:
                self.assertBytesEqual(out, ref, "final output after resumes")
                self.assertEqual(resume_point, n)
        for line in history:
            log(line)

    def test_resume_after_sigkill_before_any_commit(self):
        """A kill right after start (maybe before the journal exists)."""
        n = 400
        items = random_items(self.rng, n, numbered=True)
        ref = b"".join(it + b"\n" for it in items)
        inp = h.write(self.path("in.txt"), h.join_lines(items))
        outp, journal = self.path("out.txt"), self.path("journal")
        p = self.start_logged(inp, outp, journal, self.path("side0.log"), resume=False)
        time.sleep(self.rng.uniform(0.0, 0.1))
        kill_everything(p)
        p = self.start_logged(inp, outp, journal, self.path("side1.log"), resume=True)
        rc = self.wait_rc(p, JOB_TIMEOUT, "resume")
        self.assertEqual(rc, 0, self.stderr_of(p)[-2000:])
        self.assertBytesEqual(h.read(outp), ref)

    def test_resume_keeps_the_failures_before_the_crash(self):
        """Items that failed before a SIGKILL are not run again, but the
        resumed run still exits 1 and says so, and --failed keeps the first
        run's list (it is appended to, not emptied). The journal counts the
        failed items below each commit. (Before, the resumed run exited 0
        and emptied --failed.)"""
        n = 1200
        items = [b"%06d %s" % (i, b"BAD" if i % 7 == 3 else b"ok") for i in range(n)]
        bad = [it for it in items if b"BAD" in it]
        ref = b"".join(it + b"\n" for it in items if b"BAD" not in it)
        inp = h.write(self.path("in.txt"), h.join_lines(items))
        outp, journal, failed = self.path("out.txt"), self.path("journal"), self.path("failed")
        script = ('printf "%s\\n" "$1" >> "$0"; case "$1" in *BAD*) exit 3;; esac; '
                  'sleep 0.005; printf "%s\\n" "$1"')
        extra = ("--retries", "1", "--failed", failed)

        def start(side, resume):
            args = ["run", "-j", "3", "-i", inp, "-o", outp, "--journal", journal,
                    "--no-progress", *extra] + (["--resume"] if resume else [])
            return self.start_tf(*args, "--", "sh", "-c", script, side, "{}")
        side0 = self.path("side0.log")
        p = start(side0, False)
        #  Kill once a commit covers some failures, well before the end.
        reached = h.wait_for(lambda: (read_journal(journal) or (0, 0, 0))[2] >= 5
                             or p.poll() is not None, JOB_TIMEOUT, 0.005)
        self.assertTrue(reached and p.poll() is None, "no commit with failures before the end")
        kill_everything(p)
        nxt, _, nfailed = read_journal(journal)
        self.assertEqual(nfailed, sum(1 for it in items[:nxt] if b"BAD" in it),
                         "the journal counts the failed items below next=%d" % nxt)
        first_failed = h.read(failed).splitlines()
        self.assertGreaterEqual(len(first_failed), nfailed)
        p = start(self.path("side1.log"), True)
        rc = self.wait_rc(p, JOB_TIMEOUT, "resume")
        err = self.stderr_of(p)
        self.assertEqual(rc, 1, err[-2000:])
        self.assertIn("failed before this run resumed", err)
        self.assertBytesEqual(h.read(outp), ref)
        ran = side_log_seqs(self.path("side1.log"))
        self.assertEqual([s for s in ran if s < nxt], [], "committed items ran again")
        listed = h.read(failed).splitlines()
        self.assertEqual(listed[:len(first_failed)], first_failed, "the first run's list is kept")
        #  Every failed item is listed; one that failed after the last commit
        #  before the kill ran again and may be listed twice.
        self.assertEqual(set(listed), set(bad))
        self.assertEqual(read_journal(journal), (n, len(ref), len(bad)))

    # -- signals --

    def check_drain(self, pipe, group):
        n = 1500
        items = random_items(self.rng, n, numbered=True)
        results = [it + b"\n" for it in items]
        ref = b"".join(results)
        inp = h.write(self.path("in.txt"), h.join_lines(items))
        outp, journal, side = self.path("out.txt"), self.path("journal"), self.path("side.log")
        if pipe:
            code = ("import sys, time\n"
                    "log = open(sys.argv[1], 'a')\n"
                    "for line in sys.stdin:\n"
                    "    log.write(line); log.flush()\n"
                    "    time.sleep(0.004)\n"
                    "    sys.stdout.write(line)\n")
            cmd = ["--pipe", "--", "python3", "-c", code, side]
        else:
            cmd = ["--", "sh", "-c", LOGGED, side, "{}"]
        p = self.start_tf("run", "-j", "3", "-i", inp, "-o", outp, "--journal", journal,
                          "--no-progress", *cmd)
        target = self.rng.randint(n // 5, n // 2)
        h.wait_for(lambda: count_lines(side) >= target or p.poll() is not None, JOB_TIMEOUT)
        self.assertIsNone(p.poll(), "job ended before the signal")
        sig = signal.SIGINT if group else signal.SIGTERM
        t0 = time.monotonic()
        if group:
            os.killpg(p.pid, sig)      # like ^C in a terminal: run and its workers
        else:
            os.kill(p.pid, sig)        # run alone
        rc = self.wait_rc(p, 30, "run after %s" % sig.name)
        took = time.monotonic() - t0
        err = self.stderr_of(p)
        self.assertEqual(rc, 130, "%s to run%s mid-job (stderr: %s)" % (
            sig.name, "'s process group" if group else "", err.strip().splitlines()[-1:]))
        out = h.read(outp)
        k = lines_prefix_count(out, results)
        self.assertIsNotNone(k, "output after %s is not an exact prefix: %s"
                             % (sig.name, h.first_diff(out, ref[:len(out)])))
        self.assertLess(k, n, "the whole job was written despite the signal")
        rec = read_journal(journal)
        self.assertIsNotNone(rec, "no journal record after the drain")
        self.assertEqual(rec, (k, len(out), 0), "journal does not describe the drained output")
        log("%s (%s) at %d items run: exit %s after %.2fs, prefix of %d items"
            % (sig.name, "pipe" if pipe else "exec", target, rc, took, k))
        time.sleep(0.3)
        kill_everything(p)      # nothing should be left; be sure
        side2 = self.path("side2.log")
        cmd2 = cmd[:-1] + [side2] if pipe else ["--", "sh", "-c", LOGGED, side2, "{}"]
        rc, _, err2 = self.run_tf("run", "-j", "3", "-i", inp, "-o", outp, "--journal", journal,
                                  "--resume", "--no-progress", *cmd2, timeout=JOB_TIMEOUT)
        self.assertEqual(rc, 0, err2.decode("utf-8", "replace")[-2000:])
        self.assertBytesEqual(h.read(outp), ref, "output after --resume")
        redone = [s for s in side_log_seqs(side2) if s < k]
        self.assertEqual(redone, [], "resume re-ran committed items")

    def test_sigterm_drain_then_resume_exec(self):
        self.check_drain(pipe=False, group=False)

    def test_sigint_group_drain_then_resume_pipe(self):
        self.check_drain(pipe=True, group=True)

    def test_second_signal_exits_at_once(self):
        n = 200
        items = random_items(self.rng, n, numbered=True)
        results = [it + b"\n" for it in items]
        hang = self.rng.randint(20, 60)
        items[hang] = b"%06d HANG" % hang
        results[hang] = items[hang] + b"\n"
        inp = h.write(self.path("in.txt"), h.join_lines(items))
        outp = self.path("out.txt")
        #  The hanging command is recognisable by its argv: a unique duration.
        marker = "299.%06d" % self.rng.randrange(10 ** 6)
        script = 'case "$1" in *HANG*) exec sleep "$0";; esac; printf "%s\\n" "$1"'
        p = self.start_tf("run", "-j", "2", "-i", inp, "-o", outp, "--no-progress",
                          "--", "sh", "-c", script, marker, "{}")
        #  Wait until everything before the hanging item is written.
        expect = b"".join(results[:hang])
        h.wait_for(lambda: h.file_size(outp) >= len(expect) or p.poll() is not None, 60)
        time.sleep(0.3)
        self.assertIsNone(p.poll(), self.stderr_of(p)[-2000:])
        os.kill(p.pid, signal.SIGTERM)
        #  The drain waits for the hanging item (no --timeout) ...
        first = h.wait_proc(p, 1.5)
        if first is not None:
            self.skipTest("run exited %s within 1.5 s of the first SIGTERM despite a leased "
                          "hanging item; the second-signal path cannot be observed" % first)
        t0 = time.monotonic()
        os.kill(p.pid, signal.SIGTERM)
        rc = self.wait_rc(p, 10, "run after a second SIGTERM")
        took = time.monotonic() - t0
        self.assertEqual(rc, 130)
        out = h.read(outp)
        self.assertIsNotNone(lines_prefix_count(out, results),
                             "output after the second signal is not a prefix")
        log("second SIGTERM: exit 130 after %.2fs, %d bytes written" % (took, len(out)))

        #  run's workers die with it and take their commands along.
        def leftovers():
            found = []
            for pid in proc_table():
                try:
                    with open("/proc/%d/cmdline" % pid, "rb") as f:
                        if (b"\0" + marker.encode() + b"\0") in f.read():
                            found.append(pid)
                except OSError:
                    pass
            return [q for q in found if alive(q)]
        left = h.wait_for(lambda: not leftovers(), 10)
        if not left:
            stray = leftovers()
            for q in stray:
                signal_pid(q, signal.SIGKILL)
            self.fail("after a second SIGTERM the running command of the item was left "
                      "behind (pids %s)" % stray)


# ---------------------------------------------------------------------------


class CurveTest(ReliabilityBase):

    def keygen(self, name):
        path = self.path(name)
        rc, _, err = self.run_tf("keygen", path, timeout=h.SHORT)
        self.assertEqual(rc, 0, err)
        self.assertTrue(os.path.exists(path) and os.path.exists(path + "_secret"))
        return path

    def curve_setup(self):
        srv = self.keygen("server")
        good = self.keygen("good")
        bad = self.keygen("bad")
        allow = self.path("allow")
        os.mkdir(allow)
        for name, src in (("server", srv), ("good", good)):
            h.write(os.path.join(allow, name), h.read(src))
        return srv, good, bad, allow

    def start_curve_job(self, srv, allow, items, stats, outp):
        inp = h.write(self.path("in.txt"), h.join_lines(items))
        vep, sep = h.tcp_endpoint(), h.tcp_endpoint()
        vent = self.start_tf("ventilator", "--bind", vep, "-i", inp, "--stats", stats,
                             "--no-progress", "--curve-server-key", srv + "_secret",
                             "--curve-allow", allow)
        sink = self.start_tf("sink", "--bind", sep, "--ventilator", vep, "-o", outp,
                             "--curve-server-key", srv + "_secret", "--curve-allow", allow)
        return vent, sink, vep

    def start_curve_worker(self, vep, key, srv, side):
        return self.start_tf("worker", "--connect", vep, "--once", "-j", "2",
                             "--curve-client-key", key + "_secret",
                             "--curve-server-public", srv, "--", "sh", "-c", LOGGED, side, "{}")

    def test_curve_unauthorised_worker_gets_nothing(self):
        srv, good, bad, allow = self.curve_setup()
        n = 400
        items = random_items(self.rng, n, numbered=True)
        stats, outp = self.path("stats.json"), self.path("out.txt")
        vent, sink, vep = self.start_curve_job(srv, allow, items, stats, outp)
        wbad = self.start_curve_worker(vep, bad, srv, self.path("bad.log"))
        time.sleep(0.5)       # the unauthorised one is there first
        wgood = self.start_curve_worker(vep, good, srv, self.path("good.log"))
        rc = self.wait_rc(vent, JOB_TIMEOUT, "ventilator")
        self.assertEqual(rc, 0, self.stderr_of(vent)[-2000:])
        self.assertEqual(self.wait_rc(sink, 30, "sink"), 0, self.stderr_of(sink)[-2000:])
        self.assertEqual(self.wait_rc(wgood, 30, "authorised worker"), 0)
        self.assertBytesEqual(h.read(outp), b"".join(it + b"\n" for it in items))
        self.assertEqual(side_log_seqs(self.path("bad.log")), [],
                         "the unauthorised worker ran items")
        self.assertEqual(len(set(side_log_seqs(self.path("good.log")))), n)
        st = load_stats(stats)
        names = [w["name"] for w in st["workers"]]
        self.assertFalse([x for x in names if x.endswith(":%d" % wbad.pid)],
                         "unauthorised worker listed in --stats: %s" % names)
        self.assertTrue([x for x in names if x.endswith(":%d" % wgood.pid)], names)
        self.assertIsNone(wbad.poll(), "the unauthorised worker should still be waiting")
        log("curve: %s" % stats_line(st))

    def test_curve_only_unauthorised_worker_no_progress(self):
        srv, good, bad, allow = self.curve_setup()
        items = random_items(self.rng, 100, numbered=True)
        stats, outp = self.path("stats.json"), self.path("out.txt")
        vent, sink, vep = self.start_curve_job(srv, allow, items, stats, outp)
        wbad = self.start_curve_worker(vep, bad, srv, self.path("bad.log"))
        time.sleep(4)
        self.assertIsNone(vent.poll(), "ventilator ended: %s" % self.stderr_of(vent)[-1000:])
        self.assertIsNone(sink.poll(), "sink ended: %s" % self.stderr_of(sink)[-1000:])
        self.assertEqual(h.file_size(outp), 0, "results written without an authorised worker")
        self.assertEqual(side_log_seqs(self.path("bad.log")), [])
        #  Stop the job: SIGTERM, then (bounded) SIGKILL by the tearDown.
        for p in (vent, sink, wbad):
            signal_pid(p.pid, signal.SIGTERM)
        for p in (vent, sink, wbad):
            h.wait_proc(p, 10)
        self.assertEqual(h.file_size(outp), 0)

    def test_run_with_curve_server_key(self):
        srv = self.keygen("server")
        n = 1000
        items = random_items(self.rng, n, numbered=True)
        inp = h.write(self.path("in.txt"), h.join_lines(items))
        rc, out, err = self.run_tf("run", "-j", "3", "-i", inp, "--no-progress",
                                   "--curve-server-key", srv + "_secret", "--pipe", "--", "rev",
                                   timeout=JOB_TIMEOUT)
        self.assertEqual(rc, 0, err.decode("utf-8", "replace")[-2000:])
        self.assertBytesEqual(out, b"".join(it[::-1] + b"\n" for it in items))

    def test_run_curve_listen_remote_workers(self):
        """run --curve-server-key --curve-allow --listen: an authorised remote
        worker joins and gets items, an unauthorised one gets none. (run
        allows its own key pair itself: DIR holds only the remote worker.)"""
        srv = self.keygen("server")
        good = self.keygen("good")
        bad = self.keygen("bad")
        allow = self.path("allow")
        os.mkdir(allow)
        h.write(os.path.join(allow, "good"), h.read(good))
        n = 600
        items = random_items(self.rng, n, numbered=True)
        inp = h.write(self.path("in.txt"), h.join_lines(items))
        stats, outp, listen = self.path("stats.json"), self.path("out.txt"), h.tcp_endpoint()
        #  -j 1 local worker; items slow enough for the remote ones to join.
        p = self.start_tf("run", "-j", "1", "-i", inp, "-o", outp, "--listen", listen,
                          "--stats", stats, "--no-progress", "--curve-server-key",
                          srv + "_secret", "--curve-allow", allow,
                          "--", "sh", "-c", LOGGED, self.path("local.log"), "{}")
        wgood = self.start_curve_worker(listen, good, srv, self.path("good.log"))
        wbad = self.start_curve_worker(listen, bad, srv, self.path("bad.log"))
        rc = self.wait_rc(p, JOB_TIMEOUT, "run")
        self.assertEqual(rc, 0, self.stderr_of(p)[-2000:])
        self.assertBytesEqual(h.read(outp), b"".join(it + b"\n" for it in items))
        self.assertEqual(side_log_seqs(self.path("bad.log")), [])
        self.assertGreater(len(side_log_seqs(self.path("good.log"))), 0,
                           "the authorised remote worker got no items")
        st = load_stats(stats)
        names = [w["name"] for w in st["workers"]]
        self.assertFalse([x for x in names if x.endswith(":%d" % wbad.pid)], names)
        self.assertEqual(self.wait_rc(wgood, 30, "authorised worker"), 0)
        log("run+curve+listen: %s" % stats_line(st))

    def test_curve_allow_dir_with_a_key_twice(self):
        """The same public key twice in --curve-allow (for run: the server's
        own public cert, which run adds itself) must not crash."""
        srv, good, bad, allow = self.curve_setup()     # allow/ holds server + good
        items = random_items(self.rng, 50, numbered=True)
        inp = h.write(self.path("in.txt"), h.join_lines(items))
        rc, out, err = self.run_tf("run", "-j", "1", "-i", inp, "--no-progress",
                                   "--curve-server-key", srv + "_secret", "--curve-allow", allow,
                                   "--", "sh", "-c", 'printf "%s\\n" "$1"', "_", "{}",
                                   timeout=JOB_TIMEOUT)
        err = err.decode("utf-8", "replace")
        self.assertEqual(rc, 0, err[-2000:])
        self.assertBytesEqual(out, b"".join(it + b"\n" for it in items))

# ---------------------------------------------------------------------------


class ResetProxy:
    """A TCP proxy on 127.0.0.1 that aborts (RST, SO_LINGER 0) each
    connection `lo`..`hi` seconds after accepting it, while `resetting`;
    afterwards it only forwards. For the last `swallow` seconds before a
    reset it drops what the client sends (taken, never delivered: lost in
    flight for sure). Counts the resets it made."""

    def __init__(self, upstream_port, rng, lo, hi, swallow=0.0):
        self.upstream = upstream_port
        self.rng, self.lo, self.hi, self.swallow = rng, lo, hi, swallow
        self.resetting = True
        self.resets = 0
        self.lock = threading.Lock()
        self.conns = []
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.port = self.srv.getsockname()[1]
        threading.Thread(target=self.accept_loop, daemon=True).start()

    @staticmethod
    def abort(sock):
        #  Linger 0 makes the close send RST; shutting the reading side
        #  first wakes the pump blocked in recv(), without which Linux
        #  sends nothing until the far end writes.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RD)
        with contextlib.suppress(OSError):
            sock.close()

    @staticmethod
    def pump(src, dst, dead, muted):
        try:
            while not dead.is_set():
                data = src.recv(65536)
                if not data:
                    break
                if not muted.is_set():
                    dst.sendall(data)
        except OSError:
            pass
        dead.set()

    def accept_loop(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return  # closed
            try:
                u = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
                u.settimeout(None)
            except OSError:
                c.close()
                continue
            dead, muted = threading.Event(), threading.Event()
            with self.lock:
                self.conns += [c, u]
            for a, b, m in ((c, u, muted), (u, c, threading.Event())):
                threading.Thread(target=self.pump, args=(a, b, dead, m), daemon=True).start()
            threading.Thread(target=self.killer, args=(c, u, dead, muted), daemon=True).start()

    def killer(self, c, u, dead, muted):
        delay = self.rng.uniform(self.lo, self.hi)
        if self.swallow and not dead.wait(max(0.0, delay - self.swallow)) and self.resetting:
            muted.set()
            delay = self.swallow
        #  Once muted it must reset: a connection that swallows for good
        #  would lose results without anyone noticing.
        if not dead.wait(delay) and (self.resetting or muted.is_set()):
            with self.lock:
                self.resets += 1
        elif not dead.is_set():
            dead.wait()  # no more resets: forward until either side closes
        self.abort(c)
        self.abort(u)

    def close(self):
        self.resetting = False
        with contextlib.suppress(OSError):
            self.srv.close()
        with self.lock:
            for s in self.conns:
                self.abort(s)


class ConnectionResetTest(ReliabilityBase):

    def run_with_proxy(self, on, n=600, ack_timeout=None, swallow=0.0):
        """A ventilator, a sink and a `worker -j 4 --pipe`; the link named
        by `on` ("worker" or "sink": to the ventilator; "results": the
        worker's to the sink) goes through a ResetProxy that resets each
        connection 0.3-0.8 s after it opens, for the first 4 s. Returns
        (worker stderr, ventilator stats)."""
        items = random_items(self.rng, n, numbered=True)
        inp = h.write(self.path("in.txt"), h.join_lines(items))
        outp, stats = self.path("out.txt"), self.path("stats.json")
        vport, sport = h.free_port(), h.free_port()
        vep, sep = "tcp://127.0.0.1:%d" % vport, "tcp://127.0.0.1:%d" % sport
        proxy = ResetProxy(sport if on == "results" else vport, self.rng, 0.3, 0.8, swallow)
        self.addCleanup(proxy.close)
        via = "tcp://127.0.0.1:%d" % proxy.port
        slow_hb = ["--heartbeat", "0.5", "--heartbeat-timeout", "60"]
        acks = ["--ack-timeout", str(ack_timeout)] if ack_timeout else []
        vent = self.start_tf("ventilator", "--bind", vep, "-i", inp, "--no-progress",
                             "--stats", stats, *slow_hb, *acks)
        sink = self.start_tf("sink", "--bind", sep, "--ventilator", via if on == "sink" else vep,
                             "-o", outp, *slow_hb)
        script = 'while IFS= read -r l; do sleep 0.02; printf "%s\\n" "$l"; done'
        #  Not --once: a JOB_END lost with a reset connection would leave a
        #  --once worker waiting 10 heartbeat timeouts (here 10 minutes)
        #  for a ventilator that is gone; it is told to stop instead.
        results = ["--sink", via] if on == "results" else []
        worker = self.start_tf("worker", "--connect", via if on == "worker" else vep,
                               *results, "-j", "4", "--pipe", "--", "sh", "-c", script)
        calm = threading.Timer(4.0, lambda: setattr(proxy, "resetting", False))
        calm.daemon = True
        calm.start()
        self.addCleanup(calm.cancel)
        #  Bound: a session that waited for the heartbeat timeout instead
        #  would take 60 s; the job itself takes about 3 s.
        rc = self.wait_rc(vent, 45, "ventilator (lost items waiting for a 60 s heartbeat?)")
        self.assertEqual(rc, 0, self.stderr_of(vent)[-2000:])
        self.assertEqual(self.wait_rc(sink, 30, "sink"), 0)
        self.assertBytesEqual(h.read(outp), b"".join(it + b"\n" for it in items))
        os.kill(worker.pid, signal.SIGTERM)
        self.wait_rc(worker, 30, "worker after SIGTERM")
        self.assertGreater(proxy.resets, 0, "the proxy never reset a connection")
        st = load_stats(stats)
        self.assertIsNotNone(st, "no --stats written")
        log("%s link: %d reset(s); %s" % (on, proxy.resets, stats_line(st)))
        return self.stderr_of(worker), st

    def test_sink_link_reset_again_and_again(self):
        """The sink's link to the ventilator is reset again and again: the
        ACKs lost with each connection are sent again (the sink notices the
        drop, or is registered again), so no item runs a second time even
        with an --ack-timeout shorter than the job."""
        _, st = self.run_with_proxy("sink", ack_timeout=2)
        self.assertEqual(st.get("resent_unacked"), 0, "items ran again for lost acks")

    def test_worker_link_reset_again_and_again(self):
        """Every connection from the worker to the ventilator is reset
        0.3-0.8 s after it opens, for the first 4 s of a ~3 s job: TASKS
        and REPORTs in flight are lost each time. The heartbeat timeout
        (60 s) is longer than the test's bound, so only noticing the drops
        themselves (worker: new session; ventilator: probe, re-queue) gets
        the job through; the output must still equal the reference."""
        werr, _ = self.run_with_proxy("worker")
        log("worker sessions after a drop: %d" % werr.count("dropped, starting a new session"))
        self.assertIn("connection to the ventilator dropped, starting a new session", werr)
        self.assertNotIn("ventilator silent", werr)

    def test_results_link_reset_again_and_again(self):
        """The worker's connection to the sink is reset again and again:
        results in flight on it are lost. The worker notices each drop and
        tells the ventilator (RESULTS_LOST), which sends the items it has
        from that worker done but unacknowledged again two heartbeats later
        unless the sink acknowledges them: the job ends well within its
        bound although --ack-timeout (60 s) is longer, and the worker keeps
        its session (nothing of what it runs is handed out twice)."""
        werr, st = self.run_with_proxy("results", ack_timeout=60, swallow=0.2)
        log("sink drops seen by the worker: %d" % werr.count("connection to the sink dropped"))
        self.assertIn("connection to the sink dropped", werr)
        self.assertEqual(st.get("workers_lost"), 0, "the worker's session ended on a sink drop")
        self.assertEqual(st.get("resent_lost_worker"), 0)
        self.assertGreater(st.get("resent_unacked"), 0, "no result was lost: nothing tested")


class Blackhole:
    """A TCP port that accepts connections and reads whatever comes, but
    never answers: a ZeroMQ peer connecting to it never completes its
    handshake, so everything it queues for that peer stays queued."""

    def __init__(self):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.conns = []
        self.closed = False
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while not self.closed:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self.drain, args=(c,), daemon=True).start()

    @staticmethod
    def drain(c):
        with contextlib.suppress(OSError):
            while c.recv(65536):
                pass

    def close(self):
        self.closed = True
        for s in [self.lsock] + self.conns:
            with contextlib.suppress(OSError):
                s.close()


class LostResultsTest(ReliabilityBase):

    def test_results_lost_with_their_worker_run_again_soon(self):
        """A worker completes every item, but its results never reach the
        sink (its --sink is a port that never answers), then it is killed.
        The ventilator must not wait the whole --ack-timeout (60 s, longer
        than the test's bound) for acks that cannot come: a lost worker's
        done but unacknowledged items are sent again after two heartbeats,
        and a second worker completes the job."""
        n = 200
        items = [b"item %d" % i for i in range(n)]
        inp = h.write(self.path("in.txt"), h.join_lines(items))
        outp, stats, marker = self.path("out.txt"), self.path("stats.json"), self.path("done")
        vep, sep = h.tcp_endpoint(), h.tcp_endpoint()
        hole = Blackhole()
        self.addCleanup(hole.close)
        vent = self.start_tf("ventilator", "--bind", vep, "-i", inp, "--no-progress",
                             "--stats", stats, "--ack-timeout", "60")
        sink = self.start_tf("sink", "--bind", sep, "--ventilator", vep, "-o", outp)
        script = 'while IFS= read -r l; do printf "%s\\n" "$l"; echo >> "$0"; done'
        lost = self.start_tf("worker", "--connect", vep, "--sink",
                             "tcp://127.0.0.1:%d" % hole.port, "--once", "-j", "2", "--pipe",
                             "--no-pty", "--", "sh", "-c", script, marker)
        done = h.wait_for(lambda: count_lines(marker) >= n or vent.poll() is not None, 30)
        self.assertTrue(done, "the first worker did not complete the items: %d of %d"
                        % (count_lines(marker), n))
        self.assertIsNone(vent.poll(), "the job ended with every result lost?")
        self.assertEqual(h.file_size(outp), 0, "results reached the sink through a black hole")
        for q in descendants(lost.pid) | {lost.pid}:
            signal_pid(q, signal.SIGKILL)
        t0 = time.monotonic()
        self.start_tf("worker", "--connect", vep, "--once", "-j", "2", "--pipe", "--", "cat")
        rc = self.wait_rc(vent, 20, "ventilator (waiting the 60 s --ack-timeout?)")
        took = time.monotonic() - t0
        self.assertEqual(rc, 0, self.stderr_of(vent)[-2000:])
        self.assertEqual(self.wait_rc(sink, 20, "sink"), 0)
        self.assertBytesEqual(h.read(outp), h.join_lines(items))
        st = load_stats(stats)
        self.assertIsNotNone(st, "no --stats written")
        log("job done %.2f s after the kill; %s" % (took, stats_line(st)))
        self.assertEqual(st.get("resent_unacked"), n, "every lost result is sent again once")
        self.assertEqual(st.get("workers_lost"), 1)
        self.assertIn("%d done but not acknowledged" % n, self.stderr_of(vent))


if __name__ == "__main__":
    unittest.main(verbosity=2)
