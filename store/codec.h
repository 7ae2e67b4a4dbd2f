/*
 * codec.h — private: the record codec (one LMDB value = one "chunk" holding
 * several consecutive positions of one sequence).  The byte layout is
 * specified in docs/FORMAT.md, "Record chunks".
 *
 * A chunk is self-describing (kind, precision, number of positions, first
 * position) and carries its own checksum, so it can be decoded and verified
 * with no metadata.  The codec owns no global state; a slim_codec holds
 * reusable scratch (one per thread).
 */
#ifndef SLIM_CODEC_H
#define SLIM_CODEC_H

#include "slim.h"

typedef struct slim_codec slim_codec;

int slim_codec_new(slim_codec **out);
void slim_codec_free(slim_codec *c);

/*
 * Whether the encoder may use its AVX-512 tokeniser (codec_simd.c) on CPUs
 * that have it; on by default unless $SLIM_CODEC_SCALAR is set.  Both paths
 * write the same bytes (tests compare them); this is for those tests.
 */
void slim_codec_set_simd(slim_codec *c, int on);

/* The same for slim_dist_pstat's AVX-512 sums (store/pstat.c), process-wide;
 * call before other threads use it. */
void slim__pstat_simd(int on);

/* For tests: slim_dist_pstat's two sums (sum p, -sum p log p) of v[k]
 * against lse, by the AVX-512 code when simd is set and the CPU has it. */
void slim__pstat_sums(const float *v, uint32_t k, double lse, int simd, double *sum, double *h);

typedef struct slim_chunk_params {
    int kind;                 /* SLIM_KIND_LOGITS / SLIM_KIND_SAMPLED */
    slim_precision prec;      /* ignored for SAMPLED (counts are exact) */
    uint32_t vocab_size;      /* V: ids < V */
    uint32_t first_pos;       /* position number of dists[0] in its sequence */
    size_t target_bytes;      /* stop adding positions once a chunk reaches
                                 about this size (0 = codec default) */
} slim_chunk_params;

/*
 * Upper bound of the encoded size of n positions holding `entries` entries
 * in total, for sizing dst.
 */
size_t slim_chunk_bound(uint32_t n, size_t entries);

/*
 * Encode dists[0..n) (already validated by the caller) into dst[cap].  The
 * codec takes as many leading positions as fit params->target_bytes (at least
 * one) and reports how many in *consumed; *len gets the chunk size.
 * Returns 0, SLIM_ERANGE if cap is too small (*len then gets the size the
 * chunk needs), SLIM_EINVAL on data that
 * violates the contract of slim_dist (the message in c's last error).
 */
int slim_chunk_encode(slim_codec *c, const slim_chunk_params *params,
                      const slim_dist *dists, uint32_t n, uint8_t *dst,
                      size_t cap, size_t *len, uint32_t *consumed);

/*
 * The positions of the chunk the last slim_chunk_encode on c produced, as a
 * decoder reconstructs them: bitwise what slim_chunk_decode with
 * SLIM_READ_ID_ORDER returns (entries in id order, quantised values as
 * decoded, lse and n_samples as stored) — the encoder computes them anyway,
 * so the writer hashes these instead of decoding what it just encoded.
 * Returns out[*npos] (*npos = the encode's *consumed), owned by c and valid
 * until the next slim_chunk_encode on c (decoding with c leaves it alone);
 * NULL and *npos = 0 after a failed encode.
 */
const slim_dist *slim_chunk_encoded(const slim_codec *c, uint32_t *npos);

/* Header facts of an encoded chunk, without decoding it (cheap). */
typedef struct slim_chunk_header {
    int kind;
    slim_precision prec;
    uint32_t first_pos;
    uint32_t npos;
    uint64_t entries;        /* total entries in the chunk */
    int version;             /* chunk format version (1, 2) */
} slim_chunk_header;

/* Parse and sanity-check the header; verifies the checksum when
 * `check` is nonzero.  SLIM_ECORRUPT on any inconsistency. */
int slim_chunk_header_read(const uint8_t *src, size_t len, int check,
                           slim_chunk_header *out);

/*
 * Decode positions [first_pos + i, first_pos + i + n) of the chunk into
 * out[0..n), carving ids/vals from the caller's ids[cap] / vals[cap] in order
 * (like slim_read_positions).  Verifies the checksum when `check` is nonzero
 * (the store verifies on every read).  Values come back as the stored
 * representation reconstructed to float: logits (or log-probs, lse = 0) for
 * LOGITS, counts for SAMPLED.  flags: SLIM_READ_ID_ORDER.  Returns 0,
 * SLIM_ERANGE (*need set), SLIM_ECORRUPT, or SLIM_EINVAL when [i, i+n) is
 * not inside the chunk.  *need (when not NULL) gets the entries of the range
 * on success too.
 */
int slim_chunk_decode(slim_codec *c, const uint8_t *src, size_t len,
                      uint32_t i, uint32_t n, slim_dist *out, uint32_t *ids,
                      float *vals, size_t cap, size_t *need, unsigned flags,
                      int check);

/*
 * slim_dist_pstat of positions [first_pos + i, first_pos + i + n) of the
 * chunk into out[0..n), as computed from the values slim_chunk_decode gives
 * in id order.  A version 2 chunk stores them (the statistics block,
 * docs/FORMAT.md): read without touching the rANS frames.  A version 1
 * chunk is decoded (c's scratch) and computed.  Verifies the checksum when
 * `check` is nonzero.  Returns 0, SLIM_ECORRUPT, or SLIM_EINVAL when
 * [i, i+n) is not inside the chunk.
 */
int slim_chunk_pstats(slim_codec *c, const uint8_t *src, size_t len,
                      uint32_t i, uint32_t n, slim_pstat *out, int check);

/*
 * Where the bytes of the last chunk slim_chunk_encode produced went, for
 * benchmarks: the order-0 empirical entropy of its coded symbols under the
 * chunk's own contexts (what an ideal coder with the same model would need),
 * the raw bits beside them, and the actual section sizes.
 */
typedef struct slim_codec_stats {
    double symbol_bits;      /* sum over tables of n * H(empirical) */
    uint64_t raw_bits;       /* uncoded low bits of bucketed integers, lse */
    size_t header_bytes;     /* fixed header + k table + frame lengths */
    size_t table_bytes;      /* frequency tables */
    size_t frame_bytes;      /* rANS frames (incl. 16 bytes of states + split each) */
    uint32_t nframes;
    uint32_t simd_positions; /* positions tokenised by codec_simd.c */
} slim_codec_stats;
void slim_codec_last_stats(const slim_codec *c, slim_codec_stats *out);

/* The last error message of this codec ("position 3: id 70000 >= V 32000"). */
const char *slim_codec_errmsg(const slim_codec *c);

#endif /* SLIM_CODEC_H */
