/* preboot/multicast.h - what the multicast plugin offers other plugins through the host's
 * service registry: sessions started on behalf of another plugin. The policy plugin starts
 * the session a device's work names ("multicast NAME image=IMAGE clients=N t=MIN") when
 * such a device asks for its work and the session is not running:
 *
 *     const pb_mcast_service *mc = host->service_lookup(inst, PB_MCAST_SERVICE,
 *                                                       PB_MCAST_SERVICE_VERSION, NULL);
 *     pb_mcast_session_spec spec = {.struct_size = sizeof(spec), .name = "room",
 *                                   .image = "golden", .clients = 3, .t_min = -1};
 *     if (mc != NULL)
 *         mc->ensure_session(mc->ctx, &spec);
 *
 * Changelog (newest first)
 *   1  2026-12-07  ensure_session().
 *
 * Versioning rules are those of plugin.h: every struct starts with its struct_size, a reader
 * touches only what that size covers, new fields are appended, never reordered; a callback
 * appended to pb_mcast_service bumps PB_MCAST_SERVICE_VERSION. Installed as
 * <preboot/multicast.h>; only standard types are used.
 *
 * Threading: call only from the daemon's main loop thread. A call does not block on the
 * network (it reads the image's manifest from the store and starts the session's thread).
 */
#ifndef PREBOOT_MULTICAST_H
#define PREBOOT_MULTICAST_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PB_MCAST_SERVICE         "preboot.multicast"
#define PB_MCAST_SERVICE_VERSION 1

/* A session as `prebootctl mcast start NAME IMAGE [clients=N] [t=MIN]` takes it. */
typedef struct pb_mcast_session_spec {
    uint32_t struct_size; /* sizeof(pb_mcast_session_spec) of the caller's build */
    const char *name;     /* session name: [A-Za-z0-9._-], not starting with '.' */
    const char *image;    /* the image it sends */
    uint32_t clients;     /* start when this many joined; 0: no count */
    int32_t t_min;        /* start this many minutes after the last join; -1: the plugin's
                           * join_timeout */
    const char *by;       /* who asks, for the log ("policy: mac:aa:bb:..") */
} pb_mcast_session_spec;

typedef enum pb_mcast_ensure_result {
    PB_MCAST_ENSURE_REFUSED = 0, /* not started: the plugin logs why (no such image, the
                                  * session limit, no free group, a bad name) */
    PB_MCAST_ENSURE_RUNNING = 1, /* a session of that name runs already (waiting or sending):
                                  * left as it is, whatever image it sends */
    PB_MCAST_ENSURE_STARTED = 2, /* started now */
} pb_mcast_ensure_result;

typedef struct pb_mcast_service {
    uint32_t struct_size; /* sizeof(pb_mcast_service) of the publisher's build */
    void *ctx;            /* pass back as the first argument */

    /* Starts session spec->name sending spec->image unless a session of that name is
     * running; a finished one of that name is replaced, as `mcast start` does. Returns a
     * pb_mcast_ensure_result. */
    uint32_t (*ensure_session)(void *ctx, const pb_mcast_session_spec *spec);
} pb_mcast_service;

#ifdef __cplusplus
}
#endif

#endif /* PREBOOT_MULTICAST_H */
