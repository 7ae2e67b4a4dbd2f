/*
 * text.c — token-only text ingest (text.h): a corpus tokenised into windows
 * and stored with no distributions, so slim-train can train a teacher on it
 * with CE.  Everything is read and tokenised first; the store is touched
 * only once the whole input is known to be good.
 */
#include "text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "teacher.h"
#include "toklist.h"
#include "vocab.h"
#include "../train/tokenizer.h"

typedef struct xctx {
    slim_tok *tok;
    const char *path;           /* the text file, for messages */
    slim_toklist win;           /* the windows to store */
    char *err;
    size_t cap;
} xctx;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int64_t record_bytes(slim_store *st, const char *name)
{
    slim_dataset_info di;
    return slim_dataset_get(st, name, &di) ? 0 : di.record_bytes;
}

/* The store part: dataset, run and vocabulary in the first transaction, then
 * the windows, committed in batches. */
static int write_windows(slim_store *st, const slim_ingest_opts *io, xctx *x, uint32_t V,
                         slim_ingest_stats *s)
{
    char hash[65];
    slim_tok_hash(x->tok, hash);
    slim_precision prec;
    slim_precision_parse(io->precision ? io->precision : "logprob:0.01", &prec);
    slim_teacher t = {.name = io->teacher ? io->teacher : "text", .vocab_size = V,
                      .tokenizer_hash = hash, .temperature = 1.0, .source = SLIM_SOURCE_LOGITS};
    size_t batch = io->batch_positions ? io->batch_positions : 65536, since = 0;
    slim_writer *w = NULL;
    int64_t ds = 0, run = 0;
    int rc = slim_write_begin(st, &w);
    const char *what = "cannot begin a write";
    if (!rc && (rc = slim_write_dataset(w, io->dataset, &t, SLIM_KIND_LOGITS, "none", &prec, &ds)))
        what = "cannot add to dataset";
    if (!rc && (rc = slim_write_run_begin(w, ds, "slim-ingest", io->args_json ? io->args_json : "[]",
                                          &run)))
        what = "cannot record the run";
    if (!rc && (rc = slim_ingest_write_vocab(w, ds, x->tok, hash)))
        what = "cannot record the tokenizer's vocabulary";
    s->run_id = run;
    for (size_t i = 0; i < x->win.n && !rc; i++) {
        const uint32_t *tk = x->win.pool + x->win.off[i];
        int64_t seq;
        rc = slim_write_find_tokens(w, ds, tk, x->win.len[i], &seq);
        if (rc == 0) { s->skipped++; continue; }
        if (rc != SLIM_ENOTFOUND) { what = "cannot look for duplicates"; break; }
        char ext[48];
        snprintf(ext, sizeof ext, "text-%zu", i);
        if ((rc = slim_write_seq(w, ds, run, ext, tk, x->win.len[i], NULL, 0, NULL, &seq))) {
            s->refused++;
            what = "cannot write a window";
            break;
        }
        s->added++;
        since += x->win.len[i];
        if (since >= batch) {
            if ((rc = slim_write_commit(w))) { w = NULL; what = "cannot commit"; break; }
            s->committed_added = s->added;
            since = 0;
            if ((rc = slim_write_begin(st, &w))) { w = NULL; what = "cannot begin a write"; }
        }
    }
    if (!rc && (rc = slim_write_run_end(w, run, "done", s->added, s->skipped, s->refused)))
        what = "cannot record the run";
    if (!rc) {
        rc = slim_write_commit(w);  /* frees the writer even when it fails */
        w = NULL;
        if (rc) what = "cannot commit";
        else s->committed_added = s->added;
    }
    if (w) slim_write_abort(w);
    if (rc) snprintf(x->err, x->cap, "'%s': %s: %s", x->path, what, slim_errmsg(st));
    if (rc && s->committed_added) {
        /* earlier batches (and the run row) are committed: record how the
         * run ended, so it does not stay 'running' (best effort) */
        if (slim_write_begin(st, &w) == 0) {
            if (slim_write_run_end(w, run, "failed", s->committed_added, s->skipped,
                                   s->refused) == 0)
                slim_write_commit(w);
            else
                slim_write_abort(w);
        }
    }
    return rc;
}

int slim_text_ingest(slim_store *st, const slim_ingest_opts *io, const char *tokenizer,
                     const char *text, uint32_t ctx, slim_ingest_stats *stats,
                     char *err, size_t cap)
{
    double t0 = now_s();
    memset(stats, 0, sizeof *stats);
    xctx x = {.path = text, .err = err, .cap = cap};
    char *buf = NULL;
    size_t n = 0;
    const char *tpath = tokenizer ? tokenizer : io->vocab_path;
    err[0] = 0;
    if (!tpath) { snprintf(err, cap, "--text needs --tokenizer (or --vocab)"); return SLIM_EINVAL; }
    int rc = slim_tok_open_encoder(tpath, &x.tok, err, cap);
    uint32_t V = x.tok ? slim_tok_size(x.tok) : 0, id;
    int64_t bos = -1;
    if (!rc && io->vocab_size && io->vocab_size < V) {
        snprintf(err, cap, "'%s': tokenizer has %u tokens but --vocab-size is %u", tpath, V,
                 io->vocab_size);
        rc = SLIM_EMISMATCH;
    }
    if (!rc && io->vocab_size) V = io->vocab_size;
    if (!rc && slim_tok_find(x.tok, "<|endoftext|>", 13, &id) == 0) bos = id;
    if (!rc) rc = slim_read_whole(text, &buf, &n, err, cap);
    if (!rc) rc = slim_toklist_add_text(&x.win, x.tok, bos, ctx, text, buf, n, err, cap);
    if (!rc && !x.win.n) { snprintf(err, cap, "'%s': no text to ingest", text); rc = SLIM_EINVAL; }
    free(buf);
    stats->t_parse = now_s() - t0;
    if (!rc) {
        stats->bytes_before = record_bytes(st, io->dataset);
        double t1 = now_s();
        rc = write_windows(st, io, &x, V, stats);
        stats->t_write = now_s() - t1;
        stats->bytes_after = record_bytes(st, io->dataset);
    }
    slim_toklist_release(&x.win);
    slim_tok_free(x.tok);
    stats->seconds = now_s() - t0;
    return rc;
}
