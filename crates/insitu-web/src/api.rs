//! JSON API handlers. Each trusts the route table's access check (the caller
//! is in the request extensions) and answers errors with stable codes.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use insitu_api::*;
use insitu_domain::{Role, Username};
use insitu_store::{NewUser, StoreError, TokenRecord, UserRecord};

use crate::app::AppState;
use crate::auth::{self, Principal, SESSION_COOKIE, Via};
use insitu_core::catalogue::DATALAB_FACETS;
use insitu_core::query::{Filter, search};
use insitu_core::volumes::{self, VOLUME_FACETS};

use crate::error::{ApiFailure, ApiJson, ApiResult};
use crate::time_fmt::{now, rfc3339};
use crate::wire;

pub async fn healthz(State(s): State<AppState>) -> Response {
    let (status, database) = match s.store.ping().await {
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
        database: format!("{} {database}", s.store.backend().as_str()),
    };
    (status, Json(body)).into_response()
}

pub async fn metrics() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        crate::metrics_layer::render(),
    )
        .into_response()
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

pub async fn fallback(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        ApiFailure::new(ErrorCode::NotFound, format!("no route {}", uri.path())).into_response()
    } else {
        crate::pages::error_page(ErrorCode::NotFound, "There is no page at this address.")
    }
}

pub async fn method_not_allowed(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        ApiFailure::new(
            ErrorCode::MethodNotAllowed,
            format!("{} does not take this method", uri.path()),
        )
        .into_response()
    } else {
        crate::pages::error_page(
            ErrorCode::MethodNotAllowed,
            "This page does not take this method.",
        )
    }
}

pub fn me_of(u: &UserRecord) -> Me {
    Me {
        username: u.username.to_string(),
        role: u.role,
        created_at: rfc3339(u.created_at),
    }
}

pub fn user_of(u: &UserRecord) -> User {
    User {
        username: u.username.to_string(),
        role: u.role,
        disabled: u.disabled,
        created_at: rfc3339(u.created_at),
        last_login_at: u.last_login_at.map(rfc3339),
    }
}

pub fn token_of(t: &TokenRecord) -> ApiToken {
    ApiToken {
        id: t.id.clone(),
        name: t.name.clone(),
        prefix: t.prefix.clone(),
        created_at: rfc3339(t.created_at),
        last_used_at: t.last_used_at.map(rfc3339),
        expires_at: t.expires_at.map(rfc3339),
    }
}

pub fn session_cookie(s: &AppState, secret: &str) -> String {
    auth::set_cookie(
        SESSION_COOKIE,
        secret,
        s.config.session.lifetime_secs(),
        s.secure_cookies,
    )
}

pub fn clear_session_cookie(s: &AppState) -> String {
    auth::set_cookie(SESSION_COOKIE, "", 0, s.secure_cookies)
}

pub async fn login(
    State(s): State<AppState>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let user = s
        .auth
        .check_credentials(&req.username, &req.password)
        .await?;
    let (secret, csrf) = s.auth.open_session(&user).await?;
    let body = LoginResponse {
        user: me_of(&user),
        csrf_token: csrf,
    };
    Ok((
        [(header::SET_COOKIE, session_cookie(&s, &secret))],
        Json(body),
    )
        .into_response())
}

pub async fn logout(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Response> {
    if let Via::Session { id_hash, .. } = &p.via {
        s.auth.close_session(id_hash).await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, clear_session_cookie(&s))],
    )
        .into_response())
}

pub async fn token_login(
    State(s): State<AppState>,
    ApiJson(req): ApiJson<TokenLoginRequest>,
) -> ApiResult<(StatusCode, Json<TokenCreated>)> {
    let user = s
        .auth
        .check_credentials(&req.username, &req.password)
        .await?;
    let (token, record) = s
        .auth
        .create_token(&user.id, &req.token_name, req.expires_in_days)
        .await?;
    s.store.record_login(&user.id, now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenCreated {
            token,
            info: token_of(&record),
        }),
    ))
}

async fn current_user(s: &AppState, p: &Principal) -> ApiResult<UserRecord> {
    s.store
        .user_by_username(&p.username)
        .await?
        .ok_or_else(|| ApiFailure::new(ErrorCode::Unauthenticated, "the account no longer exists"))
}

pub async fn me(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Me>> {
    Ok(Json(me_of(&current_user(&s, &p).await?)))
}

/// Shared by the API and the account page.
pub async fn do_change_password(
    s: &AppState,
    p: &Principal,
    current: &str,
    new: &str,
) -> ApiResult<()> {
    let user = s
        .auth
        .check_credentials(p.username.as_str(), current)
        .await?;
    auth::check_new_password(s.auth.session_config(), p.username.as_str(), new)?;
    let hash = auth::hash_password(new).await?;
    s.store.set_password_hash(&user.id, &hash).await?;
    s.auth.evict_user(&user.id);
    Ok(())
}

pub async fn change_password(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiJson(req): ApiJson<PasswordChangeRequest>,
) -> ApiResult<StatusCode> {
    do_change_password(&s, &p, &req.current_password, &req.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_tokens(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<List<ApiToken>>> {
    let items = s
        .store
        .list_tokens(&p.user_id)
        .await?
        .iter()
        .map(token_of)
        .collect();
    Ok(Json(List { items }))
}

pub async fn create_token(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiJson(req): ApiJson<CreateTokenRequest>,
) -> ApiResult<(StatusCode, Json<TokenCreated>)> {
    let (token, record) = s
        .auth
        .create_token(&p.user_id, &req.name, req.expires_in_days)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenCreated {
            token,
            info: token_of(&record),
        }),
    ))
}

pub async fn do_revoke_token(s: &AppState, p: &Principal, id: &str) -> ApiResult<()> {
    match s.store.revoke_token(&p.user_id, id, now()).await? {
        Some(hash) => {
            s.auth.evict_hash(&hash);
            Ok(())
        }
        None => Err(ApiFailure::new(
            ErrorCode::TokenNotFound,
            "you have no live token with this id",
        )),
    }
}

pub async fn revoke_token(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    do_revoke_token(&s, &p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_datalabs(
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<DatalabList>> {
    let filter = Filter::parse(q.as_deref(), &DATALAB_FACETS, true)?;
    let cat = s.catalogue();
    let (hits, facets) = search(&cat.datalabs, &filter, &DATALAB_FACETS);
    Ok(Json(DatalabList {
        items: hits.into_iter().map(wire::datalab).collect(),
        facets,
    }))
}

pub async fn get_datalab(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Datalab>> {
    let cat = s.catalogue();
    cat.get(&name)
        .map(|d| Json(wire::datalab(d)))
        .ok_or_else(|| {
            ApiFailure::new(
                ErrorCode::DatalabNotFound,
                format!("no datalab {name:?} in the catalogue"),
            )
        })
}

pub async fn list_volumes(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<VolumeList>> {
    let filter = Filter::parse(q.as_deref(), &VOLUME_FACETS, true)?;
    let mine = s.my_volumes(&p.user_id).await?;
    let (hits, facets) = search(&s.volumes.volumes, &filter, &VOLUME_FACETS);
    let items = hits
        .into_iter()
        .map(|v| wire::volume(v, mine.iter().any(|m| m == v.spec.name.as_str())))
        .collect();
    Ok(Json(VolumeList { items, facets }))
}

fn volume_or_404<'a>(s: &'a AppState, name: &str) -> ApiResult<&'a volumes::VolumeEntry> {
    s.volumes.get(name).ok_or_else(|| {
        ApiFailure::new(
            ErrorCode::VolumeNotFound,
            format!("no data volume {name:?} in the catalogue"),
        )
    })
}

pub async fn get_volume(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> ApiResult<Json<Volume>> {
    let v = volume_or_404(&s, &name)?;
    let mine = s.my_volumes(&p.user_id).await?;
    Ok(Json(wire::volume(v, mine.contains(&name))))
}

pub async fn my_volumes(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<List<Volume>>> {
    let mine = s.my_volumes(&p.user_id).await?;
    // A volume removed from the configuration simply drops out of the list.
    let items = mine
        .iter()
        .filter_map(|n| s.volumes.get(n))
        .map(|v| wire::volume(v, true))
        .collect();
    Ok(Json(List { items }))
}

pub async fn do_add_my_volume(s: &AppState, p: &Principal, name: &str) -> ApiResult<Volume> {
    let v = volume_or_404(s, name)?;
    s.add_my_volume(&p.user_id, name).await?;
    Ok(wire::volume(v, true))
}

pub async fn add_my_volume(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> ApiResult<Json<Volume>> {
    Ok(Json(do_add_my_volume(&s, &p, &name).await?))
}

pub async fn do_remove_my_volume(s: &AppState, p: &Principal, name: &str) -> ApiResult<()> {
    volume_or_404(s, name)?;
    s.remove_my_volume(&p.user_id, name).await?;
    Ok(())
}

pub async fn remove_my_volume(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    do_remove_my_volume(&s, &p, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_users(State(s): State<AppState>) -> ApiResult<Json<List<User>>> {
    Ok(Json(List {
        items: s.store.list_users().await?.iter().map(user_of).collect(),
    }))
}

pub async fn do_create_user(s: &AppState, req: CreateUserRequest) -> ApiResult<User> {
    let username: Username = req.username.parse().map_err(|e| {
        ApiFailure::new(
            ErrorCode::InvalidUsername,
            format!("username {:?} {e}", req.username),
        )
    })?;
    auth::check_new_password(s.auth.session_config(), username.as_str(), &req.password)?;
    let password_hash = auth::hash_password(&req.password).await?;
    let role = req.role.unwrap_or(Role::User);
    match s
        .store
        .create_user(NewUser {
            username,
            password_hash,
            role,
            now: now(),
        })
        .await
    {
        Ok(u) => Ok(user_of(&u)),
        Err(StoreError::UsernameTaken(name)) => Err(ApiFailure::new(
            ErrorCode::UsernameTaken,
            format!("the username {name} is taken"),
        )),
        Err(e) => Err(e.into()),
    }
}

pub async fn create_user(
    State(s): State<AppState>,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<User>)> {
    Ok((StatusCode::CREATED, Json(do_create_user(&s, req).await?)))
}

/// Applies a role change or (dis)abling; refuses to leave no active admin.
pub async fn do_update_user(
    s: &AppState,
    username: &str,
    req: UpdateUserRequest,
) -> ApiResult<User> {
    let not_found = || ApiFailure::new(ErrorCode::UserNotFound, format!("no user {username:?}"));
    let name: Username = username.parse().map_err(|_| not_found())?;
    let user = s
        .store
        .user_by_username(&name)
        .await?
        .ok_or_else(not_found)?;
    let stays_admin =
        req.role.unwrap_or(user.role) == Role::Admin && !req.disabled.unwrap_or(user.disabled);
    if user.role == Role::Admin
        && !user.disabled
        && !stays_admin
        && s.store.count_active_admins().await? <= 1
    {
        return Err(ApiFailure::new(
            ErrorCode::LastAdmin,
            "this is the last active administrator",
        ));
    }
    if let Some(role) = req.role {
        s.store.set_role(&user.id, role).await?;
    }
    if let Some(disabled) = req.disabled {
        s.store.set_disabled(&user.id, disabled).await?;
    }
    s.auth.evict_user(&user.id);
    let updated = s
        .store
        .user_by_username(&name)
        .await?
        .ok_or_else(not_found)?;
    tracing::info!(username = %name, role = %updated.role, disabled = updated.disabled, "account updated");
    Ok(user_of(&updated))
}

pub async fn update_user(
    State(s): State<AppState>,
    Path(username): Path<String>,
    ApiJson(req): ApiJson<UpdateUserRequest>,
) -> ApiResult<Json<User>> {
    Ok(Json(do_update_user(&s, &username, req).await?))
}

pub async fn catalogue_problems(State(s): State<AppState>) -> Json<List<CatalogueProblem>> {
    Json(List {
        items: s.catalogue().problems.clone(),
    })
}

pub async fn reload_catalogue(State(s): State<AppState>) -> Json<List<CatalogueProblem>> {
    Json(List {
        items: s.reload_catalogue().problems.clone(),
    })
}

pub fn lab_of(s: &AppState, l: &insitu_store::LabRecord) -> Lab {
    Lab {
        id: l.id.clone(),
        datalab: l.datalab.clone(),
        volumes: l.volumes.clone(),
        file: l.file.clone(),
        state: l.state.clone(),
        reason: l.reason.clone(),
        progress: s
            .labs
            .progress(&l.id)
            .into_iter()
            .map(|st| LaunchStep {
                step: st.step.to_owned(),
                at_ms: u64::try_from(st.at_ms).unwrap_or(u64::MAX),
            })
            .collect(),
        created_at: rfc3339(l.created_at),
        started_at: l.started_at.map(rfc3339),
        stopped_at: l.stopped_at.map(rfc3339),
    }
}

/// Validates and launches; shared by the API and the datalab page.
pub async fn do_launch(
    s: &AppState,
    p: &Principal,
    req: LaunchRequest,
) -> ApiResult<insitu_store::LabRecord> {
    let cat = s.catalogue();
    let spec = cat.get(&req.datalab).ok_or_else(|| {
        ApiFailure::new(
            ErrorCode::DatalabNotFound,
            format!("no datalab {:?} in the catalogue", req.datalab),
        )
    })?;
    let mut volumes = Vec::new();
    for name in &req.volumes {
        if volumes
            .iter()
            .any(|v: &insitu_domain::VolumeSpec| v.name.as_str() == name)
        {
            continue;
        }
        volumes.push(volume_or_404(s, name)?.spec.clone());
    }
    let file = match req.file {
        None => None,
        Some(_) if !spec.launch.opens_files() => {
            return Err(ApiFailure::new(
                ErrorCode::InvalidLaunchFile,
                format!("{} opens no files: launch it without one", spec.name),
            ));
        }
        Some(file) => {
            let (selected, all) = (volumes.clone(), s.volumes.volumes.clone());
            let resolved = tokio::task::spawn_blocking(move || {
                volumes::resolve_launch_file(&selected, &all, &file)
            })
            .await
            .map_err(|e| ApiFailure::new(ErrorCode::Internal, e.to_string()))?;
            Some(resolved.map_err(insitu_core::Error::from)?)
        }
    };
    Ok(s.labs
        .launch(&p.user_id, p.username.as_str(), spec, volumes, file)
        .await?)
}

pub async fn launch_lab(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiJson(req): ApiJson<LaunchRequest>,
) -> ApiResult<(StatusCode, Json<Lab>)> {
    let lab = do_launch(&s, &p, req).await?;
    Ok((StatusCode::ACCEPTED, Json(lab_of(&s, &lab))))
}

pub async fn list_labs(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<List<Lab>>> {
    let labs = s.store.labs_of_user(&p.user_id).await?;
    Ok(Json(List {
        items: labs.iter().map(|l| lab_of(&s, l)).collect(),
    }))
}

/// The caller's own lab; another user's lab is not found, not forbidden,
/// so lab ids cannot be probed.
pub async fn own_lab(s: &AppState, p: &Principal, id: &str) -> ApiResult<insitu_store::LabRecord> {
    match s.store.lab(id).await? {
        Some(l) if l.user_id == p.user_id => Ok(l),
        _ => Err(ApiFailure::new(
            ErrorCode::LabNotFound,
            format!("you have no lab {id:?}"),
        )),
    }
}

pub async fn get_lab(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<Lab>> {
    Ok(Json(lab_of(&s, &own_lab(&s, &p, &id).await?)))
}

pub async fn stop_lab(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<Lab>> {
    let lab = own_lab(&s, &p, &id).await?;
    let stopped = s.labs.stop(lab).await?;
    Ok(Json(lab_of(&s, &stopped)))
}

pub async fn lab_logs(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<LabLogs>> {
    let lab = own_lab(&s, &p, &id).await?;
    let path = s.labs.log_path(&lab.id);
    let lines = tokio::task::spawn_blocking(move || insitu_launcher::process::log_tail(&path, 200))
        .await
        .unwrap_or_default();
    Ok(Json(LabLogs { lines }))
}

/// The records of the caller's SAMP hub (empty before their first lab).
pub async fn my_samp(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<List<SampRecord>>> {
    let labs = std::sync::Arc::clone(&s.labs);
    let items = tokio::task::spawn_blocking(move || labs.samp_records(&p.user_id))
        .await
        .unwrap_or_default();
    Ok(Json(List { items }))
}

/// A single-use link that logs the caller into their running lab on the
/// proxy's origin.
pub async fn open_url(s: &AppState, p: &Principal, id: &str) -> ApiResult<String> {
    let lab = own_lab(s, p, id).await?;
    if lab.state != "running" {
        return Err(ApiFailure::new(
            ErrorCode::LabNotRunning,
            format!("lab {id} is {}; only a running lab opens", lab.state),
        ));
    }
    Ok(s.labs.entry_link(&lab.id, &p.user_id)?)
}

pub async fn open_lab(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<LabOpen>> {
    Ok(Json(LabOpen {
        url: open_url(&s, &p, &id).await?,
    }))
}

pub async fn my_workspace(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Json<Workspace> {
    let (used_bytes, files) = s.labs.workspace_usage(p.username.as_str()).await;
    Json(Workspace {
        path: insitu_launcher::HOME_PATH.to_owned(),
        used_bytes,
        files,
    })
}
