/*  zmq_static.c -- what the taskfarm program needs to link libzmq statically
    (CMake option TF_STATIC_ZMQ).

    Why: `taskfarm run` starts its local workers by fork, so the program's
    own start-up (exec, mapping and relocating its shared libraries) is
    paid once per job, before anything else can happen: it is on the
    critical path of every job. libzmq.so and what it brings were 16 of the
    program's 21 shared libraries (libstdc++, libsodium, OpenPGM, NORM,
    Kerberos and theirs), and about half of its start: `taskfarm --version`
    took 2.2 ms, 1.1 ms with them linked in. From Debian's archives
    (libzmq3-dev and the -dev packages it depends on) libzmq, libsodium,
    OpenPGM, NORM, libbsd and libstdc++ are linked in, and the program loads
    libc, libm and libcjson only.

    Kerberos has no archive in Debian. libzmq uses it for one thing, its
    GSSAPI security mechanism, which a socket uses only when the program
    sets ZMQ_GSSAPI_SERVER or ZMQ_GSSAPI_CLIENT on it. taskfarm never does
    (its security is CURVE), so the GSSAPI calls libzmq's mechanism code
    refers to are answered here: every call fails with GSS_S_FAILURE, the
    release calls succeed (there is nothing to release). Were a socket ever
    set to GSSAPI, its handshake would fail cleanly; nothing else reaches
    these. libtaskfarm.so and the tests keep the shared libzmq.

    This file is built into the program only when libzmq is linked in.
*/
#include <gssapi/gssapi.h>

//  The two name types libzmq's mechanism refers to: empty OIDs.
static gss_OID_desc s_no_oid = {0, NULL};
gss_OID GSS_C_NT_HOSTBASED_SERVICE = &s_no_oid;
gss_OID GSS_C_NT_USER_NAME = &s_no_oid;

static OM_uint32 s_status(OM_uint32 *minor, OM_uint32 major)
{
    if (minor)
        *minor = 0;
    return major;
}

//  What a GSSAPI mechanism would need: unavailable.

OM_uint32 gss_acquire_cred(OM_uint32 *minor, gss_name_t name, OM_uint32 time_req, gss_OID_set mechs,
                           gss_cred_usage_t usage, gss_cred_id_t *cred, gss_OID_set *actual,
                           OM_uint32 *time_rec)
{
    (void)name, (void)time_req, (void)mechs, (void)usage, (void)cred, (void)actual, (void)time_rec;
    return s_status(minor, GSS_S_FAILURE);
}

OM_uint32 gss_import_name(OM_uint32 *minor, gss_buffer_t input, gss_OID type, gss_name_t *name)
{
    (void)input, (void)type, (void)name;
    return s_status(minor, GSS_S_FAILURE);
}

OM_uint32 gss_display_name(OM_uint32 *minor, gss_name_t name, gss_buffer_t output, gss_OID *type)
{
    (void)name, (void)output, (void)type;
    return s_status(minor, GSS_S_FAILURE);
}

OM_uint32 gss_init_sec_context(OM_uint32 *minor, gss_cred_id_t cred, gss_ctx_id_t *ctx,
                               gss_name_t target, gss_OID mech, OM_uint32 req_flags,
                               OM_uint32 time_req, gss_channel_bindings_t bindings,
                               gss_buffer_t input, gss_OID *actual_mech, gss_buffer_t output,
                               OM_uint32 *ret_flags, OM_uint32 *time_rec)
{
    (void)cred, (void)ctx, (void)target, (void)mech, (void)req_flags, (void)time_req,
        (void)bindings, (void)input, (void)actual_mech, (void)output, (void)ret_flags,
        (void)time_rec;
    return s_status(minor, GSS_S_FAILURE);
}

OM_uint32 gss_accept_sec_context(OM_uint32 *minor, gss_ctx_id_t *ctx, gss_cred_id_t cred,
                                 gss_buffer_t input, gss_channel_bindings_t bindings,
                                 gss_name_t *src, gss_OID *mech, gss_buffer_t output,
                                 OM_uint32 *ret_flags, OM_uint32 *time_rec,
                                 gss_cred_id_t *delegated)
{
    (void)ctx, (void)cred, (void)input, (void)bindings, (void)src, (void)mech, (void)output,
        (void)ret_flags, (void)time_rec, (void)delegated;
    return s_status(minor, GSS_S_FAILURE);
}

OM_uint32 gss_wrap(OM_uint32 *minor, gss_ctx_id_t ctx, int conf_req, gss_qop_t qop,
                   gss_buffer_t input, int *conf_state, gss_buffer_t output)
{
    (void)ctx, (void)conf_req, (void)qop, (void)input, (void)conf_state, (void)output;
    return s_status(minor, GSS_S_FAILURE);
}

OM_uint32 gss_unwrap(OM_uint32 *minor, gss_ctx_id_t ctx, gss_buffer_t input, gss_buffer_t output,
                     int *conf_state, gss_qop_t *qop)
{
    (void)ctx, (void)input, (void)output, (void)conf_state, (void)qop;
    return s_status(minor, GSS_S_FAILURE);
}

//  Nothing was ever made, so there is nothing to release.

OM_uint32 gss_delete_sec_context(OM_uint32 *minor, gss_ctx_id_t *ctx, gss_buffer_t output)
{
    (void)ctx, (void)output;
    return s_status(minor, GSS_S_COMPLETE);
}

OM_uint32 gss_release_buffer(OM_uint32 *minor, gss_buffer_t buffer)
{
    (void)buffer;
    return s_status(minor, GSS_S_COMPLETE);
}

OM_uint32 gss_release_cred(OM_uint32 *minor, gss_cred_id_t *cred)
{
    (void)cred;
    return s_status(minor, GSS_S_COMPLETE);
}

OM_uint32 gss_release_name(OM_uint32 *minor, gss_name_t *name)
{
    (void)name;
    return s_status(minor, GSS_S_COMPLETE);
}
