//! One run, start to end: load and check the document, choose where its
//! commands run (a sandbox per job, or the run's shared sandbox), run the
//! process, move its outputs into the output directory and write the
//! provenance crate.

use crate::access::Access;
use crate::error::{CwlError, Result};
use crate::events::{Event, Events, Status, now_ms};
use crate::files::{self, Entry};
use crate::options::{Confinement, ContainerMode, RunOptions, SandboxMode};
use crate::process::RunCtx;
use crate::relocate::relocate_outputs;
use crate::requirements::Inherited;
use crate::sandbox::SandboxExecutor;
use crate::{cache, executor, loader, provenance, spawner, workflow};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The sandbox for a run, or `None` for plain processes when asked for
/// them; without a working bubblewrap the run fails before anything runs.
async fn pick_sandbox(opts: &RunOptions) -> Result<Option<SandboxExecutor>> {
    if opts.sandbox == SandboxMode::Off {
        return Ok(None);
    }
    SandboxExecutor::probe(opts.sandbox_expose.clone(), opts.confinement.run_as)
        .await
        .map(|s| Some(s.hiding(opts.hidden.clone())))
        .map_err(CwlError::NoSandbox)
}

/// Paths a run reads from outside its own directory: the job order's
/// files and directories, and the directories of the documents (their
/// default files); the run's shared sandbox shows them read-only.
fn run_inputs(job: &Value, documents: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = documents
        .iter()
        .filter_map(|d| d.parent().map(Path::to_path_buf))
        .collect();
    files::visit(job, &mut |e: Entry<'_>| {
        out.extend(
            e.location()
                .filter(|l| l.starts_with("file://"))
                .map(files::loc_to_path),
        );
        out.extend(e.path().map(PathBuf::from));
    });
    out
}

/// Load, validate and run `spec` (`file.cwl[#id]`) with a job order, and
/// return the output object with files moved into `opts.outdir`. With
/// `opts.events`, the run's events go there, the last one saying how it
/// ended.
pub async fn run(spec: &str, job: Value, opts: &RunOptions) -> Result<Value> {
    let events = match &opts.events {
        Some(path) => Some(Arc::new(
            Events::open(path, opts.step_logs.clone())
                .map_err(|e| CwlError::Input(format!("--events {}: {e}", path.display())))?,
        )),
        None => None,
    };
    if let Some(ev) = &events {
        ev.emit(&Event::RunStarted {
            at_ms: now_ms(),
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION"),
        });
    }
    let result = run_inner(spec, job, opts, events.clone()).await;
    if let Some(ev) = &events {
        finished(ev, result.as_ref().err());
    }
    result
}

/// The last event of a run: how it ended.
fn finished(ev: &Events, error: Option<&CwlError>) {
    let text = error.map(ToString::to_string);
    ev.emit(&Event::RunFinished {
        at_ms: now_ms(),
        status: if error.is_some() {
            Status::Failed
        } else {
            Status::Success
        },
        exit_code: error.map_or(0, CwlError::exit_code),
        error: text.as_deref(),
    });
}

/// Records, in the event stream the options name, a run that failed before
/// it could start (its job order unreadable).
pub fn failed_before_start(opts: &RunOptions, error: &CwlError) {
    if let Some(ev) = opts
        .events
        .as_ref()
        .and_then(|p| Events::open(p, None).ok())
    {
        ev.emit(&Event::RunStarted {
            at_ms: now_ms(),
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION"),
        });
        finished(&ev, Some(error));
    }
}

/// Where the jobs' directories go: a temporary directory removed with the
/// run, or a new directory (`run-N`) in the one `--workdir` names, kept.
enum RunDir {
    Temporary(tempfile::TempDir),
    Kept(PathBuf),
}

impl RunDir {
    fn make(workdir: Option<&Path>) -> Result<RunDir> {
        Ok(match workdir {
            None => RunDir::Temporary(tempfile::Builder::new().prefix("insitu-cwl-").tempdir()?),
            // A directory of its own inside: another run (a rerun) may
            // have left its jobs there.
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                let dir = std::fs::canonicalize(dir)?;
                let mut n = 0u32;
                loop {
                    let mine = dir.join(format!("run-{n}"));
                    match std::fs::create_dir(&mine) {
                        Ok(()) => break RunDir::Kept(mine),
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        })
    }

    fn path(&self) -> &Path {
        match self {
            RunDir::Temporary(t) => t.path(),
            RunDir::Kept(p) => p,
        }
    }
}

async fn run_inner(
    spec: &str,
    job: Value,
    opts: &RunOptions,
    events: Option<Arc<Events>>,
) -> Result<Value> {
    let access = access_of(&opts.confinement)?;
    check_run_as(opts.confinement.run_as)?;
    let cache = match &opts.cachedir {
        Some(d) => Some(Arc::new(cache::JobCache::open(d)?)),
        None => None,
    };
    // Checking that bubblewrap works takes a few milliseconds: overlap it
    // with loading the document.
    let sandbox = {
        let opts = opts.clone();
        tokio::spawn(async move { pick_sandbox(&opts).await })
    };
    let mut job = job;
    let (loaded, p) = load(spec, &mut job, access.clone())?;
    let tmp = RunDir::make(opts.workdir.as_deref())?;
    if opts.confinement.run_as.is_some() {
        // The tools' user reaches its job directories through it.
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o711))?;
    }
    let sandbox = sandbox
        .await
        .map_err(|e| CwlError::Execution(format!("sandbox check failed: {e}")))??;
    let executor = executor_for(
        sandbox,
        &p,
        &job,
        &loaded.files,
        tmp.path(),
        opts,
        events.clone(),
    )?;
    let mut ctx = RunCtx::new(tmp.path().to_path_buf(), opts.parallel, executor);
    if opts.slurm.is_some() {
        // The cluster, not this machine, has the room jobs ask for.
        ctx.unlimited_resources();
    }
    ctx.quiet = opts.quiet || opts.progress;
    ctx.js_timeout = opts.js_timeout;
    ctx.containers = opts.containers;
    ctx.cache = cache;
    ctx.access = access.and(tmp.path())?;
    ctx.confined = opts.confinement.is_confined();
    ctx.run_as = opts.confinement.run_as;
    ctx.events = events;
    if opts.provenance.is_some() {
        ctx.recorder = Some(Arc::new(provenance::Recorder::default()));
    }
    let ctx = Arc::new(ctx);
    let result = run_with_progress(&p, job, &ctx, opts).await;
    ctx.executor.shutdown().await;
    let result = result.and_then(|mut out| {
        // Files of the run's directory are moved, unless the provenance
        // crate still has to copy them.
        let movable = opts
            .provenance
            .is_none()
            .then(|| std::fs::canonicalize(tmp.path()).ok())
            .flatten();
        // Nothing but what the run may read reaches the output directory.
        ctx.access.check_value("output", &out)?;
        relocate_outputs(&mut out, &opts.outdir, movable, &ctx.access.follow())?;
        Ok(out)
    });
    // Written before the job directories go, also when the run failed.
    if let (Some(dir), Some(rec)) = (&opts.provenance, &ctx.recorder) {
        let input = provenance::CrateInput {
            workflow_files: &loaded.files,
            process: &p,
            outputs: result.as_ref().ok(),
        };
        provenance::write_crate(dir, &input, &rec.records())?;
    }
    result
}

/// Where a run may read: under `--allow-root`s only, when there are any.
pub fn access_of(c: &Confinement) -> Result<Access> {
    match &c.roots {
        Some(roots) => Access::within(roots),
        None => Ok(Access::anywhere()),
    }
}

/// Tools may run as another user only if it is not root and the engine
/// can switch to it.
fn check_run_as(run_as: Option<(u32, u32)>) -> Result<()> {
    let Some((uid, gid)) = run_as else {
        return Ok(());
    };
    if uid == 0 || gid == 0 {
        return Err(CwlError::Input(format!(
            "--run-as {uid}:{gid}: tools never run as root (user or group 0)"
        )));
    }
    if !rustix::process::geteuid().is_root() {
        return Err(CwlError::Input(format!(
            "--run-as {uid}:{gid}: the engine must run as root to run tools as another user"
        )));
    }
    Ok(())
}

/// Load and check the document; requirements the job order adds
/// (`cwl:requirements`) come first.
fn load(spec: &str, job: &mut Value, access: Access) -> Result<(loader::Loaded, Value)> {
    let loaded = loader::load_with(spec, access)?;
    let mut p = loaded.process.clone();
    if let Some(Value::Array(extra)) = job
        .as_object_mut()
        .and_then(|m| m.remove("cwl:requirements"))
        && let Some(Value::Array(reqs)) = p.get_mut("requirements")
    {
        let mut all = extra;
        all.append(reqs);
        *reqs = all;
    }
    if is_workflow(&p) {
        workflow::check_workflow(&p)?;
    }
    Ok((loaded, p))
}

fn is_workflow(p: &Value) -> bool {
    p.get("class").and_then(Value::as_str) == Some("Workflow")
}

/// Where the run's commands go: a Slurm cluster with `--slurm`; plain
/// processes without a sandbox; a
/// sandbox of its own for a lone tool (a shared one would only add its
/// spawner's start) or with `--sandbox-per-step`; else the run's shared
/// sandbox, which shows the job order's inputs and the documents'
/// directories.
fn executor_for(
    sandbox: Option<SandboxExecutor>,
    p: &Value,
    job: &Value,
    documents: &[PathBuf],
    root: &Path,
    opts: &RunOptions,
    events: Option<Arc<Events>>,
) -> Result<Arc<dyn executor::Executor>> {
    if let Some(slurm) = &opts.slurm {
        let Some(s) = sandbox else {
            return Err(CwlError::Input(
                "--slurm runs every job in a bubblewrap sandbox on the node: it cannot be combined with --no-sandbox"
                    .into(),
            ));
        };
        return Ok(Arc::new(
            crate::slurm::SlurmExecutor::new(
                slurm.clone(),
                s,
                root.to_path_buf(),
                run_inputs(job, documents),
                opts.step_logs.iter().cloned().collect(),
                opts.parallel,
                opts.quiet,
            )
            .reporting(events),
        ));
    }
    Ok(match sandbox {
        None => Arc::new(executor::LocalExecutor {
            run_as: opts.confinement.run_as,
        }),
        Some(s) if opts.sandbox_per_step || !is_workflow(p) => Arc::new(s),
        Some(s) => Arc::new(
            spawner::SharedSandboxExecutor::new(
                s,
                root.to_path_buf(),
                run_inputs(job, documents),
                opts.quiet,
            )
            .writing(opts.step_logs.iter().cloned().collect()),
        ),
    })
}

/// Run the process, with a progress line on stderr when asked for.
async fn run_with_progress(
    p: &Value,
    job: Value,
    ctx: &Arc<RunCtx>,
    opts: &RunOptions,
) -> Result<Value> {
    use std::sync::atomic::Ordering::SeqCst;
    if !is_workflow(p) {
        ctx.progress.total.store(1, SeqCst);
    }
    let ticker = opts.progress.then(|| {
        let progress = ctx.progress.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
            loop {
                tick.tick().await;
                eprint!("\r\x1b[K[insitu-cwl] {}", progress.line());
            }
        })
    });
    let inherited = Inherited {
        reject_docker: opts.containers == ContainerMode::Reject,
        ..Default::default()
    };
    let result = workflow::run_process(p.clone(), job, inherited, ctx.clone()).await;
    if let Some(t) = ticker {
        t.abort();
        if !is_workflow(p) && result.is_ok() {
            ctx.progress.done.store(1, SeqCst);
        }
        eprintln!("\r\x1b[K[insitu-cwl] {}", ctx.progress.line());
    }
    result
}
