/*
 * bench_ingest_teacher.c — the built-in teacher's throughput (tokens/s) at
 * the demo teacher's size: dim 256, 4 layers, 4 heads, ctx 256, V 1024,
 * random weights (speed does not depend on the values), topfrac:0.05
 * (52 entries per position), logprob:0.01, written into a fresh store.
 *
 *   bench_ingest_teacher [CORPUS]
 *
 * CORPUS (default $SLIM_CORPUS) gives the text: its first 2 MB train a
 * 1024-token BPE and 64 windows of 256 tokens are scored; without one, a
 * synthetic text is used.  Figures: KV-cache inference alone and the batch
 * forward of whole windows (one thread, no store, for comparison),
 * scoring end to end with 1 and 2 threads, generating 32 sequences of up to
 * 255 tokens with 1 and 2 threads.  Prints Markdown rows.  Store and files go
 * to $SLIM_TMP (or /tmp).
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "../ingest/teacher.h"
#include "../train/ckpt.h"
#include "../train/tokenizer.h"

static char dir[512];

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static const char *path(const char *name)
{
    static char buf[8][1024];
    static int i;
    i = (i + 1) & 7;
    snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
    return buf[i];
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_ingest_teacher: %s: %s\n", what, msg);
    exit(1);
}

/* The corpus's first `want` bytes, or synthetic words. */
static char *text(const char *corpus, size_t want, size_t *n)
{
    char *buf = malloc(want + 1);
    FILE *f = corpus ? fopen(corpus, "rb") : NULL;
    *n = f ? fread(buf, 1, want, f) : 0;
    if (f) fclose(f);
    if (*n > 0) return buf;
    static const char *w[] = { "the", "lord", "said", "unto", "fox", "and", "a", "fool",
                               "money", "is", "of", "light", "earth", "heaven", "dog", "in" };
    uint64_t s = 1;
    while (*n + 16 < want) {
        const char *x = w[slim_rng_next(&s) % 16];
        size_t l = strlen(x);
        memcpy(buf + *n, x, l);
        *n += l;
        buf[(*n)++] = slim_rng_next(&s) % 13 ? ' ' : '\n';
    }
    return buf;
}

static void setup(const char *corpus, slim_model_config *cfg)
{
    char err[512];
    slim_model *m;
    if (slim_model_config_check(cfg, err, sizeof err)) die("config", err);
    if (slim_model_new(&m, cfg, 1, 1)) die("model", "out of memory");
    slim_model_init(m, 1);
    slim_ckpt_state s = { 0 };
    if (slim_ckpt_write(path("bench.ckpt"), cfg, m->params, NULL, NULL, &s, "vocab=1024\n", NULL,
                        err, sizeof err))
        die("checkpoint", err);
    slim_model_free(m);
    size_t n;
    char *t = text(corpus, 2u << 20, &n);
    slim_tok *tok;
    if (slim_tok_train(t, n, 1024, NULL, 0, &tok, err, sizeof err) ||
        slim_tok_save(tok, path("bench.tok"), err, sizeof err))
        die("tokenizer", err);
    /* 64 windows of 256 tokens (bos + 255): cut 64 * 255 tokens of text into
     * documents of exactly that many tokens, blank-line separated */
    static uint32_t ids[1 << 21];
    size_t m2;
    if (slim_tok_encode(tok, t, n, ids, sizeof ids / sizeof *ids, &m2)) die("encode", "failed");
    FILE *f = fopen(path("bench.txt"), "wb");
    static char dec[1 << 16];
    for (size_t w = 0; w < 64 && (w + 1) * 255 <= m2; w++) {
        size_t len;
        if (slim_tok_decode(tok, ids + w * 255, 255, dec, sizeof dec, &len)) die("decode", "failed");
        /* blank lines inside would split the document: flatten newlines */
        for (size_t i = 0; i < len; i++) if (dec[i] == '\n') dec[i] = ' ';
        fwrite(dec, 1, len, f);
        fputs("\n\n", f);
    }
    fclose(f);
    slim_tok_free(tok);
    free(t);
}

static double infer_only(const slim_model_config *cfg, int ntok)
{
    char err[512];
    slim_ckpt *ck;
    slim_infer *s;
    if (slim_ckpt_open(&ck, path("bench.ckpt"), err, sizeof err)) die("open", err);
    if (slim_infer_new(&s, &ck->cfg, ck->params)) die("infer", "out of memory");
    double t0 = now_s();
    for (int i = 0; i < ntok; i++) slim_infer_step(s, i % 1000, i % cfg->ctx);
    double dt = now_s() - t0;
    slim_infer_free(s);
    slim_ckpt_close(ck);
    return ntok / dt;
}

/* The same model's batch forward (training path, sgemm): what a window
 * would cost without the KV cache, for comparison. */
static double forward_only(const slim_model_config *cfg, int reps)
{
    slim_model *m;
    static int32_t t[4096];
    if (slim_model_new(&m, cfg, 1, cfg->ctx)) die("model", "out of memory");
    slim_model_init(m, 1);
    for (int i = 0; i < cfg->ctx; i++) t[i] = (i * 7) % cfg->vocab;
    slim_model_forward(m, t);  /* warm */
    double t0 = now_s();
    for (int r = 0; r < reps; r++) slim_model_forward(m, t);
    double dt = now_s() - t0;
    slim_model_free(m);
    return (double)reps * cfg->ctx / dt;
}

static void run(slim_store *st, const char *what, const char *ds, int threads, int64_t generate)
{
    char err[1024];
    slim_ingest_opts io = { .dataset = ds, .teacher = "bench", .temperature = 1.0, .seed = 1,
                            .threads = threads, .min_prefix = 0 };  /* no sharing between the runs */
    slim_teacher_opts t = { .model = path("bench.ckpt"), .tokenizer = path("bench.tok"),
                            .text = generate ? NULL : path("bench.txt"), .generate = generate,
                            .max_tokens = generate ? 255 : 0 };
    slim_ingest_stats s;
    double t0 = now_s();
    if (slim_teacher_ingest(st, &io, &t, &s, err, sizeof err)) die(what, err);
    double dt = now_s() - t0;
    printf("| %s | %d | %lld | %lld | %.2f | %.0f |\n", what, threads, (long long)s.added,
           (long long)s.positions, dt, s.positions / dt);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    const char *corpus = argc > 1 ? argv[1] : getenv("SLIM_CORPUS");
    const char *tmp = getenv("SLIM_TMP");
    snprintf(dir, sizeof dir, "%s/bench-teacher.%d", tmp && *tmp ? tmp : "/tmp", (int)getpid());
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    if (system(cmd)) die("mkdir", dir);
    slim_model_config cfg = { .vocab = 1024, .ctx = 256, .layers = 4, .dim = 256, .heads = 4 };
    setup(corpus, &cfg);
    printf("teacher: dim %d, %d layers, %d heads, ffn %d, ctx %d, V %d; topfrac:0.05, "
           "logprob:0.01; text: %s\n\n", cfg.dim, cfg.layers, cfg.heads, cfg.ffn, cfg.ctx,
           cfg.vocab, corpus ? corpus : "synthetic");
    printf("| job | threads | sequences | tokens | seconds | tokens/s |\n|---|---|---|---|---|---|\n");
    omp_set_num_threads(1);
    double r = infer_only(&cfg, 4096);
    double f = forward_only(&cfg, 8);
    omp_set_num_threads(2);
    printf("| KV-cache inference alone (slim_infer_step) | 1 | - | 4096 | %.2f | %.0f |\n",
           4096 / r, r);
    printf("| batch forward alone (slim_model_forward, T=%d) | 1 | - | %d | %.2f | %.0f |\n",
           cfg.ctx, 8 * cfg.ctx, 8 * cfg.ctx / f, f);
    slim_store *st;
    if (slim_store_open(&st, path("store"), SLIM_OPEN_CREATE)) die("store", slim_errmsg(st));
    run(st, "score text", "score1", 1, 0);
    run(st, "score text", "score2", 2, 0);
    run(st, "generate (from <\\|endoftext\\|>)", "gen1", 1, 32);
    run(st, "generate (from <\\|endoftext\\|>)", "gen2", 2, 32);
    slim_store_close(st);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) return 1;
    return 0;
}
