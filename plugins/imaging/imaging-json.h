/* imaging-json.h - the little JSON the imaging API needs: one flat object of strings,
 * numbers, booleans and nulls in (result reports), escaped strings out. Pure functions, on
 * lib/image's reader and writer (image-json.h), which link with them (libpbimage-core). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define IMAGING_JSON_MAX_KEYS 64

/* Parses one JSON object whose values are strings, numbers, true, false or null (nested
 * objects and arrays are refused) into name -> text (numbers as written, booleans as
 * "true"/"false", null as no entry). NULL with a reason in error otherwise. */
GHashTable *imaging_json_parse_flat(const char *text, gsize len, GError **error);

/* Appends s as a JSON string (quotes included); NULL is written as "" (not null). */
void imaging_json_string(GString *out, const char *s);

G_END_DECLS
