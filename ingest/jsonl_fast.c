/*
 * jsonl_fast.c — a direct scanner for slim's simple JSONL form
 *   {"id": "x", "tokens": [..], "top": [[[id, logprob], ...], ...]}
 * without building a JSON tree (the tree costs most of the time of sparse
 * ingest).  It accepts only lines it understands completely and that pass
 * every check; anything else — other keys, escapes, bad values — returns 0
 * and the line goes through the jansson path (jsonl.c), which gives the
 * error message.  So both paths produce the same sequences for the same
 * line (fuzz_jsonl compares them).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ingest.h"

typedef struct fitem { uint32_t id; double lp; } fitem;

typedef struct scan {
    const char *p, *e;
    fitem *it; size_t nit, itcap;       /* every item of every position */
    size_t *pos; size_t npos, poscap;   /* item offset of each position */
    uint32_t *tok; size_t ntok, tokcap;
} scan;

static void ws(scan *s)
{
    while (s->p < s->e && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

static int ch(scan *s, char c)
{
    ws(s);
    if (s->p < s->e && *s->p == c) { s->p++; return 1; }
    return 0;
}

static int grow(void **p, size_t *cap, size_t need, size_t elt)
{
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap * 2 : 256;
    while (n < need) n *= 2;
    void *q = realloc(*p, n * elt);
    if (!q) return -1;
    *p = q;
    *cap = n;
    return 0;
}

/* A JSON unsigned integer (no sign, fraction or exponent) <= UINT32_MAX. */
static int uint_(scan *s, uint32_t *out)
{
    ws(s);
    const char *q = s->p;
    uint64_t v = 0;
    while (q < s->e && *q >= '0' && *q <= '9' && q - s->p < 11) v = v * 10 + (uint64_t)(*q++ - '0');
    if (q == s->p || q - s->p > 10 || v > UINT32_MAX || (*s->p == '0' && q - s->p > 1)) return 0;
    if (q < s->e && (*q == '.' || *q == 'e' || *q == 'E')) return 0;
    *out = (uint32_t)v;
    s->p = q;
    return 1;
}

/* A JSON number, checked against the JSON grammar before strtod reads it. */
static int num_(scan *s, double *out)
{
    ws(s);
    const char *q = s->p;
    if (q < s->e && *q == '-') q++;
    if (q >= s->e || *q < '0' || *q > '9') return 0;
    const char *digits = q;
    if (*q == '0') q++; else while (q < s->e && *q >= '0' && *q <= '9') q++;
    /* jansson reads an integer without fraction/exponent as int64 and
     * refuses overflow: leave long ones to it */
    if (q - digits > 18 && !(q < s->e && (*q == '.' || *q == 'e' || *q == 'E'))) return 0;
    if (q < s->e && *q == '.') {
        q++;
        if (q >= s->e || *q < '0' || *q > '9') return 0;
        while (q < s->e && *q >= '0' && *q <= '9') q++;
    }
    if (q < s->e && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < s->e && (*q == '+' || *q == '-')) q++;
        if (q >= s->e || *q < '0' || *q > '9') return 0;
        while (q < s->e && *q >= '0' && *q <= '9') q++;
    }
    /* Clinger's fast path: at most 15 significant digits and no exponent
     * make mantissa and 10^f exact doubles, and one IEEE division is
     * correctly rounded, so this equals strtod */
    static const double p10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
                                  1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
                                  1e20, 1e21, 1e22 };
    {
        const char *c = s->p;
        int neg = *c == '-', nd = 0, nf = 0, frac = 0;
        uint64_t m = 0;
        if (neg) c++;
        for (; c < q; c++) {
            if (*c == '.') { frac = 1; continue; }
            if (*c < '0' || *c > '9') { nd = 99; break; }  /* exponent: slow path */
            if (m || *c != '0') nd++;
            m = m * 10 + (uint64_t)(*c - '0');
            nf += frac;
        }
        if (nd <= 15 && nf <= 22) {
            double v = (double)m / p10[nf];
            /* an integer literal is an integer to jansson: "-0" is +0 */
            *out = neg && (frac || m) ? -v : v;
            s->p = q;
            return 1;
        }
    }
    char buf[64];
    if (q - s->p >= (long)sizeof buf) return 0;
    memcpy(buf, s->p, (size_t)(q - s->p));
    buf[q - s->p] = 0;
    *out = strtod(buf, NULL);
    s->p = q;
    return isfinite(*out);
}

static int tokens_(scan *s)
{
    if (!ch(s, '[')) return 0;
    if (ch(s, ']')) return 1;
    do {
        if (grow((void **)&s->tok, &s->tokcap, s->ntok + 1, sizeof *s->tok)) return 0;
        if (!uint_(s, &s->tok[s->ntok])) return 0;
        s->ntok++;
    } while (ch(s, ','));
    return ch(s, ']');
}

static int top_(scan *s)
{
    if (!ch(s, '[')) return 0;
    if (ch(s, ']')) return 1;
    do {
        if (grow((void **)&s->pos, &s->poscap, s->npos + 2, sizeof *s->pos)) return 0;
        s->pos[s->npos++] = s->nit;
        if (!ch(s, '[')) return 0;
        if (!ch(s, ']')) {
            do {
                if (grow((void **)&s->it, &s->itcap, s->nit + 1, sizeof *s->it)) return 0;
                fitem *t = &s->it[s->nit];
                if (!ch(s, '[') || !uint_(s, &t->id) || !ch(s, ',') || !num_(s, &t->lp)
                    || !ch(s, ']'))
                    return 0;
                s->nit++;
            } while (ch(s, ','));
            if (!ch(s, ']')) return 0;
        }
    } while (ch(s, ','));
    s->pos[s->npos] = s->nit;
    return ch(s, ']');
}

/* "id": a string without escapes, or a non-negative integer. */
static int id_(scan *s, const char **ext, size_t *extn, char *ibuf, size_t icap)
{
    ws(s);
    if (ch(s, '"')) {
        const char *q = s->p;
        /* printable ASCII only: jansson must agree the string is valid */
        while (q < s->e && *q != '"' && *q != '\\' && *q >= 0x20 && *q < 0x7f) q++;
        if (q >= s->e || *q != '"') return 0;
        *ext = s->p;
        *extn = (size_t)(q - s->p);
        s->p = q + 1;
        return 1;
    }
    uint32_t v;
    if (!uint_(s, &v)) return 0;
    *extn = (size_t)snprintf(ibuf, icap, "%u", v);
    *ext = ibuf;
    return 1;
}

static int cmp_fitem(const void *a, const void *b)
{
    const fitem *x = a, *y = b;
    if (x->lp != y->lp) return x->lp > y->lp ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* The checks of the jansson path, then the batch; 0 = leave it to jansson. */
static int emit(scan *s, const slim_jsonl_opts *o, const char *ext, size_t extn, slim_batch *b)
{
    uint32_t V = o->vocab_size;
    if (s->npos > s->ntok) return 0;
    for (size_t t = 0; t < s->ntok; t++)
        if (V && s->tok[t] >= V) return 0;
    size_t kmin = SIZE_MAX;
    for (size_t p = 0; p < s->npos; p++)
        if (s->pos[p + 1] - s->pos[p] < kmin) kmin = s->pos[p + 1] - s->pos[p];
    if (!s->npos) kmin = 0;
    if (o->max_k && kmin > o->max_k) kmin = o->max_k;
    if (slim_batch_reserve(b, 1, s->ntok, s->npos, s->npos * kmin)) return 0;
    slim_iseq *q = &b->seqs[b->nseq];
    memset(q, 0, sizeof *q);
    snprintf(q->ext_id, sizeof q->ext_id, "%.*s", (int)extn, ext);
    q->tok_off = b->ntok;
    q->dist_off = b->ndist;
    q->T = (uint32_t)s->ntok;
    q->npos = (uint32_t)s->npos;
    size_t e = b->nent;
    for (size_t p = 0; p < s->npos; p++) {
        size_t n = s->pos[p + 1] - s->pos[p];
        fitem *it = n ? s->it + s->pos[p] : NULL;
        if (n) qsort(it, n, sizeof *it, cmp_fitem);
        slim_dist *d = &b->dists[b->ndist + p];
        b->entoff[b->ndist + p] = e;
        d->k = (uint32_t)kmin;
        d->n_samples = 0;
        d->lse = 0;
        d->ids = b->ids + e;
        d->vals = b->vals + e;
        for (size_t j = 0; j < kmin; j++) {
            float v = it[j].lp > 0 && it[j].lp <= 1e-6 ? 0.0f : (float)it[j].lp;
            if ((V && it[j].id >= V) || !(v <= 0)) return 0;
            /* sorted by value, so equal ids need not be adjacent: check all */
            for (size_t i = 0; i < j; i++)
                if (it[i].id == it[j].id) return 0;
            d->ids[j] = it[j].id;
            d->vals[j] = v;
        }
        e += kmin;
    }
    if (s->ntok) memcpy(b->tokens + b->ntok, s->tok, s->ntok * sizeof *s->tok);
    b->ntok += s->ntok;
    b->ndist += s->npos;
    b->nent = e;
    b->positions += s->npos;
    b->nseq++;
    return 1;
}

int slim_jsonl_fast_simple(const char *line, size_t len, const slim_jsonl_opts *o,
                           slim_batch *b)
{
    scan s = { .p = line, .e = line + len };
    const char *ext = "";
    size_t extn = 0;
    char ibuf[16];
    int seen_id = 0, seen_tok = 0, seen_top = 0, ok = 0;
    if (!ch(&s, '{')) return 0;
    do {
        if (!ch(&s, '"')) goto out;
        const char *k = s.p;
        while (s.p < s.e && *s.p != '"' && *s.p != '\\') s.p++;
        if (s.p >= s.e || *s.p != '"') goto out;
        size_t kl = (size_t)(s.p - k);
        s.p++;
        if (!ch(&s, ':')) goto out;
        if (kl == 2 && !memcmp(k, "id", 2) && !seen_id++) {
            if (!id_(&s, &ext, &extn, ibuf, sizeof ibuf)) goto out;
        } else if (kl == 6 && !memcmp(k, "tokens", 6) && !seen_tok++) {
            if (!tokens_(&s)) goto out;
        } else if (kl == 3 && !memcmp(k, "top", 3) && !seen_top++) {
            if (!top_(&s)) goto out;
        } else goto out;
    } while (ch(&s, ','));
    if (!ch(&s, '}')) goto out;
    ws(&s);
    if (s.p != s.e || !seen_tok || !seen_top) goto out;
    {
        slim_batch save = *b;
        ok = emit(&s, o, ext, extn, b);
        if (!ok) {
            b->nseq = save.nseq; b->ntok = save.ntok; b->ndist = save.ndist;
            b->nent = save.nent; b->positions = save.positions;
        }
    }
out:
    free(s.it); free(s.pos); free(s.tok);
    return ok;
}
