/*
 * read.c — the read path: consistent views over LMDB + SQLite (slim_reader),
 * and the chunk walker shared with the writer and verify.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_internal.h"

struct slim_reader {
    slim_store *st;
    MDB_txn *txn;
    MDB_cursor *cur;
    sqlite3 *db;            /* own connection: its own WAL snapshot */
    sqlite3_stmt *q_seq, *q_tok;
    slim_codec *codec;
    uint64_t gets;
    int in_sql;
    slim_seqmeta meta;      /* the last sequence looked up */
    int have_meta;
    char *ext_id;           /* reused buffer: no allocation per sequence */
    size_t ext_cap;
    int has_ext;
    const void *verified;   /* see slim_rangeio.verified; reset per view */
    char errbuf[256];
};

/* ------------------------------------------------------------ chunk walk */

typedef int (*chunk_fn)(void *ctx, const MDB_val *v, uint32_t i, uint32_t m,
                        const slim_chunk_header *h);
#define SLIM__EPSTATS (-100)  /* a chunk_fn's: statistics block != values */

static int io_fail(slim_rangeio *io, int rc, const MDB_val *k, const char *what)
{
    char ks[96];
    if (io->errbuf)
        snprintf(io->errbuf, io->errcap, "%s: %s",
                 k ? slim__key_str(ks, sizeof ks, k->mv_data, k->mv_size) : "record", what);
    return rc;
}

static int key_is(const MDB_val *k, int64_t d, int64_t s, uint32_t *pos)
{
    int64_t kd, ks;
    if (k->mv_size != SLIM_KEY_LEN) return 0;
    slim__key_parse(k->mv_data, &kd, &ks, pos);
    return kd == d && ks == s;
}

/* Positions [pos, pos+n) of (d, s)'s own records, chunk by chunk: finds the
 * chunk holding pos (one SET_RANGE, plus one PREV when pos is inside a
 * chunk) and then walks forward with NEXT, checking contiguity. */
static int walk_owned(slim_rangeio *io, int64_t d, int64_t s, uint32_t pos, uint32_t n,
                      chunk_fn fn, void *ctx)
{
    uint8_t key[SLIM_KEY_LEN];
    MDB_val k = {SLIM_KEY_LEN, key}, v;
    uint32_t kp = 0;
    if (n == 0) return 0;
    slim__key(key, d, s, pos);
    int mrc = mdb_cursor_get(io->cur, &k, &v, MDB_SET_RANGE);
    (*io->gets)++;
    if (mrc && mrc != MDB_NOTFOUND) return io_fail(io, SLIM_EIO, NULL, mdb_strerror(mrc));
    if (mrc || !key_is(&k, d, s, &kp) || kp != pos) {
        mrc = mdb_cursor_get(io->cur, &k, &v, mrc ? MDB_LAST : MDB_PREV);
        (*io->gets)++;
        if (mrc || !key_is(&k, d, s, &kp) || kp > pos) {
            MDB_val want = {SLIM_KEY_LEN, key};
            return io_fail(io, SLIM_ECORRUPT, &want, "no record holds this position");
        }
    }
    for (;;) {
        slim_chunk_header h;
        if (slim_chunk_header_read(v.mv_data, v.mv_size, 0, &h) || h.first_pos != kp || h.npos == 0)
            return io_fail(io, SLIM_ECORRUPT, &k, "bad chunk header");
        if (pos >= kp + h.npos) return io_fail(io, SLIM_ECORRUPT, &k, "gap after this record");
        uint32_t i = pos - kp, m = h.npos - i < n ? h.npos - i : n;
        int rc = fn(ctx, &v, i, m, &h);
        if (rc == SLIM_ECORRUPT) return io_fail(io, rc, &k, "checksum mismatch or undecodable");
        if (rc == SLIM__EPSTATS)
            return io_fail(io, SLIM_ECORRUPT, &k, "statistics block disagrees with the decoded values");
        if (rc && rc != SLIM_ERANGE) return rc;
        pos += m;
        n -= m;
        if (n == 0) return rc;
        mrc = mdb_cursor_get(io->cur, &k, &v, MDB_NEXT);
        (*io->gets)++;
        if (mrc || !key_is(&k, d, s, &kp) || kp != pos) {
            uint8_t wk[SLIM_KEY_LEN];
            MDB_val want = {SLIM_KEY_LEN, wk};
            slim__key(wk, d, s, pos);
            return io_fail(io, SLIM_ECORRUPT, &want, "record missing");
        }
    }
}

typedef struct decode_ctx {
    const void **verified;
    slim_codec *codec;
    slim_dist *out;
    uint32_t *ids;
    float *vals;
    size_t cap, used, need;
    unsigned flags;
    int erange;
} decode_ctx;

static int decode_cb(void *vctx, const MDB_val *v, uint32_t i, uint32_t m,
                     const slim_chunk_header *h)
{
    decode_ctx *c = vctx;
    size_t left = c->used < c->cap ? c->cap - c->used : 0, need = 0;
    int check = !c->verified || *c->verified != v->mv_data;
    int rc = slim_chunk_decode(c->codec, v->mv_data, v->mv_size, i, m, c->out,
                               c->erange ? c->ids : c->ids + c->used,
                               c->erange ? c->vals : c->vals + c->used, c->erange ? 0 : left,
                               &need, c->flags, check);
    if (check && c->verified && (rc == 0 || rc == SLIM_ERANGE)) *c->verified = v->mv_data;
    if (rc == SLIM_ERANGE) {
        c->erange = 1;
        c->need += need;
        c->out += m;
        return SLIM_ERANGE;
    }
    if (rc) return SLIM_ECORRUPT;
    size_t got = 0;
    for (uint32_t j = 0; j < m; j++) got += c->out[j].k;
    c->used += got;
    c->need += got;
    c->out += m;
    return 0;
}

int slim__read_owned(slim_rangeio *io, int64_t dataset, int64_t seq, uint32_t pos, uint32_t n,
                     slim_dist *out, uint32_t *ids, float *vals, size_t cap, size_t *need,
                     unsigned flags)
{
    decode_ctx c = {io->verified, io->codec, out, ids, vals, cap, 0, 0, flags, 0};
    int rc = walk_owned(io, dataset, seq, pos, n, decode_cb, &c);
    if (need) *need = c.need;
    if (!rc && c.erange) rc = SLIM_ERANGE;
    return rc;
}

typedef struct hash_ctx {
    slim_codec *codec;
    slim_hasher *h;
    uint32_t **ids;
    float **vals;
    size_t *cap;
    slim_dist **dbuf;
    size_t *dcap;
    int64_t *entries;
} hash_ctx;

/* A version 2 chunk's statistics block against its decoded values dbuf[m]
 * (checksum already verified by the decode). */
static int stats_match(slim_codec *codec, const MDB_val *v, uint32_t i, uint32_t m, int kind,
                       const slim_dist *dbuf)
{
    slim_pstat stored[64];
    for (uint32_t j0 = 0; j0 < m; j0 += 64) {
        uint32_t n = m - j0 < 64 ? m - j0 : 64;
        if (slim_chunk_pstats(codec, v->mv_data, v->mv_size, i + j0, n, stored, 0)) return SLIM_ECORRUPT;
        for (uint32_t j = 0; j < n; j++) {
            slim_pstat want;
            slim_dist_pstat(&dbuf[j0 + j], kind, &want);
            if (memcmp(&want, &stored[j], sizeof want)) return SLIM__EPSTATS;
        }
    }
    return 0;
}

static int hash_cb(void *vctx, const MDB_val *v, uint32_t i, uint32_t m,
                   const slim_chunk_header *h)
{
    hash_ctx *c = vctx;
    size_t cap0 = *c->cap;
    if (slim__grow((void **)c->ids, c->cap, h->entries + 1, sizeof(uint32_t)) ||
        slim__grow((void **)c->vals, &cap0, *c->cap, sizeof(float)) ||
        slim__grow((void **)c->dbuf, c->dcap, m, sizeof(slim_dist)))
        return SLIM_ENOMEM;
    size_t need;
    int rc = slim_chunk_decode(c->codec, v->mv_data, v->mv_size, i, m, *c->dbuf, *c->ids,
                               *c->vals, *c->cap, &need, SLIM_READ_ID_ORDER, 1);
    if (rc) return SLIM_ECORRUPT;  /* ERANGE too: the header lied about entries */
    for (uint32_t j = 0; j < m; j++) {
        slim__hash_pos(c->h, &(*c->dbuf)[j]);
        if (c->entries) *c->entries += (*c->dbuf)[j].k;
    }
    return h->version >= 2 ? stats_match(c->codec, v, i, m, h->kind, *c->dbuf) : 0;
}

int slim__hash_owned(slim_rangeio *io, slim_hasher *h, int64_t dataset, int64_t seq,
                     uint32_t pos, uint32_t n, uint32_t **ids, float **vals, size_t *cap,
                     slim_dist **dbuf, size_t *dcap, int64_t *entries)
{
    hash_ctx c = {io->codec, h, ids, vals, cap, dbuf, dcap, entries};
    return walk_owned(io, dataset, seq, pos, n, hash_cb, &c);
}

typedef struct pstat_ctx {
    const void **verified;
    slim_codec *codec;
    slim_pstat *out;
} pstat_ctx;

/* The chunk's statistics block (version 2) or its decoded values. */
static int pstat_cb(void *vctx, const MDB_val *v, uint32_t i, uint32_t m,
                    const slim_chunk_header *h)
{
    pstat_ctx *c = vctx;
    int check = !c->verified || *c->verified != v->mv_data;
    int rc = slim_chunk_pstats(c->codec, v->mv_data, v->mv_size, i, m, c->out, check);
    if (rc) return rc == SLIM_ENOMEM ? rc : SLIM_ECORRUPT;
    if (check && c->verified) *c->verified = v->mv_data;
    c->out += m;
    return 0;
}

int slim__pstats_owned(slim_rangeio *io, int64_t dataset, int64_t seq, uint32_t pos, uint32_t n,
                       slim_pstat *out)
{
    pstat_ctx c = {io->verified, io->codec, out};
    return walk_owned(io, dataset, seq, pos, n, pstat_cb, &c);
}

/* ------------------------------------------------------------ reader */

static int reader_err(slim_reader *r, int rc, const char *what)
{
    if (rc == SLIM_ENOMEM) return slim__err(r->st, rc, "%s: out of memory", what);
    return slim__err(r->st, rc, "%s", r->errbuf[0] ? r->errbuf : what);
}

static void view_end(slim_reader *r)
{
    if (r->cur) mdb_cursor_close(r->cur);
    r->cur = NULL;
    if (r->txn) mdb_txn_abort(r->txn);
    r->txn = NULL;
    if (r->in_sql) sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
    r->in_sql = 0;
    r->have_meta = 0;
    r->verified = NULL;
}

/* LMDB first, then SQLite: an insert commits LMDB first, so a metadata view
 * at most as new as the records view never names missing records.  When a
 * commit lands between the two (SQLite gen > LMDB gen) take both again. */
static int view_begin(slim_reader *r)
{
    slim_store *st = r->st;
    for (int tries = 0;; tries++) {
        uint64_t lg, sg;
        int mrc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &r->txn), rc;
        if (mrc) return slim__mdb_err(st, mrc, "starting a read");
        if ((rc = slim__lmdb_gen(st, r->txn, &lg))) return rc;
        if (sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL)) return slim__sql_err(st, r->db, "starting a read");
        r->in_sql = 1;
        if ((rc = slim__sql_gen(st, r->db, &sg))) return rc;
        if (sg <= lg) break;
        view_end(r);
        if (tries > 1000)
            return slim__err(st, SLIM_EBUSY, "cannot get a consistent view (metadata gen %llu, "
                             "records gen %llu)", (unsigned long long)sg, (unsigned long long)lg);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    int mrc = mdb_cursor_open(r->txn, st->rec_dbi, &r->cur);
    if (mrc) return slim__mdb_err(st, mrc, "starting a read");
    return 0;
}

int slim_read_begin(slim_store *st, slim_reader **out)
{
    char p[4096];
    slim_reader *r = calloc(1, sizeof *r);
    *out = NULL;
    if (!r) return slim__err(st, SLIM_ENOMEM, "out of memory");
    r->st = st;
    snprintf(p, sizeof p, "%s/meta.sqlite", st->path);
    int rc;
    if (sqlite3_open_v2(p, &r->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL)) {
        rc = slim__sql_err(st, r->db, "opening a reader");
        goto fail;
    }
    sqlite3_busy_timeout(r->db, 60000);
    if (sqlite3_prepare_v2(r->db,
                           "SELECT ntokens, npos, prefix_dataset, prefix_seq, prefix_len,"
                           " deleted, purged, entries, record_bytes, ingest_run, content_hash,"
                           " ext_id FROM sequences WHERE dataset_id = ?1 AND seq = ?2",
                           -1, &r->q_seq, NULL) ||
        sqlite3_prepare_v2(r->db, "SELECT tokens FROM sequences WHERE dataset_id = ?1 AND seq = ?2",
                           -1, &r->q_tok, NULL)) {
        rc = slim__sql_err(st, r->db, "opening a reader");
        goto fail;
    }
    if ((rc = slim_codec_new(&r->codec))) {
        rc = slim__err(st, rc, "opening a reader: cannot create a codec");
        goto fail;
    }
    if ((rc = view_begin(r))) goto fail;
    *out = r;
    return 0;
fail:
    slim_read_end(r);
    return rc;
}

int slim_read_refresh(slim_reader *r)
{
    view_end(r);
    return view_begin(r);
}

void slim_read_end(slim_reader *r)
{
    if (!r) return;
    view_end(r);
    sqlite3_finalize(r->q_seq);
    sqlite3_finalize(r->q_tok);
    sqlite3_close(r->db);
    slim_codec_free(r->codec);
    free(r->ext_id);
    free(r);
}

uint64_t slim_read_record_count(const slim_reader *r) { return r->gets; }

static int load_meta(slim_reader *r, int64_t d, int64_t s)
{
    if (r->have_meta && r->meta.dataset == d && r->meta.seq == s) return 0;
    r->have_meta = 0;
    sqlite3_stmt *q = r->q_seq;
    sqlite3_reset(q);
    sqlite3_bind_int64(q, 1, d);
    sqlite3_bind_int64(q, 2, s);
    int sr = sqlite3_step(q);
    if (sr == SQLITE_DONE)
        return slim__err(r->st, SLIM_ENOTFOUND, "no sequence %lld in dataset %lld", (long long)s,
                         (long long)d);
    if (sr != SQLITE_ROW) return slim__sql_err(r->st, r->db, "reading a sequence");
    slim_seqmeta *m = &r->meta;
    m->dataset = d;
    m->seq = s;
    m->ntokens = (uint32_t)sqlite3_column_int64(q, 0);
    m->npos = (uint32_t)sqlite3_column_int64(q, 1);
    m->prefix_dataset = sqlite3_column_type(q, 2) == SQLITE_NULL ? -1 : sqlite3_column_int64(q, 2);
    m->prefix_seq = sqlite3_column_type(q, 3) == SQLITE_NULL ? -1 : sqlite3_column_int64(q, 3);
    m->prefix_len = (uint32_t)sqlite3_column_int64(q, 4);
    m->deleted = sqlite3_column_int(q, 5);
    m->purged = sqlite3_column_int(q, 6);
    m->entries = sqlite3_column_int64(q, 7);
    m->record_bytes = sqlite3_column_int64(q, 8);
    m->ingest_run = sqlite3_column_type(q, 9) == SQLITE_NULL ? -1 : sqlite3_column_int64(q, 9);
    memset(m->hash, 0, 16);
    if (sqlite3_column_bytes(q, 10) == 16) memcpy(m->hash, sqlite3_column_blob(q, 10), 16);
    const unsigned char *e = sqlite3_column_text(q, 11);
    r->has_ext = e != NULL;
    if (e) {
        size_t n = (size_t)sqlite3_column_bytes(q, 11) + 1;
        if (slim__grow((void **)&r->ext_id, &r->ext_cap, n, 1)) return SLIM_ENOMEM;
        memcpy(r->ext_id, e, n);
    }
    r->have_meta = 1;
    if (m->prefix_len && m->prefix_dataset < 0)
        return slim__err(r->st, SLIM_ECORRUPT, "dataset %lld seq %lld: prefix without a target",
                         (long long)d, (long long)s);
    return 0;
}

int slim_read_seq(slim_reader *r, int64_t dataset, int64_t seq, slim_seq_info *out)
{
    int rc = load_meta(r, dataset, seq);
    if (rc) return rc;
    const slim_seqmeta *m = &r->meta;
    memset(out, 0, sizeof *out);
    out->dataset = dataset;
    out->seq = seq;
    out->ext_id = r->has_ext ? r->ext_id : NULL;
    out->ntokens = m->ntokens;
    out->npos = m->npos;
    memcpy(out->hash, m->hash, 16);
    out->deleted = m->deleted;
    out->ingest_run = m->ingest_run;
    out->prefix_dataset = m->prefix_len ? m->prefix_dataset : -1;
    out->prefix_seq = m->prefix_len ? m->prefix_seq : -1;
    out->prefix_len = m->prefix_len;
    return 0;
}

int slim_read_tokens(slim_reader *r, int64_t dataset, int64_t seq, uint32_t *buf, uint32_t cap,
                     uint32_t *ntokens)
{
    sqlite3_stmt *q = r->q_tok;
    sqlite3_reset(q);
    sqlite3_bind_int64(q, 1, dataset);
    sqlite3_bind_int64(q, 2, seq);
    int sr = sqlite3_step(q);
    if (sr == SQLITE_DONE)
        return slim__err(r->st, SLIM_ENOTFOUND, "no sequence %lld in dataset %lld", (long long)seq,
                         (long long)dataset);
    if (sr != SQLITE_ROW) return slim__sql_err(r->st, r->db, "reading tokens");
    int rc = slim__tokens_decode(sqlite3_column_blob(q, 0), (size_t)sqlite3_column_bytes(q, 0), buf,
                                 cap, ntokens);
    sqlite3_reset(q);
    if (rc == SLIM_ERANGE)
        return slim__err(r->st, rc, "sequence %lld has %u tokens, buffer holds %u", (long long)seq,
                         *ntokens, cap);
    if (rc)
        return slim__err(r->st, rc, "dataset %lld seq %lld: corrupt tokens blob", (long long)dataset,
                         (long long)seq);
    return 0;
}

/* The checks of a range read: the sequence exists, its records were not
 * freed, [pos, pos+n) is inside it; loads r->meta. */
static int range_begin(slim_reader *r, int64_t dataset, int64_t seq, uint32_t pos, uint32_t n)
{
    int rc = load_meta(r, dataset, seq);
    if (rc) return rc;
    const slim_seqmeta *m = &r->meta;
    if (m->purged)
        return slim__err(r->st, SLIM_ENOTFOUND, "dataset %lld seq %lld was deleted", (long long)dataset,
                         (long long)seq);
    if (pos > m->npos || n > m->npos - pos)
        return slim__err(r->st, SLIM_ENOTFOUND, "dataset %lld seq %lld has %u positions, asked %u..%u",
                         (long long)dataset, (long long)seq, m->npos, pos, pos + n);
    r->errbuf[0] = 0;
    return 0;
}

int slim_read_positions(slim_reader *r, int64_t dataset, int64_t seq, uint32_t pos, uint32_t n,
                        slim_dist *out, uint32_t *ids, float *vals, size_t cap, size_t *need,
                        unsigned flags)
{
    int rc = range_begin(r, dataset, seq, pos, n);
    if (rc) return rc;
    const slim_seqmeta *m = &r->meta;
    slim_rangeio io = {r->cur, r->codec, &r->gets, r->errbuf, sizeof r->errbuf, &r->verified};
    size_t need1 = 0, need2 = 0, used = 0;
    uint32_t n1 = 0;
    int rc1 = 0, rc2 = 0;
    if (pos < m->prefix_len) {  /* the shared part: one hop to the owner */
        n1 = m->prefix_len - pos < n ? m->prefix_len - pos : n;
        rc1 = slim__read_owned(&io, m->prefix_dataset, m->prefix_seq, pos, n1, out, ids, vals, cap,
                               &need1, flags);
        if (rc1 && rc1 != SLIM_ERANGE) return reader_err(r, rc1, "reading shared prefix");
        if (!rc1) used = need1;
    }
    if (n > n1) {
        int full = rc1 == SLIM_ERANGE;
        rc2 = slim__read_owned(&io, dataset, seq, pos + n1, n - n1, out + n1, ids + (full ? 0 : used),
                               vals + (full ? 0 : used), full ? 0 : cap - used, &need2, flags);
        if (rc2 && rc2 != SLIM_ERANGE) return reader_err(r, rc2, "reading positions");
    }
    if (need) *need = need1 + need2;
    if (rc1 || rc2)
        return slim__err(r->st, SLIM_ERANGE, "positions %u..%u need %zu entries, buffer holds %zu",
                         pos, pos + n, need1 + need2, cap);
    return 0;
}

int slim_read_pstats(slim_reader *r, int64_t dataset, int64_t seq, uint32_t pos, uint32_t n,
                     slim_pstat *out)
{
    int rc = range_begin(r, dataset, seq, pos, n);
    if (rc) return rc;
    const slim_seqmeta *m = &r->meta;
    slim_rangeio io = {r->cur, r->codec, &r->gets, r->errbuf, sizeof r->errbuf, &r->verified};
    uint32_t n1 = 0;
    if (pos < m->prefix_len) {  /* the shared part: one hop to the owner */
        n1 = m->prefix_len - pos < n ? m->prefix_len - pos : n;
        rc = slim__pstats_owned(&io, m->prefix_dataset, m->prefix_seq, pos, n1, out);
        if (rc) return reader_err(r, rc, "reading shared prefix");
    }
    if (n > n1) {
        rc = slim__pstats_owned(&io, dataset, seq, pos + n1, n - n1, out + n1);
        if (rc) return reader_err(r, rc, "reading positions");
    }
    return 0;
}

void slim__reader_parts(slim_reader *r, slim_rangeio *io, sqlite3 **db, MDB_txn **txn)
{
    io->cur = r->cur;
    io->codec = r->codec;
    io->gets = &r->gets;
    io->errbuf = r->errbuf;
    io->errcap = sizeof r->errbuf;
    io->verified = NULL;  /* verify checks every value */
    *db = r->db;
    *txn = r->txn;
}
