/*  seed_lib.c -- the seed notebook in C with libtaskfarm: tokenize 100
    items with 10 ms of (simulated, latency-bound) work each, sequentially
    and on 4 workers, and print both times.

        cc seed_lib.c $(pkg-config --cflags --libs taskfarm) -o seed_lib
*/
#include <taskfarm.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_ITEMS 100
#define WORK_MS 10

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

//  Per-worker init: the rank's value reaches every map call of that worker.
static int s_init(int rank, void *user, void **state)
{
    (void)user;
    int *r = malloc(sizeof *r);
    if (!r)
        return -1;
    *r = rank;
    *state = r;
    return 0;
}

static int s_tokenize(void *state, const void *item, size_t len, void **out, size_t *out_len)
{
    (void)state;
    struct timespec ts = {0, WORK_MS * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
    const unsigned char *in = item;
    char *o = malloc(len + 1);
    if (!o)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        while (i < len && !isalnum(in[i]))
            i++;
        if (i >= len)
            break;
        if (n)
            o[n++] = ' ';
        while (i < len && isalnum(in[i]))
            o[n++] = (char)tolower(in[i++]);
    }
    *out = o;
    *out_len = n;
    return 0;
}

static double s_run(int workers, taskfarm_item_t *items, taskfarm_result_t **results)
{
    taskfarm_opts_t opts = TASKFARM_OPTS_INIT;
    opts.workers = workers;
    opts.init = s_init;
    opts.map = s_tokenize;
    opts.fini = free;
    double t0 = s_now();
    int rc = taskfarm_map(&opts, items, N_ITEMS, results);
    double t = s_now() - t0;
    if (rc != TASKFARM_OK) {
        fprintf(stderr, "taskfarm_map: %s\n", taskfarm_strerror(rc));
        exit(1);
    }
    return t;
}

int main(void)
{
    static char text[N_ITEMS][64];
    taskfarm_item_t items[N_ITEMS];
    for (int i = 0; i < N_ITEMS; i++) {
        snprintf(text[i], sizeof text[i], "The Quick Brown Fox, item %d!", i);
        items[i].data = text[i];
        items[i].len = strlen(text[i]);
    }
    taskfarm_result_t *seq, *par;
    double t_seq = s_run(0, items, &seq);
    double t_par = s_run(4, items, &par);
    for (int i = 0; i < N_ITEMS; i++)
        if (seq[i].len != par[i].len || memcmp(seq[i].data, par[i].data, seq[i].len) != 0) {
            fprintf(stderr, "results differ at item %d\n", i);
            return 1;
        }
    printf("libtaskfarm seed: %d items x %d ms\n", N_ITEMS, WORK_MS);
    printf("  sequential (workers = 0)  %7.1f ms\n", t_seq * 1000);
    printf("  4 workers (threads)       %7.1f ms   ratio %.3f\n", t_par * 1000, t_par / t_seq);
    printf("  first result: \"%.*s\"\n", (int)par[0].len, (const char *)par[0].data);
    taskfarm_results_free(seq, N_ITEMS);
    taskfarm_results_free(par, N_ITEMS);
    return 0;
}
