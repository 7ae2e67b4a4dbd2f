/*
 * test_train_tokenizer.c — slim's byte-level BPE (train, encode, decode,
 * save/load, HF export) and the Hugging Face tokenizer.json import, on small
 * embedded texts and hand-written fixtures written into $SLIM_TMP.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../train/tokenizer.h"
#include "lib/tap.h"

static char tmpdir[512];
static char path_buf[1024];

static const char *tmp_path(const char *name)
{
    snprintf(path_buf, sizeof path_buf, "%s/%s", tmpdir, name);
    return path_buf;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(1); }
    fputs(text, f);
    fclose(f);
}

static const char *PARA =
    "The quick brown fox jumps over the lazy dog. The dog does not mind; the fox is\n"
    "a friend of the dog, and the two of them walk through the forest in the evening.\n"
    "In the beginning God created the heaven and the earth. And the earth was without\n"
    "form, and void; and darkness was upon the face of the deep.  It's 10:30 -- isn't\n"
    "it? They'll say \"the end\" when the story is over, and then the others go home.\n\n";

/* The embedded corpus: PARA 40 times (about 16 KB). */
static char *corpus(size_t *len)
{
    size_t pl = strlen(PARA);
    char *s = malloc(pl * 40 + 1);
    for (int i = 0; i < 40; i++) memcpy(s + i * pl, PARA, pl);
    s[pl * 40] = 0;
    *len = pl * 40;
    return s;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

/* decode(encode(s)) == s; returns 0 or a description of the failure. */
static const char *roundtrip(slim_tok *t, const char *s, size_t n)
{
    static uint32_t ids[8192];
    static char back[8192];
    size_t k, m;
    if (n > sizeof back) return "test input too long";
    if (slim_tok_encode(t, s, n, ids, n, &k)) return "encode failed";
    if (k > n) return "more tokens than bytes";
    if (slim_tok_decode(t, ids, k, back, sizeof back, &m)) return "decode failed";
    if (m != n || memcmp(back, s, n)) return "decode(encode(s)) != s";
    return NULL;
}

static size_t count_tokens(slim_tok *t, const char *s)
{
    uint32_t ids[256];
    size_t k = 0;
    if (slim_tok_encode(t, s, strlen(s), ids, 256, &k)) return 0;
    return k;
}

static void test_train(slim_tok **out)
{
    size_t len, plen;
    char *text = corpus(&len), err[256] = "";
    slim_tok *t = NULL, *t2 = NULL;
    TAP_BEGIN("train_small");
    int rc = slim_tok_train(text, len, 400, NULL, 0, &t, err, sizeof err);
    CHECK(rc == 0, "train: %d %s", rc, err);
    if (rc) { TAP_END(); free(text); *out = NULL; return; }
    CHECK(slim_tok_size(t) == 400, "size %u", slim_tok_size(t));
    CHECK(slim_tok_merges(t) == 399 - 256, "merges %u", slim_tok_merges(t));
    const char *p = slim_tok_piece(t, 399, &plen);
    CHECK(p && plen == 13 && !memcmp(p, "<|endoftext|>", 13) && slim_tok_is_special(t, 399),
          "last id is not the special <|endoftext|>");
    p = slim_tok_piece(t, 65, &plen);
    CHECK(p && plen == 1 && p[0] == 'A', "byte ids are not the bytes");
    TAP_END();

    TAP_BEGIN("train_merges_plausible");
    uint32_t id, ids[8];
    size_t k;
    CHECK(slim_tok_find(t, " the", 4, &id) == 0, "' the' is not a token");
    CHECK(slim_tok_encode(t, " the", 4, ids, 8, &k) == 0 && k == 1 && ids[0] == id,
          "' the' encodes to %zu tokens", k);
    /* the most frequent pair of this text is " t"; "th" follows "t" often */
    CHECK(slim_tok_piece(t, 256, &plen) && plen == 2, "first merge is not two bytes");
    CHECK(count_tokens(t, " quick brown fox") <= 4, "frequent words not merged: %zu tokens",
          count_tokens(t, " quick brown fox"));
    /* merges never cross the pre-token boundaries: no piece holds ". " */
    CHECK(slim_tok_find(t, ". ", 2, &id) != 0 && slim_tok_find(t, "e.", 2, &id) != 0,
          "a merge crosses a word boundary");
    TAP_END();

    TAP_BEGIN("train_deterministic");
    char h1[65], h2[65];
    CHECK(slim_tok_train(text, len, 400, NULL, 0, &t2, err, sizeof err) == 0, "%s", err);
    slim_tok_hash(t, h1);
    if (t2) slim_tok_hash(t2, h2);
    CHECK(t2 && !strcmp(h1, h2), "two trainings differ");
    for (uint32_t i = 0; t2 && i < 400; i++) {
        size_t l1, l2;
        const char *a = slim_tok_piece(t, i, &l1), *b = slim_tok_piece(t2, i, &l2);
        CHECK(a && b && l1 == l2 && !memcmp(a, b, l1), "piece %u differs", i);
    }
    slim_tok_free(t2);
    TAP_END();

    TAP_BEGIN("train_errors");
    t2 = NULL;
    CHECK(slim_tok_train(text, len, 200, NULL, 0, &t2, err, sizeof err) == SLIM_EINVAL && !t2,
          "vocab 200 accepted");
    CHECK(strstr(err, "vocabulary size") != NULL, "message: %s", err);
    /* a tiny text runs out of pairs: fewer merges, specials right after */
    CHECK(slim_tok_train("abab", 4, 1000, NULL, 0, &t2, err, sizeof err) == 0, "%s", err);
    CHECK(t2 && slim_tok_merges(t2) == 2 && slim_tok_size(t2) == 259, "abab: %u merges",
          t2 ? slim_tok_merges(t2) : 0);
    slim_tok_free(t2);
    TAP_END();
    free(text);
    *out = t;
}

/* Ties go to the smaller (first id, second id): in "ab cd" every pair occurs
 * once, and (' ', 'c') = (32, 99) is the smallest. */
static void test_tie_break(void)
{
    char err[256] = "";
    slim_tok *t = NULL;
    size_t n;
    const char *p;
    TAP_BEGIN("train_tie_break");
    CHECK(slim_tok_train("ab cd", 5, 258, NULL, 0, &t, err, sizeof err) == 0, "%s", err);
    CHECK(t && (p = slim_tok_piece(t, 256, &n)) && n == 2 && !memcmp(p, " c", 2), "first merge is not ' c'");
    slim_tok_free(t);
    TAP_END();
}

/* The pre-tokenisation rule, seen through training: with enough vocabulary
 * every pre-token of a repeated text becomes one token, and no merge crosses
 * two of them — so the encoding lists the pre-tokens. */
static void test_pretokenize(void)
{
    static const char *const want[] = {"He", " said", ":", " \"", "it", "'s", " 42", "\"", " ", " they",
                                       "'ll", "\n\n", " go", ".", "\t", "caf\xc3\xa9", "!!"};
    const size_t nw = sizeof want / sizeof *want;
    char text[2048] = "", err[256] = "";
    size_t len = 0, n, k = 0;
    for (size_t i = 0; i < nw; i++) len += strlen(want[i]);
    for (int r = 0; r < 20; r++)
        for (size_t i = 0; i < nw; i++) strcat(text, want[i]);
    slim_tok *t = NULL;
    uint32_t ids[64];
    TAP_BEGIN("pretokenize_rule");
    CHECK(slim_tok_train(text, strlen(text), 2000, NULL, 0, &t, err, sizeof err) == 0, "%s", err);
    CHECK(t && slim_tok_encode(t, text, len, ids, 64, &k) == 0 && k == nw, "%zu tokens, want %zu", k, nw);
    for (size_t i = 0; t && k == nw && i < nw; i++) {
        const char *p = slim_tok_piece(t, ids[i], &n);
        CHECK(p && n == strlen(want[i]) && !memcmp(p, want[i], n), "pre-token %zu is '%.*s', want '%s'", i,
              p ? (int)n : 0, p ? p : "", want[i]);
    }
    slim_tok_free(t);
    TAP_END();
}

static void test_roundtrip(slim_tok *t)
{
    static char buf[4096];
    size_t len;
    char *text = corpus(&len);
    const char *why;
    TAP_BEGIN("roundtrip_text");
    for (size_t off = 0; off + 3000 < len; off += 1711)
        if ((why = roundtrip(t, text + off, 3000))) CHECK(0, "offset %zu: %s", off, why);
    CHECK(!(why = roundtrip(t, "", 0)), "empty: %s", why);
    CHECK(!(why = roundtrip(t, "   \n\n\t x  y\r\n", 14)), "spaces: %s", why);
    CHECK(!(why = roundtrip(t, "caf\xc3\xa9 na\xc3\xafve \xe2\x96\x81 \xf0\x9f\x98\x80", 21)), "utf-8: %s", why);
    TAP_END();

    TAP_BEGIN("roundtrip_random_bytes");
    for (int i = 0; i < 300; i++) {
        size_t n = rnd() % sizeof buf;
        int alpha = i % 3;  /* plain bytes, or mostly letters and spaces */
        for (size_t j = 0; j < n; j++)
            buf[j] = alpha == 0 ? (char)rnd() : alpha == 1 ? "the  \n.'sx\xff\x80"[rnd() % 12] : 'a';
        if ((why = roundtrip(t, buf, n))) CHECK(0, "case %d (%zu bytes): %s", i, n, why);
    }
    TAP_END();

    TAP_BEGIN("encode_decode_bounds");
    uint32_t ids[64], bad = slim_tok_size(t) + 5;
    size_t k, m;
    CHECK(slim_tok_encode(t, PARA, strlen(PARA), ids, 3, &k) == SLIM_ERANGE && k > 3,
          "small cap not reported");
    size_t need = k;
    uint32_t *all = malloc(need * sizeof *all);
    CHECK(slim_tok_encode(t, PARA, strlen(PARA), all, need, &k) == 0 && k == need, "needed size wrong");
    CHECK(slim_tok_decode(t, all, need, buf, 10, &m) == SLIM_ERANGE && m == strlen(PARA),
          "decode cap not reported");
    free(all);
    ids[0] = 65, ids[1] = bad;
    CHECK(slim_tok_decode(t, ids, 2, buf, sizeof buf, &m) == SLIM_EINVAL && m == 1, "bad id accepted");
    TAP_END();
    free(text);
}

static int same_tok(slim_tok *a, slim_tok *b, const char **why)
{
    if (slim_tok_size(a) != slim_tok_size(b)) return *why = "sizes differ", 0;
    for (uint32_t i = 0; i < slim_tok_size(a); i++) {
        size_t l1 = 0, l2 = 0;
        const char *p = slim_tok_piece(a, i, &l1), *q = slim_tok_piece(b, i, &l2);
        if (!p != !q || l1 != l2 || (p && memcmp(p, q, l1))) return *why = "pieces differ", 0;
        if (slim_tok_is_special(a, i) != slim_tok_is_special(b, i)) return *why = "special flags differ", 0;
    }
    uint32_t x[4096], y[4096];
    size_t nx, ny;
    if (slim_tok_encode(a, PARA, strlen(PARA), x, 4096, &nx) ||
        slim_tok_encode(b, PARA, strlen(PARA), y, 4096, &ny) || nx != ny || memcmp(x, y, nx * 4))
        return *why = "encodings differ", 0;
    return 1;
}

static void test_save_load(slim_tok *t)
{
    char err[256] = "", h1[65], h2[65];
    slim_tok *u = NULL;
    const char *why = "";
    TAP_BEGIN("save_load");
    CHECK(slim_tok_save(t, tmp_path("tok.slim"), err, sizeof err) == 0, "save: %s", err);
    CHECK(slim_tok_load(tmp_path("tok.slim"), &u, err, sizeof err) == 0, "load: %s", err);
    if (u) {
        CHECK(same_tok(t, u, &why), "%s", why);
        slim_tok_hash(t, h1);
        slim_tok_hash(u, h2);
        CHECK(!strcmp(h1, h2), "hash changed by save/load: %s vs %s", h1, h2);
    }
    slim_tok_free(u);
    TAP_END();

    TAP_BEGIN("load_corrupt");
    u = NULL;
    write_text(tmp_path("bad.slim"), "slim-tokenizer 1\nkind bytebpe\nsize 2\npieces 2\n0 61\n1 zz\nmerges 0\nend\n");
    CHECK(slim_tok_load(tmp_path("bad.slim"), &u, err, sizeof err) == SLIM_EINVAL && !u, "bad hex accepted");
    CHECK(strstr(err, "line 6") != NULL, "message: %s", err);
    write_text(tmp_path("bad.slim"), "slim-tokenizer 1\nkind bytebpe\nsize 2\npieces 2\n0 61\n1 62\nmerges 1\n0 1 5\nend\n");
    CHECK(slim_tok_load(tmp_path("bad.slim"), &u, err, sizeof err) == SLIM_EINVAL && !u, "bad merge accepted");
    CHECK(slim_tok_load(tmp_path("missing.slim"), &u, err, sizeof err) == SLIM_EIO && strstr(err, "missing.slim"),
          "missing file: %s", err);
    TAP_END();

    TAP_BEGIN("export_hf_roundtrip");
    u = NULL;
    CHECK(slim_tok_save_hf(t, tmp_path("tok.json"), err, sizeof err) == 0, "save_hf: %s", err);
    CHECK(slim_tok_load_hf(tmp_path("tok.json"), &u, err, sizeof err) == 0, "load_hf: %s", err);
    if (u) {
        CHECK(slim_tok_kind(u) == SLIM_TOK_BYTEBPE, "kind %d", slim_tok_kind(u));
        CHECK(slim_tok_merges(u) == slim_tok_merges(t), "merges %u", slim_tok_merges(u));
        CHECK(same_tok(t, u, &why), "%s", why);
    }
    slim_tok_free(u);
    TAP_END();
}

/* sha256 of a file by another route: coreutils' sha256sum */
static void sha256sum(const char *path, char hex[65])
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
    FILE *p = popen(cmd, "r");
    hex[0] = 0;
    if (p && fscanf(p, "%64s", hex) != 1) hex[0] = 0;
    if (p) pclose(p);
}

static const char *BYTELEVEL_JSON =
    "{\"version\": \"1.0\",\n"
    " \"added_tokens\": [{\"id\": 7, \"content\": \"<|endoftext|>\", \"special\": true},\n"
    "                  {\"id\": 9, \"content\": \"<tool>\", \"special\": false}],\n"
    " \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\"},\n"
    "                   {\"type\": \"ByteLevel\", \"add_prefix_space\": false}]},\n"
    " \"decoder\": {\"type\": \"ByteLevel\"},\n"
    " \"model\": {\"type\": \"BPE\",\n"
    "   \"vocab\": {\"a\": 0, \"b\": 1, \"\\u0120\": 2, \"\\u010a\": 3, \"ab\": 4, \"\\u0120ab\": 5,\n"
    "             \"\\u00e9\": 6, \"\\u00c3\": 10, \"\\u00a9\": 11, \"\\u00c3\\u00a9\": 12},\n"
    "   \"merges\": [\"a b\", [\"\\u0120\", \"ab\"], \"\\u00c3 \\u00a9\"]}}\n";

static void test_hf_bytelevel(void)
{
    char err[256] = "", h1[65], h2[65];
    slim_tok *t = NULL;
    size_t n;
    const char *p;
    TAP_BEGIN("hf_bytelevel");
    write_text(tmp_path("bl.json"), BYTELEVEL_JSON);
    int rc = slim_tok_load_hf(tmp_path("bl.json"), &t, err, sizeof err);
    CHECK(rc == 0, "load: %d %s", rc, err);
    if (!t) { TAP_END(); return; }
    CHECK(slim_tok_kind(t) == SLIM_TOK_BYTEBPE, "kind %d", slim_tok_kind(t));
    CHECK(slim_tok_size(t) == 13, "size %u", slim_tok_size(t));
    CHECK((p = slim_tok_piece(t, 2, &n)) && n == 1 && p[0] == ' ', "G-dot is not a space");
    CHECK((p = slim_tok_piece(t, 3, &n)) && n == 1 && p[0] == '\n', "C-dot is not a newline");
    CHECK((p = slim_tok_piece(t, 5, &n)) && n == 3 && !memcmp(p, " ab", 3), "id 5 is not ' ab'");
    CHECK((p = slim_tok_piece(t, 6, &n)) && n == 1 && (unsigned char)p[0] == 0xe9, "U+00E9 is not byte e9");
    CHECK((p = slim_tok_piece(t, 12, &n)) && n == 2 && !memcmp(p, "\xc3\xa9", 2), "id 12 is not UTF-8 e-acute");
    CHECK((p = slim_tok_piece(t, 7, &n)) && n == 13 && !memcmp(p, "<|endoftext|>", 13) && slim_tok_is_special(t, 7),
          "added special token");
    CHECK((p = slim_tok_piece(t, 9, &n)) && n == 6 && !slim_tok_is_special(t, 9), "added non-special token");
    CHECK(slim_tok_piece(t, 8, &n) == NULL, "unused id 8 has a piece");
    CHECK(slim_tok_merges(t) == 3, "merges %u", slim_tok_merges(t));
    uint32_t ids[16];
    size_t k;
    CHECK(slim_tok_encode(t, " ab\nab\xc3\xa9", 8, ids, 16, &k) == 0 && k == 4 && ids[0] == 5 && ids[1] == 3 &&
              ids[2] == 4 && ids[3] == 12,
          "encode ' ab\\nab\\u00e9' gave %zu ids", k);
    CHECK(slim_tok_encode(t, "abc", 3, ids, 16, &k) == SLIM_EINVAL, "byte without a token encoded");
    TAP_END();

    TAP_BEGIN("hf_hash_is_file_sha256");
    slim_tok_hash(t, h1);
    sha256sum(tmp_path("bl.json"), h2);
    CHECK(strlen(h1) == 64 && !strcmp(h1, h2), "hash %s, sha256sum %s", h1, h2);
    /* and the route sha256sum takes is right: the FIPS 180-2 vector for "abc" */
    write_text(tmp_path("abc"), "abc");
    sha256sum(tmp_path("abc"), h2);
    CHECK(!strcmp(h2, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "sha256sum: %s", h2);
    TAP_END();
    slim_tok_free(t);
}

static void test_hf_spm(void)
{
    char err[256] = "";
    slim_tok *t = NULL;
    size_t n;
    const char *p;
    TAP_BEGIN("hf_unigram_spm");
    write_text(tmp_path("uni.json"),
               "{\"added_tokens\": [{\"id\": 0, \"content\": \"<unk>\", \"special\": true}],\n"
               " \"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": \"\\u2581\"},\n"
               " \"model\": {\"type\": \"Unigram\", \"unk_id\": 0,\n"
               "   \"vocab\": [[\"<unk>\", 0.0], [\"\\u2581the\", -1.5], [\"<0x0A>\", -2], [\"a\\u2581b\", -3]]}}\n");
    CHECK(slim_tok_load_hf(tmp_path("uni.json"), &t, err, sizeof err) == 0, "load: %s", err);
    if (t) {
        CHECK(slim_tok_kind(t) == SLIM_TOK_SPM, "kind %d", slim_tok_kind(t));
        CHECK(slim_tok_size(t) == 4, "size %u", slim_tok_size(t));
        CHECK((p = slim_tok_piece(t, 1, &n)) && n == 4 && !memcmp(p, " the", 4), "U+2581 is not a space");
        CHECK((p = slim_tok_piece(t, 2, &n)) && n == 1 && p[0] == '\n', "<0x0A> is not a newline");
        CHECK((p = slim_tok_piece(t, 3, &n)) && n == 3 && !memcmp(p, "a b", 3), "inner U+2581");
        CHECK(slim_tok_is_special(t, 0), "<unk> not special");
        uint32_t ids[4] = {1, 2, 3};
        char buf[16];
        CHECK(slim_tok_decode(t, ids, 3, buf, sizeof buf, &n) == 0 && n == 8 && !memcmp(buf, " the\na b", 8),
              "decode");
        CHECK(slim_tok_encode(t, "the", 3, ids, 4, &n) == SLIM_EINVAL, "SPM encode should be refused");
    }
    slim_tok_free(t);
    TAP_END();

    TAP_BEGIN("hf_spm_bpe_pair_merges");
    t = NULL;
    write_text(tmp_path("spm.json"),
               "{\"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\"}, {\"type\": \"ByteFallback\"}]},\n"
               " \"model\": {\"type\": \"BPE\", \"byte_fallback\": true,\n"
               "   \"vocab\": {\"<s>\": 1, \"<0x20>\": 3, \"\\u2581\": 4, \"h\": 5, \"i\": 6, \"\\u2581h\": 7, \"\\u2581hi\": 8},\n"
               "   \"merges\": [[\"\\u2581\", \"h\"], [\"\\u2581h\", \"i\"]]}}\n");
    CHECK(slim_tok_load_hf(tmp_path("spm.json"), &t, err, sizeof err) == 0, "load: %s", err);
    if (t) {
        uint32_t id = 0;
        CHECK(slim_tok_kind(t) == SLIM_TOK_SPM, "kind %d", slim_tok_kind(t));
        CHECK(slim_tok_size(t) == 9 && slim_tok_merges(t) == 2, "size %u merges %u", slim_tok_size(t),
              slim_tok_merges(t));
        CHECK((p = slim_tok_piece(t, 8, &n)) && n == 3 && !memcmp(p, " hi", 3), "id 8");
        CHECK((p = slim_tok_piece(t, 3, &n)) && n == 1 && p[0] == ' ', "<0x20>");
        CHECK(slim_tok_find(t, " ", 1, &id) == 0 && id == 3, "find ' ' gave %u (lowest id wins)", id);
        CHECK(slim_tok_piece(t, 0, &n) == NULL && slim_tok_piece(t, 2, &n) == NULL, "unused ids");
    }
    slim_tok_free(t);
    TAP_END();
}

/* A malformed file is refused with a message containing want. */
static void refused(const char *name, const char *json, const char *want)
{
    char err[256] = "";
    slim_tok *t = NULL;
    TAP_BEGIN(name);
    write_text(tmp_path("bad.json"), json);
    int rc = slim_tok_load_hf(tmp_path("bad.json"), &t, err, sizeof err);
    CHECK(rc == SLIM_EINVAL && t == NULL, "accepted (rc %d)", rc);
    CHECK(strstr(err, "bad.json") && strstr(err, want), "message '%s' lacks '%s'", err, want);
    slim_tok_free(t);
    TAP_END();
}

static void test_hf_errors(void)
{
    refused("hf_invalid_json", "{\"model\": {\n  \"vocab\": {\"a\": 0,\n   \"b\": 1,,\n}}}\n", "line 3");
    refused("hf_missing_vocab", "{\"model\": {\"type\": \"BPE\", \"merges\": []}}", "missing model.vocab");
    refused("hf_missing_model", "{\"version\": \"1.0\"}", "missing model");
    refused("hf_duplicate_id", "{\"model\": {\"vocab\": {\"a\": 0, \"b\": 1, \"c\": 1}}}", "duplicate id 1");
    refused("hf_noninteger_id", "{\"model\": {\"vocab\": {\"a\": 0, \"b\": \"1\"}}}", "not an integer");
    refused("hf_float_id", "{\"model\": {\"vocab\": {\"a\": 0, \"b\": 1.5}}}", "not an integer");
    refused("hf_negative_id", "{\"model\": {\"vocab\": {\"a\": -1}}}", "out of range");
    refused("hf_merge_unknown", "{\"model\": {\"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}",
            "'ab' is not in model.vocab");
    refused("hf_merge_malformed", "{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": [\"ab\"]}}", "merges[0]");
    char err[256] = "";
    slim_tok *t = NULL;
    TAP_BEGIN("hf_missing_file");
    CHECK(slim_tok_load_hf(tmp_path("nope.json"), &t, err, sizeof err) == SLIM_EIO && !t, "no error");
    CHECK(strstr(err, "cannot open") && strstr(err, "nope.json"), "message: %s", err);
    TAP_END();
}

int main(void)
{
    const char *d = getenv("SLIM_TMP");
    snprintf(tmpdir, sizeof tmpdir, "%s", d && *d ? d : "/tmp");
    slim_tok *t = NULL;
    test_train(&t);
    test_tie_break();
    test_pretokenize();
    if (t) {
        test_roundtrip(t);
        test_save_load(t);
    }
    slim_tok_free(t);
    test_hf_bytelevel();
    test_hf_spm();
    test_hf_errors();
    return tap_done();
}
