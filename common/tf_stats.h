/*  tf_stats.h -- latency histogram, progress bar and the JSON run report. */
#ifndef TF_STATS_H_INCLUDED
#define TF_STATS_H_INCLUDED

#include "tf_common.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Log-scale histogram of durations in microseconds (about 5% resolution).
#define TF_LAT_BUCKETS 512
typedef struct {
    uint64_t count;
    uint64_t sum_us;
    uint64_t max_us;
    uint64_t buckets[TF_LAT_BUCKETS];
} tf_latency_t;

void tf_latency_init(tf_latency_t *self);
void tf_latency_add(tf_latency_t *self, uint64_t us);
//  Percentile p in [0, 100]; 0 when empty.
uint64_t tf_latency_percentile(const tf_latency_t *self, double p);

//  Progress bar on stderr: done/total when known, rate, ETA, failures,
//  workers. Redrawn at most 5 times a second.
typedef struct {
    bool enabled;
    int64_t start_ms;
    int64_t last_ms;
    uint64_t total; //  0 = not known yet
    bool total_known;
    bool drawn;
} tf_progress_t;

//  mode: 1 on, 0 off, -1 when stderr is a terminal.
void tf_progress_init(tf_progress_t *self, int mode);
void tf_progress_total(tf_progress_t *self, uint64_t total);
void tf_progress_update(tf_progress_t *self, uint64_t done, uint64_t failed, uint32_t workers);
void tf_progress_finish(tf_progress_t *self, uint64_t done, uint64_t failed, uint32_t workers);
//  Formats one progress line into buf (no escape codes); for tests.
void tf_progress_format(char *buf, size_t cap, uint64_t done, uint64_t total, bool total_known,
                        uint64_t failed, uint32_t workers, int64_t elapsed_ms, int width);

//  Writes a --stats report: prints `root` as JSON (plus a newline) to
//  `path` and deletes it. On failure logs "<who>: cannot write --stats
//  file ..." and returns -1; 0 on success.
struct cJSON;
int tf_stats_write_json(struct cJSON *root, const char *path, const char *who);

#ifdef __cplusplus
}
#endif
#endif
