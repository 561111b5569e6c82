//! Resolving: reading documents (regular files only, of bounded size) and
//! what they name (`$import`, `$include`), identifiers (`#frag`, short
//! names), locations made absolute against a document's directory, and job
//! orders.

use super::parse::parse_text;
use crate::access::Access;
use crate::error::{CwlError, Result, verr};
use serde_json::{Map, Value, json};
use std::cell::RefCell;
use std::path::{Path, PathBuf};

/// Largest document (or `$include`d file) the loader reads.
const MAX_DOCUMENT: u64 = 64 << 20;

/// The text of a document: regular files only (a `run: /dev/zero` must not
/// read forever) and at most [`MAX_DOCUMENT`] bytes.
pub(crate) fn read_document(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let md = std::fs::metadata(path)?;
    if !md.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if md.len() > MAX_DOCUMENT {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB",
            MAX_DOCUMENT >> 20
        )));
    }
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_DOCUMENT)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// The documents one load reads, in the order it reads them, and where
/// they may come from.
#[derive(Debug, Default)]
pub struct Documents {
    access: Access,
    read: RefCell<Vec<PathBuf>>,
}

impl Documents {
    /// Documents readable where `access` allows.
    pub fn new(access: Access) -> Documents {
        Documents {
            access,
            read: RefCell::default(),
        }
    }

    /// Every document file read so far (the main one first), canonical.
    pub fn files(self) -> Vec<PathBuf> {
        self.read.into_inner()
    }

    /// Read and parse a file, resolving `$import` and `$include`
    /// directives.
    pub fn read_file(&self, path: &Path) -> Result<Value> {
        if path.exists() {
            self.access.check("document", path)?;
        }
        let p = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        {
            let mut read = self.read.borrow_mut();
            if !read.contains(&p) {
                read.push(p);
            }
        }
        let text = read_document(path).map_err(|e| {
            CwlError::Validation(format!("{}: cannot read file: {e}", path.display()))
        })?;
        let v = parse_text(&text, &path.display().to_string())?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        self.resolve_directives(v, &base, 0)
    }

    /// The text of an `$include`d file.
    fn include(&self, target: &Path) -> Result<String> {
        if target.exists() {
            self.access.check("$include", target)?;
        }
        read_document(target).map_err(|e| {
            CwlError::Validation(format!("$include {}: cannot read: {e}", target.display()))
        })
    }

    /// Replace `$import` and `$include` objects by what they name.
    fn resolve_directives(&self, v: Value, base: &Path, depth: usize) -> Result<Value> {
        if depth > 64 {
            return verr("$import nesting too deep (cycle?)");
        }
        match v {
            Value::Object(m) => {
                if m.len() == 1 {
                    if let Some(Value::String(p)) = m.get("$import") {
                        let (file, frag) = split_fragment(p);
                        let target = base.join(file);
                        let mut loaded = self.read_file(&target)?;
                        if let Some(frag) = frag {
                            loaded = find_in_graph(&loaded, &frag).unwrap_or(loaded);
                        }
                        return Ok(loaded);
                    }
                    if let Some(Value::String(p)) = m.get("$include") {
                        let target = base.join(p);
                        return Ok(Value::String(self.include(&target)?));
                    }
                }
                let mut out = Map::new();
                for (k, val) in m {
                    out.insert(k, self.resolve_directives(val, base, depth + 1)?);
                }
                Ok(Value::Object(out))
            }
            Value::Array(a) => Ok(Value::Array(
                a.into_iter()
                    .map(|x| self.resolve_directives(x, base, depth + 1))
                    .collect::<Result<Vec<_>>>()?,
            )),
            other => Ok(other),
        }
    }
}

/// Split `file.cwl#frag` into its parts.
pub fn split_fragment(s: &str) -> (String, Option<String>) {
    match s.find('#') {
        Some(i) => (s[..i].to_string(), Some(s[i + 1..].to_string())),
        None => (s.to_string(), None),
    }
}

pub(crate) fn find_in_graph(doc: &Value, frag: &str) -> Option<Value> {
    let graph = doc.get("$graph")?.as_array()?;
    graph
        .iter()
        .find(|p| {
            p.get("id")
                .and_then(Value::as_str)
                .map(|id| id.trim_start_matches('#') == frag || id.ends_with(&format!("#{frag}")))
                .unwrap_or(false)
        })
        .cloned()
}

/// Local name of an identifier: the part after `#`, last path segment.
pub fn shortname(s: &str) -> String {
    let frag = match s.rfind('#') {
        Some(i) => &s[i + 1..],
        None => s,
    };
    frag.rsplit('/').next().unwrap_or(frag).to_string()
}

/// Fragment of an identifier (after `#`), or the string itself.
pub fn fragment(s: &str) -> String {
    match s.rfind('#') {
        Some(i) => s[i + 1..].to_string(),
        None => s.to_string(),
    }
}

/// Make `location`/`path` of File and Directory literals absolute.
pub fn fix_locations(v: &mut Value, base: &Path) {
    match v {
        Value::Object(m) => {
            let is_fs = matches!(
                m.get("class").and_then(Value::as_str),
                Some("File") | Some("Directory")
            );
            if is_fs {
                for key in ["location", "path"] {
                    if let Some(Value::String(loc)) = m.get(key).cloned() {
                        let abs = resolve_location(&loc, base);
                        m.insert("location".into(), Value::String(abs));
                        if key == "path" {
                            m.remove("path");
                        }
                    }
                }
            }
            for (_, x) in m.iter_mut() {
                fix_locations(x, base);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| fix_locations(x, base)),
        _ => {}
    }
}

/// Resolve a (possibly relative) location against a base directory into a
/// `file://` URI, leaving other URI schemes untouched.
pub fn resolve_location(loc: &str, base: &Path) -> String {
    if loc.contains("://") || loc.starts_with("_:") {
        return loc.to_string();
    }
    let p = if Path::new(loc).is_absolute() {
        PathBuf::from(loc)
    } else {
        base.join(loc)
    };
    format!("file://{}", p.display())
}

/// Load a job order file (YAML or JSON) with locations made absolute.
pub fn load_job(path: &Path) -> Result<Value> {
    load_job_with(path, Access::anywhere())
}

/// [`load_job`] of a job order that must lie where `access` allows.
pub fn load_job_with(path: &Path, access: Access) -> Result<Value> {
    let mut v = Documents::new(access).read_file(path)?;
    let base = path
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    fix_locations(&mut v, &base);
    match v {
        Value::Object(_) => Ok(v),
        Value::Null => Ok(json!({})),
        _ => verr(format!("{}: job order must be an object", path.display())),
    }
}
