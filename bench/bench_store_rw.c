/*
 * bench_store_rw.c — store write throughput, point-read latency and store size
 * as the store grows: 1M positions, then (SLIM_BENCH_10M=1) 10M.
 *
 * Data: V = 32000, 32..64 entries per position (a top-k store), sequences of
 * 512 positions, precision logprob:0.01.  Ids are drawn half from the 64
 * most frequent ids and half log-uniformly over the vocabulary (BPE ids are
 * ordered by frequency), logits N-ish around a per-position offset.  A pool
 * of 64 generated sequences is reused with fresh tokens, so generation is
 * not timed.  Batches of 32 sequences per commit (each commit syncs).
 *
 *   bench_store_rw [DIR]      (default $SLIM_TMP or /tmp, a fresh subdirectory)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "slim.h"

#define V 32000
#define T 512
#define POOL 64
#define BATCH 32

static uint64_t rng = 88172645463325252ull;
static uint64_t next_u64(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static double unif(void) { return (double)(next_u64() >> 11) / 9007199254740992.0; }

typedef struct pseq {
    slim_dist d[T];
    uint32_t ids[T * 64];
    float vals[T * 64];
} pseq;

static void gen(pseq *q)
{
    size_t off = 0;
    for (int i = 0; i < T; i++) {
        slim_dist *d = &q->d[i];
        uint32_t k = 32 + (uint32_t)(next_u64() % 33);
        d->ids = q->ids + off;
        d->vals = q->vals + off;
        d->k = 0;
        d->n_samples = 0;
        float base = (float)(unif() * 20), mx = -INFINITY;
        while (d->k < k) {
            uint32_t id = unif() < 0.5 ? (uint32_t)(next_u64() % 64) : (uint32_t)exp(unif() * log((double)V)) % V;
            int dup = 0;
            for (uint32_t j = 0; j < d->k; j++) dup |= d->ids[j] == id;
            if (dup) continue;
            float v = base - (float)(unif() * 8) - (float)log1p(id) * 0.3f;
            d->ids[d->k] = id;
            d->vals[d->k++] = v;
            if (v > mx) mx = v;
        }
        d->lse = mx + 0.5f + (float)unif();
        off += k;
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int grow_to(slim_store *st, int64_t ds, pseq *pool, int64_t *written, int64_t target, double *secs)
{
    uint32_t tokens[T];
    double t0 = now();
    while (*written < target) {
        slim_writer *w;
        if (slim_write_begin(st, &w)) return -1;
        for (int b = 0; b < BATCH && *written < target; b++) {
            for (int i = 0; i < T; i++) tokens[i] = (uint32_t)(next_u64() % V);
            int64_t seq;
            pseq *q = &pool[next_u64() % POOL];
            if (slim_write_seq(w, ds, 0, NULL, tokens, T, q->d, T, NULL, &seq)) {
                slim_write_abort(w);
                return -1;
            }
            *written += T;
        }
        if (slim_write_commit(w)) return -1;
    }
    *secs += now() - t0;
    return 0;
}

static void point_reads(slim_store *st, int64_t ds, int64_t nseq, int n)
{
    static uint32_t ids[1 << 12];
    static float vals[1 << 12];
    slim_dist out[1];
    slim_reader *r;
    double *lat = malloc(sizeof(double) * (size_t)n);
    if (!lat || slim_read_begin(st, &r)) return;
    uint64_t g0 = slim_read_record_count(r);
    double t0 = now();
    for (int i = 0; i < n; i++) {
        int64_t s = (int64_t)(next_u64() % (uint64_t)nseq);
        uint32_t p = (uint32_t)(next_u64() % T);
        double a = now();
        if (slim_read_positions(r, ds, s, p, 1, out, ids, vals, 1 << 12, NULL, 0)) {
            printf("read failed: %s\n", slim_errmsg(st));
            break;
        }
        lat[i] = now() - a;
    }
    double tot = now() - t0;
    qsort(lat, (size_t)n, sizeof *lat, cmp_d);
    printf("  point read (random seq, random pos, warm cache): mean %.1f us, p50 %.1f us, p99 %.1f us, "
           "%.2f LMDB gets/read (%d reads)\n", tot / n * 1e6, lat[n / 2] * 1e6, lat[n * 99 / 100] * 1e6,
           (double)(slim_read_record_count(r) - g0) / n, n);
    /* a whole sequence, for scale */
    static uint32_t ids2[T * 64];
    static float vals2[T * 64];
    static slim_dist out2[T];
    double a = now();
    int reps = 200;
    for (int i = 0; i < reps; i++)
        slim_read_positions(r, ds, (int64_t)(next_u64() % (uint64_t)nseq), 0, T, out2, ids2, vals2, T * 64, NULL,
                            SLIM_READ_ID_ORDER);
    double e = (now() - a) / reps;
    printf("  whole-sequence read (512 positions, id order): %.0f us = %.1f M positions/s\n", e * 1e6,
           T / e / 1e6);
    /* the statistics of a whole sequence (chunk statistics blocks, no decode):
     * what a full scan filtering on entropy costs per sequence */
    static slim_pstat ps[T];
    a = now();
    for (int i = 0; i < reps; i++)
        if (slim_read_pstats(r, ds, (int64_t)(next_u64() % (uint64_t)nseq), 0, T, ps)) {
            printf("pstats failed: %s\n", slim_errmsg(st));
            break;
        }
    e = (now() - a) / reps;
    printf("  whole-sequence slim_read_pstats (512 positions): %.0f us = %.1f M positions/s\n", e * 1e6,
           T / e / 1e6);
    slim_read_end(r);
    free(lat);
}

int main(int argc, char **argv)
{
    char dir[600];
    const char *base = argc > 1 ? argv[1] : getenv("SLIM_TMP");
    snprintf(dir, sizeof dir, "%s/slim-bench-store.%d", base ? base : "/tmp", (int)getpid());
    int big = getenv("SLIM_BENCH_10M") && atoi(getenv("SLIM_BENCH_10M"));
    pseq *pool = malloc(sizeof(pseq) * POOL);
    if (!pool) return 1;
    for (int i = 0; i < POOL; i++) gen(&pool[i]);
    slim_store *st;
    slim_writer *w;
    int64_t ds;
    slim_teacher t = {"bench-teacher", V, NULL, 1.0, SLIM_SOURCE_LOGITS};
    slim_precision p;
    slim_precision_parse("logprob:0.01", &p);
    if (slim_store_open(&st, dir, SLIM_OPEN_CREATE) || slim_write_begin(st, &w) ||
        slim_write_dataset(w, "bench", &t, SLIM_KIND_LOGITS, "topk:64", &p, &ds) || slim_write_commit(w)) {
        fprintf(stderr, "bench_store: %s\n", slim_errmsg(st));
        return 1;
    }
    printf("bench_store: V=%d, 32..64 entries/position, %d positions/sequence, %d sequences/commit, %s\n", V, T,
           BATCH, "logprob:0.01");
    int64_t written = 0, targets[] = {1000000, 10000000};
    double secs = 0;
    for (int i = 0; i < (big ? 2 : 1); i++) {
        int64_t before = written;
        double s0 = secs;
        slim_dataset_info di;
        slim_dataset_get(st, "bench", &di);
        int64_t b0 = di.record_bytes;
        if (grow_to(st, ds, pool, &written, targets[i], &secs)) {
            fprintf(stderr, "bench_store: %s\n", slim_errmsg(st));
            return 1;
        }
        slim_dataset_get(st, "bench", &di);
        int64_t fb;
        slim_store_file_bytes(st, &fb);
        double dt = secs - s0;
        printf("at %lld positions (%lld sequences):\n", (long long)written, (long long)di.sequences);
        printf("  write: %.0f positions/s, %.1f MB/s of records, %.1f entries/position\n",
               (double)(written - before) / dt, (double)(di.record_bytes - b0) / dt / 1e6,
               (double)di.entries / (double)di.positions);
        printf("  size: records %.1f MB (%.1f B/position), files on disk %.1f MB (%.1f B/position)\n",
               di.record_bytes / 1e6, (double)di.record_bytes / (double)di.positions, fb / 1e6,
               (double)fb / (double)di.positions);
        point_reads(st, ds, di.sequences, 20000);
    }
    slim_store_close(st);
    free(pool);
    if (!getenv("SLIM_BENCH_KEEP")) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "bench_store: could not remove %s\n", dir);
    }
    return 0;
}
