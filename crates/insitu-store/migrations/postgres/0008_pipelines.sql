-- Pipelines pushed by users, and by developers to the system catalogue:
-- every version kept (and runnable), never changed. `owner_id` is the
-- user's id, or '' for the system catalogue (whose shipped pipelines are
-- files in the catalogue directory, not rows). `files` is a JSON object of
-- file name to CWL text; `main` names the one holding the process to run.
-- Times are Unix milliseconds.
CREATE TABLE pipeline_versions (
    owner_id TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    description TEXT NOT NULL,
    keywords TEXT NOT NULL,
    author TEXT NOT NULL,
    licence TEXT NOT NULL,
    main TEXT NOT NULL,
    files TEXT NOT NULL,
    pushed_by TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (owner_id, name, version)
);
CREATE INDEX pipeline_versions_owner ON pipeline_versions(owner_id, name, created_at_ms);

-- Pipeline runs: one execution of a pipeline version with a job order, its
-- state machine (queued, running, succeeded, failed, cancelled), the
-- engine's process while it runs, and the outputs as the user sees them.
-- `lineage` is the first run of a chain of resumes: their finished steps
-- are kept in one cache. Times are Unix milliseconds.
CREATE TABLE runs (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    pipeline TEXT NOT NULL,
    version TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    notice TEXT,
    job TEXT NOT NULL,
    resumed_from TEXT,
    lineage TEXT NOT NULL,
    pid BIGINT,
    pid_start BIGINT,
    outputs TEXT,
    created_at_ms BIGINT NOT NULL,
    started_at_ms BIGINT,
    finished_at_ms BIGINT,
    cleaned_at_ms BIGINT
);
CREATE INDEX runs_user ON runs(user_id, created_at_ms);
CREATE INDEX runs_state ON runs(state);
CREATE INDEX runs_lineage ON runs(lineage);
