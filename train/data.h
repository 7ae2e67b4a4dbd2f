/*
 * data.h — training data for slim-train: a source of sequences (the store
 * through a snapshot, or synthetic data in memory for tests and benchmarks),
 * cut into windows of ctx+1 tokens, visited in an order that is a pure
 * function of (snapshot hash, seed, epoch), and decoded into loss targets on
 * a prefetch thread.
 *
 * Windows: a sequence of n tokens gives windows starting at 0, ctx, 2 ctx,
 * ... while start + 1 < n; a window holds tokens [start, min(start+ctx+1, n))
 * — inputs are all but its last token, targets all but its first.  The
 * position at t carries the stored distribution of position start+t when
 * start+t < npos.  Short windows are padded (untrained positions).
 */
#ifndef SLIM_DATA_H
#define SLIM_DATA_H

#include "loss.h"
#include "slim.h"

#include <stddef.h>
#include <stdint.h>

/* A source of sequences.  begin() makes a per-thread read handle; the other
 * calls take it.  Return 0 or a negative SLIM_E* code; errmsg() explains. */
typedef struct slim_tsrc {
    void *ctx;
    size_t n;         /* sequences */
    uint32_t vocab;   /* V */
    int kind;         /* SLIM_KIND_LOGITS / SLIM_KIND_SAMPLED */
    int (*begin)(void *ctx, void **rd);
    void (*end)(void *rd);
    int (*info)(void *rd, size_t i, uint32_t *ntok, uint32_t *npos);
    int (*tokens)(void *rd, size_t i, uint32_t *buf, uint32_t cap, uint32_t *ntok);
    int (*dists)(void *rd, size_t i, uint32_t pos, uint32_t n, slim_dist *out, uint32_t *ids,
                 float *vals, size_t cap, size_t *need);
    const char *(*errmsg)(void *ctx, void *rd);
} slim_tsrc;

/* One micro-batch, ready for the loss. */
typedef struct slim_batch {
    int32_t *tokens;      /* (B, T) inputs; padding 0 */
    slim_target *tg;      /* (B, T) */
    uint32_t *ids;        /* entries of all positions */
    float *pt;            /* teacher probabilities of the entries */
    size_t cap;           /* capacity of ids / pt */
    uint64_t epoch, cursor; /* data cursor after this batch */
    int64_t trained;      /* positions with a gold token */
} slim_batch;

typedef struct slim_loader slim_loader;

/* Windows of the sequences; order from (hash, seed, epoch).  Fails (with a
 * message) when a sequence has fewer than 2 tokens or there is no window.
 * prefetch = 0 decodes on the caller's thread (eval). */
int slim_loader_new(slim_loader **out, const slim_tsrc *src, int B, int T,
                    const uint8_t hash[32], uint64_t seed, int shuffle, int prefetch,
                    char *err, size_t cap);
void slim_loader_free(slim_loader *l);
size_t slim_loader_windows(const slim_loader *l);
/* Start (or restart) at a cursor; the prefetch thread starts here. */
int slim_loader_seek(slim_loader *l, uint64_t epoch, uint64_t cursor);
/* The next micro-batch; valid until the next call.  NULL on a read error
 * (message in err).  Without shuffle, one pass ends with *end = 1 and a
 * batch may be partly padded. */
const slim_batch *slim_loader_next(slim_loader *l, int *end, char *err, size_t cap);
/* Seconds the caller waited for the prefetch thread so far. */
double slim_loader_wait_seconds(const slim_loader *l);

/* Synthetic data in memory: n sequences of ntok tokens from a random
 * Markov "teacher" over V tokens, each position storing its top-k entries
 * with a known lse (kind LOGITS) or k sampled counts (sampled = 1). */
int slim_memsrc_new(slim_tsrc *out, size_t n, uint32_t ntok, uint32_t V, uint32_t k,
                    int sampled, uint64_t seed);
void slim_memsrc_free(slim_tsrc *src);

#endif
