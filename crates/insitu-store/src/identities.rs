//! Accounts as OpenID providers know them (a provider's subject, linked to
//! one account), and accounts' e-mail addresses.

use insitu_domain::UserId;
use sqlx::{AssertSqlSafe, Row};

use crate::records::UserRecord;
use crate::store::{Store, StoreError, USER_COLUMNS, user_from_row};

impl Store {
    /// The account a provider's subject is linked to.
    pub async fn user_by_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM oidc_identities i JOIN users u ON u.id = i.user_id \
             WHERE i.provider = $1 AND i.subject = $2"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(provider)
            .bind(subject)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| user_from_row(&r)).transpose()
    }

    /// Links a provider's subject to an account; `false` when the subject
    /// was linked already (to whichever account: a link is never moved).
    pub async fn link_identity(
        &self,
        provider: &str,
        subject: &str,
        user_id: &UserId,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "INSERT INTO oidc_identities (provider, subject, user_id, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(provider)
        .bind(subject)
        .bind(user_id.as_str())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The providers an account is linked with.
    pub async fn identities_of(&self, user_id: &UserId) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT provider FROM oidc_identities WHERE user_id = $1 ORDER BY provider",
        )
        .bind(user_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get::<String, _>("provider"))
            .collect::<Result<_, _>>()?)
    }

    /// The account with this e-mail address (compared in lower case).
    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM user_emails e JOIN users u ON u.id = e.user_id \
             WHERE e.email = $1"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(email.to_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| user_from_row(&r)).transpose()
    }

    /// An account's e-mail address; `None` removes it. An address another
    /// account has is [`StoreError::EmailTaken`].
    pub async fn set_user_email(
        &self,
        user_id: &UserId,
        email: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM user_emails WHERE user_id = $1")
            .bind(user_id.as_str())
            .execute(&mut *tx)
            .await?;
        if let Some(email) = email {
            let r = sqlx::query("INSERT INTO user_emails (user_id, email) VALUES ($1, $2)")
                .bind(user_id.as_str())
                .bind(email.to_lowercase())
                .execute(&mut *tx)
                .await;
            match r {
                Ok(_) => {}
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    return Err(StoreError::EmailTaken(email.to_owned()));
                }
                Err(e) => return Err(e.into()),
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// An account's e-mail address.
    pub async fn user_email(&self, user_id: &UserId) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT email FROM user_emails WHERE user_id = $1")
            .bind(user_id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<String, _>("email")).transpose()?)
    }
}
