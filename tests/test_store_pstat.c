/*
 * test_store_pstat.c — slim_read_pstats: the statistics of every position
 * of every precision and kind, through prefix references, across chunk
 * boundaries, are bitwise those of slim_dist_pstat on the values
 * slim_read_positions returns (in id order); errors are the same.  They
 * come from the chunks' statistics blocks (a block edited under a valid
 * checksum shows through), and `verify` checks the blocks.
 */
#include <lmdb.h>
#include <unistd.h>
#include <xxhash.h>

#include "lib/tap.h"
#include "test_store_util.h"

static char dir[512];
static const slim_teacher TEACH = {"t-pstat", 1000, NULL, 1.0, SLIM_SOURCE_LOGITS};
static uint32_t ids_buf[1 << 20];
static float vals_buf[1 << 20];
static slim_dist out_buf[4096];
static slim_pstat ps_buf[4096];

typedef struct dsinfo {
    const char *name, *prec;
    int kind;
    int64_t id;
    int64_t seqs[8];
    int nseq;
} dsinfo;

static dsinfo sets[] = {
    {"lp", "logprob:0.01", SLIM_KIND_LOGITS, 0, {0}, 0},
    {"pr", "prob:1e-4", SLIM_KIND_LOGITS, 0, {0}, 0},
    {"ll", "lossless", SLIM_KIND_LOGITS, 0, {0}, 0},
    {"sa", "lossless", SLIM_KIND_SAMPLED, 0, {0}, 0},
};
#define NSETS (int)(sizeof sets / sizeof sets[0])

/* Per dataset: a long sequence (several chunks), one sharing its first 150
 * positions, short ones; every third position of the logits sets has an
 * unknown lse. */
static int write_all(slim_store *st)
{
    slim_writer *w;
    int rc = slim_write_begin(st, &w);
    if (rc) return rc;
    for (int s = 0; s < NSETS; s++) {
        dsinfo *x = &sets[s];
        slim_precision p;
        slim_precision_parse(x->prec, &p);
        if ((rc = slim_write_dataset(w, x->name, &TEACH, x->kind, "topk:64", &p, &x->id))) break;
        tsu_seq a;
        for (int i = 0; i < 5 && !rc; i++) {
            uint32_t T = i < 2 ? 700 : 3 + 11 * (uint32_t)i;
            if (tsu_make(&a, 1000 * (uint64_t)s + (uint64_t)i, TEACH.vocab_size, T, 64,
                         x->kind == SLIM_KIND_SAMPLED)) return SLIM_ENOMEM;
            if (x->kind == SLIM_KIND_LOGITS)
                for (uint32_t j = 0; j < a.npos; j += 3) a.d[j].lse = NAN;
            slim_prefix_ref ref = {x->id, x->seqs[0], 150}, *pr = NULL;
            if (i == 1) {  /* share the first 150 positions of seq 0 */
                tsu_seq z;
                tsu_make(&z, 1000 * (uint64_t)s, TEACH.vocab_size, 700, 64, x->kind == SLIM_KIND_SAMPLED);
                memcpy(a.tokens, z.tokens, 151 * sizeof(uint32_t));
                tsu_free(&z);
                pr = &ref;
            }
            rc = slim_write_seq(w, x->id, 0, NULL, a.tokens, a.T, a.d, a.npos, pr, &x->seqs[i]);
            x->nseq = i + 1;
            tsu_free(&a);
        }
        if (rc) break;
    }
    if (rc) {
        printf("# write: %s\n", slim_errmsg(st));
        slim_write_abort(w);
        return rc;
    }
    return slim_write_commit(w);
}

/* Compare slim_read_pstats of [pos, pos+n) with the values read back. */
static int same_range(slim_reader *r, slim_store *st, const dsinfo *x, int64_t seq, uint32_t pos,
                      uint32_t n)
{
    int rc = slim_read_positions(r, x->id, seq, pos, n, out_buf, ids_buf, vals_buf,
                                 sizeof ids_buf / sizeof ids_buf[0], NULL, SLIM_READ_ID_ORDER);
    CHECK(rc == 0, "read %s seq %lld %u+%u: %s", x->name, (long long)seq, pos, n, slim_errmsg(st));
    rc = slim_read_pstats(r, x->id, seq, pos, n, ps_buf);
    CHECK(rc == 0, "pstats %s seq %lld %u+%u: %s", x->name, (long long)seq, pos, n, slim_errmsg(st));
    if (rc) return 0;
    for (uint32_t i = 0; i < n; i++) {
        slim_pstat want;
        slim_dist_pstat(&out_buf[i], x->kind, &want);
        if (memcmp(&want, &ps_buf[i], sizeof want)) {
            CHECK(0, "%s seq %lld position %u: entropy %.9g tail %.9g, want %.9g %.9g", x->name,
                  (long long)seq, pos + i, ps_buf[i].entropy, ps_buf[i].tail_mass, want.entropy,
                  want.tail_mass);
            return 0;
        }
    }
    return 1;
}

static void test_ranges(slim_store *st)
{
    slim_reader *r;
    int rc = slim_read_begin(st, &r);
    TAP_BEGIN("read_pstats_equals_pstat_of_read_positions");
    CHECK(rc == 0, "reader: %s", slim_errmsg(st));
    for (int s = 0; s < NSETS && !rc; s++) {
        const dsinfo *x = &sets[s];
        for (int i = 0; i < x->nseq; i++) {
            slim_seq_info si;
            slim_read_seq(r, x->id, x->seqs[i], &si);
            if (!same_range(r, st, x, x->seqs[i], 0, si.npos)) break;
            /* windows across chunk and prefix boundaries, and single points */
            for (uint32_t p = 0; p + 1 < si.npos; p += 37)
                if (!same_range(r, st, x, x->seqs[i], p, si.npos - p < 61 ? si.npos - p : 61) ||
                    !same_range(r, st, x, x->seqs[i], p, 1))
                    break;
        }
    }
    TAP_END();

    TAP_BEGIN("read_pstats_errors_like_read_positions");
    const dsinfo *x = &sets[0];
    slim_seq_info si;
    slim_read_seq(r, x->id, x->seqs[2], &si);
    rc = slim_read_pstats(r, x->id, x->seqs[2], si.npos - 2, 3, ps_buf);
    CHECK(rc == SLIM_ENOTFOUND, "past npos: rc %d", rc);
    rc = slim_read_pstats(r, x->id, 999, 0, 1, ps_buf);
    CHECK(rc == SLIM_ENOTFOUND, "no such sequence: rc %d", rc);
    rc = slim_read_pstats(r, x->id, x->seqs[2], si.npos, 0, ps_buf);
    CHECK(rc == 0, "empty range at the end: rc %d", rc);
    TAP_END();
    slim_read_end(r);
}

static const uint8_t *skip_varint(const uint8_t *p)
{
    while (*p & 0x80) p++;
    return p + 1;
}

/* Change position 0's stored entropy by one ulp and fix the checksum: a
 * writer bug the checksum cannot see.  -1 unless a version 2 chunk. */
static int edit_stats(uint8_t *c, size_t len)
{
    const uint8_t *q = c + 5;  /* magic, version, kind, mode */
    for (int i = 0; i < 4; i++) q = skip_varint(q);  /* V, first_pos, npos, entries */
    if (c[4] == 1 || c[4] == 2) q += 16;             /* eps, step */
    c[(size_t)(q - c) + 1] ^= 1;                     /* after the statistics mode */
    uint64_t x = XXH3_64bits(c, len - 8);
    for (int i = 0; i < 8; i++) c[len - 8 + i] = (uint8_t)(x >> (8 * i));
    return c[2] == 2 ? 0 : -1;
}

/* Replace the record of (ds, seq) at position 0: by val[len] when given,
 * else by itself passed through edit. */
static int put_record(int64_t ds, int64_t seq, const uint8_t *val, size_t len,
                      int (*edit)(uint8_t *, size_t))
{
    char p[600];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    uint8_t key[20] = {0}, *copy = NULL;
    for (int i = 0; i < 8; i++) key[7 - i] = (uint8_t)(ds >> (8 * i)), key[15 - i] = (uint8_t)(seq >> (8 * i));
    MDB_val k = {20, key}, v = {len, (void *)val};
    snprintf(p, sizeof p, "%s/logits", dir);
    if (mdb_env_create(&env)) return -1;
    mdb_env_set_maxdbs(env, 4);
    mdb_env_set_mapsize(env, (size_t)1 << 40);
    int rc = mdb_env_open(env, p, 0, 0666);
    if (!rc) rc = mdb_txn_begin(env, NULL, 0, &txn);
    if (!rc) rc = mdb_dbi_open(txn, "records", 0, &dbi);
    if (!rc && edit && !(rc = mdb_get(txn, dbi, &k, &v))) {
        copy = malloc(v.mv_size);
        rc = copy ? (memcpy(copy, v.mv_data, v.mv_size), edit(copy, v.mv_size)) : -1;
        v.mv_data = copy;
    }
    if (!rc) rc = mdb_put(txn, dbi, &k, &v, 0);
    if (!rc) rc = mdb_txn_commit(txn);
    free(copy);
    mdb_env_close(env);
    return rc;
}

/* A store written by version 1: its chunk has no statistics block. */
static void test_v1_chunk(void)
{
    const dsinfo *x = &sets[0];
    slim_store *st;
    slim_writer *w;
    slim_reader *r;
    uint32_t tok[2] = {1, 2}, i0[2] = {3, 7}, i1[1] = {0};
    float v0[2] = {-0.5f, -2.0f}, v1[1] = {-0.1f};
    slim_dist d[2] = {{2, 0, 0, i0, v0}, {1, 0, 0, i1, v1}};
    int64_t seq = -1;
    TAP_BEGIN("read_pstats_of_a_version_1_chunk");
    int rc = slim_store_open(&st, dir, 0);
    if (!rc) rc = slim_write_begin(st, &w);
    if (!rc) rc = slim_write_seq(w, x->id, 0, NULL, tok, 2, d, 2, NULL, &seq);
    if (!rc) rc = slim_write_commit(w);
    slim_store_close(st);
    CHECK(rc == 0 && put_record(x->id, seq, tsu_chunk_v1, sizeof tsu_chunk_v1, NULL) == 0, "setup rc %d", rc);
    slim_store_open(&st, dir, SLIM_OPEN_RDONLY);
    slim_read_begin(st, &r);
    if (same_range(r, st, x, seq, 0, 2)) {
        CHECK(out_buf[0].k == 2 && out_buf[0].vals[0] == (float)(0 - 0.019 * 26), "not the fixture's values");
        CHECK(fabsf(ps_buf[0].entropy - 0.920791388f) < 1e-6f && fabsf(ps_buf[1].tail_mass - 0.0906270668f) < 1e-6f,
              "entropy %.9g, tail %.9g", ps_buf[0].entropy, ps_buf[1].tail_mass);
    }
    same_range(r, st, x, seq, 1, 1);
    slim_read_end(r);
    slim_store_close(st);
    TAP_END();
}

static void verify_cb(void *ctx, const char *problem)
{
    char *first = ctx;
    if (!first[0]) snprintf(first, 512, "%s", problem);
}

static void test_edited_block(void)
{
    const dsinfo *x = &sets[0];
    slim_store *st;
    slim_reader *r;
    slim_pstat before, after;
    TAP_BEGIN("read_pstats_reads_the_block_and_verify_checks_it");
    int rc = slim_store_open(&st, dir, 0);
    CHECK(rc == 0, "open: %s", slim_errmsg(st));
    slim_read_begin(st, &r);
    rc = slim_read_pstats(r, x->id, x->seqs[2], 0, 1, &before);
    slim_read_end(r);
    slim_store_close(st);
    CHECK(rc == 0 && put_record(x->id, x->seqs[2], NULL, 0, edit_stats) == 0, "could not edit the block");
    slim_store_open(&st, dir, 0);
    slim_read_begin(st, &r);
    rc = slim_read_pstats(r, x->id, x->seqs[2], 0, 1, &after);
    CHECK(rc == 0 && after.entropy != before.entropy && after.tail_mass == before.tail_mass,
          "rc %d: entropy %.9g before, %.9g after the edit", rc, before.entropy, after.entropy);
    rc = slim_read_positions(r, x->id, x->seqs[2], 0, 1, out_buf, ids_buf, vals_buf, 1 << 20, NULL, 0);
    CHECK(rc == 0, "values unreadable: %s", slim_errmsg(st));
    slim_read_end(r);
    char first[512] = "";
    int64_t n = -1;
    rc = slim_store_verify(st, verify_cb, first, &n);
    CHECK(rc == 0 && n == 1 && strstr(first, "statistics block") != NULL, "verify: %lld problems, first: %s",
          (long long)n, first);
    slim_store_close(st);
    TAP_END();
}

int main(void)
{
    const char *tmp = getenv("SLIM_TMP");
    snprintf(dir, sizeof dir, "%s/store-pstat.%d", tmp ? tmp : "/tmp", (int)getpid());
    slim_store *st;
    int rc = slim_store_open(&st, dir, SLIM_OPEN_CREATE);
    TAP_BEGIN("pstat_store_setup");
    CHECK(rc == 0, "open: %s", slim_errmsg(st));
    if (!rc) rc = write_all(st);
    CHECK(rc == 0, "write: rc %d", rc);
    TAP_END();
    if (!rc) test_ranges(st);
    slim_store_close(st);
    if (!rc) test_edited_block();
    if (!rc) test_v1_chunk();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) printf("# could not remove %s\n", dir);
    return tap_done();
}
