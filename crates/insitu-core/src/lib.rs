//! The platform's services, with no HTTP in them: accounts (password
//! hashing and checks, sessions and API tokens), labs (launch, the state
//! machine, the monitor, idle culling, re-adoption after a restart, each
//! tool's own secret; a sandbox or a podman container per datalab), the
//! lab proxy's persistent sessions, desktop sessions and SAMP hubs, teams
//! and their workspaces, the datalab and data volume catalogues, faceted
//! search over them, the discovery portal (`search`: one index over
//! datalabs, volumes and the datasets harvested from volumes, with cone
//! search), the pipeline catalogue (`pipelines`) and pipeline runs (`runs`:
//! queue, engine, progress, outputs, provenance), and user-developed
//! datalabs (drafts, OCI builds, sharing, moderated publishing, export and
//! import). A [`Platform`] holds them all and runs the operations that span
//! several.
//!
//! This crate must never depend on an HTTP library (axum, hyper, tower,
//! http) or on the lab proxy: the web crate adapts the services to HTTP, and
//! reaches the proxy for them through [`labs::LabProxy`]. Persistent state
//! goes through the store; sandboxes through the launcher. Errors are
//! [`Error`], with the facts in its variants; the web crate alone turns them
//! into public error codes.

pub mod access_requests;
pub mod accounts;
pub mod catalogue;
pub mod clock;
pub mod config;
pub mod devlabs;
pub mod error;
pub mod labs;
pub mod pipelines;
pub mod platform;
pub mod proxy_sessions;
pub mod query;
pub mod runs;
pub mod search;
pub mod teams;
pub mod usage;
pub mod volumes;
pub mod workspaces;
pub mod zones;

pub use accounts::{InitialAdmin, Principal, Via};
pub use catalogue::{Catalogue, load_catalogue};
pub use config::{
    AccessConfig, AdminConfig, DevlabsConfig, LabNetworkMode, LabsConfig, LoginConfig,
    PipelinesConfig, PlatformConfig, QuotasConfig, SampHubConfig, SessionConfig, UsageConfig,
};
pub use error::{Error, PasswordRule, Result};
pub use insitu_store::{
    BuildRecord, DevlabRecord, LabEventRecord, LabRecord, ProxySessionRecord, ReleaseRecord,
    RunRecord, TokenRecord, UserRecord,
};
pub use platform::{ComputeUse, LaunchOrder, Maintenance, Platform, QuotaChange, SetupError};
