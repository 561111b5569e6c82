//! Parsing: the text of a document (YAML 1.2 or JSON) into a JSON value,
//! integers wider than 64 bits kept exact.

use crate::error::{CwlError, Result};
use serde_json::Value;

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
