//! JSON API handlers. Each trusts the route table's access check (the caller
//! is in the request extensions), calls the platform's services and answers
//! errors with stable codes.

use axum::Extension;
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use insitu_api::*;
use insitu_core::accounts::token_id;
use insitu_core::catalogue::DATALAB_FACETS;
use insitu_core::labs::{WORKSPACE_PATH, lab_id};
use insitu_core::query::{Filter, search};
use insitu_core::volumes::VOLUME_FACETS;
use insitu_core::{LabEventRecord, LabRecord, LaunchOrder, Principal, Via};
use insitu_domain::Role;

pub mod pipelines;

use crate::auth::{clear_session_cookie, constant_time_eq, session_cookie};
use crate::client::ClientAddr;
use crate::config::MetricsAccess;
use crate::error::{ApiFailure, ApiJson, ApiPath, ApiResult};
use crate::state::AppState;
use crate::wire;

pub mod access;
pub mod devlabs;

pub async fn healthz(State(s): State<AppState>) -> Response {
    let (backend, answer) = s.platform.database_health().await;
    let (status, database) = match answer {
        Ok(()) => (StatusCode::OK, "ok"),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "unreachable")
        }
    };
    let body = Health {
        status: if status == StatusCode::OK {
            "ok"
        } else {
            "degraded"
        }
        .to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        database: format!("{backend} {database}"),
    };
    (status, Json(body)).into_response()
}

/// The metrics, to whom `metrics.access` allows.
pub async fn metrics(
    State(s): State<AppState>,
    p: Option<Extension<Principal>>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    match s.config.metrics.access {
        MetricsAccess::Public => {}
        MetricsAccess::Admin => match p {
            Some(Extension(p)) if p.role.allows(Role::Admin) => {}
            Some(_) => {
                return Err(ApiFailure::new(
                    ErrorCode::Forbidden,
                    "the metrics are for administrators",
                ));
            }
            None => {
                return Err(ApiFailure::new(
                    ErrorCode::Unauthenticated,
                    "the metrics are for administrators: log in or send an API token",
                ));
            }
        },
        MetricsAccess::Token => {
            let sent = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim);
            let expected = s.config.metrics.token.as_ref().map(|t| t.expose());
            match (sent, expected) {
                (Some(sent), Some(expected)) if constant_time_eq(sent, expected) => {}
                _ => {
                    return Err(ApiFailure::new(
                        ErrorCode::Unauthenticated,
                        "send the metrics secret as 'Authorization: Bearer <secret>'",
                    ));
                }
            }
        }
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        crate::metrics_layer::render(),
    )
        .into_response())
}

pub async fn openapi(State(s): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        s.openapi_json.clone(),
    )
        .into_response()
}

pub async fn login(
    State(s): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let accounts = s.platform.accounts();
    let user = accounts
        .check_credentials(&req.username, &req.password, client)
        .await?;
    let (secret, csrf) = accounts.open_session(&user).await?;
    let body = LoginResponse {
        user: wire::me(&user),
        csrf_token: csrf,
    };
    Ok((
        [(header::SET_COOKIE, session_cookie(&s, &secret))],
        Json(body),
    )
        .into_response())
}

/// Ends the caller's session and their lab sessions on the proxy.
pub async fn logout(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Response> {
    s.platform.log_out(&p).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, clear_session_cookie(&s))],
    )
        .into_response())
}

/// Ends every session of the caller's, in every browser, and their lab
/// sessions on the proxy; API tokens stay.
pub async fn logout_everywhere(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Response> {
    s.platform.log_out_everywhere(&p.user_id).await?;
    let clear = matches!(p.via, Via::Session { .. }).then(|| clear_session_cookie(&s));
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Some(c) = clear.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    Ok(resp)
}

pub async fn token_login(
    State(s): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(req): ApiJson<TokenLoginRequest>,
) -> ApiResult<(StatusCode, Json<TokenCreated>)> {
    let (token, record) = s
        .platform
        .accounts()
        .token_for_login(
            &req.username,
            &req.password,
            client,
            &req.token_name,
            req.expires_in_days,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenCreated {
            token,
            info: wire::token(&record),
        }),
    ))
}

pub async fn me(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Me>> {
    let user = s.platform.accounts().user(&p.username).await?;
    Ok(Json(wire::me(&user)))
}

/// Changes the caller's password: their sessions and lab sessions end, and
/// (unless `revoke_tokens` is false) their API tokens are revoked.
pub async fn change_password(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ClientAddr(client): ClientAddr,
    ApiJson(req): ApiJson<PasswordChangeRequest>,
) -> ApiResult<StatusCode> {
    s.platform
        .change_password(
            &p.username,
            &req.current_password,
            &req.new_password,
            client,
            req.revoke_tokens.unwrap_or(true),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_tokens(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<List<ApiToken>>> {
    let tokens = s.platform.accounts().tokens(&p.user_id).await?;
    Ok(Json(List {
        items: tokens.iter().map(wire::token).collect(),
    }))
}

pub async fn create_token(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiJson(req): ApiJson<CreateTokenRequest>,
) -> ApiResult<(StatusCode, Json<TokenCreated>)> {
    let (token, record) = s
        .platform
        .accounts()
        .create_token(&p.user_id, &req.name, req.expires_in_days)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenCreated {
            token,
            info: wire::token(&record),
        }),
    ))
}

pub async fn revoke_token(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let id = token_id(&id)?;
    s.platform.accounts().revoke_token(&p.user_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The catalogue as the caller sees it: datalabs shared with named users
/// are listed, searched and counted only for them.
pub async fn list_datalabs(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<DatalabList>> {
    let filter = Filter::parse(q.as_deref(), &DATALAB_FACETS, true)?;
    let cat = s.platform.datalabs().catalogue();
    let starred = s.platform.devlabs().starred(&p).await?;
    let visible: Vec<_> = cat.visible_to(&p.username).into_iter().cloned().collect();
    let (hits, facets) = search(&visible, &filter, &DATALAB_FACETS);
    Ok(Json(DatalabList {
        items: hits
            .into_iter()
            .map(|d| wire::datalab_in(&cat, d, &starred))
            .collect(),
        facets,
    }))
}

pub async fn get_datalab(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Datalab>> {
    let cat = s.platform.datalabs().catalogue();
    let starred = s.platform.devlabs().starred(&p).await?;
    let d = cat
        .get_for(&p.username, &name)
        .ok_or_else(|| insitu_core::Error::DatalabNotFound(name.clone()))?;
    Ok(Json(wire::datalab_in(&cat, d, &starred)))
}

pub async fn list_volumes(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<VolumeList>> {
    let filter = Filter::parse(q.as_deref(), &VOLUME_FACETS, true)?;
    let volumes = s.platform.volumes();
    let mine = volumes.mine(&p.user_id).await?;
    let visible = volumes.visible(&s.platform.viewer(&p).await?);
    let (hits, facets) = search(&visible, &filter, &VOLUME_FACETS);
    let items = hits
        .into_iter()
        .map(|v| wire::volume(v, mine.iter().any(|m| m == v.spec.name.as_str())))
        .collect();
    Ok(Json(VolumeList { items, facets }))
}

pub async fn list_zones(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<ZoneList>> {
    let zones = s.platform.zone_overview(&p).await?;
    let default = s.platform.zones().default_zone().clone();
    Ok(Json(ZoneList {
        items: zones.iter().map(|z| wire::zone(z, &default)).collect(),
    }))
}

pub async fn get_volume(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Volume>> {
    let volumes = s.platform.volumes();
    let v = volumes.volume_for(&s.platform.viewer(&p).await?, &name)?;
    let mine = volumes.mine(&p.user_id).await?;
    Ok(Json(wire::volume(v, mine.contains(&name))))
}

pub async fn my_volumes(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<List<Volume>>> {
    let volumes = s.platform.volumes();
    let mine = volumes.mine(&p.user_id).await?;
    // A volume removed from the configuration, or hidden from the caller
    // since, simply drops out of the list.
    let viewer = s.platform.viewer(&p).await?;
    let items = mine
        .iter()
        .filter_map(|n| volumes.volume_for(&viewer, n).ok())
        .map(|v| wire::volume(v, true))
        .collect();
    Ok(Json(List { items }))
}

pub async fn add_my_volume(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Volume>> {
    let viewer = s.platform.viewer(&p).await?;
    let v = s
        .platform
        .volumes()
        .add_mine(&p.user_id, &viewer, &name)
        .await?;
    Ok(Json(wire::volume(v, true)))
}

pub async fn remove_my_volume(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let viewer = s.platform.viewer(&p).await?;
    s.platform
        .volumes()
        .remove_mine(&p.user_id, &viewer, &name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_users(State(s): State<AppState>) -> ApiResult<Json<List<User>>> {
    let users = s.platform.accounts().users().await?;
    Ok(Json(List {
        items: users.iter().map(wire::user).collect(),
    }))
}

/// Every active lab of every user, with what it uses now.
pub async fn operator_labs(State(s): State<AppState>) -> ApiResult<Json<List<OperatorLab>>> {
    let now = insitu_core::clock::now();
    let items = s
        .platform
        .labs()
        .operated()
        .await?
        .into_iter()
        .map(|o| OperatorLab {
            age_seconds: (now - o.lab.created_at).max(0),
            cpu_cores: o
                .cpu_seconds
                .and(s.platform.usage().cpu_cores(o.lab.id.as_str())),
            lab: lab_of(&s, &o.lab, &[]),
            owner: o.owner,
            zone: o.lab.zone.to_string(),
            idle_seconds: o.idle.map(|d| d.as_secs()),
            memory_bytes: o.memory_bytes,
            memory_limit_bytes: o.memory_limit_bytes,
            cpu_seconds: o.cpu_seconds,
        })
        .collect();
    Ok(Json(List { items }))
}

/// The platform's use over time: labs running, CPU hours, storage.
pub async fn usage_series(
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<UsageSeries>> {
    let range = crate::usage::UsageRange::parse(q.as_deref(), insitu_core::clock::now())?;
    let points = s
        .platform
        .usage()
        .series(range.from, range.to, range.step)
        .await?;
    Ok(Json(crate::usage::series(range, &points)))
}

/// Stops any user's lab, with the reason its user reads.
pub async fn operator_stop_lab(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<OperatorStopRequest>,
) -> ApiResult<Json<Lab>> {
    let labs = s.platform.labs();
    let stopped = labs
        .stop_for_operator(&lab_id(&id)?, p.username.as_str(), &req.reason)
        .await?;
    let events = labs.events(&stopped.id).await?;
    Ok(Json(lab_of(&s, &stopped, &events)))
}

fn operator_run(r: &insitu_core::RunRecord, owner: String) -> OperatorRun {
    let ms = crate::pipeline_wire::rfc3339_ms;
    OperatorRun {
        id: r.id.to_string(),
        owner,
        pipeline: r.pipeline.clone(),
        version: r.version.clone(),
        state: r.state.to_string(),
        reason: r.reason.clone(),
        zone: r.zone.to_string(),
        created_at: ms(r.created_at_ms),
        started_at: r.started_at_ms.map(ms),
        age_seconds: ((insitu_core::clock::now_ms() - r.created_at_ms) / 1000).max(0),
    }
}

/// Every queued and running run of every user.
pub async fn operator_runs(State(s): State<AppState>) -> ApiResult<Json<List<OperatorRun>>> {
    let items = s
        .platform
        .runs()
        .operated()
        .await?
        .into_iter()
        .map(|(r, owner)| operator_run(&r, owner))
        .collect();
    Ok(Json(List { items }))
}

/// Cancels any user's run, with the reason its user reads.
pub async fn operator_cancel_run(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<OperatorStopRequest>,
) -> ApiResult<Json<OperatorRun>> {
    let id = insitu_core::runs::run_id(&id)?;
    let (run, owner) = s
        .platform
        .runs()
        .cancel_for_operator(&id, p.username.as_str(), &req.reason)
        .await?;
    Ok(Json(operator_run(&run, owner)))
}

pub async fn create_user(
    State(s): State<AppState>,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let role = req.role.unwrap_or(Role::User);
    let user = s
        .platform
        .accounts()
        .create_user(&req.username, &req.password, role)
        .await?;
    Ok((StatusCode::CREATED, Json(wire::user(&user))))
}

pub async fn update_user(
    State(s): State<AppState>,
    ApiPath(username): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateUserRequest>,
) -> ApiResult<Json<User>> {
    let user = s
        .platform
        .update_user(&username, req.role, req.disabled)
        .await?;
    if let Some(email) = &req.email {
        let email = Some(email.as_str()).filter(|e| !e.trim().is_empty());
        s.platform.accounts().set_email(&user.id, email).await?;
    }
    Ok(Json(wire::user(&user)))
}

pub async fn catalogue_problems(State(s): State<AppState>) -> Json<List<CatalogueProblem>> {
    Json(List {
        items: s.platform.datalabs().catalogue().problems.clone(),
    })
}

pub async fn reload_catalogue(State(s): State<AppState>) -> Json<List<CatalogueProblem>> {
    Json(List {
        items: s.platform.reload_catalogue().await.problems.clone(),
    })
}

/// The discovery portal: one search over datalabs, volumes and datasets.
pub async fn search_assets(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<SearchResponse>> {
    let request =
        insitu_search::SearchRequest::parse(q.as_deref()).map_err(insitu_core::Error::from)?;
    let viewer = s.platform.viewer(&p).await?;
    let found = s.platform.search().search(&viewer, request).await?;
    Ok(Json(wire::search_response(&found)))
}

pub async fn harvest_status(State(s): State<AppState>) -> Json<HarvestStatus> {
    Json(wire::harvest(&s.platform.search().progress()))
}

pub async fn start_harvest(State(s): State<AppState>) -> (StatusCode, Json<HarvestStatus>) {
    (
        StatusCode::ACCEPTED,
        Json(wire::harvest(&s.platform.search().start_harvest())),
    )
}

fn lab_of(s: &AppState, l: &LabRecord, events: &[LabEventRecord]) -> Lab {
    wire::lab(l, s.platform.labs().progress(&l.id), events)
}

pub async fn launch_lab(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiJson(req): ApiJson<LaunchRequest>,
) -> ApiResult<(StatusCode, Json<Lab>)> {
    let order = LaunchOrder {
        datalab: req.datalab,
        volumes: req.volumes,
        file: req.file,
        version: req.version,
        zone: req.zone,
    };
    let lab = s.platform.launch(&p, order).await?;
    Ok((StatusCode::ACCEPTED, Json(lab_of(&s, &lab, &[]))))
}

pub async fn list_labs(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<List<Lab>>> {
    let labs = s.platform.labs().of_user(&p.user_id).await?;
    let events = s.platform.labs().events_of_user(&p.user_id).await?;
    Ok(Json(List {
        items: labs
            .iter()
            .map(|l| lab_of(&s, l, events.get(&l.id).map_or(&[], Vec::as_slice)))
            .collect(),
    }))
}

pub async fn get_lab(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Lab>> {
    let lab = s.platform.labs().own(&p.user_id, &lab_id(&id)?).await?;
    let events = s.platform.labs().events(&lab.id).await?;
    Ok(Json(lab_of(&s, &lab, &events)))
}

pub async fn stop_lab(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Lab>> {
    let stopped = s
        .platform
        .labs()
        .stop_own(&p.user_id, &lab_id(&id)?)
        .await?;
    let events = s.platform.labs().events(&stopped.id).await?;
    Ok(Json(lab_of(&s, &stopped, &events)))
}

pub async fn lab_logs(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<LabLogs>> {
    let labs = s.platform.labs();
    let lab = labs.own(&p.user_id, &lab_id(&id)?).await?;
    let lines = labs.log_tail(&lab.id, 200).await;
    Ok(Json(LabLogs { lines }))
}

/// The records of the caller's SAMP hub (empty before their first lab).
pub async fn my_samp(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<List<SampRecord>>> {
    let labs = std::sync::Arc::clone(s.platform.labs());
    let items = tokio::task::spawn_blocking(move || labs.samp_records(&p.user_id))
        .await
        .unwrap_or_default();
    Ok(Json(List { items }))
}

pub async fn open_lab(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<LabOpen>> {
    Ok(Json(LabOpen {
        url: s.platform.labs().open(&p.user_id, &lab_id(&id)?).await?,
    }))
}

pub async fn my_workspace(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Workspace>> {
    let (mine, teams) = s.platform.my_workspaces(&p).await?;
    Ok(Json(Workspace {
        path: WORKSPACE_PATH.to_owned(),
        used_bytes: mine.used_bytes,
        files: mine.files,
        quota: wire::workspace_quota(&mine),
        teams: teams
            .iter()
            .map(|(name, u)| TeamWorkspaceQuota {
                team: name.to_string(),
                path: insitu_core::teams::Teams::lab_path(name),
                quota: wire::workspace_quota(u),
            })
            .collect(),
    }))
}

pub async fn my_quotas(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Quotas>> {
    let (mine, teams) = s.platform.my_workspaces(&p).await?;
    let compute = s.platform.compute_quota(&p.user_id).await?;
    Ok(Json(Quotas {
        workspace: wire::workspace_quota(&mine),
        teams: teams
            .iter()
            .map(|(name, u)| TeamWorkspaceQuota {
                team: name.to_string(),
                path: insitu_core::teams::Teams::lab_path(name),
                quota: wire::workspace_quota(u),
            })
            .collect(),
        compute: wire::compute_quota(&compute),
    }))
}

pub async fn set_user_quota(
    State(s): State<AppState>,
    ApiPath(username): ApiPath<String>,
    ApiJson(req): ApiJson<SetUserQuotaRequest>,
) -> ApiResult<Json<Quotas>> {
    let change = insitu_core::QuotaChange {
        workspace_bytes: req.workspace_bytes,
        labs: req.labs,
        cpu: req.cpu,
        memory_bytes: req.memory_bytes,
        gpus: req.gpus,
    };
    let (workspace, compute) = s.platform.set_user_quotas(&username, &change).await?;
    Ok(Json(Quotas {
        workspace: wire::workspace_quota(&workspace),
        teams: Vec::new(),
        compute: wire::compute_quota(&compute),
    }))
}

pub async fn set_team_quota(
    State(s): State<AppState>,
    ApiPath(team): ApiPath<String>,
    ApiJson(req): ApiJson<SetQuotaRequest>,
) -> ApiResult<Json<WorkspaceQuota>> {
    let u = s
        .platform
        .set_team_workspace_quota(&team, req.workspace_bytes)
        .await?;
    Ok(Json(wire::workspace_quota(&u)))
}

pub async fn my_teams(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<List<Team>>> {
    let teams = s.platform.teams().mine(&p.user_id).await?;
    Ok(Json(List {
        items: teams.iter().map(wire::team).collect(),
    }))
}

pub async fn create_team(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiJson(req): ApiJson<CreateTeamRequest>,
) -> ApiResult<(StatusCode, Json<Team>)> {
    let team = s.platform.teams().create(&p.user_id, &req.name).await?;
    Ok((StatusCode::CREATED, Json(wire::team(&team))))
}

pub async fn get_team(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Team>> {
    let team = s.platform.teams().get(&p.user_id, &name).await?;
    Ok(Json(wire::team(&team)))
}

pub async fn invite_member(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<InviteRequest>,
) -> ApiResult<(StatusCode, Json<Team>)> {
    let role = req.role.unwrap_or(insitu_domain::TeamRole::Member);
    let team = s
        .platform
        .teams()
        .invite(&p.user_id, &name, &req.username, role)
        .await?;
    Ok((StatusCode::CREATED, Json(wire::team(&team))))
}

pub async fn accept_team(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Team>> {
    let team = s.platform.teams().accept(&p.user_id, &name).await?;
    Ok(Json(wire::team(&team)))
}

pub async fn update_member(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath((name, username)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<UpdateMemberRequest>,
) -> ApiResult<Json<Team>> {
    let team = s
        .platform
        .teams()
        .set_role(&p.user_id, &name, &username, req.role)
        .await?;
    Ok(Json(wire::team(&team)))
}

pub async fn remove_member(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath((name, username)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    s.platform
        .teams()
        .remove(&p.user_id, &name, &username)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn lab_shares(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<LabSharing>> {
    let sharing = s
        .platform
        .labs()
        .sharing(&p.user_id, p.username.as_str(), &lab_id(&id)?)
        .await?;
    Ok(Json(wire::lab_sharing(sharing)))
}

pub async fn share_lab(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath((id, username)): ApiPath<(String, String)>,
) -> ApiResult<Json<LabSharing>> {
    let sharing = s
        .platform
        .labs()
        .share(&p.user_id, p.username.as_str(), &lab_id(&id)?, &username)
        .await?;
    Ok(Json(wire::lab_sharing(sharing)))
}

pub async fn unshare_lab(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath((id, username)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    s.platform
        .labs()
        .unshare(&p.user_id, &lab_id(&id)?, &username)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn share_lab_with_team(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath((id, team)): ApiPath<(String, String)>,
) -> ApiResult<Json<LabSharing>> {
    let sharing = s
        .platform
        .labs()
        .share_with_team(&p.user_id, p.username.as_str(), &lab_id(&id)?, &team)
        .await?;
    Ok(Json(wire::lab_sharing(sharing)))
}

pub async fn unshare_lab_team(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath((id, team)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    s.platform
        .labs()
        .unshare_team(&p.user_id, &lab_id(&id)?, &team)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn rename_team(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<RenameTeamRequest>,
) -> ApiResult<Json<Team>> {
    let team = s
        .platform
        .teams()
        .rename(&p.user_id, &name, &req.name)
        .await?;
    Ok(Json(wire::team(&team)))
}

pub async fn delete_team(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    s.platform.teams().delete(&p.user_id, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn labs_shared_with_me(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<List<Lab>>> {
    let labs = s.platform.labs().shared_with_me(&p.user_id).await?;
    Ok(Json(List {
        // The owner's events stay the owner's.
        items: labs.iter().map(|l| lab_of(&s, l, &[])).collect(),
    }))
}
