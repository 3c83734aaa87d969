/* policy-rules.h - the rules file (preboot-rules.yaml(5)): its model, its parser (bytes in,
 * rules out, file:line errors, no I/O) and the matcher (first enabled rule that matches
 * wins; exact MAC/UUID/serial conditions are indexed so a thousand rules stay fast). */
#pragma once

#include "policy-device.h"
#include <glib.h>

G_BEGIN_DECLS

#define POLICY_RULES_ERROR (policy_rules_error_quark())
GQuark policy_rules_error_quark(void);

typedef enum {
    POLICY_FIELD_MAC,
    POLICY_FIELD_UUID,
    POLICY_FIELD_SERIAL,
    POLICY_FIELD_ASSET_TAG,
    POLICY_FIELD_MANUFACTURER,
    POLICY_FIELD_MODEL,
    POLICY_FIELD_BIOS_VERSION,
    POLICY_FIELD_USER_CLASS,
    POLICY_FIELD_VENDOR_CLASS,
    POLICY_FIELD_ARCH,
    POLICY_FIELD_IP,
    POLICY_FIELD_RELAY,
    POLICY_FIELD_RAM,
    POLICY_FIELD_DISK,
    POLICY_FIELD_GROUP,
    POLICY_FIELD_N_,
} PolicyField;

typedef enum {
    POLICY_OP_ALL,    /* AND of children */
    POLICY_OP_ANY,    /* OR of children */
    POLICY_OP_NOT,    /* one child */
    POLICY_OP_EQUALS, /* strings: case-insensitive; mac/uuid normalised; arch by number */
    POLICY_OP_CONTAINS,
    POLICY_OP_STARTS_WITH,
    POLICY_OP_ENDS_WITH,
    POLICY_OP_REGEX,
    POLICY_OP_CIDR, /* ip, relay */
    POLICY_OP_LT,   /* sizes: ram (MB), disk (GB) */
    POLICY_OP_LE,
    POLICY_OP_EQ,
    POLICY_OP_GE,
    POLICY_OP_GT,
    POLICY_OP_NE,
    POLICY_OP_GROUP, /* member of a named group */
    POLICY_OP_TRUE,  /* always (an empty match) */
} PolicyOp;

typedef struct PolicyCond PolicyCond;
struct PolicyCond {
    PolicyOp op;
    PolicyField field;
    char *text;      /* EQUALS..ENDS_WITH: the value, case-folded (normalised for mac/uuid) */
    GRegex *regex;   /* REGEX */
    PolicyIp net;    /* CIDR */
    guint prefix;    /* CIDR */
    gint64 number;   /* sizes; arch for EQUALS on arch */
    guint group;     /* GROUP: index into PolicyRules.groups */
    GPtrArray *kids; /* PolicyCond*: ALL, ANY, NOT */
    guint line;
};

typedef struct {
    guint32 work; /* pb_policy_work */
    char *arg;    /* image/session/script/program; NULL for local */
    gboolean once;
    gboolean force;
    /* Multicast work only: what starting the session takes, when the server is to start it
     * for the first device that asks (image=IMAGE); NULL: the session is started by hand
     * (prebootctl mcast start) or by a master client. clients=N (0: no count) and t=MIN
     * (-1: the multicast plugin's join_timeout) as `mcast start` takes them. */
    char *image;
    guint clients;
    gint t_min;
} PolicyWork;

typedef struct {
    char *label;
    PolicyWork work;
} PolicyMenuEntry;

typedef struct {
    char *name;
    int show;           /* pb_policy_menu, -1 = not set (inherit) */
    int timeout_s;      /* -1 = not set */
    GPtrArray *entries; /* PolicyMenuEntry* */
    guint line;
} PolicyMenu;

typedef struct {
    char *name;
    guint line;
    gboolean enabled;
    PolicyCond *match; /* never NULL; TRUE for the default rule */
    gboolean ignore;
    gboolean has_work;
    PolicyWork work;
    int menu_show;    /* -1 = not set */
    int menu_timeout; /* -1 = not set */
    char *menu_name;  /* NULL = not set */
    char *boot_file;  /* NULL = not set */
} PolicyRule;

typedef struct {
    char *name;
    guint line;
    PolicyCond *match;
} PolicyGroup;

typedef struct PolicyRules PolicyRules;
struct PolicyRules {
    char *file;             /* for messages */
    GPtrArray *rules;       /* PolicyRule*, in file order */
    PolicyRule *fallback;   /* the `default:` rule; always set (local boot, F8 menu) */
    GPtrArray *groups;      /* PolicyGroup* */
    GPtrArray *menus;       /* PolicyMenu* */
    GHashTable *boot_files; /* arch number (GINT_TO_POINTER(arch+1)) -> char* */
    char *imaging_kernel;   /* the imaging environment iPXE boots for imaging work */
    char *imaging_initrd;
    char *imaging_args;
    /* The index: "mac:..", "uuid:..", "serial:.." -> GArray of guint rule indices
     * (ascending); rules not in it are always scanned. */
    GHashTable *index;
    GArray *scan; /* guint rule indices that must always be evaluated, ascending */
};

PolicyRules *policy_rules_parse(const char *data, gsize len, const char *file, GError **error);
void policy_rules_free(PolicyRules *rules);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PolicyRules, policy_rules_free)
/* The built-in rules when no rules file is configured: everyone boots the local disk. */
PolicyRules *policy_rules_new_default(void);

/* The built-in rules' imaging environment: preboot-bootenv(8)'s output, relative to the TFTP
 * root (pxelinux) and to the HTTP listener's /preboot/ route (iPXE). */
#define POLICY_BOOTENV_KERNEL "preboot/vmlinuz"
#define POLICY_BOOTENV_INITRD "preboot/initrd.img"

const PolicyMenu *policy_rules_menu(const PolicyRules *rules, const char *name);

/* Parses "local", "restore IMAGE", "capture IMAGE", "multicast SESSION", "script NAME",
 * "program PATH", optionally followed by "once" and/or "force" (prebootctl's syntax and
 * the short YAML form). Multicast work is also written "session SESSION" or "join session
 * SESSION", and may say how the server starts it: image=IMAGE [clients=N] [t=MIN]. */
gboolean policy_work_parse(const char *text, PolicyWork *out, GError **error);
void policy_work_clear(PolicyWork *w);
const char *policy_work_name(guint32 work);
/* "restore win11 once" */
char *policy_work_to_string(const PolicyWork *w);

/* Returns the first enabled rule that matches, or rules->fallback. When why is not NULL
 * it receives an explanation of each rule tried (for `prebootctl policy test`). */
const PolicyRule *policy_rules_match(const PolicyRules *rules, const PolicyDevice *dev,
                                     GString *why);
gboolean policy_cond_eval(const PolicyRules *rules, const PolicyCond *c, const PolicyDevice *dev);
const char *policy_field_name(PolicyField f);

G_END_DECLS
