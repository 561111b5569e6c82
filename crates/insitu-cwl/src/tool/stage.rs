//! Staging: a job's input Files and Directories put where its tool reads
//! them (a link per input in a staging directory of its own, secondary files
//! beside it), and the entries of `InitialWorkDirRequirement` made in the
//! output directory (links, copies when writable, literal files and
//! directories) or, for absolute names in a container, mounted there.

use crate::access::Access;
use crate::error::{CwlError, Result};
use crate::expr::{Evaluator, Scope};
use crate::files::{self, Entry};
use crate::tool::bind::value_str;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// How a File or Directory that has a location is put in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Put {
    /// A symbolic link to its location (the tool reads the original).
    Link,
    /// A copy (the tool may change it).
    Copy,
}

/// Puts Files and Directories in place and remembers what the tool reaches
/// through the links it made.
pub struct Stager<'a> {
    /// Where the locations it links or copies may be.
    pub access: &'a Access,
    /// Locations linked so far: the paths the tool reads.
    pub linked: Vec<PathBuf>,
}

impl<'a> Stager<'a> {
    /// A stager that links and copies only what `access` allows.
    pub fn new(access: &'a Access) -> Self {
        Stager {
            access,
            linked: vec![],
        }
    }

    /// Make File or Directory `e` at `dir/name` (`name` defaults to its
    /// basename): a link to its location or a copy of it, else a file of
    /// its `contents` or a directory of its `listing`; its secondary files
    /// go beside it. Returns the path made.
    pub fn place(
        &mut self,
        e: &Map<String, Value>,
        dir: &Path,
        name: Option<&str>,
        put: Put,
    ) -> Result<PathBuf> {
        let view = Entry::of_map(e);
        let base = match name {
            Some(n) => n.to_string(),
            None => files::checked_basename(view.and_then(|v| v.basename()).as_deref())?,
        };
        let target = dir.join(&base);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let is_dir = view.is_some_and(|v| v.is_directory());
        let src = view.and_then(|v| v.local_path());
        if let Some(src) = &src {
            // A literal of an InitialWorkDir listing names it freely.
            self.access.check("input", src)?;
        }
        match src {
            Some(src) if put == Put::Link => {
                symlink(&src, &target)?;
                self.linked.push(src);
            }
            Some(src) => {
                if target.exists() && !is_dir {
                    std::fs::remove_file(&target)?;
                }
                // A directory copied onto an existing one merges into it.
                files::copy_tree(&src, &target, &self.access.follow())?;
            }
            None if !is_dir => {
                std::fs::write(&target, view.and_then(|v| v.contents()).unwrap_or(""))?;
            }
            None => {
                std::fs::create_dir_all(&target)?;
                self.place_listing(e.get("listing"), &target)?;
            }
        }
        let beside = target.parent().unwrap_or(dir).to_path_buf();
        for s in e
            .get("secondaryFiles")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
        {
            self.place(s, &beside, None, put)?;
        }
        Ok(target)
    }

    /// Copy the entries of a literal directory's `listing` into `dir`.
    pub fn place_listing(&mut self, listing: Option<&Value>, dir: &Path) -> Result<()> {
        for e in listing
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
        {
            self.place(e, dir, None, Put::Copy)?;
        }
        Ok(())
    }

    /// Stage every File and Directory in the job's input values under
    /// `root`, each in a directory of its own (`sN`, counted by `n`) with
    /// its secondary files, and point their `path` (and `dirname`) there.
    pub fn stage_inputs(&mut self, v: &mut Value, root: &Path, n: &mut usize) -> Result<()> {
        match v {
            Value::Array(a) => a.iter_mut().try_for_each(|x| self.stage_inputs(x, root, n)),
            Value::Object(m) if Entry::of_map(m).is_some() => {
                *n += 1;
                let dir = root.join(format!("s{n}"));
                std::fs::create_dir_all(&dir)?;
                let target = self.place(m, &dir, None, Put::Link)?;
                staged_at(m, &target);
                for s in m
                    .get_mut("secondaryFiles")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_object_mut)
                {
                    let base = Entry::of_map(s).and_then(|e| e.basename());
                    staged_at(s, &dir.join(files::checked_basename(base.as_deref())?));
                }
                Ok(())
            }
            Value::Object(m) => m
                .values_mut()
                .try_for_each(|x| self.stage_inputs(x, root, n)),
            _ => Ok(()),
        }
    }
}

/// Point a staged object at `target`: its `path`, a File's `dirname`, a
/// literal's `location`, and the paths of its listing.
fn staged_at(m: &mut Map<String, Value>, target: &Path) {
    let local = Entry::of_map(m).and_then(|e| e.local_path()).is_some();
    if !local {
        m.insert("location".into(), Value::String(files::path_to_loc(target)));
    }
    m.insert("path".into(), Value::String(target.display().to_string()));
    if Entry::of_map(m).is_some_and(|e| !e.is_directory())
        && let Some(dir) = target.parent()
    {
        m.insert("dirname".into(), Value::String(dir.display().to_string()));
    }
    if let Some(Value::Array(l)) = m.get_mut("listing") {
        for x in l.iter_mut() {
            retarget_paths(x, target);
        }
    }
}

/// Where InitialWorkDir entries go: the output directory as the engine and
/// as the tool see it, and, in a container whose DockerRequirement is a
/// requirement, host directories for entries named by absolute paths
/// elsewhere, with the mounts that show them there.
pub struct Places {
    /// The output directory, on the host.
    pub outdir: PathBuf,
    /// The output directory as the tool sees it.
    pub seen_outdir: PathBuf,
    /// A directory of the job for the host side of mounts.
    pub jobdir: PathBuf,
    /// Whether absolute names outside the output directory may be used.
    pub absolute_allowed: bool,
    /// `(host, inside, writable)` for entries named by absolute paths.
    pub mounts: Vec<(PathBuf, PathBuf, bool)>,
}

impl Places {
    /// The host directory and name under which to create entry `name`.
    fn place(&mut self, name: Option<&str>, writable: bool) -> Result<(PathBuf, Option<String>)> {
        let Some(n) = name.filter(|n| n.starts_with('/')) else {
            return Ok((self.outdir.clone(), name.map(str::to_string)));
        };
        if let Ok(rest) = Path::new(n).strip_prefix(&self.seen_outdir) {
            return Ok((self.outdir.clone(), Some(rest.display().to_string())));
        }
        if !self.absolute_allowed {
            return Err(CwlError::Validation(format!(
                "InitialWorkDirRequirement: entryname '{n}' is an absolute path, which only a \
                 tool running in a container with DockerRequirement under `requirements` may use"
            )));
        }
        let base = files::basename(Path::new(n));
        if base.is_empty() {
            return Err(CwlError::Validation(format!(
                "InitialWorkDirRequirement: entryname '{n}' names no file"
            )));
        }
        let dir = self.jobdir.join(format!("abs{}", self.mounts.len()));
        std::fs::create_dir_all(&dir)?;
        self.mounts
            .push((dir.join(&base), PathBuf::from(n), writable));
        Ok((dir, Some(base)))
    }

    /// The path the tool sees for a host path made by [`Places::place`].
    fn seen(&self, host: &Path) -> PathBuf {
        if let Some((_, inside, _)) = self.mounts.iter().find(|(h, _, _)| h == host) {
            return inside.clone();
        }
        match host.strip_prefix(&self.outdir) {
            Ok(rest) => self.seen_outdir.join(rest),
            Err(_) => host.to_path_buf(),
        }
    }
}

/// Make the entries of `InitialWorkDirRequirement` `r` (see [`Places`]),
/// and point the inputs they show at where the tool sees them. Entries
/// with a location are links, copies when writable (unless inputs are
/// updated in place); entries the stager linked are in its `linked`.
pub fn initial_workdir(
    r: &Value,
    ev: &Evaluator,
    scope: &Scope,
    places: &mut Places,
    stager: &mut Stager<'_>,
    inputs: &mut Value,
    inplace: bool,
) -> Result<()> {
    let listing = ev.eval(r.get("listing").unwrap_or(&Value::Null), scope)?;
    let items: Vec<Value> = match listing {
        Value::Array(a) => a,
        Value::Null => vec![],
        o => vec![o],
    };
    for item in items {
        let item = if let Value::String(s) = &item {
            ev.eval_str(s, scope)?
        } else {
            item
        };
        let list: Vec<Value> = match item {
            Value::Array(a) => a,
            o => vec![o],
        };
        for it in list {
            if it.get("entry").is_some() {
                dirent(&it, ev, scope, places, stager, inputs, inplace)?;
            } else if let Some(m) = it.as_object().filter(|m| m.contains_key("class")) {
                let put = if m.contains_key("location") {
                    Put::Link
                } else {
                    Put::Copy
                };
                let t = stager.place(m, &places.outdir, None, put)?;
                update_input_path(inputs, &it, &places.seen(&t));
            }
        }
    }
    Ok(())
}

/// One `Dirent` (`entry`, `entryname`, `writable`) of an InitialWorkDir
/// listing.
fn dirent(
    it: &Value,
    ev: &Evaluator,
    scope: &Scope,
    places: &mut Places,
    stager: &mut Stager<'_>,
    inputs: &mut Value,
    inplace: bool,
) -> Result<()> {
    let entry = match it.get("entry") {
        Some(Value::String(e)) => ev.eval_str_exact(e, scope)?,
        Some(other) => other.clone(),
        None => Value::Null,
    };
    let name = match it.get("entryname") {
        Some(n) => Some(value_str(&ev.eval(n, scope)?)),
        None => None,
    };
    if let Some(n) = &name
        && n.split('/').any(|seg| seg == "..")
    {
        return Err(CwlError::Validation(format!(
            "InitialWorkDirRequirement: entryname '{n}' must not leave the output directory"
        )));
    }
    let writable = it.get("writable").and_then(Value::as_bool).unwrap_or(false);
    let put = if writable && !inplace {
        Put::Copy
    } else {
        Put::Link
    };
    let (dir, name) = places.place(name.as_deref(), writable)?;
    match &entry {
        Value::Object(m) if m.contains_key("class") => {
            let t = stager.place(m, &dir, name.as_deref(), put)?;
            if writable {
                set_writable(&t);
            }
            update_input_path(inputs, &entry, &places.seen(&t));
        }
        Value::Array(a) if a.iter().all(|x| x.get("class").is_some()) && name.is_none() => {
            for x in a.iter().filter_map(Value::as_object) {
                let t = stager.place(x, &dir, None, put)?;
                update_input_path(inputs, &Value::Object(x.clone()), &places.seen(&t));
            }
        }
        Value::Null => {}
        other => {
            let text = match other {
                Value::String(s) => s.clone(),
                o => crate::expr::py_json(o),
            };
            let Some(n) = name else {
                return Err(CwlError::Validation(
                    "InitialWorkDirRequirement: entry without entryname".into(),
                ));
            };
            let target = dir.join(&n);
            if let Some(pp) = target.parent() {
                std::fs::create_dir_all(pp)?;
            }
            std::fs::write(&target, text)?;
        }
    }
    Ok(())
}

fn update_input_path(inputs: &mut Value, entry: &Value, target: &Path) {
    let loc = entry
        .get("location")
        .and_then(Value::as_str)
        .map(str::to_string);
    fn walk(v: &mut Value, loc: &Option<String>, path: &Option<String>, target: &Path) {
        match v {
            Value::Object(m) => {
                let l = m
                    .get("location")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let p = m.get("path").and_then(Value::as_str).map(str::to_string);
                if m.contains_key("class")
                    && ((loc.is_some() && l == *loc) || (path.is_some() && p == *path))
                {
                    m.insert("path".into(), Value::String(target.display().to_string()));
                    if let Some(Value::Array(lst)) = m.get_mut("listing") {
                        for x in lst.iter_mut() {
                            retarget_paths(x, target);
                        }
                    }
                    return;
                }
                for (_, x) in m.iter_mut() {
                    walk(x, loc, path, target);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, loc, path, target)),
            _ => {}
        }
    }
    let path = entry
        .get("path")
        .and_then(Value::as_str)
        .map(str::to_string);
    walk(inputs, &loc, &path, target);
}

fn retarget_paths(v: &mut Value, dir: &Path) {
    if let Value::Object(m) = v {
        let b = m
            .get("basename")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let p = dir.join(&b);
        m.insert("path".into(), Value::String(p.display().to_string()));
        if let Some(Value::Array(l)) = m.get_mut("listing") {
            for x in l.iter_mut() {
                retarget_paths(x, &p);
            }
        }
    }
}

fn symlink(src: &Path, dst: &Path) -> Result<()> {
    if dst.exists() || dst.symlink_metadata().is_ok() {
        return Ok(());
    }
    std::os::unix::fs::symlink(src, dst).map_err(|e| {
        CwlError::Execution(format!(
            "cannot stage {} at {}: {e}",
            src.display(),
            dst.display()
        ))
    })
}

fn set_writable(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(md) = std::fs::metadata(p) {
        let mut perm = md.permissions();
        perm.set_mode(perm.mode() | 0o200);
        std::fs::set_permissions(p, perm).ok();
    }
}
