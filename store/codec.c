/*
 * codec.c — the record codec: one chunk = several consecutive positions of
 * one sequence, entropy coded with a static per-chunk model.  The byte layout
 * is docs/FORMAT.md, "Record chunks"; read that first.
 *
 * In short: entries of a position are coded in ascending id order as
 * (gap to the previous id, quantised value), each integer split into a
 * bucket symbol plus raw low bits (as in deflate/zstd), the symbols coded
 * by rANS with 12-bit frequencies under contexts that depend on the id
 * (low ids are dense in the top set, high ids sparse — ids are ordered by
 * frequency in BPE vocabularies).  Positions are grouped into frames of
 * about FRAME_ENTRIES entries, each with its own rANS states, so a point
 * read decodes one frame, not the chunk.
 *
 * This file: lifecycle and the encoder.  The decoder is codec_decode.c,
 * shared definitions codec_internal.h, the rANS coder codec_rans.h.
 */
#include "codec_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

int slim__codec_fail(slim_codec *c, int rc, const char *fmt, ...)
{
    if (c) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, sizeof c->err, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* ---------------------------------------------------------- lifecycle */

int slim_codec_new(slim_codec **out)
{
    slim_codec *c = calloc(1, sizeof *c);
    *out = c;
    if (!c) return SLIM_ENOMEM;
    for (uint32_t n = 1; n < NCLOG; n++) c->clog[n] = (float)(n * log2((double)n));
    /* a raw-only token's symbol step changes nothing (frequency 4096), so
     * the frame encoder needs no branch on the token's kind */
    for (unsigned n = 0; n < 32; n++) {
        rans_esym_init(&c->esym[TOK_RAW][n], 0, RANS_TOT);
        rans_esym_raw(&c->esym[TOK_RAW][n], n);
    }
    for (int t = 0; t < NTAB; t++) c->et[t].count = c->ecount[t];
    const char *sc = getenv("SLIM_CODEC_SCALAR");
    slim_codec_set_simd(c, !(sc && *sc && strcmp(sc, "0") != 0));
    return 0;
}

void slim_codec_set_simd(slim_codec *c, int on)
{
    c->simd = on && slim__codec_simd_cpu();
}

void slim_codec_free(slim_codec *c)
{
    if (!c) return;
    free(c->toks[0]); free(c->toks[1]); free(c->pairs); free(c->pairs2); free(c->q);
    free(c->kpos); free(c->ftok); free(c->fbuf); free(c->tmp); free(c->flen);
    free(c->tab_cache); free(c->sk); free(c->sk2); free(c->sv); free(c->cnt); free(c->fstart); free(c->logq);
    free(c->clogx); free(c->rd); free(c->rids); free(c->rvals); free(c->rps);
    free(c->pids); free(c->pvals); free(c->pdist);
    free(c);
}

/* symbol_bits is computed here, from the last chunk's tables (still in c):
 * only benchmarks and tests ask, and a pass over every table per chunk was
 * ~1 % of a dense ingest's encoder time. */
void slim_codec_last_stats(const slim_codec *c, slim_codec_stats *out)
{
    *out = c->stats;
    if (!c->rnpos) return;
    for (int t = 0; t < NTAB; t++) {
        const etab *m = &c->et[t];
        if (!m->total) continue;
        double clogc = 0;
        for (uint32_t s = 0; s < m->nsym; s++)
            if (m->count[s] > 1) clogc += m->count[s] * log2((double)m->count[s]);
        out->symbol_bits += m->total * log2((double)m->total) - clogc;
    }
}

const char *slim_codec_errmsg(const slim_codec *c)
{
    return c && c->err[0] ? c->err : "no error";
}

/* Sizes: per entry <= 2 symbols of <= 12 bits + <= 64 raw bits (11 bytes);
 * per position a head of <= 112 bits, a k varint and a frame's overhead. */
size_t slim_chunk_bound(uint32_t n, size_t entries)
{
    return HEADER_MAX + TABLES_MAX + CHECKSUM_BYTES + 1 + 56 * (size_t)n + 12 * entries;
}

/* ------------------------------------------------------------- encoder */

typedef struct enc {
    const slim_chunk_params *pp;
    int mode;                 /* SLIM_PREC_*, 0 for SAMPLED */
    double eps, step;
    double inv_step;          /* 1 / step: q's first guess by a multiply */
    uint32_t g;               /* group counter inside the current frame */
    uint64_t rawbits;
    uint32_t nsimd;           /* positions the SIMD tokeniser took */
} enc;

/* Largest n*log2(n) table kept for counts >= NCLOG (8 bytes an entry);
 * past it, log2 is called (same values either way). */
#define CLOGX_MAX (1u << 18)

/* n*log2(n) for n >= NCLOG: extend c->clogx (amortised, once per codec) or
 * compute it when the table cannot grow.  Identical values to a direct
 * call, so chunk boundaries do not depend on the table. */
static __attribute__((noinline)) double clog_big(slim_codec *c, uint32_t n)
{
    uint32_t i = n - NCLOG;
    if (i < CLOGX_MAX) {
        uint32_t want = c->clogx_n ? c->clogx_n * 2 : 4096;
        while (want <= i) want *= 2;
        if (want > CLOGX_MAX) want = CLOGX_MAX;
        double *t = realloc(c->clogx, want * sizeof *t);
        if (t) {
            for (uint32_t j = c->clogx_n; j < want; j++) {
                uint32_t m = NCLOG + j;
                t[j] = m * log2((double)m);
            }
            c->clogx = t;
            c->clogx_n = want;
            return t[i];
        }
    }
    return n * log2((double)n);
}

static inline double clog2c(slim_codec *c, uint32_t n)
{
    if (n < NCLOG) return c->clog[n];
    return n - NCLOG < c->clogx_n ? c->clogx[n - NCLOG] : clog_big(c, n);
}

/* Only the count: total and nsym come from table_sums when needed (a
 * read-modify-write per symbol on them was a dependency chain). */
static inline void count_sym(etab *t, unsigned s)
{
    t->count[s]++;
}

/* ecountx into ecount (and zeroed): before the counts are read.  Several
 * times per chunk (estimate_bytes), 17 KB an array: vectorised (O3 with
 * AVX-512 and AVX2 clones), as a scalar loop it was 1 % of a dense ingest's
 * CPU. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
__attribute__((target_clones("avx512f", "avx2", "default"), optimize("O3")))
#endif
static void counts_merge(slim_codec *c)
{
    uint32_t *a = &c->ecount[0][0], *x = &c->ecountx[0][0][0];
    const size_t n = (size_t)NTAB * NVSYM;
    for (size_t i = 0; i < n; i++) {
        a[i] += x[i] + x[n + i] + x[2 * n + i];
        x[i] = x[n + i] = x[2 * n + i] = 0;
    }
}

static void table_sums(etab *t)
{
    uint32_t total = 0, nsym = 0;
    for (uint32_t s = 0; s < NVSYM; s++) {
        total += t->count[s];
        if (t->count[s]) nsym = s + 1;
    }
    t->total = total;
    t->nsym = nsym;
}

/* sum(count * log2 count) of a table, for size estimates: recomputed when
 * an estimate is wanted (a few times per chunk), not kept per symbol. */
static double table_clogc(slim_codec *c, const etab *t)
{
    double sum = 0;
    for (uint32_t s = 0; s < t->nsym; s++)
        if (t->count[s] > 1) sum += clog2c(c, t->count[s]);
    return sum;
}

/* Where a position's tokens go: write pointers into the two states' token
 * arrays and the raw bit count, kept in locals while a position is
 * tokenised (through c and e every store to a token would force them to be
 * reloaded: a token's byte fields may alias anything). */
typedef struct emitter {
    tok *w[2];
    uint64_t rawbits;
    etab *et;
} emitter;

static inline void emit_tok(emitter *m, unsigned st, unsigned tab, unsigned s, uint32_t bits)
{
    tok *t = m->w[st]++;
    t->idx = TOK_IDX(tab, s);
    t->bits = bits;
}

static inline void emit_sym(emitter *m, unsigned tab, unsigned st, unsigned s)
{
    emit_tok(m, st, tab, s, 0);
    count_sym(&m->et[tab], s);
}

static inline void emit_raw(emitter *m, unsigned st, unsigned n, uint32_t v)
{
    m->rawbits += n;
    if (n > 31) {   /* a step takes at most 31 raw bits: split 32 as 16 + 16 */
        emit_tok(m, st, TOK_RAW, 16, v & 0xffff);
        n -= 16; v >>= 16;
    }
    if (n) emit_tok(m, st, TOK_RAW, n, v);
}

/* A bucketed integer: its symbol and its nb <= 29 raw bits in one token. */
static inline void emit_int(emitter *m, unsigned tab, unsigned st, unsigned off, uint32_t v)
{
    unsigned nb, s = bin_of(v, &nb);
    emit_tok(m, st, tab, s + off, v & ((1u << nb) - 1));
    count_sym(&m->et[tab], s + off);
    m->rawbits += nb;
}

/* The value a quantised q decodes to (decoder's exact arithmetic). */
static inline float q_logprob(double ref, double step, int64_t q)
{
    return (float)(ref - step * (double)q);
}
static inline float q_prob(double ref, double step, int64_t q)
{
    return q == 0 ? -INFINITY : (float)(ref + log((double)q * step));
}

/* llround(r) for |r| < 2^31 without the libm call: the truncation and the
 * fraction r - t are exact there, so ties round away from zero as in llround. */
static inline int64_t round_small(double r)
{
    int64_t t = (int64_t)r;
    double f = r - (double)t;
    return t + (f >= 0.5) - (f <= -0.5);
}

/* Quantise x under precision e; Q_RAW when the bound cannot be met.
 * *rec gets the value a decoder makes of the result. */
static int64_t quantise(const enc *e, double ref, float x, float *rec)
{
    *rec = x;  /* -inf and raw escapes decode to the input bits */
    if (x == -INFINITY) return Q_INF;
    double xd = x;
    if (e->mode == SLIM_PREC_LOGPROB) {
        double r = (ref - xd) * e->inv_step;
        if (!(r > -1073741824.0 && r < 2147483647.0)) return Q_RAW;
        int64_t q0 = round_small(r);
        for (int d = 0; d < 3; d++) {
            int64_t q = q0 + (d == 1 ? -1 : d == 2 ? 1 : 0);
            float y = q_logprob(ref, e->step, q);
            if (fabs((double)y - xd) <= e->eps) {
                *rec = y;
                return q;
            }
        }
        return Q_RAW;
    }
    double p = exp(xd - ref), r = p * e->inv_step;
    if (!(r < 2147483647.0)) return Q_RAW;
    int64_t q0 = round_small(r);
    for (int d = 0; d < 3; d++) {
        int64_t q = q0 + (d == 1 ? -1 : d == 2 ? 1 : 0);
        if (q < 0) continue;
        float y = q_prob(ref, e->step, q);
        if (fabs(exp((double)y - ref) - p) <= e->eps) {
            *rec = y;
            return q;
        }
    }
    return Q_RAW;
}

/* Sort a position's entries by id into c->pairs (id << 32 | value bits) and
 * validate them.  Returns the sorted array. */
static int sort_position(slim_codec *c, const slim_dist *d, uint32_t V,
                         uint32_t pos, int kind, uint64_t **sorted)
{
    uint32_t k = d->k;
    if (k > V) return fail(c, SLIM_EINVAL, "position %u: k %u > V %u", pos, k, V);
    if (grow((void **)&c->pairs, &c->pairs_cap, k + 1, sizeof *c->pairs) ||
        grow((void **)&c->pairs2, &c->pairs2_cap, k + 1, sizeof *c->pairs2) ||
        grow((void **)&c->q, &c->q_cap, k + 1, sizeof *c->q))
        return fail(c, SLIM_ENOMEM, "out of memory");
    int is_sorted = 1;
    for (uint32_t j = 0; j < k; j++) {
        uint32_t id = d->ids[j];
        float v = d->vals[j];
        if (id >= V) return fail(c, SLIM_EINVAL, "position %u: id %u >= V %u", pos, id, V);
        if (isnan(v) || v == INFINITY)
            return fail(c, SLIM_EINVAL, "position %u: id %u: value %g", pos, id, (double)v);
        if (kind == SLIM_KIND_SAMPLED && !(v >= 0 && v <= 4294967040.0f && v == floorf(v)))
            return fail(c, SLIM_EINVAL, "position %u: id %u: count %g is not a non-negative integer",
                        pos, id, (double)v);
        c->pairs[j] = (uint64_t)id << 32 | f2u(v);
        if (j && id <= d->ids[j - 1]) is_sorted = 0;
    }
    uint64_t *a = c->pairs;
    if (!is_sorted) {
        if (k <= 32) insertion_u64(a, k);
        else a = radix_u64(a, c->pairs2, k, 32, bitlen(V - 1));
        for (uint32_t j = 1; j < k; j++)
            if ((a[j] >> 32) == (a[j - 1] >> 32))
                return fail(c, SLIM_EINVAL, "position %u: id %u appears twice", pos,
                            (uint32_t)(a[j] >> 32));
    }
    *sorted = a;
    return 0;
}

/* Head of a LOGITS position in a quantised mode: ref and qbase; fills c->q
 * and the reconstructed values rv[k]. */
static void head_quantised(slim_codec *c, const enc *e, emitter *m, const slim_dist *d,
                           const uint64_t *a, unsigned st, float *rv)
{
    uint32_t k = d->k;
    float ref = d->lse;
    if (!isfinite(ref)) {
        ref = 0;
        int any = 0;
        for (uint32_t j = 0; j < k; j++) {
            float v = u2f((uint32_t)a[j]);
            if (v != -INFINITY && (!any || v > ref)) { ref = v; any = 1; }
        }
        emit_raw(m, st, 32, f2u(ref));
    }
    int64_t qbase = 0;
    for (uint32_t j = 0; j < k; j++) {
        int64_t q = quantise(e, ref, u2f((uint32_t)a[j]), &rv[j]);
        c->q[j] = q;
        if (q != Q_INF && q != Q_RAW && q < qbase) qbase = q;
    }
    /* qbase < 0 only when a value exceeds lse (inconsistent input): shift */
    emit_int(m, TAB_MISC, st, 0, (uint32_t)(-qbase));
    if (qbase < 0)
        for (uint32_t j = 0; j < k; j++)
            if (c->q[j] != Q_INF && c->q[j] != Q_RAW) c->q[j] -= qbase;
}

/*
 * The common case on the AVX-512 tokeniser (codec_simd.c): a logprob
 * position with a finite lse.  The head's three tokens (lse as two raw
 * halves, qbase 0) go first on the head's state; entry j on state
 * (g + 1 + j) & 1.  Returns 1, having counted nothing, when the position
 * needs the scalar path.
 */
static int tokenise_fast(slim_codec *c, enc *e, const slim_dist *d, uint32_t *rid, float *rv)
{
    uint32_t k = d->k, g = e->g;
    unsigned st = g & 1;
    tok *wh = c->toks[st] + c->ntoks[st], *wo = c->toks[st ^ 1] + c->ntoks[st ^ 1];
    uint64_t rawbits = 32;
    if (slim__tokenise_logprob_simd(d->ids, d->vals, k, e->pp->vocab_size, (double)d->lse, e->step,
                                    e->inv_step, e->eps, wo, wh + 3, rid, rv, &rawbits))
        return 1;
    uint32_t lb = f2u(d->lse);
    wh[0] = (tok){TOK_IDX(TOK_RAW, 16), lb & 0xffff};
    wh[1] = (tok){TOK_IDX(TOK_RAW, 16), lb >> 16};
    wh[2] = (tok){TOK_IDX(TAB_MISC, 0), 0};
    uint32_t *cnt = &c->ecount[0][0], *cx = &c->ecountx[0][0][0];
    const size_t nc = (size_t)NTAB * NVSYM;
    cnt[TOK_IDX(TAB_MISC, 0)]++;
    /* Counted into four arrays side by side: a state's tokens alternate
     * gap, value, gap, value, and a symbol repeats often, so one array was
     * a chain of store-to-load forwards (2.3 cycles a count, 5 % of a dense
     * ingest's CPU), one per state still one at every other token; here the
     * same array comes back every fourth token of a state. */
    size_t nh = 2 * (size_t)(k / 2), no = 2 * (size_t)((k + 1) / 2), i = 0;
    const tok *hb = wh + 3;
    for (; i + 4 <= nh; i += 4) {
        cnt[hb[i].idx]++; cnt[hb[i + 1].idx]++;
        cx[wo[i].idx]++; cx[wo[i + 1].idx]++;
        cx[nc + hb[i + 2].idx]++; cx[nc + hb[i + 3].idx]++;
        cx[2 * nc + wo[i + 2].idx]++; cx[2 * nc + wo[i + 3].idx]++;
    }
    for (; i < nh; i++) { cnt[hb[i].idx]++; cx[wo[i].idx]++; }
    for (; i < no; i++) cx[wo[i].idx]++;
    nh += 3;
    c->ntoks[st] += nh;
    c->ntoks[st ^ 1] += no;
    e->rawbits += rawbits;
    e->g = g + 1 + k;
    e->nsimd++;
    return 0;
}

/* Tokens of one position; rid/rv[k] get its entries as a decoder will
 * reconstruct them (id order). */
static int tokenise_position(slim_codec *c, enc *e, const slim_dist *d, uint32_t pos,
                             uint32_t *rid, float *rv)
{
    const slim_chunk_params *pp = e->pp;
    uint32_t k = d->k;
    if (grow((void **)&c->toks[0], &c->toks_cap[0], c->ntoks[0] + 8 + (size_t)k * 6, sizeof(tok)) ||
        grow((void **)&c->toks[1], &c->toks_cap[1], c->ntoks[1] + 8 + (size_t)k * 6, sizeof(tok)))
        return fail(c, SLIM_ENOMEM, "out of memory");
    if (c->simd && pp->kind == SLIM_KIND_LOGITS && e->mode == SLIM_PREC_LOGPROB && k > 0
        && k <= pp->vocab_size && isfinite(d->lse) && tokenise_fast(c, e, d, rid, rv) == 0)
        return 0;
    uint64_t *a = NULL;
    int rc = sort_position(c, d, pp->vocab_size, pos, pp->kind, &a);
    if (rc) return rc;
    emitter em = {{c->toks[0] + c->ntoks[0], c->toks[1] + c->ntoks[1]}, 0, c->et}, *m = &em;
    uint32_t g = e->g;  /* group counter: the state of group g is g & 1 */
    unsigned st = g++ & 1;
    emit_raw(m, st, 32, f2u(d->lse));
    uint32_t maxkey = 0;
    if (pp->kind == SLIM_KIND_SAMPLED) {
        emit_int(m, TAB_MISC, st, 0, d->n_samples);
    } else if (e->mode == SLIM_PREC_LOSSLESS) {
        for (uint32_t j = 0; j < k; j++) {
            uint32_t o = ford((uint32_t)a[j]);
            if (o > maxkey) maxkey = o;
        }
        emit_raw(m, st, 32, maxkey);
    } else {
        head_quantised(c, e, m, d, a, st, rv);
    }
    int exact = pp->kind == SLIM_KIND_SAMPLED || e->mode == SLIM_PREC_LOSSLESS;
    uint32_t next = 0;
    for (uint32_t j = 0; j < k; j++) {
        uint32_t id = (uint32_t)(a[j] >> 32), vb = (uint32_t)a[j];
        rid[j] = id;
        if (exact) rv[j] = u2f(vb);
        st = g++ & 1;
        emit_int(m, TAB_GAP + ctx_of(next), st, 0, id - next);
        next = id + 1;
        unsigned vt = TAB_VAL + ctx_of(id);
        if (pp->kind == SLIM_KIND_SAMPLED) {
            emit_int(m, vt, st, 0, (uint32_t)u2f(vb));
        } else if (e->mode == SLIM_PREC_LOSSLESS) {
            emit_int(m, vt, st, 0, maxkey - ford(vb));
        } else if (c->q[j] == Q_INF) {
            emit_sym(m, vt, st, SYM_INF);
        } else if (c->q[j] == Q_RAW) {
            emit_sym(m, vt, st, SYM_RAW);
            emit_raw(m, st, 32, vb);
        } else {
            emit_int(m, vt, st, 2, (uint32_t)c->q[j]);
        }
    }
    e->g = g;
    e->rawbits += em.rawbits;
    c->ntoks[0] = (size_t)(em.w[0] - c->toks[0]);
    c->ntoks[1] = (size_t)(em.w[1] - c->toks[1]);
    return 0;
}

/* Estimated chunk size from the statistics so far; fills each table's
 * clogc. */
static double estimate_bytes(slim_codec *c, const enc *e, uint32_t npos, uint32_t nframes)
{
    double bits = (double)e->rawbits;
    double tabbytes = 0;
    counts_merge(c);
    for (int t = 0; t < NTAB; t++) {
        etab *x = &c->et[t];
        table_sums(x);
        if (!x->total) continue;
        x->clogc = table_clogc(c, x);
        bits += x->total * log2((double)x->total) - x->clogc;
        tabbytes += 1 + 1.4 * x->nsym;
    }
    return bits / 8 + tabbytes + 40 + 9.5 * npos + 10.0 * nframes;  /* 8: statistics */
}

/* Scale counts to frequencies summing to RANS_TOT, every used symbol >= 1. */
static void normalise(etab *t)
{
    if (!t->total) { t->nsym = 0; return; }
    uint32_t sum = 0, best = 0;
    for (uint32_t s = 0; s < t->nsym; s++) {
        uint32_t f = 0;
        if (t->count[s]) {
            f = (uint32_t)((uint64_t)t->count[s] * RANS_TOT / t->total);
            if (f == 0) f = 1;
        }
        t->freq[s] = (uint16_t)f;
        sum += f;
        if (f > t->freq[best]) best = s;
    }
    while (sum != RANS_TOT) {
        if (sum < RANS_TOT) { t->freq[best] += (uint16_t)(RANS_TOT - sum); sum = RANS_TOT; break; }
        /* too many: take from the largest frequencies (never below 1) */
        uint32_t m = 0;
        for (uint32_t s = 0; s < t->nsym; s++) if (t->freq[s] > t->freq[m]) m = s;
        uint32_t take = sum - RANS_TOT, room = t->freq[m] - 1u;
        if (take > (room + 1) / 2) take = (room + 1) / 2;
        if (take == 0) take = 1;
        t->freq[m] = (uint16_t)(t->freq[m] - take);
        sum -= take;
    }
    uint32_t cum = 0;
    for (uint32_t s = 0; s < t->nsym; s++) { t->cum[s] = (uint16_t)cum; cum += t->freq[s]; }
}

/* Token t on state x, words going down from *p: backwards, so its raw bits
 * (a no-op when nb = 0) before its symbol. */
static inline void enc_tok(const slim_codec *c, const tok *t, uint64_t *x, uint8_t **p)
{
    rans_enc_symraw(x, p, &c->esym[0][0] + t->idx, t->bits);  /* TOK_RAW: the identity */
}

/* One rANS state's tokens of a frame, encoded backwards from t[i - 1]
 * down to t[lo], its words going down from p. */
typedef struct stream {
    const tok *t;
    size_t i, lo;
    uint64_t x;
    uint8_t *p, *end;         /* end: where its words started (the top) */
} stream;

static void stream_run(const slim_codec *c, stream *s)
{
    uint64_t x = s->x;
    uint8_t *p = s->p;
    for (size_t i = s->i; i > s->lo; i--) enc_tok(c, &s->t[i - 1], &x, &p);
    s->i = s->lo;
    s->x = x;
    s->p = p;
}

/* The states of up to two frames (n = 2 or 4 streams) side by side, one
 * token of each per iteration: the streams are independent, so their
 * dependency chains (a multiply and a renormalisation per step) overlap;
 * each stream's remainder is finished alone. */
__attribute__((target_clones("bmi2", "default")))
static void streams_run(const slim_codec *c, stream *s, int n)
{
    size_t m = SIZE_MAX;
    for (int k = 0; k < n; k++) if (s[k].i - s[k].lo < m) m = s[k].i - s[k].lo;
    if (n == 4) {
        uint64_t x0 = s[0].x, x1 = s[1].x, x2 = s[2].x, x3 = s[3].x;
        uint8_t *p0 = s[0].p, *p1 = s[1].p, *p2 = s[2].p, *p3 = s[3].p;
        const tok *t0 = s[0].t + s[0].i, *t1 = s[1].t + s[1].i, *t2 = s[2].t + s[2].i,
                  *t3 = s[3].t + s[3].i;
        for (size_t j = 1; j <= m; j++) {
            enc_tok(c, t0 - j, &x0, &p0);
            enc_tok(c, t1 - j, &x1, &p1);
            enc_tok(c, t2 - j, &x2, &p2);
            enc_tok(c, t3 - j, &x3, &p3);
        }
        s[0].x = x0; s[1].x = x1; s[2].x = x2; s[3].x = x3;
        s[0].p = p0; s[1].p = p1; s[2].p = p2; s[3].p = p3;
    } else {
        uint64_t x0 = s[0].x, x1 = s[1].x;
        uint8_t *p0 = s[0].p, *p1 = s[1].p;
        const tok *t0 = s[0].t + s[0].i, *t1 = s[1].t + s[1].i;
        for (size_t j = 1; j <= m; j++) {
            enc_tok(c, t0 - j, &x0, &p0);
            enc_tok(c, t1 - j, &x1, &p1);
        }
        s[0].x = x0; s[1].x = x1;
        s[0].p = p0; s[1].p = p1;
    }
    for (int k = 0; k < n; k++) {
        s[k].i -= m;
        stream_run(c, &s[k]);
    }
}

/* A frame, appended to c->fbuf at fsize: state 0 (8 bytes), state 1 (8
 * bytes), varint byte length of stream 0, stream 0, stream 1.  Returns
 * its length. */
static size_t put_frame(slim_codec *c, const stream *s, size_t fsize)
{
    uint8_t *o = c->fbuf + fsize;
    size_t n0 = (size_t)(s[0].end - s[0].p), n1 = (size_t)(s[1].end - s[1].p), n = 16;
    put_u64le(o, s[0].x);
    put_u64le(o + 8, s[1].x);
    n += put_varint(o + n, n0);
    memcpy(o + n, s[0].p, n0); n += n0;
    memcpy(o + n, s[1].p, n1); n += n1;
    return n;
}

/* rANS-encode frames f and, when nfr is 2, f + 1: each state has its own
 * tokens and word stream, written backwards into its region of c->tmp
 * (region bytes `region`), so the decoder's two states never wait for
 * each other (nor the encoder's: each in a register).  Appends the frames
 * to c->fbuf at *fsize and their lengths to c->flen. */
static void encode_frames(slim_codec *c, uint32_t f, int nfr, size_t region, size_t *fsize)
{
    stream s[4];
    for (int k = 0; k < 2 * nfr; k++) {
        const uint32_t *ft = c->ftok + 2 * (size_t)(f + k / 2);
        int st = k & 1;
        s[k].t = c->toks[st];
        s[k].lo = ft[st];
        s[k].i = ft[2 + st];
        s[k].x = RANS_L;
        s[k].p = s[k].end = c->tmp + region * (size_t)(k + 1);
    }
    streams_run(c, s, 2 * nfr);
    for (int k = 0; k < nfr; k++) {
        size_t fl = put_frame(c, s + 2 * k, *fsize);
        c->flen[f + (uint32_t)k] = (uint32_t)fl;
        *fsize += fl;
    }
}

static size_t write_tables(const slim_codec *c, uint8_t *p)
{
    size_t n = 0;
    {
        const etab *t = &c->et[TAB_MISC];
        n += put_varint(p + n, t->nsym);
        for (uint32_t s = 0; s < t->nsym; s++) n += put_varint(p + n, t->freq[s]);
    }
    for (int m = 0; m < 2; m++) {
        int base = m ? TAB_VAL : TAB_GAP, nctx = 0;
        for (int i = 0; i < NCTX; i++) if (c->et[base + i].total) nctx = i + 1;
        p[n++] = CTX_SHIFT;
        n += put_varint(p + n, (uint64_t)nctx);
        for (int i = 0; i < nctx; i++) {
            const etab *t = &c->et[base + i];
            n += put_varint(p + n, t->nsym);
            for (uint32_t s = 0; s < t->nsym; s++) n += put_varint(p + n, t->freq[s]);
        }
    }
    return n;
}

static size_t write_header(const enc *e, uint32_t npos, uint64_t entries, uint8_t *p)
{
    const slim_chunk_params *pp = e->pp;
    size_t n = 0;
    p[n++] = CHUNK_MAGIC0; p[n++] = CHUNK_MAGIC1; p[n++] = CHUNK_VERSION;
    p[n++] = (uint8_t)pp->kind;
    p[n++] = (uint8_t)e->mode;
    n += put_varint(p + n, pp->vocab_size);
    n += put_varint(p + n, pp->first_pos);
    n += put_varint(p + n, npos);
    n += put_varint(p + n, entries);
    if (e->mode == SLIM_PREC_LOGPROB || e->mode == SLIM_PREC_PROB) {
        uint64_t u;
        memcpy(&u, &e->eps, 8); put_u64le(p + n, u); n += 8;
        memcpy(&u, &e->step, 8); put_u64le(p + n, u); n += 8;
    }
    return n;
}

static int check_params(slim_codec *c, const slim_chunk_params *pp, enc *e)
{
    memset(e, 0, sizeof *e);
    e->pp = pp;
    if (pp->kind != SLIM_KIND_LOGITS && pp->kind != SLIM_KIND_SAMPLED)
        return fail(c, SLIM_EINVAL, "unknown record kind %d", pp->kind);
    if (pp->vocab_size < 1) return fail(c, SLIM_EINVAL, "vocab size 0");
    if (pp->kind == SLIM_KIND_SAMPLED) return 0;
    e->mode = pp->prec.mode;
    if (e->mode == SLIM_PREC_LOSSLESS) return 0;
    if (e->mode != SLIM_PREC_LOGPROB && e->mode != SLIM_PREC_PROB)
        return fail(c, SLIM_EINVAL, "unknown precision mode %d", e->mode);
    e->eps = pp->prec.eps;
    if (!(e->eps > 0 && e->eps < 1e30))
        return fail(c, SLIM_EINVAL, "precision eps %g out of range", e->eps);
    /* 5% headroom under 2*eps absorbs float32 rounding of decoded values */
    e->step = 2.0 * e->eps * 0.95;
    e->inv_step = 1.0 / e->step;  /* a guess only: every q is checked */
    return 0;
}

/* Frame f - 1 ends here: frame f starts at the tokens emitted so far. */
static inline void frame_end(slim_codec *c, uint32_t f)
{
    c->ftok[2 * f] = (uint32_t)c->ntoks[0];
    c->ftok[2 * f + 1] = (uint32_t)c->ntoks[1];
}

/* Tokenise positions until the estimate reaches the target; frames. */
static int tokenise_all(slim_codec *c, enc *e, const slim_dist *dists, uint32_t n,
                        uint32_t *npos, uint32_t *nframes, uint64_t *entries)
{
    size_t target = e->pp->target_bytes ? e->pp->target_bytes : DEFAULT_TARGET;
    uint32_t fe = 0, nf = 0, p, check = 1;
    uint64_t ent = 0;
    c->ntoks[0] = c->ntoks[1] = 0;
    memset(c->ecount, 0, sizeof c->ecount);  /* the rest of et[] is set before use */
    memset(c->ecountx, 0, sizeof c->ecountx);
    if (grow((void **)&c->ftok, &c->ftok_cap, 4, sizeof *c->ftok))
        return fail(c, SLIM_ENOMEM, "out of memory");
    c->ftok[0] = c->ftok[1] = 0;
    for (p = 0; p < n;) {
        const slim_dist *d = &dists[p];
        if (grow((void **)&c->kpos, &c->kpos_cap, p + 1, sizeof *c->kpos) ||
            grow((void **)&c->ftok, &c->ftok_cap, 2 * (size_t)nf + 6, sizeof *c->ftok) ||
            grow((void **)&c->rd, &c->rd_cap, p + 1, sizeof *c->rd) ||
            grow((void **)&c->rids, &c->rcap, ent + d->k + 1, sizeof *c->rids) ||
            grow((void **)&c->rvals, &c->rvcap, ent + d->k + 1, sizeof *c->rvals))
            return fail(c, SLIM_ENOMEM, "out of memory");
        int rc = tokenise_position(c, e, d, e->pp->first_pos + p, c->rids + ent, c->rvals + ent);
        if (rc) return rc;
        /* ids / vals are set once the scratch stops growing */
        c->rd[p] = (slim_dist){d->k, e->pp->kind == SLIM_KIND_SAMPLED ? d->n_samples : 0, d->lse,
                               NULL, NULL};
        c->kpos[p] = dists[p].k;
        ent += dists[p].k;
        fe += dists[p].k + 1;
        p++;
        if (fe >= FRAME_ENTRIES) { frame_end(c, ++nf); fe = 0; e->g = 0; }
        if (p < check) continue;
        /* The estimate costs a pass over the tables: taken again only once
         * the positions since could have filled what was left at 1.5x the
         * average size so far (a few times per chunk, every position near
         * the end). */
        double est = estimate_bytes(c, e, p, nf + 1);
        if (est >= (double)target) break;
        double room = ((double)target - est) / (1.5 * est / p);
        check = p + (room > 1 ? (uint32_t)(room < 1e6 ? room : 1e6) : 1);
    }
    if (fe > 0) frame_end(c, ++nf);
    for (size_t i = 0, off = 0; i < p; off += c->rd[i++].k) {
        c->rd[i].ids = c->rids + off;
        c->rd[i].vals = c->rvals + off;
    }
    *npos = p; *nframes = nf; *entries = ent;
    return 0;
}

/* The statistics block's figures (c->rps) of the values readers will get
 * back, and its mode: PSTAT_NOTAIL when every tail is +0. */
static int stats_block(slim_codec *c, int kind, uint32_t npos, int *smode)
{
    if (grow((void **)&c->rps, &c->rps_cap, npos, sizeof *c->rps))
        return fail(c, SLIM_ENOMEM, "out of memory");
    *smode = PSTAT_NOTAIL;
    for (uint32_t p = 0; p < npos; p++) {
        slim_dist_pstat(&c->rd[p], kind, &c->rps[p]);
        if (f2u(c->rps[p].tail_mass) != 0) *smode = PSTAT_FULL;
    }
    return 0;
}

int slim_chunk_encode(slim_codec *c, const slim_chunk_params *params,
                      const slim_dist *dists, uint32_t n, uint8_t *dst,
                      size_t cap, size_t *len, uint32_t *consumed)
{
    enc e;
    uint32_t npos = 0, nf = 0;
    uint64_t entries = 0;
    c->err[0] = 0;
    c->rnpos = 0;
    if (n == 0) return fail(c, SLIM_EINVAL, "no positions to encode");
    int rc = check_params(c, params, &e);
    if (!rc) rc = tokenise_all(c, &e, dists, n, &npos, &nf, &entries);
    if (rc) return rc;
    counts_merge(c);
    for (int t = 0; t < NTAB; t++) {
        const etab *m = &c->et[t];
        table_sums(&c->et[t]);
        normalise(&c->et[t]);
        /* a symbol's raw bits are its bucket's; the quantised value
         * alphabet has its two escapes (no raw bits) first */
        unsigned off = t >= TAB_VAL && (e.mode == SLIM_PREC_LOGPROB || e.mode == SLIM_PREC_PROB) ? 2 : 0;
        for (uint32_t s = 0; s < m->nsym; s++)
            if (m->freq[s]) {
                rans_esym_init(&c->esym[t][s], m->cum[s], m->freq[s]);
                rans_esym_raw(&c->esym[t][s], s >= off && s - off < NBIN ? bbits[s - off] : 0);
            }
    }
    /* frames: encode each backwards into tmp, gather into fbuf */
    size_t fsize = 0;
    if (grow((void **)&c->flen, &c->flen_cap, nf + 1, sizeof *c->flen))
        return fail(c, SLIM_ENOMEM, "out of memory");
    for (uint32_t f = 0; f < nf; f += 2) {
        int nfr = f + 1 < nf ? 2 : 1;
        size_t nt = 0, big = 0;
        for (uint32_t g = f; g < f + (uint32_t)nfr; g++)
            for (int st = 0; st < 2; st++) {
                size_t ns = c->ftok[2 * g + 2 + st] - c->ftok[2 * g + st];
                nt += ns;
                big = ns > big ? ns : big;
            }
        /* a token emits at most one 4-byte word (plus the slack of the
         * branch-free renormalisation below each stream) */
        size_t region = big * 4 + 64;
        if (grow((void **)&c->tmp, &c->tmp_cap, region * 4, 1) ||
            grow((void **)&c->fbuf, &c->fbuf_cap, fsize + nt * 4 + 64, 1))
            return fail(c, SLIM_ENOMEM, "out of memory");
        encode_frames(c, f, nfr, region, &fsize);
    }
    int smode = PSTAT_FULL;
    if ((rc = stats_block(c, params->kind, npos, &smode))) return rc;
    size_t sl = 1 + (size_t)npos * (smode == PSTAT_FULL ? 8 : 4);
    /* assemble: header, statistics, k table, F, tables, frame lengths,
     * frames, checksum */
    uint8_t hdr[HEADER_MAX], tabs[TABLES_MAX], vb[10];
    size_t h = write_header(&e, npos, entries, hdr);
    size_t tl = write_tables(c, tabs);
    int kconst = 1;
    for (uint32_t p = 1; p < npos; p++) if (c->kpos[p] != c->kpos[0]) kconst = 0;
    size_t exact = h + sl + 1 + put_varint(vb, FRAME_ENTRIES) + tl + fsize + CHECKSUM_BYTES;
    for (uint32_t i = 0; i < (kconst ? 1 : npos); i++) exact += put_varint(vb, c->kpos[i]);
    for (uint32_t f = 0; f < nf; f++) exact += put_varint(vb, c->flen[f]);
    if (exact > cap) {
        *len = exact;
        return fail(c, SLIM_ERANGE, "chunk needs %zu bytes, buffer has %zu", exact, cap);
    }
    uint8_t *p = dst;
    memcpy(p, hdr, h); p += h;
    *p++ = (uint8_t)smode;
    for (uint32_t i = 0; i < npos; i++) {
        put_u32le(p, f2u(c->rps[i].entropy)); p += 4;
        if (smode == PSTAT_FULL) { put_u32le(p, f2u(c->rps[i].tail_mass)); p += 4; }
    }
    *p++ = (uint8_t)(kconst ? 0 : 1);
    for (uint32_t i = 0; i < (kconst ? 1 : npos); i++) p += put_varint(p, c->kpos[i]);
    p += put_varint(p, FRAME_ENTRIES);
    memcpy(p, tabs, tl); p += tl;
    for (uint32_t f = 0; f < nf; f++) p += put_varint(p, c->flen[f]);
    memcpy(p, c->fbuf, fsize); p += fsize;
    put_u64le(p, XXH3_64bits(dst, (size_t)(p - dst)));
    p += CHECKSUM_BYTES;
    *len = (size_t)(p - dst);
    c->stats.raw_bits = e.rawbits;
    c->stats.symbol_bits = 0;  /* from the tables, when asked (slim_codec_last_stats) */
    c->stats.table_bytes = tl;
    c->stats.frame_bytes = fsize;   /* incl. 16 bytes of states + split per frame */
    c->stats.header_bytes = *len - tl - fsize;  /* incl. the statistics block */
    c->stats.nframes = nf;
    c->stats.simd_positions = e.nsimd;
    c->rnpos = npos;
    *consumed = npos;
    return 0;
}

const slim_dist *slim_chunk_encoded(const slim_codec *c, uint32_t *npos)
{
    *npos = c->rnpos;
    return c->rnpos ? c->rd : NULL;
}
