/*  tokenize.c -- the seed's workload: split each line into lowercase word
    tokens, with a fixed amount of simulated work per item (default 10 ms,
    spent waiting, like the I/O- or service-bound work of pyblaze's
    Vectorizer example).

    Usage: tokenize [--ms N]          filter: one line in, one line out
           tokenize [--ms N] TEXT...  one item from the arguments (exec mode)
*/
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void s_work(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void s_tokenize(const char *line, size_t len)
{
    int first = 1;
    size_t i = 0;
    while (i < len) {
        while (i < len && !isalnum((unsigned char)line[i]))
            i++;
        if (i >= len)
            break;
        if (!first)
            putchar(' ');
        first = 0;
        while (i < len && isalnum((unsigned char)line[i]))
            putchar(tolower((unsigned char)line[i++]));
    }
    putchar('\n');
}

int main(int argc, char **argv)
{
    long ms = 10;
    int a = 1;
    if (a + 1 < argc + 1 && a < argc && strcmp(argv[a], "--ms") == 0) {
        if (a + 1 >= argc) {
            fprintf(stderr, "tokenize: --ms needs a number\n");
            return 2;
        }
        char *end;
        ms = strtol(argv[a + 1], &end, 10);
        if (*end || ms < 0) {
            fprintf(stderr, "tokenize: bad --ms '%s'\n", argv[a + 1]);
            return 2;
        }
        a += 2;
    }
    if (a < argc) {
        s_work(ms);
        for (; a < argc; a++)
            s_tokenize(argv[a], strlen(argv[a]));
        return 0;
    }
    //  A good co-process answers each line at once: line-buffered output
    //  lets taskfarm keep it on plain pipes (no pseudo-terminal needed).
    setvbuf(stdout, NULL, _IOLBF, 0);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        if (n > 0 && line[n - 1] == '\n')
            n--;
        s_work(ms);
        s_tokenize(line, (size_t)n);
    }
    free(line);
    return 0;
}
