/*  tf_reorder.c -- the sink's reorder buffer and duplicate filter. */
#include "tf_reorder.h"
#include "tf_slab.h"

#include <stdlib.h>
#include <string.h>

enum { S_EMPTY = 0, S_HELD, S_SKIP, S_DONE };

typedef struct {
    uint8_t *data;
    void *block;
    size_t len;
    uint8_t state;
} s_entry_t;

struct _tf_reorder_t {
    s_entry_t *ring; //  `mask + 1` entries (a power of two >= capacity)
    uint64_t mask;
    uint32_t capacity; //  seqs from `next` it accepts
    bool ordered;
    uint64_t next;
    uint32_t held;
    size_t held_bytes;
    tf_slab_t *slab;
    bool write_through;
    uint64_t skips_released; //  ordered mode: skipped seqs below `next`
};

void tf_reorder_set_write_through(tf_reorder_t *self, bool on)
{
    self->write_through = on;
}

tf_reorder_t *tf_reorder_new(uint32_t capacity, bool ordered)
{
    uint32_t ring = tf_pow2_at_least(capacity);
    if (capacity == 0 || ring == 0)
        return NULL;
    tf_reorder_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->mask = (uint64_t)ring - 1;
    self->ring = calloc(self->mask + 1, sizeof *self->ring);
    self->slab = tf_slab_new(256 * 1024, 4096);
    if (!self->ring || !self->slab) {
        free(self->ring);
        tf_slab_destroy(&self->slab);
        free(self);
        return NULL;
    }
    self->capacity = capacity;
    self->ordered = ordered;
    return self;
}

void tf_reorder_destroy(tf_reorder_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    tf_reorder_t *self = *self_p;
    //  Nothing held (the usual end): the ring, mostly never touched, is
    //  not read at all.
    for (uint64_t i = 0; self->held > 0 && i <= self->mask; i++)
        if (self->ring[i].data)
            tf_slab_release(self->slab, self->ring[i].block, self->ring[i].data);
    tf_slab_destroy(&self->slab);
    free(self->ring);
    free(self);
    *self_p = NULL;
}

static s_entry_t *s_at(const tf_reorder_t *self, uint64_t seq)
{
    return &self->ring[seq & self->mask];
}

bool tf_reorder_seen(const tf_reorder_t *self, uint64_t seq)
{
    if (seq < self->next)
        return true;
    if (seq - self->next >= self->capacity)
        return false;
    return s_at(self, seq)->state != S_EMPTY;
}

//  Unordered mode: slide `next` over everything already released.
static void s_slide(tf_reorder_t *self)
{
    while (s_at(self, self->next)->state == S_DONE || s_at(self, self->next)->state == S_SKIP) {
        s_at(self, self->next)->state = S_EMPTY;
        self->next++;
    }
}

tf_ro_result_t tf_reorder_put(tf_reorder_t *self, uint64_t seq, const uint8_t *data, size_t len,
                              bool skip, tf_reorder_write_fn *write, void *arg)
{
    if (seq < self->next)
        return TF_RO_DUPLICATE;
    if (seq - self->next >= self->capacity)
        return TF_RO_OUT_OF_WINDOW;
    s_entry_t *e = s_at(self, seq);
    if (e->state != S_EMPTY)
        return TF_RO_DUPLICATE;
    if (skip) {
        e->state = S_SKIP;
    } else if (!self->ordered) {
        if (write && write(arg, seq, data, len))
            return TF_RO_NOMEM;
        e->state = S_DONE;
    } else if (self->write_through && seq == self->next && write) {
        //  Next in order: straight out, no copy; drain releases what follows.
        if (write(arg, seq, data, len))
            return TF_RO_NOMEM;
        self->next++;
        return TF_RO_ACCEPTED;
    } else {
        e->data = NULL;
        e->block = NULL;
        if (len) {
            e->data = tf_slab_alloc(self->slab, len, &e->block);
            if (!e->data)
                return TF_RO_NOMEM;
            memcpy(e->data, data, len);
        }
        e->len = len;
        e->state = S_HELD;
        self->held++;
        self->held_bytes += len;
    }
    if (!self->ordered)
        s_slide(self);
    return TF_RO_ACCEPTED;
}

int64_t tf_reorder_drain(tf_reorder_t *self, tf_reorder_write_fn *write, void *arg)
{
    int64_t count = 0;
    if (!self->ordered)
        return 0;
    for (;;) {
        s_entry_t *e = s_at(self, self->next);
        if (e->state == S_HELD) {
            if (write && write(arg, self->next, e->data, e->len))
                return -1;
            if (e->data)
                tf_slab_release(self->slab, e->block, e->data);
            e->data = NULL;
            e->block = NULL;
            self->held--;
            self->held_bytes -= e->len;
            e->len = 0;
        } else if (e->state == S_SKIP)
            self->skips_released++;
        else
            break;
        e->state = S_EMPTY;
        self->next++;
        count++;
    }
    return count;
}

uint32_t tf_reorder_capacity(const tf_reorder_t *self)
{
    return self->capacity;
}

uint64_t tf_reorder_next(const tf_reorder_t *self)
{
    return self->next;
}

uint64_t tf_reorder_skips_released(const tf_reorder_t *self)
{
    return self->skips_released;
}

void tf_reorder_start_at(tf_reorder_t *self, uint64_t seq)
{
    if (self->held == 0)
        self->next = seq;
}

uint32_t tf_reorder_held(const tf_reorder_t *self)
{
    return self->held;
}

size_t tf_reorder_held_bytes(const tf_reorder_t *self)
{
    return self->held_bytes;
}
