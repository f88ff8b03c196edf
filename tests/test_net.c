/*  test_net.c -- ZeroMQ plumbing: the connection watch (tf_net_watch),
    endpoint helpers, and the strict receive of whole messages. Real sockets
    over tcp://127.0.0.1 (ephemeral ports) and inproc.
*/
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tf_common.h"
#include "tf_net.h"

//  Waits up to `ms` for the next event on `watch`; -1 when none came.
static int s_next_event(zsock_t *watch, int ms, int *value)
{
    int64_t deadline = tf_now_ms() + ms;
    for (;;) {
        int ev;
        if (tf_net_watch_next(watch, &ev, value) == 0)
            return ev;
        int64_t left = deadline - tf_now_ms();
        if (left <= 0)
            return -1;
        zmq_pollitem_t it = {zsock_resolve(watch), 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, (long)left);
    }
}

//  A bound ROUTER on an ephemeral loopback port; its endpoint into `ep`.
static zsock_t *s_router(char *ep, size_t cap)
{
    zsock_t *r = zsock_new(ZMQ_ROUTER);
    cr_assert_not_null(r);
    zsock_set_linger(r, 0);
    zsock_set_backlog(r, 4096); //  bursts of connections wait for no SYN retry
    cr_assert(zsock_bind(r, "tcp://127.0.0.1:*") > 0);
    char *last = zsock_last_endpoint(r); //  ours to free
    cr_assert_not_null(last);
    snprintf(ep, cap, "%s", last);
    zstr_free(&last);
    return r;
}

Test(net, watch_is_quiet_until_something_happens)
{
    zsock_t *d = zsock_new(ZMQ_DEALER);
    zsock_t *w = tf_net_watch(d, ZMQ_EVENT_DISCONNECTED);
    cr_assert_not_null(w);
    int ev, v;
    cr_assert_eq(tf_net_watch_next(w, &ev, &v), -1);
    tf_net_unwatch(d, &w);
    cr_assert_null(w);
    zsock_destroy(&d);
}

Test(net, dealer_sees_handshake_then_drop)
{
    char ep[128];
    zsock_t *r = s_router(ep, sizeof ep);
    zsock_t *d = zsock_new(ZMQ_DEALER);
    zsock_set_linger(d, 0);
    zsock_t *w = tf_net_watch(d, ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED);
    cr_assert_not_null(w);
    cr_assert_eq(zsock_connect(d, "%s", ep), 0);
    int v = -1;
    cr_assert_eq(s_next_event(w, 5000, &v), ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    cr_assert_geq(v, 0, "the event carries the connection's descriptor");
    //  The peer goes away: one drop, and nothing else asked for.
    zsock_destroy(&r);
    cr_assert_eq(s_next_event(w, 5000, &v), ZMQ_EVENT_DISCONNECTED);
    tf_net_unwatch(d, &w);
    zsock_destroy(&d);
}

Test(net, refused_connection_is_no_drop)
{
    //  Nobody listens: retries, but never a handshake and never a drop.
    //  The port stays ours (bound, not listening), so no other process
    //  can start listening there meanwhile.
    int hold = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(hold, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    cr_assert_eq(getsockname(hold, (struct sockaddr *)&sa, &len), 0);
    zsock_t *d = zsock_new(ZMQ_DEALER);
    zsock_set_linger(d, 0);
    zsock_set_reconnect_ivl(d, 10);
    zsock_t *w = tf_net_watch(d, ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED);
    cr_assert_eq(zsock_connect(d, "tcp://127.0.0.1:%d", ntohs(sa.sin_port)), 0);
    int v;
    cr_assert_eq(s_next_event(w, 300, &v), -1);
    tf_net_unwatch(d, &w);
    zsock_destroy(&d);
    close(hold);
}

Test(net, router_drop_names_the_peers_connection)
{
    //  The ventilator's probe relies on this: the descriptor of a dropped
    //  connection equals ZMQ_SRCFD of the messages that came on it.
    char ep[128];
    zsock_t *r = s_router(ep, sizeof ep);
    zsock_t *w = tf_net_watch(r, ZMQ_EVENT_DISCONNECTED);
    cr_assert_not_null(w);
    zsock_t *a = zsock_new(ZMQ_DEALER);
    zsock_t *b = zsock_new(ZMQ_DEALER);
    zsock_set_linger(a, 0);
    zsock_set_linger(b, 0);
    cr_assert_eq(zsock_connect(a, "%s", ep), 0);
    cr_assert_eq(zsock_connect(b, "%s", ep), 0);
    cr_assert_eq(tf_net_send(zsock_resolve(a), NULL, 0, "a", 1), 0);
    cr_assert_eq(tf_net_send(zsock_resolve(b), NULL, 0, "b", 1), 0);
    int fd_a = -1, fd_b = -1;
    zsock_set_rcvtimeo(r, 5000);
    for (int i = 0; i < 2; i++) {
        zmq_msg_t rid, body;
        zmq_msg_init(&rid);
        zmq_msg_init(&body);
        cr_assert_geq(zmq_msg_recv(&rid, zsock_resolve(r), 0), 0);
        cr_assert_geq(zmq_msg_recv(&body, zsock_resolve(r), 0), 0);
        int fd = zmq_msg_get(&body, ZMQ_SRCFD);
        if (*(const char *)zmq_msg_data(&body) == 'a')
            fd_a = fd;
        else
            fd_b = fd;
        zmq_msg_close(&rid);
        zmq_msg_close(&body);
    }
    cr_assert(fd_a >= 0 && fd_b >= 0 && fd_a != fd_b);
    zsock_destroy(&b);
    int v = -1;
    cr_assert_eq(s_next_event(w, 5000, &v), ZMQ_EVENT_DISCONNECTED);
    cr_assert_eq(v, fd_b, "dropped %d, b spoke on %d (a on %d)", v, fd_b, fd_a);
    tf_net_unwatch(r, &w);
    zsock_destroy(&a);
    zsock_destroy(&r);
}

Test(net, many_unread_events_do_not_stall_the_io_thread, .timeout = 30)
{
    //  The I/O thread sends events blocking: with the watch's default
    //  queue limit, about 2000 unread drops would freeze every socket of the
    //  process. 2300 stray TCP connections come and go (each one a drop)
    //  before we read any event; then a message must still get through.
    char ep[128];
    zsock_t *r = s_router(ep, sizeof ep);
    zsock_t *w = tf_net_watch(r, ZMQ_EVENT_DISCONNECTED);
    cr_assert_not_null(w);
    int port = atoi(strrchr(ep, ':') + 1);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < 2300; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert_geq(fd, 0);
        cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0, "connect %d", i);
        close(fd);
    }
    zclock_sleep(300); //  let the I/O thread take them all in
    zsock_t *d = zsock_new(ZMQ_DEALER);
    zsock_set_linger(d, 0);
    cr_assert_eq(zsock_connect(d, "%s", ep), 0);
    cr_assert_eq(tf_net_send(zsock_resolve(d), NULL, 0, "x", 1), 0);
    zsock_set_rcvtimeo(r, 5000);
    zmq_msg_t rid;
    zmq_msg_init(&rid);
    cr_assert_geq(zmq_msg_recv(&rid, zsock_resolve(r), 0), 0, "the router got nothing");
    zmq_msg_close(&rid);
    int n = 0, ev, v;
    while (tf_net_watch_next(w, &ev, &v) == 0)
        n++;
    cr_assert_geq(n, 2000, "only %d drop events", n);
    zsock_destroy(&d);
    tf_net_unwatch(r, &w);
    zsock_destroy(&r);
}

Test(net, fill_host_and_host_of)
{
    char out[64];
    cr_assert_eq(tf_net_fill_host("tcp://*:5556", "10.1.2.3", out, sizeof out), 0);
    cr_assert_str_eq(out, "tcp://10.1.2.3:5556");
    cr_assert_eq(tf_net_fill_host("tcp://0.0.0.0:7", "h", out, sizeof out), 0);
    cr_assert_str_eq(out, "tcp://h:7");
    cr_assert_eq(tf_net_fill_host("ipc:///tmp/x", "h", out, sizeof out), 0);
    cr_assert_str_eq(out, "ipc:///tmp/x");
    cr_assert_eq(tf_net_fill_host("tcp://*:5556", "a-very-long-host-name-indeed", out, 16), -1);
    tf_net_host_of("tcp://head.example:5555", out, sizeof out);
    cr_assert_str_eq(out, "head.example");
    tf_net_host_of("ipc:///tmp/x", out, sizeof out);
    cr_assert_str_eq(out, "");
}
