-- User-developed datalabs: each developer's drafts, their builds (OCI
-- images made with podman), builds submitted for publication with the
-- moderator's decision, the users a draft is shared with, and stars.
-- Definitions and sources are JSON (the domain's DevlabDefinition and
-- DevlabSource); times are Unix seconds (UTC); booleans are 0/1.
CREATE TABLE devlabs (
    name TEXT PRIMARY KEY NOT NULL,
    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    template TEXT NOT NULL,
    definition TEXT NOT NULL,
    source TEXT NOT NULL,
    public BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX devlabs_owner ON devlabs(owner_id);

CREATE TABLE devlab_shares (
    devlab TEXT NOT NULL REFERENCES devlabs(name) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (devlab, user_id)
);
CREATE INDEX devlab_shares_user ON devlab_shares(user_id);

CREATE TABLE devlab_builds (
    devlab TEXT NOT NULL REFERENCES devlabs(name) ON DELETE CASCADE,
    number BIGINT NOT NULL,
    version TEXT NOT NULL,
    state TEXT NOT NULL,
    definition TEXT NOT NULL,
    source TEXT NOT NULL,
    image TEXT NOT NULL,
    image_id TEXT,
    error TEXT,
    image_kept BIGINT NOT NULL DEFAULT 1,
    imported BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    PRIMARY KEY (devlab, number)
);
CREATE INDEX devlab_builds_state ON devlab_builds(state);

CREATE TABLE devlab_releases (
    devlab TEXT NOT NULL,
    number BIGINT NOT NULL,
    version TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    submitted_by TEXT NOT NULL,
    submitted_at BIGINT NOT NULL,
    decided_by TEXT,
    decided_at BIGINT,
    PRIMARY KEY (devlab, number),
    FOREIGN KEY (devlab, number) REFERENCES devlab_builds(devlab, number) ON DELETE CASCADE
);
CREATE INDEX devlab_releases_state ON devlab_releases(state);
-- A published version is published once.
CREATE UNIQUE INDEX devlab_releases_published ON devlab_releases(devlab, version)
    WHERE state = 'approved';

CREATE TABLE devlab_stars (
    devlab TEXT NOT NULL REFERENCES devlabs(name) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (devlab, user_id)
);
