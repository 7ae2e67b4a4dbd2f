/*
 * report.c — `slim-query show D SEQ` and `slim-query stats D`
 * (docs/QUERY.md shows both with real output).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

static int sql_fail(sqlite3 *db, char **err)
{
    *err = sqlite3_mprintf("%s", sqlite3_errmsg(db));
    return -1;
}

/* 0 when the dataset (and, with seq >= 0, the sequence) exists. */
static int check_exists(sqlite3 *db, const char *dataset, int64_t seq,
                        char **err)
{
    sqlite3_stmt *s;
    const char *sql = seq < 0 ? "SELECT 1 FROM datasets WHERE name = ?1"
                              : "SELECT (SELECT 1 FROM datasets WHERE name = ?1),"
                                " (SELECT 1 FROM seqs WHERE dataset = ?1 AND seq = ?2)";
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL)) return sql_fail(db, err);
    sqlite3_bind_text(s, 1, dataset, -1, SQLITE_STATIC);
    if (seq >= 0) sqlite3_bind_int64(s, 2, seq);
    int rc = sqlite3_step(s);
    int ds = rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL;
    int sq = rc == SQLITE_ROW && seq >= 0 && sqlite3_column_type(s, 1) != SQLITE_NULL;
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return sql_fail(db, err);
    if (!ds) *err = sqlite3_mprintf("no such dataset '%s'", dataset);
    else if (seq >= 0 && !sq)
        *err = sqlite3_mprintf("no sequence %lld in dataset '%s'", (long long)seq, dataset);
    return ds && (seq < 0 || sq) ? 0 : -1;
}

/* One row per position: the actual next token, the teacher's probability
 * and rank of it, entropy, and the three most probable alternatives (their
 * piece, or #id without a vocabulary). */
static const char *const SHOW_SQL =
    "WITH a AS (SELECT pos, rank, coalesce(piece, '#' || token) AS alt,"
    "  exp(logprob) AS p FROM topk WHERE dataset = ?1 AND seq = ?2 AND rank <= 3)"
    " SELECT p.pos, p.token, piece(p.dataset, p.token) AS piece,"
    "  exp(p.token_logprob) AS prob, p.token_rank AS rank, p.entropy,"
    "  a1.alt AS top1, a1.p AS p1, a2.alt AS top2, a2.p AS p2,"
    "  a3.alt AS top3, a3.p AS p3"
    " FROM positions p"
    " LEFT JOIN a a1 ON a1.pos = p.pos AND a1.rank = 1"
    " LEFT JOIN a a2 ON a2.pos = p.pos AND a2.rank = 2"
    " LEFT JOIN a a3 ON a3.pos = p.pos AND a3.rank = 3"
    " WHERE p.dataset = ?1 AND p.seq = ?2 ORDER BY p.pos";

int qreport_show(sqlite3 *db, qout *o, const char *dataset, int64_t seq,
                 char **err)
{
    if (check_exists(db, dataset, seq, err)) return -1;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, SHOW_SQL, -1, &s, NULL)) return sql_fail(db, err);
    sqlite3_bind_text(s, 1, dataset, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, seq);
    int rc = qout_stmt(o, s);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? 0 : sql_fail(db, err);
}

/* A growing array of doubles, sorted for percentiles. */
typedef struct vec {
    double *v;
    size_t n, cap;
    double sum;
} vec;

static int vec_push(vec *a, double x)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 4096;
        double *p = realloc(a->v, cap * sizeof *p);
        if (!p) return -1;
        a->v = p;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    a->sum += x;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Linear interpolation between the closest ranks (numpy's default). */
static double pctl(const vec *a, double q)
{
    double at = q * (double)(a->n - 1);
    size_t i = (size_t)at;
    if (i + 1 >= a->n) return a->v[a->n - 1];
    return a->v[i] + (at - (double)i) * (a->v[i + 1] - a->v[i]);
}

static int emit(qout *o, const char *metric, int is_count, double count,
                const vec *a)
{
    qcell c[5];
    memset(c, 0, sizeof c);
    for (int i = 0; i < 5; i++) c[i].type = SQLITE_NULL;
    c[0] = (qcell){ .type = SQLITE_TEXT, .s = metric, .n = (int)strlen(metric) };
    if (is_count) {
        c[1] = (qcell){ .type = SQLITE_INTEGER, .i = (int64_t)count };
    } else if (a && a->n) {
        qsort(a->v, a->n, sizeof *a->v, cmp_double);
        c[1] = (qcell){ .type = SQLITE_FLOAT, .d = a->sum / (double)a->n };
        c[2] = (qcell){ .type = SQLITE_FLOAT, .d = pctl(a, 0.1) };
        c[3] = (qcell){ .type = SQLITE_FLOAT, .d = pctl(a, 0.5) };
        c[4] = (qcell){ .type = SQLITE_FLOAT, .d = pctl(a, 0.9) };
    } else if (!a && !isnan(count)) {
        c[1] = (qcell){ .type = SQLITE_FLOAT, .d = count };
    }
    return qout_row(o, c);
}

static int stats_counts(sqlite3 *db, qout *o, const char *dataset, char **err)
{
    static const char *const names[] = { "sequences", "positions", "entries",
                                         "record_bytes" };
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, "SELECT sequences, positions, entries, record_bytes"
                           " FROM datasets WHERE name = ?1", -1, &s, NULL))
        return sql_fail(db, err);
    sqlite3_bind_text(s, 1, dataset, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    double v[4] = { 0 };
    for (int i = 0; i < 4 && rc == SQLITE_ROW; i++) v[i] = (double)sqlite3_column_int64(s, i);
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW) return sql_fail(db, err);
    for (int i = 0; i < 4; i++)
        if (emit(o, names[i], 1, v[i], NULL)) return -1;
    return emit(o, "bytes_per_position", 0, v[1] > 0 ? v[3] / v[1] : 0, NULL);
}

int qreport_stats(sqlite3 *db, qout *o, const char *dataset, char **err)
{
    static const char *const cols[] = { "metric", "value", "p10", "p50", "p90" };
    *err = NULL;
    if (check_exists(db, dataset, -1, err)) return -1;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, "SELECT k, entropy, tail_mass, token, token_rank"
                           " FROM positions WHERE dataset = ?1", -1, &s, NULL))
        return sql_fail(db, err);
    sqlite3_bind_text(s, 1, dataset, -1, SQLITE_STATIC);
    vec k = { 0 }, ent = { 0 }, tail = { 0 }, rank = { 0 };
    double with_token = 0, in_k = 0;
    int rc, bad = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && !bad) {
        bad |= vec_push(&k, sqlite3_column_double(s, 0));
        bad |= vec_push(&ent, sqlite3_column_double(s, 1));
        if (sqlite3_column_type(s, 2) != SQLITE_NULL)
            bad |= vec_push(&tail, sqlite3_column_double(s, 2));
        if (sqlite3_column_type(s, 3) != SQLITE_NULL) with_token++;
        if (sqlite3_column_type(s, 4) != SQLITE_NULL) {
            in_k++;
            bad |= vec_push(&rank, sqlite3_column_double(s, 4));
        }
    }
    int ret = -1;
    if (bad) *err = sqlite3_mprintf("out of memory");
    else if (rc != SQLITE_DONE) sql_fail(db, err);
    else if (qout_begin(o, 5, cols) || stats_counts(db, o, dataset, err) ||
             emit(o, "k", 0, 0, &k) || emit(o, "entropy", 0, 0, &ent) ||
             emit(o, "tail_mass", 0, 0, &tail) ||
             emit(o, "token_in_k", 0, with_token > 0 ? in_k / with_token : NAN, NULL) ||
             emit(o, "token_rank", 0, 0, &rank))
        ;
    else ret = 0;
    if (ret == 0) qout_end(o);
    else if (!*err) *err = sqlite3_mprintf("out of memory");
    sqlite3_finalize(s);
    free(k.v);
    free(ent.v);
    free(tail.v);
    free(rank.v);
    return ret;
}
