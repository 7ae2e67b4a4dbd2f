/*
 * slim-ingest — add teacher outputs (dense logits, top-k log-probs from
 * vLLM / OpenAI-compatible servers, safetensors / npy / JSONL) to a dataset.
 * Thin: parse arguments, call slim_ingest_files, print the summary.
 */
#include <getopt.h>
#include <jansson.h>
#include <omp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "slim_tool.h"
#include "ingest.h"
#include "teacher.h"
#include "text.h"

static const char usage_text[] =
    "usage: slim-ingest --dataset D [--teacher NAME] [--vocab-size V] [--vocab tokenizer.json]\n"
    "                   [--sparsify SPEC] [--precision SPEC] [--format auto|safetensors|npy|jsonl]\n"
    "                   [--temperature T] [--seed N] [--threads N] [--min-prefix N]\n"
    "                   [--max-logprobs K] [--batch-positions N] [--json] [--progress]\n"
    "                   [--store DIR] FILE...\n"
    "       slim-ingest --dataset D --model CKPT --text FILE [--tokenizer FILE] [options]\n"
    "       slim-ingest --dataset D --model CKPT --generate N [--prompts FILE] [--max-tokens T]\n"
    "                   [--top-p P] [--sample-temperature X] [--seed S] [--tokenizer FILE] [options]\n"
    "       slim-ingest --dataset D --text FILE --tokenizer FILE [--ctx N] [--teacher NAME]\n"
    "\n"
    "  --dataset D        the dataset to add to (created by its first ingest)\n"
    "  --model CKPT       the built-in teacher (a slim-train checkpoint): score --text FILE\n"
    "                     or sample --generate N sequences, storing their sparse logits\n"
    "  --generate N       with --model: sample N sequences, seeded by --seed\n"
    "  --prompts FILE     generation: prompts, one per line, cycled (default: <|endoftext|> alone)\n"
    "  --max-tokens T     generation: sample at most T tokens a sequence (default: to the context)\n"
    "  --top-p P          generation: nucleus sampling (default 1: off)\n"
    "  --sample-temperature X  generation: the sampling temperature (default --temperature)\n"
    "  --tokenizer FILE   slim tokenizer file or tokenizer.json (default: the --vocab path)\n"
    "  --text FILE        without --model: token-only sequences (no distributions, for CE),\n"
    "                     documents split at blank lines, cut to windows of --ctx N tokens (256)\n"
    "  --ctx N            see --text\n"
    "  --no-bos           generation/scoring: do not start with <|endoftext|>\n"
    "  --sparsify SPEC    topfrac:F (default topfrac:0.05), topk:K, topp:P[,max:K], sample:N\n"
    "  --precision SPEC   logprob:EPS (default logprob:0.01), prob:EPS, lossless\n"
    "  --vocab-size V     the logit width; needed for the first ingest of sparse input\n"
    "  --max-logprobs K   keep at most K entries per position of sparse JSONL input\n"
    "  --min-prefix N     share a common token prefix of >= N positions with an earlier sequence\n"
    "                     (default 16, also the shortest the store looks for; 0 = off)\n"
    "  --teacher NAME     the dataset's teacher (default: the dataset's, or its name when new)\n"
    "  --vocab FILE       a Hugging Face tokenizer.json whose vocabulary is recorded (token text\n"
    "                     in slim-query); V may exceed its size\n"
    "  --format F         auto (default: detected from the content), safetensors, npy, jsonl\n"
    "  --temperature T    the temperature the teacher's logits were captured at (default 1);\n"
    "                     with --model, also the sampling one unless --sample-temperature\n"
    "  --seed N           seeds sample:N and --generate (default 0; kept in the run record)\n"
    "  --threads N        worker threads (default: OMP_NUM_THREADS, else one per core)\n"
    "  --batch-positions N  positions per batch, the unit of a commit (default 8192; dense\n"
    "                     batches stay under 8 MB of selected entries; slow commits group)\n"
    "  --json             the summary as one JSON object on stdout\n"
    "  --progress         the progress line on stderr even when it is not a terminal\n"
    "  --store DIR        the store (default $SLIM_STORE, else ./slim.store; created if absent)\n"
    "FILE - reads JSONL from standard input (a pipe from a server's client).\n"
    "Ctrl-C (SIGINT) or SIGTERM while FILEs are ingested stops after the batches in flight,\n"
    "which are committed (a second one stops at once); re-running continues without duplicates.\n"
    "See docs/INGEST.md.\n";


static unsigned long long num_arg(const char *opt, const char *s, unsigned long long max)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || *s == '-' || v > max) slim_die(2, "invalid %s '%s'", opt, s);
    return v;
}

static double real_arg(const char *opt, const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v > 0)) slim_die(2, "invalid %s '%s'", opt, s);
    return v;
}

/* Which job the flags ask for: files, the teacher, or token-only text. */
static int check_mode(const slim_ingest_opts *o, const slim_teacher_opts *t, int nfiles)
{
    if (t->model) {
        if (nfiles) slim_die(2, "--model takes no input files (give --text or --generate)");
        if (!t->text == !t->generate) slim_die(2, "--model needs exactly one of --text and --generate");
        if (t->top_p > 1) slim_die(2, "invalid --top-p '%g' (0 < P <= 1)", t->top_p);
        return 1;
    }
    if (t->generate || t->prompts || t->max_tokens || t->top_p || t->sample_temperature || t->no_bos)
        slim_die(2, "--generate, --prompts, --max-tokens, --top-p, --sample-temperature and --no-bos "
               "need --model");
    if (t->text) {
        if (nfiles) slim_die(2, "--text takes no input files");
        if (o->sparsify) slim_die(2, "--text without --model stores no distributions: --sparsify needs --model");
        return 2;
    }
    if (!nfiles) slim_die(2, "no input files (try --help)");
    return 0;
}

static void print_summary(const slim_ingest_opts *o, const slim_ingest_stats *s, int json)
{
    double rate = s->seconds > 0 ? s->positions / s->seconds : 0;
    long long bytes = (long long)(s->bytes_after - s->bytes_before);
    if (json) {
        json_t *j = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f}",
                              "dataset", o->dataset, "run", (json_int_t)s->run_id,
                              "added", (json_int_t)s->added, "skipped", (json_int_t)s->skipped,
                              "refused", (json_int_t)s->refused,
                              "positions", (json_int_t)s->positions,
                              "entries", (json_int_t)s->entries,
                              "shared_sequences", (json_int_t)s->shared_seqs,
                              "shared_positions", (json_int_t)s->shared_positions,
                              "prefix_checked", (json_int_t)s->prefix_checked,
                              "prefix_disagree", (json_int_t)s->prefix_disagree,
                              "bytes_written", (json_int_t)bytes,
                              "batches", (json_int_t)s->batches, "commits", (json_int_t)s->commits,
                              "seconds", s->seconds,
                              "positions_per_s", rate);
        char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
        if (t) puts(t);
        free(t);
        json_decref(j);
        return;
    }
    printf("dataset '%s': added %lld sequences (%lld positions), skipped %lld duplicates, "
           "refused %lld; %lld positions shared with earlier sequences; %.2f MB written; "
           "%.0f positions/s\n", o->dataset, (long long)s->added, (long long)s->positions,
           (long long)s->skipped, (long long)s->refused, (long long)s->shared_positions,
           bytes / 1e6, rate);
}

/* SIGINT / SIGTERM while files are ingested: the first asks the pipeline to
 * stop after the batches in flight (committed, the run recorded as
 * "interrupted"); the handler is then the default again, so a second one
 * ends the process at once (the store stays consistent either way).  A
 * signal the parent ignores (SIGINT for a shell's background job) stays
 * ignored.  Reading standard input, the stop comes after the next lines
 * arrive (or its end): the read is restarted, not failed. */
static volatile sig_atomic_t stop_signal;

static void on_stop(int sig) { stop_signal = sig; }

static void catch_stop(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sa.sa_flags = SA_RESETHAND | SA_RESTART;  /* reads (a pipe on stdin) go on, not EINTR */
    sigemptyset(&sa.sa_mask);
    const int sigs[] = { SIGINT, SIGTERM };
    for (int i = 0; i < 2; i++) {
        struct sigaction old;
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
            sigaction(sigs[i], &sa, NULL);
    }
}

static char *args_json(int argc, char **argv)
{
    json_t *a = json_array();
    for (int i = 0; a && i < argc; i++) json_array_append_new(a, json_string(argv[i]));
    char *t = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return t;
}

int main(int argc, char **argv)
{
    slim_tool_init("slim-ingest");
    slim_tool_big_heap();
    enum { O_TEACHER = 256, O_VSIZE, O_VOCAB, O_SPARSIFY, O_PREC, O_FORMAT, O_TEMP, O_SEED,
           O_JSON, O_PROGRESS, O_STORE, O_THREADS, O_MINPREFIX, O_MAXLP, O_BATCH, O_VERSION,
           O_MODEL, O_TEXT, O_GENERATE, O_PROMPTS, O_MAXTOK, O_TOPP, O_STEMP, O_TOKENIZER, O_CTX,
           O_NOBOS };
    static const struct option opts[] = {
        { "dataset", required_argument, 0, 'd' }, { "teacher", required_argument, 0, O_TEACHER },
        { "vocab-size", required_argument, 0, O_VSIZE }, { "vocab", required_argument, 0, O_VOCAB },
        { "sparsify", required_argument, 0, O_SPARSIFY },
        { "precision", required_argument, 0, O_PREC }, { "format", required_argument, 0, O_FORMAT },
        { "temperature", required_argument, 0, O_TEMP }, { "seed", required_argument, 0, O_SEED },
        { "json", no_argument, 0, O_JSON }, { "progress", no_argument, 0, O_PROGRESS },
        { "store", required_argument, 0, O_STORE }, { "threads", required_argument, 0, O_THREADS },
        { "min-prefix", required_argument, 0, O_MINPREFIX },
        { "max-logprobs", required_argument, 0, O_MAXLP },
        { "batch-positions", required_argument, 0, O_BATCH },
        { "model", required_argument, 0, O_MODEL }, { "text", required_argument, 0, O_TEXT },
        { "generate", required_argument, 0, O_GENERATE },
        { "prompts", required_argument, 0, O_PROMPTS },
        { "max-tokens", required_argument, 0, O_MAXTOK }, { "top-p", required_argument, 0, O_TOPP },
        { "sample-temperature", required_argument, 0, O_STEMP },
        { "tokenizer", required_argument, 0, O_TOKENIZER }, { "ctx", required_argument, 0, O_CTX },
        { "no-bos", no_argument, 0, O_NOBOS },
        { "help", no_argument, 0, 'h' }, { "version", no_argument, 0, O_VERSION }, { 0, 0, 0, 0 },
    };
    slim_ingest_opts o = { .temperature = 1.0, .min_prefix = 16, .progress = isatty(2) };
    const char *store = getenv("SLIM_STORE");
    slim_teacher_opts t = { 0 };
    uint32_t ctx = 256;
    int json = 0, c;
    char err[1024];
    while ((c = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': o.dataset = optarg; break;
        case O_TEACHER: o.teacher = optarg; break;
        case O_VSIZE: o.vocab_size = (uint32_t)num_arg("--vocab-size", optarg, UINT32_MAX); break;
        case O_VOCAB: o.vocab_path = optarg; break;
        case O_SPARSIFY: {
            slim_sparsifier sp;
            if (slim_sparsifier_parse(optarg, &sp, err, sizeof err)) slim_die(2, "%s", err);
            o.sparsify = optarg;
            break;
        }
        case O_PREC: {
            slim_precision p;
            if (slim_precision_parse(optarg, &p))
                slim_die(2, "invalid precision '%s' (expected logprob:EPS or prob:EPS with EPS > 0, "
                         "or lossless)", optarg);
            o.precision = optarg;
            break;
        }
        case O_FORMAT:
            if ((o.format = slim_format_parse(optarg)) < 0) slim_die(2, "invalid format '%s'", optarg);
            break;
        case O_TEMP: {
            char *end;
            o.temperature = strtod(optarg, &end);
            if (*end || !(o.temperature > 0)) slim_die(2, "invalid temperature '%s'", optarg);
            break;
        }
        case O_SEED: o.seed = num_arg("--seed", optarg, UINT64_MAX); break;
        case O_JSON: json = 1; break;
        case O_PROGRESS: o.progress = 1; break;
        case O_STORE: store = optarg; break;
        case O_THREADS: o.threads = (int)num_arg("--threads", optarg, 1024); break;
        case O_MINPREFIX: o.min_prefix = (uint32_t)num_arg("--min-prefix", optarg, UINT32_MAX); break;
        case O_MAXLP: o.max_k = (uint32_t)num_arg("--max-logprobs", optarg, UINT32_MAX); break;
        case O_BATCH: o.batch_positions = num_arg("--batch-positions", optarg, 1u << 30); break;
        case O_MODEL: t.model = optarg; break;
        case O_TEXT: t.text = optarg; break;
        case O_GENERATE: t.generate = (int64_t)num_arg("--generate", optarg, INT64_MAX); break;
        case O_PROMPTS: t.prompts = optarg; break;
        case O_MAXTOK: t.max_tokens = (uint32_t)num_arg("--max-tokens", optarg, UINT32_MAX); break;
        case O_TOPP: t.top_p = real_arg("--top-p", optarg); break;
        case O_STEMP: t.sample_temperature = real_arg("--sample-temperature", optarg); break;
        case O_TOKENIZER: t.tokenizer = optarg; break;
        case O_CTX: ctx = (uint32_t)num_arg("--ctx", optarg, 1u << 20); break;
        case O_NOBOS: t.no_bos = 1; break;
        case 'h': fputs(usage_text, stdout); return 0;
        case O_VERSION: printf("slim-ingest %s\n", SLIM_VERSION_STRING); return 0;
        default: fputs(usage_text, stderr); return 2;
        }
    }
    if (!o.dataset) slim_die(2, "--dataset is required (try --help)");
    int mode = check_mode(&o, &t, argc - optind);
    if (!store || !*store) store = "slim.store";
    if (o.threads) omp_set_num_threads(o.threads);
    char *aj = args_json(argc, argv);
    o.args_json = aj ? aj : "[]";

    slim_store *st;
    int rc = slim_store_open(&st, store, SLIM_OPEN_CREATE);
    if (rc) {
        snprintf(err, sizeof err, "%s", st ? slim_errmsg(st) : slim_strerror(rc));
        slim_store_close(st);
        slim_die(1, "cannot open store '%s': %s", store, err);
    }
    slim_ingest_stats s = { 0 };
    if (mode == 1)
        rc = slim_teacher_ingest(st, &o, &t, &s, err, sizeof err);
    else if (mode == 2)
        rc = slim_text_ingest(st, &o, t.tokenizer, t.text, ctx, &s, err, sizeof err);
    else {
        o.stop = &stop_signal;
        catch_stop();
        rc = slim_ingest_files(st, &o, (const char *const *)argv + optind, argc - optind, &s,
                               err, sizeof err);
    }
    if (rc) {
        fprintf(stderr, "slim-ingest: %s\n", err);
        /* a file refused before anything was committed gets its one line */
        if (s.committed_added || rc == SLIM_EINTR)
            fprintf(stderr, "slim-ingest: committed %lld new sequences before the %s; "
                    "re-running continues without duplicates\n", (long long)s.committed_added,
                    rc == SLIM_EINTR ? "interrupt" : "error");
    }
    if (!rc || json || s.added || s.skipped) print_summary(&o, &s, json);
    if (getenv("SLIM_INGEST_TIMING"))
        fprintf(stderr, "slim-ingest: seconds: parse %.3f sparsify %.3f write %.3f commit %.3f\n",
                s.t_parse, s.t_sparsify, s.t_write, s.t_commit);
    slim_store_close(st);
    free(aj);
    if (fflush(stdout) || ferror(stdout) || fclose(stdout)) slim_die(1, "cannot write to stdout");
    if (stop_signal) {  /* end as the signal would have: a shell loop stops too */
        signal(stop_signal, SIG_DFL);
        raise(stop_signal);
    }
    return rc ? 1 : 0;
}
