/*  test_window.c -- the ventilator's table of items in flight. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf_window.h"

static uint8_t *s_data(const char *text)
{
    size_t n = strlen(text);
    uint8_t *d = malloc(n ? n : 1);
    cr_assert_not_null(d);
    memcpy(d, text, n);
    return d;
}

//  Pushes `n` items "item-<seq>" of 6+ bytes.
static void s_push_n(tf_window_t *w, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        uint64_t seq = tf_window_next(w);
        char text[32];
        snprintf(text, sizeof text, "item-%llu", (unsigned long long)seq);
        cr_assert_eq(tf_window_push(w, seq, s_data(text), (uint32_t)strlen(text)), 0,
                     "push %llu failed", (unsigned long long)seq);
    }
}

//  Pops and marks as leased to `worker`, like the ventilator's dispatch.
static uint64_t s_lease(tf_window_t *w, int32_t worker)
{
    uint64_t seq = UINT64_MAX;
    cr_assert(tf_window_pop(w, &seq), "nothing to pop");
    tf_slot_t *slot = tf_window_get(w, seq);
    cr_assert_not_null(slot);
    //  Out of the queue, the item is no longer PENDING.
    cr_assert_eq(slot->state, TF_ITEM_LEASED);
    slot->worker = worker;
    slot->attempt++;
    return seq;
}

Test(window, new_and_destroy)
{
    cr_assert_null(tf_window_new(0, 100));
    tf_window_t *w = tf_window_new(8, 1000);
    cr_assert_not_null(w);
    cr_assert_eq(tf_window_capacity(w), 8);
    cr_assert_eq(tf_window_next(w), 0);
    cr_assert_eq(tf_window_base(w), 0);
    cr_assert_eq(tf_window_inflight(w), 0);
    cr_assert_eq(tf_window_bytes(w), 0);
    cr_assert_eq(tf_window_pending(w), 0);
    uint64_t seq;
    cr_assert_not(tf_window_pop(w, &seq));
    cr_assert_null(tf_window_get(w, 0));
    tf_window_destroy(&w);
    cr_assert_null(w);
    tf_window_destroy(&w); //  safe twice
    tf_window_destroy(NULL);
}

static void s_count_release(void *arg, void *block, void *data)
{
    (void)block;
    (*(int *)arg)++;
    free(data);
}

Test(window, destroy_releases_live_items_after_wrap)
{
    //  Destroy walks only base..next: every live item (some wrapped past
    //  the ring's end) is released once, acked ones not again.
    tf_window_t *w = tf_window_new(8, 1000);
    int released = 0;
    tf_window_set_release(w, s_count_release, &released);
    s_push_n(w, 8);
    for (int i = 0; i < 6; i++)
        cr_assert(tf_window_ack(w, (uint64_t)i));
    cr_assert_eq(released, 6);
    s_push_n(w, 5); //  seqs 8..12 wrap to slots 0..4
    cr_assert_eq(tf_window_base(w), 6);
    cr_assert_eq(tf_window_next(w), 13);
    (void)s_lease(w, 1);
    cr_assert(tf_window_ack(w, 9)); //  out of order: base stays at 6
    cr_assert_eq(released, 7);
    tf_window_destroy(&w);
    cr_assert_eq(released, 13, "released %d of 13", released);
}

Test(window, push_pop_order)
{
    tf_window_t *w = tf_window_new(16, 1 << 20);
    s_push_n(w, 10);
    cr_assert_eq(tf_window_next(w), 10);
    cr_assert_eq(tf_window_inflight(w), 10);
    cr_assert_eq(tf_window_pending(w), 10);
    tf_slot_t *slot = tf_window_get(w, 3);
    cr_assert_not_null(slot);
    cr_assert_eq(slot->len, 6);
    cr_assert_eq(memcmp(slot->data, "item-3", 6), 0);
    cr_assert_eq(slot->state, TF_ITEM_PENDING);
    cr_assert_eq(slot->worker, -1);
    cr_assert_eq(slot->attempt, 0);
    for (uint64_t i = 0; i < 10; i++) {
        uint64_t seq = UINT64_MAX;
        cr_assert(tf_window_pop(w, &seq));
        cr_assert_eq(seq, i);
    }
    uint64_t seq;
    cr_assert_not(tf_window_pop(w, &seq));
    cr_assert_eq(tf_window_pending(w), 0);
    //  Popping does not free anything: the items are still in flight.
    cr_assert_eq(tf_window_inflight(w), 10);
    tf_window_destroy(&w);
}

Test(window, push_wrong_seq)
{
    tf_window_t *w = tf_window_new(4, 100);
    cr_assert_eq(tf_window_push(w, 1, NULL, 0), -1);
    cr_assert_eq(tf_window_next(w), 0);
    cr_assert_eq(tf_window_push(w, 0, NULL, 0), 0);
    cr_assert_eq(tf_window_push(w, 0, NULL, 0), -1);
    cr_assert_eq(tf_window_push_done(w, 5), -1);
    cr_assert_eq(tf_window_next(w), 1);
    tf_window_destroy(&w);
}

Test(window, capacity)
{
    tf_window_t *w = tf_window_new(4, 1 << 20);
    s_push_n(w, 4);
    cr_assert_not(tf_window_has_room(w, 0));
    uint8_t *d = s_data("x");
    cr_assert_eq(tf_window_push(w, 4, d, 1), -1);
    free(d); //  ownership is not taken on failure
    cr_assert_eq(tf_window_push_done(w, 4), -1);
    //  Acking a later item does not make room: base stays at 0.
    cr_assert(tf_window_ack(w, 1));
    cr_assert_not(tf_window_has_room(w, 0));
    cr_assert(tf_window_ack(w, 0));
    cr_assert_eq(tf_window_base(w), 2);
    cr_assert(tf_window_has_room(w, 0));
    //  The freed slots are reused (4 % 4 == 0).
    s_push_n(w, 2);
    cr_assert_eq(tf_window_next(w), 6);
    cr_assert_not(tf_window_has_room(w, 0));
    tf_slot_t *slot = tf_window_get(w, 4);
    cr_assert_not_null(slot);
    cr_assert_eq(memcmp(slot->data, "item-4", 6), 0);
    cr_assert_null(tf_window_get(w, 0));
    cr_assert_null(tf_window_get(w, 6));
    tf_window_destroy(&w);
}

Test(window, byte_budget)
{
    tf_window_t *w = tf_window_new(100, 10);
    //  An empty window takes any item, even one over the whole budget.
    cr_assert(tf_window_has_room(w, 1000));
    cr_assert_eq(tf_window_push(w, 0, s_data("123456"), 6), 0);
    cr_assert_eq(tf_window_bytes(w), 6);
    cr_assert(tf_window_has_room(w, 4));
    cr_assert_not(tf_window_has_room(w, 5));
    uint8_t *d = s_data("12345");
    cr_assert_eq(tf_window_push(w, 1, d, 5), -1);
    free(d);
    cr_assert_eq(tf_window_push(w, 1, s_data("1234"), 4), 0);
    cr_assert_eq(tf_window_bytes(w), 10);
    cr_assert_not(tf_window_has_room(w, 1));
    //  Empty items still fit in a full budget.
    cr_assert(tf_window_has_room(w, 0));
    cr_assert_eq(tf_window_push(w, 2, NULL, 0), 0);
    //  Acks give the bytes back.
    cr_assert(tf_window_ack(w, 0));
    cr_assert_eq(tf_window_bytes(w), 4);
    cr_assert(tf_window_has_room(w, 6));
    cr_assert_not(tf_window_has_room(w, 7));
    cr_assert(tf_window_ack(w, 1));
    cr_assert(tf_window_ack(w, 2));
    cr_assert_eq(tf_window_bytes(w), 0);
    //  Over-budget item in an empty window, then nothing else fits.
    cr_assert_eq(tf_window_push(w, 3, s_data("0123456789abcdef"), 16), 0);
    cr_assert_eq(tf_window_bytes(w), 16);
    cr_assert_not(tf_window_has_room(w, 0));
    tf_window_destroy(&w);
}

Test(window, requeue_goes_to_front)
{
    tf_window_t *w = tf_window_new(16, 1 << 20);
    s_push_n(w, 5);
    uint64_t a = s_lease(w, 1);
    uint64_t b = s_lease(w, 2);
    cr_assert_eq(a, 0);
    cr_assert_eq(b, 1);
    cr_assert_eq(tf_window_pending(w), 3);
    tf_slot_t *slot = tf_window_get(w, 1);
    slot->deadline = 12345;
    tf_window_requeue(w, 1);
    cr_assert_eq(slot->state, TF_ITEM_PENDING);
    cr_assert_eq(slot->worker, -1);
    cr_assert_eq(slot->deadline, 0);
    cr_assert_eq(slot->attempt, 1, "requeue does not reset the attempt count");
    tf_window_requeue(w, 0);
    cr_assert_eq(tf_window_pending(w), 5);
    //  Most recently requeued first, then the rest in order.
    const uint64_t expect[] = {0, 1, 2, 3, 4};
    for (size_t i = 0; i < 5; i++) {
        uint64_t seq = UINT64_MAX;
        cr_assert(tf_window_pop(w, &seq));
        cr_assert_eq(seq, expect[i], "pop %zu: got %llu", i, (unsigned long long)seq);
    }
    tf_window_destroy(&w);
}

Test(window, requeue_ignored_when_pending_or_gone)
{
    tf_window_t *w = tf_window_new(8, 1 << 20);
    s_push_n(w, 3);
    //  Already pending: no second queue entry.
    tf_window_requeue(w, 1);
    cr_assert_eq(tf_window_pending(w), 3);
    //  Outside the window or acked: nothing happens.
    tf_window_requeue(w, 7);
    cr_assert_eq(tf_window_pending(w), 3);
    uint64_t s0 = s_lease(w, 0);
    cr_assert(tf_window_ack(w, s0));
    tf_window_requeue(w, s0);
    cr_assert_eq(tf_window_pending(w), 2);
    uint64_t seq;
    cr_assert(tf_window_pop(w, &seq));
    cr_assert_eq(seq, 1);
    cr_assert(tf_window_pop(w, &seq));
    cr_assert_eq(seq, 2);
    cr_assert_not(tf_window_pop(w, &seq));
    tf_window_destroy(&w);
}

Test(window, pop_then_requeue)
{
    //  The dispatcher pops an item, then cannot send it (e.g. out of
    //  memory) and hands it straight back: it must not be lost.
    tf_window_t *w = tf_window_new(8, 1 << 20);
    s_push_n(w, 3);
    uint64_t seq = UINT64_MAX;
    cr_assert(tf_window_pop(w, &seq));
    cr_assert_eq(seq, 0);
    cr_assert_eq(tf_window_pending(w), 2);
    tf_window_requeue(w, seq);
    cr_assert_eq(tf_window_pending(w), 3);
    cr_assert_eq(tf_window_get(w, 0)->state, TF_ITEM_PENDING);
    for (uint64_t i = 0; i < 3; i++) {
        cr_assert(tf_window_pop(w, &seq));
        cr_assert_eq(seq, i);
    }
    cr_assert_not(tf_window_pop(w, &seq));
    tf_window_destroy(&w);
}

Test(window, requeue_many_wraps_queue)
{
    //  Requeues in front of the queue, round after round, so that the queue
    //  ring wraps around both ways.
    tf_window_t *w = tf_window_new(4, 1 << 20);
    for (uint64_t round = 0; round < 10; round++) {
        uint64_t first = round * 4;
        s_push_n(w, 4);
        for (uint64_t k = 0; k < 4; k++)
            cr_assert_eq(s_lease(w, 0), first + k);
        cr_assert_eq(tf_window_pending(w), 0);
        //  Handed back last to first: the queue is in order again.
        for (uint64_t k = 4; k-- > 0;)
            tf_window_requeue(w, first + k);
        cr_assert_eq(tf_window_pending(w), 4);
        //  Requeuing a pending item again changes nothing.
        tf_window_requeue(w, first + 2);
        cr_assert_eq(tf_window_pending(w), 4);
        for (uint64_t k = 0; k < 4; k++) {
            uint64_t seq = UINT64_MAX;
            cr_assert(tf_window_pop(w, &seq));
            cr_assert_eq(seq, first + k, "round %llu: popped %llu", (unsigned long long)round,
                         (unsigned long long)seq);
            cr_assert(tf_window_ack(w, seq));
        }
        cr_assert_eq(tf_window_base(w), first + 4);
    }
    cr_assert_eq(tf_window_next(w), 40);
    tf_window_destroy(&w);
}

Test(window, ack_advances_base_over_contiguous_acks)
{
    tf_window_t *w = tf_window_new(8, 1 << 20);
    s_push_n(w, 6);
    size_t bytes = tf_window_bytes(w);
    cr_assert_eq(bytes, 6 * 6);
    for (int i = 0; i < 6; i++)
        s_lease(w, 0);
    cr_assert(tf_window_ack(w, 2));
    cr_assert(tf_window_ack(w, 3));
    cr_assert_eq(tf_window_base(w), 0);
    cr_assert_eq(tf_window_inflight(w), 6);
    cr_assert_eq(tf_window_bytes(w), bytes - 12);
    //  An acked item is no longer live.
    cr_assert_null(tf_window_get(w, 2));
    cr_assert_not(tf_window_ack(w, 2));
    cr_assert_eq(tf_window_bytes(w), bytes - 12);
    cr_assert(tf_window_ack(w, 1));
    cr_assert_eq(tf_window_base(w), 0);
    cr_assert(tf_window_ack(w, 0));
    cr_assert_eq(tf_window_base(w), 4);
    cr_assert_eq(tf_window_inflight(w), 2);
    cr_assert_not(tf_window_ack(w, 0)); //  below base
    cr_assert_not(tf_window_ack(w, 6)); //  not yet pushed
    cr_assert_not(tf_window_ack(w, UINT64_MAX));
    cr_assert(tf_window_ack(w, 5));
    cr_assert_eq(tf_window_base(w), 4);
    cr_assert(tf_window_ack(w, 4));
    cr_assert_eq(tf_window_base(w), 6);
    cr_assert_eq(tf_window_inflight(w), 0);
    cr_assert_eq(tf_window_bytes(w), 0);
    tf_window_destroy(&w);
}

Test(window, late_ack_of_pending_item)
{
    tf_window_t *w = tf_window_new(8, 1 << 20);
    s_push_n(w, 4);
    //  Item 2 was leased, requeued (worker lost), then the sink acks it.
    uint64_t seq;
    s_lease(w, 0);
    s_lease(w, 0);
    uint64_t two = s_lease(w, 0);
    cr_assert_eq(two, 2);
    tf_window_requeue(w, two);
    cr_assert_eq(tf_window_pending(w), 2);
    cr_assert(tf_window_ack(w, two));
    cr_assert_eq(tf_window_pending(w), 1);
    cr_assert(tf_window_pop(w, &seq));
    cr_assert_eq(seq, 3);
    cr_assert_not(tf_window_pop(w, &seq));
    //  A pending item that was never leased, acked in the middle of the queue.
    s_push_n(w, 3); //  4, 5, 6
    cr_assert(tf_window_ack(w, 5));
    cr_assert_eq(tf_window_pending(w), 2);
    cr_assert(tf_window_pop(w, &seq));
    cr_assert_eq(seq, 4);
    cr_assert(tf_window_pop(w, &seq));
    cr_assert_eq(seq, 6);
    cr_assert_not(tf_window_pop(w, &seq));
    tf_window_destroy(&w);
}

typedef struct {
    uint64_t seqs[64];
    size_t n;
    tf_window_t *w;
    bool requeue;
    bool ack;
} s_seen_t;

static void s_collect(void *arg, uint64_t seq, tf_slot_t *slot)
{
    s_seen_t *seen = arg;
    cr_assert_not_null(slot);
    cr_assert_lt(seen->n, 64);
    seen->seqs[seen->n++] = seq;
    if (seen->requeue)
        tf_window_requeue(seen->w, seq);
    if (seen->ack)
        tf_window_ack(seen->w, seq);
}

static void s_expect_seqs(const s_seen_t *seen, const uint64_t *expect, size_t n)
{
    cr_assert_eq(seen->n, n, "got %zu items, expected %zu", seen->n, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(seen->seqs[i], expect[i], "item %zu: %llu, expected %llu", i,
                     (unsigned long long)seen->seqs[i], (unsigned long long)expect[i]);
}

Test(window, each_filters_by_state_and_worker)
{
    tf_window_t *w = tf_window_new(16, 1 << 20);
    s_push_n(w, 10);
    //  0..5 leased to workers 0,1,0,1,0,1; 6,7 pending; 8 completed; 9 failed
    for (int i = 0; i < 6; i++)
        s_lease(w, i % 2);
    for (int i = 6; i < 10; i++)
        s_lease(w, 2);
    uint64_t seq;
    cr_assert_not(tf_window_pop(w, &seq));
    tf_window_requeue(w, 6);
    tf_window_requeue(w, 7);
    tf_window_get(w, 8)->state = TF_ITEM_COMPLETED;
    tf_window_get(w, 9)->state = TF_ITEM_FAILED;
    cr_assert(tf_window_ack(w, 4));

    s_seen_t seen = {.w = w};
    tf_window_each(w, TF_ITEM_LEASED, -1, s_collect, &seen);
    s_expect_seqs(&seen, (const uint64_t[]){0, 1, 2, 3, 5}, 5);

    seen.n = 0;
    tf_window_each(w, TF_ITEM_LEASED, 1, s_collect, &seen);
    s_expect_seqs(&seen, (const uint64_t[]){1, 3, 5}, 3);

    seen.n = 0;
    tf_window_each(w, TF_ITEM_LEASED, 0, s_collect, &seen);
    s_expect_seqs(&seen, (const uint64_t[]){0, 2}, 2);

    seen.n = 0;
    tf_window_each(w, TF_ITEM_LEASED, 7, s_collect, &seen);
    s_expect_seqs(&seen, NULL, 0);

    seen.n = 0;
    tf_window_each(w, TF_ITEM_PENDING, -1, s_collect, &seen);
    s_expect_seqs(&seen, (const uint64_t[]){6, 7}, 2);

    seen.n = 0;
    tf_window_each(w, TF_ITEM_COMPLETED, -1, s_collect, &seen);
    s_expect_seqs(&seen, (const uint64_t[]){8}, 1);

    seen.n = 0;
    tf_window_each(w, TF_ITEM_FAILED, -1, s_collect, &seen);
    s_expect_seqs(&seen, (const uint64_t[]){9}, 1);

    //  Acked items are never visited.
    seen.n = 0;
    tf_window_each(w, TF_ITEM_ACKED, -1, s_collect, &seen);
    s_expect_seqs(&seen, NULL, 0);

    //  The callback may requeue: worker 1's items go back to the queue.
    seen.n = 0;
    seen.requeue = true;
    tf_window_each(w, TF_ITEM_LEASED, 1, s_collect, &seen);
    s_expect_seqs(&seen, (const uint64_t[]){1, 3, 5}, 3);
    cr_assert_eq(tf_window_pending(w), 5);
    //  Each requeue goes to the front, so the last one visited pops first.
    const uint64_t order[] = {5, 3, 1, 7, 6};
    for (size_t i = 0; i < 5; i++) {
        cr_assert(tf_window_pop(w, &seq));
        cr_assert_eq(seq, order[i], "pop %zu: %llu", i, (unsigned long long)seq);
    }

    //  ... or ack: everything leased to worker 0 is acked and base moves.
    seen.n = 0;
    seen.requeue = false;
    seen.ack = true;
    tf_window_each(w, TF_ITEM_LEASED, 0, s_collect, &seen);
    s_expect_seqs(&seen, (const uint64_t[]){0, 2}, 2);
    cr_assert_eq(tf_window_base(w), 1);
    tf_window_destroy(&w);
}

Test(window, push_done_for_resume)
{
    tf_window_t *w = tf_window_new(4, 100);
    //  Items 0..2 already committed by a previous run: base follows.
    for (uint64_t s = 0; s < 3; s++)
        cr_assert_eq(tf_window_push_done(w, s), 0);
    cr_assert_eq(tf_window_next(w), 3);
    cr_assert_eq(tf_window_base(w), 3);
    cr_assert_eq(tf_window_inflight(w), 0);
    cr_assert_eq(tf_window_pending(w), 0);
    cr_assert_null(tf_window_get(w, 1));
    //  A done item behind a live one waits for it.
    s_push_n(w, 1); //  3
    cr_assert_eq(tf_window_push_done(w, 4), 0);
    cr_assert_eq(tf_window_base(w), 3);
    cr_assert_eq(tf_window_inflight(w), 2);
    cr_assert_null(tf_window_get(w, 4));
    cr_assert_eq(tf_window_pending(w), 1);
    cr_assert_not(tf_window_ack(w, 4));
    uint64_t seq;
    cr_assert(tf_window_pop(w, &seq));
    cr_assert_eq(seq, 3);
    cr_assert_not(tf_window_pop(w, &seq));
    cr_assert(tf_window_ack(w, 3));
    cr_assert_eq(tf_window_base(w), 5);
    cr_assert_eq(tf_window_inflight(w), 0);
    //  push_done respects the capacity too.
    s_push_n(w, 4);
    cr_assert_eq(tf_window_push_done(w, 9), -1);
    tf_window_destroy(&w);
}

Test(window, start_at)
{
    tf_window_t *w = tf_window_new(4, 100);
    tf_window_start_at(w, 1000);
    cr_assert_eq(tf_window_base(w), 1000);
    cr_assert_eq(tf_window_next(w), 1000);
    cr_assert_eq(tf_window_push(w, 0, NULL, 0), -1);
    s_push_n(w, 4);
    cr_assert_eq(tf_window_next(w), 1004);
    cr_assert_not(tf_window_has_room(w, 0));
    //  Ignored on a window that is not empty.
    tf_window_start_at(w, 5);
    cr_assert_eq(tf_window_base(w), 1000);
    cr_assert_eq(tf_window_next(w), 1004);
    uint64_t seq;
    cr_assert(tf_window_pop(w, &seq));
    cr_assert_eq(seq, 1000);
    for (uint64_t s = 1000; s < 1004; s++)
        cr_assert(tf_window_ack(w, s));
    cr_assert_eq(tf_window_base(w), 1004);
    //  Empty again: may move.
    tf_window_start_at(w, 2000);
    cr_assert_eq(tf_window_base(w), 2000);
    cr_assert_eq(tf_window_next(w), 2000);
    cr_assert_eq(tf_window_pending(w), 0);
    cr_assert_not(tf_window_pop(w, &seq));
    tf_window_destroy(&w);
}

//  Random push / lease / requeue / ack against a simple model of the
//  window: dispatch order, base, bytes, room and ack results must match.
static void s_random_against_model(uint32_t cap)
{
    enum { CAP_MAX = 16, BUDGET = 64, N = 3000 };
    cr_assert_leq(cap, CAP_MAX);
    tf_window_t *w = tf_window_new(cap, BUDGET);
    uint8_t state[N]; //  0 not pushed, 1 queued, 2 leased, 3 acked
    uint32_t len[N];
    uint64_t queue[CAP_MAX]; //  model dispatch queue, front first
    size_t qlen = 0;
    memset(state, 0, sizeof state);
    uint64_t rng = 12345;
    uint64_t next = 0;
    for (int step = 0; step < 40000; step++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t r = (uint32_t)(rng >> 33);
        uint64_t base = tf_window_base(w);
        size_t bytes = tf_window_bytes(w);
        switch (r % 4) {
        case 0: { //  push
            uint32_t n = (r >> 8) % 20;
            bool room = next - base < cap && (bytes == 0 || bytes + n <= BUDGET);
            cr_assert_eq(tf_window_has_room(w, n), room);
            if (next >= N || !room)
                break;
            uint8_t *d = n ? malloc(n) : NULL;
            if (n)
                memset(d, 'x', n);
            cr_assert_eq(tf_window_push(w, next, d, n), 0);
            state[next] = 1;
            len[next] = n;
            queue[qlen++] = next;
            next++;
            break;
        }
        case 1: { //  pop + lease
            uint64_t seq = UINT64_MAX;
            cr_assert_eq(tf_window_pop(w, &seq), qlen > 0);
            if (qlen == 0)
                break;
            cr_assert_eq(seq, queue[0], "popped %llu, expected %llu", (unsigned long long)seq,
                         (unsigned long long)queue[0]);
            memmove(queue, queue + 1, --qlen * sizeof queue[0]);
            state[seq] = 2;
            cr_assert_eq(tf_window_get(w, seq)->state, TF_ITEM_LEASED);
            break;
        }
        case 2: { //  requeue a random item in flight (only leased ones move)
            if (next == base)
                break;
            uint64_t seq = base + (r >> 8) % (next - base);
            tf_window_requeue(w, seq);
            if (state[seq] == 2) {
                state[seq] = 1;
                memmove(queue + 1, queue, qlen++ * sizeof queue[0]);
                queue[0] = seq;
            }
            break;
        }
        default: { //  ack a random item in flight (any state)
            if (next == base)
                break;
            uint64_t seq = base + (r >> 8) % (next - base);
            cr_assert_eq(tf_window_ack(w, seq), state[seq] == 1 || state[seq] == 2);
            if (state[seq] == 1) {
                size_t k = 0;
                while (queue[k] != seq)
                    k++;
                memmove(queue + k, queue + k + 1, (--qlen - k) * sizeof queue[0]);
            }
            state[seq] = 3;
            break;
        }
        }
        //  Check the model.
        uint64_t lo = 0;
        while (lo < next && state[lo] == 3)
            lo++;
        cr_assert_eq(tf_window_base(w), lo);
        cr_assert_eq(tf_window_next(w), next);
        size_t live = 0;
        for (uint64_t s = lo; s < next; s++)
            if (state[s] == 1 || state[s] == 2)
                live += len[s];
        cr_assert_eq(tf_window_bytes(w), live);
        cr_assert_eq(tf_window_pending(w), qlen);
    }
    cr_assert_gt(next, 1000, "the random walk made progress");
    tf_window_destroy(&w);
}

Test(window, random_against_model)
{
    //  Ring sizes are powers of two: a capacity that is one, and ones that
    //  are not, wrap the same way.
    static const uint32_t caps[] = {8, 5, 1, 13};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
        s_random_against_model(caps[i]);
}

Test(window, ring_sizes_are_powers_of_two)
{
    static const uint32_t in[] = {
        1, 2, 3, 5, 8, 32767, 32768, 32769, 1u << 24, 1u << 31, (1u << 31) + 1, UINT32_MAX};
    static const uint32_t out[] = {1, 2, 4, 8, 8, 32768, 32768, 65536, 1u << 24, 1u << 31, 0, 0};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
        cr_assert_eq(tf_pow2_at_least(in[i]), out[i], "%u", in[i]);
    //  No ring for a capacity beyond 2^31 (it once looped forever).
    cr_assert_null(tf_window_new((1u << 31) + 1, 100));
}
