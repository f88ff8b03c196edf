/*  tf_log.h -- logging through czmq's zsys to stderr, free when the level is off.

    Levels: 0 errors only, 1 warnings and notices (default), 2 info, 3 debug.
    tf_log_ratelimit() lets a noisy source (malformed network input) log at
    most a few lines per second and count the rest.
*/
#ifndef TF_LOG_H_INCLUDED
#define TF_LOG_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

extern int tf_log_level;

#define tf_error(...) zsys_error(__VA_ARGS__)
#define tf_warn(...)                                                                               \
    do {                                                                                           \
        if (tf_log_level >= 1)                                                                     \
            zsys_warning(__VA_ARGS__);                                                             \
    } while (0)
#define tf_info(...)                                                                               \
    do {                                                                                           \
        if (tf_log_level >= 2)                                                                     \
            zsys_info(__VA_ARGS__);                                                                \
    } while (0)
#define tf_debug(...)                                                                              \
    do {                                                                                           \
        if (tf_log_level >= 3)                                                                     \
            zsys_debug(__VA_ARGS__);                                                               \
    } while (0)

//  Rate limiter: returns true when a line may be logged now.
typedef struct {
    int64_t window_start_ms;
    int count;
    uint64_t suppressed;
} tf_ratelimit_t;

bool tf_log_ratelimit(tf_ratelimit_t *rl);
//  A malformed message from the network was dropped: counts it in *count
//  (when not NULL) and logs "WHO: dropped malformed message: WHY", rate
//  limited through `rl`.
void tf_log_malformed(tf_ratelimit_t *rl, uint64_t *count, const char *who, const char *why);

#endif
