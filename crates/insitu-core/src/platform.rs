//! The platform: every service, built once from the configuration, and the
//! operations that span several of them (a launch needs the catalogue, the
//! volumes and the labs).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use insitu_domain::{Name, Role, UserId, Username, Viewer, VolumeSpec, ZoneSpec};
use insitu_launcher::{Cgroups, Limits, Podman};
use insitu_store::{LabRecord, Store, StoreError, UserRecord};

use crate::access_requests::AccessRequests;
use crate::accounts::{self, Accounts, InitialAdmin, Principal, Via};
use crate::catalogue::{Catalogue, Datalabs};
use crate::config::{ConfigError, LabNetworkMode, PlatformConfig};
use crate::devlabs::{Devlabs, DevlabsView};
use crate::error::Error;
use crate::labs::{LabConfigView, LabProxy, Labs};
use crate::pipelines::Pipelines;
use crate::proxy_sessions::{self, ProxySessions};
use crate::runs::{Runs, RunsConfigView};
use crate::search::Search;
use crate::volumes::{self, VolumeCatalogue, Volumes};
use crate::workspaces::{Holder, WorkspaceUsage, Workspaces};
use crate::zones::{ZoneView, Zones};

/// What stops the platform from starting.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Service(#[from] Error),
}

/// Why a disabled user's labs were stopped, as the lab records say.
pub const DISABLED_REASON: &str = "the account was disabled by an administrator";

/// A lab to launch, as the user asked for it.
#[derive(Debug, Clone)]
pub struct LaunchOrder {
    pub datalab: String,
    /// Names of the data volumes to mount; repeats are ignored.
    pub volumes: Vec<String>,
    /// A file to open, as a path inside one of those volumes.
    pub file: Option<String>,
    /// A developed datalab's version (published, `1.2.0`, or a build,
    /// `1.2.0-3`); none: the newest the user may launch. A shipped
    /// datalab has one version.
    pub version: Option<String>,
    /// The datazone to run in; none: the one holding the volumes (or
    /// `local`). See [`crate::zones::place`].
    pub zone: Option<String>,
}

/// An administrator's change of one user's quotas: `None` leaves a quota
/// as it is, `Some(None)` sets the default back.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QuotaChange {
    pub workspace_bytes: Option<Option<u64>>,
    pub labs: Option<Option<u64>>,
    /// Cores' worth of CPU.
    pub cpu: Option<Option<f64>>,
    pub memory_bytes: Option<Option<u64>>,
    pub gpus: Option<Option<u64>>,
}

/// What a user's active labs may hold at once, and hold now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ComputeUse {
    pub limits: insitu_store::LabLimits,
    /// Whether an administrator set any of the limits.
    pub set: bool,
    pub labs: usize,
    pub cpu_millis: i64,
    pub memory_bytes: i64,
    pub gpus: usize,
}

/// The platform's services; the web crate's state holds one.
pub struct Platform {
    store: Store,
    accounts: Accounts,
    datalabs: Arc<Datalabs>,
    volumes: Volumes,
    labs: Arc<Labs>,
    search: Search,
    proxy_sessions: ProxySessions,
    pipelines: Arc<Pipelines>,
    runs: Arc<Runs>,
    devlabs: Arc<Devlabs>,
    usage: Arc<crate::usage::Usage>,
    /// Seconds between samples of the platform's use.
    usage_every: u64,
    access_requests: AccessRequests,
    zones: Arc<Zones>,
}

impl Platform {
    /// Connects the store (applying migrations), creates the first
    /// administrator when there is no account yet, and loads the
    /// catalogues. Labs are not looked after until [`Platform::open_labs`].
    pub async fn build(
        config: PlatformConfig,
    ) -> Result<(Platform, Option<InitialAdmin>), SetupError> {
        config.session.validate()?;
        config.login.validate()?;
        config.access.validate()?;
        config.devlabs.validate()?;
        if config.labs.run_as_uid == 0 || config.labs.run_as_gid == 0 {
            return Err(ConfigError::LabsAsRoot.into());
        }
        config.pipelines.validate()?;
        let (usage_every, usage_retention) = config.usage.parsed()?;
        insitu_domain::datalab::parse_duration(&config.labs.start_timeout).map_err(|reason| {
            ConfigError::Duration {
                setting: "labs.start_timeout",
                reason,
            }
        })?;
        if config.database_url.is_none() {
            std::fs::create_dir_all(&config.data_dir)?;
        }
        let store = Store::connect(config.database_url().expose()).await?;
        let initial_admin = accounts::bootstrap_admin(&store, &config.admin).await?;
        let datalabs = Arc::new(Datalabs::load(&config.catalogue_dir));
        let volumes = Volumes::new(
            VolumeCatalogue::from_config(&config.volumes)?,
            store.clone(),
        );
        let accounts =
            Accounts::new(store.clone(), config.session.clone(), config.login.clone()).await?;
        std::fs::create_dir_all(&config.data_dir)?;
        let data_dir = std::fs::canonicalize(&config.data_dir)?;
        let podman = Podman::new(&config.devlabs.podman, config.devlabs.runtime.clone());
        let zones = Arc::new(zones_of(&config)?);
        let lab_view = lab_config(
            &config,
            data_dir.clone(),
            podman.clone(),
            Arc::clone(&zones),
        )?;
        let devlabs = Devlabs::new(
            store.clone(),
            DevlabsView::from_config(&config.devlabs, data_dir.clone(), config.labs.max_processes),
            podman,
            lab_view.cgroups.clone(),
            config.devlabs.concurrent_builds,
        );
        let workspaces = {
            let (store, dir, run_as, quotas) = (
                store.clone(),
                data_dir.clone(),
                (config.labs.run_as_uid, config.labs.run_as_gid),
                config.quotas.clone(),
            );
            tokio::task::spawn_blocking(move || Workspaces::new(store, &dir, run_as, &quotas))
                .await
                .map_err(Error::from)??
        };
        let labs = Labs::new(store.clone(), lab_view, workspaces);
        let proxy_sessions = ProxySessions::new(store.clone());
        devlabs.recover().await?;
        devlabs.refresh(&datalabs).await?;
        let search = {
            let (catalogue, entries) = (datalabs.catalogue(), volumes.all().to_vec());
            let dir = data_dir.clone();
            tokio::task::spawn_blocking(move || Search::open(&dir, &catalogue, &entries))
                .await
                .map_err(Error::from)?
        };
        // From here on, every change of the catalogue (a reload, a
        // developed datalab built, shared, published) reaches the index
        // before it returns.
        let follower = search.clone();
        datalabs.follow(Box::new(move |catalogue| {
            if let Err(e) = follower.sync_datalabs(catalogue) {
                tracing::error!(error = %e, "the search index could not follow the catalogue");
            }
        }));
        let pipelines = Arc::new(Pipelines::new(
            store.clone(),
            &config.pipelines.catalogue_dir,
            config.pipelines.engine.clone(),
            data_dir.join("pipelines").join("scratch"),
        ));
        let usage = Arc::new(crate::usage::Usage::new(
            store.clone(),
            Arc::clone(&labs),
            &data_dir,
            usage_retention,
        ));
        let runs = Runs::new(
            store.clone(),
            runs_config(&config, data_dir)?,
            Arc::clone(&pipelines),
            Arc::clone(&labs),
            volumes.all().iter().map(|v| v.spec.clone()).collect(),
            Arc::clone(&zones),
        );
        let store_for_access = store.clone();
        let platform = Platform {
            store,
            accounts,
            datalabs,
            volumes,
            labs,
            search,
            proxy_sessions,
            pipelines,
            runs,
            devlabs,
            usage,
            usage_every,
            access_requests: AccessRequests::new(store_for_access, config.access.clone()),
            zones,
        };
        Ok((platform, initial_admin))
    }

    /// Connects the labs to the lab proxy and to what serves their API
    /// sockets, then takes over the labs left running before a restart
    /// (and marks the others failed).
    pub async fn open_labs(
        &self,
        proxy: Arc<dyn LabProxy>,
        api: Arc<dyn crate::labs::LabApi>,
    ) -> Result<(), SetupError> {
        self.labs.set_proxy(proxy);
        // Before adoption, which makes the adopted labs' sockets again.
        self.labs.set_api(api);
        self.labs.prepare_dirs()?;
        self.labs.load_shares().await?;
        let datalabs = &self.datalabs;
        let readiness = |name: &str| {
            datalabs
                .catalogue()
                .datalab(name)
                .ok()
                .map(|d| d.launch.readiness_path.clone())
        };
        self.labs.adopt_all(&readiness).await?;
        self.runs.prepare_dirs()?;
        self.runs.adopt_all().await?;
        Ok(())
    }

    /// The pipeline catalogue.
    pub fn pipelines(&self) -> &Arc<Pipelines> {
        &self.pipelines
    }

    /// The platform's use over time (the operator's console).
    pub fn usage(&self) -> &Arc<crate::usage::Usage> {
        &self.usage
    }

    /// Pipeline runs.
    pub fn runs(&self) -> &Arc<Runs> {
        &self.runs
    }

    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// Applications for an account and the waiting list.
    pub fn access_requests(&self) -> &AccessRequests {
        &self.access_requests
    }

    pub fn datalabs(&self) -> &Arc<Datalabs> {
        &self.datalabs
    }

    /// User-developed datalabs: drafts, builds, publication.
    pub fn devlabs(&self) -> &Arc<Devlabs> {
        &self.devlabs
    }

    pub fn volumes(&self) -> &Volumes {
        &self.volumes
    }

    /// Teams and their workspaces.
    pub fn teams(&self) -> crate::teams::Teams {
        self.labs.teams()
    }

    /// Who the caller is when looking at the catalogues: their name, their
    /// role and the teams they are an accepted member of, read afresh (one
    /// query), so joining or leaving a team shows at once.
    pub async fn viewer(&self, who: &Principal) -> Result<Viewer, Error> {
        Ok(Viewer {
            teams: self.teams().member_of(&who.user_id).await?,
            ..Viewer::new(who.username.clone(), who.role)
        })
    }

    pub fn labs(&self) -> &Arc<Labs> {
        &self.labs
    }

    /// The caller's workspace and the workspaces of the teams they are an
    /// accepted member of, each with its quota and use.
    pub async fn my_workspaces(
        &self,
        who: &Principal,
    ) -> Result<(WorkspaceUsage, Vec<(Name, WorkspaceUsage)>), Error> {
        let workspaces = self.labs.workspaces();
        let mine = workspaces
            .usage(&Holder::User {
                id: who.user_id.clone(),
                username: who.username.to_string(),
            })
            .await?;
        let mut teams = Vec::new();
        for team in self.teams().member_of(&who.user_id).await? {
            let usage = workspaces.usage(&Holder::Team(team.clone())).await?;
            teams.push((team, usage));
        }
        Ok((mine, teams))
    }

    /// What a user's active labs may hold and hold now.
    pub async fn compute_quota(&self, user_id: &UserId) -> Result<ComputeUse, Error> {
        let limits = self.labs.lab_limits(user_id).await?;
        let set = self
            .store
            .compute_quota(&insitu_store::QuotaHolder::User(user_id.clone()))
            .await?;
        let active: Vec<LabRecord> = self
            .store
            .labs_of_user(user_id)
            .await?
            .into_iter()
            .filter(|l| l.state.is_active())
            .collect();
        Ok(ComputeUse {
            limits,
            set: set != insitu_store::ComputeQuota::default(),
            labs: active.len(),
            cpu_millis: active.iter().map(|l| l.cpu_millis).sum(),
            memory_bytes: active.iter().map(|l| l.memory_bytes).sum(),
            gpus: active.iter().map(|l| l.gpus.len()).sum(),
        })
    }

    /// Changes a user's quotas as an administrator: each `Some` field, to
    /// its value or (`Some(None)`) back to the default; a workspace in use
    /// grows at once where the host lets it.
    pub async fn set_user_quotas(
        &self,
        username: &str,
        change: &QuotaChange,
    ) -> Result<(WorkspaceUsage, ComputeUse), Error> {
        let missing = || Error::UserNotFound(username.to_owned());
        let name: Username = username.parse().map_err(|_| missing())?;
        let user = self
            .store
            .user_by_username(&name)
            .await?
            .ok_or_else(missing)?;
        let holder = Holder::User {
            id: user.id.clone(),
            username: user.username.to_string(),
        };
        let key = insitu_store::QuotaHolder::User(user.id.clone());
        let mut compute = self.store.compute_quota(&key).await?;
        let count = |n: u64, what: &'static str| {
            i64::try_from(n).map_err(|_| Error::InvalidComputeQuota(what))
        };
        if let Some(v) = change.labs {
            compute.labs = v.map(|n| count(n, "labs")).transpose()?;
        }
        if let Some(v) = change.cpu {
            if v.is_some_and(|c| !c.is_finite() || c <= 0.0) {
                return Err(Error::InvalidComputeQuota("cpu"));
            }
            compute.cpu_millis = v.map(crate::config::cpu_millis);
        }
        if let Some(v) = change.memory_bytes {
            compute.memory_bytes = v.map(|n| count(n, "memory_bytes")).transpose()?;
        }
        if let Some(v) = change.gpus {
            compute.gpus = v.map(|n| count(n, "gpus")).transpose()?;
        }
        let workspace = match change.workspace_bytes {
            Some(bytes) => self.labs.workspaces().set_quota(&holder, bytes).await?,
            None => self.labs.workspaces().usage(&holder).await?,
        };
        self.store
            .set_compute_quota(&key, &compute, crate::clock::now())
            .await?;
        Ok((workspace, self.compute_quota(&user.id).await?))
    }

    /// Sets a team's workspace quota (`None`: the default again), as an
    /// administrator.
    pub async fn set_team_workspace_quota(
        &self,
        team: &str,
        bytes: Option<u64>,
    ) -> Result<WorkspaceUsage, Error> {
        let missing = || Error::TeamNotFound(team.to_owned());
        let name: Name = team.parse().map_err(|_| missing())?;
        if !self.store.team_exists(&name).await? {
            return Err(missing());
        }
        self.labs
            .workspaces()
            .set_quota(&Holder::Team(name), bytes)
            .await
    }

    pub fn zones(&self) -> &Arc<Zones> {
        &self.zones
    }

    /// Every datazone with the volumes the caller may see in it and its
    /// capacity (a Slurm zone's from its nodes, asked now).
    pub async fn zone_overview(&self, caller: &Principal) -> Result<Vec<ZoneView>, Error> {
        let viewer = self.viewer(caller).await?;
        let visible: Vec<VolumeSpec> = self
            .volumes
            .visible(&viewer)
            .into_iter()
            .map(|v| v.spec.clone())
            .collect();
        Ok(self.zones.overview(&visible).await)
    }

    /// The discovery portal's index and harvester.
    pub fn search(&self) -> &Search {
        &self.search
    }

    /// Reloads the datalab catalogue from its directory; the discovery
    /// index follows before this returns.
    pub async fn reload_catalogue(&self) -> Arc<Catalogue> {
        self.datalabs.reload()
    }

    /// The lab proxy's sessions, as the platform keeps them.
    pub fn proxy_sessions(&self) -> &ProxySessions {
        &self.proxy_sessions
    }

    /// Ends every lab proxy session of a user, in every lab: at once in
    /// this process (their WebSockets close), and in the session table
    /// before it returns, so no server process honours them again, even
    /// after a restart. Every way of cutting a user off goes through it:
    /// account disabled, logout, logout everywhere, password changed.
    pub async fn revoke_proxy_sessions(&self, user_id: &UserId) -> Result<(), Error> {
        self.labs.revoke_user_sessions(user_id);
        self.proxy_sessions.remove_user(user_id).await
    }

    /// Changes an account's role or disables it (an administrator's act).
    /// Disabling cuts the user off everywhere at once: their sessions and
    /// tokens stop, their lab sessions on the proxy end (open WebSockets
    /// close) and their labs are stopped with [`DISABLED_REASON`].
    pub async fn update_user(
        &self,
        username: &str,
        role: Option<Role>,
        disabled: Option<bool>,
    ) -> Result<UserRecord, Error> {
        let user = self.accounts.update_user(username, role, disabled).await?;
        if disabled == Some(true) && user.disabled {
            // The labs are stopped even when the session table cannot be
            // cleared (stopping a lab clears its rows too); the failure is
            // still reported.
            let revoked = self.revoke_proxy_sessions(&user.id).await;
            let stopped = self.labs.stop_all_of(&user.id, DISABLED_REASON).await?;
            tracing::info!(username = %user.username, labs = stopped, "disabled account's labs stopped");
            revoked?;
        }
        Ok(user)
    }

    /// Changes the caller's password (see [`Accounts::change_password`]);
    /// their lab sessions on the proxy end too.
    pub async fn change_password(
        &self,
        username: &Username,
        current: &str,
        new: &str,
        client: IpAddr,
        revoke_tokens: bool,
    ) -> Result<(), Error> {
        let user = self
            .accounts
            .change_password(username, current, new, client, revoke_tokens)
            .await?;
        self.revoke_proxy_sessions(&user.id).await
    }

    /// Logs the caller out: the browser session they came with ends, and
    /// so do all their lab sessions on the proxy (their labs keep
    /// running; opening one again takes a new ticket from the platform).
    pub async fn log_out(&self, caller: &Principal) -> Result<(), Error> {
        if let Via::Session { id_hash, .. } = &caller.via {
            self.accounts.close_session(id_hash).await?;
        }
        self.revoke_proxy_sessions(&caller.user_id).await
    }

    /// Logs a user out everywhere: every browser session of theirs and
    /// every lab session on the proxy end. API tokens stay.
    pub async fn log_out_everywhere(&self, user_id: &UserId) -> Result<(), Error> {
        self.accounts.end_all_sessions(user_id).await?;
        self.revoke_proxy_sessions(user_id).await
    }

    /// The database's kind (`sqlite`, `postgres`) and whether it answers.
    pub async fn database_health(&self) -> (&'static str, Result<(), Error>) {
        let answer = self.store.ping().await.map_err(Error::from);
        (self.store.backend().as_str(), answer)
    }

    /// Validates a launch and starts it: the datalab must be one the
    /// caller may launch (a shipped one, or a developed one at a version
    /// they may use: see [`Devlabs::launchable`]), the volumes must be in
    /// the catalogue, and a file to open must be a file in one of those
    /// volumes (see [`volumes::resolve_launch_file`]).
    pub async fn launch(&self, caller: &Principal, order: LaunchOrder) -> Result<LabRecord, Error> {
        let viewer = self.viewer(caller).await?;
        let cat = self.datalabs.catalogue();
        let developed = if self.datalabs.is_shipped(&order.datalab) {
            None
        } else {
            self.devlabs
                .launchable(caller, &order.datalab, order.version.as_deref())
                .await?
        };
        let spec = match &developed {
            Some(spec) => spec,
            None => {
                let spec = cat.datalab(&order.datalab)?;
                if let Some(v) = order.version.as_deref().filter(|v| *v != spec.version) {
                    return Err(Error::VersionNotFound {
                        datalab: order.datalab.clone(),
                        version: v.to_owned(),
                    });
                }
                spec
            }
        };
        let mut volumes = Vec::new();
        for name in &order.volumes {
            if volumes.iter().any(|v: &VolumeSpec| v.name.as_str() == name) {
                continue;
            }
            volumes.push(self.volumes.volume_for(&viewer, name)?.spec.clone());
        }
        let file = match order.file {
            None => None,
            Some(_) if !spec.launch.opens_files() => {
                return Err(Error::OpensNoFiles {
                    datalab: spec.name.clone(),
                });
            }
            Some(file) => {
                // Only visible volumes may be named in an error.
                let (selected, all) = (volumes.clone(), self.volumes.visible(&viewer));
                let resolved = tokio::task::spawn_blocking(move || {
                    volumes::resolve_launch_file(&selected, &all, &file)
                })
                .await?;
                Some(resolved?)
            }
        };
        let zone = self.zones.place(&volumes, order.zone.as_deref())?;
        let lab = self
            .labs
            .launch(
                &caller.user_id,
                caller.username.as_str(),
                spec,
                volumes,
                file,
                &zone,
            )
            .await?;
        if developed.is_some() {
            // Its launches count in the catalogue.
            if let Err(e) = self.devlabs.refresh(&self.datalabs).await {
                tracing::warn!(error = %e, "cannot refresh the catalogue after a launch");
            }
        }
        Ok(lab)
    }

    /// Starts the platform's background work: a harvest of the data
    /// volumes into the discovery index, a sweep of stale sessions (and
    /// expired lab proxy sessions) every ten minutes, and the lab monitor
    /// every second (see [`Labs::check_running`]). It stops when the
    /// returned value is dropped (a harvest under way finishes its volume).
    /// The platform's use is sampled every `usage.sample_every`.
    pub fn maintain(&self) -> Maintenance {
        self.search.start_harvest();
        let store = self.store.clone();
        let session = self.accounts.session_config().clone();
        let proxy_sessions = self.proxy_sessions.clone();
        let sweeper = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(600));
            loop {
                tick.tick().await;
                let idle = session.idle_secs();
                match store.delete_stale_sessions(crate::clock::now(), idle).await {
                    Ok(n) if n > 0 => tracing::info!(removed = n, "stale sessions removed"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "could not remove stale sessions"),
                }
                match proxy_sessions
                    .remove_expired(proxy_sessions::now_ms())
                    .await
                {
                    Ok(n) if n > 0 => tracing::info!(removed = n, "expired lab sessions removed"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "could not remove expired lab sessions"),
                }
            }
        });
        let labs = Arc::clone(&self.labs);
        let monitor = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if let Err(e) = labs.check_running().await {
                    tracing::warn!(error = %e, "could not check running labs");
                }
            }
        });
        let runs = Arc::clone(&self.runs);
        let scheduler = tokio::spawn(runs.keep_scheduling());
        let runs = Arc::clone(&self.runs);
        let retention = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(600));
            loop {
                tick.tick().await;
                if let Err(e) = runs.sweep().await {
                    tracing::warn!(error = %e, "could not remove ended runs' intermediate files");
                }
            }
        });
        let usage = Arc::clone(&self.usage);
        let every = Duration::from_secs(self.usage_every);
        let sampler = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(e) = usage.sample().await {
                    tracing::warn!(error = %e, "could not sample the platform's use");
                }
            }
        });
        Maintenance(vec![sweeper, monitor, scheduler, retention, sampler])
    }

    /// Closes the database's connections.
    pub async fn close(&self) {
        self.store.close().await;
    }
}

/// The platform's background tasks; dropping it ends them.
pub struct Maintenance(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Maintenance {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// The runs' view of the configuration, with the data directory resolved.
fn runs_config(
    config: &PlatformConfig,
    data_dir: std::path::PathBuf,
) -> Result<RunsConfigView, ConfigError> {
    let p = &config.pipelines;
    let labs = &config.labs;
    Ok(RunsConfigView {
        // What no lab sees, no job sees either.
        hidden: config.hidden_from_labs(&data_dir),
        data_dir,
        slots: p.slots,
        max_running_per_user: p.max_running_per_user,
        max_queued_per_user: p.max_queued_per_user,
        parallel: p.parallel.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
        }),
        keep_intermediate: p.keep_intermediate()?,
        run_as: (labs.run_as_uid, labs.run_as_gid),
        tool_path: labs.tool_path.clone(),
        expose: labs.expose.clone(),
        bwrap: labs.bwrap.clone(),
        cgroups: if labs.enforce_limits {
            Cgroups::detect("insitu-runs")
        } else {
            Cgroups::Unavailable("turned off by labs.enforce_limits".into())
        },
        max_processes: labs.max_processes,
        network_per_run: labs.network == LabNetworkMode::User,
    })
}

/// The labs' view of the configuration, with the data directory resolved.
/// The configured datazones, checked, with `local`; every volume's zone
/// must be one of them.
fn zones_of(config: &PlatformConfig) -> Result<Zones, ConfigError> {
    let mut specs = Vec::new();
    for z in &config.zones {
        let spec = ZoneSpec::from_config(z.clone()).map_err(|problems| ConfigError::Zone {
            name: z.name.clone(),
            problems,
        })?;
        if specs.iter().any(|s: &ZoneSpec| s.name == spec.name) {
            return Err(ConfigError::ZoneTwice(z.name.clone()));
        }
        specs.push(spec);
    }
    let zones = Zones::new(specs);
    for v in &config.volumes {
        let zone = v.zone.as_deref().unwrap_or(insitu_domain::LOCAL_ZONE);
        if zones.get(zone).is_none() {
            return Err(ConfigError::VolumeZone {
                volume: v.name.clone(),
                zone: zone.to_owned(),
            });
        }
    }
    Ok(zones)
}

fn lab_config(
    config: &PlatformConfig,
    data_dir: std::path::PathBuf,
    podman: Podman,
    zones: Arc<Zones>,
) -> Result<LabConfigView, ConfigError> {
    let labs = &config.labs;
    if labs.max_starting == 0 {
        return Err(ConfigError::MaxStarting);
    }
    let hub = &labs.samp_hub;
    Ok(LabConfigView {
        bwrap: labs.bwrap.clone(),
        hidden: config.hidden_from_labs(&data_dir),
        data_dir,
        max_labs_per_user: labs.max_per_user,
        lab_limits: config.quotas.lab_limits(labs.max_per_user)?,
        start_timeout: Duration::from_secs(labs.start_timeout_secs()),
        tool_path: labs.tool_path.clone(),
        expose: labs.expose.clone(),
        run_as: (labs.run_as_uid, labs.run_as_gid),
        idle_timeout: labs.idle_timeout()?,
        gpus: labs.gpu_inventory(),
        cgroups: if labs.enforce_limits {
            let c = Cgroups::detect("insitu");
            tracing::info!(limits = %c.describe(), "lab resource limits");
            c
        } else {
            tracing::warn!("lab resource limits are off (labs.enforce_limits = false)");
            Cgroups::Unavailable("turned off by labs.enforce_limits".into())
        },
        max_processes: labs.max_processes,
        network_per_user: labs.network == LabNetworkMode::User,
        podman,
        network_linger: labs.network_linger()?,
        max_starting: labs.max_starting,
        samp_hub: Limits {
            memory_bytes: Some(hub.memory_bytes()?),
            cpus: (hub.cpu > 0.0).then_some(hub.cpu),
            max_pids: (hub.max_processes > 0).then_some(hub.max_processes),
        },
        zones,
    })
}
