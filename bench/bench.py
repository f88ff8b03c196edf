#!/usr/bin/env python3
"""bench/bench.py -- taskfarm's benchmark suite (driven by bench/run).

Runs every workload of bench/README.md, checks every run's output (a
benchmark of a wrong answer is void), takes medians, and writes
results.json, results.md and the .dat files that bench/plots.gp draws.

Usage: bench.py --build BUILD_DIR --tools TOOLS_DIR --out OUT_DIR
Environment: BENCH_RUNS (default 5; 2 in quick mode), BENCH_QUICK=1 (fewer
runs, smaller sizes), BENCH_ONLY=1,2,7 (run only these workloads),
BENCH_NETNS=0 (skip workload 8), BENCH_NETNS_PREFIX (namespace name prefix,
must start with "tfb-").
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

# ---------------------------------------------------------------- settings

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
RUNS = int(os.environ.get("BENCH_RUNS", "2" if QUICK else "5"))
if RUNS < 1:
    sys.exit("bench: BENCH_RUNS must be >= 1")
ONLY = {s.strip() for s in os.environ.get("BENCH_ONLY", "").split(",") if s.strip()}
NETNS_WANTED = os.environ.get("BENCH_NETNS", "1") != "0"
NETNS_PREFIX = os.environ.get("BENCH_NETNS_PREFIX", f"tfb-{os.getpid()}-")
if not NETNS_PREFIX.startswith("tfb-"):
    sys.exit("bench: BENCH_NETNS_PREFIX must start with 'tfb-'")

SIZES = {
    "zmq_msgs": 200_000 if QUICK else 1_000_000,
    "pipe_lines": 200_000 if QUICK else 1_000_000,
    "exec_items": 400 if QUICK else 2000,
    "seed_items": 100,
    "skew_items": 120 if QUICK else 400,  # heavy items a multiple of 4: Σ/4 is reachable
    "rss_small": 100_000 if QUICK else 200_000,  # above the default window (32768)
    "rss_large": 1_000_000 if QUICK else 2_000_000,
    "scale_items": 80 if QUICK else 160,
    "scale_ms": 20,
    "scale_workers": [1, 2, 4, 8] if QUICK else [1, 2, 3, 4, 5, 6, 7, 8],
    "cg_small": 20_000 if QUICK else 100_000,
    "cg_large": 200_000 if QUICK else 1_000_000,
}

T_START = time.time()


def log(msg):
    print(f"[{time.time() - T_START:6.1f}s] {msg}   (load {os.getloadavg()[0]:.2f})", flush=True)


def wanted(wid):
    return not ONLY or str(wid) in ONLY


# ---------------------------------------------------------------- helpers


class Run:
    """One timed execution of a command."""

    def __init__(self, seconds, rc, stderr, timed_out=False, rusage=None):
        self.seconds = seconds
        self.rc = rc
        self.stderr = stderr
        self.timed_out = timed_out
        self.rusage = rusage


def run_cmd(cmd, stdin=None, stdout=None, timeout=300, env=None):
    """Run CMD (list) with stdin/stdout redirected from/to files, in its own
    session (so a timeout kills the whole tree). Returns a Run."""
    fin = open(stdin, "rb") if stdin else subprocess.DEVNULL
    fout = open(stdout, "wb") if stdout else subprocess.DEVNULL
    try:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdin=fin, stdout=fout, stderr=subprocess.PIPE,
                             start_new_session=True, env=env)
        try:
            _, err = p.communicate(timeout=timeout)
            t1 = time.perf_counter()
            return Run(t1 - t0, p.returncode, err.decode(errors="replace"))
        except subprocess.TimeoutExpired:
            kill_tree(p.pid)
            _, err = p.communicate()
            return Run(float(timeout), -9, err.decode(errors="replace"), timed_out=True)
        except BaseException:
            kill_tree(p.pid)   # interrupted: leave nothing running
            p.wait()
            raise
    finally:
        if stdin:
            fin.close()
        if stdout:
            fout.close()


def kill_tree(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def median(xs):
    return statistics.median(xs) if xs else None


def same_file(a, b):
    if os.path.getsize(a) != os.path.getsize(b):
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def fmt_s(s):
    if s is None:
        return "–"
    if s >= 10:
        return f"{s:.1f} s"
    if s >= 1:
        return f"{s:.2f} s"
    return f"{s * 1000:.0f} ms" if s >= 0.1 else f"{s * 1000:.1f} ms"


def fmt_rate(r, unit="items/s"):
    if r is None:
        return "–"
    if r >= 1e6:
        return f"{r / 1e6:.2f} M {unit}"
    if r >= 1e3:
        return f"{r / 1e3:.1f} k {unit}"
    return f"{r:.1f} {unit}"


def fmt_mb(kb):
    return "–" if kb is None else f"{kb / 1024:.1f} MB"


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------- results


class Results:
    def __init__(self):
        self.rows = []          # table rows
        self.targets = []       # target checks
        self.failures = []      # correctness failures (void results)
        self.skipped = []
        self.extra = {}         # raw data per workload (json)
        self.plot = {}          # data for the plots

    def row(self, wid, workload, variant, times=None, value=None, metric="", ratio=None,
            ratio_of="", target="", met=None, status="ok", note=""):
        r = {
            "id": wid, "workload": workload, "variant": variant,
            "runs_s": [round(t, 6) for t in times] if times else [],
            "median_s": median(times) if times else None,
            "min_s": min(times) if times else None, "max_s": max(times) if times else None,
            "value": value, "metric": metric, "ratio": ratio, "ratio_of": ratio_of,
            "target": target, "met": met, "status": status, "note": note,
        }
        if times and len(times) >= 3 and min(times) > 0 and max(times) / min(times) > 1.5:
            r["noisy"] = True
            r["note"] = (f"noisy: max/min {max(times) / min(times):.1f}"
                         + (f"; {note}" if note else ""))
        self.rows.append(r)
        return r

    def target(self, wid, what, value, op, goal, note=""):
        met = None if value is None else (value <= goal if op == "<=" else value >= goal)
        self.targets.append({"id": wid, "what": what, "value": value, "op": op, "goal": goal,
                             "met": met, "note": note})
        return met

    def fail(self, wid, variant, why):
        log(f"  WRONG: #{wid} {variant}: {why}")
        self.failures.append({"id": wid, "variant": variant, "why": why})


R = Results()


def timed_series(wid, contenders, runs=RUNS, warmup=True, timeout=300):
    """Run each contender RUNS times, interleaved (A B C A B C ...), after one
    untimed warm-up each. A contender is a dict: name, cmd, stdin, stdout,
    check(run, stdout_path) -> None or an error string. Returns
    {name: [seconds...]} with None for a contender whose output was wrong."""
    times = {c["name"]: [] for c in contenders}
    bad = set()
    for rep in range(-1 if warmup else 0, runs):
        for c in contenders:
            if c["name"] in bad:
                continue
            r = run_cmd(c["cmd"], stdin=c.get("stdin"), stdout=c.get("stdout"),
                        timeout=c.get("timeout", timeout))
            why = None
            if r.timed_out:
                why = f"timed out after {timeout} s"
            elif r.rc != 0:
                why = f"exit status {r.rc}: {r.stderr.strip()[-300:]}"
            elif c.get("check"):
                why = c["check"](r, c.get("stdout"))
            if why:
                R.fail(wid, c["name"], f"run {rep + 1}: {why}")
                bad.add(c["name"])
                continue
            if rep >= 0:
                times[c["name"]].append(r.seconds)
    return {k: (None if k in bad else v) for k, v in times.items()}


# ---------------------------------------------------------------- machine


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                              timeout=20).stdout.strip()
    except Exception:  # noqa: BLE001 - description only
        return ""


def machine(build):
    cpu = sh("lscpu | sed -n 's/^Model name: *//p' | head -1") or platform.processor()
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": sh(". /etc/os-release && echo \"$PRETTY_NAME\""),
        "loadavg_start": os.getloadavg(),
        "parallel": sh("parallel --version | head -1"),
        "xargs": sh("xargs --version | head -1"),
        "python": sys.version.split()[0] + f" ({sys.executable})",
        "libzmq": sh("pkg-config --modversion libzmq"),
        "gnuplot": sh("gnuplot --version"),
        "cc": sh("cc --version | head -1"),
        "taskfarm": sh(f"'{build}/taskfarm' --version 2>&1 | head -1"),
        "taskfarm_commit": sh(f"git -C '{os.path.dirname(os.path.abspath(__file__))}' "
                              "rev-parse --short HEAD") + (
            " (+ uncommitted changes)" if sh(
                f"git -C '{os.path.dirname(os.path.abspath(__file__))}' status --porcelain "
                "-- ':!bench' | head -1") else ""),
    }


# ---------------------------------------------------------------- inputs

WORDS = ("the quick brown fox jumps over the lazy dog while ZeroMQ moves messages").split()


def seed_lines(n):
    # the same items as examples/seed_demo.py
    return [" ".join(WORDS[(i + k) % len(WORDS)].capitalize() for k in range(8)) + f", item {i}!"
            for i in range(n)]


def same_lines_unordered(lines):
    """A check (run, stdout_path) -> None or an error: the output holds the
    given lines (str), each once, in any order (runners without ordering)."""
    want = sorted(x.encode() for x in lines)

    def check(r, o):
        with open(o, "rb") as f:
            return None if sorted(f.read().splitlines()) == want else "output lost/doubled items"
    return check


def write_lines(path, lines):
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def write_seq(path, n):
    with open(path, "w") as f:
        f.write("\n".join(str(i) for i in range(1, n + 1)) + "\n")


# ---------------------------------------------------------------- workloads


def check_stats(path, n):
    """taskfarm --stats: every item done, none failed."""
    def check(run, out):
        st = read_json(path)
        if st is None:
            return f"no --stats JSON at {path}"
        if st.get("done") != n or st.get("failed", 0) != 0:
            return f"--stats says done={st.get('done')} failed={st.get('failed')}, want {n}/0"
        return None
    return check


def w1_zmq(ctx):
    wid = 1
    log("#1 raw ZeroMQ baseline")
    n = SIZES["zmq_msgs"]
    zb = os.path.join(ctx.tools, "zmq_baseline")
    rates = {}
    for mode in ("hop", "relay"):
        for tr in ("ipc", "tcp"):
            name = f"{mode} {tr}"
            secs, rs = [], []
            bad = None
            for rep in range(-1, RUNS):
                out = os.path.join(ctx.tmp, "zb.json")
                r = run_cmd([zb, mode, tr, str(n)], stdout=out, timeout=120)
                res = read_json(out)
                if r.timed_out or r.rc != 0 or not res or not res.get("ok") or res["count"] != n:
                    bad = f"rc={r.rc} timed_out={r.timed_out} {r.stderr.strip()[-200:]}"
                    break
                if rep >= 0:
                    secs.append(res["seconds"])
                    rs.append(res["msgs_per_s"])
            shape = ("PUSH→PULL (one hop)" if mode == "hop"
                     else "PUSH→PULL/PUSH→PULL (two-hop relay)")
            variant = f"{shape}, {tr}{'://' + ('tmp' if tr == 'ipc' else '127.0.0.1')}"
            if bad:
                R.fail(wid, name, bad)
                R.row(wid, f"raw ZeroMQ, {n:,} × 8 B msgs", variant, status="WRONG/FAILED",
                      note=bad)
                continue
            rates[name] = median(rs)
            R.row(wid, f"raw ZeroMQ, {n:,} × 8 B msgs", variant, times=secs, value=rates[name],
                  metric=fmt_rate(rates[name], "msgs/s"),
                  note="ceiling; timed first→last message at the receiver")
    ctx.zmq = rates
    R.extra["zmq"] = {"count": n, "msgs_per_s_median": rates}
    R.plot["zmq"] = rates


def w2_pipe(ctx):
    wid = 2
    n = SIZES["pipe_lines"]
    log(f"#2 {n:,} short lines through --pipe cat")
    inp = os.path.join(ctx.tmp, "seq.txt")
    write_seq(inp, n)
    out_tf = os.path.join(ctx.tmp, "w2_tf.out")
    out_par = os.path.join(ctx.tmp, "w2_par.out")
    stats = os.path.join(ctx.tmp, "w2_stats.json")
    same = lambda r, out: None if same_file(out, inp) else "output differs from the input"  # noqa
    st_check = check_stats(stats, n)
    tf_cmd = [ctx.tf, "run", "-j", "2", "--pipe", "--stats", stats, "--", "cat"]
    par_cmd = ["parallel", "--will-cite", "-j2", "--pipe", "-k", "cat"]
    t = timed_series(wid, [
        {"name": "taskfarm", "cmd": tf_cmd, "stdin": inp, "stdout": out_tf,
         "check": lambda r, o: same(r, o) or st_check(r, o)},
        {"name": "parallel", "cmd": par_cmd, "stdin": inp, "stdout": out_par, "check": same},
    ])
    title = f"{n:,} short lines (seq), --pipe cat, 2 workers"
    tf_t, par_t = t["taskfarm"], t["parallel"]
    tf_m, par_m = median(tf_t or []), median(par_t or [])
    ratio = tf_m / par_m if tf_m and par_m else None
    tf_rate = n / tf_m if tf_m else None
    par_rate = n / par_m if par_m else None
    R.row(wid, title, "taskfarm run -j 2 --pipe -- cat", times=tf_t, value=tf_rate,
          metric=fmt_rate(tf_rate), ratio=ratio, ratio_of="× parallel", target="≤ 1.0",
          met=None if ratio is None else ratio <= 1.0,
          status="ok" if tf_t else "WRONG/FAILED")
    R.row(wid, title, "parallel -j2 --pipe -k cat", times=par_t, value=par_rate,
          metric=fmt_rate(par_rate), ratio=1.0 if par_m else None, ratio_of="(reference)",
          status="ok" if par_t else "WRONG/FAILED")
    R.target(wid, f"--pipe cat, {n:,} lines: taskfarm time ÷ parallel time", ratio, "<=", 1.0)
    zmq = getattr(ctx, "zmq", {})
    for key, label in (("relay ipc", "two-hop relay over ipc (same shape: vent→worker→sink)"),
                       ("hop ipc", "one hop over ipc")):
        if tf_rate and zmq.get(key):
            R.row(wid, title, f"taskfarm items/s ÷ raw ZeroMQ {label}", value=tf_rate / zmq[key],
                  metric=f"{fmt_rate(tf_rate)} vs {fmt_rate(zmq[key], 'msgs/s')}",
                  ratio=tf_rate / zmq[key], ratio_of="× ZeroMQ msgs/s",
                  note="> 1 is possible: taskfarm batches many items per message")
    R.plot["pipe"] = {"taskfarm": tf_rate, "parallel": par_rate}
    R.extra["pipe"] = {"items": n, "taskfarm_stats_last": read_json(stats)}


def w3_exec(ctx):
    wid = 3
    n = SIZES["exec_items"]
    log(f"#3 {n} items of `true`, a process per item")
    inp = os.path.join(ctx.tmp, "exec.txt")
    write_seq(inp, n)
    stats = os.path.join(ctx.tmp, "w3_stats.json")
    out = {k: os.path.join(ctx.tmp, f"w3_{k}.out") for k in ("tf", "xargs", "par")}
    empty = lambda r, o: None if os.path.getsize(o) == 0 else "unexpected output"  # noqa
    st_check = check_stats(stats, n)
    t = timed_series(wid, [
        {"name": "taskfarm", "cmd": [ctx.tf, "run", "-j", "4", "--stats", stats, "--", "true"],
         "stdin": inp, "stdout": out["tf"], "check": lambda r, o: empty(r, o) or st_check(r, o)},
        {"name": "xargs", "cmd": ["xargs", "-P4", "-n1", "true"], "stdin": inp,
         "stdout": out["xargs"], "check": empty},
        {"name": "parallel", "cmd": ["parallel", "--will-cite", "-k", "-j4", "true"],
         "stdin": inp, "stdout": out["par"], "check": empty},
    ])
    title = f"{n} items × `true`, a process per item, 4 at a time"
    m = {k: median(v) if v else None for k, v in t.items()}
    rx = m["taskfarm"] / m["xargs"] if m["taskfarm"] and m["xargs"] else None
    rp = m["taskfarm"] / m["parallel"] if m["taskfarm"] and m["parallel"] else None
    R.row(wid, title, "taskfarm run -j 4 -- true", times=t["taskfarm"],
          value=n / m["taskfarm"] if m["taskfarm"] else None,
          metric=fmt_rate(n / m["taskfarm"]) if m["taskfarm"] else "", ratio=rx,
          ratio_of="× xargs", target="≤ 1.0", met=None if rx is None else rx <= 1.0,
          status="ok" if t["taskfarm"] else "WRONG/FAILED")
    R.row(wid, title, "taskfarm run -j 4 -- true (vs parallel)", value=rp, ratio=rp,
          ratio_of="× parallel", target="≤ 0.2", met=None if rp is None else rp <= 0.2)
    R.row(wid, title, "xargs -P4 -n1 true", times=t["xargs"],
          value=n / m["xargs"] if m["xargs"] else None,
          metric=fmt_rate(n / m["xargs"]) if m["xargs"] else "", ratio_of="(reference)",
          ratio=1.0 if m["xargs"] else None, status="ok" if t["xargs"] else "WRONG/FAILED")
    R.row(wid, title, "parallel -k -j4 true", times=t["parallel"],
          value=n / m["parallel"] if m["parallel"] else None,
          metric=fmt_rate(n / m["parallel"]) if m["parallel"] else "", ratio_of="(reference)",
          ratio=1.0 if m["parallel"] else None, status="ok" if t["parallel"] else "WRONG/FAILED")
    R.target(wid, f"exec `true` × {n}: taskfarm ÷ xargs -P4", rx, "<=", 1.0)
    R.target(wid, f"exec `true` × {n}: taskfarm ÷ parallel -j4", rp, "<=", 0.2)
    R.extra["exec"] = {"items": n, "taskfarm_stats_last": read_json(stats)}


def w4_seed(ctx):
    wid = 4
    n = SIZES["seed_items"]
    log(f"#4 seed workload: {n} items × 10 ms (tokenize)")
    inp = os.path.join(ctx.tmp, "seed.txt")
    write_lines(inp, seed_lines(n))
    ref = os.path.join(ctx.tmp, "seed.ref")
    r = run_cmd([ctx.tok, "--ms", "0"], stdin=inp, stdout=ref)
    if r.rc != 0:
        R.fail(wid, "reference", f"tokenize failed: {r.stderr}")
        return
    same = lambda r, o: None if same_file(o, ref) else "output differs from `tokenize < items`"  # noqa
    stats = os.path.join(ctx.tmp, "w4_stats.json")
    st_check = check_stats(stats, n)
    pool = os.path.join(ctx.benchdir, "pool_tokenize.py")
    outs = {k: os.path.join(ctx.tmp, f"w4_{k}.out") for k in ("seq", "pipe", "exec", "pool")}
    t = timed_series(wid, [
        {"name": "seq", "cmd": [ctx.tok], "stdin": inp, "stdout": outs["seq"], "check": same},
        {"name": "pipe", "cmd": [ctx.tf, "run", "-j", "4", "--pipe", "--stats", stats, "--",
                                 ctx.tok], "stdin": inp, "stdout": outs["pipe"],
         "check": lambda r, o: same(r, o) or st_check(r, o)},
        {"name": "exec", "cmd": [ctx.tf, "run", "-j", "4", "-i", inp, "--", ctx.tok, "{}"],
         "stdout": outs["exec"], "check": same},
        {"name": "pool", "cmd": [sys.executable, pool, inp, "4", "10"], "stdout": outs["pool"],
         "check": same},
    ])
    title = f"seed: {n} items × 10 ms (examples/tokenize), 4 workers"
    m = {k: median(v) if v else None for k, v in t.items()}
    seq = m["seq"]

    def ratio(k):
        return m[k] / seq if m[k] and seq else None
    R.row(wid, title, "sequential: tokenize < items", times=t["seq"], ratio=1.0 if seq else None,
          ratio_of="(reference)", status="ok" if t["seq"] else "WRONG/FAILED")
    rp = ratio("pipe")
    R.row(wid, title, "taskfarm run -j 4 --pipe -- tokenize", times=t["pipe"], ratio=rp,
          ratio_of="× sequential", target="≤ 0.26", met=None if rp is None else rp <= 0.26,
          status="ok" if t["pipe"] else "WRONG/FAILED")
    R.row(wid, title, "taskfarm run -j 4 -- tokenize {} (a process per item)", times=t["exec"],
          ratio=ratio("exec"), ratio_of="× sequential", status="ok" if t["exec"] else "WRONG/FAILED")
    R.row(wid, title, "python3 multiprocessing.Pool(4).map (sleep 10 ms + tokenize)",
          times=t["pool"], ratio=ratio("pool"), ratio_of="× sequential",
          status="ok" if t["pool"] else "WRONG/FAILED",
          note="whole process: interpreter + Pool start-up + map")
    R.row(wid, title, "pyblaze Vectorizer (published: 280 ms vs 1.01 s)", ratio=0.277,
          ratio_of="× sequential", note="published figure, not measured here")
    R.target(wid, f"seed {n} × 10 ms: taskfarm --pipe -j 4 ÷ sequential", rp, "<=", 0.26,
             note="pyblaze: 0.277")
    R.plot["seed"] = {"pipe": rp, "exec": ratio("exec"), "pool": ratio("pool")}


def w5_skew(ctx):
    wid = 5
    n = SIZES["skew_items"]
    log(f"#5 skewed: {n} items, every 10th 100 ms, the rest 1 ms, 4 workers")
    ms = [100 if i % 10 == 0 else 1 for i in range(n)]
    lines = [f"{d} #{i}" for i, d in enumerate(ms)]
    inp = os.path.join(ctx.tmp, "skew.txt")
    write_lines(inp, lines)
    ideal = sum(ms) / 4 / 1000.0
    expect = ("\n".join(lines) + "\n").encode()
    sleeper = os.path.join(ctx.tools, "sleeper")

    def same(r, o):
        with open(o, "rb") as f:
            return None if f.read() == expect else "output differs from the items (in order)"

    same_sorted = same_lines_unordered(lines)
    stats = os.path.join(ctx.tmp, "w5_stats.json")
    st_check = check_stats(stats, n)
    outs = {k: os.path.join(ctx.tmp, f"w5_{k}.out") for k in ("pipe", "exec", "xargs", "floor")}
    t = timed_series(wid, [
        {"name": "pipe", "cmd": [ctx.tf, "run", "-j", "4", "--pipe", "--stats", stats, "--",
                                 sleeper], "stdin": inp, "stdout": outs["pipe"],
         "check": lambda r, o: same(r, o) or st_check(r, o)},
        {"name": "exec", "cmd": [ctx.tf, "run", "-j", "4", "--", sleeper, "{}"], "stdin": inp,
         "stdout": outs["exec"], "check": same},
        {"name": "xargs", "cmd": ["xargs", "-P4", "-d", "\n", "-n1", sleeper], "stdin": inp,
         "stdout": outs["xargs"], "check": same_sorted},
        {"name": "floor", "cmd": [os.path.join(ctx.tools, "spawnloop"), "4", sleeper],
         "stdin": inp, "stdout": outs["floor"], "check": same_sorted},
    ])
    title = f"skewed: {n} items, every 10th 100 ms, others 1 ms, 4 workers (ideal {fmt_s(ideal)})"
    m = {k: median(v) if v else None for k, v in t.items()}
    rr = {k: (m[k] / ideal if m[k] else None) for k in m}
    R.row(wid, title, "ideal makespan = Σ durations ÷ 4", times=[ideal], ratio=1.0,
          ratio_of="(reference)")
    R.row(wid, title, "taskfarm run -j 4 --pipe -- sleeper", times=t["pipe"], ratio=rr["pipe"],
          ratio_of="× ideal", target="≤ 1.1", met=None if rr["pipe"] is None else rr["pipe"] <= 1.1,
          status="ok" if t["pipe"] else "WRONG/FAILED")
    R.row(wid, title, "taskfarm run -j 4 -- sleeper {} (a process per item)", times=t["exec"],
          ratio=rr["exec"], ratio_of="× ideal", target="≤ 1.1",
          met=None if rr["exec"] is None else rr["exec"] <= 1.1,
          status="ok" if t["exec"] else "WRONG/FAILED")
    R.row(wid, title, "xargs -P4 -n1 sleeper (unordered, per-item process)", times=t["xargs"],
          ratio=rr["xargs"], ratio_of="× ideal", status="ok" if t["xargs"] else "WRONG/FAILED")
    R.row(wid, title, "bench/spawnloop 4 sleeper: posix_spawn + poll + waitpid, nothing else",
          times=t["floor"], ratio=rr["floor"], ratio_of="× ideal",
          status="ok" if t["floor"] else "WRONG/FAILED",
          note="the floor of a process per item here: greedy, in order, unordered output")
    R.target(wid, "skewed 1/10 × 100 ms: taskfarm --pipe makespan ÷ ideal", rr["pipe"], "<=", 1.1)
    R.target(wid, "skewed 1/10 × 100 ms: taskfarm exec makespan ÷ ideal", rr["exec"], "<=", 1.1)
    w5_process_start(ctx, wid, title, inp, ideal, same, same_sorted)
    st = read_json(stats)
    R.extra["skew"] = {"items": n, "ideal_s": ideal, "taskfarm_stats_last": st}
    R.plot["skew"] = rr


def w5_process_start(ctx, wid, title, inp, ideal, same, same_sorted):
    """What one process start costs here, and the exec-mode rows again with
    a task that skips the C library's start-up (bench/sleeper_nolibc.c):
    the difference is the machine's, not the runner's."""
    nolibc = os.path.join(ctx.tools, "sleeper_nolibc")
    if not os.access(nolibc, os.X_OK):
        log("  #5 process-start rows skipped: no sleeper_nolibc (x86-64 only)")
        return
    sleeper = os.path.join(ctx.tools, "sleeper")
    spawnloop = os.path.join(ctx.tools, "spawnloop")
    n = SIZES["skew_items"]
    zero = os.path.join(ctx.tmp, "zero.txt")
    zero_lines = [f"0 #{i}" for i in range(n)]
    write_lines(zero, zero_lines)
    zero_ok = same_lines_unordered(zero_lines)
    outs = {k: os.path.join(ctx.tmp, f"w5_{k}.out")
            for k in ("start_glibc", "start_nolibc", "exec_nolibc", "floor_nolibc")}
    t = timed_series(wid, [
        {"name": "start_glibc", "cmd": [spawnloop, "1", sleeper], "stdin": zero,
         "stdout": outs["start_glibc"], "check": zero_ok},
        {"name": "start_nolibc", "cmd": [spawnloop, "1", nolibc], "stdin": zero,
         "stdout": outs["start_nolibc"], "check": zero_ok},
        {"name": "exec_nolibc", "cmd": [ctx.tf, "run", "-j", "4", "--", nolibc, "{}"],
         "stdin": inp, "stdout": outs["exec_nolibc"], "check": same},
        {"name": "floor_nolibc", "cmd": [spawnloop, "4", nolibc], "stdin": inp,
         "stdout": outs["floor_nolibc"], "check": same_sorted},
    ])
    m = {k: median(v) if v else None for k, v in t.items()}
    per = {k: (m[k] / n * 1000 if m[k] else None) for k in ("start_glibc", "start_nolibc")}
    for k, what in (("start_glibc", "sleeper (glibc, dynamic)"),
                    ("start_nolibc", "sleeper_nolibc (no C library, static)")):
        R.row(wid, title, f"process start + exit, one at a time: {what}, {n} × 0 ms", times=t[k],
              value=None if per[k] is None else round(per[k], 3),
              metric="" if per[k] is None else f"{per[k]:.2f} ms per process",
              status="ok" if t[k] else "WRONG/FAILED",
              note="bench/spawnloop 1; glibc's start-up runs CPUID dozens of times, and a "
                   "hypervisor may trap each" if k == "start_glibc" else "")
    for k, what in (("exec_nolibc", "taskfarm run -j 4 -- sleeper_nolibc {} (a process per item)"),
                    ("floor_nolibc", "bench/spawnloop 4 sleeper_nolibc")):
        r = m[k] / ideal if m[k] else None
        R.row(wid, title, what, times=t[k], ratio=r, ratio_of="× ideal",
              status="ok" if t[k] else "WRONG/FAILED",
              note="the exec-mode rows again with a task whose start costs only the kernel's exec")
    R.extra["process_start_ms"] = per


# -- workload 6: peak RSS


def _proc_stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    comm = s[s.index("(") + 1:s.rindex(")")]
    ppid = int(s[s.rindex(")") + 2:].split()[1])
    return comm, ppid


def _vm_hwm(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def run_rss(cmd, stdin, stdout, tmp, timeout=300, interval=0.004):
    """Run CMD under /usr/bin/time and sample the peak RSS (VmHWM, a
    high-water mark, so only growth in the last few ms before a process
    exits can be missed) of it and of every descendant. Returns (seconds,
    rc, {pid: [comm, role, kb]}, tree_max_kb). The tree's max comes from
    /usr/bin/time (wait4's ru_maxrss): measuring it with wait4 from this
    driver would count the driver's own RSS, which a forked child carries
    until it execs."""
    tfile = os.path.join(tmp, "time.out")
    fin, fout = open(stdin, "rb"), open(stdout, "wb")
    t0 = time.perf_counter()
    p = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", tfile] + cmd, stdin=fin,
                         stdout=fout, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        return _sample_rss(p, tfile, fin, fout, t0, timeout, interval)
    except BaseException:
        kill_tree(p.pid)   # interrupted: leave nothing running
        p.wait()
        raise


def _sample_rss(p, tfile, fin, fout, t0, timeout, interval):
    root = p.pid
    procs = {}        # descendants of the `time` wrapper
    parents = {root}
    ignored = set()
    status = None
    deadline = time.monotonic() + timeout
    while True:
        try:
            for pid in sorted((int(x) for x in os.listdir("/proc") if x.isdigit())):
                if pid in procs or pid in ignored or pid <= root:
                    continue
                try:
                    comm, ppid = _proc_stat(pid)
                except (OSError, ValueError):
                    continue
                if ppid in parents:
                    role = ("run" if ppid == root else
                            "worker" if comm == "taskfarm" else "co-process")
                    procs[pid] = [comm, role, 0]
                    parents.add(pid)
                else:
                    ignored.add(pid)
        except OSError:
            pass
        for pid, rec in procs.items():
            try:
                rec[2] = max(rec[2], _vm_hwm(pid))
            except (OSError, ValueError):
                pass
        wpid, status, _ = os.wait4(root, os.WNOHANG)
        if wpid == root:
            break
        if time.monotonic() > deadline:
            kill_tree(root)
            _, status, _ = os.wait4(root, 0)
            break
        time.sleep(interval)
    t1 = time.perf_counter()
    p.returncode = os.waitstatus_to_exitcode(status)
    fin.close()
    fout.close()
    tree = None
    try:
        with open(tfile) as f:
            tree = int(f.read().split()[-1])
    except (OSError, ValueError, IndexError):
        pass
    return t1 - t0, p.returncode, procs, tree


def w6_rss(ctx):
    wid = 6
    small, large = SIZES["rss_small"], SIZES["rss_large"]
    log(f"#6 peak RSS, --pipe cat, {small:,} vs {large:,} items")
    data = {}
    for n in (small, large):
        inp = os.path.join(ctx.tmp, f"rss{n}.txt")
        write_seq(inp, n)
        out = os.path.join(ctx.tmp, f"rss{n}.out")
        stats = os.path.join(ctx.tmp, f"rss{n}.json")
        rows = []
        bad = None
        for rep in range(-1, RUNS):
            secs, rc, procs, tree = run_rss(
                [ctx.tf, "run", "-j", "2", "--pipe", "--stats", stats, "--", "cat"], inp, out,
                ctx.tmp)
            if rc != 0:
                bad = f"exit status {rc}"
            elif not same_file(out, inp):
                bad = "output differs from the input"
            else:
                bad = check_stats(stats, n)(None, out)
            if bad:
                break
            if rep < 0:
                continue
            run = [kb for c, role, kb in procs.values() if role == "run"]
            run_kb = run[0] if run else None
            workers = [kb for c, role, kb in procs.values() if role == "worker"]
            coproc = [kb for c, role, kb in procs.values() if role == "co-process"]
            rows.append({"seconds": secs, "run_kb": run_kb,
                         "worker_kb": max(workers) if workers else None,
                         "coproc_kb": max(coproc) if coproc else None,
                         "n_workers": len(workers), "tree_kb": tree})
        if bad:
            R.fail(wid, f"{n} items", bad)
            R.row(wid, "peak RSS, run -j 2 --pipe -- cat", f"{n:,} items", status="WRONG/FAILED",
                  note=bad)
            return
        med = {k: median([r[k] for r in rows if r[k] is not None]) for k in
               ("seconds", "run_kb", "worker_kb", "coproc_kb", "tree_kb")}
        data[n] = {"runs": rows, "median": med}
    title = "peak RSS, taskfarm run -j 2 --pipe -- cat"
    s, lg = data[small]["median"], data[large]["median"]

    def ratio(k):
        return lg[k] / s[k] if s.get(k) and lg.get(k) else None
    for n in (small, large):
        m = data[n]["median"]
        R.row(wid, title, f"{n:,} items: run process (ventilator + sink)",
              times=[r["seconds"] for r in data[n]["runs"]], value=m["run_kb"],
              metric=fmt_mb(m["run_kb"]),
              ratio=ratio("run_kb") if n == large else None,
              ratio_of=f"× {small:,}" if n == large else "",
              target="≤ 1.1" if n == large else "",
              met=(ratio("run_kb") <= 1.1 if ratio("run_kb") else None) if n == large else None)
        R.row(wid, title, f"{n:,} items: largest worker process", value=m["worker_kb"],
              metric=fmt_mb(m["worker_kb"]),
              ratio=ratio("worker_kb") if n == large else None,
              ratio_of=f"× {small:,}" if n == large else "",
              target="≤ 1.1" if n == large else "",
              met=(ratio("worker_kb") <= 1.1 if ratio("worker_kb") else None) if n == large
              else None)
        R.row(wid, title, f"{n:,} items: whole tree (/usr/bin/time -f %M)", value=m["tree_kb"],
              metric=fmt_mb(m["tree_kb"]), ratio=ratio("tree_kb") if n == large else None,
              ratio_of=f"× {small:,}" if n == large else "",
              note="max over run, workers and `cat`")
    R.target(wid, f"peak RSS of the run process, {large:,} ÷ {small:,} items", ratio("run_kb"),
             "<=", 1.1)
    R.target(wid, f"peak RSS of a worker, {large:,} ÷ {small:,} items", ratio("worker_kb"),
             "<=", 1.1)
    R.extra["rss"] = {str(k): v for k, v in data.items()}
    R.plot["rss"] = {"small": small, "large": large, "s": s, "l": lg}


# -- workloads 7 and 8: sleep-bound speed-up


def scale_inputs(ctx):
    if getattr(ctx, "scale_inp", None):
        return
    n = SIZES["scale_items"]
    ctx.scale_inp = os.path.join(ctx.tmp, "scale.txt")
    write_lines(ctx.scale_inp, seed_lines(n))
    ctx.scale_ref = os.path.join(ctx.tmp, "scale.ref")
    r = run_cmd([ctx.tok, "--ms", "0"], stdin=ctx.scale_inp, stdout=ctx.scale_ref)
    if r.rc != 0:
        raise RuntimeError("tokenize failed")
    ctx.scale_seq = None


def scale_check(ctx):
    return lambda r, o: None if same_file(o, ctx.scale_ref) else "output differs from tokenize"


def sequential_scale(ctx, wid):
    scale_inputs(ctx)
    if ctx.scale_seq is None:
        ms = SIZES["scale_ms"]
        t = timed_series(wid, [{"name": "seq", "cmd": [ctx.tok, "--ms", str(ms)],
                                "stdin": ctx.scale_inp,
                                "stdout": os.path.join(ctx.tmp, "seq.out"),
                                "check": scale_check(ctx)}], warmup=False)
        ctx.scale_seq = t["seq"]
    return ctx.scale_seq


def callgrind_totals(path):
    """The `totals:` line of a callgrind output file (instructions)."""
    with open(path) as f:
        for line in f:
            if line.startswith("totals:"):
                return int(line.split()[1])
    return None


def w9_callgrind(ctx):
    """Instructions per item, counted by valgrind's callgrind (the machine's
    noise does not touch it): `run -j 1 --pipe -- cat` on two input sizes,
    the difference divided by the difference in items (start-up cancels
    out), for the run process (ventilator + sink) and the forked worker.
    `cat` itself is not counted (valgrind does not follow exec)."""
    wid = 9
    if not shutil.which("valgrind"):
        R.skipped.append({"id": wid, "why": "valgrind is not installed"})
        log(f"#{wid} skipped: valgrind is not installed")
        return
    small, large = SIZES["cg_small"], SIZES["cg_large"]
    log(f"#{wid} instructions per item (callgrind), --pipe cat, {small:,} vs {large:,} lines")
    totals = {}
    for n in (small, large):
        d = tempfile.mkdtemp(prefix=f"cg{n}-", dir=ctx.tmp)
        inp, out = os.path.join(d, "in.txt"), os.path.join(d, "out.txt")
        write_seq(inp, n)
        #  Slow under valgrind: heartbeats must not declare anyone lost.
        r = run_cmd(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + d + "/cg.%p.out",
                     ctx.tf, "run", "-j", "1", "--pipe", "--heartbeat", "2",
                     "--heartbeat-timeout", "60", "-i", inp, "--", "cat"], stdout=out)
        if r.rc != 0 or not same_file(out, inp):
            R.fail(wid, f"{n} lines", f"exit status {r.rc} or output differs: {r.stderr[-300:]}")
            return
        files = [os.path.join(d, f) for f in os.listdir(d) if f.startswith("cg.")]
        ir = sorted((callgrind_totals(f) or 0 for f in files), reverse=True)
        if len(ir) != 2:
            R.fail(wid, f"{n} lines", f"expected 2 processes under callgrind, got {len(ir)}")
            return
        #  The run process (ventilator + sink) executes more than the worker.
        totals[n] = {"run": ir[0], "worker": ir[1]}
    title = f"instructions per item (callgrind), run -j 1 --pipe -- cat, {small:,} vs {large:,} lines"
    per = {}
    for role, what in (("run", "run process (ventilator + sink)"), ("worker", "worker process")):
        per[role] = (totals[large][role] - totals[small][role]) / (large - small)
        R.row(wid, title, what, value=per[role], metric=f"{per[role]:.0f} instructions/item",
              note=f"{totals[small][role]:,} and {totals[large][role]:,} instructions in all")
    R.extra["callgrind"] = {"sizes": [small, large], "totals": totals, "per_item": per}


def w7_scaling(ctx):
    wid = 7
    n, ms = SIZES["scale_items"], SIZES["scale_ms"]
    log(f"#7 speed-up vs workers: {n} items × {ms} ms, --pipe tokenize")
    seq_t = sequential_scale(ctx, wid)
    title = f"speed-up: {n} items × {ms} ms (tokenize --ms {ms}), --pipe"
    if not seq_t:
        R.row(wid, title, "sequential", status="WRONG/FAILED")
        return
    seq = median(seq_t)
    R.row(wid, title, f"sequential: tokenize --ms {ms} < items", times=seq_t, ratio=1.0,
          ratio_of="(reference)", note=f"ideal on N workers: {fmt_s(seq)} ÷ N")
    stats = os.path.join(ctx.tmp, "w7_stats.json")
    contenders = []
    for w in SIZES["scale_workers"]:
        contenders.append({"name": str(w), "cmd": [ctx.tf, "run", "-j", str(w), "--pipe",
                                                   "--stats", stats, "--", ctx.tok, "--ms",
                                                   str(ms)],
                           "stdin": ctx.scale_inp, "stdout": os.path.join(ctx.tmp, "w7.out"),
                           "check": lambda r, o: scale_check(ctx)(r, o) or
                           check_stats(stats, n)(r, o)})
    t = timed_series(wid, contenders, warmup=False)
    pts = []
    effs = []
    for w in SIZES["scale_workers"]:
        tt = t[str(w)]
        if not tt:
            R.row(wid, title, f"taskfarm run -j {w} --pipe", status="WRONG/FAILED")
            continue
        m = median(tt)
        sp = seq / m
        eff = sp / w
        effs.append((w, eff))
        pts.append({"n": w, "median_s": m, "speedup": sp, "efficiency": eff})
        R.row(wid, title, f"taskfarm run -j {w} --pipe", times=tt, value=eff,
              metric=f"speed-up {sp:.2f}, efficiency {eff:.2f}", ratio=eff,
              ratio_of="efficiency", target="≥ 0.9", met=eff >= 0.9)
    worst = min(effs, key=lambda x: x[1]) if effs else None
    R.target(wid, f"sleep-bound efficiency (speed-up ÷ N), worst of N = 1…"
             f"{SIZES['scale_workers'][-1]}" + (f" (N={worst[0]})" if worst else ""),
             worst[1] if worst else None, ">=", 0.9)
    R.extra["scaling"] = {"items": n, "ms": ms, "sequential_s": seq, "points": pts}
    R.plot["scaling"] = pts


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def distributed_once(ctx, wrap_h1, wrap_workers, vent_ep, sink_ep, slots, out, stats):
    """Start the workers (each `wrap + taskfarm worker --once`), then sink and
    ventilator; time from the start of sink+ventilator until both exit."""
    ms = SIZES["scale_ms"]
    workers = []
    try:
        return _distributed_run(ctx, wrap_h1, wrap_workers, vent_ep, sink_ep, slots, out, stats,
                                ms, workers)
    finally:
        for p in workers:
            if p.poll() is None:
                kill_tree(p.pid)
                p.wait()


def _distributed_run(ctx, wrap_h1, wrap_workers, vent_ep, sink_ep, slots, out, stats, ms,
                     workers):
    for wrap in wrap_workers:
        workers.append(subprocess.Popen(
            wrap + [ctx.tf, "worker", "--connect", vent_ep, "--once", "-j", str(slots), "--pipe",
                    "-q", "--", ctx.tok, "--ms", str(ms)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True))
    time.sleep(0.3)   # workers are up and (re)connecting before the job starts
    t0 = time.perf_counter()
    sink = subprocess.Popen(wrap_h1 + [ctx.tf, "sink", "--bind", sink_ep, "--ventilator",
                                       vent_ep, "-o", out, "-q"],
                            stderr=subprocess.PIPE, start_new_session=True)
    workers.append(sink)    # so that an interruption kills it too
    vent = subprocess.Popen(wrap_h1 + [ctx.tf, "ventilator", "--bind", vent_ep, "-i",
                                       ctx.scale_inp, "--stats", stats, "-q"],
                            stderr=subprocess.PIPE, start_new_session=True)
    workers.append(vent)
    why = None
    try:
        vent.communicate(timeout=120)
        sink.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        why = "timed out"
    t1 = time.perf_counter()
    for p in workers[:-2]:
        try:
            p.communicate(timeout=15)
            if p.returncode != 0 and not why:
                why = f"a worker exited with status {p.returncode}"
        except subprocess.TimeoutExpired:
            why = why or "a --once worker did not exit after the job"
    for p in workers:
        if p.poll() is None:
            kill_tree(p.pid)
            p.wait()
    if not why and (vent.returncode != 0 or sink.returncode != 0):
        why = f"ventilator exit {vent.returncode}, sink exit {sink.returncode}"
    if not why and not same_file(out, ctx.scale_ref):
        why = "output differs from tokenize"
    if not why:
        why = check_stats(stats, SIZES["scale_items"])(None, out)
    return t1 - t0, why


def distributed_series(ctx, wid, name, wrap_h1, wrap_workers, vent_ep, sink_ep, slots):
    out = os.path.join(ctx.tmp, f"w8_{name}.out")
    stats = os.path.join(ctx.tmp, f"w8_{name}.json")
    times = []
    for rep in range(RUNS):
        secs, why = distributed_once(ctx, wrap_h1, wrap_workers, vent_ep, sink_ep, slots, out,
                                     stats)
        if why:
            R.fail(wid, name, f"run {rep + 1}: {why}")
            return None, read_json(stats)
        times.append(secs)
    return times, read_json(stats)


class Netns:
    """Three namespaces tfb-…-h1/h2/h3 on one bridge (in h1), 198.18.0.1-3/24.
    Nothing here touches the host's own interfaces or routes."""

    def __init__(self, prefix):
        self.names = [f"{prefix}h{i}" for i in (1, 2, 3)]
        self.made = []

    def ip(self, *args):
        r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
        if r.returncode != 0:
            raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def up(self):
        h1, h2, h3 = self.names
        for ns in self.names:
            self.ip("netns", "add", ns)
            self.made.append(ns)
            self.ip("-n", ns, "link", "set", "lo", "up")
        self.ip("-n", h1, "link", "add", "br0", "type", "bridge")
        self.ip("-n", h1, "addr", "add", "198.18.0.1/24", "dev", "br0")
        self.ip("-n", h1, "link", "set", "br0", "up")
        for k, ns in ((2, h2), (3, h3)):
            self.ip("-n", h1, "link", "add", f"vh{k}", "type", "veth", "peer", "name", "eth0",
                    "netns", ns)
            self.ip("-n", h1, "link", "set", f"vh{k}", "master", "br0")
            self.ip("-n", h1, "link", "set", f"vh{k}", "up")
            self.ip("-n", ns, "addr", "add", f"198.18.0.{k}/24", "dev", "eth0")
            self.ip("-n", ns, "link", "set", "eth0", "up")
        # reachability check (TCP, inside the namespaces only)
        probe = ("import socket,sys\n"
                 "for i in range(50):\n"
                 "  try:\n"
                 "    socket.create_connection(('198.18.0.1',5599),0.2).close(); sys.exit(0)\n"
                 "  except OSError:\n"
                 "    import time; time.sleep(0.05)\n"
                 "sys.exit(1)\n")
        srv = subprocess.Popen(["ip", "netns", "exec", h1, sys.executable, "-c",
                                "import socket\ns=socket.socket()\n"
                                "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                                "s.bind(('198.18.0.1',5599)); s.listen(4)\n"
                                "for _ in range(2): s.accept()[0].close()\n"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for ns in (h2, h3):
                r = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", probe],
                                   timeout=20)
                if r.returncode != 0:
                    raise RuntimeError(f"{ns} cannot reach 198.18.0.1 over TCP")
        finally:
            try:
                srv.wait(timeout=5)
            except subprocess.TimeoutExpired:
                srv.kill()
                srv.wait()

    def down(self):
        for ns in reversed(self.made):
            try:
                pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                                      text=True, timeout=10).stdout.split()
                for pid in pids:
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except (ProcessLookupError, ValueError):
                        pass
                subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
            except Exception as e:  # noqa: BLE001 - best effort, reported
                print(f"bench: could not delete netns {ns}: {e}", file=sys.stderr)
        self.made = []


def w8_netns(ctx):
    wid = 8
    n, ms = SIZES["scale_items"], SIZES["scale_ms"]
    log(f"#8 across hosts: {n} items × {ms} ms, 2 workers × 2 slots, separate components")
    seq_t = sequential_scale(ctx, wid)
    title = f"across hosts: {n} items × {ms} ms, ventilator+sink on one host, 2 workers × -j 2"
    if not seq_t:
        R.row(wid, title, "sequential", status="WRONG/FAILED")
        return
    seq = median(seq_t)
    ideal = seq / 4

    def report(variant, times, stats, note=""):
        if not times:
            R.row(wid, title, variant, status="WRONG/FAILED", note=note)
            return None
        m = median(times)
        sp = seq / m
        eff = sp / 4
        per = [w.get("done") for w in (stats or {}).get("workers", [])]
        R.row(wid, title, variant, times=times, value=eff,
              metric=f"speed-up {sp:.2f} on 4 slots, efficiency {eff:.2f}", ratio=m / ideal,
              ratio_of="× ideal (seq ÷ 4)", target="efficiency ≥ 0.9", met=eff >= 0.9,
              note=(f"items per worker host (last run, --stats): {per}" if per else "") +
              (f"; {note}" if note else ""))
        return {"median_s": m, "speedup": sp, "efficiency": eff}

    # loopback reference: the same components in this namespace, over tcp://127.0.0.1
    vp, sp_ = free_port(), free_port()
    lt, lst = distributed_series(ctx, wid, "loopback", [], [[], []],
                                 f"tcp://127.0.0.1:{vp}", f"tcp://127.0.0.1:{sp_}", 2)
    lo = report("loopback (one host): ventilator + sink + 2 × `worker -j 2`, tcp://127.0.0.1",
                lt, lst)
    remote = None
    skip = None
    if not NETNS_WANTED:
        skip = "BENCH_NETNS=0"
    elif os.geteuid() != 0:
        skip = "not root (network namespaces need root)"
    elif not shutil.which("ip"):
        skip = "no `ip` (iproute2)"
    if skip is None:
        ns = Netns(NETNS_PREFIX)
        try:
            ns.up()
            h1, h2, h3 = ns.names
            rt, rst = distributed_series(
                ctx, wid, "netns", ["ip", "netns", "exec", h1],
                [["ip", "netns", "exec", h2], ["ip", "netns", "exec", h3]],
                "tcp://198.18.0.1:5555", "tcp://198.18.0.1:5556", 2)
            remote = report(f"3 netns hosts ({h1}: ventilator+sink @198.18.0.1; "
                            f"{h2.rsplit('-', 1)[1]}, {h3.rsplit('-', 1)[1]}: `worker -j 2`), TCP",
                            rt, rst)
        except (RuntimeError, OSError, subprocess.SubprocessError) as e:
            skip = f"network namespaces unavailable: {e}"
        finally:
            ns.down()
    if skip:
        log(f"  SKIPPED: {skip}")
        R.skipped.append({"id": wid, "why": skip})
        R.row(wid, title, "3 network-namespace hosts", status="SKIPPED", note=skip)
    if remote:
        R.target(wid, "across 3 netns hosts, 2 × 2 slots: efficiency (speed-up ÷ 4)",
                 remote["efficiency"], ">=", 0.9)
    else:
        R.target(wid, "across 3 netns hosts, 2 × 2 slots: efficiency (speed-up ÷ 4)", None,
                 ">=", 0.9, note=f"SKIPPED: {skip}" if skip else "failed")
    R.plot["remote"] = {"netns": remote, "loopback": lo}
    R.extra["distributed"] = {"sequential_s": seq, "loopback": lo, "netns": remote,
                              "skipped": skip}


# ---------------------------------------------------------------- output


def fmt_ratio(r):
    if r is None:
        return "–"
    return f"{r:.3f}" if r < 10 else f"{r:.1f}"


def write_outputs(out, mach, cfg):
    os.makedirs(out, exist_ok=True)
    duration = time.time() - T_START
    mach["loadavg_end"] = os.getloadavg()
    doc = {"machine": mach, "config": cfg, "duration_s": round(duration, 1),
           "rows": R.rows, "targets": R.targets, "correctness_failures": R.failures,
           "skipped": R.skipped, "raw": R.extra}
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(doc, f, indent=1, default=str)

    md = []
    md.append("# taskfarm benchmark results\n")
    md.append(f"Run {time.strftime('%Y-%m-%d %H:%M:%S %Z', time.localtime(T_START))}, "
              f"{duration / 60:.1f} min, {cfg['runs']} runs per measurement (median shown"
              f"{', min–max in brackets' if cfg['runs'] > 1 else ''})"
              f"{', QUICK mode (smaller sizes)' if cfg['quick'] else ''}.\n")
    md.append("**Machine:** " + f"{mach['nproc']} CPUs ({mach['cpu_model']}), "
              f"{mach['memory_gib']} GiB, Linux {mach['kernel']}, {mach['os']}; "
              f"load average at start {mach['loadavg_start'][0]:.2f}, at end "
              f"{mach['loadavg_end'][0]:.2f}.  \n"
              f"**Versions:** {mach['taskfarm']} @ {mach['taskfarm_commit']}; "
              f"{mach['parallel']}; {mach['xargs']}; Python {mach['python']}; "
              f"libzmq {mach['libzmq']}; {mach['cc']}.\n")
    busy = 0.5 * (mach["nproc"] or 1)
    if mach["loadavg_start"][0] > busy or mach["loadavg_end"][0] > busy:
        md.append("> **Note:** the machine was busy with other work during this run (load "
                  "average above half the CPUs), so CPU-bound rows are noisy; rows whose "
                  "max/min run time exceeds 1.5 say so in their notes.\n")
    if R.failures:
        md.append("**WRONG OUTPUT / FAILED runs (their times are void):**\n")
        for f in R.failures:
            md.append(f"- #{f['id']} {f['variant']}: {f['why']}")
        md.append("")
    md.append("## Targets\n")
    md.append("| # | target | measured | goal | met |")
    md.append("|---|---|---|---|---|")
    for t in R.targets:
        met = "–" if t["met"] is None else ("✅ yes" if t["met"] else "❌ no")
        note = f" ({t['note']})" if t["note"] else ""
        md.append(f"| {t['id']} | {t['what']}{note} | {fmt_ratio(t['value'])} | "
                  f"{'≤' if t['op'] == '<=' else '≥'} {t['goal']} | {met} |")
    md.append("")
    md.append("## All measurements\n")
    md.append("| # | workload | variant | median time | (min–max) | rate / value | ratio | "
              "target | met | notes |")
    md.append("|---|---|---|---|---|---|---|---|---|---|")
    last = None
    for r in R.rows:
        wl = r["workload"] if (r["id"], r["workload"]) != last else "〃"
        last = (r["id"], r["workload"])
        rng = (f"({fmt_s(r['min_s'])}–{fmt_s(r['max_s'])})"
               if r["runs_s"] and len(r["runs_s"]) > 1 else "")
        ratio = f"{fmt_ratio(r['ratio'])} {r['ratio_of']}" if r["ratio"] is not None else ""
        met = "" if r["met"] is None else ("✅" if r["met"] else "❌")
        note = r["note"]
        if r["status"] != "ok":
            note = f"**{r['status']}** {note}"
        md.append(f"| {r['id']} | {wl} | {r['variant']} | {fmt_s(r['median_s'])} | {rng} | "
                  f"{r['metric']} | {ratio} | {r['target']} | {met} | {note} |")
    md.append("")
    md.append("## Plots\n")
    for name, what in (("throughput", "Throughput: taskfarm and GNU parallel (--pipe cat) vs "
                        "raw ZeroMQ"), ("scaling", "Speed-up and efficiency vs workers"),
                       ("ratios", "Every target: measured vs goal")):
        md.append(f"![{what}]({name}.png)\n")
    md.append("See bench/README.md for what each row means.\n")
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(md))
    return doc


def write_plot_data(out):
    q = lambda s: '"' + s.replace('"', "'") + '"'  # noqa: E731
    # throughput.dat: idx "label" value(M/s) color
    rows = []
    zmq = R.plot.get("zmq", {})
    for key, label in (("hop ipc", "ZeroMQ hop\\nipc"), ("hop tcp", "ZeroMQ hop\\ntcp"),
                       ("relay ipc", "ZeroMQ relay\\nipc"), ("relay tcp", "ZeroMQ relay\\ntcp")):
        if zmq.get(key):
            rows.append((label, zmq[key] / 1e6, "0x4477aa"))
    pipe = R.plot.get("pipe", {})
    if pipe.get("taskfarm"):
        rows.append(("taskfarm\\n--pipe cat -j2", pipe["taskfarm"] / 1e6, "0xee6677"))
    if pipe.get("parallel"):
        rows.append(("parallel\\n--pipe -k cat -j2", pipe["parallel"] / 1e6, "0x999999"))
    with open(os.path.join(out, "throughput.dat"), "w") as f:
        f.write("# idx label Mmsgs_or_items_per_s color\n")
        for i, (label, v, c) in enumerate(rows):
            f.write(f"{i} {q(label)} {v:.4f} {c}\n")
    # scaling.dat: N speedup efficiency
    with open(os.path.join(out, "scaling.dat"), "w") as f:
        f.write("# N speedup efficiency median_s\n")
        for p in R.plot.get("scaling", []):
            f.write(f"{p['n']} {p['speedup']:.4f} {p['efficiency']:.4f} {p['median_s']:.4f}\n")
    rem = R.plot.get("remote", {})
    for key in ("loopback", "netns"):
        with open(os.path.join(out, f"scaling_{key}.dat"), "w") as f:
            f.write("# N speedup efficiency\n")
            if rem.get(key):
                f.write(f"4 {rem[key]['speedup']:.4f} {rem[key]['efficiency']:.4f}\n")
    # ratios.dat: idx "label" measured goal color
    with open(os.path.join(out, "ratios.dat"), "w") as f:
        f.write("# idx label measured goal color\n")
        i = 0
        for t in R.targets:
            if t["value"] is None:
                continue
            label = ratio_label(t)
            color = "0x228833" if t["met"] else "0xcc3311"
            f.write(f"{i} {q(label)} {t['value']:.4f} {t['goal']} {color}\n")
            i += 1


def ratio_label(t):
    w = t["what"]
    op = "≤" if t["op"] == "<=" else "≥"
    names = [
        ("taskfarm time ÷ parallel", "#2 pipe cat\\n÷ parallel"),
        ("÷ xargs", "#3 exec true\\n÷ xargs"),
        ("÷ parallel -j4", "#3 exec true\\n÷ parallel"),
        ("÷ sequential", "#4 seed\\n÷ sequential"),
        ("--pipe makespan", "#5 skew --pipe\\n÷ ideal"),
        ("exec makespan", "#5 skew exec\\n÷ ideal"),
        ("run process", "#6 RSS run\\n2M ÷ 200k"),
        ("of a worker", "#6 RSS worker\\n2M ÷ 200k"),
        ("efficiency (speed-up ÷ N)", "#7 worst\\nefficiency"),
        ("netns", "#8 netns\\nefficiency"),
    ]
    for key, label in names:
        if key in w:
            if QUICK and "2M" in label:
                label = label.replace("2M ÷ 200k", "large ÷ small")
            return f"{label}\\ngoal {op} {t['goal']}"
    return f"#{t['id']}\\ngoal {op} {t['goal']}"


# ---------------------------------------------------------------- main


class Ctx:
    pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--tools", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    def on_signal(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    ctx = Ctx()
    ctx.build = os.path.abspath(a.build)
    ctx.tools = os.path.abspath(a.tools)
    ctx.benchdir = os.path.dirname(os.path.abspath(__file__))
    ctx.tf = os.path.join(ctx.build, "taskfarm")
    ctx.tok = os.path.join(ctx.build, "examples", "tokenize")
    out = os.path.abspath(a.out)
    mach = machine(ctx.build)
    cfg = {"runs": RUNS, "quick": QUICK, "only": sorted(ONLY), "sizes": SIZES}

    print("== machine ==")
    for k, v in mach.items():
        print(f"  {k:16} {v}")
    print(f"== config: {RUNS} runs per measurement{', QUICK' if QUICK else ''}"
          f"{', only ' + ','.join(sorted(ONLY)) if ONLY else ''} ==", flush=True)
    if mach["loadavg_start"][0] > 0.5 * (os.cpu_count() or 1):
        print(f"  note: the machine is busy (load average {mach['loadavg_start'][0]:.2f}); "
              "timings will be noisy", flush=True)

    workloads = [(1, w1_zmq), (2, w2_pipe), (3, w3_exec), (4, w4_seed), (5, w5_skew),
                 (6, w6_rss), (7, w7_scaling), (8, w8_netns), (9, w9_callgrind)]
    with tempfile.TemporaryDirectory(prefix="taskfarm-bench.") as tmp:
        ctx.tmp = tmp
        try:
            for wid, fn in workloads:
                if wanted(wid):
                    try:
                        fn(ctx)
                    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                        R.fail(wid, "workload", f"crashed: {e}")
        finally:
            doc = write_outputs(out, mach, cfg)
            write_plot_data(out)
    print_summary(doc)
    return 1 if R.failures else 0


def print_summary(doc):
    print("\n== results ==")
    for r in doc["rows"]:
        ratio = f"{fmt_ratio(r['ratio'])} {r['ratio_of']}" if r["ratio"] is not None else ""
        met = "" if r["met"] is None else ("MET" if r["met"] else "MISSED")
        status = "" if r["status"] == "ok" else r["status"]
        print(f"  #{r['id']} {r['variant'][:62]:62} {fmt_s(r['median_s']):>9} "
              f"{r['metric'][:40]:40} {ratio:28} {r['target']:>8} {met:6} {status}"
              f"{'  ' + r['note'] if r['status'] != 'ok' else ''}")
    print("\n== targets ==")
    for t in doc["targets"]:
        met = "–" if t["met"] is None else ("MET" if t["met"] else "MISSED")
        print(f"  #{t['id']} {t['what'][:78]:78} {fmt_ratio(t['value']):>7} "
              f"{'<=' if t['op'] == '<=' else '>='} {t['goal']:<4} {met}"
              f"{'  ' + t['note'] if t['note'] else ''}")
    if doc["correctness_failures"]:
        print("\n== WRONG OUTPUT / FAILED (void) ==")
        for f in doc["correctness_failures"]:
            print(f"  #{f['id']} {f['variant']}: {f['why']}")
    for s in doc["skipped"]:
        print(f"  SKIPPED #{s['id']}: {s['why']}")


if __name__ == "__main__":
    sys.exit(main())
