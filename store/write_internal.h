/*
 * write_internal.h — private: the writer handle shared by write.c,
 * write_seq.c and snapshot.c.
 */
#ifndef SLIM_WRITE_INTERNAL_H
#define SLIM_WRITE_INTERNAL_H

#include "store_internal.h"

/* Prepared statements of a writer, made once and reset. */
enum {
    W_TEACHER_GET, W_TEACHER_ADD, W_TEACHER_SETHASH, W_DS_GET, W_DS_ADD, W_DS_TEACHER,
    W_DS_FACTS, W_DS_BUMP, W_SEQ_ADD, W_SEQ_META, W_SEQ_TOKENS, W_PFX_ADD, W_PFX_FIND,
    W_TOK_FIND, W_SEQ_DEL, W_DS_UNCOUNT, W_SNAP_REF, W_PFX_REF, W_PURGE, W_GARBAGE,
    W_DS_UNBYTES, W_PFX_DEL, W_RUN_ADD, W_RUN_INPUT, W_RUN_END, W_VOCAB_DEL, W_VOCAB_ADD,
    W_NSTMT
};

struct slim_writer {
    slim_store *st;
    MDB_txn *txn;
    MDB_cursor *cur;
    slim_codec *codec;
    int in_sql;
    int failed;              /* a write failed after changing something */
    int have_garbage;        /* deletions freed records: collect after commit */
    uint64_t gen;            /* SQLite gen at begin; the commit writes gen+1 */
    uint8_t last[SLIM_KEY_LEN];  /* largest key in LMDB: MDB_APPEND above it */
    int have_last;
    uint64_t gets;
    sqlite3_stmt *stmts[W_NSTMT];
    /* reusable scratch: no allocation per record once warm */
    uint8_t *enc;
    size_t enccap;
    uint32_t *ids;
    float *vals;
    size_t cap;
    slim_dist *dbuf;
    size_t dcap;
    uint8_t *seen;           /* bitmap of V bits: distinct-id check */
    size_t seencap;
    uint32_t *tokbuf;
    size_t tokcap;
    char errbuf[256];
    /* slim_write_seq's own preparation (and re-encoding for a prefix in
     * slim_write_prepared); made on first use, freed with the writer */
    struct slim_preparer *pr;
    struct slim_prepared *own;
};

/* One encoded chunk of a prepared sequence: bytes buf[off, off+len). */
typedef struct slim__pchunk {
    uint32_t first_pos, npos;
    size_t off, len;
} slim__pchunk;

struct slim_preparer {
    slim_codec *codec;
    uint8_t *seen;           /* bitmap of V bits, all zero between calls */
    size_t seencap;
    uint32_t *ids;           /* decode-after-encode scratch */
    float *vals;
    size_t cap;
    slim_dist *dbuf;
    size_t dcap;
    int verify;              /* SLIM_VERIFY_ENCODE: decode-after-encode */
    double bpe;              /* most bytes per entry (+ per position) seen, 0 none */
};

struct slim_prepared {
    int rc;                  /* result of the last prepare */
    char err[256];
    int kind;
    slim_precision prec;
    uint32_t V, T, npos;
    uint32_t from;           /* first encoded position (0 = as an owner) */
    const uint32_t *tokens;  /* borrowed, [T] */
    const slim_dist *dists;  /* borrowed, [npos] */
    uint8_t *buf;            /* the chunks, back to back */
    size_t bufcap, buflen;
    slim__pchunk *chunks;
    size_t nchunks, chunkcap;
    int64_t entries, bytes;  /* of positions from..npos-1 */
    int hashed;              /* hash valid: from == 0 */
    uint8_t hash[16];
};

/* Prepare positions [from, npos) of a sequence (from > 0: a borrower's own
 * part; the hash is then left to the writer, which knows the prefix). */
int slim__prepare(slim_preparer *pr, slim_prepared *out, int kind, const slim_precision *prec,
                  uint32_t V, const uint32_t *tokens, uint32_t T, const slim_dist *dists,
                  uint32_t npos, uint32_t from);
/* Decode every chunk of p (checksums verified) and feed it to h; adds its
 * entries to *entries.  Message in err on failure. */
int slim__prepared_feed(slim_preparer *pr, const slim_prepared *p, slim_hasher *h,
                        int64_t *entries, char *err, size_t cap);

sqlite3_stmt *slim__stmt(slim_writer *w, int idx, const char *sql);
int slim__step_done(slim_writer *w, sqlite3_stmt *q, const char *what);

#endif
