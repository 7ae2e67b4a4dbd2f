/*
 * model.c — the student transformer: allocation, initialisation, the layer
 * kernels (each a forward and a backward over raw pointers), the whole-model
 * forward/backward and AdamW.  See model.h for the contract.
 */
#include "model.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ config */

int slim_model_config_check(slim_model_config *c, char *err, size_t cap)
{
    if (c->ffn == 0 && c->dim > 0) c->ffn = ((8 * c->dim / 3) + 31) / 32 * 32;
    if (c->rope_theta == 0) c->rope_theta = 10000.0f;
    if (c->norm_eps == 0) c->norm_eps = 1e-5f;
    const char *why = NULL;
    char buf[128];
    if (c->layers < 1) why = "layers must be at least 1";
    else if (c->dim < 2) why = "dim must be at least 2";
    else if (c->heads < 1) why = "heads must be at least 1";
    else if (c->dim % c->heads) {
        snprintf(buf, sizeof buf, "heads (%d) must divide dim (%d)", c->heads, c->dim);
        why = buf;
    } else if ((c->dim / c->heads) % 2) why = "dim/heads must be even (rotary positions)";
    else if (c->vocab < 2) why = "vocabulary must have at least 2 entries";
    else if (c->ctx < 1) why = "ctx must be at least 1";
    else if (c->ffn < 1) why = "ffn must be at least 1";
    else if (!(c->rope_theta > 0) || !(c->norm_eps > 0)) why = "rope_theta and norm_eps must be positive";
    else if ((double)c->vocab * c->dim > 1e10 || c->dim > 65536 || c->ctx > 1 << 20 ||
             c->layers > 4096 || c->ffn > 1 << 20 || c->heads > c->dim)
        why = "model too large";
    if (!why) return 0;
    if (err && cap) snprintf(err, cap, "%s", why);
    return -1;
}

size_t slim_model_param_count(const slim_model_config *c)
{
    size_t V = c->vocab, C = c->dim, L = c->layers, F = c->ffn;
    size_t n = V * C + L * C * 2 + L * C * C * 4 + L * F * C * 3 + C;
    if (!c->tie) n += V * C;
    return n;
}

void slim_params_point(slim_params *p, const slim_model_config *c, float *base)
{
    size_t V = c->vocab, C = c->dim, L = c->layers, F = c->ffn;
    float *q = base;
    p->wte = q;  q += V * C;
    p->rms1 = q; q += L * C;
    p->wq = q;   q += L * C * C;
    p->wk = q;   q += L * C * C;
    p->wv = q;   q += L * C * C;
    p->wo = q;   q += L * C * C;
    p->rms2 = q; q += L * C;
    p->w1 = q;   q += L * F * C;
    p->w3 = q;   q += L * F * C;
    p->w2 = q;   q += L * C * F;
    p->rmsf = q; q += C;
    if (c->tie) p->head = p->wte;
    else { p->head = q; q += V * C; }
}

/* Carve the activations; returns the float count (base NULL = count only). */
static size_t acts_point(slim_acts *a, const slim_model_config *c, int B, int T, float *base)
{
    size_t L = c->layers, C = c->dim, F = c->ffn, V = c->vocab, NH = c->heads;
    size_t BT = (size_t)B * T;
    size_t sizes[] = {
        (L + 1) * BT * C, L * BT * C, L * BT, L * BT * C, L * BT * C, L * BT * C,
        L * B * NH * T * T, L * BT * C, L * BT * C, L * BT * C, L * BT,
        L * BT * F, L * BT * F, L * BT * F, BT * C, BT, BT * V,
        BT * C, BT * C, BT * C, BT * C, BT * C, BT * C, B * NH * T * T,
        BT * F, BT * F, BT * F,
    };
    float **ptrs[] = {
        &a->resid, &a->ln1, &a->rstd1, &a->q, &a->k, &a->v,
        &a->att, &a->atty, &a->mid, &a->ln2, &a->rstd2,
        &a->h1, &a->h3, &a->hg, &a->lnf, &a->rstdf, &a->logits,
        &a->dx, &a->dln, &a->dq, &a->dk, &a->dv, &a->datty, &a->datt,
        &a->dh1, &a->dh3, &a->dhg,
    };
    size_t n = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        if (base) *ptrs[i] = base + n;
        n += (sizes[i] + 15) & ~(size_t)15;  /* keep every tensor 64-byte aligned */
    }
    return n;
}

static void rope_table(const slim_model_config *c, float *cosv, float *sinv)
{
    int hs = c->dim / c->heads;
    for (int t = 0; t < c->ctx; t++)
        for (int i = 0; i < hs / 2; i++) {
            double freq = pow((double)c->rope_theta, -2.0 * i / hs);
            cosv[(size_t)t * (hs / 2) + i] = (float)cos(t * freq);
            sinv[(size_t)t * (hs / 2) + i] = (float)sin(t * freq);
        }
}

static float *alloc_floats(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, (n ? n : 1) * sizeof(float))) return NULL;
    memset(p, 0, (n ? n : 1) * sizeof(float));
    return p;
}

int slim_model_new(slim_model **out, const slim_model_config *c, int B, int T)
{
    *out = NULL;
    if (B < 1 || T < 1 || T > c->ctx) return -1;
    slim_model *m = calloc(1, sizeof *m);
    if (!m) return -1;
    m->cfg = *c;
    m->B = B; m->T = T;
    m->n_params = slim_model_param_count(c);
    size_t nact = acts_point(&m->a, c, B, T, NULL);
    size_t hs2 = (size_t)(c->dim / c->heads) / 2;
    m->params = alloc_floats(m->n_params);
    m->grads = alloc_floats(m->n_params);
    m->adam_m = alloc_floats(2 * m->n_params);
    m->act_mem = alloc_floats(nact);
    m->rope_cos = alloc_floats(2 * (size_t)c->ctx * hs2);
    if (!m->params || !m->grads || !m->adam_m || !m->act_mem || !m->rope_cos) {
        slim_model_free(m);
        return -1;
    }
    m->adam_v = m->adam_m + m->n_params;
    m->rope_sin = m->rope_cos + (size_t)c->ctx * hs2;
    slim_params_point(&m->p, c, m->params);
    slim_params_point(&m->g, c, m->grads);
    acts_point(&m->a, c, B, T, m->act_mem);
    rope_table(c, m->rope_cos, m->rope_sin);
    *out = m;
    return 0;
}

void slim_model_free(slim_model *m)
{
    if (!m) return;
    free(m->params);
    free(m->grads);
    free(m->adam_m);
    free(m->act_mem);
    free(m->rope_cos);
    free(m);
}

/* ---------------------------------------------------------------- random */

uint64_t slim_rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double slim_rng_normal(uint64_t *s)
{
    /* Box-Muller on 53-bit uniforms; one value per call keeps it stateless */
    double u1 = ((slim_rng_next(s) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double u2 = (slim_rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static void fill_normal(float *x, size_t n, double std, uint64_t *s)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)(std * slim_rng_normal(s));
}

void slim_model_init(slim_model *m, uint64_t seed)
{
    const slim_model_config *c = &m->cfg;
    size_t V = c->vocab, C = c->dim, L = c->layers, F = c->ffn;
    uint64_t s = seed ^ 0x736c696d2d696e69ull;  /* "slim-ini" */
    double std = 0.02, proj = 0.02 / sqrt(2.0 * L);
    fill_normal(m->p.wte, V * C, std, &s);
    fill_normal(m->p.wq, L * C * C, std, &s);
    fill_normal(m->p.wk, L * C * C, std, &s);
    fill_normal(m->p.wv, L * C * C, std, &s);
    fill_normal(m->p.wo, L * C * C, proj, &s);
    fill_normal(m->p.w1, L * F * C, std, &s);
    fill_normal(m->p.w3, L * F * C, std, &s);
    fill_normal(m->p.w2, L * C * F, proj, &s);
    if (!c->tie) fill_normal(m->p.head, V * C, std, &s);
    for (size_t i = 0; i < L * C; i++) m->p.rms1[i] = m->p.rms2[i] = 1.0f;
    for (size_t i = 0; i < C; i++) m->p.rmsf[i] = 1.0f;
}

/* ----------------------------------------------------------- layer kernels */

/* out (N, O) = in (N, NI) W^T, W (O, NI) */
static void linear_forward(float *out, const float *in, const float *W, int N, int NI, int O)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, O, NI, 1.0f, in, NI, W, NI, 0.0f, out, O);
}

/* din (N, NI) (+)= dout (N, O) W; dW (O, NI) += dout^T in.  din_beta 0 overwrites. */
static void linear_backward(float *din, float *dW, const float *dout, const float *in,
                            const float *W, int N, int NI, int O, float din_beta)
{
    if (din)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, NI, O, 1.0f, dout, O, W, NI,
                    din_beta, din, NI);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, O, NI, N, 1.0f, dout, O, in, NI, 1.0f, dW, NI);
}

/* out (N, C) = x * rstd * w; rstd (N) kept for backward */
static void rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int N, int C,
                            float eps)
{
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *xn = x + (size_t)n * C;
        float *on = out + (size_t)n * C;
        float ss = 0;
        for (int i = 0; i < C; i++) ss += xn[i] * xn[i];
        float r = 1.0f / sqrtf(ss / C + eps);
        rstd[n] = r;
        for (int i = 0; i < C; i++) on[i] = xn[i] * r * w[i];
    }
}

/* dx (N, C) += d/dx; dw (C) += d/dw, columns split across threads so the
 * row sums keep a fixed order */
static void rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x,
                             const float *w, const float *rstd, int N, int C)
{
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *xn = x + (size_t)n * C, *dn = dout + (size_t)n * C;
        float *dxn = dx + (size_t)n * C;
        float r = rstd[n], dot = 0;
        for (int i = 0; i < C; i++) dot += dn[i] * w[i] * xn[i];
        float k = dot * r * r * r / C;
        for (int i = 0; i < C; i++) dxn[i] += dn[i] * w[i] * r - k * xn[i];
    }
#pragma omp parallel for schedule(static)
    for (int i = 0; i < C; i++) {
        float s = 0;
        for (int n = 0; n < N; n++) s += dout[(size_t)n * C + i] * x[(size_t)n * C + i] * rstd[n];
        dw[i] += s;
    }
}

/* Rotate pairs (2i, 2i+1) of each head of x (B, T, C) by angle t * freq_i;
 * dir = -1 applies the inverse (the backward of a rotation) */
static void rope_apply(float *x, const float *cosv, const float *sinv, int B, int T, int C,
                       int NH, float dir)
{
    int hs = C / NH, h2 = hs / 2;
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < B * T; bt++) {
        int t = bt % T;
        float *row = x + (size_t)bt * C;
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < h2; i++) {
                float c = cosv[t * h2 + i], s = dir * sinv[t * h2 + i];
                float *p = row + h * hs + 2 * i;
                float x0 = p[0], x1 = p[1];
                p[0] = x0 * c - x1 * s;
                p[1] = x0 * s + x1 * c;
            }
    }
}

/* Causal self-attention.  q, k, v (B, T, C); att (B, NH, T, T) probabilities;
 * out (B, T, C).  One (b, h) per OpenMP iteration; sgemm inside a parallel
 * region runs single-threaded in the OpenMP OpenBLAS. */
static void attention_forward(float *out, float *att, const float *q, const float *k,
                              const float *v, int B, int T, int C, int NH)
{
    int hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        size_t off = (size_t)b * T * C + (size_t)h * hs;
        float *P = att + (size_t)bh * T * T;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, scale, q + off, C,
                    k + off, C, 0.0f, P, T);
        for (int t = 0; t < T; t++) {
            float *r = P + (size_t)t * T, mx = -INFINITY, sum = 0;
            for (int j = 0; j <= t; j++) mx = r[j] > mx ? r[j] : mx;
            for (int j = 0; j <= t; j++) { r[j] = expf(r[j] - mx); sum += r[j]; }
            for (int j = 0; j <= t; j++) r[j] /= sum;
            for (int j = t + 1; j < T; j++) r[j] = 0;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, 1.0f, P, T, v + off, C,
                    0.0f, out + off, C);
    }
}

/* dq, dk, dv (B, T, C) overwritten; datt (B, NH, T, T) scratch */
static void attention_backward(float *dq, float *dk, float *dv, float *datt, const float *dout,
                               const float *att, const float *q, const float *k, const float *v,
                               int B, int T, int C, int NH)
{
    int hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        size_t off = (size_t)b * T * C + (size_t)h * hs;
        const float *P = att + (size_t)bh * T * T;
        float *dP = datt + (size_t)bh * T * T;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, 1.0f, dout + off, C,
                    v + off, C, 0.0f, dP, T);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, 1.0f, P, T, dout + off, C,
                    0.0f, dv + off, C);
        for (int t = 0; t < T; t++) {
            const float *pr = P + (size_t)t * T;
            float *dr = dP + (size_t)t * T, dot = 0;
            for (int j = 0; j <= t; j++) dot += pr[j] * dr[j];
            for (int j = 0; j <= t; j++) dr[j] = pr[j] * (dr[j] - dot);
            for (int j = t + 1; j < T; j++) dr[j] = 0;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, scale, dP, T, k + off, C,
                    0.0f, dq + off, C);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, scale, dP, T, q + off, C,
                    0.0f, dk + off, C);
    }
}

/* hg (N, F) = silu(h1) * h3 */
static void swiglu_forward(float *hg, const float *h1, const float *h3, size_t n)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float a = h1[i], s = 1.0f / (1.0f + expf(-a));
        hg[i] = a * s * h3[i];
    }
}

static void swiglu_backward(float *dh1, float *dh3, const float *dhg, const float *h1,
                            const float *h3, size_t n)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float a = h1[i], s = 1.0f / (1.0f + expf(-a));
        dh3[i] = dhg[i] * a * s;
        dh1[i] = dhg[i] * h3[i] * s * (1.0f + a * (1.0f - s));
    }
}

/* ----------------------------------------------------------- whole model */

void slim_model_forward(slim_model *m, const int32_t *tokens)
{
    const slim_model_config *c = &m->cfg;
    int B = m->B, T = m->T, C = c->dim, F = c->ffn, NH = c->heads, BT = B * T;
    slim_acts *a = &m->a;
    slim_params *p = &m->p;
    for (int i = 0; i < BT; i++)
        memcpy(a->resid + (size_t)i * C, p->wte + (size_t)tokens[i] * C, C * sizeof(float));
    for (int l = 0; l < c->layers; l++) {
        size_t lc = (size_t)l * BT * C, lf = (size_t)l * BT * F, cc = (size_t)l * C * C;
        float *x = a->resid + lc, *ln1 = a->ln1 + lc, *q = a->q + lc, *k = a->k + lc;
        float *v = a->v + lc, *atty = a->atty + lc, *mid = a->mid + lc, *ln2 = a->ln2 + lc;
        float *h1 = a->h1 + lf, *h3 = a->h3 + lf, *hg = a->hg + lf;
        float *xo = a->resid + lc + (size_t)BT * C;
        rmsnorm_forward(ln1, a->rstd1 + (size_t)l * BT, x, p->rms1 + l * C, BT, C, c->norm_eps);
        linear_forward(q, ln1, p->wq + cc, BT, C, C);
        linear_forward(k, ln1, p->wk + cc, BT, C, C);
        linear_forward(v, ln1, p->wv + cc, BT, C, C);
        rope_apply(q, m->rope_cos, m->rope_sin, B, T, C, NH, 1.0f);
        rope_apply(k, m->rope_cos, m->rope_sin, B, T, C, NH, 1.0f);
        attention_forward(atty, a->att + (size_t)l * B * NH * T * T, q, k, v, B, T, C, NH);
        memcpy(mid, x, (size_t)BT * C * sizeof(float));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, BT, C, C, 1.0f, atty, C, p->wo + cc,
                    C, 1.0f, mid, C);
        rmsnorm_forward(ln2, a->rstd2 + (size_t)l * BT, mid, p->rms2 + l * C, BT, C, c->norm_eps);
        linear_forward(h1, ln2, p->w1 + (size_t)l * F * C, BT, C, F);
        linear_forward(h3, ln2, p->w3 + (size_t)l * F * C, BT, C, F);
        swiglu_forward(hg, h1, h3, (size_t)BT * F);
        memcpy(xo, mid, (size_t)BT * C * sizeof(float));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, BT, C, F, 1.0f, hg, F,
                    p->w2 + (size_t)l * C * F, F, 1.0f, xo, C);
    }
    rmsnorm_forward(a->lnf, a->rstdf, a->resid + (size_t)c->layers * BT * C, p->rmsf, BT, C,
                    c->norm_eps);
    linear_forward(a->logits, a->lnf, p->head, BT, C, c->vocab);
}

/* Backward of one layer: a->dx holds dL/d(layer output) on entry and
 * dL/d(layer input) on return. */
static void layer_backward(slim_model *m, int l)
{
    const slim_model_config *c = &m->cfg;
    int B = m->B, T = m->T, C = c->dim, F = c->ffn, NH = c->heads, BT = B * T;
    slim_acts *a = &m->a;
    slim_params *p = &m->p, *g = &m->g;
    size_t lc = (size_t)l * BT * C, lf = (size_t)l * BT * F, cc = (size_t)l * C * C;
    size_t fc = (size_t)l * F * C;
    /* MLP: xo = mid + hg w2^T; dx is both d(xo) and the running d(mid) */
    linear_backward(a->dhg, g->w2 + fc, a->dx, a->hg + lf, p->w2 + fc, BT, F, C, 0.0f);
    swiglu_backward(a->dh1, a->dh3, a->dhg, a->h1 + lf, a->h3 + lf, (size_t)BT * F);
    linear_backward(a->dln, g->w1 + fc, a->dh1, a->ln2 + lc, p->w1 + fc, BT, C, F, 0.0f);
    linear_backward(a->dln, g->w3 + fc, a->dh3, a->ln2 + lc, p->w3 + fc, BT, C, F, 1.0f);
    rmsnorm_backward(a->dx, g->rms2 + l * C, a->dln, a->mid + lc, p->rms2 + l * C,
                     a->rstd2 + (size_t)l * BT, BT, C);
    /* attention: mid = x + atty wo^T */
    linear_backward(a->datty, g->wo + cc, a->dx, a->atty + lc, p->wo + cc, BT, C, C, 0.0f);
    attention_backward(a->dq, a->dk, a->dv, a->datt, a->datty, a->att + (size_t)l * B * NH * T * T,
                       a->q + lc, a->k + lc, a->v + lc, B, T, C, NH);
    rope_apply(a->dq, m->rope_cos, m->rope_sin, B, T, C, NH, -1.0f);
    rope_apply(a->dk, m->rope_cos, m->rope_sin, B, T, C, NH, -1.0f);
    linear_backward(a->dln, g->wq + cc, a->dq, a->ln1 + lc, p->wq + cc, BT, C, C, 0.0f);
    linear_backward(a->dln, g->wk + cc, a->dk, a->ln1 + lc, p->wk + cc, BT, C, C, 1.0f);
    linear_backward(a->dln, g->wv + cc, a->dv, a->ln1 + lc, p->wv + cc, BT, C, C, 1.0f);
    rmsnorm_backward(a->dx, g->rms1 + l * C, a->dln, a->resid + lc, p->rms1 + l * C,
                     a->rstd1 + (size_t)l * BT, BT, C);
}

void slim_model_backward(slim_model *m, const int32_t *tokens)
{
    const slim_model_config *c = &m->cfg;
    int BT = m->B * m->T, C = c->dim;
    slim_acts *a = &m->a;
    linear_backward(a->dln, m->g.head, a->logits, a->lnf, m->p.head, BT, C, c->vocab, 0.0f);
    memset(a->dx, 0, (size_t)BT * C * sizeof(float));
    rmsnorm_backward(a->dx, m->g.rmsf, a->dln, a->resid + (size_t)c->layers * BT * C, m->p.rmsf,
                     a->rstdf, BT, C);
    for (int l = c->layers - 1; l >= 0; l--) layer_backward(m, l);
    /* embedding: rows in a fixed order (tokens repeat, so no parallel adds) */
    for (int i = 0; i < BT; i++) {
        float *dst = m->g.wte + (size_t)tokens[i] * C;
        const float *src = a->dx + (size_t)i * C;
        for (int j = 0; j < C; j++) dst[j] += src[j];
    }
}

void slim_model_zero_grad(slim_model *m)
{
    memset(m->grads, 0, m->n_params * sizeof(float));
}

/* Fixed number of chunks, summed in order: the result does not depend on
 * the thread count. */
#define NORM_CHUNKS 64
double slim_model_grad_norm(const slim_model *m)
{
    double part[NORM_CHUNKS];
    size_t n = m->n_params, per = (n + NORM_CHUNKS - 1) / NORM_CHUNKS;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < NORM_CHUNKS; ch++) {
        size_t lo = ch * per, hi = lo + per < n ? lo + per : n;
        double s = 0;
        for (size_t i = lo; i < hi; i++) s += (double)m->grads[i] * m->grads[i];
        part[ch] = s;
    }
    double s = 0;
    for (int ch = 0; ch < NORM_CHUNKS; ch++) s += part[ch];
    return sqrt(s);
}

/* Ranges of the parameter block that are RMSNorm weights (no weight decay). */
static int is_norm(const slim_model *m, size_t i)
{
    size_t r1 = m->p.rms1 - m->params, r2 = m->p.rms2 - m->params, rf = m->p.rmsf - m->params;
    size_t LC = (size_t)m->cfg.layers * m->cfg.dim;
    return (i >= r1 && i < r1 + LC) || (i >= r2 && i < r2 + LC) ||
           (i >= rf && i < rf + (size_t)m->cfg.dim);
}

void slim_model_adamw(slim_model *m, const slim_adamw *o, int64_t t, float gscale)
{
    float bc1 = 1.0f - powf(o->beta1, (float)t), bc2 = 1.0f - powf(o->beta2, (float)t);
    size_t n = m->n_params;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float gr = m->grads[i] * gscale;
        float mi = o->beta1 * m->adam_m[i] + (1.0f - o->beta1) * gr;
        float vi = o->beta2 * m->adam_v[i] + (1.0f - o->beta2) * gr * gr;
        m->adam_m[i] = mi;
        m->adam_v[i] = vi;
        float upd = (mi / bc1) / (sqrtf(vi / bc2) + o->eps);
        float wd = is_norm(m, i) ? 0.0f : o->wd;
        m->params[i] -= o->lr * (upd + wd * m->params[i]);
    }
}
