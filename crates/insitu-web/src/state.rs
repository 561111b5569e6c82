//! What every request handler shares.

use std::ops::Deref;
use std::sync::Arc;

use insitu_core::Platform;

use crate::auth::CookieNames;
use crate::config::{Listening, ServerConfig};

/// Shared state of every request; cheap to clone.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

pub struct Inner {
    pub config: ServerConfig,
    /// The platform's services; handlers are thin adapters over them.
    pub platform: Platform,
    pub templates: minijinja::Environment<'static>,
    pub openapi_json: String,
    pub secure_cookies: bool,
    /// The platform's cookie names (`__Host-` prefixed over https).
    pub cookies: CookieNames,
    /// The listener's settings, parsed (trusted proxies among them).
    pub listening: Listening,
    /// The OpenID providers and the logins with them under way.
    pub oidc: crate::oidc::Oidc,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
