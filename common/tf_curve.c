/*  tf_curve.c -- CURVE encryption and authentication for taskfarm sockets. */
#include "tf_curve.h"
#include "tf_common.h"

#include <dirent.h>
#include <errno.h>
#include <unistd.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static zactor_t *s_auth = NULL;
static char s_auth_dir[4096];

static char s_private_dir[4096]; //  deduplicated copy of --curve-allow

//  czmq's certificate store asserts on two certificates with one public
//  key; a user's directory may well hold such copies (or other files). Load
//  what is there, keep one public certificate per key, in a private copy.
static int s_prepare_allow(const char *dir, char *out, size_t cap, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "--curve-allow: cannot read '%s': %s", dir, strerror(errno));
        return -1;
    }
    snprintf(out, cap, "/tmp/taskfarm-allow.XXXXXX");
    if (!mkdtemp(out)) {
        snprintf(err, errlen, "--curve-allow: cannot create a directory: %s", strerror(errno));
        closedir(d);
        return -1;
    }
    zhashx_t *seen = zhashx_new();
    struct dirent *e;
    int n = 0;
    while (seen && (e = readdir(d))) {
        char from[4096], to[4200];
        if (e->d_name[0] == '.' ||
            snprintf(from, sizeof from, "%s/%s", dir, e->d_name) >= (int)sizeof from)
            continue;
        struct stat st;
        if (stat(from, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        zcert_t *c = zcert_load(from);
        if (!c)
            continue;
        const char *key = zcert_public_txt(c);
        if (!zhashx_lookup(seen, key)) {
            zhashx_insert(seen, key, (void *)1);
            snprintf(to, sizeof to, "%s/key-%d", out, n++);
            zcert_save_public(c, to);
        }
        zcert_destroy(&c);
    }
    zhashx_destroy(&seen);
    closedir(d);
    return 0;
}

static void s_remove_private(void)
{
    if (!s_private_dir[0])
        return;
    tf_remove_dir(s_private_dir);
    s_private_dir[0] = '\0';
}

static zcert_t *s_load(const char *file, const char *what, char *err, size_t errlen)
{
    struct stat st;
    if (!file || stat(file, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: cannot read CURVE certificate '%s'", what, file ? file : "");
        return NULL;
    }
    zcert_t *cert = zcert_load(file);
    if (!cert)
        snprintf(err, errlen, "%s: '%s' is not a CURVE certificate (see taskfarm keygen)", what,
                 file);
    return cert;
}

static bool s_has_secret(zcert_t *cert)
{
    static const char zero[41] = "0000000000000000000000000000000000000000";
    const char *sk = zcert_secret_txt(cert);
    return sk && strcmp(sk, zero) != 0;
}

int tf_curve_server(zsock_t *sock, const char *key_file, const char *allow_dir, char *err,
                    size_t errlen)
{
    zcert_t *cert = s_load(key_file, "--curve-server-key", err, errlen);
    if (!cert)
        return -1;
    if (!s_has_secret(cert)) {
        snprintf(err, errlen, "--curve-server-key: '%s' holds no secret key (use NAME_secret)",
                 key_file);
        zcert_destroy(&cert);
        return -1;
    }
    if (allow_dir) {
        struct stat st;
        if (stat(allow_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "--curve-allow: '%s' is not a directory", allow_dir);
            zcert_destroy(&cert);
            return -1;
        }
    }
    pthread_mutex_lock(&s_lock);
    int rc = 0;
    if (!s_auth) {
        s_auth = zactor_new(zauth, NULL);
        if (!s_auth)
            rc = -1;
        else if (allow_dir) {
            if (s_prepare_allow(allow_dir, s_private_dir, sizeof s_private_dir, err, errlen))
                rc = -1;
            else {
                zstr_sendx(s_auth, "CURVE", s_private_dir, NULL);
                zsock_wait(s_auth);
                snprintf(s_auth_dir, sizeof s_auth_dir, "%s", allow_dir);
            }
        } else {
            zstr_sendx(s_auth, "CURVE", CURVE_ALLOW_ANY, NULL);
            zsock_wait(s_auth);
            s_auth_dir[0] = '\0';
        }
    } else if ((allow_dir ? allow_dir : "")[0] != s_auth_dir[0] ||
               strcmp(allow_dir ? allow_dir : "", s_auth_dir) != 0) {
        snprintf(err, errlen, "--curve-allow: one directory per process");
        rc = -1;
    }
    pthread_mutex_unlock(&s_lock);
    if (rc) {
        if (!err[0])
            snprintf(err, errlen, "cannot start the CURVE authenticator");
        zcert_destroy(&cert);
        return -1;
    }
    zcert_apply(cert, sock);
    zsock_set_curve_server(sock, 1);
    zsock_set_zap_domain(sock, "taskfarm");
    zcert_destroy(&cert);
    return 0;
}

struct _tf_curve_client_t {
    zcert_t *mine;
    char server_public[41]; //  Z85 text
};

tf_curve_client_t *tf_curve_client_new(const char *client_key_file, const char *server_public_file,
                                       char *err, size_t errlen)
{
    if (!client_key_file || !server_public_file) {
        snprintf(err, errlen, "CURVE needs both --curve-client-key and --curve-server-public");
        return NULL;
    }
    tf_curve_client_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    zcert_t *server = NULL;
    self->mine = s_load(client_key_file, "--curve-client-key", err, errlen);
    if (!self->mine)
        goto fail;
    if (!s_has_secret(self->mine)) {
        snprintf(err, errlen, "--curve-client-key: '%s' holds no secret key (use NAME_secret)",
                 client_key_file);
        goto fail;
    }
    server = s_load(server_public_file, "--curve-server-public", err, errlen);
    if (!server)
        goto fail;
    snprintf(self->server_public, sizeof self->server_public, "%s", zcert_public_txt(server));
    zcert_destroy(&server);
    return self;

fail:
    tf_curve_client_destroy(&self);
    return NULL;
}

void tf_curve_client_destroy(tf_curve_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zcert_destroy(&(*self_p)->mine);
    free(*self_p);
    *self_p = NULL;
}

void tf_curve_client_apply(const tf_curve_client_t *self, zsock_t *sock)
{
    zcert_apply(self->mine, sock);
    zsock_set_curve_serverkey(sock, self->server_public);
}

int tf_curve_client(zsock_t *sock, const char *client_key_file, const char *server_public_file,
                    char *err, size_t errlen)
{
    tf_curve_client_t *keys = tf_curve_client_new(client_key_file, server_public_file, err, errlen);
    if (!keys)
        return -1;
    tf_curve_client_apply(keys, sock);
    tf_curve_client_destroy(&keys);
    return 0;
}

void tf_curve_shutdown(void)
{
    pthread_mutex_lock(&s_lock);
    zactor_destroy(&s_auth);
    s_remove_private();
    pthread_mutex_unlock(&s_lock);
}
