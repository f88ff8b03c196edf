#!/usr/bin/env python3
"""The seed workload in plain Python: multiprocessing.Pool(N).map over the
items, each call sleeping MS milliseconds and then tokenizing the line the
way examples/tokenize does (ASCII letters and digits, lower-cased, joined by
one space). Results go to stdout in input order, so they can be compared
byte for byte with `tokenize < items`.

Usage: pool_tokenize.py ITEMS_FILE [WORKERS [MS]]
Prints the time spent in Pool(...) + map (without interpreter start-up) on
stderr as `map_ms=...`.
"""
import multiprocessing
import re
import sys
import time

TOKEN = re.compile(rb"[A-Za-z0-9]+")
DELAY = 0.01


def work(line):
    time.sleep(DELAY)
    return b" ".join(t.lower() for t in TOKEN.findall(line))


def init(delay):
    global DELAY
    DELAY = delay


def main():
    path = sys.argv[1]
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    delay = (float(sys.argv[3]) if len(sys.argv) > 3 else 10.0) / 1000.0
    with open(path, "rb") as f:
        items = [line.rstrip(b"\n") for line in f]
    t0 = time.perf_counter()
    with multiprocessing.Pool(workers, initializer=init, initargs=(delay,)) as pool:
        results = pool.map(work, items)
    t1 = time.perf_counter()
    out = sys.stdout.buffer
    for r in results:
        out.write(r + b"\n")
    out.flush()
    print(f"map_ms={(t1 - t0) * 1000:.1f}", file=sys.stderr)


if __name__ == "__main__":
    main()
