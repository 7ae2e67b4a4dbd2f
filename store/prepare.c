/*
 * prepare.c — the half of appending a sequence that needs no writer:
 * validation, record encoding and the content hash (of the values the
 * encoder says a decoder will reconstruct; decode-after-encode on request).
 * Runs on any thread with its own slim_preparer; the writer (write_seq.c)
 * then only numbers the sequence and appends the ready chunks.  Dense ingest
 * spends most of its store time here (a V=32000 top-5 % position is 1600
 * entries to code), which is why it must not be on the single writer thread.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "write_internal.h"

int slim_preparer_new(slim_preparer **out)
{
    slim_preparer *pr = calloc(1, sizeof *pr);
    *out = NULL;
    if (!pr) return SLIM_ENOMEM;
    int rc = slim_codec_new(&pr->codec);
    if (rc) {
        free(pr);
        return rc;
    }
    const char *v = getenv("SLIM_VERIFY_ENCODE");
    pr->verify = v && *v && strcmp(v, "0") != 0;
    *out = pr;
    return 0;
}

void slim_preparer_free(slim_preparer *pr)
{
    if (!pr) return;
    slim_codec_free(pr->codec);
    free(pr->seen);
    free(pr->ids);
    free(pr->vals);
    free(pr->dbuf);
    free(pr);
}

int slim_prepared_new(slim_prepared **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out) return SLIM_ENOMEM;
    (*out)->rc = SLIM_EINVAL;
    snprintf((*out)->err, sizeof (*out)->err, "nothing prepared");
    return 0;
}

void slim_prepared_free(slim_prepared *p)
{
    if (!p) return;
    free(p->buf);
    free(p->chunks);
    free(p);
}

int slim_prepared_status(const slim_prepared *p) { return p->rc; }
const char *slim_prepared_errmsg(const slim_prepared *p) { return p->err; }
int64_t slim_prepared_bytes(const slim_prepared *p) { return p->rc ? 0 : p->bytes; }
int64_t slim_prepared_entries(const slim_prepared *p) { return p->rc ? 0 : p->entries; }

static int perr(slim_prepared *p, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr(slim_prepared *p, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof p->err, fmt, ap);
    va_end(ap);
    return p->rc = rc;
}

/* ------------------------------------------------------------ validation */

/* Whether a logits position is plainly valid: ids strictly ascending (so
 * no duplicates) and < V, no NaN or +Inf.  Branch-free, one pass: the
 * common case (a sparsifier's output) then skips the id bitmap.  Left to
 * the compiler to vectorise (O3 for this function, with AVX-512 and AVX2
 * clones picked at load time): as a scalar loop it was ~3 % of a dense
 * ingest's CPU. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
__attribute__((target_clones("avx512f", "avx2", "default"), optimize("O3")))
#endif
static int plain_logits(const slim_dist *d, uint32_t V)
{
    const uint32_t *id = d->ids;
    const float *v = d->vals;
    uint32_t k = d->k;
    if (!k) return 1;
    unsigned ok = (id[0] < V) & (v[0] < INFINITY);
    for (uint32_t j = 1; j < k; j++)
        ok &= (id[j] < V) & (id[j] > id[j - 1]) & (v[j] < INFINITY);  /* NaN fails < too */
    return (int)ok;
}

static int check_dist(slim_preparer *pr, slim_prepared *p, uint32_t i, const slim_dist *d)
{
    uint32_t V = p->V;
    if (d->k > V) return perr(p, SLIM_EINVAL, "position %u: %u entries > vocab size %u", i, d->k, V);
    if (d->k && (!d->ids || !d->vals)) return perr(p, SLIM_EINVAL, "position %u: no ids or values", i);
    if (isinf(d->lse)) return perr(p, SLIM_EINVAL, "position %u: infinite lse", i);
    if (p->kind == SLIM_KIND_LOGITS && d->n_samples)
        return perr(p, SLIM_EINVAL, "position %u: n_samples %u in a logits dataset", i, d->n_samples);
    if (p->kind == SLIM_KIND_LOGITS && plain_logits(d, V)) return 0;
    double sum = 0;
    int rc = 0;
    uint32_t j;
    for (j = 0; j < d->k && !rc; j++) {
        uint32_t id = d->ids[j];
        float v = d->vals[j];
        if (id >= V) {
            rc = perr(p, SLIM_EINVAL, "position %u: id %u >= vocab size %u", i, id, V);
            break;
        }
        if (pr->seen[id >> 3] & (1u << (id & 7))) {
            rc = perr(p, SLIM_EINVAL, "position %u: id %u appears twice", i, id);
            break;
        }
        pr->seen[id >> 3] |= (uint8_t)(1u << (id & 7));
        if (isnan(v) || (isinf(v) && v > 0))
            rc = perr(p, SLIM_EINVAL, "position %u: id %u has value %g", i, id, (double)v);
        else if (p->kind == SLIM_KIND_SAMPLED && (!(v >= 1) || v != floorf(v) || v > 16777216.0f))
            rc = perr(p, SLIM_EINVAL, "position %u: id %u has count %g (need a positive integer)", i, id,
                      (double)v);
        sum += v;
    }
    for (uint32_t m = 0; m < j && m < d->k; m++)  /* clear only the bits set */
        if (d->ids[m] < V) pr->seen[d->ids[m] >> 3] = 0;
    if (!rc && p->kind == SLIM_KIND_SAMPLED && sum != (double)d->n_samples)
        rc = perr(p, SLIM_EINVAL, "position %u: counts sum to %.0f, not n_samples %u", i, sum, d->n_samples);
    return rc;
}

static int validate(slim_preparer *pr, slim_prepared *p, size_t *entries)
{
    uint32_t T = p->T, npos = p->npos, V = p->V;
    if (npos > T) return perr(p, SLIM_EINVAL, "%u positions for %u tokens", npos, T);
    if (T && !p->tokens) return perr(p, SLIM_EINVAL, "no tokens");
    if (npos > p->from && !p->dists) return perr(p, SLIM_EINVAL, "no distributions");
    for (uint32_t i = 0; i < T; i++)
        if (p->tokens[i] >= V)
            return perr(p, SLIM_EINVAL, "token %u at index %u >= vocab size %u", p->tokens[i], i, V);
    size_t bits = ((size_t)V + 7) / 8;
    if (pr->seencap < bits) {
        free(pr->seen);
        pr->seencap = 0;
        if (!(pr->seen = calloc(bits, 1))) return perr(p, SLIM_ENOMEM, "out of memory");
        pr->seencap = bits;
    }
    *entries = 0;
    for (uint32_t i = p->from; i < npos; i++) {
        int rc = check_dist(pr, p, i, &p->dists[i]);
        if (rc) return rc;
        *entries += p->dists[i].k;
    }
    return 0;
}

/* ------------------------------------------------------------ encoding */

/* p->buf with room for `need` bytes, growing to an eighth more than that
 * (not to a power of two, which would touch up to twice the bytes of the
 * huge pages the tool's heap gives it), or half as much again when `more`
 * (after a chunk did not fit: no reallocation per chunk).  Nothing is
 * copied while the buffer is empty. */
static int buf_room(slim_prepared *p, size_t need, int more)
{
    if (need <= p->bufcap) return 0;
    size_t cap = need + need / 8;
    if (more && cap < p->bufcap + p->bufcap / 2) cap = p->bufcap + p->bufcap / 2;
    uint8_t *b;
    if (p->buflen) b = realloc(p->buf, cap);
    else {
        free(p->buf);
        p->buf = NULL;
        p->bufcap = 0;
        b = malloc(cap);
    }
    if (!b) return SLIM_ENOMEM;
    p->buf = b;
    p->bufcap = cap;
    return 0;
}

/* Encode positions [from, npos) into p's chunks; with h, hash each chunk's
 * positions as the codec reconstructs them (in position order). */
static int encode_all(slim_preparer *pr, slim_prepared *p, size_t entries, slim_hasher *h)
{
    slim_chunk_params par = {p->kind, p->prec, p->V, p->from, 0};
    /* room for the whole range: every chunk is encoded in place at the end
     * of buf (a chunk that does not fit is encoded again after buf grows).
     * The codec's worst case is ~7x what a dense position takes, and with
     * the tool's huge-page heap (slim_tool_big_heap) every buffer sized for
     * it touched a 2 MiB page of its own; past the first sequence, 1.25x the
     * most bytes per entry this preparer has seen (and 64 bytes a position) */
    uint32_t np = p->npos - p->from;
    size_t bound = slim_chunk_bound(np, entries) + 64 * (size_t)(np + 1);
    double guess = pr->bpe * 1.25 * (double)(entries + np) + 64.0 * np + 4096;
    if (pr->bpe > 0 && guess < (double)bound) bound = (size_t)guess;
    if (buf_room(p, bound, 0)) return perr(p, SLIM_ENOMEM, "out of memory");
    for (uint32_t pos = p->from; pos < p->npos;) {
        size_t len;
        uint32_t used;
        if (slim__grow((void **)&p->chunks, &p->chunkcap, p->nchunks + 1, sizeof *p->chunks))
            return perr(p, SLIM_ENOMEM, "out of memory");
        par.first_pos = pos;
        int rc = slim_chunk_encode(pr->codec, &par, p->dists + pos, p->npos - pos, p->buf + p->buflen,
                                   p->bufcap - p->buflen, &len, &used);
        if (rc == SLIM_ERANGE && len > p->bufcap - p->buflen) {  /* bound too tight: grow, retry */
            if (buf_room(p, p->buflen + len, 1)) return perr(p, SLIM_ENOMEM, "out of memory");
            continue;
        }
        if (rc || used == 0)
            return perr(p, rc ? rc : SLIM_ERROR, "position %u: encoding failed: %s", pos,
                        slim_codec_errmsg(pr->codec));
        p->chunks[p->nchunks++] = (slim__pchunk){pos, used, p->buflen, len};
        if (h) {
            uint32_t m;
            const slim_dist *rd = slim_chunk_encoded(pr->codec, &m);
            for (uint32_t j = 0; j < m; j++) slim__hash_pos(h, &rd[j]);
        }
        p->buflen += len;
        p->bytes += (int64_t)len;
        pos += used;
    }
    double r = (double)(p->buflen) / (double)(entries + np);
    if (r > pr->bpe) pr->bpe = r;
    return 0;
}

int slim__prepared_feed(slim_preparer *pr, const slim_prepared *p, slim_hasher *h, int64_t *entries,
                        char *err, size_t cap)
{
    for (size_t c = 0; c < p->nchunks; c++) {
        const slim__pchunk *ch = &p->chunks[c];
        const uint8_t *src = p->buf + ch->off;
        slim_chunk_header hd;
        if (slim_chunk_header_read(src, ch->len, 0, &hd) || hd.npos != ch->npos) {
            snprintf(err, cap, "position %u: codec wrote an unreadable header", ch->first_pos);
            return SLIM_ECORRUPT;
        }
        size_t cap0 = pr->cap;
        if (slim__grow((void **)&pr->ids, &pr->cap, hd.entries + 1, 4) ||
            slim__grow((void **)&pr->vals, &cap0, pr->cap, 4) ||
            slim__grow((void **)&pr->dbuf, &pr->dcap, ch->npos, sizeof(slim_dist))) {
            snprintf(err, cap, "out of memory");
            return SLIM_ENOMEM;
        }
        /* no checksum pass: these bytes were just made here, and a checksum
         * computed over mis-encoded bytes would match anyway; the decode is
         * what catches a codec bug (and gives the values for the hash) */
        if (slim_chunk_decode(pr->codec, src, ch->len, 0, ch->npos, pr->dbuf, pr->ids, pr->vals, pr->cap,
                              NULL, SLIM_READ_ID_ORDER, 0)) {
            snprintf(err, cap, "position %u: chunk does not decode after encode: %s", ch->first_pos,
                     slim_codec_errmsg(pr->codec));
            return SLIM_ECORRUPT;
        }
        for (uint32_t j = 0; j < ch->npos; j++) {
            slim__hash_pos(h, &pr->dbuf[j]);
            *entries += pr->dbuf[j].k;
        }
    }
    return 0;
}

/* SLIM_VERIFY_ENCODE: decode every chunk just made and check that it gives
 * the hash computed from the encoder's reconstruction (a codec bug shows
 * here as SLIM_ECORRUPT instead of as a store that fails verify later). */
static int verify_encoded(slim_preparer *pr, slim_prepared *p)
{
    slim_hasher h;
    uint8_t hash[16];
    int64_t got = 0;
    if (slim__hash_begin(&h, p->tokens, p->T, p->npos)) return perr(p, SLIM_ENOMEM, "out of memory");
    int rc = slim__prepared_feed(pr, p, &h, &got, p->err, sizeof p->err);
    slim__hash_end(&h, hash);
    if (rc) return p->rc = rc;
    if (got != p->entries || memcmp(hash, p->hash, 16))
        return perr(p, SLIM_ECORRUPT, "the chunks decode to other values than the encoder reconstructed");
    return 0;
}

int slim__prepare(slim_preparer *pr, slim_prepared *p, int kind, const slim_precision *prec, uint32_t V,
                  const uint32_t *tokens, uint32_t T, const slim_dist *dists, uint32_t npos, uint32_t from)
{
    p->rc = 0;
    p->err[0] = 0;
    p->kind = kind;
    p->prec = prec ? *prec : (slim_precision){0, 0};
    p->V = V;
    p->T = T;
    p->npos = npos;
    p->from = from;
    p->tokens = tokens;
    p->dists = dists;
    p->buflen = p->nchunks = 0;
    p->entries = p->bytes = 0;
    p->hashed = 0;
    if (kind != SLIM_KIND_LOGITS && kind != SLIM_KIND_SAMPLED)
        return perr(p, SLIM_EINVAL, "unknown kind %d", kind);
    if (V == 0) return perr(p, SLIM_EINVAL, "vocab size 0");
    if (!prec) return perr(p, SLIM_EINVAL, "no precision");
    size_t entries = 0;
    int rc = validate(pr, p, &entries);
    p->entries = (int64_t)entries;
    if (rc) return rc;
    if (from > 0) return from < npos ? encode_all(pr, p, entries, NULL) : 0;
    /* an owner's hash needs nothing but its own records: computed here
     * while encoding, from the values a reader will get back */
    slim_hasher h;
    if (slim__hash_begin(&h, tokens, T, npos)) return perr(p, SLIM_ENOMEM, "out of memory");
    if (npos) rc = encode_all(pr, p, entries, &h);
    slim__hash_end(&h, p->hash);
    if (!rc && pr->verify) rc = verify_encoded(pr, p);
    if (rc) return rc;
    p->hashed = 1;
    return 0;
}

int slim_seq_prepare(slim_preparer *pr, int kind, const slim_precision *prec, uint32_t V,
                     const uint32_t *tokens, uint32_t T, const slim_dist *dists, uint32_t npos,
                     slim_prepared *out)
{
    return slim__prepare(pr, out, kind, prec, V, tokens, T, dists, npos, 0);
}
