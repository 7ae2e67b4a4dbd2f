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
#define SAMPLE_STRIDE 32

struct slim_sparse_ws {
    uint32_t V, cap;
    float *row;          /* [V] dtype conversion target */
    uint32_t *cand_id;   /* [V] selection candidates (ascending ids) */
    uint32_t *cand_key;  /* [V] their keys (fkey of the value) */
    int32_t *bins;       /* [V] selection pre-pass; radix scratch */
    float *samp;         /* [V/SAMPLE_STRIDE+1] every 32nd logit */
    uint64_t perm8[256]; /* compress permutations (lane numbers as bytes) */
    double *cdf;         /* [V] SAMPLE: running probability mass */
    double *u;           /* [cap] SAMPLE: sorted uniforms */
    uint32_t *order;     /* [cap] TOPP: ids sorted by value */
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
    for (unsigned m = 0; m < 256; m++) {  /* the set lanes of m, first */
        uint64_t p = 0;
        for (unsigned l = 0, n = 0; l < 8; l++)
            if (m >> l & 1) p |= (uint64_t)l << (8 * n++);
        ws->perm8[m] = p;
    }
    ws->row = malloc((size_t)V * sizeof(float));
    ws->cand_id = malloc((size_t)V * sizeof(uint32_t));
    ws->samp = malloc(((size_t)V / SAMPLE_STRIDE + 1) * sizeof(float));
    ws->cand_key = malloc((size_t)V * sizeof(uint32_t));
    ws->bins = malloc((size_t)V * sizeof(int32_t));
    ws->cdf = malloc((size_t)V * sizeof(double));
    ws->u = malloc((size_t)ws->cap * sizeof(double));
    ws->order = malloc((size_t)ws->cap * sizeof(uint32_t));
    if (!ws->row || !ws->cand_id || !ws->samp || !ws->cand_key || !ws->bins || !ws->cdf || !ws->u
        || !ws->order) {
        slim_sparse_ws_free(ws);
        return NULL;
    }
    return ws;
}

void slim_sparse_ws_free(slim_sparse_ws *ws)
{
    if (!ws) return;
    free(ws->row); free(ws->cand_id); free(ws->samp); free(ws->cand_key); free(ws->bins);
    free(ws->cdf); free(ws->u); free(ws->order);
    free(ws);
}

float *slim_sparse_ws_row(slim_sparse_ws *ws) { return ws->row; }

/* ------------------------------------------------------------ logsumexp */

/*
 * Three implementations of the row kernels.  The portable one uses GCC
 * vector extensions (8 float lanes: two SSE2 registers on the baseline; the
 * scan and bins kernels also get an "avx2" clone picked at load time),
 * since exp and select-style loops do not auto-vectorise without
 * -ffast-math, which this file must not use: three passes (scan, exp sum,
 * collect).  The fast ones are intrinsics in two passes, taken when the CPU
 * has them (CI builds with plain -O2, so all are compiled): AVX2 + FMA +
 * BMI2 (level 1), and AVX-512 (level 2: 16 lanes, mask registers, native
 * compress), whose output is bit-identical to level 1's — the same
 * exponential lane by lane, the same order of additions, exact selection —
 * so a store does not depend on the CPU that built it.
 * slim_sparsify_level() caps the level (tests compare them).
 */
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
#define VCLONES __attribute__((target_clones("avx2", "default")))
#define FAST __attribute__((target("avx2,fma,bmi2")))
#define FAST512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,bmi2,popcnt")))

static int level_cap = 2;

/* The level the kernels run at: the best the CPU has, at most level_cap
 * (libgcc fills the CPU model at load time; reading it is a load + test). */
static int sp_level(void)
{
    if (level_cap < 1 || !__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")
        || !__builtin_cpu_supports("bmi2"))
        return 0;
    if (level_cap < 2 || !__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512vl")
        || !__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512dq")
        || !__builtin_cpu_supports("popcnt"))
        return 1;
    return 2;
}

int slim_sparsify_level(int cap)
{
    level_cap = cap < 0 ? 2 : cap;
    return sp_level();
}

static int fast_cpu(void) { return sp_level() >= 1; }

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

/* Portable sum of exp(x[i] - m): float lanes sum at most 32 terms <= 1 per
 * block of 256; blocks add in double. */
static double sum_exp_portable(const float *x, uint32_t V, float m)
{
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

/*
 * exp(d) for d <= 0 on 8 lanes as 2^t, t = d*log2(e): n = round(t) by the
 * 1.5*2^23 trick (n sits in the low mantissa bits of t + BIG, so shifting
 * those bits left by 23 gives n's exponent field), f = t - n in [-1/2, 1/2]
 * by one FMA, 2^f by a degree-5 polynomial fitted for relative error
 * (9e-8; 1.7e-7 evaluated in float).  d is clamped at -86 (exp(-86) is
 * still a normal float, so the exponent arithmetic cannot wrap; -inf gives
 * 4e-38, nothing next to the maximum's 1).  13 vector operations.
 */
#define EXP2_C1 0.693147004f
#define EXP2_C2 0.240222424f
#define EXP2_C3 0.0555073395f
#define EXP2_C4 0.00967151392f
#define EXP2_C5 0.00132647192f
static inline __attribute__((always_inline)) FAST __m256 exp_le0_avx2(__m256 d)
{
    const __m256 big = _mm256_set1_ps(EXP_BIG), l2e = _mm256_set1_ps(1.44269504f);
    d = _mm256_max_ps(d, _mm256_set1_ps(-86.0f));
    __m256 tb = _mm256_fmadd_ps(d, l2e, big);
    __m256 n = _mm256_sub_ps(tb, big);
    __m256 f = _mm256_fmsub_ps(d, l2e, n);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(EXP2_C5), f, _mm256_set1_ps(EXP2_C4));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(EXP2_C3));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(EXP2_C2));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(EXP2_C1));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_castps_si256(tb), 23);
    return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), e));
}

static double sum_exp_collect_avx2(slim_sparse_ws *ws, const float *x, uint32_t V,
                                   float m, float t, uint32_t *nc);
static double sum_exp_collect_avx512(slim_sparse_ws *ws, const float *x, uint32_t V,
                                     float m, float t, uint32_t *nc);

double slim_logsumexp(const float *x, uint32_t V)
{
    float m = row_max(x, V);
    if (m == -INFINITY) return -INFINITY;
    uint32_t nc;
    int lv = sp_level();
    return (double)m + log(lv == 2 ? sum_exp_collect_avx512(NULL, x, V, m, INFINITY, &nc)
                           : lv ? sum_exp_collect_avx2(NULL, x, V, m, INFINITY, &nc)
                                : sum_exp_portable(x, V, m));
}

/* ------------------------------------------------------------ selection */

/*
 * Top-k in three steps, every one exact whatever the data:
 *   1. candidates: a threshold t with at least k logits >= t, and one pass
 *      collecting the ids (ascending) and keys of those logits into
 *      ws->cand_id / cand_key — t from a sample of every 32nd logit
 *      (sample_threshold; on the fast path the collection shares the
 *      exponential pass) or, when that fails, from bins below the maximum
 *      (cand_bins);
 *   2. kth_key: the k-th largest key (order-preserving integer image of the
 *      float) among the candidates, by a radix select on their keys, and how
 *      many of the keys equal to it are in (ties: the lowest ids);
 *   3. take: one compaction pass over the candidates keeps the winners in
 *      ascending id order (what the record encoder wants: it skips its sort).
 */

/* Order-preserving map float -> uint32 (larger float, larger key), and back. */
static inline uint32_t fkey(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t mask = (uint32_t)(-(int32_t)(u >> 31)) | 0x80000000u;
    return u ^ mask;
}

static inline float unfkey(uint32_t k)
{
    uint32_t u = k ^ ((k >> 31) ? 0x80000000u : 0xFFFFFFFFu);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Bins below a maximum m: bin(x) = floor((m - x) * (SEL_BINS - 1) / range),
 * clamped to SEL_BINS - 1; monotone in x. */
#define SEL_BINS 2048
#define SEL_RANGE 32.0f  /* nats below the max spread over the bins */

VCLONES static void row_bins(const float *x, uint32_t V, float m, float range, int32_t *bins)
{
    const float scale = (SEL_BINS - 1) / range;
    v8f mv = VSPLAT(m), lim = VSPLAT(range), sc = VSPLAT(scale), d;
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
        ds = ds < range ? ds : range;
        bins[i] = (int32_t)(ds * scale);
    }
}

/* Candidates by bins (any row, 0 < k < V): the bin holding the k-th
 * largest value and everything in better bins, ids and keys; *lo = their
 * smallest key. */
static uint32_t cand_bins(slim_sparse_ws *ws, const float *x, uint32_t V, uint32_t k, float m,
                          uint32_t *lo)
{
    row_bins(x, V, m, SEL_RANGE, ws->bins);
    /* four interleaved histograms: a run of equal bins does not serialise
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
    for (; cut < SEL_BINS - 1; cut++) {
        cum += h[0][cut] + h[1][cut] + h[2][cut] + h[3][cut];
        if (cum >= k) break;
    }
    /* only ~k of V values pass, so the branch is mostly predicted right */
    uint32_t nc = 0, l = UINT32_MAX;
    int32_t ic = (int32_t)cut;
    for (i = 0; i < V; i++)
        if (__builtin_expect(ws->bins[i] <= ic, 0)) {
            uint32_t key = fkey(x[i]);
            l = key < l ? key : l;
            ws->cand_key[nc] = key;
            ws->cand_id[nc++] = i;
        }
    *lo = l;
    return nc;
}

/* The permutation that moves the lanes set in mask m (8 bits) to the
 * front: one load from the workspace's table (cheaper than pdep/pext). */
#define COMPRESS_PERM(ws, m) \
    _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)&(ws)->perm8[m]))

/* Append the ids (idx) of the lanes of v that are >= tv to oid at n:
 * compress them to the front, store all 8, advance by the popcount — no
 * data-dependent branch.  n <= the first id, so the 8-wide store stays
 * inside the V slots. */
#define COLLECT8(ws, v, idx, tv, oid, n) do {                                            \
        unsigned m_ = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps((v), (tv), _CMP_GE_OQ)); \
        _mm256_storeu_si256((__m256i *)(void *)((oid) + (n)),                            \
                            _mm256_permutevar8x32_epi32((idx), COMPRESS_PERM(ws, m_)));  \
        (n) += (uint32_t)__builtin_popcount(m_);                                         \
    } while (0)

/* Ids i of x[0..V) with x[i] >= t, ascending, into ws->cand_id; returns
 * how many. */
FAST static uint32_t collect_ge_avx2(slim_sparse_ws *ws, const float *x, uint32_t V, float t)
{
    uint32_t *oid = ws->cand_id, n = 0, i = 0;
    __m256 tv = _mm256_set1_ps(t);
    __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), eight = _mm256_set1_epi32(8);
    for (; i + 8 <= V; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        COLLECT8(ws, v, idx, tv, oid, n);
        idx = _mm256_add_epi32(idx, eight);
    }
    for (; i < V; i++) { oid[n] = i; n += x[i] >= t; }
    return n;
}

static uint32_t collect_ge(slim_sparse_ws *ws, const float *x, uint32_t V, float t)
{
    if (fast_cpu()) return collect_ge_avx2(ws, x, V, t);
    uint32_t n = 0;
    for (uint32_t i = 0; i < V; i++) { ws->cand_id[n] = i; n += x[i] >= t; }
    return n;
}

/* The fast path's two passes over a row.  Pass 1: the maximum, whether
 * any value is NaN or +Inf (one compare: not less than +Inf), and every
 * SAMPLE_STRIDE-th (32nd) value into samp. */
FAST static uint32_t scan_avx2(const float *x, uint32_t V, float *max, float *samp)
{
    __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0, bad = _mm256_setzero_ps();
    const __m256 inf = _mm256_set1_ps(INFINITY);
    uint32_t i = 0, j = 0;
    for (; i + 32 <= V; i += 32) {
        __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
        __m256 v2 = _mm256_loadu_ps(x + i + 16), v3 = _mm256_loadu_ps(x + i + 24);
        _mm_store_ss(samp + j++, _mm256_castps256_ps128(v0));
        __m256 b01 = _mm256_or_ps(_mm256_cmp_ps(v0, inf, _CMP_NLT_UQ),
                                  _mm256_cmp_ps(v1, inf, _CMP_NLT_UQ));
        __m256 b23 = _mm256_or_ps(_mm256_cmp_ps(v2, inf, _CMP_NLT_UQ),
                                  _mm256_cmp_ps(v3, inf, _CMP_NLT_UQ));
        bad = _mm256_or_ps(bad, _mm256_or_ps(b01, b23));
        /* a NaN in v leaves the maximum alone (max_ps returns its second
         * operand when either is NaN) */
        m0 = _mm256_max_ps(v0, _mm256_max_ps(v2, m0));
        m1 = _mm256_max_ps(v1, _mm256_max_ps(v3, m1));
    }
    float l[8], m = -INFINITY;
    _mm256_storeu_ps(l, _mm256_max_ps(m0, m1));
    for (int q = 0; q < 8; q++) m = l[q] > m ? l[q] : m;
    uint32_t n = (uint32_t)_mm256_movemask_ps(bad);
    for (; i < V; i++) {
        if (!(i % SAMPLE_STRIDE)) samp[j++] = x[i];
        n += !(x[i] < INFINITY);
        m = x[i] > m ? x[i] : m;
    }
    *max = m;
    return n;
}

/* Pass 2: sum of exp(x - m) — two accumulators (16 float terms each per
 * block of 256), blocks add in double lanes — and, in the same pass unless
 * ws is NULL, the ids of the candidates >= t into ws->cand_id, *nc. */
FAST static double sum_exp_collect_avx2(slim_sparse_ws *ws, const float *x, uint32_t V,
                                        float m, float t, uint32_t *nc)
{
    uint32_t *oid = ws ? ws->cand_id : NULL;
    const __m256 mv = _mm256_set1_ps(m), tv = _mm256_set1_ps(t);
    __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), eight = _mm256_set1_epi32(8);
    __m256d dacc = _mm256_setzero_pd();
    uint32_t n = 0, i = 0;
    for (; i + 256 <= V; i += 256) {
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        for (uint32_t j = i; j < i + 256; j += 16) {
            __m256 v0 = _mm256_loadu_ps(x + j), v1 = _mm256_loadu_ps(x + j + 8);
            a0 = _mm256_add_ps(a0, exp_le0_avx2(_mm256_sub_ps(v0, mv)));
            a1 = _mm256_add_ps(a1, exp_le0_avx2(_mm256_sub_ps(v1, mv)));
            if (oid) {  /* loop-invariant: unswitched */
                COLLECT8(ws, v0, idx, tv, oid, n);
                idx = _mm256_add_epi32(idx, eight);
                COLLECT8(ws, v1, idx, tv, oid, n);
                idx = _mm256_add_epi32(idx, eight);
            }
        }
        a0 = _mm256_add_ps(a0, a1);
        dacc = _mm256_add_pd(dacc, _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a0)),
                                                 _mm256_cvtps_pd(_mm256_extractf128_ps(a0, 1))));
    }
    double l[4], s;
    _mm256_storeu_pd(l, dacc);
    s = (l[0] + l[1]) + (l[2] + l[3]);
    for (; i < V; i++) {
        s += exp1(x[i] - m);
        if (oid) { oid[n] = i; n += x[i] >= t; }
    }
    *nc = n;
    return s;
}

/* Level 2.  exp_le0_avx2 on 16 lanes: the same operations in the same
 * order, so every lane's result is bit-equal to level 1's. */
static inline __attribute__((always_inline)) FAST512 __m512 exp_le0_avx512(__m512 d)
{
    const __m512 big = _mm512_set1_ps(EXP_BIG), l2e = _mm512_set1_ps(1.44269504f);
    d = _mm512_max_ps(d, _mm512_set1_ps(-86.0f));
    __m512 tb = _mm512_fmadd_ps(d, l2e, big);
    __m512 n = _mm512_sub_ps(tb, big);
    __m512 f = _mm512_fmsub_ps(d, l2e, n);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(EXP2_C5), f, _mm512_set1_ps(EXP2_C4));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(EXP2_C3));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(EXP2_C2));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(EXP2_C1));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    __m512i e = _mm512_slli_epi32(_mm512_castps_si512(tb), 23);
    return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(p), e));
}

/* scan_avx2 on 16 lanes, 64 values a step (two samples).  The maximum may
 * differ from level 1's only in the sign of a zero, which changes no
 * result: x - m, the exponential and fkey(m == 0 ? 0 : m) do not see it. */
FAST512 static uint32_t scan_avx512(const float *x, uint32_t V, float *max, float *samp)
{
    __m512 m0 = _mm512_set1_ps(-INFINITY), m1 = m0;
    const __m512 inf = _mm512_set1_ps(INFINITY);
    unsigned bad = 0;
    uint32_t i = 0, j = 0;
    for (; i + 64 <= V; i += 64) {
        __m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16);
        __m512 v2 = _mm512_loadu_ps(x + i + 32), v3 = _mm512_loadu_ps(x + i + 48);
        _mm_store_ss(samp + j, _mm512_castps512_ps128(v0));
        _mm_store_ss(samp + j + 1, _mm512_castps512_ps128(v2));
        j += 2;
        bad |= (unsigned)(_mm512_cmp_ps_mask(v0, inf, _CMP_NLT_UQ)
                          | _mm512_cmp_ps_mask(v1, inf, _CMP_NLT_UQ))
               | (unsigned)(_mm512_cmp_ps_mask(v2, inf, _CMP_NLT_UQ)
                            | _mm512_cmp_ps_mask(v3, inf, _CMP_NLT_UQ));
        m0 = _mm512_max_ps(v0, _mm512_max_ps(v2, m0));  /* NaN: as in scan_avx2 */
        m1 = _mm512_max_ps(v1, _mm512_max_ps(v3, m1));
    }
    float m = _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
    uint32_t n = bad != 0;
    for (; i < V; i++) {
        if (!(i % SAMPLE_STRIDE)) samp[j++] = x[i];
        n += !(x[i] < INFINITY);
        m = x[i] > m ? x[i] : m;
    }
    *max = m;
    return n;
}

/* sum_exp_collect_avx2 on 16 lanes: lanes 0-7 of the accumulator hold
 * level 1's a0 (x[j..j+8)), lanes 8-15 its a1, added in the same order, so
 * the sum is bit-identical.  The candidates' values go to ws->cand_key
 * beside their ids (as float bits: topk_from makes them keys), since the
 * compress is one instruction here. */
FAST512 static double sum_exp_collect_avx512(slim_sparse_ws *ws, const float *x, uint32_t V,
                                          float m, float t, uint32_t *nc)
{
    uint32_t *oid = ws ? ws->cand_id : NULL, *oval = ws ? ws->cand_key : NULL;
    const __m512 mv = _mm512_set1_ps(m), tv = _mm512_set1_ps(t);
    __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i sixteen = _mm512_set1_epi32(16);
    __m256d dacc = _mm256_setzero_pd();
    uint32_t n = 0, i = 0;
    for (; i + 256 <= V; i += 256) {
        __m512 a = _mm512_setzero_ps();
        for (uint32_t j = i; j < i + 256; j += 64) {
            __m512 v0 = _mm512_loadu_ps(x + j), v1 = _mm512_loadu_ps(x + j + 16);
            __m512 v2 = _mm512_loadu_ps(x + j + 32), v3 = _mm512_loadu_ps(x + j + 48);
            a = _mm512_add_ps(a, exp_le0_avx512(_mm512_sub_ps(v0, mv)));
            a = _mm512_add_ps(a, exp_le0_avx512(_mm512_sub_ps(v1, mv)));
            a = _mm512_add_ps(a, exp_le0_avx512(_mm512_sub_ps(v2, mv)));
            a = _mm512_add_ps(a, exp_le0_avx512(_mm512_sub_ps(v3, mv)));
            if (oid) {
                /* four vectors' offsets from their counts, so the running
                 * count n is one add per 64 values: per vector, its chain
                 * (mask to register, popcount, add, the next store's
                 * address) had been the loop's bound (~16 % of it here).
                 * n <= j: the 16-wide stores stay inside the V slots, and
                 * each overwrites only the previous one's unused lanes. */
                __mmask16 k0 = _mm512_cmp_ps_mask(v0, tv, _CMP_GE_OQ);
                __mmask16 k1 = _mm512_cmp_ps_mask(v1, tv, _CMP_GE_OQ);
                __mmask16 k2 = _mm512_cmp_ps_mask(v2, tv, _CMP_GE_OQ);
                __mmask16 k3 = _mm512_cmp_ps_mask(v3, tv, _CMP_GE_OQ);
                uint32_t p1 = (uint32_t)__builtin_popcount(k0);
                uint32_t p2 = p1 + (uint32_t)__builtin_popcount(k1);
                uint32_t p3 = p2 + (uint32_t)__builtin_popcount(k2);
                uint32_t p4 = p3 + (uint32_t)__builtin_popcount(k3);
                uint32_t *oi = oid + n, *ov = oval + n;
                _mm512_storeu_si512((void *)oi, _mm512_maskz_compress_epi32(k0, idx));
                _mm512_storeu_ps((void *)ov, _mm512_maskz_compress_ps(k0, v0));
                idx = _mm512_add_epi32(idx, sixteen);
                _mm512_storeu_si512((void *)(oi + p1), _mm512_maskz_compress_epi32(k1, idx));
                _mm512_storeu_ps((void *)(ov + p1), _mm512_maskz_compress_ps(k1, v1));
                idx = _mm512_add_epi32(idx, sixteen);
                _mm512_storeu_si512((void *)(oi + p2), _mm512_maskz_compress_epi32(k2, idx));
                _mm512_storeu_ps((void *)(ov + p2), _mm512_maskz_compress_ps(k2, v2));
                idx = _mm512_add_epi32(idx, sixteen);
                _mm512_storeu_si512((void *)(oi + p3), _mm512_maskz_compress_epi32(k3, idx));
                _mm512_storeu_ps((void *)(ov + p3), _mm512_maskz_compress_ps(k3, v3));
                idx = _mm512_add_epi32(idx, sixteen);
                n += p4;
            }
        }
        __m256 a8 = _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1));
        dacc = _mm256_add_pd(dacc, _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a8)),
                                                 _mm256_cvtps_pd(_mm256_extractf128_ps(a8, 1))));
    }
    double l[4], s;
    _mm256_storeu_pd(l, dacc);
    s = (l[0] + l[1]) + (l[2] + l[3]);
    for (; i < V; i++) {
        s += exp1(x[i] - m);
        if (oid) { oid[n] = i; memcpy(oval + n, x + i, 4); n += x[i] >= t; }
    }
    *nc = n;
    return s;
}

/* Every 32nd logit into ws->samp (the portable path; scan_avx2 does it in
 * its pass).  Returns how many. */
static uint32_t gather_samples(slim_sparse_ws *ws, const float *x, uint32_t V)
{
    uint32_t j = 0;
    for (uint32_t i = 0; i < V; i += SAMPLE_STRIDE) ws->samp[j++] = x[i];
    return j;
}

/* The sample places the threshold well when it holds enough winners;
 * smaller cases are cheap with bins anyway. */
static int sampled_ok(uint32_t V, uint32_t k) { return V >= 4096 && k >= 64 && k <= V / 4; }

/*
 * A threshold from the sample ws->samp: bins of the samples below their
 * maximum; the bin holding their r-th largest, r chosen so that the
 * logits at or above its lower edge exceed k with a margin of 3 standard
 * deviations (+5 %), gives t.  +Inf when the sample gives nothing usable.
 * Whether at least k logits reach t is checked by the caller.
 */
static float sample_threshold(slim_sparse_ws *ws, uint32_t V, uint32_t k)
{
    uint32_t ns = (V + SAMPLE_STRIDE - 1) / SAMPLE_STRIDE, h[SEL_BINS];
    double ks = (double)k * ns / V;
    uint32_t r = (uint32_t)(ks * 1.05 + 3.0 * sqrt(ks) + 2.0);
    if (r >= ns) return INFINITY;
    /* bins below the sample's own maximum: a strong favourite far above
     * the rest must not push the sample's r-th into the clamp bin */
    const float *smp = ws->samp;
    float sm = row_max(smp, ns);
    /* 32 nats over the bins, or 256, or 2048 when the r-th is further down
     * (a cold row: the top 5 % can span more than 32 nats) */
    uint32_t cut = SEL_BINS - 1;
    float range = SEL_RANGE / 8, scale = 0;
    while (cut == SEL_BINS - 1 && (range *= 8) <= 2048) {
        scale = (SEL_BINS - 1) / range;
        row_bins(smp, ns, sm, range, ws->bins);
        memset(h, 0, sizeof h);
        for (uint32_t j = 0; j < ns; j++) h[ws->bins[j]]++;
        uint32_t cum = 0;
        for (cut = 0; cut < SEL_BINS - 1; cut++)
            if ((cum += h[cut]) >= r) break;
    }
    if (cut == SEL_BINS - 1) return INFINITY;
    /* half a bin lower: float rounding of the bin edge never costs a sample */
    return sm - ((float)cut + 1.5f) / scale;
}

/* Copy the keys a[c] with a[c] >> shift == want into out (may be a). */
FAST static uint32_t keep_shifted_avx2(const slim_sparse_ws *ws, const uint32_t *a, uint32_t *out,
                                       uint32_t n, int shift, uint32_t want)
{
    __m256i w = _mm256_set1_epi32((int)want);
    __m128i sh = _mm_cvtsi32_si128(shift);
    uint32_t m = 0, c = 0;
    for (; c + 8 <= n; c += 8) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(a + c));
        unsigned mk = (unsigned)_mm256_movemask_ps(
            _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_srl_epi32(v, sh), w)));
        /* m <= c: the store lands on slots already read */
        _mm256_storeu_si256((__m256i *)(void *)(out + m),
                            _mm256_permutevar8x32_epi32(v, COMPRESS_PERM(ws, mk)));
        m += (uint32_t)__builtin_popcount(mk);
    }
    for (; c < n; c++) { out[m] = a[c]; m += a[c] >> shift == want; }
    return m;
}

/* The remaining lanes of a 16-lane step at c of n (all 16 but at the end). */
#define TAIL16(c, n) ((__mmask16)((n) - (c) >= 16 ? 0xFFFFu : (1u << ((n) - (c))) - 1))
/* The first cnt lanes (a compressed vector's valid ones). */
#define FIRST16(cnt) ((__mmask16)((1u << (cnt)) - 1))

/* keep_shifted_avx2 on 16 lanes, native compress; the masked tail store
 * keeps the last step inside n (the compress-to-memory form is slow on
 * some CPUs, so it is not used). */
FAST512 static uint32_t keep_shifted_avx512(const uint32_t *a, uint32_t *out, uint32_t n,
                                            int shift, uint32_t want)
{
    const __m512i w = _mm512_set1_epi32((int)want);
    const __m128i sh = _mm_cvtsi32_si128(shift);
    uint32_t m = 0;
    for (uint32_t c = 0; c < n; c += 16) {
        __mmask16 in = TAIL16(c, n);
        __m512i v = _mm512_maskz_loadu_epi32(in, a + c);
        __mmask16 k = _mm512_mask_cmpeq_epi32_mask(in, _mm512_srl_epi32(v, sh), w);
        uint32_t cnt = (uint32_t)__builtin_popcount(k);
        /* m <= c: the store lands on slots already read */
        _mm512_mask_storeu_epi32(out + m, FIRST16(cnt), _mm512_maskz_compress_epi32(k, v));
        m += cnt;
    }
    return m;
}

static uint32_t keep_shifted(const slim_sparse_ws *ws, const uint32_t *a, uint32_t *out, uint32_t n,
                             int shift, uint32_t want)
{
    int lv = sp_level();
    if (lv == 2) return keep_shifted_avx512(a, out, n, shift, want);
    if (lv) return keep_shifted_avx2(ws, a, out, n, shift, want);
    uint32_t m = 0;
    for (uint32_t c = 0; c < n; c++) { out[m] = a[c]; m += a[c] >> shift == want; }
    return m;
}

/* The k-th largest key of the candidates (radix select: levels of up to 8
 * bits from the highest bit in which the bounds lo <= key <= hi differ).
 * Unless keyed (key[0..n) holds them already), the first level computes
 * the keys of x[cid[0..n)] into key (the caller needs them) and its
 * histogram in one pass; later levels narrow a copy in
 * tmp.  *ties = how many keys equal to the result belong to the top k,
 * *eq = how many there are. */
static uint32_t kth_key(const slim_sparse_ws *ws, const float *x, const uint32_t *cid,
                        uint32_t *key, uint32_t *tmp, uint32_t n, uint32_t k, uint32_t lo,
                        uint32_t hi, int keyed, uint32_t *ties, uint32_t *eq)
{
    uint32_t hist[4][256];
    int top = lo == hi ? -1 : 31 - __builtin_clz(lo ^ hi), first = !keyed;
    const uint32_t *a = key;
    if (!keyed && (top < 0 || n <= 16))
        for (uint32_t c = 0; c < n; c++) key[c] = fkey(x[cid[c]]);
    while (top >= 0 && n > 16) {
        int width = top + 1 < 8 ? top + 1 : 8, shift = top + 1 - width;
        uint32_t nb = 1u << width, msk = nb - 1, cum = 0, cut = nb;
        /* four histograms, summed after: the candidates crowd into a few
         * bins, and with one counter each increment waited for the last
         * (the keyed loop was ~80 % of this function's time); two still
         * left it 5-6 % of a dense ingest's CPU */
        for (int h = 0; h < 4; h++) memset(hist[h], 0, nb * sizeof hist[h][0]);
        uint32_t c = 0;
        if (first) {
            for (; c + 2 <= n; c += 2) {
                uint32_t k0 = fkey(x[cid[c]]), k1 = fkey(x[cid[c + 1]]);
                key[c] = k0;
                key[c + 1] = k1;
                hist[c & 2][(k0 >> shift) & msk]++;
                hist[1 + (c & 2)][(k1 >> shift) & msk]++;
            }
            for (; c < n; c++) {
                uint32_t kc = fkey(x[cid[c]]);
                key[c] = kc;
                hist[0][(kc >> shift) & msk]++;
            }
        } else {
            for (; c + 4 <= n; c += 4) {
                hist[0][(a[c] >> shift) & msk]++;
                hist[1][(a[c + 1] >> shift) & msk]++;
                hist[2][(a[c + 2] >> shift) & msk]++;
                hist[3][(a[c + 3] >> shift) & msk]++;
            }
            for (; c < n; c++) hist[0][(a[c] >> shift) & msk]++;
        }
        for (uint32_t b = 0; b < nb; b++) hist[0][b] += hist[1][b] + hist[2][b] + hist[3][b];
        first = 0;
        while (cut-- > 0) {
            if (cum + hist[0][cut] >= k) break;
            cum += hist[0][cut];
        }
        k -= cum;
        /* keep the cut bin's keys (in place after level 1): keys share
         * lo's bits above `top`, so the bin is one value of key >> shift */
        uint32_t want = ((lo >> shift) & ~msk) | cut;
        n = keep_shifted(ws, a, tmp, n, shift, want);
        lo = want << shift;  /* the bits the kept keys share from here on */
        a = tmp;
        top = shift - 1;
    }
    if (top < 0) { *ties = k; *eq = n; return a[0]; }  /* all equal */
    /* a few left: sort them descending */
    uint32_t s[16] = { 0 };
    for (uint32_t c = 0; c < n; c++) {
        uint32_t v = a[c], j = c;
        for (; j > 0 && s[j - 1] < v; j--) s[j] = s[j - 1];
        s[j] = v;
    }
    uint32_t kk = s[k - 1], above = 0, same = 0;
    for (uint32_t c = 0; c < n; c++) { above += s[c] > kk; same += s[c] == kk; }
    *ties = k - above;
    *eq = same;
    return kk;
}

/* Keep the candidates with key >= kk (ascending ids) in place; AVX2
 * compress as in COLLECT8.  Keys compare as signed after flipping the top
 * bit. */
FAST static uint32_t take_ge_avx2(const slim_sparse_ws *ws, uint32_t *cid, uint32_t *ckey,
                                  uint32_t nc, uint32_t kk)
{
    __m256i flip = _mm256_set1_epi32(INT32_MIN);
    __m256i th = _mm256_set1_epi32((int32_t)(kk ^ 0x80000000u) - 1);
    uint32_t n = 0, c = 0;
    for (; c + 8 <= nc; c += 8) {
        __m256i kv = _mm256_loadu_si256((const __m256i *)(const void *)(ckey + c));
        __m256i iv = _mm256_loadu_si256((const __m256i *)(const void *)(cid + c));
        unsigned m = (unsigned)_mm256_movemask_ps(
            _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_xor_si256(kv, flip), th)));
        __m256i perm = COMPRESS_PERM(ws, m);
        /* n <= c: the stores land on slots already read */
        _mm256_storeu_si256((__m256i *)(void *)(cid + n), _mm256_permutevar8x32_epi32(iv, perm));
        _mm256_storeu_si256((__m256i *)(void *)(ckey + n), _mm256_permutevar8x32_epi32(kv, perm));
        n += (uint32_t)__builtin_popcount(m);
    }
    for (; c < nc; c++) { cid[n] = cid[c]; ckey[n] = ckey[c]; n += ckey[c] >= kk; }
    return n;
}

/* Level 2: fkey of the n float bit patterns in a, in place. */
FAST512 static void keys_avx512(uint32_t *a, uint32_t n)
{
    const __m512i sign = _mm512_set1_epi32(INT32_MIN);
    for (uint32_t c = 0; c < n; c += 16) {
        __mmask16 in = TAIL16(c, n);
        __m512i u = _mm512_maskz_loadu_epi32(in, a + c);
        u = _mm512_xor_si512(u, _mm512_or_si512(_mm512_srai_epi32(u, 31), sign));
        _mm512_mask_storeu_epi32(a + c, in, u);
    }
}

/* Step 3 on level 2, ties included: the candidates with key > kk and the
 * first `ties` with key == kk, compressed in place, then their ids into ids
 * and values into vals (unless NULL).  pdep picks the lowest `left` lanes
 * of the tied ones. */
FAST512 static uint32_t take_avx512(uint32_t *cid, uint32_t *ckey, uint32_t nc, uint32_t kk,
                                    uint32_t ties, uint32_t *ids, float *vals)
{
    const __m512i kv = _mm512_set1_epi32((int)kk);
    uint32_t n = 0, left = ties;
    for (uint32_t c = 0; c < nc; c += 16) {
        __mmask16 in = TAIL16(c, nc);
        __m512i key = _mm512_maskz_loadu_epi32(in, ckey + c);
        __m512i id = _mm512_maskz_loadu_epi32(in, cid + c);
        unsigned eq = _mm512_mask_cmpeq_epi32_mask(in, key, kv);
        unsigned tie = _pdep_u32(left >= 16 ? 0xFFFFu : (1u << left) - 1, eq);
        __mmask16 take = (__mmask16)(_mm512_mask_cmpgt_epu32_mask(in, key, kv) | tie);
        uint32_t cnt = (uint32_t)__builtin_popcount(take);
        left -= (uint32_t)__builtin_popcount(tie);
        /* n <= c: the stores land on slots already read */
        _mm512_mask_storeu_epi32(cid + n, FIRST16(cnt), _mm512_maskz_compress_epi32(take, id));
        _mm512_mask_storeu_epi32(ckey + n, FIRST16(cnt), _mm512_maskz_compress_epi32(take, key));
        n += cnt;
    }
    const __m512i sign = _mm512_set1_epi32(INT32_MIN), ones = _mm512_set1_epi32(-1);
    for (uint32_t j = 0; j < n; j += 16) {
        __mmask16 in = TAIL16(j, n);
        _mm512_mask_storeu_epi32(ids + j, in, _mm512_maskz_loadu_epi32(in, cid + j));
        if (!vals) continue;
        /* unfkey: flip the sign bit of keys >= 2^31, every bit of the others */
        __m512i k = _mm512_maskz_loadu_epi32(in, ckey + j);
        __m512i fl = _mm512_or_si512(_mm512_xor_si512(_mm512_srai_epi32(k, 31), ones), sign);
        _mm512_mask_storeu_epi32(vals + j, in, _mm512_xor_si512(k, fl));
    }
    return n;
}

/* Steps 2 and 3 on nc >= k candidates: the k winners into ids (and their
 * values into vals when not NULL), ascending ids; ties at the k-th value
 * go to the lower ids. */
static uint32_t resolve(slim_sparse_ws *ws, const float *x, uint32_t nc, uint32_t k,
                        uint32_t lo, uint32_t hi, int keyed, uint32_t *ids, float *vals)
{
    uint32_t *cid = ws->cand_id, *ckey = ws->cand_key, ties, eq, n = 0;
    /* level 1 makes the keys here, not in the collecting pass: nc loads
     * from L1/L2 cost less than a key computation and a store per vector of
     * the row */
    uint32_t kk = kth_key(ws, x, cid, ckey, (uint32_t *)ws->bins, nc, k, lo, hi, keyed, &ties,
                          &eq);
    if (sp_level() == 2) return take_avx512(cid, ckey, nc, kk, ties, ids, vals);
    if (ties == eq && kk > 0 && fast_cpu()) n = take_ge_avx2(ws, cid, ckey, nc, kk);
    else
        for (uint32_t c = 0, t = 0; c < nc; c++) {
            /* branch-free: store always, advance on the condition */
            uint32_t key = ckey[c], same = key == kk;
            cid[n] = cid[c];
            ckey[n] = key;
            n += (key > kk) | (same & (t < ties));
            t += same;
        }
    memcpy(ids, cid, (size_t)n * sizeof *ids);
    if (vals)
        for (uint32_t j = 0; j < n; j++) vals[j] = unfkey(ckey[j]);
    return n;
}

/* Top k of x[0..V) with row maximum m into ids (and vals unless NULL),
 * given nc candidates already collected (fewer than k: none usable), their
 * values in ws->cand_key when vals_in (level 2's pass). */
static uint32_t topk_from(slim_sparse_ws *ws, const float *x, uint32_t V, uint32_t k,
                          uint32_t *ids, float *vals, float m, uint32_t nc, float t, int vals_in)
{
    if (k >= V) {
        for (uint32_t i = 0; i < V; i++) ids[i] = i;
        if (vals) memcpy(vals, x, (size_t)V * sizeof *vals);
        return V;
    }
    if (k == 0) return 0;
    /* key bounds of the candidates: x >= t gives fkey(x) >= fkey(t) but for
     * -0 >= +0; the float maximum may be -0 where +0 is present */
    uint32_t lo = fkey(t) - 1, hi = fkey(m == 0 ? 0.0f : m);
    int keyed = 1;
    if (nc < k) nc = cand_bins(ws, x, V, k, m, &lo);
    else if (vals_in) keys_avx512(ws->cand_key, nc);
    else keyed = 0;
    return resolve(ws, x, nc, k, lo, hi, keyed, ids, vals);
}

uint32_t slim_select_topk(slim_sparse_ws *ws, const float *x, uint32_t V,
                          uint32_t k, uint32_t *ids)
{
    uint32_t nc = 0;
    float t = INFINITY;
    if (k && k < V && sampled_ok(V, k)) {
        gather_samples(ws, x, V);
        t = sample_threshold(ws, V, k);
        if (t < INFINITY) nc = collect_ge(ws, x, V, t);
    }
    return topk_from(ws, x, V, k, ids, NULL, k && k < V ? row_max(x, V) : 0.0f, nc, t, 0);
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
    int lv = sp_level();
    uint32_t k = s->type == SLIM_SP_SAMPLE ? 0 : slim_sparsifier_cap(s, V), nc = 0;
    /* NaN and +Inf are refused; -Inf (a masked token) is a valid logit */
    float m, t = INFINITY;
    if (lv == 2 ? scan_avx512(x, V, &m, ws->samp) : lv ? scan_avx2(x, V, &m, ws->samp)
                                                        : row_scan(x, V, &m)) {
        for (uint32_t i = 0; i < V; i++)
            if (x[i] != x[i] || x[i] == INFINITY) { *bad = i; break; }
        return SLIM_EINVAL;
    }
    if (m == -INFINITY) { *bad = 0; return SLIM_EINVAL; }
    if (k < V && sampled_ok(V, k)) {
        if (!lv) gather_samples(ws, x, V);
        t = sample_threshold(ws, V, k);
    }
    double sum = lv == 2 ? sum_exp_collect_avx512(ws, x, V, m, t, &nc)
                 : lv ? sum_exp_collect_avx2(ws, x, V, m, t, &nc) : sum_exp_portable(x, V, m);
    if (!lv && t < INFINITY) nc = collect_ge(ws, x, V, t);
    double lse = (double)m + log(sum);
    out->lse = (float)lse;
    out->n_samples = 0;
    switch (s->type) {
    case SLIM_SP_SAMPLE:
        out->k = sample_row(s, ws, x, V, lse, stream, out);
        return 0;
    case SLIM_SP_TOPP: {
        uint32_t n = topk_from(ws, x, V, k, ws->order, NULL, m, nc, t, lv == 2);
        sort_by_value(x, ws->order, n);
        double mass = 0;
        for (k = 0; k < n;) {
            mass += exp((double)x[ws->order[k]] - lse);
            out->ids[k] = ws->order[k];
            k++;
            if (mass >= s->p) break;
        }
        for (uint32_t j = 0; j < k; j++) out->vals[j] = x[out->ids[j]];
        break;
    }
    default:  /* the selection gives the values too */
        k = topk_from(ws, x, V, k, out->ids, out->vals, m, nc, t, lv == 2);
    }
    out->k = k;
    return 0;
}
