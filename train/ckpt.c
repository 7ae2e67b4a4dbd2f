/*
 * ckpt.c — write and mmap checkpoints (layout: docs/CHECKPOINT.md).
 */
#include "ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void slim_sha256(const void *data, size_t n, uint8_t out[32])
{
    unsigned len = 32;
    EVP_Digest(data, n, out, &len, EVP_sha256(), NULL);
}

void slim_hex(const uint8_t *b, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[b[i] >> 4];
        out[2 * i + 1] = hx[b[i] & 15];
    }
    out[2 * n] = 0;
}

static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> 8 * i); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> 8 * i); }
static uint32_t get32(const uint8_t *p) { uint32_t v = 0; for (int i = 3; i >= 0; i--) v = v << 8 | p[i]; return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = v << 8 | p[i]; return v; }
static void putf(uint8_t *p, float f) { uint32_t u; memcpy(&u, &f, 4); put32(p, u); }
static float getf(const uint8_t *p) { uint32_t u = get32(p); float f; memcpy(&f, &u, 4); return f; }

static void header_encode(uint8_t *h, const slim_model_config *c, size_t n, int has_opt,
                          const slim_ckpt_state *st, uint32_t config_len)
{
    memset(h, 0, SLIM_CKPT_HEADER);
    memcpy(h, SLIM_CKPT_MAGIC, 8);
    put32(h + 8, SLIM_CKPT_VERSION);
    put32(h + 12, SLIM_CKPT_HEADER);
    int32_t ints[7] = {c->vocab, c->ctx, c->layers, c->dim, c->heads, c->ffn, c->tie};
    for (int i = 0; i < 7; i++) put32(h + 16 + 4 * i, (uint32_t)ints[i]);
    putf(h + 44, c->rope_theta);
    putf(h + 48, c->norm_eps);
    put32(h + 52, has_opt ? 1 : 0);
    put64(h + 56, n);
    put64(h + 64, st->step);
    put64(h + 72, st->epoch);
    put64(h + 80, st->cursor);
    put64(h + 88, st->seed);
    put64(h + 96, st->tokens);
    memcpy(h + 104, st->snapshot_hash, 32);
    memcpy(h + 136, st->config_hash, 32);
    put32(h + 168, config_len);
    put64(h + 176, st->total_steps);
}

/* Write n bytes and feed the digest. */
static int put_bytes(FILE *f, EVP_MD_CTX *md, const void *p, size_t n)
{
    EVP_DigestUpdate(md, p, n);
    return fwrite(p, 1, n, f) == n ? 0 : -1;
}

int slim_ckpt_write(const char *path, const slim_model_config *c, const float *params,
                    const float *m, const float *v, const slim_ckpt_state *st,
                    const char *config, uint8_t sha[32], char *err, size_t cap)
{
    size_t n = slim_model_param_count(c), clen = config ? strlen(config) : 0;
    uint8_t h[SLIM_CKPT_HEADER];
    header_encode(h, c, n, m && v, st, (uint32_t)clen);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        snprintf(err, cap, "cannot create '%s': %s", tmp, strerror(errno));
        return -1;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    int bad = put_bytes(f, md, h, sizeof h);
    bad |= put_bytes(f, md, params, n * sizeof(float));
    if (m && v) {
        bad |= put_bytes(f, md, m, n * sizeof(float));
        bad |= put_bytes(f, md, v, n * sizeof(float));
    }
    if (clen) bad |= put_bytes(f, md, config, clen);
    uint8_t dg[32];
    unsigned dl = 32;
    EVP_DigestFinal_ex(md, dg, &dl);
    EVP_MD_CTX_free(md);
    bad |= fflush(f) != 0;
    bad |= fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path)) {
        snprintf(err, cap, "cannot write '%s': %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (sha) memcpy(sha, dg, 32);
    return 0;
}

static int fail(slim_ckpt *c, char *err, size_t cap, const char *path, const char *why)
{
    snprintf(err, cap, "'%s': %s", path, why);
    slim_ckpt_close(c);
    return -1;
}

int slim_ckpt_open(slim_ckpt **out, const char *path, char *err, size_t cap)
{
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(err, cap, "cannot open '%s': %s", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) || sb.st_size < SLIM_CKPT_HEADER) {
        close(fd);
        snprintf(err, cap, "'%s' is not a slim checkpoint (%lld bytes)", path, (long long)sb.st_size);
        return -1;
    }
    slim_ckpt *c = calloc(1, sizeof *c);
    c->bytes = (size_t)sb.st_size;
    c->map = mmap(NULL, c->bytes, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (c->map == MAP_FAILED) { c->map = NULL; return fail(c, err, cap, path, strerror(errno)); }
    const uint8_t *h = c->map;
    if (memcmp(h, SLIM_CKPT_MAGIC, 8)) return fail(c, err, cap, path, "not a slim checkpoint (bad magic)");
    if (get32(h + 8) != SLIM_CKPT_VERSION || get32(h + 12) != SLIM_CKPT_HEADER)
        return fail(c, err, cap, path, "unsupported checkpoint version");
    int32_t *ints[7] = {&c->cfg.vocab, &c->cfg.ctx, &c->cfg.layers, &c->cfg.dim,
                        &c->cfg.heads, &c->cfg.ffn, &c->cfg.tie};
    for (int i = 0; i < 7; i++) *ints[i] = (int32_t)get32(h + 16 + 4 * i);
    c->cfg.rope_theta = getf(h + 44);
    c->cfg.norm_eps = getf(h + 48);
    char why[160];
    if (c->cfg.ffn < 1 || slim_model_config_check(&c->cfg, why, sizeof why))
        return fail(c, err, cap, path, "corrupt header (bad model configuration)");
    uint32_t flags = get32(h + 52);
    c->n_params = get64(h + 56);
    if (c->n_params != slim_model_param_count(&c->cfg))
        return fail(c, err, cap, path, "corrupt header (parameter count)");
    c->st.step = get64(h + 64);
    c->st.epoch = get64(h + 72);
    c->st.cursor = get64(h + 80);
    c->st.seed = get64(h + 88);
    c->st.tokens = get64(h + 96);
    memcpy(c->st.snapshot_hash, h + 104, 32);
    memcpy(c->st.config_hash, h + 136, 32);
    c->config_len = get32(h + 168);
    c->st.total_steps = get64(h + 176);
    size_t blocks = (flags & 1) ? 3 : 1;
    size_t want = SLIM_CKPT_HEADER + blocks * c->n_params * sizeof(float) + c->config_len;
    if (c->bytes != want) {
        snprintf(why, sizeof why, "is truncated or padded: %zu bytes, expected %zu", c->bytes, want);
        return fail(c, err, cap, path, why);
    }
    c->params = (const float *)(h + SLIM_CKPT_HEADER);
    if (flags & 1) {
        c->adam_m = c->params + c->n_params;
        c->adam_v = c->adam_m + c->n_params;
    }
    c->config = (const char *)(h + SLIM_CKPT_HEADER + blocks * c->n_params * sizeof(float));
    slim_sha256(c->map, c->bytes, c->sha256);
    slim_hex(c->sha256, 32, c->sha256_hex);
    *out = c;
    return 0;
}

void slim_ckpt_close(slim_ckpt *c)
{
    if (!c) return;
    if (c->map) munmap(c->map, c->bytes);
    free(c);
}
