/*  tf_proto.h -- taskfarm wire protocol v1: encoder and strict decoder.

    Every message is one ZeroMQ frame (ROUTER sockets add the peer's routing
    id in front). All integers are big-endian. See docs/PROTOCOL.md.

        offset  size  field
        0       2     magic "TF"
        2       1     version (TF_PROTO_VERSION)
        3       1     type (tf_msg_type_t)
        4       8     job id (0 before a worker knows the job)
        12      ...   body, per type

    The decoder never asserts on input: tf_proto_validate() walks the whole
    message, checks every length against the frame and the configured limits,
    and returns -1 with a static reason string for anything malformed. Only a
    message that passed validation may be read with the iterators.
*/
#ifndef TF_PROTO_H_INCLUDED
#define TF_PROTO_H_INCLUDED

#include "tf_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TF_PROTO_VERSION 1
#define TF_HDR_SIZE 12
#define TF_MAX_ENDPOINT 255
#define TF_MAX_NAME 255
#define TF_MAX_WINDOW (1u << 24) //  --window at most; SINK_WELCOME checks it
#define TF_MAX_RECORDS (1u << 20)
//  Default bound on one item or one result (bytes).
#define TF_DEFAULT_MAX_ITEM (64u << 20)
#define TF_DEFAULT_MAX_RESULT (256u << 20)
//  A standalone ventilator whose sink's connection is gone, or a standalone
//  sink whose ventilator is silent, waits this many heartbeat timeouts for
//  it to come back, then gives up (exit 2): the job cannot finish without it.
#define TF_GIVE_UP_TIMEOUTS 30

typedef enum {
    TF_MSG_HELLO = 1,         //  worker -> ventilator: join, with slot count
    TF_MSG_WELCOME = 2,       //  ventilator -> worker: job parameters, sink endpoint
    TF_MSG_TASKS = 3,         //  ventilator -> worker: batch of items
    TF_MSG_REPORT = 4,        //  worker -> ventilator: credit + completions
    TF_MSG_RESULTS = 5,       //  worker -> sink: batch of results
    TF_MSG_HEARTBEAT = 6,     //  any direction: liveness
    TF_MSG_RESET = 7,         //  ventilator -> worker: start a new session
    TF_MSG_SINK_HELLO = 8,    //  sink -> ventilator: register, with endpoint
    TF_MSG_SINK_WELCOME = 9,  //  ventilator -> sink: job parameters
    TF_MSG_ACK = 10,          //  sink -> ventilator: ranges of seqs received
    TF_MSG_SKIP = 11,         //  ventilator -> sink: seqs that failed for good
    TF_MSG_END = 12,          //  ventilator -> sink: input exhausted, totals
    TF_MSG_FINISHED = 13,     //  sink -> ventilator: everything written
    TF_MSG_JOB_END = 14,      //  ventilator -> worker: job over
    TF_MSG_RESULTS_LOST = 15, //  worker -> ventilator: results sent may be gone
    TF_MSG_TYPE_MAX = 15
} tf_msg_type_t;

//  Completion status reported by workers.
typedef enum {
    TF_ST_OK = 0,      //  result sent to the sink
    TF_ST_EXIT = 1,    //  command exited non-zero (detail = exit code)
    TF_ST_SIGNAL = 2,  //  command killed by a signal (detail = signal)
    TF_ST_TIMEOUT = 3, //  --timeout expired, command killed
    TF_ST_SPAWN = 4,   //  command could not be started (detail = errno)
    TF_ST_TOOBIG = 5,  //  result larger than the limit
    TF_ST_BADITEM = 6, //  item cannot be given to the command (never retried)
    TF_ST_REQUEUE = 7, //  worker hands the item back, attempt not charged
    TF_ST_STALL = 8,   //  co-process waits for input without answering
    TF_ST_MAX = 8
} tf_status_t;

const char *tf_status_name(int status);
const char *tf_msg_type_name(int type);

typedef struct {
    uint8_t version;
    uint8_t type;
    uint64_t job;
} tf_hdr_t;

//  Limits applied by the decoder.
typedef struct {
    uint32_t max_item;   //  largest TASKS record
    uint32_t max_result; //  largest RESULTS record
} tf_limits_t;

void tf_limits_default(tf_limits_t *self);

//  Decoded bodies of the small messages.
typedef struct {
    uint32_t slots;
    char name[TF_MAX_NAME + 1];
    uint32_t credit; //  items asked for with the HELLO (0 when the field is absent)
} tf_hello_t;

typedef struct {
    uint32_t hb_ivl_ms;
    uint32_t hb_timeout_ms;
    uint32_t timeout_ms; //  per item, 0 = none
    uint32_t max_result;
    char sink[TF_MAX_ENDPOINT + 1];
} tf_welcome_t;

typedef struct {
    uint32_t window;
    uint32_t hb_ivl_ms;
    uint32_t hb_timeout_ms;
} tf_sink_welcome_t;

#define TF_END_PARTIAL 1 //  END flag: the job was stopped, the output is a prefix

typedef struct {
    uint64_t total;
    uint64_t failed;
    uint8_t flags;
} tf_end_t;

typedef struct {
    uint64_t written;
    uint8_t ok;
} tf_finished_t;

//  One record of TASKS or RESULTS; data points into the message.
typedef struct {
    uint64_t seq;
    uint32_t attempt;
    uint32_t len;
    const uint8_t *data;
} tf_item_t;

//  One completion in a REPORT.
typedef struct {
    uint64_t seq;
    uint32_t attempt;
    uint8_t status;
    uint32_t detail;
    uint32_t duration_us;
} tf_done_t;

//  One range in an ACK.
typedef struct {
    uint64_t start;
    uint32_t count;
} tf_range_t;

//  Sizes of records on the wire.
#define TF_ITEM_REC_HDR 16
#define TF_DONE_REC_SIZE 21
#define TF_RANGE_REC_SIZE 12

//  --------------------------------------------------------------------------
//  Decoding

//  Validates a whole message. On success fills `hdr` and returns 0; on
//  failure returns -1 and sets *reason to a static description.
int tf_proto_validate(const uint8_t *data, size_t size, const tf_limits_t *limits, tf_hdr_t *hdr,
                      const char **reason);

//  Body decoders for validated messages of the matching type.
void tf_proto_get_hello(const uint8_t *data, size_t size, tf_hello_t *out);
void tf_proto_get_welcome(const uint8_t *data, size_t size, tf_welcome_t *out);
//  SINK_HELLO: `max_result` is the sink's --max-result, 0 when the field is
//  absent (a sink from before it).
void tf_proto_get_sink_hello(const uint8_t *data, size_t size, char *endpoint, size_t cap,
                             uint64_t *resume_from, uint32_t *max_result);
void tf_proto_get_sink_welcome(const uint8_t *data, size_t size, tf_sink_welcome_t *out);
void tf_proto_get_end(const uint8_t *data, size_t size, tf_end_t *out);
void tf_proto_get_finished(const uint8_t *data, size_t size, tf_finished_t *out);
//  REPORT: credit granted and number of completions.
void tf_proto_get_report(const uint8_t *data, size_t size, uint32_t *credit, uint32_t *count);
//  HEARTBEAT: load figure (worker: items queued+running; others 0).
uint32_t tf_proto_get_heartbeat(const uint8_t *data, size_t size);
uint8_t tf_proto_get_reset(const uint8_t *data, size_t size);

//  Iterator over the records of a validated TASKS, RESULTS, REPORT, ACK or
//  SKIP message.
typedef struct {
    const uint8_t *data;
    size_t size;
    size_t off;
    uint32_t left;
} tf_iter_t;

void tf_iter_init(tf_iter_t *it, const uint8_t *data, size_t size);
uint32_t tf_iter_count(const tf_iter_t *it);
bool tf_iter_item(tf_iter_t *it, tf_item_t *rec);
bool tf_iter_done(tf_iter_t *it, tf_done_t *rec);
bool tf_iter_range(tf_iter_t *it, tf_range_t *rec);
bool tf_iter_seq(tf_iter_t *it, uint64_t *seq);

//  --------------------------------------------------------------------------
//  Encoding into a tf_buf_t. Each returns 0, or -1 on allocation failure.
//  Batch messages: begin, add records, then finish (which patches the count).

//  `credit`: items asked for at once, served right after the first WELCOME
//  (the ventilator grants at most `slots`).
int tf_enc_hello(tf_buf_t *b, uint64_t job, uint32_t slots, const char *name, uint32_t credit);
int tf_enc_welcome(tf_buf_t *b, uint64_t job, const tf_welcome_t *w);
int tf_enc_sink_hello(tf_buf_t *b, const char *endpoint, uint64_t resume_from, uint32_t max_result);
int tf_enc_sink_welcome(tf_buf_t *b, uint64_t job, const tf_sink_welcome_t *w);
int tf_enc_heartbeat(tf_buf_t *b, uint64_t job, uint32_t load);
int tf_enc_reset(tf_buf_t *b, uint64_t job, uint8_t reason);
int tf_enc_end(tf_buf_t *b, uint64_t job, uint64_t total, uint64_t failed, uint8_t flags);
int tf_enc_finished(tf_buf_t *b, uint64_t job, uint64_t written, uint8_t ok);
int tf_enc_job_end(tf_buf_t *b, uint64_t job);
int tf_enc_results_lost(tf_buf_t *b, uint64_t job);

//  TASKS / RESULTS / ACK / SKIP: u32 count then records.
int tf_enc_batch_begin(tf_buf_t *b, int type, uint64_t job);
//  REPORT: u32 credit, u32 count, then records.
int tf_enc_report_begin(tf_buf_t *b, uint64_t job, uint32_t credit);
void tf_enc_report_set_credit(tf_buf_t *b, uint32_t credit);
int tf_enc_item(tf_buf_t *b, uint64_t seq, uint32_t attempt, const void *data, uint32_t len);
//  Reserves an item record whose data is written by the caller afterwards
//  (len bytes at the returned pointer, valid until the next buffer change).
uint8_t *tf_enc_item_reserve(tf_buf_t *b, uint64_t seq, uint32_t attempt, uint32_t len);
int tf_enc_done(tf_buf_t *b, const tf_done_t *d);
int tf_enc_range(tf_buf_t *b, uint64_t start, uint32_t count);
int tf_enc_seq(tf_buf_t *b, uint64_t seq);
//  Sets the record count of a batch message under construction.
void tf_enc_batch_finish(tf_buf_t *b, uint32_t count);

//  Raw big-endian helpers.
void tf_put_u32(uint8_t *p, uint32_t v);
void tf_put_u64(uint8_t *p, uint64_t v);
uint32_t tf_get_u32(const uint8_t *p);
uint64_t tf_get_u64(const uint8_t *p);

#ifdef __cplusplus
}
#endif
#endif
