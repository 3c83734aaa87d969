/* policy-match.c - which rule applies to a device: the first enabled rule whose match holds.
 * Rules that hinge on an exact MAC, UUID or serial (directly, through an all: of which one
 * member is exact, or through a group listing machines) are indexed by those values, so a
 * fleet file of a thousand per-machine rules costs a hash probe, not a thousand tests. */
#include "policy-rules.h"

#include <string.h>

static const char *field_text(const PolicyDevice *d, PolicyField f)
{
    switch (f) {
    case POLICY_FIELD_MAC:
        return d->mac[0] ? d->mac : NULL;
    case POLICY_FIELD_UUID:
        return d->uuid[0] ? d->uuid : NULL;
    case POLICY_FIELD_SERIAL:
        return d->serial;
    case POLICY_FIELD_ASSET_TAG:
        return d->asset_tag;
    case POLICY_FIELD_MANUFACTURER:
        return d->manufacturer;
    case POLICY_FIELD_MODEL:
        return d->product;
    case POLICY_FIELD_BIOS_VERSION:
        return d->bios_version;
    case POLICY_FIELD_USER_CLASS:
        return d->user_class;
    case POLICY_FIELD_VENDOR_CLASS:
        return d->vendor_class;
    case POLICY_FIELD_ARCH:
        return d->arch >= 0 ? policy_arch_name(d->arch) : NULL;
    default:
        return NULL;
    }
}

/* Case-insensitive substring tests without allocating per comparison for the common
 * (ASCII) case. */
static gboolean ci_contains(const char *hay, const char *needle)
{
    gsize n = strlen(needle);
    if (n == 0)
        return TRUE;
    for (const char *p = hay; *p; p++)
        if (g_ascii_strncasecmp(p, needle, n) == 0)
            return TRUE;
    return FALSE;
}

static gboolean ci_ends(const char *hay, const char *needle)
{
    gsize h = strlen(hay), n = strlen(needle);
    return n <= h && g_ascii_strcasecmp(hay + h - n, needle) == 0;
}

gboolean policy_cond_eval(const PolicyRules *rules, const PolicyCond *c, const PolicyDevice *d)
{
    switch (c->op) {
    case POLICY_OP_TRUE:
        return TRUE;
    case POLICY_OP_ALL:
        for (guint i = 0; i < c->kids->len; i++)
            if (!policy_cond_eval(rules, g_ptr_array_index(c->kids, i), d))
                return FALSE;
        return TRUE;
    case POLICY_OP_ANY:
        for (guint i = 0; i < c->kids->len; i++)
            if (policy_cond_eval(rules, g_ptr_array_index(c->kids, i), d))
                return TRUE;
        return FALSE;
    case POLICY_OP_NOT:
        return !policy_cond_eval(rules, g_ptr_array_index(c->kids, 0), d);
    case POLICY_OP_GROUP: {
        const PolicyGroup *g = g_ptr_array_index(rules->groups, c->group);
        return policy_cond_eval(rules, g->match, d);
    }
    case POLICY_OP_CIDR: {
        const PolicyIp *ip = c->field == POLICY_FIELD_RELAY ? &d->relay : &d->ip;
        return policy_ip_in(ip, &c->net, c->prefix);
    }
    case POLICY_OP_LT:
    case POLICY_OP_LE:
    case POLICY_OP_EQ:
    case POLICY_OP_GE:
    case POLICY_OP_GT:
    case POLICY_OP_NE: {
        guint64 have = c->field == POLICY_FIELD_RAM ? d->ram_mb : d->disk_gb;
        if (have == 0)
            return FALSE; /* unknown sizes match no comparison, not even <> */
        gint64 v = (gint64)MIN(have, (guint64)G_MAXINT64);
        switch (c->op) {
        case POLICY_OP_LT:
            return v < c->number;
        case POLICY_OP_LE:
            return v <= c->number;
        case POLICY_OP_EQ:
            return v == c->number;
        case POLICY_OP_GE:
            return v >= c->number;
        case POLICY_OP_GT:
            return v > c->number;
        default:
            return v != c->number;
        }
    }
    case POLICY_OP_EQUALS:
        if (c->field == POLICY_FIELD_ARCH)
            return d->arch >= 0 && d->arch == c->number;
        break;
    default:
        break;
    }
    const char *have = field_text(d, c->field);
    if (c->field == POLICY_FIELD_ARCH && have == NULL && d->arch >= 0)
        have = ""; /* an unnamed architecture number still matches regexes like .* */
    if (have == NULL)
        return FALSE;
    switch (c->op) {
    case POLICY_OP_EQUALS:
        return g_ascii_strcasecmp(have, c->text) == 0;
    case POLICY_OP_CONTAINS:
        return ci_contains(have, c->text);
    case POLICY_OP_STARTS_WITH:
        return g_ascii_strncasecmp(have, c->text, strlen(c->text)) == 0;
    case POLICY_OP_ENDS_WITH:
        return ci_ends(have, c->text);
    case POLICY_OP_REGEX:
        return g_regex_match(c->regex, have, 0, NULL);
    default:
        return FALSE;
    }
}

/* ---- the index ------------------------------------------------------------------------ */

/* Appends to keys the exact identities one of which a device must have for c to hold;
 * FALSE when c can hold without any (then the rule must always be scanned). */
static gboolean index_keys(const PolicyRules *rules, const PolicyCond *c, GPtrArray *keys,
                           int depth)
{
    if (depth > 40)
        return FALSE;
    switch (c->op) {
    case POLICY_OP_EQUALS:
        if (c->field == POLICY_FIELD_MAC) {
            g_ptr_array_add(keys, g_strconcat("mac:", c->text, NULL));
            return TRUE;
        }
        if (c->field == POLICY_FIELD_UUID) {
            g_ptr_array_add(keys, g_strconcat("uuid:", c->text, NULL));
            return TRUE;
        }
        if (c->field == POLICY_FIELD_SERIAL) {
            /* Serials compare case-insensitively, so the key is folded. */
            g_ptr_array_add(keys, g_strconcat("serial:", c->text, NULL));
            return TRUE;
        }
        return FALSE;
    case POLICY_OP_ANY: {
        guint before = keys->len;
        for (guint i = 0; i < c->kids->len; i++) {
            if (!index_keys(rules, g_ptr_array_index(c->kids, i), keys, depth + 1)) {
                g_ptr_array_remove_range(keys, before, keys->len - before);
                return FALSE;
            }
        }
        return c->kids->len > 0;
    }
    case POLICY_OP_ALL:
        /* Any one exact member is enough to narrow the candidates. */
        for (guint i = 0; i < c->kids->len; i++)
            if (index_keys(rules, g_ptr_array_index(c->kids, i), keys, depth + 1))
                return TRUE;
        return FALSE;
    case POLICY_OP_GROUP: {
        const PolicyGroup *g = g_ptr_array_index(rules->groups, c->group);
        return index_keys(rules, g->match, keys, depth + 1);
    }
    default:
        return FALSE;
    }
}

void policy_rules_build_index(PolicyRules *rules);
void policy_rules_build_index(PolicyRules *rules)
{
    g_hash_table_remove_all(rules->index);
    g_array_set_size(rules->scan, 0);
    for (guint i = 0; i < rules->rules->len; i++) {
        const PolicyRule *r = g_ptr_array_index(rules->rules, i);
        if (!r->enabled)
            continue;
        g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func(g_free);
        if (!index_keys(rules, r->match, keys, 0)) {
            g_array_append_val(rules->scan, i);
            continue;
        }
        for (guint k = 0; k < keys->len; k++) {
            const char *key = g_ptr_array_index(keys, k);
            GArray *list = g_hash_table_lookup(rules->index, key);
            if (list == NULL) {
                list = g_array_new(FALSE, FALSE, sizeof(guint));
                g_hash_table_insert(rules->index, g_strdup(key), list);
            }
            /* The same rule may list a key twice; keep each index once, ascending. */
            if (list->len == 0 || g_array_index(list, guint, list->len - 1) != i)
                g_array_append_val(list, i);
        }
    }
}

static void explain(GString *why, const PolicyRule *r, gboolean hit)
{
    g_string_append_printf(why, "  %s (line %u): %s\n", r->name, r->line,
                           hit ? "matches" : "does not match");
}

static void add_candidates(const PolicyRules *rules, const char *prefix, const char *value,
                           GArray *out)
{
    if (value == NULL || *value == '\0')
        return;
    char key[300];
    g_snprintf(key, sizeof(key), "%s%s", prefix, value);
    if (g_str_has_prefix(prefix, "serial"))
        for (char *p = key; *p; p++)
            *p = g_ascii_tolower(*p);
    GArray *list = g_hash_table_lookup(rules->index, key);
    if (list != NULL)
        g_array_append_vals(out, list->data, list->len);
}

static gint cmp_uint(gconstpointer a, gconstpointer b)
{
    guint x = *(const guint *)a, y = *(const guint *)b;
    return x < y ? -1 : x > y;
}

const PolicyRule *policy_rules_match(const PolicyRules *rules, const PolicyDevice *dev,
                                     GString *why)
{
    g_return_val_if_fail(rules != NULL && dev != NULL, NULL);
    if (why != NULL) {
        /* Explaining walks every rule so the administrator sees why the earlier ones
         * missed; the index is only a shortcut to the same answer. */
        for (guint i = 0; i < rules->rules->len; i++) {
            const PolicyRule *r = g_ptr_array_index(rules->rules, i);
            if (!r->enabled) {
                g_string_append_printf(why, "  %s (line %u): disabled\n", r->name, r->line);
                continue;
            }
            gboolean hit = policy_cond_eval(rules, r->match, dev);
            explain(why, r, hit);
            if (hit)
                return r;
        }
        g_string_append_printf(why, "  no rule matched: the default applies\n");
        return rules->fallback;
    }

    /* Candidates: the scanned rules plus the indexed ones for this device's identities,
     * tried in file order. */
    GArray *cand = g_array_sized_new(FALSE, FALSE, sizeof(guint), 64);
    g_array_append_vals(cand, rules->scan->data, rules->scan->len);
    guint scanned = cand->len;
    add_candidates(rules, "mac:", dev->mac, cand);
    add_candidates(rules, "uuid:", dev->uuid, cand);
    add_candidates(rules, "serial:", dev->serial, cand);
    if (cand->len > scanned)
        g_array_sort(cand, cmp_uint);
    const PolicyRule *found = rules->fallback;
    guint last = G_MAXUINT;
    for (guint i = 0; i < cand->len; i++) {
        guint idx = g_array_index(cand, guint, i);
        if (idx == last)
            continue;
        last = idx;
        const PolicyRule *r = g_ptr_array_index(rules->rules, idx);
        if (policy_cond_eval(rules, r->match, dev)) {
            found = r;
            break;
        }
    }
    g_array_unref(cand);
    return found;
}
