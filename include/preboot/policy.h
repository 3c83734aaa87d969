/* preboot/policy.h - the policy engine's in-process service: who boots what.
 *
 * The policy plugin publishes this interface in the host's service registry under
 * PB_POLICY_SERVICE; proxydhcp, tftp and imaging look it up with
 *
 *     uint32_t v;
 *     const pb_policy_service *pol = host->service_lookup(inst, PB_POLICY_SERVICE,
 *                                                         PB_POLICY_SERVICE_VERSION, &v);
 *
 * and, when it is there, ask it per client. When it is not (no policy instance configured)
 * the consumer falls back to its own settings (e.g. proxydhcp's NBPx86).
 *
 * Changelog (newest first)
 *   2  2026-12-07  (no version change) PB_POLICY_REQ_WORK: the imaging environment asks
 *                  for its work (imaging's GET /imaging/v1/work); an engine without it
 *                  ignores the flag, so callers need not look for it.
 *   2  2026-12-07  pb_policy_request gains the client's and the relay's addresses as bytes
 *                  (client_family/client_addr, relay_family/relay_addr), read before the
 *                  text forms; a version 1 caller's request (smaller struct_size) is read as
 *                  before.
 *   1  2026-11-24  decide(), report(), menu_entry().
 *
 * Versioning rules are those of plugin.h: every struct starts with its struct_size, a reader
 * touches only what that size covers, new fields are appended, never reordered. A new
 * callback appended to pb_policy_service bumps PB_POLICY_SERVICE_VERSION.
 *
 * Threading: call only from the daemon's main loop thread, like every host service. A call
 * does not block on the network. decide() reads the policy's state from memory (a few
 * microseconds); only a CONSUME that uses up one-shot work or a mark, and report(), write
 * to its local database before returning (about a millisecond at worst; see
 * doc/benchmarks.md).
 */
#ifndef PREBOOT_POLICY_H
#define PREBOOT_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PB_POLICY_SERVICE         "preboot.policy"
#define PB_POLICY_SERVICE_VERSION 2

/* ---- the question ------------------------------------------------------------------- */

enum pb_policy_request_flags {
    /* The caller is about to act on the answer (proxydhcp sends its final reply). The
     * engine records the boot (first/last seen, boot count; requests of one boot within a
     * minute count once). Without COMMIT or CONSUME decide() is a dry run: DHCPDISCOVER
     * offers, `prebootctl policy test`. */
    PB_POLICY_REQ_COMMIT = 1u << 0,
    /* The caller carries out the work itself, now: iPXE fetched its script, pxelinux its
     * configuration file, imaging starts the job. One-shot work and just-imaged marks are
     * consumed, and the boot recorded (implies COMMIT). proxydhcp hands out a boot program,
     * not the work, so it commits without consuming: otherwise one-shot work would be gone
     * before iPXE asks for it. */
    PB_POLICY_REQ_CONSUME = 1u << 1,
    /* The device asks for its work itself: the imaging environment's GET
     * /imaging/v1/work, before it does it. A dry run like a request without COMMIT (nothing
     * recorded, nothing used up: the work's report does that), but work the server must
     * prepare is prepared now: a multicast session the work names (image=IMAGE) is started
     * when it is not running. */
    PB_POLICY_REQ_WORK = 1u << 2,
};

/* What PXE and iPXE reveal about a device. Every pointer may be NULL and every number 0
 * for "unknown"; the engine never keeps a pointer past the call. Identity prefers the
 * SMBIOS UUID and serial over the MAC (docks and USB adapters move MACs between
 * machines); placeholder UUIDs and serials (all zero, all F, "To be filled by O.E.M.")
 * are ignored. */
typedef struct pb_policy_request {
    uint32_t struct_size; /* sizeof(pb_policy_request) of the caller's build */
    uint32_t flags;       /* pb_policy_request_flags */

    uint8_t mac[16];  /* chaddr; hardware address bytes */
    uint8_t mac_len;  /* 6 for Ethernet; 0 = unknown */
    uint8_t has_uuid; /* uuid is valid (DHCP option 97 type 0, RFC 4578 section 2.5) */
    uint8_t has_arch; /* arch is valid (0 is a real value: x86 BIOS) */
    uint8_t reserved;
    uint16_t arch;    /* client system architecture, option 93 (RFC 4578 section 2.1) */
    uint8_t uuid[16]; /* the 16 bytes of option 97 after its type byte */

    /* Text forms of addresses: "192.0.2.10", "2001:db8::5". Since version 2 a caller
     * passes them as bytes instead (client_addr, relay_addr below) and leaves these NULL. */
    const char *client_ip;    /* ciaddr or the source address; NULL/"" = unknown */
    const char *relay_ip;     /* giaddr; NULL/"" = not relayed */
    const char *user_class;   /* option 77 ("iPXE" once iPXE runs) */
    const char *vendor_class; /* option 60 ("PXEClient:Arch:00000:UNDI:002001") */

    /* What iPXE (${serial} ${manufacturer} ${product} ${asset}) or the imaging
     * environment report; proxydhcp leaves them NULL. */
    const char *serial;
    const char *manufacturer;
    const char *product;
    const char *asset_tag;
    const char *bios_version;
    uint64_t ram_mb;  /* 0 = unknown */
    uint64_t disk_gb; /* 0 = unknown */

    /* Since version 2: the addresses as bytes, as the caller read them off the wire
     * (ciaddr, giaddr, the source of a datagram). A family of 0 means "not given here":
     * then the text form above is read, if any. */
    uint8_t client_family; /* 4 or 6; 0 = see client_ip */
    uint8_t relay_family;  /* 4 or 6; 0 = see relay_ip */
    uint8_t reserved2[2];
    uint8_t client_addr[16]; /* network order; IPv4 uses the first 4 bytes */
    uint8_t relay_addr[16];
} pb_policy_request;

/* ---- the answer --------------------------------------------------------------------- */

typedef enum pb_policy_action {
    PB_POLICY_IGNORE = 0, /* do not answer this device at all */
    PB_POLICY_BOOT = 1,   /* answer; see boot_file, menu and work */
} pb_policy_action;

typedef enum pb_policy_menu {
    PB_POLICY_MENU_NEVER = 0,  /* never show the preboot menu */
    PB_POLICY_MENU_F8 = 1,     /* show it when the user presses F8 */
    PB_POLICY_MENU_ALWAYS = 2, /* always show it */
} pb_policy_menu;

typedef enum pb_policy_work {
    PB_POLICY_WORK_LOCAL = 0,     /* boot the local disk (the default) */
    PB_POLICY_WORK_CAPTURE = 1,   /* capture an image named work_arg */
    PB_POLICY_WORK_RESTORE = 2,   /* restore (lay down) the image named work_arg */
    PB_POLICY_WORK_MULTICAST = 3, /* join the multicast session named work_arg */
    PB_POLICY_WORK_SCRIPT = 4,    /* run the imaging script named work_arg */
    PB_POLICY_WORK_PROGRAM = 5,   /* boot the program work_arg (a path or URL) */
} pb_policy_work;

enum pb_policy_decision_flags {
    PB_POLICY_F_ONCE = 1u << 0,        /* the work is one-shot (consumed on commit) */
    PB_POLICY_F_FORCE = 1u << 1,       /* restore even if it is the last image laid down */
    PB_POLICY_F_JUST_IMAGED = 1u << 2, /* local boot because the device was just imaged */
    PB_POLICY_F_SAME_IMAGE = 1u << 3,  /* local boot: that image is already on the disk */
    PB_POLICY_F_ASSIGNED = 1u << 4,    /* from a per-device assignment, not a rule */
    PB_POLICY_F_KNOWN = 1u << 5,       /* the device was seen before */
};

#define PB_POLICY_TEXT_MAX 256

typedef struct pb_policy_decision {
    uint32_t struct_size; /* sizeof(pb_policy_decision) of the caller's build */
    uint32_t action;      /* pb_policy_action */
    uint32_t menu;        /* pb_policy_menu */
    uint32_t menu_timeout_s;
    uint32_t work;  /* pb_policy_work */
    uint32_t flags; /* pb_policy_decision_flags */
    /* NUL-terminated; "" when not set. boot_file is the program proxydhcp hands out
     * (empty: the consumer's own default for this architecture). */
    char boot_file[PB_POLICY_TEXT_MAX];
    char work_arg[PB_POLICY_TEXT_MAX];
    char menu_name[64];  /* menus: entry in the rules file; "" = the built-in menu */
    char rule[128];      /* which rule or assignment decided, for logs */
    char device_id[128]; /* the identity used: "uuid:...", "serial:..." or "mac:..." */
} pb_policy_decision;

/* One entry of a preboot menu. */
typedef struct pb_policy_menu_entry {
    uint32_t struct_size;
    uint32_t work; /* pb_policy_work */
    char label[128];
    char work_arg[PB_POLICY_TEXT_MAX];
} pb_policy_menu_entry;

/* What imaging reports after a job. */
typedef enum pb_policy_event {
    PB_POLICY_EVENT_RESTORED = 1, /* image `image` laid down: mark just-imaged, remember it */
    PB_POLICY_EVENT_CAPTURED = 2, /* image captured */
    PB_POLICY_EVENT_FAILED = 3,   /* the job failed: logged, nothing cleared */
} pb_policy_event;

/* ---- the service -------------------------------------------------------------------- */

typedef struct pb_policy_service {
    uint32_t struct_size; /* sizeof(pb_policy_service) of the publisher's build */
    void *ctx;            /* pass back as the first argument */

    /* Decides for one device. out->struct_size must be set by the caller; the engine
     * fills what that size covers. Returns false only on an internal failure (then out
     * says PB_POLICY_BOOT with local work, the safe answer). */
    bool (*decide)(void *ctx, const pb_policy_request *req, pb_policy_decision *out);

    /* Records the outcome of work on a device (the imaging plugin after a job). image
     * may be NULL. Returns false when the device cannot be identified. */
    bool (*report)(void *ctx, const pb_policy_request *req, uint32_t event, const char *image);

    /* The index-th entry (from 0) of the menu called menu_name ("" = the built-in menu);
     * false past the end. out->struct_size must be set by the caller. */
    bool (*menu_entry)(void *ctx, const char *menu_name, uint32_t index, pb_policy_menu_entry *out);
} pb_policy_service;

#ifdef __cplusplus
}
#endif

#endif /* PREBOOT_POLICY_H */
