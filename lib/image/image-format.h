/* image-format.h - the preboot image format (preboot-image(5)): manifests, chunk references,
 * the .pbi archive framing, partclone's domain maps and STORE:NAME references. Everything
 * declared here is a pure function over bytes (no files, no sockets, no globals), so the
 * imaging plugin, the multicast receiver and the fuzz targets use it exactly as preboot-img
 * does. Chunk hashing and coding live here too (they only touch memory). */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

/* The newest manifest version this code reads and writes. Writers write version 1 unless a
 * manifest names a delta-coded chunk (version 2), so version-1 readers still read them. */
#define PB_IMAGE_FORMAT_VERSION 2
#define PB_HASH_LEN             32 /* SHA-256 */
#define PB_HASH_HEX_LEN         64
/* Bounds every reader enforces, so a hostile manifest cannot ask for absurd work. */
#define PB_CHUNK_SIZE_MIN     (64u * 1024u)
#define PB_CHUNK_SIZE_MAX     (64u * 1024u * 1024u)
#define PB_CHUNK_SIZE_DEFAULT (4u * 1024u * 1024u)
#define PB_DISK_SIZE_MAX      (G_GUINT64_CONSTANT(1) << 60)
#define PB_PARTITIONS_MAX     256
#define PB_NAME_MAX           128

#define PB_IMAGE_ERROR (pb_image_error_quark())
GQuark pb_image_error_quark(void);
typedef enum {
    PB_IMAGE_ERROR_PARSE,    /* malformed manifest, archive or map */
    PB_IMAGE_ERROR_SEAL,     /* manifest digest does not match */
    PB_IMAGE_ERROR_CORRUPT,  /* a chunk's bytes do not match its hash or length */
    PB_IMAGE_ERROR_MISSING,  /* a chunk or image is not in the store */
    PB_IMAGE_ERROR_TOO_SMALL /* restore target smaller than the image */
    ,
    PB_IMAGE_ERROR_IO,
    PB_IMAGE_ERROR_INVALID, /* bad argument */
} PbImageError;

typedef enum {
    PB_CHUNK_ABSENT = 0, /* not captured (a partition left out with --partitions) */
    PB_CHUNK_ZERO,       /* every byte was zero */
    PB_CHUNK_UNUSED,     /* no byte in use by the filesystem; not stored */
    PB_CHUNK_DATA,       /* stored, named by its hash */
} PbChunkKind;

typedef enum {
    PB_CODEC_NONE = 0,
    PB_CODEC_ZSTD = 1,
    /* The changed byte runs against a base chunk of the same length (preboot-image(5),
     * "Delta chunks"); the base is never itself a delta. Only written with version 2. */
    PB_CODEC_DELTA = 2,
} PbCodec;

typedef struct {
    guint8 kind;  /* PbChunkKind */
    guint8 codec; /* PbCodec, DATA only */
    guint8 hash[PB_HASH_LEN];
    guint64 stored;           /* bytes in the store (after coding), DATA only */
    guint8 base[PB_HASH_LEN]; /* codec DELTA: the chunk its runs apply to */
} PbChunkRef;

typedef struct {
    int partno;    /* 1-based, as fdisk numbers them */
    guint64 start; /* bytes */
    guint64 size;  /* bytes */
    char *type;    /* GPT type GUID or MBR type code ("83") */
    char *uuid;    /* GPT partition GUID, or NULL */
    char *name;    /* GPT name, or NULL */
    char *attrs;   /* libfdisk's attribute string, or NULL */
    char *fs;      /* filesystem (libblkid TYPE), or NULL */
} PbPartition;

typedef struct {
    guint64 offset; /* bytes from the start of the disk */
    guint64 length;
    int partno;        /* 0: partition-table area or gap between partitions */
    guint first_chunk; /* index into PbManifest.chunks */
    guint n_chunks;    /* ceil(length / chunk_size) */
} PbRegion;

typedef struct {
    guint version;
    guint32 chunk_size;
    guint32 sector_size;
    guint64 disk_size;
    char *label;              /* "gpt", "dos" or "none" */
    char *disk_id;            /* or NULL */
    GArray *partitions;       /* PbPartition */
    GArray *regions;          /* PbRegion, tiling [0, disk_size) in order */
    GArray *chunks;           /* PbChunkRef */
    guint8 seal[PB_HASH_LEN]; /* SHA-256 of the text before the seal line */
} PbManifest;

PbManifest *pb_manifest_new(void);
void pb_manifest_free(PbManifest *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbManifest, pb_manifest_free)

/* Parses and checks a manifest (grammar, bounds, tiling, seal). Pure. */
PbManifest *pb_manifest_parse(const char *text, gsize len, GError **error);
/* Writes the canonical text, seal line included, and stores the seal in m->seal. */
GString *pb_manifest_build(PbManifest *m);
/* Appends a region and its n chunks (all ABSENT) and returns the region's index. */
guint pb_manifest_add_region(PbManifest *m, guint64 offset, guint64 length, int partno);
const PbPartition *pb_manifest_partition(const PbManifest *m, int partno);
const PbRegion *pb_manifest_region_for(const PbManifest *m, int partno);
/* Byte length of chunk i of region r (the last one may be short). */
guint64 pb_region_chunk_len(const PbManifest *m, const PbRegion *r, guint i);

/* Totals over the manifest: bytes in DATA chunks (uncompressed and stored), counts. */
typedef struct {
    guint64 data_bytes, stored_bytes, zero_bytes, unused_bytes, absent_bytes;
    guint n_data, n_zero, n_unused, n_absent, n_unique;
    guint64 unique_stored_bytes;
} PbManifestStats;
void pb_manifest_stats(const PbManifest *m, PbManifestStats *st);
/* The distinct DATA chunk hashes of m, PB_HASH_LEN bytes each: in the order the manifest
 * first names them, or in memcmp order when sorted (for bsearch and the backends' commits). */
GByteArray *pb_manifest_data_hashes(const PbManifest *m, gboolean sorted);

/* Chunks: SHA-256 (libcrypto), zero test, coding. */
void pb_sha256(const void *data, gsize len, guint8 out[PB_HASH_LEN]);
void pb_hash_to_hex(const guint8 hash[PB_HASH_LEN], char out[PB_HASH_HEX_LEN + 1]);
gboolean pb_hash_from_hex(const char *hex, gsize len, guint8 out[PB_HASH_LEN]);
gboolean pb_is_zero(const void *data, gsize len);
const char *pb_codec_name(PbCodec c);
gboolean pb_codec_parse(const char *s, PbCodec *out);
/* Codes len bytes; falls back to PB_CODEC_NONE (in *used) when zstd does not shrink them. */
GBytes *pb_chunk_encode(PbCodec codec, int level, const void *data, gsize len, PbCodec *used);
/* Decodes stored bytes into out (exactly len bytes) and checks them against hash:
 * the one gate every chunk passes before it is written anywhere. */
gboolean pb_chunk_decode_verify(PbCodec codec, const void *stored, gsize stored_len,
                                const guint8 hash[PB_HASH_LEN], void *out, gsize len,
                                GError **error);

/* Delta chunks: "PBD1", the base chunk's SHA-256, then one zstd frame holding a u32 run
 * count, count pairs (u32 offset, u32 length) in ascending, non-overlapping order, and
 * the runs' bytes (all little-endian). Pure. */
#define PB_DELTA_MAGIC      "PBD1"
#define PB_DELTA_HEADER_LEN 36
#define PB_DELTA_BLOCK      4096 /* the encoder compares in filesystem-block units */
/* The runs of data that differ from base (both len bytes), coded; NULL when more than
 * max_changed bytes differ (then a full chunk is smaller). */
GBytes *pb_delta_encode(const guint8 base_hash[PB_HASH_LEN], const void *base, const void *data,
                        gsize len, int level, gsize max_changed);
/* The base a delta chunk's stored bytes name. */
gboolean pb_delta_base(const void *stored, gsize stored_len, guint8 base_hash[PB_HASH_LEN],
                       GError **error);
/* Applies a delta chunk onto buf, which holds its base's len bytes, and checks the result
 * against hash: the delta chunk's counterpart of pb_chunk_decode_verify. */
gboolean pb_delta_apply_verify(const void *stored, gsize stored_len, const guint8 hash[PB_HASH_LEN],
                               guint8 *buf, gsize len, GError **error);

/* .pbi archive framing (little-endian). See preboot-image(5). */
#define PB_ARCHIVE_MAGIC            "PBIARC01"
#define PB_ARCHIVE_HEADER_LEN       32
#define PB_ARCHIVE_RECORD_MAGIC     "PBCK"
#define PB_ARCHIVE_RECORD_LEN       48
#define PB_ARCHIVE_INDEX_MAGIC      "PBIX"
#define PB_ARCHIVE_INDEX_HEADER_LEN 16
#define PB_ARCHIVE_INDEX_ENTRY_LEN  56
#define PB_ARCHIVE_TRAILER_MAGIC    "PBIEND01"
#define PB_ARCHIVE_TRAILER_LEN      24
#define PB_ARCHIVE_MANIFEST_MAX     (256u * 1024u * 1024u)

typedef struct {
    guint32 version;
    guint64 manifest_len;
} PbArchiveHeader;
typedef struct {
    guint8 codec;
    guint8 hash[PB_HASH_LEN];
    guint64 stored;
} PbArchiveRecord;
typedef struct {
    guint8 hash[PB_HASH_LEN];
    guint8 codec;
    guint64 offset, stored;
} PbArchiveIndexEntry;
typedef struct {
    guint64 index_offset, count;
} PbArchiveTrailer;

gboolean pb_archive_parse_header(const guint8 *b, gsize len, PbArchiveHeader *h, GError **error);
void pb_archive_build_header(const PbArchiveHeader *h, guint8 out[PB_ARCHIVE_HEADER_LEN]);
/* Returns FALSE without error when b starts the index instead of a record (*is_index). */
gboolean pb_archive_parse_record(const guint8 *b, gsize len, PbArchiveRecord *r, gboolean *is_index,
                                 GError **error);
void pb_archive_build_record(const PbArchiveRecord *r, guint8 out[PB_ARCHIVE_RECORD_LEN]);
gboolean pb_archive_parse_index_header(const guint8 *b, gsize len, guint64 *count, GError **error);
gboolean pb_archive_parse_index_entry(const guint8 *b, gsize len, PbArchiveIndexEntry *e,
                                      GError **error);
void pb_archive_build_index_entry(const PbArchiveIndexEntry *e,
                                  guint8 out[PB_ARCHIVE_INDEX_ENTRY_LEN]);
gboolean pb_archive_parse_trailer(const guint8 *b, gsize len, PbArchiveTrailer *t, GError **error);
void pb_archive_build_trailer(const PbArchiveTrailer *t, guint8 out[PB_ARCHIVE_TRAILER_LEN]);
/* Walks a whole archive held in memory: header, manifest, records, index, trailer, checking
 * every offset and that the index matches the records. Pure; used by the fuzz target and
 * the tests (the streaming importer uses the functions above). */
gboolean pb_archive_check(const guint8 *b, gsize len, PbManifest **manifest, GError **error);

/* partclone's ddrescue domain map: the byte ranges in use ('+'). Ranges are merged,
 * sorted pairs (offset, length) in a GArray of guint64. */
GArray *pb_domain_parse(const char *text, gsize len, GError **error);
/* TRUE when [off, off+len) overlaps a used range. */
gboolean pb_domain_used(const GArray *ranges, guint64 off, guint64 len);

/* STORE:NAME references. A local store is "dir:PATH", or any PATH containing '/' (or
 * "." / ".."); a server is "http://HOST[:PORT]", "https://..." or a bare "HOST" (no '/').
 * The name follows the last ':' when one is expected. */
typedef enum { PB_REF_DIR, PB_REF_SERVER } PbRefKind;
typedef struct {
    PbRefKind kind;
    char *location; /* directory path, or server URL/host */
    char *name;     /* image name, or NULL */
} PbRef;
gboolean pb_ref_parse(const char *arg, gboolean want_name, PbRef *ref, GError **error);
void pb_ref_clear(PbRef *ref);
/* Image names: [A-Za-z0-9._-], not starting with '.', at most PB_NAME_MAX bytes. */
gboolean pb_name_valid(const char *name);

G_END_DECLS
