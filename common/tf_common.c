/*  tf_common.c -- shared helpers: time, growable buffers, checked numbers. */
#include "tf_common.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int64_t tf_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t tf_now_ms(void)
{
    return tf_now_us() / 1000;
}

void tf_buf_init(tf_buf_t *self)
{
    self->data = NULL;
    self->len = 0;
    self->cap = 0;
}

void tf_buf_free(tf_buf_t *self)
{
    free(self->data);
    tf_buf_init(self);
}

int tf_buf_grow(tf_buf_t *self, size_t extra)
{
    if (extra > SIZE_MAX / 2 - self->len)
        return -1;
    size_t need = self->len + extra;
    if (need <= self->cap)
        return 0;
    size_t cap = self->cap ? self->cap : 256;
    while (cap < need)
        cap *= 2;
    uint8_t *data = realloc(self->data, cap);
    if (!data)
        return -1;
    self->data = data;
    self->cap = cap;
    return 0;
}

int tf_buf_append(tf_buf_t *self, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    if (tf_buf_reserve(self, len))
        return -1;
    memcpy(self->data + self->len, data, len);
    self->len += len;
    return 0;
}

void tf_buf_consume(tf_buf_t *self, size_t n)
{
    if (n >= self->len) {
        self->len = 0;
        return;
    }
    memmove(self->data, self->data + n, self->len - n);
    self->len -= n;
}

int tf_parse_i64(const char *text, int64_t min, int64_t max, int64_t *value_p)
{
    if (!text || !*text)
        return -1;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end != '\0')
        return -1;
    if (v < min || v > max)
        return -1;
    *value_p = (int64_t)v;
    return 0;
}

int tf_parse_seconds_ms(const char *text, int64_t max_ms, int64_t *ms_p)
{
    if (!text || !*text)
        return -1;
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end != '\0')
        return -1;
    if (!(v >= 0) || v * 1000.0 > (double)max_ms)
        return -1;
    *ms_p = (int64_t)(v * 1000.0 + 0.5);
    return 0;
}

char *tf_strdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

void tf_remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char file[4096];
        while ((e = readdir(d)))
            if (e->d_name[0] != '.' &&
                snprintf(file, sizeof file, "%s/%s", dir, e->d_name) < (int)sizeof file)
                unlink(file);
        closedir(d);
    }
    rmdir(dir);
}

int tf_online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > INT_MAX ? INT_MAX : (int)n);
}

uint32_t tf_pow2_at_least(uint32_t n)
{
    if (n > (1u << 31))
        return 0;
    uint32_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}
