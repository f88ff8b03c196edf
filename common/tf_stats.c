/*  tf_stats.c -- latency histogram, progress bar. */
#include "tf_stats.h"

#include <cjson/cJSON.h>
#include <czmq.h>
#include "tf_log.h"
#include <errno.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_GROWTH 1.05

static int s_bucket(uint64_t us)
{
    if (us <= 1)
        return 0;
    int b = (int)(log((double)us) / log(S_GROWTH)) + 1;
    return b >= TF_LAT_BUCKETS ? TF_LAT_BUCKETS - 1 : b;
}

void tf_latency_init(tf_latency_t *self)
{
    memset(self, 0, sizeof *self);
}

void tf_latency_add(tf_latency_t *self, uint64_t us)
{
    self->count++;
    self->sum_us += us;
    if (us > self->max_us)
        self->max_us = us;
    self->buckets[s_bucket(us)]++;
}

uint64_t tf_latency_percentile(const tf_latency_t *self, double p)
{
    if (self->count == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)self->count);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (int b = 0; b < TF_LAT_BUCKETS; b++) {
        seen += self->buckets[b];
        if (seen >= rank) {
            //  The last bucket has no upper bound but the largest value.
            if (b == TF_LAT_BUCKETS - 1)
                return self->max_us;
            uint64_t upper = b == 0 ? 1 : (uint64_t)pow(S_GROWTH, b);
            return upper > self->max_us ? self->max_us : upper;
        }
    }
    return self->max_us;
}

void tf_progress_init(tf_progress_t *self, int mode)
{
    memset(self, 0, sizeof *self);
    self->enabled = mode == 1 || (mode < 0 && isatty(STDERR_FILENO));
    self->start_ms = tf_now_ms();
}

void tf_progress_total(tf_progress_t *self, uint64_t total)
{
    self->total = total;
    self->total_known = true;
}

static void s_duration(char *buf, size_t cap, double s)
{
    if (s < 60)
        snprintf(buf, cap, "%.0fs", s);
    else if (s < 3600)
        snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else
        snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
}

void tf_progress_format(char *buf, size_t cap, uint64_t done, uint64_t total, bool total_known,
                        uint64_t failed, uint32_t workers, int64_t elapsed_ms, int width)
{
    double secs = elapsed_ms > 0 ? (double)elapsed_ms / 1000.0 : 0.001;
    double rate = (double)(done + failed) / secs;
    char eta[32] = "?";
    char bar[64] = "";
    if (total_known && total > 0) {
        double frac = (double)(done + failed) / (double)total;
        if (frac > 1)
            frac = 1;
        if (width > (int)sizeof bar - 3)
            width = (int)sizeof bar - 3;
        if (width < 0)
            width = 0;
        int fill = (int)(frac * width);
        bar[0] = '[';
        for (int i = 0; i < width; i++)
            bar[1 + i] = i < fill ? '#' : '.';
        bar[1 + width] = ']';
        bar[2 + width] = '\0';
        if (rate > 0)
            s_duration(eta, sizeof eta,
                       (double)(total - (done + failed < total ? done + failed : total)) / rate);
        snprintf(buf, cap, "%s %llu/%llu %3.0f%% %.1f/s ETA %s failed %llu workers %u", bar,
                 (unsigned long long)(done + failed), (unsigned long long)total, frac * 100.0, rate,
                 eta, (unsigned long long)failed, workers);
    } else
        snprintf(buf, cap, "%llu done %.1f/s failed %llu workers %u",
                 (unsigned long long)(done + failed), rate, (unsigned long long)failed, workers);
}

static void s_draw(tf_progress_t *self, uint64_t done, uint64_t failed, uint32_t workers)
{
    char line[256];
    int64_t now = tf_now_ms();
    tf_progress_format(line, sizeof line, done, self->total, self->total_known, failed, workers,
                       now - self->start_ms, 30);
    fprintf(stderr, "\r\033[K%s", line);
    fflush(stderr);
    self->drawn = true;
    self->last_ms = now;
}

void tf_progress_update(tf_progress_t *self, uint64_t done, uint64_t failed, uint32_t workers)
{
    if (!self->enabled)
        return;
    if (tf_now_ms() - self->last_ms < 200)
        return;
    s_draw(self, done, failed, workers);
}

void tf_progress_finish(tf_progress_t *self, uint64_t done, uint64_t failed, uint32_t workers)
{
    if (!self->enabled)
        return;
    s_draw(self, done, failed, workers);
    fputc('\n', stderr);
}

int tf_stats_write_json(cJSON *root, const char *path, const char *who)
{
    char *text = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    int rc = -1;
    FILE *f = text ? fopen(path, "w") : NULL;
    if (f) {
        rc = fputs(text, f) < 0 || fputc('\n', f) == EOF ? -1 : 0;
        if (fclose(f))
            rc = -1;
    }
    if (rc)
        tf_error("%s: cannot write --stats file '%s': %s", who, path,
                 text ? strerror(errno) : "out of memory");
    free(text);
    return rc;
}
