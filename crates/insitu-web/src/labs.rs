//! Labs: launching a datalab in a sandbox, following it through its states
//! (pending → starting → running → stopping → stopped, or failed with a
//! reason), and finding labs again after a restart.
//!
//! The state is in the store; the processes are in the launcher. A lab is
//! shown running only while its process is alive: a monitor checks every
//! running lab each second, and a restart re-adopts each lab's process or
//! marks the lab failed with the reason.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use insitu_api::ErrorCode;
use insitu_domain::{DatalabKind, DatalabSpec, VolumeSpec};
use insitu_launcher::sandbox::fill;
use insitu_launcher::{ExitStatus, SandboxProcess, SandboxSpec, VolumeMount};
use insitu_proxy::{LabDirectory, LabRoute, LabState};
use insitu_store::{LabRecord, Store};

use crate::error::ApiFailure;
use crate::time_fmt::now;

pub const ACTIVE: [&str; 4] = ["pending", "starting", "running", "stopping"];

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
}

pub struct LabConfigView {
    pub bwrap: PathBuf,
    pub data_dir: PathBuf,
    pub hidden: Vec<PathBuf>,
    pub max_labs_per_user: usize,
    pub start_timeout: Duration,
    pub tool_path: Vec<PathBuf>,
    pub expose: Vec<PathBuf>,
    pub run_as: (u32, u32),
    /// Running labs with no proxied traffic for this long are stopped.
    pub idle_timeout: Option<Duration>,
    /// The datazone's GPUs, by device index.
    pub gpus: Vec<String>,
}

pub struct Labs {
    store: Store,
    cfg: LabConfigView,
    procs: Mutex<HashMap<String, SandboxProcess>>,
    progress: Mutex<HashMap<String, (std::time::Instant, Vec<Step>)>>,
    /// Last proxied request or WebSocket frame, per lab.
    activity: Mutex<HashMap<String, std::time::Instant>>,
    /// Held while GPUs are counted and assigned, so two launches never get
    /// the same device.
    gpu_lock: tokio::sync::Mutex<()>,
    /// Where the proxy finds each lab that has a process: address, owner,
    /// state. Labs not in it are stopped as far as the proxy knows.
    routes: std::sync::RwLock<HashMap<String, LabRoute>>,
    /// The proxy, to end its sessions when a lab stops.
    proxy: std::sync::OnceLock<insitu_proxy::Proxy>,
}

impl Labs {
    pub fn new(store: Store, cfg: LabConfigView) -> Arc<Labs> {
        Arc::new(Labs {
            store,
            cfg,
            procs: Mutex::new(HashMap::new()),
            progress: Mutex::new(HashMap::new()),
            activity: Mutex::new(HashMap::new()),
            gpu_lock: tokio::sync::Mutex::new(()),
            routes: std::sync::RwLock::new(HashMap::new()),
            proxy: std::sync::OnceLock::new(),
        })
    }

    pub fn set_proxy(&self, proxy: insitu_proxy::Proxy) {
        let _ = self.proxy.set(proxy);
    }

    fn set_route(&self, lab: &LabRecord, state: LabState) {
        let Some(port) = lab.port.and_then(|p| u16::try_from(p).ok()) else {
            return;
        };
        if let Ok(mut r) = self.routes.write() {
            let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            r.insert(
                lab.id.clone(),
                LabRoute {
                    upstream,
                    owner: lab.user_id.clone(),
                    state,
                },
            );
        }
    }

    /// Forgets a lab's route and ends its proxy sessions (open WebSockets
    /// close at once).
    fn drop_route(&self, lab_id: &str) {
        if let Ok(mut r) = self.routes.write() {
            r.remove(lab_id);
        }
        if let Some(p) = self.proxy.get() {
            p.revoke_lab(lab_id);
        }
    }

    /// Notes traffic for a lab (called by the proxy); idle culling counts
    /// from the last one.
    pub fn record_activity(&self, lab_id: &str) {
        if let Ok(mut a) = self.activity.lock() {
            a.insert(lab_id.to_owned(), std::time::Instant::now());
        }
    }

    fn idle_for(&self, lab_id: &str) -> Option<Duration> {
        self.activity
            .lock()
            .ok()?
            .get(lab_id)
            .map(std::time::Instant::elapsed)
    }

    pub fn progress(&self, lab_id: &str) -> Vec<Step> {
        self.progress
            .lock()
            .ok()
            .and_then(|p| p.get(lab_id).map(|(_, steps)| steps.clone()))
            .unwrap_or_default()
    }

    fn step(&self, lab_id: &str, step: &'static str) {
        if let Ok(mut p) = self.progress.lock() {
            let (started, list) = p
                .entry(lab_id.to_owned())
                .or_insert_with(|| (std::time::Instant::now(), Vec::new()));
            list.push(Step {
                step,
                at_ms: started.elapsed().as_millis(),
            });
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
    /// workspaces, which sandboxes bind from there.
    pub fn prepare_dirs(&self) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let workspaces = self.cfg.data_dir.join("workspaces");
        std::fs::create_dir_all(&workspaces)?;
        for dir in [&self.cfg.data_dir, &workspaces] {
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

    /// Bytes and files in a user's workspace (0 before the first launch).
    pub async fn workspace_usage(&self, username: &str) -> (u64, u64) {
        let dir = self.workspace_of(username);
        tokio::task::spawn_blocking(move || {
            let (files, bytes) = crate::volumes::count_files(&dir);
            (bytes, files)
        })
        .await
        .unwrap_or((0, 0))
    }

    pub fn workspace_of(&self, username: &str) -> PathBuf {
        self.cfg.data_dir.join("workspaces").join(username)
    }

    pub fn log_path(&self, lab_id: &str) -> PathBuf {
        self.cfg.data_dir.join("labs").join(lab_id).join("lab.log")
    }

    /// Records a new lab and starts it in the background.
    pub async fn launch(
        self: &Arc<Self>,
        user_id: &str,
        username: &str,
        spec: &DatalabSpec,
        volumes: Vec<VolumeSpec>,
    ) -> Result<LabRecord, ApiFailure> {
        if spec.kind == DatalabKind::Desktop {
            return Err(ApiFailure::new(
                ErrorCode::DatalabNotLaunchable,
                format!(
                    "{} is a desktop datalab; desktop labs are not available on this platform yet",
                    spec.name
                ),
            ));
        }
        let active = self
            .store
            .labs_of_user(user_id)
            .await?
            .into_iter()
            .filter(|l| ACTIVE.contains(&l.state.as_str()))
            .count();
        if active >= self.cfg.max_labs_per_user {
            return Err(ApiFailure::new(
                ErrorCode::LabQuotaExceeded,
                format!(
                    "you already have {active} labs running; the limit is {}: stop one first",
                    self.cfg.max_labs_per_user
                ),
            ));
        }
        let _gpu_guard = self.gpu_lock.lock().await;
        let gpus = self.assign_gpus(spec).await?;
        let lab = LabRecord {
            id: lab_id(),
            user_id: user_id.to_owned(),
            datalab: spec.name.to_string(),
            volumes: volumes.iter().map(|v| v.name.to_string()).collect(),
            gpus,
            state: "pending".to_owned(),
            reason: None,
            port: None,
            pid: None,
            pid_start: None,
            created_at: now(),
            started_at: None,
            stopped_at: None,
        };
        self.store.create_lab(&lab).await?;
        self.step(&lab.id, "queued");
        let me = Arc::clone(self);
        let (spec, username, record) = (spec.clone(), username.to_owned(), lab.clone());
        tokio::spawn(async move { me.run(record, spec, username, volumes).await });
        Ok(lab)
    }

    /// Picks free GPUs for a datalab that asks for some: the inventory less
    /// those held by active labs.
    async fn assign_gpus(&self, spec: &DatalabSpec) -> Result<Vec<String>, ApiFailure> {
        let wanted = usize::try_from(spec.resources.gpu).unwrap_or(usize::MAX);
        if wanted == 0 {
            return Ok(Vec::new());
        }
        let held: Vec<String> = self
            .store
            .labs_in_states(&ACTIVE)
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
            return Err(ApiFailure::new(
                ErrorCode::GpuUnavailable,
                format!(
                    "{} needs {wanted} GPU(s); this datazone has {} in all and {} free",
                    spec.name,
                    self.cfg.gpus.len(),
                    free.len()
                ),
            ));
        }
        Ok(free.into_iter().take(wanted).collect())
    }

    async fn run(
        self: Arc<Self>,
        mut lab: LabRecord,
        spec: DatalabSpec,
        username: String,
        volumes: Vec<VolumeSpec>,
    ) {
        if let Err(reason) = self.start(&mut lab, &spec, &username, volumes).await {
            tracing::warn!(lab = %lab.id, reason = %reason, "lab failed to start");
            self.stop_process(&lab.id, Duration::from_millis(500)).await;
            lab.state = "failed".to_owned();
            lab.reason = Some(reason);
            lab.stopped_at = Some(now());
            if let Err(e) = self.store.update_lab(&lab).await {
                tracing::error!(lab = %lab.id, error = %e, "could not record a failed lab");
            }
        }
    }

    async fn start(
        &self,
        lab: &mut LabRecord,
        spec: &DatalabSpec,
        username: &str,
        volumes: Vec<VolumeSpec>,
    ) -> Result<(), String> {
        let workspace = self.workspace_of(username);
        std::fs::create_dir_all(&workspace)
            .map_err(|e| format!("cannot create the workspace: {e}"))?;
        let (uid, gid) = self.cfg.run_as;
        std::os::unix::fs::chown(&workspace, Some(uid), Some(gid))
            .map_err(|e| format!("cannot hand the workspace to the lab user: {e}"))?;
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        let base_url = format!("/labs/{}/", lab.id);
        let sandbox = SandboxSpec {
            command: spec
                .launch
                .command
                .iter()
                .map(|c| fill(c, port, &base_url, username))
                .collect(),
            env: std::iter::once(("PATH".to_owned(), self.path_var()))
                .chain(
                    (!lab.gpus.is_empty())
                        .then(|| ("CUDA_VISIBLE_DEVICES".to_owned(), lab.gpus.join(","))),
                )
                .chain(
                    spec.launch
                        .env
                        .iter()
                        .map(|(k, v)| (k.clone(), fill(v, port, &base_url, username))),
                )
                .collect(),
            workspace,
            volumes: volumes
                .iter()
                .map(|v| VolumeMount {
                    source: v.source.clone(),
                    target: v.mount_path.clone(),
                })
                .collect(),
            hidden: self.cfg.hidden.clone(),
            devices: gpu_devices(&lab.gpus),
            expose: self.exposed(),
            share_network: true,
            run_as: Some(self.cfg.run_as),
        };
        self.step(&lab.id, "sandbox_prepared");
        let log = self.log_path(&lab.id);
        let process =
            SandboxProcess::start(&self.cfg.bwrap, &sandbox, &log).map_err(|e| e.to_string())?;
        lab.state = "starting".to_owned();
        lab.port = Some(i64::from(port));
        lab.pid = Some(i64::from(process.pid));
        lab.pid_start = i64::try_from(process.start_ticks).ok();
        if let Ok(mut procs) = self.procs.lock() {
            procs.insert(lab.id.clone(), process);
        }
        self.store
            .update_lab(lab)
            .await
            .map_err(|e| e.to_string())?;
        self.set_route(lab, LabState::Starting);
        self.step(&lab.id, "process_started");
        self.step(&lab.id, "waiting_for_readiness");
        let url = format!(
            "http://127.0.0.1:{port}{}{}",
            base_url.trim_end_matches('/'),
            spec.launch.readiness_path
        );
        let deadline = tokio::time::Instant::now() + self.cfg.start_timeout;
        loop {
            if let Some(code) = self.exited(&lab.id) {
                let tail = insitu_launcher::process::log_tail(&log, 5).join(" | ");
                return Err(format!(
                    "the tool exited ({}) before it was ready; last output: {tail}",
                    describe(code)
                ));
            }
            if ready(&url).await {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "the tool was not ready after {} s",
                    self.cfg.start_timeout.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        lab.state = "running".to_owned();
        lab.started_at = Some(now());
        self.record_activity(&lab.id);
        self.store
            .update_lab(lab)
            .await
            .map_err(|e| e.to_string())?;
        self.set_route(lab, LabState::Running);
        self.step(&lab.id, "ready");
        tracing::info!(lab = %lab.id, datalab = %lab.datalab, "lab running");
        Ok(())
    }

    /// `Some(code)` once the lab's process has ended.
    fn exited(&self, lab_id: &str) -> Option<Option<i32>> {
        let mut procs = self.procs.lock().ok()?;
        match procs.get_mut(lab_id).map(SandboxProcess::status) {
            Some(ExitStatus::Exited(code)) => Some(code),
            Some(ExitStatus::Running) => None,
            None => Some(None),
        }
    }

    async fn stop_process(&self, lab_id: &str, grace: Duration) {
        self.drop_route(lab_id);
        let p = self
            .procs
            .lock()
            .ok()
            .and_then(|mut procs| procs.remove(lab_id));
        if let Some(mut p) = p {
            p.stop(grace).await;
        }
    }

    /// Stops a lab: its whole process tree ends; the workspace stays.
    pub async fn stop(&self, mut lab: LabRecord) -> Result<LabRecord, ApiFailure> {
        if !ACTIVE.contains(&lab.state.as_str()) {
            return Ok(lab);
        }
        lab.state = "stopping".to_owned();
        self.store.update_lab(&lab).await?;
        self.stop_process(&lab.id, Duration::from_secs(5)).await;
        lab.state = "stopped".to_owned();
        lab.reason = Some("stopped by the user".to_owned());
        lab.stopped_at = Some(now());
        self.store.update_lab(&lab).await?;
        Ok(lab)
    }

    /// After a restart: adopts the processes of labs that were starting or
    /// running, and marks the others failed with the reason.
    pub async fn adopt_all(&self) -> Result<(), insitu_store::StoreError> {
        for mut lab in self.store.labs_in_states(&ACTIVE).await? {
            let log = self.log_path(&lab.id);
            let adopted = match (lab.pid, lab.pid_start) {
                (Some(pid), Some(start)) => u32::try_from(pid)
                    .ok()
                    .zip(u64::try_from(start).ok())
                    .and_then(|(pid, start)| SandboxProcess::adopt(pid, start, &log)),
                _ => None,
            };
            match adopted {
                Some(p) if lab.state == "running" => {
                    tracing::info!(lab = %lab.id, pid = p.pid, "lab re-adopted after restart");
                    if let Ok(mut procs) = self.procs.lock() {
                        procs.insert(lab.id.clone(), p);
                    }
                    self.record_activity(&lab.id);
                    self.set_route(&lab, LabState::Running);
                }
                other => {
                    if let Some(mut p) = other {
                        p.stop(Duration::from_secs(2)).await;
                    }
                    let was = std::mem::replace(&mut lab.state, "failed".to_owned());
                    lab.reason = Some(format!(
                        "the platform restarted while the lab was {was}; its process was gone or could not be resumed"
                    ));
                    lab.stopped_at = Some(now());
                    self.store.update_lab(&lab).await?;
                }
            }
        }
        Ok(())
    }

    /// Marks running labs whose process ended as failed (or stopped when it
    /// exited cleanly). Runs every second.
    pub async fn check_running(&self) -> Result<(), insitu_store::StoreError> {
        for mut lab in self.store.labs_in_states(&["running"]).await? {
            if let Some(limit) = self.cfg.idle_timeout
                && self.idle_for(&lab.id).is_some_and(|idle| idle >= limit)
            {
                lab.state = "stopping".to_owned();
                self.store.update_lab(&lab).await?;
                self.stop_process(&lab.id, Duration::from_secs(5)).await;
                lab.state = "stopped".to_owned();
                lab.reason = Some(format!(
                    "stopped after {} s without activity (idle culling); your workspace is kept",
                    limit.as_secs()
                ));
                lab.stopped_at = Some(now());
                self.store.update_lab(&lab).await?;
                tracing::info!(lab = %lab.id, "idle lab stopped");
                continue;
            }
            if let Some(code) = self.exited(&lab.id) {
                self.procs.lock().map(|mut p| p.remove(&lab.id)).ok();
                self.drop_route(&lab.id);
                lab.state = if code == Some(0) { "stopped" } else { "failed" }.to_owned();
                lab.reason = Some(format!("the tool exited ({})", describe(code)));
                lab.stopped_at = Some(now());
                self.store.update_lab(&lab).await?;
                tracing::info!(lab = %lab.id, reason = ?lab.reason, "lab ended");
            }
        }
        Ok(())
    }
}

/// Device nodes for the assigned GPUs, plus the driver's shared nodes, where
/// they exist on this host.
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

fn describe(code: Option<i32>) -> String {
    match code {
        Some(c) => format!("exit code {c}"),
        None => "killed by a signal or not known".to_owned(),
    }
}

fn lab_id() -> String {
    let bytes: [u8; 6] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// One readiness probe: any answer below 500 that is not 404 means the tool
/// is serving.
async fn ready(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let Ok(Ok(mut stream)) = tokio::time::timeout(
        Duration::from_millis(500),
        tokio::net::TcpStream::connect(host),
    )
    .await
    else {
        return false;
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    if stream.write_all(req.as_bytes()).await.is_err() {
        return false;
    }
    let mut buf = [0u8; 32];
    let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await
    else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..n]);
    head.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .is_some_and(|c| c < 500 && c != 404)
}

impl LabDirectory for Labs {
    fn route(&self, lab_id: &str) -> Option<LabRoute> {
        self.routes.read().ok()?.get(lab_id).cloned()
    }

    fn record_activity(&self, lab_id: &str) {
        Labs::record_activity(self, lab_id);
    }
}
