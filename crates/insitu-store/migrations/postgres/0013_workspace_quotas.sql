-- Workspace quotas an administrator set for one user or one team, in
-- bytes; everyone else has the configured default. holder is
-- 'user:<user id>' or 'team:<team name>'. Times are Unix seconds.
CREATE TABLE workspace_quotas (
    holder TEXT PRIMARY KEY NOT NULL,
    bytes BIGINT NOT NULL,
    set_at BIGINT NOT NULL
);
