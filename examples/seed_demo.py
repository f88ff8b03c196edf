#!/usr/bin/env python3
"""The seed's example (pyblaze's Vectorizer headline), timed.

100 items x 10 ms of work (examples/tokenize), run sequentially and on 4
taskfarm workers; prints both times and their ratio (best of 3 runs each).
Usage: seed_demo.py BUILD_DIR
"""
import os
import subprocess
import sys
import tempfile
import time

build = sys.argv[1] if len(sys.argv) > 1 else "build"
tf = os.path.join(build, "taskfarm")
tok = os.path.join(build, "examples", "tokenize")
words = "the quick brown fox jumps over the lazy dog while ZeroMQ moves messages".split()
lines = [" ".join(words[(i + k) % len(words)].capitalize() for k in range(8)) + f", item {i}!"
         for i in range(100)]

with tempfile.TemporaryDirectory() as tmp:
    inp = os.path.join(tmp, "items.txt")
    with open(inp, "w") as f:
        f.write("\n".join(lines) + "\n")

    def best(cmd, stdin_path=None):
        times, out = [], None
        for _ in range(3):
            with open(stdin_path or os.devnull, "rb") as fin:
                t0 = time.perf_counter()
                r = subprocess.run(cmd, stdin=fin, stdout=subprocess.PIPE, check=True)
                times.append(time.perf_counter() - t0)
            out = r.stdout
        return min(times), out

    seq, ref = best([tok], inp)
    par, out = best([tf, "run", "-j", "4", "--pipe", "-i", inp, "--", tok])
    exe, out2 = best([tf, "run", "-j", "4", "-i", inp, "--", tok, "{}"])
    if out != ref or out2 != ref:
        sys.exit("seed demo: taskfarm output differs from the sequential run!")
    print("taskfarm seed demo: 100 items x 10 ms of work (examples/tokenize), best of 3")
    print(f"  sequential                          {seq * 1000:7.1f} ms")
    print(f"  taskfarm run -j 4 --pipe            {par * 1000:7.1f} ms   ratio {par / seq:.3f}"
          "   (pyblaze Vectorizer: 280 ms, 0.277)")
    print(f"  taskfarm run -j 4 (a process/item)  {exe * 1000:7.1f} ms   ratio {exe / seq:.3f}")
