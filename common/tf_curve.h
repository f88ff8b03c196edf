/*  tf_curve.h -- CURVE encryption and authentication for taskfarm sockets.

    Servers (the ventilator's ROUTER, the sink's PULL) load a secret
    certificate (--curve-server-key, written by `taskfarm keygen`) and
    accept only clients whose public certificate is in --curve-allow DIR
    (czmq's zauth), or any client that knows the server key when no DIR is
    given. Clients (workers, the sink towards the ventilator) load their own
    secret certificate (--curve-client-key) and the server's public one
    (--curve-server-public). One server key pair serves the ventilator and
    the sink of a job.
*/
#ifndef TF_CURVE_H_INCLUDED
#define TF_CURVE_H_INCLUDED

#include <czmq.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Makes `sock` a CURVE server with the certificate in `key_file`, checked
//  against certificates in `allow_dir` (NULL: any client). Call before bind.
//  Returns 0, or -1 with a one-line error.
int tf_curve_server(zsock_t *sock, const char *key_file, const char *allow_dir, char *err,
                    size_t errlen);
//  A CURVE client's keys, loaded once (a worker applies them to every
//  socket of every session). NULL with a one-line error when a file is
//  missing, not a certificate, or the client key holds no secret.
typedef struct _tf_curve_client_t tf_curve_client_t;
tf_curve_client_t *tf_curve_client_new(const char *client_key_file, const char *server_public_file,
                                       char *err, size_t errlen);
void tf_curve_client_destroy(tf_curve_client_t **self_p);
//  Makes `sock` a CURVE client with these keys. Call before connect.
void tf_curve_client_apply(const tf_curve_client_t *self, zsock_t *sock);
//  Loads and applies in one go. Returns 0 or -1.
int tf_curve_client(zsock_t *sock, const char *client_key_file, const char *server_public_file,
                    char *err, size_t errlen);
//  Stops the authentication actor (process exit).
void tf_curve_shutdown(void);

#ifdef __cplusplus
}
#endif
#endif
