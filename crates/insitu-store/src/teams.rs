//! Teams and their members (see `insitu_domain::team`).

use insitu_domain::{Name, TeamRole, UserId, Username};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::store::{Backend, Store, StoreError, parsed};

/// One member of a team, or one invited.
#[derive(Debug, Clone, PartialEq)]
pub struct TeamMemberRecord {
    pub team: Name,
    pub user_id: UserId,
    pub username: Username,
    pub role: TeamRole,
    /// Whether the user accepted the invitation (a member), or not yet.
    pub accepted: bool,
    pub disabled: bool,
    pub added_at: i64,
}

/// A change of one member, by [`Store::change_member`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    /// Removed from the team, or the invitation withdrawn or declined.
    Remove,
    SetRole(TeamRole),
    Accept,
}

/// What [`Store::change_member`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeamChange {
    Done,
    /// Nothing: the user is neither a member nor invited.
    NotMember,
    /// Nothing: the team would have had no owner left.
    WouldLeaveNoOwner,
}

const MEMBER_COLUMNS: &str =
    "m.team_name, m.user_id, u.username, m.role, m.accepted, u.disabled, m.added_at";

fn member_from_row(row: &AnyRow) -> Result<TeamMemberRecord, StoreError> {
    Ok(TeamMemberRecord {
        team: parsed(row, "team_name")?,
        user_id: parsed(row, "user_id")?,
        username: parsed(row, "username")?,
        role: parsed(row, "role")?,
        accepted: row.try_get::<i64, _>("accepted")? != 0,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        added_at: row.try_get("added_at")?,
    })
}

impl Store {
    /// Makes team `name` with `owner` as its first owner; `false` when the
    /// name is taken.
    pub async fn create_team(
        &self,
        name: &Name,
        owner: &UserId,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO teams (name, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(name.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO team_members (team_name, user_id, role, accepted, invited_by, added_at) \
             VALUES ($1, $2, 'owner', 1, NULL, $3)",
        )
        .bind(name.as_str())
        .bind(owner.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn team_exists(&self, name: &Name) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM teams WHERE name = $1")
            .bind(name.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// A team's members and invitations, owners first, then by username.
    pub async fn team_members(&self, name: &Name) -> Result<Vec<TeamMemberRecord>, StoreError> {
        let sql = format!(
            "SELECT {MEMBER_COLUMNS} FROM team_members m JOIN users u ON u.id = m.user_id \
             WHERE m.team_name = $1 ORDER BY m.role DESC, u.username"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(member_from_row).collect()
    }

    /// The teams a user belongs to or is invited to, by name.
    pub async fn teams_of_user(
        &self,
        user_id: &UserId,
    ) -> Result<Vec<TeamMemberRecord>, StoreError> {
        let sql = format!(
            "SELECT {MEMBER_COLUMNS} FROM team_members m JOIN users u ON u.id = m.user_id \
             WHERE m.user_id = $1 ORDER BY m.team_name"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_id.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(member_from_row).collect()
    }

    /// The teams a user is an accepted member of (invitations not), by
    /// name: the teams a restricted audience may name them by. One query
    /// on the members' user index.
    pub async fn member_teams(&self, user_id: &UserId) -> Result<Vec<Name>, StoreError> {
        let rows = sqlx::query(
            "SELECT team_name FROM team_members WHERE user_id = $1 AND accepted = 1 \
             ORDER BY team_name",
        )
        .bind(user_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| parsed(row, "team_name")).collect()
    }

    /// Invites `user_id` into the team with `role`; `false` when they are
    /// already a member or invited.
    pub async fn invite_member(
        &self,
        team: &Name,
        user_id: &UserId,
        role: TeamRole,
        invited_by: &UserId,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "INSERT INTO team_members (team_name, user_id, role, accepted, invited_by, added_at) \
             VALUES ($1, $2, $3, 0, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(team.as_str())
        .bind(user_id.as_str())
        .bind(role.as_str())
        .bind(invited_by.as_str())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Removes a member, changes their role or accepts their invitation,
    /// unless the team would be left without an accepted owner: the change
    /// and the count are one transaction holding the team's member rows
    /// (PostgreSQL) or the database's write lock (SQLite), so two owners
    /// leaving at once, even through two server processes, leave one.
    pub async fn change_member(
        &self,
        team: &Name,
        user_id: &UserId,
        change: MemberChange,
    ) -> Result<TeamChange, StoreError> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT user_id FROM team_members WHERE team_name = $1 FOR UPDATE")
                .bind(team.as_str())
                .execute(&mut *tx)
                .await?;
        }
        // On SQLite the first statement writes, so the transaction holds
        // the write lock from here on.
        let changed =
            match change {
                MemberChange::Remove => {
                    sqlx::query("DELETE FROM team_members WHERE team_name = $1 AND user_id = $2")
                        .bind(team.as_str())
                        .bind(user_id.as_str())
                        .execute(&mut *tx)
                        .await?
                }
                MemberChange::SetRole(role) => {
                    sqlx::query(
                        "UPDATE team_members SET role = $1 WHERE team_name = $2 AND user_id = $3",
                    )
                    .bind(role.as_str())
                    .bind(team.as_str())
                    .bind(user_id.as_str())
                    .execute(&mut *tx)
                    .await?
                }
                MemberChange::Accept => sqlx::query(
                    "UPDATE team_members SET accepted = 1 WHERE team_name = $1 AND user_id = $2",
                )
                .bind(team.as_str())
                .bind(user_id.as_str())
                .execute(&mut *tx)
                .await?,
            };
        if changed.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(TeamChange::NotMember);
        }
        let owners = sqlx::query(
            "SELECT COUNT(*) AS n FROM team_members \
             WHERE team_name = $1 AND role = 'owner' AND accepted = 1",
        )
        .bind(team.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if owners.try_get::<i64, _>("n")? == 0 {
            tx.rollback().await?;
            return Ok(TeamChange::WouldLeaveNoOwner);
        }
        tx.commit().await?;
        Ok(TeamChange::Done)
    }
}
