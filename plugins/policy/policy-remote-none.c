/* policy-remote-none.c - PrebootServer in a build without libcurl (the Windows build): the
 * setting is accepted and the rules decide, as before (tftp-hpa's cap-none.c pattern). */
#include "policy-remote.h"

PolicyRemote *policy_remote_new(const pb_host *host, pb_instance *inst, const char *server,
                                guint timeout_ms, GError **error)
{
    (void)host;
    (void)inst;
    (void)timeout_ms;
    g_set_error(error, g_quark_from_static_string("policy-remote"), 0,
                "PrebootServer %s: this build has no HTTP client (libcurl); work is decided "
                "locally",
                server);
    return NULL;
}

void policy_remote_free(PolicyRemote *r)
{
    (void)r;
}

const char *policy_remote_server(const PolicyRemote *r)
{
    (void)r;
    return "";
}

gboolean policy_remote_ask(PolicyRemote *r, const PolicyDevice *dev, PolicyRemoteFn fn, void *data)
{
    (void)r;
    (void)dev;
    (void)fn;
    (void)data;
    return FALSE;
}

gboolean policy_remote_cached(PolicyRemote *r, const PolicyDevice *dev, PolicyRemoteAnswer *out)
{
    (void)r;
    (void)dev;
    (void)out;
    return FALSE;
}
