//! Building and running the server.

use std::collections::HashMap;
use std::future::Future;
use std::ops::Deref;
use std::sync::{Arc, RwLock};

use insitu_domain::{Role, Username};
use insitu_store::{NewUser, Store};
use tokio::net::TcpListener;

use insitu_core::labs::{LabConfigView, Labs};
use insitu_core::volumes::VolumeCatalogue;
use insitu_core::{Catalogue, load_catalogue};

use crate::auth::{self, Auth};
use crate::config::ServerConfig;
use crate::lab_proxy;
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
    pub labs: Arc<Labs>,
    /// The proxy's URL as browsers reach it.
    pub proxy_url: String,
    /// Each user's volume names, read through on first use and replaced on
    /// every change made through this server.
    my_volumes: RwLock<HashMap<String, Arc<Vec<String>>>>,
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

    /// The names of a user's volumes.
    pub async fn my_volumes(
        &self,
        user_id: &str,
    ) -> Result<Arc<Vec<String>>, insitu_store::StoreError> {
        if let Some(v) = self
            .my_volumes
            .read()
            .ok()
            .and_then(|m| m.get(user_id).cloned())
        {
            return Ok(v);
        }
        let fresh = Arc::new(self.store.my_volumes(user_id).await?);
        if let Ok(mut m) = self.my_volumes.write() {
            m.insert(user_id.to_owned(), Arc::clone(&fresh));
        }
        Ok(fresh)
    }

    pub async fn add_my_volume(
        &self,
        user_id: &str,
        name: &str,
    ) -> Result<(), insitu_store::StoreError> {
        self.store
            .add_my_volume(user_id, name, crate::time_fmt::now())
            .await?;
        self.forget_my_volumes(user_id);
        Ok(())
    }

    pub async fn remove_my_volume(
        &self,
        user_id: &str,
        name: &str,
    ) -> Result<(), insitu_store::StoreError> {
        self.store.remove_my_volume(user_id, name).await?;
        self.forget_my_volumes(user_id);
        Ok(())
    }

    fn forget_my_volumes(&self, user_id: &str) {
        if let Ok(mut m) = self.my_volumes.write() {
            m.remove(user_id);
        }
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
    proxy: insitu_proxy::Proxy,
    proxy_listener: TcpListener,
}

impl App {
    /// Connects the store (applying migrations), loads the catalogues and
    /// creates the first administrator when there is no account yet.
    pub async fn build(config: ServerConfig) -> anyhow::Result<(App, Option<InitialAdmin>)> {
        metrics_layer::install();
        config.session.validate()?;
        if config.labs.run_as_uid == 0 || config.labs.run_as_gid == 0 {
            anyhow::bail!(
                "labs.run_as_uid and labs.run_as_gid must not be 0: tools never run as root"
            );
        }
        insitu_domain::datalab::parse_duration(&config.labs.start_timeout)
            .map_err(|e| anyhow::anyhow!("labs.start_timeout: {e}"))?;
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
        std::fs::create_dir_all(&config.data_dir)?;
        let data_dir = std::fs::canonicalize(&config.data_dir)?;
        let labs = Labs::new(
            store.clone(),
            LabConfigView {
                bwrap: config.labs.bwrap.clone(),
                hidden: vec![data_dir.clone()],
                data_dir,
                max_labs_per_user: config.labs.max_per_user,
                start_timeout: std::time::Duration::from_secs(config.labs.start_timeout_secs()),
                tool_path: config.labs.tool_path.clone(),
                expose: config.labs.expose.clone(),
                run_as: (config.labs.run_as_uid, config.labs.run_as_gid),
                idle_timeout: config.labs.idle_timeout()?,
                gpus: config.labs.gpu_inventory(),
                cgroups: if config.labs.enforce_limits {
                    let c = insitu_launcher::Cgroups::detect("insitu");
                    tracing::info!(limits = %c.describe(), "lab resource limits");
                    c
                } else {
                    tracing::warn!("lab resource limits are off (labs.enforce_limits = false)");
                    insitu_launcher::Cgroups::Unavailable(
                        "turned off by labs.enforce_limits".into(),
                    )
                },
                max_processes: config.labs.max_processes,
                network_per_user: config.labs.network == crate::config::LabNetworkMode::User,
            },
        );
        let proxy_listener = TcpListener::bind(config.proxy.listen).await?;
        let proxy_url = config
            .proxy
            .public_url
            .clone()
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| {
                format!(
                    "http://{}",
                    proxy_listener
                        .local_addr()
                        .map_or(config.proxy.listen, |a| a)
                )
            });
        let mut proxy_config = insitu_proxy::ProxyConfig::new(
            config.public_url.clone().unwrap_or_else(|| "/".to_owned()),
        );
        proxy_config.cookie_secure = proxy_url.starts_with("https://");
        if let Some(t) = config.proxy.threads {
            proxy_config.threads = t.max(1);
        }
        let proxy = insitu_proxy::Proxy::new(
            proxy_config,
            Arc::new(lab_proxy::Directory(Arc::clone(&labs))),
        );
        labs.set_proxy(Arc::new(lab_proxy::Door {
            proxy: proxy.clone(),
            url: proxy_url.clone(),
        }));
        labs.prepare_dirs()?;
        labs.adopt_all().await?;
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
            labs,
            proxy_url,
            my_volumes: RwLock::new(HashMap::new()),
        }));
        Ok((
            App {
                state,
                proxy,
                proxy_listener,
            },
            initial_admin,
        ))
    }

    /// Where the lab proxy listens, as browsers reach it.
    pub fn proxy_url(&self) -> &str {
        &self.state.proxy_url
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
        let labs = Arc::clone(&self.state.labs);
        let monitor = tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tick.tick().await;
                if let Err(e) = labs.check_running().await {
                    tracing::warn!(error = %e, "could not check running labs");
                }
            }
        });
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
        let result = axum::serve(listener, router)
            .with_graceful_shutdown(stopped(stop_rx))
            .await;
        if let Ok(Err(e)) = proxy.await {
            tracing::warn!(error = %e, "lab proxy ended with an error");
        }
        sweeper.abort();
        monitor.abort();
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
