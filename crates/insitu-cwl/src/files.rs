//! File and Directory objects: normalisation of their fields, listings,
//! checksums, secondary-file patterns and type matching of values.

use crate::error::{CwlError, Result};
use serde_json::{Map, Value, json};
use sha1::{Digest, Sha1};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Path of a `file://` location (or a plain path).
pub fn loc_to_path(loc: &str) -> PathBuf {
    let p = loc.strip_prefix("file://").unwrap_or(loc);
    PathBuf::from(percent_decode(p))
}

fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(x) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(x);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `file://` URI of a path.
pub fn path_to_loc(p: &Path) -> String {
    format!("file://{}", p.display())
}

/// Split a basename into `(nameroot, nameext)`.
pub fn split_name(base: &str) -> (String, String) {
    match base.rfind('.') {
        Some(i) if i > 0 => (base[..i].to_string(), base[i..].to_string()),
        _ => (base.to_string(), String::new()),
    }
}

/// SHA-1 of a file, as `sha1$hex`.
pub fn checksum(p: &Path) -> Result<String> {
    Ok(format!("sha1${}", sha1_hex(p)?))
}

/// SHA-1 of a file's bytes, in hex.
pub fn sha1_hex(p: &Path) -> Result<String> {
    let mut f = std::fs::File::open(p)?;
    let mut h = Sha1::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Read up to 64 KiB of a file for `loadContents`.
pub fn load_contents(p: &Path) -> Result<String> {
    let mut f = std::fs::File::open(p)
        .map_err(|e| CwlError::Input(format!("{}: cannot read: {e}", p.display())))?;
    let mut buf = vec![0u8; 64 * 1024 + 1];
    let mut n = 0;
    loop {
        let r = f.read(&mut buf[n..])?;
        if r == 0 {
            break;
        }
        n += r;
        if n == buf.len() {
            break;
        }
    }
    if n > 64 * 1024 {
        return Err(CwlError::Input(format!(
            "{}: loadContents: file is larger than 64 KiB",
            p.display()
        )));
    }
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Fill in `path`, `basename`, `nameroot`, `nameext`, `size` of File and
/// Directory objects (recursively), optionally listing directories.
/// `listing` is "no_listing", "shallow_listing" or "deep_listing".
pub fn fill_fs(v: &mut Value, listing: &str) -> Result<()> {
    match v {
        Value::Object(m) => {
            let class = m.get("class").and_then(Value::as_str).map(str::to_string);
            match class.as_deref() {
                Some("File") => fill_file(m)?,
                Some("Directory") => fill_dir(m, listing)?,
                _ => {
                    for (_, x) in m.iter_mut() {
                        fill_fs(x, listing)?;
                    }
                }
            }
        }
        Value::Array(a) => {
            for x in a.iter_mut() {
                fill_fs(x, listing)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn fill_file(m: &mut Map<String, Value>) -> Result<()> {
    if m.get("location").is_none()
        && let Some(Value::String(p)) = m.get("path").cloned()
    {
        m.insert("location".into(), Value::String(path_to_loc(Path::new(&p))));
    }
    let loc = m
        .get("location")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(loc) = &loc {
        if loc.starts_with("file://") || loc.starts_with('/') {
            let p = loc_to_path(loc);
            m.insert("path".into(), Value::String(p.display().to_string()));
            if let Some(d) = p.parent() {
                m.insert("dirname".into(), Value::String(d.display().to_string()));
            }
            if !m.contains_key("basename") {
                let b = p
                    .file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                m.insert("basename".into(), Value::String(b));
            }
            if let Ok(md) = std::fs::metadata(&p) {
                m.insert("size".into(), Value::from(md.len()));
            } else {
                return Err(CwlError::Input(format!("File not found: {}", p.display())));
            }
        }
    } else if m.get("contents").is_none() {
        return Err(CwlError::Input(
            "File object without location, path or contents".into(),
        ));
    } else if !m.contains_key("basename") {
        m.insert("basename".into(), Value::String("literal.txt".into()));
    }
    if let Some(b) = m.get("basename").and_then(Value::as_str) {
        let (r, e) = split_name(b);
        m.insert("nameroot".into(), Value::String(r));
        m.insert("nameext".into(), Value::String(e));
    }
    if let Some(Value::Array(sf)) = m.get_mut("secondaryFiles") {
        for x in sf.iter_mut() {
            fill_fs(x, "no_listing")?;
        }
    }
    Ok(())
}

fn fill_dir(m: &mut Map<String, Value>, listing: &str) -> Result<()> {
    if m.get("location").is_none()
        && let Some(Value::String(p)) = m.get("path").cloned()
    {
        m.insert("location".into(), Value::String(path_to_loc(Path::new(&p))));
    }
    let loc = m
        .get("location")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(loc) = loc {
        let p = loc_to_path(&loc);
        if !p.is_dir() {
            return Err(CwlError::Input(format!(
                "Directory not found: {}",
                p.display()
            )));
        }
        m.insert("path".into(), Value::String(p.display().to_string()));
        if !m.contains_key("basename") {
            let b = p
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            m.insert("basename".into(), Value::String(b));
        }
        if listing != "no_listing" {
            m.insert(
                "listing".into(),
                Value::Array(list_dir(&p, listing == "deep_listing")?),
            );
        }
    } else if !m.contains_key("basename") {
        m.insert("basename".into(), Value::String("dir".into()));
    }
    if let Some(Value::Array(l)) = m.get_mut("listing") {
        let sub = if listing == "deep_listing" {
            "deep_listing"
        } else {
            "no_listing"
        };
        for x in l.iter_mut() {
            fill_fs(x, sub)?;
        }
    }
    Ok(())
}

/// List a directory as CWL objects (sorted by name).
pub fn list_dir(p: &Path, deep: bool) -> Result<Vec<Value>> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(p)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    names.sort();
    let mut out = vec![];
    for n in names {
        let base = n
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if n.is_dir() {
            let mut d =
                json!({"class": "Directory", "location": path_to_loc(&n), "basename": base});
            if deep {
                d["listing"] = Value::Array(list_dir(&n, true)?);
            }
            out.push(d);
        } else {
            out.push(json!({"class": "File", "location": path_to_loc(&n), "basename": base}));
        }
    }
    Ok(out)
}

/// Add `checksum` and `size` to every File in an output value.
pub fn add_checksums(v: &mut Value) -> Result<()> {
    match v {
        Value::Object(m) => {
            if m.get("class").and_then(Value::as_str) == Some("File")
                && let Some(loc) = m.get("location").and_then(Value::as_str)
            {
                let p = loc_to_path(loc);
                if p.is_file() {
                    m.insert("checksum".into(), Value::String(checksum(&p)?));
                    m.insert("size".into(), Value::from(std::fs::metadata(&p)?.len()));
                }
            }
            for (_, x) in m.iter_mut() {
                add_checksums(x)?;
            }
        }
        Value::Array(a) => {
            for x in a {
                add_checksums(x)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Compute a secondary-file name from a pattern (`^` strips an extension).
pub fn secondary_name(primary_base: &str, pattern: &str) -> String {
    let mut base = primary_base.to_string();
    let mut pat = pattern;
    while let Some(rest) = pat.strip_prefix('^') {
        if let Some(i) = base.rfind('.') {
            base.truncate(i);
        }
        pat = rest;
    }
    base + pat
}

/// Named schema types from `SchemaDefRequirement`.
pub type Schemas = HashMap<String, Value>;

/// Resolve a named type to its definition.
pub fn resolve_type<'a>(t: &'a Value, schemas: &'a Schemas) -> &'a Value {
    if let Value::String(s) = t {
        if let Some(d) = schemas.get(s) {
            return d;
        }
        let short = crate::loader::shortname(s);
        if let Some(d) = schemas.get(&short) {
            return d;
        }
        if let Some((_, d)) = schemas
            .iter()
            .find(|(k, _)| crate::loader::shortname(k) == short)
        {
            return d;
        }
    }
    t
}

/// Whether a value matches a CWL type.
pub fn matches(v: &Value, t: &Value, schemas: &Schemas) -> bool {
    let t = resolve_type(t, schemas);
    match t {
        Value::String(s) => match s.as_str() {
            "null" => v.is_null(),
            "Any" => !v.is_null(),
            "boolean" => v.is_boolean(),
            "int" | "long" => v.as_i64().is_some() || v.as_u64().is_some(),
            "float" | "double" => v.is_number(),
            "string" => v.is_string(),
            "File" | "stdout" | "stderr" => v.get("class").and_then(Value::as_str) == Some("File"),
            "Directory" => v.get("class").and_then(Value::as_str) == Some("Directory"),
            _ => false,
        },
        Value::Array(alts) => alts.iter().any(|a| matches(v, a, schemas)),
        Value::Object(m) => match m.get("type").and_then(Value::as_str) {
            Some("array") => match v {
                Value::Array(a) => {
                    let it = m.get("items").cloned().unwrap_or(Value::Null);
                    a.iter().all(|x| matches(x, &it, schemas))
                }
                _ => false,
            },
            Some("record") => match v {
                Value::Object(vm) => {
                    if vm.contains_key("class") {
                        return false;
                    }
                    m.get("fields").and_then(Value::as_array).is_none_or(|fs| {
                        fs.iter().all(|f| {
                            let n = f.get("name").and_then(Value::as_str).unwrap_or("");
                            let ft = f.get("type").cloned().unwrap_or(Value::Null);
                            matches(vm.get(n).unwrap_or(&Value::Null), &ft, schemas)
                        })
                    })
                }
                _ => false,
            },
            Some("enum") => match v {
                Value::String(s) => m
                    .get("symbols")
                    .and_then(Value::as_array)
                    .is_some_and(|syms| syms.iter().any(|x| x.as_str() == Some(s.as_str()))),
                _ => false,
            },
            Some(_) => {
                let inner = m.get("type").cloned().unwrap_or(Value::Null);
                matches(v, &inner, schemas)
            }
            None => false,
        },
        _ => false,
    }
}

/// Whether a type admits null.
pub fn is_optional(t: &Value) -> bool {
    match t {
        Value::String(s) => s == "null",
        Value::Array(a) => a.iter().any(|x| x.as_str() == Some("null")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secondary_patterns() {
        assert_eq!(secondary_name("a.bam", ".bai"), "a.bam.bai");
        assert_eq!(secondary_name("a.bam", "^.bai"), "a.bai");
        assert_eq!(secondary_name("a.b.c", "^^.d"), "a.d");
    }

    #[test]
    fn type_matching() {
        let s = Schemas::new();
        assert!(matches(&json!(1), &json!("int"), &s));
        assert!(!matches(&json!("x"), &json!("int"), &s));
        assert!(matches(&json!(null), &json!(["null", "int"]), &s));
        assert!(matches(
            &json!([1, 2]),
            &json!({"type": "array", "items": "int"}),
            &s
        ));
        assert!(matches(
            &json!("a"),
            &json!({"type": "enum", "symbols": ["a", "b"]}),
            &s
        ));
    }
}
