//! The pipeline pages: the catalogue, a pipeline (details, graph, a run
//! form made from its inputs), the development page (a CodeMirror editor,
//! validation marked at its lines, the graph, the details panel, push),
//! and runs with their live progress. The pages are rendered from the
//! services; what changes without a reload (validation, a run's progress,
//! a submitted form) is done by `/static/pipelines.js` through the JSON
//! API with the page's session and CSRF token.

use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use insitu_api::{ErrorCode, PipelineInput, PipelineVersionDetail};
use insitu_core::Principal;
use insitu_core::runs::run_id;
use insitu_domain::Role;
use minijinja::context;
use serde::Serialize;
use serde_json::Value as Json;

use super::{Banner, page, ser};
use crate::error::PagePath;
use crate::error_page::{error_page, failure_page};
use crate::pipeline_wire::{self as pw, detail, reference, viewer};
use crate::state::AppState;

/// Where Debian's `libjs-codemirror` puts CodeMirror 5.
const CODEMIRROR_DIR: &str = "/usr/share/javascript/codemirror";

pub const SCRIPT: &str = include_str!("../static/pipelines.js");

/// One field of a run's form, made from an input's CWL type.
#[derive(Serialize)]
struct Field {
    id: String,
    label: String,
    doc: Option<String>,
    type_label: String,
    /// `text`, `number`, `integer`, `boolean`, `enum`, `file`,
    /// `directory` or `json` (arrays, records and the rest, as JSON).
    kind: &'static str,
    symbols: Vec<String>,
    /// The default, as the field shows it.
    value: String,
    required: bool,
}

/// The type without its `null` alternative (an optional input).
fn strip_null(schema: &Json) -> &Json {
    if schema["kind"] == "union"
        && let Some(of) = schema["of"].as_array()
    {
        let rest: Vec<&Json> = of.iter().filter(|t| t["kind"] != "null").collect();
        if rest.len() == 1 {
            return rest[0];
        }
    }
    schema
}

fn field(i: &PipelineInput) -> Field {
    let t = strip_null(&i.schema);
    let kind = match t["kind"].as_str().unwrap_or("") {
        "string" => "text",
        "int" | "long" => "integer",
        "float" | "double" => "number",
        "boolean" => "boolean",
        "enum" => "enum",
        "file" => "file",
        "directory" => "directory",
        _ => "json",
    };
    let symbols = t["symbols"]
        .as_array()
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let value = match (&i.default, kind) {
        (None | Some(Json::Null), _) => String::new(),
        (Some(Json::String(s)), _) => s.clone(),
        (Some(v), "file" | "directory") => v["path"]
            .as_str()
            .or_else(|| v["location"].as_str())
            .unwrap_or_default()
            .to_owned(),
        (Some(v), "json") => serde_json::to_string_pretty(v).unwrap_or_default(),
        (Some(v), _) => v.to_string(),
    };
    Field {
        id: i.id.clone(),
        label: i.label.clone().unwrap_or_else(|| i.id.clone()),
        doc: i.doc.clone(),
        type_label: i.type_label.clone(),
        kind,
        symbols,
        value,
        required: i.required,
    }
}

/// What a form offers for files and directories: the workspace and the
/// data volumes, and what they hold (a few levels deep, at most
/// `PLACES_EACH` entries from each), as labs and jobs name them. Links
/// are not followed.
async fn places(s: &AppState, p: &Principal) -> Vec<String> {
    let mut roots: Vec<(std::path::PathBuf, String)> = vec![(
        s.platform.labs().workspace_of(p.username.as_str()),
        insitu_core::labs::WORKSPACE_PATH.to_owned(),
    )];
    roots.extend(s.platform.volumes().all().iter().map(|e| {
        (
            e.spec.source.clone(),
            e.spec.mount_path.display().to_string(),
        )
    }));
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for (host, seen) in roots {
            out.push(format!("{seen}/"));
            let mut found = Vec::new();
            list_below(&host, &seen, 3, &mut found);
            out.extend(found);
        }
        out
    })
    .await
    .unwrap_or_default()
}

const PLACES_EACH: usize = 200;

fn list_below(host: &std::path::Path, seen: &str, depth: u8, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(host) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for e in entries {
        if out.len() >= PLACES_EACH {
            return;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let Ok(kind) = e.file_type() else { continue };
        let at = format!("{seen}/{name}");
        if kind.is_dir() {
            out.push(format!("{at}/"));
            if depth > 1 {
                list_below(&e.path(), &at, depth - 1, out);
            }
        } else if kind.is_file() {
            out.push(at);
        }
    }
}

pub async fn list(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    banner: Banner,
) -> Response {
    let all = match s.platform.pipelines().visible_to(&viewer(&p)).await {
        Ok(a) => a,
        Err(e) => return failure_page(e),
    };
    let items: Vec<_> = all.iter().map(pw::summary).collect();
    page(
        &s,
        "pipelines.html",
        Some(&p),
        "pipelines",
        &banner,
        context! { items => ser(&items) },
    )
}

fn may_push_to_system(p: &Principal) -> bool {
    matches!(p.role, Role::Developer | Role::Moderator | Role::Admin)
}

pub async fn show(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath((owner, name)): PagePath<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: axum::http::HeaderMap,
    banner: Banner,
) -> Response {
    let version = lenient(raw.as_deref(), "version");
    let (zones, current_zone) = super::zones::choices(&s, &headers);
    let d = match found(&s, &p, &owner, &name, version.as_deref()).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let fields: Vec<Field> = d.check.inputs.iter().map(field).collect();
    let mine = d.summary.owner == p.username.as_str();
    page(
        &s,
        "pipeline.html",
        Some(&p),
        "pipelines",
        &banner,
        context! {
            d => ser(&d),
            fields => ser(&fields),
            places => places(&s, &p).await,
            push_to_system => mine && may_push_to_system(&p),
            zones,
            current_zone,
        },
    )
}

async fn found(
    s: &AppState,
    p: &Principal,
    owner: &str,
    name: &str,
    version: Option<&str>,
) -> Result<PipelineVersionDetail, Response> {
    let r = reference(owner, name).map_err(failure_page)?;
    detail(&s.platform, p, &r, version)
        .await
        .map_err(failure_page)
}

/// One parameter of a query string, read leniently (a page never fails on
/// its query).
fn lenient(raw: Option<&str>, key: &str) -> Option<String> {
    form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

const NEW_PIPELINE: &str = "cwlVersion: v1.2\nclass: CommandLineTool\nlabel: Count the lines of a file\nbaseCommand: [wc, -l]\ninputs:\n  text:\n    type: File\n    label: A text file\n    inputBinding: {position: 1}\nstdout: count.txt\noutputs:\n  count:\n    type: stdout\n";

pub async fn develop(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    RawQuery(raw): RawQuery,
    banner: Banner,
) -> Response {
    let from = lenient(raw.as_deref(), "from");
    let version = lenient(raw.as_deref(), "version");
    let d = match &from {
        Some(r) => {
            let (owner, name) = r.split_once('/').unwrap_or(("system", r));
            match found(&s, &p, owner, name, version.as_deref()).await {
                Ok(d) => Some(d),
                Err(r) => return r,
            }
        }
        None => None,
    };
    let (main, files, meta) = match &d {
        Some(d) => (
            d.main.clone(),
            d.files.clone(),
            context! {
                name => d.summary.name.clone(),
                version => d.summary.version.clone(),
                description => d.summary.description.clone(),
                keywords => d.summary.keywords.join(", "),
                author => d.summary.author.clone(),
                licence => d.summary.licence.clone(),
            },
        ),
        None => (
            "main.cwl".to_owned(),
            std::iter::once(("main.cwl".to_owned(), NEW_PIPELINE.to_owned())).collect(),
            context! {
                name => "", version => "1.0.0", description => "", keywords => "",
                author => p.username.as_str(), licence => "MIT",
            },
        ),
    };
    // The main file first, then the others.
    let mut ordered: Vec<(String, String)> = files
        .iter()
        .filter(|(n, _)| **n == main)
        .chain(files.iter().filter(|(n, _)| **n != main))
        .map(|(n, t)| (n.clone(), t.clone()))
        .collect();
    if ordered.is_empty() {
        ordered.push((main.clone(), String::new()));
    }
    let files: Vec<_> = ordered
        .into_iter()
        .map(|(name, text)| context! { name, text })
        .collect();
    page(
        &s,
        "develop.html",
        Some(&p),
        "develop",
        &banner,
        context! { main, files, meta, codemirror => codemirror_installed() },
    )
}

pub async fn runs(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    banner: Banner,
) -> Response {
    let v = viewer(&p);
    let runs = s.platform.runs();
    let records = match runs.of_user(&v, 200).await {
        Ok(r) => r,
        Err(e) => return failure_page(e),
    };
    let mut items = Vec::new();
    for r in records {
        match runs.view(&v, &r.id).await {
            Ok(view) => items.push(pw::run(&view)),
            Err(e) => return failure_page(e),
        }
    }
    page(
        &s,
        "runs.html",
        Some(&p),
        "runs",
        &banner,
        context! { items => ser(&items) },
    )
}

pub async fn run(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath(id): PagePath<String>,
    banner: Banner,
) -> Response {
    let runs = s.platform.runs();
    let view = async { runs.view(&viewer(&p), &run_id(&id)?).await };
    let view = match view.await {
        Ok(v) => v,
        Err(e) => return failure_page(e),
    };
    let run = pw::run(&view);
    page(
        &s,
        "run.html",
        Some(&p),
        "runs",
        &banner,
        context! { run => ser(&run), job => serde_json::to_string_pretty(&run.job).unwrap_or_default() },
    )
}

pub async fn script() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        SCRIPT,
    )
        .into_response()
}

fn codemirror_installed() -> bool {
    std::path::Path::new(CODEMIRROR_DIR)
        .join("lib/codemirror.js")
        .is_file()
}

/// CodeMirror's few files the development page loads, from the system's
/// installation; a fixed list, so no request names a path.
pub async fn codemirror(PagePath(file): PagePath<String>) -> Response {
    let (path, kind) = match file.as_str() {
        "codemirror.js" => ("lib/codemirror.js", "text/javascript; charset=utf-8"),
        "codemirror.css" => ("lib/codemirror.css", "text/css; charset=utf-8"),
        "yaml.js" => ("mode/yaml/yaml.js", "text/javascript; charset=utf-8"),
        _ => return error_page(ErrorCode::NotFound, "no such file of the code editor"),
    };
    match tokio::fs::read(std::path::Path::new(CODEMIRROR_DIR).join(path)).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("max-age=3600"),
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => error_page(
            ErrorCode::NotFound,
            "the code editor (libjs-codemirror) is not installed here",
        ),
    }
}
