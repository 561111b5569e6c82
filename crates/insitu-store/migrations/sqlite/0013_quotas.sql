-- Workspace quotas an administrator set for one user or one team, in
-- bytes; everyone else has the configured default. holder is
-- 'user:<user id>' or 'team:<team name>'. Times are Unix seconds.
CREATE TABLE workspace_quotas (
    holder TEXT PRIMARY KEY NOT NULL,
    bytes BIGINT NOT NULL,
    set_at BIGINT NOT NULL
);

-- What each lab asked for at launch (its datalab's resources), summed
-- per user against their quotas at the next launch.
ALTER TABLE labs ADD COLUMN cpu_millis BIGINT NOT NULL DEFAULT 0;
ALTER TABLE labs ADD COLUMN memory_bytes BIGINT NOT NULL DEFAULT 0;

-- Labs, CPU (thousandths of a core), memory (bytes) and GPUs an
-- administrator set for one user; NULL: the configured default.
CREATE TABLE compute_quotas (
    holder TEXT PRIMARY KEY NOT NULL,
    labs BIGINT,
    cpu_millis BIGINT,
    memory_bytes BIGINT,
    gpus BIGINT,
    set_at BIGINT NOT NULL
);
