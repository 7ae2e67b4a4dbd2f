/*
 * hash.c — content hashes (docs/FORMAT.md, "Content hash") and the tokens
 * blob kept in sequences.tokens (docs/FORMAT.md, "Tokens blob").
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <zstd.h>

#include "store_internal.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "slim's on-disk formats are little-endian; port the helpers in hash.c"
#endif

/* Below this many tokens the raw form is kept: zstd's frame overhead eats
 * the gain, and short sequences are read most often. */
#define TOKENS_ZSTD_MIN 64
#define TOKENS_RAW 0
#define TOKENS_ZSTD 1

int slim__tokens_encode(const uint32_t *tokens, uint32_t T, uint8_t **out, size_t *len)
{
    size_t raw = (size_t)T * 4;
    size_t cap = 5 + (T >= TOKENS_ZSTD_MIN ? ZSTD_compressBound(raw) : raw);
    uint8_t *b = malloc(cap);
    if (!b) return SLIM_ENOMEM;
    memcpy(b + 1, &T, 4);
    if (T >= TOKENS_ZSTD_MIN) {
        size_t z = ZSTD_compress(b + 5, cap - 5, tokens, raw, 3);
        if (!ZSTD_isError(z) && z < raw) {
            b[0] = TOKENS_ZSTD;
            *out = b;
            *len = 5 + z;
            return 0;
        }
    }
    b[0] = TOKENS_RAW;
    if (raw) memcpy(b + 5, tokens, raw);
    *out = b;
    *len = 5 + raw;
    return 0;
}

int slim__tokens_decode(const void *blob, size_t len, uint32_t *buf, uint32_t cap,
                        uint32_t *T)
{
    const uint8_t *b = blob;
    uint32_t n;
    if (!b || len < 5) return SLIM_ECORRUPT;
    memcpy(&n, b + 1, 4);
    *T = n;
    if (n > cap) return SLIM_ERANGE;
    if (b[0] == TOKENS_RAW) {
        if (len != 5 + (size_t)n * 4) return SLIM_ECORRUPT;
        if (n) memcpy(buf, b + 5, (size_t)n * 4);
        return 0;
    }
    if (b[0] != TOKENS_ZSTD) return SLIM_ECORRUPT;
    size_t got = ZSTD_decompress(buf, (size_t)n * 4, b + 5, len - 5);
    if (ZSTD_isError(got) || got != (size_t)n * 4) return SLIM_ECORRUPT;
    return 0;
}

int64_t slim__tokens_hash(const uint32_t *tokens, uint32_t n)
{
    return (int64_t)XXH3_64bits(tokens, (size_t)n * 4);
}

static const char HASH_MAGIC[8] = {'S', 'L', 'I', 'M', 'C', 'H', '1', 0};

int slim__hash_begin(slim_hasher *h, const uint32_t *tokens, uint32_t T, uint32_t npos)
{
    h->x = XXH3_createState();
    if (!h->x) return SLIM_ENOMEM;
    XXH3_128bits_reset(h->x);
    uint32_t hd[2] = {T, npos};
    XXH3_128bits_update(h->x, HASH_MAGIC, 8);
    XXH3_128bits_update(h->x, hd, 8);
    if (T) XXH3_128bits_update(h->x, tokens, (size_t)T * 4);
    return 0;
}

void slim__hash_pos(slim_hasher *h, const slim_dist *d)
{
    uint32_t hd[3] = {d->k, d->n_samples, 0x7fc00000u};
    if (!isnan(d->lse)) memcpy(&hd[2], &d->lse, 4);
    XXH3_128bits_update(h->x, hd, 12);
    uint32_t pair[2 * 512];
    uint32_t j = 0;
    while (j < d->k) {  /* interleave id/value in batches of 4 KB: fewer, longer updates */
        uint32_t m = d->k - j < 512 ? d->k - j : 512, i = 0;
#ifdef __SSE2__
        /* four pairs a step (GCC left the loop scalar: 1,600 entries a
         * dense position) */
        for (; i + 4 <= m; i += 4) {
            __m128i id = _mm_loadu_si128((const __m128i *)(const void *)(d->ids + j + i));
            __m128i v = _mm_castps_si128(_mm_loadu_ps(d->vals + j + i));
            _mm_storeu_si128((__m128i *)(void *)(pair + 2 * i), _mm_unpacklo_epi32(id, v));
            _mm_storeu_si128((__m128i *)(void *)(pair + 2 * i + 4), _mm_unpackhi_epi32(id, v));
        }
#endif
        for (; i < m; i++) {
            pair[2 * i] = d->ids[j + i];
            memcpy(&pair[2 * i + 1], &d->vals[j + i], 4);
        }
        XXH3_128bits_update(h->x, pair, (size_t)m * 8);
        j += m;
    }
}

void slim__hash_end(slim_hasher *h, uint8_t out[16])
{
    XXH128_hash_t r = XXH3_128bits_digest(h->x);
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, r);
    memcpy(out, c.digest, 16);
    XXH3_freeState(h->x);
    h->x = NULL;
}

static int cmp_pair(const void *a, const void *b)
{
    const uint32_t *x = a, *y = b;
    return (x[0] > y[0]) - (x[0] < y[0]);
}

void slim_content_hash(const uint32_t *tokens, uint32_t T, const slim_dist *dists,
                       uint32_t npos, uint8_t out[16])
{
    slim_hasher h;
    memset(out, 0, 16);
    if (slim__hash_begin(&h, tokens, T, npos)) return;
    uint32_t *pairs = NULL;
    size_t pcap = 0;
    for (uint32_t i = 0; i < npos; i++) {
        const slim_dist *d = &dists[i];
        int sorted = 1;
        for (uint32_t j = 1; j < d->k && sorted; j++) sorted = d->ids[j - 1] < d->ids[j];
        if (sorted) {
            slim__hash_pos(&h, d);
            continue;
        }
        /* not in id order: sort (id, value) pairs on the side */
        if (slim__grow((void **)&pairs, &pcap, 2 * (size_t)d->k, 4)) break;
        for (uint32_t j = 0; j < d->k; j++) {
            pairs[2 * j] = d->ids[j];
            memcpy(&pairs[2 * j + 1], &d->vals[j], 4);
        }
        qsort(pairs, d->k, 8, cmp_pair);
        uint32_t hd[3] = {d->k, d->n_samples, 0x7fc00000u};
        if (!isnan(d->lse)) memcpy(&hd[2], &d->lse, 4);
        XXH3_128bits_update(h.x, hd, 12);
        XXH3_128bits_update(h.x, pairs, (size_t)d->k * 8);
    }
    free(pairs);
    slim__hash_end(&h, out);
}
