/*
 * test_train_grad.c — gradients checked against central differences of an
 * independent double-precision re-implementation: every parameter tensor of
 * the model (so every layer's backward), the KV-cache inference path against
 * the training forward, and every loss w.r.t. the student logits.
 */
#include "../train/loss.h"
#include "../train/model.h"
#include "lib/tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------ reference model (double) */

typedef struct { size_t wte, rms1, wq, wk, wv, wo, rms2, w1, w3, w2, rmsf, head; } offs;

static offs offsets(const slim_model_config *c)
{
    size_t n = slim_model_param_count(c);
    float *blk = calloc(n, sizeof(float));
    slim_params p;
    slim_params_point(&p, c, blk);
    offs o = {(size_t)(p.wte - blk), (size_t)(p.rms1 - blk), (size_t)(p.wq - blk),
              (size_t)(p.wk - blk), (size_t)(p.wv - blk), (size_t)(p.wo - blk),
              (size_t)(p.rms2 - blk), (size_t)(p.w1 - blk), (size_t)(p.w3 - blk),
              (size_t)(p.w2 - blk), (size_t)(p.rmsf - blk), (size_t)(p.head - blk)};
    free(blk);
    return o;
}

static void ref_rms(double *o, const double *x, const double *w, int C, double eps)
{
    double ss = 0;
    for (int i = 0; i < C; i++) ss += x[i] * x[i];
    double r = 1.0 / sqrt(ss / C + eps);
    for (int i = 0; i < C; i++) o[i] = x[i] * r * w[i];
}

/* y (O) = W (O, I) x */
static void ref_mv(double *y, const double *W, const double *x, int O, int NI, int acc)
{
    for (int o = 0; o < O; o++) {
        double s = acc ? y[o] : 0;
        for (int i = 0; i < NI; i++) s += W[(size_t)o * NI + i] * x[i];
        y[o] = s;
    }
}

static void ref_rope(double *v, int C, int NH, int t, double theta)
{
    int hs = C / NH;
    for (int h = 0; h < NH; h++)
        for (int i = 0; i < hs / 2; i++) {
            double a = t * pow(theta, -2.0 * i / hs), c = cos(a), s = sin(a);
            double *p = v + h * hs + 2 * i, x0 = p[0], x1 = p[1];
            p[0] = x0 * c - x1 * s;
            p[1] = x0 * s + x1 * c;
        }
}

/* logits (B, T, V) of the model with parameters P (double) */
static void ref_forward(const slim_model_config *c, const double *P, const int32_t *tok, int B,
                        int T, double *logits)
{
    int C = c->dim, F = c->ffn, NH = c->heads, hs = C / NH, V = c->vocab;
    offs o = offsets(c);
    double *x = calloc((size_t)T * C, sizeof(double)), *ln = calloc(C, sizeof(double));
    double *q = calloc((size_t)T * C, sizeof(double)), *k = calloc((size_t)T * C, sizeof(double));
    double *v = calloc((size_t)T * C, sizeof(double)), *y = calloc(C, sizeof(double));
    double *h1 = calloc(F, sizeof(double)), *h3 = calloc(F, sizeof(double));
    double *att = calloc(T, sizeof(double));
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++)
            for (int i = 0; i < C; i++) x[t * C + i] = P[o.wte + (size_t)tok[b * T + t] * C + i];
        for (int l = 0; l < c->layers; l++) {
            size_t cc = (size_t)l * C * C, fc = (size_t)l * F * C;
            for (int t = 0; t < T; t++) {
                ref_rms(ln, x + t * C, P + o.rms1 + l * C, C, c->norm_eps);
                ref_mv(q + t * C, P + o.wq + cc, ln, C, C, 0);
                ref_mv(k + t * C, P + o.wk + cc, ln, C, C, 0);
                ref_mv(v + t * C, P + o.wv + cc, ln, C, C, 0);
                ref_rope(q + t * C, C, NH, t, c->rope_theta);
                ref_rope(k + t * C, C, NH, t, c->rope_theta);
            }
            for (int t = 0; t < T; t++) {
                for (int h = 0; h < NH; h++) {
                    double mx = -1e300, sum = 0;
                    for (int u = 0; u <= t; u++) {
                        double d = 0;
                        for (int i = 0; i < hs; i++) d += q[t * C + h * hs + i] * k[u * C + h * hs + i];
                        att[u] = d / sqrt((double)hs);
                        if (att[u] > mx) mx = att[u];
                    }
                    for (int u = 0; u <= t; u++) { att[u] = exp(att[u] - mx); sum += att[u]; }
                    for (int i = 0; i < hs; i++) {
                        double s = 0;
                        for (int u = 0; u <= t; u++) s += att[u] / sum * v[u * C + h * hs + i];
                        y[h * hs + i] = s;
                    }
                }
                ref_mv(x + t * C, P + o.wo + cc, y, C, C, 1);
                ref_rms(ln, x + t * C, P + o.rms2 + l * C, C, c->norm_eps);
                ref_mv(h1, P + o.w1 + fc, ln, F, C, 0);
                ref_mv(h3, P + o.w3 + fc, ln, F, C, 0);
                for (int i = 0; i < F; i++) h1[i] = h1[i] / (1 + exp(-h1[i])) * h3[i];
                ref_mv(x + t * C, P + o.w2 + fc, h1, C, F, 1);
            }
        }
        for (int t = 0; t < T; t++) {
            ref_rms(ln, x + t * C, P + o.rmsf, C, c->norm_eps);
            ref_mv(logits + ((size_t)b * T + t) * V, P + o.head, ln, V, C, 0);
        }
    }
    free(x); free(ln); free(q); free(k); free(v); free(y); free(h1); free(h3); free(att);
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Model gradients vs central differences; one TAP case per tensor. */
static void check_model(int tie)
{
    slim_model_config c = {.vocab = 13, .ctx = 8, .layers = 2, .dim = 8, .heads = 2, .ffn = 12,
                           .tie = tie};
    char err[128];
    if (slim_model_config_check(&c, err, sizeof err)) { printf("FAIL config: %s\n", err); tap_failed_++; return; }
    int B = 2, T = 5, V = c.vocab;
    slim_model *m;
    slim_model_new(&m, &c, B, T);
    uint64_t s = 42;
    size_t n = m->n_params, nl = (size_t)B * T * V;
    for (size_t i = 0; i < n; i++) m->params[i] = (float)(0.4 * slim_rng_normal(&s));
    for (size_t i = 0; i < (size_t)c.layers * c.dim; i++) {
        m->p.rms1[i] = 1.0f + m->p.rms1[i] * 0.3f;
        m->p.rms2[i] = 1.0f + m->p.rms2[i] * 0.3f;
    }
    int32_t tok[10] = {1, 5, 12, 0, 7, 3, 3, 9, 11, 2};
    double *r = malloc(nl * sizeof(double)), *lg = malloc(nl * sizeof(double));
    for (size_t i = 0; i < nl; i++) r[i] = slim_rng_normal(&s);
    double *P = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) P[i] = m->params[i];

    TAP_BEGIN(tie ? "model_forward_matches_reference_tied" : "model_forward_matches_reference");
    slim_model_forward(m, tok);
    ref_forward(&c, P, tok, B, T, lg);
    double maxd = 0;
    for (size_t i = 0; i < nl; i++) maxd = fmax(maxd, fabs(lg[i] - m->a.logits[i]));
    CHECK(maxd < 1e-4, "max |logit diff| %g", maxd);
    TAP_END();

    for (size_t i = 0; i < nl; i++) m->a.logits[i] = (float)r[i];
    slim_model_zero_grad(m);
    slim_model_backward(m, tok);

    offs o = offsets(&c);
    struct { const char *name; size_t off, len; } ts[] = {
        {"wte", o.wte, (size_t)V * c.dim}, {"rms1", o.rms1, (size_t)c.layers * c.dim},
        {"wq", o.wq, (size_t)c.layers * c.dim * c.dim}, {"wk", o.wk, (size_t)c.layers * c.dim * c.dim},
        {"wv", o.wv, (size_t)c.layers * c.dim * c.dim}, {"wo", o.wo, (size_t)c.layers * c.dim * c.dim},
        {"rms2", o.rms2, (size_t)c.layers * c.dim}, {"w1", o.w1, (size_t)c.layers * c.ffn * c.dim},
        {"w3", o.w3, (size_t)c.layers * c.ffn * c.dim}, {"w2", o.w2, (size_t)c.layers * c.ffn * c.dim},
        {"rmsf", o.rmsf, (size_t)c.dim}, {"head", o.head, tie ? 0 : (size_t)V * c.dim},
    };
    for (size_t ti = 0; ti < sizeof ts / sizeof ts[0]; ti++) {
        if (!ts[ti].len) continue;
        char name[64];
        snprintf(name, sizeof name, "grad_%s%s", ts[ti].name, tie ? "_tied" : "");
        TAP_BEGIN(name);
        double worst = 0, gmax = 0;
        size_t wi = 0;
        for (size_t j = ts[ti].off; j < ts[ti].off + ts[ti].len; j++) {
            double keep = P[j], h = 1e-5;
            P[j] = keep + h; ref_forward(&c, P, tok, B, T, lg);
            double lp = dot(lg, r, nl);
            P[j] = keep - h; ref_forward(&c, P, tok, B, T, lg);
            double lm = dot(lg, r, nl);
            P[j] = keep;
            double num = (lp - lm) / (2 * h), ana = m->grads[j];
            gmax = fmax(gmax, fabs(num));
            double e = fabs(num - ana) / (fabs(num) + 1e-2);
            if (e > worst) { worst = e; wi = j; }
        }
        CHECK(worst < 2e-3 && gmax > 1e-3, "worst rel err %g at %zu (num grads max %g)", worst,
              wi - ts[ti].off, gmax);
        TAP_END();
    }

    TAP_BEGIN(tie ? "kv_cache_inference_matches_forward_tied" : "kv_cache_inference_matches_forward");
    slim_infer *inf;
    CHECK(slim_infer_new(&inf, &c, m->params) == 0, "infer_new");
    slim_model_forward(m, tok);
    double md = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const float *row = slim_infer_step(inf, tok[b * T + t], t);
            for (int i = 0; i < V; i++)
                md = fmax(md, fabs(row[i] - m->a.logits[((size_t)b * T + t) * V + i]));
        }
    CHECK(md < 1e-4, "max |diff| %g", md);
    CHECK(slim_infer_step(inf, V, 0) == NULL, "token >= V accepted");
    slim_infer_free(inf);
    TAP_END();
    free(r); free(lg); free(P);
    slim_model_free(m);
}

/* ------------------------------------------------- reference losses (double) */

#define LV 17
#define NROW 4

typedef struct { int y; int k; uint32_t ids[4]; double p[4]; } ref_row;

/* tau-softened teacher targets over K and the bucket, per the tail mode */
static double ref_row_loss(const slim_loss_config *c, const double *z, const ref_row *r,
                           const double *wfix, double *w_out)
{
    double mx = -1e300, s = 0, tau = c->tau;
    for (int i = 0; i < LV; i++) mx = fmax(mx, z[i]);
    for (int i = 0; i < LV; i++) s += exp(z[i] - mx);
    double ce = mx + log(s) - z[r->y];
    if (c->kind == SLIM_LOSS_CE || r->k == 0) return ce;
    double sT = 0, lsT[LV];
    for (int i = 0; i < LV; i++) sT += exp(z[i] / tau - mx / tau);
    for (int i = 0; i < LV; i++) lsT[i] = z[i] / tau - (mx / tau + log(sT));
    double q[4], sum = 0, tail = 1;
    for (int j = 0; j < r->k; j++) tail -= r->p[j];
    if (c->kind == SLIM_LOSS_RSKD) tail = 0;
    double zq = 0;
    for (int j = 0; j < r->k; j++) { q[j] = pow(r->p[j], 1 / tau); zq += q[j]; }
    double tq = tail > 0 ? pow(tail, 1 / tau) : 0;
    if (tau != 1) { zq += tq; for (int j = 0; j < r->k; j++) q[j] /= zq; tq /= zq; }
    else for (int j = 0; j < r->k; j++) q[j] = r->p[j], tq = tail;
    if (c->tail == SLIM_TAIL_RENORM && c->kind != SLIM_LOSS_RSKD) {
        for (int j = 0; j < r->k; j++) sum += q[j];
        for (int j = 0; j < r->k; j++) q[j] /= sum;
    }
    double kd = 0, pin = 0;
    for (int j = 0; j < r->k; j++) { kd -= q[j] * lsT[r->ids[j]]; pin += exp(lsT[r->ids[j]]); }
    if (c->tail == SLIM_TAIL_GHOST && c->kind != SLIM_LOSS_RSKD) kd -= tq * log(1 - pin);
    kd *= tau * tau;
    if (c->kind == SLIM_LOSS_SLIM) {
        double pty = 0, psy = exp(-ce), w;
        for (int j = 0; j < r->k; j++)
            if ((int)r->ids[j] == r->y) pty = r->p[j];
        if (!c->printed) w = pty > 0 ? 1 - exp(-pty / psy) : 0;
        else w = pty > 0 ? 1 - exp(-psy / pty) : 1;
        if (w_out) *w_out = w;
        return ce + (wfix ? *wfix : w) * kd;
    }
    return (1 - c->alpha) * ce + c->alpha * kd;
}

static void check_loss(const char *name, slim_loss_config c)
{
    /* row 0: y in K; row 1: y outside K; row 2: no distribution; row 3: untrained */
    ref_row rows[NROW] = {
        {3, 4, {3, 7, 0, 16}, {0.4, 0.2, 0.1, 0.05}},
        {9, 4, {2, 5, 11, 6}, {0.5, 0.15, 0.1, 0.02}},
        {4, 0, {0}, {0}},
        {-1, 4, {1, 2, 3, 4}, {0.3, 0.3, 0.2, 0.1}},
    };
    if (c.kind == SLIM_LOSS_RSKD) {  /* counts / N, summing to 1 */
        double cnt[2][4] = {{5, 2, 2, 1}, {4, 3, 2, 1}};
        for (int r = 0; r < 2; r++)
            for (int j = 0; j < 4; j++) rows[r].p[j] = cnt[r][j] / 10.0;
    }
    slim_target tg[NROW];
    uint32_t ids[NROW * 4];
    float pt[NROW * 4], z[NROW * LV];
    double zd[NROW * LV], wfix[NROW];
    uint64_t s = 7;
    for (int i = 0; i < NROW * LV; i++) zd[i] = 1.5 * slim_rng_normal(&s), z[i] = (float)zd[i];
    for (int r = 0; r < NROW; r++) {
        tg[r].y = rows[r].y; tg[r].k = rows[r].k; tg[r].off = r * 4;
        double tail = 1;
        for (int j = 0; j < rows[r].k; j++) {
            ids[r * 4 + j] = rows[r].ids[j];
            pt[r * 4 + j] = (float)rows[r].p[j];
            tail -= rows[r].p[j];
        }
        tg[r].tail = (float)(tail < 0 ? 0 : tail);
        if (rows[r].y >= 0) ref_row_loss(&c, zd + r * LV, &rows[r], NULL, &wfix[r]);
    }
    slim_loss_ws *ws;
    slim_loss_ws_new(&ws, LV, NROW);
    slim_loss_stats st;
    float scale = 0.5f;
    slim_loss_batch(&c, z, NROW, LV, tg, ids, pt, scale, ws, &st);
    TAP_BEGIN(name);
    double ref = 0;
    for (int r = 0; r < 3; r++) ref += ref_row_loss(&c, zd + r * LV, &rows[r], &wfix[r], NULL);
    CHECK(st.n == 3 && fabs(st.loss - ref) < 1e-4 * fmax(1, fabs(ref)), "loss %g vs ref %g (n %ld)",
          st.loss, ref, (long)st.n);
    double worst = 0;
    for (int i = 0; i < 3 * LV; i++) {
        int r = i / LV;
        double keep = zd[i], h = 1e-6;
        zd[i] = keep + h;
        double lp = ref_row_loss(&c, zd + r * LV, &rows[r], &wfix[r], NULL);
        zd[i] = keep - h;
        double lm = ref_row_loss(&c, zd + r * LV, &rows[r], &wfix[r], NULL);
        zd[i] = keep;
        double num = scale / 3.0 * (lp - lm) / (2 * h);
        worst = fmax(worst, fabs(num - z[i]));
    }
    for (int i = 3 * LV; i < NROW * LV; i++) worst = fmax(worst, fabs(z[i]));
    CHECK(worst < 2e-5, "worst |grad - numeric| %g", worst);
    if (c.kind == SLIM_LOSS_SLIM)
        CHECK(st.n_w == 2 && st.n_w0 == (c.printed ? 0 : 1) && fabs(st.w - (wfix[0] + wfix[1])) < 1e-5 &&
              (c.printed ? fabs(wfix[1] - 1) < 1e-12 : wfix[1] == 0),
              "w stats %g (n %ld), w outside K %g", st.w, (long)st.n_w, wfix[1]);
    TAP_END();
    slim_loss_ws_free(ws);
}

int main(void)
{
    check_model(0);
    check_model(1);
    slim_loss_config c = {.kind = SLIM_LOSS_CE, .alpha = 0.5f, .tau = 1.0f};
    check_loss("loss_ce", c);
    const char *tn[] = {"renorm", "zero", "ghost"};
    for (int tail = 0; tail < 3; tail++)
        for (int ti = 0; ti < 2; ti++) {
            char name[64];
            c.kind = SLIM_LOSS_KD; c.tail = tail; c.tau = ti ? 2.0f : 1.0f; c.alpha = 0.3f;
            snprintf(name, sizeof name, "loss_kd_%s_tau%d", tn[tail], ti + 1);
            check_loss(name, c);
            for (int pr = 0; pr < 2; pr++) {
                c.kind = SLIM_LOSS_SLIM; c.printed = pr;
                snprintf(name, sizeof name, "loss_slim_%s_%s_tau%d", pr ? "printed" : "text",
                         tn[tail], ti + 1);
                check_loss(name, c);
            }
            c.printed = 0;
        }
    c.kind = SLIM_LOSS_RSKD; c.tau = 1.0f; c.tail = 0;
    check_loss("loss_rskd", c);
    c.tau = 1.5f;
    check_loss("loss_rskd_tau", c);
    return tap_done();
}
