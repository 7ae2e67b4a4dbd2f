/*
 * fuzz_npy.c — libFuzzer: the .npy header parser on arbitrary bytes; an
 * accepted array must lie exactly inside the buffer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../ingest/ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    slim_tensor t;
    char err[256];
    if (slim_npy_parse(buf, size, "x", &t, err, sizeof err) == 0) {
        uint64_t n = slim_dtype_size(t.dtype);
        for (int d = 0; d < t.ndim; d++) n *= t.shape[d];
        if (n != t.nbytes || t.data + t.nbytes != buf + size) abort();
        if (t.nbytes) { volatile uint8_t s = t.data[t.nbytes - 1]; (void)s; }
    }
    free(buf);
    return 0;
}
