//! Building and running the server.

use std::future::Future;
use std::ops::Deref;
use std::sync::{Arc, RwLock};

use insitu_domain::{Role, Username};
use insitu_store::{NewUser, Store};
use tokio::net::TcpListener;

use crate::auth::{self, Auth};
use crate::catalogue::{Catalogue, load_catalogue};
use crate::config::ServerConfig;
use crate::volumes::VolumeCatalogue;
use crate::{metrics_layer, openapi, routes, templates};

/// Shared state of every request; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: ServerConfig,
    pub store: Store,
    pub auth: Auth,
    catalogue: RwLock<Arc<Catalogue>>,
    pub volumes: VolumeCatalogue,
    pub templates: minijinja::Environment<'static>,
    pub openapi_json: String,
    pub secure_cookies: bool,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Inner {
    pub fn catalogue(&self) -> Arc<Catalogue> {
        self.catalogue
            .read()
            .map(|c| Arc::clone(&c))
            .unwrap_or_default()
    }

    pub fn reload_catalogue(&self) -> Arc<Catalogue> {
        let fresh = Arc::new(load_catalogue(&self.config.catalogue_dir));
        if let Ok(mut c) = self.catalogue.write() {
            *c = Arc::clone(&fresh);
        }
        fresh
    }
}

/// The administrator created on first start, when their password was
/// generated: the caller shows it once.
#[derive(Clone)]
pub struct InitialAdmin {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for InitialAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitialAdmin")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A built application, ready to serve.
pub struct App {
    state: AppState,
}

impl App {
    /// Connects the store (applying migrations), loads the catalogues and
    /// creates the first administrator when there is no account yet.
    pub async fn build(config: ServerConfig) -> anyhow::Result<(App, Option<InitialAdmin>)> {
        metrics_layer::install();
        config.session.validate()?;
        if config.database_url.is_none() {
            std::fs::create_dir_all(&config.data_dir)?;
        }
        let store = Store::connect(&config.database_url()).await?;
        let initial_admin = bootstrap_admin(&store, &config).await?;
        let catalogue = load_catalogue(&config.catalogue_dir);
        tracing::info!(
            datalabs = catalogue.datalabs.len(),
            problems = catalogue.problems.len(),
            dir = %config.catalogue_dir.display(),
            "datalab catalogue loaded"
        );
        let volumes = VolumeCatalogue::from_config(&config.volumes)?;
        let auth = Auth::new(store.clone(), config.session.clone()).await?;
        let secure_cookies = config
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"));
        let state = AppState(Arc::new(Inner {
            openapi_json: serde_json::to_string_pretty(&openapi::openapi_document())?,
            templates: templates::environment()?,
            config,
            store,
            auth,
            catalogue: RwLock::new(Arc::new(catalogue)),
            volumes,
            secure_cookies,
        }));
        Ok((App { state }, initial_admin))
    }

    pub fn router(&self) -> axum::Router {
        routes::router(self.state.clone())
    }

    /// Serves until `shutdown` completes, then drains open requests.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let router = self.router();
        let store = self.state.store.clone();
        let session = self.state.config.session.clone();
        let sweeper = tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
            loop {
                tick.tick().await;
                let idle = session.idle_secs();
                match store
                    .delete_stale_sessions(crate::time_fmt::now(), idle)
                    .await
                {
                    Ok(n) if n > 0 => tracing::info!(removed = n, "stale sessions removed"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "could not remove stale sessions"),
                }
            }
        });
        let result = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await;
        sweeper.abort();
        self.state.store.close().await;
        Ok(result?)
    }
}

async fn bootstrap_admin(
    store: &Store,
    config: &ServerConfig,
) -> anyhow::Result<Option<InitialAdmin>> {
    if store.count_users().await? > 0 {
        return Ok(None);
    }
    let username: Username = config
        .admin
        .username
        .parse()
        .map_err(|e| anyhow::anyhow!("admin.username {:?} {e}", config.admin.username))?;
    let (password, generated) = match &config.admin.password {
        Some(p) => (p.clone(), false),
        None => (
            auth::new_secret().chars().take(20).collect::<String>(),
            true,
        ),
    };
    let password_hash = auth::hash_password(&password).await?;
    store
        .create_user(NewUser {
            username: username.clone(),
            password_hash,
            role: Role::Admin,
            now: crate::time_fmt::now(),
        })
        .await?;
    tracing::info!(username = %username, "first administrator created");
    Ok(generated.then(|| InitialAdmin {
        username: username.to_string(),
        password,
    }))
}
