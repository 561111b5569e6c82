//! JSON API handlers of user-developed datalabs: thin adapters over
//! `insitu_core::devlabs`. Build logs stream as plain text; exports and
//! imports stream as tar files, an import's size counted as it comes.

use axum::Extension;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use insitu_api::*;
use insitu_core::devlabs::export::Export;
use insitu_core::devlabs::{Audience, NewDevlab};
use insitu_core::{Error as CoreError, Principal};
use insitu_domain::devlab::Template;
use tokio::io::AsyncWriteExt;

use crate::error::{ApiFailure, ApiJson, ApiPath, ApiResult};
use crate::state::AppState;
use crate::wire;

/// A build number from the path; one that is not a number is a build the
/// datalab does not have.
pub(crate) fn build_number(name: &str, raw: &str) -> Result<i64, CoreError> {
    raw.parse().map_err(|_| CoreError::BuildNotFound {
        datalab: name.to_owned(),
        number: -1,
    })
}

pub async fn templates() -> Json<List<DevlabTemplate>> {
    Json(List {
        items: Template::ALL
            .iter()
            .map(|t| DevlabTemplate {
                name: t.as_str().to_owned(),
                title: t.title().to_owned(),
                kind: t.definition("", "").kind,
            })
            .collect(),
    })
}

pub async fn licenses(State(s): State<AppState>) -> Json<List<LicenseChoice>> {
    Json(List {
        items: s
            .platform
            .devlabs()
            .licenses()
            .iter()
            .map(|(id, name)| LicenseChoice {
                id: (*id).to_owned(),
                name: (*name).to_owned(),
            })
            .collect(),
    })
}

pub async fn mine(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<List<Devlab>>> {
    let views = s.platform.devlabs().mine(&p).await?;
    Ok(Json(List {
        items: views.iter().map(wire::devlab).collect(),
    }))
}

async fn view(s: &AppState, p: &Principal, name: &str) -> ApiResult<Json<Devlab>> {
    let v = s.platform.devlabs().own(p, name).await?;
    Ok(Json(wire::devlab(&v)))
}

pub async fn create(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiJson(req): ApiJson<CreateDevlabRequest>,
) -> ApiResult<(StatusCode, Json<Devlab>)> {
    let new = NewDevlab {
        name: req.name,
        template: req.template,
        title: req.title,
        author: req.author,
    };
    let d = s
        .platform
        .devlabs()
        .create(s.platform.datalabs(), &p, new)
        .await?;
    Ok((StatusCode::CREATED, view(&s, &p, d.name.as_str()).await?))
}

pub async fn one(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Devlab>> {
    view(&s, &p, &name).await
}

pub async fn update(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateDevlabRequest>,
) -> ApiResult<Json<Devlab>> {
    s.platform
        .devlabs()
        .update(&p, &name, req.definition, req.source)
        .await?;
    view(&s, &p, &name).await
}

pub async fn remove(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    s.platform
        .devlabs()
        .delete(s.platform.datalabs(), &p, &name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn audience(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<AudienceRequest>,
) -> ApiResult<Json<Devlab>> {
    let audience = Audience {
        public: req.public,
        users: req.users,
    };
    s.platform
        .devlabs()
        .set_audience(s.platform.datalabs(), &p, &name, audience)
        .await?;
    view(&s, &p, &name).await
}

pub async fn start_build(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<(StatusCode, Json<Build>)> {
    let b = s
        .platform
        .devlabs()
        .start_build(s.platform.datalabs(), &p, &name)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(wire::build(&b, None))))
}

pub async fn builds(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<List<Build>>> {
    let v = s.platform.devlabs().own(&p, &name).await?;
    Ok(Json(List {
        items: v
            .builds
            .iter()
            .map(|b| wire::build(b, v.release_of(b.number)))
            .collect(),
    }))
}

pub async fn build(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath((name, number)): ApiPath<(String, String)>,
) -> ApiResult<Json<Build>> {
    let number = build_number(&name, &number)?;
    let v = s.platform.devlabs().own(&p, &name).await?;
    let b = v
        .builds
        .iter()
        .find(|b| b.number == number)
        .ok_or_else(|| CoreError::BuildNotFound {
            datalab: name.clone(),
            number,
        })?;
    Ok(Json(wire::build(b, v.release_of(number))))
}

/// `offset` and `follow` from a log request's query.
fn log_query(q: Option<&str>) -> Result<(u64, bool), ApiFailure> {
    let (mut offset, mut follow) = (0, false);
    for (k, v) in form_urlencoded::parse(q.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "offset" => {
                offset = v.parse().map_err(|_| {
                    ApiFailure::new(ErrorCode::InvalidQuery, "offset must be a number of bytes")
                })?;
            }
            "follow" => follow = v == "true" || v == "1",
            other => {
                return Err(ApiFailure::new(
                    ErrorCode::InvalidQuery,
                    format!("unknown query parameter {other:?}: expected offset or follow"),
                ));
            }
        }
    }
    Ok((offset, follow))
}

/// A build's log; with `follow`, the response streams until the build
/// ends, so a page or the CLI shows it live.
pub async fn build_log(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath((name, number)): ApiPath<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let number = build_number(&name, &number)?;
    let (offset, follow) = log_query(q.as_deref())?;
    let devlabs = std::sync::Arc::clone(s.platform.devlabs());
    // The first read answers a caller who may not read it with an error.
    let first = devlabs.log(&p, &name, number, offset).await?;
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (
            header::HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        ),
    ];
    if !follow {
        return Ok((headers, first.bytes).into_response());
    }
    let state = Some((first, devlabs, p, name));
    let stream = futures_util::stream::unfold(state, move |state| async move {
        let (mut chunk, devlabs, p, name) = state?;
        loop {
            if !chunk.bytes.is_empty() {
                let next = devlabs.log(&p, &name, number, chunk.next).await;
                let bytes = Bytes::from(std::mem::take(&mut chunk.bytes));
                let rest = next.ok().map(|c| (c, devlabs, p, name));
                return Some((Ok::<_, std::io::Error>(bytes), rest));
            }
            if chunk.ended {
                return None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            chunk = devlabs.log(&p, &name, number, chunk.next).await.ok()?;
        }
    });
    Ok((headers, Body::from_stream(stream)).into_response())
}

/// Removes an export's scratch directory when the response is done (or
/// dropped).
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

pub async fn export(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath((name, number)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    let number = build_number(&name, &number)?;
    let Export { path, file_name } = s.platform.devlabs().export(&p, &name, number).await?;
    let scratch = Scratch(path.clone());
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(CoreError::from)?;
    let stream = futures_util::stream::unfold(Some((file, scratch)), |state| async move {
        use tokio::io::AsyncReadExt;
        let (mut file, scratch) = state?;
        let mut buf = vec![0u8; 256 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((
                    Ok::<_, std::io::Error>(Bytes::from(buf)),
                    Some((file, scratch)),
                ))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    let disposition = format!("attachment; filename=\"{file_name}\"");
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-tar"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition)
                    .unwrap_or(HeaderValue::from_static("attachment")),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Takes an export as the request's body, written to a scratch file as it
/// comes and refused once it passes `devlabs.max_import_size`.
pub async fn import(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    RawQuery(q): RawQuery,
    body: Body,
) -> ApiResult<(StatusCode, Json<Devlab>)> {
    let mut rename = None;
    for (k, v) in form_urlencoded::parse(q.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "name" if !v.is_empty() => rename = Some(v.into_owned()),
            "name" => {}
            other => {
                return Err(ApiFailure::new(
                    ErrorCode::InvalidQuery,
                    format!("unknown query parameter {other:?}: expected name"),
                ));
            }
        }
    }
    let devlabs = s.platform.devlabs();
    let max = devlabs.config().max_import_bytes;
    let upload = devlabs.upload_path()?;
    let scratch = Scratch(upload.clone());
    let mut file = tokio::fs::File::create(&upload)
        .await
        .map_err(CoreError::from)?;
    let mut stream = body.into_data_stream();
    let mut total: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|_| ApiFailure::new(ErrorCode::InvalidRequest, "the upload was cut short"))?;
        total += chunk.len() as u64;
        if total > max {
            return Err(CoreError::ImportTooLarge { max }.into());
        }
        file.write_all(&chunk).await.map_err(CoreError::from)?;
    }
    file.flush().await.map_err(CoreError::from)?;
    drop(file);
    let d = devlabs
        .import(s.platform.datalabs(), &p, &upload, rename)
        .await?;
    drop(scratch);
    Ok((StatusCode::CREATED, view(&s, &p, d.name.as_str()).await?))
}

pub async fn submit(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<SubmitRequest>,
) -> ApiResult<(StatusCode, Json<Release>)> {
    let r = s.platform.devlabs().submit(&p, &name, req.build).await?;
    Ok((StatusCode::CREATED, Json(wire::release(&r))))
}

pub async fn queue(State(s): State<AppState>) -> ApiResult<Json<List<Submission>>> {
    let q = s.platform.devlabs().queue().await?;
    Ok(Json(List {
        items: q.iter().map(wire::submission).collect(),
    }))
}

pub async fn approve(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath((name, number)): ApiPath<(String, String)>,
) -> ApiResult<Json<Release>> {
    let number = build_number(&name, &number)?;
    let r = s
        .platform
        .devlabs()
        .decide(s.platform.datalabs(), &p, &name, number, true, None)
        .await?;
    Ok(Json(wire::release(&r)))
}

pub async fn reject(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath((name, number)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<DecisionRequest>,
) -> ApiResult<Json<Release>> {
    let number = build_number(&name, &number)?;
    let r = s
        .platform
        .devlabs()
        .decide(s.platform.datalabs(), &p, &name, number, false, req.reason)
        .await?;
    Ok(Json(wire::release(&r)))
}

pub async fn star(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    s.platform
        .devlabs()
        .star(s.platform.datalabs(), &p, &name, true)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn unstar(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    s.platform
        .devlabs()
        .star(s.platform.datalabs(), &p, &name, false)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
