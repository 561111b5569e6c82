-- The teams an owner shares a running lab with: every accepted member of
-- the team may use it through the lab proxy, for as long as they are one.
CREATE TABLE lab_team_shares (
    lab_id TEXT NOT NULL REFERENCES labs(id) ON DELETE CASCADE,
    team_name TEXT NOT NULL REFERENCES teams(name) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (lab_id, team_name)
);
CREATE INDEX lab_team_shares_team ON lab_team_shares(team_name);
