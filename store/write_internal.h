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
};

sqlite3_stmt *slim__stmt(slim_writer *w, int idx, const char *sql);
int slim__step_done(slim_writer *w, sqlite3_stmt *q, const char *what);

#endif
