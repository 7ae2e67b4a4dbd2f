/*
 * pstat.c — per-position statistics (entropy, tail mass): THE definition,
 * slim_dist_pstat.  query/pstats.c's slimq_stats is the double reference it
 * must agree with; this one runs at ingest on every position (1600 entries
 * at top-5 % of V = 32000), so it replaces libm's exp by a branch-free
 * polynomial the compiler can keep in registers.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "slim.h"
#include "codec.h"

/* The figures are stored in chunks and checked bit for bit by verify, so
 * every build must round alike: no fused multiply-adds (GCC contracts only
 * in GNU modes, the Makefile's -std=c11 turns it off; clang obeys this). */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

/* 2^(j/64), j = 0..63 (correctly rounded). */
static const double exp2_64[64] = {
    0x1.0000000000000p+0, 0x1.02c9a3e778061p+0, 0x1.059b0d3158574p+0, 0x1.0874518759bc8p+0,
    0x1.0b5586cf9890fp+0, 0x1.0e3ec32d3d1a2p+0, 0x1.11301d0125b51p+0, 0x1.1429aaea92de0p+0,
    0x1.172b83c7d517bp+0, 0x1.1a35beb6fcb75p+0, 0x1.1d4873168b9aap+0, 0x1.2063b88628cd6p+0,
    0x1.2387a6e756238p+0, 0x1.26b4565e27cddp+0, 0x1.29e9df51fdee1p+0, 0x1.2d285a6e4030bp+0,
    0x1.306fe0a31b715p+0, 0x1.33c08b26416ffp+0, 0x1.371a7373aa9cbp+0, 0x1.3a7db34e59ff7p+0,
    0x1.3dea64c123422p+0, 0x1.4160a21f72e2ap+0, 0x1.44e086061892dp+0, 0x1.486a2b5c13cd0p+0,
    0x1.4bfdad5362a27p+0, 0x1.4f9b2769d2ca7p+0, 0x1.5342b569d4f82p+0, 0x1.56f4736b527dap+0,
    0x1.5ab07dd485429p+0, 0x1.5e76f15ad2148p+0, 0x1.6247eb03a5585p+0, 0x1.6623882552225p+0,
    0x1.6a09e667f3bcdp+0, 0x1.6dfb23c651a2fp+0, 0x1.71f75e8ec5f74p+0, 0x1.75feb564267c9p+0,
    0x1.7a11473eb0187p+0, 0x1.7e2f336cf4e62p+0, 0x1.82589994cce13p+0, 0x1.868d99b4492edp+0,
    0x1.8ace5422aa0dbp+0, 0x1.8f1ae99157736p+0, 0x1.93737b0cdc5e5p+0, 0x1.97d829fde4e50p+0,
    0x1.9c49182a3f090p+0, 0x1.a0c667b5de565p+0, 0x1.a5503b23e255dp+0, 0x1.a9e6b5579fdbfp+0,
    0x1.ae89f995ad3adp+0, 0x1.b33a2b84f15fbp+0, 0x1.b7f76f2fb5e47p+0, 0x1.bcc1e904bc1d2p+0,
    0x1.c199bdd85529cp+0, 0x1.c67f12e57d14bp+0, 0x1.cb720dcef9069p+0, 0x1.d072d4a07897cp+0,
    0x1.d5818dcfba487p+0, 0x1.da9e603db3285p+0, 0x1.dfc97337b9b5fp+0, 0x1.e502ee78b3ff6p+0,
    0x1.ea4afa2a490dap+0, 0x1.efa1bee615a27p+0, 0x1.f50765b6e4540p+0, 0x1.fa7c1819e90d8p+0
};

/* exp(x) for x in [-708, 709]: x = (64 m + j) ln2/64 + r with |r| <= ln2/128,
 * exp(x) = 2^m * 2^(j/64) * exp(r), exp(r) by its Taylor series to r^5
 * (truncation r^6/720 < 4e-17), evaluated as Estrin's scheme so that the
 * dependency chain stays short (libm's exp is ~3x slower here).  The caller
 * keeps x in range (below -708 it is 0). */
static inline double exp_poly(double x)
{
    const double shift = 0x1.8p52, k64 = 92.332482616893658;  /* 64 / ln2 */
    const double ln2_hi = 0x1.62e42fefa3800p-7, ln2_lo = 0x1.ef35793c7673p-51;  /* ln2 / 64 */
    double t = x * k64 + shift;  /* round to nearest: N in t's low bits */
    double n = t - shift;
    uint64_t tb, sb;
    memcpy(&tb, &t, 8);
    memcpy(&sb, &shift, 8);
    int64_t N = (int64_t)(tb - sb);
    double r = (x - n * ln2_hi) - n * ln2_lo;
    double r2 = r * r;
    double p = (1.0 + r) + r2 * ((0.5 + r * (1.0 / 6)) + r2 * (1.0 / 24 + r * (1.0 / 120)));
    p *= exp2_64[N & 63];
    uint64_t pb;
    memcpy(&pb, &p, 8);
    pb += (uint64_t)((N - (N & 63)) / 64) << 52;
    memcpy(&p, &pb, 8);
    return p;
}

/* Below this exp(x) is subnormal or 0: counted as 0 (it changes the sums by
 * less than 1e-300). */
#define EXP_MIN -708.0

/* logsumexp of the stored values (the normaliser when lse is unknown). */
static double lse_stored(const float *v, uint32_t k)
{
    float m = -INFINITY;
    for (uint32_t j = 0; j < k; j++) m = v[j] > m ? v[j] : m;
    if (m == -INFINITY) return -INFINITY;
    double s = 0;
    for (uint32_t j = 0; j < k; j++) {
        double x = (double)v[j] - m;
        x = x < EXP_MIN ? EXP_MIN : x;
        s += exp_poly(x);
    }
    return m + log(s);
}

/* Two lanes of doubles (GCC/clang vector extensions; SSE2 on baseline
 * x86-64, NEON on arm64). */
typedef double v2d __attribute__((vector_size(16)));
typedef int64_t v2l __attribute__((vector_size(16)));
typedef uint64_t v2u __attribute__((vector_size(16)));
typedef float v2f __attribute__((vector_size(8)));

/* exp_poly on two lanes, x >= EXP_MIN (no NaN). */
static inline v2d exp2lanes(v2d x)
{
    const v2d shift = {0x1.8p52, 0x1.8p52};
    const double k64 = 92.332482616893658;
    const double ln2_hi = 0x1.62e42fefa3800p-7, ln2_lo = 0x1.ef35793c7673p-51;
    v2d t = x * k64 + shift;
    v2d n = t - shift;
    v2l N = (v2l)t - (v2l)shift;
    v2d r = (x - n * ln2_hi) - n * ln2_lo;
    v2d r2 = r * r;
    v2d p = (1.0 + r) + r2 * ((0.5 + r * (1.0 / 6)) + r2 * (1.0 / 24 + r * (1.0 / 120)));
    v2l j = N & 63;
    v2d tab = {exp2_64[j[0]], exp2_64[j[1]]};
    p *= tab;
    /* 2^m with m = (N - j) / 64 into the exponent: (N - j) << 46 == m << 52 */
    return (v2d)((v2u)p + ((v2u)(N - j) << 46));
}

/* Lanes below EXP_MIN (and -inf) become EXP_MIN: their exp, 3e-308, and
 * its term, 2e-305, vanish in the float results (a 0 there exactly). */
static inline v2d clamp_min(v2d x)
{
    const v2d lo = {EXP_MIN, EXP_MIN};
    v2l below = x < lo;
    return (v2d)(((v2l)x & ~below) | ((v2l)lo & below));
}

/* The last k - j (< 4) entries one at a time, added to the lanes' sums. */
static inline void sums_finish(const float *v, uint32_t j, uint32_t k, double lse, double s,
                               double hh, double *sum, double *h)
{
    for (; j < k; j++) {
        double a = (double)v[j] - lse;
        if (a >= EXP_MIN) {
            double p = exp_poly(a);
            s += p;
            hh -= p * a;
        }
    }
    *sum = s;
    *h = hh;
}

/* sum p and -sum p log p over entries, p = exp(v - lse), four entries at a
 * time; each lane sums its own entries, lanes added in a fixed order (the
 * result does not depend on the CPU's vector width). */
static void sums_logits(const float *v, uint32_t k, double lse, double *sum, double *h)
{
    v2d s0 = {0, 0}, s1 = {0, 0}, h0 = {0, 0}, h1 = {0, 0};
    uint32_t j = 0;
    for (; j + 4 <= k; j += 4) {
        v2f f0, f1;
        memcpy(&f0, v + j, sizeof f0);
        memcpy(&f1, v + j + 2, sizeof f1);
        v2d x0 = clamp_min(__builtin_convertvector(f0, v2d) - lse);
        v2d x1 = clamp_min(__builtin_convertvector(f1, v2d) - lse);
        v2d p0 = exp2lanes(x0), p1 = exp2lanes(x1);
        s0 += p0;
        s1 += p1;
        h0 -= p0 * x0;
        h1 -= p1 * x1;
    }
    double s = (s0[0] + s0[1]) + (s1[0] + s1[1]), hh = (h0[0] + h0[1]) + (h1[0] + h1[1]);
    sums_finish(v, j, k, lse, s, hh, sum, h);
}

/*
 * sums_logits on AVX-512 (F, DQ): the same arithmetic, bit for bit.  Eight
 * entries' exponentials at a time, then added to four double lanes in entry
 * order (lane l gets entries j = l mod 4 one after another, exactly as
 * s0/s1 and h0/h1 above), the 64-entry table read by permutes; the tail of
 * fewer than four entries as above.  tests/test_codec_pstat.c compares the
 * two on every kind of row.
 */
#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define PSTAT_SIMD 1
#define P512 __attribute__((target("avx512f,avx512dq,avx512vl")))

static P512 __m512d exp8lanes(__m512d x, const __m512d tab[8])
{
    const __m512d shift = _mm512_set1_pd(0x1.8p52);
    __m512d t = _mm512_add_pd(_mm512_mul_pd(x, _mm512_set1_pd(92.332482616893658)), shift);
    __m512d n = _mm512_sub_pd(t, shift);
    __m512i N = _mm512_sub_epi64(_mm512_castpd_si512(t), _mm512_castpd_si512(shift));
    __m512d r = _mm512_sub_pd(_mm512_sub_pd(x, _mm512_mul_pd(n, _mm512_set1_pd(0x1.62e42fefa3800p-7))),
                              _mm512_mul_pd(n, _mm512_set1_pd(0x1.ef35793c7673p-51)));
    __m512d r2 = _mm512_mul_pd(r, r);
    __m512d a = _mm512_add_pd(_mm512_set1_pd(0.5), _mm512_mul_pd(r, _mm512_set1_pd(1.0 / 6)));
    __m512d b = _mm512_add_pd(_mm512_set1_pd(1.0 / 24), _mm512_mul_pd(r, _mm512_set1_pd(1.0 / 120)));
    __m512d p = _mm512_add_pd(_mm512_add_pd(_mm512_set1_pd(1.0), r),
                              _mm512_mul_pd(r2, _mm512_add_pd(a, _mm512_mul_pd(r2, b))));
    __m512i j = _mm512_and_si512(N, _mm512_set1_epi64(63));
    __m512d t0 = _mm512_permutex2var_pd(tab[0], j, tab[1]), t1 = _mm512_permutex2var_pd(tab[2], j, tab[3]);
    __m512d t2 = _mm512_permutex2var_pd(tab[4], j, tab[5]), t3 = _mm512_permutex2var_pd(tab[6], j, tab[7]);
    __mmask8 b4 = _mm512_test_epi64_mask(j, _mm512_set1_epi64(16));
    __mmask8 b5 = _mm512_test_epi64_mask(j, _mm512_set1_epi64(32));
    __m512d tj = _mm512_mask_blend_pd(b5, _mm512_mask_blend_pd(b4, t0, t1), _mm512_mask_blend_pd(b4, t2, t3));
    p = _mm512_mul_pd(p, tj);
    return _mm512_castsi512_pd(_mm512_add_epi64(_mm512_castpd_si512(p),
                                                _mm512_slli_epi64(_mm512_sub_epi64(N, j), 46)));
}

static P512 void sums_logits_512(const float *v, uint32_t k, double lse, double *sum, double *h)
{
    __m512d tab[8];
    for (int i = 0; i < 8; i++) tab[i] = _mm512_loadu_pd(exp2_64 + 8 * i);
    const __m512d vl = _mm512_set1_pd(lse), lo = _mm512_set1_pd(EXP_MIN);
    __m256d s4 = _mm256_setzero_pd(), h4 = _mm256_setzero_pd();
    uint32_t j = 0;
    for (; j + 4 <= k; j += 8) {
        __mmask8 m = j + 8 <= k ? 0xff : 0x0f;
        __m512d x = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, v + j)), vl);
        x = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(x, lo, _CMP_LT_OQ), x, lo);
        __m512d p = exp8lanes(x, tab), px = _mm512_mul_pd(p, x);
        s4 = _mm256_add_pd(s4, _mm512_castpd512_pd256(p));
        h4 = _mm256_sub_pd(h4, _mm512_castpd512_pd256(px));
        if (m == 0xff) {
            s4 = _mm256_add_pd(s4, _mm512_extractf64x4_pd(p, 1));
            h4 = _mm256_sub_pd(h4, _mm512_extractf64x4_pd(px, 1));
        } else j -= 4;  /* a last group of four */
    }
    double sl[4], hl[4];
    _mm256_storeu_pd(sl, s4);
    _mm256_storeu_pd(hl, h4);
    double s = (sl[0] + sl[1]) + (sl[2] + sl[3]), hh = (hl[0] + hl[1]) + (hl[2] + hl[3]);
    sums_finish(v, j, k, lse, s, hh, sum, h);
}

static int simd_off;  /* set by tests, before any thread runs */

void slim__pstat_simd(int on) { simd_off = !on; }

static int simd_ok(void)
{
    /* libgcc fills the CPU model at load time: a load and a test */
    return !simd_off && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")
           && __builtin_cpu_supports("avx512vl");
}
#else
void slim__pstat_simd(int on) { (void)on; }
#endif

void slim__pstat_sums(const float *v, uint32_t k, double lse, int simd, double *sum, double *h)
{
#ifdef PSTAT_SIMD
    if (simd && simd_ok()) {
        sums_logits_512(v, k, lse, sum, h);
        return;
    }
#endif
    (void)simd;
    sums_logits(v, k, lse, sum, h);
}

/* SAMPLED: p = c / N exactly; -sum p log p = log N - (1/N) sum c log c. */
static void sums_sampled(const float *v, uint32_t k, uint32_t N, double *sum, double *h)
{
    double sc = 0, sclc = 0;
    for (uint32_t j = 0; j < k; j++) {
        double c = v[j];
        if (c > 0) {
            sc += c;
            sclc += c * log(c);
        }
    }
    *sum = sc / N;
    *h = sc / N * log((double)N) - sclc / N;
}

void slim_dist_pstat(const slim_dist *d, int kind, slim_pstat *out)
{
    double sum = 0, h = 0;
    int tail_known = 1;
    if (kind == SLIM_KIND_SAMPLED) {
        if (d->n_samples) sums_sampled(d->vals, d->k, d->n_samples, &sum, &h);
    } else {
        double lse = d->lse;
        if (isnan(d->lse)) {
            lse = lse_stored(d->vals, d->k);
            tail_known = 0;
        }
        if (lse > -INFINITY && lse < INFINITY) {
#ifdef PSTAT_SIMD
            if (simd_ok()) sums_logits_512(d->vals, d->k, lse, &sum, &h);
            else
#endif
            sums_logits(d->vals, d->k, lse, &sum, &h);
        }
    }
    /* Quantised values can sum a hair above 1: a negative tail is 0. */
    double t = 1 - sum;
    if (t < 0 || !tail_known) t = 0;
    if (t > 1) t = 1;
    if (t > 0) h -= t * log(t);
    out->entropy = (float)h;
    out->tail_mass = (float)t;
}
