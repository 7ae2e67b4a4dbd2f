/*
 * bench_query_sql.c — slim-query's SQL layer (docs/BENCHMARKS.md "## Query"):
 *   - a point query of one position through SQL, in process (prepared once,
 *     random positions);
 *   - a whole `slim-query` invocation doing that point query (fork + exec);
 *   - a full scan with a filter on entropy (positions/s, one core);
 *   - the ratio point-query time / full-scan time, in the same run;
 * on a store of 1M positions (K = 64 and K = 256), and with SLIM_BENCH_10M=1
 * also on 10M positions (K = 64) to show the point query stays flat.
 * Columns: lib = the library's own point read (slim_read_positions of one
 * random position, id order as the positions table reads), SQL = the same through the positions table, invoke =
 * a whole slim-query process (wall, and its CPU time), lib scan = CPU
 * seconds of the library decoding every position, lib stats = CPU seconds
 * of the library reading every position's statistics (slim_read_pstats, a
 * sequence per call: the floor of a scan that filters on entropy), scan =
 * CPU and wall seconds of the filtered full scan, ratio = SQL point time /
 * scan CPU time, matched = the rows that pass the filter, +top1 = CPU
 * seconds of the same scan also asking for an entry column of the rows that
 * pass (`count(top1)`: those rows are decoded, the others are not).
 *
 *   bench_query_sql [DIR]    stores are built once under DIR (default
 *                          $SLIM_BENCH_DIR or /tmp/slim-bench-query) and
 *                          reused by later runs
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "../query/query.h"
#include "slim.h"

#define SEQ_LEN 1024

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* In-process figures are CPU time of this thread: the machine is shared,
 * and "on one core" is what the goals mean.  Invocations are wall time. */
static double cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

/* A plausible sparse row: K distinct ids, Zipf-shaped logits with noise,
 * a tail of 1-30 % (lse above the stored logsumexp). */
static void make_dist(slim_dist *d, uint32_t *ids, float *vals, uint32_t k, uint32_t V)
{
    uint32_t base = rnd(V);
    double peak = 1 + rnd(1000) / 200.0, m = -INFINITY, s = 0;
    for (uint32_t j = 0; j < k; j++) {
        ids[j] = (base + j * 7919u) % V;  /* distinct: 7919 is prime, V not its multiple */
        vals[j] = (float)(10 - peak * log(j + 1.0) + rnd(1000) / 1000.0);
        m = fmax(m, vals[j]);
    }
    for (uint32_t j = 0; j < k; j++) s += exp(vals[j] - m);
    d->k = k;
    d->n_samples = 0;
    d->ids = ids;
    d->vals = vals;
    d->lse = (float)(m + log(s) - log(1 - (0.01 + rnd(300) / 1000.0)));
}

static int build(const char *dir, int64_t npos, uint32_t k)
{
    const uint32_t V = 32000;
    slim_store *st = NULL;
    slim_writer *w = NULL;
    int64_t id, run, seq;
    slim_teacher t = { "bench", V, NULL, 1.0, SLIM_SOURCE_LOGITS };
    slim_precision prec;
    slim_precision_parse("logprob:0.01", &prec);
    uint32_t *tokens = malloc(SEQ_LEN * sizeof *tokens);
    uint32_t *ids = malloc((size_t)SEQ_LEN * k * sizeof *ids);
    float *vals = malloc((size_t)SEQ_LEN * k * sizeof *vals);
    slim_dist *dists = malloc(SEQ_LEN * sizeof *dists);
    char sp[32];
    snprintf(sp, sizeof sp, "topk:%u", k);
    int rc = slim_store_open(&st, dir, SLIM_OPEN_CREATE);
    double t0 = now();
    for (int64_t done = 0; !rc && done < npos;) {
        if (!(rc = slim_write_begin(st, &w)) && !(rc = slim_write_dataset(w, "b", &t, SLIM_KIND_LOGITS, sp, &prec, &id)))
            rc = slim_write_run_begin(w, id, "bench_query", "[]", &run);
        /* commit every ~256k positions: bounded write transactions */
        for (int n = 0; !rc && n < 256 && done < npos; n++, done += SEQ_LEN) {
            for (uint32_t i = 0; i < SEQ_LEN; i++) {
                tokens[i] = rnd(V);
                make_dist(&dists[i], ids + (size_t)i * k, vals + (size_t)i * k, k, V);
            }
            rc = slim_write_seq(w, id, run, NULL, tokens, SEQ_LEN, dists, SEQ_LEN, NULL, &seq);
        }
        if (!rc) rc = slim_write_run_end(w, run, "ok", 0, 0, 0);
        if (!rc) rc = slim_write_commit(w);
        else slim_write_abort(w);
    }
    if (rc) fprintf(stderr, "bench_query: building '%s': %s\n", dir, slim_errmsg(st));
    else fprintf(stderr, "built %s: %lld positions, K=%u in %.1f s\n", dir, (long long)npos, k, now() - t0);
    slim_store_close(st);
    free(tokens);
    free(ids);
    free(vals);
    free(dists);
    return rc;
}

typedef struct result {
    double lib_us, point_us, invoke_ms, invoke_cpu_ms, lib_scan_s, lib_stats_s, scan_s, scan_wall,
        scan_pos_s, top1_s;
    int64_t npos, matched;
} result;

static int measure(const char *dir, const char *tool, result *r)
{
    slim_store *st = NULL;
    slimq *q;
    char *err = NULL;
    if (slim_store_open(&st, dir, SLIM_OPEN_RDONLY)) {
        fprintf(stderr, "bench_query: %s\n", slim_errmsg(st));
        return -1;
    }
    sqlite3 *db = slim_store_sqlite(st);
    if (slimq_register(db, st, 0, &q, &err)) return -1;
    slim_dataset_info info;
    slim_dataset_get(st, "b", &info);
    r->npos = info.positions;
    int64_t nseq = info.sequences;

    /* the library's own point read, for reference: what SQL adds is the rest */
    {
        slim_reader *rd;
        slim_read_begin(st, &rd);
        uint32_t *ids = malloc(1 << 20), cap = (1 << 20) / 4;
        float *vals = malloc(1 << 20);
        slim_dist d;
        int n = 20000;
        for (int pass = 0; pass < 2; pass++) {
            double t0 = cpu();
            for (int i = 0; i < n; i++)
                if (slim_read_positions(rd, info.id, rnd((uint32_t)nseq), rnd(SEQ_LEN), 1, &d, ids,
                                        vals, cap, NULL, SLIM_READ_ID_ORDER))
                    return -1;
            r->lib_us = (cpu() - t0) / n * 1e6;
        }
        /* the library's own full scan: every position in 64-position
         * batches, id order, nothing computed -- the floor for SQL */
        slim_dist *b = malloc(64 * sizeof *b);
        double t0 = cpu();
        for (int64_t sq = 0; sq < nseq; sq++)
            for (uint32_t p = 0; p < SEQ_LEN; p += 64)
                if (slim_read_positions(rd, info.id, sq, p, 64, b, ids, vals, cap, NULL,
                                        SLIM_READ_ID_ORDER))
                    return -1;
        r->lib_scan_s = cpu() - t0;
        free(b);
        /* the library's statistics of every position, a sequence per call */
        slim_pstat *ps = malloc(SEQ_LEN * sizeof *ps);
        double h = 0;
        t0 = cpu();
        for (int64_t sq = 0; sq < nseq; sq++) {
            if (slim_read_pstats(rd, info.id, sq, 0, SEQ_LEN, ps)) return -1;
            h += ps[sq % SEQ_LEN].entropy;
        }
        r->lib_stats_s = cpu() - t0;
        free(ps);
        if (h == 12345.678) fprintf(stderr, "!\n");  /* keep the loop's work alive */
        slim_read_end(rd);
        free(ids);
        free(vals);
    }
    /* point queries: warm-up, then timed */
    sqlite3_stmt *s;
    sqlite3_prepare_v2(db, "SELECT entropy FROM positions WHERE dataset = 'b' AND seq = ?1 AND pos = ?2",
                       -1, &s, NULL);
    double sink = 0;
    int n = 20000;
    for (int pass = 0; pass < 2; pass++) {
        double t0 = cpu();
        for (int i = 0; i < n; i++) {
            sqlite3_bind_int64(s, 1, rnd((uint32_t)nseq));
            sqlite3_bind_int64(s, 2, rnd(SEQ_LEN));
            if (sqlite3_step(s) == SQLITE_ROW) sink += sqlite3_column_double(s, 0);
            else return -1;
            sqlite3_reset(s);
        }
        r->point_us = (cpu() - t0) / n * 1e6;
    }
    sqlite3_finalize(s);

    /* full scan with a filter on entropy */
    sqlite3_prepare_v2(db, "SELECT count(*) FROM positions WHERE dataset = 'b' AND entropy > 2.5",
                       -1, &s, NULL);
    double t0 = cpu(), w0 = now();
    if (sqlite3_step(s) != SQLITE_ROW) {
        fprintf(stderr, "bench_query: scan: %s\n", sqlite3_errmsg(db));
        return -1;
    }
    r->matched = sqlite3_column_int64(s, 0);
    r->scan_s = cpu() - t0;
    r->scan_wall = now() - w0;
    r->scan_pos_s = r->npos / r->scan_s;
    sqlite3_finalize(s);
    /* the same filter, with an entry column of the rows that pass */
    sqlite3_prepare_v2(db, "SELECT count(top1) FROM positions WHERE dataset = 'b' AND entropy > 2.5",
                       -1, &s, NULL);
    t0 = cpu();
    if (sqlite3_step(s) != SQLITE_ROW || sqlite3_column_int64(s, 0) != r->matched) {
        fprintf(stderr, "bench_query: scan with top1: %s\n", sqlite3_errmsg(db));
        return -1;
    }
    r->top1_s = cpu() - t0;
    sqlite3_finalize(s);
    slimq_release_reader(q);
    slim_store_close(st);

    /* whole invocations */
    int m = 50;
    struct rusage ru0, ru1;
    getrusage(RUSAGE_CHILDREN, &ru0);
    t0 = now();
    for (int i = 0; i < m; i++) {
        char sql[160];
        snprintf(sql, sizeof sql, "SELECT entropy FROM positions WHERE dataset = 'b' AND seq = %u AND pos = %u",
                 rnd((uint32_t)nseq), rnd(SEQ_LEN));
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            if (!freopen("/dev/null", "w", stdout)) _exit(127);
            execl(tool, tool, "--csv", "--store", dir, sql, (char *)NULL);
            _exit(127);
        }
        int status;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status)) {
            fprintf(stderr, "bench_query: %s failed\n", tool);
            return -1;
        }
    }
    r->invoke_ms = (now() - t0) / m * 1e3;
    getrusage(RUSAGE_CHILDREN, &ru1);
#define TV(t) ((t).tv_sec + (t).tv_usec * 1e-6)
    r->invoke_cpu_ms = (TV(ru1.ru_utime) - TV(ru0.ru_utime) + TV(ru1.ru_stime) - TV(ru0.ru_stime)) / m * 1e3;
    return sink == 12345.678 ? 1 : 0;  /* keep the loop's work alive */
}

static int exists(const char *dir)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/meta.sqlite", dir);
    struct stat sb;
    return stat(p, &sb) == 0;
}

int main(int argc, char **argv)
{
    const char *root = argc > 1 ? argv[1] : getenv("SLIM_BENCH_DIR");
    if (!root) root = "/tmp/slim-bench-query";
    mkdir(root, 0755);
    /* the tool sits beside us: $B/bench/bench_query_sql -> $B/bin/slim-query */
    char tool[1100];
    snprintf(tool, sizeof tool, "%s", argv[0]);
    char *slash = strrchr(tool, '/');
    snprintf(slash ? slash + 1 : tool, sizeof tool - (size_t)(slash ? slash + 1 - tool : 0),
             "../bin/slim-query");
    struct { int64_t npos; uint32_t k; } cfg[] = { { 1 << 20, 64 }, { 1 << 20, 256 }, { 10 << 20, 64 } };
    int ncfg = getenv("SLIM_BENCH_10M") ? 3 : 2;
    printf("%-18s %9s %9s %11s %10s %10s %10s %9s %9s %12s %9s\n", "store", "lib (us)", "SQL (us)",
           "invoke (ms)", "(cpu, ms)", "lib scan", "lib stats", "scan (s)", "wall (s)", "scan (pos/s)",
           "ratio");
    printf("%-18s %9s %9s\n", "", "matched", "+top1 (s)");
    for (int i = 0; i < ncfg; i++) {
        char dir[1100];
        snprintf(dir, sizeof dir, "%s/p%lld-k%u", root, (long long)cfg[i].npos, cfg[i].k);
        int reused = exists(dir);
        if (!reused && build(dir, cfg[i].npos, cfg[i].k)) return 1;
        result r;
        if (measure(dir, tool, &r) < 0) {
            /* a store kept from an older build may not read with this one
             * (the record format is still moving): rebuild it once */
            char cmd[1200];
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
            if (!reused || system(cmd) || build(dir, cfg[i].npos, cfg[i].k) ||
                measure(dir, tool, &r) < 0)
                return 1;
        }
        char name[64];
        snprintf(name, sizeof name, "%.1fM pos, K=%u", r.npos / 1048576.0, cfg[i].k);
        printf("%-18s %9.1f %9.1f %11.2f %10.2f %10.3f %10.3f %9.3f %9.3f %12.3g %9.2e\n", name,
               r.lib_us, r.point_us, r.invoke_ms, r.invoke_cpu_ms, r.lib_scan_s, r.lib_stats_s, r.scan_s,
               r.scan_wall, r.scan_pos_s, r.point_us * 1e-6 / r.scan_s);
        printf("%-18s %9lld %9.3f\n", "", (long long)r.matched, r.top1_s);
        fflush(stdout);
    }
    return 0;
}
