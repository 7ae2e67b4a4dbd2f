/*
 * text.h — token-only text ingest: a text file tokenised and stored as
 * sequences without distributions (npos = 0), for training a teacher with
 * CE on a corpus.  Part of libslimingest; used by slim-ingest (--text
 * without --model).  Errors follow ingest.h.
 */
#ifndef SLIM_TEXT_H
#define SLIM_TEXT_H

#include <stdint.h>
#include "ingest.h"

/*
 * Tokenise `text` with `tokenizer` (slim tokenizer file or tokenizer.json;
 * NULL = io->vocab_path) and append its windows to io->dataset.  Documents
 * are split as the built-in teacher splits them (slim_teacher_split_docs:
 * blank lines separate documents); each document is encoded, starts with
 * <|endoftext|> when the tokenizer has it, and is cut into windows of at
 * most ctx tokens (the marker included; ctx >= 2).  Each window is one
 * sequence with ext id "text-N" and no stored positions.  The dataset's
 * teacher is io->teacher (NULL = "text"), V = the tokenizer's size (or
 * io->vocab_size when given, which must be >= it), kind LOGITS, sparsifier
 * "none"; the tokenizer's vocabulary is recorded with slim_write_vocab.
 * Exact token duplicates of live sequences are skipped (stats->skipped).
 * Everything is read and tokenised before the store is touched; commits
 * about every io->batch_positions tokens (0 = 65536).
 */
int slim_text_ingest(slim_store *st, const slim_ingest_opts *io, const char *tokenizer,
                     const char *text, uint32_t ctx, slim_ingest_stats *stats,
                     char *err, size_t cap);

#endif
