/*  tf_sink.h -- the sink: collects results, drops duplicates, acknowledges
    them to the ventilator in batches and writes them in input order. */
#ifndef TF_SINK_H_INCLUDED
#define TF_SINK_H_INCLUDED

#include "tf_config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _tf_sink_t tf_sink_t;

typedef struct {
    uint64_t results;    //  results accepted
    uint64_t duplicates; //  results dropped as duplicates
    uint64_t skipped;    //  items the ventilator gave up on
    uint64_t malformed;  //  messages dropped as malformed
    uint64_t written;    //  results written
    uint64_t bytes;      //  bytes written
    uint64_t acks;       //  ACK messages sent
} tf_sink_stats_t;

//  Opens the output (cfg->output or stdout) and binds cfg->bind when set.
//  Returns NULL with a one-line error.
tf_sink_t *tf_sink_new(const tf_config_t *cfg, char *err, size_t errlen);
void tf_sink_destroy(tf_sink_t **self_p);

int tf_sink_bind(tf_sink_t *self, const char *endpoint, char *err, size_t errlen);
//  Binds an ephemeral TCP port on the host of `listen` (a ventilator's
//  --listen endpoint; all interfaces for a wildcard): where remote workers
//  beside it send results. tf_sink_last_endpoint() then names it.
int tf_sink_bind_beside(tf_sink_t *self, const char *listen, char *err, size_t errlen);
//  The endpoint last bound, as ZeroMQ resolved it (tcp://host:port).
const char *tf_sink_last_endpoint(tf_sink_t *self);
//  Ventilator to register with, and the endpoint workers are told.
void tf_sink_set_ventilator(tf_sink_t *self, const char *endpoint);
void tf_sink_set_advertise(tf_sink_t *self, const char *endpoint);
//  Embedded in `run`: signals are the ventilator's business.
void tf_sink_set_embedded(tf_sink_t *self, bool embedded);
//  Results go to `fn` (seq, data, len) instead of the output file.
typedef int(tf_sink_write_fn)(void *arg, uint64_t seq, const uint8_t *data, size_t len);
void tf_sink_set_writer(tf_sink_t *self, tf_sink_write_fn *fn, void *arg);
//  Thread-safe request to leave the loop.
void tf_sink_stop(tf_sink_t *self);

//  Runs until the job is written. Returns 0 when every item succeeded, 1
//  when some failed, 2 on error, 130 when interrupted.
int tf_sink_run(tf_sink_t *self);
const tf_sink_stats_t *tf_sink_stats(const tf_sink_t *self);
//  Writes the sink's counters as JSON (standalone --stats). Returns 0 or -1.
int tf_sink_write_stats(const tf_sink_t *self, const char *path);

#ifdef __cplusplus
}
#endif
#endif
