//! Accounts: password hashing and checks, browser sessions and personal API
//! tokens as services, and the account operations (create, update, change
//! a password, revoke a token). The HTTP side (cookies, CSRF, the per-route
//! check) is the web crate's.
//!
//! Secrets (session cookies, API tokens) are 256 random bits; only their
//! SHA-256 is stored, so a database leak yields no usable credential. Lookups
//! go through a short-lived in-memory cache so listing endpoints do not hit
//! the database on every request; every change that must take effect at once
//! (logout, revoke, disable, role change, password change) evicts the user's
//! entries from it. Failed logins are throttled, and Argon2 work bounded, by
//! [`throttle`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use insitu_domain::{LabId, Role, TokenId, UserId, Username};
use insitu_store::{
    NewUser, SessionRecord, Store, StoreError, TokenRecord, UserRecord, UserUpdate,
};
use sha2::{Digest, Sha256};

use crate::clock::now;
use crate::config::{AdminConfig, ConfigError, LoginConfig, SessionConfig};
use crate::error::{Error, PasswordRule};

pub mod oidc;
pub mod throttle;

use throttle::{PasswordGate, Throttle};

pub const TOKEN_PREFIX: &str = "insitu_";

/// How long a resolved credential is trusted without asking the database.
const CACHE_TTL: Duration = Duration::from_secs(5);
/// How often at most a session's or token's last use is written back.
const TOUCH_EVERY_SECS: i64 = 60;

/// An authenticated caller: who they are, and how they proved it.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: UserId,
    pub username: Username,
    pub role: Role,
    pub via: Via,
}

#[derive(Debug, Clone)]
pub enum Via {
    Session {
        id_hash: String,
        csrf: String,
    },
    Token {
        id: TokenId,
    },
    /// A request on a lab's API socket: the lab's owner, by the socket it
    /// came on (see [`crate::labs::api_socket`]); no CSRF, no secret.
    Lab {
        lab: LabId,
    },
}

impl Principal {
    pub fn csrf(&self) -> &str {
        match &self.via {
            Via::Session { csrf, .. } => csrf,
            Via::Token { .. } | Via::Lab { .. } => "",
        }
    }
}

#[derive(Clone)]
struct CacheEntry {
    principal: Principal,
    expires_at: Option<i64>,
    last_seen_at: i64,
    cached_at: Instant,
}

/// Accounts, sessions and tokens, shared by all requests.
pub struct Accounts {
    store: Store,
    session: SessionConfig,
    cache: RwLock<HashMap<String, CacheEntry>>,
    /// Failed logins, counted before each check (see [`throttle`]).
    throttle: Throttle,
    /// Bounds the Argon2 work done at once.
    gate: PasswordGate,
    dummy_hash: String,
}

/// A token id from a request: one that cannot be an id is a token the
/// caller does not have.
/// Every account's username by its id: for views that list many users'
/// things at once (the operator's console), one query for all of them.
pub(crate) async fn usernames_by_id(
    store: &insitu_store::Store,
) -> Result<HashMap<UserId, String>, Error> {
    Ok(store
        .list_users()
        .await?
        .into_iter()
        .map(|u| (u.id, u.username.to_string()))
        .collect())
}

pub fn token_id(raw: &str) -> Result<TokenId, Error> {
    raw.parse().map_err(|_| Error::TokenNotFound)
}

pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    hex(&bytes)
}

pub fn sha256_hex(s: &str) -> String {
    hex(&Sha256::digest(s.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// Hashes a password with Argon2id off the async threads.
pub async fn hash_password(password: &str) -> Result<String, Error> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(Error::PasswordHash)
    })
    .await?
}

async fn verify_password(hash: &str, password: &str) -> bool {
    let (hash, password) = (hash.to_owned(), password.to_owned());
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// Checks a new password against the policy; the error names what is wrong.
pub fn check_new_password(
    cfg: &SessionConfig,
    username: &str,
    password: &str,
) -> Result<(), Error> {
    if password.chars().count() < cfg.min_password_length {
        return Err(Error::WeakPassword(PasswordRule::TooShort {
            min: cfg.min_password_length,
        }));
    }
    if password.eq_ignore_ascii_case(username) {
        return Err(Error::WeakPassword(PasswordRule::NotTheUsername));
    }
    Ok(())
}

impl Accounts {
    pub async fn new(
        store: Store,
        session: SessionConfig,
        login: LoginConfig,
    ) -> Result<Accounts, Error> {
        let dummy_hash = hash_password(&new_secret()).await?;
        Ok(Accounts {
            store,
            session,
            cache: RwLock::new(HashMap::new()),
            gate: PasswordGate::new(login.concurrent_checks, login.queued_checks),
            throttle: Throttle::new(login),
            dummy_hash,
        })
    }

    pub fn session_config(&self) -> &SessionConfig {
        &self.session
    }

    /// Checks a username and password tried from `client`. Unknown users
    /// cost the same time as known ones. The try is counted as a failure
    /// before the password is verified (see [`throttle`]), and refused
    /// without a check once the account, the client address or the pair of
    /// them has failed too often; it is refused at once when too many
    /// checks are running and waiting.
    pub async fn check_credentials(
        &self,
        username: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<UserRecord, Error> {
        let name = username.parse::<Username>().ok();
        let reservation = self
            .throttle
            .reserve(username, name.is_some(), client, now())
            .map_err(|retry_in_secs| Error::RateLimited { retry_in_secs })?;
        let Ok(_pass) = self.gate.enter().await else {
            self.throttle.release(&reservation);
            return Err(Error::PasswordChecksBusy);
        };
        let user = match &name {
            Some(u) => match self.store.user_by_username(u).await {
                Ok(user) => user,
                Err(e) => {
                    self.throttle.release(&reservation);
                    return Err(e.into());
                }
            },
            None => None,
        };
        let hash = user
            .as_ref()
            .map_or(self.dummy_hash.as_str(), |u| u.password_hash.as_str());
        let ok = verify_password(hash, password).await;
        match user {
            Some(user) if ok => {
                self.throttle.succeeded(&reservation);
                if user.disabled {
                    return Err(Error::AccountDisabled);
                }
                Ok(user)
            }
            _ => Err(Error::InvalidCredentials),
        }
    }

    /// Hashes a new password, within the bound on Argon2 work at once.
    pub(crate) async fn hash_new_password(&self, password: &str) -> Result<String, Error> {
        let _pass = self
            .gate
            .enter()
            .await
            .map_err(|_| Error::PasswordChecksBusy)?;
        hash_password(password).await
    }

    /// Failed-login counters held: (account and address pairs, addresses,
    /// accounts); each is bounded by `login.max_tracked`.
    pub fn login_counters(&self) -> (usize, usize, usize) {
        self.throttle.tracked()
    }

    /// Opens a browser session; returns the cookie value and the CSRF token.
    pub async fn open_session(&self, user: &UserRecord) -> Result<(String, String), Error> {
        let secret = new_secret();
        let csrf = new_secret();
        let t = now();
        self.store
            .create_session(&SessionRecord {
                id_hash: sha256_hex(&secret),
                user_id: user.id.clone(),
                csrf_token: csrf.clone(),
                created_at: t,
                last_seen_at: t,
                expires_at: t + self.session.lifetime_secs(),
            })
            .await?;
        self.store.record_login(&user.id, t).await?;
        Ok((secret, csrf))
    }

    pub async fn close_session(&self, id_hash: &str) -> Result<(), Error> {
        self.store.delete_session(id_hash).await?;
        self.evict_hash(id_hash);
        Ok(())
    }

    /// Creates a personal API token; the secret is returned once.
    pub async fn create_token(
        &self,
        user_id: &UserId,
        name: &str,
        expires_in_days: Option<u32>,
    ) -> Result<(String, TokenRecord), Error> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(Error::TokenName);
        }
        if expires_in_days.is_some_and(|d| d == 0 || d > 3650) {
            return Err(Error::TokenExpiry);
        }
        let secret = format!("{TOKEN_PREFIX}{}", new_secret());
        let t = now();
        let record = TokenRecord {
            id: TokenId::from_uuid(uuid::Uuid::now_v7().as_u128()),
            user_id: user_id.clone(),
            name: name.to_owned(),
            token_hash: sha256_hex(&secret),
            prefix: secret.chars().take(TOKEN_PREFIX.len() + 6).collect(),
            created_at: t,
            last_used_at: None,
            expires_at: expires_in_days.map(|d| t + i64::from(d) * 86_400),
            revoked_at: None,
        };
        self.store.create_token(&record).await?;
        Ok((secret, record))
    }

    /// Exchanges a username and password for a personal API token (the
    /// CLI's login); the secret is returned once.
    pub async fn token_for_login(
        &self,
        username: &str,
        password: &str,
        client: IpAddr,
        token_name: &str,
        expires_in_days: Option<u32>,
    ) -> Result<(String, TokenRecord), Error> {
        let user = self.check_credentials(username, password, client).await?;
        let (token, record) = self
            .create_token(&user.id, token_name, expires_in_days)
            .await?;
        self.store.record_login(&user.id, now()).await?;
        Ok((token, record))
    }

    /// The caller's own account; gone if it was deleted since they logged in.
    pub async fn user(&self, username: &Username) -> Result<UserRecord, Error> {
        self.store
            .user_by_username(username)
            .await?
            .ok_or(Error::AccountGone)
    }

    pub async fn users(&self) -> Result<Vec<UserRecord>, Error> {
        Ok(self.store.list_users().await?)
    }

    /// A user's live API tokens.
    pub async fn tokens(&self, user_id: &UserId) -> Result<Vec<TokenRecord>, Error> {
        Ok(self.store.list_tokens(user_id).await?)
    }

    /// Changes a user's password after checking the current one (tried
    /// from `client`); every session of theirs ends, and with
    /// `revoke_tokens` every API token of theirs too. Returns the account,
    /// whose lab sessions the caller ends as well.
    pub async fn change_password(
        &self,
        username: &Username,
        current: &str,
        new: &str,
        client: IpAddr,
        revoke_tokens: bool,
    ) -> Result<UserRecord, Error> {
        let user = self
            .check_credentials(username.as_str(), current, client)
            .await?;
        check_new_password(&self.session, username.as_str(), new)?;
        let hash = self.hash_new_password(new).await?;
        self.store.set_password_hash(&user.id, &hash).await?;
        if revoke_tokens {
            let n = self.store.revoke_all_tokens(&user.id, now()).await?;
            tracing::info!(username = %user.username, tokens = n, "API tokens revoked with a password change");
        }
        self.evict_user(&user.id);
        Ok(user)
    }

    /// Ends every browser session of a user ("log out everywhere"); API
    /// tokens stay.
    pub async fn end_all_sessions(&self, user_id: &UserId) -> Result<(), Error> {
        self.store.delete_sessions_of(user_id).await?;
        self.evict_user(user_id);
        Ok(())
    }

    /// Revokes one of the user's own live tokens.
    pub async fn revoke_token(&self, user_id: &UserId, id: &TokenId) -> Result<(), Error> {
        match self.store.revoke_token(user_id, id, now()).await? {
            Some(hash) => {
                self.evict_hash(&hash);
                Ok(())
            }
            None => Err(Error::TokenNotFound),
        }
    }

    /// Creates an account (an administrator's act).
    pub async fn create_user(
        &self,
        username: &str,
        password: &str,
        role: Role,
    ) -> Result<UserRecord, Error> {
        let username: Username = username.parse().map_err(|reason| Error::InvalidUsername {
            username: username.to_owned(),
            reason,
        })?;
        check_new_password(&self.session, username.as_str(), password)?;
        let password_hash = self.hash_new_password(password).await?;
        match self
            .store
            .create_user(NewUser {
                username,
                password_hash,
                role,
                now: now(),
            })
            .await
        {
            Ok(u) => Ok(u),
            Err(StoreError::UsernameTaken(name)) => Err(Error::UsernameTaken(name)),
            Err(e) => Err(e.into()),
        }
    }

    /// Applies a role change or (dis)abling; refuses to leave no active
    /// admin, atomically in the store (two administrators demoting each
    /// other at once leave one). The account's sessions and tokens see the
    /// change at once.
    pub async fn update_user(
        &self,
        username: &str,
        role: Option<Role>,
        disabled: Option<bool>,
    ) -> Result<UserRecord, Error> {
        let not_found = || Error::UserNotFound(username.to_owned());
        let name: Username = username.parse().map_err(|_| not_found())?;
        let user = self
            .store
            .user_by_username(&name)
            .await?
            .ok_or_else(not_found)?;
        match self.store.update_user(&user.id, role, disabled).await? {
            UserUpdate::Done => {}
            UserUpdate::WouldLeaveNoAdmin => return Err(Error::LastAdmin),
        }
        self.evict_user(&user.id);
        let updated = self
            .store
            .user_by_username(&name)
            .await?
            .ok_or_else(not_found)?;
        tracing::info!(username = %name, role = %updated.role, disabled = updated.disabled, "account updated");
        Ok(updated)
    }

    pub fn evict_hash(&self, hash: &str) {
        if let Ok(mut c) = self.cache.write() {
            c.remove(hash);
        }
    }

    /// Forgets every cached credential of a user, so a change to the account
    /// takes effect on the next request.
    pub fn evict_user(&self, user_id: &UserId) {
        if let Ok(mut c) = self.cache.write() {
            c.retain(|_, e| e.principal.user_id != *user_id);
        }
    }

    fn cached(&self, hash: &str) -> Option<CacheEntry> {
        let c = self.cache.read().ok()?;
        c.get(hash)
            .filter(|e| e.cached_at.elapsed() < CACHE_TTL)
            .cloned()
    }

    fn remember(&self, hash: String, entry: CacheEntry) {
        if let Ok(mut c) = self.cache.write() {
            if c.len() > 100_000 {
                c.retain(|_, e| e.cached_at.elapsed() < CACHE_TTL);
            }
            c.insert(hash, entry);
        }
    }

    /// The caller holding this session cookie; `None` for a stale or
    /// unknown one, which is simply no session.
    pub async fn resolve_session(&self, secret: &str) -> Result<Option<Principal>, Error> {
        let hash = sha256_hex(secret);
        let t = now();
        let idle = self.session.idle_secs();
        let entry = match self.cached(&hash) {
            Some(e) => e,
            None => {
                let Some((s, user)) = self.store.session_by_hash(&hash).await? else {
                    return Ok(None);
                };
                if user.disabled {
                    return Ok(None);
                }
                let entry = CacheEntry {
                    principal: Principal {
                        user_id: user.id,
                        username: user.username,
                        role: user.role,
                        via: Via::Session {
                            id_hash: hash.clone(),
                            csrf: s.csrf_token,
                        },
                    },
                    expires_at: Some(s.expires_at),
                    last_seen_at: s.last_seen_at,
                    cached_at: Instant::now(),
                };
                self.remember(hash.clone(), entry.clone());
                entry
            }
        };
        if entry.expires_at.is_some_and(|e| e <= t) || entry.last_seen_at + idle <= t {
            self.close_session(&hash).await?;
            return Ok(None);
        }
        if t - entry.last_seen_at >= TOUCH_EVERY_SECS.min(idle / 4) {
            self.store.touch_session(&hash, t).await?;
            let mut updated = entry.clone();
            updated.last_seen_at = t;
            self.remember(hash, updated);
        }
        Ok(Some(entry.principal))
    }

    /// The owner of lab `lab` as a caller on its API socket, read afresh:
    /// a disabled account is refused, one that is gone is
    /// [`Error::AccountGone`].
    pub async fn lab_owner(&self, owner: &UserId, lab: &LabId) -> Result<Principal, Error> {
        let Some(username) = self.store.username_of(owner).await? else {
            return Err(Error::AccountGone);
        };
        let Some(user) = self.store.user_by_username(&username).await? else {
            return Err(Error::AccountGone);
        };
        if user.disabled {
            return Err(Error::AccountDisabled);
        }
        Ok(Principal {
            user_id: user.id,
            username: user.username,
            role: user.role,
            via: Via::Lab { lab: lab.clone() },
        })
    }

    /// The caller holding this API token; `None` for an unknown, revoked or
    /// expired one.
    pub async fn resolve_token(&self, token: &str) -> Result<Option<Principal>, Error> {
        if !token.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let hash = sha256_hex(token);
        let t = now();
        let entry = match self.cached(&hash) {
            Some(e) => e,
            None => {
                let Some((rec, user)) = self.store.token_by_hash(&hash).await? else {
                    return Ok(None);
                };
                if rec.revoked_at.is_some() {
                    return Ok(None);
                }
                if user.disabled {
                    return Err(Error::AccountDisabled);
                }
                let entry = CacheEntry {
                    principal: Principal {
                        user_id: user.id,
                        username: user.username,
                        role: user.role,
                        via: Via::Token { id: rec.id },
                    },
                    expires_at: rec.expires_at,
                    last_seen_at: rec.last_used_at.unwrap_or(0),
                    cached_at: Instant::now(),
                };
                self.remember(hash.clone(), entry.clone());
                entry
            }
        };
        if entry.expires_at.is_some_and(|e| e <= t) {
            return Ok(None);
        }
        if t - entry.last_seen_at >= TOUCH_EVERY_SECS
            && let Via::Token { id } = &entry.principal.via
        {
            self.store.touch_token(id, t).await?;
            let mut updated = entry.clone();
            updated.last_seen_at = t;
            self.remember(hash, updated);
        }
        Ok(Some(entry.principal))
    }
}

/// The administrator created on first start, when their password was
/// generated: the caller shows it once.
#[derive(Clone)]
pub struct InitialAdmin {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for InitialAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitialAdmin")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Creates the first administrator when there is no account yet.
pub(crate) async fn bootstrap_admin(
    store: &Store,
    admin: &AdminConfig,
) -> Result<Option<InitialAdmin>, crate::platform::SetupError> {
    if store.count_users().await? > 0 {
        return Ok(None);
    }
    let username: Username =
        admin
            .username
            .parse()
            .map_err(|reason| ConfigError::AdminUsername {
                name: admin.username.clone(),
                reason,
            })?;
    let (password, generated) = match &admin.password {
        Some(p) => (p.expose().to_owned(), false),
        None => (new_secret().chars().take(20).collect::<String>(), true),
    };
    let password_hash = hash_password(&password).await?;
    store
        .create_user(NewUser {
            username: username.clone(),
            password_hash,
            role: Role::Admin,
            now: now(),
        })
        .await?;
    tracing::info!(username = %username, "first administrator created");
    Ok(generated.then(|| InitialAdmin {
        username: username.to_string(),
        password,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_hex_and_hashes_stable() {
        let a = new_secret();
        assert_eq!(a.len(), 64);
        assert_ne!(a, new_secret());
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[tokio::test]
    async fn passwords_hash_and_verify() {
        let h = hash_password("correct horse").await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "correct horse").await);
        assert!(!verify_password(&h, "wrong horse").await);
        assert!(!verify_password("not a hash", "x").await);
    }
}
