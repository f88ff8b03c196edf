/*  taskfarm.h -- libtaskfarm: a parallel map over your own items with your
    own C function, on threads of this process and, optionally, on remote
    copies of the same program. The C successor of pyblaze's Vectorizer.

        static int tokenize (void *state, const void *item, size_t len,
                             void **out, size_t *out_len) { ... }

        taskfarm_opts_t opts = TASKFARM_OPTS_INIT;
        opts.workers = 4;
        opts.map = tokenize;
        taskfarm_result_t *results;
        if (taskfarm_map (&opts, items, n, &results) != TASKFARM_OK) ...
        ... results[i].data / results[i].len, in input order ...
        taskfarm_results_free (results, n);

    Items and results are byte strings. Errors are returned, never a hang:
    a map function that fails an item (non-zero return) makes taskfarm_map
    return TASKFARM_EMAP once every other item is done, with that item's
    status set; results of the others are still there.
*/
#ifndef TASKFARM_H_INCLUDED
#define TASKFARM_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TASKFARM_VERSION_MAJOR 0
#define TASKFARM_VERSION_MINOR 1

typedef enum {
    TASKFARM_OK = 0,
    TASKFARM_EINVAL = -1, //  bad options or arguments
    TASKFARM_ENOMEM = -2, //  out of memory
    TASKFARM_EMAP = -3,   //  the map function failed some items
    TASKFARM_EINIT = -4,  //  a worker's init failed
    TASKFARM_ENET = -5,   //  sockets could not be set up (endpoint in use, ...)
    TASKFARM_EINTR = -6   //  interrupted (SIGINT/SIGTERM)
} taskfarm_error_t;

const char *taskfarm_strerror(int error);

typedef struct {
    const void *data;
    size_t len;
} taskfarm_item_t;

typedef struct {
    void *data; //  malloc'd by the map function (may be NULL when len is 0)
    size_t len;
    int status; //  0 ok, otherwise the map function's last non-zero return
} taskfarm_result_t;

//  Per-worker init: called once per worker with its rank (0..workers-1);
//  the state it sets is passed to every map call of that worker.
typedef int(taskfarm_init_fn)(int rank, void *user, void **state);
typedef int(taskfarm_map_fn)(void *state, const void *item, size_t len, void **out,
                             size_t *out_len);
typedef void(taskfarm_fini_fn)(void *state);
//  Called from the calling thread as results arrive.
typedef void(taskfarm_progress_fn)(void *user, size_t done, size_t total);

typedef struct {
    int workers; //  -1: online CPUs; 0: map in the calling thread
    taskfarm_init_fn *init;
    taskfarm_map_fn *map;
    taskfarm_fini_fn *fini;
    void *user; //  passed to init
    taskfarm_progress_fn *progress;
    void *progress_user;
    int retries;        //  attempts per item (default 1: a failure is final)
    const char *listen; //  also serve remote workers here (tcp://*:5555), or NULL
} taskfarm_opts_t;

#define TASKFARM_OPTS_INIT                                                                         \
    {                                                                                              \
        -1, NULL, NULL, NULL, NULL, NULL, NULL, 1, NULL                                            \
    }

//  Maps opts->map over items[0..n). On TASKFARM_OK or TASKFARM_EMAP,
//  *results_p is an array of n results in input order that the caller frees
//  with taskfarm_results_free; on other errors it is NULL.
int taskfarm_map(const taskfarm_opts_t *opts, const taskfarm_item_t *items, size_t n,
                 taskfarm_result_t **results_p);
void taskfarm_results_free(taskfarm_result_t *results, size_t n);

//  Serves a remote taskfarm_map (or `taskfarm ventilator`) at `endpoint` as
//  a worker with opts->workers threads, calling opts->init/map/fini, until
//  the job ends. Returns TASKFARM_OK or an error.
int taskfarm_serve(const taskfarm_opts_t *opts, const char *endpoint);

#ifdef __cplusplus
}
#endif
#endif
