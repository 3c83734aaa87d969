/* imaging-api.h - the pure parts of the imaging API (doc/imaging-api.md): request paths,
 * hash lists, device identities. Bytes in, structs out; no sockets, no files. */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

#define IMAGING_PREFIX      "/imaging/v1/"
#define IMAGING_MISSING_MAX 65536 /* hashes one chunks/missing request may ask about */

typedef enum {
    IMAGING_EP_NONE = 0, /* not an endpoint: 404 */
    IMAGING_EP_IMAGES,   /* images */
    IMAGING_EP_IMAGE,    /* images/NAME */
    IMAGING_EP_INFO,     /* images/NAME/info */
    IMAGING_EP_CHUNK,    /* chunks/HASH */
    IMAGING_EP_MISSING,  /* chunks/missing */
    IMAGING_EP_WORK,     /* work */
    IMAGING_EP_RESULTS,  /* results */
    IMAGING_EP_LOG,      /* log */
    IMAGING_EP_STATS,    /* stats */
} ImagingEndpoint;

typedef struct {
    ImagingEndpoint ep;
    char name[129];  /* IMAGE, INFO: a valid image name */
    guint8 hash[32]; /* CHUNK */
    char hash_hex[65];
} ImagingPath;

/* Splits a percent-decoded request path. Image names must pass pb_name_valid (so no path
 * ever reaches outside the store), hashes must be 64 lower-case hex digits; anything else
 * is IMAGING_EP_NONE. */
ImagingEndpoint imaging_path_parse(const char *path, ImagingPath *out);

/* One hash per line (LF or CRLF, blank lines skipped); *n_out hashes in a new array of
 * 32-byte items. NULL with a reason when a line is not a hash or there are more than max. */
guint8 *imaging_hash_list_parse(const char *text, gsize len, gsize max, gsize *n_out,
                                GError **error);

/* "aa:bb:cc:dd:ee:ff", "aa-bb-..." or 12 hex digits -> 6 bytes. */
gboolean imaging_mac_parse(const char *text, guint8 mac[6]);
/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (or 32 hex digits) -> 16 bytes in PXE option
 * 97 order (the first three fields little-endian), as pb_policy_request.uuid wants them. */
gboolean imaging_uuid_parse(const char *text, guint8 uuid[16]);

/* An imaging server as a catalog entry's location names it: HOST[:PORT] (HOST a name, an
 * IPv4 address or [IPv6]) or http(s)://HOST[:PORT], nothing after. */
gboolean imaging_location_valid(const char *text);

G_END_DECLS
