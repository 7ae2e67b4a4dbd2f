/*
 * fixtures.c — see fixtures.h.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fixtures.h"
#include "synth.h"

size_t fx_dtype_size(const char *d)
{
    if (!strcmp(d, "F32") || !strcmp(d, "I32")) return 4;
    if (!strcmp(d, "F16") || !strcmp(d, "BF16")) return 2;
    if (!strcmp(d, "I64") || !strcmp(d, "F64")) return 8;
    if (!strcmp(d, "U8") || !strcmp(d, "BOOL")) return 1;
    return 0;
}

static uint64_t nbytes_of(const fx_tensor *t)
{
    uint64_t n = fx_dtype_size(t->dtype);
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}

int fx_write_safetensors(const char *path, const fx_tensor *t, int n)
{
    char hdr[8192];
    size_t h = 0;
    uint64_t off = 0;
    h += (size_t)snprintf(hdr + h, sizeof hdr - h, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n && h < sizeof hdr; i++) {
        uint64_t nb = nbytes_of(&t[i]);
        h += (size_t)snprintf(hdr + h, sizeof hdr - h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[",
                              t[i].name, t[i].dtype);
        for (int d = 0; d < t[i].ndim && h < sizeof hdr; d++)
            h += (size_t)snprintf(hdr + h, sizeof hdr - h, d ? ",%llu" : "%llu",
                                  (unsigned long long)t[i].shape[d]);
        if (h < sizeof hdr)
            h += (size_t)snprintf(hdr + h, sizeof hdr - h, "],\"data_offsets\":[%llu,%llu]}",
                                  (unsigned long long)off, (unsigned long long)(off + nb));
        off += nb;
    }
    if (h + 9 >= sizeof hdr) return -1;
    hdr[h++] = '}';
    while (h % 8) hdr[h++] = ' ';  /* the format pads with spaces */
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)h >> (8 * i));
    int ok = fwrite(len, 1, 8, f) == 8 && fwrite(hdr, 1, h, f) == h;
    for (int i = 0; i < n && ok; i++) {
        uint64_t nb = nbytes_of(&t[i]);
        ok = fwrite(t[i].data, 1, nb, f) == nb;
    }
    return fclose(f) == 0 && ok ? 0 : -1;
}

int fx_write_npy(const char *path, const char *descr, int ndim, const uint64_t *shape,
                 const void *data, size_t nbytes)
{
    char h[256];
    int n = snprintf(h, sizeof h, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int d = 0; d < ndim; d++)
        n += snprintf(h + n, sizeof h - (size_t)n, "%llu,%s", (unsigned long long)shape[d],
                      d + 1 < ndim ? " " : "");
    n += snprintf(h + n, sizeof h - (size_t)n, "), }");
    /* magic(6) + version(2) + len(2) + header, padded to 64 with '\n' last */
    size_t total = 10 + (size_t)n + 1;
    size_t pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    uint16_t hl = (uint16_t)((size_t)n + pad + 1);
    uint8_t pre[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (uint8_t)(hl & 0xff), (uint8_t)(hl >> 8) };
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(h, 1, (size_t)n, f) == (size_t)n;
    for (size_t i = 0; i < pad && ok; i++) ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF && fwrite(data, 1, nbytes, f) == nbytes;
    return fclose(f) == 0 && ok ? 0 : -1;
}

uint16_t fx_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* NaN */
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

uint16_t fx_f32_to_f16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);         /* NaN */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);        /* overflow -> Inf */
    if (a < 0x38800000u) {                                          /* subnormal / zero */
        if (a < 0x33000000u) return (uint16_t)sign;
        uint32_t m = (a & 0x7fffffu) | 0x800000u;
        int sh = 126 - (int)(a >> 23);                              /* 14..24 */
        uint32_t r = m >> sh, rem = m & ((1u << sh) - 1), half = 1u << (sh - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((a >> 13) - (112u << 10)), rem = a & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1))) r++;
    return (uint16_t)(sign | r);
}

/* ------------------------------------------------------------ dense file */

static float round_to(const char *dt, float v)
{
    if (!strcmp(dt, "F16")) {
        uint16_t h = fx_f32_to_f16(v);
        /* back to float: exact for every f16 */
        uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, u;
        if (e == 0) {
            float f = (float)m * 5.9604644775390625e-08f;
            return sign ? -f : f;
        }
        u = e == 31 ? sign | 0x7f800000u | (m << 13) : sign | ((e + 112) << 23) | (m << 13);
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    if (!strcmp(dt, "BF16")) {
        uint32_t u = (uint32_t)fx_f32_to_bf16(v) << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    return v;
}

static void put_val(const char *dt, uint8_t *dst, size_t i, float v)
{
    if (!strcmp(dt, "F16")) { uint16_t h = fx_f32_to_f16(v); memcpy(dst + 2 * i, &h, 2); }
    else if (!strcmp(dt, "BF16")) { uint16_t h = fx_f32_to_bf16(v); memcpy(dst + 2 * i, &h, 2); }
    else memcpy(dst + 4 * i, &v, 4);
}

static void put_id(const char *dt, uint8_t *dst, size_t i, int64_t v)
{
    if (!strcmp(dt, "I32")) { int32_t x = (int32_t)v; memcpy(dst + 4 * i, &x, 4); }
    else memcpy(dst + 8 * i, &v, 8);
}

int fx_dense_write(const char *path, const fx_dense *d, uint32_t *tokens, float *logits,
                   uint32_t *len)
{
    size_t N = d->N, T = d->T, V = d->V;
    size_t vs = fx_dtype_size(d->logits_dtype), is = fx_dtype_size(d->ids_dtype);
    uint8_t *lg = calloc(N * T * V, vs), *ids = calloc(N * T, is);
    int64_t *lens = calloc(N, sizeof *lens);
    uint8_t *mask = calloc(N * T, 1);
    float *row = malloc(V * sizeof *row), *pre = malloc((d->prefix + 1) * V * sizeof *pre);
    synth g;
    int rc = -1;
    if (!lg || !ids || !lens || !mask || !row || !pre || synth_init(&g, (uint32_t)V, d->seed))
        goto out;
    for (size_t t = 0; t < d->prefix && t < T; t++) synth_row(&g, pre + t * V, NULL);
    for (size_t n = 0; n < N; n++) {
        size_t L = d->pad ? T - n % 3 : T, off = d->pad == 3 ? T - L : 0;
        lens[n] = (int64_t)L;
        if (len) len[n] = (uint32_t)L;
        for (size_t t = 0; t < L; t++) {
            size_t at = n * T + off + t;
            int64_t id = t < d->prefix ? (int64_t)((t * 7 + 3) % V)
                                       : (int64_t)((n * 131 + t * 17 + d->seed) % V);
            put_id(d->ids_dtype, ids, at, id);
            mask[at] = 1;
            if (tokens) tokens[n * T + t] = (uint32_t)id;
            if (t < d->prefix) memcpy(row, pre + t * V, V * sizeof *row);
            else synth_row(&g, row, NULL);
            if ((int)n == d->nan_seq && (int)t == d->nan_pos) row[1] = NAN;
            for (size_t v = 0; v < V; v++) {
                put_val(d->logits_dtype, lg, at * V + v, row[v]);
                if (logits) logits[(n * T + t) * V + v] = round_to(d->logits_dtype, row[v]);
            }
        }
    }
    enum { MAXEXTRA = 64 };
    fx_tensor ts[3 + MAXEXTRA];
    static char names[MAXEXTRA][32];
    int ne = d->extra < MAXEXTRA ? d->extra : MAXEXTRA, nt = 0;
    float *hid = ne ? calloc(N * T * 4, sizeof *hid) : NULL;
    if (ne && !hid) { rc = -1; goto gone; }
    for (int e = 0; e < ne; e++) {
        snprintf(names[e], sizeof names[e], "hidden_states.%d", e);
        ts[nt++] = (fx_tensor){ names[e], "F32", 3, { N, T, 4 }, hid };
    }
    ts[nt++] = (fx_tensor){ "input_ids", d->ids_dtype, 2, { N, T }, ids };
    ts[nt++] = (fx_tensor){ "logits", d->logits_dtype, 3, { N, T, V }, lg };
    if (d->flat && N == 1) {
        ts[nt - 2] = (fx_tensor){ "input_ids", d->ids_dtype, 1, { T }, ids };
        ts[nt - 1] = (fx_tensor){ "logits", d->logits_dtype, 2, { T, V }, lg };
    }
    if (d->pad == 1) ts[nt++] = (fx_tensor){ "lengths", "I64", 1, { N }, lens };
    if (d->pad >= 2) ts[nt++] = (fx_tensor){ "attention_mask", "U8", 2, { N, T }, mask };
    rc = fx_write_safetensors(path, ts, nt);
    free(hid);
gone:
    synth_free(&g);
out:
    free(lg); free(ids); free(lens); free(mask); free(row); free(pre);
    return rc;
}

int fx_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

double fx_lse_ref(const float *x, uint32_t V)
{
    double m = -INFINITY, s = 0;
    for (uint32_t i = 0; i < V; i++) if (x[i] > m) m = x[i];
    for (uint32_t i = 0; i < V; i++) s += exp((double)x[i] - m);
    return m + log(s);
}
