#!/usr/bin/env python3
"""test_docker -- checks of docker/Dockerfile and docker/compose.yaml.

No Docker engine is needed (none runs on the CI machine):
  - the Dockerfile is parsed as text: two stages, both debian:bookworm-slim,
    the build stage builds with -DTF_TESTS=OFF, the runtime stage installs
    only the runtime libraries and runs as a non-root user;
  - the compose file is validated with `docker-compose -f docker/compose.yaml
    config` (Debian's docker-compose package; `docker compose` v2 is used when
    only that exists); without either the test is skipped with the reason;
  - the services ventilator, sink and worker exist, worker is scalable (no
    container_name, no host ports), the build context is the repo root;
  - the services' commands are accepted by the real binary's option parser,
    and the same topology run as local processes (hosts and /data mapped to
    this machine) produces the seed demo's output.

Environment: TF_SOURCE_DIR (repo root; default: two levels up from here),
TASKFARM (binary; default build/taskfarm), TF_BUILD_DIR (for examples/tokenize).
Run: python3 tests/integration/test_docker.py
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.environ.get("TF_SOURCE_DIR") or os.path.join(HERE, "..", ".."))
DOCKERFILE = os.path.join(SOURCE, "docker", "Dockerfile")
COMPOSE = os.path.join(SOURCE, "docker", "compose.yaml")
BUILD = os.path.abspath(os.environ.get("TF_BUILD_DIR") or os.path.join(SOURCE, "build"))
TASKFARM = os.path.abspath(os.environ.get("TASKFARM") or os.path.join(BUILD, "taskfarm"))

try:
    import yaml  # python3-yaml, a dependency of Debian's docker-compose
except ImportError:  # pragma: no cover - depends on the machine
    yaml = None


def dockerfile_stages(text):
    """[(image, [instruction lines])] per FROM, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    stages = []
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"FROM\s+(?:--platform=\S+\s+)?(\S+)", line, re.I)
        if m:
            stages.append((m.group(1), []))
        elif stages:
            stages[-1][1].append(line)
    return stages


def compose_command():
    """argv prefix of a working compose CLI, or None with the reason."""
    if shutil.which("docker-compose"):
        return ["docker-compose"], None
    if shutil.which("docker"):
        r = subprocess.run(["docker", "compose", "version"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
        if r.returncode == 0:
            return ["docker", "compose"], None
    return None, ("neither docker-compose nor the docker compose plugin is installed "
                  "(apt-get install docker-compose)")


class DockerfileTest(unittest.TestCase):
    def setUp(self):
        with open(DOCKERFILE) as f:
            self.text = f.read()
        self.stages = dockerfile_stages(self.text)

    def test_two_stages_on_bookworm_slim(self):
        self.assertEqual(len(self.stages), 2, "expected a build and a runtime stage")
        for image, _ in self.stages:
            self.assertEqual(image, "debian:bookworm-slim")

    def test_build_stage(self):
        body = "\n".join(self.stages[0][1])
        for pkg in ("cmake", "gcc", "make", "pkg-config", "libzmq3-dev", "libczmq-dev",
                    "libcjson-dev"):
            self.assertRegex(body, r"(?<![\w-])%s(?![\w-])" % re.escape(pkg), pkg)
        self.assertIn("-DTF_TESTS=OFF", body)
        self.assertIn("examples/tokenize", body)

    def test_runtime_stage(self):
        body = "\n".join(self.stages[1][1])
        for pkg in ("libzmq5", "libczmq4", "libcjson1"):
            self.assertIn(pkg, body)
        installs = " ".join(l for l in self.stages[1][1] if "apt-get" in l)
        self.assertNotRegex(installs, r"-dev\b", "runtime stage installs -dev packages")
        self.assertNotRegex(installs, r"\b(gcc|cmake|make)\b", "runtime stage installs tools")
        self.assertRegex(body, r"COPY\s+--from=", "runtime stage copies the build")
        users = [l.split()[1] for l in self.stages[1][1] if l.upper().startswith("USER ")]
        self.assertTrue(users, "runtime stage has no USER")
        self.assertNotIn(users[-1].split(":")[0], ("root", "0"))


class ComposeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cli, cls.reason = compose_command()
        cls.config = None
        cls.config_error = None
        if cls.cli is None:
            return
        r = subprocess.run(cls.cli + ["-f", COMPOSE, "config"], cwd=SOURCE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=120)
        if r.returncode != 0:
            cls.config_error = "compose config failed (%d): %s" % (r.returncode, r.stderr.strip())
            return
        cls.config_text = r.stdout
        if yaml is not None:
            cls.config = yaml.safe_load(r.stdout)

    def setUp(self):
        if self.cli is None:
            self.skipTest(self.reason)

    def services(self):
        if self.config is None:
            self.skipTest("python3-yaml is not installed: cannot read the resolved config")
        return self.config.get("services") or {}

    def test_config_is_valid(self):
        self.assertIsNone(self.config_error, self.config_error)

    def test_three_services(self):
        self.assertIsNone(self.config_error, self.config_error)
        r = subprocess.run(self.cli + ["-f", COMPOSE, "config", "--services"], cwd=SOURCE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        names = set(r.stdout.split())
        for name in ("ventilator", "sink", "worker"):
            self.assertIn(name, names)

    def test_worker_is_scalable(self):
        worker = self.services()["worker"]
        self.assertNotIn("container_name", worker)
        self.assertFalse(worker.get("ports"), "worker publishes host ports: cannot scale")

    def test_build_context_is_repo_root(self):
        for name, svc in self.services().items():
            build = svc.get("build")
            if build is None:
                continue
            ctx = build if isinstance(build, str) else build.get("context")
            self.assertEqual(os.path.realpath(ctx), os.path.realpath(SOURCE), name)
            if isinstance(build, dict) and build.get("dockerfile"):
                df = build["dockerfile"]
                path = df if os.path.isabs(df) else os.path.join(ctx, df)
                self.assertEqual(os.path.realpath(path), os.path.realpath(DOCKERFILE), name)

    def test_seed_demo_commands(self):
        svcs = self.services()
        self.assertIn("/data/items.txt", " ".join(svcs["ventilator"]["command"]))
        self.assertIn("/data/out.txt", " ".join(svcs["sink"]["command"]))
        self.assertIn("tokenize", svcs["worker"]["command"])


def _commands_from_file():
    """Service commands read straight from docker/compose.yaml (no CLI)."""
    with open(COMPOSE) as f:
        doc = yaml.safe_load(f)
    return {name: list(svc["command"]) for name, svc in doc["services"].items()}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComposeCommandsTest(unittest.TestCase):
    """The compose commands against the real binary, without containers."""

    def setUp(self):
        if yaml is None:
            self.skipTest("python3-yaml is not installed: cannot read docker/compose.yaml")
        if not os.access(TASKFARM, os.X_OK):
            self.skipTest("taskfarm binary not found at %s (set TASKFARM)" % TASKFARM)
        self.cmds = _commands_from_file()
        self.procs = []
        self.logs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=10)
        for log in self.logs:
            log.close()

    def test_options_parse(self):
        for name, argv in self.cmds.items():
            args = list(argv)
            cut = args.index("--") if "--" in args else len(args)
            r = subprocess.run([TASKFARM] + args[:cut] + ["--help"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, "%s: %s" % (name, r.stderr.strip()))

    def test_topology_runs_locally(self):
        tokenize = os.path.join(BUILD, "examples", "tokenize")
        if not os.access(tokenize, os.X_OK):
            self.skipTest("examples/tokenize not built at %s (set TF_BUILD_DIR)" % tokenize)
        vport, sport = _free_port(), _free_port()
        with tempfile.TemporaryDirectory() as data:
            shutil.copy(os.path.join(SOURCE, "docker", "data", "items.txt"), data)

            def local(argv):
                out = []
                for a in argv:
                    a = a.replace("tcp://*:5555", "tcp://127.0.0.1:%d" % vport)
                    a = a.replace("tcp://ventilator:5555", "tcp://127.0.0.1:%d" % vport)
                    a = a.replace("tcp://*:5556", "tcp://127.0.0.1:%d" % sport)
                    a = a.replace("tcp://sink:5556", "tcp://127.0.0.1:%d" % sport)
                    a = a.replace("/data/", data + "/")
                    out.append(tokenize if a == "tokenize" else a)
                return out

            def start(argv):
                log = open(os.path.join(data, "log%d.txt" % len(self.procs)), "w+b")
                self.logs.append(log)
                p = subprocess.Popen([TASKFARM] + argv, stdout=subprocess.DEVNULL,
                                     stderr=log, start_new_session=True)
                self.procs.append(p)
                return p

            def stderr_of(p):
                log = self.logs[self.procs.index(p)]
                log.seek(0)
                return log.read().decode(errors="replace")

            vent = start(local(self.cmds["ventilator"]))
            sink = start(local(self.cmds["sink"]))
            worker = local(self.cmds["worker"])
            worker.insert(1, "--once")
            workers = [start(worker) for _ in range(2)]
            deadline = time.monotonic() + 60
            for p in [vent, sink] + workers:
                p.wait(timeout=max(1, deadline - time.monotonic()))
            self.assertEqual(vent.returncode, 0, stderr_of(vent))
            self.assertEqual(sink.returncode, 0, stderr_of(sink))
            with open(os.path.join(data, "items.txt"), "rb") as f:
                ref = subprocess.run([tokenize, "--ms", "0"], stdin=f, stdout=subprocess.PIPE,
                                     timeout=30).stdout
            with open(os.path.join(data, "out.txt"), "rb") as f:
                self.assertEqual(f.read(), ref)


if __name__ == "__main__":
    unittest.main(verbosity=2)
