//! Every route of the platform in one table: method, path, who may call it,
//! what it takes and returns, and its handler. The router, the per-route
//! authorization check and the OpenAPI document are all built from this
//! table, so none of them can disagree with another.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::MethodRouter;
use insitu_domain::Role;
use schemars::{JsonSchema, Schema, SchemaGenerator};

use crate::access::{Access, Surface};
use crate::state::AppState;
use crate::{auth, error_page, lab_socket, metrics_layer};

mod access;
mod api;
mod devlabs;
mod pages;
mod pipelines;

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
const DEVELOPER: Access = Access::Role(Role::Developer);
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

/// A Virtual Observatory route: GET, answering VOTables.
fn vo_route(
    path: &'static str,
    access: Access,
    summary: &'static str,
    query: &'static [&'static str],
    handler: fn() -> MethodRouter<AppState>,
) -> RouteInfo {
    RouteInfo {
        method: "GET",
        path,
        surface: Surface::VoTable,
        access,
        summary,
        tag: "discovery",
        request: None,
        response: (200, None),
        query,
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
    let mut table = api::rows();
    table.extend(pipelines::api_rows());
    table.extend(devlabs::api_rows());
    table.extend(access::api_rows());
    table.extend(pages::rows());
    table.extend(pipelines::page_rows());
    table.extend(devlabs::page_rows());
    table.extend(access::page_rows());
    table
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
        .fallback(error_page::fallback)
        .method_not_allowed_fallback(error_page::method_not_allowed)
        .layer(axum::middleware::from_fn(metrics_layer::track))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .with_state(state)
}

/// Whether a lab's API socket serves a route: the pipelines and runs API,
/// less what changes the catalogue (pushing a pipeline, or pushing one
/// to the system catalogue): a notebook lists, shows and validates
/// pipelines and submits, follows, cancels, resumes and downloads runs.
pub fn served_to_labs(route: &RouteInfo) -> bool {
    route.surface == Surface::Api
        && match route.tag {
            "runs" => true,
            "pipelines" => route.method == "GET" || route.path == "/api/v1/pipelines/validate",
            _ => false,
        }
}

/// The router of labs' API sockets: the rows [`served_to_labs`] keeps,
/// each checked by [`lab_socket::authorize`] (the caller is the lab's
/// owner); everything else is refused with `not_on_lab_socket`.
pub fn lab_router(state: AppState) -> Router {
    let mut router = Router::new();
    for route in route_table().into_iter().filter(served_to_labs) {
        let layer = from_fn_with_state((state.clone(), route.access), lab_socket::authorize);
        router = router.route(route.path, (route.handler)().route_layer(layer));
    }
    router
        .fallback(lab_socket::refused)
        .method_not_allowed_fallback(lab_socket::refused)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .with_state(state)
}
