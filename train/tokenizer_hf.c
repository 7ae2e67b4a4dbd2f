/*
 * tokenizer_hf.c — Hugging Face tokenizer.json: import (slim_tok_load_hf)
 * and export of a byte-level BPE (slim_tok_save_hf).  docs/TOKENIZER.md
 * lists what is read and what is ignored.
 */
#include "tokenizer_int.h"

#include <pthread.h>

#include <jansson.h>

/* ------------------------------------------------ Hugging Face tokenizer.json */
/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the
 * other 68 bytes for U+0100..U+0143 in byte order ('Ġ' = U+0120 = space). */
static uint16_t B2U[256];
static int16_t U2B[324];

static void b2u_fill(void)
{
    int n = 0;
    for (int i = 0; i < 324; i++) U2B[i] = -1;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        B2U[b] = (uint16_t)(keep ? b : 256 + n++);
        U2B[B2U[b]] = (int16_t)b;
    }
}

static void b2u_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, b2u_fill);
}

/* One UTF-8 code point from s[0..n); its length in *len, -1 if invalid. */
static long utf8_next(const unsigned char *s, size_t n, size_t *len)
{
    unsigned c = s[0], k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!k || k > n) return -1;
    long cp = k == 1 ? c : c & (0x7f >> k);
    for (unsigned i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80) return -1;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    *len = k;
    return cp;
}

/* The bytes a vocabulary string stands for, into out (>= strlen(s) bytes). */
static size_t hf_piece(int kind, const char *str, size_t n, char *out)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t o = 0, k;
    if (kind == SLIM_TOK_BYTEBPE) {
        for (size_t i = 0; i < n; i += k) {
            long cp = utf8_next(s + i, n - i, &k);
            if (cp < 0 || cp >= 324 || U2B[cp] < 0) goto literal;
            out[o++] = (char)U2B[cp];
        }
        return o;
    }
    if (kind == SLIM_TOK_SPM) {
        if (n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>' && hexval(s[3]) >= 0 && hexval(s[4]) >= 0) {
            out[0] = (char)(hexval(s[3]) << 4 | hexval(s[4]));
            return 1;
        }
        for (size_t i = 0; i < n; i++) {
            if (i + 2 < n && s[i] == 0xe2 && s[i + 1] == 0x96 && s[i + 2] == 0x81) {
                out[o++] = ' ';  /* U+2581 LOWER ONE EIGHTH BLOCK */
                i += 2;
            } else {
                out[o++] = (char)s[i];
            }
        }
        return o;
    }
literal:
    memcpy(out, s, n);
    return n;
}

/* Does any object inside j have "type": name? (decoders nest in Sequence) */
static int has_type(const json_t *j, const char *name)
{
    size_t i;
    const char *k;
    json_t *v;
    if (json_is_object(j)) {
        const char *ty = json_string_value(json_object_get(j, "type"));
        if (ty && !strcmp(ty, name)) return 1;
        json_object_foreach((json_t *)j, k, v) if (has_type(v, name)) return 1;
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v) if (has_type(v, name)) return 1;
    }
    return 0;
}

static int hf_kind(const json_t *root, const json_t *model, const json_t *vocab)
{
    const char *type = json_string_value(json_object_get(model, "type"));
    const json_t *pre = json_object_get(root, "pre_tokenizer"), *dec = json_object_get(root, "decoder");
    if (has_type(pre, "ByteLevel") || has_type(dec, "ByteLevel")) return SLIM_TOK_BYTEBPE;
    if ((type && !strcmp(type, "Unigram")) || has_type(pre, "Metaspace") || has_type(dec, "Metaspace") ||
        has_type(dec, "ByteFallback") || json_is_true(json_object_get(model, "byte_fallback")))
        return SLIM_TOK_SPM;
    if (json_is_object(vocab)) {  /* no hints: a vocabulary written with U+2581 is SentencePiece's */
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)vocab, k, v) if (strstr(k, "\xe2\x96\x81")) return SLIM_TOK_SPM;
    }
    return SLIM_TOK_LITERAL;
}

typedef struct {
    const char *path;
    char *err;
    size_t errcap;
    slim_tok *t;
    smap raw;     /* vocabulary string as written -> id */
    char *buf;    /* scratch */
    size_t bcap;
} hfload;

static int hf_token(hfload *h, const char *where, const char *s, size_t n, json_int_t id, int special, int replace)
{
    if (id < 0 || id >= TOK_MAX_ID)
        return fail(h->err, h->errcap, SLIM_EINVAL, "'%s': %s: id %lld of '%s' out of range", h->path,
                    where, (long long)id, s);
    if (grow((void **)&h->buf, &h->bcap, n + 1, 1)) return SLIM_ENOMEM;
    size_t pn = special || replace ? (memcpy(h->buf, s, n), n) : hf_piece(h->t->kind, s, n, h->buf);
    int r = slim_tok_set_piece(h->t, (uint32_t)id, h->buf, pn, special, replace);
    if (r < 0) return r;
    if (r == 1)
        return fail(h->err, h->errcap, SLIM_EINVAL, "'%s': %s: duplicate id %lld ('%s' and an earlier token)",
                    h->path, where, (long long)id, s);
    uint32_t *slot;
    r = slim_smap_add(&h->raw, s, n, (uint32_t)id, &slot);
    if (r < 0) return r;
    if (r == 1 && replace) *slot = (uint32_t)id;
    return 0;
}

static int hf_vocab(hfload *h, const json_t *vocab)
{
    const char *k;
    json_t *v;
    size_t i;
    int rc;
    if (json_is_object(vocab)) {
        json_object_foreach((json_t *)vocab, k, v) {
            if (!json_is_integer(v))
                return fail(h->err, h->errcap, SLIM_EINVAL, "'%s': model.vocab: id of '%s' is not an integer",
                            h->path, k);
            if ((rc = hf_token(h, "model.vocab", k, strlen(k), json_integer_value(v), 0, 0))) return rc;
        }
        return 0;
    }
    if (!json_is_array(vocab))
        return fail(h->err, h->errcap, SLIM_EINVAL, "'%s': model.vocab is neither an object nor a list", h->path);
    json_array_foreach(vocab, i, v) {  /* Unigram: [[piece, score], ...], id = index */
        const char *s = json_string_value(json_array_get(v, 0));
        if (!s)
            return fail(h->err, h->errcap, SLIM_EINVAL, "'%s': model.vocab[%zu]: expected [piece, score]",
                        h->path, i);
        if ((rc = hf_token(h, "model.vocab", s, json_string_length(json_array_get(v, 0)), (json_int_t)i, 0, 0)))
            return rc;
    }
    return 0;
}

static int hf_added(hfload *h, const json_t *added)
{
    size_t i;
    json_t *v;
    int rc;
    if (!added || json_is_null(added)) return 0;
    if (!json_is_array(added))
        return fail(h->err, h->errcap, SLIM_EINVAL, "'%s': added_tokens is not a list", h->path);
    json_array_foreach(added, i, v) {
        json_t *id = json_object_get(v, "id"), *c = json_object_get(v, "content");
        if (!json_is_integer(id) || !json_is_string(c))
            return fail(h->err, h->errcap, SLIM_EINVAL,
                        "'%s': added_tokens[%zu]: needs an integer id and a string content", h->path, i);
        if ((rc = hf_token(h, "added_tokens", json_string_value(c), json_string_length(c),
                           json_integer_value(id), json_is_true(json_object_get(v, "special")), 1)))
            return rc;
    }
    return 0;
}

/* May encoding use the merge a + b -> r?  Only if r's piece is exactly a's
 * followed by b's and none of the three is special (encode never yields a
 * special id from text). */
static int merge_usable(const slim_tok *t, uint32_t a, uint32_t b, uint32_t r)
{
    uint32_t la = t->len[a], lb = t->len[b];
    return !t->special[a] && !t->special[b] && !t->special[r] && t->len[r] == la + lb &&
           !memcmp(t->arena + t->off[r], t->arena + t->off[a], la) &&
           !memcmp(t->arena + t->off[r] + la, t->arena + t->off[b], lb);
}

/* merges: ["a b", ...] (tokenizers < 0.20) or [["a", "b"], ...] */
static int hf_merges(hfload *h, const json_t *merges)
{
    size_t i;
    json_t *v;
    if (!merges || json_is_null(merges)) return 0;
    if (!json_is_array(merges))
        return fail(h->err, h->errcap, SLIM_EINVAL, "'%s': model.merges is not a list", h->path);
    json_array_foreach(merges, i, v) {
        const char *a, *b;
        size_t la, lb;
        if (json_is_string(v)) {
            a = json_string_value(v);
            const char *sp = strchr(a, ' ');
            if (!sp || strchr(sp + 1, ' ')) goto bad;
            la = (size_t)(sp - a), b = sp + 1, lb = strlen(b);
        } else if (json_is_array(v) && json_array_size(v) == 2 && json_is_string(json_array_get(v, 0)) &&
                   json_is_string(json_array_get(v, 1))) {
            a = json_string_value(json_array_get(v, 0)), la = json_string_length(json_array_get(v, 0));
            b = json_string_value(json_array_get(v, 1)), lb = json_string_length(json_array_get(v, 1));
        } else {
            goto bad;
        }
        if (grow((void **)&h->buf, &h->bcap, la + lb + 1, 1)) return SLIM_ENOMEM;
        memcpy(h->buf, a, la);
        memcpy(h->buf + la, b, lb);
        uint32_t *ia = slim_smap_get(&h->raw, a, la), *ib = slim_smap_get(&h->raw, b, lb),
                 *ir = slim_smap_get(&h->raw, h->buf, la + lb);
        if (!ia || !ib || !ir) {
            h->buf[la + lb] = 0;
            return fail(h->err, h->errcap, SLIM_EINVAL, "'%s': model.merges[%zu]: '%s' is not in model.vocab",
                        h->path, i, !ia ? a : !ib ? b : h->buf);
        }
        /* added_tokens may give one of the ids other bytes or make it special
         * (e.g. a reused vocabulary slot): encoding through such a merge would
         * not decode back to the text, so it is left out; the ids keep their
         * pieces. */
        if (!merge_usable(h->t, *ia, *ib, *ir)) continue;
        if (slim_tok_add_merge(h->t, *ia, *ib, *ir)) return SLIM_ENOMEM;
    }
    return 0;
bad:
    return fail(h->err, h->errcap, SLIM_EINVAL, "'%s': model.merges[%zu]: expected \"a b\" or [\"a\", \"b\"]",
                h->path, i);
}

static int hf_build(hfload *h, const json_t *root)
{
    const json_t *model = json_object_get(root, "model");
    if (!json_is_object(model))
        return fail(h->err, h->errcap, SLIM_EINVAL, "'%s': missing model", h->path);
    const json_t *vocab = json_object_get(model, "vocab");
    if (!vocab) return fail(h->err, h->errcap, SLIM_EINVAL, "'%s': missing model.vocab", h->path);
    if (!(h->t = slim_tok_alloc(hf_kind(root, model, vocab))) || slim_smap_init(&h->raw, 1024)) return SLIM_ENOMEM;
    b2u_init();
    int rc = hf_vocab(h, vocab);
    if (!rc) rc = hf_added(h, json_object_get(root, "added_tokens"));
    if (!rc) rc = hf_merges(h, json_object_get(model, "merges"));
    if (!rc && h->t->size == 0) rc = fail(h->err, h->errcap, SLIM_EINVAL, "'%s': empty model.vocab", h->path);
    if (!rc && slim_tok_index(h->t)) rc = SLIM_ENOMEM;
    return rc;
}

int slim_tok_load_hf(const char *path, slim_tok **out, char *err, size_t errcap)
{
    char *buf;
    size_t n;
    json_error_t je;
    hfload h = {path, err, errcap, NULL, {0}, NULL, 0};
    *out = NULL;
    int rc = slim_tok_read_file(path, &buf, &n, err, errcap);
    if (rc) return rc;
    json_t *root = json_loadb(buf, n, 0, &je);
    if (!root) {
        free(buf);
        return fail(err, errcap, SLIM_EINVAL, "'%s' line %d column %d: invalid JSON: %s", path, je.line,
                    je.column, je.text);
    }
    rc = hf_build(&h, root);
    if (rc == SLIM_ENOMEM) fail(err, errcap, rc, "'%s': out of memory", path);
    if (!rc) slim_tok_sha256(buf, n, h.t->sha);
    json_decref(root);
    free(buf);
    slim_smap_free(&h.raw);
    free(h.buf);
    if (rc) slim_tok_free(h.t);
    else *out = h.t;
    return rc;
}

/* A piece as a byte-level vocabulary string (UTF-8 of the mapped code points). */
static char *bytelevel_str(const char *p, size_t n, char *out)
{
    char *o = out;
    for (size_t i = 0; i < n; i++) {
        unsigned cp = B2U[(unsigned char)p[i]];
        if (cp < 0x80) {
            *o++ = (char)cp;
        } else {
            *o++ = (char)(0xc0 | cp >> 6);
            *o++ = (char)(0x80 | (cp & 0x3f));
        }
    }
    *o = 0;
    return out;
}

/* The tokenizer.json tree, or NULL: out of memory, a special token that is
 * not valid UTF-8, or (*dup = its id) an id whose vocabulary string an earlier
 * id already has — model.vocab is a map, so one of them would be lost. */
static json_t *hf_export(const slim_tok *t, char *s1, uint32_t *dup)
{
    json_t *root = json_object(), *added = json_array(), *vocab = json_object(), *merges = json_array();
    json_t *model = json_pack("{s:s, s:n, s:n, s:n, s:n, s:b, s:b}", "type", "BPE", "dropout", "unk_token",
                              "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", 0, "byte_fallback", 0);
    json_t *bl = json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets",
                           1, "use_regex", 1);
    int bad = !root || !added || !vocab || !merges || !model || !bl;
    for (uint32_t id = 0; !bad && id < t->size; id++) {
        if (t->len[id] == TOK_NONE) continue;   /* (its offset is not set) */
        const char *p = t->arena + t->off[id];
        if (t->special[id]) {
            memcpy(s1, p, t->len[id]);
            s1[t->len[id]] = 0;
            bad |= json_array_append_new(added, json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", (int)id,
                                         "content", s1, "single_word", 0, "lstrip", 0, "rstrip", 0,
                                         "normalized", 0, "special", 1));
        } else {
            bytelevel_str(p, t->len[id], s1);
        }
        if (json_object_get(vocab, s1)) {
            *dup = id;
            bad = 1;
            break;
        }
        bad |= json_object_set_new(vocab, s1, json_integer(id));
    }
    for (uint32_t r = 0; !bad && r < t->nmerge; r++) {
        uint32_t a = t->merge[3 * r], b = t->merge[3 * r + 1];
        bytelevel_str(t->arena + t->off[a], t->len[a], s1);
        size_t l = strlen(s1);
        s1[l] = ' ';
        bytelevel_str(t->arena + t->off[b], t->len[b], s1 + l + 1);
        bad |= json_array_append_new(merges, json_string(s1));
    }
    bad |= json_object_set_new(model, "vocab", vocab) | json_object_set_new(model, "merges", merges);
    bad |= json_object_set_new(root, "version", json_string("1.0")) |
           json_object_set_new(root, "truncation", json_null()) | json_object_set_new(root, "padding", json_null()) |
           json_object_set_new(root, "added_tokens", added) | json_object_set_new(root, "normalizer", json_null()) |
           json_object_set_new(root, "pre_tokenizer", bl) |
           json_object_set_new(root, "post_processor", json_null()) |
           json_object_set_new(root, "decoder", json_deep_copy(bl)) | json_object_set_new(root, "model", model);
    if (bad) {
        json_decref(root);
        return NULL;
    }
    return root;
}

int slim_tok_save_hf(const slim_tok *t, const char *path, char *err, size_t errcap)
{
    if (t->kind != SLIM_TOK_BYTEBPE)
        return fail(err, errcap, SLIM_EINVAL, "cannot export '%s': only byte-level BPE tokenizers can be", path);
    b2u_init();
    size_t maxl = 0;
    for (uint32_t id = 0; id < t->size; id++)
        if (t->len[id] != TOK_NONE && t->len[id] > maxl) maxl = t->len[id];
    char *s1 = malloc(4 * maxl + 8);
    uint32_t dup = TOK_NONE;
    json_t *root = s1 ? hf_export(t, s1, &dup) : NULL;
    free(s1);
    if (dup != TOK_NONE)
        return fail(err, errcap, SLIM_EINVAL,
                    "cannot export '%s': id %u has the same vocabulary string as an earlier id", path, dup);
    char *text = root ? json_dumps(root, JSON_INDENT(2)) : NULL;
    json_decref(root);
    if (!text) return fail(err, errcap, SLIM_ENOMEM, "cannot export '%s': out of memory or invalid special token", path);
    int rc = slim_tok_write_file(path, text, strlen(text), err, errcap);
    free(text);
    return rc;
}
