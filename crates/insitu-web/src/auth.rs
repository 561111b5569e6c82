//! Who is calling: password hashing, browser sessions, personal API tokens,
//! and the per-route check of role and CSRF.
//!
//! Secrets (session cookies, API tokens) are 256 random bits; only their
//! SHA-256 is stored, so a database leak yields no usable credential. Lookups
//! go through a short-lived in-memory cache so listing endpoints do not hit
//! the database on every request; every change that must take effect at once
//! (logout, revoke, disable, role change, password change) evicts the user's
//! entries from it.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use insitu_api::ErrorCode;
use insitu_domain::{Role, Username};
use insitu_store::{SessionRecord, Store, TokenRecord, UserRecord};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::app::AppState;
use crate::config::SessionConfig;
use crate::error::ApiFailure;
use crate::routes::{Access, Surface};
use crate::time_fmt::now;

pub const SESSION_COOKIE: &str = "insitu_session";
pub const LOGIN_CSRF_COOKIE: &str = "insitu_login_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const TOKEN_PREFIX: &str = "insitu_";

/// How long a resolved credential is trusted without asking the database.
const CACHE_TTL: Duration = Duration::from_secs(5);
/// How often at most a session's or token's last use is written back.
const TOUCH_EVERY_SECS: i64 = 60;
const LOGIN_FAILURES_ALLOWED: u32 = 10;
const LOGIN_WINDOW_SECS: i64 = 300;

/// An authenticated caller, put into request extensions by [`authorize`].
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: String,
    pub username: Username,
    pub role: Role,
    pub via: Via,
}

#[derive(Debug, Clone)]
pub enum Via {
    Session { id_hash: String, csrf: String },
    Token { id: String },
}

impl Principal {
    pub fn csrf(&self) -> &str {
        match &self.via {
            Via::Session { csrf, .. } => csrf,
            Via::Token { .. } => "",
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

/// Authentication state shared by all requests.
pub struct Auth {
    store: Store,
    session: SessionConfig,
    cache: RwLock<HashMap<String, CacheEntry>>,
    login_failures: Mutex<HashMap<String, (u32, i64)>>,
    dummy_hash: String,
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

pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Hashes a password with Argon2id off the async threads.
pub async fn hash_password(password: &str) -> anyhow::Result<String> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
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
) -> Result<(), ApiFailure> {
    if password.chars().count() < cfg.min_password_length {
        return Err(ApiFailure::new(
            ErrorCode::WeakPassword,
            format!(
                "the password must be at least {} characters long",
                cfg.min_password_length
            ),
        ));
    }
    if password.eq_ignore_ascii_case(username) {
        return Err(ApiFailure::new(
            ErrorCode::WeakPassword,
            "the password must not be the username",
        ));
    }
    Ok(())
}

impl Auth {
    pub async fn new(store: Store, session: SessionConfig) -> anyhow::Result<Auth> {
        let dummy_hash = hash_password(&new_secret()).await?;
        Ok(Auth {
            store,
            session,
            cache: RwLock::new(HashMap::new()),
            login_failures: Mutex::new(HashMap::new()),
            dummy_hash,
        })
    }

    pub fn session_config(&self) -> &SessionConfig {
        &self.session
    }

    /// Checks a username and password. Unknown users cost the same time as
    /// known ones, and repeated failures for one username are throttled.
    pub async fn check_credentials(
        &self,
        username: &str,
        password: &str,
    ) -> Result<UserRecord, ApiFailure> {
        let key = username.to_lowercase();
        let t = now();
        {
            let failures = self.login_failures.lock().map_err(|_| poisoned())?;
            if let Some((n, since)) = failures.get(&key)
                && *n >= LOGIN_FAILURES_ALLOWED
                && t - since < LOGIN_WINDOW_SECS
            {
                return Err(ApiFailure::new(
                    ErrorCode::RateLimited,
                    format!(
                        "too many failed logins for this account; try again in {} s",
                        LOGIN_WINDOW_SECS - (t - since)
                    ),
                ));
            }
        }
        let user = match username.parse::<Username>() {
            Ok(u) => self.store.user_by_username(&u).await?,
            Err(_) => None,
        };
        let hash = user
            .as_ref()
            .map_or(self.dummy_hash.as_str(), |u| u.password_hash.as_str());
        let ok = verify_password(hash, password).await;
        match user {
            Some(user) if ok => {
                self.login_failures
                    .lock()
                    .map_err(|_| poisoned())?
                    .remove(&key);
                if user.disabled {
                    return Err(ApiFailure::new(
                        ErrorCode::AccountDisabled,
                        "this account has been disabled",
                    ));
                }
                Ok(user)
            }
            _ => {
                let mut failures = self.login_failures.lock().map_err(|_| poisoned())?;
                let entry = failures.entry(key).or_insert((0, t));
                if t - entry.1 >= LOGIN_WINDOW_SECS {
                    *entry = (0, t);
                }
                entry.0 += 1;
                Err(ApiFailure::new(
                    ErrorCode::InvalidCredentials,
                    "wrong username or password",
                ))
            }
        }
    }

    /// Opens a browser session; returns the cookie value and the CSRF token.
    pub async fn open_session(&self, user: &UserRecord) -> Result<(String, String), ApiFailure> {
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

    pub async fn close_session(&self, id_hash: &str) -> Result<(), ApiFailure> {
        self.store.delete_session(id_hash).await?;
        self.evict_hash(id_hash);
        Ok(())
    }

    /// Creates a personal API token; the secret is returned once.
    pub async fn create_token(
        &self,
        user_id: &str,
        name: &str,
        expires_in_days: Option<u32>,
    ) -> Result<(String, TokenRecord), ApiFailure> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(ApiFailure::new(
                ErrorCode::InvalidRequest,
                "the token name must be 1 to 64 characters",
            ));
        }
        if expires_in_days.is_some_and(|d| d == 0 || d > 3650) {
            return Err(ApiFailure::new(
                ErrorCode::InvalidRequest,
                "expires_in_days must be between 1 and 3650",
            ));
        }
        let secret = format!("{TOKEN_PREFIX}{}", new_secret());
        let t = now();
        let record = TokenRecord {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: user_id.to_owned(),
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

    pub fn evict_hash(&self, hash: &str) {
        if let Ok(mut c) = self.cache.write() {
            c.remove(hash);
        }
    }

    /// Forgets every cached credential of a user, so a change to the account
    /// takes effect on the next request.
    pub fn evict_user(&self, user_id: &str) {
        if let Ok(mut c) = self.cache.write() {
            c.retain(|_, e| e.principal.user_id != user_id);
        }
    }

    /// Resolves the caller from the request headers. A bearer token that is
    /// wrong is an error (the caller meant to authenticate); a stale cookie
    /// is simply no session.
    pub async fn resolve(&self, headers: &HeaderMap) -> Result<Option<Principal>, ApiFailure> {
        if let Some(auth) = headers.get(header::AUTHORIZATION) {
            let value = auth.to_str().unwrap_or("");
            let Some(token) = value.strip_prefix("Bearer ").map(str::trim) else {
                return Err(ApiFailure::new(
                    ErrorCode::Unauthenticated,
                    "use 'Authorization: Bearer <token>'",
                ));
            };
            return match self.resolve_token(token).await? {
                Some(p) => Ok(Some(p)),
                None => Err(ApiFailure::new(
                    ErrorCode::Unauthenticated,
                    "the API token is unknown, revoked or expired",
                )),
            };
        }
        match cookie(headers, SESSION_COOKIE) {
            Some(secret) => self.resolve_session(secret).await,
            None => Ok(None),
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

    async fn resolve_session(&self, secret: &str) -> Result<Option<Principal>, ApiFailure> {
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

    async fn resolve_token(&self, token: &str) -> Result<Option<Principal>, ApiFailure> {
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
                    return Err(ApiFailure::new(
                        ErrorCode::AccountDisabled,
                        "this account has been disabled",
                    ));
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

fn poisoned() -> ApiFailure {
    ApiFailure::new(ErrorCode::Internal, "internal error")
}

/// The value of one cookie from the `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value with the platform's attributes.
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{}",
        if secure { "; Secure" } else { "" }
    )
}

fn is_safe_method(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Per-route check run before every handler: resolves the caller, enforces
/// the route's declared access and, for cookie sessions, the CSRF token on
/// state-changing requests. Handlers read the caller from the extensions.
pub async fn authorize(
    State((state, access, surface)): State<(AppState, Access, Surface)>,
    mut req: Request,
    next: Next,
) -> Response {
    let principal = match state.auth.resolve(req.headers()).await {
        Ok(p) => p,
        Err(e) if access == Access::Public => {
            let _ = e;
            None
        }
        Err(e) => return reject(surface, e, &req),
    };
    if let Access::Role(required) = access {
        let Some(p) = &principal else {
            return reject(
                surface,
                ApiFailure::new(ErrorCode::Unauthenticated, "log in or send an API token"),
                &req,
            );
        };
        if !p.role.allows(required) {
            return reject(
                surface,
                ApiFailure::new(
                    ErrorCode::Forbidden,
                    format!("this needs the {required} role; you are {}", p.role),
                ),
                &req,
            );
        }
    }
    if let Some(p) = &principal
        && let Via::Session { csrf, .. } = &p.via
        && !is_safe_method(req.method())
    {
        let from_header = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        let ok = match from_header {
            Some(h) => constant_time_eq(h, csrf),
            None if surface == Surface::Page => {
                match form_csrf(req, state.config.max_body_bytes).await {
                    Ok((r, Some(field))) if constant_time_eq(&field, csrf) => {
                        req = r;
                        true
                    }
                    Ok((r, _)) => {
                        req = r;
                        false
                    }
                    Err(resp) => return resp,
                }
            }
            None => false,
        };
        if !ok {
            return reject(
                surface,
                ApiFailure::new(
                    ErrorCode::CsrfFailed,
                    "the CSRF token is missing or wrong; reload the page and try again",
                ),
                &req,
            );
        }
    }
    if let Some(p) = principal {
        req.extensions_mut().insert(p);
    }
    next.run(req).await
}

/// Reads a form body to find its `csrf` field, and puts the body back.
async fn form_csrf(req: Request, limit: usize) -> Result<(Request, Option<String>), Response> {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok((req, None));
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return Err(
                ApiFailure::new(ErrorCode::PayloadTooLarge, "the form is too large")
                    .into_response(),
            );
        }
    };
    let field = form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned());
    Ok((Request::from_parts(parts, Body::from(bytes)), field))
}

fn reject(surface: Surface, e: ApiFailure, req: &Request) -> Response {
    match surface {
        Surface::Api => e.into_response(),
        Surface::Page if e.code() == ErrorCode::Unauthenticated => {
            let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
            let next: String = form_urlencoded::byte_serialize(target.as_bytes()).collect();
            Redirect::to(&format!("/login?next={next}")).into_response()
        }
        Surface::Page => crate::pages::error_page(e.code(), &e.0.message),
    }
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

    #[test]
    fn cookies_are_parsed_from_any_header() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "a=1; insitu_session=xyz".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "b"), None);
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
