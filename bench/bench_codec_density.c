/*
 * bench_codec_density.c — density and speed of the record codec on realistic
 * synthetic logits (tests/lib/synth.h), beside two baselines measured in the
 * same run: (a) int32 id + fp16 value per entry, (b) (a) compressed with
 * zstd -3.  Prints a Markdown table (docs/BENCHMARKS.md, "Record codec").
 *
 *   bench_codec_density [positions-scale] [prepare]
 *
 * positions-scale: default 1; 0.25 for a quick run.  "prepare": only the
 * second table, the write path's CPU cost per position (encoder alone,
 * slim_seq_prepare with and without SLIM_VERIFY_ENCODE, slim_dist_pstat),
 * medians of 5 rounds.  Compiled with -DBENCH_NO_PSTAT it links against a
 * library without slim_dist_pstat (the before/after figures of
 * docs/BENCHMARKS.md).
 */
#include "codec.h"
#include "../tests/lib/synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

/* CPU time of this thread: the machine is shared, wall time is noisy. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *msg)
{
    fprintf(stderr, "bench_codec: %s\n", msg);
    exit(1);
}

/* ---------------------------------------------------------- top-k (bench) */

static uint32_t topk(const float *row, uint32_t V, uint32_t k, float *tmp,
                     uint32_t *ids, float *vals)
{
    memcpy(tmp, row, V * sizeof *tmp);
    float thr = synth_kth_largest(tmp, V, k);
    uint32_t n = 0, above = 0;
    for (uint32_t j = 0; j < V; j++) above += row[j] > thr;
    /* one pass in id order, as the sparsifier hands them over: every value
     * above the threshold and the first k - above of those equal to it */
    for (uint32_t j = 0, ties = k - above; j < V && n < k; j++)
        if (row[j] > thr || (row[j] == thr && ties && ties--)) { ids[n] = j; vals[n++] = row[j]; }
    return n;
}

/* ------------------------------------------------------------- data sets */

typedef struct data {
    uint32_t V, k, n;
    slim_dist *d;          /* [n] */
    uint32_t *ids;         /* [n*k] */
    float *vals;           /* [n*k] */
} data;

static void make_data(data *D, uint32_t V, uint32_t k, uint32_t n, uint64_t seed)
{
    synth g;
    if (synth_init(&g, V, seed)) die("out of memory");
    float *row = malloc(V * sizeof *row), *tmp = malloc(V * sizeof *tmp);
    D->V = V; D->k = k; D->n = n;
    D->d = calloc(n, sizeof *D->d);
    D->ids = malloc((size_t)n * k * sizeof *D->ids);
    D->vals = malloc((size_t)n * k * sizeof *D->vals);
    if (!row || !tmp || !D->d || !D->ids || !D->vals) die("out of memory");
    for (uint32_t p = 0; p < n; p++) {
        double lse;
        synth_row(&g, row, &lse);
        slim_dist *d = &D->d[p];
        d->ids = D->ids + (size_t)p * k;
        d->vals = D->vals + (size_t)p * k;
        d->k = topk(row, V, k, tmp, d->ids, d->vals);
        d->lse = (float)lse;
    }
    free(row); free(tmp);
    synth_free(&g);
}

/* ------------------------------------------------------------- baselines */

static uint16_t f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, e = (x >> 23) & 0xff, m = x & 0x7fffff;
    if (e == 0xff) return (uint16_t)(sign | 0x7c00 | (m ? 0x200 : 0));
    int ne = (int)e - 127 + 15;
    if (ne >= 31) return (uint16_t)(sign | 0x7c00);
    if (ne <= 0) return (uint16_t)sign;   /* flush tiny values: a baseline */
    return (uint16_t)(sign | (uint32_t)ne << 10 | (m + 0x1000) >> 13);
}

/* Baseline (a) bytes, and (b) = zstd -3 of the (a) layout per block of
 * `block` positions (records of the size our chunks have). */
static void baselines(const data *D, uint32_t block, double *a, double *b)
{
    size_t bytes = (size_t)block * D->k * 6;
    uint8_t *raw = malloc(bytes), *z = malloc(ZSTD_compressBound(bytes));
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    size_t tot_a = 0, tot_b = 0;
    for (uint32_t p0 = 0; p0 < D->n; p0 += block) {
        size_t o = 0;
        for (uint32_t p = p0; p < D->n && p < p0 + block; p++) {
            const slim_dist *d = &D->d[p];
            for (uint32_t j = 0; j < d->k; j++) { memcpy(raw + o, &d->ids[j], 4); o += 4; }
            for (uint32_t j = 0; j < d->k; j++) {
                uint16_t h = f32_to_f16(d->vals[j] - d->lse);
                memcpy(raw + o, &h, 2); o += 2;
            }
        }
        tot_a += o;
        size_t zl = ZSTD_compressCCtx(cc, z, ZSTD_compressBound(bytes), raw, o, 3);
        if (ZSTD_isError(zl)) die("zstd failed");
        tot_b += zl;
    }
    *a = (double)tot_a / D->n;
    *b = (double)tot_b / D->n;
    ZSTD_freeCCtx(cc);
    free(raw); free(z);
}

/* --------------------------------------------------------------- codec */

typedef struct enc_result {
    uint8_t **buf; size_t *len; uint32_t *npos, *first; int n;
    size_t bytes;
    double sym_bits, raw_bits, tab_bytes, frame_bytes;
    double enc_s;
} enc_result;

static void encode(const data *D, slim_codec *c, slim_precision prec, size_t target,
                   enc_result *R)
{
    memset(R, 0, sizeof *R);
    R->buf = calloc(D->n, sizeof *R->buf);
    R->len = calloc(D->n, sizeof *R->len);
    R->npos = calloc(D->n, sizeof *R->npos);
    R->first = calloc(D->n, sizeof *R->first);
    slim_chunk_params pp = {SLIM_KIND_LOGITS, prec, D->V, 0, target};
    size_t cap = slim_chunk_bound(D->n, (size_t)D->n * D->k);
    uint8_t *tmp = malloc(cap);
    double t0 = now();
    for (uint32_t p = 0; p < D->n;) {
        size_t len;
        uint32_t used;
        pp.first_pos = p;
        int rc = slim_chunk_encode(c, &pp, D->d + p, D->n - p, tmp, cap, &len, &used);
        if (rc) die(slim_codec_errmsg(c));
        slim_codec_stats st;
        slim_codec_last_stats(c, &st);
        R->sym_bits += st.symbol_bits;
        R->raw_bits += (double)st.raw_bits;
        R->tab_bytes += (double)st.table_bytes;
        R->frame_bytes += (double)st.frame_bytes;
        R->buf[R->n] = malloc(len);
        memcpy(R->buf[R->n], tmp, len);
        R->len[R->n] = len; R->npos[R->n] = used; R->first[R->n] = p;
        R->n++;
        R->bytes += len;
        p += used;
    }
    R->enc_s = now() - t0;
    free(tmp);
}

static void enc_free(enc_result *R)
{
    for (int i = 0; i < R->n; i++) free(R->buf[i]);
    free(R->buf); free(R->len); free(R->npos); free(R->first);
}

/* Whole-chunk decode throughput (entries/s) on one core. */
static double decode_speed(const data *D, slim_codec *c, const enc_result *R, unsigned flags)
{
    size_t cap = (size_t)D->n * D->k;
    uint32_t *ids = malloc(cap * sizeof *ids);
    float *vals = malloc(cap * sizeof *vals);
    slim_dist *out = malloc(D->n * sizeof *out);
    double t0 = now(), el;
    uint64_t entries = 0;
    int reps = 0;
    do {
        for (int i = 0; i < R->n; i++) {
            size_t need;
            int rc = slim_chunk_decode(c, R->buf[i], R->len[i], 0, R->npos[i], out, ids, vals,
                                       cap, &need, flags, 1);
            if (rc) die(slim_codec_errmsg(c));
            entries += need;
        }
        reps++;
        el = now() - t0;
    } while (el < 0.5 || reps < 2);
    free(ids); free(vals); free(out);
    return entries / el;
}

/* Mean latency of decoding one random position (checksum verified). */
static double point_read_us(const data *D, slim_codec *c, const enc_result *R)
{
    uint32_t *ids = malloc(D->k * sizeof *ids);
    float *vals = malloc(D->k * sizeof *vals);
    slim_dist out;
    uint64_t x = 12345;
    int n = 20000;
    double t0 = now();
    for (int r = 0; r < n; r++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        int i = (int)((x >> 33) % (uint64_t)R->n);
        uint32_t p = (uint32_t)((x >> 13) % R->npos[i]);
        int rc = slim_chunk_decode(c, R->buf[i], R->len[i], p, 1, &out, ids, vals, D->k, NULL,
                                   0, 1);
        if (rc) die(slim_codec_errmsg(c));
    }
    double us = (now() - t0) / n * 1e6;
    free(ids); free(vals);
    return us;
}

static void run_case(const char *label, const data *D, slim_codec *c, slim_precision prec,
                     const char *pname, int speed)
{
    enc_result R;
    encode(D, c, prec, 0, &R);
    double a, b;
    baselines(D, (D->n + R.n - 1) / R.n, &a, &b);
    double bpp = (double)R.bytes / D->n;
    double ideal = (R.sym_bits + R.raw_bits) / 8;
    double sym_ratio = (R.frame_bytes) / ideal;
    printf("| %s | %s | %.0f | %.0f | **%.1f** | %.3fx | %.3f | %.3f | %d | %.1f |",
           label, pname, a, b, bpp, bpp / a, sym_ratio, (double)R.bytes / ideal,
           R.n, D->n / R.enc_s / 1000);
    if (speed) {
        double s_id = decode_speed(D, c, &R, SLIM_READ_ID_ORDER);
        double s_rank = decode_speed(D, c, &R, 0);
        double pr = point_read_us(D, c, &R);
        printf(" %.0f | %.0f | %.1f |\n", s_id / 1e6, s_rank / 1e6, pr);
    } else {
        printf(" | | |\n");
    }
    fflush(stdout);
    enc_free(&R);
}

/* ------------------------------------------------- write path, per position */

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median over 5 rounds of fn's thread CPU µs per position. */
#define ROUNDS 5
typedef double (*round_fn)(const data *D, void *ctx);
static double median_us(const data *D, round_fn fn, void *ctx)
{
    double t[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) t[r] = fn(D, ctx);
    qsort(t, ROUNDS, sizeof t[0], cmp_dbl);
    return t[ROUNDS / 2];
}

static double round_encode(const data *D, void *ctx)
{
    enc_result R;
    encode(D, ctx, (slim_precision){SLIM_PREC_LOGPROB, 0.01}, 0, &R);
    enc_free(&R);
    return R.enc_s * 1e6 / D->n;
}

typedef struct prep_ctx {
    slim_preparer *pr;
    slim_prepared *p;
    uint32_t *tok, T;
} prep_ctx;

/* slim_seq_prepare of the data as sequences of T positions. */
static double round_prepare(const data *D, void *vctx)
{
    prep_ctx *x = vctx;
    slim_precision prec = {SLIM_PREC_LOGPROB, 0.01};
    uint32_t n = D->n / x->T * x->T;
    double t0 = now();
    for (uint32_t r = 0; r < n; r += x->T)
        if (slim_seq_prepare(x->pr, SLIM_KIND_LOGITS, &prec, D->V, x->tok, x->T, D->d + r, x->T, x->p))
            die(slim_prepared_errmsg(x->p));
    return (now() - t0) * 1e6 / n;
}

#ifndef BENCH_NO_PSTAT
static double round_pstat(const data *D, void *ctx)
{
    volatile float sink = 0;
    double t0 = now();
    for (uint32_t i = 0; i < D->n; i++) {
        slim_pstat s;
        slim_dist_pstat(&D->d[i], SLIM_KIND_LOGITS, &s);
        sink += s.entropy;
    }
    (void)sink;
    return (now() - t0) * 1e6 / D->n;
}
#endif

static void write_path_cost(const data *D, slim_codec *c)
{
    prep_ctx x = {NULL, NULL, NULL, 128};
    x.tok = malloc(x.T * sizeof *x.tok);
    if (!x.tok) die("out of memory");
    for (uint32_t t = 0; t < x.T; t++) x.tok[t] = (t * 7919u) % D->V;
    printf("\n| V=%u k=%u logprob:0.01, thread CPU µs per position (median of %d rounds of %u positions) | µs |\n",
           D->V, D->k, ROUNDS, D->n);
    printf("|---|---|\n");
    printf("| slim_chunk_encode | %.1f |\n", median_us(D, round_encode, c));
    for (int verify = 0; verify < 2; verify++) {
        if (verify) setenv("SLIM_VERIFY_ENCODE", "1", 1);
        else unsetenv("SLIM_VERIFY_ENCODE");
        if (slim_preparer_new(&x.pr) || slim_prepared_new(&x.p)) die("out of memory");
        printf("| slim_seq_prepare (128-position sequences)%s | %.1f |\n",
               verify ? ", SLIM_VERIFY_ENCODE=1 (decode-after-encode)" : "",
               median_us(D, round_prepare, &x));
        slim_preparer_free(x.pr);
        slim_prepared_free(x.p);
    }
    unsetenv("SLIM_VERIFY_ENCODE");
#ifndef BENCH_NO_PSTAT
    printf("| slim_dist_pstat | %.2f |\n", median_us(D, round_pstat, NULL));
#endif
    fflush(stdout);
    free(x.tok);
}

int main(int argc, char **argv)
{
    double scale = argc > 1 ? atof(argv[1]) : 1.0;
    int prep_only = argc > 2 && strcmp(argv[2], "prepare") == 0;
    if (!(scale > 0)) { fprintf(stderr, "usage: bench_codec [scale] [prepare]\n"); return 2; }
    slim_codec *c;
    if (slim_codec_new(&c)) die("out of memory");
    data A, Bd;
    double t0 = now();
    make_data(&A, 32000, 1600, (uint32_t)(512 * scale), 1);
    if (prep_only) {
        write_path_cost(&A, c);
        slim_codec_free(c);
        return 0;
    }
    make_data(&Bd, 128256, 128, (uint32_t)(4096 * scale), 2);
    fprintf(stderr, "bench_codec: data generated in %.1f s\n", now() - t0);
    printf("| data | precision | (a) int32+fp16 B/pos | (b) zstd -3 of (a) B/pos | codec B/pos | vs (a) "
           "| frames / entropy | chunk / entropy | chunks | encode kpos/s "
           "| decode Mentries/s (id order) | decode Mentries/s (rank order) | point read us |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    slim_precision lp = {SLIM_PREC_LOGPROB, 0.01}, pb = {SLIM_PREC_PROB, 1e-4},
                   ll = {SLIM_PREC_LOSSLESS, 0};
    run_case("V=32000 top-5% (k=1600)", &A, c, lp, "logprob:0.01", 1);
    run_case("V=32000 top-5% (k=1600)", &A, c, pb, "prob:1e-4", 1);
    run_case("V=32000 top-5% (k=1600)", &A, c, ll, "lossless", 0);
    run_case("V=128256 k=128", &Bd, c, pb, "prob:1e-4", 1);
    run_case("V=128256 k=128", &Bd, c, lp, "logprob:0.01", 1);
    run_case("V=128256 k=128", &Bd, c, ll, "lossless", 0);
    write_path_cost(&A, c);
    slim_codec_free(c);
    return 0;
}
