//! Labs: launching a datalab in a sandbox, following it through its states
//! (pending → starting → running → stopping → stopped, or failed with a
//! reason), and finding labs again after a restart.
//!
//! The state is in the store, and every change of it is a compare-and-set
//! on the state its writer expects ([`Labs::transition`]), so a launch and
//! a stop (or two server processes on one database) never both win. The
//! processes are the launcher's sandboxes, each under a supervisor of its
//! own, so they outlive the platform's process. A stop accepted in any
//! state wins: the launch task checks for one at each step and ends what
//! it started. A lab is shown running only while its process is alive and
//! answers: a monitor checks every running lab each second (and records
//! the memory kills in it as lab events), and a restart re-adopts each
//! lab's process, probes it and reports it running again only once it
//! answers (`adopt`).
//!
//! A tool that takes a secret (the datalab's `launch.credential`) gets one
//! of its own at launch, in its environment only (see [`secret`]); the
//! lab's route carries it for the proxy. A lab is running only once its
//! tool answers on its port with that credential, and only if the socket
//! listening there belongs to the lab's own processes: anything else
//! listening on the port (another lab on the host's network) makes the
//! launch fail, and is never sent the secret.
//!
//! Each lab also gets a Unix socket of its own to the platform, made
//! before its tool starts and gone when it ends: its owner's way to the
//! pipelines and runs API from inside the lab (see [`api_socket`]).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use insitu_domain::{DatalabSpec, LabEventKind, LabId, LabState, UserId, VolumeSpec};
use insitu_launcher::listen::{PortHolder, port_holder};
use insitu_launcher::netns::NetNsError;
use insitu_launcher::sandbox::fill;
use insitu_launcher::{
    Cgroups, ExitStatus, LaunchError, Limits, NetNs, Placement, Podman, PrivateEnv, SandboxSpec,
    VolumeMount,
};
use insitu_store::{
    LabAdmission, LabEventRecord, LabLimits, LabRecord, LabResource, Store, StoreError,
};

use crate::clock::now;
use crate::error::Error;

mod adopt;
pub mod api_socket;
mod container;
mod desktop;
mod monitor;
pub mod secret;
pub mod share;
mod slurm;

pub use api_socket::{API_SOCKET_VARIABLE, LabApi};

/// The longest reason an operator gives for stopping a lab, in characters
/// (longer ones are cut).
pub const OPERATOR_REASON_CHARS: usize = 500;

/// An active lab as the operator's console shows it ([`Labs::operated`]).
#[derive(Debug, Clone)]
pub struct OperatedLab {
    pub lab: LabRecord,
    /// Its owner's username.
    pub owner: String,
    /// How long since its users last used it (known for labs this process
    /// serves).
    pub idle: Option<Duration>,
    /// What its control group uses now and may use (none without control
    /// groups, or for a container lab).
    pub memory_bytes: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
    pub cpu_seconds: Option<f64>,
}
pub use container::{LabProcess, container_name};
pub use secret::{SECRET_VARIABLE, ToolAccess, ToolSecret};

/// Where a lab sees its user's workspace.
pub const WORKSPACE_PATH: &str = insitu_launcher::HOME_PATH;

/// Steps of a launch, in order, shown as progress.
pub const STEPS: [&str; 5] = [
    "queued",
    "sandbox_prepared",
    "process_started",
    "waiting_for_readiness",
    "ready",
];

#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    pub step: &'static str,
    /// Milliseconds since the launch was queued.
    pub at_ms: u128,
    /// What the step is waiting for, where there is more to say (a Slurm
    /// job's reason and place in the queue).
    pub detail: Option<String>,
}

/// Why a lab did not start; its text becomes the lab's reason.
#[derive(Debug, thiserror::Error)]
pub enum StartFailure {
    #[error("cannot make the workspaces ready: {0}")]
    Workspace(Box<Error>),
    #[error("cannot lay out the lab's home in the workspace: {0}")]
    Home(std::io::Error),
    #[error("cannot mount the team workspaces: {0}")]
    TeamWorkspaces(Box<Error>),
    #[error("no free port: {0}")]
    NoPort(std::io::Error),
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error(transparent)]
    Launch(#[from] LaunchError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the tool exited ({}) before it was ready; last output: {tail}", describe(*code))]
    ExitedEarly { code: Option<i32>, tail: String },
    #[error("the tool was not ready after {secs} s{}", refused(*answered))]
    NotReady { secs: u64, answered: Option<u16> },
    #[error("the tool did not answer within {secs} s after the platform restarted{}", refused(*answered))]
    NotReadyAfterRestart { secs: u64, answered: Option<u16> },
    #[error(transparent)]
    Secret(#[from] secret::SecretFileError),
    #[error("port {0}, where the tool was to listen, is served by a process outside the lab")]
    PortTaken(u16),
    #[error("{0}")]
    Slurm(String),
    /// A stop came first; the stopper records the lab's end.
    #[error("stopped before it was running")]
    Stopped,
}

/// What a tool that refused the readiness probe wants.
fn refused(answered: Option<u16>) -> String {
    match answered {
        Some(status) => format!(
            "; it answered {status} on its readiness path: it wants a credential it was not given (see the datalab's launch.credential)"
        ),
        None => String::new(),
    }
}

/// Why a user's network namespace could not be had.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("{0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("cannot make the lab's network: {0}")]
    Make(#[from] NetNsError),
}

/// A lab id from a request: one that cannot be an id is a lab the caller
/// does not have.
pub fn lab_id(raw: &str) -> Result<LabId, Error> {
    raw.parse().map_err(|_| Error::LabNotFound(raw.to_owned()))
}

pub struct LabConfigView {
    pub bwrap: PathBuf,
    pub data_dir: PathBuf,
    pub hidden: Vec<PathBuf>,
    pub max_labs_per_user: usize,
    /// Each user's default compute quota (labs: `max_labs_per_user`).
    pub lab_limits: LabLimits,
    pub start_timeout: Duration,
    pub tool_path: Vec<PathBuf>,
    pub expose: Vec<PathBuf>,
    pub run_as: (u32, u32),
    /// Running labs with no proxied traffic for this long are stopped.
    pub idle_timeout: Option<Duration>,
    /// The datazone's GPUs, by device index.
    pub gpus: Vec<String>,
    /// Where labs' control groups go (or why there are none).
    pub cgroups: Cgroups,
    pub max_processes: u64,
    /// One network namespace per user (`true`) or the host's network.
    pub network_per_user: bool,
    /// Runs the labs of datalabs that name an image.
    pub podman: Podman,
    /// How long a user's network namespace outlives their last lab.
    pub network_linger: Duration,
    /// Labs that may be starting at once; later launches wait, queued.
    pub max_starting: usize,
    /// The limits of each user's SAMP hub.
    pub samp_hub: Limits,
    /// The datazones (this machine's and the Slurm clusters).
    pub zones: Arc<crate::zones::Zones>,
}

/// A user's network namespace, where their labs listen.
#[derive(Debug)]
pub struct UserNetwork(NetNs);

impl UserNetwork {
    /// A TCP connection to `addr` inside the namespace.
    pub async fn connect(
        &self,
        addr: std::net::SocketAddr,
    ) -> std::io::Result<tokio::net::TcpStream> {
        self.0.connect(addr, Duration::from_secs(5)).await
    }
}

/// Where a lab that has a process is served, and whose it is: what the lab
/// proxy needs to forward a request to it.
#[derive(Debug, Clone)]
pub struct LabRoute {
    /// The lab's HTTP server (plain HTTP/1.1) on loopback.
    pub upstream: std::net::SocketAddr,
    /// The namespace `upstream` is in; `None` for the host's network.
    pub network: Option<Arc<UserNetwork>>,
    /// The user who owns the lab.
    pub owner: UserId,
    /// The users the owner shares it with (see [`share`]).
    pub shared_with: Vec<UserId>,
    pub state: LabState,
    /// What the tool demands of every request, when it takes a secret.
    pub access: Option<ToolAccess>,
}

/// The lab proxy as labs use it; the web crate implements it over
/// `insitu-proxy`, which this crate must not depend on.
pub trait LabProxy: Send + Sync {
    /// A single-use link that logs user `user_id` into lab `lab_id` on the
    /// proxy's origin; the caller has checked that the lab is theirs and
    /// running.
    fn entry_link(&self, lab_id: &LabId, user_id: &UserId) -> String;
    /// Ends every proxy session of a lab, closing its WebSockets.
    fn revoke_lab(&self, lab_id: &LabId);
    /// Ends the proxy sessions of one user in one lab (a share revoked),
    /// closing their WebSockets, at once in this process.
    fn revoke_lab_user(&self, lab_id: &LabId, user_id: &UserId);
    /// Who is connected to a lab through the proxy, in this process.
    fn connected(&self, lab_id: &LabId) -> Vec<share::Connection>;
    /// Ends every proxy session of a user, in every lab, closing their
    /// WebSockets (at once in this process; the session table follows).
    /// The platform calls it through
    /// [`crate::platform::Platform::revoke_proxy_sessions`], which also
    /// clears the table before it returns.
    fn revoke_user(&self, user_id: &UserId);
}

pub struct Labs {
    store: Store,
    cfg: LabConfigView,
    /// The users' and teams' workspaces, mounted before a lab uses them.
    workspaces: Arc<crate::workspaces::Workspaces>,
    procs: Mutex<HashMap<LabId, LabProcess>>,
    progress: Mutex<HashMap<LabId, (std::time::Instant, Vec<Step>)>>,
    /// Last proxied request or WebSocket frame, per lab.
    activity: Mutex<HashMap<LabId, std::time::Instant>>,
    /// Held while GPUs are counted and assigned, so two launches never get
    /// the same device.
    gpu_lock: tokio::sync::Mutex<()>,
    /// Where the proxy finds each lab that has a process: address, owner,
    /// state. Labs not in it are stopped as far as the proxy knows.
    routes: std::sync::RwLock<HashMap<LabId, LabRoute>>,
    /// The proxy, to end its sessions when a lab stops.
    proxy: std::sync::OnceLock<Arc<dyn LabProxy>>,
    /// What serves each lab's API socket (see [`api_socket`]).
    api: std::sync::OnceLock<Arc<dyn LabApi>>,
    /// The labs whose socket this process serves.
    api_served: Mutex<HashSet<LabId>>,
    /// Each user's network namespace while they have labs, by user id.
    networks: Mutex<HashMap<UserId, Arc<UserNetwork>>>,
    /// Held while a user's namespace is made or deleted.
    network_lock: tokio::sync::Mutex<()>,
    /// Users whose last lab ended, and since when: their namespace is
    /// deleted after `labs.network_linger`, unless a new lab uses it first.
    network_idle: Mutex<HashMap<UserId, std::time::Instant>>,
    /// One SAMP hub per user with active labs (see `desktop`).
    samp: desktop::SampHubs,
    /// Launches (and re-adopted labs waiting to answer) in flight in this
    /// process, so that a stop reaches them.
    launches: Mutex<HashMap<LabId, Arc<Launch>>>,
    /// One permit per lab that may be starting at once.
    start_slots: tokio::sync::Semaphore,
    /// When each lab's activity was last written to the store.
    activity_saved: Mutex<HashMap<LabId, std::time::Instant>>,
    /// The users and teams each lab is shared with, as the store has
    /// them, and those teams' members (shared with the team service, which
    /// tells it of membership changes).
    shares: Arc<share::ShareTable>,
    /// Labs a stop in this process is ending.
    stopping: Mutex<HashSet<LabId>>,
}

/// A launch in flight: how a stop reaches it, and how the stopper learns
/// that it has let go of the lab.
struct Launch {
    /// Set once the lab is to stop.
    stop: tokio::sync::watch::Sender<bool>,
    /// Set once the launch has ended (its process handed over, or ended).
    done: tokio::sync::watch::Sender<bool>,
}

/// What a launch task holds of its [`Launch`]; dropped, it says the launch
/// is done and forgets it.
struct LaunchTicket {
    labs: Arc<Labs>,
    id: LabId,
    launch: Arc<Launch>,
    stop: tokio::sync::watch::Receiver<bool>,
}

impl Drop for LaunchTicket {
    fn drop(&mut self) {
        self.launch.done.send_replace(true);
        if let Ok(mut l) = self.labs.launches.lock()
            && l.get(&self.id)
                .is_some_and(|x| Arc::ptr_eq(x, &self.launch))
        {
            l.remove(&self.id);
        }
    }
}

impl Labs {
    pub fn new(
        store: Store,
        cfg: LabConfigView,
        workspaces: Arc<crate::workspaces::Workspaces>,
    ) -> Arc<Labs> {
        let shares = Arc::new(share::ShareTable::new(store.clone()));
        Arc::new(Labs {
            store,
            workspaces,
            procs: Mutex::new(HashMap::new()),
            progress: Mutex::new(HashMap::new()),
            activity: Mutex::new(HashMap::new()),
            gpu_lock: tokio::sync::Mutex::new(()),
            routes: std::sync::RwLock::new(HashMap::new()),
            proxy: std::sync::OnceLock::new(),
            api: std::sync::OnceLock::new(),
            api_served: Mutex::new(HashSet::new()),
            networks: Mutex::new(HashMap::new()),
            network_lock: tokio::sync::Mutex::new(()),
            network_idle: Mutex::new(HashMap::new()),
            samp: desktop::SampHubs::new(
                cfg.data_dir.join("samp"),
                match cfg.cgroups {
                    Cgroups::V1 { .. } | Cgroups::V2 { .. } => Some(cfg.cgroups.clone()),
                    Cgroups::Unavailable(_) => None,
                },
                cfg.samp_hub,
            ),
            launches: Mutex::new(HashMap::new()),
            start_slots: tokio::sync::Semaphore::new(cfg.max_starting.max(1)),
            activity_saved: Mutex::new(HashMap::new()),
            shares,
            stopping: Mutex::new(HashSet::new()),
            cfg,
        })
    }

    /// The name of a user's network namespace.
    fn network_name(user_id: &UserId) -> String {
        format!("insitu-{}", user_id.as_str().replace('-', ""))
    }

    /// The user's network namespace, made when missing; `None` when labs
    /// share the host's network.
    async fn network_of(&self, user_id: &UserId) -> Result<Option<Arc<UserNetwork>>, NetworkError> {
        if !self.cfg.network_per_user {
            return Ok(None);
        }
        if let Ok(mut idle) = self.network_idle.lock() {
            idle.remove(user_id);
        }
        if let Some(n) = self
            .networks
            .lock()
            .ok()
            .and_then(|m| m.get(user_id).cloned())
        {
            return Ok(Some(n));
        }
        let _guard = self.network_lock.lock().await;
        let name = Self::network_name(user_id);
        let ns = tokio::task::spawn_blocking(move || NetNs::ensure(&name)).await??;
        let net = Arc::new(UserNetwork(ns));
        if let Ok(mut m) = self.networks.lock() {
            m.insert(user_id.clone(), Arc::clone(&net));
        }
        Ok(Some(net))
    }

    /// Notes that a user's lab ended: once none of their labs is active,
    /// their namespace goes after `labs.network_linger` (a relaunch soon
    /// after reuses it instead of making a new one).
    async fn release_network(&self, user_id: &UserId) {
        if !self.cfg.network_per_user {
            return;
        }
        if let Ok(mut idle) = self.network_idle.lock() {
            idle.insert(user_id.clone(), std::time::Instant::now());
        }
    }

    /// Deletes the namespaces that have lingered long enough.
    async fn sweep_networks(&self) {
        let due: Vec<UserId> = self
            .network_idle
            .lock()
            .map(|idle| {
                idle.iter()
                    .filter(|(_, since)| since.elapsed() >= self.cfg.network_linger)
                    .map(|(u, _)| u.clone())
                    .collect()
            })
            .unwrap_or_default();
        for user in due {
            if let Ok(mut idle) = self.network_idle.lock() {
                idle.remove(&user);
            }
            self.delete_network(&user).await;
        }
    }

    /// Deletes a user's network namespace if none of their labs is active.
    async fn delete_network(&self, user_id: &UserId) {
        if !self.cfg.network_per_user {
            return;
        }
        let _guard = self.network_lock.lock().await;
        match self.store.labs_of_user(user_id).await {
            Ok(labs) if labs.iter().all(|l| !l.state.is_active()) => {}
            _ => return,
        }
        if let Ok(mut m) = self.networks.lock() {
            m.remove(user_id);
        }
        let name = Self::network_name(user_id);
        match tokio::task::spawn_blocking(move || NetNs::delete(&name)).await {
            Ok(Err(e)) => tracing::warn!(error = %e, "could not delete a user's network"),
            Err(e) => tracing::warn!(error = %e, "could not delete a user's network"),
            Ok(Ok(())) => {}
        }
    }

    pub fn set_proxy(&self, proxy: Arc<dyn LabProxy>) {
        self.shares.set_proxy(Arc::clone(&proxy));
        let _ = self.proxy.set(proxy);
    }

    /// A single-use link into a running lab of the user's (see
    /// [`LabProxy::entry_link`]).
    pub fn entry_link(&self, lab_id: &LabId, user_id: &UserId) -> Result<String, Error> {
        let proxy = self.proxy.get().ok_or(Error::NoLabProxy)?;
        Ok(proxy.entry_link(lab_id, user_id))
    }

    /// Ends every proxy session of a user (see [`LabProxy::revoke_user`]).
    pub fn revoke_user_sessions(&self, user_id: &UserId) {
        if let Some(p) = self.proxy.get() {
            p.revoke_user(user_id);
        }
    }

    /// Where a lab's secret is kept (see [`secret`]).
    fn secret_path(&self, lab_id: &LabId) -> PathBuf {
        self.cfg
            .data_dir
            .join("labs")
            .join(lab_id.as_str())
            .join("secret")
    }

    fn set_route(&self, lab: &LabRecord, state: LabState, network: Option<Arc<UserNetwork>>) {
        let Some(port) = lab.port.and_then(|p| u16::try_from(p).ok()) else {
            return;
        };
        // Made again for a lab adopted or taken over by this process.
        self.open_api(&lab.id, &lab.user_id);
        // The credential the tool was started with, kept beside the lab.
        let access = ToolAccess::load(&self.secret_path(&lab.id)).unwrap_or_else(|e| {
            tracing::warn!(lab = %lab.id, error = %e, "the lab's tool will refuse the proxy");
            None
        });
        // A lab on a cluster's node is reached at the node's address.
        let host = lab
            .host
            .as_deref()
            .and_then(|h| h.parse::<std::net::IpAddr>().ok())
            .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
        if let Ok(mut r) = self.routes.write() {
            let upstream = std::net::SocketAddr::from((host, port));
            r.insert(
                lab.id.clone(),
                LabRoute {
                    upstream,
                    network,
                    owner: lab.user_id.clone(),
                    // Filled in from `shares` when the route is read.
                    shared_with: Vec::new(),
                    state,
                    access,
                },
            );
        }
    }

    fn has_route(&self, lab_id: &LabId) -> bool {
        self.routes.read().is_ok_and(|r| r.contains_key(lab_id))
    }

    /// Whether a stop in this process is ending the lab.
    fn stopping_here(&self, lab_id: &LabId) -> bool {
        self.stopping.lock().is_ok_and(|s| s.contains(lab_id))
    }

    /// Forgets a lab's route and ends its proxy sessions (open WebSockets
    /// close at once).
    fn drop_route(&self, lab_id: &LabId) {
        if let Ok(mut r) = self.routes.write() {
            r.remove(lab_id);
        }
        // Its owner's way to the platform closes with it.
        self.close_api(lab_id);
        // The tool is gone or going: its secret opens nothing any more.
        match std::fs::remove_file(self.secret_path(lab_id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!(lab = %lab_id, error = %e, "cannot remove the lab's secret");
            }
            _ => {}
        }
        if let Some(p) = self.proxy.get() {
            p.revoke_lab(lab_id);
        }
    }

    /// Notes traffic for a lab (called by the proxy); idle culling counts
    /// from the last one.
    pub fn record_activity(&self, lab_id: &LabId) {
        if let Ok(mut a) = self.activity.lock() {
            a.insert(lab_id.clone(), std::time::Instant::now());
        }
    }

    fn idle_for(&self, lab_id: &LabId) -> Option<Duration> {
        self.activity
            .lock()
            .ok()?
            .get(lab_id)
            .map(std::time::Instant::elapsed)
    }

    pub fn progress(&self, lab_id: &LabId) -> Vec<Step> {
        self.progress
            .lock()
            .ok()
            .and_then(|p| p.get(lab_id).map(|(_, steps)| steps.clone()))
            .unwrap_or_default()
    }

    fn step(&self, lab_id: &LabId, step: &'static str) {
        if let Ok(mut p) = self.progress.lock() {
            let (started, list) = p
                .entry(lab_id.clone())
                .or_insert_with(|| (std::time::Instant::now(), Vec::new()));
            list.push(Step {
                step,
                at_ms: started.elapsed().as_millis(),
                detail: None,
            });
        }
    }

    /// Says what the launch's latest step waits for.
    fn note(&self, lab_id: &LabId, detail: String) {
        if let Ok(mut p) = self.progress.lock()
            && let Some(last) = p.get_mut(lab_id).and_then(|(_, l)| l.last_mut())
        {
            last.detail = Some(detail);
        }
    }

    /// The configured paths plus each tool path's parent (a virtualenv).
    fn exposed(&self) -> Vec<PathBuf> {
        let mut v = self.cfg.expose.clone();
        for t in &self.cfg.tool_path {
            let root = if t.ends_with("bin") {
                t.parent().unwrap_or(t)
            } else {
                t
            };
            if !v.iter().any(|e| root.starts_with(e)) {
                v.push(root.to_path_buf());
            }
        }
        v
    }

    fn path_var(&self) -> String {
        let mut parts: Vec<String> = self
            .cfg
            .tool_path
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        parts.extend(["/usr/local/bin", "/usr/bin", "/bin"].map(str::to_owned));
        parts.join(":")
    }

    /// Lets the lab user traverse (not list) the data directory down to the
    /// workspaces and team workspaces, which sandboxes bind from there.
    pub fn prepare_dirs(&self) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let workspaces = self.cfg.data_dir.join("workspaces");
        let teams = self.cfg.data_dir.join("teams");
        std::fs::create_dir_all(&workspaces)?;
        std::fs::create_dir_all(&teams)?;
        for dir in [&self.cfg.data_dir, &workspaces, &teams] {
            let mode = std::fs::metadata(dir)?.permissions().mode();
            if mode & 0o001 == 0 {
                std::fs::set_permissions(
                    dir,
                    std::fs::Permissions::from_mode((mode & 0o7777) | 0o001),
                )?;
            }
        }
        Ok(())
    }

    /// The teams, as far as labs need them: their workspaces.
    pub fn teams(&self) -> crate::teams::Teams {
        crate::teams::Teams::new(
            self.store.clone(),
            &self.cfg.data_dir,
            self.cfg.run_as,
            Arc::clone(&self.shares),
        )
    }

    /// What the user's active labs may hold at once: the defaults, or
    /// what an administrator set for them.
    pub async fn lab_limits(&self, user_id: &UserId) -> Result<LabLimits, Error> {
        let set = self
            .store
            .compute_quota(&insitu_store::QuotaHolder::User(user_id.clone()))
            .await?;
        let d = self.cfg.lab_limits;
        Ok(LabLimits {
            labs: set
                .labs
                .map_or(d.labs, |n| usize::try_from(n).unwrap_or(usize::MAX)),
            cpu_millis: set.cpu_millis.or(d.cpu_millis),
            memory_bytes: set.memory_bytes.or(d.memory_bytes),
            gpus: set.gpus.or(d.gpus),
        })
    }

    /// The users' and teams' workspaces and their quotas.
    pub fn workspaces(&self) -> &Arc<crate::workspaces::Workspaces> {
        &self.workspaces
    }

    /// Makes a user's workspace and their teams' ready for a lab or a run
    /// of theirs (mounted from their images where the host can; see
    /// [`crate::workspaces`]).
    pub async fn ready_workspaces(
        &self,
        user_id: &UserId,
        username: &str,
        teams: &[insitu_launcher::TeamWorkspace],
    ) -> Result<PathBuf, Error> {
        use crate::workspaces::Holder;
        let dir = self
            .workspaces
            .ready(&Holder::User {
                id: user_id.clone(),
                username: username.to_owned(),
            })
            .await?;
        for t in teams {
            let name: insitu_domain::Name = t
                .name
                .parse()
                .map_err(|_| Error::TeamNotFound(t.name.clone()))?;
            self.workspaces.ready(&Holder::Team(name)).await?;
        }
        Ok(dir)
    }

    pub fn workspace_of(&self, username: &str) -> PathBuf {
        self.cfg.data_dir.join("workspaces").join(username)
    }

    pub fn log_path(&self, lab_id: &LabId) -> PathBuf {
        self.cfg
            .data_dir
            .join("labs")
            .join(lab_id.as_str())
            .join("lab.log")
    }

    /// Records a new lab and starts it in the background; `file`, checked
    /// by the caller, is the file to open (a path in the lab).
    pub async fn launch(
        self: &Arc<Self>,
        user_id: &UserId,
        username: &str,
        spec: &DatalabSpec,
        volumes: Vec<VolumeSpec>,
        file: Option<String>,
        zone: &insitu_domain::ZoneSpec,
    ) -> Result<LabRecord, Error> {
        self.check_desktop(spec)?;
        check_zone(spec, zone)?;
        let _gpu_guard = self.gpu_lock.lock().await;
        // A Slurm zone's GPUs are Slurm's to count and give (GRES).
        let gpus = match zone.kind {
            insitu_domain::ZoneKind::Local => self.assign_gpus(spec).await?,
            insitu_domain::ZoneKind::Slurm => Vec::new(),
        };
        let lab = LabRecord {
            id: LabId::from_random(rand::random()),
            user_id: user_id.clone(),
            datalab: spec.name.to_string(),
            volumes: volumes.iter().map(|v| v.name.to_string()).collect(),
            gpus,
            file,
            state: LabState::Pending,
            reason: None,
            port: None,
            pid: None,
            pid_start: None,
            created_at: now(),
            started_at: None,
            stopped_at: None,
            cpu_millis: crate::config::cpu_millis(spec.resources.cpu),
            memory_bytes: i64::try_from(spec.resources.memory_bytes).unwrap_or(i64::MAX),
            zone: zone.name.clone(),
            job: None,
            host: None,
        };
        // Counted and recorded at once, so parallel launches cannot pass
        // the user's quotas.
        let limits = self.lab_limits(user_id).await?;
        match self.store.create_lab_within(&lab, &limits).await? {
            LabAdmission::Created => {}
            LabAdmission::OverLimit { active } => {
                return Err(Error::LabQuotaExceeded {
                    active,
                    limit: limits.labs,
                });
            }
            LabAdmission::OverQuota { what, used } => {
                let (wanted, limit) = match what {
                    LabResource::CpuMillis => (lab.cpu_millis, limits.cpu_millis),
                    LabResource::MemoryBytes => (lab.memory_bytes, limits.memory_bytes),
                    LabResource::Gpus => (
                        i64::try_from(lab.gpus.len()).unwrap_or(i64::MAX),
                        limits.gpus,
                    ),
                };
                return Err(Error::ResourceQuotaExceeded {
                    what,
                    used,
                    wanted,
                    limit: limit.unwrap_or(0),
                });
            }
        }
        self.step(&lab.id, "queued");
        let ticket = self.register_launch(&lab.id);
        let me = Arc::clone(self);
        let (spec, username, record) = (spec.clone(), username.to_owned(), lab.clone());
        tokio::spawn(async move { me.run(record, spec, username, volumes, ticket).await });
        Ok(lab)
    }

    /// Picks free GPUs for a datalab that asks for some: the inventory less
    /// those held by active labs.
    async fn assign_gpus(&self, spec: &DatalabSpec) -> Result<Vec<String>, Error> {
        let wanted = usize::try_from(spec.resources.gpu).unwrap_or(usize::MAX);
        if wanted == 0 {
            return Ok(Vec::new());
        }
        let held: Vec<String> = self
            .store
            .labs_in_states(&LabState::ACTIVE)
            .await?
            .into_iter()
            .flat_map(|l| l.gpus)
            .collect();
        let free: Vec<String> = self
            .cfg
            .gpus
            .iter()
            .filter(|g| !held.contains(g))
            .cloned()
            .collect();
        if free.len() < wanted {
            return Err(Error::GpuUnavailable {
                datalab: spec.name.clone(),
                wanted,
                total: self.cfg.gpus.len(),
                free: free.len(),
            });
        }
        Ok(free.into_iter().take(wanted).collect())
    }

    /// Notes a launch in flight, before its task starts, so that a stop
    /// that comes at once already reaches it.
    fn register_launch(self: &Arc<Self>, id: &LabId) -> LaunchTicket {
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let (done, _) = tokio::sync::watch::channel(false);
        let launch = Arc::new(Launch { stop, done });
        if let Ok(mut l) = self.launches.lock() {
            l.insert(id.clone(), Arc::clone(&launch));
        }
        LaunchTicket {
            labs: Arc::clone(self),
            id: id.clone(),
            launch,
            stop: stop_rx,
        }
    }

    fn launch_of(&self, id: &LabId) -> Option<Arc<Launch>> {
        self.launches.lock().ok()?.get(id).cloned()
    }

    async fn run(
        self: Arc<Self>,
        mut lab: LabRecord,
        spec: DatalabSpec,
        username: String,
        volumes: Vec<VolumeSpec>,
        mut ticket: LaunchTicket,
    ) {
        let started = self
            .start(&mut lab, &spec, &username, volumes, &mut ticket.stop)
            .await;
        match started {
            Ok(()) => {}
            Err(StartFailure::Stopped) => self.let_go(&mut lab, &ticket).await,
            Err(failure) => {
                let reason = self
                    .tool_memory_kill(&lab)
                    .await
                    .unwrap_or_else(|| failure.to_string());
                self.end_process(&lab, Duration::from_millis(500)).await;
                match self
                    .end(
                        &mut lab,
                        &[LabState::Pending, LabState::Starting],
                        LabState::Failed,
                        reason,
                    )
                    .await
                {
                    Ok(true) => {
                        tracing::warn!(lab = %lab.id, reason = ?lab.reason, "lab failed to start");
                    }
                    // A stop came first.
                    Ok(false) => self.let_go(&mut lab, &ticket).await,
                    Err(e) => {
                        tracing::error!(lab = %lab.id, error = %e, "could not record a failed lab");
                    }
                }
            }
        }
    }

    /// A launch (or a re-adopted lab's wait) that a stop overtook: what it
    /// started goes. The stopper records the end; when the stop came from
    /// another server process, the lab is recorded stopped here, once.
    async fn let_go(&self, lab: &mut LabRecord, ticket: &LaunchTicket) {
        // Its process was recorded once it was starting.
        let was = if lab.pid.is_some() {
            LabState::Starting
        } else {
            LabState::Pending
        };
        self.end_process(lab, Duration::from_secs(2)).await;
        if *ticket.stop.borrow() {
            return;
        }
        if let Ok(Some(now)) = self.store.lab(&lab.id).await {
            *lab = now;
        }
        if lab.state == LabState::Stopping {
            let reason = stop_reason("stopped by the user", was, &self.progress(&lab.id));
            if let Err(e) = self
                .end(lab, &[LabState::Stopping], LabState::Stopped, reason)
                .await
            {
                tracing::warn!(lab = %lab.id, error = %e, "could not record a stopped lab");
            }
        }
        tracing::info!(lab = %lab.id, "launch stopped before the lab was running");
    }

    async fn start(
        &self,
        lab: &mut LabRecord,
        spec: &DatalabSpec,
        username: &str,
        volumes: Vec<VolumeSpec>,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), StartFailure> {
        // A lab of a Slurm zone waits in Slurm's queue, not in ours.
        if let Some(cluster) = self.cfg.zones.cluster(lab.zone.as_str()) {
            return self
                .start_on_slurm(lab, spec, username, volumes, cluster, stop)
                .await;
        }
        // Queued while as many labs as allowed are starting.
        let _slot = tokio::select! {
            slot = self.start_slots.acquire() => slot.ok(),
            () = stop_requested(stop) => return Err(StartFailure::Stopped),
        };
        self.checkpoint(lab, stop).await?;
        let (workspace, team_workspaces) = self.prepare_home(lab, username).await?;
        let port = free_port().map_err(StartFailure::NoPort)?;
        let base_url = format!("/labs/{}/", lab.id);
        let access = ToolAccess::generate(spec.launch.credential);
        if let Some(access) = &access {
            access.save(&self.secret_path(&lab.id))?;
        }
        let (mut env, private_env) = self.launch_env(spec, lab, port, &base_url, username, &access);
        // The lab's socket to the platform, made before the tool starts.
        let api_socket_dir = self.open_api(&lab.id, &lab.user_id).then(|| {
            env.push((
                API_SOCKET_VARIABLE.to_owned(),
                api_socket::api_socket_path(),
            ));
            self.api_dir(&lab.id)
        });
        let mut sandbox = SandboxSpec {
            command: launch_command(spec, port, &base_url, username, lab.file.as_deref()),
            env,
            private_env,
            workspace,
            volumes: volume_mounts(&volumes),
            team_workspaces,
            hidden: self.cfg.hidden.clone(),
            devices: gpu_devices(&lab.gpus),
            expose: self.exposed(),
            // The user's namespace, or the host's network: never one of
            // bubblewrap's own, which the proxy could not reach.
            share_network: true,
            run_as: Some(self.cfg.run_as),
            keep_caps: Vec::new(),
            // Bound to the launcher's supervisor, which outlives the platform.
            die_with_parent: true,
            api_socket_dir,
        };
        let network = self.network_of(&lab.user_id).await?;
        let netns = network.as_deref().map(|n| &n.0);
        self.prepare_desktop(&mut sandbox, spec, &lab.user_id, port, &base_url, netns)
            .await;
        self.start_prepared(lab, spec, sandbox, port, &base_url, network, stop)
            .await
    }

    /// The user's workspace made ready as the lab's home, and the team
    /// workspaces to mount beside it.
    async fn prepare_home(
        &self,
        lab: &LabRecord,
        username: &str,
    ) -> Result<(PathBuf, Vec<insitu_launcher::TeamWorkspace>), StartFailure> {
        // The teams the user is a member of now, at this launch.
        let team_workspaces = self
            .teams()
            .workspaces_of(&lab.user_id)
            .await
            .map_err(|e| StartFailure::TeamWorkspaces(Box::new(e)))?;
        // Mounted from their images (sized to their quotas) where the
        // host can; a full workspace still launches, to clean up.
        let workspace = self
            .ready_workspaces(&lab.user_id, username, &team_workspaces)
            .await
            .map_err(|e| StartFailure::Workspace(Box::new(e)))?;
        let (uid, gid) = self.cfg.run_as;
        let prepared =
            insitu_launcher::home::prepare(&workspace, (uid, gid)).map_err(StartFailure::Home)?;
        if !prepared.moved.is_empty() {
            tracing::info!(
                lab = %lab.id,
                moved = ?prepared.moved,
                "workspace laid out as the lab's home: its files moved into my_workspace"
            );
        }
        Ok((workspace, team_workspaces))
    }

    /// Starts a prepared sandbox on this machine and waits for its tool.
    #[allow(clippy::too_many_arguments)]
    async fn start_prepared(
        &self,
        lab: &mut LabRecord,
        spec: &DatalabSpec,
        sandbox: SandboxSpec,
        port: u16,
        base_url: &str,
        network: Option<Arc<UserNetwork>>,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), StartFailure> {
        let netns = network.as_deref().map(|n| &n.0);
        self.step(&lab.id, "sandbox_prepared");
        self.checkpoint(lab, stop).await?;
        let log = self.log_path(&lab.id);
        let placement = Placement {
            cgroup: self
                .cgroups()
                .map(|c| (c, lab.id.as_str(), self.limits_for(spec))),
            netns,
        };
        let image = spec.launch.image.as_deref();
        let process = self
            .start_process(&lab.id, &sandbox, image, &log, placement)
            .await?;
        // The tool runs from here on; recording it below does not hold it up.
        self.step(&lab.id, "process_started");
        lab.port = Some(i64::from(port));
        lab.pid = Some(i64::from(process.pid()));
        lab.pid_start = i64::try_from(process.start_ticks()).ok();
        if let Ok(mut procs) = self.procs.lock() {
            procs.insert(lab.id.clone(), process);
        }
        // A stop that came while the sandbox started finds the lab no
        // longer pending; its process then goes (see `run`).
        if !self
            .transition(lab, &[LabState::Pending], LabState::Starting)
            .await?
        {
            return Err(StartFailure::Stopped);
        }
        self.set_route(lab, LabState::Starting, network.clone());
        self.step(&lab.id, "waiting_for_readiness");
        let path = format!(
            "{}{}",
            base_url.trim_end_matches('/'),
            spec.launch.readiness_path
        );
        let deadline = tokio::time::Instant::now() + self.cfg.start_timeout;
        self.wait_ready(lab, &path, network.as_deref(), deadline, stop)
            .await
            .map_err(|e| match e {
                Waited::Stopped => StartFailure::Stopped,
                Waited::Exited(code) => StartFailure::ExitedEarly {
                    code,
                    tail: self.read_log_tail(&lab.id, 5).join(" | "),
                },
                Waited::TimedOut { answered } => StartFailure::NotReady {
                    secs: self.cfg.start_timeout.as_secs(),
                    answered,
                },
                Waited::PortTaken(port) => StartFailure::PortTaken(port),
            })?;
        self.mark_running(lab, network).await?;
        tracing::info!(lab = %lab.id, datalab = %lab.datalab, "lab running");
        Ok(())
    }

    /// A started lab's tool answers: running from now (unless a stop won
    /// the race), routed by the proxy, its activity counted from now.
    async fn mark_running(
        &self,
        lab: &mut LabRecord,
        network: Option<Arc<UserNetwork>>,
    ) -> Result<(), StartFailure> {
        self.record_activity(&lab.id);
        if !self
            .transition(lab, &[LabState::Starting], LabState::Running)
            .await?
        {
            return Err(StartFailure::Stopped);
        }
        self.set_route(lab, LabState::Running, network);
        self.step(&lab.id, "ready");
        Ok(())
    }

    /// The tool's environment: what every lab gets and the datalab's
    /// `launch.env`, and, private (on no command line), the lab's secret as
    /// [`SECRET_VARIABLE`] and in the values holding `{secret}`.
    fn launch_env(
        &self,
        spec: &DatalabSpec,
        lab: &LabRecord,
        port: u16,
        base_url: &str,
        username: &str,
        access: &Option<ToolAccess>,
    ) -> (Vec<(String, String)>, PrivateEnv) {
        let placeholder = format!("{{{}}}", insitu_domain::datalab::SECRET_PLACEHOLDER);
        let mut env = vec![("PATH".to_owned(), self.path_var())];
        if !lab.gpus.is_empty() {
            env.push(("CUDA_VISIBLE_DEVICES".to_owned(), lab.gpus.join(",")));
        }
        let mut private = PrivateEnv::default();
        for (name, value) in &spec.launch.env {
            let value = fill(value, port, base_url, username);
            match access {
                Some(a) if value.contains(&placeholder) => {
                    private.set(name, value.replace(&placeholder, a.secret.expose()));
                }
                _ => env.push((name.clone(), value)),
            }
        }
        if let Some(a) = access {
            private.set(SECRET_VARIABLE, a.secret.expose());
        }
        (env, private)
    }

    /// Returns [`StartFailure::Stopped`] once the lab is to stop: told so
    /// in this process, or found stopping in the store (a stop from
    /// another server process).
    async fn checkpoint(
        &self,
        lab: &LabRecord,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), StartFailure> {
        if *stop.borrow() || self.stopped_elsewhere(lab).await {
            return Err(StartFailure::Stopped);
        }
        Ok(())
    }

    /// Whether the store no longer has the lab in the state this process
    /// left it in.
    async fn stopped_elsewhere(&self, lab: &LabRecord) -> bool {
        match self.store.lab(&lab.id).await {
            Ok(Some(now)) => now.state != lab.state,
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// Waits until the lab's tool answers a probe on `path` with the lab's
    /// credential, its process ends, the deadline passes, something outside
    /// the lab serves its port, or a stop comes.
    async fn wait_ready(
        &self,
        lab: &LabRecord,
        path: &str,
        network: Option<&UserNetwork>,
        deadline: tokio::time::Instant,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), Waited> {
        let (Some(port), Some(sandbox)) = (
            lab.port.and_then(|p| u16::try_from(p).ok()),
            lab.pid.and_then(|p| u32::try_from(p).ok()),
        ) else {
            return Err(Waited::Exited(None));
        };
        let access = ToolAccess::load(&self.secret_path(&lab.id)).ok().flatten();
        let authorization = access.as_ref().and_then(ToolAccess::authorization);
        let mut answered = None;
        let mut store_checked = tokio::time::Instant::now();
        loop {
            if *stop.borrow() {
                return Err(Waited::Stopped);
            }
            if let Some(code) = self.exited(&lab.id) {
                return Err(Waited::Exited(code));
            }
            let holder = tokio::task::spawn_blocking(move || port_holder(sandbox, port))
                .await
                .unwrap_or(PortHolder::Outsider);
            match answers(holder, port, path, network, authorization.as_deref()).await {
                Ok(Probe::Ready) => return Ok(()),
                Ok(Probe::Refused(status)) => answered = Some(status),
                Ok(Probe::NoAnswer) => {}
                Err(taken) => return Err(taken),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Waited::TimedOut { answered });
            }
            // Another server process may have stopped it.
            if store_checked.elapsed() >= Duration::from_secs(1) {
                store_checked = tokio::time::Instant::now();
                if self.stopped_elsewhere(lab).await {
                    return Err(Waited::Stopped);
                }
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
                () = stop_requested(stop) => return Err(Waited::Stopped),
            }
        }
    }

    /// Moves a lab to a state and records it, if its stored state is one of
    /// `from` (compare and set): the one place a lab's state changes (to
    /// stopped or failed through [`Labs::end`]). Returns whether it
    /// moved; when not, `lab` is what the store holds now. Entering running
    /// the first time stamps when it started.
    async fn transition(
        &self,
        lab: &mut LabRecord,
        from: &[LabState],
        to: LabState,
    ) -> Result<bool, StoreError> {
        let mut next = lab.clone();
        next.state = to;
        if to == LabState::Running && next.started_at.is_none() {
            next.started_at = Some(now());
        }
        if self.store.update_lab_if(&next, from).await? {
            *lab = next;
            return Ok(true);
        }
        if let Some(now) = self.store.lab(&lab.id).await? {
            *lab = now;
        }
        Ok(false)
    }

    /// Ends a stopping lab as stopped by its user (a stop this or an
    /// earlier process accepted).
    async fn end_stopping(&self, lab: &mut LabRecord) -> Result<bool, StoreError> {
        self.end(
            lab,
            &[LabState::Stopping],
            LabState::Stopped,
            "stopped by the user".to_owned(),
        )
        .await
    }

    /// Ends a lab, stopped or failed, with the reason its user reads, if it
    /// is in one of the states `from`; lets its user's network go when it
    /// was their last lab (even when the record could not be written).
    async fn end(
        &self,
        lab: &mut LabRecord,
        from: &[LabState],
        to: LabState,
        reason: String,
    ) -> Result<bool, StoreError> {
        let mut next = lab.clone();
        next.reason = Some(reason);
        next.stopped_at = Some(now());
        let recorded = self.transition(&mut next, from, to).await;
        *lab = next;
        if !matches!(recorded, Ok(false)) {
            self.release_network(&lab.user_id).await;
        }
        recorded
    }

    /// The limits a datalab's `[resources]` ask for, where they are
    /// enforced.
    fn limits_for(&self, spec: &DatalabSpec) -> Limits {
        Limits {
            memory_bytes: (spec.resources.memory_bytes > 0).then_some(spec.resources.memory_bytes),
            cpus: (spec.resources.cpu > 0.0).then_some(spec.resources.cpu),
            max_pids: (self.cfg.max_processes > 0).then_some(self.cfg.max_processes),
        }
    }

    fn cgroups(&self) -> Option<&Cgroups> {
        matches!(self.cfg.cgroups, Cgroups::V1 { .. } | Cgroups::V2 { .. })
            .then_some(&self.cfg.cgroups)
    }

    /// When the kernel killed the tool itself for lack of memory: the
    /// reason the lab ended, its memory kills recorded as events.
    async fn tool_memory_kill(&self, lab: &LabRecord) -> Option<String> {
        let (end, kills, limit) = {
            let mut procs = self.procs.lock().ok()?;
            let p = procs.get_mut(&lab.id)?;
            let end = p.end()?;
            (end, p.memory_kills(), p.memory_limit())
        };
        self.record_memory_kills(lab, &kills, limit).await;
        end.killed_for_memory
            .then(|| oom_reason(kills.iter().find(|k| k.tool), limit))
    }

    /// `Some(code)` once the lab's process has ended.
    fn exited(&self, lab_id: &LabId) -> Option<Option<i32>> {
        let mut procs = self.procs.lock().ok()?;
        match procs.get_mut(lab_id).map(LabProcess::status) {
            Some(ExitStatus::Exited(code)) => Some(code),
            Some(ExitStatus::Running) => None,
            None => Some(None),
        }
    }

    /// Ends whatever runs of a lab: its route and proxy sessions, its
    /// process tree (this process's, or one found from the lab's record or
    /// status file: another server process may have started it), and its
    /// control group.
    async fn end_process(&self, lab: &LabRecord, grace: Duration) {
        if lab.job.is_some() {
            self.end_job(lab).await;
            return;
        }
        self.drop_route(&lab.id);
        let known = self
            .procs
            .lock()
            .ok()
            .and_then(|mut procs| procs.remove(&lab.id));
        let found = match known {
            Some(p) => Some(p),
            None => self.find_process(lab),
        };
        match found {
            Some(mut p) => p.stop(grace).await,
            // A container whose first process ended may still be there.
            None => self.remove_left_container(&lab.id).await,
        }
        if let Some(c) = self.cgroups() {
            let (c, name) = (c.clone(), lab.id.to_string());
            if c.dirs(&name).iter().any(|d| d.exists()) {
                let _ = tokio::task::spawn_blocking(move || c.kill_and_remove(&name)).await;
            }
        }
    }

    /// The lab's sandbox, found again from its record (pid and start time)
    /// or, for one started before its pid was recorded, its status file.
    fn find_process(&self, lab: &LabRecord) -> Option<LabProcess> {
        let log = self.log_path(&lab.id);
        let recorded = lab
            .pid
            .and_then(|p| u32::try_from(p).ok())
            .zip(lab.pid_start.and_then(|s| u64::try_from(s).ok()));
        self.adopt_process(&lab.id, recorded, &log)
    }

    /// Stops a lab, in whatever state it is: its whole process tree ends
    /// (a launch in flight ends what it started, and never reaches
    /// running); the workspace stays. The answer is the lab as it ended,
    /// its reason saying what the stop found.
    pub async fn stop(&self, lab: LabRecord) -> Result<LabRecord, Error> {
        self.stop_because(lab, "stopped by the user").await
    }

    /// Stops every active lab of a user with `reason`, all at once; returns
    /// how many labs were stopped. Each stopped lab's proxy sessions end
    /// with it; the user's others are the caller's to end
    /// ([`crate::platform::Platform::revoke_proxy_sessions`], before this,
    /// so that open lab pages are cut without waiting for the stops). The
    /// work runs in a task of its own, so it completes even when the caller
    /// (a request whose client went away) is dropped.
    pub async fn stop_all_of(
        self: &Arc<Self>,
        user_id: &UserId,
        reason: &str,
    ) -> Result<usize, Error> {
        let (me, user_id, reason) = (Arc::clone(self), user_id.clone(), reason.to_owned());
        let all = tokio::spawn(async move {
            let mut stops = tokio::task::JoinSet::new();
            for lab in me.store.labs_of_user(&user_id).await? {
                if lab.state.is_active() {
                    let (me, reason) = (Arc::clone(&me), reason.clone());
                    stops.spawn(async move { me.stop_because(lab, &reason).await });
                }
            }
            // Every lab is stopped even when one fails; the first failure
            // is reported.
            let (mut stopped, mut failure) = (0, None);
            while let Some(done) = stops.join_next().await {
                match done.map_err(Error::from).and_then(|r| r) {
                    Ok(_) => stopped += 1,
                    Err(e) => failure = failure.or(Some(e)),
                }
            }
            failure.map_or(Ok(stopped), Err)
        });
        all.await?
    }

    /// Stops a lab (see [`Labs::stop`]), `why` saying who or what stopped
    /// it; the lab's reason adds the state the stop found it in.
    async fn stop_because(&self, mut lab: LabRecord, why: &str) -> Result<LabRecord, Error> {
        let from = loop {
            if !lab.state.is_active() {
                return Ok(lab);
            }
            if lab.state == LabState::Stopping {
                return self.wait_stopped(lab).await;
            }
            let from = lab.state;
            if self
                .transition(&mut lab, &[from], LabState::Stopping)
                .await?
            {
                break from;
            }
        };
        let reason = stop_reason(why, from, &self.progress(&lab.id));
        let _stopping = StoppingHere::new(self, &lab.id);
        if let Some(launch) = self.launch_of(&lab.id) {
            launch.stop.send_replace(true);
            let mut done = launch.done.subscribe();
            if tokio::time::timeout(Duration::from_secs(30), done.wait_for(|d| *d))
                .await
                .is_err()
            {
                tracing::warn!(lab = %lab.id, "a launch did not let go of its lab within 30 s");
            }
        }
        if let Some(now) = self.store.lab(&lab.id).await? {
            // The job a launch recorded meanwhile.
            lab.job = now.job;
            lab.host = now.host;
        }
        if lab.job.is_some() {
            if !self.end_job(&lab).await {
                // Slurm cannot be reached: the lab stays stopping, and the
                // monitor cancels its job once it can.
                tracing::warn!(lab = %lab.id, "lab stopping until Slurm can cancel its job");
                return Ok(lab);
            }
        } else {
            self.end_process(&lab, Duration::from_secs(5)).await;
        }
        self.end(&mut lab, &[LabState::Stopping], LabState::Stopped, reason)
            .await?;
        tracing::info!(lab = %lab.id, was = %from, "lab stopped");
        Ok(lab)
    }

    /// A lab another stop is ending: its end, once recorded (or, if that
    /// stop never finishes, ended here).
    async fn wait_stopped(&self, mut lab: LabRecord) -> Result<LabRecord, Error> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while lab.state == LabState::Stopping && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            match self.store.lab(&lab.id).await? {
                Some(now) => lab = now,
                None => return Ok(lab),
            }
        }
        if lab.state == LabState::Stopping {
            self.end_process(&lab, Duration::from_secs(2)).await;
            self.end_stopping(&mut lab).await?;
        }
        Ok(lab)
    }
}

/// Marks a lab as being stopped by this process while it lives.
struct StoppingHere<'a> {
    labs: &'a Labs,
    id: LabId,
}

impl<'a> StoppingHere<'a> {
    fn new(labs: &'a Labs, id: &LabId) -> StoppingHere<'a> {
        if let Ok(mut s) = labs.stopping.lock() {
            s.insert(id.clone());
        }
        StoppingHere {
            labs,
            id: id.clone(),
        }
    }
}

impl Drop for StoppingHere<'_> {
    fn drop(&mut self) {
        if let Ok(mut s) = self.labs.stopping.lock() {
            s.remove(&self.id);
        }
    }
}

/// Whether a datalab may run in a zone: within the zone's limits, and, on
/// a cluster (whose network reaches the lab), only a tool that demands the
/// lab's secret.
fn check_zone(spec: &DatalabSpec, zone: &insitu_domain::ZoneSpec) -> Result<(), Error> {
    if zone.kind == insitu_domain::ZoneKind::Slurm && !spec.launch.credential.requires_secret() {
        return Err(Error::ZoneNeedsCredential {
            datalab: spec.name.clone(),
            zone: zone.name.clone(),
        });
    }
    let r = &spec.resources;
    let l = &zone.limits;
    let mut over = Vec::new();
    if let Some(cpu) = l.cpu
        && r.cpu > cpu
    {
        over.push(format!("{} CPU (at most {cpu})", r.cpu));
    }
    if let Some(m) = l.memory_bytes
        && r.memory_bytes > m
    {
        over.push(format!(
            "{} of memory (at most {})",
            insitu_domain::datalab::format_bytes(r.memory_bytes),
            insitu_domain::datalab::format_bytes(m)
        ));
    }
    if let Some(g) = l.gpu
        && r.gpu > g
    {
        over.push(format!("{} GPU(s) (at most {g})", r.gpu));
    }
    if over.is_empty() {
        Ok(())
    } else {
        Err(Error::ZoneLimitExceeded {
            datalab: spec.name.clone(),
            zone: zone.name.clone(),
            what: over.join(", "),
        })
    }
}

/// The lab's reason after a stop (`why`: who or what stopped it) found it
/// in state `from`.
fn stop_reason(why: &str, from: LabState, progress: &[Step]) -> String {
    match from {
        LabState::Pending => format!("{why} while it was pending (before its tool started)"),
        LabState::Starting if progress.iter().any(|s| s.step == "waiting_for_readiness") => {
            format!("{why} while it was starting (waiting for its tool to answer)")
        }
        LabState::Starting => format!("{why} while it was starting"),
        _ => why.to_owned(),
    }
}

/// Completes once a stop is requested through `stop` (never when its
/// sender is gone).
async fn stop_requested(stop: &mut tokio::sync::watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// How a wait for a lab to answer ended, when it did not answer.
#[derive(Debug)]
enum Waited {
    Stopped,
    Exited(Option<i32>),
    /// Not in time; the status of its last refusal, if it refused.
    TimedOut {
        answered: Option<u16>,
    },
    /// Something outside the lab serves its port.
    PortTaken(u16),
}

/// One probe of a lab's tool on its `port`, presenting `authorization`:
/// only when the lab's own processes serve the port (`holder`, from
/// [`port_holder`]), so that nothing else is asked, or sent the secret.
async fn answers(
    holder: PortHolder,
    port: u16,
    path: &str,
    network: Option<&UserNetwork>,
    authorization: Option<&str>,
) -> Result<Probe, Waited> {
    match holder {
        PortHolder::Outsider => Err(Waited::PortTaken(port)),
        PortHolder::Nobody => Ok(Probe::NoAnswer),
        PortHolder::Sandbox => {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            Ok(probe(addr, path, network, authorization).await)
        }
    }
}

/// The datalab's command with its placeholders filled in, and its file
/// arguments after it when the lab is launched on `file` (a path in the
/// lab, checked by the caller). The file goes in last, so nothing in its
/// name is taken for a placeholder.
fn launch_command(
    spec: &DatalabSpec,
    port: u16,
    base_url: &str,
    username: &str,
    file: Option<&str>,
) -> Vec<String> {
    let placeholder = format!("{{{}}}", insitu_domain::datalab::FILE_PLACEHOLDER);
    let file_arguments = file
        .map(|f| {
            spec.launch
                .file_arguments
                .iter()
                .map(move |a| fill(a, port, base_url, username).replace(&placeholder, f))
        })
        .into_iter()
        .flatten();
    spec.launch
        .command
        .iter()
        .map(|c| fill(c, port, base_url, username))
        .chain(file_arguments)
        .collect()
}

/// Device nodes for the assigned GPUs, plus the driver's shared nodes, where
/// they exist on this host.
/// Where the volumes show in the sandbox, read-only.
fn volume_mounts(volumes: &[VolumeSpec]) -> Vec<VolumeMount> {
    volumes
        .iter()
        .map(|v| VolumeMount {
            source: v.source.clone(),
            target: v.mount_path.clone(),
        })
        .collect()
}

fn gpu_devices(gpus: &[String]) -> Vec<PathBuf> {
    if gpus.is_empty() {
        return Vec::new();
    }
    gpus.iter()
        .map(|g| PathBuf::from(format!("/dev/nvidia{g}")))
        .chain(["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"].map(PathBuf::from))
        .filter(|p| p.exists())
        .collect()
}

/// Why a lab ended when the kernel killed its tool for its memory: which
/// process, the limit and when, as far as they are known.
fn oom_reason(kill: Option<&insitu_launcher::MemoryKill>, limit: Option<u64>) -> String {
    let who = match kill.and_then(|k| k.command.as_deref().zip(k.pid)) {
        Some((command, pid)) => format!("the tool ({command}, pid {pid})"),
        None => "the tool".to_owned(),
    };
    let limit = match limit {
        Some(bytes) => format!(
            "its memory limit of {}",
            insitu_domain::datalab::format_bytes(bytes)
        ),
        None => "its memory limit".to_owned(),
    };
    let at = kill
        .map(|k| format!(" at {}", crate::clock::rfc3339(unix_seconds(k.at))))
        .unwrap_or_default();
    format!("{who} used more than {limit} and was killed{at}")
}

/// What a lab event says, in words, for the lab's page, its API and its
/// log.
pub fn describe_event(e: &LabEventRecord) -> String {
    match e.kind {
        LabEventKind::MemoryKill => {
            let who = match (&e.command, e.pid) {
                (Some(c), Some(p)) => format!("{c} (pid {p})"),
                _ => "a process (the kernel log did not name it)".to_owned(),
            };
            let who = if e.tool {
                format!("the tool {who}")
            } else {
                who
            };
            let limit = match e.memory_limit.and_then(|l| u64::try_from(l).ok()) {
                Some(l) => format!(
                    "the lab's memory limit of {}",
                    insitu_domain::datalab::format_bytes(l)
                ),
                None => "the lab's memory limit".to_owned(),
            };
            let after = if e.tool {
                "the lab ended"
            } else {
                "the lab runs on"
            };
            format!(
                "{who} was killed at {} for using more than {limit}; {after}",
                crate::clock::rfc3339(e.at)
            )
        }
    }
}

fn unix_seconds(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

fn describe(code: Option<i32>) -> String {
    match code {
        Some(c) => format!("exit code {c}"),
        None => "killed by a signal or not known".to_owned(),
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// What one readiness probe got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// A real answer of the tool: below 500, and neither 404 nor a refusal.
    Ready,
    /// 401 or 403: the tool wants a credential it was not given.
    Refused(u16),
    /// No connection, no answer, or not yet a useful one.
    NoAnswer,
}

/// One readiness probe of the tool at `addr`, presenting `authorization`
/// (the tool's own credential) when it takes one.
async fn probe(
    addr: std::net::SocketAddr,
    path: &str,
    network: Option<&UserNetwork>,
    authorization: Option<&str>,
) -> Probe {
    let timeout = Duration::from_millis(500);
    let connected = match network {
        Some(n) => n.0.connect(addr, timeout).await,
        None => match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
            Ok(c) => c,
            Err(_) => return Probe::NoAnswer,
        },
    };
    let Ok(mut stream) = connected else {
        return Probe::NoAnswer;
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let credential = authorization.map_or_else(String::new, |a| format!("Authorization: {a}\r\n"));
    let req =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{credential}Connection: close\r\n\r\n");
    if stream.write_all(req.as_bytes()).await.is_err() {
        return Probe::NoAnswer;
    }
    let mut buf = [0u8; 32];
    let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await
    else {
        return Probe::NoAnswer;
    };
    let head = String::from_utf8_lossy(&buf[..n]);
    match head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
    {
        Some(status @ (401 | 403)) => Probe::Refused(status),
        Some(status) if status < 500 && status != 404 => Probe::Ready,
        _ => Probe::NoAnswer,
    }
}

impl Labs {
    /// Where the proxy finds a lab, while it has a process.
    pub fn route(&self, lab_id: &str) -> Option<LabRoute> {
        let mut route = self.routes.read().ok()?.get(lab_id).cloned()?;
        route.shared_with = self.shared_with(lab_id);
        Some(route)
    }

    /// A user's labs, newest first.
    pub async fn of_user(&self, user_id: &UserId) -> Result<Vec<LabRecord>, Error> {
        Ok(self.store.labs_of_user(user_id).await?)
    }

    /// What happened to a lab while it ran, oldest first.
    pub async fn events(&self, lab_id: &LabId) -> Result<Vec<LabEventRecord>, Error> {
        Ok(self.store.lab_events(lab_id).await?)
    }

    /// The events of each of a user's labs.
    pub async fn events_of_user(
        &self,
        user_id: &UserId,
    ) -> Result<HashMap<LabId, Vec<LabEventRecord>>, Error> {
        let mut by_lab: HashMap<LabId, Vec<LabEventRecord>> = HashMap::new();
        for e in self.store.lab_events_of_user(user_id).await? {
            by_lab.entry(e.lab_id.clone()).or_default().push(e);
        }
        Ok(by_lab)
    }

    /// Every active lab of every user, with what it uses now: the
    /// operator's console. Sorted oldest first.
    pub async fn operated(&self) -> Result<Vec<OperatedLab>, Error> {
        let labs = self
            .store
            .labs_in_states(&[
                LabState::Pending,
                LabState::Starting,
                LabState::Running,
                LabState::Stopping,
            ])
            .await?;
        let owners = crate::accounts::usernames_by_id(&self.store).await?;
        let cgroups = self.cgroups().cloned();
        let idle: Vec<Option<Duration>> = labs.iter().map(|l| self.idle_for(&l.id)).collect();
        let mut out = tokio::task::spawn_blocking(move || {
            labs.into_iter()
                .zip(idle)
                .map(|(lab, idle)| {
                    let name = lab.id.to_string();
                    let group = cgroups.as_ref();
                    OperatedLab {
                        owner: owners.get(&lab.user_id).cloned().unwrap_or_default(),
                        idle,
                        memory_bytes: group.and_then(|c| c.memory_usage(&name)),
                        memory_limit_bytes: group.and_then(|c| c.memory_limit(&name)),
                        cpu_seconds: group.and_then(|c| c.cpu_seconds(&name)),
                        lab,
                    }
                })
                .collect::<Vec<_>>()
        })
        .await?;
        out.sort_by_key(|o| (o.lab.created_at, o.lab.id.to_string()));
        Ok(out)
    }

    /// Stops any user's lab for an operator; the lab's reason, which its
    /// user reads, says who stopped it and why. A reason is required.
    pub async fn stop_for_operator(
        &self,
        id: &LabId,
        operator: &str,
        reason: &str,
    ) -> Result<LabRecord, Error> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(Error::StopReasonRequired);
        }
        let reason: String = reason.chars().take(OPERATOR_REASON_CHARS).collect();
        let lab = self
            .store
            .lab(id)
            .await?
            .ok_or_else(|| Error::LabNotFound(id.to_string()))?;
        self.stop_because(
            lab,
            &format!("stopped by the operator {operator}: {reason}"),
        )
        .await
    }

    /// The user's own lab; another user's lab is not found, not forbidden,
    /// so lab ids cannot be probed.
    pub async fn own(&self, user_id: &UserId, id: &LabId) -> Result<LabRecord, Error> {
        match self.store.lab(id).await? {
            Some(l) if l.user_id == *user_id => Ok(l),
            _ => Err(Error::LabNotFound(id.to_string())),
        }
    }

    /// Stops one of the user's labs.
    pub async fn stop_own(&self, user_id: &UserId, id: &LabId) -> Result<LabRecord, Error> {
        let lab = self.own(user_id, id).await?;
        self.stop(lab).await
    }

    /// A single-use link that logs the user into their running lab, or one
    /// shared with them, on the proxy's origin.
    pub async fn open(&self, user_id: &UserId, id: &LabId) -> Result<String, Error> {
        let lab = self.own_or_shared(user_id, id).await?;
        // A lab whose scheduler cannot be asked may well run: it opens.
        if !matches!(lab.state, LabState::Running | LabState::Unknown) {
            return Err(Error::LabNotRunning {
                id: lab.id,
                state: lab.state,
            });
        }
        self.entry_link(&lab.id, user_id)
    }

    /// The last `lines` lines the lab's tool wrote.
    pub async fn log_tail(&self, lab_id: &LabId, lines: usize) -> Vec<String> {
        let path = self.log_path(lab_id);
        let container = self.container_of(lab_id).is_some();
        tokio::task::spawn_blocking(move || {
            if container {
                insitu_launcher::container::log_tail(&path, lines)
            } else {
                insitu_launcher::process::log_tail(&path, lines)
            }
        })
        .await
        .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-shot server answering `status`; the request it got.
    async fn answering(status: u16) -> (std::net::SocketAddr, tokio::task::JoinHandle<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 2048];
            let n = s.read(&mut buf).await.unwrap();
            let head = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
            s.write_all(head.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        (addr, task)
    }

    #[tokio::test]
    async fn the_probe_presents_the_credential_and_counts_only_a_real_answer() {
        for (status, expected) in [
            (200, Probe::Ready),
            (302, Probe::Ready),
            (401, Probe::Refused(401)),
            (403, Probe::Refused(403)),
            (404, Probe::NoAnswer),
            (502, Probe::NoAnswer),
        ] {
            let (addr, request) = answering(status).await;
            let got = probe(addr, "/labs/x/api/status", None, Some("token abc")).await;
            assert_eq!(got, expected, "{status}");
            let request = request.await.unwrap();
            assert!(
                request.starts_with("GET /labs/x/api/status HTTP/1.1\r\n")
                    && request.contains("\r\nAuthorization: token abc\r\n"),
                "{request}"
            );
        }
        let (addr, request) = answering(200).await;
        assert_eq!(probe(addr, "/", None, None).await, Probe::Ready);
        assert!(!request.await.unwrap().contains("Authorization"));
        let refused = StartFailure::NotReady {
            secs: 60,
            answered: Some(403),
        };
        assert!(
            refused.to_string().contains("answered 403")
                && refused.to_string().contains("launch.credential"),
            "{refused}"
        );
    }

    #[test]
    fn file_arguments_follow_the_command_only_with_a_file() {
        let spec = DatalabSpec::from_toml(
            "ds9",
            "title = \"DS9\"\ndescription = \"\"\nversion = \"8\"\nkind = \"desktop\"\n\
             license = \"MIT\"\n[launch]\ncommand = [\"ds9\", \"-port={port}\"]\n\
             file_arguments = [\"-title\", \"{file}\", \"{file}\"]\n",
        )
        .unwrap();
        assert_eq!(
            launch_command(&spec, 9, "/labs/a/", "ann", None),
            ["ds9", "-port=9"]
        );
        // Placeholders in the file's name stay as they are.
        let f = "/media/data/v/{port}.fits";
        assert_eq!(
            launch_command(&spec, 9, "/labs/a/", "ann", Some(f)),
            ["ds9", "-port=9", "-title", f, f]
        );
    }
}
