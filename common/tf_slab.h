/*  tf_slab.h -- a bump allocator for many small, short-lived buffers.

    Small allocations are carved from large blocks; each block counts its
    live allocations and is freed (or, if it is the current block, reused)
    when the count drops to zero. Large allocations fall back to malloc.
    One slab belongs to one thread. This keeps malloc/free off the per-item
    path of the ventilator (item copies), the worker (tasks) and the sink
    (results waiting for their turn).
*/
#ifndef TF_SLAB_H_INCLUDED
#define TF_SLAB_H_INCLUDED

#include "tf_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _tf_slab_t tf_slab_t;

//  Blocks of `block_size` bytes; allocations above `max_small` use malloc.
tf_slab_t *tf_slab_new(size_t block_size, size_t max_small);
//  Frees the slab. Release every allocation first.
void tf_slab_destroy(tf_slab_t **self_p);
//  Returns `len` bytes (8-byte aligned), or NULL. *block_p receives the
//  block to pass to tf_slab_release (NULL for a malloc'd allocation).
void *tf_slab_alloc(tf_slab_t *self, size_t len, void **block_p);
//  Releases an allocation made by tf_slab_alloc.
void tf_slab_release(tf_slab_t *self, void *block, void *ptr);

#ifdef __cplusplus
}
#endif
#endif
