/*
 * teacher.h — the built-in teacher: a slim-train checkpoint (mmap'd, run
 * with a KV cache) that scores given text or generates new sequences and
 * writes their sparse logits straight into a dataset.  Part of
 * libslimingest; used by slim-ingest (--model), the tests and the
 * benchmark.  User guide: docs/TEACHER.md.
 *
 * Errors follow ingest.h: 0 or a negative SLIM_E* code, a one-line message
 * (no tool name, no trailing newline) in the caller's err[cap].
 */
#ifndef SLIM_TEACHER_H
#define SLIM_TEACHER_H

#include <stddef.h>
#include <stdint.h>
#include "ingest.h"

/* What to do with the model, beside the common options of slim_ingest_opts. */
typedef struct slim_teacher_opts {
    const char *model;        /* checkpoint written by slim-train; required */
    const char *tokenizer;    /* slim tokenizer file or tokenizer.json; NULL =
                                 the ingest options' vocab_path; required */
    /* scoring: exactly one of text / generate */
    const char *text;         /* text file to score (docs/TEACHER.md: documents
                                 are separated by blank lines) */
    /* generation */
    int64_t generate;         /* N sequences to sample (0 = score text) */
    const char *prompts;      /* one prompt per line, cycled; NULL = none */
    uint32_t max_tokens;      /* tokens sampled after the prompt (0 = up to
                                 the model's context) */
    double sample_temperature;/* 0 = the capture temperature (ingest opts) */
    double top_p;             /* nucleus mass in (0, 1]; 0 = 1 */
    int no_bos;               /* do not start sequences with <|endoftext|> */
} slim_teacher_opts;

/*
 * Score o->text or sample t->generate sequences with the model in t->model
 * and append them to dataset io->dataset.  From the ingest options it uses:
 * dataset, teacher (NULL = the checkpoint's file name), vocab_size (0, or
 * checked against the model's V), vocab_path (the tokenizer when
 * t->tokenizer is NULL), sparsify (NULL = topfrac:0.05), precision (NULL =
 * logprob:0.01), temperature (capture τ: logits are divided by τ before
 * sparsifying; <= 0 means 1), seed (generation and sample:N), threads (0 =
 * omp_get_max_threads()), min_prefix (prefix sharing from this many
 * positions; 0 = off), batch_positions (commit about every this many
 * positions; 0 = 8192), progress, args_json.
 *
 * Every input is checked (checkpoint, tokenizer vs the model, the text or
 * prompts, the dataset's teacher) before the store is touched: a refused
 * call leaves the store as it was.  Sequences are computed on `threads`
 * threads (one KV cache each) and written in input order, so numbering and
 * content do not depend on the thread count.  Exact token duplicates of a
 * live sequence of the dataset are skipped (stats->skipped); shared token
 * prefixes reuse earlier records (stats->shared_*).  A store failure half-way
 * keeps what was committed (stats->committed_added) and returns the error.
 * stats is the same summary slim_ingest_files fills (t_parse = tokenising,
 * t_sparsify = inference + sparsifying, t_write, t_commit).
 */
int slim_teacher_ingest(slim_store *st, const slim_ingest_opts *io,
                        const slim_teacher_opts *t, slim_ingest_stats *stats,
                        char *err, size_t cap);

/*
 * Split text[0..len) into documents (runs of lines separated by one or more
 * blank lines; a document's text runs from its first line's first byte to
 * its last line's last byte, the final newline excluded).  Calls fn for each
 * with its byte range.  Returns the number of documents.  Exposed for tests.
 */
size_t slim_teacher_split_docs(const char *text, size_t len,
                               void (*fn)(void *ctx, size_t off, size_t n), void *ctx);

/* Seed of sequence j's sampling generator for a run seeded with seed: a
 * function of (seed, j) only, so results do not depend on threads or order. */
uint64_t slim_teacher_seq_seed(uint64_t seed, uint64_t j);

#endif
