/*  tf_fnslot.c -- a worker slot that runs a C map function on its own thread. */
#define _GNU_SOURCE
#include "tf_fnslot.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { S_IDLE, S_QUEUED, S_RUNNING, S_DONE };

struct _tf_fnslot_t {
    tf_fn_t fn;
    int rank;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int state;
    bool stop;
    bool init_done;
    int init_rc;
    void *fn_state;
    const void *data;
    size_t len;
    void *out;
    size_t out_len;
    int rc;
    int pipe_r;
    int pipe_w;
};

static void *s_thread(void *arg)
{
    tf_fnslot_t *self = arg;
    void *state = NULL;
    int rc = self->fn.init ? self->fn.init(self->rank, self->fn.user, &state) : 0;
    pthread_mutex_lock(&self->lock);
    self->fn_state = state;
    self->init_rc = rc;
    self->init_done = true;
    pthread_cond_broadcast(&self->cond);
    while (rc == 0) {
        while (!self->stop && self->state != S_QUEUED)
            pthread_cond_wait(&self->cond, &self->lock);
        if (self->stop)
            break;
        self->state = S_RUNNING;
        const void *data = self->data;
        size_t len = self->len;
        pthread_mutex_unlock(&self->lock);
        void *out = NULL;
        size_t out_len = 0;
        int mrc = self->fn.map(state, data, len, &out, &out_len);
        pthread_mutex_lock(&self->lock);
        self->out = out;
        self->out_len = out ? out_len : 0;
        self->rc = mrc;
        self->state = S_DONE;
        char one = 1;
        ssize_t w = write(self->pipe_w, &one, 1);
        (void)w;
    }
    pthread_mutex_unlock(&self->lock);
    if (rc == 0 && self->fn.fini)
        self->fn.fini(state);
    return NULL;
}

tf_fnslot_t *tf_fnslot_new(int rank, const tf_fn_t *fn, char *err, size_t errlen)
{
    if (!fn || !fn->map) {
        snprintf(err, errlen, "no map function");
        return NULL;
    }
    tf_fnslot_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->fn = *fn;
    self->rank = rank;
    int p[2];
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK)) {
        snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
        free(self);
        return NULL;
    }
    self->pipe_r = p[0];
    self->pipe_w = p[1];
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->cond, NULL);
    if (pthread_create(&self->thread, NULL, s_thread, self)) {
        snprintf(err, errlen, "cannot start a thread");
        close(p[0]);
        close(p[1]);
        free(self);
        return NULL;
    }
    pthread_mutex_lock(&self->lock);
    while (!self->init_done)
        pthread_cond_wait(&self->cond, &self->lock);
    int rc = self->init_rc;
    pthread_mutex_unlock(&self->lock);
    if (rc) {
        snprintf(err, errlen, "init of worker %d failed (returned %d)", rank, rc);
        tf_fnslot_destroy(&self);
        return NULL;
    }
    return self;
}

void tf_fnslot_destroy(tf_fnslot_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    tf_fnslot_t *self = *self_p;
    pthread_mutex_lock(&self->lock);
    self->stop = true;
    pthread_cond_broadcast(&self->cond);
    pthread_mutex_unlock(&self->lock);
    pthread_join(self->thread, NULL);
    free(self->out);
    close(self->pipe_r);
    close(self->pipe_w);
    pthread_mutex_destroy(&self->lock);
    pthread_cond_destroy(&self->cond);
    free(self);
    *self_p = NULL;
}

int tf_fnslot_fd(const tf_fnslot_t *self)
{
    return self->pipe_r;
}

int tf_fnslot_submit(tf_fnslot_t *self, const void *data, size_t len)
{
    pthread_mutex_lock(&self->lock);
    if (self->state != S_IDLE) {
        pthread_mutex_unlock(&self->lock);
        return -1;
    }
    self->data = data;
    self->len = len;
    self->state = S_QUEUED;
    pthread_cond_signal(&self->cond);
    pthread_mutex_unlock(&self->lock);
    return 0;
}

int tf_fnslot_collect(tf_fnslot_t *self, void **out, size_t *out_len, int *rc)
{
    char buf[16];
    while (read(self->pipe_r, buf, sizeof buf) > 0)
        ;
    pthread_mutex_lock(&self->lock);
    if (self->state != S_DONE) {
        pthread_mutex_unlock(&self->lock);
        return -1;
    }
    *out = self->out;
    *out_len = self->out_len;
    *rc = self->rc;
    self->out = NULL;
    self->out_len = 0;
    self->state = S_IDLE;
    pthread_mutex_unlock(&self->lock);
    return 0;
}
