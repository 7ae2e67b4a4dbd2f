/*
 * memsrc.c — a synthetic in-memory data source for tests and benchmarks:
 * a Markov "teacher" whose next-token logits depend on the previous token
 * (pseudo-random N(0, 3^2) per (prev, next)); each position stores the top-k
 * entries with the exact lse, or k-draw sample counts.  Tokens are drawn
 * from the stored head (tail mass: uniformly), so some gold tokens fall
 * outside K.
 */
#include "data.h"
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct memsrc {
    size_t n;
    uint32_t ntok, V, k;
    int sampled;
    uint32_t *tok;       /* (n, ntok) */
    uint32_t *ids;       /* (V, k) entries given the previous token */
    float *vals;         /* (V, k) logits (or counts) */
    float *lse;          /* (V) */
    uint32_t *kk;        /* (V) entries actually stored (sampled: distinct) */
} memsrc;

static int cmp_desc(const void *a, const void *b)
{
    float x = ((const float *)a)[0], y = ((const float *)b)[0];
    if (x != y) return x < y ? 1 : -1;
    uint32_t i, j;
    memcpy(&i, (const float *)a + 1, 4);
    memcpy(&j, (const float *)b + 1, 4);
    return i < j ? -1 : i > j;
}

/* The teacher's row for previous token a: its top k and lse. */
static void teacher_row(memsrc *m, uint32_t a, uint64_t seed, float *pairs)
{
    double mx = -INFINITY, s = 0;
    for (uint32_t j = 0; j < m->V; j++) {
        uint64_t st = seed ^ ((uint64_t)a * m->V + j) * 0x9E3779B97F4A7C15ull;
        float z = (float)(3.0 * slim_rng_normal(&st));
        pairs[2 * j] = z;
        memcpy(&pairs[2 * j + 1], &j, 4);
        mx = fmax(mx, z);
    }
    for (uint32_t j = 0; j < m->V; j++) s += exp(pairs[2 * j] - mx);
    m->lse[a] = (float)(mx + log(s));
    qsort(pairs, m->V, 2 * sizeof(float), cmp_desc);
    uint32_t *ids = m->ids + (size_t)a * m->k;
    float *vals = m->vals + (size_t)a * m->k;
    for (uint32_t j = 0; j < m->k; j++) {
        memcpy(&ids[j], &pairs[2 * j + 1], 4);
        vals[j] = pairs[2 * j];
    }
    m->kk[a] = m->k;
    if (!m->sampled) return;
    /* k draws from the head renormalised: distinct ids with counts */
    uint64_t st = seed + a;
    float cnt[4096] = {0};
    double zsum = 0;
    for (uint32_t j = 0; j < m->k; j++) zsum += exp(vals[j] - m->lse[a]);
    for (uint32_t d = 0; d < m->k; d++) {
        double u = (slim_rng_next(&st) >> 11) * (1.0 / 9007199254740992.0) * zsum, c = 0;
        uint32_t j = 0;
        for (; j + 1 < m->k; j++) if ((c += exp(vals[j] - m->lse[a])) > u) break;
        cnt[j]++;
    }
    uint32_t n = 0;
    for (uint32_t j = 0; j < m->k; j++)
        if (cnt[j] > 0) { ids[n] = ids[j]; vals[n] = cnt[j]; n++; }
    m->kk[a] = n;
}

static int ms_begin(void *ctx, void **rd) { *rd = ctx; return 0; }
static void ms_end(void *rd) { (void)rd; }

static int ms_info(void *rd, size_t i, uint32_t *ntok, uint32_t *npos)
{
    memsrc *m = rd;
    *ntok = m->ntok;
    *npos = m->ntok - 1;  /* the last token predicts nothing stored */
    return i < m->n ? 0 : SLIM_ENOTFOUND;
}

static int ms_tokens(void *rd, size_t i, uint32_t *buf, uint32_t cap, uint32_t *ntok)
{
    memsrc *m = rd;
    *ntok = m->ntok;
    if (cap < m->ntok) return SLIM_ERANGE;
    memcpy(buf, m->tok + i * m->ntok, m->ntok * sizeof *buf);
    return 0;
}

static int ms_dists(void *rd, size_t i, uint32_t pos, uint32_t n, slim_dist *out, uint32_t *ids,
                    float *vals, size_t cap, size_t *need)
{
    memsrc *m = rd;
    if (pos + n > m->ntok - 1) return SLIM_ENOTFOUND;
    size_t tot = 0;
    for (uint32_t t = 0; t < n; t++) tot += m->kk[m->tok[i * m->ntok + pos + t]];
    if (need) *need = tot;
    if (tot > cap) return SLIM_ERANGE;
    for (uint32_t t = 0; t < n; t++) {
        uint32_t a = m->tok[i * m->ntok + pos + t], k = m->kk[a];
        out[t].k = k;
        out[t].n_samples = m->sampled ? m->k : 0;
        out[t].lse = m->sampled ? 0 : m->lse[a];
        out[t].ids = ids;
        out[t].vals = vals;
        memcpy(ids, m->ids + (size_t)a * m->k, k * sizeof *ids);
        memcpy(vals, m->vals + (size_t)a * m->k, k * sizeof *vals);
        ids += k;
        vals += k;
    }
    return 0;
}

int slim_memsrc_new(slim_tsrc *out, size_t n, uint32_t ntok, uint32_t V, uint32_t k,
                    int sampled, uint64_t seed)
{
    memset(out, 0, sizeof *out);
    if (k > V || k > 4096 || ntok < 1 || V < 2) return SLIM_EINVAL;
    memsrc *m = calloc(1, sizeof *m);
    float *pairs = malloc(2 * (size_t)V * sizeof(float));
    if (!m || !pairs) { free(m); free(pairs); return SLIM_ENOMEM; }
    m->n = n; m->ntok = ntok; m->V = V; m->k = k; m->sampled = sampled;
    m->tok = malloc(n * ntok * sizeof *m->tok);
    m->ids = malloc((size_t)V * k * sizeof *m->ids);
    m->vals = malloc((size_t)V * k * sizeof *m->vals);
    m->lse = calloc(V, sizeof *m->lse);
    m->kk = calloc(V, sizeof *m->kk);
    uint8_t *done = calloc(V, 1);
    uint64_t s = seed;
    for (size_t i = 0; i < n && m->tok && m->ids && m->vals && done; i++) {
        uint32_t a = (uint32_t)(slim_rng_next(&s) % V);
        for (uint32_t t = 0; t < ntok; t++) {
            m->tok[i * ntok + t] = a;
            if (!done[a]) { teacher_row(m, a, seed, pairs); done[a] = 1; }
            /* next token: the stored head with its probabilities, else uniform */
            double u = (slim_rng_next(&s) >> 11) * (1.0 / 9007199254740992.0), c = 0;
            uint32_t nx = (uint32_t)(slim_rng_next(&s) % V);
            if (!sampled)
                for (uint32_t j = 0; j < k; j++)
                    if ((c += exp(m->vals[(size_t)a * k + j] - m->lse[a])) > u) {
                        nx = m->ids[(size_t)a * k + j];
                        break;
                    }
            a = nx;
        }
    }
    free(pairs);
    free(done);
    out->ctx = m;
    out->n = n;
    out->vocab = V;
    out->kind = sampled ? SLIM_KIND_SAMPLED : SLIM_KIND_LOGITS;
    out->begin = ms_begin;
    out->end = ms_end;
    out->info = ms_info;
    out->tokens = ms_tokens;
    out->dists = ms_dists;
    return 0;
}

void slim_memsrc_free(slim_tsrc *src)
{
    memsrc *m = src ? src->ctx : NULL;
    if (!m) return;
    free(m->tok); free(m->ids); free(m->vals); free(m->lse); free(m->kk);
    free(m);
    src->ctx = NULL;
}
