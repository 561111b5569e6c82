//! Who is calling, on the HTTP side: the session cookie or bearer token a
//! request carries (resolved by the accounts service in `insitu-core`), the
//! cookies the platform sets, and the per-route check of role and CSRF.
//!
//! Served over https, the platform's cookies carry the `__Host-` prefix:
//! browsers keep such a cookie only when the platform's own host set it
//! (`Secure`, `Path=/`, no `Domain`), so a page on a sibling host (a lab
//! on `*.labs.example.org`) cannot plant a session or a login token that
//! the platform would read. A request carrying a cookie of the platform's
//! twice is refused (`ambiguous_session`) rather than guessed at.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use insitu_api::ErrorCode;
use insitu_core::accounts::Accounts;
use insitu_core::{Principal, Via};
use subtle::ConstantTimeEq;

use crate::access::{Access, Surface};
use crate::error::ApiFailure;
use crate::error_page::error_page;
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "insitu_session";
pub const LOGIN_CSRF_COOKIE: &str = "insitu_login_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The names of the platform's cookies: `__Host-` prefixed over https.
#[derive(Debug, Clone, Copy)]
pub struct CookieNames {
    pub session: &'static str,
    pub login_csrf: &'static str,
    /// The `state` of the OpenID login this browser started.
    pub oidc_state: &'static str,
}

impl CookieNames {
    pub fn new(secure: bool) -> CookieNames {
        if secure {
            CookieNames {
                session: "__Host-insitu_session",
                login_csrf: "__Host-insitu_login_csrf",
                oidc_state: "__Host-insitu_oidc_state",
            }
        } else {
            CookieNames {
                session: SESSION_COOKIE,
                login_csrf: LOGIN_CSRF_COOKIE,
                oidc_state: "insitu_oidc_state",
            }
        }
    }
}

/// A cookie of the platform's sent more than once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateCookie;

impl From<DuplicateCookie> for ApiFailure {
    fn from(_: DuplicateCookie) -> ApiFailure {
        ApiFailure::new(
            ErrorCode::AmbiguousSession,
            "the request carries a session cookie twice (another site may have planted one): clear this site's cookies and log in again",
        )
    }
}

pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Resolves the caller from the request headers. A bearer token that is
/// wrong is an error (the caller meant to authenticate); a stale cookie
/// is simply no session.
pub async fn resolve(
    accounts: &Accounts,
    headers: &HeaderMap,
    session_cookie: &str,
) -> Result<Option<Principal>, ApiFailure> {
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let value = auth.to_str().unwrap_or("");
        let Some(token) = value.strip_prefix("Bearer ").map(str::trim) else {
            return Err(ApiFailure::new(
                ErrorCode::Unauthenticated,
                "use 'Authorization: Bearer <token>'",
            ));
        };
        return match accounts.resolve_token(token).await? {
            Some(p) => Ok(Some(p)),
            None => Err(ApiFailure::new(
                ErrorCode::Unauthenticated,
                "the API token is unknown, revoked or expired",
            )),
        };
    }
    match cookie(headers, session_cookie)? {
        Some(secret) => Ok(accounts.resolve_session(secret).await?),
        None => Ok(None),
    }
}

/// The value of one cookie from the `Cookie` headers; a cookie sent twice
/// (one planted with another `Path` or `Domain`) is an error, never a
/// guess at which one is real.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, DuplicateCookie> {
    let mut found = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v);
    let first = found.next();
    match found.next() {
        Some(_) => Err(DuplicateCookie),
        None => Ok(first),
    }
}

/// A `Set-Cookie` value with the platform's attributes (never a `Domain`:
/// the cookie belongs to the platform's host alone).
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that opens a browser session.
pub fn session_cookie(s: &AppState, secret: &str) -> String {
    set_cookie(
        s.cookies.session,
        secret,
        s.config.session.lifetime_secs(),
        s.secure_cookies,
    )
}

/// The `Set-Cookie` value that ends a browser session.
pub fn clear_session_cookie(s: &AppState) -> String {
    set_cookie(s.cookies.session, "", 0, s.secure_cookies)
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
    let resolved = resolve(
        state.platform.accounts(),
        req.headers(),
        state.cookies.session,
    )
    .await;
    let principal = match resolved {
        Ok(p) => p,
        // A planted second session cookie is refused everywhere, so it can
        // neither log a victim in as the attacker nor be ignored silently.
        Err(e) if e.code() == ErrorCode::AmbiguousSession => return reject(surface, e, &req),
        Err(_) if access == Access::Public => None,
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
        Surface::Page => error_page(e.code(), &e.0.message),
        Surface::VoTable => crate::vo::failure(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_parsed_from_any_header_and_never_taken_twice() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "a=1; insitu_session=xyz".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE), Ok(Some("xyz")));
        assert_eq!(cookie(&h, "b"), Ok(None));
        assert_eq!(cookie(&h, "__Host-insitu_session"), Ok(None));
        h.append(header::COOKIE, "insitu_session=planted".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE), Err(DuplicateCookie));
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            "insitu_session=planted; insitu_session=xyz"
                .parse()
                .unwrap(),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Err(DuplicateCookie));
    }
}
