/*
 * tokenizer.h — slim's tokenizers (part of libslimtrain; used by slim-ingest
 * for --vocab and by slim-train for text).
 *
 * One handle type serves two sources:
 *   - slim's own byte-level BPE, trained here (slim_tok_train), saved and
 *     loaded in slim's text format (slim_tok_save / slim_tok_load), and
 *     exportable as a Hugging Face tokenizer.json (slim_tok_save_hf);
 *   - a Hugging Face tokenizer.json (slim_tok_load_hf): byte-level BPE
 *     (GPT-2, Llama-3, Qwen), SentencePiece-style BPE or Unigram (Llama-2,
 *     Mistral, T5), and literal vocabularies (WordPiece/WordLevel).
 * Every kind gives each id its decoded bytes (slim_tok_piece) and decodes; the
 * byte-level BPE kinds also encode.  docs/TOKENIZER.md describes the file
 * format, the pre-tokenisation rule and the import's coverage.
 *
 * Conventions: functions return 0 or a negative SLIM_E* code (store/slim.h);
 * those taking err/errcap write a one-line message there on failure (naming
 * the file and the place), truncated to errcap bytes, NUL-terminated; err may
 * be NULL.  The library never prints or exits.  slim_tok_free(NULL) is a
 * no-op.  A handle may be shared by threads for every const function; encode
 * keeps a per-handle word cache, so give each thread its own handle (or
 * serialise calls to slim_tok_encode).
 */
#ifndef SLIM_TOKENIZER_H
#define SLIM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "slim.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct slim_tok slim_tok;

/* What a handle's pieces mean (how the vocabulary was written). */
#define SLIM_TOK_BYTEBPE 1 /* byte-level BPE: slim's own or HF ByteLevel */
#define SLIM_TOK_SPM 2     /* SentencePiece-style: U+2581 = space, <0xNN> bytes */
#define SLIM_TOK_LITERAL 3 /* pieces are the vocabulary strings as written */

/* Longest pre-token (bytes) BPE sees; longer runs are cut into pieces of this
 * size so encoding stays linear on pathological input. */
#define SLIM_TOK_MAX_WORD 128

/* Load a Hugging Face tokenizer.json.  *out gets a new handle (free it with
 * slim_tok_free).  Errors: SLIM_EIO (cannot read), SLIM_EINVAL (invalid JSON
 * — with line:column —, missing model.vocab, a non-integer or negative id, two
 * tokens with one id, a merge naming a token not in the vocabulary, ...).
 * A merge is left out (not counted by slim_tok_merges) when added_tokens made
 * one of its ids special or gave its result other bytes than its parts'
 * concatenation, so that decoding what slim_tok_encode gives is always exact. */
int slim_tok_load_hf(const char *path, slim_tok **out, char *err, size_t errcap);

/* Max id + 1 (added tokens included).  Ids below it may be unused. */
uint32_t slim_tok_size(const slim_tok *t);

/* The token's decoded bytes (*len of them, not NUL-terminated; may contain
 * NUL), or NULL if id is unused or >= size.  Special tokens give their literal
 * text (e.g. "<|endoftext|>").  The pointer lives until slim_tok_free. */
const char *slim_tok_piece(const slim_tok *t, uint32_t id, size_t *len);

/* sha256 of the file the handle was loaded from, lowercase hex + NUL.  For a
 * tokenizer trained in memory: the sha256 of the bytes slim_tok_save would
 * write, so the hash is the same before and after a save/load round trip. */
void slim_tok_hash(const slim_tok *t, char hex[65]);

void slim_tok_free(slim_tok *t);

/* SLIM_TOK_BYTEBPE, SLIM_TOK_SPM or SLIM_TOK_LITERAL. */
int slim_tok_kind(const slim_tok *t);

/* 1 if id is a special token (HF added_tokens with "special": true, or one of
 * slim_tok_train's specials), else 0. */
int slim_tok_is_special(const slim_tok *t, uint32_t id);

/* The id whose decoded bytes are exactly piece[0..len), special tokens
 * included (e.g. slim_tok_find(t, "<|endoftext|>", 13, &id)).
 * SLIM_ENOTFOUND if none. */
int slim_tok_find(const slim_tok *t, const char *piece, size_t len, uint32_t *id);

/* Number of BPE merges (0 for Unigram / literal vocabularies). */
uint32_t slim_tok_merges(const slim_tok *t);

/* Train slim's byte-level BPE on text[0..len): ids 0..255 are the bytes,
 * 256.. the merges in the order learnt, then the nspecial specials (NULL =
 * the single "<|endoftext|>").  vocab_size counts all three; it must be at
 * least 256 + nspecial (SLIM_EINVAL).  If the text runs out of pairs first,
 * fewer merges are learnt and slim_tok_size is smaller than vocab_size.
 * Deterministic: the most frequent pair wins; ties go to the smaller first id,
 * then the smaller second id. */
int slim_tok_train(const char *text, size_t len, uint32_t vocab_size,
                   const char *const *specials, size_t nspecial, slim_tok **out,
                   char *err, size_t errcap);

/* Encode text[0..len) (raw bytes; special-token text is NOT recognised —
 * insert special ids yourself) into ids[0..cap).  *n = number of ids.
 * At most len ids are produced, so cap >= len always suffices; with a smaller
 * cap the result is SLIM_ERANGE and *n the number needed.  SLIM_EINVAL if the
 * handle cannot encode (not SLIM_TOK_BYTEBPE, or a byte has no token). */
int slim_tok_encode(slim_tok *t, const char *text, size_t len, uint32_t *ids,
                    size_t cap, size_t *n);

/* Decode ids[0..n) into buf[0..cap): the concatenation of the pieces, exact
 * bytes (no UTF-8 repair, no space stripping).  *len = bytes written, or the
 * bytes needed with SLIM_ERANGE; SLIM_EINVAL on an unused id or one >= size
 * (*len = its index). */
int slim_tok_decode(const slim_tok *t, const uint32_t *ids, size_t n, char *buf,
                    size_t cap, size_t *len);

/* Save in slim's tokenizer format (docs/TOKENIZER.md); any kind.  Written to
 * path.tmp then renamed.  SLIM_EIO on failure. */
int slim_tok_save(const slim_tok *t, const char *path, char *err, size_t errcap);

/* Load a file written by slim_tok_save.  SLIM_EIO / SLIM_EINVAL (with the
 * line number) / SLIM_ENOMEM. */
int slim_tok_load(const char *path, slim_tok **out, char *err, size_t errcap);

/* Export a SLIM_TOK_BYTEBPE handle as a Hugging Face tokenizer.json
 * (model BPE, ByteLevel pre-tokenizer and decoder; specials as added_tokens),
 * which slim_tok_load_hf reads back to the same ids and pieces.  SLIM_EINVAL
 * for other kinds and when two ids would get the same vocabulary string
 * (model.vocab is a map: one would be lost). */
int slim_tok_save_hf(const slim_tok *t, const char *path, char *err, size_t errcap);

#ifdef __cplusplus
}
#endif

#endif
