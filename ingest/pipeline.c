/*
 * pipeline.c — files to committed sequences.  Per batch (about a thousand
 * positions of whole sequences): the main thread parses it into a free
 * slot and queues its units, one per sequence (the batch's last two in
 * halves); the workers (the main thread among them) take units in order,
 * read a sequence's dense rows a few at a time into a buffer (pread),
 * sparsify them (one workspace per thread), and validate and encode its
 * records (slim_seq_prepare, one preparer per thread); the unit that ends
 * a batch hands it to one writer thread, which appends the prepared
 * sequences in input order — ingest-time dedup by exact tokens, prefix
 * sharing — and commits while the workers go on with the next batch (see
 * islot).  The input's content hash (a block-list hash, source.c) of dense
 * safetensors is digested by the workers from the rows they read (from L2,
 * not DRAM), the few blocks no worker holds whole by the writer; other
 * inputs are hashed on a thread of its own meanwhile.  The unit of
 * atomicity is a sequence: a bad one stops the run after the sequences
 * before it are committed (docs/INGEST.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "ingest_src.h"
#include "vocab.h"
#include "../train/tokenizer.h"

/* A sequence's first bad dense row: pos UINT32_MAX none; err nonzero: the
 * row could not be read (errno, or -1: the file ended early), else token
 * id's logit v is not finite (or every logit is -Inf). */
typedef struct slim_badrow { uint32_t pos, id; int err; float v; } slim_badrow;

/*
 * A batch in flight.  The main thread fills a free slot (parses it; dense
 * rows are read by the workers) and queues its units; the workers (the
 * main thread among them when it has nothing to fill) run units in queue
 * order; the unit that ends a slot's work hands it to the writer thread,
 * which checks it and writes it in input order, frees the slot, then
 * commits (see write_slot).
 * No barrier between batches: workers go from one batch's last units to
 * the next one's first.  (With a barrier per batch, one of the two cores
 * had waited 3-4 ms at the end of each ~30 ms batch of a dense ingest, and
 * one ~1 ms while the next batch was filled; instrumented.)
 */
enum { SLOT_FREE, SLOT_WORK, SLOT_DONE };
/* Batches in flight: how far the workers can run ahead of a commit, which
 * holds the writer (~50 ms of dense work with four 8 MB batches, as much as
 * two 16 MB ones gave).  Against 2 slots, measured on 2.1 GB one-shot
 * ingests: the same at the disk's own speed, 27.7k -> 29.5k positions/s
 * with every sync 10 ms slower, 28.6k -> 30.7k with a 100 ms stall on
 * every 15th sync; peak RSS ~52 -> ~70 MB (16 MB batches in 2 slots had
 * 83-88).  The input hash's ring is sized for NSLOT windows, so any value
 * is correct. */
#define NSLOT 4
typedef struct islot {
    slim_batch b;
    int state;
    uint64_t no;                /* batch number within the input */
    size_t nunits, taken, left; /* units queued, handed out, not ended */
    size_t nsplit;              /* the last nsplit sequences run as two units each */
    int halves_left[2];         /*   per split sequence: its units not ended */
    int frc, eof;               /* the fill's result (on error the batch holds the
                                   sequences before it) */
    char ferr[1024];            /*   and its message */
    uint64_t stream0;           /* sample stream of the batch's first position */
    int hashed;                 /* its dense rows feed the input hash: */
    slim_fhash_win win;         /*   the blocks the workers digest */
    uint64_t hhi;               /*   the end of its rows, folded up to after the units */
    uint64_t bytes_done;        /* progress once written */
    slim_prepared **pp; size_t ppn;  /* per sequence */
    slim_badrow *bad; size_t badcap; /* per sequence its first bad dense row, then two
                                        per split sequence (one per unit) */
} islot;

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
    int run_new;                /*   begun in the open transaction */
    slim_writer *w;             /* open transaction or NULL */
    islot slot[NSLOT];          /* batches in flight */
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* units queued or ended, a slot filled, worked or written, the end */
    uint64_t nfilled, nwritten; /* batches of this input */
    int fill_end;               /* no more batches of this input */
    int stop;                   /* an error: no more fills, units or writes */
    int wdone, quit;            /* the writer has ended; workers are to end */
    int wrc, irc;               /* the writer's error: a store's, an input's */
    const slim_src *src;        /* the input worked on, and its V */
    uint32_t V;
    char werr[1024];            /* the writer side's error message */
    uint64_t seen;              /* positions sparsified (sample streams) */
    int64_t *wseq; size_t wseqcap;  /* seq number given to each batch entry, -1 = none */
    slim_sparse_ws **ws; int nws; uint32_t wsV, wscap;  /* per worker: */
    uint8_t **rbuf;             /*   raw dense rows (see rows_per_read) */
    slim_fhash_run *hrun;       /*   its run of the input hash */
    slim_preparer **pr; int npr;        /* one per worker */
    double (*tacc)[4]; int ntacc;       /* per thread: CPU s sparsify, prepare, hash; s read */
    int64_t f_added, f_skipped, f_refused;
    int file_ready;             /* dataset checked against this file */
    uint32_t fileV; int filekind;
    double t0, tlast;
    uint64_t bytes_total, bytes_done;
    int fatal;                  /* an error message is in err */
    slim_fhash fh;              /* the input's hash, when fh_on: digested by the workers */
    int fh_on;
    int fh_lost;                /* a row could not be read: no hash for this input */
    int txn_batches;            /* batches written into the open transaction, */
    slim_ingest_stats txn_before;  /* the counters before the first of them */
    int64_t txn_f_added;
    double commit_end, commit_len;  /* when the last batch commit ended, how long it took */
    struct pend_input *pend;    /* ingested inputs whose run-record rows are not committed */
    int npend, pendcap;
} ictx;

/* An input's row of the run record, written into the next transaction (the
 * next file's first batch, or the run's end) instead of a commit of its own:
 * a commit is a few syncs, and with many small input files (a capture job's
 * shards) two commits a file were most of the run.  in_txn: written into the
 * open transaction; it leaves the list when that commits, and is written
 * again if it does not. */
typedef struct pend_input {
    char *path;
    char hash[SLIM_FILE_HASH_CAP];
    int64_t added, skipped, refused;
    int in_txn;
} pend_input;

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

/* The open transaction committed (ok) or dropped: its input rows leave
 * the list, or are pending again. */
static void pend_settle(ictx *c, int ok)
{
    int n = 0;
    for (int i = 0; i < c->npend; i++) {
        pend_input *p = &c->pend[i];
        if (ok && p->in_txn) { free(p->path); continue; }
        p->in_txn = 0;
        c->pend[n++] = *p;
    }
    c->npend = n;
}

/* The pending input rows into the open transaction. */
static int pend_write(ictx *c)
{
    for (int i = 0; i < c->npend; i++) {
        pend_input *p = &c->pend[i];
        if (p->in_txn) continue;
        int rc = slim_write_run_input(c->w, c->run, p->path, p->hash, p->added, p->skipped, p->refused);
        if (rc) return store_fail(c, rc, p->path, "cannot record the input");
        p->in_txn = 1;
    }
    return 0;
}

/* The open transaction did not reach the store (aborted, or its commit
 * failed): its input rows are pending again, and the dataset and the run
 * it began are not there, so nothing may name them. */
static void txn_lost(ictx *c)
{
    pend_settle(c, 0);
    c->file_ready = 0;
    if (c->run_new) c->run = c->stats->run_id = 0;
    c->run_new = 0;
}

/* Abort the open transaction, if any. */
static void drop_txn(ictx *c)
{
    if (!c->w) return;
    slim_write_abort(c->w);
    c->w = NULL;
    txn_lost(c);
}

static int commit(ictx *c)
{
    if (!c->w) return 0;
    int rc = slim_write_commit(c->w);
    c->w = NULL;
    if (rc) {
        txn_lost(c);
        return store_fail(c, rc, NULL, "commit failed");
    }
    pend_settle(c, 1);
    c->run_new = 0;
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
        c->run_new = 1;
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

/* Rows read by one pread: about 512 KB (4 rows of 32000 F32), which stays
 * in L2 next to the sparsifier's workspace; a quarter of the system calls
 * of reading row by row (the copy is the same). */
#define READ_BYTES (512u << 10)
static uint32_t rows_per_read(size_t row_stride)
{
    return row_stride >= READ_BYTES ? 1 : (uint32_t)(READ_BYTES / row_stride);
}

static void free_ws(ictx *c)
{
    for (int i = 0; i < c->nws; i++) {
        slim_sparse_ws_free(c->ws[i]);
        free(c->rbuf[i]);
        slim_fhash_run_release(&c->hrun[i]);
    }
    free(c->ws); free(c->rbuf); free(c->hrun);
    c->ws = NULL; c->rbuf = NULL; c->hrun = NULL;
    c->nws = 0;
    c->wsV = 0;
}

static int ensure_ws(ictx *c, uint32_t V, uint32_t cap)
{
    int n = omp_get_max_threads();
    if (c->ws && c->wsV == V && c->wscap >= cap && c->nws >= n) return 0;
    free_ws(c);
    c->ws = calloc((size_t)n, sizeof *c->ws);
    c->rbuf = calloc((size_t)n, sizeof *c->rbuf);
    c->hrun = calloc((size_t)n, sizeof *c->hrun);
    if (!c->ws || !c->rbuf || !c->hrun) { free_ws(c); return SLIM_ENOMEM; }
    c->nws = n;
    /* rows_per_read's rows of any dtype: F32 is the widest */
    size_t rb = (size_t)V * 4 > READ_BYTES ? (size_t)V * 4 : READ_BYTES;
    rb = (rb + 63) & ~(size_t)63;
    for (int i = 0; i < n; i++)
        if (!(c->ws[i] = slim_sparse_ws_new(V, cap)) || !(c->rbuf[i] = aligned_alloc(64, rb)))
            return SLIM_ENOMEM;
    c->wsV = V;
    c->wscap = cap;
    return 0;
}

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Per thread, before any thread starts: a preparer and a CPU-time row. */
static int ensure_workers(ictx *c, int n)
{
    if (c->npr < n) {
        slim_preparer **pr = realloc(c->pr, (size_t)n * sizeof *pr);
        if (!pr) return SLIM_ENOMEM;
        c->pr = pr;
        for (; c->npr < n; c->npr++)
            if (slim_preparer_new(&c->pr[c->npr])) return SLIM_ENOMEM;
    }
    if (c->ntacc < n) {
        double (*t)[4] = realloc(c->tacc, (size_t)n * sizeof *t);
        if (!t) return SLIM_ENOMEM;
        c->tacc = t;
        c->ntacc = n;
    }
    memset(c->tacc, 0, (size_t)c->ntacc * sizeof *c->tacc);
    return 0;
}

/* A slot's per-sequence arrays: one slim_prepared and one bad-row slot per
 * sequence (and two more per split sequence). */
static int slot_reserve(islot *sl, size_t nseq)
{
    if (sl->ppn < nseq) {
        slim_prepared **pp = realloc(sl->pp, nseq * sizeof *pp);
        if (!pp) return SLIM_ENOMEM;
        sl->pp = pp;
        for (; sl->ppn < nseq; sl->ppn++)
            if (slim_prepared_new(&pp[sl->ppn])) return SLIM_ENOMEM;
    }
    if (sl->badcap < 3 * nseq + 1) {
        slim_badrow *br = realloc(sl->bad, (3 * nseq + 1) * sizeof *br);
        if (!br) return SLIM_ENOMEM;
        sl->bad = br;
        sl->badcap = 3 * nseq + 1;
    }
    return 0;
}

static void slot_release(islot *sl)
{
    slim_batch_release(&sl->b);
    for (size_t i = 0; i < sl->ppn; i++) slim_prepared_free(sl->pp[i]);
    free(sl->pp);
    free(sl->bad);
    memset(sl, 0, sizeof *sl);
}

/*
 * Sparsify rows [r0, r1) of sequence q (its dists are laid out), read a
 * few at a time into buf (pread: on the development VM a first pass over a
 * fresh mapping of page-cache pages ran at a third of pread's speed,
 * docs/BENCHMARKS.md) and, with hash (fh non-NULL, window win), each fed
 * to the input hash while it is in L2 (*th: seconds spent there, *tr:
 * reading).  On a bad or unreadable row fill *br and return nonzero.
 * stream0: sample stream of the batch's first position.
 */
static int sparsify_rows(ictx *c, slim_sparse_ws *ws, uint8_t *buf, slim_batch *b,
                         const slim_iseq *q, uint32_t r0, uint32_t r1, uint32_t V,
                         uint64_t stream0, slim_badrow *br, slim_fhash *fh,
                         const slim_fhash_win *win, slim_fhash_run *hr, double *th, double *tr)
{
    if (fh && slim_fhash_run_start(hr, win, q->rows_off + r0 * q->row_stride))
        fh = NULL;  /* the fold digests them */
    uint32_t R = rows_per_read(q->row_stride), have = 0;  /* rows [t0, t0 + have) in buf */
    for (uint32_t t = r0, t0 = r0; t < r1; t++) {
        if (t == t0 + have) {
            uint32_t want = r1 - t < R ? r1 - t : R;
            double w0 = now_s();
            size_t got = slim_pread_full(q->fd, buf, want * q->row_stride, q->rows_off + t * q->row_stride);
            *tr += now_s() - w0;
            t0 = t;
            have = (uint32_t)(got / q->row_stride);
            if (!have) {
                br->pos = t;
                br->err = errno ? errno : -1;
                return 1;
            }
        }
        const uint8_t *raw = buf + (size_t)(t - t0) * q->row_stride;
        const float *x = (const float *)(const void *)raw;
        if (q->dtype != SLIM_DT_F32) {
            float *row = slim_sparse_ws_row(ws);
            slim_row_to_f32(q->dtype, raw, V, row);
            x = row;
        }
        size_t p = q->dist_off + t;
        uint32_t bad;
        if (slim_sparsify_row(&c->sp, ws, x, V, stream0 + (p - b->ndist0), &b->dists[p], &bad)) {
            br->pos = t;
            br->id = bad;
            br->v = x[bad];  /* the message needs no second read of the row */
            return 1;
        }
        /* timed by the vDSO clock: a thread-CPU clock read is a system
         * call per row */
        if (fh) {
            double h0 = now_s();
            slim_fhash_feed(fh, hr, raw, q->row_stride);
            *th += now_s() - h0;
        }
    }
    return 0;
}

/* madvise(advice) over the pages of p[0..n); failure is harmless. */
static void advise(const void *p, uint64_t n, int advice)
{
    static uintptr_t pg;
    if (!pg) pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t at = (uintptr_t)p & ~(pg - 1);
    if (n) madvise((void *)at, (size_t)((uintptr_t)p + n - at), advice);
}

/*
 * The hash window of a slot's dense rows (sl->hashed, sl->win, and sl->hhi
 * the end of its rows in the hashed mapping); none when the workers do not
 * hash this batch (the fold digests its blocks then).  Batches ascend
 * through the file, so the next one's bytes (about as many) are read ahead
 * now: a cold file is read while this batch is worked on, as the hash
 * thread used to do.
 */
static void hash_window(ictx *c, islot *sl)
{
    slim_fhash *fh = &c->fh;
    const slim_batch *b = &sl->b;
    sl->hashed = 0;
    if (!c->fh_on || !b->nseq) return;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (size_t i = 0; i < b->nseq; i++) {
        const slim_iseq *q = &b->seqs[i];
        uint64_t n = (uint64_t)q->npos * q->row_stride;
        if (q->rows < fh->map || (uint64_t)(q->rows - fh->map) > fh->len - n) return;
        uint64_t a = (uint64_t)(q->rows - fh->map);
        if (a < lo) lo = a;
        if (a + n > hi) hi = a + n;
    }
    if (hi <= lo) return;
    advise(fh->map + hi, hi - lo < fh->len - hi ? hi - lo : fh->len - hi, MADV_WILLNEED);
    sl->hhi = hi;
    sl->hashed = slim_fhash_window(fh, lo, hi, &sl->win) == 0;
}

/* One unit's part of a sequence: rows [r0, r1) of sequence i sparsified
 * (dense input; a bad one in *br), then, with prep, the sequence validated
 * and encoded (every row of it sparsified by then).  Thread CPU time into
 * the thread's c->tacc row.  Nothing after an error (the slot will not be
 * written). */
static void seq_part(ictx *c, int tid, islot *sl, size_t i, uint32_t r0, uint32_t r1,
                     slim_badrow *br, int prep)
{
    if (__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) return;
    const slim_iseq *q = &sl->b.seqs[i];
    double t0 = thread_cpu_s(), t1 = t0, th = 0, tr = 0;
    int bad = 0;
    if (c->src->dense && r1 > r0) {
        bad = sparsify_rows(c, c->ws[tid], c->rbuf[tid], &sl->b, q, r0, r1, c->V, sl->stream0,
                            br, sl->hashed ? &c->fh : NULL, &sl->win, &c->hrun[tid], &th, &tr);
        t1 = thread_cpu_s();
    }
    double *a = c->tacc[tid];
    a[0] += t1 - t0 - th - tr;
    a[2] += th;
    a[3] += tr;
    if (bad || !prep) return;
    slim_seq_prepare(c->pr[tid], c->filekind, &c->prec, c->fileV, sl->b.tokens + q->tok_off, q->T,
                     sl->b.dists + q->dist_off, q->npos, sl->pp[i]);
    a[1] += thread_cpu_s() - t1;
}

/*
 * Unit u of a slot: one sequence, but the batch's last two (dense input)
 * as two units of half their rows each, the one that ends second encoding
 * the sequence: the batch reaches the writer sooner, and at the end of the
 * input the workers end together (a whole last sequence kept one waiting
 * for half a sequence's time on average).
 */
static void run_unit(ictx *c, int tid, islot *sl, size_t u)
{
    size_t nseq = sl->b.nseq, nwhole = nseq - sl->nsplit;
    if (u < nwhole) {
        seq_part(c, tid, sl, u, 0, sl->b.seqs[u].npos, &sl->bad[u], 1);
        return;
    }
    size_t k = (u - nwhole) / 2, i = nwhole + k;
    int half = (int)((u - nwhole) % 2);
    uint32_t np = sl->b.seqs[i].npos;
    slim_badrow *h = &sl->bad[nseq + 2 * k];
    seq_part(c, tid, sl, i, half ? np / 2 : 0, half ? np : np / 2, &h[half], 0);
    /* acquire/release: the other half's rows are visible here */
    if (__atomic_sub_fetch(&sl->halves_left[k], 1, __ATOMIC_ACQ_REL) == 0) {
        sl->bad[i] = h[0].pos != UINT32_MAX ? h[0] : h[1];
        if (sl->bad[i].pos == UINT32_MAX) seq_part(c, tid, sl, i, 0, 0, NULL, 1);
    }
}

/*
 * Fill a free slot from the input (on the main thread): its sequences, the
 * dense dists laid out (cap entries per position), its hash window and its
 * units.  A fill error keeps the sequences before it, its message in
 * sl->ferr for the writer (which reports in input order).
 */
static void fill_slot(ictx *c, islot *sl, slim_src *s, uint32_t V, size_t maxpos,
                      uint64_t base_done, uint64_t size)
{
    slim_batch *b = &sl->b;
    slim_batch_reset(b);
    sl->ferr[0] = 0;
    sl->eof = 0;
    double t0 = now_s();
    if (c->o->stop && *c->o->stop) {  /* an empty batch that ends the input */
        sl->frc = SLIM_EINTR;
        snprintf(sl->ferr, sizeof sl->ferr, "'%s': interrupted", s->path);
    } else sl->frc = slim_src_fill(s, V, maxpos, b, &sl->eof, sl->ferr, sizeof sl->ferr);
    c->stats->t_parse += now_s() - t0;
    uint32_t cap = slim_sparsifier_cap(&c->sp, V);
    size_t nseq = b->nseq;
    int rc = slot_reserve(sl, nseq);
    if (!rc && s->dense && b->positions)
        rc = slim_batch_reserve(b, 0, 0, b->positions, b->positions * cap);
    if (rc) {
        snprintf(sl->ferr, sizeof sl->ferr, "out of memory");
        sl->frc = rc;
        b->nseq = nseq = 0;
    }
    b->ndist0 = b->ndist;
    if (s->dense) {
        for (size_t i = 0, p = 0; i < nseq; i++) {
            slim_iseq *q = &b->seqs[i];
            q->dist_off = b->ndist + p;
            for (uint32_t t = 0; t < q->npos; t++, p++)
                b->entoff[b->ndist + p] = b->nent + p * cap;
        }
        b->ndist += b->positions;
        b->nent += b->positions * cap;
    }
    slim_batch_fix_pointers(b);
    sl->stream0 = c->seen;  /* sample streams: global position index */
    if (s->dense) c->seen += b->positions;
    hash_window(c, sl);
    sl->nsplit = s->dense && nseq >= 2 ? 2 : 0;
    for (size_t i = 0; i < nseq + 2 * sl->nsplit; i++) sl->bad[i] = (slim_badrow){ UINT32_MAX, 0, 0, 0 };
    sl->halves_left[0] = sl->halves_left[1] = 2;
    sl->nunits = sl->left = nseq + sl->nsplit;
    sl->taken = 0;
    if (s->fmt == SLIM_FMT_JSONL) sl->bytes_done = base_done + s->done_bytes;
    else sl->bytes_done = base_done + (s->N ? (uint64_t)((double)s->next / s->N * size) : 0);
}

/*
 * After its units, on the writer thread: fold the slot's hash window, and
 * find where the batch must be cut — before the first sequence with a bad
 * or unreadable dense row (its message in c->err; *nseq_ok sequences stay
 * valid), else at a fill error (the sequences before it are all there).
 */
static int check_slot(ictx *c, islot *sl, size_t *nseq_ok)
{
    const slim_batch *b = &sl->b;
    size_t nseq = b->nseq;
    int fold = sl->hashed;
    for (size_t i = 0; c->fh_on && i < nseq; i++)
        if (sl->bad[i].pos != UINT32_MAX && sl->bad[i].err) {  /* the file shrank: no hash for it */
            c->fh_lost = 1;
            fold = 0;
        }
    if (fold) {  /* the blocks no worker could digest: across sequences, outside rows, after a bad row */
        double h0 = thread_cpu_s();
        slim_fhash_fold(&c->fh, sl->hhi, &sl->win);
        c->stats->cpu_hash += thread_cpu_s() - h0;
    }
    const slim_src *s = c->src;
    for (size_t i = 0; i < nseq; i++) {
        const slim_iseq *q = &b->seqs[i];
        const slim_badrow *br = &sl->bad[i];
        if (br->pos == UINT32_MAX) continue;
        *nseq_ok = i;
        if (br->err) {
            snprintf(c->err, c->cap, "'%s': %s position %u: cannot read its logits (byte %llu): %s",
                     s->path, q->where, br->pos,
                     (unsigned long long)(q->rows_off + br->pos * q->row_stride),
                     br->err > 0 ? strerror(br->err) : "the file ended early (was it truncated?)");
            return SLIM_EIO;
        }
        float v = br->v;
        snprintf(c->err, c->cap, "'%s': %s position %u: logit of token %u is %s", s->path,
                 q->where, br->pos, br->id,
                 v != v ? "NaN" : v == INFINITY ? "+Inf" : "-Inf everywhere");
        return SLIM_EINVAL;
    }
    *nseq_ok = nseq;
    if (sl->frc) snprintf(c->err, c->cap, "%s", sl->ferr);  /* a bad row lies before it */
    return sl->frc;
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
    char etas[32] = "";  /* none when an input's size is unknown (standard input) */
    if (c->bytes_total) snprintf(etas, sizeof etas, ", ETA %.0fs", eta);
    fprintf(stderr, "\r%lld positions, %.0f positions/s, %.1f MB written%s   %s",
            (long long)c->stats->positions, rate, mb, etas, final ? "\n" : "");
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
    if ((rc = pend_write(c))) return rc;  /* earlier inputs' rows ride with this batch */
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

/* ---------------------------------------------------------------- files */

/* The input's row of the run record: pending (see pend_input) until the
 * next transaction commits: the next file's first batch, or the run's end
 * (a commit is a few syncs: two at the end of every run were ~2 % of a
 * one-shot dense ingest here, and two a file most of a run over many
 * small files). */
static int record_input(ictx *c, const char *path, const char *hash)
{
    if (!c->run) return 0;
    if (c->npend == c->pendcap) {
        int cap = c->pendcap ? 2 * c->pendcap : 16;
        pend_input *p = realloc(c->pend, (size_t)cap * sizeof *p);
        if (!p) { snprintf(c->werr, sizeof c->werr, "out of memory"); return SLIM_ENOMEM; }
        c->pend = p;
        c->pendcap = cap;
    }
    pend_input *p = &c->pend[c->npend];
    if (!(p->path = strdup(path))) { snprintf(c->werr, sizeof c->werr, "out of memory"); return SLIM_ENOMEM; }
    snprintf(p->hash, sizeof p->hash, "%s", hash);
    p->added = c->f_added;
    p->skipped = c->f_skipped;
    p->refused = c->f_refused;
    p->in_txn = 0;
    c->npend++;
    return 0;
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
                    char *path, size_t pcap, char hash[SLIM_FILE_HASH_CAP])
{
    if (S_ISDIR(sb->st_mode)) {  /* an npy directory: not hashed */
        snprintf(path, pcap, "%s", files[0]);
        snprintf(hash, SLIM_FILE_HASH_CAP, "directory");
        return 0;
    }
    char all[SLIM_MAXMAPS * SLIM_FILE_HASH_CAP] = "", h[SLIM_FILE_HASH_CAP];
    size_t n = 0;
    path[0] = 0;
    for (int i = 0; i < nf; i++) {
        int rc = slim_file_hash(files[i], h, c->err, c->cap);
        if (rc) return rc;
        n += (size_t)snprintf(all + n, sizeof all - n, "%s", h);
        size_t pl = strlen(path);
        snprintf(path + pl, pcap - pl, "%s%s", i ? "+" : "", files[i]);
    }
    if (nf == 1) { memcpy(hash, h, SLIM_FILE_HASH_CAP); return 0; }
    /* several arrays: the same hash of their hash strings, concatenated */
    if (slim_hash_bytes(all, n, hash)) { snprintf(c->err, c->cap, "out of memory"); return SLIM_ENOMEM; }
    return 0;
}

/* ----------------------------------------------------------- scheduling */

/* Under c->mu: the oldest slot with a unit not yet handed out (that unit's
 * number in *u), or NULL. */
static islot *next_unit(ictx *c, size_t *u)
{
    islot *best = NULL;
    for (int k = 0; k < NSLOT; k++) {
        islot *sl = &c->slot[k];
        if (sl->state == SLOT_WORK && sl->taken < sl->nunits && (!best || sl->no < best->no))
            best = sl;
    }
    if (best) *u = best->taken++;
    return best;
}

/* Under c->mu: one of sl's units has ended; the last hands sl to the writer. */
static void unit_done(ictx *c, islot *sl)
{
    if (--sl->left == 0) {
        sl->state = SLOT_DONE;
        pthread_cond_broadcast(&c->cv);
    }
}

typedef struct worker { ictx *c; int tid; } worker;

/* Workers 1.. (the main thread is worker 0 when it has nothing to fill). */
static void *worker_main(void *arg)
{
    const worker *w = arg;
    ictx *c = w->c;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        size_t u;
        islot *sl = next_unit(c, &u);
        if (!sl) {
            if (c->quit) break;
            pthread_cond_wait(&c->cv, &c->mu);
            continue;
        }
        pthread_mutex_unlock(&c->mu);
        run_unit(c, w->tid, sl, u);
        pthread_mutex_lock(&c->mu);
        unit_done(c, sl);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* Under no lock: sl back to the filler. */
static void slot_free(ictx *c, islot *sl)
{
    pthread_mutex_lock(&c->mu);
    sl->state = SLOT_FREE;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Batches one commit may take when the disk is slow (see group_more), and
 * the positions after which it takes no more (LMDB keeps a transaction's
 * pages in memory until the commit, and caps how many it may dirty). */
#define GROUP_MAX 8
#define GROUP_MAX_POS 65536

/* On the writer thread: commits the open transaction (its batches); when
 * that fails, nothing of them is in the store (a store error such as a full
 * map leaves the transaction unable to commit), so none of them counts as
 * added and the run record and "committed N" say what is. */
static int commit_batches(ictx *c)
{
    double t0 = now_s();
    int rc = commit(c);
    if (!rc) c->stats->commits++;
    if (rc && c->txn_batches) {
        c->stats->added = c->txn_before.added;
        c->stats->positions = c->txn_before.positions;
        c->stats->entries = c->txn_before.entries;
        c->stats->shared_seqs = c->txn_before.shared_seqs;
        c->stats->shared_positions = c->txn_before.shared_positions;
        c->f_added = c->txn_f_added;
    }
    c->txn_batches = 0;
    c->commit_end = now_s();
    c->commit_len = c->commit_end - t0;
    return rc;
}

/*
 * Whether the batch just written (number no) should leave the transaction
 * open for the next one.  A commit is mostly a wait for the disk (LMDB's
 * syncs and SQLite's: 9-19 ms each during a dense ingest here, a dense
 * batch being ~13 ms of work); on a slower disk the writer would spend
 * all its time committing and the workers would wait for it.  So a batch is
 * committed on its own unless less time has passed since the last commit
 * ended than that commit took: the writer then waits for syncs at most
 * about half the time, and on a fast disk every batch is still a commit of
 * its own.  The input's last batch is always committed (the writer thread
 * ends with the input, and a transaction must not outlive the thread that
 * began it), and one commit takes at most GROUP_MAX batches, and none after
 * GROUP_MAX_POS positions.
 */
static int group_more(ictx *c, uint64_t no)
{
    if (c->txn_batches >= GROUP_MAX || c->stats->positions - c->txn_before.positions >= GROUP_MAX_POS
        || now_s() - c->commit_end >= c->commit_len)
        return 0;
    pthread_mutex_lock(&c->mu);
    int last = c->fill_end && no + 1 == c->nfilled;
    pthread_mutex_unlock(&c->mu);
    return !last;
}

/* A worked slot's checks, writes and commit, on the writer thread: an input
 * error (bad row, fill error) into *irc with its message in c->err, a
 * store error returned with its message in c->werr.  The slot is freed as
 * soon as its sequences are in the transaction (the records are copied
 * there), before the commit, so that the workers spend a commit's wait on
 * the next batches instead of waiting for the slot. */
static int write_slot(ictx *c, islot *sl, int *irc, int *freed)
{
    double t0 = now_s(), c0 = thread_cpu_s();
    size_t ok;
    *irc = check_slot(c, sl, &ok);
    if (*irc == SLIM_EINVAL) { c->f_refused++; c->stats->refused++; }  /* the bad unit */
    if (!c->txn_batches) {
        /* the counters this thread keeps, field by field: the main thread
         * updates others (its timings) meanwhile */
        slim_ingest_stats *b = &c->txn_before;
        b->added = c->stats->added;
        b->positions = c->stats->positions;
        b->entries = c->stats->entries;
        b->shared_seqs = c->stats->shared_seqs;
        b->shared_positions = c->stats->shared_positions;
        c->txn_f_added = c->f_added;
    }
    c->txn_batches++;
    uint64_t done = sl->bytes_done, no = sl->no;
    int rc = write_seqs(c, &sl->b, sl->pp, c->src, ok);
    if ((*freed = !rc && !*irc)) slot_free(c, sl);
    double t1 = now_s();
    c->stats->batches++;
    if (!rc && !*irc && group_more(c, no)) {
        /* the transaction stays open for the next batch */
    } else if (!rc) rc = commit_batches(c);
    else if (c->w) {
        /* the sequences before a refused one are kept: committed here, on
         * the thread whose transaction it is (an LMDB write transaction must
         * end on the thread that began it), the refusal's message kept */
        char keep[sizeof c->werr];
        memcpy(keep, c->werr, sizeof keep);
        commit_batches(c);
        memcpy(c->werr, keep, sizeof keep);
    } else c->txn_batches = 0;
    c->stats->t_write += t1 - t0;
    c->stats->t_commit += now_s() - t1;
    c->stats->cpu_write += thread_cpu_s() - c0;
    if (!rc) {
        c->bytes_done = done;
        progress(c, 0);
    }
    return rc;
}

/* The writer thread: slots in input order as their units end. */
static void *writer_main(void *arg)
{
    ictx *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        islot *sl = NULL;
        for (int k = 0; k < NSLOT; k++)
            if (c->slot[k].state == SLOT_DONE && c->slot[k].no == c->nwritten) sl = &c->slot[k];
        if (!sl) {
            if (c->fill_end && c->nwritten == c->nfilled) break;
            pthread_cond_wait(&c->cv, &c->mu);
            continue;
        }
        pthread_mutex_unlock(&c->mu);
        int irc = 0, freed, rc = write_slot(c, sl, &irc, &freed);
        pthread_mutex_lock(&c->mu);
        if (!freed) sl->state = SLOT_FREE;
        c->nwritten++;
        if (rc || irc) {
            c->wrc = rc;
            c->irc = irc;
            __atomic_store_n(&c->stop, 1, __ATOMIC_RELAXED);
        }
        pthread_cond_broadcast(&c->cv);
    }
    if (c->txn_batches) {
        /* not reached (an input's last batch and an error both commit), but
         * a transaction must not outlive the thread that began it */
        pthread_mutex_unlock(&c->mu);
        int rc = commit_batches(c);
        pthread_mutex_lock(&c->mu);
        if (rc && !c->wrc) c->wrc = rc;
    }
    c->wdone = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/*
 * The batches of one input through the slots (see islot): the main thread
 * fills a slot whenever one is free and works on units otherwise; one
 * writer thread writes the slots in input order, frees each and commits
 * it.  Returns the first error in input order (its message in c->err).
 */
static int batch_loop(ictx *c, slim_src *sp, uint32_t V, size_t maxpos, uint64_t size)
{
    uint64_t base_done = c->bytes_done;
    int n = omp_get_max_threads() > 0 ? omp_get_max_threads() : 1;
    int rc = ensure_workers(c, n);
    uint32_t cap = slim_sparsifier_cap(&c->sp, V);
    if (!rc && sp->dense) rc = ensure_ws(c, V, cap);
    if (rc) { snprintf(c->err, c->cap, "out of memory"); return rc; }
    if (c->fh_on && sp->dense) {
        /* a batch's rows: maxpos positions and at most a sequence more, for
         * each slot; without the room, the fold digests every block
         * (slower, the same) */
        uint64_t span = (uint64_t)(maxpos + sp->T) * sp->W * 4 / SLIM_HASH_BLOCK + 2;
        slim_fhash_reserve(&c->fh, span, NSLOT);
    }
    c->src = sp;
    c->V = V;
    c->nfilled = c->nwritten = 0;
    c->fill_end = c->stop = c->wdone = c->quit = c->wrc = c->irc = 0;
    for (int k = 0; k < NSLOT; k++) c->slot[k].state = SLOT_FREE;
    pthread_t wt, *th = malloc((size_t)n * sizeof *th);
    worker *wk = malloc((size_t)n * sizeof *wk);
    int nth = 0, e = th && wk ? pthread_create(&wt, NULL, writer_main, c) : ENOMEM;
    if (e) {
        snprintf(c->err, c->cap, "cannot start the writer thread: %s", strerror(e));
        free(th);
        free(wk);
        return SLIM_EIO;
    }
    for (int t = 1; t < n; t++) {
        wk[nth] = (worker){ c, t };
        if (pthread_create(&th[nth], NULL, worker_main, &wk[nth])) break;  /* fewer workers */
        nth++;
    }
    double t0 = now_s(), fill = 0;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        islot *fs = NULL;
        for (int k = 0; k < NSLOT && !c->fill_end && !c->stop; k++)
            if (c->slot[k].state == SLOT_FREE) fs = &c->slot[k];
        if (fs) {
            pthread_mutex_unlock(&c->mu);
            double f0 = now_s();
            fill_slot(c, fs, sp, V, maxpos, base_done, size);
            fill += now_s() - f0;
            pthread_mutex_lock(&c->mu);
            fs->no = c->nfilled++;
            fs->state = fs->nunits ? SLOT_WORK : SLOT_DONE;
            if (fs->eof || fs->frc) c->fill_end = 1;
            pthread_cond_broadcast(&c->cv);
            continue;
        }
        size_t u;
        islot *sl = next_unit(c, &u);
        if (sl) {
            pthread_mutex_unlock(&c->mu);
            run_unit(c, 0, sl, u);
            pthread_mutex_lock(&c->mu);
            unit_done(c, sl);
            continue;
        }
        if (c->wdone) break;
        pthread_cond_wait(&c->cv, &c->mu);
    }
    c->quit = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    for (int t = 0; t < nth; t++) pthread_join(th[t], NULL);
    pthread_join(wt, NULL);
    free(th);
    free(wk);
    c->stats->t_sparsify += now_s() - t0 - fill;
    for (int t = 0; t < c->ntacc; t++) {
        c->stats->cpu_sparsify += c->tacc[t][0];
        c->stats->cpu_prepare += c->tacc[t][1];
        c->stats->cpu_hash += c->tacc[t][2];
        c->stats->t_read += c->tacc[t][3];
    }
    if (c->wrc) {
        snprintf(c->err, c->cap, "%s", c->werr);
        return c->wrc;
    }
    return c->irc;
}

/* The content hash of a one-file input that the workers do not digest,
 * computed on its own thread while the file is ingested (it reads every
 * byte, which would otherwise run alone before the workers start).  A
 * mapped file (sparse safetensors) is hashed from the mapping, no copy. */
typedef struct hjob {
    const char *path;
    const uint8_t *map; size_t len;  /* the whole file mapped, or NULL */
    char hash[SLIM_FILE_HASH_CAP];
    char err[512];
    int rc;
    double cpu;
} hjob;

static void *hash_job(void *arg)
{
    hjob *h = arg;
    double c0 = thread_cpu_s();
    if (h->map) {
        if ((h->rc = slim_hash_bytes(h->map, h->len, h->hash)))  /* = the read() one */
            snprintf(h->err, sizeof h->err, "out of memory");
    } else h->rc = slim_file_hash(h->path, h->hash, h->err, sizeof h->err);
    h->cpu = thread_cpu_s() - c0;
    return NULL;
}

static int ingest_file(ictx *c, const char *const *files, int nf, int fmt)
{
    char hash[SLIM_FILE_HASH_CAP] = "", ipath[4096];
    const char *path = files[0];
    slim_src s;
    c->f_added = c->f_skipped = c->f_refused = 0;
    struct stat sb;
    int in = nf == 1 && !strcmp(path, "-");  /* standard input: hashed as it is read */
    memset(&sb, 0, sizeof sb);
    if (!in && stat(path, &sb) < 0) {
        snprintf(c->err, c->cap, "cannot open '%s': %s", path, strerror(errno));
        return SLIM_EIO;
    }
    /* one regular file: digested by the workers (dense safetensors) or
     * hashed on a thread of its own (after the same open check
     * slim_file_hash makes first, so the message is the same) */
    int async = nf == 1 && S_ISREG(sb.st_mode), rc = 0, fd;
    hjob hj = { .path = path };
    pthread_t hth;
    if (async) {
        if ((fd = open(path, O_RDONLY)) < 0) {
            snprintf(c->err, c->cap, "cannot open '%s': %s", path, strerror(errno));
            return SLIM_EIO;
        }
        close(fd);
        snprintf(ipath, sizeof ipath, "%s", path);
    } else if (in) snprintf(ipath, sizeof ipath, "-");
    else if ((rc = input_id(c, files, nf, &sb, ipath, sizeof ipath, hash))) return rc;
    if ((rc = open_src(c, &s, files, nf, fmt))) return rc;
    if (async) {
        if (s.fmt == SLIM_FMT_SAFETENSORS && s.ts.nmaps == 1
            && s.ts.maplen[0] == (size_t)sb.st_size) {
            hj.map = s.ts.map[0];
            hj.len = s.ts.maplen[0];
        }
        int fh_ok = hj.map && s.dense && !slim_fhash_init(&c->fh, hj.map, hj.len);
        if (fh_ok && slim_fhash_use_fd(&c->fh, s.ts.fd[0])) {
            slim_fhash_release(&c->fh);
            fh_ok = 0;
        }
        if (fh_ok) c->fh_on = 1, async = 0;
        else if (pthread_create(&hth, NULL, hash_job, &hj)) { hash_job(&hj); async = 0; }
    }
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
        /* entry pool of a batch: positions x K; keep it under 8 MB (for
         * top-5 % of V = 32000, 640 positions: five sequences of 128; a
         * fill stops at the first whole sequence that reaches maxpos).  The
         * slots' pools are most of the fresh memory an ingest touches,
         * and a first touch costs 0.06-2 ms per MB on the development VM
         * (zeroed huge pages the host backs, by the minute): with two
         * 16 MB pools a one-shot dense ingest touched 78 MB of huge pages,
         * with two 8 MB ones 39 MB, with four (NSLOT) 61 MB.  Half as many
         * positions a batch cost nothing measurable at the disk's own speed
         * (alternated pairs, docs/BENCHMARKS.md, session 7): there is no
         * barrier between batches, and commits group when they are slow;
         * on a slow disk they need the four slots (see NSLOT).  (32 MB
         * pools had run ~5 % slower, with a barrier per batch then.) */
        size_t per = (size_t)slim_sparsifier_cap(&c->sp, V) * 8 + 1, fit = (8u << 20) / per;
        fit = fit > s.T ? fit - s.T + 1 : 1;
        if (maxpos > fit) maxpos = fit;
    }
    if (!rc) rc = batch_loop(c, &s, V, maxpos, (uint64_t)sb.st_size);
    if (async) pthread_join(hth, NULL);
    if (c->fh_on) {
        /* what the workers left (everything after an early stop), only
         * when there is a run to record it in */
        double h0 = thread_cpu_s();
        if (c->fh_lost) snprintf(hash, sizeof hash, "unknown");  /* not recorded as a hash */
        else if (c->run) slim_fhash_final(&c->fh, hash);
        c->stats->cpu_hash += thread_cpu_s() - h0;
        slim_fhash_release(&c->fh);
        c->fh_on = c->fh_lost = 0;
    } else if (in) {
        /* a hash of what was read only when all of it was: a run that
         * stopped early leaves the rest of the stream unread */
        if (!s.at_eof || slim_fhash_final(&s.sh, hash)) snprintf(hash, sizeof hash, "unknown");
    } else if (nf == 1 && S_ISREG(sb.st_mode)) {
        c->stats->cpu_hash += hj.cpu;
        memcpy(hash, hj.hash, sizeof hash);
        if (!rc && hj.rc) { rc = hj.rc; snprintf(c->err, c->cap, "%s", hj.err); }
        else if (hj.rc) snprintf(hash, sizeof hash, "unknown");  /* not recorded as a hash */
    }
    progress(c, 0);
    drop_txn(c);
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
    ictx c = { .st = st, .o = o, .stats = stats, .err = err, .cap = cap,
               .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
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
        if (!strcmp(files[i], "-")) { c.bytes_total = 0; break; }  /* no ETA */
        if (stat(files[i], &sb) == 0) c.bytes_total += (uint64_t)sb.st_size;
    }
    c.t0 = c.tlast = now_s();
    for (int i = 0; i < n && !rc;) {
        /* .npy files named one after another are the arrays of one input */
        int fmt = o->format, nf = 1, f2;
        struct stat sb;
        if (fmt == SLIM_FMT_AUTO && (rc = slim_detect_format(files[i], &fmt, err, cap))) break;
        if (fmt == SLIM_FMT_NPY && stat(files[i], &sb) == 0 && S_ISREG(sb.st_mode))
            while (i + nf < n && nf < SLIM_MAXMAPS && stat(files[i + nf], &sb) == 0
                   && S_ISREG(sb.st_mode) && (o->format == SLIM_FMT_NPY
                   || (slim_detect_format(files[i + nf], &f2, err, cap) == 0 && f2 == SLIM_FMT_NPY)))
                nf++;
        rc = ingest_file(&c, files + i, nf, fmt);
        i += nf;
    }
    if (c.run) {
        int r2 = tx(&c);
        const char *status = rc == SLIM_EINTR ? "interrupted" : rc ? "failed" : "ok";
        if (!r2) r2 = pend_write(&c);
        if (!r2) r2 = slim_write_run_end(c.w, c.run, status, stats->added, stats->skipped,
                                         stats->refused);
        if (!r2) r2 = commit(&c);
        else drop_txn(&c);
        if (!rc && r2) { rc = r2; snprintf(err, cap, "%s", c.werr); }
    }
    stats->seconds = now_s() - c.t0;
    progress(&c, 1);
    if (slim_dataset_get(st, o->dataset, &di) == 0) stats->bytes_after = di.record_bytes;
    else stats->bytes_after = stats->bytes_before;
    for (int k = 0; k < NSLOT; k++) slot_release(&c.slot[k]);
    free_ws(&c);
    for (int i = 0; i < c.npr; i++) slim_preparer_free(c.pr[i]);
    free(c.pr);
    free(c.tacc);
    free(c.wseq);
    for (int i = 0; i < c.npend; i++) free(c.pend[i].path);
    free(c.pend);
    slim_tok_free(c.tok);
    return rc;
}
