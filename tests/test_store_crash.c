/*
 * test_store_crash.c — kill -9 at random instants.  A forked child writes
 * batches (new sequences, some sharing a prefix; deletions; snapshots) and
 * reports every commit that returned 0 through a pipe; the parent SIGKILLs it
 * after a random delay, then checks that the store opens, verify finds no
 * problem, and every acknowledged sequence is present and exact.  Rounds:
 * 24, or $SLIM_SOAK_ROUNDS.
 *
 * Also a helper for the CLI tests: `test_store_crash fill DIR DATASET N`
 * writes N generated sequences (used by tests/cli/store*.sh).
 */
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/tap.h"
#include "test_store_util.h"

#define V 1000
static const slim_teacher TEACH = {"crash-teacher", V, NULL, 1.0, SLIM_SOURCE_LOGITS};
static char dir[512];

typedef struct ack { int32_t op; int32_t ds_index; int64_t seq; } ack;  /* op: 'A' added, 'D' deleted */

/* The sequence the writer puts at number s of dataset index di. */
static int gen_seq(tsu_seq *q, int di, int64_t s)
{
    int rc = tsu_make(q, (uint64_t)(di * 1000003 + s), V, 8 + (uint32_t)(s * 13 % 57), 12, 0);
    if (rc || s == 0 || s % 3) return rc;
    tsu_seq p;  /* every third shares up to 20 tokens with sequence s/2 */
    if (gen_seq(&p, di, s / 2)) return -1;
    uint32_t L = p.T < q->T ? p.T : q->T;
    if (L > 20) L = 20;
    memcpy(q->tokens, p.tokens, L * 4);
    tsu_free(&p);
    return 0;
}

static int ensure_datasets(slim_writer *w, int64_t ds[2])
{
    slim_precision p = {SLIM_PREC_LOSSLESS, 0};
    return slim_write_dataset(w, "A", &TEACH, SLIM_KIND_LOGITS, "topk:12", &p, &ds[0]) ||
           slim_write_dataset(w, "B", &TEACH, SLIM_KIND_LOGITS, "topk:12", &p, &ds[1]);
}

static int write_one(slim_writer *w, slim_store *st, int di, int64_t ds, int64_t *seq)
{
    slim_dataset_info info;
    slim_dataset_get(st, di ? "B" : "A", &info);
    tsu_seq q;
    if (gen_seq(&q, di, info.next_seq)) return -1;
    slim_prefix_ref ref, *pr = NULL;
    if (slim_write_find_prefix(w, ds, q.tokens, q.T, &ref) == 0) pr = &ref;
    int rc = slim_write_seq(w, ds, 0, NULL, q.tokens, q.T, q.d, q.npos, pr, seq);
    if (!rc && *seq != info.next_seq) rc = -99;
    tsu_free(&q);
    return rc;
}

static void child(int fd, uint64_t seed)
{
    slim_store *st;
    if (slim_store_open(&st, dir, SLIM_OPEN_CREATE)) _exit(3);
    for (int batch = 0;; batch++) {
        slim_writer *w;
        int64_t ds[2], seq;
        ack acks[8];
        int na = 0;
        if (slim_write_begin(st, &w) || ensure_datasets(w, ds)) _exit(4);
        int n = 1 + (int)tsu_below(&seed, 3);
        for (int i = 0; i < n; i++) {
            int di = (int)tsu_below(&seed, 2);
            if (write_one(w, st, di, ds[di], &seq)) _exit(5);
            acks[na++] = (ack){'A', di, seq};
        }
        slim_dataset_info a;
        slim_dataset_get(st, "A", &a);
        if (tsu_below(&seed, 3) == 0 && a.next_seq > 0) {
            int64_t victim = tsu_below(&seed, (uint32_t)a.next_seq), freed;
            if (slim_write_delete_seq(w, ds[0], victim, &freed) == 0) acks[na++] = (ack){'D', 0, victim};
        }
        if (tsu_below(&seed, 5) == 0) {
            char name[64];
            const char *dsn[] = {"A", "B"};
            snprintf(name, sizeof name, "s%llu-%d", (unsigned long long)seed % 100000, batch);
            slim_write_snapshot(w, name, dsn, 2, 0.1);
        }
        if (slim_write_commit(w)) _exit(6);
        if (write(fd, acks, sizeof(ack) * (size_t)na) < 0) _exit(7);
    }
}

static uint32_t ids[1 << 16];
static float vals[1 << 16];
static slim_dist out[256];

/* Checks one acknowledged sequence against the generator. */
static const char *check_seq(slim_reader *r, int di, int64_t ds, int64_t s, int want_deleted)
{
    static char msg[256];
    slim_seq_info si;
    if (slim_read_seq(r, ds, s, &si)) return "acknowledged sequence missing";
    if (want_deleted && !si.deleted) return "acknowledged deletion missing";
    if (si.deleted) return NULL;  /* deletions not yet acknowledged are fine */
    tsu_seq q, p = {0};
    gen_seq(&q, di, s);
    if (si.ntokens != q.T || si.npos != q.npos) return "wrong shape";
    if (si.prefix_len && gen_seq(&p, (int)(si.prefix_dataset - ds) + di, si.prefix_seq)) return "gen";
    const char *bad = NULL;
    if (slim_read_positions(r, ds, s, 0, q.npos, out, ids, vals, 1 << 16, NULL, 0)) bad = "read failed";
    for (uint32_t i = 0; i < q.npos && !bad; i++) {
        const char *e = tsu_same(i < si.prefix_len ? &p.d[i] : &q.d[i], &out[i], -1);
        if (e) {
            snprintf(msg, sizeof msg, "seq %lld pos %u: %s", (long long)s, i, e);
            bad = msg;
        }
    }
    uint8_t h[16];
    if (!bad) {
        slim_content_hash(q.tokens, q.T, out, q.npos, h);
        if (memcmp(h, si.hash, 16)) bad = "content hash of read-back differs";
    }
    tsu_free(&q);
    tsu_free(&p);
    return bad;
}

static int grow_acks(ack **a, size_t *cap, size_t need)
{
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap * 2 : 256;
    ack *b = realloc(*a, n * sizeof *b);
    if (!b) return -1;
    *a = b;
    *cap = n;
    return 0;
}

static void problem_cb(void *ctx, const char *p)
{
    if (!*(char *)ctx) snprintf(ctx, 512, "%s", p);
}

static int fill(const char *d, const char *name, int n)
{
    slim_store *st;
    slim_writer *w;
    int64_t ds, seq;
    slim_precision p;
    slim_precision_parse("logprob:0.01", &p);
    if (slim_store_open(&st, d, SLIM_OPEN_CREATE) || slim_write_begin(st, &w) ||
        slim_write_dataset(w, name, &TEACH, SLIM_KIND_LOGITS, "topk:12", &p, &ds)) {
        fprintf(stderr, "fill: %s\n", slim_errmsg(st));
        return 1;
    }
    for (int i = 0; i < n; i++) {
        tsu_seq q;
        tsu_make(&q, (uint64_t)i + 1, V, 20 + (uint32_t)i % 11, 12, 0);
        if (slim_write_seq(w, ds, 0, NULL, q.tokens, q.T, q.d, q.npos, NULL, &seq)) {
            fprintf(stderr, "fill: %s\n", slim_errmsg(st));
            return 1;
        }
        tsu_free(&q);
    }
    if (slim_write_commit(w)) return 1;
    slim_store_close(st);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "fill")) return fill(argv[2], argv[3], atoi(argv[4]));
    const char *tmp = getenv("SLIM_TMP"), *soak = getenv("SLIM_SOAK_ROUNDS");
    int rounds = soak && atoi(soak) > 0 ? atoi(soak) : 24;
    snprintf(dir, sizeof dir, "%s/store-crash.%d", tmp ? tmp : "/tmp", (int)getpid());
    uint64_t seed = 12345;
    size_t nack = 0, cap = 0;
    ack *acks = NULL;
    TAP_BEGIN("crash_rounds_verify_and_acknowledged");
    int killed_mid = 0;
    for (int round = 0; round < rounds; round++) {
        int pfd[2];
        if (pipe(pfd)) return 1;
        uint64_t cseed = tsu_next(&seed);
        pid_t pid = fork();
        if (pid == 0) {
            close(pfd[0]);
            child(pfd[1], cseed);
        }
        close(pfd[1]);
        /* Every 4th round the kill comes 0..30 ms after the fork (open,
         * recovery, the first batch); the others first wait for one
         * acknowledged commit (so a loaded machine cannot starve the test),
         * then kill 0..40 ms later, anywhere in the following batches. */
        ack a;
        int early = round % 4 == 0;
        if (!early) {
            struct pollfd pf = {pfd[0], POLLIN, 0};
            if (poll(&pf, 1, 20000) == 1 && read(pfd[0], &a, sizeof a) == (ssize_t)sizeof a) {
                if (grow_acks(&acks, &cap, nack + 1)) return 1;
                acks[nack++] = a;
            }
        }
        struct timespec ts = {0, (long)tsu_below(&seed, early ? 30 : 40) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        if (WIFSIGNALED(status)) killed_mid++;
        else CHECK(0, "round %d: child exited early with %d", round, WEXITSTATUS(status));
        while (read(pfd[0], &a, sizeof a) == (ssize_t)sizeof a) {
            if (grow_acks(&acks, &cap, nack + 1)) return 1;
            acks[nack++] = a;
        }
        close(pfd[0]);
        slim_store *st;
        int rc = slim_store_open(&st, dir, 0);
        CHECK(rc == 0, "round %d: open: %s", round, slim_errmsg(st));
        if (rc) {
            slim_store_close(st);
            continue;
        }
        char first[512] = "";
        int64_t np = -1;
        rc = slim_store_verify(st, problem_cb, first, &np);
        CHECK(rc == 0 && np == 0, "round %d: verify rc %d, %lld problems: %s", round, rc, (long long)np, first);
        slim_dataset_info da, db;
        slim_reader *r;
        if (nack && slim_dataset_get(st, "A", &da) == 0 && slim_dataset_get(st, "B", &db) == 0 &&
            slim_read_begin(st, &r) == 0) {
            for (size_t i = 0; i < nack; i++) {
                int want_del = 0;
                if (acks[i].op == 'D') continue;
                for (size_t j = i + 1; j < nack; j++)
                    want_del |= acks[j].op == 'D' && acks[j].seq == acks[i].seq && acks[j].ds_index == acks[i].ds_index;
                const char *e = check_seq(r, acks[i].ds_index, acks[i].ds_index ? db.id : da.id, acks[i].seq, want_del);
                CHECK(e == NULL, "round %d: dataset %c seq %lld: %s", round, "AB"[acks[i].ds_index],
                      (long long)acks[i].seq, e);
            }
            slim_read_end(r);
        }
        slim_store_close(st);
    }
    printf("# %d rounds, %zu acknowledged operations, %d killed mid-run\n", rounds, nack, killed_mid);
    CHECK(nack >= (size_t)rounds * 3 / 4, "too few acknowledged commits (%zu) to mean anything", nack);
    TAP_END();
    free(acks);
    return tap_done();
}
