/*  tf_common.h -- shared helpers: time, growable buffers, checked numbers.

    Everything here is small and has no ZeroMQ dependency, so that the unit
    tests and the fuzz target can link it alone.
*/
#ifndef TF_COMMON_H_INCLUDED
#define TF_COMMON_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TF_UNUSED(x) ((void)(x))

//  Monotonic clock in microseconds / milliseconds.
int64_t tf_now_us(void);
int64_t tf_now_ms(void);

//  Growable byte buffer. Owns its memory.
typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
} tf_buf_t;

void tf_buf_init(tf_buf_t *self);
void tf_buf_free(tf_buf_t *self);
//  Grows the buffer to hold `extra` more bytes (tf_buf_reserve's slow path).
int tf_buf_grow(tf_buf_t *self, size_t extra);
//  Ensures room for `extra` more bytes. Returns 0, or -1 on allocation failure.
//  Inline: called several times per item on the hot path, and almost
//  always there is room.
static inline int tf_buf_reserve(tf_buf_t *self, size_t extra)
{
    return extra <= self->cap - self->len ? 0 : tf_buf_grow(self, extra);
}
int tf_buf_append(tf_buf_t *self, const void *data, size_t len);
//  Drops the first `n` bytes (n <= len).
void tf_buf_consume(tf_buf_t *self, size_t n);

//  Checked conversions. Return 0 on success, -1 when `text` is not a whole
//  number in [min, max] (trailing garbage, empty, overflow all fail).
int tf_parse_i64(const char *text, int64_t min, int64_t max, int64_t *value_p);
//  Seconds as a decimal ("1.5") into milliseconds, in [0, max_ms].
int tf_parse_seconds_ms(const char *text, int64_t max_ms, int64_t *ms_p);

//  Duplicates a string; aborts on out-of-memory is not done: returns NULL.
char *tf_strdup(const char *s);

//  Removes the files directly inside `dir`, then `dir` itself (no
//  recursion: for taskfarm's own scratch directories).
void tf_remove_dir(const char *dir);

//  Number of online CPUs, at least 1.
int tf_online_cpus(void);
//  The smallest power of two >= n: ring sizes, so that a sequence number
//  finds its slot with a mask instead of a division. 0 when n > 2^31 (no
//  such uint32_t).
uint32_t tf_pow2_at_least(uint32_t n);

#ifdef __cplusplus
}
#endif
#endif
