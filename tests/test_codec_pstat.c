/*
 * test_codec_pstat.c — slim_dist_pstat against a double-precision reference
 * (the formula of query/pstats.c's slimq_stats, written out here with libm's
 * exp/log so that the fast polynomial in store/pstat.c is checked against
 * something independent), on every kind of distribution the store holds.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/synth.h"
#include "lib/tap.h"
#include "slim.h"

/* The reference: slimq_stats' definition, in double, no shortcuts. */
static void ref_pstat(const slim_dist *d, int kind, double *entropy, double *tail)
{
    double lse = 0;
    int known = 1;
    if (kind != SLIM_KIND_SAMPLED) {
        lse = d->lse;
        if (isnan(d->lse)) {
            known = 0;
            double m = -INFINITY, s = 0;
            for (uint32_t j = 0; j < d->k; j++) m = d->vals[j] > m ? d->vals[j] : m;
            for (uint32_t j = 0; j < d->k; j++) s += exp(d->vals[j] - m);
            lse = m == -INFINITY ? m : m + log(s);
        }
    }
    double h = 0, sum = 0;
    for (uint32_t j = 0; j < d->k; j++) {
        double lp, p;
        if (kind == SLIM_KIND_SAMPLED) {
            p = (double)d->vals[j] / d->n_samples;
            lp = log(p);
        } else {
            lp = d->vals[j] - lse;
            p = exp(lp);
        }
        if (p > 0) {
            h -= p * lp;
            sum += p;
        }
    }
    double t = 1 - sum;
    if (t < 0 || !known) t = 0;
    if (t > 1) t = 1;
    if (t > 0) h -= t * log(t);
    *entropy = h;
    *tail = t;
}

static int close_to(double got, double want, double rel, double abs_)
{
    return fabs(got - want) <= rel * fabs(want) + abs_;
}

static int nbad;  /* mismatches in the current case */

static void check_one(const slim_dist *d, int kind, const char *what, uint32_t i)
{
    slim_pstat s;
    double h, t;
    slim_dist_pstat(d, kind, &s);
    ref_pstat(d, kind, &h, &t);
    /* float rounding of the reference is 6e-8 relative; 1e-6 leaves room
     * for the polynomial exp and summation order, not for a wrong formula.
     * The absolute 1e-12: a tail of 1e-15 is 1 - sum, noise in either. */
    int ok = close_to(s.entropy, h, 1e-6, 1e-12) && close_to(s.tail_mass, t, 1e-6, 1e-12);
    if (!ok && nbad++ < 3)
        CHECK(0, "%s position %u (k %u): entropy %.9g want %.9g, tail %.9g want %.9g", what, i,
              d->k, s.entropy, h, s.tail_mass, t);
}

/* Top-k of synthetic dense rows: lse known (tail > 0), lse 0 with
 * log-probs, or lse NaN (tail unknown). */
static void test_synth(void)
{
    const uint32_t V = 32000;
    synth g;
    float *row = malloc(sizeof(float) * V);
    uint32_t *ids = malloc(sizeof(uint32_t) * V);
    float *vals = malloc(sizeof(float) * V);
    static const uint32_t ks[] = {1, 2, 5, 64, 1600, 7000};
    synth_init(&g, V, 42);
    TAP_BEGIN("pstat of top-k synthetic rows matches the double reference");
    nbad = 0;
    for (int it = 0; it < 120; it++) {
        double lse;
        synth_row(&g, row, &lse);
        uint32_t k = ks[it % 6];
        /* a rough top-k: everything above a threshold found by bisection */
        float lo = -100, hi = 100;
        for (int b = 0; b < 40; b++) {
            float mid = (lo + hi) / 2;
            uint32_t c = 0;
            for (uint32_t j = 0; j < V; j++) c += row[j] >= mid;
            if (c >= k) lo = mid; else hi = mid;
        }
        slim_dist d = {0, 0, (float)lse, ids, vals};
        for (uint32_t j = 0; j < V && d.k < V; j++)
            if (row[j] >= lo) {
                ids[d.k] = j;
                vals[d.k++] = row[j];
            }
        check_one(&d, SLIM_KIND_LOGITS, "lse known", (uint32_t)it);
        for (uint32_t j = 0; j < d.k; j++) vals[j] = (float)(vals[j] - lse);
        d.lse = 0;
        check_one(&d, SLIM_KIND_LOGITS, "log-probs", (uint32_t)it);
        d.lse = NAN;
        check_one(&d, SLIM_KIND_LOGITS, "lse unknown", (uint32_t)it);
    }
    TAP_END();
    synth_free(&g);
    free(row);
    free(ids);
    free(vals);
}

/* The edges: empty, all -inf, a few -inf, peaked (tiny entropy, a tail by
 * cancellation), values summing above 1, far below lse, counts. */
static void test_edges(void)
{
    uint32_t ids[64];
    float vals[64];
    for (uint32_t j = 0; j < 64; j++) ids[j] = j;
    TAP_BEGIN("pstat edge cases match the double reference");
    nbad = 0;
    slim_dist d = {0, 0, 0, ids, vals};
    check_one(&d, SLIM_KIND_LOGITS, "empty", 0);
    d.lse = NAN;
    check_one(&d, SLIM_KIND_LOGITS, "empty, lse unknown", 0);
    d.k = 3;
    vals[0] = vals[1] = vals[2] = -INFINITY;
    check_one(&d, SLIM_KIND_LOGITS, "all -inf, lse unknown", 0);
    d.lse = 2;
    check_one(&d, SLIM_KIND_LOGITS, "all -inf", 0);
    vals[1] = 1.5f;
    check_one(&d, SLIM_KIND_LOGITS, "some -inf", 0);
    d.lse = NAN;
    check_one(&d, SLIM_KIND_LOGITS, "some -inf, lse unknown", 0);
    d.k = 2;  /* peaked: 0.999 and 1e-4 of the mass, tail ~9e-4 */
    vals[0] = logf(0.999f);
    vals[1] = logf(1e-4f);
    d.lse = 0;
    check_one(&d, SLIM_KIND_LOGITS, "peaked", 0);
    vals[0] = 0.0004f;  /* quantised a hair above 1 */
    check_one(&d, SLIM_KIND_LOGITS, "sum above 1", 0);
    vals[0] = -800;
    vals[1] = -1e-7f;
    check_one(&d, SLIM_KIND_LOGITS, "far below lse", 0);
    vals[0] = 3;  /* a value above lse: p > 1 */
    check_one(&d, SLIM_KIND_LOGITS, "value above lse", 0);
    uint64_t s = 7;
    for (int it = 0; it < 200; it++) {  /* counts out of N */
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        d.k = 1 + (uint32_t)(s >> 40) % 64;
        d.n_samples = 0;
        for (uint32_t j = 0; j < d.k; j++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            vals[j] = (float)(1 + (s >> 33) % (it % 2 ? 3 : 1000));
            d.n_samples += (uint32_t)vals[j];
        }
        if (it % 3 == 0) d.n_samples += 17;  /* not all draws kept: a tail */
        d.lse = 0;
        check_one(&d, SLIM_KIND_SAMPLED, "counts", (uint32_t)it);
    }
    TAP_END();
}

int main(void)
{
    test_synth();
    test_edges();
    return tap_done();
}
