/*
 * codec_rans.h — private: rANS (Duda's asymmetric numeral systems, in the
 * interleaved "rans64" formulation popularised by F. Giesen) with 12-bit
 * frequencies and 32-bit I/O words, used by codec.c.  Debian ships no
 * standalone rANS/FSE library and zstd does not export its FSE/HUF coders,
 * hence this small one.
 *
 * A state x is a uint64 kept in [RANS_L, RANS_L << 32).  The encoder runs
 * backwards over the symbols and writes 32-bit words backwards; the decoder
 * reads them forwards, at most one word per step (so its renormalisation is
 * a single conditional move).  Raw n-bit fields (n <= 31) go through the
 * same state as a symbol of frequency 1 at scale n, so one stream holds
 * everything.
 */
#ifndef SLIM_CODEC_RANS_H
#define SLIM_CODEC_RANS_H

#include <stdint.h>

#define RANS_L (1ull << 31)
#define RANS_SCALE 12
#define RANS_TOT (1u << RANS_SCALE)

/* Encode one symbol (start, freq) of scale `scale` bits (<= 31); the
 * output pointer *pp moves down by 4 bytes when a word is emitted. */
static inline void rans_enc_put(uint64_t *x, uint8_t **pp, uint32_t start,
                                uint32_t freq, unsigned scale)
{
    uint64_t xs = *x;
    uint64_t xmax = ((RANS_L >> scale) << 32) * freq;
    if (xs >= xmax) {
        uint8_t *p = *pp - 4;
        p[0] = (uint8_t)xs; p[1] = (uint8_t)(xs >> 8);
        p[2] = (uint8_t)(xs >> 16); p[3] = (uint8_t)(xs >> 24);
        *pp = p;
        xs >>= 32;
    }
    *x = ((xs / freq) << scale) + (xs % freq) + start;
}

/* Flush a state as 8 little-endian bytes (written backwards). */
static inline void rans_enc_flush(uint64_t x, uint8_t **pp)
{
    uint8_t *p = *pp - 8;
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(x >> (8 * i));
    *pp = p;
}

#endif
