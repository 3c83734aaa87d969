/* policy-remote-parse.c - the imaging server's work answer as policy work (pure; built with
 * or without libcurl, unit-tested and fuzzed through pb_json_parse). */
#include "policy-remote.h"

#include "image-json.h"

#include <string.h>

/* Image and session names as lib/image accepts them; anything else is refused rather than
 * put into an iPXE script. */
static gboolean name_ok(const char *s)
{
    gsize n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n > 128 || s[0] == '.')
        return FALSE;
    for (gsize i = 0; i < n; i++)
        if (!g_ascii_isalnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return FALSE;
    return TRUE;
}

gboolean policy_remote_parse(const char *json, gsize len, PolicyRemoteAnswer *out, GError **error)
{
    memset(out, 0, sizeof(*out));
    g_autoptr(PbJson) j = pb_json_parse(json, len, error);
    if (j == NULL)
        return FALSE;
    const char *action = pb_json_get_string(j, "action");
    const char *arg = NULL;
    if (action == NULL) {
        g_set_error(error, PB_JSON_ERROR, 0, "the answer has no \"action\"");
        return FALSE;
    }
    if (strcmp(action, "none") == 0 || strcmp(action, "maintenance") == 0) {
        /* maintenance: the device is being worked on; it boots its disk. */
        out->work = PB_POLICY_WORK_LOCAL;
    } else if (strcmp(action, "restore") == 0 || strcmp(action, "capture") == 0) {
        out->work = action[0] == 'r' ? PB_POLICY_WORK_RESTORE : PB_POLICY_WORK_CAPTURE;
        arg = pb_json_get_string(j, "image");
    } else if (strcmp(action, "session") == 0) {
        out->work = PB_POLICY_WORK_MULTICAST;
        arg = pb_json_get_string(j, "session");
    } else {
        g_set_error(error, PB_JSON_ERROR, 0, "unknown action \"%.32s\"", action);
        return FALSE;
    }
    if (out->work != PB_POLICY_WORK_LOCAL) {
        if (!name_ok(arg)) {
            g_set_error(error, PB_JSON_ERROR, 0, "%s work without a valid name", action);
            return FALSE;
        }
        g_strlcpy(out->work_arg, arg, sizeof(out->work_arg));
    }
    const char *id = pb_json_get_string(j, "work_id");
    if (id != NULL)
        g_strlcpy(out->work_id, id, sizeof(out->work_id));
    out->answered = TRUE;
    return TRUE;
}

void policy_remote_apply(const PolicyRemoteAnswer *a, const char *server, pb_policy_decision *d)
{
    if (!a->answered)
        return;
    d->action = PB_POLICY_BOOT;
    d->work = a->work;
    g_strlcpy(d->work_arg, a->work_arg, sizeof(d->work_arg));
    d->flags &= ~(guint32)(PB_POLICY_F_ONCE | PB_POLICY_F_JUST_IMAGED | PB_POLICY_F_SAME_IMAGE |
                           PB_POLICY_F_ASSIGNED);
    g_snprintf(d->rule, sizeof(d->rule), "PrebootServer %s", server);
}
