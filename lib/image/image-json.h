/* image-json.h - the little JSON the imaging API speaks (imaging-api.md): a catalog, a
 * device's work, a log. A small reader (pure: bytes in, tree out, bounded depth and size,
 * so a hostile server cannot make preboot-img or prebootd recurse or allocate without
 * limit) and a quoting helper for what we write. No library dependency: the API's bodies are
 * a handful of flat objects, and json-glib is not installed in the preboot environment. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Self-contained (glib only), so the policy plugin compiles it in too. */
#define PB_JSON_ERROR (pb_json_error_quark())
GQuark pb_json_error_quark(void);

#define PB_JSON_DEPTH_MAX 32
#define PB_JSON_TEXT_MAX  (16u * 1024u * 1024u)

typedef enum {
    PB_JSON_NULL,
    PB_JSON_BOOL,
    PB_JSON_NUMBER,
    PB_JSON_STRING,
    PB_JSON_ARRAY,
    PB_JSON_OBJECT,
} PbJsonType;

typedef struct PbJson PbJson;
struct PbJson {
    PbJsonType type;
    gboolean boolean;
    double number;
    char *text;       /* STRING: the decoded UTF-8; NUMBER: the digits as written */
    GPtrArray *keys;  /* OBJECT: char *, parallel to items */
    GPtrArray *items; /* ARRAY and OBJECT: PbJson * */
};

PbJson *pb_json_parse(const char *text, gsize len, GError **error);
void pb_json_free(PbJson *j);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbJson, pb_json_free)

/* The member key of an object (the last one when repeated), or NULL. */
const PbJson *pb_json_get(const PbJson *obj, const char *key);
/* A string member, or NULL when absent or not a string. */
const char *pb_json_get_string(const PbJson *obj, const char *key);
/* A non-negative integer member; FALSE when absent, not a number or not an integer. */
gboolean pb_json_get_uint(const PbJson *obj, const char *key, guint64 *out);

/* Appends s as a JSON string, quotes included (NULL as null). */
void pb_json_append_string(GString *out, const char *s);

G_END_DECLS
