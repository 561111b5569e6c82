-- Applications for an account (the waiting list). A request is waiting
-- until a moderator approves it (its account is made then, user_id set)
-- or denies it, with a message the applicant reads on their status page.
-- The applicant's status link carries a secret of which only the SHA-256
-- is kept. Ids are UUIDv7, so their order is the order of application
-- and a waiting request's position is a count of the waiting ids up to it.
-- Times are Unix seconds.
CREATE TABLE access_requests (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    affiliation TEXT NOT NULL,
    reason TEXT NOT NULL,
    username TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    message TEXT,
    decided_by TEXT REFERENCES users(id) ON DELETE SET NULL,
    decided_at BIGINT,
    user_id TEXT REFERENCES users(id) ON DELETE SET NULL,
    password_set_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX access_requests_state ON access_requests(state, id);
-- One waiting request per username and per e-mail address.
CREATE UNIQUE INDEX access_requests_waiting_username ON access_requests(username) WHERE state = 'waiting';
CREATE UNIQUE INDEX access_requests_waiting_email ON access_requests(email) WHERE state = 'waiting';
