/*
 * codec_internal.h — private to store/codec*.c: constants, types and small
 * helpers shared by the record encoder (codec.c) and decoder
 * (codec_decode.c).  The byte layout is docs/FORMAT.md, "Record chunks".
 */
#ifndef SLIM_CODEC_INTERNAL_H
#define SLIM_CODEC_INTERNAL_H

#include "codec.h"
#include "codec_rans.h"

#include <stdlib.h>
#include <string.h>

#define CHUNK_MAGIC0 0x53     /* 'S' */
#define CHUNK_MAGIC1 0x43     /* 'C' */
#define CHUNK_VERSION 2       /* written; 1 is still read (no statistics block) */
#define PSTAT_FULL 0          /* statistics block: entropy and tail per position */
#define PSTAT_NOTAIL 1        /*   entropy only: every tail_mass is 0 */
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
#define TOK_RAW NTAB          /* a raw-only token's "table": identities */
#define Q_INF INT64_MIN
#define Q_RAW (INT64_MIN + 1)
#define CHECKSUM_BYTES 8
#define NCLOG 4096            /* entries of the n*log2(n) table */

typedef struct tok {          /* one state's step, in decode order: a symbol, */
    uint32_t idx;             /* TOK_IDX(table, symbol) (TOK_RAW: none), then */
    uint32_t bits;            /* the raw bits of its bucket (esym[..].nb of them) */
} tok;
#define TOK_IDX(tab, sym) ((uint32_t)(tab) * NVSYM + (uint32_t)(sym))

typedef struct dtab {         /* decode table */
    /* per symbol, all a decode step needs in one load: freq (bits 0-12),
     * cum (13-24), raw bit count of its bucket (25-29), bucket base (32-63) */
    uint64_t info[NVSYM];
    uint8_t sym[RANS_TOT];    /* slot -> symbol */
} dtab;

typedef struct etab {         /* encoder statistics and model */
    uint32_t *count;          /* [NVSYM]: the table's row of slim_codec.ecount */
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
    int version;
    int smode;                /* version 2: PSTAT_* */
    const uint8_t *stats;     /* version 2: the statistics block's records */
} chdr;

struct slim_codec {
    char err[256];
    /* encoder scratch */
    tok *toks[2]; size_t ntoks[2], toks_cap[2];  /* per rANS state: the streams are independent */
    uint64_t *pairs, *pairs2; int64_t *q; size_t pairs_cap, pairs2_cap, q_cap;
    uint32_t *kpos; size_t kpos_cap;        /* also used by the decoder */
    uint32_t *ftok; size_t ftok_cap;        /* [2f + st]: state st's first token of frame f (+ end) */
    uint8_t *fbuf, *tmp; size_t fbuf_cap, tmp_cap;
    uint32_t *flen; size_t flen_cap;
    etab et[NTAB];
    uint32_t ecount[NTAB][NVSYM];           /* symbol counts, indexed by tok.idx */
    uint32_t ecountx[3][NTAB][NVSYM];       /* more of them (the SIMD tokeniser's: by state
                                               and entry pair, see tokenise_fast), added to
                                               ecount by counts_merge */
    rans_esym esym[NTAB + 1][NVSYM];        /* encoder form of et[].freq/cum, indexed by
                                               tok.idx; row TOK_RAW: entry n is the identity
                                               (freq 4096) with n raw bits */
    int simd;                 /* the AVX-512 tokeniser may be used (codec_simd.c) */
    double *clogx; uint32_t clogx_n;        /* n*log2(n) for NCLOG <= n < NCLOG + clogx_n */
    /* the last chunk as a decoder reconstructs it (slim_chunk_encoded) */
    slim_dist *rd; size_t rd_cap; uint32_t rnpos;
    uint32_t *rids; float *rvals; size_t rcap, rvcap;
    slim_pstat *rps; size_t rps_cap;        /* their statistics (the block) */
    /* slim_chunk_pstats of a version 1 chunk: decode scratch */
    uint32_t *pids; float *pvals; size_t pcap, pvcap;
    slim_dist *pdist; size_t pdist_cap;
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

/* codec_simd.c: whether this CPU runs it, and the tokeniser of a logprob
 * position (contract there); 0 = tokens written, 1 = use the scalar path. */
int slim__codec_simd_cpu(void);
int slim__tokenise_logprob_simd(const uint32_t *ids, const float *vals, uint32_t k, uint32_t V,
                                double ref, double step, double inv_step, double eps, tok *wa,
                                tok *wb, uint32_t *rid, float *rv, uint64_t *rawbits);

/* Keep a message on c (may be NULL) and return rc. */
int slim__codec_fail(slim_codec *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define fail slim__codec_fail

static inline int grow(void **p, size_t *cap, size_t need, size_t elem)
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
/* min(bitlen(x) >> CTX_SHIFT, NCTX - 1); x | 1 spares the x == 0 test
 * (bitlen 0 and 1 share a context when CTX_SHIFT >= 1). */
_Static_assert(CTX_SHIFT >= 1, "ctx_of relies on bitlen(0) and bitlen(1) sharing a context");
static inline unsigned ctx_of(uint32_t x)
{
    unsigned cx = (32 - (unsigned)__builtin_clz(x | 1)) >> CTX_SHIFT;
    return cx < NCTX ? cx : NCTX - 1;
}

/* Bucket of v: 0..15 themselves; then 4 buckets per power of two (the two
 * bits under the leading one), the rest raw (*nb <= 29 bits).  Returns the
 * symbol.  Branch-free: id gaps straddle 16 at random, and a mispredicted
 * branch per entry was a good part of the encoder's time. */
static inline unsigned bin_of(uint32_t v, unsigned *nb)
{
    unsigned e = 31 - (unsigned)__builtin_clz(v | 1);  /* bitlen(v) - 1 */
    int big = v >= 16;
    unsigned sh = big ? e - 2 : 0;
    *nb = sh;
    return big ? 16 + (e - 4) * 4 + ((v >> sh) & 3) : v;
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

static inline void put_u64le(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline void put_u32le(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline uint32_t get_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t get_u64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static inline size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) { p[n++] = (uint8_t)(v | 0x80); v >>= 7; }
    p[n++] = (uint8_t)v;
    return n;
}

/* LEB128 varint, at most 10 bytes; 0 on success, -1 past end/overlong. */
static inline int get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
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

static inline int get_varint32(const uint8_t **pp, const uint8_t *end, uint32_t *out)
{
    uint64_t v;
    if (get_varint(pp, end, &v) || v > UINT32_MAX) return -1;
    *out = (uint32_t)v;
    return 0;
}

#define TABLES_MAX (2 + NTAB * (5 + NVSYM * 2))
#define HEADER_MAX 64

/* --------------------------------------------------------------- sorting */

/* Stable LSD radix sort of keys[n] on bits [lo, lo+nbits), 8 bits a pass,
 * skipping passes whose digit is the same for every key. */
static inline uint64_t *radix_u64(uint64_t *a, uint64_t *b, size_t n, unsigned lo, unsigned nbits)
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

static inline void insertion_u64(uint64_t *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        uint64_t v = a[i];
        size_t j = i;
        while (j > 0 && a[j - 1] > v) { a[j] = a[j - 1]; j--; }
        a[j] = v;
    }
}

#endif
