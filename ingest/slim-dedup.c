/*
 * slim-dedup — find sequences of a dataset that repeat an earlier one (same
 * teacher, same tokens) and remove the later copies from the live view.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "slim_tool.h"
#include "ingest.h"

/* A dataset's name by id (the first copies' datasets in the report; the
 * last one is kept, as runs of copies mostly come from one dataset). */
static const char *ds_name(slim_store *st, int64_t id)
{
    static char name[256] = "?";
    static int64_t have = -1;
    if (id == have) return name;
    slim_dataset_info d;
    int n = 0;
    snprintf(name, sizeof name, "?");
    have = -1;
    if (slim_dataset_count(st, &n) == 0)
        for (int i = 0; i < n; i++)
            if (slim_dataset_at(st, i, &d) == 0 && d.id == id) {
                snprintf(name, sizeof name, "%s", d.name ? d.name : "?");
                have = id;
                break;
            }
    return name;
}

static const char usage_text[] =
    "usage: slim-dedup --dataset D [--across] [--dry-run] [--json] [--store DIR]\n"
    "\n"
    "  --dataset D the dataset to deduplicate (later copies leave its live view)\n"
    "  --across    also look for the first copy in the other datasets of the same teacher\n"
    "  --dry-run   report, change nothing\n"
    "  --json      the report as one JSON object on stdout\n"
    "  --store DIR the store (default $SLIM_STORE, else ./slim.store)\n"
    "See docs/INGEST.md, \"Deduplication\".\n";


int main(int argc, char **argv)
{
    slim_tool_init("slim-dedup");
    enum { O_ACROSS = 256, O_DRY, O_JSON, O_STORE, O_VERSION };
    static const struct option opts[] = {
        { "dataset", required_argument, 0, 'd' }, { "across", no_argument, 0, O_ACROSS },
        { "dry-run", no_argument, 0, O_DRY }, { "json", no_argument, 0, O_JSON },
        { "store", required_argument, 0, O_STORE }, { "help", no_argument, 0, 'h' },
        { "version", no_argument, 0, O_VERSION }, { 0, 0, 0, 0 },
    };
    const char *dataset = NULL, *store = getenv("SLIM_STORE");
    int across = 0, dry = 0, json = 0, c;
    while ((c = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dataset = optarg; break;
        case O_ACROSS: across = 1; break;
        case O_DRY: dry = 1; break;
        case O_JSON: json = 1; break;
        case O_STORE: store = optarg; break;
        case 'h': fputs(usage_text, stdout); return 0;
        case O_VERSION: printf("slim-dedup %s\n", SLIM_VERSION_STRING); return 0;
        default: fputs(usage_text, stderr); return 2;
        }
    }
    if (!dataset) slim_die(2, "--dataset is required (try --help)");
    if (optind < argc) slim_die(2, "unexpected argument '%s' (try --help)", argv[optind]);
    if (!store || !*store) store = "slim.store";
    slim_store *st;
    char err[1024] = "";
    int rc = slim_store_open(&st, store, 0);
    if (rc) {
        snprintf(err, sizeof err, "%s", st ? slim_errmsg(st) : slim_strerror(rc));
        slim_store_close(st);
        slim_die(1, "cannot open store '%s': %s", store, err);
    }
    slim_dedup_result r;
    rc = slim_dedup(st, dataset, across, dry, &r, err, sizeof err);
    if (rc) { free(r.dups); slim_store_close(st); slim_die(1, "%s", err); }
    if (json) {
        json_t *j = json_pack("{s:s, s:b, s:b, s:I, s:I, s:I, s:I, s:I}", "dataset", dataset,
                              "across", across, "dry_run", dry, "scanned", (json_int_t)r.scanned,
                              "duplicates", (json_int_t)r.duplicates,
                              "removed", (json_int_t)r.removed,
                              "bytes_reclaimed", (json_int_t)(dry ? 0 : r.bytes_freed),
                              "bytes_reclaimable", (json_int_t)r.bytes_freed);
        char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
        if (!t) slim_die(1, "out of memory");
        puts(t);
        free(t);
        json_decref(j);
    } else {
        for (size_t i = 0; i < r.ndups; i++)
            printf("sequence %lld duplicates '%s' sequence %lld\n", (long long)r.dups[i].seq,
                   ds_name(st, r.dups[i].of_dataset), (long long)r.dups[i].of_seq);
        printf("dataset '%s': %lld sequences scanned, %lld duplicates, %lld removed%s, "
               "%lld bytes %s\n", dataset, (long long)r.scanned, (long long)r.duplicates,
               (long long)r.removed, dry ? " (dry run)" : "", (long long)r.bytes_freed,
               dry ? "would be reclaimed" : "reclaimed");
    }
    free(r.dups);
    slim_store_close(st);
    if (fflush(stdout) || ferror(stdout) || fclose(stdout)) slim_die(1, "cannot write to stdout");
    return 0;
}
