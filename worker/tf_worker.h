/*  tf_worker.h -- the worker: asks the ventilator for items by credit, runs
    them (a command per item, a long-lived co-process, or a plugin) in N
    slots, sends results to the sink and reports completions. */
#ifndef TF_WORKER_H_INCLUDED
#define TF_WORKER_H_INCLUDED

#include "tf_config.h"
#include "tf_fnslot.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _tf_worker_t tf_worker_t;

//  tf_worker_destroy gives an idle --pipe co-process this long to exit
//  after EOF (or SIGTERM on a pty) before it kills it.
#define TF_COPROC_GRACE_MS 1000

//  Checks the command (or plugin) and prepares `slots` slots. Returns NULL
//  with a one-line error.
tf_worker_t *tf_worker_new(const tf_config_t *cfg, char *err, size_t errlen);
//  A worker whose slots call `fn` on threads (libtaskfarm) instead of a
//  command. cfg->workers is the number of slots (ranks 0..N-1).
tf_worker_t *tf_worker_new_fn(const tf_config_t *cfg, const tf_fn_t *fn, char *err, size_t errlen);
void tf_worker_destroy(tf_worker_t **self_p);
//  Loads, checks and unloads a plugin: 0, or -1 with a one-line error.
int tf_worker_check_plugin(const char *path, char *err, size_t errlen);
//  Thread-safe request to leave the loop.
void tf_worker_stop(tf_worker_t *self);

//  Serves jobs until stopped (signal), or until one job ends with --once.
//  Returns 0, or 2 on error.
int tf_worker_run(tf_worker_t *self);

#ifdef __cplusplus
}
#endif
#endif
