/*  tf_log.c -- logging level and rate limiting. */
#include "tf_log.h"
#include "tf_common.h"

int tf_log_level = 1;

#define S_LINES_PER_SECOND 5

bool tf_log_ratelimit(tf_ratelimit_t *rl)
{
    int64_t now = tf_now_ms();
    if (now - rl->window_start_ms >= 1000) {
        rl->window_start_ms = now;
        rl->count = 0;
    }
    if (rl->count < S_LINES_PER_SECOND) {
        rl->count++;
        return true;
    }
    rl->suppressed++;
    return false;
}

void tf_log_malformed(tf_ratelimit_t *rl, uint64_t *count, const char *who, const char *why)
{
    uint64_t n = count ? ++*count : 0;
    if (!tf_log_ratelimit(rl))
        return;
    if (count)
        tf_warn("%s: dropped malformed message: %s (%llu so far)", who, why, (unsigned long long)n);
    else
        tf_warn("%s: dropped malformed message: %s", who, why);
}
