/*
 * tensors.c — safetensors and .npy containers: validate every header field
 * against the file (lengths, offsets, shapes, dtypes) and hand out pointers
 * into a read-only mmap, so multi-GB files are walked, never read whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <string.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "ingest.h"

/* ----------------------------------------------------------------- dtypes */

size_t slim_dtype_size(int dt)
{
    switch (dt) {
    case SLIM_DT_F32: case SLIM_DT_I32: return 4;
    case SLIM_DT_F16: case SLIM_DT_BF16: return 2;
    case SLIM_DT_I64: case SLIM_DT_F64: return 8;
    case SLIM_DT_U8: case SLIM_DT_BOOL: return 1;
    }
    return 0;
}

const char *slim_dtype_name(int dt)
{
    static const char *n[] = { "?", "F32", "F16", "BF16", "I32", "I64", "U8", "BOOL", "F64" };
    return dt >= 1 && dt <= SLIM_DT_F64 ? n[dt] : "?";
}

static int dtype_from_st(const char *s)
{
    static const struct { const char *n; int dt; } m[] = {
        { "F32", SLIM_DT_F32 }, { "F16", SLIM_DT_F16 }, { "BF16", SLIM_DT_BF16 },
        { "I32", SLIM_DT_I32 }, { "I64", SLIM_DT_I64 }, { "U8", SLIM_DT_U8 },
        { "BOOL", SLIM_DT_BOOL }, { "F64", SLIM_DT_F64 },
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (!strcmp(s, m[i].n)) return m[i].dt;
    return 0;
}

float slim_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, u;
    if (e == 0) {
        if (!m) u = sign;
        else { /* subnormal: renormalise */
            e = 113;
            while (!(m & 0x400)) { m <<= 1; e--; }
            u = sign | (e << 23) | ((m & 0x3ff) << 13);
        }
    } else if (e == 31) u = sign | 0x7f800000u | (m << 13);
    else u = sign | ((e + 112) << 23) | (m << 13);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float slim_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

void slim_row_to_f32(int dt, const void *src, size_t n, float *dst)
{
    const uint8_t *p = src;
    switch (dt) {
    case SLIM_DT_F32: memcpy(dst, src, n * 4); break;
    case SLIM_DT_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h; memcpy(&h, p + 2 * i, 2); dst[i] = slim_f16_to_f32(h);
        }
        break;
    case SLIM_DT_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h; memcpy(&h, p + 2 * i, 2); dst[i] = slim_bf16_to_f32(h);
        }
        break;
    case SLIM_DT_F64:
        for (size_t i = 0; i < n; i++) { double d; memcpy(&d, p + 8 * i, 8); dst[i] = (float)d; }
        break;
    }
}

int64_t slim_int_at(int dt, const void *base, size_t i)
{
    const uint8_t *p = base;
    switch (dt) {
    case SLIM_DT_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    case SLIM_DT_I64: { int64_t v; memcpy(&v, p + 8 * i, 8); return v; }
    case SLIM_DT_U8: case SLIM_DT_BOOL: return p[i];
    }
    return 0;
}

float slim_float_at(int dt, const void *base, size_t i)
{
    float f = 0;
    slim_row_to_f32(dt, (const uint8_t *)base + i * slim_dtype_size(dt), 1, &f);
    return f;
}

/* ------------------------------------------------------------ safetensors */

/* Bytes per element of any safetensors dtype, 0 if unknown. */
static size_t st_size(const char *s)
{
    static const struct { const char *n; size_t b; } m[] = {
        { "BOOL", 1 }, { "U8", 1 }, { "I8", 1 }, { "F8_E5M2", 1 }, { "F8_E4M3", 1 },
        { "F8_E8M0", 1 }, { "I16", 2 }, { "U16", 2 }, { "F16", 2 }, { "BF16", 2 },
        { "I32", 4 }, { "U32", 4 }, { "F32", 4 }, { "I64", 8 }, { "U64", 8 }, { "F64", 8 },
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (!strcmp(s, m[i].n)) return m[i].b;
    return 0;
}

/* One header entry.  A tensor slim reads must have a dtype and rank it
 * knows; any other is only checked to lie inside the data, at its shape's
 * size when its dtype's size is known (SLIM_DT_OTHER, shape kept up to
 * SLIM_MAXDIM dimensions). */
static int tensor_from_json(const char *name, json_t *v, const uint8_t *data, uint64_t dlen,
                            uint64_t base, slim_tensor *t, char *err, size_t cap)
{
    json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"),
           *off = json_object_get(v, "data_offsets");
    if (!json_is_object(v) || !json_is_string(dt) || !json_is_array(sh) || !json_is_array(off)
        || json_array_size(off) != 2) {
        snprintf(err, cap, "byte 8: tensor '%s': needs dtype, shape and data_offsets", name);
        return SLIM_EINVAL;
    }
    int reads = slim_tensor_read_name(name, strlen(name));
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->dtname, sizeof t->dtname, "%s", json_string_value(dt));
    t->dtype = dtype_from_st(json_string_value(dt));
    size_t esize = t->dtype ? slim_dtype_size(t->dtype) : st_size(json_string_value(dt));
    if (!t->dtype) {
        if (reads) {
            snprintf(err, cap, "byte 8: tensor '%s': unknown dtype '%s'", name, json_string_value(dt));
            return SLIM_EINVAL;
        }
        t->dtype = SLIM_DT_OTHER;
    }
    size_t nd = json_array_size(sh);
    if (nd > SLIM_MAXDIM && reads) {
        snprintf(err, cap, "byte 8: tensor '%s': %zu dimensions (at most %d)", name, nd, SLIM_MAXDIM);
        return SLIM_EINVAL;
    }
    t->ndim = (int)(nd < SLIM_MAXDIM ? nd : SLIM_MAXDIM);
    t->more_dims = nd > SLIM_MAXDIM;
    uint64_t count = 1;
    for (size_t d = 0; d < nd; d++) {
        json_t *e = json_array_get(sh, d);
        if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) > (1LL << 40)) {
            snprintf(err, cap, "byte 8: tensor '%s': bad shape", name);
            return SLIM_EINVAL;
        }
        uint64_t x = (uint64_t)json_integer_value(e);
        if (d < SLIM_MAXDIM) t->shape[d] = x;
        if (x && count > UINT64_MAX / 16 / x) {
            snprintf(err, cap, "byte 8: tensor '%s': shape too large", name);
            return SLIM_EINVAL;
        }
        count *= x;
    }
    json_t *a = json_array_get(off, 0), *b = json_array_get(off, 1);
    if (!json_is_integer(a) || !json_is_integer(b) || json_integer_value(a) < 0
        || json_integer_value(b) < json_integer_value(a)
        || (uint64_t)json_integer_value(b) > dlen) {
        snprintf(err, cap, "byte 8: tensor '%s': data_offsets out of range (data is %llu bytes)",
                 name, (unsigned long long)dlen);
        return SLIM_EINVAL;
    }
    uint64_t s = (uint64_t)json_integer_value(a), e2 = (uint64_t)json_integer_value(b);
    if (esize && e2 - s != count * esize) {
        snprintf(err, cap, "byte %llu: tensor '%s': %llu bytes of data for a shape of %llu %s "
                 "elements", (unsigned long long)(base + s), name,
                 (unsigned long long)(e2 - s), (unsigned long long)count, t->dtname);
        return SLIM_EINVAL;
    }
    t->data = data + s;
    t->nbytes = e2 - s;
    t->offset = base + s;
    return 0;
}

static int cmp_off(const void *a, const void *b)
{
    const slim_tensor *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

int slim_safetensors_parse(const uint8_t *buf, size_t len, slim_tensors *out,
                           char *err, size_t cap)
{
    out->n = 0;
    if (len < 8) {
        snprintf(err, cap, "byte 0: %s (%zu bytes, need an 8-byte header length)",
                 len ? "truncated" : "empty file", len);
        return SLIM_EINVAL;
    }
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | buf[i];
    if (hl > len - 8) {
        snprintf(err, cap, "byte 0: header length %llu runs past end of file (%zu bytes)",
                 (unsigned long long)hl, len);
        return SLIM_EINVAL;
    }
    json_error_t je;
    json_t *root = json_loadb((const char *)buf + 8, (size_t)hl, JSON_REJECT_DUPLICATES, &je);
    if (!root || !json_is_object(root)) {
        snprintf(err, cap, "byte %d: invalid JSON header: %s", root ? 8 : 8 + je.position,
                 root ? "not an object" : je.text);
        json_decref(root);
        return SLIM_EINVAL;
    }
    const uint8_t *data = buf + 8 + hl;
    uint64_t dlen = len - 8 - hl;
    const char *key;
    json_t *v;
    int rc = 0;
    json_object_foreach(root, key, v) {
        if (!strcmp(key, "__metadata__")) continue;
        if (out->n == SLIM_MAXTENSORS) {
            snprintf(err, cap, "byte 8: more than %d tensors", SLIM_MAXTENSORS);
            rc = SLIM_EINVAL;
            break;
        }
        if ((rc = tensor_from_json(key, v, data, dlen, 8 + hl, &out->t[out->n], err, cap)))
            break;
        out->n++;
    }
    json_decref(root);
    if (rc) { out->n = 0; return rc; }
    /* overlapping tensors are a lying header (sorted copy: names stay put) */
    slim_tensor *s = malloc(sizeof(slim_tensor) * (size_t)(out->n ? out->n : 1));
    if (!s) return SLIM_ENOMEM;
    memcpy(s, out->t, sizeof(slim_tensor) * (size_t)out->n);
    qsort(s, (size_t)out->n, sizeof *s, cmp_off);
    for (int i = 1; i < out->n; i++)
        if (s[i].offset < s[i - 1].offset + s[i - 1].nbytes) {
            snprintf(err, cap, "byte %llu: tensors '%s' and '%s' overlap",
                     (unsigned long long)s[i].offset, s[i - 1].name, s[i].name);
            rc = SLIM_EINVAL;
        }
    free(s);
    if (rc) out->n = 0;
    return rc;
}

/* -------------------------------------------------------------------- npy */

static int npy_dtype(const char *d)
{
    /* little-endian or byte-order-free descriptors only */
    static const struct { const char *n; int dt; } m[] = {
        { "<f4", SLIM_DT_F32 }, { "<f2", SLIM_DT_F16 }, { "<i4", SLIM_DT_I32 },
        { "<i8", SLIM_DT_I64 }, { "|u1", SLIM_DT_U8 }, { "|b1", SLIM_DT_BOOL },
        { "<f8", SLIM_DT_F64 }, { "<V2", SLIM_DT_BF16 },
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (!strcmp(d, m[i].n)) return m[i].dt;
    return 0;
}

/* The header is a Python dict literal; we accept exactly the keys numpy
 * writes: 'descr', 'fortran_order', 'shape'. */
int slim_npy_parse(const uint8_t *buf, size_t len, const char *name, slim_tensor *t,
                   char *err, size_t cap)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6)) {
        snprintf(err, cap, "byte 0: %s", len ? "not an .npy file (bad magic)" : "empty file");
        return SLIM_EINVAL;
    }
    size_t hl, ho;
    if (buf[6] == 1) { hl = buf[8] | (size_t)buf[9] << 8; ho = 10; }
    else if (buf[6] == 2 || buf[6] == 3) {
        if (len < 12) { snprintf(err, cap, "byte 8: truncated header"); return SLIM_EINVAL; }
        hl = buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        ho = 12;
    } else { snprintf(err, cap, "byte 6: unsupported npy version %d", buf[6]); return SLIM_EINVAL; }
    if (hl > len - ho || hl > 65536) {
        snprintf(err, cap, "byte 8: header length %zu runs past end of file (%zu bytes)", hl, len);
        return SLIM_EINVAL;
    }
    char h[65537];
    memcpy(h, buf + ho, hl);
    h[hl] = 0;
    char descr[16] = "";
    const char *p = strstr(h, "'descr':");
    if (!p || sscanf(p + 8, " '%15[^']'", descr) != 1 || !(t->dtype = npy_dtype(descr))) {
        snprintf(err, cap, "byte %zu: unknown or missing dtype '%s'", ho, descr);
        return SLIM_EINVAL;
    }
    p = strstr(h, "'fortran_order':");
    if (!p || strncmp(p + 16 + strspn(p + 16, " "), "False", 5)) {
        snprintf(err, cap, "byte %zu: fortran_order arrays are not supported", ho);
        return SLIM_EINVAL;
    }
    p = strstr(h, "'shape':");
    const char *q = p ? strchr(p, '(') : NULL;
    if (!q) { snprintf(err, cap, "byte %zu: missing shape", ho); return SLIM_EINVAL; }
    q++;
    uint64_t count = 1;
    for (;;) {
        while (*q == ' ' || *q == ',') q++;
        if (*q == ')') break;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(q, &end, 10);
        if (end == q || errno || t->ndim == SLIM_MAXDIM || v > (1ULL << 40)) {
            snprintf(err, cap, "byte %zu: bad shape", ho);
            return SLIM_EINVAL;
        }
        if (v && count > UINT64_MAX / 16 / v) {
            snprintf(err, cap, "byte %zu: shape too large", ho);
            return SLIM_EINVAL;
        }
        t->shape[t->ndim++] = v;
        count *= v;
        q = end;
    }
    uint64_t need = count * slim_dtype_size(t->dtype), have = len - ho - hl;
    if (need != have) {
        snprintf(err, cap, "byte %zu: %llu bytes of data for a shape of %llu %s elements",
                 ho + hl, (unsigned long long)have, (unsigned long long)count, descr);
        return SLIM_EINVAL;
    }
    t->data = buf + ho + hl;
    t->nbytes = need;
    t->offset = ho + hl;
    return 0;
}

/* ---------------------------------------------------------------- mapping */

/* Map `path` whole and keep it open (*fd): the mapping is for headers and
 * already-sparse entries, the descriptor for dense rows, tokens and the
 * input hash (read with pread, source.c). */
static int map_file(const char *path, void **map, size_t *len, int *fdp, char *err, size_t cap)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) { snprintf(err, cap, "cannot open: %s", strerror(errno)); return SLIM_EIO; }
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        snprintf(err, cap, "not a regular file");
        close(fd);
        return SLIM_EIO;
    }
    *len = (size_t)sb.st_size;
    *map = NULL;
    if (*len) {
        *map = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (*map == MAP_FAILED) {
            snprintf(err, cap, "cannot mmap: %s", strerror(errno));
            close(fd);
            return SLIM_EIO;
        }
        /* headers, then tokens batch by batch, front to back */
        madvise(*map, *len, MADV_SEQUENTIAL);
    }
    /* dense rows are read once through fd: since Linux 6.3 this keeps
     * each pread from promoting the pages on the LRU lists (3 % of a dense
     * ingest's CPU here, perf: folio_mark_accessed); older kernels ignore it */
    posix_fadvise(fd, 0, 0, POSIX_FADV_NOREUSE);
    *fdp = fd;
    return 0;
}

int slim_tensors_open_safetensors(const char *path, slim_tensors *out, char *err, size_t cap)
{
    memset(out, 0, sizeof *out);
    void *m;
    size_t len;
    int fd, rc = map_file(path, &m, &len, &fd, err, cap);
    if (rc) return rc;
    out->map[0] = m;
    out->maplen[0] = len;
    out->fd[0] = fd;
    out->nmaps = 1;
    rc = slim_safetensors_parse(m ? m : (const uint8_t *)"", len, out, err, cap);
    if (rc) slim_tensors_release(out);
    return rc;
}

int slim_tensors_add_npy(const char *path, slim_tensors *out, char *err, size_t cap)
{
    if (out->n == SLIM_MAXTENSORS || out->nmaps == SLIM_MAXMAPS) {
        snprintf(err, cap, "more than %d .npy arrays in one input", SLIM_MAXMAPS);
        return SLIM_EINVAL;
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char name[64];
    snprintf(name, sizeof name, "%s", base);
    char *dot = strrchr(name, '.');
    if (dot && !strcmp(dot, ".npy")) *dot = 0;
    void *m;
    size_t len;
    int fd, rc = map_file(path, &m, &len, &fd, err, cap);
    if (rc) return rc;
    rc = slim_npy_parse(m ? m : (const uint8_t *)"", len, name, &out->t[out->n], err, cap);
    if (rc) { if (m) munmap(m, len); close(fd); return rc; }
    out->map[out->nmaps] = m;
    out->fd[out->nmaps] = fd;
    out->maplen[out->nmaps++] = len;
    out->n++;
    return 0;
}

void slim_tensors_release(slim_tensors *ts)
{
    for (int i = 0; i < ts->nmaps; i++) {
        if (ts->map[i]) munmap(ts->map[i], ts->maplen[i]);
        close(ts->fd[i]);
    }
    ts->nmaps = 0;
    ts->n = 0;
}

int slim_tensor_read_name(const char *name, size_t n)
{
    static const char *const known[] = { "input_ids", "logits", "topk_ids", "topk_logprobs",
                                         "topk_logits", "lengths", "attention_mask" };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strlen(known[i]) == n && !memcmp(known[i], name, n)) return 1;
    return 0;
}

const slim_tensor *slim_tensors_find(const slim_tensors *ts, const char *name)
{
    for (int i = 0; i < ts->n; i++)
        if (!strcmp(ts->t[i].name, name)) return &ts->t[i];
    return NULL;
}
