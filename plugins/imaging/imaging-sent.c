/* imaging-sent.c - which images a client has retrieved (imaging-sent.h). */
#include "imaging-sent.h"

#include <stdlib.h>
#include <string.h>

/* Downloads followed at once, whatever their size: completed ones hold no hashes. */
#define ENTRIES_MAX 4096

typedef struct {
    char *source, *image;
    guint8 seal[IMAGING_SENT_HASH_LEN];
    guint8 *hashes; /* sorted, unique; NULL once done */
    guint8 *got;    /* one byte per hash */
    gsize n, left;
    gboolean done;
    gint64 when; /* last progress */
} Entry;

struct ImagingSent {
    GQueue all; /* Entry*, oldest first */
    guint per_source;
    gsize max_hashes, hashes;
    gint64 ttl_us;
};

static int cmp_hash(const void *a, const void *b)
{
    return memcmp(a, b, IMAGING_SENT_HASH_LEN);
}

static void entry_drop_hashes(ImagingSent *s, Entry *e)
{
    s->hashes -= e->n;
    g_clear_pointer(&e->hashes, g_free);
    g_clear_pointer(&e->got, g_free);
    e->n = e->left = 0;
}

static void entry_remove(ImagingSent *s, GList *link)
{
    Entry *e = link->data;
    entry_drop_hashes(s, e);
    g_free(e->source);
    g_free(e->image);
    g_free(e);
    g_queue_delete_link(&s->all, link);
}

ImagingSent *imaging_sent_new(guint per_source, gsize max_hashes, gint64 ttl_us)
{
    ImagingSent *s = g_new0(ImagingSent, 1);
    g_queue_init(&s->all);
    s->per_source = MAX(per_source, 1);
    s->max_hashes = max_hashes;
    s->ttl_us = ttl_us;
    return s;
}

void imaging_sent_free(ImagingSent *s)
{
    if (s == NULL)
        return;
    while (s->all.head != NULL)
        entry_remove(s, s->all.head);
    g_free(s);
}

static void expire(ImagingSent *s, gint64 now_us)
{
    for (GList *l = s->all.head, *next; l != NULL; l = next) {
        next = l->next;
        Entry *e = l->data;
        if (now_us - e->when > s->ttl_us)
            entry_remove(s, l);
    }
}

/* Makes room for one more entry of source holding n hashes: the source's oldest first,
 * then everyone's oldest. */
static void make_room(ImagingSent *s, const char *source, gsize n)
{
    guint mine = 0;
    for (GList *l = s->all.head; l != NULL; l = l->next)
        mine += strcmp(((Entry *)l->data)->source, source) == 0;
    for (GList *l = s->all.head, *next; l != NULL && mine >= s->per_source; l = next) {
        next = l->next;
        if (strcmp(((Entry *)l->data)->source, source) == 0) {
            entry_remove(s, l);
            mine--;
        }
    }
    while (s->all.head != NULL && (s->all.length >= ENTRIES_MAX || s->hashes + n > s->max_hashes))
        entry_remove(s, s->all.head);
}

static gboolean same(const Entry *e, const char *source, const char *image)
{
    return strcmp(e->source, source) == 0 && strcmp(e->image, image) == 0;
}

gboolean imaging_sent_manifest(ImagingSent *s, const char *source, const char *image,
                               const guint8 seal[IMAGING_SENT_HASH_LEN], const guint8 *hashes,
                               gsize n, gint64 now_us)
{
    expire(s, now_us);
    for (GList *l = s->all.head, *next; l != NULL; l = next) {
        next = l->next;
        Entry *e = l->data;
        if (e->done || !same(e, source, image))
            continue;
        if (memcmp(e->seal, seal, IMAGING_SENT_HASH_LEN) == 0) {
            e->when = now_us; /* resumed */
            return FALSE;
        }
        entry_remove(s, l); /* the image was replaced meanwhile: start afresh */
    }
    guint8 *sorted = g_memdup2(hashes, n * IMAGING_SENT_HASH_LEN);
    if (n > 0) /* qsort's array may not be NULL, even empty (C11 7.22.5) */
        qsort(sorted, n, IMAGING_SENT_HASH_LEN, cmp_hash);
    gsize u = 0;
    for (gsize i = 0; i < n; i++)
        if (u == 0 || memcmp(sorted + (u - 1) * IMAGING_SENT_HASH_LEN,
                             sorted + i * IMAGING_SENT_HASH_LEN, IMAGING_SENT_HASH_LEN) != 0)
            memmove(sorted + u++ * IMAGING_SENT_HASH_LEN, sorted + i * IMAGING_SENT_HASH_LEN,
                    IMAGING_SENT_HASH_LEN);
    if (u > s->max_hashes) {
        g_free(sorted); /* larger than everything we may hold: followed by its report only */
        return FALSE;
    }
    make_room(s, source, u);
    Entry *e = g_new0(Entry, 1);
    e->source = g_strdup(source);
    e->image = g_strdup(image);
    memcpy(e->seal, seal, IMAGING_SENT_HASH_LEN);
    e->when = now_us;
    if (u == 0) {
        g_free(sorted);
        e->done = TRUE;
    } else {
        e->hashes = sorted;
        e->got = g_malloc0(u);
        e->n = e->left = u;
        s->hashes += u;
    }
    g_queue_push_tail(&s->all, e);
    return e->done;
}

guint imaging_sent_chunk(ImagingSent *s, const char *source,
                         const guint8 hash[IMAGING_SENT_HASH_LEN], gint64 now_us)
{
    guint completed = 0;
    for (GList *l = s->all.head; l != NULL; l = l->next) {
        Entry *e = l->data;
        if (e->done || strcmp(e->source, source) != 0)
            continue;
        const guint8 *hit = bsearch(hash, e->hashes, e->n, IMAGING_SENT_HASH_LEN, cmp_hash);
        if (hit == NULL)
            continue;
        gsize i = (gsize)(hit - e->hashes) / IMAGING_SENT_HASH_LEN;
        e->when = now_us;
        if (e->got[i])
            continue;
        e->got[i] = 1;
        if (--e->left == 0) {
            entry_drop_hashes(s, e);
            e->done = TRUE;
            completed++;
        }
    }
    return completed;
}

gboolean imaging_sent_report(ImagingSent *s, const char *source, const char *image, gint64 now_us)
{
    expire(s, now_us);
    gboolean counted_already = FALSE;
    for (GList *l = s->all.head, *next; l != NULL; l = next) {
        next = l->next;
        Entry *e = l->data;
        if (!same(e, source, image))
            continue;
        if (e->done) {
            if (counted_already)
                continue; /* one report uses up one download */
            counted_already = TRUE;
        }
        entry_remove(s, l);
    }
    return !counted_already;
}

guint imaging_sent_tracked(const ImagingSent *s)
{
    return s->all.length;
}

gsize imaging_sent_hashes(const ImagingSent *s)
{
    return s->hashes;
}
