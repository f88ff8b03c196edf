/*  test_reorder.c -- the sink's reorder buffer and duplicate filter. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf_reorder.h"

//  Records what was written.
typedef struct {
    uint64_t seqs[4096];
    char text[4096][24];
    size_t n;
    int fail_after; //  write fails when n reaches this (-1 never)
} s_out_t;

static int s_write(void *arg, uint64_t seq, const uint8_t *data, size_t len)
{
    s_out_t *out = arg;
    if (out->fail_after >= 0 && out->n >= (size_t)out->fail_after)
        return -1;
    cr_assert_lt(out->n, 4096);
    cr_assert_lt(len, sizeof out->text[0]);
    out->seqs[out->n] = seq;
    if (len)
        memcpy(out->text[out->n], data, len);
    out->text[out->n][len] = '\0';
    out->n++;
    return 0;
}

static s_out_t *s_out_new(void)
{
    s_out_t *out = calloc(1, sizeof *out);
    cr_assert_not_null(out);
    out->fail_after = -1;
    return out;
}

static tf_ro_result_t s_put(tf_reorder_t *ro, uint64_t seq, s_out_t *out)
{
    char text[24];
    int n = snprintf(text, sizeof text, "r%llu", (unsigned long long)seq);
    return tf_reorder_put(ro, seq, (const uint8_t *)text, (size_t)n, false, s_write, out);
}

static tf_ro_result_t s_skip(tf_reorder_t *ro, uint64_t seq, s_out_t *out)
{
    return tf_reorder_put(ro, seq, NULL, 0, true, s_write, out);
}

static void s_expect_out(const s_out_t *out, const uint64_t *seqs, size_t n)
{
    cr_assert_eq(out->n, n, "wrote %zu results, expected %zu", out->n, n);
    for (size_t i = 0; i < n; i++) {
        char text[24];
        snprintf(text, sizeof text, "r%llu", (unsigned long long)seqs[i]);
        cr_assert_eq(out->seqs[i], seqs[i], "result %zu: seq %llu, expected %llu", i,
                     (unsigned long long)out->seqs[i], (unsigned long long)seqs[i]);
        cr_assert_str_eq(out->text[i], text);
    }
}

Test(reorder, new_and_destroy)
{
    cr_assert_null(tf_reorder_new(0, true));
    cr_assert_null(tf_reorder_new((1u << 31) + 1, true)); //  no such ring (once a hang)
    tf_reorder_t *ro = tf_reorder_new(4, true);
    cr_assert_not_null(ro);
    cr_assert_eq(tf_reorder_capacity(ro), 4); //  the window asked for, not the ring
    cr_assert_eq(tf_reorder_next(ro), 0);
    cr_assert_eq(tf_reorder_held(ro), 0);
    cr_assert_eq(tf_reorder_held_bytes(ro), 0);
    cr_assert_not(tf_reorder_seen(ro, 0));
    //  Destroy with results still held frees them (checked by ASan).
    cr_assert_eq(tf_reorder_put(ro, 2, (const uint8_t *)"abc", 3, false, NULL, NULL),
                 TF_RO_ACCEPTED);
    tf_reorder_destroy(&ro);
    cr_assert_null(ro);
    tf_reorder_destroy(&ro);
    tf_reorder_destroy(NULL);
}

Test(reorder, ordered_release)
{
    tf_reorder_t *ro = tf_reorder_new(8, true);
    s_out_t *out = s_out_new();
    cr_assert_eq(s_put(ro, 2, out), TF_RO_ACCEPTED);
    cr_assert_eq(s_put(ro, 1, out), TF_RO_ACCEPTED);
    cr_assert_eq(out->n, 0, "ordered mode writes only on drain");
    cr_assert_eq(tf_reorder_held(ro), 2);
    cr_assert_eq(tf_reorder_held_bytes(ro), 4);
    cr_assert_eq(tf_reorder_drain(ro, s_write, out), 0);
    cr_assert_eq(out->n, 0);
    cr_assert_eq(s_put(ro, 0, out), TF_RO_ACCEPTED);
    cr_assert_eq(tf_reorder_drain(ro, s_write, out), 3);
    s_expect_out(out, (const uint64_t[]){0, 1, 2}, 3);
    cr_assert_eq(tf_reorder_next(ro), 3);
    cr_assert_eq(tf_reorder_held(ro), 0);
    cr_assert_eq(tf_reorder_held_bytes(ro), 0);
    //  A gap stops the release.
    cr_assert_eq(s_put(ro, 3, out), TF_RO_ACCEPTED);
    cr_assert_eq(s_put(ro, 5, out), TF_RO_ACCEPTED);
    cr_assert_eq(tf_reorder_drain(ro, s_write, out), 1);
    cr_assert_eq(tf_reorder_next(ro), 4);
    cr_assert_eq(tf_reorder_held(ro), 1);
    cr_assert_eq(s_put(ro, 4, out), TF_RO_ACCEPTED);
    cr_assert_eq(tf_reorder_drain(ro, s_write, out), 2);
    s_expect_out(out, (const uint64_t[]){0, 1, 2, 3, 4, 5}, 6);
    cr_assert_eq(tf_reorder_drain(ro, s_write, out), 0);
    free(out);
    tf_reorder_destroy(&ro);
}

Test(reorder, empty_result)
{
    tf_reorder_t *ro = tf_reorder_new(4, true);
    s_out_t *out = s_out_new();
    cr_assert_eq(tf_reorder_put(ro, 0, NULL, 0, false, NULL, NULL), TF_RO_ACCEPTED);
    cr_assert_eq(tf_reorder_held(ro), 1);
    cr_assert_eq(tf_reorder_held_bytes(ro), 0);
    cr_assert_eq(tf_reorder_drain(ro, s_write, out), 1);
    cr_assert_eq(out->n, 1);
    cr_assert_eq(out->seqs[0], 0);
    cr_assert_str_eq(out->text[0], "");
    free(out);
    tf_reorder_destroy(&ro);
}

Test(reorder, duplicates)
{
    tf_reorder_t *ro = tf_reorder_new(8, true);
    s_out_t *out = s_out_new();
    cr_assert_eq(s_put(ro, 0, out), TF_RO_ACCEPTED);
    cr_assert_eq(s_put(ro, 3, out), TF_RO_ACCEPTED);
    //  Inside the window, waiting: duplicate, nothing changes.
    cr_assert_eq(s_put(ro, 3, out), TF_RO_DUPLICATE);
    cr_assert_eq(tf_reorder_put(ro, 3, NULL, 0, true, NULL, NULL), TF_RO_DUPLICATE);
    cr_assert_eq(tf_reorder_held(ro), 2);
    cr_assert_eq(tf_reorder_held_bytes(ro), 4);
    cr_assert(tf_reorder_seen(ro, 3));
    cr_assert_not(tf_reorder_seen(ro, 2));
    cr_assert_eq(tf_reorder_drain(ro, s_write, out), 1);
    //  Already released (before next): duplicate.
    cr_assert(tf_reorder_seen(ro, 0));
    cr_assert_eq(s_put(ro, 0, out), TF_RO_DUPLICATE);
    cr_assert_eq(s_skip(ro, 0, out), TF_RO_DUPLICATE);
    cr_assert_eq(s_put(ro, 1, out), TF_RO_ACCEPTED);
    cr_assert_eq(s_put(ro, 2, out), TF_RO_ACCEPTED);
    cr_assert_eq(tf_reorder_drain(ro, s_write, out), 3);
    for (uint64_t s = 0; s < 4; s++) {
        cr_assert(tf_reorder_seen(ro, s));
        cr_assert_eq(s_put(ro, s, out), TF_RO_DUPLICATE);
    }
    s_expect_out(out, (const uint64_t[]){0, 1, 2, 3}, 4);
    free(out);
    tf_reorder_destroy(&ro);
}

Test(reorder, out_of_window)
{
    tf_reorder_t *ro = tf_reorder_new(4, true);
    s_out_t *out = s_out_new();
    cr_assert_eq(s_put(ro, 4, out), TF_RO_OUT_OF_WINDOW);
    cr_assert_eq(s_skip(ro, 4, out), TF_RO_OUT_OF_WINDOW);
    cr_assert_eq(s_put(ro, UINT64_MAX, out), TF_RO_OUT_OF_WINDOW);
    cr_assert_not(tf_reorder_seen(ro, 4));
    cr_assert_eq(tf_reorder_held(ro), 0);
    cr_assert_eq(s_put(ro, 3, out), TF_RO_ACCEPTED);
    cr_assert_eq(s_put(ro, 0, out), TF_RO_ACCEPTED);
    cr_assert_eq(tf_reorder_drain(ro, s_write, out), 1);
    //  The window moved by one: 4 fits now, 5 does not.
    cr_assert_eq(s_put(ro, 5, out), TF_RO_OUT_OF_WINDOW);
    cr_assert_eq(s_put(ro, 4, out), TF_RO_ACCEPTED);
    cr_assert_eq(tf_reorder_held(ro), 2);
    free(out);
    tf_reorder_destroy(&ro);
}

Test(reorder, skips)
{
    tf_reorder_t *ro = tf_reorder_new(8, true);
    s_out_t *out = s_out_new();
    cr_assert_eq(s_skip(ro, 1, out), TF_RO_ACCEPTED);
    cr_assert_eq(s_skip(ro, 2, out), TF_RO_ACCEPTED);
    cr_assert_eq(s_put(ro, 3, out), TF_RO_ACCEPTED);
    cr_assert_eq(tf_reorder_held(ro), 1, "skips hold nothing");
    cr_assert(tf_reorder_seen(ro, 1));
    cr_assert_eq(s_put(ro, 1, out), TF_RO_DUPLICATE, "a result after its skip is a duplicate");
    cr_assert_eq(tf_reorder_drain(ro, s_write, out), 0);
    cr_assert_eq(s_skip(ro, 0, out), TF_RO_ACCEPTED);
    //  Skips count as released but write nothing.
    cr_assert_eq(tf_reorder_drain(ro, s_write, out), 4);
    s_expect_out(out, (const uint64_t[]){3}, 1);
    cr_assert_eq(tf_reorder_next(ro), 4);
    //  A skip at the end of the input.
    cr_assert_eq(s_skip(ro, 4, out), TF_RO_ACCEPTED);
    cr_assert_eq(tf_reorder_drain(ro, s_write, out), 1);
    cr_assert_eq(tf_reorder_next(ro), 5);
    free(out);
    tf_reorder_destroy(&ro);
}

//  What the sink's journal needs: inside the write callback of a result,
//  the count of released skips is exactly the failed items below it.
typedef struct {
    tf_reorder_t *ro;
    uint64_t skips_before[16];
} s_skipcount_t;

static int s_write_counting(void *arg, uint64_t seq, const uint8_t *data, size_t len)
{
    (void)data, (void)len;
    s_skipcount_t *sc = arg;
    cr_assert_lt(seq, 16);
    sc->skips_before[seq] = tf_reorder_skips_released(sc->ro);
    return 0;
}

Test(reorder, skips_released_counts_failed_items_below)
{
    s_skipcount_t sc = {tf_reorder_new(16, true), {0}};
    cr_assert_eq(tf_reorder_skips_released(sc.ro), 0);
    //  0 ok, 1 skip, 2 skip, 3 ok, 4 skip, 5 ok, 6 skip (offered out of order)
    const int skip[] = {0, 1, 1, 0, 1, 0, 1};
    const int order[] = {6, 5, 3, 1, 4, 2, 0};
    for (int k = 0; k < 7; k++) {
        int seq = order[k];
        cr_assert_eq(tf_reorder_put(sc.ro, (uint64_t)seq, (const uint8_t *)"r", 1, skip[seq],
                                    s_write_counting, &sc),
                     TF_RO_ACCEPTED);
        cr_assert_eq(tf_reorder_skips_released(sc.ro), 0, "nothing released before drain");
    }
    cr_assert_eq(tf_reorder_drain(sc.ro, s_write_counting, &sc), 7);
    cr_assert_eq(sc.skips_before[0], 0);
    cr_assert_eq(sc.skips_before[3], 2);
    cr_assert_eq(sc.skips_before[5], 3);
    cr_assert_eq(tf_reorder_skips_released(sc.ro), 4, "the trailing skip too");
    tf_reorder_destroy(&sc.ro);
}

Test(reorder, drain_write_error_keeps_results)
{
    tf_reorder_t *ro = tf_reorder_new(8, true);
    s_out_t *out = s_out_new();
    for (uint64_t s = 0; s < 4; s++)
        cr_assert_eq(s_put(ro, s, out), TF_RO_ACCEPTED);
    out->fail_after = 2;
    cr_assert_eq(tf_reorder_drain(ro, s_write, out), -1);
    cr_assert_eq(tf_reorder_next(ro), 2);
    cr_assert_eq(tf_reorder_held(ro), 2);
    cr_assert_eq(tf_reorder_held_bytes(ro), 4);
    //  The failed one is offered again on the next drain.
    out->fail_after = -1;
    cr_assert_eq(tf_reorder_drain(ro, s_write, out), 2);
    s_expect_out(out, (const uint64_t[]){0, 1, 2, 3}, 4);
    free(out);
    tf_reorder_destroy(&ro);
}

Test(reorder, unordered_writes_at_once)
{
    tf_reorder_t *ro = tf_reorder_new(4, false);
    s_out_t *out = s_out_new();
    cr_assert_eq(s_put(ro, 2, out), TF_RO_ACCEPTED);
    s_expect_out(out, (const uint64_t[]){2}, 1);
    cr_assert_eq(tf_reorder_held(ro), 0);
    cr_assert_eq(tf_reorder_next(ro), 0);
    //  Duplicates are still detected, and not written.
    cr_assert_eq(s_put(ro, 2, out), TF_RO_DUPLICATE);
    cr_assert(tf_reorder_seen(ro, 2));
    cr_assert_eq(s_put(ro, 0, out), TF_RO_ACCEPTED);
    cr_assert_eq(tf_reorder_next(ro), 1, "next slides over what was written");
    cr_assert_eq(s_put(ro, 0, out), TF_RO_DUPLICATE);
    cr_assert_eq(s_skip(ro, 1, out), TF_RO_ACCEPTED);
    cr_assert_eq(tf_reorder_next(ro), 3);
    cr_assert_eq(s_put(ro, 1, out), TF_RO_DUPLICATE);
    cr_assert_eq(s_put(ro, 2, out), TF_RO_DUPLICATE);
    //  The window is still bounded: next is 3, capacity 4.
    cr_assert_eq(s_put(ro, 7, out), TF_RO_OUT_OF_WINDOW);
    cr_assert_eq(s_put(ro, 6, out), TF_RO_ACCEPTED);
    cr_assert_eq(tf_reorder_drain(ro, s_write, out), 0);
    s_expect_out(out, (const uint64_t[]){2, 0, 6}, 3);
    cr_assert_eq(tf_reorder_held(ro), 0);
    cr_assert_eq(tf_reorder_held_bytes(ro), 0);
    free(out);
    tf_reorder_destroy(&ro);
}

Test(reorder, unordered_write_error)
{
    tf_reorder_t *ro = tf_reorder_new(4, false);
    s_out_t *out = s_out_new();
    out->fail_after = 0;
    cr_assert_eq(s_put(ro, 0, out), TF_RO_NOMEM);
    //  Not recorded as seen: a retry may deliver it.
    cr_assert_not(tf_reorder_seen(ro, 0));
    out->fail_after = -1;
    cr_assert_eq(s_put(ro, 0, out), TF_RO_ACCEPTED);
    s_expect_out(out, (const uint64_t[]){0}, 1);
    free(out);
    tf_reorder_destroy(&ro);
}

Test(reorder, start_at)
{
    tf_reorder_t *ro = tf_reorder_new(4, true);
    s_out_t *out = s_out_new();
    tf_reorder_start_at(ro, 100);
    cr_assert_eq(tf_reorder_next(ro), 100);
    cr_assert(tf_reorder_seen(ro, 99));
    cr_assert_eq(s_put(ro, 99, out), TF_RO_DUPLICATE);
    cr_assert_eq(s_put(ro, 104, out), TF_RO_OUT_OF_WINDOW);
    cr_assert_eq(s_put(ro, 101, out), TF_RO_ACCEPTED);
    //  Ignored while results are held.
    tf_reorder_start_at(ro, 0);
    cr_assert_eq(tf_reorder_next(ro), 100);
    cr_assert_eq(s_put(ro, 100, out), TF_RO_ACCEPTED);
    cr_assert_eq(tf_reorder_drain(ro, s_write, out), 2);
    s_expect_out(out, (const uint64_t[]){100, 101}, 2);
    free(out);
    tf_reorder_destroy(&ro);
}

//  --------------------------------------------------------------------------
//  Property test: results arrive in a random order, some several times,
//  some items fail (skip), some offers are beyond the window. Compared with
//  a sequential reference: every offer's verdict, and the output.

static uint64_t s_rng;

static uint32_t s_rand(void)
{
    s_rng = s_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(s_rng >> 33);
}

static void s_property(bool ordered, uint32_t cap, uint64_t seed)
{
    enum { N = 3000 };
    s_rng = seed;
    tf_reorder_t *ro = tf_reorder_new(cap, ordered);
    cr_assert_not_null(ro);
    s_out_t *out = s_out_new();
    bool *skip = calloc(N, sizeof *skip);
    bool *seen = calloc(N, sizeof *seen);
    uint64_t *order = calloc(N, sizeof *order);
    cr_assert(skip && seen && order);
    for (uint64_t s = 0; s < N; s++)
        skip[s] = s_rand() % 10 == 0;
    //  Random permutation, delivered through a window: a result may only be
    //  produced for an item the sink's window can take (like the ventilator
    //  would guarantee), plus stray duplicates and out-of-window offers.
    size_t delivered = 0, dups = 0, oows = 0;
    uint64_t next_ref = 0; //  reference: first seq not yet seen
    uint64_t base_ref = 0; //  reference: first seq not released (window start)
    while (next_ref < N) {
        uint64_t hi = base_ref + cap < N ? base_ref + cap : N;
        uint64_t seq;
        uint32_t what = s_rand() % 10;
        if (what == 0 && next_ref > 0)
            seq = s_rand() % next_ref; //  stale duplicate
        else if (what == 1)
            seq = base_ref + cap + s_rand() % 8; //  beyond the window
        else if (hi > base_ref)
            seq = base_ref + s_rand() % (hi - base_ref);
        else
            continue;
        tf_ro_result_t expect;
        if (seq < base_ref)
            expect = TF_RO_DUPLICATE;
        else if (seq - base_ref >= cap)
            expect = TF_RO_OUT_OF_WINDOW;
        else if (seq >= N)
            continue; //  past the end of the input: never produced
        else
            expect = seen[seq] ? TF_RO_DUPLICATE : TF_RO_ACCEPTED;
        bool is_skip = seq < N && skip[seq];
        tf_ro_result_t got = is_skip ? s_skip(ro, seq, out) : s_put(ro, seq, out);
        cr_assert_eq(got, expect, "seq %llu: got %d, expected %d (window %llu)",
                     (unsigned long long)seq, got, expect, (unsigned long long)base_ref);
        if (got == TF_RO_ACCEPTED) {
            seen[seq] = true;
            if (!ordered && !is_skip)
                order[delivered] = seq;
            delivered += !is_skip;
        }
        dups += got == TF_RO_DUPLICATE;
        oows += got == TF_RO_OUT_OF_WINDOW;
        while (next_ref < N && seen[next_ref])
            next_ref++;
        //  Ordered mode releases on drain only; unordered slides at once.
        if (!ordered || s_rand() % 3 == 0) {
            int64_t released = tf_reorder_drain(ro, s_write, out);
            cr_assert_eq(released, ordered ? (int64_t)(next_ref - base_ref) : 0);
            base_ref = next_ref;
        }
        cr_assert_eq(tf_reorder_next(ro), base_ref);
    }
    if (ordered)
        cr_assert_geq(tf_reorder_drain(ro, s_write, out), 0);
    cr_assert_eq(tf_reorder_next(ro), N);
    cr_assert_eq(tf_reorder_held(ro), 0);
    cr_assert_eq(tf_reorder_held_bytes(ro), 0);
    //  Expected output: every non-skipped seq exactly once, in input order
    //  (ordered) or in arrival order (unordered).
    size_t k = 0;
    for (uint64_t s = 0; s < N; s++)
        if (!skip[s]) {
            if (ordered)
                order[k] = s;
            k++;
        }
    cr_assert_eq(k, delivered);
    s_expect_out(out, order, k);
    cr_assert_gt(dups, 100, "the run offered duplicates");
    cr_assert_gt(oows, 10, "the run offered out-of-window results");
    free(skip);
    free(seen);
    free(order);
    free(out);
    tf_reorder_destroy(&ro);
}

Test(reorder, property_ordered)
{
    s_property(true, 16, 1);
    s_property(true, 1, 2);
    s_property(true, 3, 3);
    s_property(true, 128, 4);
}

Test(reorder, property_unordered)
{
    s_property(false, 16, 5);
    s_property(false, 1, 6);
    s_property(false, 3, 7);
    s_property(false, 128, 8);
}

/*  Write-through (what the sink uses): the next result in order goes out
    from put itself, without waiting for drain; later ones still wait. */
Test(reorder, write_through)
{
    tf_reorder_t *ro = tf_reorder_new(8, true);
    cr_assert_not_null(ro);
    tf_reorder_set_write_through(ro, true);
    s_out_t *out = s_out_new();
    cr_assert_eq(tf_reorder_put(ro, 1, (const uint8_t *)"b", 1, false, s_write, out),
                 TF_RO_ACCEPTED);
    cr_assert_eq(tf_reorder_held(ro), 1);
    cr_assert_eq(tf_reorder_put(ro, 0, (const uint8_t *)"a", 1, false, s_write, out),
                 TF_RO_ACCEPTED);
    cr_assert_eq(tf_reorder_next(ro), 1); //  0 written by put
    cr_assert_eq(tf_reorder_drain(ro, s_write, out), 1);
    cr_assert_eq(tf_reorder_next(ro), 2);
    cr_assert_eq(tf_reorder_put(ro, 0, (const uint8_t *)"a", 1, false, s_write, out),
                 TF_RO_DUPLICATE);
    cr_assert_eq(out->n, 2);
    cr_assert_str_eq(out->text[0], "a");
    cr_assert_str_eq(out->text[1], "b");
    free(out);
    tf_reorder_destroy(&ro);
}
