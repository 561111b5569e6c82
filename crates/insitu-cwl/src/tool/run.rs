//! Running a CommandLineTool job, a phase per function: prepare its inputs
//! (or reuse a cached result), make its directories, stage its inputs and
//! InitialWorkDir, bind its command line, run it through the run's
//! executor (or podman), and collect and check its outputs. ExpressionTools
//! run here too, without a command.

use crate::container::{Build, Podman};
use crate::error::{CwlError, Result};
use crate::events::{JobTrack, Status};
use crate::executor::{CommandSpec, ContainerRun, JobResources};
use crate::expr::{Evaluator, Scope};
use crate::files;
use crate::options::ContainerMode;
use crate::process::{Resources, RunCtx, prepare_inputs};
use crate::requirements::{Inherited, Reqs};
use crate::tool::bind::{self, value_str};
use crate::tool::outputs::{self, Bounds, Collector, Streams};
use crate::tool::stage::{Places, Stager, initial_workdir};
use crate::types::{self, Schemas};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Run an ExpressionTool.
pub fn run_expression_tool(p: &Value, job: &Value, inh: &Inherited, ctx: &RunCtx) -> Result<Value> {
    let reqs = Reqs::of(p, inh)?;
    let ev = reqs.evaluator(ctx.js_timeout);
    let inputs = prepare_inputs(p, job, &reqs, &ev, &ctx.access)?;
    let scope = Scope {
        inputs: Value::Object(inputs),
        this: Value::Null,
        runtime: runtime_obj(
            &reqs,
            &ev,
            &Value::Null,
            Path::new("/tmp"),
            Path::new("/tmp"),
        )?,
    };
    let expr = p.get("expression").cloned().unwrap_or(Value::Null);
    let res = ev.eval(&expr, &scope)?;
    let Value::Object(res) = res else {
        return Err(CwlError::Execution(
            "ExpressionTool expression did not return an object".into(),
        ));
    };
    let mut out = Map::new();
    for o in p
        .get("outputs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let id = o.get("id").and_then(Value::as_str).unwrap_or("");
        let mut v = res.get(id).cloned().unwrap_or(Value::Null);
        let t = o.get("type").cloned().unwrap_or(json!("Any"));
        if v.is_null() && !types::is_optional(&t) && t.as_str() != Some("Any") {
            return Err(CwlError::Execution(format!(
                "ExpressionTool output '{id}' is missing"
            )));
        }
        files::fill_fs(&mut v, "no_listing").ok();
        out.insert(id.to_string(), v);
    }
    let out = Value::Object(out);
    // An expression may name any location: outputs are read and copied by
    // the engine, so they must be places the run may read.
    ctx.access.check_value("output", &out)?;
    Ok(out)
}

/// Run a CommandLineTool and return its output object: prepare its inputs
/// (or reuse a cached result), stage them, bind its command line, run it
/// and collect its outputs. Its start and end go to the run's events.
pub async fn run_command_line_tool(
    p: &Value,
    order: &Value,
    inh: &Inherited,
    ctx: &RunCtx,
) -> Result<Value> {
    let track = ctx
        .events
        .as_ref()
        .map(|e| JobTrack::new(e, inh.step.as_deref(), inh.scatter_index, true));
    let mut code = None;
    let r = run_tool_job(p, order, inh, ctx, track.as_ref(), &mut code).await;
    if let Some(t) = &track {
        match &r {
            Ok((_, true)) => t.finished(Status::Reused, None, None),
            Ok(_) => t.finished(Status::Success, code, None),
            Err(e) => t.finished(Status::Failed, code, Some(&e.to_string())),
        }
    }
    r.map(|(out, _)| out)
}

/// [`run_command_line_tool`]'s phases: the output object, and whether it
/// came from the cache; `code` gets the command's exit status.
async fn run_tool_job(
    p: &Value,
    order: &Value,
    inh: &Inherited,
    ctx: &RunCtx,
    track: Option<&JobTrack>,
    code: &mut Option<i32>,
) -> Result<(Value, bool)> {
    let reqs = Reqs::of(p, inh)?;
    let job = Job {
        ev: reqs.evaluator(ctx.js_timeout),
        schemas: reqs.schemas(),
        reqs,
        p,
        ctx,
    };
    let inputs = prepare_inputs(p, order, &job.reqs, &job.ev, &ctx.access)?;
    let cache_key = cache_key(p, &job.reqs, &job.ev, &inputs, ctx)?;
    if let Some(out) = reuse(p, inh, ctx, cache_key.as_deref()) {
        return Ok((out, true));
    }
    let dirs = JobDirs::make(ctx)?;
    let mut staged = job.stage(inputs, &dirs).await?;
    let (mut spec, streams) = job.bind(&mut staged, &dirs)?;
    spec.job = track.map(|t| t.job);
    spec.log = match track.and_then(|t| t.log.as_deref()) {
        Some(log) => Some(start_log(log, &spec)?),
        None => None,
    };
    let exit = job.execute(&staged, &spec, &dirs, track).await?;
    *code = Some(exit);
    record_command(ctx, inh, &spec, exit);
    check_exit_code(p, exit, &spec.argv)?;
    let out = job.collect(&staged, &streams, &dirs, exit)?;
    if let (Some(c), Some(k)) = (&ctx.cache, &cache_key) {
        c.store(k, &dirs.out, &out, ctx.logger());
    }
    Ok((out, false))
}

/// Makes a job's log, opening with its command line (and where its
/// captured streams go); returns its path.
fn start_log(log: &Path, spec: &CommandSpec) -> Result<PathBuf> {
    use std::io::Write;
    let mut head = format!("$ {}\n", spec.argv.join(" "));
    if let Some(c) = &spec.container {
        head.push_str(&format!("# in a container of {}\n", c.image));
    }
    for (name, path) in [("stdout", &spec.stdout), ("stderr", &spec.stderr)] {
        if let Some(p) = path {
            head.push_str(&format!("# {name} goes to {}\n", p.display()));
        }
    }
    let mut f = std::fs::File::create(log)
        .map_err(|e| CwlError::Execution(format!("cannot make the log {}: {e}", log.display())))?;
    f.write_all(head.as_bytes())?;
    Ok(log.to_path_buf())
}

/// A CommandLineTool job going through its phases.
struct Job<'a> {
    p: &'a Value,
    ctx: &'a RunCtx,
    reqs: Reqs,
    ev: Evaluator,
    schemas: Schemas,
}

/// A job once its inputs and InitialWorkDir are in place.
struct Staged {
    /// Inputs (at their staged paths) and runtime.
    scope: Scope,
    /// The container it runs in, if any, and its engine.
    container: Option<(Arc<Podman>, ContainerRun)>,
    /// Where its entries are, and its container mounts.
    places: Places,
    /// Locations it reaches through links.
    linked: Vec<PathBuf>,
    /// Where its outputs (and its stdin) may lie.
    bounds: Bounds,
    /// Whether it updates inputs in place.
    inplace: bool,
}

impl Job<'_> {
    /// Stage the inputs, find the container, work out the runtime and make
    /// the InitialWorkDir entries.
    async fn stage(&self, inputs: Map<String, Value>, dirs: &JobDirs) -> Result<Staged> {
        let (reqs, ev, ctx) = (&self.reqs, &self.ev, self.ctx);
        let mut stager = Stager::new(&ctx.access);
        let mut inputs = Value::Object(inputs);
        stager.stage_inputs(&mut inputs, &dirs.stg, &mut 0)?;
        let container = container_for(reqs, ctx, &dirs.out).await?;
        // Where the tool sees its output directory.
        let seen_outdir = container
            .as_ref()
            .map_or(dirs.out.clone(), |(_, c)| c.outdir.clone());
        let runtime = runtime_obj(reqs, ev, &inputs, &seen_outdir, &dirs.tmp)?;
        let inplace = inplace_update(reqs);
        let mut places = Places {
            outdir: dirs.out.clone(),
            seen_outdir,
            jobdir: dirs.aux.clone(),
            absolute_allowed: container.is_some() && reqs.docker().is_some_and(|(_, req)| req),
            mounts: vec![],
        };
        if let Some(r) = reqs.get("InitialWorkDirRequirement") {
            let scope = Scope {
                inputs: inputs.clone(),
                this: Value::Null,
                runtime: runtime.clone(),
            };
            initial_workdir(
                r,
                ev,
                &scope,
                &mut places,
                &mut stager,
                &mut inputs,
                inplace,
            )?;
            dirs.hand_over(ctx.run_as)?;
        }
        Ok(Staged {
            scope: Scope {
                inputs,
                this: Value::Null,
                runtime,
            },
            container,
            places,
            bounds: Bounds::new(&[&dirs.out, &dirs.tmp, &dirs.stg], &stager.linked),
            linked: stager.linked,
            inplace,
        })
    }

    /// The command to run: its command line, environment, streams, time
    /// limit, network, and what its sandbox or container shows.
    fn bind(&self, staged: &mut Staged, dirs: &JobDirs) -> Result<(CommandSpec, Streams)> {
        let (p, reqs, ev, scope) = (self.p, &self.reqs, &self.ev, &staged.scope);
        let shell = reqs.get("ShellCommandRequirement").is_some();
        let argv = bind::command_line(p, ev, scope, &self.schemas, shell)?;
        let streams = streams(p, ev, scope)?;
        let in_container = staged.container.is_some();
        let home = &staged.places.seen_outdir;
        let spec = CommandSpec {
            argv,
            cwd: dirs.out.clone(),
            tmpdir: dirs.tmp.clone(),
            env: environment(reqs, ev, scope, home, &dirs.tmp, in_container)?,
            stdin: stdin(p, ev, scope, &dirs.out, &staged.bounds)?,
            stdout: stream_path(&dirs.out, "stdout", streams.stdout.as_deref())?,
            stderr: stream_path(&dirs.out, "stderr", streams.stderr.as_deref())?,
            timeout: time_limit(reqs, ev, scope)?,
            read_only_paths: staged
                .linked
                .iter()
                .cloned()
                .chain([dirs.stg.clone()])
                .collect(),
            // Inputs updated in place are reached through links in the
            // output directory and must stay writable.
            read_write_paths: if staged.inplace {
                staged.linked.clone()
            } else {
                vec![]
            },
            network: network_access(reqs, ev, scope)?,
            container: staged.container.as_ref().map(|(_, c)| ContainerRun {
                mounts: std::mem::take(&mut staged.places.mounts),
                ..c.clone()
            }),
            log: None,
            resources: scheduled_resources(reqs, ev, scope)?,
            job: None,
        };
        Ok((spec, streams))
    }

    /// Make its image available, then run the command; its exit code.
    async fn execute(
        &self,
        staged: &Staged,
        spec: &CommandSpec,
        dirs: &JobDirs,
        track: Option<&JobTrack>,
    ) -> Result<i32> {
        let podman = staged.container.as_ref().map(|(e, _)| e);
        if let Some(podman) = podman {
            let scratch = dirs.aux.join("build");
            prepare_image(self.p, &self.reqs, self.ctx, podman, spec, &scratch).await?;
        }
        execute(
            self.ctx,
            &self.reqs,
            &staged.scope.runtime,
            podman,
            spec,
            track,
        )
        .await
    }

    /// Its output object, every File and Directory checked to lie in the
    /// job or among its inputs.
    fn collect(
        &self,
        staged: &Staged,
        streams: &Streams,
        dirs: &JobDirs,
        code: i32,
    ) -> Result<Value> {
        let mut scope = staged.scope.clone();
        scope.runtime["exitCode"] = json!(code);
        let collector = Collector {
            outdir: &dirs.out,
            ev: &self.ev,
            scope: &scope,
            schemas: &self.schemas,
            bounds: &staged.bounds,
        };
        let mut out = collector.collect(self.p, streams)?;
        if let Some(ns) = self.p.get("__ns").and_then(Value::as_object) {
            outputs::expand_formats(&mut out, ns);
        }
        Ok(out)
    }
}

/// The job's directories: siblings named after it, `jobN` (the output
/// directory), `jobN.tmp`, and when needed `jobN.stg` (staged inputs) and
/// `jobN.aux` (container mounts and builds). Two directories per job, not
/// three: a scatter of a thousand jobs makes thousands of them, and making
/// one is not free.
struct JobDirs {
    out: PathBuf,
    tmp: PathBuf,
    stg: PathBuf,
    aux: PathBuf,
}

impl JobDirs {
    fn make(ctx: &RunCtx) -> Result<JobDirs> {
        let out = ctx.fresh_name("job");
        let sibling = |ext: &str| {
            let mut name = out.clone().into_os_string();
            name.push(ext);
            PathBuf::from(name)
        };
        let dirs = JobDirs {
            tmp: sibling(".tmp"),
            stg: sibling(".stg"),
            aux: sibling(".aux"),
            out,
        };
        for d in [&dirs.out, &dirs.tmp] {
            std::fs::create_dir(d)?;
            if let Some((uid, gid)) = ctx.run_as {
                std::os::unix::fs::chown(d, Some(uid), Some(gid))?;
            }
        }
        Ok(dirs)
    }

    /// Hand what the engine made in the output directory (InitialWorkDir
    /// entries) and for container mounts to the tools' user, links
    /// themselves and not what they lead to.
    fn hand_over(&self, run_as: Option<(u32, u32)>) -> Result<()> {
        let Some((uid, gid)) = run_as else {
            return Ok(());
        };
        fn walk(dir: &Path, uid: u32, gid: u32) -> Result<()> {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return Ok(());
            };
            for e in entries {
                let e = e?;
                std::os::unix::fs::lchown(e.path(), Some(uid), Some(gid))?;
                if e.file_type()?.is_dir() {
                    walk(&e.path(), uid, gid)?;
                }
            }
            Ok(())
        }
        walk(&self.out, uid, gid)?;
        walk(&self.aux, uid, gid)
    }
}

/// The job's key in the run's cache, when there is one and the tool may be
/// reused.
fn cache_key(
    p: &Value,
    reqs: &Reqs,
    ev: &Evaluator,
    inputs: &Map<String, Value>,
    ctx: &RunCtx,
) -> Result<Option<String>> {
    let Some(c) = &ctx.cache else {
        return Ok(None);
    };
    let values = Value::Object(inputs.clone());
    let rt = runtime_obj(reqs, ev, &values, Path::new("/"), Path::new("/"))?;
    c.job_key(ctx.logger(), ctx.containers, p, reqs, ev, inputs, &rt)
}

/// The cached output object of the job with `key`, copied into the run.
fn reuse(p: &Value, inh: &Inherited, ctx: &RunCtx, key: Option<&str>) -> Option<Value> {
    let (c, k) = (ctx.cache.as_ref()?, key?);
    let out = c.lookup(k, ctx.logger(), || ctx.fresh_dir("cached"))?;
    ctx.log(&format!("reused {} from the cache", job_name(p, inh)));
    Some(out)
}

/// Whether the tool updates its inputs in place (`InplaceUpdateRequirement`).
fn inplace_update(reqs: &Reqs) -> bool {
    reqs.get("InplaceUpdateRequirement")
        .and_then(|r| r.get("inplaceUpdate"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The job's environment: `HOME` (the output directory as the tool sees
/// it), `TMPDIR`, the engine's `PATH` outside containers (the image's
/// inside), and `EnvVarRequirement`'s definitions.
fn environment(
    reqs: &Reqs,
    ev: &Evaluator,
    scope: &Scope,
    home: &Path,
    tmpdir: &Path,
    in_container: bool,
) -> Result<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    env.insert("HOME".to_string(), home.display().to_string());
    env.insert("TMPDIR".to_string(), tmpdir.display().to_string());
    if !in_container {
        env.insert(
            "PATH".to_string(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
        );
    }
    if let Some(r) = reqs.get("EnvVarRequirement") {
        for d in r
            .get("envDef")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = d
                .get("envName")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let val = ev.eval(d.get("envValue").unwrap_or(&Value::Null), scope)?;
            env.insert(name, value_str(&val));
        }
    }
    Ok(env)
}

/// A string field of the tool (`stdout`, `stderr`, `stdin`), evaluated.
fn text_field(p: &Value, key: &str, ev: &Evaluator, scope: &Scope) -> Result<Option<String>> {
    match p.get(key) {
        Some(v) => Ok(Some(value_str(&ev.eval(v, scope)?))),
        None => Ok(None),
    }
}

/// Where standard output and error go: the tool's names, or a name of the
/// engine's for outputs of type `stdout`/`stderr` without one.
fn streams(p: &Value, ev: &Evaluator, scope: &Scope) -> Result<Streams> {
    let mut s = Streams {
        stdout: text_field(p, "stdout", ev, scope)?,
        stderr: text_field(p, "stderr", ev, scope)?,
    };
    for o in p
        .get("outputs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match o.get("type").and_then(Value::as_str) {
            Some("stdout") if s.stdout.is_none() => {
                s.stdout = Some(format!("stdout-{}", std::process::id()))
            }
            Some("stderr") if s.stderr.is_none() => {
                s.stderr = Some(format!("stderr-{}", std::process::id()))
            }
            _ => {}
        }
    }
    Ok(s)
}

/// The file standard input comes from (`stdin`), relative to the output
/// directory unless absolute: one of the job's inputs or files (the
/// engine opens it, for a tool that may not see the host).
fn stdin(
    p: &Value,
    ev: &Evaluator,
    scope: &Scope,
    outdir: &Path,
    bounds: &Bounds,
) -> Result<Option<PathBuf>> {
    let Some(s) = text_field(p, "stdin", ev, scope)? else {
        return Ok(None);
    };
    let path = outdir.join(s);
    bounds.check("stdin", &path)?;
    Ok(Some(path))
}

/// Where standard output or error (`stream`) named `name` goes: a file of
/// the output directory, never elsewhere (the engine creates it).
fn stream_path(outdir: &Path, stream: &str, name: Option<&str>) -> Result<Option<PathBuf>> {
    let Some(name) = name else {
        return Ok(None);
    };
    let rel = Path::new(name);
    let plain = rel
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    let path = outdir.join(rel);
    // A directory on the way may be a link InitialWorkDir made.
    let inside = path
        .parent()
        .and_then(|d| std::fs::canonicalize(d).ok())
        .zip(std::fs::canonicalize(outdir).ok())
        .is_some_and(|(d, o)| d.starts_with(o));
    if name.is_empty() || !plain || !inside {
        return Err(CwlError::Validation(format!(
            "{stream}: '{name}' must name a file inside the output directory"
        )));
    }
    Ok(Some(path))
}

/// `ToolTimeLimit`: none for 0 or when absent.
fn time_limit(reqs: &Reqs, ev: &Evaluator, scope: &Scope) -> Result<Option<Duration>> {
    let Some(t) = reqs.get("ToolTimeLimit").and_then(|r| r.get("timelimit")) else {
        return Ok(None);
    };
    let t = ev.eval(t, scope)?;
    match t.as_f64() {
        Some(s) if s > 0.0 => Ok(Some(Duration::from_secs_f64(s))),
        Some(0.0) => Ok(None),
        _ => Err(CwlError::Validation(format!(
            "ToolTimeLimit: timelimit must be a non-negative number, got {t}"
        ))),
    }
}

/// `NetworkAccess`: off unless the tool asks for it.
fn network_access(reqs: &Reqs, ev: &Evaluator, scope: &Scope) -> Result<bool> {
    let Some(v) = reqs
        .get("NetworkAccess")
        .and_then(|r| r.get("networkAccess"))
    else {
        return Ok(false);
    };
    match ev.eval(v, scope)? {
        Value::Bool(b) => Ok(b),
        other => Err(CwlError::Validation(format!(
            "NetworkAccess: networkAccess must be a boolean, got {other}"
        ))),
    }
}

/// Run the command once a slot, its cores and memory are free: in its
/// container, or through the run's executor. Returns its exit code.
async fn execute(
    ctx: &RunCtx,
    reqs: &Reqs,
    runtime: &Value,
    podman: Option<&Arc<Podman>>,
    spec: &CommandSpec,
    track: Option<&JobTrack>,
) -> Result<i32> {
    use crate::executor::Executor;
    use std::sync::atomic::Ordering::SeqCst;
    ctx.log(&format!("running {}", spec.argv.join(" ")));
    let _permit = ctx.reserve(&declared_resources(reqs, runtime)).await?;
    if let Some(t) = track {
        t.started();
    }
    ctx.progress.running.fetch_add(1, SeqCst);
    let r = match podman {
        Some(podman) => podman.run(spec).await,
        None => ctx.executor.run(spec).await,
    };
    ctx.progress.running.fetch_sub(1, SeqCst);
    r
}

/// Note the command and its exit code in the provenance record.
fn record_command(ctx: &RunCtx, inh: &Inherited, spec: &CommandSpec, code: i32) {
    if let (Some(rec), Some(id)) = (&ctx.recorder, inh.record) {
        rec.command(
            id,
            crate::provenance::Command {
                argv: spec.argv.clone(),
                exit_code: code,
                env: spec.env.clone(),
                image: spec.container.as_ref().map(|c| c.image.clone()),
            },
        );
    }
}

/// Success is exit code 0, or one of the tool's `successCodes`.
fn check_exit_code(p: &Value, code: i32, argv: &[String]) -> Result<()> {
    let success: Vec<i64> = p
        .get("successCodes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_i64)
        .collect();
    let ok = if success.is_empty() {
        code == 0
    } else {
        success.contains(&i64::from(code))
    };
    if ok {
        return Ok(());
    }
    Err(CwlError::Execution(format!(
        "command '{}' exited with code {code}",
        argv.join(" ")
    )))
}

/// The `runtime` object of a job: its directories as the tool sees them,
/// and the resources its ResourceRequirement works out to.
fn runtime_obj(
    reqs: &Reqs,
    ev: &Evaluator,
    inputs: &Value,
    outdir: &Path,
    tmpdir: &Path,
) -> Result<Value> {
    let mut cores = json!(1);
    let mut ram = json!(1024);
    let mut outsz = json!(1024);
    let mut tmpsz = json!(1024);
    if let Some(r) = reqs.get("ResourceRequirement") {
        let scope = Scope {
            inputs: inputs.clone(),
            this: Value::Null,
            runtime: Value::Null,
        };
        let get = |k1: &str, k2: &str| -> Result<Option<Value>> {
            let v = r.get(k1).or_else(|| r.get(k2));
            match v {
                Some(v) => {
                    let x = ev.eval(v, &scope)?;
                    let x = match x.as_f64() {
                        Some(f) => json!(f.ceil() as i64),
                        None => x,
                    };
                    Ok(Some(x))
                }
                None => Ok(None),
            }
        };
        if let Some(c) = get("coresMin", "coresMax")? {
            cores = c;
        }
        if let Some(c) = get("ramMin", "ramMax")? {
            ram = c;
        }
        if let Some(c) = get("outdirMin", "outdirMax")? {
            outsz = c;
        }
        if let Some(c) = get("tmpdirMin", "tmpdirMax")? {
            tmpsz = c;
        }
    }
    Ok(json!({
        "outdir": outdir.display().to_string(),
        "tmpdir": tmpdir.display().to_string(),
        "cores": cores, "ram": ram, "outdirSize": outsz, "tmpdirSize": tmpsz
    }))
}

/// The container a job runs in, if any (its image made available later,
/// by [`prepare_image`]), and the engine that runs it.
async fn container_for(
    reqs: &Reqs,
    ctx: &RunCtx,
    outdir: &Path,
) -> Result<Option<(Arc<Podman>, ContainerRun)>> {
    let Some((req, required)) = reqs.docker() else {
        return Ok(None);
    };
    match ctx.containers {
        ContainerMode::Off => return Ok(None),
        ContainerMode::Reject if required => {
            return Err(CwlError::Unsupported(
                "DockerRequirement: containers are turned off (--reject-docker)".into(),
            ));
        }
        ContainerMode::Reject => return Ok(None),
        ContainerMode::Auto => {}
    }
    let podman = match ctx.podman().await {
        Ok(p) => p,
        Err(why) if required => {
            return Err(CwlError::Unsupported(format!(
                "DockerRequirement: no container engine works on this machine ({why})"
            )));
        }
        Err(_) => return Ok(None),
    };
    let seen_outdir = match req.get("dockerOutputDirectory") {
        None | Some(Value::Null) => outdir.to_path_buf(),
        Some(Value::String(d)) if d.starts_with('/') => PathBuf::from(d),
        Some(other) => {
            return Err(CwlError::Validation(format!(
                "DockerRequirement: dockerOutputDirectory must be an absolute path, got {other}"
            )));
        }
    };
    Ok(Some((
        podman,
        ContainerRun {
            image: crate::container::image_name(req)?,
            outdir: seen_outdir,
            mounts: vec![],
        },
    )))
}

/// Make the image of a job's container available: built, loaded or
/// imported with the network only when the job has it, in a confined run.
async fn prepare_image(
    p: &Value,
    reqs: &Reqs,
    ctx: &RunCtx,
    podman: &Podman,
    spec: &CommandSpec,
    scratch: &Path,
) -> Result<()> {
    let (Some((req, _)), Some(c)) = (reqs.docker(), &spec.container) else {
        return Ok(());
    };
    let base = PathBuf::from(p.get("__base").and_then(Value::as_str).unwrap_or("."));
    let build = Build {
        network: spec.network,
        confined: ctx.confined,
        access: &ctx.access,
    };
    podman
        .ensure_image(req, &c.image, &base, scratch, &build)
        .await
}

/// The cores and memory (MiB) a job's ResourceRequirement asks for, as
/// worked out in its runtime; a job that declares none reserves one core.
fn declared_resources(reqs: &Reqs, runtime: &Value) -> Resources {
    let declared = reqs.get("ResourceRequirement");
    let ask = |k: &str, keys: [&str; 2]| -> u64 {
        let given = declared.is_some_and(|r| keys.iter().any(|f| r.get(*f).is_some()));
        match runtime.get(k).and_then(Value::as_f64) {
            Some(v) if given && v > 0.0 => v.ceil() as u64,
            _ => 0,
        }
    };
    Resources {
        cores: ask("cores", ["coresMin", "coresMax"]).max(1),
        ram_mib: ask("ram", ["ramMin", "ramMax"]),
    }
}

/// What a job asks of a scheduler: the cores and memory of its `runtime`
/// (1 core and 1,024 MiB unless its ResourceRequirement says otherwise)
/// and the GPUs of `cwltool:CUDARequirement` (`cudaDeviceCountMin`, 1
/// when the requirement does not say; none without it).
fn scheduled_resources(reqs: &Reqs, ev: &Evaluator, scope: &Scope) -> Result<JobResources> {
    let num = |k: &str| scope.runtime.get(k).and_then(Value::as_f64);
    let gpus = match reqs.get("CUDARequirement") {
        None => 0,
        Some(r) => match r.get("cudaDeviceCountMin") {
            None => 1,
            Some(v) => match ev.eval(v, scope)?.as_f64() {
                Some(n) if n >= 0.0 => n.ceil() as u64,
                _ => {
                    return Err(CwlError::Validation(format!(
                        "CUDARequirement: cudaDeviceCountMin must be a non-negative number, got {v}"
                    )));
                }
            },
        },
    };
    Ok(JobResources {
        cores: num("cores").map_or(1, |c| (c.ceil() as u64).max(1)),
        ram_mib: num("ram").map_or(1024, |r| r.ceil().max(0.0) as u64),
        gpus,
    })
}

/// A name for a job in log lines: its step (and scatter position), else
/// the tool's id.
pub fn job_name(p: &Value, inh: &Inherited) -> String {
    match (&inh.step, inh.scatter_index) {
        (Some(s), Some(i)) => format!("{s}[{i}]"),
        (Some(s), None) => s.clone(),
        _ => p
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("the tool")
            .to_string(),
    }
}
