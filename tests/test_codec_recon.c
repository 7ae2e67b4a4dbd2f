/*
 * test_codec_recon.c — what the encoder says a decoder will reconstruct
 * (slim_chunk_encoded) is bitwise what slim_chunk_decode returns, for every
 * kind and precision, on awkward inputs (unsorted ids, -inf, values above
 * lse, unknown lse, escapes to raw floats, empty positions), and the
 * chunk's statistics block is slim_dist_pstat of those values; a prepared
 * sequence's content hash (now computed from that reconstruction) equals
 * the one computed by decoding the chunks (SLIM_VERIFY_ENCODE) and
 * slim_content_hash of the values read back.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "lib/tap.h"
#include "slim.h"

static uint64_t rng = 0x1234567;
static uint64_t next_u64(void)
{
    uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static uint32_t below(uint32_t n) { return (uint32_t)(next_u64() % n); }
static double unif(void) { return (double)(next_u64() >> 11) / 9007199254740992.0; }

#define NPOS 300
#define KMAX 400
static slim_dist in[NPOS];
static uint32_t in_ids[NPOS * KMAX];
static float in_vals[NPOS * KMAX];
static slim_dist out[NPOS];
static uint32_t out_ids[NPOS * KMAX];
static float out_vals[NPOS * KMAX];
static uint8_t chunk[NPOS * KMAX * 16 + 65536];

static uint32_t gcd(uint32_t a, uint32_t b) { return b ? gcd(b, a % b) : a; }

/* One awkward position: V ids, k distinct (sometimes sorted), values. */
static void make_pos(slim_dist *d, int kind, uint32_t V, uint32_t *ids, float *vals)
{
    uint32_t k = below(8) == 0 ? 0 : 1 + below(below(4) ? 40 : KMAX);
    if (k > V) k = V;
    uint32_t start = below(V), stride = 1 + below(7);
    while (gcd(stride, V) != 1) stride--;  /* coprime with V: distinct ids */
    for (uint32_t j = 0; j < k; j++) ids[j] = (uint32_t)((start + (uint64_t)j * stride) % V);
    if (below(3) == 0)  /* unsorted */
        for (uint32_t j = k; j > 1; j--) {
            uint32_t r = below(j), t = ids[j - 1];
            ids[j - 1] = ids[r];
            ids[r] = t;
        }
    d->k = k;
    d->ids = ids;
    d->vals = vals;
    d->n_samples = 0;
    if (kind == SLIM_KIND_SAMPLED) {
        for (uint32_t j = 0; j < k; j++) {
            vals[j] = (float)(1 + below(below(2) ? 3 : 100000));
            d->n_samples += (uint32_t)vals[j];
        }
        d->lse = below(2) ? 0 : NAN;
        return;
    }
    float lse = (float)(unif() * 40 - 20);
    for (uint32_t j = 0; j < k; j++) {
        uint32_t r = below(50);
        if (r == 0) vals[j] = -INFINITY;
        else if (r == 1) vals[j] = lse + (float)unif();        /* above lse */
        else if (r == 2) vals[j] = (float)(unif() * 2e30 - 1e30);  /* raw escape */
        else if (r == 3) vals[j] = lse - 200;                 /* prob 0 */
        else vals[j] = lse - (float)(unif() * unif() * 25);
    }
    uint32_t l = below(4);
    d->lse = l == 0 ? NAN : l == 1 ? 0 : lse;
}

static int same_dist(const slim_dist *a, const slim_dist *b, char *why, size_t cap)
{
    if (a->k != b->k || a->n_samples != b->n_samples || memcmp(&a->lse, &b->lse, 4)) {
        snprintf(why, cap, "k %u/%u n_samples %u/%u lse %g/%g", a->k, b->k, a->n_samples,
                 b->n_samples, a->lse, b->lse);
        return 0;
    }
    for (uint32_t j = 0; j < a->k; j++)
        if (a->ids[j] != b->ids[j] || memcmp(&a->vals[j], &b->vals[j], 4)) {
            snprintf(why, cap, "entry %u: id %u/%u value %.9g/%.9g", j, a->ids[j], b->ids[j],
                     a->vals[j], b->vals[j]);
            return 0;
        }
    return 1;
}

static void test_codec(slim_codec *c)
{
    static const struct { int kind, mode; double eps; } cases[] = {
        {SLIM_KIND_LOGITS, SLIM_PREC_LOGPROB, 0.01}, {SLIM_KIND_LOGITS, SLIM_PREC_LOGPROB, 1e-5},
        {SLIM_KIND_LOGITS, SLIM_PREC_PROB, 1e-4},    {SLIM_KIND_LOGITS, SLIM_PREC_PROB, 0.02},
        {SLIM_KIND_LOGITS, SLIM_PREC_LOSSLESS, 0},   {SLIM_KIND_SAMPLED, 0, 0},
    };
    TAP_BEGIN("encoder reconstruction == decoder output, bitwise; statistics block == pstat of it");
    int chunks = 0;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        for (int rep = 0; rep < 4; rep++) {
            uint32_t V = rep == 0 ? 50 : rep == 1 ? 32000 : 128256;
            for (uint32_t i = 0; i < NPOS; i++)
                make_pos(&in[i], cases[ci].kind, V, in_ids + i * KMAX, in_vals + i * KMAX);
            slim_chunk_params pp = {cases[ci].kind, {cases[ci].mode, cases[ci].eps}, V, 5, 0};
            pp.target_bytes = rep == 3 ? 2000 : 0;
            for (uint32_t pos = 0; pos < NPOS;) {
                size_t len;
                uint32_t used, m;
                int rc = slim_chunk_encode(c, &pp, in + pos, NPOS - pos, chunk, sizeof chunk, &len, &used);
                CHECK(rc == 0, "case %zu: encode: %s", ci, slim_codec_errmsg(c));
                if (rc) return;
                const slim_dist *rd = slim_chunk_encoded(c, &m);
                CHECK(m == used && rd, "%u reconstructed positions for %u encoded", m, used);
                size_t need;
                rc = slim_chunk_decode(c, chunk, len, 0, used, out, out_ids, out_vals,
                                       sizeof out_ids / 4, &need, SLIM_READ_ID_ORDER, 1);
                CHECK(rc == 0, "decode: %s", slim_codec_errmsg(c));
                for (uint32_t j = 0; j < used && rc == 0; j++) {
                    char why[160];
                    if (!same_dist(&rd[j], &out[j], why, sizeof why)) {
                        CHECK(0, "case %zu V %u position %u: %s", ci, V, pos + j, why);
                        return;
                    }
                }
                /* the statistics block: slim_dist_pstat of the decoded values */
                static slim_pstat ps[NPOS];
                rc = slim_chunk_pstats(c, chunk, len, 0, used, ps, 1);
                CHECK(rc == 0, "pstats: %s", slim_codec_errmsg(c));
                for (uint32_t j = 0; j < used && rc == 0; j++) {
                    slim_pstat want;
                    slim_dist_pstat(&out[j], cases[ci].kind, &want);
                    if (memcmp(&want, &ps[j], sizeof want)) {
                        CHECK(0, "case %zu V %u position %u: stored entropy %.9g tail %.9g, want %.9g %.9g",
                              ci, V, pos + j, ps[j].entropy, ps[j].tail_mass, want.entropy, want.tail_mass);
                        return;
                    }
                }
                pos += used;
                chunks++;
                pp.first_pos += used;
            }
        }
    }
    CHECK(chunks > 24, "only %d chunks: the small target did not split", chunks);
    uint32_t m = 1;
    slim_chunk_params bad = {SLIM_KIND_LOGITS, {SLIM_PREC_LOSSLESS, 0}, 10, 0, 0};
    in[0].k = 1;
    in[0].ids[0] = 99;  /* id >= V: the encode fails and leaves nothing */
    size_t len;
    uint32_t used;
    slim_chunk_encode(c, &bad, in, 1, chunk, sizeof chunk, &len, &used);
    CHECK(slim_chunk_encoded(c, &m) == NULL && m == 0, "a failed encode still reports %u positions", m);
    TAP_END();
}

/* Prepared hashes: from the reconstruction, checked by decoding. */
static void test_prepare(void)
{
    static const char *precs[] = {"logprob:0.01", "prob:1e-4", "lossless", "logprob:1e-6"};
    slim_preparer *pr;
    slim_prepared *p;
    setenv("SLIM_VERIFY_ENCODE", "1", 1);
    slim_preparer_new(&pr);
    slim_prepared_new(&p);
    uint32_t tokens[NPOS];
    TAP_BEGIN("prepared hash == decode-after-encode hash == content hash of decoded values");
    for (int t = 0; t < 5; t++) {
        int kind = t == 4 ? SLIM_KIND_SAMPLED : SLIM_KIND_LOGITS;
        slim_precision prec;
        slim_precision_parse(precs[t % 4], &prec);
        uint32_t V = 1000 + 777 * (uint32_t)t, npos = 100 + 50 * (uint32_t)t;
        for (uint32_t i = 0; i < npos; i++) {
            tokens[i] = below(V);
            make_pos(&in[i], kind, V, in_ids + i * KMAX, in_vals + i * KMAX);
            if (kind == SLIM_KIND_LOGITS && isnan(in[i].lse) && below(2)) in[i].lse = 3;
        }
        int rc = slim_seq_prepare(pr, kind, &prec, V, tokens, npos, in, npos, p);
        CHECK(rc == 0, "%s: %s", precs[t % 4], slim_prepared_errmsg(p));
        if (rc) break;
    }
    TAP_END();
    slim_prepared_free(p);
    slim_preparer_free(pr);
    unsetenv("SLIM_VERIFY_ENCODE");
}

int main(void)
{
    slim_codec *c;
    if (slim_codec_new(&c)) return 1;
    test_codec(c);
    slim_codec_free(c);
    test_prepare();
    return tap_done();
}
