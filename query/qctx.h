/*
 * qctx.h — private to query/: the per-connection state shared by the
 * virtual tables (vtab.c) and the SQL functions (funcs.c).
 */
#ifndef SLIM_QCTX_H
#define SLIM_QCTX_H

#include "query.h"

/* The facts of a dataset that never change once it exists. */
typedef struct qds {
    int64_t id, teacher;
    int kind;     /* SLIM_KIND_* */
    uint32_t V;   /* logit width */
    char *name;   /* owned by the cache slot */
} qds;

#define QDS_CACHE 16

/* One teacher's vocabulary, loaded whole on first use: piece(i) is
 * text + off[i], off[i+1] - off[i] - 1 bytes (NUL-terminated), or absent
 * when has[i] is 0. */
typedef struct qvocab {
    int64_t teacher;  /* -1 = nothing loaded */
    int present;      /* the teacher has an imported vocabulary */
    uint32_t n;       /* ids 0..n-1 */
    uint32_t *off;    /* [n + 1] */
    uint8_t *has;     /* [n] */
    char *text;
} qvocab;

/* Reusable decode buffers: dists[ndist] carved from ids/vals[cap]. */
typedef struct qbuf {
    slim_dist *dists;
    uint32_t ndist;
    uint32_t *ids;   /* [cap] */
    float *vals;     /* [cap] */
    size_t cap;
    uint32_t *tok;   /* [tokcap] token ids of one sequence */
    uint32_t tokcap;
    slim_pstat *ps;  /* [pscap] statistics of a run of positions */
    uint32_t pscap;
} qbuf;

struct slimq {
    sqlite3 *db;
    slim_store *st;
    unsigned flags;        /* SLIMQ_* */
    slim_reader *rd;       /* the read view, begun on first use */
    int ncursors;          /* open cursors (refresh only when none else) */
    qds ds[QDS_CACHE];
    int nds, ds_next;      /* cache fill, next slot to replace */
    qvocab voc;
    qbuf fb[2];            /* scratch of the SQL functions */
    qbuf spare;            /* a closed cursor's buffers, for the next one */
    int spare_ok;
    uint64_t decoded;      /* positions decoded (slimq_decode_count) */
};

/* The read view (begun lazily); an SQLite code, message on q->st. */
int qctx_reader(slimq *q, slim_reader **out);
/* Dataset facts by name: 0, SLIM_ENOTFOUND, or another SLIM_E* code. */
int qctx_dataset(slimq *q, const char *name, qds *out);
/* The piece of token `id` for the teacher, NULL when unknown.  *rc gets a
 * SLIM_E* code when loading the vocabulary failed.  Valid until the next
 * call for another teacher. */
const char *qctx_piece(slimq *q, int64_t teacher, uint32_t id, int *len,
                       int *rc);
/* Decode positions [pos, pos+n) into b->dists[0..n) (n <= b->ndist, or
 * grown), growing b's entry buffers on SLIM_ERANGE.  A SLIM_E* code. */
int qctx_read(slimq *q, qbuf *b, int64_t dataset, int64_t seq, uint32_t pos,
              uint32_t n, unsigned flags);
/* Statistics of positions [pos, pos+n) into b->ps[0..n) (grown as
 * needed), without decoding entries where the store keeps them. */
int qctx_pstats(slimq *q, qbuf *b, int64_t dataset, int64_t seq, uint32_t pos,
                uint32_t n);
/* Read a sequence's tokens into b->tok; *T gets their number. */
int qctx_tokens(slimq *q, qbuf *b, int64_t dataset, int64_t seq, uint32_t *T);
void qbuf_free(qbuf *b);

/* Register the SQL functions (funcs.c). */
int qfuncs_register(slimq *q);

#endif
