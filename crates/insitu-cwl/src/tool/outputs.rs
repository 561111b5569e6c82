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

/// The output object of a job of tool `p` that ran in `outdir`.
pub fn collect_outputs(
    p: &Value,
    outdir: &Path,
    ev: &Evaluator,
    scope: &Scope,
    schemas: &Schemas,
    streams: &Streams,
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
            Some("stdout") => file_obj(&outdir.join(streams.stdout.as_deref().unwrap_or("stdout"))),
            Some("stderr") => file_obj(&outdir.join(streams.stderr.as_deref().unwrap_or("stderr"))),
            _ => collect_one(o, &t, outdir, ev, scope, schemas)?,
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

/// Refuse outputs that are symlinks to files outside the job's directories
/// and the inputs (e.g. a tool linking `/etc/passwd` into its outdir).
pub fn check_symlinks(v: &Value, tmp_root: &Path, inputs: &[PathBuf]) -> Result<()> {
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
