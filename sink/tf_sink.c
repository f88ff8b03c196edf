/*  tf_sink.c -- the sink: collects results, drops duplicates, acknowledges
    them to the ventilator in batches and writes them in input order. */
#include "tf_sink.h"

#include <cjson/cJSON.h>

#include "tf_curve.h"
#include "tf_journal.h"
#include "tf_log.h"
#include "tf_net.h"
#include "tf_proto.h"
#include "tf_reorder.h"
#include "tf_signal.h"
#include "tf_stats.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_OUT_BUF (256 * 1024)
#define S_MAX_ACK_RANGES 4096
//  At most one SINK_HELLO this often in answer to RESETs.
#define S_REJOIN_GAP_MS 50

struct _tf_sink_t {
    const tf_config_t *cfg;
    zsock_t *pull;   //  results from workers
    zsock_t *dealer; //  to the ventilator
    bool rejoining;  //  told RESET: registering again (s_reack_all when done)
    int64_t next_rejoin;
    char ventilator[TF_MAX_ENDPOINT + 1];
    char advertise[TF_MAX_ENDPOINT + 1];
    char last_ep[TF_MAX_ENDPOINT + 1];
    int out_fd;
    bool out_owned;
    tf_buf_t obuf;
    uint64_t out_offset; //  bytes in the output file so far
    tf_journal_t *journal;
    uint64_t resume_from;
    uint64_t released_next;   //  one past the last result handed to output
    uint64_t resumed_failed;  //  items that failed before --resume (journal)
    uint64_t released_failed; //  items below released_next that failed
    tf_reorder_t *reorder;
    uint64_t job;
    bool welcomed;
    bool ended;
    uint64_t total;
    uint64_t failed;
    bool embedded;
    atomic_bool stop;
    int64_t last_heard;
    int64_t vent_heard; //  last message of our job from the ventilator
    int64_t turn_ms;    //  when the loop last looked at the clock
    int64_t hb_ivl;     //  from the ventilator once welcomed
    int64_t hb_timeout;
    int64_t next_hb;
    int64_t next_hello;
    tf_limits_t limits;
    tf_buf_t msg;
    //  ACK ranges being collected in this turn
    tf_buf_t ack;
    uint32_t ack_count;
    uint64_t ack_start;
    uint32_t ack_len;
    tf_sink_stats_t stats;
    tf_ratelimit_t rl;
    tf_rx_t rx;
    bool write_failed;
    bool partial; //  the ventilator stopped early: the output is a prefix
    tf_sink_write_fn *writer;
    void *writer_arg;
};

tf_sink_t *tf_sink_new(const tf_config_t *cfg, char *err, size_t errlen)
{
    tf_sink_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->cfg = cfg;
    self->hb_ivl = cfg->heartbeat_ms;
    self->hb_timeout = cfg->heartbeat_timeout_ms;
    self->out_fd = STDOUT_FILENO;
    tf_buf_init(&self->obuf);
    tf_buf_init(&self->msg);
    tf_buf_init(&self->ack);
    tf_rx_init(&self->rx);
    tf_limits_default(&self->limits);
    self->limits.max_result = (uint32_t)cfg->max_result;
    atomic_init(&self->stop, false);
    bool to_file = !tf_config_is_std(cfg->output);
    if (cfg->journal) {
        if (!to_file) {
            snprintf(err, errlen, "--journal needs -o FILE (stdout cannot be cut back on resume)");
            goto fail;
        }
        if (cfg->unordered) {
            snprintf(err, errlen, "--journal needs ordered output (drop --unordered)");
            goto fail;
        }
    }
    if (to_file && !tf_config_is_std(cfg->input)) {
        //  `run -i f -o f` would empty its own input before reading it.
        struct stat ist, ost;
        if (stat(cfg->input, &ist) == 0 && stat(cfg->output, &ost) == 0 &&
            ist.st_dev == ost.st_dev && ist.st_ino == ost.st_ino) {
            snprintf(err, errlen, "output '%s' is the input file", cfg->output);
            goto fail;
        }
    }
    if (to_file) {
        int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (cfg->resume ? 0 : O_TRUNC);
        self->out_fd = open(cfg->output, flags, 0666);
        if (self->out_fd < 0) {
            snprintf(err, errlen, "cannot open output '%s': %s", cfg->output, strerror(errno));
            goto fail;
        }
        self->out_owned = true;
    }
    if (cfg->journal) {
        tf_journal_state_t js = {0, 0, 0};
        if (cfg->resume && tf_journal_read(cfg->journal, &js, err, errlen))
            goto fail;
        //  Cut back whatever was written after the last committed record;
        //  an output shorter than that lost committed results (truncated,
        //  deleted, replaced): extending it would fill them with zeros.
        struct stat ost;
        if (fstat(self->out_fd, &ost) == 0 && (uint64_t)ost.st_size < js.offset) {
            snprintf(err, errlen,
                     "cannot resume: output '%s' has %llu bytes, the journal '%s' says %llu "
                     "were committed (output truncated or replaced?)",
                     cfg->output, (unsigned long long)ost.st_size, cfg->journal,
                     (unsigned long long)js.offset);
            goto fail;
        }
        if (ftruncate(self->out_fd, (off_t)js.offset) || lseek(self->out_fd, 0, SEEK_END) < 0) {
            snprintf(err, errlen, "cannot cut back output '%s': %s", cfg->output, strerror(errno));
            goto fail;
        }
        self->journal = tf_journal_open(cfg->journal, &js, err, errlen);
        if (!self->journal)
            goto fail;
        self->resume_from = js.next;
        self->released_next = js.next;
        self->out_offset = js.offset;
        self->resumed_failed = js.failed;
        self->released_failed = js.failed;
        if (js.next > 0)
            tf_info("sink: resuming at item %llu, output offset %llu, %llu failed before",
                    (unsigned long long)js.next + 1, (unsigned long long)js.offset,
                    (unsigned long long)js.failed);
    } else if (cfg->resume && to_file) {
        snprintf(err, errlen, "--resume needs --journal FILE");
        goto fail;
    }
    self->pull = zsock_new(ZMQ_PULL);
    self->dealer = zsock_new(ZMQ_DEALER);
    if (!self->pull || !self->dealer) {
        snprintf(err, errlen, "cannot create sockets");
        goto fail;
    }
    tf_net_setup(self->pull, cfg->max_result + (1 << 20));
    tf_net_setup(self->dealer, 1 << 20);
    if (cfg->curve_server_key &&
        tf_curve_server(self->pull, cfg->curve_server_key, cfg->curve_allow, err, errlen))
        goto fail;
    //  Towards the ventilator the sink is a client; by default with the
    //  job's server key pair, which the ventilator then must allow.
    const char *mine = cfg->curve_client_key ? cfg->curve_client_key : cfg->curve_server_key;
    const char *theirs =
        cfg->curve_server_public ? cfg->curve_server_public : cfg->curve_server_key;
    if ((mine || theirs) && tf_curve_client(self->dealer, mine, theirs, err, errlen))
        goto fail;
    if (cfg->bind && tf_sink_bind(self, cfg->bind, err, errlen))
        goto fail;
    if (cfg->ventilator)
        tf_sink_set_ventilator(self, cfg->ventilator);
    if (cfg->advertise)
        tf_sink_set_advertise(self, cfg->advertise);
    return self;
fail:
    tf_sink_destroy(&self);
    return NULL;
}

void tf_sink_destroy(tf_sink_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    tf_sink_t *self = *self_p;
    tf_rx_close(&self->rx);
    zsock_destroy(&self->pull);
    zsock_destroy(&self->dealer);
    tf_reorder_destroy(&self->reorder);
    tf_journal_close(&self->journal);
    if (self->out_owned)
        close(self->out_fd);
    tf_buf_free(&self->obuf);
    tf_buf_free(&self->msg);
    tf_buf_free(&self->ack);
    free(self);
    *self_p = NULL;
}

int tf_sink_bind(tf_sink_t *self, const char *endpoint, char *err, size_t errlen)
{
    if (tf_net_bind(self->pull, endpoint, err, errlen))
        return -1;
    char *last = zsock_last_endpoint(self->pull); //  caller frees
    snprintf(self->last_ep, sizeof self->last_ep, "%s", last ? last : endpoint);
    zstr_free(&last);
    if (!self->advertise[0])
        snprintf(self->advertise, sizeof self->advertise, "%s", self->last_ep);
    return 0;
}

int tf_sink_bind_beside(tf_sink_t *self, const char *listen, char *err, size_t errlen)
{
    char host[256], ep[300];
    tf_net_host_of(listen, host, sizeof host);
    snprintf(ep, sizeof ep, "tcp://%s:*", host[0] ? host : "*");
    return tf_sink_bind(self, ep, err, errlen);
}

const char *tf_sink_last_endpoint(tf_sink_t *self)
{
    return self->last_ep;
}

void tf_sink_set_ventilator(tf_sink_t *self, const char *endpoint)
{
    snprintf(self->ventilator, sizeof self->ventilator, "%s", endpoint);
}

void tf_sink_set_advertise(tf_sink_t *self, const char *endpoint)
{
    snprintf(self->advertise, sizeof self->advertise, "%s", endpoint);
}

void tf_sink_set_embedded(tf_sink_t *self, bool embedded)
{
    self->embedded = embedded;
}

void tf_sink_set_writer(tf_sink_t *self, tf_sink_write_fn *fn, void *arg)
{
    self->writer = fn;
    self->writer_arg = arg;
}

void tf_sink_stop(tf_sink_t *self)
{
    atomic_store(&self->stop, true);
}

const tf_sink_stats_t *tf_sink_stats(const tf_sink_t *self)
{
    return &self->stats;
}

//  --------------------------------------------------------------------------
//  Output

static int s_write_all(tf_sink_t *self, const uint8_t *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(self->out_fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (!self->write_failed)
                tf_error("sink: cannot write output: %s", strerror(errno));
            self->write_failed = true;
            return -1;
        }
        off += (size_t)n;
    }
    self->out_offset += len;
    return 0;
}

//  Writes the buffered output, then journals what it holds.
static int s_flush(tf_sink_t *self)
{
    if (self->obuf.len > 0 && s_write_all(self, self->obuf.data, self->obuf.len))
        return -1;
    self->obuf.len = 0;
    tf_journal_state_t js = {self->released_next, self->out_offset, self->released_failed};
    if (self->journal && tf_journal_commit(self->journal, &js)) {
        tf_error("sink: cannot write journal: %s", strerror(errno));
        self->write_failed = true;
        return -1;
    }
    return 0;
}

//  Everything below `next` is in the output (or failed): what the next
//  journal record says. Called for each result written, while releasing in
//  order, so the skips released so far are exactly the failed items below.
static void s_released_upto(tf_sink_t *self, uint64_t next)
{
    self->released_next = next;
    if (self->journal) //  only the journal needs the count
        self->released_failed = self->resumed_failed + tf_reorder_skips_released(self->reorder);
}

static int s_write(void *arg, uint64_t seq, const uint8_t *data, size_t len)
{
    tf_sink_t *self = arg;
    if (self->writer) {
        if (self->writer(self->writer_arg, seq, data, len))
            return -1;
        self->stats.written++;
        self->stats.bytes += len;
        return 0;
    }
    if (self->obuf.len + len > S_OUT_BUF && self->obuf.len > 0 && s_flush(self))
        return -1;
    if (len >= S_OUT_BUF) {
        //  Large result: straight through, then journal it.
        if (s_write_all(self, data, len))
            return -1;
        s_released_upto(self, seq + 1);
        if (s_flush(self))
            return -1;
    } else {
        if (tf_buf_append(&self->obuf, data, len))
            return -1;
        s_released_upto(self, seq + 1);
    }
    self->stats.written++;
    self->stats.bytes += len;
    return 0;
}

//  --------------------------------------------------------------------------
//  Acknowledgements: consecutive seqs collapse into ranges.

//  Closes the open range into the ACK under construction.
static void s_ack_close_range(tf_sink_t *self)
{
    if (self->ack_len == 0)
        return;
    if (self->ack_count == 0)
        tf_enc_batch_begin(&self->ack, TF_MSG_ACK, self->job);
    tf_enc_range(&self->ack, self->ack_start, self->ack_len);
    self->ack_count++;
    self->ack_len = 0;
}

static void s_ack_flush(tf_sink_t *self)
{
    s_ack_close_range(self);
    if (self->ack_count == 0)
        return;
    tf_enc_batch_finish(&self->ack, self->ack_count);
    if (tf_net_send(self->dealer, NULL, 0, self->ack.data, self->ack.len) == 0)
        self->stats.acks++;
    self->ack_count = 0;
    self->ack.len = 0;
}

static void s_ack(tf_sink_t *self, uint64_t seq)
{
    if (self->ack_len > 0 && seq == self->ack_start + self->ack_len && self->ack_len < UINT32_MAX) {
        self->ack_len++;
        return;
    }
    s_ack_close_range(self);
    if (self->ack_count >= S_MAX_ACK_RANGES)
        s_ack_flush(self);
    self->ack_start = seq;
    self->ack_len = 1;
}

//  Acknowledges again everything the ventilator may still wait for: every
//  seq released within a window below `next` (the ventilator's window
//  cannot start lower) and every result held. For when acks may have been
//  lost: we came back on a new connection, or the ventilator had lost us.
static void s_reack_all(tf_sink_t *self)
{
    if (!self->reorder)
        return;
    uint64_t next = tf_reorder_next(self->reorder);
    uint32_t window = tf_reorder_capacity(self->reorder);
    for (uint64_t s = next > window ? next - window : 0; s < next; s++)
        s_ack(self, s);
    for (uint64_t s = next; s < next + window; s++)
        if (tf_reorder_seen(self->reorder, s))
            s_ack(self, s);
    s_ack_flush(self);
}

//  --------------------------------------------------------------------------
//  Incoming

static void s_malformed(tf_sink_t *self, const char *why)
{
    tf_log_malformed(&self->rl, &self->stats.malformed, "sink", why);
}

static void s_offer(tf_sink_t *self, uint64_t seq, const uint8_t *data, size_t len, bool skip)
{
    if (seq < self->resume_from) {
        s_ack(self, seq); //  committed in an earlier run
        return;
    }
    tf_ro_result_t r = tf_reorder_put(self->reorder, seq, data, len, skip, s_write, self);
    if (r == TF_RO_ACCEPTED) {
        if (skip)
            self->stats.skipped++;
        else
            self->stats.results++;
        s_ack(self, seq);
    } else if (r == TF_RO_DUPLICATE) {
        self->stats.duplicates++;
        s_ack(self, seq); //  the ventilator may have missed our first ack
    } else if (r == TF_RO_OUT_OF_WINDOW)
        s_malformed(self, "result outside the window");
    else
        self->write_failed = true;
}

static void s_on_results(tf_sink_t *self)
{
    for (int budget = 256; budget > 0; budget--) {
        tf_hdr_t hdr;
        const char *why;
        tf_rx_status_t st =
            tf_net_recv_msg(self->pull, false, &self->rx, &self->limits, &hdr, &why);
        if (st == TF_RX_NONE)
            return;
        if (st == TF_RX_BAD) {
            s_malformed(self, why);
            continue;
        }
        const uint8_t *data = tf_rx_data(&self->rx);
        size_t size = tf_rx_size(&self->rx);
        if (hdr.type != TF_MSG_RESULTS) {
            s_malformed(self, "not a RESULTS message");
            continue;
        }
        if (!self->welcomed || hdr.job != self->job) {
            self->stats.duplicates++; //  stale job: a worker from before
            continue;
        }
        tf_iter_t it;
        tf_iter_init(&it, data, size);
        tf_item_t rec;
        while (tf_iter_item(&it, &rec))
            s_offer(self, rec.seq, rec.data, rec.len, false);
    }
}

static void s_send_hello(tf_sink_t *self)
{
    if (tf_enc_sink_hello(&self->msg, self->advertise, self->resume_from,
                          self->limits.max_result) == 0)
        tf_net_send(self->dealer, NULL, 0, self->msg.data, self->msg.len);
}

static void s_on_control(tf_sink_t *self)
{
    for (int budget = 256; budget > 0; budget--) {
        tf_hdr_t hdr;
        const char *why;
        tf_rx_status_t st =
            tf_net_recv_msg(self->dealer, false, &self->rx, &self->limits, &hdr, &why);
        if (st == TF_RX_NONE)
            return;
        if (st == TF_RX_BAD) {
            s_malformed(self, why);
            continue;
        }
        const uint8_t *data = tf_rx_data(&self->rx);
        size_t size = tf_rx_size(&self->rx);
        if (hdr.type == TF_MSG_SINK_WELCOME) {
            tf_sink_welcome_t w;
            tf_proto_get_sink_welcome(data, size, &w);
            if (self->reorder && hdr.job != self->job) {
                tf_error("sink: the ventilator started a new job; this sink's job is lost");
                self->write_failed = true;
                return;
            }
            if (!self->reorder) {
                self->job = hdr.job;
                self->reorder = tf_reorder_new(w.window, !self->cfg->unordered);
                if (!self->reorder) {
                    tf_error("sink: out of memory for a window of %u", w.window);
                    self->write_failed = true;
                    return;
                }
                tf_reorder_start_at(self->reorder, self->resume_from);
                tf_reorder_set_write_through(self->reorder, true);
                self->hb_ivl = w.hb_ivl_ms;
                self->hb_timeout = w.hb_timeout_ms;
                tf_info("sink: joined job %016llx, window %u", (unsigned long long)self->job,
                        w.window);
            } else if (self->rejoining) {
                //  Registered again: the acks lost with the old connection,
                //  and those the ventilator refused meanwhile, go again.
                self->rejoining = false;
                s_reack_all(self);
            }
            self->welcomed = true;
            self->last_heard = tf_now_ms();
            self->vent_heard = self->last_heard;
            continue;
        }
        if (!self->welcomed || hdr.job != self->job) {
            if (hdr.type == TF_MSG_RESET)
                self->welcomed = self->welcomed && hdr.job == self->job;
            continue;
        }
        self->last_heard = tf_now_ms();
        self->vent_heard = self->last_heard;
        switch (hdr.type) {
        case TF_MSG_HEARTBEAT:
            break;
        case TF_MSG_RESET: {
            //  The ventilator does not know this connection: we are back on
            //  a new one after a drop (the DEALER has no fixed routing id),
            //  or it lost us. Register again, once per S_REJOIN_GAP_MS
            //  however many messages it answers so.
            int64_t now = tf_now_ms();
            self->rejoining = true;
            if (now >= self->next_rejoin) {
                s_send_hello(self);
                self->next_rejoin = now + S_REJOIN_GAP_MS;
            }
            break;
        }
        case TF_MSG_SKIP: {
            tf_iter_t it;
            tf_iter_init(&it, data, size);
            uint64_t seq;
            while (tf_iter_seq(&it, &seq))
                s_offer(self, seq, NULL, 0, true);
            break;
        }
        case TF_MSG_END: {
            tf_end_t e;
            tf_proto_get_end(data, size, &e);
            self->ended = true;
            self->total = e.total;
            self->failed = e.failed;
            self->partial = (e.flags & TF_END_PARTIAL) != 0;
            break;
        }
        default:
            s_malformed(self, "unexpected message from ventilator");
        }
    }
}

int tf_sink_run(tf_sink_t *self)
{
    if (!self->ventilator[0]) {
        tf_error("sink: no ventilator endpoint");
        return 2;
    }
    tf_net_reconnect_policy(self->dealer, self->ventilator);
    if (zsock_connect(self->dealer, "%s", self->ventilator) < 0) {
        tf_error("sink: cannot connect to '%s': %s", self->ventilator, zmq_strerror(zmq_errno()));
        return 2;
    }
    int64_t now = tf_now_ms();
    self->last_heard = now;
    self->next_hb = now;
    self->next_hello = now;
    void *h_pull = zsock_resolve(self->pull);
    void *h_dealer = zsock_resolve(self->dealer);
    int rc = 2;
    for (;;) {
        if (atomic_load(&self->stop))
            break;
        if (!self->embedded && tf_interrupted() && !self->ended) {
            //  Standalone sink: keep what is written, journal it, leave.
            tf_warn("sink: interrupted, flushing what is in order");
            if (self->reorder)
                tf_reorder_drain(self->reorder, s_write, self);
            s_flush(self);
            rc = 130;
            break;
        }
        now = tf_now_ms();
        if (!self->welcomed && now >= self->next_hello) {
            s_send_hello(self);
            self->next_hello = now + self->hb_ivl;
        }
        zmq_pollitem_t items[3] = {{h_pull, 0, ZMQ_POLLIN, 0},
                                   {h_dealer, 0, ZMQ_POLLIN, 0},
                                   {NULL, tf_signal_fd(), ZMQ_POLLIN, 0}};
        int nitems = !self->embedded && tf_signal_fd() >= 0 ? 3 : 2;
        //  No sleep while output is buffered, so that it goes out soon.
        long timeout = self->obuf.len > 0 ? 0 : (long)self->hb_ivl / 2;
        int n = zmq_poll(items, nitems, timeout);
        if (n < 0 && zmq_errno() != EINTR) {
            tf_error("sink: poll failed: %s", zmq_strerror(zmq_errno()));
            break;
        }
        if (n > 0 && (items[1].revents & ZMQ_POLLIN))
            s_on_control(self);
        if (n > 0 && (items[0].revents & ZMQ_POLLIN))
            s_on_results(self);
        if (self->reorder && tf_reorder_drain(self->reorder, s_write, self) < 0)
            self->write_failed = true;
        if (n == 0 && self->obuf.len > 0)
            s_flush(self);
        s_ack_flush(self);
        if (self->write_failed)
            break;
        now = tf_now_ms();
        //  A turn this long was spent blocked (writing to a full pipe, say),
        //  not listening: that silence does not count against the ventilator.
        if (self->turn_ms && now - self->turn_ms > self->hb_timeout)
            self->vent_heard = now;
        self->turn_ms = now;
        if (self->welcomed && now >= self->next_hb) {
            self->next_hb = now + self->hb_ivl;
            if (tf_enc_heartbeat(&self->msg, self->job, 0) == 0)
                tf_net_send(self->dealer, NULL, 0, self->msg.data, self->msg.len);
            if (now - self->last_heard > self->hb_timeout) {
                //  Ventilator silent: say hello again; it re-registers us.
                s_send_hello(self);
                self->last_heard = now;
            }
            if (!self->embedded &&
                now - self->vent_heard > TF_GIVE_UP_TIMEOUTS * self->hb_timeout) {
                //  Dead or cut off for good: a new ventilator would be a new
                //  job. Keep what is in order, as after a signal.
                tf_error("sink: the ventilator has been silent for %.0f s: giving up; the output "
                         "holds the results in order so far (rerun with --journal/--resume to "
                         "finish)",
                         (double)(now - self->vent_heard) / 1000.0);
                rc = 2;
                break;
            }
        }
        if (self->ended && self->reorder && tf_reorder_next(self->reorder) >= self->total) {
            //  The last record covers failed items after the last result too.
            if (self->journal)
                s_released_upto(self, tf_reorder_next(self->reorder));
            if (s_flush(self))
                break;
            //  Items that failed before a --resume count as failed here too:
            //  the job as a whole did not succeed.
            uint64_t failed = self->failed + self->resumed_failed;
            if (self->resumed_failed > 0)
                tf_warn("sink: %llu item(s) failed before this run resumed the job (the first "
                        "run reported them)",
                        (unsigned long long)self->resumed_failed);
            if (tf_enc_finished(&self->msg, self->job, self->stats.written, failed == 0) == 0)
                tf_net_send(self->dealer, NULL, 0, self->msg.data, self->msg.len);
            //  Let the FINISHED leave before the socket closes.
            zsock_set_linger(self->dealer, 1000);
            rc = self->partial ? 130 : failed > 0 ? 1 : 0;
            break;
        }
    }
    if (rc == 2 && !self->write_failed && self->reorder) {
        //  Stopped from outside: keep what is in order.
        tf_reorder_drain(self->reorder, s_write, self);
        s_flush(self);
    }
    return rc;
}

int tf_sink_write_stats(const tf_sink_t *self, const char *path)
{
    const tf_sink_stats_t *st = &self->stats;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "version", 1);
    cJSON_AddNumberToObject(root, "results", (double)st->results);
    cJSON_AddNumberToObject(root, "duplicates_dropped", (double)st->duplicates);
    cJSON_AddNumberToObject(root, "skipped", (double)st->skipped);
    cJSON_AddNumberToObject(root, "malformed_dropped", (double)st->malformed);
    cJSON_AddNumberToObject(root, "written", (double)st->written);
    cJSON_AddNumberToObject(root, "bytes", (double)st->bytes);
    cJSON_AddNumberToObject(root, "acks", (double)st->acks);
    return tf_stats_write_json(root, path, "sink");
}
