//! Server-rendered pages. Forms post back here with a CSRF field (checked by
//! the route table's authorization step) and are answered with a redirect
//! carrying a short notice or error, so reloading never resubmits. Like the
//! JSON API beside them, the handlers are thin adapters over the platform's
//! services.

use axum::Extension;
use axum::extract::{FromRequestParts, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use insitu_api::ErrorCode;
use insitu_core::accounts::{new_secret, token_id};
use insitu_core::catalogue::DATALAB_FACETS;
use insitu_core::labs::lab_id;
use insitu_core::query::{Filter, search};
use insitu_core::volumes::VOLUME_FACETS;
use insitu_core::{LabEventRecord, LabRecord, LaunchOrder, Principal};
use insitu_domain::Role;
use minijinja::{Value, context};
use serde::{Deserialize, Serialize};

pub mod pipelines;

use crate::auth::{self, clear_session_cookie, session_cookie};
use crate::client::ClientAddr;
use crate::error::{ApiFailure, PageBody, PageForm, PagePath};
use crate::error_page::{error_page, failure_page};
use crate::redirect::safe_target;
use crate::state::AppState;
use crate::time_fmt::short;
use crate::wire;

pub mod access;
pub mod devlabs;
pub mod discover;
pub mod oidc;
pub mod zones;

/// The notice or error a redirect carries in the query, and `next`. Read
/// leniently: a parameter that cannot be read is no banner, never an error.
#[derive(Default)]
pub struct Banner {
    notice: Option<String>,
    error: Option<String>,
    next: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Banner {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.uri.query().map(banner_from_query).unwrap_or_default())
    }
}

fn ser<T: Serialize>(v: &T) -> Value {
    Value::from(minijinja::value::Serde(v))
}

fn render(s: &AppState, name: &str, ctx: Value) -> Response {
    match s.templates.get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(template = name, error = %e, "page rendering failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error: the page could not be rendered",
            )
                .into_response()
        }
    }
}

/// Context every page shares: the caller, their CSRF token, the banner.
fn base(p: Option<&Principal>, nav: &str, banner: &Banner) -> Value {
    let user = p.map(|p| context! { username => p.username.as_str(), role => p.role.as_str() });
    context! {
        user,
        csrf => p.map_or("", Principal::csrf),
        nav,
        notice => banner.notice.clone(),
        error => banner.error.clone(),
        version => env!("CARGO_PKG_VERSION"),
    }
}

fn page(
    s: &AppState,
    name: &str,
    p: Option<&Principal>,
    nav: &str,
    banner: &Banner,
    extra: Value,
) -> Response {
    render(s, name, context! { ..extra, ..base(p, nav, banner) })
}

fn with_banner(target: &str, kind: &str, text: &str) -> Response {
    let sep = if target.contains('?') { '&' } else { '?' };
    let text: String = form_urlencoded::byte_serialize(text.as_bytes()).collect();
    see_other(&format!("{target}{sep}{kind}={text}"))
}

/// A redirect to `target`; one that cannot be a header (it never should)
/// goes home instead of failing.
fn see_other(target: &str) -> Response {
    match HeaderValue::from_str(target) {
        Ok(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
        Err(_) => Redirect::to("/").into_response(),
    }
}

/// A value from the URL, put back into a path as one segment.
fn segment(value: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(value, SEGMENT).to_string()
}

/// Back to `target` with the failure's message in the error banner.
fn error_banner(target: &str, e: insitu_core::Error) -> Response {
    with_banner(target, "error", &ApiFailure::from(e).0.message).into_response()
}

fn lab_of(s: &AppState, l: &LabRecord, events: &[LabEventRecord]) -> insitu_api::Lab {
    wire::lab(l, s.platform.labs().progress(&l.id), events)
}

fn outcome(target: &str, result: Result<String, insitu_core::Error>) -> Response {
    match result {
        Ok(notice) => with_banner(target, "notice", &notice).into_response(),
        Err(e) => error_banner(target, e),
    }
}

pub async fn home(p: Option<Extension<Principal>>) -> Redirect {
    Redirect::to(if p.is_some() { "/datalabs" } else { "/login" })
}

pub async fn stylesheet() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        crate::templates::STYLESHEET,
    )
        .into_response()
}

pub async fn script() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        crate::templates::SCRIPT,
    )
        .into_response()
}

pub async fn login_form(
    State(s): State<AppState>,
    p: Option<Extension<Principal>>,
    banner: Banner,
) -> Response {
    if p.is_some() {
        return see_other(&safe_target(banner.next.as_deref(), "/datalabs"));
    }
    let login_csrf = new_secret();
    let cookie = auth::set_cookie(s.cookies.login_csrf, &login_csrf, 3600, s.secure_cookies);
    let next = safe_target(banner.next.as_deref(), "/datalabs");
    let encoded_next: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
    let providers: Vec<Value> = s
        .oidc
        .providers()
        .iter()
        .map(|p| {
            let href = format!("/login/oidc/{}?next={encoded_next}", p.name);
            context! { name => p.name.clone(), label => p.label(), href }
        })
        .collect();
    let mut resp = page(
        &s,
        "login.html",
        None,
        "login",
        &banner,
        context! { login_csrf, providers, next },
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

pub async fn login_submit(
    State(s): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: axum::http::HeaderMap,
    PageForm(f): PageForm<LoginForm>,
) -> Response {
    let next = safe_target(Some(&f.next), "/datalabs");
    let back = format!(
        "/login?next={}",
        form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
    );
    // A login token sent twice (one planted by another site) is no token.
    let cookie_csrf = auth::cookie(&headers, s.cookies.login_csrf)
        .ok()
        .flatten()
        .unwrap_or("");
    if cookie_csrf.is_empty() || !auth::constant_time_eq(cookie_csrf, &f.csrf) {
        return with_banner(&back, "error", "The login form expired; please try again.")
            .into_response();
    }
    let accounts = s.platform.accounts();
    let user = match accounts
        .check_credentials(&f.username, &f.password, client)
        .await
    {
        Ok(u) => u,
        Err(e) => return error_banner(&back, e),
    };
    match accounts.open_session(&user).await {
        Ok((secret, _csrf)) => {
            let mut resp = see_other(&next);
            for c in [
                session_cookie(&s, &secret),
                auth::set_cookie(s.cookies.login_csrf, "", 0, s.secure_cookies),
            ] {
                if let Ok(v) = HeaderValue::from_str(&c) {
                    resp.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            resp
        }
        Err(e) => error_banner(&back, e),
    }
}

/// Logs out this browser, and the user's labs on the proxy.
pub async fn logout(State(s): State<AppState>, Extension(p): Extension<Principal>) -> Response {
    if let Err(e) = s.platform.log_out(&p).await {
        return failure_page(e);
    }
    logged_out(&s, "You are logged out.")
}

/// Logs the user out in every browser and on the proxy.
pub async fn logout_everywhere(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Response {
    if let Err(e) = s.platform.log_out_everywhere(&p.user_id).await {
        return failure_page(e);
    }
    logged_out(&s, "You are logged out everywhere.")
}

fn logged_out(s: &AppState, notice: &str) -> Response {
    let mut resp = with_banner("/login", "notice", notice).into_response();
    if let Ok(v) = HeaderValue::from_str(&clear_session_cookie(s)) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

#[derive(Serialize)]
struct FacetView {
    name: &'static str,
    label: &'static str,
    values: Vec<FacetValueView>,
}

#[derive(Serialize)]
struct FacetValueView {
    value: String,
    label: String,
    count: usize,
    selected: bool,
}

fn facet_views(
    names: &[&'static str],
    counts: &std::collections::BTreeMap<String, Vec<insitu_api::FacetCount>>,
    filter: &Filter,
) -> Vec<FacetView> {
    names
        .iter()
        .map(|name| FacetView {
            name,
            label: match *name {
                "kind" => "Kind",
                "domain" => "Domain",
                "mission" => "Mission",
                "property" => "Properties",
                "instrument" => "Instrument",
                "zone" => "Datazone",
                _ => "Other",
            },
            values: counts
                .get(*name)
                .map(|vs| {
                    vs.iter()
                        .map(|c| FacetValueView {
                            value: c.value.clone(),
                            label: c.value.replace('_', " "),
                            count: c.count,
                            selected: filter.is_selected(name, &c.value),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

pub async fn datalabs(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> Response {
    let banner = Banner::default();
    let filter = Filter::parse(q.as_deref(), &DATALAB_FACETS, false).unwrap_or_default();
    let cat = s.platform.datalabs().catalogue();
    let starred = s.platform.devlabs().starred(&p).await.unwrap_or_default();
    let visible: Vec<_> = cat.visible_to(&p.username).into_iter().cloned().collect();
    let (hits, counts) = search(&visible, &filter, &DATALAB_FACETS);
    let items: Vec<_> = hits
        .into_iter()
        .map(|d| wire::datalab_in(&cat, d, &starred))
        .collect();
    let facets = facet_views(&DATALAB_FACETS, &counts, &filter);
    let extra = context! { items => ser(&items), facets => ser(&facets), q => filter.q.clone(), total => visible.len() };
    page(&s, "datalabs.html", Some(&p), "datalabs", &banner, extra)
}

pub async fn datalab(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath(name): PagePath<String>,
    headers: axum::http::HeaderMap,
    banner: Banner,
) -> Response {
    let (zone_choices, current_zone) = zones::choices(&s, &headers);
    let cat = s.platform.datalabs().catalogue();
    let volumes = s.platform.volumes();
    let mine = volumes.mine(&p.user_id).await.unwrap_or_default();
    let viewer = match s.platform.viewer(&p).await {
        Ok(v) => v,
        Err(e) => return failure_page(e),
    };
    let my_volumes: Vec<_> = mine
        .iter()
        .filter_map(|n| volumes.volume_for(&viewer, n).ok())
        .map(|v| wire::volume(v, true))
        .collect();
    let starred = s.platform.devlabs().starred(&p).await.unwrap_or_default();
    match cat.get_for(&p.username, &name) {
        Some(d) => page(
            &s,
            "datalab.html",
            Some(&p),
            "datalabs",
            &banner,
            context! { d => ser(&wire::datalab_in(&cat, d, &starred)), my_volumes => ser(&my_volumes), zones => zone_choices, current_zone },
        ),
        None => error_page(
            ErrorCode::DatalabNotFound,
            &format!("No datalab {name:?} in the catalogue."),
        ),
    }
}

pub async fn volumes(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> Response {
    let banner: Banner = q.as_deref().map(banner_from_query).unwrap_or_default();
    let filter = Filter::parse(q.as_deref(), &VOLUME_FACETS, false).unwrap_or_default();
    let volumes = s.platform.volumes();
    let mine_names = match volumes.mine(&p.user_id).await {
        Ok(m) => m,
        Err(e) => return failure_page(e),
    };
    let viewer = match s.platform.viewer(&p).await {
        Ok(v) => v,
        Err(e) => return failure_page(e),
    };
    let visible = volumes.visible(&viewer);
    let (hits, counts) = search(&visible, &filter, &VOLUME_FACETS);
    let items: Vec<_> = hits
        .into_iter()
        .map(|v| wire::volume(v, mine_names.contains(&v.spec.name.to_string())))
        .collect();
    let mine: Vec<_> = mine_names
        .iter()
        .filter_map(|n| volumes.volume_for(&viewer, n).ok())
        .map(|v| wire::volume(v, true))
        .collect();
    let facets = facet_views(&VOLUME_FACETS, &counts, &filter);
    page(
        &s,
        "volumes.html",
        Some(&p),
        "volumes",
        &banner,
        context! { items => ser(&items), mine => ser(&mine), facets => ser(&facets), q => filter.q.clone() },
    )
}

fn banner_from_query(q: &str) -> Banner {
    let mut b = Banner::default();
    for (k, v) in form_urlencoded::parse(q.as_bytes()) {
        match k.as_ref() {
            "notice" => b.notice = Some(v.into_owned()),
            "error" => b.error = Some(v.into_owned()),
            "next" => b.next = Some(v.into_owned()),
            _ => {}
        }
    }
    b
}

#[derive(Serialize)]
struct FileView {
    name: String,
    size: u64,
    dir: bool,
    /// A FITS file, offered to the datalabs that open files.
    fits: bool,
}

/// Whether a file's name says FITS (`.fits`, `.fit`, `.fts`, compressed
/// or not).
fn is_fits(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let base = lower
        .strip_suffix(".gz")
        .or_else(|| lower.strip_suffix(".fz"))
        .unwrap_or(&lower);
    [".fits", ".fit", ".fts"].iter().any(|e| base.ends_with(e))
}

pub async fn volume(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath(name): PagePath<String>,
    banner: Banner,
) -> Response {
    let volumes = s.platform.volumes();
    let viewer = match s.platform.viewer(&p).await {
        Ok(v) => v,
        Err(e) => return failure_page(e),
    };
    let Ok(v) = volumes.volume_for(&viewer, &name) else {
        return error_page(
            ErrorCode::VolumeNotFound,
            &format!("No data volume {name:?} in the catalogue."),
        );
    };
    let mine = volumes.mine(&p.user_id).await.unwrap_or_default();
    let source = v.spec.source.clone();
    let files = tokio::task::spawn_blocking(move || {
        let mut files: Vec<FileView> = std::fs::read_dir(&source)
            .map(|rd| {
                rd.flatten()
                    .take(500)
                    .filter_map(|e| {
                        let m = e.metadata().ok()?;
                        let name = e.file_name().to_string_lossy().into_owned();
                        Some(FileView {
                            fits: m.is_file() && is_fits(&name),
                            name,
                            size: m.len(),
                            dir: m.is_dir(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort_by(|a, b| a.name.cmp(&b.name));
        files
    })
    .await
    .unwrap_or_default();
    let view = wire::volume(v, mine.contains(&name));
    // The datalabs a FITS file can be opened in, from this page.
    let cat = s.platform.datalabs().catalogue();
    let openers: Vec<_> = cat
        .visible_to(&p.username)
        .into_iter()
        .filter(|d| d.launch.opens_files())
        .map(wire::datalab)
        .collect();
    page(
        &s,
        "volume.html",
        Some(&p),
        "volumes",
        &banner,
        context! { v => ser(&view), files => ser(&files), openers => ser(&openers) },
    )
}

#[derive(Deserialize)]
pub struct BackForm {
    #[serde(default)]
    back: String,
}

pub async fn volume_add(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath(name): PagePath<String>,
    PageForm(f): PageForm<BackForm>,
) -> Response {
    let target = safe_target(Some(&f.back), "/volumes");
    let r = match s.platform.viewer(&p).await {
        Ok(viewer) => s
            .platform
            .volumes()
            .add_mine(&p.user_id, &viewer, &name)
            .await
            .map(|v| format!("{} added to your volumes.", v.spec.title)),
        Err(e) => Err(e),
    };
    outcome(&target, r)
}

pub async fn volume_remove(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath(name): PagePath<String>,
    PageForm(f): PageForm<BackForm>,
) -> Response {
    let target = safe_target(Some(&f.back), "/volumes");
    let r = match s.platform.viewer(&p).await {
        Ok(viewer) => s
            .platform
            .volumes()
            .remove_mine(&p.user_id, &viewer, &name)
            .await
            .map(|()| format!("{name} removed from your volumes.")),
        Err(e) => Err(e),
    };
    outcome(&target, r)
}

#[derive(Serialize)]
struct TokenView {
    id: String,
    name: String,
    prefix: String,
    created: String,
    last_used: Option<String>,
    expires: Option<String>,
}

async fn account_page(
    s: &AppState,
    p: &Principal,
    banner: &Banner,
    new_token: Option<(String, String)>,
) -> Response {
    let tokens: Vec<TokenView> = match s.platform.accounts().tokens(&p.user_id).await {
        Ok(ts) => ts
            .iter()
            .map(|t| TokenView {
                id: t.id.to_string(),
                name: t.name.clone(),
                prefix: t.prefix.clone(),
                created: short(t.created_at),
                last_used: t.last_used_at.map(short),
                expires: t.expires_at.map(short),
            })
            .collect(),
        Err(e) => return failure_page(e),
    };
    let (new_token_name, new_token) = new_token.unzip();
    let extra = context! {
        tokens => ser(&tokens), new_token, new_token_name, min_password => s.config.session.min_password_length
    };
    let mut resp = page(s, "account.html", Some(p), "account", banner, extra);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

pub async fn account(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    banner: Banner,
) -> Response {
    account_page(&s, &p, &banner, None).await
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
    confirm: String,
    /// The "also revoke my API tokens" box: present when ticked.
    #[serde(default)]
    revoke_tokens: Option<String>,
}

pub async fn account_password(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ClientAddr(client): ClientAddr,
    PageForm(f): PageForm<PasswordForm>,
) -> Response {
    if f.new_password != f.confirm {
        return with_banner("/account", "error", "The two new passwords differ.").into_response();
    }
    let changed = s
        .platform
        .change_password(
            &p.username,
            &f.current_password,
            &f.new_password,
            client,
            f.revoke_tokens.is_some(),
        )
        .await;
    match changed {
        Ok(()) => with_banner("/login", "notice", "Password changed. Please log in again.")
            .into_response(),
        Err(e) => error_banner("/account", e),
    }
}

#[derive(Deserialize)]
pub struct TokenForm {
    name: String,
    #[serde(default)]
    expires_in_days: String,
}

pub async fn account_token_create(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PageForm(f): PageForm<TokenForm>,
) -> Response {
    let days = match f.expires_in_days.trim() {
        "" => None,
        d => match d.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                return with_banner("/account", "error", "Expiry must be a number of days.")
                    .into_response();
            }
        },
    };
    match s
        .platform
        .accounts()
        .create_token(&p.user_id, &f.name, days)
        .await
    {
        Ok((secret, rec)) => {
            let banner = Banner {
                notice: None,
                error: None,
                next: None,
            };
            account_page(&s, &p, &banner, Some((rec.name, secret))).await
        }
        Err(e) => error_banner("/account", e),
    }
}

pub async fn account_token_revoke(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath(id): PagePath<String>,
) -> Response {
    let revoked = async {
        let id = token_id(&id)?;
        s.platform.accounts().revoke_token(&p.user_id, &id).await
    };
    outcome(
        "/account",
        revoked.await.map(|()| "Token revoked.".to_owned()),
    )
}

#[derive(Serialize)]
struct UserView {
    username: String,
    role: &'static str,
    disabled: bool,
    created: String,
    last_login: Option<String>,
}

pub async fn admin_users(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    banner: Banner,
) -> Response {
    let users: Vec<UserView> = match s.platform.accounts().users().await {
        Ok(us) => us
            .iter()
            .map(|u| UserView {
                username: u.username.to_string(),
                role: u.role.as_str(),
                disabled: u.disabled,
                created: short(u.created_at),
                last_login: u.last_login_at.map(short),
            })
            .collect(),
        Err(e) => return failure_page(e),
    };
    let roles: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
    let extra = context! { users => ser(&users), roles, min_password => s.config.session.min_password_length };
    page(&s, "admin_users.html", Some(&p), "users", &banner, extra)
}

#[derive(Deserialize)]
pub struct CreateUserForm {
    username: String,
    password: String,
    role: String,
}

pub async fn admin_user_create(
    State(s): State<AppState>,
    PageForm(f): PageForm<CreateUserForm>,
) -> Response {
    let role = match f.role.parse::<Role>() {
        Ok(r) => r,
        Err(e) => return with_banner("/admin/users", "error", &e.to_string()).into_response(),
    };
    outcome(
        "/admin/users",
        s.platform
            .accounts()
            .create_user(&f.username, &f.password, role)
            .await
            .map(|u| format!("Account {} created.", u.username)),
    )
}

#[derive(Deserialize)]
pub struct UpdateUserForm {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    disabled: Option<String>,
}

pub async fn admin_user_update(
    State(s): State<AppState>,
    PagePath(username): PagePath<String>,
    PageForm(f): PageForm<UpdateUserForm>,
) -> Response {
    let role = match f.role.as_deref().map(str::parse::<Role>).transpose() {
        Ok(r) => r,
        Err(e) => return with_banner("/admin/users", "error", &e.to_string()).into_response(),
    };
    let disabled = f.disabled.as_deref().map(|d| d == "true");
    let r = s
        .platform
        .update_user(&username, role, disabled)
        .await
        .map(|u| {
            format!(
                "{}: role {}, {}.",
                u.username,
                u.role,
                if u.disabled { "disabled" } else { "active" }
            )
        });
    outcome("/admin/users", r)
}

/// The operator's console: every user's active labs.
pub async fn admin_labs(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    RawQuery(q): RawQuery,
    banner: Banner,
) -> Response {
    let labs = match s.platform.labs().operated().await {
        Ok(l) => l,
        Err(e) => return failure_page(e),
    };
    let now = insitu_core::clock::now();
    let mib = |b: Option<u64>| b.map(|b| format!("{:.0} MiB", b as f64 / 1_048_576.0));
    let rows: Vec<_> = labs
        .iter()
        .map(|o| {
            context! {
                id => o.lab.id.to_string(),
                owner => o.owner.as_str(),
                datalab => o.lab.datalab.as_str(),
                state => o.lab.state.to_string(),
                age => human_duration(u64::try_from(now - o.lab.created_at).unwrap_or(0)),
                idle => o.idle.map(|d| human_duration(d.as_secs())),
                memory => mib(o.memory_bytes),
                memory_limit => mib(o.memory_limit_bytes),
                cpu => o.cpu_seconds.map(|c| format!("{c:.1} s")),
                cpu_now => o
                    .cpu_seconds
                    .and(s.platform.usage().cpu_cores(o.lab.id.as_str()))
                    .map(|c| format!("{:.0} %", c * 100.0)),
                zone => o.lab.zone.as_str(),
            }
        })
        .collect();
    let runs = match s.platform.runs().operated().await {
        Ok(r) => r,
        Err(e) => return failure_page(e),
    };
    let usage = match usage_plots(&s, q.as_deref()).await {
        Ok(u) => u,
        Err(e) => return failure_page(e),
    };
    let now_ms = insitu_core::clock::now_ms();
    let run_rows: Vec<_> = runs
        .iter()
        .map(|(r, owner)| {
            context! {
                id => r.id.to_string(),
                owner => owner.as_str(),
                pipeline => format!("{} {}", r.pipeline, r.version),
                zone => r.zone.as_str(),
                state => r.state.to_string(),
                age => human_duration(u64::try_from((now_ms - r.created_at_ms) / 1000).unwrap_or(0)),
            }
        })
        .collect();
    page(
        &s,
        "admin_labs.html",
        Some(&p),
        "running-labs",
        &banner,
        context! { labs => rows, runs => run_rows, ..usage },
    )
}

/// The spans the console's usage plots offer, in seconds; 24 h unless the
/// query's `usage` names another.
const USAGE_SPANS: [(&str, i64); 4] = [
    ("1h", 3600),
    ("24h", 86_400),
    ("7d", 7 * 86_400),
    ("30d", 30 * 86_400),
];

/// The usage plots' part of the console: the span chosen and the charts.
async fn usage_plots(s: &AppState, query: Option<&str>) -> Result<Value, insitu_core::Error> {
    let chosen = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "usage")
        .and_then(|(_, v)| USAGE_SPANS.iter().find(|(name, _)| *name == v))
        .copied()
        .unwrap_or(USAGE_SPANS[1]);
    let range = crate::usage::UsageRange::last(chosen.1, 48, insitu_core::clock::now());
    let points = s
        .platform
        .usage()
        .series(range.from, range.to, range.step)
        .await?;
    let spans: Vec<&str> = USAGE_SPANS.iter().map(|(n, _)| *n).collect();
    Ok(context! {
        usage_span => chosen.0,
        usage_spans => spans,
        usage_svg => crate::usage::svg(&points),
        usage_samples => points.iter().map(|p| p.samples).sum::<u64>(),
    })
}

pub async fn admin_run_cancel(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath(id): PagePath<String>,
    PageForm(f): PageForm<OperatorStopForm>,
) -> Response {
    let r = match insitu_core::runs::run_id(&id) {
        Ok(id) => s
            .platform
            .runs()
            .cancel_for_operator(&id, p.username.as_str(), &f.reason)
            .await
            .map(|(r, _)| format!("Run {} {}: {}", r.id, r.state, r.reason.unwrap_or_default())),
        Err(e) => Err(e),
    };
    outcome("/admin/labs", r)
}

/// `3 h 12 min`, `4 min 5 s`, `12 s`.
fn human_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h} h {m} min")
    } else if m > 0 {
        format!("{m} min {s} s")
    } else {
        format!("{s} s")
    }
}

#[derive(Deserialize)]
pub struct OperatorStopForm {
    #[serde(default)]
    reason: String,
}

pub async fn admin_lab_stop(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath(id): PagePath<String>,
    PageForm(f): PageForm<OperatorStopForm>,
) -> Response {
    let r = match insitu_core::labs::lab_id(&id) {
        Ok(id) => s
            .platform
            .labs()
            .stop_for_operator(&id, p.username.as_str(), &f.reason)
            .await
            .map(|l| format!("Lab {} stopped: {}", l.id, l.reason.unwrap_or_default())),
        Err(e) => Err(e),
    };
    outcome("/admin/labs", r)
}

pub async fn admin_catalogue(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    banner: Banner,
) -> Response {
    let cat = s.platform.datalabs().catalogue();
    let extra = context! {
        problems => ser(&cat.problems),
        count => cat.datalabs.len(),
        dir => s.config.catalogue_dir.display().to_string(),
    };
    page(
        &s,
        "admin_catalogue.html",
        Some(&p),
        "catalogue-health",
        &banner,
        extra,
    )
}

pub async fn admin_catalogue_reload(State(s): State<AppState>) -> Response {
    let cat = s.platform.reload_catalogue().await;
    let msg = format!(
        "Catalogue reloaded: {} datalabs, {} problems.",
        cat.datalabs.len(),
        cat.problems.len()
    );
    with_banner("/admin/catalogue", "notice", &msg).into_response()
}

pub async fn launch(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath(name): PagePath<String>,
    PageBody(body): PageBody,
) -> Response {
    let mut volumes = Vec::new();
    let (mut file, mut back, mut version, mut zone) = (None, None, None, None);
    for (k, v) in form_urlencoded::parse(&body) {
        match k.as_ref() {
            "volume" => volumes.push(v.into_owned()),
            "file" if !v.trim().is_empty() => file = Some(v.trim().to_owned()),
            "version" if !v.trim().is_empty() => version = Some(v.trim().to_owned()),
            "zone" if !v.trim().is_empty() => zone = Some(v.trim().to_owned()),
            "back" => back = Some(v.into_owned()),
            _ => {}
        }
    }
    let order = LaunchOrder {
        datalab: name.clone(),
        volumes,
        file,
        version,
        zone,
    };
    match s.platform.launch(&p, order).await {
        Ok(lab) => see_other(&format!("/my-labs/{}", lab.id)),
        Err(e) => {
            let target = safe_target(back.as_deref(), &format!("/datalabs/{}", segment(&name)));
            error_banner(&target, e)
        }
    }
}

pub async fn my_labs(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    banner: Banner,
) -> Response {
    let labs = match s.platform.labs().of_user(&p.user_id).await {
        Ok(l) => l,
        Err(e) => return failure_page(e),
    };
    let events = match s.platform.labs().events_of_user(&p.user_id).await {
        Ok(e) => e,
        Err(e) => return failure_page(e),
    };
    let items: Vec<_> = labs
        .iter()
        .map(|l| lab_of(&s, l, events.get(&l.id).map_or(&[], Vec::as_slice)))
        .collect();
    let busy = labs.iter().any(|l| l.state.is_changing());
    let (mine, teams) = match s.platform.my_workspaces(&p).await {
        Ok(w) => w,
        Err(e) => return failure_page(e),
    };
    let workspace = wire::workspace_quota(&mine);
    let team_workspaces: Vec<_> = teams
        .iter()
        .map(|(name, u)| (name.to_string(), wire::workspace_quota(u)))
        .collect();
    let compute = match s.platform.compute_quota(&p.user_id).await {
        Ok(c) => wire::compute_quota(&c),
        Err(e) => return failure_page(e),
    };
    let shared: Vec<_> = match s.platform.labs().shared_with_me(&p.user_id).await {
        Ok(l) => l.iter().map(|l| lab_of(&s, l, &[])).collect(),
        Err(e) => return failure_page(e),
    };
    let extra = context! {
        labs => ser(&items), shared => ser(&shared), busy, workspace => ser(&workspace), team_workspaces => ser(&team_workspaces), compute => ser(&compute)
    };
    page(&s, "labs.html", Some(&p), "labs", &banner, extra)
}

pub async fn my_lab(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath(id): PagePath<String>,
    banner: Banner,
) -> Response {
    let labs = s.platform.labs();
    let own = async { labs.own(&p.user_id, &lab_id(&id)?).await };
    let lab = match own.await {
        Ok(l) => l,
        Err(e) => return failure_page(e),
    };
    let events = match labs.events(&lab.id).await {
        Ok(e) => e,
        Err(e) => return failure_page(e),
    };
    let view = lab_of(&s, &lab, &events);
    let sharing = match labs.sharing(&p.user_id, p.username.as_str(), &lab.id).await {
        Ok(sh) => wire::lab_sharing(sh),
        Err(e) => return failure_page(e),
    };
    let logs = labs.log_tail(&lab.id, 60).await;
    let busy = lab.state.is_changing();
    let reached: Vec<&str> = view.progress.iter().map(|s| s.step.as_str()).collect();
    let steps: Vec<_> = insitu_core::labs::STEPS
        .iter()
        .map(|st| {
            let at = view
                .progress
                .iter()
                .find(|p| p.step == *st)
                .map(|p| p.at_ms);
            context! { name => st.replace('_', " "), done => reached.contains(st), at }
        })
        .collect();
    page(
        &s,
        "lab.html",
        Some(&p),
        "labs",
        &banner,
        context! { lab => ser(&view), sharing => ser(&sharing), logs, busy, steps },
    )
}

pub async fn my_lab_stop(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath(id): PagePath<String>,
) -> Response {
    let stopped = async {
        let id = lab_id(&id)?;
        s.platform.labs().stop_own(&p.user_id, &id).await
    };
    let r = stopped
        .await
        .map(|_| "Lab stopped; your workspace is kept.".to_owned());
    outcome(&format!("/my-labs/{}", segment(&id)), r)
}

pub async fn my_lab_open(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath(id): PagePath<String>,
) -> Response {
    let opened = async { s.platform.labs().open(&p.user_id, &lab_id(&id)?).await };
    match opened.await {
        Ok(url) => see_other(&url),
        Err(e @ insitu_core::Error::LabNotRunning { .. }) => {
            error_banner(&format!("/my-labs/{}", segment(&id)), e)
        }
        Err(e) => failure_page(e),
    }
}

pub async fn teams(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    banner: Banner,
) -> Response {
    let teams: Vec<insitu_api::Team> = match s.platform.teams().mine(&p.user_id).await {
        Ok(ts) => ts.iter().map(wire::team).collect(),
        Err(e) => return failure_page(e),
    };
    let extra = context! { teams => ser(&teams) };
    page(&s, "teams.html", Some(&p), "teams", &banner, extra)
}

pub async fn team(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath(name): PagePath<String>,
    banner: Banner,
) -> Response {
    let team = match s.platform.teams().get(&p.user_id, &name).await {
        Ok(t) => t,
        Err(e) => return failure_page(e),
    };
    let owner = team.me.accepted && team.me.role == insitu_domain::TeamRole::Owner;
    let extra = context! { t => ser(&wire::team(&team)), owner };
    page(&s, "team.html", Some(&p), "teams", &banner, extra)
}

#[derive(Deserialize)]
pub struct TeamForm {
    name: String,
}

pub async fn team_create(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PageForm(f): PageForm<TeamForm>,
) -> Response {
    match s.platform.teams().create(&p.user_id, &f.name).await {
        Ok(t) => with_banner(
            &format!("/teams/{}", segment(t.name.as_str())),
            "notice",
            &format!("Team {} created.", t.name),
        ),
        Err(e) => error_banner("/teams", e),
    }
}

#[derive(Deserialize)]
pub struct InviteForm {
    username: String,
    #[serde(default)]
    role: Option<String>,
}

fn team_role(raw: Option<&str>) -> Result<insitu_domain::TeamRole, String> {
    raw.unwrap_or("member")
        .parse()
        .map_err(|e: insitu_domain::UnknownTeamRole| e.to_string())
}

pub async fn team_invite(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath(name): PagePath<String>,
    PageForm(f): PageForm<InviteForm>,
) -> Response {
    let back = format!("/teams/{}", segment(&name));
    let role = match team_role(f.role.as_deref()) {
        Ok(r) => r,
        Err(e) => return with_banner(&back, "error", &e),
    };
    let r = s
        .platform
        .teams()
        .invite(&p.user_id, &name, &f.username, role)
        .await
        .map(|_| format!("{} invited as {role}.", f.username));
    outcome(&back, r)
}

pub async fn team_accept(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath(name): PagePath<String>,
) -> Response {
    let back = format!("/teams/{}", segment(&name));
    let r = s
        .platform
        .teams()
        .accept(&p.user_id, &name)
        .await
        .map(|t| format!("You joined {}: its workspace is in your next labs.", t.name));
    outcome(&back, r)
}

#[derive(Deserialize)]
pub struct RoleForm {
    role: String,
}

pub async fn team_member_role(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath((name, username)): PagePath<(String, String)>,
    PageForm(f): PageForm<RoleForm>,
) -> Response {
    let back = format!("/teams/{}", segment(&name));
    let role = match team_role(Some(&f.role)) {
        Ok(r) => r,
        Err(e) => return with_banner(&back, "error", &e),
    };
    let r = s
        .platform
        .teams()
        .set_role(&p.user_id, &name, &username, role)
        .await
        .map(|_| format!("{username} is now {role}."));
    outcome(&back, r)
}

pub async fn team_member_remove(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath((name, username)): PagePath<(String, String)>,
) -> Response {
    let leaving = username == p.username.as_str();
    let back = if leaving {
        "/teams".to_owned()
    } else {
        format!("/teams/{}", segment(&name))
    };
    let r = s
        .platform
        .teams()
        .remove(&p.user_id, &name, &username)
        .await
        .map(|()| {
            if leaving {
                format!("You left {name}.")
            } else {
                format!("{username} removed from {name}.")
            }
        });
    match r {
        Ok(notice) => with_banner(&back, "notice", &notice),
        // Refused: back to the team, where the reason is shown.
        Err(e) => error_banner(&format!("/teams/{}", segment(&name)), e),
    }
}

#[derive(Deserialize)]
pub struct ShareForm {
    username: String,
}

pub async fn my_lab_share(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath(id): PagePath<String>,
    PageForm(f): PageForm<ShareForm>,
) -> Response {
    let shared = async {
        let lab = lab_id(&id)?;
        s.platform
            .labs()
            .share(&p.user_id, p.username.as_str(), &lab, &f.username)
            .await
    };
    let r = shared
        .await
        .map(|_| format!("Lab shared with {}.", f.username));
    outcome(&format!("/my-labs/{}", segment(&id)), r)
}

#[derive(Deserialize)]
pub struct TeamShareForm {
    team: String,
}

pub async fn my_lab_share_team(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath(id): PagePath<String>,
    PageForm(f): PageForm<TeamShareForm>,
) -> Response {
    let shared = async {
        let lab = lab_id(&id)?;
        s.platform
            .labs()
            .share_with_team(&p.user_id, p.username.as_str(), &lab, &f.team)
            .await
    };
    let r = shared
        .await
        .map(|_| format!("Lab shared with team {}.", f.team));
    outcome(&format!("/my-labs/{}", segment(&id)), r)
}

pub async fn my_lab_unshare_team(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath((id, team)): PagePath<(String, String)>,
) -> Response {
    let revoked = async {
        let lab = lab_id(&id)?;
        s.platform
            .labs()
            .unshare_team(&p.user_id, &lab, &team)
            .await
    };
    let r = revoked
        .await
        .map(|()| format!("Team {team} no longer has this lab."));
    outcome(&format!("/my-labs/{}", segment(&id)), r)
}

#[derive(Deserialize)]
pub struct RenameTeamForm {
    name: String,
}

pub async fn team_rename(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath(team): PagePath<String>,
    PageForm(f): PageForm<RenameTeamForm>,
) -> Response {
    match s.platform.teams().rename(&p.user_id, &team, &f.name).await {
        Ok(t) => with_banner(
            &format!("/teams/{}", segment(t.name.as_str())),
            "notice",
            &format!("Team {team} renamed {}.", t.name),
        ),
        Err(e) => error_banner(&format!("/teams/{}", segment(&team)), e),
    }
}

pub async fn team_delete(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath(team): PagePath<String>,
) -> Response {
    match s.platform.teams().delete(&p.user_id, &team).await {
        Ok(_) => with_banner("/teams", "notice", &format!("Team {team} deleted.")),
        Err(e) => error_banner(&format!("/teams/{}", segment(&team)), e),
    }
}

pub async fn my_lab_unshare(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath((id, username)): PagePath<(String, String)>,
) -> Response {
    let revoked = async {
        let lab = lab_id(&id)?;
        s.platform.labs().unshare(&p.user_id, &lab, &username).await
    };
    let r = revoked
        .await
        .map(|()| format!("{username} no longer has this lab."));
    outcome(&format!("/my-labs/{}", segment(&id)), r)
}
