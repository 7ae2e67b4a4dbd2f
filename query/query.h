/*
 * query.h — private interface of slim-query's SQL layer: the virtual tables
 * `positions` and `topk`, the SQL functions piece/detok/prob/kl, and the
 * per-position statistics they share (docs/QUERY.md defines every column).
 *
 * The same code serves the tool (query/slim-query.c registers it on the
 * store's own metadata connection) and the loadable extension
 * (query/ext_slim.c opens the store next to the database file).  Only
 * ext_slim.c includes <sqlite3ext.h>; this code calls libsqlite3 directly,
 * which is sound because the extension links libsqlite3.so and refuses to
 * load into a host whose SQLite is another copy (see ext_slim.c).
 */
#ifndef SLIM_QUERY_H
#define SLIM_QUERY_H

#include <sqlite3.h>

#include "slim.h"

typedef struct slimq slimq; /* one connection's state: store, read view,
                               caches of dataset facts and vocabularies */

/* Flags for slimq_register. */
#define SLIMQ_OWN_STORE 0x1 /* close the store when the connection closes */
#define SLIMQ_REFRESH 0x2   /* move the read view forward at each new scan
                               (long-lived shells); the tool keeps one view */

/*
 * Register the virtual tables and SQL functions on `db`, reading the store
 * `st` (which must outlive db unless SLIMQ_OWN_STORE hands it over; with
 * that flag the store is closed even when registration fails).  Also creates
 * the temp views described in docs/QUERY.md.  *out (may be NULL) gets the
 * state, which lives until db is closed.  Returns an SQLite code; on failure
 * *err (if not NULL) gets a message to release with sqlite3_free.
 */
int slimq_register(sqlite3 *db, slim_store *st, unsigned flags, slimq **out,
                   char **err);

/* End the read view (a later scan starts a new one).  Call it before closing
 * a store that db does not own, since db outlives nothing it reads. */
void slimq_release_reader(slimq *q);

/* Records read by the current read view (slim_read_record_count), or 0. */
uint64_t slimq_record_count(const slimq *q);

/* Positions whose entries this connection decoded (slim_read_positions
 * through the tables and functions) since it was registered: a scan that
 * needs only statistics (entropy, tail_mass) adds none. */
uint64_t slimq_decode_count(const slimq *q);

/* The address of the libsqlite3 function this code calls, so the extension
 * can check the host hands it the same SQLite (same instance, not a copy). */
void *slimq_linked_sqlite_fn(void);

/*
 * The statistics of one stored distribution that the columns expose.
 * Probabilities: LOGITS with a known lse: p_j = exp(v_j - lse); LOGITS with an
 * unknown lse (NaN): the stored entries renormalised (tail unknown);
 * SAMPLED: p_j = count_j / N.  tail and entropy are slim_dist_pstat's
 * (float-rounded: the same figures the store keeps per position and the
 * positions table scans without decoding).
 */
typedef struct slimq_pstats {
    double lse;      /* the normaliser: lse, logsumexp(stored) or 0 (SAMPLED) */
    int tail_known;  /* tail mass is meaningful (0 when lse was NaN) */
    double tail;     /* 1 - sum of stored p, clamped to [0, 1] */
    double entropy;  /* stored entries plus the tail as one bucket (nats) */
} slimq_pstats;

/* Fill *out for d (the normaliser first, then tail and entropy).  O(k). */
void slimq_stats(const slim_dist *d, int kind, slimq_pstats *out);
/* The normaliser alone (slimq_stats' lse; *tail_known as there): O(1)
 * unless lse is unknown. */
double slimq_norm(const slim_dist *d, int kind, int *tail_known);
/* The "logit" column: the stored value for LOGITS, log(count/N) for SAMPLED
 * (so that logit - lse is the log-probability with lse = 0 for SAMPLED). */
double slimq_logit(const slim_dist *d, int kind, uint32_t j);
/* Index of token `tok` among d's entries, or -1.  With d in rank order,
 * index + 1 is the token's rank. */
int slimq_find(const slim_dist *d, uint32_t tok);

/*
 * KL(a || b) in nats between two stored distributions over a vocabulary of
 * V ids: every id stored in either is its own bucket; an id missing from one
 * side gets that side's tail mass spread uniformly over the ids it did not
 * store; the ids stored by neither form one last bucket.  +Inf when b gives
 * zero mass to something a does not.  Both must be read with
 * SLIM_READ_ID_ORDER (entries by ascending id): the union is a merge.
 * docs/QUERY.md has the formula.
 */
double slimq_kl(const slim_dist *a, int kind_a, const slim_dist *b,
                int kind_b, uint32_t V);

#endif /* SLIM_QUERY_H */
