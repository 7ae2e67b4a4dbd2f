/*
 * codec_decode.c — the record decoder: header parsing, frequency tables,
 * the rANS hot loop and rank ordering.  Layout: docs/FORMAT.md, "Record
 * chunks"; the encoder is codec.c.
 */
#include "codec_internal.h"

#include <math.h>
#include <stdlib.h>
#include <xxhash.h>

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
    if (p[2] != 1 && p[2] != CHUNK_VERSION) return CORRUPT(c, "unknown chunk version %u", p[2]);
    h->version = p[2];
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
    if (h->version >= 2) {  /* the statistics block */
        if (p >= end || *p > PSTAT_NOTAIL) return CORRUPT(c, "bad statistics block");
        h->smode = *p++;
        uint64_t sl = (uint64_t)h->npos * (h->smode == PSTAT_FULL ? 8 : 4);
        if (sl > (uint64_t)(end - p)) return CORRUPT(c, "truncated statistics block");
        h->stats = p;
        p += sl;
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
    out->version = h.version;
    return 0;
}

/* Version 1: no block; decode the range (id order) and compute. */
static int pstats_by_decode(slim_codec *c, const uint8_t *src, size_t len, uint32_t i, uint32_t n,
                            uint64_t entries, int kind, slim_pstat *out)
{
    if (grow((void **)&c->pids, &c->pcap, entries + 1, sizeof *c->pids) ||
        grow((void **)&c->pvals, &c->pvcap, entries + 1, sizeof *c->pvals) ||
        grow((void **)&c->pdist, &c->pdist_cap, n, sizeof *c->pdist))
        return fail(c, SLIM_ENOMEM, "out of memory");
    int rc = slim_chunk_decode(c, src, len, i, n, c->pdist, c->pids, c->pvals, c->pcap, NULL,
                               SLIM_READ_ID_ORDER, 0);
    if (rc) return rc == SLIM_ERANGE ? CORRUPT(c, "k table exceeds the header's entries") : rc;
    for (uint32_t j = 0; j < n; j++) slim_dist_pstat(&c->pdist[j], kind, &out[j]);
    return 0;
}

int slim_chunk_pstats(slim_codec *c, const uint8_t *src, size_t len, uint32_t i, uint32_t n,
                      slim_pstat *out, int check)
{
    chdr h;
    const uint8_t *body;
    c->err[0] = 0;
    int rc = parse_fixed(c, src, len, &h, &body);
    if (!rc && check) rc = verify_checksum(c, src, len);
    if (rc) return rc;
    if ((uint64_t)i + n > h.npos)
        return fail(c, SLIM_EINVAL, "positions %u..%u not in chunk of %u", i, i + n, h.npos);
    if (h.version < 2) return pstats_by_decode(c, src, len, i, n, h.entries, h.kind, out);
    size_t w = h.smode == PSTAT_FULL ? 8 : 4;
    for (uint32_t j = 0; j < n; j++) {
        const uint8_t *r = h.stats + (size_t)(i + j) * w;
        out[j].entropy = u2f(get_u32le(r));
        out[j].tail_mass = w == 8 ? u2f(get_u32le(r + 4)) : 0.0f;
    }
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

/* Fill out[p_i - i] with the entries just decoded at *J->off (id order)
 * and sort them to rank order: rank 1 by the keys in c->sk, 2 by the float
 * values (lossless: -0/+0 differ in keys; raw escapes have none), 0 not.
 * inf_fix: some keys are -inf's UINT32_MAX, to be moved just past the
 * finite ones (fewer sort passes). */
static void put_position(slim_codec *c, const frame_job *J, uint32_t p_i, uint32_t k,
                         uint32_t ns, float lse, int rank, int inf_fix, uint32_t kfin)
{
    uint32_t *oid = J->ids + *J->off;
    float *oval = J->vals + *J->off;
    slim_dist *o = &J->out[p_i - J->i];
    o->k = k; o->n_samples = ns; o->lse = lse; o->ids = oid; o->vals = oval;
    if (rank) {
        uint64_t *keys = c->sk;
        if (rank == 1 && inf_fix && kfin < UINT32_MAX - 1)
            for (uint32_t j = 0; j < k; j++)
                if ((keys[j] >> 32) == UINT32_MAX) keys[j] = (uint64_t)(kfin + 1) << 32 | j;
        rank_by_keys(c, oid, oval, k, rank == 1);
    }
    *J->off += k;
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
        if (want) put_position(c, J, p_i, k, ns, lse, rank ? (keys_ok ? 1 : 2) : 0, ninf > 0, kfin);
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
