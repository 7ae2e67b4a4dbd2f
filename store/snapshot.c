/*
 * snapshot.c — immutable, content-hashed lists of sequences.
 *
 * Snapshot hash (docs/FORMAT.md): SHA-256 over the 17 bytes
 * "slim-snapshot-v1\0" followed, for every member in order, by its 16-byte
 * content hash and one byte for its split (0 train, 1 valid).
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "write_internal.h"

struct slim_snapshot {
    char *name;
    uint8_t hash[32];
    char hex[65];
    size_t n;
    slim_member *m;
};

static const char SNAP_MAGIC[17] = "slim-snapshot-v1";

static int hash_members(const slim_member *m, size_t n, uint8_t out[32])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned len = 0;
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(ctx, SNAP_MAGIC, sizeof SNAP_MAGIC);
    for (size_t i = 0; i < n && ok; i++) {
        uint8_t split = (uint8_t)m[i].split;
        ok = EVP_DigestUpdate(ctx, m[i].hash, 16) && EVP_DigestUpdate(ctx, &split, 1);
    }
    ok = ok && EVP_DigestFinal_ex(ctx, out, &len) && len == 32;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : SLIM_ENOMEM;
}

static void to_hex(const uint8_t *b, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[b[i] >> 4];
        out[2 * i + 1] = hx[b[i] & 15];
    }
    out[2 * n] = 0;
}

/* The split is a function of the content hash alone: its first 8 bytes as
 * a big-endian fraction of 2^64, valid when below valid_frac. */
static int split_of(const uint8_t h[16], double valid_frac)
{
    uint64_t x = 0;
    for (int i = 0; i < 8; i++) x = x << 8 | h[i];
    return (double)x / 18446744073709551616.0 < valid_frac ? SLIM_SPLIT_VALID : SLIM_SPLIT_TRAIN;
}

static int add_members(slim_writer *w, int64_t snap, int64_t ds, double vf, int64_t *ord,
                       slim_member **mem, size_t *cap, int64_t *nvalid)
{
    slim_store *st = w->st;
    sqlite3_stmt *q = NULL, *ins = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(st->db, "SELECT seq, content_hash FROM sequences WHERE dataset_id = ?1"
                                   " AND deleted = 0 ORDER BY seq", -1, &q, NULL) ||
        sqlite3_prepare_v2(st->db, "INSERT INTO snapshot_members(snapshot_id, ord, dataset_id, seq,"
                                   " split, content_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1, &ins, NULL)) {
        rc = slim__sql_err(st, st->db, "creating a snapshot");
        goto out;
    }
    sqlite3_bind_int64(q, 1, ds);
    int s;
    while ((s = sqlite3_step(q)) == SQLITE_ROW) {
        if (slim__grow((void **)mem, cap, (size_t)*ord + 1, sizeof **mem)) {
            rc = SLIM_ENOMEM;
            goto out;
        }
        slim_member *m = &(*mem)[*ord];
        m->dataset = ds;
        m->seq = sqlite3_column_int64(q, 0);
        if (sqlite3_column_bytes(q, 1) != 16) {
            rc = slim__err(st, SLIM_ECORRUPT, "dataset %lld seq %lld has no content hash", (long long)ds,
                           (long long)m->seq);
            goto out;
        }
        memcpy(m->hash, sqlite3_column_blob(q, 1), 16);
        m->split = split_of(m->hash, vf);
        *nvalid += m->split == SLIM_SPLIT_VALID;
        sqlite3_reset(ins);
        sqlite3_bind_int64(ins, 1, snap);
        sqlite3_bind_int64(ins, 2, *ord);
        sqlite3_bind_int64(ins, 3, ds);
        sqlite3_bind_int64(ins, 4, m->seq);
        sqlite3_bind_text(ins, 5, m->split ? "valid" : "train", -1, SQLITE_STATIC);
        sqlite3_bind_blob(ins, 6, m->hash, 16, SQLITE_TRANSIENT);
        if (sqlite3_step(ins) != SQLITE_DONE) {
            rc = slim__sql_err(st, st->db, "creating a snapshot");
            goto out;
        }
        (*ord)++;
    }
    if (s != SQLITE_DONE) rc = slim__sql_err(st, st->db, "creating a snapshot");
out:
    sqlite3_finalize(q);
    sqlite3_finalize(ins);
    return rc;
}

static int snap_ids(slim_writer *w, const char *const *datasets, int n, int64_t *ids)
{
    for (int i = 0; i < n; i++) {
        slim_dataset_info di;
        if (!datasets[i]) return slim__err(w->st, SLIM_EINVAL, "snapshot: dataset name missing");
        int rc = slim_dataset_get(w->st, datasets[i], &di);
        if (rc) return rc;
        ids[i] = di.id;
        for (int j = 0; j < i; j++)
            if (ids[j] == ids[i])
                return slim__err(w->st, SLIM_EINVAL, "snapshot: dataset '%s' listed twice", datasets[i]);
    }
    return 0;
}

int slim_write_snapshot(slim_writer *w, const char *name, const char *const *datasets, int n,
                        double valid_frac)
{
    slim_store *st = w->st;
    if (!name || !*name) return slim__err(st, SLIM_EINVAL, "snapshot needs a name");
    if (n < 1 || !datasets) return slim__err(st, SLIM_EINVAL, "snapshot '%s' needs a dataset", name);
    if (!(valid_frac >= 0 && valid_frac < 1))
        return slim__err(st, SLIM_EINVAL, "snapshot '%s': valid fraction %g is not in [0,1)", name, valid_frac);
    if (w->failed) return slim__err(st, w->failed, "the batch already failed; abort it");
    int64_t *ids = calloc((size_t)n, sizeof *ids);
    slim_member *mem = NULL;
    size_t cap = 0, dlen = 1;
    char *dnames = NULL;
    if (!ids) return SLIM_ENOMEM;
    int rc = snap_ids(w, datasets, n, ids);
    if (rc) goto out;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(st->db, "SELECT 1 FROM snapshots WHERE name = ?1", -1, &q, NULL)) {
        rc = slim__sql_err(st, st->db, "creating a snapshot");
        goto out;
    }
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    int taken = sqlite3_step(q) == SQLITE_ROW;
    sqlite3_finalize(q);
    if (taken) {
        rc = slim__err(st, SLIM_EEXIST, "snapshot '%s' already exists", name);
        goto out;
    }
    for (int i = 0; i < n; i++) dlen += strlen(datasets[i]) + 1;
    if (!(dnames = calloc(dlen, 1))) {
        rc = SLIM_ENOMEM;
        goto out;
    }
    for (int i = 0; i < n; i++) {
        if (i) strcat(dnames, ",");
        strcat(dnames, datasets[i]);
    }
    /* from here on the batch is changed: a failure poisons it */
    char now[32];
    slim__now(now);
    if (sqlite3_prepare_v2(st->db, "INSERT INTO snapshots(name, hash, members, valid, valid_frac, datasets,"
                                   " created_at) VALUES (?1, '', 0, 0, ?2, ?3, ?4)", -1, &q, NULL)) {
        rc = w->failed = slim__sql_err(st, st->db, "creating a snapshot");
        goto out;
    }
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_double(q, 2, valid_frac);
    sqlite3_bind_text(q, 3, dnames, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, now, -1, SQLITE_STATIC);
    rc = sqlite3_step(q) == SQLITE_DONE ? 0 : slim__sql_err(st, st->db, "creating a snapshot");
    sqlite3_finalize(q);
    if (rc) goto poison;
    int64_t sid = sqlite3_last_insert_rowid(st->db), ord = 0, nvalid = 0;
    for (int i = 0; i < n && !rc; i++) rc = add_members(w, sid, ids[i], valid_frac, &ord, &mem, &cap, &nvalid);
    if (rc) goto poison;
    uint8_t h[32];
    char hex[65];
    if ((rc = hash_members(mem, (size_t)ord, h))) goto poison;
    to_hex(h, 32, hex);
    if (sqlite3_prepare_v2(st->db, "UPDATE snapshots SET hash = ?2, members = ?3, valid = ?4 WHERE id = ?1",
                           -1, &q, NULL)) {
        rc = slim__sql_err(st, st->db, "creating a snapshot");
        goto poison;
    }
    sqlite3_bind_int64(q, 1, sid);
    sqlite3_bind_text(q, 2, hex, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, ord);
    sqlite3_bind_int64(q, 4, nvalid);
    rc = sqlite3_step(q) == SQLITE_DONE ? 0 : slim__sql_err(st, st->db, "creating a snapshot");
    sqlite3_finalize(q);
    if (rc) goto poison;
    goto out;
poison:
    w->failed = rc;
out:
    free(ids);
    free(mem);
    free(dnames);
    return rc;
}

/* ------------------------------------------------------------ reading */

void slim_snapshot_close(slim_snapshot *s)
{
    if (!s) return;
    free(s->name);
    free(s->m);
    free(s);
}

const char *slim_snapshot_name(const slim_snapshot *s) { return s->name; }
void slim_snapshot_hash(const slim_snapshot *s, uint8_t hash[32]) { memcpy(hash, s->hash, 32); }
const char *slim_snapshot_hash_hex(const slim_snapshot *s) { return s->hex; }
size_t slim_snapshot_size(const slim_snapshot *s) { return s->n; }
const slim_member *slim_snapshot_members(const slim_snapshot *s) { return s->m; }

static int load_members(slim_store *st, sqlite3 *db, slim_snapshot *s, int64_t sid)
{
    sqlite3_stmt *q = NULL;
    size_t cap = 0;
    int rc = 0, st_;
    if (sqlite3_prepare_v2(db, "SELECT m.dataset_id, m.seq, m.split, m.content_hash, s.content_hash,"
                               " s.purged FROM snapshot_members m LEFT JOIN sequences s"
                               " ON s.dataset_id = m.dataset_id AND s.seq = m.seq"
                               " WHERE m.snapshot_id = ?1 ORDER BY m.ord", -1, &q, NULL))
        return slim__sql_err(st, db, "reading a snapshot");
    sqlite3_bind_int64(q, 1, sid);
    while (!rc && (st_ = sqlite3_step(q)) == SQLITE_ROW) {
        if (slim__grow((void **)&s->m, &cap, s->n + 1, sizeof *s->m)) {
            rc = SLIM_ENOMEM;
            break;
        }
        slim_member *m = &s->m[s->n++];
        m->dataset = sqlite3_column_int64(q, 0);
        m->seq = sqlite3_column_int64(q, 1);
        const char *sp = (const char *)sqlite3_column_text(q, 2);
        m->split = sp && strcmp(sp, "valid") == 0 ? SLIM_SPLIT_VALID : SLIM_SPLIT_TRAIN;
        if (sqlite3_column_bytes(q, 3) != 16) {
            rc = slim__err(st, SLIM_ECORRUPT, "snapshot '%s' member %zu: bad content hash", s->name, s->n - 1);
            break;
        }
        memcpy(m->hash, sqlite3_column_blob(q, 3), 16);
        if (sqlite3_column_type(q, 4) == SQLITE_NULL || sqlite3_column_int(q, 5))
            rc = slim__err(st, SLIM_ECORRUPT, "snapshot '%s': dataset %lld seq %lld is gone", s->name,
                           (long long)m->dataset, (long long)m->seq);
        else if (sqlite3_column_bytes(q, 4) != 16 || memcmp(sqlite3_column_blob(q, 4), m->hash, 16))
            rc = slim__err(st, SLIM_ECORRUPT, "snapshot '%s': dataset %lld seq %lld changed content",
                           s->name, (long long)m->dataset, (long long)m->seq);
    }
    if (!rc && st_ != SQLITE_DONE) rc = slim__sql_err(st, db, "reading a snapshot");
    sqlite3_finalize(q);
    return rc;
}


int slim__snapshot_load(slim_store *st, sqlite3 *db, const char *name, slim_snapshot **out)
{
    slim_snapshot *s = calloc(1, sizeof *s);
    sqlite3_stmt *q = NULL;
    *out = NULL;
    if (!s || !(s->name = strdup(name))) {
        free(s);
        return slim__err(st, SLIM_ENOMEM, "out of memory");
    }
    int rc = 0;
    if (sqlite3_prepare_v2(db, "SELECT id, hash FROM snapshots WHERE name = ?1", -1, &q, NULL)) {
        rc = slim__sql_err(st, db, "reading a snapshot");
        goto fail;
    }
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_ROW) {
        rc = slim__err(st, SLIM_ENOTFOUND, "no such snapshot '%s'", name);
        goto fail;
    }
    int64_t sid = sqlite3_column_int64(q, 0);
    const char *hex = (const char *)sqlite3_column_text(q, 1);
    snprintf(s->hex, sizeof s->hex, "%s", hex ? hex : "");
    if ((rc = load_members(st, db, s, sid))) goto fail;
    char got[65];
    if ((rc = hash_members(s->m, s->n, s->hash))) goto fail;
    to_hex(s->hash, 32, got);
    if (strcmp(got, s->hex)) {
        rc = slim__err(st, SLIM_ECORRUPT, "snapshot '%s': hash %s does not match its members (%s)", name,
                       s->hex, got);
        goto fail;
    }
    sqlite3_finalize(q);
    *out = s;
    return 0;
fail:
    sqlite3_finalize(q);
    slim_snapshot_close(s);
    return rc;
}

int slim_snapshot_open(slim_store *st, const char *name, slim_snapshot **out)
{
    /* a savepoint gives one consistent view, inside a writer's transaction
     * or outside it */
    if (sqlite3_exec(st->db, "SAVEPOINT slim_snapshot_open", NULL, NULL, NULL))
        return slim__sql_err(st, st->db, "reading a snapshot");
    int rc = slim__snapshot_load(st, st->db, name, out);
    sqlite3_exec(st->db, "RELEASE slim_snapshot_open", NULL, NULL, NULL);
    return rc;
}
