//! Access requests: the waiting list, moderators' decisions, and the
//! account an approval makes (see `insitu_domain::access`).

use insitu_domain::{AccessRequestId, AccessState, UserId, Username};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::records::{NewUser, UserRecord};
use crate::store::{Backend, Store, StoreError, parsed};

/// One access request.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessRequestRecord {
    pub id: AccessRequestId,
    pub name: String,
    /// Lowercase.
    pub email: String,
    pub affiliation: String,
    pub reason: String,
    /// The username asked for.
    pub username: Username,
    pub state: AccessState,
    /// The moderator's message to the applicant.
    pub message: Option<String>,
    /// The moderator who decided, by username (none while waiting, or when
    /// their account is gone).
    pub decided_by: Option<Username>,
    pub decided_at: Option<i64>,
    /// The account an approval made.
    pub user_id: Option<UserId>,
    /// When the applicant set the account's password through their link.
    pub password_set_at: Option<i64>,
    pub created_at: i64,
}

/// A new application, checked.
#[derive(Debug, Clone)]
pub struct NewAccessRequest {
    pub id: AccessRequestId,
    pub name: String,
    pub email: String,
    pub affiliation: String,
    pub reason: String,
    pub username: Username,
    pub token_hash: String,
    pub now: i64,
}

/// What [`Store::create_access_request`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplicationAdmission {
    /// In the waiting list, at this position (1 is next).
    Waiting { position: i64 },
    /// Nothing: a waiting request already asks for this username, or an
    /// account has it.
    UsernameClaimed,
    /// Nothing: a waiting request already has this e-mail address.
    EmailWaiting,
    /// Nothing: the waiting list holds `max` requests.
    ListFull { max: i64 },
}

/// What [`Store::decide_access_request`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum AccessDecision {
    /// Approved; the account made.
    Approved(UserRecord),
    Denied,
    /// Nothing: no such request.
    NotFound,
    /// Nothing: the request was decided already.
    NotWaiting(AccessState),
    /// Nothing: the platform holds `accounts` accounts, its cap.
    CapReached {
        accounts: i64,
    },
    /// Nothing: an account with the username was made meanwhile.
    UsernameTaken,
}

const COLUMNS: &str = "r.id, r.name, r.email, r.affiliation, r.reason, r.username, r.state, \
     r.message, d.username AS decided_by, r.decided_at, r.user_id, r.password_set_at, r.created_at";
const FROM: &str = "access_requests r LEFT JOIN users d ON d.id = r.decided_by";

fn from_row(row: &AnyRow) -> Result<AccessRequestRecord, StoreError> {
    let decided_by: Option<String> = row.try_get("decided_by")?;
    let user_id: Option<String> = row.try_get("user_id")?;
    let corrupt = |what: &str, raw: &str| StoreError::Corrupt(format!("{what} {raw:?}"));
    Ok(AccessRequestRecord {
        id: parsed(row, "id")?,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        affiliation: row.try_get("affiliation")?,
        reason: row.try_get("reason")?,
        username: parsed(row, "username")?,
        state: parsed(row, "state")?,
        message: row.try_get("message")?,
        decided_by: decided_by
            .map(|u| u.parse().map_err(|_| corrupt("decided_by", &u)))
            .transpose()?,
        decided_at: row.try_get("decided_at")?,
        user_id: user_id
            .map(|u| u.parse().map_err(|_| corrupt("user_id", &u)))
            .transpose()?,
        password_set_at: row.try_get("password_set_at")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// On PostgreSQL, takes the table's lock that orders applications and
    /// decisions (the waiting list's bound, the admission cap); on SQLite
    /// the transaction's first write takes the database's write lock.
    async fn lock_access_requests(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    ) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            sqlx::query("LOCK TABLE access_requests IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Puts an application in the waiting list, unless its username or
    /// e-mail address is claimed or the list holds `max_waiting` requests:
    /// checked and inserted in one transaction.
    pub async fn create_access_request(
        &self,
        new: &NewAccessRequest,
        max_waiting: i64,
    ) -> Result<ApplicationAdmission, StoreError> {
        let mut tx = self.pool.begin().await?;
        self.lock_access_requests(&mut tx).await?;
        let inserted = sqlx::query(
            "INSERT INTO access_requests (id, name, email, affiliation, reason, username, token_hash, \
             state, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'waiting', $8) ON CONFLICT DO NOTHING",
        )
        .bind(new.id.as_str())
        .bind(&new.name)
        .bind(&new.email)
        .bind(&new.affiliation)
        .bind(&new.reason)
        .bind(new.username.as_str())
        .bind(&new.token_hash)
        .bind(new.now)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            let email = sqlx::query(
                "SELECT COUNT(*) AS n FROM access_requests WHERE email = $1 AND state = 'waiting'",
            )
            .bind(&new.email)
            .fetch_one(&mut *tx)
            .await?;
            tx.rollback().await?;
            return Ok(if email.try_get::<i64, _>("n")? > 0 {
                ApplicationAdmission::EmailWaiting
            } else {
                ApplicationAdmission::UsernameClaimed
            });
        }
        let taken = sqlx::query("SELECT COUNT(*) AS n FROM users WHERE username = $1")
            .bind(new.username.as_str())
            .fetch_one(&mut *tx)
            .await?;
        if taken.try_get::<i64, _>("n")? > 0 {
            tx.rollback().await?;
            return Ok(ApplicationAdmission::UsernameClaimed);
        }
        let position = Self::position_in(&mut tx, &new.id).await?;
        if position > max_waiting {
            tx.rollback().await?;
            return Ok(ApplicationAdmission::ListFull { max: max_waiting });
        }
        tx.commit().await?;
        Ok(ApplicationAdmission::Waiting { position })
    }

    async fn position_in(
        conn: &mut sqlx::AnyConnection,
        id: &AccessRequestId,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM access_requests WHERE state = 'waiting' AND id <= $1",
        )
        .bind(id.as_str())
        .fetch_one(&mut *conn)
        .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }

    /// A waiting request's place in the waiting list (1 is next).
    pub async fn access_request_position(&self, id: &AccessRequestId) -> Result<i64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Self::position_in(&mut conn, id).await
    }

    /// The request whose status link has this secret's hash.
    pub async fn access_request_by_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<AccessRequestRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM {FROM} WHERE r.token_hash = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn access_request(
        &self,
        id: &AccessRequestId,
    ) -> Result<Option<AccessRequestRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM {FROM} WHERE r.id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Requests in one state (or all), in the order of application, at
    /// most `limit`.
    pub async fn access_requests(
        &self,
        state: Option<AccessState>,
        limit: i64,
    ) -> Result<Vec<AccessRequestRecord>, StoreError> {
        let filter = if state.is_some() {
            "WHERE r.state = $2"
        } else {
            ""
        };
        let sql = format!("SELECT {COLUMNS} FROM {FROM} {filter} ORDER BY r.id LIMIT $1");
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(limit);
        if let Some(s) = state {
            q = q.bind(s.as_str());
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(from_row).collect()
    }

    /// Approves (making the account `account`, unless the platform holds
    /// `cap` accounts already) or denies a waiting request, with the
    /// moderator's message: checked and applied in one transaction, so two
    /// approvals at once never pass the cap, even from two processes.
    pub async fn decide_access_request(
        &self,
        id: &AccessRequestId,
        moderator: &UserId,
        message: &str,
        approve: Option<(NewUser, Option<i64>)>,
        now: i64,
    ) -> Result<AccessDecision, StoreError> {
        let mut tx = self.pool.begin().await?;
        self.lock_access_requests(&mut tx).await?;
        let state = if approve.is_some() {
            AccessState::Approved
        } else {
            AccessState::Denied
        };
        let changed = sqlx::query(
            "UPDATE access_requests SET state = $1, message = $2, decided_by = $3, decided_at = $4 \
             WHERE id = $5 AND state = 'waiting'",
        )
        .bind(state.as_str())
        .bind(message)
        .bind(moderator.as_str())
        .bind(now)
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        if changed.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(match self.access_request(id).await? {
                None => AccessDecision::NotFound,
                Some(r) => AccessDecision::NotWaiting(r.state),
            });
        }
        let Some((new, cap)) = approve else {
            tx.commit().await?;
            return Ok(AccessDecision::Denied);
        };
        if let Some(cap) = cap {
            let row = sqlx::query("SELECT COUNT(*) AS n FROM users")
                .fetch_one(&mut *tx)
                .await?;
            let accounts = row.try_get::<i64, _>("n")?;
            if accounts >= cap {
                tx.rollback().await?;
                return Ok(AccessDecision::CapReached { accounts });
            }
        }
        let user_id = UserId::from_uuid(uuid::Uuid::now_v7().as_u128());
        let inserted = sqlx::query(
            "INSERT INTO users (id, username, password_hash, role, disabled, created_at) \
             VALUES ($1, $2, $3, $4, 0, $5) ON CONFLICT DO NOTHING",
        )
        .bind(user_id.as_str())
        .bind(new.username.as_str())
        .bind(&new.password_hash)
        .bind(new.role.as_str())
        .bind(new.now)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(AccessDecision::UsernameTaken);
        }
        sqlx::query("UPDATE access_requests SET user_id = $1 WHERE id = $2")
            .bind(user_id.as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(AccessDecision::Approved(UserRecord {
            id: user_id,
            username: new.username,
            password_hash: new.password_hash,
            role: new.role,
            disabled: false,
            created_at: new.now,
            last_login_at: None,
        }))
    }

    /// Sets the password of an approved request's account, once: `false`
    /// when it was set already (or the request has no account).
    pub async fn enrol_access_request(
        &self,
        id: &AccessRequestId,
        user_id: &UserId,
        password_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let marked = sqlx::query(
            "UPDATE access_requests SET password_set_at = $1 \
             WHERE id = $2 AND user_id = $3 AND state = 'approved' AND password_set_at IS NULL",
        )
        .bind(now)
        .bind(id.as_str())
        .bind(user_id.as_str())
        .execute(&mut *tx)
        .await?;
        if marked.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(user_id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}
