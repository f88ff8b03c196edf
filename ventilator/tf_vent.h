/*  tf_vent.h -- the ventilator: reads items, leases them to workers by credit,
    re-sends what is not acknowledged, and ends the job with the sink.

    It owns every item until the sink acknowledges it (see docs/PROTOCOL.md).
*/
#ifndef TF_VENT_H_INCLUDED
#define TF_VENT_H_INCLUDED

#include "tf_config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _tf_vent_t tf_vent_t;

//  Called once per loop turn (at least every heartbeat interval).
typedef void(tf_vent_tick_fn)(tf_vent_t *vent, void *arg);

//  Run statistics, also written by --stats.
typedef struct {
    uint64_t items;       //  items read
    uint64_t done;        //  acknowledged by the sink
    uint64_t failed;      //  failed for good
    uint64_t retried;     //  re-dispatches (failures, lost workers, leases)
    uint64_t resent_lost; //  re-dispatches because a worker was lost
    uint64_t resent_lease;
    uint64_t resent_ack;
    uint64_t skipped_resume;
    uint64_t malformed; //  messages dropped as malformed
    uint64_t workers_seen;
    uint64_t workers_lost;
    uint64_t batches;
    int64_t wall_ms;
    int64_t first_loss_detect_ms; //  silence before the first lost worker was declared
} tf_vent_stats_t;

//  Creates a ventilator for `cfg` (input, window, retries, ...). Binds
//  cfg->bind and cfg->listen when set. Returns NULL with a one-line error.
tf_vent_t *tf_vent_new(const tf_config_t *cfg, char *err, size_t errlen);
void tf_vent_destroy(tf_vent_t **self_p);

//  Binds one more endpoint (run mode: inproc for its sink, ipc for workers).
int tf_vent_bind(tf_vent_t *self, const char *endpoint, char *err, size_t errlen);
//  Endpoint workers are told for the sink instead of the one the sink gave.
void tf_vent_set_sink_endpoint(tf_vent_t *self, const char *endpoint);
//  The sink runs in this process (run): when it falls silent it is busy
//  (writing to a slow reader), not lost; said at debug level only.
void tf_vent_set_sink_embedded(tf_vent_t *self, bool embedded);
void tf_vent_set_tick(tf_vent_t *self, tf_vent_tick_fn *fn, void *arg);
//  Tells the ventilator a worker process is gone (run mode sees its exit).
void tf_vent_worker_gone(tf_vent_t *self, const char *name);
//  Thread-safe: leave the loop at once (the job cannot finish).
void tf_vent_abort(tf_vent_t *self);

//  Items from memory instead of the input file: `fn` returns 1 and sets
//  *data/*len for item `seq` (it may be asked for the same seq twice), or 0
//  past the last item. The data is copied.
typedef int(tf_vent_source_fn)(void *arg, uint64_t seq, const uint8_t **data, size_t *len);
void tf_vent_set_source(tf_vent_t *self, tf_vent_source_fn *fn, void *arg);
//  Called for each item that failed for good (instead of logging it).
typedef void(tf_vent_fail_fn)(void *arg, uint64_t seq, int status, uint32_t detail);
void tf_vent_set_fail_fn(tf_vent_t *self, tf_vent_fail_fn *fn, void *arg);

//  Runs the job to its end. Returns 0 when every item succeeded, 1 when
//  some failed, 2 on error, 130 when interrupted.
int tf_vent_run(tf_vent_t *self);

//  Writes the JSON run report (--stats). Returns 0 or -1.
int tf_vent_write_stats(const tf_vent_t *self, const char *path, uint64_t extra_malformed);

const tf_vent_stats_t *tf_vent_stats(const tf_vent_t *self);

#ifdef __cplusplus
}
#endif
#endif
