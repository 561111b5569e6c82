//! Logging in with an OpenID provider: the login button's target, which
//! sends the browser to the provider, and the callback the provider sends
//! it back to (see `crate::oidc` for the protocol and its checks). A login
//! that fails ends on the error page with its stable code.

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use insitu_core::Principal;

use super::{Banner, see_other};
use crate::auth::{self, session_cookie};
use crate::error::{ApiFailure, PagePath};
use crate::error_page::failure_page;
use crate::oidc::CallbackQuery;
use crate::redirect::safe_target;
use crate::state::AppState;

/// How long the browser keeps a login's `state` cookie.
const STATE_COOKIE_SECS: i64 = 600;

/// The platform's own URL, for the redirect URI: `public_url`, else from
/// the request's `Host` (which the provider checks against the URIs
/// registered with it).
fn base_url(s: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &s.config.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                })
        })
        .map_or_else(|| s.config.listen.to_string(), str::to_owned);
    format!("http://{host}")
}

fn redirect_uri(base: &str, provider: &str) -> String {
    format!("{base}/login/oidc/{provider}/callback")
}

fn with_cookies(mut resp: Response, cookies: &[String]) -> Response {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// Starts a login with a provider: to the provider, with this browser's
/// `state` cookie set.
pub async fn start(
    State(s): State<AppState>,
    p: Option<Extension<Principal>>,
    PagePath(provider): PagePath<String>,
    headers: HeaderMap,
    banner: Banner,
) -> Response {
    let next = safe_target(banner.next.as_deref(), "/datalabs");
    if p.is_some() {
        return see_other(&next);
    }
    let uri = redirect_uri(&base_url(&s, &headers), &provider);
    match s.oidc.start(&provider, uri, next).await {
        Ok(auth) => with_cookies(
            see_other(&auth.url),
            &[auth::set_cookie(
                s.cookies.oidc_state,
                &auth.state,
                STATE_COOKIE_SECS,
                s.secure_cookies,
            )],
        ),
        Err(e) => failure_page(e),
    }
}

/// The provider's answer: checked, then a session for the account the
/// identity is, and on to where the login was started for.
pub async fn callback(
    State(s): State<AppState>,
    PagePath(provider): PagePath<String>,
    headers: HeaderMap,
    Query(answer): Query<CallbackQuery>,
) -> Response {
    // The state cookie is spent whatever happens; one sent twice is none.
    let cookie = auth::cookie(&headers, s.cookies.oidc_state).ok().flatten();
    let clear = auth::set_cookie(s.cookies.oidc_state, "", 0, s.secure_cookies);
    let result = finish(&s, &provider, &answer, cookie).await;
    match result {
        Ok((secret, next)) => with_cookies(see_other(&next), &[clear, session_cookie(&s, &secret)]),
        Err(e) => with_cookies(failure_page(e), &[clear]),
    }
}

async fn finish(
    s: &AppState,
    provider: &str,
    answer: &CallbackQuery,
    cookie: Option<&str>,
) -> Result<(String, String), ApiFailure> {
    let done = s.oidc.complete(provider, answer, cookie).await?;
    let accounts = s.platform.accounts();
    let user = accounts.provider_login(&done.identity, done.policy).await?;
    let (secret, _csrf) = accounts.open_session(&user).await?;
    tracing::info!(username = %user.username, provider, "logged in through an OpenID provider");
    Ok((secret, safe_target(Some(&done.next), "/datalabs")))
}
