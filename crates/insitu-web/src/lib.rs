//! The platform's HTTP face: one router listing every route (API and pages),
//! authentication and roles checked from that list, OpenAPI generated from
//! the same list, Prometheus metrics, and server-rendered pages.
//!
//! This crate turns HTTP into calls on the store and the catalogues; it holds
//! no SQL and no launch logic. `App::build` + `App::serve` are what the binary
//! and the tests call, the latter on a port-0 listener.

mod api;
mod app;
mod auth;
mod config;
mod error;
mod lab_proxy;
mod metrics_layer;
mod openapi;
mod pages;
mod routes;
mod templates;
mod time_fmt;
mod wire;

pub use app::{App, InitialAdmin};
pub use config::{AdminConfig, LabsConfig, ProxyConfig, ServerConfig, SessionConfig};
pub use openapi::openapi_document;
pub use routes::{Access, RouteInfo, Surface, route_table};
