-- Lab proxy sessions, kept so that a restart (or another server process on
-- the same database) honours the per-lab cookies already handed out. Only
-- the SHA-256 of a cookie's secret is kept, as 64 hex digits. Times are
-- Unix milliseconds (UTC): a user's newest sessions are kept, in order.
CREATE TABLE proxy_sessions (
    digest TEXT PRIMARY KEY NOT NULL,
    lab_id TEXT NOT NULL REFERENCES labs(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX proxy_sessions_user ON proxy_sessions(user_id, created_at_ms);
CREATE INDEX proxy_sessions_lab ON proxy_sessions(lab_id);
CREATE INDEX proxy_sessions_expires ON proxy_sessions(expires_at_ms);
