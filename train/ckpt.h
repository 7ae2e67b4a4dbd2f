/*
 * ckpt.h — slim-train checkpoints (byte layout in docs/CHECKPOINT.md,
 * "Checkpoints").  A checkpoint is a 256-byte little-endian header, the
 * float32 parameter block exactly as slim_params lays it out, optionally the
 * AdamW m and v blocks, then the training configuration as key=value text.
 * It is written to a temporary file and renamed (never half-written under
 * its final name), and mapped read-only with mmap to load (llama2.c style).
 */
#ifndef SLIM_CKPT_H
#define SLIM_CKPT_H

#include "model.h"

#include <stddef.h>
#include <stdint.h>

#define SLIM_CKPT_MAGIC "SLIMCKPT"
#define SLIM_CKPT_VERSION 1
#define SLIM_CKPT_HEADER 256

/* Training state saved beside the weights (all zero for a bare model). */
typedef struct slim_ckpt_state {
    uint64_t step;          /* optimizer steps done */
    uint64_t epoch;         /* data cursor: epoch ... */
    uint64_t cursor;        /*   ... and index of the next window in its order */
    uint64_t seed;
    uint64_t tokens;        /* trained positions so far */
    uint64_t total_steps;   /* --steps of the run that wrote it */
    uint8_t snapshot_hash[32];
    uint8_t config_hash[32];/* sha256 of the configuration text (steps excluded) */
} slim_ckpt_state;

/* A mapped checkpoint.  All pointers live until slim_ckpt_close. */
typedef struct slim_ckpt {
    slim_model_config cfg;
    slim_ckpt_state st;
    size_t n_params;
    const float *params;    /* (n_params) */
    const float *adam_m, *adam_v; /* (n_params) each, or NULL */
    const char *config;     /* the configuration text (not NUL-terminated) */
    size_t config_len;
    uint8_t sha256[32];     /* of the whole file */
    char sha256_hex[65];
    size_t bytes;
    void *map;
} slim_ckpt;

/* Write atomically (tmp + fsync + rename).  m, v may be NULL.  *sha (may be
 * NULL) gets the file's sha256.  0, or -1 with err filled (errno kept). */
int slim_ckpt_write(const char *path, const slim_model_config *c, const float *params,
                    const float *m, const float *v, const slim_ckpt_state *st,
                    const char *config, uint8_t sha[32], char *err, size_t cap);

/* Map and validate (magic, version, sizes against the file length, config
 * sane).  0, or -1 with a message ("'x.ckpt' is truncated: 1200 of 5000
 * bytes").  On failure *out is NULL. */
int slim_ckpt_open(slim_ckpt **out, const char *path, char *err, size_t cap);
void slim_ckpt_close(slim_ckpt *c);

/* sha256 (OpenSSL EVP) of a byte range, and hex formatting. */
void slim_sha256(const void *data, size_t n, uint8_t out[32]);
void slim_hex(const uint8_t *b, size_t n, char *out);

#endif
