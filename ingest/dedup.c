/*
 * dedup.c — duplicate sequences (same teacher, same tokens) found by a
 * 128-bit hash of the tokens, confirmed token by token, and removed from the
 * live view.  The store decides what space is really freed: records that a
 * snapshot or a prefix-sharing sequence still references stay.
 */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include "ingest.h"

typedef struct slot { XXH128_hash_t h; int64_t dataset, seq; int used; } slot;

typedef struct dctx {
    slim_store *st;
    slim_reader *r;
    slot *tab; size_t tabcap, tabn;
    uint32_t *tok, *tok2; uint32_t tokcap, tok2cap;
    slim_dedup_result *out;
    char *err; size_t cap;
} dctx;

/* Tokens of (ds, seq) into buf (grown as needed). */
static int read_tokens(dctx *c, int64_t ds, int64_t seq, uint32_t **buf, uint32_t *cap, uint32_t *n)
{
    int rc = slim_read_tokens(c->r, ds, seq, *buf, *cap, n);
    if (rc != SLIM_ERANGE) return rc;
    uint32_t *a = realloc(*buf, (size_t)*n * sizeof *a);
    if (!a) return SLIM_ENOMEM;
    *buf = a;
    *cap = *n;
    return slim_read_tokens(c->r, ds, seq, *buf, *cap, n);
}

static int grow_tab(dctx *c)
{
    size_t ncap = c->tabcap ? c->tabcap * 2 : 1024;
    slot *t = calloc(ncap, sizeof *t);
    if (!t) return SLIM_ENOMEM;
    for (size_t i = 0; i < c->tabcap; i++) {
        if (!c->tab[i].used) continue;
        size_t j = (size_t)c->tab[i].h.low64 & (ncap - 1);
        while (t[j].used) j = (j + 1) & (ncap - 1);
        t[j] = c->tab[i];
    }
    free(c->tab);
    c->tab = t;
    c->tabcap = ncap;
    return 0;
}

static int add_dup(dctx *c, int64_t ds, int64_t seq, const slot *first)
{
    slim_dedup_result *o = c->out;
    slim_dup *d = realloc(o->dups, (o->ndups + 1) * sizeof *d);
    if (!d) return SLIM_ENOMEM;
    o->dups = d;
    d[o->ndups++] = (slim_dup){ ds, seq, first->dataset, first->seq, 0 };
    return 0;
}

/* One live sequence: remember it, or report it as a copy (only sequences of
 * the target dataset are reported). */
static int visit(dctx *c, int64_t ds, int64_t seq, int report)
{
    uint32_t n;
    int rc = read_tokens(c, ds, seq, &c->tok, &c->tokcap, &n);
    if (rc) return rc;
    XXH128_hash_t h = XXH3_128bits(c->tok, (size_t)n * sizeof *c->tok);
    if (c->tabn * 2 >= c->tabcap && (rc = grow_tab(c))) return rc;
    size_t j = (size_t)h.low64 & (c->tabcap - 1);
    for (; c->tab[j].used; j = (j + 1) & (c->tabcap - 1)) {
        if (!XXH128_isEqual(c->tab[j].h, h)) continue;
        /* confirm: a hash match is not proof */
        uint32_t m;
        if ((rc = read_tokens(c, c->tab[j].dataset, c->tab[j].seq, &c->tok2, &c->tok2cap, &m)))
            return rc;
        if (m == n && !memcmp(c->tok, c->tok2, (size_t)n * sizeof *c->tok))
            return report ? add_dup(c, ds, seq, &c->tab[j]) : 0;
    }
    c->tab[j] = (slot){ h, ds, seq, 1 };
    c->tabn++;
    return 0;
}

static int scan(dctx *c, const slim_dataset_info *di, int report)
{
    for (int64_t s = 0; s < di->next_seq; s++) {
        slim_seq_info si;
        int rc = slim_read_seq(c->r, di->id, s, &si);
        if (rc == SLIM_ENOTFOUND || (!rc && si.deleted)) continue;
        if (!rc) rc = visit(c, di->id, s, report);
        if (rc) {
            snprintf(c->err, c->cap, "dataset '%s' sequence %lld: %s", di->name, (long long)s,
                     rc == SLIM_ENOMEM ? "out of memory" : slim_errmsg(c->st));
            return rc;
        }
        if (report) c->out->scanned++;
    }
    return 0;
}

int slim_dedup(slim_store *st, const char *dataset, int across, int dry_run,
               slim_dedup_result *out, char *err, size_t cap)
{
    memset(out, 0, sizeof *out);
    dctx c = { .st = st, .out = out, .err = err, .cap = cap };
    slim_dataset_info di;
    int rc = slim_dataset_get(st, dataset, &di);
    if (rc) {
        snprintf(err, cap, "no dataset '%s'", dataset);
        return rc;
    }
    int64_t target = di.id, teacher = di.teacher_id;
    if ((rc = slim_read_begin(st, &c.r))) {
        snprintf(err, cap, "cannot read the store: %s", slim_errmsg(st));
        return rc;
    }
    /* datasets in id order; the target's earlier-id peers first, so "the
     * first copy" is the lowest (dataset id, seq) */
    int nds = 1;
    if (across && (rc = slim_dataset_count(st, &nds))) goto done;
    for (int i = 0; i < nds && !rc; i++) {
        slim_dataset_info d;
        if (across) {
            if ((rc = slim_dataset_at(st, i, &d))) break;
            if (d.teacher_id != teacher) continue;
        } else if ((rc = slim_dataset_get(st, dataset, &d))) break;
        rc = scan(&c, &d, d.id == target);
        if (d.id == target && !across) break;
    }
    if (rc) goto done;
    out->duplicates = (int64_t)out->ndups;
    slim_read_end(c.r);
    c.r = NULL;
    if (!out->ndups) goto done;
    slim_writer *w;
    if ((rc = slim_write_begin(st, &w))) {
        snprintf(err, cap, "cannot start writing: %s", slim_errmsg(st));
        goto done;
    }
    for (size_t i = 0; i < out->ndups && !rc; i++) {
        slim_dup *d = &out->dups[i];
        rc = slim_write_delete_seq(w, d->dataset, d->seq, &d->bytes_freed);
        if (rc) snprintf(err, cap, "cannot remove sequence %lld: %s", (long long)d->seq, slim_errmsg(st));
        out->bytes_freed += d->bytes_freed;
    }
    if (rc || dry_run) {  /* a dry run keeps the count of what would be freed */
        slim_write_abort(w);
        if (rc) out->bytes_freed = 0;
        goto done;
    }
    if ((rc = slim_write_commit(w))) {
        snprintf(err, cap, "commit failed: %s", slim_errmsg(st));
        out->bytes_freed = 0;
        goto done;
    }
    out->removed = (int64_t)out->ndups;
done:
    if (rc && !err[0]) snprintf(err, cap, "%s", slim_errmsg(st));
    slim_read_end(c.r);
    free(c.tab); free(c.tok); free(c.tok2);
    return rc;
}
