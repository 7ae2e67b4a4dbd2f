/*
 * store.c — opening and closing a store, schema migrations, errors, dataset
 * lookups and the small shared helpers of libslim.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store_internal.h"

/* LMDB reserves address space, not disk: 1 TiB is sparse on Linux and lets a
 * store grow without ever resizing the map (resizing needs every process to
 * reopen).  SLIM_MAP_SIZE (bytes) overrides it, e.g. for 32-bit hosts. */
#define SLIM_MAP_SIZE_DEFAULT ((size_t)1 << 40)

const char *slim_strerror(int rc)
{
    switch (rc) {
    case SLIM_OK: return "success";
    case SLIM_ERROR: return "error";
    case SLIM_EIO: return "I/O error";
    case SLIM_ECORRUPT: return "corrupt data";
    case SLIM_ENOTFOUND: return "not found";
    case SLIM_EBUSY: return "store is busy";
    case SLIM_EINVAL: return "invalid argument";
    case SLIM_EVERSION: return "store written by a newer version";
    case SLIM_ENOMEM: return "out of memory";
    case SLIM_EEXIST: return "already exists";
    case SLIM_EMISMATCH: return "metadata mismatch";
    case SLIM_EREADONLY: return "store opened read-only";
    case SLIM_ERANGE: return "buffer too small";
    case SLIM_ENOSTORE: return "not a slim store";
    case SLIM_EINTR: return "interrupted";
    default: return "unknown error";
    }
}

int slim__err(slim_store *st, int rc, const char *fmt, ...)
{
    if (!st) return rc;
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&st->mu);
    vsnprintf(st->err, sizeof st->err, fmt, ap);
    pthread_mutex_unlock(&st->mu);
    va_end(ap);
    return rc;
}

int slim__mdb_err(slim_store *st, int mrc, const char *what)
{
    int rc = SLIM_EIO;
    if (mrc == MDB_NOTFOUND) rc = SLIM_ENOTFOUND;
    else if (mrc == MDB_CORRUPTED || mrc == MDB_PAGE_NOTFOUND || mrc == MDB_INVALID)
        rc = SLIM_ECORRUPT;
    else if (mrc == ENOMEM) rc = SLIM_ENOMEM;
    return slim__err(st, rc, "%s: lmdb: %s", what, mdb_strerror(mrc));
}

int slim__sql_err(slim_store *st, sqlite3 *db, const char *what)
{
    int ec = db ? sqlite3_errcode(db) : SQLITE_ERROR;
    int rc = SLIM_EIO;
    if (ec == SQLITE_CORRUPT || ec == SQLITE_NOTADB) rc = SLIM_ECORRUPT;
    else if (ec == SQLITE_BUSY || ec == SQLITE_LOCKED) rc = SLIM_EBUSY;
    else if (ec == SQLITE_NOMEM) rc = SLIM_ENOMEM;
    else if (ec == SQLITE_READONLY) rc = SLIM_EREADONLY;
    return slim__err(st, rc, "%s: sqlite: %s", what, db ? sqlite3_errmsg(db) : "no handle");
}

const char *slim_errmsg(const slim_store *st)
{
    if (!st) return "out of memory";
    return st->err[0] ? st->err : "no error";
}

const char *slim_store_path(const slim_store *st) { return st->path; }
struct sqlite3 *slim_store_sqlite(slim_store *st) { return st->db; }
int slim_format_version(void) { return slim_schema_version; }
int slim_store_format_version(const slim_store *st) { return st->format_version; }

/* ------------------------------------------------------------ helpers */

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}
static uint64_t get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | p[i];
    return v;
}

void slim__key(uint8_t key[SLIM_KEY_LEN], int64_t dataset, int64_t seq, uint32_t pos)
{
    put_be(key, (uint64_t)dataset, 8);
    put_be(key + 8, (uint64_t)seq, 8);
    put_be(key + 16, pos, 4);
}

void slim__key_parse(const uint8_t *key, int64_t *dataset, int64_t *seq, uint32_t *pos)
{
    *dataset = (int64_t)get_be(key, 8);
    *seq = (int64_t)get_be(key + 8, 8);
    *pos = (uint32_t)get_be(key + 16, 4);
}

const char *slim__key_str(char *buf, size_t cap, const uint8_t *key, size_t len)
{
    if (len != SLIM_KEY_LEN) {
        snprintf(buf, cap, "key of %zu bytes", len);
        return buf;
    }
    int64_t d, s;
    uint32_t p;
    slim__key_parse(key, &d, &s, &p);
    snprintf(buf, cap, "record (dataset %lld, seq %lld, pos %u)", (long long)d,
             (long long)s, p);
    return buf;
}

int slim__grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 256;
    while (n < need) n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q) return SLIM_ENOMEM;
    *p = q;
    *cap = n;
    return 0;
}

const char *slim__kind_name(int kind)
{
    return kind == SLIM_KIND_SAMPLED ? "sampled" : "logits";
}
int slim__kind_parse(const char *s)
{
    if (s && strcmp(s, "sampled") == 0) return SLIM_KIND_SAMPLED;
    if (s && strcmp(s, "logits") == 0) return SLIM_KIND_LOGITS;
    return 0;
}

void slim__now(char buf[32])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int slim__lmdb_gen(slim_store *st, MDB_txn *txn, uint64_t *gen)
{
    MDB_val k = {3, (void *)"gen"}, v;
    int mrc = mdb_get(txn, st->meta_dbi, &k, &v);
    *gen = 0;
    if (mrc == MDB_NOTFOUND) return 0;
    if (mrc) return slim__mdb_err(st, mrc, "reading the generation");
    if (v.mv_size != 8) return slim__err(st, SLIM_ECORRUPT, "lmdb meta 'gen' has %zu bytes", v.mv_size);
    memcpy(gen, v.mv_data, 8);
    return 0;
}

int slim__sql_gen(slim_store *st, sqlite3 *db, uint64_t *gen)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'gen'", -1, &q, NULL))
        return slim__sql_err(st, db, "reading the generation");
    int rc = 0;
    if (sqlite3_step(q) == SQLITE_ROW)
        *gen = (uint64_t)sqlite3_column_int64(q, 0);
    else
        rc = slim__err(st, SLIM_ECORRUPT, "meta.sqlite has no generation row");
    sqlite3_finalize(q);
    return rc;
}

/* ------------------------------------------------------------ precision */

int slim_precision_parse(const char *spec, slim_precision *out)
{
    char *end;
    if (!spec) return SLIM_EINVAL;
    if (strcmp(spec, "lossless") == 0) {
        out->mode = SLIM_PREC_LOSSLESS;
        out->eps = 0;
        return 0;
    }
    int mode;
    const char *rest;
    if (strncmp(spec, "logprob", 7) == 0) mode = SLIM_PREC_LOGPROB, rest = spec + 7;
    else if (strncmp(spec, "prob", 4) == 0) mode = SLIM_PREC_PROB, rest = spec + 4;
    else return SLIM_EINVAL;
    double eps = mode == SLIM_PREC_LOGPROB ? 0.01 : 1e-4;
    if (*rest == ':') {
        errno = 0;
        eps = strtod(rest + 1, &end);
        if (errno || end == rest + 1 || *end || !(eps > 0) || !isfinite(eps)) return SLIM_EINVAL;
        if (mode == SLIM_PREC_PROB && eps >= 1) return SLIM_EINVAL;
    } else if (*rest) {
        return SLIM_EINVAL;
    }
    out->mode = mode;
    out->eps = eps;
    return 0;
}

int slim_precision_format(const slim_precision *p, char *buf, size_t cap)
{
    int n;
    switch (p->mode) {
    case SLIM_PREC_LOSSLESS: n = snprintf(buf, cap, "lossless"); break;
    case SLIM_PREC_LOGPROB: n = snprintf(buf, cap, "logprob:%g", p->eps); break;
    case SLIM_PREC_PROB: n = snprintf(buf, cap, "prob:%g", p->eps); break;
    default: return SLIM_EINVAL;
    }
    return n < 0 || (size_t)n >= cap ? SLIM_ERANGE : 0;
}

/* ------------------------------------------------------------ open/close */

static int exec_sql(slim_store *st, const char *sql, const char *what)
{
    char *msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = slim__err(st, SLIM_EIO, "%s: sqlite: %s", what, msg ? msg : "?");
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

static int user_version(sqlite3 *db, int *v)
{
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL);
    if (rc == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW) *v = sqlite3_column_int(q, 0);
    else rc = SQLITE_ERROR;
    sqlite3_finalize(q);
    return rc;
}

static int newer_err(slim_store *st, int v)
{
    return slim__err(st, SLIM_EVERSION,
                     "store '%s' has format version %d, newer than this slim's %d; "
                     "upgrade slim (the store was left untouched)",
                     st->path, v, slim_schema_version);
}

/* For a read-write open: reads the version with a read-only connection so
 * that a store from a newer slim is refused before anything (even a -wal
 * file) is created. */
static int check_version_untouched(slim_store *st, const char *dbpath)
{
    sqlite3 *db = NULL;
    int v = 0;
    int orc = sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL);
    /* Another process may be opening the same WAL database (rebuilding its
     * -shm index) this very moment: wait as every other connection does. */
    if (orc == SQLITE_OK) sqlite3_busy_timeout(db, 60000);
    if (orc != SQLITE_OK || user_version(db, &v) != SQLITE_OK) {
        int ec = db ? sqlite3_errcode(db) : SQLITE_CANTOPEN;
        int rc = slim__err(st, SLIM_ENOSTORE, "'%s' is not a slim store: %s", st->path,
                           db ? sqlite3_errmsg(db) : "cannot open meta.sqlite");
        sqlite3_close(db);
        /* A read-only connection cannot recover a WAL left by a killed
         * process (SQLITE_READONLY_*): the read-write open that called this
         * can, and checks the version again inside its migration
         * transaction. */
        return (ec & 0xff) != SQLITE_NOTADB ? 0 : rc;
    }
    sqlite3_close(db);
    return v > slim_schema_version ? newer_err(st, v) : 0;
}

static int migrate(slim_store *st)
{
    int v = 0, rc;
    /* The usual case needs no write lock: a long writer batch elsewhere
     * must not stall every other open for its whole duration. */
    if (user_version(st->db, &v) == SQLITE_OK && v == slim_schema_version) {
        st->format_version = v;
        return 0;
    }
    if ((rc = exec_sql(st, "BEGIN IMMEDIATE", "starting the schema migration"))) return rc;
    if (user_version(st->db, &v) != SQLITE_OK) {
        rc = slim__sql_err(st, st->db, "reading the schema version");
        goto fail;
    }
    if (v > slim_schema_version) {  /* raced with a newer slim */
        rc = slim__err(st, SLIM_EVERSION, "store '%s' has format version %d, newer than %d",
                       st->path, v, slim_schema_version);
        goto fail;
    }
    for (int i = v; i < slim_schema_version; i++) {
        char what[64], pragma[64];
        snprintf(what, sizeof what, "applying schema migration %d", i + 1);
        if ((rc = exec_sql(st, slim_schema_migrations[i], what))) goto fail;
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", i + 1);
        if ((rc = exec_sql(st, pragma, what))) goto fail;
    }
    if ((rc = exec_sql(st, "COMMIT", "committing the schema migration"))) goto fail;
    st->format_version = slim_schema_version;
    return 0;
fail:
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int open_sqlite(slim_store *st, const char *dbpath, int create)
{
    int fl = (st->flags & SLIM_OPEN_RDONLY) ? SQLITE_OPEN_READONLY
                                           : SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(dbpath, &st->db, fl | SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK)
        return slim__sql_err(st, st->db, "opening meta.sqlite");
    sqlite3_busy_timeout(st->db, 60000);
    int rc;
    if (!(st->flags & SLIM_OPEN_RDONLY)) {
        /* FULL: the metadata commit is the point of acknowledgement, and a
         * deletion's commit must be durable before its records are freed. */
        if ((rc = exec_sql(st, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL",
                           "setting WAL mode")))
            return rc;
        if ((rc = migrate(st))) return rc;
    } else {
        if (user_version(st->db, &st->format_version) != SQLITE_OK)
            return slim__err(st, SLIM_ENOSTORE, "'%s' is not a slim store: %s", st->path,
                             sqlite3_errmsg(st->db));
        if (st->format_version > slim_schema_version) return newer_err(st, st->format_version);
        if (st->format_version < slim_schema_version)
            return slim__err(st, SLIM_EVERSION,
                             "store '%s' has format version %d and needs migrating to %d; "
                             "open it once read-write",
                             st->path, st->format_version, slim_schema_version);
    }
    return 0;
}

/* Opens the two named databases; creates them (and the format key) only
 * when they are missing, so that opening never waits on another writer. */
static int open_lmdb_dbis(slim_store *st)
{
    MDB_txn *txn;
    int mrc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
    if (mrc) return slim__mdb_err(st, mrc, "opening logits/");
    int m1 = mdb_dbi_open(txn, "records", 0, &st->rec_dbi);
    int m2 = mdb_dbi_open(txn, "meta", 0, &st->meta_dbi);
    MDB_val k = {6, (void *)"format"}, v;
    int m3 = (m1 || m2) ? MDB_NOTFOUND : mdb_get(txn, st->meta_dbi, &k, &v);
    uint32_t fmt = 0;
    if (!m3 && v.mv_size == 4) memcpy(&fmt, v.mv_data, 4);
    mdb_txn_commit(txn);
    if (!m1 && !m2 && !m3) {
        if (fmt > SLIM_LMDB_FORMAT)
            return slim__err(st, SLIM_EVERSION, "store '%s': record layout %u is newer than %d",
                             st->path, fmt, SLIM_LMDB_FORMAT);
        return 0;
    }
    if (st->flags & SLIM_OPEN_RDONLY)
        return slim__err(st, SLIM_ENOSTORE, "'%s' is not a slim store: logits/ is not initialised",
                         st->path);
    if ((mrc = mdb_txn_begin(st->env, NULL, 0, &txn))) return slim__mdb_err(st, mrc, "initialising logits/");
    if ((mrc = mdb_dbi_open(txn, "records", MDB_CREATE, &st->rec_dbi)) ||
        (mrc = mdb_dbi_open(txn, "meta", MDB_CREATE, &st->meta_dbi))) {
        mdb_txn_abort(txn);
        return slim__mdb_err(st, mrc, "initialising logits/");
    }
    fmt = SLIM_LMDB_FORMAT;
    v.mv_size = 4;
    v.mv_data = &fmt;
    if ((mrc = mdb_put(txn, st->meta_dbi, &k, &v, MDB_NOOVERWRITE)) && mrc != MDB_KEYEXIST) {
        mdb_txn_abort(txn);
        return slim__mdb_err(st, mrc, "initialising logits/");
    }
    if ((mrc = mdb_txn_commit(txn))) return slim__mdb_err(st, mrc, "initialising logits/");
    return 0;
}

/* One MDB_env per LMDB directory per process, shared by every store handle
 * on it: LMDB must not be opened twice in one process (closing one env
 * drops the fcntl locks the other relies on; see lmdb.h, "Caveats").
 * Entries remember the pid, so a child after fork() never uses its
 * parent's env (LMDB envs do not survive fork). */
typedef struct env_ref {
    dev_t dev;
    ino_t ino;
    pid_t pid;
    MDB_env *env;
    MDB_dbi rec, meta;
    int refs;
    struct env_ref *next;
} env_ref;
static pthread_mutex_t env_mu = PTHREAD_MUTEX_INITIALIZER;
static env_ref *env_list;

static int env_new(slim_store *st, const char *p, const char *dir)
{
    int mrc = mdb_env_create(&st->env);
    if (mrc) return slim__mdb_err(st, mrc, "creating the lmdb environment");
    size_t map = SLIM_MAP_SIZE_DEFAULT;
    const char *e = getenv("SLIM_MAP_SIZE");
    if (e && *e) map = (size_t)strtoull(e, NULL, 10);
    mdb_env_set_mapsize(st->env, map);
    mdb_env_set_maxdbs(st->env, 4);
    mdb_env_set_maxreaders(st->env, 1022);
    /* NOTLS: a slim_reader's read txn is not tied to a thread's slot, and a
     * thread may hold a reader while it is the writer.  The env is opened
     * read-write whenever the directory allows it, even for a read-only
     * handle, because a later read-write handle in this process shares it;
     * slim itself never writes through a read-only handle. */
    unsigned fl = MDB_NOTLS | (access(p, W_OK) != 0 ? MDB_RDONLY : 0);
    if ((mrc = mdb_env_open(st->env, p, fl, 0666))) {
        if (mrc == ENOENT)
            return slim__err(st, SLIM_ENOSTORE, "'%s' is not a slim store: no logits/", dir);
        return slim__err(st, SLIM_EIO, "cannot open '%s': %s", p, mdb_strerror(mrc));
    }
    return open_lmdb_dbis(st);
}

static int open_lmdb(slim_store *st, const char *dir)
{
    char p[4096];
    struct stat sb;
    snprintf(p, sizeof p, "%s/logits", dir);
    if (!(st->flags & SLIM_OPEN_RDONLY) && mkdir(p, 0777) && errno != EEXIST)
        return slim__err(st, SLIM_EIO, "cannot create '%s': %s", p, strerror(errno));
    if (stat(p, &sb) != 0)
        return slim__err(st, SLIM_ENOSTORE, "'%s' is not a slim store: no logits/", dir);
    pthread_mutex_lock(&env_mu);
    env_ref *r;
    for (r = env_list; r; r = r->next)
        if (r->dev == sb.st_dev && r->ino == sb.st_ino && r->pid == getpid()) break;
    int rc = 0;
    if (r) {
        r->refs++;
        st->env = r->env;
        st->rec_dbi = r->rec;
        st->meta_dbi = r->meta;
    } else if (!(r = calloc(1, sizeof *r))) {
        rc = slim__err(st, SLIM_ENOMEM, "out of memory");
    } else if ((rc = env_new(st, p, dir))) {
        free(r);
        if (st->env) mdb_env_close(st->env);
        st->env = NULL;
    } else {
        *r = (env_ref){sb.st_dev, sb.st_ino, getpid(), st->env, st->rec_dbi, st->meta_dbi, 1, env_list};
        env_list = r;
    }
    pthread_mutex_unlock(&env_mu);
    return rc;
}

static void env_release(MDB_env *env)
{
    pthread_mutex_lock(&env_mu);
    for (env_ref **pp = &env_list; *pp; pp = &(*pp)->next) {
        env_ref *r = *pp;
        if (r->env != env || r->pid != getpid()) continue;
        if (--r->refs == 0) {
            *pp = r->next;
            mdb_env_close(r->env);
            free(r);
        }
        break;
    }
    pthread_mutex_unlock(&env_mu);
}

static int open_dir(slim_store *st, const char *dir, unsigned flags)
{
    char dbpath[4096], lockpath[4096];
    struct stat sb;
    int create = (flags & SLIM_OPEN_CREATE) && !(flags & SLIM_OPEN_RDONLY);
    snprintf(dbpath, sizeof dbpath, "%s/meta.sqlite", dir);
    snprintf(lockpath, sizeof lockpath, "%s/lock", dir);
    if (stat(dir, &sb) != 0) {
        if (!create || errno != ENOENT)
            return slim__err(st, errno == ENOENT ? SLIM_ENOSTORE : SLIM_EIO, "cannot open '%s': %s",
                             dir, strerror(errno));
        if (mkdir(dir, 0777) && errno != EEXIST)
            return slim__err(st, SLIM_EIO, "cannot create '%s': %s", dir, strerror(errno));
    } else if (!S_ISDIR(sb.st_mode)) {
        return slim__err(st, SLIM_ENOSTORE, "'%s' is not a slim store: not a directory", dir);
    }
    int exists = stat(dbpath, &sb) == 0;
    if (!exists && !create)
        return slim__err(st, SLIM_ENOSTORE, "'%s' is not a slim store (no meta.sqlite)", dir);
    int rc;
    /* A read-only handle's own connection is read-only and checks the
     * version itself (open_sqlite): the extra connection is only for opens
     * that could write. */
    if (exists && !(flags & SLIM_OPEN_RDONLY) && (rc = check_version_untouched(st, dbpath))) return rc;
    if (!(flags & SLIM_OPEN_RDONLY)) {
        st->lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (st->lockfd < 0)
            return slim__err(st, SLIM_EIO, "cannot open '%s': %s", lockpath, strerror(errno));
    }
    if ((rc = open_sqlite(st, dbpath, create))) return rc;
    return open_lmdb(st, dir);
}

int slim_store_open(slim_store **out, const char *dir, unsigned flags)
{
    slim_store *st = calloc(1, sizeof *st);
    *out = st;
    if (!st) return SLIM_ENOMEM;
    pthread_mutex_init(&st->mu, NULL);
    st->lockfd = -1;
    st->flags = flags;
    st->path = strdup(dir ? dir : "");
    if (!st->path) return SLIM_ENOMEM;
    if (!dir || !*dir) return slim__err(st, SLIM_EINVAL, "no store directory given");
    int rc = open_dir(st, dir, flags);
    if (rc) {  /* keep only the message, as the contract says */
        if (st->db) sqlite3_close(st->db);
        st->db = NULL;
        if (st->env) env_release(st->env);
        st->env = NULL;
        if (st->lockfd >= 0) close(st->lockfd);
        st->lockfd = -1;
    }
    return rc;
}

void slim_store_close(slim_store *st)
{
    if (!st) return;
    if (st->writer) slim_write_abort(st->writer);
    if (st->db) sqlite3_close_v2(st->db);
    if (st->env) env_release(st->env);
    if (st->lockfd >= 0) close(st->lockfd);
    free(st->ds_name);
    free(st->ds_teacher);
    free(st->ds_sparsifier);
    free(st->ds_tokhash);
    free(st->path);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

static int64_t file_size(const char *dir, const char *name)
{
    char p[4096];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

int slim_store_file_bytes(slim_store *st, int64_t *bytes)
{
    *bytes = file_size(st->path, "logits/data.mdb") + file_size(st->path, "meta.sqlite") +
             file_size(st->path, "meta.sqlite-wal");
    return 0;
}

/* ------------------------------------------------------------ datasets */

static char *dup_col(sqlite3_stmt *q, int i)
{
    const unsigned char *s = sqlite3_column_text(q, i);
    return s ? strdup((const char *)s) : NULL;
}

static const char DS_SELECT[] =
    "SELECT d.id, d.name, d.teacher_id, t.name, t.vocab_size, t.tokenizer_hash,"
    " t.temperature, t.source, d.kind, d.sparsifier, d.precision, d.sequences,"
    " d.positions, d.entries, d.record_bytes, d.next_seq"
    " FROM datasets d JOIN teachers t ON t.id = d.teacher_id ";

static int dataset_fill(slim_store *st, sqlite3_stmt *q, slim_dataset_info *o)
{
    free(st->ds_name);
    free(st->ds_teacher);
    free(st->ds_sparsifier);
    free(st->ds_tokhash);
    st->ds_name = dup_col(q, 1);
    st->ds_teacher = dup_col(q, 3);
    st->ds_tokhash = dup_col(q, 5);
    st->ds_sparsifier = dup_col(q, 9);
    memset(o, 0, sizeof *o);
    o->id = sqlite3_column_int64(q, 0);
    o->name = st->ds_name;
    o->teacher_id = sqlite3_column_int64(q, 2);
    o->teacher.name = st->ds_teacher;
    o->teacher.vocab_size = (uint32_t)sqlite3_column_int64(q, 4);
    o->teacher.tokenizer_hash = st->ds_tokhash;
    o->teacher.temperature = sqlite3_column_double(q, 6);
    const char *src = (const char *)sqlite3_column_text(q, 7);
    o->teacher.source = src && strcmp(src, "logprobs") == 0 ? SLIM_SOURCE_LOGPROBS : SLIM_SOURCE_LOGITS;
    o->kind = slim__kind_parse((const char *)sqlite3_column_text(q, 8));
    o->sparsifier = st->ds_sparsifier;
    const char *prec = (const char *)sqlite3_column_text(q, 10);
    if (!o->kind || slim_precision_parse(prec, &o->precision))
        return slim__err(st, SLIM_ECORRUPT, "dataset '%s': bad kind or precision in metadata",
                         st->ds_name ? st->ds_name : "?");
    o->sequences = sqlite3_column_int64(q, 11);
    o->positions = sqlite3_column_int64(q, 12);
    o->entries = sqlite3_column_int64(q, 13);
    o->record_bytes = sqlite3_column_int64(q, 14);
    o->next_seq = sqlite3_column_int64(q, 15);
    if (!st->ds_name || !st->ds_teacher || !st->ds_sparsifier) return SLIM_ENOMEM;
    return 0;
}

static int dataset_query(slim_store *st, const char *where, const char *name, int64_t n,
                         slim_dataset_info *out)
{
    char sql[1024];
    sqlite3_stmt *q = NULL;
    snprintf(sql, sizeof sql, "%s%s", DS_SELECT, where);
    if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL)) return slim__sql_err(st, st->db, "reading datasets");
    if (name) sqlite3_bind_text(q, 1, name, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_int64(q, 1, n);
    int rc, s = sqlite3_step(q);
    if (s == SQLITE_ROW) rc = dataset_fill(st, q, out);
    else if (s == SQLITE_DONE)
        rc = name ? slim__err(st, SLIM_ENOTFOUND, "no such dataset '%s'", name)
                  : slim__err(st, SLIM_ENOTFOUND, "no dataset number %lld", (long long)n);
    else rc = slim__sql_err(st, st->db, "reading datasets");
    sqlite3_finalize(q);
    return rc;
}

int slim_dataset_get(slim_store *st, const char *name, slim_dataset_info *out)
{
    return dataset_query(st, "WHERE d.name = ?1", name, 0, out);
}

int slim_dataset_at(slim_store *st, int i, slim_dataset_info *out)
{
    return dataset_query(st, "ORDER BY d.id LIMIT 1 OFFSET ?1", NULL, i, out);
}

int slim_dataset_count(slim_store *st, int *n)
{
    sqlite3_stmt *q = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(st->db, "SELECT count(*) FROM datasets", -1, &q, NULL))
        return slim__sql_err(st, st->db, "counting datasets");
    int rc = 0;
    if (sqlite3_step(q) == SQLITE_ROW) *n = sqlite3_column_int(q, 0);
    else rc = slim__sql_err(st, st->db, "counting datasets");
    sqlite3_finalize(q);
    return rc;
}
