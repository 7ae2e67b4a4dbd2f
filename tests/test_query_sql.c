/*
 * test_query_sql.c — the SQL layer of slim-query over a small deterministic
 * fixture store: every column of positions/topk against the library's own
 * decode (recomputed here independently), pushdown (record counts), range
 * bounds against unpushed filtering, joins with metadata, the functions,
 * errors (unknown dataset, corrupt record).
 *
 *   test_query_sql             run the cases (in $SLIM_TMP or a temp dir)
 *   test_query_sql --fixture D   only build the fixture store in D (CLI tests)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>
#include <sqlite3.h>

#include "../query/query.h"
#include "lib/tap.h"
#include "slim.h"

#define V 500
#define K 12

/* ------------------------------------------------------------- fixture */

static uint64_t rng = 0x5eed;
static uint32_t rnd(uint32_t n)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)((rng >> 33) % n);
}
static double unif(void) { return rnd(1u << 30) / (double)(1u << 30); }

/* Distinct ids; with probability 3/4 the actual next token is among them. */
static void make_dist(slim_dist *d, uint32_t *ids, float *vals, uint32_t next,
                      int kind, int nolse)
{
    uint32_t k = 4 + rnd(K - 3);
    for (uint32_t j = 0; j < k; j++) {
        uint32_t id;
        int dup;
        do {
            id = j == 0 && next < V && rnd(4) ? next : rnd(V);
            dup = 0;
            for (uint32_t i = 0; i < j; i++) dup |= ids[i] == id;
        } while (dup);
        ids[j] = id;
        vals[j] = (float)(unif() * 10 - 5);
    }
    d->k = k;
    d->ids = ids;
    d->vals = vals;
    d->n_samples = 0;
    if (kind == SLIM_KIND_SAMPLED) {
        uint32_t left = 64;
        for (uint32_t j = 0; j < k; j++) {
            uint32_t c = j + 1 == k ? left : 1 + rnd(left - (k - j - 1));
            if (c > left - (k - j - 1)) c = left - (k - j - 1);
            vals[j] = (float)c;
            left -= c;
        }
        d->n_samples = 64;
        d->lse = 0;
        return;
    }
    double m = -INFINITY, s = 0;
    for (uint32_t j = 0; j < k; j++) m = fmax(m, vals[j]);
    for (uint32_t j = 0; j < k; j++) s += exp(vals[j] - m);
    d->lse = nolse ? NAN : (float)(m + log(s) + log(1 + 0.3 * unif()));
}

static int add_dataset(slim_writer *w, const char *name, const slim_teacher *t,
                       int kind, const char *sp, int nseq, int nolse,
                       uint32_t tok_seed, int64_t *id)
{
    slim_precision prec = { SLIM_PREC_LOSSLESS, 0 };
    int64_t run;
    int rc = slim_write_dataset(w, name, t, kind, sp, &prec, id);
    if (!rc) rc = slim_write_run_begin(w, *id, "test_query", "[]", &run);
    uint32_t tokens[200], ids[200 * K];
    float vals[200 * K];
    slim_dist dists[200];
    for (int s = 0; !rc && s < nseq; s++) {
        uint32_t T = 20 + 7 * (uint32_t)s, npos = s % 2 ? T - 1 : T;
        uint64_t save = rng;
        rng = tok_seed + (uint64_t)s;  /* same tokens for the same seed */
        for (uint32_t i = 0; i < T; i++) tokens[i] = rnd(V);
        rng = save ^ (uint64_t)s;
        for (uint32_t i = 0; i < npos; i++)
            make_dist(&dists[i], ids + i * K, vals + i * K,
                      i + 1 < T ? tokens[i + 1] : V, kind, nolse);
        char ext[32];
        snprintf(ext, sizeof ext, "%s-%d", name, s);
        int64_t seq;
        rc = slim_write_seq(w, *id, run, ext, tokens, T, dists, npos, NULL, &seq);
    }
    if (!rc) rc = slim_write_run_end(w, run, "ok", nseq, 0, 0);
    return rc;
}

static int make_fixture(const char *dir)
{
    slim_store *st = NULL;
    slim_writer *w = NULL;
    int rc = slim_store_open(&st, dir, SLIM_OPEN_CREATE);
    if (!rc) rc = slim_write_begin(st, &w);
    slim_teacher t1 = { "toy", V, NULL, 1.0, SLIM_SOURCE_LOGITS };
    slim_teacher t2 = { "toy-sparse", V, NULL, 1.0, SLIM_SOURCE_LOGITS };
    int64_t id;
    if (!rc) rc = add_dataset(w, "web", &t1, SLIM_KIND_LOGITS, "topk:12", 12, 0, 1000, &id);
    if (!rc) {
        static char buf[V][16];
        const char *pieces[V];
        uint32_t vid[V];
        for (uint32_t i = 0; i < V; i++) {
            /* a few pieces with bytes that need escaping in CSV/JSON/tables */
            snprintf(buf[i], sizeof buf[i], i == 7 ? "a,\"b\"" : i == 8 ? "\n" : " w%u", i);
            pieces[i] = buf[i];
            vid[i] = i;
        }
        rc = slim_write_vocab(w, id, V, vid, pieces, NULL);
    }
    if (!rc) rc = add_dataset(w, "web2", &t1, SLIM_KIND_LOGITS, "topk:12", 4, 0, 1000, &id);
    if (!rc) rc = add_dataset(w, "nolse", &t2, SLIM_KIND_LOGITS, "topk:12", 3, 1, 3000, &id);
    if (!rc) rc = add_dataset(w, "samp", &t1, SLIM_KIND_SAMPLED, "sample:64", 4, 0, 4000, &id);
    if (rc) {
        fprintf(stderr, "fixture: %s\n", st ? slim_errmsg(st) : slim_strerror(rc));
        slim_write_abort(w);
    } else if ((rc = slim_write_commit(w))) {
        fprintf(stderr, "fixture commit: %s\n", slim_errmsg(st));
    }
    slim_store_close(st);
    return rc;
}

/* ------------------------------------------------------------- helpers */

typedef struct env {
    slim_store *st;      /* the store the SQL layer reads */
    sqlite3 *db;
    slimq *q;
    slim_store *st2;     /* a second handle: the reference decode */
    slim_reader *rd;
} env;

static sqlite3_stmt *prep(env *e, const char *sql)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(e->db, sql, -1, &s, NULL)) {
        printf("# prepare failed: %s: %s\n", sql, sqlite3_errmsg(e->db));
        return NULL;
    }
    return s;
}

/* The first column of the first row as int64 (-1 on error / no row). */
static int64_t scalar(env *e, const char *sql)
{
    sqlite3_stmt *s = prep(e, sql);
    int64_t v = -1;
    if (s && sqlite3_step(s) == SQLITE_ROW) v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

typedef struct ref {
    slim_dist d;
    uint32_t ids[K], tok[400], T;
    float vals[K];
    int kind;
    int64_t dsid;
} ref;

static int ref_read(env *e, const char *ds, int64_t seq, uint32_t pos, ref *r)
{
    slim_dataset_info info;
    int rc = slim_dataset_get(e->st2, ds, &info);
    if (rc) return rc;
    r->dsid = info.id;
    r->kind = info.kind;
    rc = slim_read_tokens(e->rd, info.id, seq, r->tok, 400, &r->T);
    if (!rc) rc = slim_read_positions(e->rd, info.id, seq, pos, 1, &r->d, r->ids, r->vals, K,
                                      NULL, 0);
    return rc;
}

/* Independent of query/pstats.c: p_j, tail and entropy straight from the
 * definitions in docs/QUERY.md. */
static double ref_lp(const ref *r, uint32_t j)
{
    const slim_dist *d = &r->d;
    if (r->kind == SLIM_KIND_SAMPLED) return log(d->vals[j] / (double)d->n_samples);
    if (!isnan(d->lse)) return d->vals[j] - (double)d->lse;
    double z = 0;
    for (uint32_t i = 0; i < d->k; i++) z += exp(d->vals[i]);
    return d->vals[j] - log(z);
}

static void ref_entropy(const ref *r, double *h, double *tail)
{
    double s = 0;
    *h = 0;
    for (uint32_t j = 0; j < r->d.k; j++) {
        double p = exp(ref_lp(r, j));
        s += p;
        *h -= p * log(p);
    }
    *tail = 1 - s;
    if (*tail > 1e-12) *h -= *tail * log(*tail);
}

static int close_to(double a, double b) { return fabs(a - b) <= 1e-9 * (1 + fabs(b)); }
/* entropy and tail_mass are the library's float-rounded statistics
 * (slim_dist_pstat): a float, within float rounding of the double value. */
static int float_close_to(double a, double b)
{
    return (double)(float)a == a && fabs(a - b) <= 1e-6 * (1 + fabs(b));
}

static const char *const DSETS[] = { "web", "web2", "nolse", "samp" };
static const int NSEQ[] = { 12, 4, 3, 4 };
#define NPOS(s) (s % 2 ? 19 + 7 * (s) : 20 + 7 * (s))

/* ------------------------------------------------------------- cases */

static void check_positions_row(env *e, const char *ds, int seq, uint32_t pos)
{
    ref r;
    int rc = ref_read(e, ds, seq, pos, &r);
    CHECK(rc == 0, "reference read %s/%d/%u: %s", ds, seq, pos, slim_errmsg(e->st2));
    if (rc) return;
    char *sql = sqlite3_mprintf("SELECT * FROM positions WHERE dataset = %Q AND seq = %d"
                                " AND pos = %u", ds, seq, pos);
    sqlite3_stmt *s = prep(e, sql);
    sqlite3_free(sql);
    CHECK(s && sqlite3_step(s) == SQLITE_ROW, "%s/%d/%u: no row", ds, seq, pos);
    if (!s) return;
    const slim_dist *d = &r.d;
    int has_tok = pos + 1 < r.T;
    int j = -1;
    for (uint32_t i = 0; has_tok && i < d->k; i++)
        if (d->ids[i] == r.tok[pos + 1]) j = (int)i;
    double h, tail;
    ref_entropy(&r, &h, &tail);
    CHECK(!strcmp((const char *)sqlite3_column_text(s, 0), ds), "dataset");
    CHECK(sqlite3_column_int64(s, 1) == seq && sqlite3_column_int64(s, 2) == pos, "seq/pos");
    CHECK(has_tok ? sqlite3_column_int64(s, 3) == r.tok[pos + 1]
                  : sqlite3_column_type(s, 3) == SQLITE_NULL, "token at %u", pos);
    CHECK(sqlite3_column_int64(s, 4) == d->k, "k");
    CHECK(float_close_to(sqlite3_column_double(s, 5), h), "entropy %.17g vs %.17g",
          sqlite3_column_double(s, 5), h);
    if (r.kind == SLIM_KIND_LOGITS && isnan(d->lse))
        CHECK(sqlite3_column_type(s, 6) == SQLITE_NULL, "tail_mass NULL without lse");
    else
        CHECK(float_close_to(sqlite3_column_double(s, 6), fmax(tail, 0)), "tail %.17g vs %.17g",
              sqlite3_column_double(s, 6), tail);
    CHECK(sqlite3_column_int64(s, 7) == d->ids[0], "top1");
    CHECK(close_to(sqlite3_column_double(s, 8), ref_lp(&r, 0)), "top1_logprob");
    if (j < 0) {
        CHECK(sqlite3_column_type(s, 9) == SQLITE_NULL && sqlite3_column_type(s, 10) == SQLITE_NULL,
              "token_logprob/rank NULL when not stored");
    } else {
        CHECK(close_to(sqlite3_column_double(s, 9), ref_lp(&r, (uint32_t)j)), "token_logprob");
        CHECK(sqlite3_column_int64(s, 10) == j + 1, "token_rank %lld vs %d",
              (long long)sqlite3_column_int64(s, 10), j + 1);
    }
    CHECK(sqlite3_step(s) == SQLITE_DONE, "one row only");
    sqlite3_finalize(s);
}

static void test_positions_columns(env *e)
{
    TAP_BEGIN("positions_columns_match_decode");
    for (int i = 0; i < 160 && !tap_case_failed_; i++) {
        int d = (int)rnd(4), seq = (int)rnd((uint32_t)NSEQ[d]);
        uint32_t pos = i % 7 == 0 ? (uint32_t)NPOS(seq) - 1 : rnd((uint32_t)NPOS(seq));
        check_positions_row(e, DSETS[d], seq, pos);
    }
    TAP_END();
}

static void test_topk_columns(env *e)
{
    TAP_BEGIN("topk_columns_match_decode");
    for (int i = 0; i < 80 && !tap_case_failed_; i++) {
        int d = (int)rnd(4), seq = (int)rnd((uint32_t)NSEQ[d]);
        uint32_t pos = rnd((uint32_t)NPOS(seq));
        ref r;
        int rc = ref_read(e, DSETS[d], seq, pos, &r);
        CHECK(rc == 0, "reference read");
        char *sql = sqlite3_mprintf("SELECT rank, token, piece, logit, logprob FROM topk"
                                    " WHERE dataset = %Q AND seq = %d AND pos = %u",
                                    DSETS[d], seq, pos);
        sqlite3_stmt *s = prep(e, sql);
        sqlite3_free(sql);
        uint32_t n = 0;
        while (s && sqlite3_step(s) == SQLITE_ROW) {
            CHECK(n < r.d.k, "too many rows");
            if (n >= r.d.k) break;
            double logit = r.kind == SLIM_KIND_SAMPLED ? log(r.d.vals[n] / 64.0) : r.d.vals[n];
            CHECK(sqlite3_column_int64(s, 0) == n + 1, "rank");
            CHECK(sqlite3_column_int64(s, 1) == r.d.ids[n], "token");
            if (d == 2) CHECK(sqlite3_column_type(s, 2) == SQLITE_NULL, "no vocab -> NULL piece");
            else {
                char want[32];
                snprintf(want, sizeof want, r.d.ids[n] == 7 ? "a,\"b\"" : r.d.ids[n] == 8 ? "\n"
                         : " w%u", r.d.ids[n]);
                CHECK(!strcmp((const char *)sqlite3_column_text(s, 2), want), "piece");
            }
            CHECK(close_to(sqlite3_column_double(s, 3), logit), "logit");
            CHECK(close_to(sqlite3_column_double(s, 4), ref_lp(&r, n)), "logprob");
            if (n) CHECK(r.d.vals[n] <= r.d.vals[n - 1], "rank order");
            n++;
        }
        CHECK(n == r.d.k, "rows %u vs k %u", n, r.d.k);
        sqlite3_finalize(s);
    }
    TAP_END();
}

static void test_pushdown(env *e)
{
    TAP_BEGIN("point_query_reads_one_record");
    /* The library's own cost of reading one position (a cursor SET_RANGE,
     * plus a PREV when the position is inside a chunk) on a fresh reader:
     * the SQL point query must cost exactly that, i.e. touch one record. */
    slim_reader *fresh;
    slim_dataset_info info;
    slim_dist d;
    uint32_t ids[K];
    float vals[K];
    CHECK(slim_read_begin(e->st2, &fresh) == 0 && slim_dataset_get(e->st2, "web", &info) == 0,
          "fresh reader");
    uint64_t lib0 = slim_read_record_count(fresh);
    CHECK(slim_read_positions(fresh, info.id, 5, 17, 1, &d, ids, vals, K, NULL, 0) == 0, "read");
    uint64_t lib = slim_read_record_count(fresh) - lib0;
    slim_read_end(fresh);
    uint64_t before = slimq_record_count(e->q);
    int64_t tok = scalar(e, "SELECT top1 FROM positions WHERE dataset = 'web' AND seq = 5 AND pos = 17");
    uint64_t after = slimq_record_count(e->q);
    CHECK(tok == d.ids[0], "wrong row");
    CHECK(lib >= 1 && lib <= 2 && after - before == lib,
          "point query read %llu records, the library's point read %llu",
          (unsigned long long)(after - before), (unsigned long long)lib);
    /* statistics only, or statistics and entries together: still one record */
    static const char *const PQ[] = {
        "SELECT entropy FROM positions WHERE dataset = 'web' AND seq = 5 AND pos = 17",
        "SELECT * FROM positions WHERE dataset = 'web' AND seq = 5 AND pos = 17",
        "SELECT top1, tail_mass, entropy FROM positions WHERE dataset = 'web' AND seq = 5 AND pos = 17",
    };
    for (int i = 0; i < 3; i++) {
        before = slimq_record_count(e->q);
        sqlite3_stmt *s = prep(e, PQ[i]);
        CHECK(s && sqlite3_step(s) == SQLITE_ROW && sqlite3_step(s) == SQLITE_DONE, "%s", PQ[i]);
        sqlite3_finalize(s);
        after = slimq_record_count(e->q);
        CHECK(after - before == lib, "%s: read %llu records, the library's point read %llu", PQ[i],
              (unsigned long long)(after - before), (unsigned long long)lib);
    }
    before = after;
    tok = scalar(e, "SELECT token FROM topk WHERE dataset = 'web' AND seq = 9 AND pos = 3 AND rank = 2");
    after = slimq_record_count(e->q);
    CHECK(tok >= 0 && after - before >= 1 && after - before <= 2,
          "topk point query read %llu records", (unsigned long long)(after - before));
    TAP_END();

    TAP_BEGIN("limit_stops_early");
    before = slimq_record_count(e->q);
    CHECK(scalar(e, "SELECT count(*) FROM (SELECT pos FROM positions LIMIT 3)") == 3, "3 rows");
    after = slimq_record_count(e->q);
    CHECK(after - before <= 2, "LIMIT 3 read %llu records", (unsigned long long)(after - before));
    TAP_END();

    TAP_BEGIN("seq_range_reads_only_that_range");
    before = slimq_record_count(e->q);
    int64_t n = scalar(e, "SELECT count(*), sum(entropy) FROM positions WHERE dataset = 'web'"
                          " AND seq = 11");
    after = slimq_record_count(e->q);
    CHECK(n == NPOS(11), "rows %lld", (long long)n);
    /* one sequence: its own chunks only, never the other 11 sequences' */
    CHECK(after - before >= 1 && after - before <= 8, "read %llu records",
          (unsigned long long)(after - before));
    TAP_END();
}

/* Columns read what they need: entropy and tail_mass the store's
 * per-position statistics (slim_read_pstats) without decoding a single
 * entry; the entry columns decode only the rows a filter lets through. */
static void test_lazy_columns(env *e)
{
    TAP_BEGIN("stats_scan_decodes_no_entries");
    uint64_t d0 = slimq_decode_count(e->q), r0 = slimq_record_count(e->q);
    int64_t want = scalar(e, "SELECT sum(positions) FROM datasets WHERE name != 'nolse'");
    sqlite3_stmt *s = prep(e, "SELECT count(*), total(entropy), total(tail_mass) FROM positions"
                              " WHERE dataset IN ('web', 'web2', 'samp') AND entropy > 0.5");
    int64_t n = s && sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sqlite3_finalize(s);
    /* entropy alone is a statistic for every dataset, nolse too */
    int64_t all = scalar(e, "SELECT count(*) FROM positions WHERE entropy >= 0");
    CHECK(n > 100 && n < want, "rows %lld of %lld", (long long)n, (long long)want);
    CHECK(all == scalar(e, "SELECT sum(positions) FROM datasets"), "entropy >= 0: %lld rows",
          (long long)all);
    CHECK(slimq_decode_count(e->q) == d0, "decoded %llu positions",
          (unsigned long long)(slimq_decode_count(e->q) - d0));
    CHECK(slimq_record_count(e->q) > r0, "read no record: the statistics come from somewhere");
    /* a scan's statistics (windows of slim_read_pstats) against the decode */
    s = prep(e, "SELECT pos, entropy, tail_mass FROM positions WHERE dataset = 'web' AND seq = 3");
    uint32_t rows = 0;
    while (s && sqlite3_step(s) == SQLITE_ROW && !tap_case_failed_) {
        ref r;
        double h, tail;
        uint32_t pos = (uint32_t)sqlite3_column_int64(s, 0);
        CHECK(ref_read(e, "web", 3, pos, &r) == 0, "reference read");
        ref_entropy(&r, &h, &tail);
        CHECK(float_close_to(sqlite3_column_double(s, 1), h) &&
              float_close_to(sqlite3_column_double(s, 2), fmax(tail, 0)),
              "pos %u: entropy %.9g vs %.9g, tail %.9g vs %.9g", pos, sqlite3_column_double(s, 1),
              h, sqlite3_column_double(s, 2), tail);
        /* a point query that decodes (k first) computes them from the
         * entries: bit for bit what the statistics hold */
        char *pq = sqlite3_mprintf("SELECT k, entropy, tail_mass FROM positions WHERE"
                                   " dataset = 'web' AND seq = 3 AND pos = %u", pos);
        sqlite3_stmt *p1 = prep(e, pq);
        CHECK(p1 && sqlite3_step(p1) == SQLITE_ROW &&
              sqlite3_column_double(p1, 1) == sqlite3_column_double(s, 1) &&
              sqlite3_column_double(p1, 2) == sqlite3_column_double(s, 2),
              "pos %u: decoded point query differs from the scan's statistics", pos);
        sqlite3_finalize(p1);
        sqlite3_free(pq);
        rows++;
    }
    sqlite3_finalize(s);
    CHECK(rows == NPOS(3), "rows %u", rows);
    /* without lse a tail of 0 is ambiguous: the entries tell (NULL) */
    d0 = slimq_decode_count(e->q);
    CHECK(scalar(e, "SELECT count(tail_mass) FROM positions WHERE dataset = 'nolse'") == 0,
          "nolse tail_mass not NULL");
    CHECK(slimq_decode_count(e->q) - d0 == (uint64_t)scalar(e, "SELECT positions FROM datasets"
                                                             " WHERE name = 'nolse'"),
          "nolse: decoded %llu", (unsigned long long)(slimq_decode_count(e->q) - d0));
    TAP_END();

    TAP_BEGIN("selective_filter_decodes_on_demand");
    static const char *const COLS =
        "count(*), total(top1), total(token_rank), total(k), total(top1_logprob),"
        " total(token_logprob), total(tail_mass)";
    char *q1 = sqlite3_mprintf("SELECT %s FROM positions WHERE entropy > 1.6", COLS);
    char *q2 = sqlite3_mprintf("WITH a AS MATERIALIZED (SELECT * FROM positions)"
                               " SELECT %s FROM a WHERE entropy > 1.6", COLS);
    d0 = slimq_decode_count(e->q);
    sqlite3_stmt *s1 = prep(e, q1);
    int ok = s1 && sqlite3_step(s1) == SQLITE_ROW;
    uint64_t dec = slimq_decode_count(e->q) - d0;
    sqlite3_stmt *s2 = prep(e, q2);
    ok = ok && s2 && sqlite3_step(s2) == SQLITE_ROW;
    CHECK(ok, "query failed");
    int64_t matched = ok ? sqlite3_column_int64(s1, 0) : 0;
    for (int i = 0; ok && i < 7; i++)
        CHECK(close_to(sqlite3_column_double(s1, i), sqlite3_column_double(s2, i)),
              "column %d: %.17g filtered vs %.17g all decoded", i, sqlite3_column_double(s1, i),
              sqlite3_column_double(s2, i));
    /* a window of 2w follows w rows that all asked: at most 2x */
    CHECK(matched > 20 && matched < all / 2 && dec <= 2 * (uint64_t)matched,
          "%lld rows matched, %llu positions decoded", (long long)matched,
          (unsigned long long)dec);
    sqlite3_finalize(s1);
    sqlite3_finalize(s2);
    sqlite3_free(q1);
    sqlite3_free(q2);
    TAP_END();
}

/* Every bound shape gives the same rows pushed down as SQLite's own filter
 * (unary + hides a column from xBestIndex). */
static void test_bounds(env *e)
{
    static const char *const W[] = {
        "dataset = 'web' AND seq = 3 AND pos > 5 AND pos <= 17",
        "dataset = 'web' AND seq >= 10 AND pos < 4",
        "dataset = 'web2' AND seq < 2 AND pos >= 2.5",
        "seq > 1 AND seq < 3 AND pos = 0",
        "pos = 2.5",
        "pos > -7 AND pos < 2",
        "seq = NULL",
        "dataset IN ('web2', 'samp') AND pos BETWEEN 3 AND 4",
        "dataset = 'samp' AND seq = 3 AND pos >= 40",
        "pos > 1e30",
    };
    TAP_BEGIN("pushed_bounds_equal_unpushed_filter");
    for (size_t i = 0; i < sizeof W / sizeof *W; i++) {
        char a[512], b[512], *p;
        snprintf(a, sizeof a, "SELECT count(*), total(entropy) FROM positions WHERE %s", W[i]);
        snprintf(b, sizeof b, "%s", a);
        /* hide every column from the planner: dataset -> +dataset, ... */
        char out[600] = "";
        for (p = b; *p; p++) {
            if ((!strncmp(p, "dataset ", 8) || !strncmp(p, "seq ", 4) || !strncmp(p, "pos ", 4)) &&
                p > b + 40)
                strncat(out, "+", sizeof out - strlen(out) - 1);
            strncat(out, (char[]){ *p, 0 }, sizeof out - strlen(out) - 1);
        }
        sqlite3_stmt *s1 = prep(e, a), *s2 = prep(e, out);
        int ok = s1 && s2 && sqlite3_step(s1) == SQLITE_ROW && sqlite3_step(s2) == SQLITE_ROW;
        CHECK(ok, "query failed: %s", W[i]);
        if (ok)
            CHECK(sqlite3_column_int64(s1, 0) == sqlite3_column_int64(s2, 0) &&
                  close_to(sqlite3_column_double(s1, 1), sqlite3_column_double(s2, 1)),
                  "%s: %lld rows pushed, %lld filtered", W[i],
                  (long long)sqlite3_column_int64(s1, 0), (long long)sqlite3_column_int64(s2, 0));
        sqlite3_finalize(s1);
        sqlite3_finalize(s2);
    }
    /* topk rank bounds too */
    CHECK(scalar(e, "SELECT count(*) FROM topk WHERE dataset = 'web' AND rank <= 3") ==
          scalar(e, "SELECT count(*) FROM topk WHERE dataset = 'web' AND +rank <= 3"), "rank <= 3");
    /* a text bound compares by the column's INTEGER affinity */
    CHECK(scalar(e, "SELECT count(*) FROM positions WHERE pos = '3'") ==
          scalar(e, "SELECT count(*) FROM positions WHERE pos = 3"), "pos = '3'");
    CHECK(scalar(e, "SELECT count(*) FROM topk WHERE rank > 11") ==
          scalar(e, "SELECT count(*) FROM topk WHERE +rank > 11"), "rank > 11");
    TAP_END();

    TAP_BEGIN("full_scan_counts_match_metadata");
    CHECK(scalar(e, "SELECT count(*) FROM positions") ==
          scalar(e, "SELECT sum(positions) FROM datasets"), "positions");
    CHECK(scalar(e, "SELECT count(*) FROM topk") == scalar(e, "SELECT sum(entries) FROM datasets"),
          "entries");
    CHECK(scalar(e, "SELECT count(*) FROM positions WHERE token IS NULL") ==
          scalar(e, "SELECT count(*) FROM sequences WHERE npos = ntokens"), "NULL token at the end");
    TAP_END();
}

static void test_joins(env *e)
{
    TAP_BEGIN("join_with_metadata");
    int64_t want = scalar(e, "SELECT sum(npos) FROM sequences s JOIN datasets d ON d.id ="
                             " s.dataset_id WHERE d.name = 'web' AND s.ntokens > 60");
    uint64_t before = slimq_record_count(e->q);
    int64_t got = scalar(e, "SELECT count(*) FROM seqs JOIN positions USING (dataset, seq)"
                            " WHERE seqs.dataset = 'web' AND seqs.ntokens > 60");
    uint64_t after = slimq_record_count(e->q);
    CHECK(want > 0 && got == want, "join rows %lld vs %lld", (long long)got, (long long)want);
    /* the plan drives positions from seqs: records of the 6 long sequences
     * only, not a full scan of all 23 sequences */
    CHECK(after - before < 40, "join read %llu records", (unsigned long long)(after - before));
    sqlite3_stmt *s = prep(e, "EXPLAIN QUERY PLAN SELECT count(*) FROM seqs JOIN positions"
                              " USING (dataset, seq) WHERE seqs.dataset = 'web'"
                              " AND seqs.ntokens > 60");
    int inner_pushed = 0;
    while (s && sqlite3_step(s) == SQLITE_ROW) {
        const char *d = (const char *)sqlite3_column_text(s, 3);
        /* idxNum 3 = dataset and seq equality pushed down */
        if (strstr(d, "VIRTUAL TABLE INDEX 3:")) inner_pushed = 1;
    }
    sqlite3_finalize(s);
    CHECK(inner_pushed, "plan does not push (dataset, seq) into positions");
    TAP_END();
}

/* ORDER BY in our natural order is consumed (no sort) and still right;
 * other orders are sorted by SQLite. */
static void test_order(env *e)
{
    static const char *const Q[] = {
        "SELECT seq, pos FROM positions WHERE dataset = 'web' ORDER BY seq, pos",
        "SELECT seq, pos FROM positions WHERE dataset IN ('samp', 'web2') ORDER BY seq, pos",
        "SELECT seq, pos FROM positions WHERE dataset = 'web' AND seq = 4 ORDER BY pos DESC",
    };
    TAP_BEGIN("order_by");
    for (int i = 0; i < 3; i++) {
        sqlite3_stmt *s = prep(e, Q[i]);
        int64_t last = i == 2 ? INT64_MAX : -1, n = 0;
        while (s && sqlite3_step(s) == SQLITE_ROW) {
            int64_t key = sqlite3_column_int64(s, 0) * 100000 + sqlite3_column_int64(s, 1);
            CHECK(i == 2 ? key < last : key >= last, "%s: out of order at row %lld", Q[i], (long long)n);
            last = key;
            n++;
        }
        CHECK(n > 20, "%s: %lld rows", Q[i], (long long)n);
        sqlite3_finalize(s);
    }
    char plan[600] = "";
    sqlite3_stmt *s = prep(e, "EXPLAIN QUERY PLAN SELECT seq, pos FROM positions WHERE dataset = 'web'"
                              " ORDER BY seq, pos");
    while (s && sqlite3_step(s) == SQLITE_ROW)
        strncat(plan, (const char *)sqlite3_column_text(s, 3), sizeof plan - strlen(plan) - 1);
    sqlite3_finalize(s);
    CHECK(!strstr(plan, "TEMP B-TREE"), "natural order is sorted again: %s", plan);
    TAP_END();
}

static void test_functions(env *e)
{
    TAP_BEGIN("functions");
    sqlite3_stmt *s = prep(e, "SELECT piece('web', 42), piece('nolse', 42), piece('web', 100000),"
                              " detok('web', 0, 0, 3), detok('nolse', 0, 0, 3)");
    CHECK(s && sqlite3_step(s) == SQLITE_ROW, "step");
    ref r;
    ref_read(e, "web", 0, 0, &r);
    char want[64];
    snprintf(want, sizeof want, " w%u w%u w%u", r.tok[0], r.tok[1], r.tok[2]);
    if (s) {
        CHECK(!strcmp((const char *)sqlite3_column_text(s, 0), " w42"), "piece");
        CHECK(sqlite3_column_type(s, 1) == SQLITE_NULL, "piece without vocab");
        CHECK(sqlite3_column_type(s, 2) == SQLITE_NULL, "piece of unknown id");
        CHECK(r.tok[0] == 7 || r.tok[0] == 8 || r.tok[1] == 7 || r.tok[1] == 8 ||
              r.tok[2] == 7 || r.tok[2] == 8 ||
              !strcmp((const char *)sqlite3_column_text(s, 3), want), "detok '%s' vs '%s'",
              sqlite3_column_text(s, 3), want);
        CHECK(sqlite3_column_type(s, 4) == SQLITE_NULL, "detok without vocab");
    }
    sqlite3_finalize(s);
    /* prob = exp(token_logprob) where the token is stored, NULL elsewhere */
    CHECK(scalar(e, "SELECT count(*) FROM positions WHERE dataset = 'web' AND"
                    " (prob(dataset, seq, pos, token) IS NULL) != (token_logprob IS NULL)") == 0,
          "prob NULL-ness");
    CHECK(scalar(e, "SELECT count(*) FROM positions WHERE dataset = 'web' AND"
                    " abs(prob(dataset, seq, pos, token) - exp(token_logprob)) > 1e-12") == 0,
          "prob value");
    /* kl(a, a) = 0, kl >= 0; against an independent computation for one pair */
    CHECK(scalar(e, "SELECT count(*) FROM positions WHERE dataset = 'web' AND seq < 4 AND"
                    " abs(kl('web', seq, pos, 'web', seq, pos)) > 1e-12") == 0, "kl(a,a) = 0");
    CHECK(scalar(e, "SELECT count(*) FROM positions WHERE dataset = 'web' AND seq < 4 AND"
                    " NOT kl('web', seq, pos, 'web2', seq, pos) >= -1e-12") == 0, "kl >= 0");
    ref a, b;
    ref_read(e, "web", 2, 5, &a);
    ref_read(e, "web2", 2, 5, &b);
    double ta, tb, ha, hb, kl = 0;
    ref_entropy(&a, &ha, &ta);
    ref_entropy(&b, &hb, &tb);
    uint32_t nu = a.d.k;  /* union size */
    for (uint32_t i = 0; i < a.d.k; i++) {
        double p = exp(ref_lp(&a, i)), q = tb / (V - b.d.k);
        for (uint32_t j = 0; j < b.d.k; j++)
            if (b.d.ids[j] == a.d.ids[i]) q = exp(ref_lp(&b, j));
        kl += p * log(p / q);
    }
    for (uint32_t j = 0; j < b.d.k; j++) {
        int in_a = 0;
        for (uint32_t i = 0; i < a.d.k; i++) in_a |= a.d.ids[i] == b.d.ids[j];
        if (in_a) continue;
        nu++;
        double p = ta / (V - a.d.k), q = exp(ref_lp(&b, j));
        kl += p * log(p / q);
    }
    double pr = ta / (V - a.d.k) * (V - nu), qr = tb / (V - b.d.k) * (V - nu);
    kl += pr * log(pr / qr);
    s = prep(e, "SELECT kl('web', 2, 5, 'web2', 2, 5)");
    CHECK(s && sqlite3_step(s) == SQLITE_ROW, "kl step");
    /* the tails are the float-rounded tail_mass figures */
    if (s) CHECK(fabs(sqlite3_column_double(s, 0) - kl) < 1e-6 * (1 + kl), "kl %.12g vs %.12g",
                 sqlite3_column_double(s, 0), kl);
    sqlite3_finalize(s);
    TAP_END();
}

/* An SQL error with a message matching `want`; never rows. */
static void expect_error(env *e, const char *name, const char *sql, const char *want)
{
    TAP_BEGIN(name);
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(e->db, sql, -1, &s, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {}
    CHECK(rc != SQLITE_DONE && rc != SQLITE_OK, "%s: no error", sql);
    CHECK(strstr(sqlite3_errmsg(e->db), want), "message '%s' lacks '%s'", sqlite3_errmsg(e->db),
          want);
    sqlite3_finalize(s);
    TAP_END();
}

/* Flip a byte in the middle of the first record of dataset 'samp' (the
 * last dataset) straight in LMDB, then expect reads of it to fail loudly. */
static int corrupt_one(const char *dir)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/logits", dir);
    MDB_env *menv;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_env_create(&menv);
    mdb_env_set_maxdbs(menv, 8);
    if (!rc) rc = mdb_env_open(menv, path, 0, 0644);
    if (!rc) rc = mdb_txn_begin(menv, NULL, 0, &txn);
    if (!rc) rc = mdb_dbi_open(txn, "records", 0, &dbi);
    if (!rc) rc = mdb_cursor_open(txn, dbi, &cur);
    if (!rc) rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);  /* 'samp' sorts last */
    if (!rc) {
        uint8_t *copy = malloc(v.mv_size);
        memcpy(copy, v.mv_data, v.mv_size);
        copy[v.mv_size / 2] ^= 0x5a;
        MDB_val nv = { v.mv_size, copy };
        rc = mdb_cursor_put(cur, &k, &nv, MDB_CURRENT);
        free(copy);
    }
    if (!rc) rc = mdb_txn_commit(txn);
    mdb_env_close(menv);
    return rc;
}

static int open_env(env *e, const char *dir)
{
    memset(e, 0, sizeof *e);
    char *err = NULL;
    if (slim_store_open(&e->st, dir, SLIM_OPEN_RDONLY) ||
        slim_store_open(&e->st2, dir, SLIM_OPEN_RDONLY) || slim_read_begin(e->st2, &e->rd)) {
        printf("FAIL open: %s\n", slim_errmsg(e->st ? e->st : e->st2));
        return -1;
    }
    e->db = slim_store_sqlite(e->st);
    if (slimq_register(e->db, e->st, 0, &e->q, &err)) {
        printf("FAIL register: %s\n", err);
        return -1;
    }
    return 0;
}

static void close_env(env *e)
{
    slimq_release_reader(e->q);
    slim_store_close(e->st);
    slim_read_end(e->rd);
    slim_store_close(e->st2);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--fixture")) return make_fixture(argv[2]) ? 1 : 0;
    const char *tmp = getenv("SLIM_TMP");
    char dir[1024], cmd[1100];
    snprintf(dir, sizeof dir, "%s/query.store", tmp ? tmp : "/tmp");
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) return 1;
    TAP_BEGIN("fixture");
    CHECK(make_fixture(dir) == 0, "cannot build the fixture store");
    TAP_END();
    if (tap_failed_) return tap_done();
    env e;
    if (open_env(&e, dir)) return 1;
    test_positions_columns(&e);
    test_topk_columns(&e);
    test_pushdown(&e);
    test_lazy_columns(&e);
    test_bounds(&e);
    test_joins(&e);
    test_order(&e);
    test_functions(&e);
    expect_error(&e, "unknown_dataset_is_an_error",
                 "SELECT * FROM positions WHERE dataset = 'nope'", "no such dataset 'nope'");
    expect_error(&e, "unknown_dataset_in_function", "SELECT piece('nope', 1)", "no such dataset");
    expect_error(&e, "read_only_without_write", "DELETE FROM datasets", "readonly");
    close_env(&e);

    TAP_BEGIN("corrupt_record_fixture");
    CHECK(corrupt_one(dir) == 0, "could not corrupt a record");
    TAP_END();
    if (open_env(&e, dir)) return 1;
    expect_error(&e, "corrupt_record_is_an_error", "SELECT count(*), sum(entropy) FROM positions",
                 "'samp'");
    expect_error(&e, "corrupt_record_point_query",
                 "SELECT * FROM topk WHERE dataset = 'samp' AND seq = 3", "samp");
    close_env(&e);
    return tap_done();
}
