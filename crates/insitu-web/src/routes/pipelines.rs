//! The pipeline catalogue's and runs' rows of the route table, API and
//! pages.

use axum::routing::{get, post};
use insitu_api::*;

use super::{DEVELOPER, RouteInfo, USER, api_route, page, schema};
use crate::access::Access;
use crate::api::pipelines as api;
use crate::pages::pipelines as pages;

pub(super) fn api_rows() -> Vec<RouteInfo> {
    let mut get_run = api_route(
        "GET",
        "/api/v1/runs/{id}",
        USER,
        "runs",
        "One of the caller's runs with every step's progress; with `since=N` (events seen) and `wait=SECS` (at most 60), answers once there is news",
        None,
        (200, Some(schema::<Run>)),
        || get(api::get_run),
    );
    get_run.query = &["since", "state", "wait"];
    let mut jobs = api_route(
        "GET",
        "/api/v1/runs/{id}/jobs",
        USER,
        "runs",
        "The jobs of a run (one per step, one per scatter position), optionally of one `step`",
        None,
        (200, Some(schema::<List<RunJob>>)),
        || get(api::run_jobs),
    );
    jobs.query = &["step"];
    let mut logs = api_route(
        "GET",
        "/api/v1/runs/{id}/logs",
        USER,
        "runs",
        "A slice of a job's log (`job=N`; without it, the engine's own log) from byte `from`; with `wait=SECS` (at most 60), answers once there is more or the job ended",
        None,
        (200, Some(schema::<RunLog>)),
        || get(api::run_logs),
    );
    logs.query = &["job", "from", "wait"];
    vec![
        api_route(
            "GET",
            "/api/v1/pipelines",
            USER,
            "pipelines",
            "The pipelines the caller may run: the system catalogue's and their own, each with its newest version",
            None,
            (200, Some(schema::<List<PipelineSummary>>)),
            || get(api::list),
        ),
        api_route(
            "POST",
            "/api/v1/pipelines",
            USER,
            "pipelines",
            "Push a new version of one of the caller's pipelines (its CWL must be valid; versions never change)",
            Some(schema::<PushPipelineRequest>),
            (201, Some(schema::<PipelineVersionDetail>)),
            || post(api::push),
        ),
        api_route(
            "POST",
            "/api/v1/pipelines/validate",
            USER,
            "pipelines",
            "Check CWL documents with the engine without keeping them: its messages (file:line:column), or the inputs, outputs and graph",
            Some(schema::<ValidateRequest>),
            (200, Some(schema::<PipelineCheck>)),
            || post(api::validate),
        ),
        api_route(
            "GET",
            "/api/v1/pipelines/{owner}/{name}",
            USER,
            "pipelines",
            "A pipeline's newest version with its files, inputs and graph (`system` owns the system catalogue)",
            None,
            (200, Some(schema::<PipelineVersionDetail>)),
            || get(api::show),
        ),
        api_route(
            "GET",
            "/api/v1/pipelines/{owner}/{name}/versions/{version}",
            USER,
            "pipelines",
            "One version of a pipeline",
            None,
            (200, Some(schema::<PipelineVersionDetail>)),
            || get(api::show_version),
        ),
        api_route(
            "POST",
            "/api/v1/pipelines/{owner}/{name}/versions/{version}/push-to-system",
            DEVELOPER,
            "pipelines",
            "Copy a version of one of the caller's pipelines into the system catalogue, for every user",
            None,
            (201, Some(schema::<PipelineVersionDetail>)),
            || post(api::push_to_system),
        ),
        api_route(
            "POST",
            "/api/v1/runs",
            USER,
            "runs",
            "Queue a run of a pipeline with a job order; follow it with GET /api/v1/runs/{id}",
            Some(schema::<RunRequest>),
            (202, Some(schema::<Run>)),
            || post(api::submit_run),
        ),
        api_route(
            "GET",
            "/api/v1/runs",
            USER,
            "runs",
            "The caller's runs, newest first",
            None,
            (200, Some(schema::<List<Run>>)),
            || get(api::list_runs),
        ),
        get_run,
        jobs,
        logs,
        api_route(
            "POST",
            "/api/v1/runs/{id}/cancel",
            USER,
            "runs",
            "Cancel a queued or running run: its engine and everything it started end",
            None,
            (200, Some(schema::<Run>)),
            || post(api::cancel_run),
        ),
        api_route(
            "POST",
            "/api/v1/runs/{id}/resume",
            USER,
            "runs",
            "Queue a new run of a failed or cancelled run's pipeline and job, reusing the steps it finished",
            None,
            (202, Some(schema::<Run>)),
            || post(api::resume_run),
        ),
        api_route(
            "GET",
            "/api/v1/runs/{id}/provenance",
            USER,
            "runs",
            "The run's provenance, a Workflow Run RO-Crate, as a zip file (once the run ended)",
            None,
            (200, None),
            || get(api::provenance),
        ),
    ]
}

pub(super) fn page_rows() -> Vec<RouteInfo> {
    vec![
        page("GET", "/pipelines", USER, "The pipeline catalogue", || {
            get(pages::list)
        }),
        page(
            "GET",
            "/pipelines/develop",
            USER,
            "The pipeline development page: editor, validation, graph, details",
            || get(pages::develop),
        ),
        page(
            "GET",
            "/pipelines/{owner}/{name}",
            USER,
            "A pipeline: details, graph and a run form made from its inputs",
            || get(pages::show),
        ),
        page("GET", "/runs", USER, "My runs", || get(pages::runs)),
        page(
            "GET",
            "/runs/{id}",
            USER,
            "A run with its live progress and log",
            || get(pages::run),
        ),
        page(
            "GET",
            "/static/pipelines.js",
            Access::Public,
            "The pipeline pages' script",
            || get(pages::script),
        ),
        page(
            "GET",
            "/static/codemirror/{file}",
            Access::Public,
            "The code editor (CodeMirror, from the system's installation)",
            || get(pages::codemirror),
        ),
    ]
}
