/* imaging-service.h - the imaging plugin's PB_IMAGING_SERVICE (include/preboot/imaging.h):
 * its backend's images and chunks for other plugins (the multicast plugin), callable from
 * any thread. Kept apart from imaging-plugin.c, which only publishes it and lets it hold
 * off the garbage collection. */
#pragma once

#include <preboot/backend.h>
#include <preboot/imaging.h>

#include <glib.h>

typedef struct ImagingService ImagingService;

/* idle(idle_data) runs on the main loop (host->defer) when the last store in progress
 * ends: a garbage collection waiting for it may start. */
ImagingService *imaging_service_new(const pb_host *host, pb_instance *inst, const pb_backend *be,
                                    void *bh, pb_defer_fn idle, void *idle_data);
/* Publishes it; logs why when the host refuses. */
void imaging_service_publish(ImagingService *s);
/* For the garbage collection, on the main loop: FALSE while a store is in progress (the
 * collection waits for idle); TRUE and new stores are refused (BUSY) until gc_leave. */
gboolean imaging_service_gc_enter(ImagingService *s);
void imaging_service_gc_leave(ImagingService *s);
/* After the host withdrew it (before the plugin's stop) and its users stopped. */
void imaging_service_free(ImagingService *s);
