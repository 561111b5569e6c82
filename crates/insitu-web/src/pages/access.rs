//! Pages of access requests: the public "apply for access" form, the
//! applicant's status page (reached by the secret link shown after
//! applying: their place in the waiting list, the moderator's message,
//! and, once approved, the form that sets their password), and the
//! moderators' list with approve and deny. Thin adapters over
//! `insitu_core::access_requests`, like the API beside them.
//!
//! The two public forms carry the login form's double-submit token (a
//! cookie and a field), as no session exists to hold one.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use insitu_core::Principal;
use insitu_core::accounts::new_secret;
use minijinja::context;
use serde::Deserialize;

use super::{Banner, error_banner, outcome, page, see_other, segment, ser, with_banner};
use crate::api::access::state_filter;
use crate::auth;
use crate::client::ClientAddr;
use crate::error::{PageForm, PagePath};
use crate::error_page::failure_page;
use crate::state::AppState;
use crate::wire;

/// A page with a fresh double-submit token: its cookie set, the token in
/// the context as `form_csrf`. A logged-in caller's forms carry their
/// session's token instead (checked before the handler runs).
fn with_form_token(
    s: &AppState,
    name: &str,
    p: Option<&Principal>,
    nav: &str,
    banner: &Banner,
    extra: minijinja::Value,
) -> Response {
    let token = match p {
        Some(p) => p.csrf().to_owned(),
        None => new_secret(),
    };
    let mut resp = page(
        s,
        name,
        p,
        nav,
        banner,
        context! { form_csrf => token.clone(), ..extra },
    );
    let h = resp.headers_mut();
    if p.is_none() {
        let cookie = auth::set_cookie(s.cookies.login_csrf, &token, 3600, s.secure_cookies);
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            h.append(header::SET_COOKIE, v);
        }
    }
    // The status link is a credential: never cached, never a referrer.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// Whether a public form's token is good: a session's was checked before
/// the handler; without one, the field must equal the cookie.
fn form_token_ok(s: &AppState, p: Option<&Principal>, headers: &HeaderMap, field: &str) -> bool {
    if p.is_some() {
        return true;
    }
    let cookie = auth::cookie(headers, s.cookies.login_csrf)
        .ok()
        .flatten()
        .unwrap_or("");
    !cookie.is_empty() && auth::constant_time_eq(cookie, field)
}

const EXPIRED: &str = "The form expired; please try again.";

pub async fn apply_form(
    State(s): State<AppState>,
    p: Option<Extension<Principal>>,
    banner: Banner,
) -> Response {
    let p = p.map(|Extension(p)| p);
    with_form_token(
        &s,
        "access_apply.html",
        p.as_ref(),
        "apply",
        &banner,
        context! {},
    )
}

#[derive(Deserialize)]
pub struct ApplyForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    affiliation: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    csrf: String,
}

pub async fn apply_submit(
    State(s): State<AppState>,
    p: Option<Extension<Principal>>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    PageForm(f): PageForm<ApplyForm>,
) -> Response {
    let p = p.map(|Extension(p)| p);
    if !form_token_ok(&s, p.as_ref(), &headers, &f.csrf) {
        return with_banner("/access/apply", "error", EXPIRED);
    }
    match s
        .platform
        .access_requests()
        .apply(
            &f.name,
            &f.email,
            &f.affiliation,
            &f.reason,
            &f.username,
            client,
        )
        .await
    {
        Ok(applied) => with_banner(
            &wire::access_status_path(&applied.token),
            "notice",
            "Your application is in the waiting list. Keep this page's address: it is the only way back here.",
        ),
        Err(e) => error_banner("/access/apply", e),
    }
}

pub async fn status(
    State(s): State<AppState>,
    p: Option<Extension<Principal>>,
    ClientAddr(client): ClientAddr,
    PagePath(token): PagePath<String>,
    banner: Banner,
) -> Response {
    let p = p.map(|Extension(p)| p);
    let status = match s.platform.access_requests().status(&token, client).await {
        Ok(status) => status,
        Err(e) => return failure_page(e),
    };
    let request = wire::access_status(&status);
    with_form_token(
        &s,
        "access_status.html",
        p.as_ref(),
        "apply",
        &banner,
        context! {
            request => ser(&request),
            action => format!("/access/status/{}/password", segment(&token)),
        },
    )
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    csrf: String,
}

pub async fn set_password(
    State(s): State<AppState>,
    p: Option<Extension<Principal>>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    PagePath(token): PagePath<String>,
    PageForm(f): PageForm<PasswordForm>,
) -> Response {
    let p = p.map(|Extension(p)| p);
    let back = format!("/access/status/{}", segment(&token));
    if !form_token_ok(&s, p.as_ref(), &headers, &f.csrf) {
        return with_banner(&back, "error", EXPIRED);
    }
    if f.password != f.confirm {
        return with_banner(&back, "error", "The two passwords differ.");
    }
    match s
        .platform
        .access_requests()
        .set_password(s.platform.accounts(), &token, &f.password, client)
        .await
    {
        Ok(status) => see_other(&format!(
            "/login?notice={}",
            form_urlencoded::byte_serialize(
                format!(
                    "Your password is set: log in as {}.",
                    status.request.username
                )
                .as_bytes()
            )
            .collect::<String>()
        )),
        Err(e) => error_banner(&back, e),
    }
}

pub async fn requests(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
    banner: Banner,
) -> Response {
    // The banner's own parameters share the query; only `state` is read.
    let state_query: Option<String> = q.as_deref().map(|q| {
        form_urlencoded::parse(q.as_bytes())
            .filter(|(k, _)| k == "state")
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                )
            })
            .collect::<Vec<_>>()
            .join("&")
    });
    let state = match state_filter(state_query.as_deref()) {
        Ok(state) => state,
        Err(e) => return failure_page(e),
    };
    let list = match s.platform.access_requests().list(state).await {
        Ok(list) => list,
        Err(e) => return failure_page(e),
    };
    let items: Vec<_> = list.iter().map(wire::access_request).collect();
    page(
        &s,
        "access_requests.html",
        Some(&p),
        "access",
        &banner,
        context! {
            items => ser(&items),
            state => state.map(|s| s.as_str()),
        },
    )
}

#[derive(Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    message: String,
}

pub async fn approve(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath(id): PagePath<String>,
    PageForm(f): PageForm<DecisionForm>,
) -> Response {
    let r = s
        .platform
        .access_requests()
        .approve(s.platform.accounts(), &p.user_id, &id, &f.message)
        .await
        .map(|st| format!("{} approved: their account exists.", st.request.username));
    outcome("/access/requests", r)
}

pub async fn deny(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath(id): PagePath<String>,
    PageForm(f): PageForm<DecisionForm>,
) -> Response {
    let r = s
        .platform
        .access_requests()
        .deny(&p.user_id, &id, &f.message)
        .await
        .map(|st| format!("{}'s request denied.", st.request.username));
    outcome("/access/requests", r)
}
