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
#include "vocab.h"
#include "../train/tokenizer.h"

typedef struct xctx {
    slim_tok *tok;
    const char *path;           /* the text file, for messages */
    const char *text;
    uint32_t ctx;               /* window length, marker included */
    int64_t bos;                /* <|endoftext|> id or -1 */
    uint32_t *ids;              /* (text length) encode buffer */
    uint32_t *pool;             /* (npool) every window's tokens, back to back */
    size_t npool, poolcap;
    size_t *off;                /* (nwin) window start in pool */
    uint32_t *len;              /* (nwin) window length */
    size_t nwin, wincap;
    char *err;
    size_t cap;
    int rc;
} xctx;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int grow(xctx *x, size_t need)
{
    if (x->npool + need > x->poolcap) {
        size_t nc = x->poolcap ? x->poolcap : 65536;
        while (nc < x->npool + need) nc *= 2;
        uint32_t *p = realloc(x->pool, nc * sizeof *p);
        if (!p) return SLIM_ENOMEM;
        x->pool = p;
        x->poolcap = nc;
    }
    if (x->nwin == x->wincap) {
        size_t nc = x->wincap ? 2 * x->wincap : 1024;
        size_t *o = realloc(x->off, nc * sizeof *o);
        if (o) x->off = o;
        uint32_t *l = realloc(x->len, nc * sizeof *l);
        if (l) x->len = l;
        if (!o || !l) return SLIM_ENOMEM;
        x->wincap = nc;
    }
    return 0;
}

/* One document: encoded, then cut into windows of at most ctx tokens, each
 * starting with the marker (as the built-in teacher scores text). */
static void add_doc(void *arg, size_t off, size_t n)
{
    xctx *x = arg;
    size_t m, win = x->ctx - (x->bos >= 0);
    if (x->rc) return;
    if ((x->rc = slim_tok_encode(x->tok, x->text + off, n, x->ids, n ? n : 1, &m))) {
        snprintf(x->err, x->cap, "'%s': cannot tokenise the text at byte %zu", x->path, off);
        return;
    }
    for (size_t i = 0; i < m; i += win) {
        size_t w = m - i < win ? m - i : win;
        if ((x->rc = grow(x, w + 1))) { snprintf(x->err, x->cap, "out of memory"); return; }
        x->off[x->nwin] = x->npool;
        if (x->bos >= 0) x->pool[x->npool++] = (uint32_t)x->bos;
        memcpy(x->pool + x->npool, x->ids + i, w * sizeof *x->ids);
        x->npool += w;
        x->len[x->nwin] = (uint32_t)(w + (x->bos >= 0));
        x->nwin++;
    }
}

static int read_all(const char *path, char **out, size_t *n, char *err, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, cap, "cannot open '%s': %s", path, strerror(errno)); return SLIM_EIO; }
    size_t sz = 0, c = 1 << 16, r;
    char *b = malloc(c);
    while (b && (r = fread(b + sz, 1, c - sz, f)) > 0) {
        sz += r;
        if (sz < c) continue;
        char *nb = realloc(b, c *= 2);
        if (!nb) { free(b); b = NULL; }
        else b = nb;
    }
    int rc = !b ? SLIM_ENOMEM : ferror(f) ? SLIM_EIO : 0;
    if (rc == SLIM_EIO) snprintf(err, cap, "cannot read '%s': %s", path, strerror(errno));
    if (rc == SLIM_ENOMEM) snprintf(err, cap, "out of memory");
    fclose(f);
    if (rc) { free(b); return rc; }
    *out = b;
    *n = sz;
    return 0;
}

/* A slim tokenizer file, or anything else as a Hugging Face tokenizer.json. */
static int load_tok(const char *path, slim_tok **out, char *err, size_t cap)
{
    char head[16] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, cap, "cannot open '%s': %s", path, strerror(errno)); return SLIM_EIO; }
    size_t n = fread(head, 1, sizeof head - 1, f);
    fclose(f);
    int rc = n >= 14 && !memcmp(head, "slim-tokenizer", 14) ? slim_tok_load(path, out, err, cap)
                                                            : slim_tok_load_hf(path, out, err, cap);
    if (rc) { *out = NULL; return rc; }
    if (slim_tok_kind(*out) != SLIM_TOK_BYTEBPE) {
        snprintf(err, cap, "'%s': only byte-level BPE tokenizers can encode text", path);
        return SLIM_EINVAL;
    }
    return 0;
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
    for (size_t i = 0; i < x->nwin && !rc; i++) {
        const uint32_t *tk = x->pool + x->off[i];
        int64_t seq;
        rc = slim_write_find_tokens(w, ds, tk, x->len[i], &seq);
        if (rc == 0) { s->skipped++; continue; }
        if (rc != SLIM_ENOTFOUND) { what = "cannot look for duplicates"; break; }
        char ext[48];
        snprintf(ext, sizeof ext, "text-%zu", i);
        if ((rc = slim_write_seq(w, ds, run, ext, tk, x->len[i], NULL, 0, NULL, &seq))) {
            s->refused++;
            what = "cannot write a window";
            break;
        }
        s->added++;
        since += x->len[i];
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
    return rc;
}

int slim_text_ingest(slim_store *st, const slim_ingest_opts *io, const char *tokenizer,
                     const char *text, uint32_t ctx, slim_ingest_stats *stats,
                     char *err, size_t cap)
{
    double t0 = now_s();
    memset(stats, 0, sizeof *stats);
    xctx x = {.path = text, .ctx = ctx, .err = err, .cap = cap, .bos = -1};
    char *buf = NULL;
    size_t n = 0;
    const char *tpath = tokenizer ? tokenizer : io->vocab_path;
    err[0] = 0;
    if (!tpath) { snprintf(err, cap, "--text needs --tokenizer (or --vocab)"); return SLIM_EINVAL; }
    if (ctx < 2) { snprintf(err, cap, "context of %u tokens is too short (at least 2)", ctx); return SLIM_EINVAL; }
    int rc = load_tok(tpath, &x.tok, err, cap);
    uint32_t V = x.tok ? slim_tok_size(x.tok) : 0, id;
    if (!rc && io->vocab_size && io->vocab_size < V) {
        snprintf(err, cap, "'%s': tokenizer has %u tokens but --vocab-size is %u", tpath, V,
                 io->vocab_size);
        rc = SLIM_EMISMATCH;
    }
    if (!rc && io->vocab_size) V = io->vocab_size;
    if (!rc && slim_tok_find(x.tok, "<|endoftext|>", 13, &id) == 0) x.bos = id;
    if (!rc) rc = read_all(text, &buf, &n, err, cap);
    if (!rc) {
        x.text = buf;
        if (!(x.ids = malloc((n ? n : 1) * sizeof *x.ids))) { snprintf(err, cap, "out of memory"); rc = SLIM_ENOMEM; }
    }
    if (!rc) {
        slim_teacher_split_docs(buf, n, add_doc, &x);
        rc = x.rc;
        if (!rc && !x.nwin) { snprintf(err, cap, "'%s': no text to ingest", text); rc = SLIM_EINVAL; }
    }
    free(x.ids);
    x.ids = NULL;
    stats->t_parse = now_s() - t0;
    if (!rc) {
        stats->bytes_before = record_bytes(st, io->dataset);
        double t1 = now_s();
        rc = write_windows(st, io, &x, V, stats);
        stats->t_write = now_s() - t1;
        stats->bytes_after = record_bytes(st, io->dataset);
    }
    free(buf);
    free(x.pool);
    free(x.off);
    free(x.len);
    slim_tok_free(x.tok);
    stats->seconds = now_s() - t0;
    return rc;
}
