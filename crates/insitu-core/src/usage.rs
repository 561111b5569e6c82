//! The platform's use over time, for the operator's console: a sample
//! every `usage.sample_every` (labs running, the CPU time labs used since
//! the sample before, read from their control groups, and the bytes the
//! user and team workspaces hold), kept in the store for
//! `usage.retention`, and read back in steps for plots.
//!
//! CPU time is counted per lab between samples, so a lab that ends between
//! two samples loses at most its last interval; with several server
//! processes on one database each records its own samples, and only one
//! sample is kept per second.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use insitu_domain::LabState;
use insitu_store::{Store, UsageSample};

use crate::clock::now;
use crate::error::Error;
use crate::labs::Labs;

/// Most steps one series may have.
pub const MAX_STEPS: i64 = 2000;

/// One step of a series: the samples taken in `[at, at + step)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UsagePoint {
    pub at: i64,
    /// How many samples fell in the step (0: nothing is known of it).
    pub samples: u64,
    /// The most labs running at a sample.
    pub labs_running: Option<u64>,
    /// CPU hours the labs used.
    pub cpu_hours: Option<f64>,
    /// The most bytes the workspaces held at a sample.
    pub storage_bytes: Option<u64>,
}

/// The labs' CPU as the last samples saw it.
struct CpuSeen {
    at: std::time::Instant,
    seconds: HashMap<String, f64>,
    cores: HashMap<String, f64>,
}

/// Samples the platform's use and reads it back.
pub struct Usage {
    store: Store,
    labs: Arc<Labs>,
    workspaces: Vec<PathBuf>,
    retention_secs: i64,
    /// When the last sample was taken, each active lab's CPU seconds then,
    /// and the CPU cores each used between the last two samples.
    last_cpu: Mutex<CpuSeen>,
}

impl Usage {
    pub(crate) fn new(
        store: Store,
        labs: Arc<Labs>,
        data_dir: &std::path::Path,
        retention_secs: u64,
    ) -> Usage {
        Usage {
            store,
            labs,
            workspaces: vec![data_dir.join("workspaces"), data_dir.join("teams")],
            retention_secs: i64::try_from(retention_secs).unwrap_or(i64::MAX),
            last_cpu: Mutex::new(CpuSeen {
                at: std::time::Instant::now(),
                seconds: HashMap::new(),
                cores: HashMap::new(),
            }),
        }
    }

    /// Takes a sample now, records it and removes the samples past the
    /// retention.
    pub async fn sample(&self) -> Result<UsageSample, Error> {
        let labs = self.labs.operated().await?;
        let running = labs
            .iter()
            .filter(|l| l.lab.state == LabState::Running)
            .count();
        let cpu_now: HashMap<String, f64> = labs
            .iter()
            .filter_map(|l| Some((l.lab.id.to_string(), l.cpu_seconds?)))
            .collect();
        let used_secs: f64 = {
            let mut last = self.last_cpu.lock().map_err(|_| Error::Poisoned)?;
            let interval = last.at.elapsed().as_secs_f64();
            let mut cores = HashMap::new();
            let mut used = 0.0;
            for (id, s) in &cpu_now {
                let before = last.seconds.get(id).copied();
                let delta = (s - before.unwrap_or(0.0)).max(0.0);
                used += delta;
                if before.is_some() && interval > 0.0 {
                    cores.insert(id.clone(), delta / interval);
                }
            }
            *last = CpuSeen {
                at: std::time::Instant::now(),
                seconds: cpu_now,
                cores,
            };
            used
        };
        let dirs = self.workspaces.clone();
        let storage = tokio::task::spawn_blocking(move || {
            dirs.iter()
                .map(|d| crate::volumes::count_files(d).1)
                .sum::<u64>()
        })
        .await?;
        let sample = UsageSample {
            at: now(),
            labs_running: i64::try_from(running).unwrap_or(i64::MAX),
            cpu_millis: (used_secs * 1000.0).round() as i64,
            storage_bytes: i64::try_from(storage).unwrap_or(i64::MAX),
        };
        self.store.add_usage_sample(&sample).await?;
        self.store
            .delete_usage_before(sample.at.saturating_sub(self.retention_secs))
            .await?;
        Ok(sample)
    }

    /// The CPU cores a lab used on average between the last two samples:
    /// its CPU "now" (none before it was in two samples).
    pub fn cpu_cores(&self, lab: &str) -> Option<f64> {
        self.last_cpu.lock().ok()?.cores.get(lab).copied()
    }

    /// The use in `[from, to)` in steps of `step` seconds.
    pub async fn series(&self, from: i64, to: i64, step: i64) -> Result<Vec<UsagePoint>, Error> {
        if step <= 0 || to <= from || step_count(from, to, step) > MAX_STEPS {
            return Err(Error::InvalidUsageRange {
                from,
                to,
                step,
                max_steps: MAX_STEPS,
            });
        }
        let samples = self.store.usage_samples(from, to).await?;
        Ok(steps(&samples, from, to, step))
    }
}

/// Steps of `step` (> 0) seconds covering `[from, to)` (from < to).
fn step_count(from: i64, to: i64, step: i64) -> i64 {
    to.saturating_sub(from).saturating_add(step - 1) / step
}

/// Samples (oldest first) gathered into steps.
fn steps(samples: &[UsageSample], from: i64, to: i64, step: i64) -> Vec<UsagePoint> {
    let mut points: Vec<UsagePoint> = (0..step_count(from, to, step))
        .map(|i| UsagePoint {
            at: from + i * step,
            samples: 0,
            labs_running: None,
            cpu_hours: None,
            storage_bytes: None,
        })
        .collect();
    for s in samples {
        let Ok(i) = usize::try_from((s.at - from) / step) else {
            continue;
        };
        let Some(p) = points.get_mut(i) else {
            continue;
        };
        let labs = u64::try_from(s.labs_running).unwrap_or(0);
        let bytes = u64::try_from(s.storage_bytes).unwrap_or(0);
        p.samples += 1;
        p.labs_running = Some(p.labs_running.map_or(labs, |l| l.max(labs)));
        p.cpu_hours = Some(p.cpu_hours.unwrap_or(0.0) + s.cpu_millis as f64 / 3_600_000.0);
        p.storage_bytes = Some(p.storage_bytes.map_or(bytes, |b| b.max(bytes)));
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_fall_into_their_steps() {
        let s = |at, labs, cpu_millis, bytes| UsageSample {
            at,
            labs_running: labs,
            cpu_millis,
            storage_bytes: bytes,
        };
        let samples = [
            s(100, 1, 1_800_000, 10),
            s(130, 3, 1_800_000, 5),
            s(250, 2, 0, 7),
        ];
        let p = steps(&samples, 100, 400, 100);
        assert_eq!(p.len(), 3);
        assert_eq!(
            (p[0].at, p[0].samples, p[0].labs_running),
            (100, 2, Some(3))
        );
        assert_eq!(p[0].cpu_hours, Some(1.0));
        assert_eq!(p[0].storage_bytes, Some(10));
        assert_eq!((p[1].samples, p[1].labs_running), (1, Some(2)));
        assert_eq!(
            (p[2].samples, p[2].labs_running, p[2].cpu_hours),
            (0, None, None)
        );
    }
}
