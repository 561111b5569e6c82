//! Quotas an administrator set for one user or one team (everyone else has
//! the configured defaults).

use insitu_domain::{Name, UserId};
use sqlx::Row;

use crate::store::{Store, StoreError};

/// Whose quota: a user's or a team's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaHolder {
    User(UserId),
    Team(Name),
}

impl QuotaHolder {
    fn key(&self) -> String {
        match self {
            QuotaHolder::User(id) => format!("user:{}", id.as_str()),
            QuotaHolder::Team(name) => format!("team:{}", name.as_str()),
        }
    }
}

impl Store {
    /// The workspace quota set for `holder`, in bytes; `None`: the default.
    pub async fn workspace_quota(&self, holder: &QuotaHolder) -> Result<Option<u64>, StoreError> {
        let row = sqlx::query("SELECT bytes FROM workspace_quotas WHERE holder = $1")
            .bind(holder.key())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            let bytes: i64 = r.try_get("bytes")?;
            u64::try_from(bytes).map_err(|_| StoreError::Corrupt(format!("quota {bytes}")))
        })
        .transpose()
    }

    /// Sets `holder`'s workspace quota (`None`: back to the default).
    pub async fn set_workspace_quota(
        &self,
        holder: &QuotaHolder,
        bytes: Option<u64>,
        now: i64,
    ) -> Result<(), StoreError> {
        match bytes {
            None => {
                sqlx::query("DELETE FROM workspace_quotas WHERE holder = $1")
                    .bind(holder.key())
                    .execute(&self.pool)
                    .await?;
            }
            Some(bytes) => {
                let bytes = i64::try_from(bytes)
                    .map_err(|_| StoreError::Corrupt(format!("quota {bytes}")))?;
                sqlx::query(
                    "INSERT INTO workspace_quotas (holder, bytes, set_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (holder) DO UPDATE SET bytes = excluded.bytes, set_at = excluded.set_at",
                )
                .bind(holder.key())
                .bind(bytes)
                .bind(now)
                .execute(&self.pool)
                .await?;
            }
        }
        Ok(())
    }
}
