//! Pipelines and runs on the wire: the catalogue, a version with its check
//! (the engine's messages, the run form's inputs, the graph), pushes, runs
//! with their steps and jobs, and log slices. Times are RFC 3339 in UTC.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A pipeline of the catalogue, with its newest version's details.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PipelineSummary {
    /// How to name it: `name` for a system pipeline, `owner/name` for a user's.
    pub reference: String,
    /// `system`, or the user it belongs to.
    pub owner: String,
    pub name: String,
    /// The newest version.
    pub version: String,
    pub description: String,
    pub keywords: Vec<String>,
    pub author: String,
    /// An SPDX licence expression.
    pub licence: String,
    /// `shipped` (with the platform), `pushed` (to the system catalogue) or `own`.
    pub origin: String,
    /// Every version, newest first.
    pub versions: Vec<String>,
}

/// One thing the engine found wrong, at a file's line and column when it said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CwlDiagnostic {
    pub file: Option<String>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub message: String,
}

/// An input of a pipeline: what its run form asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PipelineInput {
    pub id: String,
    /// The type as people write it (`File[]`, `int?`, `enum(linear|log)`).
    #[serde(rename = "type")]
    pub type_label: String,
    /// The type as a tree (`{"kind": "array", "items": {"kind": "file"}}`).
    pub schema: serde_json::Value,
    pub label: Option<String>,
    pub doc: Option<String>,
    pub default: Option<serde_json::Value>,
    /// Whether a value must be given (no default, not optional).
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PipelineOutput {
    pub id: String,
    #[serde(rename = "type")]
    pub type_label: String,
    pub label: Option<String>,
    pub doc: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GraphNode {
    pub id: String,
    /// `input`, `step` or `output`.
    pub kind: String,
    pub detail: String,
    pub scatter: bool,
    pub conditional: bool,
    pub subworkflow: bool,
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GraphEdge {
    /// Indices into the nodes.
    pub from: usize,
    pub to: usize,
    pub label: String,
}

/// The workflow's graph, laid out, and drawn as SVG.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PipelineGraph {
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<GraphEdge>,
    pub width: f64,
    pub height: f64,
    pub svg: String,
}

/// The engine's check of a pipeline: valid with its inputs, outputs and
/// graph, or what is wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PipelineCheck {
    pub valid: bool,
    pub checked_at: String,
    pub diagnostics: Vec<CwlDiagnostic>,
    /// `Workflow`, `CommandLineTool` or `ExpressionTool`, when valid.
    pub class: Option<String>,
    pub inputs: Vec<PipelineInput>,
    pub outputs: Vec<PipelineOutput>,
    pub graph: Option<PipelineGraph>,
}

/// One version of a pipeline with its files and check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PipelineVersionDetail {
    #[serde(flatten)]
    pub summary: PipelineSummary,
    /// The file holding the process to run.
    pub main: String,
    pub files: BTreeMap<String, String>,
    pub created_at: Option<String>,
    pub check: PipelineCheck,
}

/// Documents for the engine to check, without keeping them.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    /// The file holding the process; `workflow.cwl` when not given.
    #[serde(default = "default_main")]
    pub main: String,
    /// Every file: name (a plain file name) and text.
    pub files: BTreeMap<String, String>,
}

fn default_main() -> String {
    "workflow.cwl".to_owned()
}

/// A new version of one of the caller's pipelines (made when it is the first).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PushPipelineRequest {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub author: String,
    pub licence: String,
    #[serde(default = "default_main")]
    pub main: String,
    pub files: BTreeMap<String, String>,
}

/// A run to queue.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// `name` for a system pipeline, `owner/name` for one of the caller's.
    pub pipeline: String,
    /// The newest when not given.
    #[serde(default)]
    pub version: Option<String>,
    /// The pipeline's inputs; files and directories as labs see them
    /// (`{"class": "File", "path": "/media/data/deep-fields/x.fits"}`, or
    /// `/home/user/...` in the workspace).
    pub job: serde_json::Value,
    /// The datazone to execute in (`GET /api/v1/zones`); default: the
    /// one holding the volumes the job names, else the default zone.
    #[serde(default)]
    pub zone: Option<String>,
}

/// A step of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunStep {
    /// Its path in the workflow (`outer/inner` in a subworkflow); empty for a lone tool.
    pub step: String,
    /// `waiting`, `running`, `succeeded`, `failed`, `reused` or `skipped`.
    pub phase: String,
    pub scatter: bool,
    /// Jobs known so far (a scatter's size once it started).
    pub jobs: usize,
    pub running: usize,
    /// Ended, whatever the outcome.
    pub done: usize,
    pub failed: usize,
    pub reused: usize,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub error: Option<String>,
}

/// A job of a run (a step's job, one per scatter position).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunJob {
    /// Its number in the run: its log is `GET /api/v1/runs/{id}/logs?job=N`.
    pub job: u64,
    pub step: Option<String>,
    pub index: Option<usize>,
    pub phase: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Run {
    pub id: String,
    pub pipeline: String,
    pub version: String,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub state: String,
    /// Why it failed or was cancelled.
    pub reason: Option<String>,
    /// What else its user should know (resumed, queued again after a restart).
    pub notice: Option<String>,
    /// The datazone it executes in.
    pub zone: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub resumed_from: Option<String>,
    /// The job order as given.
    pub job: serde_json::Value,
    /// Where its outputs go, as labs see the workspace.
    pub output_dir: String,
    /// The output object once it succeeded, files named in the workspace.
    pub outputs: Option<serde_json::Value>,
    /// Every step of the pipeline, those not started yet `waiting`.
    pub steps: Vec<RunStep>,
    /// Events taken in so far: `GET /api/v1/runs/{id}?since=N&wait=30`
    /// answers once there are more.
    pub events_seen: u64,
}

/// A slice of a log; ask again from `next` for more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunLog {
    pub text: String,
    pub next: u64,
    /// Nothing more will come: the job or run ended and all was read.
    pub done: bool,
}
