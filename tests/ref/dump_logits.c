/*
 * dump_logits.c — print the logits slim computes for a token sequence, via
 * the mmap'd checkpoint and the KV-cache inference path, as JSON
 * {"tokens": [...], "logits": [[V floats] per position]}, for
 * tests/ref/ckpt_ref.py to compare against PyTorch.  Not part of make test:
 *
 *   make build/libslimtrain.a build/libslim.a
 *   cc -std=c11 -D_GNU_SOURCE -O2 -Istore -I/usr/include/x86_64-linux-gnu/openblas-openmp \
 *      -o /tmp/dump_logits tests/ref/dump_logits.c build/libslimtrain.a build/libslim.a \
 *      -L/usr/lib/x86_64-linux-gnu/openblas-openmp -lopenblas -lcrypto -fopenmp -lm
 *   /tmp/dump_logits student.ckpt 5 17 3 9 > /tmp/l.json
 *   /usr/bin/python3 tests/ref/ckpt_ref.py student.ckpt /tmp/l.json
 */
#include "../../train/ckpt.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    char err[512];
    slim_ckpt *k;
    if (argc < 3) { fprintf(stderr, "usage: dump_logits CKPT TOKEN...\n"); return 2; }
    if (slim_ckpt_open(&k, argv[1], err, sizeof err)) { fprintf(stderr, "dump_logits: %s\n", err); return 1; }
    slim_infer *s;
    if (slim_infer_new(&s, &k->cfg, k->params)) return 1;
    printf("{\"tokens\": [");
    for (int i = 2; i < argc; i++) printf("%s%s", i > 2 ? ", " : "", argv[i]);
    printf("], \"logits\": [");
    for (int i = 2; i < argc && i - 2 < k->cfg.ctx; i++) {
        const float *l = slim_infer_step(s, atoi(argv[i]), i - 2);
        if (!l) { fprintf(stderr, "dump_logits: bad token '%s'\n", argv[i]); return 1; }
        printf("%s[", i > 2 ? ", " : "");
        for (int v = 0; v < k->cfg.vocab; v++) printf("%s%.9g", v ? ", " : "", l[v]);
        printf("]");
    }
    printf("]}\n");
    slim_infer_free(s);
    slim_ckpt_close(k);
    return 0;
}
