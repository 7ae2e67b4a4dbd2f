/*
 * test_ingest_parse.c — the store-free half of ingest: sparsifiers against
 * naive references, the exact log-normaliser, dtype conversion, and the
 * safetensors / npy / JSONL parsers on good and malformed inputs.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "lib/tap.h"
#include "lib/synth.h"
#include "lib/fixtures.h"
#include "../ingest/ingest.h"


/* radix select == qsort reference, as sets, on realistic rows and on rows
 * full of ties (values from 5 levels) where the lower ids must win */
static void test_topk(void)
{
    TAP_BEGIN("topk_matches_naive");
    const uint32_t V = 32000, ks[] = { 1, 64, 1600, 31999 };
    synth g;
    CHECK(synth_init(&g, V, 42) == 0, "synth");
    float *x = malloc(V * sizeof *x);
    uint32_t *a = malloc(V * 4), *b = malloc(V * 4);
    slim_sparse_ws *ws = slim_sparse_ws_new(V, V);
    for (int r = 0; r < 12; r++) {
        synth_row(&g, x, NULL);
        if (r % 3 == 2)
            for (uint32_t i = 0; i < V; i++) x[i] = (float)(synth_below(&g, 5)) - 2.0f;
        if (r == 5) x[17] = -INFINITY;
        for (size_t j = 0; j < sizeof ks / sizeof ks[0]; j++) {
            uint32_t k = ks[j];
            uint32_t na = slim_select_topk(ws, x, V, k, a);
            uint32_t nb = slim_select_topk_naive(x, V, k, b);
            CHECK(na == k && nb == k, "row %d k %u: got %u / %u", r, k, na, nb);
            qsort(a, na, 4, fx_cmp_u32);
            qsort(b, nb, 4, fx_cmp_u32);
            CHECK(!memcmp(a, b, k * 4), "row %d k %u: selected sets differ", r, k);
        }
    }
    TAP_END();
    TAP_BEGIN("topk_ties_lower_id_wins");
    for (uint32_t i = 0; i < V; i++) x[i] = 0;
    x[100] = 1;
    uint32_t n = slim_select_topk(ws, x, V, 3, a);
    qsort(a, n, 4, fx_cmp_u32);
    CHECK(n == 3 && a[0] == 0 && a[1] == 1 && a[2] == 100, "got %u: %u %u %u", n, a[0], a[1], a[2]);
    TAP_END();

    TAP_BEGIN("lse_exact");
    double worst = 0;
    for (int r = 0; r < 50; r++) {
        double want;
        synth_row(&g, x, &want);
        if (r == 7) { x[3] = -INFINITY; want = fx_lse_ref(x, V); }
        double got = slim_logsumexp(x, V);
        if (fabs(got - want) > worst) worst = fabs(got - want);
    }
    CHECK(worst < 2e-5, "worst |lse - reference| = %g", worst);
    float one[3] = { -INFINITY, 5.0f, -INFINITY };
    CHECK(fabs(slim_logsumexp(one, 3) - 5.0) < 1e-6, "single finite value");
    TAP_END();

    TAP_BEGIN("sparsify_rejects_nan_inf");
    slim_sparsifier sp;
    char err[200];
    CHECK(slim_sparsifier_parse("topk:8", &sp, err, sizeof err) == 0, "parse");
    slim_dist d = { .ids = a, .vals = (float *)b };
    uint32_t bad = 0;
    synth_row(&g, x, NULL);
    x[1234] = NAN;
    CHECK(slim_sparsify_row(&sp, ws, x, V, 0, &d, &bad) == SLIM_EINVAL && bad == 1234, "NaN: bad=%u", bad);
    x[1234] = INFINITY;
    CHECK(slim_sparsify_row(&sp, ws, x, V, 0, &d, &bad) == SLIM_EINVAL && bad == 1234, "+Inf");
    x[1234] = -INFINITY;
    CHECK(slim_sparsify_row(&sp, ws, x, V, 0, &d, &bad) == 0 && d.k == 8, "-Inf is a valid logit");
    TAP_END();

    TAP_BEGIN("sparsify_topp_mass");
    CHECK(slim_sparsifier_parse("topp:0.9,max:4000", &sp, err, sizeof err) == 0, "parse");
    synth_row(&g, x, NULL);
    CHECK(slim_sparsify_row(&sp, ws, x, V, 0, &d, &bad) == 0, "sparsify");
    double mass = 0, last = 0;
    for (uint32_t j = 0; j < d.k; j++) {
        last = exp((double)d.vals[j] - d.lse);
        mass += last;
        CHECK(j == 0 || d.vals[j] <= d.vals[j - 1], "not in value order at %u", j);
    }
    CHECK(d.k == 4000 || (mass >= 0.9 - 1e-6 && mass - last < 0.9), "k %u mass %g last %g", d.k, mass, last);
    TAP_END();

    TAP_BEGIN("sparsify_sample_seeded");
    CHECK(slim_sparsifier_parse("sample:64", &sp, err, sizeof err) == 0, "parse");
    sp.seed = 7;
    uint32_t ids1[64], ids2[64];
    float c1[64], c2[64];
    slim_dist d1 = { .ids = ids1, .vals = c1 }, d2 = { .ids = ids2, .vals = c2 };
    synth_row(&g, x, NULL);
    for (uint32_t i = 0; i < V; i++) x[i] *= 0.05f;  /* flat: draws spread out */
    CHECK(slim_sparsify_row(&sp, ws, x, V, 5, &d1, &bad) == 0, "sample");
    CHECK(slim_sparsify_row(&sp, ws, x, V, 5, &d2, &bad) == 0, "sample");
    float tot = 0;
    for (uint32_t j = 0; j < d1.k; j++) tot += c1[j];
    CHECK(tot == 64 && d1.n_samples == 64, "counts sum to %g", tot);
    CHECK(d1.k == d2.k && !memcmp(ids1, ids2, d1.k * 4), "same stream, same draws");
    sp.seed = 8;
    CHECK(slim_sparsify_row(&sp, ws, x, V, 5, &d2, &bad) == 0, "sample");
    CHECK(d1.k != d2.k || memcmp(ids1, ids2, d1.k * 4) || memcmp(c1, c2, d1.k * 4),
          "another seed gives other draws");
    CHECK(d1.k > 8, "a flat row gives many distinct ids (%u)", d1.k);
    TAP_END();

    slim_sparse_ws_free(ws);
    free(x); free(a); free(b);
    synth_free(&g);
}

static void test_specs(void)
{
    TAP_BEGIN("sparsifier_specs");
    slim_sparsifier s;
    char err[200], buf[64];
    CHECK(slim_topfrac_k(0.05, 32000) == 1600, "0.05 of 32000 = %u", slim_topfrac_k(0.05, 32000));
    CHECK(slim_topfrac_k(0.05, 1024) == 52, "0.05 of 1024 = %u", slim_topfrac_k(0.05, 1024));
    CHECK(slim_topfrac_k(0.05, 7) == 1, "at least one");
    CHECK(slim_sparsifier_parse("topfrac", &s, err, sizeof err) == 0 && s.frac == 0.05, "default");
    CHECK(slim_sparsifier_parse("topp:0.95,max:256", &s, err, sizeof err) == 0 && s.k == 256, "topp");
    slim_sparsifier_format(&s, buf, sizeof buf);
    CHECK(!strcmp(buf, "topp:0.95,max:256"), "format %s", buf);
    const char *bad[] = { "topk:0", "topk:1.5", "topfrac:2", "topp:0.9,max", "nope", "sample:", "topk:" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(slim_sparsifier_parse(bad[i], &s, err, sizeof err) == SLIM_EINVAL, "accepted '%s'", bad[i]);
    TAP_END();

    TAP_BEGIN("half_precision_conversion");
    float vals[] = { 0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f,
                     -13.375f, 1e-3f, INFINITY };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        float h = slim_f16_to_f32(fx_f32_to_f16(vals[i]));
        float bf = slim_bf16_to_f32(fx_f32_to_bf16(vals[i]));
        CHECK(h == vals[i] || fabsf(h - vals[i]) <= fabsf(vals[i]) * 1e-3f, "f16 %g -> %g", (double)vals[i], (double)h);
        CHECK(bf == vals[i] || fabsf(bf - vals[i]) <= fabsf(vals[i]) * 8e-3f, "bf16 %g -> %g", (double)vals[i], (double)bf);
    }
    CHECK(isnan(slim_f16_to_f32(0x7e00)), "f16 NaN");
    TAP_END();
}

/* build a safetensors image in memory from a header string and data size */
static uint8_t *st_image(const char *hdr, size_t dlen, size_t *len)
{
    size_t h = strlen(hdr);
    uint8_t *b = calloc(1, 8 + h + dlen);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(b + 8, hdr, h);
    *len = 8 + h + dlen;
    return b;
}

static void expect_st(const char *name, const char *hdr, size_t dlen, const char *want)
{
    TAP_BEGIN(name);
    size_t len;
    uint8_t *b = st_image(hdr, dlen, &len);
    slim_tensors ts = { 0 };
    char err[300] = "";
    int rc = slim_safetensors_parse(b, len, &ts, err, sizeof err);
    if (want) CHECK(rc == SLIM_EINVAL && strstr(err, want), "rc %d err '%s' (want '%s')", rc, err, want);
    else CHECK(rc == 0, "rc %d: %s", rc, err);
    free(b);
    TAP_END();
}

static void test_safetensors(void)
{
    expect_st("st_good",
        "{\"input_ids\":{\"dtype\":\"I32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
        "\"logits\":{\"dtype\":\"BF16\",\"shape\":[2,3,4],\"data_offsets\":[24,72]}}", 72, NULL);
    expect_st("st_overlap",
        "{\"input_ids\":{\"dtype\":\"I32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
        "\"logits\":{\"dtype\":\"F16\",\"shape\":[2,3,4],\"data_offsets\":[16,64]}}", 72, "overlap");
    expect_st("st_offset_out_of_range",
        "{\"input_ids\":{\"dtype\":\"I32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 20, "out of range");
    expect_st("st_unknown_dtype",
        "{\"input_ids\":{\"dtype\":\"Q4\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 24, "unknown dtype 'Q4'");
    expect_st("st_size_mismatch",
        "{\"input_ids\":{\"dtype\":\"I64\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 24, "bytes of data");
    /* tensors slim does not read: any dtype and rank, checked only to lie
     * inside the data (at their shape's size when the dtype is known) */
    expect_st("st_other_tensors_any_dtype",
        "{\"input_ids\":{\"dtype\":\"I32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
        "\"q\":{\"dtype\":\"F8_E4M3\",\"shape\":[1,2,1,2,2],\"data_offsets\":[24,32]},"
        "\"r\":{\"dtype\":\"Q4_K\",\"shape\":[7],\"data_offsets\":[32,35]}}", 35, NULL);
    expect_st("st_other_tensor_size_mismatch",
        "{\"input_ids\":{\"dtype\":\"I32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
        "\"pos\":{\"dtype\":\"I16\",\"shape\":[2,3],\"data_offsets\":[24,30]}}", 30,
        "tensor 'pos': 6 bytes of data for a shape of 6 I16 elements");
    expect_st("st_other_tensor_overlap",
        "{\"input_ids\":{\"dtype\":\"I32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
        "\"pos\":{\"dtype\":\"Q4_K\",\"shape\":[9],\"data_offsets\":[20,30]}}", 30, "overlap");
    expect_st("st_read_tensor_five_dims",
        "{\"logits\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
        "tensor 'logits': 5 dimensions (at most 4)");
    {
        TAP_BEGIN("st_many_tensors");
        char hdr[40000];
        size_t h = (size_t)snprintf(hdr, sizeof hdr, "{");
        for (int i = 0; i < 300; i++)
            h += (size_t)snprintf(hdr + h, sizeof hdr - h, "\"layer.%d\":{\"dtype\":\"BF16\",\"shape\":[2],"
                                  "\"data_offsets\":[%d,%d]},", i, 4 * i, 4 * i + 4);
        snprintf(hdr + h, sizeof hdr - h, "\"input_ids\":{\"dtype\":\"I64\",\"shape\":[1],"
                 "\"data_offsets\":[1200,1208]}}");
        size_t len;
        uint8_t *b = st_image(hdr, 1208, &len);
        slim_tensors ts = { 0 };
        char err[300] = "";
        CHECK(slim_safetensors_parse(b, len, &ts, err, sizeof err) == 0 && ts.n == 301
              && slim_tensors_find(&ts, "input_ids"), "rc err '%s' n %d", err, ts.n);
        free(b);
        TAP_END();
    }
    expect_st("st_bad_json", "{\"input_ids\":", 0, "invalid JSON");
    TAP_BEGIN("st_length_past_eof");
    uint8_t b[16] = { 0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}' };
    slim_tensors ts;
    char err[200] = "";
    CHECK(slim_safetensors_parse(b, 10, &ts, err, sizeof err) == SLIM_EINVAL
          && strstr(err, "past end of file"), "%s", err);
    CHECK(slim_safetensors_parse(b, 3, &ts, err, sizeof err) == SLIM_EINVAL
          && strstr(err, "truncated"), "%s", err);
    TAP_END();
}

static void test_npy(void)
{
    TAP_BEGIN("npy_roundtrip_header");
    const char *p = "/tmp/slim_test_ingest_parse.npy";
    const char *dir = getenv("SLIM_TMP");
    char path[512];
    snprintf(path, sizeof path, "%s/a.npy", dir ? dir : "/tmp");
    if (!dir) p = path; else p = path;
    int64_t v[6] = { 1, 2, 3, 4, 5, 6 };
    uint64_t shape[2] = { 2, 3 };
    CHECK(fx_write_npy(p, "<i8", 2, shape, v, sizeof v) == 0, "write");
    slim_tensors ts = { 0 };
    char err[200] = "";
    CHECK(slim_tensors_add_npy(p, &ts, err, sizeof err) == 0, "%s", err);
    CHECK(ts.n == 1 && !strcmp(ts.t[0].name, "a") && ts.t[0].ndim == 2 && ts.t[0].shape[1] == 3
          && ts.t[0].dtype == SLIM_DT_I64 && slim_int_at(SLIM_DT_I64, ts.t[0].data, 5) == 6,
          "parsed header wrong");
    slim_tensors_release(&ts);
    uint8_t bad[96] = "\x93NUMPY\x01\x00\x30\x00{'descr': '<q9', 'fortran_order': False, 'shape': (1,), }";
    slim_tensor t;
    CHECK(slim_npy_parse(bad, 64, "x", &t, err, sizeof err) == SLIM_EINVAL && strstr(err, "dtype"), "%s", err);
    CHECK(slim_npy_parse(bad, 0, "x", &t, err, sizeof err) == SLIM_EINVAL && strstr(err, "empty"), "%s", err);
    TAP_END();
}

static int jl(const char *line, uint32_t V, slim_batch *b, char *err)
{
    slim_jsonl_opts o = { .vocab_size = V };
    int rc = slim_jsonl_parse_line(line, strlen(line), &o, b, err, 300);
    slim_batch_fix_pointers(b);
    return rc;
}

static void test_jsonl(void)
{
    slim_batch b = { 0 };
    char err[300];
    TAP_BEGIN("jsonl_simple");
    CHECK(jl("{\"id\":\"a\",\"tokens\":[5,6,7],\"top\":[[[6,-0.1],[9,-2.5]],[[7,-0.5],[1,-1.0]]]}",
             10, &b, err) == 0, "%s", err);
    CHECK(b.nseq == 1 && b.seqs[0].T == 3 && b.seqs[0].npos == 2 && !strcmp(b.seqs[0].ext_id, "a"), "shape");
    CHECK(b.dists[1].k == 2 && b.dists[1].ids[0] == 7 && b.dists[1].vals[1] == -1.0f
          && b.dists[1].lse == 0, "entries");
    TAP_END();

    /* vLLM: prompt_logprobs[i] predicts t[i] -> position i-1; the entry
     * at i=2 carries K+1 items (the actual token 8 at rank 5): dropped */
    TAP_BEGIN("jsonl_vllm_shift_and_k_plus_1");
    slim_batch_reset(&b);
    const char *v =
        "{\"request_id\":\"r1\",\"prompt_token_ids\":[1,2,8],\"prompt_logprobs\":[null,"
        "{\"2\":{\"logprob\":-0.2,\"rank\":1,\"decoded_token\":\"b\"},\"3\":{\"logprob\":-1.9,\"rank\":2}},"
        "{\"4\":{\"logprob\":-0.3,\"rank\":1},\"8\":{\"logprob\":-6.0,\"rank\":5},\"5\":{\"logprob\":-1.5,\"rank\":2}}],"
        "\"outputs\":[{\"token_ids\":[3],\"logprobs\":[{\"3\":{\"logprob\":-0.05,\"rank\":1},\"6\":{\"logprob\":-3.1,\"rank\":2}}]}]}";
    CHECK(jl(v, 10, &b, err) == 0, "%s", err);
    CHECK(b.nseq == 1 && b.seqs[0].T == 4 && b.seqs[0].npos == 3, "T %u npos %u", b.seqs[0].T, b.seqs[0].npos);
    CHECK(b.dists[0].k == 2 && b.dists[0].ids[0] == 2, "position 0 predicts t[1]=2");
    CHECK(b.dists[1].k == 2 && b.dists[1].ids[0] == 4 && b.dists[1].ids[1] == 5, "K+1 item dropped");
    CHECK(b.dists[2].ids[0] == 3 && fabsf(b.dists[2].vals[0] + 0.05f) < 1e-7f, "generated token at position 2");
    TAP_END();

    TAP_BEGIN("jsonl_openai_token_ids");
    slim_batch_reset(&b);
    const char *oa =
        "{\"id\":\"cmpl-1\",\"choices\":[{\"index\":0,\"prompt_token_ids\":[1,2],\"prompt_logprobs\":[null,"
        "{\"2\":{\"logprob\":-0.1,\"rank\":1}}],\"logprobs\":{\"content\":[{\"token\":\"token_id:7\","
        "\"logprob\":-0.2,\"top_logprobs\":[{\"token\":\"token_id:7\",\"logprob\":-0.2}]}]}}]}";
    CHECK(jl(oa, 10, &b, err) == 0, "%s", err);
    CHECK(b.nseq == 1 && b.seqs[0].T == 3 && b.seqs[0].npos == 2, "shape T %u npos %u", b.seqs[0].T, b.seqs[0].npos);
    CHECK(b.tokens[2] == 7 && b.dists[1].ids[0] == 7, "generated token id from 'token_id:7'");
    TAP_END();

    /* OpenAI-compatible completions: logprobs.tokens + top_logprobs dicts;
     * position 2 has K+1 items (the sampled token 9 outside the top 2) */
    TAP_BEGIN("jsonl_openai_completions");
    slim_batch_reset(&b);
    const char *cm =
        "{\"id\":\"cmpl-2\",\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\"ab\","
        "\"prompt_token_ids\":[1,2],\"prompt_logprobs\":[null,{\"2\":{\"logprob\":-0.1,\"rank\":1},"
        "\"6\":{\"logprob\":-2.5,\"rank\":2}}],\"logprobs\":{\"text_offset\":[0,1],"
        "\"token_logprobs\":[-0.2,-4.0],\"tokens\":[\"token_id:7\",\"token_id:9\"],\"top_logprobs\":["
        "{\"token_id:7\":-0.2,\"token_id:4\":-2.0},"
        "{\"token_id:3\":-0.1,\"token_id:9\":-4.0,\"token_id:5\":-3.0}]}}]}";
    CHECK(jl(cm, 10, &b, err) == 0, "%s", err);
    CHECK(b.nseq == 1 && b.seqs[0].T == 4 && b.seqs[0].npos == 3 && !strcmp(b.seqs[0].ext_id, "cmpl-2"),
          "shape T %u npos %u", b.seqs[0].T, b.seqs[0].npos);
    CHECK(b.tokens[2] == 7 && b.tokens[3] == 9, "generated ids from logprobs.tokens");
    CHECK(b.dists[0].k == 2 && b.dists[0].ids[0] == 2, "prompt_logprobs at position 0");
    CHECK(b.dists[1].k == 2 && b.dists[1].ids[0] == 7 && b.dists[1].vals[0] == -0.2f
          && b.dists[1].ids[1] == 4, "first generated entry at position 1");
    CHECK(b.dists[2].k == 2 && b.dists[2].ids[0] == 3 && b.dists[2].ids[1] == 5,
          "K+1: the sampled token outside the top 2 dropped");
    TAP_END();

    /* echo: the lists cover the prompt, top_logprobs[0] is null; entry i
     * predicts t[i] and lands at position i - 1 */
    TAP_BEGIN("jsonl_openai_completions_echo");
    slim_batch_reset(&b);
    const char *ce =
        "{\"id\":\"cmpl-3\",\"choices\":[{\"index\":0,\"prompt_token_ids\":[1,2],\"logprobs\":{"
        "\"tokens\":[\"token_id:1\",\"token_id:2\",\"token_id:8\"],\"token_logprobs\":[null,-0.3,-0.6],"
        "\"top_logprobs\":[null,{\"token_id:2\":-0.3,\"token_id:5\":-1.5},{\"token_id:8\":-0.6,\"token_id:0\":-0.9}]}},"
        "{\"index\":1,\"logprobs\":{\"tokens\":[\"token_id:1\",\"token_id:2\"],"
        "\"top_logprobs\":[null,{\"token_id:2\":-0.3,\"token_id:5\":-1.5}]}}]}";
    CHECK(jl(ce, 10, &b, err) == 0, "%s", err);
    CHECK(b.nseq == 2 && b.seqs[0].T == 3 && b.seqs[0].npos == 2 && b.seqs[1].T == 2
          && b.seqs[1].npos == 1 && !strcmp(b.seqs[1].ext_id, "cmpl-3/1"), "shape");
    CHECK(b.tokens[0] == 1 && b.tokens[1] == 2 && b.tokens[2] == 8, "tokens from the echo");
    CHECK(b.dists[0].ids[0] == 2 && b.dists[1].ids[0] == 8 && b.dists[1].ids[1] == 0,
          "entry i at position i - 1");
    /* prompt ids spelled "token_id:N" (as get_tokens reads them) still begin the echo */
    slim_batch_reset(&b);
    const char *ce2 =
        "{\"choices\":[{\"prompt_token_ids\":[\"token_id:1\",\"2\"],\"logprobs\":{"
        "\"tokens\":[\"token_id:1\",\"token_id:2\"],\"top_logprobs\":[null,{\"token_id:2\":-0.3}]}}]}";
    CHECK(jl(ce2, 10, &b, err) == 0 && b.nseq == 1 && b.seqs[0].npos == 1, "%s", err);
    TAP_END();

    struct { const char *name, *line, *want; } bad[] = {
        { "jsonl_bad_json", "{\"tokens\":[1,2", "invalid JSON" },
        { "jsonl_logprob_positive", "{\"tokens\":[1,2],\"top\":[[[2,0.5]]]}", "> 0" },
        { "jsonl_duplicate_id", "{\"tokens\":[1,2],\"top\":[[[2,-0.5],[2,-0.7]]]}", "twice" },
        { "jsonl_id_too_large", "{\"tokens\":[1,2],\"top\":[[[12,-0.5]]]}", ">= vocab size" },
        { "jsonl_negative_id", "{\"tokens\":[1,2],\"top\":[[[-3,-0.5]]]}", "out of range" },
        { "jsonl_missing_field", "{\"id\":\"x\"}", "missing field" },
        { "jsonl_too_many_positions", "{\"tokens\":[1],\"top\":[[[2,-0.5]],[[2,-0.5]]]}", "positions" },
        { "jsonl_vllm_no_logprobs", "{\"request_id\":\"r\",\"prompt_token_ids\":[1,2],\"outputs\":"
          "[{\"token_ids\":[3],\"logprobs\":null}]}", "no log-probs: neither 'prompt_logprobs' nor" },
        { "jsonl_openai_no_logprobs", "{\"choices\":[{\"prompt_token_ids\":[1,2],\"logprobs\":null}]}",
          "(request prompt_logprobs=K or logprobs=K)" },
        { "jsonl_openai_empty_content", "{\"choices\":[{\"logprobs\":{\"content\":[]}}]}",
          "no log-probs for any position (0 tokens)" },
        { "jsonl_vllm_one_token_nothing", "{\"prompt_token_ids\":[4],\"prompt_logprobs\":[null]}",
          "no log-probs for any position (1 tokens)" },
        { "jsonl_completions_text_token",
          "{\"choices\":[{\"logprobs\":{\"tokens\":[\"token_id:1\",\"hello\"],\"top_logprobs\":[null,{\"1\":-1}]}}]}",
          "logprobs.tokens[1] is not \"token_id:N\" (start the server with --return-tokens-as-token-ids)" },
        { "jsonl_completions_no_top_logprobs",
          "{\"choices\":[{\"logprobs\":{\"tokens\":[\"token_id:1\"],\"token_logprobs\":[-0.5]}}]}",
          "choice 0: logprobs.top_logprobs missing beside logprobs.tokens (request logprobs=K)" },
        { "jsonl_completions_echo_not_prompt",
          "{\"choices\":[{\"prompt_token_ids\":[1,3],\"logprobs\":{\"tokens\":[\"token_id:1\",\"token_id:2\"],"
          "\"top_logprobs\":[null,{\"token_id:2\":-0.5}]}}]}",
          "choice 0: logprobs.tokens (echo) do not begin with prompt_token_ids" },
        { "jsonl_completions_second_choice_bad",
          "{\"choices\":[{\"logprobs\":{\"tokens\":[\"token_id:1\",\"token_id:2\"],\"top_logprobs\":[null,{\"token_id:2\":-0.5}]}},"
          "{\"logprobs\":{\"tokens\":[\"token_id:1\",\"token_id:2\"],\"top_logprobs\":[null,{\"token_id:2\":0.5}]}}]}",
          "> 0" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        TAP_BEGIN(bad[i].name);
        slim_batch_reset(&b);
        err[0] = 0;
        int rc = jl(bad[i].line, 10, &b, err);
        CHECK(rc == SLIM_EINVAL && strstr(err, bad[i].want) && b.nseq == 0 && b.ndist == 0,
              "rc %d err '%s' nseq %zu", rc, err, b.nseq);
        TAP_END();
    }
    /* a line is (bytes, length), never NUL-terminated: the error paths
     * (their hints look at the line) stay inside it (ASan: exact-size copies) */
    TAP_BEGIN("jsonl_hint_only_for_cut_objects");
    slim_batch_reset(&b);
    CHECK(jl("{\"tokens\":[1],\"top\":[]}{\"tokens\":[2],\"top\":[]}", 10, &b, err) == SLIM_EINVAL
          && !strstr(err, "several lines"), "two objects on a line: '%s'", err);
    slim_batch_reset(&b);
    CHECK(jl("{\"tokens\":[1],", 10, &b, err) == SLIM_EINVAL && strstr(err, "several lines"),
          "a cut object: '%s'", err);
    TAP_END();

    TAP_BEGIN("jsonl_unterminated_lines");
    const char *cuts[] = { "{\"tokens\":[1,2],", "  {", "[1,", "{\"tokens\":[1],\"top\":[[[2,NaN", "\t" };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        size_t n = strlen(cuts[i]);
        char *line = malloc(n);
        memcpy(line, cuts[i], n);
        slim_batch_reset(&b);
        slim_jsonl_opts uo = { .vocab_size = 10 };
        CHECK(slim_jsonl_parse_line(line, n, &uo, &b, err, sizeof err) == SLIM_EINVAL && b.nseq == 0,
              "line %zu accepted", i);
        free(line);
    }
    TAP_END();

    /* the direct scanner and the jansson parser agree on what the scanner
     * takes; what it does not take is left to jansson (nothing appended) */
    TAP_BEGIN("jsonl_fast_path_agrees");
    const char *same[] = {
        "{\"id\":\"a\",\"tokens\":[5,6,7],\"top\":[[[6,-0.1],[9,-2.5]],[[7,-0.5],[1,-1.0]]]}",
        " { \"top\" : [ [ [1, -1e-3], [2, -0] ] ], \"tokens\" : [ 3 , 4 ], \"id\": 17 }\n",
        "{\"tokens\":[1,2],\"top\":[[[2,-0.25],[3,-0.25],[1,-3.0]],[[4,-1],[5,-2]]]}",
        "{\"tokens\":[1],\"top\":[]}",
        "{\"tokens\":[1,2],\"top\":[[[2,0.0000001]]]}",
    };
    const char *slow_only[] = {
        "{\"tokens\":[1,2],\"top\":[[[2,0.5]]]}",              /* error: jansson's message */
        "{\"tokens\":[\"1\",2],\"top\":[[[2,-0.5]]]}",        /* string token */
        "{\"id\":\"\\u00e9\",\"tokens\":[1],\"top\":[]}",  /* escape */
        "{\"tokens\":[1],\"top\":[],\"extra\":1}",            /* unknown key */
        "{\"tokens\":[1],\"top\":[],\"top\":[]}",             /* duplicate key */
    };
    slim_jsonl_opts jo = { .vocab_size = 10 };
    slim_batch f = { 0 }, t = { 0 };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        slim_batch_reset(&f); slim_batch_reset(&t);
        int fr = slim_jsonl_fast_simple(same[i], strlen(same[i]), &jo, &f);
        int tr = slim_jsonl_parse_tree(same[i], strlen(same[i]), &jo, &t, err, sizeof err);
        CHECK(fr == 1 && tr == 0, "line %zu: fast %d tree %d (%s)", i, fr, tr, err);
        CHECK(f.nseq == t.nseq && f.nent == t.nent && f.ntok == t.ntok
              && !memcmp(f.ids, t.ids, f.nent * 4) && !memcmp(f.vals, t.vals, f.nent * 4)
              && !memcmp(f.tokens, t.tokens, f.ntok * 4)
              && !strcmp(f.seqs[0].ext_id, t.seqs[0].ext_id), "line %zu: results differ", i);
    }
    for (size_t i = 0; i < sizeof slow_only / sizeof slow_only[0]; i++) {
        slim_batch_reset(&f);
        CHECK(slim_jsonl_fast_simple(slow_only[i], strlen(slow_only[i]), &jo, &f) == 0 && f.nseq == 0,
              "fast path took line %zu", i);
    }
    slim_batch_release(&f); slim_batch_release(&t);
    TAP_END();
    slim_batch_release(&b);
}

/* ------------------------------------------------- fixture generator mode */

/* key=value arguments: the value of `key`, or def */
static const char *kv(int argc, char **argv, const char *key, const char *def)
{
    size_t n = strlen(key);
    for (int i = 0; i < argc; i++)
        if (!strncmp(argv[i], key, n) && argv[i][n] == '=') return argv[i] + n + 1;
    return def;
}
#define KVI(k, d) ((uint32_t)strtoul(kv(argc, argv, k, d), NULL, 10))

/* sparse safetensors: topk_ids [N,T,K] + topk_logprobs; bad=dup|neg|pos|big
 * corrupts sequence bad_seq position 1 */
static int gen_sparse(const char *out, int argc, char **argv)
{
    uint32_t N = KVI("n", "3"), T = KVI("t", "6"), K = KVI("k", "4"), V = KVI("v", "100");
    uint32_t bs = KVI("bad_seq", "1");
    const char *bad = kv(argc, argv, "bad", "");
    int logits = !strcmp(kv(argc, argv, "vals", "logprobs"), "logits");
    int64_t *ids = calloc((size_t)N * T, 8), *tk = calloc((size_t)N * T * K, 8);
    float *lp = calloc((size_t)N * T * K, 4);
    for (uint32_t n = 0; n < N; n++)
        for (uint32_t t = 0; t < T; t++) {
            ids[n * T + t] = (n * 13 + t * 5) % V;
            for (uint32_t j = 0; j < K; j++) {
                size_t e = ((size_t)n * T + t) * K + j;
                tk[e] = (n + t * 3 + j * 7) % V;
                lp[e] = -0.25f * (float)(j + 1) - 0.01f * (float)t + (logits ? 7.5f : 0.0f);
            }
        }
    size_t e = ((size_t)bs * T + 1) * K;
    if (!strcmp(bad, "dup")) tk[e + 1] = tk[e];
    if (!strcmp(bad, "neg")) tk[e] = -1;
    if (!strcmp(bad, "big")) tk[e] = V + 5;
    if (!strcmp(bad, "pos")) lp[e] = 0.5f;
    fx_tensor ts[] = {
        { "input_ids", "I64", 2, { N, T }, ids },
        { "topk_ids", "I64", 3, { N, T, K }, tk },
        { logits ? "topk_logits" : "topk_logprobs", "F32", 3, { N, T, K }, lp },
    };
    int rc = fx_write_safetensors(out, ts, 3);
    free(ids); free(tk); free(lp);
    return rc;
}

/* malformed safetensors files */
static int gen_bad(const char *kind, const char *out)
{
    char hdr[512];
    size_t dlen = 0;
    if (!strcmp(kind, "dtype")) {
        snprintf(hdr, sizeof hdr, "{\"input_ids\":{\"dtype\":\"I32\",\"shape\":[1,2],\"data_offsets\":[0,8]},"
                 "\"logits\":{\"dtype\":\"F8_E4M3\",\"shape\":[1,2,4],\"data_offsets\":[8,16]}}");
        dlen = 16;
    } else if (!strcmp(kind, "overlap")) {
        snprintf(hdr, sizeof hdr, "{\"input_ids\":{\"dtype\":\"I32\",\"shape\":[1,2],\"data_offsets\":[0,8]},"
                 "\"logits\":{\"dtype\":\"F32\",\"shape\":[1,2,4],\"data_offsets\":[4,36]}}");
        dlen = 40;
    } else if (!strcmp(kind, "range")) {
        snprintf(hdr, sizeof hdr, "{\"input_ids\":{\"dtype\":\"I32\",\"shape\":[1,2],\"data_offsets\":[0,8]},"
                 "\"logits\":{\"dtype\":\"F32\",\"shape\":[1,2,4],\"data_offsets\":[8,40]}}");
        dlen = 20;
    } else if (!strcmp(kind, "shape")) {
        snprintf(hdr, sizeof hdr, "{\"input_ids\":{\"dtype\":\"I32\",\"shape\":[1,2],\"data_offsets\":[0,8]},"
                 "\"logits\":{\"dtype\":\"F32\",\"shape\":[1,3,4],\"data_offsets\":[8,56]}}");
        dlen = 56;
    } else if (!strcmp(kind, "trunc")) {
        snprintf(hdr, sizeof hdr, "{\"input_ids\":");
    } else return -1;
    FILE *f = fopen(out, "wb");
    if (!f) return -1;
    uint64_t h = strlen(hdr) + (!strcmp(kind, "trunc") ? 4096 : 0);
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)(h >> (8 * i));
    fwrite(len, 1, 8, f);
    fwrite(hdr, 1, strlen(hdr), f);
    for (size_t i = 0; i < dlen; i++) fputc(0, f);
    return fclose(f);
}

static int gen(int argc, char **argv)
{
    if (argc < 2) { fprintf(stderr, "usage: gen dense|sparse|npy|bad KIND OUT [k=v...]\n"); return 2; }
    const char *what = argv[0];
    if (!strcmp(what, "bad")) return argc < 3 || gen_bad(argv[1], argv[2]) ? 1 : 0;
    const char *out = argv[1];
    if (!strcmp(what, "sparse")) return gen_sparse(out, argc - 2, argv + 2) ? 1 : 0;
    argc -= 2; argv += 2;
    fx_dense d = {
        .logits_dtype = kv(argc, argv, "dtype", "F32"), .ids_dtype = kv(argc, argv, "ids", "I64"),
        .N = KVI("n", "4"), .T = KVI("t", "8"), .V = KVI("v", "64"), .seed = KVI("seed", "1"),
        .pad = (int)KVI("pad", "0"), .prefix = KVI("prefix", "0"),
        .nan_seq = (int)strtol(kv(argc, argv, "nan_seq", "-1"), NULL, 10),
        .nan_pos = (int)KVI("nan_pos", "0"), .flat = (int)KVI("flat", "0"),
        .extra = (int)KVI("extra", "0"),
    };
    if (!strcmp(what, "dense")) return fx_dense_write(out, &d, NULL, NULL, NULL) ? 1 : 0;
    if (!strcmp(what, "npy")) {
        /* out is a directory: input_ids.npy + logits.npy (F32) */
        size_t NT = (size_t)d.N * d.T;
        uint32_t *tok = malloc(NT * 4);
        float *lg = malloc(NT * d.V * 4);
        int64_t *ids = malloc(NT * 8);
        char p[1024];
        snprintf(p, sizeof p, "%s/tmp.safetensors", out);
        d.logits_dtype = "F32";
        int rc = fx_dense_write(p, &d, tok, lg, NULL);
        remove(p);
        for (size_t i = 0; i < NT; i++) ids[i] = tok[i];
        uint64_t s2[2] = { d.N, d.T }, s3[3] = { d.N, d.T, d.V };
        snprintf(p, sizeof p, "%s/input_ids.npy", out);
        if (!rc) rc = fx_write_npy(p, "<i8", 2, s2, ids, NT * 8);
        snprintf(p, sizeof p, "%s/logits.npy", out);
        if (!rc) rc = fx_write_npy(p, "<f4", 3, s3, lg, NT * d.V * 4);
        free(tok); free(lg); free(ids);
        return rc ? 1 : 0;
    }
    return 2;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "gen")) return gen(argc - 2, argv + 2);
    test_topk();
    test_specs();
    test_safetensors();
    test_npy();
    test_jsonl();
    return tap_done();
}
