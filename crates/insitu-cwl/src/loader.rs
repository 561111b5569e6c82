//! Loading CWL documents: YAML/JSON parsing, `$import`/`$include`, `$graph`,
//! identifier shortening and normalisation of the map/list shorthand forms.
//!
//! The loader produces a normalised [`serde_json::Value`] tree: every process
//! has list-form `inputs`, `outputs`, `requirements`, `hints` (and `steps` for
//! workflows), identifiers are shortened to their local names, type shorthands
//! (`File[]?`) are expanded, and the directory of the source document is kept
//! in the private `__base` key so relative locations can be resolved.

use crate::error::{CwlError, Result, verr};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

/// Read a YAML or JSON text into a JSON value.
pub fn parse_text(text: &str, what: &str) -> Result<Value> {
    let trimmed = text.trim_start();
    if (trimmed.starts_with('{') || trimmed.starts_with('['))
        && let Ok(v) = serde_json::from_str::<Value>(text)
    {
        return Ok(v);
    }
    let protected = protect_big_ints(text);
    let text = protected.as_str();
    let mut opts = serde_saphyr::Options::default();
    opts.strict_booleans = true;
    opts.legacy_octal_numbers = false;
    opts.with_snippet = false;
    let v = serde_saphyr::from_str_with_options::<Value>(text, opts)
        .map_err(|e| CwlError::Validation(yaml_error(&e, what)))?;
    Ok(restore_big_ints(v))
}

/// `what:line:col: malformed YAML: message`, one line, the location given
/// once (serde-saphyr's own rendering repeats it and adds a snippet).
fn yaml_error(e: &serde_saphyr::Error, what: &str) -> String {
    struct NoLocation;
    impl serde_saphyr::Localizer for NoLocation {
        fn attach_location<'a>(
            &self,
            base: std::borrow::Cow<'a, str>,
            _loc: serde_saphyr::Location,
        ) -> std::borrow::Cow<'a, str> {
            base
        }
    }
    let formatter = serde_saphyr::DefaultMessageFormatter.with_localizer(&NoLocation);
    let mut render = serde_saphyr::RenderOptions::new(&formatter);
    render.snippets = serde_saphyr::SnippetMode::Off;
    let msg = e.render_with_options(render);
    let msg = msg.trim();
    match e.location() {
        Some(l) if l.line() > 0 => format!(
            "{what}:{}:{}: malformed YAML: {msg}",
            l.line(),
            l.column().max(1)
        ),
        _ => format!("{what}: malformed YAML: {msg}"),
    }
}

const BIG_MARK: &str = "__insitu_bigint__";

/// YAML parsers turn integers beyond 64 bits into floats; quote such plain
/// scalars (after `key: ` or `- `) with a marker so they stay exact.
fn protect_big_ints(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let tail = &line[body.len()..];
        let val_start = body.rfind(": ").map(|i| i + 2).or_else(|| {
            let t = body.trim_start();
            t.strip_prefix("- ").map(|_| body.len() - t.len() + 2)
        });
        if let Some(st) = val_start {
            let val = body[st..].trim();
            let digits = val.strip_prefix('-').unwrap_or(val);
            if digits.len() > 18 && digits.bytes().all(|b| b.is_ascii_digit()) {
                out.push_str(&body[..st]);
                out.push_str(&format!("\"{BIG_MARK}{val}\""));
                out.push_str(tail);
                continue;
            }
        }
        out.push_str(line);
    }
    out
}

fn restore_big_ints(v: Value) -> Value {
    match v {
        Value::String(s) => match s.strip_prefix(BIG_MARK) {
            Some(n) => n
                .parse::<serde_json::Number>()
                .map(Value::Number)
                .unwrap_or(Value::String(s.clone())),
            None => Value::String(s),
        },
        Value::Array(a) => Value::Array(a.into_iter().map(restore_big_ints).collect()),
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (k, restore_big_ints(v)))
                .collect(),
        ),
        o => o,
    }
}

// ---------------------------------------------------------------------------
// Source positions for error messages.
//
// Loading keeps no positions (it is on the hot path and the values are plain
// `serde_json::Value`s). When a validation error is reported, the document is
// read again and its text run through the YAML event parser (JSON is YAML
// too): every mapping with the positions of its scalar keys. The object the
// error is about is then found as the mapping that holds the offending key and
// shares the most keys (and string values) with it — which also works after
// normalisation turned maps into lists, and across `$graph` entries.

/// A scalar key of a mapping: its text, 1-based line and column, and its
/// value when that is a (short) scalar.
struct KeyPos {
    name: String,
    line: usize,
    col: usize,
    value: Option<String>,
}

/// One mapping of a text: where it starts, its scalar keys, and the key it
/// is the value of (a step or parameter id in map form).
struct MapPos {
    line: usize,
    col: usize,
    keys: Vec<KeyPos>,
    parent_key: Option<String>,
}

/// Every mapping of `text` with its keys' positions; stops quietly at the
/// first syntax error (what was seen until then is kept).
fn index_mappings(text: &str) -> Vec<MapPos> {
    use serde_saphyr::granit_parser::{Event, Parser};
    let mut maps: Vec<MapPos> = Vec::new();
    // One entry per open collection: `Some((mapping index, expecting a key))`
    // for mappings, `None` for sequences.
    let mut stack: Vec<Option<(usize, bool)>> = Vec::new();
    fn node_done(stack: &mut [Option<(usize, bool)>]) {
        if let Some(Some((_, want_key))) = stack.last_mut() {
            *want_key = !*want_key;
        }
    }
    // Every event consumes input or closes something open; the cap is a
    // guard against a parser bug turning into a hang.
    let budget = text.len().saturating_mul(4).saturating_add(64);
    for ev in Parser::new_from_str(text).take(budget) {
        let Ok((ev, span)) = ev else { break };
        let (line, col) = (span.start.line(), span.start.col() + 1);
        match ev {
            Event::MappingStart(..) => {
                let parent_key = match stack.last() {
                    Some(Some((i, false))) => maps
                        .get(*i)
                        .and_then(|m| m.keys.last())
                        .filter(|k| k.name.len() <= 256)
                        .map(|k| k.name.clone()),
                    _ => None,
                };
                maps.push(MapPos {
                    line,
                    col,
                    keys: Vec::new(),
                    parent_key,
                });
                stack.push(Some((maps.len() - 1, true)));
            }
            Event::SequenceStart(..) => stack.push(None),
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                node_done(&mut stack);
            }
            Event::Scalar(v, ..) => {
                if let Some(Some((i, want_key))) = stack.last()
                    && let Some(m) = maps.get_mut(*i)
                {
                    if *want_key {
                        m.keys.push(KeyPos {
                            name: v.into_owned(),
                            line,
                            col,
                            value: None,
                        });
                    } else if v.len() <= 256
                        && let Some(k) = m.keys.last_mut()
                    {
                        k.value = Some(v.into_owned());
                    }
                }
                node_done(&mut stack);
            }
            Event::Alias(..) | Event::UnresolvedAlias(..) => node_done(&mut stack),
            _ => {}
        }
    }
    maps
}

/// 1-based line and column in `text` of `key` in the mapping that best
/// matches `obj` (with `key: None`, of that mapping itself): most keys and
/// string values in common, the same id (an `id` field, or the key the
/// mapping is the value of) counting most.
fn locate(text: &str, key: Option<&str>, obj: &Map<String, Value>) -> Option<(usize, usize)> {
    let obj_id = obj.get("id").and_then(Value::as_str).map(shortname);
    let mut best: Option<(usize, (usize, usize))> = None;
    for m in index_mappings(text) {
        let at = match key {
            Some(k) => match m.keys.iter().find(|p| p.name == k) {
                Some(p) => (p.line, p.col),
                None => continue,
            },
            None => (m.line, m.col),
        };
        let mut score = 0;
        for p in &m.keys {
            if let Some(v) = obj.get(&p.name) {
                score += 2;
                if let (Some(a), Value::String(b)) = (&p.value, v)
                    && a == b
                {
                    score += 1;
                }
            }
        }
        if let Some(want) = &obj_id {
            let own = m
                .keys
                .iter()
                .find(|p| p.name == "id")
                .and_then(|p| p.value.as_deref())
                .or(m.parent_key.as_deref());
            if own.map(shortname).as_ref() == Some(want) {
                score += 8;
            }
        }
        if key.is_none() && score == 0 {
            continue;
        }
        if best.is_none_or(|(b, _)| score > b) {
            best = Some((score, at));
        }
    }
    best.map(|(_, at)| at)
}

/// `file:line:col` of `key` of `obj` as written in `file` (of `obj` itself
/// with `key: None`), or just `file` when that cannot be found. Re-reads
/// and re-parses the file: for error messages only.
fn at(file: &Path, key: Option<&str>, obj: &Map<String, Value>) -> String {
    match read_document(file).ok().and_then(|t| locate(&t, key, obj)) {
        Some((line, col)) => format!("{}:{line}:{col}", file.display()),
        None => file.display().to_string(),
    }
}

/// A key or value for a message: quoted, control characters escaped,
/// shortened when long.
fn show(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    format!("'{}'", out.escape_debug())
}

/// The closest of `known` to `got` when it is a likely typo.
fn did_you_mean<'a>(got: &str, known: &[&'a str]) -> Option<&'a str> {
    if got.len() > 64 {
        return None;
    }
    let got: Vec<char> = got.to_lowercase().chars().collect();
    let mut best: Option<(usize, &str)> = None;
    for k in known {
        let cand: Vec<char> = k.to_lowercase().chars().collect();
        // Levenshtein distance, one row at a time.
        let mut row: Vec<usize> = (0..=cand.len()).collect();
        for (i, a) in got.iter().enumerate() {
            let mut diag = row[0];
            row[0] = i + 1;
            for (j, b) in cand.iter().enumerate() {
                let next = (diag + usize::from(a != b))
                    .min(row[j] + 1)
                    .min(row[j + 1] + 1);
                diag = row[j + 1];
                row[j + 1] = next;
            }
        }
        let d = row[cand.len()];
        if d <= 2 && d * 3 <= cand.len().max(got.len()) && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, k));
        }
    }
    best.map(|(_, k)| k)
}

/// `unknown field 'k' in WHAT (did you mean …? expected one of: …)`.
fn unknown_field(k: &str, what: &str, expected: &[&str]) -> String {
    let hint = match did_you_mean(k, expected) {
        Some(m) => format!("did you mean '{m}'? "),
        None => String::new(),
    };
    format!(
        "unknown field {} in {what} ({hint}expected one of: {})",
        show(k),
        expected.join(", ")
    )
}

thread_local! {
    /// Document files read by the current [`load`] on this thread.
    static READ_FILES: std::cell::RefCell<Vec<PathBuf>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Largest document (or `$include`d file) the loader reads.
const MAX_DOCUMENT: u64 = 64 << 20;

/// The text of a document: regular files only (a `run: /dev/zero` must not
/// read forever) and at most [`MAX_DOCUMENT`] bytes.
fn read_document(path: &Path) -> std::io::Result<String> {
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

/// Read and parse a file, resolving `$import` and `$include` directives.
pub fn read_file(path: &Path) -> Result<Value> {
    READ_FILES.with(|f| {
        let p = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let mut f = f.borrow_mut();
        if !f.contains(&p) {
            f.push(p);
        }
    });
    let text = read_document(path)
        .map_err(|e| CwlError::Validation(format!("{}: cannot read file: {e}", path.display())))?;
    let v = parse_text(&text, &path.display().to_string())?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    resolve_directives(v, &base, 0)
}

fn resolve_directives(v: Value, base: &Path, depth: usize) -> Result<Value> {
    if depth > 64 {
        return verr("$import nesting too deep (cycle?)");
    }
    match v {
        Value::Object(m) => {
            if m.len() == 1 {
                if let Some(Value::String(p)) = m.get("$import") {
                    let (file, frag) = split_fragment(p);
                    let target = base.join(file);
                    let mut loaded = read_file(&target)?;
                    if let Some(frag) = frag {
                        loaded = find_in_graph(&loaded, &frag).unwrap_or(loaded);
                    }
                    return Ok(loaded);
                }
                if let Some(Value::String(p)) = m.get("$include") {
                    let target = base.join(p);
                    let text = read_document(&target).map_err(|e| {
                        CwlError::Validation(format!(
                            "$include {}: cannot read: {e}",
                            target.display()
                        ))
                    })?;
                    return Ok(Value::String(text));
                }
            }
            let mut out = Map::new();
            for (k, val) in m {
                out.insert(k, resolve_directives(val, base, depth + 1)?);
            }
            Ok(Value::Object(out))
        }
        Value::Array(a) => Ok(Value::Array(
            a.into_iter()
                .map(|x| resolve_directives(x, base, depth + 1))
                .collect::<Result<Vec<_>>>()?,
        )),
        other => Ok(other),
    }
}

/// Split `file.cwl#frag` into its parts.
pub fn split_fragment(s: &str) -> (String, Option<String>) {
    match s.find('#') {
        Some(i) => (s[..i].to_string(), Some(s[i + 1..].to_string())),
        None => (s.to_string(), None),
    }
}

fn find_in_graph(doc: &Value, frag: &str) -> Option<Value> {
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
    let (file, frag) = split_fragment(spec);
    let path = std::fs::canonicalize(&file)
        .map_err(|e| CwlError::Validation(format!("{file}: cannot open document: {e}")))?;
    READ_FILES.with(|f| f.borrow_mut().clear());
    let doc = read_file(&path)?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let ctx = DocCtx {
        version: version_of(&doc, ""),
        ns: doc
            .get("$namespaces")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        base: base.clone(),
        graph: doc.get("$graph").cloned(),
        file: path.clone(),
    };
    let version = doc
        .get("cwlVersion")
        .and_then(Value::as_str)
        .map(str::to_string);
    let selected = if let Some(graph) = doc.get("$graph").and_then(Value::as_array) {
        let want = frag.clone().unwrap_or_else(|| "main".to_string());
        match graph.iter().find(|p| {
            p.get("id").and_then(Value::as_str).map(fragment).as_deref() == Some(want.as_str())
        }) {
            Some(p) => p.clone(),
            None if frag.is_none() && graph.len() == 1 => graph[0].clone(),
            None => return verr(format!("{file}: no process with id '#{want}' in $graph")),
        }
    } else if let Some(f) = &frag {
        let own = doc.get("id").and_then(Value::as_str).map(fragment);
        if own.as_deref() != Some(f.as_str()) && own.is_some() {
            return verr(format!("{file}: no process with id '#{f}'"));
        }
        doc.clone()
    } else {
        doc.clone()
    };
    let mut selected = selected;
    if let (Some(v), Value::Object(m)) = (version, &mut selected) {
        m.entry("cwlVersion").or_insert(Value::String(v));
    }
    check_version(&selected, &path)?;
    let process = normalize_process(selected, &ctx, 0)?;
    let files = READ_FILES.with(|f| std::mem::take(&mut *f.borrow_mut()));
    Ok(Loaded { process, files })
}

fn check_version(p: &Value, path: &Path) -> Result<()> {
    match p.get("cwlVersion").and_then(Value::as_str) {
        None | Some("v1.0") | Some("v1.1") | Some("v1.2") => Ok(()),
        Some(v) if v.starts_with("v1.") => Ok(()),
        Some(v) => {
            let empty = Map::new();
            let obj = p.as_object().unwrap_or(&empty);
            verr(format!(
                "{}: cwlVersion: unsupported version {} (expected v1.0, v1.1 or v1.2)",
                at(path, Some("cwlVersion"), obj),
                show(v)
            ))
        }
    }
}

fn version_of(doc: &Value, default: &str) -> String {
    doc.get("cwlVersion")
        .and_then(Value::as_str)
        .unwrap_or(default)
        .to_string()
}

/// Reject features newer than the document's declared `cwlVersion`.
fn check_version_features(m: &Map<String, Value>, version: &str, file: &Path) -> Result<()> {
    if version != "v1.0" && version != "v1.1" {
        return Ok(());
    }
    let params = ["inputs", "outputs"]
        .iter()
        .filter_map(|k| m.get(*k))
        .flat_map(|v| match v {
            Value::Array(a) => a.clone(),
            Value::Object(o) => o.values().cloned().collect(),
            _ => vec![],
        });
    for p in params {
        if version == "v1.0" {
            let sf = p.get("secondaryFiles");
            let has_obj = match sf {
                Some(Value::Array(a)) => a.iter().any(Value::is_object),
                Some(Value::Object(_)) => true,
                _ => false,
            };
            if has_obj {
                let empty = Map::new();
                return verr(format!(
                    "{}: secondaryFiles with pattern/required objects need cwlVersion v1.1 or later (document is {version})",
                    at(
                        file,
                        Some("secondaryFiles"),
                        p.as_object().unwrap_or(&empty)
                    )
                ));
            }
        }
    }
    let steps: Vec<Value> = match m.get("steps") {
        Some(Value::Array(a)) => a.clone(),
        Some(Value::Object(o)) => o.values().cloned().collect(),
        _ => vec![],
    };
    for s in steps {
        if let Value::Object(sm) = &s
            && sm.contains_key("when")
        {
            return verr(format!(
                "{}: step field 'when' needs cwlVersion v1.2 (document is {version})",
                at(file, Some("when"), sm)
            ));
        }
    }
    let reqs: Vec<Value> = ["requirements", "hints"]
        .iter()
        .filter_map(|k| m.get(*k))
        .flat_map(|v| match v {
            Value::Array(a) => a.clone(),
            Value::Object(o) => o
                .iter()
                .map(|(k, v)| {
                    let mut v = v.clone();
                    if let Value::Object(vm) = &mut v {
                        vm.insert("class".into(), Value::String(k.clone()));
                    }
                    v
                })
                .collect(),
            _ => vec![],
        })
        .collect();
    for r in reqs {
        if r.get("class").and_then(Value::as_str) == Some("ResourceRequirement")
            && let Value::Object(rm) = &r
        {
            for (k, v) in rm {
                if let Value::Number(n) = v
                    && n.as_i64().is_none()
                    && n.as_u64().is_none()
                {
                    return verr(format!(
                        "{}: ResourceRequirement.{k}: fractional values need cwlVersion v1.2 (document is {version})",
                        at(file, Some(k), rm)
                    ));
                }
            }
        }
    }
    Ok(())
}

struct DocCtx {
    version: String,
    ns: Map<String, Value>,
    base: PathBuf,
    graph: Option<Value>,
    file: PathBuf,
}

const PROCESS_FIELDS: &[&str] = &[
    "class",
    "id",
    "inputs",
    "outputs",
    "requirements",
    "hints",
    "label",
    "doc",
    "cwlVersion",
    "intent",
    "$namespaces",
    "$schemas",
    "baseCommand",
    "arguments",
    "stdin",
    "stdout",
    "stderr",
    "successCodes",
    "temporaryFailCodes",
    "permanentFailCodes",
    "expression",
    "steps",
    "__base",
    "$base",
    "__ns",
];

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

/// Fields every process class has.
const COMMON_FIELDS: &[&str] = &[
    "id",
    "label",
    "doc",
    "intent",
    "cwlVersion",
    "class",
    "inputs",
    "outputs",
    "requirements",
    "hints",
    "$namespaces",
    "$schemas",
];

/// The fields of a process class, for messages.
fn expected_fields(class: &str) -> Vec<&'static str> {
    let own: &[&str] = match class {
        "CommandLineTool" => &[
            "baseCommand",
            "arguments",
            "stdin",
            "stdout",
            "stderr",
            "successCodes",
            "temporaryFailCodes",
            "permanentFailCodes",
        ],
        "ExpressionTool" => &["expression"],
        "Workflow" => &["steps"],
        _ => &[],
    };
    COMMON_FIELDS.iter().chain(own).copied().collect()
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

// ---------------------------------------------------------------------------
// Unknown fields of the objects inside a process.
//
// Checked on the user's own objects, before normalisation turns maps into
// lists and adds keys of its own: parameters, their bindings, secondary
// files and type schemas, step inputs and outputs, and the fields of every
// known requirement under `requirements` (never under `hints`: hints may
// carry anything). A field name with ':' (an extension, `s:author`, a URI)
// is always allowed. Documents older than v1.2 are checked leniently, with
// the fields their version allowed as well.

/// Fields of the parameters and bindings (CWL v1.2 schema records).
const INPUT_PARAM_FIELDS: &[&str] = &[
    "id",
    "label",
    "doc",
    "type",
    "default",
    "format",
    "secondaryFiles",
    "streamable",
    "loadContents",
    "loadListing",
    "inputBinding",
];
const OUTPUT_PARAM_FIELDS: &[&str] = &[
    "id",
    "label",
    "doc",
    "type",
    "format",
    "secondaryFiles",
    "streamable",
];
const WORKFLOW_OUTPUT_FIELDS: &[&str] = &["outputSource", "linkMerge", "pickValue"];
const COMMAND_LINE_BINDING_FIELDS: &[&str] = &[
    "loadContents",
    "position",
    "prefix",
    "separate",
    "itemSeparator",
    "valueFrom",
    "shellQuote",
];
const INPUT_BINDING_FIELDS: &[&str] = &["loadContents"];
const OUTPUT_BINDING_FIELDS: &[&str] = &["glob", "loadContents", "loadListing", "outputEval"];
const SECONDARY_FILE_FIELDS: &[&str] = &["pattern", "required"];
const STEP_INPUT_FIELDS: &[&str] = &[
    "id",
    "source",
    "linkMerge",
    "pickValue",
    "loadContents",
    "loadListing",
    "label",
    "default",
    "valueFrom",
];
const STEP_OUTPUT_FIELDS: &[&str] = &["id"];
const DIRENT_FIELDS: &[&str] = &["entry", "entryname", "writable"];
const ENV_DEF_FIELDS: &[&str] = &["envName", "envValue"];
const SOFTWARE_PACKAGE_FIELDS: &[&str] = &["package", "version", "specs"];
const RECORD_SCHEMA_FIELDS: &[&str] = &["type", "fields", "name", "label", "doc"];
const ENUM_SCHEMA_FIELDS: &[&str] = &["type", "symbols", "name", "label", "doc"];
const ARRAY_SCHEMA_FIELDS: &[&str] = &["type", "items", "name", "label", "doc"];
const RECORD_FIELD_FIELDS: &[&str] = &[
    "name",
    "type",
    "doc",
    "label",
    "secondaryFiles",
    "streamable",
    "format",
];
const INPUT_RECORD_FIELD_FIELDS: &[&str] = &["loadContents", "loadListing"];
const INPUT_BINDING: &[&str] = &["inputBinding"];
const OUTPUT_BINDING: &[&str] = &["outputBinding"];
const NONE: &[&str] = &[];

/// The fields of a known requirement class (`class` included); `None` for
/// classes this loader does not know.
fn requirement_fields(class: &str) -> Option<&'static [&'static str]> {
    Some(match class {
        "InlineJavascriptRequirement" => &["class", "expressionLib"],
        "SchemaDefRequirement" => &["class", "types"],
        "LoadListingRequirement" => &["class", "loadListing"],
        "DockerRequirement" => &[
            "class",
            "dockerPull",
            "dockerLoad",
            "dockerFile",
            "dockerImport",
            "dockerImageId",
            "dockerOutputDirectory",
        ],
        "SoftwareRequirement" => &["class", "packages"],
        "InitialWorkDirRequirement" => &["class", "listing"],
        "EnvVarRequirement" => &["class", "envDef"],
        "ResourceRequirement" => &[
            "class",
            "coresMin",
            "coresMax",
            "ramMin",
            "ramMax",
            "tmpdirMin",
            "tmpdirMax",
            "outdirMin",
            "outdirMax",
        ],
        "WorkReuse" => &["class", "enableReuse"],
        "NetworkAccess" => &["class", "networkAccess"],
        "InplaceUpdateRequirement" => &["class", "inplaceUpdate"],
        "ToolTimeLimit" => &["class", "timelimit"],
        "ShellCommandRequirement"
        | "SubworkflowFeatureRequirement"
        | "ScatterFeatureRequirement"
        | "MultipleInputFeatureRequirement"
        | "StepInputExpressionRequirement" => &["class"],
        _ => return None,
    })
}

/// Which schema records a type (or record field) is checked against.
#[derive(Clone, Copy, PartialEq)]
enum SchemaKind {
    /// CommandLineTool inputs: `CommandInput*Schema`, `inputBinding` allowed.
    CommandInput,
    /// CommandLineTool outputs: `outputBinding` on record fields.
    CommandOutput,
    /// Workflow and ExpressionTool inputs: `Input*Schema`.
    Input,
    /// Workflow and ExpressionTool outputs: `Output*Schema`.
    Output,
    /// `SchemaDefRequirement` types, which may describe inputs or outputs.
    Any,
}

impl SchemaKind {
    fn is_input(self) -> bool {
        matches!(self, Self::CommandInput | Self::Input | Self::Any)
    }
}

/// The entries of a field in list or map form that are objects, each with
/// its key in map form.
fn object_entries(v: Option<&Value>) -> Vec<(Option<&str>, &Map<String, Value>)> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_object().map(|o| (None, o)))
            .collect(),
        Some(Value::Object(m)) => m
            .iter()
            .filter_map(|(k, x)| x.as_object().map(|o| (Some(k.as_str()), o)))
            .collect(),
        _ => vec![],
    }
}

/// The name of an entry for messages: its map key, else its `id_key` field.
fn entry_name(key: Option<&str>, obj: &Map<String, Value>, id_key: &str) -> String {
    let name = key
        .map(str::to_string)
        .or_else(|| obj.get(id_key).and_then(Value::as_str).map(shortname))
        .unwrap_or_default();
    show(&name)
}

/// Unknown-field checks of one process's nested objects.
struct FieldCheck<'a> {
    file: &'a Path,
    /// v1.0 or v1.1: the fields those versions had are allowed too.
    old: bool,
}

/// Types nested deeper than this are not checked further.
const MAX_SCHEMA_DEPTH: usize = 64;

impl FieldCheck<'_> {
    /// An error for the first field of `obj` in none of `allowed` (and
    /// without ':'); `key` is the entry's key in map form, used to find it.
    fn fields(
        &self,
        obj: &Map<String, Value>,
        allowed: &[&[&str]],
        key: Option<&str>,
        what: &dyn Fn() -> String,
    ) -> Result<()> {
        let Some(k) = obj
            .keys()
            .find(|k| !k.contains(':') && !allowed.iter().any(|a| a.contains(&k.as_str())))
        else {
            return Ok(());
        };
        let expected: Vec<&str> = allowed.iter().flat_map(|a| a.iter().copied()).collect();
        let place = match key {
            Some(id) if !obj.contains_key("id") => {
                let mut o = obj.clone();
                o.insert("id".into(), Value::String(id.to_string()));
                at(self.file, Some(k), &o)
            }
            _ => at(self.file, Some(k), obj),
        };
        verr(format!("{place}: {}", unknown_field(k, &what(), &expected)))
    }

    /// The object fields of `obj[field]` against `allowed`.
    fn sub_object(
        &self,
        obj: &Map<String, Value>,
        field: &str,
        allowed: &[&[&str]],
        what: &dyn Fn() -> String,
    ) -> Result<()> {
        match obj.get(field) {
            Some(Value::Object(b)) => {
                self.fields(b, allowed, None, &|| format!("{field} of {}", what()))
            }
            _ => Ok(()),
        }
    }

    /// `secondaryFiles` entries that are objects (`SecondaryFileSchema`).
    fn secondary_files(&self, obj: &Map<String, Value>, what: &dyn Fn() -> String) -> Result<()> {
        let items: Vec<&Value> = match obj.get("secondaryFiles") {
            Some(Value::Array(a)) => a.iter().collect(),
            Some(v) => vec![v],
            None => vec![],
        };
        for sf in items {
            if let Value::Object(s) = sf {
                self.fields(s, &[SECONDARY_FILE_FIELDS], None, &|| {
                    format!("secondaryFiles of {}", what())
                })?;
            }
        }
        Ok(())
    }

    /// The `inputBinding`/`outputBinding` fields a schema of `kind` may have.
    fn binding_fields(&self, kind: SchemaKind, on_field: bool) -> &'static [&'static str] {
        match kind {
            SchemaKind::CommandInput => INPUT_BINDING,
            SchemaKind::CommandOutput if on_field => OUTPUT_BINDING,
            SchemaKind::Input if self.old => INPUT_BINDING,
            SchemaKind::CommandOutput | SchemaKind::Output if self.old => OUTPUT_BINDING,
            SchemaKind::Any => &["inputBinding", "outputBinding"],
            _ => NONE,
        }
    }

    /// The bindings of a schema or record field.
    fn bindings(&self, obj: &Map<String, Value>, what: &dyn Fn() -> String) -> Result<()> {
        self.sub_object(obj, "inputBinding", &[COMMAND_LINE_BINDING_FIELDS], what)?;
        self.sub_object(obj, "outputBinding", &[OUTPUT_BINDING_FIELDS], what)
    }

    /// Record, enum and array schemas in a type (unions and nesting
    /// included); names and shorthands are left alone.
    fn schema(
        &self,
        t: &Value,
        kind: SchemaKind,
        what: &dyn Fn() -> String,
        depth: usize,
    ) -> Result<()> {
        if depth > MAX_SCHEMA_DEPTH {
            return Ok(());
        }
        let s = match t {
            Value::Array(a) => {
                for x in a {
                    self.schema(x, kind, what, depth + 1)?;
                }
                return Ok(());
            }
            Value::Object(s) => s,
            _ => return Ok(()),
        };
        let binding = self.binding_fields(kind, false);
        match s.get("type").and_then(Value::as_str) {
            Some("record") => {
                let here = || format!("record type of {}", what());
                self.fields(s, &[RECORD_SCHEMA_FIELDS, binding], None, &here)?;
                self.bindings(s, &here)?;
                let own: &[&str] = if kind.is_input() {
                    INPUT_RECORD_FIELD_FIELDS
                } else {
                    NONE
                };
                let binding = self.binding_fields(kind, true);
                for (key, f) in object_entries(s.get("fields")) {
                    let name = entry_name(key, f, "name");
                    let here = || format!("field {name} of {}", what());
                    self.fields(f, &[RECORD_FIELD_FIELDS, own, binding], key, &here)?;
                    self.bindings(f, &here)?;
                    self.secondary_files(f, &here)?;
                    if let Some(ft) = f.get("type") {
                        self.schema(ft, kind, &here, depth + 1)?;
                    }
                }
            }
            Some("enum") => {
                let here = || format!("enum type of {}", what());
                self.fields(s, &[ENUM_SCHEMA_FIELDS, binding], None, &here)?;
                self.bindings(s, &here)?;
            }
            Some("array") => {
                let here = || format!("array type of {}", what());
                self.fields(s, &[ARRAY_SCHEMA_FIELDS, binding], None, &here)?;
                self.bindings(s, &here)?;
                if let Some(items) = s.get("items") {
                    self.schema(items, kind, what, depth + 1)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The inputs and outputs of a process of `class`.
    fn params(&self, m: &Map<String, Value>, class: &str) -> Result<()> {
        let tool = class == "CommandLineTool";
        let binding: &[&str] = if tool || self.old {
            COMMAND_LINE_BINDING_FIELDS
        } else {
            INPUT_BINDING_FIELDS
        };
        let kind = if tool {
            SchemaKind::CommandInput
        } else {
            SchemaKind::Input
        };
        for (key, p) in object_entries(m.get("inputs")) {
            let name = entry_name(key, p, "id");
            let what = || format!("input {name}");
            self.fields(p, &[INPUT_PARAM_FIELDS], key, &what)?;
            self.sub_object(p, "inputBinding", &[binding], &what)?;
            self.secondary_files(p, &what)?;
            if let Some(t) = p.get("type") {
                self.schema(t, kind, &what, 0)?;
            }
        }
        let own: &[&str] = match class {
            "CommandLineTool" => OUTPUT_BINDING,
            "Workflow" => WORKFLOW_OUTPUT_FIELDS,
            _ => NONE,
        };
        let old: &[&str] = if self.old { OUTPUT_BINDING } else { NONE };
        let kind = if tool {
            SchemaKind::CommandOutput
        } else {
            SchemaKind::Output
        };
        for (key, p) in object_entries(m.get("outputs")) {
            let name = entry_name(key, p, "id");
            let what = || format!("output {name}");
            self.fields(p, &[OUTPUT_PARAM_FIELDS, own, old], key, &what)?;
            self.sub_object(p, "outputBinding", &[OUTPUT_BINDING_FIELDS], &what)?;
            self.secondary_files(p, &what)?;
            if let Some(t) = p.get("type") {
                self.schema(t, kind, &what, 0)?;
            }
        }
        Ok(())
    }

    /// The known requirements of a `requirements` field (list or map form)
    /// and the objects inside them.
    fn requirements(&self, v: Option<&Value>, of: &dyn Fn() -> String) -> Result<()> {
        for (key, r) in object_entries(v) {
            let class = key
                .or_else(|| r.get("class").and_then(Value::as_str))
                .unwrap_or("");
            let Some(allowed) = requirement_fields(class) else {
                continue;
            };
            let what = || format!("{class}{}", of());
            self.fields(r, &[allowed], key, &what)?;
            match class {
                "EnvVarRequirement" => {
                    for (k, e) in object_entries(r.get("envDef")) {
                        let name = entry_name(k, e, "envName");
                        self.fields(e, &[ENV_DEF_FIELDS], k, &|| {
                            format!("envDef {name} of {}", what())
                        })?;
                    }
                }
                "InitialWorkDirRequirement" => {
                    if let Some(Value::Array(items)) = r.get("listing") {
                        for d in items.iter().filter_map(Value::as_object) {
                            if !d.contains_key("class") {
                                self.fields(d, &[DIRENT_FIELDS], None, &|| {
                                    format!("listing entry (Dirent) of {}", what())
                                })?;
                            }
                        }
                    }
                }
                "SoftwareRequirement" => {
                    for (k, p) in object_entries(r.get("packages")) {
                        let name = entry_name(k, p, "package");
                        self.fields(p, &[SOFTWARE_PACKAGE_FIELDS], k, &|| {
                            format!("package {name} of {}", what())
                        })?;
                    }
                }
                "SchemaDefRequirement" => {
                    if let Some(t) = r.get("types") {
                        self.schema(t, SchemaKind::Any, &what, 0)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The `in` and `out` entries and the requirements of a workflow's steps.
    fn steps(&self, v: Option<&Value>) -> Result<()> {
        for (key, s) in object_entries(v) {
            let step = entry_name(key, s, "id");
            for (k, i) in object_entries(s.get("in")) {
                let name = entry_name(k, i, "id");
                self.fields(i, &[STEP_INPUT_FIELDS], k, &|| {
                    format!("input {name} of step {step}")
                })?;
            }
            if let Some(Value::Array(outs)) = s.get("out") {
                for o in outs.iter().filter_map(Value::as_object) {
                    let name = entry_name(None, o, "id");
                    self.fields(o, &[STEP_OUTPUT_FIELDS], None, &|| {
                        format!("output {name} of step {step}")
                    })?;
                }
            }
            self.requirements(s.get("requirements"), &|| format!(" of step {step}"))?;
        }
        Ok(())
    }
}

/// Unknown fields in the objects inside process `m` (as the user wrote it).
fn check_nested_fields(
    m: &Map<String, Value>,
    class: &str,
    version: &str,
    file: &Path,
) -> Result<()> {
    let check = FieldCheck {
        file,
        old: version.starts_with("v1.0") || version.starts_with("v1.1"),
    };
    check.params(m, class)?;
    check.requirements(m.get("requirements"), &String::new)?;
    if class == "Workflow" {
        check.steps(m.get("steps"))?;
    }
    Ok(())
}

fn normalize_process(p: Value, ctx: &DocCtx, depth: usize) -> Result<Value> {
    if depth > 32 {
        return verr("processes nested too deeply (cycle in `run`?)");
    }
    let Value::Object(mut m) = p else {
        return verr(format!(
            "{}: a process must be an object",
            ctx.file.display()
        ));
    };
    let class = m
        .get("class")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    match class.as_str() {
        "CommandLineTool" | "ExpressionTool" | "Workflow" => {}
        "Operation" => {
            return Err(CwlError::Unsupported(
                "class Operation is abstract and cannot be executed".into(),
            ));
        }
        "" => {
            return verr(format!(
                "{}: missing field 'class' (expected one of: CommandLineTool, ExpressionTool, Workflow)",
                at(&ctx.file, None, &m)
            ));
        }
        c => {
            return verr(format!(
                "{}: class: unknown process class {} (expected one of: CommandLineTool, ExpressionTool, Workflow, Operation)",
                at(&ctx.file, Some("class"), &m),
                show(c)
            ));
        }
    }
    if let Some(k) = m
        .keys()
        .find(|k| !PROCESS_FIELDS.contains(&k.as_str()) && !k.contains(':'))
    {
        return verr(format!(
            "{}: {}",
            at(&ctx.file, Some(k), &m),
            unknown_field(k, &class, &expected_fields(&class))
        ));
    }
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
    let class = class.rsplit(['#', '/']).next().unwrap_or("").to_string();
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
    const STEP_FIELDS: &[&str] = &[
        "id",
        "in",
        "out",
        "run",
        "requirements",
        "hints",
        "label",
        "doc",
        "scatter",
        "scatterMethod",
        "when",
    ];
    if let Some(k) = m
        .keys()
        .find(|k| !STEP_FIELDS.contains(&k.as_str()) && !k.contains(':'))
    {
        return verr(format!(
            "{}: {}",
            at(&ctx.file, Some(k), &m),
            unknown_field(k, &format!("step {}", show(&id)), STEP_FIELDS)
        ));
    }
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
        Value::String(r) => {
            let (file, frag) = split_fragment(&r);
            if file.is_empty() {
                let frag = frag.unwrap_or_default();
                let found = ctx
                    .graph
                    .as_ref()
                    .and_then(|g| {
                        g.as_array()?.iter().find(|p| {
                            p.get("id").and_then(Value::as_str).map(fragment).as_deref()
                                == Some(frag.as_str())
                        })
                    })
                    .cloned();
                match found {
                    Some(p) => normalize_process(p, ctx, depth + 1)?,
                    None => {
                        return verr(format!(
                            "{}: step {}: run: no process {} in $graph",
                            at(&ctx.file, Some("run"), &m),
                            show(&id),
                            show(&format!("#{frag}"))
                        ));
                    }
                }
            } else {
                let path = if let Some(f) = file.strip_prefix("file://") {
                    PathBuf::from(f)
                } else {
                    ctx.base.join(&file)
                };
                let doc = read_file(&path).map_err(|e| match e {
                    CwlError::Validation(msg) if !path.is_file() => CwlError::Validation(format!(
                        "{}: step {}: run: {msg}",
                        at(&ctx.file, Some("run"), &m),
                        show(&id)
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
                };
                let p = if let Some(g) = doc.get("$graph").and_then(Value::as_array) {
                    let want = frag.unwrap_or_else(|| "main".into());
                    g.iter()
                        .find(|p| {
                            p.get("id").and_then(Value::as_str).map(fragment).as_deref()
                                == Some(want.as_str())
                        })
                        .cloned()
                        .ok_or_else(|| {
                            CwlError::Validation(format!(
                                "{}: step {}: run: no process {} in $graph of {}",
                                at(&ctx.file, Some("run"), &m),
                                show(&id),
                                show(&format!("#{want}")),
                                path.display()
                            ))
                        })?
                } else {
                    doc
                };
                normalize_process(p, &sub, depth + 1)?
            }
        }
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
    let mut v = read_file(path)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn type_shorthands() {
        assert_eq!(
            normalize_type(json!("File[]?")).unwrap(),
            json!(["null", {"type": "array", "items": "File"}])
        );
        assert_eq!(normalize_type(json!("#Foo")).unwrap(), json!("Foo"));
    }

    #[test]
    fn big_integers_stay_exact() {
        let v = parse_text(
            "a: 4200000000000000000000000000000000000000000\nb: y\n",
            "t",
        )
        .unwrap();
        assert_eq!(
            v["a"].to_string(),
            "4200000000000000000000000000000000000000000"
        );
        assert_eq!(v["b"], json!("y"));
    }

    #[test]
    fn malformed_yaml_is_an_error() {
        let e = parse_text("a: [1, 2\nb: {", "x.cwl").unwrap_err();
        assert!(e.to_string().contains("x.cwl"), "{e}");
    }

    #[test]
    fn maps_imports_and_graph() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "lib.js", "function f(){return 1;}");
        write(
            d.path(),
            "types.yml",
            "- name: T\n  type: enum\n  symbols: [a, b]\n",
        );
        let p = write(
            d.path(),
            "wf.cwl",
            "cwlVersion: v1.2\n$graph:\n- id: tool\n  class: CommandLineTool\n  requirements:\n    InlineJavascriptRequirement:\n      expressionLib: [{$include: lib.js}]\n    SchemaDefRequirement:\n      types: [{$import: types.yml}]\n  inputs:\n    x: string?\n  outputs: {}\n  baseCommand: echo\n- id: main\n  class: Workflow\n  inputs: {x: string}\n  outputs: {}\n  steps:\n    s1:\n      run: '#tool'\n      in: {x: x}\n      out: []\n",
        );
        let l = load(&format!("{}#main", p.display())).unwrap();
        let step = &l.process["steps"][0];
        assert_eq!(step["id"], json!("s1"));
        assert_eq!(step["in"][0]["source"], json!("x"));
        let tool = &step["run"];
        assert_eq!(tool["inputs"][0]["type"], json!(["null", "string"]));
        assert_eq!(
            tool["requirements"][0]["expressionLib"][0],
            json!("function f(){return 1;}")
        );
        assert_eq!(tool["requirements"][1]["types"][0]["name"], json!("T"));
        assert_eq!(tool["baseCommand"], json!(["echo"]));
    }

    #[test]
    fn unknown_field_and_operation() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "t.cwl",
            "cwlVersion: v1.2\nclass: CommandLineTool\ninputs: []\noutputs: []\nbogus: 1\n",
        );
        let e = load(&p.display().to_string()).err().unwrap();
        assert!(e.to_string().contains("unknown field 'bogus'"), "{e}");
        let p = write(
            d.path(),
            "o.cwl",
            "cwlVersion: v1.2\nclass: Operation\ninputs: []\noutputs: []\n",
        );
        let e = load(&p.display().to_string()).err().unwrap();
        assert_eq!(e.exit_code(), 33);
    }

    #[test]
    fn missing_file() {
        assert!(load("/nonexistent/x.cwl").is_err());
    }

    /// The message of a failed [`load`] of `text` written to `name`.
    fn load_err(name: &str, text: &str) -> (String, String) {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), name, text);
        let e = load(&p.display().to_string()).err().unwrap();
        (e.to_string(), p.display().to_string())
    }

    #[test]
    fn malformed_yaml_names_line_and_column() {
        let e = parse_text(
            "cwlVersion: v1.2\nclass: CommandLineTool\ninputs: [a\n",
            "x.cwl",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("x.cwl:3:9: malformed YAML: "), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
        let e = parse_text("a: 1\n  b: 2\n", "y.cwl")
            .unwrap_err()
            .to_string();
        assert!(e.contains("y.cwl:2:"), "{e}");
    }

    #[test]
    fn unknown_field_names_line_column_and_expected_fields() {
        let (e, p) = load_err(
            "t.cwl",
            "cwlVersion: v1.2\nclass: CommandLineTool\ninputs: []\noutputs: []\n  # comment\n\nbogus: 1\n",
        );
        assert!(
            e.contains(&format!(
                "{p}:7:1: unknown field 'bogus' in CommandLineTool"
            )),
            "{e}"
        );
        assert!(e.contains("expected one of: "), "{e}");
        assert!(e.contains("baseCommand"), "{e}");
        assert!(!e.contains("__base"), "{e}");
        let (e, p) = load_err(
            "typo.cwl",
            "cwlVersion: v1.2\nclass: ExpressionTool\ninputs: []\noutputs: []\nexpresion: '$({})'\n",
        );
        assert!(
            e.contains(&format!("{p}:5:1: unknown field 'expresion'")),
            "{e}"
        );
        assert!(e.contains("did you mean 'expression'?"), "{e}");
    }

    #[test]
    fn unknown_field_in_json_document() {
        let (e, p) = load_err(
            "t.cwl",
            "{\"cwlVersion\": \"v1.2\",\n \"class\": \"CommandLineTool\",\n \"inputs\": [],\n \"outputs\": [], \"bogus\": 1}\n",
        );
        assert!(
            e.contains(&format!("{p}:4:17: unknown field 'bogus'")),
            "{e}"
        );
    }

    #[test]
    fn step_errors_name_the_line_of_the_step() {
        let wf = "cwlVersion: v1.2
class: Workflow
inputs: {m: string}
outputs: {}
steps:
  a:
    run: {class: ExpressionTool, inputs: [], outputs: [], expression: '$({})'}
    in: {msg: m}
    out: []
  b:
    run: {class: ExpressionTool, inputs: [], outputs: [], expression: '$({})'}
    in: {msg: m}
    out: []
    scater: msg
";
        let (e, p) = load_err("wf.cwl", wf);
        assert!(
            e.contains(&format!("{p}:14:5: unknown field 'scater' in step 'b'")),
            "{e}"
        );
        assert!(e.contains("did you mean 'scatter'?"), "{e}");
        // List form, in a $graph whose two tools share the unknown key name
        // only in the second one.
        let graph = "cwlVersion: v1.2
$graph:
- id: one
  class: CommandLineTool
  inputs: []
  outputs: []
- id: main
  class: Workflow
  inputs: []
  outputs: []
  steps:
  - id: s
    run: '#one'
    in: []
    out: []
    bogus: 1
";
        let (e, p) = load_err("g.cwl", graph);
        assert!(
            e.contains(&format!("{p}:16:5: unknown field 'bogus' in step 's'")),
            "{e}"
        );
        let missing = wf.replace(
            "run: {class: ExpressionTool, inputs: [], outputs: [], expression: '$({})'}\n    in: {msg: m}\n    out: []\n    scater: msg\n",
            "run: nowhere.cwl\n    in: {msg: m}\n    out: []\n",
        );
        let (e, p) = load_err("wf.cwl", &missing);
        assert!(e.contains(&format!("{p}:11:5: step 'b': run: ")), "{e}");
        assert!(e.contains("nowhere.cwl"), "{e}");
    }

    #[test]
    fn the_right_mapping_is_found() {
        // Two processes with the same unknown field: the one whose other
        // keys match is reported.
        let graph = "cwlVersion: v1.2
$graph:
- id: one
  class: CommandLineTool
  inputs: []
  outputs: []
  baseCommand: echo
  extra: 1
- id: two
  class: CommandLineTool
  inputs: []
  outputs: []
  extra: 2
";
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "g.cwl", graph);
        let e = load(&format!("{}#two", p.display()))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains(&format!("{}:13:3: unknown field 'extra'", p.display())),
            "{e}"
        );
        let e = load(&format!("{}#one", p.display()))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains(&format!("{}:8:3: unknown field 'extra'", p.display())),
            "{e}"
        );
    }

    #[test]
    fn other_validation_errors_have_positions() {
        let (e, p) = load_err("c.cwl", "cwlVersion: v1.2\nclass: Tool\ninputs: []\n");
        assert!(
            e.contains(&format!("{p}:2:1: class: unknown process class 'Tool'")),
            "{e}"
        );
        let (e, p) = load_err(
            "v.cwl",
            "class: CommandLineTool\ncwlVersion: draft-3\ninputs: []\n",
        );
        assert!(
            e.contains(&format!("{p}:2:1: cwlVersion: unsupported version")),
            "{e}"
        );
        let (e, p) = load_err(
            "i.cwl",
            "cwlVersion: v1.2\nclass: CommandLineTool\noutputs: []\ninputs: 5\n",
        );
        assert!(
            e.contains(&format!("{p}:4:1: inputs: expected a list or a map")),
            "{e}"
        );
        let (e, p) = load_err(
            "r.cwl",
            "cwlVersion: v1.2\nclass: CommandLineTool\ninputs: []\noutputs: []\nrequirements:\n  - 5\n",
        );
        assert!(
            e.contains(&format!(
                "{p}:5:1: requirements: a requirement must be an object"
            )),
            "{e}"
        );
        let (e, p) = load_err(
            "w.cwl",
            "cwlVersion: v1.0\nclass: Workflow\ninputs: []\noutputs: []\nsteps:\n  s:\n    run: x.cwl\n    in: []\n    out: []\n    when: $(true)\n",
        );
        assert!(e.contains(&format!("{p}:10:5: step field 'when'")), "{e}");
    }

    #[test]
    fn position_index_survives_odd_input() {
        let empty = Map::new();
        for text in [
            "",
            "[[[[[[",
            "{{{{",
            "? [a, b]\n: c\nd: e\n",
            "&a {x: *a, y: *nope}\n",
            "a: 1\n---\nb: 2\n",
            "\t\u{0}\u{feff}: x",
            "- - - - a: b\n",
            "a: !!binary ZZZ\n",
            "{\"a\": {\"b\": [1, {\"c\": 2}]}}",
        ] {
            let _ = locate(text, Some("a"), &empty);
            let _ = locate(text, None, &empty);
        }
        let deep = "[".repeat(100_000);
        let _ = locate(&deep, Some("x"), &empty);
        let deep = "a:\n".repeat(2_000);
        let _ = locate(&deep, Some("a"), &empty);
        let obj = json!({"x": 1}).as_object().cloned().unwrap();
        assert_eq!(locate("a: {x: 1, y: 2}\n", Some("y"), &obj), Some((1, 11)));
        assert_eq!(locate("? [k]\n: v\ny: 1\n", Some("y"), &obj), Some((3, 1)));
        assert_eq!(locate("a: 1\n", Some("zz"), &obj), None);
    }

    #[test]
    fn suggestions() {
        let known = ["baseCommand", "inputs", "outputs", "stdout"];
        assert_eq!(did_you_mean("baseComand", &known), Some("baseCommand"));
        assert_eq!(did_you_mean("inputz", &known), Some("inputs"));
        assert_eq!(did_you_mean("BaseCommand", &known), Some("baseCommand"));
        assert_eq!(did_you_mean("xyz", &known), None);
        assert_eq!(did_you_mean(&"x".repeat(10_000), &known), None);
        assert_eq!(show(&"k".repeat(1000)).chars().count(), 83);
        assert_eq!(show("a\nb"), "'a\\nb'");
    }

    /// A load of `text` (written to `t.cwl`) that must succeed.
    fn load_ok(text: &str) {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "t.cwl", text);
        if let Err(e) = load(&p.display().to_string()) {
            panic!("should load: {e}\n{text}");
        }
    }

    #[test]
    fn unknown_fields_in_parameters_and_bindings() {
        let (e, p) = load_err(
            "t.cwl",
            "cwlVersion: v1.2
class: CommandLineTool
baseCommand: echo
inputs:
  msg:
    type: string
    inputBinding: {position: 1, prefx: -m}
outputs: []
",
        );
        assert!(
            e.contains(&format!(
                "{p}:7:33: unknown field 'prefx' in inputBinding of input 'msg' (did you mean 'prefix'? expected one of: loadContents, position, prefix, separate, itemSeparator, valueFrom, shellQuote)"
            )),
            "{e}"
        );
        let (e, p) = load_err(
            "t.cwl",
            "cwlVersion: v1.2
class: CommandLineTool
baseCommand: echo
inputs: []
outputs:
  - id: out
    type: File
    outputBinding:
      glob: out.txt
      outputEva: $(self)
",
        );
        assert!(
            e.contains(&format!(
                "{p}:10:7: unknown field 'outputEva' in outputBinding of output 'out' (did you mean 'outputEval'? expected one of: glob, loadContents, loadListing, outputEval)"
            )),
            "{e}"
        );
        let (e, p) = load_err(
            "t.cwl",
            "cwlVersion: v1.2
class: CommandLineTool
inputs:
  a:
    type: int
    defualt: 1
outputs: []
",
        );
        assert!(
            e.contains(&format!(
                "{p}:6:5: unknown field 'defualt' in input 'a' (did you mean 'default'?"
            )),
            "{e}"
        );
        assert!(e.contains("inputBinding)"), "{e}");
        // A workflow output: no outputBinding in v1.2, but pickValue.
        let (e, p) = load_err(
            "w.cwl",
            "cwlVersion: v1.2
class: Workflow
inputs: []
outputs:
  o: {type: string, outputSource: a/x, outputBinding: {glob: x}}
steps: []
",
        );
        assert!(
            e.contains(&format!(
                "{p}:5:40: unknown field 'outputBinding' in output 'o' (expected one of: id, label, doc, type, format, secondaryFiles, streamable, outputSource, linkMerge, pickValue)"
            )),
            "{e}"
        );
        // ExpressionTool inputs are workflow inputs: inputBinding has only
        // loadContents (v1.2).
        let (e, p) = load_err(
            "e.cwl",
            "cwlVersion: v1.2
class: ExpressionTool
inputs:
  - id: a
    type: File
    inputBinding: {position: 1}
outputs: []
expression: '$({})'
",
        );
        assert!(
            e.contains(&format!(
                "{p}:6:20: unknown field 'position' in inputBinding of input 'a' (expected one of: loadContents)"
            )),
            "{e}"
        );
        let (e, p) = load_err(
            "s.cwl",
            "cwlVersion: v1.2
class: CommandLineTool
inputs:
  a:
    type: File
    secondaryFiles:
      - pattern: .bai
        requird: false
outputs: []
",
        );
        assert!(
            e.contains(&format!(
                "{p}:8:9: unknown field 'requird' in secondaryFiles of input 'a' (did you mean 'required'?"
            )),
            "{e}"
        );
    }

    #[test]
    fn unknown_fields_in_type_schemas() {
        let (e, p) = load_err(
            "t.cwl",
            "cwlVersion: v1.2
class: CommandLineTool
inputs:
  r:
    type:
      type: record
      fields:
        a: {type: int, inputBinding: {prefx: -a}}
outputs: []
",
        );
        assert!(
            e.contains(&format!(
                "{p}:8:39: unknown field 'prefx' in inputBinding of field 'a' of input 'r'"
            )),
            "{e}"
        );
        let (e, p) = load_err(
            "t.cwl",
            "cwlVersion: v1.2
class: CommandLineTool
inputs:
  r:
    type:
      type: record
      fields:
        - name: a
          type: int
          dcs: x
outputs: []
",
        );
        assert!(
            e.contains(&format!(
                "{p}:10:11: unknown field 'dcs' in field 'a' of input 'r'"
            )),
            "{e}"
        );
        let (e, p) = load_err(
            "t.cwl",
            "cwlVersion: v1.2
class: CommandLineTool
inputs:
  r:
    type:
      - 'null'
      - type: array
        items: {type: enum, symbols: [a, b], symbol: a}
outputs: []
",
        );
        assert!(
            e.contains(&format!(
                "{p}:8:46: unknown field 'symbol' in enum type of input 'r' (did you mean 'symbols'?"
            )),
            "{e}"
        );
        let (e, p) = load_err(
            "t.cwl",
            "cwlVersion: v1.2
class: CommandLineTool
requirements:
  SchemaDefRequirement:
    types:
      - name: T
        type: record
        field: []
inputs: []
outputs: []
",
        );
        assert!(
            e.contains(&format!(
                "{p}:8:9: unknown field 'field' in record type of SchemaDefRequirement (did you mean 'fields'?"
            )),
            "{e}"
        );
        // Output record fields may have an outputBinding, input ones not.
        load_ok(
            "cwlVersion: v1.2
class: CommandLineTool
inputs: []
outputs:
  r:
    type:
      type: record
      fields:
        a: {type: File, outputBinding: {glob: a.txt}}
",
        );
        let (e, _) = load_err(
            "t.cwl",
            "cwlVersion: v1.2
class: Workflow
inputs:
  r:
    type:
      type: record
      fields:
        a: {type: File, inputBinding: {position: 1}}
outputs: []
steps: []
",
        );
        assert!(
            e.contains("unknown field 'inputBinding' in field 'a' of input 'r'"),
            "{e}"
        );
    }

    #[test]
    fn unknown_fields_in_requirements() {
        let (e, p) = load_err(
            "t.cwl",
            "cwlVersion: v1.2
class: CommandLineTool
requirements:
  DockerRequirement:
    dockerPul: debian
inputs: []
outputs: []
",
        );
        assert!(
            e.contains(&format!(
                "{p}:5:5: unknown field 'dockerPul' in DockerRequirement (did you mean 'dockerPull'? expected one of: class, dockerPull, dockerLoad, dockerFile, dockerImport, dockerImageId, dockerOutputDirectory)"
            )),
            "{e}"
        );
        let (e, p) = load_err(
            "t.cwl",
            "cwlVersion: v1.2
class: CommandLineTool
requirements:
  - class: ResourceRequirement
    coresMin: 1
    ramMn: 100
inputs: []
outputs: []
",
        );
        assert!(
            e.contains(&format!(
                "{p}:6:5: unknown field 'ramMn' in ResourceRequirement (did you mean 'ramMin'?"
            )),
            "{e}"
        );
        let (e, p) = load_err(
            "t.cwl",
            "cwlVersion: v1.2
class: CommandLineTool
requirements:
  EnvVarRequirement:
    envDef:
      - envName: A
        envValu: x
inputs: []
outputs: []
",
        );
        assert!(
            e.contains(&format!(
                "{p}:7:9: unknown field 'envValu' in envDef 'A' of EnvVarRequirement (did you mean 'envValue'? expected one of: envName, envValue)"
            )),
            "{e}"
        );
        let (e, p) = load_err(
            "t.cwl",
            "cwlVersion: v1.2
class: CommandLineTool
requirements:
  InitialWorkDirRequirement:
    listing:
      - $(inputs.f)
      - {class: File, location: x.txt}
      - entryname: a.txt
        entry: hi
        writeable: true
inputs: []
outputs: []
",
        );
        assert!(
            e.contains(&format!(
                "{p}:10:9: unknown field 'writeable' in listing entry (Dirent) of InitialWorkDirRequirement (did you mean 'writable'?"
            )),
            "{e}"
        );
        let (e, p) = load_err(
            "t.cwl",
            "cwlVersion: v1.2
class: CommandLineTool
requirements:
  SoftwareRequirement:
    packages:
      samtools: {versions: ['1.9']}
inputs: []
outputs: []
",
        );
        assert!(
            e.contains(&format!(
                "{p}:6:18: unknown field 'versions' in package 'samtools' of SoftwareRequirement (did you mean 'version'?"
            )),
            "{e}"
        );
    }

    #[test]
    fn unknown_fields_in_step_inputs_and_outputs() {
        let wf = "cwlVersion: v1.2
class: Workflow
inputs: {m: string}
outputs: {}
steps:
  a:
    run: {class: ExpressionTool, inputs: [msg], outputs: [], expression: '$({})'}
    in:
      msg: {source: m, valueFrm: x}
    out: []
";
        let (e, p) = load_err("wf.cwl", wf);
        assert!(
            e.contains(&format!(
                "{p}:9:24: unknown field 'valueFrm' in input 'msg' of step 'a' (did you mean 'valueFrom'? expected one of: id, source, linkMerge, pickValue, loadContents, loadListing, label, default, valueFrom)"
            )),
            "{e}"
        );
        let wf = "cwlVersion: v1.2
class: Workflow
inputs: {m: string}
outputs: {}
steps:
  - id: a
    run: {class: ExpressionTool, inputs: [msg], outputs: [x], expression: '$({})'}
    in:
      - id: msg
        source: m
    out:
      - id: x
        doc: nope
    requirements:
      ResourceRequirement: {coresMin: 1, ramMn: 2}
";
        let (e, p) = load_err("wf.cwl", wf);
        assert!(
            e.contains(&format!(
                "{p}:13:9: unknown field 'doc' in output 'x' of step 'a' (expected one of: id)"
            )),
            "{e}"
        );
        let (e, p) = load_err("wf.cwl", &wf.replace("        doc: nope\n", ""));
        assert!(
            e.contains(&format!(
                "{p}:14:42: unknown field 'ramMn' in ResourceRequirement of step 'a'"
            )),
            "{e}"
        );
    }

    #[test]
    fn lenient_where_the_spec_allows() {
        // Extensions and URIs anywhere, anything under hints, unknown
        // requirement classes, and v1.0 fields in v1.0 documents.
        load_ok(
            "cwlVersion: v1.2
class: CommandLineTool
$namespaces: {cwltool: 'http://commonwl.org/cwltool#'}
baseCommand: echo
requirements:
  DockerRequirement: {dockerPull: debian, 'cwltool:extra': 1}
  cwltool:Secrets: {secrets: [a]}
  InlineJavascriptRequirement: {}
  ShellCommandRequirement:
hints:
  DockerRequirement: {dockerPull: debian, anything: 1}
  ResourceRequirement: {ramMn: 1}
  Whatever: {at: all}
inputs:
  a:
    type: string
    'cwltool:foo': 1
    'http://example.com/x': 2
    inputBinding: {position: 1, 's:note': 1}
outputs:
  o:
    type: stdout
    'arv:bar': 1
stdout: o.txt
",
        );
        load_ok(
            "cwlVersion: v1.0
class: Workflow
inputs:
  a:
    type: File
    inputBinding: {position: 1}
    secondaryFiles: .bai
outputs:
  o:
    type: File
    outputSource: a
    outputBinding: {glob: x}
steps: []
",
        );
        load_ok(
            "cwlVersion: v1.2
class: Workflow
requirements:
  StepInputExpressionRequirement: {}
  MultipleInputFeatureRequirement: {}
inputs: {a: string, b: 'string?'}
outputs:
  o: {type: string, outputSource: [s/x], pickValue: first_non_null, linkMerge: merge_flattened}
steps:
  s:
    run:
      class: ExpressionTool
      inputs:
        a: {type: string, loadContents: false, inputBinding: {loadContents: false}}
      outputs: {x: string}
      expression: '$({x: inputs.a})'
    in:
      a: {source: [a, b], pickValue: first_non_null, valueFrom: $(self), default: x, label: l}
      b: a
      c: {}
    out: [{id: x}]
    when: $(true)
",
        );
    }
}
