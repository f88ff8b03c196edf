/*  tf_net.h -- ZeroMQ plumbing shared by ventilator, worker and sink.

    One protocol message = one frame; ROUTER sockets put the peer's routing
    id in front. tf_net_recv() takes whole multipart messages off a socket and
    rejects any other shape (counted by the caller as malformed), so a hostile
    peer cannot desynchronise framing.
*/
#ifndef TF_NET_H_INCLUDED
#define TF_NET_H_INCLUDED

#include <czmq.h>
#include "tf_common.h"
#include "tf_proto.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TF_MAX_RID 255

typedef struct {
    zmq_msg_t msg; //  the body frame
    uint8_t rid[TF_MAX_RID];
    size_t rid_len;
    bool open;
} tf_rx_t;

typedef enum { TF_RX_OK = 0, TF_RX_NONE = 1, TF_RX_BAD = 2 } tf_rx_status_t;

void tf_rx_init(tf_rx_t *rx);
void tf_rx_close(tf_rx_t *rx);
const uint8_t *tf_rx_data(tf_rx_t *rx);
size_t tf_rx_size(tf_rx_t *rx);

//  Receives one message without blocking. `router`: expect a routing id
//  frame first. The previous content of rx is released.
tf_rx_status_t tf_net_recv(void *sock, bool router, tf_rx_t *rx);
//  Receives one message and validates it (tf_proto_validate). Returns
//  TF_RX_OK with *hdr filled, TF_RX_NONE when nothing is waiting, or
//  TF_RX_BAD with *why naming the problem (framing or content); the caller
//  counts and drops bad ones. The body is tf_rx_data/tf_rx_size.
tf_rx_status_t tf_net_recv_msg(void *sock, bool router, tf_rx_t *rx, const tf_limits_t *limits,
                               tf_hdr_t *hdr, const char **why);
//  Sends `b` (with a routing id frame first when rid != NULL) without
//  blocking. Returns 0, or -1 with errno (EAGAIN, EHOSTUNREACH, ...).
int tf_net_send(void *sock, const uint8_t *rid, size_t rid_len, const void *data, size_t len);
//  Common socket options: max message size, high water marks, linger.
void tf_net_setup(zsock_t *sock, int64_t maxmsgsize);
//  Reconnection timing for a connecting socket: fast for ipc:// peers that
//  start beside us, backing off for remote ones.
void tf_net_reconnect_policy(zsock_t *sock, const char *endpoint);
//  Watches `sock`'s connections (zmq_socket_monitor) for `events`, e.g.
//  ZMQ_EVENT_DISCONNECTED: a connection dropped (reset, closed by the
//  peer, a failed handshake, a stray connection to a bound socket). ZeroMQ
//  reconnects by itself, but what was queued on the old connection is
//  gone; the watch lets the caller notice. Returns a PAIR socket that turns
//  readable when events wait, or NULL. Undo with tf_net_unwatch before
//  destroying `sock`.
zsock_t *tf_net_watch(zsock_t *sock, int events);
//  Takes one event off `watch` without blocking: 0 with the event and its
//  value (for connection events, the connection's file descriptor, as
//  zmq_msg_get(ZMQ_SRCFD) gives for its messages), or -1 when none waits.
int tf_net_watch_next(zsock_t *watch, int *event, int *value);
void tf_net_unwatch(zsock_t *sock, zsock_t **watch_p);
//  Replaces a wildcard host (tcp://*:P, tcp://0.0.0.0:P) of `endpoint` with
//  `host`; copies otherwise. Returns 0, -1 when it does not fit `cap`.
int tf_net_fill_host(const char *endpoint, const char *host, char *out, size_t cap);
//  Host part of tcp://HOST:PORT into out ("" for other transports).
void tf_net_host_of(const char *endpoint, char *out, size_t cap);
//  Binds `sock` to `endpoint`. Returns 0, or -1 with "cannot bind '...':
//  reason" in err.
int tf_net_bind(zsock_t *sock, const char *endpoint, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
