/*  tf_fnslot.h -- a worker slot that runs a C map function on its own thread
    (plugins and libtaskfarm). The worker loop hands it one item at a time
    and polls a descriptor that becomes readable when the result is ready. */
#ifndef TF_FNSLOT_H_INCLUDED
#define TF_FNSLOT_H_INCLUDED

#include "tf_common.h"

#ifdef __cplusplus
extern "C" {
#endif

//  The functions a slot calls (library signatures; plugins are adapted).
typedef struct {
    int (*init)(int rank, void *user, void **state); //  may be NULL
    int (*map)(void *state, const void *item, size_t len, void **out, size_t *out_len);
    void (*fini)(void *state); //  may be NULL
    void *user;
} tf_fn_t;

typedef struct _tf_fnslot_t tf_fnslot_t;

//  Starts the slot's thread and runs init(rank) on it. Returns NULL with a
//  one-line error if the thread cannot start or init fails.
tf_fnslot_t *tf_fnslot_new(int rank, const tf_fn_t *fn, char *err, size_t errlen);
//  Stops the thread (after the running map call returns) and runs fini.
void tf_fnslot_destroy(tf_fnslot_t **self_p);

//  Readable when a submitted item is done.
int tf_fnslot_fd(const tf_fnslot_t *self);
//  Hands an item to the idle slot; `data` must stay valid until collected.
//  Returns 0, or -1 when the slot is busy.
int tf_fnslot_submit(tf_fnslot_t *self, const void *data, size_t len);
//  Takes the finished result: *out is malloc'd (caller frees), *rc is the
//  map function's return. Returns 0, or -1 when nothing is finished.
int tf_fnslot_collect(tf_fnslot_t *self, void **out, size_t *out_len, int *rc);

#ifdef __cplusplus
}
#endif
#endif
