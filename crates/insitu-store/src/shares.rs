//! The users each running lab is shared with.

use insitu_domain::{LabId, UserId, Username};

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
