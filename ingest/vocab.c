/*
 * vocab.c — record a tokenizer's vocabulary for a dataset's teacher, so that
 * queries can show token text.  One function serves every ingest path (files
 * with --vocab, the built-in teacher, token-only text).
 */
#include "vocab.h"

#include <stdlib.h>
#include <string.h>

int slim_ingest_write_vocab(slim_writer *w, int64_t dataset, const slim_tok *tok,
                            const char *tokenizer_hash)
{
    uint32_t n = slim_tok_size(tok), m = 0;
    uint32_t *ids = malloc((n + 1) * sizeof *ids);
    const char **pieces = malloc((n + 1) * sizeof *pieces);
    char **own = calloc(n + 1, sizeof *own);
    int rc = ids && pieces && own ? 0 : SLIM_ENOMEM;
    for (uint32_t i = 0; i < n && !rc; i++) {
        size_t len;
        const char *p = slim_tok_piece(tok, i, &len);
        /* the table holds text: ids without a piece, or whose bytes hold a
         * NUL, are left out (queries then show NULL for them) */
        if (!p || memchr(p, 0, len)) continue;
        if (!(own[m] = strndup(p, len))) { rc = SLIM_ENOMEM; break; }
        ids[m] = i;
        pieces[m] = own[m];
        m++;
    }
    if (!rc) rc = slim_write_vocab(w, dataset, m, ids, pieces, tokenizer_hash);
    for (uint32_t i = 0; i < m; i++) free(own[i]);
    free(ids);
    free(pieces);
    free(own);
    return rc;
}
