/*
 * jsonl.c — one JSON line to sequences of sparse log-probabilities, in the
 * three shapes slim accepts (docs/INGEST.md): slim's simple form, a vLLM
 * RequestOutput, an OpenAI-compatible response.  Also the batch pools every
 * parser appends into.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "ingest.h"

/* -------------------------------------------------------------- batches */

void slim_batch_reset(slim_batch *b)
{
    b->nseq = b->ntok = b->ndist = b->nent = b->positions = 0;
}

void slim_batch_release(slim_batch *b)
{
    free(b->seqs); free(b->tokens); free(b->dists); free(b->entoff);
    free(b->ids); free(b->vals);
    memset(b, 0, sizeof *b);
}

/* Large pools (a dense batch's entries: ~8 MB per array) are first touched
 * by the sparsifier's stores, and on the development VM a 4 KiB page fault
 * costs ~10 µs (13 % of a dense ingest's CPU when measured): ask for transparent
 * huge pages over their 2 MiB-aligned interior.  Advice only: a kernel
 * without THP (or with it off) ignores it and nothing else changes. */
static void advise_huge(void *p, size_t n)
{
    const uintptr_t huge = (uintptr_t)2 << 20;
    uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1), e = ((uintptr_t)p + n) & ~(huge - 1);
    if (e > a) madvise((void *)a, e - a, MADV_HUGEPAGE);
}

static int grow(void **p, size_t *cap, size_t need, size_t elt)
{
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 64;
    while (n < need) n *= 2;
    void *q = realloc(*p, n * elt);
    if (!q) return SLIM_ENOMEM;
    if (n * elt >= ((size_t)4 << 20)) advise_huge(q, n * elt);
    *p = q;
    *cap = n;
    return 0;
}

int slim_batch_reserve(slim_batch *b, size_t nseq, size_t ntok, size_t ndist, size_t nent)
{
    /* +1: the pools always exist, so pool + offset is never NULL + 0 */
    nseq++; ntok++; ndist++; nent++;
    size_t dc = b->distcap, ec = b->entcap;
    if (grow((void **)&b->seqs, &b->seqcap, b->nseq + nseq, sizeof *b->seqs)
        || grow((void **)&b->tokens, &b->tokcap, b->ntok + ntok, sizeof *b->tokens))
        return SLIM_ENOMEM;
    if (grow((void **)&b->dists, &dc, b->ndist + ndist, sizeof *b->dists)) return SLIM_ENOMEM;
    if (grow((void **)&b->entoff, &b->distcap, b->ndist + ndist, sizeof *b->entoff))
        return SLIM_ENOMEM;
    if (dc != b->distcap) { /* keep both arrays the same capacity */
        void *q = realloc(b->dists, b->distcap * sizeof *b->dists);
        if (!q) return SLIM_ENOMEM;
        b->dists = q;
    }
    if (grow((void **)&b->ids, &ec, b->nent + nent, sizeof *b->ids)) return SLIM_ENOMEM;
    if (grow((void **)&b->vals, &b->entcap, b->nent + nent, sizeof *b->vals)) return SLIM_ENOMEM;
    if (ec != b->entcap) {
        void *q = realloc(b->ids, b->entcap * sizeof *b->ids);
        if (!q) return SLIM_ENOMEM;
        b->ids = q;
    }
    return 0;
}

void slim_batch_fix_pointers(slim_batch *b)
{
    for (size_t i = 0; i < b->ndist; i++) {
        b->dists[i].ids = b->ids + b->entoff[i];
        b->dists[i].vals = b->vals + b->entoff[i];
    }
}

/* ------------------------------------------------------------ validation */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int slim_check_sparse(const slim_dist *d, uint32_t V, int is_logprob, uint8_t *seen,
                      char *err, size_t cap)
{
    for (uint32_t j = 0; j < d->k; j++) {
        if (V && d->ids[j] >= V) {
            snprintf(err, cap, "token id %u >= vocab size %u", d->ids[j], V);
            return SLIM_EINVAL;
        }
        float v = d->vals[j];
        if (v != v || v == INFINITY) {
            snprintf(err, cap, "token id %u: value is %s", d->ids[j], v != v ? "NaN" : "+Inf");
            return SLIM_EINVAL;
        }
        if (is_logprob && v > 0) {
            snprintf(err, cap, "token id %u: log-prob %g > 0", d->ids[j], (double)v);
            return SLIM_EINVAL;
        }
    }
    int dup = -1;
    if (seen && V) {
        for (uint32_t j = 0; j < d->k && dup < 0; j++) {
            uint32_t id = d->ids[j];
            if (seen[id >> 3] & (1u << (id & 7))) dup = (int)id;
            seen[id >> 3] |= (uint8_t)(1u << (id & 7));
        }
        for (uint32_t j = 0; j < d->k; j++) seen[d->ids[j] >> 3] = 0;
    } else {
        uint32_t small[1024], *s = d->k <= 1024 ? small : malloc(d->k * sizeof *s);
        if (!s) return SLIM_ENOMEM;
        if (d->k) memcpy(s, d->ids, d->k * sizeof *s);
        if (d->k) qsort(s, d->k, sizeof *s, cmp_u32);
        for (uint32_t j = 1; j < d->k && dup < 0; j++)
            if (s[j] == s[j - 1]) dup = (int)s[j];
        if (s != small) free(s);
    }
    if (dup >= 0) {
        snprintf(err, cap, "token id %d appears twice in one top-K list", dup);
        return SLIM_EINVAL;
    }
    return 0;
}

/* ----------------------------------------------------------------- items */

/* One candidate entry of a position before the top-K cut. */
typedef struct item { int64_t id; double lp; int64_t rank; } item;

static int cmp_item(const void *a, const void *b)
{
    const item *x = a, *y = b;
    if (x->rank != y->rank) return x->rank < y->rank ? -1 : 1;
    if (x->lp != y->lp) return x->lp > y->lp ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* "123" or "token_id:123" -> id; -1 if neither. */
static int64_t parse_id(const char *s)
{
    if (!strncmp(s, "token_id:", 9)) s += 9;
    if (!*s || (*s != '-' && (*s < '0' || *s > '9'))) return INT64_MIN;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno) return INT64_MIN;
    return v;
}

/* A token id in the input: an integer, or "N" / "token_id:N". */
static int64_t json_id(json_t *v)
{
    return json_is_integer(v) ? json_integer_value(v)
         : json_is_string(v) ? parse_id(json_string_value(v)) : INT64_MIN;
}

static int num(json_t *v, double *out)
{
    if (!json_is_number(v)) return -1;
    *out = json_number_value(v);
    return 0;
}

typedef struct lctx {
    const slim_jsonl_opts *o;
    item *it; size_t itcap;
    char *err; size_t cap;
} lctx;

/*
 * Collect the items of one position entry: a vLLM dict {id: {logprob, rank}}
 * (or {id: logprob}), a list of {"token": "token_id:N", "logprob"} (OpenAI)
 * or a list of [id, logprob] pairs (simple form).  Sorted by rank, then
 * log-prob.  Returns the count or a negative code.
 */
static long collect(lctx *c, json_t *e, const char *where)
{
    size_t n = json_is_object(e) ? json_object_size(e) : json_is_array(e) ? json_array_size(e) : 0;
    if (!json_is_object(e) && !json_is_array(e)) {
        snprintf(c->err, c->cap, "%s: expected an object or a list of log-probs", where);
        return SLIM_EINVAL;
    }
    if (n > c->itcap) {
        item *q = realloc(c->it, n * sizeof *q);
        if (!q) return SLIM_ENOMEM;
        c->it = q;
        c->itcap = n;
    }
    size_t i = 0;
    int ranked = 1;
    if (json_is_object(e)) {
        const char *key;
        json_t *v;
        json_object_foreach(e, key, v) {
            item *t = &c->it[i++];
            t->id = parse_id(key);
            t->rank = INT64_MAX;
            if (json_is_object(v)) {
                json_t *r = json_object_get(v, "rank");
                if (json_is_integer(r)) t->rank = json_integer_value(r); else ranked = 0;
                v = json_object_get(v, "logprob");
            } else ranked = 0;
            if (t->id == INT64_MIN || num(v, &t->lp)) {
                snprintf(c->err, c->cap, "%s: entry '%s': needs a token id key and a numeric "
                         "logprob", where, key);
                return SLIM_EINVAL;
            }
        }
    } else {
        size_t j;
        json_t *v;
        ranked = 0;
        json_array_foreach(e, j, v) {
            item *t = &c->it[i++];
            t->rank = INT64_MAX;
            json_t *idv = NULL, *lpv = NULL;
            if (json_is_array(v) && json_array_size(v) == 2) {
                idv = json_array_get(v, 0); lpv = json_array_get(v, 1);
            } else if (json_is_object(v)) {
                idv = json_object_get(v, "token"); lpv = json_object_get(v, "logprob");
                if (!idv) idv = json_object_get(v, "id");
            }
            t->id = json_is_integer(idv) ? json_integer_value(idv)
                  : json_is_string(idv) ? parse_id(json_string_value(idv)) : INT64_MIN;
            if (t->id == INT64_MIN || num(lpv, &t->lp)) {
                snprintf(c->err, c->cap, "%s: entry %zu: needs a token id and a numeric logprob",
                         where, j);
                return SLIM_EINVAL;
            }
        }
    }
    if (!ranked) for (size_t j = 0; j < n; j++) c->it[j].rank = INT64_MAX;
    if (n) qsort(c->it, n, sizeof *c->it, cmp_item);
    return (long)n;
}

/* Append one position (the first k items collected) to the batch. */
static int put_pos(lctx *c, slim_batch *b, uint32_t k, const char *where)
{
    if (slim_batch_reserve(b, 0, 0, 1, k)) return SLIM_ENOMEM;
    slim_dist *d = &b->dists[b->ndist];
    b->entoff[b->ndist] = b->nent;
    d->k = k;
    d->n_samples = 0;
    d->lse = 0;  /* log-probabilities: already normalised */
    d->ids = b->ids + b->nent;
    d->vals = b->vals + b->nent;
    for (uint32_t j = 0; j < k; j++) {
        const item *t = &c->it[j];
        if (t->id < 0 || t->id > UINT32_MAX) {
            snprintf(c->err, c->cap, "%s: token id %lld out of range", where, (long long)t->id);
            return SLIM_EINVAL;
        }
        d->ids[j] = (uint32_t)t->id;
        /* a rounding hair above 0 is a log-prob of 0 */
        d->vals[j] = t->lp > 0 && t->lp <= 1e-6 ? 0.0f : (float)t->lp;
    }
    char msg[160];
    int rc = slim_check_sparse(d, c->o->vocab_size, 1, NULL, msg, sizeof msg);
    if (rc) { snprintf(c->err, c->cap, "%s: %s", where, msg); return rc; }
    b->ndist++;
    b->nent += k;
    return 0;
}

static int get_tokens(lctx *c, json_t *a, slim_batch *b, const char *field)
{
    if (!json_is_array(a)) {
        snprintf(c->err, c->cap, "missing field '%s'", field);
        return SLIM_EINVAL;
    }
    size_t n = json_array_size(a), i;
    json_t *v;
    if (slim_batch_reserve(b, 0, n, 0, 0)) return SLIM_ENOMEM;
    json_array_foreach(a, i, v) {
        int64_t t = json_id(v);
        if (t < 0 || t > UINT32_MAX || (c->o->vocab_size && t >= c->o->vocab_size)) {
            snprintf(c->err, c->cap, "'%s'[%zu]: invalid token id", field, i);
            return SLIM_EINVAL;
        }
        b->tokens[b->ntok++] = (uint32_t)t;
    }
    return 0;
}

/*
 * Entries list[from..) predict tokens; entry i lands at position i + shift.
 * K = the smallest entry size over the sequence (the K+1 quirk: an entry
 * that also carries the actual token outside the top K has one more item,
 * dropped here by rank), capped by max_k.
 */
typedef struct span { json_t *list; size_t from; long shift; } span;

static int put_spans(lctx *c, slim_batch *b, const span *sp, int ns, uint32_t *npos)
{
    long kmin = -1;
    char where[64];
    for (int s = 0; s < ns; s++) {
        size_t i;
        json_t *e;
        json_array_foreach(sp[s].list, i, e) {
            if (i < sp[s].from) continue;
            snprintf(where, sizeof where, "position %ld", (long)i + sp[s].shift);
            json_t *top = json_is_object(e) && json_object_get(e, "top_logprobs")
                        ? json_object_get(e, "top_logprobs") : e;
            long n = collect(c, top, where);
            if (n < 0) return (int)n;
            if (kmin < 0 || n < kmin) kmin = n;
        }
    }
    if (kmin < 0) kmin = 0;
    if (c->o->max_k && kmin > (long)c->o->max_k) kmin = c->o->max_k;
    *npos = 0;
    for (int s = 0; s < ns; s++) {
        size_t i;
        json_t *e;
        json_array_foreach(sp[s].list, i, e) {
            if (i < sp[s].from) continue;
            long pos = (long)i + sp[s].shift;
            if (pos != (long)*npos) {
                snprintf(c->err, c->cap, "position %ld: distributions are not contiguous", pos);
                return SLIM_EINVAL;
            }
            snprintf(where, sizeof where, "position %ld", pos);
            json_t *top = json_is_object(e) && json_object_get(e, "top_logprobs")
                        ? json_object_get(e, "top_logprobs") : e;
            int rc = (int)collect(c, top, where);
            if (rc < 0) return rc;
            if ((rc = put_pos(c, b, (uint32_t)kmin, where))) return rc;
            (*npos)++;
        }
    }
    return 0;
}

/* Open a sequence slot; its tokens are appended by the caller next. */
static slim_iseq *seq_open(slim_batch *b, const char *ext, size_t extn)
{
    if (slim_batch_reserve(b, 1, 0, 0, 0)) return NULL;
    slim_iseq *q = &b->seqs[b->nseq];
    memset(q, 0, sizeof *q);
    snprintf(q->ext_id, sizeof q->ext_id, "%.*s", (int)extn, ext ? ext : "");
    q->tok_off = b->ntok;
    q->dist_off = b->ndist;
    return q;
}

static void seq_close(slim_batch *b, slim_iseq *q, uint32_t npos)
{
    q->T = (uint32_t)(b->ntok - q->tok_off);
    q->npos = npos;
    b->positions += npos;
    b->nseq++;
}

static const char *str_or(json_t *v, char *buf, size_t cap)
{
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_integer(v)) { snprintf(buf, cap, "%lld", (long long)json_integer_value(v)); return buf; }
    return "";
}

/* ------------------------------------------------------------------ shapes */

static int shape_simple(lctx *c, json_t *root, slim_batch *b)
{
    char idb[32];
    const char *ext = str_or(json_object_get(root, "id"), idb, sizeof idb);
    json_t *top = json_object_get(root, "top");
    if (!json_is_array(top)) { snprintf(c->err, c->cap, "missing field 'top'"); return SLIM_EINVAL; }
    slim_iseq *q = seq_open(b, ext, strlen(ext));
    if (!q) return SLIM_ENOMEM;
    int rc = get_tokens(c, json_object_get(root, "tokens"), b, "tokens");
    if (rc) return rc;
    size_t T = b->ntok - q->tok_off;
    if (json_array_size(top) > T) {
        snprintf(c->err, c->cap, "'top' has %zu positions for %zu tokens", json_array_size(top), T);
        return SLIM_EINVAL;
    }
    span sp = { top, 0, 0 };
    uint32_t npos;
    if ((rc = put_spans(c, b, &sp, 1, &npos))) return rc;
    seq_close(b, q, npos);
    return 0;
}

/* prompt ids + prompt_logprobs (entry 0 null) + one output's generated ids
 * and their logprobs: one sequence. */
static int vllm_seq(lctx *c, slim_batch *b, const char *ext, json_t *pids, json_t *plp,
                    json_t *gids, json_t *glp, const char *gfield)
{
    slim_iseq *q = seq_open(b, ext, strlen(ext));
    if (!q) return SLIM_ENOMEM;
    int rc;
    size_t P = 0;
    if (pids) {
        if ((rc = get_tokens(c, pids, b, "prompt_token_ids"))) return rc;
        P = json_array_size(pids);
    }
    if (gids && (rc = get_tokens(c, gids, b, gfield)))
        return rc;
    if (!json_is_array(plp) && !json_is_array(glp)) {  /* a sequence with nothing to distil */
        snprintf(c->err, c->cap, "no log-probs: neither 'prompt_logprobs' nor the generated "
                 "tokens' logprobs (request prompt_logprobs=K or logprobs=K)");
        return SLIM_EINVAL;
    }
    span sp[2];
    int ns = 0;
    if (json_is_array(plp)) {
        if (json_array_size(plp) != P) {
            snprintf(c->err, c->cap, "prompt_logprobs has %zu entries for %zu prompt tokens",
                     json_array_size(plp), P);
            return SLIM_EINVAL;
        }
        /* vLLM: entry i predicts t[i]; entry 0 is null; position = i - 1 */
        sp[ns++] = (span){ plp, 1, -1 };
    } else if (P > 1 && json_is_array(glp) && json_array_size(glp)) {
        snprintf(c->err, c->cap, "missing field 'prompt_logprobs' (needed before the generated "
                 "tokens' logprobs can be placed)");
        return SLIM_EINVAL;
    }
    if (json_is_array(glp)) {
        size_t G = gids ? json_array_size(gids) : 0;
        if (json_array_size(glp) != G) {
            snprintf(c->err, c->cap, "%zu logprobs entries for %zu generated tokens",
                     json_array_size(glp), G);
            return SLIM_EINVAL;
        }
        /* generated entry j predicts t[P+j]; without a prompt, entry 0 has
         * no position (it predicts t[0]) and is dropped */
        sp[ns++] = (span){ glp, P ? 0 : 1, (long)P - 1 };
    }
    uint32_t npos;
    if ((rc = put_spans(c, b, sp, ns, &npos))) return rc;
    if (!npos) {  /* tokens alone would still count for dedup: a later copy with log-probs is skipped */
        snprintf(c->err, c->cap, "no log-probs for any position (%zu tokens)", b->ntok - q->tok_off);
        return SLIM_EINVAL;
    }
    seq_close(b, q, npos);
    return 0;
}

static int shape_vllm(lctx *c, json_t *root, slim_batch *b)
{
    char idb[32], ext[96];
    const char *rid = str_or(json_object_get(root, "request_id"), idb, sizeof idb);
    json_t *pids = json_object_get(root, "prompt_token_ids");
    json_t *plp = json_object_get(root, "prompt_logprobs");
    json_t *outs = json_object_get(root, "outputs");
    if (!json_is_array(pids)) {
        snprintf(c->err, c->cap, "missing field 'prompt_token_ids'");
        return SLIM_EINVAL;
    }
    size_t n = json_is_array(outs) ? json_array_size(outs) : 0;
    if (!n) return vllm_seq(c, b, rid, pids, plp, NULL, NULL, 0);
    for (size_t o = 0; o < n; o++) {
        json_t *out = json_array_get(outs, o);
        snprintf(ext, sizeof ext, n > 1 ? "%s/%zu" : "%s", rid, o);
        int rc = vllm_seq(c, b, ext, pids, plp, json_object_get(out, "token_ids"),
                          json_object_get(out, "logprobs"), "token_ids");
        if (rc) return rc;
    }
    return 0;
}

/* The ids of choice ci's tokens into ids (a fresh JSON array): from
 * "token": "token_id:N" of each logprobs.content[] item (chat), or from the
 * "token_id:N" strings of logprobs.tokens (completions). */
static int choice_ids(lctx *c, json_t *list, int content, size_t ci, json_t *ids)
{
    size_t j;
    json_t *e;
    json_array_clear(ids);
    json_array_foreach(list, j, e) {
        int64_t id = json_id(content ? json_object_get(e, "token") : e);
        if (id == INT64_MIN) {
            snprintf(c->err, c->cap, "choice %zu: logprobs.%s[%zu]%s is not \"token_id:N\" (start "
                     "the server with --return-tokens-as-token-ids)", ci,
                     content ? "content" : "tokens", j, content ? ".token" : "");
            return SLIM_EINVAL;
        }
        if (json_array_append_new(ids, json_integer(id))) return SLIM_ENOMEM;
    }
    return 0;
}

/* Whether the ids a (integers) start with the ids p. */
static int ids_prefix(json_t *a, json_t *p)
{
    size_t n = json_array_size(p);
    if (json_array_size(a) < n) return 0;
    for (size_t i = 0; i < n; i++) {
        int64_t x = json_id(json_array_get(p, i));
        if (x == INT64_MIN || json_integer_value(json_array_get(a, i)) != x) return 0;
    }
    return 1;
}

/*
 * An OpenAI-compatible response: choices[], each a sequence.  Chat:
 * logprobs.content[] with "token" and top_logprobs[] per generated token.
 * Completions: logprobs.tokens[] with top_logprobs[] dicts beside it; with
 * echo the lists cover the prompt too, their first top_logprobs entry null
 * (the first token has no prediction) — then entry i predicts t[i], as
 * for generated tokens without a prompt, and prompt_token_ids, when given,
 * must begin them.
 */
static int shape_openai(lctx *c, json_t *root, slim_batch *b)
{
    char idb[32], ext[96];
    const char *rid = str_or(json_object_get(root, "id"), idb, sizeof idb);
    json_t *choices = json_object_get(root, "choices");
    size_t n = json_array_size(choices);
    if (!n) { snprintf(c->err, c->cap, "missing field 'choices'"); return SLIM_EINVAL; }
    json_t *gids = json_array();
    if (!gids) return SLIM_ENOMEM;
    int rc = 0;
    for (size_t ci = 0; ci < n && !rc; ci++) {
        json_t *ch = json_array_get(choices, ci);
        json_t *pids = json_object_get(ch, "prompt_token_ids");
        if (!pids) pids = json_object_get(root, "prompt_token_ids");
        if (!json_is_array(pids)) pids = NULL;
        json_t *lp = json_object_get(ch, "logprobs"), *content = json_object_get(lp, "content");
        json_t *toks = json_object_get(lp, "tokens"), *top = json_object_get(lp, "top_logprobs");
        snprintf(ext, sizeof ext, n > 1 ? "%s/%zu" : "%s", rid, ci);
        if (json_is_array(content)) {
            if (!(rc = choice_ids(c, content, 1, ci, gids)))
                rc = vllm_seq(c, b, ext, pids, json_object_get(ch, "prompt_logprobs"), gids, content,
                              "logprobs.content");
        } else if (json_is_array(toks)) {
            if (!json_is_array(top) || json_array_size(top) != json_array_size(toks)) {
                snprintf(c->err, c->cap, "choice %zu: logprobs.top_logprobs %s logprobs.tokens "
                         "(request logprobs=K)", ci, json_is_array(top) ? "does not match" : "missing beside");
                rc = SLIM_EINVAL;
            } else if (!(rc = choice_ids(c, toks, 0, ci, gids))) {
                if (json_array_size(top) && json_is_null(json_array_get(top, 0))) {  /* echo */
                    if (pids && !ids_prefix(gids, pids)) {
                        snprintf(c->err, c->cap, "choice %zu: logprobs.tokens (echo) do not begin "
                                 "with prompt_token_ids", ci);
                        rc = SLIM_EINVAL;
                    } else  /* as generated tokens without a prompt: entry 0 dropped */
                        rc = vllm_seq(c, b, ext, NULL, NULL, gids, top, "logprobs.tokens");
                } else
                    rc = vllm_seq(c, b, ext, pids, json_object_get(ch, "prompt_logprobs"), gids, top,
                                  "logprobs.tokens");
            }
        } else if (!pids) {
            snprintf(c->err, c->cap, "choice %zu: missing field 'prompt_token_ids' or "
                     "'logprobs.content' / 'logprobs.tokens'", ci);
            rc = SLIM_EINVAL;
        } else rc = vllm_seq(c, b, ext, pids, json_object_get(ch, "prompt_logprobs"), NULL, NULL, NULL);
    }
    json_decref(gids);
    return rc;
}

int slim_jsonl_parse_line(const char *line, size_t len, const slim_jsonl_opts *o,
                          slim_batch *b, char *err, size_t cap)
{
    if (slim_jsonl_fast_simple(line, len, o, b)) return 0;
    return slim_jsonl_parse_tree(line, len, o, b, err, cap);
}

/* Whether a line holds a bare NaN, Infinity or -Infinity outside strings:
 * what Python's json.dumps writes for such floats, which JSON does not allow. */
static int py_nonfinite(const char *s, size_t n)
{
    int in = 0;
    for (size_t i = 0; i < n; i++) {
        if (in) {
            if (s[i] == '\\') i++;
            else if (s[i] == '"') in = 0;
        } else if (s[i] == '"') in = 1;
        else if ((n - i >= 3 && !memcmp(s + i, "NaN", 3)) || (n - i >= 8 && !memcmp(s + i, "Infinity", 8)))
            return 1;
    }
    return 0;
}

int slim_jsonl_parse_tree(const char *line, size_t len, const slim_jsonl_opts *o,
                          slim_batch *b, char *err, size_t cap)
{
    json_error_t je;
    json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        int py = py_nonfinite(line, len);
        /* an object cut at the line's end: a pretty-printed file */
        size_t lead = 0;
        while (lead < len && (line[lead] == ' ' || line[lead] == '\t')) lead++;
        int cut = !py && strstr(je.text, "near end of file") && lead < len && line[lead] == '{';
        snprintf(err, cap, "invalid JSON at column %d: %s%s", je.column, je.text,
                 py ? " (Python's json.dumps writes -Infinity/NaN, which JSON does not allow: drop "
                      "those entries, or dump with allow_nan=False to find them)"
                 : cut ? " (a line cut short, or one object over several lines? JSON Lines "
                         "needs one object per line: jq -c . FILE > out.jsonl)" : "");
        return SLIM_EINVAL;
    }
    slim_batch save = *b;  /* counters to roll back to on error */
    lctx c = { .o = o, .err = err, .cap = cap };
    int rc;
    if (!json_is_object(root)) {
        snprintf(err, cap, "expected a JSON object");
        rc = SLIM_EINVAL;
    } else if (json_object_get(root, "choices"))
        rc = shape_openai(&c, root, b);
    else if (json_object_get(root, "prompt_token_ids") || json_object_get(root, "outputs"))
        rc = shape_vllm(&c, root, b);
    else if (json_object_get(root, "tokens"))
        rc = shape_simple(&c, root, b);
    else {
        snprintf(err, cap, "missing field 'tokens' (or 'prompt_token_ids' / 'choices')");
        rc = SLIM_EINVAL;
    }
    if (rc) {
        b->nseq = save.nseq; b->ntok = save.ntok; b->ndist = save.ndist;
        b->nent = save.nent; b->positions = save.positions;
    }
    free(c.it);
    json_decref(root);
    return rc;
}
