/*
 * toklist.c — toklist.h: text → token windows, shared by the built-in
 * teacher (scoring, prompts) and token-only text ingest, so both cut text
 * into sequences the same way.
 */
#include "toklist.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "slim.h"
#include "teacher.h"

int slim_toklist_add(slim_toklist *l, int64_t bos, const uint32_t *ids, size_t n)
{
    size_t need = n + (bos >= 0);
    if (l->npool + need > l->poolcap) {
        size_t nc = l->poolcap ? l->poolcap : 65536;
        while (nc < l->npool + need) nc *= 2;
        uint32_t *p = realloc(l->pool, nc * sizeof *p);
        if (!p) return SLIM_ENOMEM;
        l->pool = p;
        l->poolcap = nc;
    }
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 256;
        size_t *o = realloc(l->off, nc * sizeof *o);
        if (o) l->off = o;
        uint32_t *ln = realloc(l->len, nc * sizeof *ln);
        if (ln) l->len = ln;
        if (!o || !ln) return SLIM_ENOMEM;
        l->cap = nc;
    }
    l->off[l->n] = l->npool;
    l->len[l->n++] = (uint32_t)need;
    if (bos >= 0) l->pool[l->npool++] = (uint32_t)bos;
    if (n) memcpy(l->pool + l->npool, ids, n * sizeof *ids);
    l->npool += n;
    return 0;
}

void slim_toklist_release(slim_toklist *l)
{
    free(l->pool);
    free(l->off);
    free(l->len);
    memset(l, 0, sizeof *l);
}

typedef struct docs_ctx {
    slim_toklist *l;
    slim_tok *tok;
    int64_t bos;
    size_t win;                 /* tokens per window besides bos */
    const char *path, *text;
    uint32_t *ids;              /* (text length) encode buffer */
    size_t idcap;
    char *err;
    size_t cap;
    int rc;
} docs_ctx;

static void add_doc(void *arg, size_t off, size_t n)
{
    docs_ctx *d = arg;
    size_t m;
    if (d->rc) return;
    if ((d->rc = slim_tok_encode(d->tok, d->text + off, n, d->ids, d->idcap, &m))) {
        snprintf(d->err, d->cap, "'%s': cannot tokenise the text at byte %zu", d->path, off);
        return;
    }
    for (size_t i = 0; i < m && !d->rc; i += d->win)
        d->rc = slim_toklist_add(d->l, d->bos, d->ids + i, m - i < d->win ? m - i : d->win);
    if (d->rc) snprintf(d->err, d->cap, "out of memory");
}

int slim_toklist_add_text(slim_toklist *l, slim_tok *tok, int64_t bos, uint32_t ctx,
                          const char *path, const char *text, size_t len,
                          char *err, size_t cap)
{
    if (ctx < 2) {
        snprintf(err, cap, "context of %u tokens is too short (at least 2)", ctx);
        return SLIM_EINVAL;
    }
    docs_ctx d = { .l = l, .tok = tok, .bos = bos, .win = ctx - (bos >= 0), .path = path,
                   .text = text, .idcap = len ? len : 1, .err = err, .cap = cap };
    if (!(d.ids = malloc(d.idcap * sizeof *d.ids))) {
        snprintf(err, cap, "out of memory");
        return SLIM_ENOMEM;
    }
    slim_teacher_split_docs(text, len, add_doc, &d);
    free(d.ids);
    return d.rc;
}

int slim_read_whole(const char *path, char **out, size_t *n, char *err, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, cap, "cannot open '%s': %s", path, strerror(errno));
        return SLIM_EIO;
    }
    size_t bcap = 1 << 16, len = 0;
    char *buf = malloc(bcap);
    while (buf) {
        len += fread(buf + len, 1, bcap - len, f);
        if (len < bcap) break;
        char *nb = realloc(buf, bcap *= 2);
        if (!nb) { free(buf); buf = NULL; }
        else buf = nb;
    }
    int bad = ferror(f), e = errno, oom = !buf;
    fclose(f);
    if (oom || bad) {
        free(buf);
        snprintf(err, cap, "cannot read '%s': %s", path, oom ? "out of memory" : strerror(e));
        return oom ? SLIM_ENOMEM : SLIM_EIO;
    }
    *out = buf;
    *n = len;
    return 0;
}

int slim_tok_open_encoder(const char *path, slim_tok **out, char *err, size_t cap)
{
    char head[16] = { 0 };
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, cap, "cannot open '%s': %s", path, strerror(errno));
        return SLIM_EIO;
    }
    size_t n = fread(head, 1, sizeof head - 1, f);
    fclose(f);
    int rc = n >= 14 && !memcmp(head, "slim-tokenizer", 14) ? slim_tok_load(path, out, err, cap)
                                                            : slim_tok_load_hf(path, out, err, cap);
    if (rc) { *out = NULL; return rc; }
    if (slim_tok_kind(*out) != SLIM_TOK_BYTEBPE) {
        snprintf(err, cap, "'%s': only byte-level BPE tokenizers can encode text", path);
        slim_tok_free(*out);
        *out = NULL;
        return SLIM_EINVAL;
    }
    return 0;
}
