/*
 * bench_train_tokenizer.c — slim's byte-level BPE on the demo corpus:
 * training time at vocabulary 1024 and 4096, encode and decode throughput
 * (one core), compression (bytes per token).
 *
 *   bench_train_tokenizer [CORPUS]
 *
 * CORPUS defaults to $SLIM_CORPUS or /tmp/slim-corpus.txt, built with
 * tests/corpus.sh when missing.  Prints one "name value unit" line per figure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../train/tokenizer.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = sz > 0 ? malloc((size_t)sz) : NULL;
    if (buf && fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *n = (size_t)sz;
    return buf;
}

static char *corpus(const char *path, size_t *n)
{
    char *text = slurp(path, n);
    if (text) return text;
    const char *root = getenv("SLIM_ROOT");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "sh '%s/tests/corpus.sh' '%s'", root ? root : ".", path);
    fprintf(stderr, "bench_train_tokenizer: building the corpus: %s\n", cmd);
    if (system(cmd) != 0) return NULL;
    return slurp(path, n);
}

static int bench_vocab(const char *text, size_t n, uint32_t vocab, int last)
{
    char err[256];
    slim_tok *t;
    double t0 = now();
    if (slim_tok_train(text, n, vocab, NULL, 0, &t, err, sizeof err)) {
        fprintf(stderr, "bench_train_tokenizer: %s\n", err);
        return 1;
    }
    double t1 = now();
    printf("train_v%u_seconds %.2f s (%.1f MB corpus)\n", vocab, t1 - t0, n / 1e6);

    uint32_t *ids = malloc(n * sizeof *ids);
    char *back = malloc(n);
    size_t k = 0, m = 0;
    /* first pass fills the word cache; the second is the steady state */
    for (int pass = 0; pass < 2; pass++) {
        double a = now();
        if (slim_tok_encode(t, text, n, ids, n, &k)) return 1;
        double b = now();
        printf("encode_v%u_%s %.1f MB/s\n", vocab, pass ? "warm" : "cold", n / 1e6 / (b - a));
    }
    printf("bytes_per_token_v%u %.3f (%zu tokens)\n", vocab, (double)n / k, k);
    double a = now();
    if (slim_tok_decode(t, ids, k, back, n, &m) || m != n || memcmp(back, text, n)) {
        fprintf(stderr, "bench_train_tokenizer: decode(encode(corpus)) != corpus\n");
        return 1;
    }
    printf("decode_v%u %.0f MB/s\n", vocab, n / 1e6 / (now() - a));
    if (last) {
        /* small pieces of text, as an ingest of many short sequences does */
        double c = now();
        size_t step = 300, done = 0;
        for (size_t off = 0; off + step <= n; off += step, done += step)
            if (slim_tok_encode(t, text + off, step, ids, n, &k)) return 1;
        printf("encode_v%u_300B_chunks %.1f MB/s\n", vocab, done / 1e6 / (now() - c));
        /* worst case: random bytes, nearly every pre-token a cache miss */
        size_t rn = n < (4u << 20) ? n : (4u << 20);
        uint64_t x = 42;
        for (size_t i = 0; i < rn; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            back[i] = (char)(x >> 24);
        }
        c = now();
        if (slim_tok_encode(t, back, rn, ids, n, &k)) return 1;
        printf("encode_v%u_random_bytes %.1f MB/s\n", vocab, rn / 1e6 / (now() - c));
    }
    free(ids);
    free(back);
    slim_tok_free(t);
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : getenv("SLIM_CORPUS");
    if (!path) path = "/tmp/slim-corpus.txt";
    size_t n;
    char *text = corpus(path, &n);
    if (!text) {
        fprintf(stderr, "bench_train_tokenizer: cannot read '%s'\n", path);
        return 1;
    }
    int rc = bench_vocab(text, n, 1024, 0) || bench_vocab(text, n, 4096, 1);
    free(text);
    return rc;
}
