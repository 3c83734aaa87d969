/* imaging-sent.h - which images a client has retrieved, for the legacy "Images Sent".
 *
 * D.11.2 counts images retrieved from this server. A client that reports its restore
 * (POST results, type restore, result ok) says so itself; one that never reports has
 * retrieved an image when it has downloaded its manifest and then every chunk the manifest
 * names. This tracker follows the second kind per client address and makes sure that a
 * client doing both counts once: a completed download is counted when its last chunk is
 * sent, and the client's report of the same image afterwards is then not counted again.
 *
 * Pure (no I/O, no clock of its own): the plugin passes the time. Bounded: at most
 * per_source downloads are followed per address and at most max_hashes chunk hashes in
 * total (the oldest downloads are forgotten first); a completed download waits for its
 * report at most ttl_us. A client that is forgotten before it finishes is counted by its
 * report, if it sends one, and not at all otherwise.
 */
#ifndef IMAGING_SENT_H
#define IMAGING_SENT_H

#include <glib.h>

#define IMAGING_SENT_HASH_LEN 32

typedef struct ImagingSent ImagingSent;

ImagingSent *imaging_sent_new(guint per_source, gsize max_hashes, gint64 ttl_us);
void imaging_sent_free(ImagingSent *s);

/* A manifest of image went to source whole. hashes: its DATA chunks (any order, repeats
 * allowed), n of them. An unfinished download of the same image with the same seal by the
 * same source goes on (a restore resumed after a dropped connection); any other starts
 * afresh. A manifest naming no DATA chunk is a download completed at once: returns TRUE
 * then (count it), FALSE otherwise. */
gboolean imaging_sent_manifest(ImagingSent *s, const char *source, const char *image,
                               const guint8 seal[IMAGING_SENT_HASH_LEN], const guint8 *hashes,
                               gsize n, gint64 now_us);

/* A chunk went to source whole. Returns how many of source's downloads this completed
 * (each an image sent). */
guint imaging_sent_chunk(ImagingSent *s, const char *source,
                         const guint8 hash[IMAGING_SENT_HASH_LEN], gint64 now_us);

/* source reports a successful restore of image: TRUE when it is to be counted, FALSE when
 * a completed download of that image by source was counted already (which the report then
 * uses up). Forgets source's unfinished downloads of image either way. */
gboolean imaging_sent_report(ImagingSent *s, const char *source, const char *image, gint64 now_us);

/* Downloads followed (finished and not), and hashes held: for tests and status. */
guint imaging_sent_tracked(const ImagingSent *s);
gsize imaging_sent_hashes(const ImagingSent *s);

#endif
