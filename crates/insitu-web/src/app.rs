//! Building and running the server: the platform's services, the lab proxy
//! wired to them, and the router in front.

use std::future::Future;
use std::sync::Arc;

use insitu_core::{InitialAdmin, Platform, SetupError};
use tokio::net::TcpListener;

use crate::auth::CookieNames;
use crate::config::{ServerConfig, WebConfigError};
use crate::lab_proxy;
use crate::lab_socket::LabSockets;
use crate::state::{AppState, Inner};
use crate::{listener, metrics_layer, openapi, routes, security_headers, templates};

/// What stops the server from being built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Platform(#[from] SetupError),
    #[error(transparent)]
    Config(#[from] WebConfigError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Proxy(#[from] crate::config::ProxySettingError),
    #[error("page templates: {0}")]
    Templates(#[from] minijinja::Error),
    #[error("OpenAPI document: {0}")]
    OpenApi(#[from] serde_json::Error),
}

/// A built application, ready to serve.
pub struct App {
    state: AppState,
    proxy: insitu_proxy::Proxy,
    proxy_listener: TcpListener,
    /// The proxy's URL as browsers reach it (`{lab}` for each lab's id).
    proxy_url: String,
    /// The headers every response carries (see `security_headers`).
    csp: axum::http::HeaderValue,
    /// The labs' API sockets.
    lab_sockets: Arc<LabSockets>,
}

impl App {
    /// Builds the platform's services (connecting the store, applying
    /// migrations, loading the catalogues, creating the first administrator
    /// when there is no account yet), binds the lab proxy and takes over the
    /// labs left from before a restart.
    pub async fn build(config: ServerConfig) -> Result<(App, Option<InitialAdmin>), BuildError> {
        metrics_layer::install();
        // A bad setting stops the start before anything is done.
        let listening = config.http.parse()?;
        let oidc = crate::oidc::Oidc::new(config.oidc.clone())?;
        config.metrics.validate()?;
        let proxy_config = config
            .proxy
            .settings(config.public_url.clone().unwrap_or_else(|| "/".to_owned()))?;
        let (platform, initial_admin) = Platform::build(config.platform()).await?;
        let proxy_listener = TcpListener::bind(config.proxy.listen).await?;
        // Where browsers reach labs: the configured URL, else the address
        // the proxy listens on (one origin shared by all labs).
        let public = match proxy_config.public_url.clone() {
            Some(url) => url,
            None => {
                let bound = proxy_listener
                    .local_addr()
                    .map_or(config.proxy.listen, |a| a);
                insitu_proxy::PublicUrl::parse(&format!("http://{bound}"))
                    .map_err(crate::config::ProxySettingError::from)?
            }
        };
        let proxy_url = public.to_string();
        // Sessions are written through to the platform's table, so a
        // restart keeps them and a revocation reaches every process.
        let proxy = insitu_proxy::Proxy::with_session_table(
            proxy_config,
            Arc::new(lab_proxy::Directory(Arc::clone(platform.labs()))),
            Arc::new(lab_proxy::Sessions(platform.proxy_sessions().clone())),
        );
        let lab_sockets = LabSockets::new();
        platform
            .open_labs(
                Arc::new(lab_proxy::Door {
                    proxy: proxy.clone(),
                    url: public,
                }),
                Arc::clone(&lab_sockets) as Arc<dyn insitu_core::labs::LabApi>,
            )
            .await?;
        let secure_cookies = config
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"));
        let csp = axum::http::HeaderValue::from_str(
            &security_headers::content_security_policy(&proxy_url),
        )
        .unwrap_or_else(|_| {
            axum::http::HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; style-src 'self'; form-action 'self'; frame-ancestors 'none'",
            )
        });
        let state = AppState(Arc::new(Inner {
            openapi_json: serde_json::to_string_pretty(&openapi::openapi_document())?,
            templates: templates::environment()?,
            config,
            platform,
            secure_cookies,
            cookies: CookieNames::new(secure_cookies),
            listening,
            oidc,
        }));
        lab_sockets.set_router(routes::lab_router(state.clone()));
        Ok((
            App {
                state,
                proxy,
                proxy_listener,
                proxy_url,
                csp,
                lab_sockets,
            },
            initial_admin,
        ))
    }

    /// A handle on the running platform and lab proxy, valid while the app
    /// serves (for operators' tools and tests).
    pub fn handle(&self) -> AppHandle {
        AppHandle {
            state: self.state.clone(),
            proxy: self.proxy.clone(),
        }
    }

    /// Where the lab proxy listens, as browsers reach it; with an origin
    /// per lab, `{lab}` stands for the lab's id.
    pub fn proxy_url(&self) -> &str {
        &self.proxy_url
    }

    pub fn router(&self) -> axum::Router {
        routes::router(self.state.clone()).layer(axum::middleware::from_fn_with_state(
            self.csp.clone(),
            security_headers::add,
        ))
    }

    /// Serves until `shutdown` completes, then drains open requests. The
    /// listener applies `http`'s timeouts and connection limit.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = self.router();
        let maintenance = self.state.platform.maintain();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let proxy = tokio::spawn(
            self.proxy
                .serve(self.proxy_listener, stopped(stop_rx.clone())),
        );
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let result =
            listener::serve(listener, router, &self.state.listening, stopped(stop_rx)).await;
        if let Ok(Err(e)) = proxy.await {
            tracing::warn!(error = %e, "lab proxy ended with an error");
        }
        drop(maintenance);
        // The sockets' router holds the state: let both go.
        self.lab_sockets.shut();
        self.state.platform.close().await;
        result
    }
}

/// The platform's services and the lab proxy of an [`App`], cheap to clone.
#[derive(Clone)]
pub struct AppHandle {
    state: AppState,
    proxy: insitu_proxy::Proxy,
}

impl AppHandle {
    pub fn platform(&self) -> &Platform {
        &self.state.platform
    }

    pub fn proxy(&self) -> &insitu_proxy::Proxy {
        &self.proxy
    }
}
