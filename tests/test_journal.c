/*  test_journal.c -- the sink's commit journal. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tf_journal.h"

#define HEADER "taskfarm-journal 2\n"
#define HEADER_V1 "taskfarm-journal 1\n" //  records without the failure count

static char s_dir[64];
static char s_path[128];

static void s_setup(void)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/tf_test_journal_XXXXXX");
    cr_assert_not_null(mkdtemp(s_dir));
    snprintf(s_path, sizeof s_path, "%s/run.journal", s_dir);
}

static void s_teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    cr_assert_eq(system(cmd), 0);
}

static void s_write(const char *text, size_t len)
{
    FILE *f = fopen(s_path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(text, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

static char *s_slurp(size_t *len_p)
{
    FILE *f = fopen(s_path, "rb");
    cr_assert_not_null(f);
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    *len_p = n;
    return buf;
}

static int s_commit(tf_journal_t *j, uint64_t next, uint64_t offset, uint64_t failed)
{
    tf_journal_state_t st = {next, offset, failed};
    return tf_journal_commit(j, &st);
}

//  Reads the journal into *st and checks it holds (next, offset, failed).
static void s_expect_state(tf_journal_state_t *st, uint64_t next, uint64_t offset, uint64_t failed)
{
    char err[256] = "";
    cr_assert_eq(tf_journal_read(s_path, st, err, sizeof err), 0, "%s", err);
    cr_assert_eq(st->next, next);
    cr_assert_eq(st->offset, offset);
    cr_assert_eq(st->failed, failed);
}

TestSuite(journal, .init = s_setup, .fini = s_teardown);

Test(journal, missing_file_is_empty_state)
{
    tf_journal_state_t st = {99, 99, 99};
    char err[256] = "";
    cr_assert_eq(tf_journal_read(s_path, &st, err, sizeof err), 0, "%s", err);
    cr_assert_eq(st.next, 0);
    cr_assert_eq(st.offset, 0);
    cr_assert_eq(st.failed, 0);
}

Test(journal, empty_file_is_empty_state)
{
    s_write("", 0);
    tf_journal_state_t st = {99, 99, 99};
    char err[256] = "";
    cr_assert_eq(tf_journal_read(s_path, &st, err, sizeof err), 0, "%s", err);
    cr_assert_eq(st.next, 0);
    cr_assert_eq(st.offset, 0);
}

Test(journal, write_then_read_last)
{
    tf_journal_state_t start = {0, 0, 0};
    char err[256] = "";
    tf_journal_t *j = tf_journal_open(s_path, &start, err, sizeof err);
    cr_assert_not_null(j, "%s", err);
    cr_assert_eq(s_commit(j, 10, 120, 0), 0);
    cr_assert_eq(s_commit(j, 10, 120, 0), 0); //  unchanged: not written again
    cr_assert_eq(s_commit(j, 12, 120, 2), 0); //  two items failed: no bytes
    cr_assert_eq(s_commit(j, 25, 300, 2), 0);
    cr_assert_eq(s_commit(j, UINT64_MAX - 1, UINT64_MAX, UINT64_MAX - 1), 0);
    tf_journal_close(&j);
    cr_assert_null(j);
    tf_journal_close(&j);

    size_t len;
    const char *text = s_slurp(&len);
    cr_assert_str_eq(text, HEADER "C 0 0 0\nC 10 120 0\nC 12 120 2\nC 25 300 2\n"
                                  "C 18446744073709551614 18446744073709551615 "
                                  "18446744073709551614\n");
    //  The temporary file was renamed away.
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", s_path);
    cr_assert_eq(access(tmp, F_OK), -1);

    tf_journal_state_t st;
    cr_assert_eq(tf_journal_read(s_path, &st, err, sizeof err), 0, "%s", err);
    cr_assert_eq(st.next, UINT64_MAX - 1);
    cr_assert_eq(st.offset, UINT64_MAX);
    cr_assert_eq(st.failed, UINT64_MAX - 1);
}

Test(journal, reopen_starts_from_state)
{
    //  A resumed run rewrites the journal with its starting state first.
    const char text[] = HEADER "C 1 1 0\nC 5 50 1\nC 7 70 1\n";
    s_write(text, sizeof text - 1);
    tf_journal_state_t st;
    s_expect_state(&st, 7, 70, 1);
    char err[256] = "";
    tf_journal_t *j = tf_journal_open(s_path, &st, err, sizeof err);
    cr_assert_not_null(j, "%s", err);
    cr_assert_eq(s_commit(j, 7, 70, 1), 0); //  same as the first record
    cr_assert_eq(s_commit(j, 9, 95, 1), 0);
    tf_journal_close(&j);
    size_t len;
    cr_assert_str_eq(s_slurp(&len), HEADER "C 7 70 1\nC 9 95 1\n");
    s_expect_state(&st, 9, 95, 1);
}

Test(journal, version_1_is_read_and_rewritten_as_version_2)
{
    //  A journal of a release that did not count failures: none known.
    const char text[] = HEADER_V1 "C 5 50\nC 7 70\n";
    s_write(text, sizeof text - 1);
    tf_journal_state_t st = {0, 0, 99};
    s_expect_state(&st, 7, 70, 0);
    char err[256] = "";
    tf_journal_t *j = tf_journal_open(s_path, &st, err, sizeof err);
    cr_assert_not_null(j, "%s", err);
    cr_assert_eq(s_commit(j, 8, 80, 0), 0);
    tf_journal_close(&j);
    size_t len;
    cr_assert_str_eq(s_slurp(&len), HEADER "C 7 70 0\nC 8 80 0\n");
}

Test(journal, open_in_missing_directory)
{
    char path[192];
    snprintf(path, sizeof path, "%s/no/such/dir/j", s_dir);
    tf_journal_state_t st = {0, 0, 0};
    char err[256] = "";
    cr_assert_null(tf_journal_open(path, &st, err, sizeof err));
    cr_assert_not_null(strstr(err, "no/such/dir"), "%s", err);
}

typedef struct {
    const char *name;
    const char *text;
    int rc;
    uint64_t next, offset, failed; //  state when rc == 0
    const char *needle;            //  error text when rc == -1
} s_case_t;

static const s_case_t s_cases[] = {
    {"header only", HEADER, 0, 0, 0, 0, NULL},
    {"one record", HEADER "C 3 30 1\n", 0, 3, 30, 1, NULL},
    {"torn last line", HEADER "C 3 30 0\nC 5 5 0", 0, 3, 30, 0, NULL},
    {"torn last line, digits only", HEADER "C 3 30 0\nC 1", 0, 3, 30, 0, NULL},
    {"torn last line, one byte", HEADER "C 3 30 0\nC", 0, 3, 30, 0, NULL},
    {"torn first record", HEADER "C 12", 0, 0, 0, 0, NULL},
    {"equal records", HEADER "C 3 30 2\nC 3 30 2\n", 0, 3, 30, 2, NULL},
    {"empty output, items failed", HEADER "C 0 0 0\nC 4 0 4\n", 0, 4, 0, 4, NULL},
    {"damaged complete last line", HEADER "C 3 30 0\nX 9\n", 0, 3, 30, 0, NULL},
    {"damaged middle line", HEADER "C 3 30 0\nX 4 40 0\nC 5 50 0\n", -1, 0, 0, 0, "line 3"},
    {"garbage middle line", HEADER "C 3 30 0\nhello\nC 5 50 0\n", -1, 0, 0, 0, "line 3"},
    {"empty middle line", HEADER "C 3 30 0\n\nC 5 50 0\n", -1, 0, 0, 0, "line 3"},
    {"trailing junk in record", HEADER "C 3 30 0 x\nC 5 50 0\n", -1, 0, 0, 0, "line 2"},
    {"missing field", HEADER "C 3 30\nC 5 50 0\n", -1, 0, 0, 0, "line 2"},
    {"extra field", HEADER "C 3 30 0 0\nC 5 50 0\n", -1, 0, 0, 0, "line 2"},
    {"version 1", HEADER_V1 "C 3 30\nC 5 50\n", 0, 5, 50, 0, NULL},
    {"version 1 with a failure count", HEADER_V1 "C 3 30 1\nC 5 50\n", -1, 0, 0, 0, "line 2"},
    {"not a journal", "hello world\n", -1, 0, 0, 0, "not a taskfarm journal"},
    {"other version", "taskfarm-journal 3\nC 1 1 0\n", -1, 0, 0, 0, "not a taskfarm journal"},
    {"header without newline", "taskfarm-journal 2", -1, 0, 0, 0, "not a taskfarm journal"},
    {"binary",
     "\x7f"
     "ELF\x02\x01\x01\n\n",
     -1, 0, 0, 0, "not a taskfarm journal"},
    {"next goes backwards", HEADER "C 5 50 0\nC 4 60 0\n", -1, 0, 0, 0, "backwards"},
    {"offset goes backwards", HEADER "C 5 50 0\nC 6 40 0\n", -1, 0, 0, 0, "backwards"},
    {"failures go backwards", HEADER "C 5 50 2\nC 6 60 1\n", -1, 0, 0, 0, "backwards"},
    {"more failures than items", HEADER "C 5 50 0\nC 6 60 7\n", -1, 0, 0, 0, "more failed"},
    {"negative number", HEADER "C 3 30 0\nC -1 40 0\nC 5 50 0\n", -1, 0, 0, 0, "line 3"},
    {"number out of range", HEADER "C 3 30 0\nC 99999999999999999999 40 0\nC 5 50 0\n", -1, 0, 0, 0,
     "line 3"},
    {"largest numbers", HEADER "C 18446744073709551615 18446744073709551615 5\n", 0, UINT64_MAX,
     UINT64_MAX, 5, NULL},
    {"two spaces", HEADER "C 3 30 0\nC  4 40 0\nC 5 50 0\n", -1, 0, 0, 0, "line 3"},
    {"tab separator", HEADER "C 3 30 0\nC\t4 40 0\nC 5 50 0\n", -1, 0, 0, 0, "line 3"},
    {"backwards after good lines", HEADER "C 1 1 0\nC 2 2 0\nC 3 3 0\nC 2 4 0\n", -1, 0, 0, 0,
     "line 5"},
};

Test(journal, read_table)
{
    for (size_t i = 0; i < sizeof s_cases / sizeof s_cases[0]; i++) {
        const s_case_t *c = &s_cases[i];
        s_write(c->text, strlen(c->text));
        tf_journal_state_t st = {77, 77, 77};
        char err[256] = "";
        int rc = tf_journal_read(s_path, &st, err, sizeof err);
        cr_assert_eq(rc, c->rc, "%s: rc %d, expected %d (%s)", c->name, rc, c->rc, err);
        if (rc == 0) {
            cr_assert_eq(st.next, c->next, "%s: next %llu", c->name, (unsigned long long)st.next);
            cr_assert_eq(st.offset, c->offset, "%s: offset %llu", c->name,
                         (unsigned long long)st.offset);
            cr_assert_eq(st.failed, c->failed, "%s: failed %llu", c->name,
                         (unsigned long long)st.failed);
        } else {
            cr_assert_not_null(strstr(err, c->needle), "%s: error '%s' lacks '%s'", c->name, err,
                               c->needle);
            cr_assert_not_null(strstr(err, s_path), "%s: error '%s' does not name the file",
                               c->name, err);
        }
    }
}

Test(journal, long_damaged_middle_line)
{
    //  A damaged line longer than the reader's line buffer, in the middle of
    //  the file, is damage, not a torn last line.
    char text[1024];
    int n = snprintf(text, sizeof text, HEADER "C 3 30 0\n");
    for (int i = 0; i < 400; i++)
        text[n++] = '9';
    n += snprintf(text + n, sizeof text - (size_t)n, "\nC 5 50 0\n");
    s_write(text, (size_t)n);
    tf_journal_state_t st;
    char err[256] = "";
    cr_assert_eq(tf_journal_read(s_path, &st, err, sizeof err), -1, "accepted, next %llu",
                 (unsigned long long)st.next);
    cr_assert_not_null(strstr(err, "line 3"), "%s", err);
}

Test(journal, nul_in_middle_line)
{
    //  NUL bytes hide the rest of a line from string functions.
    const char text[] = HEADER "C 3 30 0\n\0\0\nC 5 50 0\n";
    s_write(text, sizeof text - 1);
    tf_journal_state_t st;
    char err[256] = "";
    cr_assert_eq(tf_journal_read(s_path, &st, err, sizeof err), -1, "accepted, next %llu",
                 (unsigned long long)st.next);
    cr_assert_not_null(strstr(err, "line 3"), "%s", err);
    const char text2[] = HEADER "C 3 30 0\nC 4\0 40 0\nC 5 50 0\n";
    s_write(text2, sizeof text2 - 1);
    cr_assert_eq(tf_journal_read(s_path, &st, err, sizeof err), -1);
}

Test(journal, long_torn_last_line)
{
    //  ... whereas a long torn last line is still ignored.
    char text[1024];
    int n = snprintf(text, sizeof text, HEADER "C 3 30 0\nC ");
    for (int i = 0; i < 400; i++)
        text[n++] = '9';
    s_write(text, (size_t)n);
    tf_journal_state_t st;
    char err[256] = "";
    cr_assert_eq(tf_journal_read(s_path, &st, err, sizeof err), 0, "%s", err);
    cr_assert_eq(st.next, 3);
    cr_assert_eq(st.offset, 30);
}

Test(journal, unreadable_path)
{
    //  A directory where the journal should be is an error, not "empty".
    tf_journal_state_t st;
    char err[256] = "";
    cr_assert_eq(tf_journal_read(s_dir, &st, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, s_dir), "%s", err);
}

Test(journal, crash_simulation)
{
    //  Commit, then cut the file at every byte: reading never fails and
    //  never goes past what was fully written.
    tf_journal_state_t start = {0, 0, 0};
    char err[256] = "";
    tf_journal_t *j = tf_journal_open(s_path, &start, err, sizeof err);
    cr_assert_not_null(j, "%s", err);
    for (uint64_t k = 1; k <= 20; k++)
        cr_assert_eq(s_commit(j, k * 3, k * 100, k / 2), 0);
    tf_journal_close(&j);
    size_t len = 0;
    const char *text = s_slurp(&len);
    char full[4096];
    memcpy(full, text, len);
    size_t hdr = strlen(HEADER);
    for (size_t cut = hdr; cut <= len; cut++) {
        s_write(full, cut);
        tf_journal_state_t st;
        cr_assert_eq(tf_journal_read(s_path, &st, err, sizeof err), 0, "cut %zu: %s", cut, err);
        //  Expected: the last record whose newline is inside the cut.
        uint64_t want_next = 0, want_off = 0, want_failed = 0;
        size_t line_start = hdr;
        for (size_t p = hdr; p < cut; p++)
            if (full[p] == '\n') {
                unsigned long long a, b, c;
                cr_assert_eq(sscanf(full + line_start, "C %llu %llu %llu", &a, &b, &c), 3);
                want_next = a;
                want_off = b;
                want_failed = c;
                line_start = p + 1;
            }
        cr_assert_eq(st.next, want_next, "cut %zu", cut);
        cr_assert_eq(st.offset, want_off, "cut %zu", cut);
        cr_assert_eq(st.failed, want_failed, "cut %zu", cut);
    }
}
