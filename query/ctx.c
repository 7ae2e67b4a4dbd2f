/*
 * ctx.c — the per-connection state of the SQL layer: the read view, cached
 * dataset facts, the teacher vocabulary and reusable decode buffers.
 */
#include <stdlib.h>
#include <string.h>

#include "qctx.h"

int qctx_reader(slimq *q, slim_reader **out)
{
    if (!q->rd) {
        int rc = slim_read_begin(q->st, &q->rd);
        if (rc) {
            q->rd = NULL;
            return rc;
        }
    }
    *out = q->rd;
    return 0;
}

void slimq_release_reader(slimq *q)
{
    if (!q) return;
    slim_read_end(q->rd);
    q->rd = NULL;
}

uint64_t slimq_record_count(const slimq *q)
{
    return q && q->rd ? slim_read_record_count(q->rd) : 0;
}

uint64_t slimq_decode_count(const slimq *q) { return q ? q->decoded : 0; }

static int kind_of(int k) { return k == SLIM_KIND_SAMPLED ? k : SLIM_KIND_LOGITS; }

int qctx_dataset(slimq *q, const char *name, qds *out)
{
    for (int i = 0; i < q->nds; i++)
        if (strcmp(q->ds[i].name, name) == 0) {
            *out = q->ds[i];
            return 0;
        }
    slim_dataset_info info;
    int rc = slim_dataset_get(q->st, name, &info);
    if (rc) return rc;
    char *copy = strdup(name);
    if (!copy) return SLIM_ENOMEM;
    int slot = q->nds < QDS_CACHE ? q->nds++ : q->ds_next++ % QDS_CACHE;
    free(q->ds[slot].name);
    q->ds[slot] = (qds){ .id = info.id, .teacher = info.teacher_id,
                         .kind = kind_of(info.kind),
                         .V = info.teacher.vocab_size, .name = copy };
    *out = q->ds[slot];
    return 0;
}

static void vocab_clear(qvocab *v)
{
    free(v->off);
    free(v->has);
    free(v->text);
    memset(v, 0, sizeof *v);
    v->teacher = -1;
}

/* Two passes over the vocab rows of one teacher: sizes, then texts. */
static int vocab_load(slimq *q, int64_t teacher)
{
    qvocab *v = &q->voc;
    vocab_clear(v);
    sqlite3 *db = slim_store_sqlite(q->st);
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db,
        "SELECT max(id) + 1, count(*), sum(length(CAST(piece AS BLOB)))"
        " FROM vocab WHERE teacher_id = ?", -1, &s, NULL);
    if (rc) return SLIM_EIO;
    sqlite3_bind_int64(s, 1, teacher);
    int64_t n = 0, bytes = 0, rows = 0;
    if (sqlite3_step(s) == SQLITE_ROW) {
        n = sqlite3_column_int64(s, 0);
        rows = sqlite3_column_int64(s, 1);
        bytes = sqlite3_column_int64(s, 2);
    }
    sqlite3_finalize(s);
    v->teacher = teacher;
    if (rows == 0 || n <= 0 || n > UINT32_MAX - 1) return 0;
    v->off = calloc((size_t)n + 1, sizeof *v->off);
    v->has = calloc((size_t)n, 1);
    v->text = malloc((size_t)(bytes + rows + 1));
    if (!v->off || !v->has || !v->text) {
        vocab_clear(v);
        return SLIM_ENOMEM;
    }
    v->n = (uint32_t)n;
    rc = sqlite3_prepare_v2(db, "SELECT id, CAST(piece AS BLOB) FROM vocab"
                            " WHERE teacher_id = ? ORDER BY id", -1, &s, NULL);
    if (rc) {
        vocab_clear(v);
        return SLIM_EIO;
    }
    sqlite3_bind_int64(s, 1, teacher);
    /* Absent ids get an empty slot: off[i] == off[i+1]. */
    size_t at = 0, cap = (size_t)(bytes + rows + 1);
    uint32_t next = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(s, 0);
        size_t len = (size_t)sqlite3_column_bytes(s, 1);
        if (id < next || id >= n || at + len + 1 > cap) break;
        for (; next <= id; next++) v->off[next] = (uint32_t)at;
        memcpy(v->text + at, sqlite3_column_blob(s, 1), len);
        v->text[at + len] = 0;
        at += len + 1;
        v->has[id] = 1;
    }
    sqlite3_finalize(s);
    for (; next <= v->n; next++) v->off[next] = (uint32_t)at;
    v->teacher = teacher;
    v->present = 1;
    if (rc != SQLITE_DONE) {
        vocab_clear(v);
        return SLIM_ECORRUPT;
    }
    return 0;
}

const char *qctx_piece(slimq *q, int64_t teacher, uint32_t id, int *len,
                       int *rc)
{
    *rc = 0;
    if (q->voc.teacher != teacher && (*rc = vocab_load(q, teacher)) != 0)
        return NULL;
    qvocab *v = &q->voc;
    if (!v->present || id >= v->n || !v->has[id]) return NULL;
    *len = (int)(v->off[id + 1] - v->off[id] - 1);
    return v->text + v->off[id];
}

static int grow(void **p, size_t n, size_t size)
{
    void *np = realloc(*p, n * size);
    if (!np) return SLIM_ENOMEM;
    *p = np;
    return 0;
}

int qctx_read(slimq *q, qbuf *b, int64_t dataset, int64_t seq, uint32_t pos,
              uint32_t n, unsigned flags)
{
    slim_reader *rd;
    int rc = qctx_reader(q, &rd);
    if (rc) return rc;
    if (n > b->ndist) {
        if ((rc = grow((void **)&b->dists, n, sizeof *b->dists))) return rc;
        b->ndist = n;
    }
    /* Start warm enough that a first point read does not pay a retry. */
    if (b->cap < (size_t)n * 256) {
        size_t want = (size_t)n * 256;
        if ((rc = grow((void **)&b->ids, want, sizeof *b->ids)) ||
            (rc = grow((void **)&b->vals, want, sizeof *b->vals)))
            return rc;
        b->cap = want;
    }
    q->decoded += n;
    for (;;) {
        size_t need = 0;
        rc = slim_read_positions(rd, dataset, seq, pos, n, b->dists, b->ids,
                                 b->vals, b->cap, &need, flags);
        if (rc != SLIM_ERANGE) return rc;
        if (need <= b->cap) need = b->cap * 2 + 1024;
        if ((rc = grow((void **)&b->ids, need, sizeof *b->ids)) ||
            (rc = grow((void **)&b->vals, need, sizeof *b->vals)))
            return rc;
        b->cap = need;
    }
}

int qctx_pstats(slimq *q, qbuf *b, int64_t dataset, int64_t seq, uint32_t pos,
                uint32_t n)
{
    slim_reader *rd;
    int rc = qctx_reader(q, &rd);
    if (rc) return rc;
    if (n > b->pscap) {
        if ((rc = grow((void **)&b->ps, n, sizeof *b->ps))) return rc;
        b->pscap = n;
    }
    return slim_read_pstats(rd, dataset, seq, pos, n, b->ps);
}

int qctx_tokens(slimq *q, qbuf *b, int64_t dataset, int64_t seq, uint32_t *T)
{
    slim_reader *rd;
    int rc = qctx_reader(q, &rd);
    if (rc) return rc;
    for (;;) {
        rc = slim_read_tokens(rd, dataset, seq, b->tok, b->tokcap, T);
        if (rc != SLIM_ERANGE) return rc;
        uint32_t want = *T > b->tokcap ? *T : b->tokcap * 2 + 256;
        if ((rc = grow((void **)&b->tok, want, sizeof *b->tok))) return rc;
        b->tokcap = want;
    }
}

void qbuf_free(qbuf *b)
{
    free(b->dists);
    free(b->ids);
    free(b->vals);
    free(b->tok);
    free(b->ps);
    memset(b, 0, sizeof *b);
}
