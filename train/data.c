/*
 * data.c — windows, epoch order and the prefetch thread (see data.h).
 */
#include "data.h"
#include "model.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct window {
    size_t seq;
    uint32_t start, ntok, npos;
} window;

struct slim_loader {
    slim_tsrc src;
    int B, T, shuffle, prefetch;
    uint8_t hash[32];
    uint64_t seed;
    window *win;
    size_t nwin;
    size_t *perm;          /* (nwin) order of the current producer epoch */
    uint64_t epoch, cursor;/* producer's cursor */
    void *rd;              /* producer's read handle */
    uint32_t *tok;         /* (max ntok) */
    slim_dist *dists;      /* (T) */
    slim_batch slot[2];
    int full[2], head, out; /* consumer reads slot head; out = slot handed out or -1 */
    int running, stop, failed;
    char errmsg[512];
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    double wait_s;
};

static uint64_t order_seed(const uint8_t hash[32], uint64_t seed, uint64_t epoch)
{
    uint64_t h = 0xcbf29ce484222325ull;  /* FNV-1a over hash || seed || epoch (LE) */
    for (int i = 0; i < 32; i++) h = (h ^ hash[i]) * 0x100000001b3ull;
    for (int i = 0; i < 8; i++) h = (h ^ (uint8_t)(seed >> 8 * i)) * 0x100000001b3ull;
    for (int i = 0; i < 8; i++) h = (h ^ (uint8_t)(epoch >> 8 * i)) * 0x100000001b3ull;
    return h;
}

static void build_perm(slim_loader *l)
{
    for (size_t i = 0; i < l->nwin; i++) l->perm[i] = i;
    if (!l->shuffle) return;
    uint64_t s = order_seed(l->hash, l->seed, l->epoch);
    for (size_t i = l->nwin; i > 1; i--) {  /* Fisher-Yates */
        size_t j = slim_rng_next(&s) % i, t = l->perm[i - 1];
        l->perm[i - 1] = l->perm[j];
        l->perm[j] = t;
    }
}

static int grow(slim_batch *b, size_t need)
{
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need) cap += cap / 2;
    uint32_t *ids = realloc(b->ids, cap * sizeof *ids);
    if (ids) b->ids = ids;
    float *pt = realloc(b->pt, cap * sizeof *pt);
    if (pt) b->pt = pt;
    if (!ids || !pt) return -1;
    b->cap = cap;
    return 0;
}

/* vals -> teacher probabilities in place; returns the tail mass */
static float to_probs(int kind, const slim_dist *d, float *p)
{
    if (kind == SLIM_KIND_SAMPLED) {
        for (uint32_t j = 0; j < d->k; j++) p[j] = d->n_samples ? d->vals[j] / d->n_samples : 0;
        return 0.0f;
    }
    double lse = d->lse, sum = 0;
    int known = !isnan(d->lse);
    if (!known) {  /* no normaliser stored: the distribution over K alone */
        double mx = -INFINITY, s = 0;
        for (uint32_t j = 0; j < d->k; j++) mx = fmax(mx, d->vals[j]);
        for (uint32_t j = 0; j < d->k; j++) s += exp(d->vals[j] - mx);
        lse = mx + log(s);
    }
    for (uint32_t j = 0; j < d->k; j++) { p[j] = (float)exp(d->vals[j] - lse); sum += p[j]; }
    double tail = known ? 1.0 - sum : 0.0;
    return (float)(tail < 0 ? 0 : tail > 1 ? 1 : tail);
}

static int fill_row(slim_loader *l, slim_batch *b, int row, const window *w, size_t *used)
{
    int T = l->T, rc;
    uint32_t n;
    if ((rc = l->src.tokens(l->rd, w->seq, l->tok, w->ntok, &n)) || n != w->ntok) return rc ? rc : SLIM_ECORRUPT;
    uint32_t len = w->ntok - 1 - w->start;
    if (len > (uint32_t)T) len = T;
    uint32_t nd = w->npos > w->start ? w->npos - w->start : 0;
    if (nd > len) nd = len;
    int32_t *tk = b->tokens + (size_t)row * T;
    slim_target *tg = b->tg + (size_t)row * T;
    for (int t = 0; t < T; t++) {
        tk[t] = t < (int)len ? (int32_t)l->tok[w->start + t] : 0;
        tg[t].y = t < (int)len ? (int32_t)l->tok[w->start + t + 1] : -1;
        tg[t].k = 0; tg[t].off = 0; tg[t].tail = 0;
    }
    b->trained += len;
    if (!nd) return 0;
    for (;;) {
        size_t need = 0;
        rc = l->src.dists(l->rd, w->seq, w->start, nd, l->dists, b->ids + *used, b->pt + *used,
                          b->cap - *used, &need);
        if (rc != SLIM_ERANGE) break;
        if (grow(b, *used + need)) return SLIM_ENOMEM;
    }
    if (rc) return rc;
    for (uint32_t t = 0; t < nd; t++) {
        slim_dist *d = &l->dists[t];
        tg[t].k = d->k;
        tg[t].off = (uint32_t)(d->ids - b->ids);
        tg[t].tail = to_probs(l->src.kind, d, b->pt + tg[t].off);
        for (uint32_t j = 0; j < d->k; j++)
            if (d->ids[j] >= l->src.vocab) return SLIM_ECORRUPT;
        *used += d->k;
    }
    return 0;
}

/* Produce the next micro-batch at the producer's cursor. */
static int fill_batch(slim_loader *l, slim_batch *b, int *end)
{
    size_t used = 0;
    b->trained = 0;
    *end = 0;
    for (int row = 0; row < l->B; row++) {
        if (l->cursor >= l->nwin) {
            if (!l->shuffle) {  /* one pass: pad the rest */
                *end = 1;
                for (int t = 0; t < l->T; t++) {
                    b->tokens[(size_t)row * l->T + t] = 0;
                    b->tg[(size_t)row * l->T + t] = (slim_target){-1, 0, 0, 0};
                }
                continue;
            }
            l->epoch++;
            l->cursor = 0;
            build_perm(l);
        }
        const window *w = &l->win[l->perm[l->cursor++]];
        int rc = fill_row(l, b, row, w, &used);
        if (rc) {
            snprintf(l->errmsg, sizeof l->errmsg, "reading sequence %zu: %s", w->seq,
                     l->src.errmsg ? l->src.errmsg(l->src.ctx, l->rd) : slim_strerror(rc));
            return rc;
        }
    }
    if (!l->shuffle && l->cursor >= l->nwin) *end = 1;
    b->epoch = l->epoch;
    b->cursor = l->cursor;
    return 0;
}

static void *producer(void *arg)
{
    slim_loader *l = arg;
    int rc = l->src.begin(l->src.ctx, &l->rd), slot = l->head, end;
    pthread_mutex_lock(&l->mu);
    if (rc) {
        snprintf(l->errmsg, sizeof l->errmsg, "cannot read the data: %s", slim_strerror(rc));
        l->failed = 1;
    }
    while (!l->stop && !l->failed) {
        while (l->full[slot] && !l->stop) pthread_cond_wait(&l->cv, &l->mu);
        if (l->stop) break;
        pthread_mutex_unlock(&l->mu);
        rc = fill_batch(l, &l->slot[slot], &end);
        pthread_mutex_lock(&l->mu);
        if (rc) l->failed = 1;
        else l->full[slot] = 1;
        slot ^= 1;
        pthread_cond_broadcast(&l->cv);
    }
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    if (l->rd) l->src.end(l->rd);
    l->rd = NULL;
    return NULL;
}

static void stop_thread(slim_loader *l)
{
    if (!l->running) return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->th, NULL);
    l->running = 0;
}

int slim_loader_seek(slim_loader *l, uint64_t epoch, uint64_t cursor)
{
    stop_thread(l);
    l->epoch = epoch;
    l->cursor = cursor;
    build_perm(l);
    l->full[0] = l->full[1] = 0;
    l->head = 0;
    l->out = -1;
    l->stop = l->failed = 0;
    if (!l->prefetch) return 0;
    if (pthread_create(&l->th, NULL, producer, l)) return -1;
    l->running = 1;
    return 0;
}

const slim_batch *slim_loader_next(slim_loader *l, int *end, char *err, size_t cap)
{
    int e = 0;
    if (end) *end = 0;
    if (!l->prefetch) {
        if (!l->rd && l->src.begin(l->src.ctx, &l->rd)) {
            snprintf(err, cap, "cannot read the data");
            return NULL;
        }
        if (fill_batch(l, &l->slot[0], &e)) { snprintf(err, cap, "%s", l->errmsg); return NULL; }
        if (end) *end = e;
        return &l->slot[0];
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_mutex_lock(&l->mu);
    if (l->out >= 0) {  /* release the batch handed out last time */
        l->full[l->out] = 0;
        l->out = -1;
        pthread_cond_broadcast(&l->cv);
    }
    while (!l->full[l->head] && !l->failed) pthread_cond_wait(&l->cv, &l->mu);
    const slim_batch *b = NULL;
    if (l->full[l->head]) {
        b = &l->slot[l->head];
        l->out = l->head;
        l->head ^= 1;
    } else {
        snprintf(err, cap, "%s", l->errmsg);
    }
    pthread_mutex_unlock(&l->mu);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    l->wait_s += (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
    return b;
}

double slim_loader_wait_seconds(const slim_loader *l) { return l->wait_s; }
size_t slim_loader_windows(const slim_loader *l) { return l->nwin; }

/* Scan the sequences: windows, and the refusals that must come before work. */
static int scan(slim_loader *l, uint32_t *maxtok, char *err, size_t cap)
{
    void *rd = NULL;
    int rc = l->src.begin(l->src.ctx, &rd);
    if (rc) { snprintf(err, cap, "cannot read the data: %s", slim_strerror(rc)); return -1; }
    size_t nw = 0, capw = l->src.n + 16;
    l->win = malloc(capw * sizeof *l->win);
    for (size_t i = 0; i < l->src.n && l->win; i++) {
        uint32_t nt, np;
        if ((rc = l->src.info(rd, i, &nt, &np))) {
            snprintf(err, cap, "sequence %zu: %s", i,
                     l->src.errmsg ? l->src.errmsg(l->src.ctx, rd) : slim_strerror(rc));
            break;
        }
        if (nt < 2) {
            snprintf(err, cap, "sequence %zu has %u token%s; training needs at least 2", i, nt,
                     nt == 1 ? "" : "s");
            rc = -1;
            break;
        }
        *maxtok = nt > *maxtok ? nt : *maxtok;
        for (uint32_t s = 0; s + 1 < nt; s += l->T) {
            if (nw == capw) {
                window *nwp = realloc(l->win, (capw *= 2) * sizeof *nwp);
                if (!nwp) { rc = -1; break; }
                l->win = nwp;
            }
            l->win[nw++] = (window){i, s, nt, np};
        }
    }
    l->src.end(rd);
    l->nwin = nw;
    if (!l->win) { snprintf(err, cap, "out of memory"); return -1; }
    if (!rc && !nw) { snprintf(err, cap, "no sequences to train on"); rc = -1; }
    return rc ? -1 : 0;
}

int slim_loader_new(slim_loader **out, const slim_tsrc *src, int B, int T,
                    const uint8_t hash[32], uint64_t seed, int shuffle, int prefetch,
                    char *err, size_t cap)
{
    *out = NULL;
    slim_loader *l = calloc(1, sizeof *l);
    if (!l) return -1;
    l->src = *src;
    l->B = B; l->T = T; l->seed = seed; l->shuffle = shuffle; l->prefetch = prefetch;
    memcpy(l->hash, hash, 32);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    l->out = -1;
    uint32_t maxtok = 0;
    if (scan(l, &maxtok, err, cap)) { slim_loader_free(l); return -1; }
    l->perm = malloc(l->nwin * sizeof *l->perm);
    l->tok = malloc((size_t)maxtok * sizeof *l->tok);
    l->dists = calloc(T, sizeof *l->dists);
    int bad = !l->perm || !l->tok || !l->dists;
    for (int s = 0; s < 2 && !bad; s++) {
        l->slot[s].tokens = malloc((size_t)B * T * sizeof(int32_t));
        l->slot[s].tg = malloc((size_t)B * T * sizeof(slim_target));
        bad = !l->slot[s].tokens || !l->slot[s].tg || grow(&l->slot[s], 4096);
    }
    if (bad) { snprintf(err, cap, "out of memory"); slim_loader_free(l); return -1; }
    *out = l;
    return 0;
}

void slim_loader_free(slim_loader *l)
{
    if (!l) return;
    stop_thread(l);
    if (l->rd) l->src.end(l->rd);
    for (int s = 0; s < 2; s++) {
        free(l->slot[s].tokens); free(l->slot[s].tg); free(l->slot[s].ids); free(l->slot[s].pt);
    }
    free(l->win); free(l->perm); free(l->tok); free(l->dists);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l);
}
