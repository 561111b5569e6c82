//! Checking: the version a document declares and the features it may use,
//! process classes, and unknown fields at every level (processes, steps,
//! parameters, bindings, schemas, requirements), with the position of the
//! offending field and the names expected.

use super::position::{at, did_you_mean, show, unknown_field};
use super::resolve::shortname;
use crate::error::{CwlError, Result, verr};
use serde_json::{Map, Value};
use std::path::Path;

pub(crate) fn check_version(p: &Value, path: &Path) -> Result<()> {
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

pub(crate) fn version_of(doc: &Value, default: &str) -> String {
    doc.get("cwlVersion")
        .and_then(Value::as_str)
        .unwrap_or(default)
        .to_string()
}

/// Reject features newer than the document's declared `cwlVersion`.
pub(crate) fn check_version_features(
    m: &Map<String, Value>,
    version: &str,
    file: &Path,
) -> Result<()> {
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

/// The class of process `m` is one this engine runs (an `Operation` is
/// unsupported), and `m` has no unknown fields.
pub(crate) fn process_fields(m: &Map<String, Value>, file: &Path) -> Result<String> {
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
                at(file, None, m)
            ));
        }
        c => {
            return verr(format!(
                "{}: class: unknown process class {} (expected one of: CommandLineTool, ExpressionTool, Workflow, Operation)",
                at(file, Some("class"), m),
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
            at(file, Some(k), m),
            unknown_field(k, &class, &expected_fields(&class))
        ));
    }
    Ok(class)
}

/// The fields a workflow step may have.
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

/// Step `id` (`m`) has no unknown fields.
pub(crate) fn step_fields(m: &Map<String, Value>, id: &str, file: &Path) -> Result<()> {
    if let Some(k) = m
        .keys()
        .find(|k| !STEP_FIELDS.contains(&k.as_str()) && !k.contains(':'))
    {
        return verr(format!(
            "{}: {}",
            at(file, Some(k), m),
            unknown_field(k, &format!("step {}", show(id)), STEP_FIELDS)
        ));
    }
    Ok(())
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
pub(crate) fn check_nested_fields(
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

/// The types CWL names itself.
const BUILTIN_TYPES: [&str; 12] = [
    "null",
    "boolean",
    "int",
    "long",
    "float",
    "double",
    "string",
    "File",
    "Directory",
    "Any",
    "stdout",
    "stderr",
];

/// Every type a loaded process (its steps' processes included) names is
/// one of CWL's or a schema the document defines somewhere (in a
/// `SchemaDefRequirement`, or a named record, enum or array): a misspelt
/// type is refused when the document is loaded, not when a run gets there.
/// `file` is the main document, for the message.
pub(crate) fn check_type_names(process: &Value, file: &Path) -> Result<()> {
    let mut defined = std::collections::HashSet::new();
    collect_defined(process, &mut defined, 0);
    check_process_types(process, &defined, file, 0)
}

fn collect_defined(v: &Value, out: &mut std::collections::HashSet<String>, depth: usize) {
    if depth > 256 {
        return;
    }
    match v {
        Value::Object(m) => {
            if let Some(Value::String(n)) = m.get("name")
                && matches!(
                    m.get("type").and_then(Value::as_str),
                    Some("record" | "enum" | "array")
                )
            {
                out.insert(shortname(n));
            }
            for x in m.values() {
                collect_defined(x, out, depth + 1);
            }
        }
        Value::Array(a) => {
            for x in a {
                collect_defined(x, out, depth + 1);
            }
        }
        _ => {}
    }
}

fn check_process_types(
    p: &Value,
    defined: &std::collections::HashSet<String>,
    file: &Path,
    depth: usize,
) -> Result<()> {
    if depth > 64 {
        return Ok(());
    }
    let process = p.get("id").and_then(Value::as_str).unwrap_or("");
    for key in ["inputs", "outputs"] {
        for param in p.get(key).and_then(Value::as_array).into_iter().flatten() {
            if let Some(t) = param.get("type")
                && let Err(bad) = known_type(t, defined, 0)
            {
                let name = param.get("id").and_then(Value::as_str).unwrap_or("");
                let builtin: Vec<&str> = BUILTIN_TYPES.to_vec();
                let hint = did_you_mean(&bad, &builtin)
                    .map(|m| format!(" (did you mean '{m}'?)"))
                    .unwrap_or_default();
                let of = if process.is_empty() {
                    String::new()
                } else {
                    format!(" of {}", show(&shortname(process)))
                };
                return verr(format!(
                    "{}: {} {}{of}: unknown type {}{hint}; a type is one of {} or a schema the document defines",
                    file.display(),
                    &key[..key.len() - 1],
                    show(name),
                    show(&bad),
                    BUILTIN_TYPES.join(", ")
                ));
            }
        }
    }
    for step in p
        .get("steps")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(run) = step.get("run").filter(|r| r.is_object()) {
            check_process_types(run, defined, file, depth + 1)?;
        }
    }
    Ok(())
}

/// `Ok` when every name in type `t` is known; else the first unknown one.
fn known_type(
    t: &Value,
    defined: &std::collections::HashSet<String>,
    depth: usize,
) -> std::result::Result<(), String> {
    if depth > 64 {
        return Ok(());
    }
    match t {
        Value::String(s) => {
            if BUILTIN_TYPES.contains(&s.as_str()) || defined.contains(&shortname(s)) {
                Ok(())
            } else {
                Err(s.clone())
            }
        }
        Value::Array(alts) => alts
            .iter()
            .try_for_each(|a| known_type(a, defined, depth + 1)),
        Value::Object(m) => match m.get("type") {
            Some(Value::String(k)) if k == "array" => m
                .get("items")
                .map_or(Ok(()), |i| known_type(i, defined, depth + 1)),
            Some(Value::String(k)) if k == "record" => m
                .get("fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|f| f.get("type"))
                .try_for_each(|ft| known_type(ft, defined, depth + 1)),
            Some(Value::String(k)) if k == "enum" => Ok(()),
            Some(inner) => known_type(inner, defined, depth + 1),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}
