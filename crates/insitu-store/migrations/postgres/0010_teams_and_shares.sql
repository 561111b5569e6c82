-- Teams and their members. A member row is an invitation until the
-- invitee accepts it (accepted = 1); only accepted owners count as the
-- team's owners, and a team always keeps one. Times are Unix seconds.
CREATE TABLE teams (
    name TEXT PRIMARY KEY NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE team_members (
    team_name TEXT NOT NULL REFERENCES teams(name) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    accepted BIGINT NOT NULL DEFAULT 0,
    invited_by TEXT REFERENCES users(id) ON DELETE SET NULL,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (team_name, user_id)
);
CREATE INDEX team_members_user ON team_members(user_id);

-- The users an owner shares a running lab with.
CREATE TABLE lab_shares (
    lab_id TEXT NOT NULL REFERENCES labs(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (lab_id, user_id)
);
CREATE INDEX lab_shares_user ON lab_shares(user_id);
