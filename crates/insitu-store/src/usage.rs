//! Samples of the platform's use over time (the operator's console).

use sqlx::Row;

use crate::store::{Store, StoreError};

/// One sample: at `at` (Unix seconds), labs running, CPU milliseconds the
/// labs used since the sample before, bytes in the workspaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageSample {
    pub at: i64,
    pub labs_running: i64,
    pub cpu_millis: i64,
    pub storage_bytes: i64,
}

impl Store {
    /// Records a sample; `false` when one was recorded at the same second
    /// already (by another server process).
    pub async fn add_usage_sample(&self, s: &UsageSample) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "INSERT INTO usage_samples (at, labs_running, cpu_millis, storage_bytes) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(s.at)
        .bind(s.labs_running)
        .bind(s.cpu_millis)
        .bind(s.storage_bytes)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The samples taken in `[from, to)`, oldest first.
    pub async fn usage_samples(&self, from: i64, to: i64) -> Result<Vec<UsageSample>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, labs_running, cpu_millis, storage_bytes FROM usage_samples \
             WHERE at >= $1 AND at < $2 ORDER BY at",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(UsageSample {
                    at: r.try_get("at")?,
                    labs_running: r.try_get("labs_running")?,
                    cpu_millis: r.try_get("cpu_millis")?,
                    storage_bytes: r.try_get("storage_bytes")?,
                })
            })
            .collect()
    }

    /// Removes the samples older than `before`; how many went.
    pub async fn delete_usage_before(&self, before: i64) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM usage_samples WHERE at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }
}
