/*  tf_worker.c -- the worker: asks the ventilator for items by credit, runs
    them in N slots, sends results to the sink and reports completions.

    Exec mode: one child per item (posix_spawn, no shell), the item on its
    stdin and in place of {}; the result is its whole stdout.
    Pipe mode: one long-lived co-process per slot on a raw pseudo-terminal
    (or pipes with --no-pty); items are written one per line, and each line
    it answers is the result of the oldest unanswered item.
*/
#define _GNU_SOURCE
#include "tf_worker.h"

#include "taskfarm_plugin.h"
#include "tf_curve.h"
#include "tf_fnslot.h"
#include "tf_log.h"
#include "tf_net.h"
#include "tf_proc.h"
#include "tf_proto.h"
#include "tf_signal.h"
#include "tf_slab.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_READ_CHUNK (64 * 1024)
#define S_RESULTS_FLUSH (256 * 1024)
//  How long a dropped results connection waits to be reported (s_sink_dropped).
#define S_SINK_DROP_GRACE_MS 50
#define S_PROBE_CONFIRM_MS 5 //  auto mode: waiting unanswered this long = buffering
#define S_STALL_CHECK_MS 500 //  stall checks: interval, and how long the state must last
#define S_PREFETCH_US 5000   //  keep about this much work queued per slot
#define S_FIRST_WAIT_US 5000 //  first items running this long: fetch the next
#define S_MAX_PREFETCH 8192
#define S_PIPE_DEPTH 4096       //  items inside one co-process at most
#define S_PIPE_WBUF (64 * 1024) //  bytes queued for one co-process at most
#define S_BALANCE_MIN_US 1000   //  items this long go to the slot free first
#define S_FLUSH_DELAY_US 1000   //  results may wait this long for company

typedef struct s_task {
    struct s_task *next;
    void *block; //  slab block holding this task
    uint64_t job;
    uint64_t session;
    uint64_t seq;
    uint32_t attempt;
    uint32_t len;
    int64_t start_us; //  when it started running (became head, in pipe mode)
    uint8_t data[];
} s_task_t;

typedef struct {
    s_task_t *head;
    s_task_t *tail;
    size_t count;
} s_queue_t;

static void s_q_push(s_queue_t *q, s_task_t *t)
{
    t->next = NULL;
    if (q->tail)
        q->tail->next = t;
    else
        q->head = t;
    q->tail = t;
    q->count++;
}

static void s_q_push_front(s_queue_t *q, s_task_t *t)
{
    t->next = q->head;
    q->head = t;
    if (!q->tail)
        q->tail = t;
    q->count++;
}

//  Moves all of `from` in front of `q`, in order; `from` is left empty.
static void s_q_prepend(s_queue_t *q, s_queue_t *from)
{
    if (!from->head)
        return;
    from->tail->next = q->head;
    q->head = from->head;
    if (!q->tail)
        q->tail = from->tail;
    q->count += from->count;
    memset(from, 0, sizeof *from);
}

static s_task_t *s_q_pop(s_queue_t *q)
{
    s_task_t *t = q->head;
    if (!t)
        return NULL;
    q->head = t->next;
    if (!q->head)
        q->tail = NULL;
    q->count--;
    t->next = NULL;
    return t;
}

//  Tasks come from the worker's slab (one worker, one thread).
static void s_task_free(tf_slab_t *slab, s_task_t *t)
{
    tf_slab_release(slab, t->block, t);
}

static void s_q_clear(tf_slab_t *slab, s_queue_t *q)
{
    s_task_t *t;
    while ((t = s_q_pop(q)))
        s_task_free(slab, t);
}

typedef struct {
    int index;
    pid_t pid;
    int pidfd;
    bool exited;
    int wstatus;
    //  exec mode
    s_task_t *task;
    int in_fd;
    size_t in_off;
    int out_fd;
    bool out_eof;
    tf_buf_t out;
    int64_t deadline_ms;
    int kill_status; //  TF_ST_TIMEOUT / TF_ST_TOOBIG when we killed it
    //  pipe mode
    int wfd;
    int rfd;
    tf_buf_t wbuf;
    tf_buf_t rbuf;
    size_t rscan;
    s_queue_t outstanding;
    int64_t head_since_ms;
    //  First seen waiting for input while owing answers, since the head
    //  item started (0: not seen so). Probe and stall checks both read it.
    int64_t waiting_since_ms;
    bool probing;      //  on pipes, not yet seen to answer (auto mode)
    bool feed_blocked; //  s_pipe_start: took no item this round
    bool ending;       //  s_pipe_close_idle: told to end, not yet gone
    //  function mode (plugin, library)
    tf_fnslot_t *fns;
} s_slot_t;

typedef enum { S_JOINING, S_ACTIVE } s_state_t;

struct _tf_worker_t {
    const tf_config_t *cfg;
    char *path; //  resolved command
    bool braces;
    bool pipe;
    bool fnmode;
    tf_fn_t fn;
    void *dl; //  dlopen handle of --plugin
    atomic_bool stop;
    char delim;
    int nslots;
    s_slot_t *slots;
    //  session with the ventilator
    zsock_t *dealer;
    zsock_t *watch;      //  the dealer's connection events (tf_net_watch)
    bool linked;         //  this session's connection got through its handshake
    zsock_t *push_watch; //  the same for the results socket
    bool push_linked;
    int64_t sink_drop_ms; //  when the results connection dropped mid-job (0: it did not)
    zsock_t *push;
    char push_ep[TF_MAX_ENDPOINT + 1];
    char vent_host[256];
    s_state_t state;
    uint64_t session;
    uint64_t job;
    uint32_t hb_ivl;
    uint32_t hb_timeout;
    int64_t timeout_ms;
    uint32_t max_result;
    int64_t last_heard;
    int64_t next_hb;
    int64_t next_hello;
    int64_t session_start;
    int64_t outstanding_credit;
    double avg_us;
    bool cost_known; //  an item has completed: avg_us means something
    s_queue_t queue;
    tf_slab_t *slab; //  tasks
    //  outgoing batches
    tf_buf_t results;
    uint32_t results_count;
    int64_t results_first_us; //  when the oldest unsent result was made
    uint64_t results_job;
    tf_buf_t report;
    uint32_t report_count;
    tf_buf_t msg;
    tf_limits_t limits;
    tf_ratelimit_t rl;
    tf_rx_t rx;
    char name[TF_MAX_NAME + 1];
    bool job_ended;
    int64_t next_stall_check;
    int64_t now_us;       //  clock read once per loop turn, for per-item stamps
    bool draining;        //  stopping: no new items, finishing the running ones
    bool learned_pty;     //  auto mode found that the command buffers on pipes
    uint64_t ended_job;   //  the last job we were told is over
    int64_t last_contact; //  last message from any ventilator
    bool gave_up;
    size_t handed_back;
    tf_curve_client_t *curve; //  CURVE keys, when configured
    uint32_t hello_credit;    //  items asked for with this session's HELLO
};

//  --------------------------------------------------------------------------
//  Setup

//  Adapts the plugin ABI (init without a user pointer) to tf_fn_t.
static int s_plugin_init(int rank, void *user, void **state)
{
    const taskfarm_plugin_t *p = user;
    return p->init ? p->init(rank, state) : 0;
}

//  Loads and checks a plugin. Returns its description, or NULL with a
//  one-line error; *dl_p is the handle to dlclose.
static const taskfarm_plugin_t *s_plugin_open(const char *path, void **dl_p, char *err,
                                              size_t errlen)
{
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    *dl_p = dl;
    if (!dl) {
        const char *why = dlerror();
        snprintf(err, errlen, "--plugin: cannot load '%s': %s", path, why ? why : "unknown error");
        return NULL;
    }
    taskfarm_plugin_fn *entry;
    *(void **)(&entry) = dlsym(dl, TASKFARM_PLUGIN_SYMBOL);
    if (!entry) {
        snprintf(err, errlen, "--plugin: '%s' does not export %s()", path, TASKFARM_PLUGIN_SYMBOL);
        return NULL;
    }
    const taskfarm_plugin_t *p = entry();
    if (!p || p->abi != TASKFARM_PLUGIN_ABI || !p->map) {
        snprintf(err, errlen, "--plugin: '%s' has plugin ABI %d (expected %d) or no map function",
                 path, p ? p->abi : -1, TASKFARM_PLUGIN_ABI);
        return NULL;
    }
    return p;
}

int tf_worker_check_plugin(const char *path, char *err, size_t errlen)
{
    void *dl = NULL;
    const taskfarm_plugin_t *p = s_plugin_open(path, &dl, err, errlen);
    if (dl)
        dlclose(dl);
    return p ? 0 : -1;
}

static int s_load_plugin(tf_worker_t *self, const char *path, char *err, size_t errlen)
{
    const taskfarm_plugin_t *p = s_plugin_open(path, &self->dl, err, errlen);
    if (!p)
        return -1;
    self->fn.init = s_plugin_init;
    self->fn.map = p->map;
    self->fn.fini = p->fini;
    self->fn.user = (void *)(uintptr_t)p;
    return 0;
}

static tf_worker_t *s_new(const tf_config_t *cfg, const tf_fn_t *fn, char *err, size_t errlen)
{
    tf_worker_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->cfg = cfg;
    self->pipe = cfg->pipe;
    self->delim = cfg->null_sep ? '\0' : '\n';
    self->nslots = cfg->workers > 0 ? (int)cfg->workers : tf_online_cpus();
    self->hb_ivl = (uint32_t)cfg->heartbeat_ms;
    self->hb_timeout = (uint32_t)cfg->heartbeat_timeout_ms;
    self->max_result = (uint32_t)cfg->max_result;
    atomic_init(&self->stop, false);
    self->slab = tf_slab_new(256 * 1024, 4096);
    if (!self->slab) {
        snprintf(err, errlen, "out of memory");
        free(self);
        return NULL;
    }
    tf_buf_init(&self->results);
    tf_buf_init(&self->report);
    tf_buf_init(&self->msg);
    tf_rx_init(&self->rx);
    tf_limits_default(&self->limits);
    self->limits.max_item = (uint32_t)cfg->max_item;
    self->slots = calloc((size_t)self->nslots, sizeof *self->slots);
    if (!self->slots) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int i = 0; i < self->nslots; i++) {
        s_slot_t *s = &self->slots[i];
        s->index = i;
        s->pidfd = s->in_fd = s->out_fd = s->wfd = s->rfd = -1;
        tf_buf_init(&s->out);
        tf_buf_init(&s->wbuf);
        tf_buf_init(&s->rbuf);
    }
    if (fn) {
        self->fn = *fn;
        self->fnmode = true;
    } else if (cfg->plugin) {
        if (s_load_plugin(self, cfg->plugin, err, errlen))
            goto fail;
        self->fnmode = true;
    } else {
        if (cfg->argc == 0) {
            snprintf(err, errlen, "worker: missing COMMAND");
            goto fail;
        }
        self->path = tf_proc_which(cfg->argv[0]);
        if (!self->path) {
            snprintf(err, errlen, "worker: command '%s' %s", cfg->argv[0],
                     errno == EACCES ? "is not executable" : "not found");
            goto fail;
        }
        self->braces = tf_proc_has_braces(cfg->argv, cfg->argc);
    }
    if (self->fnmode) {
        self->pipe = false;
        for (int i = 0; i < self->nslots; i++) {
            self->slots[i].fns = tf_fnslot_new(i, &self->fn, err, errlen);
            if (!self->slots[i].fns)
                goto fail;
        }
    }
    if (cfg->curve_client_key || cfg->curve_server_public) {
        self->curve =
            tf_curve_client_new(cfg->curve_client_key, cfg->curve_server_public, err, errlen);
        if (!self->curve)
            goto fail;
    }
    char host[200] = "localhost";
    gethostname(host, sizeof host - 1);
    snprintf(self->name, sizeof self->name, "%s:%d", host, (int)getpid());
    tf_net_host_of(cfg->connect ? cfg->connect : "", self->vent_host, sizeof self->vent_host);
    return self;
fail:
    tf_worker_destroy(&self);
    return NULL;
}

tf_worker_t *tf_worker_new(const tf_config_t *cfg, char *err, size_t errlen)
{
    return s_new(cfg, NULL, err, errlen);
}

tf_worker_t *tf_worker_new_fn(const tf_config_t *cfg, const tf_fn_t *fn, char *err, size_t errlen)
{
    return s_new(cfg, fn, err, errlen);
}

void tf_worker_stop(tf_worker_t *self)
{
    atomic_store(&self->stop, true);
}

static void s_close(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

//  Collects the exit of the slot's child if it has ended: true once it has.
static bool s_try_reap(s_slot_t *s)
{
    if (!s->exited && s->pid > 0 && waitpid(s->pid, &s->wstatus, WNOHANG) == s->pid) {
        tf_signal_untrack(s->pid);
        s->exited = true;
    }
    return s->exited;
}

//  Waits for the slot's child to end (it has been killed) and collects its
//  exit status.
static void s_reap(s_slot_t *s)
{
    if (s->pid > 0 && !s->exited) {
        waitpid(s->pid, &s->wstatus, 0);
        tf_signal_untrack(s->pid);
        s->exited = true;
    }
}

//  Kills the slot's child (and its process group) unless it has ended, and
//  collects its exit status.
static void s_kill_reap(s_slot_t *s)
{
    if (s->pid > 0 && !s->exited)
        tf_proc_kill(s->pid);
    s_reap(s);
}

//  Forgets the slot's child (reaped or never started): closes every
//  descriptor the slot holds on it (exec or pipe mode).
static void s_slot_close(s_slot_t *s)
{
    s->pid = 0;
    s->exited = false;
    if (s->wfd == s->rfd)
        s->rfd = -1; //  one pty master for both ways
    s_close(&s->wfd);
    s_close(&s->rfd);
    s_close(&s->in_fd);
    s_close(&s->out_fd);
    s_close(&s->pidfd);
}

//  Reads what `fd` holds into `b`: at most `rounds` chunks of S_READ_CHUNK
//  (-1: until it would block), no more once b->len exceeds `cap`. True when
//  the other end is closed (EOF) or reading failed.
static bool s_read_into(int fd, tf_buf_t *b, int rounds, size_t cap)
{
    for (int k = 0; rounds < 0 || k < rounds; k++) {
        if (b->len > cap || tf_buf_reserve(b, S_READ_CHUNK))
            return false;
        ssize_t n = read(fd, b->data + b->len, S_READ_CHUNK);
        if (n > 0) {
            b->len += (size_t)n;
            continue;
        }
        return n == 0 || (errno != EAGAIN && errno != EINTR);
    }
    return false;
}

//  True when the slot's child has ended. It is left a zombie (WNOWAIT):
//  until s_reap, its id, and so its process group's, cannot be reused.
static bool s_child_ended(const s_slot_t *s)
{
    if (s->pid <= 0 || s->exited)
        return true;
    siginfo_t si;
    si.si_pid = 0;
    return waitid(P_PID, (id_t)s->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid != 0;
}

//  An idle co-process ends the way a filter does. On pipes its stdin is
//  closed (EOF). On a pty, whose raw mode has no end-of-file character and
//  whose closed master reads as an I/O error, its process group gets
//  SIGTERM. Either way it has TF_COPROC_GRACE_MS to exit; what it still
//  writes is read and dropped, so that it cannot block on a full pipe. One
//  that holds items (the worker is leaving before they are done) is not
//  waited for.
static void s_pipe_close_idle(tf_worker_t *self)
{
    if (!self->pipe || !self->slots)
        return;
    int waiting = 0;
    for (int i = 0; i < self->nslots; i++) {
        s_slot_t *s = &self->slots[i];
        s->ending = false;
        if (s->pid <= 0 || s->exited || s->outstanding.count > 0)
            continue;
        if (s->wfd == s->rfd) {
            //  Its group (it leads a session), once: a second TERM would cut
            //  its clean-up short. The pid alone if the group is gone.
            if (kill(-s->pid, SIGTERM) != 0)
                kill(s->pid, SIGTERM);
        } else
            s_close(&s->wfd);
        s->ending = true;
        waiting++;
    }
    //  Per slot: its output (owner = slot) and its pidfd (owner = -1).
    struct pollfd *pfd = waiting ? calloc(2 * (size_t)self->nslots, sizeof *pfd) : NULL;
    int *owner = pfd ? calloc(2 * (size_t)self->nslots, sizeof *owner) : NULL;
    int64_t deadline = tf_now_ms() + TF_COPROC_GRACE_MS;
    while (owner) {
        nfds_t n = 0;
        bool blind = false; //  an exit we would not hear of (no pidfd): look every 1 ms
        waiting = 0;
        for (int i = 0; i < self->nslots; i++) {
            s_slot_t *s = &self->slots[i];
            if (!s->ending || s_child_ended(s))
                continue;
            waiting++;
            if (s->rfd >= 0) {
                pfd[n] = (struct pollfd){s->rfd, POLLIN, 0};
                owner[n++] = i;
            }
            if (s->pidfd >= 0) {
                pfd[n] = (struct pollfd){s->pidfd, POLLIN, 0};
                owner[n++] = -1;
            } else
                blind = true;
        }
        int64_t left = deadline - tf_now_ms();
        if (waiting == 0 || left <= 0)
            break;
        if (poll(pfd, n, blind ? 1 : (int)left) <= 0)
            continue;
        for (nfds_t k = 0; k < n; k++) {
            if (owner[k] < 0 || !pfd[k].revents)
                continue;
            s_slot_t *s = &self->slots[owner[k]];
            char drop[4096];
            ssize_t r = read(s->rfd, drop, sizeof drop);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                if (s->wfd == s->rfd)
                    s->wfd = -1; //  one pty master for both ways
                s_close(&s->rfd);
            }
        }
    }
    free(pfd);
    free(owner);
}

void tf_worker_destroy(tf_worker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    tf_worker_t *self = *self_p;
    s_pipe_close_idle(self);
    //  Every child is told first, so that they die together, not one by one.
    //  The process group goes too (what a co-process left running), also for
    //  a co-process that ended above: not yet reaped, its id is still ours.
    for (int i = 0; self->slots && i < self->nslots; i++)
        if (self->slots[i].pid > 0 && !self->slots[i].exited)
            tf_proc_kill(self->slots[i].pid);
    for (int i = 0; self->slots && i < self->nslots; i++) {
        s_slot_t *s = &self->slots[i];
        s_reap(s);
        s_slot_close(s);
        tf_fnslot_destroy(&s->fns); //  waits for a running map call
        if (s->task)
            s_task_free(self->slab, s->task);
        s_q_clear(self->slab, &s->outstanding);
        tf_buf_free(&s->out);
        tf_buf_free(&s->wbuf);
        tf_buf_free(&s->rbuf);
    }
    free(self->slots);
    s_q_clear(self->slab, &self->queue);
    tf_slab_destroy(&self->slab);
    tf_rx_close(&self->rx);
    tf_net_unwatch(self->dealer, &self->watch);
    zsock_destroy(&self->dealer);
    tf_net_unwatch(self->push, &self->push_watch);
    zsock_destroy(&self->push);
    tf_buf_free(&self->results);
    tf_buf_free(&self->report);
    tf_buf_free(&self->msg);
    free(self->path);
    if (self->dl)
        dlclose(self->dl);
    tf_curve_client_destroy(&self->curve);
    free(self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Outgoing: results to the sink, completions + credit to the ventilator

static void s_results_flush(tf_worker_t *self)
{
    if (self->results_count == 0)
        return;
    tf_enc_batch_finish(&self->results, self->results_count);
    if (self->push && tf_net_send(self->push, NULL, 0, self->results.data, self->results.len) != 0)
        //  Lost here means re-sent by the ventilator after its ack timeout.
        tf_debug("worker: results not sent: %s", zmq_strerror(zmq_errno()));
    self->results_count = 0;
    self->results.len = 0;
}

//  Adds a result record; the data is written by the caller into the
//  returned space.
static uint8_t *s_result_reserve(tf_worker_t *self, const s_task_t *t, size_t len)
{
    if (self->results_count > 0 &&
        (self->results_job != t->job || self->results.len + len > S_RESULTS_FLUSH))
        s_results_flush(self);
    if (self->results_count == 0) {
        if (tf_enc_batch_begin(&self->results, TF_MSG_RESULTS, t->job))
            return NULL;
        self->results_job = t->job;
        self->results_first_us = self->now_us;
    }
    uint8_t *p = tf_enc_item_reserve(&self->results, t->seq, t->attempt, (uint32_t)len);
    if (p)
        self->results_count++;
    return p;
}

//  Adds the result of `t`: `len` bytes at `data`.
static void s_result_add(tf_worker_t *self, const s_task_t *t, const uint8_t *data, size_t len)
{
    uint8_t *p = s_result_reserve(self, t, len);
    if (p && len)
        memcpy(p, data, len);
}

static void s_report(tf_worker_t *self, const s_task_t *t, int status, uint32_t detail)
{
    int64_t now = self->now_us;
    int64_t dur = now - t->start_us;
    if (dur < 0)
        dur = 0;
    if (status == TF_ST_OK || status == TF_ST_EXIT) {
        //  Exponential moving average of item cost, for the credit size.
        double d = (double)dur;
        self->avg_us = self->cost_known ? self->avg_us * 0.9 + d * 0.1 : d;
        self->cost_known = true;
    }
    if (t->session != self->session || self->state != S_ACTIVE)
        return; //  that session is gone; the ventilator re-leased the item
    if (self->report_count == 0 && tf_enc_report_begin(&self->report, self->job, 0))
        return;
    tf_done_t d = {t->seq, t->attempt, (uint8_t)status, detail,
                   (uint32_t)(dur > UINT32_MAX ? UINT32_MAX : dur)};
    if (tf_enc_done(&self->report, &d) == 0)
        self->report_count++;
}

//  Stopping: every item of `q` goes back to the ventilator uncharged.
static void s_hand_back(tf_worker_t *self, s_queue_t *q)
{
    s_task_t *t;
    while ((t = s_q_pop(q))) {
        s_report(self, t, TF_ST_REQUEUE, 0);
        s_task_free(self->slab, t);
        self->handed_back++;
    }
}

static size_t s_running(tf_worker_t *self)
{
    size_t n = 0;
    for (int i = 0; i < self->nslots; i++) {
        s_slot_t *s = &self->slots[i];
        n += s->task ? 1 : 0;
        n += s->outstanding.count;
    }
    return n;
}

//  Before any item has completed: when every slot will have run its first
//  item for S_FIRST_WAIT_US (INT64_MAX: some slot is idle). Items that long
//  are not tiny: each slot gets its next item at hand, so that it does not
//  idle for a round trip to the ventilator after the first one.
static int64_t s_first_wait_at(tf_worker_t *self)
{
    int64_t at = 0;
    for (int i = 0; i < self->nslots; i++) {
        const s_slot_t *s = &self->slots[i];
        const s_task_t *t = s->task ? s->task : s->outstanding.head;
        if (!t)
            return INT64_MAX;
        if (t->start_us + S_FIRST_WAIT_US > at)
            at = t->start_us + S_FIRST_WAIT_US;
    }
    return at;
}

static int64_t s_target(tf_worker_t *self)
{
    //  Until an item has completed its cost is unknown: one item per slot,
    //  so that workers joining a moment later still find items to start
    //  (no early joiner hoards a prefetch of long tasks); a second one per
    //  slot once the first ones have run S_FIRST_WAIT_US.
    if (!self->cost_known)
        return self->now_us >= s_first_wait_at(self) ? 2 * (int64_t)self->nslots : self->nslots;
    //  Then about S_PREFETCH_US of work queued per slot, at least one item
    //  (items that finish within one clock tick count as 1 us).
    double avg = self->avg_us < 1 ? 1 : self->avg_us;
    double e = (double)self->nslots * S_PREFETCH_US / avg;
    int64_t extra = self->nslots;
    if (e > extra)
        extra = e > S_MAX_PREFETCH ? S_MAX_PREFETCH : (int64_t)e;
    return self->nslots + extra;
}

//  Sends completions and asks for credit. Credit that is needed goes out
//  at once; completions alone may wait (`urgent` false) to share a message.
static void s_report_flush(tf_worker_t *self, bool urgent)
{
    if (self->state != S_ACTIVE || self->job_ended)
        return;
    if (self->draining) {
        //  Completions only, never more credit.
        if (self->report_count == 0)
            return;
        tf_enc_report_set_credit(&self->report, 0);
        tf_enc_batch_finish(&self->report, self->report_count);
        tf_net_send(self->dealer, NULL, 0, self->report.data, self->report.len);
        self->report_count = 0;
        self->report.len = 0;
        return;
    }
    int64_t have = (int64_t)(self->queue.count + s_running(self)) + self->outstanding_credit;
    int64_t target = s_target(self);
    int64_t want = target - have;
    //  Ask in chunks: not for every single item when items are tiny.
    int64_t min_ask = target / 4 > 1 ? target / 4 : 1;
    if (want < min_ask)
        want = 0;
    if (want == 0 && (self->report_count == 0 || (!urgent && self->report_count < 4096)))
        return;
    if (self->report_count == 0 && tf_enc_report_begin(&self->report, self->job, 0))
        return;
    tf_enc_report_set_credit(&self->report, (uint32_t)want);
    tf_enc_batch_finish(&self->report, self->report_count);
    if (tf_net_send(self->dealer, NULL, 0, self->report.data, self->report.len) == 0)
        self->outstanding_credit += want;
    self->report_count = 0;
    self->report.len = 0;
}

//  --------------------------------------------------------------------------
//  Exec mode: one child per item

//  O_NONBLOCK on a descriptor we have just made (a pipe end, a pty master):
//  it has no other status flag to keep, so one call does.
static int s_set_nonblock(int fd)
{
    return fcntl(fd, F_SETFL, O_NONBLOCK);
}

//  A child's stdin and stdout pipes: `to_child`/`from_child` are our ends,
//  non-blocking; `child_in`/`child_out` its own, blocking, for dup2 in the
//  child. Returns 0, or -1 with errno and nothing left open.
static int s_child_pipes(int *to_child, int *from_child, int *child_in, int *child_out)
{
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC))
        return -1;
    if (pipe2(out, O_CLOEXEC)) {
        int e = errno;
        close(in[0]);
        close(in[1]);
        errno = e;
        return -1;
    }
    s_set_nonblock(in[1]);
    s_set_nonblock(out[0]);
    *to_child = in[1];
    *from_child = out[0];
    *child_in = in[0];
    *child_out = out[1];
    return 0;
}

static void s_exec_finish(tf_worker_t *self, s_slot_t *s, int status, uint32_t detail)
{
    s_task_t *t = s->task;
    if (status == TF_ST_OK) {
        s_result_add(self, t, s->out.data, s->out.len);
    }
    s_report(self, t, status, detail);
    s_task_free(self->slab, t);
    s->task = NULL;
    s->out.len = 0;
    s_slot_close(s);
    s->kill_status = 0;
}

//  tf_proc_spawn, and the child tracked for a hard stop (tf_signal) before
//  any signal can act: one arriving in between would leave it running.
static pid_t s_spawn_tracked(const char *path, char *const argv[], int in_fd, int out_fd,
                             tf_spawn_group_t group)
{
    sigset_t held;
    tf_signal_hold(&held);
    pid_t pid = tf_proc_spawn(path, argv, in_fd, out_fd, group);
    int e = errno;
    if (pid > 0)
        tf_signal_track(pid);
    tf_signal_release(&held);
    errno = e;
    return pid;
}

static void s_exec_start(tf_worker_t *self, s_slot_t *s, s_task_t *t)
{
    t->start_us = tf_now_us();
    s->task = t;
    s->in_off = 0;
    s->out_eof = false;
    s->exited = false;
    s->kill_status = 0;
    s->out.len = 0;
    s->deadline_ms = self->timeout_ms > 0 ? tf_now_ms() + self->timeout_ms : 0;
    char **argv = NULL;
    if (self->braces) {
        argv = tf_proc_argv(self->cfg->argv, self->cfg->argc, t->data, t->len);
        if (!argv) {
            s_exec_finish(self, s, errno == EINVAL ? TF_ST_BADITEM : TF_ST_SPAWN, (uint32_t)errno);
            return;
        }
    }
    int child_in, child_out;
    if (s_child_pipes(&s->in_fd, &s->out_fd, &child_in, &child_out)) {
        int e = errno;
        tf_proc_argv_free(argv);
        s_exec_finish(self, s, TF_ST_SPAWN, (uint32_t)e);
        return;
    }
    pid_t pid = s_spawn_tracked(self->path, argv ? argv : self->cfg->argv, child_in, child_out,
                                TF_SPAWN_GROUP);
    int e = errno;
    tf_proc_argv_free(argv);
    close(child_in);
    close(child_out);
    if (pid < 0) {
        s_exec_finish(self, s, TF_ST_SPAWN, (uint32_t)e);
        return;
    }
    s->pid = pid;
    s->pidfd = tf_proc_pidfd(pid);
}

static void s_exec_check_done(tf_worker_t *self, s_slot_t *s)
{
    if (!s->task || !s->pid)
        return;
    if (s->pidfd < 0)
        s_try_reap(s); //  no pidfd: poll the exit
    if (!s->exited || !s->out_eof)
        return;
    int st = s->wstatus;
    if (s->kill_status)
        s_exec_finish(self, s, s->kill_status, 0);
    else if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        s_exec_finish(self, s, TF_ST_OK, 0);
    else if (WIFEXITED(st))
        s_exec_finish(self, s, TF_ST_EXIT, (uint32_t)WEXITSTATUS(st));
    else
        s_exec_finish(self, s, TF_ST_SIGNAL, (uint32_t)(WIFSIGNALED(st) ? WTERMSIG(st) : 0));
}

static void s_exec_io(tf_worker_t *self, s_slot_t *s, bool can_write, bool can_read, bool pid_ready)
{
    if (can_write && s->in_fd >= 0) {
        //  The item is one line (one record with -0) on stdin: its bytes,
        //  then the separator.
        s_task_t *t = s->task;
        ssize_t n;
        if (s->in_off < t->len)
            n = write(s->in_fd, t->data + s->in_off, t->len - s->in_off);
        else
            n = write(s->in_fd, &self->delim, 1);
        if (n > 0)
            s->in_off += (size_t)n;
        if ((n < 0 && errno != EAGAIN && errno != EINTR) || s->in_off >= (size_t)t->len + 1)
            s_close(&s->in_fd); //  done, or the command does not read stdin (EPIPE)
    }
    if (can_read && s->out_fd >= 0) {
        bool closed = s_read_into(s->out_fd, &s->out, 16, self->max_result);
        if (s->out.len > self->max_result && !s->kill_status) {
            s->kill_status = TF_ST_TOOBIG;
            tf_proc_kill(s->pid);
        }
        if (s->kill_status)
            s->out.len = 0; //  read on to its end, keep nothing
        if (closed) {
            s->out_eof = true;
            s_close(&s->out_fd);
        }
    }
    if (pid_ready && s_try_reap(s))
        s_close(&s->in_fd);
    s_exec_check_done(self, s);
}

//  --------------------------------------------------------------------------
//  Pipe mode: one co-process per slot

//  How a co-process is connected: --pty forces a pseudo-terminal, --no-pty
//  pipes. By default (auto) it starts on pipes, which are twice as fast,
//  with a probe: one item, and if the program then waits for more input
//  without answering, it buffers its output on pipes, so it is restarted on
//  a pty (the item goes back uncharged) and the worker uses ptys from then
//  on. Programs that answer at once (cat, sed -u, python3 -u, anything that
//  flushes) stay on pipes.
static bool s_use_pty(tf_worker_t *self)
{
    if (self->cfg->pty)
        return true;
    if (self->cfg->no_pty)
        return false;
    return self->learned_pty;
}

static int s_pipe_spawn(tf_worker_t *self, s_slot_t *s)
{
    int child_in = -1, child_out = -1;
    bool pty = s_use_pty(self);
    s->probing = !pty && !self->cfg->no_pty;
    s->waiting_since_ms = 0;
    if (pty) {
        int m, sl;
        if (tf_pty_open(&m, &sl)) {
            tf_error("worker: cannot open a pseudo-terminal: %s (try --no-pty)", strerror(errno));
            return -1;
        }
        s_set_nonblock(m); //  our end, both ways
        s->wfd = s->rfd = m;
        child_in = child_out = sl;
    } else {
        if (s_child_pipes(&s->wfd, &s->rfd, &child_in, &child_out))
            return -1;
    }
    pid_t pid = s_spawn_tracked(self->path, self->cfg->argv, child_in, child_out,
                                pty ? TF_SPAWN_SESSION : TF_SPAWN_GROUP);
    int e = errno;
    close(child_in);
    if (child_out != child_in)
        close(child_out);
    if (pid < 0) {
        tf_error("worker: cannot start '%s': %s", self->path, strerror(e));
        s_slot_close(s);
        return -1;
    }
    s->pid = pid;
    s->pidfd = tf_proc_pidfd(pid);
    s->exited = false;
    s->wbuf.len = 0;
    s->rbuf.len = 0;
    s->rscan = 0;
    return 0;
}

//  The co-process is gone (died, hung, or misbehaved): the oldest
//  unanswered item is charged with `status`; the others go back to the
//  queue uncharged. The next item starts a fresh co-process. With status
//  TF_ST_REQUEUE nothing is charged (a probe that chose the pty).
static void s_pipe_down(tf_worker_t *self, s_slot_t *s, int status, uint32_t detail)
{
    s_kill_reap(s);
    if (status == 0 && s->exited) {
        int st = s->wstatus;
        status = WIFSIGNALED(st) ? TF_ST_SIGNAL : TF_ST_EXIT;
        detail = (uint32_t)(WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    }
    s_slot_close(s);
    s_task_t *head = status == TF_ST_REQUEUE ? NULL : s_q_pop(&s->outstanding);
    if (head) {
        tf_warn("worker: co-process of slot %d ended (%s %u) on item %llu", s->index,
                tf_status_name(status), detail, (unsigned long long)head->seq + 1);
        s_report(self, head, status, detail);
        s_task_free(self->slab, head);
    }
    //  A stalled co-process read every outstanding item and answered none:
    //  they are all charged. Otherwise the rest go back, in order, to the
    //  front of the queue, uncharged.
    if (status == TF_ST_STALL) {
        s_task_t *t;
        while ((t = s_q_pop(&s->outstanding))) {
            s_report(self, t, status, detail);
            s_task_free(self->slab, t);
        }
    }
    s_q_prepend(&self->queue, &s->outstanding);
    s->wbuf.len = 0;
    s->rbuf.len = 0;
    s->rscan = 0;
}

//  Item `t` becomes the one slot `s`'s co-process works on (the oldest
//  unanswered): its run time, --timeout and the probe/stall watch start now.
static void s_head_started(tf_worker_t *self, s_slot_t *s, s_task_t *t)
{
    s->head_since_ms = self->now_us / 1000;
    s->waiting_since_ms = 0;
    t->start_us = self->now_us;
}

//  Feeds queued items to slot `s`'s co-process, up to `depth` unanswered.
//  Called once per item with tiny items: kept inline in both callers (a
//  call each cost 14 instructions per item, 2.5 % of the worker's, in
//  bench/run #9).
__attribute__((always_inline)) static inline void s_pipe_feed(tf_worker_t *self, s_slot_t *s,
                                                              size_t depth)
{
    while (self->queue.count > 0 && s->outstanding.count < depth && s->wbuf.len < S_PIPE_WBUF) {
        if (s->pid == 0 && s_pipe_spawn(self, s))
            return;
        s_task_t *t = s_q_pop(&self->queue);
        if (memchr(t->data, self->delim, t->len)) {
            t->start_us = self->now_us;
            s_report(self, t, TF_ST_BADITEM, 0);
            s_task_free(self->slab, t);
            continue;
        }
        if (tf_buf_reserve(&s->wbuf, (size_t)t->len + 1)) {
            s_q_push_front(&self->queue, t);
            return;
        }
        memcpy(s->wbuf.data + s->wbuf.len, t->data, t->len);
        s->wbuf.len += t->len;
        s->wbuf.data[s->wbuf.len++] = (uint8_t)self->delim;
        if (s->outstanding.count == 0)
            s_head_started(self, s, t);
        s_q_push(&s->outstanding, t);
    }
}

static void s_pipe_lines(tf_worker_t *self, s_slot_t *s)
{
    size_t start = 0;
    while (start < s->rbuf.len) {
        size_t from = start + (s->rscan > start ? s->rscan - start : 0);
        uint8_t *hit = memchr(s->rbuf.data + from, self->delim, s->rbuf.len - from);
        if (!hit) {
            s->rscan = s->rbuf.len;
            break;
        }
        size_t end = (size_t)(hit - s->rbuf.data) + 1; //  include the terminator
        s->probing = false;                            //  it answers on pipes: keep them
        s_task_t *t = s_q_pop(&s->outstanding);
        if (!t) {
            if (tf_log_ratelimit(&self->rl))
                tf_warn("worker: co-process wrote a line with no item waiting; dropped");
        } else {
            //  A line over --max-result would be dropped by the sink and
            //  the item run again after --ack-timeout, for ever: it fails
            //  here, like an exec-mode result that grows too big.
            if (end - start > self->max_result)
                s_report(self, t, TF_ST_TOOBIG, 0);
            else {
                s_result_add(self, t, s->rbuf.data + start, end - start);
                s_report(self, t, TF_ST_OK, 0);
            }
            s_task_free(self->slab, t);
            if (s->outstanding.head)
                s_head_started(self, s, s->outstanding.head);
        }
        start = end;
        s->rscan = start;
    }
    if (start > 0) {
        tf_buf_consume(&s->rbuf, start);
        s->rscan = s->rscan >= start ? s->rscan - start : 0;
    }
    if (s->rbuf.len > self->max_result && s->outstanding.count > 0)
        s_pipe_down(self, s, TF_ST_TOOBIG, 0);
}

static void s_pipe_io(tf_worker_t *self, s_slot_t *s, bool can_write, bool can_read, bool pid_ready)
{
    bool dead = false;
    if (can_read && s->rfd >= 0) {
        //  EOF, or EIO on a pty whose child is gone: dead.
        dead = s_read_into(s->rfd, &s->rbuf, 16, SIZE_MAX);
        s_pipe_lines(self, s);
        if (s->pid == 0)
            return; //  s_pipe_lines took it down
    }
    if (can_write && s->wfd >= 0 && s->wbuf.len > 0) {
        ssize_t n = write(s->wfd, s->wbuf.data, s->wbuf.len);
        if (n > 0)
            tf_buf_consume(&s->wbuf, (size_t)n);
        else if (n < 0 && errno != EAGAIN && errno != EINTR)
            dead = true;
    }
    if (pid_ready && !s->exited && s_try_reap(s)) {
        //  Collect what it wrote before dying.
        if (s->rfd >= 0) {
            s_read_into(s->rfd, &s->rbuf, -1, SIZE_MAX);
            s_pipe_lines(self, s);
            if (s->pid == 0)
                return;
        }
        dead = true;
    }
    if (dead) //  its output closed: s_pipe_down reaps it (exiting, or we make it)
        s_pipe_down(self, s, 0, 0);
}

//  --------------------------------------------------------------------------
//  Timeouts and stalls

//  True when `pid` is blocked in read() on its stdin (Linux /proc).
static bool s_reading_stdin(pid_t pid)
{
    char path[64], line[128];
    snprintf(path, sizeof path, "/proc/%d/syscall", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool r = false;
    if (fgets(line, sizeof line, f)) {
        long nr = -1;
        unsigned long fd = 99;
        r = sscanf(line, "%ld %lx", &nr, &fd) == 2 && nr == SYS_read && fd == 0;
    }
    fclose(f);
    return r;
}

//  Bytes waiting in a pipe or pty (either end), 0 when none or unknown.
static int s_unread(int fd)
{
    int n = 0;
    if (fd < 0 || ioctl(fd, FIONREAD, &n) != 0)
        return 0;
    return n;
}

//  True when the co-process has consumed everything we wrote, left nothing
//  for us to read, and sits in read() on its stdin: waiting for more input
//  without having answered. (Seen while our item or its answer is still in
//  a pipe, it is merely not scheduled yet.)
static bool s_waits_unanswered(const s_slot_t *s)
{
    return s->pid > 0 && s->outstanding.count > 0 && s->wbuf.len == 0 && s_unread(s->wfd) == 0 &&
           s_unread(s->rfd) == 0 && s_reading_stdin(s->pid);
}

//  True when the co-process has been seen waiting unanswered, at every look
//  since the head item started, for at least `ms`.
static bool s_waiting_for(s_slot_t *s, int64_t now, int64_t ms)
{
    if (!s_waits_unanswered(s)) {
        s->waiting_since_ms = 0;
        return false;
    }
    if (s->waiting_since_ms == 0)
        s->waiting_since_ms = now;
    return now - s->waiting_since_ms >= ms;
}

//  A co-process that has read all we wrote and waits for more, while items
//  are unanswered, will never answer: it holds its output back (stdio
//  buffering through --no-pty) or does not write one line per item. The
//  state must last S_PROBE_CONFIRM_MS: a program that answered a moment ago
//  and is back in read() is not mistaken for one that buffers.
static void s_check_probes(tf_worker_t *self, int64_t now)
{
    for (int i = 0; i < self->nslots; i++) {
        s_slot_t *s = &self->slots[i];
        if (!s->probing || !s_waiting_for(s, now, S_PROBE_CONFIRM_MS))
            continue;
        //  It took the item and wants more without answering: it buffers.
        tf_info("worker: '%s' buffers its output on pipes; using a pseudo-terminal", self->path);
        self->learned_pty = true;
        s->probing = false;
        s_pipe_down(self, s, TF_ST_REQUEUE, 0);
    }
}

//  The same state on pipes or a pty, after a second without an answer and
//  at two looks half a second apart: the co-process will never answer.
static void s_check_stalls(tf_worker_t *self)
{
    int64_t now = tf_now_ms();
    s_check_probes(self, now);
    if (!self->pipe || now < self->next_stall_check)
        return;
    self->next_stall_check = now + S_STALL_CHECK_MS;
    for (int i = 0; i < self->nslots; i++) {
        s_slot_t *s = &self->slots[i];
        if (now - s->head_since_ms < 1000 || !s_waiting_for(s, now, S_STALL_CHECK_MS))
            continue;
        tf_warn("worker: co-process of slot %d waits for input but has not answered: it "
                "buffers its output or does not write one line per item",
                s->index);
        s_pipe_down(self, s, TF_ST_STALL, 0);
    }
}

static void s_check_timeouts(tf_worker_t *self)
{
    s_check_stalls(self);
    if (self->timeout_ms <= 0)
        return;
    int64_t now = tf_now_ms();
    for (int i = 0; i < self->nslots; i++) {
        s_slot_t *s = &self->slots[i];
        if (!self->pipe && !self->fnmode && s->task && s->pid > 0 && !s->kill_status &&
            now >= s->deadline_ms) {
            s->kill_status = TF_ST_TIMEOUT;
            tf_proc_kill(s->pid);
        }
        if (self->pipe && s->outstanding.count > 0 && now - s->head_since_ms >= self->timeout_ms)
            s_pipe_down(self, s, TF_ST_TIMEOUT, 0);
    }
}

//  --------------------------------------------------------------------------
//  Session with the ventilator

//  CURVE client keys on a socket, when configured (loaded at start).
static void s_curve(tf_worker_t *self, zsock_t *sock)
{
    if (self->curve)
        tf_curve_client_apply(self->curve, sock);
}

//  Takes the connection events of `watch`; true if a connection that had
//  got through its handshake (`*linked`) dropped.
static bool s_watch_events(zsock_t *watch, bool *linked)
{
    bool dropped = false;
    int ev, fd;
    while (tf_net_watch_next(watch, &ev, &fd) == 0) {
        if (ev == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
            *linked = true;
        else if (ev == ZMQ_EVENT_DISCONNECTED && *linked) {
            *linked = false;
            dropped = true;
        }
    }
    return dropped;
}

static void s_session_new(tf_worker_t *self)
{
    tf_net_unwatch(self->dealer, &self->watch);
    zsock_destroy(&self->dealer);
    self->linked = false;
    self->dealer = zsock_new(ZMQ_DEALER);
    if (!self->dealer)
        return;
    tf_net_setup(self->dealer, (int64_t)self->cfg->max_item + (4 << 20));
    //  ZeroMQ reconnects a dropped connection by itself, but what was in
    //  flight on it (a WELCOME, TASKS, REPORTs) is gone, and the two ends
    //  would keep different counts of credit and leases. The drop of a
    //  connection that got through its handshake ends the session (one
    //  that never did, e.g. refused by CURVE, carried nothing).
    self->watch =
        tf_net_watch(self->dealer, ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED);
    //  A fresh routing id per session: the ventilator sees a new worker,
    //  and messages of the old session cannot be mistaken for this one.
    char rid[320];
    snprintf(rid, sizeof rid, "W%s-%llu", self->name, (unsigned long long)++self->session);
    zsock_set_identity(self->dealer, rid);
    tf_net_reconnect_policy(self->dealer, self->cfg->connect);
    s_curve(self, self->dealer);
    if (zsock_connect(self->dealer, "%s", self->cfg->connect) < 0)
        tf_error("worker: cannot connect to '%s': %s", self->cfg->connect,
                 zmq_strerror(zmq_errno()));
    self->state = S_JOINING;
    self->job_ended = false;
    self->outstanding_credit = 0;
    self->report_count = 0;
    self->report.len = 0;
    int64_t now = tf_now_ms();
    self->session_start = now;
    self->next_hello = now;
    self->last_heard = now;
    //  Items queued but not started belong to the old session: drop them
    //  (the ventilator re-leases them). Running ones finish and their
    //  results still go to the sink, which keeps the first copy.
    s_q_clear(self->slab, &self->queue);
}

static void s_set_sink(tf_worker_t *self, const char *endpoint)
{
    char ep[TF_MAX_ENDPOINT + 1];
    if (tf_net_fill_host(endpoint, self->vent_host, ep, sizeof ep))
        return;
    if (self->push && strcmp(ep, self->push_ep) == 0)
        return;
    s_results_flush(self);
    tf_net_unwatch(self->push, &self->push_watch);
    zsock_destroy(&self->push);
    self->push_linked = false;
    self->push = zsock_new(ZMQ_PUSH);
    if (!self->push)
        return;
    //  Results queued on a connection that drops are gone (s_watch_events).
    self->push_watch =
        tf_net_watch(self->push, ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED);
    tf_net_setup(self->push, 1 << 20);
    zsock_set_linger(self->push, 2000); //  let results leave on exit
    tf_net_reconnect_policy(self->push, ep);
    s_curve(self, self->push);
    if (zsock_connect(self->push, "%s", ep) < 0) {
        tf_error("worker: cannot connect to sink '%s': %s", ep, zmq_strerror(zmq_errno()));
        tf_net_unwatch(self->push, &self->push_watch);
        zsock_destroy(&self->push);
        return;
    }
    snprintf(self->push_ep, sizeof self->push_ep, "%s", ep);
    tf_info("worker: results go to %s", ep);
}

static void s_malformed(tf_worker_t *self, const char *why)
{
    tf_log_malformed(&self->rl, NULL, "worker", why);
}

static void s_on_tasks(tf_worker_t *self, const uint8_t *data, size_t size)
{
    tf_iter_t it;
    tf_iter_init(&it, data, size);
    tf_item_t rec;
    uint32_t n = tf_iter_count(&it);
    self->outstanding_credit -= n;
    if (self->outstanding_credit < 0)
        self->outstanding_credit = 0;
    while (tf_iter_item(&it, &rec)) {
        void *block;
        s_task_t *t = tf_slab_alloc(self->slab, sizeof *t + rec.len, &block);
        if (!t)
            break; //  lease runs out; another worker gets it
        t->block = block;
        t->job = self->job;
        t->session = self->session;
        t->seq = rec.seq;
        t->attempt = rec.attempt;
        t->len = rec.len;
        t->start_us = 0;
        if (rec.len)
            memcpy(t->data, rec.data, rec.len);
        s_q_push(&self->queue, t);
    }
}

//  Returns -1 when the worker should exit (--once job over).
static int s_on_ventilator(tf_worker_t *self)
{
    for (int budget = 256; budget > 0; budget--) {
        tf_hdr_t hdr;
        const char *why;
        tf_rx_status_t st =
            tf_net_recv_msg(self->dealer, false, &self->rx, &self->limits, &hdr, &why);
        if (st == TF_RX_NONE)
            return 0;
        if (st == TF_RX_BAD) {
            s_malformed(self, why);
            continue;
        }
        const uint8_t *data = tf_rx_data(&self->rx);
        size_t size = tf_rx_size(&self->rx);
        self->last_heard = self->last_contact = tf_now_ms();
        switch (hdr.type) {
        case TF_MSG_WELCOME: {
            tf_welcome_t w;
            tf_proto_get_welcome(data, size, &w);
            if (self->state == S_ACTIVE && hdr.job != self->job) {
                s_session_new(self);
                break;
            }
            if (self->cfg->once && self->job && hdr.job != self->job) {
                //  --once: the job we served is over (we missed its end).
                tf_info("worker: my job is over, a new one began: leaving (--once)");
                return -1;
            }
            self->job = hdr.job;
            self->hb_ivl = w.hb_ivl_ms;
            self->hb_timeout = w.hb_timeout_ms;
            self->timeout_ms = w.timeout_ms;
            self->max_result = w.max_result < self->cfg->max_result
                                   ? w.max_result
                                   : (uint32_t)self->cfg->max_result;
            s_set_sink(self, self->cfg->sink ? self->cfg->sink : w.sink);
            if (self->state != S_ACTIVE) {
                tf_info("worker: joined job %016llx", (unsigned long long)self->job);
                //  Granted with this first WELCOME of the session: the items
                //  asked for in our HELLO are on their way.
                self->outstanding_credit = self->hello_credit;
            }
            self->state = S_ACTIVE;
            break;
        }
        case TF_MSG_TASKS:
            if (self->state == S_ACTIVE && hdr.job == self->job)
                s_on_tasks(self, data, size);
            break;
        case TF_MSG_HEARTBEAT:
            break;
        case TF_MSG_RESET:
            tf_info("worker: ventilator asked for a new session");
            s_session_new(self);
            return 0;
        case TF_MSG_JOB_END:
            if (self->state == S_ACTIVE && hdr.job != self->job)
                break;
            if (self->state == S_JOINING && hdr.job == self->ended_job && !self->cfg->once)
                break; //  that job is still ending: keep asking on this session
            self->ended_job = hdr.job;
            tf_info("worker: job over");
            s_q_clear(self->slab, &self->queue);
            self->job_ended = true;
            if (self->cfg->once)
                return -1;
            s_session_new(self);
            return 0;
        default:
            s_malformed(self, "unexpected message type");
        }
    }
    return 0;
}

static void s_timers(tf_worker_t *self)
{
    int64_t now = tf_now_ms();
    if (self->state == S_JOINING && self->cfg->once && self->job &&
        now - self->last_contact > 10 * (int64_t)self->hb_timeout) {
        //  --once, and the ventilator of our job is gone for good.
        tf_warn("worker: the ventilator of my job is gone: leaving (--once)");
        self->gave_up = true;
    }
    if (self->state == S_JOINING && now >= self->next_hello) {
        //  The first credit rides on the HELLO: one item per slot (s_target
        //  before any item has run), served right after the WELCOME.
        self->hello_credit = self->draining ? 0 : (uint32_t)self->nslots;
        if (tf_enc_hello(&self->msg, 0, (uint32_t)self->nslots, self->name, self->hello_credit) ==
            0)
            tf_net_send(self->dealer, NULL, 0, self->msg.data, self->msg.len);
        //  Between jobs, ask often: a new ventilator finds us at once.
        self->next_hello = now + (self->hb_ivl < 100 ? self->hb_ivl : 100);
        //  A ventilator that never answers: start over on a fresh socket.
        if (now - self->session_start > 4 * (int64_t)self->hb_timeout)
            s_session_new(self);
    }
    if (self->state == S_ACTIVE) {
        if (now >= self->next_hb) {
            uint32_t load = (uint32_t)(self->queue.count + s_running(self));
            if (tf_enc_heartbeat(&self->msg, self->job, load) == 0)
                tf_net_send(self->dealer, NULL, 0, self->msg.data, self->msg.len);
            self->next_hb = now + self->hb_ivl;
        }
        if (now - self->last_heard >= self->hb_timeout) {
            tf_warn("worker: ventilator silent for %lld ms, starting a new session",
                    (long long)(now - self->last_heard));
            s_session_new(self);
        }
    }
}

//  The results connection dropped S_SINK_DROP_GRACE_MS ago. Results sent on
//  it may be gone (those not sent yet go out on the next one): the
//  ventilator is told after our completions so far, and sends the items it
//  has from us done but unacknowledged again unless the sink acknowledges
//  them soon, instead of after --ack-timeout. Not if the job ended
//  meanwhile: a sink closes its socket at the job's end, and the drop may
//  be seen before the JOB_END that came first is read.
static void s_sink_dropped(tf_worker_t *self)
{
    if (!self->sink_drop_ms || tf_now_ms() - self->sink_drop_ms < S_SINK_DROP_GRACE_MS)
        return;
    self->sink_drop_ms = 0;
    if (self->state != S_ACTIVE || self->job_ended)
        return;
    tf_warn("worker: connection to the sink dropped, results on it may be lost");
    s_report_flush(self, true);
    if (tf_enc_results_lost(&self->msg, self->job) == 0)
        tf_net_send(self->dealer, NULL, 0, self->msg.data, self->msg.len);
}

//  --------------------------------------------------------------------------
//  Main loop

static int64_t s_min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

//  How long the loop may sleep in poll (ms): until the first moment that
//  something must be looked at which no descriptor would wake us for.
static long s_poll_timeout(tf_worker_t *self)
{
    int64_t now = tf_now_ms();
    //  The session: HELLO, heartbeat, the ventilator's silence.
    int64_t wake = self->state == S_JOINING ? self->next_hello : self->next_hb;
    if (self->state == S_ACTIVE)
        wake = s_min64(wake, self->last_heard + self->hb_timeout);
    //  Results held for company (S_FLUSH_DELAY_US).
    if (self->results_count > 0)
        wake = s_min64(wake, (self->results_first_us + S_FLUSH_DELAY_US + 999) / 1000);
    if (self->sink_drop_ms)
        wake = s_min64(wake, self->sink_drop_ms + S_SINK_DROP_GRACE_MS);
    //  First items that will have run long enough to fetch the next
    //  (s_target). Once that moment has passed, the loop has asked: nothing
    //  more to wake for (waking "now" again would spin until the first
    //  item completes).
    if (!self->cost_known && self->state == S_ACTIVE && !self->draining && self->queue.count == 0) {
        int64_t at = s_first_wait_at(self);
        if (at != INT64_MAX && at > self->now_us)
            wake = s_min64(wake, (at + 999) / 1000);
    }
    bool answers_owed = false; //  some co-process has unanswered items
    for (int i = 0; i < self->nslots; i++) {
        const s_slot_t *s = &self->slots[i];
        if (s->pid > 0 && s->pidfd < 0)
            wake = s_min64(wake, now + 5); //  no pidfd: poll for its exit
        if (!self->pipe) {
            if (self->timeout_ms > 0 && s->task && s->pid > 0 && !s->kill_status)
                wake = s_min64(wake, s->deadline_ms); //  --timeout
            continue;
        }
        if (s->outstanding.count == 0)
            continue;
        answers_owed = true;
        if (s->probing)
            wake = s_min64(wake, now + 1); //  the probe looks every millisecond
        if (self->timeout_ms > 0)
            wake = s_min64(wake, s->head_since_ms + self->timeout_ms); //  --timeout
    }
    if (answers_owed)
        wake = s_min64(wake, self->next_stall_check);
    return wake > now ? (long)(wake - now) : 0;
}

static void s_fn_collect(tf_worker_t *self, s_slot_t *s)
{
    void *out = NULL;
    size_t len = 0;
    int rc = 0;
    if (!s->task || tf_fnslot_collect(s->fns, &out, &len, &rc))
        return;
    s_task_t *t = s->task;
    s->task = NULL;
    if (rc == 0 && len > self->max_result)
        s_report(self, t, TF_ST_TOOBIG, 0);
    else if (rc == 0) {
        s_result_add(self, t, out, len);
        s_report(self, t, TF_ST_OK, 0);
    } else
        s_report(self, t, TF_ST_EXIT, (uint32_t)rc);
    free(out);
    s_task_free(self->slab, t);
}

//  When slot `s` will be free to start another item: INT64_MIN when it is
//  idle, else once its head item and the ones queued behind it have run at
//  the average cost (items that took under a clock tick count as 1 us). A
//  head item that has overrun the average by d is expected to need about d
//  more: a little late, it is about to end; far beyond, it is a long one
//  (a slot busy on a 1 s item is not free in the next 10 ms).
static int64_t s_pipe_free_at(const tf_worker_t *self, const s_slot_t *s)
{
    const s_task_t *head = s->outstanding.head;
    if (!head)
        return INT64_MIN;
    double avg = self->avg_us < 1 ? 1 : self->avg_us;
    int64_t head_done = head->start_us + (int64_t)avg;
    if (head_done < self->now_us)
        head_done = self->now_us + (self->now_us - head_done);
    return head_done + (int64_t)((double)(s->outstanding.count - 1) * avg);
}

//  Pipe mode: each co-process gets its share of the worker's credit (at
//  most ceil(target / slots) items, one while probing), so that N slots run
//  N items at once and never wait for the worker between two items.
static void s_pipe_start(tf_worker_t *self)
{
    size_t share = (size_t)((s_target(self) + self->nslots - 1) / self->nslots);
    if (share > S_PIPE_DEPTH)
        share = S_PIPE_DEPTH;
    bool probing = false;
    for (int k = 0; k < self->nslots; k++)
        probing = probing || self->slots[k].probing || self->slots[k].pid == 0;
    if (probing && !s_use_pty(self) && !self->cfg->no_pty)
        share = 1; //  a probe holds one item until the program answers
    if (self->cost_known && self->avg_us < S_BALANCE_MIN_US) {
        //  Tiny items: level by level, every slot one more item per round
        //  (cheap; an item's worth of imbalance is nothing).
        size_t level = SIZE_MAX;
        for (int k = 0; k < self->nslots; k++)
            if (self->slots[k].outstanding.count < level)
                level = self->slots[k].outstanding.count;
        for (level++; level <= share && self->queue.count > 0; level++) {
            bool stuck = true; //  no slot below this level could take one
            for (int k = 0; k < self->nslots && self->queue.count > 0; k++) {
                s_slot_t *q = &self->slots[k];
                size_t before = q->outstanding.count;
                if (before >= level)
                    continue;
                s_pipe_feed(self, q, level);
                if (q->outstanding.count > before)
                    stuck = false;
            }
            if (stuck && level > 1)
                break;
        }
        return;
    }
    //  Longer items: each goes to the slot that will be free first. Filled
    //  level by level in slot order, the last items of a job went to the
    //  first slots of the array, not to the ones about to finish: a whole
    //  item's time of imbalance at the end.
    for (int k = 0; k < self->nslots; k++)
        self->slots[k].feed_blocked = false;
    while (self->queue.count > 0) {
        s_slot_t *best = NULL;
        int64_t best_at = INT64_MAX;
        for (int k = 0; k < self->nslots; k++) {
            s_slot_t *q = &self->slots[k];
            if (q->feed_blocked)
                continue;
            int64_t at = s_pipe_free_at(self, q);
            if (!best || at < best_at) {
                best = q;
                best_at = at;
            }
        }
        //  Full: every other slot is expected to be busy longer, so the
        //  item waits here for whichever frees up first.
        if (!best || best->outstanding.count >= share)
            break;
        size_t before = best->outstanding.count;
        s_pipe_feed(self, best, before + 1);
        if (best->outstanding.count == before)
            best->feed_blocked = true; //  full pipe, or cannot start
    }
}

static void s_start_work(tf_worker_t *self)
{
    if (self->queue.count == 0)
        return;
    if (self->pipe) {
        s_pipe_start(self);
        return;
    }
    for (int i = 0; i < self->nslots && self->queue.count > 0; i++) {
        s_slot_t *s = &self->slots[i];
        if (s->task)
            continue;
        if (self->fnmode) {
            s->task = s_q_pop(&self->queue);
            s->task->start_us = self->now_us;
            tf_fnslot_submit(s->fns, s->task->data, s->task->len);
        } else
            s_exec_start(self, s, s_q_pop(&self->queue));
    }
}

int tf_worker_run(tf_worker_t *self)
{
    self->now_us = tf_now_us();
    s_session_new(self);
    if (!self->dealer) {
        tf_error("worker: cannot create socket");
        return 2;
    }
    size_t cap = 4 + 4 * (size_t)self->nslots;
    zmq_pollitem_t *items = calloc(cap, sizeof *items);
    int *owner = calloc(cap, sizeof *owner);
    int *role = calloc(cap, sizeof *role);
    if (!items || !owner || !role) {
        free(items);
        free(owner);
        free(role);
        return 2;
    }
    int rc = 0;
    bool leaving = false;
    //  Say HELLO first, then start the co-processes while the ventilator
    //  answers: both off the critical path of the first items.
    s_timers(self);
    for (int i = 0; self->pipe && i < self->nslots; i++)
        if (self->slots[i].pid == 0)
            s_pipe_spawn(self, &self->slots[i]);
    while (!leaving) {
        if (atomic_load(&self->stop))
            break;
        if (self->gave_up) {
            rc = 3;
            break;
        }
        if (tf_interrupted() && !self->draining) {
            //  First signal: take no more items, hand back the queued ones
            //  at once (REQUEUE, not charged), finish what is running, then
            //  leave. A second signal exits at once (tf_signal).
            tf_info("worker: stopping: handing back %zu queued item(s), finishing %zu running",
                    self->queue.count, s_running(self));
            self->draining = true;
            s_hand_back(self, &self->queue);
            //  Items waiting inside co-processes behind the running one go
            //  back too.
            for (int i = 0; self->pipe && i < self->nslots; i++) {
                s_slot_t *sl = &self->slots[i];
                s_task_t *head = s_q_pop(&sl->outstanding);
                s_hand_back(self, &sl->outstanding);
                if (head)
                    s_q_push(&sl->outstanding, head);
            }
            s_report_flush(self, true);
        }
        if (self->draining && s_running(self) == 0)
            break;
        if (!self->draining)
            s_start_work(self);
        //  Natural batching with a short hold: while more results are
        //  coming (work queued or running), a result waits up to
        //  S_FLUSH_DELAY_US for others, so that a stream of tiny items makes
        //  few messages; when the worker goes idle everything leaves now.
        bool busy = self->queue.count > 0 || s_running(self) > 0;
        bool urgent = !busy || self->now_us - self->results_first_us >= S_FLUSH_DELAY_US;
        if (urgent)
            s_results_flush(self);
        s_report_flush(self, urgent || self->results_count == 0);
        if (self->job_ended && self->cfg->once && !busy)
            break;

        size_t n = 0;
        items[n] = (zmq_pollitem_t){zsock_resolve(self->dealer), 0, ZMQ_POLLIN, 0};
        owner[n] = -1;
        n++;
        if (tf_signal_fd() >= 0 && !self->draining) {
            items[n] = (zmq_pollitem_t){NULL, tf_signal_fd(), ZMQ_POLLIN, 0};
            owner[n] = -1;
            role[n++] = 4;
        }
        if (self->watch) {
            items[n] = (zmq_pollitem_t){zsock_resolve(self->watch), 0, ZMQ_POLLIN, 0};
            owner[n] = -1;
            role[n++] = 5;
        }
        if (self->push_watch) {
            items[n] = (zmq_pollitem_t){zsock_resolve(self->push_watch), 0, ZMQ_POLLIN, 0};
            owner[n] = -1;
            role[n++] = 6;
        }
        for (int i = 0; i < self->nslots; i++) {
            s_slot_t *s = &self->slots[i];
            int wfd = self->pipe ? (s->wbuf.len > 0 ? s->wfd : -1) : s->in_fd;
            int rfd = self->pipe ? s->rfd : s->out_fd;
            if (wfd >= 0 && wfd != rfd) {
                items[n] = (zmq_pollitem_t){NULL, wfd, ZMQ_POLLOUT, 0};
                owner[n] = i;
                role[n++] = 0;
            }
            if (rfd >= 0) {
                short ev = ZMQ_POLLIN | (wfd == rfd ? ZMQ_POLLOUT : 0);
                items[n] = (zmq_pollitem_t){NULL, rfd, ev, 0};
                owner[n] = i;
                role[n++] = 1;
            }
            if (s->fns && s->task) {
                items[n] = (zmq_pollitem_t){NULL, tf_fnslot_fd(s->fns), ZMQ_POLLIN, 0};
                owner[n] = i;
                role[n++] = 3;
            }
            if (s->pidfd >= 0 && !s->exited) {
                items[n] = (zmq_pollitem_t){NULL, s->pidfd, ZMQ_POLLIN, 0};
                owner[n] = i;
                role[n++] = 2;
            }
        }
        long timeout = s_poll_timeout(self);
        bool dropped = false, sink_dropped = false;
        int r = zmq_poll(items, (int)n, timeout);
        self->now_us = tf_now_us();
        if (r < 0 && zmq_errno() != EINTR) {
            tf_error("worker: poll failed: %s", zmq_strerror(zmq_errno()));
            rc = 2;
            break;
        }
        if (r > 0) {
            //  Children first, so their results and reports go out together.
            for (size_t k = 1; k < n; k++) {
                short re = items[k].revents;
                if (!re)
                    continue;
                if (role[k] == 4)
                    continue; //  a signal: the loop top sees it
                if (role[k] == 5) {
                    dropped = s_watch_events(self->watch, &self->linked) || dropped;
                    continue;
                }
                if (role[k] == 6) {
                    sink_dropped = s_watch_events(self->push_watch, &self->push_linked);
                    continue;
                }
                s_slot_t *s = &self->slots[owner[k]];
                if (role[k] == 3) {
                    s_fn_collect(self, s);
                    continue;
                }
                bool w = (re & (ZMQ_POLLOUT | ZMQ_POLLERR)) != 0;
                bool rd = (re & (ZMQ_POLLIN | ZMQ_POLLERR)) != 0;
                bool pid = role[k] == 2;
                if (role[k] == 0)
                    rd = false;
                if (role[k] == 2)
                    w = rd = false;
                if (self->pipe)
                    s_pipe_io(self, s, w, rd, pid);
                else if (s->task)
                    s_exec_io(self, s, w, rd, pid);
            }
            if (items[0].revents & ZMQ_POLLIN)
                if (s_on_ventilator(self) < 0)
                    leaving = true; //  --once and the job is over
            if (dropped && !leaving && !self->draining) {
                if (self->state == S_ACTIVE)
                    tf_warn("worker: connection to the ventilator dropped, starting a new session");
                else
                    tf_info("worker: connection to the ventilator dropped while joining, "
                            "starting a new session");
                s_session_new(self);
            } else if (sink_dropped && !self->sink_drop_ms) {
                self->sink_drop_ms = tf_now_ms(); //  s_sink_dropped, a moment later
            }
        }
        if (!leaving)
            s_sink_dropped(self);
        if (!self->pipe && !self->fnmode)
            for (int i = 0; i < self->nslots; i++)
                s_exec_check_done(self, &self->slots[i]);
        s_check_timeouts(self);
        s_timers(self);
    }
    s_results_flush(self);
    if (self->draining) {
        s_hand_back(self, &self->queue); //  put back by a co-process that went down
        s_report_flush(self, true);
        if (self->handed_back > 0 && self->state == S_ACTIVE)
            zsock_set_linger(self->dealer, 500); //  let the hand-back leave
    }
    free(items);
    free(owner);
    free(role);
    return rc;
}
