//! The SQL of user-developed datalabs: drafts, the users they are shared
//! with, builds, builds submitted for publication with the moderator's
//! decision, and stars.

use std::collections::BTreeMap;

use insitu_domain::{
    BuildState, DevlabDefinition, DevlabSource, Name, ReleaseState, Template, UserId, Username,
};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::store::{Backend, Store, StoreError, parsed};

/// A developer's datalab: the draft they edit and who may see it.
#[derive(Debug, Clone, PartialEq)]
pub struct DevlabRecord {
    pub name: Name,
    pub owner_id: UserId,
    /// The owner's username (read with the record).
    pub owner: Username,
    pub template: Template,
    pub definition: DevlabDefinition,
    pub source: DevlabSource,
    /// Published versions are in everyone's catalogue.
    pub public: bool,
    /// Users who see the datalab while it is not public, by name.
    pub shared_with: Vec<Username>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One build of a datalab: the definition and source it was made from, and
/// what came of it.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildRecord {
    pub devlab: Name,
    pub number: i64,
    /// The datalab's version when it was built.
    pub version: String,
    pub state: BuildState,
    pub definition: DevlabDefinition,
    pub source: DevlabSource,
    /// The image's name and tag.
    pub image: String,
    pub image_id: Option<String>,
    /// The line that says why a build failed.
    pub error: Option<String>,
    /// Whether the image is still on this machine (not collected).
    pub image_kept: bool,
    /// Whether it came from another platform's export.
    pub imported: bool,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// A build submitted for publication, and the moderator's decision.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseRecord {
    pub devlab: Name,
    pub number: i64,
    pub version: String,
    pub state: ReleaseState,
    /// Why a moderator refused it.
    pub reason: Option<String>,
    pub submitted_by: Username,
    pub submitted_at: i64,
    pub decided_by: Option<Username>,
    pub decided_at: Option<i64>,
}

/// What [`Store::create_build`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum BuildAdmission {
    /// Recorded with this number.
    Created(i64),
    /// Nothing: build `0` of the datalab has not ended.
    Busy(i64),
}

/// What [`Store::decide_release`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Done,
    /// Nothing: the build is not waiting for a decision.
    NotPending,
    /// Nothing: another build of the same version is published.
    VersionPublished,
}

const DEVLAB_COLUMNS: &str = "d.name, d.owner_id, u.username AS owner, d.template, d.definition, d.source, d.public, d.created_at, d.updated_at";

const BUILD_COLUMNS: &str = "devlab, number, version, state, definition, source, image, image_id, error, image_kept, imported, created_at, started_at, finished_at";

const RELEASE_COLUMNS: &str =
    "devlab, number, version, state, reason, submitted_by, submitted_at, decided_by, decided_at";

fn to_json<T: serde::Serialize>(what: &str, v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(row: &AnyRow, column: &str) -> Result<T, StoreError> {
    let raw: String = row.try_get(column)?;
    serde_json::from_str(&raw).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

impl Store {
    /// Records a new datalab; `Ok(false)` when the name is taken.
    pub async fn create_devlab(&self, d: &DevlabRecord) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO devlabs (name, owner_id, template, definition, source, public, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(d.name.as_str())
        .bind(d.owner_id.as_str())
        .bind(d.template.as_str())
        .bind(to_json("definition", &d.definition)?)
        .bind(to_json("source", &d.source)?)
        .bind(i64::from(d.public))
        .bind(d.created_at)
        .bind(d.updated_at)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn with_shares(&self, rows: Vec<AnyRow>) -> Result<Vec<DevlabRecord>, StoreError> {
        let mut shares: BTreeMap<String, Vec<Username>> = BTreeMap::new();
        if !rows.is_empty() {
            let all = sqlx::query(
                "SELECT s.devlab, u.username FROM devlab_shares s JOIN users u ON u.id = s.user_id \
                 ORDER BY u.username",
            )
            .fetch_all(&self.pool)
            .await?;
            for r in all {
                shares
                    .entry(r.try_get("devlab")?)
                    .or_default()
                    .push(parsed(&r, "username")?);
            }
        }
        rows.iter()
            .map(|r| {
                let name: String = r.try_get("name")?;
                Ok(DevlabRecord {
                    name: parsed(r, "name")?,
                    owner_id: parsed(r, "owner_id")?,
                    owner: parsed(r, "owner")?,
                    template: parsed(r, "template")?,
                    definition: from_json(r, "definition")?,
                    source: from_json(r, "source")?,
                    public: r.try_get::<i64, _>("public")? != 0,
                    shared_with: shares.remove(&name).unwrap_or_default(),
                    created_at: r.try_get("created_at")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    pub async fn devlab(&self, name: &str) -> Result<Option<DevlabRecord>, StoreError> {
        let sql = format!(
            "SELECT {DEVLAB_COLUMNS} FROM devlabs d JOIN users u ON u.id = d.owner_id WHERE d.name = $1"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(name)
            .fetch_all(&self.pool)
            .await?;
        Ok(self.with_shares(rows).await?.into_iter().next())
    }

    /// Every datalab of every developer, by name.
    pub async fn devlabs(&self) -> Result<Vec<DevlabRecord>, StoreError> {
        let sql = format!(
            "SELECT {DEVLAB_COLUMNS} FROM devlabs d JOIN users u ON u.id = d.owner_id ORDER BY d.name"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        self.with_shares(rows).await
    }

    /// A developer's datalabs, newest change first.
    pub async fn devlabs_of(&self, owner: &UserId) -> Result<Vec<DevlabRecord>, StoreError> {
        let sql = format!(
            "SELECT {DEVLAB_COLUMNS} FROM devlabs d JOIN users u ON u.id = d.owner_id \
             WHERE d.owner_id = $1 ORDER BY d.updated_at DESC, d.name"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(owner.as_str())
            .fetch_all(&self.pool)
            .await?;
        self.with_shares(rows).await
    }

    /// Replaces a draft's definition and source.
    pub async fn update_devlab_draft(
        &self,
        name: &Name,
        definition: &DevlabDefinition,
        source: &DevlabSource,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE devlabs SET definition = $1, source = $2, updated_at = $3 WHERE name = $4",
        )
        .bind(to_json("definition", definition)?)
        .bind(to_json("source", source)?)
        .bind(now)
        .bind(name.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Sets who sees a datalab: everyone (its published versions) or not,
    /// and the named users, in one transaction.
    pub async fn set_devlab_audience(
        &self,
        name: &Name,
        public: bool,
        users: &[UserId],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE devlabs SET public = $1, updated_at = $2 WHERE name = $3")
            .bind(i64::from(public))
            .bind(now)
            .bind(name.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM devlab_shares WHERE devlab = $1")
            .bind(name.as_str())
            .execute(&mut *tx)
            .await?;
        for u in users {
            sqlx::query(
                "INSERT INTO devlab_shares (devlab, user_id) VALUES ($1, $2) ON CONFLICT (devlab, user_id) DO NOTHING",
            )
            .bind(name.as_str())
            .bind(u.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a datalab with its builds, publications, shares and stars.
    pub async fn delete_devlab(&self, name: &Name) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for table in [
            "devlab_releases",
            "devlab_builds",
            "devlab_shares",
            "devlab_stars",
        ] {
            sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE devlab = $1"
            )))
            .bind(name.as_str())
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM devlabs WHERE name = $1")
            .bind(name.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a new build with the next number, unless a build of the
    /// datalab has not ended: checked and written in one transaction
    /// (holding the datalab's row on PostgreSQL, the write lock on SQLite),
    /// so two requests never start two builds. `b.number` is ignored, and
    /// `{number}` in `b.image` becomes the new build's number.
    pub async fn create_build(&self, b: &BuildRecord) -> Result<BuildAdmission, StoreError> {
        let mut tx = self.pool.begin().await?;
        if self.backend() == Backend::Postgres {
            sqlx::query("SELECT name FROM devlabs WHERE name = $1 FOR UPDATE")
                .bind(b.devlab.as_str())
                .execute(&mut *tx)
                .await?;
        } else {
            // The first statement writes, so the transaction holds the
            // write lock from here on.
            sqlx::query("UPDATE devlabs SET updated_at = updated_at WHERE name = $1")
                .bind(b.devlab.as_str())
                .execute(&mut *tx)
                .await?;
        }
        let active = sqlx::query(
            "SELECT number FROM devlab_builds WHERE devlab = $1 AND state IN ($2, $3) ORDER BY number LIMIT 1",
        )
        .bind(b.devlab.as_str())
        .bind(BuildState::Queued.as_str())
        .bind(BuildState::Running.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = active {
            tx.rollback().await?;
            return Ok(BuildAdmission::Busy(row.try_get("number")?));
        }
        let next: i64 = sqlx::query(
            "SELECT COALESCE(MAX(number) + 1, 0) AS n FROM devlab_builds WHERE devlab = $1",
        )
        .bind(b.devlab.as_str())
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        let image = b.image.replace("{number}", &next.to_string());
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO devlab_builds ({BUILD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        )))
        .bind(b.devlab.as_str())
        .bind(next)
        .bind(&b.version)
        .bind(b.state.as_str())
        .bind(to_json("definition", &b.definition)?)
        .bind(to_json("source", &b.source)?)
        .bind(image)
        .bind(&b.image_id)
        .bind(&b.error)
        .bind(i64::from(b.image_kept))
        .bind(i64::from(b.imported))
        .bind(b.created_at)
        .bind(b.started_at)
        .bind(b.finished_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(BuildAdmission::Created(next))
    }

    /// Writes a build's changing fields.
    pub async fn update_build(&self, b: &BuildRecord) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE devlab_builds SET state = $1, image_id = $2, error = $3, image_kept = $4, \
             started_at = $5, finished_at = $6 WHERE devlab = $7 AND number = $8",
        )
        .bind(b.state.as_str())
        .bind(&b.image_id)
        .bind(&b.error)
        .bind(i64::from(b.image_kept))
        .bind(b.started_at)
        .bind(b.finished_at)
        .bind(b.devlab.as_str())
        .bind(b.number)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn build(
        &self,
        devlab: &str,
        number: i64,
    ) -> Result<Option<BuildRecord>, StoreError> {
        let sql =
            format!("SELECT {BUILD_COLUMNS} FROM devlab_builds WHERE devlab = $1 AND number = $2");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(devlab)
            .bind(number)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| build_from_row(&r)).transpose()
    }

    /// A datalab's builds, newest first.
    pub async fn builds_of(&self, devlab: &str) -> Result<Vec<BuildRecord>, StoreError> {
        let sql = format!(
            "SELECT {BUILD_COLUMNS} FROM devlab_builds WHERE devlab = $1 ORDER BY number DESC"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(devlab)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(build_from_row).collect()
    }

    /// Builds in any of the given states, oldest first.
    pub async fn builds_in_states(
        &self,
        states: &[BuildState],
    ) -> Result<Vec<BuildRecord>, StoreError> {
        let mut out = Vec::new();
        for state in states {
            let sql = format!(
                "SELECT {BUILD_COLUMNS} FROM devlab_builds WHERE state = $1 ORDER BY created_at"
            );
            let rows = sqlx::query(AssertSqlSafe(sql))
                .bind(state.as_str())
                .fetch_all(&self.pool)
                .await?;
            for r in &rows {
                out.push(build_from_row(r)?);
            }
        }
        Ok(out)
    }

    /// Submits a build for publication; `Ok(false)` when it was submitted
    /// before (whatever became of it).
    pub async fn insert_release(&self, r: &ReleaseRecord) -> Result<bool, StoreError> {
        let result = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO devlab_releases ({RELEASE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        )))
        .bind(r.devlab.as_str())
        .bind(r.number)
        .bind(&r.version)
        .bind(r.state.as_str())
        .bind(&r.reason)
        .bind(r.submitted_by.as_str())
        .bind(r.submitted_at)
        .bind(r.decided_by.as_ref().map(Username::as_str))
        .bind(r.decided_at)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Records a moderator's decision on a submitted build, once: a build
    /// decided already, or a version published already, is left as it is.
    pub async fn decide_release(
        &self,
        devlab: &Name,
        number: i64,
        state: ReleaseState,
        reason: Option<&str>,
        by: &Username,
        at: i64,
    ) -> Result<Decision, StoreError> {
        let result = sqlx::query(
            "UPDATE devlab_releases SET state = $1, reason = $2, decided_by = $3, decided_at = $4 \
             WHERE devlab = $5 AND number = $6 AND state = $7",
        )
        .bind(state.as_str())
        .bind(reason)
        .bind(by.as_str())
        .bind(at)
        .bind(devlab.as_str())
        .bind(number)
        .bind(ReleaseState::Submitted.as_str())
        .execute(&self.pool)
        .await;
        match result {
            Ok(r) if r.rows_affected() == 1 => Ok(Decision::Done),
            Ok(_) => Ok(Decision::NotPending),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Ok(Decision::VersionPublished)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A datalab's submitted builds, newest first.
    pub async fn releases_of(&self, devlab: &str) -> Result<Vec<ReleaseRecord>, StoreError> {
        let sql = format!(
            "SELECT {RELEASE_COLUMNS} FROM devlab_releases WHERE devlab = $1 ORDER BY number DESC"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(devlab)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(release_from_row).collect()
    }

    /// Every submitted build in a state, oldest submission first.
    pub async fn releases_in_state(
        &self,
        state: ReleaseState,
    ) -> Result<Vec<ReleaseRecord>, StoreError> {
        let sql = format!(
            "SELECT {RELEASE_COLUMNS} FROM devlab_releases WHERE state = $1 ORDER BY submitted_at, devlab, number"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(state.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(release_from_row).collect()
    }

    /// Stars a datalab for a user, or takes the star back.
    pub async fn set_star(&self, devlab: &Name, user: &UserId, on: bool) -> Result<(), StoreError> {
        let q = if on {
            "INSERT INTO devlab_stars (devlab, user_id) VALUES ($1, $2) ON CONFLICT (devlab, user_id) DO NOTHING"
        } else {
            "DELETE FROM devlab_stars WHERE devlab = $1 AND user_id = $2"
        };
        sqlx::query(q)
            .bind(devlab.as_str())
            .bind(user.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stars per datalab.
    pub async fn star_counts(&self) -> Result<BTreeMap<String, i64>, StoreError> {
        let rows = sqlx::query("SELECT devlab, COUNT(*) AS n FROM devlab_stars GROUP BY devlab")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("devlab")?, r.try_get("n")?)))
            .collect()
    }

    /// The datalabs a user starred.
    pub async fn starred_by(&self, user: &UserId) -> Result<Vec<String>, StoreError> {
        let rows =
            sqlx::query("SELECT devlab FROM devlab_stars WHERE user_id = $1 ORDER BY devlab")
                .bind(user.as_str())
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|r| Ok(r.try_get("devlab")?)).collect()
    }

    /// Labs ever launched per datalab.
    pub async fn launch_counts(&self) -> Result<BTreeMap<String, i64>, StoreError> {
        let rows = sqlx::query("SELECT datalab, COUNT(*) AS n FROM labs GROUP BY datalab")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("datalab")?, r.try_get("n")?)))
            .collect()
    }
}

fn build_from_row(r: &AnyRow) -> Result<BuildRecord, StoreError> {
    Ok(BuildRecord {
        devlab: parsed(r, "devlab")?,
        number: r.try_get("number")?,
        version: r.try_get("version")?,
        state: parsed(r, "state")?,
        definition: from_json(r, "definition")?,
        source: from_json(r, "source")?,
        image: r.try_get("image")?,
        image_id: r.try_get("image_id")?,
        error: r.try_get("error")?,
        image_kept: r.try_get::<i64, _>("image_kept")? != 0,
        imported: r.try_get::<i64, _>("imported")? != 0,
        created_at: r.try_get("created_at")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

fn release_from_row(r: &AnyRow) -> Result<ReleaseRecord, StoreError> {
    let decided_by: Option<String> = r.try_get("decided_by")?;
    Ok(ReleaseRecord {
        devlab: parsed(r, "devlab")?,
        number: r.try_get("number")?,
        version: r.try_get("version")?,
        state: parsed(r, "state")?,
        reason: r.try_get("reason")?,
        submitted_by: parsed(r, "submitted_by")?,
        submitted_at: r.try_get("submitted_at")?,
        decided_by: decided_by
            .map(|u| {
                u.parse()
                    .map_err(|e| StoreError::Corrupt(format!("decided_by {u:?}: {e}")))
            })
            .transpose()?,
        decided_at: r.try_get("decided_at")?,
    })
}
