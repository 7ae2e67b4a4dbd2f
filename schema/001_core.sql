-- 001_core.sql — the core metadata of a slim store (meta.sqlite).
-- Applied once, in a transaction, by slim_store_open; PRAGMA user_version then
-- holds the number of migrations applied (= the store's format version).
-- Every table below is exposed read-only to users by slim-query, so column
-- names are meant to be read.  Booleans are 0/1 integers; times are UTC text
-- "YYYY-MM-DDTHH:MM:SSZ".

-- Store-wide key/value facts.
--   format_version  format version that created the store (informational; the
--                   authoritative schema version is PRAGMA user_version)
--   gen             commit generation of the metadata: bumped by every write
--                   commit; the LMDB environment keeps its own copy and the
--                   two are compared by readers and by crash recovery
--                   (docs/STORE.md, "Commit protocol")
--   created_at      when `slim-store init` (or the first open) made the store
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO meta(key, value) VALUES ('format_version', '1'), ('gen', '0'),
    ('created_at', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));

-- The models whose outputs are stored.
CREATE TABLE teachers (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,   -- e.g. 'Qwen2.5-7B'
    vocab_size     INTEGER NOT NULL,       -- V, the logit width (ids < V)
    tokenizer_hash TEXT,                   -- hex digest of the tokenizer, NULL if unknown
    temperature    REAL NOT NULL,          -- capture temperature
    source         TEXT NOT NULL CHECK (source IN ('logits', 'logprobs'))
);

-- Named, growing collections of sequences of one teacher.
CREATE TABLE datasets (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused
    name         TEXT NOT NULL UNIQUE,
    teacher_id   INTEGER NOT NULL REFERENCES teachers(id),
    kind         TEXT NOT NULL CHECK (kind IN ('logits', 'sampled')),
    sparsifier   TEXT NOT NULL,        -- spec as given at ingest, e.g. 'topfrac:0.05'
    precision    TEXT NOT NULL,        -- canonical spec, e.g. 'logprob:0.01', 'lossless'
    next_seq     INTEGER NOT NULL DEFAULT 0,  -- next sequence number; numbers are never reused
    sequences    INTEGER NOT NULL DEFAULT 0,  -- live (not deleted) sequences
    positions    INTEGER NOT NULL DEFAULT 0,  -- stored positions of live sequences
    entries      INTEGER NOT NULL DEFAULT 0,  -- stored (id, value) pairs of live sequences
    record_bytes INTEGER NOT NULL DEFAULT 0,  -- bytes of LMDB values the dataset owns (not yet freed)
    created_at   TEXT NOT NULL
);

-- One row per sequence ever added (deleted ones stay, flagged).
CREATE TABLE sequences (
    dataset_id     INTEGER NOT NULL REFERENCES datasets(id),
    seq            INTEGER NOT NULL,   -- number inside the dataset, from 0, in ingest order
    ext_id         TEXT,               -- id from the input (JSONL "id", file:row, ...)
    ntokens        INTEGER NOT NULL,   -- T
    npos           INTEGER NOT NULL,   -- stored positions 0..npos-1 (npos <= T)
    entries        INTEGER NOT NULL,   -- stored (id, value) pairs over all npos positions
    record_bytes   INTEGER NOT NULL,   -- bytes of the LMDB values this sequence owns
    tokens         BLOB NOT NULL,      -- token ids, docs/FORMAT.md "Tokens blob"
    tokens_hash    INTEGER NOT NULL,   -- XXH3-64 of the tokens as u32 little-endian (signed)
    content_hash   BLOB NOT NULL,      -- 16 bytes, XXH3-128, docs/FORMAT.md "Content hash"
    deleted        INTEGER NOT NULL DEFAULT 0,  -- removed from the live view (dedup)
    purged         INTEGER NOT NULL DEFAULT 0,  -- its own records were freed from LMDB
    ingest_run     INTEGER REFERENCES ingest_runs(id),
    prefix_dataset INTEGER,            -- positions 0..prefix_len-1 are read from
    prefix_seq     INTEGER,            --   (prefix_dataset, prefix_seq); NULL when none
    prefix_len     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (dataset_id, seq)
);
CREATE INDEX sequences_tokens ON sequences(dataset_id, tokens_hash);
CREATE INDEX sequences_prefix ON sequences(prefix_dataset, prefix_seq)
    WHERE prefix_dataset IS NOT NULL;

-- Prefix index for slim_write_find_prefix: one row per (owner sequence,
-- length L) for L = 16, 32, 64, ... (powers of two from 16) below ntokens,
-- and for L = ntokens.  Only sequences that own all their records
-- (prefix_len = 0) are indexed: they are the only valid prefix targets.
-- Rows of a purged sequence are removed.  hash = XXH3-64 of tokens[0..L) as u32 little-endian (signed).
-- Matches are confirmed exactly against the tokens.
CREATE TABLE prefix_index (
    teacher_id INTEGER NOT NULL,
    len        INTEGER NOT NULL,
    hash       INTEGER NOT NULL,
    dataset_id INTEGER NOT NULL,
    seq        INTEGER NOT NULL
);
CREATE INDEX prefix_index_lookup ON prefix_index(teacher_id, len, hash);

-- One invocation of a tool that added data (slim-ingest, the built-in teacher).
CREATE TABLE ingest_runs (
    id          INTEGER PRIMARY KEY,
    dataset_id  INTEGER NOT NULL REFERENCES datasets(id),
    tool        TEXT NOT NULL,         -- e.g. 'slim-ingest 0.1.0'
    args        TEXT,                  -- the command line as a JSON array
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    status      TEXT NOT NULL DEFAULT 'running',  -- 'ok', 'partial', 'failed', ...
    added       INTEGER NOT NULL DEFAULT 0,       -- sequences added
    skipped     INTEGER NOT NULL DEFAULT 0,       -- duplicates skipped
    refused     INTEGER NOT NULL DEFAULT 0        -- malformed units rejected
);

-- The input files of a run.
CREATE TABLE ingest_inputs (
    run_id       INTEGER NOT NULL REFERENCES ingest_runs(id),
    path         TEXT NOT NULL,
    content_hash TEXT,                 -- 'xxh3-128x64k:' + 32 hex digits, docs/INGEST.md; 'directory' for an npy
                                       -- directory; stores from before 2026-12 hold 'xxh3-128:' (of the bytes)
    added        INTEGER NOT NULL DEFAULT 0,
    skipped      INTEGER NOT NULL DEFAULT 0,
    refused      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX ingest_inputs_run ON ingest_inputs(run_id);

-- Immutable named lists of sequences (what training reads).
CREATE TABLE snapshots (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    hash       TEXT NOT NULL,          -- 64 hex chars, docs/FORMAT.md "Snapshot hash"
    members    INTEGER NOT NULL,       -- number of member sequences
    valid      INTEGER NOT NULL,       -- of which in the validation split
    valid_frac REAL NOT NULL,          -- requested validation fraction
    datasets   TEXT NOT NULL,          -- the dataset names, comma-separated, in order
    created_at TEXT NOT NULL
);

-- Members of a snapshot, in order (ord from 0).
CREATE TABLE snapshot_members (
    snapshot_id  INTEGER NOT NULL REFERENCES snapshots(id),
    ord          INTEGER NOT NULL,
    dataset_id   INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    split        TEXT NOT NULL CHECK (split IN ('train', 'valid')),
    content_hash BLOB NOT NULL,        -- the sequence's content hash when snapshotted
    PRIMARY KEY (snapshot_id, ord)
);
CREATE INDEX snapshot_members_seq ON snapshot_members(dataset_id, seq);

-- Token texts of a teacher's vocabulary, for display (slim_write_vocab).
CREATE TABLE vocab (
    teacher_id INTEGER NOT NULL REFERENCES teachers(id),
    id         INTEGER NOT NULL,       -- token id
    piece      TEXT NOT NULL,          -- decoded text (may hold any byte but NUL)
    PRIMARY KEY (teacher_id, id)
) WITHOUT ROWID;

-- Records waiting to be freed from LMDB: a deletion commits these rows in
-- SQLite first, then deletes the records in LMDB, then clears the rows.
-- Crash recovery redoes whatever is listed (docs/STORE.md).
CREATE TABLE garbage (
    dataset_id INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (dataset_id, seq)
) WITHOUT ROWID;
