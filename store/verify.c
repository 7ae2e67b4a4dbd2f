/*
 * verify.c — slim_store_verify: walk everything and report each problem in
 * one line naming the record or row.  Runs on a reader's consistent view, so
 * it may run beside a writer; it changes nothing.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

typedef struct dsv {
    int64_t id, next, teacher;
    char name[128];
    int64_t c_seqs, c_pos, c_ent, c_bytes;   /* recorded counters */
    int64_t seqs, pos, ent, bytes;           /* recomputed */
} dsv;

typedef struct vctx {
    slim_store *st;
    slim_verify_cb cb;
    void *ctx;
    int64_t problems;
    slim_rangeio io;
    sqlite3 *db;
    dsv *ds;
    size_t nds;
    int pending;              /* LMDB gen ahead: an interrupted insert */
    uint32_t *tok, *ptok;
    size_t tokcap, ptokcap;
    uint32_t *ids;
    float *vals;
    size_t cap;
    slim_dist *dbuf;
    size_t dcap;
    sqlite3_stmt *q_row, *q_garbage;
} vctx;

static void problem(vctx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(vctx *v, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    v->problems++;
    if (v->cb) v->cb(v->ctx, buf);
}

static dsv *find_dsv(vctx *v, int64_t id)
{
    for (size_t i = 0; i < v->nds; i++)
        if (v->ds[i].id == id) return &v->ds[i];
    return NULL;
}

static int load_datasets(vctx *v)
{
    sqlite3_stmt *q = NULL;
    size_t cap = 0;
    if (sqlite3_prepare_v2(v->db, "SELECT id, name, next_seq, teacher_id, sequences, positions, entries,"
                                  " record_bytes FROM datasets ORDER BY id", -1, &q, NULL))
        return slim__sql_err(v->st, v->db, "verify: reading datasets");
    while (sqlite3_step(q) == SQLITE_ROW) {
        if (slim__grow((void **)&v->ds, &cap, v->nds + 1, sizeof *v->ds)) {
            sqlite3_finalize(q);
            return SLIM_ENOMEM;
        }
        dsv *d = &v->ds[v->nds++];
        memset(d, 0, sizeof *d);
        d->id = sqlite3_column_int64(q, 0);
        snprintf(d->name, sizeof d->name, "%s", (const char *)sqlite3_column_text(q, 1));
        d->next = sqlite3_column_int64(q, 2);
        d->teacher = sqlite3_column_int64(q, 3);
        d->c_seqs = sqlite3_column_int64(q, 4);
        d->c_pos = sqlite3_column_int64(q, 5);
        d->c_ent = sqlite3_column_int64(q, 6);
        d->c_bytes = sqlite3_column_int64(q, 7);
    }
    sqlite3_finalize(q);
    return 0;
}

/* Loads the tokens of (d, s) into *buf; returns ntokens or -1. */
static int64_t load_tokens(vctx *v, sqlite3_stmt *q, int col, uint32_t **buf, size_t *cap, uint32_t want)
{
    uint32_t T;
    if (slim__grow((void **)buf, cap, (size_t)want + 1, 4)) return -1;
    if (slim__tokens_decode(sqlite3_column_blob(q, col), (size_t)sqlite3_column_bytes(q, col), *buf,
                            (uint32_t)*cap, &T) || T != want)
        return -1;
    return T;
}

static int prefix_ok(vctx *v, const dsv *d, int64_t s, const slim_seqmeta *m)
{
    sqlite3_stmt *q = v->q_row;
    sqlite3_reset(q);
    sqlite3_bind_int64(q, 1, m->prefix_dataset);
    sqlite3_bind_int64(q, 2, m->prefix_seq);
    const char *why = NULL;
    if (sqlite3_step(q) != SQLITE_ROW) why = "is missing";
    else if (sqlite3_column_int(q, 3)) why = "was purged";
    else if (sqlite3_column_int64(q, 4)) why = "borrows a prefix itself (two hops)";
    else if (sqlite3_column_int64(q, 1) < m->prefix_len) why = "has fewer positions";
    else if (!find_dsv(v, m->prefix_dataset) || find_dsv(v, m->prefix_dataset)->teacher != d->teacher)
        why = "belongs to another teacher";
    else if (load_tokens(v, q, 2, &v->ptok, &v->ptokcap, (uint32_t)sqlite3_column_int64(q, 0)) < 0)
        why = "has corrupt tokens";
    else if (memcmp(v->ptok, v->tok, (size_t)m->prefix_len * 4))
        why = "has other tokens";
    sqlite3_reset(q);
    if (why)
        problem(v, "dataset '%s' seq %lld: prefix target (dataset %lld, seq %lld) %s", d->name,
                (long long)s, (long long)m->prefix_dataset, (long long)m->prefix_seq, why);
    return why == NULL;
}

/* One live-or-kept sequence: tokens, prefix, records, content hash. */
static void check_seq(vctx *v, dsv *d, sqlite3_stmt *q)
{
    slim_seqmeta m = {0};
    int64_t s = sqlite3_column_int64(q, 0);
    m.ntokens = (uint32_t)sqlite3_column_int64(q, 1);
    m.npos = (uint32_t)sqlite3_column_int64(q, 2);
    m.entries = sqlite3_column_int64(q, 3);
    m.record_bytes = sqlite3_column_int64(q, 4);
    m.deleted = sqlite3_column_int(q, 8);
    m.purged = sqlite3_column_int(q, 9);
    m.prefix_dataset = sqlite3_column_type(q, 10) == SQLITE_NULL ? -1 : sqlite3_column_int64(q, 10);
    m.prefix_seq = sqlite3_column_int64(q, 11);
    m.prefix_len = (uint32_t)sqlite3_column_int64(q, 12);
    if (s >= d->next) problem(v, "dataset '%s' seq %lld: number >= next_seq %lld", d->name, (long long)s,
                              (long long)d->next);
    if (m.purged && !m.deleted) problem(v, "dataset '%s' seq %lld: purged but not deleted", d->name, (long long)s);
    if (!m.deleted) {
        d->seqs++;
        d->pos += m.npos;
        d->ent += m.entries;
    }
    if (m.purged) return;
    d->bytes += m.record_bytes;
    if (load_tokens(v, q, 5, &v->tok, &v->tokcap, m.ntokens) < 0) {
        problem(v, "dataset '%s' seq %lld: corrupt tokens blob", d->name, (long long)s);
        return;
    }
    if (slim__tokens_hash(v->tok, m.ntokens) != sqlite3_column_int64(q, 6))
        problem(v, "dataset '%s' seq %lld: tokens hash mismatch", d->name, (long long)s);
    if (m.npos > m.ntokens || m.prefix_len > m.npos || (m.prefix_len && m.prefix_dataset < 0)) {
        problem(v, "dataset '%s' seq %lld: inconsistent npos/prefix", d->name, (long long)s);
        return;
    }
    if (m.prefix_len && !prefix_ok(v, d, s, &m)) return;
    slim_hasher h;
    int64_t ent = 0;
    uint8_t got[16];
    if (slim__hash_begin(&h, v->tok, m.ntokens, m.npos)) return;
    v->io.errbuf[0] = 0;
    int rc = 0;
    if (m.prefix_len)
        rc = slim__hash_owned(&v->io, &h, m.prefix_dataset, m.prefix_seq, 0, m.prefix_len, &v->ids, &v->vals,
                              &v->cap, &v->dbuf, &v->dcap, &ent);
    if (!rc)
        rc = slim__hash_owned(&v->io, &h, d->id, s, m.prefix_len, m.npos - m.prefix_len, &v->ids, &v->vals,
                              &v->cap, &v->dbuf, &v->dcap, &ent);
    slim__hash_end(&h, got);
    if (rc) {
        problem(v, "dataset '%s' seq %lld: %s", d->name, (long long)s,
                v->io.errbuf[0] ? v->io.errbuf : slim_strerror(rc));
        return;
    }
    if (sqlite3_column_bytes(q, 7) != 16 || memcmp(sqlite3_column_blob(q, 7), got, 16))
        problem(v, "dataset '%s' seq %lld: content hash mismatch", d->name, (long long)s);
    if (ent != m.entries)
        problem(v, "dataset '%s' seq %lld: %lld entries stored, %lld recorded", d->name, (long long)s,
                (long long)ent, (long long)m.entries);
}

static int check_sequences(vctx *v)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(v->db, "SELECT seq, ntokens, npos, entries, record_bytes, tokens, tokens_hash,"
                                  " content_hash, deleted, purged, prefix_dataset, prefix_seq, prefix_len"
                                  " FROM sequences WHERE dataset_id = ?1 ORDER BY seq", -1, &q, NULL))
        return slim__sql_err(v->st, v->db, "verify: reading sequences");
    for (size_t i = 0; i < v->nds; i++) {
        dsv *d = &v->ds[i];
        sqlite3_reset(q);
        sqlite3_bind_int64(q, 1, d->id);
        while (sqlite3_step(q) == SQLITE_ROW) check_seq(v, d, q);
        if (d->seqs != d->c_seqs || d->pos != d->c_pos || d->ent != d->c_ent || d->bytes != d->c_bytes)
            problem(v, "dataset '%s': counters say %lld sequences, %lld positions, %lld entries, %lld bytes;"
                       " found %lld, %lld, %lld, %lld", d->name, (long long)d->c_seqs, (long long)d->c_pos,
                    (long long)d->c_ent, (long long)d->c_bytes, (long long)d->seqs, (long long)d->pos,
                    (long long)d->ent, (long long)d->bytes);
    }
    int cnt = 0;
    sqlite3_finalize(q);
    if (sqlite3_prepare_v2(v->db, "SELECT count(*) FROM sequences WHERE dataset_id NOT IN"
                                  " (SELECT id FROM datasets)", -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        cnt = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    if (cnt) problem(v, "%d sequences belong to no dataset", cnt);
    return 0;
}

/* A group of records of one (dataset, seq) in the full scan. */
static void check_group(vctx *v, int64_t d, int64_t s, uint32_t minpos, uint32_t maxpos, int64_t bytes)
{
    dsv *ds = find_dsv(v, d);
    if (!ds || s >= ds->next) {
        if (!v->pending)
            problem(v, "record (dataset %lld, seq %lld, pos %u): orphan (no such sequence)", (long long)d,
                    (long long)s, minpos);
        return;  /* else: an interrupted insert; the next writer removes it */
    }
    sqlite3_stmt *q = v->q_row;
    sqlite3_reset(q);
    sqlite3_bind_int64(q, 1, d);
    sqlite3_bind_int64(q, 2, s);
    if (sqlite3_step(q) != SQLITE_ROW) {
        problem(v, "record (dataset %lld, seq %lld, pos %u): orphan (no such sequence)", (long long)d,
                (long long)s, minpos);
    } else if (sqlite3_column_int(q, 3)) {
        sqlite3_reset(v->q_garbage);
        sqlite3_bind_int64(v->q_garbage, 1, d);
        sqlite3_bind_int64(v->q_garbage, 2, s);
        if (sqlite3_step(v->q_garbage) != SQLITE_ROW)
            problem(v, "record (dataset %lld, seq %lld, pos %u): sequence was purged", (long long)d,
                    (long long)s, minpos);
        sqlite3_reset(v->q_garbage);
    } else {
        uint32_t npos = (uint32_t)sqlite3_column_int64(q, 1), plen = (uint32_t)sqlite3_column_int64(q, 4);
        if (minpos < plen || maxpos >= npos)
            problem(v, "record (dataset %lld, seq %lld, pos %u): outside the sequence's own positions %u..%u",
                    (long long)d, (long long)s, minpos < plen ? minpos : maxpos, plen, npos);
        if (bytes != sqlite3_column_int64(q, 5))
            problem(v, "dataset '%s' seq %lld: records hold %lld bytes, %lld recorded", ds->name, (long long)s,
                    (long long)bytes, (long long)sqlite3_column_int64(q, 5));
    }
    sqlite3_reset(q);
}

static int scan_records(vctx *v)
{
    MDB_val k, val;
    MDB_cursor_op op = MDB_FIRST;
    int64_t gd = -1, gs = -1, bytes = 0;
    uint32_t gmin = 0, gmax = 0;
    int mrc;
    while ((mrc = mdb_cursor_get(v->io.cur, &k, &val, op)) == 0) {
        op = MDB_NEXT;
        if (k.mv_size != SLIM_KEY_LEN) {
            problem(v, "record with a %zu-byte key: not a slim key", k.mv_size);
            continue;
        }
        int64_t d, s;
        uint32_t p;
        slim__key_parse(k.mv_data, &d, &s, &p);
        if (d != gd || s != gs) {
            if (gd >= 0) check_group(v, gd, gs, gmin, gmax, bytes);
            gd = d, gs = s, gmin = p, bytes = 0;
        }
        slim_chunk_header h;
        gmax = p;
        if (slim_chunk_header_read(val.mv_data, val.mv_size, 0, &h) == 0 && h.npos) gmax = p + h.npos - 1;
        bytes += (int64_t)val.mv_size;
    }
    if (gd >= 0) check_group(v, gd, gs, gmin, gmax, bytes);
    return mrc == MDB_NOTFOUND ? 0 : slim__mdb_err(v->st, mrc, "verify: scanning records");
}

static void check_snapshots(vctx *v)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(v->db, "SELECT name FROM snapshots ORDER BY id", -1, &q, NULL)) return;
    while (sqlite3_step(q) == SQLITE_ROW) {
        slim_snapshot *s;
        const char *name = (const char *)sqlite3_column_text(q, 0);
        if (slim__snapshot_load(v->st, v->db, name, &s)) problem(v, "%s", slim_errmsg(v->st));
        else slim_snapshot_close(s);
    }
    sqlite3_finalize(q);
}

int slim_store_verify(slim_store *st, slim_verify_cb cb, void *ctx, int64_t *nproblems)
{
    vctx v;
    memset(&v, 0, sizeof v);
    v.st = st;
    v.cb = cb;
    v.ctx = ctx;
    *nproblems = 0;
    slim_reader *r;
    int rc = slim_read_begin(st, &r);
    if (rc) return rc;
    MDB_txn *txn;
    slim__reader_parts(r, &v.io, &v.db, &txn);
    uint64_t lg = 0, sg = 0;
    if ((rc = slim__lmdb_gen(st, txn, &lg)) || (rc = slim__sql_gen(st, v.db, &sg))) goto out;
    v.pending = lg > sg;
    if (sqlite3_prepare_v2(v.db, "SELECT ntokens, npos, tokens, purged, prefix_len, record_bytes FROM sequences"
                                 " WHERE dataset_id = ?1 AND seq = ?2", -1, &v.q_row, NULL) ||
        sqlite3_prepare_v2(v.db, "SELECT 1 FROM garbage WHERE dataset_id = ?1 AND seq = ?2", -1,
                           &v.q_garbage, NULL)) {
        rc = slim__sql_err(st, v.db, "verify");
        goto out;
    }
    if ((rc = load_datasets(&v)) || (rc = check_sequences(&v)) || (rc = scan_records(&v))) goto out;
    check_snapshots(&v);
    *nproblems = v.problems;
out:
    sqlite3_finalize(v.q_row);
    sqlite3_finalize(v.q_garbage);
    slim_read_end(r);
    free(v.ds);
    free(v.tok);
    free(v.ptok);
    free(v.ids);
    free(v.vals);
    free(v.dbuf);
    return rc;
}
