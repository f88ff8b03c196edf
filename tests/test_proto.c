/*  test_proto.c -- wire protocol v1: round trips, malformed input, fuzzing. */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "tf_proto.h"

//  Validates a heap copy of exactly `size` bytes, so that ASan catches any
//  read past the end of the message.
static int s_validate(const uint8_t *data, size_t size, const tf_limits_t *lim, tf_hdr_t *hdr,
                      const char **reason)
{
    uint8_t *copy = malloc(size ? size : 1);
    cr_assert_not_null(copy);
    if (size)
        memcpy(copy, data, size);
    int rc = tf_proto_validate(size ? copy : NULL, size, lim, hdr, reason);
    free(copy);
    return rc;
}

static void s_expect_valid(const tf_buf_t *b, int type, uint64_t job)
{
    tf_hdr_t hdr = {0, 0, 0};
    const char *reason = NULL;
    int rc = s_validate(b->data, b->len, NULL, &hdr, &reason);
    cr_assert_eq(rc, 0, "%s rejected: %s", tf_msg_type_name(type), reason ? reason : "?");
    cr_assert_eq(hdr.version, TF_PROTO_VERSION);
    cr_assert_eq(hdr.type, type);
    cr_assert_eq(hdr.job, job);
}

//  --------------------------------------------------------------------------
//  Round trips

Test(proto, names)
{
    cr_assert_str_eq(tf_msg_type_name(TF_MSG_HELLO), "HELLO");
    cr_assert_str_eq(tf_msg_type_name(TF_MSG_JOB_END), "JOB_END");
    cr_assert_str_eq(tf_msg_type_name(0), "invalid");
    cr_assert_str_eq(tf_msg_type_name(TF_MSG_RESULTS_LOST), "RESULTS_LOST");
    cr_assert_str_eq(tf_msg_type_name(16), "invalid");
    cr_assert_str_eq(tf_msg_type_name(-1), "invalid");
    cr_assert_str_eq(tf_status_name(TF_ST_OK), "ok");
    cr_assert_str_eq(tf_status_name(TF_ST_REQUEUE), "requeue");
    cr_assert_str_eq(tf_status_name(TF_ST_STALL), "stalled");
    cr_assert_str_eq(tf_status_name(TF_ST_MAX + 1), "invalid");
    cr_assert_str_eq(tf_status_name(-1), "invalid");
}

Test(proto, big_endian_helpers)
{
    uint8_t p[8];
    tf_put_u32(p, 0x01020304u);
    cr_assert_eq(p[0], 1);
    cr_assert_eq(p[3], 4);
    cr_assert_eq(tf_get_u32(p), 0x01020304u);
    tf_put_u64(p, 0x0102030405060708ull);
    cr_assert_eq(p[0], 1);
    cr_assert_eq(p[7], 8);
    cr_assert_eq(tf_get_u64(p), 0x0102030405060708ull);
    tf_put_u64(p, UINT64_MAX);
    cr_assert_eq(tf_get_u64(p), UINT64_MAX);
}

Test(proto, hello)
{
    tf_buf_t b;
    tf_buf_init(&b);
    cr_assert_eq(tf_enc_hello(&b, 0x1122334455667788ull, 8, "host-1.example", 8), 0);
    cr_assert_eq(b.len, (size_t)TF_HDR_SIZE + 4 + 1 + 14 + 4);
    s_expect_valid(&b, TF_MSG_HELLO, 0x1122334455667788ull);
    tf_hello_t h;
    tf_proto_get_hello(b.data, b.len, &h);
    cr_assert_eq(h.slots, 8);
    cr_assert_str_eq(h.name, "host-1.example");
    cr_assert_eq(h.credit, 8);

    //  The credit is optional: a HELLO that ends after the name asks for
    //  nothing (the first credit then comes in a REPORT).
    b.len -= 4;
    s_expect_valid(&b, TF_MSG_HELLO, 0x1122334455667788ull);
    tf_proto_get_hello(b.data, b.len, &h);
    cr_assert_eq(h.slots, 8);
    cr_assert_str_eq(h.name, "host-1.example");
    cr_assert_eq(h.credit, 0);

    //  Empty and NULL names are allowed.
    cr_assert_eq(tf_enc_hello(&b, 0, 1, NULL, 0), 0);
    s_expect_valid(&b, TF_MSG_HELLO, 0);
    tf_proto_get_hello(b.data, b.len, &h);
    cr_assert_eq(h.slots, 1);
    cr_assert_str_eq(h.name, "");
    cr_assert_eq(h.credit, 0);

    //  A name longer than TF_MAX_NAME is cut to fit, still valid.
    char longname[400];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    cr_assert_eq(tf_enc_hello(&b, 3, UINT32_MAX, longname, UINT32_MAX), 0);
    s_expect_valid(&b, TF_MSG_HELLO, 3);
    tf_proto_get_hello(b.data, b.len, &h);
    cr_assert_eq(h.slots, UINT32_MAX);
    cr_assert_eq(strlen(h.name), (size_t)TF_MAX_NAME);
    cr_assert_eq(h.credit, UINT32_MAX);
    tf_buf_free(&b);
}

Test(proto, welcome)
{
    tf_buf_t b;
    tf_buf_init(&b);
    tf_welcome_t w = {500, 2000, 30000, 1u << 20, "tcp://sink.example:5556"};
    cr_assert_eq(tf_enc_welcome(&b, 42, &w), 0);
    s_expect_valid(&b, TF_MSG_WELCOME, 42);
    tf_welcome_t out;
    memset(&out, 0xaa, sizeof out);
    tf_proto_get_welcome(b.data, b.len, &out);
    cr_assert_eq(out.hb_ivl_ms, 500);
    cr_assert_eq(out.hb_timeout_ms, 2000);
    cr_assert_eq(out.timeout_ms, 30000);
    cr_assert_eq(out.max_result, 1u << 20);
    cr_assert_str_eq(out.sink, "tcp://sink.example:5556");

    //  Heartbeat timeout equal to the interval is the smallest accepted.
    tf_welcome_t edge = {100, 100, 0, 0, "ipc:///tmp/x"};
    cr_assert_eq(tf_enc_welcome(&b, 1, &edge), 0);
    s_expect_valid(&b, TF_MSG_WELCOME, 1);
    tf_buf_free(&b);
}

Test(proto, sink_hello_and_welcome)
{
    tf_buf_t b;
    tf_buf_init(&b);
    cr_assert_eq(tf_enc_sink_hello(&b, "tcp://10.0.0.1:7000", 123456789012ull, 4096), 0);
    s_expect_valid(&b, TF_MSG_SINK_HELLO, 0);
    char ep[TF_MAX_ENDPOINT + 1];
    uint64_t resume = 0;
    uint32_t max_result = 0;
    tf_proto_get_sink_hello(b.data, b.len, ep, sizeof ep, &resume, &max_result);
    cr_assert_str_eq(ep, "tcp://10.0.0.1:7000");
    cr_assert_eq(resume, 123456789012ull);
    cr_assert_eq(max_result, 4096);
    //  A small output buffer gets a cut, terminated copy (and the field
    //  after the endpoint is still found).
    char small[8];
    tf_proto_get_sink_hello(b.data, b.len, small, sizeof small, &resume, &max_result);
    cr_assert_str_eq(small, "tcp://1");
    cr_assert_eq(max_result, 4096);
    //  max_result is optional: a SINK_HELLO from a sink before it ends
    //  after the endpoint, and says nothing of its limit.
    b.len -= 4;
    s_expect_valid(&b, TF_MSG_SINK_HELLO, 0);
    max_result = 7;
    tf_proto_get_sink_hello(b.data, b.len, ep, sizeof ep, &resume, &max_result);
    cr_assert_str_eq(ep, "tcp://10.0.0.1:7000");
    cr_assert_eq(max_result, 0);

    tf_sink_welcome_t sw = {65536, 500, 2000};
    cr_assert_eq(tf_enc_sink_welcome(&b, 9, &sw), 0);
    cr_assert_eq(b.len, (size_t)TF_HDR_SIZE + 12);
    s_expect_valid(&b, TF_MSG_SINK_WELCOME, 9);
    tf_sink_welcome_t o;
    tf_proto_get_sink_welcome(b.data, b.len, &o);
    cr_assert_eq(o.window, 65536);
    cr_assert_eq(o.hb_ivl_ms, 500);
    cr_assert_eq(o.hb_timeout_ms, 2000);
    tf_buf_free(&b);
}

Test(proto, small_messages)
{
    tf_buf_t b;
    tf_buf_init(&b);
    cr_assert_eq(tf_enc_heartbeat(&b, 5, 77), 0);
    s_expect_valid(&b, TF_MSG_HEARTBEAT, 5);
    cr_assert_eq(tf_proto_get_heartbeat(b.data, b.len), 77);

    cr_assert_eq(tf_enc_reset(&b, 6, 3), 0);
    s_expect_valid(&b, TF_MSG_RESET, 6);
    cr_assert_eq(tf_proto_get_reset(b.data, b.len), 3);

    cr_assert_eq(tf_enc_end(&b, 7, 1000000, 12, TF_END_PARTIAL), 0);
    s_expect_valid(&b, TF_MSG_END, 7);
    tf_end_t e;
    tf_proto_get_end(b.data, b.len, &e);
    cr_assert_eq(e.total, 1000000);
    cr_assert_eq(e.failed, 12);
    cr_assert_eq(e.flags, TF_END_PARTIAL);

    cr_assert_eq(tf_enc_finished(&b, 8, 999, 1), 0);
    s_expect_valid(&b, TF_MSG_FINISHED, 8);
    tf_finished_t f;
    tf_proto_get_finished(b.data, b.len, &f);
    cr_assert_eq(f.written, 999);
    cr_assert_eq(f.ok, 1);
    //  Any non-zero ok is encoded as 1.
    cr_assert_eq(tf_enc_finished(&b, 8, 0, 200), 0);
    s_expect_valid(&b, TF_MSG_FINISHED, 8);
    tf_proto_get_finished(b.data, b.len, &f);
    cr_assert_eq(f.ok, 1);
    cr_assert_eq(tf_enc_finished(&b, 8, 0, 0), 0);
    tf_proto_get_finished(b.data, b.len, &f);
    cr_assert_eq(f.ok, 0);

    cr_assert_eq(tf_enc_job_end(&b, UINT64_MAX), 0);
    cr_assert_eq(b.len, (size_t)TF_HDR_SIZE);
    s_expect_valid(&b, TF_MSG_JOB_END, UINT64_MAX);
    tf_buf_free(&b);
}

static void s_items_round_trip(int type)
{
    static const struct {
        uint64_t seq;
        uint32_t attempt;
        const char *data;
        uint32_t len;
    } recs[] = {
        {0, 1, "hello", 5},
        {1, 2, "", 0},
        {UINT64_MAX - 1, UINT32_MAX, "a\0b\n\xff", 5},
        {77, 3, "x", 1},
    };
    const size_t nrecs = sizeof recs / sizeof recs[0];
    tf_buf_t b;
    tf_buf_init(&b);
    cr_assert_eq(tf_enc_batch_begin(&b, type, 31), 0);
    for (size_t i = 0; i < nrecs; i++) {
        if (i == 3) {
            uint8_t *p = tf_enc_item_reserve(&b, recs[i].seq, recs[i].attempt, recs[i].len);
            cr_assert_not_null(p);
            memcpy(p, recs[i].data, recs[i].len);
        } else
            cr_assert_eq(tf_enc_item(&b, recs[i].seq, recs[i].attempt, recs[i].data, recs[i].len),
                         0);
    }
    tf_enc_batch_finish(&b, (uint32_t)nrecs);
    s_expect_valid(&b, type, 31);

    tf_iter_t it;
    tf_iter_init(&it, b.data, b.len);
    cr_assert_eq(tf_iter_count(&it), nrecs);
    tf_item_t rec;
    for (size_t i = 0; i < nrecs; i++) {
        cr_assert(tf_iter_item(&it, &rec), "record %zu missing", i);
        cr_assert_eq(rec.seq, recs[i].seq);
        cr_assert_eq(rec.attempt, recs[i].attempt);
        cr_assert_eq(rec.len, recs[i].len);
        cr_assert(rec.data >= b.data && rec.data + rec.len <= b.data + b.len);
        cr_assert_eq(memcmp(rec.data, recs[i].data, rec.len), 0);
    }
    cr_assert_not(tf_iter_item(&it, &rec));
    cr_assert_eq(it.off, b.len);
    tf_buf_free(&b);
}

Test(proto, tasks_round_trip)
{
    s_items_round_trip(TF_MSG_TASKS);
}

Test(proto, results_round_trip)
{
    s_items_round_trip(TF_MSG_RESULTS);
}

Test(proto, large_item)
{
    //  One item that forces the buffer to grow several times.
    const uint32_t len = 1u << 20;
    uint8_t *data = malloc(len);
    cr_assert_not_null(data);
    for (uint32_t i = 0; i < len; i++)
        data[i] = (uint8_t)(i * 7);
    tf_buf_t b;
    tf_buf_init(&b);
    cr_assert_eq(tf_enc_batch_begin(&b, TF_MSG_TASKS, 1), 0);
    cr_assert_eq(tf_enc_item(&b, 5, 1, data, len), 0);
    tf_enc_batch_finish(&b, 1);
    s_expect_valid(&b, TF_MSG_TASKS, 1);
    //  ... and the same against a limit one byte too small.
    tf_limits_t lim = {len - 1, len - 1};
    tf_hdr_t hdr;
    const char *reason = NULL;
    cr_assert_eq(s_validate(b.data, b.len, &lim, &hdr, &reason), -1);
    cr_assert_str_eq(reason, "record larger than limit");
    lim.max_item = len;
    cr_assert_eq(s_validate(b.data, b.len, &lim, &hdr, &reason), 0);
    tf_iter_t it;
    tf_iter_init(&it, b.data, b.len);
    tf_item_t rec;
    cr_assert(tf_iter_item(&it, &rec));
    cr_assert_eq(rec.len, len);
    cr_assert_eq(memcmp(rec.data, data, len), 0);
    tf_buf_free(&b);
    free(data);
}

Test(proto, report_round_trip)
{
    const tf_done_t recs[] = {
        {1, 1, TF_ST_OK, 0, 1500},
        {2, 3, TF_ST_EXIT, 2, 0},
        {UINT64_MAX, UINT32_MAX, TF_ST_REQUEUE, UINT32_MAX, UINT32_MAX},
        {9, 1, TF_ST_SIGNAL, 9, 12},
    };
    const size_t n = sizeof recs / sizeof recs[0];
    tf_buf_t b;
    tf_buf_init(&b);
    cr_assert_eq(tf_enc_report_begin(&b, 4, 10), 0);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(tf_enc_done(&b, &recs[i]), 0);
    tf_enc_batch_finish(&b, (uint32_t)n);
    tf_enc_report_set_credit(&b, 17);
    cr_assert_eq(b.len, (size_t)TF_HDR_SIZE + 8 + n * TF_DONE_REC_SIZE);
    s_expect_valid(&b, TF_MSG_REPORT, 4);
    uint32_t credit = 0, count = 0;
    tf_proto_get_report(b.data, b.len, &credit, &count);
    cr_assert_eq(credit, 17);
    cr_assert_eq(count, n);
    tf_iter_t it;
    tf_iter_init(&it, b.data, b.len);
    cr_assert_eq(tf_iter_count(&it), n);
    tf_done_t d;
    for (size_t i = 0; i < n; i++) {
        cr_assert(tf_iter_done(&it, &d));
        cr_assert_eq(d.seq, recs[i].seq);
        cr_assert_eq(d.attempt, recs[i].attempt);
        cr_assert_eq(d.status, recs[i].status);
        cr_assert_eq(d.detail, recs[i].detail);
        cr_assert_eq(d.duration_us, recs[i].duration_us);
    }
    cr_assert_not(tf_iter_done(&it, &d));
    cr_assert_eq(it.off, b.len);

    //  A REPORT with no completions is a plain credit grant.
    cr_assert_eq(tf_enc_report_begin(&b, 4, 3), 0);
    tf_enc_batch_finish(&b, 0);
    s_expect_valid(&b, TF_MSG_REPORT, 4);
    tf_proto_get_report(b.data, b.len, &credit, &count);
    cr_assert_eq(credit, 3);
    cr_assert_eq(count, 0);
    tf_buf_free(&b);
}

Test(proto, ack_and_skip_round_trip)
{
    tf_buf_t b;
    tf_buf_init(&b);
    cr_assert_eq(tf_enc_batch_begin(&b, TF_MSG_ACK, 2), 0);
    cr_assert_eq(tf_enc_range(&b, 0, 100), 0);
    cr_assert_eq(tf_enc_range(&b, 200, 1), 0);
    cr_assert_eq(tf_enc_range(&b, UINT64_MAX - 5, UINT32_MAX), 0);
    tf_enc_batch_finish(&b, 3);
    s_expect_valid(&b, TF_MSG_ACK, 2);
    tf_iter_t it;
    tf_iter_init(&it, b.data, b.len);
    cr_assert_eq(tf_iter_count(&it), 3);
    tf_range_t r;
    cr_assert(tf_iter_range(&it, &r));
    cr_assert_eq(r.start, 0);
    cr_assert_eq(r.count, 100);
    cr_assert(tf_iter_range(&it, &r));
    cr_assert_eq(r.start, 200);
    cr_assert_eq(r.count, 1);
    cr_assert(tf_iter_range(&it, &r));
    cr_assert_eq(r.start, UINT64_MAX - 5);
    cr_assert_eq(r.count, UINT32_MAX);
    cr_assert_not(tf_iter_range(&it, &r));

    cr_assert_eq(tf_enc_batch_begin(&b, TF_MSG_SKIP, 3), 0);
    const uint64_t seqs[] = {4, 9, 1ull << 40};
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(tf_enc_seq(&b, seqs[i]), 0);
    tf_enc_batch_finish(&b, 3);
    s_expect_valid(&b, TF_MSG_SKIP, 3);
    tf_iter_init(&it, b.data, b.len);
    cr_assert_eq(tf_iter_count(&it), 3);
    uint64_t s;
    for (size_t i = 0; i < 3; i++) {
        cr_assert(tf_iter_seq(&it, &s));
        cr_assert_eq(s, seqs[i]);
    }
    cr_assert_not(tf_iter_seq(&it, &s));
    tf_buf_free(&b);
}

//  --------------------------------------------------------------------------
//  Canonical valid messages, one per type, used by the malformed table and
//  the fuzz loop. Body offsets are written next to each.

static void s_build(int type, tf_buf_t *b)
{
    switch (type) {
    case TF_MSG_HELLO: //  12 slots, 16 name len, 17 name, 19 credit
        cr_assert_eq(tf_enc_hello(b, 7, 4, "w1", 4), 0);
        break;
    case TF_MSG_WELCOME: { //  12 ivl, 16 hbt, 20 timeout, 24 max, 28 len, 29 sink
        tf_welcome_t w = {500, 2000, 0, 1000, "tcp://a:1"};
        cr_assert_eq(tf_enc_welcome(b, 7, &w), 0);
        break;
    }
    case TF_MSG_TASKS: //  12 count; 16 seq, 24 attempt, 28 len, 32 "abc"; 35 seq, 43, 47
        cr_assert_eq(tf_enc_batch_begin(b, TF_MSG_TASKS, 7), 0);
        cr_assert_eq(tf_enc_item(b, 1, 1, "abc", 3), 0);
        cr_assert_eq(tf_enc_item(b, 2, 2, "", 0), 0);
        tf_enc_batch_finish(b, 2);
        break;
    case TF_MSG_REPORT: //  12 credit, 16 count; 20 seq, 28 attempt, 32 status, 33, 37; 41 ...
    {
        tf_done_t d1 = {1, 1, TF_ST_OK, 0, 100};
        tf_done_t d2 = {2, 3, TF_ST_EXIT, 2, 200};
        cr_assert_eq(tf_enc_report_begin(b, 7, 5), 0);
        cr_assert_eq(tf_enc_done(b, &d1), 0);
        cr_assert_eq(tf_enc_done(b, &d2), 0);
        tf_enc_batch_finish(b, 2);
        break;
    }
    case TF_MSG_RESULTS: //  12 count; 16 seq, 24 attempt, 28 len, 32 "out"
        cr_assert_eq(tf_enc_batch_begin(b, TF_MSG_RESULTS, 7), 0);
        cr_assert_eq(tf_enc_item(b, 1, 1, "out", 3), 0);
        tf_enc_batch_finish(b, 1);
        break;
    case TF_MSG_HEARTBEAT: //  12 load
        cr_assert_eq(tf_enc_heartbeat(b, 7, 3), 0);
        break;
    case TF_MSG_RESET: //  12 reason
        cr_assert_eq(tf_enc_reset(b, 7, 1), 0);
        break;
    case TF_MSG_SINK_HELLO: //  12 resume, 20 len, 21 endpoint, 30 max_result
        cr_assert_eq(tf_enc_sink_hello(b, "tcp://s:2", 5, 1000), 0);
        break;
    case TF_MSG_SINK_WELCOME: { //  12 window, 16 ivl, 20 hbt
        tf_sink_welcome_t w = {64, 500, 2000};
        cr_assert_eq(tf_enc_sink_welcome(b, 7, &w), 0);
        break;
    }
    case TF_MSG_ACK: //  12 count; 16 start, 24 count; 28 start, 36 count
        cr_assert_eq(tf_enc_batch_begin(b, TF_MSG_ACK, 7), 0);
        cr_assert_eq(tf_enc_range(b, 0, 3), 0);
        cr_assert_eq(tf_enc_range(b, 5, 1), 0);
        tf_enc_batch_finish(b, 2);
        break;
    case TF_MSG_SKIP: //  12 count; 16 seq; 24 seq
        cr_assert_eq(tf_enc_batch_begin(b, TF_MSG_SKIP, 7), 0);
        cr_assert_eq(tf_enc_seq(b, 4), 0);
        cr_assert_eq(tf_enc_seq(b, 9), 0);
        tf_enc_batch_finish(b, 2);
        break;
    case TF_MSG_END: //  12 total, 20 failed
        cr_assert_eq(tf_enc_end(b, 7, 10, 1, 0), 0);
        break;
    case TF_MSG_FINISHED: //  12 written, 20 ok
        cr_assert_eq(tf_enc_finished(b, 7, 10, 1), 0);
        break;
    case TF_MSG_JOB_END:
        cr_assert_eq(tf_enc_job_end(b, 7), 0);
        break;
    case TF_MSG_RESULTS_LOST:
        cr_assert_eq(tf_enc_results_lost(b, 7), 0);
        break;
    default:
        cr_assert_fail("no canonical message of type %d", type);
    }
}

Test(proto, canonical_messages_are_valid)
{
    tf_buf_t b;
    tf_buf_init(&b);
    for (int type = 1; type <= TF_MSG_TYPE_MAX; type++) {
        s_build(type, &b);
        //  SINK_HELLO is sent before the sink knows the job.
        s_expect_valid(&b, type, type == TF_MSG_SINK_HELLO ? 0 : 7);
    }
    tf_buf_free(&b);
}

//  --------------------------------------------------------------------------
//  Malformed messages

typedef struct {
    int off;   //  byte offset
    int width; //  0 (none), 1 or 4
    uint32_t value;
} s_patch_t;

typedef struct {
    const char *name;
    int base;   //  canonical message type; 0 = start from a bare header
    int cut;    //  > 0: keep only the first `cut` bytes
    int append; //  zero bytes appended
    s_patch_t patch[2];
    uint32_t max_item, max_result; //  0 = default limits
    const char *reason;
} s_bad_t;

#define P1(o, v)                                                                                   \
    {                                                                                              \
        {(o), 1, (v)},                                                                             \
        {                                                                                          \
            0, 0, 0                                                                                \
        }                                                                                          \
    }
#define P4(o, v)                                                                                   \
    {                                                                                              \
        {(o), 4, (v)},                                                                             \
        {                                                                                          \
            0, 0, 0                                                                                \
        }                                                                                          \
    }

static const s_bad_t s_bad[] = {
    {"empty", TF_MSG_JOB_END, .cut = -1, .reason = "shorter than header"},
    {"one byte", TF_MSG_JOB_END, .cut = 1, .reason = "shorter than header"},
    {"short header", TF_MSG_HELLO, .cut = TF_HDR_SIZE - 1, .reason = "shorter than header"},
    {"bad magic 0", TF_MSG_HEARTBEAT, .patch = P1(0, 'X'), .reason = "bad magic"},
    {"bad magic 1", TF_MSG_HEARTBEAT, .patch = P1(1, 'f'), .reason = "bad magic"},
    {"version 0", TF_MSG_HEARTBEAT, .patch = P1(2, 0), .reason = "unsupported version"},
    {"version 2", TF_MSG_HEARTBEAT, .patch = P1(2, 2), .reason = "unsupported version"},
    {"version 255", TF_MSG_HEARTBEAT, .patch = P1(2, 255), .reason = "unsupported version"},
    {"type 0", TF_MSG_JOB_END, .patch = P1(3, 0), .reason = "unknown message type"},
    {"type 16", TF_MSG_JOB_END, .patch = P1(3, 16), .reason = "unknown message type"},
    {"type 255", TF_MSG_JOB_END, .patch = P1(3, 255), .reason = "unknown message type"},
    //  HELLO
    {"HELLO truncated slots", TF_MSG_HELLO, .cut = 15, .reason = "truncated HELLO"},
    {"HELLO no name length", TF_MSG_HELLO, .cut = 16, .reason = "bad worker name"},
    {"HELLO name truncated", TF_MSG_HELLO, .cut = 18, .reason = "bad worker name"},
    {"HELLO name too long", TF_MSG_HELLO, .patch = P1(16, 9), .reason = "bad worker name"},
    {"HELLO zero slots", TF_MSG_HELLO, .patch = P4(12, 0), .reason = "HELLO with zero slots"},
    {"HELLO credit truncated", TF_MSG_HELLO, .cut = 21, .reason = "truncated HELLO credit"},
    {"HELLO name NUL", TF_MSG_HELLO, .patch = P1(17, 0),
     .reason = "string has a non-printable byte"},
    {"HELLO name DEL", TF_MSG_HELLO, .patch = P1(18, 0x7f),
     .reason = "string has a non-printable byte"},
    //  WELCOME
    {"WELCOME truncated", TF_MSG_WELCOME, .cut = 27, .reason = "truncated WELCOME"},
    {"WELCOME no sink", TF_MSG_WELCOME, .cut = 28, .reason = "bad sink endpoint"},
    {"WELCOME sink truncated", TF_MSG_WELCOME, .cut = 33, .reason = "bad sink endpoint"},
    {"WELCOME empty sink", TF_MSG_WELCOME, .cut = 29, .patch = P1(28, 0),
     .reason = "bad sink endpoint"},
    {"WELCOME sink newline", TF_MSG_WELCOME, .patch = P1(30, '\n'),
     .reason = "string has a non-printable byte"},
    {"WELCOME sink byte 0x1f", TF_MSG_WELCOME, .patch = P1(29, 0x1f),
     .reason = "string has a non-printable byte"},
    {"WELCOME sink byte 0x80", TF_MSG_WELCOME, .patch = P1(37, 0x80),
     .reason = "string has a non-printable byte"},
    {"WELCOME sink byte 0xff", TF_MSG_WELCOME, .patch = P1(32, 0xff),
     .reason = "string has a non-printable byte"},
    {"WELCOME interval 0", TF_MSG_WELCOME, .patch = P4(12, 0), .reason = "bad heartbeat settings"},
    {"WELCOME timeout < interval", TF_MSG_WELCOME, .patch = P4(16, 499),
     .reason = "bad heartbeat settings"},
    {"WELCOME timeout 0", TF_MSG_WELCOME, .patch = P4(16, 0), .reason = "bad heartbeat settings"},
    //  TASKS
    {"TASKS no count", TF_MSG_TASKS, .cut = 15, .reason = "truncated record count"},
    {"TASKS empty batch", TF_MSG_TASKS, .cut = 16, .patch = P4(12, 0), .reason = "empty batch"},
    {"TASKS count over limit", TF_MSG_TASKS, .patch = P4(12, TF_MAX_RECORDS + 1),
     .reason = "record count over limit"},
    {"TASKS count UINT32_MAX", TF_MSG_TASKS, .patch = P4(12, UINT32_MAX),
     .reason = "record count over limit"},
    {"TASKS count larger than message", TF_MSG_TASKS, .patch = P4(12, 3),
     .reason = "record count larger than message"},
    {"TASKS count at limit, larger than message", TF_MSG_TASKS, .patch = P4(12, TF_MAX_RECORDS),
     .reason = "record count larger than message"},
    {"TASKS second header truncated", TF_MSG_TASKS, .cut = 48, .reason = "truncated length"},
    {"TASKS data truncated", TF_MSG_TASKS, .cut = 34, .patch = P4(12, 1),
     .reason = "record data truncated"},
    {"TASKS length past end", TF_MSG_TASKS, .patch = P4(47, 1), .reason = "record data truncated"},
    {"TASKS length huge", TF_MSG_TASKS, .patch = P4(28, UINT32_MAX),
     .reason = "record larger than limit"},
    {"TASKS length huge, no limit", TF_MSG_TASKS, .patch = P4(28, UINT32_MAX),
     .max_item = UINT32_MAX, .max_result = UINT32_MAX, .reason = "record data truncated"},
    {"TASKS record over max_item", TF_MSG_TASKS, .max_item = 2, .max_result = 100,
     .reason = "record larger than limit"},
    {"TASKS attempt 0", TF_MSG_TASKS, .patch = P4(24, 0), .reason = "attempt 0"},
    {"TASKS second attempt 0", TF_MSG_TASKS, .patch = P4(43, 0), .reason = "attempt 0"},
    //  RESULTS
    {"RESULTS empty batch", TF_MSG_RESULTS, .cut = 16, .patch = P4(12, 0), .reason = "empty batch"},
    {"RESULTS record over max_result", TF_MSG_RESULTS, .max_item = 100, .max_result = 2,
     .reason = "record larger than limit"},
    {"RESULTS data truncated", TF_MSG_RESULTS, .cut = 34, .reason = "record data truncated"},
    {"RESULTS attempt 0", TF_MSG_RESULTS, .patch = P4(24, 0), .reason = "attempt 0"},
    {"RESULTS count over limit", TF_MSG_RESULTS, .patch = P4(12, TF_MAX_RECORDS + 1),
     .reason = "record count over limit"},
    //  REPORT
    {"REPORT no credit", TF_MSG_REPORT, .cut = 15, .reason = "truncated credit"},
    {"REPORT no count", TF_MSG_REPORT, .cut = 19, .reason = "truncated record count"},
    {"REPORT count larger than message", TF_MSG_REPORT, .cut = 61,
     .reason = "record count larger than message"},
    {"REPORT count over limit", TF_MSG_REPORT, .patch = P4(16, TF_MAX_RECORDS + 1),
     .reason = "record count over limit"},
    {"REPORT attempt 0", TF_MSG_REPORT, .patch = P4(28, 0), .reason = "attempt 0"},
    {"REPORT status MAX+1", TF_MSG_REPORT, .patch = P1(32, TF_ST_MAX + 1),
     .reason = "unknown status"},
    {"REPORT status 255", TF_MSG_REPORT, .patch = P1(53, 255), .reason = "unknown status"},
    //  small fixed-size messages
    {"HEARTBEAT truncated", TF_MSG_HEARTBEAT, .cut = 15, .reason = "truncated HEARTBEAT"},
    {"HEARTBEAT empty body", TF_MSG_HEARTBEAT, .cut = 12, .reason = "truncated HEARTBEAT"},
    {"RESET truncated", TF_MSG_RESET, .cut = 12, .reason = "truncated RESET"},
    {"SINK_HELLO truncated", TF_MSG_SINK_HELLO, .cut = 19, .reason = "truncated SINK_HELLO"},
    {"SINK_HELLO no endpoint", TF_MSG_SINK_HELLO, .cut = 20, .reason = "bad sink endpoint"},
    {"SINK_HELLO max_result truncated", TF_MSG_SINK_HELLO, .cut = 32,
     .reason = "truncated SINK_HELLO max_result"},
    {"SINK_HELLO max_result 0", TF_MSG_SINK_HELLO, .patch = P4(30, 0), .reason = "max_result 0"},
    {"SINK_HELLO empty endpoint", TF_MSG_SINK_HELLO, .cut = 21, .patch = P1(20, 0),
     .reason = "bad sink endpoint"},
    {"SINK_HELLO endpoint NUL", TF_MSG_SINK_HELLO, .patch = P1(25, 0),
     .reason = "string has a non-printable byte"},
    {"SINK_HELLO endpoint tab", TF_MSG_SINK_HELLO, .patch = P1(21, '\t'),
     .reason = "string has a non-printable byte"},
    {"SINK_WELCOME truncated", TF_MSG_SINK_WELCOME, .cut = 23, .reason = "truncated SINK_WELCOME"},
    {"SINK_WELCOME window 0", TF_MSG_SINK_WELCOME, .patch = P4(12, 0),
     .reason = "bad SINK_WELCOME settings"},
    {"SINK_WELCOME window above --window's limit", TF_MSG_SINK_WELCOME,
     .patch = P4(12, (1u << 24) + 1), .reason = "bad SINK_WELCOME settings"},
    {"SINK_WELCOME window 2^31 + 1", TF_MSG_SINK_WELCOME, .patch = P4(12, 0x80000001u),
     .reason = "bad SINK_WELCOME settings"},
    {"SINK_WELCOME interval 0", TF_MSG_SINK_WELCOME, .patch = P4(16, 0),
     .reason = "bad SINK_WELCOME settings"},
    {"SINK_WELCOME timeout < interval", TF_MSG_SINK_WELCOME, .patch = P4(20, 499),
     .reason = "bad SINK_WELCOME settings"},
    {"END truncated", TF_MSG_END, .cut = 27, .reason = "truncated END"},
    {"END no flags", TF_MSG_END, .cut = 28, .reason = "truncated END"},
    {"END bad flags", TF_MSG_END, .patch = P1(28, 2), .reason = "bad END flags"},
    {"FINISHED truncated", TF_MSG_FINISHED, .cut = 20, .reason = "truncated FINISHED"},
    {"FINISHED flag 2", TF_MSG_FINISHED, .patch = P1(20, 2), .reason = "bad FINISHED flag"},
    //  ACK / SKIP
    {"ACK no count", TF_MSG_ACK, .cut = 14, .reason = "truncated record count"},
    {"ACK empty", TF_MSG_ACK, .cut = 16, .patch = P4(12, 0), .reason = "empty ACK"},
    {"ACK zero-length range", TF_MSG_ACK, .patch = P4(24, 0), .reason = "empty range"},
    {"ACK second range zero-length", TF_MSG_ACK, .patch = P4(36, 0), .reason = "empty range"},
    {"ACK count larger than message", TF_MSG_ACK, .patch = P4(12, 3),
     .reason = "record count larger than message"},
    {"ACK count over limit", TF_MSG_ACK, .patch = P4(12, TF_MAX_RECORDS + 1),
     .reason = "record count over limit"},
    {"SKIP empty", TF_MSG_SKIP, .cut = 16, .patch = P4(12, 0), .reason = "empty SKIP"},
    {"SKIP count larger than message", TF_MSG_SKIP, .cut = 31,
     .reason = "record count larger than message"},
    {"SKIP count over limit", TF_MSG_SKIP, .patch = P4(12, TF_MAX_RECORDS + 1),
     .reason = "record count over limit"},
    //  trailing bytes
    {"JOB_END trailing", TF_MSG_JOB_END, .append = 1, .reason = "trailing bytes"},
    {"RESULTS_LOST trailing", TF_MSG_RESULTS_LOST, .append = 1, .reason = "trailing bytes"},
    {"TASKS count too small", TF_MSG_TASKS, .patch = P4(12, 1), .reason = "trailing bytes"},
    {"ACK count too small", TF_MSG_ACK, .patch = P4(12, 1), .reason = "trailing bytes"},
    {"REPORT count too small", TF_MSG_REPORT, .patch = P4(16, 1), .reason = "trailing bytes"},
    {"HELLO name shorter", TF_MSG_HELLO, .patch = P1(16, 1), .reason = "trailing bytes"},
};

Test(proto, malformed_table)
{
    tf_buf_t b;
    tf_buf_init(&b);
    for (size_t i = 0; i < sizeof s_bad / sizeof s_bad[0]; i++) {
        const s_bad_t *t = &s_bad[i];
        s_build(t->base, &b);
        size_t size = b.len;
        if (t->cut < 0)
            size = 0;
        else if (t->cut > 0) {
            cr_assert_lt((size_t)t->cut, b.len, "%s: cut past the end", t->name);
            size = (size_t)t->cut;
        }
        for (int k = 0; k < 2; k++) {
            const s_patch_t *p = &t->patch[k];
            if (p->width == 0)
                continue;
            cr_assert_leq((size_t)(p->off + p->width), size, "%s: patch past the end", t->name);
            if (p->width == 1)
                b.data[p->off] = (uint8_t)p->value;
            else
                tf_put_u32(b.data + p->off, p->value);
        }
        b.len = size;
        for (int k = 0; k < t->append; k++) {
            uint8_t zero = 0;
            cr_assert_eq(tf_buf_append(&b, &zero, 1), 0);
        }
        tf_limits_t lim;
        tf_limits_default(&lim);
        if (t->max_item)
            lim.max_item = t->max_item;
        if (t->max_result)
            lim.max_result = t->max_result;
        tf_hdr_t hdr = {0, 0, 0};
        const char *reason = NULL;
        int rc = s_validate(b.data, b.len, &lim, &hdr, &reason);
        cr_assert_eq(rc, -1, "%s: accepted", t->name);
        cr_assert_not_null(reason, "%s: no reason", t->name);
        cr_assert_str_eq(reason, t->reason, "%s: reason '%s', expected '%s'", t->name, reason,
                         t->reason);
        //  The header is left alone on failure.
        cr_assert_eq(hdr.type, 0, "%s: header filled on failure", t->name);
    }
    tf_buf_free(&b);
}

Test(proto, null_data_rejected)
{
    tf_hdr_t hdr;
    const char *reason = NULL;
    cr_assert_eq(tf_proto_validate(NULL, 100, NULL, &hdr, &reason), -1);
    cr_assert_str_eq(reason, "shorter than header");
}

Test(proto, every_prefix_rejected)
{
    //  Every strict prefix of every valid message is malformed.
    tf_buf_t b;
    tf_buf_init(&b);
    for (int type = 1; type <= TF_MSG_TYPE_MAX; type++) {
        s_build(type, &b);
        for (size_t len = 0; len < b.len; len++) {
            if ((type == TF_MSG_HELLO || type == TF_MSG_SINK_HELLO) && len == b.len - 4)
                continue; //  the HELLO's credit and the SINK_HELLO's max_result are
                          //  optional: without them, valid
            tf_hdr_t hdr;
            const char *reason = NULL;
            int rc = s_validate(b.data, len, NULL, &hdr, &reason);
            cr_assert_eq(rc, -1, "%s cut to %zu bytes accepted", tf_msg_type_name(type), len);
            cr_assert_not_null(reason);
            cr_assert_str_neq(reason, "trailing bytes");
        }
    }
    tf_buf_free(&b);
}

Test(proto, trailing_bytes_rejected)
{
    tf_buf_t b;
    tf_buf_init(&b);
    for (int type = 1; type <= TF_MSG_TYPE_MAX; type++) {
        for (size_t extra = 1; extra <= 3; extra++) {
            s_build(type, &b);
            const uint8_t tail[3] = {0x41, 0x42, 0x43};
            cr_assert_eq(tf_buf_append(&b, tail, extra), 0);
            tf_hdr_t hdr;
            const char *reason = NULL;
            cr_assert_eq(s_validate(b.data, b.len, NULL, &hdr, &reason), -1,
                         "%s + %zu bytes accepted", tf_msg_type_name(type), extra);
            cr_assert_str_eq(reason, "trailing bytes", "%s: %s", tf_msg_type_name(type), reason);
        }
    }
    tf_buf_free(&b);
}

//  --------------------------------------------------------------------------
//  Fuzz loop: random damage never crashes the decoder, and whatever it
//  accepts can be read with the iterators without leaving the buffer.

static uint64_t s_rng = 0x9e3779b97f4a7c15ull;

static uint32_t s_rand(void)
{
    //  xorshift64*
    s_rng ^= s_rng >> 12;
    s_rng ^= s_rng << 25;
    s_rng ^= s_rng >> 27;
    return (uint32_t)((s_rng * 0x2545f4914f6cdd1dull) >> 32);
}

static bool s_printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return false;
    return true;
}

static void s_read_accepted(const uint8_t *data, size_t size, const tf_hdr_t *hdr,
                            const tf_limits_t *lim)
{
    const uint8_t *end = data + size;
    tf_iter_t it;
    switch (hdr->type) {
    case TF_MSG_TASKS:
    case TF_MSG_RESULTS: {
        tf_iter_init(&it, data, size);
        uint32_t n = tf_iter_count(&it), seen = 0;
        cr_assert_gt(n, 0);
        tf_item_t rec;
        while (tf_iter_item(&it, &rec)) {
            seen++;
            cr_assert_neq(rec.attempt, 0);
            cr_assert_leq(rec.len, hdr->type == TF_MSG_TASKS ? lim->max_item : lim->max_result);
            cr_assert(rec.data >= data + TF_HDR_SIZE && rec.data <= end);
            cr_assert_leq((size_t)rec.len, (size_t)(end - rec.data));
            cr_assert_leq(it.off, size);
        }
        cr_assert_eq(seen, n);
        cr_assert_eq(it.off, size);
        break;
    }
    case TF_MSG_REPORT: {
        uint32_t credit, count;
        tf_proto_get_report(data, size, &credit, &count);
        tf_iter_init(&it, data, size);
        cr_assert_eq(tf_iter_count(&it), count);
        tf_done_t d;
        uint32_t seen = 0;
        while (tf_iter_done(&it, &d)) {
            seen++;
            cr_assert_neq(d.attempt, 0);
            cr_assert_leq(d.status, TF_ST_MAX);
            cr_assert_leq(it.off, size);
        }
        cr_assert_eq(seen, count);
        cr_assert_eq(it.off, size);
        break;
    }
    case TF_MSG_ACK: {
        tf_iter_init(&it, data, size);
        tf_range_t r;
        cr_assert_gt(tf_iter_count(&it), 0);
        while (tf_iter_range(&it, &r)) {
            cr_assert_gt(r.count, 0);
            cr_assert_leq(it.off, size);
        }
        cr_assert_eq(it.off, size);
        break;
    }
    case TF_MSG_SKIP: {
        tf_iter_init(&it, data, size);
        uint64_t s;
        cr_assert_gt(tf_iter_count(&it), 0);
        while (tf_iter_seq(&it, &s))
            cr_assert_leq(it.off, size);
        cr_assert_eq(it.off, size);
        break;
    }
    case TF_MSG_HELLO: {
        tf_hello_t h;
        tf_proto_get_hello(data, size, &h);
        cr_assert_gt(h.slots, 0);
        cr_assert(s_printable(h.name));
        break;
    }
    case TF_MSG_WELCOME: {
        tf_welcome_t w;
        tf_proto_get_welcome(data, size, &w);
        cr_assert_gt(w.hb_ivl_ms, 0);
        cr_assert_geq(w.hb_timeout_ms, w.hb_ivl_ms);
        cr_assert_gt(strlen(w.sink), 0);
        cr_assert(s_printable(w.sink));
        break;
    }
    case TF_MSG_SINK_HELLO: {
        char ep[TF_MAX_ENDPOINT + 1];
        uint64_t resume;
        uint32_t max_result;
        tf_proto_get_sink_hello(data, size, ep, sizeof ep, &resume, &max_result);
        cr_assert_gt(strlen(ep), 0);
        cr_assert(s_printable(ep));
        break;
    }
    case TF_MSG_SINK_WELCOME: {
        tf_sink_welcome_t w;
        tf_proto_get_sink_welcome(data, size, &w);
        cr_assert_gt(w.window, 0);
        cr_assert_gt(w.hb_ivl_ms, 0);
        cr_assert_geq(w.hb_timeout_ms, w.hb_ivl_ms);
        break;
    }
    case TF_MSG_FINISHED: {
        tf_finished_t f;
        tf_proto_get_finished(data, size, &f);
        cr_assert_leq(f.ok, 1);
        break;
    }
    case TF_MSG_END: {
        tf_end_t e;
        tf_proto_get_end(data, size, &e);
        break;
    }
    case TF_MSG_HEARTBEAT:
        (void)tf_proto_get_heartbeat(data, size);
        break;
    case TF_MSG_RESET:
        (void)tf_proto_get_reset(data, size);
        break;
    case TF_MSG_JOB_END:
    case TF_MSG_RESULTS_LOST:
        cr_assert_eq(size, (size_t)TF_HDR_SIZE);
        break;
    default:
        cr_assert_fail("accepted unknown type %d", hdr->type);
    }
}

Test(proto, fuzz_mutations)
{
    const int rounds = 3000;
    tf_buf_t b;
    tf_buf_init(&b);
    tf_limits_t lim = {64, 64};
    size_t accepted = 0, rejected = 0;
    for (int type = 1; type <= TF_MSG_TYPE_MAX; type++) {
        for (int round = 0; round < rounds; round++) {
            s_build(type, &b);
            size_t size = b.len;
            uint8_t work[512];
            cr_assert_leq(size, sizeof work);
            memcpy(work, b.data, size);
            //  Damage: flip bytes (mostly in the body), overwrite counts and
            //  lengths with extreme values, cut or extend.
            int flips = 1 + (int)(s_rand() % 4);
            for (int f = 0; f < flips; f++) {
                //  Mostly the body: damage to the header is rejected early.
                size_t pos = s_rand() % size;
                if (size > TF_HDR_SIZE && s_rand() % 8 != 0)
                    pos = TF_HDR_SIZE + s_rand() % (size - TF_HDR_SIZE);
                switch (s_rand() % 4) {
                case 0:
                    work[pos] ^= (uint8_t)(1u << (s_rand() % 8));
                    break;
                case 1:
                    work[pos] = (uint8_t)s_rand();
                    break;
                case 2:
                    work[pos] = 0;
                    break;
                default:
                    work[pos] = 0xff;
                    break;
                }
            }
            uint32_t how = s_rand() % 8;
            if (how == 0)
                size = s_rand() % (size + 1);
            else if (how == 1) {
                size_t extra = s_rand() % 24;
                for (size_t k = 0; k < extra && size < sizeof work; k++)
                    work[size++] = (uint8_t)s_rand();
            }
            tf_hdr_t hdr = {0, 0, 0};
            const char *reason = NULL;
            uint8_t *copy = malloc(size ? size : 1);
            cr_assert_not_null(copy);
            memcpy(copy, work, size);
            int rc = tf_proto_validate(copy, size, &lim, &hdr, &reason);
            if (rc == 0) {
                accepted++;
                cr_assert_eq(hdr.version, TF_PROTO_VERSION);
                s_read_accepted(copy, size, &hdr, &lim);
            } else {
                rejected++;
                cr_assert_eq(rc, -1);
                cr_assert_not_null(reason);
                cr_assert_gt(strlen(reason), 0);
            }
            free(copy);
        }
    }
    //  Both paths were exercised.
    cr_assert_gt(accepted, 100);
    cr_assert_gt(rejected, 100);
    tf_buf_free(&b);
}

Test(proto, fuzz_random_bodies)
{
    //  Valid header, random body of random length, for every type.
    uint8_t work[96];
    tf_limits_t lim = {32, 32};
    for (int round = 0; round < 20000; round++) {
        size_t size = TF_HDR_SIZE + s_rand() % (sizeof work - TF_HDR_SIZE + 1);
        work[0] = 'T';
        work[1] = 'F';
        work[2] = TF_PROTO_VERSION;
        work[3] = (uint8_t)(1 + s_rand() % TF_MSG_TYPE_MAX);
        for (size_t i = 4; i < size; i++) {
            //  Small values make counts and lengths plausible more often.
            uint32_t r = s_rand();
            work[i] = (uint8_t)(r % 3 == 0 ? r >> 8 : (r >> 8) % 4);
        }
        uint8_t *copy = malloc(size);
        cr_assert_not_null(copy);
        memcpy(copy, work, size);
        tf_hdr_t hdr;
        const char *reason = NULL;
        if (tf_proto_validate(copy, size, &lim, &hdr, &reason) == 0)
            s_read_accepted(copy, size, &hdr, &lim);
        else
            cr_assert_not_null(reason);
        free(copy);
    }
}
