//! JSON API handlers of the pipeline catalogue and of runs: thin adapters
//! over `insitu_core::pipelines` and `insitu_core::runs`.

use std::collections::HashMap;
use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use insitu_api::*;
use insitu_core::Principal;
use insitu_core::runs::{RunOrder, run_id};
use insitu_domain::{RawPipelineMeta, RunState};

use crate::error::{ApiFailure, ApiJson, ApiPath, ApiResult};
use crate::pipeline_wire::{self as pw, detail, reference, viewer};
use crate::state::AppState;

/// The longest a request waits for news of a run or its logs.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// The query string's parameters, each at most once, from `allowed`.
fn query(raw: Option<&str>, allowed: &[&str]) -> ApiResult<HashMap<String, String>> {
    let mut out = HashMap::new();
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        if !allowed.contains(&k.as_ref()) {
            return Err(ApiFailure::new(
                ErrorCode::InvalidQuery,
                format!(
                    "unknown query parameter {k:?}: expected {}",
                    allowed.join(", ")
                ),
            ));
        }
        if out.insert(k.clone().into_owned(), v.into_owned()).is_some() {
            return Err(ApiFailure::new(
                ErrorCode::InvalidQuery,
                format!("query parameter {k:?} given twice"),
            ));
        }
    }
    Ok(out)
}

fn number<T: std::str::FromStr>(q: &HashMap<String, String>, key: &str) -> ApiResult<Option<T>> {
    q.get(key)
        .map(|v| {
            v.parse().map_err(|_| {
                ApiFailure::new(
                    ErrorCode::InvalidQuery,
                    format!("query parameter {key:?} must be a whole number"),
                )
            })
        })
        .transpose()
}

pub async fn list(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<List<PipelineSummary>>> {
    let all = s.platform.pipelines().visible_to(&viewer(&p)).await?;
    Ok(Json(List {
        items: all.iter().map(pw::summary).collect(),
    }))
}

pub async fn validate(
    State(s): State<AppState>,
    ApiJson(req): ApiJson<ValidateRequest>,
) -> ApiResult<Json<PipelineCheck>> {
    let check = s
        .platform
        .pipelines()
        .check_files(&req.main, &req.files)
        .await?;
    Ok(Json(pw::check(&check)))
}

pub async fn show(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath((owner, name)): ApiPath<(String, String)>,
) -> ApiResult<Json<PipelineVersionDetail>> {
    let r = reference(&owner, &name)?;
    Ok(Json(detail(&s.platform, &p, &r, None).await?))
}

pub async fn show_version(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath((owner, name, version)): ApiPath<(String, String, String)>,
) -> ApiResult<Json<PipelineVersionDetail>> {
    let r = reference(&owner, &name)?;
    Ok(Json(detail(&s.platform, &p, &r, Some(&version)).await?))
}

pub async fn push(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiJson(req): ApiJson<PushPipelineRequest>,
) -> ApiResult<(StatusCode, Json<PipelineVersionDetail>)> {
    let meta = RawPipelineMeta {
        description: req.description,
        version: req.version,
        keywords: req.keywords,
        author: req.author,
        licence: req.licence,
        main: req.main,
    };
    let v = s
        .platform
        .pipelines()
        .push(&viewer(&p), &req.name, meta, req.files)
        .await?;
    let d = detail(&s.platform, &p, &v.reference, Some(v.meta.version.as_str())).await?;
    Ok((StatusCode::CREATED, Json(d)))
}

pub async fn push_to_system(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath((owner, name, version)): ApiPath<(String, String, String)>,
) -> ApiResult<(StatusCode, Json<PipelineVersionDetail>)> {
    let r = reference(&owner, &name)?;
    let v = s
        .platform
        .pipelines()
        .push_to_system(&viewer(&p), &r, &version)
        .await?;
    let d = detail(&s.platform, &p, &v.reference, Some(v.meta.version.as_str())).await?;
    Ok((StatusCode::CREATED, Json(d)))
}

pub async fn submit_run(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiJson(req): ApiJson<RunRequest>,
) -> ApiResult<(StatusCode, Json<Run>)> {
    let v = viewer(&p);
    let runs = s.platform.runs();
    let record = runs
        .submit(
            &v,
            RunOrder {
                pipeline: req.pipeline,
                version: req.version,
                job: req.job,
                zone: req.zone,
            },
        )
        .await?;
    let view = runs.view(&v, &record.id).await?;
    Ok((StatusCode::ACCEPTED, Json(pw::run(&view))))
}

pub async fn list_runs(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<List<Run>>> {
    let v = viewer(&p);
    let runs = s.platform.runs();
    let mut items = Vec::new();
    for r in runs.of_user(&v, 200).await? {
        items.push(pw::run(&runs.view(&v, &r.id).await?));
    }
    Ok(Json(List { items }))
}

pub async fn get_run(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Run>> {
    let q = query(raw.as_deref(), &["since", "state", "wait"])?;
    let id = run_id(&id)?;
    let runs = s.platform.runs();
    let wait = number::<u64>(&q, "wait")?.map_or(Duration::ZERO, Duration::from_secs);
    let since = number::<u64>(&q, "since")?;
    let state = q
        .get("state")
        .map(|st| {
            st.parse::<RunState>()
                .map_err(|e| ApiFailure::new(ErrorCode::InvalidQuery, e.to_string()))
        })
        .transpose()?;
    let view = if wait.is_zero() || (since.is_none() && state.is_none()) {
        runs.view(&viewer(&p), &id).await?
    } else {
        runs.wait_for_news(
            &viewer(&p),
            &id,
            since.unwrap_or(0),
            state,
            wait.min(MAX_WAIT),
        )
        .await?
    };
    Ok(Json(pw::run(&view)))
}

pub async fn run_jobs(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<List<RunJob>>> {
    let q = query(raw.as_deref(), &["step"])?;
    let view = s.platform.runs().view(&viewer(&p), &run_id(&id)?).await?;
    let items = view
        .progress
        .jobs
        .values()
        .filter(|j| {
            q.get("step")
                .is_none_or(|st| j.step.as_deref().unwrap_or("") == st)
        })
        .map(pw::job)
        .collect();
    Ok(Json(List { items }))
}

pub async fn run_logs(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<RunLog>> {
    let q = query(raw.as_deref(), &["job", "from", "wait"])?;
    let job = number::<u64>(&q, "job")?;
    let from = number::<u64>(&q, "from")?.unwrap_or(0);
    let wait = number::<u64>(&q, "wait")?.map_or(Duration::ZERO, Duration::from_secs);
    let chunk = s
        .platform
        .runs()
        .log(
            &viewer(&p),
            &run_id(&id)?,
            job,
            from,
            64 * 1024,
            wait.min(MAX_WAIT),
        )
        .await?;
    Ok(Json(RunLog {
        text: chunk.text,
        next: chunk.next,
        done: chunk.done,
    }))
}

pub async fn cancel_run(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Run>> {
    let v = viewer(&p);
    let runs = s.platform.runs();
    let id = run_id(&id)?;
    runs.cancel(&v, &id).await?;
    Ok(Json(pw::run(&runs.view(&v, &id).await?)))
}

pub async fn resume_run(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<(StatusCode, Json<Run>)> {
    let v = viewer(&p);
    let runs = s.platform.runs();
    let record = runs.resume(&v, &run_id(&id)?).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(pw::run(&runs.view(&v, &record.id).await?)),
    ))
}

pub async fn provenance(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let id = run_id(&id)?;
    let path = s.platform.runs().provenance_zip(&viewer(&p), &id).await?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| ApiFailure::from(insitu_core::Error::Io(e)))?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    let disposition = format!("attachment; filename=\"run-{id}-provenance.zip\"");
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/zip"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition)
                    .unwrap_or(HeaderValue::from_static("attachment")),
            ),
        ],
        body,
    )
        .into_response())
}
