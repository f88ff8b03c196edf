/*  test_stats.c -- latency histogram and progress line. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf_stats.h"

//  The histogram answers within its bucket resolution (about 5%).
static void s_expect_near(uint64_t got, uint64_t want, const char *what)
{
    double lo = (double)want * 0.95 - 1, hi = (double)want * 1.05 + 1;
    cr_assert((double)got >= lo && (double)got <= hi, "%s: %llu, expected %llu +- 5%%", what,
              (unsigned long long)got, (unsigned long long)want);
}

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

//  Exact percentile by the same rank rule (nearest rank).
static uint64_t s_exact(const uint64_t *sorted, size_t n, double p)
{
    size_t rank = (size_t)ceil(p / 100.0 * (double)n);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

Test(stats, empty_histogram)
{
    tf_latency_t lat;
    memset(&lat, 0xab, sizeof lat);
    tf_latency_init(&lat);
    cr_assert_eq(lat.count, 0);
    cr_assert_eq(lat.sum_us, 0);
    cr_assert_eq(lat.max_us, 0);
    cr_assert_eq(tf_latency_percentile(&lat, 0), 0);
    cr_assert_eq(tf_latency_percentile(&lat, 50), 0);
    cr_assert_eq(tf_latency_percentile(&lat, 100), 0);
}

Test(stats, single_value)
{
    const uint64_t values[] = {0, 1, 2, 7, 1000, 123456, 3600000000ull};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        tf_latency_t lat;
        tf_latency_init(&lat);
        tf_latency_add(&lat, values[i]);
        cr_assert_eq(lat.count, 1);
        cr_assert_eq(lat.sum_us, values[i]);
        cr_assert_eq(lat.max_us, values[i]);
        //  Capped by the maximum seen, a single value is exact.
        for (double p = 0; p <= 100; p += 25)
            cr_assert_eq(tf_latency_percentile(&lat, p), values[i], "value %llu, p%.0f: %llu",
                         (unsigned long long)values[i], p,
                         (unsigned long long)tf_latency_percentile(&lat, p));
    }
}

Test(stats, uniform_distribution)
{
    enum { N = 10000 };
    tf_latency_t lat;
    tf_latency_init(&lat);
    for (uint64_t us = 1; us <= N; us++)
        tf_latency_add(&lat, us);
    cr_assert_eq(lat.count, N);
    cr_assert_eq(lat.sum_us, (uint64_t)N * (N + 1) / 2);
    cr_assert_eq(lat.max_us, N);
    s_expect_near(tf_latency_percentile(&lat, 50), 5000, "p50");
    s_expect_near(tf_latency_percentile(&lat, 90), 9000, "p90");
    s_expect_near(tf_latency_percentile(&lat, 99), 9900, "p99");
    s_expect_near(tf_latency_percentile(&lat, 10), 1000, "p10");
    cr_assert_eq(tf_latency_percentile(&lat, 100), N);
    cr_assert_eq(tf_latency_percentile(&lat, 0), 1);
    //  Never below the true value: the answer is a bucket's upper bound.
    cr_assert_geq(tf_latency_percentile(&lat, 50), 5000);
    //  Monotonic in p.
    uint64_t prev = 0;
    for (double p = 0; p <= 100; p += 0.5) {
        uint64_t v = tf_latency_percentile(&lat, p);
        cr_assert_geq(v, prev, "p%.1f = %llu < %llu", p, (unsigned long long)v,
                      (unsigned long long)prev);
        prev = v;
    }
}

Test(stats, bimodal_distribution)
{
    //  90 fast items at 100 us, 10 slow ones at 1 s.
    tf_latency_t lat;
    tf_latency_init(&lat);
    for (int i = 0; i < 90; i++)
        tf_latency_add(&lat, 100);
    for (int i = 0; i < 10; i++)
        tf_latency_add(&lat, 1000000);
    s_expect_near(tf_latency_percentile(&lat, 50), 100, "p50");
    s_expect_near(tf_latency_percentile(&lat, 90), 100, "p90");
    s_expect_near(tf_latency_percentile(&lat, 91), 1000000, "p91");
    cr_assert_eq(tf_latency_percentile(&lat, 99), 1000000);
    cr_assert_eq(lat.sum_us, 90 * 100 + 10 * 1000000);
}

Test(stats, random_distribution_against_exact)
{
    //  Log-uniform random latencies from 1 us to 100 s, against the exact
    //  nearest-rank percentile of the sorted sample.
    enum { N = 20000 };
    uint64_t *v = malloc(N * sizeof *v);
    cr_assert_not_null(v);
    tf_latency_t lat;
    tf_latency_init(&lat);
    uint64_t rng = 42;
    for (size_t i = 0; i < N; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(rng >> 11) / 9007199254740992.0;
        v[i] = (uint64_t)exp(u * log(1e8));
        tf_latency_add(&lat, v[i]);
    }
    qsort(v, N, sizeof *v, s_cmp_u64);
    const double ps[] = {1, 5, 25, 50, 75, 90, 95, 99, 99.9, 100};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        char what[32];
        snprintf(what, sizeof what, "p%g", ps[i]);
        s_expect_near(tf_latency_percentile(&lat, ps[i]), s_exact(v, N, ps[i]), what);
    }
    cr_assert_eq(tf_latency_percentile(&lat, 100), v[N - 1]);
    free(v);
}

Test(stats, values_beyond_the_last_bucket)
{
    //  Eleven days: past the range the buckets cover; the answer must not
    //  come out smaller than every value recorded.
    const uint64_t big = 1000000000000ull;
    tf_latency_t lat;
    tf_latency_init(&lat);
    tf_latency_add(&lat, big);
    tf_latency_add(&lat, big + 5);
    cr_assert_eq(tf_latency_percentile(&lat, 50), big + 5);
    cr_assert_geq(tf_latency_percentile(&lat, 50), big);
    tf_latency_add(&lat, 10);
    cr_assert_eq(tf_latency_percentile(&lat, 100), big + 5);
    s_expect_near(tf_latency_percentile(&lat, 10), 10, "p10");
}

//  --------------------------------------------------------------------------
//  Progress line

typedef struct {
    const char *name;
    uint64_t done, total;
    bool total_known;
    uint64_t failed;
    uint32_t workers;
    int64_t elapsed_ms;
    int width;
    const char *want;
} s_prog_t;

static const s_prog_t s_prog[] = {
    {"half way", 50, 100, true, 0, 4, 10000, 10,
     "[#####.....] 50/100  50% 5.0/s ETA 10s failed 0 workers 4"},
    {"failures count as progress", 40, 100, true, 10, 2, 10000, 10,
     "[#####.....] 50/100  50% 5.0/s ETA 10s failed 10 workers 2"},
    {"minutes", 10, 1010, true, 0, 1, 2000, 4,
     "[....] 10/1010   1% 5.0/s ETA 3m20s failed 0 workers 1"},
    {"hours", 10, 100010, true, 0, 1, 2000, 4,
     "[....] 10/100010   0% 5.0/s ETA 5h33m failed 0 workers 1"},
    {"done", 100, 100, true, 0, 8, 4000, 5,
     "[#####] 100/100 100% 25.0/s ETA 0s failed 0 workers 8"},
    {"more than the total", 120, 100, true, 0, 8, 4000, 5,
     "[#####] 120/100 100% 30.0/s ETA 0s failed 0 workers 8"},
    {"nothing done yet", 0, 100, true, 0, 3, 5000, 3,
     "[...] 0/100   0% 0.0/s ETA ? failed 0 workers 3"},
    {"zero width", 1, 4, true, 0, 1, 1000, 0, "[] 1/4  25% 1.0/s ETA 3s failed 0 workers 1"},
    {"negative width", 1, 4, true, 0, 1, 1000, -5, "[] 1/4  25% 1.0/s ETA 3s failed 0 workers 1"},
    {"unknown total", 50, 0, false, 0, 4, 10000, 10, "50 done 5.0/s failed 0 workers 4"},
    {"unknown total, failures", 50, 0, false, 7, 4, 10000, 10, "57 done 5.7/s failed 7 workers 4"},
    {"known but zero total", 0, 0, true, 0, 1, 1000, 10, "0 done 0.0/s failed 0 workers 1"},
    {"total ignored when unknown", 5, 100, false, 0, 1, 1000, 10,
     "5 done 5.0/s failed 0 workers 1"},
    {"no time elapsed", 2, 0, false, 0, 1, 0, 10, "2 done 2000.0/s failed 0 workers 1"},
};

Test(stats, progress_format)
{
    for (size_t i = 0; i < sizeof s_prog / sizeof s_prog[0]; i++) {
        const s_prog_t *t = &s_prog[i];
        char buf[256];
        memset(buf, 'Z', sizeof buf);
        tf_progress_format(buf, sizeof buf, t->done, t->total, t->total_known, t->failed,
                           t->workers, t->elapsed_ms, t->width);
        cr_assert_str_eq(buf, t->want, "%s: '%s', expected '%s'", t->name, buf, t->want);
    }
}

Test(stats, progress_bar_width)
{
    char buf[256];
    //  A wide request is capped to fit the bar buffer; the bar is full.
    tf_progress_format(buf, sizeof buf, 10, 10, true, 0, 1, 1000, 1000);
    cr_assert_eq(buf[0], '[');
    const char *end = strchr(buf, ']');
    cr_assert_not_null(end);
    size_t width = (size_t)(end - buf - 1);
    cr_assert_gt(width, 30);
    cr_assert_lt(width, 64);
    for (size_t i = 1; i <= width; i++)
        cr_assert_eq(buf[i], '#');
    //  Every width from 0 to 60: exactly `width` cells, filled in proportion.
    for (int w = 0; w <= 60; w++) {
        tf_progress_format(buf, sizeof buf, 1, 3, true, 0, 1, 1000, w);
        end = strchr(buf, ']');
        cr_assert_not_null(end);
        cr_assert_eq(end - buf - 1, w);
        int hashes = 0;
        for (int i = 1; i <= w; i++)
            hashes += buf[i] == '#';
        cr_assert_eq(hashes, (int)((1.0 / 3.0) * w), "width %d: %d cells filled", w, hashes);
    }
}

Test(stats, progress_small_buffer)
{
    char buf[8];
    tf_progress_format(buf, sizeof buf, 50, 100, true, 0, 4, 10000, 10);
    cr_assert_str_eq(buf, "[#####.");
    tf_progress_format(buf, sizeof buf, 50, 0, false, 0, 4, 10000, 10);
    cr_assert_str_eq(buf, "50 done");
}

Test(stats, progress_disabled_is_silent)
{
    tf_progress_t pr;
    tf_progress_init(&pr, 0);
    cr_assert_not(pr.enabled);
    tf_progress_total(&pr, 10);
    cr_assert(pr.total_known);
    cr_assert_eq(pr.total, 10);
    tf_progress_update(&pr, 1, 0, 1);
    tf_progress_finish(&pr, 10, 0, 1);
    cr_assert_not(pr.drawn);
    tf_progress_init(&pr, 1);
    cr_assert(pr.enabled);
    cr_assert_not(pr.total_known);
}
