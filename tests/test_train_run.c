/*
 * test_train_run.c — the trainer end to end on synthetic in-memory data:
 * overfitting a tiny batch, bit-identical checkpoints for the same seed,
 * resume equality, data order, refusals, checkpoint validation, eval.
 */
#include "../train/trainer.h"
#include "lib/tap.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[512];

typedef struct rec { double first, last; int n; double w_mean; } rec;

static void on_metrics(void *ctx, const slim_metrics *m)
{
    rec *r = ctx;
    if (!r->n++) r->first = m->loss;
    r->last = m->loss;
    r->w_mean = m->w_mean;
}

static slim_train_config tiny(int V)
{
    slim_train_config c;
    slim_train_preset(&c, "tiny");
    c.model.vocab = V;
    c.model.layers = 2; c.model.dim = 32; c.model.heads = 4; c.model.ctx = 16;
    c.batch = 2; c.steps = 12; c.warmup = 2; c.log_every = 1;
    char err[256];
    if (slim_train_config_check(&c, err, sizeof err)) printf("FAIL config: %s\n", err);
    return c;
}

static int train(slim_train_config *c, slim_tsrc *src, const slim_ckpt *res, const char *out, rec *r)
{
    static const uint8_t hash[32] = {1, 2, 3};
    slim_train_hooks h = {.ctx = r, .metrics = on_metrics};
    char err[256];
    int rc = slim_train_run(c, src, hash, res, out, &h, err, sizeof err);
    if (rc < 0) printf("# train: %s\n", err);
    return rc;
}

static int ckpt_sha(const char *path, char hex[65])
{
    slim_ckpt *k;
    char err[256];
    if (slim_ckpt_open(&k, path, err, sizeof err)) { printf("# %s\n", err); return -1; }
    memcpy(hex, k->sha256_hex, 65);
    slim_ckpt_close(k);
    return 0;
}

static void path(char *buf, const char *name) { snprintf(buf, 600, "%s/%s", dir, name); }

static void test_overfit(void)
{
    TAP_BEGIN("tiny_model_overfits_tiny_batch");
    slim_tsrc src;
    slim_memsrc_new(&src, 2, 17, 32, 8, 0, 5);
    slim_train_config c = tiny(32);
    c.loss.kind = SLIM_LOSS_CE;
    c.steps = 150; c.lr = 1e-2f; c.lr_min = 1e-3f; c.wd = 0; c.warmup = 5;
    rec r = {0};
    char out[600];
    path(out, "overfit.ckpt");
    CHECK(train(&c, &src, NULL, out, &r) == 0, "train failed");
    CHECK(r.first > 3.0 && r.last < r.first / 10, "loss %g -> %g", r.first, r.last);
    slim_memsrc_free(&src);
    TAP_END();
}

static void test_identical_and_resume(int kind, const char *tag)
{
    slim_tsrc src;
    slim_memsrc_new(&src, 9, 40, 64, 8, kind == SLIM_LOSS_RSKD, 11);
    slim_train_config c = tiny(64);
    c.loss.kind = kind;
    c.loss.tail = SLIM_TAIL_GHOST;
    c.accum = 2;
    char a[600], b[600], d[600], e[600], ha[65], hb[65], hd[65], he[65], name[80];
    path(a, "a.ckpt"); path(b, "b.ckpt"); path(d, "d.ckpt"); path(e, "e.ckpt");
    rec r = {0};
    snprintf(name, sizeof name, "same_seed_bit_identical_%s", tag);
    TAP_BEGIN(name);
    CHECK(train(&c, &src, NULL, a, &r) == 0 && train(&c, &src, NULL, b, &r) == 0, "train");
    CHECK(ckpt_sha(a, ha) == 0 && ckpt_sha(b, hb) == 0 && !strcmp(ha, hb), "%s vs %s", ha, hb);
    if (kind == SLIM_LOSS_SLIM) CHECK(r.w_mean > 0 && r.w_mean < 1, "w mean %g", r.w_mean);
    TAP_END();

    snprintf(name, sizeof name, "other_seed_differs_%s", tag);
    TAP_BEGIN(name);
    c.seed = 99;
    CHECK(train(&c, &src, NULL, d, &r) == 0 && ckpt_sha(d, hd) == 0 && strcmp(ha, hd), "same sha");
    c.seed = 1;
    TAP_END();

    snprintf(name, sizeof name, "resume_equals_uninterrupted_%s", tag);
    TAP_BEGIN(name);
    c.stop_after = 5;  /* crosses an epoch boundary: 9 seqs x 3 windows, 4 windows a step */
    CHECK(train(&c, &src, NULL, e, &r) == 1, "stop_after did not stop");
    c.stop_after = 0;
    slim_ckpt *k = NULL;
    char err[256];
    CHECK(slim_ckpt_open(&k, e, err, sizeof err) == 0, "%s", err);
    if (k) {
        CHECK(k->st.step == 5, "step %llu", (unsigned long long)k->st.step);
        CHECK(train(&c, &src, k, e, &r) == 0, "resume failed");
        slim_ckpt_close(k);
        CHECK(ckpt_sha(e, he) == 0 && !strcmp(ha, he), "resumed %s vs %s", he, ha);
    }
    TAP_END();
    slim_memsrc_free(&src);
}

static void test_refusals(void)
{
    char err[256];
    TAP_BEGIN("nonsense_hyperparameters_refused");
    slim_train_config c = tiny(64);
    c.model.layers = 0;
    CHECK(slim_train_config_check(&c, err, sizeof err) && strstr(err, "layers"), "zero layers: %s", err);
    c = tiny(64); c.model.heads = 3;
    CHECK(slim_train_config_check(&c, err, sizeof err) && strstr(err, "divide"), "heads: %s", err);
    c = tiny(64); c.lr = -1;
    CHECK(slim_train_config_check(&c, err, sizeof err) && strstr(err, "lr"), "lr: %s", err);
    c = tiny(64); c.loss.tau = 0;
    CHECK(slim_train_config_check(&c, err, sizeof err), "tau 0 accepted");
    CHECK(slim_train_config_set(&c, "loss", "mse", err, sizeof err) != 0, "loss mse accepted");
    CHECK(slim_train_config_set(&c, "lr", "1e-3x", err, sizeof err) != 0, "lr 1e-3x accepted");
    CHECK(slim_train_config_set(&c, "layerz", "1", err, sizeof err) != 0, "unknown key accepted");
    TAP_END();

    TAP_BEGIN("short_sequence_refused_before_work");
    slim_tsrc src;
    slim_memsrc_new(&src, 3, 1, 16, 4, 0, 1);
    slim_loader *l = NULL;
    uint8_t h[32] = {0};
    CHECK(slim_loader_new(&l, &src, 2, 8, h, 1, 1, 1, err, sizeof err) != 0 && strstr(err, "at least 2"),
          "accepted 1-token sequences: %s", err);
    slim_loader_free(l);
    slim_memsrc_free(&src);
    TAP_END();

    TAP_BEGIN("truncated_checkpoint_refused");
    char a[600], t[600];
    path(a, "a.ckpt"); path(t, "trunc.ckpt");
    FILE *f = fopen(a, "rb"), *g = fopen(t, "wb");
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fwrite(buf, 1, n > 1000 ? 1000 : n, g);
    fclose(f); fclose(g);
    slim_ckpt *k = NULL;
    CHECK(slim_ckpt_open(&k, t, err, sizeof err) != 0 && strstr(err, "truncated"), "truncated: %s", err);
    g = fopen(t, "wb"); fwrite("hello", 1, 5, g); fclose(g);
    CHECK(slim_ckpt_open(&k, t, err, sizeof err) != 0, "garbage accepted");
    /* header fields corrupted one at a time: every one refused, no crash */
    static const int fields[] = {8, 16, 24, 28, 32, 36, 56};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        f = fopen(a, "rb");
        static char whole[1 << 20];
        size_t len = fread(whole, 1, sizeof whole, f);
        fclose(f);
        whole[fields[i] + 3] ^= 0x40;  /* a huge value */
        g = fopen(t, "wb"); fwrite(whole, 1, len, g); fclose(g);
        CHECK(slim_ckpt_open(&k, t, err, sizeof err) != 0, "field at %d accepted", fields[i]);
    }
    TAP_END();
}

static void test_order(void)
{
    TAP_BEGIN("order_is_function_of_hash_seed_epoch");
    slim_tsrc src;
    slim_memsrc_new(&src, 20, 10, 32, 4, 0, 3);
    uint8_t h1[32] = {1}, h2[32] = {2};
    char err[256];
    int32_t first[4][20];
    const uint8_t *hs[4] = {h1, h1, h2, h1};
    uint64_t seeds[4] = {1, 1, 1, 2};
    for (int v = 0; v < 4; v++) {
        slim_loader *l;
        slim_loader_new(&l, &src, 1, 8, hs[v], seeds[v], 1, v != 1, err, sizeof err);
        slim_loader_seek(l, 0, 0);
        for (int i = 0; i < 20; i++) {
            const slim_batch *b = slim_loader_next(l, NULL, err, sizeof err);
            first[v][i] = b ? b->tokens[0] * 1000 + b->tokens[1] : -1;
        }
        slim_loader_free(l);
    }
    CHECK(!memcmp(first[0], first[1], sizeof first[0]), "prefetch and direct differ");
    CHECK(memcmp(first[0], first[2], sizeof first[0]), "hash does not change the order");
    CHECK(memcmp(first[0], first[3], sizeof first[0]), "seed does not change the order");
    slim_memsrc_free(&src);
    TAP_END();
}

static void test_eval(void)
{
    TAP_BEGIN("eval_metrics_sane");
    slim_tsrc src;
    slim_memsrc_new(&src, 4, 33, 64, 8, 0, 21);
    slim_train_config c = tiny(64);
    char a[600], err[256];
    path(a, "ev.ckpt");
    c.steps = 30; c.lr = 1e-2f; c.loss.kind = SLIM_LOSS_KD;
    rec r = {0};
    train(&c, &src, NULL, a, &r);
    slim_ckpt *k = NULL;
    CHECK(slim_ckpt_open(&k, a, err, sizeof err) == 0, "%s", err);
    slim_eval_result e0, e1;
    slim_model *m;
    slim_model_new(&m, &c.model, 1, c.model.ctx);
    slim_model_init(m, 1);
    CHECK(slim_train_eval(&c.model, m->params, &src, 3, &e0, err, sizeof err) == 0, "%s", err);
    CHECK(k && slim_train_eval(&k->cfg, k->params, &src, 3, &e1, err, sizeof err) == 0, "%s", err);
    CHECK(e0.positions == 4 * 32 && e0.with_dist == 4 * 32, "positions %lld/%lld",
          (long long)e0.positions, (long long)e0.with_dist);
    CHECK(fabs(e0.perplexity - 64) < 8, "untrained perplexity %g (V = 64)", e0.perplexity);
    CHECK(e1.perplexity < e0.perplexity && e1.kl < e0.kl && e1.kl >= 0, "ppl %g -> %g, kl %g -> %g",
          e0.perplexity, e1.perplexity, e0.kl, e1.kl);
    CHECK(e1.ece >= 0 && e1.ece <= 1 && e1.top1_agree >= 0 && e1.top1_agree <= 1, "ece %g top1 %g",
          e1.ece, e1.top1_agree);
    slim_model_free(m);
    slim_ckpt_close(k);
    slim_memsrc_free(&src);
    TAP_END();
}

/* The determinism the checkpoints rely on: sgemm with a fixed thread count
 * gives the same bits every call, on shapes large enough to be split. */
static void test_sgemm_deterministic(void)
{
    TAP_BEGIN("sgemm_bitwise_repeatable");
    int M = 512, N = 704, K = 384;
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * N * K);
    float *c1 = malloc(sizeof(float) * M * N), *c2 = malloc(sizeof(float) * M * N);
    uint64_t s = 3;
    for (int i = 0; i < M * K; i++) a[i] = (float)slim_rng_normal(&s);
    for (int i = 0; i < N * K; i++) b[i] = (float)slim_rng_normal(&s);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, a, K, b, K, 0, c1, N);
    for (int r = 0; r < 3; r++) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, a, K, b, K, 0, c2, N);
        CHECK(!memcmp(c1, c2, sizeof(float) * M * N), "call %d differs", r);
    }
    free(a); free(b); free(c1); free(c2);
    TAP_END();
}

/* Two micro-batches of one sequence accumulate the gradient of one batch of
 * two (equal trained counts, so the means agree). */
static void test_accumulation(void)
{
    TAP_BEGIN("grad_accumulation_equals_larger_batch");
    slim_tsrc src;
    slim_memsrc_new(&src, 2, 17, 32, 8, 0, 9);
    slim_train_config c = tiny(32);
    slim_model *big, *small;
    slim_model_new(&big, &c.model, 2, 16);
    slim_model_new(&small, &c.model, 1, 16);
    slim_model_init(big, 3);
    memcpy(small->params, big->params, big->n_params * sizeof(float));
    slim_loss_ws *ws;
    slim_loss_ws_new(&ws, 32, 32);
    slim_loader *l2, *l1;
    uint8_t h[32] = {0};
    char err[256];
    slim_loader_new(&l2, &src, 2, 16, h, 1, 0, 0, err, sizeof err);
    slim_loader_new(&l1, &src, 1, 16, h, 1, 0, 0, err, sizeof err);
    slim_loader_seek(l2, 0, 0);
    slim_loader_seek(l1, 0, 0);
    slim_loss_config lc = {.kind = SLIM_LOSS_SLIM, .tail = SLIM_TAIL_GHOST, .alpha = 0.5f, .tau = 1.0f};
    slim_loss_stats st;
    const slim_batch *b = slim_loader_next(l2, NULL, err, sizeof err);
    slim_model_zero_grad(big);
    slim_model_forward(big, b->tokens);
    slim_loss_batch(&lc, big->a.logits, 32, 32, b->tg, b->ids, b->pt, 1.0f, ws, &st);
    slim_model_backward(big, b->tokens);
    slim_model_zero_grad(small);
    for (int k = 0; k < 2; k++) {
        b = slim_loader_next(l1, NULL, err, sizeof err);
        slim_model_forward(small, b->tokens);
        slim_loss_batch(&lc, small->a.logits, 16, 32, b->tg, b->ids, b->pt, 0.5f, ws, &st);
        slim_model_backward(small, b->tokens);
    }
    double worst = 0, gmax = 0;
    for (size_t i = 0; i < big->n_params; i++) {
        worst = fmax(worst, fabs(big->grads[i] - small->grads[i]));
        gmax = fmax(gmax, fabs(big->grads[i]));
    }
    CHECK(gmax > 0 && worst < 1e-5 * fmax(1, gmax), "max diff %g (max grad %g)", worst, gmax);
    slim_loader_free(l1); slim_loader_free(l2); slim_loss_ws_free(ws);
    slim_model_free(big); slim_model_free(small); slim_memsrc_free(&src);
    TAP_END();
}

static void test_schedule(void)
{
    TAP_BEGIN("lr_warmup_then_cosine");
    slim_train_config c = tiny(32);
    c.lr = 1e-3f; c.lr_min = 1e-4f; c.warmup = 10; c.steps = 110;
    CHECK(fabsf(slim_train_lr(&c, 1) - 1e-4f) < 1e-9f, "lr(1) %g", slim_train_lr(&c, 1));
    CHECK(fabsf(slim_train_lr(&c, 10) - 1e-3f) < 1e-9f, "lr(10) %g", slim_train_lr(&c, 10));
    CHECK(fabsf(slim_train_lr(&c, 60) - 5.5e-4f) < 1e-8f, "lr(60) %g", slim_train_lr(&c, 60));
    CHECK(fabsf(slim_train_lr(&c, 110) - 1e-4f) < 1e-9f, "lr(110) %g", slim_train_lr(&c, 110));
    TAP_END();
}

int main(void)
{
    test_sgemm_deterministic();
    test_accumulation();
    test_schedule();
    const char *tmp = getenv("SLIM_TMP");
    snprintf(dir, sizeof dir, "%s", tmp ? tmp : "/tmp");
    test_overfit();
    test_identical_and_resume(SLIM_LOSS_SLIM, "slim");
    test_identical_and_resume(SLIM_LOSS_RSKD, "rskd");
    test_refusals();
    test_order();
    test_eval();
    return tap_done();
}
