/* imaging-cred.h - per-device credentials (preboot-imaging(8), "Per-device credentials"):
 * what GET work hands a device with capture, restore or session work, so that the preboot
 * environment needs no server-wide token on its kernel command line.
 *
 * A credential names its work and is signed with a key only the server holds:
 *   pbc1~KIND~MAC~ISSUED~EXPIRES~WORK_ID~IMAGE~HMAC
 * KIND capture, restore or session (IMAGE: the session's name), MAC 12 lower-case hex digits,
 * ISSUED Unix milliseconds (so that the server can refuse credentials issued before the work
 * was committed or reported), EXPIRES Unix seconds, WORK_ID the work's id (hex), IMAGE a
 * valid image name, HMAC the hex HMAC-SHA256 of everything before its '~'. '~' is in no
 * field (names are [A-Za-z0-9._-]) and is a token character of RFC 6750, so the split is
 * unambiguous and the credential travels as "Bearer" as it is. Nothing is stored to mint or
 * check one: the key, the clock and the text are enough.
 * Pure functions: no sockets, no files, no clock. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define IMAGING_CRED_PREFIX  "pbc1~"
#define IMAGING_CRED_KEY_LEN 32  /* bytes of the server's key */
#define IMAGING_CRED_MAX     512 /* longest credential text accepted */

typedef enum {
    IMAGING_CRED_CAPTURE = 1, /* chunk puts, the commit of IMAGE, the report of its capture */
    IMAGING_CRED_RESTORE = 2, /* the report of the restore of IMAGE only */
    IMAGING_CRED_SESSION = 3, /* the report of the multicast session IMAGE only */
} ImagingCredKind;

typedef struct {
    ImagingCredKind kind;
    guint8 mac[6];
    gint64 issued_ms; /* Unix milliseconds */
    gint64 expires;   /* Unix seconds: valid while now < expires */
    char work_id[65];
    char image[129];
    char mac_text[18]; /* filled by imaging_cred_check: "aa:bb:cc:dd:ee:ff" */
} ImagingCred;

/* The token of "Authorization: Bearer TOKEN" (NULL without one). Points into header. */
const char *imaging_bearer_token(const char *authorization);
/* "capture", "restore", "session" (the report's type), NULL for anything else. */
const char *imaging_cred_kind_name(ImagingCredKind k);
/* TRUE when token has the form of a device credential (whether or not it is genuine). */
gboolean imaging_cred_is(const char *token);
/* The credential for c, signed with key. NULL when c has no valid image name or work id. */
char *imaging_cred_mint(const guint8 key[IMAGING_CRED_KEY_LEN], const ImagingCred *c);
/* Parses token and checks its signature against key (not its expiry: the caller has the
 * clock). FALSE for anything malformed, too long or signed with another key. */
gboolean imaging_cred_check(const guint8 key[IMAGING_CRED_KEY_LEN], const char *token,
                            ImagingCred *out);

G_END_DECLS
