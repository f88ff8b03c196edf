/*  tf_vent.c -- the ventilator: reads items, leases them to workers by credit,
    re-sends what is not acknowledged, and ends the job with the sink. */
#include "tf_vent.h"

#include "tf_curve.h"
#include "tf_log.h"
#include "tf_net.h"
#include "tf_proto.h"
#include "tf_reader.h"
#include "tf_signal.h"
#include "tf_slab.h"
#include "tf_stats.h"
#include "tf_window.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

//  Largest TASKS message we build (one item may exceed it on its own).
#define S_BATCH_BYTES (1u << 20)
//  Peers remembered per job (for the report); HELLOs beyond are ignored.
#define S_MAX_PEERS 65536
//  The peers of a dropped connection are probed (a heartbeat each) this
//  long after the drop: ZeroMQ retires the connection's pipe a moment
//  after it reports the drop.
#define S_PROBE_DELAY_MS 2

typedef struct {
    bool used;
    bool is_sink;
    uint8_t rid[TF_MAX_RID];
    size_t rid_len;
    char name[TF_MAX_NAME + 1];
    uint32_t slots;
    int64_t credit;
    uint32_t hello_credit; //  asked for with its HELLO, granted with its first WELCOME
    uint32_t leased;
    int64_t last_heard;
    int fd;            //  the connection it last spoke on (ZMQ_SRCFD; -1: none)
    bool probe;        //  its connection dropped: s_probe_peers checks it
    bool lost;         //  removed as lost, not as leaving after the job end
    bool results_lost; //  said RESULTS_LOST since the last deadline scan
    uint64_t done;
    uint64_t failed;
} s_peer_t;

typedef enum { S_RUNNING, S_DRAINING, S_ENDING, S_FINISHED } s_phase_t;

struct _tf_vent_t {
    const tf_config_t *cfg;
    zsock_t *router;
    zsock_t *watch; //  the router's dropped connections (tf_net_watch)
    tf_window_t *window;
    tf_slab_t *slab; //  item copies
    tf_reader_t *reader;
    int in_fd;
    bool in_owned;
    bool input_done;
    bool need_input; //  the reader has no whole item buffered
    bool input_error;
    bool sink_not_ok;         //  FINISHED said not every item of the job succeeded
    int64_t sink_gone_ms;     //  when the registered sink's connection went (0: it did not)
    uint32_t sink_max_result; //  the registered sink's --max-result (0: it did not say)
    int silent_sink_fd;       //  connection of a sink lost to silence (-1: none)
    bool sink_embedded;       //  tf_vent_set_sink_embedded
    bool sink_seen;           //  a sink has registered (s_on_sink_hello)
    uint64_t total;           //  items read (valid when input_done)
    FILE *failed_file;
    s_peer_t *peers; //  every peer of the job, kept for the report
    uint32_t npeers;
    uint32_t hastened; //  s_hasten_lost: done items made due (per pass)
    bool results_lost; //  a peer said RESULTS_LOST: the next scan hastens
    uint32_t peers_cap;
    int last_peer; //  lookup cache
    uint32_t nworkers;
    int sink; //  peer index or -1
    char sink_ep[TF_MAX_ENDPOINT + 1];
    char sink_override[TF_MAX_ENDPOINT + 1];
    uint64_t job;
    s_phase_t phase;
    atomic_bool stop_requested;
    atomic_bool abort_requested;
    int64_t drain_deadline;
    uint64_t drain_from; //  draining: items below are idle for good
    int64_t end_sent_ms;
    uint64_t resume_from; //  items below are committed by an earlier run
    bool partial;         //  stopped before the input's end
    uint64_t end_total;
    int rr; //  round-robin start for dispatch
    tf_limits_t limits;
    tf_buf_t out;  //  scratch message buffer
    tf_buf_t skip; //  pending SKIP batch
    uint32_t skip_count;
    int64_t next_hb;
    int64_t probe_at; //  s_probe_peers due (0: not)
    int64_t next_scan;
    int64_t scan_now; //  clock of the current deadline scan
    int64_t start_ms;
    tf_vent_tick_fn *tick;
    void *tick_arg;
    tf_vent_source_fn *source;
    void *source_arg;
    tf_vent_fail_fn *fail_fn;
    void *fail_arg;
    tf_vent_stats_t stats;
    tf_latency_t latency;
    tf_progress_t progress;
    tf_ratelimit_t rl;
    tf_rx_t rx;
};

static uint64_t s_random_job(void)
{
    uint64_t job = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &job, sizeof job) != sizeof job)
            job = 0;
        close(fd);
    }
    if (job == 0)
        job = (uint64_t)tf_now_us() ^ ((uint64_t)getpid() << 32);
    return job ? job : 1;
}

static void s_release_item(void *arg, void *block, void *data)
{
    tf_vent_t *self = arg;
    tf_slab_release(self->slab, block, data);
}

tf_vent_t *tf_vent_new(const tf_config_t *cfg, char *err, size_t errlen)
{
    tf_vent_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->cfg = cfg;
    self->sink = -1;
    self->silent_sink_fd = -1;
    self->job = s_random_job();
    self->in_fd = STDIN_FILENO;
    self->need_input = true;
    tf_buf_init(&self->out);
    tf_buf_init(&self->skip);
    tf_rx_init(&self->rx);
    tf_limits_default(&self->limits);
    self->limits.max_item = (uint32_t)cfg->max_item;
    self->limits.max_result = (uint32_t)cfg->max_result;
    tf_latency_init(&self->latency);

    if (!tf_config_is_std(cfg->input)) {
        self->in_fd = open(cfg->input, O_RDONLY | O_CLOEXEC);
        if (self->in_fd < 0) {
            snprintf(err, errlen, "cannot open input '%s': %s", cfg->input, strerror(errno));
            goto fail;
        }
        self->in_owned = true;
        struct stat st;
        if (fstat(self->in_fd, &st) == 0 && S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "input '%s' is a directory", cfg->input);
            goto fail;
        }
    }
    self->reader = tf_reader_new(self->in_fd, cfg->null_sep ? '\0' : '\n', (size_t)cfg->max_item);
    self->window = tf_window_new((uint32_t)cfg->window, (size_t)cfg->window_bytes);
    self->slab = tf_slab_new(256 * 1024, 4096);
    if (!self->reader || !self->window || !self->slab) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    tf_window_set_release(self->window, s_release_item, self);
    if (cfg->failed) {
        //  A resumed job keeps the list of the run it resumes (emptied by
        //  s_on_sink_hello if the sink resumes nothing).
        self->failed_file = fopen(cfg->failed, cfg->resume ? "a" : "w");
        if (!self->failed_file) {
            snprintf(err, errlen, "cannot open --failed file '%s': %s", cfg->failed,
                     strerror(errno));
            goto fail;
        }
    }
    self->router = zsock_new(ZMQ_ROUTER);
    if (!self->router) {
        snprintf(err, errlen, "cannot create ROUTER socket");
        goto fail;
    }
    tf_net_setup(self->router, 16 << 20);
    zsock_set_router_mandatory(self->router, 1);
    //  ZeroMQ's connection heartbeats (ZMTP PING/PONG), answered by the
    //  peer's I/O thread even while its own thread is busy: a peer that is
    //  only silent (a sink blocked writing) keeps its connection, one whose
    //  host vanished without a FIN or RST loses it, and the watch below
    //  hears of it (the sink's give-up time starts then). Five heartbeat
    //  timeouts: a loaded machine must not cut live connections.
    //  (--heartbeat and --heartbeat-timeout are bounded: both fit an int.)
    zsock_set_heartbeat_ivl(self->router, (int)cfg->heartbeat_ms);
    zsock_set_heartbeat_timeout(self->router, (int)(5 * cfg->heartbeat_timeout_ms));
    //  A worker's connection that drops takes whatever was queued on it;
    //  the worker starts a new session at once, and the probe this watch
    //  triggers (s_probe_peers) finds the old one gone and re-queues its
    //  leases without waiting for the next heartbeat. Optional: without it
    //  the heartbeat finds it later.
    self->watch = tf_net_watch(self->router, ZMQ_EVENT_DISCONNECTED);
    if (cfg->curve_server_key &&
        tf_curve_server(self->router, cfg->curve_server_key, cfg->curve_allow, err, errlen))
        goto fail;
    if (cfg->bind && tf_vent_bind(self, cfg->bind, err, errlen))
        goto fail;
    if (cfg->cmd != TF_CMD_RUN && cfg->listen && tf_vent_bind(self, cfg->listen, err, errlen))
        goto fail;
    tf_progress_init(&self->progress, cfg->progress);
    return self;
fail:
    tf_vent_destroy(&self);
    return NULL;
}

void tf_vent_destroy(tf_vent_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    tf_vent_t *self = *self_p;
    tf_rx_close(&self->rx);
    tf_net_unwatch(self->router, &self->watch);
    zsock_destroy(&self->router);
    tf_window_destroy(&self->window); //  releases item copies: before the slab
    tf_slab_destroy(&self->slab);
    tf_reader_destroy(&self->reader);
    if (self->in_owned)
        close(self->in_fd);
    if (self->failed_file)
        fclose(self->failed_file);
    tf_buf_free(&self->out);
    tf_buf_free(&self->skip);
    free(self->peers);
    free(self);
    *self_p = NULL;
}

int tf_vent_bind(tf_vent_t *self, const char *endpoint, char *err, size_t errlen)
{
    return tf_net_bind(self->router, endpoint, err, errlen);
}

void tf_vent_set_sink_endpoint(tf_vent_t *self, const char *endpoint)
{
    snprintf(self->sink_override, sizeof self->sink_override, "%s", endpoint ? endpoint : "");
}

void tf_vent_set_sink_embedded(tf_vent_t *self, bool embedded)
{
    self->sink_embedded = embedded;
}

void tf_vent_set_tick(tf_vent_t *self, tf_vent_tick_fn *fn, void *arg)
{
    self->tick = fn;
    self->tick_arg = arg;
}

void tf_vent_set_source(tf_vent_t *self, tf_vent_source_fn *fn, void *arg)
{
    self->source = fn;
    self->source_arg = arg;
}

void tf_vent_set_fail_fn(tf_vent_t *self, tf_vent_fail_fn *fn, void *arg)
{
    self->fail_fn = fn;
    self->fail_arg = arg;
}

void tf_vent_abort(tf_vent_t *self)
{
    atomic_store(&self->abort_requested, true);
}

const tf_vent_stats_t *tf_vent_stats(const tf_vent_t *self)
{
    return &self->stats;
}

//  --------------------------------------------------------------------------
//  Peers

static bool s_peer_is(const s_peer_t *p, const uint8_t *rid, size_t len)
{
    return p->used && p->rid_len == len && memcmp(p->rid, rid, len) == 0;
}

static int s_peer_find(tf_vent_t *self, const uint8_t *rid, size_t len)
{
    if (self->last_peer < (int)self->npeers && s_peer_is(&self->peers[self->last_peer], rid, len))
        return self->last_peer;
    for (uint32_t i = self->npeers; i-- > 0;)
        if (s_peer_is(&self->peers[i], rid, len)) {
            self->last_peer = (int)i;
            return (int)i;
        }
    return -1;
}

//  Peers are never reused within a job: their counts feed the report.
static int s_peer_add(tf_vent_t *self, const uint8_t *rid, size_t len)
{
    if (self->npeers >= S_MAX_PEERS)
        return -1;
    if (self->npeers == self->peers_cap) {
        uint32_t cap = self->peers_cap ? self->peers_cap * 2 : 16;
        s_peer_t *peers = realloc(self->peers, cap * sizeof *peers);
        if (!peers)
            return -1;
        self->peers = peers;
        self->peers_cap = cap;
    }
    uint32_t i = self->npeers++;
    s_peer_t *p = &self->peers[i];
    memset(p, 0, sizeof *p);
    p->used = true;
    memcpy(p->rid, rid, len);
    p->rid_len = len;
    p->last_heard = tf_now_ms();
    p->fd = -1;
    return (int)i;
}

//  Peer w spoke (the message in self->rx): alive, and on that connection.
static void s_peer_heard(tf_vent_t *self, int w)
{
    s_peer_t *p = &self->peers[w];
    p->last_heard = tf_now_ms();
    p->fd = zmq_msg_get(&self->rx.msg, ZMQ_SRCFD);
}

static int s_send(tf_vent_t *self, int peer, const tf_buf_t *b)
{
    s_peer_t *p = &self->peers[peer];
    return tf_net_send(self->router, p->rid, p->rid_len, b->data, b->len);
}

static void s_unlease(tf_vent_t *self, tf_slot_t *slot)
{
    if (slot->state == TF_ITEM_LEASED && slot->worker >= 0) {
        s_peer_t *p = &self->peers[slot->worker];
        if (p->leased > 0)
            p->leased--;
    }
    slot->worker = -1;
}

static void s_requeue_lost(void *arg, uint64_t seq, tf_slot_t *slot)
{
    tf_vent_t *self = arg;
    s_unlease(self, slot);
    tf_window_requeue(self->window, seq);
    self->stats.resent_lost++; //  `retried` counts when it is sent again
}

//  A worker's done items that the sink has not acknowledged, when their
//  results may be gone: the worker is lost (they were queued in it, or on
//  their way), or it saw its connection to the sink drop (RESULTS_LOST).
//  A result that reached the sink is normally acknowledged within moments,
//  so waiting the whole --ack-timeout for the others only stalls the job:
//  they are sent again after two heartbeats (at worst a needless re-run,
//  whose result the sink drops as a duplicate).
static int64_t s_hasten_grace(const tf_vent_t *self)
{
    int64_t grace = 2 * self->cfg->heartbeat_ms;
    return grace < self->cfg->ack_timeout_ms ? grace : self->cfg->ack_timeout_ms;
}

static void s_hasten_lost(void *arg, uint64_t seq, tf_slot_t *slot)
{
    (void)seq;
    tf_vent_t *self = arg;
    int64_t at = tf_now_ms() + s_hasten_grace(self);
    if (slot->deadline > at)
        slot->deadline = at;
    slot->worker = -1; //  made due once, whatever happens to the worker next
    self->hastened++;
}

//  One pass over a lost worker's items: leases go back to the queue, done
//  but unacknowledged ones are made due soon.
static void s_lost_item(void *arg, uint64_t seq, tf_slot_t *slot)
{
    if (slot->state == TF_ITEM_LEASED)
        s_requeue_lost(arg, seq, slot);
    else if (slot->state == TF_ITEM_COMPLETED)
        s_hasten_lost(arg, seq, slot);
}

//  A peer is gone: `why` for the log; `silent` when only its heartbeats
//  stopped (its connection may be alive: a sink blocked writing, say).
static void s_peer_remove(tf_vent_t *self, int peer, const char *why, bool silent)
{
    s_peer_t *p = &self->peers[peer];
    if (!p->used)
        return;
    if (p->is_sink) {
        if (self->sink_embedded)
            tf_debug("ventilator: sink silent (%s), busy writing; waiting for it", why);
        else
            tf_warn("ventilator: sink lost (%s); waiting for a sink to register", why);
        self->sink = -1;
        self->sink_ep[0] = '\0';
        //  Only silent, it may be blocked writing (a full pipe): wait, and
        //  watch its connection. Its connection gone, it died or was cut
        //  off: wait a while only.
        self->silent_sink_fd = silent ? p->fd : -1;
        if (!silent)
            self->sink_gone_ms = tf_now_ms();
    } else if (self->phase >= S_ENDING) {
        //  Told the job is over (nothing is leased by then): leaving is
        //  what it should do, not a loss.
        tf_debug("ventilator: worker %s left (%s)", p->name, why);
        self->nworkers--;
    } else {
        int64_t quiet_ms = tf_now_ms() - p->last_heard;
        uint32_t leased = p->leased;
        p->lost = true;
        self->hastened = 0;
        tf_window_each(self->window, -1, peer, s_lost_item, self);
        tf_warn("ventilator: worker %s lost (%s), %u item(s) re-queued, %u done but not "
                "acknowledged",
                p->name, why, leased, self->hastened);
        self->stats.workers_lost++;
        if (self->stats.first_loss_detect_ms == 0)
            self->stats.first_loss_detect_ms = quiet_ms > 0 ? quiet_ms : 1;
        self->nworkers--;
    }
    p->used = false;
}

//  A heartbeat to peer i; a peer without a connection any more (the send
//  fails with EHOSTUNREACH under ROUTER_MANDATORY) is lost.
static void s_heartbeat_peer(tf_vent_t *self, uint32_t i)
{
    if (tf_enc_heartbeat(&self->out, self->job, 0) == 0 && s_send(self, (int)i, &self->out) &&
        zmq_errno() == EHOSTUNREACH)
        s_peer_remove(self, (int)i, "disconnected", false);
}

//  After a dropped connection (tf_net_watch), a heartbeat to each peer
//  that last spoke on it finds it gone at once rather than at the next
//  beat: a joined worker has moved to a new session on a new socket, and
//  the sink comes back under a new routing id, so the old one has no
//  connection any more. Only those peers: anyone can open and drop
//  connections to a bound socket.
static void s_probe_peers(tf_vent_t *self)
{
    //  ZMQ_EVENTS makes the socket take in its pending commands (the
    //  retired pipe) at once; sends only do now and then.
    zsock_events(self->router);
    for (uint32_t i = 0; i < self->npeers; i++)
        if (self->peers[i].used && self->peers[i].probe) {
            self->peers[i].probe = false;
            s_heartbeat_peer(self, i);
        }
}

void tf_vent_worker_gone(tf_vent_t *self, const char *name)
{
    for (uint32_t i = 0; i < self->npeers; i++) {
        s_peer_t *p = &self->peers[i];
        if (p->used && !p->is_sink && strcmp(p->name, name) == 0)
            s_peer_remove(self, (int)i, "process exited", false);
    }
}

//  --------------------------------------------------------------------------
//  Items

static void s_skip_flush(tf_vent_t *self)
{
    if (self->skip_count == 0 || self->sink < 0)
        return;
    tf_enc_batch_finish(&self->skip, self->skip_count);
    if (s_send(self, self->sink, &self->skip) != 0)
        tf_debug("ventilator: SKIP not sent (%s), will retry", zmq_strerror(zmq_errno()));
    self->skip_count = 0;
    self->skip.len = 0;
}

static void s_skip_add(tf_vent_t *self, uint64_t seq)
{
    if (self->skip_count == 0 && tf_enc_batch_begin(&self->skip, TF_MSG_SKIP, self->job))
        return;
    if (tf_enc_seq(&self->skip, seq) == 0)
        self->skip_count++;
    if (self->skip_count >= 4096)
        s_skip_flush(self);
}

//  An item read over --max-item (s_read_input): it was not kept (no data)
//  and fails when dispatch reaches it.
static bool s_not_kept(const tf_slot_t *slot)
{
    return slot->attempt == 0 && slot->last_status == TF_ST_BADITEM;
}

static void s_fail_final(tf_vent_t *self, uint64_t seq, tf_slot_t *slot, const char *why)
{
    s_unlease(self, slot);
    slot->state = TF_ITEM_FAILED;
    slot->deadline = tf_now_ms() + self->cfg->ack_timeout_ms;
    self->stats.failed++;
    int shown = slot->len > 200 ? 200 : (int)slot->len;
    if (self->fail_fn)
        self->fail_fn(self->fail_arg, seq, slot->last_status, slot->last_detail);
    else
        tf_error("ventilator: item %llu failed: %s: %.*s%s", (unsigned long long)seq + 1, why,
                 shown, slot->data ? (const char *)slot->data : "", slot->len > 200 ? "..." : "");
    //  An item read over --max-item was not kept: an empty line in its place
    //  would be read back as an empty item.
    if (self->failed_file && !s_not_kept(slot)) {
        if (slot->len)
            fwrite(slot->data, 1, slot->len, self->failed_file);
        fputc(self->cfg->null_sep ? '\0' : '\n', self->failed_file);
        fflush(self->failed_file);
    }
    s_skip_add(self, seq);
}

//  A journal that committed more items than the input has belongs to
//  another input: finishing would leave its output as it is and exit 0.
static void s_check_resume(tf_vent_t *self)
{
    if (!self->input_done || self->resume_from <= self->total)
        return;
    tf_error("ventilator: cannot resume: the journal says %llu item(s) were committed, but the "
             "input has %llu (not the input of the job it resumes?)",
             (unsigned long long)self->resume_from, (unsigned long long)self->total);
    self->input_error = true;
    atomic_store(&self->abort_requested, true);
}

//  Reads buffered items while the window has room. Returns true when it
//  stopped with items still buffered (the loop must not sleep).
static bool s_read_input(tf_vent_t *self)
{
    int budget = 4096; //  keep the loop responsive
    while (!self->input_done) {
        if (!tf_window_has_room(self->window, 0))
            return false;
        if (budget-- == 0)
            return true;
        const uint8_t *data;
        size_t len;
        uint64_t line;
        tf_rd_status_t st;
        if (self->source) {
            line = tf_window_next(self->window) + 1;
            st = self->source(self->source_arg, line - 1, &data, &len) ? TF_RD_ITEM : TF_RD_EOF;
            if (st == TF_RD_ITEM && len > (size_t)self->cfg->max_item) {
                st = TF_RD_TOOLONG; //  like the reader: a skipped item has no data
                len = 0;
            }
        } else
            st = tf_reader_next(self->reader, &data, &len, &line);
        if (st == TF_RD_AGAIN) {
            self->need_input = true; //  only now read more: the buffer stays small
            return false;
        }
        if (st == TF_RD_EOF) {
            self->input_done = true;
            self->total = tf_window_next(self->window);
            tf_progress_total(&self->progress, self->total);
            tf_info("ventilator: input done, %llu items", (unsigned long long)self->total);
            s_check_resume(self);
            return false;
        }
        //  A skipped (too long) item enters with no data (len 0): it only fails.
        if (!tf_window_has_room(self->window, len)) {
            //  Over the byte budget: wait for acks. The reader keeps the item.
            if (!self->source)
                tf_reader_unget(self->reader);
            return false;
        }
        uint64_t seq = tf_window_next(self->window);
        if (seq < self->resume_from) {
            tf_window_push_done(self->window, seq);
            self->stats.items++;
            self->stats.skipped_resume++;
            continue;
        }
        uint8_t *copy = NULL;
        void *block = NULL;
        if (len > 0) {
            copy = tf_slab_alloc(self->slab, len, &block);
            if (!copy) {
                if (!self->source)
                    tf_reader_unget(self->reader);
                return false;
            }
            memcpy(copy, data, len);
        }
        tf_window_push_block(self->window, seq, copy, (uint32_t)len, block);
        self->stats.items++;
        if (st == TF_RD_TOOLONG)
            //  Failed when dispatch reaches it (s_dispatch_worker), not now:
            //  before the sink registers, a --resume may still cover it.
            tf_window_get(self->window, seq)->last_status = TF_ST_BADITEM;
    }
    return false;
}

static void s_fill_input(tf_vent_t *self)
{
    if (self->input_done)
        return;
    ssize_t n = tf_reader_fill(self->reader);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
        tf_error("ventilator: cannot read input: %s", strerror(errno));
        self->input_done = true;
        self->input_error = true;
        self->total = tf_window_next(self->window);
        self->stop_requested = true;
    }
}

//  --------------------------------------------------------------------------
//  Dispatch

static void s_dispatch_worker(tf_vent_t *self, int w)
{
    s_peer_t *p = &self->peers[w];
    while (p->credit > 0 && tf_window_pending(self->window) > 0) {
        tf_buf_t *b = &self->out;
        if (tf_enc_batch_begin(b, TF_MSG_TASKS, self->job))
            return;
        uint32_t n = 0;
        int64_t now_ms = tf_now_ms();
        uint64_t seq;
        while ((int64_t)n < p->credit && (n == 0 || b->len < S_BATCH_BYTES) &&
               tf_window_pop(self->window, &seq)) {
            tf_slot_t *slot = tf_window_get(self->window, seq);
            if (s_not_kept(slot)) {
                char why[128];
                snprintf(why, sizeof why, "longer than --max-item (%lld bytes; not kept%s)",
                         (long long)self->cfg->max_item,
                         self->failed_file ? ", not in --failed" : "");
                s_fail_final(self, seq, slot, why);
                continue;
            }
            if (tf_enc_item(b, seq, slot->attempt + 1, slot->data, slot->len)) {
                tf_window_requeue(self->window, seq);
                break;
            }
            if (slot->attempt > 0)
                self->stats.retried++;
            slot->attempt++;
            slot->worker = w; //  tf_window_pop made it LEASED
            slot->deadline = 0;
            if (self->cfg->timeout_ms > 0) {
                int64_t ahead = 1 + p->leased / (p->slots ? p->slots : 1);
                slot->deadline =
                    now_ms + (self->cfg->timeout_ms + self->cfg->heartbeat_timeout_ms) * ahead;
            }
            p->leased++;
            n++;
        }
        if (n == 0)
            return;
        tf_enc_batch_finish(b, n);
        p->credit -= n;
        if (s_send(self, w, b) != 0) {
            tf_debug("ventilator: TASKS to %s failed: %s", p->name, zmq_strerror(zmq_errno()));
            s_peer_remove(self, w, "unreachable", false);
            return;
        }
        self->stats.batches++;
    }
}

static void s_dispatch(tf_vent_t *self)
{
    if (self->phase != S_RUNNING || self->sink < 0 || self->npeers == 0)
        return;
    uint32_t n = self->npeers;
    for (uint32_t k = 0; k < n && tf_window_pending(self->window) > 0; k++) {
        int w = (int)((self->rr + k) % n);
        s_peer_t *p = &self->peers[w];
        if (p->used && !p->is_sink && p->credit > 0)
            s_dispatch_worker(self, w);
    }
    self->rr = (int)((self->rr + 1) % (n ? n : 1));
}

//  --------------------------------------------------------------------------
//  Incoming messages

static void s_malformed(tf_vent_t *self, const char *why)
{
    tf_log_malformed(&self->rl, &self->stats.malformed, "ventilator", why);
}

static void s_send_welcome(tf_vent_t *self, int w)
{
    tf_welcome_t wl;
    memset(&wl, 0, sizeof wl);
    wl.hb_ivl_ms = (uint32_t)self->cfg->heartbeat_ms;
    wl.hb_timeout_ms = (uint32_t)self->cfg->heartbeat_timeout_ms;
    wl.timeout_ms =
        (uint32_t)(self->cfg->timeout_ms > UINT32_MAX ? UINT32_MAX : self->cfg->timeout_ms);
    //  No result larger than the sink takes: a worker fails it (TOOBIG)
    //  instead of sending what the sink would drop, for ever.
    wl.max_result = (uint32_t)self->cfg->max_result;
    if (self->sink_max_result && self->sink_max_result < wl.max_result)
        wl.max_result = self->sink_max_result;
    snprintf(wl.sink, sizeof wl.sink, "%s",
             self->sink_override[0] ? self->sink_override : self->sink_ep);
    if (tf_enc_welcome(&self->out, self->job, &wl) == 0 && s_send(self, w, &self->out) == 0) {
        //  The credit asked for with the HELLO: its items follow the WELCOME
        //  on the same connection (one round trip saved at join). The worker
        //  counts on exactly that much once welcomed, hence "at least", not
        //  "more".
        s_peer_t *p = &self->peers[w];
        if (p->credit < p->hello_credit)
            p->credit = p->hello_credit;
        p->hello_credit = 0;
    }
}

static void s_on_hello(tf_vent_t *self, const uint8_t *data, size_t size)
{
    tf_hello_t hello;
    tf_proto_get_hello(data, size, &hello);
    if (self->phase >= S_ENDING) {
        //  Job ending: this worker waits for the next one.
        tf_enc_job_end(&self->out, self->job);
        tf_net_send(self->router, self->rx.rid, self->rx.rid_len, self->out.data, self->out.len);
        return;
    }
    int w = s_peer_find(self, self->rx.rid, self->rx.rid_len);
    if (w < 0) {
        w = s_peer_add(self, self->rx.rid, self->rx.rid_len);
        if (w < 0) {
            if (tf_log_ratelimit(&self->rl))
                tf_warn("ventilator: peer table full, HELLO from %s ignored", hello.name);
            return;
        }
        s_peer_t *p = &self->peers[w];
        p->slots = hello.slots;
        snprintf(p->name, sizeof p->name, "%s", hello.name[0] ? hello.name : "worker");
        self->nworkers++;
        self->stats.workers_seen++;
        tf_info("ventilator: worker %s joined with %u slot(s)", p->name, p->slots);
    } else if (self->peers[w].is_sink) {
        s_malformed(self, "HELLO from the sink's connection");
        return;
    }
    s_peer_heard(self, w);
    s_peer_t *p = &self->peers[w];
    //  Every HELLO, not only the first: a worker whose WELCOME (and the
    //  items behind it) was lost with its connection says HELLO again and
    //  counts on this credit once welcomed. A HELLO that crossed our WELCOME
    //  costs at most one item per slot fetched ahead.
    p->hello_credit = hello.credit < p->slots ? hello.credit : p->slots;
    //  Without a sink the worker waits; it is welcomed when the sink comes.
    if (self->sink >= 0)
        s_send_welcome(self, w);
}

static void s_on_report(tf_vent_t *self, int w, const uint8_t *data, size_t size)
{
    s_peer_t *p = &self->peers[w];
    uint32_t credit, count;
    tf_proto_get_report(data, size, &credit, &count);
    tf_iter_t it;
    tf_iter_init(&it, data, size);
    tf_done_t d;
    int64_t now = tf_now_ms();
    while (tf_iter_done(&it, &d)) {
        //  Every successful execution counts for latency, even when the
        //  sink's ack overtook this report.
        if (d.status == TF_ST_OK)
            tf_latency_add(&self->latency, d.duration_us);
        tf_slot_t *slot = tf_window_get(self->window, d.seq);
        //  Stale: acked meanwhile, re-leased elsewhere, or an old attempt.
        if (!slot || slot->state != TF_ITEM_LEASED || slot->worker != w ||
            slot->attempt != d.attempt)
            continue;
        s_unlease(self, slot);
        if (d.status == TF_ST_OK) {
            slot->state = TF_ITEM_COMPLETED;
            slot->deadline = now + self->cfg->ack_timeout_ms;
            slot->worker = w; //  who holds the result until the sink has it
            p->done++;
        } else if (d.status == TF_ST_REQUEUE) {
            slot->attempt--; //  not charged
            tf_window_requeue(self->window, d.seq);
        } else {
            slot->failures++;
            slot->last_status = d.status;
            slot->last_detail = d.detail;
            p->failed++;
            char why[160];
            if (d.status == TF_ST_EXIT)
                snprintf(why, sizeof why, "exit status %u", d.detail);
            else if (d.status == TF_ST_SIGNAL)
                snprintf(why, sizeof why, "killed by signal %u", d.detail);
            else if (d.status == TF_ST_STALL)
                snprintf(why, sizeof why,
                         "co-process waits for input without answering (does "
                         "it buffer its output, or skip lines?)");
            else if (d.status == TF_ST_SPAWN)
                snprintf(why, sizeof why, "cannot start command: %s", strerror((int)d.detail));
            else
                snprintf(why, sizeof why, "%s", tf_status_name(d.status));
            if (d.status == TF_ST_BADITEM || slot->failures >= (uint32_t)self->cfg->retries) {
                char full[512];
                snprintf(full, sizeof full, "%s after %u attempt(s) (last on %s)", why,
                         slot->failures, p->name);
                s_fail_final(self, d.seq, slot, full);
            } else {
                tf_info("ventilator: item %llu attempt %u failed on %s: %s, retrying",
                        (unsigned long long)d.seq + 1, d.attempt, p->name, why);
                tf_window_requeue(self->window, d.seq);
            }
        }
    }
    if (credit > 0)
        p->credit += credit;
}

static void s_on_ack(tf_vent_t *self, const uint8_t *data, size_t size)
{
    tf_iter_t it;
    tf_iter_init(&it, data, size);
    tf_range_t r;
    while (tf_iter_range(&it, &r)) {
        uint64_t end = r.start + r.count;
        uint64_t lo =
            r.start < tf_window_base(self->window) ? tf_window_base(self->window) : r.start;
        uint64_t hi = end > tf_window_next(self->window) ? tf_window_next(self->window) : end;
        for (uint64_t s = lo; s < hi; s++) {
            tf_slot_t *slot = tf_window_get(self->window, s);
            if (!slot)
                continue;
            //  The ack may overtake the worker's report: credit it here.
            if (slot->state == TF_ITEM_LEASED && slot->worker >= 0)
                self->peers[slot->worker].done++;
            s_unlease(self, slot);
            if (slot->state != TF_ITEM_FAILED)
                self->stats.done++;
            tf_window_ack_slot(self->window, s, slot);
        }
    }
    tf_progress_update(&self->progress, self->stats.done, self->stats.failed, self->nworkers);
}

static void s_on_sink_hello(tf_vent_t *self, const uint8_t *data, size_t size)
{
    char ep[TF_MAX_ENDPOINT + 1];
    uint64_t resume = 0;
    uint32_t max_result = 0;
    tf_proto_get_sink_hello(data, size, ep, sizeof ep, &resume, &max_result);
    int s = s_peer_find(self, self->rx.rid, self->rx.rid_len);
    if (s >= 0 && !self->peers[s].is_sink) {
        s_malformed(self, "SINK_HELLO from a worker's connection");
        return;
    }
    if (s < 0 && self->sink >= 0) {
        //  One sink per job: another one may take over only once this one
        //  is lost, so a stranger cannot hijack the results. Our sink back
        //  on a new connection (a new routing id) finds the old one gone:
        //  probed now, it turns out lost.
        self->peers[self->sink].probe = true;
        s_probe_peers(self);
        if (self->sink >= 0) {
            //  Not counted as malformed: a sink whose old connection is not
            //  retired yet says it again a moment later.
            tf_debug("ventilator: SINK_HELLO while a sink is registered: refused");
            return;
        }
    }
    if (s < 0) {
        s = s_peer_add(self, self->rx.rid, self->rx.rid_len);
        if (s < 0)
            return;
        self->peers[s].is_sink = true;
        snprintf(self->peers[s].name, sizeof self->peers[s].name, "sink");
        self->sink = s;
        //  A wildcard host means "where you see me from".
        const char *peer = zmq_msg_gets(&self->rx.msg, "Peer-Address");
        if (tf_net_fill_host(ep, peer, self->sink_ep, sizeof self->sink_ep))
            snprintf(self->sink_ep, sizeof self->sink_ep, "%s", ep);
        tf_info("ventilator: sink registered at %s", self->sink_ep);
        self->sink_max_result = max_result;
        if (max_result && max_result < (uint64_t)self->cfg->max_result)
            tf_warn("ventilator: the sink takes results of at most %u bytes (its --max-result), "
                    "fewer than ours (%lld): a larger result fails its item",
                    max_result, (long long)self->cfg->max_result);
        self->sink_gone_ms = 0;
        self->silent_sink_fd = -1;
        //  Workers already here learn the (new) sink.
        for (uint32_t i = 0; i < self->npeers; i++)
            if (self->peers[i].used && !self->peers[i].is_sink)
                s_send_welcome(self, (int)i);
        //  Failed items whose SKIP went nowhere are re-sent by the scan.
    }
    s_peer_heard(self, s);
    if (resume > self->resume_from) {
        //  The sink already holds everything below `resume` (--resume).
        self->resume_from = resume;
        s_check_resume(self);
        uint64_t hi = resume < tf_window_next(self->window) ? resume : tf_window_next(self->window);
        for (uint64_t q = tf_window_base(self->window); q < hi; q++) {
            tf_slot_t *slot = tf_window_get(self->window, q);
            if (slot) {
                s_unlease(self, slot);
                tf_window_ack_slot(self->window, q, slot);
                self->stats.skipped_resume++;
            }
        }
    }
    //  The first sink tells whether --resume resumes anything: if not, the
    //  job starts afresh, and so does --failed (nothing failed before: items
    //  fail only once dispatched, and dispatch waits for a sink).
    if (!self->sink_seen && self->failed_file && self->cfg->resume && self->resume_from == 0 &&
        ftruncate(fileno(self->failed_file), 0) != 0)
        tf_warn("ventilator: cannot empty --failed file: %s", strerror(errno));
    self->sink_seen = true;
    tf_sink_welcome_t sw = {(uint32_t)self->cfg->window, (uint32_t)self->cfg->heartbeat_ms,
                            (uint32_t)self->cfg->heartbeat_timeout_ms};
    if (tf_enc_sink_welcome(&self->out, self->job, &sw) == 0)
        s_send(self, s, &self->out);
    if (self->phase >= S_ENDING &&
        tf_enc_end(&self->out, self->job, self->end_total, self->stats.failed,
                   self->partial ? TF_END_PARTIAL : 0) == 0)
        s_send(self, s, &self->out);
}

static void s_handle(tf_vent_t *self)
{
    for (int budget = 1000; budget > 0; budget--) {
        tf_hdr_t hdr;
        const char *why;
        tf_rx_status_t st =
            tf_net_recv_msg(self->router, true, &self->rx, &self->limits, &hdr, &why);
        if (st == TF_RX_NONE)
            return;
        if (st == TF_RX_BAD) {
            s_malformed(self, why);
            continue;
        }
        const uint8_t *data = tf_rx_data(&self->rx);
        size_t size = tf_rx_size(&self->rx);
        if (hdr.type == TF_MSG_HELLO) {
            s_on_hello(self, data, size);
            continue;
        }
        if (hdr.type == TF_MSG_SINK_HELLO) {
            s_on_sink_hello(self, data, size);
            continue;
        }
        int peer = s_peer_find(self, self->rx.rid, self->rx.rid_len);
        if (peer < 0 || hdr.job != self->job) {
            //  Unknown session or another job: tell it to start over (a
            //  sink that came back on a new connection registers again).
            if (hdr.type == TF_MSG_REPORT || hdr.type == TF_MSG_HEARTBEAT ||
                hdr.type == TF_MSG_ACK) {
                tf_enc_reset(&self->out, self->job, 1);
                tf_net_send(self->router, self->rx.rid, self->rx.rid_len, self->out.data,
                            self->out.len);
            } else if (hdr.type != TF_MSG_RESULTS_LOST)
                s_malformed(self, "message from an unknown peer or job");
            //  (A RESULTS_LOST of a session already dropped: its items
            //  were made due then; its next REPORT or HEARTBEAT gets RESET.)
            continue;
        }
        s_peer_heard(self, peer);
        s_peer_t *p = &self->peers[peer];
        switch (hdr.type) {
        case TF_MSG_REPORT:
            if (p->is_sink)
                s_malformed(self, "REPORT from the sink");
            else
                s_on_report(self, peer, data, size);
            break;
        case TF_MSG_HEARTBEAT:
            break;
        case TF_MSG_RESULTS_LOST:
            //  Taken up by the next deadline scan (one pass over the window
            //  per heartbeat, however many of these come).
            if (p->is_sink)
                s_malformed(self, "RESULTS_LOST from the sink");
            else {
                tf_debug("ventilator: worker %s: results may be lost on the way to the sink",
                         p->name);
                p->results_lost = true;
                self->results_lost = true;
            }
            break;
        case TF_MSG_ACK:
            if (!p->is_sink)
                s_malformed(self, "ACK from a worker");
            else
                s_on_ack(self, data, size);
            break;
        case TF_MSG_FINISHED:
            if (p->is_sink && self->phase == S_ENDING) {
                tf_finished_t f;
                tf_proto_get_finished(data, size, &f);
                self->phase = S_FINISHED;
                self->sink_not_ok = !f.ok; //  e.g. items failed before a --resume
                tf_info("ventilator: sink finished, %llu results written",
                        (unsigned long long)f.written);
            }
            break;
        default:
            s_malformed(self, "unexpected message type");
        }
    }
}

//  --------------------------------------------------------------------------
//  Timers

//  One pass over the window for every kind of deadline (LEASED, COMPLETED,
//  FAILED; PENDING items have none).
static void s_expire_lease(void *arg, uint64_t seq, tf_slot_t *slot)
{
    tf_vent_t *self = arg;
    int64_t now = self->scan_now;
    if (self->results_lost && slot->state == TF_ITEM_COMPLETED && slot->worker >= 0 &&
        self->peers[slot->worker].results_lost)
        s_hasten_lost(self, seq, slot);
    if (slot->deadline == 0 || slot->deadline > now)
        return;
    if (slot->state == TF_ITEM_LEASED) {
        //  The worker kept neither the time limit nor in touch about it.
        s_unlease(self, slot);
        slot->failures++;
        self->stats.resent_lease++;
        if (slot->failures >= (uint32_t)self->cfg->retries)
            s_fail_final(self, seq, slot, "lease expired (timeout)");
        else
            tf_window_requeue(self->window, seq);
    } else if (slot->state == TF_ITEM_COMPLETED) {
        //  Done but never acknowledged: the result was lost on the way.
        self->stats.resent_ack++;
        tf_window_requeue(self->window, seq);
    } else if (slot->state == TF_ITEM_FAILED) {
        slot->deadline = now + self->cfg->ack_timeout_ms;
        s_skip_add(self, seq);
    }
}

//  Takes the router's connection events: the peers of each dropped
//  connection are probed S_PROBE_DELAY_MS after the last drop.
static void s_watch_events(tf_vent_t *self)
{
    int ev, fd;
    while (tf_net_watch_next(self->watch, &ev, &fd) == 0) {
        if (ev != ZMQ_EVENT_DISCONNECTED || fd < 0)
            continue;
        if (fd == self->silent_sink_fd && self->sink < 0) {
            //  The sink that fell silent is gone for good now.
            self->silent_sink_fd = -1;
            self->sink_gone_ms = tf_now_ms();
        }
        for (uint32_t i = 0; i < self->npeers; i++)
            if (self->peers[i].used && self->peers[i].fd == fd) {
                self->peers[i].probe = true;
                self->probe_at = tf_now_ms() + S_PROBE_DELAY_MS;
            }
    }
}

static void s_timers(tf_vent_t *self)
{
    int64_t now = tf_now_ms();
    if (self->sink < 0 && self->sink_gone_ms &&
        now - self->sink_gone_ms > TF_GIVE_UP_TIMEOUTS * self->cfg->heartbeat_timeout_ms) {
        tf_error("ventilator: the sink's connection has been gone for %.0f s: the job cannot "
                 "finish without it (the results it held are lost); giving up. Rerun with "
                 "--journal/--resume to go on from its last commit",
                 (double)(now - self->sink_gone_ms) / 1000.0);
        self->sink_gone_ms = 0;
        atomic_store(&self->abort_requested, true);
    }
    if (self->probe_at && now >= self->probe_at) {
        self->probe_at = 0;
        s_probe_peers(self);
    }
    if (now >= self->next_hb) {
        self->next_hb = now + self->cfg->heartbeat_ms;
        for (uint32_t i = 0; i < self->npeers; i++) {
            s_peer_t *p = &self->peers[i];
            if (!p->used)
                continue;
            if (now - p->last_heard > self->cfg->heartbeat_timeout_ms)
                s_peer_remove(self, (int)i, "no heartbeat", true);
            else
                s_heartbeat_peer(self, i);
        }
        tf_progress_update(&self->progress, self->stats.done, self->stats.failed, self->nworkers);
    }
    if (now >= self->next_scan) {
        self->next_scan = now + self->cfg->heartbeat_ms;
        self->scan_now = now;
        self->hastened = 0;
        tf_window_each(self->window, -1, -1, s_expire_lease, self);
        if (self->results_lost) {
            self->results_lost = false;
            for (uint32_t i = 0; i < self->npeers; i++)
                self->peers[i].results_lost = false;
            if (self->hastened > 0)
                tf_info("ventilator: %u done item(s) whose results may have been lost on the "
                        "way to the sink run again unless acknowledged within %.1f s",
                        self->hastened, (double)s_hasten_grace(self) / 1000.0);
        }
    }
}

//  Tells every worker the job is over (they leave, or wait for the next).
static void s_job_end_workers(tf_vent_t *self)
{
    for (uint32_t i = 0; i < self->npeers; i++) {
        s_peer_t *p = &self->peers[i];
        if (p->used && !p->is_sink && tf_enc_job_end(&self->out, self->job) == 0)
            s_send(self, (int)i, &self->out);
    }
}

static void s_send_end(tf_vent_t *self)
{
    if (self->sink < 0)
        return;
    if (tf_enc_end(&self->out, self->job, self->end_total, self->stats.failed,
                   self->partial ? TF_END_PARTIAL : 0) == 0)
        s_send(self, self->sink, &self->out);
    self->end_sent_ms = tf_now_ms();
}

//  No item is leased or in flight any more (or draining gave up): the workers
//  are told the job is over once, and may go while the sink writes; the sink
//  gets END (again every two heartbeats until it says FINISHED).
static void s_enter_ending(tf_vent_t *self, uint64_t end_total, bool partial)
{
    self->phase = S_ENDING;
    self->end_total = end_total;
    self->partial = partial;
    s_job_end_workers(self);
    s_send_end(self);
}

static void s_phase(tf_vent_t *self)
{
    int64_t now = tf_now_ms();
    if (self->phase == S_RUNNING && (atomic_load(&self->stop_requested) || tf_interrupted())) {
        tf_warn("ventilator: stopping: no new items, draining %llu in flight",
                (unsigned long long)(tf_window_next(self->window) - tf_window_base(self->window) -
                                     tf_window_pending(self->window)));
        self->phase = S_DRAINING;
        self->input_done = true;
        self->drain_deadline = now + (self->cfg->timeout_ms > 0 ? self->cfg->timeout_ms : 0) +
                               2 * self->cfg->heartbeat_timeout_ms + self->cfg->ack_timeout_ms;
    }
    if (self->phase == S_RUNNING && self->input_done && tf_window_inflight(self->window) == 0) {
        s_enter_ending(self, self->total, false);
    }
    if (self->phase == S_DRAINING) {
        //  Done when nothing is leased or awaiting an ack any more. Nothing
        //  is leased while draining, so an item found idle stays idle: each
        //  look resumes where the last one found a busy item.
        bool busy = false;
        uint64_t s = self->drain_from > tf_window_base(self->window) ? self->drain_from
                                                                     : tf_window_base(self->window);
        for (; s < tf_window_next(self->window); s++) {
            tf_slot_t *slot = tf_window_get(self->window, s);
            if (slot && (slot->state == TF_ITEM_LEASED || slot->state == TF_ITEM_COMPLETED)) {
                busy = true;
                break;
            }
        }
        self->drain_from = s;
        if (!busy || now >= self->drain_deadline) {
            //  Everything below base is acknowledged: the sink writes that prefix.
            s_enter_ending(self, tf_window_base(self->window), true);
        }
    }
    if (self->phase == S_ENDING && now - self->end_sent_ms > self->cfg->heartbeat_ms * 2)
        s_send_end(self);
}

int tf_vent_run(tf_vent_t *self)
{
    self->start_ms = tf_now_ms();
    self->next_hb = self->start_ms;
    self->next_scan = self->start_ms + self->cfg->heartbeat_ms;
    void *handle = zsock_resolve(self->router);
    while (self->phase != S_FINISHED && !atomic_load(&self->abort_requested)) {
        if (tf_interrupted() && self->sink < 0) {
            tf_warn("ventilator: stopping: no sink registered, nothing to write");
            break;
        }
        bool more_input = self->phase == S_RUNNING && s_read_input(self);
        s_dispatch(self);
        s_skip_flush(self);
        s_phase(self);
        if (self->phase == S_FINISHED)
            break;
        bool want_input = !self->source && !self->input_done && self->need_input &&
                          tf_window_has_room(self->window, 0);
        zmq_pollitem_t items[4];
        size_t n = 0;
        items[n++] = (zmq_pollitem_t){handle, 0, ZMQ_POLLIN, 0};
        //  The signal pipe only until the first signal: then we drain.
        if (tf_signal_fd() >= 0 && !tf_interrupted())
            items[n++] = (zmq_pollitem_t){NULL, tf_signal_fd(), ZMQ_POLLIN, 0};
        zmq_pollitem_t *in = NULL, *drop = NULL;
        if (want_input) {
            in = &items[n++];
            *in = (zmq_pollitem_t){NULL, self->in_fd, ZMQ_POLLIN, 0};
        }
        if (self->watch) {
            drop = &items[n++];
            *drop = (zmq_pollitem_t){zsock_resolve(self->watch), 0, ZMQ_POLLIN, 0};
        }
        int64_t now = tf_now_ms();
        int64_t wake = self->next_scan < self->next_hb ? self->next_scan : self->next_hb;
        if (self->probe_at && self->probe_at < wake)
            wake = self->probe_at;
        int64_t timeout = wake - now;
        if (timeout < 0 || more_input)
            timeout = 0;
        int rc = zmq_poll(items, (int)n, (long)timeout);
        if (rc < 0 && zmq_errno() != EINTR) {
            tf_error("ventilator: poll failed: %s", zmq_strerror(zmq_errno()));
            break;
        }
        if (rc > 0 && (items[0].revents & ZMQ_POLLIN))
            s_handle(self);
        if (rc > 0 && in && (in->revents & (ZMQ_POLLIN | ZMQ_POLLERR))) {
            s_fill_input(self);
            self->need_input = false;
        }
        if (rc > 0 && drop && (drop->revents & ZMQ_POLLIN))
            s_watch_events(self);
        s_timers(self);
        if (self->tick)
            self->tick(self, self->tick_arg);
    }
    self->stats.wall_ms = tf_now_ms() - self->start_ms;
    //  Ended without ENDING (aborted, interrupted before the end): tell the
    //  workers the job is over so they can take the next one.
    if (self->phase < S_ENDING)
        s_job_end_workers(self);
    tf_progress_finish(&self->progress, self->stats.done, self->stats.failed, self->nworkers);
    if (self->phase != S_FINISHED)
        return tf_interrupted() ? 130 : 2;
    if (self->input_error)
        return 2;
    if (tf_interrupted())
        return 130;
    return self->stats.failed > 0 || self->sink_not_ok ? 1 : 0;
}

int tf_vent_write_stats(const tf_vent_t *self, const char *path, uint64_t extra_malformed)
{
    cJSON *root = cJSON_CreateObject(); //  NULL: tf_stats_write_json reports it
    const tf_vent_stats_t *st = &self->stats;
    double secs = st->wall_ms > 0 ? (double)st->wall_ms / 1000.0 : 0.001;
    cJSON_AddNumberToObject(root, "version", 1);
    cJSON_AddNumberToObject(root, "items", (double)st->items);
    cJSON_AddNumberToObject(root, "done", (double)st->done);
    cJSON_AddNumberToObject(root, "failed", (double)st->failed);
    cJSON_AddNumberToObject(root, "retried", (double)st->retried);
    cJSON_AddNumberToObject(root, "resent_lost_worker", (double)st->resent_lost);
    cJSON_AddNumberToObject(root, "resent_lease", (double)st->resent_lease);
    cJSON_AddNumberToObject(root, "resent_unacked", (double)st->resent_ack);
    cJSON_AddNumberToObject(root, "skipped_resume", (double)st->skipped_resume);
    cJSON_AddNumberToObject(root, "malformed_dropped", (double)(st->malformed + extra_malformed));
    cJSON_AddNumberToObject(root, "batches", (double)st->batches);
    cJSON_AddNumberToObject(root, "workers_seen", (double)st->workers_seen);
    cJSON_AddNumberToObject(root, "workers_lost", (double)st->workers_lost);
    cJSON_AddNumberToObject(root, "loss_detect_ms", (double)st->first_loss_detect_ms);
    cJSON_AddNumberToObject(root, "wall_ms", (double)st->wall_ms);
    cJSON_AddNumberToObject(root, "throughput_per_s", (double)st->done / secs);
    cJSON *lat = cJSON_AddObjectToObject(root, "latency_us");
    if (lat) {
        const tf_latency_t *l = &self->latency;
        cJSON_AddNumberToObject(lat, "count", (double)l->count);
        cJSON_AddNumberToObject(lat, "mean", l->count ? (double)l->sum_us / (double)l->count : 0);
        cJSON_AddNumberToObject(lat, "p50", (double)tf_latency_percentile(l, 50));
        cJSON_AddNumberToObject(lat, "p90", (double)tf_latency_percentile(l, 90));
        cJSON_AddNumberToObject(lat, "p99", (double)tf_latency_percentile(l, 99));
        cJSON_AddNumberToObject(lat, "max", (double)l->max_us);
    }
    cJSON *workers = cJSON_AddArrayToObject(root, "workers");
    for (uint32_t i = 0; workers && i < self->npeers; i++) {
        const s_peer_t *p = &self->peers[i];
        if (p->is_sink)
            continue;
        cJSON *w = cJSON_CreateObject();
        if (!w)
            break;
        cJSON_AddStringToObject(w, "name", p->name);
        cJSON_AddNumberToObject(w, "slots", p->slots);
        cJSON_AddNumberToObject(w, "done", (double)p->done);
        cJSON_AddNumberToObject(w, "failed", (double)p->failed);
        cJSON_AddBoolToObject(w, "lost", p->lost);
        cJSON_AddItemToArray(workers, w);
    }
    return tf_stats_write_json(root, path, "ventilator");
}
