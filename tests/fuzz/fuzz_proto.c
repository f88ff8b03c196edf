/*  fuzz_proto.c -- libFuzzer target for the wire decoder.

    Raw inputs go straight to tf_proto_validate(). Inputs whose first byte
    has the top bit set are turned into a valid message of some type first
    (built with the encoders from the input's bytes) and then damaged at an
    input-chosen spot, so the fuzzer reaches deep into every body layout.
    Whatever validate accepts is walked with the getters and iterators,
    which must stay inside the buffer (ASan checks that).
*/
#include "tf_proto.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_walk(const uint8_t *msg, size_t size)
{
    tf_hdr_t hdr;
    const char *why;
    tf_limits_t lim = {4096, 4096};
    if (tf_proto_validate(msg, size, &lim, &hdr, &why))
        return;
    tf_iter_t it;
    switch (hdr.type) {
    case TF_MSG_HELLO: {
        tf_hello_t h;
        tf_proto_get_hello(msg, size, &h);
        break;
    }
    case TF_MSG_WELCOME: {
        tf_welcome_t w;
        tf_proto_get_welcome(msg, size, &w);
        break;
    }
    case TF_MSG_TASKS:
    case TF_MSG_RESULTS: {
        tf_item_t rec;
        tf_iter_init(&it, msg, size);
        while (tf_iter_item(&it, &rec))
            if (rec.len && (rec.data < msg || rec.data + rec.len > msg + size))
                abort();
        break;
    }
    case TF_MSG_REPORT: {
        uint32_t credit, count;
        tf_done_t d;
        tf_proto_get_report(msg, size, &credit, &count);
        tf_iter_init(&it, msg, size);
        while (tf_iter_done(&it, &d))
            if (d.status > TF_ST_MAX)
                abort();
        break;
    }
    case TF_MSG_ACK: {
        tf_range_t r;
        tf_iter_init(&it, msg, size);
        while (tf_iter_range(&it, &r))
            if (r.count == 0)
                abort();
        break;
    }
    case TF_MSG_SKIP: {
        uint64_t seq;
        tf_iter_init(&it, msg, size);
        while (tf_iter_seq(&it, &seq))
            ;
        break;
    }
    case TF_MSG_SINK_HELLO: {
        char ep[TF_MAX_ENDPOINT + 1];
        uint64_t resume;
        uint32_t max_result;
        tf_proto_get_sink_hello(msg, size, ep, sizeof ep, &resume, &max_result);
        break;
    }
    case TF_MSG_SINK_WELCOME: {
        tf_sink_welcome_t w;
        tf_proto_get_sink_welcome(msg, size, &w);
        break;
    }
    case TF_MSG_END: {
        tf_end_t e;
        tf_proto_get_end(msg, size, &e);
        break;
    }
    case TF_MSG_FINISHED: {
        tf_finished_t f;
        tf_proto_get_finished(msg, size, &f);
        break;
    }
    default:
        break;
    }
}

static void s_build(tf_buf_t *b, const uint8_t *data, size_t size)
{
    uint8_t type = (uint8_t)(data[0] % TF_MSG_TYPE_MAX + 1);
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    uint64_t job = n >= 8 ? tf_get_u64(p) : 7;
    switch (type) {
    case TF_MSG_TASKS:
    case TF_MSG_RESULTS: {
        tf_enc_batch_begin(b, type, job);
        uint32_t count = 0;
        for (size_t off = 0; off + 2 <= n && count < 64; count++) {
            size_t len = p[off] % 32;
            if (off + 2 + len > n)
                len = n - off - 2;
            tf_enc_item(b, count, 1 + p[off + 1] % 3, p + off + 2, (uint32_t)len);
            off += 2 + len;
        }
        if (count == 0)
            tf_enc_item(b, 0, 1, "x", 1), count = 1;
        tf_enc_batch_finish(b, count);
        break;
    }
    case TF_MSG_REPORT: {
        tf_enc_report_begin(b, job, n ? p[0] : 1);
        uint32_t count = 0;
        for (size_t off = 0; off < n && count < 64; off += 3, count++) {
            tf_done_t d = {off, 1 + p[off] % 4, (uint8_t)(p[off] % (TF_ST_MAX + 1)), p[off], 5};
            tf_enc_done(b, &d);
        }
        tf_enc_batch_finish(b, count);
        break;
    }
    case TF_MSG_ACK:
        tf_enc_batch_begin(b, type, job);
        tf_enc_range(b, n, 1 + (n ? p[0] : 0));
        tf_enc_batch_finish(b, 1);
        break;
    case TF_MSG_SKIP:
        tf_enc_batch_begin(b, type, job);
        tf_enc_seq(b, n);
        tf_enc_batch_finish(b, 1);
        break;
    case TF_MSG_HELLO:
        tf_enc_hello(b, job, 1 + (n ? p[0] : 0), "fuzz:1", n > 1 ? p[1] : 0);
        break;
    case TF_MSG_WELCOME: {
        tf_welcome_t w = {500, 2000, 0, 1024, "tcp://127.0.0.1:5556"};
        tf_enc_welcome(b, job, &w);
        break;
    }
    case TF_MSG_SINK_HELLO:
        tf_enc_sink_hello(b, "ipc:///tmp/x", n, (uint32_t)n | 1);
        break;
    case TF_MSG_SINK_WELCOME: {
        tf_sink_welcome_t w = {64, 500, 2000};
        tf_enc_sink_welcome(b, job, &w);
        break;
    }
    case TF_MSG_END:
        tf_enc_end(b, job, n, 0, (uint8_t)(n & 1));
        break;
    case TF_MSG_FINISHED:
        tf_enc_finished(b, job, n, 1);
        break;
    case TF_MSG_HEARTBEAT:
        tf_enc_heartbeat(b, job, (uint32_t)n);
        break;
    case TF_MSG_RESET:
        tf_enc_reset(b, job, 1);
        break;
    case TF_MSG_RESULTS_LOST:
        tf_enc_results_lost(b, job);
        break;
    default:
        tf_enc_job_end(b, job);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || !(data[0] & 0x80)) {
        //  Exact-size copy so that ASan sees any read past the end.
        uint8_t *copy = malloc(size ? size : 1);
        if (!copy)
            return 0;
        if (size)
            memcpy(copy, data, size);
        s_walk(copy, size);
        free(copy);
        return 0;
    }
    tf_buf_t b;
    tf_buf_init(&b);
    s_build(&b, data, size);
    if (b.len == 0) {
        tf_buf_free(&b);
        return 0;
    }
    //  Damage: flip, truncate or extend, chosen by the last input bytes.
    uint8_t mode = size > 1 ? data[size - 1] % 4 : 0;
    size_t at = size > 2 ? data[size - 2] % b.len : 0;
    size_t len = b.len;
    if (mode == 1)
        b.data[at] ^= (uint8_t)(1u << (data[size - 1] % 8));
    else if (mode == 2)
        len = at;
    else if (mode == 3) {
        tf_buf_append(&b, data, size > 8 ? 8 : size);
        len = b.len;
    }
    uint8_t *copy = malloc(len ? len : 1);
    if (copy) {
        if (len)
            memcpy(copy, b.data, len);
        s_walk(copy, len);
        free(copy);
    }
    tf_buf_free(&b);
    return 0;
}
