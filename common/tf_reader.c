/*  tf_reader.c -- streaming item reader. */
#include "tf_reader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define S_CHUNK (256 * 1024)

struct _tf_reader_t {
    int fd;
    char delim;
    size_t max_item;
    uint8_t *buf;
    size_t cap;
    size_t start; //  first unconsumed byte
    size_t end;   //  end of valid data
    size_t scan;  //  bytes from start already scanned without a delimiter
    bool eof;
    bool skipping; //  discarding the rest of an over-long item
    uint64_t line;
    size_t prev_start; //  for unget
    uint64_t prev_line;
};

tf_reader_t *tf_reader_new(int fd, char delim, size_t max_item)
{
    tf_reader_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cap = S_CHUNK * 2;
    self->buf = malloc(self->cap);
    if (!self->buf) {
        free(self);
        return NULL;
    }
    self->fd = fd;
    self->delim = delim;
    self->max_item = max_item;
    return self;
}

void tf_reader_destroy(tf_reader_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->buf);
    free(*self_p);
    *self_p = NULL;
}

bool tf_reader_eof(const tf_reader_t *self)
{
    return self->eof && self->start == self->end;
}

ssize_t tf_reader_fill(tf_reader_t *self)
{
    if (self->eof)
        return 0;
    //  Compact, then grow so that there is room for a chunk.
    if (self->start > 0) {
        memmove(self->buf, self->buf + self->start, self->end - self->start);
        self->end -= self->start;
        self->start = 0;
    }
    if (self->cap - self->end < S_CHUNK) {
        size_t cap = self->cap * 2;
        uint8_t *b = realloc(self->buf, cap);
        if (!b) {
            errno = ENOMEM;
            return -1;
        }
        self->buf = b;
        self->cap = cap;
    }
    ssize_t n;
    do
        n = read(self->fd, self->buf + self->end, self->cap - self->end);
    while (n < 0 && errno == EINTR);
    if (n == 0)
        self->eof = true;
    if (n > 0)
        self->end += (size_t)n;
    return n;
}

void tf_reader_unget(tf_reader_t *self)
{
    self->start = self->prev_start;
    self->line = self->prev_line;
    self->scan = 0;
}

tf_rd_status_t tf_reader_next(tf_reader_t *self, const uint8_t **data, size_t *len,
                              uint64_t *line_p)
{
    self->prev_start = self->start;
    self->prev_line = self->line;
    for (;;) {
        size_t avail = self->end - self->start;
        uint8_t *p = self->buf + self->start;
        uint8_t *hit =
            avail > self->scan ? memchr(p + self->scan, self->delim, avail - self->scan) : NULL;
        if (hit) {
            size_t n = (size_t)(hit - p);
            self->start += n + 1;
            self->scan = 0;
            self->line++;
            if (self->skipping || n > self->max_item) {
                self->skipping = false;
                *data = NULL;
                *len = 0;
                *line_p = self->line;
                return TF_RD_TOOLONG;
            }
            *data = p;
            *len = n;
            *line_p = self->line;
            return TF_RD_ITEM;
        }
        self->scan = avail;
        if (avail > self->max_item) {
            //  Over the limit and still no terminator: drop what we have.
            self->skipping = true;
            self->start = self->end;
            self->scan = 0;
            avail = 0;
        }
        if (!self->eof)
            return TF_RD_AGAIN;
        if (avail == 0 && !self->skipping)
            return TF_RD_EOF;
        //  Last item without a terminator.
        self->start = self->end;
        self->scan = 0;
        self->line++;
        *line_p = self->line;
        if (self->skipping) {
            self->skipping = false;
            *data = NULL;
            *len = 0;
            return TF_RD_TOOLONG;
        }
        *data = p;
        *len = avail;
        return TF_RD_ITEM;
    }
}
