/*
 * fuzz_safetensors.c — libFuzzer: the safetensors header parser must reject
 * or accept any bytes without reading outside them; every accepted tensor
 * lies inside the buffer, and one slim reads (input_ids, logits, ...) has a
 * dtype it knows and nbytes = prod(shape) * dtype size.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../ingest/ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a private copy: ASan then flags any read past the end */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    slim_tensors ts;
    memset(&ts, 0, sizeof ts);
    char err[256];
    if (slim_safetensors_parse(buf, size, &ts, err, sizeof err) == 0) {
        for (int i = 0; i < ts.n; i++) {
            const slim_tensor *t = &ts.t[i];
            uint64_t n = slim_dtype_size(t->dtype);
            for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
            /* a tensor slim reads has exactly its shape's bytes; any other only lies inside */
            int reads = slim_tensor_read_name(t->name, strlen(t->name));
            if (reads && (t->dtype == SLIM_DT_OTHER || n != t->nbytes)) abort();
            if (t->data < buf || t->data + t->nbytes > buf + size) abort();
            volatile uint8_t sink = 0;
            for (uint64_t b = 0; b < t->nbytes; b += 4096) sink ^= t->data[b];
            if (t->nbytes) sink ^= t->data[t->nbytes - 1];
            (void)sink;
        }
    }
    free(buf);
    return 0;
}
