/*
 * fuzz_codec.c — libFuzzer harness for the record codec.
 *
 * Every input is first decoded as a chunk (checked and unchecked): that must
 * never crash, whatever the bytes.  An input that starts with 'D' is also
 * read as a distribution spec, encoded, decoded and compared entry by entry
 * against the precision bound; a mismatch aborts.
 *
 * Spec: 'D', mode byte (0..5: logprob 0.01, logprob 1e-3, prob 1e-4,
 * prob 0.01, lossless, sampled), V-2 as 3 bytes (mod 262143), npos-1 (mod
 * 16), target byte (x 256 bytes, 0 = default); then per position: k (mod 64),
 * lse as 4 bytes of float bits, and per entry an id (3 bytes, mod V;
 * duplicates dropped) and a value (4 bytes of float bits; NaN / +inf become
 * -inf; counts use the low 16 bits).  The encoder's reconstruction
 * (slim_chunk_encoded) must be bitwise the id-order decode.
 */
#include "codec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAXPOS 16
#define MAXK 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static slim_codec *C;
static uint32_t dec_ids[1 << 16];
static float dec_vals[1 << 16];
static slim_dist dec_out[1 << 12];

static void decode_any(const uint8_t *data, size_t size)
{
    slim_chunk_header h;
    size_t need;
    slim_chunk_header_read(data, size, 0, &h);
    slim_chunk_header_read(data, size, 1, &h);
    for (int check = 0; check < 2; check++) {
        for (int flags = 0; flags < 2; flags++) {
            if (slim_chunk_header_read(data, size, 0, &h) == 0 && h.npos > 0) {
                uint32_t n = h.npos < (1 << 12) ? h.npos : (1 << 12);
                slim_chunk_decode(C, data, size, 0, n, dec_out, dec_ids, dec_vals, 1 << 16, &need,
                                  flags ? SLIM_READ_ID_ORDER : 0, check);
                slim_chunk_decode(C, data, size, h.npos - 1, 1, dec_out, dec_ids, dec_vals, 1 << 16,
                                  &need, flags ? SLIM_READ_ID_ORDER : 0, check);
            }
        }
    }
}

static uint32_t rd(const uint8_t **p, const uint8_t *end, int n)
{
    uint32_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | (*p < end ? *(*p)++ : 0);
    return v;
}

static float f_of(uint32_t b)
{
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static int ok_value(const slim_chunk_params *pp, float ref, float x, float y)
{
    if (memcmp(&x, &y, 4) == 0) return 1;   /* exact (raw escapes), even where p overflows */
    if (pp->kind == SLIM_KIND_SAMPLED || pp->prec.mode == SLIM_PREC_LOSSLESS) return 0;
    if (pp->prec.mode == SLIM_PREC_LOGPROB) {
        if (x == -INFINITY || y == -INFINITY) return x == y;
        return fabs((double)x - (double)y) <= pp->prec.eps;
    }
    return fabs(exp((double)x - ref) - exp((double)y - ref)) <= pp->prec.eps;
}

static void roundtrip(const uint8_t *data, size_t size)
{
    static const slim_precision precs[] = {{SLIM_PREC_LOGPROB, 0.01}, {SLIM_PREC_LOGPROB, 1e-3},
                                           {SLIM_PREC_PROB, 1e-4}, {SLIM_PREC_PROB, 0.01},
                                           {SLIM_PREC_LOSSLESS, 0}, {0, 0}};
    static uint32_t ids[MAXPOS][MAXK];
    static float vals[MAXPOS][MAXK];
    static slim_dist d[MAXPOS];
    static uint8_t buf[1 << 16];
    const uint8_t *p = data + 1, *end = data + size;
    unsigned m = rd(&p, end, 1) % 6;
    slim_chunk_params pp = {m == 5 ? SLIM_KIND_SAMPLED : SLIM_KIND_LOGITS, precs[m],
                            2 + rd(&p, end, 3) % 262143, 0, 0};
    uint32_t npos = 1 + rd(&p, end, 1) % MAXPOS;
    pp.target_bytes = rd(&p, end, 1) * 256;
    for (uint32_t i = 0; i < npos; i++) {
        uint32_t k = rd(&p, end, 1) % MAXK, n = 0;
        d[i].lse = f_of(rd(&p, end, 4));
        d[i].n_samples = 0;
        for (uint32_t j = 0; j < k; j++) {
            uint32_t id = rd(&p, end, 3) % pp.vocab_size, vb = rd(&p, end, 4), dup = 0;
            for (uint32_t t = 0; t < n; t++) dup |= ids[i][t] == id;
            if (dup) continue;
            float v = f_of(vb);
            if (pp.kind == SLIM_KIND_SAMPLED) v = (float)(vb & 0xffff);
            else if (isnan(v) || v == INFINITY) v = -INFINITY;
            ids[i][n] = id;
            vals[i][n++] = v;
            d[i].n_samples += pp.kind == SLIM_KIND_SAMPLED ? (vb & 0xffff) : 0;
        }
        d[i].k = n;
        d[i].ids = ids[i];
        d[i].vals = vals[i];
    }
    for (uint32_t done = 0; done < npos;) {
        size_t len = 0, need = 0;
        uint32_t used = 0;
        pp.first_pos = done;
        int rc = slim_chunk_encode(C, &pp, d + done, npos - done, buf, sizeof buf, &len, &used);
        if (rc) abort();
        /* what the encoder says a decoder reconstructs: bitwise the decode */
        uint32_t nrec = 0;
        const slim_dist *rec = slim_chunk_encoded(C, &nrec);
        rc = slim_chunk_decode(C, buf, len, 0, used, dec_out, dec_ids, dec_vals, 1 << 16, &need,
                               SLIM_READ_ID_ORDER, 1);
        if (rc || !rec || nrec != used) abort();
        for (uint32_t i = 0; i < used; i++) {
            const slim_dist *a = &rec[i], *b = &dec_out[i];
            if (a->k != b->k || a->n_samples != b->n_samples || memcmp(&a->lse, &b->lse, 4) ||
                memcmp(a->ids, b->ids, a->k * sizeof *a->ids) ||
                memcmp(a->vals, b->vals, a->k * sizeof *a->vals))
                abort();
        }
        rc = slim_chunk_decode(C, buf, len, 0, used, dec_out, dec_ids, dec_vals, 1 << 16, &need, 0, 1);
        if (rc) abort();
        for (uint32_t i = 0; i < used; i++) {
            const slim_dist *in = &d[done + i], *o = &dec_out[i];
            if (o->k != in->k || memcmp(&o->lse, &in->lse, 4) || o->n_samples != in->n_samples) abort();
            float ref = in->lse;
            if (!isfinite(ref)) {
                int any = 0;
                ref = 0;
                for (uint32_t j = 0; j < in->k; j++)
                    if (in->vals[j] != -INFINITY && (!any || in->vals[j] > ref)) { ref = in->vals[j]; any = 1; }
            }
            for (uint32_t j = 0; j < o->k; j++) {
                uint32_t t = 0;
                while (t < in->k && in->ids[t] != o->ids[j]) t++;
                if (t == in->k || !ok_value(&pp, ref, in->vals[t], o->vals[j])) abort();
                if (j && (o->vals[j - 1] < o->vals[j] ||
                          (o->vals[j - 1] == o->vals[j] && o->ids[j - 1] > o->ids[j]))) abort();
            }
        }
        done += used;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!C && slim_codec_new(&C)) abort();
    decode_any(data, size);
    if (size >= 1 && data[0] == 'D') roundtrip(data, size);
    return 0;
}
