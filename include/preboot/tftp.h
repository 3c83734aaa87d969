/* preboot/tftp.h - what the tftp plugin offers other plugins through the host's service
 * registry, under the name PB_TFTP_SERVICE (the first tftp instance) and
 * PB_TFTP_SERVICE ".INSTANCE" (each instance, e.g. "preboot.tftp.tftp"):
 *   - virtual files: a provider is asked first for every RRQ and may serve bytes it makes
 *     up (a boot menu for one client, say), with tsize when it knows the size;
 *   - transfer events: listeners hear of every finished transfer (client, file, bytes,
 *     duration, result), for statistics and imaging state.
 * Installed as <preboot/tftp.h>; only plugin.h types are used, so a consumer needs nothing
 * else of ours. Versioning as in plugin.h: struct_size first, new fields at the end. Look
 * the service up per use, as the registry asks; unregister from your stop().
 *
 * Changelog (newest first)
 *   2  2026-12-07  typed file providers (add_file_provider2: the client's address as bytes,
 *                  not text); pb_tftp_vfile.finish, told how the transfer ended before
 *                  close(), so a provider can tell a completed download from a tsize probe.
 *   1  2026-11-24  virtual file providers, transfer event listeners. */
#ifndef PREBOOT_TFTP_H
#define PREBOOT_TFTP_H

#include <preboot/plugin.h>

#define PB_TFTP_SERVICE         "preboot.tftp"
#define PB_TFTP_SERVICE_VERSION 2u

/* A virtual file handed to the server. read() returns bytes copied (fewer than len only at
 * the end) or -1; close() is called exactly once when the transfer ends. */
typedef struct pb_tftp_vfile {
    uint32_t struct_size; /* set by the server to its size; the provider sets its own */
    int64_t size;         /* -1 when not known in advance: no tsize in the OACK */
    int64_t (*read)(void *handle, uint64_t offset, void *buf, size_t len);
    void (*close)(void *handle);
    void *handle;
    /* Since version 2 (read only when the provider's struct_size covers it; may be NULL).
     * Called once, just before close(), with how the transfer ended (pb_tftp_result) and the
     * bytes the client acknowledged. PB_TFTP_OK means the whole file was sent and the
     * client acknowledged the last block (or stopped answering after it); PB_TFTP_TSIZE_PROBE
     * is UEFI's size probe (RRQ with tsize, then ERROR 8): nothing was handed over. Work a
     * file hands out is used up here, never at open. */
    void (*finish)(void *handle, uint32_t result, uint64_t bytes);
} pb_tftp_vfile;

/* Asked for each RRQ before the file system. client is "192.0.2.7" or "2001:db8::7";
 * path is the sanitised name relative to the root. Return 1 after filling *out, 0 when
 * the file is not yours (the next provider, then the disk, is asked), -1 to refuse it
 * (the client gets "Access violation"). */
typedef int (*pb_tftp_open_fn)(void *data, const char *client, const char *path,
                               pb_tftp_vfile *out);

/* Since version 2: the same question with the client's address as bytes, as the server
 * read it from the socket (no text to parse back). */
typedef struct pb_tftp_open_request {
    uint32_t struct_size;
    uint8_t family; /* 4 or 6 */
    uint8_t reserved;
    uint16_t port;      /* the client's port, host order */
    uint8_t addr[16];   /* network order; IPv4 uses the first 4 bytes */
    const char *client; /* the same address as text, for logs */
    const char *path;   /* as for pb_tftp_open_fn */
} pb_tftp_open_request;

typedef int (*pb_tftp_open2_fn)(void *data, const pb_tftp_open_request *req, pb_tftp_vfile *out);

typedef enum pb_tftp_result {
    PB_TFTP_OK = 0,
    PB_TFTP_TSIZE_PROBE = 1, /* the client only asked for the size */
    PB_TFTP_TIMEOUT = 2,
    PB_TFTP_CLIENT_ERROR = 3,
    PB_TFTP_PROTOCOL_ERROR = 4,
    PB_TFTP_SERVER_ERROR = 5,
    PB_TFTP_REFUSED = 6, /* answered with an ERROR before any data (not found, denied...) */
} pb_tftp_result;

typedef struct pb_tftp_event {
    uint32_t struct_size;
    const char *client; /* address text */
    uint16_t client_port;
    const char *path; /* as requested */
    bool upload;
    uint64_t bytes;
    uint64_t duration_us;
    uint32_t result;     /* pb_tftp_result */
    uint32_t error_code; /* TFTP error code sent or received, 0 if none */
    const char *error_text;
} pb_tftp_event;

typedef void (*pb_tftp_event_fn)(void *data, const pb_tftp_event *ev);

typedef struct pb_tftp_service {
    uint32_t struct_size;
    void *ctx; /* pass as the first argument of the calls below */
    /* Providers and listeners are identified by (fn, data). Returns false when full. */
    bool (*add_file_provider)(void *ctx, pb_tftp_open_fn fn, void *data);
    void (*remove_file_provider)(void *ctx, pb_tftp_open_fn fn, void *data);
    bool (*add_listener)(void *ctx, pb_tftp_event_fn fn, void *data);
    void (*remove_listener)(void *ctx, pb_tftp_event_fn fn, void *data);
    /* Since version 2. Typed providers are asked with the others, in the order added. */
    bool (*add_file_provider2)(void *ctx, pb_tftp_open2_fn fn, void *data);
    void (*remove_file_provider2)(void *ctx, pb_tftp_open2_fn fn, void *data);
} pb_tftp_service;

#endif /* PREBOOT_TFTP_H */
