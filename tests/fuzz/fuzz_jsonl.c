/*
 * fuzz_jsonl.c — libFuzzer: one JSONL line in any of the accepted shapes.
 * Accepted output must satisfy the slim_dist contract the store relies on:
 * ids < V and distinct per position, values finite and <= 0, npos <= T;
 * a refused line must leave the batch as it was.  Differential: whatever
 * the fast simple-form scanner accepts, the jansson parser must accept
 * with the same sequences.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../ingest/ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static slim_batch b;
    slim_batch_reset(&b);
    slim_jsonl_opts o = { .vocab_size = 64, .max_k = size % 5 };
    char err[300];
    int rc = slim_jsonl_parse_line((const char *)data, size, &o, &b, err, sizeof err);
    if (rc) {
        if (b.nseq || b.ndist || b.nent || b.ntok) abort();
        return 0;
    }
    slim_batch_fix_pointers(&b);
    static slim_batch f;
    slim_batch_reset(&f);
    if (slim_jsonl_fast_simple((const char *)data, size, &o, &f)) {
        static slim_batch t;
        slim_batch_reset(&t);
        if (slim_jsonl_parse_tree((const char *)data, size, &o, &t, err, sizeof err)) abort();
        if (t.nseq != f.nseq || t.ntok != f.ntok || t.ndist != f.ndist || t.nent != f.nent
            || memcmp(t.tokens, f.tokens, t.ntok * sizeof *t.tokens)
            || memcmp(t.ids, f.ids, t.nent * sizeof *t.ids)
            || memcmp(t.vals, f.vals, t.nent * sizeof *t.vals))
            abort();
        for (size_t q = 0; q < t.nseq; q++)
            if (strcmp(t.seqs[q].ext_id, f.seqs[q].ext_id) || t.seqs[q].npos != f.seqs[q].npos) abort();
    } else if (f.nseq || f.ndist || f.nent || f.ntok) abort();
    for (size_t q = 0; q < b.nseq; q++) {
        const slim_iseq *s = &b.seqs[q];
        if (s->npos > s->T) abort();
        for (uint32_t t = 0; t < s->npos; t++) {
            const slim_dist *d = &b.dists[s->dist_off + t];
            for (uint32_t j = 0; j < d->k; j++) {
                if (d->ids[j] >= 64 || !(d->vals[j] <= 0) || isnan(d->vals[j])) abort();
                for (uint32_t i = 0; i < j; i++) if (d->ids[i] == d->ids[j]) abort();
            }
        }
        for (uint32_t t = 0; t < s->T; t++) if (b.tokens[s->tok_off + t] >= 64) abort();
    }
    return 0;
}
