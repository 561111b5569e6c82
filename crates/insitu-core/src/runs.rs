//! Pipeline runs: submitted with a job order, queued, executed by the CWL
//! engine on the user's behalf, followed step by step, cancelled, resumed,
//! their outputs put in the user's workspace and their provenance kept.
//!
//! **State**: queued → running → succeeded, failed or cancelled (a queued
//! run may be cancelled too), in the store; a run moves only from the
//! state the mover expects ([`Store::move_run`]), so a cancel and a start,
//! or two finishes, never both win.
//!
//! **Queue**: at most `pipelines.slots` runs execute at once, and at most
//! `pipelines.max_running_per_user` of one user's; free slots go round the
//! users with waiting runs in turn, each user's oldest run first, so one
//! user's hundred runs do not hold back another's one.
//!
//! **Where runs execute**: the engine runs on the host, as root, in
//! confined mode (see ARCHITECTURE.md for why not in a sandbox of its
//! own): it reads documents and inputs only under the run's directory, the
//! user's workspace and the volumes the job names (`--allow-root`), runs
//! every tool as the labs' unprivileged user (`--run-as`) in bubblewrap
//! sandboxes that never show the platform's data directory (`--hide`)
//! beyond what a job is given, and lives in a network namespace of the
//! run's own (loopback only) and a control group of its own. It is started
//! apart from the platform ([`engine`]): a restart of the platform finds
//! it again and reads its event stream from the start; a run whose engine
//! is gone without having finished is queued again and resumes from its
//! cache, and its user is told.
//!
//! **Resume**: every run of a chain (a run and the runs resuming it) shares
//! one job cache (`--cachedir`, under the user's own directory), so a
//! resumed run reuses the steps that finished and runs the rest.
//!
//! **What stays**: outputs are copied into the workspace under
//! `runs/<run>/` ([`publish`]); events, job logs and the provenance crate
//! stay in the run's directory; job directories and the chain's cache are
//! removed `pipelines.keep_intermediate` after the run ended.

pub mod engine;
pub mod job;
pub mod progress;
pub mod publish;

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use insitu_domain::{Name, PipelineRef, RunId, RunState, UserId, VolumeSpec};
use insitu_launcher::{Cgroups, Limits, NetNs};
use insitu_store::{RunRecord, Store};
use serde_json::Value;
use tokio::sync::{Notify, watch};

use crate::clock::now_ms;
use crate::error::Error;
use crate::labs::{Labs, WORKSPACE_PATH};
use crate::pipelines::{Pipelines, Version, Viewer};
use crate::zones::Zones;
use engine::{EngineProcess, Launch};
use progress::{EventReader, Progress};

/// How long a run's follower waits between looks at its engine.
const FOLLOW_EVERY: Duration = Duration::from_millis(25);

/// How long a cancelled run's engine has to end on SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// The runs' view of the configuration, with the data directory resolved.
pub struct RunsConfigView {
    pub data_dir: PathBuf,
    pub slots: usize,
    pub max_running_per_user: usize,
    pub max_queued_per_user: usize,
    /// The engine's `--parallel`.
    pub parallel: usize,
    pub keep_intermediate: Option<Duration>,
    /// The user and group tools run as (the labs').
    pub run_as: (u32, u32),
    /// What no job sees (the data directory).
    pub hidden: Vec<PathBuf>,
    /// Put first on the engine's (and so the tools') `PATH`.
    pub tool_path: Vec<PathBuf>,
    /// Shown read-only in every job's sandbox (tool installations).
    pub expose: Vec<PathBuf>,
    pub bwrap: PathBuf,
    /// Where runs' control groups go (or why there are none).
    pub cgroups: Cgroups,
    pub max_processes: u64,
    /// A network namespace of each run's own (else the host's network,
    /// where a tool asks for it). A run in a Slurm zone keeps the host's
    /// network: its engine talks to the cluster's controller.
    pub network_per_run: bool,
}

/// A run as a user asks for it.
#[derive(Debug, Clone)]
pub struct RunOrder {
    /// `name` or `owner/name`.
    pub pipeline: String,
    /// The newest when `None`.
    pub version: Option<String>,
    /// The job order: the pipeline's inputs, files named as labs see them.
    pub job: Value,
    /// The datazone to execute in; none: the one holding the volumes the
    /// job names (or the default). See [`crate::zones::place`].
    pub zone: Option<String>,
}

/// A run, as its user sees it.
#[derive(Debug, Clone)]
pub struct RunView {
    pub record: RunRecord,
    pub progress: Progress,
    /// The steps of the pipeline not started yet, by name (the progress
    /// lists those that did).
    pub waiting_steps: Vec<String>,
}

/// A slice of a log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogChunk {
    pub text: String,
    /// Where the next read starts.
    pub next: u64,
    /// Whether nothing more will be written (the job or run ended).
    pub done: bool,
}

/// A running run of this platform: from the moment the scheduler picks
/// it, while its engine starts, and while it is followed.
struct Live {
    /// Held by the start from the last look at the run's state until its
    /// engine is recorded, so a cancel either stops the run before its
    /// engine starts or finds the engine to stop.
    engine: tokio::sync::Mutex<Option<EngineProcess>>,
    progress: watch::Sender<Progress>,
    network: Option<String>,
    cancelled: std::sync::atomic::AtomicBool,
}

impl Live {
    fn new(engine: Option<EngineProcess>, network: Option<String>) -> Arc<Live> {
        Arc::new(Live {
            engine: tokio::sync::Mutex::new(engine),
            progress: watch::channel(Progress::default()).0,
            network,
            cancelled: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(std::sync::atomic::Ordering::SeqCst)
    }
}

pub struct Runs {
    store: Store,
    cfg: RunsConfigView,
    pipelines: Arc<Pipelines>,
    labs: Arc<Labs>,
    volumes: Vec<VolumeSpec>,
    zones: Arc<Zones>,
    live: Mutex<HashMap<RunId, Arc<Live>>>,
    /// Held while the scheduler decides, so two decisions never overlap.
    scheduling: tokio::sync::Mutex<()>,
    /// The user whose run started last: the next free slot goes to the
    /// next user after them.
    last_served: Mutex<Option<UserId>>,
    /// Wakes the scheduler (a run was queued or ended).
    wake: Notify,
}

/// A run id from a request: one that cannot be an id is a run the caller
/// does not have.
pub fn run_id(raw: &str) -> Result<RunId, Error> {
    raw.parse().map_err(|_| Error::RunNotFound(raw.to_owned()))
}

impl Runs {
    pub fn new(
        store: Store,
        cfg: RunsConfigView,
        pipelines: Arc<Pipelines>,
        labs: Arc<Labs>,
        volumes: Vec<VolumeSpec>,
        zones: Arc<Zones>,
    ) -> Arc<Runs> {
        Arc::new(Runs {
            store,
            cfg,
            pipelines,
            labs,
            volumes,
            zones,
            live: Mutex::new(HashMap::new()),
            scheduling: tokio::sync::Mutex::new(()),
            last_served: Mutex::new(None),
            wake: Notify::new(),
        })
    }

    fn runs_dir(&self) -> PathBuf {
        self.cfg.data_dir.join("runs")
    }

    /// The platform's directory of a run.
    pub fn run_dir(&self, id: &RunId) -> PathBuf {
        self.runs_dir().join(id.as_str())
    }

    /// The job cache of a chain of runs (the first run's id), under the
    /// user's own directory.
    fn cache_dir(&self, user: &UserId, lineage: &RunId) -> PathBuf {
        self.cfg
            .data_dir
            .join("run-cache")
            .join(user.as_str())
            .join(lineage.as_str())
    }

    /// Where users find a run's outputs (in labs, and in the workspace).
    pub fn outputs_seen_at(id: &RunId) -> PathBuf {
        Path::new(WORKSPACE_PATH).join("runs").join(id.as_str())
    }

    fn network_name(id: &RunId) -> String {
        format!("insitu-run-{id}")
    }

    /// The network namespace a run's engine lives in: one of its own,
    /// unless networks per run are off or its zone is a Slurm cluster
    /// (whose controller the engine must reach).
    fn network_of(&self, run: &RunRecord) -> Option<String> {
        (self.cfg.network_per_run && self.zones.cluster(run.zone.as_str()).is_none())
            .then(|| Self::network_name(&run.id))
    }

    fn cgroups(&self) -> Option<&Cgroups> {
        matches!(self.cfg.cgroups, Cgroups::V1 { .. } | Cgroups::V2 { .. })
            .then_some(&self.cfg.cgroups)
    }

    /// Makes the runs' directories (only the platform reads them; the
    /// tools' user may pass through to its job directories).
    pub fn prepare_dirs(&self) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        for dir in [self.runs_dir(), self.cfg.data_dir.join("run-cache")] {
            std::fs::create_dir_all(&dir)?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711))?;
        }
        Ok(())
    }

    // ---- submitting ----------------------------------------------------

    /// Checks a run order and queues it: the pipeline one the user may
    /// see, its CWL valid, the job order of its inputs' types, every file
    /// in the user's workspace or a data volume.
    pub async fn submit(&self, viewer: &Viewer, order: RunOrder) -> Result<RunRecord, Error> {
        let reference: PipelineRef = order
            .pipeline
            .parse()
            .map_err(|_| Error::PipelineNotFound(order.pipeline.clone()))?;
        let version = self
            .pipelines
            .version(viewer, &reference, order.version.as_deref())
            .await?;
        let check = self.pipelines.check(&version).await?;
        let Some(process) = &check.process else {
            return Err(Error::InvalidCwl(check.diagnostics.clone()));
        };
        job::check(process, &order.job).map_err(Error::InvalidJob)?;
        let places = self.places(viewer).await?;
        let host = job::to_host(&order.job, &places).map_err(Error::InvalidJob)?;
        // The run goes to the zone holding the volumes its job names.
        let named: Vec<VolumeSpec> = places
            .volumes
            .into_iter()
            .filter(|v| {
                v.source
                    .canonicalize()
                    .is_ok_and(|s| host.roots.contains(&s))
            })
            .collect();
        let zone = self.zones.place(&named, order.zone.as_deref())?;
        self.queue(viewer, &version, order.job, None, zone.name)
            .await
    }

    /// Where a user's job may name files: their workspace, the workspaces
    /// of the teams they are an accepted member of, and the data
    /// volumes whose audience admits them, by name, role or the teams
    /// they are an accepted member of (a restricted volume is, for anyone
    /// else, as if it did not exist).
    async fn places(&self, viewer: &Viewer) -> Result<job::Places, Error> {
        let user = self
            .store
            .user_by_username(&viewer.username)
            .await?
            .ok_or(Error::AccountGone)?;
        let teams = self.labs.teams();
        let audience = insitu_domain::Viewer {
            teams: teams.member_of(&user.id).await?,
            ..insitu_domain::Viewer::new(user.username.clone(), user.role)
        };
        let team_workspaces = teams.workspaces_of(&user.id).await?;
        // Mounted from their images before a step binds them.
        let workspace = self
            .labs
            .ready_workspaces(&user.id, user.username.as_str(), &team_workspaces)
            .await?;
        Ok(job::Places {
            workspace,
            teams: team_workspaces,
            volumes: self
                .volumes
                .iter()
                .filter(|v| v.audience.admits(&audience))
                .cloned()
                .collect(),
        })
    }

    async fn queue(
        &self,
        viewer: &Viewer,
        version: &Version,
        job: Value,
        resumes: Option<&RunRecord>,
        zone: Name,
    ) -> Result<RunRecord, Error> {
        let waiting = self
            .store
            .runs_in_states(&[RunState::Queued])
            .await?
            .iter()
            .filter(|r| r.user_id == viewer.user_id)
            .count();
        if waiting >= self.cfg.max_queued_per_user {
            return Err(Error::RunQueueFull {
                queued: waiting,
                limit: self.cfg.max_queued_per_user,
            });
        }
        let id = RunId::from_random(rand::random());
        let record = RunRecord {
            id: id.clone(),
            user_id: viewer.user_id.clone(),
            pipeline: version.reference.to_string(),
            version: version.meta.version.to_string(),
            state: RunState::Queued,
            reason: None,
            notice: resumes.map(|r| {
                format!(
                    "resumes run {}: steps it finished are reused from its cache",
                    r.id
                )
            }),
            job: serde_json::to_string(&job).map_err(|e| Error::InvalidJob(e.to_string()))?,
            resumed_from: resumes.map(|r| r.id.clone()),
            lineage: resumes.map_or(id, |r| r.lineage.clone()),
            pid: None,
            pid_start: None,
            outputs: None,
            created_at_ms: now_ms(),
            started_at_ms: None,
            finished_at_ms: None,
            cleaned_at_ms: None,
            zone,
        };
        self.store.create_run(&record).await?;
        tracing::info!(run = %record.id, pipeline = %record.pipeline, version = %record.version, "run queued");
        self.wake.notify_one();
        Ok(record)
    }

    /// A new run of a failed or cancelled run's pipeline version and job,
    /// reusing the steps it finished.
    pub async fn resume(&self, viewer: &Viewer, id: &RunId) -> Result<RunRecord, Error> {
        let run = self.own(viewer, id).await?;
        if !matches!(run.state, RunState::Failed | RunState::Cancelled) {
            return Err(Error::RunNotResumable {
                id: run.id,
                state: run.state,
            });
        }
        let reference: PipelineRef = run
            .pipeline
            .parse()
            .map_err(|_| Error::PipelineNotFound(run.pipeline.clone()))?;
        let version = self
            .pipelines
            .version(viewer, &reference, Some(&run.version))
            .await?;
        let job: Value =
            serde_json::from_str(&run.job).map_err(|e| Error::InvalidJob(e.to_string()))?;
        // In the zone of the run it resumes, where its cache is.
        let zone = run.zone.clone();
        self.queue(viewer, &version, job, Some(&run), zone).await
    }

    // ---- reading -------------------------------------------------------

    /// The user's own run; another user's run is not found, not
    /// forbidden, so run ids cannot be probed.
    pub async fn own(&self, viewer: &Viewer, id: &RunId) -> Result<RunRecord, Error> {
        match self.store.run(id).await? {
            Some(r) if r.user_id == viewer.user_id => Ok(r),
            _ => Err(Error::RunNotFound(id.to_string())),
        }
    }

    /// The user's runs, newest first.
    pub async fn of_user(&self, viewer: &Viewer, limit: i64) -> Result<Vec<RunRecord>, Error> {
        Ok(self.store.runs_of_user(&viewer.user_id, limit).await?)
    }

    /// A run with its progress, every step of its pipeline included.
    pub async fn view(&self, viewer: &Viewer, id: &RunId) -> Result<RunView, Error> {
        let record = self.own(viewer, id).await?;
        Ok(self.view_of(viewer, record).await)
    }

    async fn view_of(&self, viewer: &Viewer, record: RunRecord) -> RunView {
        let progress = self.progress(&record);
        let started: Vec<String> = progress.steps.iter().map(|s| s.step.clone()).collect();
        let mut waiting_steps = Vec::new();
        if let Ok(reference) = record.pipeline.parse::<PipelineRef>()
            && let Ok(version) = self
                .pipelines
                .version(viewer, &reference, Some(&record.version))
                .await
            && let Ok(check) = self.pipelines.check(&version).await
            && let Some(p) = &check.process
        {
            let names: Vec<String> = if p.class == "Workflow" {
                p.steps.iter().map(|s| s.id.clone()).collect()
            } else {
                vec![String::new()]
            };
            waiting_steps = names.into_iter().filter(|n| !started.contains(n)).collect();
        }
        RunView {
            record,
            progress,
            waiting_steps,
        }
    }

    /// The progress of a run: followed live, or read from its events.
    fn progress(&self, record: &RunRecord) -> Progress {
        if let Some(live) = self.live_of(&record.id) {
            return live.progress.borrow().clone();
        }
        let mut p = progress::read_all(&self.run_dir(&record.id).join("events.jsonl"));
        if record.state == RunState::Cancelled
            || (record.state == RunState::Failed && p.end.is_none())
        {
            p.interrupt();
        }
        p
    }

    fn live_of(&self, id: &RunId) -> Option<Arc<Live>> {
        self.live.lock().ok()?.get(id).cloned()
    }

    /// Waits up to `wait` for news of a run: more events than `seen`, or
    /// another state than `state`; then its view.
    pub async fn wait_for_news(
        &self,
        viewer: &Viewer,
        id: &RunId,
        seen: u64,
        state: Option<RunState>,
        wait: Duration,
    ) -> Result<RunView, Error> {
        let record = self.own(viewer, id).await?;
        let deadline = tokio::time::Instant::now() + wait;
        let mut record = record;
        loop {
            let news = state.is_some_and(|s| s != record.state)
                || self.progress(&record).seen > seen
                || !record.state.is_active();
            if news || tokio::time::Instant::now() >= deadline {
                return Ok(self.view_of(viewer, record).await);
            }
            match self.live_of(id) {
                Some(live) => {
                    let mut rx = live.progress.subscribe();
                    let _ = tokio::time::timeout_at(
                        deadline.min(tokio::time::Instant::now() + Duration::from_millis(500)),
                        rx.changed(),
                    )
                    .await;
                }
                None => {
                    tokio::time::sleep_until(
                        deadline.min(tokio::time::Instant::now() + Duration::from_millis(200)),
                    )
                    .await;
                }
            }
            record = self.own(viewer, id).await?;
        }
    }

    /// A slice of a job's log (`job` as the progress numbers it; `None`:
    /// the engine's own log), from byte `from`, at most `max` bytes,
    /// waiting up to `wait` for more when there is none yet.
    pub async fn log(
        &self,
        viewer: &Viewer,
        id: &RunId,
        job: Option<u64>,
        from: u64,
        max: usize,
        wait: Duration,
    ) -> Result<LogChunk, Error> {
        let record = self.own(viewer, id).await?;
        let path = match job {
            Some(n) => self.run_dir(id).join("logs").join(format!("job{n}.log")),
            None => self.run_dir(id).join("engine.log"),
        };
        let deadline = tokio::time::Instant::now() + wait;
        let mut record = record;
        loop {
            let progress = self.progress(&record);
            let ended = match job {
                Some(n) => {
                    !record.state.is_active()
                        || progress
                            .jobs
                            .get(&n)
                            .is_some_and(|j| j.finished_at_ms.is_some())
                }
                None => !record.state.is_active(),
            };
            let known = job.is_none_or(|n| progress.jobs.contains_key(&n));
            if !known && !record.state.is_active() {
                return Err(Error::RunHasNo {
                    id: record.id,
                    what: "such job",
                });
            }
            let p = path.clone();
            let chunk = tokio::task::spawn_blocking(move || read_log(&p, from, max)).await??;
            if !chunk.is_empty() || ended || tokio::time::Instant::now() >= deadline {
                let next = from + chunk.len() as u64;
                let size = std::fs::metadata(&path).map_or(0, |m| m.len());
                return Ok(LogChunk {
                    text: String::from_utf8_lossy(&chunk).into_owned(),
                    next,
                    done: ended && next >= size,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            record = self.own(viewer, id).await?;
        }
    }

    /// The run's provenance crate as a zip file, made once after it ended.
    pub async fn provenance_zip(&self, viewer: &Viewer, id: &RunId) -> Result<PathBuf, Error> {
        let record = self.own(viewer, id).await?;
        if record.state.is_active() {
            return Err(Error::RunNotEnded {
                id: record.id,
                state: record.state,
                what: "its provenance can be downloaded",
            });
        }
        let dir = self.run_dir(id);
        let crate_dir = dir.join("provenance");
        if !crate_dir.join("ro-crate-metadata.json").is_file() {
            return Err(Error::RunHasNo {
                id: record.id,
                what: "provenance crate (it ended before its engine wrote one)",
            });
        }
        let zip = dir.join("provenance.zip");
        if !zip.is_file() {
            let (c, z, top) = (crate_dir, zip.clone(), format!("run-{id}"));
            tokio::task::spawn_blocking(move || publish::zip_dir(&c, &top, &z))
                .await?
                .map_err(Error::Io)?;
        }
        Ok(zip)
    }

    // ---- cancelling ----------------------------------------------------

    /// Cancels a queued or running run: its engine and everything it
    /// started end.
    pub async fn cancel(&self, viewer: &Viewer, id: &RunId) -> Result<RunRecord, Error> {
        let run = self.own(viewer, id).await?;
        let reason = format!("cancelled by {}", viewer.username);
        self.cancel_with(run, reason).await
    }

    /// Every queued and running run of every user, oldest first, with its
    /// owner's username: the operator's console.
    pub async fn operated(&self) -> Result<Vec<(RunRecord, String)>, Error> {
        let owners = crate::accounts::usernames_by_id(&self.store).await?;
        let mut runs: Vec<(RunRecord, String)> = self
            .store
            .runs_in_states(&[RunState::Running, RunState::Queued])
            .await?
            .into_iter()
            .map(|r| {
                let owner = owners.get(&r.user_id).cloned().unwrap_or_default();
                (r, owner)
            })
            .collect();
        runs.sort_by_key(|(r, _)| (r.created_at_ms, r.id.to_string()));
        Ok(runs)
    }

    /// Cancels any user's run for an operator; the run's reason, which its
    /// user reads, says who and why. A reason is required. Returns the run
    /// and its owner's username.
    pub async fn cancel_for_operator(
        &self,
        id: &RunId,
        operator: &str,
        reason: &str,
    ) -> Result<(RunRecord, String), Error> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(Error::StopReasonRequired);
        }
        let reason: String = reason
            .chars()
            .take(crate::labs::OPERATOR_REASON_CHARS)
            .collect();
        let run = self
            .store
            .run(id)
            .await?
            .ok_or_else(|| Error::RunNotFound(id.to_string()))?;
        let owner = crate::accounts::usernames_by_id(&self.store)
            .await?
            .remove(&run.user_id)
            .unwrap_or_default();
        let run = self
            .cancel_with(
                run,
                format!("cancelled by the operator {operator}: {reason}"),
            )
            .await?;
        Ok((run, owner))
    }

    async fn cancel_with(&self, mut run: RunRecord, reason: String) -> Result<RunRecord, Error> {
        let id = &run.id.clone();
        if self
            .store
            .move_run(id, RunState::Queued, RunState::Cancelled)
            .await?
        {
            run.state = RunState::Cancelled;
            run.reason = Some(reason);
            run.finished_at_ms = Some(now_ms());
            self.store.update_run(&run).await?;
            tracing::info!(run = %id, "queued run cancelled");
            return Ok(run);
        }
        if self
            .store
            .move_run(id, RunState::Running, RunState::Cancelled)
            .await?
        {
            if let Some(live) = self.live_of(id) {
                live.cancelled
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                // Waits for a start under way: its engine is then either
                // recorded here, to stop, or never started.
                if let Some(e) = live.engine.lock().await.as_mut() {
                    e.stop(STOP_GRACE).await;
                }
                live.progress.send_modify(Progress::interrupt);
            }
            let mut run = self.store.run(id).await?.unwrap_or(run);
            run.reason = Some(reason);
            run.finished_at_ms = Some(now_ms());
            run.state = RunState::Cancelled;
            self.store.update_run(&run).await?;
            self.forget(id).await;
            tracing::info!(run = %id, "running run cancelled");
            return Ok(run);
        }
        // It ended meanwhile: as it is.
        Ok(self.store.run(id).await?.unwrap_or(run))
    }

    // ---- scheduling ----------------------------------------------------

    /// Starts queued runs while slots are free, round the users in turn.
    pub async fn schedule(self: &Arc<Self>) -> Result<(), Error> {
        let _deciding = self.scheduling.lock().await;
        let running = self.store.runs_in_states(&[RunState::Running]).await?;
        let mut free = self.cfg.slots.saturating_sub(running.len());
        if free == 0 {
            return Ok(());
        }
        let queued = self.store.runs_in_states(&[RunState::Queued]).await?;
        if queued.is_empty() {
            return Ok(());
        }
        let mut busy: HashMap<UserId, usize> = HashMap::new();
        for r in &running {
            *busy.entry(r.user_id.clone()).or_default() += 1;
        }
        let mut users: Vec<UserId> = queued.iter().map(|r| r.user_id.clone()).collect();
        users.sort();
        users.dedup();
        let mut taken: Vec<&RunId> = Vec::new();
        let mut last = self.last_served.lock().ok().and_then(|l| l.clone());
        while free > 0 {
            // The users after the last one served, then from the start.
            let after = last
                .as_ref()
                .map_or(0, |l| users.iter().position(|u| u > l).unwrap_or(0));
            let turn = users.iter().cycle().skip(after).take(users.len());
            let next = turn
                .filter(|u| busy.get(*u).copied().unwrap_or(0) < self.cfg.max_running_per_user)
                .find_map(|u| {
                    queued
                        .iter()
                        .find(|r| r.user_id == *u && !taken.contains(&&r.id))
                });
            let Some(run) = next else { break };
            taken.push(&run.id);
            // Known as live before it is running: a cancel that lands
            // while it starts finds it, and its start sees the cancel.
            let live = Live::new(None, self.network_of(run));
            if let Ok(mut l) = self.live.lock() {
                l.insert(run.id.clone(), Arc::clone(&live));
            }
            let moved = self
                .store
                .move_run(&run.id, RunState::Queued, RunState::Running)
                .await;
            if !matches!(moved, Ok(true)) {
                if let Ok(mut l) = self.live.lock() {
                    l.remove(&run.id);
                }
                // Cancelled meanwhile, or the store failed.
                moved?;
                continue;
            }
            *busy.entry(run.user_id.clone()).or_default() += 1;
            free -= 1;
            last = Some(run.user_id.clone());
            if let Ok(mut l) = self.last_served.lock() {
                *l = last.clone();
            }
            let mut run = run.clone();
            run.state = RunState::Running;
            let me = Arc::clone(self);
            tokio::spawn(async move {
                let id = run.id.clone();
                match me.start(&mut run, &live).await {
                    Ok(true) => me.follow(run, live),
                    Ok(false) => {
                        tracing::info!(run = %id, "run cancelled while it started: not started");
                        me.forget(&id).await;
                    }
                    Err(e) => {
                        tracing::warn!(run = %id, error = %e, "run failed to start");
                        let reason = format!("the run could not start: {e}");
                        me.finish_with(&mut run, RunState::Failed, Some(reason), None)
                            .await;
                    }
                }
            });
        }
        Ok(())
    }

    /// Prepares a run's directory and starts its engine, unless the run
    /// was cancelled meanwhile; whether it started. A cancel that lands
    /// while the engine starts finds it recorded in `live`, or, where it
    /// lands before the engine is recorded in the store, the engine is
    /// stopped here.
    async fn start(&self, run: &mut RunRecord, live: &Live) -> Result<bool, Error> {
        let engine = self
            .pipelines
            .engine()
            .map(Path::to_path_buf)
            .ok_or(Error::NoEngine)?;
        let username = self
            .store
            .username_of(&run.user_id)
            .await?
            .ok_or(Error::AccountGone)?;
        let viewer = Viewer {
            user_id: run.user_id.clone(),
            username,
        };
        let reference: PipelineRef = run
            .pipeline
            .parse()
            .map_err(|_| Error::PipelineNotFound(run.pipeline.clone()))?;
        let version = self
            .pipelines
            .version(&viewer, &reference, Some(&run.version))
            .await?;
        let user_job: Value =
            serde_json::from_str(&run.job).map_err(|e| Error::InvalidJob(e.to_string()))?;
        let places = self.places(&viewer).await?;
        // The files are looked at again: they may have changed while the
        // run waited.
        let host = job::to_host(&user_job, &places).map_err(Error::InvalidJob)?;
        let dir = self.run_dir(&run.id);
        let workspace = places.workspace.clone();
        let cache = self.cache_dir(&run.user_id, &run.lineage);
        let run_as = self.cfg.run_as;
        {
            let (dir, cache, version_files) = (dir.clone(), cache.clone(), version.files.clone());
            let job_text = serde_json::to_vec_pretty(&host.job)
                .map_err(|e| Error::InvalidJob(e.to_string()))?;
            tokio::task::spawn_blocking(move || {
                prepare_run_dir(&dir, &cache, &workspace, run_as, &version_files, &job_text)
            })
            .await?
            .map_err(Error::Io)?;
        }
        let mut args: Vec<OsString> = vec![
            "run".into(),
            "--quiet".into(),
            "--outdir".into(),
            dir.join("out").into(),
            "--events".into(),
            dir.join("events.jsonl").into(),
            "--step-logs".into(),
            dir.join("logs").into(),
            "--workdir".into(),
            dir.join("work").into(),
            "--provenance".into(),
            dir.join("provenance").into(),
            "--cachedir".into(),
            cache.into(),
            format!("--parallel={}", self.cfg.parallel).into(),
            "--run-as".into(),
            format!("{}:{}", run_as.0, run_as.1).into(),
            "--allow-root".into(),
            dir.clone().into(),
        ];
        for root in &host.roots {
            args.extend(["--allow-root".into(), root.clone().into()]);
        }
        for h in &self.cfg.hidden {
            args.extend(["--hide".into(), h.clone().into()]);
        }
        for e in &self.cfg.expose {
            args.extend(["--sandbox-expose".into(), e.clone().into()]);
        }
        // A run in a Slurm zone sends its tool jobs to the cluster.
        if let Some(cluster) = self.zones.cluster(run.zone.as_str()) {
            args.push("--slurm".into());
            if let Some(conf) = cluster.conf {
                args.extend(["--slurm-conf".into(), conf.into()]);
            }
            if let Some(p) = cluster.partition {
                args.extend(["--slurm-partition".into(), p.into()]);
            }
            if let Some(a) = cluster.account {
                args.extend(["--slurm-account".into(), a.into()]);
            }
        }
        args.push(dir.join("pipeline").join(&version.meta.main).into());
        args.push(dir.join("job.json").into());
        let mut path: Vec<String> = self
            .cfg
            .tool_path
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        path.extend(["/usr/local/bin", "/usr/bin", "/bin"].map(str::to_owned));
        let env = vec![
            ("PATH".to_owned(), path.join(":")),
            ("HOME".to_owned(), dir.display().to_string()),
            ("TMPDIR".to_owned(), dir.join("tmp").display().to_string()),
            ("LANG".to_owned(), "C.UTF-8".to_owned()),
            (
                "INSITU_BWRAP".to_owned(),
                self.cfg.bwrap.display().to_string(),
            ),
        ];
        let network = if let Some(name) = self.network_of(run) {
            let n = name.clone();
            let ns = tokio::task::spawn_blocking(move || NetNs::ensure(&n))
                .await?
                .map_err(|e| Error::EngineFailed(e.to_string()))?;
            Some((name, ns))
        } else {
            None
        };
        let limits = Limits {
            memory_bytes: None,
            cpus: None,
            max_pids: (self.cfg.max_processes > 0).then_some(self.cfg.max_processes),
        };
        let group = run.id.to_string();
        let mut slot = live.engine.lock().await;
        let still_running = self
            .store
            .run(&run.id)
            .await?
            .is_some_and(|r| r.state == RunState::Running);
        if live.is_cancelled() || !still_running {
            return Ok(false);
        }
        let process = EngineProcess::start(&Launch {
            program: &engine,
            args,
            env,
            dir: &dir,
            stdout: &dir.join("output.json"),
            stderr: &dir.join("engine.log"),
            netns: network.as_ref().map(|(_, ns)| ns),
            cgroup: self.cgroups().map(|c| (c, group.as_str(), limits)),
        })
        .map_err(|e| Error::EngineFailed(format!("cannot start the engine: {e}")))?;
        let (pid, pid_start, started) = (
            i64::from(process.pid),
            i64::try_from(process.start_ticks).ok(),
            now_ms(),
        );
        *slot = Some(process);
        let recorded = self
            .store
            .record_run_start(&run.id, pid, pid_start, started)
            .await;
        if !matches!(recorded, Ok(true)) {
            // Cancelled while the engine started (or not recorded): the
            // engine and all it began end now.
            if let Some(mut e) = slot.take() {
                e.stop(STOP_GRACE).await;
            }
            return recorded.map_err(Error::from);
        }
        (run.pid, run.pid_start, run.started_at_ms) = (Some(pid), pid_start, Some(started));
        tracing::info!(run = %run.id, pid, "run started");
        Ok(true)
    }

    /// Follows again, after a restart, a run of an earlier platform
    /// process (its engine, or `None` where it finished meanwhile).
    fn adopt(
        self: &Arc<Self>,
        run: RunRecord,
        process: Option<EngineProcess>,
        network: Option<String>,
    ) {
        let live = Live::new(process, network);
        if let Ok(mut l) = self.live.lock() {
            l.insert(run.id.clone(), Arc::clone(&live));
        }
        self.follow(run, live);
    }

    /// Follows a running run until it ends, then finishes it.
    fn follow(self: &Arc<Self>, run: RunRecord, live: Arc<Live>) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut reader = EventReader::new(&me.run_dir(&run.id).join("events.jsonl"));
            loop {
                let events = reader.read_new();
                if !events.is_empty() {
                    live.progress.send_modify(|p| {
                        for e in events {
                            p.apply(e);
                        }
                    });
                }
                if live.is_cancelled() {
                    return;
                }
                let ended = match live.engine.lock().await.as_mut() {
                    Some(e) => e.ended(),
                    None => Some(None),
                };
                if let Some(code) = ended {
                    // What it wrote last, before it ended.
                    let events = reader.read_new();
                    live.progress.send_modify(|p| {
                        for e in events {
                            p.apply(e);
                        }
                    });
                    me.finish(run, code).await;
                    return;
                }
                tokio::time::sleep(FOLLOW_EVERY).await;
            }
        });
    }

    /// A run whose engine ended: its outputs published and its state
    /// recorded as the engine said (or failed, if it said nothing).
    async fn finish(&self, mut run: RunRecord, code: Option<i32>) {
        let dir = self.run_dir(&run.id);
        let progress = self
            .live_of(&run.id)
            .map(|l| l.progress.borrow().clone())
            .unwrap_or_else(|| progress::read_all(&dir.join("events.jsonl")));
        let (state, reason, outputs) =
            match &progress.end {
                Some(end) if end.succeeded => match self.publish(&run).await {
                    Ok(outputs) => (RunState::Succeeded, None, Some(outputs)),
                    Err(e) => (
                        RunState::Failed,
                        Some(format!(
                            "the outputs could not be put in your workspace: {e}"
                        )),
                        None,
                    ),
                },
                Some(end) => (
                    RunState::Failed,
                    Some(end.error.clone().unwrap_or_else(|| {
                        format!("the engine failed (exit code {})", end.exit_code)
                    })),
                    None,
                ),
                None => {
                    let tail =
                        insitu_launcher::process::log_tail(&dir.join("engine.log"), 3).join(" | ");
                    (
                        RunState::Failed,
                        Some(format!(
                            "the engine ended ({}) without finishing the run{}",
                            code.map_or("killed, or its exit status unknown".into(), |c| format!(
                                "exit code {c}"
                            )),
                            if tail.is_empty() {
                                String::new()
                            } else {
                                format!("; its last words: {tail}")
                            }
                        )),
                        None,
                    )
                }
            };
        self.finish_with(&mut run, state, reason, outputs).await;
    }

    /// Records how a running run ended (unless it was cancelled
    /// meanwhile) and lets its resources go.
    async fn finish_with(
        &self,
        run: &mut RunRecord,
        state: RunState,
        reason: Option<String>,
        outputs: Option<String>,
    ) {
        match self.store.move_run(&run.id, RunState::Running, state).await {
            Ok(true) => {
                run.state = state;
                run.reason = reason;
                run.outputs = outputs;
                run.finished_at_ms = Some(now_ms());
                if let Err(e) = self.store.update_run(run).await {
                    tracing::error!(run = %run.id, error = %e, "could not record how a run ended");
                }
                tracing::info!(run = %run.id, state = %state, reason = ?run.reason, "run ended");
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!(run = %run.id, error = %e, "could not record how a run ended")
            }
        }
        self.forget(&run.id).await;
    }

    /// Lets a run's engine, network and follower go, and wakes the
    /// scheduler: a slot is free.
    async fn forget(&self, id: &RunId) {
        let live = self.live.lock().ok().and_then(|mut l| l.remove(id));
        let network = match &live {
            Some(l) => {
                if let Some(e) = l.engine.lock().await.as_mut() {
                    e.release().await;
                }
                l.network.clone()
            }
            None => self.cfg.network_per_run.then(|| Self::network_name(id)),
        };
        if let Some(name) = network.filter(|n| NetNs::exists(n)) {
            let _ = tokio::task::spawn_blocking(move || NetNs::delete(&name)).await;
        }
        self.wake.notify_one();
    }

    /// Copies the outputs into the workspace; the output object as the
    /// user sees it.
    async fn publish(&self, run: &RunRecord) -> Result<String, Error> {
        let dir = self.run_dir(&run.id);
        let text = std::fs::read_to_string(dir.join("output.json")).map_err(Error::Io)?;
        let mut outputs: Value = serde_json::from_str(&text)
            .map_err(|e| Error::EngineFailed(format!("unreadable output object: {e}")))?;
        let username = self
            .store
            .username_of(&run.user_id)
            .await?
            .ok_or(Error::AccountGone)?;
        let workspace = self.labs.workspace_of(username.as_str());
        publish::Publisher {
            bwrap: &self.cfg.bwrap,
            run_as: self.cfg.run_as,
            hidden: &self.cfg.hidden,
        }
        .publish(
            run.id.as_str(),
            &dir.join("out"),
            &workspace,
            &dir.join("publish.log"),
        )
        .await
        .map_err(|e| Error::EngineFailed(e.to_string()))?;
        let out = dir.join("out").canonicalize().map_err(Error::Io)?;
        job::to_user(&mut outputs, &out, &Self::outputs_seen_at(&run.id));
        serde_json::to_string(&outputs).map_err(|e| Error::EngineFailed(e.to_string()))
    }

    // ---- restarts and upkeep -------------------------------------------

    /// After a restart: follows again the runs whose engine still runs;
    /// finishes those whose engine finished meanwhile; queues again, to
    /// resume from their cache, those whose engine is gone unfinished.
    pub async fn adopt_all(self: &Arc<Self>) -> Result<(), Error> {
        for mut run in self.store.runs_in_states(&[RunState::Running]).await? {
            let group = run.id.to_string();
            let adopted = match (run.pid, run.pid_start) {
                (Some(pid), Some(start)) => u32::try_from(pid)
                    .ok()
                    .zip(u64::try_from(start).ok())
                    .and_then(|(pid, start)| {
                        EngineProcess::adopt(
                            pid,
                            start,
                            self.cgroups().map(|c| (c, group.as_str())),
                        )
                    }),
                _ => None,
            };
            let network = self.network_of(&run);
            match adopted {
                Some(p) => {
                    tracing::info!(run = %run.id, pid = p.pid, "run re-adopted after restart");
                    self.adopt(run, Some(p), network);
                }
                None => {
                    let events = progress::read_all(&self.run_dir(&run.id).join("events.jsonl"));
                    if events.end.is_some() {
                        tracing::info!(run = %run.id, "run finished while the platform was down");
                        self.adopt(run, None, network);
                    } else {
                        self.requeue(&mut run).await?;
                    }
                }
            }
        }
        self.wake.notify_one();
        Ok(())
    }

    /// A run whose engine is gone unfinished goes back to the queue.
    async fn requeue(&self, run: &mut RunRecord) -> Result<(), Error> {
        if let Some(c) = self.cgroups() {
            let (c, n) = (c.clone(), run.id.to_string());
            let _ = tokio::task::spawn_blocking(move || c.kill_and_remove(&n)).await;
        }
        if !self
            .store
            .move_run(&run.id, RunState::Running, RunState::Queued)
            .await?
        {
            return Ok(());
        }
        let events = self.run_dir(&run.id).join("events.jsonl");
        let done = progress::read_all(&events)
            .jobs
            .values()
            .filter(|j| j.finished_at_ms.is_some())
            .count();
        // The next start writes a fresh stream.
        let _ = std::fs::rename(
            &events,
            events.with_extension(format!("jsonl.{}", now_ms())),
        );
        run.state = RunState::Queued;
        run.pid = None;
        run.pid_start = None;
        run.notice = Some(format!(
            "the platform restarted while this run ran, and its engine was gone: it was queued again \
             and resumes from its cache ({done} finished jobs are reused; jobs that were running run again)"
        ));
        self.store.update_run(run).await?;
        self.forget(&run.id).await;
        tracing::warn!(run = %run.id, "run queued again after a restart");
        Ok(())
    }

    /// The scheduler: wakes when runs are queued or end, and each second.
    pub async fn keep_scheduling(self: Arc<Self>) {
        loop {
            if let Err(e) = self.schedule().await {
                tracing::warn!(error = %e, "could not schedule runs");
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), self.wake.notified()).await;
        }
    }

    /// Removes the job directories and caches of runs that ended longer
    /// than `pipelines.keep_intermediate` ago; outputs, logs, events and
    /// provenance stay.
    pub async fn sweep(&self) -> Result<usize, Error> {
        let Some(keep) = self.cfg.keep_intermediate else {
            return Ok(0);
        };
        let before = now_ms() - i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
        let mut cleaned = 0;
        for mut run in self.store.runs_to_clean(before).await? {
            let dir = self.run_dir(&run.id);
            for sub in ["work", "tmp"] {
                remove_all(&dir.join(sub));
            }
            let chain = self.store.runs_of_lineage(&run.lineage).await?;
            let chain_done = chain
                .iter()
                .all(|r| !r.state.is_active() && r.finished_at_ms.is_some_and(|f| f < before));
            if chain_done {
                remove_all(&self.cache_dir(&run.user_id, &run.lineage));
            }
            run.cleaned_at_ms = Some(now_ms());
            self.store.update_run(&run).await?;
            cleaned += 1;
        }
        if cleaned > 0 {
            tracing::info!(runs = cleaned, "intermediate files of ended runs removed");
        }
        Ok(cleaned)
    }
}

fn remove_all(p: &Path) {
    match std::fs::remove_dir_all(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            tracing::warn!(path = %p.display(), error = %e, "cannot remove a run's files");
        }
        _ => {}
    }
}

/// A run's directory: the pipeline's files, the job order, and the places
/// the engine writes; the chain's cache; the user's workspace (made as a
/// lab would make it, for a user who never launched one).
fn prepare_run_dir(
    dir: &Path,
    cache: &Path,
    workspace: &Path,
    (uid, gid): (u32, u32),
    files: &std::collections::BTreeMap<String, String>,
    job: &[u8],
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    // The tools' user passes through to its job directories.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))?;
    for sub in ["logs", "tmp"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    crate::pipelines::write_files(&dir.join("pipeline"), files)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    std::fs::write(dir.join("job.json"), job)?;
    std::fs::create_dir_all(cache)?;
    // The workspace belongs to the labs' user, as a lab's launch makes
    // it, whoever made it first.
    std::fs::create_dir_all(workspace)?;
    std::os::unix::fs::chown(workspace, Some(uid), Some(gid))?;
    Ok(())
}

/// At most `max` bytes of a log from `from`; never through a link, only
/// from a regular file (empty while there is none).
fn read_log(path: &Path, from: u64, max: usize) -> Result<Vec<u8>, Error> {
    use std::io::{Read, Seek, SeekFrom};
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path);
    let mut f = match f {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::Io(e)),
    };
    if !f.metadata().map_err(Error::Io)?.is_file() {
        return Ok(Vec::new());
    }
    f.seek(SeekFrom::Start(from)).map_err(Error::Io)?;
    let mut buf = Vec::new();
    f.take(max as u64)
        .read_to_end(&mut buf)
        .map_err(Error::Io)?;
    Ok(buf)
}
