/*
 * tokenizer.c — byte-level BPE: train, encode, decode, slim's file format;
 * the handle and its tables (tokenizer_hf.c adds the Hugging Face
 * import/export).  docs/TOKENIZER.md is the user-facing description;
 * tokenizer.h the contract.
 */
#include "tokenizer_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <xxhash.h>

/* ------------------------------------------------------------ string map */

static uint64_t shash(const void *k, size_t len)
{
    uint64_t h = XXH3_64bits(k, len);
    return h ? h : 1;
}

int slim_smap_init(smap *m, size_t cap)
{
    memset(m, 0, sizeof *m);
    m->cap = 16;
    while (m->cap < cap * 2) m->cap *= 2;
    m->hash = calloc(m->cap, sizeof *m->hash);
    m->koff = malloc(m->cap * sizeof *m->koff);
    m->klen = malloc(m->cap * sizeof *m->klen);
    m->val = malloc(m->cap * sizeof *m->val);
    return m->hash && m->koff && m->klen && m->val ? 0 : SLIM_ENOMEM;
}

void slim_smap_free(smap *m)
{
    free(m->hash);
    free(m->koff);
    free(m->klen);
    free(m->val);
    free(m->arena);
    memset(m, 0, sizeof *m);
}

static void smap_clear(smap *m)
{
    memset(m->hash, 0, m->cap * sizeof *m->hash);
    m->n = 0;
    m->alen = 0;
}

static size_t smap_slot(const smap *m, const void *k, size_t len, uint64_t h)
{
    size_t i = h & (m->cap - 1);
    while (m->hash[i]) {
        if (m->hash[i] == h && m->klen[i] == len && !memcmp(m->arena + m->koff[i], k, len))
            return i;
        i = (i + 1) & (m->cap - 1);
    }
    return i;
}

uint32_t *slim_smap_get(const smap *m, const void *k, size_t len)
{
    if (!m->cap) return NULL;
    size_t i = smap_slot(m, k, len, shash(k, len));
    return m->hash[i] ? &m->val[i] : NULL;
}

static int smap_rehash(smap *m)
{
    smap o = *m;
    size_t cap = o.cap * 2;
    m->hash = calloc(cap, sizeof *m->hash);
    m->koff = malloc(cap * sizeof *m->koff);
    m->klen = malloc(cap * sizeof *m->klen);
    m->val = malloc(cap * sizeof *m->val);
    if (!m->hash || !m->koff || !m->klen || !m->val) {
        free(m->hash); free(m->koff); free(m->klen); free(m->val);
        *m = o;
        return SLIM_ENOMEM;
    }
    m->cap = cap;
    for (size_t i = 0; i < o.cap; i++) {
        if (!o.hash[i]) continue;
        size_t j = o.hash[i] & (cap - 1);
        while (m->hash[j]) j = (j + 1) & (cap - 1);
        m->hash[j] = o.hash[i];
        m->koff[j] = o.koff[i];
        m->klen[j] = o.klen[i];
        m->val[j] = o.val[i];
    }
    free(o.hash); free(o.koff); free(o.klen); free(o.val);
    return 0;
}

/* Insert k -> val unless present.  *slot points at the (new or old) value;
 * returns 1 if the key was already there, 0 if inserted, <0 on ENOMEM. */
int slim_smap_add(smap *m, const void *k, size_t len, uint32_t val, uint32_t **slot)
{
    if ((m->n + 1) * 2 > m->cap && smap_rehash(m)) return SLIM_ENOMEM;
    uint64_t h = shash(k, len);
    size_t i = smap_slot(m, k, len, h);
    if (m->hash[i]) {
        if (slot) *slot = &m->val[i];
        return 1;
    }
    if (grow((void **)&m->arena, &m->acap, m->alen + len + 1, 1)) return SLIM_ENOMEM;
    memcpy(m->arena + m->alen, k, len);
    m->hash[i] = h;
    m->koff[i] = m->alen;
    m->klen[i] = (uint32_t)len;
    m->val[i] = val;
    m->alen += len;
    m->n++;
    if (slot) *slot = &m->val[i];
    return 0;
}

/* -------------------------------------------------------------- pair map */

static uint64_t pkey(uint32_t a, uint32_t b) { return (uint64_t)a << 32 | b; }

static size_t pmix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x7fb5d329728ea185ull;
    x ^= x >> 27;
    x *= 0x81dadef4bc2dd44dull;
    return (size_t)(x ^ (x >> 33));
}

static int pmap_alloc(pmap *m, size_t cap)
{
    m->cap = cap;
    m->n = 0;
    m->key = malloc(cap * sizeof *m->key);
    m->val = malloc(cap * sizeof *m->val);
    if (!m->key || !m->val) return SLIM_ENOMEM;
    memset(m->key, 0xff, cap * sizeof *m->key);
    return 0;
}

static void pmap_free(pmap *m)
{
    free(m->key);
    free(m->val);
    memset(m, 0, sizeof *m);
}

static uint32_t pmap_get(const pmap *m, uint64_t k)
{
    if (!m->cap) return TOK_NONE;
    size_t i = pmix(k) & (m->cap - 1);
    while (m->key[i] != UINT64_MAX) {
        if (m->key[i] == k) return m->val[i];
        i = (i + 1) & (m->cap - 1);
    }
    return TOK_NONE;
}

/* Returns the slot's value pointer; inserts val when absent (*fresh = 1). */
static uint32_t *pmap_put(pmap *m, uint64_t k, uint32_t val, int *fresh)
{
    if ((m->n + 1) * 2 > m->cap) {
        pmap o = *m;
        if (pmap_alloc(m, o.cap ? o.cap * 2 : 64)) {
            pmap_free(m);
            *m = o;
            return NULL;
        }
        for (size_t i = 0; i < o.cap; i++)
            if (o.key[i] != UINT64_MAX) *pmap_put(m, o.key[i], o.val[i], fresh) = o.val[i];
        pmap_free(&o);
    }
    size_t i = pmix(k) & (m->cap - 1);
    while (m->key[i] != UINT64_MAX) {
        if (m->key[i] == k) {
            *fresh = 0;
            return &m->val[i];
        }
        i = (i + 1) & (m->cap - 1);
    }
    m->key[i] = k;
    m->val[i] = val;
    m->n++;
    *fresh = 1;
    return &m->val[i];
}

/* ------------------------------------------------------------- the handle */

slim_tok *slim_tok_alloc(int kind)
{
    slim_tok *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->kind = kind;
    for (int i = 0; i < 256; i++) t->byte_id[i] = TOK_NONE;
    return t;
}

void slim_tok_free(slim_tok *t)
{
    if (!t) return;
    free(t->off);
    free(t->len);
    free(t->special);
    free(t->arena);
    free(t->merge);
    pmap_free(&t->rank);
    slim_smap_free(&t->bypiece);
    slim_smap_free(&t->cache);
    free(t->cids);
    free(t);
}

/* Give id its piece.  Returns 1 if id already had one (the old one stays
 * unless replace), 0 if set, SLIM_ENOMEM. */
int slim_tok_set_piece(slim_tok *t, uint32_t id, const char *p, size_t n, int special, int replace)
{
    if (id >= t->icap) {
        size_t old = t->icap, c = old;
        if (grow((void **)&t->off, &c, (size_t)id + 1, sizeof *t->off)) return SLIM_ENOMEM;
        c = old;
        if (grow((void **)&t->len, &c, (size_t)id + 1, sizeof *t->len)) return SLIM_ENOMEM;
        c = old;
        if (grow((void **)&t->special, &c, (size_t)id + 1, 1)) return SLIM_ENOMEM;
        for (size_t i = old; i < c; i++) t->len[i] = TOK_NONE;
        t->icap = c;
    }
    if (t->len[id] != TOK_NONE && !replace) return 1;
    if (grow((void **)&t->arena, &t->acap, t->alen + n + 1, 1)) return SLIM_ENOMEM;
    memcpy(t->arena + t->alen, p, n);
    t->off[id] = t->alen;
    t->len[id] = (uint32_t)n;
    t->special[id] = (uint8_t)(special != 0);
    t->alen += n;
    if (id >= t->size) t->size = id + 1;
    return 0;
}

int slim_tok_add_merge(slim_tok *t, uint32_t a, uint32_t b, uint32_t r)
{
    if (grow((void **)&t->merge, &t->mcap, (size_t)(t->nmerge + 1) * 3, sizeof *t->merge))
        return SLIM_ENOMEM;
    uint32_t *m = t->merge + (size_t)t->nmerge * 3;
    m[0] = a, m[1] = b, m[2] = r;
    t->nmerge++;
    return 0;
}

/* After all pieces and merges are in: the lookup tables.  A merge listed
 * twice keeps its first (lower) rank, as Hugging Face does. */
int slim_tok_index(slim_tok *t)
{
    if (slim_smap_init(&t->bypiece, t->size) || slim_smap_init(&t->cache, 1 << 14)) return SLIM_ENOMEM;
    for (uint32_t id = 0; id < t->size; id++) {
        if (t->len[id] == TOK_NONE) continue;
        if (slim_smap_add(&t->bypiece, t->arena + t->off[id], t->len[id], id, NULL) < 0)
            return SLIM_ENOMEM;
        if (t->len[id] == 1 && !t->special[id]) {
            unsigned char c = (unsigned char)t->arena[t->off[id]];
            if (t->byte_id[c] == TOK_NONE) t->byte_id[c] = id;
        }
    }
    if (pmap_alloc(&t->rank, 64)) return SLIM_ENOMEM;
    for (uint32_t r = 0; r < t->nmerge; r++) {
        int fresh;
        uint32_t *v = pmap_put(&t->rank, pkey(t->merge[3 * r], t->merge[3 * r + 1]), r, &fresh);
        if (!v) return SLIM_ENOMEM;
    }
    return 0;
}

uint32_t slim_tok_size(const slim_tok *t) { return t->size; }
int slim_tok_kind(const slim_tok *t) { return t->kind; }
uint32_t slim_tok_merges(const slim_tok *t) { return t->nmerge; }

const char *slim_tok_piece(const slim_tok *t, uint32_t id, size_t *len)
{
    if (id >= t->size || t->len[id] == TOK_NONE) return NULL;
    if (len) *len = t->len[id];
    return t->arena + t->off[id];
}

int slim_tok_is_special(const slim_tok *t, uint32_t id)
{
    return id < t->size && t->len[id] != TOK_NONE && t->special[id];
}

int slim_tok_find(const slim_tok *t, const char *piece, size_t len, uint32_t *id)
{
    const uint32_t *v = slim_smap_get(&t->bypiece, piece, len);
    if (!v) return SLIM_ENOTFOUND;
    *id = *v;
    return 0;
}

void slim_tok_hash(const slim_tok *t, char hex[65])
{
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", t->sha[i]);
    hex[64] = 0;
}

void slim_tok_sha256(const void *p, size_t n, unsigned char out[32])
{
    unsigned int len = 32;
    if (!EVP_Digest(p, n, out, &len, EVP_sha256(), NULL)) memset(out, 0, 32);
}

/* --------------------------------------------------- pre-tokenisation */
/* GPT-2's rule, on bytes (docs/TOKENIZER.md):
 *   's|'t|'re|'ve|'m|'ll|'d| ?L+| ?N+| ?[^\sLN]+|\s+(?!\S)|\s+
 * with L = ASCII letters and every byte >= 0x80 (so UTF-8 text stays in
 * words), N = ASCII digits.  Chunks are cut at SLIM_TOK_MAX_WORD bytes. */
enum { C_OTHER, C_SPACE, C_LETTER, C_DIGIT };

static unsigned char cls_of(unsigned char c)
{
    if (c == ' ' || (c >= '\t' && c <= '\r')) return C_SPACE;
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return C_LETTER;
    if (c >= 0x80) return C_LETTER;
    if (c >= '0' && c <= '9') return C_DIGIT;
    return C_OTHER;
}

static unsigned char CLS[256];

static void cls_fill(void)
{
    for (int c = 0; c < 256; c++) CLS[c] = cls_of((unsigned char)c);
}

static void cls_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, cls_fill);
}

/* End of the chunk starting at s[i] (i < n). */
static size_t pretok_end(const unsigned char *s, size_t n, size_t i)
{
    size_t j = i, end;
    if (s[i] == '\'' && i + 1 < n) {
        unsigned char a = s[i + 1], b = i + 2 < n ? s[i + 2] : 0;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
            return i + 3;
    }
    if (CLS[s[i]] == C_SPACE) {
        if (!(s[i] == ' ' && i + 1 < n && CLS[s[i + 1]] != C_SPACE)) {
            size_t k = i + 1;
            while (k < n && CLS[s[k]] == C_SPACE) k++;
            end = k == n || k - i == 1 ? k : k - 1;
            goto cut;
        }
        j = i + 1;  /* the space attaches to the following word */
    }
    unsigned char c = CLS[s[j]];
    end = j + 1;
    while (end < n && CLS[s[end]] == c) end++;
cut:
    return end - i > SLIM_TOK_MAX_WORD ? i + SLIM_TOK_MAX_WORD : end;
}

/* --------------------------------------------------------------- encode */
/* BPE on one word: repeatedly merge every occurrence of the adjacent pair of
 * lowest rank.  sym (n) in, *n shrinks. */
static void bpe_word(const slim_tok *t, uint32_t *sym, size_t *n)
{
    size_t len = *n;
    uint32_t rk[SLIM_TOK_MAX_WORD]; /* rk[i]: rank of (sym[i], sym[i+1]) */
    for (size_t i = 0; i + 1 < len; i++) rk[i] = pmap_get(&t->rank, pkey(sym[i], sym[i + 1]));
    while (len > 1) {
        uint32_t best = TOK_NONE;
        size_t pos = 0;
        for (size_t i = 0; i + 1 < len; i++)
            if (rk[i] < best) best = rk[i], pos = i;
        if (best == TOK_NONE) break;
        const uint32_t *m = t->merge + (size_t)best * 3;
        size_t o = pos, i = pos;
        while (i < len) {
            if (i + 1 < len && rk[i] == best) {
                sym[o++] = m[2];
                i += 2;
            } else {
                sym[o++] = sym[i++];
            }
        }
        len = o;
        /* ranks change only next to merged symbols; recomputing the tail
         * from pos is simpler and words are short */
        if (pos > 0) rk[pos - 1] = pmap_get(&t->rank, pkey(sym[pos - 1], sym[pos]));
        for (size_t k = pos; k + 1 < len; k++) rk[k] = pmap_get(&t->rank, pkey(sym[k], sym[k + 1]));
    }
    *n = len;
}

/* Ids of one word, through the cache.  *ids points into the cache or into
 * sym (valid until the next call).  SLIM_EINVAL if a byte has no token. */
static int encode_word(slim_tok *t, const unsigned char *w, size_t len, uint32_t *sym,
                       const uint32_t **ids, size_t *nids)
{
    const uint32_t *v = slim_smap_get(&t->cache, w, len);
    if (v) {
        *nids = t->cids[*v];
        *ids = t->cids + *v + 1;
        return 0;
    }
    for (size_t i = 0; i < len; i++)
        if ((sym[i] = t->byte_id[w[i]]) == TOK_NONE) return SLIM_EINVAL;
    size_t n = len;
    bpe_word(t, sym, &n);
    *ids = sym;
    *nids = n;
    /* bounded cache: start afresh when full rather than evict */
    if (t->cache.n >= (1u << 16) || t->cn + n + 1 > (1u << 22)) {
        smap_clear(&t->cache);
        t->cn = 0;
    }
    if (grow((void **)&t->cids, &t->ccap, t->cn + n + 1, sizeof *t->cids)) return 0;
    uint32_t *slot;
    if (slim_smap_add(&t->cache, w, len, (uint32_t)t->cn, &slot) == 0) {
        t->cids[t->cn] = (uint32_t)n;
        memcpy(t->cids + t->cn + 1, sym, n * sizeof *sym);
        t->cn += n + 1;
    }
    return 0;
}

int slim_tok_encode(slim_tok *t, const char *text, size_t len, uint32_t *ids, size_t cap,
                    size_t *n)
{
    const unsigned char *s = (const unsigned char *)text;
    uint32_t sym[SLIM_TOK_MAX_WORD];
    size_t out = 0;
    *n = 0;
    if (t->kind != SLIM_TOK_BYTEBPE) return SLIM_EINVAL;
    cls_init();
    for (size_t i = 0; i < len;) {
        size_t e = pretok_end(s, len, i), k;
        const uint32_t *w;
        if (encode_word(t, s + i, e - i, sym, &w, &k)) {
            *n = out;
            return SLIM_EINVAL;
        }
        if (out + k <= cap) memcpy(ids + out, w, k * sizeof *w);
        out += k;
        i = e;
    }
    *n = out;
    return out <= cap ? 0 : SLIM_ERANGE;
}

int slim_tok_decode(const slim_tok *t, const uint32_t *ids, size_t n, char *buf, size_t cap,
                    size_t *len)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t id = ids[i];
        if (id >= t->size || t->len[id] == TOK_NONE) {
            *len = i;
            return SLIM_EINVAL;
        }
        size_t l = t->len[id];
        if (o + l <= cap) memcpy(buf + o, t->arena + t->off[id], l);
        o += l;
    }
    *len = o;
    return o <= cap ? 0 : SLIM_ERANGE;
}

/* ------------------------------------------------------------- training */
/* Word-frequency BPE with incremental pair counts (as in Hugging Face
 * tokenizers): every distinct pre-token is a word with a count and a symbol
 * sequence; each pair keeps its total count and a list of the words that may
 * hold it; a max-heap with lazy deletion picks the next merge. */
typedef struct {
    int64_t cnt;
    uint32_t p; /* pair index */
} hent;

typedef struct {
    /* words */
    smap words;         /* word bytes -> word index */
    int64_t *freq;      /* (nw) */
    uint32_t *soff;     /* (nw) offset of the word's symbols in sym */
    uint32_t *slen;     /* (nw) current number of symbols */
    uint32_t *sym;      /* all words' symbols */
    size_t nw, wcap;
    /* pairs */
    pmap pidx;          /* (a, b) -> pair index */
    uint64_t *pk;       /* (np) the pair's key */
    int64_t *pcnt;      /* (np) */
    uint32_t *head;     /* (np) first node of the pair's word list, TOK_NONE = empty */
    size_t np, pcap;
    uint32_t *nword, *nnext; /* word-list nodes */
    size_t nn, ncap;
    hent *heap;
    size_t nh, hcap;
    uint32_t *fresh;    /* pairs created by the current merge */
    size_t nf, fcap;
} trainer;

static int hless(const trainer *tr, hent x, hent y) /* x ranks below y */
{
    if (x.cnt != y.cnt) return x.cnt < y.cnt;
    return tr->pk[x.p] > tr->pk[y.p];  /* ties: smaller (a, b) first */
}

static int heap_push(trainer *tr, int64_t cnt, uint32_t p)
{
    if (grow((void **)&tr->heap, &tr->hcap, tr->nh + 1, sizeof *tr->heap)) return SLIM_ENOMEM;
    size_t i = tr->nh++;
    hent e = {cnt, p};
    while (i > 0 && hless(tr, tr->heap[(i - 1) / 2], e)) {
        tr->heap[i] = tr->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    tr->heap[i] = e;
    return 0;
}

static hent heap_pop(trainer *tr)
{
    hent top = tr->heap[0], e = tr->heap[--tr->nh];
    size_t i = 0, n = tr->nh;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && hless(tr, tr->heap[c], tr->heap[c + 1])) c++;
        if (!hless(tr, e, tr->heap[c])) break;
        tr->heap[i] = tr->heap[c];
        i = c;
    }
    if (n) tr->heap[i] = e;
    return top;
}

/* Add delta occurrences of (a, b) in word w; a pair created now is listed in
 * tr->fresh, and w joins the pair's word list when it is new to it. */
static int pair_add(trainer *tr, uint32_t a, uint32_t b, uint32_t w, int64_t delta, int link)
{
    int fresh;
    uint32_t *v = pmap_put(&tr->pidx, pkey(a, b), (uint32_t)tr->np, &fresh);
    if (!v) return SLIM_ENOMEM;
    uint32_t p = *v;
    if (fresh) {
        size_t c = tr->pcap;
        if (grow((void **)&tr->pk, &c, tr->np + 1, sizeof *tr->pk)) return SLIM_ENOMEM;
        c = tr->pcap;
        if (grow((void **)&tr->pcnt, &c, tr->np + 1, sizeof *tr->pcnt)) return SLIM_ENOMEM;
        c = tr->pcap;
        if (grow((void **)&tr->head, &c, tr->np + 1, sizeof *tr->head)) return SLIM_ENOMEM;
        tr->pcap = c;
        tr->pk[p] = pkey(a, b);
        tr->pcnt[p] = 0;
        tr->head[p] = TOK_NONE;
        tr->np++;
        if (grow((void **)&tr->fresh, &tr->fcap, tr->nf + 1, sizeof *tr->fresh)) return SLIM_ENOMEM;
        tr->fresh[tr->nf++] = p;
    }
    tr->pcnt[p] += delta;
    if (link && (tr->head[p] == TOK_NONE || tr->nword[tr->head[p]] != w)) {
        size_t c = tr->ncap;
        if (grow((void **)&tr->nword, &c, tr->nn + 1, sizeof *tr->nword)) return SLIM_ENOMEM;
        c = tr->ncap;
        if (grow((void **)&tr->nnext, &c, tr->nn + 1, sizeof *tr->nnext)) return SLIM_ENOMEM;
        tr->ncap = c;
        tr->nword[tr->nn] = w;
        tr->nnext[tr->nn] = tr->head[p];
        tr->head[p] = (uint32_t)tr->nn++;
    }
    return 0;
}

static int train_words(trainer *tr, const unsigned char *s, size_t len)
{
    if (slim_smap_init(&tr->words, 1 << 16)) return SLIM_ENOMEM;
    for (size_t i = 0; i < len;) {
        size_t e = pretok_end(s, len, i);
        uint32_t *slot;
        int r = slim_smap_add(&tr->words, s + i, e - i, (uint32_t)tr->nw, &slot);
        if (r < 0) return r;
        if (r == 0) {
            size_t c = tr->wcap;
            if (grow((void **)&tr->freq, &c, tr->nw + 1, sizeof *tr->freq)) return SLIM_ENOMEM;
            c = tr->wcap;
            if (grow((void **)&tr->soff, &c, tr->nw + 1, sizeof *tr->soff)) return SLIM_ENOMEM;
            c = tr->wcap;
            if (grow((void **)&tr->slen, &c, tr->nw + 1, sizeof *tr->slen)) return SLIM_ENOMEM;
            tr->wcap = c;
            tr->freq[tr->nw] = 0;
            tr->soff[tr->nw] = (uint32_t)tr->words.alen - (uint32_t)(e - i);
            tr->slen[tr->nw] = (uint32_t)(e - i);
            tr->nw++;
        }
        tr->freq[*slot]++;
        i = e;
    }
    /* the arena holds every distinct word once, in index order */
    if (!(tr->sym = malloc((tr->words.alen + 1) * sizeof *tr->sym))) return SLIM_ENOMEM;
    for (size_t i = 0; i < tr->words.alen; i++) tr->sym[i] = (unsigned char)tr->words.arena[i];
    if (pmap_alloc(&tr->pidx, 1 << 16)) return SLIM_ENOMEM;
    for (uint32_t w = 0; w < tr->nw; w++) {
        const uint32_t *x = tr->sym + tr->soff[w];
        for (uint32_t i = 0; i + 1 < tr->slen[w]; i++)
            if (pair_add(tr, x[i], x[i + 1], w, tr->freq[w], 1)) return SLIM_ENOMEM;
    }
    for (uint32_t p = 0; p < tr->np; p++)
        if (heap_push(tr, tr->pcnt[p], p)) return SLIM_ENOMEM;
    return 0;
}

/* Replace every (a, b) in word w by id, moving the counts of its pairs. */
static int train_merge_word(trainer *tr, uint32_t w, uint32_t a, uint32_t b, uint32_t id)
{
    uint32_t *x = tr->sym + tr->soff[w], n = tr->slen[w], o = 0;
    int64_t f = tr->freq[w];
    int found = 0;
    for (uint32_t i = 0; i + 1 < n; i++)
        if (x[i] == a && x[i + 1] == b) found = 1;
    if (!found) return 0;  /* a stale entry of the word list */
    for (uint32_t i = 0; i + 1 < n; i++)
        if (pair_add(tr, x[i], x[i + 1], w, -f, 0)) return SLIM_ENOMEM;
    for (uint32_t i = 0; i < n;) {
        if (i + 1 < n && x[i] == a && x[i + 1] == b) {
            x[o++] = id;
            i += 2;
        } else {
            x[o++] = x[i++];
        }
    }
    tr->slen[w] = o;
    for (uint32_t i = 0; i + 1 < o; i++)
        if (pair_add(tr, x[i], x[i + 1], w, f, x[i] == id || x[i + 1] == id)) return SLIM_ENOMEM;
    return 0;
}

static void trainer_free(trainer *tr)
{
    slim_smap_free(&tr->words);
    pmap_free(&tr->pidx);
    free(tr->freq); free(tr->soff); free(tr->slen); free(tr->sym);
    free(tr->pk); free(tr->pcnt); free(tr->head);
    free(tr->nword); free(tr->nnext); free(tr->heap); free(tr->fresh);
}

/* Learn up to nmerge merges into t (whose ids 0..255 are the bytes). */
static int train_loop(trainer *tr, slim_tok *t, uint32_t nmerge)
{
    char buf[2 * 4096];
    while (t->nmerge < nmerge && tr->nh) {
        hent e = heap_pop(tr);
        int64_t cur = tr->pcnt[e.p];
        if (cur != e.cnt) {
            if (cur > 0 && cur < e.cnt && heap_push(tr, cur, e.p)) return SLIM_ENOMEM;
            continue;
        }
        if (cur <= 0) break;
        uint32_t a = (uint32_t)(tr->pk[e.p] >> 32), b = (uint32_t)tr->pk[e.p], id = 256 + t->nmerge;
        size_t la = t->len[a], lb = t->len[b];
        if (la + lb > sizeof buf) return SLIM_EINVAL;  /* cannot happen: words are short */
        memcpy(buf, t->arena + t->off[a], la);
        memcpy(buf + la, t->arena + t->off[b], lb);
        if (slim_tok_set_piece(t, id, buf, la + lb, 0, 0) || slim_tok_add_merge(t, a, b, id)) return SLIM_ENOMEM;
        tr->nf = 0;
        for (uint32_t nd = tr->head[e.p]; nd != TOK_NONE; nd = tr->nnext[nd])
            if (train_merge_word(tr, tr->nword[nd], a, b, id)) return SLIM_ENOMEM;
        tr->pcnt[e.p] = 0;
        for (size_t i = 0; i < tr->nf; i++)
            if (tr->pcnt[tr->fresh[i]] > 0 && heap_push(tr, tr->pcnt[tr->fresh[i]], tr->fresh[i]))
                return SLIM_ENOMEM;
    }
    return 0;
}

static int serialize(const slim_tok *t, char **out, size_t *len);

int slim_tok_train(const char *text, size_t len, uint32_t vocab_size,
                   const char *const *specials, size_t nspecial, slim_tok **out,
                   char *err, size_t errcap)
{
    static const char *const dflt[] = {"<|endoftext|>"};
    trainer tr;
    slim_tok *t = NULL;
    int rc = SLIM_ENOMEM;
    *out = NULL;
    if (!specials) specials = dflt, nspecial = 1;
    if (vocab_size < 256 + nspecial || vocab_size > TOK_MAX_ID)
        return fail(err, errcap, SLIM_EINVAL, "vocabulary size %u out of range (%zu..%u)",
                    vocab_size, 256 + nspecial, TOK_MAX_ID);
    memset(&tr, 0, sizeof tr);
    cls_init();
    if (!(t = slim_tok_alloc(SLIM_TOK_BYTEBPE))) goto fail;
    for (int c = 0; c < 256; c++) {
        char ch = (char)c;
        if (slim_tok_set_piece(t, (uint32_t)c, &ch, 1, 0, 0)) goto fail;
    }
    if ((rc = train_words(&tr, (const unsigned char *)text, len))) goto fail;
    if ((rc = train_loop(&tr, t, vocab_size - 256 - (uint32_t)nspecial))) goto fail;
    rc = SLIM_ENOMEM;
    for (size_t i = 0; i < nspecial; i++) {
        int r = slim_tok_set_piece(t, 256 + t->nmerge + (uint32_t)i, specials[i], strlen(specials[i]), 1, 0);
        if (r) goto fail;
    }
    if (slim_tok_index(t)) goto fail;
    char *buf;
    size_t n;
    if (serialize(t, &buf, &n)) goto fail;
    slim_tok_sha256(buf, n, t->sha);
    free(buf);
    trainer_free(&tr);
    *out = t;
    return 0;
fail:
    trainer_free(&tr);
    slim_tok_free(t);
    return fail(err, errcap, rc, rc == SLIM_ENOMEM ? "out of memory training the tokenizer"
                                                   : "cannot train the tokenizer");
}

/* ------------------------------------------------- slim's own file format */
static const char *const KIND_NAME[] = {"", "bytebpe", "spm", "literal"};

static int serialize(const slim_tok *t, char **out, size_t *len)
{
    FILE *f = open_memstream(out, len);
    uint32_t used = 0;
    if (!f) return SLIM_ENOMEM;
    for (uint32_t id = 0; id < t->size; id++) used += t->len[id] != TOK_NONE;
    fprintf(f, "slim-tokenizer 1\nkind %s\nsize %u\npieces %u\n", KIND_NAME[t->kind], t->size,
            used);
    for (uint32_t id = 0; id < t->size; id++) {
        if (t->len[id] == TOK_NONE) continue;
        fprintf(f, "%u ", id);
        const unsigned char *p = (const unsigned char *)t->arena + t->off[id];
        for (uint32_t i = 0; i < t->len[id]; i++) fprintf(f, "%02x", p[i]);
        fputs(t->len[id] ? "" : "-", f);
        fputs(t->special[id] ? " special\n" : "\n", f);
    }
    fprintf(f, "merges %u\n", t->nmerge);
    for (uint32_t r = 0; r < t->nmerge; r++)
        fprintf(f, "%u %u %u\n", t->merge[3 * r], t->merge[3 * r + 1], t->merge[3 * r + 2]);
    fputs("end\n", f);
    if (ferror(f)) {
        fclose(f);
        free(*out);
        *out = NULL;
        return SLIM_ENOMEM;
    }
    return fclose(f) ? SLIM_ENOMEM : 0;
}

/* Write buf to path via path.tmp + rename, so a crash leaves the old file. */
int slim_tok_write_file(const char *path, const char *buf, size_t n, char *err, size_t errcap)
{
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 5);
    if (!tmp) return fail(err, errcap, SLIM_ENOMEM, "out of memory");
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        int rc = fail(err, errcap, SLIM_EIO, "cannot open '%s': %s", tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    int ok = fwrite(buf, 1, n, f) == n;
    ok = !fclose(f) && ok;
    if (!ok || rename(tmp, path)) {
        int rc = fail(err, errcap, SLIM_EIO, "cannot write '%s': %s", path, strerror(errno));
        remove(tmp);
        free(tmp);
        return rc;
    }
    free(tmp);
    return 0;
}

int slim_tok_save(const slim_tok *t, const char *path, char *err, size_t errcap)
{
    char *buf;
    size_t n;
    if (serialize(t, &buf, &n)) return fail(err, errcap, SLIM_ENOMEM, "out of memory");
    int rc = slim_tok_write_file(path, buf, n, err, errcap);
    free(buf);
    return rc;
}

int slim_tok_read_file(const char *path, char **buf, size_t *n, char *err, size_t errcap)
{
    FILE *f = fopen(path, "rb");
    size_t cap = 0;
    *buf = NULL;
    *n = 0;
    if (!f) return fail(err, errcap, SLIM_EIO, "cannot open '%s': %s", path, strerror(errno));
    for (;;) {
        if (grow((void **)buf, &cap, *n + 65536 + 1, 1)) {
            fclose(f);
            return fail(err, errcap, SLIM_ENOMEM, "'%s': out of memory", path);
        }
        size_t r = fread(*buf + *n, 1, cap - *n - 1, f);
        *n += r;
        if (r == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) return fail(err, errcap, SLIM_EIO, "cannot read '%s': %s", path, strerror(errno));
    (*buf)[*n] = 0;
    return 0;
}


/* One line of the pieces section: "ID HEX[ special]" ('-' = empty piece). */
static int load_piece(slim_tok *t, char *line, char *scratch)
{
    char *end;
    unsigned long id = strtoul(line, &end, 10);
    if (end == line || *end != ' ' || id >= TOK_MAX_ID) return SLIM_EINVAL;
    char *h = end + 1;
    size_t n = 0;
    if (*h == '-') {
        h++;
    } else {
        for (; hexval(h[0]) >= 0 && hexval(h[1]) >= 0; h += 2)
            scratch[n++] = (char)(hexval(h[0]) << 4 | hexval(h[1]));
    }
    int special = 0;
    if (!strcmp(h, " special")) special = 1;
    else if (*h) return SLIM_EINVAL;
    return slim_tok_set_piece(t, (uint32_t)id, scratch, n, special, 0) == 0 ? 0 : SLIM_EINVAL;
}

static int load_merge(slim_tok *t, const char *line)
{
    unsigned a, b, r;
    char extra;
    if (sscanf(line, "%u %u %u%c", &a, &b, &r, &extra) != 3) return SLIM_EINVAL;
    if (a >= t->size || b >= t->size || r >= t->size || t->len[a] == TOK_NONE ||
        t->len[b] == TOK_NONE || t->len[r] == TOK_NONE)
        return SLIM_EINVAL;
    return slim_tok_add_merge(t, a, b, r) ? SLIM_ENOMEM : 0;
}

/* Parse slim's format from buf (NUL-terminated, modified in place). */
static int parse_slim(char *buf, slim_tok **out, const char *path, char *err, size_t errcap)
{
    slim_tok *t = NULL;
    char kind[16], *line = buf, *scratch = malloc(strlen(buf) / 2 + 1);
    unsigned size = 0, npieces = 0, nmerges = 0, lno = 0, i;
    int rc = SLIM_EINVAL;
    for (;;) {
        char *nl = line ? strchr(line, '\n') : NULL;
        if (nl) *nl = 0;
        lno++;
        if (!scratch) { rc = SLIM_ENOMEM; goto fail; }
        if (!nl) goto fail;
        if (lno == 1 && strcmp(line, "slim-tokenizer 1")) goto fail;
        if (lno == 2) {
            if (sscanf(line, "kind %15s", kind) != 1) goto fail;
            int k = !strcmp(kind, "bytebpe") ? 1 : !strcmp(kind, "spm") ? 2 : !strcmp(kind, "literal") ? 3 : 0;
            if (!k || !(t = slim_tok_alloc(k))) goto fail;
        }
        if (lno == 3 && sscanf(line, "size %u", &size) != 1) goto fail;
        if (lno == 4 && sscanf(line, "pieces %u", &npieces) != 1) goto fail;
        i = lno - 5;
        if (lno >= 5 && i < npieces && load_piece(t, line, scratch)) goto fail;
        if (lno >= 5 && i == npieces && sscanf(line, "merges %u", &nmerges) != 1) goto fail;
        if (lno >= 5 && i > npieces && i <= npieces + nmerges && load_merge(t, line)) goto fail;
        if (lno >= 5 && i == npieces + nmerges + 1) {
            if (strcmp(line, "end") || nl[1] || t->size != size) goto fail;
            break;
        }
        line = nl + 1;
    }
    if (slim_tok_index(t)) {
        rc = SLIM_ENOMEM;
        goto fail;
    }
    free(scratch);
    *out = t;
    return 0;
fail:
    free(scratch);
    slim_tok_free(t);
    return fail(err, errcap, rc, rc == SLIM_ENOMEM ? "'%s': out of memory"
                : "'%s' line %u: not a valid slim tokenizer file", path, lno);
}

int slim_tok_load(const char *path, slim_tok **out, char *err, size_t errcap)
{
    char *buf;
    size_t n;
    *out = NULL;
    int rc = slim_tok_read_file(path, &buf, &n, err, errcap);
    if (rc) return rc;
    unsigned char sha[32];
    slim_tok_sha256(buf, n, sha);
    if (strlen(buf) != n) rc = fail(err, errcap, SLIM_EINVAL, "'%s': not a text file", path);
    else rc = parse_slim(buf, out, path, err, errcap);
    free(buf);
    if (!rc) memcpy((*out)->sha, sha, 32);
    return rc;
}

