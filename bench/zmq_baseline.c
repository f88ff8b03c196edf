/*  zmq_baseline.c -- the ceiling for taskfarm's throughput: raw ZeroMQ
    moving small messages between processes on this box, with nothing else
    (no protocol, no batching, no ordering, no acknowledgements).

    Usage: zmq_baseline hop|relay ipc|tcp [COUNT [SIZE]]

      hop    a sender process PUSHes COUNT messages to a receiver that PULLs
      relay  sender PUSH -> relay PULL/PUSH -> receiver PULL (two hops, the
             shape of ventilator -> worker -> sink)

    Each message is SIZE bytes (default 8, at least 8) and carries its
    sequence number; the receiver checks that all COUNT arrive, in order,
    exactly once. It times from the first message received to the last
    (like libzmq's local_thr) and prints one JSON line:
      {"mode":"hop","transport":"ipc","count":N,"size":8,"seconds":S,"msgs_per_s":R,"ok":true}
    Exit status 0 only if the check passed. Endpoints: ipc:// in a fresh
    temporary directory, or tcp://127.0.0.1 on a kernel-chosen port; nothing
    leaves this machine.
*/
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void s_die(const char *what)
{
    fprintf(stderr, "zmq_baseline: %s: %s\n", what, zmq_strerror(zmq_errno()));
    exit(1);
}

/* Bind SOCK to a fresh endpoint of TRANSPORT; the endpoint peers connect to
   is written to OUT. */
static void s_bind(void *sock, const char *transport, const char *dir, const char *name, char *out,
                   size_t cap)
{
    char ep[512];
    if (strcmp(transport, "ipc") == 0)
        snprintf(ep, sizeof ep, "ipc://%s/%s", dir, name);
    else
        snprintf(ep, sizeof ep, "tcp://127.0.0.1:*");
    if (zmq_bind(sock, ep) != 0)
        s_die("bind");
    size_t len = cap;
    if (zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, out, &len) != 0)
        s_die("getsockopt LAST_ENDPOINT");
}

/* Write ends of the "hold" pipes: a child that bound a socket keeps it
   open until the receiver has everything (EOF on its hold pipe). libzmq
   4.3 can drop messages still queued on a *bound* PUSH when it closes,
   linger or not, so a stage must not close before its peer has read all. */
static int hold_w[2];
static int nhold;

static void s_wait_release(int fd)
{
    char c;
    while (read(fd, &c, 1) > 0)
        ;
    close(fd);
}

/* Tell the parent which endpoint a child bound (NUL-terminated). */
static void s_tell(int fd, const char *ep)
{
    size_t len = strlen(ep) + 1;
    if (write(fd, ep, len) != (ssize_t)len)
        _exit(1);
    close(fd);
}

/* Read the endpoint a child bound; 0 if it died first. */
static int s_hear(int fd, char *ep, size_t cap)
{
    size_t got = 0;
    ssize_t r;
    while (got < cap - 1 && (r = read(fd, ep + got, cap - 1 - got)) > 0)
        got += (size_t)r;
    ep[got] = 0;
    close(fd);
    return got > 0;
}

/* The sender binds a PUSH on a fresh endpoint, reports it on READY_FD and
   sends COUNT numbered messages (PUSH blocks until a peer is connected, so
   none is dropped). */
static void s_sender(const char *transport, const char *dir, int ready_fd, int hold_fd, long count,
                     size_t size)
{
    void *ctx = zmq_ctx_new();
    void *push = zmq_socket(ctx, ZMQ_PUSH);
    int linger = -1;
    zmq_setsockopt(push, ZMQ_LINGER, &linger, sizeof linger);
    char ep[512];
    s_bind(push, transport, dir, "src", ep, sizeof ep);
    s_tell(ready_fd, ep);
    char *buf = calloc(1, size);
    for (long i = 0; i < count; i++) {
        uint64_t seq = (uint64_t)i;
        memcpy(buf, &seq, sizeof seq);
        if (zmq_send(push, buf, size, 0) < 0)
            s_die("send");
    }
    free(buf);
    s_wait_release(hold_fd);
    zmq_close(push);
    zmq_ctx_term(ctx);
    _exit(0);
}

/* The relay connects a PULL to IN_EP, binds a PUSH on a fresh endpoint,
   reports it on READY_FD and forwards COUNT messages. */
static void s_relay(const char *transport, const char *dir, int ready_fd, int hold_fd,
                    const char *in_ep, long count, size_t size)
{
    void *ctx = zmq_ctx_new();
    void *pull = zmq_socket(ctx, ZMQ_PULL);
    void *push = zmq_socket(ctx, ZMQ_PUSH);
    int linger = -1;
    zmq_setsockopt(push, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(pull, in_ep) != 0)
        s_die("relay connect");
    char out_ep[512];
    s_bind(push, transport, dir, "relay", out_ep, sizeof out_ep);
    s_tell(ready_fd, out_ep);
    char *buf = malloc(size + 1);
    for (long i = 0; i < count; i++) {
        int n = zmq_recv(pull, buf, size + 1, 0);
        if (n < 0)
            s_die("relay recv");
        if (zmq_send(push, buf, (size_t)n, 0) < 0)
            s_die("relay send");
    }
    free(buf);
    s_wait_release(hold_fd);
    zmq_close(pull);
    zmq_close(push);
    zmq_ctx_term(ctx);
    _exit(0);
}

/* Fork a child that runs one stage and reports its bound endpoint in EP. */
static pid_t s_spawn(int relay, const char *transport, const char *dir, const char *in_ep,
                     long count, size_t size, char *ep, size_t cap)
{
    int ready[2], hold[2];
    if (pipe(ready) != 0 || pipe(hold) != 0) {
        perror("zmq_baseline: pipe");
        exit(1);
    }
    pid_t p = fork();
    if (p < 0) {
        perror("zmq_baseline: fork");
        exit(1);
    }
    if (p == 0) {
        close(ready[0]);
        close(hold[1]);
        for (int k = 0; k < nhold; k++)
            close(hold_w[k]);
        if (relay)
            s_relay(transport, dir, ready[1], hold[0], in_ep, count, size);
        else
            s_sender(transport, dir, ready[1], hold[0], count, size);
    }
    close(ready[1]);
    close(hold[0]);
    hold_w[nhold++] = hold[1];
    if (!s_hear(ready[0], ep, cap)) {
        fprintf(stderr, "zmq_baseline: a child failed to start\n");
        exit(1);
    }
    return p;
}

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[1], "hop") && strcmp(argv[1], "relay")) ||
        (strcmp(argv[2], "ipc") && strcmp(argv[2], "tcp"))) {
        fprintf(stderr, "usage: zmq_baseline hop|relay ipc|tcp [COUNT [SIZE]]\n");
        return 2;
    }
    const char *mode = argv[1], *transport = argv[2];
    long count = argc > 3 ? strtol(argv[3], NULL, 10) : 1000000;
    long lsize = argc > 4 ? strtol(argv[4], NULL, 10) : 8;
    if (count < 2 || lsize < 8 || lsize > (1 << 20)) {
        fprintf(stderr, "zmq_baseline: COUNT must be >= 2 and 8 <= SIZE <= 1 MiB\n");
        return 2;
    }
    size_t size = (size_t)lsize;
    int relay = strcmp(mode, "relay") == 0;

    char dir[] = "/tmp/zmq_baseline.XXXXXX";
    if (strcmp(transport, "ipc") == 0 && !mkdtemp(dir)) {
        perror("zmq_baseline: mkdtemp");
        return 1;
    }

    /* Every child is forked before this process creates its own ZeroMQ
       context (a context must not cross a fork). Children bind, the
       receiver connects. */
    pid_t kids[2];
    int nkids = 0;
    char src_ep[512], last_ep[512];
    kids[nkids++] = s_spawn(0, transport, dir, NULL, count, size, src_ep, sizeof src_ep);
    if (relay)
        kids[nkids++] = s_spawn(1, transport, dir, src_ep, count, size, last_ep, sizeof last_ep);
    else
        strcpy(last_ep, src_ep);

    void *ctx = zmq_ctx_new();
    void *pull = zmq_socket(ctx, ZMQ_PULL);
    if (zmq_connect(pull, last_ep) != 0)
        s_die("connect");

    char *buf = malloc(size + 1);
    double t0 = 0, t1 = 0;
    int ok = 1;
    long got = 0;
    for (long i = 0; i < count; i++) {
        int n = zmq_recv(pull, buf, size + 1, 0);
        if (n < 0)
            s_die("recv");
        if (i == 0)
            t0 = s_now();
        uint64_t seq;
        memcpy(&seq, buf, sizeof seq);
        if ((size_t)n != size || seq != (uint64_t)i)
            ok = 0;
        got++;
    }
    t1 = s_now();
    free(buf);
    for (int k = 0; k < nhold; k++)
        close(hold_w[k]);
    for (int k = 0; k < nkids; k++) {
        int st;
        if (waitpid(kids[k], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            ok = 0;
    }
    zmq_close(pull);
    zmq_ctx_term(ctx);
    if (strcmp(transport, "ipc") == 0) {
        char path[600];
        snprintf(path, sizeof path, "%s/src", dir);
        unlink(path);
        snprintf(path, sizeof path, "%s/relay", dir);
        unlink(path);
        rmdir(dir);
    }
    double secs = t1 - t0;
    printf("{\"mode\":\"%s\",\"transport\":\"%s\",\"count\":%ld,\"size\":%zu,\"seconds\":%.6f,"
           "\"msgs_per_s\":%.1f,\"ok\":%s}\n",
           mode, transport, got, size, secs, secs > 0 ? (double)(count - 1) / secs : 0.0,
           ok ? "true" : "false");
    if (!ok)
        fprintf(stderr, "zmq_baseline: messages lost, duplicated or out of order\n");
    return ok ? 0 : 1;
}
