/*
 * sparsify.c — from a dense row of V logits to one sparse distribution:
 * the exact full-vocabulary log-normaliser and top-frac / top-k / top-p /
 * sampled selection.  This is the hot loop of dense ingest (V=32000 rows at
 * tens of thousands per second), so nothing here allocates per row.
 */
#include <errno.h>
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include "ingest.h"


#define TOPP_DEFAULT_MAX 1024
/* every SAMPLE_STRIDE-th logit estimates the selection threshold */
#define SAMPLE_STRIDE 16

struct slim_sparse_ws {
    uint32_t V, cap;
    float *row;          /* [V] dtype conversion target */
    uint32_t *cand_id;   /* [V] radix candidates */
    uint32_t *cand_key;  /* [V] */
    int32_t *bins;       /* [V] selection pre-pass */
    double *cdf;         /* [V] SAMPLE: running probability mass */
    double *u;           /* [cap] SAMPLE: sorted uniforms */
    uint32_t *order;     /* [cap] TOPP: ids sorted by value */
    float *samp;         /* [V/SAMPLE_STRIDE+1] sampled values (threshold) */
    uint32_t *sid;       /* [V/SAMPLE_STRIDE+1] */
    const float *sort_x; /* TOPP: row being sorted (qsort has no context) */
};

/* ---------------------------------------------------------------- specs */

uint32_t slim_topfrac_k(double frac, uint32_t V)
{
    /* the epsilon keeps 0.05*32000 = 1600 from becoming 1601 by rounding */
    double k = ceil(frac * (double)V - 1e-9);
    if (k < 1) k = 1;
    if (k > V) k = V;
    return (uint32_t)k;
}

static int parse_num(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v)) return -1;
    *out = v;
    return (int)(end - s);
}

int slim_sparsifier_parse(const char *spec, slim_sparsifier *out, char *err, size_t cap)
{
    memset(out, 0, sizeof *out);
    double v = 0;
    int n;
    const char *colon = strchr(spec, ':');
    size_t kw = colon ? (size_t)(colon - spec) : strlen(spec);
    const char *arg = colon ? colon + 1 : "";
#define KW(s) (kw == strlen(s) && !strncmp(spec, s, kw))
    if (KW("topfrac")) {
        out->type = SLIM_SP_TOPFRAC;
        if (!colon) { out->frac = 0.05; return 0; }
        if ((n = parse_num(arg, &v)) < 0 || arg[n] || v <= 0 || v > 1) goto bad;
        out->frac = v;
        return 0;
    }
    if (KW("topk") || KW("sample")) {
        if ((n = parse_num(arg, &v)) < 0 || arg[n] || v < 1 || v > 1e7 || v != floor(v))
            goto bad;
        out->type = KW("topk") ? SLIM_SP_TOPK : SLIM_SP_SAMPLE;
        if (out->type == SLIM_SP_TOPK) out->k = (uint32_t)v; else out->n = (uint32_t)v;
        return 0;
    }
    if (KW("topp")) {
        if ((n = parse_num(arg, &v)) < 0 || v <= 0 || v > 1) goto bad;
        out->type = SLIM_SP_TOPP;
        out->p = v;
        out->k = TOPP_DEFAULT_MAX;
        if (!arg[n]) return 0;
        if (strncmp(arg + n, ",max:", 5)) goto bad;
        const char *m = arg + n + 5;
        if ((n = parse_num(m, &v)) < 0 || m[n] || v < 1 || v > 1e7 || v != floor(v)) goto bad;
        out->k = (uint32_t)v;
        return 0;
    }
#undef KW
bad:
    snprintf(err, cap, "invalid sparsifier '%s' (expected topfrac:F, topk:K, topp:P[,max:K] "
             "or sample:N)", spec);
    return SLIM_EINVAL;
}

void slim_sparsifier_format(const slim_sparsifier *s, char *buf, size_t cap)
{
    switch (s->type) {
    case SLIM_SP_TOPFRAC: snprintf(buf, cap, "topfrac:%g", s->frac); break;
    case SLIM_SP_TOPK: snprintf(buf, cap, "topk:%u", s->k); break;
    case SLIM_SP_TOPP: snprintf(buf, cap, "topp:%g,max:%u", s->p, s->k); break;
    case SLIM_SP_SAMPLE: snprintf(buf, cap, "sample:%u", s->n); break;
    default: snprintf(buf, cap, "?");
    }
}

uint32_t slim_sparsifier_cap(const slim_sparsifier *s, uint32_t V)
{
    uint32_t k = 0;
    switch (s->type) {
    case SLIM_SP_TOPFRAC: k = slim_topfrac_k(s->frac, V); break;
    case SLIM_SP_TOPK: case SLIM_SP_TOPP: k = s->k; break;
    case SLIM_SP_SAMPLE: k = s->n; break;
    }
    return k > V ? V : k;
}

/* ------------------------------------------------------------ workspace */

slim_sparse_ws *slim_sparse_ws_new(uint32_t V, uint32_t cap)
{
    slim_sparse_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    ws->V = V;
    ws->cap = cap ? cap : 1;
    ws->row = malloc((size_t)V * sizeof(float));
    ws->cand_id = malloc((size_t)V * sizeof(uint32_t));
    ws->cand_key = malloc((size_t)V * sizeof(uint32_t));
    ws->bins = malloc((size_t)V * sizeof(int32_t));
    ws->cdf = malloc((size_t)V * sizeof(double));
    ws->u = malloc((size_t)ws->cap * sizeof(double));
    ws->order = malloc((size_t)ws->cap * sizeof(uint32_t));
    ws->samp = malloc(((size_t)V / SAMPLE_STRIDE + 1) * sizeof(float));
    ws->sid = malloc(((size_t)V / SAMPLE_STRIDE + 1) * sizeof(uint32_t));
    if (!ws->row || !ws->cand_id || !ws->cand_key || !ws->bins || !ws->cdf || !ws->u || !ws->order ||
        !ws->samp || !ws->sid) {
        slim_sparse_ws_free(ws);
        return NULL;
    }
    return ws;
}

void slim_sparse_ws_free(slim_sparse_ws *ws)
{
    if (!ws) return;
    free(ws->row); free(ws->cand_id); free(ws->cand_key); free(ws->bins);
    free(ws->cdf); free(ws->u); free(ws->order);
    free(ws->samp); free(ws->sid);
    free(ws);
}

float *slim_sparse_ws_row(slim_sparse_ws *ws) { return ws->row; }

/* ------------------------------------------------------------ logsumexp */

/*
 * The row kernels use GCC vector extensions (8 float lanes: two SSE2
 * registers on the baseline, one AVX2 register in the "avx2" clone
 * picked at load time), since exp and select-style loops do not
 * auto-vectorise without -ffast-math, which this file must not use.
 */
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
#define VCLONES __attribute__((target_clones("avx2", "default")))

/* Macros, not functions: a 32-byte vector must never cross a call on the
 * baseline ABI (clang refuses it; gcc warns). */
#define VSPLAT(a) ((v8f){ (a), (a), (a), (a), (a), (a), (a), (a) })
#define VLOAD(v, p) memcpy(&(v), (p), sizeof(v))
#define VSEL(m, a, b) ((v8f)(((m) & (v8i)(a)) | (~(m) & (v8i)(b))))

/* exp(x) for x <= 0: 2^n * p(r), r = x - n ln2 in [-ln2/2, ln2/2], degree-6
 * Taylor polynomial (relative error ~2e-7, below the float32 rounding of the
 * inputs); x < -87 (incl. -inf) gives 0.  EXP8 on 8 lanes, exp1 on one: the
 * same arithmetic. */
#define EXP_BIG 12582912.0f /* 1.5 * 2^23: adding it rounds to an integer */
#define EXP8(out, xin) do {                                                   \
        v8f x_ = (xin);                                                       \
        v8i under_ = x_ < VSPLAT(-87.0f);                                     \
        v8f xc_ = VSEL(under_, VSPLAT(-87.0f), x_);                           \
        v8f n_ = (xc_ * VSPLAT(1.44269504f) + VSPLAT(EXP_BIG)) - VSPLAT(EXP_BIG); \
        v8f r_ = xc_ - n_ * VSPLAT(0.693145752f) - n_ * VSPLAT(1.42860677e-6f); \
        v8f p_ = VSPLAT(1.0f / 720);                                          \
        p_ = p_ * r_ + VSPLAT(1.0f / 120);                                    \
        p_ = p_ * r_ + VSPLAT(1.0f / 24);                                     \
        p_ = p_ * r_ + VSPLAT(1.0f / 6);                                      \
        p_ = p_ * r_ + VSPLAT(0.5f);                                          \
        p_ = p_ * r_ + VSPLAT(1.0f);                                          \
        p_ = p_ * r_ + VSPLAT(1.0f);                                          \
        v8i e_ = (__builtin_convertvector(n_, v8i) + 127) << 23;             \
        (out) = (v8f)(~under_ & (v8i)(p_ * (v8f)e_));                         \
    } while (0)

static inline float exp1(float x)
{
    if (x < -87.0f) return 0.0f;
    float n = (x * 1.44269504f + EXP_BIG) - EXP_BIG;
    float r = x - n * 0.693145752f - n * 1.42860677e-6f;
    float p = 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t e = ((int32_t)n + 127) << 23;
    float sc;
    memcpy(&sc, &e, 4);
    return p * sc;
}

VCLONES static float row_max(const float *x, uint32_t V)
{
    v8f mv = VSPLAT(-INFINITY), v;
    uint32_t i = 0;
    for (; i + 8 <= V; i += 8) {
        VLOAD(v, x + i);
        mv = VSEL(v > mv, v, mv);
    }
    float m = -INFINITY;
    for (int l = 0; l < 8; l++) m = mv[l] > m ? mv[l] : m;
    for (; i < V; i++) m = x[i] > m ? x[i] : m;
    return m;
}

/* One pass for what every row needs first: the maximum and the number of
 * NaN / +Inf values in x[0..V) (NaN compares false, so it never becomes
 * the maximum). */
VCLONES static uint32_t row_scan(const float *x, uint32_t V, float *max)
{
    v8i bad = { 0 };
    v8f mv = VSPLAT(-INFINITY), v;
    uint32_t i = 0, n = 0;
    for (; i + 8 <= V; i += 8) {
        VLOAD(v, x + i);
        bad -= (v != v) | (v == VSPLAT(INFINITY));
        mv = VSEL(v > mv, v, mv);
    }
    float m = -INFINITY;
    for (int l = 0; l < 8; l++) { n += (uint32_t)bad[l]; m = mv[l] > m ? mv[l] : m; }
    for (; i < V; i++) {
        n += (x[i] != x[i]) | (x[i] == INFINITY);
        m = x[i] > m ? x[i] : m;
    }
    *max = m;
    return n;
}

VCLONES static double sum_exp(const float *x, uint32_t V, float m)
{
    /* float lanes sum at most 32 terms <= 1 per block; blocks add in double */
    double s = 0;
    uint32_t i = 0;
    v8f mv = VSPLAT(m);
    for (; i + 256 <= V; i += 256) {
        v8f acc = VSPLAT(0.0f), v, e;
        for (uint32_t j = i; j < i + 256; j += 8) {
            VLOAD(v, x + j);
            EXP8(e, v - mv);
            acc += e;
        }
        for (int l = 0; l < 8; l++) s += acc[l];
    }
    for (; i < V; i++) s += exp1(x[i] - m);
    return s;
}

double slim_logsumexp(const float *x, uint32_t V)
{
    float m = row_max(x, V);
    if (m == -INFINITY) return -INFINITY;
    return (double)m + log(sum_exp(x, V, m));
}

/* ------------------------------------------------------------ selection */

/* Order-preserving map float -> uint32 (larger float, larger key). */
static inline uint32_t fkey(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t mask = (uint32_t)(-(int32_t)(u >> 31)) | 0x80000000u;
    return u ^ mask;
}

/* In a histogram h[nb], find the bin holding the need-th largest element:
 * returns the bin, *above = elements in higher bins. */
static uint32_t hist_cut(const uint32_t *h, uint32_t nb, uint32_t need, uint32_t *above)
{
    uint32_t cum = 0;
    for (uint32_t b = nb; b-- > 0;) {
        if (cum + h[b] >= need) { *above = cum; return b; }
        cum += h[b];
    }
    *above = cum;
    return 0;
}

/* Bins of the linear pre-pass: bin(x) = floor((max - x) * SEL_SCALE),
 * clamped to SEL_BINS-1; monotone in x, so every value in a bin below the
 * cut bin is in, none above it is, and only the cut bin needs exact work. */
#define SEL_BINS 2048
#define SEL_RANGE 32.0f  /* nats below the max spread over the bins */

VCLONES static void row_bins(const float *x, uint32_t V, float m, int32_t *bins)
{
    const float scale = (SEL_BINS - 1) / SEL_RANGE;
    v8f mv = VSPLAT(m), lim = VSPLAT(SEL_RANGE), sc = VSPLAT(scale), d;
    uint32_t i = 0;
    for (; i + 8 <= V; i += 8) {
        VLOAD(d, x + i);
        d = mv - d;
        d = VSEL(d < lim, d, lim);  /* also catches -inf (d = +inf) */
        v8i b = __builtin_convertvector(d * sc, v8i);
        memcpy(bins + i, &b, sizeof b);
    }
    for (; i < V; i++) {
        float ds = m - x[i];
        ds = ds < SEL_RANGE ? ds : SEL_RANGE;
        bins[i] = (int32_t)(ds * scale);
    }
}

/* Radix select among nc candidates (ids in ascending order; their keys are
 * made here): move the `need` largest into ids[*nout...]; ties at the cut
 * go to the lowest ids.  Levels of up to 11 bits start at the highest bit
 * in which the candidates' keys differ (they share the sign and usually the
 * exponent), so two levels typically finish it. */
static void radix_resolve(slim_sparse_ws *ws, const float *x, uint32_t nc, uint32_t need,
                          uint32_t *ids, uint32_t *nout)
{
    uint32_t hist[2048], above;
    int top = -1;
    if (nc > need) {
        uint32_t lo = UINT32_MAX, hi = 0;
        for (uint32_t c = 0; c < nc; c++) {
            uint32_t key = fkey(x[ws->cand_id[c]]);
            ws->cand_key[c] = key;
            lo = key < lo ? key : lo;
            hi = key > hi ? key : hi;
        }
        top = lo == hi ? -1 : 31 - __builtin_clz(lo ^ hi);
    }
    while (top >= 0 && nc > need) {
        int width = top + 1 < 11 ? top + 1 : 11, shift = top + 1 - width;
        uint32_t nb = 1u << width, msk = nb - 1;
        memset(hist, 0, nb * sizeof hist[0]);
        for (uint32_t c = 0; c < nc; c++) hist[(ws->cand_key[c] >> shift) & msk]++;
        uint32_t cut = hist_cut(hist, nb, need, &above), m = 0;
        /* branch-free (winners are random in id order): store always,
         * advance on the condition.  ids[n] stays below k: the cut bin
         * still owes at least one winner; m <= c keeps it in place. */
        uint32_t n = *nout;
        for (uint32_t c = 0; c < nc; c++) {
            uint32_t id = ws->cand_id[c], key = ws->cand_key[c], b = (key >> shift) & msk;
            ids[n] = id;
            n += b > cut;
            ws->cand_id[m] = id;
            ws->cand_key[m] = key;
            m += b == cut;
        }
        *nout = n;
        nc = m;
        need -= above;
        top = shift - 1;
    }
    /* what is left is all equal (or exactly `need`): lowest ids first */
    for (uint32_t c = 0; c < need && c < nc; c++) ids[(*nout)++] = ws->cand_id[c];
}

/* Selection by bins below the maximum m (any row; 0 < k < V). */
static uint32_t select_bins(slim_sparse_ws *ws, const float *x, uint32_t V, uint32_t k,
                            uint32_t *ids, float m)
{
    row_bins(x, V, m, ws->bins);
    /* two interleaved histograms: a run of equal bins does not serialise
     * on one counter */
    uint32_t h[4][SEL_BINS];
    memset(h, 0, sizeof h);
    uint32_t i = 0;
    for (; i + 4 <= V; i += 4) {
        h[0][ws->bins[i]]++; h[1][ws->bins[i + 1]]++;
        h[2][ws->bins[i + 2]]++; h[3][ws->bins[i + 3]]++;
    }
    for (; i < V; i++) h[0][ws->bins[i]]++;
    uint32_t cum = 0, cut = 0;
    for (; cut < SEL_BINS; cut++) {
        uint32_t c = h[0][cut] + h[1][cut] + h[2][cut] + h[3][cut];
        if (cum + c >= k) break;
        cum += c;
    }
    /* only ~k of V values pass the test, so the branch is mostly
     * predicted right; a branch-free version (a store per value, a chain
     * through the counters) measured slower */
    uint32_t nout = 0, nc = 0;
    int32_t ic = (int32_t)cut;
    for (i = 0; i < V; i++) {
        int32_t b = ws->bins[i];
        if (__builtin_expect(b <= ic, 0)) {
            if (b < ic) ids[nout++] = i;
            else ws->cand_id[nc++] = i;
        }
    }
    radix_resolve(ws, x, nc, k - cum, ids, &nout);
    return nout;
}

/* Ids i of x[0..V) with x[i] >= t into out (ascending; out has V slots),
 * returns how many.  AVX2: compare 8 lanes, compress the winning lane
 * numbers with a permutation built by pdep/pext from the mask, store all 8
 * and advance by the popcount — no data-dependent branch.  Baseline: the
 * same store-always trick one element at a time. */
__attribute__((target("avx2,bmi2")))
static uint32_t collect_ge_avx2(const float *x, uint32_t V, float t, uint32_t *out)
{
    __m256 tv = _mm256_set1_ps(t);
    __m256i base = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), eight = _mm256_set1_epi32(8);
    uint32_t n = 0, i = 0;
    for (; i + 8 <= V; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        unsigned m = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(v, tv, _CMP_GE_OQ));
        uint64_t bytes = _pdep_u64(m, 0x0101010101010101ull) * 0xFF;
        uint64_t lanes = _pext_u64(0x0706050403020100ull, bytes);
        __m256i perm = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)lanes));
        /* n <= i, so the 8-wide store stays inside out[0..V) */
        _mm256_storeu_si256((__m256i *)(void *)(out + n), _mm256_permutevar8x32_epi32(base, perm));
        n += (uint32_t)__builtin_popcount(m);
        base = _mm256_add_epi32(base, eight);
    }
    for (; i < V; i++) { out[n] = i; n += x[i] >= t; }
    return n;
}

static uint32_t collect_ge(const float *x, uint32_t V, float t, uint32_t *out)
{
    /* libgcc fills the CPU model at load time; reading it is a load + test */
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2"))
        return collect_ge_avx2(x, V, t, out);
    uint32_t n = 0;
    for (uint32_t i = 0; i < V; i++) { out[n] = i; n += x[i] >= t; }
    return n;
}

/*
 * Selection by a sampled threshold: the r-th largest of every 16th logit,
 * r chosen so that the number of logits at or above it exceeds k with a
 * margin of 3 standard deviations (+5 %); one branch-free pass collects
 * those candidates and the radix select resolves exactly k among them.  The
 * result is exact whatever the sample says: when fewer than k logits reach
 * the threshold (an adversarial row), 0 is returned and the caller falls
 * back to select_bins.
 */
static uint32_t select_sampled(slim_sparse_ws *ws, const float *x, uint32_t V, uint32_t k,
                               uint32_t *ids)
{
    uint32_t ns = 0;
    for (uint32_t i = 0; i < V; i += SAMPLE_STRIDE) ws->samp[ns++] = x[i];
    double ks = (double)k * ns / V;
    uint32_t r = (uint32_t)(ks * 1.05 + 3.0 * sqrt(ks) + 2.0);
    if (r >= ns) return 0;
    float sm = -INFINITY;
    for (uint32_t i = 0; i < ns; i++) sm = ws->samp[i] > sm ? ws->samp[i] : sm;
    uint32_t got = select_bins(ws, ws->samp, ns, r, ws->sid, sm);
    float t = INFINITY;
    for (uint32_t j = 0; j < got; j++) t = ws->samp[ws->sid[j]] < t ? ws->samp[ws->sid[j]] : t;
    uint32_t nc = collect_ge(x, V, t, ws->cand_id);
    if (nc < k) return 0;
    uint32_t nout = 0;
    radix_resolve(ws, x, nc, k, ids, &nout);
    return nout;
}

/* k >= 64 of V >= 4096: the sample holds enough winners to place the
 * threshold well; smaller cases are cheap with bins anyway. */
static uint32_t select_topk_m(slim_sparse_ws *ws, const float *x, uint32_t V, uint32_t k,
                              uint32_t *ids, float m)
{
    if (k >= V) {
        for (uint32_t i = 0; i < V; i++) ids[i] = i;
        return V;
    }
    if (k == 0) return 0;
    if (V >= 4096 && k >= 64 && k <= V / 4) {
        uint32_t n = select_sampled(ws, x, V, k, ids);
        if (n == k) return n;
    }
    return select_bins(ws, x, V, k, ids, m);
}

uint32_t slim_select_topk(slim_sparse_ws *ws, const float *x, uint32_t V,
                          uint32_t k, uint32_t *ids)
{
    return select_topk_m(ws, x, V, k, ids, k && k < V ? row_max(x, V) : 0.0f);
}

static const float *naive_x;
static int naive_cmp(const void *a, const void *b)
{
    uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
    uint32_t ki = fkey(naive_x[i]), kj = fkey(naive_x[j]);
    if (ki != kj) return ki > kj ? -1 : 1;
    return i < j ? -1 : i > j;
}

uint32_t slim_select_topk_naive(const float *x, uint32_t V, uint32_t k, uint32_t *ids)
{
    uint32_t *all = malloc((size_t)V * sizeof *all);
    if (!all) return 0;
    for (uint32_t i = 0; i < V; i++) all[i] = i;
    naive_x = x; /* not thread-safe: a test / baseline helper only */
    qsort(all, V, sizeof *all, naive_cmp);
    if (k > V) k = V;
    memcpy(ids, all, (size_t)k * sizeof *ids);
    free(all);
    return k;
}

/* ---------------------------------------------------------------- top-p */

static void sort_by_value(const float *x, uint32_t *ids, uint32_t n)
{
    /* insertion-merge would do; n <= a few thousand, so a plain shell sort
     * on (key desc, id asc) keeps this reentrant (no qsort context) */
    static const uint32_t gaps[] = { 701, 301, 132, 57, 23, 10, 4, 1 };
    for (size_t g = 0; g < sizeof gaps / sizeof gaps[0]; g++) {
        uint32_t gap = gaps[g];
        for (uint32_t i = gap; i < n; i++) {
            uint32_t v = ids[i], kv = fkey(x[v]), j = i;
            while (j >= gap) {
                uint32_t w = ids[j - gap], kw = fkey(x[w]);
                if (kw > kv || (kw == kv && w < v)) break;
                ids[j] = w;
                j -= gap;
            }
            ids[j] = v;
        }
    }
}

/* ---------------------------------------------------------------- sample */

static inline uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* N draws with replacement from softmax(x) (temperature 1); distinct ids
 * with their counts.  Sorting the N uniforms turns the draws into one sweep
 * of the cumulative distribution. */
static uint32_t sample_row(const slim_sparsifier *s, slim_sparse_ws *ws, const float *x,
                           uint32_t V, double lse, uint64_t stream, slim_dist *out)
{
    double cum = 0;
    float l = (float)lse;
    for (uint32_t i = 0; i < V; i++) { cum += exp1(x[i] - l); ws->cdf[i] = cum; }
    uint64_t st = s->seed * 0x9E3779B97F4A7C15ull ^ (stream + 1) * 0xD1B54A32D192ED03ull;
    uint32_t N = s->n;
    for (uint32_t d = 0; d < N; d++)
        ws->u[d] = (double)(splitmix(&st) >> 11) * 0x1.0p-53 * cum;
    qsort(ws->u, N, sizeof(double), cmp_double);
    uint32_t k = 0, i = 0;
    for (uint32_t d = 0; d < N; d++) {
        while (i < V - 1 && ws->cdf[i] <= ws->u[d]) i++;
        if (k && out->ids[k - 1] == i) out->vals[k - 1] += 1.0f;
        else { out->ids[k] = i; out->vals[k] = 1.0f; k++; }
    }
    out->n_samples = N;
    return k;
}

/* ---------------------------------------------------------------- driver */

int slim_sparsify_row(const slim_sparsifier *s, slim_sparse_ws *ws, const float *x,
                      uint32_t V, uint64_t stream, slim_dist *out, uint32_t *bad)
{
    /* NaN and +Inf are refused; -Inf (a masked token) is a valid logit */
    float m;
    if (row_scan(x, V, &m)) {
        for (uint32_t i = 0; i < V; i++)
            if (x[i] != x[i] || x[i] == INFINITY) { *bad = i; break; }
        return SLIM_EINVAL;
    }
    if (m == -INFINITY) { *bad = 0; return SLIM_EINVAL; }
    double lse = (double)m + log(sum_exp(x, V, m));
    out->lse = (float)lse;
    out->n_samples = 0;
    uint32_t k;
    switch (s->type) {
    case SLIM_SP_SAMPLE:
        out->k = sample_row(s, ws, x, V, lse, stream, out);
        return 0;
    case SLIM_SP_TOPP: {
        uint32_t n = select_topk_m(ws, x, V, slim_sparsifier_cap(s, V), ws->order, m);
        sort_by_value(x, ws->order, n);
        double mass = 0;
        for (k = 0; k < n;) {
            mass += exp((double)x[ws->order[k]] - lse);
            out->ids[k] = ws->order[k];
            k++;
            if (mass >= s->p) break;
        }
        break;
    }
    default:
        k = select_topk_m(ws, x, V, slim_sparsifier_cap(s, V), out->ids, m);
    }
    for (uint32_t j = 0; j < k; j++) out->vals[j] = x[out->ids[j]];
    out->k = k;
    return 0;
}
