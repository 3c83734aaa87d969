/* policy-store.h - what the policy engine must remember across restarts: devices seen (first
 * and last seen, boot count, last rule), per-device assignments, one-shot work already done,
 * just-imaged marks and the last image laid down. SQLite in WAL mode: a committed change
 * survives the daemon being killed (-9) at any instant; see policy-store.c for why SQLite. */
#pragma once

#include "policy-device.h"
#include "policy-rules.h"
#include <glib.h>

G_BEGIN_DECLS

typedef struct PolicyStore PolicyStore;

typedef struct {
    gint64 id;     /* 0 = not stored */
    char key[128]; /* the identity it was first recorded under: "uuid:...", ... */
    char mac[24];
    char uuid[40];
    char *serial;
    gint64 first_seen, last_seen; /* Unix seconds */
    gint64 boot_count;
    gboolean just_imaged;
    char *last_image;
    char *last_rule;
} PolicyDeviceRecord;

void policy_device_record_clear(PolicyDeviceRecord *r);

/* Opens (creating if needed) the database at path; ":memory:" for tests. */
PolicyStore *policy_store_open(const char *path, GError **error);
void policy_store_close(PolicyStore *s);
/* Moves WAL checkpoints (and their fsync) off the decision path, onto a thread with its own
 * connection, every interval_ms. Stopped by policy_store_close(). */
gboolean policy_store_start_checkpointer(PolicyStore *s, guint interval_ms, GError **error);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PolicyStore, policy_store_close)

gboolean policy_store_begin(PolicyStore *s, GError **error);
gboolean policy_store_commit(PolicyStore *s, GError **error);
void policy_store_rollback(PolicyStore *s);

/* Finds the record of a device: by UUID when it has one, else by serial, else by MAC (the
 * most recently seen record with that MAC and no UUID of another machine). FALSE when
 * unknown (error unset) or on failure (error set). */
gboolean policy_store_find(PolicyStore *s, const PolicyDevice *d, PolicyDeviceRecord *out,
                           GError **error);
/* Finds a record by a key as prebootctl gives it ("mac:..", "uuid:..", "serial:.."). */
gboolean policy_store_find_key(PolicyStore *s, const char *key, PolicyDeviceRecord *out,
                               GError **error);
/* Records a boot: creates the record or refreshes its identifiers, sets last_seen and
 * last_rule, counts the boot. out (may be NULL) receives the updated record. */
gboolean policy_store_record_boot(PolicyStore *s, const PolicyDevice *d, gint64 now,
                                  const char *rule, PolicyDeviceRecord *out, GError **error);
/* record_boot for a device already found (rec->id): no second lookup. */
gboolean policy_store_touch(PolicyStore *s, gint64 id, const PolicyDevice *d, gint64 now,
                            const char *rule, gboolean count_boot, GError **error);
gboolean policy_store_set_imaged(PolicyStore *s, gint64 id, const char *image, gboolean just_imaged,
                                 GError **error);
gboolean policy_store_clear_just_imaged(PolicyStore *s, gint64 id, GError **error);

/* Per-device work set by prebootctl or imaging, keyed like policy_device_key_parse(). */
gboolean policy_store_assign(PolicyStore *s, const char *key, const PolicyWork *w, gint64 now,
                             GError **error);
/* FALSE and error unset when there is none. */
gboolean policy_store_get_assignment(PolicyStore *s, const char *key, PolicyWork *out,
                                     GError **error);
/* Removes the assignment, the one-shot marks and the just-imaged mark of a device key.
 * *removed counts what went. */
gboolean policy_store_clear(PolicyStore *s, const char *key, guint *removed, GError **error);
gboolean policy_store_delete_assignment(PolicyStore *s, const char *key, GError **error);

/* One-shot work of a rule (rule name + work text) done by a device. */
gboolean policy_store_once_done(PolicyStore *s, gint64 id, const char *what, gboolean *done,
                                GError **error);
gboolean policy_store_mark_once(PolicyStore *s, gint64 id, const char *what, gint64 now,
                                GError **error);

typedef void (*PolicyDeviceFn)(const PolicyDeviceRecord *rec, const char *assignment,
                               gpointer data);
/* Every device record, most recently seen first, at most limit (0 = all). */
gboolean policy_store_foreach(PolicyStore *s, guint limit, PolicyDeviceFn fn, gpointer data,
                              GError **error);
/* Assignments for keys that have no device record yet. */
gboolean policy_store_foreach_assignment(PolicyStore *s,
                                         void (*fn)(const char *key, const char *work,
                                                    gpointer data),
                                         gpointer data, GError **error);
gint64 policy_store_count_devices(PolicyStore *s);

G_END_DECLS
