/*
 * synth.h — a deterministic generator of realistic teacher logits, for tests
 * and benchmarks (not part of libslim).
 *
 * The model (what an LLM's next-token logits look like, to the extent that
 * matters for storing them):
 *
 *   - Token ids are ordered by frequency, as in a BPE vocabulary: the prior
 *     logit of id j is  -s * ln(j + 1)  with s = 1.1 (a Zipf law), so low ids
 *     are far more often in the top set than high ids.
 *   - Per position, a sparse random set of 4..64 "context" tokens is boosted
 *     by U(2, 12) nats (half of them drawn log-uniformly over the id range,
 *     i.e. topic words of every frequency, half uniformly); with probability
 *     1/3 one more token (log-uniform id) gets +12 nats, a strong favourite
 *     (peaked positions).
 *   - Every token gets an approximately normal noise of sd 1.0 (the sum of
 *     four uniforms), so top sets differ from position to position.
 *   - A per-position inverse temperature  b = exp(U(-0.7, 1.0))  scales the
 *     centred logits, so the entropy ranges from nearly deterministic to
 *     flat; finally a per-position offset U(0, 20) is added (raw logits are
 *     not normalised, and stored lse values must not all be alike).
 *
 * Everything is a function of (V, seed) and the order of calls: xoshiro256**
 * seeded by splitmix64, no rand(), no floating point that depends on the
 * platform beyond libm's log/exp.
 */
#ifndef SLIM_SYNTH_H
#define SLIM_SYNTH_H

#include <stddef.h>
#include <stdint.h>

typedef struct synth {
    uint64_t s[4];     /* xoshiro256** state */
    uint32_t V;        /* vocabulary size */
    float *prior;      /* [V] Zipf prior logits, owned */
} synth;

/* Set up a generator for vocabulary size V (>= 2) from a seed.
 * Returns 0, or -1 when out of memory. */
int synth_init(synth *g, uint32_t V, uint64_t seed);
void synth_free(synth *g);   /* accepts a zeroed or freed generator */

/* Random numbers from the generator's stream. */
uint64_t synth_u64(synth *g);
double synth_unif(synth *g);               /* [0, 1) */
uint32_t synth_below(synth *g, uint32_t n); /* [0, n), n >= 1 */

/* One position: dense logits row[V] (float32), and *lse (may be NULL) =
 * logsumexp(row) computed in double. */
void synth_row(synth *g, float *row, double *lse);

/* The k-th largest of x[0..n) (1 <= k <= n) by a plain Hoare quickselect,
 * x scrambled: the benchmarks' textbook baseline (and the machine
 * reference of ../shared/DESIGN.md, "quickselect ~4k rows/s"). */
float synth_kth_largest(float *x, size_t n, size_t k);

#endif
