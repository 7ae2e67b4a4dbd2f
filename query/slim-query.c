/*
 * slim-query — SQL over a slim store: the metadata tables plus the virtual
 * tables `positions` and `topk` and the functions piece/detok/prob/kl
 * (docs/QUERY.md).
 *
 *   slim-query [--csv|--json|--table] [--store DIR] [--write] "SQL"
 *   slim-query [...] -f FILE            slim-query [...] < FILE
 *   slim-query [...]                    (a terminal: interactive prompt)
 *   slim-query [...] show DATASET SEQ   slim-query [...] stats DATASET
 *
 * Output: an aligned table when stdout is a terminal, CSV otherwise (or as
 * chosen).  Exit 0 ok, 1 runtime error (SQL, store, data), 2 usage error.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "slim_tool.h"
#include "output.h"
#include "query.h"
#include "report.h"

static const char *const USAGE =
    "usage: slim-query [--csv|--json|--table] [--store DIR] [--write] \"SQL\"\n"
    "       slim-query [options] -f FILE       (or SQL on standard input)\n"
    "       slim-query [options] show DATASET SEQ\n"
    "       slim-query [options] stats DATASET\n"
    "\n"
    "  --store DIR   the store (default $SLIM_STORE, else ./slim.store)\n"
    "  --csv         RFC 4180 CSV with a header row (default when stdout is not a terminal)\n"
    "  --json        JSON Lines: one object per row, NULL as null\n"
    "  --table       aligned columns (default on a terminal)\n"
    "  --write       allow statements that modify the metadata\n"
    "  -f FILE       read the SQL from FILE ('-' = standard input)\n"
    "\n"
    "Tables: the store's metadata (datasets, sequences, ...), the views seqs and\n"
    "snapshot_seqs, and the virtual tables\n"
    "  positions(dataset, seq, pos, token, k, entropy, tail_mass, top1,\n"
    "            top1_logprob, token_logprob, token_rank)\n"
    "  topk(dataset, seq, pos, rank, token, piece, logit, logprob)\n"
    "Functions: piece(d, id), detok(d, seq, t0, t1), prob(d, seq, pos, id),\n"
    "           kl(d1, seq1, pos1, d2, seq2, pos2).  See docs/QUERY.md.\n";

static slim_store *g_store;
static slimq *g_q;


static void usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("slim-query: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nsee 'slim-query --help'\n", stderr);
    exit(2);
}

typedef struct opts {
    int format;       /* OUT_*, or -1 = by terminal */
    const char *store;
    int write;
    const char *file;
    int npos;
    char **pos;       /* positional arguments */
} opts;

static void parse_args(int argc, char **argv, opts *o)
{
    o->format = -1;
    o->store = getenv("SLIM_STORE");
    if (!o->store || !*o->store) o->store = "slim.store";
    o->pos = calloc((size_t)argc, sizeof *o->pos);
    if (!o->pos) slim_die(1, "out of memory");
    int only_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || !a[1]) {
            o->pos[o->npos++] = argv[i];
        } else if (!strcmp(a, "--")) {
            only_pos = 1;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(USAGE, stdout);
            exit(fflush(stdout) || ferror(stdout) ? 1 : 0);
        } else if (!strcmp(a, "--version")) {
            printf("slim-query %s\n", SLIM_VERSION_STRING);
            exit(fflush(stdout) || ferror(stdout) ? 1 : 0);
        } else if (!strcmp(a, "--csv")) {
            o->format = OUT_CSV;
        } else if (!strcmp(a, "--json")) {
            o->format = OUT_JSON;
        } else if (!strcmp(a, "--table")) {
            o->format = OUT_TABLE;
        } else if (!strcmp(a, "--write")) {
            o->write = 1;
        } else if (!strcmp(a, "--progress")) {
            /* accepted for uniformity: queries print no progress */
        } else if (!strcmp(a, "--store") || !strcmp(a, "-f")) {
            if (i + 1 >= argc) usage_error("option '%s' needs an argument", a);
            if (a[1] == 'f') o->file = argv[++i];
            else o->store = argv[++i];
        } else if (!strncmp(a, "--store=", 8)) {
            o->store = a + 8;
        } else {
            usage_error("unknown option '%s'", a);
        }
    }
}

/* Read a whole stream into a NUL-terminated buffer. */
static char *slurp(FILE *f, const char *name)
{
    size_t n = 0, cap = 4096;
    char *buf = malloc(cap);
    if (!buf) slim_die(1, "out of memory");
    for (;;) {
        if (cap - n < 2) {
            char *p = realloc(buf, cap *= 2);
            if (!p) slim_die(1, "out of memory");
            buf = p;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) slim_die(1, "cannot read '%s': %s", name, strerror(errno));
    buf[n] = 0;
    return buf;
}

/* Run every statement of sql in order; print each result.  Returns 0, or 1
 * after printing the error (the first failing statement stops the rest). */
static int run_sql(sqlite3 *db, qout *out, const char *sql, int write)
{
    const char *tail = sql;
    while (tail && *tail) {
        sqlite3_stmt *s = NULL;
        const char *start = tail;
        if (sqlite3_prepare_v2(db, tail, -1, &s, &tail) != SQLITE_OK) {
            fprintf(stderr, "slim-query: %s\n", sqlite3_errmsg(db));
            return 1;
        }
        if (!s) continue;  /* whitespace or a comment */
        if (!write && !sqlite3_stmt_readonly(s)) {
            int n = (int)(tail - start);
            while (n > 0 && (start[0] == ' ' || start[0] == '\n' || start[0] == '\t'))
                start++, n--;
            fprintf(stderr, "slim-query: statement would modify the store, which is open "
                    "read-only (use --write): %.*s%s\n", n > 60 ? 60 : n, start,
                    n > 60 ? "..." : "");
            sqlite3_finalize(s);
            return 1;
        }
        int rc = qout_stmt(out, s);
        sqlite3_finalize(s);
        if (rc != SQLITE_DONE) {
            fprintf(stderr, "slim-query: %s\n", rc == SQLITE_NOMEM ? "out of memory"
                                                                  : sqlite3_errmsg(db));
            return 1;
        }
    }
    return 0;
}

static const char *const DOT_HELP =
    ".tables              tables, views and virtual tables\n"
    ".schema [NAME]       the CREATE statements (of NAME)\n"
    ".mode table|csv|json how rows print\n"
    ".show DATASET SEQ    as `slim-query show`\n"
    ".stats DATASET       as `slim-query stats`\n"
    ".quit, .exit         leave (so does Ctrl-D)\n";

/* A dot command of the interactive prompt; returns 1 to leave. */
static int dot_command(sqlite3 *db, qout **out, char *line, int write)
{
    char *arg[4] = { 0 }, *save = NULL;
    int n = 0;
    for (char *t = strtok_r(line, " \t", &save); t && n < 4; t = strtok_r(NULL, " \t", &save))
        arg[n++] = t;
    char *err = NULL, *sql = NULL;
    int rc = 0;
    if (!strcmp(arg[0], ".quit") || !strcmp(arg[0], ".exit")) return 1;
    if (!strcmp(arg[0], ".help")) {
        fputs(DOT_HELP, stdout);
    } else if (!strcmp(arg[0], ".tables")) {
        run_sql(db, *out, "SELECT name, type FROM (SELECT name, type FROM sqlite_schema"
                " WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' UNION ALL"
                " SELECT name, 'temp view' FROM temp.sqlite_schema WHERE type = 'view'"
                " UNION ALL SELECT 'positions', 'virtual table'"
                " UNION ALL SELECT 'topk', 'virtual table') ORDER BY 1", 0);
    } else if (!strcmp(arg[0], ".schema")) {
        sql = sqlite3_mprintf("SELECT sql FROM (SELECT name, sql FROM sqlite_schema UNION ALL"
                              " SELECT name, sql FROM temp.sqlite_schema) WHERE sql IS NOT NULL"
                              " AND name LIKE %Q", arg[1] ? arg[1] : "%");
        if (sql) run_sql(db, *out, sql, 0);
    } else if (!strcmp(arg[0], ".mode") && arg[1]) {
        int f = !strcmp(arg[1], "csv") ? OUT_CSV : !strcmp(arg[1], "json") ? OUT_JSON
              : !strcmp(arg[1], "table") ? OUT_TABLE : -1;
        qout *o = f >= 0 ? qout_new(stdout, f) : NULL;
        if (o) {
            qout_free(*out);
            *out = o;
        } else {
            fprintf(stderr, "slim-query: unknown mode '%s' (table, csv or json)\n", arg[1]);
        }
    } else if (!strcmp(arg[0], ".show") && n == 3) {
        rc = qreport_show(db, *out, arg[1], strtoll(arg[2], NULL, 10), &err);
    } else if (!strcmp(arg[0], ".stats") && n == 2) {
        rc = qreport_stats(db, *out, arg[1], &err);
    } else {
        fprintf(stderr, "slim-query: unknown or incomplete command '%s' (try .help)\n", arg[0]);
    }
    if (rc) fprintf(stderr, "slim-query: %s\n", err ? err : "failed");
    sqlite3_free(err);
    sqlite3_free(sql);
    (void)write;
    return 0;
}

static void interactive(sqlite3 *db, qout *out, int write)
{
    char hist[4096] = "";
    const char *home = getenv("HOME");
    if (home && *home) {
        snprintf(hist, sizeof hist, "%s/.slim_query_history", home);
        read_history(hist);
    }
    char *buf = NULL;
    size_t len = 0;
    fprintf(stderr, "slim-query %s on '%s'; end statements with ';', .help for commands\n",
            SLIM_VERSION_STRING, slim_store_path(g_store));
    for (;;) {
        char *line = readline(len ? "   ...> " : "slim> ");
        if (!line) break;
        if (!len && line[0] == '.') {
            add_history(line);
            int quit = dot_command(db, &out, line, write);
            free(line);
            fflush(stdout);
            if (quit) break;
            continue;
        }
        size_t l = strlen(line);
        char *nb = realloc(buf, len + l + 2);
        if (!nb) slim_die(1, "out of memory");
        buf = nb;
        memcpy(buf + len, line, l);
        len += l;
        buf[len++] = '\n';
        buf[len] = 0;
        free(line);
        if (!sqlite3_complete(buf)) continue;
        buf[len - 1] = 0;
        add_history(buf);
        run_sql(db, out, buf, write);
        fflush(stdout);
        len = 0;
    }
    free(buf);
    qout_free(out);
    if (*hist) write_history(hist);
}

static int64_t parse_seq(const char *s)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0) usage_error("bad sequence number '%s'", s);
    return v;
}

static void finish(int code)
{
    slimq_release_reader(g_q);
    slim_store_close(g_store);
    if (fflush(stdout) || ferror(stdout) || fclose(stdout))
        slim_die(1, "cannot write the output: %s", strerror(errno));
    exit(code);
}

int main(int argc, char **argv)
{
    slim_tool_init("slim-query");
    opts o = { 0 };
    parse_args(argc, argv, &o);
    int is_show = o.npos >= 1 && !strcmp(o.pos[0], "show");
    int is_stats = o.npos >= 1 && !strcmp(o.pos[0], "stats");
    if (is_show && o.npos != 3) usage_error("%s needs DATASET SEQ", "show");
    if (is_stats && o.npos != 2) usage_error("%s needs DATASET", "stats");
    if (!is_show && !is_stats && o.npos > 1)
        usage_error("give the SQL as one argument (quote it), not '%s ...'", o.pos[0]);
    if (o.file && o.npos) usage_error("both -f and SQL given ('%s')", o.pos[0]);
    if (o.format < 0) o.format = isatty(1) ? OUT_TABLE : OUT_CSV;

    if (access(o.store, F_OK) != 0)
        slim_die(1, "cannot open store '%s': %s", o.store, strerror(errno));
    int rc = slim_store_open(&g_store, o.store, o.write ? 0 : SLIM_OPEN_RDONLY);
    if (rc)
        slim_die(1, "cannot open store '%s': %s", o.store,
            g_store ? slim_errmsg(g_store) : slim_strerror(rc));
    /* Read-only unless --write; then this process is the store's single
     * writer for the duration and the statements run inside its
     * transaction: all of them commit together, or none (docs/QUERY.md). */
    slim_writer *w = NULL;
    if (o.write && (rc = slim_write_begin(g_store, &w)))
        slim_die(1, "cannot write to store '%s': %s", o.store, slim_errmsg(g_store));
    sqlite3 *db = w ? slim_writer_sqlite(w) : slim_store_sqlite(g_store);
    char *err = NULL;
    if (slimq_register(db, g_store, 0, &g_q, &err) != SQLITE_OK)
        slim_die(1, "cannot set up the virtual tables: %s", err ? err : "?");
    qout *out = qout_new(stdout, o.format);
    if (!out) slim_die(1, "out of memory");

    int code = 0;
    if (is_show || is_stats) {
        rc = is_show ? qreport_show(db, out, o.pos[1], parse_seq(o.pos[2]), &err)
                     : qreport_stats(db, out, o.pos[1], &err);
        if (rc) {
            fprintf(stderr, "slim-query: %s\n", err ? err : "failed");
            code = 1;
        }
    } else if (o.npos) {
        code = run_sql(db, out, o.pos[0], o.write);
    } else if (o.file || !isatty(0)) {
        FILE *f = !o.file || !strcmp(o.file, "-") ? stdin : fopen(o.file, "r");
        if (!f) slim_die(1, "cannot open '%s': %s", o.file, strerror(errno));
        char *sql = slurp(f, o.file ? o.file : "standard input");
        if (f != stdin) fclose(f);
        code = run_sql(db, out, sql, o.write);
        free(sql);
    } else {
        interactive(db, out, o.write);  /* frees out (.mode may replace it) */
        out = NULL;
    }
    sqlite3_free(err);
    qout_free(out);
    free(o.pos);
    slimq_release_reader(g_q);
    if (w && code == 0 && slim_write_commit(w)) {
        fprintf(stderr, "slim-query: cannot commit: %s\n", slim_errmsg(g_store));
        code = 1;
    } else if (w && code != 0) {
        fprintf(stderr, "slim-query: nothing was written (an error stopped the statements)\n");
        slim_write_abort(w);
    }
    finish(code);
}
