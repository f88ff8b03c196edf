/*  tf_slab.c -- a bump allocator for many small, short-lived buffers. */
#include "tf_slab.h"

#include <stdlib.h>

typedef struct {
    size_t refs;
    size_t used;
    size_t size;
    uint64_t align; //  data below starts 8-byte aligned
} s_block_t;

struct _tf_slab_t {
    size_t block_size;
    size_t max_small;
    s_block_t *current;
};

tf_slab_t *tf_slab_new(size_t block_size, size_t max_small)
{
    if (max_small > block_size)
        max_small = block_size;
    tf_slab_t *self = calloc(1, sizeof *self);
    if (self) {
        self->block_size = block_size;
        self->max_small = max_small;
    }
    return self;
}

void tf_slab_destroy(tf_slab_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    tf_slab_t *self = *self_p;
    //  Holders release everything before the slab goes (see the header).
    free(self->current);
    free(self);
    *self_p = NULL;
}

static uint8_t *s_data(s_block_t *b)
{
    return (uint8_t *)(b + 1);
}

void *tf_slab_alloc(tf_slab_t *self, size_t len, void **block_p)
{
    size_t need = (len + 7) & ~(size_t)7;
    if (len > self->max_small) {
        *block_p = NULL;
        return malloc(len ? len : 1);
    }
    s_block_t *b = self->current;
    if (!b || b->used + need > b->size) {
        if (b && b->refs == 0) {
            b->used = 0; //  empty: reuse it
        } else {
            b = malloc(sizeof(s_block_t) + self->block_size);
            if (!b)
                return NULL;
            b->refs = 0;
            b->used = 0;
            b->size = self->block_size;
            self->current = b; //  the previous one is freed by its last release
        }
    }
    void *p = s_data(b) + b->used;
    b->used += need;
    b->refs++;
    *block_p = b;
    return p;
}

void tf_slab_release(tf_slab_t *self, void *block, void *ptr)
{
    if (!block) {
        free(ptr);
        return;
    }
    s_block_t *b = block;
    if (--b->refs > 0)
        return;
    if (self && b == self->current) {
        b->used = 0;
        return;
    }
    free(b);
}
