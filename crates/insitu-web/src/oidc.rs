//! OpenID Connect login (the authorization code flow with PKCE, `state`
//! and `nonce`) with the providers of `[[oidc]]`: the protocol side. Which
//! account an identity is, and whether it may log in, is the accounts
//! service's (`insitu_core::accounts::oidc`).
//!
//! A login starts at `/login/oidc/<provider>`: a fresh `state`, `nonce` and
//! PKCE verifier are kept here (in memory, for ten minutes, used once) and
//! the `state` is set in a cookie of this browser, then the browser goes
//! to the provider. The provider sends it back to the callback with a code;
//! the callback takes the login only when the `state` is one kept here and
//! equals this browser's cookie (so another browser's code or a replayed
//! answer is refused), exchanges the code with the verifier, and checks
//! the ID token: its signature against the provider's published keys
//! (RS256 or ES256; the keys are refetched when a token names one not
//! seen), issuer, audience, expiry and nonce.
//!
//! The provider's endpoints come from its discovery document, read on the
//! first login (so a provider that is down delays no start) and kept for
//! an hour. A server of several processes needs the callback to reach the
//! process the login started on, since the pending logins live in memory.

mod jwt;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use insitu_api::ErrorCode;
use insitu_core::accounts::new_secret;
use insitu_core::accounts::oidc::{LinkPolicy, ProviderIdentity};
use insitu_domain::Role;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::config::{OidcProviderConfig, WebConfigError};
use crate::error::ApiFailure;

pub use jwt::Claims;

/// How long a started login waits for the provider's answer.
const PENDING_TTL: Duration = Duration::from_secs(600);
/// Logins waiting at once, at most (each is a few hundred bytes).
const MAX_PENDING: usize = 10_000;
/// How long a provider's discovery document is trusted.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// Clock difference tolerated between the provider and this server.
const LEEWAY_SECS: i64 = 60;

/// The configured providers and the logins under way.
pub struct Oidc {
    providers: Vec<OidcProviderConfig>,
    http: reqwest::Client,
    pending: Mutex<HashMap<String, Pending>>,
    discovered: RwLock<HashMap<String, (Instant, Arc<Discovered>)>>,
}

/// A login under way, by its `state`.
struct Pending {
    provider: String,
    nonce: String,
    verifier: String,
    redirect_uri: String,
    next: String,
    started: Instant,
}

/// What a provider's discovery document and key set say.
struct Discovered {
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    keys: RwLock<jwt::KeySet>,
}

#[derive(Deserialize)]
struct DiscoveryDocument {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

#[derive(Deserialize)]
struct TokenError {
    error: Option<String>,
}

/// Where to send the browser to log in, and the `state` cookie's value.
pub struct Authorization {
    pub url: String,
    pub state: String,
}

/// A login the provider answered, checked: who it is and where to go.
pub struct Completed {
    pub identity: ProviderIdentity,
    pub policy: LinkPolicy,
    pub next: String,
}

fn fail(code: ErrorCode, message: impl Into<String>) -> ApiFailure {
    ApiFailure::new(code, message)
}

fn unavailable(provider: &str, what: &str, e: impl std::fmt::Display) -> ApiFailure {
    tracing::warn!(provider, what, error = %e, "OpenID provider unavailable");
    fail(
        ErrorCode::OidcProviderUnavailable,
        format!(
            "the login provider {provider} cannot be reached or answered wrongly ({what}); try again later"
        ),
    )
}

fn issuer_key(issuer: &str) -> &str {
    issuer.trim_end_matches('/')
}

impl Oidc {
    pub fn new(providers: Vec<OidcProviderConfig>) -> Result<Oidc, WebConfigError> {
        for (i, p) in providers.iter().enumerate() {
            p.validate()?;
            if providers[..i].iter().any(|q| q.name == p.name) {
                return Err(WebConfigError::Oidc {
                    name: p.name.clone(),
                    reason: "two providers have this name".to_owned(),
                });
            }
        }
        // The HTTP client's TLS needs a process-wide crypto provider: ring,
        // as everywhere in the platform (one already installed stays).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| WebConfigError::Oidc {
                name: String::new(),
                reason: format!("HTTP client: {e}"),
            })?;
        Ok(Oidc {
            providers,
            http,
            pending: Mutex::new(HashMap::new()),
            discovered: RwLock::new(HashMap::new()),
        })
    }

    /// Checks an ID token as a login with `provider` would, `nonce` being
    /// the login's (for tools and tests that hold a token).
    pub async fn verify_id_token(
        &self,
        provider: &str,
        token: &str,
        nonce: &str,
    ) -> Result<Claims, insitu_api::ApiError> {
        let config = self.provider(provider).map_err(|f| f.0)?;
        let discovered = self.discover(config).await.map_err(|f| f.0)?;
        self.verify(config, &discovered, token, nonce)
            .await
            .map_err(|f| f.0)
    }

    /// The providers, in configuration order.
    pub fn providers(&self) -> &[OidcProviderConfig] {
        &self.providers
    }

    fn provider(&self, name: &str) -> Result<&OidcProviderConfig, ApiFailure> {
        self.providers
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                fail(
                    ErrorCode::OidcProviderNotFound,
                    format!("no login provider {name:?} is configured"),
                )
            })
    }

    /// Starts a login with `provider`; the browser returns to `redirect_uri`
    /// and then goes on to `next`.
    pub async fn start(
        &self,
        provider: &str,
        redirect_uri: String,
        next: String,
    ) -> Result<Authorization, ApiFailure> {
        let config = self.provider(provider)?;
        let discovered = self.discover(config).await?;
        let state = new_secret();
        let nonce = new_secret();
        // 64 hex digits: 256 random bits, in PKCE's alphabet.
        let verifier = new_secret();
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let mut scopes = vec!["openid".to_owned()];
        scopes.extend(config.scopes.iter().filter(|s| *s != "openid").cloned());
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &config.client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("scope", &scopes.join(" "))
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .finish();
        let sep = if discovered.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        let url = format!("{}{sep}{query}", discovered.authorization_endpoint);
        self.keep(
            state.clone(),
            Pending {
                provider: provider.to_owned(),
                nonce,
                verifier,
                redirect_uri,
                next,
                started: Instant::now(),
            },
        );
        Ok(Authorization { url, state })
    }

    fn keep(&self, state: String, pending: Pending) {
        let Ok(mut map) = self.pending.lock() else {
            return;
        };
        if map.len() >= MAX_PENDING {
            map.retain(|_, p| p.started.elapsed() < PENDING_TTL);
        }
        if map.len() >= MAX_PENDING
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, p)| p.started)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(state, pending);
    }

    /// Takes the login `state` names, once, when this browser started it
    /// (`cookie` is its `state` cookie) with this provider, in time.
    fn take(
        &self,
        provider: &str,
        state: &str,
        cookie: Option<&str>,
    ) -> Result<Pending, ApiFailure> {
        let refused = || {
            fail(
                ErrorCode::OidcStateInvalid,
                "this login answer does not belong to a login started in this browser (or it was used already, or it expired): start the login again",
            )
        };
        let Some(cookie) = cookie.filter(|c| crate::auth::constant_time_eq(c, state)) else {
            return Err(refused());
        };
        let pending = self
            .pending
            .lock()
            .map_err(|_| refused())?
            .remove(cookie)
            .ok_or_else(refused)?;
        if pending.provider != provider || pending.started.elapsed() >= PENDING_TTL {
            return Err(refused());
        }
        Ok(pending)
    }

    /// Finishes a login: the provider's answer (`code` and `state`, or its
    /// `error`) with this browser's `state` cookie.
    pub async fn complete(
        &self,
        provider: &str,
        answer: &CallbackQuery,
        cookie: Option<&str>,
    ) -> Result<Completed, ApiFailure> {
        let config = self.provider(provider)?;
        let state = answer.state.as_deref().unwrap_or("");
        if let Some(error) = &answer.error {
            // The login is over either way.
            let _ = self.take(provider, state, cookie);
            let description: String = answer
                .error_description
                .as_deref()
                .unwrap_or("")
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect();
            tracing::info!(provider, error = %error, description, "the OpenID provider refused a login");
            let error: String = error
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(64)
                .collect();
            return Err(fail(
                ErrorCode::OidcLoginRefused,
                format!("the login provider {provider} refused the login ({error})"),
            ));
        }
        let pending = self.take(provider, state, cookie)?;
        // RFC 9207: an answer naming its issuer must name this provider's.
        if let Some(iss) = &answer.iss
            && issuer_key(iss) != issuer_key(&config.issuer)
        {
            return Err(fail(
                ErrorCode::OidcStateInvalid,
                "the login answer came from another provider: start the login again",
            ));
        }
        let Some(code) = answer.code.as_deref().filter(|c| !c.is_empty()) else {
            return Err(fail(
                ErrorCode::OidcLoginRefused,
                format!("the login provider {provider} sent no code"),
            ));
        };
        let discovered = self.discover(config).await?;
        let id_token = self.exchange(config, &discovered, code, &pending).await?;
        let claims = self
            .verify(config, &discovered, &id_token, &pending.nonce)
            .await?;
        Ok(Completed {
            policy: LinkPolicy {
                link_by_email: config.link_by_email,
                create_accounts: config.create_accounts,
                role: role_from_claims(config, &claims),
            },
            identity: ProviderIdentity {
                provider: config.name.clone(),
                subject: claims.sub.clone(),
                email: claims.email.clone(),
                email_verified: claims.email_verified(),
                preferred_username: claims.preferred_username.clone(),
            },
            next: pending.next,
        })
    }

    /// The provider's endpoints and keys, read once an hour.
    async fn discover(&self, config: &OidcProviderConfig) -> Result<Arc<Discovered>, ApiFailure> {
        if let Ok(map) = self.discovered.read()
            && let Some((at, d)) = map.get(&config.name)
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok(Arc::clone(d));
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer_key(&config.issuer)
        );
        let doc: DiscoveryDocument = self
            .get_json(&url)
            .await
            .map_err(|e| unavailable(&config.name, "discovery", e))?;
        if issuer_key(&doc.issuer) != issuer_key(&config.issuer) {
            return Err(unavailable(
                &config.name,
                "discovery",
                format!("the document names issuer {:?}", doc.issuer),
            ));
        }
        let keys = self.fetch_keys(&config.name, &doc.jwks_uri).await?;
        let d = Arc::new(Discovered {
            authorization_endpoint: doc.authorization_endpoint,
            token_endpoint: doc.token_endpoint,
            jwks_uri: doc.jwks_uri,
            keys: RwLock::new(keys),
        });
        if let Ok(mut map) = self.discovered.write() {
            map.insert(config.name.clone(), (Instant::now(), Arc::clone(&d)));
        }
        Ok(d)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let r = self.http.get(url).send().await.map_err(|e| e.to_string())?;
        if !r.status().is_success() {
            return Err(format!("HTTP {}", r.status()));
        }
        r.json::<T>().await.map_err(|e| e.to_string())
    }

    async fn fetch_keys(&self, provider: &str, jwks_uri: &str) -> Result<jwt::KeySet, ApiFailure> {
        let set: jwt::JwkSet = self
            .get_json(jwks_uri)
            .await
            .map_err(|e| unavailable(provider, "keys", e))?;
        Ok(jwt::KeySet::from_jwks(&set))
    }

    /// Exchanges the code (with the PKCE verifier) for an ID token.
    async fn exchange(
        &self,
        config: &OidcProviderConfig,
        discovered: &Discovered,
        code: &str,
        pending: &Pending,
    ) -> Result<String, ApiFailure> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", pending.redirect_uri.as_str()),
            ("code_verifier", pending.verifier.as_str()),
        ];
        // client_secret_basic: the id and secret form-encoded, then joined.
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let r = self
            .http
            .post(&discovered.token_endpoint)
            .basic_auth(
                enc(&config.client_id),
                Some(enc(config.client_secret.expose())),
            )
            .form(&form)
            .send()
            .await
            .map_err(|e| unavailable(&config.name, "token exchange", e))?;
        let status = r.status();
        if status.is_client_error() {
            let error = r
                .json::<TokenError>()
                .await
                .ok()
                .and_then(|e| e.error)
                .unwrap_or_else(|| status.to_string());
            let error: String = error
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(64)
                .collect();
            return Err(fail(
                ErrorCode::OidcLoginRefused,
                format!(
                    "the login provider {} refused to complete the login ({error}): start the login again",
                    config.name
                ),
            ));
        }
        if !status.is_success() {
            return Err(unavailable(
                &config.name,
                "token exchange",
                format!("HTTP {status}"),
            ));
        }
        let body: TokenResponse = r
            .json()
            .await
            .map_err(|e| unavailable(&config.name, "token exchange", e))?;
        body.id_token.ok_or_else(|| {
            unavailable(
                &config.name,
                "token exchange",
                "the answer holds no id_token",
            )
        })
    }

    /// Checks an ID token: signature (refetching the keys once when it
    /// names one not known), issuer, audience, expiry and nonce.
    async fn verify(
        &self,
        config: &OidcProviderConfig,
        discovered: &Discovered,
        token: &str,
        nonce: &str,
    ) -> Result<Claims, ApiFailure> {
        let bad = |why: &str| {
            tracing::warn!(provider = %config.name, why, "ID token refused");
            fail(
                ErrorCode::OidcTokenInvalid,
                format!("the login provider's ID token was refused: {why}"),
            )
        };
        let parsed = jwt::Token::parse(token).map_err(|e| bad(&e))?;
        let known = discovered
            .keys
            .read()
            .map(|k| k.has(parsed.kid()))
            .unwrap_or(false);
        if !known {
            let keys = self.fetch_keys(&config.name, &discovered.jwks_uri).await?;
            if let Ok(mut k) = discovered.keys.write() {
                *k = keys;
            }
        }
        let claims = {
            let keys = discovered
                .keys
                .read()
                .map_err(|_| bad("the key set is unreadable"))?;
            parsed.verified(&keys).map_err(|e| bad(&e))?
        };
        if issuer_key(&claims.iss) != issuer_key(&config.issuer) {
            return Err(bad("it was issued by another issuer"));
        }
        if !claims.aud.contains(&config.client_id) {
            return Err(bad("it is for another audience"));
        }
        if claims.aud.len() > 1 && claims.azp.as_deref() != Some(config.client_id.as_str()) {
            return Err(bad("it was issued to another party"));
        }
        let now = insitu_core::clock::now();
        if claims.exp + LEEWAY_SECS <= now {
            return Err(bad("it has expired"));
        }
        if claims.iat.is_some_and(|iat| iat > now + LEEWAY_SECS) {
            return Err(bad("it was issued in the future"));
        }
        match claims.nonce.as_deref() {
            Some(n) if crate::auth::constant_time_eq(n, nonce) => {}
            _ => return Err(bad("its nonce is not this login's")),
        }
        if claims.sub.is_empty() {
            return Err(bad("it names no subject"));
        }
        Ok(claims)
    }
}

/// The role the configured claim gives: the highest its values map to,
/// `user` when none maps; `None` when no roles claim is configured.
fn role_from_claims(config: &OidcProviderConfig, claims: &Claims) -> Option<Role> {
    let claim = config.roles_claim.as_deref()?;
    let values = claims.strings(claim);
    Some(
        values
            .iter()
            .filter_map(|v| config.roles.get(v).copied())
            .max()
            .unwrap_or(Role::User),
    )
}

/// The provider's answer at the callback.
#[derive(Debug, Default, Deserialize)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    #[serde(default)]
    pub error_description: Option<String>,
    /// RFC 9207's issuer in the answer, when the provider sends one.
    #[serde(default)]
    pub iss: Option<String>,
}
