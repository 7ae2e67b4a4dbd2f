/*
 * write.c — the single writer: locking, the commit protocol, crash recovery,
 * garbage collection, datasets, runs and vocabularies.  Sequences are in
 * write_seq.c, snapshots in snapshot.c.
 *
 * Commit protocol (docs/STORE.md): both databases carry a generation.  A
 * batch commits LMDB first (records + gen g+1), then SQLite (rows + gen
 * g+1): the SQLite commit is the point of acknowledgement.  Records freed by
 * deletions are listed in the `garbage` table in that same SQLite commit and
 * removed from LMDB only afterwards.  Recovery at writer start removes
 * orphan records (LMDB ahead of SQLite) and redoes pending garbage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "write_internal.h"

/* ------------------------------------------------------------ statements */

sqlite3_stmt *slim__stmt(slim_writer *w, int idx, const char *sql)
{
    if (!w->stmts[idx] && sqlite3_prepare_v2(w->st->db, sql, -1, &w->stmts[idx], NULL)) {
        slim__sql_err(w->st, w->st->db, "preparing a statement");
        return NULL;
    }
    sqlite3_reset(w->stmts[idx]);
    sqlite3_clear_bindings(w->stmts[idx]);
    return w->stmts[idx];
}

/* Steps a statement that returns no row; marks the batch failed on error. */
int slim__step_done(slim_writer *w, sqlite3_stmt *q, const char *what)
{
    if (!q) return w->failed = SLIM_EIO;
    int s = sqlite3_step(q);
    if (s == SQLITE_DONE || s == SQLITE_ROW) {
        sqlite3_reset(q);
        return 0;
    }
    int rc = slim__sql_err(w->st, w->st->db, what);
    sqlite3_reset(q);
    if (!w->failed) w->failed = rc;
    return rc;
}

static int exec(slim_store *st, const char *sql, const char *what)
{
    if (sqlite3_exec(st->db, sql, NULL, NULL, NULL)) return slim__sql_err(st, st->db, what);
    return 0;
}

/* ------------------------------------------------------------ recovery */

typedef struct ds_next { int64_t id, next; } ds_next;

static int load_next_seqs(slim_store *st, ds_next **out, size_t *n)
{
    sqlite3_stmt *q = NULL;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(st->db, "SELECT id, next_seq FROM datasets ORDER BY id", -1, &q, NULL))
        return slim__sql_err(st, st->db, "recovery: reading datasets");
    int s;
    while ((s = sqlite3_step(q)) == SQLITE_ROW) {
        if (slim__grow((void **)out, &cap, *n + 1, sizeof **out)) {
            sqlite3_finalize(q);
            return SLIM_ENOMEM;
        }
        (*out)[*n].id = sqlite3_column_int64(q, 0);
        (*out)[(*n)++].next = sqlite3_column_int64(q, 1);
    }
    sqlite3_finalize(q);
    return s == SQLITE_DONE ? 0 : slim__sql_err(st, st->db, "recovery: reading datasets");
}

static const ds_next *find_ds(const ds_next *a, size_t n, int64_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (a[mid].id == id) return &a[mid];
        if (a[mid].id < id) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* Deletes every record whose (dataset, seq) the metadata does not know:
 * the remains of an insert whose LMDB commit landed but whose SQLite commit
 * did not.  Jumps over the known range of each dataset with SET_RANGE. */
static int delete_orphans(slim_store *st, MDB_txn *txn, int64_t *removed)
{
    ds_next *ds;
    size_t nds;
    int rc = load_next_seqs(st, &ds, &nds);
    if (rc) return rc;
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, st->rec_dbi, &cur);
    if (mrc) {
        free(ds);
        return slim__mdb_err(st, mrc, "recovery");
    }
    uint8_t kb[SLIM_KEY_LEN];
    MDB_val k, v;
    MDB_cursor_op op = MDB_FIRST;
    while ((mrc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        int64_t d, s;
        uint32_t p;
        if (k.mv_size != SLIM_KEY_LEN) continue;  /* verify reports it */
        slim__key_parse(k.mv_data, &d, &s, &p);
        const ds_next *e = find_ds(ds, nds, d);
        if (e && s < e->next) {
            slim__key(kb, d, e->next, 0);
            k.mv_data = kb;
            k.mv_size = SLIM_KEY_LEN;
            op = MDB_SET_RANGE;
            continue;
        }
        if ((mrc = mdb_cursor_del(cur, 0))) break;
        (*removed)++;
    }
    mdb_cursor_close(cur);
    free(ds);
    if (mrc && mrc != MDB_NOTFOUND) return slim__mdb_err(st, mrc, "recovery: deleting orphans");
    return 0;
}

static int put_gen(slim_store *st, MDB_txn *txn, uint64_t gen)
{
    MDB_val k = {3, (void *)"gen"}, v = {8, &gen};
    int mrc = mdb_put(txn, st->meta_dbi, &k, &v, 0);
    return mrc ? slim__mdb_err(st, mrc, "writing the generation") : 0;
}

/* Frees the records of every (dataset, seq) listed in `garbage`, then
 * clears the list.  Idempotent, so recovery simply runs it again. */
static int collect_garbage(slim_store *st)
{
    sqlite3_stmt *q = NULL;
    int64_t *pairs = NULL;
    size_t n = 0, cap = 0;
    if (sqlite3_prepare_v2(st->db, "SELECT dataset_id, seq FROM garbage", -1, &q, NULL))
        return slim__sql_err(st, st->db, "reading garbage");
    while (sqlite3_step(q) == SQLITE_ROW) {
        if (slim__grow((void **)&pairs, &cap, 2 * n + 2, sizeof *pairs)) break;
        pairs[2 * n] = sqlite3_column_int64(q, 0);
        pairs[2 * n + 1] = sqlite3_column_int64(q, 1);
        n++;
    }
    sqlite3_finalize(q);
    if (n == 0) {
        free(pairs);
        return 0;
    }
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    int mrc = mdb_txn_begin(st->env, NULL, 0, &txn);
    if (!mrc) mrc = mdb_cursor_open(txn, st->rec_dbi, &cur);
    for (size_t i = 0; i < n && !mrc; i++) {
        uint8_t kb[SLIM_KEY_LEN];
        MDB_val k = {SLIM_KEY_LEN, kb}, v;
        slim__key(kb, pairs[2 * i], pairs[2 * i + 1], 0);
        MDB_cursor_op op = MDB_SET_RANGE;
        while ((mrc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
            int64_t d, s;
            uint32_t p;
            op = MDB_NEXT;
            if (k.mv_size != SLIM_KEY_LEN) break;
            slim__key_parse(k.mv_data, &d, &s, &p);
            if (d != pairs[2 * i] || s != pairs[2 * i + 1]) break;
            if ((mrc = mdb_cursor_del(cur, 0))) break;
        }
        if (mrc == MDB_NOTFOUND || mrc == 0) mrc = 0;
    }
    free(pairs);
    if (cur) mdb_cursor_close(cur);
    if (mrc) {
        mdb_txn_abort(txn);
        return slim__mdb_err(st, mrc, "freeing deleted records");
    }
    if ((mrc = mdb_txn_commit(txn))) return slim__mdb_err(st, mrc, "freeing deleted records");
    return exec(st, "DELETE FROM garbage", "clearing the garbage list");
}

int slim__recover(slim_store *st)
{
    uint64_t lg, sg;
    int rc, dead = 0;
    mdb_reader_check(st->env, &dead);  /* free slots of killed readers */
    if ((rc = slim__sql_gen(st, st->db, &sg))) return rc;
    MDB_txn *txn;
    int mrc = mdb_txn_begin(st->env, NULL, 0, &txn);
    if (mrc) return slim__mdb_err(st, mrc, "recovery");
    if ((rc = slim__lmdb_gen(st, txn, &lg))) goto fail;
    if (lg > sg) {
        /* An insert committed records but not metadata: delete them, then
         * move SQLite's gen *up* to LMDB's.  Gens never go back, so a
         * reader holding the old records view (gen lg, orphans) can never
         * pair it with the metadata of a later batch that reuses those
         * sequence numbers: that metadata has gen > lg, and the reader
         * retries. */
        int64_t removed = 0;
        if ((rc = delete_orphans(st, txn, &removed))) goto fail;
        if ((mrc = mdb_txn_commit(txn))) return slim__mdb_err(st, mrc, "recovery");
        char sql[96];
        snprintf(sql, sizeof sql, "UPDATE meta SET value = '%llu' WHERE key = 'gen'", (unsigned long long)lg);
        if ((rc = exec(st, sql, "recovery: advancing the generation"))) return rc;
    } else if (lg < sg) {
        /* not a state slim's protocol produces (records lost after their
         * metadata committed): align the gens; verify reports the damage */
        if ((rc = put_gen(st, txn, sg))) goto fail;
        if ((mrc = mdb_txn_commit(txn))) return slim__mdb_err(st, mrc, "recovery");
    } else {
        mdb_txn_abort(txn);
    }
    return collect_garbage(st);
fail:
    mdb_txn_abort(txn);
    return rc;
}

/* ------------------------------------------------------------ begin/end */

static void writer_free(slim_writer *w)
{
    for (int i = 0; i < W_NSTMT; i++) sqlite3_finalize(w->stmts[i]);
    slim_codec_free(w->codec);
    free(w->enc);
    free(w->ids);
    free(w->vals);
    free(w->dbuf);
    free(w->seen);
    free(w->tokbuf);
    slim_preparer_free(w->pr);
    slim_prepared_free(w->own);
    if (w->st->lockfd >= 0) flock(w->st->lockfd, LOCK_UN);
    w->st->writer = NULL;
    free(w);
}

static int lock_store(slim_store *st)
{
    int nb = (st->flags & SLIM_OPEN_NOWAIT) ? LOCK_NB : 0;
    while (flock(st->lockfd, LOCK_EX | nb) != 0) {
        if (errno == EINTR) continue;
        if (errno == EWOULDBLOCK)
            return slim__err(st, SLIM_EBUSY, "store '%s' is busy: another writer holds it", st->path);
        return slim__err(st, SLIM_EIO, "cannot lock '%s/lock': %s", st->path, strerror(errno));
    }
    return 0;
}

int slim_write_begin(slim_store *st, slim_writer **out)
{
    *out = NULL;
    if (st->flags & SLIM_OPEN_RDONLY || st->lockfd < 0)
        return slim__err(st, SLIM_EREADONLY, "store '%s' is open read-only", st->path);
    if (st->writer) return slim__err(st, SLIM_EBUSY, "this store handle already has a writer");
    int rc = lock_store(st);
    if (rc) return rc;
    slim_writer *w = calloc(1, sizeof *w);
    if (!w) {
        flock(st->lockfd, LOCK_UN);
        return slim__err(st, SLIM_ENOMEM, "out of memory");
    }
    w->st = st;
    st->writer = w;
    if ((rc = slim__recover(st))) goto fail;
    if ((rc = slim_codec_new(&w->codec))) {
        rc = slim__err(st, rc, "cannot create a codec");
        goto fail;
    }
    int mrc = mdb_txn_begin(st->env, NULL, 0, &w->txn);
    if (!mrc) mrc = mdb_cursor_open(w->txn, st->rec_dbi, &w->cur);
    if (mrc) {
        rc = slim__mdb_err(st, mrc, "starting a write");
        goto fail;
    }
    if ((rc = exec(st, "BEGIN IMMEDIATE", "starting a write"))) goto fail;
    w->in_sql = 1;
    if ((rc = slim__sql_gen(st, st->db, &w->gen))) goto fail;
    MDB_val k, v;  /* the last key decides when MDB_APPEND is allowed */
    if (mdb_cursor_get(w->cur, &k, &v, MDB_LAST) == 0 && k.mv_size == SLIM_KEY_LEN) {
        memcpy(w->last, k.mv_data, SLIM_KEY_LEN);
        w->have_last = 1;
    }
    *out = w;
    return 0;
fail:
    slim_write_abort(w);
    return rc;
}

void slim_write_abort(slim_writer *w)
{
    if (!w) return;
    if (w->cur) mdb_cursor_close(w->cur);
    if (w->txn) mdb_txn_abort(w->txn);
    if (w->in_sql) sqlite3_exec(w->st->db, "ROLLBACK", NULL, NULL, NULL);
    writer_free(w);
}

int slim_write_commit(slim_writer *w)
{
    slim_store *st = w->st;
    int rc = w->failed, mrc;
    if (rc) {
        slim_write_abort(w);
        return slim__err(st, rc, "batch not committed: an earlier write failed (%s)",
                         slim_strerror(rc));
    }
    uint64_t gen = w->gen + 1;
    mdb_cursor_close(w->cur);
    w->cur = NULL;
    if ((rc = put_gen(st, w->txn, gen))) goto fail;
    mrc = mdb_txn_commit(w->txn);
    w->txn = NULL;
    if (mrc) {
        rc = slim__mdb_err(st, mrc, "committing records");
        goto fail;
    }
    char sql[96];
    snprintf(sql, sizeof sql, "UPDATE meta SET value = '%llu' WHERE key = 'gen'",
             (unsigned long long)gen);
    if ((rc = exec(st, sql, "committing metadata")) ||
        (rc = exec(st, "COMMIT", "committing metadata"))) {
        /* records are in, metadata is not: they are orphans; recover now
         * (we still hold the lock) or at the next writer start */
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        w->in_sql = 0;
        char keep[sizeof st->err];
        memcpy(keep, st->err, sizeof keep);
        slim__recover(st);
        slim__err(st, rc, "%s", keep);
        goto fail;
    }
    w->in_sql = 0;
    /* keep sqlite_stat1 current so joins of the metadata tables with the
     * query virtual tables get honest row counts; cheap when nothing changed
     * much, and best effort: the data is committed either way */
    sqlite3_exec(st->db, "PRAGMA optimize", NULL, NULL, NULL);
    if (w->have_garbage) collect_garbage(st);  /* on failure: redone by recovery */
    writer_free(w);
    return 0;
fail:
    slim_write_abort(w);
    return rc;
}

struct sqlite3 *slim_writer_sqlite(slim_writer *w) { return w->st->db; }

/* ------------------------------------------------------------ datasets */

static int check_teacher(slim_writer *w, const slim_teacher *t, int64_t *tid)
{
    slim_store *st = w->st;
    sqlite3_stmt *q = slim__stmt(w, W_TEACHER_GET,
                                 "SELECT id, vocab_size, tokenizer_hash, temperature, source"
                                 " FROM teachers WHERE name = ?1");
    if (!q) return SLIM_EIO;
    const char *src = t->source == SLIM_SOURCE_LOGPROBS ? "logprobs" : "logits";
    sqlite3_bind_text(q, 1, t->name, -1, SQLITE_STATIC);
    int s = sqlite3_step(q);
    if (s == SQLITE_ROW) {
        *tid = sqlite3_column_int64(q, 0);
        int64_t V = sqlite3_column_int64(q, 1);
        const char *th = (const char *)sqlite3_column_text(q, 2);
        double temp = sqlite3_column_double(q, 3);
        const char *osrc = (const char *)sqlite3_column_text(q, 4);
        int rc = 0;
        if (V != t->vocab_size)
            rc = slim__err(st, SLIM_EMISMATCH, "teacher '%s': vocab size %u differs from recorded %lld",
                           t->name, t->vocab_size, (long long)V);
        else if (th && t->tokenizer_hash && strcmp(th, t->tokenizer_hash))
            rc = slim__err(st, SLIM_EMISMATCH, "teacher '%s': tokenizer hash %s differs from recorded %s",
                           t->name, t->tokenizer_hash, th);
        else if (temp != t->temperature)
            rc = slim__err(st, SLIM_EMISMATCH, "teacher '%s': temperature %g differs from recorded %g",
                           t->name, t->temperature, temp);
        else if (osrc && strcmp(osrc, src))
            rc = slim__err(st, SLIM_EMISMATCH, "teacher '%s': source %s differs from recorded %s",
                           t->name, src, osrc);
        int fill = !rc && !th && t->tokenizer_hash;
        sqlite3_reset(q);
        if (fill) {
            q = slim__stmt(w, W_TEACHER_SETHASH, "UPDATE teachers SET tokenizer_hash = ?2 WHERE id = ?1");
            if (!q) return SLIM_EIO;
            sqlite3_bind_int64(q, 1, *tid);
            sqlite3_bind_text(q, 2, t->tokenizer_hash, -1, SQLITE_STATIC);
            rc = slim__step_done(w, q, "recording the tokenizer hash");
        }
        return rc;
    }
    sqlite3_reset(q);
    if (s != SQLITE_DONE) return slim__sql_err(st, st->db, "reading teachers");
    q = slim__stmt(w, W_TEACHER_ADD,
                   "INSERT INTO teachers(name, vocab_size, tokenizer_hash, temperature, source)"
                   " VALUES (?1, ?2, ?3, ?4, ?5)");
    if (!q) return SLIM_EIO;
    sqlite3_bind_text(q, 1, t->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, t->vocab_size);
    if (t->tokenizer_hash) sqlite3_bind_text(q, 3, t->tokenizer_hash, -1, SQLITE_STATIC);
    sqlite3_bind_double(q, 4, t->temperature);
    sqlite3_bind_text(q, 5, src, -1, SQLITE_STATIC);
    int rc = slim__step_done(w, q, "adding a teacher");
    *tid = sqlite3_last_insert_rowid(st->db);
    return rc;
}

int slim_write_dataset(slim_writer *w, const char *name, const slim_teacher *t, int kind,
                       const char *sparsifier, const slim_precision *prec, int64_t *id)
{
    slim_store *st = w->st;
    char pbuf[64];
    if (!name || !*name || !t || !t->name || !*t->name || !sparsifier)
        return slim__err(st, SLIM_EINVAL, "dataset and teacher need names and a sparsifier");
    if (t->vocab_size < 2) return slim__err(st, SLIM_EINVAL, "teacher '%s': vocab size %u is too small",
                                            t->name, t->vocab_size);
    if (kind != SLIM_KIND_LOGITS && kind != SLIM_KIND_SAMPLED)
        return slim__err(st, SLIM_EINVAL, "dataset '%s': unknown kind %d", name, kind);
    if (!prec || slim_precision_format(prec, pbuf, sizeof pbuf))
        return slim__err(st, SLIM_EINVAL, "dataset '%s': invalid precision", name);
    int64_t tid = 0;
    int rc = check_teacher(w, t, &tid);
    if (rc) return rc;
    sqlite3_stmt *q = slim__stmt(w, W_DS_GET, "SELECT id, teacher_id, kind, sparsifier, precision"
                                              " FROM datasets WHERE name = ?1");
    if (!q) return SLIM_EIO;
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    int s = sqlite3_step(q);
    if (s == SQLITE_ROW) {
        *id = sqlite3_column_int64(q, 0);
        const char *ok = (const char *)sqlite3_column_text(q, 2);
        const char *osp = (const char *)sqlite3_column_text(q, 3);
        const char *opr = (const char *)sqlite3_column_text(q, 4);
        if (sqlite3_column_int64(q, 1) != tid)
            rc = slim__err(st, SLIM_EMISMATCH, "dataset '%s' belongs to another teacher than '%s'", name,
                           t->name);
        else if (!ok || strcmp(ok, slim__kind_name(kind)))
            rc = slim__err(st, SLIM_EMISMATCH, "dataset '%s' holds %s records, not %s", name,
                           ok ? ok : "?", slim__kind_name(kind));
        else if (!osp || strcmp(osp, sparsifier))
            rc = slim__err(st, SLIM_EMISMATCH, "dataset '%s': sparsifier %s differs from recorded %s",
                           name, sparsifier, osp ? osp : "?");
        else if (!opr || strcmp(opr, pbuf))
            rc = slim__err(st, SLIM_EMISMATCH, "dataset '%s': precision %s differs from recorded %s",
                           name, pbuf, opr ? opr : "?");
        sqlite3_reset(q);
        return rc;
    }
    sqlite3_reset(q);
    if (s != SQLITE_DONE) return slim__sql_err(st, st->db, "reading datasets");
    char now[32];
    slim__now(now);
    q = slim__stmt(w, W_DS_ADD, "INSERT INTO datasets(name, teacher_id, kind, sparsifier, precision,"
                                " created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    if (!q) return SLIM_EIO;
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, tid);
    sqlite3_bind_text(q, 3, slim__kind_name(kind), -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, sparsifier, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 5, pbuf, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 6, now, -1, SQLITE_TRANSIENT);
    rc = slim__step_done(w, q, "adding a dataset");
    *id = sqlite3_last_insert_rowid(st->db);
    return rc;
}

/* ------------------------------------------------------------ runs */

int slim_write_run_begin(slim_writer *w, int64_t dataset, const char *tool, const char *args_json,
                         int64_t *run_id)
{
    char now[32];
    slim__now(now);
    sqlite3_stmt *q = slim__stmt(w, W_RUN_ADD, "INSERT INTO ingest_runs(dataset_id, tool, args,"
                                               " started_at) VALUES (?1, ?2, ?3, ?4)");
    if (!q) return SLIM_EIO;
    sqlite3_bind_int64(q, 1, dataset);
    sqlite3_bind_text(q, 2, tool ? tool : "?", -1, SQLITE_STATIC);
    if (args_json) sqlite3_bind_text(q, 3, args_json, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, now, -1, SQLITE_TRANSIENT);
    int rc = slim__step_done(w, q, "recording an ingest run");
    *run_id = sqlite3_last_insert_rowid(w->st->db);
    return rc;
}

int slim_write_run_input(slim_writer *w, int64_t run_id, const char *path, const char *content_hash,
                         int64_t added, int64_t skipped, int64_t refused)
{
    sqlite3_stmt *q = slim__stmt(w, W_RUN_INPUT,
                                 "INSERT INTO ingest_inputs(run_id, path, content_hash, added,"
                                 " skipped, refused) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    if (!q) return SLIM_EIO;
    sqlite3_bind_int64(q, 1, run_id);
    sqlite3_bind_text(q, 2, path ? path : "", -1, SQLITE_STATIC);
    if (content_hash) sqlite3_bind_text(q, 3, content_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 4, added);
    sqlite3_bind_int64(q, 5, skipped);
    sqlite3_bind_int64(q, 6, refused);
    return slim__step_done(w, q, "recording an ingest input");
}

int slim_write_run_end(slim_writer *w, int64_t run_id, const char *status, int64_t added,
                       int64_t skipped, int64_t refused)
{
    char now[32];
    slim__now(now);
    sqlite3_stmt *q = slim__stmt(w, W_RUN_END,
                                 "UPDATE ingest_runs SET finished_at = ?2, status = ?3, added = ?4,"
                                 " skipped = ?5, refused = ?6 WHERE id = ?1");
    if (!q) return SLIM_EIO;
    sqlite3_bind_int64(q, 1, run_id);
    sqlite3_bind_text(q, 2, now, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 3, status ? status : "ok", -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 4, added);
    sqlite3_bind_int64(q, 5, skipped);
    sqlite3_bind_int64(q, 6, refused);
    int rc = slim__step_done(w, q, "finishing an ingest run");
    if (!rc && sqlite3_changes(w->st->db) == 0)
        return slim__err(w->st, SLIM_ENOTFOUND, "no ingest run %lld", (long long)run_id);
    return rc;
}

/* ------------------------------------------------------------ vocab */

int slim_write_vocab(slim_writer *w, int64_t dataset, uint32_t n, const uint32_t *ids,
                     const char *const *pieces, const char *tokenizer_hash)
{
    slim_store *st = w->st;
    sqlite3_stmt *q = slim__stmt(w, W_DS_TEACHER, "SELECT d.teacher_id, t.vocab_size FROM datasets d"
                                                  " JOIN teachers t ON t.id = d.teacher_id WHERE d.id = ?1");
    if (!q) return SLIM_EIO;
    sqlite3_bind_int64(q, 1, dataset);
    if (sqlite3_step(q) != SQLITE_ROW) {
        sqlite3_reset(q);
        return slim__err(st, SLIM_ENOTFOUND, "no dataset number %lld", (long long)dataset);
    }
    int64_t tid = sqlite3_column_int64(q, 0), V = sqlite3_column_int64(q, 1);
    sqlite3_reset(q);
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] >= V || !pieces[i])
            return slim__err(st, SLIM_EINVAL, "vocab entry %u: id %u >= vocab size %lld or no text", i,
                             ids[i], (long long)V);
    q = slim__stmt(w, W_VOCAB_DEL, "DELETE FROM vocab WHERE teacher_id = ?1");
    if (!q) return SLIM_EIO;
    sqlite3_bind_int64(q, 1, tid);
    int rc = slim__step_done(w, q, "replacing the vocabulary");
    for (uint32_t i = 0; i < n && !rc; i++) {
        q = slim__stmt(w, W_VOCAB_ADD, "INSERT OR REPLACE INTO vocab(teacher_id, id, piece)"
                                       " VALUES (?1, ?2, ?3)");
        if (!q) return SLIM_EIO;
        sqlite3_bind_int64(q, 1, tid);
        sqlite3_bind_int64(q, 2, ids[i]);
        sqlite3_bind_text(q, 3, pieces[i], -1, SQLITE_STATIC);
        rc = slim__step_done(w, q, "storing the vocabulary");
    }
    if (!rc && tokenizer_hash) {
        q = slim__stmt(w, W_TEACHER_SETHASH, "UPDATE teachers SET tokenizer_hash = ?2 WHERE id = ?1");
        if (!q) return SLIM_EIO;
        sqlite3_bind_int64(q, 1, tid);
        sqlite3_bind_text(q, 2, tokenizer_hash, -1, SQLITE_STATIC);
        rc = slim__step_done(w, q, "recording the tokenizer hash");
    }
    return rc;
}
