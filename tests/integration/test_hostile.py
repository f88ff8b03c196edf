#!/usr/bin/env python3
"""test_hostile -- hostile network traffic against a running job.

A job runs as separate components over tcp://127.0.0.1 (ventilator, sink, two
--once workers, a few thousand items) while this test sends to every bound
port (the ventilator's ROUTER, the sink's PULL):

  * raw TCP: random bytes, a fake ZMTP greeting then junk, a greeting with an
    absurd frame length, connections opened and closed at once, an idle
    connection held open;
  * well-formed ZeroMQ peers sending malformed messages of every shape:
    DEALER to the ventilator (empty and multipart frames, short headers,
    wrong magic / version / type, every message type with truncated bodies
    and trailing bytes, huge record counts, bad strings, a REPORT claiming
    items the peer does not hold, ACKs for ranges never sent, FINISHED and
    ACK from a worker, malformed SINK_HELLOs and one from a worker's
    connection), a greedy peer that takes items and vanishes; PUSH to the
    sink (garbage, non-RESULTS types, truncated RESULTS, seqs outside the
    window, another job's results, duplicates of written seqs).

The job must complete with output equal to the reference, every component
exits 0, the ventilator's --stats shows malformed_dropped > 0 and the sink's
stderr shows "dropped malformed message" lines at a bounded rate.

A well-formed SINK_HELLO from a stranger (sink hijack) is a separate case.

ZeroMQ client: the `zmq` module if importable, otherwise ctypes against
libzmq.so.5. Environment: TASKFARM, TF_SEED, TF_HOSTILE_BACKEND=ctypes|pyzmq.
"""

import contextlib
import ctypes
import ctypes.util
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tfharness as h  # noqa: E402

JOB_TIMEOUT = 150


def log(msg):
    sys.stderr.write("  [hostile] %s\n" % msg)
    sys.stderr.flush()


# ---------------------------------------------------------------------------
# A minimal ZeroMQ client: pyzmq, or ctypes against libzmq

DEALER, PULL, PUSH = 5, 7, 8
_LINGER, _ROUTING_ID, _RCVTIMEO, _SNDTIMEO, _RCVMORE = 17, 5, 27, 28, 13
_DONTWAIT, _SNDMORE = 1, 2


class _CtypesBackend:
    name = "ctypes"

    def __init__(self):
        path = ctypes.util.find_library("zmq") or "libzmq.so.5"
        lib = ctypes.CDLL(path, use_errno=True)
        lib.zmq_ctx_new.restype = ctypes.c_void_p
        lib.zmq_ctx_term.argtypes = [ctypes.c_void_p]
        lib.zmq_socket.restype = ctypes.c_void_p
        lib.zmq_socket.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.zmq_connect.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.zmq_setsockopt.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                                       ctypes.c_size_t]
        lib.zmq_getsockopt.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                                       ctypes.POINTER(ctypes.c_size_t)]
        lib.zmq_send.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        lib.zmq_recv.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        lib.zmq_close.argtypes = [ctypes.c_void_p]
        self.lib = lib
        self.ctx = lib.zmq_ctx_new()
        self.buf = ctypes.create_string_buffer(1 << 22)

    def socket(self, kind, endpoint, identity=None):
        s = self.lib.zmq_socket(self.ctx, kind)
        if not s:
            raise OSError("zmq_socket failed")
        self._opt_int(s, _LINGER, 1000)
        self._opt_int(s, _SNDTIMEO, 200)
        if identity:
            self.lib.zmq_setsockopt(s, _ROUTING_ID, identity, len(identity))
        if self.lib.zmq_connect(s, endpoint.encode()) != 0:
            self.lib.zmq_close(s)
            raise OSError("zmq_connect %s failed" % endpoint)
        return s

    def _opt_int(self, s, opt, value):
        v = ctypes.c_int(value)
        self.lib.zmq_setsockopt(s, opt, ctypes.byref(v), ctypes.sizeof(v))

    def send(self, s, frames):
        for i, f in enumerate(frames):
            flags = _DONTWAIT | (_SNDMORE if i < len(frames) - 1 else 0)
            if self.lib.zmq_send(s, f, len(f), flags) < 0:
                return False
        return True

    def recv(self, s, timeout):
        self._opt_int(s, _RCVTIMEO, max(1, int(timeout * 1000)))
        frames = []
        while True:
            n = self.lib.zmq_recv(s, self.buf, len(self.buf), 0)
            if n < 0:
                return frames or None
            frames.append(self.buf.raw[:min(n, len(self.buf))])
            more = ctypes.c_int(0)
            sz = ctypes.c_size_t(ctypes.sizeof(more))
            self.lib.zmq_getsockopt(s, _RCVMORE, ctypes.byref(more), ctypes.byref(sz))
            if not more.value:
                return frames

    def close(self, s):
        self.lib.zmq_close(s)

    def term(self):
        self.lib.zmq_ctx_term(self.ctx)


class _PyzmqBackend:
    name = "pyzmq"

    def __init__(self):
        import zmq
        self.zmq = zmq
        self.ctx = zmq.Context()

    def socket(self, kind, endpoint, identity=None):
        s = self.ctx.socket(kind)
        s.setsockopt(self.zmq.LINGER, 1000)
        s.setsockopt(self.zmq.SNDTIMEO, 200)
        if identity:
            s.setsockopt(self.zmq.IDENTITY, identity)
        s.connect(endpoint)
        return s

    def send(self, s, frames):
        try:
            s.send_multipart(frames, flags=self.zmq.NOBLOCK)
            return True
        except self.zmq.ZMQError:
            return False

    def recv(self, s, timeout):
        if s.poll(int(timeout * 1000)):
            return s.recv_multipart()
        return None

    def close(self, s):
        s.close()

    def term(self):
        self.ctx.term()


def zmq_backend():
    want = os.environ.get("TF_HOSTILE_BACKEND", "")
    if want != "ctypes":
        try:
            return _PyzmqBackend()
        except ImportError:
            if want == "pyzmq":
                raise
    return _CtypesBackend()


# ---------------------------------------------------------------------------
# Protocol encoding (docs/PROTOCOL.md §2-§3)

HELLO, WELCOME, TASKS, REPORT, RESULTS, HEARTBEAT, RESET, SINK_HELLO, SINK_WELCOME, ACK, \
    SKIP, END, FINISHED, JOB_END, RESULTS_LOST = range(1, 16)


def hdr(mtype, job=0, magic=b"TF", version=1):
    return magic + bytes([version, mtype]) + struct.pack(">Q", job)


def sstr(s):
    return bytes([len(s)]) + s


def items_body(recs):
    return struct.pack(">I", len(recs)) + b"".join(
        struct.pack(">QII", seq, att, len(d)) + d for seq, att, d in recs)


def report_body(credit, recs):
    return struct.pack(">II", credit, len(recs)) + b"".join(
        struct.pack(">QIBII", seq, att, st, det, dur) for seq, att, st, det, dur in recs)


def ack_body(ranges):
    return struct.pack(">I", len(ranges)) + b"".join(struct.pack(">QI", s, c) for s, c in ranges)


def valid_bodies(rng):
    """A well-formed body for every message type."""
    return {
        HELLO: struct.pack(">I", 1) + sstr(b"evil:1"),
        WELCOME: struct.pack(">IIII", 200, 1000, 0, 1 << 20) + sstr(b"tcp://127.0.0.1:1"),
        TASKS: items_body([(rng.randrange(1000), 1, b"evil item")]),
        REPORT: report_body(0, [(rng.randrange(1000), 1, 0, 0, 5)]),
        RESULTS: items_body([(rng.randrange(1000), 1, b"EVIL RESULT\n")]),
        HEARTBEAT: struct.pack(">I", 0),
        RESET: b"\x01",
        SINK_HELLO: struct.pack(">Q", 0) + sstr(b"tcp://127.0.0.1:1"),
        SINK_WELCOME: struct.pack(">III", 16, 200, 1000),
        ACK: ack_body([(0, 5)]),
        SKIP: struct.pack(">IQ", 1, 3),
        END: struct.pack(">QQ", 5, 0),
        FINISHED: struct.pack(">QB", 5, 1),
        JOB_END: b"",
        RESULTS_LOST: b"",
    }


def malformed_messages(rng, job):
    """Messages that every receiver must reject as malformed (one frame each)."""
    msgs = [b"", b"T", b"TF", b"TF\x01", b"TF\x01\x01", b"TF\x01\x01" + b"\x00" * 7]
    msgs += [hdr(HELLO, magic=b"XX") + valid_bodies(rng)[HELLO],
             hdr(HELLO, magic=b"tf") + valid_bodies(rng)[HELLO],
             hdr(HELLO, version=0) + valid_bodies(rng)[HELLO],
             hdr(HELLO, version=2) + valid_bodies(rng)[HELLO],
             hdr(HELLO, version=255) + valid_bodies(rng)[HELLO],
             hdr(0, job), hdr(16, job), hdr(255, job) + b"x" * 40]
    for mtype, body in valid_bodies(rng).items():
        j = 0 if mtype in (HELLO, SINK_HELLO) else job
        #  Truncated bodies (every cut of the short ones), and trailing bytes.
        cuts = range(len(body)) if len(body) <= 24 else sorted(rng.sample(range(len(body)), 12))
        for k in cuts:
            msgs.append(hdr(mtype, j) + body[:k])
        msgs.append(hdr(mtype, j) + body + b"\x00")
        msgs.append(hdr(mtype, j) + body + bytes(rng.randrange(256) for _ in range(17)))
    #  Huge counts, without the records they announce.
    for count in (1 << 20, (1 << 20) + 1, 0x7fffffff, 0xffffffff):
        c = struct.pack(">I", count)
        msgs += [hdr(TASKS, job) + c, hdr(RESULTS, job) + c + b"\x00" * 16,
                 hdr(REPORT, job) + struct.pack(">I", 5) + c, hdr(ACK, job) + c + b"\x00" * 12,
                 hdr(SKIP, job) + c + b"\x00" * 8]
    #  Zero counts where at least one record is required.
    msgs += [hdr(TASKS, job) + struct.pack(">I", 0), hdr(RESULTS, job) + struct.pack(">I", 0),
             hdr(ACK, job) + struct.pack(">I", 0), hdr(SKIP, job) + struct.pack(">I", 0)]
    #  Field checks: zero slots, bad strings, attempt 0, unknown status,
    #  empty range, record longer than the message, bad flags and settings.
    msgs += [
        hdr(HELLO) + struct.pack(">I", 0) + sstr(b"zero-slots"),
        hdr(HELLO) + struct.pack(">I", 1) + sstr(b"bad\x01name"),
        hdr(HELLO) + struct.pack(">I", 1) + bytes([200]) + b"short",
        hdr(SINK_HELLO) + struct.pack(">Q", 0) + sstr(b""),
        hdr(SINK_HELLO) + struct.pack(">Q", 1 << 40) + sstr(b"tcp://\x7f\x00bad"),
        hdr(SINK_HELLO) + struct.pack(">Q", 1 << 40) + bytes([255]) + b"tcp://x",
        hdr(REPORT, job) + report_body(0, [(1, 0, 0, 0, 0)]),
        hdr(REPORT, job) + report_body(0, [(1, 1, 9, 0, 0)]),
        hdr(REPORT, job) + report_body(0, [(1, 1, 255, 0, 0)]),
        hdr(ACK, job) + ack_body([(0, 0)]),
        hdr(TASKS, job) + items_body([(0, 0, b"x")]),
        hdr(RESULTS, job) + items_body([(0, 0, b"x")]),
        hdr(RESULTS, job) + struct.pack(">IQII", 1, 0, 1, 1000) + b"short",
        hdr(RESULTS, job) + struct.pack(">IQII", 1, 0, 1, 0xffffffff) + b"short",
        hdr(FINISHED, job) + struct.pack(">QB", 1, 2),
        hdr(WELCOME, job) + struct.pack(">IIII", 0, 0, 0, 0) + sstr(b"tcp://x:1"),
        hdr(SINK_WELCOME, job) + struct.pack(">III", 0, 1, 1),
    ]
    #  Pure noise with a valid-looking start.
    for _ in range(6):
        msgs.append(b"TF\x01" + bytes(rng.randrange(256) for _ in range(rng.randint(1, 300))))
    for _ in range(6):
        msgs.append(bytes(rng.randrange(256) for _ in range(rng.randint(1, 2000))))
    return msgs


# ---------------------------------------------------------------------------
# Raw TCP attacks


def zmtp_greeting(mechanism=b"NULL", as_server=0, major=3, minor=1):
    return (b"\xff" + b"\x00" * 8 + b"\x7f" + bytes([major, minor]) + mechanism.ljust(20, b"\x00")
            + bytes([as_server]) + b"\x00" * 31)


def tcp_send(port, data, rng, hold=0.0, read=False):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.settimeout(0.5)
            if data:
                #  Send in random pieces: libzmq must cope with any split.
                i = 0
                while i < len(data):
                    k = rng.randint(1, 512)
                    s.sendall(data[i:i + k])
                    i += k
            if read:
                with contextlib.suppress(OSError):
                    s.recv(4096)
            if hold:
                time.sleep(hold)
    except OSError:
        pass    # the peer may hang up on us: that is the point


def raw_attacks(port, rng):
    """One round of raw TCP abuse against port."""
    junk = lambda n: bytes(rng.randrange(256) for _ in range(n))  # noqa: E731
    for _ in range(5):
        tcp_send(port, b"", rng)                                  # open, close at once
    tcp_send(port, junk(rng.randint(1, 4096)), rng)               # random bytes
    tcp_send(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", rng, read=True)
    tcp_send(port, zmtp_greeting() + junk(rng.randint(1, 2000)), rng, read=True)
    tcp_send(port, zmtp_greeting()[:rng.randint(1, 63)], rng)     # half a greeting
    tcp_send(port, zmtp_greeting(b"CURVE") + junk(300), rng, read=True)
    tcp_send(port, zmtp_greeting(b"PLAIN", major=3, minor=0) + junk(100), rng)
    tcp_send(port, zmtp_greeting(major=2) + junk(100), rng)       # older ZMTP
    tcp_send(port, b"\x01\x00" + junk(200), rng)                  # ZMTP 1.0 style
    #  A valid greeting and READY, then a frame announcing 2^62 bytes.
    ready = b"\x04" + bytes([26]) + b"\x05READY" + b"\x0bSocket-Type" + \
        struct.pack(">I", 6) + b"DEALER"
    tcp_send(port, zmtp_greeting() + ready + b"\x02" + struct.pack(">Q", 1 << 62) + junk(64),
             rng, read=True)
    #  READY with a bogus socket type and a broken property list.
    bad_ready = b"\x04" + bytes([20]) + b"\x05READY" + b"\x0bSocket-Type" + b"\xff\xff"
    tcp_send(port, zmtp_greeting() + bad_ready + junk(50), rng, read=True)


# ---------------------------------------------------------------------------


class Hostile:
    """Sends hostile traffic until stopped; counts what it did."""

    def __init__(self, backend, rng, vent_ep, sink_ep, out_path, n_items, window):
        self.z = backend
        self.rng = rng
        self.vent_ep, self.sink_ep = vent_ep, sink_ep
        self.vent_port = int(vent_ep.rsplit(":", 1)[1])
        self.sink_port = int(sink_ep.rsplit(":", 1)[1])
        self.out_path = out_path
        self.n = n_items
        self.window = window
        self.stop = threading.Event()
        self.job = None
        self.counts = {}
        self.errors = []
        self.greedy_items = 0
        self.impersonate = []     # routing ids of the real workers (predictable)

    def count(self, what, k=1):
        self.counts[what] = self.counts.get(what, 0) + k

    def send(self, s, frames, what):
        if self.z.send(s, frames):
            self.count(what)

    def learn_job(self):
        """Join as a worker (valid HELLO) to learn the job id from WELCOME.
        Returns the socket (a registered 'worker') or None."""
        s = self.z.socket(DEALER, self.vent_ep, b"Hevil-%d" % self.rng.randrange(1 << 30))
        self.send(s, [hdr(HELLO) + struct.pack(">I", 1) + sstr(b"hostile:0")], "hello")
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not self.stop.is_set():
            fr = self.z.recv(s, 0.2)
            if fr and len(fr[-1]) >= 12 and fr[-1][:2] == b"TF":
                if fr[-1][3] == WELCOME:
                    self.job = struct.unpack(">Q", fr[-1][4:12])[0]
                    return s
                if fr[-1][3] == JOB_END:
                    break
        self.z.close(s)
        return None

    def written_items(self):
        try:
            with open(self.out_path, "rb") as f:
                return f.read().count(b"\n")
        except OSError:
            return 0

    def vent_round(self):
        rng = self.rng
        job = self.job or rng.randrange(1 << 64)
        #  A stranger: malformed messages, shapes, and out-of-place ones.
        s = self.z.socket(DEALER, self.vent_ep)
        for m in malformed_messages(rng, job):
            self.send(s, [m], "vent malformed")
        self.send(s, [b"", b""], "vent multipart")
        self.send(s, [hdr(HEARTBEAT, job) + struct.pack(">I", 0), b"extra"], "vent multipart")
        self.send(s, [b"a", b"b", b"c"], "vent multipart")
        self.send(s, [hdr(ACK, job) + ack_body([(0, 1 << 30), ((1 << 64) - 5, 100)])],
                  "vent ack stranger")
        self.send(s, [hdr(FINISHED, job) + struct.pack(">QB", 10, 1)], "vent finished stranger")
        self.send(s, [hdr(SKIP, job) + struct.pack(">IQ", 1, 0)], "vent wrong-direction")
        self.send(s, [hdr(TASKS, job) + items_body([(0, 1, b"x")])], "vent wrong-direction")
        self.z.close(s)
        #  A registered peer (valid HELLO): forged reports and acks.
        w = self.learn_job()
        if w is None:
            return
        job = self.job
        recs = []
        for _ in range(40):
            seq = rng.randrange(self.n + 10)
            recs.append((seq, rng.randint(1, 4), rng.choice([0, 1, 2, 3, 5, 6, 8]),
                         rng.randrange(256), rng.randrange(1 << 20)))
        #  A REPORT claiming items it does not hold (ok and failures; even a
        #  bad-item, which would fail an item for good if it were trusted).
        self.send(w, [hdr(REPORT, job) + report_body(0, recs)], "vent report not held")
        self.send(w, [hdr(REPORT, job) + report_body(0, [(q, 1, 6, 0, 0) for q in
                                                         range(0, min(self.n, 200))])],
                  "vent report not held")
        #  An ACK and FINISHED from a worker, acks for ranges never sent.
        self.send(w, [hdr(ACK, job) + ack_body([(0, self.n), (self.n + 5, 1000),
                                                ((1 << 64) - 1, 0xffffffff)])], "vent ack worker")
        self.send(w, [hdr(FINISHED, job) + struct.pack(">QB", self.n, 1)], "vent finished worker")
        self.send(w, [hdr(END, job) + struct.pack(">QQ", 1, 0)], "vent wrong-direction")
        #  A SINK_HELLO from a worker's connection.
        self.send(w, [hdr(SINK_HELLO) + struct.pack(">Q", 1 << 40) + sstr(b"tcp://127.0.0.1:1")],
                  "vent sink_hello worker")
        #  Another job's REPORT (answered with RESET), heartbeats.
        self.send(w, [hdr(REPORT, job ^ 0x5a5a) + report_body(0, recs[:3])], "vent other job")
        self.send(w, [hdr(HEARTBEAT, job) + struct.pack(">I", 7)], "vent heartbeat")
        self.sink_round_with_job()
        self.z.close(w)
        #  Impersonation: a peer presenting a real worker's routing id
        #  (W<host>:<pid>-<session>) with forged failures for every item.
        #  libzmq's ROUTER refuses a second peer with an id in use.
        forged = report_body(0, [(q, a, 6, 0, 0) for q in range(0, min(self.n, 300))
                                 for a in (1, 2)])
        for rid in self.impersonate:
            s = self.z.socket(DEALER, self.vent_ep, rid)
            self.send(s, [hdr(REPORT, job) + forged], "vent impersonation")
            self.z.close(s)

    def greedy(self):
        """Take items (credit) and vanish without an answer: they must be
        re-sent when the peer is found lost."""
        w = self.learn_job()
        if w is None:
            return
        self.send(w, [hdr(REPORT, self.job) + report_body(self.rng.randint(1, 30), [])],
                  "greedy credit")
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            fr = self.z.recv(w, 0.2)
            if fr and len(fr[-1]) >= 16 and fr[-1][3] == TASKS:
                self.greedy_items += struct.unpack(">I", fr[-1][12:16])[0]
                break
        self.z.close(w)

    def sink_round_with_job(self):
        """RESULTS of the right job outside the window, of another job, and
        duplicates of seqs already written."""
        job = self.job
        rng = self.rng
        s = self.z.socket(PUSH, self.sink_ep)
        far = [self.n + self.window + 1000 + rng.randrange(1 << 20), 1 << 63, (1 << 64) - 1,
               (1 << 64) - self.window // 2, (1 << 40) + rng.randrange(1 << 20)]
        for seq in far:
            self.send(s, [hdr(RESULTS, job) + items_body([(seq, 1, b"EVIL-FAR\n")])],
                      "sink outside window")
        self.send(s, [hdr(RESULTS, job) + items_body([(q, 1, b"EVIL-FAR\n") for q in far])],
                  "sink outside window")
        other = job ^ (1 + rng.randrange(1 << 63))
        self.send(s, [hdr(RESULTS, other) + items_body(
            [(q, 1, b"EVIL-OTHER-JOB\n") for q in range(0, self.n, max(1, self.n // 50))])],
            "sink other job")
        done = self.written_items()
        if done > 2:
            #  Below what is written already: duplicates, dropped and re-acked.
            self.send(s, [hdr(RESULTS, job) + items_body(
                [(rng.randrange(done - 1), rng.randint(1, 3), b"EVIL-DUP\n") for _ in range(5)])],
                "sink duplicate")
        self.z.close(s)

    def sink_round(self):
        rng = self.rng
        job = self.job or rng.randrange(1 << 64)
        s = self.z.socket(PUSH, self.sink_ep)
        for m in malformed_messages(rng, job):
            self.send(s, [m], "sink malformed")
        for mtype, body in valid_bodies(rng).items():
            if mtype != RESULTS:      # well-formed, but not RESULTS
                self.send(s, [hdr(mtype, job) + body], "sink not results")
        self.send(s, [b"", b""], "sink multipart")
        self.send(s, [hdr(RESULTS, job) + items_body([((1 << 63), 1, b"x\n")]), b"more"],
                  "sink multipart")
        self.z.close(s)

    def run(self):
        rnd = 0
        try:
            while not self.stop.is_set():
                raw_attacks(self.vent_port, self.rng)
                raw_attacks(self.sink_port, self.rng)
                self.count("raw rounds")
                self.vent_round()
                self.sink_round()
                if rnd % 2 == 0:
                    self.greedy()
                rnd += 1
                self.stop.wait(0.15)
        except Exception as e:       # reported by the test, never silent
            self.errors.append(repr(e))
            raise

    def start(self):
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def finish(self):
        self.stop.set()
        self.thread.join(30)


#  Idle connections held open during the whole job.
class Idler:
    def __init__(self, ports):
        self.socks = []
        for p in ports:
            for payload in (b"", zmtp_greeting()[:10]):
                with contextlib.suppress(OSError):
                    s = socket.create_connection(("127.0.0.1", p), timeout=2)
                    if payload:
                        s.sendall(payload)
                    self.socks.append(s)

    def close(self):
        for s in self.socks:
            with contextlib.suppress(OSError):
                s.close()


# ---------------------------------------------------------------------------


LIBZMQ_ABORT = re.compile(r"[^\n]*\(src/[a-z_0-9]+\.cpp:\d+\)")
LOG_TIME = re.compile(rb"(\d\d-\d\d-\d\d \d\d:\d\d:\d\d)")


def per_second(stderr, pattern):
    """Lines of stderr matching pattern, counted per logged second."""
    counts = {}
    for line in stderr.split(b"\n"):
        if pattern in line:
            m = LOG_TIME.search(line)
            key = m.group(1) if m else b"?"
            counts[key] = counts.get(key, 0) + 1
    return counts


def tool_has_option(tf, cmd, opt):
    try:
        r = subprocess.run([tf, cmd, "--help"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return opt.encode() in r.stdout + r.stderr


class HostileTest(h.TFTestCase):

    def setUp(self):
        super().setUp()
        log("%s: TF_SEED=%d" % (self.id().split(".")[-1], self.seed))
        self.z = zmq_backend()
        self.hostile = None
        self.idler = None

    def tearDown(self):
        if self.hostile:
            self.hostile.finish()
        if self.idler:
            self.idler.close()
        with contextlib.suppress(Exception):
            self.z.term()
        super().tearDown()

    def start_job(self, n, window, vent_extra=(), sink_extra=()):
        items = [b"%06d %s" % (i, "".join(chr(self.rng.randint(0x20, 0x7e)) for _ in
                                           range(self.rng.randint(0, 60))).encode())
                 for i in range(n)]
        ref = b"".join(it[::-1] + b"\n" for it in items)
        inp = h.write(self.path("in.txt"), h.join_lines(items))
        outp = self.path("out.txt")
        vstats, sstats = self.path("vent-stats.json"), self.path("sink-stats.json")
        vep, sep = h.tcp_endpoint(), h.tcp_endpoint()
        hb = ["--heartbeat", "0.2", "--heartbeat-timeout", "1"]
        self.sink_stats = sstats if tool_has_option(self.tf, "sink", "--stats") else None
        vent = self.start_tf("ventilator", "--bind", vep, "-i", inp, "--stats", vstats,
                             "--window", str(window), "--no-progress", *hb, *vent_extra)
        sink = self.start_tf("sink", "--bind", sep, "--ventilator", vep, "-o", outp, *hb,
                             *(["--stats", sstats] if self.sink_stats else []), *sink_extra)
        script = 'sleep 0.00$((RANDOM%4)); printf "%s\\n" "$1" | rev'
        workers = [self.start_tf("worker", "--connect", vep, "--once", "-j", "2",
                                 "--", "bash", "-c", script, "_", "{}") for _ in range(2)]
        return items, ref, outp, vstats, vep, sep, vent, sink, workers

    def test_hostile_traffic_during_job(self):
        n, window = self.rng.randint(2500, 4000), 1024
        items, ref, outp, vstats, vep, sep, vent, sink, workers = self.start_job(n, window)
        log("backend %s, %d items, window %d" % (self.z.name, n, window))
        h.wait_for(lambda: h.file_size(outp) > 0, 30)
        self.idler = Idler([int(vep.rsplit(":", 1)[1]), int(sep.rsplit(":", 1)[1])])
        self.hostile = Hostile(self.z, self.rng, vep, sep, outp, n, window)
        host = socket.gethostname().encode()
        self.hostile.impersonate = [b"W%s:%d-%d" % (host, w.pid, k) for w in workers
                                    for k in (1, 2)]
        self.hostile.start()
        t0 = time.monotonic()
        rc = h.wait_proc(vent, JOB_TIMEOUT)
        self.hostile.finish()
        self.idler.close()
        took = time.monotonic() - t0
        if rc is None:
            self.fail("ventilator did not finish under hostile traffic in %ss (%d of %d written)"
                      "\nventilator: %s\nsink: %s" % (
                          JOB_TIMEOUT, h.read(outp).count(b"\n"), n,
                          self.stderr_of(vent)[-2500:], self.stderr_of(sink)[-1500:]))
        self.assertEqual(self.hostile.errors, [], "the hostile thread itself failed")
        verr, serr = self.stderr_of(vent), self.stderr_of(sink)
        #  Seen once in ~50 runs: the ventilator aborted inside libzmq
        #  ("Resource temporarily unavailable (src/zmtp_engine.cpp:446)").
        #  Reported as a bug; any other crash fails the test.
        for who, prc, perr in (("ventilator", rc, verr), ("sink", sink.poll(), serr)):
            m = LIBZMQ_ABORT.search(perr)
            if prc is not None and prc < 0 and m:
                self.skipTest("libzmq 4.3.4 (not taskfarm code) aborted the %s (signal %d) "
                              "under hostile ZMTP traffic, a rare upstream assertion: %s"
                              % (who, -prc, m.group(0)))
        self.assertEqual(rc, 0, "ventilator exit %s:\n%s" % (rc, verr[-3000:]))
        src = self.wait_exit(sink, 30, "sink")
        self.assertEqual(src, 0, "sink exit %s:\n%s" % (src, serr[-3000:]))
        for i, w in enumerate(workers):
            wrc = self.wait_exit(w, 30, "worker %d" % i)
            self.assertEqual(wrc, 0, "worker %d exit %s:\n%s" % (i, wrc, self.stderr_of(w)[-2000:]))
        self.assertBytesEqual(h.read(outp), ref)
        st = json.loads(h.read(vstats))
        self.assertEqual((st["items"], st["done"], st["failed"]), (n, n, 0))
        self.assertGreater(st["malformed_dropped"], 0, "ventilator counted nothing malformed")
        #  Malformed input is logged at a bounded rate (<= 5 lines/s each,
        #  so at most 10 within one logged second).
        vrate = per_second(verr.encode(), b"dropped malformed message")
        srate = per_second(serr.encode(), b"dropped malformed message")
        self.assertGreater(sum(srate.values()), 0, "sink logged no malformed message")
        self.assertLessEqual(max(vrate.values() or [0]), 10, "ventilator log rate: %s" % vrate)
        self.assertLessEqual(max(srate.values()), 10, "sink log rate: %s" % srate)
        sink_malformed = None
        if self.sink_stats and os.path.exists(self.sink_stats):
            with contextlib.suppress(ValueError, KeyError):
                sink_malformed = json.loads(h.read(self.sink_stats))["malformed_dropped"]
            if sink_malformed is not None:
                self.assertGreater(sink_malformed, 0)
        sent = ", ".join("%s=%d" % kv for kv in sorted(self.hostile.counts.items()))
        log("job done in %.1fs under fire; sent: %s; greedy peer took %d items"
            % (took, sent, self.hostile.greedy_items))
        log("ventilator: malformed_dropped=%s resent_lost_worker=%s workers_seen=%s "
            "workers_lost=%s loss_detect_ms=%s; sink: malformed_dropped=%s; log lines/s "
            "max vent=%d sink=%d" % (st["malformed_dropped"], st["resent_lost_worker"],
                                     st.get("workers_seen"), st["workers_lost"],
                                     st["loss_detect_ms"], sink_malformed,
                                     max(vrate.values() or [0]), max(srate.values())))

    def check_sink_hijack(self, resume_from, endpoint):
        """A stranger registers as the sink with a well-formed SINK_HELLO."""
        n, window = 1500, 1024
        items, ref, outp, vstats, vep, sep, vent, sink, workers = self.start_job(n, window)
        h.wait_for(lambda: h.file_size(outp) > 0, 30)
        s = self.z.socket(DEALER, vep)
        self.z.send(s, [hdr(SINK_HELLO) + struct.pack(">Q", resume_from) + sstr(endpoint)])
        time.sleep(1.0)
        self.z.close(s)
        rc = h.wait_proc(vent, 45)
        written = h.read(outp)
        problem = None
        if rc is None:
            problem = "the job hangs (%d of %d results written after 45 s)" % (
                written.count(b"\n"), n)
        elif rc != 0:
            problem = "ventilator exit %s" % rc
        else:
            src = h.wait_proc(sink, 30)
            if src != 0:
                problem = "sink exit %s" % src
            elif written != ref:
                problem = "output differs: " + h.first_diff(written, ref)
        #  One sink per job: a second SINK_HELLO is refused while the
        #  registered sink is alive.
        if problem:
            self.fail("a well-formed SINK_HELLO(resume_from=%d, %s) from a stranger during a "
                      "job: %s" % (resume_from, endpoint.decode(), problem))

    def test_sink_hijack_plain(self):
        self.check_sink_hijack(0, b"tcp://127.0.0.1:1")

    def test_sink_hijack_resume_from(self):
        self.check_sink_hijack(1 << 40, b"tcp://127.0.0.1:1")

    def test_first_credit_rides_on_hello(self):
        """A HELLO's optional credit brings items right behind the WELCOME,
        at most one per slot; a HELLO without it brings none (credit only
        where asked for)."""
        inp = h.write(self.path("in.txt"), h.join_lines([b"%d" % i for i in range(50)]))
        vep, sep = h.tcp_endpoint(), h.tcp_endpoint()
        hb = ["--heartbeat", "0.2", "--heartbeat-timeout", "1"]
        self.start_tf("ventilator", "--bind", vep, "-i", inp, "--no-progress", *hb)
        self.start_tf("sink", "--bind", sep, "--ventilator", vep, "-o", self.path("out"), *hb)

        def join(slots, credit):
            """Says HELLO; returns (welcomed, items received within 1 s)."""
            s = self.z.socket(DEALER, vep)
            body = struct.pack(">I", slots) + sstr(b"raw:%d" % slots)
            if credit is not None:
                body += struct.pack(">I", credit)
            self.z.send(s, [hdr(HELLO) + body])
            welcomed, items = False, 0
            deadline = time.monotonic() + (10 if credit is None else 3)
            while time.monotonic() < deadline:
                fr = self.z.recv(s, 0.2)
                if not fr or len(fr[-1]) < 12 or fr[-1][:2] != b"TF":
                    if welcomed and time.monotonic() > quiet_until[0]:
                        break
                    continue
                if fr[-1][3] == WELCOME:
                    welcomed = True
                    quiet_until[0] = time.monotonic() + 1.0
                elif fr[-1][3] == TASKS:
                    self.assertTrue(welcomed, "TASKS before WELCOME")
                    items += struct.unpack(">I", fr[-1][12:16])[0]
            self.z.close(s)
            return welcomed, items
        quiet_until = [0.0]
        self.assertEqual(join(2, 2), (True, 2), "HELLO asking for 2 on 2 slots")
        self.assertEqual(join(1, 50), (True, 1), "HELLO asking for 50 on 1 slot")
        self.assertEqual(join(2, None), (True, 0), "HELLO without a credit")


if __name__ == "__main__":
    unittest.main(verbosity=2)
