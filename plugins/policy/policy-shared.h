/* policy-shared.h - the part of the policy state several servers share, behind a small
 * interface of its own so that policy-store.c (SQLite and memory, the server's own copy)
 * does not know the engine behind it: today PostgreSQL (policy-store-pg.c), or none
 * (policy-store-pg-none.c, a build without libpq).
 *
 * What is shared: per-device assignments and one-shot work done, the state that decides
 * what a device is told to do and that must be used once across servers. The bookkeeping of
 * boots (first and last seen, counts, last rule) and the just-imaged marks stay each
 * server's own (its SQLite file): they change at every boot, and sharing them would make
 * every decision a database write.
 *
 * Reads are never made on the caller's thread: the implementation keeps a snapshot current
 * on a thread of its own (it polls a version counter that every write bumps, every
 * SHARED_REFRESH_MS) and hands a new snapshot over when the version changed; the store
 * applies it in memory. Writes are made on the caller's thread, bounded in time
 * (SHARED_TIMEOUT_MS), on a connection that thread never makes itself (the implementation's
 * thread connects and reconnects): a server whose database is away refuses them at once. */
#pragma once

#include "policy-store.h"

#include <glib.h>

G_BEGIN_DECLS

#define SHARED_REFRESH_MS 500
#define SHARED_TIMEOUT_MS 2000

typedef struct {
    gint64 version;
    GHashTable *assign; /* device key -> work text */
    GHashTable *once;   /* "DEVICEKEY\nWHAT" -> "" */
} PolicySharedSnapshot;

void policy_shared_snapshot_free(PolicySharedSnapshot *snap);

typedef struct PolicyShared PolicyShared;

/* Every write returns the version it made (> 0), or -1 with error: POLICY_STORE_ERROR_TAKEN
 * (consume, mark_once: another server did it first), POLICY_STORE_ERROR_UNAVAILABLE (the
 * database is away or did not answer in time: nothing was done). */
typedef struct {
    const char *name;
    gint64 (*assign)(PolicyShared *sh, const char *key, const char *work, gint64 now,
                     GError **error);
    gint64 (*unassign)(PolicyShared *sh, const char *key, GError **error);
    /* Removes key's assignment if it is still work: TAKEN when it is not. */
    gint64 (*consume)(PolicyShared *sh, const char *key, const char *work, GError **error);
    /* Records what as done by device_key: TAKEN when it was already. */
    gint64 (*mark_once)(PolicyShared *sh, const char *device_key, const char *what, gint64 now,
                        GError **error);
    gint64 (*clear_once)(PolicyShared *sh, const char *device_key, GError **error);
    /* The newest snapshot not taken yet, or NULL. */
    PolicySharedSnapshot *(*take)(PolicyShared *sh);
    void (*close)(PolicyShared *sh);
} PolicySharedOps;

struct PolicyShared {
    const PolicySharedOps *ops;
};

typedef void (*PolicySharedLogFn)(void *data, int level, const char *message);

/* Connects (waiting at most a few seconds for the first snapshot; a database that is away
 * is not an error: the server starts on its own copy and catches up when it returns).
 * NULL with error when conninfo cannot be parsed or this build has no PostgreSQL. */
PolicyShared *policy_shared_pg_open(const char *conninfo, PolicySharedLogFn log, void *log_data,
                                    GError **error);

/* Shares through sh (an implementation of the interface above; the store closes it): what
 * policy_store_share does with PostgreSQL's, and tests with a fake one. */
void policy_store_attach_shared(PolicyStore *s, PolicyShared *sh);

G_END_DECLS
