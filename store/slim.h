/*
 * slim.h — the public contract of libslim, the store of sparse teacher logits.
 *
 * A store is one directory:
 *   meta.sqlite   SQLite (WAL): teachers, datasets, sequences (with their
 *                 tokens), ingest runs, snapshots, training runs
 *   logits/       an LMDB environment holding the sparse records, several
 *                 positions packed per value (docs/FORMAT.md)
 *   lock          advisory lock file: one writer at a time
 *
 * Conventions (LMDB / SQLite style):
 *   - Handles are opaque.  Every function returns an int: 0 (SLIM_OK) on
 *     success or a negative SLIM_E* code; the detail of the last error is kept
 *     on the store handle and read with slim_errmsg().  The library never
 *     exits, never prints.
 *   - Destructors (slim_*_close / _free / _end / _abort) accept NULL.
 *   - A pointer returned by the library is owned by the library and lives as
 *     long as the text of the function says; nothing is returned that the
 *     caller must free unless the function says so.
 *   - A store handle may be shared by threads only for slim_read_* calls, each
 *     thread with its own slim_reader.  At most one slim_writer per store, and
 *     one writer across processes (the lock file).  Several handles on one
 *     store in a process are fine (they share one LMDB environment); a child
 *     after fork() must open its own handles and not touch inherited ones.
 *
 * Position convention (Hugging Face): the distribution stored at position i
 * is the teacher's prediction of token t[i+1] given t[0..i].  A sequence of T
 * tokens stores npos <= T positions 0..npos-1.
 */
#ifndef SLIM_H
#define SLIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLIM_VERSION_STRING "0.1.0"

/* ---------------------------------------------------------------- errors */

#define SLIM_OK 0
#define SLIM_ERROR -1      /* generic failure (see slim_errmsg) */
#define SLIM_EIO -2        /* I/O error from the OS, LMDB or SQLite */
#define SLIM_ECORRUPT -3   /* a record or metadata row fails its checks */
#define SLIM_ENOTFOUND -4  /* no such dataset / sequence / position / snapshot */
#define SLIM_EBUSY -5      /* another writer holds the store */
#define SLIM_EINVAL -6     /* invalid argument or input data (NaN, id >= V, ...) */
#define SLIM_EVERSION -7   /* store written by a newer format version */
#define SLIM_ENOMEM -8
#define SLIM_EEXIST -9     /* name already used */
#define SLIM_EMISMATCH -10 /* teacher / dataset metadata disagree */
#define SLIM_EREADONLY -11 /* write attempted on a read-only handle */
#define SLIM_ERANGE -12    /* caller buffer too small; the needed size is reported */
#define SLIM_ENOSTORE -13  /* directory is not a slim store */
#define SLIM_EINTR -14     /* stopped on request (an interrupt); what was committed stays */

/* A static English text for a code ("no such dataset", ...). */
const char *slim_strerror(int rc);

/* ----------------------------------------------------------- store handle */

typedef struct slim_store slim_store;

#define SLIM_OPEN_CREATE 0x1  /* create the store if the directory has none */
#define SLIM_OPEN_RDONLY 0x2  /* no writer may be started on this handle */
#define SLIM_OPEN_NOWAIT 0x4  /* slim_write_begin fails with SLIM_EBUSY instead of waiting */

/*
 * Open the store in directory `dir` (created with SLIM_OPEN_CREATE).  Applies
 * pending schema migrations (not with SLIM_OPEN_RDONLY) and refuses a store
 * whose format version is newer than this library (SLIM_EVERSION), without
 * touching it.  Crash recovery (docs/FORMAT.md, "Commit protocol") runs when
 * the first writer starts, never on a read-only handle.  Opening never waits
 * for another process's writer (except to apply a migration).  An
 * interrupted creation (killed during init) is completed by the next
 * read-write open.
 * On failure *out is still set to a handle that only carries the error message
 * (read it with slim_errmsg, then slim_store_close it), or NULL when out of
 * memory.
 */
int slim_store_open(slim_store **out, const char *dir, unsigned flags);
void slim_store_close(slim_store *st);

/* Detail of the last error on this handle, e.g.
 * "dataset 'web': vocab size 32000 differs from teacher's 32064".
 * Valid until the next call on the handle.  Never NULL. */
const char *slim_errmsg(const slim_store *st);

/* The store's directory, as given to slim_store_open. */
const char *slim_store_path(const slim_store *st);

/* The metadata database.  Tools may run read queries on it (slim-query
 * registers its virtual tables here).  The handle is owned by the store and
 * lives until slim_store_close.  Writes must go through a slim_writer. */
struct sqlite3 *slim_store_sqlite(slim_store *st);

/* Format version of this library and of the opened store. */
int slim_format_version(void);
int slim_store_format_version(const slim_store *st);

/* -------------------------------------------------------- distributions */

/* What a dataset's records hold. */
#define SLIM_KIND_LOGITS 1   /* vals are logits (or log-probs with lse = 0) */
#define SLIM_KIND_SAMPLED 2  /* vals are counts (integers) out of n_samples draws */

/*
 * One position's sparse distribution.  The caller owns ids and vals (and their
 * capacity).  On write: entries in any order, ids distinct and < V, vals
 * finite or -INFINITY (never NaN / +Inf).  On read: entries are returned in
 * rank order (most probable first; ties by ascending id) unless
 * SLIM_READ_ID_ORDER is given.
 *
 * lse is the teacher's full-vocabulary log-normaliser logsumexp(all V logits)
 * when known (dense input), 0 for log-probability input, NaN when unknown (a
 * sparse input that gave logits without normaliser).  The teacher's true
 * probability of an entry is exp(val - lse).
 */
typedef struct slim_dist {
    uint32_t k;          /* number of entries */
    uint32_t n_samples;  /* SLIM_KIND_SAMPLED: total draws N; else 0 */
    float lse;
    uint32_t *ids;       /* [k] token ids */
    float *vals;         /* [k] logits / log-probs / counts */
} slim_dist;

/*
 * Per-position statistics, the one definition every tool uses (slim-query's
 * entropy and tail columns, the stats stored in each chunk).  Probabilities
 * are exp(val - lse) for LOGITS, with lse = logsumexp of the stored values
 * when d->lse is NaN (the stored entries are then the whole distribution:
 * tail 0); count / n_samples for SAMPLED.  The tail (the mass of the ids not
 * stored) counts as one bucket in the entropy.  Computed in double, rounded
 * to float, within 1e-6 relative of the exact formula; O(k), no
 * allocation.  The sums follow the entries' order, so another order may
 * differ in the last bit: the figures stored in chunks (and returned by
 * slim_read_pstats) are those of the entries in ascending id order.
 */
typedef struct slim_pstat {
    float entropy;    /* nats: the stored entries plus the tail mass as one bucket */
    float tail_mass;  /* 1 - sum of the stored probabilities, clamped to [0, 1]; 0 when the normaliser is unknown (lse NaN) */
} slim_pstat;

void slim_dist_pstat(const slim_dist *d, int kind, slim_pstat *out);

/* Storage precision of a dataset's values. */
#define SLIM_PREC_LOGPROB 1  /* |stored log-prob - input log-prob| <= eps (nats) */
#define SLIM_PREC_PROB 2     /* |stored prob - input prob| <= eps */
#define SLIM_PREC_LOSSLESS 3 /* bit-exact float32 values back */

typedef struct slim_precision {
    int mode;    /* SLIM_PREC_* */
    double eps;  /* bound for LOGPROB / PROB; ignored for LOSSLESS */
} slim_precision;

/* Parse "logprob:0.01", "prob:1e-4", "lossless" (and "logprob" = 0.01,
 * "prob" = 1e-4).  Returns SLIM_EINVAL on anything else. */
int slim_precision_parse(const char *spec, slim_precision *out);
/* Format into buf (canonical spelling, as recorded in metadata). */
int slim_precision_format(const slim_precision *p, char *buf, size_t cap);

/* ------------------------------------------------------ teachers/datasets */

#define SLIM_SOURCE_LOGITS 1
#define SLIM_SOURCE_LOGPROBS 2

/* What the first ingest into a dataset fixes.  Strings are borrowed. */
typedef struct slim_teacher {
    const char *name;            /* e.g. "Qwen2.5-7B"; never NULL */
    uint32_t vocab_size;         /* V, the logit width */
    const char *tokenizer_hash;  /* hex digest of the tokenizer, or NULL */
    double temperature;          /* capture temperature (1.0 usual) */
    int source;                  /* SLIM_SOURCE_* */
} slim_teacher;

typedef struct slim_dataset_info {
    int64_t id;
    const char *name;
    int64_t teacher_id;
    slim_teacher teacher;
    int kind;                  /* SLIM_KIND_* */
    const char *sparsifier;    /* spec as recorded, e.g. "topfrac:0.05" */
    slim_precision precision;
    int64_t sequences;         /* live sequences */
    int64_t positions;         /* live positions */
    int64_t entries;           /* stored (id, value) pairs of live positions */
    int64_t record_bytes;      /* bytes of LMDB values owned by the dataset */
    int64_t next_seq;          /* the next sequence number to be assigned */
} slim_dataset_info;

/*
 * Look up a dataset by name.  Strings in *out live until the next call on the
 * store handle that fills a slim_dataset_info.  SLIM_ENOTFOUND if absent.
 */
int slim_dataset_get(slim_store *st, const char *name, slim_dataset_info *out);

/* Number of datasets, and the i-th (by id order), for listings. */
int slim_dataset_count(slim_store *st, int *n);
int slim_dataset_at(slim_store *st, int i, slim_dataset_info *out);

/* ------------------------------------------------------------- sequences */

typedef struct slim_seq_info {
    int64_t dataset;
    int64_t seq;             /* number inside the dataset, from 0 */
    const char *ext_id;      /* id from the input, or NULL */
    uint32_t ntokens;        /* T */
    uint32_t npos;           /* stored positions 0..npos-1 (npos <= T) */
    uint8_t hash[16];        /* content hash (XXH3-128, docs/FORMAT.md) */
    int deleted;             /* removed from the live view (dedup) */
    int64_t ingest_run;      /* the run that added it */
    int64_t prefix_seq;      /* positions 0..prefix_len-1 shared with this */
    int64_t prefix_dataset;  /*   (dataset, seq); -1 when nothing is shared */
    uint32_t prefix_len;
} slim_seq_info;

/* ------------------------------------------------------------------ reads */

typedef struct slim_reader slim_reader;

/*
 * A consistent read view of the whole store (metadata and records agree),
 * for one thread.  Readers run concurrently with a writer and never see a
 * partly written sequence.  slim_read_refresh moves the view forward to the
 * latest commit.  slim_read_end releases it.
 */
int slim_read_begin(slim_store *st, slim_reader **out);
int slim_read_refresh(slim_reader *r);
void slim_read_end(slim_reader *r);

/* Sequence metadata; ext_id lives until the next call on this reader.
 * Deleted sequences are found too (info.deleted = 1); SLIM_ENOTFOUND when
 * the number was never committed (or not yet, in this reader's view). */
int slim_read_seq(slim_reader *r, int64_t dataset, int64_t seq, slim_seq_info *out);

/* Copy the tokens into buf[cap]; *ntokens = T.  SLIM_ERANGE if cap < T. */
int slim_read_tokens(slim_reader *r, int64_t dataset, int64_t seq,
                     uint32_t *buf, uint32_t cap, uint32_t *ntokens);

#define SLIM_READ_ID_ORDER 0x1  /* entries by ascending id (faster: no sort) */

/*
 * Decode positions [pos, pos+n) of a sequence into out[0..n).  The ids/vals
 * of every out[i] are carved from the caller's ids[cap] and vals[cap], one
 * after another.  SLIM_ERANGE if the entries need more than cap (*need, when
 * not NULL, gets the total); SLIM_ENOTFOUND if the range passes npos;
 * SLIM_ECORRUPT (with the record's key in slim_errmsg) on a bad checksum or
 * an undecodable record.  No allocation on this path once the reader is warm.
 * Positions below the sequence's prefix_len are read from the prefix owner
 * (one hop).  A deleted sequence whose records were freed (nothing kept it)
 * gives SLIM_ENOTFOUND; a deleted one kept for a snapshot reads normally.
 * Cost: one LMDB cursor search per owner touched (two when pos falls inside
 * a chunk) plus one step per further chunk; see slim_read_record_count.
 */
int slim_read_positions(slim_reader *r, int64_t dataset, int64_t seq,
                        uint32_t pos, uint32_t n, slim_dist *out,
                        uint32_t *ids, float *vals, size_t cap, size_t *need,
                        unsigned flags);

/*
 * slim_dist_pstat of positions [pos, pos+n) of a sequence into out[0..n),
 * bitwise as computed from the values slim_read_positions returns with
 * SLIM_READ_ID_ORDER (prefix references resolved the same way, same errors),
 * but without handing the entries back: chunks that store their statistics (format version 2,
 * docs/FORMAT.md) are answered without decoding a single entry.  No
 * allocation once the reader is warm.
 */
int slim_read_pstats(slim_reader *r, int64_t dataset, int64_t seq,
                     uint32_t pos, uint32_t n, slim_pstat *out);

/* Records touched (LMDB gets) by this reader since it began: for tests and
 * for the query planner's honesty checks. */
uint64_t slim_read_record_count(const slim_reader *r);

/* ------------------------------------------------------------------ writes */

typedef struct slim_writer slim_writer;

/*
 * Become the store's single writer (waits for another process's writer to
 * finish, or SLIM_EBUSY with SLIM_OPEN_NOWAIT; SLIM_EREADONLY on a read-only
 * handle; SLIM_EBUSY if this handle already has a writer).  Runs crash
 * recovery first.  All writes until slim_write_commit become visible
 * atomically (metadata and records together) or not at all; slim_write_abort
 * drops them.  After commit or abort the writer is freed (even when commit
 * fails).  slim_write_commit returns 0 only once the batch is durable: that
 * is the acknowledgement a crash never takes back (docs/STORE.md).
 * A call that fails validation (SLIM_EINVAL, SLIM_EMISMATCH, SLIM_ENOTFOUND,
 * SLIM_EEXIST) changes nothing and the batch goes on; a failure after a call
 * started changing the batch (I/O, out of memory) poisons it: later calls and
 * the commit fail, and the batch must be aborted.
 */
int slim_write_begin(slim_store *st, slim_writer **out);
int slim_write_commit(slim_writer *w);
void slim_write_abort(slim_writer *w);

/*
 * Create the dataset `name` for a teacher, or check that the teacher, kind,
 * sparsifier and precision agree with the dataset's (SLIM_EMISMATCH with a
 * message saying what differs).  *id gets the dataset id.
 */
int slim_write_dataset(slim_writer *w, const char *name, const slim_teacher *t,
                       int kind, const char *sparsifier,
                       const slim_precision *prec, int64_t *id);

/* An ingest run: one invocation of a tool that adds data. */
int slim_write_run_begin(slim_writer *w, int64_t dataset, const char *tool,
                         const char *args_json, int64_t *run_id);
int slim_write_run_input(slim_writer *w, int64_t run_id, const char *path,
                         const char *content_hash, int64_t added,
                         int64_t skipped, int64_t refused);
int slim_write_run_end(slim_writer *w, int64_t run_id, const char *status,
                       int64_t added, int64_t skipped, int64_t refused);

/* Optional prefix sharing for slim_write_seq (see slim_write_find_prefix). */
typedef struct slim_prefix_ref {
    int64_t dataset, seq;  /* an existing sequence of the same teacher */
    uint32_t len;          /* positions 0..len-1 are taken from it */
} slim_prefix_ref;

/*
 * Append one sequence to a dataset: tokens[T] and the distributions of
 * positions 0..npos-1 (dists[npos]).  With a prefix ref, positions
 * 0..len-1 are not written: the referenced sequence's records serve them (its
 * values are kept, the new ones dropped).  The reference must name a
 * sequence of the same teacher and kind whose tokens agree on 0..len-1
 * (SLIM_EINVAL otherwise); len is capped at both sequences' npos.  A
 * reference to a sequence that itself borrows is flattened to that
 * sequence's owner, which may shorten it: pass the full dists[npos] —
 * positions the shortened reference no longer covers are read from dists.
 * Validates everything first (tokens and ids < V, ids distinct within a
 * position, k <= V, no NaN / +Inf value, lse finite or NaN, npos <= T;
 * LOGITS: n_samples = 0; SAMPLED: counts positive integers summing to
 * n_samples) and on failure changes nothing, returning SLIM_EINVAL with the
 * offending position in slim_errmsg ("position 4: id 70000 >= vocab size
 * 32000").  *seq gets the new sequence number (next_seq; numbers are never
 * reused).  Visible to readers at commit.  The content hash is computed from
 * the stored (decoded) values.
 */
int slim_write_seq(slim_writer *w, int64_t dataset, int64_t run_id,
                   const char *ext_id, const uint32_t *tokens, uint32_t T,
                   const slim_dist *dists, uint32_t npos,
                   const slim_prefix_ref *prefix, int64_t *seq);

/*
 * Prepared sequences: slim_write_seq split in two so that the expensive half
 * (validation, record encoding and the content hash)
 * runs on any thread, outside the write transaction, and the single writer
 * only numbers the sequence, appends the ready records and adds its
 * metadata rows.  slim_write_seq itself is prepare + write_prepared.
 *
 *   per worker thread:  slim_preparer_new(&pr); then per sequence
 *                       slim_seq_prepare(pr, kind, &prec, V, tokens, T,
 *                                        dists, npos, p[i]);
 *   on the writer:      slim_write_prepared(w, ds, run, ext_id, p[i], NULL, &seq);
 *                       in input order (sequence numbers follow call order).
 *
 * A slim_preparer holds one thread's reusable scratch (codec, bitmaps,
 * decode buffers): one per thread, never shared.  A slim_prepared holds one
 * sequence's encoded records, reused from sequence to sequence (no
 * allocation once its buffers have grown).  A slim_prepared may be filled on
 * one thread and written on another (hand it over with the usual memory
 * ordering: a mutex, a thread join, an OpenMP barrier).
 */
typedef struct slim_preparer slim_preparer;
typedef struct slim_prepared slim_prepared;

int slim_preparer_new(slim_preparer **out);
void slim_preparer_free(slim_preparer *pr);
int slim_prepared_new(slim_prepared **out);
void slim_prepared_free(slim_prepared *p);

/*
 * Validate and encode one sequence for a dataset of this kind, precision and
 * vocabulary size V (those of slim_dataset_info; slim_write_prepared refuses
 * a prepared sequence whose three differ from the dataset's with
 * SLIM_EMISMATCH).  The checks are slim_write_seq's; on failure returns
 * SLIM_EINVAL (or SLIM_ENOMEM; SLIM_ECORRUPT when SLIM_VERIFY_ENCODE is set in
 * the environment and the codec's output does not decode to the values it
 * was hashed from, docs/STORE.md) and slim_prepared_errmsg(out) names the position ("position 4: id
 * 70000 >= vocab size 32000").  Records are encoded as an owner's (from
 * position 0).  tokens[T] and dists[npos] are borrowed, not copied: they must
 * stay valid and unchanged until slim_write_prepared with `out` returns
 * (a prefix reference may make the writer encode them again).  Overwrites
 * whatever `out` held.  Thread-safe for distinct preparers and outputs.
 */
int slim_seq_prepare(slim_preparer *pr, int kind, const slim_precision *prec,
                     uint32_t V, const uint32_t *tokens, uint32_t T,
                     const slim_dist *dists, uint32_t npos, slim_prepared *out);

/* The result of the last slim_seq_prepare into p: its return code, and its
 * message ("" when it succeeded).  Valid until the next prepare into p. */
int slim_prepared_status(const slim_prepared *p);
const char *slim_prepared_errmsg(const slim_prepared *p);

/* Stored record bytes and entries of a successfully prepared sequence (as
 * an owner: before any prefix sharing). */
int64_t slim_prepared_bytes(const slim_prepared *p);
int64_t slim_prepared_entries(const slim_prepared *p);

/*
 * Append a prepared sequence: exactly what slim_write_seq(w, dataset, run_id,
 * ext_id, tokens, T, dists, npos, prefix, seq) does with the tokens and
 * distributions p was prepared from — same records, content hash, rows and
 * errors — but without encoding on this thread.  A p whose preparation failed
 * returns that failure again (same code, message in slim_errmsg) and changes
 * nothing.  With a prefix reference, the positions from the (flattened)
 * reference's len on are encoded again here on the writer (chunks start at
 * the first owned position), so a sharing sequence costs about what it costs
 * in slim_write_seq.  p is not changed and may be prepared again once this
 * returns.
 */
int slim_write_prepared(slim_writer *w, int64_t dataset, int64_t run_id,
                        const char *ext_id, const slim_prepared *p,
                        const slim_prefix_ref *prefix, int64_t *seq);

/* Find a live sequence in `dataset` with exactly these tokens (ingest-time
 * dedup).  0 and *seq set if found, SLIM_ENOTFOUND otherwise. */
int slim_write_find_tokens(slim_writer *w, int64_t dataset,
                           const uint32_t *tokens, uint32_t T, int64_t *seq);

/* Find the sequence of the same teacher and kind (any dataset) sharing the
 * longest token prefix with tokens[0..T) whose stored positions cover it;
 * fills *ref (len = number of shareable positions, <= T; the writer caps it
 * at the new sequence's npos) or SLIM_ENOTFOUND.  Only owners (sequences
 * that borrow nothing) are candidates, found through an index of prefix
 * hashes at 16, 32, 64, ... tokens and at the full length: shorter common
 * prefixes than 16 tokens are found only for identical sequences.  Sees the
 * writer's own uncommitted sequences. */
int slim_write_find_prefix(slim_writer *w, int64_t dataset,
                           const uint32_t *tokens, uint32_t T,
                           slim_prefix_ref *ref);

/* Remove a sequence from its dataset's live view (dedup).  Its records are
 * freed only when no snapshot and no other sequence reference them;
 * *bytes_freed (may be NULL) gets the LMDB bytes actually reclaimed (the
 * records go at commit).  Deleting the last borrower of a deleted prefix
 * owner frees the owner's records too (counted).  SLIM_ENOTFOUND if there
 * is no such sequence or it is already deleted. */
int slim_write_delete_seq(slim_writer *w, int64_t dataset, int64_t seq,
                          int64_t *bytes_freed);

/* Import the teacher's vocabulary for display: pieces[i] is the text of
 * token ids[i] (UTF-8, byte-level BPE markers already decoded; may contain
 * any bytes but NUL).  Replaces an earlier import for the same teacher.
 * Stored in the metadata table `vocab` (schema/), keyed by teacher. */
int slim_write_vocab(slim_writer *w, int64_t dataset, uint32_t n,
                     const uint32_t *ids, const char *const *pieces,
                     const char *tokenizer_hash);

/* The metadata handle inside this writer's transaction, for tools that keep
 * their own tables (e.g. training runs).  Changes commit with the writer.
 * It is the store's handle (slim_store_sqlite): do not COMMIT/ROLLBACK on
 * it; use SAVEPOINTs for sub-transactions. */
struct sqlite3 *slim_writer_sqlite(slim_writer *w);

/* -------------------------------------------------------------- snapshots */

typedef struct slim_snapshot slim_snapshot;

typedef struct slim_member {
    int64_t dataset, seq;
    int split;            /* SLIM_SPLIT_TRAIN or SLIM_SPLIT_VALID */
    uint8_t hash[16];     /* the sequence's content hash when snapshotted */
} slim_member;

#define SLIM_SPLIT_TRAIN 0
#define SLIM_SPLIT_VALID 1

/*
 * Create snapshot `name` of the live sequences of datasets[0..n) (in dataset
 * order, then sequence order).  valid_frac in [0,1): the fraction assigned to
 * the validation split, chosen by the sequence's content hash (so the same
 * sequence always lands in the same split: valid when the hash's first 8
 * bytes, big-endian, over 2^64 are below valid_frac).  SLIM_EEXIST if the
 * name is taken, SLIM_ENOTFOUND for an unknown dataset, SLIM_EINVAL for a
 * dataset listed twice.  The snapshot hash is SHA-256 over the members'
 * content hashes and splits in order (docs/FORMAT.md).  Members' records are
 * never freed afterwards.
 */
int slim_write_snapshot(slim_writer *w, const char *name,
                        const char *const *datasets, int n, double valid_frac);

/*
 * Open a snapshot for reading.  Checks that every member still exists with
 * the recorded content hash and that the snapshot hash matches
 * (SLIM_ECORRUPT otherwise).  Members live until slim_snapshot_close.
 */
int slim_snapshot_open(slim_store *st, const char *name, slim_snapshot **out);
void slim_snapshot_close(slim_snapshot *s);
const char *slim_snapshot_name(const slim_snapshot *s);
void slim_snapshot_hash(const slim_snapshot *s, uint8_t hash[32]);
/* hex of the hash: 64 characters + NUL */
const char *slim_snapshot_hash_hex(const slim_snapshot *s);
size_t slim_snapshot_size(const slim_snapshot *s);
const slim_member *slim_snapshot_members(const slim_snapshot *s);

/* ------------------------------------------------------------------ verify */

/* Called once per problem found: a one-line description naming the record
 * or row ("dataset 'web' seq 17 positions 64..95: checksum mismatch"). */
typedef void (*slim_verify_cb)(void *ctx, const char *problem);

/* Walk everything: metadata consistency, every sequence complete, every
 * record decodes with a matching checksum, content hashes match, no orphan
 * records, dataset counters, prefix references, snapshots.
 * *nproblems = problems found (0 = the store is sound).  Runs on one
 * consistent read view and changes nothing, so it may run beside a writer;
 * the leftovers of an interrupted commit that the next writer's recovery
 * removes are not problems.  Returns nonzero only when it could not run. */
int slim_store_verify(slim_store *st, slim_verify_cb cb, void *ctx,
                      int64_t *nproblems);

/* --------------------------------------------------------------- utilities */

/* XXH3-128 content hash of tokens + decoded distributions, as stored
 * (docs/FORMAT.md, "Content hash").  Entries may come in any order (they
 * are hashed in id order).  Equal to slim_seq_info.hash when given the
 * values a reader gets back. */
void slim_content_hash(const uint32_t *tokens, uint32_t T,
                       const slim_dist *dists, uint32_t npos, uint8_t out[16]);

/* Bytes used on disk by the store (LMDB data + SQLite files). */
int slim_store_file_bytes(slim_store *st, int64_t *bytes);

#ifdef __cplusplus
}
#endif
#endif /* SLIM_H */
