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
    if (c)
        for (uint32_t n = 1; n < NCLOG; n++) c->clog[n] = (float)(n * log2((double)n));
    return c ? 0 : SLIM_ENOMEM;
}

void slim_codec_free(slim_codec *c)
{
    if (!c) return;
    free(c->toks); free(c->pairs); free(c->pairs2); free(c->q);
    free(c->kpos); free(c->ftok); free(c->fbuf); free(c->tmp); free(c->flen);
    free(c->tab_cache); free(c->sk); free(c->sk2); free(c->sv); free(c->cnt); free(c->fstart); free(c->logq);
    free(c->clogx);
    free(c);
}

void slim_codec_last_stats(const slim_codec *c, slim_codec_stats *out)
{
    *out = c->stats;
}

const char *slim_codec_errmsg(const slim_codec *c)
{
    return c && c->err[0] ? c->err : "no error";
}

/* Sizes: per entry <= 2 symbols of <= 12 bits + <= 64 raw bits (11 bytes);
 * per position a head of <= 112 bits, a k varint and a frame's overhead. */
size_t slim_chunk_bound(uint32_t n, size_t entries)
{
    return HEADER_MAX + TABLES_MAX + CHECKSUM_BYTES + 48 * (size_t)n + 12 * entries;
}

/* ------------------------------------------------------------- encoder */

typedef struct enc {
    const slim_chunk_params *pp;
    int mode;                 /* SLIM_PREC_*, 0 for SAMPLED */
    double eps, step;
    uint32_t g;               /* group counter inside the current frame */
    uint64_t rawbits;
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

static inline void count_sym(slim_codec *c, etab *t, unsigned s)
{
    uint32_t n = t->count[s]++;
    /* keep sum(count*log2 count) current for size estimates */
    t->clogc += clog2c(c, n + 1) - clog2c(c, n);
    t->total++;
    if (s + 1 > t->nsym) t->nsym = s + 1;
}

static inline void emit_sym(slim_codec *c, unsigned tab, unsigned st, unsigned s)
{
    tok *t = &c->toks[c->ntoks++];
    t->tab = (uint8_t)tab; t->st = (uint8_t)st; t->sym = (uint16_t)s; t->bits = 0;
    count_sym(c, &c->et[tab], s);
}

static inline void emit_raw(slim_codec *c, enc *e, unsigned st, unsigned n, uint32_t v)
{
    e->rawbits += n;
    if (n > 31) {   /* a step takes at most 31 raw bits: split 32 as 16 + 16 */
        tok *t = &c->toks[c->ntoks++];
        t->tab = TOK_RAW; t->st = (uint8_t)st; t->sym = 16; t->bits = v & 0xffff;
        n -= 16; v >>= 16;
    }
    if (n) {
        tok *t = &c->toks[c->ntoks++];
        t->tab = TOK_RAW; t->st = (uint8_t)st; t->sym = (uint16_t)n; t->bits = v;
    }
}

static inline void emit_int(slim_codec *c, enc *e, unsigned tab, unsigned st,
                            unsigned off, uint32_t v)
{
    unsigned nb, s = bin_of(v, &nb);
    emit_sym(c, tab, st, s + off);
    if (nb) emit_raw(c, e, st, nb, v & (nb == 32 ? 0xffffffffu : ((1u << nb) - 1)));
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

/* Quantise x under precision e; Q_RAW when the bound cannot be met. */
static int64_t quantise(const enc *e, double ref, float x)
{
    if (x == -INFINITY) return Q_INF;
    double xd = x;
    if (e->mode == SLIM_PREC_LOGPROB) {
        double r = (ref - xd) / e->step;
        if (!(r > -1073741824.0 && r < 2147483647.0)) return Q_RAW;
        int64_t q0 = round_small(r);
        for (int d = 0; d < 3; d++) {
            int64_t q = q0 + (d == 1 ? -1 : d == 2 ? 1 : 0);
            if (fabs((double)q_logprob(ref, e->step, q) - xd) <= e->eps) return q;
        }
        return Q_RAW;
    }
    double p = exp(xd - ref), r = p / e->step;
    if (!(r < 2147483647.0)) return Q_RAW;
    int64_t q0 = round_small(r);
    for (int d = 0; d < 3; d++) {
        int64_t q = q0 + (d == 1 ? -1 : d == 2 ? 1 : 0);
        if (q < 0) continue;
        if (fabs(exp((double)q_prob(ref, e->step, q) - ref) - p) <= e->eps) return q;
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

/* Head of a LOGITS position in a quantised mode: ref and qbase; fills c->q. */
static void head_quantised(slim_codec *c, enc *e, const slim_dist *d,
                           const uint64_t *a, unsigned st)
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
        emit_raw(c, e, st, 32, f2u(ref));
    }
    int64_t qbase = 0;
    for (uint32_t j = 0; j < k; j++) {
        int64_t q = quantise(e, ref, u2f((uint32_t)a[j]));
        c->q[j] = q;
        if (q != Q_INF && q != Q_RAW && q < qbase) qbase = q;
    }
    /* qbase < 0 only when a value exceeds lse (inconsistent input): shift */
    emit_int(c, e, TAB_MISC, st, 0, (uint32_t)(-qbase));
    for (uint32_t j = 0; j < k; j++)
        if (c->q[j] != Q_INF && c->q[j] != Q_RAW) c->q[j] -= qbase;
}

static int tokenise_position(slim_codec *c, enc *e, const slim_dist *d, uint32_t pos)
{
    const slim_chunk_params *pp = e->pp;
    uint64_t *a = NULL;
    int rc = sort_position(c, d, pp->vocab_size, pos, pp->kind, &a);
    if (rc) return rc;
    uint32_t k = d->k;
    size_t need = c->ntoks + 8 + (size_t)k * 6;
    if (grow((void **)&c->toks, &c->toks_cap, need, sizeof *c->toks))
        return fail(c, SLIM_ENOMEM, "out of memory");
    unsigned st = e->g++ & 1;
    emit_raw(c, e, st, 32, f2u(d->lse));
    uint32_t maxkey = 0;
    if (pp->kind == SLIM_KIND_SAMPLED) {
        emit_int(c, e, TAB_MISC, st, 0, d->n_samples);
    } else if (e->mode == SLIM_PREC_LOSSLESS) {
        for (uint32_t j = 0; j < k; j++) {
            uint32_t o = ford((uint32_t)a[j]);
            if (o > maxkey) maxkey = o;
        }
        emit_raw(c, e, st, 32, maxkey);
    } else {
        head_quantised(c, e, d, a, st);
    }
    uint32_t next = 0;
    for (uint32_t j = 0; j < k; j++) {
        uint32_t id = (uint32_t)(a[j] >> 32), vb = (uint32_t)a[j];
        st = e->g++ & 1;
        emit_int(c, e, TAB_GAP + ctx_of(next), st, 0, id - next);
        next = id + 1;
        unsigned vt = TAB_VAL + ctx_of(id);
        if (pp->kind == SLIM_KIND_SAMPLED) {
            emit_int(c, e, vt, st, 0, (uint32_t)u2f(vb));
        } else if (e->mode == SLIM_PREC_LOSSLESS) {
            emit_int(c, e, vt, st, 0, maxkey - ford(vb));
        } else if (c->q[j] == Q_INF) {
            emit_sym(c, vt, st, SYM_INF);
        } else if (c->q[j] == Q_RAW) {
            emit_sym(c, vt, st, SYM_RAW);
            emit_raw(c, e, st, 32, vb);
        } else {
            emit_int(c, e, vt, st, 2, (uint32_t)c->q[j]);
        }
    }
    return 0;
}

/* Estimated chunk size from the statistics so far. */
static double estimate_bytes(const slim_codec *c, const enc *e, uint32_t npos, uint32_t nframes)
{
    double bits = (double)e->rawbits;
    double tabbytes = 0;
    for (int t = 0; t < NTAB; t++) {
        const etab *x = &c->et[t];
        if (!x->total) continue;
        bits += x->total * log2((double)x->total) - x->clogc;
        tabbytes += 1 + 1.4 * x->nsym;
    }
    return bits / 8 + tabbytes + 40 + 1.5 * npos + 10.0 * nframes;
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

/* rANS-encode tokens [t0, t1) (one frame): each state has its own word
 * stream, written backwards into its half of c->tmp, so the decoder's two
 * states never wait for each other.  The frame, appended to c->fbuf at
 * fsize: state 0 (8 bytes), state 1 (8 bytes), varint byte length of
 * stream 0, stream 0, stream 1.  Returns the frame's length. */
static size_t encode_frame(slim_codec *c, size_t t0, size_t t1, size_t fsize)
{
    size_t half = c->tmp_cap / 2;
    uint8_t *end[2] = {c->tmp + half, c->tmp + c->tmp_cap}, *p[2] = {end[0], end[1]};
    uint64_t x[2] = {RANS_L, RANS_L};
    for (size_t i = t1; i-- > t0;) {
        const tok *t = &c->toks[i];
        if (t->tab == TOK_RAW) {
            rans_enc_put(&x[t->st], &p[t->st], t->bits, 1, t->sym);
        } else {
            rans_enc_put_sym(&x[t->st], &p[t->st], &c->esym[t->tab][t->sym]);
        }
    }
    uint8_t *o = c->fbuf + fsize;
    size_t n0 = (size_t)(end[0] - p[0]), n1 = (size_t)(end[1] - p[1]), n = 16;
    put_u64le(o, x[0]);
    put_u64le(o + 8, x[1]);
    n += put_varint(o + n, n0);
    memcpy(o + n, p[0], n0); n += n0;
    memcpy(o + n, p[1], n1); n += n1;
    return n;
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
    return 0;
}

/* Tokenise positions until the estimate reaches the target; frames. */
static int tokenise_all(slim_codec *c, enc *e, const slim_dist *dists, uint32_t n,
                        uint32_t *npos, uint32_t *nframes, uint64_t *entries)
{
    size_t target = e->pp->target_bytes ? e->pp->target_bytes : DEFAULT_TARGET;
    uint32_t fe = 0, nf = 0, p;
    uint64_t ent = 0;
    c->ntoks = 0;
    memset(c->et, 0, sizeof c->et);
    if (grow((void **)&c->ftok, &c->ftok_cap, 2, sizeof *c->ftok))
        return fail(c, SLIM_ENOMEM, "out of memory");
    c->ftok[0] = 0;
    for (p = 0; p < n;) {
        if (grow((void **)&c->kpos, &c->kpos_cap, p + 1, sizeof *c->kpos) ||
            grow((void **)&c->ftok, &c->ftok_cap, nf + 3, sizeof *c->ftok))
            return fail(c, SLIM_ENOMEM, "out of memory");
        int rc = tokenise_position(c, e, &dists[p], e->pp->first_pos + p);
        if (rc) return rc;
        c->kpos[p] = dists[p].k;
        ent += dists[p].k;
        fe += dists[p].k + 1;
        p++;
        if (fe >= FRAME_ENTRIES) { c->ftok[++nf] = (uint32_t)c->ntoks; fe = 0; e->g = 0; }
        if (estimate_bytes(c, e, p, nf + 1) >= (double)target) break;
    }
    if (fe > 0) c->ftok[++nf] = (uint32_t)c->ntoks;
    *npos = p; *nframes = nf; *entries = ent;
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
    if (n == 0) return fail(c, SLIM_EINVAL, "no positions to encode");
    int rc = check_params(c, params, &e);
    if (!rc) rc = tokenise_all(c, &e, dists, n, &npos, &nf, &entries);
    if (rc) return rc;
    for (int t = 0; t < NTAB; t++) {
        const etab *m = &c->et[t];
        normalise(&c->et[t]);
        for (uint32_t s = 0; s < m->nsym; s++)
            if (m->freq[s]) rans_esym_init(&c->esym[t][s], m->cum[s], m->freq[s]);
    }
    /* frames: encode each backwards into tmp, gather into fbuf */
    size_t fsize = 0;
    if (grow((void **)&c->flen, &c->flen_cap, nf + 1, sizeof *c->flen))
        return fail(c, SLIM_ENOMEM, "out of memory");
    for (uint32_t f = 0; f < nf; f++) {
        size_t nt = c->ftok[f + 1] - c->ftok[f];
        /* a token emits at most one 4-byte word; each stream may get all */
        if (grow((void **)&c->tmp, &c->tmp_cap, nt * 8 + 64, 1) ||
            grow((void **)&c->fbuf, &c->fbuf_cap, fsize + nt * 4 + 64, 1))
            return fail(c, SLIM_ENOMEM, "out of memory");
        size_t fl = encode_frame(c, c->ftok[f], c->ftok[f + 1], fsize);
        c->flen[f] = (uint32_t)fl;
        fsize += fl;
    }
    /* assemble: header, k table, F, tables, frame lengths, frames, checksum */
    uint8_t hdr[HEADER_MAX], tabs[TABLES_MAX], vb[10];
    size_t h = write_header(&e, npos, entries, hdr);
    size_t tl = write_tables(c, tabs);
    int kconst = 1;
    for (uint32_t p = 1; p < npos; p++) if (c->kpos[p] != c->kpos[0]) kconst = 0;
    size_t exact = h + 1 + put_varint(vb, FRAME_ENTRIES) + tl + fsize + CHECKSUM_BYTES;
    for (uint32_t i = 0; i < (kconst ? 1 : npos); i++) exact += put_varint(vb, c->kpos[i]);
    for (uint32_t f = 0; f < nf; f++) exact += put_varint(vb, c->flen[f]);
    if (exact > cap) {
        *len = exact;
        return fail(c, SLIM_ERANGE, "chunk needs %zu bytes, buffer has %zu", exact, cap);
    }
    uint8_t *p = dst;
    memcpy(p, hdr, h); p += h;
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
    c->stats.symbol_bits = 0;
    for (int t = 0; t < NTAB; t++)
        if (c->et[t].total)
            c->stats.symbol_bits += c->et[t].total * log2((double)c->et[t].total) - c->et[t].clogc;
    c->stats.table_bytes = tl;
    c->stats.frame_bytes = fsize;   /* incl. 16 bytes of states + split per frame */
    c->stats.header_bytes = *len - tl - fsize;
    c->stats.nframes = nf;
    *consumed = npos;
    return 0;
}
