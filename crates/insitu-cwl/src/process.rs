//! What every process of a run shares ([`RunCtx`]: the job directories'
//! root, slots, cores and memory, the executor, the cache, the provenance
//! recorder), and the preparation of a process's inputs (defaults, types,
//! listings, contents, secondary files, formats).

use crate::access::Access;
use crate::cache::JobCache;
use crate::container::Podman;
use crate::error::{CwlError, Result};
use crate::executor::Executor;
use crate::expr::{Evaluator, Scope};
use crate::files;
use crate::log::Log;
use crate::options::ContainerMode;
use crate::requirements::Reqs;
use crate::types::{self, Schemas};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// State shared by everything in one run.
pub struct RunCtx {
    /// Where job directories are created.
    pub tmp_root: PathBuf,
    /// Limits concurrent tool executions.
    pub slots: Arc<tokio::sync::Semaphore>,
    /// The machine's cores and memory (MiB), reserved by running jobs as
    /// their ResourceRequirement declares.
    cores: Arc<tokio::sync::Semaphore>,
    ram_mib: Arc<tokio::sync::Semaphore>,
    totals: Resources,
    /// Runs the commands.
    pub executor: Arc<dyn Executor>,
    /// Time limit of one JavaScript evaluation.
    pub js_timeout: Duration,
    counter: AtomicUsize,
    /// Suppress progress messages.
    pub quiet: bool,
    /// Collects provenance records (`--provenance`).
    pub recorder: Option<Arc<crate::provenance::Recorder>>,
    /// Counts of step jobs, for the progress display.
    pub progress: Arc<Progress>,
    /// What `DockerRequirement` does in this run.
    pub containers: ContainerMode,
    /// The container engine, probed when a job first needs it.
    podman: tokio::sync::OnceCell<std::result::Result<Arc<Podman>, String>>,
    /// The job cache (`--cachedir`), if any.
    pub cache: Option<Arc<JobCache>>,
    /// Where the run may read (its own directory included).
    pub access: Access,
    /// Whether the run is confined ([`crate::options::Confinement`]).
    pub confined: bool,
    /// The user and group tools run as, when not the engine's.
    pub run_as: Option<(u32, u32)>,
    /// The run's event stream (`--events`), if any.
    pub events: Option<Arc<crate::events::Events>>,
}

/// Step jobs (one per step, one per scattered job) of a run: known so far,
/// running, finished. Totals grow as scatters expand.
#[derive(Debug, Default)]
pub struct Progress {
    pub total: AtomicUsize,
    pub running: AtomicUsize,
    pub done: AtomicUsize,
}

impl Progress {
    /// `done/total jobs done, N running`.
    pub fn line(&self) -> String {
        format!(
            "{}/{} jobs done, {} running",
            self.done.load(Ordering::SeqCst),
            self.total.load(Ordering::SeqCst),
            self.running.load(Ordering::SeqCst)
        )
    }
}

impl RunCtx {
    /// A new context with `parallel` concurrent jobs.
    pub fn new(tmp_root: PathBuf, parallel: usize, executor: Arc<dyn Executor>) -> Self {
        let totals = Resources::host();
        RunCtx {
            tmp_root,
            slots: Arc::new(tokio::sync::Semaphore::new(parallel.max(1))),
            cores: Arc::new(tokio::sync::Semaphore::new(totals.cores as usize)),
            ram_mib: Arc::new(tokio::sync::Semaphore::new(totals.ram_mib as usize)),
            totals,
            executor,
            js_timeout: Duration::from_secs(20),
            counter: AtomicUsize::new(0),
            quiet: false,
            recorder: None,
            progress: Arc::new(Progress::default()),
            containers: ContainerMode::Auto,
            podman: tokio::sync::OnceCell::new(),
            cache: None,
            access: Access::anywhere(),
            confined: false,
            run_as: None,
            events: None,
        }
    }

    /// The container engine, or why there is none.
    pub async fn podman(&self) -> std::result::Result<Arc<Podman>, String> {
        self.podman
            .get_or_init(|| async {
                Podman::probe()
                    .await
                    .map(|p| Arc::new(p.running_as(self.run_as)))
            })
            .await
            .clone()
    }

    /// Wait for a slot and for the cores and memory a job needs (at most
    /// the machine's), and hold them until the returned value is dropped.
    pub async fn reserve(&self, want: &Resources) -> Result<Reservation> {
        let fit = Resources {
            cores: want.cores.clamp(1, self.totals.cores),
            ram_mib: want.ram_mib.min(self.totals.ram_mib),
        };
        if fit != *want {
            self.log(&format!(
                "a job asks for {} cores and {} MiB; this machine has {} and {}: it gets {} and {}",
                want.cores,
                want.ram_mib,
                self.totals.cores,
                self.totals.ram_mib,
                fit.cores,
                fit.ram_mib
            ));
        }
        let closed = |e: tokio::sync::AcquireError| CwlError::Execution(e.to_string());
        // Always in this order, so that waiting jobs cannot block each other.
        let slot = self.slots.clone().acquire_owned().await.map_err(closed)?;
        let cores = self
            .cores
            .clone()
            .acquire_many_owned(fit.cores as u32)
            .await
            .map_err(closed)?;
        let ram = self
            .ram_mib
            .clone()
            .acquire_many_owned(fit.ram_mib as u32)
            .await
            .map_err(closed)?;
        Ok(Reservation {
            _held: (slot, cores, ram),
        })
    }

    /// Reserve nothing of this machine's cores and memory for jobs (they
    /// run elsewhere, on a cluster that reserves them); the slots stay.
    pub fn unlimited_resources(&mut self) {
        let totals = Resources {
            cores: 1 << 16,
            ram_mib: u64::from(u32::MAX),
        };
        self.cores = Arc::new(tokio::sync::Semaphore::new(totals.cores as usize));
        self.ram_mib = Arc::new(tokio::sync::Semaphore::new(totals.ram_mib as usize));
        self.totals = totals;
    }

    /// A fresh, unique path under the temporary root (nothing is made).
    pub fn fresh_name(&self, prefix: &str) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        self.tmp_root.join(format!("{prefix}{n}"))
    }

    /// A fresh, unique directory under the temporary root.
    pub fn fresh_dir(&self, prefix: &str) -> Result<PathBuf> {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let p = self.tmp_root.join(format!("{prefix}{n}"));
        std::fs::create_dir_all(&p)?;
        Ok(p)
    }

    /// Where log lines go.
    pub fn logger(&self) -> Log {
        Log { quiet: self.quiet }
    }

    /// Log a progress line on stderr unless quiet.
    pub fn log(&self, msg: &str) {
        self.logger().line(msg);
    }
}

/// Cores and memory: a job's reservation, or what the machine has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resources {
    pub cores: u64,
    pub ram_mib: u64,
}

impl Resources {
    /// This machine's cores and memory (the memory from `/proc/meminfo`;
    /// 4 GiB where it cannot be read).
    pub fn host() -> Resources {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
        let ram_mib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .map_or(4096, |kib| kib / 1024);
        Resources {
            cores,
            ram_mib: ram_mib.min(u32::MAX as u64),
        }
    }
}

/// A job's hold on a slot, cores and memory; released when dropped.
pub struct Reservation {
    _held: (
        tokio::sync::OwnedSemaphorePermit,
        tokio::sync::OwnedSemaphorePermit,
        tokio::sync::OwnedSemaphorePermit,
    ),
}

/// Fill in defaults, check types and presence, load contents and listings;
/// every File and Directory must be one `access` allows.
pub fn prepare_inputs(
    p: &Value,
    job: &Value,
    reqs: &Reqs,
    ev: &Evaluator,
    access: &Access,
) -> Result<Map<String, Value>> {
    let schemas = reqs.schemas();
    let formats = crate::ontology::Formats::of(p);
    for f in formats.schema_files() {
        access.check("$schemas file", f)?;
    }
    let mut format_expressions: Vec<(String, &Value)> = vec![];
    let mut out = Map::new();
    let default_listing = reqs
        .get("LoadListingRequirement")
        .and_then(|r| r.get("loadListing"))
        .and_then(Value::as_str)
        .unwrap_or(
            if p.get("cwlVersion").and_then(Value::as_str) == Some("v1.0") {
                "deep_listing"
            } else {
                "no_listing"
            },
        )
        .to_string();
    for inp in p
        .get("inputs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let id = inp
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let t = inp.get("type").cloned().unwrap_or(json!("Any"));
        let mut v = job.get(&id).cloned().unwrap_or(Value::Null);
        if v.is_null()
            && let Some(d) = inp.get("default")
        {
            v = d.clone();
        }
        if v.is_null() && !types::is_optional(&t) {
            return Err(CwlError::Input(format!("missing required input '{id}'")));
        }
        if !v.is_null() && !types::matches(&v, &t, &schemas) {
            return Err(CwlError::Input(format!(
                "input '{id}': value {} does not match type {}",
                short_json(&v),
                t
            )));
        }
        let what = format!("input '{id}'");
        // Before anything is listed or read from them.
        access.check_value(&what, &v)?;
        let listing = inp
            .get("loadListing")
            .and_then(Value::as_str)
            .unwrap_or(&default_listing)
            .to_string();
        files::fill_fs(&mut v, &listing)?;
        let load = inp
            .get("loadContents")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            || inp
                .get("inputBinding")
                .and_then(|b| b.get("loadContents"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
        if load {
            load_all_contents(&mut v)?;
        }
        if let Some(sf) = inp.get("secondaryFiles") {
            discover_secondary(&mut v, sf, ev, job, !reqs.nested)?;
        }
        record_secondary(&mut v, &t, &schemas, ev, job, !reqs.nested, &formats)?;
        // What listings and secondary files added.
        access.check_value(&what, &v)?;
        if let Some(f) = inp.get("format") {
            if crate::expr::has_expr(&f.to_string()) {
                if !v.is_null() {
                    format_expressions.push((id.clone(), f));
                }
            } else {
                formats.check(&v, f, &id)?;
            }
        }
        out.insert(id, v);
    }
    // Format expressions see the inputs (`self` is null; `runtime` is not
    // known yet, so one that cannot be evaluated here is not checked).
    if !format_expressions.is_empty() {
        let scope = Scope {
            inputs: Value::Object(out.clone()),
            this: Value::Null,
            runtime: Value::Null,
        };
        for (id, f) in format_expressions {
            if let (Some(v), Ok(want)) = (out.get(&id), ev.eval(f, &scope)) {
                formats.check(v, &want, &id)?;
            }
        }
    }
    Ok(out)
}

fn record_secondary(
    v: &mut Value,
    t: &Value,
    schemas: &Schemas,
    ev: &Evaluator,
    job: &Value,
    discover: bool,
    formats: &crate::ontology::Formats,
) -> Result<()> {
    let rt = types::resolve_type(t, schemas).clone();
    match (&rt, v) {
        (Value::Array(alts), v) => {
            for a in alts {
                if types::matches(v, a, schemas) {
                    return record_secondary(v, a, schemas, ev, job, discover, formats);
                }
            }
        }
        (Value::Object(m), Value::Object(vm))
            if m.get("type").and_then(Value::as_str) == Some("record") =>
        {
            for f in m
                .get("fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let n = f.get("name").and_then(Value::as_str).unwrap_or("");
                if let Some(fv) = vm.get_mut(n) {
                    if let Some(sf) = f.get("secondaryFiles") {
                        discover_secondary(fv, sf, ev, job, discover)?;
                    }
                    if let Some(fmt) = f.get("format") {
                        formats.check(fv, fmt, n)?;
                    }
                    let ft = f.get("type").cloned().unwrap_or(Value::Null);
                    record_secondary(fv, &ft, schemas, ev, job, discover, formats)?;
                }
            }
        }
        (Value::Object(m), Value::Array(items))
            if m.get("type").and_then(Value::as_str) == Some("array") =>
        {
            let it = m.get("items").cloned().unwrap_or(Value::Null);
            for x in items {
                record_secondary(x, &it, schemas, ev, job, discover, formats)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn load_all_contents(v: &mut Value) -> Result<()> {
    match v {
        Value::Object(m) if m.get("class").and_then(Value::as_str) == Some("File") => {
            if !m.contains_key("contents")
                && let Some(p) = m.get("path").and_then(Value::as_str)
            {
                let c = files::load_contents(Path::new(p))?;
                m.insert("contents".into(), Value::String(c));
            }
        }
        Value::Array(a) => {
            for x in a {
                load_all_contents(x)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Attach secondary files found next to primary input files.
pub fn discover_secondary(
    v: &mut Value,
    sf: &Value,
    ev: &Evaluator,
    inputs: &Value,
    discover: bool,
) -> Result<()> {
    secondary_files(v, sf, ev, inputs, discover, true)
}

/// Like [`discover_secondary`], with the default of `required` given
/// (true for inputs, false for outputs).
pub fn secondary_files(
    v: &mut Value,
    sf: &Value,
    ev: &Evaluator,
    inputs: &Value,
    discover: bool,
    default_required: bool,
) -> Result<()> {
    match v {
        Value::Array(a) => {
            for x in a {
                secondary_files(x, sf, ev, inputs, discover, default_required)?;
            }
        }
        Value::Object(m) if m.get("class").and_then(Value::as_str) == Some("File") => {
            let Some(path) = m.get("path").and_then(Value::as_str).map(PathBuf::from) else {
                return Ok(());
            };
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            let base = m
                .get("basename")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let mut existing: Vec<Value> = m
                .get("secondaryFiles")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for spec in sf.as_array().into_iter().flatten() {
                let mut pat = spec.get("pattern").cloned().unwrap_or(Value::Null);
                let mut required = spec
                    .get("required")
                    .cloned()
                    .unwrap_or(Value::Bool(default_required));
                if let Value::String(ps) = &pat
                    && let Some(stripped) = ps.strip_suffix('?')
                {
                    pat = Value::String(stripped.to_string());
                    required = Value::Bool(false);
                }
                let scope = Scope {
                    inputs: inputs.clone(),
                    this: Value::Object(m.clone()),
                    runtime: Value::Null,
                };
                let names: Vec<Value> = match &pat {
                    Value::String(s) if crate::expr::has_expr(s) => match ev.eval_str(s, &scope)? {
                        Value::Array(a) => a,
                        Value::Null => vec![],
                        o => vec![o],
                    },
                    Value::String(s) => vec![Value::String(files::secondary_name(&base, s))],
                    _ => vec![],
                };
                for n in names {
                    let entry = match n {
                        Value::String(name) => {
                            let p = dir.join(&name);
                            let class = if p.is_dir() { "Directory" } else { "File" };
                            json!({"class": class, "location": files::path_to_loc(&p)})
                        }
                        Value::Object(mut om) => {
                            if !om.contains_key("location")
                                && let Some(pp) = om.get("path").and_then(Value::as_str)
                            {
                                let full = dir.join(pp);
                                om.insert(
                                    "location".into(),
                                    Value::String(files::path_to_loc(&full)),
                                );
                            }
                            Value::Object(om)
                        }
                        o => o,
                    };
                    let loc = entry
                        .get("location")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    if existing
                        .iter()
                        .any(|e| e.get("location").and_then(Value::as_str) == Some(loc.as_str()))
                    {
                        continue;
                    }
                    let p = files::loc_to_path(&loc);
                    let wanted = files::basename(&p);
                    let present = existing.iter().any(|e| {
                        e.get("basename").and_then(Value::as_str) == Some(wanted.as_str())
                    });
                    if present {
                        continue;
                    }
                    if !p.exists() || !discover {
                        let req = match &required {
                            Value::Bool(b) => *b,
                            Value::String(s) => ev.eval_str(s, &scope)?.as_bool().unwrap_or(false),
                            _ => true,
                        };
                        if req {
                            return Err(CwlError::Input(format!(
                                "missing required secondary file {}",
                                p.display()
                            )));
                        }
                        continue;
                    }
                    let mut entry = entry;
                    files::fill_fs(&mut entry, "no_listing")?;
                    existing.push(entry);
                }
            }
            m.insert("secondaryFiles".into(), Value::Array(existing));
        }
        _ => {}
    }
    Ok(())
}

/// Compact JSON for error messages.
pub fn short_json(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 120 {
        format!(
            "{}...",
            &s[..s.char_indices().nth(117).map(|x| x.0).unwrap_or(0)]
        )
    } else {
        s
    }
}
