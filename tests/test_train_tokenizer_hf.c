/*
 * test_train_tokenizer_hf.c — regressions found by tests/fuzz/fuzz_tokenizer.c
 * in the Hugging Face tokenizer.json import/export (train/tokenizer_hf.c):
 *   - an added token that reuses a merge's result id (other bytes) or makes a
 *     merge's id special: the merge used to stay, so encoding emitted the
 *     added token and decode(encode(text)) != text;
 *   - two ids with one vocabulary string: slim_tok_save_hf used to write one
 *     of them only (model.vocab is a map), silently losing an id.
 * The files are slim's own export (slim_tok_train + slim_tok_save_hf) edited
 * with jansson, written into $SLIM_TMP.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../train/tokenizer.h"
#include "lib/tap.h"

static char tmpdir[512];

static const char *tmp_path(const char *name)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
    return buf;
}

static const char TEXT[] = "the cat sat on the mat; the theme of the thesis. ";

/* slim's tokenizer on TEXT x 20 (vocab 300), exported; the JSON tree. */
static json_t *exported(slim_tok **t)
{
    size_t n = strlen(TEXT);
    char *s = malloc(20 * n + 1), err[256];
    for (int i = 0; i < 20; i++) memcpy(s + i * n, TEXT, n);
    s[20 * n] = 0;
    if (slim_tok_train(s, 20 * n, 300, NULL, 0, t, err, sizeof err) ||
        slim_tok_save_hf(*t, tmp_path("base.json"), err, sizeof err)) {
        printf("FAIL setup: %s\n", err);
        exit(1);
    }
    free(s);
    json_error_t je;
    return json_load_file(tmp_path("base.json"), 0, &je);
}

/* Append {"id": id, "content": content, "special": special} to added_tokens,
 * write the tree to name and load it. */
static int load_with_added(json_t *root, uint32_t id, const char *content, int special,
                           const char *name, slim_tok **out, char *err, size_t cap)
{
    json_t *copy = json_deep_copy(root);
    json_array_append_new(json_object_get(copy, "added_tokens"),
                          json_pack("{s:i, s:s, s:b}", "id", (int)id, "content", content, "special", special));
    json_dump_file(copy, tmp_path(name), 0);
    json_decref(copy);
    return slim_tok_load_hf(tmp_path(name), out, err, cap);
}

/* decode(encode(s)) == s? */
static int exact(slim_tok *t, const char *s)
{
    uint32_t ids[256];
    char back[256];
    size_t n = strlen(s), k, len;
    return !slim_tok_encode(t, s, n, ids, 256, &k) && !slim_tok_decode(t, ids, k, back, sizeof back, &len) &&
           len == n && !memcmp(back, s, n);
}

/* The id of the merge result whose piece is s (a merge the encoder uses). */
static uint32_t merged_id(slim_tok *t, const char *s)
{
    uint32_t id;
    return slim_tok_find(t, s, strlen(s), &id) ? UINT32_MAX : id;
}

static void test_reused_merge_id(json_t *root, slim_tok *base)
{
    TAP_BEGIN("hf_added_token_reuses_merge_result");
    uint32_t id = merged_id(base, " the");
    slim_tok *t = NULL;
    char err[256] = "";
    CHECK(id != UINT32_MAX && id >= 256, "' the' is not a merge result (%u)", id);
    int rc = load_with_added(root, id, "<|reused|>", 0, "reused.json", &t, err, sizeof err);
    CHECK(rc == 0, "load: %s", err);
    if (!rc) {
        size_t len;
        const char *p = slim_tok_piece(t, id, &len);
        CHECK(p && len == 10 && !memcmp(p, "<|reused|>", 10), "id %u keeps the added token's piece", id);
        CHECK(exact(t, "the cat sat on the mat; the theme of the thesis."), "decode(encode(text)) != text");
        CHECK(slim_tok_merges(t) < slim_tok_merges(base), "merges %u, base %u: the merge to id %u stayed",
              slim_tok_merges(t), slim_tok_merges(base), id);
    }
    slim_tok_free(t);
    TAP_END();
}

static void test_special_in_merge(json_t *root, slim_tok *base)
{
    TAP_BEGIN("hf_special_token_leaves_merges");
    /* the last merge's result (a whole word of TEXT that encoding yields),
     * with the same bytes but special: encode must never yield it from text */
    uint32_t id = 255 + slim_tok_merges(base);
    size_t n;
    const char *p = slim_tok_piece(base, id, &n);
    char piece[64] = "";
    slim_tok *t = NULL;
    char err[256] = "";
    CHECK(p && n < sizeof piece && slim_tok_merges(base) > 0, "no merge");
    if (p && n < sizeof piece) memcpy(piece, p, n);
    int rc = load_with_added(root, id, piece, 1, "special.json", &t, err, sizeof err);
    CHECK(rc == 0, "load: %s", err);
    if (!rc) {
        uint32_t ids[256];
        size_t k;
        CHECK(!slim_tok_encode(t, TEXT, strlen(TEXT), ids, 256, &k), "encode failed");
        for (size_t i = 0; i < k; i++) CHECK(!slim_tok_is_special(t, ids[i]), "special id %u from text", ids[i]);
        CHECK(exact(t, TEXT), "decode(encode(text)) != text");
    }
    slim_tok_free(t);
    TAP_END();
}

static void test_export_duplicate(json_t *root)
{
    TAP_BEGIN("hf_export_refuses_duplicate_strings");
    slim_tok *t = NULL;
    char err[256] = "";
    /* a non-special added token with the bytes of 'a' (id 97) */
    int rc = load_with_added(root, 300, "a", 0, "dup.json", &t, err, sizeof err);
    CHECK(rc == 0, "load: %s", err);
    if (!rc) {
        err[0] = 0;
        rc = slim_tok_save_hf(t, tmp_path("dup-out.json"), err, sizeof err);
        CHECK(rc == SLIM_EINVAL && strstr(err, "id 300"), "export rc %d (%s): one id would be lost", rc, err);
    }
    slim_tok_free(t);
    TAP_END();
}

int main(void)
{
    const char *d = getenv("SLIM_TMP");
    snprintf(tmpdir, sizeof tmpdir, "%s", d && *d ? d : "/tmp");
    slim_tok *base = NULL;
    json_t *root = exported(&base);
    if (!root) {
        printf("FAIL setup: cannot read the exported tokenizer.json\n");
        return 1;
    }
    test_reused_merge_id(root, base);
    test_special_in_merge(root, base);
    test_export_duplicate(root);
    json_decref(root);
    slim_tok_free(base);
    return tap_done();
}
