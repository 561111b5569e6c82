//! Normalising: a process in the one form the engine reads (list-form
//! `inputs`, `outputs`, `requirements`, `hints` and `steps`, short ids,
//! expanded type shorthands and namespaces, absolute locations, `run:`
//! references replaced by the processes they name), with the directory of
//! its document in the private `__base` key and its namespaces in `__ns`.

use super::check::{self, check_nested_fields, check_version_features, version_of};
use super::position::{at, show};
use super::resolve::{Documents, fix_locations, fragment, shortname, split_fragment};
use crate::error::{CwlError, Result, verr};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

/// Where the process being normalised comes from.
pub(crate) struct DocCtx<'a> {
    pub version: String,
    pub ns: Map<String, Value>,
    pub base: PathBuf,
    pub graph: Option<Value>,
    pub file: PathBuf,
    /// Reads the documents `run:` names.
    pub docs: &'a Documents,
}

fn to_list(v: Option<Value>, key_name: &str, value_key: &str) -> Result<Vec<Value>> {
    match v {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(a)) => Ok(a),
        Some(Value::Object(m)) => Ok(m
            .into_iter()
            .map(|(k, v)| match v {
                Value::Object(mut inner) => {
                    inner.insert(key_name.to_string(), Value::String(k));
                    Value::Object(inner)
                }
                other => {
                    let mut inner = Map::new();
                    inner.insert(key_name.to_string(), Value::String(k));
                    inner.insert(value_key.to_string(), other);
                    Value::Object(inner)
                }
            })
            .collect()),
        Some(other) => verr(format!("expected a list or a map, got {other}")),
    }
}

/// Take `key` out of `m` in list form (see [`to_list`]); an error names
/// where `key` is.
fn list_field(
    m: &mut Map<String, Value>,
    key: &str,
    key_name: &str,
    value_key: &str,
    ctx: &DocCtx,
) -> Result<Vec<Value>> {
    match m.remove(key) {
        v @ (None | Some(Value::Null | Value::Array(_) | Value::Object(_))) => {
            to_list(v, key_name, value_key)
        }
        Some(other) => {
            let msg = format!(
                "{}: {key}: expected a list or a map, got {}",
                at(&ctx.file, Some(key), m),
                show(&other.to_string())
            );
            verr(msg)
        }
    }
}

pub(crate) fn normalize_process(p: Value, ctx: &DocCtx, depth: usize) -> Result<Value> {
    if depth > 32 {
        return verr("processes nested too deeply (cycle in `run`?)");
    }
    let Value::Object(mut m) = p else {
        return verr(format!(
            "{}: a process must be an object",
            ctx.file.display()
        ));
    };
    let class = check::process_fields(&m, &ctx.file)?;
    m.insert(
        "__base".into(),
        Value::String(ctx.base.display().to_string()),
    );
    let mut ns = ctx.ns.clone();
    if let Some(Value::Object(own)) = m.get("$namespaces") {
        ns.extend(own.clone());
    }
    m.insert("__ns".into(), Value::Object(ns.clone()));
    let version = version_of(&Value::Object(m.clone()), &ctx.version);
    check_version_features(&m, &version, &ctx.file)?;
    check_nested_fields(&m, &class, &version, &ctx.file)?;
    let ctx = &DocCtx {
        version,
        ns,
        base: ctx.base.clone(),
        graph: ctx.graph.clone(),
        file: ctx.file.clone(),
        docs: ctx.docs,
    };
    let pid = m
        .get("id")
        .and_then(Value::as_str)
        .map(fragment)
        .unwrap_or_default();
    m.insert("id".into(), Value::String(pid.clone()));
    for key in ["inputs", "outputs"] {
        let list = list_field(&mut m, key, "id", "type", ctx)?;
        let mut out = vec![];
        for item in list {
            let item = match item {
                Value::String(s) => json!({"id": s, "type": "Any"}),
                o => o,
            };
            if !item.is_object() {
                return verr(format!(
                    "{}: {key}: a parameter must be an object or an id, got {}",
                    at(&ctx.file, Some(key), &m),
                    show(&item.to_string())
                ));
            }
            out.push(normalize_param(item, ctx)?);
        }
        m.insert(key.into(), Value::Array(out));
    }
    // `type: stdin` shorthand
    let mut stdin_from = None;
    if let Some(Value::Array(inputs)) = m.get_mut("inputs") {
        for i in inputs.iter_mut() {
            if i.get("type").and_then(Value::as_str) == Some("stdin") {
                i["type"] = json!("File");
                stdin_from = i.get("id").and_then(Value::as_str).map(str::to_string);
            }
        }
    }
    if let Some(id) = stdin_from {
        m.insert(
            "stdin".into(),
            Value::String(format!("$(inputs.{id}.path)")),
        );
    }
    for key in ["requirements", "hints"] {
        let list = list_field(&mut m, key, "class", "value", ctx)?;
        if let Some(bad) = list.iter().find(|r| !r.is_object()) {
            return verr(format!(
                "{}: {key}: a requirement must be an object, got {}",
                at(&ctx.file, Some(key), &m),
                show(&bad.to_string())
            ));
        }
        let list: Vec<Value> = list
            .into_iter()
            .map(|r| normalize_requirement(r, ctx))
            .collect::<Result<_>>()?;
        m.insert(key.into(), Value::Array(list));
    }
    if class == "Workflow" {
        let steps = list_field(&mut m, "steps", "id", "run", ctx)?;
        if let Some(bad) = steps.iter().find(|s| !s.is_object()) {
            return verr(format!(
                "{}: steps: a workflow step must be an object, got {}",
                at(&ctx.file, Some("steps"), &m),
                show(&bad.to_string())
            ));
        }
        let mut out = vec![];
        for s in steps {
            out.push(normalize_step(s, ctx, depth)?);
        }
        m.insert("steps".into(), Value::Array(out));
    }
    if let Some(Value::String(s)) = m.get("baseCommand").cloned() {
        m.insert("baseCommand".into(), json!([s]));
    }
    Ok(Value::Object(m))
}

fn normalize_requirement(r: Value, ctx: &DocCtx) -> Result<Value> {
    let Value::Object(mut m) = r else {
        return verr("a requirement must be an object");
    };
    let class = m
        .get("class")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let class = class
        .rsplit(['#', '/', ':'])
        .next()
        .unwrap_or("")
        .to_string();
    m.insert("class".into(), Value::String(class.clone()));
    match class.as_str() {
        "SchemaDefRequirement" => {
            let types = m.remove("types").unwrap_or(json!([]));
            let mut out = vec![];
            for t in types.as_array().cloned().unwrap_or_default() {
                match t {
                    Value::Array(inner) => {
                        for x in inner {
                            out.push(normalize_type(x)?);
                        }
                    }
                    o => out.push(normalize_type(o)?),
                }
            }
            m.insert("types".into(), Value::Array(out));
        }
        "EnvVarRequirement" => {
            let l = list_field(&mut m, "envDef", "envName", "envValue", ctx)?;
            m.insert("envDef".into(), Value::Array(l));
        }
        "InitialWorkDirRequirement" => {
            if let Some(Value::Array(items)) = m.get_mut("listing") {
                for it in items.iter_mut() {
                    fix_locations(it, &ctx.base);
                }
            }
        }
        _ => {}
    }
    Ok(Value::Object(m))
}

fn normalize_param(p: Value, ctx: &DocCtx) -> Result<Value> {
    let Value::Object(mut m) = p else {
        return verr("a parameter must be an object");
    };
    let id = m
        .get("id")
        .and_then(Value::as_str)
        .map(shortname)
        .unwrap_or_default();
    m.insert("id".into(), Value::String(id));
    if let Some(t) = m.remove("type") {
        let t = normalize_type(t).map_err(|e| match e {
            CwlError::Validation(msg) => {
                CwlError::Validation(format!("{}: type: {msg}", at(&ctx.file, Some("type"), &m)))
            }
            e => e,
        })?;
        m.insert("type".into(), t);
    }
    if let Some(d) = m.get_mut("default") {
        fix_locations(d, &ctx.base);
    }
    if let Some(f) = m.remove("format") {
        let f = match f {
            Value::String(s) => Value::String(expand_ns(&s, &ctx.ns)),
            Value::Array(a) => Value::Array(
                a.into_iter()
                    .map(|x| match x {
                        Value::String(s) => Value::String(expand_ns(&s, &ctx.ns)),
                        o => o,
                    })
                    .collect(),
            ),
            o => o,
        };
        m.insert("format".into(), f);
    }
    if let Some(s) = m.remove("outputSource") {
        m.insert("outputSource".into(), norm_sources(s));
    }
    if let Some(sf) = m.remove("secondaryFiles") {
        m.insert("secondaryFiles".into(), normalize_secondary(sf));
    }
    Ok(Value::Object(m))
}

/// Expand a `prefix:name` CURIE using `$namespaces`.
pub fn expand_ns(s: &str, ns: &Map<String, Value>) -> String {
    if s.contains("$(") || s.contains("${") || s.contains("://") {
        return s.to_string();
    }
    if let Some((pfx, rest)) = s.split_once(':')
        && let Some(Value::String(base)) = ns.get(pfx)
    {
        return format!("{base}{rest}");
    }
    s.to_string()
}

/// Normalise a `secondaryFiles` field to a list of `{pattern, required}`.
pub fn normalize_secondary(sf: Value) -> Value {
    let items = match sf {
        Value::Array(a) => a,
        other => vec![other],
    };
    Value::Array(
        items
            .into_iter()
            .map(|i| match i {
                Value::String(s) => json!({"pattern": s}),
                o => o,
            })
            .collect(),
    )
}

fn norm_sources(s: Value) -> Value {
    match s {
        Value::String(x) => Value::String(fragment(&x)),
        Value::Array(a) => Value::Array(a.into_iter().map(norm_sources).collect()),
        o => o,
    }
}

/// Expand type shorthands (`T?`, `T[]`) and normalise nested schemas.
pub fn normalize_type(t: Value) -> Result<Value> {
    Ok(match t {
        Value::String(s) => {
            if let Some(inner) = s.strip_suffix('?') {
                let inner = normalize_type(Value::String(inner.to_string()))?;
                json!(["null", inner])
            } else if let Some(inner) = s.strip_suffix("[]") {
                json!({"type": "array", "items": normalize_type(Value::String(inner.to_string()))?})
            } else {
                match s.as_str() {
                    "null" | "boolean" | "int" | "long" | "float" | "double" | "string"
                    | "File" | "Directory" | "Any" | "stdout" | "stderr" => Value::String(s),
                    _ if s.starts_with("https://w3id.org/cwl/salad#") => {
                        Value::String(shortname(&s))
                    }
                    _ => Value::String(fragment(&s)),
                }
            }
        }
        Value::Array(a) => {
            let mut out = vec![];
            for x in a {
                let n = normalize_type(x)?;
                match n {
                    Value::Array(inner) => out.extend(inner),
                    o => out.push(o),
                }
            }
            Value::Array(out)
        }
        Value::Object(mut m) => {
            if let Some(items) = m.remove("items") {
                m.insert("items".into(), normalize_type(items)?);
            }
            if let Some(fields) = m.remove("fields") {
                let fl = to_list(Some(fields), "name", "type")?;
                let mut out = vec![];
                for f in fl {
                    let Value::Object(mut fm) = f else {
                        return verr("record field must be an object");
                    };
                    let name = fm
                        .get("name")
                        .and_then(Value::as_str)
                        .map(shortname)
                        .unwrap_or_default();
                    fm.insert("name".into(), Value::String(name));
                    if let Some(ft) = fm.remove("type") {
                        fm.insert("type".into(), normalize_type(ft)?);
                    }
                    if let Some(sf) = fm.remove("secondaryFiles") {
                        fm.insert("secondaryFiles".into(), normalize_secondary(sf));
                    }
                    out.push(Value::Object(fm));
                }
                m.insert("fields".into(), Value::Array(out));
            }
            if let Some(Value::Array(syms)) = m.remove("symbols") {
                let syms: Vec<Value> = syms
                    .into_iter()
                    .map(|s| match s {
                        Value::String(x) => Value::String(shortname(&x)),
                        o => o,
                    })
                    .collect();
                m.insert("symbols".into(), Value::Array(syms));
            }
            if let Some(Value::String(n)) = m.get("name").cloned() {
                m.insert("name".into(), Value::String(fragment(&n)));
            }
            if let Some(t) = m.get("type").cloned()
                && let Value::String(ts) = &t
                && !matches!(ts.as_str(), "array" | "record" | "enum")
            {
                m.insert("type".into(), normalize_type(t)?);
            }
            Value::Object(m)
        }
        o => o,
    })
}

fn normalize_step(s: Value, ctx: &DocCtx, depth: usize) -> Result<Value> {
    let Value::Object(mut m) = s else {
        return verr("a workflow step must be an object");
    };
    let id = m
        .get("id")
        .and_then(Value::as_str)
        .map(shortname)
        .unwrap_or_default();
    m.insert("id".into(), Value::String(id.clone()));
    check::step_fields(&m, &id, &ctx.file)?;
    let ins = list_field(&mut m, "in", "id", "source", ctx)?;
    let mut inl = vec![];
    for i in ins {
        let i = match i {
            Value::String(s) => json!({"id": s}),
            o => o,
        };
        let Value::Object(mut im) = i else {
            return verr(format!(
                "{}: step {}: in: a step input must be an object or an id, got {}",
                at(&ctx.file, Some("in"), &m),
                show(&id),
                show(&i.to_string())
            ));
        };
        let iid = im
            .get("id")
            .and_then(Value::as_str)
            .map(shortname)
            .unwrap_or_default();
        im.insert("id".into(), Value::String(iid));
        if let Some(src) = im.remove("source") {
            im.insert("source".into(), norm_sources(src));
        }
        if let Some(d) = im.get_mut("default") {
            fix_locations(d, &ctx.base);
        }
        inl.push(Value::Object(im));
    }
    m.insert("in".into(), Value::Array(inl));
    let outs: Vec<Value> = match m.remove("out") {
        Some(Value::Array(a)) => a
            .into_iter()
            .map(|o| match o {
                Value::String(s) => Value::String(shortname(&s)),
                Value::Object(om) => Value::String(
                    om.get("id")
                        .and_then(Value::as_str)
                        .map(shortname)
                        .unwrap_or_default(),
                ),
                other => other,
            })
            .collect(),
        _ => vec![],
    };
    m.insert("out".into(), Value::Array(outs));
    if let Some(sc) = m.remove("scatter") {
        let list = match sc {
            Value::String(s) => vec![Value::String(shortname(&s))],
            Value::Array(a) => a
                .into_iter()
                .map(|x| Value::String(x.as_str().map(shortname).unwrap_or_default()))
                .collect(),
            _ => vec![],
        };
        let ins: Vec<&str> = m
            .get("in")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|i| i.get("id").and_then(Value::as_str))
            .collect();
        if let Some(bad) = list
            .iter()
            .map(|x| x.as_str().unwrap_or(""))
            .find(|x| !ins.contains(x))
        {
            return verr(format!(
                "{}: step {}: scatter: {} is not an input of the step (its inputs: {})",
                at(&ctx.file, Some("scatter"), &m),
                show(&id),
                show(bad),
                ins.join(", ")
            ));
        }
        m.insert("scatter".into(), Value::Array(list));
    }
    for key in ["requirements", "hints"] {
        let list = list_field(&mut m, key, "class", "value", ctx)?;
        if let Some(bad) = list.iter().find(|r| !r.is_object()) {
            return verr(format!(
                "{}: {key}: a requirement must be an object, got {}",
                at(&ctx.file, Some(key), &m),
                show(&bad.to_string())
            ));
        }
        let list: Vec<Value> = list
            .into_iter()
            .map(|r| normalize_requirement(r, ctx))
            .collect::<Result<_>>()?;
        m.insert(key.into(), Value::Array(list));
    }
    let run = m.remove("run").unwrap_or(Value::Null);
    let run = match run {
        Value::String(r) => step_run(&r, &m, &id, ctx, depth)?,
        Value::Object(_) => normalize_process(run, ctx, depth + 1)?,
        Value::Null => {
            return verr(format!(
                "{}: step {}: missing field 'run' (expected a file name, '#id' or a process object)",
                at(&ctx.file, None, &m),
                show(&id)
            ));
        }
        other => {
            return verr(format!(
                "{}: step {}: run: expected a file name, '#id' or a process object, got {}",
                at(&ctx.file, Some("run"), &m),
                show(&id),
                show(&other.to_string())
            ));
        }
    };
    m.insert("run".into(), run);
    Ok(Value::Object(m))
}

/// The process a step's `run: r` names (`#id` in this document's `$graph`,
/// or a file, `#id` in its `$graph`), normalised; `m` is the step.
fn step_run(
    r: &str,
    m: &Map<String, Value>,
    id: &str,
    ctx: &DocCtx,
    depth: usize,
) -> Result<Value> {
    let (file, frag) = split_fragment(r);
    let no_process = |want: &str, of: &str| {
        CwlError::Validation(format!(
            "{}: step {}: run: no process {} in $graph{of}",
            at(&ctx.file, Some("run"), m),
            show(id),
            show(&format!("#{want}"))
        ))
    };
    if file.is_empty() {
        let frag = frag.unwrap_or_default();
        let found = ctx
            .graph
            .as_ref()
            .and_then(|g| find_process(g, &frag))
            .ok_or_else(|| no_process(&frag, ""))?;
        return normalize_process(found, ctx, depth + 1);
    }
    let path = match file.strip_prefix("file://") {
        Some(f) => PathBuf::from(f),
        None => ctx.base.join(&file),
    };
    let doc = ctx.docs.read_file(&path).map_err(|e| match e {
        CwlError::Validation(msg) if !path.is_file() => CwlError::Validation(format!(
            "{}: step {}: run: {msg}",
            at(&ctx.file, Some("run"), m),
            show(id)
        )),
        e => e,
    })?;
    let sub = DocCtx {
        version: version_of(&doc, &ctx.version),
        ns: doc
            .get("$namespaces")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        base: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        graph: doc.get("$graph").cloned(),
        file: path.clone(),
        docs: ctx.docs,
    };
    let p = if doc.get("$graph").is_some() {
        let want = frag.unwrap_or_else(|| "main".into());
        find_process(&doc, &want)
            .ok_or_else(|| no_process(&want, &format!(" of {}", path.display())))?
    } else {
        doc
    };
    normalize_process(p, &sub, depth + 1)
}

/// The entry of a `$graph` (or of a document with one) whose id is `#frag`.
fn find_process(graph: &Value, frag: &str) -> Option<Value> {
    let entries = graph.get("$graph").unwrap_or(graph).as_array()?;
    entries
        .iter()
        .find(|p| p.get("id").and_then(Value::as_str).map(fragment).as_deref() == Some(frag))
        .cloned()
}
