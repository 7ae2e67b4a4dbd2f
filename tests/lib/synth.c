/* synth.c — see synth.h for the model. */
#include "synth.h"

#include <math.h>
#include <stdlib.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t synth_u64(synth *g)
{
    uint64_t *s = g->s;
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 45);
    return r;
}

double synth_unif(synth *g) { return (double)(synth_u64(g) >> 11) * 0x1.0p-53; }

uint32_t synth_below(synth *g, uint32_t n)
{
    return (uint32_t)(((synth_u64(g) >> 32) * (uint64_t)n) >> 32);
}

int synth_init(synth *g, uint32_t V, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) g->s[i] = splitmix64(&x);
    g->V = V;
    g->prior = malloc((size_t)V * sizeof *g->prior);
    if (!g->prior) return -1;
    for (uint32_t j = 0; j < V; j++) g->prior[j] = (float)(-1.1 * log((double)j + 1.0));
    return 0;
}

void synth_free(synth *g)
{
    if (!g) return;
    free(g->prior);
    g->prior = NULL;
}

/* Approximately N(0,1): four 16-bit uniforms from one draw, centred. */
static inline float noise(synth *g)
{
    uint64_t r = synth_u64(g);
    uint32_t a = (uint32_t)(r & 0xffff) + (uint32_t)((r >> 16) & 0xffff) +
                 (uint32_t)((r >> 32) & 0xffff) + (uint32_t)(r >> 48);
    /* sum of 4 U(0,1) has mean 2, variance 1/3 */
    return ((float)a * (1.0f / 65536.0f) - 2.0f) * 1.7320508f;
}

void synth_row(synth *g, float *row, double *lse)
{
    uint32_t V = g->V;
    for (uint32_t j = 0; j < V; j++) row[j] = g->prior[j] + noise(g);
    uint32_t nctx = 4 + synth_below(g, 61);
    for (uint32_t c = 0; c < nctx; c++) {
        uint32_t id = (c & 1) ? synth_below(g, V)
                              : (uint32_t)(exp(synth_unif(g) * log((double)V))) - 1;
        if (id >= V) id = V - 1;
        row[id] += (float)(2.0 + 10.0 * synth_unif(g));
    }
    if (synth_below(g, 3) == 0) {
        uint32_t id = (uint32_t)(exp(synth_unif(g) * log((double)V))) - 1;
        if (id >= V) id = V - 1;
        row[id] += 12.0f;
    }
    float b = (float)exp(-0.7 + 1.7 * synth_unif(g));
    float off = (float)(20.0 * synth_unif(g));
    double mx = -INFINITY;
    for (uint32_t j = 0; j < V; j++) {
        row[j] = row[j] * b + off;
        if (row[j] > mx) mx = row[j];
    }
    if (lse) {
        double s = 0;
        for (uint32_t j = 0; j < V; j++) s += exp((double)row[j] - mx);
        *lse = mx + log(s);
    }
}

float synth_kth_largest(float *x, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1, want = k - 1;
    while (lo < hi) {
        float piv = x[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (x[i] > piv) i++;
            while (x[j] < piv) j--;
            if (i <= j) {
                float t = x[i];
                x[i] = x[j];
                x[j] = t;
                i++;
                if (j == 0) break;
                j--;
            }
        }
        if (want <= j) hi = j;
        else if (want >= i) lo = i;
        else break;
    }
    return x[want];
}
