/*
 * trainer.h — slim-train's configuration, training loop and evaluation,
 * independent of the command line and of SQLite (the tool records runs
 * through the hooks).
 */
#ifndef SLIM_TRAINER_H
#define SLIM_TRAINER_H

#include "ckpt.h"
#include "data.h"
#include "loss.h"
#include "model.h"

typedef struct slim_train_config {
    slim_model_config model;   /* model.vocab comes from the data */
    slim_loss_config loss;
    int batch, accum;          /* sequences per micro-batch; micro-batches per step */
    int64_t steps;             /* total optimizer steps */
    int64_t warmup;            /* linear warmup steps, then cosine to lr_min */
    float lr, lr_min, wd, clip, beta1, beta2, eps;
    uint64_t seed;
    int threads;
    int log_every, eval_every, ckpt_every;
    int64_t stop_after;        /* stop after this many steps in this invocation (0 = no) */
    int64_t train_limit;       /* use only the first N train-split members (0 = all) */
} slim_train_config;

/* Defaults of a preset ("tiny", "small", "base"); -1 on an unknown name. */
int slim_train_preset(slim_train_config *c, const char *name);
/* Set one key (the --config file keys = the long flags without "--"). */
int slim_train_config_set(slim_train_config *c, const char *key, const char *val,
                          char *err, size_t cap);
/* Read key=value lines ('#' comments). */
int slim_train_config_file(slim_train_config *c, const char *path, char *err, size_t cap);
/* Every hyper-parameter sane?  Fills model defaults. */
int slim_train_config_check(slim_train_config *c, char *err, size_t cap);
/* The settings that define the trained function, as key=value lines in a
 * fixed order (steps, threads, logging excluded); caller frees. */
char *slim_train_config_text(const slim_train_config *c);
/* The same plus steps and threads, as one JSON object; caller frees. */
char *slim_train_config_json(const slim_train_config *c);
/* Learning rate at 1-based step t. */
float slim_train_lr(const slim_train_config *c, int64_t t);

typedef struct slim_metrics {
    int64_t step, tokens;
    double loss, ce, kd, w_mean, w_std;  /* kd, w_*: NaN when not applicable */
    double w_zero;                       /* share of SLIM-weighted rows with w = 0 */
    double lr, grad_norm, tokens_per_s, eta_s, data_wait_s;
} slim_metrics;

typedef struct slim_train_hooks {
    void *ctx;
    void (*metrics)(void *ctx, const slim_metrics *m);
    void (*checkpoint)(void *ctx, const char *path, uint64_t step, const char *sha_hex,
                       size_t bytes);
    /* every eval_every steps (and never inside a step) */
    void (*evaluate)(void *ctx, const slim_model_config *mc, const float *params, uint64_t step);
    volatile int *interrupt;   /* set by a signal handler: save and stop */
} slim_train_hooks;

/*
 * Train from scratch or from `resume` (whose configuration and snapshot hash
 * the caller has checked) to c->steps, writing `out` at the end, every
 * ckpt_every steps and when stopped.  Returns 0 when all steps are done,
 * 1 when stopped early (stop_after, interrupt), -1 on error (err).
 */
int slim_train_run(const slim_train_config *c, const slim_tsrc *src, const uint8_t hash[32],
                   const slim_ckpt *resume, const char *out, const slim_train_hooks *h,
                   char *err, size_t cap);

typedef struct slim_eval_result {
    int64_t positions, with_dist;
    double ce, perplexity, kl, top1_agree, ece;  /* kl, top1: NaN without distributions */
} slim_eval_result;

/* Score params on every window of src, in order. */
int slim_train_eval(const slim_model_config *mc, const float *params, const slim_tsrc *src,
                    int batch, slim_eval_result *r, char *err, size_t cap);

#endif
