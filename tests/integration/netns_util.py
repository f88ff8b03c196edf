"""netns_util -- a small lab of network namespaces for multi-host tests.

A NetLab makes, for one test, a switch namespace ``tf-<pid>-sw`` holding a
bridge ``tfbr-<pid>`` and N host namespaces ``tf-<pid>-h1..hN``, each with one
veth (``eth0``, 198.18.0.<i>/24) plugged into the bridge (port ``veth-h<i>``
in the switch namespace).  Nothing is added to the root namespace: every link
lives inside the lab's namespaces, so all traffic stays inside them, and
deleting the namespaces removes every link.

Processes run with ``ip netns exec NS ...`` in a new session (their own
process group) and are killed by process-group id.  Clean-up is idempotent
and runs from tearDown, from atexit and from SIGTERM/SIGHUP/SIGINT handlers;
namespaces left behind by a lab whose process died (SIGKILL, power cut) are
swept by the next lab.

Standard library only; needs root and iproute2 (``ip``).
"""

import atexit
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

SUBNET = "198.18.0"      # 198.18.0.0/15: the benchmarking range (RFC 2544)
PREFIX = 24

_IP_TIMEOUT = 10          # seconds for any one `ip` command


class NetnsUnavailable(Exception):
    """Namespaces cannot be made here: the reason says why."""


def _ip(*args, check=True, timeout=_IP_TIMEOUT):
    """Runs `ip ARGS`; returns the CompletedProcess."""
    r = subprocess.run(["ip", *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError("ip %s: exit %d: %s" % (" ".join(args), r.returncode,
                                                  r.stderr.strip()))
    return r


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def netns_pids(ns):
    """PIDs of the processes in namespace NS (empty if none or gone)."""
    try:
        r = _ip("netns", "pids", ns, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [int(x) for x in r.stdout.split() if x.isdigit()]


def _kill_ns_processes(ns):
    """SIGKILLs every process in namespace NS; waits briefly until none is left."""
    for _ in range(50):
        pids = netns_pids(ns)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.02)


_NS_RE = re.compile(r"^tf-(\d+)-(sw|h\d+)$")


def sweep_stale():
    """Deletes lab namespaces whose owning process no longer exists."""
    try:
        r = _ip("netns", "list", check=False)
    except (OSError, subprocess.TimeoutExpired):
        return
    for line in r.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = _NS_RE.match(name)
        if not m or int(m.group(1)) == os.getpid() or _pid_alive(int(m.group(1))):
            continue
        _kill_ns_processes(name)
        _ip("netns", "del", name, check=False)
    # Work directories of dead labs (tempfile.mkdtemp(prefix="tf-netns-<pid>-")).
    tmp = tempfile.gettempdir()
    for entry in os.listdir(tmp):
        m = re.match(r"^tf-netns-(\d+)-", entry)
        if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
            shutil.rmtree(os.path.join(tmp, entry), ignore_errors=True)


def probe():
    """Returns None if labs can be made here, else a one-line reason."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux (this is %s)" % sys.platform
    if os.geteuid() != 0:
        return "network namespaces need root (euid is %d)" % os.geteuid()
    if shutil.which("ip") is None:
        return "iproute2's `ip` command is not installed"
    name = "tf-%d-probe" % os.getpid()
    try:
        r = _ip("netns", "add", name, check=False)
        if r.returncode != 0:
            return "cannot create a network namespace: %s" % (r.stderr.strip() or
                                                             "exit %d" % r.returncode)
        r = _ip("-n", name, "link", "add", "tfprobe0", "type", "bridge", check=False)
        if r.returncode != 0:
            return "cannot create a bridge in a namespace: %s" % r.stderr.strip()
        r = _ip("-n", name, "link", "add", "tfprobe1", "type", "veth", "peer", "name",
                "tfprobe2", check=False)
        if r.returncode != 0:
            return "cannot create a veth pair in a namespace: %s" % r.stderr.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return "cannot run `ip`: %s" % e
    finally:
        try:
            _ip("netns", "del", name, check=False)
        except (OSError, subprocess.TimeoutExpired):
            pass
    return None


class Proc:
    """A process in a namespace, in its own session.

    stdout goes to a file (or DEVNULL); stderr is read by a thread that keeps
    each line with its time.monotonic() arrival stamp (and copies it to a
    log file), so tests can time log lines such as "worker ... lost".
    """

    def __init__(self, lab, ns, argv, name, stdout_path=None, env=None):
        self.lab = lab
        self.ns = ns
        self.name = name
        self.argv = list(argv)
        self.lines = []           # [(monotonic, text)]
        self._lock = threading.Lock()
        self.stderr_path = os.path.join(lab.workdir, name + ".err")
        self._errf = open(self.stderr_path, "w")
        out = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        self.started = time.monotonic()
        try:
            self.popen = subprocess.Popen(
                ["ip", "netns", "exec", ns, *argv], stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.PIPE, env=full_env, start_new_session=True)
        finally:
            if out is not subprocess.DEVNULL:
                out.close()
        # `ip netns exec` execs the command: this is also the command's pid,
        # and the id of its process group.
        self.pid = self.popen.pid
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for raw in self.popen.stderr:
            text = raw.decode("utf-8", "replace").rstrip("\n")
            now = time.monotonic()
            with self._lock:
                self.lines.append((now, text))
            try:
                self._errf.write("%.3f %s\n" % (now - self.started, text))
                self._errf.flush()
            except ValueError:
                pass
        try:
            self.popen.stderr.close()
        except OSError:
            pass

    def find_line(self, pattern, after=0.0):
        """(stamp, text) of the first stderr line matching PATTERN at or after AFTER."""
        rx = re.compile(pattern)
        with self._lock:
            for stamp, text in self.lines:
                if stamp >= after and rx.search(text):
                    return stamp, text
        return None

    def wait_line(self, pattern, timeout, after=0.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hit = self.find_line(pattern, after)
            if hit:
                return hit
            time.sleep(0.02)
        return self.find_line(pattern, after)

    def stderr_text(self):
        with self._lock:
            return "\n".join(t for _, t in self.lines)

    def wait(self, timeout):
        """Exit status, or None if still running after TIMEOUT seconds."""
        try:
            rc = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reader.join(timeout=2)
        return rc

    def poll(self):
        return self.popen.poll()

    def kill(self, sig=signal.SIGKILL):
        """Signals the process's whole group; SIGKILL also reaps it."""
        # Only while not reaped: until then the pid (and group id) is ours.
        if self.popen.returncode is None:
            try:
                os.killpg(self.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        if sig == signal.SIGKILL:
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            self._reader.join(timeout=2)
            try:
                self._errf.close()
            except OSError:
                pass


_LABS = []
_LABS_LOCK = threading.Lock()
_HANDLERS_SET = False


def _cleanup_all():
    with _LABS_LOCK:
        labs = list(_LABS)
    for lab in labs:
        lab.cleanup()


def _on_signal(signum, frame):
    _cleanup_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_handlers():
    global _HANDLERS_SET
    if _HANDLERS_SET:
        return
    _HANDLERS_SET = True
    atexit.register(_cleanup_all)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            try:
                signal.signal(sig, _on_signal)
            except (ValueError, OSError):
                pass


class NetLab:
    """N hosts on one bridge, in namespaces of their own."""

    def __init__(self, hosts=3, workdir=None, own_workdir=False):
        self.tag = str(os.getpid())
        self.switch = "tf-%s-sw" % self.tag
        self.bridge = "tfbr-%s" % self.tag
        self.nhosts = hosts
        self.hosts = ["tf-%s-h%d" % (self.tag, i) for i in range(1, hosts + 1)]
        self.workdir = workdir or "/tmp"
        # An owned workdir is removed by cleanup (kept if TF_KEEP_NETNS_LOGS is set).
        self.own_workdir = own_workdir and workdir is not None
        self.procs = []
        self._made = []
        self._cleaned = False

    # -- topology ----------------------------------------------------------

    def addr(self, i):
        """Address of host I (1-based)."""
        return "%s.%d" % (SUBNET, i)

    def ns(self, i):
        return self.hosts[i - 1]

    def port(self, i):
        """Name of host I's port on the bridge (in the switch namespace)."""
        return "veth-h%d" % i

    def setup(self):
        _install_handlers()
        sweep_stale()
        with _LABS_LOCK:
            _LABS.append(self)
        try:
            for ns in [self.switch, *self.hosts]:
                if ns in _ip("netns", "list").stdout.split():
                    _kill_ns_processes(ns)
                    _ip("netns", "del", ns, check=False)
                _ip("netns", "add", ns)
                self._made.append(ns)
                _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", self.switch, "link", "add", self.bridge, "type", "bridge")
            _ip("-n", self.switch, "link", "set", self.bridge, "up")
            for i, ns in enumerate(self.hosts, 1):
                port = self.port(i)
                _ip("-n", self.switch, "link", "add", port, "type", "veth", "peer", "name",
                    "eth0", "netns", ns)
                _ip("-n", self.switch, "link", "set", port, "master", self.bridge)
                _ip("-n", self.switch, "link", "set", port, "up")
                _ip("-n", ns, "addr", "add", "%s/%d" % (self.addr(i), PREFIX), "dev", "eth0")
                _ip("-n", ns, "link", "set", "eth0", "up")
        except Exception:
            self.cleanup()
            raise
        return self

    def link_down(self, i):
        """Cuts host I's cable at the switch: no RST, no error, just silence."""
        _ip("-n", self.switch, "link", "set", self.port(i), "down")

    def link_up(self, i):
        _ip("-n", self.switch, "link", "set", self.port(i), "up")

    # -- processes ----------------------------------------------------------

    def spawn(self, i, argv, name, stdout_path=None, env=None):
        """Starts ARGV on host I (1-based) in a new session."""
        p = Proc(self, self.ns(i), argv, name, stdout_path, env)
        self.procs.append(p)
        return p

    def run(self, i, argv, timeout=10):
        """Runs ARGV on host I to completion; returns its stdout (text)."""
        r = subprocess.run(["ip", "netns", "exec", self.ns(i), *argv], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                           timeout=timeout, start_new_session=True)
        return r.stdout

    def send_queue(self, i, peer):
        """Bytes queued unacknowledged in host I's TCP connections to PEER (ip:port)."""
        ip, _, port = peer.rpartition(":")
        out = self.run(i, ["ss", "-Htn", "state", "established", "dst", ip, "dport", "=", port])
        total = 0
        for line in out.splitlines():
            f = line.split()
            if len(f) >= 2 and f[1].isdigit():
                total += int(f[1])
        return total

    def kill_host(self, i):
        """SIGKILLs every process on host I, as if the machine died. Returns the pids."""
        pids = netns_pids(self.ns(i))
        _kill_ns_processes(self.ns(i))
        return pids

    # -- clean-up -----------------------------------------------------------

    def cleanup(self):
        """Kills every process and deletes every namespace (and so every link)."""
        if self._cleaned:
            return
        self._cleaned = True
        for p in self.procs:
            try:
                p.kill(signal.SIGKILL)
            except Exception:
                pass
        for ns in reversed(self._made):
            try:
                _kill_ns_processes(ns)
                _ip("netns", "del", ns, check=False)
            except Exception as e:
                sys.stderr.write("netns_util: cannot delete namespace %s: %s\n" % (ns, e))
        self._made = []
        if self.own_workdir:
            if os.environ.get("TF_KEEP_NETNS_LOGS"):
                sys.stderr.write("netns_util: logs kept in %s\n" % self.workdir)
            else:
                shutil.rmtree(self.workdir, ignore_errors=True)
        with _LABS_LOCK:
            if self in _LABS:
                _LABS.remove(self)
