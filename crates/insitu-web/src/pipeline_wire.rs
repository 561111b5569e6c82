//! Pipelines and runs as the API sends them and the pages show them, and
//! the few service calls both make the same way (the caller as a viewer,
//! a reference from a path, a version's details).

use insitu_api::{
    CwlDiagnostic, GraphEdge, GraphNode, PipelineCheck, PipelineGraph, PipelineInput,
    PipelineOutput, PipelineSummary, PipelineVersionDetail, Run, RunJob, RunStep,
};
use insitu_core::pipelines::graph::{Graph, NodeKind};
use insitu_core::pipelines::{Check, Origin, Summary, Version};
use insitu_core::runs::progress::{JobProgress, Phase, StepProgress};
use insitu_core::runs::{RunView, Runs};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::graph_svg;

use insitu_core::pipelines::Viewer;
use insitu_core::{Platform, Principal};
use insitu_domain::PipelineRef;

pub fn viewer(p: &Principal) -> Viewer {
    Viewer {
        user_id: p.user_id.clone(),
        username: p.username.clone(),
    }
}

/// A reference from a path's owner and name; one that cannot be a
/// reference is a pipeline not found.
pub fn reference(owner: &str, name: &str) -> Result<PipelineRef, insitu_core::Error> {
    PipelineRef::from_parts(owner, name)
        .map_err(|_| insitu_core::Error::PipelineNotFound(format!("{owner}/{name}")))
}

/// A version of a pipeline the caller may see (the newest without
/// `version`), with every version's number and the engine's check.
pub async fn detail(
    platform: &Platform,
    p: &Principal,
    r: &PipelineRef,
    version: Option<&str>,
) -> Result<PipelineVersionDetail, insitu_core::Error> {
    let pipelines = platform.pipelines();
    let all = pipelines.versions(&viewer(p), r).await?;
    let versions: Vec<String> = all.iter().map(|v| v.meta.version.to_string()).collect();
    let v = match version {
        None => all.into_iter().next(),
        Some(want) => all.into_iter().find(|v| v.meta.version.as_str() == want),
    }
    .ok_or_else(|| insitu_core::Error::PipelineVersionNotFound {
        pipeline: r.to_string(),
        version: version.unwrap_or_default().to_owned(),
    })?;
    let check = pipelines.check(&v).await?;
    Ok(version_detail(&v, versions, &check))
}

/// Unix milliseconds as RFC 3339.
pub fn rfc3339_ms(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn origin(o: &Origin) -> &'static str {
    match o {
        Origin::Shipped => "shipped",
        Origin::Pushed { .. } => "pushed",
        Origin::Own => "own",
    }
}

fn summary_of(v: &Version, versions: Vec<String>) -> PipelineSummary {
    PipelineSummary {
        reference: v.reference.to_string(),
        owner: v.reference.owner_str().to_owned(),
        name: v.reference.name.to_string(),
        version: v.meta.version.to_string(),
        description: v.meta.description.clone(),
        keywords: v.meta.keywords.clone(),
        author: v.meta.author.clone(),
        licence: v.meta.licence.clone(),
        origin: origin(&v.origin).to_owned(),
        versions,
    }
}

pub fn summary(s: &Summary) -> PipelineSummary {
    summary_of(
        &s.latest,
        s.versions.iter().map(ToString::to_string).collect(),
    )
}

pub fn graph(g: &Graph) -> PipelineGraph {
    PipelineGraph {
        nodes: g
            .nodes
            .iter()
            .map(|n| GraphNode {
                id: n.id.clone(),
                kind: match n.kind {
                    NodeKind::Input => "input",
                    NodeKind::Step => "step",
                    NodeKind::Output => "output",
                }
                .to_owned(),
                detail: n.detail.clone(),
                scatter: n.scatter,
                conditional: n.conditional,
                subworkflow: n.subworkflow,
                x: n.x,
                y: n.y,
                w: n.w,
                h: n.h,
            })
            .collect(),
        edges: g
            .edges
            .iter()
            .map(|e| GraphEdge {
                from: e.from,
                to: e.to,
                label: e.label.clone(),
            })
            .collect(),
        width: g.width,
        height: g.height,
        svg: graph_svg::svg(g),
    }
}

pub fn check(c: &Check) -> PipelineCheck {
    let diagnostics = c
        .diagnostics
        .iter()
        .map(|d| CwlDiagnostic {
            file: d.file.clone(),
            line: d.line,
            column: d.column,
            message: d.message.clone(),
        })
        .collect();
    let (class, inputs, outputs, g) = match &c.process {
        Some(p) => (
            Some(p.class.clone()),
            p.inputs
                .iter()
                .map(|i| PipelineInput {
                    id: i.id.clone(),
                    type_label: i.ty.display(),
                    schema: serde_json::to_value(&i.ty).unwrap_or_default(),
                    label: i.label.clone(),
                    doc: i.doc.clone(),
                    default: i.default.clone(),
                    required: i.default.is_none() && !i.ty.is_optional(),
                })
                .collect(),
            p.outputs
                .iter()
                .map(|o| PipelineOutput {
                    id: o.id.clone(),
                    type_label: o.ty.display(),
                    label: o.label.clone(),
                    doc: o.doc.clone(),
                })
                .collect(),
            Some(graph(&Graph::of(p))),
        ),
        None => (None, Vec::new(), Vec::new(), None),
    };
    PipelineCheck {
        valid: c.is_valid(),
        checked_at: rfc3339_ms(c.checked_at_ms),
        diagnostics,
        class,
        inputs,
        outputs,
        graph: g,
    }
}

pub fn version_detail(v: &Version, versions: Vec<String>, c: &Check) -> PipelineVersionDetail {
    PipelineVersionDetail {
        summary: summary_of(v, versions),
        main: v.meta.main.clone(),
        files: v.files.clone(),
        created_at: v.created_at_ms.map(rfc3339_ms),
        check: check(c),
    }
}

pub fn phase(p: Phase) -> &'static str {
    match p {
        Phase::Waiting => "waiting",
        Phase::Running => "running",
        Phase::Succeeded => "succeeded",
        Phase::Failed => "failed",
        Phase::Reused => "reused",
        Phase::Skipped => "skipped",
    }
}

fn step(s: &StepProgress) -> RunStep {
    RunStep {
        step: s.step.clone(),
        phase: phase(s.phase).to_owned(),
        scatter: s.scatter,
        jobs: s.jobs,
        running: s.running,
        done: s.done,
        failed: s.failed,
        reused: s.reused,
        started_at: s.started_at_ms.map(rfc3339_ms),
        finished_at: s.finished_at_ms.map(rfc3339_ms),
        error: s.error.clone(),
    }
}

pub fn job(j: &JobProgress) -> RunJob {
    RunJob {
        job: j.job,
        step: j.step.clone(),
        index: j.index,
        phase: phase(j.phase).to_owned(),
        started_at: j.started_at_ms.map(rfc3339_ms),
        finished_at: j.finished_at_ms.map(rfc3339_ms),
        exit_code: j.exit_code,
        error: j.error.clone(),
    }
}

pub fn run(v: &RunView) -> Run {
    let r = &v.record;
    let mut steps: Vec<RunStep> = v.progress.steps.iter().map(step).collect();
    // Steps not started: waiting, unless the run ended (then never run).
    let never = if r.state.is_active() {
        "waiting"
    } else {
        "not_run"
    };
    steps.extend(v.waiting_steps.iter().map(|name| RunStep {
        step: name.clone(),
        phase: never.to_owned(),
        scatter: false,
        jobs: 0,
        running: 0,
        done: 0,
        failed: 0,
        reused: 0,
        started_at: None,
        finished_at: None,
        error: None,
    }));
    Run {
        id: r.id.to_string(),
        pipeline: r.pipeline.clone(),
        version: r.version.clone(),
        state: r.state.to_string(),
        reason: r.reason.clone(),
        notice: r.notice.clone(),
        zone: r.zone.to_string(),
        created_at: rfc3339_ms(r.created_at_ms),
        started_at: r.started_at_ms.map(rfc3339_ms),
        finished_at: r.finished_at_ms.map(rfc3339_ms),
        resumed_from: r.resumed_from.as_ref().map(ToString::to_string),
        job: serde_json::from_str(&r.job).unwrap_or_default(),
        output_dir: Runs::outputs_seen_at(&r.id).display().to_string(),
        outputs: r
            .outputs
            .as_deref()
            .and_then(|o| serde_json::from_str(o).ok()),
        steps,
        events_seen: v.progress.seen,
    }
}
