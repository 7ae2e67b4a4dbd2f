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
 */
#include "codec.h"
#include "codec_rans.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define CHUNK_MAGIC0 0x53     /* 'S' */
#define CHUNK_MAGIC1 0x43     /* 'C' */
#define CHUNK_VERSION 1
#define NCTX 16               /* contexts per model (gap, value) */
#define NBIN 128              /* bucket symbols of a uint32 */
#define NVSYM (NBIN + 2)      /* value alphabet of quantised modes */
#define SYM_INF 0             /* value escape: -inf */
#define SYM_RAW 1             /* value escape: raw float32 bits follow */
#define CTX_SHIFT 1           /* context = bitlen(x) >> CTX_SHIFT */
#define FRAME_ENTRIES 1024    /* frame closes when sum(k + 1) reaches this */
#define DEFAULT_TARGET 61440  /* 15 pages; see FORMAT.md: overflow pages, point reads */
#define TAB_MISC 0
#define TAB_GAP 1
#define TAB_VAL (1 + NCTX)
#define NTAB (1 + 2 * NCTX)
#define TOK_RAW 255
#define Q_INF INT64_MIN
#define Q_RAW (INT64_MIN + 1)
#define CHECKSUM_BYTES 8
#define NCLOG 4096            /* entries of the n*log2(n) table */

typedef struct tok {          /* one rANS symbol, in decode order */
    uint8_t tab;              /* table index, or TOK_RAW */
    uint8_t st;               /* rANS state 0/1 */
    uint16_t sym;             /* symbol, or number of raw bits (1..16) */
    uint32_t bits;            /* raw bits */
} tok;

typedef struct dtab {         /* decode table */
    /* per symbol, all a decode step needs in one load: freq (bits 0-12),
     * cum (13-24), raw bit count of its bucket (25-29), bucket base (32-63) */
    uint64_t info[NVSYM];
    uint8_t sym[RANS_TOT];    /* slot -> symbol */
} dtab;

typedef struct etab {         /* encoder statistics and model */
    uint32_t count[NVSYM];
    uint16_t freq[NVSYM];
    uint16_t cum[NVSYM];
    uint32_t total, nsym;     /* nsym = last used symbol + 1 */
    double clogc;             /* sum of count*log2(count), for estimates */
} etab;

typedef struct chdr {         /* everything parsed in front of the frames */
    int kind, mode;
    double eps, step;
    uint32_t V, first_pos, npos, F;
    uint64_t entries;
    const uint8_t *tabs; size_t tabs_len;   /* table region */
    const uint8_t *frames; size_t frames_len;
    uint32_t nframes;
} chdr;

struct slim_codec {
    char err[256];
    /* encoder scratch */
    tok *toks; size_t ntoks, toks_cap;
    uint64_t *pairs, *pairs2; int64_t *q; size_t pairs_cap, pairs2_cap, q_cap;
    uint32_t *kpos; size_t kpos_cap;        /* also used by the decoder */
    uint32_t *ftok; size_t ftok_cap;        /* token index where frame f starts (+ end) */
    uint8_t *fbuf, *tmp; size_t fbuf_cap, tmp_cap;
    uint32_t *flen; size_t flen_cap;
    etab et[NTAB];
    /* decoder scratch */
    dtab dt[NTAB];
    uint32_t tmask[2];        /* contexts present: gap, value (bit = ctx) */
    int misc_ok;
    uint8_t *tab_cache; size_t tab_cache_len, tab_cache_cap; int tab_mode;
    uint64_t *sk, *sk2, *sv; size_t sk_cap, sk2_cap, sv_cap;
    uint32_t *cnt; size_t cnt_cap;
    uint32_t *fstart; size_t fstart_cap;    /* first position of each frame (+ npos) */
    double *logq; size_t logq_cap; uint32_t nlogq; double logq_step;
    slim_codec_stats stats;   /* of the last encode */
    float clog[NCLOG];        /* n * log2(n), for size estimates */
};

/* ------------------------------------------------------------- helpers */

static int fail(slim_codec *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(slim_codec *c, int rc, const char *fmt, ...)
{
    if (c) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, sizeof c->err, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 64;
    while (n < need) n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q) return SLIM_ENOMEM;
    *p = q;
    *cap = n;
    return 0;
}

static inline unsigned bitlen(uint32_t x) { return x ? 32 - (unsigned)__builtin_clz(x) : 0; }
static inline uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
/* order-preserving map of float bits to unsigned (total order, -0 < +0) */
static inline uint32_t ford(uint32_t u) { return (u & 0x80000000u) ? ~u : (u | 0x80000000u); }
static inline uint32_t funord(uint32_t o) { return (o & 0x80000000u) ? (o & 0x7fffffffu) : ~o; }
static inline unsigned ctx_of(uint32_t x)
{
    unsigned cx = bitlen(x) >> CTX_SHIFT;
    return cx < NCTX ? cx : NCTX - 1;
}

/* Bucket of v: 0..15 themselves; then 4 buckets per power of two (the two
 * bits under the leading one), the rest raw.  Returns the symbol. */
static inline unsigned bin_of(uint32_t v, unsigned *nb)
{
    if (v < 16) { *nb = 0; return v; }
    unsigned e = bitlen(v) - 1;
    *nb = e - 2;
    return 16 + (e - 4) * 4 + ((v >> (e - 2)) & 3);
}

/* Bucket symbol -> (base, raw bit count): the inverse of bin_of
 * (generated: base = (4 | m) << (e - 2), bits = e - 2 for s >= 16). */
static const uint32_t bbase[NBIN] = {
    0u, 1u, 2u, 3u, 4u, 5u,
    6u, 7u, 8u, 9u, 10u, 11u,
    12u, 13u, 14u, 15u, 16u, 20u,
    24u, 28u, 32u, 40u, 48u, 56u,
    64u, 80u, 96u, 112u, 128u, 160u,
    192u, 224u, 256u, 320u, 384u, 448u,
    512u, 640u, 768u, 896u, 1024u, 1280u,
    1536u, 1792u, 2048u, 2560u, 3072u, 3584u,
    4096u, 5120u, 6144u, 7168u, 8192u, 10240u,
    12288u, 14336u, 16384u, 20480u, 24576u, 28672u,
    32768u, 40960u, 49152u, 57344u, 65536u, 81920u,
    98304u, 114688u, 131072u, 163840u, 196608u, 229376u,
    262144u, 327680u, 393216u, 458752u, 524288u, 655360u,
    786432u, 917504u, 1048576u, 1310720u, 1572864u, 1835008u,
    2097152u, 2621440u, 3145728u, 3670016u, 4194304u, 5242880u,
    6291456u, 7340032u, 8388608u, 10485760u, 12582912u, 14680064u,
    16777216u, 20971520u, 25165824u, 29360128u, 33554432u, 41943040u,
    50331648u, 58720256u, 67108864u, 83886080u, 100663296u, 117440512u,
    134217728u, 167772160u, 201326592u, 234881024u, 268435456u, 335544320u,
    402653184u, 469762048u, 536870912u, 671088640u, 805306368u, 939524096u,
    1073741824u, 1342177280u, 1610612736u, 1879048192u, 2147483648u, 2684354560u,
    3221225472u, 3758096384u,
};
static const uint8_t bbits[NBIN] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5,
    6, 6, 6, 6, 7, 7, 7, 7, 8, 8, 8, 8, 9, 9, 9, 9,
    10, 10, 10, 10, 11, 11, 11, 11, 12, 12, 12, 12, 13, 13, 13, 13,
    14, 14, 14, 14, 15, 15, 15, 15, 16, 16, 16, 16, 17, 17, 17, 17,
    18, 18, 18, 18, 19, 19, 19, 19, 20, 20, 20, 20, 21, 21, 21, 21,
    22, 22, 22, 22, 23, 23, 23, 23, 24, 24, 24, 24, 25, 25, 25, 25,
    26, 26, 26, 26, 27, 27, 27, 27, 28, 28, 28, 28, 29, 29, 29, 29,
};

static void put_u64le(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint64_t get_u64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) { p[n++] = (uint8_t)(v | 0x80); v >>= 7; }
    p[n++] = (uint8_t)v;
    return n;
}

/* LEB128 varint, at most 10 bytes; 0 on success, -1 past end/overlong. */
static int get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    const uint8_t *p = *pp;
    uint64_t v = 0;
    for (unsigned sh = 0; sh < 64; sh += 7) {
        if (p >= end) return -1;
        uint8_t b = *p++;
        v |= (uint64_t)(b & 0x7f) << sh;
        if (!(b & 0x80)) { *pp = p; *out = v; return 0; }
    }
    return -1;
}

static int get_varint32(const uint8_t **pp, const uint8_t *end, uint32_t *out)
{
    uint64_t v;
    if (get_varint(pp, end, &v) || v > UINT32_MAX) return -1;
    *out = (uint32_t)v;
    return 0;
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
#define TABLES_MAX (2 + NTAB * (5 + NVSYM * 2))
#define HEADER_MAX 64
size_t slim_chunk_bound(uint32_t n, size_t entries)
{
    return HEADER_MAX + TABLES_MAX + CHECKSUM_BYTES + 48 * (size_t)n + 12 * entries;
}

/* --------------------------------------------------------------- sorting */

/* Stable LSD radix sort of keys[n] on bits [lo, lo+nbits), 8 bits a pass,
 * skipping passes whose digit is the same for every key. */
static uint64_t *radix_u64(uint64_t *a, uint64_t *b, size_t n, unsigned lo, unsigned nbits)
{
    unsigned np = (nbits + 7) / 8;
    size_t hist[4][256];
    if (np > 4) np = 4;
    memset(hist, 0, sizeof hist[0] * np);
    for (size_t i = 0; i < n; i++)
        for (unsigned p = 0; p < np; p++) hist[p][(a[i] >> (lo + 8 * p)) & 0xff]++;
    for (unsigned p = 0; p < np; p++) {
        unsigned sh = lo + 8 * p;
        if (hist[p][(a[0] >> sh) & 0xff] == n) continue;
        size_t sum = 0;
        for (int d = 0; d < 256; d++) { size_t t = hist[p][d]; hist[p][d] = sum; sum += t; }
        for (size_t i = 0; i < n; i++) b[hist[p][(a[i] >> sh) & 0xff]++] = a[i];
        uint64_t *t = a; a = b; b = t;
    }
    return a;
}

static void insertion_u64(uint64_t *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        uint64_t v = a[i];
        size_t j = i;
        while (j > 0 && a[j - 1] > v) { a[j] = a[j - 1]; j--; }
        a[j] = v;
    }
}

/* ------------------------------------------------------------- encoder */

typedef struct enc {
    const slim_chunk_params *pp;
    int mode;                 /* SLIM_PREC_*, 0 for SAMPLED */
    double eps, step;
    uint32_t g;               /* group counter inside the current frame */
    uint64_t rawbits;
} enc;

static inline double clog2c(const float *lut, uint32_t n)
{
    return n < NCLOG ? lut[n] : n * log2((double)n);
}

static inline void count_sym(const float *lut, etab *t, unsigned s)
{
    uint32_t c = t->count[s]++;
    /* keep sum(count*log2 count) current for size estimates */
    t->clogc += clog2c(lut, c + 1) - clog2c(lut, c);
    t->total++;
    if (s + 1 > t->nsym) t->nsym = s + 1;
}

static inline void emit_sym(slim_codec *c, unsigned tab, unsigned st, unsigned s)
{
    tok *t = &c->toks[c->ntoks++];
    t->tab = (uint8_t)tab; t->st = (uint8_t)st; t->sym = (uint16_t)s; t->bits = 0;
    count_sym(c->clog, &c->et[tab], s);
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

/* Quantise x under precision e; Q_RAW when the bound cannot be met. */
static int64_t quantise(const enc *e, double ref, float x)
{
    if (x == -INFINITY) return Q_INF;
    double xd = x;
    if (e->mode == SLIM_PREC_LOGPROB) {
        double r = (ref - xd) / e->step;
        if (!(r > -1073741824.0 && r < 2147483647.0)) return Q_RAW;
        int64_t q0 = llround(r);
        for (int d = 0; d < 3; d++) {
            int64_t q = q0 + (d == 1 ? -1 : d == 2 ? 1 : 0);
            if (fabs((double)q_logprob(ref, e->step, q) - xd) <= e->eps) return q;
        }
        return Q_RAW;
    }
    double p = exp(xd - ref), r = p / e->step;
    if (!(r < 2147483647.0)) return Q_RAW;
    int64_t q0 = llround(r);
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
            const etab *m = &c->et[t->tab];
            rans_enc_put(&x[t->st], &p[t->st], m->cum[t->sym], m->freq[t->sym], RANS_SCALE);
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
    for (int t = 0; t < NTAB; t++) normalise(&c->et[t]);
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

/* ------------------------------------------------------------- decoder */

#define CORRUPT(c, ...) fail((c), SLIM_ECORRUPT, __VA_ARGS__)

/* The fixed header; *body points after it. */
static int parse_fixed(slim_codec *c, const uint8_t *src, size_t len, chdr *h,
                       const uint8_t **body)
{
    const uint8_t *p = src, *end = src + len;
    uint64_t u;
    memset(h, 0, sizeof *h);
    if (len < 5 + 4 + CHECKSUM_BYTES) return CORRUPT(c, "chunk of %zu bytes is too short", len);
    if (p[0] != CHUNK_MAGIC0 || p[1] != CHUNK_MAGIC1) return CORRUPT(c, "bad chunk magic");
    if (p[2] != CHUNK_VERSION) return CORRUPT(c, "unknown chunk version %u", p[2]);
    h->kind = p[3];
    h->mode = p[4];
    p += 5;
    end -= CHECKSUM_BYTES;
    if (h->kind == SLIM_KIND_SAMPLED ? h->mode != 0
        : h->kind != SLIM_KIND_LOGITS || h->mode < SLIM_PREC_LOGPROB || h->mode > SLIM_PREC_LOSSLESS)
        return CORRUPT(c, "bad chunk kind %d / precision %d", h->kind, h->mode);
    if (get_varint32(&p, end, &h->V) || get_varint32(&p, end, &h->first_pos) ||
        get_varint32(&p, end, &h->npos) || get_varint(&p, end, &h->entries))
        return CORRUPT(c, "truncated chunk header");
    if (h->V == 0 || h->npos == 0 || (uint64_t)h->first_pos + h->npos > UINT32_MAX + 1ull ||
        h->entries > (uint64_t)h->npos * h->V)
        return CORRUPT(c, "inconsistent chunk header");
    if (h->mode == SLIM_PREC_LOGPROB || h->mode == SLIM_PREC_PROB) {
        if (end - p < 16) return CORRUPT(c, "truncated chunk header");
        u = get_u64le(p); memcpy(&h->eps, &u, 8);
        u = get_u64le(p + 8); memcpy(&h->step, &u, 8);
        p += 16;
        if (!(h->eps > 0 && h->eps < 1e30 && h->step > 0 && h->step < 1e30))
            return CORRUPT(c, "bad precision in chunk header");
    }
    *body = p;
    return 0;
}

static int verify_checksum(slim_codec *c, const uint8_t *src, size_t len)
{
    uint64_t want = get_u64le(src + len - CHECKSUM_BYTES);
    if (XXH3_64bits(src, len - CHECKSUM_BYTES) != want) return CORRUPT(c, "checksum mismatch");
    return 0;
}

int slim_chunk_header_read(const uint8_t *src, size_t len, int check,
                           slim_chunk_header *out)
{
    chdr h;
    const uint8_t *body;
    int rc = parse_fixed(NULL, src, len, &h, &body);
    if (!rc && check) rc = verify_checksum(NULL, src, len);
    if (rc) return rc;
    out->kind = h.kind;
    out->prec.mode = h.kind == SLIM_KIND_SAMPLED ? 0 : h.mode;
    out->prec.eps = h.eps;
    out->first_pos = h.first_pos;
    out->npos = h.npos;
    out->entries = h.entries;
    return 0;
}

/* k table, frame size, tables, frame lengths.  Fills c->kpos, c->fstart. */
static int parse_body(slim_codec *c, const uint8_t *p, const uint8_t *end, chdr *h)
{
    if (h->npos > (size_t)(end - p))   /* every position costs >= 4 bytes */
        return CORRUPT(c, "chunk claims %u positions in %zu bytes", h->npos, (size_t)(end - p));
    if (grow((void **)&c->kpos, &c->kpos_cap, h->npos, sizeof *c->kpos) ||
        grow((void **)&c->fstart, &c->fstart_cap, (size_t)h->npos + 1, sizeof *c->fstart))
        return fail(c, SLIM_ENOMEM, "out of memory");
    if (p >= end || *p > 1) return CORRUPT(c, "bad k table");
    int kconst = *p++ == 0;
    uint64_t sum = 0;
    for (uint32_t i = 0; i < h->npos; i++) {
        if (i == 0 || !kconst) {
            if (get_varint32(&p, end, &c->kpos[i]) || c->kpos[i] > h->V)
                return CORRUPT(c, "bad k table");
        } else {
            c->kpos[i] = c->kpos[0];
        }
        sum += c->kpos[i];
    }
    if (sum != h->entries) return CORRUPT(c, "k table sums to %llu, header says %llu",
                                          (unsigned long long)sum, (unsigned long long)h->entries);
    if (get_varint32(&p, end, &h->F) || h->F == 0) return CORRUPT(c, "bad frame size");
    uint32_t nf = 0;
    uint64_t fe = 0;
    for (uint32_t i = 0; i < h->npos; i++) {
        if (fe == 0) c->fstart[nf++] = i;
        fe += (uint64_t)c->kpos[i] + 1;
        if (fe >= h->F) fe = 0;
    }
    c->fstart[nf] = h->npos;
    h->nframes = nf;
    /* tables: skip over them here, built (or reused) by build_tables */
    h->tabs = p;
    uint64_t v, nctx, nsym;
    for (int m = 0; m < 3; m++) {
        nctx = 1;
        if (m > 0 && (p >= end || *p++ != CTX_SHIFT)) return CORRUPT(c, "bad context shift");
        if (m > 0 && (get_varint(&p, end, &nctx) || nctx > NCTX)) return CORRUPT(c, "bad model");
        for (uint64_t t = 0; t < nctx; t++) {
            if (get_varint(&p, end, &nsym) || nsym > NVSYM) return CORRUPT(c, "bad table");
            for (uint64_t s = 0; s < nsym; s++)
                if (get_varint(&p, end, &v)) return CORRUPT(c, "truncated table");
        }
    }
    h->tabs_len = (size_t)(p - h->tabs);
    uint64_t total = 0;
    if (grow((void **)&c->flen, &c->flen_cap, nf, sizeof *c->flen))
        return fail(c, SLIM_ENOMEM, "out of memory");
    for (uint32_t f = 0; f < nf; f++) {
        if (get_varint32(&p, end, &c->flen[f]) || c->flen[f] < 17)
            return CORRUPT(c, "bad frame table");
        total += c->flen[f];
    }
    if (total != (uint64_t)(end - p)) return CORRUPT(c, "frame lengths disagree with chunk size");
    h->frames = p;
    h->frames_len = (size_t)total;
    return 0;
}

static int build_table(slim_codec *c, dtab *t, const uint8_t **pp, const uint8_t *end,
                       unsigned alpha, unsigned off, int *present)
{
    uint64_t nsym = 0, f = 0;
    uint32_t cum = 0;
    if (get_varint(pp, end, &nsym)) return CORRUPT(c, "truncated table");
    *present = nsym > 0;
    if (nsym == 0) return 0;
    if (nsym > alpha) return CORRUPT(c, "table of %llu symbols, alphabet has %u", (unsigned long long)nsym, alpha);
    for (uint32_t s = 0; s < nsym; s++) {
        if (get_varint(pp, end, &f)) return CORRUPT(c, "truncated table");
        if (f > RANS_TOT - cum) return CORRUPT(c, "table frequencies exceed %u", RANS_TOT);
        uint64_t base = s < off ? 0 : bbase[s - off], nb = s < off ? 0 : bbits[s - off];
        t->info[s] = f | (uint64_t)cum << 13 | nb << 25 | base << 32;
        memset(t->sym + cum, (int)s, f);
        cum += (uint32_t)f;
    }
    if (cum != RANS_TOT) return CORRUPT(c, "table frequencies sum to %u", cum);
    return 0;
}

static int build_tables(slim_codec *c, const chdr *h)
{
    int quant = h->mode == SLIM_PREC_LOGPROB || h->mode == SLIM_PREC_PROB, present;
    if (c->tab_cache_len == h->tabs_len && c->tab_mode == quant &&
        memcmp(c->tab_cache, h->tabs, h->tabs_len) == 0)
        return 0;
    c->tab_cache_len = 0;
    const uint8_t *p = h->tabs, *end = h->tabs + h->tabs_len;
    uint64_t nctx = 0;
    int rc = build_table(c, &c->dt[TAB_MISC], &p, end, NBIN, 0, &c->misc_ok);
    for (int m = 0; m < 2 && !rc; m++) {
        int base = m ? TAB_VAL : TAB_GAP;
        unsigned alpha = m && quant ? NVSYM : NBIN;
        p++;   /* context shift, checked by parse_body */
        if (get_varint(&p, end, &nctx)) return CORRUPT(c, "truncated model");
        c->tmask[m] = 0;
        for (uint64_t i = 0; i < nctx && !rc; i++) {
            rc = build_table(c, &c->dt[base + i], &p, end, alpha, alpha - NBIN, &present);
            c->tmask[m] |= (uint32_t)present << i;
        }
    }
    if (rc) return rc;
    if (grow((void **)&c->tab_cache, &c->tab_cache_cap, h->tabs_len, 1))
        return fail(c, SLIM_ENOMEM, "out of memory");
    memcpy(c->tab_cache, h->tabs, h->tabs_len);
    c->tab_cache_len = h->tabs_len;
    c->tab_mode = quant;
    return 0;
}

/* log(q * step) for small q, cached per step (prob mode decodes). */
static int build_logq(slim_codec *c, double step)
{
    if (c->logq && c->logq_step == step) return 0;
    double n = 1.05 / step + 2;
    uint32_t nq = n > 65536 ? 65536 : (uint32_t)n;
    if (grow((void **)&c->logq, &c->logq_cap, nq, sizeof *c->logq))
        return fail(c, SLIM_ENOMEM, "out of memory");
    for (uint32_t q = 0; q < nq; q++) c->logq[q] = log((double)q * step);
    c->nlogq = nq;
    c->logq_step = step;
    return 0;
}

/* Entries arrive in id order; sort them to rank order (value descending,
 * ties by ascending id: a stable sort keyed on the value alone). */
static void rank_sort(slim_codec *c, uint32_t *ids, float *vals, uint32_t k)
{
    uint64_t *a = c->sk, *orig = c->sv;
    for (uint32_t j = 0; j < k; j++) {
        uint32_t b = f2u(vals[j]);
        orig[j] = (uint64_t)ids[j] << 32 | b;
        if (b == 0x80000000u) b = 0;   /* -0 ties with +0 */
        a[j] = (uint64_t)(~ford(b)) << 32 | j;
    }
    if (k <= 24) insertion_u64(a, k);
    else a = radix_u64(a, c->sk2, k, 32, 32);
    for (uint32_t r = 0; r < k; r++) {
        uint64_t o = orig[(uint32_t)a[r]];
        ids[r] = (uint32_t)(o >> 32);
        vals[r] = u2f((uint32_t)o);
    }
}

/*
 * The hot loop.  Written with local state and macros so that the compiler
 * keeps both rANS states in registers; `x` is the current state, `y` the
 * other one, swapped after every group (a position's head, or one entry).
 *
 * Renormalisation is branchless: after any step a state needs at most one
 * 32-bit word (a symbol leaves x >= 2^19, a raw field of <= 31 bits x >= 1).
 * Reading 4 bytes at p is always inside the chunk, because every frame is
 * followed by at least 8 bytes (the next frame or the checksum); p never
 * moves past the frame's end (a stream that wants to is flagged bad).
 */
#define LOAD32(P) ((uint64_t)(P)[0] | (uint64_t)(P)[1] << 8 |                \
                   (uint64_t)(P)[2] << 16 | (uint64_t)(P)[3] << 24)
/* arithmetic, not ?: — the compiler would make it a branch */
#define NORM_FAST(X) do {                                                   \
        int rn_ = (X) < RANS_L;                                             \
        uint64_t w_ = LOAD32(px);                                           \
        (X) = ((X) << (32 * rn_)) | (w_ & (0 - (uint64_t)rn_));             \
        px += 4 * rn_;                                                      \
    } while (0)
/* the same, never moving px past ex (a stream that wants to is bad) */
#define NORM(X) do {                                                        \
        int rn_ = (X) < RANS_L;                                             \
        uint64_t w_ = LOAD32(px);                                           \
        (X) = ((X) << (32 * rn_)) | (w_ & (0 - (uint64_t)rn_));             \
        const uint8_t *q_ = px + 4 * rn_;                                   \
        bad |= q_ > ex;                                                     \
        px = q_ > ex ? ex : q_;                                             \
    } while (0)
/* Decode a symbol S of table T and the integer V of its bucket. */
#define SYMINT_(T, S, V, N) do {                                            \
        const dtab *t_ = (T);                                               \
        uint32_t sl_ = (uint32_t)x & (RANS_TOT - 1);                        \
        (S) = t_->sym[sl_];                                                 \
        uint64_t e_ = t_->info[S];                                          \
        x = (e_ & 0x1fff) * (x >> RANS_SCALE) + sl_ - ((e_ >> 13) & 0xfff); \
        N(x);                                                               \
        unsigned nb_ = (e_ >> 25) & 31;                                     \
        uint32_t r_ = (uint32_t)x & ((1u << nb_) - 1);                      \
        x >>= nb_;                                                          \
        N(x);                                                               \
        (V) = (uint32_t)(e_ >> 32) + r_;                                    \
    } while (0)
#define SYMINT(T, S, V) SYMINT_(T, S, V, NORM)
#define BITS(N, V) do {                                                     \
        unsigned nb_ = (N);                                                 \
        (V) = (uint32_t)x & ((1u << nb_) - 1);                              \
        x >>= nb_;                                                          \
        NORM(x);                                                            \
    } while (0)
#define BITS32(V) do {                                                      \
        uint32_t lo_, hi_;                                                  \
        BITS(16, lo_); BITS(16, hi_);                                       \
        (V) = hi_ << 16 | lo_;                                              \
    } while (0)
/* An entry's id and value symbol: 4 renormalisations, <= 16 bytes. */
#define GAP_VAL(N) do {                                                     \
        unsigned cx_ = ctx_of(next);                                        \
        SYMINT_(gap + cx_, s, g, N);                                        \
        bad |= !((gmask >> cx_) & 1);                                       \
        id = (uint64_t)next + g;                                            \
        bad |= id >= V;                                                     \
        next = (uint32_t)id + 1;                                            \
        cx_ = ctx_of((uint32_t)id);                                         \
        SYMINT_(val + cx_, s, u, N);                                        \
        bad |= !((vmask >> cx_) & 1);                                       \
    } while (0)
#define SWAP() do {                                                         \
        uint64_t t_ = x; x = y; y = t_;                                     \
        const uint8_t *u_ = px; px = py; py = u_;                           \
        u_ = ex; ex = ey; ey = u_;                                          \
    } while (0)

enum { M_SAMPLED = 0 };   /* else the SLIM_PREC_* of a LOGITS chunk */

typedef struct frame_job {
    const uint8_t *fp; size_t flen;
    uint32_t pa, pb;           /* positions of the frame */
    uint32_t i, iend;          /* wanted positions */
    slim_dist *out; uint32_t *ids; float *vals; size_t *off;
    int rank;                  /* sort to rank order */
} frame_job;

/* Rank order from the per-entry keys in c->sk (ascending key = value
 * descending; ties keep id order); falls back to the float sort when the
 * keys cannot be trusted (raw escapes, floats that collapsed). */
static void rank_by_keys(slim_codec *c, uint32_t *oid, float *oval, uint32_t k, int use_keys)
{
    if (!use_keys) { rank_sort(c, oid, oval, k); return; }
    uint32_t *tid = (uint32_t *)c->sv;
    float *tval = (float *)(tid + k);
    uint64_t *keys = c->sk;
    memcpy(tid, oid, k * sizeof *tid);
    memcpy(tval, oval, k * sizeof *tval);
    uint32_t lo = UINT32_MAX, hi = 0;
    for (uint32_t j = 0; j < k; j++) {
        uint32_t key = (uint32_t)(keys[j] >> 32);
        lo = key < lo ? key : lo;
        hi = key > hi ? key : hi;
    }
    uint64_t range = (uint64_t)hi - lo + 1;
    if (k > 24 && range <= 2 * (uint64_t)k + 256 &&
        grow((void **)&c->cnt, &c->cnt_cap, range + 1, sizeof *c->cnt) == 0) {
        /* small key range (quantised values): one counting pass, stable */
        uint32_t *cnt = c->cnt, sum = 0;
        memset(cnt, 0, range * sizeof *cnt);
        for (uint32_t j = 0; j < k; j++) cnt[(uint32_t)(keys[j] >> 32) - lo]++;
        for (uint64_t b = 0; b < range; b++) { uint32_t t = cnt[b]; cnt[b] = sum; sum += t; }
        for (uint32_t j = 0; j < k; j++) {
            uint32_t r = cnt[(uint32_t)(keys[j] >> 32) - lo]++;
            oid[r] = tid[j];
            oval[r] = tval[j];
        }
    } else {
        uint64_t *a = k <= 24 ? (insertion_u64(keys, k), keys) : radix_u64(keys, c->sk2, k, 32, 32);
        for (uint32_t r = 0; r < k; r++) {
            uint32_t j = (uint32_t)a[r];
            oid[r] = tid[j];
            oval[r] = tval[j];
        }
    }
    /* keys order quantised values; equal floats from different keys (huge
     * ref, float rounding) must still tie by id: check, else sort floats */
    for (uint32_t r = 1; r < k; r++) {
        if (oval[r - 1] < oval[r] || (oval[r - 1] == oval[r] && oid[r - 1] > oid[r])) {
            memcpy(oid, tid, k * sizeof *tid);
            memcpy(oval, tval, k * sizeof *tval);
            rank_sort(c, oid, oval, k);
            return;
        }
    }
}

static inline __attribute__((always_inline)) int
decode_frame_m(slim_codec *c, const chdr *h, const frame_job *J, const int mode, const int ranked)
{
    /* x, px, ex: the current state, its stream and the stream's end */
    const uint8_t *px = J->fp + 16, *end = J->fp + J->flen, *py, *ex, *ey;
    uint64_t x = get_u64le(J->fp), y = get_u64le(J->fp + 8), n0;
    uint32_t bad = 0, V = h->V, p_i;
    if (get_varint(&px, end, &n0) || n0 > (uint64_t)(end - px) || n0 % 4 ||
        (uint64_t)(end - px - n0) % 4)
        return CORRUPT(c, "frame at position %u: bad stream split", J->pa);
    ex = py = px + n0;
    ey = end;
    const double step = h->step;
    const dtab *misc = &c->dt[TAB_MISC], *gap = &c->dt[TAB_GAP], *val = &c->dt[TAB_VAL];
    const uint32_t gmask = c->tmask[0], vmask = c->tmask[1];
    if (x < RANS_L || y < RANS_L || (x >> 63) || (y >> 63)) return CORRUPT(c, "frame at position %u: bad rANS state", J->pa);
    for (p_i = J->pa; p_i < J->pb && p_i < J->iend; p_i++) {
        uint32_t k = c->kpos[p_i], lseb, ns = 0, maxkey = 0, u, s;
        int64_t qbase = 0;
        double ref = 0;
        BITS32(lseb);
        float lse = u2f(lseb);
        if (mode == M_SAMPLED) {
            SYMINT(misc, s, ns);
            bad |= !c->misc_ok;
        } else if (mode == SLIM_PREC_LOSSLESS) {
            BITS32(maxkey);
        } else {
            if (isfinite(lse)) ref = lse;
            else { BITS32(u); ref = u2f(u); }
            SYMINT(misc, s, u);
            bad |= !c->misc_ok;
            qbase = -(int64_t)u;
        }
        SWAP();
        uint32_t *oid = NULL;
        float *oval = NULL;
        int want = p_i >= J->i, rank = ranked && want && k > 1;
        int keys_ok = mode != SLIM_PREC_LOSSLESS;
        if (want) { oid = J->ids + *J->off; oval = J->vals + *J->off; }
        uint32_t next = 0, kfin = 0, ninf = 0;
        uint64_t *keys = c->sk;
        for (uint32_t j = 0; j < k; j++) {
            uint32_t g, key = 0;
            uint64_t id;
            /* away from the stream's end, skip the per-word bounds checks */
            if (ex - px >= 16) GAP_VAL(NORM_FAST);
            else GAP_VAL(NORM);
            float v;
            if (mode == M_SAMPLED) {
                v = (float)u;
                key = ~u;
            } else if (mode == SLIM_PREC_LOSSLESS) {
                bad |= u > maxkey;
                v = u2f(funord(maxkey - u));
            } else if (s < 2) {
                if (s == SYM_INF) { v = -INFINITY; key = UINT32_MAX; ninf++; }
                else { BITS32(u); v = u2f(u); keys_ok = 0; }
            } else {
                int64_t q = (int64_t)u + qbase;
                if (mode == SLIM_PREC_LOGPROB) {
                    v = (float)(ref - step * (double)q);
                    key = (uint32_t)q;
                } else if (q <= 0) {
                    v = -INFINITY; key = UINT32_MAX; ninf++;
                } else {
                    v = (float)(ref + ((uint64_t)q < c->nlogq ? c->logq[q] : log((double)q * step)));
                    key = UINT32_MAX - 1 - (uint32_t)q;
                }
            }
            if (key != UINT32_MAX && key > kfin) kfin = key;
            if (want) { oid[j] = (uint32_t)id; oval[j] = v; }
            if (rank) keys[j] = (uint64_t)key << 32 | j;
            SWAP();
        }
        if (bad) return CORRUPT(c, "position %u: undecodable", h->first_pos + p_i);
        if (want) {
            slim_dist *o = &J->out[p_i - J->i];
            o->k = k; o->n_samples = ns; o->lse = lse; o->ids = oid; o->vals = oval;
            if (rank) {
                /* -inf last, with a key just past the finite ones (fewer passes) */
                if (ninf && keys_ok && kfin < UINT32_MAX - 1)
                    for (uint32_t j = 0; j < k; j++)
                        if ((keys[j] >> 32) == UINT32_MAX) keys[j] = (uint64_t)(kfin + 1) << 32 | j;
                rank_by_keys(c, oid, oval, k, keys_ok);
            }
            *J->off += k;
        }
    }
    if (p_i == J->pb && (px != ex || py != ey || x != RANS_L || y != RANS_L))
        return CORRUPT(c, "frame at position %u: stream does not end where it should", J->pa);
    return 0;
}

/* One specialisation per (mode, order): no mode tests in the hot loop. */
static int decode_frame(slim_codec *c, const chdr *h, const frame_job *J)
{
    int m = h->kind == SLIM_KIND_SAMPLED ? M_SAMPLED : h->mode;
    if (J->rank) {
        switch (m) {
        case M_SAMPLED: return decode_frame_m(c, h, J, M_SAMPLED, 1);
        case SLIM_PREC_LOGPROB: return decode_frame_m(c, h, J, SLIM_PREC_LOGPROB, 1);
        case SLIM_PREC_PROB: return decode_frame_m(c, h, J, SLIM_PREC_PROB, 1);
        default: return decode_frame_m(c, h, J, SLIM_PREC_LOSSLESS, 1);
        }
    }
    switch (m) {
    case M_SAMPLED: return decode_frame_m(c, h, J, M_SAMPLED, 0);
    case SLIM_PREC_LOGPROB: return decode_frame_m(c, h, J, SLIM_PREC_LOGPROB, 0);
    case SLIM_PREC_PROB: return decode_frame_m(c, h, J, SLIM_PREC_PROB, 0);
    default: return decode_frame_m(c, h, J, SLIM_PREC_LOSSLESS, 0);
    }
}

int slim_chunk_decode(slim_codec *c, const uint8_t *src, size_t len,
                      uint32_t i, uint32_t n, slim_dist *out, uint32_t *ids,
                      float *vals, size_t cap, size_t *need, unsigned flags,
                      int check)
{
    chdr h;
    const uint8_t *body;
    c->err[0] = 0;
    int rc = parse_fixed(c, src, len, &h, &body);
    if (!rc && check) rc = verify_checksum(c, src, len);
    if (!rc) rc = parse_body(c, body, src + len - CHECKSUM_BYTES, &h);
    if (rc) return rc;
    if ((uint64_t)i + n > h.npos)
        return fail(c, SLIM_EINVAL, "positions %u..%u not in chunk of %u", i, i + n, h.npos);
    uint64_t total = 0;
    uint32_t kmax = 0;
    for (uint32_t p = i; p < i + n; p++) {
        total += c->kpos[p];
        if (c->kpos[p] > kmax) kmax = c->kpos[p];
    }
    if (need) *need = (size_t)total;
    if (total > cap) return fail(c, SLIM_ERANGE, "need room for %llu entries, have %zu",
                                 (unsigned long long)total, cap);
    if (n == 0) return 0;
    if (grow((void **)&c->sk, &c->sk_cap, kmax, sizeof *c->sk) ||
        grow((void **)&c->sk2, &c->sk2_cap, kmax, sizeof *c->sk2) ||
        grow((void **)&c->sv, &c->sv_cap, kmax, sizeof *c->sv))  /* also 2 x u32 */
        return fail(c, SLIM_ENOMEM, "out of memory");
    if ((rc = build_tables(c, &h))) return rc;
    if (h.mode == SLIM_PREC_PROB && (rc = build_logq(c, h.step))) return rc;
    size_t off = 0, foff = 0;
    for (uint32_t f = 0; f < h.nframes && c->fstart[f] < i + n; f++) {
        if (c->fstart[f + 1] > i) {
            frame_job J = {h.frames + foff, c->flen[f], c->fstart[f], c->fstart[f + 1], i, i + n,
                           out, ids, vals, &off, !(flags & SLIM_READ_ID_ORDER)};
            rc = decode_frame(c, &h, &J);
            if (rc) return rc;
        }
        foff += c->flen[f];
    }
    return 0;
}
