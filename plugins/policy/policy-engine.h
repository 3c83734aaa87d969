/* policy-engine.h - the decision: rules + per-device assignments + durable state -> what a
 * device does now. No sockets, no host: the plugin, the UDP server, the HTTP endpoint, the
 * tests and the benchmark all call this. */
#pragma once

#include "policy-device.h"
#include "policy-rules.h"
#include "policy-store.h"
#include <preboot/policy.h>

G_BEGIN_DECLS

typedef struct {
    const PolicyRules *rules; /* never NULL */
    PolicyStore *store;       /* NULL: no state (decisions from rules alone) */
    /* A boot asks several times (proxydhcp, then iPXE or pxelinux): committed answers to
     * one device within this many seconds count as one boot. 0: count each. */
    gint64 boot_window_s;
} PolicyEngine;

/* Decides for dev. flags are pb_policy_request_flags: COMMIT records the boot; CONSUME
 * also consumes one-shot work and the just-imaged mark, atomically with the record. why (may be
 * NULL) receives the reasoning. out must have struct_size set; only what it covers is written. On a
 * state failure the decision is still made from the rules (and FALSE returned with error set, so
 * the caller can log). */
gboolean policy_engine_decide(const PolicyEngine *e, const PolicyDevice *dev, guint32 flags,
                              gint64 now, pb_policy_decision *out, GString *why, GError **error);

/* An engine flag beside CONSUME, for the plugin's own boot paths (never on the service):
 * what was handed over is a boot program (iPXE's script, pxelinux's file), not the work.
 * Work a boot carries out (program, script, the disk) is consumed as with CONSUME alone;
 * imaging work (capture, restore, multicast) is not, because the imaging environment that
 * boot starts asks the imaging server for the same work and must still find it: it is
 * consumed when the imaging plugin reports its result (a CONSUME through the service). */
#define POLICY_REQ_BOOT_PROGRAM (1u << 30)

/* Imaging reports a finished job. */
gboolean policy_engine_report(const PolicyEngine *e, const PolicyDevice *dev, guint32 event,
                              const char *image, gint64 now, GError **error);

/* The session a multicast decision (d, as decide() made it for dev) sends, when its work
 * says how the server starts it (image=IMAGE [clients=N] [t=MIN]): re-read from the
 * assignment or rule that decided. FALSE (out cleared) for any other decision. */
gboolean policy_engine_session_spec(const PolicyEngine *e, const PolicyDevice *dev,
                                    const pb_policy_decision *d, PolicyWork *out);

gboolean policy_engine_menu_entry(const PolicyEngine *e, const char *menu, guint index,
                                  pb_policy_menu_entry *out);

const char *policy_menu_show_name(guint32 show);

/* The one spelling of local work in menus, scripts and pxelinux files. */
#define POLICY_LABEL_LOCAL "Boot the local disk"

/* Whether work runs the imaging environment (capture, restore, multicast, script): work a
 * rules file without an imaging: kernel cannot carry out. */
gboolean policy_work_needs_imaging(guint32 work);

/* Fills a device from prebootctl's words: "DEVICE [key=value...]" where DEVICE is a MAC,
 * UUID or serial:X and keys are the rule fields (arch=efi-x64 ip=10.0.0.5 ram=4096
 * manufacturer=Dell ...). */
gboolean policy_device_from_words(PolicyDevice *d, int argc, const char *const *argv,
                                  GError **error);

G_END_DECLS
