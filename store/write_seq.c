/*
 * write_seq.c — appending, finding and deleting sequences.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "write_internal.h"

typedef struct ds_facts {
    int64_t teacher_id, next_seq;
    uint32_t V;
    int kind;
    slim_precision prec;
} ds_facts;

static int load_facts(slim_writer *w, int64_t dataset, ds_facts *f)
{
    sqlite3_stmt *q = slim__stmt(w, W_DS_FACTS,
                                 "SELECT d.teacher_id, t.vocab_size, d.kind, d.precision, d.next_seq"
                                 " FROM datasets d JOIN teachers t ON t.id = d.teacher_id"
                                 " WHERE d.id = ?1");
    if (!q) return SLIM_EIO;
    sqlite3_bind_int64(q, 1, dataset);
    int s = sqlite3_step(q), rc = 0;
    if (s == SQLITE_ROW) {
        f->teacher_id = sqlite3_column_int64(q, 0);
        f->V = (uint32_t)sqlite3_column_int64(q, 1);
        f->kind = slim__kind_parse((const char *)sqlite3_column_text(q, 2));
        f->next_seq = sqlite3_column_int64(q, 4);
        if (!f->kind || slim_precision_parse((const char *)sqlite3_column_text(q, 3), &f->prec))
            rc = slim__err(w->st, SLIM_ECORRUPT, "dataset %lld: bad kind or precision", (long long)dataset);
    } else if (s == SQLITE_DONE) {
        rc = slim__err(w->st, SLIM_ENOTFOUND, "no dataset number %lld", (long long)dataset);
    } else {
        rc = slim__sql_err(w->st, w->st->db, "reading a dataset");
    }
    sqlite3_reset(q);
    return rc;
}

/* A sequence row as the writer needs it; tokens land in w->tokbuf. */
typedef struct target {
    slim_seqmeta m;
    int64_t teacher_id;
    int kind;
} target;

static int load_target(slim_writer *w, int64_t d, int64_t s, target *t, int with_tokens)
{
    sqlite3_stmt *q = slim__stmt(w, W_SEQ_META,
                                 "SELECT s.ntokens, s.npos, s.prefix_dataset, s.prefix_seq, s.prefix_len,"
                                 " s.deleted, s.purged, s.entries, s.record_bytes, d.teacher_id, d.kind,"
                                 " s.tokens FROM sequences s JOIN datasets d ON d.id = s.dataset_id"
                                 " WHERE s.dataset_id = ?1 AND s.seq = ?2");
    if (!q) return SLIM_EIO;
    sqlite3_bind_int64(q, 1, d);
    sqlite3_bind_int64(q, 2, s);
    int st = sqlite3_step(q), rc = 0;
    if (st != SQLITE_ROW) {
        sqlite3_reset(q);
        if (st == SQLITE_DONE)
            return slim__err(w->st, SLIM_ENOTFOUND, "no sequence %lld in dataset %lld", (long long)s,
                             (long long)d);
        return slim__sql_err(w->st, w->st->db, "reading a sequence");
    }
    memset(t, 0, sizeof *t);
    t->m.dataset = d;
    t->m.seq = s;
    t->m.ntokens = (uint32_t)sqlite3_column_int64(q, 0);
    t->m.npos = (uint32_t)sqlite3_column_int64(q, 1);
    t->m.prefix_dataset = sqlite3_column_type(q, 2) == SQLITE_NULL ? -1 : sqlite3_column_int64(q, 2);
    t->m.prefix_seq = sqlite3_column_type(q, 3) == SQLITE_NULL ? -1 : sqlite3_column_int64(q, 3);
    t->m.prefix_len = (uint32_t)sqlite3_column_int64(q, 4);
    t->m.deleted = sqlite3_column_int(q, 5);
    t->m.purged = sqlite3_column_int(q, 6);
    t->m.entries = sqlite3_column_int64(q, 7);
    t->m.record_bytes = sqlite3_column_int64(q, 8);
    t->teacher_id = sqlite3_column_int64(q, 9);
    t->kind = slim__kind_parse((const char *)sqlite3_column_text(q, 10));
    if (with_tokens) {
        uint32_t T;
        if (slim__grow((void **)&w->tokbuf, &w->tokcap, t->m.ntokens + 1, 4)) rc = SLIM_ENOMEM;
        else if (slim__tokens_decode(sqlite3_column_blob(q, 11), (size_t)sqlite3_column_bytes(q, 11),
                                     w->tokbuf, (uint32_t)w->tokcap, &T) || T != t->m.ntokens)
            rc = slim__err(w->st, SLIM_ECORRUPT, "dataset %lld seq %lld: corrupt tokens", (long long)d,
                           (long long)s);
    }
    sqlite3_reset(q);
    return rc;
}

/* Checks a caller's prefix reference and flattens it to one hop: the target
 * of a stored reference always owns its records from position 0. */
static int resolve_prefix(slim_writer *w, const ds_facts *f, const slim_prefix_ref *p,
                          const uint32_t *tokens, uint32_t T, uint32_t npos, slim_prefix_ref *out)
{
    slim_store *st = w->st;
    target t;
    out->dataset = out->seq = -1;
    out->len = 0;
    if (!p || p->len == 0) return 0;
    int rc = load_target(w, p->dataset, p->seq, &t, 1);
    if (rc) return rc;
    if (t.m.purged) return slim__err(st, SLIM_EINVAL, "prefix: dataset %lld seq %lld was deleted",
                                     (long long)p->dataset, (long long)p->seq);
    if (t.teacher_id != f->teacher_id || t.kind != f->kind)
        return slim__err(st, SLIM_EINVAL, "prefix: dataset %lld has another teacher or kind",
                         (long long)p->dataset);
    uint32_t len = p->len;
    if (len > t.m.npos) len = t.m.npos;
    if (len > npos) len = npos;
    if (len > T) len = T;
    for (uint32_t i = 0; i < len; i++)
        if (tokens[i] != w->tokbuf[i])
            return slim__err(st, SLIM_EINVAL, "prefix: tokens differ from dataset %lld seq %lld at index %u",
                             (long long)p->dataset, (long long)p->seq, i);
    out->dataset = p->dataset;
    out->seq = p->seq;
    if (t.m.prefix_len > 0) {
        out->dataset = t.m.prefix_dataset;
        out->seq = t.m.prefix_seq;
        if (len > t.m.prefix_len) len = t.m.prefix_len;
    }
    out->len = len;
    return 0;
}

/* ------------------------------------------------------------ records */

static int put_chunk(slim_writer *w, int64_t d, int64_t s, uint32_t pos, const uint8_t *buf, size_t len)
{
    uint8_t kb[SLIM_KEY_LEN];
    slim__key(kb, d, s, pos);
    MDB_val k = {SLIM_KEY_LEN, kb}, v = {len, (void *)buf};
    int append = !w->have_last || memcmp(kb, w->last, SLIM_KEY_LEN) > 0;
    int mrc = mdb_put(w->txn, w->st->rec_dbi, &k, &v, append ? MDB_APPEND : MDB_NOOVERWRITE);
    if (mrc) {
        char ks[96];
        return slim__err(w->st, mrc == MDB_MAP_FULL ? SLIM_EIO : SLIM_EIO, "writing %s: lmdb: %s",
                         slim__key_str(ks, sizeof ks, kb, SLIM_KEY_LEN), mdb_strerror(mrc));
    }
    if (append) {
        memcpy(w->last, kb, SLIM_KEY_LEN);
        w->have_last = 1;
    }
    return 0;
}

static int index_prefixes(slim_writer *w, int64_t teacher, int64_t d, int64_t s,
                          const uint32_t *tokens, uint32_t T)
{
    int rc = 0;
    for (uint32_t L = 16;; L *= 2) {
        if (L >= T) L = T;
        sqlite3_stmt *q = slim__stmt(w, W_PFX_ADD, "INSERT INTO prefix_index(teacher_id, len, hash,"
                                                   " dataset_id, seq) VALUES (?1, ?2, ?3, ?4, ?5)");
        if (!q) return SLIM_EIO;
        sqlite3_bind_int64(q, 1, teacher);
        sqlite3_bind_int64(q, 2, L);
        sqlite3_bind_int64(q, 3, slim__tokens_hash(tokens, L));
        sqlite3_bind_int64(q, 4, d);
        sqlite3_bind_int64(q, 5, s);
        if ((rc = slim__step_done(w, q, "indexing prefixes")) || L == T) break;
    }
    return rc;
}

typedef struct seq_row {
    int64_t d, s, run;
    const char *ext_id;
    const uint32_t *tokens;
    uint32_t T, npos;
    slim_prefix_ref pfx;
    int64_t entries, bytes;
    uint8_t hash[16];
} seq_row;

static int insert_row(slim_writer *w, const ds_facts *f, const seq_row *r)
{
    uint8_t *blob;
    size_t blen;
    int rc = slim__tokens_encode(r->tokens, r->T, &blob, &blen);
    if (rc) return w->failed = rc;
    sqlite3_stmt *q = slim__stmt(w, W_SEQ_ADD,
                                 "INSERT INTO sequences(dataset_id, seq, ext_id, ntokens, npos, entries,"
                                 " record_bytes, tokens, tokens_hash, content_hash, ingest_run,"
                                 " prefix_dataset, prefix_seq, prefix_len)"
                                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)");
    if (!q) {
        free(blob);
        return w->failed = SLIM_EIO;
    }
    sqlite3_bind_int64(q, 1, r->d);
    sqlite3_bind_int64(q, 2, r->s);
    if (r->ext_id) sqlite3_bind_text(q, 3, r->ext_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 4, r->T);
    sqlite3_bind_int64(q, 5, r->npos);
    sqlite3_bind_int64(q, 6, r->entries);
    sqlite3_bind_int64(q, 7, r->bytes);
    sqlite3_bind_blob(q, 8, blob, (int)blen, free);
    sqlite3_bind_int64(q, 9, slim__tokens_hash(r->tokens, r->T));
    sqlite3_bind_blob(q, 10, r->hash, 16, SQLITE_STATIC);
    if (r->run > 0) sqlite3_bind_int64(q, 11, r->run);
    if (r->pfx.len) {
        sqlite3_bind_int64(q, 12, r->pfx.dataset);
        sqlite3_bind_int64(q, 13, r->pfx.seq);
    }
    sqlite3_bind_int64(q, 14, r->pfx.len);
    if ((rc = slim__step_done(w, q, "adding a sequence"))) return rc;
    q = slim__stmt(w, W_DS_BUMP, "UPDATE datasets SET next_seq = next_seq + 1, sequences = sequences + 1,"
                                 " positions = positions + ?2, entries = entries + ?3,"
                                 " record_bytes = record_bytes + ?4 WHERE id = ?1");
    if (!q) return w->failed = SLIM_EIO;
    sqlite3_bind_int64(q, 1, r->d);
    sqlite3_bind_int64(q, 2, r->npos);
    sqlite3_bind_int64(q, 3, r->entries);
    sqlite3_bind_int64(q, 4, r->bytes);
    if ((rc = slim__step_done(w, q, "counting a sequence"))) return rc;
    if (r->pfx.len == 0 && r->T > 0) rc = index_prefixes(w, f->teacher_id, r->d, r->s, r->tokens, r->T);
    return rc;
}

/* The writer's own preparer and prepared sequence, made on first use. */
static int own_prepared(slim_writer *w)
{
    if (!w->pr && slim_preparer_new(&w->pr)) return slim__err(w->st, SLIM_ENOMEM, "out of memory");
    if (!w->own && slim_prepared_new(&w->own)) return slim__err(w->st, SLIM_ENOMEM, "out of memory");
    return 0;
}

/* (Re-)prepare positions [from, npos) on the writer thread. */
static int prepare_here(slim_writer *w, const ds_facts *f, const uint32_t *tokens, uint32_t T,
                        const slim_dist *dists, uint32_t npos, uint32_t from)
{
    int rc = own_prepared(w);
    if (rc) return rc;
    rc = slim__prepare(w->pr, w->own, f->kind, &f->prec, f->V, tokens, T, dists, npos, from);
    return rc ? slim__err(w->st, rc, "%s", w->own->err) : 0;
}

/* Appends the prepared records under the next sequence number and adds the
 * rows: the part of an append that must happen in input order. */
static int append_prepared(slim_writer *w, const ds_facts *f, seq_row *r, const slim_prepared *p)
{
    r->s = f->next_seq;
    r->entries = p->entries;
    r->bytes = p->bytes;
    if (p->hashed && r->pfx.len == 0) {
        memcpy(r->hash, p->hash, 16);
    } else {
        /* a borrower: the hash covers the owner's prefix records first */
        slim_hasher h;
        int rc = slim__hash_begin(&h, r->tokens, r->T, r->npos);
        if (rc) return slim__err(w->st, rc, "out of memory");
        slim_rangeio io = {w->cur, w->codec, &w->gets, w->errbuf, sizeof w->errbuf, NULL};
        w->errbuf[0] = 0;
        r->entries = 0;
        if (r->pfx.len &&
            (rc = slim__hash_owned(&io, &h, r->pfx.dataset, r->pfx.seq, 0, r->pfx.len, &w->ids, &w->vals,
                                   &w->cap, &w->dbuf, &w->dcap, &r->entries)))
            slim__err(w->st, rc, "prefix: %s", w->errbuf);
        else if ((rc = own_prepared(w)) == 0 &&
                 (rc = slim__prepared_feed(w->pr, p, &h, &r->entries, w->errbuf, sizeof w->errbuf)))
            slim__err(w->st, rc, "%s", w->errbuf);
        slim__hash_end(&h, r->hash);
        if (rc) return rc;  /* nothing written yet */
    }
    /* from here on, a failure leaves the batch half-done: poison it */
    for (size_t c = 0; c < p->nchunks; c++) {
        const slim__pchunk *ch = &p->chunks[c];
        int rc = put_chunk(w, r->d, r->s, ch->first_pos, p->buf + ch->off, ch->len);
        if (rc) return w->failed = rc;
    }
    return insert_row(w, f, r);
}

int slim_write_seq(slim_writer *w, int64_t dataset, int64_t run_id, const char *ext_id,
                   const uint32_t *tokens, uint32_t T, const slim_dist *dists, uint32_t npos,
                   const slim_prefix_ref *prefix, int64_t *seq)
{
    ds_facts f;
    seq_row r = {dataset, 0, run_id, ext_id, tokens, T, npos, {-1, -1, 0}, 0, 0, {0}};
    if (w->failed) return slim__err(w->st, w->failed, "the batch already failed; abort it");
    int rc = load_facts(w, dataset, &f);
    if (rc) return rc;
    if (npos > T) return slim__err(w->st, SLIM_EINVAL, "%u positions for %u tokens", npos, T);
    if ((rc = resolve_prefix(w, &f, prefix, tokens, T, npos, &r.pfx))) return rc;
    if ((rc = prepare_here(w, &f, tokens, T, dists, npos, r.pfx.len))) return rc;
    if ((rc = append_prepared(w, &f, &r, w->own))) return rc;
    if (seq) *seq = r.s;
    return 0;
}

static int same_precision(const slim_precision *a, const slim_precision *b)
{
    char x[64], y[64];
    return slim_precision_format(a, x, sizeof x) == 0 && slim_precision_format(b, y, sizeof y) == 0 &&
           strcmp(x, y) == 0;
}

int slim_write_prepared(slim_writer *w, int64_t dataset, int64_t run_id, const char *ext_id,
                        const slim_prepared *p, const slim_prefix_ref *prefix, int64_t *seq)
{
    ds_facts f;
    seq_row r = {dataset, 0, run_id, ext_id, p->tokens, p->T, p->npos, {-1, -1, 0}, 0, 0, {0}};
    if (w->failed) return slim__err(w->st, w->failed, "the batch already failed; abort it");
    if (p->rc) return slim__err(w->st, p->rc, "%s", p->err);
    int rc = load_facts(w, dataset, &f);
    if (rc) return rc;
    if (p->kind != f.kind || p->V != f.V || !same_precision(&p->prec, &f.prec))
        return slim__err(w->st, SLIM_EMISMATCH, "dataset %lld: prepared for another kind, vocab size"
                         " or precision", (long long)dataset);
    if ((rc = resolve_prefix(w, &f, prefix, p->tokens, p->T, p->npos, &r.pfx))) return rc;
    if (r.pfx.len != p->from) {  /* chunks must start at the first owned position */
        if ((rc = prepare_here(w, &f, p->tokens, p->T, p->dists, p->npos, r.pfx.len))) return rc;
        p = w->own;
    }
    if ((rc = append_prepared(w, &f, &r, p))) return rc;
    if (seq) *seq = r.s;
    return 0;
}

/* ------------------------------------------------------------ finding */

int slim_write_find_tokens(slim_writer *w, int64_t dataset, const uint32_t *tokens, uint32_t T,
                           int64_t *seq)
{
    sqlite3_stmt *q = slim__stmt(w, W_TOK_FIND, "SELECT seq, tokens FROM sequences WHERE dataset_id = ?1"
                                                " AND tokens_hash = ?2 AND deleted = 0 ORDER BY seq");
    if (!q) return SLIM_EIO;
    sqlite3_bind_int64(q, 1, dataset);
    sqlite3_bind_int64(q, 2, slim__tokens_hash(tokens, T));
    int rc = SLIM_ENOTFOUND;
    if (slim__grow((void **)&w->tokbuf, &w->tokcap, (size_t)T + 1, 4)) return SLIM_ENOMEM;
    while (sqlite3_step(q) == SQLITE_ROW) {
        uint32_t n;
        if (slim__tokens_decode(sqlite3_column_blob(q, 1), (size_t)sqlite3_column_bytes(q, 1), w->tokbuf,
                                (uint32_t)w->tokcap, &n) == 0 && n == T &&
            (T == 0 || memcmp(w->tokbuf, tokens, (size_t)T * 4) == 0)) {
            *seq = sqlite3_column_int64(q, 0);
            rc = 0;
            break;
        }
    }
    sqlite3_reset(q);
    if (rc) slim__err(w->st, rc, "no sequence with these tokens in dataset %lld", (long long)dataset);
    return rc;
}

/* Scores the candidates indexed under (teacher, L, hash of tokens[0..L)). */
static int prefix_level(slim_writer *w, const ds_facts *f, const uint32_t *tokens, uint32_t T,
                        uint32_t L, slim_prefix_ref *best)
{
    int64_t cand[2 * 32];
    int nc = 0;
    sqlite3_stmt *q = slim__stmt(w, W_PFX_FIND, "SELECT dataset_id, seq FROM prefix_index WHERE"
                                                " teacher_id = ?1 AND len = ?2 AND hash = ?3 LIMIT 32");
    if (!q) return SLIM_EIO;
    sqlite3_bind_int64(q, 1, f->teacher_id);
    sqlite3_bind_int64(q, 2, L);
    sqlite3_bind_int64(q, 3, slim__tokens_hash(tokens, L));
    while (nc < 32 && sqlite3_step(q) == SQLITE_ROW) {
        cand[2 * nc] = sqlite3_column_int64(q, 0);
        cand[2 * nc + 1] = sqlite3_column_int64(q, 1);
        nc++;
    }
    sqlite3_reset(q);
    for (int i = 0; i < nc; i++) {
        target t;
        int rc = load_target(w, cand[2 * i], cand[2 * i + 1], &t, 1);
        if (rc == SLIM_ENOTFOUND) continue;
        if (rc) return rc;
        if (t.m.purged || t.m.prefix_len || t.kind != f->kind) continue;
        uint32_t n = T < t.m.ntokens ? T : t.m.ntokens, c = 0;
        while (c < n && tokens[c] == w->tokbuf[c]) c++;
        if (c > t.m.npos) c = t.m.npos;
        if (c > best->len) {
            best->dataset = cand[2 * i];
            best->seq = cand[2 * i + 1];
            best->len = c;
        }
    }
    return 0;
}

int slim_write_find_prefix(slim_writer *w, int64_t dataset, const uint32_t *tokens, uint32_t T,
                           slim_prefix_ref *ref)
{
    ds_facts f;
    int rc = load_facts(w, dataset, &f);
    if (rc) return rc;
    slim_prefix_ref best = {-1, -1, 0};
    uint32_t levels[40];
    int nl = 0;
    if (T > 0) levels[nl++] = T;
    uint32_t L = 16;
    while (L < T && nl < 39) L *= 2;
    for (L /= 2; L >= 16; L /= 2)
        if (L < T) levels[nl++] = L;
    for (int i = 0; i < nl; i++) {
        if (best.len >= levels[i]) break;  /* a shorter level cannot do better */
        if ((rc = prefix_level(w, &f, tokens, T, levels[i], &best))) return rc;
    }
    if (best.len == 0)
        return slim__err(w->st, SLIM_ENOTFOUND, "no sequence of this teacher shares a prefix");
    *ref = best;
    return 0;
}

/* ------------------------------------------------------------ deletion */

static int row_exists(slim_writer *w, int idx, const char *sql, int64_t d, int64_t s, int *yes)
{
    sqlite3_stmt *q = slim__stmt(w, idx, sql);
    if (!q) return SLIM_EIO;
    sqlite3_bind_int64(q, 1, d);
    sqlite3_bind_int64(q, 2, s);
    int st = sqlite3_step(q);
    *yes = st == SQLITE_ROW;
    sqlite3_reset(q);
    return st == SQLITE_ROW || st == SQLITE_DONE ? 0 : slim__sql_err(w->st, w->st->db, "checking references");
}

static int bind2_step(slim_writer *w, int idx, const char *sql, int64_t a, int64_t b, int64_t c)
{
    sqlite3_stmt *q = slim__stmt(w, idx, sql);
    if (!q) return w->failed = SLIM_EIO;
    sqlite3_bind_int64(q, 1, a);
    sqlite3_bind_int64(q, 2, b);
    if (sqlite3_bind_parameter_count(q) >= 3) sqlite3_bind_int64(q, 3, c);
    return slim__step_done(w, q, "deleting a sequence");
}

/* Frees a deleted sequence's own records when nothing needs them any more:
 * no snapshot lists it and no unpurged sequence borrows its prefix.  The
 * records go to `garbage` (freed after commit); its prefix target is then
 * checked again, since this sequence may have been its last borrower. */
static int try_purge(slim_writer *w, int64_t d, int64_t s, int64_t *freed, int depth)
{
    target t;
    int rc = load_target(w, d, s, &t, 0), yes;
    if (rc) return rc;
    if (!t.m.deleted || t.m.purged) return 0;
    if ((rc = row_exists(w, W_SNAP_REF, "SELECT 1 FROM snapshot_members WHERE dataset_id = ?1 AND seq = ?2"
                                        " LIMIT 1", d, s, &yes)) || yes)
        return rc;
    if ((rc = row_exists(w, W_PFX_REF, "SELECT 1 FROM sequences WHERE prefix_dataset = ?1 AND prefix_seq = ?2"
                                       " AND purged = 0 LIMIT 1", d, s, &yes)) || yes)
        return rc;
    if ((rc = bind2_step(w, W_PURGE, "UPDATE sequences SET purged = 1 WHERE dataset_id = ?1 AND seq = ?2"
                                     "", d, s, 0)) ||
        (rc = bind2_step(w, W_GARBAGE, "INSERT OR IGNORE INTO garbage(dataset_id, seq) VALUES (?1, ?2)", d, s, 0)) ||
        (rc = bind2_step(w, W_DS_UNBYTES, "UPDATE datasets SET record_bytes = record_bytes - ?2"
                                          " WHERE id = ?1", d, t.m.record_bytes, 0)) ||
        (rc = bind2_step(w, W_PFX_DEL, "DELETE FROM prefix_index WHERE dataset_id = ?1 AND seq = ?2"
                                       "", d, s, 0)))
        return rc;
    w->have_garbage = 1;
    *freed += t.m.record_bytes;
    if (t.m.prefix_len && depth == 0)
        return try_purge(w, t.m.prefix_dataset, t.m.prefix_seq, freed, depth + 1);
    return 0;
}

int slim_write_delete_seq(slim_writer *w, int64_t dataset, int64_t seq, int64_t *bytes_freed)
{
    target t;
    int64_t freed = 0;
    if (bytes_freed) *bytes_freed = 0;
    if (w->failed) return slim__err(w->st, w->failed, "the batch already failed; abort it");
    int rc = load_target(w, dataset, seq, &t, 0);
    if (rc) return rc;
    if (t.m.deleted)
        return slim__err(w->st, SLIM_ENOTFOUND, "dataset %lld seq %lld is already deleted",
                         (long long)dataset, (long long)seq);
    if ((rc = bind2_step(w, W_SEQ_DEL, "UPDATE sequences SET deleted = 1 WHERE dataset_id = ?1"
                                       " AND seq = ?2", dataset, seq, 0)))
        return rc;
    sqlite3_stmt *q = slim__stmt(w, W_DS_UNCOUNT, "UPDATE datasets SET sequences = sequences - 1,"
                                                  " positions = positions - ?2, entries = entries - ?3"
                                                  " WHERE id = ?1");
    if (!q) return w->failed = SLIM_EIO;
    sqlite3_bind_int64(q, 1, dataset);
    sqlite3_bind_int64(q, 2, t.m.npos);
    sqlite3_bind_int64(q, 3, t.m.entries);
    if ((rc = slim__step_done(w, q, "deleting a sequence"))) return rc;
    if ((rc = try_purge(w, dataset, seq, &freed, 0))) return w->failed = rc;
    if (bytes_freed) *bytes_freed = freed;
    return 0;
}
