/*  tf_window.c -- the ventilator's table of items in flight. */
#include "tf_window.h"

#include <stdlib.h>
#include <string.h>

struct _tf_window_t {
    tf_slot_t *slots; //  ring of `mask + 1` slots (a power of two >= capacity)
    uint64_t mask;
    uint32_t capacity; //  items in flight at most
    size_t max_bytes;
    size_t bytes;
    uint64_t base; //  oldest seq not acked
    uint64_t next; //  next seq to enter
    //  Dispatch queue: ring of seqs (each live item is in it at most once),
    //  `mask + 1` long too.
    uint64_t *queue;
    size_t qhead;
    size_t qlen;
    tf_window_release_fn *release;
    void *release_arg;
};

static tf_slot_t *s_slot(tf_window_t *self, uint64_t seq)
{
    return &self->slots[seq & self->mask];
}

static void s_release(tf_window_t *self, tf_slot_t *slot)
{
    if (!slot->data)
        return;
    if (self->release)
        self->release(self->release_arg, slot->block, slot->data);
    else
        free(slot->data);
    slot->data = NULL;
    slot->block = NULL;
}

void tf_window_set_release(tf_window_t *self, tf_window_release_fn *fn, void *arg)
{
    self->release = fn;
    self->release_arg = arg;
}

tf_window_t *tf_window_new(uint32_t capacity, size_t max_bytes)
{
    size_t ring = tf_pow2_at_least(capacity);
    if (capacity == 0 || ring == 0)
        return NULL;
    tf_window_t *self = calloc(1, sizeof *self);
    if (!self)
        goto fail_self;
    self->slots = calloc(ring, sizeof *self->slots);
    if (!self->slots)
        goto fail_slots;
    self->queue = calloc(ring, sizeof *self->queue);
    if (!self->queue)
        goto fail_queue;
    self->mask = ring - 1;
    self->capacity = capacity;
    self->max_bytes = max_bytes;
    return self;

fail_queue:
    free(self->slots);
fail_slots:
    free(self);
fail_self:
    return NULL;
}

void tf_window_destroy(tf_window_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    tf_window_t *self = *self_p;
    //  Only live items hold data: the rest of a large, mostly untouched
    //  ring is never read (reading it would fault its pages in).
    for (uint64_t seq = self->base; seq < self->next; seq++)
        s_release(self, s_slot(self, seq));
    free(self->slots);
    free(self->queue);
    free(self);
    *self_p = NULL;
}

uint32_t tf_window_capacity(const tf_window_t *self)
{
    return self->capacity;
}

bool tf_window_has_room(const tf_window_t *self, size_t len)
{
    if (self->next - self->base >= self->capacity)
        return false;
    //  An item larger than the whole budget may still enter an empty window.
    if (self->bytes > 0 && self->bytes + len > self->max_bytes)
        return false;
    return true;
}

static void s_advance(tf_window_t *self)
{
    while (self->base < self->next && s_slot(self, self->base)->state == TF_ITEM_ACKED) {
        s_slot(self, self->base)->state = TF_ITEM_FREE;
        self->base++;
    }
}

int tf_window_push(tf_window_t *self, uint64_t seq, uint8_t *data, uint32_t len)
{
    return tf_window_push_block(self, seq, data, len, NULL);
}

int tf_window_push_block(tf_window_t *self, uint64_t seq, uint8_t *data, uint32_t len, void *block)
{
    if (seq != self->next || !tf_window_has_room(self, len))
        return -1;
    tf_slot_t *slot = s_slot(self, seq);
    memset(slot, 0, sizeof *slot);
    slot->data = data;
    slot->block = block;
    slot->len = len;
    slot->state = TF_ITEM_PENDING;
    slot->worker = -1;
    self->bytes += len;
    self->next++;
    self->queue[(self->qhead + self->qlen) & self->mask] = seq;
    self->qlen++;
    return 0;
}

int tf_window_push_done(tf_window_t *self, uint64_t seq)
{
    if (seq != self->next || !tf_window_has_room(self, 0))
        return -1;
    tf_slot_t *slot = s_slot(self, seq);
    memset(slot, 0, sizeof *slot);
    slot->state = TF_ITEM_ACKED;
    slot->worker = -1;
    self->next++;
    s_advance(self);
    return 0;
}

uint64_t tf_window_next(const tf_window_t *self)
{
    return self->next;
}

uint64_t tf_window_base(const tf_window_t *self)
{
    return self->base;
}

void tf_window_start_at(tf_window_t *self, uint64_t seq)
{
    if (self->next == self->base) {
        self->base = seq;
        self->next = seq;
    }
}

uint64_t tf_window_inflight(const tf_window_t *self)
{
    return self->next - self->base;
}

size_t tf_window_bytes(const tf_window_t *self)
{
    return self->bytes;
}

tf_slot_t *tf_window_get(tf_window_t *self, uint64_t seq)
{
    if (seq < self->base || seq >= self->next)
        return NULL;
    tf_slot_t *slot = s_slot(self, seq);
    if (slot->state == TF_ITEM_ACKED || slot->state == TF_ITEM_FREE)
        return NULL;
    return slot;
}

size_t tf_window_pending(const tf_window_t *self)
{
    return self->qlen;
}

bool tf_window_pop(tf_window_t *self, uint64_t *seq_p)
{
    while (self->qlen > 0) {
        uint64_t seq = self->queue[self->qhead];
        self->qhead = (self->qhead + 1) & self->mask;
        self->qlen--;
        //  Skip entries whose item was acked meanwhile (a late ack).
        tf_slot_t *slot = tf_window_get(self, seq);
        if (slot && slot->state == TF_ITEM_PENDING) {
            //  Out of the queue, so no longer PENDING: a caller that cannot
            //  send it after all must be able to requeue it.
            slot->state = TF_ITEM_LEASED;
            *seq_p = seq;
            return true;
        }
    }
    return false;
}

void tf_window_requeue(tf_window_t *self, uint64_t seq)
{
    tf_slot_t *slot = tf_window_get(self, seq);
    if (!slot || slot->state == TF_ITEM_PENDING)
        return;
    slot->state = TF_ITEM_PENDING;
    slot->worker = -1;
    slot->deadline = 0;
    self->qhead = (self->qhead - 1) & self->mask;
    self->queue[self->qhead] = seq;
    self->qlen++;
}

//  Removes `seq` from the dispatch queue (rare: a late ack of a requeued item).
static void s_unqueue(tf_window_t *self, uint64_t seq)
{
    size_t out = 0;
    for (size_t i = 0; i < self->qlen; i++) {
        uint64_t s = self->queue[(self->qhead + i) & self->mask];
        if (s != seq)
            self->queue[(self->qhead + out++) & self->mask] = s;
    }
    self->qlen = out;
}

bool tf_window_ack(tf_window_t *self, uint64_t seq)
{
    tf_slot_t *slot = tf_window_get(self, seq);
    if (!slot)
        return false;
    tf_window_ack_slot(self, seq, slot);
    return true;
}

void tf_window_ack_slot(tf_window_t *self, uint64_t seq, tf_slot_t *slot)
{
    if (slot->state == TF_ITEM_PENDING)
        s_unqueue(self, seq);
    s_release(self, slot);
    self->bytes -= slot->len;
    slot->len = 0;
    slot->state = TF_ITEM_ACKED;
    slot->worker = -1;
    s_advance(self);
}

void tf_window_each(tf_window_t *self, int state, int32_t worker, tf_window_fn *fn, void *arg)
{
    uint64_t end = self->next;
    for (uint64_t seq = self->base; seq < end; seq++) {
        tf_slot_t *slot = tf_window_get(self, seq);
        if (!slot || (state >= 0 && slot->state != state))
            continue;
        if (worker >= 0 && slot->worker != worker)
            continue;
        fn(arg, seq, slot);
    }
}
