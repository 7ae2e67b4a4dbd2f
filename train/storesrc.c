/*
 * storesrc.c — the training data source over a store snapshot: the members
 * of one split, read through a slim_reader per thread.
 */
#include "storesrc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct storesrc {
    slim_store *st;
    size_t n;
    int64_t *ds, *seq;   /* (n) members of the split, in snapshot order */
} storesrc;

static int ss_begin(void *ctx, void **rd)
{
    storesrc *s = ctx;
    return slim_read_begin(s->st, (slim_reader **)rd);
}

static void ss_end(void *rd) { slim_read_end(rd); }

/* slim_tsrc's read calls receive only the read handle, so the handle is a
 * pair (reader, source). */
typedef struct pair {
    slim_reader *r;
    storesrc *s;
} pair;

static int pb_begin(void *ctx, void **rd)
{
    pair *p = calloc(1, sizeof *p);
    if (!p) return SLIM_ENOMEM;
    p->s = ctx;
    int rc = ss_begin(ctx, (void **)&p->r);
    if (rc) { free(p); return rc; }
    *rd = p;
    return 0;
}

static void pb_end(void *rd)
{
    pair *p = rd;
    if (!p) return;
    ss_end(p->r);
    free(p);
}

static int pb_info(void *rd, size_t i, uint32_t *ntok, uint32_t *npos)
{
    pair *p = rd;
    slim_seq_info si;
    int rc = slim_read_seq(p->r, p->s->ds[i], p->s->seq[i], &si);
    if (rc) return rc;
    *ntok = si.ntokens;
    *npos = si.npos;
    return 0;
}

static int pb_tokens(void *rd, size_t i, uint32_t *buf, uint32_t cap, uint32_t *ntok)
{
    pair *p = rd;
    return slim_read_tokens(p->r, p->s->ds[i], p->s->seq[i], buf, cap, ntok);
}

static int pb_dists(void *rd, size_t i, uint32_t pos, uint32_t n, slim_dist *out, uint32_t *ids,
                    float *vals, size_t cap, size_t *need)
{
    pair *p = rd;
    return slim_read_positions(p->r, p->s->ds[i], p->s->seq[i], pos, n, out, ids, vals, cap, need,
                               SLIM_READ_ID_ORDER);
}

static const char *pb_errmsg(void *ctx, void *rd)
{
    (void)rd;
    return slim_errmsg(((storesrc *)ctx)->st);
}

int slim_storesrc_new(slim_tsrc *out, slim_store *st, const slim_snapshot *snap, int split,
                      char *err, size_t cap)
{
    memset(out, 0, sizeof *out);
    size_t n = slim_snapshot_size(snap), k = 0;
    const slim_member *mb = slim_snapshot_members(snap);
    storesrc *s = calloc(1, sizeof *s);
    if (!s) return SLIM_ENOMEM;
    s->st = st;
    s->ds = malloc((n + 1) * sizeof *s->ds);
    s->seq = malloc((n + 1) * sizeof *s->seq);
    if (!s->ds || !s->seq) { free(s->ds); free(s->seq); free(s); return SLIM_ENOMEM; }
    int64_t last_ds = -1;
    uint32_t V = 0;
    int kind = 0, rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (split >= 0 && mb[i].split != split) continue;
        s->ds[k] = mb[i].dataset;
        s->seq[k++] = mb[i].seq;
        if (mb[i].dataset == last_ds) continue;
        last_ds = mb[i].dataset;
        int nd = 0;
        slim_dataset_info di = {0};
        rc = slim_dataset_count(st, &nd);
        int found = 0;
        for (int d = 0; d < nd && !rc && !found; d++)
            if (!(rc = slim_dataset_at(st, d, &di)) && di.id == mb[i].dataset) found = 1;
        if (!rc && !found) {
            snprintf(err, cap, "snapshot '%s': dataset %lld is missing", slim_snapshot_name(snap),
                     (long long)mb[i].dataset);
            rc = SLIM_ENOTFOUND;
        } else if (rc) {
            snprintf(err, cap, "%s", slim_errmsg(st));
        } else if (V && (di.teacher.vocab_size != V || di.kind != kind)) {
            snprintf(err, cap, "snapshot '%s' mixes teachers or kinds (dataset '%s': V=%u, first: V=%u)",
                     slim_snapshot_name(snap), di.name, di.teacher.vocab_size, V);
            rc = SLIM_EMISMATCH;
        } else {
            V = di.teacher.vocab_size;
            kind = di.kind;
        }
    }
    if (rc) { free(s->ds); free(s->seq); free(s); return rc; }
    s->n = k;
    out->ctx = s;
    out->n = k;
    out->vocab = V;
    out->kind = kind;
    out->begin = pb_begin;
    out->end = pb_end;
    out->info = pb_info;
    out->tokens = pb_tokens;
    out->dists = pb_dists;
    out->errmsg = pb_errmsg;
    return 0;
}

void slim_storesrc_free(slim_tsrc *src)
{
    storesrc *s = src ? src->ctx : NULL;
    if (!s) return;
    free(s->ds);
    free(s->seq);
    free(s);
    src->ctx = NULL;
}

void slim_storesrc_limit(slim_tsrc *src, size_t n)
{
    storesrc *s = src ? src->ctx : NULL;
    if (!s || !n || n >= s->n) return;
    s->n = n;
    src->n = n;
}
