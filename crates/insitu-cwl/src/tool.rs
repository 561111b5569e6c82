//! CommandLineTool and ExpressionTool execution: staging, command-line
//! building, running through an [`crate::executor::Executor`], and output
//! collection (globs, `outputEval`, `cwl.output.json`, secondary files).

use crate::ContainerMode;
use crate::container::{ContainerRun, Podman};
use crate::error::{CwlError, Result};
use crate::executor::{CommandSpec, Executor};
use crate::expr::{Evaluator, Scope};
use crate::files::{self, Schemas};
use crate::process::{Inherited, Reqs, RunCtx, prepare_inputs};
use serde_json::{Map, Value, json};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum KeyPart {
    Int(i64),
    Str(String),
}

struct Arg {
    s: String,
    quote: bool,
}

/// Run an ExpressionTool.
pub fn run_expression_tool(p: &Value, job: &Value, inh: &Inherited, ctx: &RunCtx) -> Result<Value> {
    let reqs = Reqs::of(p, inh)?;
    let ev = reqs.evaluator(ctx);
    let inputs = prepare_inputs(p, job, &reqs, &ev)?;
    let scope = Scope {
        inputs: Value::Object(inputs),
        this: Value::Null,
        runtime: runtime_obj(
            p,
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
        if v.is_null() && !files::is_optional(&t) && t.as_str() != Some("Any") {
            return Err(CwlError::Execution(format!(
                "ExpressionTool output '{id}' is missing"
            )));
        }
        files::fill_fs(&mut v, "no_listing").ok();
        out.insert(id.to_string(), v);
    }
    Ok(Value::Object(out))
}

fn runtime_obj(
    p: &Value,
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
    let _ = p;
    Ok(json!({
        "outdir": outdir.display().to_string(),
        "tmpdir": tmpdir.display().to_string(),
        "cores": cores, "ram": ram, "outdirSize": outsz, "tmpdirSize": tmpsz
    }))
}

fn key_of(pos: &Value, name: KeyPart, ev: &Evaluator, scope: &Scope) -> Result<Vec<KeyPart>> {
    let p = ev.eval(pos, scope)?;
    let n = p.as_i64().unwrap_or(0);
    Ok(vec![KeyPart::Int(n), name])
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn value_str(v: &Value) -> String {
    match v {
        Value::Number(n) => {
            let t = n.to_string();
            if t.contains(['e', 'E', '.']) {
                match t.parse::<f64>() {
                    Ok(f) => format!("{f}"),
                    Err(_) => t,
                }
            } else {
                t
            }
        }
        Value::String(s) => s.clone(),
        Value::Object(m) if m.contains_key("class") => m
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        other => other.to_string(),
    }
}

/// Find the alternative of a (union) type that a value matches.
fn select_type(v: &Value, t: &Value, schemas: &Schemas) -> Value {
    let t = files::resolve_type(t, schemas).clone();
    match &t {
        Value::Array(alts) => {
            for a in alts {
                if files::matches(v, a, schemas) {
                    return files::resolve_type(a, schemas).clone();
                }
            }
            t
        }
        _ => t,
    }
}

fn bind(
    v: &Value,
    t: &Value,
    binding: Option<&Value>,
    ev: &Evaluator,
    scope: &Scope,
    schemas: &Schemas,
) -> Result<Vec<Arg>> {
    let mut v = v.clone();
    if v.is_null() {
        return Ok(vec![]);
    }
    if let Some(b) = binding
        && let Some(vf) = b.get("valueFrom")
    {
        let s = Scope {
            this: v.clone(),
            ..scope.clone()
        };
        v = ev.eval(vf, &s)?;
    }
    let t = select_type(&v, t, schemas);
    let prefix = binding
        .and_then(|b| b.get("prefix"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let separate = binding
        .and_then(|b| b.get("separate"))
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let quote = binding
        .and_then(|b| b.get("shellQuote"))
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let mk = |s: String| Arg { s, quote };
    let with_prefix = |val: String| -> Vec<Arg> {
        match &prefix {
            Some(p) if separate => vec![mk(p.clone()), mk(val)],
            Some(p) => vec![mk(format!("{p}{val}"))],
            None => vec![mk(val)],
        }
    };
    Ok(match &v {
        Value::Null => vec![],
        Value::Bool(true) => prefix.clone().map(|p| vec![mk(p)]).unwrap_or_default(),
        Value::Bool(false) => vec![],
        Value::Array(items) => {
            let item_t = t.get("items").cloned().unwrap_or(json!("Any"));
            let item_binding = t.get("inputBinding").cloned();
            let sep = binding
                .and_then(|b| b.get("itemSeparator"))
                .and_then(Value::as_str);
            if items.is_empty() && binding.is_some() {
                return Ok(vec![]);
            }
            let mut parts: Vec<Arg> = vec![];
            if binding.is_none() && item_binding.is_none() {
                return Ok(vec![]);
            }
            let item_is_record = |it: &Value| matches!(select_type(it, &item_t, schemas), Value::Object(m) if m.get("type").and_then(Value::as_str) == Some("record"));
            for it in items {
                if item_binding.is_some() || item_is_record(it) {
                    parts.extend(bind(
                        it,
                        &item_t,
                        item_binding.as_ref(),
                        ev,
                        scope,
                        schemas,
                    )?);
                } else {
                    flatten_into(it, &mut parts, quote);
                }
            }
            if binding.is_none() {
                return Ok(parts);
            }
            if let Some(sep) = sep {
                let joined = parts
                    .iter()
                    .map(|a| a.s.clone())
                    .collect::<Vec<_>>()
                    .join(sep);
                with_prefix(joined)
            } else {
                let mut out = vec![];
                if let Some(p) = &prefix {
                    out.push(mk(p.clone()));
                }
                out.extend(parts);
                out
            }
        }
        Value::Object(m) if !m.contains_key("class") => {
            // record
            let mut keyed: Vec<(Vec<KeyPart>, Vec<Arg>)> = vec![];
            for f in t
                .get("fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = f.get("name").and_then(Value::as_str).unwrap_or("");
                let fb = f.get("inputBinding");
                let ft = f.get("type").cloned().unwrap_or(json!("Any"));
                let fv = m.get(name).cloned().unwrap_or(Value::Null);
                if fb.is_none() && !matches!(files::resolve_type(&ft, schemas), Value::Object(_)) {
                    continue;
                }
                let pos = fb
                    .and_then(|b| b.get("position"))
                    .cloned()
                    .unwrap_or(json!(0));
                let key = key_of(&pos, KeyPart::Str(name.to_string()), ev, scope)?;
                keyed.push((key, bind(&fv, &ft, fb, ev, scope, schemas)?));
            }
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            let mut out = vec![];
            if binding.is_some()
                && let Some(p) = &prefix
            {
                out.push(mk(p.clone()));
            }
            for (_, a) in keyed {
                out.extend(a);
            }
            out
        }
        other => {
            if binding.is_none() {
                return Ok(vec![]);
            }
            with_prefix(value_str(other))
        }
    })
}

fn flatten_into(v: &Value, out: &mut Vec<Arg>, quote: bool) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| flatten_into(x, out, quote)),
        other => out.push(Arg {
            s: value_str(other),
            quote,
        }),
    }
}

fn stage_inputs(
    v: &mut Value,
    stage_root: &Path,
    n: &mut usize,
    ro: &mut Vec<PathBuf>,
) -> Result<()> {
    match v {
        Value::Array(a) => {
            for x in a {
                stage_inputs(x, stage_root, n, ro)?;
            }
        }
        Value::Object(m) => {
            let class = m.get("class").and_then(Value::as_str).map(str::to_string);
            if matches!(class.as_deref(), Some("File") | Some("Directory")) {
                *n += 1;
                let dir = stage_root.join(format!("s{n}"));
                std::fs::create_dir_all(&dir)?;
                let base = m
                    .get("basename")
                    .and_then(Value::as_str)
                    .unwrap_or("x")
                    .to_string();
                let target = dir.join(&base);
                if let Some(src) = m
                    .get("location")
                    .and_then(Value::as_str)
                    .filter(|l| l.starts_with("file://"))
                {
                    let src = files::loc_to_path(src);
                    ro.push(src.clone());
                    symlink(&src, &target)?;
                } else if class.as_deref() == Some("File") {
                    let c = m.get("contents").and_then(Value::as_str).unwrap_or("");
                    std::fs::write(&target, c)?;
                    m.insert(
                        "location".into(),
                        Value::String(files::path_to_loc(&target)),
                    );
                } else {
                    std::fs::create_dir_all(&target)?;
                    materialize_listing(m.get("listing"), &target)?;
                    m.insert(
                        "location".into(),
                        Value::String(files::path_to_loc(&target)),
                    );
                }
                m.insert("path".into(), Value::String(target.display().to_string()));
                if class.as_deref() == Some("File") {
                    m.insert("dirname".into(), Value::String(dir.display().to_string()));
                }
                if let Some(Value::Array(sf)) = m.get_mut("secondaryFiles") {
                    for s in sf.iter_mut() {
                        if let Value::Object(sm) = s {
                            let sb = sm
                                .get("basename")
                                .and_then(Value::as_str)
                                .unwrap_or("x")
                                .to_string();
                            let t = dir.join(&sb);
                            if let Some(src) = sm
                                .get("location")
                                .and_then(Value::as_str)
                                .filter(|l| l.starts_with("file://"))
                            {
                                let src = files::loc_to_path(src);
                                ro.push(src.clone());
                                if !t.exists() {
                                    symlink(&src, &t)?;
                                }
                            } else if let Some(c) = sm.get("contents").and_then(Value::as_str) {
                                std::fs::write(&t, c)?;
                                sm.insert("location".into(), Value::String(files::path_to_loc(&t)));
                            }
                            sm.insert("path".into(), Value::String(t.display().to_string()));
                            if sm.get("class").and_then(Value::as_str) == Some("File") {
                                sm.insert(
                                    "dirname".into(),
                                    Value::String(dir.display().to_string()),
                                );
                            }
                        }
                    }
                }
                if let Some(Value::Array(l)) = m.get_mut("listing") {
                    for x in l.iter_mut() {
                        retarget_paths(x, &target);
                    }
                }
            } else {
                for (_, x) in m.iter_mut() {
                    stage_inputs(x, stage_root, n, ro)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
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

/// Write literal File/Directory listings into a directory.
pub fn materialize_listing(listing: Option<&Value>, dir: &Path) -> Result<()> {
    for e in listing.and_then(Value::as_array).into_iter().flatten() {
        materialize(e, dir, None, true)?;
    }
    Ok(())
}

fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    if src.is_dir() {
        std::fs::create_dir_all(dst)?;
        for e in std::fs::read_dir(src)? {
            let e = e?;
            copy_tree(&e.path(), &dst.join(e.file_name()))?;
        }
    } else {
        std::fs::copy(src, dst)?;
    }
    Ok(())
}

/// Create a File/Directory object at `dir/name` (copy when `copy`).
fn materialize(e: &Value, dir: &Path, name: Option<&str>, copy: bool) -> Result<PathBuf> {
    let base = name
        .map(str::to_string)
        .or_else(|| {
            e.get("basename")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .or_else(|| {
            e.get("location").and_then(Value::as_str).map(|l| {
                files::loc_to_path(l)
                    .file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
        })
        .unwrap_or_else(|| "unnamed".into());
    let target = if Path::new(&base).is_absolute() {
        PathBuf::from(&base)
    } else {
        dir.join(&base)
    };
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let class = e.get("class").and_then(Value::as_str).unwrap_or("File");
    if let Some(loc) = e.get("location").and_then(Value::as_str) {
        let src = files::loc_to_path(loc);
        if copy {
            if target.exists() && class == "Directory" {
                // merge
            } else if target.exists() {
                std::fs::remove_file(&target).ok();
            }
            copy_tree(&src, &target)?;
        } else {
            symlink(&src, &target)?;
        }
    } else if class == "File" {
        std::fs::write(
            &target,
            e.get("contents").and_then(Value::as_str).unwrap_or(""),
        )?;
    } else {
        std::fs::create_dir_all(&target)?;
    }
    if class == "Directory" && e.get("location").is_none() {
        materialize_listing(e.get("listing"), &target)?;
    }
    if let Some(sf) = e.get("secondaryFiles").and_then(Value::as_array) {
        for s in sf {
            if let Some(d) = target.parent() {
                materialize(s, d, None, copy)?;
            }
        }
    }
    Ok(target)
}

fn set_writable(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(md) = std::fs::metadata(p) {
        let mut perm = md.permissions();
        perm.set_mode(perm.mode() | 0o200);
        std::fs::set_permissions(p, perm).ok();
    }
}

/// Where InitialWorkDir entries go: the output directory as the engine and
/// as the tool see it, and, in a container whose DockerRequirement is a
/// requirement, host directories for entries named by absolute paths
/// elsewhere, with the mounts that show them there.
struct Places {
    outdir: PathBuf,
    seen_outdir: PathBuf,
    jobdir: PathBuf,
    absolute_allowed: bool,
    mounts: Vec<(PathBuf, PathBuf, bool)>,
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
        let base = Path::new(n)
            .file_name()
            .map(|b| b.to_string_lossy().into_owned())
            .ok_or_else(|| {
                CwlError::Validation(format!(
                    "InitialWorkDirRequirement: entryname '{n}' names no file"
                ))
            })?;
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

/// The container a job runs in, if any, and the engine that runs it.
async fn container_for(
    p: &Value,
    reqs: &Reqs,
    ctx: &RunCtx,
    jobdir: &Path,
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
    let base = PathBuf::from(p.get("__base").and_then(Value::as_str).unwrap_or("."));
    let image = podman
        .ensure_image(req, &base, &jobdir.join("build"))
        .await?;
    Ok(Some((
        podman,
        ContainerRun {
            image,
            outdir: seen_outdir,
            mounts: vec![],
        },
    )))
}

fn initial_workdir(
    r: &Value,
    ev: &Evaluator,
    scope: &Scope,
    places: &mut Places,
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
            if it.is_null() {
                continue;
            }
            if it.get("entry").is_some() {
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
                let (dir, name) = places.place(name.as_deref(), writable)?;
                match &entry {
                    Value::Object(m) if m.contains_key("class") => {
                        let t = materialize(&entry, &dir, name.as_deref(), writable && !inplace)?;
                        if writable {
                            set_writable(&t);
                        }
                        update_input_path(inputs, &entry, &places.seen(&t));
                    }
                    Value::Array(a)
                        if a.iter().all(|x| x.get("class").is_some()) && name.is_none() =>
                    {
                        for x in a {
                            let t = materialize(x, &dir, None, writable && !inplace)?;
                            update_input_path(inputs, x, &places.seen(&t));
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
            } else if it.get("class").is_some() {
                let writable = false;
                let t = materialize(
                    &it,
                    &places.outdir,
                    None,
                    writable || it.get("location").is_none(),
                )?;
                update_input_path(inputs, &it, &places.seen(&t));
            }
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

/// Run a CommandLineTool and return its output object.
pub async fn run_command_line_tool(
    p: &Value,
    job: &Value,
    inh: &Inherited,
    ctx: &RunCtx,
) -> Result<Value> {
    let reqs = Reqs::of(p, inh)?;
    let ev = reqs.evaluator(ctx);
    let schemas = reqs.schemas();
    let inputs_map = prepare_inputs(p, job, &reqs, &ev)?;
    let cache_key = match &ctx.cache {
        Some(c) => {
            let inputs = Value::Object(inputs_map.clone());
            let rt = runtime_obj(p, &reqs, &ev, &inputs, Path::new("/"), Path::new("/"))?;
            c.job_key(ctx, p, &reqs, &ev, &inputs_map, &rt)?
        }
        None => None,
    };
    if let (Some(c), Some(k)) = (&ctx.cache, &cache_key)
        && let Some(out) = c.lookup(k, ctx)
    {
        let name = crate::cache::job_name(p, inh);
        ctx.log(&format!("reused {name} from the cache"));
        return Ok(out);
    }
    // The job's directories are siblings named after it: `jobN` (the
    // output directory), `jobN.tmp`, and when needed `jobN.stg` (staged
    // inputs) and `jobN.aux` (container mounts and builds). Two
    // directories per job, not three: a scatter of a thousand jobs makes
    // thousands of them, and making one is not free.
    let outdir = ctx.fresh_name("job");
    let sibling = |ext: &str| {
        let mut name = outdir.clone().into_os_string();
        name.push(ext);
        PathBuf::from(name)
    };
    let (tmpdir, stgdir, jobdir) = (sibling(".tmp"), sibling(".stg"), sibling(".aux"));
    for d in [&outdir, &tmpdir] {
        std::fs::create_dir(d)?;
    }
    let mut inputs = Value::Object(inputs_map);
    let mut ro = vec![];
    let mut n = 0;
    stage_inputs(&mut inputs, &stgdir, &mut n, &mut ro)?;
    let container = container_for(p, &reqs, ctx, &jobdir, &outdir).await?;
    // Where the tool sees its output directory.
    let seen_outdir = container
        .as_ref()
        .map_or(outdir.clone(), |(_, c)| c.outdir.clone());
    let runtime = runtime_obj(p, &reqs, &ev, &inputs, &seen_outdir, &tmpdir)?;
    let mut scope = Scope {
        inputs: inputs.clone(),
        this: Value::Null,
        runtime: runtime.clone(),
    };
    let inplace = reqs
        .get("InplaceUpdateRequirement")
        .and_then(|r| r.get("inplaceUpdate"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut places = Places {
        outdir: outdir.clone(),
        seen_outdir: seen_outdir.clone(),
        jobdir: jobdir.clone(),
        absolute_allowed: container.is_some() && reqs.docker().is_some_and(|(_, req)| req),
        mounts: vec![],
    };
    if let Some(r) = reqs.get("InitialWorkDirRequirement") {
        initial_workdir(r, &ev, &scope, &mut places, &mut inputs, inplace)?;
        scope.inputs = inputs.clone();
    }
    // command line
    let mut keyed: Vec<(Vec<KeyPart>, Vec<Arg>)> = vec![];
    for (i, a) in p
        .get("arguments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        match a {
            Value::Object(_) => {
                let pos = a.get("position").cloned().unwrap_or(json!(0));
                let key = key_of(&pos, KeyPart::Int(i as i64), &ev, &scope)?;
                let vf = a.get("valueFrom").cloned().unwrap_or(Value::Null);
                let v = ev.eval(&vf, &scope)?;
                let mut b = a.clone();
                if let Value::Object(bm) = &mut b {
                    bm.remove("valueFrom");
                }
                keyed.push((
                    key,
                    bind(&v, &json!("Any"), Some(&b), &ev, &scope, &schemas)?,
                ));
            }
            other => {
                let key = vec![KeyPart::Int(0), KeyPart::Int(i as i64)];
                let v = ev.eval(other, &scope)?;
                keyed.push((
                    key,
                    vec![Arg {
                        s: value_str(&v),
                        quote: true,
                    }],
                ));
            }
        }
    }
    for inp in p
        .get("inputs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let id = inp.get("id").and_then(Value::as_str).unwrap_or("");
        let v = scope.inputs.get(id).cloned().unwrap_or(Value::Null);
        let t = inp.get("type").cloned().unwrap_or(json!("Any"));
        let b = inp.get("inputBinding");
        let sel = select_type(&v, &t, &schemas);
        let nested = matches!(&sel, Value::Object(m) if m.contains_key("inputBinding") || m.get("type").and_then(Value::as_str) == Some("record"));
        if b.is_none() && !nested {
            continue;
        }
        if b.is_none() && sel.get("type").and_then(Value::as_str) == Some("record") {
            if let Value::Object(vm) = &v {
                for f in sel
                    .get("fields")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let name = f.get("name").and_then(Value::as_str).unwrap_or("");
                    let Some(fb) = f.get("inputBinding") else {
                        continue;
                    };
                    let ft = f.get("type").cloned().unwrap_or(json!("Any"));
                    let fv = vm.get(name).cloned().unwrap_or(Value::Null);
                    let pos = fb.get("position").cloned().unwrap_or(json!(0));
                    let s = Scope {
                        this: fv.clone(),
                        ..scope.clone()
                    };
                    let key = key_of(&pos, KeyPart::Str(format!("{id}.{name}")), &ev, &s)?;
                    keyed.push((key, bind(&fv, &ft, Some(fb), &ev, &s, &schemas)?));
                }
            }
            continue;
        }
        let pos = b
            .and_then(|b| b.get("position"))
            .cloned()
            .unwrap_or(json!(0));
        let s = Scope {
            this: v.clone(),
            ..scope.clone()
        };
        let key = key_of(&pos, KeyPart::Str(id.to_string()), &ev, &s)?;
        keyed.push((key, bind(&v, &t, b, &ev, &s, &schemas)?));
    }
    keyed.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal));
    let mut argv: Vec<Arg> = p
        .get("baseCommand")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|s| Arg {
            s: value_str(s),
            quote: true,
        })
        .collect();
    for (_, a) in keyed {
        argv.extend(a);
    }
    let shell = reqs.get("ShellCommandRequirement").is_some();
    let argv: Vec<String> = if shell {
        let line = argv
            .iter()
            .map(|a| {
                if a.quote {
                    shell_quote(&a.s)
                } else {
                    a.s.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
        vec!["/bin/sh".into(), "-c".into(), line]
    } else {
        argv.into_iter().map(|a| a.s).collect()
    };
    // environment
    let mut env = BTreeMap::new();
    env.insert("HOME".to_string(), seen_outdir.display().to_string());
    env.insert("TMPDIR".to_string(), tmpdir.display().to_string());
    if container.is_none() {
        // In a container the image's PATH applies.
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
            let val = ev.eval(d.get("envValue").unwrap_or(&Value::Null), &scope)?;
            env.insert(name, value_str(&val));
        }
    }
    let eval_name = |k: &str| -> Result<Option<String>> {
        match p.get(k) {
            Some(v) => Ok(Some(value_str(&ev.eval(v, &scope)?))),
            None => Ok(None),
        }
    };
    let mut stdout_name = eval_name("stdout")?;
    let mut stderr_name = eval_name("stderr")?;
    let stdin_name = eval_name("stdin")?;
    for o in p
        .get("outputs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match o.get("type").and_then(Value::as_str) {
            Some("stdout") if stdout_name.is_none() => {
                stdout_name = Some(format!("stdout-{}", std::process::id()))
            }
            Some("stderr") if stderr_name.is_none() => {
                stderr_name = Some(format!("stderr-{}", std::process::id()))
            }
            _ => {}
        }
    }
    let timeout = match reqs.get("ToolTimeLimit").and_then(|r| r.get("timelimit")) {
        Some(t) => {
            let t = ev.eval(t, &scope)?;
            match t.as_f64() {
                Some(s) if s > 0.0 => Some(Duration::from_secs_f64(s)),
                Some(0.0) => None,
                _ => {
                    return Err(CwlError::Validation(format!(
                        "ToolTimeLimit: timelimit must be a non-negative number, got {t}"
                    )));
                }
            }
        }
        None => None,
    };
    let network = match reqs
        .get("NetworkAccess")
        .and_then(|r| r.get("networkAccess"))
    {
        Some(v) => match ev.eval(v, &scope)? {
            Value::Bool(b) => b,
            other => {
                return Err(CwlError::Validation(format!(
                    "NetworkAccess: networkAccess must be a boolean, got {other}"
                )));
            }
        },
        None => false,
    };
    let spec = CommandSpec {
        argv: argv.clone(),
        cwd: outdir.clone(),
        tmpdir: tmpdir.clone(),
        env,
        stdin: stdin_name.map(|s| {
            if Path::new(&s).is_absolute() {
                PathBuf::from(s)
            } else {
                outdir.join(s)
            }
        }),
        stdout: stdout_name.as_ref().map(|s| outdir.join(s)),
        stderr: stderr_name.as_ref().map(|s| outdir.join(s)),
        timeout,
        read_only_paths: {
            collect_link_targets(&outdir, &mut ro, 0);
            let mut paths = ro.clone();
            paths.push(stgdir.clone());
            paths
        },
        // Inputs updated in place are reached through links in the output
        // directory and must stay writable.
        read_write_paths: if inplace { ro.clone() } else { vec![] },
        network,
        container: container.as_ref().map(|(_, c)| ContainerRun {
            mounts: std::mem::take(&mut places.mounts),
            ..c.clone()
        }),
    };
    ctx.log(&format!("running {}", argv.join(" ")));
    let code = {
        let _permit = ctx.reserve(&declared_resources(&reqs, &runtime)).await?;
        use std::sync::atomic::Ordering::SeqCst;
        ctx.progress.running.fetch_add(1, SeqCst);
        let r = match &container {
            Some((podman, _)) => podman.run(&spec).await,
            None => ctx.executor.run(&spec).await,
        };
        ctx.progress.running.fetch_sub(1, SeqCst);
        r?
    };
    if let (Some(rec), Some(id)) = (&ctx.recorder, inh.record) {
        rec.command(
            id,
            crate::provenance::Command {
                argv: argv.clone(),
                exit_code: code,
                env: spec.env.clone(),
                image: spec.container.as_ref().map(|c| c.image.clone()),
            },
        );
    }
    let codes = |k: &str| -> Vec<i64> {
        p.get(k)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_i64)
            .collect()
    };
    let success = codes("successCodes");
    let ok = if success.is_empty() {
        code == 0
    } else {
        success.contains(&(code as i64))
    };
    if !ok {
        return Err(CwlError::Execution(format!(
            "command '{}' exited with code {code}",
            argv.join(" ")
        )));
    }
    let mut rt = runtime.clone();
    rt["exitCode"] = json!(code);
    let scope = Scope {
        inputs: scope.inputs.clone(),
        this: Value::Null,
        runtime: rt,
    };
    let mut out = collect_outputs(
        p,
        &outdir,
        &ev,
        &scope,
        &schemas,
        stdout_name.as_deref(),
        stderr_name.as_deref(),
    )?;
    check_symlinks(&out, &ctx.tmp_root, &ro)?;
    if let Some(ns) = p.get("__ns").and_then(Value::as_object) {
        expand_formats(&mut out, ns);
    }
    if let (Some(c), Some(k)) = (&ctx.cache, &cache_key) {
        c.store(k, &outdir, &out, ctx);
    }
    Ok(out)
}

/// The cores and memory (MiB) a job's ResourceRequirement asks for, as
/// worked out in its runtime; a job that declares none reserves one core.
fn declared_resources(reqs: &Reqs, runtime: &Value) -> crate::process::Resources {
    let declared = reqs.get("ResourceRequirement");
    let ask = |k: &str, keys: [&str; 2]| -> u64 {
        let given = declared.is_some_and(|r| keys.iter().any(|f| r.get(*f).is_some()));
        match runtime.get(k).and_then(Value::as_f64) {
            Some(v) if given && v > 0.0 => v.ceil() as u64,
            _ => 0,
        }
    };
    crate::process::Resources {
        cores: ask("cores", ["coresMin", "coresMax"]).max(1),
        ram_mib: ask("ram", ["ramMin", "ramMax"]),
    }
}

/// Record where the symlinks the engine placed in the output directory point
/// (staged inputs), so those are accepted as outputs later.
fn collect_link_targets(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    if depth > 16 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(ft) if ft.is_symlink() => {
                if let Ok(t) = std::fs::canonicalize(&p) {
                    out.push(t);
                }
            }
            Ok(ft) if ft.is_dir() => collect_link_targets(&p, out, depth + 1),
            _ => {}
        }
    }
}

/// Refuse outputs that are symlinks to files outside the job's directories
/// and the inputs (e.g. a tool linking `/etc/passwd` into its outdir).
fn check_symlinks(v: &Value, tmp_root: &Path, inputs: &[PathBuf]) -> Result<()> {
    match v {
        Value::Object(m) => {
            if m.get("class").and_then(Value::as_str) == Some("File")
                && let Some(p) = m.get("path").and_then(Value::as_str)
            {
                let p = Path::new(p);
                let is_link = p
                    .symlink_metadata()
                    .map(|md| md.file_type().is_symlink())
                    .unwrap_or(false);
                if is_link {
                    let target = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
                    let root =
                        std::fs::canonicalize(tmp_root).unwrap_or_else(|_| tmp_root.to_path_buf());
                    let ok = target.starts_with(&root)
                        || inputs.iter().any(|i| {
                            let ci = std::fs::canonicalize(i).unwrap_or_else(|_| i.clone());
                            target.starts_with(&ci)
                        });
                    if !ok {
                        return Err(CwlError::Execution(format!(
                            "output {} is a symlink to {} outside the job's directories",
                            p.display(),
                            target.display()
                        )));
                    }
                }
            }
            m.values()
                .try_for_each(|x| check_symlinks(x, tmp_root, inputs))
        }
        Value::Array(a) => a
            .iter()
            .try_for_each(|x| check_symlinks(x, tmp_root, inputs)),
        _ => Ok(()),
    }
}

fn expand_formats(v: &mut Value, ns: &Map<String, Value>) {
    match v {
        Value::Object(m) => {
            if m.contains_key("class")
                && let Some(Value::String(f)) = m.get("format")
            {
                let e = crate::loader::expand_ns(f, ns);
                m.insert("format".into(), Value::String(e));
            }
            for (_, x) in m.iter_mut() {
                expand_formats(x, ns);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| expand_formats(x, ns)),
        _ => {}
    }
}

fn collect_outputs(
    p: &Value,
    outdir: &Path,
    ev: &Evaluator,
    scope: &Scope,
    schemas: &Schemas,
    stdout: Option<&str>,
    stderr: Option<&str>,
) -> Result<Value> {
    let custom = outdir.join("cwl.output.json");
    if custom.is_file() {
        let text = std::fs::read_to_string(&custom)?;
        let mut v: Value = serde_json::from_str(&text)
            .map_err(|e| CwlError::Execution(format!("cwl.output.json: {e}")))?;
        crate::loader::fix_locations(&mut v, outdir);
        files::fill_fs(&mut v, "no_listing")?;
        let mut out = Map::new();
        for o in p
            .get("outputs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let id = o.get("id").and_then(Value::as_str).unwrap_or("");
            out.insert(id.to_string(), v.get(id).cloned().unwrap_or(Value::Null));
        }
        return Ok(Value::Object(out));
    }
    let mut out = Map::new();
    for o in p
        .get("outputs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let id = o
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let t = o.get("type").cloned().unwrap_or(json!("Any"));
        let v = match t.as_str() {
            Some("stdout") => file_obj(&outdir.join(stdout.unwrap_or("stdout"))),
            Some("stderr") => file_obj(&outdir.join(stderr.unwrap_or("stderr"))),
            _ => collect_one(o, &t, outdir, ev, scope, schemas)?,
        };
        if v.is_null() && !files::is_optional(&t) && t.as_str() != Some("Any") {
            return Err(CwlError::Execution(format!(
                "output '{id}' not produced (got null)"
            )));
        }
        if !v.is_null()
            && t.as_str() != Some("stdout")
            && t.as_str() != Some("stderr")
            && !files::matches(&v, &t, schemas)
        {
            return Err(CwlError::Execution(format!(
                "output '{id}': value {} does not match type {t}",
                crate::process::short_json(&v)
            )));
        }
        out.insert(id, v);
    }
    Ok(Value::Object(out))
}

fn file_obj(p: &Path) -> Value {
    let mut v = json!({"class": "File", "location": files::path_to_loc(p)});
    files::fill_fs(&mut v, "no_listing").ok();
    v
}

fn collect_one(
    o: &Value,
    t: &Value,
    outdir: &Path,
    ev: &Evaluator,
    scope: &Scope,
    schemas: &Schemas,
) -> Result<Value> {
    let rt = files::resolve_type(t, schemas).clone();
    let b = o.get("outputBinding");
    if b.is_none() {
        if let Some(Value::Array(fields)) = rt.get("fields")
            && rt.get("type").and_then(Value::as_str) == Some("record")
        {
            let mut m = Map::new();
            for f in fields {
                let n = f.get("name").and_then(Value::as_str).unwrap_or("");
                let ft = f.get("type").cloned().unwrap_or(json!("Any"));
                m.insert(
                    n.to_string(),
                    collect_one(f, &ft, outdir, ev, scope, schemas)?,
                );
            }
            return Ok(Value::Object(m));
        }
        return Ok(Value::Null);
    }
    let Some(b) = b else { return Ok(Value::Null) };
    let mut result: Value = Value::Null;
    let mut globbed = false;
    if let Some(g) = b.get("glob") {
        globbed = true;
        let pats = ev.eval(g, scope)?;
        let pats: Vec<String> = match pats {
            Value::Array(a) => a.iter().map(value_str).collect(),
            Value::Null => vec![],
            o => vec![value_str(&o)],
        };
        let mut found = vec![];
        for pat in pats {
            let mut hits = glob(outdir, &pat)?;
            hits.sort();
            for h in hits {
                let mut v = if h.is_dir() {
                    json!({"class": "Directory", "location": files::path_to_loc(&h)})
                } else {
                    json!({"class": "File", "location": files::path_to_loc(&h)})
                };
                files::fill_fs(&mut v, "deep_listing")?;
                if (b
                    .get("loadContents")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
                    || o.get("loadContents")
                        .and_then(Value::as_bool)
                        .unwrap_or(false))
                    && h.is_file()
                {
                    v["contents"] = Value::String(files::load_contents(&h)?);
                }
                found.push(v);
            }
        }
        result = Value::Array(found);
    }
    if let Some(oe) = b.get("outputEval") {
        let s = Scope {
            this: result.clone(),
            ..scope.clone()
        };
        result = ev.eval(oe, &s)?;
        globbed = false;
        files::fill_fs(&mut result, "no_listing").ok();
    }
    let is_array = matches!(&rt, Value::Object(m) if m.get("type").and_then(Value::as_str) == Some("array"))
        || matches!(&rt, Value::Array(a) if a.iter().any(|x| matches!(files::resolve_type(x, schemas), Value::Object(m) if m.get("type").and_then(Value::as_str) == Some("array"))));
    if let Value::Array(a) = &result
        && !is_array
        && (globbed || rt.as_str().is_some() || rt.is_array())
    {
        let any = rt.as_str() == Some("Any");
        result = match a.len() {
            0 => Value::Null,
            1 if !any || globbed => a[0].clone(),
            _ if any => result.clone(),
            _ => {
                return Err(CwlError::Execution(format!(
                    "output '{}': glob matched {} files but the type is not an array",
                    o.get("id").and_then(Value::as_str).unwrap_or(""),
                    a.len()
                )));
            }
        };
    }
    if let Some(sf) = o.get("secondaryFiles") {
        add_output_secondary(&mut result, sf, ev, scope)?;
    }
    if let Some(f) = o.get("format") {
        set_format(&mut result, f, ev, scope)?;
    }
    Ok(result)
}

fn set_format(v: &mut Value, f: &Value, ev: &Evaluator, scope: &Scope) -> Result<()> {
    match v {
        Value::Array(a) => {
            for x in a {
                set_format(x, f, ev, scope)?;
            }
        }
        Value::Object(m) if m.get("class").and_then(Value::as_str) == Some("File") => {
            let s = Scope {
                this: Value::Object(m.clone()),
                ..scope.clone()
            };
            let fv = ev.eval(f, &s)?;
            m.insert("format".into(), fv);
        }
        _ => {}
    }
    Ok(())
}

fn add_output_secondary(v: &mut Value, sf: &Value, ev: &Evaluator, scope: &Scope) -> Result<()> {
    match v {
        Value::Array(a) => {
            for x in a {
                add_output_secondary(x, sf, ev, scope)?;
            }
            Ok(())
        }
        Value::Object(m) if m.get("class").and_then(Value::as_str) == Some("File") => {
            crate::process::secondary_files(v, sf, ev, &scope.inputs, true, false)
        }
        _ => Ok(()),
    }
}

/// Minimal glob: `*`, `?`, `[..]` per path segment, relative to `dir`.
pub fn glob(dir: &Path, pat: &str) -> Result<Vec<PathBuf>> {
    if pat.split('/').any(|seg| seg == "..") {
        return Err(CwlError::Execution(format!(
            "glob '{pat}' leaves the output directory"
        )));
    }
    if Path::new(pat).is_absolute() && !Path::new(pat).starts_with(dir) {
        return Err(CwlError::Execution(format!(
            "glob '{pat}' is outside the output directory"
        )));
    }
    let (root, rel) = if let Some(stripped) = pat.strip_prefix(&format!("{}/", dir.display())) {
        (dir.to_path_buf(), stripped.to_string())
    } else if Path::new(pat).is_absolute() {
        (PathBuf::from("/"), pat.trim_start_matches('/').to_string())
    } else {
        (dir.to_path_buf(), pat.to_string())
    };
    if rel == "." || rel.is_empty() {
        return Ok(vec![root]);
    }
    let segs: Vec<&str> = rel
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    let mut cur = vec![root];
    for seg in segs {
        let mut next = vec![];
        for c in &cur {
            if !seg.contains(['*', '?', '[']) {
                let p = c.join(seg);
                if p.exists() {
                    next.push(p);
                }
                continue;
            }
            if let Ok(rd) = std::fs::read_dir(c) {
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name.starts_with('.') && !seg.starts_with('.') {
                        continue;
                    }
                    if wildcard(seg.as_bytes(), name.as_bytes()) {
                        next.push(e.path());
                    }
                }
            }
        }
        cur = next;
    }
    Ok(cur)
}

fn wildcard(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => wildcard(&p[1..], s) || (!s.is_empty() && wildcard(p, &s[1..])),
        (Some(b'?'), Some(_)) => wildcard(&p[1..], &s[1..]),
        (Some(b'['), Some(c)) => {
            let Some(end) = p.iter().position(|&x| x == b']') else {
                return false;
            };
            let set = &p[1..end];
            let (neg, set) = if set.first() == Some(&b'!') || set.first() == Some(&b'^') {
                (true, &set[1..])
            } else {
                (false, set)
            };
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == b'-' {
                    if *c >= set[i] && *c <= set[i + 2] {
                        hit = true;
                    }
                    i += 3;
                } else {
                    if *c == set[i] {
                        hit = true;
                    }
                    i += 1;
                }
            }
            hit != neg && wildcard(&p[end + 1..], &s[1..])
        }
        (Some(a), Some(b)) if a == b => wildcard(&p[1..], &s[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard(b"*.txt", b"a.txt"));
        assert!(!wildcard(b"*.txt", b"a.tx"));
        assert!(wildcard(b"a?[0-9]", b"ab7"));
    }
}
