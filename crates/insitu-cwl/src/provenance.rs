//! Provenance of a run as a Workflow Run RO-Crate (`--provenance DIR`).
//!
//! While a run goes on, a [`Recorder`] collects one [`Record`] per process
//! execution (the run itself, every workflow step, every scattered job):
//! its inputs and outputs, start and end times, success or error, and for
//! command-line tools the command and exit code. [`write_crate`] then turns
//! them into `DIR/ro-crate-metadata.json` following the Workflow Run Crate
//! and Provenance Run Crate profiles (0.5): the workflow files under
//! `workflow/`, every file a process read or wrote under `data/<sha1>/`,
//! a `CreateAction` per execution, a `ControlAction` per step execution and
//! an `OrganizeAction` for the engine.

use crate::error::Result;
use crate::files;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

/// One execution of a process.
#[derive(Clone, Debug)]
pub struct Record {
    /// Unique within the run, in start order (0 is the run itself).
    pub id: usize,
    /// The enclosing process's record (`None` for the run itself).
    pub parent: Option<usize>,
    /// Step path from the top workflow, e.g. `align` or `sub/sort`.
    pub step: Option<String>,
    /// Position in a scatter.
    pub scatter_index: Option<usize>,
    /// Process class (`CommandLineTool`, `Workflow`, ...).
    pub class: String,
    pub start: SystemTime,
    pub end: SystemTime,
    /// Input object of the execution.
    pub inputs: Value,
    /// Output object (`Null` on failure).
    pub outputs: Value,
    /// The error, when it failed.
    pub error: Option<String>,
    /// What a command-line tool ran.
    pub command: Option<Command>,
}

/// The command of a command-line tool's execution.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Command {
    pub argv: Vec<String>,
    pub exit_code: i32,
    /// Its whole environment.
    pub env: std::collections::BTreeMap<String, String>,
    /// The container image it ran in (`DockerRequirement`).
    pub image: Option<String>,
}

/// Collects [`Record`]s from concurrent executions.
#[derive(Debug, Default)]
pub struct Recorder {
    next: AtomicUsize,
    records: Mutex<Vec<Record>>,
    commands: Mutex<HashMap<usize, Command>>,
}

impl Recorder {
    /// A fresh record id.
    pub fn begin(&self) -> usize {
        self.next.fetch_add(1, Ordering::SeqCst)
    }

    /// Note what record `id` ran: command line, exit code, environment, image.
    pub fn command(&self, id: usize, command: Command) {
        if let Ok(mut m) = self.commands.lock() {
            m.insert(id, command);
        }
    }

    /// Store a finished record.
    pub fn finish(&self, mut r: Record) {
        if let Ok(mut m) = self.commands.lock() {
            r.command = m.remove(&r.id);
        }
        if let Ok(mut v) = self.records.lock() {
            v.push(r);
        }
    }

    /// All records so far, by id.
    pub fn records(&self) -> Vec<Record> {
        let mut v = self.records.lock().map(|v| v.clone()).unwrap_or_default();
        v.sort_by_key(|r| r.id);
        v
    }
}

/// A `ContainerImage` entity for an image name such as
/// `docker.io/debian:stable-slim` (registry, name and tag split out).
fn container_image(iid: &str, image: &str) -> Value {
    let (rest, tag) = match image.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, Some(t)),
        _ => (image, None),
    };
    let (registry, name) = match rest.split_once('/') {
        Some((host, n)) if host.contains('.') || host.contains(':') || host == "localhost" => {
            (Some(host), n)
        }
        _ => (None, rest),
    };
    let mut e = json!({
        "@id": iid, "@type": "ContainerImage",
        "additionalType": id("https://w3id.org/ro/terms/workflow-run#DockerImage"),
        "name": name,
    });
    if let Some(t) = tag {
        e["tag"] = json!(t);
    }
    if let Some(r) = registry {
        e["registry"] = json!(r);
    }
    e
}

/// ISO 8601 UTC time with milliseconds.
pub fn iso8601(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// What the crate describes besides the records.
pub struct CrateInput<'a> {
    /// Document files read while loading, the main one first.
    pub workflow_files: &'a [PathBuf],
    /// The normalised top-level process.
    pub process: &'a Value,
    /// Final output object (files already in the output directory).
    pub outputs: Option<&'a Value>,
}

struct Builder {
    dir: PathBuf,
    graph: Vec<Value>,
    parts: Vec<Value>,
    /// Source path → entity id of copied data.
    copied: HashMap<PathBuf, String>,
    dirs: usize,
}

fn id(s: &str) -> Value {
    json!({ "@id": s })
}

fn sha1_file(p: &Path) -> Option<String> {
    files::checksum(p)
        .ok()
        .map(|c| c.trim_start_matches("sha1$").to_string())
}

impl Builder {
    /// Copy the File/Directory `v` into `data/` (once) and describe it; its id.
    fn data_entity(&mut self, v: &Value, param: Option<&str>) -> Result<Option<String>> {
        let class = v.get("class").and_then(Value::as_str).unwrap_or("");
        let base =
            files::checked_basename(files::Entry::of(v).and_then(|e| e.basename()).as_deref())?;
        let src = v
            .get("location")
            .and_then(Value::as_str)
            .filter(|l| l.starts_with("file://") || l.starts_with('/'))
            .map(files::loc_to_path);
        let key = src
            .as_ref()
            .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()));
        let existing = key.as_ref().and_then(|k| self.copied.get(k)).cloned();
        let eid = match existing {
            Some(e) => e,
            None => {
                let (eid, entity) = match class {
                    "File" => {
                        let (sum, size) = match &src {
                            Some(p) if p.is_file() => (
                                sha1_file(p).unwrap_or_default(),
                                std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
                            ),
                            _ => {
                                let c = v.get("contents").and_then(Value::as_str).unwrap_or("");
                                let tmp = self.dir.join("data/.literal");
                                std::fs::create_dir_all(self.dir.join("data"))?;
                                std::fs::write(&tmp, c)?;
                                let s = sha1_file(&tmp).unwrap_or_default();
                                std::fs::remove_file(&tmp).ok();
                                (s, c.len() as u64)
                            }
                        };
                        let rel = format!("data/{sum}/{base}");
                        let target = self.dir.join(&rel);
                        if !target.exists() {
                            if let Some(d) = target.parent() {
                                std::fs::create_dir_all(d)?;
                            }
                            match &src {
                                Some(p) if p.is_file() => {
                                    std::fs::copy(p, &target)?;
                                }
                                _ => std::fs::write(
                                    &target,
                                    v.get("contents").and_then(Value::as_str).unwrap_or(""),
                                )?,
                            }
                        }
                        (
                            rel.clone(),
                            json!({
                                "@id": rel, "@type": "File", "name": base,
                                "contentSize": size, "sha1": sum,
                                "alternateName": src.as_ref().map(|p| p.display().to_string()).unwrap_or(base.clone()),
                            }),
                        )
                    }
                    _ => {
                        self.dirs += 1;
                        let rel = format!("data/dir{}/{base}/", self.dirs);
                        let target = self.dir.join(&rel);
                        std::fs::create_dir_all(&target)?;
                        if let Some(p) = src.as_ref().filter(|p| p.is_dir()) {
                            files::copy_tree(p, &target, files::ANY_LINK)?;
                        }
                        (
                            rel.clone(),
                            json!({
                                "@id": rel, "@type": "Dataset", "name": base,
                                "alternateName": src.as_ref().map(|p| p.display().to_string()).unwrap_or(base.clone()),
                            }),
                        )
                    }
                };
                if let Some(k) = key {
                    self.copied.insert(k, eid.clone());
                }
                if !self.graph.iter().any(|e| e["@id"] == eid.as_str()) {
                    self.parts.push(id(&eid));
                    self.graph.push(entity);
                }
                eid
            }
        };
        if let Some(param) = param
            && let Some(e) = self.graph.iter_mut().find(|e| e["@id"] == eid.as_str())
        {
            e["exampleOfWork"] = id(param);
        }
        Ok(Some(eid))
    }

    /// Entities for one input or output value: its files, or a PropertyValue.
    fn values(
        &mut self,
        owner: &str,
        obj: &Value,
        params: &HashMap<String, String>,
    ) -> Result<Vec<Value>> {
        let mut out = vec![];
        let Some(m) = obj.as_object() else {
            return Ok(out);
        };
        for (name, v) in m {
            if name.starts_with("__") {
                continue;
            }
            let param = params.get(name).map(String::as_str);
            let mut found = vec![];
            collect_files(v, &mut found);
            if found.is_empty() {
                let pv = format!("#{owner}-{name}");
                let value = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let mut e =
                    json!({"@id": pv, "@type": "PropertyValue", "name": name, "value": value});
                if let Some(p) = param {
                    e["exampleOfWork"] = id(p);
                }
                self.graph.push(e);
                out.push(id(&pv));
            } else {
                for f in found {
                    if let Some(eid) = self.data_entity(&f, param)? {
                        let r = id(&eid);
                        if !out.contains(&r) {
                            out.push(r);
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

fn collect_files(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Object(m) => {
            if matches!(
                m.get("class").and_then(Value::as_str),
                Some("File") | Some("Directory")
            ) {
                out.push(v.clone());
                if let Some(sf) = m.get("secondaryFiles") {
                    collect_files(sf, out);
                }
            } else {
                for x in m.values() {
                    collect_files(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_files(x, out)),
        _ => {}
    }
}

/// The RO-Crate type of a CWL parameter type.
fn additional_type(t: &Value) -> &'static str {
    match t {
        Value::String(s) => match s.trim_end_matches('?') {
            "File" => "File",
            "Directory" => "Dataset",
            "string" => "Text",
            "int" | "long" => "Integer",
            "float" | "double" => "Float",
            "boolean" => "Boolean",
            s if s.ends_with("[]") => "Collection",
            _ => "DataType",
        },
        Value::Array(a) => a
            .iter()
            .find(|x| x.as_str() != Some("null"))
            .map(additional_type)
            .unwrap_or("DataType"),
        Value::Object(m) => match m.get("type").and_then(Value::as_str) {
            Some("array") => "Collection",
            Some("record") => "PropertyValue",
            Some("enum") => "Text",
            _ => "DataType",
        },
        _ => "DataType",
    }
}

/// Id of a parameter (`kind` is `input` or `output`) of the process entity `owner`.
fn param_id(owner: &str, kind: &str, name: &str) -> String {
    let sep = if owner.contains('#') { '/' } else { '#' };
    format!("{owner}{sep}{kind}-{name}")
}

fn params(p: &Value, key: &str, owner: &str, graph: &mut Vec<Value>) -> Vec<Value> {
    let mut refs = vec![];
    for i in p.get(key).and_then(Value::as_array).into_iter().flatten() {
        let name = i.get("id").and_then(Value::as_str).unwrap_or("");
        let pid = param_id(owner, &key[..key.len() - 1], name);
        graph.push(json!({
            "@id": pid, "@type": "FormalParameter", "name": name,
            "additionalType": additional_type(i.get("type").unwrap_or(&Value::Null)),
            "conformsTo": id("https://bioschemas.org/profiles/FormalParameter/1.0-RELEASE"),
        }));
        refs.push(id(&pid));
    }
    refs
}

/// Describe a process and, for workflows, its steps (recursively); `eid` is
/// the process entity, `path` its step path.
fn describe(p: &Value, eid: &str, main: &str, path: &str, graph: &mut Vec<Value>) {
    let class = p.get("class").and_then(Value::as_str).unwrap_or("");
    let mut e = Map::new();
    e.insert("@id".into(), json!(eid));
    let name = p
        .get("label")
        .or_else(|| p.get("id"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| {
            if path.is_empty() {
                main.to_string()
            } else {
                path.to_string()
            }
        });
    e.insert("name".into(), json!(name));
    e.insert("input".into(), json!(params(p, "inputs", eid, graph)));
    e.insert("output".into(), json!(params(p, "outputs", eid, graph)));
    if class == "Workflow" {
        let mut types = vec![
            json!("SoftwareSourceCode"),
            json!("ComputationalWorkflow"),
            json!("HowTo"),
        ];
        if path.is_empty() {
            types.insert(0, json!("File"));
        }
        e.insert("@type".into(), json!(types));
        e.insert(
            "programmingLanguage".into(),
            id("https://w3id.org/workflowhub/workflow-ro-crate#cwl"),
        );
        let mut steps = vec![];
        let mut tools = vec![];
        for (k, s) in p
            .get("steps")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let sid = s.get("id").and_then(Value::as_str).unwrap_or("");
            let spath = if path.is_empty() {
                sid.to_string()
            } else {
                format!("{path}/{sid}")
            };
            let step_id = format!("{main}#{spath}");
            let tool_id = format!("{main}#{spath}/run");
            graph.push(json!({
                "@id": step_id, "@type": "HowToStep", "name": sid,
                "position": k.to_string(), "workExample": id(&tool_id),
            }));
            steps.push(id(&step_id));
            tools.push(id(&tool_id));
            if let Some(run) = s.get("run") {
                describe(run, &tool_id, main, &spath, graph);
            }
        }
        e.insert("step".into(), json!(steps));
        e.insert("hasPart".into(), json!(tools));
    } else {
        let mut types = vec![json!("SoftwareApplication")];
        if path.is_empty() {
            types.insert(0, json!("File"));
            types.push(json!("ComputationalWorkflow"));
            types.push(json!("SoftwareSourceCode"));
            e.insert(
                "programmingLanguage".into(),
                id("https://w3id.org/workflowhub/workflow-ro-crate#cwl"),
            );
        }
        e.insert("@type".into(), json!(types));
        e.insert("description".into(), json!(format!("CWL {class}")));
    }
    graph.push(Value::Object(e));
}

/// Write `dir/ro-crate-metadata.json` (and the files it describes).
pub fn write_crate(dir: &Path, input: &CrateInput<'_>, records: &[Record]) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut b = Builder {
        dir: dir.to_path_buf(),
        graph: vec![],
        parts: vec![],
        copied: HashMap::new(),
        dirs: 0,
    };
    // Workflow files, relative to the main document's directory.
    let main_dir = input
        .workflow_files
        .first()
        .and_then(|f| f.parent())
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut main = String::from("workflow/main.cwl");
    let mut wf_ids: Vec<String> = vec![];
    for (k, f) in input.workflow_files.iter().enumerate() {
        let rel = f
            .strip_prefix(&main_dir)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| PathBuf::from(f.file_name().unwrap_or_default()));
        let rel = format!("workflow/{}", rel.display());
        if wf_ids.contains(&rel) {
            continue;
        }
        let target = dir.join(&rel);
        if let Some(d) = target.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::copy(f, &target)?;
        if k == 0 {
            main = rel.clone();
        }
        wf_ids.push(rel);
    }
    describe(input.process, &main, &main, "", &mut b.graph);
    b.parts.push(id(&main));
    for w in wf_ids.iter().skip(1) {
        b.graph.push(json!({
            "@id": w, "@type": ["File", "SoftwareSourceCode"],
            "encodingFormat": "application/x-yaml",
            "programmingLanguage": id("https://w3id.org/workflowhub/workflow-ro-crate#cwl"),
        }));
        b.parts.push(id(w));
    }
    // Parameter ids of the main process, by name.
    let main_params = |key: &str| -> HashMap<String, String> {
        input
            .process
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|i| i.get("id").and_then(Value::as_str))
            .map(|n| (n.to_string(), param_id(&main, &key[..key.len() - 1], n)))
            .collect()
    };
    let (in_params, out_params) = (main_params("inputs"), main_params("outputs"));
    let none = HashMap::new();
    let mut mentions = vec![];
    let mut controls = vec![];
    let mut run_id = String::from("#run-0");
    let (mut run_start, mut run_end) = (SystemTime::now(), SystemTime::now());
    for r in records {
        let aid = format!("#run-{}", r.id);
        let top = r.parent.is_none();
        let instrument = match &r.step {
            Some(s) => format!("{main}#{s}/run"),
            None => main.clone(),
        };
        let object = b.values(
            &format!("run-{}-in", r.id),
            &r.inputs,
            if top { &in_params } else { &none },
        )?;
        let result = match (top, input.outputs) {
            (true, Some(o)) => b.values(&format!("run-{}-out", r.id), o, &out_params)?,
            _ => b.values(&format!("run-{}-out", r.id), &r.outputs, &none)?,
        };
        let name = match (&r.step, r.scatter_index) {
            (Some(s), Some(i)) => format!("Run of step {s} (scatter job {i})"),
            (Some(s), None) => format!("Run of step {s}"),
            (None, _) => format!("Run of {main}"),
        };
        let mut a = json!({
            "@id": aid, "@type": "CreateAction", "name": name,
            "instrument": id(&instrument),
            "startTime": iso8601(r.start), "endTime": iso8601(r.end),
            "object": object, "result": result,
            "actionStatus": id(if r.error.is_none() {
                "http://schema.org/CompletedActionStatus"
            } else {
                "http://schema.org/FailedActionStatus"
            }),
        });
        if let Some(c) = &r.command {
            a["description"] = json!(format!("{} (exit code {})", c.argv.join(" "), c.exit_code));
            let mut env = vec![];
            for (k, v) in &c.env {
                let eid = format!("#run-{}-env-{}", r.id, k);
                b.graph
                    .push(json!({"@id": eid, "@type": "PropertyValue", "name": k, "value": v}));
                env.push(id(&eid));
            }
            a["environment"] = json!(env);
            if let Some(image) = &c.image {
                let iid = format!("#image-{image}");
                if !b.graph.iter().any(|e| e["@id"] == iid.as_str()) {
                    b.graph.push(container_image(&iid, image));
                }
                a["containerImage"] = id(&iid);
            }
        }
        if let Some(e) = &r.error {
            a["error"] = json!(e);
        }
        b.graph.push(a);
        mentions.push(id(&aid));
        if top {
            run_id = aid.clone();
            run_start = r.start;
            run_end = r.end;
        } else if let Some(s) = &r.step {
            let cid = format!("#control-{}", r.id);
            b.graph.push(json!({
                "@id": cid, "@type": "ControlAction",
                "name": format!("Orchestration of step {s}"),
                "instrument": id(&format!("{main}#{s}")),
                "object": id(&aid),
            }));
            controls.push(id(&cid));
        }
    }
    let engine = "#insitu-cwl";
    b.graph.push(json!({
        "@id": engine, "@type": "SoftwareApplication", "name": "insitu-cwl",
        "softwareVersion": env!("CARGO_PKG_VERSION"),
        "description": "The CWL v1.2 engine of the Insitu platform",
    }));
    b.graph.push(json!({
        "@id": "#organize", "@type": "OrganizeAction",
        "name": "insitu-cwl orchestration of the run",
        "agent": id(engine), "instrument": id(engine),
        "startTime": iso8601(run_start), "endTime": iso8601(run_end),
        "object": controls, "result": id(&run_id),
    }));
    let mut head = vec![
        json!({
            "@id": "ro-crate-metadata.json", "@type": "CreativeWork",
            "about": id("./"),
            "conformsTo": [id("https://w3id.org/ro/crate/1.1"), id("https://w3id.org/workflowhub/workflow-ro-crate/1.0")],
        }),
        json!({
            "@id": "./", "@type": "Dataset",
            "name": format!("Run of {}", main.trim_start_matches("workflow/")),
            "description": "Workflow Run RO-Crate written by insitu-cwl --provenance",
            "datePublished": iso8601(SystemTime::now()),
            "conformsTo": [
                id("https://w3id.org/ro/wfrun/process/0.5"),
                id("https://w3id.org/ro/wfrun/workflow/0.5"),
                id("https://w3id.org/ro/wfrun/provenance/0.5"),
                id("https://w3id.org/workflowhub/workflow-ro-crate/1.0"),
            ],
            "mainEntity": id(&main),
            "hasPart": b.parts,
            "mentions": mentions,
        }),
    ];
    for (uri, name, v) in [
        (
            "https://w3id.org/ro/wfrun/process/0.5",
            "Process Run Crate",
            "0.5",
        ),
        (
            "https://w3id.org/ro/wfrun/workflow/0.5",
            "Workflow Run Crate",
            "0.5",
        ),
        (
            "https://w3id.org/ro/wfrun/provenance/0.5",
            "Provenance Run Crate",
            "0.5",
        ),
        (
            "https://w3id.org/workflowhub/workflow-ro-crate/1.0",
            "Workflow RO-Crate",
            "1.0",
        ),
    ] {
        head.push(json!({"@id": uri, "@type": "CreativeWork", "name": name, "version": v}));
    }
    head.push(json!({
        "@id": "https://w3id.org/workflowhub/workflow-ro-crate#cwl",
        "@type": "ComputerLanguage", "name": "Common Workflow Language",
        "alternateName": "CWL", "identifier": id("https://w3id.org/cwl/v1.2/"),
        "url": id("https://www.commonwl.org/"), "version": "v1.2",
    }));
    head.append(&mut b.graph);
    let doc = json!({
        "@context": ["https://w3id.org/ro/crate/1.1/context", "https://w3id.org/ro/terms/workflow-run/context"],
        "@graph": head,
    });
    let text = serde_json::to_string_pretty(&doc)
        .map_err(|e| crate::CwlError::Execution(format!("provenance: {e}")))?;
    std::fs::write(dir.join("ro-crate-metadata.json"), text)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn iso_times() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(951_782_400_123);
        assert_eq!(iso8601(t), "2000-02-29T00:00:00.123Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_475_045);
        assert_eq!(iso8601(t), "2026-11-23T23:04:05.000Z");
    }
}
