/*
 * test_ingest_store.c — ingest through the store and back out: every dtype
 * and padding form round-trips with exactly the selected ids and values
 * within the precision bound; re-runs add nothing; a bad sequence in the
 * middle of a file keeps the sequences before it and nothing else; prefix
 * sharing and dedup keep every sequence readable and identical; the input's
 * recorded content hash is the file's, and so is the hash built from
 * windows digested out of order, two open at once.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sqlite3.h>
#include <xxhash.h>
#include "lib/tap.h"
#include "lib/fixtures.h"
#include "../ingest/ingest.h"
#include "../ingest/ingest_src.h"

static char tmp[512];

static const char *path(const char *name)
{
    static char p[4][600];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof p[i], "%s/%s", tmp, name);
    return p[i];
}

static slim_store *open_store(const char *name)
{
    slim_store *st = NULL;
    int rc = slim_store_open(&st, path(name), SLIM_OPEN_CREATE);
    if (rc) {
        printf("# cannot open store: %s\n", st ? slim_errmsg(st) : "?");
        slim_store_close(st);
        return NULL;
    }
    return st;
}

static int ingest(slim_store *st, const char *ds, const char *spec, const char *file,
                  uint32_t min_prefix, slim_ingest_stats *s, char *err)
{
    slim_ingest_opts o = { .dataset = ds, .teacher = "T", .sparsify = spec, .temperature = 1,
                           .min_prefix = min_prefix, .args_json = "[]", .batch_positions = 16 };
    const char *f[1] = { file };
    return slim_ingest_files(st, &o, f, 1, s, err, 1024);
}


/* Read back every sequence of `ds` and compare with the top-k of the rows
 * the fixture wrote: ids exact, log-probs within eps. */
static void check_dense(slim_store *st, const char *ds, const fx_dense *d, const uint32_t *tok,
                        const float *lg, const uint32_t *len, uint32_t k, double eps)
{
    slim_dataset_info di;
    CHECK(slim_dataset_get(st, ds, &di) == 0, "no dataset");
    CHECK(di.sequences == d->N, "%lld sequences, want %u", (long long)di.sequences, d->N);
    slim_reader *r;
    if (slim_read_begin(st, &r)) { CHECK(0, "read_begin: %s", slim_errmsg(st)); return; }
    uint32_t *ids = malloc(d->V * 4), *want = malloc(d->V * 4), tb[256];
    float *vals = malloc(d->V * 4);
    for (uint32_t n = 0; n < d->N; n++) {
        slim_seq_info si;
        uint32_t T;
        CHECK(slim_read_seq(r, di.id, n, &si) == 0 && si.npos == len[n], "seq %u npos", n);
        CHECK(slim_read_tokens(r, di.id, n, tb, 256, &T) == 0 && T == len[n]
              && !memcmp(tb, tok + (size_t)n * d->T, T * 4), "seq %u tokens differ", n);
        for (uint32_t t = 0; t < len[n]; t++) {
            slim_dist out;
            int rc = slim_read_positions(r, di.id, n, t, 1, &out, ids, vals, d->V, NULL, 0);
            if (rc) { CHECK(0, "read seq %u pos %u: %s", n, t, slim_errmsg(st)); break; }
            const float *x = lg + ((size_t)n * d->T + t) * d->V;
            double lse = fx_lse_ref(x, d->V);
            slim_select_topk_naive(x, d->V, k, want);
            CHECK(out.k == k, "seq %u pos %u: k %u want %u", n, t, out.k, k);
            CHECK(fabs(out.lse - lse) < 1e-3, "seq %u pos %u: lse %g want %g", n, t, (double)out.lse, lse);
            for (uint32_t j = 0; j < out.k; j++) {
                double got = (double)out.vals[j] - out.lse, exp_lp = (double)x[out.ids[j]] - lse;
                CHECK(fabs(got - exp_lp) <= eps + 1e-4, "seq %u pos %u id %u: log-prob %g want %g",
                      n, t, out.ids[j], got, exp_lp);
            }
            qsort(out.ids, out.k, 4, fx_cmp_u32);
            qsort(want, k, 4, fx_cmp_u32);
            CHECK(!memcmp(out.ids, want, k * 4), "seq %u pos %u: selected ids differ", n, t);
        }
    }
    slim_read_end(r);
    free(ids); free(want); free(vals);
}

static void roundtrip(const char *name, const char *dt, const char *idt, int pad)
{
    TAP_BEGIN(name);
    fx_dense d = { .logits_dtype = dt, .ids_dtype = idt, .N = 5, .T = 12, .V = 300, .seed = 3,
                   .pad = pad, .nan_seq = -1 };
    uint32_t *tok = calloc(d.N * d.T, 4), len[5];
    float *lg = calloc((size_t)d.N * d.T * d.V, 4);
    char fname[64], sname[64], err[1024];
    snprintf(fname, sizeof fname, "%s.safetensors", name);
    snprintf(sname, sizeof sname, "%s.store", name);
    CHECK(fx_dense_write(path(fname), &d, tok, lg, len) == 0, "fixture");
    slim_store *st = open_store(sname);
    slim_ingest_stats s;
    int rc = st ? ingest(st, "d", "topfrac:0.05", path(fname), 0, &s, err) : -1;
    CHECK(rc == 0, "ingest: %s", err);
    if (!rc) check_dense(st, "d", &d, tok, lg, len, 15, 0.01);
    slim_store_close(st);
    free(tok); free(lg);
    TAP_END();
}

/* re-running adds nothing; a NaN in sequence 2 of 5 keeps 0..1 and only
 * them; the fixed file then continues with 2..4 */
static void test_rerun_and_bad_middle(void)
{
    TAP_BEGIN("rerun_adds_nothing");
    fx_dense d = { .logits_dtype = "F32", .ids_dtype = "I64", .N = 5, .T = 10, .V = 100,
                   .seed = 9, .nan_seq = -1 };
    char err[1024];
    CHECK(fx_dense_write(path("good.safetensors"), &d, NULL, NULL, NULL) == 0, "fixture");
    d.nan_seq = 2; d.nan_pos = 4;
    CHECK(fx_dense_write(path("bad.safetensors"), &d, NULL, NULL, NULL) == 0, "fixture");
    slim_store *st = open_store("rerun.store");
    slim_ingest_stats s;
    CHECK(st && ingest(st, "d", "topk:5", path("good.safetensors"), 16, &s, err) == 0, "%s", err);
    CHECK(s.added == 5 && s.skipped == 0, "first run added %lld", (long long)s.added);
    CHECK(ingest(st, "d", "topk:5", path("good.safetensors"), 16, &s, err) == 0, "%s", err);
    CHECK(s.added == 0 && s.skipped == 5, "second run added %lld skipped %lld",
          (long long)s.added, (long long)s.skipped);
    slim_store_close(st);
    TAP_END();

    TAP_BEGIN("bad_sequence_in_middle");
    st = open_store("bad.store");
    int rc = st ? ingest(st, "d", "topk:5", path("bad.safetensors"), 16, &s, err) : -1;
    CHECK(rc == SLIM_EINVAL && strstr(err, "sequence 2 position 4") && strstr(err, "NaN"),
          "rc %d: %s", rc, err);
    CHECK(s.added == 2 && s.committed_added == 2, "added %lld before the bad sequence", (long long)s.added);
    slim_dataset_info di;
    CHECK(st && slim_dataset_get(st, "d", &di) == 0 && di.sequences == 2 && di.positions == 20,
          "store holds %lld sequences / %lld positions", (long long)di.sequences, (long long)di.positions);
    rc = st ? ingest(st, "d", "topk:5", path("good.safetensors"), 16, &s, err) : -1;
    CHECK(rc == 0 && s.added == 3 && s.skipped == 2, "re-run: rc %d added %lld skipped %lld",
          rc, (long long)s.added, (long long)s.skipped);
    slim_store_close(st);
    TAP_END();
}

/* Read all positions of every live sequence of a dataset into one flat
 * buffer (ids then vals per position) for bit-identity comparisons. */
static size_t dump(slim_store *st, const char *ds, uint8_t **out)
{
    slim_dataset_info di;
    if (slim_dataset_get(st, ds, &di)) return 0;
    slim_reader *r;
    if (slim_read_begin(st, &r)) return 0;
    size_t n = 0, cap = 1 << 20;
    uint8_t *b = malloc(cap);
    uint32_t ids[4096];
    float vals[4096];
    for (int64_t q = 0; q < di.next_seq; q++) {
        slim_seq_info si;
        if (slim_read_seq(r, di.id, q, &si) || si.deleted) continue;
        for (uint32_t t = 0; t < si.npos; t++) {
            slim_dist d;
            if (slim_read_positions(r, di.id, q, t, 1, &d, ids, vals, 4096, NULL, 0)) continue;
            size_t need = 8 + d.k * 8;
            if (n + need > cap) { cap *= 2; b = realloc(b, cap); }
            memcpy(b + n, &d.k, 4); memcpy(b + n + 4, &d.lse, 4);
            memcpy(b + n + 8, d.ids, d.k * 4); memcpy(b + n + 8 + d.k * 4, d.vals, d.k * 4);
            n += need;
        }
    }
    slim_read_end(r);
    *out = b;
    return n;
}

static void test_prefix_and_dedup(void)
{
    TAP_BEGIN("prefix_sharing_identical_and_smaller");
    fx_dense d = { .logits_dtype = "F32", .ids_dtype = "I32", .N = 12, .T = 40, .V = 200,
                   .seed = 5, .prefix = 30, .nan_seq = -1 };
    char err[1024];
    CHECK(fx_dense_write(path("pre.safetensors"), &d, NULL, NULL, NULL) == 0, "fixture");
    slim_store *a = open_store("share.store"), *b = open_store("noshare.store");
    slim_ingest_stats sa, sb;
    CHECK(a && ingest(a, "d", "topk:20", path("pre.safetensors"), 16, &sa, err) == 0, "%s", err);
    CHECK(b && ingest(b, "d", "topk:20", path("pre.safetensors"), 0, &sb, err) == 0, "%s", err);
    CHECK(sa.shared_seqs == 11 && sa.shared_positions == 11 * 30, "shared %lld seqs %lld positions",
          (long long)sa.shared_seqs, (long long)sa.shared_positions);
    uint8_t *da = NULL, *db = NULL;
    size_t na = a ? dump(a, "d", &da) : 0, nb = b ? dump(b, "d", &db) : 0;
    CHECK(na && na == nb && !memcmp(da, db, na), "shared store reads differently (%zu vs %zu bytes)", na, nb);
    slim_dataset_info ia, ib;
    if (a && b && !slim_dataset_get(a, "d", &ia) && !slim_dataset_get(b, "d", &ib))
        CHECK(ia.record_bytes < ib.record_bytes * 0.6, "record bytes %lld shared vs %lld",
              (long long)ia.record_bytes, (long long)ib.record_bytes);
    free(da); free(db);
    slim_store_close(b);
    TAP_END();

    TAP_BEGIN("dedup_keeps_first_copies");
    /* dataset e gets the same file twice with ingest-time dedup bypassed by
     * going through a second dataset and --across semantics */
    slim_ingest_stats s;
    CHECK(ingest(a, "e", "topk:20", path("pre.safetensors"), 16, &s, err) == 0 && s.added == 12, "%s", err);
    uint8_t *before = NULL, *after = NULL;
    size_t n0 = dump(a, "d", &before);
    slim_dedup_result r;
    CHECK(slim_dedup(a, "e", 0, 0, &r, err, sizeof err) == 0 && r.duplicates == 0,
          "inside e: %lld duplicates (%s)", (long long)r.duplicates, err);
    free(r.dups);
    CHECK(slim_dedup(a, "e", 1, 1, &r, err, sizeof err) == 0 && r.duplicates == 12 && r.removed == 0,
          "dry run across: %lld duplicates, %lld removed", (long long)r.duplicates, (long long)r.removed);
    int64_t would = r.bytes_freed;
    free(r.dups);
    slim_dataset_info de;
    CHECK(slim_dataset_get(a, "e", &de) == 0 && de.sequences == 12, "the dry run removed sequences");
    CHECK(slim_dedup(a, "e", 1, 0, &r, err, sizeof err) == 0 && r.removed == 12, "%s", err);
    CHECK(would > 0 && r.bytes_freed == would, "dry run said %lld bytes, the run freed %lld",
          (long long)would, (long long)r.bytes_freed);
    free(r.dups);
    slim_dataset_info di;
    CHECK(slim_dataset_get(a, "e", &di) == 0 && di.sequences == 0, "e still has %lld", (long long)di.sequences);
    size_t n1 = dump(a, "d", &after);
    CHECK(n0 && n0 == n1 && !memcmp(before, after, n0), "dataset d changed by dedup of e");
    free(before); free(after);
    TAP_END();

    TAP_BEGIN("dedup_spares_snapshot_data");
    CHECK(ingest(a, "f", "topk:20", path("pre.safetensors"), 16, &s, err) == 0 && s.added == 12, "%s", err);
    slim_writer *w;
    const char *dsn[1] = { "f" };
    int rc = slim_write_begin(a, &w);
    if (!rc) rc = slim_write_snapshot(w, "snap", dsn, 1, 0.0);
    if (!rc) rc = slim_write_commit(w);
    CHECK(rc == 0, "snapshot: %s", slim_errmsg(a));
    CHECK(slim_dedup(a, "f", 1, 0, &r, err, sizeof err) == 0 && r.removed == 12, "%s", err);
    CHECK(r.bytes_freed == 0, "freed %lld bytes a snapshot still references", (long long)r.bytes_freed);
    free(r.dups);
    slim_snapshot *snap;
    CHECK(slim_snapshot_open(a, "snap", &snap) == 0 && slim_snapshot_size(snap) == 12,
          "snapshot after dedup: %s", slim_errmsg(a));
    slim_reader *rd;
    if (!slim_read_begin(a, &rd)) {
        uint32_t ids[64];
        float vals[64];
        slim_dist dd;
        const slim_member *m = slim_snapshot_members(snap);
        CHECK(slim_read_positions(rd, m[11].dataset, m[11].seq, 35, 1, &dd, ids, vals, 64, NULL, 0) == 0
              && dd.k == 20, "snapshot member unreadable after dedup: %s", slim_errmsg(a));
        slim_read_end(rd);
    }
    slim_snapshot_close(snap);
    slim_store_close(a);
    TAP_END();
}

static void test_jsonl_store(void)
{
    TAP_BEGIN("jsonl_vllm_through_store");
    FILE *f = fopen(path("v.jsonl"), "w");
    fprintf(f, "{\"request_id\":\"r\",\"prompt_token_ids\":[1,2,3],\"prompt_logprobs\":[null,"
               "{\"2\":{\"logprob\":-0.1,\"rank\":1},\"9\":{\"logprob\":-2.5,\"rank\":2}},"
               "{\"4\":{\"logprob\":-0.2,\"rank\":1},\"3\":{\"logprob\":-3.0,\"rank\":3},"
               "\"5\":{\"logprob\":-1.7,\"rank\":2}}]}\n");
    fclose(f);
    slim_store *st = open_store("jsonl.store");
    slim_ingest_opts o = { .dataset = "v", .vocab_size = 10, .temperature = 1, .min_prefix = 16,
                           .args_json = "[]" };
    const char *files[1] = { path("v.jsonl") };
    slim_ingest_stats s;
    char err[1024];
    CHECK(st && slim_ingest_files(st, &o, files, 1, &s, err, sizeof err) == 0, "%s", err);
    slim_dataset_info di;
    slim_reader *r;
    if (st && !slim_dataset_get(st, "v", &di) && !slim_read_begin(st, &r)) {
        uint32_t ids[8];
        float vals[8];
        slim_dist out[2];
        int rc = slim_read_positions(r, di.id, 0, 0, 2, out, ids, vals, 8, NULL, 0);
        CHECK(rc == 0, "read: %s", slim_errmsg(st));
        CHECK(!rc && out[0].k == 2 && out[0].ids[0] == 2 && out[0].ids[1] == 9
              && fabsf(out[0].vals[0] + 0.1f) <= 0.011f, "position 0 holds prompt_logprobs[1]");
        CHECK(!rc && out[1].k == 2 && out[1].ids[0] == 4 && out[1].ids[1] == 5,
              "position 1: K+1 entry cut to the top 2 by rank");
        CHECK(di.teacher.vocab_size == 10 && di.teacher.source == SLIM_SOURCE_LOGPROBS, "teacher");
        slim_read_end(r);
    } else CHECK(0, "no dataset");
    o.vocab_size = 12;
    CHECK(st && slim_ingest_files(st, &o, files, 1, &s, err, sizeof err) == SLIM_EMISMATCH
          && strstr(err, "vocab size"), "a different --vocab-size is refused: %s", err);
    slim_store_close(st);
    TAP_END();
}

/* The input hash written out again from its definition (docs/INGEST.md):
 * XXH3-128 over the 16-byte canonical XXH3-128 of every 64 KiB block, then
 * the length as u64 little-endian; "xxh3-128x64k:" + 32 hex digits. */
static void ref_hash(const unsigned char *p, size_t n, char out[SLIM_FILE_HASH_CAP])
{
    XXH3_state_t *st = XXH3_createState();
    XXH3_128bits_reset(st);
    for (size_t at = 0; at < n; at += 65536) {
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits(p + at, n - at < 65536 ? n - at : 65536));
        XXH3_128bits_update(st, c.digest, 16);
    }
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)((uint64_t)n >> (8 * i));
    XXH3_128bits_update(st, le, 8);
    XXH128_hash_t h = XXH3_128bits_digest(st);
    XXH3_freeState(st);
    snprintf(out, SLIM_FILE_HASH_CAP, "xxh3-128x64k:%016llx%016llx", (unsigned long long)h.high64,
             (unsigned long long)h.low64);
}

/* ref_hash of a file's bytes. */
static int ref_file_hash(const char *file, char out[SLIM_FILE_HASH_CAP])
{
    FILE *f = fopen(file, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
    int ok = buf && fread(buf, 1, (size_t)n, f) == (size_t)n;
    fclose(f);
    if (ok) ref_hash(buf, (size_t)n, out);
    free(buf);
    return ok ? 0 : -1;
}

/* The hash recorded for every input of dataset-less store st's runs, by path. */
static void recorded_hash(const char *store, const char *file, char *got, size_t cap)
{
    sqlite3 *db;
    sqlite3_stmt *q;
    char p[700];
    snprintf(p, sizeof p, "%s/meta.sqlite", store);
    got[0] = 0;
    if (sqlite3_open(p, &db) != SQLITE_OK) return;
    if (sqlite3_prepare_v2(db, "SELECT content_hash FROM ingest_inputs WHERE path = ?", -1, &q, NULL)
        == SQLITE_OK) {
        sqlite3_bind_text(q, 1, file, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW) snprintf(got, cap, "%s", (const char *)sqlite3_column_text(q, 0));
        sqlite3_finalize(q);
    }
    sqlite3_close(db);
}

/* The content hash recorded for an input is the block-list hash of the
 * file's bytes however it is computed: digested by the ingest workers
 * (dense safetensors: F32 / F16 / BF16, padded batches, several batches
 * whose sequences straddle blocks, a run stopped by a bad sequence), from
 * a mapping on a thread of its own (sparse safetensors) or by read()
 * (JSONL) — each checked against ref_hash, written from the definition. */
static void test_input_hash(void)
{
    TAP_BEGIN("input_hash_matches_definition");
    static const struct { const char *dt; uint32_t N, T, V; int pad, nan; size_t batch; } cs[] = {
        {"F32", 6, 9, 300, 0, -1, 16}, {"F32", 6, 9, 300, 0, 4, 16}, {"F16", 5, 40, 1000, 0, -1, 16},
        {"BF16", 7, 33, 2049, 1, -1, 50}, {"F32", 3, 64, 4096, 1, -1, 0}, {"F32", 9, 17, 32000, 0, -1, 20},
        {"BF16", 4, 50, 777, 0, 2, 8},
    };
    char err[1024], want[SLIM_FILE_HASH_CAP], got[128], file[600], store[600];
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        fx_dense d = { .logits_dtype = cs[i].dt, .ids_dtype = "I64", .N = cs[i].N, .T = cs[i].T,
                       .V = cs[i].V, .seed = 5 + i, .pad = cs[i].pad, .nan_seq = cs[i].nan, .nan_pos = 1 };
        snprintf(file, sizeof file, "%s", path("h.safetensors"));
        char sname[32];
        snprintf(sname, sizeof sname, "hash%zu.store", i);
        snprintf(store, sizeof store, "%s", path(sname));
        CHECK(fx_dense_write(file, &d, NULL, NULL, NULL) == 0, "fixture");
        slim_store *st = open_store(sname);
        slim_ingest_opts o = { .dataset = "d", .teacher = "T", .sparsify = "topk:5", .temperature = 1,
                               .args_json = "[]", .batch_positions = cs[i].batch };
        const char *f[1] = { file };
        slim_ingest_stats s;
        int rc = st ? slim_ingest_files(st, &o, f, 1, &s, err, sizeof err) : -1;
        CHECK(rc == (cs[i].nan >= 0 ? SLIM_EINVAL : 0), "case %zu: rc %d: %s", i, rc, err);
        slim_store_close(st);
        recorded_hash(store, file, got, sizeof got);
        CHECK(ref_file_hash(file, want) == 0 && !strcmp(got, want), "case %zu (%s %ux%ux%u): recorded '%s', want '%s'",
              i, cs[i].dt, cs[i].N, cs[i].T, cs[i].V, got, want);
        CHECK(slim_file_hash(file, want, err, sizeof err) == 0 && !strcmp(got, want), "case %zu: read() gives '%s'", i, want);
    }
    /* sparse safetensors (hashed from the mapping on a thread) and JSONL (read()) */
    FILE *f = fopen(path("h.jsonl"), "w");
    CHECK(f && fputs("{\"id\":\"a\",\"tokens\":[1,2,3],\"top\":[[[5,-0.5]],[[6,-0.25]]]}\n", f) >= 0
          && fclose(f) == 0, "jsonl fixture");
    snprintf(file, sizeof file, "%s", path("h.jsonl"));
    slim_store *st = open_store("hashj.store");
    slim_ingest_opts o = { .dataset = "j", .teacher = "J", .vocab_size = 300, .temperature = 1,
                           .args_json = "[]" };
    const char *jf[1] = { file };
    slim_ingest_stats s;
    CHECK(st && slim_ingest_files(st, &o, jf, 1, &s, err, sizeof err) == 0, "jsonl: %s", err);
    slim_store_close(st);
    recorded_hash(path("hashj.store"), file, got, sizeof got);
    CHECK(ref_file_hash(file, want) == 0 && !strcmp(got, want), "jsonl: recorded '%s', want '%s'", got, want);
    /* slim_hash_bytes and slim_file_hash against the definition, across
     * the block boundaries and XXH3's length classes */
    size_t big = (3u << 20) + 12345;
    unsigned char *buf = malloc(big);
    for (size_t i = 0; buf && i < big; i++) buf[i] = (unsigned char)((i * 2654435761u) >> 13);
    static const size_t sizes[] = {0, 1, 16, 17, 128, 129, 240, 241, 4095, 65535, 65536, 65537,
                                   131071, 131072, 200000, (3u << 20) + 12345};
    for (size_t i = 0; buf && i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t len = sizes[i];
        char a[SLIM_FILE_HASH_CAP], b[SLIM_FILE_HASH_CAP], r[SLIM_FILE_HASH_CAP];
        f = fopen(path("bytes.bin"), "wb");
        CHECK(f && fwrite(buf, 1, len, f) == len && fclose(f) == 0, "write");
        ref_hash(buf, len, r);
        CHECK(slim_hash_bytes(buf, len, a) == 0 && !strcmp(a, r), "%zu bytes in memory: %s, want %s", len, a, r);
        CHECK(slim_file_hash(path("bytes.bin"), b, err, sizeof err) == 0 && !strcmp(b, r),
              "%zu bytes read(): %s, want %s", len, b, r);
    }
    /* one flipped byte anywhere changes it */
    char a0[SLIM_FILE_HASH_CAP], a1[SLIM_FILE_HASH_CAP];
    slim_hash_bytes(buf, 200000, a0);
    buf[131072] ^= 1;
    slim_hash_bytes(buf, 200000, a1);
    CHECK(strcmp(a0, a1), "a flipped byte left the hash unchanged");
    free(buf);
    TAP_END();
}

/* One batch of the windows test: rows [lo, hi) of the buffer in rows of
 * `row` bytes, fed by two "workers" (odd and even rows, the odd ones
 * first), every third row left out (the fold reads it). */
static void feed_batch(slim_fhash *h, const slim_fhash_win *w, const uint8_t *buf, uint64_t lo,
                       uint64_t hi, uint64_t row, slim_fhash_run *r)
{
    for (int parity = 1; parity >= 0; parity--)
        for (uint64_t at = lo, i = 0; at < hi; at += row, i++) {
            if ((int)(i % 2) != parity || i % 3 == 2) continue;
            uint64_t n = hi - at < row ? hi - at : row;
            if (slim_fhash_run_start(r, w, at) == 0) slim_fhash_feed(h, r, buf + at, (size_t)n);
        }
}

/* The input hash from windows (slim_fhash_window / feed / fold) equals the
 * one-call hash of the same bytes: batches whose rows straddle blocks, the
 * next batches' windows opened and fed while up to `inflight` earlier ones
 * are not folded yet (the ingest's slots), rows fed out of order or not at
 * all, a ring too small for them (then the fold digests those blocks) and a
 * window that does not begin after the last one (refused). */
static void test_hash_windows(void)
{
    TAP_BEGIN("input_hash_windows");
    const size_t n = 40 * (size_t)SLIM_HASH_BLOCK + 1234;
    uint8_t *buf = malloc(n);
    uint64_t s = 42;
    for (size_t i = 0; i < n; i++) { s = s * 6364136223846793005ull + 1442695040888963407ull; buf[i] = (uint8_t)(s >> 56); }
    char want[SLIM_FILE_HASH_CAP], got[SLIM_FILE_HASH_CAP];
    CHECK(buf && slim_hash_bytes(buf, n, want) == 0, "one-call hash");
    enum { MAXW = 4 };
    static const struct { uint64_t row, batch, ring; unsigned inflight; } cs[] = {
        {100000, 5, 32, 2}, {65536, 3, 8, 2}, {70000, 7, 1, 2}, {300000, 2, 32, 2}, {33000, 11, 20, 2},
        {100000, 5, 32, 4}, {65536, 3, 8, 4}, {70000, 7, 3, 3}, {300000, 2, 16, 3}, {33000, 11, 20, 4},
    };
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        unsigned W = cs[c].inflight;
        slim_fhash h;
        slim_fhash_run r[MAXW] = {{0}};
        CHECK(slim_fhash_init(&h, buf, n) == 0 && slim_fhash_reserve(&h, cs[c].ring, W) == 0, "init");
        uint64_t span = cs[c].row * cs[c].batch, off = 777;  /* a header before the rows */
        slim_fhash_win win[MAXW];
        uint64_t end[MAXW] = {0};
        int opened[MAXW] = {0}, nwin = 0;
        unsigned nb = 0;  /* batch b in slot b % W */
        for (uint64_t lo = off; lo < n; lo += span, nb++) {
            uint64_t hi = lo + span < n ? lo + span : n;
            unsigned k = nb % W;
            if (nb >= W)  /* the batch W back is folded before its slot is reused */
                slim_fhash_fold(&h, end[k], opened[k] ? &win[k] : NULL);
            opened[k] = slim_fhash_window(&h, lo, hi, &win[k]) == 0;
            nwin += opened[k];
            end[k] = hi;
            feed_batch(&h, &win[k], buf, lo, hi, cs[c].row, &r[k]);
        }
        for (unsigned b = nb > W ? nb - W : 0; b < nb; b++)  /* the rest, in order */
            slim_fhash_fold(&h, end[b % W], opened[b % W] ? &win[b % W] : NULL);
        slim_fhash_win bad;
        CHECK(slim_fhash_window(&h, 0, n, &bad) == 1 && bad.lo == bad.hi, "case %zu: a window "
              "before the last one's end is refused", c);
        CHECK(slim_fhash_final(&h, got) == 0 && strcmp(got, want) == 0, "case %zu: %s != %s", c,
              got, want);
        CHECK(cs[c].ring >= (span + SLIM_HASH_BLOCK - 1) / SLIM_HASH_BLOCK + 1 ? nwin > 0 : 1,
              "case %zu: no window was opened", c);
        for (unsigned j = 0; j < MAXW; j++) slim_fhash_run_release(&r[j]);
        slim_fhash_release(&h);
    }
    free(buf);
    TAP_END();
}

int main(void)
{
    const char *t = getenv("SLIM_TMP");
    snprintf(tmp, sizeof tmp, "%s", t ? t : "/tmp/slim_test_ingest");
    char cmd[600];  /* a fresh directory: stores left by an earlier run would be re-runs */
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd)) return 1;
    mkdir(tmp, 0755);
    roundtrip("roundtrip_f32_i64", "F32", "I64", 0);
    roundtrip("roundtrip_f16_i32_lengths", "F16", "I32", 1);
    roundtrip("roundtrip_bf16_mask_right", "BF16", "I64", 2);
    roundtrip("roundtrip_f32_mask_left", "F32", "I32", 3);
    test_rerun_and_bad_middle();
    test_prefix_and_dedup();
    test_jsonl_store();
    test_input_hash();
    test_hash_windows();
    return tap_done();
}
