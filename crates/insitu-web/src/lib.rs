//! The platform's HTTP face: one router listing every route (API and pages),
//! authentication and roles checked from that list, OpenAPI generated from
//! the same list, Prometheus metrics, and server-rendered pages.
//!
//! The JSON API (`api`) and the pages (`pages`) are two parallel thin
//! adapters over the platform's services in `insitu-core`; neither calls the
//! other, and no module imports both (what both need of pipelines is in
//! `pipeline_wire`). A third, `vo`, answers the Virtual Observatory's Simple
//! Cone Search in VOTables. This crate holds no SQL and no
//! platform logic: it turns HTTP into calls on the services and their
//! results (and errors, mapped to public codes in `error`) into HTTP. It
//! also wires the lab proxy to the labs service and the platform's session
//! table (`lab_proxy`), with its `[proxy]` settings, and serves each
//! lab's API socket, its owner's way to the pipelines and runs API from
//! inside the lab (`lab_socket`).
//! `App::build` + `App::serve` are what the binary and the tests call, the
//! latter on a port-0 listener; `App::handle` reaches the running platform
//! and proxy; `listener` serves the router with header and idle timeouts
//! and a connection limit, and every response carries the headers of
//! `security_headers`.

mod access;
mod api;
mod app;
mod auth;
mod client;
mod config;
mod error;
mod error_page;
mod graph_svg;
mod lab_proxy;
mod lab_socket;
mod listener;
mod metrics_layer;
mod oidc;
mod openapi;
mod pages;
mod pipeline_wire;
mod redirect;
mod routes;
mod security_headers;
mod state;
mod templates;
mod time_fmt;
mod usage;
mod vo;
mod wire;

pub use access::{Access, Surface};
pub use app::{App, AppHandle, BuildError};
pub use config::{
    HttpConfig, MetricsAccess, MetricsConfig, OidcProviderConfig, ProxyConfig, ServerConfig,
};
pub use insitu_core::{
    AdminConfig, DevlabsConfig, InitialAdmin, LabNetworkMode, LabsConfig, LoginConfig,
    PipelinesConfig, SessionConfig,
};
pub use insitu_domain::Secret;
pub use oidc::{Claims, Oidc};
pub use openapi::openapi_document;
pub use routes::{RouteInfo, route_table};
