//! Labs in a Slurm zone: each is a batch job whose script starts the same
//! bubblewrap sandbox a local lab gets (volumes read-only, the workspace,
//! the lab's secret in its environment only), on the node Slurm allocates.
//!
//! The job's id is recorded as soon as `sbatch` answers, so a stop cancels
//! it (`scancel`) and a restarted platform finds it again. While the job
//! waits, the launch's progress shows Slurm's reason and the job's place in
//! the queue; once it runs, the node's address (`NodeAddr`) and the lab's
//! port are where the proxy reaches the tool, over the cluster's network,
//! always with the lab's secret (a datalab that takes none cannot run in a
//! Slurm zone).
//!
//! State follows the scheduler (`scontrol show job`): a job that ended is
//! stopped (cancelled, or its tool exited) or failed, with Slurm's state
//! and reason; one Slurm no longer knows is stopped, saying so; when Slurm
//! cannot be asked, a running lab becomes **unknown**, never stopped, and
//! is asked again every round of the monitor until it answers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use insitu_domain::{DatalabSpec, LabState, VolumeSpec};
use insitu_launcher::SandboxSpec;
use insitu_launcher::slurm::{BatchJob, JobState, SlurmCluster, SlurmError};
use insitu_store::{LabRecord, StoreError};

use super::{
    Labs, LaunchTicket, Probe, StartFailure, ToolAccess, free_port, launch_command, stop_requested,
    volume_mounts,
};

/// How often a launch asks Slurm about its job.
const POLL: Duration = Duration::from_millis(250);

impl Labs {
    /// Submits the lab's job and follows it until the tool answers.
    pub(super) async fn start_on_slurm(
        &self,
        lab: &mut LabRecord,
        spec: &DatalabSpec,
        username: &str,
        volumes: Vec<VolumeSpec>,
        cluster: SlurmCluster,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), StartFailure> {
        self.checkpoint(lab, stop).await?;
        let spec = &on_node(spec);
        let (workspace, team_workspaces) = self.prepare_home(lab, username).await?;
        // Picked here; the node must have it free (or the tool fails to
        // listen, and the lab fails saying so).
        let port = free_port().map_err(StartFailure::NoPort)?;
        let base_url = format!("/labs/{}/", lab.id);
        let access = ToolAccess::generate(spec.launch.credential);
        if let Some(access) = &access {
            access.save(&self.secret_path(&lab.id))?;
        }
        let (env, private_env) = self.launch_env(spec, lab, port, &base_url, username, &access);
        let mut sandbox = SandboxSpec {
            command: launch_command(spec, port, &base_url, username, lab.file.as_deref()),
            env,
            private_env,
            workspace,
            volumes: volume_mounts(&volumes),
            team_workspaces,
            hidden: self.cfg.hidden.clone(),
            // The GPUs are Slurm's to give (its GRES); the script passes
            // on what it allocated.
            devices: Vec::new(),
            expose: self.exposed(),
            // The node's network, where the proxy reaches it.
            share_network: true,
            run_as: Some(self.cfg.run_as),
            keep_caps: Vec::new(),
            die_with_parent: true,
            // The platform's socket is on this machine, not on the node.
            api_socket_dir: None,
        };
        self.prepare_session(&mut sandbox, spec, port, &base_url);
        // A desktop session's bridge listens where the proxy reaches it.
        sandbox.env.push((
            "INSITU_LISTEN".to_owned(),
            insitu_launcher::sandbox::LISTEN_ON_NODE.to_owned(),
        ));
        let log = self.log_path(&lab.id);
        let bwrap = self.cfg.bwrap.clone();
        let script = tokio::task::spawn_blocking(move || {
            insitu_launcher::slurm::write_job_files(&bwrap, &sandbox, &log, port)
        })
        .await
        .map_err(|e| StartFailure::Slurm(e.to_string()))?
        .map_err(|e| StartFailure::Slurm(e.to_string()))?;
        self.step(&lab.id, "sandbox_prepared");
        self.checkpoint(lab, stop).await?;
        let zone = self.cfg.zones.get(lab.zone.as_str());
        let default_memory = zone
            .and_then(|z| z.slurm.as_ref())
            .map_or(insitu_domain::zone::DEFAULT_SLURM_MEMORY, |s| {
                s.default_memory_bytes
            });
        let job = BatchJob {
            name: job_name(&lab.id),
            comment: format!("insitu lab {} of {}", lab.id, username),
            cpus: spec.resources.cpu.ceil().clamp(1.0, 4096.0) as u32,
            memory_bytes: if spec.resources.memory_bytes > 0 {
                spec.resources.memory_bytes
            } else {
                default_memory
            },
            gpus: spec.resources.gpu,
            time_limit: None,
        };
        let id = cluster
            .submit(&job, &script, &self.log_path(&lab.id))
            .await
            .map_err(|e| StartFailure::Slurm(e.to_string()))?;
        lab.job = Some(id.clone());
        lab.port = Some(i64::from(port));
        // Recorded at once: a stop or a restart finds the job by its id.
        if !self
            .transition(lab, &[LabState::Pending], LabState::Pending)
            .await?
        {
            self.cancel_job(&cluster, &id).await;
            return Err(StartFailure::Stopped);
        }
        tracing::info!(lab = %lab.id, job = %id, zone = %lab.zone, "lab submitted to Slurm");
        let path = format!(
            "{}{}",
            base_url.trim_end_matches('/'),
            spec.launch.readiness_path
        );
        self.follow_job(lab, &cluster, &path, stop).await
    }

    /// A launch whose job ended before its tool was ready: Slurm's word
    /// and the last lines the job wrote (why its script gave up, say).
    fn ended_early(&self, lab: &LabRecord, id: &str, state: &JobState) -> StartFailure {
        let tail = self.read_log_tail(&lab.id, 5).join(" | ");
        StartFailure::Slurm(format!(
            "{} before the tool was ready; last output: {tail}",
            job_end(id, state).1
        ))
    }

    /// Waits for a submitted lab's job to run, then for its tool to
    /// answer: the rest of a launch, and of one a restart found pending.
    pub(super) async fn follow_job(
        &self,
        lab: &mut LabRecord,
        cluster: &SlurmCluster,
        path: &str,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), StartFailure> {
        let Some(id) = lab.job.clone() else {
            return Err(StartFailure::Slurm("the lab has no Slurm job".into()));
        };
        let mut store_checked = tokio::time::Instant::now();
        let node = loop {
            if *stop.borrow() {
                return Err(StartFailure::Stopped);
            }
            match cluster.job(&id).await {
                Ok(JobState::Pending { reason }) => {
                    let position = cluster.queue_position(&id).await.ok().flatten();
                    let place = position.map_or(String::new(), |p| format!(", position {p}"));
                    self.note(
                        &lab.id,
                        format!("waiting in Slurm's queue as job {id}: {reason}{place}"),
                    );
                }
                Ok(JobState::Running { node }) => break node,
                Ok(JobState::Completing) => {}
                Ok(state) => return Err(self.ended_early(lab, &id, &state)),
                Err(e) => self.note(&lab.id, format!("job {id}: {e}; asking again")),
            }
            if store_checked.elapsed() >= Duration::from_secs(1) {
                store_checked = tokio::time::Instant::now();
                if self.stopped_elsewhere(lab).await {
                    return Err(StartFailure::Stopped);
                }
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = stop_requested(stop) => return Err(StartFailure::Stopped),
            }
        };
        self.note(&lab.id, format!("job {id} runs on {node}"));
        let port = lab
            .port
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| StartFailure::Slurm("the lab has no port".into()))?;
        let addr = node_address(cluster, &node, port).await?;
        lab.host = Some(addr.ip().to_string());
        self.step(&lab.id, "process_started");
        if !self
            .transition(
                lab,
                &[LabState::Pending, LabState::Starting],
                LabState::Starting,
            )
            .await?
        {
            return Err(StartFailure::Stopped);
        }
        self.set_route(lab, LabState::Starting, None);
        self.step(&lab.id, "waiting_for_readiness");
        let access = ToolAccess::load(&self.secret_path(&lab.id)).ok().flatten();
        let authorization = access.as_ref().and_then(ToolAccess::authorization);
        let deadline = tokio::time::Instant::now() + self.cfg.start_timeout;
        let mut answered = None;
        let mut asked = tokio::time::Instant::now();
        // Nothing on the node is asked before the job found the port free.
        let checked = insitu_launcher::slurm::port_checked_path(&self.log_path(&lab.id));
        let mut port_free = false;
        loop {
            if *stop.borrow() {
                return Err(StartFailure::Stopped);
            }
            port_free = port_free || checked.exists();
            if port_free {
                match super::probe(addr, path, None, authorization.as_deref()).await {
                    Probe::Ready => break,
                    Probe::Refused(status) => answered = Some(status),
                    Probe::NoAnswer => {}
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StartFailure::NotReady {
                    secs: self.cfg.start_timeout.as_secs(),
                    answered,
                });
            }
            if asked.elapsed() >= Duration::from_secs(1) {
                asked = tokio::time::Instant::now();
                if self.stopped_elsewhere(lab).await {
                    return Err(StartFailure::Stopped);
                }
                if let Ok(state @ (JobState::Ended { .. } | JobState::Vanished)) =
                    cluster.job(&id).await
                {
                    return Err(self.ended_early(lab, &id, &state));
                }
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
                () = stop_requested(stop) => return Err(StartFailure::Stopped),
            }
        }
        self.mark_running(lab, None).await?;
        tracing::info!(lab = %lab.id, job = %id, node = %node, "lab running on Slurm");
        Ok(())
    }

    /// Cancels a job; a failure (the scheduler cannot be reached) is
    /// logged and returned as `false`.
    async fn cancel_job(&self, cluster: &SlurmCluster, id: &str) -> bool {
        match cluster.cancel(id).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(job = %id, error = %e, "cannot cancel a lab's Slurm job");
                false
            }
        }
    }

    /// Ends a Slurm lab's job and route; `false` when the job could not be
    /// cancelled (Slurm unreachable), so the caller keeps it stopping.
    pub(super) async fn end_job(&self, lab: &LabRecord) -> bool {
        self.drop_route(&lab.id);
        let (Some(id), Some(cluster)) = (&lab.job, self.cfg.zones.cluster(lab.zone.as_str()))
        else {
            return true;
        };
        self.cancel_job(&cluster, id).await
    }

    /// One round of the monitor over the labs in Slurm zones that no
    /// launch here is following: running ones whose job ended, unknown
    /// ones Slurm answers about again, stops left unfinished.
    pub(super) async fn check_slurm(&self) -> Result<(), StoreError> {
        let labs = self
            .store
            .labs_in_states(&[LabState::Running, LabState::Unknown, LabState::Stopping])
            .await?;
        for mut lab in labs {
            let (Some(id), Some(cluster)) =
                (lab.job.clone(), self.cfg.zones.cluster(lab.zone.as_str()))
            else {
                continue;
            };
            if self.launch_of(&lab.id).is_some() {
                continue;
            }
            if lab.state == LabState::Stopping {
                // A stop that could not cancel the job (or another
                // process's stop, which finishes it itself).
                if self.stopping_here(&lab.id) {
                    continue;
                }
                if self.cancel_job(&cluster, &id).await {
                    self.end_stopping(&mut lab).await?;
                }
                continue;
            }
            match cluster.job(&id).await {
                Ok(JobState::Running { .. }) => {
                    if lab.state == LabState::Unknown {
                        let mut next = lab.clone();
                        next.reason = None;
                        if self
                            .transition(&mut next, &[LabState::Unknown], LabState::Running)
                            .await?
                        {
                            tracing::info!(lab = %lab.id, job = %id, "Slurm answers again: lab running");
                            lab = next;
                        }
                    }
                    if !self.has_route(&lab.id) || lab.state == LabState::Running {
                        self.set_route(&lab, lab.state, None);
                    }
                }
                // Ending: how is known once Slurm has cleaned up.
                Ok(JobState::Completing) => {}
                Ok(JobState::Pending { reason }) => {
                    // Requeued or suspended: not serving, not ended.
                    self.unknown(
                        &mut lab,
                        format!("its Slurm job {id} is waiting again ({reason})"),
                    )
                    .await?;
                }
                Ok(state) => {
                    let (to, reason) = job_end(&id, &state);
                    self.drop_route(&lab.id);
                    if self
                        .end(
                            &mut lab,
                            &[LabState::Running, LabState::Unknown],
                            to,
                            reason,
                        )
                        .await?
                    {
                        tracing::info!(lab = %lab.id, job = %id, state = %lab.state, reason = ?lab.reason, "lab's Slurm job ended");
                    }
                }
                Err(e @ (SlurmError::Unreachable(_) | SlurmError::Spawn { .. })) => {
                    self.unknown(
                        &mut lab,
                        format!("Slurm could not be asked about job {id}: {e}"),
                    )
                    .await?;
                }
                Err(e) => {
                    self.unknown(
                        &mut lab,
                        format!("Slurm answered nothing useful about job {id}: {e}"),
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// A running lab whose scheduler cannot tell: unknown, with why.
    async fn unknown(&self, lab: &mut LabRecord, why: String) -> Result<(), StoreError> {
        if lab.state != LabState::Running {
            return Ok(());
        }
        let mut next = lab.clone();
        next.reason = Some(why);
        if self
            .transition(&mut next, &[LabState::Running], LabState::Unknown)
            .await?
        {
            tracing::warn!(lab = %lab.id, reason = ?next.reason, "lab state unknown");
            self.set_route(&next, LabState::Unknown, None);
        }
        *lab = next;
        Ok(())
    }

    /// After a restart: a Slurm lab is found again by its job id. Running
    /// or unknown ones get their route back and are left to the monitor;
    /// a launch left half-way is followed on; a stop left half-way is
    /// finished. Returns `false` for a lab that is not a Slurm lab.
    pub(super) async fn adopt_slurm(
        self: &Arc<Self>,
        lab: &LabRecord,
        readiness: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<bool, StoreError> {
        let Some(cluster) = self.cfg.zones.cluster(lab.zone.as_str()) else {
            return Ok(false);
        };
        let mut lab = lab.clone();
        let Some(id) = lab.job.clone() else {
            // The old process recorded no job: it submitted none, or ended
            // between `sbatch` and recording the id. A job of that name goes.
            if let Err(e) = cluster.cancel_named(&job_name(&lab.id)).await {
                tracing::warn!(lab = %lab.id, error = %e, "cannot cancel a job the lab may have left");
            }
            self.end(
                &mut lab,
                &[LabState::Pending, LabState::Starting],
                LabState::Failed,
                "the platform restarted before the lab's Slurm job was recorded".to_owned(),
            )
            .await?;
            if lab.state == LabState::Stopping {
                self.end_stopping(&mut lab).await?;
            }
            return Ok(true);
        };
        match lab.state {
            LabState::Running | LabState::Unknown => {
                self.set_route(&lab, lab.state, None);
                tracing::info!(lab = %lab.id, job = %id, "Slurm lab adopted; the monitor asks Slurm");
            }
            LabState::Stopping => {
                if self.cancel_job(&cluster, &id).await {
                    self.end_stopping(&mut lab).await?;
                }
            }
            LabState::Pending | LabState::Starting => {
                let base = format!("/labs/{}", lab.id);
                let path = format!(
                    "{base}{}",
                    readiness(&lab.datalab).unwrap_or_else(|| "/".to_owned())
                );
                let mut ticket = self.register_launch(&lab.id);
                let me = Arc::clone(self);
                tokio::spawn(async move {
                    let followed = me
                        .follow_job(&mut lab, &cluster, &path, &mut ticket.stop)
                        .await;
                    me.after_follow(lab, followed, ticket).await;
                });
            }
            LabState::Stopped | LabState::Failed => {}
        }
        Ok(true)
    }

    /// What a followed launch (after a restart) ended with.
    async fn after_follow(
        &self,
        mut lab: LabRecord,
        followed: Result<(), StartFailure>,
        ticket: LaunchTicket,
    ) {
        match followed {
            Ok(()) => {}
            Err(StartFailure::Stopped) => self.let_go(&mut lab, &ticket).await,
            Err(failure) => {
                self.end_process(&lab, Duration::ZERO).await;
                if let Err(e) = self
                    .end(
                        &mut lab,
                        &[LabState::Pending, LabState::Starting],
                        LabState::Failed,
                        failure.to_string(),
                    )
                    .await
                {
                    tracing::error!(lab = %lab.id, error = %e, "could not record a failed lab");
                }
            }
        }
    }
}

/// The name of a lab's job (how one is found without its id).
fn job_name(id: &insitu_domain::LabId) -> String {
    format!("insitu-lab-{id}")
}

/// The datalab as it runs on a node: `{listen}` is every address of the
/// node, since the proxy comes over the cluster's network.
fn on_node(spec: &DatalabSpec) -> DatalabSpec {
    let on_node = |s: &String| s.replace("{listen}", insitu_launcher::sandbox::LISTEN_ON_NODE);
    let mut spec = spec.clone();
    spec.launch.command = spec.launch.command.iter().map(on_node).collect();
    for v in spec.launch.env.values_mut() {
        *v = on_node(v);
    }
    spec
}

/// Where the node's `name` is reached: its `NodeAddr`, resolved.
async fn node_address(
    cluster: &SlurmCluster,
    name: &str,
    port: u16,
) -> Result<SocketAddr, StartFailure> {
    let host = cluster
        .node_addr(name)
        .await
        .map_err(|e| StartFailure::Slurm(e.to_string()))?;
    let mut addrs = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| StartFailure::Slurm(format!("cannot resolve node {name} ({host}): {e}")))?;
    addrs
        .next()
        .ok_or_else(|| StartFailure::Slurm(format!("node {name} ({host}) has no address")))
}

/// How a lab whose job is no longer running ends, and why, in Slurm's
/// words.
fn job_end(id: &str, state: &JobState) -> (LabState, String) {
    match state {
        JobState::Ended {
            state,
            reason,
            exit_code,
        } => {
            let said = if reason.is_empty() || reason == "None" {
                format!("Slurm: {state}, exit code {exit_code}")
            } else {
                format!("Slurm: {state}, reason {reason}, exit code {exit_code}")
            };
            match state.as_str() {
                "CANCELLED" => (
                    LabState::Stopped,
                    format!("its Slurm job {id} was cancelled ({said})"),
                ),
                "COMPLETED" => (
                    LabState::Stopped,
                    format!("its Slurm job {id} ended: the tool exited ({said})"),
                ),
                _ => (
                    LabState::Failed,
                    format!("its Slurm job {id} ended ({said})"),
                ),
            }
        }
        JobState::Vanished => (
            LabState::Stopped,
            format!(
                "its Slurm job {id} is no longer known to Slurm (it ended or was cancelled outside the platform)"
            ),
        ),
        JobState::Pending { reason } => (
            LabState::Failed,
            format!("its Slurm job {id} is pending ({reason})"),
        ),
        JobState::Running { node } => (
            LabState::Running,
            format!("its Slurm job {id} runs on {node}"),
        ),
        JobState::Completing => (LabState::Stopping, format!("its Slurm job {id} is ending")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancelled_or_vanished_job_is_stopped_and_a_failed_one_failed() {
        let ended = |s: &str| JobState::Ended {
            state: s.into(),
            reason: "None".into(),
            exit_code: "0:15".into(),
        };
        let (to, why) = job_end("7", &ended("CANCELLED"));
        assert_eq!(to, LabState::Stopped);
        assert!(
            why.contains("cancelled") && why.contains("CANCELLED"),
            "{why}"
        );
        assert_eq!(job_end("7", &ended("NODE_FAIL")).0, LabState::Failed);
        assert_eq!(job_end("7", &JobState::Vanished).0, LabState::Stopped);
    }
}
