/*
 * funcs.c — SQL functions over the store (docs/QUERY.md):
 *   piece(dataset, id)                     token text, NULL without vocabulary
 *   detok(dataset, seq, t0, t1)            text of tokens t[t0..t1)
 *   prob(dataset, seq, pos, token)         teacher probability, NULL if not stored
 *   kl(da, sa, pa, db, sb, pb)             KL(a || b) in nats, tail as buckets
 */
#include <math.h>
#include <string.h>

#include "qctx.h"

static void fail(sqlite3_context *ctx, slimq *q, int rc)
{
    if (rc == SLIM_ENOMEM) sqlite3_result_error_nomem(ctx);
    else sqlite3_result_error(ctx, slim_errmsg(q->st), -1);
}

/* The dataset named by argument v; 0 with an SQL error set otherwise. */
static int arg_dataset(sqlite3_context *ctx, slimq *q, sqlite3_value *v,
                       qds *out)
{
    const char *name = (const char *)sqlite3_value_text(v);
    if (!name) {
        sqlite3_result_error(ctx, "dataset name is NULL", -1);
        return 0;
    }
    int rc = qctx_dataset(q, name, out);
    if (rc == SLIM_ENOTFOUND) {
        char *m = sqlite3_mprintf("no such dataset '%s'", name);
        sqlite3_result_error(ctx, m ? m : "no such dataset", -1);
        sqlite3_free(m);
        return 0;
    }
    if (rc) {
        fail(ctx, q, rc);
        return 0;
    }
    return 1;
}

/* Any NULL argument makes the result NULL (like SQLite's own functions). */
static int any_null(int argc, sqlite3_value **argv)
{
    for (int i = 0; i < argc; i++)
        if (sqlite3_value_type(argv[i]) == SQLITE_NULL) return 1;
    return 0;
}

static int arg_u32(sqlite3_context *ctx, sqlite3_value *v, const char *what,
                   uint32_t *out)
{
    int64_t x = sqlite3_value_int64(v);
    if (x < 0 || x > UINT32_MAX) {
        char *m = sqlite3_mprintf("%s %lld out of range", what, (long long)x);
        sqlite3_result_error(ctx, m ? m : what, -1);
        sqlite3_free(m);
        return 0;
    }
    *out = (uint32_t)x;
    return 1;
}

static void fn_piece(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    slimq *q = sqlite3_user_data(ctx);
    qds ds;
    uint32_t id;
    if (any_null(argc, argv) || !arg_dataset(ctx, q, argv[0], &ds) ||
        !arg_u32(ctx, argv[1], "token id", &id))
        return;
    int rc, len = 0;
    const char *p = qctx_piece(q, ds.teacher, id, &len, &rc);
    if (rc) fail(ctx, q, rc);
    else if (p) sqlite3_result_text(ctx, p, len, SQLITE_TRANSIENT);
}

static void fn_detok(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    slimq *q = sqlite3_user_data(ctx);
    qbuf *b = &q->fb[0];
    qds ds;
    uint32_t t0, t1, T;
    if (any_null(argc, argv) || !arg_dataset(ctx, q, argv[0], &ds) ||
        !arg_u32(ctx, argv[2], "token index", &t0) ||
        !arg_u32(ctx, argv[3], "token index", &t1))
        return;
    int rc = qctx_tokens(q, b, ds.id, sqlite3_value_int64(argv[1]), &T);
    if (rc) {
        fail(ctx, q, rc);
        return;
    }
    if (t1 > T) t1 = T;
    sqlite3_str *s = sqlite3_str_new(NULL);
    for (uint32_t i = t0; i < t1; i++) {
        int len = 0;
        const char *p = qctx_piece(q, ds.teacher, b->tok[i], &len, &rc);
        if (rc) {
            sqlite3_free(sqlite3_str_finish(s));
            fail(ctx, q, rc);
            return;
        }
        if (!q->voc.present) {  /* no vocabulary: no text */
            sqlite3_free(sqlite3_str_finish(s));
            return;
        }
        if (p) sqlite3_str_append(s, p, len);
        else sqlite3_str_appendf(s, "<%u>", b->tok[i]);
    }
    int n = sqlite3_str_length(s);
    char *text = sqlite3_str_finish(s);
    if (!text && n) sqlite3_result_error_nomem(ctx);
    else sqlite3_result_text(ctx, text ? text : "", n, text ? sqlite3_free : SQLITE_STATIC);
}

/* Read one position of (dataset v[0], seq v[1], pos v[2]) into fb[which]. */
static const slim_dist *arg_position(sqlite3_context *ctx, slimq *q,
                                     sqlite3_value **v, int which, qds *ds,
                                     unsigned flags)
{
    uint32_t pos;
    if (!arg_dataset(ctx, q, v[0], ds) || !arg_u32(ctx, v[2], "position", &pos))
        return NULL;
    int rc = qctx_read(q, &q->fb[which], ds->id, sqlite3_value_int64(v[1]),
                       pos, 1, flags);
    if (rc) {
        fail(ctx, q, rc);
        return NULL;
    }
    return &q->fb[which].dists[0];
}

static void fn_prob(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    slimq *q = sqlite3_user_data(ctx);
    qds ds;
    uint32_t tok;
    if (any_null(argc, argv) || !arg_u32(ctx, argv[3], "token id", &tok))
        return;
    const slim_dist *d = arg_position(ctx, q, argv, 0, &ds, 0);
    if (!d) return;
    int j = slimq_find(d, tok);
    if (j < 0) return;
    int tail_known;
    double lse = slimq_norm(d, ds.kind, &tail_known);
    sqlite3_result_double(ctx, exp(slimq_logit(d, ds.kind, (uint32_t)j) - lse));
}

static void fn_kl(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    slimq *q = sqlite3_user_data(ctx);
    qds da, db;
    if (any_null(argc, argv)) return;
    const slim_dist *a = arg_position(ctx, q, argv, 0, &da, SLIM_READ_ID_ORDER);
    if (!a) return;
    const slim_dist *b = arg_position(ctx, q, argv + 3, 1, &db, SLIM_READ_ID_ORDER);
    if (!b) return;
    if (da.V != db.V) {
        char *m = sqlite3_mprintf("kl: vocabulary sizes differ (%u vs %u)",
                                  da.V, db.V);
        sqlite3_result_error(ctx, m ? m : "kl: vocabulary sizes differ", -1);
        sqlite3_free(m);
        return;
    }
    sqlite3_result_double(ctx, slimq_kl(a, da.kind, b, db.kind, da.V));
}

int qfuncs_register(slimq *q)
{
    static const struct {
        const char *name;
        int nargs;
        void (*fn)(sqlite3_context *, int, sqlite3_value **);
    } F[] = {
        { "piece", 2, fn_piece }, { "detok", 4, fn_detok },
        { "prob", 4, fn_prob },   { "kl", 6, fn_kl },
    };
    for (size_t i = 0; i < sizeof F / sizeof F[0]; i++) {
        /* Not deterministic: results follow the read view, which moves. */
        int rc = sqlite3_create_function_v2(q->db, F[i].name, F[i].nargs,
                                            SQLITE_UTF8, q, F[i].fn, NULL,
                                            NULL, NULL);
        if (rc) return rc;
    }
    return SQLITE_OK;
}
