//! Binding: the command line of a CommandLineTool from its `baseCommand`,
//! `arguments` and the `inputBinding`s of its inputs (positions, prefixes,
//! item separators, records, `valueFrom`), quoted for a shell when
//! `ShellCommandRequirement` asks for one.

use crate::error::Result;
use crate::expr::{Evaluator, Scope};
use crate::types::{self, Schemas};
use serde_json::{Value, json};
use std::cmp::Ordering;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum KeyPart {
    Int(i64),
    Str(String),
}

struct Arg {
    s: String,
    quote: bool,
}

/// The argv of a CommandLineTool: `baseCommand`, then the `arguments` and
/// bound inputs in position order; with `shell`, one `/bin/sh -c` line.
pub fn command_line(
    p: &Value,
    ev: &Evaluator,
    scope: &Scope,
    schemas: &Schemas,
    shell: bool,
) -> Result<Vec<String>> {
    let mut keyed = arguments(p, ev, scope, schemas)?;
    keyed.extend(bound_inputs(p, ev, scope, schemas)?);
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
    if !shell {
        return Ok(argv.into_iter().map(|a| a.s).collect());
    }
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
    Ok(vec!["/bin/sh".into(), "-c".into(), line])
}

/// Arguments with their sort keys.
type Keyed = Vec<(Vec<KeyPart>, Vec<Arg>)>;

/// The `arguments` of a tool, keyed by position and then order.
fn arguments(p: &Value, ev: &Evaluator, scope: &Scope, schemas: &Schemas) -> Result<Keyed> {
    let mut keyed = vec![];
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
                let key = key_of(&pos, KeyPart::Int(i as i64), ev, scope)?;
                let vf = a.get("valueFrom").cloned().unwrap_or(Value::Null);
                let v = ev.eval(&vf, scope)?;
                let mut b = a.clone();
                if let Value::Object(bm) = &mut b {
                    bm.remove("valueFrom");
                }
                keyed.push((key, bind(&v, &json!("Any"), Some(&b), ev, scope, schemas)?));
            }
            other => {
                let key = vec![KeyPart::Int(0), KeyPart::Int(i as i64)];
                let v = ev.eval(other, scope)?;
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
    Ok(keyed)
}

/// The inputs with a binding (on the input, or on the fields of a record
/// it holds), keyed by position and then name.
fn bound_inputs(p: &Value, ev: &Evaluator, scope: &Scope, schemas: &Schemas) -> Result<Keyed> {
    let mut keyed = vec![];
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
        let sel = select_type(&v, &t, schemas);
        let nested = matches!(&sel, Value::Object(m) if m.contains_key("inputBinding") || m.get("type").and_then(Value::as_str) == Some("record"));
        if b.is_none() && !nested {
            continue;
        }
        if b.is_none() && sel.get("type").and_then(Value::as_str) == Some("record") {
            if let Value::Object(vm) = &v {
                keyed.extend(record_fields(id, vm, &sel, ev, scope, schemas)?);
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
        let key = key_of(&pos, KeyPart::Str(id.to_string()), ev, &s)?;
        keyed.push((key, bind(&v, &t, b, ev, &s, schemas)?));
    }
    Ok(keyed)
}

/// The bound fields of record input `id` (value `vm`, type `sel`) that has
/// no binding of its own.
fn record_fields(
    id: &str,
    vm: &serde_json::Map<String, Value>,
    sel: &Value,
    ev: &Evaluator,
    scope: &Scope,
    schemas: &Schemas,
) -> Result<Keyed> {
    let mut keyed = vec![];
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
        let key = key_of(&pos, KeyPart::Str(format!("{id}.{name}")), ev, &s)?;
        keyed.push((key, bind(&fv, &ft, Some(fb), ev, &s, schemas)?));
    }
    Ok(keyed)
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

/// The command-line text of a value (a File or Directory: its path).
pub fn value_str(v: &Value) -> String {
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
    let t = types::resolve_type(t, schemas).clone();
    match &t {
        Value::Array(alts) => {
            for a in alts {
                if types::matches(v, a, schemas) {
                    return types::resolve_type(a, schemas).clone();
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
                if fb.is_none() && !matches!(types::resolve_type(&ft, schemas), Value::Object(_)) {
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
