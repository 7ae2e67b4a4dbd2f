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

/* A table symbol (start, freq) prepared for the encoder: x / freq becomes a multiply by
 * a reciprocal (Granlund & Montgomery 1994, thm 4.2; the idea of ryg_rans's
 * RansEncSymbol), since a 64-bit div per symbol was the encoder's hottest
 * instruction.  Exact: the state entering the division is < 2^63 (it is
 * < xmax <= 2^51 * 4096 after renormalisation), and with l = ceil(log2 freq),
 * rcp = floor(2^(63+l) / freq) + 1 < 2^64, floor(x / freq) equals
 * (x * rcp) >> (63 + l) for every x < 2^63, i.e. the high word of the
 * product shifted by l - 1.  Then (q << scale) + (x - q * freq) + start =
 * x + bias + q * cmpl with bias = start.  freq 1 (l = 0) uses ryg's trick:
 * rcp = 2^64 - 1 gives q = x - 1 (x >= 1 always), and bias = start + cmpl
 * restores x * RANS_TOT + start. */
typedef struct rans_esym {
    uint64_t xmax;            /* renormalise when x >= xmax */
    uint64_t rcp;
    uint64_t rmax;            /* the same before its raw bits: (RANS_L >> nb) << 32 */
    uint32_t bias;
    uint16_t cmpl;            /* RANS_TOT - freq */
    uint8_t shift;            /* l - 1, or 0 for freq 1 */
    uint8_t nb;               /* raw bits that follow the symbol (decode order) */
} rans_esym;

/* The raw bits a symbol is followed by: its bucket's (n <= 31). */
static inline void rans_esym_raw(rans_esym *s, unsigned n)
{
    s->nb = (uint8_t)n;
    s->rmax = (RANS_L >> n) << 32;
}

static inline void rans_esym_init(rans_esym *s, uint32_t start, uint32_t freq)
{
    unsigned l = 0;
    while ((1u << l) < freq) l++;
    s->xmax = ((RANS_L >> RANS_SCALE) << 32) * freq;
    s->cmpl = (uint16_t)(RANS_TOT - freq);
    if (freq < 2) {
        s->rcp = ~0ull;
        s->shift = 0;
        s->bias = start + RANS_TOT - 1;
        return;
    }
    /* 2^(63+l) / freq in two 64-bit steps: (2^63 / f) << l + ((2^63 % f) << l) / f */
    uint64_t q1 = (1ull << 63) / freq, r1 = (1ull << 63) % freq;
    s->rcp = (q1 << l) + (r1 << l) / freq + 1;
    s->shift = (uint8_t)(l - 1);
    s->bias = start;
}

/*
 * Encoder steps without branches: in the encoder's loop the renormalisation
 * test was mispredicted all the time (whether a word goes out is data).
 * The word is always stored at *pp - 4 and the pointer moves only when it
 * is due, so a stream needs 4 bytes of slack below it.
 */
static inline void rans_enc_renorm(uint64_t *x, uint8_t **pp, uint64_t xmax)
{
    uint64_t xs = *x;
    uint8_t *p = *pp - 4;
    p[0] = (uint8_t)xs; p[1] = (uint8_t)(xs >> 8);
    p[2] = (uint8_t)(xs >> 16); p[3] = (uint8_t)(xs >> 24);
#if defined(__GNUC__) && defined(__x86_64__)
    /* a compare and two conditional moves: GCC compiles the select form
     * of this into a branch (mispredicted: whether a word goes out is
     * data) and the flag arithmetic below into six instructions */
    uint64_t hi = xs >> 32;
    uint8_t *q = *pp;
    __asm__("cmp %[m], %[x]\n\t"
            "cmovae %[hi], %[x]\n\t"
            "cmovae %[p], %[q]"
            : [x] "+r"(xs), [q] "+r"(q)
            : [m] "r"(xmax), [hi] "r"(hi), [p] "r"(p)
            : "cc");
    *pp = q;
    *x = xs;
#else
    unsigned out = xs >= xmax;
    *pp -= 4 * out;
    *x = xs >> (32 * out);
#endif
}

/* An n-bit raw field (0 <= n <= 31; n = 0 changes nothing: x < 2^63 =
 * xmax), i.e. a symbol of frequency 1 at scale n: x = (x << n) + bits. */
static inline void rans_enc_raw(uint64_t *x, uint8_t **pp, unsigned n, uint32_t bits)
{
    rans_enc_renorm(x, pp, (RANS_L >> n) << 32);
    *x = (*x << n) + bits;
}

/* A symbol and its raw bits (encoded backwards: the bits first), s with
 * its nb and rmax set. */
static inline void rans_enc_symraw(uint64_t *x, uint8_t **pp, const rans_esym *s, uint32_t bits);

/* Table symbol s: x = (x / freq) << 12 + x % freq + start. */
static inline void rans_enc_sym(uint64_t *x, uint8_t **pp, const rans_esym *s)
{
    rans_enc_renorm(x, pp, s->xmax);
    uint64_t xs = *x;
    __extension__ unsigned __int128 m = (unsigned __int128)xs * s->rcp;
    uint64_t q = (uint64_t)(m >> 64) >> s->shift;
    *x = xs + s->bias + q * s->cmpl;
}

static inline void rans_enc_symraw(uint64_t *x, uint8_t **pp, const rans_esym *s, uint32_t bits)
{
    rans_enc_renorm(x, pp, s->rmax);
    *x = (*x << s->nb) + bits;
    rans_enc_sym(x, pp, s);
}

#endif
