/*
 * tokenizer_int.h — private to train/tokenizer*.c: the handle's layout and
 * the helpers the Hugging Face import (tokenizer_hf.c) shares with the core
 * (tokenizer.c).  Not part of the contract; tools include tokenizer.h only.
 */
#ifndef SLIM_TOKENIZER_INT_H
#define SLIM_TOKENIZER_INT_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

#define TOK_NONE UINT32_MAX
#define TOK_MAX_ID (1u << 24) /* ids beyond 16M are certainly a broken file */

/* Write a one-line message into err (may be NULL) and return code. */
static inline int fail(char *err, size_t cap, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline int fail(char *err, size_t cap, int code, const char *fmt, ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return code;
}

static inline int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return SLIM_ENOMEM;
    *p = q;
    *cap = c;
    return 0;
}

/* Value of a hex digit, -1 if c is none. */
static inline int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Byte strings -> uint32, keys copied into one arena (no allocation per key).
 * Open addressing, linear probing, load <= 1/2. */
typedef struct {
    uint64_t *hash; /* (cap) 0 = empty slot */
    uint64_t *koff; /* (cap) key offset in arena */
    uint32_t *klen; /* (cap) */
    uint32_t *val;  /* (cap) */
    size_t cap, n;
    char *arena;
    size_t alen, acap;
} smap;

int slim_smap_init(smap *m, size_t cap);
void slim_smap_free(smap *m);
uint32_t *slim_smap_get(const smap *m, const void *k, size_t len);
/* Insert k -> val unless present.  *slot points at the (new or old) value;
 * returns 1 if the key was already there, 0 if inserted, <0 on ENOMEM. */
int slim_smap_add(smap *m, const void *k, size_t len, uint32_t val, uint32_t **slot);

/* (a, b) id pairs -> uint32; key UINT64_MAX = empty (never a valid pair). */
typedef struct {
    uint64_t *key; /* (cap) */
    uint32_t *val; /* (cap) */
    size_t cap, n;
} pmap;

struct slim_tok {
    int kind;
    uint32_t size;     /* max id + 1 */
    size_t icap;       /* capacity of the per-id arrays */
    uint64_t *off;     /* (icap) piece offset in arena */
    uint32_t *len;     /* (icap) piece length; TOK_NONE = unused id */
    uint8_t *special;  /* (icap) */
    char *arena;
    size_t alen, acap;
    uint32_t byte_id[256]; /* id of the single-byte piece, TOK_NONE if none */
    uint32_t nmerge;
    size_t mcap;
    uint32_t *merge;   /* (nmerge, 3): a, b, result; index = rank */
    pmap rank;         /* (a, b) -> rank */
    smap bypiece;      /* piece bytes -> lowest id */
    unsigned char sha[32];
    /* encode: word bytes -> offset in cids of [count, ids...] */
    smap cache;
    uint32_t *cids;
    size_t cn, ccap;
};

slim_tok *slim_tok_alloc(int kind);
/* Give id its piece.  Returns 1 if id already had one (kept unless replace),
 * 0 if set, SLIM_ENOMEM. */
int slim_tok_set_piece(slim_tok *t, uint32_t id, const char *p, size_t n, int special, int replace);
int slim_tok_add_merge(slim_tok *t, uint32_t a, uint32_t b, uint32_t result);
/* After all pieces and merges are in: build the lookup tables. */
int slim_tok_index(slim_tok *t);
void slim_tok_sha256(const void *p, size_t n, unsigned char out[32]);
/* Whole file into *buf (NUL-terminated, caller frees) / path via path.tmp. */
int slim_tok_read_file(const char *path, char **buf, size_t *n, char *err, size_t errcap);
int slim_tok_write_file(const char *path, const char *buf, size_t n, char *err, size_t errcap);

#endif
