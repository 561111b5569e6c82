//! CWL types of values: named schemas, whether a value matches a type,
//! optional types.

use serde_json::Value;
use std::collections::HashMap;

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
    use serde_json::json;

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
