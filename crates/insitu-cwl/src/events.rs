//! The run's event stream (`--events FILE`): one JSON object a line, for a
//! program that follows the run (the platform shows each step's status
//! from it) rather than the human log on standard error.
//!
//! Every line is written whole with one `write` on a file opened for
//! appending and is never changed afterwards, so a reader may read the file
//! while the run goes on (and again from the start after a restart of its
//! own) and take every complete line as it is; a last line without its
//! newline is still being written. The events, in the order they happen:
//!
//! - `run_started` `{at_ms, pid, version}`;
//! - `step_started` `{step, jobs, scatter, at_ms}` when a workflow step is
//!   dispatched, with its number of jobs (a scatter's size; 1 otherwise).
//!   A step inside a subworkflow is named by its path (`outer/inner`) and
//!   starts once per run of that subworkflow;
//! - `job_started` `{job, step, index, at_ms, log}` when a job's command
//!   starts (once it holds a slot; for ExpressionTools and subworkflows,
//!   when they start). `job` is unique in the run, `index` the job's place
//!   in its step's scatter, `log` the file that gets what the command
//!   writes to standard output and error and does not capture itself;
//! - `job_finished` `{job, step, index, at_ms, status, exit_code, error,
//!   log}`: `status` is `success`, `failed`, `skipped` (`when` was false)
//!   or `reused` (a result from the cache; no `job_started` before it);
//! - `job_placed` `{job, at_ms, slurm_job, node}` when a job runs on a
//!   Slurm cluster (`--slurm`): the Slurm job (an allocation several jobs
//!   may share, or the job's own) and the node that ran it. Sent before
//!   `job_finished`, as soon as the executor knows;
//! - `step_finished` `{step, at_ms, status, error}`: `success` or `failed`;
//! - `run_finished` `{at_ms, status, exit_code, error}`: the last line,
//!   written once the outputs are in place (and the provenance crate
//!   written); `exit_code` is the engine's own.
//!
//! Times are Unix milliseconds. A lone tool's jobs have no `step`.

use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Success,
    Failed,
    Skipped,
    Reused,
}

/// One line of the stream.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event<'a> {
    RunStarted {
        at_ms: u64,
        pid: u32,
        version: &'a str,
    },
    StepStarted {
        step: Option<&'a str>,
        jobs: usize,
        scatter: bool,
        at_ms: u64,
    },
    JobStarted {
        job: u64,
        step: Option<&'a str>,
        index: Option<usize>,
        at_ms: u64,
        log: Option<&'a Path>,
    },
    JobFinished {
        job: u64,
        step: Option<&'a str>,
        index: Option<usize>,
        at_ms: u64,
        status: Status,
        exit_code: Option<i32>,
        error: Option<&'a str>,
        log: Option<&'a Path>,
    },
    JobPlaced {
        job: u64,
        at_ms: u64,
        slurm_job: &'a str,
        node: Option<&'a str>,
    },
    StepFinished {
        step: Option<&'a str>,
        at_ms: u64,
        status: Status,
        error: Option<&'a str>,
    },
    RunFinished {
        at_ms: u64,
        status: Status,
        exit_code: i32,
        error: Option<&'a str>,
    },
}

/// Where a run's events go, and where its jobs' logs are made.
#[derive(Debug)]
pub struct Events {
    file: Mutex<std::fs::File>,
    next_job: AtomicU64,
    /// Directory of the jobs' logs (`--step-logs`), if any.
    logs: Option<PathBuf>,
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Events {
    /// Appends to `path` (made if missing); jobs' logs go under `logs`.
    pub fn open(path: &Path, logs: Option<PathBuf>) -> std::io::Result<Events> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        // Jobs open their logs from other directories (the run's sandbox).
        let logs = match logs {
            Some(dir) => {
                std::fs::create_dir_all(&dir)?;
                Some(std::fs::canonicalize(dir)?)
            }
            None => None,
        };
        Ok(Events {
            file: Mutex::new(file),
            next_job: AtomicU64::new(0),
            logs,
        })
    }

    /// Writes one event as a line. A failure to write is not the run's:
    /// it goes on, and the reader sees fewer events.
    pub fn emit(&self, event: &Event<'_>) {
        let Ok(mut line) = serde_json::to_vec(event) else {
            return;
        };
        line.push(b'\n');
        if let Ok(mut f) = self.file.lock() {
            let _ = f.write_all(&line);
        }
    }

    /// A new job's number, unique in the run.
    pub fn next_job(&self) -> u64 {
        self.next_job.fetch_add(1, Ordering::SeqCst)
    }

    /// The log file of job `job`, when jobs get logs.
    pub fn log_path(&self, job: u64) -> Option<PathBuf> {
        self.logs.as_ref().map(|d| d.join(format!("job{job}.log")))
    }
}

/// One job's events: made when the job is known, `started` when its
/// command starts, `finished` once when it ends.
#[derive(Debug)]
pub struct JobTrack {
    events: std::sync::Arc<Events>,
    /// The job's number in the run.
    pub job: u64,
    step: Option<String>,
    index: Option<usize>,
    /// Its log file, for a job that runs a command.
    pub log: Option<PathBuf>,
}

impl JobTrack {
    /// A job of step `step` (at `index` in its scatter); with `with_log`,
    /// it gets a log file when the run's jobs do.
    pub fn new(
        events: &std::sync::Arc<Events>,
        step: Option<&str>,
        index: Option<usize>,
        with_log: bool,
    ) -> JobTrack {
        let job = events.next_job();
        JobTrack {
            log: with_log.then(|| events.log_path(job)).flatten(),
            events: events.clone(),
            job,
            step: step.map(str::to_owned),
            index,
        }
    }

    pub fn started(&self) {
        self.events.emit(&Event::JobStarted {
            job: self.job,
            step: self.step.as_deref(),
            index: self.index,
            at_ms: now_ms(),
            log: self.log.as_deref(),
        });
    }

    pub fn finished(&self, status: Status, exit_code: Option<i32>, error: Option<&str>) {
        self.events.emit(&Event::JobFinished {
            job: self.job,
            step: self.step.as_deref(),
            index: self.index,
            at_ms: now_ms(),
            status,
            exit_code,
            error,
            log: self.log.as_deref().filter(|l| l.exists()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_whole_json_lines_with_their_names() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("events.jsonl");
        let ev = Events::open(&path, Some(d.path().join("logs"))).unwrap();
        let job = ev.next_job();
        let log = ev.log_path(job).unwrap();
        ev.emit(&Event::JobStarted {
            job,
            step: Some("extract"),
            index: Some(2),
            at_ms: 5,
            log: Some(&log),
        });
        ev.emit(&Event::RunFinished {
            at_ms: 6,
            status: Status::Failed,
            exit_code: 1,
            error: Some("boom"),
        });
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["event"], "job_started");
        assert_eq!(lines[0]["step"], "extract");
        assert_eq!(lines[0]["index"], 2);
        assert_eq!(lines[0]["log"], log.display().to_string());
        assert_eq!(lines[1]["event"], "run_finished");
        assert_eq!(lines[1]["status"], "failed");
        assert_eq!(lines[1]["error"], "boom");
        assert!(d.path().join("logs").is_dir());
    }
}
