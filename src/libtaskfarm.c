/*  libtaskfarm.c -- taskfarm_map: the Vectorizer in C.

    workers == 0 maps in the calling thread. Otherwise the job runs through
    the same machinery as `taskfarm run`: a ventilator in the calling thread
    (items from memory), a sink on a thread (results into the array), and a
    worker whose N slots are threads calling the map function, all over
    inproc://, plus remote workers (taskfarm_serve) when opts->listen is set.
*/
#include "taskfarm.h"

#include "tf_config.h"
#include "tf_log.h"
#include "tf_net.h"
#include "tf_sink.h"
#include "tf_vent.h"
#include "tf_worker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *taskfarm_strerror(int error)
{
    switch (error) {
    case TASKFARM_OK:
        return "success";
    case TASKFARM_EINVAL:
        return "invalid argument";
    case TASKFARM_ENOMEM:
        return "out of memory";
    case TASKFARM_EMAP:
        return "the map function failed some items";
    case TASKFARM_EINIT:
        return "a worker's init function failed";
    case TASKFARM_ENET:
        return "cannot set up sockets";
    case TASKFARM_EINTR:
        return "interrupted";
    default:
        return "unknown error";
    }
}

void taskfarm_results_free(taskfarm_result_t *results, size_t n)
{
    if (!results)
        return;
    for (size_t i = 0; i < n; i++)
        free(results[i].data);
    free(results);
}

typedef struct {
    const taskfarm_opts_t *opts;
    const taskfarm_item_t *items;
    size_t n;
    taskfarm_result_t *results;
    size_t failed;
    size_t reported;
    tf_sink_t *sink;
    tf_worker_t *worker;
    int sink_rc;
} s_job_t;

static int s_source(void *arg, uint64_t seq, const uint8_t **data, size_t *len)
{
    s_job_t *job = arg;
    if (seq >= job->n)
        return 0;
    *data = job->items[seq].data;
    *len = job->items[seq].len;
    return 1;
}

static int s_store(void *arg, uint64_t seq, const uint8_t *data, size_t len)
{
    s_job_t *job = arg;
    if (seq >= job->n)
        return 0;
    taskfarm_result_t *r = &job->results[seq];
    if (len) {
        r->data = malloc(len);
        if (!r->data)
            return -1;
        memcpy(r->data, data, len);
    }
    r->len = len;
    r->status = 0;
    return 0;
}

static void s_failed(void *arg, uint64_t seq, int status, uint32_t detail)
{
    s_job_t *job = arg;
    TF_UNUSED(status);
    if (seq < job->n) {
        job->results[seq].status = detail ? (int)detail : -1;
        job->failed++;
    }
}

static void s_tick(tf_vent_t *vent, void *arg)
{
    s_job_t *job = arg;
    const tf_vent_stats_t *st = tf_vent_stats(vent);
    size_t done = (size_t)(st->done + st->failed);
    if (job->opts->progress && done != job->reported) {
        job->reported = done;
        job->opts->progress(job->opts->progress_user, done, job->n);
    }
}

static void *s_sink_thread(void *arg)
{
    s_job_t *job = arg;
    job->sink_rc = tf_sink_run(job->sink);
    return NULL;
}

static void *s_worker_thread(void *arg)
{
    s_job_t *job = arg;
    tf_worker_run(job->worker);
    return NULL;
}

static int s_map_here(const taskfarm_opts_t *opts, s_job_t *job)
{
    void *state = NULL;
    if (opts->init && opts->init(0, opts->user, &state))
        return TASKFARM_EINIT;
    int rc = TASKFARM_OK;
    for (size_t i = 0; i < job->n; i++) {
        void *out = NULL;
        size_t len = 0;
        int tries = opts->retries > 0 ? opts->retries : 1;
        int mrc = -1;
        while (tries-- > 0 && mrc != 0) {
            free(out);
            out = NULL;
            len = 0;
            mrc = opts->map(state, job->items[i].data, job->items[i].len, &out, &len);
        }
        job->results[i].data = out;
        job->results[i].len = out ? len : 0;
        job->results[i].status = mrc;
        if (mrc)
            rc = TASKFARM_EMAP;
        if (opts->progress)
            opts->progress(opts->progress_user, i + 1, job->n);
    }
    if (opts->fini)
        opts->fini(state);
    return rc;
}

//  czmq as a library uses it: the host program keeps its own signal
//  handling, logs go to stderr.
static void s_zsys_setup(void)
{
    zsys_handler_set(NULL);
    zsys_set_logstream(stderr);
    zsys_init();
}

//  A function-mode worker running `opts` for one job (--once) on `workers`
//  threads, connected to `connect`; `wcfg` (initialised by the caller for
//  the worker command) must outlive it. On failure returns NULL with *rc_p
//  set (TASKFARM_EINIT when the user's init failed) and the reason in err.
static tf_worker_t *s_fn_worker(const taskfarm_opts_t *opts, tf_config_t *wcfg, int64_t workers,
                                const char *connect, const char *sink, int *rc_p, char *err,
                                size_t errlen)
{
    wcfg->workers = workers;
    wcfg->once = true;
    wcfg->connect = (char *)(uintptr_t)connect;
    wcfg->sink = (char *)(uintptr_t)sink;
    tf_fn_t fn = {opts->init, opts->map, opts->fini, opts->user};
    tf_worker_t *worker = tf_worker_new_fn(wcfg, &fn, err, errlen);
    if (!worker)
        *rc_p = strstr(err, "init") ? TASKFARM_EINIT : TASKFARM_ENOMEM;
    return worker;
}

static int s_map_farm(const taskfarm_opts_t *opts, s_job_t *job, int workers)
{
    char err[512] = "";
    char vent_ep[64], sink_ep[64];
    //  Unique per call: libzmq releases inproc names asynchronously.
    static atomic_uint s_calls;
    unsigned call = atomic_fetch_add(&s_calls, 1);
    snprintf(vent_ep, sizeof vent_ep, "inproc://taskfarm-lib-%d-%u-vent", (int)getpid(), call);
    snprintf(sink_ep, sizeof sink_ep, "inproc://taskfarm-lib-%d-%u-sink", (int)getpid(), call);
    //  The host program keeps its own signal handling.
    s_zsys_setup();
    if (tf_log_level > 0)
        tf_log_level = 0; //  errors only from a library

    tf_config_t cfg;
    tf_config_init(&cfg, TF_CMD_RUN);
    cfg.retries = opts->retries > 0 ? opts->retries : 1;
    cfg.unordered = true; //  the array is the order
    cfg.progress = 0;
    tf_config_t wcfg;
    tf_config_init(&wcfg, TF_CMD_WORKER);

    int rc = TASKFARM_ENET;
    tf_vent_t *vent = tf_vent_new(&cfg, err, sizeof err);
    if (!vent)
        goto done;
    tf_vent_set_source(vent, s_source, job);
    tf_vent_set_fail_fn(vent, s_failed, job);
    tf_vent_set_tick(vent, s_tick, job);
    if (tf_vent_bind(vent, vent_ep, err, sizeof err) ||
        (opts->listen && tf_vent_bind(vent, opts->listen, err, sizeof err)))
        goto done;
    job->sink = tf_sink_new(&cfg, err, sizeof err);
    if (!job->sink || tf_sink_bind(job->sink, sink_ep, err, sizeof err))
        goto done;
    if (opts->listen) {
        if (tf_sink_bind_beside(job->sink, opts->listen, err, sizeof err))
            goto done;
        tf_vent_set_sink_endpoint(vent, tf_sink_last_endpoint(job->sink));
    }
    tf_sink_set_ventilator(job->sink, vent_ep);
    tf_sink_set_embedded(job->sink, true);
    tf_sink_set_writer(job->sink, s_store, job);
    job->worker = s_fn_worker(opts, &wcfg, workers, vent_ep, sink_ep, &rc, err, sizeof err);
    if (!job->worker)
        goto done;
    pthread_t st, wt;
    if (pthread_create(&st, NULL, s_sink_thread, job)) {
        rc = TASKFARM_ENOMEM;
        goto done;
    }
    if (pthread_create(&wt, NULL, s_worker_thread, job)) {
        tf_sink_stop(job->sink);
        pthread_join(st, NULL);
        rc = TASKFARM_ENOMEM;
        goto done;
    }
    int vrc = tf_vent_run(vent);
    tf_sink_stop(job->sink);
    tf_worker_stop(job->worker);
    pthread_join(st, NULL);
    pthread_join(wt, NULL);
    if (vrc == 130)
        rc = TASKFARM_EINTR;
    else if (vrc >= 2 || job->sink_rc >= 2)
        rc = TASKFARM_ENET;
    else
        rc = job->failed > 0 ? TASKFARM_EMAP : TASKFARM_OK;
done:
    if (rc == TASKFARM_ENET && err[0])
        tf_error("taskfarm_map: %s", err);
    tf_worker_destroy(&job->worker);
    tf_sink_destroy(&job->sink);
    tf_vent_destroy(&vent);
    //  Config strings point at our buffers: nothing to free but defaults.
    wcfg.connect = wcfg.sink = NULL;
    tf_config_free(&wcfg);
    tf_config_free(&cfg);
    return rc;
}

int taskfarm_map(const taskfarm_opts_t *opts, const taskfarm_item_t *items, size_t n,
                 taskfarm_result_t **results_p)
{
    if (!results_p)
        return TASKFARM_EINVAL;
    *results_p = NULL;
    if (!opts || !opts->map || (n > 0 && !items))
        return TASKFARM_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!items[i].data && items[i].len)
            return TASKFARM_EINVAL;
    int workers = opts->workers < 0 ? tf_online_cpus() : opts->workers;
    s_job_t job;
    memset(&job, 0, sizeof job);
    job.opts = opts;
    job.items = items;
    job.n = n;
    job.results = calloc(n ? n : 1, sizeof *job.results);
    if (!job.results)
        return TASKFARM_ENOMEM;
    int rc = workers == 0 ? s_map_here(opts, &job) : s_map_farm(opts, &job, workers);
    if (rc == TASKFARM_OK || rc == TASKFARM_EMAP)
        *results_p = job.results;
    else
        taskfarm_results_free(job.results, n);
    return rc;
}

int taskfarm_serve(const taskfarm_opts_t *opts, const char *endpoint)
{
    char err[512];
    if (!opts || !opts->map || !endpoint || tf_endpoint_check(endpoint, err, sizeof err))
        return TASKFARM_EINVAL;
    s_zsys_setup();
    tf_config_t wcfg;
    tf_config_init(&wcfg, TF_CMD_WORKER);
    int rc = TASKFARM_OK;
    tf_worker_t *worker =
        s_fn_worker(opts, &wcfg, opts->workers > 0 ? opts->workers : tf_online_cpus(), endpoint,
                    NULL, &rc, err, sizeof err);
    if (!worker)
        tf_error("taskfarm_serve: %s", err);
    else if (tf_worker_run(worker) != 0)
        rc = TASKFARM_ENET;
    tf_worker_destroy(&worker);
    wcfg.connect = NULL;
    tf_config_free(&wcfg);
    return rc;
}
