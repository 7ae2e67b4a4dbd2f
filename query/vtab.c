/*
 * vtab.c — the virtual tables `positions` and `topk` over the stored logits
 * (columns defined in DESIGN.md "SQL over the store", docs/QUERY.md).
 *
 * Both are eponymous-only tables sharing one cursor: constraints on dataset,
 * seq, pos (and rank) become the bounds of a walk over datasets -> sequences
 * -> positions.  The walk itself reads nothing but each sequence's metadata;
 * a column reads what it needs when SQLite asks for it (docs/QUERY.md, "Fast
 * scans"): entropy and tail_mass a window of per-position statistics
 * (slim_read_pstats, which answers from the statistics the store keeps
 * without decoding entries), the entry columns a window of decoded positions
 * (slim_read_positions: one position when a filter picks a row here and
 * there, windows doubling up to QBATCH while every row asks), token the
 * sequence's tokens.  Buffers are reused for the cursor's life, so a point
 * query reads one record and LIMIT stops within a window.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qctx.h"

#ifndef QBATCH
#define QBATCH 64
#endif
/* Statistics windows start at SBATCH0 positions (LIMIT stops early) and
 * double up to SBATCH_MAX (a scan reads a whole sequence per call). */
#define SBATCH0 64
#define SBATCH_MAX 8192

enum { C_DATASET, C_SEQ, C_POS, C_RANK };  /* leading columns of both */
enum { P_TOKEN = 3, P_K, P_ENTROPY, P_TAIL, P_TOP1, P_TOP1_LP, P_TOKEN_LP,
       P_TOKEN_RANK };
enum { T_TOKEN = 4, T_PIECE, T_LOGIT, T_LOGPROB };

/* Slots of the constraints we consume: bit i of idxNum = slot i is used; bit
 * 16 + i = its comparison is strict (GT / LT).  xFilter's argv follow the
 * slot order. */
enum { S_DS, S_SEQ_EQ, S_SEQ_LO, S_SEQ_HI, S_POS_EQ, S_POS_LO, S_POS_HI,
       S_RANK_EQ, S_RANK_LO, S_RANK_HI, S_N };
#define STRICT(s) (1 << (16 + (s)))

typedef struct qtab {
    sqlite3_vtab base;
    slimq *q;
    int topk;
} qtab;

typedef struct qcur {
    sqlite3_vtab_cursor base;
    slimq *q;
    int topk;
    int eof;
    sqlite3_int64 rowid;
    /* bounds, inclusive */
    int all_ds, ds_i, ds_n;
    int64_t slo, shi, plo, phi, rlo, rhi;
    /* current dataset, sequence and position */
    qds ds;
    char *dsname;            /* owned copy while walking all datasets */
    int64_t seq, seq_end;    /* seq_end exclusive */
    uint32_t pos, pos_end;   /* pos_end: end of the bounds in seq (exclusive) */
    int tok_loaded;
    uint32_t ntok;
    qbuf b;
    /* decoded entries of positions [dbase, dbase + dn): b.dists[pos - dbase] */
    uint32_t dbase, dn, dwant;
    uint32_t dasked, dlast;  /* rows of the window that asked; the last one */
    int drun;                /* the previous sequence's rows ran into this one */
    /* statistics of positions [sbase, sbase + sn): b.ps[pos - sbase] */
    uint32_t sbase, sn, swant;
    uint32_t ei, ehi;        /* topk: entry index, end (exclusive) */
    /* the current row's normaliser and own statistics, when computed from
     * its decoded entries */
    int norm_ok, tail_known, rowps_ok;
    double lse;
    slim_pstat rowps;
} qcur;

static const char *const SCHEMA_POSITIONS =
    "CREATE TABLE x(dataset TEXT, seq INTEGER, pos INTEGER, token INTEGER,"
    " k INTEGER, entropy REAL, tail_mass REAL, top1 INTEGER,"
    " top1_logprob REAL, token_logprob REAL, token_rank INTEGER,"
    " PRIMARY KEY (dataset, seq, pos)) WITHOUT ROWID";
static const char *const SCHEMA_TOPK =
    "CREATE TABLE x(dataset TEXT, seq INTEGER, pos INTEGER, rank INTEGER,"
    " token INTEGER, piece TEXT, logit REAL, logprob REAL,"
    " PRIMARY KEY (dataset, seq, pos, rank)) WITHOUT ROWID";

static int set_err(sqlite3_vtab *vt, slimq *q, int rc)
{
    sqlite3_free(vt->zErrMsg);
    vt->zErrMsg = sqlite3_mprintf("%s", rc == SLIM_ENOMEM
                                  ? slim_strerror(rc) : slim_errmsg(q->st));
    return rc == SLIM_ENOMEM ? SQLITE_NOMEM : SQLITE_ERROR;
}

/* An error while walking or reading a column: the dataset and sequence the
 * store's message (which carries the record key) was about.  NULL when out
 * of memory; release with sqlite3_free. */
static char *walk_msg(qcur *c, int rc)
{
    if (rc == SLIM_ENOMEM) return NULL;
    if (!c->ds.name) return sqlite3_mprintf("%s", slim_errmsg(c->q->st));
    return sqlite3_mprintf("dataset '%s' seq %lld: %s", c->ds.name, (long long)c->seq,
                           slim_errmsg(c->q->st));
}

static int cur_err(qcur *c, int rc)
{
    sqlite3_vtab *vt = c->base.pVtab;
    sqlite3_free(vt->zErrMsg);
    vt->zErrMsg = walk_msg(c, rc);
    return vt->zErrMsg ? SQLITE_ERROR : SQLITE_NOMEM;
}

static int connect_common(sqlite3 *db, void *aux, int topk,
                          sqlite3_vtab **out)
{
    int rc = sqlite3_declare_vtab(db, topk ? SCHEMA_TOPK : SCHEMA_POSITIONS);
    if (rc) return rc;
    qtab *t = sqlite3_malloc(sizeof *t);
    if (!t) return SQLITE_NOMEM;
    memset(t, 0, sizeof *t);
    t->q = aux;
    t->topk = topk;
    *out = &t->base;
    return SQLITE_OK;
}

static int pos_connect(sqlite3 *db, void *aux, int argc,
                       const char *const *argv, sqlite3_vtab **out, char **err)
{
    return connect_common(db, aux, 0, out);
}

static int topk_connect(sqlite3 *db, void *aux, int argc,
                        const char *const *argv, sqlite3_vtab **out,
                        char **err)
{
    return connect_common(db, aux, 1, out);
}

static int q_disconnect(sqlite3_vtab *vt)
{
    sqlite3_free(vt);
    return SQLITE_OK;
}

/* ------------------------------------------------------------ planning */

/* Store-wide counters for the cost model (cheap: one metadata row each). */
static void counters(slimq *q, double *nds, double *nseq, double *npos,
                     double *nent)
{
    int n = 0;
    *nds = *nseq = *npos = *nent = 0;
    if (slim_dataset_count(q->st, &n)) n = 0;
    for (int i = 0; i < n; i++) {
        slim_dataset_info info;
        if (slim_dataset_at(q->st, i, &info)) continue;
        *nds += 1;
        *nseq += (double)info.sequences;
        *npos += (double)info.positions;
        *nent += (double)info.entries;
    }
    if (*nds < 1) *nds = 1;
    if (*nseq < 1) *nseq = 1;
    if (*npos < 1) *npos = 1;
    if (*nent < *npos) *nent = *npos;
}

static int slot_of(int col, int op, int topk)
{
    int eq = op == SQLITE_INDEX_CONSTRAINT_EQ;
    int lo = op == SQLITE_INDEX_CONSTRAINT_GT || op == SQLITE_INDEX_CONSTRAINT_GE;
    int hi = op == SQLITE_INDEX_CONSTRAINT_LT || op == SQLITE_INDEX_CONSTRAINT_LE;
    if (col == C_DATASET) return eq ? S_DS : -1;
    if (col == C_RANK && !topk) return -1;
    if (col < C_SEQ || col > C_RANK) return -1;
    int base = col == C_SEQ ? S_SEQ_EQ : col == C_POS ? S_POS_EQ : S_RANK_EQ;
    return eq ? base : lo ? base + 1 : hi ? base + 2 : -1;
}

/* Our natural order is (dataset id, seq, pos, rank); ORDER BY is consumed
 * when it is that order ascending, skipping columns fixed by equality.
 * (For positions, column 3 is `token`: it is only reached once (dataset,
 * seq, pos) -- unique per row -- are fixed or ordered, when any further
 * term is trivially satisfied.)  With `dataset IN (...)` SQLite sorts
 * anyway: it does not trust the flag across several xFilter calls. */
static int order_consumed(const sqlite3_index_info *ix, unsigned used)
{
    static const int eqslot[4] = { S_DS, S_SEQ_EQ, S_POS_EQ, S_RANK_EQ };
    if (!(used & (1u << S_DS))) return 0;
    int col = C_SEQ;
    for (int i = 0; i < ix->nOrderBy; i++) {
        const struct sqlite3_index_orderby *o = &ix->aOrderBy[i];
        if (o->desc) return 0;
        if (o->iColumn == C_DATASET) continue;
        while (col <= C_RANK && o->iColumn != col && (used & (1u << eqslot[col])))
            col++;
        if (o->iColumn != col) return 0;
        col++;
    }
    return 1;
}

static int q_best_index(sqlite3_vtab *vt, sqlite3_index_info *ix)
{
    qtab *t = (qtab *)vt;
    int which[S_N];
    unsigned used = 0;
    for (int s = 0; s < S_N; s++) which[s] = -1;
    for (int i = 0; i < ix->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &ix->aConstraint[i];
        if (!c->usable) continue;
        int s = slot_of(c->iColumn, c->op, t->topk);
        if (s < 0 || which[s] >= 0) continue;
        which[s] = i;
        used |= 1u << s;
        if (c->op == SQLITE_INDEX_CONSTRAINT_GT || c->op == SQLITE_INDEX_CONSTRAINT_LT)
            used |= (unsigned)STRICT(s);
    }
    int argi = 1;
    for (int s = 0; s < S_N; s++)
        if (which[s] >= 0) {
            /* SQLite re-checks (omit = 0): our bounds only narrow the walk,
             * so odd values (text, NULL, 2.5) stay SQLite's business. */
            ix->aConstraintUsage[which[s]].argvIndex = argi++;
            ix->aConstraintUsage[which[s]].omit = 0;
        }
    /* dataset = X is the exception: xFilter walks exactly the dataset
     * spelled X (a blob matches nothing), so under the BINARY collation
     * SQLite need not compare the name again on every row of a scan. */
    if (which[S_DS] >= 0) {
        const char *coll = sqlite3_vtab_collation(ix, which[S_DS]);
        ix->aConstraintUsage[which[S_DS]].omit = !coll || !sqlite3_stricmp(coll, "BINARY");
    }
    double nds, nseq, npos, nent;
    counters(t->q, &nds, &nseq, &npos, &nent);
    double rows = npos, len = npos / nseq, seqs_per_ds = nseq / nds;
    if (used & (1u << S_DS)) rows /= nds;
    if (used & (1u << S_SEQ_EQ)) rows /= seqs_per_ds > 1 ? seqs_per_ds : 1;
    else {
        if (used & (1u << S_SEQ_LO)) rows /= 2;
        if (used & (1u << S_SEQ_HI)) rows /= 2;
    }
    if (used & (1u << S_POS_EQ)) rows /= len > 1 ? len : 1;
    else {
        if (used & (1u << S_POS_LO)) rows /= 2;
        if (used & (1u << S_POS_HI)) rows /= 2;
    }
    if (t->topk) {
        double k = nent / npos;
        if (used & (1u << S_RANK_EQ)) k = 1;
        else if (used & (1u << S_RANK_HI)) k = k < 4 ? k : 4;
        rows *= k;
    }
    if (rows < 1) rows = 1;
    unsigned point = (1u << S_DS) | (1u << S_SEQ_EQ) | (1u << S_POS_EQ) |
                     (t->topk ? 1u << S_RANK_EQ : 0);
    if ((used & point) == point) ix->idxFlags |= SQLITE_INDEX_SCAN_UNIQUE;
    /* Decoding a row costs a few table-row visits; a walk that is not
     * narrowed to one dataset also visits every dataset. */
    ix->estimatedRows = (sqlite3_int64)rows;
    ix->estimatedCost = 10 + 4 * rows;
    ix->idxNum = (int)used;
    ix->orderByConsumed = order_consumed(ix, used);
    return SQLITE_OK;
}

/* ------------------------------------------------------------- cursors */

static int q_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **out)
{
    qtab *t = (qtab *)vt;
    qcur *c = calloc(1, sizeof *c);
    if (!c) return SQLITE_NOMEM;
    c->q = t->q;
    c->topk = t->topk;
    c->eof = 1;
    if (t->q->spare_ok) {
        c->b = t->q->spare;
        t->q->spare_ok = 0;
    }
    t->q->ncursors++;
    *out = &c->base;
    return SQLITE_OK;
}

static int q_close(sqlite3_vtab_cursor *cur)
{
    qcur *c = (qcur *)cur;
    c->q->ncursors--;
    /* Keep the warm buffers for the next cursor (a point query in a loop
     * opens one per execution). */
    if (!c->q->spare_ok) {
        c->q->spare = c->b;
        c->q->spare_ok = 1;
    } else {
        qbuf_free(&c->b);
    }
    free(c->dsname);
    free(c);
    return SQLITE_OK;
}

/* The bound a value sets on an integer column; 0 when the value is not a
 * number (no narrowing: SQLite's own check decides).  *empty when no
 * integer can satisfy it (NULL, or e.g. pos < -5). */
static int int_bound(sqlite3_value *v, int lower, int strict, int64_t *out,
                     int *empty)
{
    int t = sqlite3_value_numeric_type(v);
    if (t == SQLITE_NULL) {
        *empty = 1;
        return 0;
    }
    if (t != SQLITE_INTEGER && t != SQLITE_FLOAT) return 0;
    double x = sqlite3_value_double(v);
    double b = lower ? (strict ? floor(x) + 1 : ceil(x))
                     : (strict ? ceil(x) - 1 : floor(x));
    if (b > 9e18) b = 9e18;
    if (b < -9e18) b = -9e18;
    *out = (int64_t)b;
    return 1;
}

/* Apply slot s's argument to [lo, hi]. */
static void narrow(sqlite3_value *v, int s, int base, int strict,
                   int64_t *lo, int64_t *hi, int *empty)
{
    int64_t x;
    if (s == base) {
        if (sqlite3_value_type(v) == SQLITE_FLOAT &&
            sqlite3_value_double(v) != floor(sqlite3_value_double(v)))
            *empty = 1;
        if (int_bound(v, 1, 0, &x, empty)) {
            if (x > *lo) *lo = x;
            if (x < *hi) *hi = x;
        }
    } else if (s == base + 1) {
        if (int_bound(v, 1, strict, &x, empty) && x > *lo) *lo = x;
    } else if (int_bound(v, 0, strict, &x, empty) && x < *hi) {
        *hi = x;
    }
}

/* Enter sequence c->seq: *found = 0 when it is deleted or has no position
 * inside the bounds.  Reads its metadata only (one row, which the reader
 * keeps for the column reads that follow). */
static int seq_enter(qcur *c, int *found)
{
    slim_reader *rd;
    slim_seq_info si;
    int rc = qctx_reader(c->q, &rd);
    if (rc) return rc;
    rc = slim_read_seq(rd, c->ds.id, c->seq, &si);
    *found = 0;
    if (rc == SLIM_ENOTFOUND) return 0;
    if (rc) return rc;
    if (si.deleted) return 0;
    int64_t p0 = c->plo > 0 ? c->plo : 0, p1 = (int64_t)si.npos - 1;
    if (c->phi < p1) p1 = c->phi;
    if (p0 > p1) return 0;
    /* decode windows keep their size into the next sequence when the rows
     * asked for entries up to the end of this one */
    c->drun = c->dn && c->dbase + c->dn == c->pos_end && c->dasked == c->dn;
    c->pos = (uint32_t)p0;
    c->pos_end = (uint32_t)(p1 + 1);
    c->tok_loaded = 0;
    c->ntok = si.ntokens;
    c->dn = c->sn = 0;
    *found = 1;
    return 0;
}

/* Set up the walk of dataset c->ds (fresh counters: next_seq grows). */
static int ds_enter(qcur *c)
{
    int64_t end = c->shi;
    /* A short bounded walk (a point query) needs no counter lookup:
     * sequences past the end are simply not found. */
    if (c->shi - c->slo > 1024 || c->shi < 0) {
        slim_dataset_info info;
        int rc = slim_dataset_get(c->q->st, c->ds.name, &info);
        if (rc) return rc;
        if (info.next_seq - 1 < end) end = info.next_seq - 1;
    }
    c->seq = (c->slo > 0 ? c->slo : 0) - 1;
    c->seq_end = end + 1;
    c->pos = c->pos_end = 0;
    c->dn = c->sn = 0;
    c->drun = 0;
    return 0;
}

/* Pick dataset number c->ds_i of the store (walks over all datasets). */
static int ds_pick(qcur *c)
{
    slim_dataset_info info;
    int rc = slim_dataset_at(c->q->st, c->ds_i, &info);
    if (rc) return rc;
    free(c->dsname);
    c->dsname = strdup(info.name);
    if (!c->dsname) return SLIM_ENOMEM;
    rc = qctx_dataset(c->q, c->dsname, &c->ds);
    c->ds.name = c->dsname;  /* the cache may drop its copy */
    return rc ? rc : ds_enter(c);
}

/* Advance to the next position inside the bounds; sets eof at the end.
 * Reads nothing inside a sequence: the columns do. */
static int next_pos(qcur *c)
{
    int rc, found;
    c->norm_ok = c->rowps_ok = 0;
    if (c->pos + 1 < c->pos_end) {
        c->pos++;
        return 0;
    }
    for (;;) {
        while (++c->seq < c->seq_end) {
            if ((rc = seq_enter(c, &found))) return rc;
            if (found) return 0;
        }
        if (!c->all_ds || ++c->ds_i >= c->ds_n) {
            c->eof = 1;
            return 0;
        }
        if ((rc = ds_pick(c))) return rc;
    }
}

/* The decoded entries of the current position, decoding a window from it
 * when it lies outside the current one.  topk reads QBATCH positions at a
 * time; positions starts at one and doubles the window up to QBATCH while
 * every row of the last window asked (an entry column of every row), back
 * to one when a row is skipped (a selective filter asks here and there).
 * A window of 2w follows w rows that all asked, so at most twice the
 * positions the rows asked for are decoded. */
static int row_dist(qcur *c, const slim_dist **out)
{
    uint32_t i = c->pos - c->dbase;  /* wraps above dn when pos < dbase */
    if (i < c->dn) {
        if (c->pos != c->dlast) c->dasked++;
        c->dlast = c->pos;
    } else {
        /* a run: every row of the last window asked, and this one follows */
        int run = c->dn ? c->dbase + c->dn == c->pos && c->dasked == c->dn : c->drun;
        uint32_t n = c->topk ? QBATCH : !run ? 1 : c->dwant < QBATCH / 2 ? 2 * c->dwant : QBATCH;
        if (n > c->pos_end - c->pos) n = c->pos_end - c->pos;
        /* positions needs no rank order (top1 and the token's rank are
         * O(k) from id order, and skipping the sort is most of the decode
         * saved); topk lists entries by rank. */
        int rc = qctx_read(c->q, &c->b, c->ds.id, c->seq, c->pos, n,
                           c->topk ? 0 : SLIM_READ_ID_ORDER);
        c->dn = 0;
        if (rc) return rc;
        c->dbase = c->dlast = c->pos;
        c->dn = c->dwant = n;
        c->dasked = 1;
        i = 0;
    }
    *out = &c->b.dists[i];
    return 0;
}

/* The statistics of the current position: from the statistics window, else
 * from its entries when this row alone was decoded (a point query then
 * reads one record; slim_read_pstats gives bitwise the same figures from
 * entries in id order, which is how positions decodes), else from a new
 * window read from here (slim_read_pstats). */
static int row_pstat(qcur *c, const slim_pstat **out)
{
    uint32_t i = c->pos - c->sbase;
    if (i < c->sn) {
        *out = &c->b.ps[i];
        return 0;
    }
    if (c->rowps_ok || (c->dn == 1 && c->dbase == c->pos)) {
        if (!c->rowps_ok)
            slim_dist_pstat(&c->b.dists[c->pos - c->dbase], c->ds.kind, &c->rowps);
        c->rowps_ok = 1;
        *out = &c->rowps;
        return 0;
    }
    uint32_t n = c->swant < c->pos_end - c->pos ? c->swant : c->pos_end - c->pos;
    int rc = qctx_pstats(c->q, &c->b, c->ds.id, c->seq, c->pos, n);
    c->sn = 0;
    if (rc) return rc;
    c->sbase = c->pos;
    c->sn = n;
    if (c->swant < SBATCH_MAX) c->swant *= 2;
    *out = &c->b.ps[0];
    return 0;
}

/* Advance to the next row: a position, or for topk an entry. */
static int next_row(qcur *c, int fresh)
{
    if (!c->topk) return fresh || !c->eof ? next_pos(c) : 0;
    if (!fresh && ++c->ei < c->ehi) return 0;
    for (;;) {
        const slim_dist *d;
        int rc = next_pos(c);
        if (rc || c->eof) return rc;
        if ((rc = row_dist(c, &d))) return rc;
        int64_t hi = c->rhi < (int64_t)d->k ? c->rhi : (int64_t)d->k;
        if (c->rlo - 1 < hi) {
            c->ei = (uint32_t)(c->rlo - 1);
            c->ehi = (uint32_t)hi;
            return 0;
        }
    }
}

static int q_filter(sqlite3_vtab_cursor *cur, int idxNum, const char *idxStr,
                    int argc, sqlite3_value **argv)
{
    qcur *c = (qcur *)cur;
    qtab *t = (qtab *)cur->pVtab;
    unsigned used = (unsigned)idxNum;
    free(c->dsname);
    c->ds.name = c->dsname = NULL;
    int empty = 0, a = 0, rc = 0;
    const char *name = NULL;
    c->eof = 1;
    c->rowid = 0;
    c->swant = SBATCH0;
    c->slo = c->plo = 0;
    c->rlo = 1;
    c->shi = c->phi = c->rhi = INT64_MAX;
    for (int s = 0; s < S_N; s++) {
        if (!(used & (1u << s)) || a >= argc) continue;
        sqlite3_value *v = argv[a++];
        int strict = (used & (unsigned)STRICT(s)) != 0;
        if (s == S_DS) {
            name = (const char *)sqlite3_value_text(v);
            if (sqlite3_value_type(v) == SQLITE_NULL || sqlite3_value_type(v) == SQLITE_BLOB)
                empty = 1;
        } else if (s <= S_SEQ_HI) {
            narrow(v, s, S_SEQ_EQ, strict, &c->slo, &c->shi, &empty);
        } else if (s <= S_POS_HI) {
            narrow(v, s, S_POS_EQ, strict, &c->plo, &c->phi, &empty);
        } else {
            narrow(v, s, S_RANK_EQ, strict, &c->rlo, &c->rhi, &empty);
        }
    }
    if (c->rlo < 1) c->rlo = 1;
    if (empty || c->slo > c->shi || c->plo > c->phi || c->rlo > c->rhi)
        return SQLITE_OK;
    /* A new scan sees the latest commit, unless another cursor still walks
     * the current view (it must not change under it). */
    if ((c->q->flags & SLIMQ_REFRESH) && c->q->rd && c->q->ncursors == 1 &&
        (rc = slim_read_refresh(c->q->rd)))
        return set_err(cur->pVtab, c->q, rc);
    c->eof = 0;
    if (name) {
        c->all_ds = 0;
        rc = qctx_dataset(c->q, name, &c->ds);
        if (rc == SLIM_ENOTFOUND) {
            sqlite3_free(t->base.zErrMsg);
            t->base.zErrMsg = sqlite3_mprintf("no such dataset '%s'", name);
            return SQLITE_ERROR;
        }
        if (!rc) {
            free(c->dsname);
            c->ds.name = c->dsname = strdup(name);
            rc = c->dsname ? ds_enter(c) : SLIM_ENOMEM;
        }
    } else {
        c->all_ds = 1;
        c->ds_i = 0;
        rc = slim_dataset_count(c->q->st, &c->ds_n);
        if (!rc && c->ds_n == 0) c->eof = 1;
        else if (!rc) rc = ds_pick(c);
    }
    if (!rc && !c->eof) rc = next_row(c, 1);
    if (rc) {
        c->eof = 1;
        return cur_err(c, rc);
    }
    return SQLITE_OK;
}

static int q_next(sqlite3_vtab_cursor *cur)
{
    qcur *c = (qcur *)cur;
    int rc = next_row(c, 0);
    c->rowid++;
    if (rc) {
        c->eof = 1;
        return cur_err(c, rc);
    }
    return SQLITE_OK;
}

static int q_eof(sqlite3_vtab_cursor *cur) { return ((qcur *)cur)->eof; }

static int q_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *out)
{
    *out = ((qcur *)cur)->rowid;
    return SQLITE_OK;
}

/* ------------------------------------------------------------- columns */

/* The normaliser of the current row, from its decoded entries d. */
static double row_lse(qcur *c, const slim_dist *d)
{
    if (!c->norm_ok) {
        c->lse = slimq_norm(d, c->ds.kind, &c->tail_known);
        c->norm_ok = 1;
    }
    return c->lse;
}

/* The actual next token t[pos+1], or -1 at the end of the tokens. */
static int64_t next_token(qcur *c, int *rc)
{
    *rc = 0;
    if (!c->tok_loaded) {
        *rc = qctx_tokens(c->q, &c->b, c->ds.id, c->seq, &c->ntok);
        if (*rc) return -1;
        c->tok_loaded = 1;
    }
    uint32_t p = c->pos + 1;
    return p < c->ntok ? (int64_t)c->b.tok[p] : -1;
}

/* With entries in id order: the most probable entry (ties: the lowest id,
 * as in rank order), and the rank of entry j. */
static uint32_t top_index(const slim_dist *d)
{
    uint32_t best = 0;
    for (uint32_t j = 1; j < d->k; j++)
        if (d->vals[j] > d->vals[best]) best = j;
    return best;
}

static int64_t rank_of(const slim_dist *d, uint32_t j)
{
    int64_t r = 1;
    float v = d->vals[j];
    for (uint32_t i = 0; i < d->k; i++)
        r += d->vals[i] > v || (d->vals[i] == v && d->ids[i] < d->ids[j]);
    return r;
}

static void result_real(sqlite3_context *ctx, double x)
{
    if (isnan(x)) sqlite3_result_null(ctx);
    else sqlite3_result_double(ctx, x);
}

/* entropy and tail_mass: statistics only.  A tail of 0 is also what an
 * unknown normaliser gives (lse NaN, tail_mass NULL), so for LOGITS only
 * that position's entries can tell the two apart. */
static int stat_column(qcur *c, sqlite3_context *ctx, int col)
{
    const slim_pstat *ps;
    const slim_dist *d;
    int rc = row_pstat(c, &ps);
    if (rc) return rc;
    if (col == P_ENTROPY) {
        result_real(ctx, ps->entropy);
    } else if (ps->tail_mass > 0 || c->ds.kind == SLIM_KIND_SAMPLED) {
        result_real(ctx, ps->tail_mass);
    } else {
        if ((rc = row_dist(c, &d))) return rc;
        if (!isnan(d->lse)) result_real(ctx, ps->tail_mass);
    }
    return 0;
}

/* The columns of the entries: the decoded position. */
static int entry_column(qcur *c, sqlite3_context *ctx, int col)
{
    const slim_dist *d;
    int rc = row_dist(c, &d);
    int64_t tok;
    if (rc) return rc;
    switch (col) {
    case P_K: sqlite3_result_int64(ctx, d->k); break;
    case P_TOP1:
        if (d->k) sqlite3_result_int64(ctx, d->ids[top_index(d)]);
        break;
    case P_TOP1_LP:
        if (d->k) {
            uint32_t j = top_index(d);
            result_real(ctx, slimq_logit(d, c->ds.kind, j) - row_lse(c, d));
        }
        break;
    default: { /* P_TOKEN_LP, P_TOKEN_RANK */
        tok = next_token(c, &rc);
        int j = tok >= 0 ? slimq_find(d, (uint32_t)tok) : -1;
        if (j < 0) break;
        if (col == P_TOKEN_RANK) sqlite3_result_int64(ctx, rank_of(d, (uint32_t)j));
        else result_real(ctx, slimq_logit(d, c->ds.kind, (uint32_t)j) - row_lse(c, d));
        break;
    }
    }
    return rc;
}

static int pos_column(qcur *c, sqlite3_context *ctx, int col)
{
    int rc = 0;
    int64_t tok;
    switch (col) {
    case P_TOKEN:
        tok = next_token(c, &rc);
        if (tok >= 0) sqlite3_result_int64(ctx, tok);
        return rc;
    case P_ENTROPY:
    case P_TAIL: return stat_column(c, ctx, col);
    case P_K:
    case P_TOP1:
    case P_TOP1_LP:
    case P_TOKEN_LP:
    case P_TOKEN_RANK: return entry_column(c, ctx, col);
    default: return 0;
    }
}

static int topk_column(qcur *c, sqlite3_context *ctx, int col)
{
    const slim_dist *d;
    int rc = row_dist(c, &d), len = 0;
    const char *p;
    if (rc) return rc;
    switch (col) {
    case C_RANK: sqlite3_result_int64(ctx, c->ei + 1); break;
    case T_TOKEN: sqlite3_result_int64(ctx, d->ids[c->ei]); break;
    case T_PIECE:
        p = qctx_piece(c->q, c->ds.teacher, d->ids[c->ei], &len, &rc);
        if (p) sqlite3_result_text(ctx, p, len, SQLITE_TRANSIENT);
        break;
    case T_LOGIT: result_real(ctx, slimq_logit(d, c->ds.kind, c->ei)); break;
    case T_LOGPROB:
        result_real(ctx, slimq_logit(d, c->ds.kind, c->ei) - row_lse(c, d));
        break;
    default: break;
    }
    return rc;
}

static int q_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col)
{
    qcur *c = (qcur *)cur;
    int rc = 0;
    switch (col) {
    case C_DATASET:
        sqlite3_result_text(ctx, c->ds.name, -1, SQLITE_TRANSIENT);
        return SQLITE_OK;
    case C_SEQ: sqlite3_result_int64(ctx, c->seq); return SQLITE_OK;
    case C_POS: sqlite3_result_int64(ctx, c->pos); return SQLITE_OK;
    default:
        rc = c->topk ? topk_column(c, ctx, col) : pos_column(c, ctx, col);
    }
    if (rc) {
        char *m = walk_msg(c, rc);
        if (m) sqlite3_result_error(ctx, m, -1);
        else sqlite3_result_error_nomem(ctx);
        sqlite3_free(m);
        return SQLITE_ERROR;
    }
    return SQLITE_OK;
}

static const sqlite3_module POSITIONS_MODULE = {
    .iVersion = 1,
    .xCreate = NULL, /* eponymous-only */
    .xConnect = pos_connect,
    .xBestIndex = q_best_index,
    .xDisconnect = q_disconnect,
    .xDestroy = q_disconnect,
    .xOpen = q_open,
    .xClose = q_close,
    .xFilter = q_filter,
    .xNext = q_next,
    .xEof = q_eof,
    .xColumn = q_column,
    .xRowid = q_rowid,
};

static const sqlite3_module TOPK_MODULE = {
    .iVersion = 1,
    .xCreate = NULL,
    .xConnect = topk_connect,
    .xBestIndex = q_best_index,
    .xDisconnect = q_disconnect,
    .xDestroy = q_disconnect,
    .xOpen = q_open,
    .xClose = q_close,
    .xFilter = q_filter,
    .xNext = q_next,
    .xEof = q_eof,
    .xColumn = q_column,
    .xRowid = q_rowid,
};

static void q_free(void *p)
{
    slimq *q = p;
    if (!q) return;
    slimq_release_reader(q);
    for (int i = 0; i < q->nds; i++) free(q->ds[i].name);
    free(q->voc.off);
    free(q->voc.has);
    free(q->voc.text);
    if (q->spare_ok) qbuf_free(&q->spare);
    qbuf_free(&q->fb[0]);
    qbuf_free(&q->fb[1]);
    if (q->flags & SLIMQ_OWN_STORE) slim_store_close(q->st);
    free(q);
}

void *slimq_linked_sqlite_fn(void) { return (void *)sqlite3_create_module_v2; }

/* Views that spell datasets by name, so metadata joins the virtual tables
 * with USING (dataset, seq). */
static const char *const VIEWS =
    "CREATE TEMP VIEW IF NOT EXISTS seqs AS"
    " SELECT d.name AS dataset, s.seq, s.ext_id, s.ntokens, s.npos,"
    " s.entries, s.record_bytes, s.deleted, s.ingest_run,"
    " pd.name AS prefix_dataset, s.prefix_seq, s.prefix_len"
    " FROM sequences s JOIN datasets d ON d.id = s.dataset_id"
    " LEFT JOIN datasets pd ON pd.id = s.prefix_dataset;"
    "CREATE TEMP VIEW IF NOT EXISTS snapshot_seqs AS"
    " SELECT sn.name AS snapshot, m.ord, d.name AS dataset, m.seq, m.split"
    " FROM snapshot_members m JOIN snapshots sn ON sn.id = m.snapshot_id"
    " JOIN datasets d ON d.id = m.dataset_id;";

int slimq_register(sqlite3 *db, slim_store *st, unsigned flags, slimq **out,
                   char **err)
{
    slimq *q = calloc(1, sizeof *q);
    if (out) *out = NULL;
    if (!q) {
        if (flags & SLIMQ_OWN_STORE) slim_store_close(st);
        return SQLITE_NOMEM;
    }
    q->db = db;
    q->st = st;
    q->flags = flags;
    q->voc.teacher = -1;
    /* The positions module owns q: SQLite calls q_free when db closes (or
     * at once if registration fails). */
    int rc = sqlite3_create_module_v2(db, "positions", &POSITIONS_MODULE, q, q_free);
    if (rc) {
        if (err) *err = sqlite3_mprintf("%s", sqlite3_errmsg(db));
        return rc;
    }
    if ((rc = sqlite3_create_module_v2(db, "topk", &TOPK_MODULE, q, NULL)) ||
        (rc = qfuncs_register(q)) ||
        (rc = sqlite3_exec(db, VIEWS, NULL, NULL, NULL))) {
        if (err) *err = sqlite3_mprintf("%s", sqlite3_errmsg(db));
        return rc;
    }
    if (out) *out = q;
    return SQLITE_OK;
}
