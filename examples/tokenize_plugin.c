/*  tokenize_plugin.c -- the seed's workload as a taskfarm plugin:
    `taskfarm run --plugin build/examples/libtokenize_plugin.so`.
    Each item is tokenized into lowercase words after TOKENIZE_MS (default
    10) milliseconds of simulated work; the result is one line. */
#include "taskfarm_plugin.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    int rank;
    long ms;
} s_state_t;

static int s_init(int rank, void **state)
{
    s_state_t *s = malloc(sizeof *s);
    if (!s)
        return -1;
    s->rank = rank;
    const char *env = getenv("TOKENIZE_MS");
    s->ms = env ? strtol(env, NULL, 10) : 10;
    *state = s;
    return 0;
}

static int s_map(void *state, const void *item, size_t len, void **out, size_t *out_len)
{
    const s_state_t *s = state;
    struct timespec ts = {s->ms / 1000, (s->ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
    const unsigned char *in = item;
    char *o = malloc(len + 1);
    if (!o)
        return -1;
    size_t n = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && !isalnum(in[i]))
            i++;
        if (i >= len)
            break;
        if (n > 0)
            o[n++] = ' ';
        while (i < len && isalnum(in[i]))
            o[n++] = (char)tolower(in[i++]);
    }
    o[n++] = '\n';
    *out = o;
    *out_len = n;
    return 0;
}

static void s_fini(void *state)
{
    free(state);
}

static const taskfarm_plugin_t s_plugin = {TASKFARM_PLUGIN_ABI, "tokenize", s_init, s_map, s_fini};

const taskfarm_plugin_t *taskfarm_plugin(void);
const taskfarm_plugin_t *taskfarm_plugin(void)
{
    return &s_plugin;
}
