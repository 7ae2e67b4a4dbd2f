/*
 * trainer.c — the training loop (AdamW, warmup + cosine, clipping,
 * accumulation, checkpoints) and evaluation.
 */
#include "trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

typedef struct run_state {
    const slim_train_config *c;
    slim_model *m;
    slim_ckpt_state st;
    char *text;
    const char *out;
    const slim_train_hooks *h;
} run_state;

static int save(run_state *r, char *err, size_t cap)
{
    uint8_t sha[32];
    char hex[65];
    if (slim_ckpt_write(r->out, &r->m->cfg, r->m->params, r->m->adam_m, r->m->adam_v, &r->st,
                        r->text, sha, err, cap))
        return -1;
    slim_hex(sha, 32, hex);
    size_t bytes = SLIM_CKPT_HEADER + 3 * r->m->n_params * sizeof(float) + strlen(r->text);
    if (r->h && r->h->checkpoint) r->h->checkpoint(r->h->ctx, r->out, r->st.step, hex, bytes);
    return 0;
}

/* Sums over the steps since the last log line. */
typedef struct acc {
    slim_loss_stats s;
    double gnorm;
    int steps;
    int64_t tokens;
    double t0;
} acc;

static void add_stats(slim_loss_stats *a, const slim_loss_stats *b)
{
    a->loss += b->loss; a->ce += b->ce; a->kd += b->kd; a->w += b->w; a->w2 += b->w2;
    a->n += b->n; a->n_kd += b->n_kd; a->n_w += b->n_w; a->n_w0 += b->n_w0;
}

static void report(run_state *r, acc *a, slim_loader *ld, float lr, int64_t step0)
{
    const slim_train_config *c = r->c;
    double t = now_s(), dt = t - a->t0;
    slim_metrics mt = {
        .step = (int64_t)r->st.step, .tokens = (int64_t)r->st.tokens,
        .loss = a->s.n ? a->s.loss / a->s.n : NAN, .ce = a->s.n ? a->s.ce / a->s.n : NAN,
        .kd = a->s.n_kd ? a->s.kd / a->s.n_kd : NAN, .w_mean = NAN, .w_std = NAN, .w_zero = NAN,
        .lr = lr, .grad_norm = a->gnorm / (a->steps ? a->steps : 1),
        .tokens_per_s = dt > 0 ? a->tokens / dt : 0, .data_wait_s = slim_loader_wait_seconds(ld),
    };
    if (a->s.n_w) {
        double mu = a->s.w / a->s.n_w, var = a->s.w2 / a->s.n_w - mu * mu;
        mt.w_mean = mu;
        mt.w_std = sqrt(var > 0 ? var : 0);
        mt.w_zero = (double)a->s.n_w0 / (double)a->s.n_w;
    }
    double per_step = a->steps ? dt / a->steps : 0;
    mt.eta_s = per_step * (double)(c->steps - (int64_t)r->st.step);
    (void)step0;
    if (r->h && r->h->metrics) r->h->metrics(r->h->ctx, &mt);
    memset(a, 0, sizeof *a);
    a->t0 = t;
}

static int one_step(run_state *r, slim_loader *ld, slim_loss_ws *ws, acc *a, char *err, size_t cap)
{
    const slim_train_config *c = r->c;
    slim_model *m = r->m;
    int BT = m->B * m->T;
    slim_model_zero_grad(m);
    for (int k = 0; k < c->accum; k++) {
        const slim_batch *b = slim_loader_next(ld, NULL, err, cap);
        if (!b) return -1;
        slim_model_forward(m, b->tokens);
        slim_loss_stats s;
        slim_loss_batch(&c->loss, m->a.logits, BT, m->cfg.vocab, b->tg, b->ids, b->pt,
                        1.0f / c->accum, ws, &s);
        slim_model_backward(m, b->tokens);
        add_stats(&a->s, &s);
        a->tokens += s.n;
        r->st.tokens += s.n;
        r->st.epoch = b->epoch;
        r->st.cursor = b->cursor;
    }
    double gn = slim_model_grad_norm(m);
    if (!isfinite(gn)) {
        snprintf(err, cap, "step %llu: gradient is not finite (lr too high?)",
                 (unsigned long long)r->st.step + 1);
        return -1;
    }
    float gscale = c->clip > 0 && gn > c->clip ? (float)(c->clip / gn) : 1.0f;
    r->st.step++;
    slim_adamw o = {slim_train_lr(c, (int64_t)r->st.step), c->beta1, c->beta2, c->eps, c->wd};
    slim_model_adamw(m, &o, (int64_t)r->st.step, gscale);
    a->gnorm += gn;
    a->steps++;
    return 0;
}

int slim_train_run(const slim_train_config *c, const slim_tsrc *src, const uint8_t hash[32],
                   const slim_ckpt *resume, const char *out, const slim_train_hooks *h,
                   char *err, size_t cap)
{
    run_state r = {.c = c, .out = out, .h = h};
    slim_loader *ld = NULL;
    slim_loss_ws *ws = NULL;
    int rc = -1;
    r.text = slim_train_config_text(c);
    if (slim_model_new(&r.m, &c->model, c->batch, c->model.ctx) ||
        slim_loss_ws_new(&ws, c->model.vocab, c->batch * c->model.ctx) || !r.text) {
        snprintf(err, cap, "out of memory for the model");
        goto done;
    }
    slim_sha256(r.text, strlen(r.text), r.st.config_hash);
    memcpy(r.st.snapshot_hash, hash, 32);
    r.st.seed = c->seed;
    r.st.total_steps = (uint64_t)c->steps;
    if (resume) {
        memcpy(r.m->params, resume->params, r.m->n_params * sizeof(float));
        if (resume->adam_m) {
            memcpy(r.m->adam_m, resume->adam_m, r.m->n_params * sizeof(float));
            memcpy(r.m->adam_v, resume->adam_v, r.m->n_params * sizeof(float));
        }
        r.st.step = resume->st.step;
        r.st.epoch = resume->st.epoch;
        r.st.cursor = resume->st.cursor;
        r.st.tokens = resume->st.tokens;
    } else {
        slim_model_init(r.m, c->seed);
    }
    if (slim_loader_new(&ld, src, c->batch, c->model.ctx, hash, c->seed, 1, 1, err, cap)) goto done;
    if (slim_loader_seek(ld, r.st.epoch, r.st.cursor)) {
        snprintf(err, cap, "cannot start the prefetch thread");
        goto done;
    }
    acc a = {.t0 = now_s()};
    int64_t done_here = 0, step0 = (int64_t)r.st.step;
    while ((int64_t)r.st.step < c->steps) {
        if (one_step(&r, ld, ws, &a, err, cap)) goto done;
        done_here++;
        float lr = slim_train_lr(c, (int64_t)r.st.step);
        int last = (int64_t)r.st.step == c->steps;
        int stop = (c->stop_after && done_here >= c->stop_after) || (h && h->interrupt && *h->interrupt);
        if ((c->log_every && r.st.step % c->log_every == 0) || last || stop)
            report(&r, &a, ld, lr, step0);
        if (c->eval_every && r.st.step % c->eval_every == 0 && h && h->evaluate)
            h->evaluate(h->ctx, &r.m->cfg, r.m->params, r.st.step);
        if (last || stop || (c->ckpt_every && r.st.step % c->ckpt_every == 0))
            if (save(&r, err, cap)) goto done;
        if (stop && !last) { rc = 1; goto done; }
    }
    if (resume && (int64_t)resume->st.step >= c->steps && save(&r, err, cap)) goto done;
    rc = 0;
done:
    slim_loader_free(ld);
    slim_loss_ws_free(ws);
    slim_model_free(r.m);
    free(r.text);
    return rc;
}

/* ------------------------------------------------------------------ eval */

#define ECE_BINS 15

/* Per row: ce, kl, agree, conf, correct, flags (1 trained, 2 has dist) */
static void eval_row(const float *z, int V, const slim_target *t, const uint32_t *ids,
                     const float *pt, double *o)
{
    memset(o, 0, 6 * sizeof(double));
    if (t->y < 0) return;
    float mx = -INFINITY;
    int am = 0;
    for (int i = 0; i < V; i++) if (z[i] > mx) { mx = z[i]; am = i; }
    double s = 0;
    for (int i = 0; i < V; i++) s += exp((double)z[i] - mx);
    double lse = mx + log(s);
    o[0] = lse - z[t->y];
    o[3] = exp(mx - lse);
    o[4] = am == t->y;
    o[5] = 1;
    if (!t->k) return;
    /* KL(p^_T || p^_S) with both renormalised over the stored entries K */
    double st = 0, ss = 0, kl = 0, best = -1;
    uint32_t top = ids[0];
    for (uint32_t j = 0; j < t->k; j++) {
        st += pt[j];
        ss += exp(z[ids[j]] - lse);
        if (pt[j] > best) { best = pt[j]; top = ids[j]; }
    }
    for (uint32_t j = 0; j < t->k; j++) {
        if (pt[j] <= 0) continue;
        double ph = pt[j] / st, qs = exp(z[ids[j]] - lse) / ss;
        kl += ph * log(ph / qs);
    }
    o[1] = kl;
    o[2] = (uint32_t)am == top;
    o[5] = 3;
}

int slim_train_eval(const slim_model_config *mc, const float *params, const slim_tsrc *src,
                    int batch, slim_eval_result *r, char *err, size_t cap)
{
    slim_model *m = NULL;
    slim_loader *ld = NULL;
    double *rows = NULL;
    uint8_t zero[32] = {0};
    int rc = -1, T = mc->ctx, V = mc->vocab;
    memset(r, 0, sizeof *r);
    if (slim_model_new(&m, mc, batch, T) || !(rows = malloc((size_t)batch * T * 6 * sizeof *rows))) {
        snprintf(err, cap, "out of memory for the model");
        goto done;
    }
    memcpy(m->params, params, m->n_params * sizeof(float));
    if (slim_loader_new(&ld, src, batch, T, zero, 0, 0, 0, err, cap)) goto done;
    slim_loader_seek(ld, 0, 0);
    double ce = 0, kl = 0, agree = 0, bc[ECE_BINS] = {0}, bacc[ECE_BINS] = {0}, bn[ECE_BINS] = {0};
    int end = 0;
    while (!end) {
        const slim_batch *b = slim_loader_next(ld, &end, err, cap);
        if (!b) goto done;
        slim_model_forward(m, b->tokens);
#pragma omp parallel for schedule(static)
        for (int i = 0; i < batch * T; i++)
            eval_row(m->a.logits + (size_t)i * V, V, &b->tg[i], b->ids + b->tg[i].off,
                     b->pt + b->tg[i].off, rows + (size_t)i * 6);
        for (int i = 0; i < batch * T; i++) {
            const double *o = rows + (size_t)i * 6;
            if (!((int)o[5] & 1)) continue;
            r->positions++;
            ce += o[0];
            int bin = (int)(o[3] * ECE_BINS);
            bin = bin >= ECE_BINS ? ECE_BINS - 1 : bin;
            bc[bin] += o[3]; bacc[bin] += o[4]; bn[bin]++;
            if ((int)o[5] & 2) { r->with_dist++; kl += o[1]; agree += o[2]; }
        }
    }
    if (!r->positions) { snprintf(err, cap, "nothing to evaluate"); goto done; }
    r->ce = ce / r->positions;
    r->perplexity = exp(r->ce);
    r->kl = r->with_dist ? kl / r->with_dist : NAN;
    r->top1_agree = r->with_dist ? agree / r->with_dist : NAN;
    for (int i = 0; i < ECE_BINS; i++)
        if (bn[i]) r->ece += bn[i] / r->positions * fabs(bacc[i] / bn[i] - bc[i] / bn[i]);
    rc = 0;
done:
    slim_loader_free(ld);
    slim_model_free(m);
    free(rows);
    return rc;
}
