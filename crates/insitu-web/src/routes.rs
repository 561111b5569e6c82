//! Every route of the platform in one table: method, path, who may call it,
//! what it takes and returns, and its handler. The router, the per-route
//! authorization check and the OpenAPI document are all built from this
//! table, so none of them can disagree with another.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use insitu_api::*;
use insitu_domain::Role;
use schemars::{JsonSchema, Schema, SchemaGenerator};

use crate::app::AppState;
use crate::{api, auth, metrics_layer, pages};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, logged in or not.
    Public,
    /// Callers whose role is at least this one.
    Role(Role),
}

/// Whether a route speaks JSON (API) or HTML (pages); failures are answered
/// in the same language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Api,
    Page,
}

pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// One row of the route table.
#[derive(Clone)]
pub struct RouteInfo {
    pub method: &'static str,
    pub path: &'static str,
    pub surface: Surface,
    pub access: Access,
    pub summary: &'static str,
    pub tag: &'static str,
    pub request: Option<SchemaFn>,
    /// Success status, and the body's schema when it has one.
    pub response: (u16, Option<SchemaFn>),
    pub query: &'static [&'static str],
    handler: fn() -> MethodRouter<AppState>,
}

fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

const USER: Access = Access::Role(Role::User);
const MODERATOR: Access = Access::Role(Role::Moderator);
const ADMIN: Access = Access::Role(Role::Admin);

#[allow(clippy::too_many_arguments)]
fn api_route(
    method: &'static str,
    path: &'static str,
    access: Access,
    tag: &'static str,
    summary: &'static str,
    request: Option<SchemaFn>,
    response: (u16, Option<SchemaFn>),
    handler: fn() -> MethodRouter<AppState>,
) -> RouteInfo {
    RouteInfo {
        method,
        path,
        surface: Surface::Api,
        access,
        summary,
        tag,
        request,
        response,
        query: &[],
        handler,
    }
}

fn page(
    method: &'static str,
    path: &'static str,
    access: Access,
    summary: &'static str,
    handler: fn() -> MethodRouter<AppState>,
) -> RouteInfo {
    RouteInfo {
        method,
        path,
        surface: Surface::Page,
        access,
        summary,
        tag: "pages",
        request: None,
        response: (200, None),
        query: &[],
        handler,
    }
}

/// The whole route table, API first, then pages.
pub fn route_table() -> Vec<RouteInfo> {
    let mut datalabs = api_route(
        "GET",
        "/api/v1/datalabs",
        USER,
        "catalogue",
        "Search the datalab catalogue (free text `q`, facets repeatable)",
        None,
        (200, Some(schema::<DatalabList>)),
        || get(api::list_datalabs),
    );
    datalabs.query = &["q", "kind", "domain", "mission", "property"];
    let mut volumes = api_route(
        "GET",
        "/api/v1/volumes",
        USER,
        "volumes",
        "Search the data volume catalogue (free text `q`, facets repeatable)",
        None,
        (200, Some(schema::<VolumeList>)),
        || get(api::list_volumes),
    );
    volumes.query = &["q", "domain", "mission", "instrument", "zone"];
    vec![
        api_route(
            "GET",
            "/healthz",
            Access::Public,
            "operations",
            "Liveness and database health",
            None,
            (200, Some(schema::<Health>)),
            || get(api::healthz),
        ),
        api_route(
            "GET",
            "/metrics",
            Access::Public,
            "operations",
            "Prometheus metrics (text format)",
            None,
            (200, None),
            || get(api::metrics),
        ),
        api_route(
            "GET",
            "/api/openapi.json",
            Access::Public,
            "operations",
            "This OpenAPI document",
            None,
            (200, None),
            || get(api::openapi),
        ),
        api_route(
            "POST",
            "/api/v1/auth/login",
            Access::Public,
            "auth",
            "Log in with username and password; sets the session cookie",
            Some(schema::<LoginRequest>),
            (200, Some(schema::<LoginResponse>)),
            || post(api::login),
        ),
        api_route(
            "POST",
            "/api/v1/auth/logout",
            USER,
            "auth",
            "End the current session",
            None,
            (204, None),
            || post(api::logout),
        ),
        api_route(
            "POST",
            "/api/v1/auth/token",
            Access::Public,
            "auth",
            "Exchange username and password for a personal API token (for the CLI)",
            Some(schema::<TokenLoginRequest>),
            (201, Some(schema::<TokenCreated>)),
            || post(api::token_login),
        ),
        api_route(
            "GET",
            "/api/v1/me",
            USER,
            "account",
            "The caller's account",
            None,
            (200, Some(schema::<Me>)),
            || get(api::me),
        ),
        api_route(
            "POST",
            "/api/v1/me/password",
            USER,
            "account",
            "Change the caller's password; ends all their sessions",
            Some(schema::<PasswordChangeRequest>),
            (204, None),
            || post(api::change_password),
        ),
        api_route(
            "GET",
            "/api/v1/me/tokens",
            USER,
            "account",
            "The caller's live API tokens",
            None,
            (200, Some(schema::<List<ApiToken>>)),
            || get(api::list_tokens),
        ),
        api_route(
            "POST",
            "/api/v1/me/tokens",
            USER,
            "account",
            "Create an API token; its secret is shown once",
            Some(schema::<CreateTokenRequest>),
            (201, Some(schema::<TokenCreated>)),
            || post(api::create_token),
        ),
        api_route(
            "DELETE",
            "/api/v1/me/tokens/{id}",
            USER,
            "account",
            "Revoke one of the caller's API tokens",
            None,
            (204, None),
            || delete(api::revoke_token),
        ),
        datalabs,
        api_route(
            "GET",
            "/api/v1/datalabs/{name}",
            USER,
            "catalogue",
            "One datalab",
            None,
            (200, Some(schema::<Datalab>)),
            || get(api::get_datalab),
        ),
        volumes,
        api_route(
            "GET",
            "/api/v1/volumes/{name}",
            USER,
            "volumes",
            "One data volume",
            None,
            (200, Some(schema::<Volume>)),
            || get(api::get_volume),
        ),
        api_route(
            "GET",
            "/api/v1/me/volumes",
            USER,
            "volumes",
            "The caller's volumes",
            None,
            (200, Some(schema::<List<Volume>>)),
            || get(api::my_volumes),
        ),
        api_route(
            "PUT",
            "/api/v1/me/volumes/{name}",
            USER,
            "volumes",
            "Add a volume to the caller's volumes",
            None,
            (200, Some(schema::<Volume>)),
            || put(api::add_my_volume),
        ),
        api_route(
            "DELETE",
            "/api/v1/me/volumes/{name}",
            USER,
            "volumes",
            "Remove a volume from the caller's volumes",
            None,
            (204, None),
            || delete(api::remove_my_volume),
        ),
        api_route(
            "GET",
            "/api/v1/me/workspace",
            USER,
            "labs",
            "The caller's workspace (seen by labs at /home/user) and how much it holds",
            None,
            (200, Some(schema::<Workspace>)),
            || get(api::my_workspace),
        ),
        api_route(
            "GET",
            "/api/v1/me/samp",
            USER,
            "labs",
            "What the caller's SAMP hub recorded: clients that registered and the messages and replies between them, oldest first",
            None,
            (200, Some(schema::<List<SampRecord>>)),
            || get(api::my_samp),
        ),
        api_route(
            "POST",
            "/api/v1/labs",
            USER,
            "labs",
            "Launch a datalab with data volumes; follow its progress with GET /api/v1/labs/{id}",
            Some(schema::<LaunchRequest>),
            (202, Some(schema::<Lab>)),
            || post(api::launch_lab),
        ),
        api_route(
            "GET",
            "/api/v1/labs",
            USER,
            "labs",
            "The caller's labs, newest first",
            None,
            (200, Some(schema::<List<Lab>>)),
            || get(api::list_labs),
        ),
        api_route(
            "GET",
            "/api/v1/labs/{id}",
            USER,
            "labs",
            "One of the caller's labs, with launch progress",
            None,
            (200, Some(schema::<Lab>)),
            || get(api::get_lab),
        ),
        api_route(
            "POST",
            "/api/v1/labs/{id}/stop",
            USER,
            "labs",
            "Stop a lab: its whole process tree ends; the workspace stays",
            None,
            (200, Some(schema::<Lab>)),
            || post(api::stop_lab),
        ),
        api_route(
            "POST",
            "/api/v1/labs/{id}/open",
            USER,
            "labs",
            "A single-use link that opens the caller's running lab on the lab proxy's origin",
            None,
            (200, Some(schema::<LabOpen>)),
            || post(api::open_lab),
        ),
        api_route(
            "GET",
            "/api/v1/labs/{id}/logs",
            USER,
            "labs",
            "The last 200 lines the lab's tool wrote",
            None,
            (200, Some(schema::<LabLogs>)),
            || get(api::lab_logs),
        ),
        api_route(
            "GET",
            "/api/v1/admin/users",
            ADMIN,
            "admin",
            "All accounts",
            None,
            (200, Some(schema::<List<User>>)),
            || get(api::list_users),
        ),
        api_route(
            "POST",
            "/api/v1/admin/users",
            ADMIN,
            "admin",
            "Create an account",
            Some(schema::<CreateUserRequest>),
            (201, Some(schema::<User>)),
            || post(api::create_user),
        ),
        api_route(
            "PATCH",
            "/api/v1/admin/users/{username}",
            ADMIN,
            "admin",
            "Change an account's role or disable it (its sessions and tokens stop at once)",
            Some(schema::<UpdateUserRequest>),
            (200, Some(schema::<User>)),
            || patch(api::update_user),
        ),
        api_route(
            "GET",
            "/api/v1/admin/catalogue/problems",
            MODERATOR,
            "admin",
            "Datalab definitions that failed to load, with file, field and reason",
            None,
            (200, Some(schema::<List<CatalogueProblem>>)),
            || get(api::catalogue_problems),
        ),
        api_route(
            "POST",
            "/api/v1/admin/catalogue/reload",
            ADMIN,
            "admin",
            "Reload the datalab catalogue from its directory",
            None,
            (200, Some(schema::<List<CatalogueProblem>>)),
            || post(api::reload_catalogue),
        ),
        page(
            "GET",
            "/",
            Access::Public,
            "Home: the catalogue, or the login page",
            || get(pages::home),
        ),
        page("GET", "/login", Access::Public, "Login form", || {
            get(pages::login_form)
        }),
        page("POST", "/login", Access::Public, "Log in", || {
            post(pages::login_submit)
        }),
        page("POST", "/logout", USER, "Log out", || post(pages::logout)),
        page(
            "GET",
            "/datalabs",
            USER,
            "Datalab catalogue with search and facets",
            || get(pages::datalabs),
        ),
        page("GET", "/datalabs/{name}", USER, "One datalab", || {
            get(pages::datalab)
        }),
        page(
            "POST",
            "/datalabs/{name}/launch",
            USER,
            "Launch a datalab",
            || post(pages::launch),
        ),
        page(
            "GET",
            "/my-labs",
            USER,
            "The caller's labs with live state",
            || get(pages::my_labs),
        ),
        page(
            "GET",
            "/my-labs/{id}",
            USER,
            "One lab: progress and logs",
            || get(pages::my_lab),
        ),
        page(
            "GET",
            "/my-labs/{id}/open",
            USER,
            "Open a running lab (through the lab proxy)",
            || get(pages::my_lab_open),
        ),
        page("POST", "/my-labs/{id}/stop", USER, "Stop a lab", || {
            post(pages::my_lab_stop)
        }),
        page(
            "GET",
            "/volumes",
            USER,
            "Data volume catalogue and the caller's volumes",
            || get(pages::volumes),
        ),
        page("GET", "/volumes/{name}", USER, "One data volume", || {
            get(pages::volume)
        }),
        page(
            "POST",
            "/volumes/{name}/add",
            USER,
            "Add to my volumes",
            || post(pages::volume_add),
        ),
        page(
            "POST",
            "/volumes/{name}/remove",
            USER,
            "Remove from my volumes",
            || post(pages::volume_remove),
        ),
        page("GET", "/account", USER, "Password and API tokens", || {
            get(pages::account)
        }),
        page("POST", "/account/password", USER, "Change password", || {
            post(pages::account_password)
        }),
        page(
            "POST",
            "/account/tokens",
            USER,
            "Create an API token",
            || post(pages::account_token_create),
        ),
        page(
            "POST",
            "/account/tokens/{id}/revoke",
            USER,
            "Revoke an API token",
            || post(pages::account_token_revoke),
        ),
        page("GET", "/admin/users", ADMIN, "Accounts", || {
            get(pages::admin_users)
        }),
        page("POST", "/admin/users", ADMIN, "Create an account", || {
            post(pages::admin_user_create)
        }),
        page(
            "POST",
            "/admin/users/{username}",
            ADMIN,
            "Change role or disable",
            || post(pages::admin_user_update),
        ),
        page(
            "GET",
            "/admin/catalogue",
            MODERATOR,
            "Catalogue health: definitions that failed to load",
            || get(pages::admin_catalogue),
        ),
        page(
            "POST",
            "/admin/catalogue/reload",
            ADMIN,
            "Reload the catalogue",
            || post(pages::admin_catalogue_reload),
        ),
        page(
            "GET",
            "/static/insitu.css",
            Access::Public,
            "Style sheet",
            || get(pages::stylesheet),
        ),
    ]
}

/// The application router.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for route in route_table() {
        let layer = from_fn_with_state(
            (state.clone(), route.access, route.surface),
            auth::authorize,
        );
        router = router.route(route.path, (route.handler)().route_layer(layer));
    }
    router
        .fallback(api::fallback)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(axum::middleware::from_fn(metrics_layer::track))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .with_state(state)
}
