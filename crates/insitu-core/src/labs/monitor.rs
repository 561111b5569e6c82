//! The lab monitor, run every second: running labs whose process ended are
//! marked so (failed, or stopped when the tool exited cleanly), idle ones
//! are stopped, memory kills become lab events as they happen, and a lab
//! running in the store but unknown here (started by another server
//! process) is taken over.

use std::time::{Duration, Instant};

use insitu_domain::{LabEventKind, LabState};
use insitu_launcher::MemoryKill;
use insitu_store::{LabEventRecord, LabRecord, StoreError};

use super::{Labs, describe, describe_event, oom_reason, unix_seconds};

/// What [`Labs::take_over`] found.
enum TakeOver {
    Taken,
    /// Its sandbox has ended.
    Gone,
    /// It is no longer running (a stop came meanwhile).
    Moved,
}

/// How often a lab's last activity is written to the store at most.
const ACTIVITY_SAVED_EVERY: Duration = Duration::from_secs(30);

impl Labs {
    /// One round of the monitor (see the module).
    pub async fn check_running(&self) -> Result<(), StoreError> {
        self.sweep_networks().await;
        self.save_activity().await;
        // Labs on Slurm follow the scheduler.
        self.check_slurm().await?;
        let running = self.store.labs_in_states(&[LabState::Running]).await?;
        for mut lab in running {
            if self.launch_of(&lab.id).is_some() || lab.job.is_some() {
                continue;
            }
            if !self.has_process(&lab) {
                match self.take_over(&lab).await {
                    TakeOver::Taken => {}
                    TakeOver::Gone => {
                        self.ended_unwatched(&mut lab).await?;
                        continue;
                    }
                    TakeOver::Moved => continue,
                }
            }
            if let Some(limit) = self.cfg.idle_timeout
                && self.idle_for(&lab.id).is_some_and(|idle| idle >= limit)
            {
                self.cull(lab, limit).await?;
                continue;
            }
            let (kills, limit) = match self.procs.lock() {
                Ok(mut procs) => match procs.get_mut(&lab.id) {
                    Some(p) => (p.memory_kills(), p.memory_limit()),
                    None => (Vec::new(), None),
                },
                Err(_) => (Vec::new(), None),
            };
            self.record_memory_kills(&lab, &kills, limit).await;
            if let Some(code) = self.exited(&lab.id) {
                self.ended(lab, code).await?;
            }
        }
        self.release_strays().await?;
        self.retain_samp_hubs().await
    }

    fn has_process(&self, lab: &LabRecord) -> bool {
        self.procs.lock().is_ok_and(|p| p.contains_key(&lab.id))
    }

    /// Takes over a running lab this process has no process of (another
    /// server process started it): its sandbox, route and idle clock.
    async fn take_over(&self, lab: &LabRecord) -> TakeOver {
        let Some(p) = self.find_process(lab) else {
            return TakeOver::Gone;
        };
        // Not one a stop here has just let go of.
        if !matches!(self.store.lab(&lab.id).await, Ok(Some(l)) if l.state == LabState::Running) {
            return TakeOver::Moved;
        }
        tracing::info!(lab = %lab.id, pid = p.pid(), "lab taken over");
        if let Ok(mut procs) = self.procs.lock() {
            procs.insert(lab.id.clone(), p);
        }
        self.resume_activity(lab).await;
        match self.network_of(&lab.user_id).await {
            Ok(network) => self.set_route(lab, LabState::Running, network),
            Err(e) => tracing::warn!(lab = %lab.id, error = %e, "lab network lost"),
        }
        TakeOver::Taken
    }

    /// A running lab whose sandbox ended while nothing here watched it.
    async fn ended_unwatched(&self, lab: &mut LabRecord) -> Result<(), StoreError> {
        let reason = self.recorded_reason(lab, "ended while it was not watched");
        self.end_process(lab, Duration::ZERO).await;
        self.end(lab, &[LabState::Running], LabState::Failed, reason)
            .await?;
        Ok(())
    }

    /// Stops a lab idle for `limit`.
    async fn cull(&self, mut lab: LabRecord, limit: Duration) -> Result<(), StoreError> {
        if !self
            .transition(&mut lab, &[LabState::Running], LabState::Stopping)
            .await?
        {
            return Ok(());
        }
        self.end_process(&lab, Duration::from_secs(5)).await;
        let reason = format!(
            "stopped after {} s without activity (idle culling); your workspace is kept",
            limit.as_secs()
        );
        self.end(&mut lab, &[LabState::Stopping], LabState::Stopped, reason)
            .await?;
        tracing::info!(lab = %lab.id, "idle lab stopped");
        Ok(())
    }

    /// A running lab whose process ended: failed (or stopped when the tool
    /// exited cleanly), with the real reason.
    async fn ended(&self, mut lab: LabRecord, code: Option<i32>) -> Result<(), StoreError> {
        let mut process = self.procs.lock().ok().and_then(|mut p| p.remove(&lab.id));
        self.drop_route(&lab.id);
        if let Some(p) = process.as_mut() {
            p.settle().await;
        }
        let (end, kills, limit) = match process.as_mut() {
            Some(p) => (p.end(), p.memory_kills(), p.memory_limit()),
            None => (None, Vec::new(), None),
        };
        self.record_memory_kills(&lab, &kills, limit).await;
        let oom = end.as_ref().is_some_and(|e| e.killed_for_memory);
        let code = end.map_or(code, |e| e.code);
        if let Some(mut p) = process {
            // Ends what is left and removes its control group.
            p.stop(Duration::ZERO).await;
        }
        let state = if code == Some(0) && !oom {
            LabState::Stopped
        } else {
            LabState::Failed
        };
        let reason = if oom {
            format!(
                "{} ({})",
                oom_reason(kills.iter().find(|k| k.tool), limit),
                describe(code)
            )
        } else {
            format!("the tool exited ({})", describe(code))
        };
        if self
            .end(&mut lab, &[LabState::Running], state, reason)
            .await?
        {
            tracing::info!(lab = %lab.id, reason = ?lab.reason, "lab ended");
        }
        Ok(())
    }

    /// Keeps the memory kills of a lab's processes as its events, and says
    /// so in its log, as they happen.
    pub(super) async fn record_memory_kills(
        &self,
        lab: &LabRecord,
        kills: &[MemoryKill],
        limit: Option<u64>,
    ) {
        for k in kills {
            let event = LabEventRecord {
                lab_id: lab.id.clone(),
                at: unix_seconds(k.at),
                kind: LabEventKind::MemoryKill,
                pid: k.pid.map(i64::from),
                command: k.command.clone(),
                memory_limit: limit.and_then(|l| i64::try_from(l).ok()),
                tool: k.tool,
            };
            let text = describe_event(&event);
            tracing::warn!(lab = %lab.id, pid = ?k.pid, command = ?k.command, tool = k.tool, "a lab's process was killed for lack of memory");
            if let Err(e) = self.store.add_lab_event(&event).await {
                tracing::warn!(lab = %lab.id, error = %e, "cannot record a lab's memory kill");
            }
            let line = format!("[insitu] {text}\n");
            let written = std::fs::OpenOptions::new()
                .append(true)
                .open(self.log_path(&lab.id))
                .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
            if let Err(e) = written {
                tracing::warn!(lab = %lab.id, error = %e, "cannot write to a lab's log");
            }
        }
    }

    /// Ends the processes this server holds of labs another server process
    /// ended.
    async fn release_strays(&self) -> Result<(), StoreError> {
        let held: Vec<_> = match self.procs.lock() {
            Ok(p) => p.keys().cloned().collect(),
            Err(_) => return Ok(()),
        };
        for id in held {
            if self.launch_of(&id).is_some() {
                continue;
            }
            if let Some(lab) = self.store.lab(&id).await?
                && !lab.state.is_active()
            {
                tracing::info!(lab = %lab.id, state = %lab.state, "ending the process of a lab ended elsewhere");
                self.end_process(&lab, Duration::from_secs(2)).await;
            }
        }
        Ok(())
    }

    /// Writes each lab's last activity to the store, at most every
    /// [`ACTIVITY_SAVED_EVERY`], so that idle culling resumes from it after
    /// a restart.
    async fn save_activity(&self) {
        let due: Vec<(insitu_domain::LabId, Instant)> = {
            let (Ok(activity), Ok(saved)) = (self.activity.lock(), self.activity_saved.lock())
            else {
                return;
            };
            activity
                .iter()
                .filter(|(id, at)| {
                    saved
                        .get(*id)
                        .is_none_or(|s| *at > s && s.elapsed() >= ACTIVITY_SAVED_EVERY)
                })
                .map(|(id, at)| (id.clone(), *at))
                .collect()
        };
        for (id, at) in due {
            let unix =
                crate::clock::now() - i64::try_from(at.elapsed().as_secs()).unwrap_or(i64::MAX / 2);
            match self.store.set_lab_activity(&id, unix).await {
                Ok(()) => {
                    if let Ok(mut saved) = self.activity_saved.lock() {
                        saved.insert(id, Instant::now());
                    }
                }
                Err(e) => tracing::warn!(lab = %id, error = %e, "cannot record a lab's activity"),
            }
        }
    }

    /// Starts a taken-over lab's idle clock where the store left it.
    pub(super) async fn resume_activity(&self, lab: &LabRecord) {
        let last = self.store.lab_activity(&lab.id).await.ok().flatten();
        let ago = last
            .map(|at| crate::clock::now().saturating_sub(at).max(0))
            .and_then(|s| u64::try_from(s).ok())
            .map_or(Duration::ZERO, Duration::from_secs);
        let at = Instant::now().checked_sub(ago).unwrap_or_else(Instant::now);
        if let Ok(mut a) = self.activity.lock() {
            a.insert(lab.id.clone(), at);
        }
        if let Ok(mut saved) = self.activity_saved.lock() {
            saved.insert(lab.id.clone(), at);
        }
    }

    /// Why a lab whose sandbox ended unwatched ended, from what its
    /// supervisor recorded; `when` says when that was.
    pub(super) fn recorded_reason(&self, lab: &LabRecord, when: &str) -> String {
        let log = self.log_path(&lab.id);
        let ended = lab
            .pid
            .and_then(|p| u32::try_from(p).ok())
            .zip(lab.pid_start.and_then(|s| u64::try_from(s).ok()))
            .and_then(|(pid, start)| insitu_launcher::process::recorded_end(pid, start, &log));
        let at = |end: &insitu_launcher::SandboxEnd| {
            end.at
                .map(|t| format!(" at {}", crate::clock::rfc3339(unix_seconds(t))))
                .unwrap_or_default()
        };
        match ended {
            Some(end) if end.killed_for_memory => {
                format!("{}{}; it {when}", oom_reason(None, None), at(&end))
            }
            Some(end) => format!(
                "the tool exited ({}){}; it {when}",
                describe(end.code),
                at(&end)
            ),
            None => format!("its process was gone; it {when}"),
        }
    }
}
