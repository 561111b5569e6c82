//! Source positions for error messages.
//!
//! Loading keeps no positions (it is on the hot path and the values are plain
//! `serde_json::Value`s). When a validation error is reported, the document is
//! read again and its text run through the YAML event parser (JSON is YAML
//! too): every mapping with the positions of its scalar keys. The object the
//! error is about is then found as the mapping that holds the offending key and
//! shares the most keys (and string values) with it — which also works after
//! normalisation turned maps into lists, and across `$graph` entries.

use super::resolve::{read_document, shortname};
use serde_json::{Map, Value};
use std::path::Path;

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
pub(crate) fn locate(
    text: &str,
    key: Option<&str>,
    obj: &Map<String, Value>,
) -> Option<(usize, usize)> {
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
pub(crate) fn at(file: &Path, key: Option<&str>, obj: &Map<String, Value>) -> String {
    match read_document(file).ok().and_then(|t| locate(&t, key, obj)) {
        Some((line, col)) => format!("{}:{line}:{col}", file.display()),
        None => file.display().to_string(),
    }
}

/// A key or value for a message: quoted, control characters escaped,
/// shortened when long.
pub(crate) fn show(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    format!("'{}'", out.escape_debug())
}

/// The closest of `known` to `got` when it is a likely typo.
pub(crate) fn did_you_mean<'a>(got: &str, known: &[&'a str]) -> Option<&'a str> {
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
pub(crate) fn unknown_field(k: &str, what: &str, expected: &[&str]) -> String {
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
