//! The Slurm executor (`--slurm`): CommandLineTool jobs run on a Slurm
//! cluster, in the same bubblewrap sandbox as on this machine, with the
//! cores, memory and GPUs (GRES `gpu:N`) their requirements ask for.
//!
//! Submitting a batch job costs seconds (`sbatch --wait` polls), which
//! would dominate a scatter of small jobs, so by default jobs share
//! *allocations* the run holds ([`Grouping::Allocations`]): one `srun`
//! per allocation, which asks Slurm for room for `k` jobs of one size
//! (`k`: the jobs of that size waiting, at most what fits on the partition's
//! largest node and `--parallel`) and runs
//! this engine's spawner ([`crate::spawner`]) inside a run sandbox on the
//! node; jobs of that size are then fed to it as JSON lines, several at a
//! time and one after another, with no scheduler round trip. A job of
//! another size gets an allocation of its own size; a job the allocation's
//! sandbox cannot show (network, paths outside the run) is a batch job of
//! its own. An allocation with no job for `--slurm-idle` seconds is
//! released; at the end of the run all are, and every Slurm job still
//! carrying the run's name is cancelled (`scancel --name`), as when the
//! engine is stopped (SIGTERM, see [`cancel_all`]). An allocation that
//! ends under its jobs (`scancel` from outside, node failure) fails them
//! with the state Slurm gives.
//!
//! [`Grouping::None`] (`--slurm-grouping none`) makes every job a batch
//! job of its own (`sbatch --wait`), with its time limit from
//! `ToolTimeLimit`, for comparison and for clusters that forbid `srun`.
//!
//! The node must see the same paths as this machine: the run's directory
//! (`--workdir`), the inputs, the engine's binary, `bwrap` and the tools.
//! Containers (`DockerRequirement`) still run on this machine.

use crate::error::{CwlError, Result};
use crate::events::{Event, Events, now_ms};
use crate::executor::{CommandSpec, ExecFuture, Executor, JobResources};
use crate::options::{Grouping, SlurmOptions};
use crate::sandbox::SandboxExecutor;
use crate::spawner::{Launch, RunSandbox};
use std::ffi::OsString;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// What the first line of an allocation says (its `srun` task, before
/// bubblewrap starts): the job, the node, the GPUs Slurm gave.
const HELLO: &str = r#"printf '{"slurm_job":"%s","node":"%s","gpus":"%s"}\n' "$SLURM_JOB_ID" "${SLURMD_NODENAME-}" "${CUDA_VISIBLE_DEVICES-}"; exec "$@""#;

/// A value in a job's environment that the batch script fills in from its
/// own (the GPUs Slurm gave it).
const FROM_SLURM: &str = "\u{1}slurm:";

/// Runs jobs on a Slurm cluster.
pub struct SlurmExecutor {
    opts: SlurmOptions,
    per_job: SandboxExecutor,
    /// The run's directory (batch scripts go there).
    root: PathBuf,
    read_only: Vec<PathBuf>,
    writable: Vec<PathBuf>,
    events: Option<Arc<Events>>,
    parallel: usize,
    /// Say nothing on standard error.
    quiet: bool,
    pool: Arc<Pool>,
    node: tokio::sync::OnceCell<Option<NodeSize>>,
    scripts: AtomicU64,
}

/// The allocations held, by size.
#[derive(Default)]
struct Pool {
    allocs: Mutex<Vec<Arc<Alloc>>>,
    /// Sizes whose allocation is being started.
    starting: Mutex<Vec<JobResources>>,
    /// Why the last start of a size failed.
    failed: Mutex<Vec<(JobResources, String)>>,
    /// A slot was freed, an allocation started or failed to.
    changed: Notify,
    /// Jobs waiting for a slot, by size.
    waiting: Mutex<std::collections::HashMap<JobResources, usize>>,
}

/// A job counted among those waiting for a slot of its size while it
/// lives.
struct Waiting<'a> {
    pool: &'a Pool,
    shape: JobResources,
}

impl<'a> Waiting<'a> {
    fn new(pool: &'a Pool, shape: JobResources) -> Self {
        *lock(&pool.waiting).entry(shape).or_default() += 1;
        Waiting { pool, shape }
    }

    /// Jobs of this size waiting now (this one included).
    fn count(&self) -> usize {
        lock(&self.pool.waiting)
            .get(&self.shape)
            .copied()
            .unwrap_or(1)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(n) = lock(&self.pool.waiting).get_mut(&self.shape) {
            *n = n.saturating_sub(1);
        }
    }
}

/// One allocation: an `srun` running a spawner in a run sandbox.
struct Alloc {
    /// The size of the jobs it runs.
    shape: JobResources,
    slots: Arc<Semaphore>,
    size: u32,
    sandbox: RunSandbox,
    slurm_job: String,
    node: Option<String>,
    gpus: Option<String>,
    /// Counts jobs given to it, to tell whether it stayed idle.
    used: AtomicU64,
}

/// The largest node of the partition.
#[derive(Clone, Copy, Debug)]
struct NodeSize {
    cpus: u64,
    ram_mib: u64,
}

impl SlurmExecutor {
    /// An executor for a run under `root` whose inputs are `read_only`,
    /// sandboxed like `per_job`, with at most `parallel` jobs at a time.
    pub fn new(
        opts: SlurmOptions,
        per_job: SandboxExecutor,
        root: PathBuf,
        read_only: Vec<PathBuf>,
        writable: Vec<PathBuf>,
        parallel: usize,
        quiet: bool,
    ) -> Self {
        SlurmExecutor {
            opts,
            per_job,
            root,
            read_only,
            writable,
            events: None,
            parallel: parallel.max(1),
            quiet,
            pool: Arc::default(),
            node: tokio::sync::OnceCell::new(),
            scripts: AtomicU64::new(0),
        }
    }

    /// The same executor telling `events` where each job ran.
    pub fn reporting(mut self, events: Option<Arc<Events>>) -> Self {
        self.events = events;
        self
    }

    fn placed(&self, spec: &CommandSpec, slurm_job: &str, node: Option<&str>) {
        if let (Some(ev), Some(job)) = (&self.events, spec.job) {
            ev.emit(&Event::JobPlaced {
                job,
                at_ms: now_ms(),
                slurm_job,
                node,
            });
        }
    }

    /// The partition's largest node, asked of `sinfo` once.
    async fn node_size(&self) -> Option<NodeSize> {
        *self
            .node
            .get_or_init(|| async {
                let mut cmd = slurm_command(&self.opts, "sinfo");
                cmd.args(["-h", "-N", "-o", "%c %m"]);
                if let Some(p) = &self.opts.partition {
                    cmd.args(["-p", p]);
                }
                let out = cmd.output().await.ok()?;
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter_map(|l| {
                        let mut f = l.split_whitespace();
                        let num = |s: Option<&str>| s?.trim_end_matches('+').parse::<u64>().ok();
                        Some(NodeSize {
                            cpus: num(f.next())?,
                            ram_mib: num(f.next())?,
                        })
                    })
                    .max_by_key(|n| (n.cpus, n.ram_mib))
            })
            .await
    }

    /// `spec` asking for at most the largest node's cores and memory (as
    /// a job asking for more than this machine has gets all of it
    /// locally), with a warning; `None` when it fits as it is.
    async fn fit(&self, spec: &CommandSpec) -> Option<CommandSpec> {
        let node = self.node_size().await?;
        let want = spec.resources;
        let cores = want.cores.clamp(1, node.cpus.max(1));
        let ram_mib = want.ram_mib.min(node.ram_mib);
        if (cores, ram_mib) == (want.cores, want.ram_mib) {
            return None;
        }
        crate::log::Log { quiet: self.quiet }.line(&format!(
            "a job asks for {} cores and {} MiB; the largest node has {} and {}: it gets {cores} and {ram_mib}",
            want.cores, want.ram_mib, node.cpus, node.ram_mib
        ));
        let mut fitted = spec.clone();
        fitted.resources = JobResources {
            cores,
            ram_mib,
            ..want
        };
        Some(fitted)
    }

    /// How many jobs of size `shape` one allocation holds: as many as wait
    /// for one (`demand`), at most as many as fit on the largest node and
    /// `--parallel`; one for GPU jobs. A lone job does not hold a node.
    async fn slots_for(&self, shape: JobResources, demand: usize) -> u32 {
        let Some(node) = self.node_size().await else {
            return 1;
        };
        if shape.gpus > 0 {
            return 1;
        }
        let mut k = self.parallel.min(demand.max(1)) as u64;
        k = k.min(node.cpus / shape.cores.max(1));
        if let Some(n) = node.ram_mib.checked_div(shape.ram_mib) {
            k = k.min(n);
        }
        u32::try_from(k.max(1)).unwrap_or(1)
    }

    /// A free slot of an allocation of size `shape`, starting one when
    /// none is free and fewer than `--slurm-max-allocations` are held.
    async fn slot(&self, shape: JobResources) -> Result<(Arc<Alloc>, OwnedSemaphorePermit)> {
        let waiting = Waiting::new(&self.pool, shape);
        loop {
            let changed = self.pool.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let held: Vec<Arc<Alloc>> = lock(&self.pool.allocs)
                .iter()
                .filter(|a| a.shape == shape && a.sandbox.alive())
                .cloned()
                .collect();
            for a in &held {
                if let Ok(p) = a.slots.clone().try_acquire_owned() {
                    a.used.fetch_add(1, Ordering::SeqCst);
                    return Ok((a.clone(), p));
                }
            }
            let starting = lock(&self.pool.starting).contains(&shape);
            if !starting {
                // A size Slurm refused is not asked for again: with
                // allocations held, jobs wait for them; without, they fail.
                match failure(&self.pool, shape) {
                    Some(why) if held.is_empty() => return Err(CwlError::Execution(why)),
                    Some(_) => {}
                    None if held.len() < self.opts.max_allocations.max(1) => {
                        lock(&self.pool.starting).push(shape);
                        self.start_allocation(shape, waiting.count()).await;
                    }
                    None => {}
                }
            }
            changed.await;
        }
    }

    /// Start an allocation of size `shape` in the background; the pool
    /// hears when it is up or why not.
    async fn start_allocation(&self, shape: JobResources, demand: usize) {
        let size = self.slots_for(shape, demand).await;
        let mut prefix: Vec<OsString> = vec!["srun".into()];
        prefix.extend(
            allocation_args(&self.opts, shape, size, &self.root)
                .into_iter()
                .map(OsString::from),
        );
        prefix.extend(["sh", "-c", HELLO, "sh"].map(OsString::from));
        let how = Launch {
            prefix,
            env: slurm_env(&self.opts),
            wait: None,
        };
        let (base, root, ro, rw) = (
            self.per_job.clone(),
            self.root.clone(),
            self.read_only.clone(),
            self.writable.clone(),
        );
        let (pool, opts) = (self.pool.clone(), self.opts.clone());
        tokio::spawn(async move {
            let started = RunSandbox::launch(&base, &root, ro, &rw, how).await;
            lock(&pool.starting).retain(|s| *s != shape);
            match started {
                Ok(sandbox) => {
                    let hello = sandbox.hello().unwrap_or_default();
                    let text = |k: &str| {
                        hello
                            .get(k)
                            .and_then(serde_json::Value::as_str)
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                    };
                    let alloc = Alloc {
                        shape,
                        slots: Arc::new(Semaphore::new(size as usize)),
                        size,
                        slurm_job: text("slurm_job").unwrap_or_else(|| "?".into()),
                        node: text("node"),
                        gpus: text("gpus"),
                        sandbox,
                        used: AtomicU64::new(0),
                    };
                    let alloc = Arc::new(alloc);
                    lock(&pool.allocs).push(alloc.clone());
                    // Also when no job ever comes (one freed elsewhere
                    // took the waiting job).
                    release_when_idle(&pool, &alloc, &opts);
                }
                Err(why) => lock(&pool.failed).push((
                    shape,
                    format!(
                        "Slurm gave no allocation for {} cores, {} MiB, {} GPUs \
                         (srun's message above): {why}",
                        shape.cores * u64::from(size),
                        shape.ram_mib * u64::from(size),
                        shape.gpus
                    ),
                )),
            }
            pool.changed.notify_waiters();
        });
    }

    /// Run `spec` in an allocation's sandbox.
    async fn run_grouped(&self, spec: &CommandSpec) -> Result<i32> {
        let (alloc, permit) = self.slot(spec.resources).await?;
        if !alloc.sandbox.can_run(spec) {
            drop(permit);
            self.pool.changed.notify_waiters();
            return self.run_batch(spec).await;
        }
        self.placed(spec, &alloc.slurm_job, alloc.node.as_deref());
        let mut spec = spec.clone();
        if let Some(g) = &alloc.gpus {
            spec.env.insert("CUDA_VISIBLE_DEVICES".into(), g.clone());
        }
        let r = alloc.sandbox.run(&spec).await;
        let r = match r {
            Err(_) if !alloc.sandbox.alive() => {
                let prog = spec.argv.first().map(String::as_str).unwrap_or("");
                let state = job_state(&self.opts, &alloc.slurm_job).await;
                lock(&self.pool.allocs).retain(|a| !Arc::ptr_eq(a, &alloc));
                Err(CwlError::Execution(format!(
                    "Slurm job {} on {} ended while '{prog}' ran: {}",
                    alloc.slurm_job,
                    alloc.node.as_deref().unwrap_or("its node"),
                    state.describe()
                )))
            }
            other => other,
        };
        drop(permit);
        self.pool.changed.notify_waiters();
        release_when_idle(&self.pool, &alloc, &self.opts);
        r
    }

    /// Run `spec` as a batch job of its own and wait for it.
    async fn run_batch(&self, spec: &CommandSpec) -> Result<i32> {
        let prog = spec.argv.first().map(String::as_str).unwrap_or("");
        let n = self.scripts.fetch_add(1, Ordering::SeqCst);
        let script = self.root.join(format!("slurm-job{n}.sh"));
        let output = match &spec.log {
            Some(l) => l.clone(),
            None => self.root.join(format!("slurm-job{n}.out")),
        };
        let mut spec = spec.clone();
        if spec.resources.gpus > 0 {
            spec.env.insert(
                "CUDA_VISIBLE_DEVICES".into(),
                format!("{FROM_SLURM}CUDA_VISIBLE_DEVICES"),
            );
        }
        std::fs::write(&script, batch_script(&self.per_job, &spec))?;
        let mut cmd = slurm_command(&self.opts, "sbatch");
        cmd.args(["--parsable", "--wait"])
            .args(job_args(&self.opts, spec.resources, 1))
            .args(
                spec.timeout
                    .map(|t| format!("--time={}", t.as_secs().div_ceil(60) + 1)),
            )
            .arg("--open-mode=append")
            .arg(format!("--output={}", output.display()))
            .arg(format!("--chdir={}", spec.cwd.display()))
            .arg(&script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| CwlError::Execution(format!("cannot run sbatch: {e}")))?;
        let mut lines = child
            .stdout
            .take()
            .map(|o| tokio::io::BufReader::new(o).lines());
        let id = match &mut lines {
            Some(l) => l.next_line().await.ok().flatten().unwrap_or_default(),
            None => String::new(),
        };
        let id = id.split(';').next().unwrap_or("").trim().to_string();
        let wait = async {
            match spec.timeout {
                Some(t) => tokio::time::timeout(t, child.wait_with_output()).await,
                None => Ok(child.wait_with_output().await),
            }
        };
        tokio::pin!(wait);
        // Where it runs is told once it runs (or, at the latest, once it ended).
        let mut told = false;
        let waited = tokio::select! {
            w = &mut wait => w,
            () = self.tell_when_running(&spec, &id) => {
                told = true;
                wait.await
            }
        };
        let out = match waited {
            Ok(out) => out?,
            Err(_) => {
                cancel_job(&self.opts, &id).await;
                return Err(CwlError::Execution(format!(
                    "'{prog}' exceeded the time limit of {:?}",
                    spec.timeout.unwrap_or_default()
                )));
            }
        };
        if id.is_empty() {
            return Err(CwlError::Execution(format!(
                "Slurm refused the job of '{prog}': {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let state = job_state(&self.opts, &id).await;
        if !told {
            self.placed(&spec, &id, state.node.as_deref());
        }
        if spec.log.is_none()
            && let Ok(text) = std::fs::read_to_string(&output)
        {
            eprint!("{text}");
        }
        match state.state.as_deref() {
            Some("COMPLETED") | Some("FAILED") => Ok(state.exit_code.unwrap_or(1)),
            None => Ok(out.status.code().unwrap_or(1)),
            Some(_) => Err(CwlError::Execution(format!(
                "Slurm job {id} on {} ended while '{prog}' ran: {}",
                state.node.as_deref().unwrap_or("its node"),
                state.describe()
            ))),
        }
    }
}

impl SlurmExecutor {
    /// Report batch job `id` of `spec` as placed once Slurm runs it
    /// (asking `squeue` every half second); never returns before.
    async fn tell_when_running(&self, spec: &CommandSpec, id: &str) {
        if id.is_empty() {
            return std::future::pending().await;
        }
        loop {
            let mut cmd = slurm_command(&self.opts, "squeue");
            cmd.args(["-h", "-j", id, "-o", "%T %N"])
                .stderr(Stdio::null());
            if let Ok(out) = cmd.output().await {
                let text = String::from_utf8_lossy(&out.stdout);
                let mut f = text.split_whitespace();
                if f.next() == Some("RUNNING") {
                    self.placed(spec, id, f.next());
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

impl Executor for SlurmExecutor {
    fn run<'a>(&'a self, spec: &'a CommandSpec) -> ExecFuture<'a> {
        Box::pin(async move {
            if spec.argv.is_empty() {
                return Err(CwlError::Execution("empty command line".into()));
            }
            let fitted = self.fit(spec).await;
            let spec = fitted.as_ref().unwrap_or(spec);
            match self.opts.grouping {
                Grouping::None => self.run_batch(spec).await,
                Grouping::Allocations => self.run_grouped(spec).await,
            }
        })
    }

    fn shutdown(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let held: Vec<Arc<Alloc>> = std::mem::take(&mut *lock(&self.pool.allocs));
            for a in &held {
                release(&self.opts, a).await;
            }
            cancel_named(&self.opts).await;
        })
    }
}

impl Drop for SlurmExecutor {
    /// Whatever ended the run, no job of it stays on the cluster.
    fn drop(&mut self) {
        let mut cmd = std::process::Command::new("scancel");
        cmd.args(["--quiet", "--name", &self.opts.job_name])
            .env_clear()
            .envs(slurm_env(&self.opts))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = cmd.status();
    }
}

/// Cancel every Slurm job of the run `opts` names (the engine is being
/// stopped).
pub async fn cancel_all(opts: &SlurmOptions) {
    cancel_named(opts).await;
}

async fn cancel_named(opts: &SlurmOptions) {
    let mut cmd = slurm_command(opts, "scancel");
    cmd.args(["--quiet", "--name", &opts.job_name])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _ = cmd.status().await;
}

async fn cancel_job(opts: &SlurmOptions, id: &str) {
    if id.is_empty() {
        return;
    }
    let mut cmd = slurm_command(opts, "scancel");
    cmd.args(["--quiet", id])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _ = cmd.status().await;
}

/// Release `alloc` once it has had no job for `--slurm-idle`.
fn release_when_idle(pool: &Arc<Pool>, alloc: &Arc<Alloc>, opts: &SlurmOptions) {
    if alloc.slots.available_permits() != alloc.size as usize {
        return;
    }
    let used = alloc.used.load(Ordering::SeqCst);
    let (pool, weak, opts) = (Arc::downgrade(pool), Arc::downgrade(alloc), opts.clone());
    tokio::spawn(async move {
        tokio::time::sleep(opts.idle).await;
        let (Some(pool), Some(alloc)) = (pool.upgrade(), weak.upgrade()) else {
            return;
        };
        let idle = alloc.used.load(Ordering::SeqCst) == used
            && alloc.slots.available_permits() == alloc.size as usize;
        if !idle {
            return;
        }
        lock(&pool.allocs).retain(|a| !Arc::ptr_eq(a, &alloc));
        alloc.slots.close();
        release(&opts, &alloc).await;
    });
}

/// End an allocation: its spawner's input closes, so it ends and `srun`
/// gives the allocation back; what is left is cancelled.
async fn release(opts: &SlurmOptions, alloc: &Alloc) {
    alloc.sandbox.close(Duration::from_secs(5)).await;
    cancel_job(opts, &alloc.slurm_job).await;
}

/// A Slurm command with the cluster's configuration and nothing else of
/// the engine's environment (an enclosing job's `SLURM_*` would make
/// `srun` a step of that job).
fn slurm_command(opts: &SlurmOptions, program: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    cmd.env_clear().envs(slurm_env(opts));
    cmd
}

fn slurm_env(opts: &SlurmOptions) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = ["PATH", "HOME", "USER", "LANG"]
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect();
    if let Some(c) = &opts.conf {
        env.push(("SLURM_CONF".into(), c.display().to_string()));
    }
    env
}

/// The resources and placement of a job holding `size` jobs of `shape`.
fn job_args(opts: &SlurmOptions, shape: JobResources, size: u32) -> Vec<String> {
    let k = u64::from(size.max(1));
    let mut a = vec![
        format!("--job-name={}", opts.job_name),
        "--nodes=1".into(),
        "--ntasks=1".into(),
        format!("--cpus-per-task={}", shape.cores.max(1) * k),
        // Never 0: Slurm reads that as the whole node's memory.
        format!("--mem={}M", (shape.ram_mib * k).max(1)),
    ];
    if shape.gpus > 0 {
        a.push(format!("--gres=gpu:{}", shape.gpus * k));
    }
    if let Some(p) = &opts.partition {
        a.push(format!("--partition={p}"));
    }
    if let Some(acc) = &opts.account {
        a.push(format!("--account={acc}"));
    }
    a
}

/// `srun`'s arguments for an allocation.
fn allocation_args(
    opts: &SlurmOptions,
    shape: JobResources,
    size: u32,
    root: &Path,
) -> Vec<String> {
    let mut a = vec!["--quiet".to_string()];
    a.extend(job_args(opts, shape, size));
    a.push(format!("--chdir={}", root.display()));
    a
}

/// A batch script that runs `spec` in its sandbox, with its streams.
fn batch_script(sandbox: &SandboxExecutor, spec: &CommandSpec) -> String {
    let mut line = String::from("exec");
    if let Some((u, g)) = sandbox.run_as {
        line.push_str(&format!(" setpriv --reuid={u} --regid={g} --clear-groups"));
    }
    line.push(' ');
    line.push_str(&sh_quote(&sandbox.bwrap().display().to_string()));
    for a in sandbox.args(spec) {
        let a = a.to_string_lossy();
        line.push(' ');
        match a.strip_prefix(FROM_SLURM) {
            Some(var) => line.push_str(&format!("\"${{{var}-}}\"")),
            None => line.push_str(&sh_quote(&a)),
        }
    }
    let redirect = |op: &str, p: &Option<PathBuf>| {
        p.as_ref()
            .map(|p| format!(" {op}{}", sh_quote(&p.display().to_string())))
            .unwrap_or_default()
    };
    line.push_str(&match &spec.stdin {
        Some(p) => format!(" <{}", sh_quote(&p.display().to_string())),
        None => " </dev/null".into(),
    });
    line.push_str(&redirect(">", &spec.stdout));
    line.push_str(&redirect("2>", &spec.stderr));
    format!("#!/bin/sh\n{line}\n")
}

/// `s` as one word for `sh`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// What `scontrol show job` says of a job.
#[derive(Debug, Default)]
struct JobState {
    state: Option<String>,
    reason: Option<String>,
    exit_code: Option<i32>,
    node: Option<String>,
}

impl JobState {
    fn describe(&self) -> String {
        match (&self.state, &self.reason) {
            (Some(s), Some(r)) if r != "None" => format!("{s} ({r})"),
            (Some(s), _) => s.clone(),
            (None, _) => "Slurm no longer knows the job".into(),
        }
    }
}

/// What Slurm says of job `id` once it has ended (a job being cancelled
/// shows COMPLETING for a while; asked for up to ten seconds).
async fn job_state(opts: &SlurmOptions, id: &str) -> JobState {
    let mut state = job_state_now(opts, id).await;
    for _ in 0..40 {
        let ending = matches!(
            state.state.as_deref(),
            Some("RUNNING" | "COMPLETING" | "CONFIGURING" | "PENDING" | "SUSPENDED")
        );
        if !ending {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        state = job_state_now(opts, id).await;
    }
    state
}

async fn job_state_now(opts: &SlurmOptions, id: &str) -> JobState {
    let mut cmd = slurm_command(opts, "scontrol");
    cmd.args(["show", "job", "-o", id]).stderr(Stdio::null());
    let Ok(out) = cmd.output().await else {
        return JobState::default();
    };
    parse_job_state(&String::from_utf8_lossy(&out.stdout))
}

fn parse_job_state(text: &str) -> JobState {
    let field = |name: &str| {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_owned)
    };
    JobState {
        state: field("JobState"),
        reason: field("Reason"),
        exit_code: field("ExitCode").and_then(|c| c.split(':').next()?.parse().ok()),
        node: field("BatchHost")
            .or_else(|| field("NodeList"))
            .filter(|n| n != "(null)"),
    }
}

fn failure(pool: &Pool, shape: JobResources) -> Option<String> {
    lock(&pool.failed)
        .iter()
        .find(|(s, _)| *s == shape)
        .map(|(_, why)| why.clone())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_scontrol_says_of_a_job() {
        let s = parse_job_state(
            "JobId=12 JobName=x JobState=CANCELLED Reason=None Dependency=(null) \
             ExitCode=0:15 NodeList=insitu-node BatchHost=insitu-node",
        );
        assert_eq!(s.state.as_deref(), Some("CANCELLED"));
        assert_eq!(s.exit_code, Some(0));
        assert_eq!(s.node.as_deref(), Some("insitu-node"));
        assert_eq!(s.describe(), "CANCELLED");
        assert_eq!(
            parse_job_state("").describe(),
            "Slurm no longer knows the job"
        );
    }

    #[test]
    fn asks_for_the_jobs_resources_times_the_slots() {
        let mut o = SlurmOptions::new(None);
        o.partition = Some("main".into());
        let shape = JobResources {
            cores: 2,
            ram_mib: 0,
            gpus: 1,
        };
        let a = job_args(&o, shape, 3).join(" ");
        assert!(a.contains("--cpus-per-task=6"), "{a}");
        assert!(a.contains("--mem=1M"), "{a}");
        assert!(a.contains("--gres=gpu:3"), "{a}");
        assert!(a.contains("--partition=main"), "{a}");
    }

    #[test]
    fn batch_scripts_quote_every_word_and_fill_in_slurms_values() {
        let ex = SandboxExecutor::new("/usr/bin/bwrap".into(), vec![], Some((7, 8)));
        let mut spec = CommandSpec {
            argv: vec!["echo".into(), "it's $HOME".into()],
            cwd: "/tmp".into(),
            tmpdir: "/tmp".into(),
            stdout: Some("/tmp/o u t".into()),
            ..CommandSpec::default()
        };
        spec.env.insert(
            "CUDA_VISIBLE_DEVICES".into(),
            format!("{FROM_SLURM}CUDA_VISIBLE_DEVICES"),
        );
        let s = batch_script(&ex, &spec);
        assert!(
            s.starts_with("#!/bin/sh\nexec setpriv --reuid=7 --regid=8"),
            "{s}"
        );
        assert!(s.contains(r"'it'\''s $HOME'"), "{s}");
        assert!(
            s.contains(r#"'CUDA_VISIBLE_DEVICES' "${CUDA_VISIBLE_DEVICES-}""#),
            "{s}"
        );
        assert!(s.trim_end().ends_with("</dev/null >'/tmp/o u t'"), "{s}");
    }
}
