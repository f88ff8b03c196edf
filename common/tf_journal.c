/*  tf_journal.c -- the sink's commit journal for --journal / --resume. */
#include "tf_journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_HEADER "taskfarm-journal 1\n"

struct _tf_journal_t {
    int fd;
    uint64_t last_next;
    uint64_t last_offset;
};

int tf_journal_read(const char *path, tf_journal_state_t *state, char *err, size_t errlen)
{
    state->next = 0;
    state->offset = 0;
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
    if ((size_t)n != strlen(S_HEADER) || memcmp(line, S_HEADER, (size_t)n) != 0) {
        snprintf(err, errlen, "'%s' is not a taskfarm journal", path);
        rc = -1;
    }
    uint64_t lineno = 1;
    while (rc == 0 && (n = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (line[n - 1] != '\n')
            break; //  torn last record
        char c;
        uint64_t next, offset;
        char extra;
        if (memchr(line, '\0', (size_t)n) || strspn(line + 1, " 0123456789") != (size_t)n - 2 ||
            sscanf(line, "%c %" SCNu64 " %" SCNu64 "%c", &c, &next, &offset, &extra) != 4 ||
            c != 'C' || extra != '\n') {
            //  A damaged record in the middle is not a crash artefact.
            int c2 = fgetc(f);
            if (c2 == EOF)
                break;
            snprintf(err, errlen, "journal '%s' line %llu is damaged", path,
                     (unsigned long long)lineno);
            rc = -1;
            break;
        }
        if (next < state->next || offset < state->offset) {
            snprintf(err, errlen, "journal '%s' line %llu goes backwards", path,
                     (unsigned long long)lineno);
            rc = -1;
            break;
        }
        state->next = next;
        state->offset = offset;
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
    int n = snprintf(rec, sizeof rec, S_HEADER "C %" PRIu64 " %" PRIu64 "\n", state->next,
                     state->offset);
    if (write(self->fd, rec, (size_t)n) != n || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write journal '%s': %s", path, strerror(errno));
        close(self->fd);
        unlink(tmp);
        free(self);
        return NULL;
    }
    self->last_next = state->next;
    self->last_offset = state->offset;
    return self;
}

int tf_journal_commit(tf_journal_t *self, uint64_t next, uint64_t offset)
{
    if (next == self->last_next && offset == self->last_offset)
        return 0;
    char rec[64];
    int n = snprintf(rec, sizeof rec, "C %" PRIu64 " %" PRIu64 "\n", next, offset);
    ssize_t w;
    do
        w = write(self->fd, rec, (size_t)n);
    while (w < 0 && errno == EINTR);
    if (w != n)
        return -1;
    self->last_next = next;
    self->last_offset = offset;
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
