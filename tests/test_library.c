/*  test_library.c -- the public C API (include/taskfarm.h): taskfarm_map
    with 0, 1, 2, 4 and "online CPUs" workers against a sequential
    reference, per-worker init/fini with ranks, progress, failing map
    functions and inits, bad arguments, taskfarm_strerror.

    Inputs are random but seeded: TF_SEED=N reruns a failure exactly (the
    seed is in every assertion message). Every test has a hard timeout, so
    a hang fails the test instead of blocking the suite. */
#include <criterion/criterion.h>

#include "taskfarm.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_RANKS 256
#define STATE_MAGIC 0x7a5cf00dU

//  --------------------------------------------------------------------------
//  Seeded random bytes (xorshift64*)

static uint64_t s_seed;
static uint64_t s_rng;

static void s_seed_init(void)
{
    const char *env = getenv("TF_SEED");
    s_seed =
        env && *env ? strtoull(env, NULL, 10) : ((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16));
    s_rng = s_seed * 2654435761ULL + 0x9e3779b97f4a7c15ULL;
    if (!s_rng)
        s_rng = 1;
}

static uint64_t s_rand(void)
{
    s_rng ^= s_rng >> 12;
    s_rng ^= s_rng << 25;
    s_rng ^= s_rng >> 27;
    return s_rng * 2685821657736338717ULL;
}

static size_t s_rand_below(size_t n)
{
    return n ? (size_t)(s_rand() % n) : 0;
}

static void s_sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

//  --------------------------------------------------------------------------
//  Items

typedef struct {
    taskfarm_item_t *items;
    unsigned char **bufs;
    size_t n;
} s_items_t;

//  n random binary items: about 10% empty, bytes 0..255 (NUL, '\n', 0xff
//  included), mostly short, a few up to 64 KiB.
static s_items_t s_items_random(size_t n)
{
    s_items_t it = {calloc(n ? n : 1, sizeof(taskfarm_item_t)),
                    calloc(n ? n : 1, sizeof(unsigned char *)), n};
    cr_assert(it.items && it.bufs);
    for (size_t i = 0; i < n; i++) {
        size_t r = s_rand_below(100);
        size_t len = r < 10 ? 0 : r < 97 ? 1 + s_rand_below(200) : 1 + s_rand_below(65536);
        if (i == 0)
            len = 0; //  always one empty item, first
        if (i == 1 && n > 2)
            len = 3; //  and one that is only NULs
        it.bufs[i] = malloc(len ? len : 1);
        cr_assert(it.bufs[i]);
        for (size_t k = 0; k < len; k++)
            it.bufs[i][k] = (i == 1 && n > 2) ? 0 : (unsigned char)s_rand();
        //  Empty items alternate between a NULL and a non-NULL pointer.
        it.items[i].data = (len == 0 && i % 2 == 0) ? NULL : it.bufs[i];
        it.items[i].len = len;
    }
    return it;
}

//  n items "0", "1", ...: the map functions below parse the index back.
static s_items_t s_items_indexed(size_t n)
{
    s_items_t it = {calloc(n ? n : 1, sizeof(taskfarm_item_t)),
                    calloc(n ? n : 1, sizeof(unsigned char *)), n};
    cr_assert(it.items && it.bufs);
    for (size_t i = 0; i < n; i++) {
        it.bufs[i] = malloc(24);
        cr_assert(it.bufs[i]);
        int len = snprintf((char *)it.bufs[i], 24, "%zu", i);
        it.items[i].data = it.bufs[i];
        it.items[i].len = (size_t)len;
    }
    return it;
}

static void s_items_free(s_items_t *it)
{
    for (size_t i = 0; i < it->n; i++)
        free(it->bufs[i]);
    free(it->bufs);
    free(it->items);
    it->items = NULL;
    it->bufs = NULL;
}

//  Called on worker threads: no cr_assert here (it would unwind the wrong
//  thread); an unexpected item gives SIZE_MAX, which fails the checks.
static size_t s_item_index(const void *item, size_t len)
{
    char buf[24];
    if (len == 0 || len >= sizeof buf)
        return SIZE_MAX;
    memcpy(buf, item, len);
    buf[len] = 0;
    return (size_t)strtoull(buf, NULL, 10);
}

//  --------------------------------------------------------------------------
//  A deterministic transform of arbitrary bytes

static uint64_t s_fnv(const unsigned char *p, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

//  Result: the item's bytes reversed and xor'ed with 0x5a, then its length
//  and FNV hash in decimal. An empty item gives an empty result (with a
//  NULL *out, which the API allows). Every ninth item takes 1-2 ms so that
//  results come back out of order.
static int s_transform(void *state, const void *item, size_t len, void **out, size_t *out_len)
{
    (void)state;
    const unsigned char *in = item;
    if (len == 0) {
        *out = NULL;
        *out_len = 0;
        return 0;
    }
    uint64_t h = s_fnv(in, len);
    if (h % 9 == 0)
        s_sleep_us(1000 + (long)(h % 1000));
    unsigned char *o = malloc(len + 48);
    if (!o)
        return -1;
    for (size_t i = 0; i < len; i++)
        o[i] = in[len - 1 - i] ^ 0x5a;
    int k = snprintf((char *)o + len, 48, "|%zu|%llu", len, (unsigned long long)h);
    *out = o;
    *out_len = len + (size_t)k;
    return 0;
}

//  --------------------------------------------------------------------------
//  Bookkeeping of init/map/fini calls (any thread)

typedef struct {
    unsigned magic;
    int rank;
} s_state_t;

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static int s_init_calls[MAX_RANKS];
static int s_fini_calls[MAX_RANKS];
static int s_init_bad_rank;        //  ranks outside 0..MAX_RANKS-1
static int s_fini_bad_state;       //  fini got a state init did not make
static atomic_int s_map_bad_state; //  map got a state init did not make
static int s_init_fail_rank = -1;  //  this rank's init fails
static int s_user_tag;             //  opts.user points here
static atomic_int s_user_bad;      //  init got another user pointer

static int s_init(int rank, void *user, void **state)
{
    if (user != &s_user_tag)
        atomic_fetch_add(&s_user_bad, 1);
    pthread_mutex_lock(&s_lock);
    if (rank < 0 || rank >= MAX_RANKS)
        s_init_bad_rank++;
    else
        s_init_calls[rank]++;
    pthread_mutex_unlock(&s_lock);
    if (rank == s_init_fail_rank)
        return 3;
    s_state_t *s = malloc(sizeof *s);
    if (!s)
        return -1;
    s->magic = STATE_MAGIC;
    s->rank = rank;
    *state = s;
    return 0;
}

static void s_fini(void *state)
{
    s_state_t *s = state;
    pthread_mutex_lock(&s_lock);
    if (!s || s->magic != STATE_MAGIC || s->rank < 0 || s->rank >= MAX_RANKS)
        s_fini_bad_state++;
    else
        s_fini_calls[s->rank]++;
    pthread_mutex_unlock(&s_lock);
    if (s)
        s->magic = 0;
    free(s);
}

static int s_count_calls(const int *calls)
{
    pthread_mutex_lock(&s_lock);
    int sum = 0;
    for (int i = 0; i < MAX_RANKS; i++)
        sum += calls[i];
    pthread_mutex_unlock(&s_lock);
    return sum;
}

//  Every rank 0..n-1 exactly once in calls, nothing else.
static void s_expect_ranks(const int *calls, int n, const char *what)
{
    pthread_mutex_lock(&s_lock);
    int bad = s_init_bad_rank;
    int copy[MAX_RANKS];
    memcpy(copy, calls, sizeof copy);
    pthread_mutex_unlock(&s_lock);
    cr_assert_eq(bad, 0, "%s: %d calls with a rank outside 0..%d", what, bad, MAX_RANKS - 1);
    for (int r = 0; r < MAX_RANKS; r++)
        cr_assert_eq(copy[r], r < n ? 1 : 0,
                     "%s: rank %d called %d times (expected %d; %d workers)", what, r, copy[r],
                     r < n ? 1 : 0, n);
}

//  Map: "<rank>" of the state it got, after a short wait so that every
//  worker takes a share of the items.
static int s_map_rank(void *state, const void *item, size_t len, void **out, size_t *out_len)
{
    (void)item;
    (void)len;
    const s_state_t *s = state;
    if (!s || s->magic != STATE_MAGIC) {
        atomic_fetch_add(&s_map_bad_state, 1);
        return 1;
    }
    s_sleep_us(3000);
    char *o = malloc(16);
    if (!o)
        return -1;
    *out_len = (size_t)snprintf(o, 16, "%d", s->rank);
    *out = o;
    return 0;
}

static int s_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

static int s_effective_workers(int workers)
{
    return workers < 0 ? s_cpus() : workers == 0 ? 1 : workers;
}

//  --------------------------------------------------------------------------
//  Ordered results vs the sequential reference

static void s_check_ordered(int workers, size_t n)
{
    s_seed_init();
    s_items_t it = s_items_random(n);
    taskfarm_opts_t opts = TASKFARM_OPTS_INIT;
    opts.workers = workers;
    opts.map = s_transform;
    taskfarm_result_t *res = (taskfarm_result_t *)(uintptr_t)1;
    int rc = taskfarm_map(&opts, it.items, n, &res);
    cr_assert_eq(rc, TASKFARM_OK, "workers %d, n %zu, TF_SEED=%llu: taskfarm_map returned %d (%s)",
                 workers, n, (unsigned long long)s_seed, rc, taskfarm_strerror(rc));
    cr_assert_not_null(res);
    for (size_t i = 0; i < n; i++) {
        void *want = NULL;
        size_t want_len = 0;
        cr_assert_eq(s_transform(NULL, it.items[i].data, it.items[i].len, &want, &want_len), 0);
        cr_assert_eq(res[i].status, 0, "workers %d, TF_SEED=%llu: item %zu has status %d", workers,
                     (unsigned long long)s_seed, i, res[i].status);
        cr_assert_eq(res[i].len, want_len,
                     "workers %d, TF_SEED=%llu: item %zu (%zu bytes): result of %zu bytes, "
                     "expected %zu",
                     workers, (unsigned long long)s_seed, i, it.items[i].len, res[i].len, want_len);
        if (want_len) {
            cr_assert_not_null(res[i].data);
            cr_assert(memcmp(res[i].data, want, want_len) == 0,
                      "workers %d, TF_SEED=%llu: item %zu differs from the reference", workers,
                      (unsigned long long)s_seed, i);
        }
        free(want);
    }
    taskfarm_results_free(res, n);
    s_items_free(&it);
}

Test(library, ordered_workers_0, .timeout = 30)
{
    s_check_ordered(0, 400);
}

Test(library, ordered_workers_1, .timeout = 30)
{
    s_check_ordered(1, 400);
}

Test(library, ordered_workers_2, .timeout = 30)
{
    s_check_ordered(2, 600);
}

Test(library, ordered_workers_4, .timeout = 30)
{
    s_check_ordered(4, 600);
}

Test(library, ordered_workers_cpus, .timeout = 30)
{
    s_check_ordered(-1, 600);
}

Test(library, single_item, .timeout = 30)
{
    s_check_ordered(2, 1);
}

Test(library, single_item_workers_0, .timeout = 30)
{
    s_check_ordered(0, 1);
}

//  Several jobs in a row in one process (each call names its inproc
//  endpoints uniquely: libzmq releases them asynchronously).
Test(library, repeated_jobs, .timeout = 60)
{
    for (int k = 0; k < 10; k++)
        s_check_ordered(1 + k % 3, 50);
}

//  --------------------------------------------------------------------------
//  init / state / fini

static void s_check_init_fini(int workers)
{
    int nw = s_effective_workers(workers);
    cr_assert(nw <= MAX_RANKS);
    //  Enough slow items that every worker gets some.
    size_t n = (size_t)(nw * 12 + 8);
    s_items_t it = s_items_indexed(n);
    taskfarm_opts_t opts = TASKFARM_OPTS_INIT;
    opts.workers = workers;
    opts.init = s_init;
    opts.map = s_map_rank;
    opts.fini = s_fini;
    opts.user = &s_user_tag;
    taskfarm_result_t *res = NULL;
    int rc = taskfarm_map(&opts, it.items, n, &res);
    cr_assert_eq(rc, TASKFARM_OK, "workers %d: taskfarm_map returned %d (%s)", workers, rc,
                 taskfarm_strerror(rc));
    cr_assert_not_null(res);
    cr_assert_eq(atomic_load(&s_user_bad), 0, "workers %d: init got another user pointer", workers);
    cr_assert_eq(atomic_load(&s_map_bad_state), 0,
                 "workers %d: map got a state that init did not set", workers);
    s_expect_ranks(s_init_calls, nw, "init");
    s_expect_ranks(s_fini_calls, nw, "fini");
    pthread_mutex_lock(&s_lock);
    int bad = s_fini_bad_state;
    pthread_mutex_unlock(&s_lock);
    cr_assert_eq(bad, 0, "workers %d: fini got %d states init did not make", workers, bad);
    //  The state reached map: every result is a valid rank, and each rank
    //  mapped at least one item.
    int seen[MAX_RANKS] = {0};
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(res[i].status, 0, "item %zu failed (%d)", i, res[i].status);
        cr_assert(res[i].len > 0 && res[i].len < 8, "item %zu: result of %zu bytes", i, res[i].len);
        char buf[8];
        memcpy(buf, res[i].data, res[i].len);
        buf[res[i].len] = 0;
        int r = atoi(buf);
        cr_assert(r >= 0 && r < nw, "item %zu was mapped with rank %d of %d workers", i, r, nw);
        seen[r]++;
    }
    for (int r = 0; r < nw; r++)
        cr_assert(seen[r] > 0,
                  "workers %d: rank %d mapped no item of %zu (its state never "
                  "reached map?)",
                  workers, r, n);
    taskfarm_results_free(res, n);
    s_items_free(&it);
}

Test(library, init_fini_workers_0, .timeout = 30)
{
    s_check_init_fini(0);
}

Test(library, init_fini_workers_1, .timeout = 30)
{
    s_check_init_fini(1);
}

Test(library, init_fini_workers_2, .timeout = 30)
{
    s_check_init_fini(2);
}

Test(library, init_fini_workers_4, .timeout = 30)
{
    s_check_init_fini(4);
}

Test(library, init_fini_workers_cpus, .timeout = 30)
{
    s_check_init_fini(-1);
}

//  workers == 0 maps in the calling thread.
static pthread_t s_caller;
static atomic_int s_map_elsewhere;

static int s_map_where(void *state, const void *item, size_t len, void **out, size_t *out_len)
{
    if (!pthread_equal(pthread_self(), s_caller))
        atomic_fetch_add(&s_map_elsewhere, 1);
    return s_transform(state, item, len, out, out_len);
}

Test(library, workers_0_maps_in_calling_thread, .timeout = 30)
{
    s_seed_init();
    s_items_t it = s_items_random(50);
    s_caller = pthread_self();
    taskfarm_opts_t opts = TASKFARM_OPTS_INIT;
    opts.workers = 0;
    opts.map = s_map_where;
    taskfarm_result_t *res = NULL;
    cr_assert_eq(taskfarm_map(&opts, it.items, it.n, &res), TASKFARM_OK);
    cr_assert_eq(atomic_load(&s_map_elsewhere), 0, "%d map calls ran on another thread",
                 atomic_load(&s_map_elsewhere));
    taskfarm_results_free(res, it.n);
    s_items_free(&it);
}

//  --------------------------------------------------------------------------
//  Progress

typedef struct {
    pthread_t caller;
    size_t calls;
    size_t last_done;
    size_t total_bad; //  calls whose total was not n
    size_t backwards; //  calls whose done went down
    size_t too_many;  //  calls with done > total
    size_t other_thread;
    size_t n;
} s_progress_t;

static void s_progress(void *user, size_t done, size_t total)
{
    s_progress_t *p = user;
    p->calls++;
    if (total != p->n)
        p->total_bad++;
    if (done < p->last_done)
        p->backwards++;
    if (done > total)
        p->too_many++;
    if (!pthread_equal(pthread_self(), p->caller))
        p->other_thread++;
    p->last_done = done;
}

static void s_check_progress(int workers, size_t n)
{
    s_seed_init();
    s_items_t it = s_items_random(n);
    s_progress_t prog;
    memset(&prog, 0, sizeof prog);
    prog.caller = pthread_self();
    prog.n = n;
    taskfarm_opts_t opts = TASKFARM_OPTS_INIT;
    opts.workers = workers;
    opts.map = s_transform;
    opts.progress = s_progress;
    opts.progress_user = &prog;
    taskfarm_result_t *res = NULL;
    int rc = taskfarm_map(&opts, it.items, n, &res);
    cr_assert_eq(rc, TASKFARM_OK, "workers %d: %d (%s)", workers, rc, taskfarm_strerror(rc));
    cr_assert(prog.calls >= 1, "workers %d: progress was never called", workers);
    cr_assert(prog.calls <= n, "workers %d: progress called %zu times for %zu items", workers,
              prog.calls, n);
    if (workers == 0)
        cr_assert_eq(prog.calls, n, "workers 0: progress called %zu times for %zu items",
                     prog.calls, n);
    cr_assert_eq(prog.total_bad, 0, "workers %d: %zu progress calls with total != %zu", workers,
                 prog.total_bad, n);
    cr_assert_eq(prog.backwards, 0, "workers %d: done went backwards %zu times", workers,
                 prog.backwards);
    cr_assert_eq(prog.too_many, 0, "workers %d: done > total in %zu calls", workers, prog.too_many);
    cr_assert_eq(prog.other_thread, 0,
                 "workers %d: %zu progress calls were not on the calling thread", workers,
                 prog.other_thread);
    cr_assert_eq(prog.last_done, n, "workers %d: last progress call had done %zu, expected %zu",
                 workers, prog.last_done, n);
    taskfarm_results_free(res, n);
    s_items_free(&it);
}

Test(library, progress_workers_0, .timeout = 30)
{
    s_check_progress(0, 200);
}

Test(library, progress_workers_2, .timeout = 30)
{
    s_check_progress(2, 300);
}

Test(library, progress_workers_4, .timeout = 30)
{
    s_check_progress(4, 300);
}

//  --------------------------------------------------------------------------
//  n == 0

static atomic_int s_map_calls;

static int s_map_count(void *state, const void *item, size_t len, void **out, size_t *out_len)
{
    atomic_fetch_add(&s_map_calls, 1);
    return s_transform(state, item, len, out, out_len);
}

static void s_check_empty(int workers, bool null_items)
{
    taskfarm_item_t one = {"x", 1};
    taskfarm_opts_t opts = TASKFARM_OPTS_INIT;
    opts.workers = workers;
    opts.map = s_map_count;
    taskfarm_result_t *res = (taskfarm_result_t *)(uintptr_t)1;
    int rc = taskfarm_map(&opts, null_items ? NULL : &one, 0, &res);
    cr_assert_eq(rc, TASKFARM_OK, "workers %d, n 0: %d (%s)", workers, rc, taskfarm_strerror(rc));
    cr_assert_eq(atomic_load(&s_map_calls), 0, "workers %d, n 0: map was called", workers);
    cr_assert_neq((void *)res, (void *)(uintptr_t)1, "workers %d: *results_p not set", workers);
    taskfarm_results_free(res, 0);
}

//  One farm call per test (see repeated_jobs).
Test(library, no_items_workers_0, .timeout = 30)
{
    s_check_empty(0, true);
    s_check_empty(0, false);
}

Test(library, no_items_workers_1, .timeout = 30)
{
    s_check_empty(1, true);
}

Test(library, no_items_workers_2, .timeout = 30)
{
    s_check_empty(2, false);
}

Test(library, no_items_workers_4, .timeout = 30)
{
    s_check_empty(4, true);
}

Test(library, no_items_workers_cpus, .timeout = 30)
{
    s_check_empty(-1, true);
}

//  --------------------------------------------------------------------------
//  A map function that fails some items

#define FAIL_STATUS 7
#define MAX_ITEMS 4096
static atomic_int s_attempts[MAX_ITEMS];

static bool s_should_fail(size_t idx)
{
    return idx % 7 == 3 || idx == 0;
}

//  Fails the items s_should_fail picks with FAIL_STATUS; the others give
//  "ok <index>". Counts the attempts per item.
static int s_map_some_fail(void *state, const void *item, size_t len, void **out, size_t *out_len)
{
    (void)state;
    size_t idx = s_item_index(item, len);
    if (idx < MAX_ITEMS)
        atomic_fetch_add(&s_attempts[idx], 1);
    if (idx % 13 == 0)
        s_sleep_us(500);
    if (s_should_fail(idx))
        return FAIL_STATUS;
    char *o = malloc(32);
    if (!o)
        return -1;
    *out_len = (size_t)snprintf(o, 32, "ok %zu", idx);
    *out = o;
    return 0;
}

static void s_check_failures(int workers, int retries, size_t n)
{
    cr_assert(n <= MAX_ITEMS);
    s_items_t it = s_items_indexed(n);
    taskfarm_opts_t opts = TASKFARM_OPTS_INIT;
    opts.workers = workers;
    opts.map = s_map_some_fail;
    opts.retries = retries;
    taskfarm_result_t *res = NULL;
    int rc = taskfarm_map(&opts, it.items, n, &res);
    cr_assert_eq(rc, TASKFARM_EMAP, "workers %d, retries %d: returned %d (%s), expected EMAP",
                 workers, retries, rc, taskfarm_strerror(rc));
    cr_assert_not_null(res, "EMAP must still give the results");
    for (size_t i = 0; i < n; i++) {
        if (s_should_fail(i)) {
            cr_assert_neq(res[i].status, 0, "workers %d: failed item %zu has status 0", workers, i);
        } else {
            char want[32];
            int k = snprintf(want, sizeof want, "ok %zu", i);
            cr_assert_eq(res[i].status, 0, "workers %d: item %zu has status %d", workers, i,
                         res[i].status);
            cr_assert_eq(res[i].len, (size_t)k, "workers %d: item %zu: %zu bytes", workers, i,
                         res[i].len);
            cr_assert(memcmp(res[i].data, want, (size_t)k) == 0,
                      "workers %d: item %zu: wrong result", workers, i);
        }
        //  Every item was tried, a failing one exactly `retries` times.
        int a = atomic_load(&s_attempts[i]);
        if (s_should_fail(i))
            cr_assert_eq(a, retries, "workers %d: failing item %zu tried %d times, retries %d",
                         workers, i, a, retries);
        else
            cr_assert(a >= 1, "workers %d: item %zu never mapped", workers, i);
    }
    taskfarm_results_free(res, n);
    s_items_free(&it);
}

Test(library, map_fails_some_workers_0, .timeout = 30)
{
    s_check_failures(0, 1, 200);
}

Test(library, map_fails_some_workers_2, .timeout = 30)
{
    s_check_failures(2, 1, 300);
}

Test(library, map_fails_some_workers_4_retries_3, .timeout = 30)
{
    s_check_failures(4, 3, 300);
}

Test(library, map_fails_some_workers_0_retries_2, .timeout = 30)
{
    s_check_failures(0, 2, 100);
}

//  The status is the map function's return value.
static void s_check_status_value(int workers)
{
    s_items_t it = s_items_indexed(20);
    taskfarm_opts_t opts = TASKFARM_OPTS_INIT;
    opts.workers = workers;
    opts.map = s_map_some_fail;
    taskfarm_result_t *res = NULL;
    cr_assert_eq(taskfarm_map(&opts, it.items, it.n, &res), TASKFARM_EMAP);
    for (size_t i = 0; i < it.n; i++)
        if (s_should_fail(i))
            cr_assert_eq(res[i].status, FAIL_STATUS, "workers %d: item %zu: status %d, expected %d",
                         workers, i, res[i].status, FAIL_STATUS);
    taskfarm_results_free(res, it.n);
    s_items_free(&it);
}

Test(library, failed_status_is_map_return_value, .timeout = 30)
{
    s_check_status_value(0);
    s_check_status_value(2);
}

//  Every item fails: EMAP, no hang, every status set.
static int s_map_fail_all(void *state, const void *item, size_t len, void **out, size_t *out_len)
{
    (void)state;
    (void)item;
    (void)len;
    (void)out;
    (void)out_len;
    return -1;
}

static void s_check_fail_all(int workers)
{
    s_items_t it = s_items_indexed(100);
    taskfarm_opts_t opts = TASKFARM_OPTS_INIT;
    opts.workers = workers;
    opts.map = s_map_fail_all;
    taskfarm_result_t *res = NULL;
    int rc = taskfarm_map(&opts, it.items, it.n, &res);
    cr_assert_eq(rc, TASKFARM_EMAP, "workers %d: %d (%s)", workers, rc, taskfarm_strerror(rc));
    cr_assert_not_null(res);
    for (size_t i = 0; i < it.n; i++)
        cr_assert_neq(res[i].status, 0, "workers %d: item %zu has status 0", workers, i);
    taskfarm_results_free(res, it.n);
    s_items_free(&it);
}

Test(library, map_fails_all_workers_0, .timeout = 30)
{
    s_check_fail_all(0);
}

Test(library, map_fails_all_workers_1, .timeout = 30)
{
    s_check_fail_all(1);
}

Test(library, map_fails_all_workers_3, .timeout = 30)
{
    s_check_fail_all(3);
}

//  A failure on the first attempt only: with retries 2 the job succeeds.
static int s_map_flaky(void *state, const void *item, size_t len, void **out, size_t *out_len)
{
    (void)state;
    size_t idx = s_item_index(item, len);
    if (idx >= MAX_ITEMS)
        return 2;
    if (atomic_fetch_add(&s_attempts[idx], 1) == 0 && idx % 3 == 0)
        return 1;
    char *o = malloc(32);
    if (!o)
        return -1;
    *out_len = (size_t)snprintf(o, 32, "ok %zu", idx);
    *out = o;
    return 0;
}

Test(library, retries_recover_flaky_items, .timeout = 30)
{
    int workers[] = {0, 2};
    for (size_t w = 0; w < 2; w++) {
        for (size_t i = 0; i < MAX_ITEMS; i++)
            atomic_store(&s_attempts[i], 0);
        s_items_t it = s_items_indexed(150);
        taskfarm_opts_t opts = TASKFARM_OPTS_INIT;
        opts.workers = workers[w];
        opts.map = s_map_flaky;
        opts.retries = 2;
        taskfarm_result_t *res = NULL;
        int rc = taskfarm_map(&opts, it.items, it.n, &res);
        cr_assert_eq(rc, TASKFARM_OK, "workers %d: %d (%s)", workers[w], rc, taskfarm_strerror(rc));
        for (size_t i = 0; i < it.n; i++) {
            char want[32];
            int k = snprintf(want, sizeof want, "ok %zu", i);
            cr_assert_eq(res[i].status, 0);
            cr_assert_eq(res[i].len, (size_t)k);
            cr_assert(memcmp(res[i].data, want, (size_t)k) == 0);
        }
        taskfarm_results_free(res, it.n);
        s_items_free(&it);
    }
}

//  --------------------------------------------------------------------------
//  A failing init

static void s_check_init_fails(int workers, int fail_rank)
{
    s_init_fail_rank = fail_rank;
    s_items_t it = s_items_indexed(20);
    taskfarm_opts_t opts = TASKFARM_OPTS_INIT;
    opts.workers = workers;
    opts.init = s_init;
    opts.map = s_map_rank;
    opts.fini = s_fini;
    opts.user = &s_user_tag;
    taskfarm_result_t *res = (taskfarm_result_t *)(uintptr_t)1;
    int rc = taskfarm_map(&opts, it.items, it.n, &res);
    cr_assert_eq(rc, TASKFARM_EINIT, "workers %d, init of rank %d fails: %d (%s)", workers,
                 fail_rank, rc, taskfarm_strerror(rc));
    cr_assert_null(res, "workers %d: *results_p must be NULL on EINIT", workers);
    //  The inits that succeeded are undone.
    int inits = s_count_calls(s_init_calls);
    int finis = s_count_calls(s_fini_calls);
    cr_assert(inits >= 1, "workers %d: init never called", workers);
    cr_assert_eq(finis, inits - 1, "workers %d, rank %d fails: %d inits (one failed) but %d finis",
                 workers, fail_rank, inits, finis);
    s_items_free(&it);
}

Test(library, init_fails_workers_0, .timeout = 30)
{
    s_check_init_fails(0, 0);
}

Test(library, init_fails_workers_1, .timeout = 30)
{
    s_check_init_fails(1, 0);
}

Test(library, init_fails_rank_2_of_4, .timeout = 30)
{
    s_check_init_fails(4, 2);
}

Test(library, init_fails_last_rank_of_3, .timeout = 30)
{
    s_check_init_fails(3, 2);
}

//  --------------------------------------------------------------------------
//  Bad arguments

Test(library, bad_arguments, .timeout = 30)
{
    taskfarm_item_t items[2] = {{"a", 1}, {"b", 1}};
    taskfarm_opts_t opts = TASKFARM_OPTS_INIT;
    opts.workers = 2;
    opts.map = s_transform;
    taskfarm_result_t *res = (taskfarm_result_t *)(uintptr_t)1;

    cr_assert_eq(taskfarm_map(NULL, items, 2, &res), TASKFARM_EINVAL, "NULL opts");
    cr_assert_null(res, "NULL opts: *results_p must be NULL");

    taskfarm_opts_t nomap = opts;
    nomap.map = NULL;
    res = (taskfarm_result_t *)(uintptr_t)1;
    cr_assert_eq(taskfarm_map(&nomap, items, 2, &res), TASKFARM_EINVAL, "NULL map");
    cr_assert_null(res, "NULL map: *results_p must be NULL");

    cr_assert_eq(taskfarm_map(&opts, items, 2, NULL), TASKFARM_EINVAL, "NULL results pointer");

    res = (taskfarm_result_t *)(uintptr_t)1;
    cr_assert_eq(taskfarm_map(&opts, NULL, 3, &res), TASKFARM_EINVAL, "NULL items with n 3");
    cr_assert_null(res, "NULL items: *results_p must be NULL");

    taskfarm_item_t bad[2] = {{"a", 1}, {NULL, 5}};
    res = (taskfarm_result_t *)(uintptr_t)1;
    cr_assert_eq(taskfarm_map(&opts, bad, 2, &res), TASKFARM_EINVAL, "item with NULL data, len 5");
    cr_assert_null(res);

    //  The same with workers 0 (no farm is set up at all).
    opts.workers = 0;
    cr_assert_eq(taskfarm_map(&opts, NULL, 1, &res), TASKFARM_EINVAL);
    cr_assert_eq(taskfarm_map(&opts, items, 1, NULL), TASKFARM_EINVAL);

    //  taskfarm_serve checks its arguments before any network set-up.
    cr_assert_eq(taskfarm_serve(NULL, "tcp://127.0.0.1:5555"), TASKFARM_EINVAL);
    cr_assert_eq(taskfarm_serve(&nomap, "tcp://127.0.0.1:5555"), TASKFARM_EINVAL);
    cr_assert_eq(taskfarm_serve(&opts, NULL), TASKFARM_EINVAL);
    cr_assert_eq(taskfarm_serve(&opts, "not an endpoint"), TASKFARM_EINVAL);

    //  Freeing NULL is harmless.
    taskfarm_results_free(NULL, 0);
    taskfarm_results_free(NULL, 10);
}

//  --------------------------------------------------------------------------
//  taskfarm_strerror

Test(library, strerror_every_code, .timeout = 30)
{
    const int codes[] = {TASKFARM_OK,    TASKFARM_EINVAL, TASKFARM_ENOMEM, TASKFARM_EMAP,
                         TASKFARM_EINIT, TASKFARM_ENET,   TASKFARM_EINTR};
    const size_t ncodes = sizeof codes / sizeof codes[0];
    const char *unknown = taskfarm_strerror(12345);
    cr_assert_not_null(unknown);
    cr_assert(strlen(unknown) > 0);
    cr_assert_not_null(taskfarm_strerror(-99));
    cr_assert_not_null(taskfarm_strerror(INT_MIN));
    cr_assert_str_eq(taskfarm_strerror(-99), unknown);
    for (size_t i = 0; i < ncodes; i++) {
        const char *s = taskfarm_strerror(codes[i]);
        cr_assert_not_null(s, "code %d", codes[i]);
        cr_assert(strlen(s) > 0 && !strchr(s, '\n'), "code %d: '%s'", codes[i], s);
        cr_assert_str_neq(s, unknown, "code %d has no message of its own", codes[i]);
        for (size_t j = 0; j < i; j++)
            cr_assert_str_neq(s, taskfarm_strerror(codes[j]), "codes %d and %d share '%s'",
                              codes[i], codes[j], s);
    }
    cr_assert_str_eq(taskfarm_strerror(TASKFARM_OK), "success");
    cr_assert(strstr(taskfarm_strerror(TASKFARM_EINVAL), "invalid") != NULL);
    cr_assert(strstr(taskfarm_strerror(TASKFARM_EMAP), "map") != NULL);
    cr_assert(strstr(taskfarm_strerror(TASKFARM_EINIT), "init") != NULL);
}
