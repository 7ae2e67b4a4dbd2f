/*
 * test_codec_simd.c — the encoder's AVX-512 paths (store/codec_simd.c, the
 * tokeniser of logprob positions, and slim_dist_pstat's sums in
 * store/pstat.c) against the scalar code: every chunk byte for byte, the
 * reconstruction and the statistics bit for bit, on realistic top-k rows
 * and on awkward positions that must fall back to the scalar path
 * (escapes, values above lse, unsorted ids, -inf, every k from 0 to 70,
 * ids next to V) mixed inside one chunk; and errors the same either way.
 * On a CPU without AVX-512 both sides are the scalar code: the cases say
 * so and pass.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "lib/synth.h"
#include "lib/tap.h"
#include "slim.h"

#define NPOS 200
#define KMAX 2600
static slim_dist in[NPOS];
static uint32_t in_ids[NPOS * KMAX];
static float in_vals[NPOS * KMAX];
static uint8_t ca[NPOS * KMAX * 12 + 65536], cb[NPOS * KMAX * 12 + 65536];

static synth rg;  /* random numbers (its own stream; the rows use others) */
static uint32_t below(uint32_t n) { return synth_below(&rg, n); }
static double unif(void) { return synth_unif(&rg); }

static int cmp_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* Top-k of a synthetic row in id order, as the sparsifier hands it over. */
static void topk_row(synth *g, uint32_t V, uint32_t k, float *row, float *tmp, slim_dist *d)
{
    double lse;
    synth_row(g, row, &lse);
    memcpy(tmp, row, V * sizeof *tmp);
    qsort(tmp, V, sizeof *tmp, cmp_desc);
    float thr = tmp[k - 1];
    uint32_t n = 0, above = 0;
    for (uint32_t j = 0; j < V; j++) above += row[j] > thr;
    for (uint32_t j = 0, ties = k - above; j < V && n < k; j++)
        if (row[j] > thr || (row[j] == thr && ties && ties--)) {
            d->ids[n] = j;
            d->vals[n++] = row[j];
        }
    d->k = n;
    d->lse = (float)lse;
    d->n_samples = 0;
}

/* An awkward logits position: k entries (any k up to 70, or a few hundred),
 * mostly sorted; now and then one value the fast path must refuse. */
static void odd_pos(slim_dist *d, uint32_t V)
{
    uint32_t k = below(5) ? below(71) : 100 + below(600);
    if (k > V) k = V;
    d->k = k;
    /* sorted distinct ids, sometimes up to V - 1 */
    uint32_t id = below(3) ? below(V - k + 1) : V - k;
    for (uint32_t j = 0; j < k; j++) {
        d->ids[j] = id;
        uint32_t room = V - id - (k - j);  /* ids left to skip */
        id += 1 + (room && below(2) ? below(room < 40 ? room + 1 : 40) : 0);
    }
    float lse = (float)(unif() * 60 - 30);
    for (uint32_t j = 0; j < k; j++) {
        uint32_t r = below(4000);
        d->vals[j] = r == 0 ? -INFINITY
                   : r == 1 ? lse + (float)unif() * 3          /* above lse: qbase < 0 */
                   : r == 2 ? (float)(unif() * 2e30 - 1e30)    /* raw escape */
                   : lse - (float)(unif() * unif() * 40);
    }
    if (k > 1 && below(30) == 0) {  /* unsorted, or a duplicate */
        uint32_t a = below(k), b = below(k);
        if (below(2)) { uint32_t t = d->ids[a]; d->ids[a] = d->ids[b]; d->ids[b] = t; }
        else d->ids[a] = d->ids[b];
    }
    uint32_t l = below(10);
    d->lse = l == 0 ? NAN : l == 1 ? 0 : lse;
    d->n_samples = 0;
}

static int same_dist(const slim_dist *a, const slim_dist *b)
{
    return a->k == b->k && !memcmp(&a->lse, &b->lse, 4) && !memcmp(a->ids, b->ids, a->k * 4)
           && !memcmp(a->vals, b->vals, a->k * 4);
}

/* Encode in[0..n) with the SIMD tokeniser on (a) and off (b): same result,
 * same bytes, same reconstruction.  Returns the positions SIMD took. */
static uint32_t compare(slim_codec *a, slim_codec *b, const slim_chunk_params *pp0, uint32_t n,
                        const char *what, uint32_t *errors)
{
    slim_chunk_params pp = *pp0;
    uint32_t simd = 0;
    int single = 0;  /* after an error: one position at a time up to the bad one */
    for (uint32_t pos = 0; pos < n;) {
        size_t la = 0, lb = 0;
        uint32_t ua = 0, ub = 0, want = single ? 1 : n - pos;
        int ra = slim_chunk_encode(a, &pp, in + pos, want, ca, sizeof ca, &la, &ua);
        int rb = slim_chunk_encode(b, &pp, in + pos, want, cb, sizeof cb, &lb, &ub);
        CHECK(ra == rb, "%s: position %u: rc %d with SIMD, %d without", what, pos, ra, rb);
        if (ra || rb) {
            CHECK(!strcmp(slim_codec_errmsg(a), slim_codec_errmsg(b)), "%s: messages '%s' / '%s'", what,
                  slim_codec_errmsg(a), slim_codec_errmsg(b));
            if (single) {  /* this one is bad: go on after it */
                if (errors) (*errors)++;
                pos++;
                pp.first_pos++;
                single = 0;
            } else single = 1;
            continue;
        }
        CHECK(ua == ub && la == lb && !memcmp(ca, cb, la), "%s: position %u: chunks differ (%zu/%zu bytes, %u/%u positions)",
              what, pos, la, lb, ua, ub);
        uint32_t ma, mb;
        const slim_dist *da = slim_chunk_encoded(a, &ma), *db = slim_chunk_encoded(b, &mb);
        for (uint32_t j = 0; j < ma && ma == mb; j++)
            if (!same_dist(&da[j], &db[j])) {
                CHECK(0, "%s: position %u: reconstructions differ", what, pos + j);
                break;
            }
        slim_codec_stats st;
        slim_codec_last_stats(a, &st);
        simd += st.simd_positions;
        slim_codec_last_stats(b, &st);
        CHECK(st.simd_positions == 0, "%s: the scalar codec took the SIMD path", what);
        pos += ua ? ua : 1;
        pp.first_pos += ua;
    }
    return simd;
}

static void test_tokeniser(int have)
{
    slim_codec *a, *b;
    slim_codec_new(&a);
    slim_codec_new(&b);
    slim_codec_set_simd(a, 1);
    slim_codec_set_simd(b, 0);
    synth g;
    float *row = malloc(128256 * sizeof *row), *tmp = malloc(128256 * sizeof *tmp);
    TAP_BEGIN(have ? "SIMD tokeniser == scalar, byte for byte: realistic top-k rows"
                   : "SIMD tokeniser == scalar: realistic top-k rows (no AVX-512 here: scalar both)");
    static const struct { uint32_t V, k, n; double eps; } rc[] = {
        {32000, 1600, 40, 0.01}, {32000, 1600, 12, 1e-5}, {128256, 128, NPOS, 0.01},
        {1024, 52, NPOS, 0.01}, {50257, 2513, 8, 0.05}, {4099, 205, 100, 0.001},
    };
    for (size_t i = 0; i < sizeof rc / sizeof rc[0]; i++) {
        synth_init(&g, rc[i].V, 11 + i);
        for (uint32_t p = 0; p < rc[i].n; p++) {
            in[p].ids = in_ids + (size_t)p * KMAX;
            in[p].vals = in_vals + (size_t)p * KMAX;
            topk_row(&g, rc[i].V, rc[i].k, row, tmp, &in[p]);
        }
        synth_free(&g);
        slim_chunk_params pp = {SLIM_KIND_LOGITS, {SLIM_PREC_LOGPROB, rc[i].eps}, rc[i].V, 0, 0};
        char what[64];
        snprintf(what, sizeof what, "V %u k %u eps %g", rc[i].V, rc[i].k, rc[i].eps);
        uint32_t s = compare(a, b, &pp, rc[i].n, what, NULL);
        CHECK(!have || s == rc[i].n, "%s: SIMD took %u of %u positions", what, s, rc[i].n);
    }
    TAP_END();

    TAP_BEGIN("SIMD tokeniser == scalar: awkward positions, fallbacks inside a chunk, every precision");
    uint32_t took = 0, total = 0, errs = 0;
    static const struct { int mode; double eps; } pc[] = {
        {SLIM_PREC_LOGPROB, 0.01}, {SLIM_PREC_LOGPROB, 1e-6}, {SLIM_PREC_LOGPROB, 3.0},
        {SLIM_PREC_PROB, 1e-4}, {SLIM_PREC_LOSSLESS, 0},
    };
    for (int rep = 0; rep < 30; rep++) {
        uint32_t V = rep % 3 == 0 ? 75 : rep % 3 == 1 ? 32000 : 128256;
        for (uint32_t p = 0; p < NPOS; p++) {
            in[p].ids = in_ids + (size_t)p * KMAX;
            in[p].vals = in_vals + (size_t)p * KMAX;
            odd_pos(&in[p], V);
        }
        for (size_t m = 0; m < sizeof pc / sizeof pc[0]; m++) {
            slim_chunk_params pp = {SLIM_KIND_LOGITS, {pc[m].mode, pc[m].eps}, V, 3, rep & 1 ? 1500 : 0};
            char what[64];
            snprintf(what, sizeof what, "rep %d V %u mode %d eps %g", rep, V, pc[m].mode, pc[m].eps);
            uint32_t s = compare(a, b, &pp, NPOS, what, &errs);
            if (pc[m].mode == SLIM_PREC_LOGPROB) { took += s; total += NPOS; }
            else CHECK(s == 0, "%s: SIMD took %u positions of another precision", what, s);
        }
    }
    /* both paths must have been exercised */
    CHECK(!have || (took > total / 4 && took < total), "SIMD took %u of %u positions", took, total);
    CHECK(errs > 10 && errs < total / 10, "%u refused positions", errs);
    TAP_END();

    TAP_BEGIN("SIMD tokeniser == scalar: quantiser ties (fraction exactly 1/2) and q0 +- 1");
    {
        /* eps with step = 2 * eps * 0.95 exactly 1: r = (lse - x) / step is
         * then exactly j + 1/2 for x = -(j + 1/2), the tie of round_small */
        double eps = 1.0 / 1.9;
        while (2.0 * eps * 0.95 < 1.0) eps = nextafter(eps, 1.0);
        while (2.0 * eps * 0.95 > 1.0) eps = nextafter(eps, 0.0);
        CHECK(2.0 * eps * 0.95 == 1.0, "no eps with step 1");
        for (uint32_t p = 0; p < 20; p++) {
            in[p].ids = in_ids + (size_t)p * KMAX;
            in[p].vals = in_vals + (size_t)p * KMAX;
            in[p].k = 60;
            in[p].lse = 0;
            in[p].n_samples = 0;
            for (uint32_t j = 0; j < 60; j++) {
                in[p].ids[j] = 3 * j + p;
                in[p].vals[j] = -((float)(j + p) + 0.5f);
            }
        }
        slim_chunk_params pp = {SLIM_KIND_LOGITS, {SLIM_PREC_LOGPROB, eps}, 1000, 0, 0};
        uint32_t s = compare(a, b, &pp, 20, "ties", NULL);
        CHECK(!have || s == 20, "ties: SIMD took %u of 20", s);
        /* lse near 30000: float spacing 2^-9, so q0's value can miss eps and
         * q0 - 1 or q0 + 1 (or an escape) must be tried */
        for (uint32_t p = 0; p < NPOS; p++) {
            in[p].k = 300;
            in[p].lse = (float)(30000 + unif() * 1000);
            for (uint32_t j = 0; j < 300; j++) {
                in[p].ids[j] = 2 * j;
                in[p].vals[j] = in[p].lse - (float)(unif() * 20);
            }
        }
        slim_chunk_params p2 = {SLIM_KIND_LOGITS, {SLIM_PREC_LOGPROB, 0.01}, 1000, 0, 0};
        s = compare(a, b, &p2, NPOS, "lse 30000", NULL);
        CHECK(!have || s > 0, "lse 30000: SIMD took none");
    }
    TAP_END();

    TAP_BEGIN("SIMD tokeniser: bad input gives the scalar path's error");
    static const char *want[] = {">= V", "twice", "value nan", "value inf"};
    for (int t = 0; t < 4; t++) {
        in[0].ids = in_ids;
        in[0].vals = in_vals;
        in[0].k = 40;
        in[0].lse = 0;
        for (uint32_t j = 0; j < 40; j++) { in_ids[j] = 10 * j; in_vals[j] = -1.0f - j; }
        if (t == 0) in_ids[39] = 1000;
        if (t == 1) in_ids[20] = in_ids[19];
        if (t == 2) in_vals[17] = NAN;
        if (t == 3) in_vals[33] = INFINITY;
        slim_chunk_params pp = {SLIM_KIND_LOGITS, {SLIM_PREC_LOGPROB, 0.01}, 1000, 0, 0};
        size_t len;
        uint32_t used;
        int r = slim_chunk_encode(a, &pp, in, 1, ca, sizeof ca, &len, &used);
        CHECK(r == SLIM_EINVAL && strstr(slim_codec_errmsg(a), want[t]), "case %d: rc %d '%s'", t, r,
              slim_codec_errmsg(a));
        compare(a, b, &pp, 1, want[t], NULL);
    }
    TAP_END();
    free(row);
    free(tmp);
    slim_codec_free(a);
    slim_codec_free(b);
}

static void test_pstat(int have)
{
    TAP_BEGIN(have ? "pstat SIMD sums == scalar, bit for bit"
                   : "pstat SIMD sums == scalar (no AVX-512 here: scalar both)");
    uint32_t differ = 0, n = 0;
    for (int rep = 0; rep < 3000; rep++) {
        slim_dist d = {0};
        d.ids = in_ids;
        d.vals = in_vals;
        d.k = rep < 100 ? (uint32_t)rep : below(5) ? below(40) : below(KMAX);
        float lse = (float)(unif() * 100 - 50);
        for (uint32_t j = 0; j < d.k; j++) {
            uint32_t r = below(100);
            in_vals[j] = r == 0 ? -INFINITY : r == 1 ? lse - 800 : r == 2 ? lse + (float)unif()
                       : lse - (float)(unif() * unif() * 30);
        }
        d.lse = below(10) ? lse : NAN;
        slim__pstat_simd(1);
        if (d.lse == d.lse) {  /* the double sums themselves, bit for bit */
            double s1, h1, s0, h0;
            slim__pstat_sums(d.vals, d.k, d.lse, 1, &s1, &h1);
            slim__pstat_sums(d.vals, d.k, d.lse, 0, &s0, &h0);
            if (memcmp(&s1, &s0, 8) || memcmp(&h1, &h0, 8)) {
                if (!differ) CHECK(0, "k %u: sums %.17g / %.17g, %.17g / %.17g", d.k, s1, s0, h1, h0);
                differ++;
            }
        }
        slim_pstat x, y;
        slim__pstat_simd(1);
        slim_dist_pstat(&d, SLIM_KIND_LOGITS, &x);
        slim__pstat_simd(0);
        slim_dist_pstat(&d, SLIM_KIND_LOGITS, &y);
        n++;
        if (memcmp(&x, &y, sizeof x)) {
            if (!differ) CHECK(0, "k %u: entropy %.9g / %.9g, tail %.9g / %.9g", d.k, x.entropy, y.entropy,
                               x.tail_mass, y.tail_mass);
            differ++;
        }
    }
    slim__pstat_simd(1);
    CHECK(n == 3000, "%u cases", n);
    TAP_END();
}

int main(void)
{
    int have = 0;
    if (synth_init(&rg, 2, 0x5eed)) return 1;
    slim_codec *c;
    if (slim_codec_new(&c)) return 1;
    /* does this CPU run the SIMD tokeniser? ask the codec itself */
    slim_dist d = {1, 0, 0.0f, in_ids, in_vals};
    in_ids[0] = 1;
    in_vals[0] = -1;
    slim_chunk_params pp = {SLIM_KIND_LOGITS, {SLIM_PREC_LOGPROB, 0.01}, 10, 0, 0};
    size_t len;
    uint32_t used;
    slim_codec_stats st;
    if (slim_chunk_encode(c, &pp, &d, 1, ca, sizeof ca, &len, &used) == 0) {
        slim_codec_last_stats(c, &st);
        have = st.simd_positions == 1;
    }
    slim_codec_free(c);
    const char *sc = getenv("SLIM_CODEC_SCALAR");
    if (sc && *sc && strcmp(sc, "0")) have = 0;
    printf("# AVX-512 paths %s\n", have ? "on" : "not available");
    test_tokeniser(have);
    test_pstat(have);
    synth_free(&rg);
    return tap_done();
}
