"""tfharness -- shared helpers for the taskfarm integration tests.

Stdlib only. Every process a test starts goes through a ProcessRegistry:
it is started in its own session (so its process group id is its pid) and
the whole group is SIGKILLed in tearDown and, as a last resort, at exit.
Every wait is bounded by a timeout; nothing here can block forever.

Environment:
  TASKFARM   path of the binary (default: ../../build/taskfarm from here)
  TF_SEED    seed for the random inputs (default: random; printed on failure)
"""

import atexit
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))

#  Hard limits (seconds) for single commands; generous for a noisy 2-core box.
SHORT = 10
MEDIUM = 60
LONG = 120


def binary():
    """Path of the taskfarm binary under test (absolute)."""
    path = os.environ.get("TASKFARM") or os.path.join(HERE, "..", "..", "build", "taskfarm")
    return os.path.abspath(path)


def require_binary():
    path = binary()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise RuntimeError("taskfarm binary not found at %s (set TASKFARM)" % path)
    return path


def child_env(extra=None):
    """A deterministic environment for the binary and the commands it runs:
    C locale (tr/rev/sed/cut work on bytes), Python in UTF-8 and byte-safe."""
    env = dict(os.environ)
    env["LC_ALL"] = "C"
    env.pop("LANGUAGE", None)
    env["PYTHONIOENCODING"] = "utf-8:surrogateescape"
    env["PYTHONUTF8"] = "1"
    if extra:
        env.update(extra)
    return env


# ---------------------------------------------------------------------------
# Processes


class ProcessRegistry:
    """Remembers every process started; kill_all() SIGKILLs each group by id."""

    def __init__(self):
        self.procs = []

    def start(self, args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
              stderr=subprocess.DEVNULL, env=None, cwd=None):
        p = subprocess.Popen(args, stdin=stdin, stdout=stdout, stderr=stderr,
                             env=env if env is not None else child_env(), cwd=cwd,
                             start_new_session=True)
        self.procs.append(p)
        return p

    def kill(self, p, sig=signal.SIGKILL):
        """Signal the process group of p (its pgid is its pid)."""
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, sig)
        else:
            #  The leader is gone; children of its group may linger.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, sig)

    def kill_all(self):
        sids = {p.pid for p in self.procs}
        for p in self.procs:
            self.kill(p, signal.SIGKILL)
        #  Commands that a worker put in process groups of their own are still
        #  in the session of the process we started: kill those by pid too.
        for pid in session_members(sids):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        for p in self.procs:
            with contextlib.suppress(Exception):
                p.wait(timeout=5)
            for f in (p.stdin, p.stdout, p.stderr):
                if f:
                    with contextlib.suppress(Exception):
                        f.close()
        self.procs = []


def proc_table():
    """{pid: (state, ppid, pgrp, sid)} of every live process (from /proc)."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 3:
            table[int(name)] = (fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[3]))
    return table


def session_members(sids):
    """Pids of live processes whose session id is in sids."""
    if not sids:
        return []
    me = os.getpid()
    return [pid for pid, (_, _, _, sid) in proc_table().items() if sid in sids and pid != me]


def children_of(pid):
    """Pids of the live (not zombie) direct children of pid."""
    return [c for c, (state, ppid, _, _) in proc_table().items() if ppid == pid and state != "Z"]


_GLOBAL = ProcessRegistry()
atexit.register(_GLOBAL.kill_all)


def run_cmd(args, input=None, timeout=SHORT, env=None, cwd=None, registry=None):
    """Run args with a hard timeout. Returns (rc, stdout, stderr) as bytes.
    On timeout the process group is killed and AssertionError is raised."""
    reg = registry or _GLOBAL
    p = reg.start(args, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd)
    try:
        out, err = p.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        #  SIGTERM first, so that the binary may clean up (its /tmp dir),
        #  then SIGKILL for the whole group.
        reg.kill(p, signal.SIGTERM)
        wait_proc(p, 2)
        reg.kill(p)
        try:
            out, err = p.communicate(timeout=5)
        except Exception:
            out, err = b"", b""
        raise AssertionError("timed out after %ss: %s\nstderr: %s" % (
            timeout, describe(args), (err or b"")[-2000:].decode("utf-8", "replace")))
    return p.returncode, out, err


def wait_proc(p, timeout):
    """Wait for p; None if it is still running after timeout."""
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def wait_for(pred, timeout, interval=0.02):
    """Poll pred() until it is true or timeout passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


def describe(args):
    s = " ".join(a if isinstance(a, str) else repr(a) for a in args)
    return s if len(s) < 300 else s[:300] + "..."


def free_port():
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tcp_endpoint():
    return "tcp://127.0.0.1:%d" % free_port()


def connections(endpoint):
    """How many connections are established to a bound endpoint right now
    (from /proc/net; tcp://127.0.0.1:PORT or ipc://PATH). Lets a test wait
    until its workers are connected instead of sleeping."""
    if endpoint.startswith("ipc://"):
        path = endpoint[len("ipc://"):]
        n = 0
        with open("/proc/net/unix") as f:
            next(f)
            for line in f:
                parts = line.split()
                #  Accepted sockets show the bound path with state 03 (connected).
                if len(parts) >= 8 and parts[7] == path and parts[5] == "03":
                    n += 1
        return n
    port = int(endpoint.rsplit(":", 1)[1])
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    local, remote, state = parts[1], parts[2], parts[3]
                    #  Client ends: remote port is ours, state 01 (ESTABLISHED).
                    if (state == "01" and int(remote.rsplit(":", 1)[1], 16) == port
                            and int(local.rsplit(":", 1)[1], 16) != port):
                        n += 1
        except OSError:
            pass
    return n


def wait_connections(endpoint, n, timeout=20):
    """Wait until at least n connections to endpoint exist; returns the count."""
    return wait_for(lambda: connections(endpoint) >= n, timeout) and connections(endpoint)


def file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


# ---------------------------------------------------------------------------
# Random inputs (seeded)

UTF8_BITS = ["é", "日本", "😀", "ß", "Ωmega", "ñ", "🚀🚀", "中文", "Ä", "€"]
ASCII_BITS = ["hello", "world", "a", "b", "The quick brown fox", "abc def",
              "'single'", '"double"', "back\\slash", "tab\there", "{}", "--x", "$HOME",
              "*", "semi;colon", "pipe|bar", "100%", "ZZ top"]

ONE_MIB = 1 << 20


def _text(rng, maxlen):
    parts = []
    n = 0
    target = rng.randint(1, maxlen)
    while n < target:
        r = rng.random()
        if r < 0.55:
            piece = "".join(chr(rng.randint(0x20, 0x7e)) for _ in range(rng.randint(1, 12)))
        elif r < 0.8:
            piece = rng.choice(ASCII_BITS)
        else:
            piece = rng.choice(UTF8_BITS)
        parts.append(piece)
        n += len(piece)
    return "".join(parts)


def gen_items(rng, n=10000, big=True, long_lines=True, empty=True):
    """n text items (bytes, no newline, no NUL): ASCII, UTF-8 (é, 日本, emoji),
    empty lines, a few long lines and (big) one 1 MiB line."""
    items = []
    for _ in range(n):
        r = rng.random()
        if empty and r < 0.05:
            items.append(b"")
        elif long_lines and r < 0.06:
            items.append(_text(rng, rng.randint(2000, 70000)).encode())
        else:
            items.append(_text(rng, 60).encode())
    if big and n:
        line = (("x" * 1000 + "é日本😀") * 1100).encode()[:ONE_MIB]
        #  Cut at a character boundary so the line stays valid UTF-8.
        line = line.decode("utf-8", "ignore").encode()
        items[rng.randrange(n)] = line
    if items and not items[-1]:
        #  An empty last item would make "no final newline" meaningless.
        items[-1] = b"last"
    return items


def gen_short_items(rng, n):
    """n short ASCII items (words and numbers), none empty."""
    return [("%d-%s" % (i, "".join(chr(rng.randint(0x61, 0x7a)) for _ in range(rng.randint(1, 8)))))
            .encode() for i in range(n)]


def gen_junk(rng, n=2000, maxlen=200):
    """Binary junk items: random bytes incl. NUL, CR, 0xff, but no '\\n'."""
    alphabet = bytes(b for b in range(256) if b != 0x0a)
    special = b"\x00\r\xff\x7f\x1b\x03\x04\x11\x13\x1a\\"
    items = []
    for _ in range(n):
        k = rng.randint(0, maxlen)
        buf = bytearray()
        for _ in range(k):
            if rng.random() < 0.2:
                buf.append(rng.choice(special))
            else:
                buf.append(rng.choice(alphabet))
        items.append(bytes(buf))
    if items and not items[-1]:
        items[-1] = b"last"
    return items


def join_lines(items, trailing=True, sep=b"\n"):
    """The input stream for items: sep-terminated, the last one optionally not."""
    if not items:
        return b""
    if not trailing and not items[-1]:
        raise ValueError("an empty last item needs its terminator to exist")
    data = sep.join(items)
    return data + sep if trailing else data


def pipe_reference(items, fn):
    """Pipe mode: every item gives one line, fn(item) + '\\n'."""
    return b"".join(fn(it) + b"\n" for it in items)


def exec_reference(items, fn):
    """Exec mode: every item gives the command's whole stdout, as-is."""
    return b"".join(fn(it) for it in items)


def first_diff(a, b):
    """Human-readable description of where a and b first differ."""
    n = min(len(a), len(b))
    i = 0
    step = 4096
    while i < n and a[i:i + step] == b[i:i + step]:
        i += step
    while i < n and a[i] == b[i]:
        i += 1
    return ("lengths %d vs %d, first difference at byte %d (line %d):\n  got      %r\n  expected %r"
            % (len(a), len(b), i, a[:i].count(b"\n") + 1, a[max(0, i - 40):i + 40],
               b[max(0, i - 40):i + 40]))


# ---------------------------------------------------------------------------
# Test case base


class TFTestCase(unittest.TestCase):
    """Base class: temp dir, process registry, seeded RNG, binary path."""

    maxDiff = 2000

    @classmethod
    def setUpClass(cls):
        cls.tf = require_binary()

    def setUp(self):
        self.seed = int(os.environ.get("TF_SEED") or random.SystemRandom().randrange(1 << 30))
        self.rng = random.Random(self.seed)
        self.tmp = tempfile.mkdtemp(prefix="tfinteg.")
        self.reg = ProcessRegistry()
        self.env = child_env()

    def tearDown(self):
        self.reg.kill_all()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run(self, result=None):
        def bad():
            return len(result.failures) + len(result.errors) if result is not None else 0
        before = bad()
        out = super().run(result)
        if result is not None and bad() > before:
            sys.stderr.write("\n[tfharness] %s failed with TF_SEED=%d (rerun: TF_SEED=%d python3 %s)\n"
                             % (self.id(), self.seed, self.seed, sys.argv[0]))
        return out

    # -- helpers --

    def path(self, name):
        return os.path.join(self.tmp, name)

    def ipc(self, name):
        return "ipc://" + self.path(name)

    def run_tf(self, *args, input=None, timeout=MEDIUM, env=None):
        """Run `taskfarm ARGS` to completion: (rc, stdout, stderr)."""
        return run_cmd([self.tf] + list(args), input=input, timeout=timeout,
                       env=env or self.env, registry=self.reg, cwd=self.tmp)

    def start_tf(self, *args, stdin=subprocess.DEVNULL, stdout=None, stderr=None, env=None):
        """Start `taskfarm ARGS` in the background; stdout/stderr default to
        files in the temp dir (named after the process index)."""
        idx = len(self.reg.procs)
        outf = stdout if stdout is not None else open(self.path("p%d.out" % idx), "wb")
        errf = stderr if stderr is not None else open(self.path("p%d.err" % idx), "wb")
        try:
            p = self.reg.start([self.tf] + list(args), stdin=stdin, stdout=outf, stderr=errf,
                               env=env or self.env, cwd=self.tmp)
        finally:
            for f in (outf, errf):
                if hasattr(f, "close") and f not in (subprocess.DEVNULL, subprocess.PIPE):
                    f.close()
        p.err_path = self.path("p%d.err" % idx)
        p.out_path = self.path("p%d.out" % idx)
        return p

    def stderr_of(self, p):
        try:
            return read(p.err_path).decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_exit(self, p, timeout, what="process"):
        rc = wait_proc(p, timeout)
        if rc is None:
            self.reg.kill(p)
            self.fail("%s (pid %d) did not exit within %ss; stderr:\n%s"
                      % (what, p.pid, timeout, self.stderr_of(p)[-3000:]))
        return rc

    def wait_workers(self, vep, n, vent):
        """Wait until n peers are connected to the ventilator at vep."""
        if not wait_connections(vep, n, 30):
            self.fail("only %d of %d connections to the ventilator after 30 s; vent: %s"
                      % (connections(vep), n, self.stderr_of(vent)))

    def assertBytesEqual(self, got, expected, what="output"):
        if got != expected:
            self.fail("%s differs from the reference: %s" % (what, first_diff(got, expected)))

    @contextlib.contextmanager
    def known_bug(self, description):
        """A block that fails because of a known binary bug: its failure
        skips the test with 'BUG: ...' instead of failing the suite. Once
        the bug is fixed the block passes and the test counts as passed."""
        try:
            yield
        except AssertionError as e:
            self.skipTest("BUG: %s (%s)" % (description, str(e).splitlines()[0][:200]))
