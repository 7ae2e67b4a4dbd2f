/*
 * loss.h — the training losses over student logits and sparse teacher
 * targets (docs/TRAIN.md, "Losses", gives the formulas).  Per position:
 *
 *   ce    L = CE(y) = -log p_S(y)
 *   kd    L = (1-a) CE(y) + a tau^2 KD_K
 *   slim  L = CE(y) + w tau^2 KD_K, w = 1 - exp(-p_T(y)/p_S(y))  (text)
 *                                   w = 1 - exp(-p_S(y)/p_T(y))  (printed)
 *         w is a constant (no gradient); p_T(y) = 0 when y is not stored:
 *         text -> w = 0, printed -> w = 1 (the limit of the ratio)
 *   rskd  L = (1-a) CE(y) + a tau^2 KD over counts/N of the sampled ids
 *
 * KD_K = -sum_{j in K} q_j log p_S^tau(j) [- q_tail log(1 - sum_K p_S^tau)]
 * with the tail modes: renorm (q = p_T renormalised over K), zero (q = p_T,
 * mass of the tail dropped), ghost (q = p_T plus one bucket holding the tail
 * mass 1 - sum_K p_T on both sides).  At tau != 1 the teacher side is the
 * (K + tail bucket) distribution raised to 1/tau and renormalised.
 * Positions with a gold token but no stored distribution get CE only;
 * positions without a gold token (y < 0) get nothing.
 */
#ifndef SLIM_LOSS_H
#define SLIM_LOSS_H

#include <stddef.h>
#include <stdint.h>

enum { SLIM_LOSS_CE = 0, SLIM_LOSS_KD, SLIM_LOSS_SLIM, SLIM_LOSS_RSKD };
enum { SLIM_TAIL_RENORM = 0, SLIM_TAIL_ZERO, SLIM_TAIL_GHOST };

typedef struct slim_loss_config {
    int kind;          /* SLIM_LOSS_* */
    int tail;          /* SLIM_TAIL_* */
    float alpha;       /* kd / rskd weight of the KD term (0.5) */
    float tau;         /* temperature (1) */
    int printed;       /* slim: 1 = the printed Eq. 4 weight */
} slim_loss_config;

/* One position's target.  Entries ids[off..off+k), pt[off..off+k) are the
 * teacher's true probabilities p_T(j) (counts/N for sampled records). */
typedef struct slim_target {
    int32_t y;         /* gold next token, or -1: position not trained */
    uint32_t k;        /* stored entries; 0 = no distribution (CE only) */
    uint32_t off;
    float tail;        /* 1 - sum_K p_T, clamped to [0, 1] */
} slim_target;

/* Sums over the rows of one call (means are sum / count). */
typedef struct slim_loss_stats {
    double loss, ce, kd, w, w2;  /* kd = tau^2 KD_K summed over rows with a distribution */
    int64_t n, n_kd, n_w;        /* trained rows, rows with KD, rows with a SLIM weight */
    int64_t n_w0;                /* rows whose SLIM weight is exactly 0 (text weight, y not in K) */
} slim_loss_stats;

typedef struct slim_loss_ws slim_loss_ws;

/* Scratch for rows of width V, up to nrows rows per call. */
int slim_loss_ws_new(slim_loss_ws **out, int V, int nrows);
void slim_loss_ws_free(slim_loss_ws *ws);

/* Parse "ce|kd|slim|rskd", "renorm|zero|ghost": the enum or -1. */
int slim_loss_kind_parse(const char *s);
int slim_loss_tail_parse(const char *s);
const char *slim_loss_kind_name(int kind);
const char *slim_loss_tail_name(int tail);

/*
 * logits (N, V) are replaced by dL/dlogits where L = scale * (mean over
 * trained rows of the per-row loss).  Rows with y < 0 get zero gradient.
 * Returns the statistics (unscaled) in *st.  Deterministic: per-row results
 * are summed in row order.
 */
void slim_loss_batch(const slim_loss_config *c, float *logits, int N, int V,
                     const slim_target *tg, const uint32_t *ids, const float *pt,
                     float scale, slim_loss_ws *ws, slim_loss_stats *st);

#endif
