/* image-ref.c - tells a local store from a server in STORE[:NAME] arguments. Pure.
 * The rule (preboot-img(8)): "dir:" or a '/' anywhere in the store part means a directory;
 * "http://" / "https://" or a bare host means a server. So "./images:win10" and
 * "/srv/images:win10" are directories and "imgsrv:win10" is a server; never a guess. */
#include "image-format.h"

#include <string.h>

gboolean pb_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > PB_NAME_MAX || name[0] == '.')
        return FALSE;
    for (size_t i = 0; i < n; i++)
        if (!g_ascii_isalnum(name[i]) && name[i] != '.' && name[i] != '_' && name[i] != '-')
            return FALSE;
    return TRUE;
}

void pb_ref_clear(PbRef *ref)
{
    g_clear_pointer(&ref->location, g_free);
    g_clear_pointer(&ref->name, g_free);
}

gboolean pb_ref_parse(const char *arg, gboolean want_name, PbRef *ref, GError **error)
{
    memset(ref, 0, sizeof(*ref));
    g_autofree char *store = g_strdup(arg);
    const char *scheme_end = strstr(store, "://");
    char *sep = NULL;
    if (scheme_end != NULL && !g_str_has_prefix(store, "dir:"))
        sep = strchr(scheme_end + 3, '/'); /* http://HOST[:PORT]/NAME */
    else
        sep = strrchr(store, ':'); /* PATH:NAME, dir:PATH:NAME, HOST:NAME */
    if (sep != NULL && sep == store + 3 && g_str_has_prefix(store, "dir:"))
        sep = NULL; /* "dir:" alone: no name */
    if (want_name) {
        if (sep == NULL) {
            g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_INVALID,
                        "\"%s\": expected STORE:NAME (a directory is dir:PATH or a path with "
                        "a '/', e.g. ./images:NAME; a server is HOST:NAME or "
                        "http://HOST[:PORT]/NAME)",
                        arg);
            return FALSE;
        }
        *sep = '\0';
        if (!pb_name_valid(sep + 1)) {
            g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_INVALID,
                        "\"%s\": image names are letters, digits, '.', '_' and '-', not "
                        "starting with '.', at most %d bytes",
                        sep + 1, PB_NAME_MAX);
            return FALSE;
        }
        ref->name = g_strdup(sep + 1);
    } else if (scheme_end != NULL && sep != NULL && sep[1] == '\0') {
        *sep = '\0'; /* http://HOST/ */
    }
    if (g_str_has_prefix(store, "dir:")) {
        ref->kind = PB_REF_DIR;
        ref->location = g_strdup(store + 4);
    } else if (g_str_has_prefix(store, "http://") || g_str_has_prefix(store, "https://")) {
        ref->kind = PB_REF_SERVER;
        ref->location = g_strdup(store);
    } else if (strchr(store, '/') != NULL || strcmp(store, ".") == 0 || strcmp(store, "..") == 0) {
        ref->kind = PB_REF_DIR;
        ref->location = g_strdup(store);
    } else {
        ref->kind = PB_REF_SERVER;
        ref->location = g_strdup(store);
    }
    if (*ref->location == '\0') {
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_INVALID, "\"%s\": empty store", arg);
        pb_ref_clear(ref);
        return FALSE;
    }
    return TRUE;
}
