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
 *   3  2026-12-07  route_add_ex() with per-route options (methods, 405 + Allow; body or
 *                  none, 413 at once; networks, 403; bearer token, 401), request bodies
 *                  streamed to the route with pause/resume (receive_body(), suspend(),
 *                  resume()), answers from later callbacks (suspend() then respond*()),
 *                  PB_HTTP_READ_AGAIN for downloads that wait for data, on_done(), and
 *                  respond_range() (Range: 206 + Content-Range, or 416).
 *   2  2026-12-05  listen_port(), listen_address(), routed(): where the listener is and
 *                  what it serves, so that other plugins can point clients at a route.
 *   1  2026-11-24  routes by prefix, query/header access, buffered and streamed responses.
 *
 * Versioning rules are those of plugin.h: every struct starts with its struct_size, a reader
 * touches only what that size covers, new fields and callbacks are appended (a new callback
 * bumps PB_HTTP_SERVICE_VERSION), never reordered or removed.
 *
 * Threading and lifetime: handlers run on the daemon's main loop thread. A handler of a
 * route added with route_add() answers before it returns, with exactly one of respond() or
 * respond_stream(); the request, the response and every string they hand out are valid
 * only during the handler call. Routes added with route_add_ex() (version 3) may answer
 * later and stream bodies both ways: see route_add_ex().
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
#define PB_HTTP_SERVICE_VERSION 3

/* Methods, as bits (version 3): route options and pb_http_request.method_id. */
enum pb_http_method {
    PB_HTTP_M_GET = 1u << 0,
    PB_HTTP_M_HEAD = 1u << 1,
    PB_HTTP_M_POST = 1u << 2,
    PB_HTTP_M_PUT = 1u << 3,
    PB_HTTP_M_DELETE = 1u << 4,
    PB_HTTP_M_OPTIONS = 1u << 5,
    PB_HTTP_M_PATCH = 1u << 6,
    PB_HTTP_M_OTHER = 1u << 31, /* any other method (never allowed by route options) */
};

/* pb_http_request.content_length when the client sends a body of unknown length (chunked). */
#define PB_HTTP_LENGTH_UNKNOWN UINT64_MAX

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

    /* Version 3 (check struct_size). The method as a PB_HTTP_M_* bit: a HEAD request
     * reaches a GET route's handler with PB_HTTP_M_HEAD, so it can skip side effects (the
     * body it answers with is not sent). */
    uint32_t method_id;
    /* The length of the body the client announced: 0 for none, PB_HTTP_LENGTH_UNKNOWN
     * for a chunked one. For a streamed route the body has not been read yet. */
    uint64_t content_length;
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

/* Version 3: a read_fn may return this when it has no data yet: the download waits,
 * without blocking the loop, until the route calls resume() on its response. */
#define PB_HTTP_READ_AGAIN (-2)

/* Version 3: one piece of a streamed request body, as it arrives (at most a few tens of
 * KiB), valid during the call; len is 0 exactly once, at the end of the body. The piece
 * is consumed whole: to stop intake for a while (back-pressure), call suspend() from here
 * and resume() later. At the end the route answers (respond*()), or calls suspend() and
 * answers later. Return false to drop the connection at once (no answer is sent): a
 * failure in the middle of an upload, where an answer could only follow the whole body. */
typedef bool (*pb_http_body_fn)(void *handle, const pb_http_request *req, pb_http_response *resp,
                                const void *data, size_t len);

/* Version 3: the request is over: answered and sent (completed true), or given up
 * (client gone, timed out, daemon stopping: false). Runs once; req and resp are invalid
 * after it. */
typedef void (*pb_http_done_fn)(void *handle, bool completed);

/* Version 3: per-route options (route_add_ex). Zeroed fields mean: GET and HEAD only,
 * no request body, any network, no credential. */
typedef struct pb_http_route_options {
    uint32_t struct_size; /* sizeof(pb_http_route_options) of the caller's build */
    /* PB_HTTP_M_* bits; 0: GET | HEAD. Others get 405 with an Allow header. HEAD is
     * answered by the handler as a GET (see method_id) when GET is allowed. */
    uint32_t methods;
    /* Largest request body, in bytes; 0: the route takes none, and a request that
     * announces one gets 413 at once, before any of it is read. A larger announced
     * Content-Length also gets 413 at once; a chunked body that grows past it is cut. */
    uint64_t max_body;
    /* PB_HTTP_ROUTE_* flags. */
    uint32_t flags;
    /* Client networks allowed ("10.0.0.0/8", "2001:db8::/32", "192.0.2.7"), a
     * NULL-terminated list copied at registration; NULL: any. Others get 403. */
    const char *const *networks;
    /* When not NULL or "": the credential required as "Authorization: Bearer TOKEN",
     * compared in constant time; copied at registration. Others get 401. */
    const char *bearer_token;
} pb_http_route_options;

/* The body (up to max_body) is buffered whole and the handler runs once it is in, with
 * req->body, as for version 1 routes; without it the handler runs as soon as the headers
 * are in and takes the body with receive_body(). Use it for small bodies only. */
#define PB_HTTP_ROUTE_BUFFER_BODY (1u << 0)

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

    /* Version 3 (check struct_size).
     *
     * Lifetime: for a route added with route_add_ex(), req and resp stay valid from the
     * handler call until the request is over (on_done()), so that a route can answer
     * later, from any callback on the main loop. The bounds of the http plugin apply
     * before a handler runs: unknown methods (405), bodies (413), networks (403),
     * credentials (401); the handler never sees a refused request.
     *
     * Routes a path prefix to fn as route_add() does, with options (NULL: the zeroed
     * defaults above). False when the prefix is taken or invalid, or an option is
     * invalid (an unparsable network). route_remove() removes it. */
    bool (*route_add_ex)(void *ctx, const char *prefix, pb_http_handler_fn fn, void *data,
                         const pb_http_route_options *options);
    /* From the handler of a streamed route (no PB_HTTP_ROUTE_BUFFER_BODY): take the
     * request body, piece by piece, through fn (see pb_http_body_fn). When the request
     * has no body, fn is called once with len 0 (from the main loop, soon). The handler
     * then returns true without answering. False when called twice or after an answer. */
    bool (*receive_body)(void *ctx, pb_http_response *resp, pb_http_body_fn fn, void *handle);
    /* The request waits: from the handler (answer later), from a body callback (no more
     * body is read: back-pressure) or after a read_fn returned PB_HTTP_READ_AGAIN
     * (implicit there). Not timed out meanwhile, and the client's going away is noticed
     * only when it resumes: the route must resume or answer it. */
    bool (*suspend)(void *ctx, pb_http_response *resp);
    /* Body intake or a waiting download goes on. respond*() on a waiting request
     * resumes it by itself. Safe from any main-loop callback; a no-op when not waiting. */
    bool (*resume)(void *ctx, pb_http_response *resp);
    /* fn runs once when the request is over (see pb_http_done_fn). One per response. */
    bool (*on_done)(void *ctx, pb_http_response *resp, pb_http_done_fn fn, void *handle);
    /* Answers a GET or HEAD of a resource of size bytes, read through read_fn (absolute
     * offsets), honouring one "Range: bytes=..." range: 206 with Content-Range, 416 with
     * "Content-Range: bytes * /size" (free_fn is still called), or 200 with the whole
     * resource when there is no Range, it cannot be parsed, names several ranges, or an
     * If-Range differs from the ETag added with add_header(). Adds Accept-Ranges. */
    bool (*respond_range)(void *ctx, const pb_http_request *req, pb_http_response *resp,
                          const char *content_type, uint64_t size, pb_http_read_fn read_fn,
                          pb_http_free_fn free_fn, void *handle);
} pb_http_service;

/* TRUE when the service s (of the size it says) has member m: PB_HAS_FIELD, kept as an
 * alias for the plugins that already use it. */
#define PB_HTTP_HAS(s, m) PB_HAS_FIELD(pb_http_service, s, m)

#ifdef __cplusplus
}
#endif

#endif /* PREBOOT_HTTP_H */
