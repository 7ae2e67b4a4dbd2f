/*
 * ingest.h — private interface of libslimingest: the sparsifiers, the input
 * parsers (safetensors, npy, JSONL) and the ingest pipeline that feeds the
 * store.  Used by slim-ingest, slim-dedup, the tests, the fuzzers and the
 * benchmark; not installed.  User-facing rules: docs/INGEST.md.
 *
 * Errors: functions return 0 or a negative SLIM_E* code and write a one-line
 * message (no tool name, no trailing newline) into a caller buffer err[cap].
 */
#ifndef SLIM_INGEST_H
#define SLIM_INGEST_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "slim.h"

/* ------------------------------------------------------------ sparsifiers */

enum { SLIM_SP_TOPFRAC = 1, SLIM_SP_TOPK, SLIM_SP_TOPP, SLIM_SP_SAMPLE };

typedef struct slim_sparsifier {
    int type;          /* SLIM_SP_* */
    double frac;       /* TOPFRAC: fraction F of V */
    double p;          /* TOPP: probability mass P */
    uint32_t k;        /* TOPK: K; TOPP: max entries (0 = default 1024) */
    uint32_t n;        /* SAMPLE: draws N */
    uint64_t seed;     /* SAMPLE: --seed */
} slim_sparsifier;

/* "topfrac:0.05", "topk:64", "topp:0.95", "topp:0.95,max:256", "sample:64". */
int slim_sparsifier_parse(const char *spec, slim_sparsifier *out, char *err, size_t cap);
/* Canonical spelling (recorded in the dataset's metadata). */
void slim_sparsifier_format(const slim_sparsifier *s, char *buf, size_t cap);
/* Most entries one position can get for a vocabulary of V. */
uint32_t slim_sparsifier_cap(const slim_sparsifier *s, uint32_t V);
/* K of topfrac:F for V: max(1, ceil(F*V - 1e-9)), at most V. */
uint32_t slim_topfrac_k(double frac, uint32_t V);

/* Exact log(sum(exp(x[0..V)))) with max subtraction and float64
 * accumulation.  x must be finite (checked by the caller). */
double slim_logsumexp(const float *x /* [V] */, uint32_t V);

/* Per-thread scratch for slim_sparsify_row (V floats + a few arrays). */
typedef struct slim_sparse_ws slim_sparse_ws;
slim_sparse_ws *slim_sparse_ws_new(uint32_t V, uint32_t cap);
void slim_sparse_ws_free(slim_sparse_ws *ws);
/* The ws's float row buffer [V], for converting F16/BF16 input into. */
float *slim_sparse_ws_row(slim_sparse_ws *ws);

/*
 * Select the k largest of x[0..V) into ids[0..k) in ascending id order.
 * Ties at the k-th value: the lower ids win.  A threshold (from a sample or
 * from bins below the maximum) collects a few more than k candidates, a
 * radix select over the order-preserving integer image of their float bits
 * finds the k-th, one compaction pass keeps the winners (docs/INGEST.md).
 */
uint32_t slim_select_topk(slim_sparse_ws *ws, const float *x /* [V] */, uint32_t V,
                          uint32_t k, uint32_t *ids /* [k] */);

/*
 * Sparsify one dense row of logits: checks every value is finite (else
 * SLIM_EINVAL, *bad = the offending id), computes lse over all V, selects per
 * the sparsifier.  out->ids / out->vals must hold slim_sparsifier_cap()
 * entries.  stream seeds SAMPLE deterministically per position (the caller
 * passes a number unique to the position, e.g. its index in the input).
 */
int slim_sparsify_row(const slim_sparsifier *s, slim_sparse_ws *ws,
                      const float *x /* [V] */, uint32_t V, uint64_t stream,
                      slim_dist *out, uint32_t *bad);

/* Tests and benchmarks: the kernels use at most level cap (0 portable, GCC
 * vector extensions; 1 AVX2/FMA/BMI2; 2 AVX-512 F/VL/BW/DQ; negative: no
 * cap, the default) and what the CPU has.  Returns the level now in effect.
 * Levels 1 and 2 give bit-identical output.  Process-wide, not to be
 * changed while rows are being sparsified. */
int slim_sparsify_level(int cap);

/* Reference implementation (qsort of the whole row): for tests and the
 * benchmark's naive baseline.  Same tie rule. */
uint32_t slim_select_topk_naive(const float *x, uint32_t V, uint32_t k, uint32_t *ids);

/* ------------------------------------------------------------------ dtypes */

enum { SLIM_DT_F32 = 1, SLIM_DT_F16, SLIM_DT_BF16, SLIM_DT_I32, SLIM_DT_I64,
       SLIM_DT_U8, SLIM_DT_BOOL, SLIM_DT_F64,
       SLIM_DT_OTHER };  /* a tensor slim does not read, of a dtype it has no use for */
size_t slim_dtype_size(int dt);
const char *slim_dtype_name(int dt);
float slim_f16_to_f32(uint16_t h);
float slim_bf16_to_f32(uint16_t h);
/* Convert n values of a float dtype at src into dst. */
void slim_row_to_f32(int dt, const void *src, size_t n, float *dst);
/* Read element i of an integer / bool array as int64. */
int64_t slim_int_at(int dt, const void *base, size_t i);
/* Read element i of a float array as float. */
float slim_float_at(int dt, const void *base, size_t i);

/* ------------------------------------------------------- tensor containers */

#define SLIM_MAXDIM 4
typedef struct slim_tensor {
    char name[64];
    char dtname[12];           /* the file's spelling of the dtype ("I8", "F8_E4M3", ...) */
    int dtype;                 /* SLIM_DT_* */
    int ndim;                  /* at most SLIM_MAXDIM, */
    int more_dims;             /*   and more not kept (a tensor slim does not read) */
    uint64_t shape[SLIM_MAXDIM];
    const uint8_t *data;       /* into the mapping; nbytes long */
    uint64_t nbytes;
    uint64_t offset;           /* byte offset of data in its file */
} slim_tensor;

/* A safetensors file may hold up to SLIM_MAXTENSORS tensors (a transformers
 * dump with every layer's hidden states and attentions has a few hundred;
 * slim reads the ones it knows and ignores the rest); one input may be up
 * to SLIM_MAXMAPS .npy files. */
#define SLIM_MAXTENSORS 1024
#define SLIM_MAXMAPS 16
typedef struct slim_tensors {
    int n;
    slim_tensor t[SLIM_MAXTENSORS];
    /* mappings owned (one for safetensors, one per file for npy), each
     * with its file kept open: dense rows are read with pread (source.c) */
    int nmaps;
    void *map[SLIM_MAXMAPS];
    size_t maplen[SLIM_MAXMAPS];
    int fd[SLIM_MAXMAPS];
} slim_tensors;

/* Parse a safetensors image buf[len] (any tensors; unknown names kept). */
int slim_safetensors_parse(const uint8_t *buf, size_t len, slim_tensors *out,
                           char *err, size_t cap);
/* Parse one .npy image; the tensor is named `name`. */
int slim_npy_parse(const uint8_t *buf, size_t len, const char *name,
                   slim_tensor *out, char *err, size_t cap);
/* mmap `path` and parse it (safetensors), or each .npy (npy: a directory or
 * files named input_ids.npy, logits.npy, ...).  Release with _release. */
int slim_tensors_open_safetensors(const char *path, slim_tensors *out, char *err, size_t cap);
int slim_tensors_add_npy(const char *path, slim_tensors *out, char *err, size_t cap);
void slim_tensors_release(slim_tensors *ts);
const slim_tensor *slim_tensors_find(const slim_tensors *ts, const char *name);
/* Whether a tensor (or .npy array) name of n bytes is one slim reads: input_ids,
 * logits, topk_ids, topk_logprobs, topk_logits, lengths, attention_mask. */
int slim_tensor_read_name(const char *name, size_t n);

/* --------------------------------------------------------------- sequences */

/*
 * One parsed input sequence.  Either dense (rows of V logits in the input's
 * dtype: rows + row_stride bytes apart; dists filled by the sparsifier) or
 * sparse (dists filled by the parser).  Token and entry memory belongs to the
 * batch (slim_batch) and is reused from batch to batch.
 */
typedef struct slim_iseq {
    char ext_id[96];
    size_t tok_off;            /* into batch->tokens */
    uint32_t T;
    uint32_t npos;
    size_t dist_off;           /* into batch->dists */
    const uint8_t *rows;       /* dense: row of position 0 in the mapping, else NULL */
    size_t row_stride;         /* bytes between rows */
    int fd;                    /* dense: the file the rows are read from (pread) */
    uint64_t rows_off;         /*   and row 0's byte offset in it */
    int dtype;                 /* dense rows' SLIM_DT_* */
    char where[96];            /* "sequence 3" / "line 12": for messages */
} slim_iseq;

typedef struct slim_batch {
    slim_iseq *seqs; size_t nseq, seqcap;
    uint32_t *tokens; size_t ntok, tokcap;
    slim_dist *dists; size_t ndist, distcap;
    size_t *entoff;            /* [distcap] entry offset of each dist */
    uint32_t *ids; float *vals; size_t nent, entcap;  /* entry pool */
    size_t positions;          /* total npos */
    size_t ndist0;             /* ndist before the dense rows were laid out */
} slim_batch;

void slim_batch_reset(slim_batch *b);
void slim_batch_release(slim_batch *b);
/* Grow pools; return SLIM_ENOMEM on failure. */
int slim_batch_reserve(slim_batch *b, size_t nseq, size_t ntok, size_t ndist, size_t nent);
/* After the pools stop moving: point every dist's ids/vals into the pool
 * at its entoff (pointers are only valid from here to the next append). */
void slim_batch_fix_pointers(slim_batch *b);

/* ------------------------------------------------------------------- JSONL */

/* What the JSONL parser learned about one line. */
typedef struct slim_jsonl_opts {
    uint32_t vocab_size;       /* V for id checks (0 = unknown: no check) */
    uint32_t max_k;            /* cap K (0 = none) */
} slim_jsonl_opts;

/* Values a JSONL line gave: logprobs (lse 0) always. */
/*
 * Parse one JSON line (line[len], no newline needed) in any accepted shape
 * and append its sequences to the batch.  On error nothing is appended and
 * err says where ("position 3: ...").
 */
int slim_jsonl_parse_line(const char *line, size_t len, const slim_jsonl_opts *o,
                          slim_batch *b, char *err, size_t cap);

/* The same for slim's simple form only, without a JSON tree: 1 when the line
 * was understood and valid (sequences appended), 0 to leave it to the
 * general parser (nothing appended).  slim_jsonl_parse_line tries it first;
 * slim_jsonl_parse_tree is the general parser alone. */
int slim_jsonl_fast_simple(const char *line, size_t len, const slim_jsonl_opts *o,
                           slim_batch *b);
int slim_jsonl_parse_tree(const char *line, size_t len, const slim_jsonl_opts *o,
                          slim_batch *b, char *err, size_t cap);

/* Validate one sparse distribution: ids < V (V>0), distinct, values finite
 * or -inf, logprobs <= 0 when is_logprob.  scratch has V bits (or NULL). */
int slim_check_sparse(const slim_dist *d, uint32_t V, int is_logprob,
                      uint8_t *seen /* [V/8+1] zeroed, left zeroed */,
                      char *err, size_t cap);

/* ------------------------------------------------------------ input format */

enum { SLIM_FMT_AUTO = 0, SLIM_FMT_SAFETENSORS, SLIM_FMT_NPY, SLIM_FMT_JSONL };
/* Detect by content: safetensors header, npy magic, '{' (or a directory of
 * .npy).  SLIM_EINVAL with a message when none fits. */
int slim_detect_format(const char *path, int *fmt, char *err, size_t cap);
int slim_format_parse(const char *s);

/* ------------------------------------------------------------------ pipeline */

typedef struct slim_ingest_opts {
    const char *dataset;
    const char *teacher;       /* NULL: the dataset's, else the dataset name */
    uint32_t vocab_size;       /* 0 = from input or dataset */
    const char *vocab_path;    /* tokenizer.json or NULL */
    const char *sparsify;      /* NULL = topfrac:0.05 (dense input) */
    const char *precision;     /* NULL = logprob:0.01 */
    int format;                /* SLIM_FMT_* */
    double temperature;
    uint64_t seed;
    int threads;               /* 0 = all cores (OpenMP default) */
    uint32_t min_prefix;       /* shortest shared prefix, positions (16) */
    uint32_t max_k;            /* sparse JSONL: keep at most K entries (0 = all) */
    size_t batch_positions;    /* commit about every this many (8192) */
    int progress;              /* print progress to stderr */
    const char *args_json;     /* recorded with the run */
    /* when *stop becomes non-zero (a signal handler's flag): no new batch
     * is read; the ones in flight are written and committed, the run is
     * recorded as "interrupted" and slim_ingest_files returns SLIM_EINTR */
    const volatile sig_atomic_t *stop;
} slim_ingest_opts;

typedef struct slim_ingest_stats {
    int64_t run_id;
    int64_t added, skipped, refused;
    int64_t positions, entries;
    int64_t shared_seqs, shared_positions;
    int64_t prefix_checked, prefix_disagree;  /* see docs/INGEST.md, prefix sharing */
    int64_t bytes_before, bytes_after;   /* dataset record_bytes */
    int64_t committed_added;             /* added and committed */
    int64_t batches, commits;            /* batches written; commits of them (fewer
                                            when the disk is slow: docs/INGEST.md) */
    double seconds;
    double t_parse, t_sparsify, t_write, t_commit;  /* wall seconds per stage */
    /* thread CPU seconds per stage, summed over threads: dense rows
     * sparsified (incl. F16/BF16 conversion), sequences prepared (validated
     * and encoded), the writer (append + commit), the input hash; and the
     * workers' seconds in reading dense rows (pread: CPU for a file in the
     * page cache, mostly waiting for the disk for one that is not) */
    double cpu_sparsify, cpu_prepare, cpu_write, cpu_hash, t_read;
} slim_ingest_stats;

/* Ingest files[0..n) into the store.  On failure the message (naming the
 * file and place) is in err; everything committed before it stays (see
 * docs/INGEST.md: the unit of atomicity is a sequence). */
int slim_ingest_files(slim_store *st, const slim_ingest_opts *o,
                      const char *const *files, int n, slim_ingest_stats *stats,
                      char *err, size_t cap);

/* ------------------------------------------------------------------- dedup */

typedef struct slim_dup {
    int64_t dataset, seq;          /* the later copy (removed) */
    int64_t of_dataset, of_seq;    /* the first copy (kept) */
    int64_t bytes_freed;           /* LMDB bytes actually reclaimed */
} slim_dup;

typedef struct slim_dedup_result {
    int64_t scanned;               /* live sequences looked at */
    int64_t duplicates;            /* copies found in the dataset */
    int64_t removed;               /* removed from the live view (0 on dry run) */
    int64_t bytes_freed;           /* LMDB bytes the removal freed, or (dry run) would free */
    slim_dup *dups; size_t ndups;  /* malloc'd; free with free() */
} slim_dedup_result;

/*
 * Find sequences of `dataset` whose tokens equal an earlier live sequence's
 * (earlier = lower (dataset id, seq); with `across`, every dataset of the
 * same teacher is scanned, otherwise only this one) and, unless dry_run,
 * remove them from the live view in one transaction.  A dry run removes them
 * in a transaction it aborts, to measure the bytes (so it waits for a writer
 * at work, as a real run does).
 */
int slim_dedup(slim_store *st, const char *dataset, int across, int dry_run,
               slim_dedup_result *out, char *err, size_t cap);

/* An input's content hash as "xxh3-128x64k:" + 32 hex digits (+ NUL:
 * SLIM_FILE_HASH_CAP bytes): XXH3-128 over the XXH3-128 of each 64 KiB
 * block and the length, defined in docs/INGEST.md (not xxh128sum's digest).
 * The file is read with read(); 0, SLIM_EIO (message in err) or SLIM_ENOMEM. */
#define SLIM_FILE_HASH_CAP 46
int slim_file_hash(const char *path, char hex[SLIM_FILE_HASH_CAP], char *err, size_t cap);
/* The same hash of n bytes in memory (a mapped file); 0 or SLIM_ENOMEM. */
int slim_hash_bytes(const void *p, size_t n, char hex[SLIM_FILE_HASH_CAP]);

#endif
