/*
 * pstats.c — per-position statistics shared by the virtual tables, the SQL
 * functions and `slim-query stats`: normaliser, tail mass, entropy, KL.
 */
#include <math.h>

#include "query.h"

double slimq_logit(const slim_dist *d, int kind, uint32_t j)
{
    if (kind == SLIM_KIND_SAMPLED)
        return d->n_samples ? log((double)d->vals[j] / d->n_samples) : NAN;
    return d->vals[j];
}

/* logsumexp of the stored values: the normaliser when the teacher's lse is
 * unknown, i.e. the stored entries are taken as the whole distribution. */
static double lse_stored(const slim_dist *d)
{
    double m = -INFINITY, s = 0;
    for (uint32_t j = 0; j < d->k; j++)
        if (d->vals[j] > m) m = d->vals[j];
    if (m == -INFINITY) return m;
    for (uint32_t j = 0; j < d->k; j++) s += exp(d->vals[j] - m);
    return m + log(s);
}

double slimq_norm(const slim_dist *d, int kind, int *tail_known)
{
    *tail_known = 1;
    if (kind == SLIM_KIND_SAMPLED) return 0;
    if (!isnan(d->lse)) return d->lse;
    *tail_known = 0;
    return lse_stored(d);
}

/* Entropy and tail come from the library's slim_dist_pstat -- the one
 * definition, rounded to float, that the store keeps per position -- so
 * that every figure slim-query prints agrees with the scanned columns. */
void slimq_stats(const slim_dist *d, int kind, slimq_pstats *out)
{
    slim_pstat p;
    out->lse = slimq_norm(d, kind, &out->tail_known);
    slim_dist_pstat(d, kind, &p);
    out->tail = out->tail_known ? p.tail_mass : 0;
    out->entropy = p.entropy;
}

int slimq_find(const slim_dist *d, uint32_t tok)
{
    for (uint32_t j = 0; j < d->k; j++)
        if (d->ids[j] == tok) return (int)j;
    return -1;
}

/* One side of the KL: its probability of stored entry j, and the mass its
 * tail gives each id it did not store. */
typedef struct side {
    const slim_dist *d;
    int kind;
    slimq_pstats s;
    double per_id;  /* tail / (V - k) */
} side;

static void side_init(side *x, const slim_dist *d, int kind, uint32_t V)
{
    x->d = d;
    x->kind = kind;
    slimq_stats(d, kind, &x->s);
    x->per_id = V > d->k ? x->s.tail / (double)(V - d->k) : 0;
}

static double side_p(const side *x, uint32_t j)
{
    return exp(slimq_logit(x->d, x->kind, j) - x->s.lse);
}

static double kl_term(double p, double q)
{
    if (p <= 0) return 0;
    if (q <= 0) return INFINITY;
    return p * log(p / q);
}

double slimq_kl(const slim_dist *a, int kind_a, const slim_dist *b,
                int kind_b, uint32_t V)
{
    side A, B;
    side_init(&A, a, kind_a, V);
    side_init(&B, b, kind_b, V);
    double kl = 0;
    uint32_t i = 0, j = 0, nu = 0;  /* nu = size of the union */
    while (i < a->k || j < b->k) {
        double p, q;
        if (j >= b->k || (i < a->k && a->ids[i] < b->ids[j])) {
            p = side_p(&A, i++);
            q = B.per_id;
        } else if (i >= a->k || b->ids[j] < a->ids[i]) {
            p = A.per_id;
            q = side_p(&B, j++);
        } else {
            p = side_p(&A, i++);
            q = side_p(&B, j++);
        }
        kl += kl_term(p, q);
        nu++;
    }
    if (V > nu)  /* the ids neither side stored, as one bucket */
        kl += kl_term(A.per_id * (V - nu), B.per_id * (V - nu));
    return kl;
}
