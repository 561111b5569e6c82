//! The discovery portal's pages: one search over datalabs, data volumes
//! and datasets with facets, a cone and dates; results that launch a
//! datalab or open a dataset in a chosen datalab; and, for
//! administrators, the harvest's progress.

use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use insitu_core::{LaunchOrder, Principal};
use insitu_search::{FacetName, SearchRequest};
use minijinja::context;
use serde::{Deserialize, Serialize};

use super::{
    Banner, banner_from_query, error_banner, page, safe_target, see_other, ser, with_banner,
};
use crate::error::{ApiFailure, PageForm};
use crate::state::AppState;
use crate::wire;

/// The page's script: submits the search when a facet is ticked (kept in
/// a file of its own, so pages need no inline script).
pub const SCRIPT: &str = include_str!("../static/discover.js");

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
        SCRIPT,
    )
        .into_response()
}

#[derive(Serialize)]
struct FacetValue {
    param: String,
    label: String,
    count: usize,
    selected: bool,
}

#[derive(Serialize)]
struct FacetView {
    name: &'static str,
    label: &'static str,
    values: Vec<FacetValue>,
}

/// The parameters of a search without `offset`, to build page links.
fn without_offset(q: Option<&str>) -> String {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(q.unwrap_or("").as_bytes())
        .filter(|(k, _)| k != "offset" && k != "notice" && k != "error")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

pub async fn discover(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> Response {
    let mut banner: Banner = q.as_deref().map(banner_from_query).unwrap_or_default();
    let pairs: Vec<(String, String)> =
        form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes())
            .filter(|(k, _)| k != "notice" && k != "error")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let (request, found) = match SearchRequest::from_pairs(&pairs) {
        Ok(r) => {
            let found = match s.platform.viewer(&p).await {
                Ok(viewer) => s.platform.search().search(&viewer, r.clone()).await,
                Err(e) => Err(e),
            };
            (r, found)
        }
        Err(e) => (SearchRequest::default(), Err(e.into())),
    };
    let found = match found {
        Ok(f) => f,
        Err(e) => {
            banner.error = Some(ApiFailure::from(e).0.message);
            insitu_search::SearchResults::default()
        }
    };
    let facets: Vec<FacetView> = FacetName::ALL
        .iter()
        .map(|f| FacetView {
            name: f.as_str(),
            label: f.label(),
            values: found
                .facets
                .get(f)
                .map(|vs| {
                    vs.iter()
                        .map(|(v, n)| FacetValue {
                            param: format!("{}:{v}", f.as_str()),
                            label: v.replace('_', " "),
                            count: usize::try_from(*n).unwrap_or(usize::MAX),
                            selected: request.is_selected(*f, v),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .filter(|f| !f.values.is_empty())
        .collect();
    let items: Vec<_> = found.hits.iter().map(wire::search_hit).collect();
    let openers: Vec<_> = s
        .platform
        .datalabs()
        .catalogue()
        .datalabs
        .iter()
        .filter(|d| d.launch.opens_files())
        .map(wire::datalab)
        .collect();
    let base = without_offset(q.as_deref());
    let here = if base.is_empty() {
        "/discover".to_owned()
    } else {
        format!("/discover?{base}")
    };
    let next = (request.offset + items.len() < found.total)
        .then(|| format!("/discover?{base}&offset={}", request.offset + request.limit));
    let prev = (request.offset > 0).then(|| {
        format!(
            "/discover?{base}&offset={}",
            request.offset.saturating_sub(request.limit)
        )
    });
    let cone = request.cone.map(|c| {
        context! { ra => c.centre.ra, dec => c.centre.dec, radius => c.radius }
    });
    let day = |t: Option<i64>| {
        t.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
            .map(|d| d.date().to_string())
    };
    let extra = context! {
        q => request.text.clone(),
        items => ser(&items),
        facets => ser(&facets),
        total => found.total,
        first => request.offset + 1,
        openers => ser(&openers),
        here,
        next,
        prev,
        cone,
        date_from => day(request.date_from),
        date_to => day(request.date_to),
    };
    page(&s, "discover.html", Some(&p), "discover", &banner, extra)
}

#[derive(Deserialize)]
pub struct OpenForm {
    datalab: String,
    volume: String,
    file: String,
    #[serde(default)]
    back: String,
}

/// Launches the chosen datalab with the dataset's volume mounted and the
/// file handed to the tool.
pub async fn open_dataset(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PageForm(f): PageForm<OpenForm>,
) -> Response {
    let order = LaunchOrder {
        datalab: f.datalab,
        volumes: vec![f.volume],
        file: Some(f.file),
        version: None,
        zone: None,
    };
    match s.platform.launch(&p, order).await {
        Ok(lab) => see_other(&format!("/my-labs/{}", lab.id)),
        Err(e) => error_banner(&safe_target(Some(&f.back), "/discover"), e),
    }
}

pub async fn admin_search(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    banner: Banner,
) -> Response {
    let progress = wire::harvest(&s.platform.search().progress());
    let busy = progress.running;
    page(
        &s,
        "admin_search.html",
        Some(&p),
        "search-index",
        &banner,
        context! { h => ser(&progress), busy },
    )
}

pub async fn admin_search_harvest(State(s): State<AppState>) -> Response {
    let p = s.platform.search().start_harvest();
    let text = if p.running {
        "Harvest started: only new and changed files are read."
    } else {
        "The harvest finished at once."
    };
    with_banner("/admin/search", "notice", text).into_response()
}
