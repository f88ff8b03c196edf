/*  tf_net.c -- ZeroMQ plumbing shared by ventilator, worker and sink. */
#include "tf_net.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void tf_rx_init(tf_rx_t *rx)
{
    memset(rx, 0, sizeof *rx);
}

void tf_rx_close(tf_rx_t *rx)
{
    if (rx->open)
        zmq_msg_close(&rx->msg);
    rx->open = false;
    rx->rid_len = 0;
}

const uint8_t *tf_rx_data(tf_rx_t *rx)
{
    return zmq_msg_data(&rx->msg);
}

size_t tf_rx_size(tf_rx_t *rx)
{
    return zmq_msg_size(&rx->msg);
}

//  Discards the rest of a multipart message.
static void s_drain(void *handle, zmq_msg_t *msg)
{
    while (zmq_msg_more(msg)) {
        if (zmq_msg_recv(msg, handle, ZMQ_DONTWAIT) < 0)
            break;
    }
}

tf_rx_status_t tf_net_recv(void *sock, bool router, tf_rx_t *rx)
{
    void *handle = zsock_resolve(sock);
    tf_rx_close(rx);
    zmq_msg_init(&rx->msg);
    rx->open = true;
    if (zmq_msg_recv(&rx->msg, handle, ZMQ_DONTWAIT) < 0)
        return TF_RX_NONE;
    if (router) {
        size_t n = zmq_msg_size(&rx->msg);
        if (n > TF_MAX_RID || !zmq_msg_more(&rx->msg)) {
            s_drain(handle, &rx->msg);
            return TF_RX_BAD;
        }
        memcpy(rx->rid, zmq_msg_data(&rx->msg), n);
        rx->rid_len = n;
        if (zmq_msg_recv(&rx->msg, handle, ZMQ_DONTWAIT) < 0)
            return TF_RX_BAD;
    }
    if (zmq_msg_more(&rx->msg)) {
        s_drain(handle, &rx->msg);
        return TF_RX_BAD;
    }
    return TF_RX_OK;
}

tf_rx_status_t tf_net_recv_msg(void *sock, bool router, tf_rx_t *rx, const tf_limits_t *limits,
                               tf_hdr_t *hdr, const char **why)
{
    tf_rx_status_t st = tf_net_recv(sock, router, rx);
    if (st == TF_RX_BAD)
        *why = "bad framing";
    if (st != TF_RX_OK)
        return st;
    if (tf_proto_validate(tf_rx_data(rx), tf_rx_size(rx), limits, hdr, why))
        return TF_RX_BAD;
    return TF_RX_OK;
}

int tf_net_send(void *sock, const uint8_t *rid, size_t rid_len, const void *data, size_t len)
{
    void *handle = zsock_resolve(sock);
    if (rid && zmq_send(handle, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;
    if (zmq_send(handle, data, len, ZMQ_DONTWAIT) < 0)
        return -1;
    return 0;
}

void tf_net_setup(zsock_t *sock, int64_t maxmsgsize)
{
    zsock_set_maxmsgsize(sock, (int)(maxmsgsize > INT32_MAX ? INT32_MAX : maxmsgsize));
    zsock_set_sndhwm(sock, 100000);
    zsock_set_rcvhwm(sock, 100000);
    zsock_set_linger(sock, 0);
}

void tf_net_reconnect_policy(zsock_t *sock, const char *endpoint)
{
    if (strncmp(endpoint, "ipc://", 6) == 0) {
        //  Local peer starting beside us: retry every millisecond, no backoff.
        zsock_set_reconnect_ivl(sock, 1);
        zsock_set_reconnect_ivl_max(sock, 0);
    } else {
        //  Remote peer: back off, but not so far that a waiting worker is
        //  slow to notice a ventilator that starts (at most 4 tries/s).
        zsock_set_reconnect_ivl(sock, 20);
        zsock_set_reconnect_ivl_max(sock, 250);
    }
}

zsock_t *tf_net_watch(zsock_t *sock, int events)
{
    static atomic_uint counter;
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://tf-watch-%d-%u", (int)getpid(),
             atomic_fetch_add(&counter, 1));
    if (zmq_socket_monitor(zsock_resolve(sock), ep, events) != 0)
        return NULL;
    zsock_t *watch = zsock_new(ZMQ_PAIR);
    if (watch) {
        //  ZeroMQ's I/O thread sends the events blocking: a full queue
        //  would stall every socket of the process until we read.
        zsock_set_rcvhwm(watch, 0);
        if (zsock_connect(watch, "%s", ep) == 0)
            return watch;
    }
    zsock_destroy(&watch);
    zmq_socket_monitor(zsock_resolve(sock), NULL, 0);
    return NULL;
}

int tf_net_watch_next(zsock_t *watch, int *event, int *value)
{
    //  An event is two frames: u16 event + u32 value, then the endpoint.
    void *s = zsock_resolve(watch);
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, s, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&m);
        return -1;
    }
    *event = 0;
    *value = -1;
    if (zmq_msg_size(&m) >= 6) {
        const uint8_t *d = zmq_msg_data(&m);
        uint16_t ev;
        uint32_t v;
        memcpy(&ev, d, sizeof ev);
        memcpy(&v, d + 2, sizeof v);
        *event = ev;
        *value = (int)v;
    }
    s_drain(s, &m);
    zmq_msg_close(&m);
    return 0;
}

void tf_net_unwatch(zsock_t *sock, zsock_t **watch_p)
{
    if (sock && *watch_p)
        zmq_socket_monitor(zsock_resolve(sock), NULL, 0);
    zsock_destroy(watch_p);
}

void tf_net_host_of(const char *endpoint, char *out, size_t cap)
{
    out[0] = '\0';
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return;
    const char *h = endpoint + 6;
    const char *colon = strrchr(h, ':');
    if (!colon)
        return;
    size_t n = (size_t)(colon - h);
    if (n >= cap)
        return;
    memcpy(out, h, n);
    out[n] = '\0';
}

int tf_net_fill_host(const char *endpoint, const char *host, char *out, size_t cap)
{
    char h[256];
    tf_net_host_of(endpoint, h, sizeof h);
    bool wild = strcmp(h, "*") == 0 || strcmp(h, "0.0.0.0") == 0 || strcmp(h, "[::]") == 0;
    int n;
    if (wild && host && *host)
        n = snprintf(out, cap, "tcp://%s%s", host, strrchr(endpoint + 6, ':'));
    else
        n = snprintf(out, cap, "%s", endpoint);
    return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

int tf_net_bind(zsock_t *sock, const char *endpoint, char *err, size_t errlen)
{
    if (zsock_bind(sock, "%s", endpoint) < 0) {
        snprintf(err, errlen, "cannot bind '%s': %s", endpoint, zmq_strerror(zmq_errno()));
        return -1;
    }
    return 0;
}
