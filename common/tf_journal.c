/*  tf_journal.c -- the sink's commit journal for --journal / --resume. */
#include "tf_journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_HEADER_V1 "taskfarm-journal 1\n" //  records "C next offset"
#define S_HEADER "taskfarm-journal 2\n"    //  records "C next offset failed"

struct _tf_journal_t {
    int fd;
    tf_journal_state_t last;
};

//  Parses one complete record line (with its '\n') of a journal of the
//  given version into *st: "C", then 2 (version 1) or 3 numbers, each after
//  one space, then the newline. Returns -1 if it is not one (a number out of
//  range included).
static int s_parse_record(const char *line, size_t n, int version, tf_journal_state_t *st)
{
    if (n < 2 || line[0] != 'C' || line[n - 1] != '\n')
        return -1;
    uint64_t *fields[3] = {&st->next, &st->offset, &st->failed};
    int count = version == 1 ? 2 : 3;
    st->failed = 0;
    const char *p = line + 1;
    for (int i = 0; i < count; i++) {
        if (p[0] != ' ' || p[1] < '0' || p[1] > '9')
            return -1;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p + 1, &end, 10);
        if (errno == ERANGE)
            return -1;
        *fields[i] = (uint64_t)v;
        p = end;
    }
    //  Anything else (a NUL, a sign, another field) stops short of the end.
    return p == line + n - 1 ? 0 : -1;
}

//  One record line, as both open and commit write it.
static int s_format_record(char *buf, size_t cap, const tf_journal_state_t *st)
{
    return snprintf(buf, cap, "C %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", st->next, st->offset,
                    st->failed);
}

int tf_journal_read(const char *path, tf_journal_state_t *state, char *err, size_t errlen)
{
    state->next = 0;
    state->offset = 0;
    state->failed = 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot read journal '%s': %s", path, strerror(errno));
        return -1;
    }
    //  getline, not fgets: a line of any length or holding a NUL byte is
    //  seen whole, so that only a true last line can pass as torn.
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    ssize_t n = getline(&line, &cap, f);
    if (n < 0) {
        if (ferror(f)) { //  e.g. a directory
            snprintf(err, errlen, "cannot read journal '%s': %s", path, strerror(errno));
            rc = -1;
        }
        goto done; //  empty: nothing committed
    }
    int version = 0;
    if ((size_t)n == strlen(S_HEADER) && memcmp(line, S_HEADER, (size_t)n) == 0)
        version = 2;
    else if ((size_t)n == strlen(S_HEADER_V1) && memcmp(line, S_HEADER_V1, (size_t)n) == 0)
        version = 1; //  written before failures were counted: none known
    else {
        snprintf(err, errlen, "'%s' is not a taskfarm journal", path);
        rc = -1;
    }
    uint64_t lineno = 1;
    while (rc == 0 && (n = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (line[n - 1] != '\n')
            break; //  torn last record
        tf_journal_state_t rec;
        if (s_parse_record(line, (size_t)n, version, &rec)) {
            //  A damaged record in the middle is not a crash artefact.
            int c2 = fgetc(f);
            if (c2 == EOF)
                break;
            snprintf(err, errlen, "journal '%s' line %llu is damaged", path,
                     (unsigned long long)lineno);
            rc = -1;
            break;
        }
        if (rec.next < state->next || rec.offset < state->offset || rec.failed < state->failed ||
            rec.failed > rec.next) {
            snprintf(err, errlen, "journal '%s' line %llu %s", path, (unsigned long long)lineno,
                     rec.failed > rec.next ? "counts more failed items than items"
                                           : "goes backwards");
            rc = -1;
            break;
        }
        *state = rec;
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "cannot read journal '%s': %s", path, strerror(errno));
        rc = -1;
    }
done:
    free(line);
    fclose(f);
    return rc;
}

tf_journal_t *tf_journal_open(const char *path, const tf_journal_state_t *state, char *err,
                              size_t errlen)
{
    tf_journal_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    //  Write the new journal beside and rename it in, so that a crash here
    //  leaves either the old or the new one.
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        snprintf(err, errlen, "journal path too long");
        free(self);
        return NULL;
    }
    self->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (self->fd < 0) {
        snprintf(err, errlen, "cannot create journal '%s': %s", tmp, strerror(errno));
        free(self);
        return NULL;
    }
    char rec[128];
    memcpy(rec, S_HEADER, strlen(S_HEADER));
    int n = (int)strlen(S_HEADER) +
            s_format_record(rec + strlen(S_HEADER), sizeof rec - strlen(S_HEADER), state);
    if (write(self->fd, rec, (size_t)n) != n || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write journal '%s': %s", path, strerror(errno));
        close(self->fd);
        unlink(tmp);
        free(self);
        return NULL;
    }
    self->last = *state;
    return self;
}

int tf_journal_commit(tf_journal_t *self, const tf_journal_state_t *state)
{
    if (state->next == self->last.next && state->offset == self->last.offset &&
        state->failed == self->last.failed)
        return 0;
    char rec[96];
    int n = s_format_record(rec, sizeof rec, state);
    ssize_t w;
    do
        w = write(self->fd, rec, (size_t)n);
    while (w < 0 && errno == EINTR);
    if (w != n)
        return -1;
    self->last = *state;
    return 0;
}

void tf_journal_close(tf_journal_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    close((*self_p)->fd);
    free(*self_p);
    *self_p = NULL;
}
