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

/// What an administrator set for one user's labs; `None`: the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ComputeQuota {
    pub labs: Option<i64>,
    pub cpu_millis: Option<i64>,
    pub memory_bytes: Option<i64>,
    pub gpus: Option<i64>,
}

impl ComputeQuota {
    fn is_default(&self) -> bool {
        *self == ComputeQuota::default()
    }
}

impl Store {
    /// The compute quota set for `holder` (all `None`: the defaults).
    pub async fn compute_quota(&self, holder: &QuotaHolder) -> Result<ComputeQuota, StoreError> {
        let row = sqlx::query(
            "SELECT labs, cpu_millis, memory_bytes, gpus FROM compute_quotas WHERE holder = $1",
        )
        .bind(holder.key())
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else {
            return Ok(ComputeQuota::default());
        };
        Ok(ComputeQuota {
            labs: r.try_get("labs")?,
            cpu_millis: r.try_get("cpu_millis")?,
            memory_bytes: r.try_get("memory_bytes")?,
            gpus: r.try_get("gpus")?,
        })
    }

    /// Sets `holder`'s compute quota (all `None`: back to the defaults).
    pub async fn set_compute_quota(
        &self,
        holder: &QuotaHolder,
        q: &ComputeQuota,
        now: i64,
    ) -> Result<(), StoreError> {
        if q.is_default() {
            sqlx::query("DELETE FROM compute_quotas WHERE holder = $1")
                .bind(holder.key())
                .execute(&self.pool)
                .await?;
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO compute_quotas (holder, labs, cpu_millis, memory_bytes, gpus, set_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (holder) DO UPDATE SET labs = excluded.labs, \
             cpu_millis = excluded.cpu_millis, memory_bytes = excluded.memory_bytes, \
             gpus = excluded.gpus, set_at = excluded.set_at",
        )
        .bind(holder.key())
        .bind(q.labs)
        .bind(q.cpu_millis)
        .bind(q.memory_bytes)
        .bind(q.gpus)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

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
