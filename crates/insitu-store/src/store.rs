use std::str::FromStr;
use std::time::Duration;

use insitu_domain::{LabId, LabState, Role, TokenId, UserId, Username};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, AssertSqlSafe, Row};

use crate::records::{
    LabEventRecord, LabRecord, NewUser, ProxySessionRecord, SessionRecord, TokenRecord, UserRecord,
};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("username {0} is taken")]
    UsernameTaken(String),
    #[error("the e-mail address {0} is another account's")]
    EmailTaken(String),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database holds a value this version cannot read: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether the error means the database cannot be reached right now.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
            )
        )
    }
}

/// What [`Store::update_user`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserUpdate {
    Done,
    /// Nothing: the change would have left no active administrator.
    WouldLeaveNoAdmin,
}

/// What [`Store::create_lab_within`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabAdmission {
    Created,
    /// Nothing: the user already has `active` active labs.
    OverLimit {
        active: usize,
    },
    /// Nothing: the user's active labs hold `used` of `what` already, and
    /// the new lab would pass the quota.
    OverQuota {
        what: LabResource,
        used: i64,
    },
}

/// A resource a user's active labs are counted in against their quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabResource {
    /// Thousandths of a core.
    CpuMillis,
    MemoryBytes,
    Gpus,
}

/// What one user's active labs may hold at once, the new one included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LabLimits {
    pub labs: usize,
    /// `None`: no limit.
    pub cpu_millis: Option<i64>,
    pub memory_bytes: Option<i64>,
    pub gpus: Option<i64>,
}

/// Handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
}

pub(crate) const USER_COLUMNS: &str =
    "u.id, u.username, u.password_hash, u.role, u.disabled, u.created_at, u.last_login_at";

impl Store {
    /// Connects to `url` (`sqlite://PATH` — created if missing — or
    /// `postgres://…`) and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if let Some(rest) = url.strip_prefix("sqlite:") {
            let mut u = format!("sqlite:{rest}");
            if !rest.contains("mode=") {
                u.push_str(if rest.contains('?') {
                    "&mode=rwc"
                } else {
                    "?mode=rwc"
                });
            }
            (Backend::Sqlite, u)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_owned())
        } else {
            return Err(StoreError::UnsupportedUrl(redact_url(url)));
        };
        let max = match backend {
            Backend::Sqlite => 8,
            Backend::Postgres => 16,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers proceed while one writer commits.
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA foreign_keys = ON")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 10000")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        Ok(Store { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ---- users -----------------------------------------------------------

    pub async fn count_users(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }

    pub async fn create_user(&self, new: NewUser) -> Result<UserRecord, StoreError> {
        let id = UserId::from_uuid(uuid::Uuid::now_v7().as_u128());
        let result = sqlx::query(
            "INSERT INTO users (id, username, password_hash, role, disabled, created_at) \
             VALUES ($1, $2, $3, $4, 0, $5)",
        )
        .bind(id.as_str())
        .bind(new.username.as_str())
        .bind(&new.password_hash)
        .bind(new.role.as_str())
        .bind(new.now)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(UserRecord {
                id,
                username: new.username,
                password_hash: new.password_hash,
                role: new.role,
                disabled: false,
                created_at: new.now,
                last_login_at: None,
            }),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::UsernameTaken(new.username.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn user_by_username(
        &self,
        username: &Username,
    ) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.username = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(username.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| user_from_row(&r)).transpose()
    }

    pub async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.username");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Active (not disabled) administrators.
    pub async fn count_active_admins(&self) -> Result<i64, StoreError> {
        let row =
            sqlx::query("SELECT COUNT(*) AS n FROM users WHERE role = 'admin' AND disabled = 0")
                .fetch_one(&self.pool)
                .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }

    /// Changes an account's role and/or disables or enables it, unless the
    /// change would leave no active administrator: checked and applied in
    /// one transaction holding the active administrators' rows (PostgreSQL)
    /// or the database's write lock (SQLite), so two administrators demoting
    /// each other at once, even from two server processes, leave one.
    /// Disabling also ends the account's sessions.
    pub async fn update_user(
        &self,
        user_id: &UserId,
        role: Option<Role>,
        disabled: Option<bool>,
    ) -> Result<UserUpdate, StoreError> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT id FROM users WHERE role = 'admin' AND disabled = 0 FOR UPDATE")
                .execute(&mut *tx)
                .await?;
        }
        // On SQLite the first statement writes, so the transaction holds
        // the write lock from here on.
        if let Some(role) = role {
            sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
                .bind(role.as_str())
                .bind(user_id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        if let Some(disabled) = disabled {
            sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
                .bind(i64::from(disabled))
                .bind(user_id.as_str())
                .execute(&mut *tx)
                .await?;
            if disabled {
                sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                    .bind(user_id.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let may_remove_admin = role.is_some_and(|r| r != Role::Admin) || disabled == Some(true);
        if may_remove_admin {
            let row = sqlx::query(
                "SELECT COUNT(*) AS n FROM users WHERE role = 'admin' AND disabled = 0",
            )
            .fetch_one(&mut *tx)
            .await?;
            if row.try_get::<i64, _>("n")? == 0 {
                tx.rollback().await?;
                return Ok(UserUpdate::WouldLeaveNoAdmin);
            }
        }
        tx.commit().await?;
        Ok(UserUpdate::Done)
    }

    pub async fn set_role(&self, user_id: &UserId, role: Role) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
            .bind(role.as_str())
            .bind(user_id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Disables or enables an account. Disabling also ends every session and
    /// revokes no token (tokens of a disabled user are refused at use, and
    /// work again if the account is enabled).
    pub async fn set_disabled(&self, user_id: &UserId, disabled: bool) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
            .bind(i64::from(disabled))
            .bind(user_id.as_str())
            .execute(&mut *tx)
            .await?;
        if disabled {
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(user_id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Replaces the password hash and ends every session of the user.
    pub async fn set_password_hash(&self, user_id: &UserId, hash: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(user_id.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user_id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Ends every session of a user.
    pub async fn delete_sessions_of(&self, user_id: &UserId) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user_id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    pub async fn record_login(&self, user_id: &UserId, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2")
            .bind(now)
            .bind(user_id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- sessions --------------------------------------------------------

    pub async fn create_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&s.id_hash)
        .bind(s.user_id.as_str())
        .bind(&s.csrf_token)
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The session with this hash and its user, whatever their state; the
    /// caller decides about expiry and disabled accounts.
    pub async fn session_by_hash(
        &self,
        id_hash: &str,
    ) -> Result<Option<(SessionRecord, UserRecord)>, StoreError> {
        let sql = format!(
            "SELECT s.id_hash, s.user_id, s.csrf_token, s.created_at AS s_created_at, s.last_seen_at, \
             s.expires_at, {USER_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1"
        );
        let Some(row) = sqlx::query(AssertSqlSafe(sql))
            .bind(id_hash)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let session = SessionRecord {
            id_hash: row.try_get("id_hash")?,
            user_id: parsed(&row, "user_id")?,
            csrf_token: row.try_get("csrf_token")?,
            created_at: row.try_get("s_created_at")?,
            last_seen_at: row.try_get("last_seen_at")?,
            expires_at: row.try_get("expires_at")?,
        };
        Ok(Some((session, user_from_row(&row)?)))
    }

    pub async fn touch_session(&self, id_hash: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(now)
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Removes sessions past their absolute expiry or idle longer than `idle_secs`.
    pub async fn delete_stale_sessions(&self, now: i64, idle_secs: i64) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
            .bind(now)
            .bind(now - idle_secs)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    // ---- API tokens ------------------------------------------------------

    pub async fn create_token(&self, t: &TokenRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_tokens (id, user_id, name, token_hash, prefix, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(t.id.as_str())
        .bind(t.user_id.as_str())
        .bind(&t.name)
        .bind(&t.token_hash)
        .bind(&t.prefix)
        .bind(t.created_at)
        .bind(t.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn token_by_hash(
        &self,
        hash: &str,
    ) -> Result<Option<(TokenRecord, UserRecord)>, StoreError> {
        let sql = format!(
            "SELECT t.id AS t_id, t.user_id, t.name, t.token_hash, t.prefix, t.created_at AS t_created_at, \
             t.last_used_at, t.expires_at, t.revoked_at, {USER_COLUMNS} \
             FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1"
        );
        let Some(row) = sqlx::query(AssertSqlSafe(sql))
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some((
            token_from_row(&row, "t_id", "t_created_at")?,
            user_from_row(&row)?,
        )))
    }

    /// The user's tokens that are not revoked, newest first.
    pub async fn list_tokens(&self, user_id: &UserId) -> Result<Vec<TokenRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, user_id, name, token_hash, prefix, created_at, last_used_at, expires_at, revoked_at \
             FROM api_tokens WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC, id DESC",
        )
        .bind(user_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| token_from_row(r, "id", "created_at"))
            .collect()
    }

    /// Revokes one of the user's tokens; returns its hash, or `None` when the
    /// user has no such live token.
    pub async fn revoke_token(
        &self,
        user_id: &UserId,
        token_id: &TokenId,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT token_hash FROM api_tokens WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
        )
        .bind(token_id.as_str())
        .bind(user_id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let hash: String = row.try_get("token_hash")?;
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2")
            .bind(now)
            .bind(token_id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(Some(hash))
    }

    /// Revokes every live token of a user; returns how many.
    pub async fn revoke_all_tokens(&self, user_id: &UserId, now: i64) -> Result<u64, StoreError> {
        let r = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(user_id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    pub async fn touch_token(&self, token_id: &TokenId, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(token_id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- my volumes ------------------------------------------------------

    pub async fn my_volumes(&self, user_id: &UserId) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT volume_name FROM user_volumes WHERE user_id = $1 ORDER BY volume_name",
        )
        .bind(user_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("volume_name")?))
            .collect()
    }

    /// Adds a volume to the user's volumes; adding it twice is harmless.
    pub async fn add_my_volume(
        &self,
        user_id: &UserId,
        volume: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO user_volumes (user_id, volume_name, added_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, volume_name) DO NOTHING",
        )
        .bind(user_id.as_str())
        .bind(volume)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes a volume from the user's volumes; returns whether it was there.
    pub async fn remove_my_volume(
        &self,
        user_id: &UserId,
        volume: &str,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM user_volumes WHERE user_id = $1 AND volume_name = $2")
            .bind(user_id.as_str())
            .bind(volume)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }
}

const LAB_COLUMNS: &str = "id, user_id, datalab, volumes, gpus, file, state, reason, port, pid, pid_start, created_at, started_at, stopped_at, cpu_millis, memory_bytes, zone, job, host";

impl Store {
    /// Records a new lab unless its user already has `limit` active labs:
    /// the count and the insert are one transaction holding the user's row
    /// (PostgreSQL) or the database's write lock (SQLite), so parallel
    /// launches, even from two server processes, never pass the limit.
    pub async fn create_lab_within(
        &self,
        l: &LabRecord,
        limits: &LabLimits,
    ) -> Result<LabAdmission, StoreError> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
                .bind(l.user_id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        // On SQLite the insert is the first statement, so the transaction
        // holds the write lock from here on.
        Self::insert_lab(&mut tx, l).await?;
        let mut active = sqlx::query(AssertSqlSafe(format!(
            "SELECT gpus, cpu_millis, memory_bytes FROM labs WHERE user_id = $1 AND state IN ({})",
            placeholders(2, LabState::ACTIVE.len())
        )))
        .bind(l.user_id.as_str());
        for state in LabState::ACTIVE {
            active = active.bind(state.as_str());
        }
        let rows = active.fetch_all(&mut *tx).await?;
        let (mut cpu, mut memory, mut gpus) = (0i64, 0i64, 0i64);
        for row in &rows {
            cpu = cpu.saturating_add(row.try_get::<i64, _>("cpu_millis")?);
            memory = memory.saturating_add(row.try_get::<i64, _>("memory_bytes")?);
            let held: String = row.try_get("gpus")?;
            gpus = gpus.saturating_add(i64::try_from(split_list(&held).len()).unwrap_or(i64::MAX));
        }
        let lab_gpus = i64::try_from(l.gpus.len()).unwrap_or(i64::MAX);
        let over = if rows.len() > limits.labs {
            Some(LabAdmission::OverLimit {
                active: rows.len().saturating_sub(1),
            })
        } else {
            [
                (LabResource::CpuMillis, cpu, l.cpu_millis, limits.cpu_millis),
                (
                    LabResource::MemoryBytes,
                    memory,
                    l.memory_bytes,
                    limits.memory_bytes,
                ),
                (LabResource::Gpus, gpus, lab_gpus, limits.gpus),
            ]
            .into_iter()
            .find_map(|(what, total, mine, limit)| {
                // A lab that asks for none of a resource is never refused
                // for it, so a user over a quota can still open a lab.
                (mine > 0 && limit.is_some_and(|limit| total > limit)).then(|| {
                    LabAdmission::OverQuota {
                        what,
                        used: total.saturating_sub(mine),
                    }
                })
            })
        };
        if let Some(over) = over {
            tx.rollback().await?;
            return Ok(over);
        }
        tx.commit().await?;
        Ok(LabAdmission::Created)
    }

    pub async fn create_lab(&self, l: &LabRecord) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        Self::insert_lab(&mut conn, l).await
    }

    async fn insert_lab(conn: &mut sqlx::AnyConnection, l: &LabRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO labs (id, user_id, datalab, volumes, gpus, file, state, reason, port, pid, pid_start, \
             created_at, started_at, stopped_at, cpu_millis, memory_bytes, zone, job, host) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
        )
        .bind(l.id.as_str())
        .bind(l.user_id.as_str())
        .bind(&l.datalab)
        .bind(l.volumes.join(","))
        .bind(l.gpus.join(","))
        .bind(&l.file)
        .bind(l.state.as_str())
        .bind(&l.reason)
        .bind(l.port)
        .bind(l.pid)
        .bind(l.pid_start)
        .bind(l.created_at)
        .bind(l.started_at)
        .bind(l.stopped_at)
        .bind(l.cpu_millis)
        .bind(l.memory_bytes)
        .bind(l.zone.as_str())
        .bind(&l.job)
        .bind(&l.host)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Writes a lab's changing fields (state, reason, process, times).
    pub async fn update_lab(&self, l: &LabRecord) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE labs SET state = $1, reason = $2, port = $3, pid = $4, pid_start = $5, started_at = $6, \
             stopped_at = $7, job = $8, host = $9 WHERE id = $10",
        )
        .bind(l.state.as_str())
        .bind(&l.reason)
        .bind(l.port)
        .bind(l.pid)
        .bind(l.pid_start)
        .bind(l.started_at)
        .bind(l.stopped_at)
        .bind(&l.job)
        .bind(&l.host)
        .bind(l.id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Writes a lab's changing fields only while its stored state is one
    /// of `expected` (compare and set), so that two writers (a launch and a
    /// stop, or two server processes) never both win; returns whether it
    /// wrote.
    pub async fn update_lab_if(
        &self,
        l: &LabRecord,
        expected: &[LabState],
    ) -> Result<bool, StoreError> {
        if expected.is_empty() {
            return Ok(false);
        }
        let placeholders: Vec<String> =
            (11..11 + expected.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "UPDATE labs SET state = $1, reason = $2, port = $3, pid = $4, pid_start = $5, started_at = $6, \
             stopped_at = $7, job = $8, host = $9 WHERE id = $10 AND state IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind(l.state.as_str())
            .bind(&l.reason)
            .bind(l.port)
            .bind(l.pid)
            .bind(l.pid_start)
            .bind(l.started_at)
            .bind(l.stopped_at)
            .bind(&l.job)
            .bind(&l.host)
            .bind(l.id.as_str());
        for state in expected {
            query = query.bind(state.as_str());
        }
        Ok(query.execute(&self.pool).await?.rows_affected() == 1)
    }

    /// Records when a lab's proxied traffic was last noted (Unix seconds).
    pub async fn set_lab_activity(&self, id: &LabId, at: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE labs SET last_active_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// When a lab's proxied traffic was last recorded, if ever.
    pub async fn lab_activity(&self, id: &LabId) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT last_active_at FROM labs WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => r.try_get::<Option<i64>, _>("last_active_at")?,
            None => None,
        })
    }

    /// Keeps something that happened to a lab.
    pub async fn add_lab_event(&self, e: &LabEventRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO lab_events (id, lab_id, at, kind, pid, command, memory_limit, tool) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(e.lab_id.as_str())
        .bind(e.at)
        .bind(e.kind.as_str())
        .bind(e.pid)
        .bind(&e.command)
        .bind(e.memory_limit)
        .bind(i64::from(e.tool))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A lab's events, oldest first.
    pub async fn lab_events(&self, lab_id: &LabId) -> Result<Vec<LabEventRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT lab_id, at, kind, pid, command, memory_limit, tool FROM lab_events \
             WHERE lab_id = $1 ORDER BY at, id",
        )
        .bind(lab_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(lab_event_from_row).collect()
    }

    /// The events of all of a user's labs, oldest first.
    pub async fn lab_events_of_user(
        &self,
        user_id: &UserId,
    ) -> Result<Vec<LabEventRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.lab_id, e.at, e.kind, e.pid, e.command, e.memory_limit, e.tool \
             FROM lab_events e JOIN labs l ON l.id = e.lab_id WHERE l.user_id = $1 ORDER BY e.at, e.id",
        )
        .bind(user_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(lab_event_from_row).collect()
    }

    pub async fn lab(&self, id: &LabId) -> Result<Option<LabRecord>, StoreError> {
        let sql = format!("SELECT {LAB_COLUMNS} FROM labs WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| lab_from_row(&r)).transpose()
    }

    /// A user's labs, newest first.
    pub async fn labs_of_user(&self, user_id: &UserId) -> Result<Vec<LabRecord>, StoreError> {
        let sql = format!(
            "SELECT {LAB_COLUMNS} FROM labs WHERE user_id = $1 ORDER BY created_at DESC, id DESC"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(user_id.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(lab_from_row).collect()
    }

    /// Labs in any of the given states (to re-adopt or cull them).
    pub async fn labs_in_states(&self, states: &[LabState]) -> Result<Vec<LabRecord>, StoreError> {
        if states.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {LAB_COLUMNS} FROM labs WHERE state IN ({}) ORDER BY created_at",
            placeholders(1, states.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for state in states {
            query = query.bind(state.as_str());
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(lab_from_row).collect()
    }
}

impl Store {
    /// Stores a new proxy session, then deletes the user's oldest sessions
    /// beyond the newest `keep_per_user`, in one transaction.
    pub async fn insert_proxy_session(
        &self,
        s: &ProxySessionRecord,
        keep_per_user: usize,
    ) -> Result<(), StoreError> {
        let keep = i64::try_from(keep_per_user).unwrap_or(i64::MAX);
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO proxy_sessions (digest, lab_id, user_id, created_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&s.digest)
        .bind(s.lab_id.as_str())
        .bind(s.user_id.as_str())
        .bind(s.created_at_ms)
        .bind(s.expires_at_ms)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM proxy_sessions WHERE user_id = $1 AND digest NOT IN \
             (SELECT digest FROM proxy_sessions WHERE user_id = $2 \
              ORDER BY created_at_ms DESC, digest DESC LIMIT $3)",
        )
        .bind(s.user_id.as_str())
        .bind(s.user_id.as_str())
        .bind(keep)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The proxy session with this digest, expired or not.
    pub async fn proxy_session(
        &self,
        digest: &str,
    ) -> Result<Option<ProxySessionRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT digest, lab_id, user_id, created_at_ms, expires_at_ms \
             FROM proxy_sessions WHERE digest = $1",
        )
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(ProxySessionRecord {
                digest: r.try_get("digest")?,
                lab_id: parsed(&r, "lab_id")?,
                user_id: parsed(&r, "user_id")?,
                created_at_ms: r.try_get("created_at_ms")?,
                expires_at_ms: r.try_get("expires_at_ms")?,
            })
        })
        .transpose()
    }

    /// Deletes every proxy session of a lab.
    pub async fn delete_proxy_sessions_of_lab(&self, lab_id: &LabId) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM proxy_sessions WHERE lab_id = $1")
            .bind(lab_id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    /// Deletes every proxy session of a user.
    pub async fn delete_proxy_sessions_of_user(&self, user_id: &UserId) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM proxy_sessions WHERE user_id = $1")
            .bind(user_id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    /// Deletes the proxy sessions that expired at or before `now_ms`.
    pub async fn delete_expired_proxy_sessions(&self, now_ms: i64) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM proxy_sessions WHERE expires_at_ms <= $1")
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }
}

fn lab_event_from_row(r: &AnyRow) -> Result<LabEventRecord, StoreError> {
    Ok(LabEventRecord {
        lab_id: parsed(r, "lab_id")?,
        at: r.try_get("at")?,
        kind: parsed(r, "kind")?,
        pid: r.try_get("pid")?,
        command: r.try_get("command")?,
        memory_limit: r.try_get("memory_limit")?,
        tool: r.try_get::<i64, _>("tool")? != 0,
    })
}

fn lab_from_row(row: &AnyRow) -> Result<LabRecord, StoreError> {
    let volumes: String = row.try_get("volumes")?;
    let gpus: String = row.try_get("gpus")?;
    Ok(LabRecord {
        id: parsed(row, "id")?,
        user_id: parsed(row, "user_id")?,
        datalab: row.try_get("datalab")?,
        volumes: split_list(&volumes),
        gpus: split_list(&gpus),
        file: row.try_get("file")?,
        state: parsed(row, "state")?,
        reason: row.try_get("reason")?,
        port: row.try_get("port")?,
        pid: row.try_get("pid")?,
        pid_start: row.try_get("pid_start")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        stopped_at: row.try_get("stopped_at")?,
        cpu_millis: row.try_get("cpu_millis")?,
        memory_bytes: row.try_get("memory_bytes")?,
        zone: parsed(row, "zone")?,
        job: row.try_get("job")?,
        host: row.try_get("host")?,
    })
}

/// A column holding a value of one of the domain's types.
pub(crate) fn parsed<T>(row: &AnyRow, column: &str) -> Result<T, StoreError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    let raw: String = row.try_get(column)?;
    raw.parse()
        .map_err(|e| StoreError::Corrupt(format!("{column} {raw:?}: {e}")))
}

/// `$first, $first+1, …`, `n` of them.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Creates database `name` on the PostgreSQL server of `admin_url` and
/// returns the URL of the new database. Used by tests and first-time setup.
pub async fn create_postgres_database(admin_url: &str, name: &str) -> Result<String, StoreError> {
    use sqlx::Connection;
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(StoreError::Corrupt(format!(
            "refusing database name {name:?}"
        )));
    }
    let mut conn = sqlx::postgres::PgConnection::connect(admin_url).await?;
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin_url, String::new()),
    };
    let prefix = match base.rfind('/') {
        Some(i) if i > base.find("://").map_or(0, |j| j + 2) => &base[..i],
        _ => base,
    };
    Ok(format!("{prefix}/{name}{query}"))
}

pub(crate) fn user_from_row(row: &AnyRow) -> Result<UserRecord, StoreError> {
    let username: String = row.try_get("username")?;
    let role: String = row.try_get("role")?;
    Ok(UserRecord {
        id: parsed(row, "id")?,
        username: Username::from_str(&username)
            .map_err(|e| StoreError::Corrupt(format!("username {username:?}: {e}")))?,
        password_hash: row.try_get("password_hash")?,
        role: Role::from_str(&role).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        created_at: row.try_get("created_at")?,
        last_login_at: row.try_get("last_login_at")?,
    })
}

fn token_from_row(
    row: &AnyRow,
    id_col: &str,
    created_col: &str,
) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        id: parsed(row, id_col)?,
        user_id: parsed(row, "user_id")?,
        name: row.try_get("name")?,
        token_hash: row.try_get("token_hash")?,
        prefix: row.try_get("prefix")?,
        created_at: row.try_get(created_col)?,
        last_used_at: row.try_get("last_used_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

/// A database URL with any password replaced, safe to print.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}
