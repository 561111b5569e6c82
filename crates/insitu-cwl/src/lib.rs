//! Insitu's CWL v1.2 engine: loads CWL documents (v1.0–v1.2, YAML or JSON,
//! `$graph`, `$import`/`$include`), validates them with clear messages and
//! runs CommandLineTools, ExpressionTools and Workflows (scatter, `when`,
//! `pickValue`, subworkflows) through a pluggable [`executor::Executor`].
//! It backs the platform's pipeline runs and the `insitu cwl` command, whose
//! whole logic is [`cli_main`]. Tools run in bubblewrap sandboxes built by
//! `insitu-launcher` (the same builder as the labs, see [`sandbox`]); runs
//! can leave a Workflow Run RO-Crate ([`provenance`]). This crate must never
//! depend on the platform's web or store crates: anything it needs to
//! persist goes through traits implemented by its callers.

pub mod cache;
pub mod container;
pub mod error;
pub mod executor;
pub mod expr;
pub mod files;
pub mod loader;
pub mod ontology;
pub mod process;
pub mod provenance;
pub mod sandbox;
pub mod spawner;
pub mod tool;
pub mod workflow;

pub use error::{CwlError, Result};

use process::{Inherited, RunCtx};
use serde_json::Value;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Options of one run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Final output directory.
    pub outdir: PathBuf,
    /// Maximum number of concurrently running tools.
    pub parallel: usize,
    /// Suppress progress messages.
    pub quiet: bool,
    /// What `DockerRequirement` does.
    pub containers: ContainerMode,
    /// Time limit of one JavaScript expression evaluation.
    pub js_timeout: std::time::Duration,
    /// Whether tools run in a bubblewrap sandbox.
    pub sandbox: SandboxMode,
    /// Give every job a sandbox of its own instead of running the jobs
    /// that can in the run's shared sandbox ([`spawner`]).
    pub sandbox_per_step: bool,
    /// Host paths shown read-only inside sandboxes (tool installations under
    /// `/home`, `/root` or `/tmp`).
    pub sandbox_expose: Vec<PathBuf>,
    /// Write a Workflow Run RO-Crate of the run into this directory.
    pub provenance: Option<PathBuf>,
    /// Keep a progress line (jobs done/running/total) on stderr, which
    /// must be a terminal; replaces the per-command log lines.
    pub progress: bool,
    /// Reuse the results of CommandLineTool jobs stored in this directory,
    /// and store new ones there ([`cache`]).
    pub cachedir: Option<PathBuf>,
}

/// What `DockerRequirement` does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ContainerMode {
    /// The tool runs in a podman container. Without a working podman, a
    /// requirement is unsupported (exit 33) and a hint is ignored.
    #[default]
    Auto,
    /// Ignored: tools run on the host, in the sandbox (`--no-container`).
    Off,
    /// Unsupported: exit 33 (`--reject-docker`).
    Reject,
}

/// Whether CommandLineTools run in a bubblewrap sandbox
/// ([`sandbox::SandboxExecutor`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SandboxMode {
    /// Sandboxed when bubblewrap works on this machine, plain processes
    /// (with a warning) otherwise.
    #[default]
    Auto,
    /// Sandboxed, or the run fails.
    Required,
    /// Plain local processes (`--no-sandbox`).
    Off,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            outdir: PathBuf::from("."),
            parallel: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            quiet: false,
            containers: ContainerMode::Auto,
            js_timeout: std::time::Duration::from_secs(20),
            sandbox: SandboxMode::Auto,
            sandbox_per_step: false,
            sandbox_expose: vec![],
            provenance: None,
            progress: false,
            cachedir: None,
        }
    }
}

/// The sandbox for a run, or `None` for plain processes (off, or
/// unavailable and not required).
async fn pick_sandbox(opts: &RunOptions) -> Result<Option<sandbox::SandboxExecutor>> {
    if opts.sandbox == SandboxMode::Off {
        return Ok(None);
    }
    match sandbox::SandboxExecutor::probe(opts.sandbox_expose.clone()).await {
        Ok(ex) => Ok(Some(ex)),
        Err(why) if opts.sandbox == SandboxMode::Required => Err(CwlError::Unsupported(format!(
            "a sandbox is required but {why}"
        ))),
        Err(why) => {
            if !opts.quiet {
                eprintln!(
                    "[insitu-cwl] warning: running tools without a sandbox: {why} (--no-sandbox silences this)"
                );
            }
            Ok(None)
        }
    }
}

/// Paths a run reads from outside its own directory: the job order's
/// files and directories, and the directories of the documents (their
/// default files); the run's shared sandbox shows them read-only.
fn run_inputs(job: &Value, documents: &[PathBuf]) -> Vec<PathBuf> {
    fn walk(v: &Value, out: &mut Vec<PathBuf>) {
        match v {
            Value::Object(m) => {
                if let Some(l) = m.get("location").and_then(Value::as_str)
                    && l.starts_with("file://")
                {
                    out.push(files::loc_to_path(l));
                }
                if let Some(p) = m.get("path").and_then(Value::as_str) {
                    out.push(PathBuf::from(p));
                }
                m.values().for_each(|x| walk(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out: Vec<PathBuf> = documents
        .iter()
        .filter_map(|d| d.parent().map(Path::to_path_buf))
        .collect();
    walk(job, &mut out);
    out
}

/// Load, validate and run `spec` (`file.cwl[#id]`) with a job order, and
/// return the output object with files moved into `opts.outdir`.
pub async fn run(spec: &str, job: Value, opts: &RunOptions) -> Result<Value> {
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
    let loaded = loader::load(spec)?;
    let mut p = loaded.process.clone();
    let mut job = job;
    if let Some(Value::Array(extra)) = job
        .as_object_mut()
        .and_then(|m| m.remove("cwl:requirements"))
        && let Some(Value::Array(reqs)) = p.get_mut("requirements")
    {
        let mut all = extra;
        all.append(reqs);
        *reqs = all;
    }
    if p.get("class").and_then(Value::as_str) == Some("Workflow") {
        workflow::check_workflow(&p)?;
    }
    let tmp = tempfile::Builder::new().prefix("insitu-cwl-").tempdir()?;
    let sandbox = sandbox
        .await
        .map_err(|e| CwlError::Execution(format!("sandbox check failed: {e}")))??;
    let executor: Arc<dyn executor::Executor> = match sandbox {
        None => Arc::new(executor::LocalExecutor),
        // A lone tool is one job: a shared sandbox would only add its
        // spawner's start.
        Some(s)
            if opts.sandbox_per_step
                || p.get("class").and_then(Value::as_str) == Some("CommandLineTool") =>
        {
            Arc::new(s)
        }
        Some(s) => Arc::new(spawner::SharedSandboxExecutor::new(
            s,
            tmp.path().to_path_buf(),
            run_inputs(&job, &loaded.files),
            opts.quiet,
        )),
    };
    let mut ctx = RunCtx::new(tmp.path().to_path_buf(), opts.parallel, executor);
    ctx.quiet = opts.quiet || opts.progress;
    ctx.js_timeout = opts.js_timeout;
    ctx.containers = opts.containers;
    ctx.cache = cache;
    if opts.provenance.is_some() {
        ctx.recorder = Some(Arc::new(provenance::Recorder::default()));
    }
    if p.get("class").and_then(Value::as_str) != Some("Workflow") {
        ctx.progress
            .total
            .store(1, std::sync::atomic::Ordering::SeqCst);
    }
    let ctx = Arc::new(ctx);
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
    let result = workflow::run_process(
        p.clone(),
        job,
        Inherited {
            reject_docker: opts.containers == ContainerMode::Reject,
            ..Default::default()
        },
        ctx.clone(),
    )
    .await;
    if let Some(t) = ticker {
        t.abort();
        if p.get("class").and_then(Value::as_str) != Some("Workflow") && result.is_ok() {
            ctx.progress
                .done
                .store(1, std::sync::atomic::Ordering::SeqCst);
        }
        eprintln!("\r\x1b[K[insitu-cwl] {}", ctx.progress.line());
    }
    let result = result.and_then(|mut out| {
        std::fs::create_dir_all(&opts.outdir)?;
        let outdir = std::fs::canonicalize(&opts.outdir)?;
        let mut seen = Relocation {
            movable: opts
                .provenance
                .is_none()
                .then(|| std::fs::canonicalize(tmp.path()).ok())
                .flatten(),
            ..Relocation::default()
        };
        seen.survey(&out);
        relocate(&mut out, &outdir, &mut seen)?;
        files::add_checksums(&mut out)?;
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

/// Where outputs went so far: by source, and the next free suffix per name
/// (so a thousand `out.txt` cost a thousand lookups, not half a million).
#[derive(Default)]
struct Relocation {
    by_source: std::collections::HashMap<PathBuf, PathBuf>,
    next_suffix: std::collections::HashMap<String, usize>,
    /// The run's own directory, whose files are moved rather than copied
    /// (`None` when they are still needed afterwards, for provenance).
    movable: Option<PathBuf>,
    /// Directories among the outputs: files inside them are copied, so
    /// that the directories stay whole.
    directories: Vec<PathBuf>,
    /// The canonical path of every output's location, taken before
    /// anything moves (a link to a moved file no longer resolves).
    canonical: std::collections::HashMap<PathBuf, PathBuf>,
}

impl Relocation {
    /// Note the canonical paths of the outputs in `v`, and its directories.
    fn survey(&mut self, v: &Value) {
        match v {
            Value::Array(a) => a.iter().for_each(|x| self.survey(x)),
            Value::Object(m) => {
                if let Some(l) = m.get("location").and_then(Value::as_str) {
                    let p = files::loc_to_path(l);
                    if let Ok(c) = std::fs::canonicalize(&p) {
                        if m.get("class").and_then(Value::as_str) == Some("Directory") {
                            self.directories.push(c.clone());
                        }
                        self.canonical.insert(p, c);
                    }
                }
                m.values().for_each(|x| self.survey(x));
            }
            _ => {}
        }
    }

    /// The canonical path of output location `p` (as surveyed).
    fn canonical(&self, p: &Path) -> Option<PathBuf> {
        self.canonical
            .get(p)
            .cloned()
            .or_else(|| std::fs::canonicalize(p).ok())
    }
}

/// Move output files into the output directory and rewrite their locations.
fn relocate(v: &mut Value, outdir: &Path, seen: &mut Relocation) -> Result<()> {
    match v {
        Value::Array(a) => {
            for x in a {
                relocate(x, outdir, seen)?;
            }
        }
        Value::Object(m) => {
            let class = m.get("class").and_then(Value::as_str).map(str::to_string);
            if matches!(class.as_deref(), Some("File") | Some("Directory")) {
                let base = m
                    .get("basename")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| {
                        m.get("location").and_then(Value::as_str).map(|l| {
                            files::loc_to_path(l)
                                .file_name()
                                .map(|s| s.to_string_lossy().into_owned())
                                .unwrap_or_default()
                        })
                    })
                    .unwrap_or_else(|| "output".into());
                let mut target = outdir.join(&base);
                let mut k = seen.next_suffix.get(&base).copied().unwrap_or(1);
                let src = m
                    .get("location")
                    .and_then(Value::as_str)
                    .map(files::loc_to_path);
                let key = src.as_ref().map(|p| seen.canonical(p).unwrap_or(p.clone()));
                let reused = key.as_ref().and_then(|p| seen.by_source.get(p)).cloned();
                if let Some(t) = &reused {
                    target = t.clone();
                }
                if reused.is_none() && k > 1 {
                    target = outdir.join(format!("{base}_{}", k - 1));
                }
                while reused.is_none() && target.symlink_metadata().is_ok() {
                    if src.as_deref() == Some(target.as_path()) {
                        break;
                    }
                    target = outdir.join(format!("{base}_{k}"));
                    k += 1;
                }
                if reused.is_none() {
                    seen.next_suffix.insert(base.clone(), k);
                }
                let tv = Value::Object(m.clone());
                let mut lit = tv.clone();
                if let Value::Object(lm) = &mut lit {
                    lm.remove("secondaryFiles");
                }
                if reused.is_none() && src.as_deref() != Some(target.as_path()) {
                    // A file of the run's own directory that no output
                    // directory holds may be moved.
                    let movable = key.as_ref().is_some_and(|c| {
                        seen.movable
                            .as_ref()
                            .is_some_and(|root| c.starts_with(root))
                            && !seen.directories.iter().any(|d| c.starts_with(d))
                    });
                    write_out(&lit, &target, movable)?;
                    if let Some(sp) = &key {
                        seen.by_source.insert(sp.clone(), target.clone());
                    }
                }
                m.insert(
                    "location".into(),
                    Value::String(files::path_to_loc(&target)),
                );
                m.insert("path".into(), Value::String(target.display().to_string()));
                m.insert(
                    "basename".into(),
                    Value::String(
                        target
                            .file_name()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                    ),
                );
                if class.as_deref() == Some("Directory") {
                    m.insert(
                        "listing".into(),
                        Value::Array(files::list_dir(&target, true)?),
                    );
                    let mut l = m.get("listing").cloned().unwrap_or(Value::Null);
                    files::fill_fs(&mut l, "deep_listing")?;
                    m.insert("listing".into(), l);
                } else {
                    m.remove("contents");
                }
                if let Some(Value::Array(sf)) = m.get_mut("secondaryFiles") {
                    for s in sf.iter_mut() {
                        relocate(s, outdir, seen)?;
                    }
                }
                let mut tmpv = Value::Object(m.clone());
                files::fill_fs(&mut tmpv, "no_listing")?;
                if let Value::Object(nm) = tmpv {
                    *m = nm;
                }
            } else {
                for (_, x) in m.iter_mut() {
                    relocate(x, outdir, seen)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn write_out(v: &Value, target: &Path, movable: bool) -> Result<()> {
    let class = v.get("class").and_then(Value::as_str).unwrap_or("File");
    if let Some(loc) = v.get("location").and_then(Value::as_str) {
        let src = files::loc_to_path(loc);
        // A regular file that may move is renamed (on the same file
        // system); anything else is copied.
        let moved = movable
            && src.symlink_metadata().is_ok_and(|m| m.is_file())
            && std::fs::rename(&src, target).is_ok();
        if !moved {
            copy_resolving(&src, target)?;
        }
        if class == "Directory" && !src.exists() {
            std::fs::create_dir_all(target)?;
        }
    } else if class == "File" {
        std::fs::write(
            target,
            v.get("contents").and_then(Value::as_str).unwrap_or(""),
        )?;
    } else {
        std::fs::create_dir_all(target)?;
        for e in v
            .get("listing")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let b = e
                .get("basename")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| {
                    e.get("location").and_then(Value::as_str).map(|l| {
                        files::loc_to_path(l)
                            .file_name()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    })
                })
                .unwrap_or_else(|| "x".into());
            write_out(e, &target.join(b), false)?;
        }
    }
    Ok(())
}

fn copy_resolving(src: &Path, dst: &Path) -> Result<()> {
    let md = std::fs::metadata(src)
        .map_err(|e| CwlError::Execution(format!("output {}: {e}", src.display())))?;
    if md.is_dir() {
        std::fs::create_dir_all(dst)?;
        for e in std::fs::read_dir(src)? {
            let e = e?;
            copy_resolving(&e.path(), &dst.join(e.file_name()))?;
        }
    } else {
        std::fs::copy(src, dst)?;
    }
    Ok(())
}

const USAGE: &str = "usage: insitu-cwl run [--outdir DIR] [--quiet] [--parallel N] [--no-container | --reject-docker] [--js-timeout=SECS]\n         [--no-sandbox | --require-sandbox] [--sandbox-per-step] [--sandbox-expose DIR]... [--provenance DIR]\n         [--cachedir DIR] TOOL.cwl[#id] [JOB.yml|JOB.json]\n       insitu-cwl validate TOOL.cwl[#id]\n  --cachedir DIR  reuse tool jobs stored in DIR (same tool, requirements and inputs by content)\n                  instead of running them again, and store new successful ones there";

/// The whole command-line interface; returns the process exit code
/// (0 success, 33 unsupported requirement, 1 other failures, 2 usage).
pub fn cli_main(args: Vec<OsString>) -> i32 {
    let args: Vec<String> = args
        .into_iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if args.first().map(String::as_str) == Some(spawner::SUBCOMMAND) {
        return spawner::serve();
    }
    let mut outdir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let mut parallel = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut quiet = false;
    let mut containers = ContainerMode::Auto;
    let mut js_timeout = std::time::Duration::from_secs(20);
    let mut sandbox = SandboxMode::Auto;
    let mut sandbox_per_step = false;
    let mut provenance = None;
    let mut cachedir = None;
    // The invoking user's home stays visible (read-only) in sandboxes, like
    // the rest of the host: tools are often installed there.
    let mut sandbox_expose: Vec<PathBuf> = std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|h| h.is_absolute() && h.parent().is_some())
        .into_iter()
        .collect();
    let mut positional = vec![];
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if let Some(v) = a.strip_prefix("--outdir=") {
            outdir = PathBuf::from(v);
        } else if a == "--outdir" {
            i += 1;
            if let Some(v) = args.get(i) {
                outdir = PathBuf::from(v);
            }
        } else if let Some(v) = a.strip_prefix("--parallel=") {
            parallel = v.parse().unwrap_or(parallel);
        } else if a == "--parallel" {
            i += 1;
            parallel = args.get(i).and_then(|v| v.parse().ok()).unwrap_or(parallel);
        } else if let Some(v) = a.strip_prefix("--js-timeout=") {
            if let Ok(secs) = v.parse::<f64>() {
                js_timeout = std::time::Duration::from_secs_f64(secs.max(0.01));
            }
        } else if a == "--reject-docker" {
            containers = ContainerMode::Reject;
        } else if a == "--no-container" {
            containers = ContainerMode::Off;
        } else if let Some(v) = a.strip_prefix("--provenance=") {
            provenance = Some(PathBuf::from(v));
        } else if a == "--provenance" {
            i += 1;
            provenance = args.get(i).map(PathBuf::from);
        } else if let Some(v) = a.strip_prefix("--cachedir=") {
            cachedir = Some(PathBuf::from(v));
        } else if a == "--cachedir" {
            i += 1;
            cachedir = args.get(i).map(PathBuf::from);
        } else if a == "--no-sandbox" {
            sandbox = SandboxMode::Off;
        } else if a == "--require-sandbox" {
            sandbox = SandboxMode::Required;
        } else if a == "--sandbox-per-step" {
            sandbox_per_step = true;
        } else if let Some(v) = a.strip_prefix("--sandbox-expose=") {
            sandbox_expose.push(PathBuf::from(v));
        } else if a == "--sandbox-expose" {
            i += 1;
            if let Some(v) = args.get(i) {
                sandbox_expose.push(PathBuf::from(v));
            }
        } else if a == "--quiet" {
            quiet = true;
        } else if a == "--help" || a == "-h" {
            println!("{USAGE}");
            return 0;
        } else if a == "--version" {
            println!("insitu-cwl {}", env!("CARGO_PKG_VERSION"));
            return 0;
        } else if a.starts_with("--") {
            // cwltool-style flags we do not use (--debug, --tmpdir-prefix=...)
        } else {
            positional.push(a.clone());
        }
        i += 1;
    }
    let (cmd, rest) = match positional.first().map(String::as_str) {
        Some("run") => ("run", positional[1..].to_vec()),
        Some("validate") => ("validate", positional[1..].to_vec()),
        _ => ("run", positional.clone()),
    };
    let Some(tool) = rest.first().cloned() else {
        eprintln!("{USAGE}");
        return 2;
    };
    if cmd == "validate" {
        return match loader::load(&tool).and_then(|l| {
            if l.process.get("class").and_then(Value::as_str) == Some("Workflow") {
                workflow::check_workflow(&l.process)?;
            }
            Ok(())
        }) {
            Ok(()) => {
                println!("{tool} is valid CWL");
                0
            }
            Err(e) => {
                eprintln!("{tool}: {e}");
                e.exit_code()
            }
        };
    }
    let job = match rest.get(1) {
        Some(j) if j != "-" => match loader::load_job(Path::new(j)) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("{j}: {e}");
                return 1;
            }
        },
        _ => Value::Object(Default::default()),
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(parallel.clamp(1, 16))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start runtime: {e}");
            return 1;
        }
    };
    let opts = RunOptions {
        outdir,
        parallel,
        quiet,
        containers,
        js_timeout,
        sandbox,
        sandbox_per_step,
        sandbox_expose,
        provenance,
        progress: !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        cachedir,
    };
    match rt.block_on(run(&tool, job, &opts)) {
        Ok(out) => {
            let mut so = std::io::stdout();
            let text = serde_json::to_string_pretty(&out).unwrap_or_else(|_| "{}".into());
            let _ = writeln!(so, "{text}");
            0
        }
        Err(e) => {
            eprintln!("{tool}: {e}");
            e.exit_code()
        }
    }
}
