-- Labs: what happened to a lab while it ran (a process killed for lack of
-- memory), kept so that its page and API show it after a restart too; and
-- when its proxied traffic was last noted, so idle culling counts from
-- there after a restart.
CREATE TABLE lab_events (
    id TEXT PRIMARY KEY NOT NULL,
    lab_id TEXT NOT NULL REFERENCES labs(id) ON DELETE CASCADE,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    pid BIGINT,
    command TEXT,
    memory_limit BIGINT,
    tool BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX lab_events_lab ON lab_events(lab_id, at);
ALTER TABLE labs ADD COLUMN last_active_at BIGINT;
