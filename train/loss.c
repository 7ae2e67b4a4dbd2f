/*
 * loss.c — CE, sparse KD (three tail modes), SLIM and RS-KD over student
 * logits; gradients w.r.t. the logits written in place.  Definitions in
 * loss.h and docs/TRAIN.md.
 */
#include "loss.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

struct slim_loss_ws {
    int V, nrows, nthreads;
    uint8_t *mask;     /* (nthreads, V) membership of K, all zero between rows */
    float *kbuf;       /* (nthreads, 2V) stored entries' logits and targets */
    double *rows;      /* (nrows, 5) loss, ce, kd, w, flags per row */
};

int slim_loss_ws_new(slim_loss_ws **out, int V, int nrows)
{
    *out = NULL;
    slim_loss_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return -1;
    ws->V = V;
    ws->nrows = nrows;
    ws->nthreads = omp_get_max_threads();
    ws->mask = calloc((size_t)ws->nthreads * V, 1);
    ws->kbuf = calloc((size_t)ws->nthreads * 2 * V, sizeof(float));
    ws->rows = calloc((size_t)nrows * 5, sizeof(double));
    if (!ws->mask || !ws->kbuf || !ws->rows) {
        slim_loss_ws_free(ws);
        return -1;
    }
    *out = ws;
    return 0;
}

void slim_loss_ws_free(slim_loss_ws *ws)
{
    if (!ws) return;
    free(ws->mask);
    free(ws->kbuf);
    free(ws->rows);
    free(ws);
}

static const char *const kind_names[] = {"ce", "kd", "slim", "rskd"};
static const char *const tail_names[] = {"renorm", "zero", "ghost"};

int slim_loss_kind_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, kind_names[i])) return i;
    return -1;
}

int slim_loss_tail_parse(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, tail_names[i])) return i;
    return -1;
}

const char *slim_loss_kind_name(int k) { return k >= 0 && k < 4 ? kind_names[k] : "?"; }
const char *slim_loss_tail_name(int t) { return t >= 0 && t < 3 ? tail_names[t] : "?"; }

/* Teacher side of KD_K into q[0..k) and *tq (the tail bucket, ghost only). */
static void teacher_targets(const slim_loss_config *c, const slim_target *t, const float *pt,
                            float *q, double *tq)
{
    uint32_t k = t->k;
    double tail = c->kind == SLIM_LOSS_RSKD ? 0.0 : t->tail, sum = 0;
    if (c->tau != 1.0f) {
        double inv = 1.0 / c->tau, z = 0;
        for (uint32_t j = 0; j < k; j++) { q[j] = (float)pow(pt[j], inv); z += q[j]; }
        tail = tail > 0 ? pow(tail, inv) : 0;
        z += tail;
        for (uint32_t j = 0; j < k; j++) q[j] = (float)(q[j] / z);
        tail /= z;
    } else {
        for (uint32_t j = 0; j < k; j++) q[j] = pt[j];
    }
    if (c->tail == SLIM_TAIL_RENORM && c->kind != SLIM_LOSS_RSKD) {
        for (uint32_t j = 0; j < k; j++) sum += q[j];
        if (sum > 0)
            for (uint32_t j = 0; j < k; j++) q[j] = (float)(q[j] / sum);
    }
    *tq = (c->tail == SLIM_TAIL_GHOST && c->kind != SLIM_LOSS_RSKD) ? tail : 0.0;
}

/* The SLIM weight (a constant: no gradient flows through it). */
static double slim_weight(const slim_loss_config *c, double pty, double psy)
{
    if (!c->printed) return pty > 0 ? 1.0 - exp(-pty / psy) : 0.0;
    return pty > 0 ? 1.0 - exp(-psy / pty) : 1.0;
}

/* One row: z (V) logits -> gradient * gs.  row[5] = loss, ce, kd, w, flags
 * (bit 0 trained, bit 1 has KD, bit 2 has w). */
static void loss_row(const slim_loss_config *c, float *z, int V, const slim_target *t,
                     const uint32_t *ids, const float *pt, float gs, uint8_t *mask, float *kb,
                     double *row)
{
    memset(row, 0, 5 * sizeof(double));
    if (t->y < 0) { memset(z, 0, (size_t)V * sizeof(float)); return; }
    int y = t->y;
    uint32_t k = t->k;
    float mx = -INFINITY;
    for (int i = 0; i < V; i++) mx = z[i] > mx ? z[i] : mx;
    double s1 = 0;
    for (int i = 0; i < V; i++) s1 += expf(z[i] - mx);
    double lse1 = mx + log(s1), ce = lse1 - z[y];
    int use_kd = c->kind != SLIM_LOSS_CE && k > 0;
    double a_ce = 1, a_kd = 0, w = 0, kd = 0, m = 0, gc = 0, sK = 0;
    float tau = c->tau;
    double lseT = lse1;
    float *zk = kb, *q = kb + V;
    row[4] = 1;
    if (use_kd) {
        if (c->kind == SLIM_LOSS_SLIM) {
            double pty = 0;
            for (uint32_t j = 0; j < k; j++)
                if ((int)ids[j] == y) pty = pt[j];
            w = slim_weight(c, pty, exp(-ce));
            a_kd = w;
            row[3] = w;
            row[4] += 4;
        } else {
            a_ce = 1.0 - c->alpha;
            a_kd = c->alpha;
        }
        if (tau != 1.0f) {
            double sT = 0;
            for (int i = 0; i < V; i++) sT += expf(z[i] / tau - mx / tau);
            lseT = mx / tau + log(sT);
        }
        double tq;
        teacher_targets(c, t, pt, q, &tq);
        for (uint32_t j = 0; j < k; j++) {
            zk[j] = z[ids[j]];
            kd -= q[j] * (zk[j] / tau - lseT);
            m += q[j];
        }
        if (tq > 0) {
            /* 1 - sum_K p_S summed over the complement: exact even when K
             * holds nearly all the mass */
            double ns = 0;
            for (uint32_t j = 0; j < k; j++) mask[ids[j]] = 1;
            for (int i = 0; i < V; i++)
                if (!mask[i]) ns += expf(z[i] / tau - (float)lseT);
            for (uint32_t j = 0; j < k; j++) mask[ids[j]] = 0;
            if (ns < 1e-30) ns = 1e-30;
            kd -= tq * log(ns);
            gc = tq / ns;
            sK = 1.0 - ns;
        }
        row[4] += 2;
    }
    double loss = a_ce * ce + a_kd * tau * tau * kd;
    row[0] = loss; row[1] = ce; row[2] = use_kd ? tau * tau * kd : 0;
    /* gradient: a_ce (p - e_y) + a_kd tau (m pT - q + gc (pT[K] - sK pT)) */
    float fl1 = (float)lse1, flT = (float)lseT;
    float cK = (float)(a_kd * tau * (m - gc * sK));
    float ce_c = (float)a_ce, kd_c = (float)(a_kd * tau);
    if (!use_kd || tau == 1.0f) {  /* one softmax serves both terms */
        float cc = (ce_c + (use_kd ? cK : 0.0f)) * gs;
        for (int i = 0; i < V; i++) z[i] = cc * expf(z[i] - fl1);
    } else {
        for (int i = 0; i < V; i++)
            z[i] = gs * (ce_c * expf(z[i] - fl1) + cK * expf(z[i] / tau - flT));
    }
    if (use_kd)
        for (uint32_t j = 0; j < k; j++) {
            float pT = expf(zk[j] / tau - flT);
            z[ids[j]] += gs * kd_c * (float)(-q[j] + gc * pT);
        }
    z[y] -= gs * ce_c;
}

void slim_loss_batch(const slim_loss_config *c, float *logits, int N, int V,
                     const slim_target *tg, const uint32_t *ids, const float *pt,
                     float scale, slim_loss_ws *ws, slim_loss_stats *st)
{
    int64_t n = 0;
    for (int r = 0; r < N; r++) n += tg[r].y >= 0;
    float gs = n ? scale / (float)n : 0.0f;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; r++) {
        int th = omp_get_thread_num();
        loss_row(c, logits + (size_t)r * V, V, &tg[r], ids + tg[r].off, pt + tg[r].off, gs,
                 ws->mask + (size_t)th * V, ws->kbuf + (size_t)th * 2 * V, ws->rows + (size_t)r * 5);
    }
    memset(st, 0, sizeof *st);
    for (int r = 0; r < N; r++) {
        const double *row = ws->rows + (size_t)r * 5;
        int fl = (int)row[4];
        if (!(fl & 1)) continue;
        st->n++;
        st->loss += row[0];
        st->ce += row[1];
        if (fl & 2) { st->n_kd++; st->kd += row[2]; }
        if (fl & 4) { st->n_w++; st->n_w0 += row[3] == 0; st->w += row[3]; st->w2 += row[3] * row[3]; }
    }
}
