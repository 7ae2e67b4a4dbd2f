/*
 * output.h — private to query/: the row printers of slim-query (aligned
 * table, CSV per RFC 4180, JSON Lines).  docs/QUERY.md "Output" describes
 * the formats; this is the only place that decides them.
 */
#ifndef SLIM_QUERY_OUTPUT_H
#define SLIM_QUERY_OUTPUT_H

#include <stdint.h>
#include <stdio.h>

#include <sqlite3.h>

enum { OUT_TABLE, OUT_CSV, OUT_JSON };

/* One cell: type is SQLITE_NULL / INTEGER / FLOAT / TEXT / BLOB. */
typedef struct qcell {
    int type;
    int64_t i;
    double d;
    const char *s;  /* TEXT / BLOB bytes (not necessarily NUL-terminated) */
    int n;
} qcell;

typedef struct qout qout;

/* A printer writing to f in `format`.  NULL when out of memory. */
qout *qout_new(FILE *f, int format);
void qout_free(qout *o);
/* A result set: column names (copied), then rows, then its end (the table
 * printer flushes its buffered rows then). */
int qout_begin(qout *o, int ncols, const char *const *names);
int qout_row(qout *o, const qcell *cells);
int qout_end(qout *o);
/* Print every row of a prepared statement (begin, rows, end); returns the
 * last sqlite3_step code (SQLITE_DONE on success), or SQLITE_NOMEM. */
int qout_stmt(qout *o, sqlite3_stmt *s);

#endif
