/*
 * toklist.h — private to libslimingest: what the built-in teacher and
 * token-only text ingest share: reading a text file whole, opening a
 * tokenizer that can encode, and a growing list of token sequences cut from
 * documents.  Errors follow ingest.h (0 or SLIM_E*, a one-line message in
 * err[cap] naming the file and place).
 */
#ifndef SLIM_TOKLIST_H
#define SLIM_TOKLIST_H

#include <stddef.h>
#include <stdint.h>
#include "../train/tokenizer.h"

/* Token lists back to back: list i is pool[off[i] .. off[i] + len[i]).
 * Zero-initialise; release with slim_toklist_release. */
typedef struct slim_toklist {
    uint32_t *pool;             /* (npool) every list's tokens */
    size_t npool, poolcap;
    size_t *off;                /* (n) start of each list in pool */
    uint32_t *len;              /* (n) length of each list */
    size_t n, cap;
} slim_toklist;

/* Append one list: bos first when bos >= 0, then ids[0..n).  SLIM_ENOMEM. */
int slim_toklist_add(slim_toklist *l, int64_t bos, const uint32_t *ids, size_t n);
void slim_toklist_release(slim_toklist *l);

/*
 * Split text[0..len) into documents (slim_teacher_split_docs: blank lines
 * separate them), encode each with tok and append it cut into windows of at
 * most ctx tokens, every window starting with bos when bos >= 0 (ctx >= 2).
 * path names the text in messages ("'corpus.txt': cannot tokenise the text
 * at byte 1234").
 */
int slim_toklist_add_text(slim_toklist *l, slim_tok *tok, int64_t bos, uint32_t ctx,
                          const char *path, const char *text, size_t len,
                          char *err, size_t cap);

/* Read the file whole into a malloc'd buffer (*out, *n; free it). */
int slim_read_whole(const char *path, char **out, size_t *n, char *err, size_t cap);

/* Open a slim tokenizer file (sniffed by its first line) or else a Hugging
 * Face tokenizer.json, and check it can encode text (byte-level BPE). */
int slim_tok_open_encoder(const char *path, slim_tok **out, char *err, size_t cap);

#endif
