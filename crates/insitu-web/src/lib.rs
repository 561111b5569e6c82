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
mod catalogue;
mod config;
mod error;
mod labs;
mod metrics_layer;
mod openapi;
mod pages;
mod query;
mod routes;
mod templates;
mod time_fmt;
mod volumes;

pub use app::{App, InitialAdmin};
pub use catalogue::{Catalogue, load_catalogue};
pub use config::{AdminConfig, LabsConfig, ProxyConfig, ServerConfig, SessionConfig};
pub use openapi::openapi_document;
pub use routes::{Access, RouteInfo, Surface, route_table};
