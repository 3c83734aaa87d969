/* policy-rules.c - reads a rules file (preboot-rules.yaml(5)) into PolicyRules. Pure: bytes
 * in, rules out. Strict on purpose: an unknown key or a bad value is an error with its
 * file:line, because a typo in the file that decides which machines get re-imaged must not
 * pass silently. */
#include "policy-rules.h"

#include "mcast-proto.h"

#include <string.h>
#include <yaml.h>

/* Not G_DEFINE_QUARK: its static string would dangle once the module is unloaded. */
GQuark policy_rules_error_quark(void)
{
    return g_quark_from_string("policy-rules-error-quark");
}

typedef struct {
    yaml_document_t *doc;
    const char *file;
    PolicyRules *rules;
    GError **error;
    guint budget; /* condition nodes left: YAML aliases can make a small file expand */
} Ctx;

static guint node_line(const yaml_node_t *n)
{
    return (guint)n->start_mark.line + 1;
}

static gboolean fail(Ctx *c, const yaml_node_t *n, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static gboolean fail(Ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(c->error, POLICY_RULES_ERROR, 0, "%s:%u: %s", c->file, n ? node_line(n) : 0, msg);
    return FALSE;
}

static yaml_node_t *node(Ctx *c, int id)
{
    return yaml_document_get_node(c->doc, id);
}

static const char *scalar(const yaml_node_t *n)
{
    return n != NULL && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static gboolean want_scalar(Ctx *c, const yaml_node_t *n, const char *what, const char **out)
{
    *out = scalar(n);
    if (*out == NULL)
        return fail(c, n, "%s must be a single value", what);
    return TRUE;
}

static gboolean parse_bool(Ctx *c, const yaml_node_t *n, const char *what, gboolean *out)
{
    const char *s;
    if (!want_scalar(c, n, what, &s))
        return FALSE;
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    for (gsize i = 0; i < G_N_ELEMENTS(yes); i++) {
        if (g_ascii_strcasecmp(s, yes[i]) == 0)
            return *out = TRUE, TRUE;
        if (g_ascii_strcasecmp(s, no[i]) == 0)
            return *out = FALSE, TRUE;
    }
    return fail(c, n, "%s: \"%s\" is not yes or no", what, s);
}

static gboolean parse_uint(Ctx *c, const yaml_node_t *n, const char *what, gint64 max, gint64 *out)
{
    const char *s;
    if (!want_scalar(c, n, what, &s))
        return FALSE;
    char *end = NULL;
    if (!g_ascii_isdigit(s[0]))
        return fail(c, n, "%s: \"%s\" is not a number", what, s);
    guint64 v = g_ascii_strtoull(s, &end, 10);
    if (*end != '\0' || v > (guint64)max)
        return fail(c, n, "%s: \"%s\" is not a number from 0 to %" G_GINT64_FORMAT, what, s, max);
    *out = (gint64)v;
    return TRUE;
}

/* ---- conditions ---------------------------------------------------------------------- */

static const char *const field_names[POLICY_FIELD_N_] = {
    [POLICY_FIELD_MAC] = "mac",
    [POLICY_FIELD_UUID] = "uuid",
    [POLICY_FIELD_SERIAL] = "serial",
    [POLICY_FIELD_ASSET_TAG] = "asset_tag",
    [POLICY_FIELD_MANUFACTURER] = "manufacturer",
    [POLICY_FIELD_MODEL] = "model",
    [POLICY_FIELD_BIOS_VERSION] = "bios_version",
    [POLICY_FIELD_USER_CLASS] = "user_class",
    [POLICY_FIELD_VENDOR_CLASS] = "vendor_class",
    [POLICY_FIELD_ARCH] = "arch",
    [POLICY_FIELD_IP] = "ip",
    [POLICY_FIELD_RELAY] = "relay",
    [POLICY_FIELD_RAM] = "ram",
    [POLICY_FIELD_DISK] = "disk",
    [POLICY_FIELD_GROUP] = "group",
};

const char *policy_field_name(PolicyField f)
{
    return f < POLICY_FIELD_N_ ? field_names[f] : "?";
}

static int field_lookup(const char *key)
{
    for (int i = 0; i < POLICY_FIELD_N_; i++)
        if (strcmp(key, field_names[i]) == 0)
            return i;
    /* Names administrators know from the legacy product's hardware rules. */
    if (strcmp(key, "product") == 0)
        return POLICY_FIELD_MODEL;
    if (strcmp(key, "asset") == 0)
        return POLICY_FIELD_ASSET_TAG;
    if (strcmp(key, "subnet") == 0)
        return POLICY_FIELD_IP;
    if (strcmp(key, "giaddr") == 0)
        return POLICY_FIELD_RELAY;
    return -1;
}

static void cond_free(PolicyCond *c)
{
    if (c == NULL)
        return;
    g_free(c->text);
    if (c->regex != NULL)
        g_regex_unref(c->regex);
    if (c->kids != NULL)
        g_ptr_array_unref(c->kids);
    g_free(c);
}

static PolicyCond *cond_new(PolicyOp op, guint line)
{
    PolicyCond *c = g_new0(PolicyCond, 1);
    c->op = op;
    c->line = line;
    if (op == POLICY_OP_ALL || op == POLICY_OP_ANY || op == POLICY_OP_NOT)
        c->kids = g_ptr_array_new_with_free_func((GDestroyNotify)cond_free);
    return c;
}

static gboolean is_size_field(PolicyField f)
{
    return f == POLICY_FIELD_RAM || f == POLICY_FIELD_DISK;
}

/* "4096", "4 GB", "512M", "1T": ram is counted in MB, disk in GB. */
static gboolean parse_size(const char *s, PolicyField f, gint64 *out)
{
    while (g_ascii_isspace(*s))
        s++;
    if (!g_ascii_isdigit(*s))
        return FALSE;
    char *end;
    guint64 v = g_ascii_strtoull(s, &end, 10);
    if (v > G_MAXINT32)
        return FALSE;
    while (g_ascii_isspace(*end))
        end++;
    gint64 mb;
    if (*end == '\0')
        mb = (gint64)v * (f == POLICY_FIELD_RAM ? 1 : 1024);
    else if (!g_ascii_strcasecmp(end, "m") || !g_ascii_strcasecmp(end, "mb") ||
             !g_ascii_strcasecmp(end, "mib"))
        mb = (gint64)v;
    else if (!g_ascii_strcasecmp(end, "g") || !g_ascii_strcasecmp(end, "gb") ||
             !g_ascii_strcasecmp(end, "gib"))
        mb = (gint64)v * 1024;
    else if (!g_ascii_strcasecmp(end, "t") || !g_ascii_strcasecmp(end, "tb") ||
             !g_ascii_strcasecmp(end, "tib"))
        mb = (gint64)v * 1024 * 1024;
    else
        return FALSE;
    *out = f == POLICY_FIELD_RAM ? mb : mb / 1024;
    return TRUE;
}

static const struct {
    const char *name;
    PolicyOp op;
} op_names[] = {
    {"equals", POLICY_OP_EQUALS},
    {"is", POLICY_OP_EQUALS},
    {"contains", POLICY_OP_CONTAINS},
    {"starts_with", POLICY_OP_STARTS_WITH},
    {"ends_with", POLICY_OP_ENDS_WITH},
    {"regex", POLICY_OP_REGEX},
    {"in", POLICY_OP_CIDR},
    {"<=", POLICY_OP_LE},
    {">=", POLICY_OP_GE},
    {"<>", POLICY_OP_NE},
    {"!=", POLICY_OP_NE},
    {"<", POLICY_OP_LT},
    {">", POLICY_OP_GT},
    {"=", POLICY_OP_EQ},
    {"lt", POLICY_OP_LT},
    {"le", POLICY_OP_LE},
    {"eq", POLICY_OP_EQ},
    {"ge", POLICY_OP_GE},
    {"gt", POLICY_OP_GT},
    {"ne", POLICY_OP_NE},
};

static gboolean is_size_op(PolicyOp op)
{
    return op >= POLICY_OP_LT && op <= POLICY_OP_NE;
}

static guint group_find(const PolicyRules *r, const char *name)
{
    for (guint i = 0; i < r->groups->len; i++) {
        const PolicyGroup *g = g_ptr_array_index(r->groups, i);
        if (strcmp(g->name, name) == 0)
            return i;
    }
    return G_MAXUINT;
}

/* One leaf: field OP value (value already a scalar). */
static PolicyCond *parse_leaf(Ctx *c, PolicyField f, PolicyOp op, const yaml_node_t *vn)
{
    const char *v;
    if (!want_scalar(c, vn, policy_field_name(f), &v))
        return NULL;
    if (c->budget == 0) {
        fail(c, vn, "too many conditions (YAML aliases expanding?)");
        return NULL;
    }
    c->budget--;
    g_autoptr(GError) rerr = NULL;
    PolicyCond *cond = cond_new(op, node_line(vn));
    cond->field = f;

    if (f == POLICY_FIELD_GROUP) {
        if (op != POLICY_OP_EQUALS && op != POLICY_OP_GROUP)
            goto bad_op;
        cond->op = POLICY_OP_GROUP;
        cond->group = group_find(c->rules, v);
        if (cond->group == G_MAXUINT) {
            fail(c, vn, "group \"%s\" is not defined (a group may refer only to groups above it)",
                 v);
            goto out;
        }
        return cond;
    }
    if (is_size_field(f)) {
        if (op == POLICY_OP_EQUALS) {
            /* "ram: '>= 4096'" or "ram: 4096" */
            const char *p = v;
            cond->op = POLICY_OP_EQ;
            for (gsize i = 0; i < G_N_ELEMENTS(op_names); i++) {
                if (is_size_op(op_names[i].op) && g_ascii_isalpha(op_names[i].name[0]) == 0 &&
                    g_str_has_prefix(p, op_names[i].name)) {
                    cond->op = op_names[i].op;
                    p += strlen(op_names[i].name);
                    break;
                }
            }
            v = p;
        } else if (!is_size_op(op)) {
            goto bad_op;
        }
        if (!parse_size(v, f, &cond->number)) {
            fail(c, vn, "%s: \"%s\" is not a size (a number, optionally with MB, GB or TB)",
                 policy_field_name(f), scalar(vn));
            goto out;
        }
        return cond;
    }
    if (is_size_op(op))
        goto bad_op;
    if (f == POLICY_FIELD_IP || f == POLICY_FIELD_RELAY) {
        if (op != POLICY_OP_EQUALS && op != POLICY_OP_CIDR)
            goto bad_op;
        cond->op = POLICY_OP_CIDR;
        if (!policy_cidr_parse(v, &cond->net, &cond->prefix)) {
            fail(c, vn, "%s: \"%s\" is not an address or address/prefix", policy_field_name(f), v);
            goto out;
        }
        return cond;
    }
    if (op == POLICY_OP_CIDR)
        goto bad_op;
    if (f == POLICY_FIELD_ARCH && op == POLICY_OP_EQUALS) {
        cond->number = policy_arch_parse(v);
        if (cond->number < 0) {
            fail(c, vn,
                 "arch: \"%s\" is not an architecture name (bios, efi-ia32, efi-x64, "
                 "efi-bc, efi-arm64, ...) or number",
                 v);
            goto out;
        }
        return cond;
    }
    if (op == POLICY_OP_REGEX) {
        cond->regex = g_regex_new(v, G_REGEX_CASELESS | G_REGEX_OPTIMIZE, 0, &rerr);
        if (cond->regex == NULL) {
            fail(c, vn, "%s: bad regular expression: %s", policy_field_name(f), rerr->message);
            goto out;
        }
        return cond;
    }
    char norm[40];
    if (op == POLICY_OP_EQUALS && f == POLICY_FIELD_MAC) {
        if (!policy_mac_normalize(v, norm)) {
            fail(c, vn, "mac: \"%s\" is not a MAC address", v);
            goto out;
        }
        cond->text = g_strdup(norm);
        return cond;
    }
    if (op == POLICY_OP_EQUALS && f == POLICY_FIELD_UUID) {
        if (!policy_uuid_normalize(v, norm)) {
            fail(c, vn,
                 "uuid: \"%s\" is not a UUID (or is a placeholder that identifies "
                 "nothing)",
                 v);
            goto out;
        }
        cond->text = g_strdup(norm);
        return cond;
    }
    if (f == POLICY_FIELD_MAC) {
        /* Prefix matching on a MAC is by OUI: accept "00-50-56" and "00:50:56". */
        cond->text = g_ascii_strdown(v, -1);
        g_strdelimit(cond->text, "-", ':');
    } else {
        cond->text = g_ascii_strdown(v, -1);
    }
    return cond;

bad_op:
    fail(c, vn, "%s cannot be compared that way", policy_field_name(f));
out:
    cond_free(cond);
    return NULL;
}

static PolicyCond *parse_cond(Ctx *c, yaml_node_t *n, int depth);

/* field: VALUE | [VALUE...] | {op: VALUE, ...} */
static PolicyCond *parse_field(Ctx *c, PolicyField f, yaml_node_t *vn)
{
    if (vn->type == YAML_SCALAR_NODE)
        return parse_leaf(c, f, POLICY_OP_EQUALS, vn);
    if (vn->type == YAML_SEQUENCE_NODE) {
        g_autoptr(GPtrArray) kids = g_ptr_array_new_with_free_func((GDestroyNotify)cond_free);
        for (yaml_node_item_t *it = vn->data.sequence.items.start; it < vn->data.sequence.items.top;
             it++) {
            PolicyCond *k = parse_leaf(c, f, POLICY_OP_EQUALS, node(c, *it));
            if (k == NULL)
                return NULL;
            g_ptr_array_add(kids, k);
        }
        if (kids->len == 0) {
            fail(c, vn, "%s: an empty list matches nothing", policy_field_name(f));
            return NULL;
        }
        PolicyCond *any = cond_new(POLICY_OP_ANY, node_line(vn));
        g_ptr_array_extend_and_steal(any->kids, g_steal_pointer(&kids));
        return any;
    }
    /* A mapping of operators, all of which must hold. */
    PolicyCond *all = cond_new(POLICY_OP_ALL, node_line(vn));
    for (yaml_node_pair_t *p = vn->data.mapping.pairs.start; p < vn->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = node(c, p->key), *v = node(c, p->value);
        const char *k = scalar(kn);
        int op = -1;
        for (gsize i = 0; k != NULL && i < G_N_ELEMENTS(op_names); i++)
            if (strcmp(k, op_names[i].name) == 0)
                op = op_names[i].op;
        if (op < 0) {
            fail(c, kn,
                 "%s: unknown comparison \"%s\" (equals, contains, starts_with, "
                 "ends_with, regex; < <= = >= > <> for sizes; in for addresses)",
                 policy_field_name(f), k ? k : "?");
            cond_free(all);
            return NULL;
        }
        PolicyCond *k2 = parse_leaf(c, f, (PolicyOp)op, v);
        if (k2 == NULL) {
            cond_free(all);
            return NULL;
        }
        g_ptr_array_add(all->kids, k2);
    }
    if (all->kids->len == 1) {
        PolicyCond *only = g_ptr_array_steal_index(all->kids, 0);
        cond_free(all);
        return only;
    }
    return all;
}

static PolicyCond *parse_list(Ctx *c, PolicyOp op, yaml_node_t *n, int depth)
{
    if (n->type != YAML_SEQUENCE_NODE && n->type != YAML_MAPPING_NODE) {
        fail(c, n, "%s needs a list of conditions", op == POLICY_OP_ALL ? "all" : "any");
        return NULL;
    }
    PolicyCond *cond = cond_new(op, node_line(n));
    if (n->type == YAML_MAPPING_NODE) {
        PolicyCond *k = parse_cond(c, n, depth + 1);
        if (k == NULL) {
            cond_free(cond);
            return NULL;
        }
        g_ptr_array_add(cond->kids, k);
        return cond;
    }
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        PolicyCond *k = parse_cond(c, node(c, *it), depth + 1);
        if (k == NULL) {
            cond_free(cond);
            return NULL;
        }
        g_ptr_array_add(cond->kids, k);
    }
    return cond;
}

/* A condition: a mapping (every key must hold: field conditions and all/any/not), or a
 * sequence (any item may hold). */
static PolicyCond *parse_cond(Ctx *c, yaml_node_t *n, int depth)
{
    if (depth > 32) {
        fail(c, n, "conditions nested too deeply");
        return NULL;
    }
    if (c->budget == 0) {
        fail(c, n, "too many conditions (YAML aliases expanding?)");
        return NULL;
    }
    c->budget--;
    if (n->type == YAML_SEQUENCE_NODE)
        return parse_list(c, POLICY_OP_ANY, n, depth);
    if (n->type != YAML_MAPPING_NODE) {
        fail(c, n, "a condition is a mapping like {mac: 52:54:00:12:34:56} or a list of them");
        return NULL;
    }
    PolicyCond *all = cond_new(POLICY_OP_ALL, node_line(n));
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = node(c, p->key), *vn = node(c, p->value);
        const char *k = scalar(kn);
        PolicyCond *kid = NULL;
        if (k == NULL) {
            fail(c, kn, "a condition's key must be a name");
        } else if (!strcmp(k, "all") || !strcmp(k, "and")) {
            kid = parse_list(c, POLICY_OP_ALL, vn, depth);
        } else if (!strcmp(k, "any") || !strcmp(k, "or")) {
            kid = parse_list(c, POLICY_OP_ANY, vn, depth);
        } else if (!strcmp(k, "not")) {
            PolicyCond *inner = parse_cond(c, vn, depth + 1);
            if (inner != NULL) {
                kid = cond_new(POLICY_OP_NOT, node_line(kn));
                g_ptr_array_add(kid->kids, inner);
            }
        } else {
            int f = field_lookup(k);
            if (f < 0)
                fail(c, kn,
                     "unknown condition \"%s\" (mac, uuid, serial, asset_tag, "
                     "manufacturer, model, bios_version, user_class, vendor_class, "
                     "arch, ip, relay, ram, disk, group, all, any, not)",
                     k);
            else
                kid = parse_field(c, (PolicyField)f, vn);
        }
        if (kid == NULL) {
            cond_free(all);
            return NULL;
        }
        g_ptr_array_add(all->kids, kid);
    }
    if (all->kids->len == 1) {
        PolicyCond *only = g_ptr_array_steal_index(all->kids, 0);
        cond_free(all);
        return only;
    }
    if (all->kids->len == 0)
        all->op = POLICY_OP_TRUE;
    return all;
}

/* ---- work and menus ------------------------------------------------------------------ */

static const char *const work_names[] = {"local",     "capture", "restore",
                                         "multicast", "script",  "program"};

const char *policy_work_name(guint32 work)
{
    return work < G_N_ELEMENTS(work_names) ? work_names[work] : "?";
}

void policy_work_clear(PolicyWork *w)
{
    g_clear_pointer(&w->arg, g_free);
    g_clear_pointer(&w->image, g_free);
    memset(w, 0, sizeof(*w));
    w->t_min = -1;
}

/* "clients=N", "t=MIN" as prebootctl mcast start takes them. */
static gboolean session_count(const char *word, const char *key, guint64 max, guint64 *out)
{
    if (g_ascii_strncasecmp(word, key, strlen(key)) != 0)
        return FALSE;
    const char *num = word + strlen(key);
    char *end;
    guint64 v = g_ascii_strtoull(num, &end, 10);
    if (!g_ascii_isdigit(*num) || *end != '\0' || v > max)
        return FALSE;
    *out = v;
    return TRUE;
}

/* Session and image names as `mcast start` takes them (lib/proto's rule): what it would
 * refuse is refused here, when it is assigned. */
static gboolean session_name_ok(const char *s)
{
    return mcast_name_valid(s, strlen(s));
}

gboolean policy_work_parse(const char *text, PolicyWork *out, GError **error)
{
    memset(out, 0, sizeof(*out));
    out->t_min = -1;
    g_auto(GStrv) words = g_strsplit_set(text ? text : "", " \t", -1);
    guint n = 0;
    for (guint i = 0; words[i]; i++)
        if (words[i][0])
            words[n++] = words[i];
        else
            g_free(words[i]);
    words[n] = NULL;
    if (n == 0) {
        g_set_error(error, POLICY_RULES_ERROR, 0, "no work given");
        return FALSE;
    }
    int kind = -1;
    guint first = 0; /* the work's word */
    /* "join session NAME" and "session NAME": the legacy wording of multicast work */
    if (n > 1 && !g_ascii_strcasecmp(words[0], "join") && !g_ascii_strcasecmp(words[1], "session"))
        first = 1;
    if (!g_ascii_strcasecmp(words[first], "session"))
        kind = PB_POLICY_WORK_MULTICAST;
    for (gsize i = 0; i < G_N_ELEMENTS(work_names); i++)
        if (g_ascii_strcasecmp(words[first], work_names[i]) == 0)
            kind = (int)i;
    if (kind < 0 &&
        (!g_ascii_strcasecmp(words[0], "boot") || !g_ascii_strcasecmp(words[0], "disk")))
        kind = PB_POLICY_WORK_LOCAL;
    if (kind < 0) {
        g_set_error(error, POLICY_RULES_ERROR, 0,
                    "unknown work \"%s\" (local, capture IMAGE, restore IMAGE, multicast "
                    "SESSION, script NAME, program PATH)",
                    words[0]);
        return FALSE;
    }
    guint i = first + 1;
    if (kind != PB_POLICY_WORK_LOCAL) {
        if (i >= n || !g_ascii_strcasecmp(words[i], "once") ||
            !g_ascii_strcasecmp(words[i], "force")) {
            g_set_error(error, POLICY_RULES_ERROR, 0, "%s needs a name", work_names[kind]);
            return FALSE;
        }
        if (kind == PB_POLICY_WORK_MULTICAST && !session_name_ok(words[i])) {
            g_set_error(error, POLICY_RULES_ERROR, 0,
                        "session name \"%s\": [A-Za-z0-9._-], 1-128 characters, not starting "
                        "with '.'",
                        words[i]);
            return FALSE;
        }
        out->arg = g_strdup(words[i++]);
    }
    gboolean counts = FALSE;
    for (; i < n; i++) {
        guint64 v;
        if (!g_ascii_strcasecmp(words[i], "once"))
            out->once = TRUE;
        else if (!g_ascii_strcasecmp(words[i], "force"))
            out->force = TRUE;
        else if (kind == PB_POLICY_WORK_MULTICAST && !g_ascii_strncasecmp(words[i], "image=", 6) &&
                 session_name_ok(words[i] + 6)) {
            g_free(out->image);
            out->image = g_strdup(words[i] + 6);
        } else if (kind == PB_POLICY_WORK_MULTICAST &&
                   session_count(words[i], "clients=", 65535, &v)) {
            out->clients = (guint)v;
            counts = TRUE;
        } else if (kind == PB_POLICY_WORK_MULTICAST && session_count(words[i], "t=", 10080, &v)) {
            out->t_min = (gint)v;
            counts = TRUE;
        } else {
            g_set_error(error, POLICY_RULES_ERROR, 0,
                        kind == PB_POLICY_WORK_MULTICAST
                            ? "unexpected \"%s\" after the session (image=IMAGE, clients=N "
                              "(0-65535), t=MINUTES (0-10080), once and force may follow)"
                            : "unexpected \"%s\" after the work (only once and force may follow)",
                        words[i]);
            policy_work_clear(out);
            return FALSE;
        }
    }
    if (counts && out->image == NULL) {
        g_set_error(error, POLICY_RULES_ERROR, 0,
                    "clients= and t= say how the server starts session %s: give the image it "
                    "sends too (image=IMAGE)",
                    out->arg);
        policy_work_clear(out);
        return FALSE;
    }
    out->work = (guint32)kind;
    return TRUE;
}

char *policy_work_to_string(const PolicyWork *w)
{
    GString *s = g_string_new(policy_work_name(w->work));
    if (w->arg != NULL)
        g_string_append_printf(s, " %s", w->arg);
    if (w->image != NULL) {
        g_string_append_printf(s, " image=%s", w->image);
        if (w->clients > 0)
            g_string_append_printf(s, " clients=%u", w->clients);
        if (w->t_min >= 0)
            g_string_append_printf(s, " t=%d", w->t_min);
    }
    g_string_append_printf(s, "%s%s", w->once ? " once" : "", w->force ? " force" : "");
    return g_string_free(s, FALSE);
}

static gboolean parse_work_node(Ctx *c, yaml_node_t *n, PolicyWork *w)
{
    const char *s;
    g_autoptr(GError) err = NULL;
    if (!want_scalar(c, n, "work", &s))
        return FALSE;
    if (!policy_work_parse(s, w, &err))
        return fail(c, n, "work: %s", err->message);
    return TRUE;
}

static int menu_show_parse(const char *s)
{
    if (!g_ascii_strcasecmp(s, "always"))
        return PB_POLICY_MENU_ALWAYS;
    if (!g_ascii_strcasecmp(s, "f8") || !g_ascii_strcasecmp(s, "on-f8") ||
        !g_ascii_strcasecmp(s, "on_f8"))
        return PB_POLICY_MENU_F8;
    if (!g_ascii_strcasecmp(s, "never"))
        return PB_POLICY_MENU_NEVER;
    return -1;
}

static void menu_entry_free(PolicyMenuEntry *e)
{
    g_free(e->label);
    policy_work_clear(&e->work);
    g_free(e);
}

static void menu_free(PolicyMenu *m)
{
    g_free(m->name);
    g_ptr_array_unref(m->entries);
    g_free(m);
}

static gboolean parse_menu(Ctx *c, const char *name, yaml_node_t *n)
{
    if (n->type != YAML_MAPPING_NODE)
        return fail(c, n, "menu %s must be a mapping (show, timeout, entries)", name);
    if (policy_rules_menu(c->rules, name) != NULL)
        return fail(c, n, "menu %s is defined twice", name);
    PolicyMenu *m = g_new0(PolicyMenu, 1);
    m->name = g_strdup(name);
    m->show = -1;
    m->timeout_s = -1;
    m->line = node_line(n);
    m->entries = g_ptr_array_new_with_free_func((GDestroyNotify)menu_entry_free);
    g_ptr_array_add(c->rules->menus, m);
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = node(c, p->key), *vn = node(c, p->value);
        const char *k = scalar(kn), *s;
        gint64 v;
        if (k != NULL && !strcmp(k, "show")) {
            if (!want_scalar(c, vn, "show", &s))
                return FALSE;
            if ((m->show = menu_show_parse(s)) < 0)
                return fail(c, vn, "show: \"%s\" is not always, f8 or never", s);
        } else if (k != NULL && !strcmp(k, "timeout")) {
            if (!parse_uint(c, vn, "timeout", 3600, &v))
                return FALSE;
            m->timeout_s = (int)v;
        } else if (k != NULL && !strcmp(k, "entries")) {
            if (vn->type != YAML_SEQUENCE_NODE)
                return fail(c, vn, "entries must be a list of {label, work}");
            for (yaml_node_item_t *it = vn->data.sequence.items.start;
                 it < vn->data.sequence.items.top; it++) {
                yaml_node_t *en = node(c, *it);
                if (en->type != YAML_MAPPING_NODE)
                    return fail(c, en, "a menu entry is a mapping {label: ..., work: ...}");
                PolicyMenuEntry *e = g_new0(PolicyMenuEntry, 1);
                g_ptr_array_add(m->entries, e);
                gboolean have_work = FALSE;
                for (yaml_node_pair_t *q = en->data.mapping.pairs.start;
                     q < en->data.mapping.pairs.top; q++) {
                    yaml_node_t *ekn = node(c, q->key), *evn = node(c, q->value);
                    const char *ek = scalar(ekn);
                    if (ek != NULL && !strcmp(ek, "label")) {
                        if (!want_scalar(c, evn, "label", &s))
                            return FALSE;
                        g_free(e->label);
                        e->label = g_strdup(s);
                    } else if (ek != NULL && !strcmp(ek, "work")) {
                        policy_work_clear(&e->work);
                        if (!parse_work_node(c, evn, &e->work))
                            return FALSE;
                        have_work = TRUE;
                    } else {
                        return fail(c, ekn, "unknown menu entry key \"%s\" (label, work)",
                                    ek ? ek : "?");
                    }
                }
                if (!have_work)
                    return fail(c, en, "a menu entry needs work");
                if (e->label == NULL)
                    e->label = policy_work_to_string(&e->work);
            }
        } else {
            return fail(c, kn, "unknown menu key \"%s\" (show, timeout, entries)", k ? k : "?");
        }
    }
    return TRUE;
}

/* ---- rules ---------------------------------------------------------------------------- */

static void rule_free(PolicyRule *r)
{
    if (r == NULL)
        return;
    g_free(r->name);
    cond_free(r->match);
    policy_work_clear(&r->work);
    g_free(r->menu_name);
    g_free(r->boot_file);
    g_free(r);
}

static void group_free(PolicyGroup *g)
{
    g_free(g->name);
    cond_free(g->match);
    g_free(g);
}

static PolicyRule *rule_new(const char *name, guint line)
{
    PolicyRule *r = g_new0(PolicyRule, 1);
    r->name = g_strdup(name);
    r->line = line;
    r->enabled = TRUE;
    r->menu_show = -1;
    r->menu_timeout = -1;
    return r;
}

/* The keys a rule and the default rule share. */
static gboolean parse_rule_key(Ctx *c, PolicyRule *r, const char *k, yaml_node_t *kn,
                               yaml_node_t *vn, gboolean is_default, gboolean *handled)
{
    const char *s;
    gboolean b;
    gint64 v;
    *handled = TRUE;
    if (!strcmp(k, "ignore")) {
        if (!parse_bool(c, vn, "ignore", &r->ignore))
            return FALSE;
    } else if (!strcmp(k, "work")) {
        policy_work_clear(&r->work);
        if (!parse_work_node(c, vn, &r->work))
            return FALSE;
        r->has_work = TRUE;
    } else if (!strcmp(k, "once")) {
        if (!parse_bool(c, vn, "once", &b))
            return FALSE;
        r->work.once = b;
    } else if (!strcmp(k, "force")) {
        if (!parse_bool(c, vn, "force", &b))
            return FALSE;
        r->work.force = b;
    } else if (!strcmp(k, "menu")) {
        if (!want_scalar(c, vn, "menu", &s))
            return FALSE;
        int show = menu_show_parse(s);
        if (show >= 0) {
            r->menu_show = show;
        } else {
            const PolicyMenu *m = policy_rules_menu(c->rules, s);
            if (m == NULL)
                return fail(c, vn,
                            "menu: \"%s\" is not always, f8, never or a menu defined "
                            "under menus:",
                            s);
            g_free(r->menu_name);
            r->menu_name = g_strdup(s);
        }
    } else if (!strcmp(k, "menu_timeout")) {
        if (!parse_uint(c, vn, "menu_timeout", 3600, &v))
            return FALSE;
        r->menu_timeout = (int)v;
    } else if (!strcmp(k, "boot_file")) {
        if (!want_scalar(c, vn, "boot_file", &s))
            return FALSE;
        g_free(r->boot_file);
        r->boot_file = *s ? g_strdup(s) : NULL;
    } else if (!is_default && !strcmp(k, "name")) {
        if (!want_scalar(c, vn, "name", &s))
            return FALSE;
        g_free(r->name);
        r->name = g_strdup(s);
    } else if (!is_default && !strcmp(k, "enabled")) {
        if (!parse_bool(c, vn, "enabled", &r->enabled))
            return FALSE;
    } else if (!is_default && !strcmp(k, "match")) {
        cond_free(r->match);
        r->match = parse_cond(c, vn, 0);
        if (r->match == NULL)
            return FALSE;
    } else {
        *handled = FALSE;
    }
    (void)kn;
    return TRUE;
}

static gboolean check_work_flags(Ctx *c, const PolicyRule *r, yaml_node_t *n)
{
    if ((r->work.once || r->work.force) && !r->has_work)
        return fail(c, n, "once and force need work");
    return TRUE;
}

static gboolean parse_rule(Ctx *c, yaml_node_t *n, guint index)
{
    if (n->type != YAML_MAPPING_NODE)
        return fail(c, n, "a rule is a mapping (name, match, work, menu, ...)");
    g_autofree char *auto_name = g_strdup_printf("rule-%u", index + 1);
    PolicyRule *r = rule_new(auto_name, node_line(n));
    g_ptr_array_add(c->rules->rules, r);
    gboolean have_match = FALSE;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = node(c, p->key), *vn = node(c, p->value);
        const char *k = scalar(kn);
        gboolean handled;
        if (k == NULL)
            return fail(c, kn, "a rule's key must be a name");
        if (!parse_rule_key(c, r, k, kn, vn, FALSE, &handled))
            return FALSE;
        if (!handled)
            return fail(c, kn,
                        "unknown rule key \"%s\" (name, enabled, match, ignore, work, "
                        "once, force, menu, menu_timeout, boot_file)",
                        k);
        have_match |= !strcmp(k, "match");
    }
    if (!have_match)
        return fail(c, n, "rule %s has no match: (use the default: section for everyone)", r->name);
    for (guint i = 0; i + 1 < c->rules->rules->len; i++) {
        const PolicyRule *o = g_ptr_array_index(c->rules->rules, i);
        if (strcmp(o->name, r->name) == 0)
            return fail(c, n, "rule name %s is already used on line %u", r->name, o->line);
    }
    return check_work_flags(c, r, n);
}

static gboolean parse_default(Ctx *c, yaml_node_t *n)
{
    if (n->type != YAML_MAPPING_NODE)
        return fail(c, n, "default: is a mapping (work, menu, menu_timeout, boot_file, ignore)");
    PolicyRule *r = c->rules->fallback;
    r->line = node_line(n);
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = node(c, p->key), *vn = node(c, p->value);
        const char *k = scalar(kn);
        gboolean handled;
        if (k == NULL)
            return fail(c, kn, "a key must be a name");
        if (!parse_rule_key(c, r, k, kn, vn, TRUE, &handled))
            return FALSE;
        if (!handled)
            return fail(c, kn,
                        "unknown default key \"%s\" (ignore, work, once, force, menu, "
                        "menu_timeout, boot_file)",
                        k);
    }
    return check_work_flags(c, r, n);
}

static gboolean parse_groups(Ctx *c, yaml_node_t *n)
{
    if (n->type != YAML_MAPPING_NODE)
        return fail(c, n, "groups: is a mapping of group names to conditions");
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = node(c, p->key), *vn = node(c, p->value);
        const char *k = scalar(kn);
        if (k == NULL || *k == '\0')
            return fail(c, kn, "a group's name must be text");
        if (group_find(c->rules, k) != G_MAXUINT)
            return fail(c, kn, "group %s is defined twice", k);
        PolicyCond *m = parse_cond(c, vn, 0);
        if (m == NULL)
            return FALSE;
        PolicyGroup *g = g_new0(PolicyGroup, 1);
        g->name = g_strdup(k);
        g->line = node_line(kn);
        g->match = m;
        g_ptr_array_add(c->rules->groups, g);
    }
    return TRUE;
}

static gboolean parse_boot_files(Ctx *c, yaml_node_t *n)
{
    if (n->type != YAML_MAPPING_NODE)
        return fail(c, n, "boot_files: maps architectures (bios, efi-x64, ...) to programs");
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = node(c, p->key), *vn = node(c, p->value);
        const char *k = scalar(kn), *s;
        int arch = policy_arch_parse(k);
        if (arch < 0)
            return fail(c, kn, "\"%s\" is not an architecture name or number", k ? k : "?");
        if (!want_scalar(c, vn, "boot file", &s))
            return FALSE;
        g_hash_table_replace(c->rules->boot_files, GINT_TO_POINTER(arch + 1), g_strdup(s));
    }
    return TRUE;
}

static gboolean parse_imaging(Ctx *c, yaml_node_t *n)
{
    if (n->type != YAML_MAPPING_NODE)
        return fail(c, n, "imaging: is a mapping (kernel, initrd, args)");
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = node(c, p->key), *vn = node(c, p->value);
        const char *k = scalar(kn), *s;
        char **slot = NULL;
        if (k != NULL && !strcmp(k, "kernel"))
            slot = &c->rules->imaging_kernel;
        else if (k != NULL && !strcmp(k, "initrd"))
            slot = &c->rules->imaging_initrd;
        else if (k != NULL && !strcmp(k, "args"))
            slot = &c->rules->imaging_args;
        else
            return fail(c, kn, "unknown imaging key \"%s\" (kernel, initrd, args)", k ? k : "?");
        if (!want_scalar(c, vn, k, &s))
            return FALSE;
        g_free(*slot);
        *slot = g_strdup(s);
    }
    return TRUE;
}

static PolicyRules *rules_new(const char *file)
{
    PolicyRules *r = g_new0(PolicyRules, 1);
    r->file = g_strdup(file);
    r->rules = g_ptr_array_new_with_free_func((GDestroyNotify)rule_free);
    r->groups = g_ptr_array_new_with_free_func((GDestroyNotify)group_free);
    r->menus = g_ptr_array_new_with_free_func((GDestroyNotify)menu_free);
    r->boot_files = g_hash_table_new_full(NULL, NULL, NULL, g_free);
    r->fallback = rule_new("default", 0);
    r->fallback->menu_show = PB_POLICY_MENU_F8;
    r->fallback->match = cond_new(POLICY_OP_TRUE, 0);
    r->index =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_array_unref);
    r->scan = g_array_new(FALSE, FALSE, sizeof(guint));
    return r;
}

void policy_rules_free(PolicyRules *r)
{
    if (r == NULL)
        return;
    g_free(r->file);
    g_ptr_array_unref(r->rules);
    g_ptr_array_unref(r->groups);
    g_ptr_array_unref(r->menus);
    g_hash_table_unref(r->boot_files);
    rule_free(r->fallback);
    g_free(r->imaging_kernel);
    g_free(r->imaging_initrd);
    g_free(r->imaging_args);
    g_hash_table_unref(r->index);
    g_array_unref(r->scan);
    g_free(r);
}

const PolicyMenu *policy_rules_menu(const PolicyRules *rules, const char *name)
{
    for (guint i = 0; i < rules->menus->len; i++) {
        const PolicyMenu *m = g_ptr_array_index(rules->menus, i);
        if (strcmp(m->name, name) == 0)
            return m;
    }
    return NULL;
}

void policy_rules_build_index(PolicyRules *rules); /* policy-match.c */

PolicyRules *policy_rules_new_default(void)
{
    PolicyRules *r = rules_new("(built-in)");
    /* Without a rules file, the imaging environment is where preboot-bootenv(8) puts it
     * (under the TFTP root, served over HTTP by bootenv_directory): building it is all it
     * takes to image a machine. */
    r->imaging_kernel = g_strdup(POLICY_BOOTENV_KERNEL);
    r->imaging_initrd = g_strdup(POLICY_BOOTENV_INITRD);
    policy_rules_build_index(r);
    return r;
}

static const char *yaml_problem(const yaml_parser_t *p)
{
    return p->problem ? p->problem : "syntax error";
}

PolicyRules *policy_rules_parse(const char *data, gsize len, const char *file, GError **error)
{
    g_return_val_if_fail(data != NULL || len == 0, NULL);
    yaml_parser_t parser;
    yaml_document_t doc;
    if (file == NULL)
        file = "rules";
    if (!yaml_parser_initialize(&parser)) {
        g_set_error(error, POLICY_RULES_ERROR, 0, "%s: out of memory", file);
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)(data ? data : ""), len);
    if (!yaml_parser_load(&parser, &doc)) {
        g_set_error(error, POLICY_RULES_ERROR, 0, "%s:%zu: %s%s%s", file,
                    parser.problem_mark.line + 1, yaml_problem(&parser), parser.context ? " " : "",
                    parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return NULL;
    }
    yaml_parser_delete(&parser);

    g_autoptr(PolicyRules) rules = rules_new(file);
    Ctx c = {.doc = &doc, .file = file, .rules = rules, .error = error, .budget = 200000};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    gboolean ok = TRUE;
    if (root == NULL) {
        /* An empty file: no rules, everyone gets the default. */
    } else if (root->type != YAML_MAPPING_NODE) {
        ok = fail(&c, root, "the rules file must be a mapping (rules:, groups:, default:, ...)");
    } else {
        /* Sections in dependency order, whatever order the file has them in: groups and
         * menus first, since rules refer to them. */
        static const char *const order[] = {"version", "boot_files", "imaging", "menus",
                                            "groups",  "default",    "rules"};
        for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
             ok && p < root->data.mapping.pairs.top; p++) {
            const char *k = scalar(node(&c, p->key));
            gboolean known = FALSE;
            for (gsize i = 0; k != NULL && i < G_N_ELEMENTS(order); i++)
                known |= strcmp(k, order[i]) == 0;
            if (!known)
                ok = fail(&c, node(&c, p->key),
                          "unknown section \"%s\" (version, boot_files, imaging, menus, "
                          "groups, default, rules)",
                          k ? k : "?");
        }
        for (gsize i = 0; ok && i < G_N_ELEMENTS(order); i++) {
            for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
                 ok && p < root->data.mapping.pairs.top; p++) {
                const char *k = scalar(node(&c, p->key));
                yaml_node_t *vn = node(&c, p->value);
                if (strcmp(k, order[i]) != 0)
                    continue;
                if (i == 0) {
                    gint64 v;
                    ok = parse_uint(&c, vn, "version", 100, &v);
                    if (ok && v != 1)
                        ok = fail(&c, vn,
                                  "version %" G_GINT64_FORMAT
                                  " is not supported (this engine reads version 1)",
                                  v);
                } else if (i == 1) {
                    ok = parse_boot_files(&c, vn);
                } else if (i == 2) {
                    ok = parse_imaging(&c, vn);
                } else if (i == 3) {
                    if (vn->type != YAML_MAPPING_NODE) {
                        ok = fail(&c, vn, "menus: is a mapping of menu names to menus");
                        continue;
                    }
                    for (yaml_node_pair_t *q = vn->data.mapping.pairs.start;
                         ok && q < vn->data.mapping.pairs.top; q++) {
                        const char *name = scalar(node(&c, q->key));
                        if (name == NULL || menu_show_parse(name) >= 0)
                            ok = fail(&c, node(&c, q->key),
                                      "a menu needs a name other than always, f8 or never");
                        else
                            ok = parse_menu(&c, name, node(&c, q->value));
                    }
                } else if (i == 4) {
                    ok = parse_groups(&c, vn);
                } else if (i == 5) {
                    ok = parse_default(&c, vn);
                } else {
                    if (vn->type != YAML_SEQUENCE_NODE) {
                        ok = fail(&c, vn, "rules: is a list of rules, tried in order");
                        continue;
                    }
                    guint idx = 0;
                    for (yaml_node_item_t *it = vn->data.sequence.items.start;
                         ok && it < vn->data.sequence.items.top; it++)
                        ok = parse_rule(&c, node(&c, *it), idx++);
                }
            }
        }
    }
    yaml_document_delete(&doc);
    if (!ok)
        return NULL;
    policy_rules_build_index(rules);
    return g_steal_pointer(&rules);
}
