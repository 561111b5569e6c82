//! The pipeline catalogue: system pipelines shipped with the platform
//! (one directory per pipeline under `pipelines.catalogue_dir`, its CWL
//! files beside a `pipeline.toml` of details), system pipelines pushed
//! there by developers, and each user's own, every version kept (in the
//! store) and runnable. A user sees the system's pipelines and their own;
//! another user's pipeline is not found, never forbidden.
//!
//! The CWL itself is checked by the engine (`insitu-cwl describe`, reading
//! only the version's own files): a version is valid when the engine
//! describes it, and its description gives the run form (inputs and their
//! types, [`described`]) and the drawing ([`graph`]). Checks are kept by
//! content, so each set of files is checked once.

pub mod described;
pub mod graph;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use insitu_api::CatalogueProblem;
use insitu_domain::pipeline::is_file_name;
use insitu_domain::{
    DefinitionError, Name, PipelineMeta, PipelineOwner, PipelineRef, PipelineVersion,
    RawPipelineMeta, UserId, Username,
};
use insitu_store::{PipelineVersionRecord, Store};
use sha2::{Digest, Sha256};

use crate::error::Error;
use described::Process;

/// Most files one pipeline version may have.
pub const MAX_FILES: usize = 64;
/// Most bytes all files of one version may hold together.
pub const MAX_BYTES: usize = 4 * 1024 * 1024;
/// How long the engine may take to check a pipeline.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// Who asks: what a user may see of the catalogue depends on it.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub user_id: UserId,
    pub username: Username,
}

/// Where a version is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Shipped with the platform, in the catalogue directory.
    Shipped,
    /// Pushed to the system catalogue by this user.
    Pushed { by: UserId },
    /// A user's own.
    Own,
}

/// One version of a pipeline, with its files.
#[derive(Debug, Clone)]
pub struct Version {
    pub reference: PipelineRef,
    pub meta: PipelineMeta,
    pub files: BTreeMap<String, String>,
    pub origin: Origin,
    /// Unix milliseconds; `None` for a shipped version.
    pub created_at_ms: Option<i64>,
}

/// A digest of what the engine reads: the main file's name and every
/// file.
fn content_key(main: &str, files: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    h.update(main.as_bytes());
    for (name, text) in files {
        h.update([0]);
        h.update(name.as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A pipeline of the catalogue: its newest version's details and every
/// version it has.
#[derive(Debug, Clone)]
pub struct Summary {
    pub latest: Version,
    pub versions: Vec<PipelineVersion>,
}

/// One thing the engine found wrong, where it found it (a file of the
/// version, 1-based line and column) when it said.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub file: Option<String>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.file, self.line, self.column) {
            (Some(file), Some(l), Some(c)) => write!(f, "{file}:{l}:{c}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// The engine's verdict on a version: valid with its description, or what
/// is wrong.
#[derive(Debug, Clone)]
pub struct Check {
    pub process: Option<Process>,
    pub diagnostics: Vec<Diagnostic>,
    /// Unix milliseconds.
    pub checked_at_ms: i64,
}

impl Check {
    pub fn is_valid(&self) -> bool {
        self.process.is_some()
    }
}

/// The shipped catalogue as last loaded.
#[derive(Debug, Default)]
struct Shipped {
    pipelines: Vec<Version>,
    problems: Vec<CatalogueProblem>,
}

pub struct Pipelines {
    store: Store,
    catalogue_dir: PathBuf,
    shipped: RwLock<Arc<Shipped>>,
    engine: Option<PathBuf>,
    /// Where drafts are written for the engine to check.
    scratch: PathBuf,
    /// Checks by content digest.
    checked: Mutex<HashMap<String, Arc<Check>>>,
}

impl Pipelines {
    /// Loads the shipped catalogue; drafts are checked under `scratch`.
    pub fn new(
        store: Store,
        catalogue_dir: &Path,
        engine: Option<PathBuf>,
        scratch: PathBuf,
    ) -> Pipelines {
        let shipped = load_shipped(catalogue_dir);
        tracing::info!(
            pipelines = shipped.pipelines.len(),
            problems = shipped.problems.len(),
            dir = %catalogue_dir.display(),
            "pipeline catalogue loaded"
        );
        Pipelines {
            store,
            catalogue_dir: catalogue_dir.to_path_buf(),
            shipped: RwLock::new(Arc::new(shipped)),
            engine,
            scratch,
            checked: Mutex::new(HashMap::new()),
        }
    }

    /// The engine program, when there is one.
    pub fn engine(&self) -> Option<&Path> {
        self.engine.as_deref()
    }

    fn shipped(&self) -> Arc<Shipped> {
        self.shipped
            .read()
            .map(|s| Arc::clone(&s))
            .unwrap_or_default()
    }

    /// Shipped pipelines that did not load, with file, field and reason.
    pub fn problems(&self) -> Vec<CatalogueProblem> {
        self.shipped().problems.clone()
    }

    /// Reads the catalogue directory again.
    pub fn reload(&self) -> Vec<CatalogueProblem> {
        let fresh = Arc::new(load_shipped(&self.catalogue_dir));
        let problems = fresh.problems.clone();
        if let Ok(mut s) = self.shipped.write() {
            *s = fresh;
        }
        problems
    }

    /// Every pipeline `viewer` may see and run: the system's (shipped and
    /// pushed) and their own, each with its newest version, by name.
    pub async fn visible_to(&self, viewer: &Viewer) -> Result<Vec<Summary>, Error> {
        let mut all: BTreeMap<PipelineRef, Summary> = BTreeMap::new();
        let mut add = |v: Version| {
            let entry = all.entry(v.reference.clone()).or_insert_with(|| Summary {
                latest: v.clone(),
                versions: Vec::new(),
            });
            if !entry.versions.contains(&v.meta.version) {
                entry.versions.push(v.meta.version.clone());
            }
            if newer(&v, &entry.latest) {
                entry.latest = v;
            }
        };
        for v in &self.shipped().pipelines {
            add(v.clone());
        }
        for owner in [None, Some(&viewer.user_id)] {
            let names: Vec<Name> = self
                .store
                .latest_pipeline_versions(owner)
                .await?
                .into_iter()
                .map(|r| r.name)
                .collect();
            for name in names {
                for r in self.store.pipeline_versions(owner, &name).await? {
                    add(from_record(r, &viewer.username));
                }
            }
        }
        Ok(all.into_values().collect())
    }

    /// Every version of a pipeline `viewer` may see, newest first.
    pub async fn versions(
        &self,
        viewer: &Viewer,
        reference: &PipelineRef,
    ) -> Result<Vec<Version>, Error> {
        let mut out: Vec<Version> = Vec::new();
        match &reference.owner {
            PipelineOwner::System => {
                out.extend(
                    self.shipped()
                        .pipelines
                        .iter()
                        .filter(|v| v.reference.name == reference.name)
                        .cloned(),
                );
                for r in self.store.pipeline_versions(None, &reference.name).await? {
                    out.push(from_record(r, &viewer.username));
                }
            }
            PipelineOwner::User(owner) if *owner == viewer.username => {
                for r in self
                    .store
                    .pipeline_versions(Some(&viewer.user_id), &reference.name)
                    .await?
                {
                    out.push(from_record(r, &viewer.username));
                }
            }
            // Another user's pipelines are not there for this viewer.
            PipelineOwner::User(_) => {}
        }
        if out.is_empty() {
            return Err(Error::PipelineNotFound(reference.to_string()));
        }
        out.sort_by(|a, b| {
            if newer(a, b) {
                std::cmp::Ordering::Less
            } else {
                std::cmp::Ordering::Greater
            }
        });
        Ok(out)
    }

    /// One version (the newest when `version` is `None`).
    pub async fn version(
        &self,
        viewer: &Viewer,
        reference: &PipelineRef,
        version: Option<&str>,
    ) -> Result<Version, Error> {
        let all = self.versions(viewer, reference).await?;
        match version {
            None => all
                .into_iter()
                .next()
                .ok_or_else(|| Error::PipelineNotFound(reference.to_string())),
            Some(v) => all
                .into_iter()
                .find(|x| x.meta.version.as_str() == v)
                .ok_or_else(|| Error::PipelineVersionNotFound {
                    pipeline: reference.to_string(),
                    version: v.to_owned(),
                }),
        }
    }

    /// The engine's check of a version (kept by content).
    pub async fn check(&self, version: &Version) -> Result<Arc<Check>, Error> {
        self.check_files(&version.meta.main, &version.files).await
    }

    /// The engine's check of a set of files whose `main` holds the process.
    pub async fn check_files(
        &self,
        main: &str,
        files: &BTreeMap<String, String>,
    ) -> Result<Arc<Check>, Error> {
        check_names(main, files)?;
        let key = content_key(main, files);
        if let Some(c) = self.checked.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(c);
        }
        let engine = self.engine.clone().ok_or(Error::NoEngine)?;
        let dir = self.scratch.join(format!(
            "check-{}",
            insitu_domain::RunId::from_random(rand::random())
        ));
        write_files(&dir, files)?;
        let check = describe(&engine, &dir, main).await;
        let _ = std::fs::remove_dir_all(&dir);
        let check = Arc::new(check?);
        if let Ok(mut m) = self.checked.lock() {
            if m.len() > 1024 {
                m.clear();
            }
            m.insert(key, Arc::clone(&check));
        }
        Ok(check)
    }

    /// Keeps a new version of one of `owner`'s pipelines: its details and
    /// files checked, its CWL valid, and the version new.
    pub async fn push(
        &self,
        owner: &Viewer,
        name: &str,
        meta: RawPipelineMeta,
        files: BTreeMap<String, String>,
    ) -> Result<Version, Error> {
        let name: Name = name.parse().map_err(|e| {
            Error::InvalidPipeline(vec![DefinitionError {
                field: "name".to_owned(),
                reason: format!("{name:?} {e}"),
            }])
        })?;
        if owner.username.as_str() == insitu_domain::pipeline::SYSTEM_OWNER {
            return Err(Error::InvalidPipeline(vec![DefinitionError {
                field: "owner".to_owned(),
                reason: "the name \"system\" stands for the system catalogue: this account cannot own pipelines".to_owned(),
            }]));
        }
        let meta = PipelineMeta::check(meta).map_err(Error::InvalidPipeline)?;
        let check = self.check_files(&meta.main, &files).await?;
        if !check.is_valid() {
            return Err(Error::InvalidCwl(check.diagnostics.clone()));
        }
        let record = PipelineVersionRecord {
            owner: Some(owner.user_id.clone()),
            name: name.clone(),
            version: meta.version.clone(),
            description: meta.description.clone(),
            keywords: meta.keywords.clone(),
            author: meta.author.clone(),
            licence: meta.licence.clone(),
            main: meta.main.clone(),
            files,
            pushed_by: owner.user_id.clone(),
            created_at_ms: crate::clock::now_ms(),
        };
        let reference = PipelineRef {
            owner: PipelineOwner::User(owner.username.clone()),
            name,
        };
        if !self.store.insert_pipeline_version(&record).await? {
            return Err(Error::PipelineVersionExists {
                pipeline: reference.to_string(),
                version: meta.version.to_string(),
            });
        }
        tracing::info!(pipeline = %reference, version = %meta.version, "pipeline version pushed");
        Ok(from_record(record, &owner.username))
    }

    /// Copies a version of one of `caller`'s own pipelines into the system
    /// catalogue, under the same name and version (which the system must
    /// not have yet).
    pub async fn push_to_system(
        &self,
        caller: &Viewer,
        reference: &PipelineRef,
        version: &str,
    ) -> Result<Version, Error> {
        if reference.owner == PipelineOwner::System {
            return Err(Error::PipelineNotFound(reference.to_string()));
        }
        let v = self.version(caller, reference, Some(version)).await?;
        let system = PipelineRef::system(reference.name.clone());
        let taken = self
            .shipped()
            .pipelines
            .iter()
            .any(|s| s.reference == system && s.meta.version == v.meta.version);
        let record = PipelineVersionRecord {
            owner: None,
            name: reference.name.clone(),
            version: v.meta.version.clone(),
            description: v.meta.description.clone(),
            keywords: v.meta.keywords.clone(),
            author: v.meta.author.clone(),
            licence: v.meta.licence.clone(),
            main: v.meta.main.clone(),
            files: v.files.clone(),
            pushed_by: caller.user_id.clone(),
            created_at_ms: crate::clock::now_ms(),
        };
        if taken || !self.store.insert_pipeline_version(&record).await? {
            return Err(Error::PipelineVersionExists {
                pipeline: system.to_string(),
                version: v.meta.version.to_string(),
            });
        }
        tracing::info!(pipeline = %system, version = %v.meta.version, by = %caller.username, "pipeline version pushed to the system catalogue");
        Ok(from_record(record, &caller.username))
    }
}

/// Whether `a` is a newer version than `b`: pushed later, or for shipped
/// versions a higher version number.
fn newer(a: &Version, b: &Version) -> bool {
    match (a.created_at_ms, b.created_at_ms) {
        (Some(x), Some(y)) if x != y => x > y,
        (Some(_), None) => true,
        (None, Some(_)) => false,
        _ => compare_versions(a.meta.version.as_str(), b.meta.version.as_str()).is_gt(),
    }
}

/// Version strings compared part by part, numbers as numbers.
fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |s: &str| -> Vec<(u64, String)> {
        s.split(['.', '-', '+', '_'])
            .map(|p| (p.parse::<u64>().unwrap_or(0), p.to_owned()))
            .collect()
    };
    parts(a).cmp(&parts(b))
}

fn from_record(r: PipelineVersionRecord, viewer: &Username) -> Version {
    let (owner, origin) = match &r.owner {
        None => (
            PipelineOwner::System,
            Origin::Pushed {
                by: r.pushed_by.clone(),
            },
        ),
        // Records of a user are read only for that user.
        Some(_) => (PipelineOwner::User(viewer.clone()), Origin::Own),
    };
    Version {
        reference: PipelineRef {
            owner,
            name: r.name,
        },
        meta: PipelineMeta {
            description: r.description,
            version: r.version,
            keywords: r.keywords,
            author: r.author,
            licence: r.licence,
            main: r.main,
        },
        files: r.files,
        origin,
        created_at_ms: Some(r.created_at_ms),
    }
}

/// File names and sizes of a version: plain names, the main file among
/// them, within [`MAX_FILES`] and [`MAX_BYTES`].
fn check_names(main: &str, files: &BTreeMap<String, String>) -> Result<(), Error> {
    let mut problems = Vec::new();
    let mut problem = |field: String, reason: String| {
        problems.push(DefinitionError { field, reason });
    };
    for name in files.keys() {
        if !is_file_name(name) {
            problem(
                "files".into(),
                format!("{name:?} is not a plain file name (letters, digits, '.', '-', '_')"),
            );
        }
    }
    if !files.contains_key(main) {
        problem(
            "main".into(),
            format!("{main:?} is not one of the pipeline's files"),
        );
    }
    if files.len() > MAX_FILES {
        problem("files".into(), format!("at most {MAX_FILES} files"));
    }
    if files.values().map(String::len).sum::<usize>() > MAX_BYTES {
        problem(
            "files".into(),
            format!("at most {} MiB in all", MAX_BYTES >> 20),
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidPipeline(problems))
    }
}

/// Writes a version's files into a new directory `dir`.
pub fn write_files(dir: &Path, files: &BTreeMap<String, String>) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(Error::Io)?;
    for (name, text) in files {
        if !is_file_name(name) {
            continue;
        }
        std::fs::write(dir.join(name), text).map_err(Error::Io)?;
    }
    Ok(())
}

/// Runs `engine describe` on `dir/main`, reading nothing outside `dir`.
async fn describe(engine: &Path, dir: &Path, main: &str) -> Result<Check, Error> {
    let mut cmd = tokio::process::Command::new(engine);
    cmd.arg("describe")
        .arg("--allow-root")
        .arg(dir)
        .arg(dir.join(main))
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = match tokio::time::timeout(CHECK_TIMEOUT, cmd.output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Err(Error::EngineFailed(format!("cannot run the engine: {e}"))),
        Err(_) => {
            return Ok(Check {
                process: None,
                diagnostics: vec![Diagnostic {
                    file: None,
                    line: None,
                    column: None,
                    message: format!(
                        "the engine took more than {} s to read the pipeline",
                        CHECK_TIMEOUT.as_secs()
                    ),
                }],
                checked_at_ms: crate::clock::now_ms(),
            });
        }
    };
    if out.status.success() {
        let d: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| Error::EngineFailed(format!("unreadable description: {e}")))?;
        return Ok(Check {
            process: Some(Process::from_description(&d)),
            diagnostics: Vec::new(),
            checked_at_ms: crate::clock::now_ms(),
        });
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let diagnostics: Vec<Diagnostic> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| diagnostic(l, dir))
        .collect();
    Ok(Check {
        process: None,
        diagnostics: if diagnostics.is_empty() {
            vec![Diagnostic {
                file: None,
                line: None,
                column: None,
                message: format!("the engine refused the pipeline ({})", out.status),
            }]
        } else {
            diagnostics
        },
        checked_at_ms: crate::clock::now_ms(),
    })
}

/// One line of the engine's complaint, with the scratch directory taken
/// out: `file:line:col` found in it becomes the diagnostic's place.
fn diagnostic(line: &str, dir: &Path) -> Diagnostic {
    let prefix = format!("{}/", dir.display());
    // The engine starts with the document it was given ("<path>: ...").
    let text = line
        .strip_prefix(&prefix)
        .and_then(|rest| rest.split_once(": ").map(|(_, m)| m))
        .unwrap_or(line)
        .replace(&prefix, "");
    for (i, _) in text.match_indices(':') {
        let (before, after) = text.split_at(i);
        let file = before.rsplit([' ', '(', '\'']).next().unwrap_or(before);
        let mut nums = after[1..].splitn(3, ':');
        let (Some(l), Some(c)) = (nums.next(), nums.next()) else {
            continue;
        };
        if let (Ok(l), Ok(c)) = (l.parse::<u32>(), c.trim().parse::<u32>())
            && is_file_name(file)
        {
            let message = nums.next().map_or(text.clone(), |m| m.trim().to_owned());
            return Diagnostic {
                file: Some(file.to_owned()),
                line: Some(l),
                column: Some(c),
                message,
            };
        }
    }
    Diagnostic {
        file: None,
        line: None,
        column: None,
        message: text,
    }
}

/// Loads every pipeline directory of `dir`.
fn load_shipped(dir: &Path) -> Shipped {
    let mut shipped = Shipped::default();
    let mut problem = |file: &Path, field: &str, reason: String| {
        tracing::warn!(file = %file.display(), field, reason = %reason, "invalid pipeline in the catalogue");
        shipped.problems.push(CatalogueProblem {
            file: file.display().to_string(),
            field: field.to_owned(),
            reason,
        });
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return shipped,
        Err(e) => {
            problem(dir, "directory", format!("cannot read: {e}"));
            return shipped;
        }
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut pipelines = Vec::new();
    for d in dirs {
        let dir_name = d
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let name: Name = match dir_name.parse() {
            Ok(n) => n,
            Err(e) => {
                problem(&d, "name", format!("{dir_name:?} {e}"));
                continue;
            }
        };
        let meta_path = d.join("pipeline.toml");
        let meta = match std::fs::read_to_string(&meta_path)
            .map_err(|e| {
                vec![DefinitionError {
                    field: "file".into(),
                    reason: format!("cannot read: {e}"),
                }]
            })
            .and_then(|t| PipelineMeta::from_toml(&t))
        {
            Ok(m) => m,
            Err(errors) => {
                for e in errors {
                    problem(&meta_path, &e.field, e.reason);
                }
                continue;
            }
        };
        let mut files = BTreeMap::new();
        let mut bad = false;
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.filter_map(Result::ok) {
                let Ok(kind) = e.file_type() else { continue };
                let file = e.file_name().to_string_lossy().into_owned();
                if !kind.is_file() || file == "pipeline.toml" || file.starts_with('.') {
                    continue;
                }
                match std::fs::read_to_string(e.path()) {
                    Ok(text) if is_file_name(&file) => {
                        files.insert(file, text);
                    }
                    Ok(_) => {
                        problem(&e.path(), "file", "is not a plain file name".into());
                        bad = true;
                    }
                    Err(err) => {
                        problem(&e.path(), "file", format!("cannot read as text: {err}"));
                        bad = true;
                    }
                }
            }
        }
        if !files.contains_key(&meta.main) {
            problem(
                &meta_path,
                "main",
                format!("{:?} is not a file of the pipeline", meta.main),
            );
            bad = true;
        }
        if !bad {
            pipelines.push(Version {
                reference: PipelineRef::system(name),
                meta,
                files,
                origin: Origin::Shipped,
                created_at_ms: None,
            });
        }
    }
    shipped.pipelines = pipelines;
    shipped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engines_complaints_are_placed_in_the_version_s_files() {
        let dir = Path::new("/var/lib/insitu/pipelines/scratch/check-abc");
        let d = diagnostic(
            "/var/lib/insitu/pipelines/scratch/check-abc/workflow.cwl: validation error: \
             /var/lib/insitu/pipelines/scratch/check-abc/workflow.cwl:5:1: unknown field 'stepz' in Workflow",
            dir,
        );
        assert_eq!(d.file.as_deref(), Some("workflow.cwl"));
        assert_eq!((d.line, d.column), (Some(5), Some(1)));
        assert_eq!(d.message, "unknown field 'stepz' in Workflow");
        assert_eq!(
            d.to_string(),
            "workflow.cwl:5:1: unknown field 'stepz' in Workflow"
        );
        let d = diagnostic(
            "/var/lib/insitu/pipelines/scratch/check-abc/workflow.cwl: input error: document /etc/passwd \
             leads to /etc/passwd, outside the directories this run may read (--allow-root)",
            dir,
        );
        assert_eq!(d.file, None);
        assert!(
            d.message.starts_with("input error: document /etc/passwd"),
            "{}",
            d.message
        );
        assert!(!d.message.contains("scratch"));
    }

    #[test]
    fn versions_compare_by_their_numbers() {
        assert!(compare_versions("1.10.0", "1.9.2").is_gt());
        assert!(compare_versions("0.0.8", "0.0.10").is_lt());
        assert!(compare_versions("2", "1.9").is_gt());
    }

    #[test]
    fn names_sizes_and_the_main_file_are_checked() {
        let files: BTreeMap<String, String> = [("workflow.cwl".to_owned(), "x".to_owned())].into();
        assert!(check_names("workflow.cwl", &files).is_ok());
        assert!(check_names("other.cwl", &files).is_err());
        let traversal: BTreeMap<String, String> =
            [("../evil.cwl".to_owned(), "x".to_owned())].into();
        assert!(matches!(
            check_names("../evil.cwl", &traversal),
            Err(Error::InvalidPipeline(p)) if p.len() == 1
        ));
    }
}
