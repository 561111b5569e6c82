//! The users each running lab is shared with.

use insitu_domain::{LabId, Name, UserId, Username};

use crate::store::{Store, StoreError, parsed};

impl Store {
    /// Shares a lab with a user; `false` when it already was.
    pub async fn add_lab_share(
        &self,
        lab_id: &LabId,
        user_id: &UserId,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "INSERT INTO lab_shares (lab_id, user_id, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(lab_id.as_str())
        .bind(user_id.as_str())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Stops sharing a lab with a user and ends that user's proxy sessions
    /// in it, in one transaction; `false` when it was not shared.
    pub async fn remove_lab_share(
        &self,
        lab_id: &LabId,
        user_id: &UserId,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query("DELETE FROM lab_shares WHERE lab_id = $1 AND user_id = $2")
            .bind(lab_id.as_str())
            .bind(user_id.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM proxy_sessions WHERE lab_id = $1 AND user_id = $2")
            .bind(lab_id.as_str())
            .bind(user_id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    /// Who a lab is shared with, by username.
    pub async fn lab_shares(&self, lab_id: &LabId) -> Result<Vec<(UserId, Username)>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.user_id, u.username FROM lab_shares s JOIN users u ON u.id = s.user_id \
             WHERE s.lab_id = $1 ORDER BY u.username",
        )
        .bind(lab_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((parsed(r, "user_id")?, parsed(r, "username")?)))
            .collect()
    }

    /// Every share, as (lab, user) pairs.
    pub async fn all_lab_shares(&self) -> Result<Vec<(LabId, UserId)>, StoreError> {
        let rows = sqlx::query("SELECT lab_id, user_id FROM lab_shares")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((parsed(r, "lab_id")?, parsed(r, "user_id")?)))
            .collect()
    }

    /// The labs shared with a user, newest first.
    pub async fn labs_shared_with(&self, user_id: &UserId) -> Result<Vec<LabId>, StoreError> {
        let rows = sqlx::query(
            "SELECT lab_id FROM lab_shares WHERE user_id = $1 ORDER BY created_at DESC",
        )
        .bind(user_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| parsed(r, "lab_id")).collect()
    }
}

/// What [`Store::rename_team`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeamRename {
    Done,
    /// Nothing: no team has the old name.
    NotFound,
    /// Nothing: a team has the new name.
    Taken,
}

impl Store {
    /// Shares a lab with a team; `false` when it already was.
    pub async fn add_lab_team_share(
        &self,
        lab_id: &LabId,
        team: &Name,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "INSERT INTO lab_team_shares (lab_id, team_name, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(lab_id.as_str())
        .bind(team.as_str())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Stops sharing a lab with a team; `false` when it was not shared.
    pub async fn remove_lab_team_share(
        &self,
        lab_id: &LabId,
        team: &Name,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM lab_team_shares WHERE lab_id = $1 AND team_name = $2")
            .bind(lab_id.as_str())
            .bind(team.as_str())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The teams a lab is shared with, by name.
    pub async fn lab_team_shares(&self, lab_id: &LabId) -> Result<Vec<Name>, StoreError> {
        let rows = sqlx::query(
            "SELECT team_name FROM lab_team_shares WHERE lab_id = $1 ORDER BY team_name",
        )
        .bind(lab_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| parsed(r, "team_name")).collect()
    }

    /// Every team share, as (lab, team) pairs.
    pub async fn all_lab_team_shares(&self) -> Result<Vec<(LabId, Name)>, StoreError> {
        let rows = sqlx::query("SELECT lab_id, team_name FROM lab_team_shares")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((parsed(r, "lab_id")?, parsed(r, "team_name")?)))
            .collect()
    }

    /// The labs shared with the teams a user is an accepted member of,
    /// newest share first.
    pub async fn labs_shared_with_teams_of(
        &self,
        user_id: &UserId,
    ) -> Result<Vec<LabId>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT s.lab_id, s.created_at FROM lab_team_shares s \
             JOIN team_members m ON m.team_name = s.team_name \
             WHERE m.user_id = $1 AND m.accepted = 1 ORDER BY s.created_at DESC",
        )
        .bind(user_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| parsed(r, "lab_id")).collect()
    }

    /// Ends one user's proxy sessions in one lab.
    pub async fn delete_proxy_sessions_of_lab_user(
        &self,
        lab_id: &LabId,
        user_id: &UserId,
    ) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM proxy_sessions WHERE lab_id = $1 AND user_id = $2")
            .bind(lab_id.as_str())
            .bind(user_id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    /// Deletes a team: its members, invitations and lab shares go with it.
    /// `false` when there was none.
    pub async fn delete_team(&self, team: &Name) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM lab_team_shares WHERE team_name = $1")
            .bind(team.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM team_members WHERE team_name = $1")
            .bind(team.as_str())
            .execute(&mut *tx)
            .await?;
        let r = sqlx::query("DELETE FROM teams WHERE name = $1")
            .bind(team.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    /// Renames a team, its members and lab shares with it, in one
    /// transaction.
    pub async fn rename_team(&self, old: &Name, new: &Name) -> Result<TeamRename, StoreError> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO teams (name, created_at) SELECT $1, created_at FROM teams WHERE name = $2 \
             ON CONFLICT DO NOTHING",
        )
        .bind(new.as_str())
        .bind(old.as_str())
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(if self.team_exists(old).await? {
                TeamRename::Taken
            } else {
                TeamRename::NotFound
            });
        }
        for table in ["team_members", "lab_team_shares"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE {table} SET team_name = $1 WHERE team_name = $2"
            )))
            .bind(new.as_str())
            .bind(old.as_str())
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM teams WHERE name = $1")
            .bind(old.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(TeamRename::Done)
    }
}
