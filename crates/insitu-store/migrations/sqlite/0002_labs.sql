-- Labs: one launch of a datalab by a user, with its state machine.
CREATE TABLE labs (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    datalab TEXT NOT NULL,
    volumes TEXT NOT NULL,
    gpus TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL,
    reason TEXT,
    port BIGINT,
    pid BIGINT,
    pid_start BIGINT,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    stopped_at BIGINT
);
CREATE INDEX labs_user ON labs(user_id);
CREATE INDEX labs_state ON labs(state);
