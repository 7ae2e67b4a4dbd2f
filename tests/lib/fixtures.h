/*
 * fixtures.h — writers of teacher-output files for tests and benchmarks:
 * safetensors and .npy containers (the data is the caller's), float16 /
 * bfloat16 conversion, small reference helpers.  Plain libc; no libslim
 * dependency.
 */
#ifndef SLIM_FIXTURES_H
#define SLIM_FIXTURES_H

#include <stddef.h>
#include <stdint.h>

typedef struct fx_tensor {
    const char *name;
    const char *dtype;      /* safetensors spelling: "F32", "F16", "BF16", "I32", "I64", "U8" */
    int ndim;
    uint64_t shape[4];
    const void *data;       /* prod(shape) elements of dtype, little-endian */
} fx_tensor;

/* Element size of a safetensors dtype name (0 if unknown). */
size_t fx_dtype_size(const char *dtype);

/* Write a safetensors file (header padded to 8 bytes, tensors in order).
 * Returns 0 or -1 (errno set). */
int fx_write_safetensors(const char *path, const fx_tensor *t, int n);

/* Write one .npy (version 1.0, C order); descr like "<f4", "<i8". */
int fx_write_npy(const char *path, const char *descr, int ndim, const uint64_t *shape,
                 const void *data, size_t nbytes);

/* Round-to-nearest-even float32 -> float16 / bfloat16 bits. */
uint16_t fx_f32_to_f16(float f);
uint16_t fx_f32_to_bf16(float f);

/*
 * A dense teacher file in safetensors: input_ids [N,T] and logits [N,T,V]
 * from the synthetic generator (tests/lib/synth.h).  Sequence n has
 * len[n] real tokens (T when pad = 0; else T - n % 3) padded with id 0 and
 * described by `lengths` (pad = 1), a right-padded attention_mask (pad = 2)
 * or a left-padded one (pad = 3).  The first `prefix` tokens and their rows
 * are the same in every sequence (prefix-sharing fixtures).  nan_seq >= 0
 * puts a NaN into that sequence's row nan_pos (at id 1).
 */
typedef struct fx_dense {
    const char *logits_dtype;  /* "F32", "F16", "BF16" */
    const char *ids_dtype;     /* "I32", "I64" */
    uint32_t N, T, V;
    uint64_t seed;
    int pad;
    uint32_t prefix;
    int nan_seq, nan_pos;
    int flat;                  /* N must be 1: input_ids [T], logits [T,V] */
    int extra;                 /* this many other tensors first ("hidden_states.I" F32
                                  [N,T,4], as a transformers dump has; at most 64) */
} fx_dense;

/* Writes the file.  When not NULL: tokens[N*T] (row n starts at n*T, the real
 * tokens first), logits[N*T*V] (the values as stored, after rounding to the
 * dtype, real positions first like tokens), len[N].  0 or -1. */
int fx_dense_write(const char *path, const fx_dense *d, uint32_t *tokens, float *logits,
                   uint32_t *len);

/* qsort comparator of uint32_t ascending. */
int fx_cmp_u32(const void *a, const void *b);

/* Reference log-sum-exp of x[0..V) in double precision (max subtracted):
 * what a sparsifier's lse is checked against. */
double fx_lse_ref(const float *x, uint32_t V);

#endif
