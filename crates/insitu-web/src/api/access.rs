//! JSON API handlers of access requests: thin adapters over
//! `insitu_core::access_requests`. Applying and the status link are public
//! (the secret in the path is the applicant's credential); the list and
//! the decisions are moderators'.

use axum::Extension;
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use insitu_api::*;
use insitu_core::Principal;
use insitu_domain::AccessState;

use crate::client::ClientAddr;
use crate::error::{ApiFailure, ApiJson, ApiPath, ApiResult};
use crate::state::AppState;
use crate::wire;

pub async fn apply(
    State(s): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(req): ApiJson<AccessApplication>,
) -> ApiResult<(StatusCode, Json<AccessApplied>)> {
    let applied = s
        .platform
        .access_requests()
        .apply(
            &req.name,
            &req.email,
            &req.affiliation,
            &req.reason,
            &req.username,
            client,
        )
        .await?;
    let status = insitu_core::access_requests::AccessStatus {
        request: applied.request,
        position: Some(applied.position),
    };
    Ok((
        StatusCode::CREATED,
        Json(AccessApplied {
            status_path: wire::access_status_path(&applied.token),
            token: applied.token,
            status: wire::access_status(&status),
        }),
    ))
}

pub async fn status(
    State(s): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiPath(token): ApiPath<String>,
) -> ApiResult<Json<AccessRequestStatus>> {
    let status = s.platform.access_requests().status(&token, client).await?;
    Ok(Json(wire::access_status(&status)))
}

pub async fn set_password(
    State(s): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiPath(token): ApiPath<String>,
    ApiJson(req): ApiJson<AccessPasswordRequest>,
) -> ApiResult<Json<AccessRequestStatus>> {
    let status = s
        .platform
        .access_requests()
        .set_password(s.platform.accounts(), &token, &req.password, client)
        .await?;
    Ok(Json(wire::access_status(&status)))
}

/// `state` from the query: one of the states, or none for all.
pub(crate) fn state_filter(q: Option<&str>) -> Result<Option<AccessState>, ApiFailure> {
    let mut state = None;
    for (key, value) in form_urlencoded::parse(q.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "state" if value.is_empty() || value == "all" => state = None,
            "state" => {
                state = Some(
                    value
                        .parse()
                        .map_err(|e: insitu_domain::UnknownAccessState| {
                            ApiFailure::new(ErrorCode::InvalidQuery, e.to_string())
                        })?,
                );
            }
            other => {
                return Err(ApiFailure::new(
                    ErrorCode::InvalidQuery,
                    format!("unknown query parameter {other:?}: expected state"),
                ));
            }
        }
    }
    Ok(state)
}

pub async fn list(
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<List<AccessRequest>>> {
    let state = state_filter(q.as_deref())?;
    let items = s.platform.access_requests().list(state).await?;
    Ok(Json(List {
        items: items.iter().map(wire::access_request).collect(),
    }))
}

pub async fn approve(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<AccessDecisionRequest>,
) -> ApiResult<Json<AccessRequest>> {
    let status = s
        .platform
        .access_requests()
        .approve(s.platform.accounts(), &p.user_id, &id, &req.message)
        .await?;
    Ok(Json(wire::access_request(&status)))
}

pub async fn deny(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<AccessDecisionRequest>,
) -> ApiResult<Json<AccessRequest>> {
    let status = s
        .platform
        .access_requests()
        .deny(&p.user_id, &id, &req.message)
        .await?;
    Ok(Json(wire::access_request(&status)))
}
