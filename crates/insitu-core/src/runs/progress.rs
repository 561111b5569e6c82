//! A run's progress, read from the engine's event stream (`--events`, one
//! JSON object a line; see the engine's `events` module): each step with
//! its jobs waiting, running, done and failed (a scatter's 312/1000), each
//! job with its times and exit code, and how the run ended. The stream is
//! read as it grows, complete lines only, from where the last read
//! stopped; after a restart of the platform it is read again from the
//! start, which gives the same progress.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One line of the engine's stream (unknown events are skipped).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EngineEvent {
    RunStarted {
        at_ms: i64,
    },
    StepStarted {
        step: Option<String>,
        jobs: usize,
        #[serde(default)]
        scatter: bool,
        at_ms: i64,
    },
    JobStarted {
        job: u64,
        step: Option<String>,
        index: Option<usize>,
        at_ms: i64,
    },
    JobFinished {
        job: u64,
        step: Option<String>,
        index: Option<usize>,
        at_ms: i64,
        status: String,
        exit_code: Option<i32>,
        error: Option<String>,
    },
    StepFinished {
        step: Option<String>,
        at_ms: i64,
        status: String,
        error: Option<String>,
    },
    RunFinished {
        at_ms: i64,
        status: String,
        exit_code: i32,
        error: Option<String>,
    },
    #[serde(other)]
    Other,
}

/// Where a step or job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Waiting,
    Running,
    Succeeded,
    Failed,
    /// Taken from the cache of an earlier run.
    Reused,
    /// Not run: its `when` was false.
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobProgress {
    /// The job's number in the run (its log is `job<N>`).
    pub job: u64,
    pub step: Option<String>,
    /// Its place in the step's scatter.
    pub index: Option<usize>,
    pub phase: Phase,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepProgress {
    /// The step's path (`outer/inner` inside a subworkflow); the empty
    /// string for a lone tool.
    pub step: String,
    pub phase: Phase,
    pub scatter: bool,
    /// Jobs known so far (a scatter's size once it started).
    pub jobs: usize,
    pub running: usize,
    /// Ended, whatever the outcome (succeeded, failed, reused, skipped).
    pub done: usize,
    pub failed: usize,
    pub reused: usize,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    pub error: Option<String>,
    /// Runs of this step started and not yet finished (a step inside a
    /// scattered subworkflow starts once per run of it).
    #[serde(skip)]
    open: usize,
}

/// How the engine said the run ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunEnd {
    pub succeeded: bool,
    pub exit_code: i32,
    pub error: Option<String>,
    pub at_ms: i64,
}

/// Everything the events said so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Progress {
    pub steps: Vec<StepProgress>,
    pub jobs: BTreeMap<u64, JobProgress>,
    pub started_at_ms: Option<i64>,
    pub end: Option<RunEnd>,
    /// Events taken in so far: a follower asks for news after it.
    pub seen: u64,
}

impl Progress {
    fn step_mut(&mut self, step: &Option<String>) -> &mut StepProgress {
        let name = step.clone().unwrap_or_default();
        let i = match self.steps.iter().position(|s| s.step == name) {
            Some(i) => i,
            None => {
                self.steps.push(StepProgress {
                    step: name,
                    phase: Phase::Waiting,
                    scatter: false,
                    jobs: 0,
                    running: 0,
                    done: 0,
                    failed: 0,
                    reused: 0,
                    started_at_ms: None,
                    finished_at_ms: None,
                    error: None,
                    open: 0,
                });
                self.steps.len() - 1
            }
        };
        &mut self.steps[i]
    }

    /// Takes in one event.
    pub fn apply(&mut self, e: EngineEvent) {
        self.seen += 1;
        match e {
            EngineEvent::RunStarted { at_ms } => self.started_at_ms = Some(at_ms),
            EngineEvent::StepStarted {
                step,
                jobs,
                scatter,
                at_ms,
            } => {
                let s = self.step_mut(&step);
                s.jobs += jobs;
                s.scatter |= scatter;
                s.open += 1;
                s.phase = Phase::Running;
                s.started_at_ms.get_or_insert(at_ms);
                s.finished_at_ms = None;
            }
            EngineEvent::JobStarted {
                job,
                step,
                index,
                at_ms,
            } => {
                let s = self.step_mut(&step);
                s.running += 1;
                if s.phase == Phase::Waiting {
                    s.phase = Phase::Running;
                }
                s.started_at_ms.get_or_insert(at_ms);
                if step.is_none() && s.jobs == 0 {
                    s.jobs = 1;
                }
                self.jobs.insert(
                    job,
                    JobProgress {
                        job,
                        step,
                        index,
                        phase: Phase::Running,
                        started_at_ms: Some(at_ms),
                        finished_at_ms: None,
                        exit_code: None,
                        error: None,
                    },
                );
            }
            EngineEvent::JobFinished {
                job,
                step,
                index,
                at_ms,
                status,
                exit_code,
                error,
            } => {
                let phase = match status.as_str() {
                    "success" => Phase::Succeeded,
                    "reused" => Phase::Reused,
                    "skipped" => Phase::Skipped,
                    _ => Phase::Failed,
                };
                let was_running = self
                    .jobs
                    .get(&job)
                    .is_some_and(|j| j.phase == Phase::Running);
                let s = self.step_mut(&step);
                if was_running {
                    s.running = s.running.saturating_sub(1);
                }
                s.done += 1;
                if step.is_none() && s.jobs == 0 {
                    s.jobs = 1;
                }
                match phase {
                    Phase::Failed => s.failed += 1,
                    Phase::Reused => s.reused += 1,
                    _ => {}
                }
                let started = self.jobs.get(&job).and_then(|j| j.started_at_ms);
                self.jobs.insert(
                    job,
                    JobProgress {
                        job,
                        step,
                        index,
                        phase,
                        started_at_ms: started,
                        finished_at_ms: Some(at_ms),
                        exit_code,
                        error,
                    },
                );
            }
            EngineEvent::StepFinished {
                step,
                at_ms,
                status,
                error,
            } => {
                let s = self.step_mut(&step);
                s.open = s.open.saturating_sub(1);
                if status != "success" {
                    s.phase = Phase::Failed;
                    s.error = s.error.take().or(error);
                } else if s.open == 0 && s.phase != Phase::Failed {
                    s.phase = if s.reused == s.done && s.done > 0 {
                        Phase::Reused
                    } else {
                        Phase::Succeeded
                    };
                }
                if s.open == 0 {
                    s.finished_at_ms = Some(at_ms);
                }
            }
            EngineEvent::RunFinished {
                at_ms,
                status,
                exit_code,
                error,
            } => {
                // A lone tool has no step events: its one step ends here.
                if let Some(s) = self.steps.iter_mut().find(|s| s.step.is_empty()) {
                    s.phase = if status == "success" {
                        if s.reused > 0 {
                            Phase::Reused
                        } else {
                            Phase::Succeeded
                        }
                    } else {
                        Phase::Failed
                    };
                    s.finished_at_ms = Some(at_ms);
                }
                self.end = Some(RunEnd {
                    succeeded: status == "success",
                    exit_code,
                    error,
                    at_ms,
                });
            }
            EngineEvent::Other => {}
        }
    }

    /// After the run ended without the engine saying so (cancelled, or
    /// its engine gone): whatever was still running did not finish.
    pub fn interrupt(&mut self) {
        for s in &mut self.steps {
            if s.phase == Phase::Running {
                s.phase = Phase::Failed;
            }
            s.running = 0;
        }
        for j in self.jobs.values_mut() {
            if j.phase == Phase::Running {
                j.phase = Phase::Failed;
            }
        }
    }
}

/// Reads an event file as it grows: complete lines, from where it stopped.
#[derive(Debug)]
pub struct EventReader {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl EventReader {
    pub fn new(path: &Path) -> EventReader {
        EventReader {
            path: path.to_path_buf(),
            offset: 0,
            partial: Vec::new(),
        }
    }

    /// The events written since the last call (none while the file does
    /// not exist). Lines that do not parse are skipped.
    pub fn read_new(&mut self) -> Vec<EngineEvent> {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut bytes = Vec::new();
        // At most 16 MiB a call; the rest comes with the next one.
        let Ok(n) = f.take(16 << 20).read_to_end(&mut bytes) else {
            return Vec::new();
        };
        self.offset += n as u64;
        self.partial.extend_from_slice(&bytes);
        let Some(last) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return Vec::new();
        };
        let complete: Vec<u8> = self.partial.drain(..=last).collect();
        complete
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(|l| serde_json::from_slice::<EngineEvent>(l).ok())
            .collect()
    }
}

/// The whole progress of an event file.
pub fn read_all(path: &Path) -> Progress {
    let mut p = Progress::default();
    for e in EventReader::new(path).read_new() {
        p.apply(e);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_scatter_counts_its_jobs_and_ends_with_the_run() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("events.jsonl");
        let mut f = std::fs::File::create(&path).unwrap();
        writeln!(
            f,
            r#"{{"event":"run_started","at_ms":1,"pid":5,"version":"0.1.0"}}"#
        )
        .unwrap();
        writeln!(
            f,
            r#"{{"event":"step_started","step":"extract","jobs":3,"scatter":true,"at_ms":2}}"#
        )
        .unwrap();
        for j in 0..3 {
            writeln!(f, r#"{{"event":"job_started","job":{j},"step":"extract","index":{j},"at_ms":3,"log":"x"}}"#).unwrap();
        }
        // Half a line: still being written.
        write!(
            f,
            r#"{{"event":"job_finished","job":0,"step":"extract","index":0,"#
        )
        .unwrap();
        f.flush().unwrap();
        let mut reader = EventReader::new(&path);
        let mut p = Progress::default();
        for e in reader.read_new() {
            p.apply(e);
        }
        assert_eq!(p.steps[0].running, 3);
        assert_eq!(p.steps[0].phase, Phase::Running);
        writeln!(
            f,
            r#""at_ms":4,"status":"success","exit_code":0,"error":null,"log":"x"}}"#
        )
        .unwrap();
        writeln!(f, r#"{{"event":"job_finished","job":1,"step":"extract","index":1,"at_ms":5,"status":"failed","exit_code":3,"error":"boom","log":"x"}}"#).unwrap();
        writeln!(f, r#"{{"event":"something_new","at_ms":5}}"#).unwrap();
        for e in reader.read_new() {
            p.apply(e);
        }
        let s = &p.steps[0];
        assert_eq!((s.jobs, s.running, s.done, s.failed), (3, 1, 2, 1));
        assert_eq!(p.jobs[&1].exit_code, Some(3));
        assert_eq!(p.jobs[&1].phase, Phase::Failed);
        writeln!(f, r#"{{"event":"step_finished","step":"extract","at_ms":6,"status":"failed","error":"boom"}}"#).unwrap();
        writeln!(f, r#"{{"event":"run_finished","at_ms":7,"status":"failed","exit_code":1,"error":"step failed"}}"#).unwrap();
        for e in reader.read_new() {
            p.apply(e);
        }
        assert_eq!(p.steps[0].phase, Phase::Failed);
        assert_eq!(p.end.as_ref().unwrap().exit_code, 1);
        // Read again from the start: the same progress.
        assert_eq!(read_all(&path), p);
    }

    #[test]
    fn a_lone_tool_is_one_step_that_ends_with_the_run() {
        let mut p = Progress::default();
        for line in [
            r#"{"event":"run_started","at_ms":1,"pid":5,"version":"0.1.0"}"#,
            r#"{"event":"job_finished","job":0,"step":null,"index":null,"at_ms":2,"status":"reused","exit_code":null,"error":null,"log":null}"#,
            r#"{"event":"run_finished","at_ms":3,"status":"success","exit_code":0,"error":null}"#,
        ] {
            p.apply(serde_json::from_str(line).unwrap());
        }
        assert_eq!(p.steps.len(), 1);
        assert_eq!(p.steps[0].step, "");
        assert_eq!((p.steps[0].jobs, p.steps[0].done), (1, 1));
        assert_eq!(p.steps[0].phase, Phase::Reused);
        assert!(p.end.unwrap().succeeded);
    }
}
