//! The datazones page: each zone with its kind, the volumes it holds, its
//! capacity and what is free, and the user's current datazone (a cookie of
//! preference, nothing more: a launch names its zone, the datalab's launch
//! form offers the current one first).

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use insitu_core::Principal;
use minijinja::context;
use serde::Deserialize;

use super::{Banner, page, with_banner};
use crate::error::PageForm;
use crate::error_page::failure_page;
use crate::state::AppState;
use crate::wire;

/// The cookie holding the user's current datazone.
pub const CURRENT_ZONE_COOKIE: &str = "insitu_zone";

/// The current datazone the request's cookie names, if it is one of the
/// platform's; the default zone otherwise.
pub fn current_zone(s: &AppState, headers: &HeaderMap) -> String {
    let zones = s.platform.zones();
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == CURRENT_ZONE_COOKIE)
        .map(|(_, v)| v.to_owned())
        .filter(|v| zones.get(v).is_some())
        .unwrap_or_else(|| zones.default_zone().to_string())
}

/// The zones a launch or run form offers (name, title, kind), and the
/// current one, which the form selects first.
pub fn choices(s: &AppState, headers: &HeaderMap) -> (Vec<minijinja::Value>, String) {
    let zones = s
        .platform
        .zones()
        .all()
        .into_iter()
        .map(|z| context! { name => z.name.to_string(), title => z.title.clone(), kind => z.kind.to_string() })
        .collect();
    (zones, current_zone(s, headers))
}

pub async fn zones(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    banner: Banner,
) -> Response {
    let overview = match s.platform.zone_overview(&p).await {
        Ok(z) => z,
        Err(e) => return failure_page(e),
    };
    let default = s.platform.zones().default_zone().clone();
    let items: Vec<_> = overview
        .iter()
        .map(|z| {
            let w = wire::zone(z, &default);
            let figure = |free: Option<String>, all: Option<String>| {
                format!(
                    "{} / {}",
                    free.unwrap_or_else(|| "?".into()),
                    all.unwrap_or_else(|| "?".into())
                )
            };
            let bytes = |b: Option<u64>| b.map(insitu_domain::datalab::format_bytes);
            let num = |c: Option<f64>| c.map(|c| format!("{c}"));
            let gpus = |g: Option<u32>| Some(g.unwrap_or(0).to_string());
            context! {
                name => w.name, title => w.title, kind => w.kind, volumes => w.volumes,
                unavailable => w.unavailable,
                cpu => figure(num(w.free.cpu), num(w.capacity.cpu)),
                memory => figure(bytes(w.free.memory_bytes), bytes(w.capacity.memory_bytes)),
                gpu => figure(gpus(w.free.gpu), gpus(w.capacity.gpu)),
            }
        })
        .collect();
    let current = current_zone(&s, &headers);
    page(
        &s,
        "zones.html",
        Some(&p),
        "zones",
        &banner,
        context! { zones => items, current },
    )
}

#[derive(Deserialize)]
pub struct ZoneChoice {
    zone: String,
}

/// Makes a zone the user's current datazone.
pub async fn choose_zone(State(s): State<AppState>, PageForm(f): PageForm<ZoneChoice>) -> Response {
    if s.platform.zones().get(&f.zone).is_none() {
        return with_banner("/zones", "error", &format!("No datazone {:?}.", f.zone));
    }
    let mut resp = with_banner(
        "/zones",
        "notice",
        &format!("Your current datazone is now {}.", f.zone),
    );
    let cookie = format!(
        "{CURRENT_ZONE_COOKIE}={}; Path=/; SameSite=Lax; Max-Age=31536000",
        f.zone
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}
