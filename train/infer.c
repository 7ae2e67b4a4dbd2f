/*
 * infer.c — token-at-a-time forward with a KV cache (llama2.c style) for
 * up to maxb sequences in lockstep, over a parameter block that may be a
 * read-only mmap of a checkpoint.  Computes the same function as
 * slim_model_forward, one position of every sequence per step.
 */
#include "model.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct slim_infer {
    slim_model_config cfg;
    slim_params p;          /* points into the caller's block (const in use) */
    int maxb;               /* cache slots */
    float *mem;             /* one allocation for everything below */
    float *kc, *vc;         /* (L, maxb, ctx, C) key / value cache, keys after RoPE */
    float *x, *xb, *q, *k, *v, *att_out; /* (maxb, C) */
    float *hb, *hb2;        /* (maxb, F) */
    float *att;             /* (ctx) */
    float *logits;          /* (maxb, V) */
    float *cosv, *sinv;     /* (ctx, hs/2) */
};

int slim_infer_new_batch(slim_infer **out, const slim_model_config *c, const float *params,
                         int maxb)
{
    *out = NULL;
    if (maxb < 1) return -1;
    slim_infer *s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->cfg = *c;
    s->maxb = maxb;
    size_t L = c->layers, T = c->ctx, C = c->dim, F = c->ffn, V = c->vocab, B = (size_t)maxb;
    size_t h2 = (size_t)(c->dim / c->heads) / 2;
    size_t n = 2 * L * B * T * C + B * (6 * C + 2 * F + V) + T + 2 * T * h2;
    s->mem = calloc(n, sizeof(float));
    if (!s->mem) { free(s); return -1; }
    /* the block is only read; the cast lets slim_params serve both uses */
    slim_params_point(&s->p, c, (float *)(uintptr_t)params);
    float *q = s->mem;
    s->kc = q; q += L * B * T * C;
    s->vc = q; q += L * B * T * C;
    s->x = q; q += B * C;
    s->xb = q; q += B * C;
    s->q = q; q += B * C;
    s->k = q; q += B * C;
    s->v = q; q += B * C;
    s->att_out = q; q += B * C;
    s->hb = q; q += B * F;
    s->hb2 = q; q += B * F;
    s->logits = q; q += B * V;
    s->att = q; q += T;
    s->cosv = q; q += T * h2;
    s->sinv = q;
    int hs = c->dim / c->heads;
    for (size_t t = 0; t < T; t++)
        for (size_t i = 0; i < h2; i++) {
            double freq = pow((double)c->rope_theta, -2.0 * i / hs);
            s->cosv[t * h2 + i] = (float)cos(t * freq);
            s->sinv[t * h2 + i] = (float)sin(t * freq);
        }
    *out = s;
    return 0;
}

int slim_infer_new(slim_infer **out, const slim_model_config *c, const float *params)
{
    return slim_infer_new_batch(out, c, params, 1);
}

void slim_infer_free(slim_infer *s)
{
    if (!s) return;
    free(s->mem);
    free(s);
}

/* o (n, C) = rmsnorm of the rows of x (n, C), times w (C) */
static void rms(float *o, const float *x, const float *w, int n, int C, float eps)
{
    for (int r = 0; r < n; r++, o += C, x += C) {
        float ss = 0;
        for (int i = 0; i < C; i++) ss += x[i] * x[i];
        float f = 1.0f / sqrtf(ss / C + eps);
        for (int i = 0; i < C; i++) o[i] = x[i] * f * w[i];
    }
}

/* Y (n, O) = X (n, I) W (O, I)^T, or Y += with beta 1.  One row goes
 * through sgemv: sgemm's packing costs more than the product there. */
static void matmul(float *Y, const float *X, const float *W, int n, int O, int NI, float beta)
{
    if (n == 1) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, O, NI, 1.0f, W, NI, X, 1, beta, Y, 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, O, NI, 1.0f, X, NI, W, NI, beta,
                Y, O);
}

static void rope1(float *v, const float *cosv, const float *sinv, int C, int NH, int t)
{
    int hs = C / NH, h2 = hs / 2;
    for (int h = 0; h < NH; h++)
        for (int i = 0; i < h2; i++) {
            float c = cosv[t * h2 + i], s = sinv[t * h2 + i];
            float *p = v + h * hs + 2 * i, x0 = p[0], x1 = p[1];
            p[0] = x0 * c - x1 * s;
            p[1] = x0 * s + x1 * c;
        }
}

/* Row r's attention over its own cache (slot) at layer l, positions 0..pos.
 * A head's keys and values are the (pos+1, hs) matrices at stride C in the
 * cache: two matrix-vector products. */
static void attend(slim_infer *s, int l, int slot, int r, int pos)
{
    const slim_model_config *c = &s->cfg;
    int C = c->dim, NH = c->heads, hs = C / NH, n = pos + 1;
    size_t base = ((size_t)l * s->maxb + slot) * c->ctx * C;
    float scale = 1.0f / sqrtf((float)hs), *a = s->att;
    for (int h = 0; h < NH; h++) {
        const float *qh = s->q + (size_t)r * C + h * hs;
        cblas_sgemv(CblasRowMajor, CblasNoTrans, n, hs, scale, s->kc + base + h * hs, C, qh, 1,
                    0.0f, a, 1);
        float mx = -INFINITY, sum = 0;
        for (int t = 0; t < n; t++) mx = a[t] > mx ? a[t] : mx;
        for (int t = 0; t < n; t++) { a[t] = expf(a[t] - mx); sum += a[t]; }
        cblas_sgemv(CblasRowMajor, CblasTrans, n, hs, 1.0f / sum, s->vc + base + h * hs, C, a, 1,
                    0.0f, s->att_out + (size_t)r * C + h * hs, 1);
    }
}

/* q, k, v of the n rows; k and v (after RoPE on k) into each row's cache. */
static void qkv(slim_infer *s, int l, int n, const int *slot, int pos)
{
    const slim_model_config *c = &s->cfg;
    const slim_params *p = &s->p;
    int C = c->dim;
    size_t cc = (size_t)l * C * C;
    matmul(s->q, s->xb, p->wq + cc, n, C, C, 0.0f);
    matmul(s->k, s->xb, p->wk + cc, n, C, C, 0.0f);
    matmul(s->v, s->xb, p->wv + cc, n, C, C, 0.0f);
    for (int r = 0; r < n; r++) {
        size_t at = (((size_t)l * s->maxb + slot[r]) * c->ctx + pos) * C;
        rope1(s->q + (size_t)r * C, s->cosv, s->sinv, C, c->heads, pos);
        rope1(s->k + (size_t)r * C, s->cosv, s->sinv, C, c->heads, pos);
        memcpy(s->kc + at, s->k + (size_t)r * C, C * sizeof(float));
        memcpy(s->vc + at, s->v + (size_t)r * C, C * sizeof(float));
    }
}

const float *slim_infer_step_batch(slim_infer *s, int n, const int *slot, const int *tokens,
                                   int pos)
{
    const slim_model_config *c = &s->cfg;
    int C = c->dim, F = c->ffn;
    if (n < 1 || n > s->maxb || pos < 0 || pos >= c->ctx) return NULL;
    for (int r = 0; r < n; r++)
        if (tokens[r] < 0 || tokens[r] >= c->vocab || slot[r] < 0 || slot[r] >= s->maxb)
            return NULL;
    const slim_params *p = &s->p;
    for (int r = 0; r < n; r++)
        memcpy(s->x + (size_t)r * C, p->wte + (size_t)tokens[r] * C, C * sizeof(float));
    for (int l = 0; l < c->layers; l++) {
        size_t cc = (size_t)l * C * C, fc = (size_t)l * F * C;
        rms(s->xb, s->x, p->rms1 + l * C, n, C, c->norm_eps);
        qkv(s, l, n, slot, pos);
        for (int r = 0; r < n; r++) attend(s, l, slot[r], r, pos);
        matmul(s->x, s->att_out, p->wo + cc, n, C, C, 1.0f);
        rms(s->xb, s->x, p->rms2 + l * C, n, C, c->norm_eps);
        matmul(s->hb, s->xb, p->w1 + fc, n, F, C, 0.0f);
        matmul(s->hb2, s->xb, p->w3 + fc, n, F, C, 0.0f);
        for (size_t i = 0; i < (size_t)n * F; i++) {
            float a = s->hb[i];
            s->hb[i] = a / (1.0f + expf(-a)) * s->hb2[i];
        }
        matmul(s->x, s->hb, p->w2 + fc, n, C, F, 1.0f);
    }
    rms(s->xb, s->x, p->rmsf, n, C, c->norm_eps);
    matmul(s->logits, s->xb, p->head, n, c->vocab, C, 0.0f);
    return s->logits;
}

const float *slim_infer_step(slim_infer *s, int token, int pos)
{
    int slot = 0;
    return slim_infer_step_batch(s, 1, &slot, &token, pos);
}
