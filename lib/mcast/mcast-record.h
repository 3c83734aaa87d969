/* mcast-record.h - a session's record as the multicast plugin serves it on the daemon's
 * HTTP listener (GET /multicast/v1/sessions/NAME, preboot-multicast(8)): the session's
 * name, the image it sends or sent, its state and the image's manifest seal. A receiver
 * started after its session ended hears no announcement; the record tells it which image
 * the session carried, so it restores that image by unicast from the imaging server (the
 * manifest it fetches must have this seal). Pure: bytes in, record out; record in, text
 * out. */
#pragma once

#include "mcast-proto.h"

G_BEGIN_DECLS

#define PB_MCAST_RECORD_PREFIX "/multicast/v1/sessions/"
#define PB_MCAST_RECORD_MAX    4096 /* bytes of one record's text */

typedef struct {
    char session[MCAST_NAME_MAX + 1];
    char image[MCAST_NAME_MAX + 1];
    guint8 state;                /* McastSessionState */
    guint8 seal[MCAST_HASH_LEN]; /* the image's manifest seal */
} PbMcastRecord;

/* One JSON object: {"session":..,"image":..,"state":"done","seal":"<64 hex>"}, newline. */
void pb_mcast_record_build(const PbMcastRecord *r, GString *out);
/* Parses a record: every field present and valid (names as mcast_name_valid, a known state,
 * 64 hex digits); other members are ignored. FALSE with a reason otherwise. */
gboolean pb_mcast_record_parse(const char *text, gsize len, PbMcastRecord *out, GError **error);

G_END_DECLS
