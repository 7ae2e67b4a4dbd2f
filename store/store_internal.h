/*
 * store_internal.h — private to libslim: the handles behind slim.h and the
 * helpers the store's .c files share.  Not installed, not for tools.
 */
#ifndef SLIM_STORE_INTERNAL_H
#define SLIM_STORE_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <sqlite3.h>
#include <xxhash.h>

#include "codec.h"
#include "slim.h"

/* LMDB record key: dataset u64, seq u64, first position u32, big-endian so
 * that byte order = numeric order (docs/FORMAT.md, "LMDB key format"). */
#define SLIM_KEY_LEN 20
/* LMDB layout version kept in the "meta" sub-database under "format". */
#define SLIM_LMDB_FORMAT 1

extern const char *const slim_schema_migrations[];
extern const int slim_schema_version;

struct slim_store {
    char *path;
    unsigned flags;
    int format_version;       /* PRAGMA user_version of meta.sqlite */
    MDB_env *env;
    MDB_dbi rec_dbi;          /* "records": the sparse chunks */
    MDB_dbi meta_dbi;         /* "meta": gen, format */
    sqlite3 *db;              /* main metadata connection (the writer's) */
    int lockfd;               /* the lock file, -1 when read-only */
    pthread_mutex_t mu;       /* guards err (readers may run in threads) */
    char err[1024];
    /* strings handed out by slim_dataset_get & co. */
    char *ds_name, *ds_teacher, *ds_sparsifier, *ds_tokhash;
    struct slim_writer *writer;
};

/* Set the handle's error message; returns rc. */
int slim__err(slim_store *st, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int slim__mdb_err(slim_store *st, int mrc, const char *what);
int slim__sql_err(slim_store *st, sqlite3 *db, const char *what);

void slim__key(uint8_t key[SLIM_KEY_LEN], int64_t dataset, int64_t seq, uint32_t pos);
void slim__key_parse(const uint8_t *key, int64_t *dataset, int64_t *seq, uint32_t *pos);
const char *slim__key_str(char *buf, size_t cap, const uint8_t *key, size_t len);

/* LMDB generation counter inside a txn (0 when absent). */
int slim__lmdb_gen(slim_store *st, MDB_txn *txn, uint64_t *gen);
int slim__sql_gen(slim_store *st, sqlite3 *db, uint64_t *gen);

/* Tokens blob (docs/FORMAT.md "Tokens blob"): encode into a malloc'd buffer,
 * decode into buf[cap]. */
int slim__tokens_encode(const uint32_t *tokens, uint32_t T, uint8_t **out, size_t *len);
int slim__tokens_decode(const void *blob, size_t len, uint32_t *buf, uint32_t cap,
                        uint32_t *T);
int64_t slim__tokens_hash(const uint32_t *tokens, uint32_t n);

/* Streaming content hash (docs/FORMAT.md "Content hash").  Positions must
 * come with their entries in ascending id order. */
typedef struct slim_hasher { XXH3_state_t *x; } slim_hasher;
int slim__hash_begin(slim_hasher *h, const uint32_t *tokens, uint32_t T, uint32_t npos);
void slim__hash_pos(slim_hasher *h, const slim_dist *d);
void slim__hash_end(slim_hasher *h, uint8_t out[16]);

/* Per-sequence facts the read path needs. */
typedef struct slim_seqmeta {
    int64_t dataset, seq;
    uint32_t ntokens, npos, prefix_len;
    int64_t prefix_dataset, prefix_seq;
    int deleted, purged;
    int64_t entries, record_bytes, ingest_run;
    uint8_t hash[16];
} slim_seqmeta;

/* Reads positions [pos, pos+n) owned by (dataset, seq) itself — no prefix
 * logic — through `cur`.  Counts cursor operations in *gets.  Writes the
 * failing key into errbuf on SLIM_ECORRUPT / SLIM_ENOTFOUND. */
typedef struct slim_rangeio {
    MDB_cursor *cur;
    slim_codec *codec;
    uint64_t *gets;
    char *errbuf;
    size_t errcap;
    /* A reader's last checksum-verified value (NULL: verify every value).
     * Inside one read transaction an LMDB value never changes, so a value
     * at the same address was verified already; point reads walking the
     * positions of a chunk one by one then hash it once, not per call. */
    const void **verified;
} slim_rangeio;
int slim__read_owned(slim_rangeio *io, int64_t dataset, int64_t seq, uint32_t pos,
                     uint32_t n, slim_dist *out, uint32_t *ids, float *vals,
                     size_t cap, size_t *need, unsigned flags);

/* slim_dist_pstat of positions [pos, pos+n) owned by (dataset, seq) into
 * out[0..n): from each chunk's statistics block (version 2), or by decoding
 * a version 1 chunk (slim_chunk_pstats). */
int slim__pstats_owned(slim_rangeio *io, int64_t dataset, int64_t seq, uint32_t pos,
                       uint32_t n, slim_pstat *out);

/* Feed positions [pos, pos+n) owned by (dataset, seq) into a hasher,
 * chunk by chunk, growing the ids / vals scratch (capacity *cap) as needed.  Adds the
 * entries seen to *entries when not NULL.  Also checks each version 2
 * chunk's statistics block against the decoded values (SLIM_ECORRUPT,
 * "statistics block disagrees ..."). */
int slim__hash_owned(slim_rangeio *io, slim_hasher *h, int64_t dataset, int64_t seq,
                     uint32_t pos, uint32_t n, uint32_t **ids, float **vals,
                     size_t *cap, slim_dist **dbuf, size_t *dcap, int64_t *entries);

/* The parts of a reader's consistent view, for verify. */
void slim__reader_parts(slim_reader *r, slim_rangeio *io, sqlite3 **db, MDB_txn **txn);
int slim__snapshot_load(slim_store *st, sqlite3 *db, const char *name, slim_snapshot **out);

/* Grow helpers (realloc, keep contents). */
int slim__grow(void **p, size_t *cap, size_t need, size_t elem);

/* Kind / source names as stored in SQL. */
const char *slim__kind_name(int kind);
int slim__kind_parse(const char *s);

/* Writer-side recovery (write.c), also used by verify to describe state. */
int slim__recover(slim_store *st);

/* Current UTC time as "YYYY-MM-DDTHH:MM:SSZ". */
void slim__now(char buf[32]);

#endif
