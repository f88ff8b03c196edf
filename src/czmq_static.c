/*  czmq_static.c -- what the taskfarm program needs to link czmq statically
    (CMake option TF_STATIC_CZMQ).

    Why: the program starts once per `taskfarm run`, and every shared
    library costs start-up time (mapping, relocation) and makes each fork of
    a local worker dearer. Debian's libczmq.so brings libsystemd and its six
    libraries (gcrypt, gpg-error, lz4, zstd, lzma, cap) and libuuid: with
    czmq linked in from libczmq.a the program loads 21 libraries, not 28,
    and `run` starts about 2.5 ms sooner (README, "Performance"); with
    libzmq linked in too (zmq_static.c), 3.

    czmq's zsock.o calls systemd's socket activation from zsock_bind: when
    systemd passed the process listening sockets (LISTEN_FDS), a bind to a
    matching endpoint takes one over. taskfarm is never started that way
    (its components bind what their command line says), so these stand-ins
    answer as libsystemd does for a process without LISTEN_FDS: no sockets.
    This file is built into the program only when czmq is linked in.
*/
#include <stddef.h>
#include <stdint.h>

int sd_listen_fds(int unset_environment);
int sd_is_socket_unix(int fd, int type, int listening, const char *path, size_t length);
int sd_is_socket_inet(int fd, int family, int type, int listening, uint16_t port);

int sd_listen_fds(int unset_environment)
{
    (void)unset_environment;
    return 0; //  no sockets passed
}

int sd_is_socket_unix(int fd, int type, int listening, const char *path, size_t length)
{
    (void)fd, (void)type, (void)listening, (void)path, (void)length;
    return 0; //  "not such a socket"
}

int sd_is_socket_inet(int fd, int family, int type, int listening, uint16_t port)
{
    (void)fd, (void)family, (void)type, (void)listening, (void)port;
    return 0;
}
