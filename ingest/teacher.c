/*
 * teacher.c — the built-in teacher (docs/TEACHER.md).  A slim-train
 * checkpoint is mapped read-only and run one token at a time with a KV cache
 * (slim_infer, one per thread, batched).  Inputs are turned into jobs first
 * (text windows to score, or prompts to continue) so that every check
 * happens before the store is touched.  Then, batch after batch: the
 * sequences of the batch are computed on every core (groups of up to 64
 * sequences in lockstep by one thread, each thread its own batched cache,
 * workspace and row buffers), then one writer thread
 * writes them in job order — ingest-time dedup by exact tokens, prefix
 * sharing — and commits while the next batch is computed.  A sequence
 * depends only on the model, its input and (generation) its own generator
 * seeded from (seed, j): never on which thread ran it.
 */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "teacher.h"
#include "toklist.h"
#include "vocab.h"
#include "../train/ckpt.h"
#include "../train/tokenizer.h"

/* Memory for the sparse entries of one batch of computed sequences. */
#define BATCH_BYTES (48u << 20)

typedef struct tthread {
    slim_infer *inf;
    slim_sparse_ws *ws;
    float *row;                 /* (V) logits / capture temperature */
    double *w;                  /* (V) sampling weights */
    uint32_t *order;            /* (V) ids by weight, for top-p */
} tthread;

/* One computed sequence, waiting for the writer. */
typedef struct tslot {
    uint32_t *tokens;           /* (ctx) */
    slim_dist *dists;           /* (ctx) */
    uint32_t *ids;              /* (ctx, capk) entry pool */
    float *vals;                /* (ctx, capk) */
    uint32_t T;
    int rc;
    char msg[160];
} tslot;

typedef struct tctx {
    slim_store *st;
    const slim_ingest_opts *io;
    const slim_teacher_opts *to;
    slim_ingest_stats *stats;
    char *err; size_t cap;
    slim_ckpt *ck;
    slim_tok *tok;
    char tokhash[65];
    const char *model_hash;
    uint32_t V, ctx, capk;
    int64_t bos, eot;           /* token ids or -1 */
    slim_sparsifier sp;
    char spec[64];
    slim_precision prec;
    int kind;
    double tau, stau, top_p;
    const char *name;           /* teacher name */
    const char *input;          /* text or prompts file, or NULL */
    char input_hash[64];
    slim_toklist lists;         /* windows to score, or prompts */
    int64_t njobs;
    tthread *th; int nth;
    int group;                  /* sequences computed together (group_size) */
    tslot *slots; size_t nslots;
    uint32_t *slot_tok; slim_dist *slot_dist; uint32_t *slot_ids; float *slot_vals;
    slim_writer *w;
    int64_t ds, run;
    double t0, tlast;
} tctx;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

uint64_t slim_teacher_seq_seed(uint64_t seed, uint64_t j)
{
    /* two splitmix64 rounds: nearby (seed, j) pairs give unrelated streams */
    uint64_t s = seed ^ 0x9e3779b97f4a7c15ull;
    uint64_t a = slim_rng_next(&s);
    s = a ^ (j * 0xbf58476d1ce4e5b9ull + 0x94d049bb133111ebull);
    return slim_rng_next(&s);
}

static double uniform(uint64_t *rng)
{
    return (double)(slim_rng_next(rng) >> 11) * (1.0 / 9007199254740992.0);
}

/* ------------------------------------------------------------- inputs */


static int is_blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') return 0;
    return 1;
}

size_t slim_teacher_split_docs(const char *text, size_t len,
                               void (*fn)(void *ctx, size_t off, size_t n), void *ctx)
{
    size_t ndocs = 0, i = 0, start = 0, end = 0;
    int in_doc = 0;
    while (i < len) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - text) : len;  /* line is text[i..e) */
        if (is_blank(text + i, e - i)) {
            if (in_doc) { fn(ctx, start, end - start); ndocs++; in_doc = 0; }
        } else {
            if (!in_doc) { start = i; in_doc = 1; }
            end = e;
        }
        i = e + 1;
    }
    if (in_doc) { fn(ctx, start, end - start); ndocs++; }
    return ndocs;
}




static int load_text(tctx *c)
{
    char *text;
    size_t n;
    int rc = slim_read_whole(c->input, &text, &n, c->err, c->cap);
    if (rc) return rc;
    rc = slim_toklist_add_text(&c->lists, c->tok, c->bos, c->ctx, c->input, text, n,
                               c->err, c->cap);
    free(text);
    if (!rc && !c->lists.n) {
        snprintf(c->err, c->cap, "'%s': no text to score", c->input);
        rc = SLIM_EINVAL;
    }
    c->njobs = (int64_t)c->lists.n;
    return rc;
}

/* Prompts: the non-blank lines of the file, cycled; none = bos alone. */
static int load_prompts(tctx *c)
{
    if (!c->input) {
        if (c->bos < 0) {
            snprintf(c->err, c->cap, "the tokenizer has no <|endoftext|> token to start from: "
                     "give prompts");
            return SLIM_EINVAL;
        }
        if (!slim_toklist_add(&c->lists, c->bos, NULL, 0)) return 0;
        snprintf(c->err, c->cap, "out of memory");
        return SLIM_ENOMEM;
    }
    char *text;
    size_t n, lineno = 0;
    int rc = slim_read_whole(c->input, &text, &n, c->err, c->cap);
    uint32_t *ids = rc ? NULL : malloc((n ? n : 1) * sizeof *ids);
    if (!rc && !ids) { snprintf(c->err, c->cap, "out of memory"); rc = SLIM_ENOMEM; }
    for (size_t i = 0; !rc && i < n;) {
        const char *nl = memchr(text + i, '\n', n - i);
        size_t e = nl ? (size_t)(nl - text) : n, m, l = e - i;
        lineno++;
        if (l && text[i + l - 1] == '\r') l--;
        if (!is_blank(text + i, l)) {
            if ((rc = slim_tok_encode(c->tok, text + i, l, ids, n, &m)))
                snprintf(c->err, c->cap, "'%s': line %zu: cannot tokenise the prompt", c->input, lineno);
            else if (m + (c->bos >= 0) >= c->ctx) {
                snprintf(c->err, c->cap, "'%s': line %zu: prompt of %zu tokens leaves no room in "
                         "the model's context of %u", c->input, lineno, m + (c->bos >= 0), c->ctx);
                rc = SLIM_EINVAL;
            } else if ((rc = slim_toklist_add(&c->lists, c->bos, ids, m)))
                snprintf(c->err, c->cap, "out of memory");
        }
        i = e + 1;
    }
    free(ids);
    free(text);
    if (!rc && !c->lists.n) {
        snprintf(c->err, c->cap, "'%s': no prompts (every line is blank)", c->input);
        rc = SLIM_EINVAL;
    }
    return rc;
}

/* A slim tokenizer file, or anything else as a Hugging Face tokenizer.json. */
static int load_tokenizer(tctx *c, const char *path)
{
    int rc = slim_tok_open_encoder(path, &c->tok, c->err, c->cap);
    if (rc) return rc;
    if (slim_tok_size(c->tok) > c->V) {
        snprintf(c->err, c->cap, "'%s': tokenizer has %u tokens but the model's vocabulary is %u",
                 path, slim_tok_size(c->tok), c->V);
        return SLIM_EMISMATCH;
    }
    slim_tok_hash(c->tok, c->tokhash);
    uint32_t id;
    c->eot = slim_tok_find(c->tok, "<|endoftext|>", 13, &id) == 0 ? (int64_t)id : -1;
    c->bos = c->to->no_bos ? -1 : c->eot;
    return 0;
}

/* ------------------------------------------------------------ compute */

/* Sample from softmax(x / tau), restricted to the smallest set of most
 * probable tokens holding top_p of the mass (ties: lower id first). */
static int by_weight(const void *a, const void *b, void *arg)
{
    const double *g_w = arg;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    if (g_w[x] != g_w[y]) return g_w[x] > g_w[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

static uint32_t sample_token(const tctx *c, tthread *th, const float *x /* (V) */, uint64_t *rng)
{
    uint32_t V = c->V, n = V;
    float mx = x[0];
    for (uint32_t i = 1; i < V; i++) mx = x[i] > mx ? x[i] : mx;
    double sum = 0;
    for (uint32_t i = 0; i < V; i++) sum += th->w[i] = exp(((double)x[i] - mx) / c->stau);
    for (uint32_t i = 0; i < V; i++) th->order[i] = i;
    if (c->top_p < 1) {
        qsort_r(th->order, V, sizeof *th->order, by_weight, th->w);
        double acc = 0;
        for (n = 0; n < V && acc < c->top_p * sum;) acc += th->w[th->order[n++]];
        sum = acc;
    }
    double u = uniform(rng) * sum, acc = 0;
    for (uint32_t i = 0; i < n; i++) {
        acc += th->w[th->order[i]];
        if (u < acc) return th->order[i];
    }
    return th->order[n - 1];    /* rounding: u landed on the total */
}

/* Sequences computed in lockstep by one thread (one batched cache): jobs
 * [g*G, g*G + G) always form group g, whatever the thread count or batch,
 * so that a sequence's figures never depend on how the work was spread. */
#define GROUP_MAX 64
/* ... fewer when the group's key/value cache would pass this */
#define GROUP_CACHE_BYTES (256u << 20)
/* ... and fewer when the job has under GROUP_MAX * GROUP_SPREAD sequences */
#define GROUP_SPREAD 4

static void __attribute__((format(printf, 2, 3))) slot_fail(tslot *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s->rc = SLIM_EINVAL;
    vsnprintf(s->msg, sizeof s->msg, fmt, ap);
    va_end(ap);
}

/* Position pos of the sequence in slot s from its logits row x (V):
 * sparsify it, and (generation) sample the continuation after the last
 * token so far. */
static void take_row(const tctx *c, tthread *th, tslot *s, int64_t j, uint32_t pos,
                     const float *x, uint32_t *gen, uint64_t *rng)
{
    uint32_t maxgen = c->to->generate ? (c->to->max_tokens ? c->to->max_tokens : c->ctx) : 0;
    const float *xs = x;
    if (c->tau != 1.0) {
        for (uint32_t i = 0; i < c->V; i++) th->row[i] = (float)(x[i] / c->tau);
        xs = th->row;
    }
    slim_dist *d = &s->dists[pos];
    d->ids = s->ids + (size_t)pos * c->capk;
    d->vals = s->vals + (size_t)pos * c->capk;
    uint32_t bad;
    if (slim_sparsify_row(&c->sp, th->ws, xs, c->V, (uint64_t)j * c->ctx + pos, d, &bad)) {
        slot_fail(s, "position %u: the model's logit of token %u is not finite", pos, bad);
        return;
    }
    if (pos == s->T - 1 && *gen < maxgen && s->T < c->ctx &&
        !(*gen && (int64_t)s->tokens[s->T - 1] == c->eot)) {
        s->tokens[s->T++] = sample_token(c, th, x, rng);
        (*gen)++;
    }
}

/* Compute jobs [j0, j0+n) into slots[0, n) together: feed position pos of
 * every sequence still running through the batched cache, sparsify every
 * row, sample continuations; a sequence ends at its length (which
 * generation grows). */
static void run_group(const tctx *c, tthread *th, tslot *slots, int64_t j0, int n)
{
    int slot[GROUP_MAX], tok[GROUP_MAX];
    uint32_t gen[GROUP_MAX] = {0};
    uint64_t rng[GROUP_MAX];
    for (int i = 0; i < n; i++) {
        tslot *s = &slots[i];
        size_t li = (size_t)(j0 + i) % c->lists.n;
        s->T = c->lists.len[li];
        s->rc = 0;
        memcpy(s->tokens, c->lists.pool + c->lists.off[li], s->T * sizeof *s->tokens);
        rng[i] = slim_teacher_seq_seed(c->io->seed, (uint64_t)(j0 + i));
    }
    for (uint32_t pos = 0;; pos++) {
        int na = 0;
        for (int i = 0; i < n; i++) {
            tslot *s = &slots[i];
            if (s->rc || pos >= s->T) continue;
            if (s->tokens[pos] >= c->V) {
                slot_fail(s, "position %u: token %u is outside the model", pos, s->tokens[pos]);
                continue;
            }
            slot[na] = i;
            tok[na++] = (int)s->tokens[pos];
        }
        if (!na) break;
        const float *x = slim_infer_step_batch(th->inf, na, slot, tok, (int)pos);
        for (int r = 0; r < na; r++) {
            int i = slot[r];
            if (!x) { slot_fail(&slots[i], "position %u: token %u is outside the model", pos,
                                (uint32_t)tok[r]); continue; }
            take_row(c, th, &slots[i], j0 + i, pos, x + (size_t)r * c->V, &gen[i], &rng[i]);
        }
    }
}

/* Slot memory of one computed sequence: ctx positions of capk entries. */
static size_t slot_bytes(const tctx *c)
{
    return (size_t)c->ctx * c->capk * 8 + 1;
}

/* Sequences per group (>= 1): a function of the model, the sparsifier and
 * the number of jobs only — never of the thread count, which must not
 * change any figure —
 * small enough that the group's key/value cache stays under
 * GROUP_CACHE_BYTES and two groups' entries fit in BATCH_BYTES. */
static int group_size(const tctx *c)
{
    const slim_model_config *m = &c->ck->cfg;
    size_t kv = 2 * (size_t)m->layers * m->ctx * m->dim * sizeof(float);
    size_t g = GROUP_CACHE_BYTES / kv, gs = BATCH_BYTES / 2 / slot_bytes(c);
    if (gs < g) g = gs;
    /* a small job still makes GROUP_SPREAD groups, to keep the cores busy */
    size_t gj = ((size_t)c->njobs + GROUP_SPREAD - 1) / GROUP_SPREAD;
    if (gj < g) g = gj;
    return g < 1 ? 1 : g > GROUP_MAX ? GROUP_MAX : (int)g;
}

static int alloc_threads(tctx *c)
{
    c->th = calloc((size_t)c->nth, sizeof *c->th);
    if (!c->th) return SLIM_ENOMEM;
    for (int i = 0; i < c->nth; i++) {
        tthread *t = &c->th[i];
        if (slim_infer_new_batch(&t->inf, &c->ck->cfg, c->ck->params, c->group))
            return SLIM_ENOMEM;
        t->ws = slim_sparse_ws_new(c->V, c->capk);
        t->row = malloc(c->V * sizeof *t->row);
        t->w = malloc(c->V * sizeof *t->w);
        t->order = malloc(c->V * sizeof *t->order);
        if (!t->ws || !t->row || !t->w || !t->order) return SLIM_ENOMEM;
    }
    return 0;
}

static void free_threads(tctx *c)
{
    for (int i = 0; c->th && i < c->nth; i++) {
        slim_infer_free(c->th[i].inf);
        slim_sparse_ws_free(c->th[i].ws);
        free(c->th[i].row);
        free(c->th[i].w);
        free(c->th[i].order);
    }
    free(c->th);
}

/* Slots: two sets (one being computed while the other is written), each
 * about batch_positions positions within BATCH_BYTES, but at least one
 * group for every thread. */
static int alloc_slots(tctx *c)
{
    size_t per = slot_bytes(c);
    size_t bp = c->io->batch_positions ? c->io->batch_positions : 8192;
    size_t n = bp / c->ctx;
    if (n > BATCH_BYTES / per) n = BATCH_BYTES / per;
    /* whole groups, at least one for every thread */
    if (n < (size_t)c->nth * c->group) n = (size_t)c->nth * c->group;
    n = (n + c->group - 1) / c->group * c->group;
    c->nslots = n;
    n *= 2;
    c->slots = calloc(n, sizeof *c->slots);
    c->slot_tok = malloc(n * c->ctx * sizeof *c->slot_tok);
    c->slot_dist = malloc(n * c->ctx * sizeof *c->slot_dist);
    c->slot_ids = malloc(n * c->ctx * c->capk * sizeof *c->slot_ids);
    c->slot_vals = malloc(n * c->ctx * c->capk * sizeof *c->slot_vals);
    if (!c->slots || !c->slot_tok || !c->slot_dist || !c->slot_ids || !c->slot_vals)
        return SLIM_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        c->slots[i].tokens = c->slot_tok + i * c->ctx;
        c->slots[i].dists = c->slot_dist + i * c->ctx;
        c->slots[i].ids = c->slot_ids + i * c->ctx * c->capk;
        c->slots[i].vals = c->slot_vals + i * c->ctx * c->capk;
    }
    return 0;
}

/* Jobs [first, first+n) into slots[0, n), a group at a time on every
 * thread.  first is a multiple of the group size (batches hold whole
 * groups).  BLAS runs single-threaded inside (one group per core). */
static void compute_batch(tctx *c, tslot *slots, int64_t first, size_t n)
{
    size_t G = (size_t)c->group, ng = (n + G - 1) / G;
    int nt = (size_t)c->nth < ng ? c->nth : (int)ng;
#pragma omp parallel num_threads(nt)
    {
        omp_set_num_threads(1);
        tthread *th = &c->th[omp_get_thread_num()];
#pragma omp for schedule(dynamic, 1)
        for (size_t g = 0; g < ng; g++) {
            size_t m = n - g * G < G ? n - g * G : G;
            run_group(c, th, &slots[g * G], first + (int64_t)(g * G), (int)m);
        }
    }
}

/* ------------------------------------------------------------- writing */

static int store_fail(tctx *c, int rc, const char *what)
{
    snprintf(c->err, c->cap, "%s: %s", what, slim_errmsg(c->st));
    return rc;
}

static int import_vocab(tctx *c)
{
    int rc = slim_ingest_write_vocab(c->w, c->ds, c->tok, c->tokhash);
    return rc ? store_fail(c, rc, "cannot record the tokenizer's vocabulary") : 0;
}

/* In the transaction of the first batch: the dataset (created or checked),
 * the run, the vocabulary.  A refusal here aborts with nothing written. */
static int begin_run(tctx *c)
{
    slim_teacher t = {
        .name = c->name, .vocab_size = c->V, .tokenizer_hash = c->tokhash,
        .temperature = c->tau, .source = SLIM_SOURCE_LOGITS,
    };
    int rc = slim_write_dataset(c->w, c->io->dataset, &t, c->kind, c->spec, &c->prec, &c->ds);
    if (rc) return store_fail(c, rc, "cannot add to dataset");
    rc = slim_write_run_begin(c->w, c->ds, "slim-ingest", c->io->args_json ? c->io->args_json : "[]",
                              &c->run);
    if (rc) return store_fail(c, rc, "cannot record the run");
    c->stats->run_id = c->run;
    return import_vocab(c);
}

static int write_slot(tctx *c, tslot *s, int64_t j)
{
    slim_ingest_stats *st = c->stats;
    char ext[64], where[96];
    if (c->to->generate) snprintf(ext, sizeof ext, "gen-%llu-%lld", (unsigned long long)c->io->seed,
                                  (long long)j);
    else snprintf(ext, sizeof ext, "window-%lld", (long long)j);
    snprintf(where, sizeof where, "%s%s%s sequence %lld (%s)", c->input ? "'" : "",
             c->input ? c->input : "", c->input ? "'" : "", (long long)j, ext);
    if (s->rc) {
        st->refused++;
        snprintf(c->err, c->cap, "%s: %s", where, s->msg);
        return s->rc;
    }
    int64_t seq;
    int rc = slim_write_find_tokens(c->w, c->ds, s->tokens, s->T, &seq);
    if (rc == 0) { st->skipped++; return 0; }
    if (rc != SLIM_ENOTFOUND) return store_fail(c, rc, where);
    slim_prefix_ref ref, *pref = NULL;
    uint32_t minp = c->io->min_prefix;
    if (minp && s->T >= minp) {
        rc = slim_write_find_prefix(c->w, c->ds, s->tokens, s->T, &ref);
        if (rc == 0 && ref.len >= minp) {
            if (ref.len > s->T) ref.len = s->T;
            pref = &ref;
        } else if (rc && rc != SLIM_ENOTFOUND) return store_fail(c, rc, where);
    }
    rc = slim_write_seq(c->w, c->ds, c->run, ext, s->tokens, s->T, s->dists, s->T, pref, &seq);
    if (rc) { st->refused++; return store_fail(c, rc, where); }
    if (pref) { st->shared_seqs++; st->shared_positions += pref->len; }
    st->added++;
    st->positions += s->T;
    for (uint32_t p = 0; p < s->T; p++) st->entries += s->dists[p].k;
    return 0;
}

static void progress(tctx *c, int64_t done, int final)
{
    if (!c->io->progress) return;
    double t = now_s();
    if (!final && t - c->tlast < 0.5) return;
    c->tlast = t;
    double el = t - c->t0, rate = el > 0 ? c->stats->positions / el : 0;
    double eta = done > 0 ? el * (double)(c->njobs - done) / (double)done : 0;
    fprintf(stderr, "\r%lld/%lld sequences, %lld positions, %.0f positions/s, ETA %.0fs   %s",
            (long long)done, (long long)c->njobs, (long long)c->stats->positions, rate, eta,
            final ? "\n" : "");
}

/* One batch's writes and commit (on the writer thread): jobs [first, +n)
 * from slots[0, n).  Only this thread touches the writer, the run and the
 * counters while it runs. */
typedef struct wjob {
    tctx *c;
    tslot *slots;
    int64_t first;
    size_t n;
    int rc;
} wjob;

static int write_batch(tctx *c, tslot *slots, int64_t first, size_t n)
{
    double t1 = now_s();
    int rc = slim_write_begin(c->st, &c->w);
    if (rc) {
        c->w = NULL;
        return store_fail(c, rc, "cannot start writing");
    }
    int fresh = !c->run;
    if (fresh && (rc = begin_run(c))) {
        slim_write_abort(c->w);  /* refused before anything was written */
        c->w = NULL;
        c->run = c->stats->run_id = 0;
        return rc;
    }
    for (size_t i = 0; i < n && !rc; i++) rc = write_slot(c, &slots[i], first + (int64_t)i);
    double t2 = now_s();
    /* after a refused sequence the ones before it are still committed
     * (docs/TEACHER.md); after a store failure the commit fails too */
    int crc = slim_write_commit(c->w);
    c->w = NULL;
    if (crc) {
        c->stats->added = c->stats->committed_added;
        if (fresh) c->run = c->stats->run_id = 0;
        return rc ? rc : store_fail(c, crc, "commit failed");
    }
    c->stats->committed_added = c->stats->added;
    c->stats->t_write += t2 - t1;
    c->stats->t_commit += now_s() - t2;
    return rc;
}

static void *write_job(void *arg)
{
    wjob *j = arg;
    j->rc = write_batch(j->c, j->slots, j->first, j->n);
    return NULL;
}

/* Compute every batch; batch i is written and committed on a second thread
 * while batch i+1 is computed, in job order all the same. */
static int run_batches(tctx *c)
{
    int rc = 0, busy = 0, k = 0;
    pthread_t th;
    wjob job = { 0 };
    for (int64_t first = 0; first < c->njobs;) {
        size_t n = c->nslots;
        if ((int64_t)n > c->njobs - first) n = (size_t)(c->njobs - first);
        tslot *slots = c->slots + (size_t)k * c->nslots;
        k ^= 1;
        double t0 = now_s();
        compute_batch(c, slots, first, n);
        c->stats->t_sparsify += now_s() - t0;
        if (busy) {
            pthread_join(th, NULL);
            busy = 0;
            if ((rc = job.rc)) break;
            progress(c, first, 0);
        }
        job = (wjob){ .c = c, .slots = slots, .first = first, .n = n };
        first += (int64_t)n;
        if (first >= c->njobs || pthread_create(&th, NULL, write_job, &job)) {
            write_job(&job);
            if ((rc = job.rc)) break;
        } else busy = 1;
    }
    if (busy) {
        pthread_join(th, NULL);
        rc = job.rc;
    }
    return rc;
}

/* The run's inputs and end, in a last transaction. */
static int end_run(tctx *c, int failed)
{
    if (!c->run) return 0;
    slim_ingest_stats *s = c->stats;
    int rc = slim_write_begin(c->st, &c->w);
    if (rc) { c->w = NULL; return store_fail(c, rc, "cannot record the run's end"); }
    if (c->input)
        rc = slim_write_run_input(c->w, c->run, c->input, c->input_hash, s->added, s->skipped, s->refused);
    if (!rc)
        rc = slim_write_run_input(c->w, c->run, c->to->model, c->model_hash, s->added, s->skipped,
                                  s->refused);
    if (!rc)
        rc = slim_write_run_end(c->w, c->run, failed ? "failed" : "ok", s->added, s->skipped,
                                s->refused);
    if (rc) {
        slim_write_abort(c->w);
        c->w = NULL;
        return store_fail(c, rc, "cannot record the run's end");
    }
    rc = slim_write_commit(c->w);
    c->w = NULL;
    return rc ? store_fail(c, rc, "cannot record the run's end") : 0;
}

/* ------------------------------------------------------------- setup */

static int check_options(tctx *c)
{
    const slim_teacher_opts *t = c->to;
    const slim_ingest_opts *io = c->io;
    if (!t->model || !io->dataset) {
        snprintf(c->err, c->cap, "a model and a dataset are required");
        return SLIM_EINVAL;
    }
    if (!t->text == !t->generate || t->generate < 0) {
        snprintf(c->err, c->cap, "give either a text to score or a number of sequences to generate");
        return SLIM_EINVAL;
    }
    if (t->text && (t->prompts || t->max_tokens || t->top_p > 0 || t->sample_temperature > 0)) {
        snprintf(c->err, c->cap, "prompts, max tokens, top-p and sample temperature apply to "
                 "generation only");
        return SLIM_EINVAL;
    }
    c->tau = io->temperature > 0 ? io->temperature : 1.0;
    c->stau = t->sample_temperature > 0 ? t->sample_temperature : c->tau;
    c->top_p = t->top_p > 0 ? t->top_p : 1.0;
    if (!isfinite(c->tau) || !isfinite(c->stau) || c->top_p > 1) {
        snprintf(c->err, c->cap, "invalid temperature or top-p");
        return SLIM_EINVAL;
    }
    int rc = slim_sparsifier_parse(io->sparsify ? io->sparsify : "topfrac:0.05", &c->sp, c->err, c->cap);
    if (rc) return rc;
    c->sp.seed = io->seed;
    slim_sparsifier_format(&c->sp, c->spec, sizeof c->spec);
    c->kind = c->sp.type == SLIM_SP_SAMPLE ? SLIM_KIND_SAMPLED : SLIM_KIND_LOGITS;
    if (slim_precision_parse(io->precision ? io->precision : "logprob:0.01", &c->prec)) {
        snprintf(c->err, c->cap, "invalid precision '%s'", io->precision);
        return SLIM_EINVAL;
    }
    const char *tp = t->tokenizer ? t->tokenizer : io->vocab_path;
    if (!tp) {
        snprintf(c->err, c->cap, "the built-in teacher needs its tokenizer (slim tokenizer file or "
                 "tokenizer.json)");
        return SLIM_EINVAL;
    }
    return 0;
}

static int open_model(tctx *c)
{
    char msg[512];
    if (slim_ckpt_open(&c->ck, c->to->model, msg, sizeof msg)) {
        c->ck = NULL;
        snprintf(c->err, c->cap, "%s", msg);
        return errno == ENOENT ? SLIM_EIO : SLIM_EINVAL;
    }
    c->V = (uint32_t)c->ck->cfg.vocab;
    c->ctx = (uint32_t)c->ck->cfg.ctx;
    c->capk = slim_sparsifier_cap(&c->sp, c->V);
    c->model_hash = c->ck->sha256_hex;
    const char *slash = strrchr(c->to->model, '/');
    c->name = c->io->teacher ? c->io->teacher : slash ? slash + 1 : c->to->model;
    if (c->io->vocab_size && c->io->vocab_size != c->V) {
        snprintf(c->err, c->cap, "'%s': the model's vocabulary is %u but the vocabulary size "
                 "given is %u", c->to->model, c->V, c->io->vocab_size);
        return SLIM_EMISMATCH;
    }
    slim_dataset_info di;
    if (slim_dataset_get(c->st, c->io->dataset, &di) == 0 && di.teacher.vocab_size != c->V) {
        snprintf(c->err, c->cap, "'%s': vocab size %u differs from dataset '%s' teacher's %u",
                 c->to->model, c->V, c->io->dataset, di.teacher.vocab_size);
        return SLIM_EMISMATCH;
    }
    return 0;
}

static int prepare(tctx *c)
{
    int rc = check_options(c);
    if (!rc) rc = open_model(c);
    if (!rc) rc = load_tokenizer(c, c->to->tokenizer ? c->to->tokenizer : c->io->vocab_path);
    if (rc) return rc;
    c->input = c->to->text ? c->to->text : c->to->prompts;
    double t0 = now_s();
    rc = c->to->text ? load_text(c) : load_prompts(c);
    if (!rc && c->to->generate) c->njobs = c->to->generate;
    if (!rc && c->input) rc = slim_file_hash(c->input, c->input_hash, c->err, c->cap);
    c->stats->t_parse = now_s() - t0;
    if (rc) return rc;
    c->nth = c->io->threads > 0 ? c->io->threads : omp_get_max_threads();
    if (c->nth < 1) c->nth = 1;
    c->group = group_size(c);
    if (!rc) rc = alloc_threads(c);
    if (!rc) rc = alloc_slots(c);
    if (rc == SLIM_ENOMEM) snprintf(c->err, c->cap, "out of memory");
    return rc;
}

int slim_teacher_ingest(slim_store *st, const slim_ingest_opts *io,
                        const slim_teacher_opts *t, slim_ingest_stats *stats,
                        char *err, size_t cap)
{
    tctx c = { .st = st, .io = io, .to = t, .stats = stats, .err = err, .cap = cap };
    memset(stats, 0, sizeof *stats);
    err[0] = 0;
    c.t0 = c.tlast = now_s();
    slim_dataset_info di;
    if (io->dataset && slim_dataset_get(st, io->dataset, &di) == 0) stats->bytes_before = di.record_bytes;
    int rc = prepare(&c);
    if (!rc) {
        rc = run_batches(&c);
        char keep[1024];
        snprintf(keep, sizeof keep, "%s", err);
        int r2 = end_run(&c, rc != 0);
        if (!rc) rc = r2;
        else snprintf(err, cap, "%s", keep);
    }
    progress(&c, c.njobs, 1);
    stats->seconds = now_s() - c.t0;
    stats->bytes_after = io->dataset && slim_dataset_get(st, io->dataset, &di) == 0
                             ? di.record_bytes : stats->bytes_before;
    free_threads(&c);
    free(c.slots);
    free(c.slot_tok);
    free(c.slot_dist);
    free(c.slot_ids);
    free(c.slot_vals);
    slim_toklist_release(&c.lists);
    slim_tok_free(c.tok);
    slim_ckpt_close(c.ck);
    return rc;
}
