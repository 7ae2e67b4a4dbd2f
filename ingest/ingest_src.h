/*
 * ingest_src.h — private: an input file as a stream of batches (source.c).
 */
#ifndef SLIM_INGEST_SRC_H
#define SLIM_INGEST_SRC_H

#include <stdio.h>
#include "ingest.h"

typedef struct slim_src {
    const char *path;
    int fmt;                   /* SLIM_FMT_* (never AUTO) */
    /* tensors */
    slim_tensors ts;
    const slim_tensor *ids, *logits, *tk_ids, *tk_vals, *lengths, *mask;
    uint64_t N, T, next;       /* sequences, padded length, next to read */
    uint32_t W;                /* row width: V (dense) or K (sparse) */
    /* jsonl */
    FILE *f;
    char *line; size_t linecap;
    long lineno;
    /* lines parsed in parallel, each into its own small batch */
    char **lv; size_t *lvcap; size_t *lvlen; long *lvno; int *lvrc;
    slim_batch *lb;
    char (*lerr)[400];
    uint32_t max_k;
    uint64_t done_bytes;
    /* what the input says */
    int dense;                 /* dense logits to sparsify */
    int is_logprob;            /* values are log-probs (lse 0) */
    uint32_t V;                /* logit width when the input fixes it, else 0 */
} slim_src;

int slim_src_open(slim_src *s, const char *path, int fmt, char *err, size_t cap);
int slim_src_add_npy(slim_src *s, const char *path, char *err, size_t cap);
/* After open (and npy adds): check tensors fit together; sets dense/V. */
int slim_src_layout(slim_src *s, char *err, size_t cap);
/* Append whole sequences until the batch holds >= max_pos positions or the
 * input ends (*eof).  On error the batch keeps the sequences before it. */
int slim_src_fill(slim_src *s, uint32_t V, size_t max_pos, slim_batch *b, int *eof,
                  char *err, size_t cap);
void slim_src_close(slim_src *s);

#endif
