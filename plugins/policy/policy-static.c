/* policy-static.c - the preboot environment's files on the HTTP listener, read-only. */
#include "policy-static.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

gboolean policy_static_name_valid(const char *name)
{
    if (name == NULL || name[0] == '\0' || name[0] == '.')
        return FALSE;
    gsize n = 0;
    for (const char *p = name; *p; p++, n++) {
        if (n >= 128)
            return FALSE;
        if (!g_ascii_isalnum(*p) && *p != '.' && *p != '-' && *p != '_')
            return FALSE;
    }
    return TRUE;
}

typedef struct {
    FILE *f;
    guint64 pos;
} StaticFile;

static int64_t static_read(void *handle, uint64_t offset, void *buf, size_t len)
{
    StaticFile *s = handle;
    if (offset != s->pos) {
        if (fseeko(s->f, (off_t)offset, SEEK_SET) != 0)
            return -1;
        s->pos = offset;
    }
    size_t got = fread(buf, 1, len, s->f);
    if (got == 0 && ferror(s->f))
        return -1;
    s->pos += got;
    return (int64_t)got;
}

static void static_free(void *handle)
{
    StaticFile *s = handle;
    fclose(s->f);
    g_free(s);
}

static bool answer(const pb_http_service *http, pb_http_response *resp, unsigned status,
                   const char *text)
{
    return http->respond(http->ctx, resp, status, "text/plain; charset=utf-8", text, strlen(text));
}

bool policy_static_serve(const pb_http_service *http, const char *dir, const pb_http_request *req,
                         pb_http_response *resp)
{
    if (req->method == NULL ||
        (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0)) {
        http->add_header(http->ctx, resp, "Allow", "GET, HEAD");
        return answer(http, resp, 405, "method not allowed: GET or HEAD\n");
    }
    const char *name = req->path;
    if (name == NULL || !g_str_has_prefix(name, POLICY_STATIC_PREFIX) || dir == NULL ||
        *dir == '\0')
        return answer(http, resp, 404, "not found\n");
    name += strlen(POLICY_STATIC_PREFIX);
    if (!policy_static_name_valid(name))
        return answer(http, resp, 404, "not found\n");
    g_autofree char *path = g_build_filename(dir, name, NULL);
    /* A link in the directory could point anywhere: only regular files are served. */
    GStatBuf st;
    if (g_lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return answer(http, resp, 404, "not found\n");
    FILE *f = g_fopen(path, "rb");
    if (f == NULL)
        return answer(http, resp, errno == EACCES ? 403 : 404, "cannot open\n");
    StaticFile *s = g_new0(StaticFile, 1);
    s->f = f;
    /* The builder renames a new file into place: a client gets one whole version. */
    if (PB_HAS_FIELD(pb_http_service, http, respond_range) && http->respond_range != NULL)
        return http->respond_range(http->ctx, req, resp, "application/octet-stream",
                                   (uint64_t)st.st_size, static_read, static_free, s);
    return http->respond_stream(http->ctx, resp, 200, "application/octet-stream",
                                (int64_t)st.st_size, static_read, static_free, s);
}
