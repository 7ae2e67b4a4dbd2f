/*
 * test_ingest_sparsify.c — the sparsifier's fast kernels (AVX-512, and
 * AVX2/FMA/BMI2: fused max/NaN scan with the sample, exponential sum fused
 * with the candidate collection, radix select, compaction) against each
 * other (bit for bit), against its portable kernels (slim_sparsify_level)
 * and against references: the qsort
 * top-k (same tie rule) and a long-double logsumexp, on realistic rows and
 * on hard ones — all-equal rows, a huge spread, -inf entries, few distinct
 * values (ties at the k-th), +/-0, a favourite far above the rest, rows
 * that mislead the sample, lengths that are not multiples of 8 or 256.
 * Every topk/topfrac result must be in ascending id order (the record
 * encoder skips its sort then).  On a CPU without AVX-512 (or AVX2) the
 * higher levels run the best kernels it has and the references still
 * check them.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include "lib/tap.h"
#include "lib/synth.h"
#include "lib/fixtures.h"
#include "../ingest/ingest.h"

#define VMAX 50021
#define NKINDS 12

static double lse_ref(const float *x, uint32_t V)
{
    long double m = -INFINITY, s = 0;
    for (uint32_t i = 0; i < V; i++) if (x[i] > m) m = x[i];
    for (uint32_t i = 0; i < V; i++) s += expl((long double)x[i] - m);
    return (double)(m + logl(s));
}

/* Row kind r of length V (r < NKINDS). */
static void make_row(synth *g, int r, float *x, uint32_t V)
{
    synth_row(g, x, NULL);  /* a row of VMAX; the first V used */
    switch (r) {
    case 1: for (uint32_t i = 0; i < V; i++) x[i] = 3.25f; break;            /* all equal */
    case 2: for (uint32_t i = 0; i < V; i += 3) x[i] = -INFINITY; break;     /* masked */
    case 3: for (uint32_t i = 0; i < V; i++) x[i] = (float)synth_below(g, 5) - 2.0f; break;
    case 4:  /* huge spread, up to the float range */
        for (uint32_t i = 0; i < V; i++)
            x[i] = (float)((synth_unif(g) * 2 - 1) * (i % 7 ? 1e4 : 3e38));
        break;
    case 5: x[V / 2] += 200.0f; break;                         /* one far favourite */
    case 6:  /* the sample (every 32nd) sees only high values: it misleads */
        for (uint32_t i = 0; i < V; i++) x[i] = (float)synth_unif(g);
        for (uint32_t i = 0; i < V; i += 16) x[i] = 50.0f + (float)(i % 7);
        break;
    case 7: for (uint32_t i = 0; i < V; i++) x[i] = (i % 2 ? 0.0f : -0.0f); break;   /* +/-0 */
    case 8:  /* all masked but a few */
        for (uint32_t i = 0; i < V; i++) x[i] = -INFINITY;
        for (uint32_t i = 5; i < V; i += 997) x[i] = (float)(i % 13);
        break;
    case 9: for (uint32_t i = 0; i < V; i++) x[i] *= 1e-30f; break;          /* tiny values */
    case 10: for (uint32_t i = 0; i < V; i++) x[i] = -1e6f - (float)(i % 1000) * 0.01f; break;
    case 11: for (uint32_t i = 0; i < V; i++) x[i] = 80.0f * (float)synth_unif(g); break;  /* flat, wide */
    default: break;                                            /* 0: realistic */
    }
}

static int ascending(const uint32_t *ids, uint32_t k)
{
    for (uint32_t j = 1; j < k; j++) if (ids[j] <= ids[j - 1]) return 0;
    return 1;
}

/* One row under one spec: every kernel level agrees — AVX-512 (level 2)
 * and AVX2 (level 1) bit for bit, lse included (stores must not depend on
 * the CPU), the portable one (0) exactly in ids, values and k — and with
 * the qsort reference; every lse within 1e-6 relative (of max(1, |lse|))
 * of the long-double one.  Returns a failure reason. */
static slim_dist c1;  /* level 1's result */
static const char *check_row(const slim_sparsifier *sp, slim_sparse_ws *ws, const float *x,
                             uint32_t V, slim_dist *a, slim_dist *b, uint32_t *ref, double *worst)
{
    uint32_t bad;
    slim_sparsify_level(-1);
    int ra = slim_sparsify_row(sp, ws, x, V, 7, a, &bad);
    slim_sparsify_level(1);
    int rc = slim_sparsify_row(sp, ws, x, V, 7, &c1, &bad);
    slim_sparsify_level(0);
    int rb = slim_sparsify_row(sp, ws, x, V, 7, b, &bad);
    slim_sparsify_level(-1);
    if (ra || rb || rc) return "refused";
    if (a->k != c1.k || memcmp(&a->lse, &c1.lse, 4) || memcmp(a->ids, c1.ids, a->k * 4)
        || memcmp(a->vals, c1.vals, a->k * 4))
        return "levels 2 and 1 differ";
    double want = lse_ref(x, V);
    double ea = fabs((double)a->lse - want) / fmax(1.0, fabs(want));
    double eb = fabs((double)b->lse - want) / fmax(1.0, fabs(want));
    *worst = fmax(*worst, fmax(ea, eb));
    if (!(ea <= 1e-6 && eb <= 1e-6)) return "lse off";
    if (sp->type == SLIM_SP_SAMPLE) return NULL;  /* draws: checked in test_ingest_parse */
    if (a->k != b->k) return "fast and portable k differ";
    if (memcmp(a->ids, b->ids, a->k * sizeof *a->ids)) return "fast and portable ids differ";
    if (memcmp(a->vals, b->vals, a->k * sizeof *a->vals)) return "fast and portable values differ";
    for (uint32_t j = 0; j < a->k; j++)
        if (memcmp(&a->vals[j], &x[a->ids[j]], 4)) return "value is not x[id]";
    if (sp->type == SLIM_SP_TOPP) return NULL;  /* top-p: checked in test_ingest_parse */
    uint32_t k = slim_sparsifier_cap(sp, V);
    if (a->k != k) return "wrong k";
    if (!ascending(a->ids, k)) return "ids not ascending";
    slim_select_topk_naive(x, V, k, ref);
    qsort(ref, k, sizeof *ref, fx_cmp_u32);
    return memcmp(a->ids, ref, k * sizeof *ref) ? "not the qsort reference's set" : NULL;
}

static void test_fast_vs_portable(void)
{
    TAP_BEGIN("sparsify_fast_portable_reference");
    const uint32_t Vs[] = { 32000, 4096, 4103, 50021, 300, 17 };
    const char *specs[] = { "topfrac:0.05", "topk:1", "topk:64", "topk:1600", "topk:8000",
                            "topk:31999", "topp:0.9,max:2000", "sample:64" };
    synth g;
    CHECK(synth_init(&g, VMAX, 11) == 0, "synth");
    float *x = malloc(VMAX * sizeof *x), *va = malloc(VMAX * 4), *vb = malloc(VMAX * 4);
    uint32_t *ia = malloc(VMAX * 4), *ib = malloc(VMAX * 4), *ref = malloc(VMAX * 4);
    slim_dist a = { .ids = ia, .vals = va }, b = { .ids = ib, .vals = vb };
    c1.ids = malloc(VMAX * 4);
    c1.vals = malloc(VMAX * 4);
    printf("# kernel level %d on this CPU\n", slim_sparsify_level(-1));
    slim_sparse_ws *ws = slim_sparse_ws_new(VMAX, VMAX);
    double worst = 0;
    int rows = 0;
    for (size_t v = 0; v < sizeof Vs / sizeof Vs[0]; v++)
        for (int r = 0; r < NKINDS; r++) {
            uint32_t V = Vs[v];
            make_row(&g, r, x, V);
            for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
                slim_sparsifier sp;
                char err[128];
                CHECK(slim_sparsifier_parse(specs[s], &sp, err, sizeof err) == 0, "parse");
                const char *why = check_row(&sp, ws, x, V, &a, &b, ref, &worst);
                CHECK(!why, "V %u row kind %d %s: %s", V, r, specs[s], why);
                rows++;
            }
        }
    /* many realistic rows at the production shape */
    slim_sparsifier sp;
    char err[128];
    slim_sparsifier_parse("topfrac:0.05", &sp, err, sizeof err);
    for (int r = 0; r < 400; r++) {
        make_row(&g, r % 5 ? 0 : r % NKINDS, x, 32000);
        const char *why = check_row(&sp, ws, x, 32000, &a, &b, ref, &worst);
        CHECK(!why, "realistic row %d: %s", r, why);
        rows++;
    }
    CHECK(worst <= 1e-6 && rows > 600, "worst lse error %g over %d rows", worst, rows);
    TAP_END();

    /* the refusals stay exact on both paths: first bad id reported */
    TAP_BEGIN("sparsify_fast_portable_refusals");
    for (int lv = 0; lv < 3; lv++) {  /* the level cap */
        uint32_t bad = 0;
        slim_sparsify_level(lv);
        make_row(&g, 0, x, 32000);
        x[20001] = INFINITY;
        x[30001] = NAN;
        CHECK(slim_sparsify_row(&sp, ws, x, 32000, 0, &a, &bad) == SLIM_EINVAL && bad == 20001,
              "level %d: +Inf at %u", lv, bad);
        x[20001] = 1.0f;
        x[31999] = -NAN;
        CHECK(slim_sparsify_row(&sp, ws, x, 32000, 0, &a, &bad) == SLIM_EINVAL && bad == 30001,
              "level %d: NaN at %u", lv, bad);
        for (uint32_t i = 0; i < 32000; i++) x[i] = -INFINITY;
        CHECK(slim_sparsify_row(&sp, ws, x, 32000, 0, &a, &bad) == SLIM_EINVAL, "all -inf");
    }
    slim_sparsify_level(-1);
    TAP_END();

    /* slim_logsumexp (the public helper) on both paths */
    TAP_BEGIN("logsumexp_fast_portable");
    for (int r = 0; r < NKINDS; r++) {
        make_row(&g, r, x, 4103);
        double want = lse_ref(x, 4103);
        for (int lv = 0; lv < 3; lv++) {  /* the level cap */
            slim_sparsify_level(lv);
            double got = slim_logsumexp(x, 4103);
            CHECK(fabs(got - want) / fmax(1.0, fabs(want)) <= 1e-6, "row kind %d level %d: %.9g "
                  "want %.9g", r, lv, got, want);
        }
    }
    slim_sparsify_level(-1);
    TAP_END();
    slim_sparse_ws_free(ws);
    synth_free(&g);
    free(x); free(va); free(vb); free(ia); free(ib); free(ref); free(c1.ids); free(c1.vals);
}

int main(void)
{
    test_fast_vs_portable();
    return tap_done();
}
