//! Access requests: a stranger applies for an account on a public form
//! (name, e-mail, affiliation, reason, the username they would like) and
//! gets a status link holding a 256-bit secret, of which only the SHA-256
//! is stored; the link shows their place in the waiting list, then the
//! moderator's decision and message. A moderator approves (the account is
//! made then, with the `user` role and no usable password, unless the
//! platform holds `access.max_accounts` accounts already: the applicant
//! keeps waiting) or denies with a message. An approved applicant sets
//! their password once, through the same link; no e-mail is sent (the
//! platform has no mail settings), the link is the only channel.
//!
//! Applications are counted per client address and per e-mail address
//! with the login's [`Throttle`], every application a "failure"; status
//! links that name no request are counted per address the same way, so
//! guessing links is bounded as guessing passwords is.

use std::net::IpAddr;

use insitu_domain::access::{MAX_MESSAGE, text_field};
use insitu_domain::{AccessRequestId, AccessState, Application, Role, UserId};
use insitu_store::{
    AccessDecision, AccessRequestRecord, ApplicationAdmission, NewAccessRequest, NewUser, Store,
};

use crate::accounts::throttle::Throttle;
use crate::accounts::{Accounts, check_new_password, new_secret, sha256_hex};
use crate::clock::now;
use crate::config::AccessConfig;
use crate::error::Error;

/// Most requests a moderator's list shows at once.
pub const LIST_LIMIT: i64 = 1000;

/// An application as it went in: the status link's secret, shown once.
#[derive(Debug, Clone)]
pub struct Applied {
    pub token: String,
    pub request: AccessRequestRecord,
    pub position: i64,
}

/// A request as its applicant or a moderator sees it: with its place in
/// the waiting list while it waits (1 is next).
#[derive(Debug, Clone)]
pub struct AccessStatus {
    pub request: AccessRequestRecord,
    pub position: Option<i64>,
}

pub struct AccessRequests {
    store: Store,
    cfg: AccessConfig,
    applications: Throttle,
    links: Throttle,
}

impl AccessRequests {
    pub fn new(store: Store, cfg: AccessConfig) -> AccessRequests {
        AccessRequests {
            store,
            applications: Throttle::new(cfg.application_limits()),
            links: Throttle::new(cfg.link_limits()),
            cfg,
        }
    }

    /// Takes an application from `client`: checked, counted, put in the
    /// waiting list.
    pub async fn apply(
        &self,
        name: &str,
        email: &str,
        affiliation: &str,
        reason: &str,
        username: &str,
        client: IpAddr,
    ) -> Result<Applied, Error> {
        if !self.cfg.open {
            return Err(Error::ApplicationsClosed);
        }
        let app = Application::parse(name, email, affiliation, reason, username)
            .map_err(Error::InvalidApplication)?;
        let email = app.email.to_lowercase();
        self.applications
            .reserve(&email, true, client, now())
            .map_err(|retry_in_secs| Error::AccessRateLimited { retry_in_secs })?;
        let token = new_secret();
        let new = NewAccessRequest {
            id: AccessRequestId::from_uuid(uuid::Uuid::now_v7().as_u128()),
            name: app.name,
            email,
            affiliation: app.affiliation,
            reason: app.reason,
            username: app.username,
            token_hash: sha256_hex(&token),
            now: now(),
        };
        let position = match self
            .store
            .create_access_request(&new, self.cfg.max_waiting)
            .await?
        {
            ApplicationAdmission::Waiting { position } => position,
            ApplicationAdmission::UsernameClaimed => {
                return Err(Error::UsernameClaimed(new.username.to_string()));
            }
            ApplicationAdmission::EmailWaiting => return Err(Error::AlreadyApplied),
            ApplicationAdmission::ListFull { max } => return Err(Error::WaitingListFull { max }),
        };
        let request = self
            .store
            .access_request(&new.id)
            .await?
            .ok_or(Error::AccessRequestNotFound)?;
        tracing::info!(request = %request.id, position, "access requested");
        Ok(Applied {
            token,
            request,
            position,
        })
    }

    /// The request a status link names, asked from `client`. A link that
    /// names none counts against the address.
    pub async fn status(&self, token: &str, client: IpAddr) -> Result<AccessStatus, Error> {
        let request = self.by_token(token, client).await?;
        self.with_position(request).await
    }

    async fn by_token(&self, token: &str, client: IpAddr) -> Result<AccessRequestRecord, Error> {
        let reservation = self
            .links
            .reserve("", false, client, now())
            .map_err(|retry_in_secs| Error::AccessRateLimited { retry_in_secs })?;
        let well_formed = token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit());
        let found = if well_formed {
            match self
                .store
                .access_request_by_token(&sha256_hex(&token.to_ascii_lowercase()))
                .await
            {
                Ok(found) => found,
                Err(e) => {
                    self.links.release(&reservation);
                    return Err(e.into());
                }
            }
        } else {
            None
        };
        match found {
            Some(r) => {
                self.links.succeeded(&reservation);
                Ok(r)
            }
            None => Err(Error::AccessRequestNotFound),
        }
    }

    async fn with_position(&self, request: AccessRequestRecord) -> Result<AccessStatus, Error> {
        let position = if request.state == AccessState::Waiting {
            Some(self.store.access_request_position(&request.id).await?)
        } else {
            None
        };
        Ok(AccessStatus { request, position })
    }

    /// The requests in one state (or all), in the order of application,
    /// each waiting one with its place (a moderator's view).
    pub async fn list(&self, state: Option<AccessState>) -> Result<Vec<AccessStatus>, Error> {
        let mut waiting = 0;
        let rows = self.store.access_requests(state, LIST_LIMIT).await?;
        Ok(rows
            .into_iter()
            .map(|request| {
                let position = (request.state == AccessState::Waiting).then(|| {
                    waiting += 1;
                    waiting
                });
                AccessStatus { request, position }
            })
            .collect())
    }

    fn request_id(raw: &str) -> Result<AccessRequestId, Error> {
        raw.parse().map_err(|_| Error::AccessRequestNotFound)
    }

    fn message(raw: &str, required: bool) -> Result<String, Error> {
        text_field("message", raw, MAX_MESSAGE, required, true).map_err(Error::InvalidAccessMessage)
    }

    /// Approves a waiting request (a moderator's act): its account is made
    /// with the `user` role and a password nobody knows, unless the
    /// admission cap is reached.
    pub async fn approve(
        &self,
        accounts: &Accounts,
        moderator: &UserId,
        id: &str,
        message: &str,
    ) -> Result<AccessStatus, Error> {
        let id = Self::request_id(id)?;
        let message = Self::message(message, false)?;
        let request = self
            .store
            .access_request(&id)
            .await?
            .ok_or(Error::AccessRequestNotFound)?;
        if request.state != AccessState::Waiting {
            return Err(Error::AccessRequestDecided(request.state));
        }
        let new = NewUser {
            username: request.username.clone(),
            password_hash: accounts.hash_new_password(&new_secret()).await?,
            role: Role::User,
            now: now(),
        };
        let decision = self
            .store
            .decide_access_request(
                &id,
                moderator,
                &message,
                Some((new, self.cfg.max_accounts)),
                now(),
            )
            .await?;
        self.decided(&id, decision).await
    }

    /// Denies a waiting request (a moderator's act), with a message the
    /// applicant reads on their status page.
    pub async fn deny(
        &self,
        moderator: &UserId,
        id: &str,
        message: &str,
    ) -> Result<AccessStatus, Error> {
        let id = Self::request_id(id)?;
        let message = Self::message(message, true)?;
        let decision = self
            .store
            .decide_access_request(&id, moderator, &message, None, now())
            .await?;
        self.decided(&id, decision).await
    }

    async fn decided(
        &self,
        id: &AccessRequestId,
        decision: AccessDecision,
    ) -> Result<AccessStatus, Error> {
        match decision {
            AccessDecision::Approved(user) => {
                tracing::info!(request = %id, username = %user.username, "access approved");
            }
            AccessDecision::Denied => tracing::info!(request = %id, "access denied"),
            AccessDecision::NotFound => return Err(Error::AccessRequestNotFound),
            AccessDecision::NotWaiting(state) => return Err(Error::AccessRequestDecided(state)),
            AccessDecision::CapReached { accounts } => {
                return Err(Error::AdmissionCapReached {
                    accounts,
                    cap: self.cfg.max_accounts.unwrap_or(accounts),
                });
            }
            AccessDecision::UsernameTaken => {
                let request = self.store.access_request(id).await?;
                return Err(Error::UsernameTaken(
                    request.map_or_else(String::new, |r| r.username.to_string()),
                ));
            }
        }
        let request = self
            .store
            .access_request(id)
            .await?
            .ok_or(Error::AccessRequestNotFound)?;
        self.with_position(request).await
    }

    /// Sets the password of an approved applicant's account, once, through
    /// their status link.
    pub async fn set_password(
        &self,
        accounts: &Accounts,
        token: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<AccessStatus, Error> {
        let request = self.by_token(token, client).await?;
        let user_id = match (&request.state, &request.user_id) {
            (AccessState::Approved, Some(user)) => user.clone(),
            (AccessState::Approved, None) => return Err(Error::AccountGone),
            (state, _) => return Err(Error::AccessNotApproved(*state)),
        };
        if request.password_set_at.is_some() {
            return Err(Error::AccessPasswordSet);
        }
        check_new_password(
            accounts.session_config(),
            request.username.as_str(),
            password,
        )?;
        let hash = accounts.hash_new_password(password).await?;
        if !self
            .store
            .enrol_access_request(&request.id, &user_id, &hash, now())
            .await?
        {
            return Err(Error::AccessPasswordSet);
        }
        accounts.evict_user(&user_id);
        tracing::info!(request = %request.id, username = %request.username, "applicant set their password");
        let request = self
            .store
            .access_request(&request.id)
            .await?
            .ok_or(Error::AccessRequestNotFound)?;
        self.with_position(request).await
    }
}
