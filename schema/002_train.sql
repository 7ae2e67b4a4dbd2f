-- 002_train.sql — training runs of slim-train (docs/TRAIN.md, "Comparing runs").
-- Applied after 001_core.sql.  Times are ISO-8601 UTC text; hashes lowercase hex.

-- One invocation of `slim-train` (a resumed run is a new row naming its parent).
CREATE TABLE runs (
    id            INTEGER PRIMARY KEY,
    snapshot      TEXT NOT NULL,          -- snapshots.name
    snapshot_hash TEXT NOT NULL,          -- snapshots.hash at training time (64 hex)
    loss          TEXT NOT NULL,          -- ce | kd | slim | rskd
    tail          TEXT NOT NULL,          -- renorm | zero | ghost
    slim_weight   TEXT,                   -- text | printed (loss = slim), else NULL
    kd_weight     REAL,                   -- alpha (kd, rskd), else NULL
    temperature   REAL NOT NULL,
    seed          INTEGER NOT NULL,
    threads       INTEGER NOT NULL,
    blas          TEXT NOT NULL,          -- OpenBLAS variant loaded, e.g. "openmp"
    steps         INTEGER NOT NULL,       -- total optimizer steps requested
    params        INTEGER NOT NULL,       -- student parameter count
    config        TEXT NOT NULL,          -- every setting, JSON object
    code_version  TEXT NOT NULL,          -- SLIM_VERSION_STRING [+ git describe]
    resumed_from  TEXT,                   -- sha256 of the checkpoint resumed, or NULL
    parent_run    INTEGER REFERENCES runs(id),
    started_at    TEXT NOT NULL,
    ended_at      TEXT,
    status        TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'interrupted')),
    final_step    INTEGER
);

-- Metrics every --log-every optimizer steps.
CREATE TABLE run_metrics (
    run_id        INTEGER NOT NULL REFERENCES runs(id),
    step          INTEGER NOT NULL,       -- optimizer steps done (1-based)
    tokens        INTEGER NOT NULL,       -- trained positions so far
    loss          REAL NOT NULL,          -- the objective (mean per trained position)
    ce            REAL NOT NULL,          -- mean CE(y)
    kd            REAL,                   -- mean tau^2 KD_K over positions with a distribution
    w_mean        REAL,                   -- SLIM weight mean (loss = slim)
    w_std         REAL,                   -- SLIM weight standard deviation
    lr            REAL NOT NULL,
    grad_norm     REAL NOT NULL,          -- before clipping
    tokens_per_s  REAL NOT NULL,
    PRIMARY KEY (run_id, step)
);

-- Every checkpoint written by a run.
CREATE TABLE checkpoints (
    run_id        INTEGER NOT NULL REFERENCES runs(id),
    step          INTEGER NOT NULL,
    path          TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    bytes         INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (run_id, step)
);
CREATE INDEX checkpoints_sha ON checkpoints(sha256);

-- `slim-train eval` results (also written at --eval-every during training).
CREATE TABLE eval_results (
    id            INTEGER PRIMARY KEY,
    run_id        INTEGER REFERENCES runs(id),  -- NULL when the checkpoint's run is unknown
    ckpt_sha256   TEXT,                   -- the checkpoint evaluated; NULL during training (--eval-every)
    step          INTEGER NOT NULL,       -- the checkpoint's step
    snapshot      TEXT NOT NULL,
    snapshot_hash TEXT NOT NULL,
    split         TEXT NOT NULL CHECK (split IN ('train', 'valid')),
    positions     INTEGER NOT NULL,       -- positions scored
    perplexity    REAL NOT NULL,          -- exp(mean CE(y))
    kl            REAL,                   -- mean KL(teacher || student) over the stored entries
    top1_agree    REAL,                   -- fraction where argmax student = teacher's top entry
    ece           REAL NOT NULL,          -- expected calibration error, 15 bins
    created_at    TEXT NOT NULL
);
CREATE INDEX eval_results_run ON eval_results(run_id);
