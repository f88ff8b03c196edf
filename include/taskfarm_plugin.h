/*  taskfarm_plugin.h -- the plugin ABI for `taskfarm run/worker --plugin LIB.so`.

    A plugin is a shared library that exports one symbol:

        const taskfarm_plugin_t *taskfarm_plugin (void);

    returning a static description. The worker calls `init` once per slot
    with the slot's rank (0..N-1 within that worker process), `map` once per
    item, and `fini` when the slot ends. `map` runs on the slot's own thread:
    with -j N, up to N calls run at once, each with its own state.

    map() returns 0 and sets *out / *out_len to a malloc'd result (the
    worker frees it; *out may stay NULL for an empty result), or non-zero
    for a failed item (retried elsewhere up to --retries). A result is
    written as-is: add the newline yourself if you want lines.
*/
#ifndef TASKFARM_PLUGIN_H_INCLUDED
#define TASKFARM_PLUGIN_H_INCLUDED

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TASKFARM_PLUGIN_ABI 1

typedef struct {
    int abi;          //  TASKFARM_PLUGIN_ABI
    const char *name; //  for logs
    //  Called once per slot; *state is passed to map and fini. Non-zero
    //  return: the worker refuses to start. May be NULL.
    int (*init)(int rank, void **state);
    //  Maps one item. Required.
    int (*map)(void *state, const void *item, size_t len, void **out, size_t *out_len);
    //  Called once per slot at the end. May be NULL.
    void (*fini)(void *state);
} taskfarm_plugin_t;

typedef const taskfarm_plugin_t *(taskfarm_plugin_fn)(void);
#define TASKFARM_PLUGIN_SYMBOL "taskfarm_plugin"

#ifdef __cplusplus
}
#endif
#endif
