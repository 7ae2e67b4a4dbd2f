/*
 * infer.c — one-token-at-a-time forward with a KV cache (llama2.c style),
 * over a parameter block that may be a read-only mmap of a checkpoint.
 * Computes the same function as slim_model_forward, row by row.
 */
#include "model.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct slim_infer {
    slim_model_config cfg;
    slim_params p;          /* points into the caller's block (const in use) */
    float *mem;             /* one allocation for everything below */
    float *kc, *vc;         /* (L, ctx, C) key / value cache, keys after RoPE */
    float *x, *xb, *q, *att_out; /* (C) */
    float *hb, *hb2;        /* (F) */
    float *att;             /* (ctx) */
    float *logits;          /* (V) */
    float *cosv, *sinv;     /* (ctx, hs/2) */
};

int slim_infer_new(slim_infer **out, const slim_model_config *c, const float *params)
{
    *out = NULL;
    slim_infer *s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->cfg = *c;
    size_t L = c->layers, T = c->ctx, C = c->dim, F = c->ffn, V = c->vocab;
    size_t h2 = (size_t)(c->dim / c->heads) / 2;
    size_t n = 2 * L * T * C + 4 * C + 2 * F + T + V + 2 * T * h2;
    s->mem = calloc(n, sizeof(float));
    if (!s->mem) { free(s); return -1; }
    /* the block is only read; the cast lets slim_params serve both uses */
    slim_params_point(&s->p, c, (float *)(uintptr_t)params);
    float *q = s->mem;
    s->kc = q; q += L * T * C;
    s->vc = q; q += L * T * C;
    s->x = q; q += C;
    s->xb = q; q += C;
    s->q = q; q += C;
    s->att_out = q; q += C;
    s->hb = q; q += F;
    s->hb2 = q; q += F;
    s->att = q; q += T;
    s->logits = q; q += V;
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

void slim_infer_free(slim_infer *s)
{
    if (!s) return;
    free(s->mem);
    free(s);
}

static void rms(float *o, const float *x, const float *w, int C, float eps)
{
    float ss = 0;
    for (int i = 0; i < C; i++) ss += x[i] * x[i];
    float r = 1.0f / sqrtf(ss / C + eps);
    for (int i = 0; i < C; i++) o[i] = x[i] * r * w[i];
}

/* y (O) = W (O, I) x (I), or y += with beta 1 */
static void matvec(float *y, const float *W, const float *x, int O, int NI, float beta)
{
    cblas_sgemv(CblasRowMajor, CblasNoTrans, O, NI, 1.0f, W, NI, x, 1, beta, y, 1);
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

static void attend(slim_infer *s, int l, int pos)
{
    const slim_model_config *c = &s->cfg;
    int C = c->dim, NH = c->heads, hs = C / NH;
    size_t base = (size_t)l * c->ctx * C;
    float scale = 1.0f / sqrtf((float)hs);
    for (int h = 0; h < NH; h++) {
        float *qh = s->q + h * hs, mx = -INFINITY, sum = 0;
        for (int t = 0; t <= pos; t++) {
            const float *kt = s->kc + base + (size_t)t * C + h * hs;
            float d = 0;
            for (int i = 0; i < hs; i++) d += qh[i] * kt[i];
            s->att[t] = d * scale;
            mx = s->att[t] > mx ? s->att[t] : mx;
        }
        for (int t = 0; t <= pos; t++) { s->att[t] = expf(s->att[t] - mx); sum += s->att[t]; }
        float *o = s->att_out + h * hs;
        memset(o, 0, hs * sizeof(float));
        for (int t = 0; t <= pos; t++) {
            const float *vt = s->vc + base + (size_t)t * C + h * hs;
            float a = s->att[t] / sum;
            for (int i = 0; i < hs; i++) o[i] += a * vt[i];
        }
    }
}

const float *slim_infer_step(slim_infer *s, int token, int pos)
{
    const slim_model_config *c = &s->cfg;
    int C = c->dim, F = c->ffn;
    if (pos < 0 || pos >= c->ctx || token < 0 || token >= c->vocab) return NULL;
    const slim_params *p = &s->p;
    memcpy(s->x, p->wte + (size_t)token * C, C * sizeof(float));
    for (int l = 0; l < c->layers; l++) {
        size_t cc = (size_t)l * C * C, fc = (size_t)l * F * C;
        float *kt = s->kc + ((size_t)l * c->ctx + pos) * C;
        float *vt = s->vc + ((size_t)l * c->ctx + pos) * C;
        rms(s->xb, s->x, p->rms1 + l * C, C, c->norm_eps);
        matvec(s->q, p->wq + cc, s->xb, C, C, 0.0f);
        matvec(kt, p->wk + cc, s->xb, C, C, 0.0f);
        matvec(vt, p->wv + cc, s->xb, C, C, 0.0f);
        rope1(s->q, s->cosv, s->sinv, C, c->heads, pos);
        rope1(kt, s->cosv, s->sinv, C, c->heads, pos);
        attend(s, l, pos);
        matvec(s->x, p->wo + cc, s->att_out, C, C, 1.0f);
        rms(s->xb, s->x, p->rms2 + l * C, C, c->norm_eps);
        matvec(s->hb, p->w1 + fc, s->xb, F, C, 0.0f);
        matvec(s->hb2, p->w3 + fc, s->xb, F, C, 0.0f);
        for (int i = 0; i < F; i++) {
            float a = s->hb[i];
            s->hb[i] = a / (1.0f + expf(-a)) * s->hb2[i];
        }
        matvec(s->x, p->w2 + fc, s->hb, C, F, 1.0f);
    }
    rms(s->xb, s->x, p->rmsf, C, c->norm_eps);
    matvec(s->logits, p->head, s->xb, c->vocab, C, 0.0f);
    return s->logits;
}
