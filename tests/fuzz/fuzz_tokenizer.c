/*
 * fuzz_tokenizer.c — libFuzzer: a Hugging Face tokenizer.json
 * (slim_tok_load_hf, train/tokenizer_hf.c) from arbitrary bytes.  A refused
 * file must leave no handle and a message; an accepted one must keep the
 * handle's contract (train/tokenizer.h):
 *   - every piece is found again by slim_tok_find, at its id or a lower one
 *     holding the same bytes;
 *   - slim's own format round-trips (slim_tok_save / slim_tok_load: same
 *     kind, size, pieces, special flags and merges);
 *   - a byte-level BPE decodes what it encodes, byte for byte (the input
 *     itself is the text);
 *   - a byte-level BPE that slim_tok_save_hf exports is read back by
 *     slim_tok_load_hf to the same ids, pieces, special flags and merges.
 * The loader takes a path: the input goes through a memfd.  Seeds in
 * tests/fuzz/corpus/fuzz_tokenizer are tokenizer.json files written by
 * `slim-train tokenizer --hf-json`.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../train/tokenizer_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/fuzz_tokenizer.XXXXXX";
static char in_path[64], slim_path[96], hf_path[96];

static void cleanup(void)
{
    remove(slim_path);
    remove(hf_path);
    rmdir(dir);
}

static void setup(void)
{
    int fd = memfd_create("tokenizer.json", 0);
    if (fd < 0 || !mkdtemp(dir)) abort();
    snprintf(in_path, sizeof in_path, "/proc/self/fd/%d", fd);
    snprintf(slim_path, sizeof slim_path, "%s/t.slim", dir);
    snprintf(hf_path, sizeof hf_path, "%s/t.json", dir);
    atexit(cleanup);
}

/* Same kind, ids, pieces, special flags and merges, or abort. */
static void same(const slim_tok *a, const slim_tok *b)
{
    if (slim_tok_kind(a) != slim_tok_kind(b) || slim_tok_size(a) != slim_tok_size(b) ||
        a->nmerge != b->nmerge ||
        (a->nmerge && memcmp(a->merge, b->merge, (size_t)a->nmerge * 3 * sizeof *a->merge)))
        abort();
    for (uint32_t id = 0; id < slim_tok_size(a); id++) {
        size_t la = 0, lb = 0;
        const char *pa = slim_tok_piece(a, id, &la), *pb = slim_tok_piece(b, id, &lb);
        if (!pa != !pb || la != lb || (pa && memcmp(pa, pb, la)) ||
            slim_tok_is_special(a, id) != slim_tok_is_special(b, id))
            abort();
    }
}

static void check_find(const slim_tok *t)
{
    for (uint32_t id = 0; id < slim_tok_size(t); id++) {
        size_t n, m;
        const char *p = slim_tok_piece(t, id, &n);
        uint32_t f;
        if (!p) {
            if (slim_tok_is_special(t, id)) abort();
            continue;
        }
        if (slim_tok_find(t, p, n, &f) || f > id) abort();
        const char *q = slim_tok_piece(t, f, &m);
        if (!q || m != n || memcmp(p, q, n)) abort();
    }
}

static void check_encode(slim_tok *t, const uint8_t *data, size_t size)
{
    static uint32_t ids[4096];
    static char back[4096];
    size_t n = size < sizeof ids / sizeof *ids ? size : sizeof ids / sizeof *ids, k, len;
    int rc = slim_tok_encode(t, (const char *)data, n, ids, n, &k);
    if (rc == SLIM_EINVAL) return;  /* a byte without a token */
    if (rc || k > n) abort();
    if (slim_tok_decode(t, ids, k, back, sizeof back, &len) || len != n || memcmp(back, data, n)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) setup(), ready = 1;
    int fd = atoi(in_path + strlen("/proc/self/fd/"));
    if (ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size) abort();
    slim_tok *t = (slim_tok *)1, *u = NULL;
    char err[512] = "";
    int rc = slim_tok_load_hf(in_path, &t, err, sizeof err);
    if (rc) {
        if (t || !err[0] || rc >= 0) abort();
        return 0;
    }
    if (!t || slim_tok_size(t) == 0 || slim_tok_kind(t) < SLIM_TOK_BYTEBPE || slim_tok_kind(t) > SLIM_TOK_LITERAL)
        abort();
    check_find(t);
    if (slim_tok_save(t, slim_path, err, sizeof err) || slim_tok_load(slim_path, &u, err, sizeof err)) abort();
    same(t, u);
    slim_tok_free(u);
    if (slim_tok_kind(t) == SLIM_TOK_BYTEBPE) {
        check_encode(t, data, size);
        if (slim_tok_save_hf(t, hf_path, err, sizeof err) == 0) {
            if (slim_tok_load_hf(hf_path, &u, err, sizeof err)) abort();
            same(t, u);
            slim_tok_free(u);
        }
    }
    slim_tok_free(t);
    return 0;
}
