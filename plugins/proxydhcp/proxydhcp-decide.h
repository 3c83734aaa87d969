/* proxydhcp-decide.h - who a request comes from, whether we answer, and what: the
 * firmware profile, the boot file, the reply's bytes and where they go. Pure: the
 * configuration and the parsed packet in, a reply plan out; the plugin does the I/O. */
#pragma once

#include "dhcp-packet.h"
#include "net.h"
#include "pxe-options.h"

G_BEGIN_DECLS

/* How a client is told what to boot.
 *  MENU:   option 43 with 6/8/9/10 (PXE 2.1 boot menu); the client picks an item and asks
 *          4011 for it. Always with a prompt: old Intel ROMs stop with PXE-E74 without one.
 *  BINL:   no option 43 on port 67; the client comes to 4011 for its file. What UEFI
 *          firmware of the EDK2 2014 lineage needs (its "ProxyBinl" offer type).
 *  DIRECT: 43.6 = 8 and the file at once, no discovery. */
typedef enum {
    PD_PROFILE_MENU = 0,
    PD_PROFILE_BINL,
    PD_PROFILE_DIRECT,
} PdProfile;
#define PD_PROFILE_N 3

const char *pd_profile_name(PdProfile p);
/* Case-insensitive; false when unknown. */
bool pd_profile_parse(const char *text, PdProfile *out);

typedef enum {
    PD_MATCH_MAC,    /* "52:54:00:12:34:56" */
    PD_MATCH_ARCH,   /* decimal option 93 value */
    PD_MATCH_VENDOR, /* option 60 prefix */
} PdMatchKind;

typedef struct {
    PdMatchKind kind;
    char *value; /* lower-case MAC, decimal arch, or vendor prefix */
    PdProfile profile;
} PdProfileRule;

typedef struct {
    char *text; /* what the menu shows */
    char *file; /* the NBP for this item, or NULL for "boot from local disk" (type 0) */
} PdMenuEntry;

typedef struct {
    bool local_dhcp;                   /* LocalDHCPFlag: a DHCP server on this host owns port 67 */
    char *boot_file[PXE_ARCH_CLASS_N]; /* per architecture class; "" = do not serve */
    char *http_url;                    /* for HTTPClient; "" = ignore HTTP boot clients */
    char *ipxe_next; /* what an iPXE client gets instead of iPXE again; "" = none */
    PdProfile profile[PXE_ARCH_CLASS_N];
    GPtrArray *rules;   /* PdProfileRule*: first match wins; checked before profile[] */
    guint menu_timeout; /* 43.10 seconds; 0 = boot the first item, 255 = menu at once */
    char *menu_prompt;
    char *menu_title; /* the first entry's text (this server's default NBP) */
    GPtrArray *menu;  /* PdMenuEntry*: entries after the first */
    char *sname;      /* optional server host name for the sname field */
} PdConfig;

/* g_quark_from_string: a static string would dangle once the module is unloaded. */
#define PD_CONFIG_ERROR (g_quark_from_string("proxydhcp-config-error"))

PdConfig *pd_config_new(void);
void pd_config_free(PdConfig *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PdConfig, pd_config_free)

/* "mac 52:54:00:12:34:56 direct", "arch 7 binl", "vendor PXEClient:Arch:00000 menu".
 * Returns false with a message naming what is wrong. */
bool pd_config_add_rule(PdConfig *c, const char *text, GError **error);
/* "Text=file" or "Text=local" (boot from the local disk). */
bool pd_config_add_menu(PdConfig *c, const char *text, GError **error);

/* What the request says about its sender. */
typedef struct {
    guint8 msg_type;
    PxeVendorKind kind;
    int arch;        /* effective architecture, or -1 when unknown */
    int arch_source; /* 93, 60, or 0 when neither said */
    PxeArchClass arch_class;
    bool http; /* HTTPClient or an HTTP architecture */
    bool ipxe;
    int undi_major, undi_minor; /* option 94, else option 60's UNDI field, else -1 */
    PxeVendorOptions vendor;    /* option 43 from the client (43.71 on discovery requests) */
    char mac[3 * 16];           /* "52:54:00:12:34:56" */
    char uuid[40];              /* option 97 as text, or "" */
    char user_class[64];        /* option 77 printable, or "" */
    char vendor_class[80];      /* option 60 printable */
} PdClient;

/* Fills *c from a parsed request. Returns false, with *why set to a static reason for
 * the level-3 log, when the packet is not one of ours (not a BOOTREQUEST, not a PXE or
 * HTTP client). */
bool pd_classify(const DhcpPacket *p, PdClient *c, const char **why);

/* What the policy engine said (or the default when it did not answer in time). */
typedef struct {
    bool ignore;           /* "ignore this client" */
    int profile;           /* PdProfile, or -1 = no opinion */
    const char *boot_file; /* NULL = no opinion */
} PdPolicyAnswer;

#define PD_POLICY_DEFAULT ((PdPolicyAnswer){.ignore = false, .profile = -1, .boot_file = NULL})

/* Where a packet arrived: which of our two ports, and from whom. */
typedef struct {
    bool on_pxe_port; /* 4011 (or its configured twin) */
    guint8 src_addr[4];
    guint16 src_port;
    guint8 server_addr[4]; /* our address on the receiving interface */
    guint16 client_port;   /* 68 normally; configurable for tests */
    guint16 server_port;   /* 67 normally: relays listen there */
    /* An iPXE client's next step when ipxe_next is empty: the policy script on this
     * daemon's HTTP listener, when one serves it; NULL otherwise. */
    const char *ipxe_auto;
} PdContext;

typedef struct {
    guint8 addr[4];
    guint16 port;
    bool broadcast; /* send to 255.255.255.255 out of the receiving interface */
} PdDest;

typedef struct {
    PdProfile profile;
    const char *boot_file; /* what we named (points into config, policy or client) */
    guint8 reply_type;     /* DHCP_OFFER or DHCP_ACK */
    guint16 item_type;     /* the boot item answered (ACK to 43.71), else 0 */
    PdDest dest;
    gsize len; /* bytes of reply */
} PdPlan;

/* Profile for this client before policy: rules, then the architecture default. */
PdProfile pd_choose_profile(const PdConfig *cfg, const PdClient *c);

/* Decides and encodes the reply into out (cap bytes; 1024 is always enough). Returns
 * false with *why when we stay silent. */
bool pd_decide(const PdConfig *cfg, const DhcpPacket *req, const PdClient *c, const PdContext *ctx,
               const PdPolicyAnswer *policy, guint8 *out, gsize cap, PdPlan *plan,
               const char **why);

/* Where a reply to req goes (RFC 2131 section 4.1; PXE 2.1 for port 4011). */
void pd_reply_dest(const DhcpPacket *req, const PdContext *ctx, PdDest *dest);

/* Where a request arrived, as the socket reported it, and what the host has. */
typedef struct {
    const guint8 *local_if; /* LocalInterface (4 bytes), or NULL when not set */
    guint32 ifindex;        /* the receiving interface; 0 = unknown */
    PbAddr local;           /* the request's destination (family 0 = unknown) */
    const GArray *ifaddrs;  /* the host's addresses (PbIfAddr, pb_net_ifaddrs) */
} PdArrival;

typedef enum {
    PD_SERVER_ADDR_OK = 0,
    PD_SERVER_ADDR_WRONG_IFACE, /* LocalInterface is set and not on the receiving interface */
    PD_SERVER_ADDR_NONE,        /* no IPv4 address to name */
} PdServerAddrResult;

/* Our address as the client should see it (siaddr, option 54): LocalInterface when set;
 * else the request's destination when unicast; else the receiving interface's address,
 * the one on the relay's or the client's subnet when the interface has several; else the
 * host's first non-loopback IPv4 address. */
PdServerAddrResult pd_choose_server_addr(const DhcpPacket *req, const PdArrival *in, guint8 out[4]);

G_END_DECLS
