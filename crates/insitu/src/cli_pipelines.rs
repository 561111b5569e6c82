//! `insitu pipelines …` and `insitu runs …`: the pipeline catalogue and
//! runs from the command line (also from inside a lab, where
//! `INSITU_API_SOCKET` names the lab's socket to the platform: no login
//! there, the caller is the lab's owner).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Subcommand;
use insitu_api::{
    List, OperatorRun, PipelineCheck, PipelineSummary, PipelineVersionDetail, Run, RunJob, RunLog,
};
use reqwest::Method;
use serde::Serialize;
use serde_json::{Value, json};

use crate::client::{Client, ClientError};

#[derive(Subcommand)]
pub enum PipelinesCommand {
    /// The pipelines I may run: the system catalogue's and my own.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One pipeline: its details, inputs and versions.
    Show {
        /// `name` (system) or `owner/name`.
        pipeline: String,
        #[arg(long)]
        version: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Check CWL files with the platform's engine: its messages
    /// (file:line:column) or the inputs and steps.
    Validate {
        /// The main file; the other files of its directory (`*.cwl`,
        /// `*.yml`, `*.py`, …) go with it.
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Push a directory (CWL files and a `pipeline.toml` of details) as a
    /// new version of one of my pipelines.
    Push {
        dir: PathBuf,
        /// The pipeline's name (default: the directory's).
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum RunsCommand {
    /// Queue a run of a pipeline with a job order (YAML or JSON; files as
    /// labs see them: /home/user/..., /media/data/<volume>/...).
    Submit {
        /// `name` (system) or `owner/name`.
        pipeline: String,
        /// The job order; none: every input from its default.
        job: Option<PathBuf>,
        #[arg(long)]
        version: Option<String>,
        /// The datazone to run in (see `insitu zones`); default: the one
        /// holding the volumes the job names.
        #[arg(long)]
        zone: Option<String>,
        /// Follow the run to its end, showing each step's progress.
        #[arg(long)]
        wait: bool,
        #[arg(long)]
        json: bool,
    },
    /// My runs, newest first.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// One run: its steps, outputs and jobs.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// A job's log (`--job N`, numbers from `runs show`), or the engine's.
    Logs {
        id: String,
        #[arg(long)]
        job: Option<u64>,
        /// Keep printing as it grows, until the job ends.
        #[arg(long, short)]
        follow: bool,
    },
    /// Cancel a queued or running run. Administrators cancel any user's run
    /// with --reason, which its user reads.
    Cancel {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Every user's queued and running runs (administrators).
    All {
        #[arg(long)]
        json: bool,
    },
    /// Queue a failed or cancelled run again, reusing the steps it finished.
    Resume {
        id: String,
        #[arg(long)]
        wait: bool,
        #[arg(long)]
        json: bool,
    },
    /// Download a run's provenance (a Workflow Run RO-Crate, zip).
    Download {
        id: String,
        /// Where to write it (default: run-<id>-provenance.zip).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

fn seg(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn print_json<T: Serialize>(v: &T) -> Result<(), ClientError> {
    let text = serde_json::to_string_pretty(v).map_err(|e| ClientError::Other(e.to_string()))?;
    println!("{text}");
    Ok(())
}

/// `/api/v1/pipelines/{owner}/{name}` of a reference.
fn pipeline_path(reference: &str) -> String {
    let (owner, name) = reference.split_once('/').unwrap_or(("system", reference));
    format!("/api/v1/pipelines/{}/{}", seg(owner), seg(name))
}

fn other(e: impl std::fmt::Display) -> ClientError {
    ClientError::Other(e.to_string())
}

/// The text files of a pipeline's directory (not hidden, not its
/// `pipeline.toml`), by name.
fn pipeline_files(dir: &Path) -> Result<BTreeMap<String, String>, ClientError> {
    let mut files = BTreeMap::new();
    let entries = std::fs::read_dir(dir).map_err(|e| other(format!("{}: {e}", dir.display())))?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "pipeline.toml" || !e.path().is_file() {
            continue;
        }
        let text = std::fs::read_to_string(e.path())
            .map_err(|err| other(format!("{}: {err}", e.path().display())))?;
        files.insert(name, text);
    }
    Ok(files)
}

pub async fn pipelines(c: &Client, cmd: PipelinesCommand) -> Result<(), ClientError> {
    match cmd {
        PipelinesCommand::List { json } => {
            let list: List<PipelineSummary> =
                c.call(Method::GET, "/api/v1/pipelines", None).await?;
            if json {
                return print_json(&list.items);
            }
            let rows: Vec<Vec<String>> = list
                .items
                .iter()
                .map(|p| {
                    vec![
                        p.reference.clone(),
                        p.version.clone(),
                        p.origin.clone(),
                        p.licence.clone(),
                        p.keywords.join(", "),
                    ]
                })
                .collect();
            crate::cli::print_table(
                &["PIPELINE", "VERSION", "ORIGIN", "LICENCE", "KEYWORDS"],
                &rows,
            );
            Ok(())
        }
        PipelinesCommand::Show {
            pipeline,
            version,
            json,
        } => {
            let path = match &version {
                Some(v) => format!("{}/versions/{}", pipeline_path(&pipeline), seg(v)),
                None => pipeline_path(&pipeline),
            };
            let d: PipelineVersionDetail = c.call(Method::GET, &path, None).await?;
            if json {
                return print_json(&d);
            }
            let s = &d.summary;
            println!("{} {} ({})", s.reference, s.version, s.origin);
            println!("{}", s.description);
            println!(
                "author: {}; licence: {}; keywords: {}",
                s.author,
                s.licence,
                s.keywords.join(", ")
            );
            println!("versions: {}", s.versions.join(", "));
            println!(
                "files: {} (main: {})",
                d.files.keys().cloned().collect::<Vec<_>>().join(", "),
                d.main
            );
            print_check(&d.check);
            Ok(())
        }
        PipelinesCommand::Validate { file, json } => {
            let dir = file
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let main = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| other(format!("{}: not a file", file.display())))?;
            let files = pipeline_files(dir)?;
            let check: PipelineCheck = c
                .call(
                    Method::POST,
                    "/api/v1/pipelines/validate",
                    Some(&json!({"main": main, "files": files})),
                )
                .await?;
            if json {
                print_json(&check)?;
            } else {
                print_check(&check);
            }
            if check.valid {
                Ok(())
            } else {
                Err(ClientError::Other(format!(
                    "{} is not valid CWL",
                    file.display()
                )))
            }
        }
        PipelinesCommand::Push { dir, name, json } => {
            let meta_path = dir.join("pipeline.toml");
            let meta_text = std::fs::read_to_string(&meta_path)
                .map_err(|e| other(format!("{}: {e}", meta_path.display())))?;
            let meta: toml::Table = toml::from_str(&meta_text)
                .map_err(|e| other(format!("{}: {e}", meta_path.display())))?;
            let name = match name {
                Some(n) => n,
                None => dir
                    .canonicalize()
                    .ok()
                    .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .ok_or_else(|| other("give the pipeline's name with --name"))?,
            };
            let mut body = serde_json::to_value(&meta).map_err(other)?;
            body["name"] = json!(name);
            body["files"] = serde_json::to_value(pipeline_files(&dir)?).map_err(other)?;
            let d: PipelineVersionDetail = c
                .call(Method::POST, "/api/v1/pipelines", Some(&body))
                .await?;
            if json {
                return print_json(&d);
            }
            println!(
                "pushed {} version {}; run it with `insitu runs submit {} job.yml`",
                d.summary.reference, d.summary.version, d.summary.reference
            );
            Ok(())
        }
    }
}

fn print_check(c: &PipelineCheck) {
    if !c.valid {
        for d in &c.diagnostics {
            match (&d.file, d.line, d.column) {
                (Some(f), Some(l), Some(col)) => println!("{f}:{l}:{col}: {}", d.message),
                _ => println!("{}", d.message),
            }
        }
        return;
    }
    println!(
        "CWL valid ({}), checked {}",
        c.class.as_deref().unwrap_or("process"),
        c.checked_at
    );
    println!("inputs:");
    for i in &c.inputs {
        let default = i
            .default
            .as_ref()
            .map_or(String::new(), |d| format!(" = {d}"));
        let required = if i.required { " (required)" } else { "" };
        println!("  {}: {}{default}{required}", i.id, i.type_label);
    }
    println!("outputs:");
    for o in &c.outputs {
        println!("  {}: {}", o.id, o.type_label);
    }
    if let Some(g) = &c.graph {
        let steps: Vec<&str> = g
            .nodes
            .iter()
            .filter(|n| n.kind == "step")
            .map(|n| n.id.as_str())
            .collect();
        println!("steps: {}", steps.join(", "));
    }
}

/// A job order from a YAML or JSON file.
fn read_job(path: &Path) -> Result<Value, ClientError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| other(format!("{}: {e}", path.display())))?;
    if path.extension().is_some_and(|e| e == "json") {
        return serde_json::from_str(&text).map_err(|e| other(format!("{}: {e}", path.display())));
    }
    serde_saphyr::from_str::<Value>(&text).map_err(|e| other(format!("{}: {e}", path.display())))
}

pub async fn runs(c: &Client, cmd: RunsCommand) -> Result<(), ClientError> {
    match cmd {
        RunsCommand::Submit {
            pipeline,
            job,
            version,
            zone,
            wait,
            json,
        } => {
            let job = match job {
                Some(p) => read_job(&p)?,
                None => json!({}),
            };
            let mut body = json!({"pipeline": pipeline, "job": job});
            if let Some(v) = version {
                body["version"] = json!(v);
            }
            if let Some(z) = zone {
                body["zone"] = json!(z);
            }
            let run: Run = c.call(Method::POST, "/api/v1/runs", Some(&body)).await?;
            finish(c, run, wait, json).await
        }
        RunsCommand::Ls { json } => {
            let list: List<Run> = c.call(Method::GET, "/api/v1/runs", None).await?;
            if json {
                return print_json(&list.items);
            }
            let rows: Vec<Vec<String>> = list
                .items
                .iter()
                .map(|r| {
                    let done: usize = r.steps.iter().filter(|s| is_over(&s.phase)).count();
                    vec![
                        r.id.clone(),
                        format!("{} {}", r.pipeline, r.version),
                        r.state.clone(),
                        r.zone.clone(),
                        format!("{done}/{} steps", r.steps.len()),
                        r.created_at.clone(),
                        r.reason.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            crate::cli::print_table(
                &[
                    "ID", "PIPELINE", "STATE", "ZONE", "PROGRESS", "CREATED", "REASON",
                ],
                &rows,
            );
            Ok(())
        }
        RunsCommand::Show { id, json } => {
            let run: Run = c
                .call(Method::GET, &format!("/api/v1/runs/{}", seg(&id)), None)
                .await?;
            let jobs: List<RunJob> = c
                .call(
                    Method::GET,
                    &format!("/api/v1/runs/{}/jobs", seg(&id)),
                    None,
                )
                .await?;
            if json {
                return print_json(&json!({"run": run, "jobs": jobs.items}));
            }
            show_run(&run);
            if !jobs.items.is_empty() {
                println!("jobs (logs: insitu runs logs {} --job N):", run.id);
                for j in &jobs.items {
                    println!(
                        "  {:>4}  {}{}  {}{}",
                        j.job,
                        j.step.as_deref().unwrap_or("(tool)"),
                        j.index.map_or(String::new(), |i| format!("[{i}]")),
                        j.phase,
                        j.exit_code
                            .map_or(String::new(), |c| format!(" (exit code {c})"))
                    );
                }
            }
            Ok(())
        }
        RunsCommand::Logs { id, job, follow } => {
            let mut from = 0u64;
            loop {
                let mut path = format!("/api/v1/runs/{}/logs?from={from}", seg(&id));
                if let Some(j) = job {
                    path.push_str(&format!("&job={j}"));
                }
                if follow {
                    path.push_str("&wait=30");
                }
                let chunk: RunLog = c.call(Method::GET, &path, None).await?;
                print!("{}", chunk.text);
                let _ = std::io::stdout().flush();
                from = chunk.next;
                if !follow || chunk.done {
                    return Ok(());
                }
            }
        }
        RunsCommand::Cancel {
            id,
            reason: Some(reason),
        } => {
            let run: OperatorRun = c
                .call(
                    Method::POST,
                    &format!("/api/v1/admin/runs/{}/cancel", seg(&id)),
                    Some(&json!({ "reason": reason })),
                )
                .await?;
            println!("run {} of {} {}", run.id, run.owner, run.state);
            if let Some(r) = run.reason {
                println!("{r}");
            }
            Ok(())
        }
        RunsCommand::Cancel { id, reason: None } => {
            let run: Run = c
                .call(
                    Method::POST,
                    &format!("/api/v1/runs/{}/cancel", seg(&id)),
                    None,
                )
                .await?;
            println!("run {} {}", run.id, run.state);
            Ok(())
        }
        RunsCommand::All { json } => {
            let list: List<OperatorRun> = c.call(Method::GET, "/api/v1/admin/runs", None).await?;
            if json {
                return print_json(&list.items);
            }
            let rows: Vec<Vec<String>> = list
                .items
                .iter()
                .map(|r| {
                    vec![
                        r.id.clone(),
                        r.owner.clone(),
                        format!("{} {}", r.pipeline, r.version),
                        r.state.clone(),
                        r.zone.clone(),
                        format!("{} s", r.age_seconds),
                    ]
                })
                .collect();
            crate::cli::print_table(&["ID", "OWNER", "PIPELINE", "STATE", "ZONE", "AGE"], &rows);
            Ok(())
        }
        RunsCommand::Resume { id, wait, json } => {
            let run: Run = c
                .call(
                    Method::POST,
                    &format!("/api/v1/runs/{}/resume", seg(&id)),
                    None,
                )
                .await?;
            finish(c, run, wait, json).await
        }
        RunsCommand::Download { id, output } => {
            let path = output.unwrap_or_else(|| PathBuf::from(format!("run-{id}-provenance.zip")));
            let tmp = path.with_extension("zip.part");
            let mut f = std::fs::File::create(&tmp)
                .map_err(|e| other(format!("{}: {e}", tmp.display())))?;
            let n = c
                .download(&format!("/api/v1/runs/{}/provenance", seg(&id)), &mut f)
                .await;
            let n = match n {
                Ok(n) => n,
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e);
                }
            };
            std::fs::rename(&tmp, &path).map_err(|e| other(format!("{}: {e}", path.display())))?;
            println!("wrote {} ({n} bytes)", path.display());
            Ok(())
        }
    }
}

fn is_over(phase: &str) -> bool {
    matches!(phase, "succeeded" | "failed" | "reused" | "skipped")
}

/// After a submit or resume: the run, followed to its end with `wait`;
/// a run that did not succeed is a failure of the command.
async fn finish(c: &Client, mut run: Run, wait: bool, json: bool) -> Result<(), ClientError> {
    if wait {
        run = follow(c, run, !json).await?;
    }
    if json {
        print_json(&run)?;
    } else if !wait {
        println!(
            "run {} of {} {} {}; follow it with `insitu runs show {}`",
            run.id, run.pipeline, run.version, run.state, run.id
        );
    } else {
        show_run(&run);
    }
    match run.state.as_str() {
        "failed" | "cancelled" if wait => Err(ClientError::Other(format!(
            "run {} {}: {}",
            run.id,
            run.state,
            run.reason.unwrap_or_default()
        ))),
        _ => Ok(()),
    }
}

fn bar(done: usize, total: usize, width: usize) -> String {
    let filled = (done * width).checked_div(total).unwrap_or(0);
    (0..width)
        .map(|i| if i < filled { '#' } else { '.' })
        .collect()
}

/// One line per step: `[#####.....] extract 2/3 jobs, 1 running`.
fn progress_lines(run: &Run) -> Vec<String> {
    let mut lines = vec![format!("run {} {}", run.id, run.state)];
    for s in &run.steps {
        let name = if s.step.is_empty() { "(tool)" } else { &s.step };
        let mut line = format!(
            "[{}] {name:<20} {:>9} {}/{} jobs",
            bar(s.done, s.jobs.max(1), 20),
            s.phase,
            s.done,
            s.jobs
        );
        if s.running > 0 {
            line.push_str(&format!(", {} running", s.running));
        }
        if s.reused > 0 {
            line.push_str(&format!(", {} reused", s.reused));
        }
        if s.failed > 0 {
            line.push_str(&format!(", {} failed", s.failed));
        }
        lines.push(line);
    }
    lines
}

/// Follows a run to its end, redrawing each step's bar on a terminal
/// (printing the lines that changed otherwise).
async fn follow(c: &Client, mut run: Run, show: bool) -> Result<Run, ClientError> {
    let terminal = std::io::stderr().is_terminal();
    let mut shown: Vec<String> = Vec::new();
    loop {
        if show {
            let lines = progress_lines(&run);
            let mut err = std::io::stderr();
            if terminal {
                if !shown.is_empty() {
                    let _ = write!(err, "\x1b[{}A", shown.len());
                }
                for l in &lines {
                    let _ = writeln!(err, "\x1b[2K{l}");
                }
            } else {
                for l in lines.iter().filter(|l| !shown.contains(l)) {
                    let _ = writeln!(err, "{l}");
                }
            }
            shown = lines;
        }
        if !matches!(run.state.as_str(), "queued" | "running") {
            return Ok(run);
        }
        run = c
            .call(
                Method::GET,
                &format!(
                    "/api/v1/runs/{}?since={}&state={}&wait=20",
                    seg(&run.id),
                    run.events_seen,
                    run.state
                ),
                None,
            )
            .await?;
        // The server answers at once on news; a short pause keeps a busy
        // run from drawing faster than anyone reads.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn show_run(run: &Run) {
    println!(
        "run {} of {} {} in {}: {}",
        run.id, run.pipeline, run.version, run.zone, run.state
    );
    if let Some(r) = &run.reason {
        println!("reason: {r}");
    }
    if let Some(n) = &run.notice {
        println!("note: {n}");
    }
    for l in progress_lines(run).iter().skip(1) {
        println!("{l}");
    }
    if let Some(outputs) = &run.outputs {
        println!("outputs (in your workspace, {}):", run.output_dir);
        if let Some(m) = outputs.as_object() {
            for (k, v) in m {
                println!("  {k}: {}", describe_output(v));
            }
        }
    }
}

fn describe_output(v: &Value) -> String {
    match v {
        Value::Object(m) if m.contains_key("class") => m
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        Value::Array(items) => {
            let all: Vec<String> = items.iter().map(describe_output).collect();
            all.join(", ")
        }
        other => other.to_string(),
    }
}
