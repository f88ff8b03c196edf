/*  tf_reorder.h -- the sink's reorder buffer and duplicate filter.

    A ring of `capacity` slots indexed by seq % capacity, starting at `next`,
    the first seq not yet released. A result is accepted once: a second copy
    (a re-sent item, a stale worker waking up) is reported as a duplicate.
    Results are released strictly in seq order (ordered mode) or at once
    (unordered mode, where the ring only remembers what was seen). Skipped
    seqs (items that failed for good) release nothing but let order move on.
*/
#ifndef TF_REORDER_H_INCLUDED
#define TF_REORDER_H_INCLUDED

#include "tf_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TF_RO_ACCEPTED = 0,
    TF_RO_DUPLICATE = 1,
    TF_RO_OUT_OF_WINDOW = 2,
    TF_RO_NOMEM = 3
} tf_ro_result_t;

typedef struct _tf_reorder_t tf_reorder_t;

//  Writes one released result; returns 0, or -1 to stop releasing (error).
typedef int(tf_reorder_write_fn)(void *arg, uint64_t seq, const uint8_t *data, size_t len);

tf_reorder_t *tf_reorder_new(uint32_t capacity, bool ordered);
void tf_reorder_destroy(tf_reorder_t **self_p);

//  Offers a result (copied when it has to wait). In unordered mode `write`
//  is called at once for a new result. Skip = item failed, no data.
tf_ro_result_t tf_reorder_put(tf_reorder_t *self, uint64_t seq, const uint8_t *data, size_t len,
                              bool skip, tf_reorder_write_fn *write, void *arg);
//  Ordered mode: a result that is next in order is written by put at once,
//  without a copy (default: it waits for drain like the others).
void tf_reorder_set_write_through(tf_reorder_t *self, bool on);
//  Releases every result that is next in order. Returns the number
//  released, or -1 if `write` failed.
int64_t tf_reorder_drain(tf_reorder_t *self, tf_reorder_write_fn *write, void *arg);

//  True if `seq` was already accepted (released or waiting).
bool tf_reorder_seen(const tf_reorder_t *self, uint64_t seq);
//  How many seqs from `next` it accepts (the job's window).
uint32_t tf_reorder_capacity(const tf_reorder_t *self);
//  First seq not yet released.
uint64_t tf_reorder_next(const tf_reorder_t *self);
//  Ordered mode: how many skipped seqs drain has released (all below next;
//  within a write callback, exactly those below the seq being written).
uint64_t tf_reorder_skips_released(const tf_reorder_t *self);
//  Moves an empty buffer to start at `seq` (resume).
void tf_reorder_start_at(tf_reorder_t *self, uint64_t seq);
//  Results waiting, and their bytes.
uint32_t tf_reorder_held(const tf_reorder_t *self);
size_t tf_reorder_held_bytes(const tf_reorder_t *self);

#ifdef __cplusplus
}
#endif
#endif
