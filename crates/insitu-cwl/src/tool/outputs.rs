//! Output collection: the output object of a finished CommandLineTool job
//! from `cwl.output.json`, or from its outputs' `glob`s, `loadContents`,
//! `outputEval`, secondary files and formats; and the check that every
//! output lies in the job's directories or among its inputs.

use crate::error::{CwlError, Result};
use crate::expr::{Evaluator, Scope};
use crate::files;
use crate::tool::bind::value_str;
use crate::types::{self, Schemas};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

/// The names of the files a job's standard output and error went to.
#[derive(Clone, Debug, Default)]
pub struct Streams {
    pub stdout: Option<String>,
    pub stderr: Option<String>,
}

/// What collecting a job's outputs reads: where the job ran, how to
/// evaluate its expressions, and where its outputs may lie.
pub struct Collector<'a> {
    pub outdir: &'a Path,
    pub ev: &'a Evaluator,
    pub scope: &'a Scope,
    pub schemas: &'a Schemas,
    pub bounds: &'a Bounds,
}

impl Collector<'_> {
    /// The output object of a job of tool `p`, every File and Directory
    /// in it checked against the job's [`Bounds`].
    pub fn collect(&self, p: &Value, streams: &Streams) -> Result<Value> {
        let out = self.collect_unchecked(p, streams)?;
        self.bounds.check_outputs(&out)?;
        Ok(out)
    }

    fn collect_unchecked(&self, p: &Value, streams: &Streams) -> Result<Value> {
        let (outdir, schemas) = (self.outdir, self.schemas);
        let custom = outdir.join("cwl.output.json");
        if custom.is_file() {
            let text = std::fs::read_to_string(&custom)?;
            let mut v: Value = serde_json::from_str(&text)
                .map_err(|e| CwlError::Execution(format!("cwl.output.json: {e}")))?;
            crate::loader::fix_locations(&mut v, outdir);
            // The tool wrote these locations: nothing is read from them before
            // they are known to be the job's.
            self.bounds.check_outputs(&v)?;
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
                Some("stdout") => {
                    file_obj(&outdir.join(streams.stdout.as_deref().unwrap_or("stdout")))
                }
                Some("stderr") => {
                    file_obj(&outdir.join(streams.stderr.as_deref().unwrap_or("stderr")))
                }
                _ => self.one(o, &t)?,
            };
            if v.is_null() && !types::is_optional(&t) && t.as_str() != Some("Any") {
                return Err(CwlError::Execution(format!(
                    "output '{id}' not produced (got null)"
                )));
            }
            if !v.is_null()
                && t.as_str() != Some("stdout")
                && t.as_str() != Some("stderr")
                && !types::matches(&v, &t, schemas)
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

    /// The value of output (or record field) `o` of type `t`.
    fn one(&self, o: &Value, t: &Value) -> Result<Value> {
        let (outdir, ev, scope, schemas) = (self.outdir, self.ev, self.scope, self.schemas);
        let rt = types::resolve_type(t, schemas).clone();
        let b = o.get("outputBinding");
        if b.is_none() {
            if let Some(Value::Array(fields)) = rt.get("fields")
                && rt.get("type").and_then(Value::as_str) == Some("record")
            {
                let mut m = Map::new();
                for f in fields {
                    let n = f.get("name").and_then(Value::as_str).unwrap_or("");
                    let ft = f.get("type").cloned().unwrap_or(json!("Any"));
                    m.insert(n.to_string(), self.one(f, &ft)?);
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
                    // Before anything is listed or read through it.
                    self.bounds.check("output", &h)?;
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
            || matches!(&rt, Value::Array(a) if a.iter().any(|x| matches!(types::resolve_type(x, schemas), Value::Object(m) if m.get("type").and_then(Value::as_str) == Some("array"))));
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
}

/// The file object of a job's standard output or error.
fn file_obj(p: &Path) -> Value {
    let mut v = json!({"class": "File", "location": files::path_to_loc(p)});
    files::fill_fs(&mut v, "no_listing").ok();
    v
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

/// Where a job's outputs may lie: in its own directories (output,
/// temporary, staging) or among its inputs. A tool may make links, but
/// none that leads anywhere else: its outputs are copied out of the
/// sandbox by the engine, which sees the whole host.
#[derive(Debug)]
pub struct Bounds {
    /// The job's directories, canonical.
    job: Vec<PathBuf>,
    /// The job's inputs (what it was given links to), canonical.
    inputs: Vec<PathBuf>,
}

/// Where a path leads, for [`Bounds`].
#[derive(PartialEq)]
enum Place {
    Job,
    Input,
    Outside,
}

impl Bounds {
    /// The bounds of a job with directories `job` and inputs `inputs`
    /// (paths that do not exist are left out).
    pub fn new(job: &[&Path], inputs: &[PathBuf]) -> Bounds {
        let canonical = |p: &Path| std::fs::canonicalize(p).ok();
        Bounds {
            job: job.iter().filter_map(|p| canonical(p)).collect(),
            inputs: inputs.iter().filter_map(|p| canonical(p)).collect(),
        }
    }

    fn place(&self, target: &Path) -> Place {
        if self.job.iter().any(|d| target.starts_with(d)) {
            Place::Job
        } else if self.inputs.iter().any(|i| target.starts_with(i)) {
            Place::Input
        } else {
            Place::Outside
        }
    }

    /// Every File and Directory of an output value (secondary files and
    /// listings too) is in bounds.
    pub fn check_outputs(&self, out: &Value) -> Result<()> {
        let mut paths = vec![];
        files::visit(out, &mut |e| paths.extend(e.local_path()));
        paths.iter().try_for_each(|p| self.check("output", p))
    }

    /// `p` (the job's `what`), links resolved, is in bounds; when it is in
    /// the job's directories, so is everything its tree holds, and no link
    /// in it leads back into itself (a loop).
    pub fn check(&self, what: &str, p: &Path) -> Result<()> {
        let target = std::fs::canonicalize(p)
            .map_err(|e| CwlError::Execution(format!("{what} {}: {e}", p.display())))?;
        match self.place(&target) {
            Place::Outside => Err(outside(what, p, &target)),
            Place::Input => Ok(()),
            Place::Job if target.is_dir() => {
                let mut ancestors = vec![dir_id(&target)?];
                self.check_tree(&target, &mut ancestors)
            }
            Place::Job => Ok(()),
        }
    }

    fn check_tree(&self, dir: &Path, ancestors: &mut Vec<(u64, u64)>) -> Result<()> {
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let p = e.path();
            let target = if e.file_type()?.is_symlink() {
                // One that leads nowhere is left out when outputs are copied.
                let Ok(target) = std::fs::canonicalize(&p) else {
                    continue;
                };
                match self.place(&target) {
                    Place::Outside => return Err(outside("output", &p, &target)),
                    Place::Input => continue,
                    Place::Job => target,
                }
            } else {
                p.clone()
            };
            if !target.is_dir() {
                continue;
            }
            let id = dir_id(&target)?;
            if ancestors.contains(&id) {
                return Err(CwlError::Execution(format!(
                    "output {}: link loop: it leads back to a directory that contains it",
                    p.display()
                )));
            }
            ancestors.push(id);
            let checked = self.check_tree(&target, ancestors);
            ancestors.pop();
            checked?;
        }
        Ok(())
    }
}

fn dir_id(p: &Path) -> Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(p)?;
    Ok((md.dev(), md.ino()))
}

fn outside(what: &str, p: &Path, target: &Path) -> CwlError {
    CwlError::Execution(format!(
        "{what} {} leads to {}, outside the job's directories and its inputs",
        p.display(),
        target.display()
    ))
}

pub fn expand_formats(v: &mut Value, ns: &Map<String, Value>) {
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
