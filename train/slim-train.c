/*
 * slim-train — train a student from a store snapshot, or evaluate one
 * (docs/TRAIN.md).  Thin: argument parsing, the store, run records; the
 * work is in libslimtrain (trainer.h).
 */
#include "slim_tool.h"
#include "../train/storesrc.h"
#include "../train/tokenizer.h"
#include "../train/trainer.h"
#include "slim.h"

#include <cblas.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "slim-train";


static const char usage_text[] =
    "usage: slim-train --snapshot S --out CKPT [options]\n"
    "       slim-train eval --snapshot S --ckpt CKPT [--split valid|train] [--json|--csv]\n"
    "       slim-train tokenizer --corpus FILE --vocab-size N --out FILE [--hf-json FILE]\n"
    "\n"
    "  --snapshot S         the snapshot to train on or evaluate (slim-store snapshot create)\n"
    "  --out CKPT           where the checkpoint is written (tokenizer: the tokenizer file)\n"
    "  --ckpt CKPT          eval: the checkpoint to evaluate\n"
    "  --split S            eval: valid (default) or train\n"
    "  --csv                eval: one CSV header and row instead of text\n"
    "  --corpus FILE        tokenizer: the training text\n"
    "  --vocab-size N       tokenizer: the vocabulary size (256 bytes, the merges, <|endoftext|>)\n"
    "  --hf-json FILE       tokenizer: also write it as a Hugging Face tokenizer.json\n"
    "  --store DIR          the store (default $SLIM_STORE or ./slim.store)\n"
    "  --preset NAME        tiny | small | base (default small)\n"
    "  --config FILE        key=value lines (keys = the long options below)\n"
    "  --resume CKPT        continue a run exactly where CKPT left it\n"
    "  --loss L             slim | ce | kd | rskd (default slim)\n"
    "  --tail T             renorm | zero | ghost (KD tail handling, default renorm)\n"
    "  --kd-weight A        kd/rskd: L = (1-A) CE + A KD (default 0.5)\n"
    "  --temperature TAU    KD temperature, KD term times TAU^2 (default 1)\n"
    "  --slim-weight W      text | printed (default text)\n"
    "  --steps N            total optimizer steps\n"
    "  --seed N --threads N\n"
    "  --layers --dim --heads --ctx --ffn --tie/--no-tie      model shape\n"
    "  --lr --lr-min --warmup --wd --clip --beta1 --beta2 --eps --batch --accum\n"
    "  --log-every N --eval-every N --ckpt-every N --stop-after N\n"
    "  --train-limit N      train on the first N train-split members only (snapshot order)\n"
    "  --json               metrics as JSON Lines on stdout\n"
    "  --progress           progress on stderr even when it is not a terminal\n"
    "  --verbose            print the BLAS variant and threads\n"
    "  --help, --version\n";

enum { O_SNAPSHOT = 256, O_OUT, O_PRESET, O_CONFIG, O_RESUME, O_JSON, O_CSV, O_PROGRESS,
       O_VERBOSE, O_STORE, O_HELP, O_VERSION, O_CKPT, O_SPLIT, O_TIE, O_NOTIE, O_STOP, O_KEY };

static const char *const key_opts[] = {
    "layers", "dim", "heads", "ctx", "ffn", "rope-theta", "norm-eps", "loss", "tail", "kd-weight",
    "temperature", "slim-weight", "batch", "accum", "lr", "lr-min", "warmup", "wd", "clip",
    "beta1", "beta2", "eps", "seed", "steps", "threads", "log-every", "eval-every", "ckpt-every",
    "train-limit",
};
#define NKEYOPTS (int)(sizeof key_opts / sizeof key_opts[0])

typedef struct opts {
    const char *snapshot, *out, *preset, *config, *resume, *store, *ckpt, *split;
    int json, csv, progress, verbose;
    int64_t stop_after;
    const char *kv[64][2];
    int nkv;
} opts;

static void parse(int argc, char **argv, opts *o)
{
    struct option lo[NKEYOPTS + 20];
    int n = 0;
    static const struct { const char *name; int has; int val; } fixed[] = {
        {"snapshot", 1, O_SNAPSHOT}, {"out", 1, O_OUT}, {"preset", 1, O_PRESET},
        {"config", 1, O_CONFIG}, {"resume", 1, O_RESUME}, {"json", 0, O_JSON}, {"csv", 0, O_CSV},
        {"progress", 0, O_PROGRESS}, {"verbose", 0, O_VERBOSE}, {"store", 1, O_STORE},
        {"help", 0, O_HELP}, {"version", 0, O_VERSION}, {"ckpt", 1, O_CKPT}, {"split", 1, O_SPLIT},
        {"tie", 0, O_TIE}, {"no-tie", 0, O_NOTIE}, {"stop-after", 1, O_STOP},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        lo[n++] = (struct option){fixed[i].name, fixed[i].has, NULL, fixed[i].val};
    for (int i = 0; i < NKEYOPTS; i++) lo[n++] = (struct option){key_opts[i], 1, NULL, O_KEY + i};
    lo[n] = (struct option){0, 0, 0, 0};
    int c, idx;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", lo, &idx)) != -1) {
        switch (c) {
        case O_SNAPSHOT: o->snapshot = optarg; break;
        case O_OUT: o->out = optarg; break;
        case O_PRESET: o->preset = optarg; break;
        case O_CONFIG: o->config = optarg; break;
        case O_RESUME: o->resume = optarg; break;
        case O_JSON: o->json = 1; break;
        case O_CSV: o->csv = 1; break;
        case O_PROGRESS: o->progress = 1; break;
        case O_VERBOSE: o->verbose = 1; break;
        case O_STORE: o->store = optarg; break;
        case O_CKPT: o->ckpt = optarg; break;
        case O_SPLIT: o->split = optarg; break;
        case O_HELP: fputs(usage_text, stdout); exit(fflush(stdout) ? 1 : 0);
        case O_VERSION: printf("slim-train %s\n", SLIM_VERSION_STRING); exit(fflush(stdout) ? 1 : 0);
        case O_TIE: case O_NOTIE:
            o->kv[o->nkv][0] = "tie"; o->kv[o->nkv++][1] = c == O_TIE ? "1" : "0"; break;
        case O_STOP: {
            char *e;
            o->stop_after = strtoll(optarg, &e, 10);
            if (*e || e == optarg || o->stop_after < 0) slim_die(2, "bad value '%s' for --stop-after", optarg);
            break;
        }
        case '?':
            slim_die(2, "unknown option or missing value '%s' (see --help)", argv[optind - 1]);
        default:
            if (c >= O_KEY && c < O_KEY + NKEYOPTS && o->nkv < 64) {
                o->kv[o->nkv][0] = key_opts[c - O_KEY];
                o->kv[o->nkv++][1] = optarg;
            }
        }
    }
    if (optind < argc) slim_die(2, "unexpected argument '%s' (see --help)", argv[optind]);
}

static const char *store_dir(const opts *o)
{
    if (o->store) return o->store;
    const char *e = getenv("SLIM_STORE");
    return e && *e ? e : "./slim.store";
}

static slim_store *open_store(const opts *o, unsigned flags)
{
    slim_store *st = NULL;
    int rc = slim_store_open(&st, store_dir(o), flags);
    if (rc) slim_die(1, "cannot open store '%s': %s", store_dir(o), st ? slim_errmsg(st) : slim_strerror(rc));
    return st;
}

static void iso_now(char buf[32])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *blas_variant(void)
{
    int p = openblas_get_parallel();
    return p == 2 ? "openmp" : p == 1 ? "pthread" : "sequential";
}

/* ---------------------------------------------------------- run records */

typedef struct recorder {
    const opts *o;
    const char *dir;
    int64_t run_id;
    slim_metrics buf[128];
    int nbuf;
    struct { char path[1024]; uint64_t step; char sha[65]; size_t bytes; } ck[8];
    int nck;
    int tty;
    const slim_train_config *cfg;
    slim_tsrc *valid;
    const char *snap, *snap_hash;
    char last_sha[65];
    uint64_t last_step;
    int failed;               /* a record could not be written: exit 1 at the end */
} recorder;

/* A short-lived writer on its own store handle: never held across steps. */
static int with_writer(recorder *r, int (*fn)(recorder *, sqlite3 *, void *), void *arg)
{
    slim_store *st = NULL;
    slim_writer *w = NULL;
    int rc = slim_store_open(&st, r->dir, 0), in_fn = 0;
    if (!rc) rc = slim_write_begin(st, &w);
    if (!rc) {
        rc = fn(r, slim_writer_sqlite(w), arg);
        in_fn = rc != 0;  /* fn said why, on stderr */
        if (rc) slim_write_abort(w);
        else rc = slim_write_commit(w);
    }
    if (rc) {
        if (in_fn) fprintf(stderr, "%s: cannot record the run in '%s'\n", prog, r->dir);
        else fprintf(stderr, "%s: cannot record the run in '%s': %s\n", prog, r->dir,
                     st ? slim_errmsg(st) : slim_strerror(rc));
        r->failed = 1;
    }
    slim_store_close(st);
    return rc;
}

static void bind_num(sqlite3_stmt *q, int i, double v)
{
    if (isnan(v)) sqlite3_bind_null(q, i);
    else sqlite3_bind_double(q, i, v);
}

/* A failed statement on a run record: say which table and why (SQLite's
 * message), for with_writer's line after it.  Returns SLIM_EIO. */
static int sql_fail(sqlite3 *db, const char *table)
{
    fprintf(stderr, "%s: %s: %s\n", prog, table, sqlite3_errmsg(db));
    return SLIM_EIO;
}

/* Step q once; 0 when done, else sql_fail. */
static int step_done(sqlite3 *db, sqlite3_stmt *q, const char *table)
{
    return sqlite3_step(q) == SQLITE_DONE ? 0 : sql_fail(db, table);
}

/* Metrics and checkpoints buffered since the last flush.  Each statement is
 * finalized exactly once on every path (a failed metrics insert used to
 * finalize the metrics statement twice when a checkpoint was pending:
 * a crash inside SQLite at the end of a run). */
static int put_rows(recorder *r, sqlite3 *db, void *arg)
{
    (void)arg;
    sqlite3_stmt *q = NULL, *qc = NULL;
    int rc = sqlite3_prepare_v2(db, "INSERT INTO run_metrics VALUES (?,?,?,?,?,?,?,?,?,?,?)", -1, &q, NULL);
    for (int i = 0; i < r->nbuf && rc == SQLITE_OK; i++) {
        const slim_metrics *m = &r->buf[i];
        sqlite3_bind_int64(q, 1, r->run_id);
        sqlite3_bind_int64(q, 2, m->step);
        sqlite3_bind_int64(q, 3, m->tokens);
        bind_num(q, 4, m->loss); bind_num(q, 5, m->ce); bind_num(q, 6, m->kd);
        bind_num(q, 7, m->w_mean); bind_num(q, 8, m->w_std); bind_num(q, 9, m->lr);
        bind_num(q, 10, m->grad_norm); bind_num(q, 11, m->tokens_per_s);
        rc = step_done(db, q, "run_metrics");
        sqlite3_reset(q);
    }
    if (!q) rc = sql_fail(db, "run_metrics");
    sqlite3_finalize(q);
    char now[32];
    iso_now(now);
    if (rc == SQLITE_OK && r->nck &&
        sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO checkpoints VALUES (?,?,?,?,?,?)", -1, &qc, NULL))
        rc = sql_fail(db, "checkpoints");
    for (int i = 0; i < r->nck && rc == SQLITE_OK; i++) {
        sqlite3_bind_int64(qc, 1, r->run_id);
        sqlite3_bind_int64(qc, 2, (int64_t)r->ck[i].step);
        sqlite3_bind_text(qc, 3, r->ck[i].path, -1, SQLITE_STATIC);
        sqlite3_bind_text(qc, 4, r->ck[i].sha, -1, SQLITE_STATIC);
        sqlite3_bind_int64(qc, 5, (int64_t)r->ck[i].bytes);
        sqlite3_bind_text(qc, 6, now, -1, SQLITE_STATIC);
        rc = step_done(db, qc, "checkpoints");
        sqlite3_reset(qc);
    }
    sqlite3_finalize(qc);
    if (rc) return SLIM_EIO;
    r->nbuf = r->nck = 0;
    return 0;
}

/* Write what is buffered.  On failure the rows are dropped (the run ends
 * with exit 1 and says its record is incomplete): the buffers are fixed
 * arrays, and their callers append right after flushing a full one. */
static void flush(recorder *r)
{
    if ((r->nbuf || r->nck) && with_writer(r, put_rows, NULL)) r->nbuf = r->nck = 0;
}

static void fmt_eta(double s, char *b, size_t n)
{
    if (s >= 3600) snprintf(b, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else snprintf(b, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
}

static void jnum(const char *k, double v, int last)
{
    if (isnan(v)) printf("\"%s\":null%s", k, last ? "" : ",");
    else printf("\"%s\":%.9g%s", k, v, last ? "" : ",");
}

static void on_metrics(void *ctx, const slim_metrics *m)
{
    recorder *r = ctx;
    if (r->o->json) {
        printf("{\"run_id\":%lld,\"step\":%lld,\"tokens\":%lld,", (long long)r->run_id,
               (long long)m->step, (long long)m->tokens);
        jnum("loss", m->loss, 0); jnum("ce", m->ce, 0); jnum("kd", m->kd, 0);
        jnum("w_mean", m->w_mean, 0); jnum("w_std", m->w_std, 0); jnum("w_zero", m->w_zero, 0);
        jnum("lr", m->lr, 0);
        jnum("grad_norm", m->grad_norm, 0); jnum("tokens_per_s", m->tokens_per_s, 1);
        printf("}\n");
        fflush(stdout);
    }
    if (r->tty || r->o->progress) {
        char eta[32], kd[48] = "", w[64] = "";
        fmt_eta(m->eta_s, eta, sizeof eta);
        if (!isnan(m->kd)) snprintf(kd, sizeof kd, " kd %.4f", m->kd);
        if (!isnan(m->w_mean))
            snprintf(w, sizeof w, " w %.3f±%.3f (0: %.1f%%)", m->w_mean, m->w_std, 100 * m->w_zero);
        fprintf(stderr, "%sstep %lld/%lld loss %.4f ce %.4f%s%s lr %.2e %.0f tok/s ETA %s%s",
                r->tty ? "\r" : "", (long long)m->step, (long long)r->cfg->steps, m->loss, m->ce,
                kd, w, m->lr, m->tokens_per_s, eta, r->tty ? "\033[K" : "\n");
    }
    if (r->nbuf == (int)(sizeof r->buf / sizeof r->buf[0])) flush(r);
    r->buf[r->nbuf++] = *m;
}

static void on_checkpoint(void *ctx, const char *path, uint64_t step, const char *sha, size_t bytes)
{
    recorder *r = ctx;
    if (r->nck == 8) flush(r);
    snprintf(r->ck[r->nck].path, sizeof r->ck[r->nck].path, "%s", path);
    r->ck[r->nck].step = step;
    snprintf(r->ck[r->nck].sha, 65, "%s", sha);
    snprintf(r->last_sha, 65, "%s", sha);
    r->last_step = step;
    r->ck[r->nck++].bytes = bytes;
    flush(r);
}

typedef struct eval_rec {
    const slim_eval_result *e;
    const char *sha, *split;
    uint64_t step;
    int64_t run_id;
} eval_rec;

static int put_eval(recorder *r, sqlite3 *db, void *arg)
{
    const eval_rec *x = arg;
    sqlite3_stmt *q = NULL;
    char now[32];
    iso_now(now);
    int rc = sqlite3_prepare_v2(db, "INSERT INTO eval_results (run_id, ckpt_sha256, step, snapshot,"
                                " snapshot_hash, split, positions, perplexity, kl, top1_agree, ece,"
                                " created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", -1, &q, NULL);
    if (rc) return sql_fail(db, "eval_results");
    if (x->run_id > 0) sqlite3_bind_int64(q, 1, x->run_id);
    if (x->sha) sqlite3_bind_text(q, 2, x->sha, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, (int64_t)x->step);
    sqlite3_bind_text(q, 4, r->snap, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 5, r->snap_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 6, x->split, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 7, x->e->positions);
    bind_num(q, 8, x->e->perplexity); bind_num(q, 9, x->e->kl);
    bind_num(q, 10, x->e->top1_agree); bind_num(q, 11, x->e->ece);
    sqlite3_bind_text(q, 12, now, -1, SQLITE_STATIC);
    rc = step_done(db, q, "eval_results");
    sqlite3_finalize(q);
    return rc;
}

static void on_evaluate(void *ctx, const slim_model_config *mc, const float *params, uint64_t step)
{
    recorder *r = ctx;
    if (!r->valid || !r->valid->n) return;
    slim_eval_result e;
    char err[512];
    if (slim_train_eval(mc, params, r->valid, r->cfg->batch, &e, err, sizeof err)) {
        fprintf(stderr, "%s: eval at step %llu: %s\n", prog, (unsigned long long)step, err);
        return;
    }
    if (r->tty || r->o->progress)
        fprintf(stderr, "%seval step %llu: perplexity %.3f kl %.4f top1 %.3f ece %.4f\n",
                r->tty ? "\r\033[K" : "", (unsigned long long)step, e.perplexity, e.kl,
                e.top1_agree, e.ece);
    eval_rec x = {&e, NULL, "valid", step, r->run_id};
    with_writer(r, put_eval, &x);
}

/* -------------------------------------------------------------- training */

typedef struct run_row {
    const slim_train_config *c;
    const char *json, *resumed_from, *status;
    int64_t params, parent;
} run_row;

static int put_run(recorder *r, sqlite3 *db, void *arg)
{
    const run_row *x = arg;
    sqlite3_stmt *q = NULL;
    char now[32];
    iso_now(now);
    const slim_train_config *c = x->c;
    int rc = sqlite3_prepare_v2(db, "INSERT INTO runs (snapshot, snapshot_hash, loss, tail,"
        " slim_weight, kd_weight, temperature, seed, threads, blas, steps, params, config,"
        " code_version, resumed_from, parent_run, started_at, status)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,'running')", -1, &q, NULL);
    if (rc) return sql_fail(db, "runs");
    sqlite3_bind_text(q, 1, r->snap, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, r->snap_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, slim_loss_kind_name(c->loss.kind), -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, slim_loss_tail_name(c->loss.tail), -1, SQLITE_STATIC);
    if (c->loss.kind == SLIM_LOSS_SLIM)
        sqlite3_bind_text(q, 5, c->loss.printed ? "printed" : "text", -1, SQLITE_STATIC);
    if (c->loss.kind == SLIM_LOSS_KD || c->loss.kind == SLIM_LOSS_RSKD)
        sqlite3_bind_double(q, 6, c->loss.alpha);
    sqlite3_bind_double(q, 7, c->loss.tau);
    sqlite3_bind_int64(q, 8, (int64_t)c->seed);
    sqlite3_bind_int(q, 9, c->threads);
    sqlite3_bind_text(q, 10, blas_variant(), -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 11, c->steps);
    sqlite3_bind_int64(q, 12, x->params);
    sqlite3_bind_text(q, 13, x->json, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 14, SLIM_VERSION_STRING, -1, SQLITE_STATIC);
    if (x->resumed_from) sqlite3_bind_text(q, 15, x->resumed_from, -1, SQLITE_STATIC);
    if (x->parent > 0) sqlite3_bind_int64(q, 16, x->parent);
    sqlite3_bind_text(q, 17, now, -1, SQLITE_STATIC);
    rc = step_done(db, q, "runs");
    sqlite3_finalize(q);
    r->run_id = sqlite3_last_insert_rowid(db);
    return rc;
}

static int end_run(recorder *r, sqlite3 *db, void *arg)
{
    const run_row *x = arg;
    sqlite3_stmt *q = NULL;
    char now[32];
    iso_now(now);
    if (sqlite3_prepare_v2(db, "UPDATE runs SET status = ?, ended_at = ?, final_step ="
                           " (SELECT max(step) FROM run_metrics WHERE run_id = ?) WHERE id = ?",
                           -1, &q, NULL))
        return sql_fail(db, "runs");
    sqlite3_bind_text(q, 1, x->status, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, now, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, r->run_id);
    sqlite3_bind_int64(q, 4, r->run_id);
    int rc = step_done(db, q, "runs");
    sqlite3_finalize(q);
    return rc;
}

static int64_t run_of_ckpt(slim_store *st, const char *sha)
{
    sqlite3_stmt *q = NULL;
    int64_t id = 0;
    if (sqlite3_prepare_v2(slim_store_sqlite(st), "SELECT run_id FROM checkpoints WHERE sha256 = ?"
                           " ORDER BY run_id LIMIT 1", -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_text(q, 1, sha, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW) id = sqlite3_column_int64(q, 0);
    }
    sqlite3_finalize(q);
    return id;
}

static volatile int interrupted;
static void on_signal(int sig) { (void)sig; interrupted = 1; }

/* The configuration: preset (or the checkpoint's), then --config, then flags. */
static void build_config(const opts *o, const slim_ckpt *ck, slim_train_config *c)
{
    char err[512];
    slim_train_preset(c, "small");
    if (ck) {
        char *text = strndup(ck->config, ck->config_len), *save = NULL;
        for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
            char *eq = strchr(l, '=');
            if (!eq || !strncmp(l, "vocab=", 6)) continue;
            *eq = 0;
            if (slim_train_config_set(c, l, eq + 1, err, sizeof err))
                slim_die(1, "checkpoint '%s': %s", o->resume, err);
        }
        free(text);
        c->steps = (int64_t)ck->st.total_steps;
    }
    if (o->preset && slim_train_preset(c, o->preset))
        slim_die(2, "unknown preset '%s' (tiny, small, base)", o->preset);
    if (o->config && slim_train_config_file(c, o->config, err, sizeof err)) slim_die(1, "%s", err);
    for (int i = 0; i < o->nkv; i++)
        if (slim_train_config_set(c, o->kv[i][0], o->kv[i][1], err, sizeof err))
            slim_die(2, "--%s: %s", o->kv[i][0], err);
    c->stop_after = o->stop_after;
    if (slim_train_config_check(c, err, sizeof err)) slim_die(2, "invalid setting: %s", err);
}

/* Refuse a checkpoint from another vocabulary, snapshot or configuration. */
static void check_resume(const opts *o, const slim_ckpt *ck, const slim_train_config *c,
                         const uint8_t hash[32])
{
    if (ck->cfg.vocab != c->model.vocab)
        slim_die(1, "checkpoint '%s' has vocabulary V=%d but the snapshot's teacher has V=%d", o->resume,
            ck->cfg.vocab, c->model.vocab);
    if (memcmp(ck->st.snapshot_hash, hash, 32))
        slim_die(1, "checkpoint '%s' was trained on another snapshot (or '%s' changed)", o->resume,
            o->snapshot);
    if (!ck->adam_m) slim_die(1, "checkpoint '%s' holds no optimizer state: cannot resume", o->resume);
    char *text = slim_train_config_text(c);
    uint8_t h[32];
    slim_sha256(text, strlen(text), h);
    if (memcmp(h, ck->st.config_hash, 32)) {
        /* name the first setting that differs */
        const char *a = text, *b = ck->config, *be = ck->config + ck->config_len;
        while (*a && b < be) {
            size_t la = strcspn(a, "\n"), lb = 0;
            while (b + lb < be && b[lb] != '\n') lb++;
            if (la != lb || memcmp(a, b, la))
                slim_die(1, "checkpoint '%s' is from another configuration: it has %.*s, this run %.*s",
                    o->resume, (int)lb, b, (int)la, a);
            a += la + (a[la] == '\n');
            b += lb + 1;
        }
        slim_die(1, "checkpoint '%s' is from another configuration", o->resume);
    }
    free(text);
}

static void set_threads(slim_train_config *c)
{
    if (c->threads > 0) {
        omp_set_num_threads(c->threads);
        openblas_set_num_threads(c->threads);
    }
    c->threads = omp_get_max_threads();
}

static int train_main(int argc, char **argv)
{
    opts o = {0};
    parse(argc, argv, &o);
    if (!o.snapshot) slim_die(2, "--snapshot is required (see --help)");
    if (!o.out) slim_die(2, "--out is required (see --help)");
    char err[1024];
    slim_ckpt *ck = NULL;
    if (o.resume && slim_ckpt_open(&ck, o.resume, err, sizeof err)) slim_die(1, "%s", err);
    slim_train_config c;
    build_config(&o, ck, &c);
    set_threads(&c);
    if (o.verbose)
        fprintf(stderr, "%s: OpenBLAS %s (%s), %d threads\n", prog, blas_variant(),
                openblas_get_config(), c.threads);
    slim_store *st = open_store(&o, 0);
    slim_snapshot *snap = NULL;
    if (slim_snapshot_open(st, o.snapshot, &snap))
        slim_die(1, "snapshot '%s': %s", o.snapshot, slim_errmsg(st));
    slim_tsrc tr, va;
    int rc;
    if ((rc = slim_storesrc_new(&tr, st, snap, SLIM_SPLIT_TRAIN, err, sizeof err)) ||
        (rc = slim_storesrc_new(&va, st, snap, SLIM_SPLIT_VALID, err, sizeof err)))
        slim_die(1, "%s", err);
    if (!tr.n) slim_die(1, "snapshot '%s' has no training sequences", o.snapshot);
    if (c.train_limit > 0 && (uint64_t)c.train_limit > tr.n)
        slim_die(1, "--train-limit %lld: snapshot '%s' has only %zu training sequences",
            (long long)c.train_limit, o.snapshot, (size_t)tr.n);
    slim_storesrc_limit(&tr, (size_t)c.train_limit);
    if (c.eval_every && !va.n)
        fprintf(stderr, "%s: warning: snapshot '%s' has no valid split; --eval-every ignored\n",
                prog, o.snapshot);
    c.model.vocab = (int)tr.vocab;
    if (slim_train_config_check(&c, err, sizeof err)) slim_die(1, "invalid setting: %s", err);
    if (c.loss.kind == SLIM_LOSS_RSKD && tr.kind != SLIM_KIND_SAMPLED)
        slim_die(1, "--loss rskd needs sampled records (ingest with --sparsify sample:N); "
            "snapshot '%s' holds logits", o.snapshot);
    uint8_t hash[32];
    slim_snapshot_hash(snap, hash);
    if (ck) check_resume(&o, ck, &c, hash);
    char tmp[4096];  /* an unwritable --out must fail now, not after training */
    snprintf(tmp, sizeof tmp, "%s.tmp", o.out);
    FILE *probe_f = fopen(tmp, "wb");
    if (!probe_f) slim_die(1, "cannot create '%s': %s", tmp, strerror(errno));
    fclose(probe_f);
    unlink(tmp);
    slim_loader *probe = NULL;  /* refuse bad sequences before any work */
    if (slim_loader_new(&probe, &tr, 1, c.model.ctx, hash, c.seed, 0, 0, err, sizeof err))
        slim_die(1, "snapshot '%s': %s", o.snapshot, err);
    slim_loader_free(probe);

    recorder r = {.o = &o, .dir = store_dir(&o), .tty = isatty(2), .cfg = &c, .valid = &va,
                  .snap = o.snapshot, .snap_hash = slim_snapshot_hash_hex(snap)};
    char *json = slim_train_config_json(&c);
    run_row row = {&c, json, ck ? ck->sha256_hex : NULL, NULL,
                   (int64_t)slim_model_param_count(&c.model), ck ? run_of_ckpt(st, ck->sha256_hex) : 0};
    if (with_writer(&r, put_run, &row)) exit(1);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    slim_train_hooks h = {&r, on_metrics, on_checkpoint, on_evaluate, &interrupted};
    rc = slim_train_run(&c, &tr, hash, ck, o.out, &h, err, sizeof err);
    if (r.tty && !o.progress) fputc('\n', stderr);
    flush(&r);
    row.status = rc == 0 ? "done" : rc == 1 ? "interrupted" : "failed";
    with_writer(&r, end_run, &row);
    if (rc < 0) slim_die(1, "%s", err);
    if (!o.json) printf("%s step %llu: %s (sha256 %s)\n", rc ? "stopped at" : "done,",
                        (unsigned long long)r.last_step, o.out, r.last_sha);
    if (r.failed)  /* the model is safe; what the store says of the run is not complete */
        slim_die(1, "'%s' was written, but the run's record in '%s' is incomplete (see above)", o.out,
                 r.dir);
    free(json);
    slim_storesrc_free(&tr);
    slim_storesrc_free(&va);
    slim_snapshot_close(snap);
    slim_store_close(st);
    slim_ckpt_close(ck);
    if (fflush(stdout) || ferror(stdout)) slim_die(1, "cannot write the output: %s", strerror(errno));
    return rc == 1 && interrupted ? 1 : 0;
}

/* ------------------------------------------------------------------ eval */

static int eval_main(int argc, char **argv)
{
    opts o = {0};
    prog = "slim-train eval";
    slim_tool_init(prog);
    parse(argc, argv, &o);
    if (!o.snapshot || !o.ckpt) slim_die(2, "--snapshot and --ckpt are required (see --help)");
    int split = !o.split || !strcmp(o.split, "valid") ? SLIM_SPLIT_VALID
                : !strcmp(o.split, "train") ? SLIM_SPLIT_TRAIN : -2;
    if (split == -2) slim_die(2, "bad value '%s' for --split (valid, train)", o.split);
    char err[1024];
    slim_ckpt *ck = NULL;
    if (slim_ckpt_open(&ck, o.ckpt, err, sizeof err)) slim_die(1, "%s", err);
    slim_train_config c;
    build_config(&o, NULL, &c);
    set_threads(&c);
    slim_store *st = open_store(&o, 0);
    slim_snapshot *snap = NULL;
    if (slim_snapshot_open(st, o.snapshot, &snap))
        slim_die(1, "snapshot '%s': %s", o.snapshot, slim_errmsg(st));
    slim_tsrc src;
    if (slim_storesrc_new(&src, st, snap, split, err, sizeof err)) slim_die(1, "%s", err);
    if (!src.n)
        slim_die(1, "snapshot '%s' has no %s sequences%s", o.snapshot, o.split ? o.split : "valid",
            split == SLIM_SPLIT_VALID ? " (snapshot with --split valid=F, or use --split train)" : "");
    if ((int)src.vocab != ck->cfg.vocab)
        slim_die(1, "checkpoint '%s' has vocabulary V=%d but the snapshot's teacher has V=%u", o.ckpt,
            ck->cfg.vocab, src.vocab);
    slim_eval_result e;
    if (slim_train_eval(&ck->cfg, ck->params, &src, c.batch, &e, err, sizeof err))
        slim_die(1, "snapshot '%s': %s", o.snapshot, err);
    recorder r = {.o = &o, .dir = store_dir(&o), .snap = o.snapshot,
                  .snap_hash = slim_snapshot_hash_hex(snap)};
    const char *sname = split == SLIM_SPLIT_VALID ? "valid" : "train";
    eval_rec x = {&e, ck->sha256_hex, sname, ck->st.step, run_of_ckpt(st, ck->sha256_hex)};
    int rec_rc = with_writer(&r, put_eval, &x);
    if (o.json) {
        printf("{\"ckpt_sha256\":\"%s\",\"step\":%llu,\"snapshot\":\"%s\",\"split\":\"%s\","
               "\"positions\":%lld,", ck->sha256_hex, (unsigned long long)ck->st.step, o.snapshot,
               sname, (long long)e.positions);
        jnum("perplexity", e.perplexity, 0); jnum("kl", e.kl, 0);
        jnum("top1_agree", e.top1_agree, 0); jnum("ece", e.ece, 1);
        printf("}\n");
    } else if (o.csv) {
        printf("ckpt_sha256,step,snapshot,split,positions,perplexity,kl,top1_agree,ece\n");
        printf("%s,%llu,\"%s\",%s,%lld,%.9g,%.9g,%.9g,%.9g\n", ck->sha256_hex,
               (unsigned long long)ck->st.step, o.snapshot, sname, (long long)e.positions,
               e.perplexity, e.kl, e.top1_agree, e.ece);
    } else {
        printf("split       %s (%lld positions)\nperplexity  %.4f\nkl          %.5f\n"
               "top1_agree  %.4f\nece         %.5f\n", sname, (long long)e.positions,
               e.perplexity, e.kl, e.top1_agree, e.ece);
    }
    slim_storesrc_free(&src);
    slim_snapshot_close(snap);
    slim_store_close(st);
    slim_ckpt_close(ck);
    if (fflush(stdout) || ferror(stdout)) slim_die(1, "cannot write the output: %s", strerror(errno));
    return rec_rc ? 1 : 0;
}

/* ------------------------------------------------------------- tokenizer */

static const char tok_usage[] =
    "usage: slim-train tokenizer --corpus FILE --vocab-size N --out FILE [--hf-json FILE]\n"
    "  train slim's byte-level BPE (ids 0..255 bytes, then merges, then <|endoftext|>)\n"
    "  on FILE and save it in slim's format (--hf-json: also as a tokenizer.json)\n";

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) slim_die(1, "cannot open '%s': %s", path, strerror(errno));
    size_t cap = 1 << 20, len = 0, r;
    char *b = malloc(cap);
    while (b && (r = fread(b + len, 1, cap - len, f)) > 0)
        if ((len += r) == cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) free(b);
            b = nb;
        }
    if (!b) slim_die(1, "out of memory reading '%s'", path);
    if (ferror(f)) slim_die(1, "cannot read '%s': %s", path, strerror(errno));
    fclose(f);
    *n = len;
    return b;
}

static int tokenizer_main(int argc, char **argv)
{
    prog = "slim-train tokenizer";
    slim_tool_init(prog);
    static const struct option lo[] = {
        {"corpus", 1, NULL, 'c'}, {"vocab-size", 1, NULL, 'v'}, {"out", 1, NULL, 'o'},
        {"hf-json", 1, NULL, 'j'}, {"help", 0, NULL, 'h'}, {"version", 0, NULL, 'V'}, {0, 0, 0, 0},
    };
    const char *corpus = NULL, *out = NULL, *hf = NULL;
    long vs = 0;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        char *e;
        switch (c) {
        case 'c': corpus = optarg; break;
        case 'o': out = optarg; break;
        case 'j': hf = optarg; break;
        case 'v':
            vs = strtol(optarg, &e, 10);
            if (*e || e == optarg || vs < 257 || vs > (1L << 24))
                slim_die(2, "bad value '%s' for --vocab-size (257 .. 16777216)", optarg);
            break;
        case 'h': fputs(tok_usage, stdout); exit(fflush(stdout) ? 1 : 0);
        case 'V': printf("slim-train %s\n", SLIM_VERSION_STRING); exit(fflush(stdout) ? 1 : 0);
        default: slim_die(2, "unknown option or missing value '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (optind < argc) slim_die(2, "unexpected argument '%s' (see --help)", argv[optind]);
    if (!corpus || !out || !vs) slim_die(2, "--corpus, --vocab-size and --out are required (see --help)");
    size_t n;
    char *text = slurp(corpus, &n), err[512];
    slim_tok *t = NULL;
    if (slim_tok_train(text, n, (uint32_t)vs, NULL, 0, &t, err, sizeof err)) slim_die(1, "%s", err);
    free(text);
    if (slim_tok_save(t, out, err, sizeof err)) slim_die(1, "%s", err);
    if (hf && slim_tok_save_hf(t, hf, err, sizeof err)) slim_die(1, "%s", err);
    char hash[65];
    slim_tok_hash(t, hash);
    printf("%s: %u tokens (%u merges), sha256 %s\n", out, slim_tok_size(t), slim_tok_merges(t), hash);
    slim_tok_free(t);
    if (fflush(stdout) || ferror(stdout)) slim_die(1, "cannot write the output: %s", strerror(errno));
    return 0;
}

/* Is argv[i] the subcommand "eval" (and not the value of an option)? */
static int is_subcommand(char **argv, int i)
{
    static const char *const noval[] = {"--json", "--csv", "--progress", "--verbose", "--help",
                                        "--version", "--tie", "--no-tie"};
    if (strcmp(argv[i], "eval")) return 0;
    const char *prev = argv[i - 1];
    if (i == 1 || strncmp(prev, "--", 2) || strchr(prev, '=')) return 1;
    for (size_t k = 0; k < sizeof noval / sizeof noval[0]; k++)
        if (!strcmp(prev, noval[k])) return 1;
    return 0;
}

int main(int argc, char **argv)
{
    slim_tool_init("slim-train");
    if (argc > 1 && !strcmp(argv[1], "tokenizer")) return tokenizer_main(argc - 1, argv + 1);
    for (int i = 1; i < argc; i++)
        if (is_subcommand(argv, i)) {
            memmove(argv + i, argv + i + 1, (size_t)(argc - i) * sizeof *argv);
            return eval_main(argc - 1, argv);
        }
    return train_main(argc, argv);
}
