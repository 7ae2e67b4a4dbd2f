/*
 * test_codec_props.c — round-trip properties of the record codec (store/codec.c)
 * over realistic (tests/lib/synth.h) and adversarial distributions; every
 * precision bound checked entry by entry; ranges, errors, corruption.
 */
#include "codec.h"
#include "lib/synth.h"
#include "lib/tap.h"
#include "test_store_util.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------ fixtures */

typedef struct set {          /* n positions with their own storage */
    uint32_t n;
    slim_dist *d;
    uint32_t *ids;            /* [total] */
    float *vals;              /* [total] */
    size_t total;
} set;

static void set_alloc(set *s, uint32_t n, size_t total)
{
    s->n = n;
    s->d = calloc(n, sizeof *s->d);
    s->ids = calloc(total + 1, sizeof *s->ids);
    s->vals = calloc(total + 1, sizeof *s->vals);
    s->total = total;
}

static void set_free(set *s)
{
    free(s->d); free(s->ids); free(s->vals);
    memset(s, 0, sizeof *s);
}

/* Top-k of a dense row by partial selection (simple and slow: tests only). */
static int cmp_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

static void topk_row(const float *row, uint32_t V, uint32_t k, uint32_t *ids, float *vals,
                     float *tmp)
{
    memcpy(tmp, row, V * sizeof *tmp);
    qsort(tmp, V, sizeof *tmp, cmp_desc);
    float thr = tmp[k - 1];
    uint32_t n = 0;
    for (uint32_t j = 0; j < V && n < k; j++)
        if (row[j] > thr) { ids[n] = j; vals[n++] = row[j]; }
    for (uint32_t j = 0; j < V && n < k; j++)
        if (row[j] == thr) { ids[n] = j; vals[n++] = row[j]; }
}

/* n synthetic positions, top-k each, entries shuffled (input order is free). */
static void make_synth(set *s, uint32_t V, uint32_t k, uint32_t n, uint64_t seed)
{
    synth g;
    synth_init(&g, V, seed);
    float *row = malloc(V * sizeof *row), *tmp = malloc(V * sizeof *tmp);
    set_alloc(s, n, (size_t)n * k);
    for (uint32_t p = 0; p < n; p++) {
        double lse;
        synth_row(&g, row, &lse);
        slim_dist *d = &s->d[p];
        d->k = k;
        d->lse = (float)lse;
        d->ids = s->ids + (size_t)p * k;
        d->vals = s->vals + (size_t)p * k;
        topk_row(row, V, k, d->ids, d->vals, tmp);
        for (uint32_t j = k; j > 1; j--) {
            uint32_t r = synth_below(&g, j), ti = d->ids[j - 1];
            float tv = d->vals[j - 1];
            d->ids[j - 1] = d->ids[r]; d->vals[j - 1] = d->vals[r];
            d->ids[r] = ti; d->vals[r] = tv;
        }
    }
    free(row); free(tmp);
    synth_free(&g);
}

/* ------------------------------------------------------------- checking */

typedef struct chunks {
    uint8_t *buf[4096];
    size_t len[4096];
    uint32_t first[4096], npos[4096];
    int n;
} chunks;

static void chunks_free(chunks *ch)
{
    for (int i = 0; i < ch->n; i++) free(ch->buf[i]);
    ch->n = 0;
}

static int encode_all(slim_codec *c, const slim_chunk_params *pp0, const set *s, chunks *ch)
{
    slim_chunk_params pp = *pp0;
    uint32_t p = 0;
    ch->n = 0;
    while (p < s->n) {
        size_t ent = 0;
        for (uint32_t i = p; i < s->n; i++) ent += s->d[i].k;
        size_t cap = slim_chunk_bound(s->n - p, ent), len = 0;
        uint8_t *buf = malloc(cap);
        uint32_t used = 0;
        pp.first_pos = pp0->first_pos + p;
        int rc = slim_chunk_encode(c, &pp, s->d + p, s->n - p, buf, cap, &len, &used);
        if (rc) { free(buf); return rc; }
        if (used == 0 || used > s->n - p || len > cap) { free(buf); return -100; }
        ch->buf[ch->n] = buf; ch->len[ch->n] = len;
        ch->first[ch->n] = p; ch->npos[ch->n] = used;
        ch->n++;
        p += used;
    }
    return 0;
}

static float ref_of(const slim_dist *d)
{
    if (isfinite(d->lse)) return d->lse;
    float r = 0;
    int any = 0;
    for (uint32_t j = 0; j < d->k; j++)
        if (d->vals[j] != -INFINITY && (!any || d->vals[j] > r)) { r = d->vals[j]; any = 1; }
    return r;
}

/* Is decoded value y an acceptable image of input x? */
static int value_ok(int kind, const slim_precision *pr, float ref, float x, float y)
{
    uint32_t a, b;
    memcpy(&a, &x, 4); memcpy(&b, &y, 4);
    if (a == b) return 1;   /* exact (raw escapes), even where exp() overflows */
    if (kind == SLIM_KIND_SAMPLED || pr->mode == SLIM_PREC_LOSSLESS) return 0;
    if (pr->mode == SLIM_PREC_LOGPROB) {
        if (x == -INFINITY || y == -INFINITY) return x == y;
        return fabs((double)y - (double)x) <= pr->eps;
    }
    double px = exp((double)x - ref), py = exp((double)y - ref);
    return fabs(px - py) <= pr->eps;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Compare a decoded position with its input; message in why. */
static int same_position(int kind, const slim_precision *pr, const slim_dist *in,
                         const slim_dist *out, int id_order, char *why, size_t wn)
{
    if (out->k != in->k) { snprintf(why, wn, "k %u != %u", out->k, in->k); return 0; }
    if (memcmp(&out->lse, &in->lse, 4) != 0) { snprintf(why, wn, "lse %g != %g", out->lse, in->lse); return 0; }
    if (out->n_samples != in->n_samples) { snprintf(why, wn, "n_samples"); return 0; }
    float ref = ref_of(in);
    /* the input sorted by id, to look entries up */
    uint64_t *srt = malloc((in->k + 1) * sizeof *srt);
    for (uint32_t j = 0; j < in->k; j++) {
        uint32_t b;
        memcpy(&b, &in->vals[j], 4);
        srt[j] = (uint64_t)in->ids[j] << 32 | b;
    }
    qsort(srt, in->k, sizeof *srt, cmp_u64);
    for (uint32_t j = 0; j < out->k; j++) {
        uint32_t id = out->ids[j];
        size_t lo = 0, hi = in->k;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if ((uint32_t)(srt[mid] >> 32) < id) lo = mid + 1; else hi = mid;
        }
        if (lo == in->k || (uint32_t)(srt[lo] >> 32) != id) {
            snprintf(why, wn, "id %u not in input", id); free(srt); return 0;
        }
        uint32_t b = (uint32_t)srt[lo];
        float x;
        memcpy(&x, &b, 4);
        if (!value_ok(kind, pr, ref, x, out->vals[j])) {
            snprintf(why, wn, "id %u: %.9g -> %.9g (ref %g)", id, x, out->vals[j], ref);
            free(srt); return 0;
        }
        if (j > 0) {
            int bad = id_order ? out->ids[j - 1] >= id
                               : (out->vals[j - 1] < out->vals[j] ||
                                  (out->vals[j - 1] == out->vals[j] && out->ids[j - 1] > id));
            if (bad) { snprintf(why, wn, "not in %s order at %u", id_order ? "id" : "rank", j); free(srt); return 0; }
        }
    }
    free(srt);
    /* ids distinct: sort a copy */
    if (out->k > 1) {
        uint32_t *t = malloc(out->k * sizeof *t);
        memcpy(t, out->ids, out->k * sizeof *t);
        qsort(t, out->k, sizeof *t, cmp_u32);
        for (uint32_t j = 1; j < out->k; j++)
            if (t[j] == t[j - 1]) { free(t); snprintf(why, wn, "duplicate id"); return 0; }
        free(t);
    }
    return 1;
}

/* Encode s, decode every chunk whole in both orders, check every entry. */
static void roundtrip(const char *name, slim_codec *c, const slim_chunk_params *pp, const set *s)
{
    chunks ch;
    char why[200];
    TAP_BEGIN(name);
    int rc = encode_all(c, pp, s, &ch);
    CHECK(rc == 0, "encode: %d %s", rc, slim_codec_errmsg(c));
    size_t cap = s->total + 1;
    uint32_t *ids = malloc(cap * sizeof *ids);
    float *vals = malloc(cap * sizeof *vals);
    slim_dist *out = calloc(s->n + 1, sizeof *out);
    for (int i = 0; i < ch.n && rc == 0; i++) {
        slim_chunk_header h;
        rc = slim_chunk_header_read(ch.buf[i], ch.len[i], 1, &h);
        CHECK(rc == 0, "header: %d", rc);
        uint64_t ent = 0;
        for (uint32_t p = 0; p < ch.npos[i]; p++) ent += s->d[ch.first[i] + p].k;
        CHECK(h.npos == ch.npos[i] && h.first_pos == pp->first_pos + ch.first[i] &&
              h.entries == ent && h.kind == pp->kind, "header facts");
        for (int order = 0; order < 2 && rc == 0; order++) {
            size_t need = 0;
            rc = slim_chunk_decode(c, ch.buf[i], ch.len[i], 0, ch.npos[i], out, ids, vals, cap,
                                   &need, order ? SLIM_READ_ID_ORDER : 0, 1);
            CHECK(rc == 0, "decode chunk %d: %d %s", i, rc, slim_codec_errmsg(c));
            CHECK(need == ent, "need %zu != %llu", need, (unsigned long long)ent);
            for (uint32_t p = 0; p < ch.npos[i] && rc == 0; p++) {
                int ok = same_position(pp->kind, &pp->prec, &s->d[ch.first[i] + p], &out[p],
                                       order, why, sizeof why);
                CHECK(ok, "chunk %d position %u: %s", i, p, why);
                if (!ok) rc = -1;
            }
        }
    }
    TAP_END();
    free(ids); free(vals); free(out);
    chunks_free(&ch);
}

static slim_chunk_params params(int kind, int mode, double eps, uint32_t V)
{
    slim_chunk_params pp;
    memset(&pp, 0, sizeof pp);
    pp.kind = kind;
    pp.prec.mode = mode;
    pp.prec.eps = eps;
    pp.vocab_size = V;
    pp.first_pos = 7;
    return pp;
}

/* Random sparse positions: k in [kmin, kmax], values from gen(). */
typedef float (*valgen)(synth *g, uint32_t id, uint32_t j);

static float gen_normal(synth *g, uint32_t id, uint32_t j)
{
    (void)id; (void)j;
    return (float)(10.0 * synth_unif(g) - 5.0);
}

static void make_random(set *s, synth *g, uint32_t V, uint32_t n, uint32_t kmin, uint32_t kmax,
                        valgen vg, int lse_mode)
{
    size_t total = 0;
    uint32_t *ks = malloc(n * sizeof *ks);
    for (uint32_t p = 0; p < n; p++) {
        uint32_t hi = kmax < V ? kmax : V, lo = kmin < hi ? kmin : hi;
        ks[p] = lo + synth_below(g, hi - lo + 1);
        total += ks[p];
    }
    set_alloc(s, n, total);
    uint8_t *used = calloc(V, 1);
    size_t off = 0;
    for (uint32_t p = 0; p < n; p++) {
        slim_dist *d = &s->d[p];
        d->k = ks[p];
        d->ids = s->ids + off;
        d->vals = s->vals + off;
        off += ks[p];
        uint32_t m = 0;
        if (ks[p] > V / 2) {       /* dense: take all, drop randomly */
            for (uint32_t id = 0; id < V && m < ks[p]; id++)
                if (synth_below(g, V - id) < ks[p] - m) d->ids[m++] = id;
        } else {
            while (m < ks[p]) {
                uint32_t id = synth_below(g, V);
                if (used[id]) continue;
                used[id] = 1;
                d->ids[m++] = id;
            }
            for (uint32_t j = 0; j < m; j++) used[d->ids[j]] = 0;
        }
        double mx = -INFINITY;
        for (uint32_t j = 0; j < m; j++) {
            d->vals[j] = vg(g, d->ids[j], j);
            if (d->vals[j] > mx) mx = d->vals[j];
        }
        if (lse_mode == 0) d->lse = (float)(isfinite(mx) ? mx + 3.0 : 0.0);
        else if (lse_mode == 1) d->lse = NAN;
        else d->lse = 0;
    }
    free(used); free(ks);
}

static float gen_equal(synth *g, uint32_t id, uint32_t j) { (void)g; (void)id; (void)j; return 1.5f; }
static float gen_some_inf(synth *g, uint32_t id, uint32_t j)
{
    (void)id; (void)j;
    return synth_below(g, 3) == 0 ? -INFINITY : (float)(8.0 * synth_unif(g) - 20.0);
}
static float gen_all_inf(synth *g, uint32_t id, uint32_t j) { (void)g; (void)id; (void)j; return -INFINITY; }
static float gen_special(synth *g, uint32_t id, uint32_t j)
{
    static const uint32_t bits[] = {0x80000000u, 0x00000000u, 0x00000001u, 0x807fffffu,
                                    0x7f7fffffu, 0xff7fffffu, 0xff800000u, 0x3f800000u,
                                    0x00400000u, 0xc2c80000u};
    (void)id; (void)j;
    uint32_t r = synth_below(g, 14);
    if (r < 10) { float f; memcpy(&f, &bits[r], 4); return f; }
    return (float)(synth_unif(g) * 200.0 - 100.0);
}
static float gen_wide(synth *g, uint32_t id, uint32_t j)
{
    (void)id; (void)j;
    switch (synth_below(g, 4)) {
    case 0: return -FLT_MAX;
    case 1: return -1e30f;
    case 2: return (float)(synth_unif(g) * 1e6);
    default: return (float)(synth_unif(g) * 10.0 - 10.0);
    }
}
static float gen_count(synth *g, uint32_t id, uint32_t j)
{
    (void)id; (void)j;
    uint32_t r = synth_below(g, 10);
    return r < 7 ? (float)(1 + r) : (float)synth_below(g, 1u << 24);
}

static void sampled_fix(set *s)
{
    for (uint32_t p = 0; p < s->n; p++) {
        uint64_t sum = 0;
        for (uint32_t j = 0; j < s->d[p].k; j++) sum += (uint64_t)s->d[p].vals[j];
        s->d[p].n_samples = (uint32_t)(sum > UINT32_MAX ? UINT32_MAX : sum);
    }
}

static const slim_precision precs[] = {
    {SLIM_PREC_LOGPROB, 0.01}, {SLIM_PREC_LOGPROB, 1e-4}, {SLIM_PREC_LOGPROB, 0.7},
    {SLIM_PREC_PROB, 1e-4}, {SLIM_PREC_PROB, 0.01}, {SLIM_PREC_LOSSLESS, 0},
};
#define NPREC (sizeof precs / sizeof precs[0])

static void run_modes(const char *what, slim_codec *c, uint32_t V, const set *s)
{
    char name[160];
    for (size_t m = 0; m < NPREC; m++) {
        slim_chunk_params pp = params(SLIM_KIND_LOGITS, precs[m].mode, precs[m].eps, V);
        snprintf(name, sizeof name, "%s V=%u prec=%d:%g", what, V, precs[m].mode, precs[m].eps);
        roundtrip(name, c, &pp, s);
    }
}

static void test_adversarial(slim_codec *c)
{
    synth g;
    set s;
    char name[160];
    synth_init(&g, 2, 42);
    static const uint32_t Vs[] = {2, 3, 17, 255, 256, 257, 4096, 65536, 65537, 262144};
    for (size_t i = 0; i < sizeof Vs / sizeof Vs[0]; i++) {
        uint32_t V = Vs[i];
        make_random(&s, &g, V, 6, 1, 1, gen_normal, 0);
        run_modes("k=1", c, V, &s); set_free(&s);
        if (V <= 65537) {
            make_random(&s, &g, V, 2, V, V, gen_normal, 0);
            run_modes("k=V", c, V, &s); set_free(&s);
        }
        make_random(&s, &g, V, 5, 0, 300, gen_some_inf, 0);
        run_modes("some -inf", c, V, &s); set_free(&s);
    }
    for (int r = 0; r < 6; r++) {
        uint32_t V = 2 + synth_below(&g, 200000);
        make_random(&s, &g, V, 9, 0, 2000, gen_normal, r % 3);
        snprintf(name, sizeof name, "random V lse_mode=%d", r % 3);
        run_modes(name, c, V, &s); set_free(&s);
    }
    make_random(&s, &g, 5000, 8, 1, 100, gen_equal, 0);
    run_modes("equal logits", c, 5000, &s); set_free(&s);
    make_random(&s, &g, 5000, 8, 1, 100, gen_all_inf, 0);
    run_modes("all -inf", c, 5000, &s); set_free(&s);
    make_random(&s, &g, 5000, 8, 1, 100, gen_all_inf, 1);
    run_modes("all -inf, lse NaN", c, 5000, &s); set_free(&s);
    make_random(&s, &g, 70000, 8, 1, 500, gen_normal, 1);
    run_modes("lse NaN", c, 70000, &s); set_free(&s);
    make_random(&s, &g, 70000, 8, 1, 500, gen_normal, 2);
    run_modes("lse 0, values above it", c, 70000, &s); set_free(&s);
    make_random(&s, &g, 1000, 8, 1, 500, gen_special, 0);
    run_modes("special floats", c, 1000, &s); set_free(&s);
    make_random(&s, &g, 1000, 8, 1, 500, gen_wide, 0);
    run_modes("wide values", c, 1000, &s); set_free(&s);
    /* ids 0 and V-1 only */
    for (uint32_t V = 2; V <= 262144; V *= 8) {
        set_alloc(&s, 3, 6);
        for (uint32_t p = 0; p < 3; p++) {
            s.d[p].k = 2; s.d[p].ids = s.ids + 2 * p; s.d[p].vals = s.vals + 2 * p;
            s.d[p].ids[0] = V - 1; s.d[p].ids[1] = 0;
            s.d[p].vals[0] = -1.0f; s.d[p].vals[1] = -2.0f - (float)p; s.d[p].lse = 0.5f;
        }
        run_modes("ids 0 and V-1", c, V, &s); set_free(&s);
    }
    /* sampled counts */
    for (int r = 0; r < 3; r++) {
        uint32_t V = r == 0 ? 2 : r == 1 ? 32000 : 262144;
        make_random(&s, &g, V, 12, 1, 64, gen_count, r);
        sampled_fix(&s);
        slim_chunk_params pp = params(SLIM_KIND_SAMPLED, 0, 0, V);
        snprintf(name, sizeof name, "sampled counts V=%u", V);
        roundtrip(name, c, &pp, &s); set_free(&s);
    }
    synth_free(&g);
}

static void test_realistic(slim_codec *c)
{
    set s;
    make_synth(&s, 32000, 1600, 12, 1);
    run_modes("synth top-5% of 32000", c, 32000, &s);
    set_free(&s);
    make_synth(&s, 128256, 128, 40, 2);
    run_modes("synth k=128 of 128256", c, 128256, &s);
    set_free(&s);
}

/* Sub-ranges of multi-position, multi-frame chunks against whole decodes. */
static void test_subranges(slim_codec *c)
{
    set s;
    chunks ch;
    make_synth(&s, 32000, 64, 300, 3);
    slim_chunk_params pp = params(SLIM_KIND_LOGITS, SLIM_PREC_LOGPROB, 0.01, 32000);
    pp.target_bytes = 8000;
    TAP_BEGIN("sub-ranges of multi-frame chunks");
    int rc = encode_all(c, &pp, &s, &ch);
    CHECK(rc == 0 && ch.n >= 3, "encode: %d, %d chunks", rc, ch.n);
    size_t cap = s.total;
    uint32_t *ids = malloc(cap * 4), *ids2 = malloc(cap * 4);
    float *vals = malloc(cap * 4), *vals2 = malloc(cap * 4);
    slim_dist *all = calloc(s.n, sizeof *all), *part = calloc(s.n, sizeof *part);
    synth g;
    synth_init(&g, 2, 9);
    for (int i = 0; i < ch.n && rc == 0; i++) {
        uint32_t np = ch.npos[i];
        CHECK(np > 16, "chunk %d has only %u positions (want several frames)", i, np);
        rc = slim_chunk_decode(c, ch.buf[i], ch.len[i], 0, np, all, ids, vals, cap, NULL, 0, 1);
        CHECK(rc == 0, "whole decode %d", rc);
        for (int t = 0; t < 40 && rc == 0; t++) {
            uint32_t a = synth_below(&g, np), n = 1 + synth_below(&g, np - a);
            if (t == 0) { a = np - 1; n = 1; }
            size_t need = 0;
            rc = slim_chunk_decode(c, ch.buf[i], ch.len[i], a, n, part, ids2, vals2, cap, &need,
                                   0, t & 1);
            CHECK(rc == 0, "decode [%u,+%u): %d %s", a, n, rc, slim_codec_errmsg(c));
            size_t want = 0;
            for (uint32_t p = 0; p < n && rc == 0; p++) {
                const slim_dist *x = &all[a + p], *y = &part[p];
                want += x->k;
                CHECK(x->k == y->k && !memcmp(x->ids, y->ids, x->k * 4) &&
                      !memcmp(x->vals, y->vals, x->k * 4) && !memcmp(&x->lse, &y->lse, 4),
                      "position %u differs", a + p);
            }
            CHECK(need == want, "need %zu != %zu", need, want);
        }
    }
    TAP_END();

    TAP_BEGIN("SLIM_ERANGE reports the need");
    {
        size_t need = 0;
        uint32_t np = ch.npos[0];
        rc = slim_chunk_decode(c, ch.buf[0], ch.len[0], 1, np - 1, part, ids2, vals2, 64 * (np - 1) - 1,
                               &need, 0, 1);
        CHECK(rc == SLIM_ERANGE && need == 64 * (size_t)(np - 1), "rc %d need %zu", rc, need);
        rc = slim_chunk_decode(c, ch.buf[0], ch.len[0], 1, np - 1, part, ids2, vals2, 64 * (np - 1),
                               &need, 0, 1);
        CHECK(rc == 0, "exact capacity: %d", rc);
        size_t len = 0;
        uint32_t used = 0;
        uint8_t small[100];
        rc = slim_chunk_encode(c, &pp, s.d, s.n, small, sizeof small, &len, &used);
        CHECK(rc == SLIM_ERANGE && len > sizeof small, "encode into 100 bytes: %d len %zu", rc, len);
        uint8_t *big = malloc(len);
        rc = slim_chunk_encode(c, &pp, s.d, s.n, big, len, &len, &used);
        CHECK(rc == 0 && len == ch.len[0] && !memcmp(big, ch.buf[0], len),
              "encode into the reported size: %d", rc);
        free(big);
        rc = slim_chunk_decode(c, ch.buf[0], ch.len[0], np, 1, part, ids2, vals2, cap, &need, 0, 1);
        CHECK(rc == SLIM_EINVAL, "past the chunk: %d", rc);
    }
    TAP_END();
    rc = 0;

    TAP_BEGIN("small target: one position per chunk");
    {
        chunks c1;
        pp.target_bytes = 1;
        rc = encode_all(c, &pp, &s, &c1);
        CHECK(rc == 0 && c1.n == (int)s.n, "%d chunks for %u positions", c1.n, s.n);
        chunks_free(&c1);
    }
    TAP_END();
    free(ids); free(ids2); free(vals); free(vals2); free(all); free(part);
    synth_free(&g);
    chunks_free(&ch);
    set_free(&s);
}

/* Flip every byte of a few chunks: checked decodes fail with ECORRUPT,
 * unchecked ones never crash; truncations likewise. */
static void test_corruption(slim_codec *c)
{
    set s;
    synth g;
    synth_init(&g, 2, 11);
    chunks ch[3];
    slim_chunk_params pp[3] = {
        params(SLIM_KIND_LOGITS, SLIM_PREC_LOGPROB, 0.01, 5000),
        params(SLIM_KIND_LOGITS, SLIM_PREC_PROB, 1e-4, 5000),
        params(SLIM_KIND_LOGITS, SLIM_PREC_LOSSLESS, 0, 5000)};
    make_random(&s, &g, 5000, 20, 1, 80, gen_some_inf, 1);
    for (int m = 0; m < 3; m++) encode_all(c, &pp[m], &s, &ch[m]);
    size_t cap = s.total;
    uint32_t *ids = malloc(cap * 4);
    float *vals = malloc(cap * 4);
    slim_dist *out = calloc(s.n, sizeof *out);
    TAP_BEGIN("flipped bytes -> SLIM_ECORRUPT, never a crash");
    for (int m = 0; m < 3; m++) {
        uint8_t *b = ch[m].buf[0];
        size_t len = ch[m].len[0];
        uint32_t np = ch[m].npos[0];
        for (size_t i = 0; i < len; i++) {
            for (int flip = 0; flip < 2; flip++) {
                uint8_t mask = flip ? 0xff : (uint8_t)(1u << (i % 8));
                b[i] ^= mask;
                int rc = slim_chunk_decode(c, b, len, 0, np, out, ids, vals, cap, NULL, 0, 1);
                CHECK(rc == SLIM_ECORRUPT, "mode %d byte %zu: rc %d", m, i, rc);
                slim_chunk_header h;
                rc = slim_chunk_header_read(b, len, 1, &h);
                CHECK(rc == SLIM_ECORRUPT, "header_read byte %zu: %d", i, rc);
                rc = slim_chunk_decode(c, b, len, 0, np, out, ids, vals, cap, NULL, 0, 0);
                CHECK(rc == 0 || rc == SLIM_ECORRUPT || rc == SLIM_ERANGE || rc == SLIM_EINVAL,
                      "unchecked byte %zu: %d", i, rc);
                b[i] ^= mask;
            }
        }
        int rc = slim_chunk_decode(c, b, len, 0, np, out, ids, vals, cap, NULL, 0, 1);
        CHECK(rc == 0, "restored chunk: %d", rc);
    }
    TAP_END();
    TAP_BEGIN("truncated chunks -> SLIM_ECORRUPT");
    for (int m = 0; m < 3; m++) {
        size_t len = ch[m].len[0];
        uint8_t *t = malloc(len);
        for (size_t l = 0; l < len; l++) {
            memcpy(t, ch[m].buf[0], l);   /* copy so ASan sees the real end */
            int rc = slim_chunk_decode(c, t, l, 0, 1, out, ids, vals, cap, NULL, 0, 1);
            CHECK(rc == SLIM_ECORRUPT, "mode %d length %zu: %d", m, l, rc);
            rc = slim_chunk_decode(c, t, l, 0, 1, out, ids, vals, cap, NULL, 0, 0);
            CHECK(rc != 0, "unchecked length %zu decoded", l);
        }
        free(t);
    }
    TAP_END();
    for (int m = 0; m < 3; m++) chunks_free(&ch[m]);
    free(ids); free(vals); free(out);
    set_free(&s);
    synth_free(&g);
}

static void test_invalid(slim_codec *c)
{
    uint32_t ids[3] = {5, 9, 2};
    float vals[3] = {-1, -2, -3};
    slim_dist d = {3, 0, 0.0f, ids, vals};
    uint8_t buf[4096];
    size_t len;
    uint32_t used;
    slim_chunk_params pp = params(SLIM_KIND_LOGITS, SLIM_PREC_LOGPROB, 0.01, 10);
    TAP_BEGIN("invalid input -> SLIM_EINVAL with a message");
    int rc = slim_chunk_encode(c, &pp, &d, 1, buf, sizeof buf, &len, &used);
    CHECK(rc == 0, "valid: %d", rc);
    ids[1] = 10;
    rc = slim_chunk_encode(c, &pp, &d, 1, buf, sizeof buf, &len, &used);
    CHECK(rc == SLIM_EINVAL && strstr(slim_codec_errmsg(c), "id 10 >= V 10"), "id >= V: %d %s", rc,
          slim_codec_errmsg(c));
    ids[1] = 5;
    rc = slim_chunk_encode(c, &pp, &d, 1, buf, sizeof buf, &len, &used);
    CHECK(rc == SLIM_EINVAL && strstr(slim_codec_errmsg(c), "twice"), "duplicate: %d", rc);
    ids[1] = 9; vals[2] = NAN;
    rc = slim_chunk_encode(c, &pp, &d, 1, buf, sizeof buf, &len, &used);
    CHECK(rc == SLIM_EINVAL, "NaN: %d", rc);
    vals[2] = INFINITY;
    rc = slim_chunk_encode(c, &pp, &d, 1, buf, sizeof buf, &len, &used);
    CHECK(rc == SLIM_EINVAL, "+inf: %d", rc);
    vals[2] = -3;
    pp.prec.eps = 0;
    rc = slim_chunk_encode(c, &pp, &d, 1, buf, sizeof buf, &len, &used);
    CHECK(rc == SLIM_EINVAL, "eps 0: %d", rc);
    pp = params(SLIM_KIND_SAMPLED, 0, 0, 10);
    vals[0] = 1.5f;
    rc = slim_chunk_encode(c, &pp, &d, 1, buf, sizeof buf, &len, &used);
    CHECK(rc == SLIM_EINVAL, "fractional count: %d", rc);
    d.k = 11;
    pp = params(SLIM_KIND_LOGITS, SLIM_PREC_LOSSLESS, 0, 10);
    rc = slim_chunk_encode(c, &pp, &d, 1, buf, sizeof buf, &len, &used);
    CHECK(rc == SLIM_EINVAL, "k > V: %d", rc);
    TAP_END();
}

/* The worked example of docs/FORMAT.md, "Record chunks" (version 2): the
 * bytes there must stay what the encoder writes (a format change must
 * update both); tsu_chunk_v1 is the same chunk as version 1 writers made it. */
static const uint8_t example_v2[143] = {
    0x53, 0x43, 0x02, 0x01, 0x01, 0x0a, 0x00, 0x02, 0x03, 0x7b, 0x14, 0xae, 0x47, 0xe1, 0x7a, 0x84,
    0x3f, 0xdb, 0xf9, 0x7e, 0x6a, 0xbc, 0x74, 0x93, 0x3f, 0x00, 0xfc, 0xb8, 0x6b, 0x3f, 0xcd, 0xf2,
    0x81, 0x3e, 0x15, 0xa4, 0x9b, 0x3e, 0xaf, 0x9a, 0xb9, 0x3d, 0x01, 0x02, 0x01, 0x80, 0x08, 0x01,
    0x80, 0x20, 0x01, 0x02, 0x04, 0x80, 0x10, 0x00, 0x00, 0x80, 0x10, 0x04, 0x00, 0x00, 0x00, 0x80,
    0x20, 0x01, 0x02, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x20, 0x1d, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x80, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x10, 0x19, 0x00, 0x00,
    0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x02, 0x08, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x04, 0x00,
    0x00, 0x09, 0x08, 0x00, 0x00, 0x00, 0x00, 0xd5, 0xbe, 0x12, 0x9b, 0x60, 0x25, 0x19, 0x1d};

/* Both versions decode to the documented values; their statistics (stored
 * in v2, computed by decoding v1) are slim_dist_pstat of those values. */
static void check_example(slim_codec *c, const uint8_t *src, size_t len, int version)
{
    slim_dist o[2];
    uint32_t ids[3];
    float vals[3];
    slim_chunk_header h;
    int rc = slim_chunk_header_read(src, len, 1, &h);
    CHECK(rc == 0 && h.version == version && h.npos == 2 && h.entries == 3, "v%d header: rc %d", version, rc);
    rc = slim_chunk_decode(c, src, len, 0, 2, o, ids, vals, 3, NULL, SLIM_READ_ID_ORDER, 1);
    CHECK(rc == 0 && o[0].k == 2 && o[0].ids[0] == 3 && o[0].vals[0] == (float)(0 - 0.019 * 26) &&
          o[0].ids[1] == 7 && o[0].vals[1] == (float)(0 - 0.019 * 105) && o[1].k == 1 &&
          o[1].ids[0] == 0 && o[1].vals[0] == (float)(0 - 0.019 * 5), "v%d: decoded values differ", version);
    slim_pstat ps[2], one;
    rc = slim_chunk_pstats(c, src, len, 0, 2, ps, 1);
    CHECK(rc == 0, "v%d: pstats rc %d: %s", version, rc, slim_codec_errmsg(c));
    for (int i = 0; i < 2 && rc == 0; i++) {
        slim_pstat want;
        slim_dist_pstat(&o[i], SLIM_KIND_LOGITS, &want);
        CHECK(memcmp(&want, &ps[i], sizeof want) == 0, "v%d position %d: entropy %.9g tail %.9g, want %.9g %.9g",
              version, i, ps[i].entropy, ps[i].tail_mass, want.entropy, want.tail_mass);
    }
    /* documented figures: 0.920791388 / 0.253805548 and 0.303986222 / 0.0906270668 nats */
    CHECK(fabs(ps[0].entropy - 0.920791388) < 1e-7 && fabs(ps[0].tail_mass - 0.253805548) < 1e-7 &&
          fabs(ps[1].entropy - 0.303986222) < 1e-7 && fabs(ps[1].tail_mass - 0.0906270668) < 1e-7,
          "v%d: statistics differ from docs/FORMAT.md", version);
    rc = slim_chunk_pstats(c, src, len, 1, 1, &one, 1);
    CHECK(rc == 0 && memcmp(&one, &ps[1], sizeof one) == 0, "v%d: sub-range pstats differ", version);
    CHECK(slim_chunk_pstats(c, src, len, 1, 2, ps, 1) == SLIM_EINVAL, "v%d: range past npos accepted", version);
}

static void test_format_example(slim_codec *c)
{
    uint32_t i0[2] = {7, 3}, i1[1] = {0};
    float v0[2] = {-2.0f, -0.5f}, v1[1] = {-0.1f};
    slim_dist d[2] = {{2, 0, 0.0f, i0, v0}, {1, 0, 0.0f, i1, v1}};
    slim_chunk_params pp = params(SLIM_KIND_LOGITS, SLIM_PREC_LOGPROB, 0.01, 10);
    pp.first_pos = 0;
    uint8_t buf[4096];
    size_t len = 0;
    uint32_t used = 0;
    TAP_BEGIN("docs/FORMAT.md worked example is what the encoder writes");
    int rc = slim_chunk_encode(c, &pp, d, 2, buf, sizeof buf, &len, &used);
    CHECK(rc == 0 && used == 2 && len == sizeof example_v2 && memcmp(buf, example_v2, len) == 0,
          "rc %d, %zu bytes, differs from the documented %zu", rc, len, sizeof example_v2);
    check_example(c, example_v2, sizeof example_v2, 2);
    TAP_END();
    TAP_BEGIN("version 1 chunk fixture still decodes, statistics computed");
    check_example(c, tsu_chunk_v1, sizeof tsu_chunk_v1, 1);
    TAP_END();
    TAP_BEGIN("statistics block is under the checksum");
    memcpy(buf, example_v2, sizeof example_v2);
    buf[27] ^= 0x01;  /* a bit of position 0's entropy */
    slim_pstat ps[2];
    CHECK(slim_chunk_pstats(c, buf, sizeof example_v2, 0, 2, ps, 1) == SLIM_ECORRUPT, "checksum missed it");
    buf[25] = 7;  /* an unknown statistics mode, unchecked read */
    CHECK(slim_chunk_pstats(c, buf, sizeof example_v2, 0, 2, ps, 0) == SLIM_ECORRUPT, "bad mode accepted");
    TAP_END();
}

int main(void)
{
    slim_codec *c = NULL;
    if (slim_codec_new(&c)) { printf("FAIL codec_new\n"); return 1; }
    test_invalid(c);
    test_format_example(c);
    test_realistic(c);
    test_adversarial(c);
    test_subranges(c);
    test_corruption(c);
    slim_codec_free(c);
    return tap_done();
}
