//! The SQL of pipelines and runs: users' (and pushed system) pipeline
//! versions, and runs with their state machine.

use std::collections::BTreeMap;

use insitu_domain::{Name, RunId, RunState, UserId, Username};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::records::{PipelineVersionRecord, RunRecord};
use crate::store::{Store, StoreError, parsed};

/// The `owner_id` of the system catalogue's rows.
const SYSTEM: &str = "";

fn owner_key(owner: Option<&UserId>) -> &str {
    owner.map_or(SYSTEM, UserId::as_str)
}

const VERSION_COLUMNS: &str = "owner_id, name, version, description, keywords, author, licence, main, files, pushed_by, created_at_ms";

const RUN_COLUMNS: &str = "id, user_id, pipeline, version, state, reason, notice, job, resumed_from, lineage, pid, pid_start, outputs, created_at_ms, started_at_ms, finished_at_ms, cleaned_at_ms, zone";

impl Store {
    /// The username of a user id (runs name their owner by id).
    pub async fn username_of(&self, user_id: &UserId) -> Result<Option<Username>, StoreError> {
        let row = sqlx::query("SELECT username FROM users WHERE id = $1")
            .bind(user_id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| parsed(&r, "username")).transpose()
    }

    /// Keeps a new pipeline version; `Ok(false)` when the pipeline already
    /// has this version (versions never change).
    pub async fn insert_pipeline_version(
        &self,
        v: &PipelineVersionRecord,
    ) -> Result<bool, StoreError> {
        let keywords = serde_json::to_string(&v.keywords)
            .map_err(|e| StoreError::Corrupt(format!("keywords: {e}")))?;
        let files = serde_json::to_string(&v.files)
            .map_err(|e| StoreError::Corrupt(format!("files: {e}")))?;
        let result = sqlx::query(
            "INSERT INTO pipeline_versions (owner_id, name, version, description, keywords, author, \
             licence, main, files, pushed_by, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(owner_key(v.owner.as_ref()))
        .bind(v.name.as_str())
        .bind(v.version.as_str())
        .bind(&v.description)
        .bind(keywords)
        .bind(&v.author)
        .bind(&v.licence)
        .bind(&v.main)
        .bind(files)
        .bind(v.pushed_by.as_str())
        .bind(v.created_at_ms)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Every version of one pipeline of `owner` (`None`: the system
    /// catalogue), newest first.
    pub async fn pipeline_versions(
        &self,
        owner: Option<&UserId>,
        name: &Name,
    ) -> Result<Vec<PipelineVersionRecord>, StoreError> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM pipeline_versions WHERE owner_id = $1 AND name = $2 \
             ORDER BY created_at_ms DESC, version DESC"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(owner_key(owner))
            .bind(name.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(version_from_row).collect()
    }

    /// The newest version of each pipeline of `owner` (`None`: the system
    /// catalogue), by name.
    pub async fn latest_pipeline_versions(
        &self,
        owner: Option<&UserId>,
    ) -> Result<Vec<PipelineVersionRecord>, StoreError> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM pipeline_versions WHERE owner_id = $1 \
             ORDER BY name, created_at_ms DESC, version DESC"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(owner_key(owner))
            .fetch_all(&self.pool)
            .await?;
        let mut latest: Vec<PipelineVersionRecord> = Vec::new();
        for row in &rows {
            let v = version_from_row(row)?;
            if latest.last().is_none_or(|l| l.name != v.name) {
                latest.push(v);
            }
        }
        Ok(latest)
    }

    pub async fn create_run(&self, r: &RunRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO runs (id, user_id, pipeline, version, state, reason, notice, job, resumed_from, \
             lineage, pid, pid_start, outputs, created_at_ms, started_at_ms, finished_at_ms, cleaned_at_ms, zone) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
        )
        .bind(r.id.as_str())
        .bind(r.user_id.as_str())
        .bind(&r.pipeline)
        .bind(&r.version)
        .bind(r.state.as_str())
        .bind(&r.reason)
        .bind(&r.notice)
        .bind(&r.job)
        .bind(r.resumed_from.as_ref().map(RunId::as_str))
        .bind(r.lineage.as_str())
        .bind(r.pid)
        .bind(r.pid_start)
        .bind(&r.outputs)
        .bind(r.created_at_ms)
        .bind(r.started_at_ms)
        .bind(r.finished_at_ms)
        .bind(r.cleaned_at_ms)
        .bind(r.zone.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Writes a run's changing fields (state, reason, notice, process,
    /// outputs, times).
    pub async fn update_run(&self, r: &RunRecord) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE runs SET state = $1, reason = $2, notice = $3, pid = $4, pid_start = $5, outputs = $6, \
             started_at_ms = $7, finished_at_ms = $8, cleaned_at_ms = $9 WHERE id = $10",
        )
        .bind(r.state.as_str())
        .bind(&r.reason)
        .bind(&r.notice)
        .bind(r.pid)
        .bind(r.pid_start)
        .bind(&r.outputs)
        .bind(r.started_at_ms)
        .bind(r.finished_at_ms)
        .bind(r.cleaned_at_ms)
        .bind(r.id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a started run's engine (its pid, the pid's start time) and
    /// when it started, only if the run is still running: a run cancelled
    /// while its engine started stays cancelled, and never shows as
    /// started. Returns whether it was recorded.
    pub async fn record_run_start(
        &self,
        id: &RunId,
        pid: i64,
        pid_start: Option<i64>,
        started_at_ms: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE runs SET pid = $1, pid_start = $2, started_at_ms = $3 WHERE id = $4 AND state = $5",
        )
        .bind(pid)
        .bind(pid_start)
        .bind(started_at_ms)
        .bind(id.as_str())
        .bind(RunState::Running.as_str())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Moves a run from state `from` to `to` only if it is still in `from`
    /// (so that two processes, or a cancel and a start, never both win);
    /// returns whether it moved.
    pub async fn move_run(
        &self,
        id: &RunId,
        from: RunState,
        to: RunState,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE runs SET state = $1 WHERE id = $2 AND state = $3")
            .bind(to.as_str())
            .bind(id.as_str())
            .bind(from.as_str())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn run(&self, id: &RunId) -> Result<Option<RunRecord>, StoreError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| run_from_row(&r)).transpose()
    }

    /// A user's runs, newest first, at most `limit`.
    pub async fn runs_of_user(
        &self,
        user_id: &UserId,
        limit: i64,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE user_id = $1 \
             ORDER BY created_at_ms DESC, id DESC LIMIT $2"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(user_id.as_str())
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// Runs in any of the given states, oldest first.
    pub async fn runs_in_states(&self, states: &[RunState]) -> Result<Vec<RunRecord>, StoreError> {
        if states.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=states.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE state IN ({}) ORDER BY created_at_ms, id",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for state in states {
            query = query.bind(state.as_str());
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(run_from_row).collect()
    }

    /// Ended runs that finished before `before_ms` and still have their
    /// intermediate files.
    pub async fn runs_to_clean(&self, before_ms: i64) -> Result<Vec<RunRecord>, StoreError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE finished_at_ms IS NOT NULL AND finished_at_ms < $1 \
             AND cleaned_at_ms IS NULL AND state IN ('succeeded', 'failed', 'cancelled') \
             ORDER BY finished_at_ms"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(before_ms)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// The runs of one chain of resumes.
    pub async fn runs_of_lineage(&self, lineage: &RunId) -> Result<Vec<RunRecord>, StoreError> {
        let sql =
            format!("SELECT {RUN_COLUMNS} FROM runs WHERE lineage = $1 ORDER BY created_at_ms");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(lineage.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(run_from_row).collect()
    }
}

fn version_from_row(row: &AnyRow) -> Result<PipelineVersionRecord, StoreError> {
    let owner: String = row.try_get("owner_id")?;
    let keywords: String = row.try_get("keywords")?;
    let files: String = row.try_get("files")?;
    Ok(PipelineVersionRecord {
        owner: if owner == SYSTEM {
            None
        } else {
            Some(parsed(row, "owner_id")?)
        },
        name: parsed(row, "name")?,
        version: parsed(row, "version")?,
        description: row.try_get("description")?,
        keywords: serde_json::from_str(&keywords)
            .map_err(|e| StoreError::Corrupt(format!("keywords: {e}")))?,
        author: row.try_get("author")?,
        licence: row.try_get("licence")?,
        main: row.try_get("main")?,
        files: serde_json::from_str::<BTreeMap<String, String>>(&files)
            .map_err(|e| StoreError::Corrupt(format!("files: {e}")))?,
        pushed_by: parsed(row, "pushed_by")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

fn run_from_row(row: &AnyRow) -> Result<RunRecord, StoreError> {
    let resumed: Option<String> = row.try_get("resumed_from")?;
    Ok(RunRecord {
        id: parsed(row, "id")?,
        user_id: parsed(row, "user_id")?,
        pipeline: row.try_get("pipeline")?,
        version: row.try_get("version")?,
        state: parsed(row, "state")?,
        reason: row.try_get("reason")?,
        notice: row.try_get("notice")?,
        job: row.try_get("job")?,
        resumed_from: resumed
            .map(|r| {
                r.parse()
                    .map_err(|e| StoreError::Corrupt(format!("resumed_from {r:?}: {e}")))
            })
            .transpose()?,
        lineage: parsed(row, "lineage")?,
        pid: row.try_get("pid")?,
        pid_start: row.try_get("pid_start")?,
        outputs: row.try_get("outputs")?,
        created_at_ms: row.try_get("created_at_ms")?,
        started_at_ms: row.try_get("started_at_ms")?,
        finished_at_ms: row.try_get("finished_at_ms")?,
        cleaned_at_ms: row.try_get("cleaned_at_ms")?,
        zone: parsed(row, "zone")?,
    })
}
