-- The platform's use over time, sampled periodically for the operator's
-- console: labs running at the moment, CPU milliseconds the labs used since
-- the sample before, and the bytes the workspaces hold. Old samples are
-- removed after a retention.
CREATE TABLE usage_samples (
    at BIGINT PRIMARY KEY NOT NULL,
    labs_running BIGINT NOT NULL,
    cpu_millis BIGINT NOT NULL,
    storage_bytes BIGINT NOT NULL
);
