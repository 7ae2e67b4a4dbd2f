/*
 * pipeline.c — files to committed sequences.  Per batch (a few thousand
 * positions of whole sequences): parse, sparsify the dense rows on every core
 * (OpenMP, one workspace per thread), validate and encode every sequence's
 * records on every core (slim_seq_prepare, one preparer per thread), then one
 * writer appends the prepared sequences in input order — ingest-time dedup
 * by exact tokens, prefix sharing — and commits.  The unit of atomicity is a sequence: a bad one stops the run
 * after the sequences before it are committed (docs/INGEST.md).
 */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include "ingest_src.h"
#include "vocab.h"
#include "../train/tokenizer.h"

typedef struct ictx {
    slim_store *st;
    const slim_ingest_opts *o;
    slim_ingest_stats *stats;
    char *err; size_t cap;
    slim_sparsifier sp;
    char spec[64];
    slim_precision prec;
    slim_tok *tok;
    char tokhash[65];
    const char *teacher_name;
    char teacher_buf[256];
    int64_t ds;                 /* dataset id, 0 = not yet */
    int64_t run;                /* ingest run id, 0 = not yet */
    slim_writer *w;             /* open transaction or NULL */
    slim_batch bb[2];           /* one being filled while the other is written */
    char werr[1024];            /* the writer side's error message */
    uint64_t seen;              /* positions sparsified (sample streams) */
    int64_t *wseq; size_t wseqcap;  /* seq number given to each batch entry, -1 = none */
    slim_sparse_ws **ws; int nws; uint32_t wsV, wscap;
    slim_preparer **pr; int npr;        /* one per OpenMP thread */
    slim_prepared **pp[2]; size_t ppn[2];  /* per batch entry, per batch buffer */
    const uint8_t **rows; size_t rowcap;
    int64_t f_added, f_skipped, f_refused;
    int file_ready;             /* dataset checked against this file */
    uint32_t fileV; int filekind;
    double t0, tlast;
    uint64_t bytes_total, bytes_done;
    int fatal;                  /* an error message is in err */
} ictx;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* A store error as "'path': what: detail". */
static int store_fail(ictx *c, int rc, const char *path, const char *what)
{
    snprintf(c->werr, sizeof c->werr, "%s%s%s%s: %s", path ? "'" : "", path ? path : "", path ? "': " : "",
             what, slim_errmsg(c->st));
    return rc;
}

static int tx(ictx *c)
{
    if (c->w) return 0;
    int rc = slim_write_begin(c->st, &c->w);
    if (rc) { c->w = NULL; return store_fail(c, rc, NULL, "cannot start writing"); }
    return 0;
}

static int commit(ictx *c)
{
    if (!c->w) return 0;
    int rc = slim_write_commit(c->w);
    c->w = NULL;
    if (rc) return store_fail(c, rc, NULL, "commit failed");
    c->stats->committed_added = c->stats->added;
    return 0;
}

/* ------------------------------------------------------------- dataset */

static int ensure_dataset(ictx *c, const slim_src *s, uint32_t V, int kind)
{
    slim_teacher t = {
        .name = c->teacher_name, .vocab_size = V,
        .tokenizer_hash = c->tok ? c->tokhash : NULL,
        .temperature = c->o->temperature > 0 ? c->o->temperature : 1.0,
        .source = s->is_logprob ? SLIM_SOURCE_LOGPROBS : SLIM_SOURCE_LOGITS,
    };
    const char *spec = s->dense ? c->spec : "input";
    int rc;
    int64_t id;
    rc = slim_write_dataset(c->w, c->o->dataset, &t, kind, spec, &c->prec, &id);
    if (rc) return store_fail(c, rc, s->path, "cannot add to dataset");
    c->ds = id;
    if (!c->run) {
        rc = slim_write_run_begin(c->w, id, "slim-ingest " SLIM_VERSION_STRING, c->o->args_json,
                                  &c->run);
        if (rc) return store_fail(c, rc, NULL, "cannot record the run");
        c->stats->run_id = c->run;
        if (c->tok && (rc = slim_ingest_write_vocab(c->w, id, c->tok, c->tokhash)))
            return store_fail(c, rc, c->o->vocab_path, "cannot import vocabulary");
    }
    return 0;
}

/* V for this file: from the input, else --vocab-size, else the dataset. */
static int file_vocab(ictx *c, const slim_src *s, uint32_t *V)
{
    slim_dataset_info di;
    int have = slim_dataset_get(c->st, c->o->dataset, &di) == 0;
    uint32_t v = s->V ? s->V : c->o->vocab_size ? c->o->vocab_size : have ? di.teacher.vocab_size : 0;
    if (!v) {
        snprintf(c->err, c->cap, "'%s': vocabulary size unknown: pass --vocab-size V (the logit "
                 "width) for the first ingest of sparse input", s->path);
        return SLIM_EINVAL;
    }
    if (s->V && c->o->vocab_size && s->V != c->o->vocab_size) {
        snprintf(c->err, c->cap, "'%s': logits are %u wide but --vocab-size says %u", s->path,
                 s->V, c->o->vocab_size);
        return SLIM_EMISMATCH;
    }
    if (have && di.teacher.vocab_size != v) {
        snprintf(c->err, c->cap, "'%s': vocab size %u differs from dataset '%s' teacher's %u",
                 s->path, v, c->o->dataset, di.teacher.vocab_size);
        return SLIM_EMISMATCH;
    }
    *V = v;
    return 0;
}

/* ------------------------------------------------------------ sparsify */

static int ensure_ws(ictx *c, uint32_t V, uint32_t cap)
{
    int n = omp_get_max_threads();
    if (c->ws && c->wsV == V && c->wscap >= cap && c->nws >= n) return 0;
    for (int i = 0; i < c->nws; i++) slim_sparse_ws_free(c->ws[i]);
    free(c->ws);
    c->ws = calloc((size_t)n, sizeof *c->ws);
    c->nws = c->ws ? n : 0;
    for (int i = 0; i < c->nws; i++)
        if (!(c->ws[i] = slim_sparse_ws_new(V, cap))) return SLIM_ENOMEM;
    c->wsV = V;
    c->wscap = cap;
    return c->ws ? 0 : SLIM_ENOMEM;
}

/*
 * Sparsify every dense position of the batch in parallel.  On a bad row the
 * batch is cut before the sequence holding it (those before stay valid) and
 * *bad_seq names it; the message is in c->err.
 */
static int sparsify_batch(ictx *c, slim_batch *b, const slim_src *s, uint32_t V, size_t *nseq_ok)
{
    uint32_t cap = slim_sparsifier_cap(&c->sp, V);
    *nseq_ok = b->nseq;
    if (!s->dense || !b->positions) return 0;
    int rc = ensure_ws(c, V, cap);
    if (!rc) rc = slim_batch_reserve(b, 0, 0, b->positions, b->positions * cap);
    if (!rc && b->positions > c->rowcap) {
        const uint8_t **r = realloc(c->rows, b->positions * sizeof *r);
        if (r) { c->rows = r; c->rowcap = b->positions; } else rc = SLIM_ENOMEM;
    }
    if (rc) { snprintf(c->err, c->cap, "out of memory"); *nseq_ok = 0; return rc; }
    size_t p = 0;
    for (size_t i = 0; i < b->nseq; i++) {
        slim_iseq *q = &b->seqs[i];
        q->dist_off = b->ndist + p;
        for (uint32_t t = 0; t < q->npos; t++, p++) {
            c->rows[p] = q->rows + t * q->row_stride;
            b->entoff[b->ndist + p] = b->nent + p * cap;
        }
    }
    size_t np = p, d0 = b->ndist;
    b->ndist += np;
    b->nent += np * cap;
    slim_batch_fix_pointers(b);
    size_t first_bad = SIZE_MAX;
    uint32_t bad_id = 0;
    int dt = b->seqs[0].dtype;
    uint64_t stream0 = c->seen;  /* sample streams: global position index */
    c->seen += np;
#pragma omp parallel for schedule(dynamic, 8)
    for (size_t i = 0; i < np; i++) {
        slim_sparse_ws *ws = c->ws[omp_get_thread_num()];
        const float *x = (const float *)(const void *)c->rows[i];
        if (dt != SLIM_DT_F32 || ((uintptr_t)x & 3)) {
            float *row = slim_sparse_ws_row(ws);
            slim_row_to_f32(dt, c->rows[i], V, row);
            x = row;
        }
        uint32_t bad;
        if (slim_sparsify_row(&c->sp, ws, x, V, stream0 + i, &b->dists[d0 + i], &bad)) {
#pragma omp critical
            if (i < first_bad) { first_bad = i; bad_id = bad; }
        }
    }
    if (first_bad == SIZE_MAX) return 0;
    size_t acc = 0;
    for (size_t i = 0; i < b->nseq; i++) {
        slim_iseq *q = &b->seqs[i];
        if (first_bad < acc + q->npos) {
            float v = slim_float_at(dt, c->rows[first_bad], bad_id);
            snprintf(c->err, c->cap, "'%s': %s position %zu: logit of token %u is %s", s->path,
                     q->where, first_bad - acc, bad_id,
                     v != v ? "NaN" : v == INFINITY ? "+Inf" : "-Inf everywhere");
            *nseq_ok = i;
            break;
        }
        acc += q->npos;
    }
    return SLIM_EINVAL;
}

/*
 * Validate and encode the first nseq sequences of the batch on every core
 * (slim_seq_prepare), so that the single writer only appends ready records.
 * A sequence that fails keeps its error in its slim_prepared; the writer
 * reports it when it reaches it, in input order.
 */
static int prepare_batch(ictx *c, int which, slim_batch *b, size_t nseq)
{
    int n = omp_get_max_threads();
    if (!nseq) return 0;
    if (c->npr < n) {
        slim_preparer **pr = realloc(c->pr, (size_t)n * sizeof *pr);
        if (!pr) goto oom;
        c->pr = pr;
        for (; c->npr < n; c->npr++)
            if (slim_preparer_new(&c->pr[c->npr])) goto oom;
    }
    if (c->ppn[which] < nseq) {
        slim_prepared **pp = realloc(c->pp[which], nseq * sizeof *pp);
        if (!pp) goto oom;
        c->pp[which] = pp;
        for (; c->ppn[which] < nseq; c->ppn[which]++)
            if (slim_prepared_new(&pp[c->ppn[which]])) goto oom;
    }
    slim_batch_fix_pointers(b);
    slim_prepared **pp = c->pp[which];
    /* whole sequences per task: dense ones are ~100 positions of ~1600
     * entries each, so one task is a few ms and dynamic balancing is cheap */
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t i = 0; i < nseq; i++) {
        const slim_iseq *q = &b->seqs[i];
        slim_seq_prepare(c->pr[omp_get_thread_num()], c->filekind, &c->prec, c->fileV,
                         b->tokens + q->tok_off, q->T, b->dists + q->dist_off, q->npos, pp[i]);
    }
    return 0;
oom:
    snprintf(c->err, c->cap, "out of memory");
    return SLIM_ENOMEM;
}

/* -------------------------------------------------------------- writer */

static void progress(ictx *c, int final)
{
    if (!c->o->progress) return;
    double t = now_s();
    if (!final && t - c->tlast < 0.5) return;
    c->tlast = t;
    double el = t - c->t0, rate = el > 0 ? c->stats->positions / el : 0;
    double frac = c->bytes_total ? (double)c->bytes_done / (double)c->bytes_total : 0;
    double eta = frac > 0.001 ? el * (1 - frac) / frac : 0;
    slim_dataset_info di;
    double mb = 0;
    if (c->ds && slim_dataset_get(c->st, c->o->dataset, &di) == 0)
        mb = (double)(di.record_bytes - c->stats->bytes_before) / 1e6;
    fprintf(stderr, "\r%lld positions, %.0f positions/s, %.1f MB written, ETA %.0fs   %s",
            (long long)c->stats->positions, rate, mb, eta, final ? "\n" : "");
}

/* The entry with the largest value (the teacher's top choice). */
static uint32_t top1(const slim_dist *d)
{
    uint32_t best = 0;
    for (uint32_t j = 1; j < d->k; j++)
        if (d->vals[j] > d->vals[best] || (d->vals[j] == d->vals[best] && d->ids[j] < d->ids[best]))
            best = j;
    return best;
}

/*
 * A shared prefix keeps the first copy's values.  When that copy is in the
 * same batch (templates, vLLM n > 1) compare the last shared position: same
 * top-1 id and, for log-prob precision, its log-prob within twice the bound.
 * Disagreements are counted, never refused (batch-size noise in the teacher).
 */
static void check_prefix(ictx *c, slim_batch *b, size_t i, const slim_prefix_ref *ref)
{
    if (ref->dataset != c->ds || !ref->len) return;
    for (size_t j = 0; j < i; j++) {
        if (c->wseq[j] != ref->seq) continue;
        const slim_dist *x = &b->dists[b->seqs[j].dist_off + ref->len - 1];
        const slim_dist *y = &b->dists[b->seqs[i].dist_off + ref->len - 1];
        c->stats->prefix_checked++;
        if (!x->k || !y->k) return;
        uint32_t a = top1(x), e = top1(y);
        double tol = c->prec.mode == SLIM_PREC_LOGPROB ? 2 * c->prec.eps : 1e-3;
        double la = x->vals[a] - (isnan(x->lse) ? 0 : x->lse), le = y->vals[e] - (isnan(y->lse) ? 0 : y->lse);
        if (x->ids[a] != y->ids[e] || (x->n_samples == 0 && fabs(la - le) > tol))
            c->stats->prefix_disagree++;
        return;
    }
}

static int write_seqs(ictx *c, slim_batch *b, slim_prepared *const *pp, const slim_src *s, size_t nseq)
{
    if (!nseq) return 0;
    int rc = tx(c);
    if (rc) return rc;
    /* the dataset (and the run) are created in the transaction of the first
     * sequences: a file refused before any is written leaves no trace */
    if (!c->file_ready) {
        if ((rc = ensure_dataset(c, s, c->fileV, c->filekind))) return rc;
        c->file_ready = 1;
    }
    slim_batch_fix_pointers(b);
    if (nseq > c->wseqcap) {
        int64_t *w = realloc(c->wseq, nseq * sizeof *w);
        if (!w) { snprintf(c->werr, sizeof c->werr, "out of memory"); return SLIM_ENOMEM; }
        c->wseq = w;
        c->wseqcap = nseq;
    }
    for (size_t i = 0; i < nseq; i++) {
        slim_iseq *q = &b->seqs[i];
        c->wseq[i] = -1;
        const uint32_t *tok = b->tokens + q->tok_off;
        const slim_dist *d = b->dists + q->dist_off;
        int64_t seq;
        rc = slim_write_find_tokens(c->w, c->ds, tok, q->T, &seq);
        if (rc == 0) { c->f_skipped++; c->stats->skipped++; continue; }
        if (rc != SLIM_ENOTFOUND) return store_fail(c, rc, s->path, q->where);
        slim_prefix_ref ref, *pref = NULL;
        if (q->npos >= c->o->min_prefix && c->o->min_prefix) {
            rc = slim_write_find_prefix(c->w, c->ds, tok, q->T, &ref);
            if (rc == 0 && ref.len >= c->o->min_prefix) {
                if (ref.len > q->npos) ref.len = q->npos;
                pref = &ref;
            } else if (rc && rc != SLIM_ENOTFOUND) return store_fail(c, rc, s->path, q->where);
        }
        rc = slim_write_prepared(c->w, c->ds, c->run, q->ext_id[0] ? q->ext_id : NULL, pp[i], pref,
                                 &seq);
        if (rc) {
            c->f_refused++;
            c->stats->refused++;
            return store_fail(c, rc, s->path, q->where);
        }
        c->wseq[i] = seq;
        if (pref) {
            c->stats->shared_seqs++;
            c->stats->shared_positions += pref->len;
            check_prefix(c, b, i, pref);
        }
        c->f_added++;
        c->stats->added++;
        c->stats->positions += q->npos;
        for (uint32_t t = 0; t < q->npos; t++) c->stats->entries += d[t].k;
    }
    return 0;
}

/* One batch's writes and commit, on the writer thread. */
typedef struct wjob {
    ictx *c; const slim_src *s; slim_batch *b; slim_prepared *const *pp; size_t n;
    int rc;
    double t_write, t_commit;
} wjob;

static void *write_job(void *arg)
{
    wjob *j = arg;
    double t0 = now_s();
    j->rc = write_seqs(j->c, j->b, j->pp, j->s, j->n);
    double t1 = now_s();
    if (!j->rc) j->rc = commit(j->c);
    j->t_write = t1 - t0;
    j->t_commit = now_s() - t1;
    return NULL;
}

/* ---------------------------------------------------------------- files */

static int record_input(ictx *c, const char *path, const char *hash)
{
    if (!c->run) return 0;
    int rc = tx(c);
    if (!rc && (rc = slim_write_run_input(c->w, c->run, path, hash, c->f_added, c->f_skipped,
                                          c->f_refused)))
        return store_fail(c, rc, path, "cannot record the input");
    return rc ? rc : commit(c);
}

/* files[0..nf) form one input: one file, or consecutive .npy arrays. */
static int open_src(ictx *c, slim_src *s, const char *const *files, int nf, int fmt)
{
    int rc = slim_src_open(s, files[0], fmt, c->err, c->cap);
    if (rc) return rc;
    for (int i = 1; i < nf && !rc; i++) rc = slim_src_add_npy(s, files[i], c->err, c->cap);
    s->max_k = c->o->max_k;
    if (!rc) rc = slim_src_layout(s, c->err, c->cap);
    if (rc) slim_src_close(s);
    return rc;
}

/* The input's name and content hash for the run record. */
static int input_id(ictx *c, const char *const *files, int nf, const struct stat *sb,
                    char *path, size_t pcap, char hash[42])
{
    if (S_ISDIR(sb->st_mode)) {  /* an npy directory: not hashed */
        snprintf(path, pcap, "%s", files[0]);
        snprintf(hash, 42, "directory");
        return 0;
    }
    char all[16 * 42] = "", h[42];
    size_t n = 0;
    path[0] = 0;
    for (int i = 0; i < nf; i++) {
        int rc = slim_file_hash(files[i], h, c->err, c->cap);
        if (rc) return rc;
        n += (size_t)snprintf(all + n, sizeof all - n, "%s", h);
        size_t pl = strlen(path);
        snprintf(path + pl, pcap - pl, "%s%s", i ? "+" : "", files[i]);
    }
    if (nf == 1) { memcpy(hash, h, 42); return 0; }
    XXH128_hash_t x = XXH3_128bits(all, n);  /* several arrays: hash of their hashes */
    snprintf(hash, 42, "xxh3-128:%016llx%016llx", (unsigned long long)x.high64,
             (unsigned long long)x.low64);
    return 0;
}

static int ingest_file(ictx *c, const char *const *files, int nf, int fmt)
{
    char hash[42], ipath[4096];
    const char *path = files[0];
    slim_src s;
    c->f_added = c->f_skipped = c->f_refused = 0;
    struct stat sb;
    if (stat(path, &sb) < 0) {
        snprintf(c->err, c->cap, "cannot open '%s': %s", path, strerror(errno));
        return SLIM_EIO;
    }
    int rc = input_id(c, files, nf, &sb, ipath, sizeof ipath, hash);
    if (rc) return rc;
    if ((rc = open_src(c, &s, files, nf, fmt))) return rc;
    uint32_t V = 0;
    int kind = s.dense && c->sp.type == SLIM_SP_SAMPLE ? SLIM_KIND_SAMPLED : SLIM_KIND_LOGITS;
    if (!(rc = file_vocab(c, &s, &V))) {
        c->fileV = V;
        c->filekind = kind;
        c->file_ready = 0;
    }
    if (!rc && !s.dense && c->o->sparsify) {
        snprintf(c->err, c->cap, "'%s': input is already sparse; --sparsify applies to dense "
                 "logits only", path);
        rc = SLIM_EINVAL;
    }
    size_t maxpos = c->o->batch_positions ? c->o->batch_positions : 8192;
    if (s.dense) {
        /* entry pool of a batch: positions x K; keep it around 16 MB so the
         * two batches in flight stay small and the writer overlaps early */
        size_t per = (size_t)slim_sparsifier_cap(&c->sp, V) * 8 + 1;
        if (maxpos > (16u << 20) / per) maxpos = (16u << 20) / per;
        if (maxpos < 1) maxpos = 1;
    }
    uint64_t base_done = c->bytes_done;
    int eof = 0, busy = 0, k = 0;
    pthread_t th;
    wjob job = { 0 };
    /* batch i is written on a second thread while batch i+1 is parsed and
     * sparsified here; the writer still sees sequences in input order */
    while (!rc && !eof) {
        slim_batch *b = &c->bb[k];
        k ^= 1;
        slim_batch_reset(b);
        double t0 = now_s();
        int frc = slim_src_fill(&s, V, maxpos, b, &eof, c->err, c->cap);
        double t1 = now_s();
        size_t ok;
        /* a bad row lies before any fill error (that sequence is not in the
         * batch), so its message wins */
        int src = sparsify_batch(c, b, &s, V, &ok);
        if (src) frc = src;
        if ((src = prepare_batch(c, k ^ 1, b, ok))) { frc = src; ok = 0; }
        c->stats->t_parse += t1 - t0;
        c->stats->t_sparsify += now_s() - t1;
        if (busy) {
            pthread_join(th, NULL);
            busy = 0;
            c->stats->t_write += job.t_write;
            c->stats->t_commit += job.t_commit;
            if (job.rc) { rc = job.rc; break; }
            progress(c, 0);
        }
        if (frc == SLIM_EINVAL) { c->f_refused++; c->stats->refused++; }  /* the bad unit */
        job = (wjob){ .c = c, .s = &s, .b = b, .pp = c->pp[k ^ 1], .n = ok };
        if (frc || eof || pthread_create(&th, NULL, write_job, &job)) {
            write_job(&job);
            c->stats->t_write += job.t_write;
            c->stats->t_commit += job.t_commit;
            rc = job.rc ? job.rc : frc;
        } else busy = 1;
        if (s.fmt == SLIM_FMT_JSONL) c->bytes_done = base_done + s.done_bytes;
        else if (s.N) c->bytes_done = base_done + (uint64_t)((double)s.next / s.N * (sb.st_size));
    }
    if (busy) {
        pthread_join(th, NULL);
        if (!rc) rc = job.rc;
    }
    if (job.rc) snprintf(c->err, c->cap, "%s", c->werr);
    progress(c, 0);
    if (c->w) { slim_write_abort(c->w); c->w = NULL; }
    slim_src_close(&s);
    if (c->run) {
        char keep[1024];
        snprintf(keep, sizeof keep, "%s", c->err);
        int r2 = record_input(c, ipath, hash);
        if (!rc && r2) { rc = r2; snprintf(c->err, c->cap, "%s", c->werr); }
        else snprintf(c->err, c->cap, "%s", keep);
    }
    return rc;
}

int slim_ingest_files(slim_store *st, const slim_ingest_opts *o, const char *const *files,
                      int n, slim_ingest_stats *stats, char *err, size_t cap)
{
    ictx c = { .st = st, .o = o, .stats = stats, .err = err, .cap = cap };
    memset(stats, 0, sizeof *stats);
    err[0] = 0;
    int rc = slim_sparsifier_parse(o->sparsify ? o->sparsify : "topfrac:0.05", &c.sp, err, cap);
    if (rc) return rc;
    c.sp.seed = o->seed;
    slim_sparsifier_format(&c.sp, c.spec, sizeof c.spec);
    if (slim_precision_parse(o->precision ? o->precision : "logprob:0.01", &c.prec)) {
        snprintf(err, cap, "invalid precision '%s'", o->precision);
        return SLIM_EINVAL;
    }
    slim_dataset_info di;
    int have = slim_dataset_get(st, o->dataset, &di) == 0;
    if (have) stats->bytes_before = di.record_bytes;
    if (o->teacher) c.teacher_name = o->teacher;
    else if (have) {
        snprintf(c.teacher_buf, sizeof c.teacher_buf, "%s", di.teacher.name);
        c.teacher_name = c.teacher_buf;
    } else c.teacher_name = o->dataset;  /* a teacher of its own unless named */
    if (o->vocab_path) {
        char msg[512];
        if ((rc = slim_tok_load_hf(o->vocab_path, &c.tok, msg, sizeof msg))) {
            snprintf(err, cap, "'%s': %s", o->vocab_path, msg);
            return rc;
        }
        slim_tok_hash(c.tok, c.tokhash);
    }
    for (int i = 0; i < n; i++) {
        struct stat sb;
        if (stat(files[i], &sb) == 0) c.bytes_total += (uint64_t)sb.st_size;
    }
    c.t0 = c.tlast = now_s();
    for (int i = 0; i < n && !rc;) {
        /* .npy files named one after another are the arrays of one input */
        int fmt = o->format, nf = 1, f2;
        struct stat sb;
        if (fmt == SLIM_FMT_AUTO && (rc = slim_detect_format(files[i], &fmt, err, cap))) break;
        if (fmt == SLIM_FMT_NPY && stat(files[i], &sb) == 0 && S_ISREG(sb.st_mode))
            while (i + nf < n && nf < SLIM_MAXTENSORS && stat(files[i + nf], &sb) == 0
                   && S_ISREG(sb.st_mode) && (o->format == SLIM_FMT_NPY
                   || (slim_detect_format(files[i + nf], &f2, err, cap) == 0 && f2 == SLIM_FMT_NPY)))
                nf++;
        rc = ingest_file(&c, files + i, nf, fmt);
        i += nf;
    }
    if (c.run) {
        int r2 = tx(&c);
        if (!r2) r2 = slim_write_run_end(c.w, c.run, rc ? "failed" : "ok", stats->added,
                                         stats->skipped, stats->refused);
        if (!r2) r2 = commit(&c);
        else if (c.w) { slim_write_abort(c.w); c.w = NULL; }
        if (!rc && r2) { rc = r2; snprintf(err, cap, "%s", c.werr); }
    }
    stats->seconds = now_s() - c.t0;
    progress(&c, 1);
    if (slim_dataset_get(st, o->dataset, &di) == 0) stats->bytes_after = di.record_bytes;
    else stats->bytes_after = stats->bytes_before;
    slim_batch_release(&c.bb[0]);
    slim_batch_release(&c.bb[1]);
    for (int i = 0; i < c.nws; i++) slim_sparse_ws_free(c.ws[i]);
    free(c.ws);
    for (int i = 0; i < c.npr; i++) slim_preparer_free(c.pr[i]);
    free(c.pr);
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < c.ppn[k]; i++) slim_prepared_free(c.pp[k][i]);
        free(c.pp[k]);
    }
    free(c.rows);
    free(c.wseq);
    slim_tok_free(c.tok);
    return rc;
}
