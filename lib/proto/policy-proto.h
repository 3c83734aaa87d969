/* policy-proto.h - the policy UDP protocol (doc/protocols.md, "preboot policy protocol"):
 * a proxydhcp or imaging server on another host asks the policy engine over UDP. The one
 * definition of the wire format, used by the server (plugins/policy), its clients
 * (proxydhcp's remote policy query) and the tests. Pure: bytes in, message out; bytes out
 * from a message. What the server does with a message (the device it describes, the reply
 * cache) is the policy plugin's, in plugins/policy/policy-server.h. */
#pragma once

#include "net.h" /* PbAddr */
#include <glib.h>
#include <preboot/policy.h>

G_BEGIN_DECLS

#define POLICY_PROTO_MAGIC   "PBPL"
#define POLICY_PROTO_VERSION 1
#define POLICY_PROTO_HEADER  12
#define POLICY_PROTO_MAX     1400 /* stays below any path MTU we care about: no fragments */
#define POLICY_PROTO_PORT    4012 /* default; beside PXE's 4011 */

typedef enum {
    POLICY_MSG_DECIDE = 1,         /* dry run */
    POLICY_MSG_DECIDE_COMMIT = 2,  /* the caller acts on the answer */
    POLICY_MSG_REPORT = 3,         /* imaging reports a job's outcome */
    POLICY_MSG_DECIDE_CONSUME = 4, /* the caller carries out the work: consume one-shot work */
    POLICY_MSG_DECISION = 0x81,
    POLICY_MSG_REPORT_OK = 0x83,
    POLICY_MSG_ERROR = 0xff,
} PolicyMsgType;

typedef enum {
    /* request */
    POLICY_TLV_MAC = 1,
    POLICY_TLV_UUID = 2,
    POLICY_TLV_ARCH = 3,
    POLICY_TLV_CLIENT_IP = 4,
    POLICY_TLV_RELAY_IP = 5,
    POLICY_TLV_USER_CLASS = 6,
    POLICY_TLV_VENDOR_CLASS = 7,
    POLICY_TLV_SERIAL = 8,
    POLICY_TLV_MANUFACTURER = 9,
    POLICY_TLV_PRODUCT = 10,
    POLICY_TLV_ASSET_TAG = 11,
    POLICY_TLV_BIOS_VERSION = 12,
    POLICY_TLV_RAM_MB = 13,
    POLICY_TLV_DISK_GB = 14,
    POLICY_TLV_EVENT = 15,
    POLICY_TLV_IMAGE = 16,
    /* reply */
    POLICY_TLV_ACTION = 64,
    POLICY_TLV_MENU = 65,
    POLICY_TLV_MENU_TIMEOUT = 66,
    POLICY_TLV_WORK = 67,
    POLICY_TLV_FLAGS = 68,
    POLICY_TLV_BOOT_FILE = 69,
    POLICY_TLV_WORK_ARG = 70,
    POLICY_TLV_MENU_NAME = 71,
    POLICY_TLV_RULE = 72,
    POLICY_TLV_DEVICE_ID = 73,
    POLICY_TLV_ERROR_TEXT = 80,
} PolicyTlv;

typedef enum {
    POLICY_PARSE_OK = 0,
    POLICY_PARSE_NOT_OURS,  /* too short for a header or wrong magic: drop silently */
    POLICY_PARSE_VERSION,   /* a version we do not speak: answer ERROR */
    POLICY_PARSE_BAD_TYPE,  /* unknown message type */
    POLICY_PARSE_TRUNCATED, /* a TLV runs past the end */
    POLICY_PARSE_BAD_VALUE, /* a TLV of the wrong length, or text with NUL */
} PolicyParseResult;

typedef struct {
    guint8 version;
    guint8 type;
    guint32 id;
    /* request */
    guint8 mac[16];
    guint8 mac_len;
    gboolean has_uuid;
    guint8 uuid[16];
    gboolean has_arch;
    guint16 arch;
    PbAddr client_ip, relay_ip; /* family 0 = absent; port unused */
    char *user_class, *vendor_class, *serial, *manufacturer, *product, *asset_tag, *bios_version,
        *image;
    guint32 ram_mb, disk_gb;
    guint8 event;
    /* reply */
    pb_policy_decision decision; /* DECISION: struct_size is sizeof when present */
    gboolean has_action;         /* DECISION: the ACTION option was there (clients require it) */
    char *error_text;            /* ERROR */
} PolicyMsg;

void policy_msg_init(PolicyMsg *m);
void policy_msg_clear(PolicyMsg *m);
const char *policy_parse_result_text(PolicyParseResult r);

/* Parses one datagram. m is initialised first; clear it afterwards whatever the result. */
PolicyParseResult policy_msg_parse(const guint8 *data, gsize len, PolicyMsg *m);
/* Appends the wire form of m to out (a request, a DECISION or an ERROR by m->type).
 * Texts longer than 255 bytes are cut: TLV lengths are one byte. */
void policy_msg_build(const PolicyMsg *m, GByteArray *out);

G_END_DECLS
