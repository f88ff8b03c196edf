/*  sleeper.c -- the skewed workload's task: each item starts with a number
    of milliseconds; sleep that long, then answer the item unchanged.

    Usage: sleeper            filter: one line in, the same line out (--pipe)
           sleeper ITEM       one item from the argument (exec mode)

    Example items: "100 #7" (100 ms), "1 #8" (1 ms). Output is flushed after
    every line, so it works over pipes as well as over a pseudo-terminal.
*/
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void s_sleep_ms(const char *item)
{
    long ms = strtol(item, NULL, 10);
    if (ms <= 0)
        return;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        s_sleep_ms(argv[1]);
        printf("%s\n", argv[1]);
        return 0;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        if (n > 0 && line[n - 1] == '\n')
            line[--n] = 0;
        s_sleep_ms(line);
        fwrite(line, 1, (size_t)n, stdout);
        putchar('\n');
        fflush(stdout);
    }
    free(line);
    return 0;
}
