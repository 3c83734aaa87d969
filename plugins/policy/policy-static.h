/* policy-static.h - the preboot environment's files (preboot-bootenv(8): vmlinuz,
 * initrd.img) served read-only on the daemon's HTTP listener under /preboot/, so that iPXE
 * fetches them over HTTP rather than TFTP. One directory, flat, names checked. */
#pragma once

#include <glib.h>
#include <preboot/http.h>

G_BEGIN_DECLS

#define POLICY_STATIC_PREFIX "/preboot/"

/* TRUE for a file name the route serves: one path component of 1-128 letters, digits,
 * '.', '-' and '_', not starting with '.' (no "..", no hidden or temporary files: the
 * builder writes ".initrd.img.tmp" and renames it). Pure. */
gboolean policy_static_name_valid(const char *name);

/* Answers req (path under POLICY_STATIC_PREFIX) from directory dir: 200 with the file
 * (206 for a Range, through the service's respond_range), 404 for a bad or missing name
 * or anything but a regular file, 405 for anything but GET and HEAD. */
bool policy_static_serve(const pb_http_service *http, const char *dir, const pb_http_request *req,
                         pb_http_response *resp);

G_END_DECLS
