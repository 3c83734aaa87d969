/* preboot/http.h - the daemon's one HTTP listener, as a service other plugins use.
 *
 * The http plugin runs a single HTTP server (libmicrohttpd, on the daemon's main loop) and
 * publishes this interface in the host's service registry under PB_HTTP_SERVICE. Other
 * plugins add routes for path prefixes: the policy plugin serves /boot.ipxe, the imaging
 * plugin its API. A consumer looks the service up per use, as plugin.h asks:
 *
 *     const pb_http_service *http = host->service_lookup(inst, PB_HTTP_SERVICE,
 *                                                        PB_HTTP_SERVICE_VERSION, NULL);
 *     if (http != NULL)
 *         http->route_add(http->ctx, "/boot.ipxe", serve_script, self);
 *
 * and removes its routes from its stop() (looking the service up again: if the http
 * instance stopped first, its routes are gone with it and there is nothing to remove).
 * When the http instance starts after the consumer, the consumer retries the lookup
 * (the policy plugin does so once a second until it succeeds).
 *
 * Changelog (newest first)
 *   2  2026-12-05  listen_port(), listen_address(), routed(): where the listener is and
 *                  what it serves, so that other plugins can point clients at a route.
 *   1  2026-11-24  routes by prefix, query/header access, buffered and streamed responses.
 *
 * Versioning rules are those of plugin.h: every struct starts with its struct_size, a reader
 * touches only what that size covers, new fields and callbacks are appended (a new callback
 * bumps PB_HTTP_SERVICE_VERSION), never reordered or removed.
 *
 * Threading and lifetime: handlers run on the daemon's main loop thread. A handler answers
 * before it returns, with exactly one of respond() or respond_stream(); the request, the
 * response and every string they hand out are valid only during the handler call.
 */
#ifndef PREBOOT_HTTP_H
#define PREBOOT_HTTP_H

#include <preboot/plugin.h> /* PB_HAS_FIELD */
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PB_HTTP_SERVICE         "preboot.http"
#define PB_HTTP_SERVICE_VERSION 2

/* One request, as the handler sees it. */
typedef struct pb_http_request {
    uint32_t struct_size;
    const char *method; /* "GET", "HEAD", "POST", "PUT", "DELETE", ... */
    const char *path;   /* the URL path, percent-decoded, without the query: "/boot.ipxe" */
    const char *client; /* the peer's address: "192.0.2.7", "2001:db8::7" */
    uint16_t client_port;
    /* The request body (POST, PUT), whole, up to the http plugin's max_body_size; a
     * larger body is refused with 413 before any handler runs. NULL/0 when there is none. */
    const uint8_t *body;
    size_t body_len;
} pb_http_request;

/* Where a handler writes its answer (opaque; owned by the http plugin). */
typedef struct pb_http_response pb_http_response;

/* Serves a request whose path starts with the route's prefix. Returns false when it did
 * not answer (then the client gets 500 Internal Server Error). */
typedef bool (*pb_http_handler_fn)(void *data, const pb_http_request *req, pb_http_response *resp);

/* Streamed body: copy up to len bytes at offset into buf; return the count, 0 at the end,
 * or -1 on an error (the connection is closed). free_fn (may be NULL) runs once at the end. */
typedef int64_t (*pb_http_read_fn)(void *handle, uint64_t offset, void *buf, size_t len);
typedef void (*pb_http_free_fn)(void *handle);

typedef struct pb_http_service {
    uint32_t struct_size; /* sizeof(pb_http_service) of the publisher's build */
    void *ctx;            /* pass back as the first argument */

    /* Routes a path prefix ("/boot.ipxe", "/imaging/") to fn. The longest matching prefix
     * wins; a prefix is matched on whole bytes, so "/boot.ipxe" also matches
     * "/boot.ipxe?x" (the query is not part of path) but "/img" matches "/images" too:
     * end directory prefixes with "/". False when the prefix is taken or invalid. */
    bool (*route_add)(void *ctx, const char *prefix, pb_http_handler_fn fn, void *data);
    /* Removes a route added with the same prefix, fn and data. */
    void (*route_remove)(void *ctx, const char *prefix, pb_http_handler_fn fn, void *data);

    /* A query parameter (percent-decoded) or request header (case-insensitive name) of
     * req, or NULL when absent. Valid during the handler call. */
    const char *(*query)(void *ctx, const pb_http_request *req, const char *name);
    const char *(*header)(void *ctx, const pb_http_request *req, const char *name);

    /* Adds a response header; call before respond(). False on a bad name or value. */
    bool (*add_header)(void *ctx, pb_http_response *resp, const char *name, const char *value);
    /* Answers with status (200, 404...), a Content-Type (NULL: none) and a body that is
     * copied (len 0: empty). HEAD requests get the headers only. */
    bool (*respond)(void *ctx, pb_http_response *resp, unsigned status, const char *content_type,
                    const void *body, size_t len);
    /* Answers with a body produced by read_fn as the client takes it (images, large
     * files). size is the total length, or -1 when unknown (chunked encoding). */
    bool (*respond_stream)(void *ctx, pb_http_response *resp, unsigned status,
                           const char *content_type, int64_t size, pb_http_read_fn read_fn,
                           pb_http_free_fn free_fn, void *handle);

    /* Version 2 (check struct_size). The TCP port the listener is bound to. */
    uint16_t (*listen_port)(void *ctx);
    /* The address it is bound to ("192.0.2.1"), or "" when it listens on all of the
     * host's addresses (then a client reaches it at whichever address it reached us). */
    const char *(*listen_address)(void *ctx);
    /* Whether a request for path would reach a route now (another plugin's). */
    bool (*routed)(void *ctx, const char *path);
} pb_http_service;

/* TRUE when the service s (of the size it says) has member m: PB_HAS_FIELD, kept as an
 * alias for the plugins that already use it. */
#define PB_HTTP_HAS(s, m) PB_HAS_FIELD(pb_http_service, s, m)

#ifdef __cplusplus
}
#endif

#endif /* PREBOOT_HTTP_H */
