/*
 * test_store.c — the store library: open/create, write/read round trips,
 * validation, prefix sharing, dedup/delete vs snapshots, snapshots, verify,
 * corruption, format-version refusal, the busy writer, aborts.
 */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/tap.h"
#include "test_store_util.h"

static char dir[512];
static const slim_teacher TEACH = {"t-test", 1000, NULL, 1.0, SLIM_SOURCE_LOGITS};
static uint32_t ids_buf[1 << 20];
static float vals_buf[1 << 20];
static slim_dist out_buf[4096];

static void problem_cb(void *ctx, const char *p)
{
    char *first = ctx;
    if (!first[0]) snprintf(first, 512, "%s", p);
}

static int64_t verify_count(slim_store *st, char first[512])
{
    int64_t n = -1;
    first[0] = 0;
    int rc = slim_store_verify(st, problem_cb, first, &n);
    if (rc) snprintf(first, 512, "verify rc %d: %s", rc, slim_errmsg(st));
    return rc ? -1 : n;
}

static slim_store *open_store(unsigned flags)
{
    slim_store *st;
    int rc = slim_store_open(&st, dir, flags);
    if (rc) {
        printf("# open: %s\n", slim_errmsg(st));
        slim_store_close(st);
        return NULL;
    }
    return st;
}

/* Write n generated sequences (seed base+i) into dataset `name`. */
static int write_n(slim_store *st, const char *name, const char *prec, uint64_t base, int n, uint32_t T,
                   uint32_t kmax, int64_t *ds)
{
    slim_writer *w;
    slim_precision p;
    slim_precision_parse(prec, &p);
    int rc = slim_write_begin(st, &w);
    if (rc) return rc;
    if ((rc = slim_write_dataset(w, name, &TEACH, SLIM_KIND_LOGITS, "topk:16", &p, ds))) goto fail;
    for (int i = 0; i < n; i++) {
        tsu_seq q;
        if (tsu_make(&q, base + (uint64_t)i, TEACH.vocab_size, T + (uint32_t)i % 7, kmax, 0)) return SLIM_ENOMEM;
        int64_t seq;
        rc = slim_write_seq(w, *ds, 0, "x", q.tokens, q.T, q.d, q.npos, NULL, &seq);
        tsu_free(&q);
        if (rc) goto fail;
    }
    return slim_write_commit(w);
fail:
    slim_write_abort(w);
    return rc;
}

/* Read every sequence back and compare with the generator. */
static const char *check_n(slim_store *st, int64_t ds, uint64_t base, int n, uint32_t T, uint32_t kmax,
                           double tol)
{
    static char msg[300];
    slim_reader *r;
    if (slim_read_begin(st, &r)) return "read_begin";
    const char *bad = NULL;
    for (int i = 0; i < n && !bad; i++) {
        tsu_seq q;
        tsu_make(&q, base + (uint64_t)i, TEACH.vocab_size, T + (uint32_t)i % 7, kmax, 0);
        slim_seq_info si;
        uint32_t toks[4096], nt;
        if (slim_read_seq(r, ds, i, &si) || si.npos != q.npos || si.ntokens != q.T || !si.ext_id ||
            strcmp(si.ext_id, "x") || si.deleted || si.prefix_len)
            bad = "seq info";
        else if (slim_read_tokens(r, ds, i, toks, 4096, &nt) || nt != q.T ||
                 memcmp(toks, q.tokens, 4 * nt))
            bad = "tokens";
        else if (slim_read_positions(r, ds, i, 0, q.npos, out_buf, ids_buf, vals_buf, 1 << 20, NULL, 0)) {
            snprintf(msg, sizeof msg, "read seq %d: %s", i, slim_errmsg(st));
            bad = msg;
        } else {
            for (uint32_t p = 0; p < q.npos && !bad; p++) {
                const char *e = tsu_same(&q.d[p], &out_buf[p], tol);
                if (e) {
                    snprintf(msg, sizeof msg, "seq %d pos %u: %s", i, p, e);
                    bad = msg;
                }
                for (uint32_t j = 1; j < out_buf[p].k && !bad; j++)  /* rank order */
                    if (out_buf[p].vals[j - 1] < out_buf[p].vals[j]) bad = "not in rank order";
            }
        }
        tsu_free(&q);
    }
    slim_read_end(r);
    return bad;
}

static void test_open(void)
{
    TAP_BEGIN("open_missing_is_enostore");
    slim_store *st;
    int rc = slim_store_open(&st, dir, 0);
    CHECK(rc == SLIM_ENOSTORE, "rc %d (%s)", rc, slim_errmsg(st));
    CHECK(strstr(slim_errmsg(st), dir) != NULL, "message does not name the dir: %s", slim_errmsg(st));
    slim_store_close(st);
    TAP_END();

    TAP_BEGIN("create_and_reopen");
    st = open_store(SLIM_OPEN_CREATE);
    CHECK(st != NULL, "create failed");
    if (st) CHECK(slim_store_format_version(st) == slim_format_version(), "version");
    slim_store_close(st);
    st = open_store(SLIM_OPEN_RDONLY);
    CHECK(st != NULL, "reopen read-only failed");
    slim_writer *w = NULL;
    if (st) CHECK(slim_write_begin(st, &w) == SLIM_EREADONLY, "writer on a read-only handle");
    slim_store_close(st);
    TAP_END();
}

static void test_roundtrip(void)
{
    slim_store *st = open_store(0);
    int64_t ds = 0, ds2 = 0;
    TAP_BEGIN("roundtrip_lossless");
    int rc = write_n(st, "lossless", "lossless", 1000, 30, 40, 24, &ds);
    CHECK(rc == 0, "write: %s", slim_errmsg(st));
    const char *e = check_n(st, ds, 1000, 30, 40, 24, -1);
    CHECK(e == NULL, "%s", e);
    TAP_END();

    TAP_BEGIN("roundtrip_logprob_0.01");
    rc = write_n(st, "lp", "logprob:0.01", 5000, 20, 60, 48, &ds2);
    CHECK(rc == 0, "write: %s", slim_errmsg(st));
    e = check_n(st, ds2, 5000, 20, 60, 48, 0.01 + 1e-5);
    CHECK(e == NULL, "%s", e);
    TAP_END();

    TAP_BEGIN("dataset_counters");
    slim_dataset_info di;
    rc = slim_dataset_get(st, "lossless", &di);
    CHECK(rc == 0 && di.sequences == 30 && di.next_seq == 30 && di.record_bytes > 0 && di.entries > 0,
          "rc %d seqs %lld next %lld", rc, (long long)di.sequences, (long long)di.next_seq);
    CHECK(di.precision.mode == SLIM_PREC_LOSSLESS && strcmp(di.teacher.name, "t-test") == 0, "facts");
    int n = 0;
    CHECK(slim_dataset_count(st, &n) == 0 && n == 2, "count %d", n);
    CHECK(slim_dataset_get(st, "nope", &di) == SLIM_ENOTFOUND, "missing dataset");
    TAP_END();

    TAP_BEGIN("point_read_gets_and_subranges");
    slim_reader *r;
    rc = slim_read_begin(st, &r);
    tsu_seq q;
    tsu_make(&q, 1003, TEACH.vocab_size, 40 + 3, 24, 0);
    uint64_t g0 = slim_read_record_count(r);
    rc = slim_read_positions(r, ds, 3, 17, 1, out_buf, ids_buf, vals_buf, 1 << 20, NULL, SLIM_READ_ID_ORDER);
    CHECK(rc == 0, "read: %s", slim_errmsg(st));
    CHECK(slim_read_record_count(r) - g0 <= 2, "point read took %llu gets",
          (unsigned long long)(slim_read_record_count(r) - g0));
    e = tsu_same(&q.d[17], &out_buf[0], -1);
    CHECK(e == NULL, "pos 17: %s", e);
    for (uint32_t j = 1; j < out_buf[0].k; j++) CHECK(out_buf[0].ids[j - 1] < out_buf[0].ids[j], "id order");
    rc = slim_read_positions(r, ds, 3, 5, 30, out_buf, ids_buf, vals_buf, 1 << 20, NULL, 0);
    for (uint32_t p = 0; p < 30 && rc == 0; p++) {
        e = tsu_same(&q.d[5 + p], &out_buf[p], -1);
        CHECK(e == NULL, "subrange pos %u: %s", 5 + p, e);
    }
    size_t need = 0;
    rc = slim_read_positions(r, ds, 3, 0, 10, out_buf, ids_buf, vals_buf, 3, &need, 0);
    size_t want = 0;
    for (int p = 0; p < 10; p++) want += q.d[p].k;
    CHECK(rc == SLIM_ERANGE && need == want, "erange rc %d need %zu want %zu", rc, need, want);
    rc = slim_read_positions(r, ds, 3, 40, 10, out_buf, ids_buf, vals_buf, 1 << 20, NULL, 0);
    CHECK(rc == SLIM_ENOTFOUND, "past npos rc %d", rc);
    CHECK(slim_read_positions(r, ds, 999, 0, 1, out_buf, ids_buf, vals_buf, 1 << 20, NULL, 0) == SLIM_ENOTFOUND,
          "missing seq");
    tsu_free(&q);
    slim_read_end(r);
    TAP_END();

    TAP_BEGIN("content_hash_matches_readback");
    rc = slim_read_begin(st, &r);
    tsu_make(&q, 1005, TEACH.vocab_size, 40 + 5, 24, 0);
    slim_seq_info si;
    uint8_t h[16];
    slim_read_seq(r, ds, 5, &si);
    slim_content_hash(q.tokens, q.T, q.d, q.npos, h);  /* lossless: input == stored */
    CHECK(memcmp(h, si.hash, 16) == 0, "hash of input differs from the stored hash");
    q.d[3].vals[0] += 1.0f;
    slim_content_hash(q.tokens, q.T, q.d, q.npos, h);
    CHECK(memcmp(h, si.hash, 16) != 0, "hash ignores values");
    tsu_free(&q);
    slim_read_end(r);
    TAP_END();
    slim_store_close(st);
}

static void test_validation(void)
{
    slim_store *st = open_store(0);
    slim_writer *w;
    slim_dataset_info di;
    slim_dataset_get(st, "lossless", &di);
    int64_t ds = di.id, next = di.next_seq, seq;
    tsu_seq q;
    tsu_make(&q, 77, TEACH.vocab_size, 20, 8, 0);
    slim_write_begin(st, &w);
    struct { const char *name, *msg; } cases[] = {
        {"reject_id_ge_V", "position 4: id 1000 >= vocab size 1000"},
        {"reject_duplicate_id", "position 5: id"},
        {"reject_nan", "position 6: id"},
        {"reject_plus_inf", "position 7: id"},
        {"reject_npos_gt_T", "21 positions for 20 tokens"},
        {"reject_token_ge_V", "token 5000 at index 2"},
    };
    for (int c = 0; c < 6; c++) {
        TAP_BEGIN(cases[c].name);
        uint32_t save_id = q.d[4].ids[0];
        float save5 = q.d[6].vals[0], save7 = q.d[7].vals[0];
        uint32_t tok2 = q.tokens[2], npos = q.npos, id5 = q.d[5].k > 1 ? q.d[5].ids[1] : 0;
        if (c == 0) q.d[4].ids[0] = 1000;
        if (c == 1) {
            q.d[5].k = q.d[5].k > 1 ? q.d[5].k : 2;
            q.d[5].ids[1] = q.d[5].ids[0];
        }
        if (c == 2) q.d[6].vals[0] = NAN;
        if (c == 3) q.d[7].vals[0] = INFINITY;
        if (c == 4) npos = q.T + 1;
        if (c == 5) q.tokens[2] = 5000;
        int rc = slim_write_seq(w, ds, 0, NULL, q.tokens, q.T, q.d, npos, NULL, &seq);
        CHECK(rc == SLIM_EINVAL, "rc %d", rc);
        CHECK(strstr(slim_errmsg(st), cases[c].msg) != NULL, "message '%s'", slim_errmsg(st));
        q.d[4].ids[0] = save_id;
        q.d[6].vals[0] = save5;
        q.d[7].vals[0] = save7;
        q.tokens[2] = tok2;
        if (c == 1) q.d[5].ids[1] = id5;
        TAP_END();
    }
    TAP_BEGIN("valid_after_rejects_and_seq_numbers");
    int rc = slim_write_seq(w, ds, 0, NULL, q.tokens, q.T, q.d, q.npos, NULL, &seq);
    CHECK(rc == 0 && seq == next, "rc %d seq %lld next %lld: %s", rc, (long long)seq, (long long)next,
          slim_errmsg(st));
    rc = slim_write_commit(w);
    CHECK(rc == 0, "commit: %s", slim_errmsg(st));
    TAP_END();

    TAP_BEGIN("sampled_counts_rules");
    slim_precision p = {SLIM_PREC_LOSSLESS, 0};
    int64_t sds;
    slim_write_begin(st, &w);
    rc = slim_write_dataset(w, "sampled", &TEACH, SLIM_KIND_SAMPLED, "sample:32", &p, &sds);
    CHECK(rc == 0, "dataset: %s", slim_errmsg(st));
    tsu_seq sq;
    tsu_make(&sq, 9, TEACH.vocab_size, 12, 6, 1);
    rc = slim_write_seq(w, sds, 0, NULL, sq.tokens, sq.T, sq.d, sq.npos, NULL, &seq);
    CHECK(rc == 0, "sampled write: %s", slim_errmsg(st));
    sq.d[3].n_samples += 1;
    rc = slim_write_seq(w, sds, 0, NULL, sq.tokens, sq.T, sq.d, sq.npos, NULL, &seq);
    CHECK(rc == SLIM_EINVAL && strstr(slim_errmsg(st), "position 3: counts sum"), "sum: %s", slim_errmsg(st));
    sq.d[3].n_samples -= 1;
    sq.d[2].vals[0] += 0.5f;
    sq.d[2].n_samples = 0;
    rc = slim_write_seq(w, sds, 0, NULL, sq.tokens, sq.T, sq.d, sq.npos, NULL, &seq);
    CHECK(rc == SLIM_EINVAL && strstr(slim_errmsg(st), "position 2"), "fraction: %s", slim_errmsg(st));
    CHECK(slim_write_commit(w) == 0, "commit: %s", slim_errmsg(st));
    tsu_free(&sq);
    TAP_END();

    TAP_BEGIN("empty_and_tokens_only_sequences");
    {
        uint32_t one = 5, got[4], nt = 99;
        int64_t s0 = -1, s1 = -1;
        slim_reader *r;
        slim_seq_info si;
        slim_write_begin(st, &w);
        rc = slim_write_seq(w, ds, 0, NULL, NULL, 0, NULL, 0, NULL, &s0);
        CHECK(rc == 0, "T=0: %s", slim_errmsg(st));
        rc = slim_write_seq(w, ds, 0, NULL, &one, 1, NULL, 0, NULL, &s1);
        CHECK(rc == 0 && s1 == s0 + 1, "T=1 npos=0: %s", slim_errmsg(st));
        CHECK(slim_write_commit(w) == 0, "commit: %s", slim_errmsg(st));
        slim_read_begin(st, &r);
        CHECK(slim_read_tokens(r, ds, s0, got, 4, &nt) == 0 && nt == 0, "T=0 tokens");
        CHECK(slim_read_tokens(r, ds, s1, got, 4, &nt) == 0 && nt == 1 && got[0] == 5, "T=1 tokens");
        CHECK(slim_read_seq(r, ds, s1, &si) == 0 && si.npos == 0 && si.ntokens == 1, "T=1 info");
        CHECK(slim_read_positions(r, ds, s1, 0, 0, out_buf, ids_buf, vals_buf, 1, NULL, 0) == 0, "empty read");
        CHECK(slim_read_positions(r, ds, s1, 0, 1, out_buf, ids_buf, vals_buf, 1, NULL, 0) == SLIM_ENOTFOUND,
              "read past npos 0");
        slim_read_end(r);
        char first[512];
        CHECK(verify_count(st, first) == 0, "verify: %s", first);
    }
    TAP_END();

    TAP_BEGIN("dataset_mismatch");
    slim_write_begin(st, &w);
    slim_teacher t2 = TEACH;
    t2.vocab_size = 1001;
    rc = slim_write_dataset(w, "lossless", &t2, SLIM_KIND_LOGITS, "topk:16", &p, &sds);
    CHECK(rc == SLIM_EMISMATCH && strstr(slim_errmsg(st), "vocab size 1001"), "vocab: %s", slim_errmsg(st));
    rc = slim_write_dataset(w, "lossless", &TEACH, SLIM_KIND_LOGITS, "topk:17", &p, &sds);
    CHECK(rc == SLIM_EMISMATCH && strstr(slim_errmsg(st), "sparsifier"), "sparsifier: %s", slim_errmsg(st));
    slim_write_abort(w);
    TAP_END();
    tsu_free(&q);
    slim_store_close(st);
}

static void test_abort_busy(void)
{
    slim_store *st = open_store(0), *st2 = open_store(SLIM_OPEN_NOWAIT);
    slim_writer *w, *w2;
    slim_dataset_info di;
    slim_dataset_get(st, "lossless", &di);
    TAP_BEGIN("abort_drops_everything");
    tsu_seq q;
    tsu_make(&q, 4242, TEACH.vocab_size, 30, 8, 0);
    int64_t seq;
    slim_write_begin(st, &w);
    int rc = slim_write_seq(w, di.id, 0, NULL, q.tokens, q.T, q.d, q.npos, NULL, &seq);
    CHECK(rc == 0, "write: %s", slim_errmsg(st));
    slim_write_abort(w);
    slim_dataset_info d2;
    slim_dataset_get(st, "lossless", &d2);
    CHECK(d2.next_seq == di.next_seq && d2.record_bytes == di.record_bytes, "abort left traces");
    char first[512];
    CHECK(verify_count(st, first) == 0, "verify after abort: %s", first);
    TAP_END();

    TAP_BEGIN("busy_writer_nowait");
    rc = slim_write_begin(st, &w);
    CHECK(rc == 0, "first writer: %s", slim_errmsg(st));
    rc = slim_write_begin(st2, &w2);
    CHECK(rc == SLIM_EBUSY && strstr(slim_errmsg(st2), "busy"), "second writer rc %d: %s", rc, slim_errmsg(st2));
    {   /* opening, reading and verifying never wait for the writer */
        slim_store *st3 = open_store(0);
        char msg[512];
        CHECK(st3 != NULL, "open during a write batch failed");
        if (st3) CHECK(verify_count(st3, msg) == 0, "verify during a write batch: %s", msg);
        slim_store_close(st3);
    }
    slim_write_abort(w);
    rc = slim_write_begin(st2, &w2);
    CHECK(rc == 0, "after release: %s", slim_errmsg(st2));
    slim_write_abort(w2);
    TAP_END();
    tsu_free(&q);
    slim_store_close(st);
    slim_store_close(st2);
}

/* Prefix sharing, dedup lookups, deletion vs snapshots and prefixes. */
static void test_prefix_delete_snapshot(void)
{
    slim_store *st = open_store(0);
    slim_writer *w;
    slim_precision p = {SLIM_PREC_LOSSLESS, 0};
    int64_t ds, a, b, c, seq;
    tsu_seq qa, qb, qc;
    tsu_make(&qa, 100, TEACH.vocab_size, 100, 16, 0);
    tsu_make(&qb, 200, TEACH.vocab_size, 120, 16, 0);
    tsu_make(&qc, 300, TEACH.vocab_size, 90, 16, 0);
    memcpy(qb.tokens, qa.tokens, 60 * 4);  /* B shares 60 tokens with A */
    memcpy(qc.tokens, qb.tokens, 80 * 4);  /* C shares 80 with B, 60 with A */
    slim_write_begin(st, &w);
    slim_write_dataset(w, "pfx", &TEACH, SLIM_KIND_LOGITS, "topk:16", &p, &ds);
    int rc = slim_write_seq(w, ds, 0, "a", qa.tokens, qa.T, qa.d, qa.npos, NULL, &a);
    CHECK(rc == 0, "A: %s", slim_errmsg(st));

    TAP_BEGIN("find_prefix_and_share");
    slim_prefix_ref ref;
    rc = slim_write_find_prefix(w, ds, qb.tokens, qb.T, &ref);
    CHECK(rc == 0 && ref.seq == a && ref.len == 60, "rc %d seq %lld len %u", rc, (long long)ref.seq, ref.len);
    rc = slim_write_seq(w, ds, 0, "b", qb.tokens, qb.T, qb.d, qb.npos, &ref, &b);
    CHECK(rc == 0, "B: %s", slim_errmsg(st));
    rc = slim_write_find_prefix(w, ds, qc.tokens, qc.T, &ref);
    CHECK(rc == 0 && ref.seq == a && ref.len == 60, "C candidates: rc %d seq %lld len %u", rc,
          (long long)ref.seq, ref.len);
    slim_prefix_ref viab = {ds, b, 80};  /* a two-hop request gets flattened */
    rc = slim_write_seq(w, ds, 0, "c", qc.tokens, qc.T, qc.d, qc.npos, &viab, &c);
    CHECK(rc == 0, "C: %s", slim_errmsg(st));
    CHECK(slim_write_commit(w) == 0, "commit: %s", slim_errmsg(st));
    slim_reader *r;
    slim_read_begin(st, &r);
    slim_seq_info si;
    slim_read_seq(r, ds, c, &si);
    CHECK(si.prefix_seq == a && si.prefix_len == 60, "C flattened to seq %lld len %u", (long long)si.prefix_seq,
          si.prefix_len);
    rc = slim_read_positions(r, ds, b, 0, qb.npos, out_buf, ids_buf, vals_buf, 1 << 20, NULL, 0);
    CHECK(rc == 0, "read B: %s", slim_errmsg(st));
    for (uint32_t i = 0; i < qb.npos && rc == 0; i++) {
        const char *e = tsu_same(i < 60 ? &qa.d[i] : &qb.d[i], &out_buf[i], -1);
        CHECK(e == NULL, "B pos %u: %s", i, e);
    }
    rc = slim_read_positions(r, ds, c, 55, 10, out_buf, ids_buf, vals_buf, 1 << 20, NULL, 0);
    for (uint32_t i = 0; i < 10 && rc == 0; i++) {
        const char *e = tsu_same(55 + i < 60 ? &qa.d[55 + i] : &qc.d[55 + i], &out_buf[i], -1);
        CHECK(e == NULL, "C pos %u: %s", 55 + i, e);
    }
    slim_read_end(r);
    slim_dataset_info di;
    slim_dataset_get(st, "pfx", &di);
    TAP_END();

    TAP_BEGIN("find_tokens_dedup");
    slim_write_begin(st, &w);
    rc = slim_write_find_tokens(w, ds, qb.tokens, qb.T, &seq);
    CHECK(rc == 0 && seq == b, "rc %d seq %lld", rc, (long long)seq);
    qb.tokens[119] ^= 1;
    CHECK(slim_write_find_tokens(w, ds, qb.tokens, qb.T, &seq) == SLIM_ENOTFOUND, "changed tokens found");
    qb.tokens[119] ^= 1;
    TAP_END();

    TAP_BEGIN("delete_keeps_borrowed_prefix");
    int64_t freed = -1;
    rc = slim_write_delete_seq(w, ds, a, &freed);
    CHECK(rc == 0 && freed == 0, "delete A rc %d freed %lld", rc, (long long)freed);
    CHECK(slim_write_commit(w) == 0, "commit: %s", slim_errmsg(st));
    slim_read_begin(st, &r);
    rc = slim_read_positions(r, ds, b, 0, 60, out_buf, ids_buf, vals_buf, 1 << 20, NULL, 0);
    CHECK(rc == 0, "B after deleting A: %s", slim_errmsg(st));
    slim_read_end(r);
    char first[512];
    CHECK(verify_count(st, first) == 0, "verify: %s", first);
    TAP_END();

    TAP_BEGIN("snapshot_create_show");
    slim_write_begin(st, &w);
    const char *dsn[] = {"pfx", "lossless"};
    rc = slim_write_snapshot(w, "s1", dsn, 2, 0.3);
    CHECK(rc == 0, "snapshot: %s", slim_errmsg(st));
    CHECK(slim_write_snapshot(w, "s1", dsn, 1, 0) == SLIM_EEXIST, "duplicate name accepted");
    CHECK(slim_write_commit(w) == 0, "commit: %s", slim_errmsg(st));
    slim_snapshot *s;
    rc = slim_snapshot_open(st, "s1", &s);
    CHECK(rc == 0, "open: %s", slim_errmsg(st));
    size_t n = rc ? 0 : slim_snapshot_size(s);
    slim_dataset_info dl;
    slim_dataset_get(st, "lossless", &dl);
    CHECK(n == (size_t)(2 + dl.sequences), "members %zu", n);
    const slim_member *m = rc ? NULL : slim_snapshot_members(s);
    int nvalid = 0;
    for (size_t i = 0; i < n; i++) {
        nvalid += m[i].split;
        /* datasets in the order given (pfx, then lossless), seqs ascending */
        if (i) CHECK((m[i - 1].dataset == ds && m[i].dataset != ds) ||
                     (m[i - 1].dataset == m[i].dataset && m[i - 1].seq < m[i].seq), "order at %zu", i);
    }
    CHECK(nvalid > 0 && nvalid < (int)n, "valid split %d of %zu", nvalid, n);
    CHECK(n && m[0].seq == b, "first member is seq %lld", n ? (long long)m[0].seq : -1LL);
    char hex1[65];
    snprintf(hex1, sizeof hex1, "%s", rc ? "" : slim_snapshot_hash_hex(s));
    slim_snapshot_close(s);
    TAP_END();

    TAP_BEGIN("delete_never_frees_snapshot_data");
    slim_write_begin(st, &w);
    rc = slim_write_delete_seq(w, ds, b, &freed);
    CHECK(rc == 0 && freed == 0, "delete B (in snapshot) freed %lld", (long long)freed);
    rc = slim_write_delete_seq(w, ds, c, &freed);
    CHECK(rc == 0 && freed == 0, "delete C (in snapshot) freed %lld", (long long)freed);
    CHECK(slim_write_commit(w) == 0, "commit: %s", slim_errmsg(st));
    rc = slim_snapshot_open(st, "s1", &s);
    CHECK(rc == 0 && strcmp(slim_snapshot_hash_hex(s), hex1) == 0, "snapshot changed: %s", slim_errmsg(st));
    slim_snapshot_close(s);
    slim_read_begin(st, &r);
    rc = slim_read_positions(r, ds, c, 0, qc.npos, out_buf, ids_buf, vals_buf, 1 << 20, NULL, 0);
    CHECK(rc == 0, "deleted C still readable for the snapshot: %s", slim_errmsg(st));
    slim_read_end(r);
    CHECK(verify_count(st, first) == 0, "verify: %s", first);
    TAP_END();

    TAP_BEGIN("delete_unreferenced_frees");
    tsu_seq qd;
    tsu_make(&qd, 400, TEACH.vocab_size, 50, 16, 0);
    int64_t dseq;
    slim_write_begin(st, &w);
    slim_write_seq(w, ds, 0, "d", qd.tokens, qd.T, qd.d, qd.npos, NULL, &dseq);
    CHECK(slim_write_commit(w) == 0, "commit: %s", slim_errmsg(st));
    slim_dataset_get(st, "pfx", &di);
    int64_t before = di.record_bytes;
    slim_write_begin(st, &w);
    rc = slim_write_delete_seq(w, ds, dseq, &freed);
    CHECK(rc == 0 && freed > 0, "freed %lld", (long long)freed);
    CHECK(slim_write_commit(w) == 0, "commit: %s", slim_errmsg(st));
    slim_dataset_get(st, "pfx", &di);
    CHECK(di.record_bytes == before - freed, "record_bytes %lld -> %lld", (long long)before,
          (long long)di.record_bytes);
    slim_read_begin(st, &r);
    rc = slim_read_positions(r, ds, dseq, 0, 1, out_buf, ids_buf, vals_buf, 1 << 20, NULL, 0);
    CHECK(rc == SLIM_ENOTFOUND, "purged read rc %d", rc);
    slim_read_end(r);
    CHECK(verify_count(st, first) == 0, "verify: %s", first);
    tsu_free(&qd);
    TAP_END();
    TAP_BEGIN("prefix_sharing_saves_bytes");
    {
        int64_t e;
        slim_write_begin(st, &w);
        rc = slim_write_seq(w, ds, 0, "b-unshared", qb.tokens, qb.T, qb.d, qb.npos, NULL, &e);
        CHECK(rc == 0 && slim_write_commit(w) == 0, "write: %s", slim_errmsg(st));
        sqlite3_stmt *q;
        int64_t rb[2] = {0, 0};
        sqlite3_prepare_v2(slim_store_sqlite(st), "SELECT record_bytes FROM sequences WHERE dataset_id = ?1"
                           " AND seq = ?2", -1, &q, NULL);
        for (int i = 0; i < 2; i++) {
            sqlite3_reset(q);
            sqlite3_bind_int64(q, 1, ds);
            sqlite3_bind_int64(q, 2, i ? e : b);
            if (sqlite3_step(q) == SQLITE_ROW) rb[i] = sqlite3_column_int64(q, 0);
        }
        sqlite3_finalize(q);
        /* B borrows 60 of its 120 positions */
        CHECK(rb[0] > 0 && rb[1] > 0 && rb[0] < rb[1] * 3 / 4, "shared %lld bytes vs unshared %lld",
              (long long)rb[0], (long long)rb[1]);
        slim_reader *r2;
        slim_seq_info s1, s2;
        slim_read_begin(st, &r2);
        slim_read_seq(r2, ds, b, &s1);
        slim_read_seq(r2, ds, e, &s2);
        CHECK(memcmp(s1.hash, s2.hash, 16) != 0, "B's prefix came from A, so the hashes must differ");
        slim_read_end(r2);
    }
    TAP_END();
    tsu_free(&qa);
    tsu_free(&qb);
    tsu_free(&qc);
    slim_store_close(st);
}

/* Flip a byte of one LMDB value through the raw API. */
static int corrupt_one(int64_t want_ds, int64_t want_seq)
{
    char p[600];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    MDB_val k, v;
    snprintf(p, sizeof p, "%s/logits", dir);
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 4);
    mdb_env_set_mapsize(env, (size_t)1 << 40);
    if (mdb_env_open(env, p, 0, 0666)) return -1;
    mdb_txn_begin(env, NULL, 0, &txn);
    mdb_dbi_open(txn, "records", 0, &dbi);
    mdb_cursor_open(txn, dbi, &cur);
    int done = -1;
    while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
        const uint8_t *kb = k.mv_data;
        int64_t d = 0, s = 0;
        for (int i = 0; i < 8; i++) d = d << 8 | kb[i], s = s << 8 | kb[8 + i];
        if (d != want_ds || s != want_seq) continue;
        uint8_t *copy = malloc(v.mv_size);
        memcpy(copy, v.mv_data, v.mv_size);
        copy[v.mv_size / 2] ^= 0x5a;
        MDB_val nv = {v.mv_size, copy};
        done = mdb_cursor_put(cur, &k, &nv, MDB_CURRENT);
        free(copy);
        break;
    }
    mdb_cursor_close(cur);
    mdb_txn_commit(txn);
    mdb_env_close(env);
    return done;
}

static void test_corrupt(void)
{
    TAP_BEGIN("corrupt_value_named_by_verify");
    slim_store *st = open_store(0);
    slim_dataset_info di;
    slim_dataset_get(st, "lossless", &di);
    slim_store_close(st);
    CHECK(corrupt_one(di.id, 7) == 0, "could not corrupt");
    st = open_store(0);
    char first[512];
    int64_t n = verify_count(st, first);
    CHECK(n >= 1, "verify found %lld problems", (long long)n);
    CHECK(strstr(first, "seq 7") != NULL, "problem does not name seq 7: %s", first);
    slim_reader *r;
    slim_read_begin(st, &r);
    int rc = slim_read_positions(r, di.id, 7, 0, 40, out_buf, ids_buf, vals_buf, 1 << 20, NULL, 0);
    CHECK(rc == SLIM_ECORRUPT, "read rc %d", rc);
    CHECK(strstr(slim_errmsg(st), "seq 7") != NULL, "read error does not name the record: %s", slim_errmsg(st));
    rc = slim_read_positions(r, di.id, 6, 0, 40, out_buf, ids_buf, vals_buf, 1 << 20, NULL, 0);
    CHECK(rc == 0, "neighbour unreadable: %s", slim_errmsg(st));
    slim_read_end(r);
    slim_store_close(st);
    TAP_END();
}

static void test_newer_format(void)
{
    TAP_BEGIN("newer_format_refused_untouched");
    char p[600];
    snprintf(p, sizeof p, "%s/meta.sqlite", dir);
    sqlite3 *db;
    sqlite3_open(p, &db);
    sqlite3_exec(db, "PRAGMA journal_mode = DELETE; PRAGMA user_version = 999", NULL, NULL, NULL);
    sqlite3_close(db);
    struct stat a, b;
    stat(p, &a);
    char wal[620];
    snprintf(wal, sizeof wal, "%s-wal", p);
    slim_store *st;
    int rc = slim_store_open(&st, dir, 0);
    CHECK(rc == SLIM_EVERSION, "rc %d", rc);
    CHECK(strstr(slim_errmsg(st), "999") && strstr(slim_errmsg(st), "newer"), "message: %s", slim_errmsg(st));
    slim_store_close(st);
    /* read-only: its own (read-only) connection checks, with the same message */
    rc = slim_store_open(&st, dir, SLIM_OPEN_RDONLY);
    CHECK(rc == SLIM_EVERSION, "read-only: rc %d", rc);
    CHECK(strstr(slim_errmsg(st), "999") && strstr(slim_errmsg(st), "newer"), "read-only: message: %s",
          slim_errmsg(st));
    slim_store_close(st);
    stat(p, &b);
    CHECK(a.st_size == b.st_size && a.st_mtime == b.st_mtime && access(wal, F_OK) != 0, "store was touched");
    TAP_END();
}

static int64_t sql_int(slim_store *st, const char *sql)
{
    sqlite3_stmt *q;
    int64_t v = -1;
    if (sqlite3_prepare_v2(slim_store_sqlite(st), sql, -1, &q, NULL) == 0 && sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return v;
}

static void test_vocab_runs(void)
{
    slim_store *st = open_store(0);
    slim_writer *w;
    slim_dataset_info di;
    slim_dataset_get(st, "lossless", &di);
    TAP_BEGIN("vocab_import_and_replace");
    uint32_t ids[3] = {0, 7, 999};
    const char *pieces[3] = {"<s>", " the", "\xc3\xa9t\xc3\xa9"};
    slim_write_begin(st, &w);
    int rc = slim_write_vocab(w, di.id, 3, ids, pieces, "sha256:abc");
    CHECK(rc == 0, "vocab: %s", slim_errmsg(st));
    uint32_t bad = 1000;
    const char *bp[1] = {"x"};
    CHECK(slim_write_vocab(w, di.id, 1, &bad, bp, NULL) == SLIM_EINVAL, "id >= V accepted");
    CHECK(slim_write_commit(w) == 0, "commit: %s", slim_errmsg(st));
    CHECK(sql_int(st, "SELECT count(*) FROM vocab") == 3, "3 pieces");
    CHECK(sql_int(st, "SELECT count(*) FROM vocab WHERE id = 7 AND piece = ' the'") == 1, "piece text");
    CHECK(sql_int(st, "SELECT count(*) FROM teachers WHERE tokenizer_hash = 'sha256:abc'") == 1, "hash kept");
    slim_write_begin(st, &w);
    rc = slim_write_vocab(w, di.id, 1, ids + 1, pieces + 1, NULL);
    CHECK(rc == 0 && slim_write_commit(w) == 0, "replace: %s", slim_errmsg(st));
    CHECK(sql_int(st, "SELECT count(*) FROM vocab") == 1, "import did not replace");
    TAP_END();

    TAP_BEGIN("ingest_run_records");
    int64_t run;
    slim_write_begin(st, &w);
    rc = slim_write_run_begin(w, di.id, "test 1.0", "[\"a\"]", &run);
    CHECK(rc == 0, "run begin: %s", slim_errmsg(st));
    CHECK(slim_write_run_input(w, run, "f.jsonl", "sha256:00", 3, 1, 0) == 0, "input: %s", slim_errmsg(st));
    CHECK(slim_write_run_end(w, run, "ok", 3, 1, 0) == 0, "end: %s", slim_errmsg(st));
    CHECK(slim_write_run_end(w, run + 100, "ok", 0, 0, 0) == SLIM_ENOTFOUND, "end of a missing run");
    CHECK(slim_write_commit(w) == 0, "commit: %s", slim_errmsg(st));
    CHECK(sql_int(st, "SELECT added * 100 + skipped * 10 + refused FROM ingest_runs WHERE status = 'ok'"
                      " AND finished_at IS NOT NULL") == 310, "run row");
    CHECK(sql_int(st, "SELECT count(*) FROM ingest_inputs WHERE path = 'f.jsonl'") == 1, "input row");
    TAP_END();
    slim_store_close(st);
}

extern const char *const slim_schema_migrations[];

static int count_tables(const char *path)
{
    sqlite3 *db;
    sqlite3_stmt *q;
    int n = -1;
    sqlite3_open(path, &db);
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table'", -1, &q, NULL) == 0 &&
        sqlite3_step(q) == SQLITE_ROW)
        n = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return n;
}

/* A store made by a slim that knew only the first migration. */
static void test_migration(void)
{
    TAP_BEGIN("older_store_migrated_on_open");
    char d2[600], p[700];
    snprintf(d2, sizeof d2, "%s.old", dir);
    mkdir(d2, 0777);
    snprintf(p, sizeof p, "%s/meta.sqlite", d2);
    sqlite3 *db;
    sqlite3_open(p, &db);
    int rc = sqlite3_exec(db, slim_schema_migrations[0], NULL, NULL, NULL);
    sqlite3_exec(db, "PRAGMA user_version = 1", NULL, NULL, NULL);
    sqlite3_close(db);
    CHECK(rc == 0, "migration 1 failed");
    int before = count_tables(p);
    slim_store *st;
    if (slim_format_version() > 1) {
        rc = slim_store_open(&st, d2, SLIM_OPEN_RDONLY);
        CHECK(rc == SLIM_EVERSION && strstr(slim_errmsg(st), "needs migrating"), "read-only open rc %d: %s", rc,
              slim_errmsg(st));
        slim_store_close(st);
    }
    rc = slim_store_open(&st, d2, 0);
    CHECK(rc == 0, "open: %s", slim_errmsg(st));
    CHECK(rc || slim_store_format_version(st) == slim_format_version(), "not migrated");
    slim_store_close(st);
    CHECK(slim_format_version() == 1 || count_tables(p) > before, "later migrations added no table");
    TAP_END();
}

int main(void)
{
    const char *tmp = getenv("SLIM_TMP");
    snprintf(dir, sizeof dir, "%s/store-unit.%d", tmp ? tmp : "/tmp", (int)getpid());
    test_open();
    test_roundtrip();
    test_validation();
    test_abort_busy();
    test_vocab_runs();
    test_prefix_delete_snapshot();
    test_corrupt();
    test_newer_format();
    test_migration();
    return tap_done();
}
