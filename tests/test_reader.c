/*  test_reader.c -- streaming item reader. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tf_reader.h"

#define S_MAX_ITEMS 64

typedef struct {
    tf_rd_status_t status;
    char data[64];
    size_t len;
    uint64_t line;
} s_got_t;

typedef struct {
    s_got_t items[S_MAX_ITEMS];
    size_t n;
} s_result_t;

//  Appends what one tf_reader_next call returned to `res`.
static void s_record(s_result_t *res, tf_rd_status_t st, const uint8_t *data, size_t len,
                     uint64_t line)
{
    cr_assert_lt(res->n, S_MAX_ITEMS);
    s_got_t *g = &res->items[res->n++];
    g->status = st;
    g->line = line;
    g->len = len;
    if (st == TF_RD_ITEM) {
        cr_assert_lt(len, sizeof g->data);
        memcpy(g->data, data, len);
    }
}

//  Drains the reader: every ITEM and TOOLONG until EOF, filling on AGAIN.
static void s_drain(tf_reader_t *rd, s_result_t *res)
{
    for (int guard = 0; guard < 100000; guard++) {
        const uint8_t *data = NULL;
        size_t len = 0;
        uint64_t line = 0;
        tf_rd_status_t st = tf_reader_next(rd, &data, &len, &line);
        if (st == TF_RD_EOF)
            return;
        if (st == TF_RD_AGAIN) {
            ssize_t n = tf_reader_fill(rd);
            cr_assert_geq(n, 0, "fill failed: %s", strerror(errno));
            continue;
        }
        s_record(res, st, data, len, line);
    }
    cr_assert_fail("reader did not reach EOF");
}

//  Reads `text` (n bytes) through a pipe written in one go.
static void s_read_all(const char *text, size_t n, char delim, size_t max_item, s_result_t *res)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    cr_assert_eq(write(fds[1], text, n), (ssize_t)n);
    close(fds[1]);
    tf_reader_t *rd = tf_reader_new(fds[0], delim, max_item);
    cr_assert_not_null(rd);
    memset(res, 0, sizeof *res);
    s_drain(rd, res);
    cr_assert(tf_reader_eof(rd));
    //  EOF is sticky.
    const uint8_t *data;
    size_t len;
    uint64_t line;
    cr_assert_eq(tf_reader_next(rd, &data, &len, &line), TF_RD_EOF);
    cr_assert_eq(tf_reader_fill(rd), 0);
    tf_reader_destroy(&rd);
    cr_assert_null(rd);
    close(fds[0]);
}

typedef struct {
    tf_rd_status_t status;
    const char *data;
    size_t len;
    uint64_t line;
} s_want_t;

static void s_expect(const s_result_t *res, const s_want_t *want, size_t n, const char *name)
{
    cr_assert_eq(res->n, n, "%s: %zu items, expected %zu", name, res->n, n);
    for (size_t i = 0; i < n; i++) {
        const s_got_t *g = &res->items[i];
        cr_assert_eq(g->status, want[i].status, "%s: item %zu status %d, expected %d", name, i,
                     g->status, want[i].status);
        cr_assert_eq(g->line, want[i].line, "%s: item %zu line %llu, expected %llu", name, i,
                     (unsigned long long)g->line, (unsigned long long)want[i].line);
        if (g->status == TF_RD_ITEM) {
            cr_assert_eq(g->len, want[i].len, "%s: item %zu length %zu, expected %zu", name, i,
                         g->len, want[i].len);
            cr_assert_eq(memcmp(g->data, want[i].data, g->len), 0, "%s: item %zu bytes differ",
                         name, i);
        }
    }
}

#define IT(s, l)                                                                                   \
    {                                                                                              \
        TF_RD_ITEM, (s), sizeof(s) - 1, (l)                                                        \
    }
#define LONG(l)                                                                                    \
    {                                                                                              \
        TF_RD_TOOLONG, NULL, 0, (l)                                                                \
    }
#define TEXT(s) (s), sizeof(s) - 1

typedef struct {
    const char *name;
    const char *input;
    size_t input_len;
    char delim;
    size_t max_item;
    s_want_t want[8];
    size_t nwant;
} s_case_t;

static const s_case_t s_cases[] = {
    {"empty input", TEXT(""), '\n', 100, {{0, NULL, 0, 0}}, 0},
    {"one line", TEXT("abc\n"), '\n', 100, {IT("abc", 1)}, 1},
    {"lines", TEXT("a\nbb\nccc\n"), '\n', 100, {IT("a", 1), IT("bb", 2), IT("ccc", 3)}, 3},
    {"no final newline", TEXT("a\nlast"), '\n', 100, {IT("a", 1), IT("last", 2)}, 2},
    {"only a newline", TEXT("\n"), '\n', 100, {IT("", 1)}, 1},
    {"empty lines", TEXT("\n\na\n\n"), '\n', 100, {IT("", 1), IT("", 2), IT("a", 3), IT("", 4)}, 4},
    {"CRLF kept", TEXT("a\r\nb\r\n\r\n"), '\n', 100, {IT("a\r", 1), IT("b\r", 2), IT("\r", 3)}, 3},
    {"UTF-8",
     TEXT("h\xc3\xa9llo \xe2\x82\xac\n\xf0\x9f\x98\x80\n"),
     '\n',
     100,
     {IT("h\xc3\xa9llo \xe2\x82\xac", 1), IT("\xf0\x9f\x98\x80", 2)},
     2},
    {"binary bytes",
     TEXT("\x01\x02\xff\xfe\x7f\n\0\0\n\x80"),
     '\n',
     100,
     {IT("\x01\x02\xff\xfe\x7f", 1), IT("\0\0", 2), IT("\x80", 3)},
     3},
    {"NUL separated",
     TEXT("a\0b c\nd\0\0last"),
     '\0',
     100,
     {IT("a", 1), IT("b c\nd", 2), IT("", 3), IT("last", 4)},
     4},
    {"NUL separated, final NUL", TEXT("x\0"), '\0', 100, {IT("x", 1)}, 1},
    {"too long in the middle",
     TEXT("ab\nabcdef\ncd\n"),
     '\n',
     5,
     {IT("ab", 1), LONG(2), IT("cd", 3)},
     3},
    {"exactly max_item",
     TEXT("abcde\nabcdef\nabcde"),
     '\n',
     5,
     {IT("abcde", 1), LONG(2), IT("abcde", 3)},
     3},
    {"too long first", TEXT("0123456789\nok\n"), '\n', 3, {LONG(1), IT("ok", 2)}, 2},
    {"too long last, no newline", TEXT("ok\n0123456789"), '\n', 3, {IT("ok", 1), LONG(2)}, 2},
    {"two too long in a row",
     TEXT("0123456789\n0123456789\n\n"),
     '\n',
     3,
     {LONG(1), LONG(2), IT("", 3)},
     3},
    {"too long, NUL separated", TEXT("abcdefgh\0ab\0"), '\0', 4, {LONG(1), IT("ab", 2)}, 2},
    {"max_item 0", TEXT("\na\n\n"), '\n', 0, {IT("", 1), LONG(2), IT("", 3)}, 3},
};

Test(reader, table_one_write)
{
    for (size_t i = 0; i < sizeof s_cases / sizeof s_cases[0]; i++) {
        const s_case_t *c = &s_cases[i];
        s_result_t *res = malloc(sizeof *res);
        s_read_all(c->input, c->input_len, c->delim, c->max_item, res);
        s_expect(res, c->want, c->nwant, c->name);
        free(res);
    }
}

//  The same table fed through a pipe `chunk` bytes at a time, the reader
//  draining between writes: items and too-long items spanning reads.
static void s_read_chunked(const s_case_t *c, size_t chunk, s_result_t *res)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    tf_reader_t *rd = tf_reader_new(fds[0], c->delim, c->max_item);
    cr_assert_not_null(rd);
    memset(res, 0, sizeof *res);
    size_t off = 0;
    bool eof = false;
    for (int guard = 0; guard < 100000; guard++) {
        const uint8_t *data = NULL;
        size_t len = 0;
        uint64_t line = 0;
        tf_rd_status_t st = tf_reader_next(rd, &data, &len, &line);
        if (st == TF_RD_EOF) {
            cr_assert(eof, "%s: EOF before the input was closed", c->name);
            break;
        }
        if (st == TF_RD_AGAIN) {
            //  Write the next few bytes (or close), then read exactly those.
            if (off < c->input_len) {
                size_t n = c->input_len - off < chunk ? c->input_len - off : chunk;
                cr_assert_eq(write(fds[1], c->input + off, n), (ssize_t)n);
                off += n;
                cr_assert_eq(tf_reader_fill(rd), (ssize_t)n);
            } else {
                cr_assert_not(eof, "%s: AGAIN after EOF", c->name);
                close(fds[1]);
                eof = true;
                cr_assert_eq(tf_reader_fill(rd), 0);
            }
            continue;
        }
        s_record(res, st, data, len, line);
    }
    cr_assert(tf_reader_eof(rd));
    tf_reader_destroy(&rd);
    close(fds[0]);
}

Test(reader, table_tiny_chunks)
{
    for (size_t chunk = 1; chunk <= 4; chunk++) {
        for (size_t i = 0; i < sizeof s_cases / sizeof s_cases[0]; i++) {
            const s_case_t *c = &s_cases[i];
            s_result_t *res = malloc(sizeof *res);
            s_read_chunked(c, chunk, res);
            char name[128];
            snprintf(name, sizeof name, "%s (chunks of %zu)", c->name, chunk);
            s_expect(res, c->want, c->nwant, name);
            free(res);
        }
    }
}

Test(reader, nonblocking_empty_pipe)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    cr_assert_eq(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
    tf_reader_t *rd = tf_reader_new(fds[0], '\n', 100);
    const uint8_t *data;
    size_t len;
    uint64_t line;
    cr_assert_eq(tf_reader_next(rd, &data, &len, &line), TF_RD_AGAIN);
    errno = 0;
    cr_assert_eq(tf_reader_fill(rd), -1);
    cr_assert_eq(errno, EAGAIN);
    cr_assert_not(tf_reader_eof(rd));
    cr_assert_eq(write(fds[1], "x\ny", 3), 3);
    cr_assert_eq(tf_reader_fill(rd), 3);
    cr_assert_eq(tf_reader_next(rd, &data, &len, &line), TF_RD_ITEM);
    cr_assert_eq(len, 1);
    cr_assert_eq(data[0], 'x');
    cr_assert_eq(line, 1);
    //  "y" has no terminator yet: wait for more.
    cr_assert_eq(tf_reader_next(rd, &data, &len, &line), TF_RD_AGAIN);
    cr_assert_eq(tf_reader_fill(rd), -1);
    cr_assert_eq(errno, EAGAIN);
    close(fds[1]);
    cr_assert_eq(tf_reader_fill(rd), 0);
    cr_assert_eq(tf_reader_next(rd, &data, &len, &line), TF_RD_ITEM);
    cr_assert_eq(len, 1);
    cr_assert_eq(data[0], 'y');
    cr_assert_eq(line, 2);
    cr_assert_eq(tf_reader_next(rd, &data, &len, &line), TF_RD_EOF);
    tf_reader_destroy(&rd);
    close(fds[0]);
}

Test(reader, unget)
{
    const char text[] = "one\ntwo\nthree";
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    cr_assert_eq(write(fds[1], text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fds[1]);
    tf_reader_t *rd = tf_reader_new(fds[0], '\n', 100);
    const uint8_t *data;
    size_t len;
    uint64_t line;
    cr_assert_eq(tf_reader_next(rd, &data, &len, &line), TF_RD_AGAIN);
    cr_assert_eq(tf_reader_fill(rd), (ssize_t)(sizeof text - 1));
    cr_assert_eq(tf_reader_next(rd, &data, &len, &line), TF_RD_ITEM);
    cr_assert_eq(line, 1);
    tf_reader_unget(rd);
    cr_assert_eq(tf_reader_next(rd, &data, &len, &line), TF_RD_ITEM);
    cr_assert_eq(len, 3);
    cr_assert_eq(memcmp(data, "one", 3), 0);
    cr_assert_eq(line, 1);
    cr_assert_eq(tf_reader_next(rd, &data, &len, &line), TF_RD_ITEM);
    cr_assert_eq(memcmp(data, "two", 3), 0);
    cr_assert_eq(line, 2);
    //  Twice in a row gives back the same item each time.
    tf_reader_unget(rd);
    cr_assert_eq(tf_reader_next(rd, &data, &len, &line), TF_RD_ITEM);
    cr_assert_eq(memcmp(data, "two", 3), 0);
    tf_reader_unget(rd);
    cr_assert_eq(tf_reader_next(rd, &data, &len, &line), TF_RD_ITEM);
    cr_assert_eq(memcmp(data, "two", 3), 0);
    cr_assert_eq(line, 2);
    //  The last item, unterminated, after EOF.
    cr_assert_eq(tf_reader_next(rd, &data, &len, &line), TF_RD_AGAIN);
    cr_assert_eq(tf_reader_fill(rd), 0);
    cr_assert_eq(tf_reader_next(rd, &data, &len, &line), TF_RD_ITEM);
    cr_assert_eq(len, 5);
    cr_assert_eq(line, 3);
    cr_assert(tf_reader_eof(rd));
    tf_reader_unget(rd);
    cr_assert_not(tf_reader_eof(rd));
    cr_assert_eq(tf_reader_next(rd, &data, &len, &line), TF_RD_ITEM);
    cr_assert_eq(len, 5);
    cr_assert_eq(memcmp(data, "three", 5), 0);
    cr_assert_eq(line, 3);
    cr_assert_eq(tf_reader_next(rd, &data, &len, &line), TF_RD_EOF);
    tf_reader_destroy(&rd);
    close(fds[0]);
}

Test(reader, unget_after_refill)
{
    //  An item given back across a fill (buffer compaction) comes back
    //  intact: "ab" is read, then given back, then more input arrives.
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    tf_reader_t *rd = tf_reader_new(fds[0], '\n', 100);
    const uint8_t *data;
    size_t len;
    uint64_t line;
    cr_assert_eq(write(fds[1], "ab\ncd", 5), 5);
    cr_assert_eq(tf_reader_fill(rd), 5);
    cr_assert_eq(tf_reader_next(rd, &data, &len, &line), TF_RD_ITEM);
    tf_reader_unget(rd);
    cr_assert_eq(tf_reader_next(rd, &data, &len, &line), TF_RD_ITEM);
    cr_assert_eq(len, 2);
    cr_assert_eq(tf_reader_next(rd, &data, &len, &line), TF_RD_AGAIN);
    cr_assert_eq(write(fds[1], "e\n", 2), 2);
    cr_assert_eq(tf_reader_fill(rd), 2);
    cr_assert_eq(tf_reader_next(rd, &data, &len, &line), TF_RD_ITEM);
    cr_assert_eq(len, 3);
    cr_assert_eq(memcmp(data, "cde", 3), 0);
    cr_assert_eq(line, 2);
    tf_reader_unget(rd);
    cr_assert_eq(tf_reader_next(rd, &data, &len, &line), TF_RD_ITEM);
    cr_assert_eq(memcmp(data, "cde", 3), 0);
    cr_assert_eq(line, 2);
    close(fds[1]);
    tf_reader_destroy(&rd);
    close(fds[0]);
}

//  A file larger than the reader's buffer: items of growing sizes, one
//  longer than a read chunk, every byte and line number checked.
Test(reader, large_file)
{
    char path[] = "/tmp/tf_test_reader_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    unlink(path);
    enum { NLINES = 20000, BIG = 700 * 1024 };
    FILE *f = fdopen(dup(fd), "w");
    cr_assert_not_null(f);
    for (int i = 0; i < NLINES; i++) {
        if (i == NLINES / 2) {
            for (int k = 0; k < BIG; k++)
                fputc('a' + k % 26, f);
            fputc('\n', f);
            continue;
        }
        fprintf(f, "%d:", i);
        for (int k = 0; k < i % 97; k++)
            fputc('x', f);
        fputc('\n', f);
    }
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
    tf_reader_t *rd = tf_reader_new(fd, '\n', 1 << 20);
    int i = 0;
    for (int guard = 0; guard < 10000000; guard++) {
        const uint8_t *data;
        size_t len;
        uint64_t line;
        tf_rd_status_t st = tf_reader_next(rd, &data, &len, &line);
        if (st == TF_RD_AGAIN) {
            cr_assert_geq(tf_reader_fill(rd), 0);
            continue;
        }
        if (st == TF_RD_EOF)
            break;
        cr_assert_eq(st, TF_RD_ITEM);
        cr_assert_eq(line, (uint64_t)i + 1);
        if (i == NLINES / 2) {
            cr_assert_eq(len, (size_t)BIG);
            for (size_t k = 0; k < len; k++)
                cr_assert_eq(data[k], 'a' + k % 26, "byte %zu of the big item", k);
        } else {
            char want[128];
            int n = snprintf(want, sizeof want, "%d:", i);
            for (int k = 0; k < i % 97; k++)
                want[n++] = 'x';
            cr_assert_eq(len, (size_t)n, "line %d: length %zu, expected %d", i + 1, len, n);
            cr_assert_eq(memcmp(data, want, len), 0, "line %d differs", i + 1);
        }
        i++;
    }
    cr_assert_eq(i, NLINES);
    tf_reader_destroy(&rd);
    close(fd);
}

//  An over-long item far larger than the buffer is skipped without being
//  buffered, and the reader goes on with the next item.
Test(reader, huge_item_skipped)
{
    char path[] = "/tmp/tf_test_reader_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    unlink(path);
    enum { HUGE = 3 * 1024 * 1024 };
    char *big = malloc(HUGE);
    memset(big, 'z', HUGE);
    cr_assert_eq(write(fd, "first\n", 6), 6);
    cr_assert_eq(write(fd, big, HUGE), HUGE);
    cr_assert_eq(write(fd, "\nafter\n", 7), 7);
    free(big);
    cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
    tf_reader_t *rd = tf_reader_new(fd, '\n', 1000);
    s_result_t *res = calloc(1, sizeof *res);
    s_drain(rd, res);
    static const s_want_t want[] = {IT("first", 1), LONG(2), IT("after", 3)};
    s_expect(res, want, 3, "huge item");
    free(res);
    tf_reader_destroy(&rd);
    close(fd);
}

Test(reader, toolong_sets_no_data)
{
    //  A skipped item reports no data and length 0, whatever the caller's
    //  variables held before (the ventilator sizes its budget check by it).
    int p[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(write(p[1], "0123456789abcdef\nok\n0123456789abcdef", 37), 37);
    close(p[1]);
    tf_reader_t *rd = tf_reader_new(p[0], '\n', 8);
    const uint8_t *data = (const uint8_t *)"stale";
    size_t len = 12345;
    uint64_t line = 0;
    tf_rd_status_t st;
    while ((st = tf_reader_next(rd, &data, &len, &line)) == TF_RD_AGAIN)
        cr_assert_geq(tf_reader_fill(rd), 0);
    cr_assert_eq(st, TF_RD_TOOLONG);
    cr_assert_null(data);
    cr_assert_eq(len, 0);
    cr_assert_eq(line, 1);
    while ((st = tf_reader_next(rd, &data, &len, &line)) == TF_RD_AGAIN)
        cr_assert_geq(tf_reader_fill(rd), 0);
    cr_assert_eq(st, TF_RD_ITEM);
    cr_assert_eq(len, 2);
    cr_assert_eq(memcmp(data, "ok", 2), 0);
    len = 777;
    data = (const uint8_t *)"stale";
    while ((st = tf_reader_next(rd, &data, &len, &line)) == TF_RD_AGAIN)
        cr_assert_geq(tf_reader_fill(rd), 0);
    cr_assert_eq(st, TF_RD_TOOLONG, "unterminated last item over the limit");
    cr_assert_null(data);
    cr_assert_eq(len, 0);
    cr_assert_eq(line, 3);
    tf_reader_destroy(&rd);
    close(p[0]);
}
