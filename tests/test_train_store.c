/*
 * test_train_store.c — slim-train over a real store: the snapshot source
 * reads back what was written, and the slim-train tool (run from
 * $SLIM_BUILD/bin) trains, records runs in SQLite, resumes exactly, evaluates
 * and refuses bad input before any work.
 */
#include "../train/storesrc.h"
#include "../train/trainer.h"
#include "lib/tap.h"

#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[512], store[600], bin[600];

/* Write every sequence of a synthetic source into dataset `name`; ntok_override
 * > 0 truncates the first sequence to that many tokens. */
static int fill(slim_store *st, const char *name, slim_tsrc *src, uint32_t V, uint32_t first_len)
{
    slim_writer *w;
    int rc = slim_write_begin(st, &w);
    if (rc) return rc;
    slim_teacher t = {V == 64 ? "synth" : "synth32", V, NULL, 1.0, SLIM_SOURCE_LOGITS};
    slim_precision p = {SLIM_PREC_LOSSLESS, 0};
    int64_t ds, run, seq;
    rc = slim_write_dataset(w, name, &t, SLIM_KIND_LOGITS, "topk:8", &p, &ds);
    if (!rc) rc = slim_write_run_begin(w, ds, "test", "{}", &run);
    void *rd;
    src->begin(src->ctx, &rd);
    uint32_t tok[64], ids[64 * 8];
    float vals[64 * 8];
    slim_dist d[64];
    for (size_t i = 0; i < src->n && !rc; i++) {
        uint32_t nt, np;
        src->info(rd, i, &nt, &np);
        src->tokens(rd, i, tok, 64, &nt);
        src->dists(rd, i, 0, np, d, ids, vals, sizeof ids / sizeof ids[0], NULL);
        if (i == 0 && first_len) { nt = first_len; np = first_len - 1 < np ? first_len - 1 : np; }
        if (first_len == 1) np = 0;
        rc = slim_write_seq(w, ds, run, NULL, tok, nt, d, np, NULL, &seq);
    }
    if (!rc) rc = slim_write_run_end(w, run, "done", (int64_t)src->n, 0, 0);
    if (rc) { printf("# fill: %s\n", slim_errmsg(st)); slim_write_abort(w); return rc; }
    return slim_write_commit(w);
}

static int snapshot(slim_store *st, const char *name, const char *ds, double valid)
{
    slim_writer *w;
    int rc = slim_write_begin(st, &w);
    if (rc) return rc;
    const char *dss[1] = {ds};
    rc = slim_write_snapshot(w, name, dss, 1, valid);
    if (rc) { printf("# snapshot: %s\n", slim_errmsg(st)); slim_write_abort(w); return rc; }
    return slim_write_commit(w);
}

/* Run slim-train with arguments; returns the exit code, stdout in out[]. */
static int sh(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int sh(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[8192], args[3000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' --store '%s' %s 2>'%s/err' >'%s/out'", dir, bin,
             store, args, dir, dir);
    int st = system(cmd);
    char p[700];
    snprintf(p, sizeof p, "%s/out", dir);
    FILE *f = fopen(p, "r");
    size_t n = f ? fread(out, 1, cap - 1, f) : 0;
    out[n] = 0;
    if (f) fclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 255;
}

static void last_err(char *buf, size_t cap)
{
    char p[700];
    snprintf(p, sizeof p, "%s/err", dir);
    FILE *f = fopen(p, "r");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = 0;
    if (f) fclose(f);
}

static int sha_of(const char *name, char hex[65])
{
    char p[700], err[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    slim_ckpt *k;
    if (slim_ckpt_open(&k, p, err, sizeof err)) return -1;
    memcpy(hex, k->sha256_hex, 65);
    slim_ckpt_close(k);
    return 0;
}

static int64_t sql_int(const char *q)
{
    sqlite3 *db;
    char p[700];
    snprintf(p, sizeof p, "%s/meta.sqlite", store);
    sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL);
    sqlite3_stmt *s;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, q, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    else printf("# sql: %s\n", sqlite3_errmsg(db));
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static void test_source(slim_store *st, slim_tsrc *mem)
{
    TAP_BEGIN("store_source_reads_back_written_targets");
    slim_snapshot *sn = NULL;
    char err[256];
    CHECK(slim_snapshot_open(st, "all", &sn) == 0, "open: %s", slim_errmsg(st));
    slim_tsrc src;
    if (sn && slim_storesrc_new(&src, st, sn, -1, err, sizeof err) == 0) {
        CHECK(src.n == mem->n && src.vocab == 64 && src.kind == SLIM_KIND_LOGITS, "n %zu V %u", src.n, src.vocab);
        uint8_t h[32] = {0};
        slim_loader *a, *b;
        slim_loader_new(&a, &src, 2, 16, h, 1, 0, 0, err, sizeof err);
        slim_loader_new(&b, mem, 2, 16, h, 1, 0, 0, err, sizeof err);
        slim_loader_seek(a, 0, 0);
        slim_loader_seek(b, 0, 0);
        int end = 0, bad = 0;
        while (!end && !bad) {
            const slim_batch *x = slim_loader_next(a, &end, err, sizeof err);
            const slim_batch *y = slim_loader_next(b, NULL, err, sizeof err);
            if (!x || !y) { bad = 1; break; }
            for (int i = 0; i < 32 && !bad; i++) {
                const slim_target *tx = &x->tg[i], *ty = &y->tg[i];
                bad = x->tokens[i] != y->tokens[i] || tx->y != ty->y || tx->k != ty->k ||
                      fabsf(tx->tail - ty->tail) > 1e-6f;
                /* the store returns entries in id order, memsrc by rank: match by id */
                for (uint32_t j = 0; j < tx->k && !bad; j++) {
                    int found = 0;
                    for (uint32_t l = 0; l < ty->k; l++)
                        if (x->ids[tx->off + j] == y->ids[ty->off + l])
                            found = fabsf(x->pt[tx->off + j] - y->pt[ty->off + l]) < 1e-6f;
                    bad = !found;
                }
            }
        }
        CHECK(!bad, "batches differ (%s)", err);
        slim_loader_free(a);
        slim_loader_free(b);
        slim_storesrc_free(&src);
    }
    slim_snapshot_close(sn);
    TAP_END();
}

#define TINY "--preset tiny --dim 32 --ctx 16 --batch 2 --steps 6 --log-every 2 --threads 2"

static void test_cli(void)
{
    char out[8192], err[2048], a[65] = "", b[65] = "", c[65] = "";
    TAP_BEGIN("cli_trains_bit_identical_and_records_runs");
    int r1 = sh(out, sizeof out, "--snapshot main --out a.ckpt " TINY);
    last_err(err, sizeof err);
    CHECK(r1 == 0, "exit %d: %s", r1, err);
    int r2 = sh(out, sizeof out, "--snapshot main --out b.ckpt --json " TINY);
    CHECK(r2 == 0 && strstr(out, "\"w_mean\":") && strstr(out, "\"step\":6"), "exit %d, out %.300s", r2, out);
    CHECK(sha_of("a.ckpt", a) == 0 && sha_of("b.ckpt", b) == 0 && !strcmp(a, b), "%s vs %s", a, b);
    CHECK(sql_int("SELECT count(*) FROM runs WHERE status = 'done' AND loss = 'slim'") == 2, "runs");
    CHECK(sql_int("SELECT count(*) FROM run_metrics WHERE run_id = 1") == 3, "metrics rows");
    char q[300];
    snprintf(q, sizeof q, "SELECT count(*) FROM checkpoints WHERE sha256 = '%s' AND step = 6", a);
    CHECK(sql_int(q) == 2, "checkpoint rows");
    CHECK(sql_int("SELECT count(*) FROM run_metrics WHERE w_mean > 0 AND w_mean < 1 AND w_std >= 0") == 6,
          "w statistics");
    TAP_END();

    TAP_BEGIN("cli_resume_equals_uninterrupted");
    int r3 = sh(out, sizeof out, "--snapshot main --out c.ckpt --stop-after 3 " TINY);
    CHECK(r3 == 0 && sql_int("SELECT count(*) FROM runs WHERE status = 'interrupted' AND final_step = 3") == 1,
          "stop: %d", r3);
    int r4 = sh(out, sizeof out, "--snapshot main --out c.ckpt --resume c.ckpt --threads 2");
    last_err(err, sizeof err);
    CHECK(r4 == 0 && sha_of("c.ckpt", c) == 0 && !strcmp(a, c), "exit %d (%s): %s vs %s", r4, err, c, a);
    CHECK(sql_int("SELECT count(*) FROM runs WHERE parent_run IS NOT NULL AND resumed_from IS NOT NULL") == 1,
          "resumed run not linked");
    TAP_END();

    TAP_BEGIN("cli_eval_prints_and_records");
    int r5 = sh(out, sizeof out, "eval --snapshot main --ckpt a.ckpt --json");
    last_err(err, sizeof err);
    CHECK(r5 == 0 && strstr(out, "\"perplexity\":") && strstr(out, "\"ece\":"), "exit %d: %s %s", r5, out, err);
    CHECK(sql_int("SELECT count(*) FROM eval_results WHERE run_id = 1 AND ckpt_sha256 IS NOT NULL AND perplexity > 1"
                  " AND kl >= 0 AND top1_agree BETWEEN 0 AND 1 AND ece BETWEEN 0 AND 1") == 1, "eval row");
    TAP_END();

    TAP_BEGIN("cli_refuses_bad_input");
    struct { const char *args; int code; const char *msg; } bad[] = {
        {"--snapshot nope --out x.ckpt " TINY, 1, "nope"},
        {"--snapshot main --out x.ckpt " TINY " --heads 3", 2, "divide"},
        {"--snapshot main --out x.ckpt " TINY " --layers 0", 2, "layers"},
        {"--snapshot main --out x.ckpt " TINY " --lr -0.1", 2, "lr"},
        {"--snapshot main --out x.ckpt --loss mse", 2, "mse"},
        {"--snapshot main " TINY, 2, "--out"},
        {"--snapshot main --out x.ckpt --resume a.ckpt --lr 0.5", 1, "another configuration"},
        {"--snapshot main --out x.ckpt --resume t.ckpt", 1, "truncated"},
        {"--snapshot small --out x.ckpt --resume a.ckpt", 1, "vocabulary"},
        {"--snapshot short --out x.ckpt " TINY, 1, "at least 2"},
        {"--snapshot empty --out x.ckpt " TINY, 1, "no training sequences"},
        {"eval --snapshot main --ckpt t.ckpt", 1, "truncated"},
        {"--snapshot main --out x.ckpt --bogus", 2, "bogus"},
        {"--snapshot main --out x.ckpt --loss rskd " TINY, 1, "sampled records"},
        {"--snapshot main --out no/such/dir/x.ckpt " TINY, 1, "cannot create 'no/such/dir/x.ckpt.tmp'"},
    };
    char tp[700];
    snprintf(tp, sizeof tp, "%s/a.ckpt", dir);
    FILE *f = fopen(tp, "rb");
    static char buf[5000];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    snprintf(tp, sizeof tp, "%s/t.ckpt", dir);
    f = fopen(tp, "wb");
    fwrite(buf, 1, n / 2, f);
    fclose(f);
    int64_t runs = sql_int("SELECT count(*) FROM runs");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = sh(out, sizeof out, "%s", bad[i].args);
        last_err(err, sizeof err);
        CHECK(rc == bad[i].code && strstr(err, bad[i].msg) && strncmp(err, "slim-train", 10) == 0,
              "'%s': exit %d, stderr %s", bad[i].args, rc, err);
    }
    snprintf(tp, sizeof tp, "%s/x.ckpt", dir);
    CHECK(access(tp, F_OK) != 0, "a refused run wrote a checkpoint");
    CHECK(sql_int("SELECT count(*) FROM runs") == runs, "a refused run was recorded");
    TAP_END();
}

int main(void)
{
    const char *tmp = getenv("SLIM_TMP"), *b = getenv("SLIM_BUILD");
    snprintf(dir, sizeof dir, "%s", tmp ? tmp : "/tmp/slim-train-store");
    mkdir(dir, 0755);
    snprintf(store, sizeof store, "%s/store", dir);
    snprintf(bin, sizeof bin, "%s/bin/slim-train", b ? b : "build");
    slim_store *st = NULL;
    TAP_BEGIN("store_setup");
    int rc = slim_store_open(&st, store, SLIM_OPEN_CREATE);
    CHECK(rc == 0, "open: %s", st ? slim_errmsg(st) : "?");
    slim_tsrc mem, small, shrt;
    slim_memsrc_new(&mem, 12, 40, 64, 8, 0, 3);
    slim_memsrc_new(&small, 3, 20, 32, 8, 0, 4);
    slim_memsrc_new(&shrt, 3, 20, 64, 8, 0, 5);
    CHECK(!rc && fill(st, "main", &mem, 64, 0) == 0 && snapshot(st, "main", "main", 0.25) == 0 &&
          snapshot(st, "all", "main", 0) == 0, "main dataset");
    CHECK(!rc && fill(st, "small", &small, 32, 0) == 0 && snapshot(st, "small", "small", 0) == 0, "small");
    CHECK(!rc && fill(st, "short", &shrt, 64, 1) == 0 && snapshot(st, "short", "short", 0) == 0, "short");
    slim_tsrc none = mem;
    none.n = 0;
    CHECK(!rc && fill(st, "empty", &none, 64, 0) == 0 && snapshot(st, "empty", "empty", 0) == 0, "empty");
    TAP_END();
    if (!tap_failed_) {
        test_source(st, &mem);
        slim_store_close(st);
        st = NULL;
        test_cli();
    }
    slim_store_close(st);
    slim_memsrc_free(&mem);
    slim_memsrc_free(&small);
    slim_memsrc_free(&shrt);
    return tap_done();
}
