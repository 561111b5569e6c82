//! What a checked process is, for people and programs that show it
//! (`insitu-cwl describe`): its inputs with their types and defaults (a
//! form can be made from them), its outputs and, for a workflow, its steps
//! with the links between them, subworkflows described the same way.
//!
//! The description is made from the loader's normalised process, so ids
//! are short, types are in their long form (`File[]` is
//! `{"type": "array", "items": "File"}`, `string?` is `["null", "string"]`)
//! and a step's `run` is the process itself, whatever document it came
//! from.

use serde_json::{Map, Value, json};

/// The description of `p` (see the module).
pub fn describe(p: &Value) -> Value {
    let mut d = Map::new();
    for key in ["class", "id", "label", "doc", "cwlVersion"] {
        if let Some(v) = p.get(key).filter(|v| !v.is_null()) {
            d.insert(key.to_string(), text_of(v));
        }
    }
    let params = |key: &str| -> Vec<Value> {
        p.get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(parameter)
            .collect()
    };
    d.insert("inputs".into(), Value::Array(params("inputs")));
    d.insert("outputs".into(), Value::Array(params("outputs")));
    if let Some(steps) = p.get("steps").and_then(Value::as_array) {
        d.insert(
            "steps".into(),
            Value::Array(steps.iter().map(step).collect()),
        );
    }
    let schemas: Vec<Value> = p
        .get("requirements")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| r.get("class").and_then(Value::as_str) == Some("SchemaDefRequirement"))
        .filter_map(|r| r.get("types").cloned())
        .collect();
    if !schemas.is_empty() {
        d.insert("schemas".into(), Value::Array(schemas));
    }
    Value::Object(d)
}

/// `doc` may be a list of lines; everything else shown as it is.
fn text_of(v: &Value) -> Value {
    match v {
        Value::Array(lines) => Value::String(
            lines
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        other => other.clone(),
    }
}

/// One input or output parameter.
fn parameter(p: &Value) -> Value {
    let mut d = Map::new();
    d.insert("id".into(), p.get("id").cloned().unwrap_or(Value::Null));
    d.insert(
        "type".into(),
        p.get("type").cloned().unwrap_or(json!("Any")),
    );
    for key in ["label", "doc", "default", "format", "secondaryFiles"] {
        if let Some(v) = p.get(key).filter(|v| !v.is_null()) {
            let v = if key == "doc" { text_of(v) } else { v.clone() };
            d.insert(key.into(), v);
        }
    }
    if let Some(src) = p.get("outputSource") {
        d.insert("source".into(), Value::Array(sources(src)));
    }
    Value::Object(d)
}

/// A `source` or `outputSource`, always a list.
fn sources(v: &Value) -> Vec<Value> {
    match v {
        Value::String(_) => vec![v.clone()],
        Value::Array(a) => a.iter().filter(|s| s.is_string()).cloned().collect(),
        _ => vec![],
    }
}

/// One workflow step.
fn step(s: &Value) -> Value {
    let mut d = Map::new();
    d.insert("id".into(), s.get("id").cloned().unwrap_or(Value::Null));
    for key in ["label", "doc"] {
        if let Some(v) = s.get(key).filter(|v| !v.is_null()) {
            d.insert(key.into(), text_of(v));
        }
    }
    let ins: Vec<Value> = s
        .get("in")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|i| {
            let mut m = Map::new();
            m.insert("id".into(), i.get("id").cloned().unwrap_or(Value::Null));
            m.insert(
                "source".into(),
                Value::Array(i.get("source").map(sources).unwrap_or_default()),
            );
            if let Some(v) = i.get("default") {
                m.insert("default".into(), v.clone());
            }
            m.insert("value_from".into(), json!(i.get("valueFrom").is_some()));
            Value::Object(m)
        })
        .collect();
    d.insert("in".into(), Value::Array(ins));
    let outs: Vec<Value> = s
        .get("out")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|o| match o {
            Value::Object(m) => m.get("id").cloned().unwrap_or(Value::Null),
            other => other.clone(),
        })
        .collect();
    d.insert("out".into(), Value::Array(outs));
    let scatter = s.get("scatter").map(sources).unwrap_or_default();
    if !scatter.is_empty() {
        d.insert("scatter".into(), Value::Array(scatter));
        d.insert(
            "scatter_method".into(),
            s.get("scatterMethod")
                .cloned()
                .unwrap_or(json!("dotproduct")),
        );
    }
    d.insert("conditional".into(), json!(s.get("when").is_some()));
    d.insert(
        "run".into(),
        s.get("run").map(describe).unwrap_or(Value::Null),
    );
    Value::Object(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workflow_is_described_with_its_links_and_subworkflows() {
        let p = json!({
            "class": "Workflow", "id": "main", "doc": ["two", "lines"],
            "inputs": [{"id": "files", "type": {"type": "array", "items": "File"}},
                       {"id": "n", "type": "int", "default": 3}],
            "outputs": [{"id": "out", "type": "File", "outputSource": "b/out"}],
            "steps": [
                {"id": "a", "in": [{"id": "f", "source": "files"}], "out": ["out"],
                 "scatter": ["f"], "run": {"class": "CommandLineTool", "inputs": [], "outputs": []}},
                {"id": "b", "in": [{"id": "x", "source": ["a/out"], "valueFrom": "$(self)"}],
                 "out": [{"id": "out"}], "when": "$(true)",
                 "run": {"class": "Workflow", "inputs": [], "outputs": [], "steps": []}}
            ]
        });
        let d = describe(&p);
        assert_eq!(d["doc"], "two\nlines");
        assert_eq!(d["inputs"][1]["default"], 3);
        assert_eq!(d["outputs"][0]["source"], json!(["b/out"]));
        assert_eq!(d["steps"][0]["in"][0]["source"], json!(["files"]));
        assert_eq!(d["steps"][0]["scatter"], json!(["f"]));
        assert_eq!(d["steps"][0]["scatter_method"], "dotproduct");
        assert_eq!(d["steps"][1]["out"], json!(["out"]));
        assert_eq!(d["steps"][1]["conditional"], true);
        assert_eq!(d["steps"][1]["in"][0]["value_from"], true);
        assert_eq!(d["steps"][1]["run"]["class"], "Workflow");
        assert_eq!(d["steps"][1]["run"]["steps"], json!([]));
    }
}
