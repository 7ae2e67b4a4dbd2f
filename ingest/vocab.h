/*
 * vocab.h — private to libslimingest: import a tokenizer's vocabulary into
 * the store (slim_write_vocab) for a dataset's teacher.
 */
#ifndef SLIM_INGEST_VOCAB_H
#define SLIM_INGEST_VOCAB_H

#include <stdint.h>
#include "slim.h"
#include "../train/tokenizer.h"

/* Record every id of tok that has a NUL-free piece, in w's transaction.
 * Returns 0 or a SLIM_E* code (detail in slim_errmsg of w's store). */
int slim_ingest_write_vocab(slim_writer *w, int64_t dataset, const slim_tok *tok,
                            const char *tokenizer_hash);

#endif
