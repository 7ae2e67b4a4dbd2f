/*
 * slim-store — create, inspect, verify and snapshot a slim store.
 *
 *   slim-store [--store DIR] init
 *   slim-store [--store DIR] info [--json]
 *   slim-store [--store DIR] verify
 *   slim-store [--store DIR] snapshot create NAME --dataset D [--dataset D2 ...] [--split valid=F]
 *   slim-store [--store DIR] snapshot list [--json|--csv]
 *   slim-store [--store DIR] snapshot show NAME [--json|--csv]
 *
 * A thin tool over libslim: parse arguments, call the library, print.
 */
#include <errno.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "slim_tool.h"
#include "slim.h"

static const char USAGE[] =
    "usage: slim-store [--store DIR] <command> [options]\n"
    "\n"
    "commands:\n"
    "  init                         create the store (no-op if it exists)\n"
    "  info [--json]                datasets, sizes and bytes per position\n"
    "  verify                       check everything; exit 1 listing each problem\n"
    "  snapshot create NAME --dataset D [--dataset D2 ...] [--split valid=F]\n"
    "                               freeze the live sequences of the datasets\n"
    "  snapshot list [--json|--csv] the snapshots\n"
    "  snapshot show NAME [--json|--csv]\n"
    "                               members of a snapshot, in order\n"
    "\n"
    "options:\n"
    "  --store DIR   the store (default $SLIM_STORE, else ./slim.store)\n"
    "  --json        JSON (info: one object; lists: JSON Lines)\n"
    "  --csv         CSV with a header row\n"
    "  --progress    accepted for uniformity (slim-store has no long phases)\n"
    "  --help, --version\n";

enum { OUT_TEXT, OUT_JSON, OUT_CSV };

typedef struct opts {
    const char *store;
    int out;
    const char *args[64];
    int nargs;
    const char *datasets[256];
    int ndatasets;
    double valid;
} opts;


static void usage_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void usage_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("slim-store: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n", stderr);
    fputs(USAGE, stderr);
    exit(2);
}

static int finish(void)
{
    if (fflush(stdout) != 0 || ferror(stdout) || fclose(stdout) != 0)
        slim_die(1, "cannot write to standard output: %s", strerror(errno));
    return 0;
}

static void parse_split(opts *o, const char *s)
{
    char *end;
    if (strncmp(s, "valid=", 6) != 0) usage_die("--split wants valid=FRACTION, not '%s'", s);
    errno = 0;
    o->valid = strtod(s + 6, &end);
    if (errno || end == s + 6 || *end || !(o->valid >= 0 && o->valid < 1))
        usage_die("--split: '%s' is not a fraction in [0,1)", s);
}

static void parse(opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    o->store = getenv("SLIM_STORE");
    if (!o->store || !*o->store) o->store = "slim.store";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(USAGE, stdout);
            exit(finish());
        } else if (!strcmp(a, "--version")) {
            printf("slim-store %s (format version %d)\n", SLIM_VERSION_STRING, slim_format_version());
            exit(finish());
        } else if (!strcmp(a, "--store") || !strcmp(a, "--dataset") || !strcmp(a, "--split")) {
            if (!next) usage_die("%s needs a value", a);
            if (!strcmp(a, "--store")) o->store = next;
            else if (!strcmp(a, "--split")) parse_split(o, next);
            else if (o->ndatasets < 256) o->datasets[o->ndatasets++] = next;
            i++;
        } else if (!strncmp(a, "--store=", 8)) {
            o->store = a + 8;
        } else if (!strcmp(a, "--json")) {
            o->out = OUT_JSON;
        } else if (!strcmp(a, "--csv")) {
            o->out = OUT_CSV;
        } else if (!strcmp(a, "--progress")) {
            continue;
        } else if (a[0] == '-' && a[1]) {
            usage_die("unknown option '%s'", a);
        } else if (o->nargs < 64) {
            o->args[o->nargs++] = a;
        }
    }
}

static slim_store *open_or_die(const opts *o, unsigned flags)
{
    slim_store *st;
    int rc = slim_store_open(&st, o->store, flags);
    if (rc) {
        fprintf(stderr, "slim-store: %s\n", slim_errmsg(st));
        slim_store_close(st);
        exit(1);
    }
    return st;
}

/* ------------------------------------------------------------ rows */

/* Prints one row of n columns (NULL = SQL NULL) as text, JSON or CSV. */
static void print_row(int out, int n, const char *const *names, const char *const *vals, const int *numeric,
                      int header)
{
    if (out == OUT_JSON) {
        if (header) return;
        json_t *obj = json_object();
        for (int i = 0; i < n; i++) {
            json_t *v = !vals[i] ? json_null()
                        : numeric[i] ? json_integer(strtoll(vals[i], NULL, 10)) : json_string(vals[i]);
            json_object_set_new(obj, names[i], v ? v : json_null());
        }
        char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (s) puts(s);
        free(s);
        json_decref(obj);
        return;
    }
    for (int i = 0; i < n; i++) {
        const char *v = header ? names[i] : vals[i];
        if (i) putchar(out == OUT_CSV ? ',' : '\t');
        if (!v) continue;
        if (out == OUT_CSV && strpbrk(v, ",\"\r\n")) {
            putchar('"');
            for (const char *p = v; *p; p++) {
                if (*p == '"') putchar('"');
                putchar(*p);
            }
            putchar('"');
        } else {
            fputs(v, stdout);
        }
    }
    fputs(out == OUT_CSV ? "\r\n" : "\n", stdout);
}

/* ------------------------------------------------------------ commands */

static int cmd_init(const opts *o)
{
    slim_store *st = open_or_die(o, SLIM_OPEN_CREATE);
    printf("slim store '%s' ready (format version %d)\n", o->store, slim_store_format_version(st));
    slim_store_close(st);
    return finish();
}

static json_t *dataset_json(const slim_dataset_info *d)
{
    char prec[64];
    slim_precision_format(&d->precision, prec, sizeof prec);
    double bpp = d->positions ? (double)d->record_bytes / (double)d->positions : 0;
    return json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:f, s:I}", "name", d->name, "teacher",
                     d->teacher.name, "vocab_size", (int)d->teacher.vocab_size, "kind",
                     d->kind == SLIM_KIND_SAMPLED ? "sampled" : "logits", "sparsifier", d->sparsifier,
                     "precision", prec, "sequences", (json_int_t)d->sequences, "positions",
                     (json_int_t)d->positions, "entries", (json_int_t)d->entries, "record_bytes",
                     (json_int_t)d->record_bytes, "bytes_per_position", bpp, "next_seq",
                     (json_int_t)d->next_seq);
}

static int cmd_info(const opts *o)
{
    slim_store *st = open_or_die(o, 0);
    int n = 0;
    int64_t fb = 0;
    if (slim_dataset_count(st, &n) || slim_store_file_bytes(st, &fb)) slim_die(1, "%s", slim_errmsg(st));
    json_t *arr = json_array();
    if (o->out != OUT_JSON) {
        printf("store %s, format version %d, %lld bytes on disk\n", o->store, slim_store_format_version(st),
               (long long)fb);
        printf("%-16s %-16s %10s %12s %14s %14s %10s\n", "dataset", "teacher", "sequences", "positions",
               "entries", "record_bytes", "bytes/pos");
    }
    for (int i = 0; i < n; i++) {
        slim_dataset_info d;
        if (slim_dataset_at(st, i, &d)) slim_die(1, "%s", slim_errmsg(st));
        if (o->out == OUT_JSON) {
            json_array_append_new(arr, dataset_json(&d));
            continue;
        }
        printf("%-16s %-16s %10lld %12lld %14lld %14lld %10.1f\n", d.name, d.teacher.name,
               (long long)d.sequences, (long long)d.positions, (long long)d.entries, (long long)d.record_bytes,
               d.positions ? (double)d.record_bytes / (double)d.positions : 0.0);
    }
    if (o->out == OUT_JSON) {
        json_t *root = json_pack("{s:s, s:i, s:I, s:o}", "store", o->store, "format_version",
                                 slim_store_format_version(st), "file_bytes", (json_int_t)fb, "datasets", arr);
        char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (s) puts(s);
        free(s);
        json_decref(root);
    } else {
        json_decref(arr);
    }
    slim_store_close(st);
    return finish();
}

static void print_problem(void *ctx, const char *p)
{
    (void)ctx;
    printf("%s\n", p);
}

static long long count_of(slim_store *st, const char *sql)
{
    sqlite3_stmt *q;
    long long v = 0;
    if (sqlite3_prepare_v2(slim_store_sqlite(st), sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return v;
}

static int cmd_verify(const opts *o)
{
    slim_store *st = open_or_die(o, 0);
    int64_t n = 0;
    int rc = slim_store_verify(st, print_problem, NULL, &n);
    if (rc) slim_die(1, "verify: %s", slim_errmsg(st));
    long long nd = count_of(st, "SELECT count(*) FROM datasets");
    long long ns = count_of(st, "SELECT count(*) FROM sequences WHERE purged = 0");
    long long nn = count_of(st, "SELECT count(*) FROM snapshots");
    slim_store_close(st);
    finish();
    if (n) {
        fprintf(stderr, "slim-store: verify: %lld problem%s in '%s'\n", (long long)n, n == 1 ? "" : "s", o->store);
        return 1;
    }
    fprintf(stderr, "slim-store: verify: '%s' is sound (%lld datasets, %lld sequences with records, %lld snapshots)\n",
            o->store, nd, ns, nn);
    return 0;
}

static int snap_create(const opts *o)
{
    if (o->nargs != 3) usage_die("%s", "snapshot create needs exactly one NAME");
    if (o->ndatasets == 0) usage_die("%s", "snapshot create needs --dataset D");
    slim_store *st = open_or_die(o, 0);
    slim_writer *w;
    if (slim_write_begin(st, &w)) slim_die(1, "%s", slim_errmsg(st));
    if (slim_write_snapshot(w, o->args[2], o->datasets, o->ndatasets, o->valid)) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", slim_errmsg(st));
        slim_write_abort(w);
        slim_die(1, "%s", msg);
    }
    if (slim_write_commit(w)) slim_die(1, "%s", slim_errmsg(st));
    slim_snapshot *s;
    if (slim_snapshot_open(st, o->args[2], &s)) slim_die(1, "%s", slim_errmsg(st));
    size_t nv = 0;
    for (size_t i = 0; i < slim_snapshot_size(s); i++) nv += slim_snapshot_members(s)[i].split;
    printf("snapshot '%s': %zu members (%zu valid), sha256 %s\n", o->args[2], slim_snapshot_size(s), nv,
           slim_snapshot_hash_hex(s));
    slim_snapshot_close(s);
    slim_store_close(st);
    return finish();
}

static int snap_list(const opts *o)
{
    slim_store *st = open_or_die(o, 0);
    sqlite3 *db = slim_store_sqlite(st);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, "SELECT name, members, valid, datasets, hash, created_at FROM snapshots"
                               " ORDER BY id", -1, &q, NULL))
        slim_die(1, "cannot list snapshots: %s", sqlite3_errmsg(db));
    static const char *const names[] = {"name", "members", "valid", "datasets", "hash", "created_at"};
    static const int numeric[] = {0, 1, 1, 0, 0, 0};
    const char *vals[6] = {0};
    print_row(o->out, 6, names, vals, numeric, 1);
    while (sqlite3_step(q) == SQLITE_ROW) {
        for (int i = 0; i < 6; i++) vals[i] = (const char *)sqlite3_column_text(q, i);
        print_row(o->out, 6, names, vals, numeric, 0);
    }
    sqlite3_finalize(q);
    slim_store_close(st);
    return finish();
}

static int snap_show(const opts *o)
{
    if (o->nargs != 3) usage_die("%s", "snapshot show needs exactly one NAME");
    slim_store *st = open_or_die(o, 0);
    slim_snapshot *s;
    if (slim_snapshot_open(st, o->args[2], &s)) slim_die(1, "%s", slim_errmsg(st));
    sqlite3 *db = slim_store_sqlite(st);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, "SELECT name FROM datasets WHERE id = ?1", -1, &q, NULL))
        slim_die(1, "cannot read datasets: %s", sqlite3_errmsg(db));
    static const char *const names[] = {"ord", "dataset", "seq", "split", "content_hash"};
    static const int numeric[] = {1, 0, 1, 0, 0};
    const char *vals[5] = {0};
    char ord[24], seq[24], hex[33], dname[256];
    if (o->out == OUT_TEXT) fprintf(stderr, "snapshot '%s' sha256 %s\n", o->args[2], slim_snapshot_hash_hex(s));
    print_row(o->out, 5, names, vals, numeric, 1);
    const slim_member *m = slim_snapshot_members(s);
    for (size_t i = 0; i < slim_snapshot_size(s); i++) {
        sqlite3_reset(q);
        sqlite3_bind_int64(q, 1, m[i].dataset);
        if (sqlite3_step(q) == SQLITE_ROW) snprintf(dname, sizeof dname, "%s", sqlite3_column_text(q, 0));
        else snprintf(dname, sizeof dname, "%lld", (long long)m[i].dataset);
        snprintf(ord, sizeof ord, "%zu", i);
        snprintf(seq, sizeof seq, "%lld", (long long)m[i].seq);
        for (int j = 0; j < 16; j++) snprintf(hex + 2 * j, 3, "%02x", m[i].hash[j]);
        vals[0] = ord, vals[1] = dname, vals[2] = seq, vals[3] = m[i].split ? "valid" : "train", vals[4] = hex;
        print_row(o->out, 5, names, vals, numeric, 0);
    }
    sqlite3_finalize(q);
    slim_snapshot_close(s);
    slim_store_close(st);
    return finish();
}

int main(int argc, char **argv)
{
    slim_tool_init("slim-store");
    opts o;
    parse(&o, argc, argv);
    if (o.nargs == 0) usage_die("%s", "no command given");
    const char *c = o.args[0];
    if (!strcmp(c, "init") && o.nargs == 1) return cmd_init(&o);
    if (!strcmp(c, "info") && o.nargs == 1) return cmd_info(&o);
    if (!strcmp(c, "verify") && o.nargs == 1) return cmd_verify(&o);
    if (!strcmp(c, "snapshot") && o.nargs >= 2) {
        if (!strcmp(o.args[1], "create")) return snap_create(&o);
        if (!strcmp(o.args[1], "list") && o.nargs == 2) return snap_list(&o);
        if (!strcmp(o.args[1], "show")) return snap_show(&o);
    }
    usage_die("unknown command '%s' (or wrong arguments)", c);
}
