/*
 * test_store_util.h — helpers shared by the store's unit tests
 * (tests/test_store*.c): a small deterministic generator of sequences and
 * exact comparisons.  Header-only, static functions.
 */
#ifndef SLIM_TEST_STORE_UTIL_H
#define SLIM_TEST_STORE_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slim.h"

static inline uint64_t tsu_next(uint64_t *s)  /* splitmix64 */
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline uint32_t tsu_below(uint64_t *s, uint32_t n) { return (uint32_t)(tsu_next(s) % n); }
static inline double tsu_unif(uint64_t *s) { return (double)(tsu_next(s) >> 11) / 9007199254740992.0; }

/* One generated sequence: tokens[T], dists[npos] with their own storage. */
typedef struct tsu_seq {
    uint32_t T, npos;
    uint32_t *tokens;
    slim_dist *d;
    uint32_t *ids;
    float *vals;
} tsu_seq;

static inline void tsu_free(tsu_seq *q)
{
    free(q->tokens);
    free(q->d);
    free(q->ids);
    free(q->vals);
    memset(q, 0, sizeof *q);
}

/* Deterministic in (seed, V, T, kmax, sampled): logits in [-12, 8] with an
 * occasional -inf, lse above the max; or counts summing to n_samples. */
static inline int tsu_make(tsu_seq *q, uint64_t seed, uint32_t V, uint32_t T, uint32_t kmax, int sampled)
{
    uint64_t s = seed * 7919 + 17;
    memset(q, 0, sizeof *q);
    q->T = T;
    q->npos = T;
    q->tokens = malloc(sizeof(uint32_t) * (T + 1));
    q->d = calloc(T + 1, sizeof *q->d);
    q->ids = malloc(sizeof(uint32_t) * ((size_t)T * kmax + 1));
    q->vals = malloc(sizeof(float) * ((size_t)T * kmax + 1));
    if (!q->tokens || !q->d || !q->ids || !q->vals) return -1;
    for (uint32_t i = 0; i < T; i++) q->tokens[i] = tsu_below(&s, V);
    size_t off = 0;
    for (uint32_t i = 0; i < T; i++) {
        slim_dist *d = &q->d[i];
        uint32_t k = 1 + tsu_below(&s, kmax);
        if (k > V) k = V;
        d->ids = q->ids + off;
        d->vals = q->vals + off;
        d->k = 0;
        while (d->k < k) {  /* distinct ids, low ids more likely */
            uint32_t id = tsu_unif(&s) < 0.5 ? tsu_below(&s, V < 64 ? V : 64) : tsu_below(&s, V);
            int dup = 0;
            for (uint32_t j = 0; j < d->k; j++) dup |= d->ids[j] == id;
            if (dup) continue;
            d->ids[d->k++] = id;
        }
        float mx = -INFINITY;
        uint32_t tot = 0;
        for (uint32_t j = 0; j < k; j++) {
            if (sampled) {
                d->vals[j] = (float)(1 + tsu_below(&s, 5));
                tot += (uint32_t)d->vals[j];
            } else {
                d->vals[j] = (j > 0 && tsu_below(&s, 40) == 0) ? -INFINITY : (float)(tsu_unif(&s) * 20 - 12);
                if (d->vals[j] > mx) mx = d->vals[j];
            }
        }
        d->n_samples = sampled ? tot : 0;
        d->lse = sampled ? NAN : mx + (float)(tsu_unif(&s) * 3);
        off += k;
    }
    return 0;
}

/* Compare a read-back position with the input, id by id.  tol < 0: the
 * values must be bit-identical; else |(out - out.lse) - (in - in.lse)| <= tol
 * for finite values.  Returns NULL when equal, else a static message. */
static inline const char *tsu_same(const slim_dist *in, const slim_dist *out, double tol)
{
    static char msg[160];
    if (in->k != out->k) {
        snprintf(msg, sizeof msg, "k %u != %u", out->k, in->k);
        return msg;
    }
    if (in->n_samples != out->n_samples) return "n_samples differ";
    if (tol < 0 && memcmp(&in->lse, &out->lse, 4) && !(isnan(in->lse) && isnan(out->lse))) return "lse differs";
    for (uint32_t j = 0; j < in->k; j++) {
        uint32_t m = 0;
        while (m < out->k && out->ids[m] != in->ids[j]) m++;
        if (m == out->k) {
            snprintf(msg, sizeof msg, "id %u missing", in->ids[j]);
            return msg;
        }
        float a = in->vals[j], b = out->vals[m];
        if (tol < 0) {
            if (memcmp(&a, &b, 4)) {
                snprintf(msg, sizeof msg, "id %u: %.9g != %.9g", in->ids[j], (double)b, (double)a);
                return msg;
            }
        } else if (isinf(a) || isinf(b)) {
            if (!(isinf(a) && isinf(b))) return "infinity mismatch";
        } else if (fabs(((double)b - out->lse) - ((double)a - in->lse)) > tol) {
            snprintf(msg, sizeof msg, "id %u: logprob off by %g", in->ids[j],
                     fabs(((double)b - out->lse) - ((double)a - in->lse)));
            return msg;
        }
    }
    return NULL;
}

/* A version 1 chunk (docs/FORMAT.md's worked example as version 1 writers
 * made it: V = 10, logprob:0.01, lse 0; position 0 = {3: -0.494, 7: -1.995},
 * position 1 = {0: -0.095}): old stores hold such chunks. */
static const uint8_t tsu_chunk_v1[126] = {
    0x53, 0x43, 0x01, 0x01, 0x01, 0x0a, 0x00, 0x02, 0x03, 0x7b, 0x14, 0xae, 0x47, 0xe1, 0x7a, 0x84,
    0x3f, 0xdb, 0xf9, 0x7e, 0x6a, 0xbc, 0x74, 0x93, 0x3f, 0x01, 0x02, 0x01, 0x80, 0x08, 0x01, 0x80,
    0x20, 0x01, 0x02, 0x04, 0x80, 0x10, 0x00, 0x00, 0x80, 0x10, 0x04, 0x00, 0x00, 0x00, 0x80, 0x20,
    0x01, 0x02, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x20, 0x1d, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x80, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x10, 0x19, 0x00, 0x00, 0x00,
    0x00, 0x20, 0x00, 0x00, 0x00, 0x02, 0x08, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00,
    0x09, 0x08, 0x00, 0x00, 0x00, 0x00, 0xec, 0x40, 0x3a, 0xe4, 0x39, 0xb3, 0x71, 0x99};

#endif
