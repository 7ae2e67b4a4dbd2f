/*
 * test_ingest_select.c — the fast selection paths of the sparsifier against
 * the qsort reference: the sampled-threshold path (every 16th logit places a
 * threshold; a branch-free pass collects the candidates), its fallback when
 * the sample lies (fewer than k logits reach the threshold), row lengths
 * that are not multiples of 8 or 16, -inf logits, and the lse that
 * slim_sparsify_row now computes from a fused max/finite scan.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "lib/tap.h"
#include "lib/synth.h"
#include "lib/fixtures.h"
#include "../ingest/ingest.h"


/* slim_select_topk(x, k) selects the same set as the qsort reference. */
static const char *same_as_naive(slim_sparse_ws *ws, const float *x, uint32_t V, uint32_t k,
                                 uint32_t *a, uint32_t *b)
{
    uint32_t na = slim_select_topk(ws, x, V, k, a), nb = slim_select_topk_naive(x, V, k, b);
    if (na != k || nb != k) return "wrong count";
    qsort(a, na, 4, fx_cmp_u32);
    qsort(b, nb, 4, fx_cmp_u32);
    for (uint32_t i = 1; i < na; i++) if (a[i] == a[i - 1]) return "an id selected twice";
    return memcmp(a, b, (size_t)k * 4) ? "sets differ" : NULL;
}

static void test_sampled_path(void)
{
    TAP_BEGIN("select_sampled_matches_naive");
    const uint32_t Vs[] = { 32000, 4096, 4103, 50021 };
    synth g;
    CHECK(synth_init(&g, 50021, 9) == 0, "synth");
    float *x = malloc(50021 * sizeof *x);
    uint32_t *a = malloc(50021 * 4), *b = malloc(50021 * 4);
    for (size_t v = 0; v < sizeof Vs / sizeof Vs[0]; v++) {
        uint32_t V = Vs[v], ks[] = { 64, 100, slim_topfrac_k(0.05, V), V / 4 };
        slim_sparse_ws *ws = slim_sparse_ws_new(V, V);
        for (int r = 0; r < 6; r++) {
            synth_row(&g, x, NULL);  /* a row of 50021; the first V used */
            if (r == 2)  /* masked tokens, also where the sample looks */
                for (uint32_t i = 0; i < V; i += 5) x[i] = -INFINITY;
            if (r == 3)  /* coarse values: many ties at every threshold */
                for (uint32_t i = 0; i < V; i++) x[i] = (float)synth_below(&g, 7);
            for (size_t j = 0; j < sizeof ks / sizeof ks[0]; j++) {
                const char *why = same_as_naive(ws, x, V, ks[j], a, b);
                CHECK(!why, "V %u row %d k %u: %s", V, r, ks[j], why);
            }
        }
        slim_sparse_ws_free(ws);
    }
    TAP_END();

    /* every 16th logit high, too few of them for k: the threshold from the
     * sample admits fewer than k candidates and the bins path must take over */
    TAP_BEGIN("select_sampled_fallback");
    const uint32_t V = 32000;
    slim_sparse_ws *ws = slim_sparse_ws_new(V, V);
    for (uint32_t i = 0; i < V; i++) x[i] = (float)synth_unif(&g) * 5.0f;
    for (uint32_t i = 0; i < V; i += 16) x[i] = 10.0f + (float)(i % 7);
    const char *why = same_as_naive(ws, x, V, 3000, a, b);
    CHECK(!why, "k 3000: %s", why);
    why = same_as_naive(ws, x, V, 1600, a, b);  /* the top sample level alone is < 1600 */
    CHECK(!why, "k 1600: %s", why);
    TAP_END();

    TAP_BEGIN("sparsify_row_lse_and_values");
    slim_sparsifier sp;
    char err[100];
    CHECK(slim_sparsifier_parse("topfrac:0.05", &sp, err, sizeof err) == 0, "parse");
    uint32_t cap = slim_sparsifier_cap(&sp, V), bad = 0;
    float *vals = malloc(V * sizeof *vals);
    slim_dist d = { .ids = a, .vals = vals };
    double worst = 0;
    for (int r = 0; r < 20; r++) {
        synth_row(&g, x, NULL);
        if (r == 4) x[V - 1] = -INFINITY;
        double want = fx_lse_ref(x, V);
        CHECK(slim_sparsify_row(&sp, ws, x, V, (uint64_t)r, &d, &bad) == 0, "row %d refused", r);
        double rel = fabs((double)d.lse - want) / fmax(1.0, fabs(want));
        if (rel > worst) worst = rel;
        CHECK(d.k == cap, "row %d: k %u", r, d.k);
        for (uint32_t j = 0; j < d.k; j++)
            CHECK(d.vals[j] == x[d.ids[j]], "row %d: value of id %u", r, d.ids[j]);
    }
    CHECK(worst < 1e-5, "lse relative error %g", worst);
    x[12345] = NAN;
    CHECK(slim_sparsify_row(&sp, ws, x, V, 0, &d, &bad) == SLIM_EINVAL && bad == 12345, "NaN at %u", bad);
    TAP_END();
    free(vals);
    slim_sparse_ws_free(ws);
    synth_free(&g);
    free(x);
    free(a);
    free(b);
}

int main(void)
{
    test_sampled_path();
    return tap_done();
}
