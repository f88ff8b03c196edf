/*  tf_proto.c -- taskfarm wire protocol v1: encoder and strict decoder. */
#include "tf_proto.h"

#include <string.h>

static const char *const s_type_names[] = {
    "invalid",   "HELLO",    "WELCOME",    "TASKS",        "REPORT", "RESULTS",
    "HEARTBEAT", "RESET",    "SINK_HELLO", "SINK_WELCOME", "ACK",    "SKIP",
    "END",       "FINISHED", "JOB_END",    "RESULTS_LOST"};

static const char *const s_status_names[] = {"ok",      "exit",     "signal",  "timeout", "spawn",
                                             "too-big", "bad-item", "requeue", "stalled"};

const char *tf_msg_type_name(int type)
{
    if (type < 1 || type > TF_MSG_TYPE_MAX)
        return "invalid";
    return s_type_names[type];
}

const char *tf_status_name(int status)
{
    if (status < 0 || status > TF_ST_MAX)
        return "invalid";
    return s_status_names[status];
}

void tf_limits_default(tf_limits_t *self)
{
    self->max_item = TF_DEFAULT_MAX_ITEM;
    self->max_result = TF_DEFAULT_MAX_RESULT;
}

void tf_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void tf_put_u64(uint8_t *p, uint64_t v)
{
    tf_put_u32(p, (uint32_t)(v >> 32));
    tf_put_u32(p + 4, (uint32_t)v);
}

uint32_t tf_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

uint64_t tf_get_u64(const uint8_t *p)
{
    return (uint64_t)tf_get_u32(p) << 32 | tf_get_u32(p + 4);
}

//  --------------------------------------------------------------------------
//  Validation

typedef struct {
    const uint8_t *p;
    size_t size;
    size_t off;
    const char *reason;
} s_rd_t;

static bool s_need(s_rd_t *r, size_t n, const char *why)
{
    if (r->reason)
        return false;
    if (r->size - r->off < n) {
        r->reason = why;
        return false;
    }
    return true;
}

static uint32_t s_u32(s_rd_t *r, const char *why)
{
    if (!s_need(r, 4, why))
        return 0;
    uint32_t v = tf_get_u32(r->p + r->off);
    r->off += 4;
    return v;
}

static uint8_t s_u8(s_rd_t *r, const char *why)
{
    if (!s_need(r, 1, why))
        return 0;
    return r->p[r->off++];
}

static void s_skip(s_rd_t *r, size_t n, const char *why)
{
    if (s_need(r, n, why))
        r->off += n;
}

//  Short string: u8 length + printable ASCII bytes.
static void s_str(s_rd_t *r, bool allow_empty, const char *why)
{
    uint8_t n = s_u8(r, why);
    if (r->reason)
        return;
    if (n == 0 && !allow_empty) {
        r->reason = why;
        return;
    }
    if (!s_need(r, n, why))
        return;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = r->p[r->off + i];
        if (c < 0x20 || c > 0x7e) {
            r->reason = "string has a non-printable byte";
            return;
        }
    }
    r->off += n;
}

static uint32_t s_count(s_rd_t *r, size_t rec_min)
{
    uint32_t n = s_u32(r, "truncated record count");
    if (r->reason)
        return 0;
    if (n > TF_MAX_RECORDS) {
        r->reason = "record count over limit";
        return 0;
    }
    //  Cheap early bound: every record needs at least rec_min bytes.
    if ((uint64_t)n * rec_min > r->size - r->off) {
        r->reason = "record count larger than message";
        return 0;
    }
    return n;
}

static void s_items(s_rd_t *r, uint32_t max_len, bool empty_ok)
{
    uint32_t n = s_count(r, TF_ITEM_REC_HDR);
    if (n == 0 && !r->reason && !empty_ok)
        r->reason = "empty batch";
    for (uint32_t i = 0; i < n && !r->reason; i++) {
        s_skip(r, 8, "truncated seq");
        uint32_t attempt = s_u32(r, "truncated attempt");
        uint32_t len = s_u32(r, "truncated length");
        if (r->reason)
            break;
        if (attempt == 0) {
            r->reason = "attempt 0";
            break;
        }
        if (len > max_len) {
            r->reason = "record larger than limit";
            break;
        }
        s_skip(r, len, "record data truncated");
    }
}

int tf_proto_validate(const uint8_t *data, size_t size, const tf_limits_t *limits, tf_hdr_t *hdr,
                      const char **reason)
{
    s_rd_t r = {data, size, 0, NULL};
    tf_limits_t deflim;
    if (!limits) {
        tf_limits_default(&deflim);
        limits = &deflim;
    }
    if (!data || size < TF_HDR_SIZE) {
        *reason = "shorter than header";
        return -1;
    }
    if (data[0] != 'T' || data[1] != 'F') {
        *reason = "bad magic";
        return -1;
    }
    if (data[2] != TF_PROTO_VERSION) {
        *reason = "unsupported version";
        return -1;
    }
    uint8_t type = data[3];
    if (type < 1 || type > TF_MSG_TYPE_MAX) {
        *reason = "unknown message type";
        return -1;
    }
    r.off = TF_HDR_SIZE;
    switch (type) {
    case TF_MSG_HELLO:
        if (s_u32(&r, "truncated HELLO") == 0 && !r.reason)
            r.reason = "HELLO with zero slots";
        s_str(&r, true, "bad worker name");
        if (!r.reason && r.off < size)
            s_u32(&r, "truncated HELLO credit"); //  optional: absent means 0
        break;
    case TF_MSG_WELCOME: {
        uint32_t ivl = s_u32(&r, "truncated WELCOME");
        uint32_t hbt = s_u32(&r, "truncated WELCOME");
        s_u32(&r, "truncated WELCOME");
        s_u32(&r, "truncated WELCOME");
        if (!r.reason && (ivl == 0 || hbt < ivl))
            r.reason = "bad heartbeat settings";
        s_str(&r, false, "bad sink endpoint");
        break;
    }
    case TF_MSG_TASKS:
        s_items(&r, limits->max_item, false);
        break;
    case TF_MSG_RESULTS:
        s_items(&r, limits->max_result, false);
        break;
    case TF_MSG_REPORT: {
        s_u32(&r, "truncated credit");
        uint32_t n = s_count(&r, TF_DONE_REC_SIZE);
        for (uint32_t i = 0; i < n && !r.reason; i++) {
            s_skip(&r, 8, "truncated completion");
            if (s_u32(&r, "truncated completion") == 0 && !r.reason)
                r.reason = "attempt 0";
            if (s_u8(&r, "truncated completion") > TF_ST_MAX && !r.reason)
                r.reason = "unknown status";
            s_skip(&r, 8, "truncated completion");
        }
        break;
    }
    case TF_MSG_HEARTBEAT:
        s_u32(&r, "truncated HEARTBEAT");
        break;
    case TF_MSG_RESET:
        s_u8(&r, "truncated RESET");
        break;
    case TF_MSG_SINK_HELLO:
        s_skip(&r, 8, "truncated SINK_HELLO");
        s_str(&r, false, "bad sink endpoint");
        if (!r.reason && r.off < size && //  optional: absent means unknown
            s_u32(&r, "truncated SINK_HELLO max_result") == 0 && !r.reason)
            r.reason = "max_result 0";
        break;
    case TF_MSG_SINK_WELCOME: {
        uint32_t w = s_u32(&r, "truncated SINK_WELCOME");
        uint32_t ivl = s_u32(&r, "truncated SINK_WELCOME");
        uint32_t hbt = s_u32(&r, "truncated SINK_WELCOME");
        if (!r.reason && (w == 0 || w > TF_MAX_WINDOW || ivl == 0 || hbt < ivl))
            r.reason = "bad SINK_WELCOME settings";
        break;
    }
    case TF_MSG_ACK: {
        uint32_t n = s_count(&r, TF_RANGE_REC_SIZE);
        if (n == 0 && !r.reason)
            r.reason = "empty ACK";
        for (uint32_t i = 0; i < n && !r.reason; i++) {
            s_skip(&r, 8, "truncated range");
            if (s_u32(&r, "truncated range") == 0 && !r.reason)
                r.reason = "empty range";
        }
        break;
    }
    case TF_MSG_SKIP: {
        uint32_t n = s_count(&r, 8);
        if (n == 0 && !r.reason)
            r.reason = "empty SKIP";
        s_skip(&r, (size_t)n * 8, "truncated SKIP");
        break;
    }
    case TF_MSG_END:
        s_skip(&r, 16, "truncated END");
        if (s_u8(&r, "truncated END") > TF_END_PARTIAL && !r.reason)
            r.reason = "bad END flags";
        break;
    case TF_MSG_FINISHED:
        s_skip(&r, 8, "truncated FINISHED");
        if (s_u8(&r, "truncated FINISHED") > 1 && !r.reason)
            r.reason = "bad FINISHED flag";
        break;
    case TF_MSG_JOB_END:
    case TF_MSG_RESULTS_LOST:
        break;
    default:
        r.reason = "unknown message type";
    }
    if (!r.reason && r.off != size)
        r.reason = "trailing bytes";
    if (r.reason) {
        *reason = r.reason;
        return -1;
    }
    hdr->version = data[2];
    hdr->type = type;
    hdr->job = tf_get_u64(data + 4);
    return 0;
}

//  --------------------------------------------------------------------------
//  Body decoders (input already validated)

//  Copies the short string at `p` into `out` (cut to fit). Returns the bytes
//  it takes on the wire: what follows it starts there.
static size_t s_get_str(const uint8_t *p, char *out, size_t cap)
{
    size_t wire = 1 + (size_t)p[0];
    size_t n = p[0];
    if (n >= cap)
        n = cap - 1;
    memcpy(out, p + 1, n);
    out[n] = '\0';
    return wire;
}

void tf_proto_get_hello(const uint8_t *data, size_t size, tf_hello_t *out)
{
    const uint8_t *p = data + TF_HDR_SIZE;
    out->slots = tf_get_u32(p);
    size_t end = TF_HDR_SIZE + 4 + s_get_str(p + 4, out->name, sizeof out->name);
    out->credit = size >= end + 4 ? tf_get_u32(data + end) : 0; //  optional
}

void tf_proto_get_welcome(const uint8_t *data, size_t size, tf_welcome_t *out)
{
    TF_UNUSED(size);
    const uint8_t *p = data + TF_HDR_SIZE;
    out->hb_ivl_ms = tf_get_u32(p);
    out->hb_timeout_ms = tf_get_u32(p + 4);
    out->timeout_ms = tf_get_u32(p + 8);
    out->max_result = tf_get_u32(p + 12);
    s_get_str(p + 16, out->sink, sizeof out->sink);
}

void tf_proto_get_sink_hello(const uint8_t *data, size_t size, char *endpoint, size_t cap,
                             uint64_t *resume_from, uint32_t *max_result)
{
    *resume_from = tf_get_u64(data + TF_HDR_SIZE);
    size_t end = TF_HDR_SIZE + 8 + s_get_str(data + TF_HDR_SIZE + 8, endpoint, cap);
    *max_result = size >= end + 4 ? tf_get_u32(data + end) : 0; //  optional
}

void tf_proto_get_sink_welcome(const uint8_t *data, size_t size, tf_sink_welcome_t *out)
{
    TF_UNUSED(size);
    const uint8_t *p = data + TF_HDR_SIZE;
    out->window = tf_get_u32(p);
    out->hb_ivl_ms = tf_get_u32(p + 4);
    out->hb_timeout_ms = tf_get_u32(p + 8);
}

void tf_proto_get_end(const uint8_t *data, size_t size, tf_end_t *out)
{
    TF_UNUSED(size);
    out->total = tf_get_u64(data + TF_HDR_SIZE);
    out->failed = tf_get_u64(data + TF_HDR_SIZE + 8);
    out->flags = data[TF_HDR_SIZE + 16];
}

void tf_proto_get_finished(const uint8_t *data, size_t size, tf_finished_t *out)
{
    TF_UNUSED(size);
    out->written = tf_get_u64(data + TF_HDR_SIZE);
    out->ok = data[TF_HDR_SIZE + 8];
}

void tf_proto_get_report(const uint8_t *data, size_t size, uint32_t *credit, uint32_t *count)
{
    TF_UNUSED(size);
    *credit = tf_get_u32(data + TF_HDR_SIZE);
    *count = tf_get_u32(data + TF_HDR_SIZE + 4);
}

uint32_t tf_proto_get_heartbeat(const uint8_t *data, size_t size)
{
    TF_UNUSED(size);
    return tf_get_u32(data + TF_HDR_SIZE);
}

uint8_t tf_proto_get_reset(const uint8_t *data, size_t size)
{
    TF_UNUSED(size);
    return data[TF_HDR_SIZE];
}

void tf_iter_init(tf_iter_t *it, const uint8_t *data, size_t size)
{
    size_t off = TF_HDR_SIZE;
    if (data[3] == TF_MSG_REPORT)
        off += 4; //  credit comes first
    it->data = data;
    it->size = size;
    it->left = tf_get_u32(data + off);
    it->off = off + 4;
}

uint32_t tf_iter_count(const tf_iter_t *it)
{
    return it->left;
}

bool tf_iter_item(tf_iter_t *it, tf_item_t *rec)
{
    if (it->left == 0)
        return false;
    const uint8_t *p = it->data + it->off;
    rec->seq = tf_get_u64(p);
    rec->attempt = tf_get_u32(p + 8);
    rec->len = tf_get_u32(p + 12);
    rec->data = p + TF_ITEM_REC_HDR;
    it->off += TF_ITEM_REC_HDR + rec->len;
    it->left--;
    return true;
}

bool tf_iter_done(tf_iter_t *it, tf_done_t *rec)
{
    if (it->left == 0)
        return false;
    const uint8_t *p = it->data + it->off;
    rec->seq = tf_get_u64(p);
    rec->attempt = tf_get_u32(p + 8);
    rec->status = p[12];
    rec->detail = tf_get_u32(p + 13);
    rec->duration_us = tf_get_u32(p + 17);
    it->off += TF_DONE_REC_SIZE;
    it->left--;
    return true;
}

bool tf_iter_range(tf_iter_t *it, tf_range_t *rec)
{
    if (it->left == 0)
        return false;
    const uint8_t *p = it->data + it->off;
    rec->start = tf_get_u64(p);
    rec->count = tf_get_u32(p + 8);
    it->off += TF_RANGE_REC_SIZE;
    it->left--;
    return true;
}

bool tf_iter_seq(tf_iter_t *it, uint64_t *seq)
{
    if (it->left == 0)
        return false;
    *seq = tf_get_u64(it->data + it->off);
    it->off += 8;
    it->left--;
    return true;
}

//  --------------------------------------------------------------------------
//  Encoding

static int s_header(tf_buf_t *b, int type, uint64_t job, size_t body)
{
    b->len = 0;
    if (tf_buf_reserve(b, TF_HDR_SIZE + body))
        return -1;
    uint8_t *p = b->data;
    p[0] = 'T';
    p[1] = 'F';
    p[2] = TF_PROTO_VERSION;
    p[3] = (uint8_t)type;
    tf_put_u64(p + 4, job);
    b->len = TF_HDR_SIZE;
    return 0;
}

static void s_w32(tf_buf_t *b, uint32_t v)
{
    tf_put_u32(b->data + b->len, v);
    b->len += 4;
}

static void s_w64(tf_buf_t *b, uint64_t v)
{
    tf_put_u64(b->data + b->len, v);
    b->len += 8;
}

static void s_wstr(tf_buf_t *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n > 255)
        n = 255;
    b->data[b->len++] = (uint8_t)n;
    if (n)
        memcpy(b->data + b->len, s, n);
    b->len += n;
}

int tf_enc_hello(tf_buf_t *b, uint64_t job, uint32_t slots, const char *name, uint32_t credit)
{
    if (s_header(b, TF_MSG_HELLO, job, 8 + 256))
        return -1;
    s_w32(b, slots);
    s_wstr(b, name);
    s_w32(b, credit);
    return 0;
}

int tf_enc_welcome(tf_buf_t *b, uint64_t job, const tf_welcome_t *w)
{
    if (s_header(b, TF_MSG_WELCOME, job, 16 + 256))
        return -1;
    s_w32(b, w->hb_ivl_ms);
    s_w32(b, w->hb_timeout_ms);
    s_w32(b, w->timeout_ms);
    s_w32(b, w->max_result);
    s_wstr(b, w->sink);
    return 0;
}

int tf_enc_sink_hello(tf_buf_t *b, const char *endpoint, uint64_t resume_from, uint32_t max_result)
{
    if (s_header(b, TF_MSG_SINK_HELLO, 0, 8 + 256 + 4))
        return -1;
    s_w64(b, resume_from);
    s_wstr(b, endpoint);
    s_w32(b, max_result);
    return 0;
}

int tf_enc_sink_welcome(tf_buf_t *b, uint64_t job, const tf_sink_welcome_t *w)
{
    if (s_header(b, TF_MSG_SINK_WELCOME, job, 12))
        return -1;
    s_w32(b, w->window);
    s_w32(b, w->hb_ivl_ms);
    s_w32(b, w->hb_timeout_ms);
    return 0;
}

int tf_enc_heartbeat(tf_buf_t *b, uint64_t job, uint32_t load)
{
    if (s_header(b, TF_MSG_HEARTBEAT, job, 4))
        return -1;
    s_w32(b, load);
    return 0;
}

int tf_enc_reset(tf_buf_t *b, uint64_t job, uint8_t reason)
{
    if (s_header(b, TF_MSG_RESET, job, 1))
        return -1;
    b->data[b->len++] = reason;
    return 0;
}

int tf_enc_end(tf_buf_t *b, uint64_t job, uint64_t total, uint64_t failed, uint8_t flags)
{
    if (s_header(b, TF_MSG_END, job, 17))
        return -1;
    s_w64(b, total);
    s_w64(b, failed);
    b->data[b->len++] = flags;
    return 0;
}

int tf_enc_finished(tf_buf_t *b, uint64_t job, uint64_t written, uint8_t ok)
{
    if (s_header(b, TF_MSG_FINISHED, job, 9))
        return -1;
    s_w64(b, written);
    b->data[b->len++] = ok ? 1 : 0;
    return 0;
}

int tf_enc_job_end(tf_buf_t *b, uint64_t job)
{
    return s_header(b, TF_MSG_JOB_END, job, 0);
}

int tf_enc_results_lost(tf_buf_t *b, uint64_t job)
{
    return s_header(b, TF_MSG_RESULTS_LOST, job, 0);
}

int tf_enc_batch_begin(tf_buf_t *b, int type, uint64_t job)
{
    if (s_header(b, type, job, 4))
        return -1;
    s_w32(b, 0);
    return 0;
}

int tf_enc_report_begin(tf_buf_t *b, uint64_t job, uint32_t credit)
{
    if (s_header(b, TF_MSG_REPORT, job, 8))
        return -1;
    s_w32(b, credit);
    s_w32(b, 0);
    return 0;
}

void tf_enc_report_set_credit(tf_buf_t *b, uint32_t credit)
{
    tf_put_u32(b->data + TF_HDR_SIZE, credit);
}

uint8_t *tf_enc_item_reserve(tf_buf_t *b, uint64_t seq, uint32_t attempt, uint32_t len)
{
    if (tf_buf_reserve(b, TF_ITEM_REC_HDR + (size_t)len))
        return NULL;
    s_w64(b, seq);
    s_w32(b, attempt);
    s_w32(b, len);
    uint8_t *p = b->data + b->len;
    b->len += len;
    return p;
}

int tf_enc_item(tf_buf_t *b, uint64_t seq, uint32_t attempt, const void *data, uint32_t len)
{
    uint8_t *p = tf_enc_item_reserve(b, seq, attempt, len);
    if (!p)
        return -1;
    if (len)
        memcpy(p, data, len);
    return 0;
}

int tf_enc_done(tf_buf_t *b, const tf_done_t *d)
{
    if (tf_buf_reserve(b, TF_DONE_REC_SIZE))
        return -1;
    s_w64(b, d->seq);
    s_w32(b, d->attempt);
    b->data[b->len++] = d->status;
    s_w32(b, d->detail);
    s_w32(b, d->duration_us);
    return 0;
}

int tf_enc_range(tf_buf_t *b, uint64_t start, uint32_t count)
{
    if (tf_buf_reserve(b, TF_RANGE_REC_SIZE))
        return -1;
    s_w64(b, start);
    s_w32(b, count);
    return 0;
}

int tf_enc_seq(tf_buf_t *b, uint64_t seq)
{
    if (tf_buf_reserve(b, 8))
        return -1;
    s_w64(b, seq);
    return 0;
}

void tf_enc_batch_finish(tf_buf_t *b, uint32_t count)
{
    size_t off = TF_HDR_SIZE + (b->data[3] == TF_MSG_REPORT ? 4 : 0);
    tf_put_u32(b->data + off, count);
}
