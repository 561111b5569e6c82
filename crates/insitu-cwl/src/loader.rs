//! Loading CWL documents, in four phases: [`parse`] (YAML 1.2 or JSON),
//! [`resolve`] (reading documents, `$import`/`$include`, `$graph` entries,
//! ids, locations), [`check`] (versions, classes, unknown fields, with
//! positions found by [`position`]) and [`normalize`] (the one form the
//! engine reads).
//!
//! The loader produces a normalised [`serde_json::Value`] tree: every process
//! has list-form `inputs`, `outputs`, `requirements`, `hints` (and `steps` for
//! workflows), identifiers are shortened to their local names, type shorthands
//! (`File[]?`) are expanded, and the directory of the source document is kept
//! in the private `__base` key so relative locations can be resolved.

pub mod check;
pub mod normalize;
pub mod parse;
pub mod position;
pub mod resolve;

pub use normalize::{expand_ns, normalize_secondary, normalize_type};
pub use parse::parse_text;
pub use resolve::{
    Documents, fix_locations, fragment, load_job, load_job_with, resolve_location, shortname,
    split_fragment,
};

use crate::access::Access;
use crate::error::{CwlError, Result, verr};
use check::{check_type_names, check_version, version_of};
use normalize::{DocCtx, normalize_process};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A loaded document: the selected process and the whole graph (if any).
pub struct Loaded {
    /// The normalised process to run.
    pub process: Value,
    /// Every document file read (the main one first, then `run:` and
    /// `$import` targets), canonical.
    pub files: Vec<PathBuf>,
}

/// Load `path[#id]` and normalise the selected process.
pub fn load(spec: &str) -> Result<Loaded> {
    load_with(spec, Access::anywhere())
}

/// [`load`] reading documents only where `access` allows (links
/// resolved): the main document, `$import`, `$include` and `run:`.
pub fn load_with(spec: &str, access: Access) -> Result<Loaded> {
    let (file, frag) = split_fragment(spec);
    let path = std::fs::canonicalize(&file)
        .map_err(|e| CwlError::Validation(format!("{file}: cannot open document: {e}")))?;
    let docs = Documents::new(access);
    let doc = docs.read_file(&path)?;
    let ctx = DocCtx {
        version: version_of(&doc, ""),
        ns: doc
            .get("$namespaces")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        base: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        graph: doc.get("$graph").cloned(),
        file: path.clone(),
        docs: &docs,
    };
    let selected = select(&doc, &file, frag.as_deref())?;
    check_version(&selected, &path)?;
    let process = normalize_process(selected, &ctx, 0)?;
    check_type_names(&process, &path)?;
    Ok(Loaded {
        process,
        files: docs.files(),
    })
}

/// The process `#frag` of a document (`main`, or the only one, in a
/// `$graph`), with the document's `cwlVersion` when it has none itself.
fn select(doc: &Value, file: &str, frag: Option<&str>) -> Result<Value> {
    let mut selected = if let Some(graph) = doc.get("$graph").and_then(Value::as_array) {
        let want = frag.unwrap_or("main");
        match graph
            .iter()
            .find(|p| p.get("id").and_then(Value::as_str).map(fragment).as_deref() == Some(want))
        {
            Some(p) => p.clone(),
            None if frag.is_none() && graph.len() == 1 => graph[0].clone(),
            None => return verr(format!("{file}: no process with id '#{want}' in $graph")),
        }
    } else {
        if let Some(f) = frag {
            let own = doc.get("id").and_then(Value::as_str).map(fragment);
            if own.as_deref() != Some(f) && own.is_some() {
                return verr(format!("{file}: no process with id '#{f}'"));
            }
        }
        doc.clone()
    };
    let version = doc.get("cwlVersion").and_then(Value::as_str);
    if let (Some(v), Value::Object(m)) = (version, &mut selected) {
        m.entry("cwlVersion")
            .or_insert(Value::String(v.to_string()));
    }
    Ok(selected)
}

#[cfg(test)]
mod tests;
