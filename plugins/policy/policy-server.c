/* policy-server.c - the policy engine's side of the policy UDP protocol: the device a
 * request describes, and the reply cache. The wire format itself is lib/proto's. */
#include "policy-server.h"

#include <string.h>

static void ip_from_addr(const PbAddr *a, PolicyIp *ip)
{
    memset(ip, 0, sizeof(*ip));
    if (a->family != 4 && a->family != 6)
        return;
    ip->family = a->family;
    memcpy(ip->addr, a->addr, a->family == 6 ? 16 : 4);
}

static char *dup_clean(const char *s)
{
    if (s == NULL)
        return NULL;
    char *r = g_strstrip(g_strdup(s));
    if (*r == '\0')
        g_clear_pointer(&r, g_free);
    return r;
}

void policy_msg_to_device(const PolicyMsg *m, PolicyDevice *d)
{
    policy_device_init(d);
    if (m->mac_len > 0)
        policy_mac_format(m->mac, m->mac_len, d->mac);
    if (m->has_uuid)
        policy_uuid_format(m->uuid, d->uuid);
    if (m->has_arch)
        d->arch = m->arch;
    ip_from_addr(&m->client_ip, &d->ip);
    ip_from_addr(&m->relay_ip, &d->relay);
    d->user_class = dup_clean(m->user_class);
    d->vendor_class = dup_clean(m->vendor_class);
    d->serial = dup_clean(m->serial);
    if (d->serial != NULL && policy_serial_is_placeholder(d->serial))
        g_clear_pointer(&d->serial, g_free);
    d->manufacturer = dup_clean(m->manufacturer);
    d->product = dup_clean(m->product);
    d->asset_tag = dup_clean(m->asset_tag);
    if (d->asset_tag != NULL && policy_serial_is_placeholder(d->asset_tag))
        g_clear_pointer(&d->asset_tag, g_free);
    d->bios_version = dup_clean(m->bios_version);
    d->ram_mb = m->ram_mb;
    d->disk_gb = m->disk_gb;
}

/* ---- the reply cache ------------------------------------------------------------------ */

typedef struct {
    char *key;
    GBytes *reply;
    gint64 at;
} CacheEntry;

struct PolicyReplyCache {
    GHashTable *map; /* key -> CacheEntry* */
    GQueue order;    /* CacheEntry*, oldest first */
    guint max;
    gint64 ttl;
};

static void entry_free(CacheEntry *e)
{
    g_free(e->key);
    g_bytes_unref(e->reply);
    g_free(e);
}

PolicyReplyCache *policy_reply_cache_new(guint max_entries, gint64 ttl_us)
{
    PolicyReplyCache *c = g_new0(PolicyReplyCache, 1);
    c->map = g_hash_table_new(g_str_hash, g_str_equal);
    g_queue_init(&c->order);
    c->max = MAX(max_entries, 1);
    c->ttl = ttl_us;
    return c;
}

void policy_reply_cache_free(PolicyReplyCache *c)
{
    if (c == NULL)
        return;
    g_hash_table_unref(c->map);
    g_queue_clear_full(&c->order, (GDestroyNotify)entry_free);
    g_free(c);
}

static void expire(PolicyReplyCache *c, gint64 now)
{
    CacheEntry *e;
    while ((e = g_queue_peek_head(&c->order)) != NULL &&
           (now - e->at > c->ttl || g_queue_get_length(&c->order) > c->max)) {
        g_queue_pop_head(&c->order);
        g_hash_table_remove(c->map, e->key);
        entry_free(e);
    }
}

static char *cache_key(const char *peer, guint32 id, guint8 type)
{
    return g_strdup_printf("%s|%08x|%02x", peer, id, type);
}

GBytes *policy_reply_cache_get(PolicyReplyCache *c, const char *peer, guint32 id, guint8 type,
                               gint64 now_us)
{
    expire(c, now_us);
    g_autofree char *k = cache_key(peer, id, type);
    CacheEntry *e = g_hash_table_lookup(c->map, k);
    return e ? g_bytes_ref(e->reply) : NULL;
}

void policy_reply_cache_put(PolicyReplyCache *c, const char *peer, guint32 id, guint8 type,
                            GBytes *reply, gint64 now_us)
{
    char *k = cache_key(peer, id, type);
    CacheEntry *old = g_hash_table_lookup(c->map, k);
    if (old != NULL) {
        g_queue_remove(&c->order, old);
        g_hash_table_remove(c->map, k);
        entry_free(old);
    }
    CacheEntry *e = g_new0(CacheEntry, 1);
    e->key = k;
    e->reply = g_bytes_ref(reply);
    e->at = now_us;
    g_queue_push_tail(&c->order, e);
    g_hash_table_insert(c->map, e->key, e);
    expire(c, now_us);
}

guint policy_reply_cache_size(PolicyReplyCache *c)
{
    return g_queue_get_length(&c->order);
}
