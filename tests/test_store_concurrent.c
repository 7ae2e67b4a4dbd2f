/*
 * test_store_concurrent.c — readers (two threads and a forked process) run
 * while a writer commits batches, some of which delete an earlier sequence
 * (its records are freed right after the commit, while readers may hold
 * views that still name it); every live sequence a reader can see must read
 * back whole, with a content hash equal to the recorded one, and the set of
 * visible sequences only grows.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/tap.h"
#include "test_store_util.h"

#define V 2000
#define NSEQ 150
static const slim_teacher TEACH = {"conc-teacher", V, NULL, 1.0, SLIM_SOURCE_LOGITS};
static char dir[512];
static atomic_int writer_done;
static int64_t ds_id;

static void *writer(void *arg)
{
    slim_store *st;
    int *rc = arg;
    *rc = slim_store_open(&st, dir, 0);
    for (int i = 0; i < NSEQ && !*rc; i += 3) {
        slim_writer *w;
        if ((*rc = slim_write_begin(st, &w))) break;
        for (int j = i; j < i + 3 && !*rc; j++) {
            tsu_seq q;
            int64_t seq;
            tsu_make(&q, (uint64_t)j, V, 30 + (uint32_t)j % 50, 40, 0);
            *rc = slim_write_seq(w, ds_id, 0, NULL, q.tokens, q.T, q.d, q.npos, NULL, &seq);
            tsu_free(&q);
        }
        /* every other batch also deletes an earlier sequence: its records
         * are freed right after the commit, while readers may hold views
         * that still name it */
        if (!*rc && i >= 6 && (i / 3) % 2 == 0) {
            int64_t freed;
            *rc = slim_write_delete_seq(w, ds_id, i - 6, &freed);
            if (!*rc && freed <= 0) *rc = -100;
        }
        if (*rc) slim_write_abort(w);
        else *rc = slim_write_commit(w);
    }
    if (*rc) printf("# writer: %s\n", slim_errmsg(st));
    slim_store_close(st);
    writer_done = 1;
    return NULL;
}

typedef struct rstate {
    slim_store *st;
    long checked, views;
    char err[256];
} rstate;

/* One pass over the view: returns the number of visible sequences, or -1
 * with r->err set. */
static int64_t check_view(rstate *rs, slim_reader *r, uint32_t *ids, float *vals, slim_dist *out)
{
    int64_t n = 0;
    uint32_t toks[256], nt;
    for (;; n++) {
        slim_seq_info si;
        int rc = slim_read_seq(r, ds_id, n, &si);
        if (rc == SLIM_ENOTFOUND) break;
        if (!rc && si.deleted) continue;  /* may be freed already */
        if (rc || slim_read_tokens(r, ds_id, n, toks, 256, &nt) ||
            slim_read_positions(r, ds_id, n, 0, si.npos, out, ids, vals, 1 << 16, NULL, 0)) {
            snprintf(rs->err, sizeof rs->err, "seq %lld: %s", (long long)n, slim_errmsg(rs->st));
            return -1;
        }
        uint8_t h[16];
        slim_content_hash(toks, nt, out, si.npos, h);
        if (memcmp(h, si.hash, 16)) {
            snprintf(rs->err, sizeof rs->err, "seq %lld: torn (hash differs)", (long long)n);
            return -1;
        }
        rs->checked++;
    }
    return n;
}

static void *reader(void *arg)
{
    rstate *rs = arg;
    slim_reader *r;
    uint32_t *ids = malloc(sizeof(uint32_t) << 16);
    float *vals = malloc(sizeof(float) << 16);
    slim_dist *out = malloc(sizeof(slim_dist) * 256);
    int64_t last = 0;
    if (slim_read_begin(rs->st, &r)) {
        snprintf(rs->err, sizeof rs->err, "read_begin: %s", slim_errmsg(rs->st));
        return NULL;
    }
    for (int done = 0; !done;) {
        done = writer_done;  /* one more full pass after the writer ends */
        if (slim_read_refresh(r)) {
            snprintf(rs->err, sizeof rs->err, "refresh: %s", slim_errmsg(rs->st));
            break;
        }
        int64_t n = check_view(rs, r, ids, vals, out);
        if (n < 0) break;
        if (n < last) {
            snprintf(rs->err, sizeof rs->err, "visible sequences went from %lld to %lld", (long long)last,
                     (long long)n);
            break;
        }
        last = n;
        rs->views++;
        if (done && n != NSEQ) snprintf(rs->err, sizeof rs->err, "final view has %lld sequences", (long long)n);
    }
    slim_read_end(r);
    free(ids);
    free(vals);
    free(out);
    return NULL;
}

int main(void)
{
    const char *tmp = getenv("SLIM_TMP");
    snprintf(dir, sizeof dir, "%s/store-conc.%d", tmp ? tmp : "/tmp", (int)getpid());
    slim_store *st;
    slim_writer *w;
    slim_precision p;
    slim_precision_parse("logprob:0.01", &p);
    if (slim_store_open(&st, dir, SLIM_OPEN_CREATE) || slim_write_begin(st, &w) ||
        slim_write_dataset(w, "c", &TEACH, SLIM_KIND_LOGITS, "topk:40", &p, &ds_id) || slim_write_commit(w)) {
        printf("FAIL setup: %s\n", slim_errmsg(st));
        return 1;
    }
    slim_store_close(st);

    TAP_BEGIN("readers_never_see_torn_data");
    pid_t pid = fork();
    if (pid == 0) {  /* the forked reader: its own process, read-only handle */
        rstate rs = {0};
        if (slim_store_open(&rs.st, dir, SLIM_OPEN_RDONLY)) {
            printf("# forked reader: open: %s\n", slim_errmsg(rs.st));
            fflush(stdout);
            _exit(3);
        }
        /* no shared memory with the parent's writer: poll until complete */
        slim_reader *r;
        uint32_t *ids = malloc(sizeof(uint32_t) << 16);
        float *vals = malloc(sizeof(float) << 16);
        slim_dist *out = malloc(sizeof(slim_dist) * 256);
        int64_t last = 0, n = 0;
        if (slim_read_begin(rs.st, &r)) {
            printf("# forked reader: read_begin: %s\n", slim_errmsg(rs.st));
            fflush(stdout);
            _exit(4);
        }
        for (int it = 0; it < 100000 && n < NSEQ; it++) {
            if (slim_read_refresh(r)) {
                printf("# forked reader: refresh: %s\n", slim_errmsg(rs.st));
                fflush(stdout);
                _exit(5);
            }
            n = check_view(&rs, r, ids, vals, out);
            if (n < 0 || n < last) {
                printf("# forked reader: %s\n", rs.err);
                fflush(stdout);
                _exit(6);
            }
            last = n;
        }
        slim_read_end(r);
        slim_store_close(rs.st);
        _exit(n == NSEQ ? 0 : 7);
    }
    slim_store *rst;
    if (slim_store_open(&rst, dir, SLIM_OPEN_RDONLY)) {
        printf("FAIL open read-only: %s\n", slim_errmsg(rst));
        return 1;
    }
    rstate rs[2] = {{rst, 0, 0, ""}, {rst, 0, 0, ""}};
    pthread_t tw, tr[2];
    int wrc = 0;
    pthread_create(&tr[0], NULL, reader, &rs[0]);
    pthread_create(&tr[1], NULL, reader, &rs[1]);
    pthread_create(&tw, NULL, writer, &wrc);
    pthread_join(tw, NULL);
    pthread_join(tr[0], NULL);
    pthread_join(tr[1], NULL);
    int status;
    waitpid(pid, &status, 0);
    CHECK(wrc == 0, "writer failed: %d", wrc);
    CHECK(!rs[0].err[0] && !rs[1].err[0], "reader: %s%s", rs[0].err, rs[1].err);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "forked reader status %d", status);
    CHECK(rs[0].views > 1 && rs[1].views > 1, "readers saw only %ld/%ld views", rs[0].views, rs[1].views);
    printf("# thread readers: %ld and %ld views, %ld and %ld sequence checks\n", rs[0].views, rs[1].views,
           rs[0].checked, rs[1].checked);
    TAP_END();
    slim_store_close(rst);
    return tap_done();
}
