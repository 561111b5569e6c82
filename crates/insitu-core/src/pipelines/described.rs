//! A pipeline as the engine describes it (`insitu-cwl describe`): its
//! inputs with their types (what a run's form is made from and a job
//! order is checked against), its outputs and its steps with their links
//! (what the graph is drawn from). Types are read once into [`CwlType`].

use serde::Serialize;
use serde_json::Value;

/// A CWL type, as far as forms and job checks need it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CwlType {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    String,
    File,
    Directory,
    Any,
    Array {
        items: Box<CwlType>,
    },
    Enum {
        symbols: Vec<String>,
    },
    Record {
        fields: Vec<Field>,
    },
    /// One of several (`string?` is a union of null and string).
    Union {
        of: Vec<CwlType>,
    },
    /// A named type this description does not define.
    Named {
        name: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Field {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: CwlType,
    pub doc: Option<String>,
}

/// The last part of a CWL identifier (`#main/x/symbol` is `symbol`).
fn short(s: &str) -> String {
    s.rsplit(['/', '#']).next().unwrap_or(s).to_owned()
}

impl CwlType {
    /// Reads a normalised type; `schemas` are the named record and enum
    /// types of `SchemaDefRequirement`.
    pub fn parse(v: &Value, schemas: &[Value]) -> CwlType {
        CwlType::parse_depth(v, schemas, 0)
    }

    fn parse_depth(v: &Value, schemas: &[Value], depth: usize) -> CwlType {
        if depth > 16 {
            return CwlType::Any;
        }
        match v {
            Value::String(s) => match s.as_str() {
                "null" => CwlType::Null,
                "boolean" => CwlType::Boolean,
                "int" => CwlType::Int,
                "long" => CwlType::Long,
                "float" => CwlType::Float,
                "double" => CwlType::Double,
                "string" => CwlType::String,
                "File" => CwlType::File,
                "Directory" => CwlType::Directory,
                "Any" => CwlType::Any,
                other => schemas
                    .iter()
                    .find(|d| {
                        d.get("name").and_then(Value::as_str).map(short) == Some(short(other))
                    })
                    .map(|d| CwlType::parse_depth(d, schemas, depth + 1))
                    .unwrap_or(CwlType::Named {
                        name: other.to_owned(),
                    }),
            },
            Value::Array(of) => {
                let of: Vec<CwlType> = of
                    .iter()
                    .map(|t| CwlType::parse_depth(t, schemas, depth + 1))
                    .collect();
                match <[CwlType; 1]>::try_from(of) {
                    Ok([one]) => one,
                    Err(of) => CwlType::Union { of },
                }
            }
            Value::Object(m) => match m.get("type").and_then(Value::as_str) {
                Some("array") => CwlType::Array {
                    items: Box::new(CwlType::parse_depth(
                        m.get("items").unwrap_or(&Value::Null),
                        schemas,
                        depth + 1,
                    )),
                },
                Some("enum") => CwlType::Enum {
                    symbols: m
                        .get("symbols")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(short)
                        .collect(),
                },
                Some("record") => CwlType::Record {
                    fields: m
                        .get("fields")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .map(|f| Field {
                            name: f
                                .get("name")
                                .and_then(Value::as_str)
                                .map(short)
                                .unwrap_or_default(),
                            ty: CwlType::parse_depth(
                                f.get("type").unwrap_or(&Value::Null),
                                schemas,
                                depth + 1,
                            ),
                            doc: f.get("doc").and_then(Value::as_str).map(str::to_owned),
                        })
                        .collect(),
                },
                Some(_) | None => match m.get("type") {
                    Some(inner @ (Value::Array(_) | Value::Object(_))) => {
                        CwlType::parse_depth(inner, schemas, depth + 1)
                    }
                    _ => CwlType::Any,
                },
            },
            _ => CwlType::Any,
        }
    }

    /// Whether a missing value is allowed (`null` among the choices).
    pub fn is_optional(&self) -> bool {
        match self {
            CwlType::Null | CwlType::Any => true,
            CwlType::Union { of } => of.iter().any(CwlType::is_optional),
            _ => false,
        }
    }

    /// The type without `null`: what a form asks for.
    pub fn required(&self) -> CwlType {
        match self {
            CwlType::Union { of } => {
                let rest: Vec<CwlType> = of
                    .iter()
                    .filter(|t| **t != CwlType::Null)
                    .cloned()
                    .collect();
                match <[CwlType; 1]>::try_from(rest) {
                    Ok([one]) => one,
                    Err(rest) => CwlType::Union { of: rest },
                }
            }
            other => other.clone(),
        }
    }

    /// How people write the type (`File[]`, `string?`, `enum(a|b)`).
    pub fn display(&self) -> String {
        match self {
            CwlType::Null => "null".into(),
            CwlType::Boolean => "boolean".into(),
            CwlType::Int => "int".into(),
            CwlType::Long => "long".into(),
            CwlType::Float => "float".into(),
            CwlType::Double => "double".into(),
            CwlType::String => "string".into(),
            CwlType::File => "File".into(),
            CwlType::Directory => "Directory".into(),
            CwlType::Any => "Any".into(),
            CwlType::Array { items } => format!("{}[]", items.display()),
            CwlType::Enum { symbols } => format!("enum({})", symbols.join("|")),
            CwlType::Record { fields } => {
                let f: Vec<String> = fields
                    .iter()
                    .map(|f| format!("{}: {}", f.name, f.ty.display()))
                    .collect();
                format!("record{{{}}}", f.join(", "))
            }
            CwlType::Union { of } => {
                let rest: Vec<&CwlType> = of.iter().filter(|t| **t != CwlType::Null).collect();
                match (rest.as_slice(), of.len() > rest.len()) {
                    ([one], true) => format!("{}?", one.display()),
                    _ => {
                        let all: Vec<String> = of.iter().map(CwlType::display).collect();
                        all.join(" | ")
                    }
                }
            }
            CwlType::Named { name } => short(name),
        }
    }

    /// Why `v` is not a value of this type, if it is not: the path of the
    /// offending part and what was expected. Files and directories are
    /// objects of their class with a `location`, a `path` or (files)
    /// `contents`.
    pub fn check(&self, v: &Value) -> Result<(), String> {
        self.check_depth(v, 0)
    }

    fn check_depth(&self, v: &Value, depth: usize) -> Result<(), String> {
        let expected = || format!("expected {}, got {}", self.display(), kind_of(v));
        if depth > 32 {
            return Err("the value is nested too deeply".into());
        }
        let ok = match (self, v) {
            (CwlType::Any, Value::Null) => false,
            (CwlType::Any | CwlType::Named { .. }, _) => true,
            (CwlType::Null, Value::Null) => true,
            (CwlType::Boolean, Value::Bool(_)) => true,
            (CwlType::Int | CwlType::Long, Value::Number(n)) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            (CwlType::Float | CwlType::Double, Value::Number(_)) => true,
            (CwlType::String, Value::String(_)) => true,
            (CwlType::File, Value::Object(m)) => {
                class_is(m, "File")
                    && (m.contains_key("location")
                        || m.contains_key("path")
                        || m.contains_key("contents"))
            }
            (CwlType::Directory, Value::Object(m)) => {
                class_is(m, "Directory")
                    && (m.contains_key("location")
                        || m.contains_key("path")
                        || m.contains_key("listing"))
            }
            (CwlType::Enum { symbols }, Value::String(s)) => {
                if symbols.iter().any(|sym| sym == s) {
                    true
                } else {
                    return Err(format!(
                        "{s:?} is not one of {}",
                        symbols
                            .iter()
                            .map(|s| format!("{s:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
            (CwlType::Array { items }, Value::Array(values)) => {
                for (i, item) in values.iter().enumerate() {
                    items
                        .check_depth(item, depth + 1)
                        .map_err(|e| format!("[{i}]: {e}"))?;
                }
                true
            }
            (CwlType::Record { fields }, Value::Object(m)) => {
                for f in fields {
                    match m.get(&f.name) {
                        None | Some(Value::Null) if f.ty.is_optional() => {}
                        None => return Err(format!(".{}: missing ({})", f.name, f.ty.display())),
                        Some(value) => {
                            f.ty.check_depth(value, depth + 1)
                                .map_err(|e| format!(".{}: {e}", f.name))?
                        }
                    }
                }
                if let Some(extra) = m.keys().find(|k| !fields.iter().any(|f| f.name == **k)) {
                    return Err(format!(".{extra}: not a field of {}", self.display()));
                }
                true
            }
            (CwlType::Union { of }, _) => {
                let mut first = None;
                for t in of {
                    match t.check_depth(v, depth + 1) {
                        Ok(()) => return Ok(()),
                        // The reason from the one choice of the value's
                        // kind, if any, says most.
                        Err(e) if first.is_none() && same_kind(t, v) => first = Some(e),
                        Err(_) => {}
                    }
                }
                return Err(first.unwrap_or_else(expected));
            }
            _ => false,
        };
        if ok { Ok(()) } else { Err(expected()) }
    }
}

fn class_is(m: &serde_json::Map<String, Value>, class: &str) -> bool {
    m.get("class").and_then(Value::as_str) == Some(class)
}

fn same_kind(t: &CwlType, v: &Value) -> bool {
    matches!(
        (t, v),
        (CwlType::Array { .. }, Value::Array(_))
            | (CwlType::Record { .. }, Value::Object(_))
            | (CwlType::File | CwlType::Directory, Value::Object(_))
            | (CwlType::Enum { .. }, Value::String(_))
    )
}

/// How a JSON value is named in messages.
pub fn kind_of(v: &Value) -> String {
    match v {
        Value::Null => "nothing".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(n) if n.is_f64() => "a decimal number".into(),
        Value::Number(_) => "a whole number".into(),
        Value::String(_) => "a string".into(),
        Value::Array(_) => "a list".into(),
        Value::Object(m) => match m.get("class").and_then(Value::as_str) {
            Some(c) => format!("a {c}"),
            None => "an object".into(),
        },
    }
}

/// One input or output of a process.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Param {
    pub id: String,
    #[serde(rename = "type")]
    pub ty: CwlType,
    pub label: Option<String>,
    pub doc: Option<String>,
    pub default: Option<Value>,
    /// For outputs: the step outputs (or inputs) they come from.
    pub source: Vec<String>,
}

/// One input of a step and where its value comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepInput {
    pub id: String,
    pub source: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub id: String,
    pub label: Option<String>,
    pub inputs: Vec<StepInput>,
    pub outputs: Vec<String>,
    pub scatter: Vec<String>,
    pub conditional: bool,
    /// The step's process.
    pub run: Box<Process>,
}

/// A described process: a tool, an expression or a workflow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Process {
    pub class: String,
    pub label: Option<String>,
    pub doc: Option<String>,
    pub inputs: Vec<Param>,
    pub outputs: Vec<Param>,
    pub steps: Vec<Step>,
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(short_source)
        .collect()
}

/// A source as the workflow names it: `step/output` or an input, without
/// the document's own prefix.
fn short_source(s: &str) -> String {
    let s = s.trim_start_matches('#');
    let s = s.strip_prefix("main/").unwrap_or(s);
    s.to_owned()
}

impl Process {
    /// Reads `insitu-cwl describe`'s output.
    pub fn from_description(d: &Value) -> Process {
        Process::read(d, &[], 0)
    }

    fn read(d: &Value, outer: &[Value], depth: usize) -> Process {
        let mut schemas: Vec<Value> = outer.to_vec();
        schemas.extend(
            d.get("schemas")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_array)
                .flatten()
                .cloned(),
        );
        let params = |key: &str| -> Vec<Param> {
            d.get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| Param {
                    id: p
                        .get("id")
                        .and_then(Value::as_str)
                        .map(short)
                        .unwrap_or_default(),
                    ty: CwlType::parse(p.get("type").unwrap_or(&Value::Null), &schemas),
                    label: text(p, "label"),
                    doc: text(p, "doc"),
                    default: p.get("default").cloned(),
                    source: strings(p.get("source")),
                })
                .collect()
        };
        let steps = if depth > 8 {
            Vec::new()
        } else {
            d.get("steps")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|s| Step {
                    id: s
                        .get("id")
                        .and_then(Value::as_str)
                        .map(short)
                        .unwrap_or_default(),
                    label: text(s, "label"),
                    inputs: s
                        .get("in")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .map(|i| StepInput {
                            id: i
                                .get("id")
                                .and_then(Value::as_str)
                                .map(short)
                                .unwrap_or_default(),
                            source: strings(i.get("source")),
                        })
                        .collect(),
                    outputs: s
                        .get("out")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(short)
                        .collect(),
                    scatter: strings(s.get("scatter")),
                    conditional: s.get("conditional").and_then(Value::as_bool) == Some(true),
                    run: Box::new(Process::read(
                        s.get("run").unwrap_or(&Value::Null),
                        &schemas,
                        depth + 1,
                    )),
                })
                .collect()
        };
        Process {
            class: text(d, "class").unwrap_or_default(),
            label: text(d, "label"),
            doc: text(d, "doc"),
            inputs: params("inputs"),
            outputs: params("outputs"),
            steps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn types_read_show_and_check_values() {
        let files = CwlType::parse(&json!({"type": "array", "items": "File"}), &[]);
        assert_eq!(files.display(), "File[]");
        assert!(
            files
                .check(&json!([{"class": "File", "path": "/home/user/a.fits"}]))
                .is_ok()
        );
        assert_eq!(
            files.check(&json!("a.fits")).unwrap_err(),
            "expected File[], got a string"
        );
        assert_eq!(
            files
                .check(&json!([{"class": "Directory", "path": "/x"}]))
                .unwrap_err(),
            "[0]: expected File, got a Directory"
        );
        let maybe = CwlType::parse(&json!(["null", "int"]), &[]);
        assert_eq!(maybe.display(), "int?");
        assert!(maybe.is_optional() && maybe.check(&json!(null)).is_ok());
        assert_eq!(maybe.required(), CwlType::Int);
        assert!(maybe.check(&json!(2.5)).is_err());
        let schemas = [
            json!({"name": "#stretch", "type": "enum", "symbols": ["#stretch/linear", "#stretch/log"]}),
        ];
        let e = CwlType::parse(&json!("#stretch"), &schemas);
        assert_eq!(e.display(), "enum(linear|log)");
        assert!(e.check(&json!("log")).is_ok());
        assert_eq!(
            e.check(&json!("cubic")).unwrap_err(),
            "\"cubic\" is not one of \"linear\", \"log\""
        );
        let rec = CwlType::parse(
            &json!({"type": "record", "fields": [
                {"name": "#r/glon", "type": "double"},
                {"name": "#r/name", "type": ["null", "string"]}]}),
            &[],
        );
        assert!(rec.check(&json!({"glon": 1.5})).is_ok());
        assert_eq!(
            rec.check(&json!({"glon": "x"})).unwrap_err(),
            ".glon: expected double, got a string"
        );
        assert!(rec.check(&json!({"glon": 1, "size": 2})).is_err());
        assert!(CwlType::Any.check(&json!(null)).is_err());
    }

    #[test]
    fn a_description_becomes_a_process_with_short_ids() {
        let d = json!({
            "class": "Workflow", "label": "Find stars",
            "inputs": [{"id": "#main/images", "type": {"type": "array", "items": "File"}}],
            "outputs": [{"id": "#main/catalogue", "type": "File", "source": ["#main/merge/out"]}],
            "steps": [{"id": "#main/merge", "in": [{"id": "#main/merge/x", "source": ["#main/images"]}],
                       "out": ["#main/merge/out"], "scatter": [], "conditional": false,
                       "run": {"class": "CommandLineTool", "inputs": [], "outputs": []}}]
        });
        let p = Process::from_description(&d);
        assert_eq!(p.inputs[0].id, "images");
        assert_eq!(p.outputs[0].source, ["merge/out"]);
        assert_eq!(p.steps[0].id, "merge");
        assert_eq!(p.steps[0].inputs[0].source, ["images"]);
        assert_eq!(p.steps[0].outputs, ["out"]);
    }
}
