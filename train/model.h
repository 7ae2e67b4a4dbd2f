/*
 * model.h — the student: a decoder-only transformer (RMSNorm, rotary
 * positions, SwiGLU MLP, optional tied embeddings), trained in C llm.c-style
 * and run for inference llama2.c-style from an mmap'd checkpoint.
 *
 * Memory: parameters, gradients, AdamW state (m, v) and activations are each
 * ONE allocation carved into tensors (slim_params, slim_acts); nothing is
 * allocated by forward / backward / step.  Matrix products use OpenBLAS
 * cblas_sgemm; other loops use OpenMP with static schedules, and every
 * reduction is done in a fixed order, so the same inputs and thread count
 * give bit-identical results.
 *
 * Tensors are row-major.  A weight W of shape (O, I) maps x (N, I) to
 * x W^T (N, O).  Shapes below: L layers, C width, NH heads, hs = C/NH,
 * F the MLP hidden width, V the vocabulary (= the teacher's logit width),
 * B the batch, T the context.
 */
#ifndef SLIM_MODEL_H
#define SLIM_MODEL_H

#include <stddef.h>
#include <stdint.h>

typedef struct slim_model_config {
    int vocab;         /* V */
    int ctx;           /* maximum sequence length T */
    int layers;        /* L */
    int dim;           /* C */
    int heads;         /* NH; must divide C, and C/NH must be even (RoPE) */
    int ffn;           /* F; 0 = default (8C/3 rounded up to a multiple of 32) */
    int tie;           /* 1: the output head is the embedding matrix */
    float rope_theta;  /* 10000 unless set */
    float norm_eps;    /* 1e-5 unless set */
} slim_model_config;

/* Fill the defaults (ffn, rope_theta, norm_eps) and validate.  Returns 0, or
 * -1 with a message in err ("heads (3) must divide dim (64)"). */
int slim_model_config_check(slim_model_config *c, char *err, size_t cap);

/* Pointers into one parameter (or gradient) block.  Order in memory is the
 * order of the fields; the checkpoint stores the block as is. */
typedef struct slim_params {
    float *wte;      /* (V, C)    token embedding */
    float *rms1;     /* (L, C)    pre-attention RMSNorm weight */
    float *wq;       /* (L, C, C) */
    float *wk;       /* (L, C, C) */
    float *wv;       /* (L, C, C) */
    float *wo;       /* (L, C, C) attention output projection */
    float *rms2;     /* (L, C)    pre-MLP RMSNorm weight */
    float *w1;       /* (L, F, C) SwiGLU gate */
    float *w3;       /* (L, F, C) SwiGLU up */
    float *w2;       /* (L, C, F) SwiGLU down */
    float *rmsf;     /* (C)       final RMSNorm weight */
    float *head;     /* (V, C)    output head; == wte when tied */
} slim_params;

/* Number of floats of the parameter block. */
size_t slim_model_param_count(const slim_model_config *c);
/* Carve base[] (param_count floats) into p. */
void slim_params_point(slim_params *p, const slim_model_config *c, float *base);

/* Activations kept for backward (one allocation). */
typedef struct slim_acts {
    float *resid;    /* (L+1, B, T, C) input of each layer; [L] = final */
    float *ln1;      /* (L, B, T, C) */
    float *rstd1;    /* (L, B, T) */
    float *q, *k, *v;/* (L, B, T, C) q, k after RoPE */
    float *att;      /* (L, B, NH, T, T) attention probabilities */
    float *atty;     /* (L, B, T, C) attention output before projection */
    float *mid;      /* (L, B, T, C) residual after attention */
    float *ln2;      /* (L, B, T, C) */
    float *rstd2;    /* (L, B, T) */
    float *h1, *h3;  /* (L, B, T, F) gate / up pre-activations */
    float *hg;       /* (L, B, T, F) silu(h1) * h3 */
    float *lnf;      /* (B, T, C) */
    float *rstdf;    /* (B, T) */
    float *logits;   /* (B, T, V); the loss overwrites it with dL/dlogits */
    /* backward scratch, reused by every layer */
    float *dx;       /* (B, T, C) gradient of the residual stream */
    float *dln;      /* (B, T, C) */
    float *dq, *dk, *dv, *datty; /* (B, T, C) */
    float *datt;     /* (B, NH, T, T) */
    float *dh1, *dh3, *dhg;      /* (B, T, F) */
} slim_acts;

typedef struct slim_model {
    slim_model_config cfg;
    int B, T;            /* batch and sequence length of the activations */
    size_t n_params;
    float *params;       /* one block; p points into it */
    float *grads;        /* one block; g points into it */
    float *adam_m, *adam_v; /* one block of 2 * n_params */
    float *act_mem;      /* one block; a points into it */
    slim_params p, g;
    slim_acts a;
    float *rope_cos, *rope_sin; /* (ctx, hs/2) */
} slim_model;

/* Build a model for training with batch B, sequence length T <= ctx.
 * Parameters are zero until slim_model_init or a load.  0 / -1 (no memory). */
int slim_model_new(slim_model **out, const slim_model_config *c, int B, int T);
void slim_model_free(slim_model *m);

/* Deterministic initialisation from a seed: N(0, 0.02) matrices (output
 * projections scaled by 1/sqrt(2L)), norm weights 1. */
void slim_model_init(slim_model *m, uint64_t seed);

/* tokens (B, T) -> m->a.logits (B, T, V).  Ids must be < V. */
void slim_model_forward(slim_model *m, const int32_t *tokens);
/* Needs m->a.logits to hold dL/dlogits (B, T, V); ADDS into m->grads. */
void slim_model_backward(slim_model *m, const int32_t *tokens);
void slim_model_zero_grad(slim_model *m);

/* Global L2 norm of the gradients (fixed-order double reduction). */
double slim_model_grad_norm(const slim_model *m);

typedef struct slim_adamw {
    float lr, beta1, beta2, eps, wd;  /* wd is applied to matrices only */
} slim_adamw;

/* One AdamW update at 1-based step t; grads scaled by gscale first (for
 * clipping).  Weight decay skips the RMSNorm weights. */
void slim_model_adamw(slim_model *m, const slim_adamw *o, int64_t t, float gscale);

/* ------------------------------------------------------------ inference */

/* A forward with a KV cache over up to `maxb` sequences in lockstep, over a
 * parameter block that may live in a read-only mmap (see slim_ckpt_map in
 * ckpt.h).  Feeding several sequences at once turns every weight product
 * into a matrix-matrix one, so the weights are read once per step instead
 * of once per sequence: what makes generation fast (docs/TEACHER.md). */
typedef struct slim_infer slim_infer;

int slim_infer_new(slim_infer **out, const slim_model_config *c, const float *params);
/* The same for up to maxb sequences (cache slots 0 .. maxb-1). */
int slim_infer_new_batch(slim_infer **out, const slim_model_config *c, const float *params,
                         int maxb);
void slim_infer_free(slim_infer *s);
/* Feed `token` at position pos (0 <= pos < ctx; positions must be fed in
 * order 0, 1, ... — pos 0 restarts the sequence).  Returns the logits row
 * [V] predicting the next token, owned by s, valid until the next call. */
const float *slim_infer_step(slim_infer *s, int token, int pos);
/* Feed tokens[i] at position pos to the sequence in cache slot slot[i],
 * for i < n (distinct slots, each fed positions 0, 1, ... in order).
 * Returns the logits (n, V), row i for slot[i], owned by s and valid until
 * the next call; NULL on a bad token, slot or position.  A row depends on
 * its own sequence and on n (the products' blocking), never on the other
 * rows' values. */
const float *slim_infer_step_batch(slim_infer *s, int n, const int *slot, const int *tokens,
                                   int pos);

/* Splitmix64-based generator used for initialisation and data order. */
uint64_t slim_rng_next(uint64_t *state);
double slim_rng_normal(uint64_t *state);

#endif
