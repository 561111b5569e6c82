//! Work reuse (`--cachedir DIR`): a CommandLineTool job whose key is found
//! in the cache directory is not run again; its stored output directory and
//! output object are used instead.
//!
//! The key is the SHA-1 of a canonical JSON document (object keys sorted)
//! made of: the cache format and engine version; the tool document as
//! normalised by the loader, without `__base` (the machine path of its
//! directory) and with every File/Directory in it (defaults, listings)
//! identified by content; the job's input values after defaults, type
//! checks, `loadContents`, listings and secondary files, with every
//! File/Directory identified by its basename, its other fields and the
//! SHA-1 of its bytes (a digest of the whole tree for directories), never
//! by its path; the effective requirement or hint of every class (inherited
//! ones included: `EnvVarRequirement`, `DockerRequirement`,
//! `ResourceRequirement`, `InitialWorkDirRequirement`, ...), with the bytes
//! of a local `dockerLoad`/`dockerImport` file; the runtime `cores`, `ram`,
//! `outdirSize`, `tmpdirSize`; and what `DockerRequirement` does in the run.
//!
//! Entries are `DIR/<key>/` with `output.json` (the output object, its
//! locations relative to the entry), `out/` (a copy of the job's output
//! directory, links resolved) and `ext/N/` (outputs that lay outside it,
//! e.g. an input returned as an output). An entry is written under a
//! temporary name in `DIR` and renamed into place, so readers see complete
//! entries only; when two runs store the same key, the first rename wins.
//! A hit copies the entry into a fresh directory of the run, so later steps
//! (an `InplaceUpdateRequirement`, say) can never change the cache. An entry
//! that cannot be read back (missing files, wrong sizes, bad JSON) is
//! discarded and the job runs again.
//!
//! Tools with `WorkReuse: {enableReuse: false}` and tools that update their
//! inputs in place are never looked up or stored; only successful jobs are
//! stored.

use crate::error::{CwlError, Result};
use crate::expr::{Evaluator, Scope};
use crate::files;
use crate::log::Log;
use crate::options::ContainerMode;
use crate::requirements::Reqs;
use serde_json::{Map, Value, json};
use sha1::{Digest, Sha1};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Version of the entry layout and of the key document.
const FORMAT: u32 = 1;
/// The output object of an entry, written last.
const OUTPUT_JSON: &str = "output.json";
/// Prefix of locations relative to an entry in its `output.json`.
const ENTRY_LOC: &str = "insitu-cache:";
/// Deepest directory tree hashed.
const MAX_DEPTH: usize = 64;

/// Identity of a file's bytes as last hashed: device, inode, size, mtime.
type Stamp = (u64, u64, u64, i64, i64);

/// A job cache directory.
#[derive(Debug)]
pub struct JobCache {
    dir: PathBuf,
    /// SHA-1 of files already hashed in this run, by path and [`Stamp`]
    /// (a scatter over one big file hashes it once).
    digests: Mutex<HashMap<PathBuf, (Stamp, String)>>,
}

impl JobCache {
    /// Use `dir` (created if missing) as a cache; fails unless a file can
    /// be written there.
    pub fn open(dir: &Path) -> Result<JobCache> {
        let bad = |e: std::io::Error| {
            CwlError::Input(format!(
                "--cachedir {}: cannot use it as a cache directory: {e}",
                dir.display()
            ))
        };
        std::fs::create_dir_all(dir).map_err(bad)?;
        tempfile::Builder::new()
            .prefix(".probe-")
            .tempfile_in(dir)
            .map_err(bad)?;
        let dir = std::fs::canonicalize(dir).map_err(bad)?;
        Ok(JobCache {
            dir,
            digests: Mutex::new(HashMap::new()),
        })
    }

    /// The cache directory (canonical).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key of a job, or `None` when the tool opts out of reuse
    /// (`WorkReuse`, in-place updates) or its inputs cannot be hashed (a
    /// warning; the job then runs uncached). `inputs` are the prepared
    /// inputs before staging, `runtime` the job's runtime object,
    /// `containers` what `DockerRequirement` does in the run.
    #[allow(clippy::too_many_arguments)]
    pub fn job_key(
        &self,
        log: Log,
        containers: ContainerMode,
        p: &Value,
        reqs: &Reqs,
        ev: &Evaluator,
        inputs: &Map<String, Value>,
        runtime: &Value,
    ) -> Result<Option<String>> {
        let scope = Scope {
            inputs: Value::Object(inputs.clone()),
            this: Value::Null,
            runtime: runtime.clone(),
        };
        if !reuse_enabled(reqs, ev, &scope)? {
            return Ok(None);
        }
        match self.key(p, reqs, inputs, runtime, containers) {
            Ok(k) => Ok(Some(k)),
            Err(e) => {
                log.line(&format!(
                    "warning: not using the cache for this job: cannot hash its inputs: {e}"
                ));
                Ok(None)
            }
        }
    }

    /// The key of a job (see the module documentation).
    pub fn key(
        &self,
        p: &Value,
        reqs: &Reqs,
        inputs: &Map<String, Value>,
        runtime: &Value,
        containers: ContainerMode,
    ) -> Result<String> {
        let mut tool = p.clone();
        strip_private(&mut tool);
        let tool = self.identity(&tool, true)?;
        let inputs = self.identity(&Value::Object(inputs.clone()), false)?;
        let mut effective = Map::new();
        // Every requirement class the engine knows: its effective value
        // (requirement, else hint) is part of the key.
        for class in crate::requirements::KNOWN {
            if let Some(r) = reqs.get(class) {
                effective.insert((*class).to_string(), self.identity(r, true)?);
            }
        }
        if let Some((docker, _)) = reqs.docker() {
            let base = PathBuf::from(p.get("__base").and_then(Value::as_str).unwrap_or("."));
            for field in ["dockerLoad", "dockerImport"] {
                if let Some(loc) = docker.get(field).and_then(Value::as_str) {
                    let loc = crate::loader::resolve_location(loc, &base);
                    if loc.starts_with("file://") {
                        let digest = self
                            .file_digest(&files::loc_to_path(&loc))
                            .unwrap_or_else(|e| format!("unreadable: {e}"));
                        effective.insert(format!("{field} sha1"), Value::String(digest));
                    }
                }
            }
        }
        let mut rt = Map::new();
        for k in ["cores", "ram", "outdirSize", "tmpdirSize"] {
            rt.insert(k.into(), runtime.get(k).cloned().unwrap_or(Value::Null));
        }
        let doc = json!({
            "cache format": FORMAT,
            "engine": concat!("insitu-cwl ", env!("CARGO_PKG_VERSION")),
            "tool": tool,
            "inputs": inputs,
            "requirements": effective,
            "runtime": rt,
            "containers": format!("{containers:?}"),
        });
        let text = serde_json::to_string(&canonical(&doc))
            .map_err(|e| CwlError::Execution(format!("cache key: {e}")))?;
        Ok(hex(&Sha1::digest(text.as_bytes())))
    }

    /// A value with every File and Directory replaced by its identity:
    /// its fields without `location`, `path`, `dirname` and `checksum`,
    /// plus the SHA-1 of its bytes (or tree). `lenient`: a file that cannot
    /// be read is identified by its location instead of failing.
    fn identity(&self, v: &Value, lenient: bool) -> Result<Value> {
        match v {
            Value::Array(a) => Ok(Value::Array(
                a.iter()
                    .map(|x| self.identity(x, lenient))
                    .collect::<Result<_>>()?,
            )),
            Value::Object(m) => {
                let class = m.get("class").and_then(Value::as_str);
                let is_file = class == Some("File");
                let is_dir = class == Some("Directory");
                let mut out = Map::new();
                for (k, x) in m {
                    if (is_file || is_dir)
                        && matches!(k.as_str(), "location" | "path" | "dirname" | "checksum")
                    {
                        continue;
                    }
                    out.insert(k.clone(), self.identity(x, lenient)?);
                }
                if is_file || is_dir {
                    let loc = m
                        .get("location")
                        .or_else(|| m.get("path"))
                        .and_then(Value::as_str);
                    if let Some(loc) = loc {
                        if loc.starts_with("file://") || loc.starts_with('/') {
                            let path = files::loc_to_path(loc);
                            let digest = if is_file {
                                self.file_digest(&path)
                            } else {
                                self.tree_digest(&path, 0)
                            };
                            match digest {
                                Ok(d) => {
                                    out.insert("content sha1".into(), Value::String(d));
                                }
                                Err(_) if lenient => {
                                    out.insert("location".into(), Value::String(loc.into()));
                                }
                                Err(e) => return Err(e),
                            }
                        } else {
                            out.insert("location".into(), Value::String(loc.into()));
                        }
                    }
                }
                Ok(Value::Object(out))
            }
            other => Ok(other.clone()),
        }
    }

    /// SHA-1 (hex) of a file's bytes, remembered for the run.
    fn file_digest(&self, p: &Path) -> Result<String> {
        use std::os::unix::fs::MetadataExt;
        let md = std::fs::metadata(p)?;
        let stamp: Stamp = (md.dev(), md.ino(), md.size(), md.mtime(), md.mtime_nsec());
        if let Ok(memo) = self.digests.lock()
            && let Some((s, d)) = memo.get(p)
            && *s == stamp
        {
            return Ok(d.clone());
        }
        let d = crate::files::sha1_hex(p)?;
        if let Ok(mut memo) = self.digests.lock() {
            memo.insert(p.to_path_buf(), (stamp, d.clone()));
        }
        Ok(d)
    }

    /// SHA-1 (hex) of a directory tree: names, kinds and contents of its
    /// entries in name order, links followed (a dangling link counts by
    /// its target text).
    fn tree_digest(&self, p: &Path, depth: usize) -> Result<String> {
        if depth > MAX_DEPTH {
            return Err(CwlError::Execution(format!(
                "{}: directory tree too deep (a link loop?)",
                p.display()
            )));
        }
        let mut names: Vec<_> = std::fs::read_dir(p)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()?;
        names.sort();
        let mut h = Sha1::new();
        for name in names {
            let child = p.join(&name);
            let (kind, digest) = match std::fs::metadata(&child) {
                Ok(md) if md.is_dir() => ("d", self.tree_digest(&child, depth + 1)?),
                Ok(md) if md.is_file() => ("f", self.file_digest(&child)?),
                Ok(_) => ("o", String::new()),
                Err(_) => (
                    "l",
                    std::fs::read_link(&child)
                        .map(|t| t.display().to_string())
                        .unwrap_or_default(),
                ),
            };
            h.update(name.as_encoded_bytes());
            h.update([0]);
            h.update(kind.as_bytes());
            h.update([0]);
            h.update(digest.as_bytes());
            h.update([b'\n']);
        }
        Ok(hex(&h.finalize()))
    }

    /// The output object of a complete entry for `key`, copied into a
    /// directory `fresh` makes (in the run); `None` when there is none. An
    /// unusable entry is logged, removed, and reported as missing.
    pub fn lookup(
        &self,
        key: &str,
        log: Log,
        fresh: impl FnOnce() -> Result<PathBuf>,
    ) -> Option<Value> {
        let entry = self.dir.join(key);
        if entry.symlink_metadata().is_err() {
            return None;
        }
        match restore(key, &entry, fresh) {
            Ok(v) => Some(v),
            Err(why) => {
                log.line(&format!(
                    "ignoring the unusable cache entry {}: {why}",
                    entry.display()
                ));
                self.discard(&entry);
                None
            }
        }
    }

    /// Store a successful job: its output directory and output object.
    /// Failing to store is a warning, never a failure of the job.
    pub fn store(&self, key: &str, outdir: &Path, output: &Value, log: Log) {
        if let Err(e) = self.try_store(key, outdir, output) {
            log.line(&format!(
                "warning: could not store the job in the cache: {e}"
            ));
        }
    }

    fn try_store(&self, key: &str, outdir: &Path, output: &Value) -> Result<()> {
        let entry = self.dir.join(key);
        if entry.join(OUTPUT_JSON).is_file() {
            return Ok(());
        }
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".tmp-{key}-"))
            .tempdir_in(&self.dir)?;
        files::copy_tree(outdir, &tmp.path().join("out"), files::ANY_LINK)?;
        let mut stored = output.clone();
        let mut ext = Outside {
            root: tmp.path().to_path_buf(),
            outdir: outdir.to_path_buf(),
            outdir_canonical: std::fs::canonicalize(outdir).ok(),
            copied: vec![],
        };
        ext.portable(&mut stored)?;
        let doc = json!({
            "cache format": FORMAT,
            "key": key,
            "engine": concat!("insitu-cwl ", env!("CARGO_PKG_VERSION")),
            "output": stored,
        });
        let text = serde_json::to_vec_pretty(&doc)
            .map_err(|e| CwlError::Execution(format!("cache entry: {e}")))?;
        std::fs::write(tmp.path().join(OUTPUT_JSON), text)?;
        match std::fs::rename(tmp.path(), &entry) {
            Ok(()) => {
                let _ = tmp.keep();
                Ok(())
            }
            // Another run stored the same key first: keep theirs.
            Err(_) if entry.join(OUTPUT_JSON).is_file() => Ok(()),
            Err(e) => Err(CwlError::Execution(format!(
                "cannot rename the entry into {}: {e}",
                entry.display()
            ))),
        }
    }

    /// Remove an entry: renamed away first, so no reader sees it half gone.
    fn discard(&self, entry: &Path) {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let trash = self
            .dir
            .join(format!(".trash-{}-{nanos}", std::process::id()));
        if std::fs::rename(entry, &trash).is_ok() {
            let _ = std::fs::remove_dir_all(&trash);
        }
    }
}

/// Whether a job may be reused: `WorkReuse.enableReuse` (default true; an
/// expression must give a boolean), and never for in-place updates, whose
/// effect on the inputs a cache cannot replay.
fn reuse_enabled(reqs: &Reqs, ev: &Evaluator, scope: &Scope) -> Result<bool> {
    let inplace = reqs
        .get("InplaceUpdateRequirement")
        .and_then(|r| r.get("inplaceUpdate"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if inplace {
        return Ok(false);
    }
    match reqs.get("WorkReuse").and_then(|r| r.get("enableReuse")) {
        None => Ok(true),
        Some(v) => match ev.eval(v, scope)? {
            Value::Bool(b) => Ok(b),
            other => Err(CwlError::Validation(format!(
                "WorkReuse: enableReuse must be a boolean, got {other}"
            ))),
        },
    }
}

/// Remove the loader's machine-specific keys (`__base`) at any depth.
fn strip_private(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("__base");
            m.values_mut().for_each(strip_private);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_private),
        _ => {}
    }
}

/// The same value with object keys in sorted order.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                if let Some(x) = m.get(k) {
                    out.insert(k.clone(), canonical(x));
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Rewrites an output object's locations relative to a new entry, copying
/// what lies outside the job's output directory into `ext/N/`.
struct Outside {
    root: PathBuf,
    outdir: PathBuf,
    outdir_canonical: Option<PathBuf>,
    /// Copied outside paths and where they went (relative to `root`).
    copied: Vec<(PathBuf, String)>,
}

impl Outside {
    fn relative(&mut self, p: &Path) -> Result<String> {
        for base in std::iter::once(&self.outdir).chain(self.outdir_canonical.as_ref()) {
            if let Ok(rel) = p.strip_prefix(base) {
                return Ok(join_rel("out", rel));
            }
        }
        for (src, dst) in &self.copied {
            if let Ok(rel) = p.strip_prefix(src) {
                return Ok(join_rel(dst, rel));
            }
        }
        let name = match files::basename(p) {
            n if n.is_empty() => "x".to_string(),
            n => n,
        };
        let dst = format!("ext/{}/{name}", self.copied.len());
        let target = self.root.join(&dst);
        if let Some(d) = target.parent() {
            std::fs::create_dir_all(d)?;
        }
        files::copy_tree(p, &target, files::ANY_LINK)?;
        self.copied.push((p.to_path_buf(), dst.clone()));
        Ok(dst)
    }

    fn portable(&mut self, v: &mut Value) -> Result<()> {
        match v {
            Value::Object(m) => {
                let class = m.get("class").and_then(Value::as_str);
                if matches!(class, Some("File") | Some("Directory"))
                    && let Some(loc) = m.get("location").and_then(Value::as_str)
                    && (loc.starts_with("file://") || loc.starts_with('/'))
                {
                    let rel = self.relative(&files::loc_to_path(loc))?;
                    m.insert(
                        "location".into(),
                        Value::String(format!("{ENTRY_LOC}{rel}")),
                    );
                    // Kept in place (key order), pointed anew on a hit.
                    for k in ["path", "dirname"] {
                        if let Some(x) = m.get_mut(k) {
                            *x = Value::String(ENTRY_LOC.into());
                        }
                    }
                }
                m.values_mut().try_for_each(|x| self.portable(x))
            }
            Value::Array(a) => a.iter_mut().try_for_each(|x| self.portable(x)),
            _ => Ok(()),
        }
    }
}

fn join_rel(base: &str, rel: &Path) -> String {
    if rel.as_os_str().is_empty() {
        base.to_string()
    } else {
        format!("{base}/{}", rel.display())
    }
}

/// Read an entry back: check it, copy it into a fresh directory of the
/// run, and point its output object there.
fn restore(key: &str, entry: &Path, fresh: impl FnOnce() -> Result<PathBuf>) -> Result<Value> {
    let bad = |why: String| CwlError::Execution(why);
    let text =
        std::fs::read(entry.join(OUTPUT_JSON)).map_err(|e| bad(format!("{OUTPUT_JSON}: {e}")))?;
    let doc: Value =
        serde_json::from_slice(&text).map_err(|e| bad(format!("{OUTPUT_JSON}: {e}")))?;
    if doc.get("cache format").and_then(Value::as_u64) != Some(u64::from(FORMAT))
        || doc.get("key").and_then(Value::as_str) != Some(key)
    {
        return Err(bad(format!("{OUTPUT_JSON} is not an entry for this key")));
    }
    let mut out = match doc.get("output") {
        Some(v @ Value::Object(_)) => v.clone(),
        _ => return Err(bad(format!("{OUTPUT_JSON} holds no output object"))),
    };
    check_entry(&out, entry)?;
    let dir = fresh()?;
    for sub in ["out", "ext"] {
        let src = entry.join(sub);
        if src.is_dir() {
            files::copy_tree(&src, &dir.join(sub), files::ANY_LINK)?;
        }
    }
    point_to(&mut out, &dir);
    Ok(out)
}

/// Every File and Directory of a stored output object is in the entry
/// (files with their recorded size).
fn check_entry(v: &Value, entry: &Path) -> Result<()> {
    match v {
        Value::Object(m) => {
            if let Some(rel) = m
                .get("location")
                .and_then(Value::as_str)
                .and_then(|l| l.strip_prefix(ENTRY_LOC))
            {
                if rel.split('/').any(|c| c == "..") {
                    return Err(CwlError::Execution(format!("bad location {rel}")));
                }
                let p = entry.join(rel);
                let md = std::fs::metadata(&p)
                    .map_err(|e| CwlError::Execution(format!("{rel}: {e}")))?;
                let class = m.get("class").and_then(Value::as_str);
                let ok = match class {
                    Some("Directory") => md.is_dir(),
                    _ => {
                        md.is_file()
                            && m.get("size")
                                .and_then(Value::as_u64)
                                .is_none_or(|s| s == md.len())
                    }
                };
                if !ok {
                    return Err(CwlError::Execution(format!("{rel} is missing or changed")));
                }
            }
            m.values().try_for_each(|x| check_entry(x, entry))
        }
        Value::Array(a) => a.iter().try_for_each(|x| check_entry(x, entry)),
        _ => Ok(()),
    }
}

/// Turn entry-relative locations into `file://` ones under `dir`.
fn point_to(v: &mut Value, dir: &Path) {
    match v {
        Value::Object(m) => {
            if let Some(rel) = m
                .get("location")
                .and_then(Value::as_str)
                .and_then(|l| l.strip_prefix(ENTRY_LOC))
                .map(str::to_string)
            {
                let p = dir.join(rel);
                m.insert("location".into(), Value::String(files::path_to_loc(&p)));
                m.insert("path".into(), Value::String(p.display().to_string()));
                if m.get("class").and_then(Value::as_str) == Some("File")
                    && let Some(d) = p.parent()
                {
                    m.insert("dirname".into(), Value::String(d.display().to_string()));
                }
            }
            m.values_mut().for_each(|x| point_to(x, dir));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| point_to(x, dir)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::requirements::Inherited;

    const TOOL: &str = r#"{"class": "CommandLineTool", "cwlVersion": "v1.2",
        "id": "cat", "baseCommand": ["cat"], "__base": "/somewhere",
        "inputs": [{"id": "f", "type": "File", "inputBinding": {}}],
        "outputs": []}"#;

    fn file(dir: &Path, name: &str, text: &str) -> Value {
        std::fs::create_dir_all(dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        let mut v = json!({"class": "File", "location": files::path_to_loc(&p)});
        files::fill_fs(&mut v, "no_listing").unwrap();
        v
    }

    fn key_of(cache: &JobCache, tool: &Value, f: Value) -> String {
        let reqs = Reqs::of(tool, &Inherited::default()).unwrap();
        let mut inputs = Map::new();
        inputs.insert("f".into(), f);
        let rt = json!({"cores": 1, "ram": 1024, "outdir": "/x", "tmpdir": "/y"});
        cache
            .key(tool, &reqs, &inputs, &rt, ContainerMode::Auto)
            .unwrap()
    }

    #[test]
    fn key_follows_content_not_paths() {
        let t = tempfile::tempdir().unwrap();
        let cache = JobCache::open(&t.path().join("cache")).unwrap();
        let tool: Value = serde_json::from_str(TOOL).unwrap();
        let a = file(&t.path().join("a"), "in.txt", "hello\n");
        let b = file(&t.path().join("b/deeper"), "in.txt", "hello\n");
        let c = file(&t.path().join("c"), "in.txt", "hello!\n");
        let d = file(&t.path().join("d"), "other.txt", "hello\n");
        let ka = key_of(&cache, &tool, a.clone());
        assert_eq!(ka.len(), 40);
        assert_eq!(ka, key_of(&cache, &tool, b));
        assert_ne!(ka, key_of(&cache, &tool, c), "content");
        assert_ne!(ka, key_of(&cache, &tool, d), "basename");
        // The document's directory does not matter, its content does.
        let mut moved = tool.clone();
        moved["__base"] = json!("/elsewhere");
        assert_eq!(ka, key_of(&cache, &moved, a.clone()));
        let mut changed = tool.clone();
        changed["baseCommand"] = json!(["tac"]);
        assert_ne!(ka, key_of(&cache, &changed, a.clone()));
        // Requirements, also inherited ones.
        let reqs = Reqs::of(
            &tool,
            &Inherited {
                reqs: vec![json!({"class": "EnvVarRequirement",
                    "envDef": [{"envName": "X", "envValue": "1"}]})],
                ..Default::default()
            },
        )
        .unwrap();
        let mut inputs = Map::new();
        inputs.insert("f".into(), a);
        let rt = json!({"cores": 1, "ram": 1024});
        let with_env = cache
            .key(&tool, &reqs, &inputs, &rt, ContainerMode::Auto)
            .unwrap();
        assert_ne!(ka, with_env);
        let more_cores = json!({"cores": 2, "ram": 1024});
        assert_ne!(
            with_env,
            cache
                .key(&tool, &reqs, &inputs, &more_cores, ContainerMode::Auto)
                .unwrap()
        );
    }

    #[test]
    fn key_covers_secondary_files_and_directories() {
        let t = tempfile::tempdir().unwrap();
        let cache = JobCache::open(&t.path().join("cache")).unwrap();
        let tool: Value = serde_json::from_str(TOOL).unwrap();
        let with_sf = |dir: &str, idx: &str| {
            let mut f = file(&t.path().join(dir), "x.bam", "reads");
            f["secondaryFiles"] = json!([file(&t.path().join(dir), "x.bam.bai", idx)]);
            f
        };
        let k1 = key_of(&cache, &tool, with_sf("s1", "index"));
        assert_eq!(k1, key_of(&cache, &tool, with_sf("s2", "index")));
        assert_ne!(k1, key_of(&cache, &tool, with_sf("s3", "index2")));
        let dir = |name: &str, text: &str| {
            let d = t.path().join(name).join("data");
            file(&d.join("sub"), "a.txt", text);
            json!({"class": "Directory", "location": files::path_to_loc(&d), "basename": "data"})
        };
        let k2 = key_of(&cache, &tool, dir("d1", "one"));
        assert_eq!(k2, key_of(&cache, &tool, dir("d2", "one")));
        assert_ne!(k2, key_of(&cache, &tool, dir("d3", "two")));
    }

    #[test]
    fn entries_round_trip_and_bad_ones_are_ignored() {
        let t = tempfile::tempdir().unwrap();
        let cache = JobCache::open(&t.path().join("cache")).unwrap();
        let run = t.path().join("run");
        let log = Log { quiet: true };
        let n = std::cell::Cell::new(0);
        let fresh = || {
            n.set(n.get() + 1);
            let d = run.join(format!("cached{}", n.get()));
            std::fs::create_dir_all(&d)?;
            Ok(d)
        };
        let outdir = t.path().join("job/out");
        let input = file(&t.path().join("inputs"), "in.txt", "input\n");
        let own = file(&outdir, "o.txt", "output\n");
        std::os::unix::fs::symlink(
            files::loc_to_path(input["location"].as_str().unwrap()),
            outdir.join("link.txt"),
        )
        .unwrap();
        let mut link = json!({"class": "File",
            "location": files::path_to_loc(&outdir.join("link.txt"))});
        files::fill_fs(&mut link, "no_listing").unwrap();
        let out = json!({"own": own, "same": input, "link": link, "n": 3});
        let key = "0123456789abcdef0123456789abcdef01234567";
        assert!(cache.lookup(key, log, fresh).is_none());
        cache.store(key, &outdir, &out, log);
        let entry = cache.dir().join(key);
        assert!(
            !entry.join("out/link.txt").is_symlink(),
            "copies, not links"
        );
        let got = cache.lookup(key, log, fresh).unwrap();
        assert_eq!(got["n"], 3);
        for (k, text) in [
            ("own", "output\n"),
            ("same", "input\n"),
            ("link", "input\n"),
        ] {
            let p = got[k]["path"].as_str().unwrap();
            assert!(p.starts_with(run.to_str().unwrap()), "{p}");
            assert_eq!(std::fs::read_to_string(p).unwrap(), text);
            assert_eq!(got[k]["basename"], out[k]["basename"]);
        }
        // Storing again keeps the first entry.
        cache.store(key, &outdir, &json!({}), log);
        assert_eq!(cache.lookup(key, log, fresh).unwrap()["n"], 3);
        // A changed file makes the entry unusable: it is dropped.
        std::fs::write(entry.join("out/o.txt"), "truncated").unwrap();
        assert!(cache.lookup(key, log, fresh).is_none());
        assert!(!entry.exists());
        // So does a broken output.json.
        cache.store(key, &outdir, &out, log);
        std::fs::write(entry.join(OUTPUT_JSON), "{\"cache form").unwrap();
        assert!(cache.lookup(key, log, fresh).is_none());
        cache.store(key, &outdir, &out, log);
        assert!(cache.lookup(key, log, fresh).is_some());
        // No temporary directories are left behind.
        let left: Vec<_> = std::fs::read_dir(cache.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, [key]);
    }

    #[test]
    fn an_unusable_directory_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("plain");
        std::fs::write(&f, "").unwrap();
        let e = JobCache::open(&f.join("cache")).unwrap_err().to_string();
        assert!(e.contains("--cachedir"), "{e}");
    }
}
