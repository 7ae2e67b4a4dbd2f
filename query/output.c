/*
 * output.c — slim-query's row printers.  Table: columns aligned over blocks
 * of up to TABLE_BLOCK rows (numbers right, text left, control characters
 * escaped, NULL shown as NULL).  CSV: RFC 4180 (CRLF, quotes doubled, a
 * header row first).  JSON Lines: one object per row, keys = column names,
 * NULL and non-finite reals = null, text escaped by jansson (invalid UTF-8
 * bytes become U+FFFD), blobs as hex text.  Reals print in the shortest form
 * that reads back exactly (up to 17 digits) in CSV/JSON, 6 digits in tables.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "output.h"

#define TABLE_BLOCK 1000

struct qout {
    FILE *f;
    int format;
    int ncols;
    char **names;      /* [ncols] as given (CSV/table) or JSON-encoded keys */
    int *right;        /* [ncols] table: right-align (numbers) */
    /* table block: cells as display strings, row-major */
    char **cells;      /* [TABLE_BLOCK * ncols] */
    int nrows;
    size_t *width;     /* [ncols] */
    int header_done;
    char *tmp;         /* scratch text */
    size_t tmpcap;
};

qout *qout_new(FILE *f, int format)
{
    qout *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->f = f;
    o->format = format;
    return o;
}

static void clear_cols(qout *o)
{
    for (int i = 0; i < o->ncols; i++) free(o->names[i]);
    if (o->cells)
        for (int i = 0; i < o->nrows * o->ncols; i++) free(o->cells[i]);
    free(o->names);
    free(o->right);
    free(o->cells);
    free(o->width);
    o->names = o->cells = NULL;
    o->right = NULL;
    o->width = NULL;
    o->ncols = o->nrows = 0;
}

void qout_free(qout *o)
{
    if (!o) return;
    clear_cols(o);
    free(o->tmp);
    free(o);
}

/* Shortest %.Ng (N <= 17) that reads back as x. */
static void fmt_real(char *buf, size_t cap, double x, int table)
{
    if (table) {
        snprintf(buf, cap, "%.6g", x);
        return;
    }
    for (int p = 15; p <= 17; p++) {
        snprintf(buf, cap, "%.*g", p, x);
        if (strtod(buf, NULL) == x) return;
    }
}

static int reserve(qout *o, size_t n)
{
    if (n <= o->tmpcap) return 0;
    char *p = realloc(o->tmp, n);
    if (!p) return -1;
    o->tmp = p;
    o->tmpcap = n;
    return 0;
}

/* Length of the valid UTF-8 sequence at s[0..n), 0 if invalid. */
static int utf8_len(const unsigned char *s, int n)
{
    int len = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2
            : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (!len || len > n) return 0;
    for (int i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if (len == 2 && s[0] < 0xc2) return 0;  /* overlong */
    return len;
}

/* Text made printable in o->tmp: invalid UTF-8 -> U+FFFD; for tables also
 * control characters -> \n, \t, \xHH. */
static const char *clean_text(qout *o, const char *s, int n, int table)
{
    if (reserve(o, (size_t)n * 4 + 1)) return NULL;
    char *d = o->tmp;
    for (int i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        int len = utf8_len((const unsigned char *)s + i, n - i);
        if (!len) {
            memcpy(d, "\xef\xbf\xbd", 3);
            d += 3;
            i++;
        } else if (table && c < 0x20) {
            d += c == '\n' ? sprintf(d, "\\n") : c == '\t' ? sprintf(d, "\\t")
                 : c == '\r' ? sprintf(d, "\\r") : sprintf(d, "\\x%02x", c);
            i++;
        } else {
            memcpy(d, s + i, (size_t)len);
            d += len;
            i += len;
        }
    }
    *d = 0;
    return o->tmp;
}

static const char *hex(qout *o, const char *s, int n)
{
    if (reserve(o, (size_t)n * 2 + 1)) return NULL;
    for (int i = 0; i < n; i++) sprintf(o->tmp + 2 * i, "%02x", (unsigned char)s[i]);
    o->tmp[2 * n] = 0;
    return o->tmp;
}

/* Display width in code points (good enough for aligned text). */
static size_t width_of(const char *s)
{
    size_t w = 0;
    for (; *s; s++) w += ((unsigned char)*s & 0xc0) != 0x80;
    return w;
}

static char *json_key(const char *name)
{
    json_t *j = json_string(name);
    if (!j) j = json_string("?");
    char *k = json_dumps(j, JSON_ENCODE_ANY);
    json_decref(j);
    return k;
}

int qout_begin(qout *o, int ncols, const char *const *names)
{
    clear_cols(o);
    o->names = calloc((size_t)ncols + 1, sizeof *o->names);
    o->right = calloc((size_t)ncols + 1, sizeof *o->right);
    o->width = calloc((size_t)ncols + 1, sizeof *o->width);
    if (!o->names || !o->right || !o->width) return -1;
    o->ncols = ncols;
    o->header_done = 0;
    for (int i = 0; i < ncols; i++) {
        const char *nm = names[i] ? names[i] : "";
        o->names[i] = o->format == OUT_JSON ? json_key(nm) : strdup(nm);
        if (!o->names[i]) return -1;
        o->width[i] = width_of(nm);
    }
    if (o->format == OUT_TABLE) {
        o->cells = calloc((size_t)TABLE_BLOCK * ncols + 1, sizeof *o->cells);
        if (!o->cells) return -1;
    }
    if (o->format == OUT_CSV) {
        for (int i = 0; i < ncols; i++) {
            qcell c = { .type = SQLITE_TEXT, .s = o->names[i], .n = (int)strlen(o->names[i]) };
            if (i) fputc(',', o->f);
            const char *t = clean_text(o, c.s, c.n, 0);
            if (!t) return -1;
            int quote = strpbrk(t, ",\"\r\n") != NULL;
            if (quote) fputc('"', o->f);
            for (; *t; t++) {
                if (*t == '"') fputc('"', o->f);
                fputc(*t, o->f);
            }
            if (quote) fputc('"', o->f);
        }
        fputs("\r\n", o->f);
    }
    return 0;
}

static void csv_cell(qout *o, const qcell *c)
{
    char num[40];
    const char *t = NULL;
    switch (c->type) {
    case SQLITE_NULL: return;
    case SQLITE_INTEGER: fprintf(o->f, "%lld", (long long)c->i); return;
    case SQLITE_FLOAT:
        fmt_real(num, sizeof num, c->d, 0);
        fputs(num, o->f);
        return;
    case SQLITE_BLOB: t = hex(o, c->s, c->n); break;
    default: t = clean_text(o, c->s, c->n, 0); break;
    }
    if (!t) return;
    int quote = strpbrk(t, ",\"\r\n") != NULL;
    if (quote) fputc('"', o->f);
    for (; *t; t++) {
        if (*t == '"') fputc('"', o->f);
        fputc(*t, o->f);
    }
    if (quote) fputc('"', o->f);
}

static void json_cell(qout *o, const qcell *c)
{
    char num[40];
    const char *t = NULL;
    switch (c->type) {
    case SQLITE_NULL: fputs("null", o->f); return;
    case SQLITE_INTEGER: fprintf(o->f, "%lld", (long long)c->i); return;
    case SQLITE_FLOAT:
        if (!isfinite(c->d)) {
            fputs("null", o->f);
            return;
        }
        fmt_real(num, sizeof num, c->d, 0);
        fputs(num, o->f);
        return;
    case SQLITE_BLOB: t = hex(o, c->s, c->n); break;
    default: t = clean_text(o, c->s, c->n, 0); break;
    }
    json_t *j = t ? json_string(t) : NULL;
    if (!j || json_dumpf(j, o->f, JSON_ENCODE_ANY)) fputs("null", o->f);
    json_decref(j);
}

static char *table_text(qout *o, const qcell *c)
{
    char num[40];
    const char *t;
    switch (c->type) {
    case SQLITE_NULL: return strdup("NULL");
    case SQLITE_INTEGER: snprintf(num, sizeof num, "%lld", (long long)c->i); return strdup(num);
    case SQLITE_FLOAT: fmt_real(num, sizeof num, c->d, 1); return strdup(num);
    case SQLITE_BLOB:
        t = hex(o, c->s, c->n);
        return t ? strdup(t) : NULL;
    default:
        t = clean_text(o, c->s, c->n, 1);
        return t ? strdup(t) : NULL;
    }
}

static void pad(FILE *f, size_t n)
{
    while (n--) fputc(' ', f);
}

static void table_flush(qout *o)
{
    if (!o->header_done) {
        for (int i = 0; i < o->ncols; i++) {
            size_t w = width_of(o->names[i]);
            if (o->right[i]) pad(o->f, o->width[i] - w);
            fputs(o->names[i], o->f);
            if (i + 1 < o->ncols) pad(o->f, (o->right[i] ? 0 : o->width[i] - w) + 2);
        }
        fputc('\n', o->f);
        for (int i = 0; i < o->ncols; i++) {
            for (size_t k = 0; k < o->width[i]; k++) fputc('-', o->f);
            if (i + 1 < o->ncols) fputs("  ", o->f);
        }
        fputc('\n', o->f);
        o->header_done = 1;
    }
    for (int r = 0; r < o->nrows; r++) {
        for (int i = 0; i < o->ncols; i++) {
            char *s = o->cells[r * o->ncols + i];
            size_t w = width_of(s ? s : ""), fill = w < o->width[i] ? o->width[i] - w : 0;
            if (o->right[i]) pad(o->f, fill);
            fputs(s ? s : "", o->f);
            if (i + 1 < o->ncols) pad(o->f, (o->right[i] ? 0 : fill) + 2);
            free(s);
            o->cells[r * o->ncols + i] = NULL;
        }
        fputc('\n', o->f);
    }
    o->nrows = 0;
}

int qout_row(qout *o, const qcell *cells)
{
    if (o->format == OUT_TABLE) {
        for (int i = 0; i < o->ncols; i++) {
            char *s = table_text(o, &cells[i]);
            if (!s) return -1;
            /* Widths settle with the first block; later blocks keep them. */
            if (!o->header_done && width_of(s) > o->width[i]) o->width[i] = width_of(s);
            if (cells[i].type == SQLITE_INTEGER || cells[i].type == SQLITE_FLOAT)
                o->right[i] = 1;
            o->cells[o->nrows * o->ncols + i] = s;
        }
        if (++o->nrows == TABLE_BLOCK) table_flush(o);
        return 0;
    }
    if (o->format == OUT_JSON) fputc('{', o->f);
    for (int i = 0; i < o->ncols; i++) {
        if (o->format == OUT_CSV) {
            if (i) fputc(',', o->f);
            csv_cell(o, &cells[i]);
        } else {
            fprintf(o->f, "%s%s: ", i ? ", " : "", o->names[i]);
            json_cell(o, &cells[i]);
        }
    }
    fputs(o->format == OUT_JSON ? "}\n" : "\r\n", o->f);
    return 0;
}

int qout_end(qout *o)
{
    if (o->format == OUT_TABLE && (o->nrows || !o->header_done)) table_flush(o);
    return 0;
}

int qout_stmt(qout *o, sqlite3_stmt *s)
{
    int n = sqlite3_column_count(s), rc;
    const char **names = calloc((size_t)n + 1, sizeof *names);
    qcell *cells = calloc((size_t)n + 1, sizeof *cells);
    if (!names || !cells) {
        free(names);
        free(cells);
        return SQLITE_NOMEM;
    }
    for (int i = 0; i < n; i++) names[i] = sqlite3_column_name(s, i);
    int begun = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (!begun && qout_begin(o, n, names)) break;
        begun = 1;
        for (int i = 0; i < n; i++) {
            qcell *c = &cells[i];
            c->type = sqlite3_column_type(s, i);
            if (c->type == SQLITE_INTEGER) c->i = sqlite3_column_int64(s, i);
            else if (c->type == SQLITE_FLOAT) c->d = sqlite3_column_double(s, i);
            else if (c->type == SQLITE_TEXT) {
                c->s = (const char *)sqlite3_column_text(s, i);
                c->n = sqlite3_column_bytes(s, i);
            } else if (c->type == SQLITE_BLOB) {
                c->s = sqlite3_column_blob(s, i);
                c->n = sqlite3_column_bytes(s, i);
            }
        }
        if (qout_row(o, cells)) {
            rc = SQLITE_NOMEM;
            break;
        }
    }
    /* A result set with no rows still shows its header (not in JSON). */
    if (rc == SQLITE_DONE && !begun && n > 0 && qout_begin(o, n, names)) rc = SQLITE_NOMEM;
    if (n > 0 && (begun || rc == SQLITE_DONE)) qout_end(o);
    free(names);
    free(cells);
    return rc;
}
