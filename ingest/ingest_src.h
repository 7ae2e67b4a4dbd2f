/*
 * ingest_src.h — private: an input file as a stream of batches (source.c).
 */
#ifndef SLIM_INGEST_SRC_H
#define SLIM_INGEST_SRC_H

#include <stdio.h>
#include "ingest.h"

/*
 * The input content hash, built block by block (source.c has the
 * definition; slim_file_hash and slim_hash_bytes are its one-call forms).
 * Over a mapping of the file, for each batch of rows: open a window on the
 * blocks wholly inside its rows (slim_fhash_window); workers that read the
 * rows feed their bytes as they go (slim_fhash_feed: a block of the window
 * that a worker holds from its first byte to its last is digested by that
 * worker, each by at most one), then, once the batch's workers are done,
 * the blocks up to the batch's end are folded in order (slim_fhash_fold:
 * the missing ones digested from the mapping, or read from the file with
 * slim_fhash_use_fd).  Several windows may be open at once (batches being
 * worked on while the one before them is folded): their digests share a
 * ring sized by slim_fhash_reserve.  slim_fhash_final digests and folds what is
 * left, so the hash is complete however far the ingest got.  Memory: 17
 * bytes per 64 KiB of the ring, never per file.
 */
#define SLIM_HASH_BLOCK 65536u
struct XXH3_state_s;
typedef struct slim_fhash {
    const uint8_t *map;        /* the bytes [len], or NULL (fed by slim_fhash_stream) */
    uint64_t len, nblk;        /* bytes, blocks */
    uint64_t folded;           /* blocks [0, folded) are in st */
    uint8_t (*dig)[16];        /* [cap] ring: block i's digest at i % cap */
    uint8_t *have;             /* [cap] 1: that digest is set */
    size_t cap;
    uint64_t wlo, whi;         /* the last window opened: blocks [wlo, whi) */
    struct XXH3_state_s *st;   /* XXH3-128 over d_0 ‖ d_1 ‖ … */
    int fd;                    /* >= 0: missing blocks are pread from it, not mapped */
    uint8_t *blk;              /*   one block's bytes, read from fd or streamed */
    size_t sfill;              /* slim_fhash_stream: bytes of the block being filled */
    int failed;                /*   a block could not be read: no hash */
} slim_fhash;

typedef struct slim_src {
    const char *path;
    int fmt;                   /* SLIM_FMT_* (never AUTO) */
    /* tensors */
    slim_tensors ts;
    const slim_tensor *ids, *logits, *tk_ids, *tk_vals, *lengths, *mask;
    uint64_t N, T, next;       /* sequences, padded length, next to read */
    uint32_t W;                /* row width: V (dense) or K (sparse) */
    /* jsonl */
    FILE *f;
    int from_stdin;            /* "-": f is stdin, hashed as it is read: */
    slim_fhash sh;             /*   its hash (slim_fhash_stream) */
    int at_eof;                /*   all of it read */
    char *line; size_t linecap;
    long lineno;
    /* lines parsed in parallel, each into its own small batch */
    char **lv; size_t *lvcap; size_t *lvlen; long *lvno; int *lvrc;
    slim_batch *lb;
    char (*lerr)[400];
    struct lpool *lp;          /*   by these helper threads (source.c), or NULL */
    uint32_t max_k;
    uint64_t done_bytes;
    /* what the input says */
    int dense;                 /* dense logits to sparsify */
    int rows_fd;               /* dense: the logits' file (of ts.fd) */
    const uint8_t *rows_map;   /*   and its mapping (file offset 0) */
    int is_logprob;            /* values are log-probs (lse 0) */
    uint32_t V;                /* logit width when the input fixes it, else 0 */
    uint8_t *ebuf; size_t ebufcap;  /* tokens / lengths / mask of a sequence, pread */
} slim_src;

/* Bytes [off, off + n) of fd into buf, pread until done: the count read,
 * fewer on an error (errno set) or at the end of the file (errno 0). */
size_t slim_pread_full(int fd, void *buf, size_t n, uint64_t off);

int slim_src_open(slim_src *s, const char *path, int fmt, char *err, size_t cap);
int slim_src_add_npy(slim_src *s, const char *path, char *err, size_t cap);
/* After open (and npy adds): check tensors fit together; sets dense/V. */
int slim_src_layout(slim_src *s, char *err, size_t cap);
/* Append whole sequences until the batch holds >= max_pos positions or the
 * input ends (*eof).  On error the batch keeps the sequences before it. */
int slim_src_fill(slim_src *s, uint32_t V, size_t max_pos, slim_batch *b, int *eof,
                  char *err, size_t cap);
void slim_src_close(slim_src *s);


/* Blocks [lo, hi) that workers may digest for one batch. */
typedef struct slim_fhash_win { uint64_t lo, hi; } slim_fhash_win;

/* A worker's run of consecutive bytes: the next byte it will feed, the
 * block it holds the start of (its digest so far in st), its window. */
typedef struct slim_fhash_run {
    uint64_t at;
    uint64_t blk;              /* UINT64_MAX: none */
    slim_fhash_win win;
    void *st;                  /* an XXH3 state (source.c picks the build) */
} slim_fhash_run;

/* 0 or SLIM_ENOMEM.  map[len] must stay mapped until _final. */
int slim_fhash_init(slim_fhash *h, const void *map, uint64_t len);
/* Read the blocks no worker digested from fd (open on the mapped file,
 * until _final) rather than through the mapping: the hash then never maps
 * the file's pages (a fold reading through the mapping left ~10 % of a
 * dense file resident, large page-cache folios mapped whole), and a file
 * that shrank under the ingest leaves the hash unknown instead of raising
 * SIGBUS.  0 or SLIM_ENOMEM. */
int slim_fhash_use_fd(slim_fhash *h, int fd);
/* A ring for up to `windows` windows of up to n blocks not yet folded: 0
 * or SLIM_ENOMEM.  Before the first window. */
int slim_fhash_reserve(slim_fhash *h, uint64_t n, unsigned windows);
/* The window of a batch whose rows are bytes [lo, hi) into *w: 0, or 1
 * when the workers are to digest nothing of it (it does not begin after
 * the last window, or it and every block not folded yet do not fit the
 * ring, or it holds no whole block): the fold then digests its blocks.
 * Windows are opened on one thread; the windows before may still be fed by
 * workers and folded, in order, on another (they touch other ring slots;
 * the fold publishes how far it got with release, read here with
 * acquire). */
int slim_fhash_window(slim_fhash *h, uint64_t lo, uint64_t hi, slim_fhash_win *w);
/* A run in window w starting at byte `at` (a worker's sequence): 0 or
 * SLIM_ENOMEM. */
int slim_fhash_run_start(slim_fhash_run *r, const slim_fhash_win *w, uint64_t at);
/* The run's next n bytes, p: digest the window's blocks they complete.
 * Runs of different workers must not overlap. */
void slim_fhash_feed(slim_fhash *h, slim_fhash_run *r, const uint8_t *p, size_t n);
void slim_fhash_run_release(slim_fhash_run *r);
/* Fold the blocks ending by byte `end` in order: those of window w (NULL:
 * none) that a worker digested, the others digested here. */
void slim_fhash_fold(slim_fhash *h, uint64_t end, const slim_fhash_win *w);
/* Fold every block left, then the length: "xxh3-128x64k:" + 32 hex, and
 * 0; or, when a block could not be read from the fd, "unknown" and
 * SLIM_EIO. */
int slim_fhash_final(slim_fhash *h, char hex[SLIM_FILE_HASH_CAP]);
/* A stream read once (standard input), on slim_fhash_init(h, NULL, 0): its
 * next n bytes, each block folded when it is full (the last at _final). */
void slim_fhash_stream(slim_fhash *h, const void *p, size_t n);
void slim_fhash_release(slim_fhash *h);

#endif
