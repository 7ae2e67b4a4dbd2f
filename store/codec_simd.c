/*
 * codec_simd.c — the record encoder's tokeniser for its common case, on
 * 16 entries at a time with AVX-512 (F, DQ, CD, BW, VL): a LOGITS position
 * at logprob:eps with a finite lse, entries in strictly ascending id order
 * (what the sparsifier hands over), every value <= about lse.  That is
 * every position of a dense ingest at the default precision, 1600 entries
 * each at top-5 % of V = 32000, where the scalar tokeniser cost ~190
 * instructions per entry.
 *
 * It must produce exactly the tokens and reconstructed values of the scalar
 * path in codec.c (tokenise_position / quantise / bin_of / ctx_of): the
 * same double arithmetic in the same order (no fused multiply-adds: the
 * Makefile's -std=c11 keeps GCC from contracting), so chunks do not depend
 * on the CPU that wrote them.  tests/test_codec_recon.c compares both paths
 * byte for byte.  Anything it does not handle — an escape (a value too far
 * from lse for the quantiser), a value above lse (qbase < 0), unsorted or
 * out-of-range ids, NaN / +Inf — makes it return 1 before anything is
 * counted; the caller then runs the scalar path on the position, which
 * also produces the error messages.
 */
#include "codec_internal.h"

#include <immintrin.h>
#include <math.h>

#define SIMD_TARGET __attribute__((target("avx512f,avx512dq,avx512cd,avx512bw,avx512vl")))

int slim__codec_simd_cpu(void)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")
           && __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512bw")
           && __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

/* bin_of on 16 lanes: symbol, raw bit count and raw bits of each v. */
static inline SIMD_TARGET void bin16(__m512i v, __m512i *sym, __m512i *nb, __m512i *bits)
{
    const __m512i one = _mm512_set1_epi32(1), two = _mm512_set1_epi32(2);
    __m512i e = _mm512_sub_epi32(_mm512_set1_epi32(31), _mm512_lzcnt_epi32(_mm512_or_si512(v, one)));
    __mmask16 big = _mm512_cmpge_epu32_mask(v, _mm512_set1_epi32(16));
    __m512i sh = _mm512_maskz_sub_epi32(big, e, two);
    __m512i m = _mm512_and_si512(_mm512_srlv_epi32(v, sh), _mm512_set1_epi32(3));
    __m512i sb = _mm512_add_epi32(_mm512_slli_epi32(e, 2), m);  /* 16 + 4 (e - 4) + m */
    *sym = _mm512_mask_blend_epi32(big, v, sb);
    *nb = sh;
    *bits = _mm512_and_si512(v, _mm512_sub_epi32(_mm512_sllv_epi32(one, sh), one));
}

/* ctx_of on 16 lanes. */
static inline SIMD_TARGET __m512i ctx16(__m512i x)
{
    __m512i bl = _mm512_sub_epi32(_mm512_set1_epi32(32),
                                  _mm512_lzcnt_epi32(_mm512_or_si512(x, _mm512_set1_epi32(1))));
    return _mm512_min_epu32(_mm512_srli_epi32(bl, CTX_SHIFT), _mm512_set1_epi32(NCTX - 1));
}

/*
 * quantise() of 8 values (logprob mode, ref finite) for the lanes in `live`:
 * q in int64 lanes and the value a decoder makes of it in *y.  Lanes that
 * would take an escape (out of range, or none of q0, q0 - 1, q0 + 1 within
 * eps) are set in *esc.
 */
static inline SIMD_TARGET __m512i quant8(__m256 xf, __mmask8 live, __m512d ref, __m512d step,
                                         __m512d inv, __m512d eps, __m256 *y, __mmask8 *esc)
{
    const __m512d absmask = _mm512_castsi512_pd(_mm512_set1_epi64(0x7fffffffffffffffll));
    const __m512i one = _mm512_set1_epi64(1);
    __m512d xd = _mm512_cvtps_pd(xf);
    __m512d r = _mm512_mul_pd(_mm512_sub_pd(ref, xd), inv);
    __mmask8 in = _mm512_mask_cmp_pd_mask(live, r, _mm512_set1_pd(-1073741824.0), _CMP_GT_OQ);
    in = _mm512_mask_cmp_pd_mask(in, r, _mm512_set1_pd(2147483647.0), _CMP_LT_OQ);
    __m512i t = _mm512_maskz_cvttpd_epi64(in, r);
    __m512d f = _mm512_sub_pd(r, _mm512_cvtepi64_pd(t));
    __mmask8 up = _mm512_cmp_pd_mask(f, _mm512_set1_pd(0.5), _CMP_GE_OQ);
    __mmask8 dn = _mm512_cmp_pd_mask(f, _mm512_set1_pd(-0.5), _CMP_LE_OQ);
    __m512i q = _mm512_mask_sub_epi64(_mm512_mask_add_epi64(t, up, t, one), dn,
                                      _mm512_mask_add_epi64(t, up, t, one), one);
    __m256 yv = _mm512_cvtpd_ps(_mm512_sub_pd(ref, _mm512_mul_pd(step, _mm512_cvtepi64_pd(q))));
    __m512d err = _mm512_and_pd(_mm512_sub_pd(_mm512_cvtps_pd(yv), xd), absmask);
    __mmask8 ok = _mm512_mask_cmp_pd_mask(in, err, eps, _CMP_LE_OQ);
    if (__builtin_expect(ok != in, 0)) {  /* q0 missed: q0 - 1, then q0 + 1 */
        for (int d = -1; d <= 1 && ok != in; d += 2) {
            __m512i qd = _mm512_add_epi64(q, _mm512_set1_epi64(d));
            __m256 yd = _mm512_cvtpd_ps(_mm512_sub_pd(ref, _mm512_mul_pd(step, _mm512_cvtepi64_pd(qd))));
            __m512d ed = _mm512_and_pd(_mm512_sub_pd(_mm512_cvtps_pd(yd), xd), absmask);
            __mmask8 okd = _mm512_mask_cmp_pd_mask(in & ~ok, ed, eps, _CMP_LE_OQ);
            q = _mm512_mask_mov_epi64(q, okd, qd);
            yv = _mm256_mask_mov_ps(yv, okd, yd);
            ok |= okd;
        }
    }
    *esc = live & ~ok;
    *y = yv;
    return q;
}

/* Tokens of 16 entries as 64-bit words in struct tok's layout (idx =
 * TOK_IDX(tab, sym), bits): the first 8 entries' words in *lo, the next 8
 * in *hi. */
static inline SIMD_TARGET void pack16(__m512i tab, __m512i sym, __m512i bits, __m512i *lo,
                                      __m512i *hi)
{
    __m512i w = _mm512_add_epi32(_mm512_mullo_epi32(tab, _mm512_set1_epi32(NVSYM)), sym);
    *lo = _mm512_or_si512(_mm512_cvtepu32_epi64(_mm512_castsi512_si256(w)),
                          _mm512_slli_epi64(_mm512_cvtepu32_epi64(_mm512_castsi512_si256(bits)), 32));
    *hi = _mm512_or_si512(_mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(w, 1)),
                          _mm512_slli_epi64(_mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(bits, 1)), 32));
}

_Static_assert(sizeof(tok) == 8, "tok is one 64-bit word");

SIMD_TARGET int slim__tokenise_logprob_simd(const uint32_t *ids, const float *vals, uint32_t k,
                                            uint32_t V, double ref_, double step_, double inv_,
                                            double eps_, tok *wa, tok *wb, uint32_t *rid,
                                            float *rv, uint64_t *rawbits)
{
    const __m512d ref = _mm512_set1_pd(ref_), step = _mm512_set1_pd(step_),
                  inv = _mm512_set1_pd(inv_), eps = _mm512_set1_pd(eps_);
    const __m512i vV = _mm512_set1_epi32((int)V), one = _mm512_set1_epi32(1);
    /* gap and value tokens of entry j interleaved, even entries to wa, odd to wb */
    const __m512i ev = _mm512_setr_epi64(0, 8, 2, 10, 4, 12, 6, 14);
    const __m512i od = _mm512_setr_epi64(1, 9, 3, 11, 5, 13, 7, 15);
    const __m512 ninf = _mm512_set1_ps(-INFINITY), pinf = _mm512_set1_ps(INFINITY);
    __m512i nbsum = _mm512_setzero_si512();
    for (uint32_t j = 0; j < k; j += 16) {
        uint32_t n = k - j < 16 ? k - j : 16;
        __mmask16 live = (__mmask16)((1u << n) - 1);
        __m512i id = _mm512_maskz_loadu_epi32(live, ids + j);
        /* the previous id: lane 0 of the first block has none (next = 0) */
        __m512i prev = j ? _mm512_maskz_loadu_epi32(live, ids + j - 1)
                         : _mm512_alignr_epi32(id, _mm512_set1_epi32(-1), 15);
        __m512i next = _mm512_add_epi32(prev, one);  /* -1 + 1 = 0 */
        __m512 x = _mm512_maskz_loadu_ps(live, vals + j);
        __mmask16 bad = _mm512_mask_cmpge_epu32_mask(live, id, vV)
                        | _mm512_mask_cmplt_epu32_mask(live, id, next)
                        | _mm512_mask_cmp_ps_mask(live, x, pinf, _CMP_NLT_UQ);
        if (bad) return 1;
        __mmask16 isinf = _mm512_mask_cmp_ps_mask(live, x, ninf, _CMP_EQ_OQ), fin = live & ~isinf;
        __m256 y0, y1;
        __mmask8 e0, e1;
        __m512i q0 = quant8(_mm512_castps512_ps256(x), (__mmask8)fin, ref, step, inv, eps, &y0, &e0);
        __m512i q1 = quant8(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)),
                            (__mmask8)(fin >> 8), ref, step, inv, eps, &y1, &e1);
        /* escapes and q < 0 (a value above lse: qbase) are the scalar path's */
        __mmask8 neg0 = _mm512_mask_cmplt_epi64_mask((__mmask8)fin, q0, _mm512_setzero_si512());
        __mmask8 neg1 = _mm512_mask_cmplt_epi64_mask((__mmask8)(fin >> 8), q1, _mm512_setzero_si512());
        if (e0 | e1 | neg0 | neg1) return 1;
        __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(q0)),
                                       _mm512_cvtepi64_epi32(q1), 1);
        __m512 y = _mm512_insertf32x8(_mm512_castps256_ps512(y0), y1, 1);
        y = _mm512_mask_mov_ps(y, isinf, x);  /* -inf decodes to -inf */
        _mm512_mask_storeu_epi32(rid + j, live, id);
        _mm512_mask_storeu_ps(rv + j, live, y);
        /* gap token: table TAB_GAP + ctx(next), bucket of id - next */
        __m512i gs, gn, gb, vs, vn, vb;
        bin16(_mm512_sub_epi32(id, next), &gs, &gn, &gb);
        __m512i gt = _mm512_add_epi32(ctx16(next), _mm512_set1_epi32(TAB_GAP));
        /* value token: table TAB_VAL + ctx(id), bucket of q + 2, or SYM_INF */
        bin16(q, &vs, &vn, &vb);
        vs = _mm512_mask_blend_epi32(isinf, _mm512_add_epi32(vs, _mm512_set1_epi32(2)),
                                     _mm512_set1_epi32(SYM_INF));
        vn = _mm512_maskz_mov_epi32(fin, vn);
        vb = _mm512_maskz_mov_epi32(fin, vb);
        __m512i vt = _mm512_add_epi32(ctx16(id), _mm512_set1_epi32(TAB_VAL));
        nbsum = _mm512_add_epi32(nbsum, _mm512_maskz_add_epi32(live, gn, vn));
        __m512i g_lo, g_hi, v_lo, v_hi;
        pack16(gt, gs, gb, &g_lo, &g_hi);
        pack16(vt, vs, vb, &v_lo, &v_hi);
        /* entries j.. j+7: 4 even (8 tokens) to wa, 4 odd to wb; then j+8.. */
        uint32_t na = (n + 1) / 2, nb_ = n / 2;  /* even / odd entries of the block */
        uint32_t a0 = na < 4 ? na : 4, b0 = nb_ < 4 ? nb_ : 4;
        _mm512_mask_storeu_epi64(wa, (__mmask8)((1u << (2 * a0)) - 1),
                                 _mm512_permutex2var_epi64(g_lo, ev, v_lo));
        _mm512_mask_storeu_epi64(wb, (__mmask8)((1u << (2 * b0)) - 1),
                                 _mm512_permutex2var_epi64(g_lo, od, v_lo));
        if (na > 4)
            _mm512_mask_storeu_epi64(wa + 8, (__mmask8)((1u << (2 * (na - 4))) - 1),
                                     _mm512_permutex2var_epi64(g_hi, ev, v_hi));
        if (nb_ > 4)
            _mm512_mask_storeu_epi64(wb + 8, (__mmask8)((1u << (2 * (nb_ - 4))) - 1),
                                     _mm512_permutex2var_epi64(g_hi, od, v_hi));
        wa += 2 * na;
        wb += 2 * nb_;
    }
    *rawbits += (uint64_t)_mm512_reduce_add_epi32(nbsum);
    return 0;
}
