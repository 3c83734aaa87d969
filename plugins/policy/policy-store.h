/* policy-store.h - what the policy engine must remember across restarts: devices seen (first
 * and last seen, boot count, last rule), per-device assignments, one-shot work already done,
 * just-imaged marks and the last image laid down. SQLite in WAL mode: a committed change
 * survives the daemon being killed (-9) at any instant; see policy-store.c for why SQLite.
 *
 * All of it is also held in memory, loaded at open and kept current by every write: the
 * reads a decision makes (find, get_assignment, once_done) touch no SQLite. The bookkeeping
 * of boots (policy_store_note_boot) is written in batches by policy_store_flush(): a kill -9
 * may lose the last batch of it. Everything else is written when called, in the caller's
 * transaction. Main loop thread only (the writer thread is the store's own). */
#pragma once

#include "policy-device.h"
#include "policy-rules.h"
#include <glib.h>

G_BEGIN_DECLS

typedef struct PolicyStore PolicyStore;

typedef struct {
    gint64 id;     /* 0 = not stored; a device noted but not flushed yet has its id already */
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
/* Starts the writer thread, with its own connection: it writes the batches handed over by
 * policy_store_flush() and checkpoints the WAL every interval_ms, off the decision path.
 * Without it (and always for ":memory:") a flush writes on the caller's thread. Stopped by
 * policy_store_close(), after a last flush. */
gboolean policy_store_start_writer(PolicyStore *s, guint interval_ms, GError **error);
/* Writes the bookkeeping noted so far, in one transaction: hands it to the writer thread and
 * returns (wait = FALSE: the plugin's timer), or returns once it is written (wait = TRUE:
 * stop, reload). Does nothing inside a transaction. FALSE with error when an earlier batch
 * failed (its devices stay in memory and are tried again). */
gboolean policy_store_flush(PolicyStore *s, gboolean wait, GError **error);
/* Devices whose bookkeeping is not written yet. */
guint policy_store_pending(PolicyStore *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PolicyStore, policy_store_close)

/* BEGIN IMMEDIATE, in the writer's turn: waits at most for the one chunk of a batch the
 * writer is writing (CHUNK_ROWS devices), never for the whole batch; the writer waits until
 * commit or rollback. A rollback also puts back what the transaction changed in memory. */
gboolean policy_store_begin(PolicyStore *s, GError **error);
gboolean policy_store_commit(PolicyStore *s, GError **error);
void policy_store_rollback(PolicyStore *s);

/* Finds the record of a device: by UUID when it has one, else by serial, else by MAC (the
 * most recently seen record with that MAC and no UUID or serial of another machine),
 * bookkeeping not flushed yet included. From memory: FALSE means unknown. */
gboolean policy_store_find(PolicyStore *s, const PolicyDevice *d, PolicyDeviceRecord *out,
                           GError **error);
/* The record of device id, from memory. FALSE when there is none. */
gboolean policy_store_get(PolicyStore *s, gint64 id, PolicyDeviceRecord *out);
/* Finds a record by a key as prebootctl gives it ("mac:..", "uuid:..", "serial:.."), after
 * writing what is pending (as foreach and count_devices do): not for the decision path. */
gboolean policy_store_find_key(PolicyStore *s, const char *key, PolicyDeviceRecord *out,
                               GError **error);
/* Notes a boot in memory (the hot path: no SQLite write): creates the record of a device not
 * known (known = NULL; counts its first boot) or refreshes the one found (known, from
 * policy_store_find), its identifiers, last_seen and last_rule, and counts the boot if
 * count_boot. *id (may be NULL) receives the device's id. Written by the next flush. */
gboolean policy_store_note_boot(PolicyStore *s, const PolicyDeviceRecord *known,
                                const PolicyDevice *d, gint64 now, const char *rule,
                                gboolean count_boot, gint64 *id, GError **error);
/* Writes what is noted about device id now, in the caller's transaction (if any): for the
 * changes that must not be lost and refer to the device's row. */
gboolean policy_store_persist(PolicyStore *s, gint64 id, GError **error);
/* Records a boot and writes it now: note_boot (found or new) + persist. out (may be NULL)
 * receives the updated record. */
gboolean policy_store_record_boot(PolicyStore *s, const PolicyDevice *d, gint64 now,
                                  const char *rule, PolicyDeviceRecord *out, GError **error);
/* These write now, the device's record first (policy_store_persist). */
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
/* Devices in the table, after writing what is pending. */
gint64 policy_store_count_devices(PolicyStore *s);
/* Bounds the device records (0: no bound). At the bound a new device takes the place of the
 * oldest one whose record changes no answer (no assignment, image, just-imaged mark or
 * one-shot work done); when none is found it is not recorded: note_boot fails with
 * G_FILE_ERROR_NOSPC and the decision is made without it. Counted: records created,
 * evicted, and devices refused a record. */
void policy_store_set_max_devices(PolicyStore *s, guint max);
void policy_store_device_stats(PolicyStore *s, guint64 *created, guint64 *evicted,
                               guint64 *refused);

/* Devices and assignments in memory (no SQL, no wait). */
guint policy_store_device_count(PolicyStore *s);
guint policy_store_assignment_count(PolicyStore *s);

/* ---- state shared by several servers (policy-shared.h says what and how) ------------------- */

#define POLICY_STORE_ERROR policy_store_error_quark()
GQuark policy_store_error_quark(void);
typedef enum {
    POLICY_STORE_ERROR_TAKEN,       /* another server used that work first: withhold it */
    POLICY_STORE_ERROR_UNAVAILABLE, /* the shared database is away: nothing changed */
} PolicyStoreError;

typedef void (*PolicyStoreLogFn)(void *data, int level, const char *message);
/* Shares assignments and one-shot work with the other servers of a PostgreSQL database
 * (conninfo: a libpq connection string, its password included). Writes then go to the
 * database first (refused with POLICY_STORE_ERROR_UNAVAILABLE while it is away); reads stay
 * in memory, brought up to date by policy_store_sync(). log: warnings about the database
 * (any thread). */
gboolean policy_store_share(PolicyStore *s, const char *conninfo, PolicyStoreLogFn log,
                            void *log_data, GError **error);
gboolean policy_store_shared(PolicyStore *s);
/* db (a libpq connection string or service) with the password of password_file (may be
 * ""), for policy_store_share; wiped by policy_store_conninfo_free. */
char *policy_store_conninfo(const char *db, const char *password_file, GError **error);
void policy_store_conninfo_free(char *conninfo);
/* Applies what the other servers changed, when the shared database's thread has read a newer
 * state (a few hash operations; SQLite writes only for assignments that changed). Called by
 * policy_store_flush() (the plugin's timer), the engine before each decision and the
 * listings. Does nothing inside a transaction or without a shared database. */
void policy_store_sync(PolicyStore *s);
/* Uses up the one-shot assignment w of key: with a shared database, only if it is still
 * there and still w (POLICY_STORE_ERROR_TAKEN when another server used it). */
gboolean policy_store_consume_assignment(PolicyStore *s, const char *key, const PolicyWork *w,
                                         GError **error);

G_END_DECLS
